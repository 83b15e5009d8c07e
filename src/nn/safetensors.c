/* safetensors.c - the format timm and the Hugging Face hub publish: an 8-byte little-endian header
 * length N, a JSON header of N bytes {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 * "__metadata__": {..}}, then the raw little-endian data (offsets relative to the end of the header).
 * Reading checks every offset against the file, refuses a name or field given twice, a shape other than
 * the model's (exact: timm's state_dict has the model's own layouts), a value that is not finite in
 * float32, and, as timm's strict load_state_dict, any tensor the model does not have (LayerScale, register
 * tokens, q/k norm ... are named as unsupported; fc_norm.* against norm.*, the two final norms a ViT may
 * have, say which [model] fc_norm the file needs) and a file without cls_token; writing emits float32
 * under timm's names. */
#include "nn.h"
#include "nn_internal.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20)

/* added to a shape mismatch, the one error where the missing model description is the point */
#define ST_NOTE                                                                                                  \
    " (a safetensors file holds no model description, so its shapes must match the model's: the config's, or " \
    "under --init the one read from the file's shapes, which then takes a new head and patch grid)"

typedef struct {
    char name[256];
    char dtype[8];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;
} st_entry;

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

static int parse_entry(json_t *j, st_entry *e)
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

/* read and parse the header; *entries malloc'd; *data_start = 8 + N */
static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* a tensor name given twice: JSON leaves it to the reader which one counts, so the file is refused (sorted
 * names: n log n for headers of any size) */
static int refuse_twice(const char *path, const st_entry *es, int n)
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

static int read_header(FILE *f, const char *path, st_entry **entries, int *count, uint64_t *data_start, uint64_t *data_len)
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
    st_entry *es = malloc(sizeof *es * (size_t)cap);
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
                st_entry *ne = realloc(es, sizeof *es * (size_t)cap);
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
    free(h);
    if (r == VT_OK) r = refuse_twice(path, es, k);
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

/* the file open after its header, read into entries; NULL with a message (nothing to free) on failure */
static FILE *open_header(const char *path, st_entry **entries, int *count, uint64_t *data_start, uint64_t *data_len)
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

static size_t dtype_size(const char *d)
{
    if (!strcmp(d, "F32")) return 4;
    if (!strcmp(d, "F64")) return 8;
    if (!strcmp(d, "F16") || !strcmp(d, "BF16")) return 2;
    return 0;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { /* subnormal */
            e = 127 - 15 + 1;
            while (!(m & 1024)) m <<= 1, e--;
            bits = s | e << 23 | (m & 1023) << 13;
        }
    } else if (e == 31) {
        bits = s | 0xff << 23 | m << 13;
    } else {
        bits = s | (e + 127 - 15) << 23 | m << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#define ST_NO_CLS "no cls_token: models without a class token are not supported"

/* ---- names: a file must hold the model's tensors and nothing else (timm's strict load_state_dict) */

/* what an unexpected timm name belongs to, when recognisable (NULL otherwise) */
static const char *st_feature(const char *name)
{
    static const struct { const char *pat; const char *what; } known[] = {
        {".ls1.", "LayerScale (blocks.*.ls1/ls2.gamma)"},       {".ls2.", "LayerScale (blocks.*.ls1/ls2.gamma)"},
        {"reg_token", "register tokens (reg_token)"},
        {".attn.q_norm.", "q/k norm (blocks.*.attn.q_norm/k_norm)"}, {".attn.k_norm.", "q/k norm (blocks.*.attn.q_norm/k_norm)"},
        {"norm_pre.", "a norm before the blocks (norm_pre)"},    {"attn_pool.", "attention pooling (attn_pool)"},
        {"patch_embed.norm.", "a patch-embedding norm"},         {"dist_token", "a distillation token (DeiT)"},
        {"head_dist.", "a distillation head (DeiT)"},            {"pre_logits.", "a pre-logits layer"},
        {".attn.norm.", "a norm inside attention"},              {".mlp.norm.", "a norm inside the MLP"},
        {".mlp.fc1_g.", "a gated MLP (SwiGLU)"},                 {".mlp.fc1_x.", "a gated MLP (SwiGLU)"},
    };
    if (strncmp(name, "module.", 7) == 0) return "a 'module.' prefix on every name (a DataParallel state_dict: strip it)";
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        const char *p = strstr(name, known[k].pat);
        /* a pattern without a leading '.' must start the name */
        if (p && (known[k].pat[0] == '.' || p == name)) return known[k].what;
    }
    return NULL;
}

