/* compute.c - numbers read from the weights alone: position-embedding similarity and the principal
 * components of the patch-embedding filters. Double precision throughout. */
#include "analyze.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void vt_an_pos_similarity(const float *pos, int prefix, int N, int D, double *sim)
{
    double *norm = malloc(sizeof(double) * (size_t)(N ? N : 1));
    const float *p = pos + (size_t)prefix * D;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)p[(size_t)i * D + d] * p[(size_t)i * D + d];
        if (norm) norm[i] = sqrt(s);
    }
    for (int i = 0; i < N; i++)
        for (int j = i; j < N; j++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)p[(size_t)i * D + d] * p[(size_t)j * D + d];
            const double nn = norm ? norm[i] * norm[j] : 0;
            const double v = i == j ? 1.0 : nn > 0 ? s / nn : 0.0;
            sim[(size_t)i * N + j] = sim[(size_t)j * N + i] = v;
        }
    free(norm);
}

void vt_an_pos_structure(const double *sim, int gh, int gw, double out[4])
{
    const int N = gh * gw;
    double sum[4] = {0};
    int64_t cnt[4] = {0};
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            const int ri = i / gw, ci = i % gw, rj = j / gw, cj = j % gw;
            if (i == j) continue;
            if (abs(ri - rj) + abs(ci - cj) == 1) sum[0] += sim[(size_t)i * N + j], cnt[0]++;
            const int k = ri == rj ? 1 : ci == cj ? 2 : 3;
            sum[k] += sim[(size_t)i * N + j], cnt[k]++;
        }
    for (int k = 0; k < 4; k++) out[k] = cnt[k] ? sum[k] / cnt[k] : 0.0;
}

/* LAPACK's symmetric eigensolver (OpenBLAS carries LAPACK): eigenvalues ascending in w, eigenvectors
 * in the columns of a (column-major) */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

int vt_an_pca(const float *w, int n, int k, int ncomp, double *comp, double *var, double *ratio)
{
    if (n < 2 || k < 1 || ncomp < 1 || ncomp > k)
        return vt_err("principal components: %d rows of %d values, %d components (need 2 rows or more and 1..%d "
                      "components)", n, k, ncomp, k);
    double *mean = calloc((size_t)k, sizeof(double)), *cov = calloc((size_t)k * k, sizeof(double));
    double *ev = malloc(sizeof(double) * (size_t)k), *x = malloc(sizeof(double) * (size_t)k), q;
    double *work = NULL;
    int r = VT_ERR, info = 0, lwork = -1;
    if (!mean || !cov || !ev || !x) goto out;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) mean[j] += w[(size_t)i * k + j];
    for (int j = 0; j < k; j++) mean[j] /= n;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < k; j++) x[j] = w[(size_t)i * k + j] - mean[j];
        for (int a = 0; a < k; a++)   /* upper triangle, column-major: cov[b k + a] for a <= b */
            for (int b = a; b < k; b++) cov[(size_t)b * k + a] += x[a] * x[b];
    }
    for (size_t e = 0; e < (size_t)k * k; e++) cov[e] /= n - 1;
    double total = 0;
    for (int j = 0; j < k; j++) total += cov[(size_t)j * k + j];
    dsyev_("V", "U", &k, cov, &k, ev, &q, &lwork, &info);   /* the work size it wants */
    lwork = (int)q;
    if (info == 0 && lwork >= 1) {
        if (!(work = malloc(sizeof(double) * (size_t)lwork))) goto out;
        dsyev_("V", "U", &k, cov, &k, ev, work, &lwork, &info);
    }
    if (info != 0 || lwork < 1) {
        vt_err("principal components: the eigensolver (LAPACK dsyev) failed to converge (info %d)", info);
        goto out;
    }
    for (int c = 0; c < ncomp; c++) {
        const int j = k - 1 - c;   /* ascending order: the largest last */
        const double *v = cov + (size_t)j * k;
        int big = 0;
        for (int a = 1; a < k; a++)
            if (fabs(v[a]) > fabs(v[big])) big = a;
        const double sign = v[big] < 0 ? -1.0 : 1.0;
        for (int a = 0; a < k; a++) comp[(size_t)c * k + a] = sign * v[a];
        var[c] = ev[j] > 0 ? ev[j] : 0.0;   /* rounding can make a zero eigenvalue slightly negative */
        ratio[c] = total > 0 ? var[c] / total : 0.0;
    }
    r = VT_OK;
out:
    if (r != VT_OK && info == 0 && lwork >= 1) vt_err("principal components of %d x %d values: out of memory", n, k);
    free(mean);
    free(cov);
    free(ev);
    free(x);
    free(work);
    return r;
}
