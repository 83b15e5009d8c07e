/* h5write.c - writing HDF5 groups, datasets and attributes, with messages that name file and object
 * and the operating system's reason when the disk refuses. Every dataset but a scalar is chunked with a
 * Fletcher-32 checksum per chunk. */
#include "base_internal.h"
#include <hdf5.h>
#include <string.h>

int vt_h5_mkgroup(vt_h5id loc, const char *path)
{
    char fbuf[512];
    char buf[1024];
    size_t n = strlen(path);
    if (n >= sizeof buf) return vt_err("group path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (H5Lexists((hid_t)loc, buf, H5P_DEFAULT) <= 0) {
                hid_t g = H5Gcreate2((hid_t)loc, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                if (g < 0) return vt_err("%s: cannot create group %s", FNAME(loc), buf);
                H5Gclose(g);
            }
            buf[i] = c;
        }
    }
    return VT_OK;
}

static int parent_groups(vt_h5id loc, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return VT_OK;
    char buf[1024];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof buf) return vt_err("path too long: %s", path);
    memcpy(buf, path, n);
    buf[n] = '\0';
    return vt_h5_mkgroup(loc, buf);
}

/* chunk: the target bytes of a chunk (whole rows along the first dimension) */
static int write_any(vt_h5id loc, const char *path, const void *data, hid_t filetype, hid_t memtype, int ndim,
                     const int64_t *shape, int deflate, hsize_t chunk_bytes)
{
    char fbuf[512];
    if (parent_groups(loc, path) != VT_OK) return VT_ERR;
    hsize_t dims[8] = {0};
    hsize_t n = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = (hsize_t)shape[i];
        n *= dims[i];
    }
    hid_t s = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    if (ndim > 0 && n > 0) {
        /* chunks of whole rows; each carries a Fletcher-32 checksum of its stored bytes (the filter needs
         * chunks: deflated or not, every dataset is chunked), verified by HDF5 on every read */
        hsize_t chunk[8], row = H5Tget_size(filetype);
        for (int i = 1; i < ndim; i++) row *= dims[i];
        for (int i = 0; i < ndim; i++) chunk[i] = dims[i];
        hsize_t rows = row ? (chunk_bytes + row - 1) / row : 1;
        chunk[0] = rows < 1 ? 1 : (rows > dims[0] ? dims[0] : rows);
        H5Pset_chunk(plist, ndim, chunk);
        if (deflate > 0 && H5Tget_size(filetype) > 1) H5Pset_shuffle(plist);   /* bytes of equal rank together */
        if (deflate > 0) H5Pset_deflate(plist, (unsigned)deflate);
        H5Pset_fletcher32(plist);   /* last: it checksums the bytes as stored */
    }
    hid_t d = H5Dcreate2((hid_t)loc, path, filetype, s, H5P_DEFAULT, plist, H5P_DEFAULT);
    herr_t r = -1;
    char why[128] = "";
    if (d >= 0) {
        r = n ? H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
        if (r < 0) vt_h5_reason(why);
        /* chunked data may be written only now */
        if (H5Dclose(d) < 0 && r >= 0) r = -1, vt_h5_reason(why);
    }
    H5Pclose(plist);
    H5Sclose(s);
    if (r < 0) return vt_err("%s: cannot write dataset %s%s", FNAME(loc), path, why);
    return VT_OK;
}

/* Chunk sizes (bench/ckpt_bench.c): tensors and other numbers are read whole, and 1 MiB chunks cost a
 * ViT-Ti checkpoint 11 ms over contiguous data where 64 KiB chunks cost 27 (the Fletcher-32 sum adds ~19
 * either way); uint8 images are read one row (image) at a time, so their chunks stay about 64 KiB and
 * reading one decompresses little. */
enum { NUMBER_CHUNK = 1 << 20, IMAGE_CHUNK = 1 << 16 };

int vt_h5_write_f32(vt_h5id loc, const char *path, const float *data, int ndim, const int64_t *shape, int deflate)
{
    return write_any(loc, path, data, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, shape, deflate, NUMBER_CHUNK);
}

int vt_h5_write_u8(vt_h5id loc, const char *path, const uint8_t *data, int ndim, const int64_t *shape, int deflate)
{
    return write_any(loc, path, data, H5T_STD_U8LE, H5T_NATIVE_UINT8, ndim, shape, deflate, IMAGE_CHUNK);
}

int vt_h5_write_f64(vt_h5id loc, const char *path, const double *data, int ndim, const int64_t *shape)
{
    return write_any(loc, path, data, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, shape, 0, NUMBER_CHUNK);
}

int vt_h5_write_i64(vt_h5id loc, const char *path, const int64_t *data, int ndim, const int64_t *shape)
{
    return write_any(loc, path, data, H5T_STD_I64LE, H5T_NATIVE_INT64, ndim, shape, 0, NUMBER_CHUNK);
}

static int write_attr(vt_h5id loc, const char *obj, const char *name, hid_t filetype, hid_t memtype, const void *v)
{
    char fbuf[512];
    if (H5Aexists_by_name((hid_t)loc, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name((hid_t)loc, obj, name, H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name((hid_t)loc, obj, name, filetype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = -1;
    char why[128] = "";
    if (a >= 0) {
        r = H5Awrite(a, memtype, v);
        if (r < 0) vt_h5_reason(why);   /* before closing clears the error stack */
        if (H5Aclose(a) < 0 && r >= 0) r = -1, vt_h5_reason(why);
    } else {
        vt_h5_reason(why);
    }
    H5Sclose(s);
    if (r < 0) return vt_err("%s: cannot write attribute %s of %s%s", FNAME(loc), name, obj, why);
    return VT_OK;
}

int vt_h5_write_attr_i64(vt_h5id loc, const char *obj, const char *name, int64_t v)
{
    return write_attr(loc, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int vt_h5_write_attr_f64(vt_h5id loc, const char *obj, const char *name, double v)
{
    return write_attr(loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int vt_h5_write_attr_str(vt_h5id loc, const char *obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int r = write_attr(loc, obj, name, t, t, &v);
    H5Tclose(t);
    return r;
}
