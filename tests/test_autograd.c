/* test_autograd.c - the autograd engine:
 *  - every differentiable op against central finite differences (vt_gradcheck), several small shapes
 *    each (non-square, odd sizes, batch > 1, heads > 1), every input of each op checked; the loss is
 *    sum(op(x) * w) with fixed random weights |w| in [0.5, 1.5] so that every output element matters;
 *  - the same check with the analytic gradient off by 10% must fail (the tolerances have teeth);
 *  - accumulation (backward adds; an op used twice gives twice the gradient), no-grad mode (same
 *    values, no node, no gradient), parameters of a vt_paramset (gradients at the right offsets of the
 *    flat buffer), error messages naming op and shapes, the arena's steady state, the op name table
 *    (those in test_autograd_engine.c). */
#include "testutil.h"
#include "autograd/autograd.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* finite differences in float32: h large enough that rounding of the loss (~1e-6) stays far below
 * the tolerances, small enough that the O(h^2) truncation error does too */
#define GC_H 1e-2
#define GC_ATOL 1e-3
#define GC_RTOL 1e-2

/* ------------------------------------------------------------------ op table */
typedef struct {
    int i[6];
    float f;
} oparg;

typedef vt_var *(*op_fn)(vt_graph *g, vt_var **in, const oparg *a);

#define MAXIN 4
typedef struct {
    const char *name;
    op_fn op;
    oparg arg;
    int nin;
    int64_t shape[MAXIN][5];   /* ndim, then dims */
    float lo, hi;              /* input values uniform in [lo, hi] */
    float gap;                 /* and |x| >= gap (kinks) */
} op_spec;

/* labels for cross-entropy: a fixed pattern, valid for any K >= 1 */
static int ce_labels[64];
static void init_labels(int B, int K)
{
    for (int b = 0; b < B; b++) ce_labels[b] = (b * 5 + 2) % K;
}

static vt_var *op_linear(vt_graph *g, vt_var **in, const oparg *a) { return vt_linear(g, in[0], in[1], a->i[0] ? in[2] : NULL); }
static vt_var *op_layernorm(vt_graph *g, vt_var **in, const oparg *a) { return vt_layernorm(g, in[0], in[1], in[2], a->f); }
static vt_var *op_gelu(vt_graph *g, vt_var **in, const oparg *a) { return vt_gelu(g, in[0], (vt_gelu_kind)a->i[0]); }
/* the consuming GELU replaces its input's value, so it gets an intermediate (x * 1), not the leaf */
static vt_var *op_gelu_consume(vt_graph *g, vt_var **in, const oparg *a)
{
    vt_var *x = vt_scale(g, in[0], 1.0f);
    return x ? vt_gelu_consume(g, x, (vt_gelu_kind)a->i[0]) : NULL;
}
static vt_var *op_attention(vt_graph *g, vt_var **in, const oparg *a) { return vt_attention(g, in[0], a->i[0]); }
static vt_var *op_softmax(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_softmax(g, in[0]); }
static vt_var *op_ce(vt_graph *g, vt_var **in, const oparg *a)
{
    init_labels((int)in[0]->val.shape[0], (int)in[0]->val.shape[1]);
    return vt_cross_entropy(g, in[0], ce_labels, a->f);
}
/* soft targets (mixup's rows; the last row does not sum to 1, as a general target may not) */
static float ce_targets[64 * 16];
static vt_var *op_ce_soft(vt_graph *g, vt_var **in, const oparg *a)
{
    (void)a;
    int B = (int)in[0]->val.shape[0], K = (int)in[0]->val.shape[1];
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++) ce_targets[b * K + k] = (float)((b * 3 + k * 7) % 5) / (b == B - 1 ? 7.0f : (float)(2 * K));
    return vt_cross_entropy_soft(g, in[0], ce_targets);
}
static vt_var *op_patchify(vt_graph *g, vt_var **in, const oparg *a) { return vt_patchify(g, in[0], a->i[0]); }
static vt_var *op_embed(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_embed(g, in[0], in[1], in[2]); }
/* with register tokens in[3] (1, R, D); pos in[2] over every token or the patch tokens only */
static vt_var *op_embed_reg(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_embed_reg(g, in[0], in[1], in[3], in[2]); }
static vt_var *op_pool(vt_graph *g, vt_var **in, const oparg *a) { return vt_pool(g, in[0], (vt_pool_kind)a->i[0], a->i[1]); }
/* x (B, T, D) with B <= 3: keeps K = a->i[1] tokens after a->i[0] prefix ones, in an order that is not sorted */
static vt_var *op_token_keep(vt_graph *g, vt_var **in, const oparg *a)
{
    const int prefix = (int)a->i[0], K = (int)a->i[1], T = (int)in[0]->val.shape[1];
    int32_t keep[3 * 8];
    for (int b = 0; b < in[0]->val.shape[0]; b++)
        for (int j = 0; j < K; j++) keep[b * K + j] = prefix + (int32_t)((j * 3 + b + 1) % (T - prefix));
    return vt_token_keep(g, in[0], prefix, keep, K);
}
/* x (B, T, D), fill (1, 1, D) -> (B, TO = a->i[0], D): a pattern of sources with fills (-1), repeats (a row read
 * twice, one never read) and, with a->i[1], every output a fill */
