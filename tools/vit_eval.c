/* vit-eval - top-1 / top-5 accuracy and loss of a checkpoint on a dataset split. */
#include "train/train.h"
#include "cli.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-eval --checkpoint FILE [--config FILE] [--data PATH] [--split test|train|val] [--batch N]\n"
               "                [--threads N] [--ema] [--reconstruct N --out DIR]\n"
               "The data settings (path, normalisation, crop_pct, bad_images, ...) come from --config, else from\n"
               "the config stored in the checkpoint; --data overrides the path, --batch [data] eval_batch_size.\n"
               "The model (input size, channels, classes) is the checkpoint's. Prints loss, top-1 and top-5 on the\n"
               "split (default test). val: for a run trained with [data] val_fraction on data without a test\n"
               "split, the images of the training split it held out for evaluation (its val_fraction and seed,\n"
               "from the config stored in the checkpoint). --ema evaluates the run's EMA of the weights ([train]\n"
               "ema_decay) instead of its weights.\n"
               "--reconstruct N --out DIR: for a model pretrained with [pretrain] objective = mae or masked_patch_pixels,\n"
               "instead writes DIR/reconstruct-NNNN.png of the first N images of the split: the original, the masked\n"
               "input and the reconstruction side by side.\n"
               "example: vit-eval --checkpoint runs/fashion_mnist/ckpt-000004680.h5\n");
}

/* where the data path came from, for a message about it */
static void path_origin(const char *ckpt, const char *cfgpath, char *buf, size_t n)
{
    if (cfgpath) snprintf(buf, n, "the [data] path of %s; --data PATH reads the data from elsewhere", cfgpath);
    else
        snprintf(buf, n, "the [data] path of the config stored in %s, where the run found its data; --data PATH "
                         "reads the data from elsewhere", ckpt);
}

/* the images of the training split that the run held out for evaluation ([data] val_fraction of the run's
 * config, stored in the checkpoint, with the run's seed): the trainer's own split, so the same images;
 * *ds the training split, idx/n the held-out indices */
static int open_val(const vt_config *c, const vt_config *run, const vt_vit_config *mc, const char *ckpt,
                    const vt_train_state *s, vt_dataset **ds, int64_t **idx, int64_t *n)
{
    *ds = NULL;
    *idx = NULL;
    *n = 0;
    if (!(run->val_fraction > 0))
        return vt_err("%s: the run held out no validation images ([data] val_fraction = 0 in its config): evaluate "
                      "--split test or train", ckpt);
    vt_dataset *test = NULL;
    if (vt_config_open_data(c, mc, "test", &test) != VT_OK) return VT_ERR;
    if (test) {
        vt_dataset_close(test);
        return vt_err("%s has a test split: the trainer evaluates on it and holds out nothing ([data] val_fraction "
                      "applies only without one): evaluate --split test", c->data_path);
    }
    if (vt_config_open_data(c, mc, "train", ds) != VT_OK) return VT_ERR;
    if (!*ds) return vt_err("%s: no training split to take the held-out images from", c->data_path);
    int64_t *tr = NULL, ntr = 0;
    if (vt_split_indices((*ds)->count, run->val_fraction, (uint64_t)run->seed, &tr, &ntr, idx, n) != VT_OK)
        return VT_ERR;
    free(tr);
    /* the split depends on the training set's size: another size, other images */
    if (s->train_images > 0 && s->train_images != ntr)
        return vt_err("%s: the run trained on %lld images, this training split of %lld images leaves %lld after "
                      "holding out %lld: not the data of the run, so not its held-out images", c->data_path,
                      (long long)s->train_images, (long long)(*ds)->count, (long long)ntr, (long long)*n);
    if (*n == 0)
        return vt_err("%s: [data] val_fraction = %g of %lld images holds out none", c->data_path, run->val_fraction,
                      (long long)(*ds)->count);
    return VT_OK;
}

typedef struct {
    const char *ckpt, *cfgpath, *data, *split, *out;
    int batch, threads, reconstruct;
    bool ema;   /* the checkpoint's EMA weights ([train] ema_decay) instead of the model's */
} eval_args;

