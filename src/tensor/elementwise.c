/* elementwise.c - residual add (plain, or scaled: LayerScale and stochastic depth), bias add, GELU, softmax: fused loops threaded with OpenMP. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define PAR_MIN 16384  /* below this many elements threads cost more than they save */

void vt_add_forward(float *out, const float *a, const float *b, int64_t n)
{
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void vt_accumulate(float *dst, const float *src, int64_t n)
{
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* x (R, C) += bias (C) */
void vt_bias_add_forward(float *x, const float *bias, int R, int C)
{
    #pragma omp parallel for schedule(static) if ((int64_t)R * C > PAR_MIN)
    for (int r = 0; r < R; r++) {
        float *row = x + (size_t)r * C;
        for (int c = 0; c < C; c++) row[c] += bias[c];
    }
}

/* dbias (C) += sum_r dout (R, C); per-thread partial sums, added in a fixed order */
void vt_bias_add_backward(float *dbias, const float *dout, int R, int C)
{
    if ((int64_t)R * C <= PAR_MIN || omp_get_max_threads() == 1) {
        for (int r = 0; r < R; r++) {
            const float *row = dout + (size_t)r * C;
            for (int c = 0; c < C; c++) dbias[c] += row[c];
        }
        return;
    }
    /* split columns between threads: deterministic, no reduction needed */
    #pragma omp parallel
    {
        int c0, c1;
        vt__col_range(C, &c0, &c1, omp_get_thread_num(), omp_get_num_threads());
        for (int b0 = c0; b0 < c1; b0 += VT_COLS) {
            const int w = c1 - b0 < VT_COLS ? c1 - b0 : VT_COLS;
            float acc[VT_COLS];
            memcpy(acc, dbias + b0, sizeof(float) * (size_t)w);
            for (int r = 0; r < R; r++) {
                const float *row = dout + (size_t)r * C + b0;
                #pragma omp simd
                for (int c = 0; c < w; c++) acc[c] += row[c];
            }
            memcpy(dbias + b0, acc, sizeof(float) * (size_t)w);
        }
    }
}

/* out = x + keep[b] * (gamma[d] * br): x, br, out (B, R, D) (out may be x), gamma (D) or NULL (1), keep (B) or
 * NULL (1) */
void vt_residual_forward(float *out, const float *x, const float *br, const float *gamma, const float *keep, int B,
                         int64_t R, int D)
{
    #pragma omp parallel for schedule(static) if ((int64_t)B * R * D > PAR_MIN)
    for (int64_t r = 0; r < (int64_t)B * R; r++) {
        const float s = keep ? keep[r / R] : 1.0f;
        const float *xr = x + r * D, *brr = br + r * D;
        float *o = out + r * D;
        if (gamma && keep)
            for (int d = 0; d < D; d++) o[d] = xr[d] + (brr[d] * gamma[d]) * s;
        else if (gamma)
            for (int d = 0; d < D; d++) o[d] = xr[d] + brr[d] * gamma[d];
        else
            for (int d = 0; d < D; d++) o[d] = xr[d] + brr[d] * s;
    }
}

/* dbr (+)= keep[b] gamma[d] dout; dgamma (D) += sum over (b, r) of keep[b] br dout, columns split between
 * threads (deterministic) */
void vt_residual_backward(float *dbr, float *dgamma, const float *dout, const float *br, const float *gamma,
                          const float *keep, int B, int64_t R, int D, bool acc)
{
    const int64_t rows = (int64_t)B * R;
    if (dbr) {
        #pragma omp parallel for schedule(static) if (rows * D > PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const float s = keep ? keep[r / R] : 1.0f;
            const float *g = dout + r * D;
            float *o = dbr + r * D;
            for (int d = 0; d < D; d++) {
                const float v = (gamma ? g[d] * gamma[d] : g[d]) * s;
                o[d] = (acc ? o[d] : 0.0f) + v;
            }
        }
    }
    if (!dgamma) return;
    #pragma omp parallel if (rows * D > PAR_MIN)
    {
        int c0, c1;
        vt__col_range(D, &c0, &c1, omp_get_thread_num(), omp_get_num_threads());
        for (int b0 = c0; b0 < c1; b0 += VT_COLS) {
            const int w = c1 - b0 < VT_COLS ? c1 - b0 : VT_COLS;
            float sum[VT_COLS];
            memcpy(sum, dgamma + b0, sizeof(float) * (size_t)w);
            for (int64_t r = 0; r < rows; r++) {
                const float s = keep ? keep[r / R] : 1.0f;
                if (s == 0.0f) continue;   /* a dropped sample adds nothing */
                const float *g = dout + r * D + b0, *v = br + r * D + b0;
                #pragma omp simd
                for (int c = 0; c < w; c++) sum[c] += g[c] * v[c] * s;
            }
            memcpy(dgamma + b0, sum, sizeof(float) * (size_t)w);
        }
    }
}

#define GELU_TANH_K 0.7978845608028654f /* sqrt(2/pi) */
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

/* chunks of a fixed size: plain loops the compiler vectorises, split between threads */
#define CHUNK 4096

static void gelu_erf_fwd_chunk(float *restrict out, const float *restrict inp, int n)
{
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + vt__erff(x * INV_SQRT2));
    }
}