static vt_var *op_token_fill(vt_graph *g, vt_var **in, const oparg *a)
{
    const int TO = (int)a->i[0], T = (int)in[0]->val.shape[1], B = (int)in[0]->val.shape[0];
    int32_t src[4 * 16];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < TO; t++)
            src[b * TO + t] = a->i[1] || (t + b) % 3 == 1 ? -1 : (int32_t)((t * 2 + b) % (T > 1 ? T - 1 : 1));
    return vt_token_fill(g, in[0], in[1], src, TO);
}
/* x, br (B, T, D) with B <= 4, gamma (D) when a->i[0]; a->i[1]: per-sample keep factors 0 (dropped), 1 / 0.7 and
 * 1 / 0.3 in turn (stochastic depth), else none */
static vt_var *op_residual(vt_graph *g, vt_var **in, const oparg *a)
{
    static const float k[4] = {1.0f / 0.7f, 0.0f, 1.0f / 0.3f, 1.0f / 0.7f};
    return vt_residual(g, in[0], in[1], a->i[0] ? in[2] : NULL, a->i[1] ? k : NULL);
}
static vt_var *op_add(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_add(g, in[0], in[1]); }
static vt_var *op_sub(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_sub(g, in[0], in[1]); }
static vt_var *op_mul(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_mul(g, in[0], in[1]); }
static vt_var *op_add_self(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_add(g, in[0], in[0]); }
static vt_var *op_mul_self(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_mul(g, in[0], in[0]); }
static vt_var *op_scale(vt_graph *g, vt_var **in, const oparg *a) { return vt_scale(g, in[0], a->f); }
static vt_var *op_matmul(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_matmul(g, in[0], in[1]); }
static vt_var *op_sum(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_sum(g, in[0]); }
static vt_var *op_mean(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_mean(g, in[0]); }
static vt_var *op_reshape(vt_graph *g, vt_var **in, const oparg *a)
{
    int64_t shape[4] = {a->i[1], a->i[2], a->i[3], a->i[4]};
    return vt_reshape(g, in[0], a->i[0], shape);
}
static vt_var *op_transpose(vt_graph *g, vt_var **in, const oparg *a) { return vt_transpose(g, in[0], a->i[0], a->i[1]); }
static vt_var *op_exp(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_exp(g, in[0]); }
static vt_var *op_log(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_log(g, in[0]); }
static vt_var *op_tanh(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_tanh(g, in[0]); }
static vt_var *op_relu(vt_graph *g, vt_var **in, const oparg *a) { (void)a; return vt_relu(g, in[0]); }

/* a chain through several ops with a residual and a reused input (the tape's bookkeeping):
 * x (B,T,C) -> layernorm -> linear (3C) -> attention (NH) -> linear -> + x -> mean pool -> tanh */
static vt_var *op_chain(vt_graph *g, vt_var **in, const oparg *a)
{
    vt_var *x = in[0], *lnw = in[1], *wqkv = in[2], *wproj = in[3];
    int64_t C = x->val.shape[2];
    /* the LayerNorm bias is a constant zero here (not an input): inputs without grad must work */
    float *zeros = vt_arena_calloc(&g->arena, (size_t)C * sizeof(float));
    vt_var *lnb = vt_var_wrap(g, zeros, 1, &C, "lnb");
    vt_var *h = vt_layernorm(g, x, lnw, lnb, 1e-6f);
    h = vt_attention(g, vt_linear(g, h, wqkv, NULL), a->i[0]);
    h = vt_add(g, vt_linear(g, h, wproj, NULL), x);
    return vt_tanh(g, vt_pool(g, h, VT_POOL_MEAN, 1));
}

#define S1(d0) {1, d0}
#define S2(d0, d1) {2, d0, d1}
#define S3(d0, d1, d2) {3, d0, d1, d2}
#define S4(d0, d1, d2, d3) {4, d0, d1, d2, d3}
#define A(...) {.i = {__VA_ARGS__}}
#define AF(x) {.f = (x)}
#define NOARG {.f = 0}

