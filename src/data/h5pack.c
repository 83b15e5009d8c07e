/* h5pack.c - write any readable dataset into the HDF5 layout h5data.c reads: <group>/images uint8
 * (N, H, W, C), deflated chunks of about 64 KiB along N, each with a Fletcher-32 checksum, written one block of samples at a time;
 * <group>/labels int64 (N,) with attributes num_classes and class_names. Every HDF5 call is checked
 * (a write that fails, e.g. on a full disk, is an error naming the file and the OS's reason), and
 * vt_pack_file_* write the file under a temporary name, renamed over the final one only when all of
 * it reached the disk; an existing file of that name is replaced only when it is an HDF5 file. */
#include "data_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the images dataset, created empty: (n, h, w, c) uint8, chunk rows along n; < 0 and why on failure */
static hid_t create_images(vt_h5id f, const char *path, const vt_dataset *ds, hsize_t rows, char why[128])
{
    hsize_t dims[4] = {(hsize_t)ds->count, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    hsize_t chunk[4] = {rows, dims[1], dims[2], dims[3]};
    hid_t s = H5Screate_simple(4, dims, NULL);
    hid_t pl = s < 0 ? -1 : H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    if (pl >= 0 && H5Pset_chunk(pl, 4, chunk) >= 0 && H5Pset_deflate(pl, 4) >= 0 && H5Pset_fletcher32(pl) >= 0)
        d = H5Dcreate2((hid_t)f, path, H5T_STD_U8LE, s, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (d < 0) vt_h5_reason(why);
    if (pl >= 0) H5Pclose(pl);
    if (s >= 0) H5Sclose(s);
    return d;
}

/* samples [i0, i0 + n) (n, h, w, c) from buf into the images dataset; < 0 and why on failure */
static herr_t write_block(hid_t d, const vt_dataset *ds, int64_t i0, int64_t n, const uint8_t *buf, char why[128])
{
    hsize_t start[4] = {(hsize_t)i0, 0, 0, 0}, cnt[4] = {(hsize_t)n, (hsize_t)ds->h, (hsize_t)ds->w, (hsize_t)ds->c};
    hid_t fs = H5Dget_space(d), ms = -1;
    herr_t r = -1;
    if (fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        (ms = H5Screate_simple(4, cnt, NULL)) >= 0)
        r = H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf);
    if (r < 0) vt_h5_reason(why);   /* before the closes below clear the error stack */
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
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
    char ip[512], lp[512], fname[512], why[128] = "";
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
    vt_h5_quiet();
    int r = vt_h5_mkgroup(f, group);
    hid_t d = r == VT_OK ? create_images(f, ip, ds, rows, why) : -1;
    if (r == VT_OK && d < 0)
        r = vt_err("%s: cannot create dataset %s%s", fname, ip, why[0] ? why : " (does it exist already?)");
    for (int64_t i0 = 0; r == VT_OK && i0 < ds->count; i0 += block) {
        int64_t n = ds->count - i0 < block ? ds->count - i0 : block;
        for (int64_t i = 0; r == VT_OK && i < n; i++) {
            int label;
            r = ds->read(ds, i0 + i, buf + (size_t)i * px, &label);
            labels[i0 + i] = label;
        }
        if (r == VT_OK && write_block(d, ds, i0, n, buf, why) < 0)
            r = vt_err("%s: cannot write images %lld..%lld of %s%s", fname, (long long)i0, (long long)(i0 + n - 1), ip,
                       why);
    }
    /* closing writes the chunks still in HDF5's cache */
    if (d >= 0 && H5Dclose(d) < 0 && r == VT_OK)
        r = vt_err("%s: cannot write the last images of %s%s", fname, ip, vt_h5_reason(why));
    if (r == VT_OK) r = vt_h5_write_i64(f, lp, labels, 1, (int64_t[]){ds->count});
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, lp, "num_classes", ds->num_classes);
    if (r == VT_OK) r = write_names(f, lp, ds);
    /* the group's metadata to the file now: a full disk shows here, not only when the file is closed */
    if (r == VT_OK && H5Fflush((hid_t)f, H5F_SCOPE_LOCAL) < 0)
        r = vt_err("%s: cannot write %s%s", fname, group, vt_h5_reason(why));
    vt_h5_unlock();
    free(buf);
    free(labels);
    return r;
}

