/* cifar.c - CIFAR-10 (data_batch_1..5.bin, test_batch.bin; records of 1 label byte + 3072 pixel
 * bytes) and CIFAR-100 (train.bin, test.bin; coarse + fine label bytes + 3072) binary batches.
 * Pixels are stored planar R, G, B (32x32 each) and delivered (h, w, c). Class names from
 * batches.meta.txt (CIFAR-10) or fine_label_names.txt / coarse_label_names.txt (CIFAR-100). */
#include "data_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_PIX = 3072 };

typedef struct {
    uint8_t *pixels;   /* count * (32, 32, 3) */
    uint8_t *labels;
} cifar_impl;

/* pixels (32, 32, 3) of sample i */
static int cifar_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    cifar_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range [0, %lld)", ds->path, (long long)i, (long long)ds->count);
    memcpy(pixels, m->pixels + (size_t)i * CIFAR_PIX, CIFAR_PIX);
    *label = m->labels[i];
    return VT_OK;
}

static void cifar_close(vt_dataset *ds)
{
    cifar_impl *m = ds->impl;
    if (m) {
        free(m->pixels);
        free(m->labels);
        free(m);
    }
    vt_dataset_free_base(ds);
}

/* append the records of one batch file; label_at: which label byte of the label_bytes to keep;
 * labels must be below ncls */
static int load_file(const char *path, int label_bytes, int label_at, int ncls, cifar_impl *m, int64_t *count,
                     int64_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    long rec = CIFAR_PIX + label_bytes;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size % rec) {
        fclose(f);
        return vt_err("%s: %lld bytes is not a whole number of %ld-byte CIFAR-%s records (truncated?)", path,
                      (long long)st.st_size, rec, label_bytes == 1 ? "10" : "100");
    }
    int64_t n = st.st_size / rec;
    if (*count + n > *cap) {
        int64_t nc = (*count + n) * 2;
        uint8_t *p = realloc(m->pixels, (size_t)nc * CIFAR_PIX);
        if (p) m->pixels = p;
        uint8_t *l = p ? realloc(m->labels, (size_t)nc) : NULL;
        if (l) m->labels = l;
        if (!p || !l) {
            fclose(f);
            return vt_err("%s: out of memory", path);
        }
        *cap = nc;
    }
    uint8_t buf[CIFAR_PIX + 2];
    for (int64_t i = 0; i < n; i++) {
        if (fread(buf, 1, (size_t)rec, f) != (size_t)rec) {
            fclose(f);
            return vt_err("%s: read error at record %lld", path, (long long)i);
        }
        int64_t k = *count + i;
        int lab = buf[label_at];
        if (lab >= ncls) {
            fclose(f);
            return vt_err("%s: record %lld has label %d, expected 0..%d", path, (long long)i, lab, ncls - 1);
        }
        m->labels[k] = (uint8_t)lab;
        uint8_t *dst = m->pixels + (size_t)k * CIFAR_PIX;
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++) dst[p * 3 + c] = buf[label_bytes + c * 1024 + p];
    }
    fclose(f);
    *count += n;
    return VT_OK;
}

int vt_cifar_open(vt_dataset **out, const char *dir, const char *split, const vt_data_options *o)
{
    *out = NULL;
    bool test = strcmp(split, "test") == 0;
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, "train.bin");
    bool c100 = stat(p, &st) == 0;
    if (!c100) {
        snprintf(p, sizeof p, "%s/%s", dir, "test.bin");
        c100 = stat(p, &st) == 0;
    }
    int native = c100 ? (o->cifar_coarse ? 20 : 100) : 10;
    int ncls = o->num_classes > 0 ? o->num_classes : native;
    cifar_impl *m = calloc(1, sizeof *m);
    if (!m) return vt_err("%s: out of memory", dir);
    int64_t count = 0, cap = 0;
    int r = VT_OK, files = 0;
    if (c100) {
        snprintf(p, sizeof p, "%s/%s", dir, test ? "test.bin" : "train.bin");
        if (stat(p, &st) == 0) {
            r = load_file(p, 2, o->cifar_coarse ? 0 : 1, ncls, m, &count, &cap);
            files = 1;
        }
    } else if (test) {
        snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        if (stat(p, &st) == 0) {
            r = load_file(p, 1, 0, ncls, m, &count, &cap);
            files = 1;
        }
    } else {
        char missing[64] = "";
        for (int b = 1; b <= 5 && r == VT_OK; b++) {
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b);
            if (stat(p, &st) != 0) {
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%d", missing[0] ? ", " : "", b);
                continue;
            }
            r = load_file(p, 1, 0, ncls, m, &count, &cap);
            files++;
        }
        if (r == VT_OK && files > 0 && missing[0])   /* a partial download would train on part of the set unnoticed */
            r = vt_err("%s: CIFAR-10 has five training batches, data_batch_%s.bin %s missing (an incomplete download?)",
                       dir, missing, strchr(missing, ',') ? "are" : "is");
    }
    vt_dataset *ds = NULL;
    if (r != VT_OK || files == 0) {
        if (r == VT_OK && !test) vt_err("%s: expected CIFAR batches (data_batch_N.bin or train.bin), found none", dir);
        goto fail;
    }
    if (!(ds = vt_dataset_alloc(dir, "cifar"))) goto fail;
    char np[2048];
    snprintf(np, sizeof np, "%s/%s", dir, !c100 ? "batches.meta.txt" : o->cifar_coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
    char **names;
    int nn;
    if (vt_read_names(np, &names, &nn) != VT_OK) goto fail;
    if (names && nn != ncls) {
        vt_free_names(names, nn);
        vt_err("%s names %d classes, expected %d", np, nn, ncls);
        goto fail;
    }
    ds->class_names = names;
    ds->count = count;
    ds->num_classes = ncls;
    ds->h = ds->w = 32;
    ds->c = 3;
    ds->read = cifar_read;
    ds->close = cifar_close;
    ds->impl = m;
    *out = ds;
    return VT_OK;
fail:
    vt_dataset_free_base(ds);
    free(m->pixels);
    free(m->labels);
    free(m);
    return r == VT_OK && test && files == 0 ? VT_OK : VT_ERR;
}
