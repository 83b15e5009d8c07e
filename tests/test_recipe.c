/* test_recipe.c - the DeiT / timm recipe's data pieces against independent computations: mixup and
 * cutmix (timm's rand_bbox boxes and corrected lambdas, mixup_target rows, the mixed pixels, the draw's
 * statistics), the soft-target cross-entropy, and the replicas mixing the whole batch. */
#include "testutil.h"
#include "data/data.h"
#include "nn/nn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* timm's rand_bbox + cutmix_bbox_and_lam, worked by hand:
 * 8x8, lam 0.7: cut = int(8 sqrt(0.3)) = int(4.38) = 4; centre (1, 6): rows clip(1-2, 1+2) = [0, 3),
 *   columns [4, 8); area 12, lam 1 - 12/64 = 0.8125
 * 8x8, lam 0.3: cut = int(8 sqrt(0.7)) = int(6.69) = 6; centre (4, 4): [1, 7) x [1, 7); lam 1 - 36/64
 * 6x10, lam 0.5: cut_h = int(4.24) = 4, cut_w = int(7.07) = 7 (7 // 2 = 3); centre (5, 0): rows [3, 6)
 *   (7 clipped to 6), columns [0, 3) (-3 clipped to 0); lam 1 - 9/60 = 0.85
 * 5x5, lam 0.9: cut = int(5 sqrt(0.1)) = int(1.58) = 1, 1 // 2 = 0: an empty box, lam 1 */
START_TEST(cutmix_boxes_as_timm)
{
    const struct {
        int H, W;
        double lam;
        int cy, cx, y0, y1, x0, x1;
        double want;
    } cases[] = {
        {8, 8, 0.7, 1, 6, 0, 3, 4, 8, 0.8125},
        {8, 8, 0.3, 4, 4, 1, 7, 1, 7, 0.4375},
        {6, 10, 0.5, 5, 0, 3, 6, 0, 3, 0.85},
        {5, 5, 0.9, 2, 2, 2, 2, 2, 2, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vt_mix_params p;
        vt_cutmix_box(cases[i].H, cases[i].W, cases[i].lam, cases[i].cy, cases[i].cx, &p);
        ck_assert_msg(p.cutmix && p.y0 == cases[i].y0 && p.y1 == cases[i].y1 && p.x0 == cases[i].x0 && p.x1 == cases[i].x1,
                      "case %zu: box rows [%d, %d) columns [%d, %d)", i, p.y0, p.y1, p.x0, p.x1);
        ck_assert_msg(fabs(p.lam - cases[i].want) < 1e-15, "case %zu: lam %.17g, expected %.17g", i, p.lam, cases[i].want);
    }
}
END_TEST

/* timm's mixup_target: labels (0, 2, 1, 3), K 4, smoothing 0.1 (off 0.025, on 0.925), lam 0.7: row b is
 * 0.7 one_hot(y[b]) + 0.3 one_hot(y[3-b]) in those values; row 0: (0.655, 0.025, 0.025, 0.295) */
START_TEST(mixup_targets_as_timm)
{
    const int y[4] = {0, 2, 1, 3};
    float t[16];
    vt_mix_targets(y, 4, 4, 0.1, 0.7, t);
    const float want[16] = {0.655f, 0.025f, 0.025f, 0.295f,   /* 0 with 3 */
                            0.025f, 0.295f, 0.655f, 0.025f,   /* 2 with 1 */
                            0.025f, 0.655f, 0.295f, 0.025f,   /* 1 with 2 */
                            0.295f, 0.025f, 0.025f, 0.655f};  /* 3 with 0 */
    for (int i = 0; i < 16; i++) ck_assert_msg(fabsf(t[i] - want[i]) < 1e-7f, "target %d: %.9g vs %.9g", i, t[i], want[i]);
    /* lam 1 (an unmixed batch): the label-smoothed one-hot rows; the middle of an odd batch mixes with itself */
    const int y3[3] = {1, 0, 2};
    float u[9];
    vt_mix_targets(y3, 3, 3, 0.3, 1.0, u);
    ck_assert(fabsf(u[1] - 0.8f) < 1e-7f && fabsf(u[0] - 0.1f) < 1e-7f && fabsf(u[2] - 0.1f) < 1e-7f);
    vt_mix_targets(y3, 3, 3, 0.0, 0.25, u);
    const float w3[9] = {0, 0.25f, 0.75f, 1, 0, 0, 0, 0.75f, 0.25f};
    for (int i = 0; i < 9; i++) ck_assert_msg(fabsf(u[i] - w3[i]) < 1e-7f, "odd batch target %d: %g vs %g", i, u[i], w3[i]);
}
END_TEST

/* the pixels: mixup is lam x[b] + (1 - lam) x[B-1-b]; cutmix swaps the box between b and B-1-b and leaves
 * the rest (and the middle image of an odd batch) alone */
START_TEST(mixed_pixels)
{
    enum { B = 3, C = 2, H = 4, W = 5, K = 3, N = B * C * H * W };
    float x[N], orig[N], t[B * K];
    for (int i = 0; i < N; i++) orig[i] = (float)(i % 17) - 0.5f * (float)(i / 40);
    const int y[B] = {0, 1, 2};
    memcpy(x, orig, sizeof x);
    vt_mix_params p = {.lam = 0.25};
    ck_assert_int_eq(vt_mix_apply(&p, x, y, B, C, H, W, K, 0.0, t), VT_OK);
    const int per = C * H * W;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < per; i++) {
            float want = 0.25f * orig[b * per + i] + 0.75f * orig[(B - 1 - b) * per + i];
            ck_assert_msg(fabsf(x[b * per + i] - want) < 1e-6f, "mixup image %d pixel %d: %g vs %g", b, i, x[b * per + i], want);
        }
    memcpy(x, orig, sizeof x);
    p = (vt_mix_params){.lam = 0.7, .cutmix = true, .y0 = 1, .y1 = 3, .x0 = 2, .x1 = 5};
    ck_assert_int_eq(vt_mix_apply(&p, x, y, B, C, H, W, K, 0.0, t), VT_OK);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < H; r++)
                for (int q = 0; q < W; q++) {
                    bool in = r >= 1 && r < 3 && q >= 2;
                    int src = in ? B - 1 - b : b, i = (c * H + r) * W + q;
                    ck_assert_msg(x[b * per + i] == orig[src * per + i], "cutmix image %d (%d, %d, %d)", b, c, r, q);
                }
    ck_assert(fabsf(t[0] - 0.7f) < 1e-7f && fabsf(t[2] - 0.3f) < 1e-7f);
    /* a label outside the classes is refused */
    const int bad[B] = {0, 3, 1};
    ck_assert_int_eq(vt_mix_apply(&p, x, bad, B, C, H, W, K, 0.0, t), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "label 3"), "%s", vt_errmsg());
}
END_TEST