static bool st_is_norm(const char *name) { return !strcmp(name, "norm.weight") || !strcmp(name, "norm.bias"); }
static bool st_is_fc_norm(const char *name) { return !strcmp(name, "fc_norm.weight") || !strcmp(name, "fc_norm.bias"); }

/* is name one of a plain ViT's (any block index, as the file's depth is read from the names); the final
 * norm is norm.* or, with fc_norm, fc_norm.*: fc_norm_ok says which (timm's models never have both) */
static bool st_plain_name(const char *name, bool fc_norm_ok)
{
    if (st_is_norm(name)) return !fc_norm_ok;
    if (st_is_fc_norm(name)) return fc_norm_ok;
    static const char *top[] = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                                "head.weight", "head.bias"};
    static const char *blk[] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                                "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                                "mlp.fc2.weight", "mlp.fc2.bias"};
    for (size_t k = 0; k < sizeof top / sizeof top[0]; k++)
        if (!strcmp(name, top[k])) return true;
    if (strncmp(name, "blocks.", 7) || !isdigit((unsigned char)name[7])) return false;
    char *end;
    long b = strtol(name + 7, &end, 10);
    if (*end != '.' || b >= 1 << 20 || (name[7] == '0' && end != name + 8)) return false;
    for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++)
        if (!strcmp(end + 1, blk[k])) return true;
    return false;
}

/* VT_OK when every entry is a parameter of m (m NULL: of a plain ViT of any depth, with norm.* or, when
 * the file has no norm.*, fc_norm.*); else an error naming the first few unexpected tensors ("and N more"),
 * what they are when recognisable, the [model] fc_norm the file's final norm needs when that is the
 * difference, and, when the file has no cls_token either, that too */
static int st_check_names(const char *path, const st_entry *es, int n, const vt_vit *m)
{
    vt_unexpected u = {0};
    bool have_cls = false, file_norm = false, file_fc_norm = false, bad_norm = false, bad_fc_norm = false;
    int bad_norms = 0;   /* of the unexpected names, norm.* and fc_norm.* */
    for (int k = 0; k < n; k++) {
        file_norm |= st_is_norm(es[k].name);
        file_fc_norm |= st_is_fc_norm(es[k].name);
    }
    for (int k = 0; k < n; k++) {
        const char *nm = es[k].name;
        size_t nl = strlen(nm);
        have_cls |= nl >= 9 && strcmp(nm + nl - 9, "cls_token") == 0;   /* module.cls_token: the prefix is named */
        bool ok = false;
        if (m) {
            for (int i = 0; i < m->params.count && !ok; i++) ok = strcmp(m->params.info[i].name, nm) == 0;
        } else {
            ok = st_plain_name(nm, !file_norm);
        }
        if (ok) continue;
        bad_norm |= st_is_norm(nm);
        bad_fc_norm |= st_is_fc_norm(nm);
        bad_norms += st_is_norm(nm) || st_is_fc_norm(nm);
        vt_unexpected_add(&u, nm, st_feature(nm));
    }
    if (!u.bad) return VT_OK;
    const char *hint = "";
    if ((bad_norm || bad_fc_norm) && file_norm && file_fc_norm)
        hint = "; the file has both norm.* and fc_norm.*, the final norm before and after pooling: no ViT has both";
    else if (bad_fc_norm)
        hint = "; the file's model has fc_norm, a LayerNorm after the average pooling instead of norm.* before it: "
               "set [model] fc_norm = true (with pool = avg)";
    else if (bad_norm)
        hint = "; the file's model has norm.*, the final LayerNorm over the tokens, instead of fc_norm: set [model] "
               "fc_norm = false";
    /* a file whose only difference is the final norm holds a plain ViT, just not this one */
    const char *what = u.fl ? "not supported: " : m && bad_norms == u.bad ? "not parameters of this model"
                                                                          : "not parameters of a plain ViT";
    return vt_err("%s: unexpected tensor%s %s%s (%s%s; refused as timm's strict loading refuses unexpected keys: "
                  "leaving them out would silently give another model)%s%s", path, u.bad == 1 ? "" : "s", u.list,
                  vt_unexpected_more(&u), what, u.feats, hint, have_cls ? "" : "; also " ST_NO_CLS);
}


