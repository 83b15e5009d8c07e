/* test_vit.c - the ViT model: presets, timm names and counts, init, forward/backward against
 * finite differences, no-grad evaluation, the golden checks (and that they can fail). */
#include "testutil.h"
#include "nn/nn.h"
#include "golden/golden.h"
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tiny_config(vt_vit_config *c)
{
    vt_vit_config_defaults(c);
    c->img_h = 8;
    c->img_w = 12;   /* non-square: grid 2 x 3 */
    c->patch = 4;
    c->in_chans = 2;
    c->num_classes = 5;
    c->embed_dim = 8;
    c->depth = 2;
    c->num_heads = 2;
    c->mlp_ratio = 1.5;
}

START_TEST(preset_param_counts_match_timm)
{
    /* timm's counts at 224x224 with 1000 classes */
    static const struct { const char *name; int64_t count; } cases[] = {
        {"ti16", 5717416}, {"s16", 22050664}, {"b16", 86567656}, {"l16", 304326632}, {"h14", 632045800}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vt_vit_config c;
        vt_vit_config_defaults(&c);
        ck_assert_int_eq(vt_vit_preset(&c, cases[i].name), VT_OK);
        vt_vit m;
        ck_assert_msg(vt_vit_init(&m, &c) == VT_OK, "%s", vt_errmsg());
        ck_assert_msg(vt_vit_num_params(&m) == cases[i].count, "%s: %lld params, timm has %lld", cases[i].name,
                      (long long)vt_vit_num_params(&m), (long long)cases[i].count);
        vt_vit_free(&m);
    }
    vt_vit_config c;
    vt_vit_config_defaults(&c);
    ck_assert_int_eq(vt_vit_preset(&c, "b17"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "b17") != NULL);
}
END_TEST

START_TEST(timm_names_and_layouts)
{
    vt_vit_config c;
    tiny_config(&c);
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_var *v = vt_vit_param(&m, "blocks.1.attn.qkv.weight");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->val.shape[0], 24);
    ck_assert_int_eq(v->val.shape[1], 8);
    v = vt_vit_param(&m, "patch_embed.proj.weight");
    ck_assert_int_eq(v->val.ndim, 4);
    ck_assert_int_eq(v->val.shape[1], 2);
    ck_assert_int_eq(v->val.shape[3], 4);
    v = vt_vit_param(&m, "pos_embed");
    ck_assert_int_eq(v->val.shape[1], 2 * 3 + 1);
    v = vt_vit_param(&m, "blocks.0.mlp.fc1.weight");
    ck_assert_int_eq(v->val.shape[0], 12);
    ck_assert_ptr_null(vt_vit_param(&m, "blocks.2.attn.qkv.weight"));
    ck_assert(strstr(vt_errmsg(), "blocks.2.attn.qkv.weight") != NULL);
    ck_assert_int_eq(m.params.count, 4 + 12 * 2 + 4);
    vt_vit_free(&m);
    c.embed_dim = 9;   /* not divisible by 2 heads */
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "num_heads") != NULL);
    tiny_config(&c);
    c.img_w = 10;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "patch") != NULL);
}
END_TEST

START_TEST(init_is_timm_and_seeded)
{
    vt_vit_config c;
    vt_vit_config_defaults(&c);
    vt_vit_preset(&c, "ti16");
    c.depth = 2;
    vt_vit a, b;
    ck_assert_int_eq(vt_vit_init(&a, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&b, &c), VT_OK);
    vt_rng r1, r2;
    vt_rng_seed(&r1, 7);
    vt_rng_seed(&r2, 7);
    vt_vit_init_weights(&a, &r1);
    vt_vit_init_weights(&b, &r2);
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, (size_t)a.params.numel * sizeof(float)), 0);
    vt_rng_seed(&r2, 8);
    vt_vit_init_weights(&b, &r2);
    ck_assert_int_ne(memcmp(a.params.data, b.params.data, (size_t)a.params.numel * sizeof(float)), 0);
    /* statistics */
    vt_var *w = vt_vit_param(&a, "blocks.0.attn.qkv.weight");
    int64_t n = vt_tensor_numel(&w->val);
    double s2 = 0;
    for (int64_t i = 0; i < n; i++) s2 += (double)w->val.data[i] * w->val.data[i];
    ck_assert_msg(fabs(sqrt(s2 / n) - 0.02) < 0.001, "qkv std %g", sqrt(s2 / n));
    vt_var *cls = vt_vit_param(&a, "cls_token");
    ck_assert(tu_maxabs(cls->val.data, 192) < 1e-5 && tu_maxabs(cls->val.data, 192) > 0);
    vt_var *bias = vt_vit_param(&a, "blocks.1.mlp.fc2.bias");
    ck_assert(tu_maxabs(bias->val.data, 192) == 0);
    vt_var *ln = vt_vit_param(&a, "blocks.1.norm2.weight");
    for (int i = 0; i < 192; i++) ck_assert_float_eq(ln->val.data[i], 1.0f);
    ln = vt_vit_param(&a, "norm.weight");
    for (int i = 0; i < 192; i++) ck_assert_float_eq(ln->val.data[i], 1.0f);
    vt_var *pe = vt_vit_param(&a, "patch_embed.proj.weight");
    double bound = 1.0 / sqrt(3.0 * 16 * 16);
    ck_assert(tu_maxabs(pe->val.data, vt_tensor_numel(&pe->val)) <= bound);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

typedef struct {
    vt_vit *m;
    float *img;
    int *labels;
    int B;
} fd_ctx;

static vt_var *model_loss(vt_graph *g, vt_var **in, int nin, void *vctx)
{
    (void)in;
    (void)nin;
    fd_ctx *c = vctx;
    const vt_vit_config *mc = &c->m->cfg;
    vt_var *x = vt_var_wrap(g, c->img, 4, (int64_t[]){c->B, mc->in_chans, mc->img_h, mc->img_w}, "img");
    vt_var *logits = vt_vit_forward(c->m, g, x, NULL);
    return logits ? vt_cross_entropy(g, logits, c->labels, 0.1f) : NULL;
}