/* the draws: Beta's mean and variance; the share of mixed batches (mix_prob), of cutmix among them
 * (switch_prob), mixup's lambda ~ Beta(0.8, 0.8), every cutmix box inside the image with lambda its area */
START_TEST(mix_draw_statistics)
{
    vt_rng r;
    vt_rng_seed(&r, 3);
    const double ab[4][2] = {{0.8, 0.8}, {1, 1}, {2, 5}, {0.3, 0.3}};
    enum { N = 40000 };
    for (int i = 0; i < 4; i++) {
        double a = ab[i][0], b = ab[i][1], s = 0, s2 = 0;
        for (int k = 0; k < N; k++) {
            double v = vt_beta_draw(&r, a, b);
            ck_assert(v >= 0 && v <= 1);
            s += v;
            s2 += v * v;
        }
        double mean = s / N, var = s2 / N - mean * mean;
        double m0 = a / (a + b), v0 = a * b / ((a + b) * (a + b) * (a + b + 1));
        ck_assert_msg(fabs(mean - m0) < 4 * sqrt(v0 / N) + 1e-3 && fabs(var - v0) < 0.05 * v0,
                      "Beta(%g, %g): mean %g (%g), variance %g (%g)", a, b, mean, m0, var, v0);
    }
    vt_mix m = {.mixup_alpha = 0.8, .cutmix_alpha = 1.0, .prob = 0.6, .switch_prob = 0.3};
    int mixed = 0, cut = 0;
    double s = 0, s2 = 0;
    for (int k = 0; k < N; k++) {
        vt_mix_params p;
        vt_mix_draw(&m, &r, 7, 9, &p);
        if (p.lam == 1.0 && !p.cutmix) continue;
        mixed++;
        if (!p.cutmix) {
            s += p.lam;
            s2 += p.lam * p.lam;
            continue;
        }
        cut++;
        ck_assert(p.y0 >= 0 && p.y0 <= p.y1 && p.y1 <= 7 && p.x0 >= 0 && p.x0 <= p.x1 && p.x1 <= 9);
        ck_assert(fabs(p.lam - (1.0 - (p.y1 - p.y0) * (p.x1 - p.x0) / 63.0)) < 1e-15);
    }
    ck_assert_msg(fabs(mixed / (double)N - 0.6) < 0.015, "%d of %d batches mixed", mixed, N);
    ck_assert_msg(fabs(cut / (double)mixed - 0.3) < 0.015, "%d of %d mixed batches by cutmix", cut, mixed);
    int nm = mixed - cut;
    double mean = s / nm, var = s2 / nm - mean * mean;
    ck_assert_msg(fabs(mean - 0.5) < 0.01 && fabs(var - 1 / (4 * 2.6)) < 0.006, "mixup lambda mean %g variance %g", mean, var);
    /* off: never mixed */
    vt_mix off = {.prob = 1};
    vt_mix_params p;
    vt_mix_draw(&off, &r, 7, 9, &p);
    ck_assert(!vt_mix_enabled(&off) && p.lam == 1.0 && !p.cutmix);
}
END_TEST

/* the soft-target cross-entropy: a hand value (logits (0, ln 3): p = (1/4, 3/4); targets (0.3, 0.7):
 * 0.3 ln 4 + 0.7 ln(4/3)); against smoothed one-hot targets it is the label-smoothed loss, value and
 * gradient (its finite-difference check is tests/test_autograd.c's "cross-entropy soft targets") */
