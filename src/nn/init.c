/* init.c - timm's initialisation of a ViT ('' / timm mode) from an explicit RNG. */
#include "nn.h"
#include <math.h>
#include <string.h>

static void fill_trunc_normal(float *p, int64_t n, vt_rng *r, double std)
{
    /* torch.nn.init.trunc_normal_(std=std, a=-2, b=2): the bounds are absolute */
    for (int64_t i = 0; i < n; i++) p[i] = (float)vt_rng_trunc_normal(r, 0.0, std, -2.0, 2.0);
}

static void fill_uniform(float *p, int64_t n, vt_rng *r, double bound)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)((2.0 * vt_rng_uniform(r) - 1.0) * bound);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* pos_embed trunc_normal(.02); cls_token and reg_token normal(1e-6); Linear weights trunc_normal(.02), biases 0;
 * LayerNorm (norm1, norm2, norm or fc_norm) 1 / 0; LayerScale gammas init_values; the self-supervised objectives'
 * mask_token and MAE's decoder_pos_embed trunc_normal(.02) (learned here, where MAE fixes sin-cos position
 * embeddings); the patch conv keeps torch's default Conv2d init: weight and bias
 * uniform(+-1/sqrt(fan_in)) with fan_in = C*P*P. Parameters are visited in timm's order. */
void vt_vit_init_weights(vt_vit *m, vt_rng *rng)
{
    const vt_vit_config *c = &m->cfg;
    double fan_in = (double)c->in_chans * c->patch * c->patch;
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        float *p = m->params.data + pi->offset;
        const char *nm = pi->name;
        if (strcmp(nm, "pos_embed") == 0 || strcmp(nm, "decoder_pos_embed") == 0 || strcmp(nm, "mask_token") == 0) {
            fill_trunc_normal(p, pi->numel, rng, 0.02);
        } else if (strcmp(nm, "cls_token") == 0 || strcmp(nm, "reg_token") == 0) {
            for (int64_t k = 0; k < pi->numel; k++) p[k] = (float)(1e-6 * vt_rng_normal(rng));
        } else if (strncmp(nm, "patch_embed.", 12) == 0) {
            fill_uniform(p, pi->numel, rng, 1.0 / sqrt(fan_in));
        } else if (strstr(nm, "norm") && ends_with(nm, ".weight")) {
            for (int64_t k = 0; k < pi->numel; k++) p[k] = 1.0f;
        } else if (ends_with(nm, ".gamma")) {   /* LayerScale: init_values * ones */
            for (int64_t k = 0; k < pi->numel; k++) p[k] = (float)c->init_values;
        } else if (ends_with(nm, ".weight")) {
            fill_trunc_normal(p, pi->numel, rng, 0.02);
        } else {
            memset(p, 0, (size_t)pi->numel * sizeof(float));
        }
    }
}
