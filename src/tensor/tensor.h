/* tensor.h - the tensor layer of vit, on top of src/base (errors, RNG, threads, HDF5): the arena,
 * float32 tensors and the forward/backward kernels every higher layer is built from.
 *
 * Conventions (llm.c style):
 *  - kernels take raw float pointers plus dims; shapes are written above each one;
 *  - x_forward(out, cache..., in, params..., dims) / x_backward(din, dparams..., dout, in, cache..., dims);
 *  - backward kernels write gradients by one rule: parameter gradients (dweight, dbias, dcls, dpos) are
 *    added into (+=), so they accumulate over a step's micro-batches; the input gradient (dinp, dx, dqkv,
 *    dimg, dtok, dlogits) is added into when the kernel's last argument acc is true and overwritten when
 *    it is false: every element is written with the value adding into zeros gives, so the buffer may be
 *    fresh, uninitialised memory (one pass less than zeroing it first). Every backward kernel with an
 *    input gradient takes acc; vt_bias_add_backward has none (only dbias);
 *  - any output pointer of a backward kernel may be NULL when that gradient is not wanted.
 * Functions that can fail return VT_OK / VT_ERR or NULL with a message, as everywhere (base.h).
 */
#ifndef VIT_TENSOR_H
#define VIT_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- arena */
/* Bump allocator for everything one training step creates. vt_arena_reset() frees nothing:
 * if the step needed more than one chunk, the chunks are merged into one big block, so the
 * steady state performs no malloc at all. Allocations are 64-byte aligned. */
typedef struct vt_arena_chunk vt_arena_chunk;
typedef struct {
    vt_arena_chunk *head;   /* current chunk (newest first) */
    size_t used_total;      /* bytes handed out since the last reset */
    size_t peak;            /* largest used_total ever seen */
    size_t chunk_min;       /* minimum size of a new chunk */
    int nmallocs;           /* mallocs performed (for tests: steady state adds none) */
} vt_arena;

void vt_arena_init(vt_arena *a, size_t initial_bytes);
void *vt_arena_alloc(vt_arena *a, size_t bytes);     /* NULL + vt_err on failure */
void *vt_arena_calloc(vt_arena *a, size_t bytes);
void vt_arena_reset(vt_arena *a);
/* mark / release: give back everything allocated after the mark (for no-grad evaluation) */
typedef struct { vt_arena_chunk *chunk; size_t used, used_total; } vt_arena_mark;
vt_arena_mark vt_arena_get_mark(const vt_arena *a);
void vt_arena_release(vt_arena *a, vt_arena_mark m);
void vt_arena_free(vt_arena *a);
size_t vt_arena_capacity(const vt_arena *a);

/* ---------------------------------------------------------------- tensors */
#define VT_MAXDIM 4
typedef struct {
    int ndim;
    int64_t shape[VT_MAXDIM];
    int64_t stride[VT_MAXDIM];   /* in elements */
    float *data;
    const char *name;            /* for messages; not owned */
} vt_tensor;

/* contiguous tensor over existing memory */
vt_tensor vt_tensor_view(float *data, int ndim, const int64_t *shape, const char *name);
/* contiguous tensor in an arena (NULL data + vt_err on failure) */
int vt_tensor_arena(vt_tensor *t, vt_arena *a, int ndim, const int64_t *shape, const char *name, bool zero);
int64_t vt_tensor_numel(const vt_tensor *t);
bool vt_tensor_is_contiguous(const vt_tensor *t);
bool vt_shape_equal(const vt_tensor *a, const vt_tensor *b);
/* writes "(2, 3, 4)" into buf */
const char *vt_shape_str(const vt_tensor *t, char *buf, size_t n);
/* views: share data, change the description */
int vt_tensor_reshape(vt_tensor *out, const vt_tensor *t, int ndim, const int64_t *shape);
int vt_tensor_slice(vt_tensor *out, const vt_tensor *t, int dim, int64_t start, int64_t len);
int vt_tensor_transpose(vt_tensor *out, const vt_tensor *t, int d0, int d1);
/* copy any strided tensor into contiguous memory dst (numel floats) */
void vt_tensor_copy_to_contiguous(float *dst, const vt_tensor *t);
float vt_tensor_get(const vt_tensor *t, const int64_t *idx);

/* ---------------------------------------------------------------- kernels */
/* GEMM, row-major: C(M,N) = alpha * op(A) op(B) + beta * C, lda/ldb/ldc are row strides. */
void vt_sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Linear (timm layout, weight (OC, C)):
 * inp (BT, C), weight (OC, C), bias (OC) or NULL -> out (BT, OC) = inp weight^T + bias */
void vt_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int BT, int C, int OC);
void vt_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int BT, int C, int OC, bool acc);

