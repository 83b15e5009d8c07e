/* autograd.h - reverse-mode automatic differentiation on a tape.
 *
 * A vt_graph records, for each differentiable op, its inputs, its output and what backward needs
 * (the "cache"). vt_backward(g, loss) walks the tape in reverse and accumulates gradients into
 * var->grad. Values, caches and intermediate gradients of one step live in the graph's arena and
 * disappear with vt_graph_reset(). Parameters are leaf vars whose value and gradient point into the
 * flat buffers of a vt_paramset, so a whole-model loop (zero, clip, optimizer step, save) is one loop.
 *
 * Every op is listed once, in VT_OPS below (enum, name, backward); what its backward keeps is its member
 * of vt_op_ctx, and its kernels follow the backward-output rule written at the top of tensor.h.
 *
 * With grad disabled (vt_graph_set_grad(g, false)) nothing is recorded and ops keep no cache.
 * All op functions return NULL on error (shape mismatch, NULL input, out of memory) with vt_errmsg()
 * saying which op, which input and the shapes.
 */
#ifndef VIT_AUTOGRAD_H
#define VIT_AUTOGRAD_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_var {
    vt_tensor val;        /* value: contiguous */
    float *grad;          /* d loss / d val, contiguous, same numel; NULL until something flows in */
    bool requires_grad;   /* leaf parameters/inputs set it; ops propagate it */
} vt_var;

/* Every op, once: X(ENUM, name) gives VT_OP_<ENUM>, its name "name" (vt_op_name, profiles, messages) and its
 * backward ag_backward_<name> (declared in autograd_internal.h, dispatched in graph.c). A new op is a line here,
 * its kernel pair in src/tensor, its forward (vt_<name>, below) and backward in ops_*.c with its context in
 * vt_op_ctx, and a gradient check in tests/test_autograd.c (every_op_is_gradchecked fails without one). */
#define VT_OPS(X)                                                                                              \
    /* fused ops (the ViT's fast path, ops_fused.c) */                                                         \
    X(LINEAR, linear) X(LAYERNORM, layernorm) X(GELU, gelu) X(ATTENTION, attention) X(SOFTMAX, softmax)     \
    X(CROSSENTROPY, cross_entropy) X(PATCHIFY, patchify) X(EMBED, embed) X(POOL, pool) X(TOKEN_KEEP, token_keep) \
    X(TOKEN_FILL, token_fill) X(RESIDUAL, residual)                                                            \
    /* general ops (ops_general.c) */                                                                          \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(SCALE, scale) X(MATMUL, matmul) X(SUM, sum) X(MEAN, mean)           \
    X(RESHAPE, reshape) X(TRANSPOSE, transpose) X(EXP, exp) X(LOG, log) X(TANH, tanh) X(RELU, relu)

typedef enum {
#define VT_OP_ENUM_(E, name) VT_OP_##E,
    VT_OPS(VT_OP_ENUM_)
#undef VT_OP_ENUM_
    VT_OP_COUNT
} vt_op;

const char *vt_op_name(vt_op op);

/* What an op's backward needs besides its inputs and output, typed per op (the member named after the op;
 * ops that need nothing have none). Saved tensors live in the graph's arena. */
typedef union {
    struct vt_ctx_linear { int R, C, OC; } linear;
    struct vt_ctx_layernorm { float *mean, *rstd; int R, C; } layernorm;
    struct vt_ctx_gelu { vt_gelu_kind kind; bool deriv; } gelu;   /* deriv: x's storage holds GELU'(x) */
    struct vt_ctx_attention { float *att, *stats; int B, T, C, NH; } attention;   /* att, or stats to recompute */
    struct vt_ctx_cross_entropy { float *probs; const int *labels; const float *targets; float smoothing; int B, K; } cross_entropy;
    struct vt_ctx_patchify { int B, C, H, W, P; } patchify;
    struct vt_ctx_embed { int B, N, R, D; bool pos_all; } embed;   /* R register tokens; pos over every token */
    struct vt_ctx_pool { vt_pool_kind kind; int B, T, D, prefix; } pool;
    struct vt_ctx_token_keep { int32_t *keep; int B, T, K, D, prefix; } token_keep;   /* keep: a copy, (B, K) */
    struct vt_ctx_token_fill { int32_t *src; int B, T, TO, D; } token_fill;   /* src: a copy, (B, TO) */
    struct vt_ctx_residual { float *keep; int64_t R; int B, D; } residual;   /* keep: a copy, (B), or NULL */
    struct vt_ctx_scale { float s; } scale;
    struct vt_ctx_matmul { int64_t Bt, M, K, N, bstride; } matmul;
    struct vt_ctx_transpose { int d0, d1; } transpose;
} vt_op_ctx;