static const op_spec fused_specs[] = {
    /* linear: x (..., C), w (OC, C), b (OC) */
    {"linear 3-D", op_linear, A(1), 3, {S3(2, 3, 5), S2(4, 5), S1(4)}, -1, 1, 0},
    {"linear 2-D tall", op_linear, A(1), 3, {S2(7, 3), S2(6, 3), S1(6)}, -1, 1, 0},
    {"linear 1-D input", op_linear, A(1), 3, {S1(5), S2(3, 5), S1(3)}, -1, 1, 0},
    {"linear 1x1", op_linear, A(1), 3, {S2(1, 1), S2(1, 1), S1(1)}, -1, 1, 0},
    {"linear no bias", op_linear, A(0), 2, {S3(3, 2, 9), S2(2, 9)}, -1, 1, 0},
    /* layernorm: x (..., C), w (C), b (C) */
    {"layernorm 3-D", op_layernorm, AF(1e-6f), 3, {S3(2, 3, 7), S1(7), S1(7)}, -1, 1, 0},
    {"layernorm 2-D", op_layernorm, AF(1e-6f), 3, {S2(4, 5), S1(5), S1(5)}, -2, 2, 0},
    {"layernorm one row", op_layernorm, AF(1e-5f), 3, {S2(1, 16), S1(16), S1(16)}, -1, 1, 0},
    {"layernorm C=3", op_layernorm, AF(1e-6f), 3, {S2(3, 3), S1(3), S1(3)}, -2, 2, 0},
    /* gelu */
    {"gelu erf", op_gelu, A(VT_GELU_ERF), 1, {S2(5, 9)}, -4, 4, 0},
    {"gelu erf 3-D", op_gelu, A(VT_GELU_ERF), 1, {S3(3, 2, 7)}, -2, 2, 0},
    {"gelu tanh", op_gelu, A(VT_GELU_TANH), 1, {S2(5, 9)}, -4, 4, 0},
    {"gelu tanh 3-D", op_gelu, A(VT_GELU_TANH), 1, {S3(3, 2, 7)}, -2, 2, 0},
    {"gelu erf consuming its input", op_gelu_consume, A(VT_GELU_ERF), 1, {S2(5, 9)}, -4, 4, 0},
    {"gelu tanh consuming its input", op_gelu_consume, A(VT_GELU_TANH), 1, {S3(3, 2, 7)}, -2, 2, 0},
    /* attention: qkv (B, T, 3C), NH heads */
    {"attention B1 T5 1 head", op_attention, A(1), 1, {S3(1, 5, 12)}, -1, 1, 0},
    {"attention B2 T7 3 heads", op_attention, A(3), 1, {S3(2, 7, 18)}, -1.5f, 1.5f, 0},
    {"attention B3 T4 2 heads", op_attention, A(2), 1, {S3(3, 4, 24)}, -1.5f, 1.5f, 0},
    {"attention B2 T11 4 heads hs1", op_attention, A(4), 1, {S3(2, 11, 12)}, -2, 2, 0},
    {"attention T1", op_attention, A(2), 1, {S3(2, 1, 12)}, -1, 1, 0},
    /* softmax over the last dim */
    {"softmax 2-D", op_softmax, NOARG, 1, {S2(4, 6)}, -2, 2, 0},
    {"softmax 3-D odd", op_softmax, NOARG, 1, {S3(2, 3, 7)}, -3, 3, 0},
    {"softmax one row", op_softmax, NOARG, 1, {S1(11)}, -2, 2, 0},
    /* cross-entropy: logits (B, K) */
    {"cross-entropy", op_ce, AF(0.0f), 1, {S2(5, 6)}, -2, 2, 0},
    {"cross-entropy eps 0.1", op_ce, AF(0.1f), 1, {S2(5, 6)}, -2, 2, 0},
    {"cross-entropy eps 0.3 K11", op_ce, AF(0.3f), 1, {S2(3, 11)}, -3, 3, 0},
    {"cross-entropy B1 K3", op_ce, AF(0.2f), 1, {S2(1, 3)}, -1, 1, 0},
    {"cross-entropy soft targets", op_ce_soft, NOARG, 1, {S2(5, 6)}, -2, 2, 0},
    {"cross-entropy soft targets B1 K11", op_ce_soft, NOARG, 1, {S2(1, 11)}, -3, 3, 0},
    /* patchify: img (B, C, H, W) */
    {"patchify P2", op_patchify, A(2), 1, {S4(2, 3, 4, 6)}, -1, 1, 0},
    {"patchify P3 non-square", op_patchify, A(3), 1, {S4(1, 2, 6, 9)}, -1, 1, 0},
    {"patchify one patch", op_patchify, A(4), 1, {S4(2, 1, 4, 4)}, -1, 1, 0},
    {"patchify P1", op_patchify, A(1), 1, {S4(1, 2, 3, 2)}, -1, 1, 0},
    /* embed: tok (B, N, D), cls (1, 1, D), pos (1, N+1, D) */
    {"embed", op_embed, NOARG, 3, {S3(2, 5, 4), S3(1, 1, 4), S3(1, 6, 4)}, -1, 1, 0},
    {"embed N1", op_embed, NOARG, 3, {S3(3, 1, 3), S3(1, 1, 3), S3(1, 2, 3)}, -1, 1, 0},
    {"embed B1 odd", op_embed, NOARG, 3, {S3(1, 7, 5), S3(1, 1, 5), S3(1, 8, 5)}, -1, 1, 0},
    /* pool: x (B, T, D) */
    {"pool token", op_pool, A(VT_POOL_TOKEN, 0), 1, {S3(2, 5, 4)}, -1, 1, 0},
    {"pool token B3", op_pool, A(VT_POOL_TOKEN, 1), 1, {S3(3, 7, 3)}, -1, 1, 0},
    {"pool mean prefix 1", op_pool, A(VT_POOL_MEAN, 1), 1, {S3(2, 5, 4)}, -1, 1, 0},
    {"pool mean prefix 0", op_pool, A(VT_POOL_MEAN, 0), 1, {S3(3, 7, 3)}, -1, 1, 0},
    {"pool mean prefix 2", op_pool, A(VT_POOL_MEAN, 2), 1, {S3(2, 3, 5)}, -1, 1, 0},
    /* token_keep (patch dropout): x (B, T, D), prefix, K; the T - prefix = 5 or 4 patch tokens, 3 * j + b + 1 mod that
     * is distinct for j < K */
    {"token_keep prefix 1 keep 3 of 5", op_token_keep, A(1, 3), 1, {S3(2, 6, 4)}, -1, 1, 0},
    {"token_keep prefix 0 keep 4 of 4", op_token_keep, A(0, 4), 1, {S3(3, 4, 3)}, -1, 1, 0},
    {"token_keep prefix 2 keep 1", op_token_keep, A(2, 1), 1, {S3(1, 5, 2)}, -1, 1, 0},
    /* several ops chained, with a residual */
    {"chain ln-linear-attention-linear-add-pool", op_chain, A(2), 4, {S3(2, 5, 4), S1(4), S2(12, 4), S2(4, 4)}, -1, 1, 0},
    /* (after the chain, whose seed is its place in the table) token_fill ([mask] tokens): x (B, T, D), fill (1, 1, D), TO output tokens */
    {"token_fill T5 to 5", op_token_fill, A(5, 0), 2, {S3(2, 5, 4), S3(1, 1, 4)}, -1, 1, 0},
    {"token_fill T3 to 7", op_token_fill, A(7, 0), 2, {S3(3, 3, 3), S3(1, 1, 3)}, -1, 1, 0},
    {"token_fill all filled", op_token_fill, A(4, 1), 2, {S3(2, 2, 5), S3(1, 1, 5)}, -1, 1, 0},
    /* (after the chain too) embed with register tokens / no_embed_class: tok, cls, pos, reg; residual with
     * LayerScale / stochastic depth: x, br (B, T, D), gamma (D) */
    {"embed reg 2", op_embed_reg, NOARG, 4, {S3(2, 5, 4), S3(1, 1, 4), S3(1, 8, 4), S3(1, 2, 4)}, -1, 1, 0},
    {"embed reg 3 no_embed_class", op_embed_reg, NOARG, 4, {S3(3, 4, 3), S3(1, 1, 3), S3(1, 4, 3), S3(1, 3, 3)}, -1, 1, 0},
    {"embed no_embed_class", op_embed, NOARG, 3, {S3(2, 5, 4), S3(1, 1, 4), S3(1, 5, 4)}, -1, 1, 0},
    {"residual gamma", op_residual, A(1, 0), 3, {S3(2, 3, 4), S3(2, 3, 4), S1(4)}, -1, 1, 0},
    {"residual gamma keep", op_residual, A(1, 1), 3, {S3(4, 2, 3), S3(4, 2, 3), S1(3)}, -1, 1, 0},
    {"residual keep", op_residual, A(0, 1), 2, {S3(3, 2, 5), S3(3, 2, 5)}, -1, 1, 0},
};

