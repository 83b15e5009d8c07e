/* test_deit.c - the model half of timm's DeiT recipe: stochastic depth ([model] drop_path_rate), LayerScale
 * ([model] init_values, blocks.*.ls1/ls2.gamma) and register tokens ([model] reg_tokens, reg_token),
 * against independent computations: the draws' statistics, a LayerScale model whose gammas are the drawn
 * factors, finite differences, and the logits of a PyTorch reference (tests/data/deit_reference.h). */
#include "testutil.h"
#include "nn/nn.h"
#include "train/train.h"
#include "deit_reference.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tiny_config(vt_vit_config *c)
{
    vt_vit_config_defaults(c);
    c->img_h = 8;
    c->img_w = 12;   /* grid 2 x 3 */
    c->patch = 4;
    c->in_chans = 2;
    c->num_classes = 5;
    c->embed_dim = 8;
    c->depth = 3;
    c->num_heads = 2;
    c->mlp_ratio = 1.5;
}

/* the same parameters (names, shapes, values) */
static void assert_same_params(const vt_vit *a, const vt_vit *b)
{
    ck_assert_int_eq(a->params.count, b->params.count);
    for (int i = 0; i < a->params.count; i++) {
        const vt_param_info *p = &a->params.info[i], *q = &b->params.info[i];
        ck_assert_str_eq(p->name, q->name);
        ck_assert_int_eq(p->numel, q->numel);
        ck_assert_msg(memcmp(a->params.data + p->offset, b->params.data + q->offset, sizeof(float) * (size_t)p->numel) == 0,
                      "%s differs", p->name);
    }
}

static void random_model(vt_vit *m, const vt_vit_config *c, uint64_t seed)
{
    ck_assert_msg(vt_vit_init(m, c) == VT_OK, "%s", vt_errmsg());
    vt_rng r;
    vt_rng_seed(&r, seed);
    tu_fill_uniform(&r, m->params.data, m->params.numel, -0.5f, 0.5f);
}

/* logits (B, K) of images img (B, C, H, W) into out; tp NULL: evaluation. The parameter gradients of the mean
 * cross-entropy (labels y) are left in m's gradient buffer when y is not NULL. */
static void run(vt_vit *m, const float *img, int B, const int *y, const vt_vit_train_pass *tp, float *out)
{
    const vt_vit_config *c = &m->cfg;
    vt_graph g;
    vt_graph_init(&g, 1 << 20);
    vt_graph_set_grad(&g, y != NULL);
    vt_var *x = vt_var_wrap(&g, (float *)img, 4, (int64_t[]){B, c->in_chans, c->img_h, c->img_w}, "x");
    vt_var *l = vt_vit_forward_train(m, &g, x, NULL, tp);
    ck_assert_msg(l != NULL, "%s", vt_errmsg());
    memcpy(out, l->val.data, sizeof(float) * (size_t)B * c->num_classes);
    if (y) {
        vt_paramset_zero_grad(&m->params);
        vt_var *loss = vt_cross_entropy(&g, l, y, 0.0f);
        ck_assert_int_eq(vt_backward(&g, loss), VT_OK);
    }
    vt_graph_free(&g);
}

/* ---------------------------------------------------------------- stochastic depth */

/* timm's rule (torch.linspace(0, rate, depth)), the draws' rate and mean (1: the expectation of a branch is
 * the branch), their independence across images, blocks and branches and their dependence on the key only */
