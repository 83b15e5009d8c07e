/* h5data.c - HDF5 datasets: images uint8 (N, H, W, C) or (N, H, W) and integer labels (N,), at the
 * root (train only) or in /train and /test groups; names configurable. The labels (small) are
 * read once at open and checked; images are read one sample's hyperslab at a time, so HDF5 only
 * decompresses the chunk holding it, never the whole file. The serial HDF5 library is not
 * thread-safe, so every call holds vt_h5_lock. Optional attributes of the labels dataset:
 * num_classes, class_names (one per line). */
#include "data_internal.h"
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hid_t file, images;
    int *labels;       /* count */
    int ndim;          /* of images: 3 or 4 */
    char iname[512];   /* the images dataset's path */
} h5_impl;


/* pixels (h, w, c) of sample i */
static int h5_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    h5_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range [0, %lld)", ds->path, (long long)i, (long long)ds->count);
    hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, cnt[4] = {1, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    vt_h5_lock();
    vt_h5_quiet();
    hid_t fs = H5Dget_space(m->images);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(m->ndim, cnt, NULL);
    herr_t r = H5Dread(m->images, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, pixels);
    bool ck = r < 0 && vt_h5_checksum_failed();   /* before the closes clear HDF5's error stack */
    H5Sclose(ms);
    H5Sclose(fs);
    vt_h5_unlock();
    if (ck) return vt_err("%s: image %lld: dataset %s" VT_H5_CHECKSUM_BAD, ds->path, (long long)i, m->iname);
    if (r < 0) return vt_err("%s: cannot read image %lld (corrupted or truncated file?)", ds->path, (long long)i);
    *label = m->labels[i];
    return VT_OK;
}

static void h5_close(vt_dataset *ds)
{
    h5_impl *m = ds->impl;
    if (m) {
        vt_h5_lock();
        if (m->images >= 0) H5Dclose(m->images);
        if (m->file >= 0) H5Fclose(m->file);
        vt_h5_unlock();
        free(m->labels);
        free(m);
    }
    vt_dataset_free_base(ds);
}

/* "expected X, found <class><bits>" text for a dataset's element type */
static void type_name(hid_t d, char *buf, size_t n)
{
    hid_t t = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(t);
    int bits = (int)H5Tget_size(t) * 8;
    if (cls == H5T_INTEGER) snprintf(buf, n, "%s%d", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits);
    else if (cls == H5T_FLOAT) snprintf(buf, n, "float%d", bits);
    else if (cls == H5T_STRING) snprintf(buf, n, "string");
    else snprintf(buf, n, "a non-numeric type");
    H5Tclose(t);
}

