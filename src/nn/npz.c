/* npz.c - the original ViT releases (google-research/vision_transformer): a zip (stored or
 * deflated, read with libzip, CRCs checked) of .npy arrays under Flax names, mapped onto timm's
 * layout as timm's _load_weights does: conv kernel (P, P, C, D) -> (D, C, P, P); q/k/v kernels
 * (D, heads, head_dim) -> rows of the fused qkv; out kernel (heads, head_dim, D) -> proj (D, D);
 * Dense kernels (in, out) transposed.
 *
 * Shapes: each array must have its Flax layout, not just the right number of values (a transposed or
 * re-ranked array of the same size would load as garbage). Two leniencies follow what timm's loader
 * takes: leading dimensions of size 1 are ignored on both sides (timm's _n2p squeezes (1, 1, 1, C)
 * arrays and copy_ broadcasts (D,) into cls_token's (1, 1, D)), and the attention arrays may have their
 * heads merged, q/k/v kernels (D, D), biases (D,), out kernel (D, D), since timm flattens the head axes
 * anyway. Every value must be finite in float32.
 *
 * Names: every member must be an array the loader reads; others are refused, naming them (timm's own
 * _load_weights reads what it needs and ignores the rest, but a member we do not read would mean a model
 * that differs silently from the file's). The one exception is what real releases carry and timm skips
 * too: pre_logits/{kernel,bias}, the representation layer of the original ImageNet-21k checkpoints,
 * accepted and listed by vt_vit_npz_ignored for the caller to report. A file without cls.npy is refused
 * as a model without a class token.
 *
 * The layout has one final norm, Transformer/encoder_norm, over the tokens before any pooling (timm's
 * norm): a model with fc_norm, a norm after the pooling, is refused both ways. */
#include "nn_internal.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

typedef struct {
    int ndim;
    int64_t shape[8];
    float *data;   /* malloc'd, C order */
} npy_t;

#define NPZ_NO_CLS "no cls.npy (the class token): models without a class token are not supported"

/* the header of a .npy member of n bytes, avail of them in buf: out's ndim and shape (not its data), the
 * element size, where the data starts and the number of values */
static int npy_header(const char *path, const char *member, const uint8_t *buf, size_t avail, size_t n, npy_t *out,
                      int *esize_out, size_t *data_out, int64_t *count_out)
{
    if (n < 12 || avail < 12 || memcmp(buf, "\x93NUMPY", 6) != 0) return vt_err("%s: %s is not a .npy array", path, member);
    size_t hl, hoff;
    if (buf[6] == 1) hl = (size_t)buf[8] | (size_t)buf[9] << 8, hoff = 10;
    else hl = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24, hoff = 12;
    if (hoff + hl > n || hoff + hl > avail) return vt_err("%s: %s: truncated .npy header", path, member);
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "%.*s", (int)(hl < sizeof hdr - 1 ? hl : sizeof hdr - 1), (const char *)buf + hoff);
    int esize = strstr(hdr, "'<f4'") ? 4 : strstr(hdr, "'<f8'") ? 8 : 0;
    const char *sh = strstr(hdr, "'shape':");
    if (!esize || strstr(hdr, "'fortran_order': True") || !sh)
        return vt_err("%s: %s: only little-endian float32/float64 C-order arrays are supported (%s)", path, member, hdr);
    sh = strchr(sh, '(');
    out->ndim = 0;
    int64_t count = 1;
    size_t data = hoff + hl;
    for (const char *p = sh ? sh + 1 : ""; *p && *p != ')';) {
        if (isdigit((unsigned char)*p)) {
            int64_t v = strtoll(p, (char **)&p, 10);
            if (out->ndim == 8 || v > (int64_t)(n / (size_t)esize) || (v && count > (int64_t)(n / (size_t)esize) / v))
                return vt_err("%s: %s: shape %s does not fit the %zu data bytes (or has more than 8 dimensions)", path,
                              member, hdr, n - data);
            out->shape[out->ndim++] = v;
            count *= v;
        } else {
            p++;
        }
    }
    *esize_out = esize;
    *data_out = data;
    *count_out = count;
    return VT_OK;
}