/* LayerNorm over the last dim: inp (BT, C), weight/bias (C) -> out (BT, C); caches mean, rstd (BT) */
void vt_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int BT, int C, float eps);
void vt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int BT, int C, bool acc);

/* GELU, elementwise on n values. exact: 0.5 x (1 + erf(x / sqrt 2)); tanh: the approximation */
typedef enum { VT_GELU_ERF = 0, VT_GELU_TANH = 1 } vt_gelu_kind;
void vt_gelu_forward(float *out, const float *inp, int64_t n, vt_gelu_kind kind);
void vt_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n, vt_gelu_kind kind, bool acc);
/* the same forward also writing GELU'(x) into deriv (which may be inp itself: the input is then replaced),
 * and the backward from it: dinp (+)= deriv * dout, one multiply instead of an erf and an exp */
void vt_gelu_forward_deriv(float *out, float *deriv, const float *inp, int64_t n, vt_gelu_kind kind);
void vt_gelu_backward_deriv(float *dinp, const float *dout, const float *deriv, int64_t n, bool acc);

/* elementwise helpers on n values */
void vt_add_forward(float *out, const float *a, const float *b, int64_t n);   /* residual add */
void vt_accumulate(float *dst, const float *src, int64_t n);                   /* dst += src */
/* The residual add of a block with LayerScale and stochastic depth (timm's x + drop_path(ls(branch))):
 * x, br (B, R, D), gamma (D) or NULL, keep (B) or NULL -> out (B, R, D) = x + keep[b] * (gamma[d] * br);
 * keep[b] is 0 for a sample whose branch is dropped, 1 / keep_prob for one that is kept. out may be x.
 * Backward: dbr (+)= keep[b] gamma[d] dout, dgamma (D) += sum over (b, r) of keep[b] br dout (x's gradient
 * is dout itself) */
void vt_residual_forward(float *out, const float *x, const float *br, const float *gamma, const float *keep, int B,
                         int64_t R, int D);
void vt_residual_backward(float *dbr, float *dgamma, const float *dout, const float *br, const float *gamma,
                          const float *keep, int B, int64_t R, int D, bool acc);
/* bias add along the last dim: x (R, C) += bias (C); backward: dbias (C) += sum_r dout (R, C) */
void vt_bias_add_forward(float *x, const float *bias, int R, int C);
void vt_bias_add_backward(float *dbias, const float *dout, int R, int C);

/* softmax over the last dim: inp (R, C) -> out (R, C), numerically stable (max subtracted)  */
void vt_softmax_forward(float *out, const float *inp, int R, int C);
/* dinp (+)= out * (dout - sum(dout * out)) */
void vt_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C, bool acc);

/* Multi-head scaled dot-product self-attention from a fused qkv projection.
 * qkv (B, T, 3C): per token q | k | v, each head-major (NH heads of hs = C/NH).
 * out (B, T, C) head-major; att (B, NH, T, T) keeps the softmax probabilities for backward,
 * transposed: att[b, h, s, t] = P[t, s] = softmax over keys s of query t.
 * scale = 1/sqrt(hs). No copies: the GEMMs read q, k, v in place with row stride 3C. */
void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv (B, T, 3C) (+)= d(out)/d(qkv) dout, using the cached probabilities att */
void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           int B, int T, int C, int NH, bool acc);
/* The same with the choice of what backward keeps: att (B, NH, T, T) probabilities, or att NULL and
 * stats (B, NH, 2, T) (each query's score max, then each query's 1/sum) from which backward recomputes
 * the probabilities bitwise.
 * scratch: vt_attention_scratch_floats(T) floats (per-thread T x T buffers), or NULL to allocate. */
size_t vt_attention_scratch_floats(int T);
void vt_attention_forward_ex(float *out, float *att, float *stats, float *scratch, const float *qkv, int B, int T,
                             int C, int NH);
void vt_attention_backward_ex(float *dqkv, const float *dout, const float *qkv, const float *att,
                              const float *stats, float *scratch, int B, int T, int C, int NH, bool acc);

/* Patch extraction (im2col for the conv with kernel = stride = P):
 * img (B, Cin, H, W) -> patches (B, Gh*Gw, Cin*P*P), each row ordered (c, py, px) so that
 * patches @ weight(D, Cin*P*P)^T is the conv. Gh = H/P, Gw = W/P (H, W multiples of P). */
void vt_patchify_forward(float *patches, const float *img, int B, int Cin, int H, int W, int P);
void vt_patchify_backward(float *dimg, const float *dpatches, int B, int Cin, int H, int W, int P, bool acc);

/* Class token + position embedding:
 * tok (B, N, D), cls (D), pos (N+1, D) -> x (B, N+1, D), x[b,0] = cls + pos[0], x[b,1+i] = tok[b,i] + pos[1+i] */
