/* testutil.h - helpers shared by the Check suites. */
#ifndef VIT_TESTUTIL_H
#define VIT_TESTUTIL_H
#include <check.h>
#include <stdint.h>
#include "tensor/tensor.h"

/* path of a file in the goldens folder (env VIT_GOLDENS, set by meson); static buffer */
const char *tu_golden(const char *file);
/* run the suite, print Check's summary, return the process exit code */
int tu_run(Suite *s);
/* largest |a-b| over n values, and largest |b| */
double tu_maxdiff(const float *a, const float *b, int64_t n);
double tu_maxabs(const float *a, int64_t n);
void tu_fill_uniform(vt_rng *r, float *x, int64_t n, float lo, float hi);
#endif