/* the whole model's parameter gradients against finite differences, for both poolings and GELUs, and
 * with fc_norm (every parameter, fc_norm.weight/bias among them) */
START_TEST(model_gradients_match_finite_differences)
{
    for (int variant = 0; variant < 3; variant++) {
        vt_vit_config c;
        tiny_config(&c);
        c.depth = 1;
        if (variant) {
            c.pool = VT_POOL_MEAN;
            c.gelu = variant == 1 ? VT_GELU_TANH : VT_GELU_ERF;
            c.fc_norm = variant == 2;
        }
        vt_vit m;
        ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
        ck_assert_int_eq(vt_paramset_find(&m.params, "fc_norm.weight") >= 0, variant == 2);
        vt_rng r;
        vt_rng_seed(&r, 3 + variant);
        /* larger weights than init so that every path matters */
        tu_fill_uniform(&r, m.params.data, m.params.numel, -0.5f, 0.5f);
        int B = 2;
        float img[2 * 2 * 8 * 12];
        tu_fill_uniform(&r, img, 2 * 2 * 8 * 12, -1, 1);
        int labels[2] = {1, 4};
        fd_ctx ctx = {&m, img, labels, B};
        vt_var *ins[64];
        int nin = 0;
        for (int i = 0; i < m.params.count; i++) ins[nin++] = &m.params.vars[i];
        char desc[256];
        double worst = vt_gradcheck(model_loss, &ctx, ins, nin, 1e-2, 2e-3, 2e-2, desc, sizeof desc);
        ck_assert_msg(worst <= 1.0, "variant %d: worst %g: %s (%s)", variant, worst, desc,
                      m.params.info[0].name);
        vt_vit_free(&m);
    }
}
END_TEST

START_TEST(nograd_matches_and_uses_less_memory)
{
    vt_vit_config c;
    tiny_config(&c);
    c.depth = 6;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 1);
    vt_vit_init_weights(&m, &r);
    float img[3 * 2 * 8 * 12];
    tu_fill_uniform(&r, img, 3 * 2 * 8 * 12, -1, 1);
    int64_t shape[4] = {3, 2, 8, 12};
    vt_graph g1, g2;
    vt_graph_init(&g1, 1 << 16);
    vt_graph_init(&g2, 1 << 16);
    vt_var *l1 = vt_vit_forward(&m, &g1, vt_var_wrap(&g1, img, 4, shape, "x"), NULL);
    vt_graph_set_grad(&g2, false);
    vt_var *l2 = vt_vit_forward(&m, &g2, vt_var_wrap(&g2, img, 4, shape, "x"), NULL);
    ck_assert_ptr_nonnull(l1);
    ck_assert_ptr_nonnull(l2);
    ck_assert_int_eq(memcmp(l1->val.data, l2->val.data, 3 * 5 * sizeof(float)), 0);
    ck_assert_int_eq(g2.nnodes, 0);
    ck_assert_int_gt(g1.nnodes, 6 * 10);
    ck_assert_msg(g2.arena.peak * 3 < g1.arena.peak, "no-grad peak %zu vs %zu", g2.arena.peak, g1.arena.peak);
    vt_graph_free(&g1);
    vt_graph_free(&g2);
    vt_vit_free(&m);
}
END_TEST

/* Memory savers: [train] recompute_attention, and releasing intermediate gradients as backward passes
 * them (the default; retain_grads keeps them): the same loss and bitwise the same parameter gradients,
 * a smaller arena peak */
START_TEST(memory_savers_are_exact_and_smaller)
{
    vt_vit_config c;
    tiny_config(&c);
    c.img_h = c.img_w = 32;   /* 64 patches + class token: the T x T probabilities dominate */
    c.num_heads = 4;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 3);
    vt_vit_init_weights(&m, &r);
    enum { B = 3, N = B * 2 * 32 * 32 };
    static float img[N];
    tu_fill_uniform(&r, img, N, -1, 1);
    int labels[B] = {0, 4, 2};
    int64_t shape[4] = {B, 2, 32, 32};
    float *grads[3];
    float loss[3];
    size_t peak[3];
    for (int k = 0; k < 3; k++) {   /* 0 default, 1 recompute attention, 2 retain every gradient */
        vt_graph g;
        vt_graph_init(&g, 1 << 16);
        g.recompute_attention = k == 1;
        g.retain_grads = k == 2;
        vt_paramset_zero_grad(&m.params);
        vt_var *logits = vt_vit_forward(&m, &g, vt_var_wrap(&g, img, 4, shape, "x"), NULL);
        vt_var *l = logits ? vt_cross_entropy(&g, logits, labels, 0.1f) : NULL;
        ck_assert_msg(l && vt_backward(&g, l) == VT_OK, "%s", vt_errmsg());
        loss[k] = l->val.data[0];
        peak[k] = g.arena.peak;
        grads[k] = malloc(sizeof(float) * (size_t)m.params.numel);
        memcpy(grads[k], m.params.grad, sizeof(float) * (size_t)m.params.numel);
        vt_graph_free(&g);
    }
    for (int k = 1; k < 3; k++) {
        ck_assert_msg(loss[0] == loss[k], "loss %.9g vs %.9g", loss[0], loss[k]);
        ck_assert_msg(memcmp(grads[0], grads[k], sizeof(float) * (size_t)m.params.numel) == 0,
                      "mode %d changed the gradients", k);
    }
    ck_assert_msg(peak[1] * 10 < peak[0] * 8, "arena peak %zu with recompute vs %zu stored", peak[1], peak[0]);
    ck_assert_msg(peak[0] * 100 < peak[2] * 95, "arena peak %zu releasing gradients vs %zu retaining", peak[0], peak[2]);
    for (int k = 0; k < 3; k++) free(grads[k]);
    vt_vit_free(&m);
}
END_TEST

/* Data-parallel replicas: the batch cut into 2 or 3 parts (5 images: uneven parts) gives the loss and
 * gradients of the single-graph step up to float summation order, adds into the gradient buffer
 * (accumulation), and is bitwise repeatable */
