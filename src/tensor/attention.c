/* attention.c - multi-head scaled dot-product self-attention on a fused qkv tensor.
 * Parallel over (batch, head); q, k, v are read in place (row stride 3C), no copies. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <string.h>

/* qkv (B, T, 3C) -> out (B, T, C), att (B, NH, T, T) */
void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *base = qkv + (size_t)b * T * C3;
            float *A = att + ((size_t)b * NH + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * C3 + h * hs;
                float *row = A + (size_t)t * T;
                for (int s = 0; s < T; s++) {
                    const float *k = base + (size_t)s * C3 + C + h * hs;
                    float d = 0.0f;
                    for (int i = 0; i < hs; i++) d += q[i] * k[i];
                    row[s] = d * scale;
                }
                vt__softmax_row(row, row, T);
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                memset(o, 0, (size_t)hs * sizeof(float));
                for (int s = 0; s < T; s++) {
                    const float *v = base + (size_t)s * C3 + 2 * C + h * hs;
                    float p = row[s];
                    for (int i = 0; i < hs; i++) o[i] += p * v[i];
                }
            }
        }
    }
}

/* dout (B, T, C) -> dqkv (B, T, 3C) += */
void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            float dp[T];
            const float *base = qkv + (size_t)b * T * C3;
            float *dbase = dqkv + (size_t)b * T * C3;
            const float *A = att + ((size_t)b * NH + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *p = A + (size_t)t * T;
                const float *dy = dout + ((size_t)b * T + t) * C + h * hs;
                /* dP[s] = dy . v_s ; dv_s += p[s] dy */
                float dot = 0.0f;
                for (int s = 0; s < T; s++) {
                    const float *v = base + (size_t)s * C3 + 2 * C + h * hs;
                    float *dv = dbase + (size_t)s * C3 + 2 * C + h * hs;
                    float d = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        d += dy[i] * v[i];
                        dv[i] += p[s] * dy[i];
                    }
                    dp[s] = d;
                    dot += p[s] * d;
                }
                /* dS = P (dP - sum P dP) * scale; dq_t += dS k_s; dk_s += dS q_t */
                const float *q = base + (size_t)t * C3 + h * hs;
                float *dq = dbase + (size_t)t * C3 + h * hs;
                for (int s = 0; s < T; s++) {
                    float ds = p[s] * (dp[s] - dot) * scale;
                    const float *k = base + (size_t)s * C3 + C + h * hs;
                    float *dk = dbase + (size_t)s * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
        }
    }
}
