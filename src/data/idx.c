/* idx.c - MNIST-style IDX files (images: magic 0x00000803, labels: 0x00000801), plain or gzip. */
#include "data.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct {
    uint8_t *images;   /* count * h * w */
    uint8_t *labels;   /* count */
} idx_impl;

/* read a whole (possibly gzip-compressed) file; gzread reads plain files as they are */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g) return vt_err("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            gzclose(g);
            return vt_err("%s: out of memory", path);
        }
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(g);
                return vt_err("%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        int r = gzread(g, buf + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
        if (r < 0) {
            int e;
            const char *msg = gzerror(g, &e);
            free(buf);
            vt_err("%s: corrupted or truncated compressed data (%s)", path, msg);
            gzclose(g);
            return VT_ERR;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    int zr = gzclose(g);
    if (zr != Z_OK) {
        free(buf);
        return vt_err("%s: corrupted or truncated compressed data", path);
    }
    *out = buf;
    *len = n;
    return VT_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int idx_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    idx_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range", ds->path, (long long)i);
    size_t sz = (size_t)ds->h * ds->w;
    memcpy(pixels, m->images + (size_t)i * sz, sz);
    *label = m->labels[i];
    return VT_OK;
}

static void idx_close(vt_dataset *ds)
{
    idx_impl *m = ds->impl;
    if (m) {
        free(m->images);
        free(m->labels);
        free(m);
    }
    free(ds);
}

/* find <dir>/<stem> or <dir>/<stem>.gz (also the t10k names with dots instead of dashes) */
static bool find_file(const char *dir, const char *stem, char *out, size_t n)
{
    const char *fmts[] = {"%s/%s", "%s/%s.gz"};
    struct stat st;
    for (int k = 0; k < 2; k++) {
        snprintf(out, n, fmts[k], dir, stem);
        if (stat(out, &st) == 0) return true;
    }
    return false;
}

int vt_idx_open(vt_dataset **out, const char *dir, const char *split);
int vt_idx_open(vt_dataset **out, const char *dir, const char *split)
{
    *out = NULL;
    const char *prefix = strcmp(split, "test") == 0 ? "t10k" : "train";
    char ip[2048], lp[2048], stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    bool hi = find_file(dir, stem, ip, sizeof ip);
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
    bool hl = find_file(dir, stem, lp, sizeof lp);
    if (!hi && !hl) {
        if (strcmp(split, "test") == 0) return VT_OK;   /* no test split */
        return vt_err("%s: no %s-images-idx3-ubyte[.gz] / %s-labels-idx1-ubyte[.gz] found", dir, prefix, prefix);
    }
    if (!hi || !hl)
        return vt_err("%s: found %s but not its %s file", dir, hi ? ip : lp, hi ? "labels" : "images");
    uint8_t *ib = NULL, *lb = NULL;
    size_t il, ll;
    if (slurp(ip, &ib, &il) != VT_OK) return VT_ERR;
    if (slurp(lp, &lb, &ll) != VT_OK) {
        free(ib);
        return VT_ERR;
    }
    int rc = VT_ERR;
    if (il < 16 || be32(ib) != 0x00000803) {
        vt_err("%s: not an IDX image file (expected magic 0x00000803 and a 16-byte header)", ip);
        goto fail;
    }
    if (ll < 8 || be32(lb) != 0x00000801) {
        vt_err("%s: not an IDX label file (expected magic 0x00000801 and an 8-byte header)", lp);
        goto fail;
    }
    uint32_t n = be32(ib + 4), h = be32(ib + 8), w = be32(ib + 12), nl = be32(lb + 4);
    if (h == 0 || w == 0 || h > 65536 || w > 65536) {
        vt_err("%s: bad image size %ux%u", ip, h, w);
        goto fail;
    }
    if (il != 16 + (size_t)n * h * w) {
        vt_err("%s: header says %u images of %ux%u (%zu bytes), the file holds %zu bytes (truncated?)", ip, n, h, w,
               16 + (size_t)n * h * w, il);
        goto fail;
    }
    if (ll != 8 + (size_t)nl) {
        vt_err("%s: header says %u labels, the file holds %zu bytes (truncated?)", lp, nl, ll - 8);
        goto fail;
    }
    if (nl != n) {
        vt_err("%s has %u images but %s has %u labels", ip, n, lp, nl);
        goto fail;
    }
    vt_dataset *ds = calloc(1, sizeof *ds);
    idx_impl *m = calloc(1, sizeof *m);
    if (!ds || !m) {
        free(ds);
        free(m);
        vt_err("out of memory");
        goto fail;
    }
    m->images = malloc((size_t)n * h * w + 1);
    m->labels = malloc((size_t)n + 1);
    if (!m->images || !m->labels) {
        free(m->images);
        free(m->labels);
        free(m);
        free(ds);
        vt_err("out of memory");
        goto fail;
    }
    memcpy(m->images, ib + 16, (size_t)n * h * w);
    memcpy(m->labels, lb + 8, n);
    int maxl = 0;
    for (uint32_t i = 0; i < n; i++) maxl = m->labels[i] > maxl ? m->labels[i] : maxl;
    snprintf(ds->path, sizeof ds->path, "%s", dir);
    ds->format = "idx";
    ds->count = n;
    ds->num_classes = maxl + 1;
    ds->h = (int)h;
    ds->w = (int)w;
    ds->c = 1;
    ds->read = idx_read;
    ds->close = idx_close;
    ds->impl = m;
    *out = ds;
    rc = VT_OK;
fail:
    free(ib);
    free(lb);
    return rc;
}