/* a missing dataset: say what the group holds */
static int missing(vt_h5id f, const char *path, const char *group, const char *name, const char *what)
{
    char **names = NULL, list[512] = "";
    int n = 0;
    if (vt_h5_list(f, group, &names, &n) == VT_OK)
        for (int k = 0; k < n; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", names[k]);
    vt_h5_free_names(names, n);
    return vt_err("%s: no dataset '%s' in %s (expected %s; found: %s)", path, name, group, what, n ? list : "nothing");
}

static int set_classes(vt_dataset *ds, vt_h5id f, const char *lp, const int64_t *labs, int64_t n,
                       const vt_data_options *o)
{
    int64_t maxl = -1, at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labs[i] < 0)
            return vt_err("%s: label %lld of sample %lld in %s is negative", ds->path, (long long)labs[i], (long long)i, lp);
        if (labs[i] > maxl) maxl = labs[i], at = i;
    }
    int64_t ncls = maxl + 1;
    if (vt_h5_has_attr(f, lp, "num_classes") && vt_h5_attr_i64(f, lp, "num_classes", &ncls) != VT_OK) return VT_ERR;
    if (ncls == 0 && maxl <= 0 && vt_h5_has_attr(f, lp, "num_classes")) {   /* packed from images without classes */
        if (!o->unlabelled)
            return vt_err("%s: %s says 0 classes: images without classes (vit-data pack --unlabelled), which only "
                          "pretraining reads ([pretrain] objective = mae, masked_patch_color or masked_patch_pixels)",
                          ds->path, lp);
        ds->num_classes = 0;
        return VT_OK;
    }
    if (o->num_classes > 0) ncls = o->num_classes;
    if (ncls < 1 || ncls > (1 << 24)) return vt_err("%s: %s says %lld classes (expected 1..2^24)", ds->path, lp, (long long)ncls);
    if (maxl >= ncls)
        return vt_err("%s: label %lld of sample %lld in %s is outside the %lld classes (expected 0..%lld)", ds->path,
                      (long long)maxl, (long long)at, lp, (long long)ncls, (long long)ncls - 1);
    ds->num_classes = (int)ncls;
    if (!vt_h5_has_attr(f, lp, "class_names")) return VT_OK;
    size_t cap = 1 << 20;
    char *text = malloc(cap);
    if (!text) return vt_err("%s: out of memory", ds->path);
    if (vt_h5_attr_str(f, lp, "class_names", text, cap) != VT_OK) {
        free(text);
        return VT_ERR;
    }
    char **names = calloc((size_t)ncls, sizeof *names);
    int k = 0;
    for (char *s = text, *e; names && *s && k < ncls; s = *e ? e + 1 : e, k++) {
        e = s + strcspn(s, "\n");
        names[k] = strndup(s, (size_t)(e - s));
        if (!names[k]) {
            vt_free_names(names, k);
            names = NULL;
        }
    }
    free(text);
    if (!names) return vt_err("%s: out of memory", ds->path);
    if (k != ncls) {
        vt_free_names(names, (int)ncls);
        return vt_err("%s: attribute class_names of %s names %d classes, expected %lld", ds->path, lp, k, (long long)ncls);
    }
    ds->class_names = names;
    return VT_OK;
}

/* A dataset's storage layout, checked before any read: HDF5 1.10 trusts it, and a chunk larger than
 * the dataset (a flipped byte in the file) makes H5Dread write past its buffers. For a chunked
 * dataset *cbytes and *total are the elements of a chunk and of the dataset (0 when contiguous). */
static int check_layout(hid_t d, const char *path, const char *name, size_t *cbytes, size_t *total)
{
    hid_t cp = H5Dget_create_plist(d), sp = H5Dget_space(d);
    hsize_t chunk[8], dims[8], maxdims[8];
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    bool chunked = cp >= 0 && H5Pget_layout(cp) == H5D_CHUNKED;
    int nd = chunked ? H5Pget_chunk(cp, 8, chunk) : 0;
    bool ok = cp >= 0 && rank >= 0 && rank <= 8 && H5Sget_simple_extent_dims(sp, dims, maxdims) == rank &&
              (!chunked || nd == rank);
    size_t cb = 1, tot = 1;
    for (int k = 0; ok && chunked && k < nd; k++) {
        /* a fixed dimension holds chunks no larger than itself, an extendible one any (HDF5: < 2^32) */
        hsize_t lim = maxdims[k] == H5S_UNLIMITED ? (hsize_t)1 << 32 : (maxdims[k] > dims[k] ? maxdims[k] : dims[k]);
        ok = chunk[k] >= 1 && chunk[k] <= lim && chunk[k] <= ((size_t)1 << 32) / cb &&   /* HDF5: < 4 GiB a chunk */
             (!dims[k] || tot <= ((size_t)1 << 48) / dims[k]);                            /* as vt_h5_shape */
        if (!ok) break;
        cb *= chunk[k];
        tot *= dims[k];
    }
    if (ok && chunked && cb >= (size_t)1 << 32) ok = false;   /* HDF5's limit: 4 GiB per chunk */
    char cs[160] = "", ds[160] = "";
    for (int k = 0; !ok && k < rank && k < 8; k++)
        snprintf(ds + strlen(ds), sizeof ds - strlen(ds), "%s%llu", k ? ", " : "", (unsigned long long)dims[k]);
    for (int k = 0; !ok && chunked && k < nd && k < 8; k++)
        snprintf(cs + strlen(cs), sizeof cs - strlen(cs), "%s%llu", k ? ", " : "", (unsigned long long)chunk[k]);
    if (cp >= 0) H5Pclose(cp);
    if (sp >= 0) H5Sclose(sp);
    if (!ok && chunked && nd > 0)
        return vt_err("%s: dataset %s of shape (%s) says it is stored in chunks of (%s), which do not fit it (expected "
                      "each chunk dimension between 1 and the dataset's; corrupted file?)", path, name, ds, cs);
    if (!ok) return vt_err("%s: dataset %s: cannot read its shape and storage layout (corrupted file?)", path, name);
    *cbytes = chunked ? cb : 0;
    *total = chunked ? tot : 0;
    return VT_OK;
}