START_TEST(drop_path_rule_and_draws)
{
    vt_vit_config c;
    tiny_config(&c);
    c.depth = 12;
    c.drop_path_rate = 0.1;
    ck_assert(vt_vit_drop_path_rate(&c, 0) == 0.0);
    ck_assert(fabs(vt_vit_drop_path_rate(&c, 11) - 0.1) < 1e-15);
    ck_assert(fabs(vt_vit_drop_path_rate(&c, 5) - 0.1 * 5 / 11) < 1e-15);
    c.depth = 1;
    ck_assert(vt_vit_drop_path_rate(&c, 0) == 0.0);
    c.drop_path_rate = 1.0;
    ck_assert_int_ne(vt_vit_config_check(&c), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "drop_path_rate"), "%s", vt_errmsg());

    enum { DRAWS = 200000 };
    const double rate = 0.3;
    const float kept = 1.0f / 0.7f;
    int64_t dropped = 0, both = 0, same_next = 0;
    double sum = 0;
    for (int64_t i = 0; i < DRAWS; i++) {
        float f0 = vt_vit_drop_path_factor(77, i, 4, 0, rate), f1 = vt_vit_drop_path_factor(77, i, 4, 1, rate);
        float g0 = vt_vit_drop_path_factor(77, i, 5, 0, rate);
        ck_assert_msg(f0 == 0.0f || f0 == kept, "factor %g", (double)f0);
        ck_assert(f0 == vt_vit_drop_path_factor(77, i, 4, 0, rate));
        dropped += f0 == 0.0f;
        both += f0 == 0.0f && f1 == 0.0f;
        same_next += (f0 == 0.0f) == (g0 == 0.0f);
        sum += f0;
    }
    /* binomial counts within 5 standard deviations */
    const double sd = sqrt(DRAWS * rate * (1 - rate));
    ck_assert_msg(fabs(dropped - DRAWS * rate) < 5 * sd, "dropped %lld of %d", (long long)dropped, DRAWS);
    const double p2 = rate * rate, sd2 = sqrt(DRAWS * p2 * (1 - p2));
    ck_assert_msg(fabs(both - DRAWS * p2) < 5 * sd2, "both branches dropped %lld times", (long long)both);
    const double ps = rate * rate + (1 - rate) * (1 - rate), sds = sqrt(DRAWS * ps * (1 - ps));
    ck_assert_msg(fabs(same_next - DRAWS * ps) < 5 * sds, "blocks 4 and 5 agree %lld times", (long long)same_next);
    /* E[factor] = 1: the factor's sd is sqrt(rate / (1 - rate)) */
    const double mean = sum / DRAWS, sdm = sqrt(rate / (1 - rate) / DRAWS);
    ck_assert_msg(fabs(mean - 1.0) < 5 * sdm, "mean factor %.6f", mean);
    int differ = 0;
    for (int64_t i = 0; i < 1000; i++)
        differ += vt_vit_drop_path_factor(77, i, 4, 0, rate) != vt_vit_drop_path_factor(78, i, 4, 0, rate);
    ck_assert_msg(differ > 300 && differ < 540, "another key changed %d of 1000 draws (expected about 420)", differ);
    ck_assert(vt_vit_drop_path_factor(77, 5, 4, 0, 0.0) == 1.0f);
}
END_TEST

/* the expectation over many draws of the residual op's output, x + factor * branch, is x + branch */
START_TEST(drop_path_expectation)
{
    enum { B = 20000, T = 2, D = 3 };
    float *x = malloc(sizeof(float) * B * T * D), *br = malloc(sizeof(float) * B * T * D), keep[B];
    const float x0[T * D] = {0.5f, -1, 2, 0.25f, 3, -0.75f}, b0[T * D] = {1, -2, 0.5f, 4, -0.25f, 1.5f};
    const double rate = 0.4;
    for (int b = 0; b < B; b++) {
        memcpy(x + b * T * D, x0, sizeof x0);
        memcpy(br + b * T * D, b0, sizeof b0);
        keep[b] = vt_vit_drop_path_factor(5, b, 2, 1, rate);
    }
    vt_graph g;
    vt_graph_init(&g, 1 << 20);
    vt_var *xv = vt_var_wrap(&g, x, 3, (int64_t[]){B, T, D}, "x"), *bv = vt_var_wrap(&g, br, 3, (int64_t[]){B, T, D}, "br");
    vt_var *o = vt_residual(&g, xv, bv, NULL, keep);
    ck_assert_ptr_nonnull(o);
    const double sd_factor = sqrt(rate / (1 - rate));
    for (int k = 0; k < T * D; k++) {
        double s = 0;
        for (int b = 0; b < B; b++) s += o->val.data[b * T * D + k];
        const double want = (double)x0[k] + b0[k], tol = 5 * fabs(b0[k]) * sd_factor / sqrt((double)B);
        ck_assert_msg(fabs(s / B - want) < tol, "element %d: mean %.6f, expected %.6f +- %.6f", k, s / B, want, tol);
    }
    vt_graph_free(&g);
    free(x);
    free(br);
}
END_TEST

/* A training pass with stochastic depth is, image by image, the evaluation of the same weights with LayerScale
 * gammas equal to the image's drawn factors (an independent path through the op: gamma instead of keep): the
 * same logits and, summed over the images, the same parameter gradients. A branch dropped for every image
 * of the pass gives its parameters exactly zero gradient (the kept-sample rule). Evaluation ignores the rate. */
