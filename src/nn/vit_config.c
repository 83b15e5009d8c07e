/* vit_config.c - model descriptions: timm defaults, the paper's presets, validation. */
#include "nn.h"
#include <string.h>

void vt_vit_config_defaults(vt_vit_config *c)
{
    memset(c, 0, sizeof *c);
    c->img_h = c->img_w = 224;
    c->patch = 16;
    c->in_chans = 3;
    c->num_classes = 1000;
    c->embed_dim = 768;
    c->depth = 12;
    c->num_heads = 12;
    c->mlp_ratio = 4.0;
    c->ln_eps = 1e-6f;
    c->pool = VT_POOL_TOKEN;
    c->gelu = VT_GELU_ERF;
    vt_pretrain_config *p = &c->pretrain;
    p->kind = VT_OBJ_CLASSIFY;
    p->mask_ratio = 0.5;
    p->color_bits = 3;
    p->decoder_dim = 512;   /* MAE's defaults (its ViT-B) */
    p->decoder_depth = 8;
    p->decoder_heads = 16;
    p->norm_pix_loss = true;
    for (int k = 0; k < 4; k++) p->in_mean[k] = 0.5f, p->in_std[k] = 0.5f;
}

/* Table 1 of Dosovitskiy et al. (Ti and S from DeiT / timm) */
static const struct {
    const char *name, *timm;
    int dim, depth, heads, patch;
} presets[] = {
    {"ti16", "vit_tiny_patch16", 192, 12, 3, 16},   {"s16", "vit_small_patch16", 384, 12, 6, 16},
    {"b16", "vit_base_patch16", 768, 12, 12, 16},   {"l16", "vit_large_patch16", 1024, 24, 16, 16},
    {"h14", "vit_huge_patch14", 1280, 32, 16, 14},  {"b32", "vit_base_patch32", 768, 12, 12, 32},
    {"l32", "vit_large_patch32", 1024, 24, 16, 32}, {"s32", "vit_small_patch32", 384, 12, 6, 32},
};

int vt_vit_preset(vt_vit_config *c, const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name, presets[i].name) == 0 || strncmp(name, presets[i].timm, strlen(presets[i].timm)) == 0) {
            c->embed_dim = presets[i].dim;
            c->depth = presets[i].depth;
            c->num_heads = presets[i].heads;
            c->patch = presets[i].patch;
            c->mlp_ratio = 4.0;
            return VT_OK;
        }
    return vt_err("unknown model preset '%s' (known: ti16 s16 b16 l16 h14 s32 b32 l32)", name);
}

/* a self-supervised objective's settings */
/* The MLP's hidden size dim * mlp_ratio must be an int from 1 to 2^24: checked in double precision, since
   converting a float out of int's range is undefined (a fuzzed checkpoint's mlp_ratio 2e106 was). */
static int hidden_ok(int dim, double ratio)
{
    const double h = dim * ratio;
    return ratio > 0 && h >= 1 && h <= (double)(1 << 24);
}

static int pretrain_check(const vt_vit_config *c)
{
    const vt_pretrain_config *p = &c->pretrain;
    const int N = (c->img_h / c->patch) * (c->img_w / c->patch);
    if (p->kind == VT_OBJ_CLASSIFY) return VT_OK;
    if ((int)p->kind < 0 || p->kind > VT_OBJ_MAE) return vt_err("model: [pretrain] unknown objective %d", (int)p->kind);
    const char *name = vt_objective_kind_name(p->kind);
    if (!(p->mask_ratio > 0 && p->mask_ratio < 1)) return vt_err("model: [pretrain] %s: mask_ratio %g must be in (0, 1)", name, p->mask_ratio);
    if (c->patch_drop_rate > 0)
        return vt_err("model: [pretrain] %s masks patches itself: [model] patch_drop_rate must be 0 (it is %g)", name,
                      c->patch_drop_rate);
    if (c->reg_tokens > 0)   /* its heads and masks take the class token as the only prefix token */
        return vt_err("model: [pretrain] %s with register tokens is not supported ([model] reg_tokens must be 0, it is %d)",
                      name, c->reg_tokens);
    if (p->kind == VT_OBJ_MASKED_COLOR && (p->color_bits < 1 || p->color_bits * c->in_chans > 16))
        return vt_err("model: [pretrain] color_bits %d for %d channels must give 2 to 65536 classes", p->color_bits,
                      c->in_chans);
    if (p->kind == VT_OBJ_MASKED_PIXELS && p->target_size && (p->target_size < 1 || c->patch % p->target_size))
        return vt_err("model: [pretrain] target_size %d must divide the patch size %d", p->target_size, c->patch);
    if (p->kind == VT_OBJ_MAE && N < 2) return vt_err("model: [pretrain] mae needs at least 2 patches (the image has %d)", N);
    if (p->kind == VT_OBJ_MAE && (p->decoder_dim < 1 || p->decoder_depth < 0 || p->decoder_heads < 1 ||
                                  p->decoder_dim % p->decoder_heads || !hidden_ok(p->decoder_dim, c->mlp_ratio)))
        return vt_err("model: [pretrain] decoder_dim %d must be positive and divisible by decoder_heads %d (decoder_depth %d)",
                      p->decoder_dim, p->decoder_heads, p->decoder_depth);
    for (int k = 0; k < c->in_chans && k < 4; k++)
        if (!(p->in_std[k] > 0)) return vt_err("model: [pretrain] %s: the input std of channel %d must be positive", name, k);
    return VT_OK;
}