/* the images dataset with a chunk cache large enough to keep up to CACHE_MAX bytes of decompressed
 * chunks: shuffled reads of a dataset that fits decompress each chunk once, not once per sample
 * (HDF5's default is 1 MiB: 16 chunks of 64 KiB) */
#define CACHE_MAX ((size_t)128 << 20)
static hid_t open_images(hid_t f, const char *path, const char *ip)
{
    hid_t d = H5Dopen2(f, ip, H5P_DEFAULT);
    if (d < 0) {
        vt_err("%s: cannot open dataset %s", path, ip);
        return d;
    }
    size_t cbytes, total;
    if (check_layout(d, path, ip, &cbytes, &total) != VT_OK) {
        H5Dclose(d);
        return -1;
    }
    if (!cbytes) return d;   /* contiguous: reads go straight to the file */
    size_t want = total < CACHE_MAX ? total + cbytes : CACHE_MAX;
    size_t nchunks = want / cbytes + 1, nslots = nchunks * 25 + 1;
    for (bool prime = false; !prime; nslots += 2) {   /* a prime number of hash slots, as HDF5 advises */
        prime = true;
        for (size_t q = 3; q * q <= nslots && prime; q += 2) prime = nslots % q != 0;
        if (prime) break;
    }
    H5Dclose(d);   /* an open dataset keeps the cache it was first opened with */
    hid_t ap = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(ap, nslots, want, 1.0);
    d = H5Dopen2(f, ip, ap);
    H5Pclose(ap);
    if (d < 0) vt_err("%s: cannot open dataset %s", path, ip);
    return d;
}

