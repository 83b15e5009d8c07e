/* test_autograd.c - every differentiable op against central finite differences on small random
 * shapes, every input of each op; accumulation, no-grad mode, parameter gradients in the flat
 * buffer, error messages, and the arena's steady state. */
#include "testutil.h"
#include "autograd/autograd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an op under test: builds its output from the inputs */
typedef vt_var *(*op_fn)(vt_graph *g, vt_var **in, const int *iarg);

typedef struct {
    op_fn op;
    const int *iarg;
    float *weights;      /* fixed random weights w: loss = sum(op(x) * w) */
    int64_t nweights;
} ctx_t;

static vt_var *weighted_loss(vt_graph *g, vt_var **in, int nin, void *vctx)
{
    (void)nin;
    ctx_t *c = vctx;
    vt_var *y = c->op(g, in, c->iarg);
    if (!y) return NULL;
    int64_t n = vt_tensor_numel(&y->val);
    ck_assert_int_le(n, c->nweights);
    vt_var *w = vt_var_wrap(g, c->weights, y->val.ndim, y->val.shape, "w");
    return vt_sum(g, vt_mul(g, y, w));
}

/* inputs: shapes (ndim 0-terminated rows), values uniform in [lo, hi] */
static void check_op(const char *name, op_fn op, const int *iarg, int nin, const int64_t shapes[][5], float lo,
                     float hi, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed);
    vt_var vars[4];
    vt_var *ins[4];
    for (int i = 0; i < nin; i++) {
        int nd = (int)shapes[i][0];
        int64_t n = 1;
        for (int k = 0; k < nd; k++) n *= shapes[i][k + 1];
        float *d = malloc(sizeof(float) * (size_t)n);
        tu_fill_uniform(&r, d, n, lo, hi);
        vars[i].val = vt_tensor_view(d, nd, &shapes[i][1], "x");
        vars[i].grad = NULL;
        vars[i].requires_grad = true;
        ins[i] = &vars[i];
    }
    static float w[1 << 16];
    tu_fill_uniform(&r, w, 1 << 16, -1, 1);
    ctx_t c = {op, iarg, w, 1 << 16};
    char desc[256];
    double worst = vt_gradcheck(weighted_loss, &c, ins, nin, 1e-2, 3e-3, 2e-2, desc, sizeof desc);
    ck_assert_msg(worst <= 1.0, "%s: worst %.3g: %s", name, worst, desc);
    for (int i = 0; i < nin; i++) free(vars[i].val.data);
}

static vt_var *op_linear(vt_graph *g, vt_var **in, const int *a) { return vt_linear(g, in[0], in[1], a[0] ? in[2] : NULL); }
static vt_var *op_layernorm(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_layernorm(g, in[0], in[1], in[2], 1e-6f); }
static vt_var *op_gelu(vt_graph *g, vt_var **in, const int *a) { return vt_gelu(g, in[0], (vt_gelu_kind)a[0]); }
static vt_var *op_attention(vt_graph *g, vt_var **in, const int *a) { return vt_attention(g, in[0], a[0]); }
static vt_var *op_softmax(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_softmax(g, in[0]); }
static vt_var *op_ce(vt_graph *g, vt_var **in, const int *a)
{
    static const int labels[5] = {2, 0, 4, 1, 3};
    return vt_cross_entropy(g, in[0], labels, a[0] / 10.0f);
}
static vt_var *op_patchify(vt_graph *g, vt_var **in, const int *a) { return vt_patchify(g, in[0], a[0]); }
static vt_var *op_embed(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_embed(g, in[0], in[1], in[2]); }
static vt_var *op_pool(vt_graph *g, vt_var **in, const int *a) { return vt_pool(g, in[0], (vt_pool_kind)a[0], a[1]); }
static vt_var *op_add(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_add(g, in[0], in[1]); }
static vt_var *op_sub(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_sub(g, in[0], in[1]); }
static vt_var *op_mul(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_mul(g, in[0], in[1]); }
static vt_var *op_scale(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_scale(g, in[0], -1.7f); }
static vt_var *op_matmul(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_matmul(g, in[0], in[1]); }
static vt_var *op_sum(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_sum(g, in[0]); }
static vt_var *op_mean(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_mean(g, in[0]); }
static vt_var *op_reshape(vt_graph *g, vt_var **in, const int *a)
{
    (void)a;
    vt_var *r = vt_reshape(g, in[0], 2, (int64_t[]){6, 4});
    return vt_tanh(g, r);   /* something after the reshape so that its gradient matters */
}
static vt_var *op_transpose(vt_graph *g, vt_var **in, const int *a) { return vt_transpose(g, in[0], a[0], a[1]); }
static vt_var *op_exp(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_exp(g, in[0]); }
static vt_var *op_log(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_log(g, in[0]); }
static vt_var *op_tanh(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_tanh(g, in[0]); }
static vt_var *op_relu(vt_graph *g, vt_var **in, const int *a) { (void)a; return vt_relu(g, in[0]); }

