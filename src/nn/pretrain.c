/* pretrain.c - self-supervised objectives without labels: the masks (pure functions of the step's key and the
 * image's place in the batch, so that a resumed run draws the same ones), the targets taken from the images,
 * and the paper's masked patch prediction (Dosovitskiy et al., section 4.6 and appendix B.1.2): mask_ratio of
 * each image's patch embeddings are corrupted (80% become a learned [mask] embedding, 10% the embedding of a
 * random other patch of the image, 10% stay) and a Linear head on the encoder's output token of each corrupted
 * patch predicts its mean colour, quantised to color_bits per channel (masked_patch_color: cross-entropy), or
 * its pixels (masked_patch_pixels: L2, optionally of the patch averaged down to target_size x target_size).
 * MAE is mae.c. */
#include "nn.h"
#include <math.h>
#include <string.h>

#define PV(idx) (&m->params.vars[(idx)])

/* salts that keep the masks' streams apart from patch dropout's (which uses the key itself) */
#define SALT_SELECT 0xA0761D6478BD642Full
#define SALT_MODE 0xE7037ED1A0B428DBull
#define EVAL_KEY 0x8EBC6AF09C88C6E3ull

int vt_pretrain_masked_count(const vt_vit_config *c, int N)
{
    const double r = c->pretrain.mask_ratio;
    if (c->pretrain.kind == VT_OBJ_MAE) {
        int keep = (int)(N * (1.0 - r));   /* MAE's len_keep = int(L * (1 - mask_ratio)); one hidden at least */
        keep = keep > N - 1 ? N - 1 : keep;
        keep = keep < 1 ? 1 : keep;
        return N - keep;
    }
    int M = (int)(N * r + 0.5);
    return M < 1 ? 1 : (M > N ? N : M);
}

void vt_mpp_corrupt(int32_t *src, int32_t *target, int N, int M, uint64_t key, int64_t image)
{
    vt_vit_patch_keep(target, N, M, 0, key ^ SALT_SELECT, image);
    for (int n = 0; n < N; n++) src[n] = n;
    vt_rng r;
    vt_rng_seed(&r, key ^ SALT_MODE ^ ((uint64_t)image * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull));
    for (int j = 0; j < M; j++) {
        const int n = target[j];
        const double u = vt_rng_uniform(&r), v = vt_rng_uniform(&r);   /* two draws each, whatever the mode */
        if (u < 0.8) {
            src[n] = -1;
        } else if (u < 0.9 && N > 1) {   /* a random other patch of the same image */
            int o = (int)(v * (N - 1));
            o = o > N - 2 ? N - 2 : o;
            src[n] = o >= n ? o + 1 : o;
        }
    }
}

void vt_mae_split(int32_t *keep, int32_t *masked, int N, int K, uint64_t key, int64_t image)
{
    vt_vit_patch_keep(keep, N, K, 1, key ^ SALT_SELECT, image);
    for (int n = 0, j = 0, k = 0; n < N; n++) {
        if (j < K && keep[j] == n + 1) j++;
        else masked[k++] = n;
    }
}

uint64_t vt_pretrain_mask_key(const vt_obj_batch *b) { return b->pass ? b->pass->key : EVAL_KEY; }

/* ---- targets from the images (C, H, W), normalised as the model reads them */

/* the mean of channel ch over a block of s x s pixels at (y0, x0) */
static double block_mean(const float *img, const vt_vit_config *c, int ch, int y0, int x0, int s)
{
    double sum = 0;
    for (int y = y0; y < y0 + s; y++)
        for (int x = x0; x < x0 + s; x++) sum += img[((size_t)ch * c->img_h + y) * c->img_w + x];
    return sum / ((double)s * s);
}

int vt_color_classes(const vt_vit_config *c) { return 1 << (c->pretrain.color_bits * c->in_chans); }

int vt_color_target(const float *img, const vt_vit_config *c, int n)
{
    const int gw = c->img_w / c->patch, P = c->patch, bits = c->pretrain.color_bits, L = 1 << bits;
    const int y0 = n / gw * P, x0 = n % gw * P;
    int cls = 0;
    for (int ch = 0; ch < c->in_chans; ch++) {
        /* back to [0, 1]: the mean of the normalised pixels, times std, plus mean */
        const double v = block_mean(img, c, ch, y0, x0, P) * c->pretrain.in_std[ch] + c->pretrain.in_mean[ch];
        int q = (int)floor(v * L);
        q = q < 0 ? 0 : (q > L - 1 ? L - 1 : q);
        cls = cls * L + q;   /* the first channel most significant */
    }
    return cls;
}

int vt_pixel_target_side(const vt_vit_config *c)
{
    return c->pretrain.kind == VT_OBJ_MASKED_PIXELS && c->pretrain.target_size ? c->pretrain.target_size : c->patch;
}