/* with the lock held */
static int open_locked(vt_dataset **out, const char *path, const char *split, const vt_data_options *o)
{
    const char *ikey = o->images_key && *o->images_key ? o->images_key : "images";
    const char *lkey = o->labels_key && *o->labels_key ? o->labels_key : "labels";
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) return VT_ERR;
    char ip[512], lp[512];
    const char *group = strcmp(split, "test") == 0 ? "test" : "train";
    if (vt_h5_is_group(f, group)) {
        snprintf(ip, sizeof ip, "/%s/%s", group, ikey);
        snprintf(lp, sizeof lp, "/%s/%s", group, lkey);
    } else if (strcmp(group, "test") == 0) {
        vt_h5_close(f);
        return VT_OK;   /* no test split */
    } else {
        group = "";
        snprintf(ip, sizeof ip, "/%s", ikey);
        snprintf(lp, sizeof lp, "/%s", lkey);
    }
    vt_dataset *ds = NULL;
    h5_impl *m = NULL;
    int64_t *labs = NULL;
    int nd, nl;
    int64_t sh[8], lsh[8];
    char tn[32];
    char gname[64];
    snprintf(gname, sizeof gname, "/%s", group);
    if (!vt_h5_exists(f, ip)) {
        missing(f, path, gname, ikey, "images uint8 (N, H, W, C)");
        goto fail;
    }
    if (!vt_h5_exists(f, lp)) {
        missing(f, path, gname, lkey, "labels integer (N,)");
        goto fail;
    }
    if (vt_h5_shape(f, ip, &nd, sh) != VT_OK || vt_h5_shape(f, lp, &nl, lsh) != VT_OK) goto fail;
    if (!(ds = vt_dataset_alloc(path, "hdf5")) || !(m = calloc(1, sizeof *m))) goto fail;
    m->file = -1;
    m->images = open_images((hid_t)f, path, ip);
    snprintf(m->iname, sizeof m->iname, "%s", ip);
    if (m->images < 0) goto fail;
    type_name(m->images, tn, sizeof tn);
    if (strcmp(tn, "uint8") != 0) {
        vt_err("%s: %s holds %s, expected uint8 pixels", path, ip, tn);
        goto fail;
    }
    if ((nd != 3 && nd != 4) || sh[0] < 1 || sh[1] < 1 || sh[2] < 1 || (nd == 4 && (sh[3] < 1 || sh[3] > 4)) ||
        sh[1] > 65536 || sh[2] > 65536) {
        char s[128] = "";
        for (int k = 0; k < nd; k++) snprintf(s + strlen(s), sizeof s - strlen(s), "%s%lld", k ? ", " : "", (long long)sh[k]);
        vt_err("%s: %s has shape (%s), expected (N, H, W, C) with N >= 1 and C 1..4, or (N, H, W)", path, ip, s);
        goto fail;
    }
    if (nl != 1 || lsh[0] != sh[0]) {
        vt_err("%s: %s has %lld images but %s has %s%lld labels (expected equal counts)", path, ip, (long long)sh[0], lp,
               nl != 1 ? "a shape that is not (N,), " : "", nl >= 1 ? (long long)lsh[0] : 0LL);
        goto fail;
    }
    hid_t ld = H5Dopen2((hid_t)f, lp, H5P_DEFAULT);
    if (ld < 0) {
        vt_err("%s: cannot open dataset %s", path, lp);
        goto fail;
    }
    type_name(ld, tn, sizeof tn);
    size_t lcb, ltot;
    int lr = check_layout(ld, path, lp, &lcb, &ltot);
    H5Dclose(ld);
    if (lr != VT_OK) goto fail;
    if (strncmp(tn, "int", 3) != 0 && strncmp(tn, "uint", 4) != 0) {
        vt_err("%s: %s holds %s, expected integer labels", path, lp, tn);
        goto fail;
    }
    if (vt_h5_read_i64(f, lp, &labs, NULL, NULL) != VT_OK) goto fail;
    if (set_classes(ds, f, lp, labs, sh[0], o) != VT_OK) goto fail;
    if (!(m->labels = malloc(sizeof(int) * (size_t)sh[0]))) {
        vt_err("%s: out of memory", path);
        goto fail;
    }
    for (int64_t i = 0; i < sh[0]; i++) m->labels[i] = (int)labs[i];
    free(labs);
    m->file = (hid_t)f;
    m->ndim = nd;
    ds->count = sh[0];
    ds->h = (int)sh[1];
    ds->w = (int)sh[2];
    ds->c = nd == 4 ? (int)sh[3] : 1;
    ds->read = h5_read;
    ds->close = h5_close;
    ds->impl = m;
    *out = ds;
    return VT_OK;
fail:
    free(labs);
    if (m) {
        if (m->images > 0) H5Dclose(m->images);
        free(m->labels);
        free(m);
    }
    vt_dataset_free_base(ds);
    vt_h5_close(f);
    return VT_ERR;
}

int vt_h5data_open(vt_dataset **out, const char *path, const char *split, const vt_data_options *o)
{
    *out = NULL;
    vt_h5_lock();
    int r = open_locked(out, path, split, o);
    vt_h5_unlock();
    return r;
}