START_TEST(fused_ops)
{
    check_op("linear", op_linear, (int[]){1}, 3, (const int64_t[][5]){{3, 2, 3, 5}, {2, 4, 5}, {1, 4}}, -1, 1, 1);
    check_op("linear no bias", op_linear, (int[]){0}, 2, (const int64_t[][5]){{2, 7, 3}, {2, 6, 3}}, -1, 1, 2);
    check_op("layernorm", op_layernorm, NULL, 3, (const int64_t[][5]){{3, 2, 3, 7}, {1, 7}, {1, 7}}, -1, 1, 3);
    check_op("gelu erf", op_gelu, (int[]){VT_GELU_ERF}, 1, (const int64_t[][5]){{2, 5, 9}}, -3, 3, 4);
    check_op("gelu tanh", op_gelu, (int[]){VT_GELU_TANH}, 1, (const int64_t[][5]){{2, 5, 9}}, -3, 3, 5);
    check_op("attention 1 head", op_attention, (int[]){1}, 1, (const int64_t[][5]){{3, 1, 5, 12}}, -1, 1, 6);
    check_op("attention 3 heads", op_attention, (int[]){3}, 1, (const int64_t[][5]){{3, 2, 7, 18}}, -1, 1, 7);
    check_op("softmax", op_softmax, NULL, 1, (const int64_t[][5]){{2, 4, 6}}, -2, 2, 8);
    check_op("cross-entropy", op_ce, (int[]){0}, 1, (const int64_t[][5]){{2, 5, 6}}, -2, 2, 9);
    check_op("cross-entropy smoothed", op_ce, (int[]){2}, 1, (const int64_t[][5]){{2, 5, 6}}, -2, 2, 10);
    check_op("patchify", op_patchify, (int[]){2}, 1, (const int64_t[][5]){{4, 2, 3, 4, 6}}, -1, 1, 11);
    check_op("embed", op_embed, NULL, 3, (const int64_t[][5]){{3, 2, 5, 4}, {3, 1, 1, 4}, {3, 1, 6, 4}}, -1, 1, 12);
    check_op("pool token", op_pool, (int[]){VT_POOL_TOKEN, 1}, 1, (const int64_t[][5]){{3, 2, 5, 4}}, -1, 1, 13);
    check_op("pool mean", op_pool, (int[]){VT_POOL_MEAN, 1}, 1, (const int64_t[][5]){{3, 2, 5, 4}}, -1, 1, 14);
}
END_TEST

START_TEST(general_ops)
{
    check_op("add", op_add, NULL, 2, (const int64_t[][5]){{2, 3, 4}, {2, 3, 4}}, -1, 1, 20);
    check_op("add broadcast", op_add, NULL, 2, (const int64_t[][5]){{3, 2, 3, 4}, {1, 4}}, -1, 1, 21);
    check_op("add broadcast (1,1,D)", op_add, NULL, 2, (const int64_t[][5]){{3, 2, 3, 4}, {3, 1, 1, 4}}, -1, 1, 22);
    check_op("sub broadcast", op_sub, NULL, 2, (const int64_t[][5]){{3, 2, 3, 4}, {2, 3, 4}}, -1, 1, 23);
    check_op("mul", op_mul, NULL, 2, (const int64_t[][5]){{2, 3, 5}, {2, 3, 5}}, -1, 1, 24);
    check_op("mul broadcast", op_mul, NULL, 2, (const int64_t[][5]){{2, 3, 5}, {1, 5}}, -1, 1, 25);
    check_op("scale", op_scale, NULL, 1, (const int64_t[][5]){{2, 3, 5}}, -1, 1, 26);
    check_op("matmul 2-D", op_matmul, NULL, 2, (const int64_t[][5]){{2, 3, 4}, {2, 4, 5}}, -1, 1, 27);
    check_op("matmul batched", op_matmul, NULL, 2, (const int64_t[][5]){{3, 2, 3, 4}, {3, 2, 4, 5}}, -1, 1, 28);
    check_op("matmul shared b", op_matmul, NULL, 2, (const int64_t[][5]){{3, 2, 3, 4}, {2, 4, 5}}, -1, 1, 29);
    check_op("sum", op_sum, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, -1, 1, 30);
    check_op("mean", op_mean, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, -1, 1, 31);
    check_op("reshape", op_reshape, NULL, 1, (const int64_t[][5]){{3, 2, 3, 4}}, -1, 1, 32);
    check_op("transpose", op_transpose, (int[]){0, 2}, 1, (const int64_t[][5]){{3, 2, 3, 4}}, -1, 1, 33);
    check_op("exp", op_exp, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, -1, 1, 34);
    check_op("log", op_log, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, 0.5f, 2, 35);
    check_op("tanh", op_tanh, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, -1.5f, 1.5f, 36);
    check_op("relu", op_relu, NULL, 1, (const int64_t[][5]){{2, 3, 4}}, 0.1f, 1, 37);   /* away from the kink */
}
END_TEST

