/* h5build.c - the HDF5 description language of the ckpt and h5data fuzz targets (fuzz.h): text lines
 * turned into an HDF5 file with libhdf5's own calls. A line that cannot be built (a bad type, a missing
 * parent, a chunk libhdf5 refuses) is skipped; values are clamped to their type. */
#include "fuzz.h"
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WRITE ((hsize_t)1 << 20)   /* elements written per dataset; a larger one keeps no stored data */
#define MAX_CHUNKS 4096                /* chunks written per dataset: libhdf5 took 1.7 KB (under ASan) per chunk
                                          it writes, so 10^6 one-element chunks took 2 GB (fuzz_h5data's OOM) */
#define MAX_TOKENS 4096

typedef struct {
    const char *name;
    hid_t file, mem;   /* filled at first use */
    double lo, hi;
    size_t size;
    int kind;   /* 0 number, 1 vlen string, 2 fixed string, 3 bool enum */
} type_t;

static type_t *find_type(const char *name)
{
    static type_t types[] = {
        {"u8", 0, 0, 0, 255, 1, 0},     {"i8", 0, 0, -128, 127, 1, 0},
        {"u16", 0, 0, 0, 65535, 2, 0},  {"i16", 0, 0, -32768, 32767, 2, 0},
        {"u32", 0, 0, 0, 4294967295.0, 4, 0}, {"i32", 0, 0, -2147483648.0, 2147483647.0, 4, 0},
        {"u64", 0, 0, 0, 1.8e19, 8, 0}, {"i64", 0, 0, -9.2e18, 9.2e18, 8, 0},
        {"f32", 0, 0, -HUGE_VAL, HUGE_VAL, 4, 0}, {"f64", 0, 0, -HUGE_VAL, HUGE_VAL, 8, 0},
        {"str", 0, 0, 0, 0, sizeof(char *), 1}, {"fstr", 0, 0, 0, 0, 0, 2}, {"bool", 0, 0, 0, 1, 1, 3},
    };
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        type_t *t = &types[k];
        if (strcmp(t->name, name) != 0) continue;
        if (!t->file && t->kind == 0) {
            const hid_t f[] = {H5T_STD_U8LE, H5T_STD_I8LE, H5T_STD_U16LE, H5T_STD_I16LE, H5T_STD_U32LE, H5T_STD_I32LE,
                               H5T_STD_U64LE, H5T_STD_I64LE, H5T_IEEE_F32LE, H5T_IEEE_F64LE};
            t->file = f[k];
            t->mem = H5T_NATIVE_DOUBLE;
        }
        return t;
    }
    return NULL;
}

/* the type to create for t (closed by the caller when it is a copy, *copy set) */
static hid_t file_type(type_t *t, size_t fixed, bool *copy)
{
    *copy = t->kind != 0;
    if (t->kind == 0) return t->file;
    if (t->kind == 3) {
        hid_t e = H5Tenum_create(H5T_NATIVE_INT8);
        int8_t v = 0;
        H5Tenum_insert(e, "FALSE", &v);
        v = 1;
        H5Tenum_insert(e, "TRUE", &v);
        return e;
    }
    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, t->kind == 1 ? H5T_VARIABLE : (fixed ? fixed : 1));
    H5Tset_cset(s, H5T_CSET_UTF8);
    return s;
}

static int parse_dims(const char *s, int *nd, hsize_t *dims)
{
    *nd = 0;
    if (strcmp(s, "-") == 0) return 0;
    while (*s) {
        char *e;
        unsigned long long v = strtoull(s, &e, 10);
        if (e == s || *nd == 8) return -1;
        dims[(*nd)++] = (hsize_t)v;
        if (*e == ',') e++;
        else if (*e) return -1;
        s = e;
    }
    return *nd ? 0 : -1;
}

/* value tokens [0, n) converted into buf of count elements of t (repeating; none: zeros) */
static void *fill(type_t *t, char **tok, int n, hsize_t count, size_t *fixed)
{
    *fixed = 1;
    if (t->kind == 2)
        for (int i = 0; i < n; i++)
            if (strlen(tok[i]) > *fixed) *fixed = strlen(tok[i]);
    size_t el = t->kind == 0 ? sizeof(double) : t->kind == 1 ? sizeof(char *) : t->kind == 2 ? *fixed : 1;
    uint8_t *buf = calloc(count ? count : 1, el);
    if (!buf) return NULL;
    for (hsize_t i = 0; n > 0 && i < count; i++) {
        const char *s = tok[i % (hsize_t)n];
        if (t->kind == 1) ((const char **)buf)[i] = s;
        else if (t->kind == 2) memcpy(buf + i * el, s, strlen(s));
        else {
            double v = strtod(s, NULL);
            if (t->kind == 3) buf[i] = v != 0;
            else ((double *)buf)[i] = isnan(v) && t->lo > -HUGE_VAL ? 0 : v < t->lo ? t->lo : v > t->hi ? t->hi : v;
        }
    }
    return buf;
}

/* write buf (count elements from fill) with the memory type of t */
static herr_t write_values(hid_t obj, bool attr, type_t *t, hid_t ft, const void *buf)
{
    hid_t mt = t->kind == 0 ? H5T_NATIVE_DOUBLE : ft;
    return attr ? H5Awrite(obj, mt, buf) : H5Dwrite(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == 'n') *o++ = '\n', s++;
        else *o++ = *s;
    }
    *o = '\0';
}

