/* idx.c - MNIST-style IDX files (images: magic 0x00000803, labels: 0x00000801), plain or gzip.
 * Class names come from an optional classes.txt beside the files (one per line); a folder whose
 * name contains "fashion" with 10 classes gets Fashion-MNIST's names. */
#include "data_internal.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct {
    uint8_t *ibuf, *lbuf;   /* whole files: header + data */
} idx_impl;

static const char *fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

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
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int r = gzread(g, buf + n, (unsigned)want);
        if (r < 0) {
            int e;
            vt_err("%s: corrupted or truncated compressed data (%s)", path, gzerror(g, &e));
            free(buf);
            gzclose(g);
            return VT_ERR;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (gzclose(g) != Z_OK) {
        free(buf);
        return vt_err("%s: corrupted or truncated compressed data (the gzip stream ends early)", path);
    }
    uint8_t *fit = realloc(buf, n ? n : 1);   /* give back the doubling slack */
    *out = fit ? fit : buf;
    *len = n;
    return VT_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* the header of an IDX file of len bytes (decompressed): the 4-byte magic, then ndim 4-byte dimensions */
static int check_header(const char *path, const uint8_t *b, size_t len, uint32_t magic, const char *what, int ndim)
{
    size_t need = 4 + 4 * (size_t)ndim;
    if (len == 0)
        return vt_err("%s: the file is empty (expected an IDX %s file: magic 0x%08x and a %zu-byte header)", path, what,
                      magic, need);
    if (len < 4)
        return vt_err("%s: the file holds only %zu bytes, too short for the 4-byte magic of an IDX %s file (0x%08x)",
                      path, len, what, magic);
    if (be32(b) != magic)
        return vt_err("%s: not an IDX %s file (expected magic 0x%08x and a %zu-byte header, found 0x%08x)", path, what,
                      magic, need, be32(b));
    if (len < need)
        return vt_err("%s: the IDX %s header is truncated: expected %zu bytes of dimensions (%d x 4) after the magic "
                      "0x%08x, the file ends %zu bytes after it",
                      path, what, need - 4, ndim, magic, len - 4);
    return VT_OK;
}

/* pixels (h, w, 1) of image i */
static int idx_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    idx_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range [0, %lld)", ds->path, (long long)i, (long long)ds->count);
    size_t sz = (size_t)ds->h * ds->w;
    memcpy(pixels, m->ibuf + 16 + (size_t)i * sz, sz);
    *label = m->lbuf[8 + i];
    return VT_OK;
}

static void idx_close(vt_dataset *ds)
{
    idx_impl *m = ds->impl;
    if (m) {
        free(m->ibuf);
        free(m->lbuf);
        free(m);
    }
    vt_dataset_free_base(ds);
}

/* find <dir>/<stem> or <dir>/<stem>.gz */
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

static bool name_has_fashion(const char *dir)
{
    const char *b = dir + strlen(dir);
    while (b > dir && b[-1] == '/') b--;
    const char *e = b;
    while (b > dir && b[-1] != '/') b--;
    char low[256];
    size_t n = (size_t)(e - b) < sizeof low - 1 ? (size_t)(e - b) : sizeof low - 1;
    for (size_t k = 0; k < n; k++) low[k] = (char)tolower((unsigned char)b[k]);
    low[n] = 0;
    return strstr(low, "fashion") != NULL;
}