START_TEST(drop_path_is_layerscale_by_the_factors)
{
    vt_vit_config c, cl;
    tiny_config(&c);
    c.drop_path_rate = 0.6;   /* blocks 0, 1, 2: 0, 0.3, 0.6 */
    cl = c;
    cl.drop_path_rate = 0;
    cl.init_values = 1;
    vt_vit m, l;
    random_model(&m, &c, 11);
    ck_assert_int_eq(vt_vit_init(&l, &cl), VT_OK);
    enum { B = 4 };
    const int64_t per = (int64_t)c.in_chans * c.img_h * c.img_w, K = c.num_classes;
    float img[B * 2 * 8 * 12], out[B * 5], ref[5], e0[B * 5], e1[B * 5];
    int y[B] = {1, 4, 0, 2};
    vt_rng r;
    vt_rng_seed(&r, 12);
    tu_fill_uniform(&r, img, B * per, -1, 1);
    const vt_vit_train_pass tp = {.key = 99, .first = 40};
    run(&m, img, B, y, &tp, out);
    float *grad = malloc(sizeof(float) * (size_t)m.params.numel), *gsum = calloc((size_t)m.params.numel, sizeof(float));
    memcpy(grad, m.params.grad, sizeof(float) * (size_t)m.params.numel);
    int ndropped = 0;
    for (int b = 0; b < B; b++) {
        /* l: m's weights under the same names, gammas = the factors of image first + b */
        for (int i = 0; i < m.params.count; i++) {
            int j = vt_paramset_find(&l.params, m.params.info[i].name);
            memcpy(l.params.data + l.params.info[j].offset, m.params.data + m.params.info[i].offset,
                   sizeof(float) * (size_t)m.params.info[i].numel);
        }
        for (int i = 0; i < c.depth; i++)
            for (int j = 0; j < 2; j++) {
                float f = vt_vit_drop_path_factor(tp.key, tp.first + b, i, j, vt_vit_drop_path_rate(&c, i));
                ndropped += f == 0.0f;
                float *gm = l.params.data + l.params.info[j ? l.blocks[i].ls2 : l.blocks[i].ls1].offset;
                for (int d = 0; d < c.embed_dim; d++) gm[d] = f;
            }
        run(&l, img + b * per, 1, &y[b], NULL, ref);
        ck_assert_msg(tu_maxdiff(out + b * K, ref, K) <= 1e-5 * (1 + tu_maxabs(ref, K)), "image %d: logits differ by %g",
                      b, tu_maxdiff(out + b * K, ref, K));
        for (int i = 0; i < m.params.count; i++) {
            const vt_param_info *pi = &m.params.info[i];
            const float *gl = l.params.grad + l.params.info[vt_paramset_find(&l.params, pi->name)].offset;
            for (int64_t k = 0; k < pi->numel; k++) gsum[pi->offset + k] += gl[k] / B;
        }
    }
    ck_assert_msg(ndropped >= 2, "the key dropped only %d branches: pick another", ndropped);
    const double dg = tu_maxdiff(grad, gsum, m.params.numel), sg = tu_maxabs(gsum, m.params.numel);
    ck_assert_msg(dg <= 1e-5 * sg, "gradients differ by %g (largest %g)", dg, sg);

    /* one image whose block-2 MLP branch is dropped: fc1/fc2 of block 2 get exactly zero gradient, the attention
     * branch of that block (kept) does not */
    int64_t img_id = 0;
    while (vt_vit_drop_path_factor(tp.key, img_id, 2, 1, 0.6) != 0.0f ||
           vt_vit_drop_path_factor(tp.key, img_id, 2, 0, 0.6) == 0.0f)
        img_id++;
    const vt_vit_train_pass one = {.key = tp.key, .first = img_id};
    run(&m, img, 1, y, &one, out);
    const int zero[] = {m.blocks[2].fc1_w, m.blocks[2].fc1_b, m.blocks[2].fc2_w, m.blocks[2].fc2_b};
    for (size_t z = 0; z < 4; z++) {
        const vt_param_info *pi = &m.params.info[zero[z]];
        ck_assert_msg(tu_maxabs(m.params.grad + pi->offset, pi->numel) == 0.0, "%s: gradient of a dropped branch",
                      pi->name);
    }
    const vt_param_info *qkv = &m.params.info[m.blocks[2].qkv_w];
    ck_assert(tu_maxabs(m.params.grad + qkv->offset, qkv->numel) > 0);

    /* evaluation ignores the rate; a training pass at rate 0 is the evaluation */
    run(&m, img, B, NULL, NULL, e0);
    m.cfg.drop_path_rate = 0;
    run(&m, img, B, NULL, NULL, e1);
    ck_assert_msg(memcmp(e0, e1, sizeof e0) == 0, "evaluation changed with the rate");
    run(&m, img, B, NULL, &tp, e1);
    ck_assert_msg(memcmp(e0, e1, sizeof e0) == 0, "a training pass at rate 0 differs from evaluation");
    m.cfg.drop_path_rate = 0.6;
    run(&m, img, B, NULL, &tp, e1);
    ck_assert_msg(memcmp(e0, e1, sizeof e0) != 0, "stochastic depth changed nothing");
    free(grad);
    free(gsum);
    vt_vit_free(&m);
    vt_vit_free(&l);
}
END_TEST

