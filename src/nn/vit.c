/* vit.c - the Vision Transformer: parameters under timm's names, forward on the autograd tape. */
#include "nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_param(vt_vit *m, const char *name, int ndim, const int64_t *shape, int *idx)
{
    *idx = vt_paramset_add(&m->params, name, ndim, shape);
    return *idx < 0 ? VT_ERR : VT_OK;
}

#define P1(name, a, idx) add_param(m, name, 1, (int64_t[]){a}, idx)

int vt_block_add_params(vt_paramset *ps, const char *prefix, int i, int64_t D, int64_t H, bool ls, vt_block_params *b)
{
    char nm[96];
    int r = VT_OK;
#define BP(suffix, ndim, shape, idx) \
    (snprintf(nm, sizeof nm, "%s.%d.%s", prefix, i, suffix), r |= (*(idx) = vt_paramset_add(ps, nm, ndim, shape)) < 0)
    BP("norm1.weight", 1, ((int64_t[]){D}), &b->norm1_w);
    BP("norm1.bias", 1, ((int64_t[]){D}), &b->norm1_b);
    BP("attn.qkv.weight", 2, ((int64_t[]){3 * D, D}), &b->qkv_w);
    BP("attn.qkv.bias", 1, ((int64_t[]){3 * D}), &b->qkv_b);
    BP("attn.proj.weight", 2, ((int64_t[]){D, D}), &b->proj_w);
    BP("attn.proj.bias", 1, ((int64_t[]){D}), &b->proj_b);
    b->ls1 = b->ls2 = -1;
    if (ls) BP("ls1.gamma", 1, ((int64_t[]){D}), &b->ls1);
    BP("norm2.weight", 1, ((int64_t[]){D}), &b->norm2_w);
    BP("norm2.bias", 1, ((int64_t[]){D}), &b->norm2_b);
    BP("mlp.fc1.weight", 2, ((int64_t[]){H, D}), &b->fc1_w);
    BP("mlp.fc1.bias", 1, ((int64_t[]){H}), &b->fc1_b);
    BP("mlp.fc2.weight", 2, ((int64_t[]){D, H}), &b->fc2_w);
    BP("mlp.fc2.bias", 1, ((int64_t[]){D}), &b->fc2_b);
    if (ls) BP("ls2.gamma", 1, ((int64_t[]){D}), &b->ls2);
#undef BP
    return r ? VT_ERR : VT_OK;
}

