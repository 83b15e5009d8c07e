/* h5io.c - small wrappers over the HDF5 C library with messages that name file and object: files,
 * groups, reading datasets and attributes (writing is in h5write.c). */
#include "base_internal.h"
#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t h5_mutex;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;
static void h5_mutex_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h5_mutex, &a);
    pthread_mutexattr_destroy(&a);
}
void vt_h5_lock(void)
{
    pthread_once(&h5_once, h5_mutex_init);
    pthread_mutex_lock(&h5_mutex);
}
void vt_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

const char *vt_h5_filename(vt_h5id loc, char *buf, size_t n)
{
    if (n == 0) return buf;
    buf[0] = '\0';
    ssize_t len = H5Fget_name((hid_t)loc, buf, n);
    if (len < 0) snprintf(buf, n, "?");
    return buf;
}


/* Before the library's first use: no automatic error printing (the wrappers' messages say what failed),
 * and no clean-up at exit: a file whose writing failed (a full disk) stays open inside HDF5, and its
 * exit handler then loops on flushing it and crashes; the operating system closes the file instead. */
static pthread_once_t h5_init_once = PTHREAD_ONCE_INIT;
static void h5_init_quiet(void)
{
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void h5_init(void)
{
    pthread_once(&h5_init_once, h5_init_quiet);
    static _Thread_local bool quiet;
    if (!quiet) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   /* per thread in thread-safe builds of HDF5 */
    quiet = true;
}

void vt_h5_quiet(void) { h5_init(); }

vt_h5id vt_h5_open(const char *path, bool write)
{
    h5_init();
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        vt_err("%s: is a folder, expected an HDF5 file", path);
        return -1;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        vt_err("%s: cannot open (no such file or not readable)", path);
        return -1;
    }
    fclose(fp);
    if (H5Fis_hdf5(path) <= 0) {
        vt_err("%s: not an HDF5 file (or truncated/corrupted)", path);
        return -1;
    }
    hid_t f = H5Fopen(path, write ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) vt_err("%s: HDF5 cannot open the file (truncated or corrupted?)", path);
    return f;
}

/* the operating system's reason for the newest HDF5 failure when its error stack carries one (the file
 * drivers record "..., error message = 'No space left on device'"): " (reason)", else "" */
static herr_t find_reason(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    const char *key = "error message = '", *p = e->desc ? strstr(e->desc, key) : NULL;
    if (p && !((char *)data)[0]) {   /* the deepest: walking downward, the first found */
        p += strlen(key);
        const char *q = strchr(p, '\'');
        snprintf(data, 128, " (%.*s)", (int)(q ? q - p : (ptrdiff_t)strlen(p)), p);
    }
    return 0;
}

const char *vt_h5_reason(char buf[128])
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_reason, buf);
    return buf;
}

static herr_t find_checksum(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    if (e->desc && strstr(e->desc, "Fletcher32")) *(bool *)data = true;   /* H5Z's "data error detected by ..." */
    return 0;
}

bool vt_h5_checksum_failed(void)
{
    bool checksum = false;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_checksum, &checksum);
    return checksum;
}

/* the error for a failed read of dataset path: the checksum named when HDF5's error stack names it (ck) */
static int read_failed(vt_h5id loc, const char *path, bool ck)
{
    char fbuf[512];
    if (ck) return vt_err("%s: dataset %s" VT_H5_CHECKSUM_BAD, FNAME(loc), path);
    return vt_err("%s: cannot read dataset %s (corrupted file?)", FNAME(loc), path);
}

bool vt_h5_checksummed(vt_h5id loc, const char *path)
{
    hid_t d = H5Dopen2((hid_t)loc, path, H5P_DEFAULT);
    hid_t cp = d >= 0 ? H5Dget_create_plist(d) : -1;
    unsigned flags = 0;
    size_t nelem = 0;
    bool yes = cp >= 0 && H5Pget_filter_by_id2(cp, H5Z_FILTER_FLETCHER32, &flags, &nelem, NULL, 0, NULL, NULL) >= 0;
    if (cp >= 0) H5Pclose(cp);
    if (d >= 0) H5Dclose(d);
    return yes;
}

bool vt_h5_is_file(const char *path)
{
    h5_init();
    return H5Fis_hdf5(path) > 0;
}

vt_h5id vt_h5_create(const char *path)
{
    h5_init();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    char why[128];
    if (f < 0) {
        vt_h5_reason(why);
        vt_err("%s: cannot create the file%s", path, why[0] ? why : " (folder missing or not writable?)");
    }
    return f;
}

int vt_h5_close(vt_h5id f)
{
    if (f < 0) return VT_OK;
    char fbuf[512], why[128];
    FNAME(f);
    /* flush first: a failure to write (a full disk) shows here and the close below still releases the file */
    herr_t fl = H5Fflush((hid_t)f, H5F_SCOPE_LOCAL);
    if (fl < 0) vt_h5_reason(why);
    herr_t c = H5Fclose((hid_t)f);
    if (fl < 0) return vt_err("%s: cannot finish writing the file%s", fbuf, why);
    if (c < 0) return vt_err("%s: cannot close the file%s", fbuf, vt_h5_reason(why));
    return VT_OK;
}

