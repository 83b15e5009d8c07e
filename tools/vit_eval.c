/* vit-eval - top-1 / top-5 accuracy and loss of a checkpoint on a dataset split. */
#include "train/train.h"
#include "cli.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-eval --checkpoint FILE [--config FILE] [--data PATH] [--split test|train] [--batch N]\n"
               "                [--threads N]\n"
               "The data settings (path, normalisation, crop_pct, bad_images, ...) come from --config, else from\n"
               "the config stored in the checkpoint; --data overrides the path, --batch [data] eval_batch_size.\n"
               "The model (input size, channels, classes) is the checkpoint's. Prints loss, top-1 and top-5 on the\n"
               "split (default test).\n"
               "example: vit-eval --checkpoint runs/fashion_mnist/ckpt-000004680.h5\n");
}

int main(int argc, char **argv)
{
    vt_blas_ensure_core(argc, argv);
    const char *ckpt = NULL, *cfgpath = NULL, *data = NULL, *split = "test";
    int batch = 0, threads = 0;
    static const struct option longs[] = {{"checkpoint", required_argument, 0, 'k'}, {"config", required_argument, 0, 'c'},
                                          {"data", required_argument, 0, 'd'},       {"split", required_argument, 0, 's'},
                                          {"batch", required_argument, 0, 'b'},      {"threads", required_argument, 0, 't'},
                                          {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    static const char *const splits[] = {"test", "train", NULL};
    int ch;
    while ((ch = getopt_long(argc, argv, "k:c:d:s:b:t:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'k': ckpt = optarg; break;
        case 'c': cfgpath = optarg; break;
        case 'd': data = optarg; break;
        case 's':
            if (!cli_choice("vit-eval", "--split", optarg, splits)) return 2;
            split = optarg;
            break;
        case 'b':
            if (!cli_int("vit-eval", "--batch", optarg, 1, 1 << 20, &batch)) return 2;
            break;
        case 't':
            if (!cli_int("vit-eval", "--threads", optarg, 1, 1024, &threads)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   /* getopt has named the unknown option */
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vit-eval: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!ckpt) {
        fprintf(stderr, "vit-eval: --checkpoint FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) vt_set_threads(threads);
    vt_vit_config mc;
    vt_vit m;
    bool have_model = false, have_graph = false;
    vt_config c;
    vt_config_defaults(&c);
    vt_dataset *ds = NULL;
    vt_loader *l = NULL;
    vt_vit_replicas rep;
    int rc = 1;
    char *text = NULL;
    if (vt_ckpt_model_config(ckpt, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK) goto fail;
    have_model = true;
    if (vt_ckpt_load(ckpt, &m, NULL, NULL, &text) != VT_OK) goto fail;
    int r = cfgpath ? vt_config_load(&c, cfgpath) : vt_config_load_text(&c, text, ckpt);
    free(text);
    if (r != VT_OK) goto fail;
    if (data) snprintf(c.data_path, sizeof c.data_path, "%s", data);
    c.num_classes = mc.num_classes;   /* the checkpoint's head decides */
    if (batch > 0) c.eval_batch_size = batch;
    if (vt_config_open_data(&c, &mc, split, &ds) != VT_OK) goto fail;
    if (!ds) {
        vt_err("%s: no %s split", c.data_path, split);
        goto fail;
    }
    vt_data_warn_skipped(stderr, "vit-eval: ", ds, split);
    int64_t skipped0 = ds->skipped;
    if (ds->num_classes > mc.num_classes) {
        vt_err("%s has %d classes, the checkpoint's head %d", c.data_path, ds->num_classes, mc.num_classes);
        goto fail;
    }
    vt_eval_result ev;
    if (vt_config_loader(&c, &mc, ds, NULL, 0, false, 0, &l) != VT_OK ||
        vt_vit_replicas_init_eval(&rep, &m, c.replicas, 16u << 20) != VT_OK)
        goto fail;
    have_graph = true;
    if (vt_evaluate(&rep, l, &ev) != VT_OK) goto fail;
    printf("%s on %s (%s, %lld images): loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n", ckpt, c.data_path, split,
           (long long)ev.count, ev.loss, ev.top1, ev.top5);
    vt_loader_free(l);
    l = NULL;
    if (ds->skipped > skipped0) vt_data_warn_skipped(stderr, "vit-eval: ", ds, split);   /* failed at full decode */
    rc = 0;
fail:
    if (rc != 0) fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
    vt_loader_free(l);
    if (have_graph) vt_vit_replicas_free(&rep);
    vt_dataset_close(ds);
    if (have_model) vt_vit_free(&m);
    return rc;
}
