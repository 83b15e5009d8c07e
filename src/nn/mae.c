/* mae.c - masked autoencoders (He et al. 2021): the encoder sees only the visible 1 - mask_ratio of each
 * image's patches (a random subset, in place of patch dropout); a light decoder (decoder_embed, a learned
 * [mask] token in place of each hidden patch, its own position embeddings, decoder_depth blocks of
 * decoder_dim with decoder_heads, decoder_norm, decoder_pred) reconstructs the pixels of the hidden patches;
 * the loss is the mean squared error over the hidden patches only, of pixels normalised per patch by its own
 * mean and variance (norm_pix_loss, MAE's default) or of the pixels themselves. Parameter names are those of
 * MAE's models (decoder_embed, mask_token, decoder_pos_embed, decoder_blocks.i, decoder_norm, decoder_pred). */
#include "nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PV(idx) (&m->params.vars[(idx)])

static int mae_params(vt_vit *m)
{
    const vt_vit_config *c = &m->cfg;
    const vt_pretrain_config *p = &c->pretrain;
    const int64_t D = c->embed_dim, Dd = p->decoder_dim, H = (int64_t)(p->decoder_dim * c->mlp_ratio);
    const int64_t N = (int64_t)m->grid_h * m->grid_w, O = vt_pixel_target_size(c);
    vt_paramset *ps = &m->params;
    m->dec_blocks = calloc((size_t)(p->decoder_depth ? p->decoder_depth : 1), sizeof *m->dec_blocks);
    if (!m->dec_blocks) return vt_err("out of memory");
    int r = 0;
    r |= (m->dec_embed_w = vt_paramset_add(ps, "decoder_embed.weight", 2, (int64_t[]){Dd, D})) < 0;
    r |= (m->dec_embed_b = vt_paramset_add(ps, "decoder_embed.bias", 1, (int64_t[]){Dd})) < 0;
    r |= (m->mask_token = vt_paramset_add(ps, "mask_token", 3, (int64_t[]){1, 1, Dd})) < 0;
    r |= (m->dec_pos = vt_paramset_add(ps, "decoder_pos_embed", 3, (int64_t[]){1, N + 1, Dd})) < 0;
    for (int i = 0; i < p->decoder_depth && !r; i++)
        r |= vt_block_add_params(ps, "decoder_blocks", i, Dd, H, false, &m->dec_blocks[i]);
    r |= (m->dec_norm_w = vt_paramset_add(ps, "decoder_norm.weight", 1, (int64_t[]){Dd})) < 0;
    r |= (m->dec_norm_b = vt_paramset_add(ps, "decoder_norm.bias", 1, (int64_t[]){Dd})) < 0;
    r |= (m->dec_pred_w = vt_paramset_add(ps, "decoder_pred.weight", 2, (int64_t[]){O, Dd})) < 0;
    r |= (m->dec_pred_b = vt_paramset_add(ps, "decoder_pred.bias", 1, (int64_t[]){O})) < 0;
    return r ? VT_ERR : VT_OK;
}

static int mae_mask(vt_vit *m, vt_graph *g, vt_obj_batch *b, int nb)
{
    const int N = m->grid_h * m->grid_w, M = vt_pretrain_masked_count(&m->cfg, N), K = N - M;
    vt_vit_mask *mk = vt_arena_alloc(&g->arena, sizeof *mk);
    int32_t *keep = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)nb * K);
    int32_t *tgt = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)nb * (M ? M : 1));
    if (!mk || !keep || !tgt) return VT_ERR;
    const uint64_t key = vt_pretrain_mask_key(b);
    for (int i = 0; i < nb; i++) vt_mae_split(keep + (size_t)i * K, tgt + (size_t)i * M, N, K, key, b->first + i);
    *mk = (vt_vit_mask){.K = K, .keep = keep, .mask_token = PV(m->mask_token), .M = M, .target = tgt};
    b->mask = mk;
    return VT_OK;
}

vt_var *vt_mae_decode(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_vit_mask *mask)
{
    const vt_vit_config *c = &m->cfg;
    const int B = (int)tokens->val.shape[0], N = m->grid_h * m->grid_w;
    vt_var *y = vt_linear(g, tokens, PV(m->dec_embed_w), PV(m->dec_embed_b));   /* (B, 1 + K, Dd) */
    if (y && mask->keep) {
        /* back to every position: the class token, the visible tokens where they were, [mask] elsewhere */
        int32_t *src = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)B * (N + 1));
        if (!src) return NULL;
        for (int b = 0; b < B; b++) {
            int32_t *s = src + (size_t)b * (N + 1);
            s[0] = 0;
            for (int n = 1; n <= N; n++) s[n] = -1;
            for (int j = 0; j < mask->K; j++) s[mask->keep[(size_t)b * mask->K + j]] = 1 + j;
        }
        y = vt_token_fill(g, y, PV(m->mask_token), src, N + 1);
    }
    y = y ? vt_add(g, y, PV(m->dec_pos)) : NULL;
    for (int i = 0; i < c->pretrain.decoder_depth && y; i++)
        if (!(y = vt_block_forward(m, g, &m->dec_blocks[i], y, c->pretrain.decoder_heads, NULL, NULL)))
            return vt_err_prefix("decoder block %d: ", i), NULL;
    y = y ? vt_layernorm(g, y, PV(m->dec_norm_w), PV(m->dec_norm_b), c->ln_eps) : NULL;
    y = y ? vt_target_tokens(g, y, mask, 1) : NULL;   /* the pixels of the hidden patches only */
    return y ? vt_linear(g, y, PV(m->dec_pred_w), PV(m->dec_pred_b)) : NULL;
}

static vt_var *mae_head(vt_vit *m, vt_graph *g, vt_var *tokens, vt_vit_acts *acts)
{
    (void)acts;
    const vt_vit_mask *all = vt_mask_all(g, (int)tokens->val.shape[0], m->grid_h * m->grid_w);
    return all ? vt_mae_decode(m, g, tokens, all) : NULL;
}

static vt_var *mae_loss(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, vt_var **out)
{
    if (!b->mask) return vt_err("mae: a batch without its mask"), NULL;
    vt_var *pred = vt_mae_decode(m, g, tokens, b->mask);
    if (out) *out = pred;
    return pred ? vt_mse(g, pred, vt_pixel_targets(m, g, b->images, b->mask)) : NULL;
}

static int mae_eval(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, int nb, double *sums)
{
    vt_var *loss = mae_loss(m, g, tokens, b, NULL);
    if (!loss) return VT_ERR;
    sums[0] += (double)loss->val.data[0] * nb;
    return VT_OK;
}

const vt_objective vt_objective_mae = {
    .name = "mae",
    .summary = "masked autoencoder reconstruction",
    .nmetrics = 1,
    .metrics = {{"loss", "loss", "%.9g", 5, false}},
    .best = 0,
    .best_lowest = true,
    .add_params = mae_params,
    .mask = mae_mask,
    .head = mae_head,
    .loss = mae_loss,
    .eval = mae_eval,
};
