/* vit-data - inspect a dataset, or pack any readable dataset into the HDF5 layout. */
#include "data/data.h"
#include "cli.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-data info PATH [options]\n"
               "       vit-data pack SRC OUT.h5 [options]\n"
               "PATH is what a config's [data] path takes: a folder of IDX files (e.g.\n"
               "/usr/share/datasets/fashion-mnist), a CIFAR folder, an HDF5 file or an image-folder root\n"
               "(root/<class>/*.jpg|png, also in subfolders of a class, or root/train/<class>/... with\n"
               "root/val/). info prints each split's\n"
               "sample count, classes, image shape and per-channel mean/std; pack writes /train and /test\n"
               "groups with images (N, H, W, C) uint8 (chunked, deflated) and labels (N,) int64; an existing\n"
               "OUT.h5 is replaced only when it is a dataset file (HDF5 with images; never a data file of SRC,\n"
               "a checkpoint or any other file).\n"
               "options:\n"
               "  --format " VT_DATA_FORMAT_CHOICES "   (default auto: detected from the path)\n"
               "  --images-key NAME --labels-key NAME    HDF5 dataset names (images, labels)\n"
               "  --num-classes N                        refuse labels >= N\n"
               "  --coarse                               CIFAR-100: the 20 coarse labels\n"
               "  --size H[xW]                           image folders: delivered size\n"
               "  --channels 1|3                         image folders: channels\n"
               "  --bad-images refuse|skip               image folders: undecodable files (refuse)\n"
               "  --max-image-pixels N                   image folders: refuse an image of more pixels (89478485,\n"
               "                                         Pillow's MAX_IMAGE_PIXELS; at most 268435456)\n"
               "  --unlabelled                           a folder of images without classes (images directly in it):\n"
               "                                         read as pretraining reads it, labels not read (packed: num_classes 0)\n"
               "  --limit N                              info: statistics of N evenly spaced samples\n");
}

