/* cifar.c - CIFAR-10 (data_batch_1..5.bin, test_batch.bin; 1 label byte + 3072 pixel bytes) and
 * CIFAR-100 (train.bin, test.bin; coarse + fine label bytes + 3072) binary batches; fine labels. */
#include "data.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    uint8_t *pixels;   /* count * 32 * 32 * 3, stored (h, w, c) */
    uint8_t *labels;
} cifar_impl;

static int cifar_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    cifar_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range", ds->path, (long long)i);
    memcpy(pixels, m->pixels + (size_t)i * 3072, 3072);
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
    free(ds);
}

/* append the records of one batch file */
static int load_file(const char *path, int label_bytes, cifar_impl *m, int64_t *count, int64_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    long rec = 3072 + label_bytes;
    if (len <= 0 || len % rec) {
        fclose(f);
        return vt_err("%s: %ld bytes is not a whole number of %ld-byte CIFAR records (truncated?)", path, len, rec);
    }
    int64_t n = len / rec;
    if (*count + n > *cap) {
        int64_t nc = (*count + n) * 2;
        uint8_t *p = realloc(m->pixels, (size_t)nc * 3072), *l = p ? realloc(m->labels, (size_t)nc) : NULL;
        if (p) m->pixels = p;
        if (l) m->labels = l;
        if (!p || !l) {
            fclose(f);
            return vt_err("out of memory");
        }
        *cap = nc;
    }
    uint8_t buf[3074];
    for (int64_t i = 0; i < n; i++) {
        if (fread(buf, 1, (size_t)rec, f) != (size_t)rec) {
            fclose(f);
            return vt_err("%s: read error at record %lld", path, (long long)i);
        }
        int64_t k = *count + i;
        m->labels[k] = buf[label_bytes - 1];
        /* planar R, G, B (32x32 each) -> (h, w, c) */
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++) m->pixels[(size_t)k * 3072 + (size_t)p * 3 + c] = buf[label_bytes + c * 1024 + p];
    }
    fclose(f);
    *count += n;
    return VT_OK;
}

int vt_cifar_open(vt_dataset **out, const char *dir, const char *split);
int vt_cifar_open(vt_dataset **out, const char *dir, const char *split)
{
    *out = NULL;
    bool test = strcmp(split, "test") == 0;
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, test ? "test.bin" : "train.bin");
    bool c100 = stat(p, &st) == 0;
    cifar_impl *m = calloc(1, sizeof *m);
    if (!m) return vt_err("out of memory");
    int64_t count = 0, cap = 0;
    int r = VT_OK, files = 0;
    if (c100) {
        r = load_file(p, 2, m, &count, &cap);
        files = 1;
    } else if (test) {
        snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        if (stat(p, &st) == 0) {
            r = load_file(p, 1, m, &count, &cap);
            files = 1;
        }
    } else {
        for (int b = 1; b <= 5 && r == VT_OK; b++) {
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b);
            if (stat(p, &st) != 0) continue;
            r = load_file(p, 1, m, &count, &cap);
            files++;
        }
    }
    if (r != VT_OK || files == 0) {
        free(m->pixels);
        free(m->labels);
        free(m);
        if (r != VT_OK) return VT_ERR;
        return test ? VT_OK : vt_err("%s: no CIFAR batches (data_batch_N.bin or train.bin)", dir);
    }
    int maxl = 0;
    for (int64_t i = 0; i < count; i++) maxl = m->labels[i] > maxl ? m->labels[i] : maxl;
    vt_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        free(m->pixels);
        free(m->labels);
        free(m);
        return vt_err("out of memory");
    }
    snprintf(ds->path, sizeof ds->path, "%s", dir);
    ds->format = "cifar";
    ds->count = count;
    ds->num_classes = c100 ? 100 : 10;
    if (maxl >= ds->num_classes) {
        free(ds);
        free(m->pixels);
        free(m->labels);
        free(m);
        return vt_err("%s: label %d outside the %s classes", dir, maxl, c100 ? "100" : "10");
    }
    ds->h = ds->w = 32;
    ds->c = 3;
    ds->read = cifar_read;
    ds->close = cifar_close;
    ds->impl = m;
    *out = ds;
    return VT_OK;
}