/* read one .npy member: little-endian f4 or f8, C order */
static int read_npy(zip_t *z, const char *path, const char *name, npy_t *out)
{
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_int64_t idx = zip_name_locate(z, member, 0);
    if (idx < 0) return vt_err("%s: missing tensor %s", path, member);
    zip_stat_t st;
    if (zip_stat_index(z, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return vt_err("%s: cannot stat %s", path, member);
    /* the size sizes the buffer: a damaged directory must not claim more than the member's bytes can give
     * (stored: as many; deflate expands at most 1032 times) */
    bool stored = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_STORE,
         deflated = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_DEFLATE;
    if ((st.valid & ZIP_STAT_COMP_SIZE) && (stored || deflated) &&
        (stored ? st.size > st.comp_size : st.size > 64 && (st.size - 64) / 1032 > st.comp_size))
        return vt_err("%s: %s is damaged (it claims %llu bytes from %llu %s bytes)", path, member,
                      (unsigned long long)st.size, (unsigned long long)st.comp_size, stored ? "stored" : "deflated");
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    if (!f) return vt_err("%s: cannot open %s: %s", path, member, zip_strerror(z));
    uint8_t *buf = malloc(st.size + 1);
    zip_int64_t got = buf ? zip_fread(f, buf, st.size) : -1;
    const char *zerr = got < 0 ? zip_file_strerror(f) : NULL;
    char errbuf[256] = "";
    if (zerr) snprintf(errbuf, sizeof errbuf, "%s", zerr);
    int closed = zip_fclose(f);
    if (got != (zip_int64_t)st.size || closed != 0) {
        free(buf);
        return vt_err("%s: %s is damaged (%s)", path, member, errbuf[0] ? errbuf : "CRC or size mismatch");
    }
    size_t n = (size_t)st.size, data;
    int esize;
    int64_t count;
    if (npy_header(path, member, buf, n, n, out, &esize, &data, &count) != VT_OK) {
        free(buf);
        return VT_ERR;
    }
    if (data + (size_t)count * (size_t)esize != n) {
        free(buf);
        return vt_err("%s: %s: %zu data bytes for %lld values", path, member, n - data, (long long)count);
    }
    out->data = malloc(sizeof(float) * (size_t)(count ? count : 1));
    if (!out->data) {
        free(buf);
        return vt_err("out of memory");
    }
    for (int64_t i = 0; i < count; i++) {
        double d;
        if (esize == 4) memcpy(&out->data[i], buf + data + 4 * i, 4), d = out->data[i];
        else {
            memcpy(&d, buf + data + 8 * i, 8);
            out->data[i] = (float)d;
        }
        if (!isfinite(out->data[i])) {   /* NaN, inf, or a float64 beyond float32's range */
            free(buf);
            free(out->data);
            out->data = NULL;
            return vt_weights_not_finite(path, member, d, i, count);
        }
    }
    free(buf);
    return VT_OK;
}

/* an expected Flax layout (ndim < 0: none) */
typedef struct {
    int ndim;
    int64_t dim[4];
} layout;
#define LAYOUT(...) ((layout){(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}})
#define NO_ALT ((layout){-1, {0}})

/* shape equals want once leading dimensions of size 1 are dropped from both */
static bool fits(const npy_t *a, const layout *want)
{
    int i = 0, j = 0;
    while (i < a->ndim && a->shape[i] == 1) i++;
    while (j < want->ndim && want->dim[j] == 1) j++;
    if (a->ndim - i != want->ndim - j) return false;
    for (; i < a->ndim; i++, j++)
        if (a->shape[i] != want->dim[j]) return false;
    return true;
}

/* the array must have the layout want (or alt, the heads-merged attention layout); a message names both */
static int need(const char *path, const char *name, const npy_t *a, layout want, layout alt)
{
    if (fits(a, &want) || (alt.ndim >= 0 && fits(a, &alt))) return VT_OK;
    char b[96], w[96], x[96] = "";
    vt_dims_str(want.ndim, want.dim, w, sizeof w);
    if (alt.ndim >= 0) {
        char t[96];
        snprintf(x, sizeof x, " or %s", vt_dims_str(alt.ndim, alt.dim, t, sizeof t));
    }
    return vt_err("%s: %s has shape %s, the model needs %s%s" VT_WEIGHTS_NOTE("an npz file"), path, name,
                  vt_dims_str(a->ndim, a->shape, b, sizeof b), w, x);
}

/* the seven vectors of block i, in the order the loader reads and the writer writes them */
void vt_npz_block_vecs(const vt_vit *m, int i, vt_npz_vec v[VT_NPZ_BLOCK_VECS])
{
    const vt_block_params *b = &m->blocks[i];
    const int64_t D = m->cfg.embed_dim, Hd = (int64_t)(m->cfg.embed_dim * m->cfg.mlp_ratio);
    const vt_npz_vec vec[VT_NPZ_BLOCK_VECS] = {
        {"LayerNorm_0/scale", b->norm1_w, D}, {"LayerNorm_0/bias", b->norm1_b, D},
        {"LayerNorm_2/scale", b->norm2_w, D}, {"LayerNorm_2/bias", b->norm2_b, D},
        {"MultiHeadDotProductAttention_1/out/bias", b->proj_b, D},
        {"MlpBlock_3/Dense_0/bias", b->fc1_b, Hd}, {"MlpBlock_3/Dense_1/bias", b->fc2_b, D}};
    memcpy(v, vec, sizeof vec);
}

/* the zip, consistency-checked; NULL with a message naming the file */
static zip_t *open_npz(const char *path)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, zerr);
        vt_err("%s: not a readable zip / npz file (%s)", path, zip_error_strerror(&e));
        zip_error_fini(&e);
    }
    return z;
}

