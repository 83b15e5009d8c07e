/* test_kernels.c - every tensor kernel against a naive double-precision reference written here:
 * sgemm (all transposes, leading dimensions larger than the matrix), linear, layernorm, GELU (erf and
 * tanh), softmax, attention (naive per head on q | k | v sliced from the fused layout), patchify (as
 * the conv it implements, weight (D, C, P, P)), class token + position embedding, pooling,
 * cross-entropy with label smoothing (torch's definition). Backward kernels are checked against
 * double-precision central differences of the reference forward, and must ADD into their outputs.
 * One vs two threads and overwrite vs accumulate are in test_kernel_modes.c. */
#include "kernel_checks.h"


/* ref[i] += init[i]: what an accumulating backward must produce on top of init */
static void add_init(double *ref, const float *init, int64_t n)
{
    for (int64_t i = 0; i < n; i++) ref[i] += init[i];
}

/* vector-Jacobian product of a double function by central differences (h = 1e-5: error ~1e-10) */
typedef void (*dfunc)(double *y, const double *x, const void *ctx);
static void vjp_fd(double *dx, dfunc f, const double *x0, int64_t n, int64_t m, const double *dy, const void *ctx)
{
    const double h = 1e-5;
    double *x = dalloc(n), *yp = dalloc(m), *ym = dalloc(m);
    memcpy(x, x0, sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i];
        x[i] = xi + h;
        f(yp, x, ctx);
        x[i] = xi - h;
        f(ym, x, ctx);
        x[i] = xi;
        double s = 0;
        for (int64_t j = 0; j < m; j++) s += dy[j] * (yp[j] - ym[j]);
        dx[i] = s / (2 * h);
    }
    free(x);
    free(yp);
    free(ym);
}

static double *todouble(const float *x, int64_t n)
{
    double *d = dalloc(n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ------------------------------------------------------------------ sgemm */
/* C (M, N) = alpha op(A) op(B) + beta C in double; A stored (M, K) or, transposed, (K, M) */
static void ref_gemm(double *Cr, bool ta, bool tb, int M, int N, int K, double alpha, const float *A, int lda,
                     const float *B, int ldb, double beta, const float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            Cr[(size_t)i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * C[(size_t)i * ldc + j]);
        }
}

static void gemm_case(vt_rng *r, bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + pad, ldb = bcols + pad + 1, ldc = N + pad + 2;
    float *A = frand(r, (int64_t)arows * lda, -1, 1), *B = frand(r, (int64_t)brows * ldb, -1, 1);
    float *C = frand(r, (int64_t)M * ldc, -1, 1);
    if (beta == 0.0f)   /* beta = 0: C is not read, even when it holds NaN (arena garbage) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = NAN;
    float *C0 = fcopy(C, (int64_t)M * ldc);
    double *ref = dalloc((int64_t)M * ldc);
    for (int64_t i = 0; i < (int64_t)M * ldc; i++) ref[i] = C0[i];   /* the padding must stay as it was */
    ref_gemm(ref, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc);
    vt_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    char what[128];
    snprintf(what, sizeof what, "sgemm transA %d transB %d M %d N %d K %d alpha %g beta %g ld +%d", ta, tb, M, N, K,
             alpha, beta, pad);
    check_close(what, C, ref, (int64_t)M * ldc, 1e-6 * (K + 1), 1e-6);
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) ck_assert_msg(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j], "%s: padding written", what);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(ref);
}

