/* safetensors.c - the format timm and the Hugging Face hub publish: an 8-byte little-endian header
 * length N, a JSON header of N bytes (parsed in safetensors_header.c), then the raw little-endian data
 * (offsets relative to the end of the header).
 * Reading checks every offset against the file, refuses a name or field given twice, a shape other than
 * the model's (exact: timm's state_dict has the model's own layouts), a value that is not finite in
 * float32, and, as timm's strict load_state_dict, any tensor the model does not have (q/k norm, a
 * distillation token ... are named as unsupported; fc_norm.* against norm.*, the two final norms a ViT may
 * have, say which [model] fc_norm the file needs) and a file without cls_token; writing emits float32
 * under timm's names. */
#include "nn_internal.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *const top[] = {"cls_token", "reg_token", "pos_embed", "patch_embed.proj.weight",
                                      "patch_embed.proj.bias", "head.weight", "head.bias"};
    static const char *const blk[] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                      "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                                      "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
                                      "ls1.gamma", "ls2.gamma"};
    return vt_weights_plain_name(name, top, sizeof top / sizeof top[0], "blocks.", '.', blk, sizeof blk / sizeof blk[0],
                                 -1);
}

/* VT_OK when every entry is a parameter of m (m NULL: of a plain ViT of any depth, with norm.* or, when
 * the file has no norm.*, fc_norm.*); else an error naming the first few unexpected tensors ("and N more"),
 * what they are when recognisable, the [model] fc_norm the file's final norm needs when that is the
 * difference, and, when the file has no cls_token either, that too */
static int st_check_names(const char *path, const vt_st_entry *es, int n, const vt_vit *m)
{
    vt_unexpected u = {0};
    bool have_cls = false, file_norm = false, file_fc_norm = false, bad_norm = false, bad_fc_norm = false, bad_ls = false,
         bad_reg = false;
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
        /* a ViT's tensors, only not this model's (m: ViTs of any depth accept both) */
        bad_ls |= st_plain_name(nm, false) && (strstr(nm, ".ls1.gamma") || strstr(nm, ".ls2.gamma"));
        bad_reg |= strcmp(nm, "reg_token") == 0;
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
                  "leaving them out would silently give another model)%s%s%s%s", path, u.bad == 1 ? "" : "s", u.list,
                  vt_unexpected_more(&u), what, u.feats, hint,
                  bad_ls ? "; the file's model has LayerScale: set [model] init_values > 0 (1e-6: DeiT-III's)" : "",
                  bad_reg ? "; the file's model has register tokens: set [model] reg_tokens to reg_token's count" : "",
                  have_cls ? "" : "; also " ST_NO_CLS);
}


int vt_vit_load_safetensors(vt_vit *m, const char *path) { return vt_vit_load_safetensors_backbone(m, path, NULL); }

int vt_vit_load_safetensors_backbone(vt_vit *m, const char *path, bool *had_head)
{
    vt_st_entry *es = NULL;
    int n = 0;
    uint64_t start = 0, len = 0;
    FILE *f = vt_st_open(path, &es, &n, &start, &len);
    int r = f ? st_check_names(path, es, n, m) : VT_ERR;
    char a[96], b[96];
    bool head = false;
    for (int k = 0; r == VT_OK && k < n; k++) head |= strncmp(es[k].name, "head.", 5) == 0;
    if (had_head) *had_head = head;
    for (int i = 0; r == VT_OK && i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        if (had_head && !head && (i == m->head_w || i == m->head_b)) continue;   /* a backbone: the caller's to fill */
        vt_st_entry *e = NULL;
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
            r = vt_err("%s: tensor %s has shape %s, the model expects %s" VT_WEIGHTS_NOTE("a safetensors file"), path, pi->name,
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
                char what[300];
                snprintf(what, sizeof what, "tensor %s", pi->name);
                r = vt_weights_not_finite(path, what, d, k, pi->numel);
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

/* *out: entry name, with ndim dimensions and its data the size they say; a missing one is an error when
 * need, else *out = NULL */
static int st_find(const char *path, const vt_st_entry *es, int n, uint64_t len, const char *name, int ndim, bool need,
                   const vt_st_entry **out)
{
    const vt_st_entry *e = NULL;
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
    vt_st_entry *es = NULL;
    int n = 0;
    uint64_t start = 0, len = 0;
    FILE *f = vt_st_open(path, &es, &n, &start, &len);
    if (!f) return VT_ERR;
    fclose(f);
    vt_vit_config o = *c;
    const vt_st_entry *cls = NULL, *reg = NULL, *pos = NULL, *pw = NULL, *head = NULL, *fc1 = NULL;
    int r = st_check_names(path, es, n, NULL);
    if (r == VT_OK) r = st_find(path, es, n, len, "cls_token", 3, false, &cls);
    if (r == VT_OK && !cls) r = vt_err("%s: " ST_NO_CLS, path);
    if (r == VT_OK) r = st_find(path, es, n, len, "pos_embed", 3, true, &pos);
    if (r == VT_OK) r = st_find(path, es, n, len, "patch_embed.proj.weight", 4, true, &pw);
    if (r == VT_OK) r = st_find(path, es, n, len, "head.weight", 2, false, &head);
    if (r == VT_OK) r = st_find(path, es, n, len, "reg_token", 3, false, &reg);
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
        long b = vt_weights_block(es[k].name, "blocks.", '.', false, NULL);
        if (b + 1 > o.depth) o.depth = (int)b + 1;
    }
    if (r == VT_OK && o.depth > 0) r = st_find(path, es, n, len, "blocks.0.mlp.fc1.weight", 2, true, &fc1);
    if (r == VT_OK && fc1) vt_weights_mlp_ratio(&o, (int)fc1->shape[0]);
    /* register tokens from reg_token (1, R, D); pos_embed over every token or (no_embed_class) the patches only */
    o.reg_tokens = reg ? (int)(reg->shape[1] > 1024 ? 1025 : reg->shape[1]) : 0;   /* too many: the check says so */
    if (r == VT_OK) vt_vit_pos_layout(pos->shape[1], (int)pw->shape[2], &o);
    if (r == VT_OK)
        r = vt_vit_grid_from_pos_embed(path, "pos_embed", pos->shape[1], vt_vit_pos_prefix(&o), (int)pw->shape[2], &o);
    /* the final norm: fc_norm.* (after the pooling; the names check refused it beside norm.*) or norm.*;
     * LayerScale when any block has a gamma (the loader names a block without) */
    o.fc_norm = false;
    bool ls = false;
    for (int k = 0; r == VT_OK && k < n; k++) {
        o.fc_norm |= st_is_fc_norm(es[k].name);
        ls |= vt_weights_block(es[k].name, "blocks.", '.', false, NULL) >= 0 &&
              (strstr(es[k].name, ".ls1.gamma") || strstr(es[k].name, ".ls2.gamma"));
    }
    o.init_values = !ls ? 0.0 : c->init_values > 0 ? c->init_values : 1e-6;   /* the weights hold the gammas */
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