START_TEST(replicas_match_the_single_graph_step)
{
    vt_vit_config c;
    tiny_config(&c);
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 5);
    vt_vit_init_weights(&m, &r);
    enum { B = 5 };
    const int64_t per = (int64_t)c.in_chans * c.img_h * c.img_w;
    float *img = malloc(sizeof(float) * (size_t)(B * per));
    tu_fill_uniform(&r, img, B * per, -1, 1);
    int labels[B] = {0, 4, 2, 1, 3};
    const int64_t NP = m.params.numel;
    float *ref = malloc(sizeof(float) * (size_t)NP), *got = malloc(sizeof(float) * (size_t)NP);
    /* without and with patch dropout: the kept tokens follow the image's place in the batch, not the split */
    for (int pd = 0; pd < 2; pd++) {
        m.cfg.patch_drop_rate = 0.5 * pd;
        double ref_loss = 0;
        for (int n = 1; n <= 3; n++) {
            vt_vit_replicas rep;
            ck_assert_msg(vt_vit_replicas_init(&rep, &m, n, 1 << 16, false) == VT_OK, "%s", vt_errmsg());
            for (int rerun = 0; rerun < 2; rerun++) {
                double loss = 0;
                vt_paramset_zero_grad(&m.params);
                ck_assert_msg(vt_vit_replicas_train(&rep, img, labels, B, 0.1f, 0.5f, 77, &loss) == VT_OK, "%s", vt_errmsg());
                if (n == 1 && rerun == 0) {
                    memcpy(ref, m.params.grad, sizeof(float) * (size_t)NP);
                    ref_loss = loss;
                } else if (rerun == 1) {
                    ck_assert_msg(memcmp(got, m.params.grad, sizeof(float) * (size_t)NP) == 0, "drop %g, %d replicas: not repeatable",
                                  m.cfg.patch_drop_rate, n);
                } else {
                    ck_assert_msg(fabs(loss - ref_loss) <= 1e-6 * fabs(ref_loss), "drop %g, %d replicas: loss %.9g vs %.9g", m.cfg.patch_drop_rate, n, loss, ref_loss);
                    float scale = 0;
                    for (int64_t k = 0; k < NP; k++) scale = fmaxf(scale, fabsf(ref[k]));
                    for (int64_t k = 0; k < NP; k++)
                        ck_assert_msg(fabsf(m.params.grad[k] - ref[k]) <= 1e-5f * scale, "drop %g, %d replicas: grad %lld: %.9g vs %.9g", m.cfg.patch_drop_rate, n,
                                      (long long)k, m.params.grad[k], ref[k]);
                }
                memcpy(got, m.params.grad, sizeof(float) * (size_t)NP);
            }
            /* a second call adds: twice the gradient */
            double loss = 0;
            ck_assert_int_eq(vt_vit_replicas_train(&rep, img, labels, B, 0.1f, 0.5f, 77, &loss), VT_OK);
            float gs = 0;
            for (int64_t k = 0; k < NP; k++) gs = fmaxf(gs, fabsf(got[k]));
            for (int64_t k = 0; k < NP; k++)
                ck_assert_msg(fabsf(m.params.grad[k] - 2 * got[k]) <= 1e-5f * gs, "drop %g, %d replicas: no accumulation at %lld: %.9g vs 2 x %.9g",
                              m.cfg.patch_drop_rate, n, (long long)k, m.params.grad[k], got[k]);
            /* a bad label is reported with the replica's images */
            int bad[B] = {0, 1, 2, 3, 99};
            ck_assert_int_ne(vt_vit_replicas_train(&rep, img, bad, B, 0.f, 1.f, 77, &loss), VT_OK);
            ck_assert_msg(strstr(vt_errmsg(), "99"), "%s", vt_errmsg());
            vt_vit_replicas_free(&rep);
        }
    }
    m.cfg.patch_drop_rate = 0;
    vt_vit_replicas rep;
    ck_assert_int_ne(vt_vit_replicas_init(&rep, &m, 0, 1 << 16, false), VT_OK);
    /* evaluation-only replicas have no gradient buffers and refuse a training step */
    ck_assert_int_eq(vt_vit_replicas_init_eval(&rep, &m, 2, 1 << 16), VT_OK);
    ck_assert_ptr_null(rep.grad_base);
    double l2 = 0;
    ck_assert_int_eq(vt_vit_replicas_train(&rep, img, labels, B, 0.1f, 0.5f, 0, &l2), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "evaluation only"), "%s", vt_errmsg());
    vt_vit_replicas_free(&rep);
    free(img);
    free(ref);
    free(got);
    vt_vit_free(&m);
}
END_TEST

/* Patch dropout (timm's PatchDropout): timm's kept count, uniformly random ascending subsets that
 * depend on (key, image) only, evaluation untouched, and a training pass that really drops tokens */