typedef struct vt_node {
    vt_op op;
    vt_var *out;
    vt_var *in[4];
    int nin;
    vt_op_ctx ctx;
} vt_node;

typedef struct vt_graph {
    vt_arena arena;       /* values, caches and intermediate grads of one step */
    vt_node *nodes;       /* the tape; grows by realloc only until the first steps settle */
    int nnodes, cap;
    bool grad_enabled;
    bool profile;                     /* accumulate seconds per op in op_seconds */
    bool recompute_attention;         /* attention keeps 2 floats per row, not T x T, and backward
                                         recomputes the probabilities (bitwise the same) */
    double op_seconds[VT_OP_COUNT][2]; /* [op][0 forward, 1 backward] */
    double t_op_start;
    /* Gradients of intermediate vars (outputs of recorded ops) are handed back as soon as backward has
     * passed their op, and reused for later gradients of the same size (PyTorch frees them too):
     * the peak memory of backward is the activations plus a few live gradients. retain_grads keeps
     * them all readable after backward. Leaves (parameters, inputs) always keep theirs. */
    bool retain_grads;
    /* when set, called after each node of the tape has been through backward (i: its index, from the last
     * down to 0; also for nodes nothing flowed into), in the thread that runs backward: a data-parallel
     * step starts reducing the parameter gradients that are final then (a leaf's gradient is final once
     * every node reading it has been passed) */
    void (*after_node)(struct vt_graph *g, int i, void *ctx);
    void *after_node_ctx;
    int npool;
    float *pool_p[64];
    int64_t pool_n[64];
} vt_graph;

int vt_graph_init(vt_graph *g, size_t arena_bytes);
void vt_graph_free(vt_graph *g);
/* forget the tape and every per-step tensor (parameters are untouched) */
void vt_graph_reset(vt_graph *g);
void vt_graph_set_grad(vt_graph *g, bool enabled);

/* ---- leaves */
/* a new var in the arena (optionally zero-filled); requires_grad false */
vt_var *vt_var_new(vt_graph *g, int ndim, const int64_t *shape, const char *name, bool zero);
/* wrap existing memory (e.g. an input batch) as a leaf; grad NULL */
vt_var *vt_var_wrap(vt_graph *g, float *data, int ndim, const int64_t *shape, const char *name);
/* make sure v->grad exists (zeroed arena memory if it was NULL); NULL on OOM */
float *vt_var_grad(vt_graph *g, vt_var *v);

/* ---- backward: d(loss)/d(loss) = 1 (loss must be a scalar of numel 1), walk the tape in reverse */
int vt_backward(vt_graph *g, vt_var *loss);

/* ---- fused ops (the ViT's fast path) */
/* x (..., C), w (OC, C), b (OC) or NULL -> (..., OC) */
vt_var *vt_linear(vt_graph *g, vt_var *x, vt_var *w, vt_var *b);
/* x (..., C), w (C), b (C) -> (..., C) */
vt_var *vt_layernorm(vt_graph *g, vt_var *x, vt_var *w, vt_var *b, float eps);
vt_var *vt_gelu(vt_graph *g, vt_var *x, vt_gelu_kind kind);
/* the same, consuming x: when a gradient is recorded, x's value is replaced by GELU'(x) (so backward is
 * one multiply and keeps no extra tensor); for an x that nothing else reads, e.g. the MLP's fc1 output */
vt_var *vt_gelu_consume(vt_graph *g, vt_var *x, vt_gelu_kind kind);
/* qkv (B, T, 3C) -> (B, T, C), NH heads */
vt_var *vt_attention(vt_graph *g, vt_var *qkv, int num_heads);
/* softmax over the last dim */
vt_var *vt_softmax(vt_graph *g, vt_var *x);
/* logits (B, K), labels (B) -> scalar mean cross-entropy with label smoothing.
 * labels must stay valid until backward. Out-of-range label -> NULL + message. */
vt_var *vt_cross_entropy(vt_graph *g, vt_var *logits, const int *labels, float smoothing);
/* the same op against soft targets (B, K) (mixup / cutmix; timm's SoftTargetCrossEntropy); kept, not copied */
vt_var *vt_cross_entropy_soft(vt_graph *g, vt_var *logits, const float *targets);
/* img (B, C, H, W) -> (B, (H/P)*(W/P), C*P*P) */
vt_var *vt_patchify(vt_graph *g, vt_var *img, int patch);
/* tok (B, N, D), cls (1, 1, D), pos (1, N+1, D) -> (B, N+1, D) */
vt_var *vt_embed(vt_graph *g, vt_var *tok, vt_var *cls, vt_var *pos);
/* with register tokens: tok (B, N, D), cls (1, 1, D), reg (1, R, D) or NULL, pos (1, 1+R+N, D) (every token) or
 * (1, N, D) (the patch tokens: timm's no_embed_class) -> (B, 1+R+N, D) = [cls, reg, tok] + pos */