int vt_vit_config_check(const vt_vit_config *c)
{
    if (c->patch < 1) return vt_err("model: patch size %d must be positive", c->patch);
    if (c->img_h < c->patch || c->img_w < c->patch || c->img_h % c->patch || c->img_w % c->patch)
        return vt_err("model: image %dx%d is not a multiple of the patch size %d", c->img_h, c->img_w, c->patch);
    if (c->in_chans < 1) return vt_err("model: in_chans %d must be positive", c->in_chans);
    if (!(c->patch_drop_rate >= 0 && c->patch_drop_rate < 1))
        return vt_err("model: patch_drop_rate %g must be in [0, 1)", c->patch_drop_rate);
    if (!(c->drop_path_rate >= 0 && c->drop_path_rate < 1))
        return vt_err("model: drop_path_rate %g must be in [0, 1)", c->drop_path_rate);
    if (!(c->init_values >= 0 && c->init_values <= 1e6))
        return vt_err("model: init_values %g must be in [0, 1e6] (0: no LayerScale)", c->init_values);
    if (c->reg_tokens < 0 || c->reg_tokens > 1024)
        return vt_err("model: reg_tokens %d must be in [0, 1024]", c->reg_tokens);
    if (c->num_classes < 1) return vt_err("model: num_classes %d must be positive", c->num_classes);
    if (c->embed_dim < 1) return vt_err("model: embed_dim %d must be positive", c->embed_dim);
    if (c->depth < 0) return vt_err("model: depth %d must not be negative", c->depth);
    if (c->num_heads < 1 || c->embed_dim % c->num_heads)
        return vt_err("model: embed_dim %d is not divisible by num_heads %d", c->embed_dim, c->num_heads);
    if (!hidden_ok(c->embed_dim, c->mlp_ratio))
        return vt_err("model: mlp_ratio %g must give a hidden size from 1 to 2^24 (embed_dim %d)", c->mlp_ratio,
                      c->embed_dim);
    if (!(c->ln_eps > 0)) return vt_err("model: layer_norm_eps %g must be positive", c->ln_eps);
    if (c->pool != VT_POOL_TOKEN && c->pool != VT_POOL_MEAN) return vt_err("model: unknown pooling %d", (int)c->pool);
    return pretrain_check(c);
}

#define KIND_NAME(kind, name) [kind] = name,
static const char *const pool_names[] = {VT_POOL_NAMES(KIND_NAME)};
static const char *const gelu_names[] = {VT_GELU_NAMES(KIND_NAME)};
#define NNAMES(a) (int)(sizeof a / sizeof *a)

const char *vt_pool_name(vt_pool_kind k) { return (int)k >= 0 && (int)k < NNAMES(pool_names) ? pool_names[k] : "?"; }
const char *vt_gelu_name(vt_gelu_kind k) { return (int)k >= 0 && (int)k < NNAMES(gelu_names) ? gelu_names[k] : "?"; }

static int parse_name(const char *const *names, int n, const char *name, int *k, const char *what, const char *choices)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0) return *k = i, VT_OK;
    return vt_err("%s '%s' unknown (expected %s)", what, name, choices);
}

int vt_pool_parse(const char *name, vt_pool_kind *k)
{
    int v = 0;
    if (parse_name(pool_names, NNAMES(pool_names), name, &v, "pooling", VT_POOL_CHOICES) != VT_OK) return VT_ERR;
    *k = (vt_pool_kind)v;
    return VT_OK;
}

int vt_gelu_parse(const char *name, vt_gelu_kind *k)
{
    int v = 0;
    if (parse_name(gelu_names, NNAMES(gelu_names), name, &v, "GELU", VT_GELU_CHOICES) != VT_OK) return VT_ERR;
    *k = (vt_gelu_kind)v;
    return VT_OK;
}