START_TEST(patch_dropout)
{
    vt_vit_config c;
    tiny_config(&c);
    /* timm: num_keep = max(1, int(L * (1 - prob))) */
    ck_assert_int_eq(vt_vit_patch_keep_count(&c, 49), 49);
    c.patch_drop_rate = 0.25;
    ck_assert_int_eq(vt_vit_patch_keep_count(&c, 49), 36);
    c.patch_drop_rate = 0.5;
    ck_assert_int_eq(vt_vit_patch_keep_count(&c, 196), 98);
    c.patch_drop_rate = 0.9;
    ck_assert_int_eq(vt_vit_patch_keep_count(&c, 6), 1);
    c.patch_drop_rate = 1.0;
    ck_assert_int_ne(vt_vit_config_check(&c), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "patch_drop_rate"), "%s", vt_errmsg());

    enum { N = 49, K = 36, DRAWS = 20000 };
    int count[N + 1] = {0};
    int32_t keep[K], again[K];
    int differ = 0;
    for (int d = 0; d < DRAWS; d++) {
        vt_vit_patch_keep(keep, N, K, 1, 12345, d);
        for (int j = 0; j < K; j++) {
            ck_assert_msg(keep[j] >= 1 && keep[j] <= N && (j == 0 || keep[j] > keep[j - 1]), "draw %d: index %d = %d", d, j,
                          keep[j]);
            count[keep[j]]++;
        }
        if (d < 100) {
            vt_vit_patch_keep(again, N, K, 1, 12345, d);
            ck_assert_msg(memcmp(keep, again, sizeof keep) == 0, "draw %d is not a function of (key, image)", d);
            vt_vit_patch_keep(again, N, K, 1, 12346, d);
            differ += memcmp(keep, again, sizeof keep) != 0;
        }
    }
    ck_assert_msg(differ >= 95, "another key changed only %d of 100 subsets", differ);
    /* each token kept with probability K/N: binomial counts within 5 standard deviations */
    const double p = (double)K / N, mean = DRAWS * p, sd = sqrt(DRAWS * p * (1 - p));
    for (int i = 1; i <= N; i++)
        ck_assert_msg(fabs(count[i] - mean) < 5 * sd, "token %d kept %d times, expected %.0f +- %.0f", i, count[i], mean,
                      sd);

    /* forward: evaluation ignores the rate; a training pass with rate 0 is the evaluation pass; with a
     * rate it depends on the key and differs */
    tiny_config(&c);
    c.pool = VT_POOL_MEAN;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 9);
    vt_vit_init_weights(&m, &r);
    enum { B = 3 };
    const int64_t per = (int64_t)c.in_chans * c.img_h * c.img_w, NL = (int64_t)B * c.num_classes;
    float *img = malloc(sizeof(float) * (size_t)(B * per)), out[5][B * 5];
    tu_fill_uniform(&r, img, B * per, -1, 1);
    int64_t shape[4] = {B, c.in_chans, c.img_h, c.img_w};
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    for (int k = 0; k < 5; k++) {
        /* 0: eval, rate 0; 1: eval, rate 0.5; 2: train, rate 0; 3, 4: train, rate 0.5, keys 1 and 2 */
        m.cfg.patch_drop_rate = (k == 1 || k >= 3) ? 0.5 : 0;
        vt_vit_train_pass tp = {.key = k == 4 ? 2 : 1, .first = 0};
        vt_graph_reset(&g);
        vt_var *x = vt_var_wrap(&g, img, 4, shape, "x");
        vt_var *l = vt_vit_forward_train(&m, &g, x, NULL, k >= 2 ? &tp : NULL);
        ck_assert_msg(l != NULL, "%s", vt_errmsg());
        memcpy(out[k], l->val.data, sizeof(float) * (size_t)NL);
        if (k >= 3) {
            bool found = false;
            for (int i = 0; i < g.nnodes; i++) found |= g.nodes[i].op == VT_OP_TOKEN_KEEP;
            ck_assert_msg(found, "no token_keep in a training pass with patch dropout");
        }
    }
    ck_assert_msg(memcmp(out[0], out[1], sizeof out[0]) == 0, "evaluation changed with the rate");
    ck_assert_msg(memcmp(out[0], out[2], sizeof out[0]) == 0, "training pass at rate 0 differs from evaluation");
    ck_assert_msg(memcmp(out[0], out[3], sizeof out[0]) != 0, "patch dropout changed nothing");
    ck_assert_msg(memcmp(out[3], out[4], sizeof out[0]) != 0, "the key changed nothing");
    /* the op refuses indices outside the patch tokens */
    vt_graph_reset(&g);
    float t[2 * 4 * 3] = {0};
    vt_var *tv = vt_var_wrap(&g, t, 3, (int64_t[]){2, 4, 3}, "t");
    ck_assert_ptr_null(vt_token_keep(&g, tv, 1, (int32_t[]){1, 3, 2, 0}, 2));
    ck_assert_msg(strstr(vt_errmsg(), "index 0 of image 1"), "%s", vt_errmsg());
    ck_assert_ptr_null(vt_token_keep(&g, tv, 1, (int32_t[]){1, 2, 3, 4, 1, 2, 3, 4}, 4));
    vt_graph_free(&g);
    free(img);
    vt_vit_free(&m);
}
END_TEST

/* [model] fc_norm (timm's fc_norm=True, its default for global_pool='avg'): timm's state_dict has
 * fc_norm.weight/bias where norm.weight/bias would be (norm is an Identity), initialised to ones / zeros
 * with the rest of the init unchanged; only with average pooling */
