/* vit-eval - top-1 / top-5 accuracy and loss of a checkpoint on a dataset split. */
#include "train/train.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-eval --checkpoint FILE [--config FILE] [--data PATH] [--split test|train] [--batch N]\n"
               "                [--threads N]\n"
               "The data settings (path, normalisation) come from --config, else from the config stored in the\n"
               "checkpoint; --data overrides the path. Prints loss, top-1 and top-5 on the split (default test).\n"
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
    int ch;
    while ((ch = getopt_long(argc, argv, "k:c:d:s:b:t:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'k': ckpt = optarg; break;
        case 'c': cfgpath = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!ckpt || (strcmp(split, "test") && strcmp(split, "train"))) {
        usage(stderr);
        return 2;
    }
    if (threads > 0) vt_set_threads(threads);
    vt_vit_config mc;
    vt_vit m;
    vt_config c;
    vt_config_defaults(&c);
    char *text = NULL;
    if (vt_ckpt_model_config(ckpt, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK ||
        vt_ckpt_load(ckpt, &m, NULL, NULL, &text) != VT_OK) {
        fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
        return 1;
    }
    int r = cfgpath ? vt_config_load(&c, cfgpath) : vt_config_load_text(&c, text, ckpt);
    free(text);
    if (r != VT_OK) {
        fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
        return 1;
    }
    if (data) snprintf(c.data_path, sizeof c.data_path, "%s", data);
    vt_dataset *ds = NULL;
    if (vt_dataset_open(&ds, c.data_path, split, c.data_format, c.images_key, c.labels_key) != VT_OK || !ds) {
        fprintf(stderr, "vit-eval: %s\n", ds ? vt_errmsg() : (vt_errmsg()[0] ? vt_errmsg() : "no such split"));
        return 1;
    }
    if (ds->num_classes > mc.num_classes) {
        fprintf(stderr, "vit-eval: %s has %d classes, the checkpoint's head %d\n", c.data_path, ds->num_classes,
                mc.num_classes);
        return 1;
    }
    vt_transform tf = {0};
    tf.out_c = mc.in_chans;
    tf.out_h = mc.img_h;
    tf.out_w = mc.img_w;
    if (vt_parse_floats(c.mean, tf.mean, tf.out_c, "[data] mean") || vt_parse_floats(c.std, tf.std, tf.out_c, "[data] std")) {
        fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
        return 1;
    }
    vt_loader_config lc = {ds, NULL, 0, tf, batch > 0 ? batch : (c.eval_batch_size ? c.eval_batch_size : c.batch_size),
                           false, false, 0, c.workers, c.prefetch};
    vt_loader *l;
    vt_graph g;
    vt_eval_result ev;
    if (vt_loader_create(&l, &lc) != VT_OK || vt_graph_init(&g, 16u << 20) != VT_OK || vt_evaluate(&m, l, &g, &ev) != VT_OK) {
        fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
        return 1;
    }
    printf("%s on %s (%s, %lld images): loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n", ckpt, c.data_path, split,
           (long long)ev.count, ev.loss, ev.top1, ev.top5);
    vt_graph_free(&g);
    vt_loader_free(l);
    vt_dataset_close(ds);
    vt_vit_free(&m);
    return 0;
}
