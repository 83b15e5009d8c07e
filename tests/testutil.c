#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *tu_golden(const char *file)
{
    static char buf[4096];
    const char *dir = getenv("VIT_GOLDENS");
    if (!dir || !*dir) dir = "../shared/goldens";
    snprintf(buf, sizeof buf, "%s/%s", dir, file);
    return buf;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

double tu_maxdiff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

double tu_maxabs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

void tu_fill_uniform(vt_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)vt_rng_uniform(r);
}