int vt_pixel_target_size(const vt_vit_config *c) { return c->in_chans * vt_pixel_target_side(c) * vt_pixel_target_side(c); }

void vt_pixel_target(float *out, const float *img, const vt_vit_config *c, int n)
{
    const int gw = c->img_w / c->patch, P = c->patch, O = vt_pixel_target_size(c), t = vt_pixel_target_side(c), s = P / t;
    const int y0 = n / gw * P, x0 = n % gw * P;
    for (int ch = 0, k = 0; ch < c->in_chans; ch++)
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++) out[k++] = (float)block_mean(img, c, ch, y0 + i * s, x0 + j * s, s);
    if (!(c->pretrain.kind == VT_OBJ_MAE && c->pretrain.norm_pix_loss)) return;
    double mean = 0, var = 0;
    for (int k = 0; k < O; k++) mean += out[k];
    mean /= O;
    for (int k = 0; k < O; k++) var += (out[k] - mean) * (out[k] - mean);
    var = O > 1 ? var / (O - 1) : 0;   /* unbiased, as torch's var */
    const double inv = 1.0 / sqrt(var + 1e-6);
    for (int k = 0; k < O; k++) out[k] = (float)((out[k] - mean) * inv);
}

/* the targets of the M masked patches of each of the B images, (B, M, O), as a constant of the graph */
vt_var *vt_pixel_targets(vt_vit *m, vt_graph *g, const vt_var *images, const vt_vit_mask *mask)
{
    const vt_vit_config *c = &m->cfg;
    const int64_t B = images->val.shape[0], O = vt_pixel_target_size(c), per = (int64_t)c->in_chans * c->img_h * c->img_w;
    vt_var *t = vt_var_new(g, 3, (int64_t[]){B, mask->M, O}, "pixel targets", false);
    if (!t) return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int j = 0; j < mask->M; j++)
            vt_pixel_target(t->val.data + (b * mask->M + j) * O, images->val.data + b * per, c, mask->target[b * mask->M + j]);
    return t;
}

/* the mean of (pred - target)^2 over every element */
vt_var *vt_mse(vt_graph *g, vt_var *pred, vt_var *target)
{
    vt_var *d = pred && target ? vt_sub(g, pred, target) : NULL;
    d = d ? vt_mul(g, d, d) : NULL;
    return d ? vt_mean(g, d) : NULL;
}

/* (B, T, D) tokens -> (B, M, D): the output tokens of the target patches (patch n is token 1 + n) */
vt_var *vt_target_tokens(vt_graph *g, vt_var *tokens, const vt_vit_mask *mask, int prefix)
{
    const int64_t B = tokens->val.shape[0];
    int32_t *idx = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)(B * mask->M));
    if (!idx) return NULL;
    for (int64_t i = 0; i < B * mask->M; i++) idx[i] = prefix + mask->target[i];
    return vt_token_keep(g, tokens, 0, idx, mask->M);
}

/* a mask with every patch a target and nothing hidden (the head of a plain forward pass) */
const vt_vit_mask *vt_mask_all(vt_graph *g, int B, int N)
{
    vt_vit_mask *mk = vt_arena_alloc(&g->arena, sizeof *mk);
    int32_t *t = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)B * N);
    if (!mk || !t) return NULL;
    for (int64_t i = 0; i < (int64_t)B * N; i++) t[i] = (int32_t)(i % N);
    *mk = (vt_vit_mask){.M = N, .target = t};
    return mk;
}

/* ---- masked patch prediction */

static int mpp_params(vt_vit *m)
{
    const vt_vit_config *c = &m->cfg;
    const int64_t D = c->embed_dim;
    const int64_t O = c->pretrain.kind == VT_OBJ_MASKED_COLOR ? vt_color_classes(c) : vt_pixel_target_size(c);
    int r = 0;
    r |= (m->mask_token = vt_paramset_add(&m->params, "mask_token", 3, (int64_t[]){1, 1, D})) < 0;
    r |= (m->pt_w = vt_paramset_add(&m->params, "mpp_head.weight", 2, (int64_t[]){O, D})) < 0;
    r |= (m->pt_b = vt_paramset_add(&m->params, "mpp_head.bias", 1, (int64_t[]){O})) < 0;
    return r ? VT_ERR : VT_OK;
}