void vt_embed_forward(float *x, const float *tok, const float *cls, const float *pos, int B, int N, int D);
void vt_embed_backward(float *dtok, float *dcls, float *dpos, const float *dx, int B, int N, int D, bool acc);
/* With R register tokens (timm's reg_token) after the class token: tok (B, N, D), cls (D), reg (R, D) (NULL when
 * R = 0) -> x (B, 1+R+N, D) = [cls, reg, tok] plus the position embedding: pos (1+R+N, D) over every token when
 * pos_all, else (timm's no_embed_class, DeiT-III) pos (N, D) over the patch tokens only. Backward: dtok (+)=,
 * dcls, dreg, dpos += (each may be NULL). */
void vt_embed_forward_ex(float *x, const float *tok, const float *cls, const float *reg, const float *pos, int B, int N,
                         int R, int D, bool pos_all);
void vt_embed_backward_ex(float *dtok, float *dcls, float *dreg, float *dpos, const float *dx, int B, int N, int R, int D,
                          bool pos_all, bool acc);

/* Token selection (timm's PatchDropout): x (B, T, D) -> out (B, prefix + K, D), the prefix tokens,
 * then for each image b the K tokens keep[b * K + j] (indices into [prefix, T), distinct per image).
 * Backward adds each kept row's gradient to its source row of dx; dropped rows get nothing (zeros when
 * overwriting). */
void vt_token_keep_forward(float *out, const float *x, const int32_t *keep, int B, int T, int K, int D, int prefix);
void vt_token_keep_backward(float *dx, const float *dout, const int32_t *keep, int B, int T, int K, int D,
                            int prefix, bool acc);

/* Token filling (masked-image objectives): x (B, T, D), fill (D) -> out (B, TO, D): row t of image b is row
 * src[b * TO + t] of x's image b when that is >= 0 (in [0, T)), else fill (a learned [mask] token). Backward
 * adds each row's gradient to its source row of dx (rows no output reads get zeros when overwriting) and
 * the filled rows' gradients to dfill, in image and row order. */
void vt_token_fill_forward(float *out, const float *x, const float *fill, const int32_t *src, int B, int T, int TO,
                           int D);
void vt_token_fill_backward(float *dx, float *dfill, const float *dout, const int32_t *src, int B, int T, int TO, int D,
                            bool acc);

/* Token pooling: x (B, T, D) -> out (B, D). CLS: out = x[:, 0]; MEAN: mean of x[:, prefix:] */
typedef enum { VT_POOL_TOKEN = 0, VT_POOL_MEAN = 1 } vt_pool_kind;
void vt_pool_forward(float *out, const float *x, int B, int T, int D, vt_pool_kind kind, int prefix);
void vt_pool_backward(float *dx, const float *dout, int B, int T, int D, vt_pool_kind kind, int prefix, bool acc);

/* Image resize, as torch's interpolate(align_corners=False, antialias) computed in double:
 * planar images in (C, ih, iw) -> out (C, oh, ow) */
typedef enum { VT_INTERP_BICUBIC = 0, VT_INTERP_BILINEAR = 1 } vt_interp;
int vt_interp_parse(const char *name, vt_interp *out);
int vt_resize_image_f32(float *out, const float *in, int C, int ih, int iw, int oh, int ow, vt_interp mode, bool antialias);
/* the same without allocating: work (8-byte aligned) has vt_resize_work_bytes(ih, iw, oh, ow) bytes, a size
 * that never shrinks when ih or iw grows (so the largest input's size serves every smaller one); 0 for bad sizes */
size_t vt_resize_work_bytes(int ih, int iw, int oh, int ow);
int vt_resize_image_f32_work(float *out, const float *in, int C, int ih, int iw, int oh, int ow, vt_interp mode,
                             bool antialias, void *work);

/* Softmax cross-entropy with label smoothing eps (torch's definition):
 * logits (B, K), labels (B) -> returns the mean loss over B; probs (B, K) cached for backward.
 * loss_b = (1-eps) * (-log p[y]) + eps * mean_k(-log p[k]). Labels out of range -> NaN loss. */
double vt_crossentropy_forward(float *probs, const float *logits, const int *labels, int B, int K,
                               float smoothing);
/* dlogits (+)= dloss * (probs - target) / B, target = (1-eps) onehot + eps / K */
void vt_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K,
                              float smoothing, float dloss, bool acc);
/* Against soft targets t (B, K) (timm's SoftTargetCrossEntropy: mixup and cutmix's rows, label smoothing
 * already in them): loss_b = sum_k -t[k] log p[k], the mean over B returned; probs cached.
 * Backward: dlogits (+)= dloss * (p * sum_k t[k] - t) / B. */
double vt_crossentropy_soft_forward(float *probs, const float *logits, const float *targets, int B, int K);
void vt_crossentropy_soft_backward(float *dlogits, const float *probs, const float *targets, int B, int K, float dloss,
                                   bool acc);

#ifdef __cplusplus
}
#endif
#endif