int vt_vit_load_safetensors(vt_vit *m, const char *path) { return vt_vit_load_safetensors_backbone(m, path, NULL); }

int vt_vit_load_safetensors_backbone(vt_vit *m, const char *path, bool *had_head)
{
    st_entry *es = NULL;
    int n = 0;
    uint64_t start = 0, len = 0;
    FILE *f = open_header(path, &es, &n, &start, &len);
    int r = f ? st_check_names(path, es, n, m) : VT_ERR;
    char a[96], b[96];
    bool head = false;
    for (int k = 0; r == VT_OK && k < n; k++) head |= strncmp(es[k].name, "head.", 5) == 0;
    if (had_head) *had_head = head;
    for (int i = 0; r == VT_OK && i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        if (had_head && !head && (i == m->head_w || i == m->head_b)) continue;   /* a backbone: the caller's to fill */
        st_entry *e = NULL;
        for (int k = 0; k < n && !e; k++)
            if (strcmp(es[k].name, pi->name) == 0) e = &es[k];
        if (!e && i == m->cls_token) {
            r = vt_err("%s: " ST_NO_CLS, path);
            break;
        }
        if (!e) {
            r = vt_err("%s: no tensor %s (the model needs %s)", path, pi->name, vt_dims_str(pi->ndim, pi->shape, a, sizeof a));
            break;
        }
        bool same = e->ndim == pi->ndim;
        for (int k = 0; same && k < e->ndim; k++) same = e->shape[k] == pi->shape[k];
        if (!same) {
            r = vt_err("%s: tensor %s has shape %s, the model expects %s" ST_NOTE, path, pi->name,
                       vt_dims_str(e->ndim, e->shape, a, sizeof a), vt_dims_str(pi->ndim, pi->shape, b, sizeof b));
            break;
        }
        size_t es_ = dtype_size(e->dtype);
        if (!es_) {
            r = vt_err("%s: tensor %s has dtype %s (F32, F64, F16, BF16 supported)", path, pi->name, e->dtype);
            break;
        }
        if (e->end < e->begin || e->end > len || e->end - e->begin != (uint64_t)pi->numel * es_) {
            r = vt_err("%s: tensor %s: data_offsets [%llu, %llu] do not hold %lld %s values inside the %llu data bytes",
                       path, pi->name, (unsigned long long)e->begin, (unsigned long long)e->end, (long long)pi->numel,
                       e->dtype, (unsigned long long)len);
            break;
        }
        uint8_t *raw = malloc((size_t)(e->end - e->begin) + 1);
        if (!raw || fseek(f, (long)(start + e->begin), SEEK_SET) != 0 ||
            fread(raw, 1, (size_t)(e->end - e->begin), f) != (size_t)(e->end - e->begin)) {
            free(raw);
            r = vt_err("%s: cannot read tensor %s", path, pi->name);
            break;
        }
        float *dst = m->params.data + pi->offset;
        for (int64_t k = 0; k < pi->numel; k++) {
            const uint8_t *p = raw + (size_t)k * es_;
            if (es_ == 4) memcpy(&dst[k], p, 4);
            else if (es_ == 8) {
                double d;
                memcpy(&d, p, 8);
                dst[k] = (float)d;
            } else {
                uint16_t h = (uint16_t)(p[0] | p[1] << 8);
                if (!strcmp(e->dtype, "BF16")) {
                    uint32_t bits = (uint32_t)h << 16;
                    memcpy(&dst[k], &bits, 4);
                } else {
                    dst[k] = half_to_float(h);
                }
            }
            if (!isfinite(dst[k])) {   /* NaN, inf, or an F64 beyond float32's range */
                double d = dst[k];
                if (es_ == 8) memcpy(&d, p, 8);
                r = vt_err("%s: tensor %s holds %g%s at element %lld of %lld (the weights must be finite)", path,
                           pi->name, d, isfinite(d) ? " (beyond float32's range)" : "", (long long)k, (long long)pi->numel);
                break;
            }
        }
        free(raw);
        if (r != VT_OK) break;
    }
    free(es);
    if (f) fclose(f);
    return r;
}