int vt_vit_init(vt_vit *m, const vt_vit_config *c)
{
    memset(m, 0, sizeof *m);
    if (vt_vit_config_check(c) != VT_OK) return VT_ERR;
    m->cfg = *c;
    vt_paramset_init(&m->params);
    const int64_t D = c->embed_dim, H = (int64_t)(c->embed_dim * c->mlp_ratio);
    m->grid_h = c->img_h / c->patch;
    m->grid_w = c->img_w / c->patch;
    const int64_t N = (int64_t)m->grid_h * m->grid_w;
    m->blocks = calloc((size_t)(c->depth ? c->depth : 1), sizeof *m->blocks);
    if (!m->blocks) return vt_err("out of memory");
    int r = VT_OK;
    /* timm's state_dict order */
    r |= add_param(m, "cls_token", 3, (int64_t[]){1, 1, D}, &m->cls_token);
    m->reg_token = -1;
    if (c->reg_tokens > 0) r |= add_param(m, "reg_token", 3, (int64_t[]){1, c->reg_tokens, D}, &m->reg_token);
    r |= add_param(m, "pos_embed", 3, (int64_t[]){1, N + vt_vit_pos_prefix(c), D}, &m->pos_embed);
    r |= add_param(m, "patch_embed.proj.weight", 4, (int64_t[]){D, c->in_chans, c->patch, c->patch}, &m->patch_w);
    r |= P1("patch_embed.proj.bias", D, &m->patch_b);
    for (int i = 0; i < c->depth && r == VT_OK; i++)
        r |= vt_block_add_params(&m->params, "blocks", i, D, H, c->init_values > 0, &m->blocks[i]);
    /* the encoder's final norm; with fc_norm timm's norm is an Identity (no parameters) and the
     * classification head normalises after pooling. timm registers norm, then fc_norm, then head: the
     * objective's parameters come last */
    m->norm_w = m->norm_b = m->fc_norm_w = m->fc_norm_b = m->head_w = m->head_b = -1;
    m->mask_token = m->pt_w = m->pt_b = m->dec_embed_w = m->dec_embed_b = m->dec_pos = -1;
    m->dec_norm_w = m->dec_norm_b = m->dec_pred_w = m->dec_pred_b = -1;
    if (!c->fc_norm) {
        r |= P1("norm.weight", D, &m->norm_w);
        r |= P1("norm.bias", D, &m->norm_b);
    }
    m->objective = vt_objective_for(c);
    if (r == VT_OK) r = m->objective->add_params(m);
    if (r == VT_OK) r = vt_paramset_alloc(&m->params);
    if (r != VT_OK) {
        vt_vit_free(m);
        return VT_ERR;
    }
    /* LayerNorm gains (norm1/norm2, norm or fc_norm) start at one and LayerScale gammas at init_values, so a
     * freshly built model is usable before init_weights */
    float *p = m->params.data;
    const vt_param_info *info = m->params.info;
    for (int i = 0; i < m->params.count; i++) {
        size_t n = strlen(info[i].name);
        float v = 0.0f;
        if (n > 11 && strcmp(info[i].name + n - 11, "norm.weight") == 0) v = 1.0f;
        if (n > 12 && (strstr(info[i].name, "norm1.weight") || strstr(info[i].name, "norm2.weight"))) v = 1.0f;
        if (n > 6 && strcmp(info[i].name + n - 6, ".gamma") == 0) v = (float)c->init_values;
        if (v != 0.0f)
            for (int64_t k = 0; k < info[i].numel; k++) p[info[i].offset + k] = v;
    }
    return VT_OK;
}

void vt_vit_free(vt_vit *m)
{
    vt_paramset_free(&m->params);
    free(m->blocks);
    free(m->dec_blocks);
    m->blocks = NULL;
    m->dec_blocks = NULL;
}

int64_t vt_vit_num_params(const vt_vit *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->params.count; i++) n += m->params.info[i].numel;
    return n;
}

vt_var *vt_vit_param(vt_vit *m, const char *name)
{
    int i = vt_paramset_find(&m->params, name);
    if (i < 0) {
        vt_err("model has no parameter named '%s'", name);
        return NULL;
    }
    return &m->params.vars[i];
}

#define PV(idx) (&m->params.vars[(idx)])

/* x + drop_path(ls(branch)): the plain add without LayerScale (ls -1) and stochastic depth (keep NULL) */
static vt_var *residual(vt_vit *m, vt_graph *g, vt_var *x, vt_var *branch, int ls, const float *keep)
{
    if (!branch) return NULL;
    return ls < 0 && !keep ? vt_add(g, x, branch) : vt_residual(g, x, branch, ls < 0 ? NULL : PV(ls), keep);
}

/* one pre-norm block: x + attn(norm1(x)), then + mlp(norm2(x)); heads: the encoder's, or a decoder's; each
 * branch scaled by its LayerScale gamma and by the images' stochastic-depth factors keep[j] (NULL: none) */