static const op_spec general_specs[] = {
    /* add / sub / mul: same shape, b broadcast over a's trailing dims, the same var twice */
    {"add", op_add, NOARG, 2, {S2(3, 4), S2(3, 4)}, -1, 1, 0},
    {"add broadcast (D)", op_add, NOARG, 2, {S3(2, 3, 5), S1(5)}, -1, 1, 0},
    {"add broadcast (1,1,D)", op_add, NOARG, 2, {S3(2, 3, 5), S3(1, 1, 5)}, -1, 1, 0},
    {"add broadcast (T,D)", op_add, NOARG, 2, {S3(2, 3, 5), S2(3, 5)}, -1, 1, 0},
    {"add broadcast scalar", op_add, NOARG, 2, {S2(3, 5), S1(1)}, -1, 1, 0},
    {"add x + x", op_add_self, NOARG, 1, {S2(3, 5)}, -1, 1, 0},
    {"sub", op_sub, NOARG, 2, {S3(2, 3, 4), S3(2, 3, 4)}, -1, 1, 0},
    {"sub broadcast (D)", op_sub, NOARG, 2, {S2(7, 3), S1(3)}, -1, 1, 0},
    {"sub broadcast (T,D)", op_sub, NOARG, 2, {S4(2, 2, 3, 4), S3(2, 3, 4)}, -1, 1, 0},
    {"mul", op_mul, NOARG, 2, {S2(3, 5), S2(3, 5)}, -1, 1, 0},
    {"mul broadcast (D)", op_mul, NOARG, 2, {S3(2, 3, 5), S1(5)}, -1, 1, 0},
    {"mul broadcast (1,T,D)", op_mul, NOARG, 2, {S3(3, 2, 5), S3(1, 2, 5)}, -1, 1, 0},
    {"mul x * x", op_mul_self, NOARG, 1, {S2(3, 5)}, -1, 1, 0},
    {"scale", op_scale, AF(-1.7f), 1, {S3(2, 3, 5)}, -1, 1, 0},
    {"scale 0.25", op_scale, AF(0.25f), 1, {S1(7)}, -1, 1, 0},
    /* matmul */
    {"matmul 2-D", op_matmul, NOARG, 2, {S2(3, 5), S2(5, 2)}, -1, 1, 0},
    {"matmul 2-D inner 1", op_matmul, NOARG, 2, {S2(4, 1), S2(1, 3)}, -1, 1, 0},
    {"matmul batched", op_matmul, NOARG, 2, {S3(2, 3, 4), S3(2, 4, 5)}, -1, 1, 0},
    {"matmul batched odd", op_matmul, NOARG, 2, {S3(3, 1, 7), S3(3, 7, 2)}, -1, 1, 0},
    {"matmul shared b", op_matmul, NOARG, 2, {S3(3, 2, 5), S2(5, 3)}, -1, 1, 0},
    /* reductions */
    {"sum", op_sum, NOARG, 1, {S3(2, 3, 4)}, -1, 1, 0},
    {"sum 1-D", op_sum, NOARG, 1, {S1(5)}, -1, 1, 0},
    {"mean", op_mean, NOARG, 1, {S3(2, 3, 4)}, -1, 1, 0},
    {"mean 2-D", op_mean, NOARG, 1, {S2(7, 3)}, -1, 1, 0},
    /* views */
    {"reshape 3-D -> 2-D", op_reshape, A(2, 6, 4), 1, {S3(2, 3, 4)}, -1, 1, 0},
    {"reshape 2-D -> 4-D", op_reshape, A(4, 1, 3, 1, 5), 1, {S2(5, 3)}, -1, 1, 0},
    {"reshape -> 1-D", op_reshape, A(1, 30), 1, {S3(2, 3, 5)}, -1, 1, 0},
    {"transpose 2-D", op_transpose, A(0, 1), 1, {S2(3, 5)}, -1, 1, 0},
    {"transpose 3-D (0,2)", op_transpose, A(0, 2), 1, {S3(2, 3, 4)}, -1, 1, 0},
    {"transpose 3-D (2,1)", op_transpose, A(2, 1), 1, {S3(2, 3, 5)}, -1, 1, 0},
    {"transpose 4-D (1,3)", op_transpose, A(1, 3), 1, {S4(2, 3, 1, 4)}, -1, 1, 0},
    {"transpose same dim", op_transpose, A(1, 1), 1, {S2(2, 3)}, -1, 1, 0},
    /* elementwise */
    {"exp", op_exp, NOARG, 1, {S2(3, 4)}, -2, 1.5f, 0},
    {"exp 3-D", op_exp, NOARG, 1, {S3(2, 1, 5)}, -1, 1, 0},
    {"log", op_log, NOARG, 1, {S2(3, 4)}, 0.5f, 2, 0},
    {"log 1-D", op_log, NOARG, 1, {S1(7)}, 0.3f, 3, 0},
    {"tanh", op_tanh, NOARG, 1, {S2(3, 4)}, -1.5f, 1.5f, 0},
    {"tanh 3-D", op_tanh, NOARG, 1, {S3(2, 3, 5)}, -3, 3, 0},
    /* relu: both signs, away from the kink by more than h */
    {"relu", op_relu, NOARG, 1, {S2(3, 4)}, -1, 1, 0.05f},
    {"relu 3-D", op_relu, NOARG, 1, {S3(2, 3, 5)}, -1, 1, 0.05f},
};