static void groups_for(hid_t f, const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) H5Gclose(H5Gcreate2(f, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
            *p = '/';
        }
}

static void dataset_line(hid_t f, char **tok, int n)
{
    type_t *t = n >= 4 ? find_type(tok[2]) : NULL;
    int nd;
    hsize_t dims[8], chunk[8], count = 1;
    if (!t || parse_dims(tok[3], &nd, dims) != 0) return;
    for (int i = 0; i < nd; i++) count = dims[i] && count > ((hsize_t)1 << 62) / dims[i] ? (hsize_t)1 << 62 : count * dims[i];
    int at = 4, cnd = 0, deflate = 0;
    if (at < n && strncmp(tok[at], "chunk=", 6) == 0 && parse_dims(tok[at++] + 6, &cnd, chunk) != 0) return;
    if (at < n && strcmp(tok[at], "deflate") == 0) deflate = 1, at++;
    size_t fixed;
    hsize_t chunks = 1;
    for (int i = 0; i < cnd && i < nd; i++)
        if (chunk[i]) chunks = chunks > MAX_CHUNKS ? chunks : chunks * ((dims[i] + chunk[i] - 1) / chunk[i]);
    bool write = count <= MAX_WRITE && chunks <= MAX_CHUNKS;
    void *buf = write ? fill(t, tok + at, n - at, count, &fixed) : NULL;
    if (write && !buf) return;
    if (!write) fixed = 1;
    groups_for(f, tok[1]);
    bool copy;
    hid_t ft = file_type(t, fixed, &copy);
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    if (cnd && H5Pset_chunk(pl, cnd, chunk) >= 0 && deflate) H5Pset_deflate(pl, 4);
    hid_t d = sp >= 0 ? H5Dcreate2(f, tok[1], ft, sp, H5P_DEFAULT, pl, H5P_DEFAULT) : -1;
    if (d >= 0 && write && count) write_values(d, false, t, ft, buf);
    if (d >= 0) H5Dclose(d);
    H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    if (copy) H5Tclose(ft);
    free(buf);
}

/* "a OBJ NAME TYPE [@DIMS] VALUE..."; line is the raw line (a str value is the rest of it) */
static void attr_line(hid_t f, char **tok, int n, const char *line)
{
    type_t *t = n >= 4 ? find_type(tok[3]) : NULL;
    if (!t || (strcmp(tok[1], "/") != 0 && H5Lexists(f, tok[1], H5P_DEFAULT) <= 0)) return;
    int nd = 0, at = 4;
    hsize_t dims[8], count = 1;
    if (at < n && tok[at][0] == '@') {
        if (parse_dims(tok[at++] + 1, &nd, dims) != 0) return;
        for (int i = 0; i < nd; i++) count *= dims[i];
        if (count > 4096) return;
    }
    char *rest = NULL, *one[1];
    char **vals = tok + at;
    int nv = n - at;
    if (t->kind != 0 && t->kind != 3 && nd == 0) {   /* a scalar string: the rest of the line */
        const char *p = line;
        for (int k = 0; k < at; k++) {   /* skip at tokens */
            while (*p == ' ' || *p == '\t') p++;
            while (*p && *p != ' ' && *p != '\t') p++;
        }
        if (*p == ' ' || *p == '\t') p++;
        rest = strdup(p);
        if (!rest) return;
        unescape(rest);
        one[0] = rest;
        vals = one;
        nv = 1;
    }
    size_t fixed;
    void *buf = fill(t, vals, nv, count, &fixed);
    if (buf) {
        bool copy;
        hid_t ft = file_type(t, fixed, &copy);
        hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
        if (H5Aexists_by_name(f, tok[1], tok[2], H5P_DEFAULT) > 0) H5Adelete_by_name(f, tok[1], tok[2], H5P_DEFAULT);
        hid_t a = sp >= 0 ? H5Acreate_by_name(f, tok[1], tok[2], ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a >= 0) {
            write_values(a, true, t, ft, buf);
            H5Aclose(a);
        }
        if (sp >= 0) H5Sclose(sp);
        if (copy) H5Tclose(ft);
    }
    free(buf);
    free(rest);
}

int vt_fuzz_h5build(const char *path, const uint8_t *data, size_t size)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    char *text = malloc(size + 1);
    char **tok = malloc(sizeof *tok * MAX_TOKENS);
    if (!text || !tok) {
        free(text);
        free(tok);
        H5Fclose(f);
        return -1;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *raw = strdup(line);
        if (!raw) break;
        int n = 0;
        for (char *s = strtok(line, " \t\r"); s && n < MAX_TOKENS; s = strtok(NULL, " \t\r")) tok[n++] = s;
        if (n >= 2 && tok[1][0] == '/' && strlen(tok[1]) < 900) {
            if (strcmp(tok[0], "g") == 0) {
                char p[1024];
                snprintf(p, sizeof p, "%s/", tok[1]);
                groups_for(f, p);
            } else if (strcmp(tok[0], "d") == 0) {
                dataset_line(f, tok, n);
            } else if (strcmp(tok[0], "a") == 0 && n >= 3 && strlen(tok[2]) < 256) {
                attr_line(f, tok, n, raw);
            }
        }
        free(raw);
    }
    free(text);
    free(tok);
    return H5Fclose(f) < 0 ? -1 : 0;
}