START_TEST(sgemm_transposes_and_leading_dims)
{
    vt_rng r;
    vt_rng_seed(&r, 1);
    static const int dims[][3] = {{5, 7, 3}, {1, 9, 4}, {6, 1, 5}, {13, 11, 17}, {4, 4, 1}, {33, 20, 70}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int d = 0; d < (int)(sizeof dims / sizeof dims[0]); d++) {
                gemm_case(&r, ta, tb, dims[d][0], dims[d][1], dims[d][2], 1.0f, 0.0f, 0);
                gemm_case(&r, ta, tb, dims[d][0], dims[d][1], dims[d][2], 0.7f, -1.3f, 3);
                gemm_case(&r, ta, tb, dims[d][0], dims[d][1], dims[d][2], -2.0f, 0.0f, 5);
                gemm_case(&r, ta, tb, dims[d][0], dims[d][1], dims[d][2], 1.0f, 1.0f, 1);
            }
    /* K = 0: C = beta C; M or N = 0: nothing touched */
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {7}, B[1] = {8};
    vt_sgemm(false, false, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(C[i], 0.5f * (i + 1));
    vt_sgemm(false, false, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(C[i], 0.0f);
    C[0] = 9;
    vt_sgemm(false, false, 0, 3, 2, 1.0f, A, 2, B, 3, 0.0f, C, 3);
    vt_sgemm(false, false, 2, 0, 2, 1.0f, A, 2, B, 3, 0.0f, C, 3);
    ck_assert_float_eq(C[0], 9);
}
END_TEST

/* ------------------------------------------------------------------ linear */
/* out (BT, OC) = inp (BT, C) W (OC, C)^T + b */
typedef struct {
    int BT, C, OC;
    const double *w, *inp;   /* the one not being differentiated */
    int wrt;                 /* 0: inp, 1: weight, 2: bias */
    const double *b;
} lin_ctx;

static void ref_linear_d(double *out, const double *inp, const double *w, const double *b, int BT, int C, int OC)
{
    for (int r = 0; r < BT; r++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0;
            for (int c = 0; c < C; c++) s += inp[(size_t)r * C + c] * w[(size_t)o * C + c];
            out[(size_t)r * OC + o] = s;
        }
}

static void lin_f(double *y, const double *x, const void *vc)
{
    const lin_ctx *c = vc;
    if (c->wrt == 0) ref_linear_d(y, x, c->w, c->b, c->BT, c->C, c->OC);
    else if (c->wrt == 1) ref_linear_d(y, c->inp, x, c->b, c->BT, c->C, c->OC);
    else ref_linear_d(y, c->inp, c->w, x, c->BT, c->C, c->OC);
}

static void linear_case(vt_rng *r, int BT, int C, int OC)
{
    float *inp = frand(r, (int64_t)BT * C, -1, 1), *w = frand(r, (int64_t)OC * C, -1, 1), *b = frand(r, OC, -1, 1);
    float *out = frand(r, (int64_t)BT * OC, -1, 1);   /* garbage the forward must overwrite */
    double *di = todouble(inp, (int64_t)BT * C), *dw = todouble(w, (int64_t)OC * C), *db = todouble(b, OC);
    double *ref = dalloc((int64_t)BT * OC);
    ref_linear_d(ref, di, dw, db, BT, C, OC);
    vt_linear_forward(out, inp, w, b, BT, C, OC);
    check_close("linear forward", out, ref, (int64_t)BT * OC, 1e-6 * C, 1e-6);
    ref_linear_d(ref, di, dw, NULL, BT, C, OC);
    vt_linear_forward(out, inp, w, NULL, BT, C, OC);
    check_close("linear forward without bias", out, ref, (int64_t)BT * OC, 1e-6 * C, 1e-6);

    /* backward, accumulating on top of random initial gradients */
    float *dout = frand(r, (int64_t)BT * OC, -1, 1);
    double *ddout = todouble(dout, (int64_t)BT * OC);
    float *ginp = frand(r, (int64_t)BT * C, -1, 1), *gw = frand(r, (int64_t)OC * C, -1, 1), *gb = frand(r, OC, -1, 1);
    float *ginp0 = fcopy(ginp, (int64_t)BT * C), *gw0 = fcopy(gw, (int64_t)OC * C), *gb0 = fcopy(gb, OC);
    vt_linear_backward(ginp, gw, gb, dout, inp, w, BT, C, OC, true);
    lin_ctx c = {BT, C, OC, dw, di, 0, db};
    double *rinp = dalloc((int64_t)BT * C), *rw = dalloc((int64_t)OC * C), *rb = dalloc(OC);
    vjp_fd(rinp, lin_f, di, (int64_t)BT * C, (int64_t)BT * OC, ddout, &c);
    c.wrt = 1;
    vjp_fd(rw, lin_f, dw, (int64_t)OC * C, (int64_t)BT * OC, ddout, &c);
    c.wrt = 2;
    vjp_fd(rb, lin_f, db, OC, (int64_t)BT * OC, ddout, &c);
    add_init(rinp, ginp0, (int64_t)BT * C);
    add_init(rw, gw0, (int64_t)OC * C);
    add_init(rb, gb0, OC);
    check_close("linear backward dinp", ginp, rinp, (int64_t)BT * C, 2e-6 * (OC + 1), 2e-6);
    check_close("linear backward dweight", gw, rw, (int64_t)OC * C, 2e-6 * (BT + 1), 2e-6);
    check_close("linear backward dbias", gb, rb, OC, 2e-6 * (BT + 1), 2e-6);
    /* any output may be NULL: the others are unaffected */
    float *g2 = fcopy(gw0, (int64_t)OC * C);
    vt_linear_backward(NULL, g2, NULL, dout, inp, w, BT, C, OC, true);
    ck_assert_int_eq(memcmp(g2, gw, sizeof(float) * (size_t)OC * C), 0);
    float *g3 = fcopy(gb0, OC);
    vt_linear_backward(NULL, NULL, g3, dout, inp, w, BT, C, OC, true);
    ck_assert_int_eq(memcmp(g3, gb, sizeof(float) * (size_t)OC), 0);
    free(g2);
    free(g3);
    free(inp), free(w), free(b), free(out), free(di), free(dw), free(db), free(ref), free(dout), free(ddout);
    free(ginp), free(gw), free(gb), free(ginp0), free(gw0), free(gb0), free(rinp), free(rw), free(rb);
}

START_TEST(linear_forward_backward)
{
    vt_rng r;
    vt_rng_seed(&r, 2);
    linear_case(&r, 7, 5, 3);
    linear_case(&r, 1, 1, 1);
    linear_case(&r, 13, 16, 9);
    linear_case(&r, 2, 33, 1);
}
END_TEST

/* ------------------------------------------------------------------ bias add, residual add, accumulate */
START_TEST(bias_add_residual_accumulate)
{
    vt_rng r;
    vt_rng_seed(&r, 3);
    const int R = 9, C = 7;
    float *x = frand(&r, R * C, -1, 1), *bias = frand(&r, C, -1, 1), *x0 = fcopy(x, R * C);
    double *ref = dalloc(R * C);
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) ref[i * C + c] = (double)x0[i * C + c] + bias[c];
    vt_bias_add_forward(x, bias, R, C);
    check_close("bias add forward", x, ref, R * C, 0, 1e-7);
    float *db = frand(&r, C, -1, 1), *db0 = fcopy(db, C);
    double *rdb = dalloc(C);
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) rdb[c] += x0[i * C + c];
    add_init(rdb, db0, C);
    vt_bias_add_backward(db, x0, R, C);
    check_close("bias add backward", db, rdb, C, 1e-6, 1e-6);
    float *out = frand(&r, R * C, -1, 1);
    vt_add_forward(out, x0, x, R * C);
    for (int i = 0; i < R * C; i++) ck_assert_float_eq(out[i], x0[i] + x[i]);
    float *acc = fcopy(out, R * C);
    vt_accumulate(acc, x0, R * C);
    for (int i = 0; i < R * C; i++) ck_assert_float_eq(acc[i], out[i] + x0[i]);
    free(x), free(bias), free(x0), free(ref), free(db), free(db0), free(rdb), free(out), free(acc);
}
END_TEST