/* ---- names: every member must be one the loader reads (or one of the few a real release carries that it
 * knowingly leaves out); anything else is refused, naming it, as a safetensors file's extra tensors are */

/* members of real Google releases that the loader does not use: the representation layer ("pre_logits")
 * of the original ImageNet-21k checkpoints (ViT-B_16.npz ...). timm's _load_weights skips it too (it has
 * dropped the representation layer); fine-tuning replaces it with the head. */
static bool npz_ignored(const char *member)
{
    return strcmp(member, "pre_logits/kernel.npy") == 0 || strcmp(member, "pre_logits/bias.npy") == 0;
}

/* what an unexpected member is, when recognisable (NULL otherwise) */
static const char *npz_feature(const char *member)
{
    if (strncmp(member, "opt/", 4) == 0) return "an optimizer checkpoint (names under opt/target/)";
    if (strncmp(member, "params/", 7) == 0) return "a big_vision checkpoint (names under params/)";
    if (strncmp(member, "MAPHead_0/", 10) == 0) return "attention pooling (MAPHead_0)";
    if (strstr(member, "/MultiHeadDotProductAttention_0/")) return "big_vision's block layout";
    return NULL;
}

/* member is one of a plain ViT's arrays (blocks below depth; depth < 0: any block) */
static bool npz_plain(const char *member, int depth)
{
    static const char *const top[] = {"embedding/kernel.npy", "embedding/bias.npy", "cls.npy",
                                      "Transformer/posembed_input/pos_embedding.npy",
                                      "Transformer/encoder_norm/scale.npy", "Transformer/encoder_norm/bias.npy",
                                      "head/kernel.npy", "head/bias.npy"};
    static const char *const blk[] = {"LayerNorm_0/scale.npy", "LayerNorm_0/bias.npy", "LayerNorm_2/scale.npy",
                                      "LayerNorm_2/bias.npy", "MlpBlock_3/Dense_0/kernel.npy", "MlpBlock_3/Dense_0/bias.npy",
                                      "MlpBlock_3/Dense_1/kernel.npy", "MlpBlock_3/Dense_1/bias.npy",
                                      "MultiHeadDotProductAttention_1/query/kernel.npy",
                                      "MultiHeadDotProductAttention_1/query/bias.npy",
                                      "MultiHeadDotProductAttention_1/key/kernel.npy",
                                      "MultiHeadDotProductAttention_1/key/bias.npy",
                                      "MultiHeadDotProductAttention_1/value/kernel.npy",
                                      "MultiHeadDotProductAttention_1/value/bias.npy",
                                      "MultiHeadDotProductAttention_1/out/kernel.npy",
                                      "MultiHeadDotProductAttention_1/out/bias.npy"};
    return vt_weights_plain_name(member, top, sizeof top / sizeof top[0], "Transformer/encoderblock_", '/', blk,
                                 sizeof blk / sizeof blk[0], depth);
}

/* VT_OK when every member of z is read by the loader for a model of depth blocks (< 0: any) or is one it
 * knowingly ignores; else an error naming the first few others ("and N more") */
