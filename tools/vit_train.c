/* vit-train - train a Vision Transformer from an INI config. */
#include "cli.h"
#include "train/train.h"
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vit-train --config FILE [--set section.key=value ...] [--out DIR] [--resume PATH|auto]\n"
            "                 [--init PATH] [--threads N] [--seed N] [--print-config] [--dry-run] [--stop-after N]\n"
            "\n"
            "  --config FILE      the run's INI config (see configs/README.md for every key)\n"
            "  --set S.K=V        override one key, with the same checks as the file (repeatable)\n"
            "  --out DIR          output folder: config.ini, metrics.csv, checkpoints (default runs/<config name>)\n"
            "  --resume PATH|auto continue exactly where a run stopped (auto: newest checkpoint in the out dir)\n"
            "  --init PATH        start from these weights only (fine-tuning; pos_embed resized, new head)\n"
            "  --threads N        compute threads, 0: all cores (default: the config's [train] threads)\n"
            "  --seed N           override [train] seed\n"
            "  --print-config     print the resolved config and exit\n"
            "  --dry-run          build everything and run one step, write nothing\n"
            "  --stop-after N     stop after N steps of this invocation as if interrupted (checkpoint, exit 130)\n"
            "\n"
            "examples:\n"
            "  vit-train --config configs/fashion_mnist.ini\n"
            "  vit-train --config configs/fashion_mnist.ini --resume auto\n"
            "  vit-train --config configs/fashion_mnist.ini --set optim.lr=1e-3 --set train.epochs=3\n");
}

/* the first SIGINT/SIGTERM: finish the step, write a checkpoint, exit 130; a second: at once (the last
 * checkpoint stays as it was: they are written under another name and renamed when complete) */
static void on_signal(int signo)
{
    static volatile sig_atomic_t seen;
    if (seen) {
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    seen = 1;
    static const char msg[] = "\nvit-train: stopping after this step (writes a checkpoint); again to quit at once\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing to do in a signal handler */ }
    vt_train_request_stop(signo);
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-train")) return 2;
    if (vt_blas_ensure_core(argc, argv) != VT_OK) fprintf(stderr, "vit-train: warning: %s\n", vt_errmsg());
    vt_train_args a;
    memset(&a, 0, sizeof a);
    a.seed = -1;
    a.threads = -1;
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},    {"resume", required_argument, 0, 'r'},
        {"init", required_argument, 0, 'i'},   {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 'S'},   {"print-config", no_argument, 0, 'p'},
        {"dry-run", no_argument, 0, 'd'},      {"help", no_argument, 0, 'h'},
        {"stop-after", required_argument, 0, 'A'},
        {0, 0, 0, 0}};
    int ch;
    long long seed;
    while ((ch = getopt_long(argc, argv, "c:s:o:r:i:t:S:pdhA:", longs, NULL)) != -1) {
        /* an option given twice would silently keep the last: only --set repeats (--config has its own message) */
        static bool given[256];
        if (ch > 0 && ch < 256 && ch != 's' && ch != 'c' && ch != '?' && given[ch]) {
            const char *name = "?";
            for (int o = 0; longs[o].name; o++)
                if (longs[o].val == ch) name = longs[o].name;
            fprintf(stderr, "vit-train: --%s given twice\n", name);
            return 2;
        }
        if (ch > 0 && ch < 256) given[ch] = true;
        switch (ch) {
        case 'c':
            if (a.config_path) {
                fprintf(stderr, "vit-train: --config given twice (%s, %s): one config, then --set to change keys\n",
                        a.config_path, optarg);
                return 2;
            }
            a.config_path = optarg;
            break;
        case 's':
            if (a.nsets == 64) {
                fprintf(stderr, "vit-train: too many --set options (64 at most)\n");
                return 2;
            }
            a.sets[a.nsets++] = optarg;
            break;
        case 'o': a.out_dir = optarg; break;
        case 'r': a.resume = optarg; break;
        case 'i': a.init = optarg; break;
        case 't':   /* [train] threads' range; 0: every core */
            if (!cli_int("vit-train", "--threads", optarg, 0, 1024, &a.threads)) return 2;
            break;
        case 'S':
            if (!cli_ll("vit-train", "--seed", optarg, 0, 2147483647, &seed)) return 2;
            a.seed = seed;
            break;
        case 'A':
            if (!cli_ll("vit-train", "--stop-after", optarg, 1, LLONG_MAX, &a.stop_after)) return 2;
            break;
        case 'p': a.print_config = true; break;
        case 'd': a.dry_run = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vit-train: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!a.config_path) {
        fprintf(stderr, "vit-train: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* under mpirun: one rank of a data-parallel run (alone: rank 0 of 1) */
    vt_dist d;
    if (vt_dist_init(&d, &argc, &argv) != VT_OK) {
        fprintf(stderr, "vit-train: %s\n", vt_errmsg());
        return 1;
    }
    bool shared = false;
    a.dist = &d;
    a.failure_shared = &shared;
    vt_train_status s = vt_train_run(&a, stdout);
    if (s == VT_TRAIN_FAILED) {
        fflush(stdout);
        if (d.size == 1)
            fprintf(stderr, "vit-train: %s\n", vt_errmsg());
        else if (shared && d.rank == 0)   /* every rank knows it: rank 0 says it, all stop */
            fprintf(stderr, "vit-train: %s\n", vt_errmsg());
        else if (!shared) {   /* this rank's alone: it says so and stops the others (no rank waits forever) */
            fprintf(stderr, "vit-train: rank %d of %d (host %s): %s\n", d.rank, d.size, d.host, vt_errmsg());
            fflush(stderr);
            vt_dist_abort(&d, 1);
        }
        vt_dist_finalize(&d);
        return 1;
    }
    vt_dist_finalize(&d);
    return s == VT_TRAIN_INTERRUPTED ? 130 : 0;
}