/* ------------------------------------------------------------------ layernorm */
typedef struct {
    int BT, C, wrt;
    double eps;
    const double *x, *w, *b;
} ln_ctx;

static void ref_layernorm_d(double *out, double *mean, double *rstd, const double *x, const double *w,
                            const double *b, int BT, int C, double eps)
{
    for (int r = 0; r < BT; r++) {
        const double *xr = x + (size_t)r * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        v /= C;   /* biased variance, as torch */
        double rs = 1.0 / sqrt(v + eps);
        for (int c = 0; c < C; c++) out[(size_t)r * C + c] = (xr[c] - m) * rs * w[c] + b[c];
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}

static void ln_f(double *y, const double *p, const void *vc)
{
    const ln_ctx *c = vc;
    ref_layernorm_d(y, NULL, NULL, c->wrt == 0 ? p : c->x, c->wrt == 1 ? p : c->w, c->wrt == 2 ? p : c->b, c->BT,
                    c->C, c->eps);
}

static void layernorm_case(vt_rng *r, int BT, int C, float eps, float offset)
{
    int64_t n = (int64_t)BT * C;
    float *x = frand(r, n, -2, 2), *w = frand(r, C, 0.5f, 1.5f), *b = frand(r, C, -1, 1);
    for (int64_t i = 0; i < n; i++) x[i] += offset;
    float *out = frand(r, n, -1, 1), *mean = frand(r, BT, -1, 1), *rstd = frand(r, BT, -1, 1);
    double *dx = todouble(x, n), *dw = todouble(w, C), *db = todouble(b, C);
    double *ref = dalloc(n), *rm = dalloc(BT), *rr = dalloc(BT);
    ref_layernorm_d(ref, rm, rr, dx, dw, db, BT, C, eps);
    vt_layernorm_forward(out, mean, rstd, x, w, b, BT, C, eps);
    /* the kernel keeps the mean in float: far from 0 it is rounded by up to half an ulp of the offset */
    check_close("layernorm forward", out, ref, n, 2e-6 * (1 + fabsf(offset) / 30), 2e-6);
    check_close("layernorm mean", mean, rm, BT, 1e-6 * (1 + fabsf(offset)), 1e-6);
    check_close("layernorm rstd", rstd, rr, BT, 0, 2e-6);
    /* mean and rstd are optional (no-grad) */
    float *out2 = frand(r, n, -1, 1);
    vt_layernorm_forward(out2, NULL, NULL, x, w, b, BT, C, eps);
    ck_assert_int_eq(memcmp(out, out2, sizeof(float) * (size_t)n), 0);

    float *dout = frand(r, n, -1, 1);
    double *ddout = todouble(dout, n);
    float *gx = frand(r, n, -1, 1), *gw = frand(r, C, -1, 1), *gb = frand(r, C, -1, 1);
    float *gx0 = fcopy(gx, n), *gw0 = fcopy(gw, C), *gb0 = fcopy(gb, C);
    vt_layernorm_backward(gx, gw, gb, dout, x, w, mean, rstd, BT, C, true);
    ln_ctx c = {BT, C, 0, eps, dx, dw, db};
    double *rx = dalloc(n), *rw = dalloc(C), *rb = dalloc(C);
    vjp_fd(rx, ln_f, dx, n, n, ddout, &c);
    c.wrt = 1;
    vjp_fd(rw, ln_f, dw, C, n, ddout, &c);
    c.wrt = 2;
    vjp_fd(rb, ln_f, db, C, n, ddout, &c);
    /* the gradient wrt x scales with rstd */
    double sx = dmaxabs(rx, n);
    add_init(rx, gx0, n);
    add_init(rw, gw0, C);
    add_init(rb, gb0, C);
    check_close("layernorm backward dinp", gx, rx, n, 2e-6 * (1 + sx), 2e-6);
    check_close("layernorm backward dweight", gw, rw, C, 2e-6 * BT, 2e-6);
    check_close("layernorm backward dbias", gb, rb, C, 2e-6 * BT, 2e-6);
    /* NULL outputs */
    float *gw2 = fcopy(gw0, C);
    vt_layernorm_backward(NULL, gw2, NULL, dout, x, w, mean, rstd, BT, C, true);
    ck_assert_int_eq(memcmp(gw2, gw, sizeof(float) * (size_t)C), 0);
    float *gx2 = fcopy(gx0, n);
    vt_layernorm_backward(gx2, NULL, NULL, dout, x, w, mean, rstd, BT, C, true);
    ck_assert_int_eq(memcmp(gx2, gx, sizeof(float) * (size_t)n), 0);
    free(gw2), free(gx2);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(dx), free(dw), free(db), free(ref), free(rm);
    free(rr), free(out2), free(dout), free(ddout), free(gx), free(gw), free(gb), free(gx0), free(gw0), free(gb0);
    free(rx), free(rw), free(rb);
}

START_TEST(layernorm_forward_backward)
{
    vt_rng r;
    vt_rng_seed(&r, 4);
    layernorm_case(&r, 5, 7, 1e-6f, 0);
    layernorm_case(&r, 1, 1, 1e-6f, 0);      /* C = 1: output is the bias */
    layernorm_case(&r, 3, 64, 1e-5f, 0);
    layernorm_case(&r, 4, 33, 1e-6f, 30);    /* a large mean: no cancellation trouble */
}
END_TEST

/* ------------------------------------------------------------------ GELU */
static double gelu_ref(double x, vt_gelu_kind k)
{
    if (k == VT_GELU_ERF) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    return 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void gelu_case(vt_rng *r, vt_gelu_kind k)
{
    const int n = 2003;
    float *x = frand(r, n, -10, 10);
    /* special points: 0, tiny, the range where erf saturates */
    const float sp[] = {0.0f, 1e-4f, -1e-4f, 1.0f, -1.0f, 3.0f, -3.0f, 5.5f, -5.5f, 9.0f, -9.0f, 0.5f};
    for (int i = 0; i < (int)(sizeof sp / sizeof sp[0]); i++) x[i] = sp[i];
    for (int i = 100; i < 600; i++) x[i] *= 0.2f;   /* dense around 0 */
    float *out = frand(r, n, -1, 1);
    double *ref = dalloc(n), *dref = dalloc(n);
    float *dout = frand(r, n, -1, 1), *dx = frand(r, n, -1, 1), *dx0 = fcopy(dx, n);
    for (int i = 0; i < n; i++) {
        ref[i] = gelu_ref(x[i], k);
        double h = 1e-5;
        dref[i] = dx0[i] + dout[i] * (gelu_ref(x[i] + h, k) - gelu_ref(x[i] - h, k)) / (2 * h);
    }
    vt_gelu_forward(out, x, n, k);
    vt_gelu_backward(dx, dout, x, n, k, true);
    /* per element: absolute 3e-7 (1 + |x|), relative 1e-6 */
    for (int i = 0; i < n; i++) {
        double e = fabs(out[i] - ref[i]), t = 3e-7 * (1 + fabs(x[i])) + 1e-6 * fabs(ref[i]);
        ck_assert_msg(e <= t, "gelu %s forward at x = %.8g: %.9g vs %.9g", k ? "tanh" : "erf", x[i], out[i], ref[i]);
        double eb = fabs(dx[i] - dref[i]), tb = 1e-6 * (1 + fabs(x[i])) + 1e-6 * fabs(dref[i]);
        ck_assert_msg(eb <= tb, "gelu %s backward at x = %.8g: %.9g vs %.9g", k ? "tanh" : "erf", x[i], dx[i], dref[i]);
    }
    ck_assert_float_eq(out[0], 0.0f);
    /* the forward that also keeps GELU'(x), in place of its input, and the backward from it */
    float *xd = fcopy(x, n), *out2 = frand(r, n, -1, 1), *dx2 = fcopy(dx0, n);
    vt_gelu_forward_deriv(out2, xd, xd, n, k);
    vt_gelu_backward_deriv(dx2, dout, xd, n, true);
    for (int i = 0; i < n; i++) {
        double e = fabs(out2[i] - ref[i]), t = 3e-7 * (1 + fabs(x[i])) + 1e-6 * fabs(ref[i]);
        ck_assert_msg(e <= t, "gelu %s forward_deriv at x = %.8g: %.9g vs %.9g", k ? "tanh" : "erf", x[i], out2[i], ref[i]);
        double eb = fabs(dx2[i] - dref[i]), tb = 1e-6 * (1 + fabs(x[i])) + 1e-6 * fabs(dref[i]);
        ck_assert_msg(eb <= tb, "gelu %s backward_deriv at x = %.8g: %.9g vs %.9g", k ? "tanh" : "erf", x[i], dx2[i], dref[i]);
    }
    memcpy(dx2, dx0, sizeof(float) * (size_t)n);
    vt_gelu_backward_deriv(dx2, dout, xd, n, false);   /* overwrite */
    for (int i = 0; i < n; i++) ck_assert_float_eq(dx2[i], xd[i] * dout[i]);
    free(xd), free(out2), free(dx2);
    free(x), free(out), free(ref), free(dref), free(dout), free(dx), free(dx0);
}

START_TEST(gelu_erf_and_tanh)
{
    vt_rng r;
    vt_rng_seed(&r, 5);
    gelu_case(&r, VT_GELU_ERF);
    gelu_case(&r, VT_GELU_TANH);
    /* the two differ (by 4.4e-4 at x = 2.5): the kind is honoured */
    float x[1] = {2.5f}, a[1], b[1];
    vt_gelu_forward(a, x, 1, VT_GELU_ERF);
    vt_gelu_forward(b, x, 1, VT_GELU_TANH);
    ck_assert(fabs(a[0] - gelu_ref(2.5, VT_GELU_ERF)) < 1e-6);
    ck_assert(fabs(b[0] - gelu_ref(2.5, VT_GELU_TANH)) < 1e-6);
    ck_assert(fabsf(a[0] - b[0]) > 4e-4f);
}
END_TEST

/* ------------------------------------------------------------------ softmax */
static void ref_softmax_d(double *out, const double *in, int R, int C)
{
    for (int r = 0; r < R; r++) {
        const double *x = in + (size_t)r * C;
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) m = fmax(m, x[c]);
        for (int c = 0; c < C; c++) s += exp(x[c] - m);
        for (int c = 0; c < C; c++) out[(size_t)r * C + c] = exp(x[c] - m) / s;
    }
}

typedef struct {
    int R, C;
} rc_ctx;
static void sm_f(double *y, const double *x, const void *vc)
{
    const rc_ctx *c = vc;
    ref_softmax_d(y, x, c->R, c->C);
}

static void softmax_case(vt_rng *r, int R, int C, float range, float offset)
{
    int64_t n = (int64_t)R * C;
    float *x = frand(r, n, -range, range);
    for (int64_t i = 0; i < n; i++) x[i] += offset;
    float *out = frand(r, n, -1, 1);
    double *dx = todouble(x, n), *ref = dalloc(n);
    ref_softmax_d(ref, dx, R, C);
    vt_softmax_forward(out, x, R, C);
    check_close("softmax forward", out, ref, n, 1e-7, 2e-6);
    for (int i = 0; i < R; i++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += out[i * C + c];
        ck_assert(fabs(s - 1) < 1e-5);
    }
    float *dout = frand(r, n, -1, 1), *g = frand(r, n, -1, 1), *g0 = fcopy(g, n);
    double *ddout = todouble(dout, n), *rg = dalloc(n);
    rc_ctx c = {R, C};
    vjp_fd(rg, sm_f, dx, n, n, ddout, &c);
    add_init(rg, g0, n);
    vt_softmax_backward(g, dout, out, R, C, true);
    check_close("softmax backward", g, rg, n, 2e-7, 2e-6);
    free(x), free(out), free(dx), free(ref), free(dout), free(g), free(g0), free(ddout), free(rg);
}

START_TEST(softmax_forward_backward)
{
    vt_rng r;
    vt_rng_seed(&r, 6);
    softmax_case(&r, 4, 7, 3, 0);
    softmax_case(&r, 1, 1, 1, 0);
    softmax_case(&r, 3, 50, 10, 0);
    softmax_case(&r, 5, 9, 4, 80);     /* large logits: the max is subtracted */
    softmax_case(&r, 2, 6, 4, -95);
    /* extreme spread: tiny probabilities go to (about) zero, not NaN */
    float x[3] = {1000, 0, -1000}, p[3];
    vt_softmax_forward(p, x, 1, 3);
    ck_assert(fabsf(p[0] - 1) < 1e-7f && p[1] >= 0 && p[1] < 1e-30f && p[2] >= 0 && p[2] < 1e-30f);
}
END_TEST

/* ------------------------------------------------------------------ attention */
typedef struct {
    int B, T, C, NH;
} att_ctx;

/* naive per head, q | k | v sliced from qkv (B, T, 3C), each head-major */
static void ref_attention_d(double *out, double *att, const double *qkv, int B, int T, int C, int NH)
{
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    double *S = dalloc(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + ((size_t)b * T + t) * 3 * C + 0 * C + h * hs;
                double m = -INFINITY, sum = 0;
                for (int s = 0; s < T; s++) {
                    const double *k = qkv + ((size_t)b * T + s) * 3 * C + 1 * C + h * hs;
                    double d = 0;
                    for (int i = 0; i < hs; i++) d += q[i] * k[i];
                    S[s] = d * scale;
                    m = fmax(m, S[s]);
                }
                for (int s = 0; s < T; s++) sum += (S[s] = exp(S[s] - m));
                for (int s = 0; s < T; s++) S[s] /= sum;
                if (att)
                    for (int s = 0; s < T; s++) att[(((size_t)b * NH + h) * T + t) * T + s] = S[s];
                for (int i = 0; i < hs; i++) {
                    double o = 0;
                    for (int s = 0; s < T; s++) o += S[s] * qkv[((size_t)b * T + s) * 3 * C + 2 * C + h * hs + i];
                    out[((size_t)b * T + t) * C + h * hs + i] = o;
                }
            }
    free(S);
}

static void att_f(double *y, const double *x, const void *vc)
{
    const att_ctx *c = vc;
    ref_attention_d(y, NULL, x, c->B, c->T, c->C, c->NH);
}

static void attention_case(vt_rng *r, int B, int T, int C, int NH, float range)
{
    int64_t nq = (int64_t)B * T * 3 * C, no = (int64_t)B * T * C, na = (int64_t)B * NH * T * T;
    float *qkv = frand(r, nq, -range, range), *out = frand(r, no, -1, 1), *att = frand(r, na, -1, 1);
    double *dq = todouble(qkv, nq), *ref = dalloc(no), *ratt = dalloc(na);
    ref_attention_d(ref, ratt, dq, B, T, C, NH);
    vt_attention_forward(out, att, qkv, B, T, C, NH);
    char what[96];
    snprintf(what, sizeof what, "attention forward B %d T %d C %d NH %d", B, T, C, NH);
    check_close(what, out, ref, no, 2e-6 * range, 2e-6);
    /* att keeps P transposed per head: att[bh, s, t] = P[bh, t, s] */
    double *rattT = dalloc(na);
    for (int64_t bh = 0; bh < (int64_t)B * NH; bh++)
        for (int t = 0; t < T; t++)
            for (int u = 0; u < T; u++) rattT[(bh * T + u) * T + t] = ratt[(bh * T + t) * T + u];
    check_close("attention probabilities", att, rattT, na, 1e-6, 2e-6);
    free(rattT);
    float *dout = frand(r, no, -1, 1), *g = frand(r, nq, -1, 1), *g0 = fcopy(g, nq);
    double *ddout = todouble(dout, no), *rg = dalloc(nq);
    att_ctx c = {B, T, C, NH};
    vjp_fd(rg, att_f, dq, nq, no, ddout, &c);
    double s = dmaxabs(rg, nq);
    add_init(rg, g0, nq);
    vt_attention_backward(g, dout, qkv, att, B, T, C, NH, true);
    snprintf(what, sizeof what, "attention backward B %d T %d C %d NH %d", B, T, C, NH);
    check_close(what, g, rg, nq, 1e-6 * (1 + s), 1e-6);
    /* recompute mode: only (max, 1/sum) per row kept; output and gradient bitwise those of the stored mode,
     * with arena-style scratch and with the kernel's own allocation */
    for (int own = 0; own < 2; own++) {
        float *out2 = frand(r, no, -1, 1), *stats = frand(r, (int64_t)B * NH * T * 2, -1, 1), *g2 = fcopy(g0, nq);
        float *scratch = own ? NULL : frand(r, (int64_t)vt_attention_scratch_floats(T), -1, 1);
        vt_attention_forward_ex(out2, NULL, stats, scratch, qkv, B, T, C, NH);
        ck_assert_msg(memcmp(out2, out, sizeof(float) * (size_t)no) == 0, "recompute: forward output differs");
        vt_attention_backward_ex(g2, dout, qkv, NULL, stats, scratch, B, T, C, NH, true);
        ck_assert_msg(memcmp(g2, g, sizeof(float) * (size_t)nq) == 0, "recompute: dqkv differs (%s)", what);
        free(out2), free(stats), free(g2), free(scratch);
    }
    free(qkv), free(out), free(att), free(dq), free(ref), free(ratt), free(dout), free(g), free(g0), free(ddout);
    free(rg);
}

START_TEST(attention_vs_naive_per_head)
{
    vt_rng r;
    vt_rng_seed(&r, 7);
    attention_case(&r, 2, 5, 6, 3, 1);
    attention_case(&r, 1, 7, 8, 2, 2);
    attention_case(&r, 3, 1, 4, 1, 1);      /* T = 1 */
    attention_case(&r, 2, 13, 16, 4, 1.5f);
    attention_case(&r, 1, 9, 10, 10, 2);    /* head size 1 */
    attention_case(&r, 2, 6, 12, 1, 1);     /* one head */
    attention_case(&r, 1, 50, 32, 1, 2);    /* the Fashion-MNIST shape: T 50, head size 32 (small GEMMs) */
    attention_case(&r, 1, 23, 40, 2, 2);    /* head size 20: padded small GEMMs */
    attention_case(&r, 1, 80, 8, 2, 2);     /* T beyond the small path: BLAS */
}
END_TEST

/* ------------------------------------------------------------------ patchify = the patch conv */
/* conv with kernel = stride = P: out[b, gy*Gw+gx, d] = bias[d] + sum_{c,py,px} W[d,c,py,px] img[b,c,gy P+py,gx P+px] */
static void ref_patch_conv(double *out, const float *img, const float *W, const float *bias, int B, int Cin, int H,
                           int Wd, int P, int D)
{
    int Gh = H / P, Gw = Wd / P;
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < Gh; gy++)
            for (int gx = 0; gx < Gw; gx++)
                for (int d = 0; d < D; d++) {
                    double s = bias[d];
                    for (int c = 0; c < Cin; c++)
                        for (int py = 0; py < P; py++)
                            for (int px = 0; px < P; px++)
                                s += (double)W[((d * Cin + c) * P + py) * P + px] *
                                     img[(((size_t)b * Cin + c) * H + gy * P + py) * Wd + gx * P + px];
                    out[((size_t)b * Gh * Gw + gy * Gw + gx) * D + d] = s;
                }
}