START_TEST(fc_norm_names_init_and_config)
{
    vt_vit_config c, p;
    tiny_config(&c);
    c.pool = VT_POOL_MEAN;
    p = c;
    c.fc_norm = true;
    vt_vit m, plain;
    ck_assert_msg(vt_vit_init(&m, &c) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(vt_vit_init(&plain, &p), VT_OK);
    /* the same list as the plain model's, norm.* replaced by fc_norm.* in the same place (before head) */
    ck_assert_int_eq(m.params.count, plain.params.count);
    ck_assert_int_eq(m.params.count, 4 + 12 * 2 + 4);
    for (int i = 0; i < m.params.count; i++) {
        const vt_param_info *a = &m.params.info[i], *b = &plain.params.info[i];
        char want[128];
        snprintf(want, sizeof want, "%s%s", strncmp(b->name, "norm.", 5) == 0 ? "fc_" : "", b->name);
        ck_assert_msg(strcmp(a->name, want) == 0, "parameter %d: %s, timm's is %s", i, a->name, want);
        ck_assert_int_eq(a->ndim, b->ndim);
        for (int k = 0; k < a->ndim; k++) ck_assert_int_eq(a->shape[k], b->shape[k]);
    }
    const int n = m.params.count;
    ck_assert_str_eq(m.params.info[n - 4].name, "fc_norm.weight");
    ck_assert_str_eq(m.params.info[n - 3].name, "fc_norm.bias");
    ck_assert_str_eq(m.params.info[n - 2].name, "head.weight");
    ck_assert_int_eq(m.params.info[n - 4].ndim, 1);
    ck_assert_int_eq(m.params.info[n - 4].shape[0], 8);
    ck_assert_int_eq(m.fc_norm_w, n - 4);
    ck_assert_int_eq(m.fc_norm_b, n - 3);
    ck_assert_int_eq(m.norm_w, -1);
    ck_assert_int_eq(m.norm_b, -1);
    ck_assert_int_eq(plain.fc_norm_w, -1);
    ck_assert_ptr_null(vt_vit_param(&m, "norm.weight"));
    ck_assert_ptr_null(vt_vit_param(&m, "norm.bias"));
    ck_assert_ptr_null(vt_vit_param(&plain, "fc_norm.weight"));
    ck_assert_int_eq(vt_vit_num_params(&m), vt_vit_num_params(&plain));
    /* timm's init: LayerNorm ones / zeros, drawing nothing, so every other tensor is the plain model's */
    vt_rng r1, r2;
    vt_rng_seed(&r1, 11);
    vt_rng_seed(&r2, 11);
    vt_vit_init_weights(&m, &r1);
    vt_vit_init_weights(&plain, &r2);
    ck_assert_int_eq(memcmp(m.params.data, plain.params.data, sizeof(float) * (size_t)m.params.numel), 0);
    ck_assert_int_eq(memcmp(&r1, &r2, sizeof r1), 0);
    vt_var *w = vt_vit_param(&m, "fc_norm.weight"), *b = vt_vit_param(&m, "fc_norm.bias");
    for (int k = 0; k < 8; k++) {
        ck_assert_float_eq(w->val.data[k], 1.0f);
        ck_assert_float_eq(b->val.data[k], 0.0f);
    }
    vt_vit_free(&m);
    vt_vit_free(&plain);
    /* class-token pooling with fc_norm (timm allows it): a LayerNorm of the class token alone, which is per
     * token the final norm's arithmetic: the same weights give bitwise the same logits as the plain model */
    vt_vit_config ct = c, cp = c;
    ct.pool = cp.pool = VT_POOL_TOKEN;
    cp.fc_norm = false;
    vt_vit tk, pl;
    ck_assert_int_eq(vt_vit_init(&tk, &ct), VT_OK);
    ck_assert_int_eq(vt_vit_init(&pl, &cp), VT_OK);
    ck_assert_int_eq(tk.params.numel, pl.params.numel);
    vt_rng rt;
    vt_rng_seed(&rt, 3);
    tu_fill_uniform(&rt, pl.params.data, pl.params.numel, -0.5f, 0.5f);
    memcpy(tk.params.data, pl.params.data, sizeof(float) * (size_t)pl.params.numel);   /* fc_norm.* where norm.* is */
    float img[2 * 2 * 8 * 12];
    tu_fill_uniform(&rt, img, 2 * 2 * 8 * 12, -1, 1);
    int64_t shp[4] = {2, 2, 8, 12};
    vt_graph g1, g2;
    vt_graph_init(&g1, 1 << 18);
    vt_graph_init(&g2, 1 << 18);
    vt_var *l1 = vt_vit_forward(&tk, &g1, vt_var_wrap(&g1, img, 4, shp, "x"), NULL);
    vt_var *l2 = vt_vit_forward(&pl, &g2, vt_var_wrap(&g2, img, 4, shp, "x"), NULL);
    ck_assert_msg(l1 && l2, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(l1->val.data, l2->val.data, sizeof(float) * 2 * (size_t)c.num_classes), 0);
    vt_graph_free(&g1);
    vt_graph_free(&g2);
    vt_vit_free(&tk);
    vt_vit_free(&pl);
    /* the config key: false by default */
    vt_config cfg;
    vt_vit_config mc;
    vt_config_defaults(&cfg);
    ck_assert_int_eq(vt_config_model(&cfg, &mc), VT_OK);
    ck_assert(!mc.fc_norm);
    ck_assert_int_eq(vt_config_load_text(&cfg, "[model]\nfc_norm = true\npool = avg\n", "fc.ini"), VT_OK);
    ck_assert_msg(vt_config_model(&cfg, &mc) == VT_OK, "%s", vt_errmsg());
    ck_assert(mc.fc_norm && mc.pool == VT_POOL_MEAN);
}
END_TEST

/* the fc_norm forward is timm's forward_head: the blocks' output (no norm), the mean of its patch tokens,
 * LayerNorm (layer_norm_eps), head; checked in double precision from the last block's activations, and
 * against the plain model with the same values in norm.* (a norm before the pooling: other logits) */
START_TEST(fc_norm_forward_matches_reference)
{
    vt_vit_config c;
    tiny_config(&c);
    c.pool = VT_POOL_MEAN;
    c.fc_norm = true;
    c.ln_eps = 1e-5f;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 21);
    tu_fill_uniform(&r, m.params.data, m.params.numel, -0.5f, 0.5f);
    enum { B = 3 };
    const int D = c.embed_dim, K = c.num_classes, T = 2 * 3 + 1;
    float img[B * 2 * 8 * 12];
    tu_fill_uniform(&r, img, B * 2 * 8 * 12, -1, 1);
    int64_t shape[4] = {B, 2, 8, 12};
    vt_graph g;
    vt_graph_init(&g, 1 << 18);
    vt_vit_acts acts = {0};
    vt_var *blocks[2] = {0};
    acts.block = blocks;
    vt_var *logits = vt_vit_forward(&m, &g, vt_var_wrap(&g, img, 4, shape, "x"), &acts);
    ck_assert_msg(logits != NULL, "%s", vt_errmsg());
    ck_assert_ptr_null(acts.norm);
    ck_assert_ptr_nonnull(acts.fc_norm);
    ck_assert_ptr_nonnull(blocks[1]);
    ck_assert_int_eq(blocks[1]->val.shape[1], T);
    const float *w = vt_vit_param(&m, "fc_norm.weight")->val.data, *bb = vt_vit_param(&m, "fc_norm.bias")->val.data;
    const float *hw = vt_vit_param(&m, "head.weight")->val.data, *hb = vt_vit_param(&m, "head.bias")->val.data;
    double worst = 0, scale = 0;
    for (int b = 0; b < B; b++) {
        const float *x = blocks[1]->val.data + (size_t)b * T * D;
        double mean[64], mu = 0, var = 0, y[64];
        for (int d = 0; d < D; d++) {
            mean[d] = 0;
            for (int t = 1; t < T; t++) mean[d] += x[t * D + d];   /* patch tokens only */
            mean[d] /= T - 1;
            mu += mean[d] / D;
        }
        for (int d = 0; d < D; d++) var += (mean[d] - mu) * (mean[d] - mu) / D;
        for (int d = 0; d < D; d++) {
            y[d] = (mean[d] - mu) / sqrt(var + (double)c.ln_eps) * w[d] + bb[d];
            ck_assert_msg(fabs(acts.fc_norm->val.data[b * D + d] - y[d]) < 1e-5, "fc_norm[%d][%d]: %.7g vs %.7g", b, d,
                          acts.fc_norm->val.data[b * D + d], y[d]);
        }
        for (int k = 0; k < K; k++) {
            double ref = hb[k];
            for (int d = 0; d < D; d++) ref += (double)hw[k * D + d] * y[d];
            worst = fmax(worst, fabs(logits->val.data[b * K + k] - ref));
            scale = fmax(scale, fabs(ref));
        }
    }
    ck_assert_msg(scale > 0.1 && worst <= 1e-5 * fmax(1, scale), "logits off the reference by %g (scale %g)", worst, scale);
    /* evaluation without a tape (block buffers reused): the same logits, bitwise */
    float got[B * 5];
    memcpy(got, logits->val.data, sizeof got);
    vt_graph g2;
    vt_graph_init(&g2, 1 << 18);
    vt_graph_set_grad(&g2, false);
    vt_var *l2 = vt_vit_forward(&m, &g2, vt_var_wrap(&g2, img, 4, shape, "x"), NULL);
    ck_assert_ptr_nonnull(l2);
    ck_assert_int_eq(memcmp(got, l2->val.data, sizeof got), 0);
    /* the plain model (norm before pooling) with the same values: other logits */
    vt_vit_config pc = c;
    pc.fc_norm = false;
    vt_vit plain;
    ck_assert_int_eq(vt_vit_init(&plain, &pc), VT_OK);
    memcpy(plain.params.data, m.params.data, sizeof(float) * (size_t)m.params.numel);
    ck_assert_int_eq(plain.norm_w, m.fc_norm_w);
    vt_graph_reset(&g2);
    l2 = vt_vit_forward(&plain, &g2, vt_var_wrap(&g2, img, 4, shape, "x"), NULL);
    ck_assert_ptr_nonnull(l2);
    ck_assert_msg(tu_maxdiff(got, l2->val.data, B * 5) > 1e-3, "norm before / after pooling: the same logits");
    vt_graph_free(&g);
    vt_graph_free(&g2);
    vt_vit_free(&plain);
    vt_vit_free(&m);
}
END_TEST