static int npz_check_names(zip_t *z, const char *path, int depth)
{
    zip_int64_t entries = zip_get_num_entries(z, 0);
    vt_unexpected u = {0};
    for (zip_int64_t i = 0; i < entries; i++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
        if (!nm) return vt_err("%s: cannot read the name of member %lld: %s", path, (long long)i, zip_strerror(z));
        size_t len = strlen(nm);
        if ((len && nm[len - 1] == '/') || npz_ignored(nm) || npz_plain(nm, depth)) continue;   /* folders: no data */
        vt_unexpected_add(&u, nm, npz_feature(nm));
    }
    if (!u.bad) return VT_OK;
    return vt_err("%s: unexpected member%s %s%s (%s%s; only the arrays of a plain ViT in the layout of the original "
                  "Google releases are read, and leaving others out would silently give another model)", path,
                  u.bad == 1 ? "" : "s", u.list, vt_unexpected_more(&u), u.fl ? "not supported: " : "not arrays of a plain ViT",
                  u.feats);
}

int vt_vit_npz_ignored(const char *path, char *out, size_t n)
{
    if (n) out[0] = '\0';
    zip_t *z = open_npz(path);
    if (!z) return VT_ERR;
    size_t o = 0;
    zip_int64_t entries = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < entries; i++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
        if (nm && npz_ignored(nm) && o < n)
            o += (size_t)snprintf(out + o, n - o, "%s%.*s", o ? ", " : "", (int)(strlen(nm) - 4), nm);
    }
    zip_discard(z);
    return VT_OK;
}

int vt_vit_load_npz(vt_vit *m, const char *path)
{
    if (vt_npz_supported(&m->cfg, path, "") != VT_OK) return VT_ERR;
    zip_t *z = open_npz(path);
    if (!z) return VT_ERR;
    const vt_vit_config *c = &m->cfg;
    const int64_t D = c->embed_dim, Hd = (int64_t)(c->embed_dim * c->mlp_ratio), K = c->num_classes, Cp = c->in_chans,
                  Pp = c->patch, NH = c->num_heads, T = (int64_t)m->grid_h * m->grid_w + 1;
    npy_t a = {0};
    int r = npz_check_names(z, path, c->depth);
    char name[256];
    const int64_t hd = D / NH;
#define LOAD2(nm, want, alt)                                                                              \
    (free(a.data), a.data = NULL, r = read_npy(z, path, (nm), &a), r = r == VT_OK ? need(path, (nm), &a, (want), (alt)) : r)
#define LOAD(nm, want) LOAD2(nm, want, NO_ALT)
    /* patch embedding: (P, P, C, D) -> (D, C, P, P) */
    if (r == VT_OK && LOAD("embedding/kernel", LAYOUT(Pp, Pp, Cp, D)) == VT_OK) {
        float *w = vt_pdata(m, m->patch_w);
        for (int64_t py = 0; py < Pp; py++)
            for (int64_t px = 0; px < Pp; px++)
                for (int64_t ch = 0; ch < Cp; ch++)
                    for (int64_t d = 0; d < D; d++)
                        w[((d * Cp + ch) * Pp + py) * Pp + px] = a.data[((py * Pp + px) * Cp + ch) * D + d];
    }
    if (r == VT_OK && LOAD("embedding/bias", LAYOUT(D)) == VT_OK)
        memcpy(vt_pdata(m, m->patch_b), a.data, sizeof(float) * (size_t)D);
    if (r == VT_OK && zip_name_locate(z, "cls.npy", 0) < 0) r = vt_err("%s: " NPZ_NO_CLS, path);
    if (r == VT_OK && LOAD("cls", LAYOUT(1, 1, D)) == VT_OK)
        memcpy(vt_pdata(m, m->cls_token), a.data, sizeof(float) * (size_t)D);
    if (r == VT_OK && LOAD("Transformer/posembed_input/pos_embedding", LAYOUT(1, T, D)) == VT_OK)
        memcpy(vt_pdata(m, m->pos_embed), a.data, sizeof(float) * (size_t)(T * D));
    for (int i = 0; r == VT_OK && i < c->depth; i++) {
        const vt_block_params *b = &m->blocks[i];
        char pre[96];
        snprintf(pre, sizeof pre, "Transformer/encoderblock_%d", i);
        vt_npz_vec vec[VT_NPZ_BLOCK_VECS];
        vt_npz_block_vecs(m, i, vec);
        for (size_t k = 0; r == VT_OK && k < VT_NPZ_BLOCK_VECS; k++) {
            snprintf(name, sizeof name, "%s/%s", pre, vec[k].name);
            if (LOAD(name, LAYOUT(vec[k].numel)) == VT_OK)
                memcpy(vt_pdata(m, vec[k].idx), a.data, sizeof(float) * (size_t)vec[k].numel);
        }
        /* q, k, v: kernel (D, heads, hd) -> rows [j*D, (j+1)*D) of qkv.weight (3D, D); bias (heads, hd) */
        const char *qkv[3] = {"query", "key", "value"};
        for (int j = 0; r == VT_OK && j < 3; j++) {
            snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/%s/kernel", pre, qkv[j]);
            if (LOAD2(name, LAYOUT(D, NH, hd), LAYOUT(D, D)) == VT_OK)
                vt_transpose2(vt_pdata(m, b->qkv_w) + j * D * D, a.data, D, D);
            snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/%s/bias", pre, qkv[j]);
            if (r == VT_OK && LOAD2(name, LAYOUT(NH, hd), LAYOUT(D)) == VT_OK)
                memcpy(vt_pdata(m, b->qkv_b) + j * D, a.data, sizeof(float) * (size_t)D);
        }
        /* out kernel (heads, hd, D) -> proj.weight (D, heads*hd) */
        snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/out/kernel", pre);
        if (r == VT_OK && LOAD2(name, LAYOUT(NH, hd, D), LAYOUT(D, D)) == VT_OK)
            vt_transpose2(vt_pdata(m, b->proj_w), a.data, D, D);
        snprintf(name, sizeof name, "%s/MlpBlock_3/Dense_0/kernel", pre);
        if (r == VT_OK && LOAD(name, LAYOUT(D, Hd)) == VT_OK) vt_transpose2(vt_pdata(m, b->fc1_w), a.data, D, Hd);
        snprintf(name, sizeof name, "%s/MlpBlock_3/Dense_1/kernel", pre);
        if (r == VT_OK && LOAD(name, LAYOUT(Hd, D)) == VT_OK) vt_transpose2(vt_pdata(m, b->fc2_w), a.data, Hd, D);
    }
    if (r == VT_OK && LOAD("Transformer/encoder_norm/scale", LAYOUT(D)) == VT_OK)
        memcpy(vt_pdata(m, m->norm_w), a.data, sizeof(float) * (size_t)D);
    if (r == VT_OK && LOAD("Transformer/encoder_norm/bias", LAYOUT(D)) == VT_OK)
        memcpy(vt_pdata(m, m->norm_b), a.data, sizeof(float) * (size_t)D);
    if (r == VT_OK && LOAD("head/kernel", LAYOUT(D, K)) == VT_OK) vt_transpose2(vt_pdata(m, m->head_w), a.data, D, K);
    if (r == VT_OK && LOAD("head/bias", LAYOUT(K)) == VT_OK)
        memcpy(vt_pdata(m, m->head_b), a.data, sizeof(float) * (size_t)K);
#undef LOAD
#undef LOAD2
    free(a.data);
    zip_discard(z);
    return r;
}