static void patch_case(vt_rng *r, int B, int Cin, int H, int Wd, int P, int D)
{
    int Gh = H / P, Gw = Wd / P, N = Gh * Gw, K = Cin * P * P;
    int64_t nimg = (int64_t)B * Cin * H * Wd, npat = (int64_t)B * N * K, nout = (int64_t)B * N * D;
    float *img = frand(r, nimg, -1, 1), *W = frand(r, (int64_t)D * K, -1, 1), *bias = frand(r, D, -1, 1);
    float *pat = frand(r, npat, -1, 1), *out = frand(r, nout, -1, 1);
    /* patchify is a pure rearrangement: every value lands exactly where the definition says */
    vt_patchify_forward(pat, img, B, Cin, H, Wd, P);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < Cin; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < Wd; x++) {
                    int n = (y / P) * Gw + x / P, k = (c * P + y % P) * P + x % P;
                    ck_assert_float_eq(pat[((size_t)b * N + n) * K + k], img[(((size_t)b * Cin + c) * H + y) * Wd + x]);
                }
    /* patches @ W(D, C*P*P)^T + bias is the conv */
    double *ref = dalloc(nout);
    ref_patch_conv(ref, img, W, bias, B, Cin, H, Wd, P, D);
    vt_linear_forward(out, pat, W, bias, B * N, K, D);
    char what[96];
    snprintf(what, sizeof what, "patch conv %dx%dx%d P %d", Cin, H, Wd, P);
    check_close(what, out, ref, nout, 1e-6 * K, 1e-6);

    /* backward of the conv: dimg[b,c,y,x] = sum_d dout[b,n(y,x),d] W[d,c,y%P,x%P];
     * dW[d,c,py,px] = sum_{b,n} dout[b,n,d] img[...]; through linear backward + patchify backward */
    float *dout = frand(r, nout, -1, 1), *dimg = frand(r, nimg, -1, 1), *dimg0 = fcopy(dimg, nimg);
    float *dpat = calloc((size_t)npat, sizeof(float)), *dW = calloc((size_t)D * K, sizeof(float));
    vt_linear_backward(dpat, dW, NULL, dout, pat, W, B * N, K, D, true);
    vt_patchify_backward(dimg, dpat, B, Cin, H, Wd, P, true);
    double *rimg = dalloc(nimg), *rW = dalloc((int64_t)D * K);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < Cin; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < Wd; x++) {
                    int n = (y / P) * Gw + x / P;
                    double s = 0;
                    for (int d = 0; d < D; d++)
                        s += (double)dout[((size_t)b * N + n) * D + d] * W[((d * Cin + c) * P + y % P) * P + x % P];
                    size_t ii = (((size_t)b * Cin + c) * H + y) * Wd + x;
                    rimg[ii] = dimg0[ii] + s;
                    for (int d = 0; d < D; d++)
                        rW[((d * Cin + c) * P + y % P) * P + x % P] +=
                            (double)dout[((size_t)b * N + n) * D + d] * img[ii];
                }
    check_close("patch conv backward dimg", dimg, rimg, nimg, 1e-6 * D, 1e-6);
    check_close("patch conv backward dweight", dW, rW, (int64_t)D * K, 1e-6 * B * N, 1e-6);
    /* patchify backward alone is the exact adjoint: each pixel in one patch */
    float *dimg2 = calloc((size_t)nimg, sizeof(float));
    vt_patchify_backward(dimg2, pat, B, Cin, H, Wd, P, true);
    ck_assert_int_eq(memcmp(dimg2, img, sizeof(float) * (size_t)nimg), 0);
    free(dimg2);
    free(img), free(W), free(bias), free(pat), free(out), free(ref), free(dout), free(dimg), free(dimg0), free(dpat);
    free(dW), free(rimg), free(rW);
}

