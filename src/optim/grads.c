/* grads.c - whole-buffer gradient operations: global norm, clipping, scaling. */
#include "optim.h"
#include <math.h>
#include <omp.h>

double vt_grad_norm(const float *g, int64_t n)
{
    /* a fixed number of chunks, each summed in order, then the chunks in order: the same norm
     * whatever the thread count */
    enum { CHUNKS = 64 };
    double part[CHUNKS];
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < CHUNKS; c++) {
        int64_t lo = n * c / CHUNKS, hi = n * (c + 1) / CHUNKS;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
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
