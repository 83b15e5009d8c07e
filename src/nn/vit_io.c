/* vit_io.c - parameters to and from HDF5 groups, by timm name, with exact shape checks; loading refuses a
 * value that is not finite. */
#include "nn.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vt_vit_load_h5(vt_vit *m, vt_h5id file, const char *group)
{
    char path[512], fb[512], a[128], b[128];
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        snprintf(path, sizeof path, "%s/%s", group, pi->name);
        int nd;
        int64_t sh[8];
        if (!vt_h5_exists(file, path))
            return vt_err("%s: missing tensor %s (expected shape %s)", vt_h5_filename(file, fb, sizeof fb), path,
                          vt_dims_str(pi->ndim, pi->shape, a, sizeof a));
        if (vt_h5_shape(file, path, &nd, sh) != VT_OK) return VT_ERR;
        bool same = nd == pi->ndim;
        for (int k = 0; same && k < nd; k++) same = sh[k] == pi->shape[k];
        if (!same)
            return vt_err("%s: tensor %s has shape %s, the model expects %s", vt_h5_filename(file, fb, sizeof fb),
                          pi->name, vt_dims_str(nd, sh, a, sizeof a), vt_dims_str(pi->ndim, pi->shape, b, sizeof b));
        float *w = m->params.data + pi->offset;
        if (vt_h5_read_into_f32(file, path, w, pi->numel) != VT_OK) return VT_ERR;
        /* a NaN or inf would only show later as a loss of nan (or be exported as it is) */
        for (int64_t k = 0; k < pi->numel; k++)
            if (!isfinite(w[k]))
                return vt_err("%s: tensor %s holds %g at element %lld of %lld (the weights must be finite: the file "
                              "is damaged or the run it comes from diverged)", vt_h5_filename(file, fb, sizeof fb),
                              path, (double)w[k], (long long)k, (long long)pi->numel);
    }
    return VT_OK;
}

int vt_vit_save_h5(const vt_vit *m, vt_h5id file, const char *group, int deflate)
{
    char path[512];
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        snprintf(path, sizeof path, "%s/%s", group, pi->name);
        if (vt_h5_write_f32(file, path, m->params.data + pi->offset, pi->ndim, pi->shape, deflate) != VT_OK)
            return VT_ERR;
    }
    return VT_OK;
}

/* ---- the model description as attributes: one table for the writer and both readers */
typedef enum { A_INT, A_F64, A_F32, A_BOOL, A_POOL, A_GELU, A_OBJ, A_VEC4 } attr_type;
static const struct {
    const char *name;
    attr_type type;
    size_t off;
    bool size;    /* required in every file that describes a model (the goldens' cases too) */
    bool later;   /* added after the first checkpoints: absent means the default */
    bool pt;      /* a self-supervised objective's: written only for one (absent: classification) */
} attrs[] = {
#define A(field, name, type, size, later) {name, type, offsetof(vt_vit_config, field), size, later, false}
#define PT(field, name, type) {name, type, offsetof(vt_vit_config, pretrain.field), false, true, true}
    A(img_h, "img_h", A_INT, true, false),          A(img_w, "img_w", A_INT, true, false),
    A(patch, "patch", A_INT, true, false),          A(in_chans, "in_chans", A_INT, true, false),
    A(num_classes, "num_classes", A_INT, true, false), A(embed_dim, "embed_dim", A_INT, true, false),
    A(depth, "depth", A_INT, true, false),          A(num_heads, "num_heads", A_INT, true, false),
    A(mlp_ratio, "mlp_ratio", A_F64, true, false),  A(ln_eps, "layer_norm_eps", A_F32, false, false),
    A(pool, "pool", A_POOL, false, false),          A(fc_norm, "fc_norm", A_BOOL, false, true),
    A(gelu, "gelu", A_GELU, false, false),          A(init_values, "init_values", A_F64, false, true),
    A(reg_tokens, "reg_tokens", A_INT, false, true), A(no_embed_class, "no_embed_class", A_BOOL, false, true),
    PT(kind, "objective", A_OBJ),                   PT(mask_ratio, "mask_ratio", A_F64),
    PT(color_bits, "color_bits", A_INT),            PT(target_size, "target_size", A_INT),
    PT(decoder_dim, "decoder_dim", A_INT),          PT(decoder_depth, "decoder_depth", A_INT),
    PT(decoder_heads, "decoder_heads", A_INT),      PT(norm_pix_loss, "norm_pix_loss", A_BOOL),
    PT(in_mean, "input_mean", A_VEC4),              PT(in_std, "input_std", A_VEC4),
#undef A
#undef PT
};

