/* vit-data - inspect a dataset, or pack any readable dataset into the HDF5 layout. */
#include "data/data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-data info PATH [--format auto|idx|cifar|hdf5]\n"
               "       vit-data pack SRC OUT.h5 [--format ...]\n"
               "PATH is what a config's [data] path takes: a folder of IDX files (e.g.\n"
               "/usr/share/datasets/fashion-mnist), a CIFAR folder or an HDF5 file. info prints each split's\n"
               "sample count, classes, image shape and per-channel mean/std; pack writes /train and /test groups\n"
               "with images (N, H, W, C) uint8 and labels (N,) int64, chunked and deflate-compressed.\n");
}

static int info(vt_dataset *ds, const char *split)
{
    size_t px = (size_t)ds->h * ds->w * ds->c;
    uint8_t *pix = malloc(px);
    double sum[64] = {0}, sq[64] = {0};
    int64_t *hist = calloc((size_t)ds->num_classes, sizeof *hist);
    for (int64_t i = 0; i < ds->count; i++) {
        int label;
        if (ds->read(ds, i, pix, &label) != VT_OK) {
            free(pix);
            free(hist);
            return VT_ERR;
        }
        if (label >= 0 && label < ds->num_classes) hist[label]++;
        for (size_t k = 0; k < px; k++) {
            double v = pix[k] / 255.0;
            sum[k % (size_t)ds->c] += v;
            sq[k % (size_t)ds->c] += v * v;
        }
    }
    double n = (double)ds->count * ds->h * ds->w;
    printf("%s: %lld images %dx%dx%d (%s), %d classes\n  per class:", split, (long long)ds->count, ds->h, ds->w, ds->c,
           ds->format, ds->num_classes);
    for (int k = 0; k < ds->num_classes && k < 100; k++) printf(" %lld", (long long)hist[k]);
    printf("\n  mean:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sum[c] / n);
    printf("  std:");
    for (int c = 0; c < ds->c; c++) printf(" %.4f", sqrt(fmax(sq[c] / n - (sum[c] / n) * (sum[c] / n), 0)));
    printf("\n");
    free(pix);
    free(hist);
    return VT_OK;
}

static int pack(vt_dataset *ds, vt_h5id f, const char *group)
{
    size_t px = (size_t)ds->h * ds->w * ds->c;
    uint8_t *all = malloc(px * (size_t)ds->count + 1);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)(ds->count + 1));
    int r = (all && labels) ? VT_OK : vt_err("out of memory packing %lld images", (long long)ds->count);
    for (int64_t i = 0; r == VT_OK && i < ds->count; i++) {
        int label;
        r = ds->read(ds, i, all + (size_t)i * px, &label);
        labels[i] = label;
    }
    char p[256];
    snprintf(p, sizeof p, "%s/images", group);
    if (r == VT_OK) r = vt_h5_write_u8(f, p, all, 4, (int64_t[]){ds->count, ds->h, ds->w, ds->c}, 4);
    snprintf(p, sizeof p, "%s/labels", group);
    if (r == VT_OK) r = vt_h5_write_i64(f, p, labels, 1, (int64_t[]){ds->count});
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, p, "num_classes", ds->num_classes);
    free(all);
    free(labels);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "info") && strcmp(argv[1], "pack"))) {
        usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    bool is_pack = strcmp(argv[1], "pack") == 0;
    if (is_pack && argc < 4) {
        usage(stderr);
        return 2;
    }
    const char *format = "auto";
    for (int i = 2; i < argc - 1; i++)
        if (strcmp(argv[i], "--format") == 0) format = argv[i + 1];
    vt_h5id out = -1;
    if (is_pack && (out = vt_h5_create(argv[3])) < 0) {
        fprintf(stderr, "vit-data: %s\n", vt_errmsg());
        return 1;
    }
    int found = 0;
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        vt_dataset *ds;
        if (vt_dataset_open(&ds, argv[2], splits[s], format, "images", "labels") != VT_OK) {
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());
            if (out >= 0) vt_h5_close(out);
            return 1;
        }
        if (!ds) continue;
        found++;
        char g[16];
        snprintf(g, sizeof g, "/%s", splits[s]);
        int r = is_pack ? pack(ds, out, g) : info(ds, splits[s]);
        if (r == VT_OK && is_pack) printf("%s: %lld images -> %s%s\n", splits[s], (long long)ds->count, argv[3], g);
        vt_dataset_close(ds);
        if (r != VT_OK) {
            fprintf(stderr, "vit-data: %s\n", vt_errmsg());
            if (out >= 0) vt_h5_close(out);
            return 1;
        }
    }
    if (out >= 0) vt_h5_close(out);
    if (!found) {
        fprintf(stderr, "vit-data: %s: no split found\n", argv[2]);
        return 1;
    }
    return 0;
}