#define NSPECS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------ inputs and the weighted loss */
typedef struct {
    vt_var v[MAXIN];
    vt_var *p[MAXIN];
    int nin;
} inputs;

static int64_t spec_numel(const op_spec *s, int i)
{
    int64_t n = 1;
    for (int k = 0; k < s->shape[i][0]; k++) n *= s->shape[i][k + 1];
    return n;
}

static void make_inputs(inputs *in, const op_spec *s, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed);
    in->nin = s->nin;
    for (int i = 0; i < s->nin; i++) {
        int64_t n = spec_numel(s, i);
        float *d = malloc(sizeof(float) * (size_t)n);
        ck_assert_ptr_nonnull(d);
        tu_fill_uniform(&r, d, n, s->lo, s->hi);
        for (int64_t k = 0; k < n; k++)
            if (fabsf(d[k]) < s->gap) d[k] = d[k] < 0 ? d[k] - s->gap : d[k] + s->gap;
        in->v[i].val = vt_tensor_view(d, (int)s->shape[i][0], &s->shape[i][1], "in");
        in->v[i].grad = NULL;
        in->v[i].requires_grad = true;
        in->p[i] = &in->v[i];
    }
}

static void free_inputs(inputs *in)
{
    for (int i = 0; i < in->nin; i++) free(in->v[i].val.data);
}

#define NW 4096
typedef struct {
    const op_spec *spec;
    float w[NW];       /* loss weights, |w| in [0.5, 1.5] */
    float wbad[NW];    /* 1.1 w: backward sees these when mutate is set */
    bool mutate;
    int calls;
} loss_ctx;

static void init_weights(loss_ctx *c, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed ^ 0x5eed);
    for (int i = 0; i < NW; i++) {
        float u = (float)vt_rng_uniform(&r);
        c->w[i] = (vt_rng_uniform(&r) < 0.5 ? -1.0f : 1.0f) * (0.5f + u);
        c->wbad[i] = 1.1f * c->w[i];
    }
    c->mutate = false;
    c->calls = 0;
}

/* loss = sum(op(x) * w). With mutate, the first call (the checker's analytic pass) swaps the weights
 * seen by mul's backward for 1.1 w after the forward: the analytic gradient is then 10% off. */
static vt_var *weighted_loss(vt_graph *g, vt_var **in, int nin, void *vctx)
{
    (void)nin;
    loss_ctx *c = vctx;
    vt_var *y = c->spec->op(g, in, &c->spec->arg);
    if (!y) return NULL;
    ck_assert_int_le(vt_tensor_numel(&y->val), NW);
    vt_var *w = vt_var_wrap(g, c->w, y->val.ndim, y->val.shape, "w");
    vt_var *l = vt_sum(g, vt_mul(g, y, w));
    if (c->mutate && c->calls == 0) w->val.data = c->wbad;
    c->calls++;
    return l;
}

