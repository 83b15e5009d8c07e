/* test_recipe.c - the DeiT / timm recipe's data pieces against independent computations: mixup and
 * cutmix (timm's rand_bbox boxes and corrected lambdas, mixup_target rows, the mixed pixels, the draw's
 * statistics), the soft-target cross-entropy, and the replicas mixing the whole batch. */
#include "testutil.h"
#include "data/data.h"
#include "nn/nn.h"
#include "optim/optim.h"
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


/* ---------------------------------------------------------------- RandAugment's ops, worked by hand */
static void op_case(const char *what, vt_aug_op op, double arg, int C, int H, int W, const uint8_t *in, const uint8_t *want)
{
    uint8_t img[64], tmp[64];
    const uint8_t fill[4] = {7, 9, 11, 13};
    memcpy(img, in, (size_t)C * H * W);
    vt_aug_apply_op(op, arg, img, C, H, W, fill, tmp);
    for (int i = 0; i < C * H * W; i++)
        ck_assert_msg(img[i] == want[i], "%s (%s %g): pixel %d is %d, expected %d", what, vt_aug_op_name(op), arg, i, img[i],
                      want[i]);
}

START_TEST(randaugment_ops_by_hand)
{
    /* AutoContrast per channel: channel 0 spans 10..61 (scale 255 / 51 = 5, offset -50), channel 1 is flat */
    op_case("autocontrast", VT_AUG_AUTOCONTRAST, 0, 2, 1, 4, (const uint8_t[]){10, 20, 61, 30, 5, 5, 5, 5},
            (const uint8_t[]){0, 50, 255, 100, 5, 5, 5, 5});
    /* Invert */
    op_case("invert", VT_AUG_INVERT, 0, 1, 1, 3, (const uint8_t[]){0, 100, 255}, (const uint8_t[]){255, 155, 0});
    /* Posterize: 2 bits keep 0xC0; 0 bits give black; 8 bits change nothing */
    op_case("posterize 2", VT_AUG_POSTERIZE, 2, 1, 1, 4, (const uint8_t[]){255, 127, 63, 200}, (const uint8_t[]){192, 64, 0, 192});
    op_case("posterize 0", VT_AUG_POSTERIZE, 0, 1, 1, 2, (const uint8_t[]){255, 127}, (const uint8_t[]){0, 0});
    op_case("posterize 8", VT_AUG_POSTERIZE, 8, 1, 1, 2, (const uint8_t[]){255, 127}, (const uint8_t[]){255, 127});
    /* Solarize: pixels >= the threshold inverted (256: none, 0: all) */
    op_case("solarize 128", VT_AUG_SOLARIZE, 128, 1, 1, 4, (const uint8_t[]){127, 128, 200, 0}, (const uint8_t[]){127, 127, 55, 0});
    op_case("solarize 256", VT_AUG_SOLARIZE, 256, 1, 1, 2, (const uint8_t[]){255, 3}, (const uint8_t[]){255, 3});
    op_case("solarize 0", VT_AUG_SOLARIZE, 0, 1, 1, 2, (const uint8_t[]){255, 3}, (const uint8_t[]){0, 252});
    /* SolarizeAdd: + 99 below 128, capped at 255 */
    op_case("solarize add", VT_AUG_SOLARIZE_ADD, 99, 1, 1, 4, (const uint8_t[]){10, 127, 128, 200}, (const uint8_t[]){109, 226, 128, 200});
    op_case("solarize add 200", VT_AUG_SOLARIZE_ADD, 200, 1, 1, 2, (const uint8_t[]){100, 20}, (const uint8_t[]){255, 220});
    /* Brightness: v * f truncated, clipped */
    op_case("brightness 0.5", VT_AUG_BRIGHTNESS, 0.5, 1, 1, 3, (const uint8_t[]){201, 3, 0}, (const uint8_t[]){100, 1, 0});
    op_case("brightness 1.9", VT_AUG_BRIGHTNESS, 1.9, 1, 1, 2, (const uint8_t[]){200, 100}, (const uint8_t[]){255, 190});
    /* Contrast: towards int(mean + 0.5) = int(138.75 + 0.5) = 139: 139 + 0.5 (v - 139), truncated */
    op_case("contrast 0.5", VT_AUG_CONTRAST, 0.5, 1, 1, 4, (const uint8_t[]){0, 100, 200, 255}, (const uint8_t[]){69, 119, 169, 197});
    /* Sharpness: the SMOOTH filter of the centre, (8 x 10 + 5 x 100) / 13 = 44.6 -> 45 (the border kept), then
     * 45 + f (v - 45): f 0.5 -> 72, f 2 -> 155; the border pixels stay 10 */
    const uint8_t dot[9] = {10, 10, 10, 10, 100, 10, 10, 10, 10};
    op_case("sharpness 0.5", VT_AUG_SHARPNESS, 0.5, 1, 3, 3, dot, (const uint8_t[]){10, 10, 10, 10, 72, 10, 10, 10, 10});
    op_case("sharpness 2", VT_AUG_SHARPNESS, 2, 1, 3, 3, dot, (const uint8_t[]){10, 10, 10, 10, 155, 10, 10, 10, 10});
    /* Color (RGB): the grey of (200, 100, 0) is (200 19595 + 100 38470 + 32768) >> 16 = 7798768 >> 16 = 118; f 0 gives it,
     * f 0.5 gives (159, 109, 59); on one channel nothing changes */
    op_case("color 0", VT_AUG_COLOR, 0, 3, 1, 1, (const uint8_t[]){200, 100, 0}, (const uint8_t[]){118, 118, 118});
    op_case("color 0.5", VT_AUG_COLOR, 0.5, 3, 1, 1, (const uint8_t[]){200, 100, 0}, (const uint8_t[]){159, 109, 59});
    op_case("color grey", VT_AUG_COLOR, 0.2, 1, 1, 2, (const uint8_t[]){200, 100}, (const uint8_t[]){200, 100});
    /* Translate (PIL's affine data: output x reads input x + 2): [1 2 3 4 5] -> [3 4 5 fill fill]; per channel fill */
    op_case("translate x", VT_AUG_TRANSLATE_X, 2, 2, 1, 5, (const uint8_t[]){1, 2, 3, 4, 5, 10, 20, 30, 40, 50},
            (const uint8_t[]){3, 4, 5, 7, 7, 30, 40, 50, 9, 9});
    op_case("translate y", VT_AUG_TRANSLATE_Y, -1, 1, 3, 2, (const uint8_t[]){1, 2, 3, 4, 5, 6}, (const uint8_t[]){7, 7, 1, 2, 3, 4});
    /* ShearX 1: output (x, y) reads x + y + 1 - 0.5 between pixel centres: row 0 (10 20 30) -> (15 25 fill),
     * row 1 (40 50 60) -> (55 fill fill), row 2 all fill */
    op_case("shear x", VT_AUG_SHEAR_X, 1, 1, 3, 3, (const uint8_t[]){10, 20, 30, 40, 50, 60, 70, 80, 90},
            (const uint8_t[]){15, 25, 7, 55, 7, 7, 7, 7, 7});
    /* Rotate 90 (counter-clockwise): the right column becomes the top row */
    op_case("rotate 90", VT_AUG_ROTATE, 90, 1, 3, 3, (const uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9},
            (const uint8_t[]){3, 6, 9, 2, 5, 8, 1, 4, 7});
    op_case("rotate 180", VT_AUG_ROTATE, 180, 1, 2, 3, (const uint8_t[]){1, 2, 3, 4, 5, 6}, (const uint8_t[]){6, 5, 4, 3, 2, 1});
    /* Equalize: 256 pixels of 10, 254 of 20, 2 of 30: step (512 - 2) / 255 = 2, lut 10 -> 1 / 2 = 0,
     * 20 -> 257 / 2 = 128, 30 -> 511 / 2 = 255 */
    uint8_t eq[512], eqw[512], tmp[512];
    for (int i = 0; i < 512; i++) {
        eq[i] = i < 256 ? 10 : i < 510 ? 20 : 30;
        eqw[i] = i < 256 ? 0 : i < 510 ? 128 : 255;
    }
    vt_aug_apply_op(VT_AUG_EQUALIZE, 0, eq, 1, 16, 32, (const uint8_t[4]){0}, tmp);
    ck_assert_msg(memcmp(eq, eqw, sizeof eq) == 0, "equalize: %d %d %d", eq[0], eq[300], eq[511]);
}
END_TEST

