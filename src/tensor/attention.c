/* attention.c - multi-head scaled dot-product self-attention on a fused qkv tensor.
 * Parallel over (batch, head); q, k, v are read in place (row stride 3C), no copies. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* qkv (B, T, 3C) -> out (B, T, C), att (B, NH, T, T)
 * Per (b, h): K is transposed into a small scratch (hs, T) so that every inner loop is a contiguous
 * axpy the compiler vectorises: S[t, :] += q[t, i] * Kt[i, :]. */
void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *kt = malloc(sizeof(float) * (size_t)hs * T);
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *base = qkv + (size_t)b * T * C3;
                float *A = att + ((size_t)b * NH + h) * T * T;
                for (int s = 0; s < T; s++) {
                    const float *k = base + (size_t)s * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) kt[(size_t)i * T + s] = k[i];
                }
                for (int t = 0; t < T; t++) {
                    const float *q = base + (size_t)t * C3 + h * hs;
                    float *row = A + (size_t)t * T;
                    for (int s = 0; s < T; s++) row[s] = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        const float qi = q[i] * scale, *kr = kt + (size_t)i * T;
                        #pragma omp simd
                        for (int s = 0; s < T; s++) row[s] += qi * kr[s];
                    }
                    vt__softmax_row(row, row, T);
                    float *o = out + ((size_t)b * T + t) * C + h * hs;
                    for (int i = 0; i < hs; i++) o[i] = 0.0f;
                    for (int s = 0; s < T; s++) {
                        const float *v = base + (size_t)s * C3 + 2 * C + h * hs;
                        const float p = row[s];
                        #pragma omp simd
                        for (int i = 0; i < hs; i++) o[i] += p * v[i];
                    }
                }
            }
        }
        free(kt);
    }
}

/* dout (B, T, C) -> dqkv (B, T, 3C) += ; V is transposed into scratch (hs, T) as K in the forward */
void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *vt = malloc(sizeof(float) * ((size_t)hs * T + 2 * (size_t)T));
        float *dp = vt + (size_t)hs * T, *ds = dp + T;
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *base = qkv + (size_t)b * T * C3;
                float *dbase = dqkv + (size_t)b * T * C3;
                const float *A = att + ((size_t)b * NH + h) * T * T;
                for (int s = 0; s < T; s++) {
                    const float *v = base + (size_t)s * C3 + 2 * C + h * hs;
                    for (int i = 0; i < hs; i++) vt[(size_t)i * T + s] = v[i];
                }
                for (int t = 0; t < T; t++) {
                    const float *p = A + (size_t)t * T;
                    const float *dy = dout + ((size_t)b * T + t) * C + h * hs;
                    /* dP[s] = dy . v_s */
                    for (int s = 0; s < T; s++) dp[s] = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        const float di = dy[i], *vr = vt + (size_t)i * T;
                        #pragma omp simd
                        for (int s = 0; s < T; s++) dp[s] += di * vr[s];
                    }
                    float dot = 0.0f;
                    for (int s = 0; s < T; s++) dot += p[s] * dp[s];
                    /* dS = P (dP - sum P dP) * scale */
                    #pragma omp simd
                    for (int s = 0; s < T; s++) ds[s] = p[s] * (dp[s] - dot) * scale;
                    const float *q = base + (size_t)t * C3 + h * hs;
                    float *dq = dbase + (size_t)t * C3 + h * hs;
                    for (int s = 0; s < T; s++) {
                        const float *k = base + (size_t)s * C3 + C + h * hs;
                        float *dk = dbase + (size_t)s * C3 + C + h * hs;
                        float *dv = dbase + (size_t)s * C3 + 2 * C + h * hs;
                        const float pv = p[s], d = ds[s];
                        #pragma omp simd
                        for (int i = 0; i < hs; i++) {
                            dv[i] += pv * dy[i];
                            dq[i] += d * k[i];
                            dk[i] += d * q[i];
                        }
                    }
                }
            }
        }
        free(vt);
    }
}
