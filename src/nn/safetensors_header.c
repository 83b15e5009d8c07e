/* safetensors_header.c - the header of a safetensors file: an 8-byte little-endian length N, then N
 * bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, "__metadata__": {..}}.
 * The parser takes what the format allows and refuses a name or field given twice (JSON leaves it to the
 * reader which one counts), a header longer than the file or than 100 MiB, entries without dtype, shape
 * or data_offsets, anything but spaces after the header's object, and data_offsets that do not tile the
 * data exactly (overlapping tensors, bytes no tensor covers). */
#include "nn_internal.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#define ST_MAX_HEADER (100u << 20)

typedef struct {
    const char *p, *end;
    const char *path;
} json_t;

static void skip_ws(json_t *j)
{
    while (j->p < j->end && isspace((unsigned char)*j->p)) j->p++;
}

static int expect(json_t *j, char c)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != c) return vt_err("%s: bad safetensors header: expected '%c'", j->path, c);
    j->p++;
    return VT_OK;
}

/* a JSON string without escapes beyond \" and \\ (names and dtypes never need more); with truncate
 * (values skipped unread) a longer string is cut to fit, otherwise it is an error */
static int read_string_t(json_t *j, char *out, size_t n, bool truncate)
{
    if (expect(j, '"') != VT_OK) return VT_ERR;
    size_t k = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\' && j->p < j->end) c = *j->p++;
        if (k + 1 < n) out[k++] = c;
        else if (!truncate) {
            out[k] = '\0';
            return vt_err("%s: bad safetensors header: name '%.40s...' longer than %zu bytes", j->path, out, n - 1);
        }
    }
    if (j->p >= j->end) return vt_err("%s: bad safetensors header: unterminated string", j->path);
    j->p++;
    out[k] = '\0';
    return VT_OK;
}

static int read_string(json_t *j, char *out, size_t n) { return read_string_t(j, out, n, false); }

static int read_uint(json_t *j, uint64_t *v)
{
    skip_ws(j);
    if (j->p >= j->end || !isdigit((unsigned char)*j->p))
        return vt_err("%s: bad safetensors header: expected a number", j->path);
    uint64_t x = 0;
    while (j->p < j->end && isdigit((unsigned char)*j->p)) {
        if (x > (UINT64_MAX - 9) / 10) return vt_err("%s: bad safetensors header: number too large", j->path);
        x = x * 10 + (uint64_t)(*j->p++ - '0');
    }
    *v = x;
    return VT_OK;
}

/* skip any JSON value (used for __metadata__ and unknown fields) */
static int skip_value(json_t *j, int depth)
{
    skip_ws(j);
    if (j->p >= j->end || depth > 32) return vt_err("%s: bad safetensors header", j->path);
    char c = *j->p;
    if (c == '"') {
        char tmp[8];
        return read_string_t(j, tmp, sizeof tmp, true);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) return j->p++, VT_OK;
        for (;;) {
            if (c == '{') {
                char tmp[8];
                if (read_string_t(j, tmp, sizeof tmp, true) != VT_OK || expect(j, ':') != VT_OK) return VT_ERR;
            }
            if (skip_value(j, depth + 1) != VT_OK) return VT_ERR;
            skip_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            return expect(j, close);
        }
    }
    while (j->p < j->end && (isalnum((unsigned char)*j->p) || *j->p == '.' || *j->p == '-' || *j->p == '+')) j->p++;
    return VT_OK;
}

