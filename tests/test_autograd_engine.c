/* test_autograd_engine.c - the engine's bookkeeping, without the op table of test_autograd.c:
 * parameters of a vt_paramset (gradients at the right offsets of the flat buffer), error messages
 * naming op and shapes, the op name table, an unknown op's backward, the arena's steady state. */
#include "testutil.h"
#include "autograd/autograd.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ------------------------------------------------------------------ parameters in the flat buffers */
START_TEST(paramset_gradients_in_flat_buffer)
{
    vt_paramset ps;
    vt_paramset_init(&ps);
    ck_assert_int_eq(vt_paramset_add(&ps, "fc.weight", 2, (int64_t[]){5, 7}), 0);   /* 35 floats: padded */
    ck_assert_int_eq(vt_paramset_add(&ps, "fc.bias", 1, (int64_t[]){5}), 1);
    ck_assert_int_eq(vt_paramset_add(&ps, "unused", 2, (int64_t[]){3, 3}), 2);
    ck_assert_int_eq(vt_paramset_add(&ps, "norm.weight", 1, (int64_t[]){5}), 3);
    ck_assert_int_eq(vt_paramset_add(&ps, "norm.bias", 1, (int64_t[]){5}), 4);
    ck_assert_int_eq(vt_paramset_add(&ps, "fc.bias", 1, (int64_t[]){5}), -1);
    ck_assert_msg(strstr(vt_errmsg(), "fc.bias") && strstr(vt_errmsg(), "twice"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_paramset_add(&ps, "bad", 0, (int64_t[]){1}), -1);
    ck_assert_int_eq(vt_paramset_alloc(&ps), VT_OK);
    ck_assert_int_eq(vt_paramset_add(&ps, "late", 1, (int64_t[]){2}), -1);
    ck_assert(strstr(vt_errmsg(), "late") != NULL);
    ck_assert_int_eq(ps.count, 5);
    ck_assert_int_eq(vt_paramset_find(&ps, "norm.bias"), 4);
    ck_assert_int_eq(vt_paramset_find(&ps, "nope"), -1);
    int64_t expect_off = 0;
    for (int i = 0; i < ps.count; i++) {
        ck_assert_int_eq(ps.info[i].offset, expect_off);
        ck_assert_int_eq(ps.info[i].offset % 16, 0);
        ck_assert_ptr_eq(ps.vars[i].val.data, ps.data + ps.info[i].offset);
        ck_assert_ptr_eq(ps.vars[i].grad, ps.grad + ps.info[i].offset);
        ck_assert(ps.vars[i].requires_grad);
        ck_assert_uint_eq((uintptr_t)ps.vars[i].val.data % 64, 0);
        expect_off += (ps.info[i].numel + 15) / 16 * 16;
    }
    ck_assert_int_eq(ps.numel, expect_off);

    vt_rng r;
    vt_rng_seed(&r, 5);
    tu_fill_uniform(&r, ps.data, ps.numel, -1, 1);
    float x[2 * 3 * 7], w[2 * 3 * 5];
    tu_fill_uniform(&r, x, 42, -1, 1);
    tu_fill_uniform(&r, w, 30, -1, 1);

    /* the same model on plain heap copies of the parameters: the reference gradients */
    int ip[4] = {0, 1, 3, 4};
    float *copy[4], *gref[4];
    vt_var plain[4];
    for (int k = 0; k < 4; k++) {
        vt_param_info *p = &ps.info[ip[k]];
        copy[k] = malloc(sizeof(float) * (size_t)p->numel);
        gref[k] = calloc((size_t)p->numel, sizeof(float));
        memcpy(copy[k], ps.data + p->offset, sizeof(float) * (size_t)p->numel);
        plain[k].val = vt_tensor_view(copy[k], p->ndim, p->shape, p->name);
        plain[k].grad = gref[k];
        plain[k].requires_grad = true;
    }
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    for (int pass = 0; pass < 3; pass++) {
        vt_var *pv[4];
        for (int k = 0; k < 4; k++) pv[k] = pass == 0 ? &plain[k] : &ps.vars[ip[k]];
        vt_graph_reset(&g);
        vt_var *xv = vt_var_wrap(&g, x, 3, (int64_t[]){2, 3, 7}, "x");
        vt_var *y = vt_layernorm(&g, vt_gelu(&g, vt_linear(&g, xv, pv[0], pv[1]), VT_GELU_ERF), pv[2], pv[3], 1e-6f);
        vt_var *wv = vt_var_wrap(&g, w, 3, (int64_t[]){2, 3, 5}, "w");
        ck_assert_int_eq(vt_backward(&g, vt_sum(&g, vt_mul(&g, y, wv))), VT_OK);
        /* the paramset's vars keep pointing into the flat buffer */
        for (int i = 0; i < ps.count; i++) ck_assert_ptr_eq(ps.vars[i].grad, ps.grad + ps.info[i].offset);
        if (pass == 0) continue;
        float mult = (float)pass;   /* the second pass accumulates on top of the first */
        for (int k = 0; k < 4; k++) {
            vt_param_info *p = &ps.info[ip[k]];
            for (int64_t e = 0; e < p->numel; e++)
                ck_assert_msg(fabsf(ps.grad[p->offset + e] - mult * gref[k][e]) <= 1e-6f * (1 + fabsf(gref[k][e])),
                              "%s[%lld]: flat %g, expected %g", p->name, (long long)e, ps.grad[p->offset + e],
                              mult * gref[k][e]);
            ck_assert(tu_maxabs(gref[k], p->numel) > 0);
        }
        /* the unused parameter and every padding float got nothing */
        for (int i = 0; i < ps.count; i++) {
            vt_param_info *p = &ps.info[i];
            int64_t end = i + 1 < ps.count ? ps.info[i + 1].offset : ps.numel;
            for (int64_t e = p->offset + (i == 2 ? 0 : p->numel); e < end; e++) ck_assert_float_eq(ps.grad[e], 0.0f);
        }
    }
    vt_paramset_zero_grad(&ps);
    ck_assert(tu_maxabs(ps.grad, ps.numel) == 0);
    vt_graph_free(&g);
    for (int k = 0; k < 4; k++) {
        free(copy[k]);
        free(gref[k]);
    }
    vt_paramset_free(&ps);
    ck_assert_ptr_null(ps.data);
    vt_paramset_free(&ps);   /* twice is harmless */
}
END_TEST

/* ------------------------------------------------------------------ errors */
#define ASSERT_MSG_HAS(...)                                                                  \
    do {                                                                                     \
        const char *needles_[] = {__VA_ARGS__};                                              \
        for (size_t k_ = 0; k_ < sizeof needles_ / sizeof needles_[0]; k_++)                 \
            ck_assert_msg(strstr(vt_errmsg(), needles_[k_]) != NULL, "message \"%s\" lacks \"%s\"", \
                          vt_errmsg(), needles_[k_]);                                        \
    } while (0)

START_TEST(errors_name_the_op_and_shapes)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    static float buf[8][256];
    vt_var *x46 = vt_var_wrap(&g, buf[0], 2, (int64_t[]){4, 6}, "x");
    vt_var *w35 = vt_var_wrap(&g, buf[1], 2, (int64_t[]){3, 5}, "w");
    vt_var *w36 = vt_var_wrap(&g, buf[2], 2, (int64_t[]){3, 6}, "w");
    vt_var *b4 = vt_var_wrap(&g, buf[3], 1, (int64_t[]){4}, "b");
    vt_var *v5 = vt_var_wrap(&g, buf[4], 1, (int64_t[]){5}, "v");
    vt_var *x3 = vt_var_wrap(&g, buf[5], 3, (int64_t[]){2, 5, 4}, "t");
    vt_var *img = vt_var_wrap(&g, buf[6], 4, (int64_t[]){1, 3, 5, 8}, "img");

    ck_assert_ptr_null(vt_linear(&g, x46, w35, NULL));
    ASSERT_MSG_HAS("linear", "(3, 5)", "(4, 6)");
    ck_assert_ptr_null(vt_linear(&g, x46, w36, b4));
    ASSERT_MSG_HAS("linear", "bias", "(4)", "(3)");
    ck_assert_ptr_null(vt_layernorm(&g, x46, v5, v5, 1e-6f));
    ASSERT_MSG_HAS("layernorm", "(5)", "(4, 6)");
    ck_assert_ptr_null(vt_attention(&g, x46, 2));
    ASSERT_MSG_HAS("attention", "(4, 6)");
    ck_assert_ptr_null(vt_attention(&g, vt_var_wrap(&g, buf[0], 3, (int64_t[]){1, 2, 12}, "qkv"), 3));
    ASSERT_MSG_HAS("attention", "(1, 2, 12)", "3 heads");
    ck_assert_ptr_null(vt_attention(&g, vt_var_wrap(&g, buf[0], 3, (int64_t[]){1, 2, 12}, "qkv"), 0));
    ASSERT_MSG_HAS("attention");
    ck_assert_ptr_null(vt_cross_entropy(&g, x3, (int[]){0, 0}, 0.0f));
    ASSERT_MSG_HAS("cross_entropy", "(2, 5, 4)");
    ck_assert_ptr_null(vt_cross_entropy(&g, x46, (int[]){0, 1, 6, 0}, 0.0f));
    ASSERT_MSG_HAS("cross_entropy", "label 6", "sample 2");
    ck_assert_ptr_null(vt_cross_entropy(&g, x46, (int[]){0, -1, 0, 0}, 0.0f));
    ASSERT_MSG_HAS("cross_entropy", "label -1");
    ck_assert_ptr_null(vt_cross_entropy(&g, x46, NULL, 0.0f));
    ASSERT_MSG_HAS("cross_entropy", "labels");
    ck_assert_ptr_null(vt_cross_entropy(&g, x46, (int[]){0, 0, 0, 0}, 1.0f));
    ASSERT_MSG_HAS("cross_entropy", "smoothing");
    ck_assert_ptr_null(vt_patchify(&g, img, 4));
    ASSERT_MSG_HAS("patchify", "(1, 3, 5, 8)", "4");
    ck_assert_ptr_null(vt_patchify(&g, x3, 1));
    ASSERT_MSG_HAS("patchify", "(2, 5, 4)");
    ck_assert_ptr_null(vt_embed(&g, x3, v5, v5));
    ASSERT_MSG_HAS("embed", "(2, 5, 4)", "(5)");
    ck_assert_ptr_null(vt_embed(&g, x46, v5, v5));
    ASSERT_MSG_HAS("embed", "(4, 6)");
    ck_assert_ptr_null(vt_pool(&g, x3, VT_POOL_MEAN, 5));
    ASSERT_MSG_HAS("pool", "(2, 5, 4)");
    ck_assert_ptr_null(vt_pool(&g, x46, VT_POOL_TOKEN, 0));
    ASSERT_MSG_HAS("pool", "(4, 6)");
    ck_assert_ptr_null(vt_add(&g, x46, w35));
    ASSERT_MSG_HAS("add", "(4, 6)", "(3, 5)");
    ck_assert_ptr_null(vt_sub(&g, x46, b4));   /* 4 is the leading, not the trailing, dim */
    ASSERT_MSG_HAS("sub", "(4, 6)", "(4)");
    ck_assert_ptr_null(vt_mul(&g, w36, x46));  /* b larger than a */
    ASSERT_MSG_HAS("mul", "(3, 6)", "(4, 6)");
    ck_assert_ptr_null(vt_matmul(&g, x46, w35));
    ASSERT_MSG_HAS("matmul", "(4, 6)", "(3, 5)");
    ck_assert_ptr_null(vt_matmul(&g, x46, x3));
    ASSERT_MSG_HAS("matmul", "(4, 6)", "(2, 5, 4)");
    ck_assert_ptr_null(vt_reshape(&g, x46, 2, (int64_t[]){5, 5}));
    ASSERT_MSG_HAS("reshape", "(4, 6)", "(5, 5)");
    ck_assert_ptr_null(vt_transpose(&g, x46, 0, 2));
    ASSERT_MSG_HAS("transpose", "2");

    /* NULL inputs, for every op */
    ck_assert_ptr_null(vt_linear(&g, NULL, w35, NULL));
    ASSERT_MSG_HAS("linear: input 0 is NULL");
    ck_assert_ptr_null(vt_linear(&g, x46, NULL, NULL));
    ASSERT_MSG_HAS("linear: input 1 is NULL");
    ck_assert_ptr_null(vt_layernorm(&g, x46, NULL, v5, 1e-6f));
    ASSERT_MSG_HAS("layernorm: input 1 is NULL");
    ck_assert_ptr_null(vt_layernorm(&g, x46, v5, NULL, 1e-6f));
    ASSERT_MSG_HAS("layernorm: input 2 is NULL");
    ck_assert_ptr_null(vt_gelu(&g, NULL, VT_GELU_ERF));
    ASSERT_MSG_HAS("gelu: input 0 is NULL");
    ck_assert_ptr_null(vt_attention(&g, NULL, 1));
    ASSERT_MSG_HAS("attention: input 0 is NULL");
    ck_assert_ptr_null(vt_token_keep(&g, NULL, 1, (int32_t[]){1}, 1));
    ASSERT_MSG_HAS("token_keep: input 0 is NULL");
    ck_assert_ptr_null(vt_token_fill(&g, NULL, v5, (int32_t[]){-1}, 1));
    ASSERT_MSG_HAS("token_fill: input 0 is NULL");
    ck_assert_ptr_null(vt_softmax(&g, NULL));
    ASSERT_MSG_HAS("softmax: input 0 is NULL");
    ck_assert_ptr_null(vt_cross_entropy(&g, NULL, (int[]){0}, 0.0f));
    ASSERT_MSG_HAS("cross_entropy: input 0 is NULL");
    ck_assert_ptr_null(vt_patchify(&g, NULL, 2));
    ASSERT_MSG_HAS("patchify: input 0 is NULL");
    ck_assert_ptr_null(vt_embed(&g, x3, NULL, v5));
    ASSERT_MSG_HAS("embed: input 1 is NULL");
    ck_assert_ptr_null(vt_embed(&g, x3, v5, NULL));
    ASSERT_MSG_HAS("embed: input 2 is NULL");
    ck_assert_ptr_null(vt_pool(&g, NULL, VT_POOL_TOKEN, 0));
    ASSERT_MSG_HAS("pool: input 0 is NULL");
    ck_assert_ptr_null(vt_add(&g, x46, NULL));
    ASSERT_MSG_HAS("add: input 1 is NULL");
    ck_assert_ptr_null(vt_sub(&g, NULL, x46));
    ASSERT_MSG_HAS("sub: input 0 is NULL");
    ck_assert_ptr_null(vt_mul(&g, x46, NULL));
    ASSERT_MSG_HAS("mul: input 1 is NULL");
    ck_assert_ptr_null(vt_scale(&g, NULL, 2.0f));
    ASSERT_MSG_HAS("scale: input 0 is NULL");
    ck_assert_ptr_null(vt_matmul(&g, NULL, w35));
    ASSERT_MSG_HAS("matmul: input 0 is NULL");
    ck_assert_ptr_null(vt_sum(&g, NULL));
    ASSERT_MSG_HAS("sum: input 0 is NULL");
    ck_assert_ptr_null(vt_mean(&g, NULL));
    ASSERT_MSG_HAS("mean: input 0 is NULL");
    ck_assert_ptr_null(vt_reshape(&g, NULL, 1, (int64_t[]){4}));
    ASSERT_MSG_HAS("reshape: input 0 is NULL");
    ck_assert_ptr_null(vt_transpose(&g, NULL, 0, 1));
    ASSERT_MSG_HAS("transpose: input 0 is NULL");
    ck_assert_ptr_null(vt_exp(&g, NULL));
    ASSERT_MSG_HAS("exp: input 0 is NULL");
    ck_assert_ptr_null(vt_log(&g, NULL));
    ASSERT_MSG_HAS("log: input 0 is NULL");
    ck_assert_ptr_null(vt_tanh(&g, NULL));
    ASSERT_MSG_HAS("tanh: input 0 is NULL");
    ck_assert_ptr_null(vt_relu(&g, NULL));
    ASSERT_MSG_HAS("relu: input 0 is NULL");
    /* errors propagate: an op fed a failed op's NULL fails too */
    ck_assert_ptr_null(vt_sum(&g, vt_linear(&g, x46, w35, NULL)));
    ASSERT_MSG_HAS("sum: input 0 is NULL");
    ck_assert_ptr_null(vt_var_wrap(&g, NULL, 1, (int64_t[]){3}, "data"));
    ASSERT_MSG_HAS("data", "NULL");
    ck_assert_ptr_null(vt_var_new(&g, 5, (int64_t[]){1, 1, 1, 1, 1}, "big", false));
    ASSERT_MSG_HAS("big", "5 dimensions");

    /* backward: refused on a non-scalar, on NULL, on a loss that needs no gradient */
    x46->requires_grad = true;
    vt_var *y = vt_exp(&g, x46);
    ck_assert_int_eq(vt_backward(&g, y), VT_ERR);
    ASSERT_MSG_HAS("backward", "scalar", "(4, 6)");
    ck_assert_ptr_null(x46->grad);
    ck_assert_int_eq(vt_backward(&g, NULL), VT_ERR);
    ASSERT_MSG_HAS("backward", "NULL");
    vt_var *c = vt_sum(&g, w35);
    ck_assert_int_eq(vt_backward(&g, c), VT_ERR);
    ASSERT_MSG_HAS("backward", "requires grad");
    ck_assert_int_eq(vt_backward(&g, vt_sum(&g, y)), VT_OK);
    ck_assert_ptr_nonnull(x46->grad);
    vt_graph_free(&g);
}
END_TEST