/* class names and count: classes.txt, else Fashion-MNIST's, else max label + 1; checks labels */
static int set_classes(vt_dataset *ds, const char *dir, const char *lp, const uint8_t *labels, uint32_t n,
                       const vt_data_options *o)
{
    char np[2048];
    snprintf(np, sizeof np, "%s/classes.txt", dir);
    char **names;
    int nn;
    if (vt_read_names(np, &names, &nn) != VT_OK) return VT_ERR;
    int maxl = 0;
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; i++)
        if (labels[i] > maxl) maxl = labels[i], at = i;
    if (!names && maxl < 10 && name_has_fashion(dir) && (o->num_classes == 0 || o->num_classes == 10)) {
        names = calloc(10, sizeof *names);
        for (int k = 0; names && k < 10; k++)
            if (!(names[k] = strdup(fashion_names[k]))) {
                vt_free_names(names, k);
                names = NULL;
            }
        nn = names ? 10 : 0;
    }
    int ncls = o->num_classes > 0 ? o->num_classes : names ? nn : maxl + 1;
    if (names && nn != ncls) {
        vt_free_names(names, nn);
        return vt_err("%s names %d classes, expected %d", np, nn, ncls);
    }
    if (maxl >= ncls) {
        vt_free_names(names, nn);
        return vt_err("%s: label %d of sample %u is outside the %d classes (expected 0..%d)", lp, maxl, at, ncls,
                      ncls - 1);
    }
    ds->num_classes = ncls;
    ds->class_names = names;
    return VT_OK;
}

int vt_idx_open(vt_dataset **out, const char *dir, const char *split, const vt_data_options *o)
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
        return vt_err("%s: expected %s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz], found neither", dir,
                      prefix, prefix);
    }
    if (!hi || !hl)
        return vt_err("%s: found %s but not its %s file (%s-%s-idx%d-ubyte[.gz])", dir, hi ? ip : lp,
                      hi ? "labels" : "images", prefix, hi ? "labels" : "images", hi ? 1 : 3);
    uint8_t *ib = NULL, *lb = NULL;
    size_t il, ll;
    if (slurp(ip, &ib, &il) != VT_OK) return VT_ERR;
    if (slurp(lp, &lb, &ll) != VT_OK) {
        free(ib);
        return VT_ERR;
    }
    vt_dataset *ds = NULL;
    idx_impl *m = NULL;
    if (check_header(ip, ib, il, 0x00000803, "image", 3) != VT_OK ||
        check_header(lp, lb, ll, 0x00000801, "label", 1) != VT_OK)
        goto fail;
    uint32_t n = be32(ib + 4), h = be32(ib + 8), w = be32(ib + 12), nl = be32(lb + 4);
    if (h == 0 || w == 0 || h > 65536 || w > 65536) {
        vt_err("%s: image size %ux%u (expected 1..65536 per side)", ip, h, w);
        goto fail;
    }
    if (n == 0) {
        vt_err("%s: header says 0 images (expected at least one)", ip);
        goto fail;
    }
    if (il != 16 + (size_t)n * h * w) {
        vt_err("%s: header says %u images of %ux%u (%zu bytes), the file holds %zu bytes (%s)", ip, n, h, w,
               16 + (size_t)n * h * w, il, il < 16 + (size_t)n * h * w ? "truncated" : "trailing data");
        goto fail;
    }
    if (ll != 8 + (size_t)nl) {
        vt_err("%s: header says %u labels (%zu bytes), the file holds %zu bytes (%s)", lp, nl, 8 + (size_t)nl, ll,
               ll < 8 + (size_t)nl ? "truncated" : "trailing data");
        goto fail;
    }
    if (nl != n) {
        vt_err("%s has %u images but %s has %u labels (expected equal counts)", ip, n, lp, nl);
        goto fail;
    }
    ds = vt_dataset_alloc(dir, "idx");
    m = calloc(1, sizeof *m);
    if (!ds || !m) {
        vt_err("%s: out of memory", dir);
        goto fail;
    }
    if (set_classes(ds, dir, lp, lb + 8, n, o) != VT_OK) goto fail;
    m->ibuf = ib;
    m->lbuf = lb;
    ds->count = n;
    ds->h = (int)h;
    ds->w = (int)w;
    ds->c = 1;
    ds->read = idx_read;
    ds->close = idx_close;
    ds->impl = m;
    *out = ds;
    return VT_OK;
fail:
    free(m);
    vt_dataset_free_base(ds);
    free(ib);
    free(lb);
    return VT_ERR;
}