static void gradcheck_spec(const op_spec *s, uint64_t seed)
{
    inputs in;
    make_inputs(&in, s, seed);
    loss_ctx *c = malloc(sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->spec = s;
    init_weights(c, seed);
    char desc[256];
    double worst = vt_gradcheck(weighted_loss, c, in.p, in.nin, GC_H, GC_ATOL, GC_RTOL, desc, sizeof desc);
    ck_assert_msg(worst <= 1.0, "%s: worst %.3g: %s", s->name, worst, desc);
    /* the same check with a 10% error in the analytic gradient must fail */
    c->mutate = true;
    c->calls = 0;
    char desc2[256];
    double worst_bad = vt_gradcheck(weighted_loss, c, in.p, in.nin, GC_H, GC_ATOL, GC_RTOL, desc2, sizeof desc2);
    ck_assert_msg(worst_bad > 1.0, "%s: a 10%% wrong gradient passed (worst %.3g)", s->name, worst_bad);
    printf("gradcheck %-44s worst %.3f (10%% off: %.1f)\n", s->name, worst, worst_bad);
    free(c);
    free_inputs(&in);
}

START_TEST(gradcheck_fused)
{
    gradcheck_spec(&fused_specs[_i], 1000 + (uint64_t)_i);
}
END_TEST

START_TEST(gradcheck_general)
{
    gradcheck_spec(&general_specs[_i], 2000 + (uint64_t)_i);
}
END_TEST

/* the checker catches a wrong backward: exp's node run through tanh's backward */
static vt_var *wrong_backward(vt_graph *g, vt_var **in, int nin, void *ctx)
{
    (void)nin;
    (void)ctx;
    vt_var *y = vt_exp(g, in[0]);
    if (y && g->nnodes) g->nodes[g->nnodes - 1].op = VT_OP_TANH;
    return vt_sum(g, y);
}

static vt_var *failing_fn(vt_graph *g, vt_var **in, int nin, void *ctx)
{
    (void)nin;
    (void)ctx;
    return vt_reshape(g, in[0], 1, (int64_t[]){7});   /* wrong numel */
}

START_TEST(checker_catches_wrong_gradients)
{
    float d[6] = {0.1f, 0.5f, -0.3f, 0.9f, 0.2f, -0.7f};
    vt_var v = {vt_tensor_view(d, 1, (int64_t[]){6}, "x"), NULL, true};
    vt_var *ins[1] = {&v};
    char desc[256];
    double worst = vt_gradcheck(wrong_backward, NULL, ins, 1, GC_H, GC_ATOL, GC_RTOL, desc, sizeof desc);
    ck_assert_msg(worst > 1.0, "a wrong gradient passed the check (worst %g)", worst);
    ck_assert(strstr(desc, "analytic") != NULL);
    /* a failing forward is reported, not passed */
    worst = vt_gradcheck(failing_fn, NULL, ins, 1, GC_H, GC_ATOL, GC_RTOL, desc, sizeof desc);
    ck_assert(isinf(worst));
    ck_assert_msg(strstr(desc, "failed") && strstr(desc, "reshape"), "%s", desc);
    /* the input's own gradient pointer is restored and its values unchanged */
    ck_assert_ptr_null(v.grad);
    ck_assert_float_eq(d[3], 0.9f);
}
END_TEST

/* ------------------------------------------------------------------ accumulation and no-grad, every op */
static void run_loss(vt_graph *g, const op_spec *s, inputs *in, const float *w, int uses)
{
    vt_graph_reset(g);
    vt_var *l = NULL;
    for (int u = 0; u < uses; u++) {
        vt_var *y = s->op(g, in->p, &s->arg);
        ck_assert_msg(y != NULL, "%s: %s", s->name, vt_errmsg());
        vt_var *wv = vt_var_wrap(g, (float *)w, y->val.ndim, y->val.shape, "w");
        vt_var *t = vt_sum(g, vt_mul(g, y, wv));
        l = l ? vt_add(g, l, t) : t;
    }
    ck_assert_msg(vt_backward(g, l) == VT_OK, "%s: %s", s->name, vt_errmsg());
}

static void accumulate_spec(const op_spec *s, uint64_t seed)
{
    inputs in;
    make_inputs(&in, s, seed);
    loss_ctx *c = malloc(sizeof *c);
    init_weights(c, seed);
    float *g1[MAXIN], *acc[MAXIN];
    for (int i = 0; i < in.nin; i++) {
        int64_t n = spec_numel(s, i);
        g1[i] = calloc((size_t)n, sizeof(float));
        acc[i] = calloc((size_t)n, sizeof(float));
        in.v[i].grad = g1[i];   /* leaf gradients the caller owns */
    }
    vt_graph g;
    ck_assert_int_eq(vt_graph_init(&g, 1 << 16), VT_OK);
    /* 1. one use */
    run_loss(&g, s, &in, c->w, 1);
    /* 2. the same step again without zeroing: backward adds into the existing gradient */
    for (int i = 0; i < in.nin; i++) in.v[i].grad = acc[i];
    for (int i = 0; i < in.nin; i++) memcpy(acc[i], g1[i], sizeof(float) * (size_t)spec_numel(s, i));
    run_loss(&g, s, &in, c->w, 1);
    for (int i = 0; i < in.nin; i++)
        for (int64_t k = 0; k < spec_numel(s, i); k++)
            ck_assert_msg(fabsf(acc[i][k] - 2 * g1[i][k]) <= 1e-6f * (1 + fabsf(g1[i][k])),
                          "%s: input %d element %lld: backward did not accumulate (%g vs 2 x %g)", s->name, i,
                          (long long)k, acc[i][k], g1[i][k]);
    /* 3. the op used twice in one loss: twice the gradient */
    for (int i = 0; i < in.nin; i++) memset(acc[i], 0, sizeof(float) * (size_t)spec_numel(s, i));
    run_loss(&g, s, &in, c->w, 2);
    for (int i = 0; i < in.nin; i++)
        for (int64_t k = 0; k < spec_numel(s, i); k++)
            ck_assert_msg(fabsf(acc[i][k] - 2 * g1[i][k]) <= 1e-6f * (1 + fabsf(g1[i][k])),
                          "%s: input %d element %lld: used twice gives %g, once %g", s->name, i, (long long)k,
                          acc[i][k], g1[i][k]);

    /* 4. no-grad: bitwise the same forward values, no node, no gradient required */
    for (int i = 0; i < in.nin; i++) in.v[i].grad = NULL;
    vt_graph_reset(&g);
    vt_var *y = s->op(&g, in.p, &s->arg);
    ck_assert_ptr_nonnull(y);
    int64_t n = vt_tensor_numel(&y->val);
    float *ref = malloc(sizeof(float) * (size_t)n);
    memcpy(ref, y->val.data, sizeof(float) * (size_t)n);
    ck_assert_int_gt(g.nnodes, 0);
    ck_assert(y->requires_grad);
    vt_graph_reset(&g);
    vt_graph_set_grad(&g, false);
    vt_var *y2 = s->op(&g, in.p, &s->arg);
    ck_assert_ptr_nonnull(y2);
    ck_assert_int_eq(g.nnodes, 0);
    ck_assert(!y2->requires_grad);
    ck_assert_int_eq(vt_tensor_numel(&y2->val), n);
    ck_assert_msg(memcmp(ref, y2->val.data, sizeof(float) * (size_t)n) == 0, "%s: no-grad forward differs", s->name);
    vt_var *l = vt_sum(&g, y2);
    ck_assert_int_eq(g.nnodes, 0);
    ck_assert_int_eq(vt_backward(&g, l), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "requires grad") != NULL, "%s", vt_errmsg());
    for (int i = 0; i < in.nin; i++) ck_assert_ptr_null(in.v[i].grad);
    vt_graph_set_grad(&g, true);

    free(ref);
    vt_graph_free(&g);
    for (int i = 0; i < in.nin; i++) {
        free(g1[i]);
        free(acc[i]);
    }
    free(c);
    free_inputs(&in);
}

