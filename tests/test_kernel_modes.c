/* test_kernel_modes.c - the kernels give the same numbers however they run: one thread or two (bitwise
 * for the non-GEMM kernels, closely for the GEMM ones), and a backward that overwrites a fresh input
 * gradient equals one that adds into zeros, bitwise. */
#include "kernel_checks.h"

/* ------------------------------------------------------------------ one thread vs two */
typedef struct {
    /* shapes above the kernels' parallel thresholds */
    float *ln_out, *ln_mean, *ln_rstd, *ln_dx, *ln_dw, *ln_db;
    float *bias_db, *gelu_e, *gelu_t, *gelu_de, *gelu_dt, *sm, *sm_d;
    float *emb_x, *emb_dt, *emb_dc, *emb_dp, *pat, *pat_d, *pool_o, *pool_d;
    float *lin_o, *lin_dx, *lin_dw, *lin_db, *att_o, *att_p, *att_d, *add_o, *acc;
    double ce;
    float *ce_d;
} thread_outs;

enum { TR = 300, TC = 96, TB = 4, TN = 64, AB = 2, AT = 33, AC = 48, ANH = 4, PB = 2, PC = 3, PH = 32, PW = 48, PP = 8,
       CEB = 64, CEK = 300 };

typedef struct {
    float *x, *w, *b, *dout, *tok, *cls, *pos, *embdx, *qkv, *attdout, *img, *linw, *ce_z;
    int labels[CEB];
} thread_ins;

static float *zf(int64_t n) { return calloc((size_t)n, sizeof(float)); }

static void run_kernels(thread_outs *o, const thread_ins *in)
{
    const int64_t n = (int64_t)TR * TC;
    o->ln_out = zf(n), o->ln_mean = zf(TR), o->ln_rstd = zf(TR), o->ln_dx = zf(n), o->ln_dw = zf(TC), o->ln_db = zf(TC);
    vt_layernorm_forward(o->ln_out, o->ln_mean, o->ln_rstd, in->x, in->w, in->b, TR, TC, 1e-6f);
    vt_layernorm_backward(o->ln_dx, o->ln_dw, o->ln_db, in->dout, in->x, in->w, o->ln_mean, o->ln_rstd, TR, TC, true);
    o->bias_db = zf(TC);
    vt_bias_add_backward(o->bias_db, in->dout, TR, TC);
    o->gelu_e = zf(n), o->gelu_t = zf(n), o->gelu_de = zf(n), o->gelu_dt = zf(n);
    vt_gelu_forward(o->gelu_e, in->x, n, VT_GELU_ERF);
    vt_gelu_forward(o->gelu_t, in->x, n, VT_GELU_TANH);
    vt_gelu_backward(o->gelu_de, in->dout, in->x, n, VT_GELU_ERF, true);
    vt_gelu_backward(o->gelu_dt, in->dout, in->x, n, VT_GELU_TANH, true);
    o->sm = zf(n), o->sm_d = zf(n);
    vt_softmax_forward(o->sm, in->x, TR, TC);
    vt_softmax_backward(o->sm_d, in->dout, o->sm, TR, TC, true);
    o->add_o = zf(n), o->acc = zf(n);
    vt_add_forward(o->add_o, in->x, in->dout, n);
    vt_accumulate(o->acc, in->x, n);
    vt_accumulate(o->acc, in->dout, n);
    const int64_t nx = (int64_t)TB * (TN + 1) * TC;
    o->emb_x = zf(nx), o->emb_dt = zf((int64_t)TB * TN * TC), o->emb_dc = zf(TC), o->emb_dp = zf((int64_t)(TN + 1) * TC);
    vt_embed_forward(o->emb_x, in->tok, in->cls, in->pos, TB, TN, TC);
    vt_embed_backward(o->emb_dt, o->emb_dc, o->emb_dp, in->embdx, TB, TN, TC, true);
    o->pool_o = zf((int64_t)TB * TC), o->pool_d = zf(nx);
    vt_pool_forward(o->pool_o, in->embdx, TB, TN + 1, TC, VT_POOL_MEAN, 1);
    vt_pool_backward(o->pool_d, in->dout, TB, TN + 1, TC, VT_POOL_MEAN, 1, true);
    vt_pool_backward(o->pool_d, in->dout, TB, TN + 1, TC, VT_POOL_TOKEN, 0, true);
    const int64_t npat = (int64_t)PB * (PH / PP) * (PW / PP) * PC * PP * PP, nimg = (int64_t)PB * PC * PH * PW;
    o->pat = zf(npat), o->pat_d = zf(nimg);
    vt_patchify_forward(o->pat, in->img, PB, PC, PH, PW, PP);
    vt_patchify_backward(o->pat_d, o->pat, PB, PC, PH, PW, PP, true);
    /* GEMM-based */
    o->lin_o = zf((int64_t)TR * TC), o->lin_dx = zf(n), o->lin_dw = zf((int64_t)TC * TC), o->lin_db = zf(TC);
    vt_linear_forward(o->lin_o, in->x, in->linw, in->b, TR, TC, TC);
    vt_linear_backward(o->lin_dx, o->lin_dw, o->lin_db, in->dout, in->x, in->linw, TR, TC, TC, true);
    o->att_o = zf((int64_t)AB * AT * AC), o->att_p = zf((int64_t)AB * ANH * AT * AT), o->att_d = zf((int64_t)AB * AT * 3 * AC);
    vt_attention_forward(o->att_o, o->att_p, in->qkv, AB, AT, AC, ANH);
    vt_attention_backward(o->att_d, in->attdout, in->qkv, o->att_p, AB, AT, AC, ANH, true);
    o->ce_d = zf((int64_t)CEB * CEK);
    float *probs = zf((int64_t)CEB * CEK);
    o->ce = vt_crossentropy_forward(probs, in->ce_z, in->labels, CEB, CEK, 0.1f);
    vt_crossentropy_backward(o->ce_d, probs, in->labels, CEB, CEK, 0.1f, 1.0f, true);
    free(probs);
}