int vt_vit_write_attrs(vt_h5id f, const char *g, const vt_vit_config *c)
{
    int r = VT_OK;
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        const char *p = (const char *)c + attrs[i].off;
        const float *v = (const float *)p;
        char vec[128];
        if (attrs[i].pt && c->pretrain.kind == VT_OBJ_CLASSIFY) continue;
        switch (attrs[i].type) {
        case A_INT: r |= vt_h5_write_attr_i64(f, g, attrs[i].name, *(const int *)p); break;
        case A_F64: r |= vt_h5_write_attr_f64(f, g, attrs[i].name, *(const double *)p); break;
        case A_F32: r |= vt_h5_write_attr_f64(f, g, attrs[i].name, *(const float *)p); break;
        case A_BOOL: r |= vt_h5_write_attr_i64(f, g, attrs[i].name, *(const bool *)p ? 1 : 0); break;
        case A_POOL: r |= vt_h5_write_attr_str(f, g, attrs[i].name, vt_pool_name(*(const vt_pool_kind *)p)); break;
        case A_GELU: r |= vt_h5_write_attr_str(f, g, attrs[i].name, vt_gelu_name(*(const vt_gelu_kind *)p)); break;
        case A_OBJ: r |= vt_h5_write_attr_str(f, g, attrs[i].name, vt_objective_kind_name(*(const vt_objective_kind *)p)); break;
        case A_VEC4:   /* the in_chans values used, comma-separated, each to float precision */
            snprintf(vec, sizeof vec, "%.9g,%.9g,%.9g,%.9g", v[0], v[1], v[2], v[3]);
            r |= vt_h5_write_attr_str(f, g, attrs[i].name, vec);
            break;
        }
    }
    r |= vt_h5_write_attr_str(f, g, "layout", "timm state_dict names and shapes, float32");
    return r ? VT_ERR : VT_OK;
}

static int read_attr(vt_h5id f, const char *g, size_t i, char *p)
{
    const char *name = attrs[i].name;
    int64_t v;
    double d;
    char s[512];
    switch (attrs[i].type) {
    case A_INT:
        if (vt_h5_attr_i64(f, g, name, &v) != VT_OK) return VT_ERR;
        *(int *)p = (int)v;
        return VT_OK;
    case A_F64: return vt_h5_attr_f64(f, g, name, (double *)p);
    case A_F32:
        if (vt_h5_attr_f64(f, g, name, &d) != VT_OK) return VT_ERR;
        *(float *)p = (float)d;
        return VT_OK;
    case A_BOOL:
        if (vt_h5_attr_i64(f, g, name, &v) != VT_OK) return VT_ERR;
        if (v != 0 && v != 1)
            return vt_err("%s: %s attribute %s = %lld, expected 0 or 1", vt_h5_filename(f, s, sizeof s), g, name,
                          (long long)v);
        *(bool *)p = v == 1;
        return VT_OK;
    case A_POOL:
    case A_GELU:
        if (vt_h5_attr_str(f, g, name, s, 32) != VT_OK) return VT_ERR;
        if (attrs[i].type == A_POOL ? vt_pool_parse(s, (vt_pool_kind *)p) : vt_gelu_parse(s, (vt_gelu_kind *)p))
            return vt_err_prefix("%s: %s attribute %s: ", vt_h5_filename(f, s, sizeof s), g, name);
        return VT_OK;
    case A_OBJ:
        if (vt_h5_attr_str(f, g, name, s, 64) != VT_OK) return VT_ERR;
        if (vt_objective_kind_parse(s, (vt_objective_kind *)p) != VT_OK)
            return vt_err_prefix("%s: %s attribute %s: ", vt_h5_filename(f, s, sizeof s), g, name);
        return VT_OK;
    case A_VEC4: {
        if (vt_h5_attr_str(f, g, name, s, sizeof s) != VT_OK) return VT_ERR;
        char *e = s;
        for (int k = 0; k < 4; k++) {
            char *end;
            ((float *)p)[k] = strtof(e, &end);
            if (end == e || (*end != ',' && k < 3) || (k == 3 && *end)) {
                char fb[512];
                return vt_err("%s: %s attribute %s = '%s': expected 4 comma-separated numbers", vt_h5_filename(f, fb, sizeof fb),
                              g, name, s);
            }
            e = end + 1;
        }
        return VT_OK;
    }
    }
    return VT_ERR;
}

int vt_vit_read_attrs(vt_h5id f, const char *g, vt_vit_config *c, bool all)
{
    if (all) c->pretrain.kind = VT_OBJ_CLASSIFY;   /* a checkpoint without "objective": a classifier */
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        const bool need = attrs[i].size || (all && !attrs[i].later);
        if (!need && !vt_h5_has_attr(f, g, attrs[i].name)) continue;
        if (read_attr(f, g, i, (char *)c + attrs[i].off) != VT_OK) return VT_ERR;
    }
    return VT_OK;
}