/* timm's notation, its level arguments at m9, the op lists (no Color on one channel) */
START_TEST(randaugment_policy)
{
    vt_randaug ra;
    ck_assert_int_eq(vt_randaug_parse("m9-n2", &ra), VT_OK);
    ck_assert(ra.kind == VT_RANDAUG_RAND && ra.m == 9 && ra.n == 2 && ra.prob == 0.5 && ra.mstd == 0 && !ra.increasing);
    ck_assert_int_eq(vt_randaug_parse("rand-m7-mstd0.5-inc1-n3-p0.8-mmax12", &ra), VT_OK);
    ck_assert(ra.m == 7 && ra.n == 3 && ra.mstd == 0.5 && ra.increasing && ra.prob == 0.8 && ra.mmax == 12);
    ck_assert_int_eq(vt_randaug_parse("rand-m9-mstd101", &ra), VT_OK);
    ck_assert(isinf(ra.mstd));
    ck_assert_int_eq(vt_randaug_parse("ta", &ra), VT_OK);
    ck_assert_int_eq(ra.kind, VT_RANDAUG_TRIVIAL);
    ck_assert_int_eq(vt_randaug_parse("", &ra), VT_OK);
    ck_assert_int_eq(ra.kind, VT_RANDAUG_OFF);
    const char *bad[] = {"m9-x3", "m9-n0", "rand-m9-p2", "m", "m9-n2.5", "autoaug"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(vt_randaug_parse(bad[i], &ra) == VT_ERR, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(vt_errmsg(), "timm's notation"), "%s", vt_errmsg());
    }
    /* levels at m 9 (timm: level / 10 times 30 degrees, 0.3 shear, 0.45 of the size, 4 bits, 256, 110, 1.8 + 0.1) */
    vt_rng r;
    vt_rng_seed(&r, 1);
    int neg = 0;
    for (int k = 0; k < 200; k++) {
        double a = vt_randaug_arg(VT_AUG_ROTATE, 9, false, 20, 10, &r);
        ck_assert(fabs(fabs(a) - 27) < 1e-12);
        neg += a < 0;
    }
    ck_assert_msg(neg > 70 && neg < 130, "%d of 200 rotations negative", neg);
    ck_assert(fabs(fabs(vt_randaug_arg(VT_AUG_SHEAR_X, 9, false, 20, 10, &r)) - 0.27) < 1e-12);
    ck_assert(fabs(fabs(vt_randaug_arg(VT_AUG_TRANSLATE_X, 9, false, 20, 10, &r)) - 4.05) < 1e-12);   /* of the width */
    ck_assert(fabs(fabs(vt_randaug_arg(VT_AUG_TRANSLATE_Y, 9, false, 20, 10, &r)) - 8.1) < 1e-12);
    ck_assert(vt_randaug_arg(VT_AUG_POSTERIZE, 9, false, 8, 8, &r) == 3 && vt_randaug_arg(VT_AUG_POSTERIZE, 9, true, 8, 8, &r) == 1);
    ck_assert(vt_randaug_arg(VT_AUG_SOLARIZE, 9, false, 8, 8, &r) == 230 && vt_randaug_arg(VT_AUG_SOLARIZE, 9, true, 8, 8, &r) == 26);
    ck_assert(vt_randaug_arg(VT_AUG_SOLARIZE_ADD, 9, false, 8, 8, &r) == 99);
    ck_assert(fabs(vt_randaug_arg(VT_AUG_CONTRAST, 9, false, 8, 8, &r) - 1.72) < 1e-12);
    ck_assert(fabs(fabs(vt_randaug_arg(VT_AUG_CONTRAST, 9, true, 8, 8, &r) - 1) - 0.81) < 1e-12);
    vt_aug_op ops[VT_AUG_NOPS];
    vt_randaug_parse("m9-n2", &ra);
    ck_assert_int_eq(vt_randaug_ops(&ra, 3, ops), 15);
    int n = vt_randaug_ops(&ra, 1, ops);
    ck_assert_int_eq(n, 14);
    for (int i = 0; i < n; i++) ck_assert_int_ne(ops[i], VT_AUG_COLOR);
    vt_randaug_parse("ta", &ra);
    ck_assert_int_eq(vt_randaug_ops(&ra, 3, ops), 14);
    ck_assert_int_eq(vt_randaug_ops(&ra, 1, ops), 13);
}
END_TEST