START_TEST(patchify_is_the_patch_conv)
{
    vt_rng r;
    vt_rng_seed(&r, 8);
    patch_case(&r, 2, 3, 8, 12, 4, 5);    /* non-square, 3 channels */
    patch_case(&r, 1, 1, 6, 3, 3, 2);
    patch_case(&r, 3, 2, 4, 4, 4, 7);     /* one patch */
    patch_case(&r, 1, 3, 5, 7, 1, 4);     /* P = 1 */
}
END_TEST

/* ------------------------------------------------------------------ class token + position embedding */
static void embed_case(vt_rng *r, int B, int N, int D)
{
    int64_t nt = (int64_t)B * N * D, nx = (int64_t)B * (N + 1) * D, np = (int64_t)(N + 1) * D;
    float *tok = frand(r, nt, -1, 1), *cls = frand(r, D, -1, 1), *pos = frand(r, np, -1, 1), *x = frand(r, nx, -1, 1);
    vt_embed_forward(x, tok, cls, pos, B, N, D);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            ck_assert_float_eq(x[(size_t)b * (N + 1) * D + d], cls[d] + pos[d]);
            for (int i = 0; i < N; i++)
                ck_assert_float_eq(x[((size_t)b * (N + 1) + i + 1) * D + d], tok[((size_t)b * N + i) * D + d] + pos[(i + 1) * D + d]);
        }
    float *dx = frand(r, nx, -1, 1), *dt = frand(r, nt, -1, 1), *dc = frand(r, D, -1, 1), *dp = frand(r, np, -1, 1);
    float *dt0 = fcopy(dt, nt), *dc0 = fcopy(dc, D), *dp0 = fcopy(dp, np);
    vt_embed_backward(dt, dc, dp, dx, B, N, D, true);
    double *rt = dalloc(nt), *rc = dalloc(D), *rp = dalloc(np);
    for (int b = 0; b < B; b++)
        for (int i = 0; i <= N; i++)
            for (int d = 0; d < D; d++) {
                double g = dx[((size_t)b * (N + 1) + i) * D + d];
                rp[i * D + d] += g;
                if (i == 0) rc[d] += g;
                else rt[((size_t)b * N + i - 1) * D + d] += g;
            }
    add_init(rt, dt0, nt);
    add_init(rc, dc0, D);
    add_init(rp, dp0, np);
    check_close("embed backward dtok", dt, rt, nt, 0, 1e-7);
    check_close("embed backward dcls", dc, rc, D, 1e-6 * B, 1e-6);
    check_close("embed backward dpos", dp, rp, np, 1e-6 * B, 1e-6);
    /* NULL outputs */
    float *dp2 = fcopy(dp0, np);
    vt_embed_backward(NULL, NULL, dp2, dx, B, N, D, true);
    ck_assert_int_eq(memcmp(dp2, dp, sizeof(float) * (size_t)np), 0);
    free(dp2);
    free(tok), free(cls), free(pos), free(x), free(dx), free(dt), free(dc), free(dp), free(dt0), free(dc0), free(dp0);
    free(rt), free(rc), free(rp);
}

