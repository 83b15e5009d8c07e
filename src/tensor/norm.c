/* norm.c - LayerNorm over the last dimension. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* inp (BT, C), weight (C), bias (C) -> out (BT, C); mean, rstd (BT) cached for backward */
void vt_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int BT, int C, float eps)
{
    #pragma omp parallel for schedule(static) if ((int64_t)BT * C > 16384)
    for (int r = 0; r < BT; r++) {
        const float *x = inp + (size_t)r * C;
        float *y = out + (size_t)r * C;
        /* two passes in float, vectorised (the row is in L1); the variance of the centred values
         * does not lose digits to cancellation as E[x^2] - E[x]^2 would */
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        const float m = s / (float)C;
        float v = 0.0f;
        #pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        const float rs = 1.0f / sqrtf(v / (float)C + eps);
        #pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * rs * weight[c] + bias[c];
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}

/* dout (BT, C) -> dinp (BT, C) += (= when !acc), dweight (C) +=, dbias (C) += */
void vt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int BT, int C, bool acc)
{
    if (dinp && C == 1) {
        /* one channel: the output is the bias, nothing flows back to the input (computed, the
         * difference dy w - mean(dy w) is a rounding error that rstd = 1/sqrt(eps) would magnify) */
        if (!acc) memset(dinp, 0, sizeof(float) * (size_t)BT);
    } else if (dinp) {
        #pragma omp parallel for schedule(static) if ((int64_t)BT * C > 16384)
        for (int r = 0; r < BT; r++) {
            const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            float m = mean[r], rs = rstd[r];
            float sum_dn = 0.0f, sum_dn_n = 0.0f;
            #pragma omp simd reduction(+ : sum_dn, sum_dn_n)
            for (int c = 0; c < C; c++) {
                float n = (x[c] - m) * rs;
                float dn = dy[c] * weight[c];
                sum_dn += dn;
                sum_dn_n += dn * n;
            }
            float mdn = sum_dn / C, mdnn = sum_dn_n / C;
            if (acc) {
                #pragma omp simd
                for (int c = 0; c < C; c++) dx[c] += (dy[c] * weight[c] - mdn - (x[c] - m) * rs * mdnn) * rs;
            } else {
                #pragma omp simd
                for (int c = 0; c < C; c++) dx[c] = (dy[c] * weight[c] - mdn - (x[c] - m) * rs * mdnn) * rs;
            }
        }
    }
    if (dweight || dbias) {
        /* columns split between threads: deterministic sums without a reduction */
        #pragma omp parallel if ((int64_t)BT * C > 16384)
        {
            int c0, c1;
            vt__col_range(C, &c0, &c1, omp_get_thread_num(), omp_get_num_threads());
            for (int b0 = c0; b0 < c1; b0 += VT_COLS) {
                const int w = c1 - b0 < VT_COLS ? c1 - b0 : VT_COLS;
                float aw[VT_COLS], ab[VT_COLS];
                if (dweight) memcpy(aw, dweight + b0, sizeof(float) * (size_t)w);
                if (dbias) memcpy(ab, dbias + b0, sizeof(float) * (size_t)w);
                for (int r = 0; r < BT; r++) {
                    const float *x = inp + (size_t)r * C + b0, *dy = dout + (size_t)r * C + b0;
                    const float m = mean[r], rs = rstd[r];
                    if (dweight) {
                        #pragma omp simd
                        for (int c = 0; c < w; c++) aw[c] += (x[c] - m) * rs * dy[c];
                    }
                    if (dbias) {
                        #pragma omp simd
                        for (int c = 0; c < w; c++) ab[c] += dy[c];
                    }
                }
                if (dweight) memcpy(dweight + b0, aw, sizeof(float) * (size_t)w);
                if (dbias) memcpy(dbias + b0, ab, sizeof(float) * (size_t)w);
            }
        }
    }
}