/* per split: counts per class, per-channel mean/std of [0,1] pixels over all (or limit) samples */
static int info(vt_dataset *ds, const char *split, int64_t limit, bool fixed)
{
    size_t px = (size_t)ds->h * ds->w * ds->c;
    uint8_t *pix = malloc(px);
    int64_t *hist = calloc((size_t)ds->num_classes + 1, sizeof *hist);   /* + 1: none without classes */
    if (!pix || !hist) {
        free(pix);
        free(hist);
        return vt_err("out of memory");
    }
    double sum[4] = {0}, sq[4] = {0};
    int64_t n = limit > 0 && limit < ds->count ? limit : ds->count;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = n == ds->count ? j : j * ds->count / n;
        int label;
        if (ds->read(ds, i, pix, &label) != VT_OK) {
            free(pix);
            free(hist);
            return VT_ERR;
        }
        if (ds->num_classes > 0) hist[label]++;
        for (size_t k = 0; k < px; k++) {
            double v = pix[k] / 255.0;
            sum[k % (size_t)ds->c] += v;
            sq[k % (size_t)ds->c] += v * v;
        }
    }
    double npx = (double)n * ds->h * ds->w;
    printf("%s: %lld images %dx%dx%d (%s), ", split, (long long)ds->count, ds->h, ds->w, ds->c, ds->format);
    if (ds->num_classes == 0) printf("images without classes (labels not read: what pretraining reads)");
    else printf("%d classes\n  per class%s:", ds->num_classes, n < ds->count ? " (of the sampled)" : "");
    for (int k = 0; k < ds->num_classes && k < 100; k++)
        if (ds->class_names) printf(" %s=%lld", ds->class_names[k], (long long)hist[k]);
        else printf(" %lld", (long long)hist[k]);
    if (ds->num_classes > 100) printf(" ...");
    int empty = 0;
    for (int k = 0; k < ds->num_classes; k++) empty += hist[k] == 0;
    /* no names and a top label that is used: the count may be only the largest label + 1; say so when
     * that leaves classes without images (one stray label makes many) */
    if (!ds->class_names && !fixed && empty > 0 && ds->num_classes > 0 && n == ds->count && hist[ds->num_classes - 1] > 0)
        printf("\n  (%d classes: nothing names them, so the count is the largest label, %d, + 1 (a dataset's own "
               "num_classes or --num-classes N says otherwise); %d of them have no image: a stray label? "
               "--num-classes N refuses labels >= N, as vit-train does with [model] num_classes = N)",
               ds->num_classes, ds->num_classes - 1, empty);
    printf("\n  mean:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sum[c] / npx);
    printf("  std:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sqrt(fmax(sq[c] / npx - (sum[c] / npx) * (sum[c] / npx), 0)));
    printf("%s\n", n < ds->count ? "  (sampled)" : "");
    free(pix);
    free(hist);
    return VT_OK;
}

/* --size H or HxW, each side 1..65536, the whole string */
static bool parse_size(const char *v, int *h, int *w)
{
    char *end;
    if (!isdigit((unsigned char)v[0])) return false;
    long long a = strtoll(v, &end, 10), b = a;
    if (*end == 'x') {
        if (!isdigit((unsigned char)end[1])) return false;
        b = strtoll(end + 1, &end, 10);
    }
    if (*end || a < 1 || a > 65536 || b < 1 || b > 65536) return false;
    *h = (int)a;
    *w = (int)b;
    return true;
}

/* after a failed pack: say it, and that OUT is as it was */
static int pack_failed(const vt_pack_file *p, bool existed)
{
    vt_err_prefix("packing %s: ", p->path);
    fprintf(stderr, "vit-data: %s; %s %s\n", vt_errmsg(), p->path, existed ? "left as it was" : "not written");
    return 1;
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-data")) return 2;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "vit-data: missing the command (info or pack)\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "info") && strcmp(argv[1], "pack")) {
        fprintf(stderr, "vit-data: unknown command '%s' (expected info or pack)\n", argv[1]);
        usage(stderr);
        return 2;
    }
    bool is_pack = strcmp(argv[1], "pack") == 0;
    int first_opt = is_pack ? 4 : 3;
    for (int k = 2; k < first_opt; k++)
        if (k >= argc || argv[k][0] == '-') {
            fprintf(stderr, "vit-data: %s needs %s before any option\n", argv[1], is_pack ? "SRC and OUT.h5" : "PATH");
            usage(stderr);
            return 2;
        }
    vt_data_options o = {0};
    long long limit = 0;
    static const char *const bad_choices[] = {"refuse", "skip", NULL};
    static const char *const format_choices[] = {"auto", VT_DATA_FORMATS(VT_DATA_FORMAT_NAME) NULL};
    for (int i = first_opt; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        static const char *known[] = {"--format", "--images-key", "--labels-key", "--num-classes", "--channels",
                                      "--limit", "--bad-images", "--size", "--coarse", "--max-image-pixels",
                                      "--unlabelled"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) is_known = is_known || !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, a[0] == '-' ? "vit-data: unknown option %s (see vit-data --help)\n"
                                        : "vit-data: unexpected argument '%s' (see vit-data --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--coarse") || !strcmp(a, "--unlabelled")) {
            if (a[2] == 'c') o.cifar_coarse = true;
            else o.unlabelled = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "vit-data: %s needs a value (see vit-data --help)\n", a);
            return 2;
        }
        bool ok = true;
        if (!strcmp(a, "--format")) ok = cli_choice("vit-data", a, v, format_choices), o.format = v;
        else if (!strcmp(a, "--images-key")) o.images_key = v;
        else if (!strcmp(a, "--labels-key")) o.labels_key = v;
        else if (!strcmp(a, "--num-classes")) ok = cli_int("vit-data", a, v, 1, 1 << 24, &o.num_classes);
        else if (!strcmp(a, "--channels")) {
            static const char *const ch[] = {"1", "3", NULL};
            ok = cli_choice("vit-data", a, v, ch);
            o.channels = atoi(v);
        } else if (!strcmp(a, "--limit")) ok = cli_ll("vit-data", a, v, 1, 1LL << 40, &limit);
        else if (!strcmp(a, "--bad-images")) {
            ok = cli_choice("vit-data", a, v, bad_choices);
            o.bad_images = !strcmp(v, "skip") ? VT_BAD_SKIP : VT_BAD_REFUSE;
        } else if (!strcmp(a, "--max-image-pixels")) {
            long long px = 0;
            ok = cli_ll("vit-data", a, v, 1, 1LL << 28, &px);
            o.max_image_pixels = px;
        } else if (!strcmp(a, "--size") && !(ok = parse_size(v, &o.image_h, &o.image_w)))
            fprintf(stderr, "vit-data: --size %s: expected H or HxW, each 1..65536\n", v);
        if (!ok) return 2;
        i++;
    }
    /* pack writes OUT.partial and renames it at the end: a failure leaves any old OUT untouched */
    vt_pack_file out = {.file = -1};
    struct stat st;
    bool existed = is_pack && stat(argv[3], &st) == 0;
    if (is_pack) {
        if (!cli_check_output("vit-data", argv[2], argv[3])) return 2;
        if (vt_pack_file_begin(&out, argv[3], argv[2]) != VT_OK) {
            if (!out.refused) return pack_failed(&out, existed);
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());   /* a bad output name: a command-line error */
            return 2;
        }
    }
    int found = 0;
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        vt_dataset *ds;
        if (vt_dataset_open_opts(&ds, argv[2], splits[s], &o) != VT_OK) {
            const bool classless = !o.unlabelled && strstr(vt_errmsg(), "a folder of images without classes");
            fprintf(stderr, "vit-data: %s%s\n", vt_errmsg(), classless ? " (vit-data --unlabelled reads it so)" : "");
            if (is_pack) vt_pack_file_abort(&out);
            return 1;
        }
        if (!ds) continue;
        found++;
        char g[16];
        snprintf(g, sizeof g, "/%s", splits[s]);
        int r = is_pack ? vt_dataset_pack_h5(ds, out.file, g) : info(ds, splits[s], (int64_t)limit, o.num_classes > 0);
        if (r == VT_OK && is_pack) printf("%s: %lld images -> %s%s\n", splits[s], (long long)ds->count, argv[3], g);
        if (ds->skipped)
            fprintf(stderr, "vit-data: warning: %s: %lld undecodable image%s skipped (first: %s)\n", splits[s],
                    (long long)ds->skipped, ds->skipped == 1 ? "" : "s", ds->skip_note);
        vt_dataset_close(ds);
        if (r != VT_OK) {
            if (!is_pack) {
                fprintf(stderr, "vit-data: %s\n", vt_errmsg());
                return 1;
            }
            vt_pack_file_abort(&out);
            return pack_failed(&out, existed);
        }
    }
    if (!found) {
        fprintf(stderr, "vit-data: %s: no split found\n", argv[2]);
        if (is_pack) vt_pack_file_abort(&out);
        return 1;
    }
    if (is_pack && vt_pack_file_commit(&out) != VT_OK) return pack_failed(&out, existed);
    return 0;
}