typedef struct {
    vt_vit *m;
    float *img;
    int *labels, B;
    const vt_vit_train_pass *tp;
} fd_ctx;

static vt_var *model_loss(vt_graph *g, vt_var **in, int nin, void *vctx)
{
    (void)in;
    (void)nin;
    fd_ctx *c = vctx;
    const vt_vit_config *mc = &c->m->cfg;
    vt_var *x = vt_var_wrap(g, c->img, 4, (int64_t[]){c->B, mc->in_chans, mc->img_h, mc->img_w}, "img");
    vt_var *logits = vt_vit_forward_train(c->m, g, x, NULL, c->tp);
    return logits ? vt_cross_entropy(g, logits, c->labels, 0.1f) : NULL;
}

/* every parameter of a random model of c (from seed) against central finite differences of the loss of B = 3
 * images; tp: a training pass, or NULL */
static void gradcheck_model(const vt_vit_config *c, uint64_t seed, const vt_vit_train_pass *tp, int variant)
{
    vt_vit m;
    random_model(&m, c, seed);
    enum { B = 3 };
    float img[B * 2 * 8 * 12];
    vt_rng r;
    vt_rng_seed(&r, seed + 100);
    tu_fill_uniform(&r, img, B * 2 * 8 * 12, -1, 1);
    int labels[B] = {1, 4, 2};
    fd_ctx ctx = {&m, img, labels, B, tp};
    vt_var *ins[64];
    int nin = 0;
    for (int i = 0; i < m.params.count; i++) ins[nin++] = &m.params.vars[i];
    char desc[256];
    double worst = vt_gradcheck(model_loss, &ctx, ins, nin, 1e-2, 2e-3, 2e-2, desc, sizeof desc);
    ck_assert_msg(worst <= 1.0, "variant %d: worst %g: %s", variant, worst, desc);
    vt_vit_free(&m);
}

/* every parameter's gradient against central finite differences: a training pass with stochastic depth (its
 * draws fixed by the key), LayerScale gammas (perturbed from their init) and both together */
START_TEST(gradients_match_finite_differences)
{
    for (int variant = 0; variant < 3; variant++) {
        vt_vit_config c;
        tiny_config(&c);
        c.depth = 2;
        c.pool = variant == 1 ? VT_POOL_MEAN : VT_POOL_TOKEN;
        c.drop_path_rate = variant != 1 ? 0.5 : 0;
        c.init_values = variant >= 1 ? 0.1 : 0;
        /* a key under which block 1 keeps some branches and drops others */
        const vt_vit_train_pass tp = {.key = 3, .first = 0};
        gradcheck_model(&c, 30 + variant, &tp, variant);
    }
}
END_TEST

/* ---------------------------------------------------------------- LayerScale */

/* timm's names, order and shapes (ls1.gamma after attn.proj, ls2.gamma after mlp.fc2), init_values * ones
 * after timm's init (and before it), the rest of the init's draws unchanged, no weight decay on the gammas */