/* in the transform: training only; p0 (no op ever applied) is bitwise the transform without it (the
 * uint8 round trip of unresized pixels is exact); p1 changes images; the same (seed, sample) the same image */
START_TEST(randaugment_in_the_transform)
{
    enum { H = 12, W = 12, N = H * W };
    uint8_t pix[N];
    for (int i = 0; i < N; i++) pix[i] = (uint8_t)((i * 37) % 256);
    vt_transform t = {.out_c = 1, .out_h = H, .out_w = W, .mean = {0.3f}, .std = {0.4f}, .train = true, .hflip = true};
    float *scratch = malloc(sizeof(float) * vt_transform_scratch(&t, H, W) * 2 + 4096);
    float a[N], b[N], c[N];
    vt_rng r;
    vt_sample_rng(&r, 1, 2, 3);
    ck_assert_int_eq(vt_transform_apply(&t, pix, H, W, 1, a, &r, scratch), VT_OK);
    vt_randaug_parse("m9-n2-p0", &t.randaug);
    ck_assert_int_eq(t.randaug.prob, 0);
    vt_sample_rng(&r, 1, 2, 3);
    ck_assert_int_eq(vt_transform_apply(&t, pix, H, W, 1, b, &r, scratch), VT_OK);
    ck_assert_msg(memcmp(a, b, sizeof a) == 0, "p0 changed the image");
    vt_randaug_parse("m9-n2-p1", &t.randaug);
    int changed = 0;
    for (int s = 0; s < 10; s++) {
        vt_sample_rng(&r, 1, 2, s);
        ck_assert_int_eq(vt_transform_apply(&t, pix, H, W, 1, b, &r, scratch), VT_OK);
        vt_sample_rng(&r, 1, 2, s);
        ck_assert_int_eq(vt_transform_apply(&t, pix, H, W, 1, c, &r, scratch), VT_OK);
        ck_assert_msg(memcmp(b, c, sizeof b) == 0, "sample %d: not a function of its rng", s);
        changed += memcmp(a, b, sizeof a) != 0;
    }
    ck_assert_msg(changed >= 8, "only %d of 10 images changed", changed);
    t.train = false;   /* evaluation: untouched */
    ck_assert_int_eq(vt_transform_apply(&t, pix, H, W, 1, b, &r, scratch), VT_OK);
    for (int i = 0; i < N; i++) ck_assert(fabsf(b[i] - (pix[i] / 255.0f - 0.3f) / 0.4f) < 1e-6f);
    free(scratch);
}
END_TEST


