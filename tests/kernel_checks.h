/* kernel_checks.h - helpers shared by the kernel test files (test_kernels.c, test_kernel_modes.c):
 * random buffers, a double-precision max, and the tolerance check that names the worst element. */
#ifndef VIT_KERNEL_CHECKS_H
#define VIT_KERNEL_CHECKS_H
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static inline float *frand(vt_rng *r, int64_t n, float lo, float hi)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(p);
    tu_fill_uniform(r, p, n, lo, hi);
    return p;
}

static inline double *dalloc(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static inline float *fcopy(const float *x, int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(p);
    memcpy(p, x, sizeof(float) * (size_t)n);
    return p;
}

static inline double dmaxabs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* every |got - ref| <= atol + rtol |ref|; the message names the worst element */
static inline void check_close(const char *what, const float *got, const double *ref, int64_t n, double atol, double rtol)
{
    double worst = 0;
    int64_t wi = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double e = d == 0 ? 0 : d / (atol + rtol * fabs(ref[i]));
        if (!(e <= worst)) {
            worst = e;
            wi = i;
        }
    }
    printf("%-60s worst error %.3f of the tolerance\n", what, worst);
    ck_assert_msg(worst <= 1.0, "%s: element %lld: got %.9g, reference %.9g (error %.3g of the tolerance)", what,
                  (long long)wi, wi >= 0 ? got[wi] : 0.0, wi >= 0 ? ref[wi] : 0.0, worst);
}

/* the execution-mode tests of test_kernel_modes.c: 1 vs 2 threads, overwrite vs accumulate */
void add_kernel_mode_tests(TCase *tc);
#endif