START_TEST(layerscale_names_and_init)
{
    vt_vit_config c;
    tiny_config(&c);
    vt_vit plain, ls;
    ck_assert_int_eq(vt_vit_init(&plain, &c), VT_OK);
    c.init_values = 1e-5;
    ck_assert_int_eq(vt_vit_init(&ls, &c), VT_OK);
    ck_assert_int_eq(ls.params.count, plain.params.count + 2 * c.depth);
    ck_assert_int_eq(vt_vit_num_params(&ls), vt_vit_num_params(&plain) + 2 * c.depth * c.embed_dim);
    int i = vt_paramset_find(&ls.params, "blocks.1.ls1.gamma");
    ck_assert_int_ge(i, 0);
    ck_assert_str_eq(ls.params.info[i - 1].name, "blocks.1.attn.proj.bias");
    ck_assert_str_eq(ls.params.info[i + 1].name, "blocks.1.norm2.weight");
    i = vt_paramset_find(&ls.params, "blocks.1.ls2.gamma");
    ck_assert_str_eq(ls.params.info[i - 1].name, "blocks.1.mlp.fc2.bias");
    ck_assert_str_eq(ls.params.info[i + 1].name, "blocks.2.norm1.weight");
    ck_assert_int_eq(ls.params.info[i].ndim, 1);
    ck_assert_int_eq(ls.params.info[i].shape[0], c.embed_dim);
    ck_assert_int_eq(ls.blocks[1].ls2, i);
    ck_assert_int_eq(plain.blocks[1].ls1, -1);
    ck_assert(ls.params.data[ls.params.info[i].offset] == 1e-5f);   /* before init_weights too */
    vt_rng r1, r2;
    vt_rng_seed(&r1, 5);
    vt_rng_seed(&r2, 5);
    vt_vit_init_weights(&plain, &r1);
    vt_vit_init_weights(&ls, &r2);
    for (int k = 0; k < ls.params.count; k++) {
        const vt_param_info *pi = &ls.params.info[k];
        const float *v = ls.params.data + pi->offset;
        int j = vt_paramset_find(&plain.params, pi->name);
        if (j < 0) {
            for (int64_t e = 0; e < pi->numel; e++) ck_assert_msg(v[e] == 1e-5f, "%s[%lld] = %g", pi->name, (long long)e, v[e]);
            ck_assert(!vt_optim_decays(pi->name, pi->ndim, NULL, 0));
            continue;
        }
        ck_assert_msg(memcmp(v, plain.params.data + plain.params.info[j].offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs from the plain model's init", pi->name);
    }
    c.init_values = -1;
    ck_assert_int_ne(vt_vit_config_check(&c), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "init_values"), "%s", vt_errmsg());
    vt_vit_free(&plain);
    vt_vit_free(&ls);
}
END_TEST

/* a LayerScale model's weights through .safetensors (the model read from the names: LayerScale), an HDF5
 * checkpoint group with its attributes, and the refusals: a config without LayerScale, a Google .npz */
START_TEST(layerscale_files)
{
    vt_vit_config c, f;
    tiny_config(&c);
    c.init_values = 1e-6;
    vt_vit m, back;
    random_model(&m, &c, 50);
    char st[64], h5[64], npz[64];
    snprintf(st, sizeof st, "/tmp/vit_deit_%d.safetensors", (int)getpid());
    snprintf(h5, sizeof h5, "/tmp/vit_deit_%d.h5", (int)getpid());
    snprintf(npz, sizeof npz, "/tmp/vit_deit_%d.npz", (int)getpid());
    ck_assert_int_eq(vt_vit_save_safetensors(&m, st), VT_OK);
    tiny_config(&f);   /* a config without LayerScale: the file says it has it */
    ck_assert_msg(vt_vit_config_from_safetensors(st, &f) == VT_OK, "%s", vt_errmsg());
    ck_assert(f.init_values == 1e-6);
    vt_vit_config none;
    tiny_config(&none);
    ck_assert_int_ne(vt_ckpt_check_arch(st, &f, &none, false), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "has LayerScale") && strstr(vt_errmsg(), "init_values > 0"), "%s", vt_errmsg());
    none.init_values = 0.5;   /* the value only initialises */
    ck_assert_msg(vt_ckpt_check_arch(st, &f, &none, true) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(vt_vit_init(&back, &f), VT_OK);
    ck_assert_msg(vt_vit_load_safetensors(&back, st) == VT_OK, "%s", vt_errmsg());
    assert_same_params(&back, &m);
    vt_vit_free(&back);
    /* a model without LayerScale refuses the gammas by name */
    tiny_config(&f);
    ck_assert_int_eq(vt_vit_init(&back, &f), VT_OK);
    ck_assert_int_ne(vt_vit_load_safetensors(&back, st), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "ls1.gamma"), "%s", vt_errmsg());
    vt_vit_free(&back);
    /* HDF5: the attribute says LayerScale, the group holds the gammas */
    vt_h5id file = vt_h5_create(h5);
    ck_assert_int_ge(file, 0);
    ck_assert_int_eq(vt_h5_mkgroup(file, "/model"), VT_OK);
    ck_assert_int_eq(vt_vit_write_attrs(file, "/model", &m.cfg), VT_OK);
    ck_assert_int_eq(vt_vit_save_h5(&m, file, "/model", 0), VT_OK);
    vt_h5_close(file);
    file = vt_h5_open(h5, false);
    vt_vit_config_defaults(&f);
    ck_assert_msg(vt_vit_read_attrs(file, "/model", &f, true) == VT_OK, "%s", vt_errmsg());
    ck_assert(f.init_values == 1e-6);
    ck_assert_int_eq(vt_vit_init(&back, &f), VT_OK);
    ck_assert_msg(vt_vit_load_h5(&back, file, "/model") == VT_OK, "%s", vt_errmsg());
    assert_same_params(&back, &m);
    vt_h5_close(file);
    vt_vit_free(&back);
    /* Google's layout has no LayerScale */
    ck_assert_int_ne(vt_vit_save_npz(&m, npz), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "LayerScale"), "%s", vt_errmsg());
    unlink(st);
    unlink(h5);
    unlink(npz);
    vt_vit_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- register tokens */

