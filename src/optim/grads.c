/* grads.c - whole-buffer gradient operations: global norm, clipping, scaling. */
#include "optim.h"
#include <math.h>
#include <omp.h>

double vt_grad_norm(const float *g, int64_t n)
{
    /* a fixed number of chunks, each summed in 8 interleaved lanes (element i to lane i mod 8, so the
     * loop vectorises instead of waiting on one chain of double adds), lanes then chunks added in
     * order: the same norm whatever the thread count */
    enum { CHUNKS = 64, LANES = 8 };
    double part[CHUNKS];
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < CHUNKS; c++) {
        int64_t lo = n * c / CHUNKS, hi = n * (c + 1) / CHUNKS, i = lo;
        double acc[LANES] = {0};
        for (; i + LANES <= hi; i += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += (double)g[i + l] * g[i + l];
        double s = 0.0;
        for (int l = 0; l < LANES; l++) s += acc[l];
        for (; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < CHUNKS; c++) total += part[c];
    return sqrt(total);
}

float vt_clip_coef(double norm, double max_norm)
{
    if (!(max_norm > 0)) return 1.0f;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? (float)coef : 1.0f;
}

double vt_clip_grad_norm(float *g, int64_t n, double max_norm)
{
    double norm = vt_grad_norm(g, n);
    float coef = vt_clip_coef(norm, max_norm);
    if (coef != 1.0f) vt_grad_scale(g, n, coef);
    return norm;
}

void vt_grad_scale(float *g, int64_t n, float s)
{
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) g[i] *= s;
}