/* data-parallel replicas with fc_norm: 1, 2 and 3 replicas give the same loss and gradients (up to float
 * summation order), fc_norm's among them */
START_TEST(fc_norm_replicas_agree)
{
    vt_vit_config c;
    tiny_config(&c);
    c.pool = VT_POOL_MEAN;
    c.fc_norm = true;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 31);
    vt_vit_init_weights(&m, &r);
    const vt_param_info *fw = &m.params.info[m.fc_norm_w], *fb = &m.params.info[m.fc_norm_b];
    tu_fill_uniform(&r, m.params.data + fw->offset, fw->numel, 0.5f, 1.5f);
    tu_fill_uniform(&r, m.params.data + fb->offset, fb->numel, -0.5f, 0.5f);
    enum { B = 5 };
    const int64_t per = (int64_t)c.in_chans * c.img_h * c.img_w, NP = m.params.numel;
    float *img = malloc(sizeof(float) * (size_t)(B * per));
    tu_fill_uniform(&r, img, B * per, -1, 1);
    int labels[B] = {3, 0, 4, 1, 2};
    float *ref = malloc(sizeof(float) * (size_t)NP);
    double ref_loss = 0;
    for (int n = 1; n <= 3; n++) {
        vt_vit_replicas rep;
        ck_assert_msg(vt_vit_replicas_init(&rep, &m, n, 1 << 16, false) == VT_OK, "%s", vt_errmsg());
        double loss = 0;
        vt_paramset_zero_grad(&m.params);
        ck_assert_msg(vt_vit_replicas_train(&rep, img, labels, B, 0.1f, 1.0f, 5, &loss) == VT_OK, "%s", vt_errmsg());
        vt_vit_replicas_free(&rep);
        if (n == 1) {
            memcpy(ref, m.params.grad, sizeof(float) * (size_t)NP);
            ref_loss = loss;
            ck_assert_msg(tu_maxabs(m.params.grad + fw->offset, fw->numel) > 1e-4, "no gradient for fc_norm.weight");
            ck_assert_msg(tu_maxabs(m.params.grad + fb->offset, fb->numel) > 1e-4, "no gradient for fc_norm.bias");
            continue;
        }
        ck_assert_msg(fabs(loss - ref_loss) <= 1e-6 * fabs(ref_loss), "%d replicas: loss %.9g vs %.9g", n, loss, ref_loss);
        const double scale = tu_maxabs(ref, NP);
        for (int i = 0; i < m.params.count; i++) {
            const vt_param_info *pi = &m.params.info[i];
            double d = tu_maxdiff(m.params.grad + pi->offset, ref + pi->offset, pi->numel);
            ck_assert_msg(d <= 1e-5 * scale, "%d replicas: %s gradient off by %g (scale %g)", n, pi->name, d, scale);
        }
    }
    free(img);
    free(ref);
    vt_vit_free(&m);
}
END_TEST

/* checkpoints record fc_norm as a /model attribute and read it back; a file written before the key reads
 * as fc_norm = false; a checkpoint of the other kind is refused naming [model] fc_norm */