/* timm's names and shapes (reg_token after cls_token; pos_embed over 1 + R + N tokens, or N with
 * no_embed_class), init normal(1e-6) as the class token; the tokens in the order cls, reg, patches with the
 * position embedding added where timm adds it; average pooling over the patch tokens only; patch dropout
 * keeps every prefix token */
START_TEST(register_tokens_layout)
{
    for (int nec = 0; nec < 2; nec++) {
        vt_vit_config c;
        tiny_config(&c);
        c.reg_tokens = 3;
        c.no_embed_class = nec;
        c.pool = VT_POOL_MEAN;
        vt_vit m;
        ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
        ck_assert_int_eq(m.reg_token, 1);
        ck_assert_str_eq(m.params.info[1].name, "reg_token");
        ck_assert_str_eq(m.params.info[2].name, "pos_embed");
        ck_assert_int_eq(m.params.info[1].shape[1], 3);
        const int N = 6, D = c.embed_dim, T = 1 + 3 + N, P = nec ? 0 : 4;
        ck_assert_int_eq(m.params.info[2].shape[1], N + P);
        vt_rng r;
        vt_rng_seed(&r, 60);
        vt_vit_init_weights(&m, &r);
        const float *reg = m.params.data + m.params.info[1].offset;
        ck_assert(tu_maxabs(reg, 3 * D) > 0 && tu_maxabs(reg, 3 * D) < 1e-5);
        tu_fill_uniform(&r, m.params.data, m.params.numel, -0.5f, 0.5f);
        enum { B = 2 };
        float img[B * 2 * 8 * 12], logits[B * 5];
        tu_fill_uniform(&r, img, B * 2 * 8 * 12, -1, 1);
        vt_graph g;
        vt_graph_init(&g, 1 << 20);
        vt_var *blocks[3];
        vt_vit_acts acts = {.block = blocks};
        vt_var *x = vt_var_wrap(&g, img, 4, (int64_t[]){B, 2, 8, 12}, "x");
        vt_var *l = vt_vit_forward(&m, &g, x, &acts);
        ck_assert_msg(l != NULL, "%s", vt_errmsg());
        memcpy(logits, l->val.data, sizeof logits);
        /* the embedding: cls (+ pos[0]), reg[j] (+ pos[1 + j]), patch i (+ pos[P + i]) */
        const float *e = acts.patch_embed->val.data, *cls = m.params.data + m.params.info[0].offset,
                    *pos = m.params.data + m.params.info[2].offset;
        ck_assert_int_eq(acts.block[0]->val.shape[1], T);
        vt_graph g2;
        vt_graph_init(&g2, 1 << 16);
        vt_var *tok = vt_var_wrap(&g2, (float *)e, 3, (int64_t[]){B, N, D}, "tok");
        vt_var *emb = vt_embed_reg(&g2, tok, &m.params.vars[0], &m.params.vars[1], &m.params.vars[2]);
        ck_assert_ptr_nonnull(emb);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++) {
                    float want = t == 0 ? cls[d] : t < 4 ? reg[(t - 1) * D + d] : e[((size_t)b * N + t - 4) * D + d];
                    if (!nec) want += pos[t * D + d];
                    else if (t >= 4) want += pos[(t - 4) * D + d];
                    ck_assert_msg(emb->val.data[((size_t)b * T + t) * D + d] == want, "token %d of image %d", t, b);
                }
        vt_graph_free(&g2);
        /* the logits: head(mean over the patch tokens of norm(tokens)) */
        const float *tk = acts.norm->val.data, *hw = m.params.data + m.params.info[m.head_w].offset,
                    *hb = m.params.data + m.params.info[m.head_b].offset;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < 5; k++) {
                double z = hb[k];
                for (int d = 0; d < D; d++) {
                    double mean = 0;
                    for (int t = 4; t < T; t++) mean += tk[((size_t)b * T + t) * D + d];
                    z += hw[k * D + d] * mean / N;
                }
                ck_assert_msg(fabs(z - logits[b * 5 + k]) < 1e-5, "logit %d of image %d: %g, expected %g", k, b,
                              (double)logits[b * 5 + k], z);
            }
        /* patch dropout: the 4 prefix tokens and 3 of the 6 patch tokens */
        m.cfg.patch_drop_rate = 0.5;
        vt_graph_reset(&g);
        const vt_vit_train_pass tp = {.key = 1, .first = 0};
        x = vt_var_wrap(&g, img, 4, (int64_t[]){B, 2, 8, 12}, "x");
        vt_var *y = vt_vit_encode(&m, &g, x, NULL, &tp);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(y->val.shape[1], 4 + 3);
        vt_graph_free(&g);
        vt_vit_free(&m);
    }
}
END_TEST