vt_var *vt_block_forward(vt_vit *m, vt_graph *g, const vt_block_params *b, vt_var *x, int heads, vt_var **attn_out,
                         float *const *keep)
{
    const vt_vit_config *c = &m->cfg;
    vt_var *h = vt_layernorm(g, x, PV(b->norm1_w), PV(b->norm1_b), c->ln_eps);
    vt_var *qkv = h ? vt_linear(g, h, PV(b->qkv_w), PV(b->qkv_b)) : NULL;
    vt_var *a = qkv ? vt_attention(g, qkv, heads) : NULL;
    a = a ? vt_linear(g, a, PV(b->proj_w), PV(b->proj_b)) : NULL;
    if (attn_out) *attn_out = a;
    x = residual(m, g, x, a, b->ls1, keep ? keep[0] : NULL);
    h = x ? vt_layernorm(g, x, PV(b->norm2_w), PV(b->norm2_b), c->ln_eps) : NULL;
    h = h ? vt_linear(g, h, PV(b->fc1_w), PV(b->fc1_b)) : NULL;
    h = h ? vt_gelu_consume(g, h, c->gelu) : NULL;   /* nothing else reads fc1's output */
    h = h ? vt_linear(g, h, PV(b->fc2_w), PV(b->fc2_b)) : NULL;
    return x ? residual(m, g, x, h, b->ls2, keep ? keep[1] : NULL) : NULL;
}

double vt_vit_drop_path_rate(const vt_vit_config *c, int block)
{
    return c->depth > 1 && c->drop_path_rate > 0 ? c->drop_path_rate * block / (c->depth - 1) : 0.0;
}

float vt_vit_drop_path_factor(uint64_t key, int64_t image, int block, int branch, double rate)
{
    if (!(rate > 0)) return 1.0f;
    vt_rng r;
    vt_rng_seed(&r, key ^ ((uint64_t)image * 0xBF58476D1CE4E5B9ull + ((uint64_t)block * 2 + (uint64_t)branch + 1) *
                                                                      0x94D049BB133111EBull));
    /* timm: bernoulli(keep) / keep, the quotient in float32 */
    return vt_rng_uniform(&r) < rate ? 0.0f : (float)(1.0f / (float)(1.0 - rate));
}

/* the stochastic-depth factors of block i for the B images of a training pass, keep[0] and keep[1] (B each, from
 * the arena); NULL (and no error) when the block drops nothing: evaluation, rate 0 */
static float **drop_path_keep(vt_vit *m, vt_graph *g, const vt_vit_train_pass *tp, int i, int64_t B, float *k[2])
{
    const double rate = tp ? vt_vit_drop_path_rate(&m->cfg, i) : 0.0;
    if (!(rate > 0)) return NULL;
    float *buf = vt_arena_alloc(&g->arena, sizeof(float) * (size_t)(2 * B));
    if (!buf) return NULL;
    k[0] = buf;
    k[1] = buf + B;
    for (int64_t b = 0; b < B; b++)
        for (int j = 0; j < 2; j++) k[j][b] = vt_vit_drop_path_factor(tp->key, tp->first + b, i, j, rate);
    return k;
}

int vt_vit_patch_keep_count(const vt_vit_config *c, int N)
{
    if (!(c->patch_drop_rate > 0)) return N;
    int K = (int)(N * (1.0 - c->patch_drop_rate));
    return K < 1 ? 1 : (K > N ? N : K);
}

void vt_vit_patch_keep(int32_t *keep, int N, int K, int prefix, uint64_t key, int64_t image)
{
    /* selection sampling (Knuth's algorithm S): token i is taken with probability (K - taken) / (N - i),
     * which gives every K-subset the same chance, already in ascending order */
    vt_rng r;
    vt_rng_seed(&r, key ^ ((uint64_t)image * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull));
    int taken = 0;
    for (int i = 0; i < N && taken < K; i++)
        if ((N - i) * vt_rng_uniform(&r) < K - taken) keep[taken++] = prefix + i;
}

vt_var *vt_vit_forward(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts)
{
    return vt_vit_forward_train(m, g, images, acts, NULL);
}

vt_var *vt_vit_forward_train(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp)
{
    vt_var *tokens = vt_vit_encode(m, g, images, acts, tp);
    return tokens ? m->objective->head(m, g, tokens, acts) : NULL;
}

vt_var *vt_vit_encode(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp)
{
    return vt_vit_encode_masked(m, g, images, acts, tp, NULL);
}