/* ---- the model a file describes (vit-train --init): what its shapes tell, the rest left as in c */

int vt_vit_grid_from_pos_embed(const char *path, const char *name, int64_t tokens, int patch, vt_vit_config *c)
{
    const int64_t n = tokens - 1;   /* without the class token */
    const int gh = c->patch > 0 ? c->img_h / c->patch : 0, gw = c->patch > 0 ? c->img_w / c->patch : 0;
    if (n < 1) return vt_err("%s: %s has %lld tokens: no patch tokens besides the class token", path, name, (long long)tokens);
    if (n == (int64_t)gh * gw) {
        c->img_h = gh * patch;
        c->img_w = gw * patch;
        return VT_OK;
    }
    int64_t s = (int64_t)sqrt((double)n);
    while (s * s > n) s--;
    while ((s + 1) * (s + 1) <= n) s++;
    if (s * s != n)
        return vt_err("%s: %s has %lld patch tokens (+ the class token): not the config's %dx%d grid and not a square "
                      "one, so the grid it was trained on is unknown (set [model] img_h and img_w to that grid times "
                      "the patch size %d)", path, name, (long long)n, gh, gw, patch);
    if (s * patch > 1 << 20) return vt_err("%s: %s has %lld patch tokens: too many", path, name, (long long)n);
    c->img_h = c->img_w = (int)s * patch;
    return VT_OK;
}

/* *out: entry name, with ndim dimensions and its data the size they say; a missing one is an error when
 * need, else *out = NULL */
static int st_find(const char *path, const st_entry *es, int n, uint64_t len, const char *name, int ndim, bool need,
                   const st_entry **out)
{
    const st_entry *e = NULL;
    *out = NULL;
    for (int k = 0; k < n && !e; k++)
        if (strcmp(es[k].name, name) == 0) e = &es[k];
    if (!e) return need ? vt_err("%s: no tensor %s", path, name) : VT_OK;
    char a[96];
    uint64_t numel = 1;
    bool ok = e->ndim == ndim;
    for (int k = 0; ok && k < e->ndim; k++) {
        ok = e->shape[k] >= 1 && e->shape[k] <= INT32_MAX && numel <= UINT64_MAX / 8 / (uint64_t)e->shape[k];
        if (ok) numel *= (uint64_t)e->shape[k];
    }
    if (!ok)
        return vt_err("%s: tensor %s has shape %s, a ViT's has %d dimensions", path, name,
                      vt_dims_str(e->ndim, e->shape, a, sizeof a), ndim);
    size_t es_ = dtype_size(e->dtype);   /* an unknown dtype is the loader's to name */
    if (es_ && (e->end < e->begin || e->end > len || e->end - e->begin != numel * es_))
        return vt_err("%s: tensor %s: data_offsets [%llu, %llu] do not hold its shape %s of %s inside the %llu data "
                      "bytes", path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                      vt_dims_str(e->ndim, e->shape, a, sizeof a), e->dtype, (unsigned long long)len);
    *out = e;
    return VT_OK;
}