/* ---------------------------------------------------------------- EMA of the weights */
/* ModelEmaV3's warmup decays, worked by hand: t = 1 -> 0 (a copy), t = 2 -> 1 - 2^(-2/3) = 0.370039..., t = 9 ->
 * 1 - 9^(-2/3) = 0.768880..., capped by the decay; without warmup the decay itself (ModelEmaV2) */
START_TEST(ema_decay_schedule)
{
    ck_assert(vt_ema_decay_at(0.999, true, 1) == 0.0);
    ck_assert(fabs(vt_ema_decay_at(0.999, true, 2) - 0.37003947505256) < 1e-12);
    ck_assert(fabs(vt_ema_decay_at(0.999, true, 9) - 0.76887957521646) < 1e-12);
    ck_assert(vt_ema_decay_at(0.5, true, 9) == 0.5);
    ck_assert(vt_ema_decay_at(0.999, true, 100000000) == 0.999);
    ck_assert(vt_ema_decay_at(0.9, false, 1) == 0.9 && vt_ema_decay_at(0.9, false, 50) == 0.9);
}
END_TEST

/* the trajectory over 300 updates of weights that move, against the closed form in double:
 * ModelEmaV2: e_T = d^T e_0 + sum_t (1 - d) d^(T - t) w_t; ModelEmaV3 (lerp, warmup decays d_t):
 * e_t = d_t e_(t-1) + (1 - d_t) w_t in double */
