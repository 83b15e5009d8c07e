/* attention.c - multi-head scaled dot-product self-attention on a fused qkv tensor.
 * Parallel over (batch, head); q, k, v are read in place (row stride 3C), no copies.
 *
 * Two ways to give backward the softmax probabilities P (B, NH, T, T):
 *  - keep them (att != NULL): fastest, T*T floats per head and image;
 *  - keep only two floats per row, the row max m and 1/sum (stats != NULL, att == NULL), and
 *    recompute P = exp(scale Q K^T - m) / sum in backward with the same GEMM and the same float
 *    operations: bitwise the P that forward had, for one extra (T x T x hs) GEMM per head. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* e = exp(x - m) for a row, returning the sum (one loop body for forward and recompute) */
static inline float exp_row(float *e, const float *x, int n, float m)
{
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int c = 0; c < n; c++) {
        e[c] = vt__expf(x[c] - m);
        s += e[c];
    }
    return s;
}

static inline void scale_row(float *e, int n, float inv)
{
    #pragma omp simd
    for (int c = 0; c < n; c++) e[c] *= inv;
}

/* in-place softmax of a row; stats[0] = max, stats[1] = 1/sum */
static inline void softmax_row_stats(float *r, int n, float *stats)
{
    float m = -INFINITY;
    for (int c = 0; c < n; c++) m = r[c] > m ? r[c] : m;
    float inv = 1.0f / exp_row(r, r, n, m);
    scale_row(r, n, inv);
    stats[0] = m;
    stats[1] = inv;
}

size_t vt_attention_scratch_floats(int T) { return (size_t)2 * omp_get_max_threads() * T * T; }

/* S = scale Q K^T of one (b, h) into A (T, T) */
static inline void scores(float *A, const float *q, const float *k, int T, int hs, int C3, float scale)
{
    vt_sgemm(false, true, T, T, hs, scale, q, C3, k, C3, 0.0f, A, T);
}

void vt_attention_forward_ex(float *out, float *att, float *stats, float *scratch, const float *qkv, int B, int T,
                             int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *own = NULL, *buf = NULL;
        if (!att) buf = scratch ? scratch + (size_t)2 * omp_get_thread_num() * T * T
                                : (own = malloc(sizeof(float) * (size_t)T * T));
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
                const size_t bh = (size_t)b * NH + h;
                float *A = att ? att + bh * T * T : buf;
                scores(A, q, k, T, hs, C3, scale);
                float st[2];
                for (int t = 0; t < T; t++) {
                    float *s = stats ? stats + (bh * T + t) * 2 : st;
                    softmax_row_stats(A + (size_t)t * T, T, s);
                }
                /* O = P V (T, hs) into the head's columns of out */
                vt_sgemm(false, false, T, hs, T, 1.0f, A, T, v, C3, 0.0f, out + (size_t)b * T * C + h * hs, C);
            }
        }
        free(own);
    }
}

void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    vt_attention_forward_ex(out, att, NULL, NULL, qkv, B, T, C, NH);
}

void vt_attention_backward_ex(float *dqkv, const float *dout, const float *qkv, const float *att,
                              const float *stats, float *scratch, int B, int T, int C, int NH, bool acc)
{
    const float beta = acc ? 1.0f : 0.0f;   /* each of dq, dk, dv of a head is written by one GEMM */
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *own = NULL, *dp, *pbuf;
        if (scratch)
            dp = scratch + (size_t)2 * omp_get_thread_num() * T * T;
        else
            dp = own = malloc(sizeof(float) * (size_t)T * T * (att ? 1 : 2));
        pbuf = dp + (size_t)T * T;
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t off = (size_t)b * T * C3 + h * hs, bh = (size_t)b * NH + h;
                const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
                float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
                const float *P;
                if (att) {
                    P = att + bh * T * T;
                } else {
                    /* recompute exactly what forward computed */
                    scores(pbuf, q, k, T, hs, C3, scale);
                    for (int t = 0; t < T; t++) {
                        const float *s = stats + (bh * T + t) * 2;
                        float *r = pbuf + (size_t)t * T;
                        exp_row(r, r, T, s[0]);
                        scale_row(r, T, s[1]);
                    }
                    P = pbuf;
                }
                const float *dO = dout + (size_t)b * T * C + h * hs;
                /* dP = dO V^T; dV += P^T dO */
                vt_sgemm(false, true, T, T, hs, 1.0f, dO, C, v, C3, 0.0f, dp, T);
                vt_sgemm(true, false, T, hs, T, 1.0f, P, T, dO, C, beta, dv, C3);
                /* dS = P (dP - rowsum(P dP)) * scale */
                for (int t = 0; t < T; t++) {
                    const float *pr = P + (size_t)t * T;
                    float *r = dp + (size_t)t * T;
                    float dot = 0.0f;
                    #pragma omp simd reduction(+ : dot)
                    for (int s = 0; s < T; s++) dot += pr[s] * r[s];
                    #pragma omp simd
                    for (int s = 0; s < T; s++) r[s] = pr[s] * (r[s] - dot) * scale;
                }
                /* dQ += dS K; dK += dS^T Q */
                vt_sgemm(false, false, T, hs, T, 1.0f, dp, T, k, C3, beta, dq, C3);
                vt_sgemm(true, false, T, hs, T, 1.0f, dp, T, q, C3, beta, dk, C3);
            }
        }
        free(own);
    }
}

void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                           int NH)
{
    vt_attention_backward_ex(dqkv, dout, qkv, att, NULL, NULL, B, T, C, NH, true);
}
