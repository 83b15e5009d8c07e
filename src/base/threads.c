/* threads.c - the thread count OpenMP and OpenBLAS share, and the monotonic clock. */
#include "base.h"
#include <cblas.h>
#include <omp.h>
#include <time.h>

void vt_set_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int vt_get_threads(void) { return omp_get_max_threads(); }

void vt_set_blas_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

double vt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
