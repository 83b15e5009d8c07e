/* h5pack.c - write any readable dataset into the HDF5 layout h5data.c reads: <group>/images uint8
 * (N, H, W, C), deflated chunks of about 64 KiB along N, written one block of samples at a time;
 * <group>/labels int64 (N,) with attributes num_classes and class_names. */
#include "data_internal.h"
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

/* the images dataset, created empty: (n, h, w, c) uint8, chunk rows along n */
static hid_t create_images(vt_h5id f, const char *path, const vt_dataset *ds, hsize_t rows)
{
    hsize_t dims[4] = {(hsize_t)ds->count, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    hsize_t chunk[4] = {rows, dims[1], dims[2], dims[3]};
    hid_t s = H5Screate_simple(4, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 4, chunk);
    H5Pset_deflate(pl, 4);
    hid_t d = H5Dcreate2((hid_t)f, path, H5T_STD_U8LE, s, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Pclose(pl);
    H5Sclose(s);
    return d;
}

/* samples [i0, i0 + n) (n, h, w, c) from buf into the images dataset */
static herr_t write_block(hid_t d, const vt_dataset *ds, int64_t i0, int64_t n, const uint8_t *buf)
{
    hsize_t start[4] = {(hsize_t)i0, 0, 0, 0}, cnt[4] = {(hsize_t)n, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(4, cnt, NULL);
    herr_t r = H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return r;
}

static int write_names(vt_h5id f, const char *lp, const vt_dataset *ds)
{
    if (!ds->class_names) return VT_OK;
    size_t len = 1;
    for (int k = 0; k < ds->num_classes; k++) len += strlen(ds->class_names[k]) + 1;
    char *text = malloc(len), *p = text;
    if (!text) return vt_err("out of memory");
    for (int k = 0; k < ds->num_classes; k++) p += sprintf(p, "%s%s", k ? "\n" : "", ds->class_names[k]);
    int r = vt_h5_write_attr_str(f, lp, "class_names", text);
    free(text);
    return r;
}

int vt_dataset_pack_h5(vt_dataset *ds, vt_h5id f, const char *group)
{
    char ip[512], lp[512], fname[512];
    snprintf(ip, sizeof ip, "%s/images", group);
    snprintf(lp, sizeof lp, "%s/labels", group);
    vt_h5_filename(f, fname, sizeof fname);
    size_t px = (size_t)ds->h * ds->w * ds->c;
    hsize_t rows = (65536 + px - 1) / px;
    if (rows > (hsize_t)ds->count) rows = (hsize_t)ds->count;
    if (rows < 1) rows = 1;
    int64_t block = (int64_t)rows * ((4u << 20) / (rows * px) + 1);   /* whole chunks, about 4 MiB */
    uint8_t *buf = malloc(px * (size_t)block);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)(ds->count + 1));
    if (!buf || !labels) {
        free(buf);
        free(labels);
        return vt_err("%s: out of memory packing %lld images", fname, (long long)ds->count);
    }
    vt_h5_lock();
    int r = vt_h5_mkgroup(f, group);
    hid_t d = r == VT_OK ? create_images(f, ip, ds, rows) : -1;
    if (r == VT_OK && d < 0) r = vt_err("%s: cannot create dataset %s (does it exist already?)", fname, ip);
    for (int64_t i0 = 0; r == VT_OK && i0 < ds->count; i0 += block) {
        int64_t n = ds->count - i0 < block ? ds->count - i0 : block;
        for (int64_t i = 0; r == VT_OK && i < n; i++) {
            int label;
            r = ds->read(ds, i0 + i, buf + (size_t)i * px, &label);
            labels[i0 + i] = label;
        }
        if (r == VT_OK && write_block(d, ds, i0, n, buf) < 0)
            r = vt_err("%s: cannot write images %lld..%lld of %s (disk full?)", fname, (long long)i0,
                       (long long)(i0 + n - 1), ip);
    }
    if (d >= 0) H5Dclose(d);
    if (r == VT_OK) r = vt_h5_write_i64(f, lp, labels, 1, (int64_t[]){ds->count});
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, lp, "num_classes", ds->num_classes);
    if (r == VT_OK) r = write_names(f, lp, ds);
    vt_h5_unlock();
    free(buf);
    free(labels);
    return r;
}