START_TEST(embed_forward_backward)
{
    vt_rng r;
    vt_rng_seed(&r, 9);
    embed_case(&r, 2, 5, 4);
    embed_case(&r, 1, 1, 3);
    embed_case(&r, 3, 7, 9);
}
END_TEST

/* ------------------------------------------------------------------ pooling */
static void pool_case(vt_rng *r, int B, int T, int D, vt_pool_kind kind, int prefix)
{
    int64_t nx = (int64_t)B * T * D, no = (int64_t)B * D;
    float *x = frand(r, nx, -1, 1), *out = frand(r, no, -1, 1);
    double *ref = dalloc(no);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            if (kind == VT_POOL_TOKEN) {
                ref[b * D + d] = x[(size_t)b * T * D + d];
            } else {
                double s = 0;
                for (int t = prefix; t < T; t++) s += x[((size_t)b * T + t) * D + d];
                ref[b * D + d] = s / (T - prefix);
            }
        }
    vt_pool_forward(out, x, B, T, D, kind, prefix);
    check_close(kind == VT_POOL_TOKEN ? "pool token forward" : "pool mean forward", out, ref, no, 1e-7, 1e-6);
    float *dout = frand(r, no, -1, 1), *dx = frand(r, nx, -1, 1), *dx0 = fcopy(dx, nx);
    double *rdx = dalloc(nx);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                double g = 0;
                if (kind == VT_POOL_TOKEN) g = t == 0 ? dout[b * D + d] : 0;
                else g = t >= prefix ? dout[b * D + d] / (double)(T - prefix) : 0;
                rdx[((size_t)b * T + t) * D + d] = dx0[((size_t)b * T + t) * D + d] + g;
            }
    vt_pool_backward(dx, dout, B, T, D, kind, prefix, true);
    check_close(kind == VT_POOL_TOKEN ? "pool token backward" : "pool mean backward", dx, rdx, nx, 1e-7, 1e-6);
    free(x), free(out), free(ref), free(dout), free(dx), free(dx0), free(rdx);
}

