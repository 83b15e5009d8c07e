/* h5data.c - HDF5 datasets: images uint8 (N, H, W, C) or (N, H, W) and integer labels (N,), at the
 * root (train only) or in /train and /test groups. Samples are read one hyperslab at a time, never
 * the whole file; the serial HDF5 library is not thread-safe, so reads hold a lock. */
#include "data.h"
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define h5_lock_acquire() vt_h5_lock()
#define h5_lock_release() vt_h5_unlock()

typedef struct {
    hid_t file, images, labels;
} h5_impl;

static int h5_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    h5_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range", ds->path, (long long)i);
    h5_lock_acquire();
    hid_t fs = H5Dget_space(m->images);
    hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, cnt[4] = {1, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    int nd = H5Sget_simple_extent_ndims(fs);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(nd, cnt, NULL);
    herr_t r = H5Dread(m->images, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, pixels);
    H5Sclose(ms);
    H5Sclose(fs);
    int64_t lab = -1;
    if (r >= 0) {
        hid_t ls = H5Dget_space(m->labels);
        hsize_t ls0 = (hsize_t)i, one = 1;
        H5Sselect_hyperslab(ls, H5S_SELECT_SET, &ls0, NULL, &one, NULL);
        hid_t lm = H5Screate_simple(1, &one, NULL);
        r = H5Dread(m->labels, H5T_NATIVE_INT64, lm, ls, H5P_DEFAULT, &lab);
        H5Sclose(lm);
        H5Sclose(ls);
    }
    h5_lock_release();
    if (r < 0) return vt_err("%s: cannot read sample %lld (corrupted file?)", ds->path, (long long)i);
    if (lab < 0 || lab >= ds->num_classes)
        return vt_err("%s: label %lld of sample %lld outside [0, %d)", ds->path, (long long)lab, (long long)i,
                      ds->num_classes);
    *label = (int)lab;
    return VT_OK;
}

static void h5_close(vt_dataset *ds)
{
    h5_impl *m = ds->impl;
    if (m) {
        h5_lock_acquire();
        H5Dclose(m->images);
        H5Dclose(m->labels);
        H5Fclose(m->file);
        h5_lock_release();
        free(m);
    }
    free(ds);
}

int vt_h5data_open(vt_dataset **out, const char *path, const char *split, const char *images_key, const char *labels_key);
int vt_h5data_open(vt_dataset **out, const char *path, const char *split, const char *images_key, const char *labels_key)
{
    *out = NULL;
    h5_lock_acquire();
    int rc = VT_ERR;
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) goto done;
    char ip[512], lp[512];
    bool test = strcmp(split, "test") == 0;
    if (vt_h5_is_group(f, test ? "test" : "train")) {
        snprintf(ip, sizeof ip, "%s/%s", test ? "test" : "train", images_key);
        snprintf(lp, sizeof lp, "%s/%s", test ? "test" : "train", labels_key);
    } else if (test) {
        vt_h5_close(f);
        rc = VT_OK;   /* no test split */
        goto done;
    } else {
        snprintf(ip, sizeof ip, "%s", images_key);
        snprintf(lp, sizeof lp, "%s", labels_key);
    }
    int nd, nl;
    int64_t sh[8], lsh[8];
    if (vt_h5_shape(f, ip, &nd, sh) != VT_OK || vt_h5_shape(f, lp, &nl, lsh) != VT_OK) {
        vt_h5_close(f);
        goto done;
    }
    if (nd != 3 && nd != 4) {
        vt_err("%s: %s must be (N, H, W, C) or (N, H, W) uint8", path, ip);
        vt_h5_close(f);
        goto done;
    }
    if (nl != 1 || lsh[0] != sh[0]) {
        vt_err("%s: %s has %lld images but %s is not (%lld,)", path, ip, (long long)sh[0], lp, (long long)sh[0]);
        vt_h5_close(f);
        goto done;
    }
    /* labels: read once to find the class count (N int64 values, small next to the images) */
    int64_t *labs;
    if (vt_h5_read_i64(f, lp, &labs, NULL, NULL) != VT_OK) {
        vt_h5_close(f);
        goto done;
    }
    int64_t maxl = -1, minl = 0;
    for (int64_t i = 0; i < sh[0]; i++) {
        if (labs[i] > maxl) maxl = labs[i];
        if (labs[i] < minl) minl = labs[i];
    }
    free(labs);
    if (minl < 0) {
        vt_err("%s: negative label in %s", path, lp);
        vt_h5_close(f);
        goto done;
    }
    int64_t ncls = maxl + 1;
    if (vt_h5_has_attr(f, lp, "num_classes")) vt_h5_attr_i64(f, lp, "num_classes", &ncls);
    vt_dataset *ds = calloc(1, sizeof *ds);
    h5_impl *m = calloc(1, sizeof *m);
    if (!ds || !m) {
        free(ds);
        free(m);
        vt_h5_close(f);
        vt_err("out of memory");
        goto done;
    }
    m->file = (hid_t)f;
    m->images = H5Dopen2(m->file, ip, H5P_DEFAULT);
    m->labels = H5Dopen2(m->file, lp, H5P_DEFAULT);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->format = "hdf5";
    ds->count = sh[0];
    ds->num_classes = (int)(ncls > 0 ? ncls : 1);
    ds->h = (int)sh[1];
    ds->w = (int)sh[2];
    ds->c = nd == 4 ? (int)sh[3] : 1;
    ds->read = h5_read;
    ds->close = h5_close;
    ds->impl = m;
    *out = ds;
    rc = VT_OK;
done:
    h5_lock_release();
    return rc;
}