START_TEST(soft_cross_entropy)
{
    float z[2] = {0.0f, (float)log(3.0)}, p[2], t[2] = {0.3f, 0.7f};
    double want = 0.3 * log(4.0) + 0.7 * log(4.0 / 3.0);
    ck_assert(fabs(vt_crossentropy_soft_forward(p, z, t, 1, 2) - want) < 1e-6);
    enum { B = 4, K = 6 };
    vt_rng r;
    vt_rng_seed(&r, 9);
    float logits[B * K], tg[B * K], p1[B * K], p2[B * K], g1[B * K], g2[B * K];
    tu_fill_uniform(&r, logits, B * K, -3, 3);
    const int y[B] = {5, 0, 3, 3};
    vt_mix_targets(y, B, K, 0.2, 1.0, tg);   /* lam 1: the smoothed one-hot rows */
    double l1 = vt_crossentropy_forward(p1, logits, y, B, K, 0.2f), l2 = vt_crossentropy_soft_forward(p2, logits, tg, B, K);
    ck_assert_msg(fabs(l1 - l2) < 1e-6, "%.9g vs %.9g", l1, l2);
    vt_crossentropy_backward(g1, p1, y, B, K, 0.2f, 0.5f, false);
    vt_crossentropy_soft_backward(g2, p2, tg, B, K, 0.5f, false);
    ck_assert_msg(tu_maxdiff(g1, g2, B * K) < 1e-7, "gradients differ by %g", tu_maxdiff(g1, g2, B * K));
}
END_TEST

/* with soft targets the replicas' step is the single graph's: each part takes its own rows of the whole
 * batch's targets (so a mixed batch trains the same on 1, 2 or 3 replicas) */
START_TEST(replicas_take_their_rows_of_the_targets)
{
    vt_vit_config c;
    vt_vit_config_defaults(&c);
    c.img_h = c.img_w = 8;
    c.patch = 4;
    c.in_chans = 1;
    c.num_classes = 4;
    c.embed_dim = 8;
    c.depth = 1;
    c.num_heads = 2;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 5);
    vt_vit_init_weights(&m, &r);
    enum { B = 5 };
    float img[B * 64], t[B * 4];
    tu_fill_uniform(&r, img, B * 64, -1, 1);
    const int y[B] = {0, 3, 2, 1, 1};
    vt_mix_params p;
    vt_cutmix_box(8, 8, 0.6, 3, 5, &p);
    ck_assert_int_eq(vt_mix_apply(&p, img, y, B, 1, 8, 8, 4, 0.1, t), VT_OK);
    const int64_t NP = m.params.numel;
    float *ref = malloc(sizeof(float) * (size_t)NP);
    double ref_loss = 0;
    for (int n = 1; n <= 3; n++) {
        vt_vit_replicas rep;
        ck_assert_int_eq(vt_vit_replicas_init(&rep, &m, n, 1 << 16, false), VT_OK);
        double loss;
        vt_paramset_zero_grad(&m.params);
        ck_assert_msg(vt_vit_replicas_train_soft(&rep, img, y, t, B, 0.0f, 1.0f, 7, &loss) == VT_OK, "%s", vt_errmsg());
        if (n == 1) {
            memcpy(ref, m.params.grad, sizeof(float) * (size_t)NP);
            ref_loss = loss;
            /* the loss is the soft cross-entropy of the model's logits against those rows */
            vt_graph g;
            ck_assert_int_eq(vt_graph_init(&g, 1 << 20), VT_OK);
            vt_var *x = vt_var_wrap(&g, img, 4, (int64_t[]){B, 1, 8, 8}, "x");
            vt_var *z = x ? vt_vit_forward(&m, &g, x, NULL) : NULL;
            ck_assert_msg(z != NULL, "%s", vt_errmsg());
            float pr[B * 4];
            double want = vt_crossentropy_soft_forward(pr, z->val.data, t, B, 4);
            ck_assert_msg(fabs(want - loss) < 1e-6, "loss %.9g, soft cross-entropy of the logits %.9g", loss, want);
            vt_graph_free(&g);
        } else {
            double s = tu_maxabs(ref, NP);
            ck_assert_msg(fabs(loss - ref_loss) < 1e-6 * fabs(ref_loss), "%d replicas: loss %.9g vs %.9g", n, loss, ref_loss);
            ck_assert_msg(tu_maxdiff(m.params.grad, ref, NP) <= 1e-5 * s, "%d replicas: gradients differ by %g of %g", n,
                          tu_maxdiff(m.params.grad, ref, NP), s);
        }
        vt_vit_replicas_free(&rep);
    }
    free(ref);
    vt_vit_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("mix");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cutmix_boxes_as_timm);
    tcase_add_test(tc, mixup_targets_as_timm);
    tcase_add_test(tc, mixed_pixels);
    tcase_add_test(tc, mix_draw_statistics);
    tcase_add_test(tc, soft_cross_entropy);
    tcase_add_test(tc, replicas_take_their_rows_of_the_targets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