bool vt_h5_exists(vt_h5id loc, const char *path)
{
    if (strcmp(path, ".") == 0 || strcmp(path, "/") == 0) return true;
    /* check every prefix: H5Lexists fails on a missing intermediate link */
    char buf[1024];
    size_t n = strlen(path);
    if (n >= sizeof buf) return false;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            htri_t e = H5Lexists((hid_t)loc, buf, H5P_DEFAULT);
            buf[i] = c;
            if (e <= 0) return false;
        }
    }
    return true;
}

bool vt_h5_is_group(vt_h5id loc, const char *path)
{
    if (!vt_h5_exists(loc, path)) return false;
    H5O_info_t info;
    if (H5Oget_info_by_name((hid_t)loc, path, &info, H5P_DEFAULT) < 0) return false;
    return info.type == H5O_TYPE_GROUP;
}

typedef struct { char **names; int count, cap; } name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g; (void)info;
    name_list *l = data;
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **n = realloc(l->names, (size_t)cap * sizeof *n);
        if (!n) return -1;
        l->names = n;
        l->cap = cap;
    }
    l->names[l->count] = strdup(name);
    if (!l->names[l->count]) return -1;
    l->count++;
    return 0;
}

int vt_h5_list(vt_h5id loc, const char *group, char ***names, int *count)
{
    char fbuf[512];
    *names = NULL;
    *count = 0;
    if (!vt_h5_is_group(loc, group)) return vt_err("%s: no group %s", FNAME(loc), group);
    name_list l = {0};
    hsize_t idx = 0;
    herr_t r = H5Literate_by_name((hid_t)loc, group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &l, H5P_DEFAULT);
    if (r < 0) {
        vt_h5_free_names(l.names, l.count);
        return vt_err("%s: cannot list group %s", FNAME(loc), group);
    }
    *names = l.names;
    *count = l.count;
    return VT_OK;
}

void vt_h5_free_names(char **names, int count)
{
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

int vt_h5_shape(vt_h5id loc, const char *path, int *ndim, int64_t *shape)
{
    char fbuf[512];
    if (!vt_h5_exists(loc, path)) return vt_err("%s: no dataset %s", FNAME(loc), path);
    hid_t d = H5Dopen2((hid_t)loc, path, H5P_DEFAULT);
    if (d < 0) return vt_err("%s: %s is not a dataset", FNAME(loc), path);
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[32];
    if (nd < 0 || nd > 8) {
        H5Sclose(s);
        H5Dclose(d);
        return vt_err("%s: dataset %s has %d dimensions (at most 8 supported)", FNAME(loc), path, nd);
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    /* no real tensor or dataset has 2^48 elements; a corrupted header can claim anything, and the element
     * count sizes the reads' buffers */
    const hsize_t cap = (hsize_t)1 << 48;
    hsize_t n = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] && n > cap / dims[i]) return vt_err("%s: dataset %s claims more than 2^48 elements (corrupted file?)", FNAME(loc), path);
        n *= dims[i];
    }
    if (ndim) *ndim = nd;
    if (shape)
        for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    return VT_OK;
}

static int read_any(vt_h5id loc, const char *path, void **out, size_t elsize, hid_t memtype, int *ndim,
                    int64_t *shape, int64_t *numel)
{
    char fbuf[512];
    int nd;
    int64_t sh[8];
    *out = NULL;
    if (vt_h5_shape(loc, path, &nd, sh) != VT_OK) return VT_ERR;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= sh[i];
    hid_t d = H5Dopen2((hid_t)loc, path, H5P_DEFAULT);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    size_t fsize = H5Tget_size(ft);
    H5Tclose(ft);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        H5Dclose(d);
        return vt_err("%s: dataset %s is not numeric", FNAME(loc), path);
    }
    /* the shape sizes the buffer: a dataset must store what it claims (deflate shrinks at most 1032 times; a
     * dataset created without its values stores nothing and would read as fill values) */
    hsize_t stored = H5Dget_storage_size(d);
    if (n > 0 && (hsize_t)n / 1032 * fsize > stored) {
        H5Dclose(d);
        return vt_err("%s: dataset %s claims %lld values of %zu bytes but stores %llu bytes (a damaged file, or a "
                      "dataset written without its values)", FNAME(loc), path, (long long)n, fsize,
                      (unsigned long long)stored);
    }
    void *buf = malloc((size_t)(n ? n : 1) * elsize);
    if (!buf) {
        H5Dclose(d);
        return vt_err("%s: out of memory reading %s", FNAME(loc), path);
    }
    herr_t r = n ? H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    if (r < 0) {
        bool ck = vt_h5_checksum_failed();   /* before the close clears HDF5's error stack */
        H5Dclose(d);
        free(buf);
        return read_failed(loc, path, ck);
    }
    H5Dclose(d);
    if (ndim) *ndim = nd;
    if (shape)
        for (int i = 0; i < nd; i++) shape[i] = sh[i];
    if (numel) *numel = n;
    *out = buf;
    return VT_OK;
}