/* ---------------------------------------------------------------- the file, written atomically */
/* does the HDF5 file at path hold a dataset of the layout this file writes (or h5data.c reads)? */
static bool packed_dataset(const char *path)
{
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) return false;
    bool yes = vt_h5_exists(f, "/train/images") || vt_h5_exists(f, "/test/images") || vt_h5_exists(f, "/images");
    vt_h5_close(f);
    return yes;
}

/* is the existing file out inside the folder src? */
static bool inside_folder(const char *out, const char *src)
{
    struct stat ss;
    if (!src || stat(src, &ss) != 0 || !S_ISDIR(ss.st_mode)) return false;
    char *rs = realpath(src, NULL), *ro = realpath(out, NULL);
    size_t n = rs ? strlen(rs) : 0;
    bool in = rs && ro && strncmp(ro, rs, n) == 0 && (ro[n] == '/' || (n == 1 && rs[0] == '/'));
    free(rs);
    free(ro);
    return in;
}

int vt_pack_file_begin(vt_pack_file *p, const char *path, const char *src)
{
    p->file = -1;
    p->refused = true;
    if (snprintf(p->path, sizeof p->path, "%s", path) >= (int)sizeof p->path) return vt_err("%s: path too long", path);
    snprintf(p->tmp, sizeof p->tmp, "%s.partial", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vt_err("%s is a folder, expected the name of the HDF5 file to write", path);
    /* an existing file is replaced only when it is an HDF5 file: never a data file, a config, ... */
    if (stat(path, &st) == 0 && (!S_ISREG(st.st_mode) || !vt_h5_is_file(path))) {
        if (inside_folder(path, src))
            return vt_err("%s is a file of the source folder %s (packing would overwrite its data); name a new file "
                          "for the HDF5 output", path, src);
        return vt_err("%s exists and is not %s: not overwritten (name a new file, or an HDF5 file to replace)", path,
                      S_ISREG(st.st_mode) ? "an HDF5 file" : "a regular file");
    }
    vt_h5_lock();
    if (stat(path, &st) == 0 && !packed_dataset(path)) {   /* nor another kind of HDF5 file (a checkpoint) */
        vt_h5_unlock();
        return vt_err("%s is an HDF5 file but not a dataset (no /train/images, /test/images or /images): not "
                      "overwritten (name a new file, or a dataset file to replace)", path);
    }
    p->refused = false;
    p->file = vt_h5_create(p->tmp);
    vt_h5_unlock();
    if (p->file < 0) {
        remove(p->tmp);
        return VT_ERR;
    }
    return VT_OK;
}

void vt_pack_file_abort(vt_pack_file *p)
{
    if (p->file >= 0) {
        char keep[1024];   /* the failure that led here says more than closing's */
        snprintf(keep, sizeof keep, "%s", vt_errmsg());
        vt_h5_lock();
        vt_h5_close(p->file);   /* on a full disk HDF5 may keep it open: it is not closed at exit (h5io.c) */
        vt_h5_unlock();
        vt_err("%s", keep);
        p->file = -1;
    }
    remove(p->tmp);
}

int vt_pack_file_commit(vt_pack_file *p)
{
    vt_h5_lock();
    int r = vt_h5_close(p->file);   /* flushes first: a full disk shows here with the OS's reason */
    vt_h5_unlock();
    p->file = -1;
    if (r != VT_OK) {
        remove(p->tmp);
        return VT_ERR;
    }
    /* on the disk before it takes the name (some file systems report a full disk only here) */
    int fd = open(p->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        remove(p->tmp);
        return vt_err("%s: cannot write the file (%s)", p->tmp, strerror(e));
    }
    close(fd);
    if (rename(p->tmp, p->path) != 0) {
        int e = errno;
        remove(p->tmp);
        return vt_err("%s: cannot rename %s to it (%s)", p->path, p->tmp, strerror(e));
    }
    /* the rename itself on the disk (best effort: the file is complete under its name either way) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", p->path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
        if (fsync(fd) != 0) { /* best effort */ }
        close(fd);
    }
    return VT_OK;
}