int vt_vit_config_from_safetensors(const char *path, vt_vit_config *c)
{
    st_entry *es = NULL;
    int n = 0;
    uint64_t start = 0, len = 0;
    FILE *f = open_header(path, &es, &n, &start, &len);
    if (!f) return VT_ERR;
    fclose(f);
    vt_vit_config o = *c;
    const st_entry *cls = NULL, *pos = NULL, *pw = NULL, *head = NULL, *fc1 = NULL;
    int r = st_check_names(path, es, n, NULL);
    if (r == VT_OK) r = st_find(path, es, n, len, "cls_token", 3, false, &cls);
    if (r == VT_OK && !cls) r = vt_err("%s: " ST_NO_CLS, path);
    if (r == VT_OK) r = st_find(path, es, n, len, "pos_embed", 3, true, &pos);
    if (r == VT_OK) r = st_find(path, es, n, len, "patch_embed.proj.weight", 4, true, &pw);
    if (r == VT_OK) r = st_find(path, es, n, len, "head.weight", 2, false, &head);
    if (r == VT_OK) {
        o.embed_dim = (int)cls->shape[2];
        o.in_chans = (int)pw->shape[1];
        if (head) o.num_classes = (int)head->shape[0];   /* none (a backbone, e.g. timm's DINO/MAE): the config's */
        if (pw->shape[2] != pw->shape[3]) {
            char a[96];
            r = vt_err("%s: tensor patch_embed.proj.weight has shape %s: the patches are not square", path,
                       vt_dims_str(pw->ndim, pw->shape, a, sizeof a));
        }
    }
    /* depth: the blocks present (a missing one in between is the loader's to name) */
    o.depth = 0;
    for (int k = 0; r == VT_OK && k < n; k++) {
        const char *nm = es[k].name;
        if (strncmp(nm, "blocks.", 7) || !isdigit((unsigned char)nm[7])) continue;
        char *end;
        long b = strtol(nm + 7, &end, 10);
        if (*end == '.' && b < 1 << 20 && b + 1 > o.depth) o.depth = (int)b + 1;
    }
    if (r == VT_OK && o.depth > 0) r = st_find(path, es, n, len, "blocks.0.mlp.fc1.weight", 2, true, &fc1);
    if (r == VT_OK && fc1) {
        /* hidden = (int)(D * mlp_ratio): keep the config's ratio when it gives the file's hidden size */
        const int hidden = (int)fc1->shape[0];
        if ((int)(o.embed_dim * o.mlp_ratio) != hidden) {
            o.mlp_ratio = (double)hidden / o.embed_dim;
            if ((int)(o.embed_dim * o.mlp_ratio) != hidden) o.mlp_ratio = nextafter(o.mlp_ratio, INFINITY);
        }
    }
    if (r == VT_OK) r = vt_vit_grid_from_pos_embed(path, "pos_embed", pos->shape[1], (int)pw->shape[2], &o);
    /* the final norm: fc_norm.* (after the pooling; the names check refused it beside norm.*) or norm.* */
    o.fc_norm = false;
    for (int k = 0; r == VT_OK && k < n; k++) o.fc_norm |= st_is_fc_norm(es[k].name);
    if (r == VT_OK) {
        o.patch = (int)pw->shape[2];
        *c = o;
    }
    free(es);
    return r;
}

int vt_vit_save_safetensors(const vt_vit *m, const char *path)
{
    /* header: every parameter as F32 in timm's order, data back to back */
    size_t cap = 4096 + (size_t)m->params.count * 256, len = 0;
    char *h = malloc(cap);
    if (!h) return vt_err("out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"vit %s\"}",
                            VIT_VERSION);
    uint64_t off = 0;
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", pi->name);
        for (int k = 0; k < pi->ndim; k++) len += (size_t)snprintf(h + len, cap - len, k ? ",%lld" : "%lld", (long long)pi->shape[k]);
        uint64_t end = off + (uint64_t)pi->numel * 4;
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)end);
        off = end;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';   /* the data starts 8-byte aligned */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(h);
        return vt_err("%s: cannot write: %s", tmp, strerror(errno));
    }
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)len >> (8 * i));
    bool ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len;
    for (int i = 0; ok && i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        ok = fwrite(m->params.data + pi->offset, 4, (size_t)pi->numel, f) == (size_t)pi->numel;
    }
    free(h);
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return vt_err("%s: cannot write the safetensors file", path);
    }
    return VT_OK;
}
