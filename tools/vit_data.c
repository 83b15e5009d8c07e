/* vit-data - inspect a dataset, or pack any readable dataset into the HDF5 layout. */
#include "data/data.h"
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
               "(root/<class>/*.jpg|png, or root/train/<class>/... with root/val/). info prints each split's\n"
               "sample count, classes, image shape and per-channel mean/std; pack writes /train and /test\n"
               "groups with images (N, H, W, C) uint8 (chunked, deflated) and labels (N,) int64.\n"
               "options:\n"
               "  --format auto|idx|cifar|hdf5|folder   (default auto: detected from the path)\n"
               "  --images-key NAME --labels-key NAME    HDF5 dataset names (images, labels)\n"
               "  --num-classes N                        refuse labels >= N\n"
               "  --coarse                               CIFAR-100: the 20 coarse labels\n"
               "  --size H[xW]                           image folders: delivered size\n"
               "  --channels 1|3                         image folders: channels\n"
               "  --bad-images refuse|skip               image folders: undecodable files (refuse)\n"
               "  --limit N                              info: statistics of N evenly spaced samples\n");
}

/* per split: counts per class, per-channel mean/std of [0,1] pixels over all (or limit) samples */
static int info(vt_dataset *ds, const char *split, int64_t limit)
{
    size_t px = (size_t)ds->h * ds->w * ds->c;
    uint8_t *pix = malloc(px);
    int64_t *hist = calloc((size_t)ds->num_classes, sizeof *hist);
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
        hist[label]++;
        for (size_t k = 0; k < px; k++) {
            double v = pix[k] / 255.0;
            sum[k % (size_t)ds->c] += v;
            sq[k % (size_t)ds->c] += v * v;
        }
    }
    double npx = (double)n * ds->h * ds->w;
    printf("%s: %lld images %dx%dx%d (%s), %d classes\n", split, (long long)ds->count, ds->h, ds->w, ds->c, ds->format,
           ds->num_classes);
    printf("  per class%s:", n < ds->count ? " (of the sampled)" : "");
    for (int k = 0; k < ds->num_classes && k < 100; k++)
        if (ds->class_names) printf(" %s=%lld", ds->class_names[k], (long long)hist[k]);
        else printf(" %lld", (long long)hist[k]);
    if (ds->num_classes > 100) printf(" ...");
    printf("\n  mean:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sum[c] / npx);
    printf("  std:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sqrt(fmax(sq[c] / npx - (sum[c] / npx) * (sum[c] / npx), 0)));
    printf("%s\n", n < ds->count ? "  (sampled)" : "");
    free(pix);
    free(hist);
    return VT_OK;
}

static int fail_pack(vt_h5id out, const char *tmp)
{
    if (out >= 0) {
        vt_h5_close(out);
        remove(tmp);
    }
    return 1;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 3 || (strcmp(argv[1], "info") && strcmp(argv[1], "pack"))) {
        usage(stderr);
        return 2;
    }
    bool is_pack = strcmp(argv[1], "pack") == 0;
    int first_opt = is_pack ? 4 : 3;
    if (argc < first_opt) {
        usage(stderr);
        return 2;
    }
    vt_data_options o = {0};
    int64_t limit = 0;
    for (int i = first_opt; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        bool ok = true, takes = true;
        static const char *known[] = {"--format", "--images-key", "--labels-key", "--num-classes", "--channels",
                                      "--limit", "--bad-images", "--size", "--coarse"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) is_known = is_known || !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, "vit-data: unknown option %s (see vit-data --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--coarse")) o.cifar_coarse = true, takes = false;
        else if (!v) ok = false;
        else if (!strcmp(a, "--format")) o.format = v;
        else if (!strcmp(a, "--images-key")) o.images_key = v;
        else if (!strcmp(a, "--labels-key")) o.labels_key = v;
        else if (!strcmp(a, "--num-classes")) ok = parse_int(v, 1, 1 << 24, &n) && (o.num_classes = (int)n);
        else if (!strcmp(a, "--channels")) ok = parse_int(v, 1, 3, &n) && n != 2 && (o.channels = (int)n);
        else if (!strcmp(a, "--limit")) ok = parse_int(v, 1, 1L << 40, &n) && (limit = n);
        else if (!strcmp(a, "--bad-images")) {
            ok = !strcmp(v, "refuse") || !strcmp(v, "skip");
            o.bad_images = !strcmp(v, "skip") ? VT_BAD_SKIP : VT_BAD_REFUSE;
        } else if (!strcmp(a, "--size")) {
            int h, w;
            char x;
            int got = sscanf(v, "%d%c%d", &h, &x, &w);
            ok = (got == 1 || (got == 3 && x == 'x')) && h > 0 && (got == 1 || w > 0);
            o.image_h = h;
            o.image_w = got == 3 ? w : h;
        }
        if (!ok) {
            fprintf(stderr, "vit-data: %s %s: bad or missing value (see vit-data --help)\n", a, v ? v : "");
            return 2;
        }
        if (takes) i++;
    }
    /* pack writes OUT.partial and renames it at the end: a failure leaves any old OUT untouched */
    vt_h5id out = -1;
    char tmp[4200] = "";
    if (is_pack) {
        struct stat a, b;
        if (stat(argv[2], &a) == 0 && stat(argv[3], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            fprintf(stderr, "vit-data: %s: the output is the source\n", argv[3]);
            return 1;
        }
        snprintf(tmp, sizeof tmp, "%s.partial", argv[3]);
        if ((out = vt_h5_create(tmp)) < 0) {
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());
            return 1;
        }
    }
    int found = 0;
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        vt_dataset *ds;
        if (vt_dataset_open_opts(&ds, argv[2], splits[s], &o) != VT_OK) {
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());
            return fail_pack(out, tmp);
        }
        if (!ds) continue;
        found++;
        char g[16];
        snprintf(g, sizeof g, "/%s", splits[s]);
        int r = is_pack ? vt_dataset_pack_h5(ds, out, g) : info(ds, splits[s], limit);
        if (r == VT_OK && is_pack) printf("%s: %lld images -> %s%s\n", splits[s], (long long)ds->count, argv[3], g);
        if (ds->skipped)
            fprintf(stderr, "vit-data: warning: %s: %lld undecodable images skipped (first: %s)\n", splits[s],
                    (long long)ds->skipped, ds->skip_note);
        vt_dataset_close(ds);
        if (r != VT_OK) {
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());
            return fail_pack(out, tmp);
        }
    }
    if (!found) {
        fprintf(stderr, "vit-data: %s: no split found\n", argv[2]);
        return fail_pack(out, tmp);
    }
    if (out >= 0) {
        vt_h5_close(out);
        if (rename(tmp, argv[3]) != 0) {
            perror(argv[3]);
            remove(tmp);
            return 1;
        }
    }
    return 0;
}