static int mpp_mask(vt_vit *m, vt_graph *g, vt_obj_batch *b, int nb)
{
    const int N = m->grid_h * m->grid_w, M = vt_pretrain_masked_count(&m->cfg, N);
    vt_vit_mask *mk = vt_arena_alloc(&g->arena, sizeof *mk);
    int32_t *src = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)nb * N);
    int32_t *tgt = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)nb * M);
    if (!mk || !src || !tgt) return VT_ERR;
    const uint64_t key = vt_pretrain_mask_key(b);
    for (int i = 0; i < nb; i++) vt_mpp_corrupt(src + (size_t)i * N, tgt + (size_t)i * M, N, M, key, b->first + i);
    *mk = (vt_vit_mask){.src = src, .mask_token = PV(m->mask_token), .M = M, .target = tgt};
    b->mask = mk;
    return VT_OK;
}

/* the head's predictions for the mask's target patches, (B, M, O) */
static vt_var *mpp_predict(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_vit_mask *mask)
{
    vt_var *x = vt_target_tokens(g, tokens, mask, 1);
    return x ? vt_linear(g, x, PV(m->pt_w), PV(m->pt_b)) : NULL;
}

static vt_var *mpp_head(vt_vit *m, vt_graph *g, vt_var *tokens, vt_vit_acts *acts)
{
    (void)acts;
    const vt_vit_mask *all = vt_mask_all(g, (int)tokens->val.shape[0], m->grid_h * m->grid_w);
    return all ? mpp_predict(m, g, tokens, all) : NULL;
}

/* the colour classes of the target patches, (B M), in the graph's arena */
static int *color_labels(vt_vit *m, vt_graph *g, const vt_obj_batch *b)
{
    const vt_vit_config *c = &m->cfg;
    const int64_t B = b->images->val.shape[0], M = b->mask->M, per = (int64_t)c->in_chans * c->img_h * c->img_w;
    int *y = vt_arena_alloc(&g->arena, sizeof(int) * (size_t)(B * M));
    if (!y) return NULL;
    for (int64_t i = 0; i < B * M; i++) y[i] = vt_color_target(b->images->val.data + i / M * per, c, b->mask->target[i]);
    return y;
}

static vt_var *mpp_loss_labels(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, vt_var **out, int **labels)
{
    if (!b->mask) return vt_err("%s: a batch without its mask", m->objective->name), NULL;
    vt_var *pred = mpp_predict(m, g, tokens, b->mask);
    if (out) *out = pred;
    if (!pred) return NULL;
    if (m->cfg.pretrain.kind == VT_OBJ_MASKED_PIXELS) return vt_mse(g, pred, vt_pixel_targets(m, g, b->images, b->mask));
    const int64_t BM = pred->val.shape[0] * pred->val.shape[1], O = pred->val.shape[2];
    int *y = color_labels(m, g, b);
    vt_var *logits = y ? vt_reshape(g, pred, 2, (int64_t[]){BM, O}) : NULL;
    if (labels) *labels = y;
    return logits ? vt_cross_entropy(g, logits, y, 0.0f) : NULL;
}

static vt_var *mpp_loss(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, vt_var **out)
{
    return mpp_loss_labels(m, g, tokens, b, out, NULL);
}

/* sums: the loss times nb; masked_patch_color also each image's share of its corrupted patches whose colour the
 * head's highest logit names */
static int mpp_eval(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, int nb, double *sums)
{
    vt_var *pred = NULL;
    int *y = NULL;
    vt_var *loss = mpp_loss_labels(m, g, tokens, b, &pred, &y);
    if (!loss) return VT_ERR;
    sums[0] += (double)loss->val.data[0] * nb;
    if (m->cfg.pretrain.kind != VT_OBJ_MASKED_COLOR) return VT_OK;
    const int64_t M = b->mask->M, O = pred->val.shape[2];
    for (int64_t i = 0; i < nb * M; i++) {
        const float *z = pred->val.data + i * O;
        int best = 0;
        for (int k = 1; k < O; k++)
            if (z[k] > z[best]) best = k;
        sums[1] += (best == y[i]) / (double)M;
    }
    return VT_OK;
}

const vt_objective vt_objective_masked_color = {
    .name = "masked_patch_color",
    .summary = "masked patch prediction (mean colour)",
    .nmetrics = 2,
    .metrics = {{"loss", "loss", "%.9g", 4, false}, {"color_acc", "colour acc", "%.4f", 2, true}},
    .best = 0,
    .best_lowest = true,
    .add_params = mpp_params,
    .mask = mpp_mask,
    .head = mpp_head,
    .loss = mpp_loss,
    .eval = mpp_eval,
};

const vt_objective vt_objective_masked_pixels = {
    .name = "masked_patch_pixels",
    .summary = "masked patch prediction (pixels)",
    .nmetrics = 1,
    .metrics = {{"loss", "loss", "%.9g", 5, false}},
    .best = 0,
    .best_lowest = true,
    .add_params = mpp_params,
    .mask = mpp_mask,
    .head = mpp_head,
    .loss = mpp_loss,
    .eval = mpp_eval,
};