START_TEST(pool_token_and_mean)
{
    vt_rng r;
    vt_rng_seed(&r, 10);
    pool_case(&r, 2, 5, 4, VT_POOL_TOKEN, 0);
    pool_case(&r, 3, 7, 3, VT_POOL_TOKEN, 1);
    pool_case(&r, 2, 5, 4, VT_POOL_MEAN, 1);
    pool_case(&r, 3, 7, 3, VT_POOL_MEAN, 0);
    pool_case(&r, 1, 4, 6, VT_POOL_MEAN, 3);   /* one token averaged */
}
END_TEST

/* ------------------------------------------------------------------ cross-entropy with label smoothing */
typedef struct {
    int B, K;
    const int *labels;
    double eps;
} ce_ctx;

/* torch: loss = mean_b [(1 - eps) nll_b + eps mean_k(-log p_bk)] */
static double ref_ce(double *probs, const double *z, const int *labels, int B, int K, double eps)
{
    double total = 0;
    for (int b = 0; b < B; b++) {
        const double *zb = z + (size_t)b * K;
        double m = -INFINITY, s = 0;
        for (int k = 0; k < K; k++) m = fmax(m, zb[k]);
        for (int k = 0; k < K; k++) s += exp(zb[k] - m);
        double smooth = 0;
        for (int k = 0; k < K; k++) {
            double logp = zb[k] - m - log(s);
            if (probs) probs[(size_t)b * K + k] = exp(logp);
            smooth += -logp;
        }
        double nll = -(zb[labels[b]] - m - log(s));
        total += (1 - eps) * nll + eps * smooth / K;
    }
    return total / B;
}