/* the command line into a: -1 to go on, else the exit code */
static int parse_args(int argc, char **argv, eval_args *a)
{
    static const struct option longs[] = {{"checkpoint", required_argument, 0, 'k'}, {"config", required_argument, 0, 'c'},
                                          {"data", required_argument, 0, 'd'},       {"split", required_argument, 0, 's'},
                                          {"batch", required_argument, 0, 'b'},      {"threads", required_argument, 0, 't'},
                                          {"reconstruct", required_argument, 0, 'r'}, {"out", required_argument, 0, 'o'},
                                          {"ema", no_argument, 0, 'e'},              {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    static const char *const splits[] = {"test", "train", "val", NULL};
    int ch;
    while ((ch = getopt_long(argc, argv, "k:c:d:s:b:t:r:o:eh", longs, NULL)) != -1) {
        switch (ch) {
        case 'k': a->ckpt = optarg; break;
        case 'c': a->cfgpath = optarg; break;
        case 'd': a->data = optarg; break;
        case 's':
            if (!cli_choice("vit-eval", "--split", optarg, splits)) return 2;
            a->split = optarg;
            break;
        case 'b':
            if (!cli_int("vit-eval", "--batch", optarg, 1, 1 << 20, &a->batch)) return 2;
            break;
        case 't':
            if (!cli_int("vit-eval", "--threads", optarg, 1, 1024, &a->threads)) return 2;
            break;
        case 'r':
            if (!cli_int("vit-eval", "--reconstruct", optarg, 1, 1 << 20, &a->reconstruct)) return 2;
            break;
        case 'o': a->out = optarg; break;
        case 'e': a->ema = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   /* getopt has named the unknown option */
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vit-eval: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!a->ckpt) {
        fprintf(stderr, "vit-eval: --checkpoint FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (!a->reconstruct != !a->out) {
        fprintf(stderr, "vit-eval: --reconstruct N and --out DIR go together\n");
        usage(stderr);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-eval")) return 2;
    vt_blas_ensure_core(argc, argv);
    eval_args args = {.split = "test"};
    const int done = parse_args(argc, argv, &args);
    if (done >= 0) return done;
    const char *ckpt = args.ckpt, *cfgpath = args.cfgpath, *data = args.data, *split = args.split;
    const int batch = args.batch, threads = args.threads;
    vt_config c;
    /* the whole path or none: a cut one could name another folder */
    if (data && strlen(data) >= sizeof c.data_path) {
        fprintf(stderr, "vit-eval: --data %s: path too long (%zu characters, at most %zu)\n", data, strlen(data),
                sizeof c.data_path - 1);
        return 2;
    }
    if (threads > 0) vt_set_threads(threads);
    vt_vit_config mc;
    vt_vit m;
    bool have_model = false, have_graph = false, val = strcmp(split, "val") == 0;
    vt_config_defaults(&c);
    vt_config run;   /* the run's own config, stored in the checkpoint (its held-out split) */
    vt_config_defaults(&run);
    vt_train_state st;
    memset(&st, 0, sizeof st);
    vt_dataset *ds = NULL;
    vt_loader *l = NULL;
    vt_vit_replicas rep;
    int64_t *idx = NULL, nidx = 0;
    int rc = 1;
    char *text = NULL, why[1200];
    if (vt_ckpt_model_config(ckpt, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK) goto fail;
    have_model = true;
    if (vt_ckpt_load(ckpt, &m, NULL, val ? &st : NULL, &text) != VT_OK) goto fail;
    if (args.ema && vt_ckpt_load_ema(ckpt, &m) != VT_OK) goto fail;
    vt_ckpt_note_unverified(stderr, "vit-eval: ", ckpt);
    /* the run's config: its held-out split (--split val, and the hint when there is no test split) */
    int r = vt_config_load_text(&run, text, ckpt);
    if (r != VT_OK && !val) vt_config_defaults(&run), r = VT_OK;
    if (r == VT_OK) r = cfgpath ? vt_config_load(&c, cfgpath) : vt_config_load_text(&c, text, ckpt);
    free(text);
    if (r != VT_OK) goto fail;
    if (data) snprintf(c.data_path, sizeof c.data_path, "%s", data);
    c.num_classes = mc.num_classes;   /* the checkpoint's head decides */
    if (batch > 0) c.eval_batch_size = batch;
    struct stat pst;
    if (!data && (!c.data_path[0] || stat(c.data_path, &pst) != 0)) {   /* a path from a config: say which */
        int e = errno;
        path_origin(ckpt, cfgpath, why, sizeof why);
        if (!c.data_path[0]) vt_err("no data path: %s is empty", why);
        else vt_err("%s: %s (%s)", c.data_path, e == ENOENT ? "no such file or folder" : strerror(e), why);
        goto fail;
    }
    if (val ? open_val(&c, &run, &mc, ckpt, &st, &ds, &idx, &nidx) != VT_OK
            : vt_config_open_data(&c, &mc, split, &ds) != VT_OK)
        goto fail;
    if (!ds) {
        vt_err("%s: no %s split%s", c.data_path, split,
               strcmp(split, "test") == 0 && run.val_fraction > 0 ? " (the run held out part of its training split: --split val)" : "");
        goto fail;
    }
    vt_data_warn_skipped(stderr, "vit-eval: ", ds, split);
    int64_t skipped0 = ds->skipped;
    if (ds->num_classes > mc.num_classes) {
        vt_err("%s has %d classes, the checkpoint's head %d", c.data_path, ds->num_classes, mc.num_classes);
        goto fail;
    }
    vt_eval_result ev;
    if (vt_config_loader(&c, &mc, ds, idx, nidx, false, 0, &l) != VT_OK ||
        vt_vit_replicas_init_eval(&rep, &m, c.replicas, 16u << 20) != VT_OK)
        goto fail;
    have_graph = true;
    if (args.reconstruct) {
        rc = vt_reconstruct_pngs(&rep, l, args.reconstruct, args.out, stdout) == VT_OK ? 0 : 1;
        goto fail;
    }
    if (vt_evaluate(&rep, l, &ev) != VT_OK) goto fail;
    /* the split is the run's only on the run's images: another path can hold them (a moved copy) or not */
    const bool other = val && strcmp(c.data_path, run.data_path) != 0;
    if (other)
        fprintf(stderr, "vit-eval: warning: the run held out images of %s; %s gets the same split only if it holds the "
                        "same images in the same order\n", run.data_path, c.data_path);
    char metrics[256];
    vt_eval_format(&ev, false, metrics, sizeof metrics);
    printf("%s%s on %s (%s%s, %lld images): %s\n", ckpt, args.ema ? " (EMA)" : "", c.data_path, split,
           !val ? "" : other ? ": held out of the training split by the run's val_fraction and seed"
                             : ": held out of the training split as the run did",
           (long long)ev.count, metrics);
    vt_loader_free(l);
    l = NULL;
    if (ds->skipped > skipped0) vt_data_warn_skipped(stderr, "vit-eval: ", ds, split);   /* failed at full decode */
    rc = 0;
fail:
    if (rc != 0) fprintf(stderr, "vit-eval: %s\n", vt_errmsg());
    vt_loader_free(l);
    if (have_graph) vt_vit_replicas_free(&rep);
    vt_dataset_close(ds);
    free(idx);
    if (have_model) vt_vit_free(&m);
    return rc;
}