/* ---- the model a file describes (vit-train --init), from the .npy headers alone */

/* out's shape of member name.npy (*found false, no error, when it is missing and not need) */
static int npy_shape(zip_t *z, const char *path, const char *name, bool need, npy_t *out, bool *found)
{
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    *found = false;
    zip_int64_t idx = zip_name_locate(z, member, 0);
    if (idx < 0) return need ? vt_err("%s: missing tensor %s", path, member) : VT_OK;
    zip_stat_t st;
    if (zip_stat_index(z, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return vt_err("%s: cannot stat %s", path, member);
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    if (!f) return vt_err("%s: cannot open %s: %s", path, member, zip_strerror(z));
    size_t want = st.size < (1u << 17) ? (size_t)st.size : (1u << 17);   /* a v1 header is under 64 KiB */
    uint8_t *buf = malloc(want + 1);
    zip_int64_t got = buf ? zip_fread(f, buf, want) : -1;
    zip_fclose(f);   /* only the head was read: the CRC is the loader's to check */
    int esize, r;
    size_t data;
    int64_t count;
    if (got < 0) r = vt_err("%s: %s is damaged", path, member);
    else r = npy_header(path, member, buf, (size_t)got, (size_t)st.size, out, &esize, &data, &count);
    free(buf);
    *found = r == VT_OK;
    return r;
}

/* the last k dimensions of a's shape into d (leading 1s, dropped as the loader drops them, padded back) */
static int npy_tail(const char *path, const char *name, const npy_t *a, int k, int64_t *d)
{
    bool ok = true;
    for (int i = 0; i < a->ndim - k; i++) ok &= a->shape[i] == 1;
    for (int i = 0; i < k; i++) {
        int j = a->ndim - k + i;
        d[i] = j >= 0 ? a->shape[j] : 1;
        ok &= d[i] >= 1 && d[i] <= INT32_MAX;
    }
    if (ok) return VT_OK;
    char b[96];
    return vt_err("%s: %s.npy has shape %s, not the %d-dimensional layout of a ViT's", path, name,
                  vt_dims_str(a->ndim, a->shape, b, sizeof b), k);
}

int vt_vit_config_from_npz(const char *path, vt_vit_config *c)
{
    zip_t *z = open_npz(path);
    if (!z) return VT_ERR;
    const char *pos_name = "Transformer/posembed_input/pos_embedding";
    vt_vit_config o = *c;
    o.fc_norm = false;   /* the layout has none, nor LayerScale */
    o.init_values = 0;
    o.reg_tokens = 0;
    o.no_embed_class = false;
    npy_t a = {0};
    bool found;
    int64_t cls[1] = {0}, pos[2] = {0}, emb[4] = {0}, head[2] = {0}, fc1[2] = {0};
    int r = npz_check_names(z, path, -1);
    if (r == VT_OK) r = npy_shape(z, path, "cls", false, &a, &found);
    if (r == VT_OK && !found) r = vt_err("%s: " NPZ_NO_CLS, path);
    if (r == VT_OK) r = npy_tail(path, "cls", &a, 1, cls);
    if (r == VT_OK) r = npy_shape(z, path, pos_name, true, &a, &found);
    if (r == VT_OK) r = npy_tail(path, pos_name, &a, 2, pos);
    if (r == VT_OK) r = npy_shape(z, path, "embedding/kernel", true, &a, &found);
    if (r == VT_OK) r = npy_tail(path, "embedding/kernel", &a, 4, emb);
    if (r == VT_OK) r = npy_shape(z, path, "head/kernel", true, &a, &found);
    if (r == VT_OK) r = npy_tail(path, "head/kernel", &a, 2, head);
    if (r == VT_OK && emb[0] != emb[1]) {
        char b[96];
        r = vt_err("%s: embedding/kernel.npy has shape %s: the patches are not square", path,
                   vt_dims_str(a.ndim, a.shape, b, sizeof b));
    }
    if (r == VT_OK) {
        o.embed_dim = (int)cls[0];
        o.in_chans = (int)emb[2];
        o.num_classes = (int)head[1];
    }
    /* depth: the blocks present (a missing one in between is the loader's to name) */
    o.depth = 0;
    zip_int64_t entries = r == VT_OK ? zip_get_num_entries(z, 0) : 0;
    for (zip_int64_t i = 0; i < entries; i++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
        long b = nm ? vt_weights_block(nm, "Transformer/encoderblock_", '/', false, NULL) : -1;
        if (b + 1 > o.depth) o.depth = (int)b + 1;
    }
    if (r == VT_OK && o.depth > 0) {
        const char *dense0 = "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel",
                   *query = "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel";
        r = npy_shape(z, path, dense0, true, &a, &found);
        if (r == VT_OK) r = npy_tail(path, dense0, &a, 2, fc1);
        if (r == VT_OK) {
            vt_weights_mlp_ratio(&o, (int)fc1[1]);
            /* the heads, when the q kernel keeps Flax's (D, heads, head_dim) */
            r = npy_shape(z, path, query, true, &a, &found);
        }
        bool split = r == VT_OK && a.ndim >= 3;
        for (int i = 0; split && i < a.ndim - 3; i++) split = a.shape[i] == 1;
        if (split && a.shape[a.ndim - 3] == o.embed_dim && a.shape[a.ndim - 2] >= 1 && a.shape[a.ndim - 2] <= INT32_MAX)
            o.num_heads = (int)a.shape[a.ndim - 2];
    }
    if (r == VT_OK) r = vt_vit_grid_from_pos_embed(path, pos_name, pos[0], 1, (int)emb[0], &o);
    if (r == VT_OK) {
        o.patch = (int)emb[0];
        *c = o;
    }
    zip_discard(z);
    return r;
}