static int parse_entry(json_t *j, vt_st_entry *e)
{
    if (expect(j, '{') != VT_OK) return VT_ERR;
    bool have_dtype = false, have_shape = false, have_off = false;
    for (;;) {
        char key[32];
        if (read_string_t(j, key, sizeof key, true) != VT_OK || expect(j, ':') != VT_OK) return VT_ERR;
        bool *have = !strcmp(key, "dtype") ? &have_dtype : !strcmp(key, "shape") ? &have_shape
                   : !strcmp(key, "data_offsets") ? &have_off : NULL;
        if (have && *have)
            return vt_err("%s: bad safetensors header: tensor %s gives \"%s\" twice", j->path, e->name, key);
        if (strcmp(key, "dtype") == 0) {
            if (read_string(j, e->dtype, sizeof e->dtype) != VT_OK) return VT_ERR;
            have_dtype = true;
        } else if (strcmp(key, "shape") == 0 || strcmp(key, "data_offsets") == 0) {
            bool shape = key[0] == 's';
            uint64_t v[8];
            int n = 0;
            if (expect(j, '[') != VT_OK) return VT_ERR;
            skip_ws(j);
            if (j->p < j->end && *j->p == ']') j->p++;
            else
                for (;;) {
                    if (n == 8 || read_uint(j, &v[n++]) != VT_OK)
                        return n == 8 ? vt_err("%s: tensor %s: too many dimensions", j->path, e->name) : VT_ERR;
                    skip_ws(j);
                    if (j->p < j->end && *j->p == ',') {
                        j->p++;
                        continue;
                    }
                    if (expect(j, ']') != VT_OK) return VT_ERR;
                    break;
                }
            if (shape) {
                e->ndim = n;
                for (int i = 0; i < n; i++) e->shape[i] = (int64_t)v[i];
                have_shape = true;
            } else {
                if (n != 2) return vt_err("%s: tensor %s: data_offsets must be [begin, end]", j->path, e->name);
                e->begin = v[0];
                e->end = v[1];
                have_off = true;
            }
        } else if (skip_value(j, 1) != VT_OK) {
            return VT_ERR;
        }
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (expect(j, '}') != VT_OK) return VT_ERR;
        break;
    }
    if (!have_dtype || !have_shape || !have_off)
        return vt_err("%s: tensor %s: the header lacks dtype, shape or data_offsets", j->path, e->name);
    return VT_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* a tensor name given twice: JSON leaves it to the reader which one counts, so the file is refused (sorted
 * names: n log n for headers of any size) */
static int refuse_twice(const char *path, const vt_st_entry *es, int n)
{
    const char **names = malloc(sizeof *names * (size_t)(n ? n : 1));
    if (!names) return vt_err("%s: out of memory checking the header", path);
    for (int i = 0; i < n; i++) names[i] = es[i].name;
    qsort(names, (size_t)n, sizeof *names, by_name);
    int r = VT_OK;
    for (int i = 1; i < n && r == VT_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            r = vt_err("%s: bad safetensors header: tensor %s appears twice", path, names[i]);
    free(names);
    return r;
}

static const vt_st_entry *st_sort_base;

static int by_offsets(const void *a, const void *b)
{
    const vt_st_entry *x = &st_sort_base[*(const int *)a], *y = &st_sort_base[*(const int *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* the format: the tensors' data_offsets tile the data region exactly, in any order (no tensor's bytes
 * inside another's, no byte between two tensors or after the last that no tensor covers) */
static int check_tiling(const char *path, const vt_st_entry *es, int n, uint64_t len)
{
    for (int i = 0; i < n; i++)
        if (es[i].end < es[i].begin || es[i].end > len)
            return vt_err("%s: tensor %s: data_offsets [%llu, %llu] are not a range inside the %llu data bytes "
                          "(truncated?)", path, es[i].name, (unsigned long long)es[i].begin,
                          (unsigned long long)es[i].end, (unsigned long long)len);
    int *ix = malloc(sizeof *ix * (size_t)(n > 0 ? n : 1));
    if (!ix) return vt_err("%s: out of memory checking the header", path);
    for (int i = 0; i < n; i++) ix[i] = i;
    st_sort_base = es;
    qsort(ix, (size_t)n, sizeof *ix, by_offsets);
    uint64_t at = 0;
    int r = VT_OK;
    for (int k = 0; k < n && r == VT_OK; k++) {
        const vt_st_entry *e = &es[ix[k]], *prev = k ? &es[ix[k - 1]] : NULL;
        if (e->begin < at)
            r = vt_err("%s: bad safetensors file: tensor %s's data_offsets [%llu, %llu] overlap tensor %s's [%llu, %llu] "
                       "(each byte of the data belongs to one tensor)", path, e->name, (unsigned long long)e->begin,
                       (unsigned long long)e->end, prev->name, (unsigned long long)prev->begin,
                       (unsigned long long)prev->end);
        else if (e->begin > at)
            r = vt_err("%s: bad safetensors file: %llu data bytes before tensor %s (data_offsets [%llu, %llu]) belong to "
                       "no tensor (the offsets must tile the data)", path, (unsigned long long)(e->begin - at), e->name,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
        at = e->end;
    }
    if (r == VT_OK && at != len) {
        if (n) r = vt_err("%s: bad safetensors file: %llu bytes after the last tensor %s (data_offsets ending at %llu) "
                          "belong to no tensor (the offsets must tile the data)", path,
                          (unsigned long long)(len - at), es[ix[n - 1]].name, (unsigned long long)at);
        else r = vt_err("%s: bad safetensors file: no tensors, yet %llu data bytes", path, (unsigned long long)len);
    }
    free(ix);
    return r;
}

/* read and parse the header; *entries malloc'd; *data_start = 8 + N */
static int read_header(FILE *f, const char *path, vt_st_entry **entries, int *count, uint64_t *data_start, uint64_t *data_len)
{
    uint8_t lenb[8];
    if (fread(lenb, 1, 8, f) != 8) return vt_err("%s: not a safetensors file (shorter than the 8-byte header length)", path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenb[i];
    if (fseek(f, 0, SEEK_END) != 0) return vt_err("%s: cannot seek", path);
    long fsize = ftell(f);
    if (n == 0 || n > ST_MAX_HEADER || n + 8 > (uint64_t)fsize)
        return vt_err("%s: safetensors header length %llu does not fit the file of %ld bytes (truncated?)", path,
                      (unsigned long long)n, fsize);
    char *h = malloc(n + 1);
    if (!h) return vt_err("%s: out of memory for the header", path);
    fseek(f, 8, SEEK_SET);
    if (fread(h, 1, n, f) != n) {
        free(h);
        return vt_err("%s: cannot read the safetensors header", path);
    }
    h[n] = '\0';
    json_t j = {h, h + n, path};
    int cap = 64, k = 0, r = expect(&j, '{');
    vt_st_entry *es = malloc(sizeof *es * (size_t)cap);
    if (!es) r = vt_err("out of memory");
    skip_ws(&j);
    bool empty = j.p < j.end && *j.p == '}', have_meta = false;
    if (empty) j.p++;
    while (r == VT_OK && !empty) {
        char name[sizeof es->name];
        if ((r = read_string(&j, name, sizeof name)) != VT_OK || (r = expect(&j, ':')) != VT_OK) break;
        bool meta = strcmp(name, "__metadata__") == 0;   /* tensor names given twice: checked after the loop */
        if (meta && have_meta) r = vt_err("%s: bad safetensors header: __metadata__ appears twice", path);
        if (r != VT_OK) break;
        if (meta) {
            have_meta = true;
            r = skip_value(&j, 1);
        } else {
            if (k == cap) {
                cap *= 2;
                vt_st_entry *ne = realloc(es, sizeof *es * (size_t)cap);
                if (!ne) {
                    r = vt_err("out of memory");
                    break;
                }
                es = ne;
            }
            memset(&es[k], 0, sizeof es[k]);
            snprintf(es[k].name, sizeof es[k].name, "%s", name);
            r = parse_entry(&j, &es[k]);
            k++;
        }
        if (r != VT_OK) break;
        skip_ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        r = expect(&j, '}');
        break;
    }
    skip_ws(&j);   /* the format pads the header with spaces; anything else after the object is not JSON */
    if (r == VT_OK && j.p < j.end)
        r = vt_err("%s: bad safetensors header: '%.20s' after the header's JSON object (only spaces may follow it)",
                   path, j.p);
    free(h);
    if (r == VT_OK) r = refuse_twice(path, es, k);
    if (r == VT_OK) r = check_tiling(path, es, k, (uint64_t)fsize - 8 - n);
    if (r != VT_OK) {
        free(es);
        return VT_ERR;
    }
    *entries = es;
    *count = k;
    *data_start = 8 + n;
    *data_len = (uint64_t)fsize - 8 - n;
    return VT_OK;
}

FILE *vt_st_open(const char *path, vt_st_entry **entries, int *count, uint64_t *data_start, uint64_t *data_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vt_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (read_header(f, path, entries, count, data_start, data_len) != VT_OK) {
        fclose(f);
        return NULL;
    }
    return f;
}