START_TEST(op_name_table)
{
    for (int i = 0; i < VT_OP_COUNT; i++) {
        const char *n = vt_op_name((vt_op)i);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_ne(n, "unknown-op");
        ck_assert_int_gt((int)strlen(n), 0);
        for (int j = 0; j < i; j++) ck_assert_str_ne(n, vt_op_name((vt_op)j));
    }
    ck_assert_str_eq(vt_op_name(VT_OP_COUNT), "unknown-op");
    ck_assert_str_eq(vt_op_name((vt_op)-1), "unknown-op");
    ck_assert_str_eq(vt_op_name(VT_OP_CROSSENTROPY), "cross_entropy");
    ck_assert_str_eq(vt_op_name(VT_OP_LINEAR), "linear");
}
END_TEST

/* a node whose op has no backward (a corrupted tape) stops the process naming it, never a silent skip */
START_TEST(backward_of_unknown_op_aborts)
{
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    vt_var *x = vt_var_new(&g, 1, (int64_t[]){3}, "x", true);
    x->requires_grad = true;
    vt_var *y = vt_exp(&g, x);
    ck_assert_int_eq(g.nnodes, 1);
    g.nodes[0].op = VT_OP_COUNT;
    vt_backward(&g, vt_sum(&g, y));   /* aborts in the exp node's turn */
    vt_graph_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ arena steady state */
START_TEST(arena_steady_state)
{
    /* a pre-norm attention block plus head on (8, 65, 64): a few MiB per step, more than the
     * arena's first chunk, so the first step grows it and the reset merges the chunks */
    enum { B = 8, T = 65, C = 64, NH = 4, K = 10 };
    vt_paramset ps;
    vt_paramset_init(&ps);
    vt_paramset_add(&ps, "ln.weight", 1, (int64_t[]){C});
    vt_paramset_add(&ps, "ln.bias", 1, (int64_t[]){C});
    vt_paramset_add(&ps, "qkv.weight", 2, (int64_t[]){3 * C, C});
    vt_paramset_add(&ps, "qkv.bias", 1, (int64_t[]){3 * C});
    vt_paramset_add(&ps, "proj.weight", 2, (int64_t[]){C, C});
    vt_paramset_add(&ps, "head.weight", 2, (int64_t[]){K, C});
    ck_assert_int_eq(vt_paramset_alloc(&ps), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 3);
    tu_fill_uniform(&r, ps.data, ps.numel, -0.1f, 0.1f);
    float *x = malloc(sizeof(float) * B * T * C);
    tu_fill_uniform(&r, x, B * T * C, -1, 1);
    int labels[B];
    for (int b = 0; b < B; b++) labels[b] = b % K;

    vt_graph g;
    ck_assert_int_eq(vt_graph_init(&g, 1 << 12), VT_OK);   /* deliberately small */
    int mallocs_after_2 = -1, cap_after_2 = -1;
    size_t capacity_after_2 = 0;
    float loss0 = 0;
    for (int step = 0; step < 8; step++) {
        vt_graph_reset(&g);
        vt_paramset_zero_grad(&ps);
        vt_var *xv = vt_var_wrap(&g, x, 3, (int64_t[]){B, T, C}, "x");
        vt_var *h = vt_layernorm(&g, xv, &ps.vars[0], &ps.vars[1], 1e-6f);
        h = vt_attention(&g, vt_linear(&g, h, &ps.vars[2], &ps.vars[3]), NH);
        h = vt_add(&g, xv, vt_linear(&g, h, &ps.vars[4], NULL));
        h = vt_gelu(&g, h, VT_GELU_ERF);
        vt_var *l = vt_cross_entropy(&g, vt_linear(&g, vt_pool(&g, h, VT_POOL_TOKEN, 0), &ps.vars[5], NULL), labels, 0.1f);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(vt_backward(&g, l), VT_OK);
        if (step == 0) {
            ck_assert_int_ge(g.arena.nmallocs, 2);   /* the step did outgrow the first chunk */
            loss0 = l->val.data[0];
        }
        ck_assert_float_eq(l->val.data[0], loss0);
        if (step == 1) {
            mallocs_after_2 = g.arena.nmallocs;
            cap_after_2 = g.cap;
            capacity_after_2 = vt_arena_capacity(&g.arena);
        }
        if (step >= 2) {
            ck_assert_int_eq(g.arena.nmallocs, mallocs_after_2);
            ck_assert_int_eq(g.cap, cap_after_2);
            ck_assert_uint_eq(vt_arena_capacity(&g.arena), capacity_after_2);
        }
    }
    vt_graph_free(&g);
    vt_paramset_free(&ps);
    free(x);
}
END_TEST

void add_autograd_engine_tests(TCase *te)
{
    tcase_add_test(te, paramset_gradients_in_flat_buffer);
    tcase_add_test(te, errors_name_the_op_and_shapes);
    tcase_add_test(te, op_name_table);
    tcase_add_test_raise_signal(te, backward_of_unknown_op_aborts, SIGABRT);
    tcase_add_test(te, arena_steady_state);
}