static inline float gelu_erf_grad(float x)
{
    return 0.5f * (1.0f + vt__erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * vt__expf(-0.5f * x * x);
}

static void gelu_erf_bwd_chunk(float *restrict dinp, const float *restrict dout, const float *restrict inp, int n,
                               bool acc)
{
    if (acc)
        for (int i = 0; i < n; i++) dinp[i] += gelu_erf_grad(inp[i]) * dout[i];
    else
        for (int i = 0; i < n; i++) dinp[i] = gelu_erf_grad(inp[i]) * dout[i];
}

static void gelu_tanh_fwd_chunk(float *restrict out, const float *restrict inp, int n)
{
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_TANH_K * (x + 0.044715f * x * x * x);
        /* tanh(u) = 1 - 2 / (exp(2u) + 1) */
        float th = 1.0f - 2.0f / (vt__expf(2.0f * u) + 1.0f);
        out[i] = 0.5f * x * (1.0f + th);
    }
}

static inline float gelu_tanh_grad(float x)
{
    float u = GELU_TANH_K * (x + 0.044715f * x * x * x);
    float th = 1.0f - 2.0f / (vt__expf(2.0f * u) + 1.0f);
    float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

static void gelu_tanh_bwd_chunk(float *restrict dinp, const float *restrict dout, const float *restrict inp, int n,
                                bool acc)
{
    if (acc)
        for (int i = 0; i < n; i++) dinp[i] += gelu_tanh_grad(inp[i]) * dout[i];
    else
        for (int i = 0; i < n; i++) dinp[i] = gelu_tanh_grad(inp[i]) * dout[i];
}

void vt_gelu_forward(float *out, const float *inp, int64_t n, vt_gelu_kind kind)
{
    int64_t nc = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * CHUNK;
        int len = (int)(n - lo < CHUNK ? n - lo : CHUNK);
        if (kind == VT_GELU_TANH) gelu_tanh_fwd_chunk(out + lo, inp + lo, len);
        else gelu_erf_fwd_chunk(out + lo, inp + lo, len);
    }
}

void vt_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n, vt_gelu_kind kind, bool acc)
{
    int64_t nc = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * CHUNK;
        int len = (int)(n - lo < CHUNK ? n - lo : CHUNK);
        if (kind == VT_GELU_TANH) gelu_tanh_bwd_chunk(dinp + lo, dout + lo, inp + lo, len, acc);
        else gelu_erf_bwd_chunk(dinp + lo, dout + lo, inp + lo, len, acc);
    }
}

/* GELU and its derivative in one pass (one erf, one exp); deriv may be inp itself. Element i reads
 * inp[i] before it writes deriv[i], so the loops are vectorised as they are (omp simd): left to
 * itself GCC checks the two pointers for overlap at run time and, as they are equal when the
 * derivative overwrites the input (the training pass), ran the scalar loop (6% of a step) */
static void gelu_erf_fwd_deriv_chunk(float *restrict out, float *deriv, const float *inp, int n)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + vt__erff(x * INV_SQRT2));
        out[i] = x * cdf;
        deriv[i] = cdf + x * INV_SQRT_2PI * vt__expf(-0.5f * x * x);
    }
}

static void gelu_tanh_fwd_deriv_chunk(float *restrict out, float *deriv, const float *inp, int n)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_TANH_K * (x + 0.044715f * x * x * x);
        float th = 1.0f - 2.0f / (vt__expf(2.0f * u) + 1.0f);
        float du = GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
        out[i] = 0.5f * x * (1.0f + th);
        deriv[i] = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
    }
}

void vt_gelu_forward_deriv(float *out, float *deriv, const float *inp, int64_t n, vt_gelu_kind kind)
{
    int64_t nc = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * CHUNK;
        int len = (int)(n - lo < CHUNK ? n - lo : CHUNK);
        if (kind == VT_GELU_TANH) gelu_tanh_fwd_deriv_chunk(out + lo, deriv + lo, inp + lo, len);
        else gelu_erf_fwd_deriv_chunk(out + lo, deriv + lo, inp + lo, len);
    }
}

void vt_gelu_backward_deriv(float *dinp, const float *dout, const float *deriv, int64_t n, bool acc)
{
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dinp[i] = (acc ? dinp[i] : 0.0f) + deriv[i] * dout[i];
}

static inline void softmax_row(float *out, const float *in, int C)
{
    float m = -INFINITY;
    for (int c = 0; c < C; c++) m = in[c] > m ? in[c] : m;
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) {
        out[c] = vt__expf(in[c] - m);
        s += out[c];
    }
    float inv = 1.0f / s;
    for (int c = 0; c < C; c++) out[c] *= inv;
}

void vt_softmax_forward(float *out, const float *inp, int R, int C)
{
    #pragma omp parallel for schedule(static) if ((int64_t)R * C > PAR_MIN)
    for (int r = 0; r < R; r++) softmax_row(out + (size_t)r * C, inp + (size_t)r * C, C);
}

void vt_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C, bool acc)
{
    #pragma omp parallel for schedule(static) if ((int64_t)R * C > PAR_MIN)
    for (int r = 0; r < R; r++) {
        const float *y = out + (size_t)r * C, *dy = dout + (size_t)r * C;
        float *dx = dinp + (size_t)r * C;
        float dot = 0.0f;
        for (int c = 0; c < C; c++) dot += y[c] * dy[c];
        for (int c = 0; c < C; c++) dx[c] = (acc ? dx[c] : 0.0f) + y[c] * (dy[c] - dot);
    }
}