/* the checker itself must catch a wrong gradient: exp's output used as if it were log's derivative */
static vt_var *wrong_grad(vt_graph *g, vt_var **in, int nin, void *ctx)
{
    (void)nin;
    (void)ctx;
    vt_var *y = vt_exp(g, in[0]);
    if (y && g->nnodes) g->nodes[g->nnodes - 1].op = VT_OP_TANH;   /* backward of tanh on exp's output */
    return vt_sum(g, y);
}

START_TEST(checker_catches_wrong_gradients)
{
    float d[6] = {0.1f, 0.5f, -0.3f, 0.9f, 0.2f, -0.7f};
    vt_var v = {vt_tensor_view(d, 1, (int64_t[]){6}, "x"), NULL, true};
    vt_var *ins[1] = {&v};
    double worst = vt_gradcheck(wrong_grad, NULL, ins, 1, 1e-2, 3e-3, 2e-2, NULL, 0);
    ck_assert_msg(worst > 1.0, "a wrong gradient passed the check (worst %g)", worst);
}
END_TEST

START_TEST(accumulation_nograd_params)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    vt_paramset ps;
    vt_paramset_init(&ps);
    ck_assert_int_eq(vt_paramset_add(&ps, "a.weight", 2, (int64_t[]){3, 4}), 0);
    ck_assert_int_eq(vt_paramset_add(&ps, "a.bias", 1, (int64_t[]){3}), 1);
    ck_assert_int_eq(vt_paramset_add(&ps, "a.bias", 1, (int64_t[]){3}), -1);
    ck_assert(strstr(vt_errmsg(), "twice") != NULL);
    ck_assert_int_eq(vt_paramset_alloc(&ps), VT_OK);
    ck_assert_int_eq(ps.info[1].offset % 16, 0);
    ck_assert_ptr_eq(ps.vars[1].grad, ps.grad + ps.info[1].offset);
    vt_rng r;
    vt_rng_seed(&r, 9);
    tu_fill_uniform(&r, ps.data, ps.numel, -1, 1);
    float x[8];
    tu_fill_uniform(&r, x, 8, -1, 1);
    /* the same linear twice on one loss: the parameters' gradients double */
    vt_var *in = vt_var_wrap(&g, x, 2, (int64_t[]){2, 4}, "x");
    vt_var *y1 = vt_linear(&g, in, &ps.vars[0], &ps.vars[1]);
    vt_var *l1 = vt_sum(&g, y1);
    ck_assert_int_eq(vt_backward(&g, l1), VT_OK);
    float once[16];
    memcpy(once, ps.grad, sizeof once);
    vt_graph_reset(&g);
    vt_paramset_zero_grad(&ps);
    in = vt_var_wrap(&g, x, 2, (int64_t[]){2, 4}, "x");
    vt_var *l2 = vt_add(&g, vt_sum(&g, vt_linear(&g, in, &ps.vars[0], &ps.vars[1])),
                        vt_sum(&g, vt_linear(&g, in, &ps.vars[0], &ps.vars[1])));
    ck_assert_int_eq(vt_backward(&g, l2), VT_OK);
    for (int i = 0; i < 12; i++) ck_assert(fabsf(ps.grad[i] - 2 * once[i]) < 1e-6f);
    /* bias gradient: rows summed = 2 per output */
    ck_assert(fabsf(ps.grad[ps.info[1].offset] - 4.0f) < 1e-6f);   /* 2 rows x 2 uses */
    /* no-grad: same values, nothing recorded */
    vt_graph_reset(&g);
    vt_graph_set_grad(&g, false);
    in = vt_var_wrap(&g, x, 2, (int64_t[]){2, 4}, "x");
    vt_var *y3 = vt_linear(&g, in, &ps.vars[0], &ps.vars[1]);
    ck_assert_int_eq(g.nnodes, 0);
    ck_assert_int_eq(memcmp(y3->val.data, y1->val.data, 0), 0);
    ck_assert(!y3->requires_grad);
    ck_assert_int_eq(vt_backward(&g, vt_sum(&g, y3)), VT_ERR);
    vt_graph_free(&g);
    vt_paramset_free(&ps);
}
END_TEST