vt_var *vt_embed_reg(vt_graph *g, vt_var *tok, vt_var *cls, vt_var *reg, vt_var *pos);
/* x (B, T, D) -> (B, prefix + K, D): the prefix tokens and, per image b, tokens keep[b K + j] (distinct,
 * in [prefix, T)); keep is copied, the caller may reuse it */
vt_var *vt_token_keep(vt_graph *g, vt_var *x, int prefix, const int32_t *keep, int K);
/* x (B, T, D), fill (numel D) -> (B, TO, D): row t of image b is x's row src[b TO + t] of that image when it is
 * >= 0 (in [0, T)), else fill (a [mask] token: masked patch prediction, MAE's decoder); src is copied */
vt_var *vt_token_fill(vt_graph *g, vt_var *x, vt_var *fill, const int32_t *src, int TO);
/* x (B, T, D) -> (B, D) */
vt_var *vt_pool(vt_graph *g, vt_var *x, vt_pool_kind kind, int prefix);
/* a block's residual add with LayerScale and stochastic depth: x, br (B, T, D), gamma (D) or NULL, keep (B)
 * or NULL (copied) -> x + keep[b] * (gamma * br) (vt_residual_forward) */
vt_var *vt_residual(vt_graph *g, vt_var *x, vt_var *br, vt_var *gamma, const float *keep);

/* ---- general ops */
/* a + b, a - b, a * b: same shape, or b's shape equal to a trailing part of a's shape (broadcast) */
vt_var *vt_add(vt_graph *g, vt_var *a, vt_var *b);
vt_var *vt_sub(vt_graph *g, vt_var *a, vt_var *b);
vt_var *vt_mul(vt_graph *g, vt_var *a, vt_var *b);
vt_var *vt_scale(vt_graph *g, vt_var *a, float s);
/* a (M, K) @ b (K, N) -> (M, N); or batched a (Bt, M, K) @ b (Bt, K, N) or b (K, N) shared */
vt_var *vt_matmul(vt_graph *g, vt_var *a, vt_var *b);
/* sum / mean of all elements -> scalar (shape (1)) */
vt_var *vt_sum(vt_graph *g, vt_var *a);
vt_var *vt_mean(vt_graph *g, vt_var *a);
vt_var *vt_reshape(vt_graph *g, vt_var *a, int ndim, const int64_t *shape);
/* swap two dimensions (materialised as a contiguous copy) */
vt_var *vt_transpose(vt_graph *g, vt_var *a, int d0, int d1);
vt_var *vt_exp(vt_graph *g, vt_var *a);
vt_var *vt_log(vt_graph *g, vt_var *a);
vt_var *vt_tanh(vt_graph *g, vt_var *a);
vt_var *vt_relu(vt_graph *g, vt_var *a);

/* ---- parameters: one flat value buffer, one flat gradient buffer, named views */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[VT_MAXDIM];
    int64_t offset, numel;   /* in floats, into data/grad */
} vt_param_info;

typedef struct {
    int count, cap;
    vt_param_info *info;
    vt_var *vars;            /* vars[i] views info[i] in data/grad (valid after vt_paramset_alloc) */
    float *data, *grad;      /* numel floats each, 64-byte aligned */
    void *data_base, *grad_base;  /* what was allocated */
    int64_t numel;
} vt_paramset;

void vt_paramset_init(vt_paramset *ps);
/* declare a parameter (before alloc); returns its index or -1 */
int vt_paramset_add(vt_paramset *ps, const char *name, int ndim, const int64_t *shape);
/* allocate the flat buffers (zeroed) and point the vars into them */
int vt_paramset_alloc(vt_paramset *ps);
void vt_paramset_free(vt_paramset *ps);
int vt_paramset_find(const vt_paramset *ps, const char *name);   /* -1 if absent */
void vt_paramset_zero_grad(vt_paramset *ps);

/* ---- gradient checking (central finite differences) */
/* f builds a scalar loss from the inputs (whose requires_grad is set) on graph g. The checker runs
 * backward once for the analytic gradients, then perturbs every input element by +-h and compares.
 * Returns the worst error measured as |analytic - numeric| / max(atol, rtol-scaled magnitude);
 * a value <= 1 means the check passed. worst_desc (may be NULL) receives a description. */
typedef vt_var *(*vt_gradcheck_fn)(vt_graph *g, vt_var **inputs, int ninputs, void *ctx);
double vt_gradcheck(vt_gradcheck_fn f, void *ctx, vt_var **inputs, int ninputs, double h,
                    double atol, double rtol, char *worst_desc, size_t desc_len);

#ifdef __cplusplus
}
#endif
#endif