static void ce_f(double *y, const double *x, const void *vc)
{
    const ce_ctx *c = vc;
    y[0] = ref_ce(NULL, x, c->labels, c->B, c->K, c->eps);
}

static void ce_case(vt_rng *r, int B, int K, float eps, float range)
{
    int64_t n = (int64_t)B * K;
    float *z = frand(r, n, -range, range), *probs = frand(r, n, -1, 1);
    int *labels = malloc(sizeof(int) * (size_t)B);
    for (int b = 0; b < B; b++) labels[b] = (int)(vt_rng_u64(r) % (uint64_t)K);
    double *dz = todouble(z, n), *rp = dalloc(n);
    double ref = ref_ce(rp, dz, labels, B, K, eps);
    double loss = vt_crossentropy_forward(probs, z, labels, B, K, eps);
    ck_assert_msg(fabs(loss - ref) <= 1e-6 * (1 + fabs(ref)), "cross-entropy B %d K %d eps %g: %.9g vs %.9g", B, K, eps,
                  loss, ref);
    check_close("cross-entropy probabilities", probs, rp, n, 1e-7, 2e-6);
    const float dloss = 0.75f;
    float *g = frand(r, n, -1, 1), *g0 = fcopy(g, n);
    double dl = dloss, *rg = dalloc(n);
    ce_ctx c = {B, K, labels, eps};
    vjp_fd(rg, ce_f, dz, n, 1, &dl, &c);
    add_init(rg, g0, n);
    vt_crossentropy_backward(g, probs, labels, B, K, eps, dloss, true);
    check_close("cross-entropy backward", g, rg, n, 1e-7, 1e-6);
    free(z), free(probs), free(labels), free(dz), free(rp), free(g), free(g0), free(rg);
}

START_TEST(cross_entropy_label_smoothing)
{
    vt_rng r;
    vt_rng_seed(&r, 11);
    ce_case(&r, 5, 6, 0.0f, 2);
    ce_case(&r, 5, 6, 0.1f, 2);
    ce_case(&r, 3, 11, 0.3f, 5);
    ce_case(&r, 1, 2, 0.5f, 1);
    ce_case(&r, 7, 100, 0.1f, 20);   /* confident, large spread */
    /* a hand-worked value: logits (0, ln 3) -> p = (1/4, 3/4); label 0, eps 0.2:
     * 0.8 * ln 4 + 0.2 * (ln 4 + ln(4/3)) / 2 */
    float z[2] = {0.0f, (float)log(3.0)}, p[2];
    int y[1] = {0};
    double expect = 0.8 * log(4.0) + 0.1 * (log(4.0) + log(4.0 / 3.0));
    ck_assert(fabs(vt_crossentropy_forward(p, z, y, 1, 2, 0.2f) - expect) < 1e-6);
    /* a label out of range gives NaN, not a crash */
    int bad[2] = {0, 2};
    float z2[4] = {0, 1, 2, 3}, p2[4];
    ck_assert(isnan(vt_crossentropy_forward(p2, z2, bad, 2, 2, 0.0f)));
    bad[1] = -1;
    ck_assert(isnan(vt_crossentropy_forward(p2, z2, bad, 2, 2, 0.1f)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sgemm_transposes_and_leading_dims);
    tcase_add_test(tc, linear_forward_backward);
    tcase_add_test(tc, bias_add_residual_accumulate);
    tcase_add_test(tc, layernorm_forward_backward);
    tcase_add_test(tc, gelu_erf_and_tanh);
    tcase_add_test(tc, softmax_forward_backward);
    tcase_add_test(tc, attention_vs_naive_per_head);
    tcase_add_test(tc, patchify_is_the_patch_conv);
    tcase_add_test(tc, embed_forward_backward);
    tcase_add_test(tc, pool_token_and_mean);
    tcase_add_test(tc, cross_entropy_label_smoothing);
    add_kernel_mode_tests(tc);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