/* every parameter's gradient against finite differences with register tokens: reg_token among them, with the
 * position embedding over every token and over the patches only, average and token pooling, LayerScale,
 * stochastic depth and patch dropout together */
START_TEST(register_tokens_gradients)
{
    for (int variant = 0; variant < 2; variant++) {
        vt_vit_config c;
        tiny_config(&c);
        c.depth = 2;
        c.reg_tokens = 2;
        c.no_embed_class = variant == 1;
        c.pool = variant == 1 ? VT_POOL_MEAN : VT_POOL_TOKEN;
        c.init_values = variant == 1 ? 0.2 : 0;
        c.drop_path_rate = variant == 1 ? 0.5 : 0;
        c.patch_drop_rate = variant == 1 ? 0.4 : 0;
        const vt_vit_train_pass tp = {.key = 5, .first = 2};
        gradcheck_model(&c, 70 + variant, variant ? &tp : NULL, variant);
    }
}
END_TEST

/* weights with register tokens (and no_embed_class) through .safetensors: the model read from the shapes (R from
 * reg_token, the layout of pos_embed from its count), the arch check naming the keys, a plain model refusing */
START_TEST(register_tokens_files)
{
    vt_vit_config c, f;
    tiny_config(&c);
    c.reg_tokens = 4;
    c.no_embed_class = true;
    c.init_values = 1e-5;
    vt_vit m, back;
    random_model(&m, &c, 90);
    char st[64];
    snprintf(st, sizeof st, "/tmp/vit_deit_reg_%d.safetensors", (int)getpid());
    ck_assert_int_eq(vt_vit_save_safetensors(&m, st), VT_OK);
    tiny_config(&f);
    ck_assert_msg(vt_vit_config_from_safetensors(st, &f) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(f.reg_tokens, 4);
    ck_assert(f.no_embed_class);
    ck_assert_int_eq(f.img_h, 8);
    ck_assert_int_eq(f.img_w, 12);
    ck_assert_int_eq(vt_vit_init(&back, &f), VT_OK);
    ck_assert_msg(vt_vit_load_safetensors(&back, st) == VT_OK, "%s", vt_errmsg());
    assert_same_params(&back, &m);
    vt_vit_free(&back);
    /* the same with the position embedding over every token, on a config of another grid (a square one read) */
    vt_vit_free(&m);
    c.no_embed_class = false;
    c.img_h = c.img_w = 12;   /* 3 x 3 */
    random_model(&m, &c, 91);
    ck_assert_int_eq(vt_vit_save_safetensors(&m, st), VT_OK);
    tiny_config(&f);
    ck_assert_msg(vt_vit_config_from_safetensors(st, &f) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(f.reg_tokens, 4);
    ck_assert(!f.no_embed_class);
    ck_assert_int_eq(f.img_h, 12);
    ck_assert_int_eq(f.img_w, 12);
    vt_vit_config cfg;
    tiny_config(&cfg);
    cfg.init_values = 1e-5;
    ck_assert_int_ne(vt_ckpt_check_arch(st, &f, &cfg, false), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "reg_tokens = 4"), "%s", vt_errmsg());
    cfg.reg_tokens = 4;
    cfg.no_embed_class = true;
    ck_assert_int_ne(vt_ckpt_check_arch(st, &f, &cfg, false), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "no_embed_class = false"), "%s", vt_errmsg());
    tiny_config(&f);
    f.init_values = 1e-5;
    ck_assert_int_eq(vt_vit_init(&back, &f), VT_OK);
    ck_assert_int_ne(vt_vit_load_safetensors(&back, st), VT_OK);
    ck_assert_msg(strstr(vt_errmsg(), "reg_token") && strstr(vt_errmsg(), "set [model] reg_tokens"), "%s", vt_errmsg());
    vt_vit_free(&back);
    unlink(st);
    vt_vit_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- the PyTorch reference */

/* bench/deit_reference.py's three models (timm's forward rebuilt in torch float64, checked there against timm's
 * own logits of the goldens' plain case): the model read from each .safetensors file's shapes over a config that
 * gives only what shapes cannot (heads, pooling; the image size of the non-square one), loaded, and its float32
 * logits within 1e-5 x max |logit| of torch's; one gamma moved by 1% is caught */
START_TEST(pytorch_reference_logits)
{
    static const struct {
        const char *name;
        const float *input;
        const double *logits;
        int heads, img_h, img_w, chans;
        vt_pool_kind pool;
        bool fc_norm;
        int reg;
        bool ls, nec;
    } cases[] = {
        {"deit3_tiny", deit3_tiny_input, deit3_tiny_logits, 2, 16, 16, 3, VT_POOL_TOKEN, false, 0, true, true},
        {"reg4_tiny", reg4_tiny_input, reg4_tiny_logits, 2, 16, 16, 3, VT_POOL_MEAN, true, 4, false, false},
        {"reg2_ls_tiny", reg2_ls_tiny_input, reg2_ls_tiny_logits, 4, 12, 16, 1, VT_POOL_TOKEN, false, 2, true, true},
    };
    const char *root = getenv("VIT_SOURCE_ROOT");
    ck_assert_ptr_nonnull(root);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/tests/data/%s.safetensors", root, cases[k].name);
        vt_vit_config c;
        vt_vit_config_defaults(&c);
        c.num_heads = cases[k].heads;
        c.pool = cases[k].pool;
        c.img_h = cases[k].img_h;
        c.img_w = cases[k].img_w;
        c.patch = 4;
        ck_assert_msg(vt_vit_config_from_safetensors(path, &c) == VT_OK, "%s", vt_errmsg());
        ck_assert_int_eq(c.reg_tokens, cases[k].reg);
        ck_assert_int_eq(c.init_values > 0, cases[k].ls);
        ck_assert_int_eq(c.no_embed_class, cases[k].nec);
        ck_assert_int_eq(c.fc_norm, cases[k].fc_norm);
        ck_assert_int_eq(c.in_chans, cases[k].chans);
        ck_assert_int_eq(c.img_h, cases[k].img_h);
        ck_assert_int_eq(c.img_w, cases[k].img_w);
        vt_vit m;
        ck_assert_msg(vt_vit_init(&m, &c) == VT_OK, "%s", vt_errmsg());
        ck_assert_msg(vt_vit_load_safetensors(&m, path) == VT_OK, "%s: %s", cases[k].name, vt_errmsg());
        const int K = c.num_classes;
        float out[2 * 8];
        double got[2 * 8], want_max = 0, worst = 0;
        run(&m, cases[k].input, 2, NULL, NULL, out);
        for (int i = 0; i < 2 * K; i++) {
            got[i] = out[i];
            want_max = fmax(want_max, fabs(cases[k].logits[i]));
            worst = fmax(worst, fabs(got[i] - cases[k].logits[i]));
        }
        printf("%-13s logits vs PyTorch: worst %.3g (max |logit| %.3g)\n", cases[k].name, worst, want_max);
        ck_assert_msg(worst <= 1e-5 * want_max, "%s: logits differ by %g (max %g)", cases[k].name, worst, want_max);
        /* the comparison can fail: one element of a gamma (or of the register tokens) moved by 1% */
        int idx = cases[k].ls ? m.blocks[1].ls2 : m.reg_token;
        float *v = m.params.data + m.params.info[idx].offset;
        v[3] *= 1.01f;
        run(&m, cases[k].input, 2, NULL, NULL, out);
        worst = 0;
        for (int i = 0; i < 2 * K; i++) worst = fmax(worst, fabs(out[i] - cases[k].logits[i]));
        ck_assert_msg(worst > 1e-5 * want_max, "%s: %s moved by 1%% went unnoticed (%g)", cases[k].name,
                      m.params.info[idx].name, worst);
        vt_vit_free(&m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deit");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, drop_path_rule_and_draws);
    tcase_add_test(tc, drop_path_expectation);
    tcase_add_test(tc, drop_path_is_layerscale_by_the_factors);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, layerscale_names_and_init);
    tcase_add_test(tc, layerscale_files);
    tcase_add_test(tc, register_tokens_layout);
    tcase_add_test(tc, register_tokens_gradients);
    tcase_add_test(tc, register_tokens_files);
    tcase_add_test(tc, pytorch_reference_logits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