int vt_h5_read_f32(vt_h5id loc, const char *path, float **out, int *ndim, int64_t *shape)
{
    return read_any(loc, path, (void **)out, sizeof(float), H5T_NATIVE_FLOAT, ndim, shape, NULL);
}

int vt_h5_read_f64(vt_h5id loc, const char *path, double **out, int *ndim, int64_t *shape)
{
    return read_any(loc, path, (void **)out, sizeof(double), H5T_NATIVE_DOUBLE, ndim, shape, NULL);
}

int vt_h5_read_i64(vt_h5id loc, const char *path, int64_t **out, int *ndim, int64_t *shape)
{
    return read_any(loc, path, (void **)out, sizeof(int64_t), H5T_NATIVE_INT64, ndim, shape, NULL);
}

int vt_h5_read_into_f32(vt_h5id loc, const char *path, float *dst, int64_t expect_numel)
{
    char fbuf[512];
    int nd;
    int64_t sh[8];
    if (vt_h5_shape(loc, path, &nd, sh) != VT_OK) return VT_ERR;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= sh[i];
    if (n != expect_numel) {
        char b[128];
        return vt_err("%s: dataset %s has shape %s (%lld values), expected %lld values", FNAME(loc), path,
                      vt_dims_str(nd, sh, b, sizeof b), (long long)n, (long long)expect_numel);
    }
    hid_t d = H5Dopen2((hid_t)loc, path, H5P_DEFAULT);
    herr_t r = n ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) : 0;
    bool ck = r < 0 && vt_h5_checksum_failed();   /* before the close clears HDF5's error stack */
    H5Dclose(d);
    if (r < 0) return read_failed(loc, path, ck);
    return VT_OK;
}

bool vt_h5_has_attr(vt_h5id loc, const char *obj, const char *name)
{
    if (!vt_h5_exists(loc, obj)) return false;
    return H5Aexists_by_name((hid_t)loc, obj, name, H5P_DEFAULT) > 0;
}

static hid_t open_attr(vt_h5id loc, const char *obj, const char *name)
{
    char fbuf[512];
    if (!vt_h5_has_attr(loc, obj, name)) {
        vt_err("%s: %s has no attribute '%s'", FNAME(loc), obj, name);
        return -1;
    }
    hid_t a = H5Aopen_by_name((hid_t)loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) vt_err("%s: cannot open attribute %s of %s", FNAME(loc), name, obj);
    return a;
}

static int attr_numeric(vt_h5id loc, const char *obj, const char *name, hid_t memtype, void *v)
{
    char fbuf[512];
    hid_t a = open_attr(loc, obj, name);
    if (a < 0) return VT_ERR;
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    hid_t s = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    herr_t r = -1;
    if ((cls == H5T_FLOAT || cls == H5T_INTEGER) && n == 1) {
        r = H5Aread(a, memtype, v);
    } else if (cls == H5T_ENUM && n == 1) {
        /* h5py stores bools as an int8 enum {FALSE, TRUE} */
        int8_t raw = 0;
        hid_t nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
        if (H5Tget_size(nt) == 1) r = H5Aread(a, nt, &raw);
        H5Tclose(nt);
        if (r >= 0) {
            if (memtype == H5T_NATIVE_DOUBLE) *(double *)v = raw;
            else *(int64_t *)v = raw;
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    if (r < 0) return vt_err("%s: attribute %s of %s is not a numeric scalar", FNAME(loc), name, obj);
    return VT_OK;
}

int vt_h5_attr_f64(vt_h5id loc, const char *obj, const char *name, double *v)
{
    return attr_numeric(loc, obj, name, H5T_NATIVE_DOUBLE, v);
}

int vt_h5_attr_i64(vt_h5id loc, const char *obj, const char *name, int64_t *v)
{
    return attr_numeric(loc, obj, name, H5T_NATIVE_INT64, v);
}

int vt_h5_attr_bool(vt_h5id loc, const char *obj, const char *name, bool *v)
{
    int64_t x;
    if (attr_numeric(loc, obj, name, H5T_NATIVE_INT64, &x) != VT_OK) return VT_ERR;
    *v = x != 0;
    return VT_OK;
}

int vt_h5_attr_str(vt_h5id loc, const char *obj, const char *name, char *buf, size_t n)
{
    char fbuf[512];
    hid_t a = open_attr(loc, obj, name);
    if (a < 0) return VT_ERR;
    hid_t t = H5Aget_type(a);
    int ok = VT_ERR;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, n, "%s", s);
                H5free_memory(s);
                ok = VT_OK;
            }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *tmp = calloc(sz + 1, 1);
            if (tmp && H5Aread(a, t, tmp) >= 0) {
                snprintf(buf, n, "%s", tmp);
                ok = VT_OK;
            }
            free(tmp);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    if (ok != VT_OK) return vt_err("%s: attribute %s of %s is not a string", FNAME(loc), name, obj);
    return VT_OK;
}