START_TEST(errors_name_the_op_and_shapes)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    float a[24] = {0}, b[24] = {0};
    vt_var *x = vt_var_wrap(&g, a, 2, (int64_t[]){4, 6}, "x");
    vt_var *w = vt_var_wrap(&g, b, 2, (int64_t[]){3, 5}, "w");
    ck_assert_ptr_null(vt_linear(&g, x, w, NULL));
    ck_assert_msg(strstr(vt_errmsg(), "linear") && strstr(vt_errmsg(), "(3, 5)") && strstr(vt_errmsg(), "(4, 6)"), "%s",
                  vt_errmsg());
    ck_assert_ptr_null(vt_matmul(&g, x, w));
    ck_assert(strstr(vt_errmsg(), "matmul") && strstr(vt_errmsg(), "(4, 6)"));
    ck_assert_ptr_null(vt_add(&g, x, w));
    ck_assert(strstr(vt_errmsg(), "add") != NULL);
    ck_assert_ptr_null(vt_gelu(&g, NULL, VT_GELU_ERF));
    ck_assert(strstr(vt_errmsg(), "gelu: input 0 is NULL") != NULL);
    ck_assert_ptr_null(vt_attention(&g, x, 2));
    ck_assert(strstr(vt_errmsg(), "attention") != NULL);
    int labels[4] = {0, 1, 9, 0};
    ck_assert_ptr_null(vt_cross_entropy(&g, x, labels, 0));
    ck_assert(strstr(vt_errmsg(), "label 9") != NULL);
    ck_assert_ptr_null(vt_reshape(&g, x, 2, (int64_t[]){5, 5}));
    ck_assert(strstr(vt_errmsg(), "reshape") != NULL);
    x->requires_grad = true;
    vt_var *y = vt_exp(&g, x);
    ck_assert_int_eq(vt_backward(&g, y), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "scalar") != NULL);
    for (int op = 0; op < VT_OP_COUNT; op++) ck_assert_str_ne(vt_op_name((vt_op)op), "unknown-op");
    vt_graph_free(&g);
}
END_TEST

START_TEST(arena_steady_state)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 12);   /* deliberately small: the first steps grow it */
    float x[64 * 16], w[32 * 16];
    vt_rng r;
    vt_rng_seed(&r, 3);
    tu_fill_uniform(&r, x, 64 * 16, -1, 1);
    tu_fill_uniform(&r, w, 32 * 16, -1, 1);
    int mallocs_after_2 = 0;
    for (int step = 0; step < 6; step++) {
        vt_graph_reset(&g);
        vt_var *in = vt_var_wrap(&g, x, 2, (int64_t[]){64, 16}, "x");
        vt_var *wv = vt_var_wrap(&g, w, 2, (int64_t[]){32, 16}, "w");
        wv->requires_grad = true;
        vt_var *y = vt_gelu(&g, vt_linear(&g, in, wv, NULL), VT_GELU_ERF);
        ck_assert_int_eq(vt_backward(&g, vt_mean(&g, y)), VT_OK);
        if (step == 1) mallocs_after_2 = g.arena.nmallocs;
    }
    ck_assert_int_eq(g.arena.nmallocs, mallocs_after_2);
    vt_graph_free(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("autograd");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fused_ops);
    tcase_add_test(tc, general_ops);
    tcase_add_test(tc, checker_catches_wrong_gradients);
    tcase_add_test(tc, accumulation_nograd_params);
    tcase_add_test(tc, errors_name_the_op_and_shapes);
    tcase_add_test(tc, arena_steady_state);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