static void free_outs(thread_outs *o)
{
    float **p[] = {&o->ln_out, &o->ln_mean, &o->ln_rstd, &o->ln_dx, &o->ln_dw, &o->ln_db, &o->bias_db, &o->gelu_e,
                   &o->gelu_t, &o->gelu_de, &o->gelu_dt, &o->sm, &o->sm_d, &o->emb_x, &o->emb_dt, &o->emb_dc,
                   &o->emb_dp, &o->pat, &o->pat_d, &o->pool_o, &o->pool_d, &o->lin_o, &o->lin_dx, &o->lin_dw,
                   &o->lin_db, &o->att_o, &o->att_p, &o->att_d, &o->add_o, &o->acc, &o->ce_d};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(*p[i]);
}

#define SAME_BITS(field, n)                                                                              \
    ck_assert_msg(memcmp(one.field, two.field, sizeof(float) * (size_t)(n)) == 0,                        \
                  #field ": one thread and two threads differ (max %g)", tu_maxdiff(one.field, two.field, n))
#define CLOSE(field, n)                                                                                  \
    ck_assert_msg(tu_maxdiff(one.field, two.field, n) <= 1e-5 * (1 + tu_maxabs(one.field, n)),           \
                  #field ": one thread and two threads differ by %g", tu_maxdiff(one.field, two.field, n))

START_TEST(one_thread_equals_two)
{
    vt_rng r;
    vt_rng_seed(&r, 12);
    thread_ins in;
    const int64_t n = (int64_t)TR * TC, nx = (int64_t)TB * (TN + 1) * TC;
    in.x = frand(&r, n, -2, 2), in.w = frand(&r, TC, 0.5f, 1.5f), in.b = frand(&r, TC, -1, 1);
    in.dout = frand(&r, n > nx ? n : nx, -1, 1);
    in.tok = frand(&r, (int64_t)TB * TN * TC, -1, 1), in.cls = frand(&r, TC, -1, 1);
    in.pos = frand(&r, (int64_t)(TN + 1) * TC, -1, 1), in.embdx = frand(&r, nx, -1, 1);
    in.qkv = frand(&r, (int64_t)AB * AT * 3 * AC, -1.5f, 1.5f), in.attdout = frand(&r, (int64_t)AB * AT * AC, -1, 1);
    in.img = frand(&r, (int64_t)PB * PC * PH * PW, -1, 1), in.linw = frand(&r, (int64_t)TC * TC, -0.3f, 0.3f);
    in.ce_z = frand(&r, (int64_t)CEB * CEK, -4, 4);
    for (int b = 0; b < CEB; b++) in.labels[b] = (b * 37) % CEK;
    ck_assert_int_gt(n, 16384);   /* above the parallel threshold of the elementwise kernels */

    thread_outs one, two;
    vt_set_threads(1);
    ck_assert_int_eq(vt_get_threads(), 1);
    run_kernels(&one, &in);
    vt_set_threads(2);
    ck_assert_int_eq(vt_get_threads(), 2);
    run_kernels(&two, &in);

    /* deterministic kernels: bitwise */
    SAME_BITS(ln_out, n);
    SAME_BITS(ln_mean, TR);
    SAME_BITS(ln_rstd, TR);
    SAME_BITS(ln_dx, n);
    SAME_BITS(ln_dw, TC);
    SAME_BITS(ln_db, TC);
    SAME_BITS(bias_db, TC);
    SAME_BITS(gelu_e, n);
    SAME_BITS(gelu_t, n);
    SAME_BITS(gelu_de, n);
    SAME_BITS(gelu_dt, n);
    SAME_BITS(sm, n);
    SAME_BITS(sm_d, n);
    SAME_BITS(add_o, n);
    SAME_BITS(acc, n);
    SAME_BITS(emb_x, nx);
    SAME_BITS(emb_dt, (int64_t)TB * TN * TC);
    SAME_BITS(emb_dc, TC);
    SAME_BITS(emb_dp, (int64_t)(TN + 1) * TC);
    SAME_BITS(pool_o, (int64_t)TB * TC);
    SAME_BITS(pool_d, nx);
    SAME_BITS(pat, (int64_t)PB * PC * PH * PW);
    SAME_BITS(pat_d, (int64_t)PB * PC * PH * PW);
    SAME_BITS(ce_d, (int64_t)CEB * CEK);
    SAME_BITS(lin_db, TC);   /* the bias gradient of linear is the deterministic bias-add backward */
    ck_assert(one.ce == two.ce);
    /* GEMM-based: the BLAS may split its sums differently */
    CLOSE(lin_o, n);
    CLOSE(lin_dx, n);
    CLOSE(lin_dw, (int64_t)TC * TC);
    CLOSE(att_o, (int64_t)AB * AT * AC);
    CLOSE(att_p, (int64_t)AB * ANH * AT * AT);
    CLOSE(att_d, (int64_t)AB * AT * 3 * AC);
    /* and the parallel results are right, not only equal: spot-check LN's dweight in double */
    double dw[TC] = {0};
    for (int i = 0; i < TR; i++)
        for (int c = 0; c < TC; c++)
            dw[c] += ((double)in.x[i * TC + c] - two.ln_mean[i]) * two.ln_rstd[i] * in.dout[i * TC + c];
    check_close("layernorm dweight, 2 threads", two.ln_dw, dw, TC, 1e-4, 1e-5);

    free_outs(&one);
    free_outs(&two);
    float *ins[] = {in.x, in.w, in.b, in.dout, in.tok, in.cls, in.pos, in.embdx, in.qkv, in.attdout, in.img, in.linw, in.ce_z};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) free(ins[i]);
}
END_TEST

/* acc = false: backward overwrites dinp (uninitialised memory, here NaN) with exactly what acc = true adds
 * into zeros; dweight / dbias keep adding */
static float *nans(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

static void same_bits(const char *what, const float *a, const float *b, int64_t n)
{
    ck_assert_msg(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "%s: overwrite differs from accumulate into zeros", what);
}

START_TEST(backward_overwrite_equals_accumulate_into_zeros)
{
    vt_rng r;
    vt_rng_seed(&r, 11);
    const int BT = 37, C = 24, OC = 20;
    float *x = frand(&r, (int64_t)BT * C, -2, 2), *w = frand(&r, (int64_t)OC * C, -1, 1);
    float *dout = frand(&r, (int64_t)BT * OC, -1, 1), *lw = frand(&r, C, 0.5f, 1.5f), *ldy = frand(&r, (int64_t)BT * C, -1, 1);
    float *z = calloc((size_t)BT * C, sizeof(float)), *o = nans((int64_t)BT * C);
    float *dw1 = calloc((size_t)OC * C, sizeof(float)), *dw2 = calloc((size_t)OC * C, sizeof(float));
    vt_linear_backward(z, dw1, NULL, dout, x, w, BT, C, OC, true);
    vt_linear_backward(o, dw2, NULL, dout, x, w, BT, C, OC, false);
    same_bits("linear dinp", z, o, (int64_t)BT * C);
    same_bits("linear dweight", dw1, dw2, (int64_t)OC * C);

    float mean[37], rstd[37], *y = malloc(sizeof(float) * (size_t)BT * C);
    vt_layernorm_forward(y, mean, rstd, x, lw, lw, BT, C, 1e-6f);
    memset(z, 0, sizeof(float) * (size_t)BT * C);
    free(o);
    o = nans((int64_t)BT * C);
    vt_layernorm_backward(z, NULL, NULL, ldy, x, lw, mean, rstd, BT, C, true);
    vt_layernorm_backward(o, NULL, NULL, ldy, x, lw, mean, rstd, BT, C, false);
    same_bits("layernorm dinp", z, o, (int64_t)BT * C);

    for (int k = 0; k < 2; k++) {
        memset(z, 0, sizeof(float) * (size_t)BT * C);
        free(o);
        o = nans((int64_t)BT * C);
        vt_gelu_backward(z, ldy, x, (int64_t)BT * C, (vt_gelu_kind)k, true);
        vt_gelu_backward(o, ldy, x, (int64_t)BT * C, (vt_gelu_kind)k, false);
        same_bits(k ? "gelu tanh" : "gelu erf", z, o, (int64_t)BT * C);
    }

    const int B = 2, T = 9, AC = 12, NH = 3;
    const int64_t nq = (int64_t)B * T * 3 * AC, no = (int64_t)B * T * AC;
    float *qkv = frand(&r, nq, -1, 1), *ao = frand(&r, no, -1, 1), *att = frand(&r, (int64_t)B * NH * T * T, 0, 1);
    float *ado = frand(&r, no, -1, 1), *dz = calloc((size_t)nq, sizeof(float)), *dn = nans(nq);
    vt_attention_forward(ao, att, qkv, B, T, AC, NH);
    vt_attention_backward_ex(dz, ado, qkv, att, NULL, NULL, B, T, AC, NH, true);
    vt_attention_backward_ex(dn, ado, qkv, att, NULL, NULL, B, T, AC, NH, false);
    same_bits("attention dqkv", dz, dn, nq);

    free(x), free(w), free(dout), free(lw), free(ldy), free(z), free(o), free(dw1), free(dw2), free(y);
    free(qkv), free(ao), free(att), free(ado), free(dz), free(dn);
}
END_TEST

/* the same for the kernels whose overwrite writes what += gives into zeros by construction (0 + v, or
 * zeros then +=), and acc = true adds: into ones it gives 1 + v. B2 T9 D12 covers every row kind: prefix
 * rows, kept and dropped tokens, pooled and unread rows. */
typedef void (*bwd_fn)(float *d, bool acc, void *ctx);
static void check_modes(const char *what, bwd_fn f, void *ctx, int64_t n)
{
    float *z = calloc((size_t)n, sizeof(float)), *o = nans(n), *one = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) one[i] = 1.0f;
    f(z, true, ctx);
    f(o, false, ctx);
    f(one, true, ctx);
    same_bits(what, z, o, n);
    for (int64_t i = 0; i < n; i++) o[i] = 1.0f + z[i];
    /* closely, not bitwise: a multiply-add contracts into one rounding (and the BLAS folds the 1 in anywhere) */
    ck_assert_msg(tu_maxdiff(one, o, n) <= 1e-6, "%s: acc = true does not add (by %g)", what, tu_maxdiff(one, o, n));
    free(z), free(o), free(one);
}

typedef struct {
    int B, T, D, K, prefix, C, H, W, P;
    const float *dout, *y, *probs, *deriv, *qkv, *att;
    const int *labels;
    const int32_t *keep;
    vt_pool_kind kind;
} modes_ctx;

static void m_softmax(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_softmax_backward(d, m->dout, m->y, m->B * m->T, m->D, acc);
}
static void m_ce(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_crossentropy_backward(d, m->probs, m->labels, m->B, m->D, 0.1f, 0.7f, acc);
}
static void m_patchify(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_patchify_backward(d, m->dout, m->B, m->C, m->H, m->W, m->P, acc);
}
static void m_embed(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_embed_backward(d, NULL, NULL, m->dout, m->B, m->T - 1, m->D, acc);
}
static void m_token_keep(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_token_keep_backward(d, m->dout, m->keep, m->B, m->T, m->K, m->D, m->prefix, acc);
}
static void m_pool(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_pool_backward(d, m->dout, m->B, m->T, m->D, m->kind, m->prefix, acc);
}
static void m_gelu_deriv(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_gelu_backward_deriv(d, m->dout, m->deriv, (int64_t)m->B * m->T * m->D, acc);
}
static void m_attention(float *d, bool acc, void *c)
{
    modes_ctx *m = c;
    vt_attention_backward(d, m->dout, m->qkv, m->att, m->B, m->T, m->D, 3, acc);
}

START_TEST(backward_overwrite_every_input_gradient)
{
    vt_rng r;
    vt_rng_seed(&r, 13);
    modes_ctx m = {.B = 2, .T = 9, .D = 12, .K = 3, .prefix = 2, .C = 3, .H = 8, .W = 12, .P = 4};
    const int64_t n = (int64_t)m.B * m.T * m.D;
    float *dout = frand(&r, 3 * n, -1, 1), *x = frand(&r, n, -2, 2), *y = malloc(sizeof(float) * (size_t)n);
    vt_softmax_forward(y, x, m.B * m.T, m.D);
    int labels[2] = {3, 11};
    int32_t keep[6] = {4, 2, 7, 8, 3, 5};
    float *qkv = frand(&r, 3 * n, -1, 1), *att = malloc(sizeof(float) * (size_t)m.B * 3 * m.T * m.T);
    float *ao = malloc(sizeof(float) * (size_t)n);
    vt_attention_forward(ao, att, qkv, m.B, m.T, m.D, 3);
    m.dout = dout, m.y = y, m.probs = y, m.deriv = x, m.labels = labels, m.keep = keep, m.qkv = qkv, m.att = att;
    check_modes("softmax", m_softmax, &m, n);
    check_modes("gelu from its derivative", m_gelu_deriv, &m, n);
    check_modes("attention", m_attention, &m, 3 * n);
    m.T = 1;   /* cross-entropy: logits (B, D) */
    check_modes("cross-entropy", m_ce, &m, (int64_t)m.B * m.D);
    m.T = 9;
    check_modes("patchify", m_patchify, &m, (int64_t)m.B * m.C * m.H * m.W);
    check_modes("embed dtok", m_embed, &m, (int64_t)m.B * (m.T - 1) * m.D);
    check_modes("token_keep", m_token_keep, &m, n);
    m.kind = VT_POOL_TOKEN;
    check_modes("pool token", m_pool, &m, n);
    m.kind = VT_POOL_MEAN;
    check_modes("pool mean", m_pool, &m, n);
    free(dout), free(x), free(y), free(qkv), free(att), free(ao);
}
END_TEST

void add_kernel_mode_tests(TCase *tc)
{
    tcase_add_test(tc, one_thread_equals_two);
    tcase_add_test(tc, backward_overwrite_equals_accumulate_into_zeros);
    tcase_add_test(tc, backward_overwrite_every_input_gradient);
}