START_TEST(accumulate_nograd_fused)
{
    accumulate_spec(&fused_specs[_i], 3000 + (uint64_t)_i);
}
END_TEST

START_TEST(accumulate_nograd_general)
{
    accumulate_spec(&general_specs[_i], 4000 + (uint64_t)_i);
}
END_TEST

/* inputs that do not require grad get no gradient and do not disturb the others */
START_TEST(mixed_requires_grad)
{
    vt_rng r;
    vt_rng_seed(&r, 77);
    float x[3 * 5], w[4 * 5], b[4], gw_all[4 * 5];
    tu_fill_uniform(&r, x, 15, -1, 1);
    tu_fill_uniform(&r, w, 20, -1, 1);
    tu_fill_uniform(&r, b, 4, -1, 1);
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    for (int pass = 0; pass < 2; pass++) {
        vt_graph_reset(&g);
        vt_var *xv = vt_var_wrap(&g, x, 2, (int64_t[]){3, 5}, "x");
        vt_var *wv = vt_var_wrap(&g, w, 2, (int64_t[]){4, 5}, "w");
        vt_var *bv = vt_var_wrap(&g, b, 1, (int64_t[]){4}, "b");
        wv->requires_grad = true;
        xv->requires_grad = pass == 0;
        vt_var *y = vt_linear(&g, xv, wv, bv);
        ck_assert(y->requires_grad);
        ck_assert_int_eq(vt_backward(&g, vt_sum(&g, vt_tanh(&g, y))), VT_OK);
        ck_assert_ptr_null(bv->grad);
        if (pass == 0) {
            ck_assert_ptr_nonnull(xv->grad);
            memcpy(gw_all, wv->grad, sizeof gw_all);
        } else {
            ck_assert_ptr_null(xv->grad);
            ck_assert_int_eq(memcmp(gw_all, wv->grad, sizeof gw_all), 0);
        }
    }
    /* nothing requires grad: no node recorded even with grad enabled */
    vt_graph_reset(&g);
    vt_var *xv = vt_var_wrap(&g, x, 2, (int64_t[]){3, 5}, "x");
    vt_var *y = vt_exp(&g, xv);
    ck_assert(!y->requires_grad);
    ck_assert_int_eq(g.nnodes, 0);
    vt_graph_free(&g);
}
END_TEST

/* a tape longer than its first allocation (256 nodes): growth keeps every node, and the second step
 * reuses the grown tape */
START_TEST(long_tape)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    float x[3] = {0.5f, -1.0f, 2.0f};
    const int L = 700;
    int cap_first = 0;
    for (int step = 0; step < 2; step++) {
        vt_graph_reset(&g);
        vt_var *xv = vt_var_wrap(&g, x, 1, (int64_t[]){3}, "x");
        xv->requires_grad = true;
        vt_var *h = xv;
        for (int i = 0; i < L; i++) h = vt_scale(&g, h, 1.001f);
        vt_var *l = vt_sum(&g, vt_mul(&g, h, xv));   /* sum(1.001^L x^2): d/dx = 2 1.001^L x */
        ck_assert_int_eq(g.nnodes, L + 2);
        ck_assert_int_ge(g.cap, L + 2);
        ck_assert_int_eq(vt_backward(&g, l), VT_OK);
        double f = pow(1.001, L);
        for (int i = 0; i < 3; i++) ck_assert_msg(fabs(xv->grad[i] - 2 * f * x[i]) < 1e-4 * f * fabs(x[i]),
                                                  "%g vs %g", xv->grad[i], 2 * f * x[i]);
        if (step == 0) cap_first = g.cap;
        else ck_assert_int_eq(g.cap, cap_first);
    }
    vt_graph_free(&g);
}
END_TEST