START_TEST(ema_trajectory)
{
    enum { N = 100, T = 300 };
    vt_rng r;
    vt_rng_seed(&r, 4);
    float w[N], e2[N], e3[N];
    double ref2[N], ref3[N], wsum[N];
    tu_fill_uniform(&r, w, N, -1, 1);
    for (int i = 0; i < N; i++) e2[i] = e3[i] = w[i], ref3[i] = w[i], wsum[i] = 0;
    const double d = 0.98;
    for (int t = 1; t <= T; t++) {
        for (int i = 0; i < N; i++) w[i] += 0.05f * (float)vt_rng_normal(&r);   /* the step's new weights */
        vt_ema_update(e2, w, N, d, false);
        const double dt = vt_ema_decay_at(d, true, t);
        vt_ema_update(e3, w, N, dt, true);
        for (int i = 0; i < N; i++) {
            wsum[i] += (1 - d) * pow(d, T - t) * w[i];
            ref3[i] = dt * ref3[i] + (1 - dt) * w[i];
        }
        if (t == 1)   /* the warmup's first update is the weights themselves */
            for (int i = 0; i < N; i++) ck_assert_msg(e3[i] == w[i], "V3 update 1: %g vs %g", e3[i], w[i]);
    }
    vt_rng_seed(&r, 4);
    float w0[N];
    tu_fill_uniform(&r, w0, N, -1, 1);
    for (int i = 0; i < N; i++) ref2[i] = pow(d, T) * w0[i] + wsum[i];
    double worst2 = 0, worst3 = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        worst2 = fmax(worst2, fabs(e2[i] - ref2[i]));
        worst3 = fmax(worst3, fabs(e3[i] - ref3[i]));
        moved = fmax(moved, fabs(e2[i] - w[i]));
    }
    ck_assert_msg(worst2 < 2e-5 && worst3 < 2e-5, "EMA off its closed form by %g (V2), %g (V3)", worst2, worst3);
    ck_assert_msg(moved > 0.01, "the EMA is the weights (%g)", moved);
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
    TCase *ta = tcase_create("randaugment");
    tcase_add_test(ta, randaugment_ops_by_hand);
    tcase_add_test(ta, randaugment_policy);
    tcase_add_test(ta, randaugment_in_the_transform);
    suite_add_tcase(s, ta);
    TCase *te = tcase_create("ema");
    tcase_add_test(te, ema_decay_schedule);
    tcase_add_test(te, ema_trajectory);
    suite_add_tcase(s, te);
    return tu_run(s);
}
