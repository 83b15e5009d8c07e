/* compute.c - numbers read from the weights alone: position-embedding similarity and the principal
 * components of the patch-embedding filters. Double precision throughout. */
#include "analyze.h"
#include <cblas.h>
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

/* LAPACK's symmetric eigensolver for a range of eigenpairs (OpenBLAS carries LAPACK): eigenvalues il..iu
 * (1-based, ascending) in w, their eigenvectors in the columns of z (column-major) */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
                    const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
                    double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info);

/* the top ncomp eigenpairs of the symmetric cov (k, k; upper triangle, column-major): ev (k doubles: LAPACK uses
 * them all) ascending, z (k, ncomp) */
static int top_eigen(double *cov, int k, int ncomp, double *ev, double *z)
{
    const int il = k - ncomp + 1, iu = k;
    const double zero = 0, abstol = 0;   /* 0: LAPACK's default tolerance */
    int m = 0, info = 0, lwork = -1, liwork = -1, iq = 0;
    double q = 0;
    int *isuppz = malloc(sizeof(int) * 2 * (size_t)ncomp), *iwork = NULL;
    double *work = NULL;
    if (!isuppz) return vt_err("principal components: out of memory");
    dsyevr_("V", "I", "U", &k, cov, &k, &zero, &zero, &il, &iu, &abstol, &m, ev, z, &k, isuppz, &q, &lwork, &iq,
            &liwork, &info);   /* the work sizes it wants */
    lwork = (int)q, liwork = iq;
    if (info == 0 && (!(work = malloc(sizeof(double) * (size_t)lwork)) || !(iwork = malloc(sizeof(int) * (size_t)liwork))))
        info = -1000;
    if (info == 0)
        dsyevr_("V", "I", "U", &k, cov, &k, &zero, &zero, &il, &iu, &abstol, &m, ev, z, &k, isuppz, work, &lwork, iwork,
                &liwork, &info);
    free(isuppz), free(work), free(iwork);
    if (info == -1000) return vt_err("principal components of %d values: out of memory", k);
    if (info != 0 || m != ncomp)
        return vt_err("principal components: the eigensolver (LAPACK dsyevr) failed (info %d, %d of %d found)", info, m, ncomp);
    return VT_OK;
}

int vt_an_pca(const float *w, int n, int k, int ncomp, double *comp, double *var, double *ratio)
{
    if (n < 2 || k < 1 || ncomp < 1 || ncomp > k)
        return vt_err("principal components: %d rows of %d values, %d components (need 2 rows or more and 1..%d "
                      "components)", n, k, ncomp, k);
    double *mean = calloc((size_t)k, sizeof(double)), *x = malloc(sizeof(double) * (size_t)n * k);
    double *cov = calloc((size_t)k * k, sizeof(double)), *ev = malloc(sizeof(double) * (size_t)k);   /* dsyevr: N long */
    double *z = malloc(sizeof(double) * (size_t)k * ncomp);
    int r = VT_ERR;
    if (!mean || !x || !cov || !ev || !z) {
        vt_err("principal components of %d x %d values: out of memory", n, k);
        goto out;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) mean[j] += w[(size_t)i * k + j];
    for (int j = 0; j < k; j++) mean[j] /= n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) x[(size_t)i * k + j] = w[(size_t)i * k + j] - mean[j];
    /* cov = X^T X / (n - 1): X (n, k) row-major is X^T (k, n) column-major, so cov = (X^T)(X^T)^T */
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, n, 1.0 / (n - 1), x, k, 0.0, cov, k);
    double total = 0;
    for (int j = 0; j < k; j++) total += cov[(size_t)j * k + j];
    if (top_eigen(cov, k, ncomp, ev, z) != VT_OK) goto out;
    for (int c = 0; c < ncomp; c++) {
        const int j = ncomp - 1 - c;   /* ascending order: the largest last */
        const double *v = z + (size_t)j * k;
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
    free(mean), free(x), free(cov), free(ev), free(z);
    return r;
}