/* backward twice on one tape adds the gradient exactly twice; two losses sharing a trunk add up */
START_TEST(backward_twice_on_one_tape)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    float x[3] = {0.5f, -1.0f, 0.25f};
    vt_var *xv = vt_var_wrap(&g, x, 1, (int64_t[]){3}, "x");
    xv->requires_grad = true;
    vt_var *h = vt_exp(&g, vt_scale(&g, xv, 2.0f));   /* trunk: exp(2x) */
    vt_var *l1 = vt_sum(&g, h);                        /* d/dx = 2 exp(2x) */
    vt_var *l2 = vt_mean(&g, vt_mul(&g, h, h));        /* d/dx = 4 exp(4x) / 3 */
    ck_assert_int_eq(vt_backward(&g, l1), VT_OK);
    for (int i = 0; i < 3; i++) ck_assert(fabs(xv->grad[i] - 2 * exp(2.0 * x[i])) < 1e-5 * exp(2.0 * x[i]));
    ck_assert_int_eq(vt_backward(&g, l1), VT_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(xv->grad[i] - 4 * exp(2.0 * x[i])) < 1e-5 * exp(2.0 * x[i]), "%g vs %g", xv->grad[i],
                      4 * exp(2.0 * x[i]));
    ck_assert_int_eq(vt_backward(&g, l2), VT_OK);
    for (int i = 0; i < 3; i++) {
        double e = 4 * exp(2.0 * x[i]) + 4 * exp(4.0 * x[i]) / 3;
        ck_assert_msg(fabs(xv->grad[i] - e) < 1e-5 * e, "%g vs %g", xv->grad[i], e);
    }
    vt_graph_free(&g);
}
END_TEST

/* no-grad keeps no activations: LayerNorm's mean/rstd cache is not allocated */
START_TEST(nograd_keeps_no_cache)
{
    vt_rng r;
    vt_rng_seed(&r, 8);
    float x[64 * 32], w[32], b[32];
    tu_fill_uniform(&r, x, 64 * 32, -1, 1);
    tu_fill_uniform(&r, w, 32, -1, 1);
    tu_fill_uniform(&r, b, 32, -1, 1);
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    size_t used[2];
    for (int grad = 0; grad < 2; grad++) {
        vt_graph_reset(&g);
        vt_graph_set_grad(&g, grad);
        vt_var *xv = vt_var_wrap(&g, x, 2, (int64_t[]){64, 32}, "x");
        vt_var *wv = vt_var_wrap(&g, w, 1, (int64_t[]){32}, "w");
        vt_var *bv = vt_var_wrap(&g, b, 1, (int64_t[]){32}, "b");
        wv->requires_grad = true;
        size_t before = g.arena.used_total;
        ck_assert_ptr_nonnull(vt_layernorm(&g, xv, wv, bv, 1e-6f));
        used[grad] = g.arena.used_total - before;
        ck_assert_int_eq(g.nnodes, grad ? 1 : 0);
    }
    ck_assert_uint_eq(used[1] - used[0], 2 * 64 * sizeof(float));   /* mean and rstd, 64 rows each */
    vt_graph_free(&g);
}
END_TEST

/* the gradient checks above exercise every op of the enum (a new op needs its check) */
START_TEST(every_op_is_gradchecked)
{
    bool seen[VT_OP_COUNT] = {false};
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    const op_spec *tables[2] = {fused_specs, general_specs};
    int counts[2] = {NSPECS(fused_specs), NSPECS(general_specs)};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < counts[t]; k++) {
            const op_spec *s = &tables[t][k];
            inputs in;
            make_inputs(&in, s, 1);
            vt_graph_reset(&g);
            ck_assert_ptr_nonnull(s->op(&g, in.p, &s->arg));
            for (int i = 0; i < g.nnodes; i++) seen[g.nodes[i].op] = true;
            free_inputs(&in);
        }
    for (int op = 0; op < VT_OP_COUNT; op++)
        ck_assert_msg(seen[op], "op %s has no gradient check", vt_op_name((vt_op)op));
    vt_graph_free(&g);
}
END_TEST

/* thousands of tiny forwards: one thread, so that OpenMP's spinning barriers cannot make the suite
 * crawl on a loaded machine (one vs two threads is test_kernels' business) */
static void one_thread(void) { vt_set_threads(1); }

void add_autograd_engine_tests(TCase *te);

int main(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, one_thread, NULL);
    tcase_add_loop_test(tc, gradcheck_fused, 0, NSPECS(fused_specs));
    tcase_add_loop_test(tc, gradcheck_general, 0, NSPECS(general_specs));
    tcase_add_test(tc, checker_catches_wrong_gradients);
    suite_add_tcase(s, tc);

    TCase *te = tcase_create("engine");
    tcase_set_timeout(te, 120);
    tcase_add_loop_test(te, accumulate_nograd_fused, 0, NSPECS(fused_specs));
    tcase_add_loop_test(te, accumulate_nograd_general, 0, NSPECS(general_specs));
    tcase_add_test(te, mixed_requires_grad);
    tcase_add_test(te, long_tape);
    tcase_add_test(te, backward_twice_on_one_tape);
    tcase_add_test(te, nograd_keeps_no_cache);
    tcase_add_test(te, every_op_is_gradchecked);
    add_autograd_engine_tests(te);   /* test_autograd_engine.c */
    suite_add_tcase(s, te);
    return tu_run(s);
}