vt_var *vt_vit_encode_masked(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp,
                             const vt_vit_mask *mask)
{
    const vt_vit_config *c = &m->cfg;
    if (!images) {
        vt_err("vit forward: images are NULL");
        return NULL;
    }
    const vt_tensor *im = &images->val;
    if (im->ndim != 4 || im->shape[1] != c->in_chans || im->shape[2] != c->img_h || im->shape[3] != c->img_w) {
        char b[96];
        vt_err("vit forward: images %s, expected (B, %d, %d, %d)", vt_shape_str(im, b, sizeof b), c->in_chans, c->img_h,
               c->img_w);
        return NULL;
    }
    const int64_t B = im->shape[0], D = c->embed_dim, N = (int64_t)m->grid_h * m->grid_w;
    /* the conv weight (D, C, P, P) seen as a Linear weight (D, C*P*P): same memory, same gradient */
    vt_var *pw = vt_var_wrap(g, PV(m->patch_w)->val.data, 2, (int64_t[]){D, (int64_t)c->in_chans * c->patch * c->patch},
                             "patch_embed.proj.weight");
    if (!pw) return NULL;
    pw->grad = PV(m->patch_w)->grad;
    pw->requires_grad = PV(m->patch_w)->requires_grad;

    vt_var *x = vt_patchify(g, images, c->patch);
    x = x ? vt_linear(g, x, pw, PV(m->patch_b)) : NULL;
    if (x && mask && mask->src) x = vt_token_fill(g, x, mask->mask_token, mask->src, (int)N);   /* corrupted patches */
    if (acts && x) acts->patch_embed = x;
    x = x ? vt_embed_reg(g, x, PV(m->cls_token), m->reg_token < 0 ? NULL : PV(m->reg_token), PV(m->pos_embed)) : NULL;
    const int K = tp ? vt_vit_patch_keep_count(c, (int)N) : (int)N, prefix = vt_vit_prefix_tokens(c);
    if (x && mask && mask->keep) {
        x = vt_token_keep(g, x, 1, mask->keep, mask->K);   /* MAE: the visible patches only (no register tokens) */
    } else if (x && K < N) {
        /* patch dropout after the position embedding, as timm: the prefix tokens and K patch tokens go on */
        int32_t *keep = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)(B * K));
        if (!keep) return NULL;
        for (int64_t b = 0; b < B; b++) vt_vit_patch_keep(keep + b * K, (int)N, K, prefix, tp->key, tp->first + b);
        x = vt_token_keep(g, x, prefix, keep, K);
    }
    if (!x) return NULL;
    const int64_t T = x->val.shape[1];

    const bool nograd = !g->grad_enabled;
    /* evaluation (no grad, no activations wanted): x's buffer carries the tokens from block to block
     * and each block's temporaries are released, so memory does not grow with depth */
    for (int i = 0; i < c->depth; i++) {
        vt_arena_mark mark = vt_arena_get_mark(&g->arena);
        float *kb[2], **keep = drop_path_keep(m, g, tp, i, B, kb);
        if (!keep && tp && vt_vit_drop_path_rate(c, i) > 0) return NULL;
        vt_var *y = vt_block_forward(m, g, &m->blocks[i], x, c->num_heads,
                                     acts && acts->block_attn ? &acts->block_attn[i] : NULL, keep);
        if (!y) return vt_err_prefix("block %d: ", i), NULL;
        if (nograd && !acts) {
            memcpy(x->val.data, y->val.data, (size_t)(B * T * D) * sizeof(float));
            vt_arena_release(&g->arena, mark);
        } else {
            x = y;
        }
        if (acts && acts->block) acts->block[i] = x;
    }
    if (c->fc_norm) return x;   /* timm's norm is an Identity: the head's fc_norm follows the pooling */
    x = vt_layernorm(g, x, PV(m->norm_w), PV(m->norm_b), c->ln_eps);
    if (acts && x) acts->norm = x;
    return x;
}
