/* vit-golden - check this implementation against reference values computed by timm. */
#include "cli.h"
#include "golden/golden.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vit-golden [--case GROUP] [--weights FILE] [--verbose] FILE...\n"
            "Finds every group of the goldens layout in each HDF5 FILE (model cases: params/, input,\n"
            "logits, grads/ and the architecture as attributes), runs it in float32 and prints the worst\n"
            "error of every tensor against the reference. Exit status 1 if anything fails.\n"
            "  --case GROUP     check only this group (e.g. /vit_tiny_f64)\n"
            "  --weights FILE   take the model case's weights from FILE instead of its params/\n"
            "  --verbose, -v    one line per tensor, also when it passes\n"
            "example: vit-golden ../shared/goldens/vit_reference.h5\n");
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-golden")) return 2;
    vt_golden_opts o = {0};
    static const struct option longs[] = {{"case", required_argument, 0, 'c'},
                                          {"weights", required_argument, 0, 'w'},
                                          {"verbose", no_argument, 0, 'v'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:w:vh", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': o.only_case = optarg; break;
        case 'w': o.weights = optarg; break;
        case 'v': o.verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vit-golden: missing the golden FILE to check\n");
        usage(stderr);
        return 2;
    }
    if (o.weights && !o.only_case) {
        fprintf(stderr, "vit-golden: --weights needs --case GROUP (which case the weights are for)\n");
        return 2;
    }
    vt_golden_result total = {0};
    int bad = 0;
    for (int i = optind; i < argc; i++) {
        vt_golden_result r = {0};
        if (vt_golden_check_file(argv[i], &o, stdout, &r) != VT_OK) {
            fprintf(stderr, "vit-golden: %s\n", vt_errmsg());
            bad = 1;
            continue;
        }
        total.checked += r.checked;
        total.failed += r.failed;
        total.cases += r.cases;
        total.not_checked += r.not_checked;
        total.errors += r.errors;
    }
    if (o.only_case && total.cases == 0 && total.errors == 0 && !bad) {
        fprintf(stderr, "vit-golden: no group named %s found\n", o.only_case);
        bad = 1;
    }
    printf("%d groups checked, %d tensors compared: %d passed, %d failed; %d groups with errors, %d not checked\n",
           total.cases, total.checked, total.checked - total.failed, total.failed, total.errors, total.not_checked);
    return (bad || total.failed || total.errors) ? 1 : 0;
}
