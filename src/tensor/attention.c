/* attention.c - multi-head scaled dot-product self-attention on a fused qkv tensor.
 * Parallel over (batch, head); q, k, v are read in place (row stride 3C), no copies. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* qkv (B, T, 3C) -> out (B, T, C), att (B, NH, T, T)
 * Parallel over (b, h); each pair is two GEMMs that read q, k, v in place (row stride 3C).
 * Inside an OpenMP region the OpenMP build of OpenBLAS runs single-threaded, as wanted. */
void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *A = att + ((size_t)b * NH + h) * T * T;
            /* S = scale * Q K^T (T, T) */
            vt_sgemm(false, true, T, T, hs, scale, q, C3, k, C3, 0.0f, A, T);
            for (int t = 0; t < T; t++) vt__softmax_row(A + (size_t)t * T, A + (size_t)t * T, T);
            /* O = P V (T, hs) into the head's columns of out */
            vt_sgemm(false, false, T, hs, T, 1.0f, A, T, v, C3, 0.0f, out + (size_t)b * T * C + h * hs, C);
        }
    }
}

/* dout (B, T, C) -> dqkv (B, T, 3C) += ; a (T, T) scratch per thread holds dP, then dS */
void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *dp = malloc(sizeof(float) * (size_t)T * T);
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t off = (size_t)b * T * C3 + h * hs;
                const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
                float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
                const float *P = att + ((size_t)b * NH + h) * T * T;
                const float *dO = dout + (size_t)b * T * C + h * hs;
                /* dP = dO V^T; dV += P^T dO */
                vt_sgemm(false, true, T, T, hs, 1.0f, dO, C, v, C3, 0.0f, dp, T);
                vt_sgemm(true, false, T, hs, T, 1.0f, P, T, dO, C, 1.0f, dv, C3);
                /* dS = P (dP - rowsum(P dP)) * scale */
                for (int t = 0; t < T; t++) {
                    const float *pr = P + (size_t)t * T;
                    float *r = dp + (size_t)t * T;
                    float dot = 0.0f;
                    for (int s = 0; s < T; s++) dot += pr[s] * r[s];
                    for (int s = 0; s < T; s++) r[s] = pr[s] * (r[s] - dot) * scale;
                }
                /* dQ += dS K; dK += dS^T Q */
                vt_sgemm(false, false, T, hs, T, 1.0f, dp, T, k, C3, 1.0f, dq, C3);
                vt_sgemm(true, false, T, hs, T, 1.0f, dp, T, q, C3, 1.0f, dk, C3);
            }
        }
        free(dp);
    }
}