START_TEST(fc_norm_checkpoints)
{
    vt_vit_config c, back, plain;
    tiny_config(&c);
    c.pool = VT_POOL_MEAN;
    plain = c;
    c.fc_norm = true;
    vt_vit m, m2, p;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&m2, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&p, &plain), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 41);
    tu_fill_uniform(&r, m.params.data, m.params.numel, -1, 1);
    char dir[] = "/tmp/vit_fcck_XXXXXX", path[4096], old[4200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    vt_train_state st = {0};
    st.step = 3;
    ck_assert_msg(vt_ckpt_write(dir, &m, NULL, &st, "", 0, path, sizeof path) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_ckpt_model_config(path, &back) == VT_OK, "%s", vt_errmsg());
    ck_assert(back.fc_norm && back.pool == VT_POOL_MEAN);
    ck_assert_int_eq(vt_ckpt_check_arch(path, &back, &c, true), VT_OK);
    ck_assert_msg(vt_ckpt_load(path, &m2, NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    for (int i = 0; i < m.params.count; i++) {
        const vt_param_info *pi = &m.params.info[i];
        ck_assert_msg(memcmp(m.params.data + pi->offset, m2.params.data + pi->offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs after the checkpoint round trip", pi->name);
    }
    /* the other model: refused by the architecture check (both ways) and by the loader */
    ck_assert_int_eq(vt_ckpt_check_arch(path, &back, &plain, false), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "[model] fc_norm = true, the config false"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(vt_ckpt_check_arch(path, &plain, &back, true), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[model] fc_norm = false, the config true"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_ckpt_load(path, &p, NULL, NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "norm.weight"), "%s", vt_errmsg());
    /* the plain model's checkpoint says fc_norm = false */
    st.step = 4;
    ck_assert_int_eq(vt_ckpt_write(dir, &p, NULL, &st, "", 0, path, sizeof path), VT_OK);
    back.fc_norm = true;
    ck_assert_int_eq(vt_ckpt_model_config(path, &back), VT_OK);
    ck_assert(!back.fc_norm);
    remove(path);
    /* a file of before the attribute: /model without fc_norm */
    for (int v = 0; v < 2; v++) {
        snprintf(old, sizeof old, "%s/old.h5", dir);
        vt_h5id f = vt_h5_create(old);
        ck_assert(f >= 0);
        ck_assert_int_eq(vt_h5_write_attr_str(f, "/", "format", VT_CKPT_FORMAT), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_i64(f, "/", "format_version", VT_CKPT_VERSION), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_i64(f, "/", "complete", 1), VT_OK);
        ck_assert_int_eq(vt_h5_mkgroup(f, "/model"), VT_OK);
        const char *names[8] = {"img_h", "img_w", "patch", "in_chans", "num_classes", "embed_dim", "depth", "num_heads"};
        const int64_t vals[8] = {8, 12, 4, 2, 5, 8, 2, 2};
        for (int i = 0; i < 8; i++) ck_assert_int_eq(vt_h5_write_attr_i64(f, "/model", names[i], vals[i]), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_f64(f, "/model", "mlp_ratio", 1.5), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_f64(f, "/model", "layer_norm_eps", 1e-6), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_str(f, "/model", "pool", "avg"), VT_OK);
        ck_assert_int_eq(vt_h5_write_attr_str(f, "/model", "gelu", "erf"), VT_OK);
        if (v == 1) ck_assert_int_eq(vt_h5_write_attr_i64(f, "/model", "fc_norm", 2), VT_OK);
        vt_h5_close(f);
        back.fc_norm = true;
        if (v == 0) {
            ck_assert_msg(vt_ckpt_model_config(old, &back) == VT_OK, "%s", vt_errmsg());
            ck_assert(!back.fc_norm && back.pool == VT_POOL_MEAN);
        } else {
            ck_assert_int_eq(vt_ckpt_model_config(old, &back), VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), "fc_norm = 2"), "%s", vt_errmsg());
        }
        remove(old);
    }
    rmdir(dir);
    vt_vit_free(&m);
    vt_vit_free(&m2);
    vt_vit_free(&p);
}
END_TEST

START_TEST(forward_refuses_wrong_input)
{
    vt_vit_config c;
    tiny_config(&c);
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_graph g;
    vt_graph_init(&g, 1 << 16);
    float img[2 * 2 * 8 * 8] = {0};
    ck_assert_ptr_null(vt_vit_forward(&m, &g, vt_var_wrap(&g, img, 4, (int64_t[]){2, 2, 8, 8}, "x"), NULL));
    ck_assert_msg(strstr(vt_errmsg(), "(2, 2, 8, 8)") && strstr(vt_errmsg(), "8, 12"), "%s", vt_errmsg());
    ck_assert_ptr_null(vt_vit_forward(&m, &g, NULL, NULL));
    vt_graph_free(&g);
    vt_vit_free(&m);
}
END_TEST

START_TEST(golden_file_passes)
{
    vt_golden_result r = {0};
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_msg(vt_golden_check_file(tu_golden("vit_reference.h5"), NULL, devnull, &r) == VT_OK, "%s", vt_errmsg());
    fclose(devnull);
    ck_assert_int_ge(r.cases, 3);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_int_eq(r.failed, 0);
    ck_assert_int_gt(r.checked, 100);
}
END_TEST

/* a copy of one case with a perturbed parameter must fail, and a missing gradient must be an error */
START_TEST(golden_check_can_fail)
{
    vt_h5id src = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert(src >= 0);
    vt_vit_config c;
    vt_vit_config_defaults(&c);
    c.img_h = c.img_w = 28;
    c.patch = 4;
    c.in_chans = 1;
    c.num_classes = 10;
    c.embed_dim = 32;
    c.depth = 1;
    c.num_heads = 2;
    c.mlp_ratio = 2;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    ck_assert_msg(vt_vit_load_h5(&m, src, "/vit_gray_f64/params") == VT_OK, "%s", vt_errmsg());
    char tmpl[] = "/tmp/vit_golden_XXXXXX";
    int fd = mkstemp(tmpl);
    ck_assert(fd >= 0);
    close(fd);
    for (int variant = 0; variant < 2; variant++) {
        vt_h5id dst = vt_h5_create(tmpl);   /* a fresh file each time */
        ck_assert_msg(dst >= 0, "%s", vt_errmsg());
        ck_assert_int_eq(vt_h5_mkgroup(dst, "/case"), VT_OK);
        const char *attrs[] = {"img_h", "img_w", "patch", "in_chans", "num_classes", "embed_dim", "depth", "num_heads"};
        for (int i = 0; i < 8; i++) {
            int64_t v;
            ck_assert_int_eq(vt_h5_attr_i64(src, "/vit_gray_f64", attrs[i], &v), VT_OK);
            ck_assert_int_eq(vt_h5_write_attr_i64(dst, "/case", attrs[i], v), VT_OK);
        }
        ck_assert_int_eq(vt_h5_write_attr_f64(dst, "/case", "mlp_ratio", 2.0), VT_OK);
        m.params.data[m.params.info[vt_paramset_find(&m.params, "blocks.0.mlp.fc1.weight")].offset + 5] += 0.05f;
        ck_assert_int_eq(vt_vit_save_h5(&m, dst, "/case/params", 0), VT_OK);
        m.params.data[m.params.info[vt_paramset_find(&m.params, "blocks.0.mlp.fc1.weight")].offset + 5] -= 0.05f;
        const char *dsets[] = {"input", "labels", "logits", "loss"};
        for (int i = 0; i < 4; i++) {
            char p[128], q[128];
            snprintf(p, sizeof p, "/vit_gray_f64/%s", dsets[i]);
            snprintf(q, sizeof q, "/case/%s", dsets[i]);
            double *d;
            int nd;
            int64_t sh[8];
            ck_assert_int_eq(vt_h5_read_f64(src, p, &d, &nd, sh), VT_OK);
            if (i == 1) {
                int64_t lab[8];
                for (int k = 0; k < sh[0]; k++) lab[k] = (int64_t)d[k];
                ck_assert_int_eq(vt_h5_write_i64(dst, q, lab, nd, sh), VT_OK);
            } else {
                ck_assert_int_eq(vt_h5_write_f64(dst, q, d, nd, sh), VT_OK);
            }
            free(d);
        }
        for (int i = 0; i < m.params.count; i++) {
            if (variant == 1 && i == 3) continue;   /* a missing reference gradient */
            char p[256], q[256];
            snprintf(p, sizeof p, "/vit_gray_f64/grads/%s", m.params.info[i].name);
            snprintf(q, sizeof q, "/case/grads/%s", m.params.info[i].name);
            double *d;
            int nd;
            int64_t sh[8];
            ck_assert_int_eq(vt_h5_read_f64(src, p, &d, &nd, sh), VT_OK);
            ck_assert_int_eq(vt_h5_write_f64(dst, q, d, nd, sh), VT_OK);
            free(d);
        }
        vt_h5_close(dst);
        vt_golden_result r = {0};
        FILE *devnull = fopen("/dev/null", "w");
        ck_assert_int_eq(vt_golden_check_file(tmpl, NULL, devnull, &r), VT_OK);
        fclose(devnull);
        if (variant == 0) {
            ck_assert_int_eq(r.cases, 1);
            ck_assert_int_gt(r.failed, 0);
        } else {
            ck_assert_int_eq(r.errors, 1);
        }
    }
    remove(tmpl);
    vt_h5_close(src);
    vt_vit_free(&m);
}
END_TEST

/* a NaN or inf among the parameters of an HDF5 file (a damaged checkpoint, a diverged run) is refused at
 * load, naming file, tensor and element; finite values load as saved */
START_TEST(load_h5_refuses_nonfinite)
{
    vt_vit_config c;
    tiny_config(&c);
    vt_vit a, b;
    ck_assert_int_eq(vt_vit_init(&a, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&b, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 3);
    vt_vit_init_weights(&a, &r);
    char path[64];
    strcpy(path, "/tmp/vit_nonfinite_XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    const struct { int param; int at; float v; const char *want; } cases[] = {
        {a.head_b, 0, NAN, "tensor /model/head.bias holds nan at element 0 of 5"},
        {a.blocks[1].qkv_w, 17, INFINITY, "tensor /model/blocks.1.attn.qkv.weight holds inf at element 17 of 192"},
        {a.pos_embed, 3, -INFINITY, "tensor /model/pos_embed holds -inf at element 3 of 56"},
        {-1, 0, 0, NULL},   /* all finite: loads */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float *w = NULL, keep = 0;
        if (cases[k].param >= 0) {
            w = a.params.data + a.params.info[cases[k].param].offset + cases[k].at;
            keep = *w;
            *w = cases[k].v;
        }
        vt_h5id f = vt_h5_create(path);
        ck_assert(f >= 0);
        ck_assert_int_eq(vt_h5_mkgroup(f, "/model"), VT_OK);
        ck_assert_int_eq(vt_vit_save_h5(&a, f, "/model", 0), VT_OK);
        vt_h5_close(f);
        if (w) *w = keep;
        f = vt_h5_open(path, false);
        ck_assert(f >= 0);
        int rc = vt_vit_load_h5(&b, f, "/model");
        vt_h5_close(f);
        if (!cases[k].want) {
            ck_assert_msg(rc == VT_OK, "%s", vt_errmsg());
            ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
        } else {
            ck_assert_int_eq(rc, VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), cases[k].want), "%s", vt_errmsg());
        }
    }
    remove(path);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vit");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, preset_param_counts_match_timm);
    tcase_add_test(tc, timm_names_and_layouts);
    tcase_add_test(tc, init_is_timm_and_seeded);
    tcase_add_test(tc, model_gradients_match_finite_differences);
    tcase_add_test(tc, nograd_matches_and_uses_less_memory);
    tcase_add_test(tc, memory_savers_are_exact_and_smaller);
    tcase_add_test(tc, replicas_match_the_single_graph_step);
    tcase_add_test(tc, forward_refuses_wrong_input);
    tcase_add_test(tc, fc_norm_names_init_and_config);
    tcase_add_test(tc, fc_norm_forward_matches_reference);
    tcase_add_test(tc, fc_norm_replicas_agree);
    tcase_add_test(tc, fc_norm_checkpoints);
    tcase_add_test(tc, patch_dropout);
    tcase_add_test(tc, golden_file_passes);
    tcase_add_test(tc, golden_check_can_fail);
    tcase_add_test(tc, load_h5_refuses_nonfinite);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
