/* test_pretrain.c - the self-supervised objectives: their targets on hand-made images, the masks (pure
 * functions of key and image; the 80/10/10 corruption and MAE's visible/hidden split, in proportion over many
 * images), the losses against a direct double-precision computation from the model's own outputs, MAE's
 * encoder blind to the hidden patches, and the gradients of the new parts ([mask] tokens, masked patch
 * prediction's head, MAE's decoder, and the encoder under them) against central finite differences. */
#include "testutil.h"
#include "nn/nn.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 8 x 12 images, patch 4: grid 2 x 3, N = 6 */
static void tiny(vt_vit_config *c, vt_objective_kind kind, int chans)
{
    vt_vit_config_defaults(c);
    c->img_h = 8;
    c->img_w = 12;
    c->patch = 4;
    c->in_chans = chans;
    c->num_classes = 3;
    c->embed_dim = 8;
    c->depth = 1;
    c->num_heads = 2;
    c->mlp_ratio = 1.5;
    c->pretrain.kind = kind;
    c->pretrain.mask_ratio = kind == VT_OBJ_MAE ? 0.5 : 0.5;
    c->pretrain.decoder_dim = 6;
    c->pretrain.decoder_depth = 1;
    c->pretrain.decoder_heads = 2;
    for (int k = 0; k < 4; k++) c->pretrain.in_mean[k] = 0.3f, c->pretrain.in_std[k] = 0.25f;
}

static void init_model(vt_vit *m, const vt_vit_config *c, uint64_t seed)
{
    ck_assert_msg(vt_vit_init(m, c) == VT_OK, "%s", vt_errmsg());
    vt_rng r;
    vt_rng_seed(&r, seed);
    vt_vit_init_weights(m, &r);
    /* larger than timm's 0.02 so that every part matters in the gradients */
    for (int64_t k = 0; k < m->params.numel; k++) m->params.data[k] += (float)(0.3 * (vt_rng_uniform(&r) - 0.5));
}

/* img (C, H, W) normalised from raw[c][y][x] in [0, 1] */
static void normalise(float *img, const double *raw, const vt_vit_config *c)
{
    for (int ch = 0; ch < c->in_chans; ch++)
        for (int k = 0; k < c->img_h * c->img_w; k++) {
            const size_t i = (size_t)ch * c->img_h * c->img_w + k;
            img[i] = (float)((raw[i] - c->pretrain.in_mean[ch]) / c->pretrain.in_std[ch]);
        }
}

START_TEST(color_targets_on_hand_made_images)
{
    vt_vit_config c;
    tiny(&c, VT_OBJ_MASKED_COLOR, 3);
    ck_assert_int_eq(vt_color_classes(&c), 512);
    double raw[3 * 8 * 12];
    float img[3 * 8 * 12];
    /* patch n, channel ch: a checkerboard of two values whose mean is the centre of bin q = (n + 2 ch) % 8, or an
     * end of the range (0 and 1 clamp to bins 0 and 7) */
    int want[6];
    for (int n = 0; n < 6; n++) {
        int cls = 0;
        for (int ch = 0; ch < 3; ch++) {
            int q = (n + 2 * ch) % 8;
            double mean = (q + 0.5) / 8, a = mean - 0.05, b = mean + 0.05;
            if (n == 4 && ch == 1) mean = a = b = 1.0, q = 7;
            if (n == 5 && ch == 2) mean = a = b = 0.0, q = 0;
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++)
                    raw[(ch * 8 + n / 3 * 4 + y) * 12 + n % 3 * 4 + x] = (x + y) % 2 ? a : b;
            cls = cls * 8 + q;
        }
        want[n] = cls;
    }
    normalise(img, raw, &c);
    for (int n = 0; n < 6; n++) ck_assert_int_eq(vt_color_target(img, &c, n), want[n]);
    /* gray, 2 bits: 4 classes; a patch of mean 0.6 is bin 2 */
    tiny(&c, VT_OBJ_MASKED_COLOR, 1);
    c.pretrain.color_bits = 2;
    ck_assert_int_eq(vt_color_classes(&c), 4);
    for (int k = 0; k < 96; k++) raw[k] = k % 12 < 4 && k / 12 < 4 ? 0.6 : 0.1;
    normalise(img, raw, &c);
    ck_assert_int_eq(vt_color_target(img, &c, 0), 2);
    ck_assert_int_eq(vt_color_target(img, &c, 1), 0);
}
END_TEST

START_TEST(pixel_targets_on_hand_made_images)
{
    vt_vit_config c;
    tiny(&c, VT_OBJ_MASKED_PIXELS, 2);
    float img[2 * 8 * 12];
    for (int k = 0; k < 2 * 96; k++) img[k] = (float)(k % 7) - 0.5f * (float)(k % 5);
    /* the full patch: the pixels of patch 4 (row 1, column 1) in (C, P, P) order */
    ck_assert_int_eq(vt_pixel_target_size(&c), 32);
    float t[32];
    vt_pixel_target(t, img, &c, 4);
    for (int ch = 0, k = 0; ch < 2; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++, k++) ck_assert_float_eq(t[k], img[(ch * 8 + 4 + y) * 12 + 4 + x]);
    /* target_size 2: the 2 x 2 means */
    c.pretrain.target_size = 2;
    ck_assert_int_eq(vt_pixel_target_size(&c), 8);
    vt_pixel_target(t, img, &c, 2);
    for (int ch = 0, k = 0; ch < 2; ch++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++, k++) {
                double s = 0;
                for (int y = 0; y < 2; y++)
                    for (int x = 0; x < 2; x++) s += img[(ch * 8 + 2 * i + y) * 12 + 8 + 2 * j + x];
                ck_assert_msg(fabs(t[k] - s / 4) < 1e-6, "element %d: %g, expected %g", k, t[k], s / 4);
            }
    /* MAE with norm_pix_loss: (x - mean) / sqrt(unbiased var + 1e-6) of the 32 values; without: the pixels */
    tiny(&c, VT_OBJ_MAE, 2);
    vt_pixel_target(t, img, &c, 5);
    double v[32], mean = 0, var = 0;
    for (int ch = 0, k = 0; ch < 2; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++, k++) mean += v[k] = img[(ch * 8 + 4 + y) * 12 + 8 + x];
    mean /= 32;
    for (int k = 0; k < 32; k++) var += (v[k] - mean) * (v[k] - mean) / 31;
    for (int k = 0; k < 32; k++)
        ck_assert_msg(fabs(t[k] - (v[k] - mean) / sqrt(var + 1e-6)) < 1e-5, "element %d: %g", k, t[k]);
    c.pretrain.norm_pix_loss = false;
    vt_pixel_target(t, img, &c, 5);
    for (int k = 0; k < 32; k++) ck_assert_float_eq(t[k], (float)v[k]);
    /* a flat patch normalises to zeros, not to a division by zero */
    c.pretrain.norm_pix_loss = true;
    for (int k = 0; k < 2 * 96; k++) img[k] = 0.75f;
    vt_pixel_target(t, img, &c, 0);
    for (int k = 0; k < 32; k++) ck_assert_float_eq(t[k], 0.0f);
}
END_TEST

/* the 80/10/10 corruption of 25 of 49 patches over 4000 images: each share within 4 standard deviations, every
 * position as often chosen, a random patch never the patch itself; the same (key, image) gives the same draw */
START_TEST(corruption_statistics_and_determinism)
{
    enum { N = 49, IMAGES = 4000 };
    vt_vit_config c;
    tiny(&c, VT_OBJ_MASKED_COLOR, 1);
    const int M = vt_pretrain_masked_count(&c, N);
    ck_assert_int_eq(M, 25);
    int32_t src[N], tgt[N], src2[N], tgt2[N];
    int64_t counts[3] = {0}, pos[N] = {0};
    int differ = 0;
    for (int i = 0; i < IMAGES; i++) {
        vt_mpp_corrupt(src, tgt, N, M, 0x1234, i);
        for (int j = 0; j < M; j++) {
            ck_assert(tgt[j] >= 0 && tgt[j] < N);
            if (j) ck_assert_int_lt(tgt[j - 1], tgt[j]);
            pos[tgt[j]]++;
            const int n = tgt[j], s = src[n];
            ck_assert(s >= -1 && s < N);
            counts[s == -1 ? 0 : s == n ? 2 : 1]++;
        }
        for (int n = 0, j = 0; n < N; n++) {   /* the others are untouched */
            if (j < M && tgt[j] == n) j++;
            else ck_assert_int_eq(src[n], n);
        }
        vt_mpp_corrupt(src2, tgt2, N, M, 0x1234, i);
        ck_assert(memcmp(src, src2, sizeof src) == 0 && memcmp(tgt, tgt2, sizeof(int32_t) * M) == 0);
        vt_mpp_corrupt(src2, tgt2, N, M, 0x1235, i);
        differ += memcmp(tgt, tgt2, sizeof(int32_t) * M) != 0;
    }
    ck_assert_int_gt(differ, IMAGES - 5);
    const double total = (double)IMAGES * M, p[3] = {0.8, 0.1, 0.1};
    for (int k = 0; k < 3; k++) {
        const double sd = sqrt(total * p[k] * (1 - p[k]));
        ck_assert_msg(fabs(counts[k] - total * p[k]) < 4 * sd, "share %d: %lld of %.0f, expected %.0f +- %.0f", k,
                      (long long)counts[k], total, total * p[k], sd);
    }
    const double per = (double)IMAGES * M / N, sd = sqrt(per * (1 - (double)M / N));
    for (int n = 0; n < N; n++)
        ck_assert_msg(fabs(pos[n] - per) < 4.5 * sd, "patch %d corrupted %lld times, expected %.0f", n, (long long)pos[n], per);
}
END_TEST

/* MAE: K visible tokens 1 + n ascending, the other patches hidden, together every patch once */
START_TEST(mae_split_partitions_the_patches)
{
    enum { N = 49, IMAGES = 2000 };
    vt_vit_config c;
    tiny(&c, VT_OBJ_MAE, 1);
    c.pretrain.mask_ratio = 0.75;
    const int M = vt_pretrain_masked_count(&c, N), K = N - M;
    ck_assert_int_eq(K, 12);   /* int(49 * 0.25) */
    int32_t keep[N], hid[N], keep2[N], hid2[N];
    int64_t vis[N] = {0};
    for (int i = 0; i < IMAGES; i++) {
        vt_mae_split(keep, hid, N, K, 99, i);
        bool seen[N] = {false};
        for (int j = 0; j < K; j++) {
            ck_assert(keep[j] >= 1 && keep[j] <= N && !seen[keep[j] - 1]);
            if (j) ck_assert_int_lt(keep[j - 1], keep[j]);
            seen[keep[j] - 1] = true;
            vis[keep[j] - 1]++;
        }
        for (int j = 0; j < M; j++) {
            ck_assert(hid[j] >= 0 && hid[j] < N && !seen[hid[j]]);
            if (j) ck_assert_int_lt(hid[j - 1], hid[j]);
            seen[hid[j]] = true;
        }
        vt_mae_split(keep2, hid2, N, K, 99, i);
        ck_assert(memcmp(keep, keep2, sizeof(int32_t) * K) == 0 && memcmp(hid, hid2, sizeof(int32_t) * M) == 0);
    }
    const double per = (double)IMAGES * K / N, sd = sqrt(per * (1 - (double)K / N));
    for (int n = 0; n < N; n++) ck_assert_msg(fabs(vis[n] - per) < 4.5 * sd, "patch %d visible %lld times", n, (long long)vis[n]);
    /* the counts at the ends: one hidden at least, one visible at least */
    c.pretrain.mask_ratio = 0.01;
    ck_assert_int_eq(vt_pretrain_masked_count(&c, 6), 1);
    c.pretrain.mask_ratio = 0.99;
    ck_assert_int_eq(vt_pretrain_masked_count(&c, 6), 5);
}
END_TEST

/* a batch of B images as the replicas hand it to the objective (key given: a training pass) */
typedef struct {
    vt_vit *m;
    float *x;
    int B;
    vt_vit_train_pass pass;
    vt_obj_batch b;
} batch_ctx;

static vt_var *objective_loss(vt_graph *g, batch_ctx *t, vt_var **pred, vt_var **tokens_out)
{
    int64_t shape[4] = {t->B, t->m->cfg.in_chans, t->m->cfg.img_h, t->m->cfg.img_w};
    memset(&t->b, 0, sizeof t->b);
    t->b.images = vt_var_wrap(g, t->x, 4, shape, "images");
    t->b.pass = &t->pass;
    t->b.first = t->pass.first;
    if (t->m->objective->mask(t->m, g, &t->b, t->B) != VT_OK) return NULL;
    vt_var *tok = vt_vit_encode_masked(t->m, g, t->b.images, NULL, t->b.pass, t->b.mask);
    if (tokens_out) *tokens_out = tok;
    return tok ? t->m->objective->loss(t->m, g, tok, &t->b, pred) : NULL;
}

static void random_images(float *x, int64_t n, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed);
    tu_fill_uniform(&r, x, n, -1.2f, 1.6f);
}

/* each objective's loss against the same loss computed in double from the head's output and targets found
 * independently (the colour classes, the pixels) */
START_TEST(losses_match_a_direct_computation)
{
    const vt_objective_kind kinds[3] = {VT_OBJ_MASKED_COLOR, VT_OBJ_MASKED_PIXELS, VT_OBJ_MAE};
    for (int kk = 0; kk < 3; kk++) {
        vt_vit_config c;
        tiny(&c, kinds[kk], 2);
        c.pretrain.color_bits = 2;
        if (kinds[kk] == VT_OBJ_MASKED_PIXELS) c.pretrain.target_size = 2;
        vt_vit m;
        init_model(&m, &c, 3 + kk);
        enum { B = 3 };
        float x[B * 2 * 96];
        random_images(x, B * 2 * 96, 7);
        vt_graph g;
        vt_graph_init(&g, 1 << 22);
        batch_ctx t = {.m = &m, .x = x, .B = B, .pass = {.key = 42, .first = 5}};
        vt_var *pred = NULL;
        vt_var *loss = objective_loss(&g, &t, &pred, NULL);
        ck_assert_msg(loss && pred, "%s", vt_errmsg());
        const vt_vit_mask *mk = t.b.mask;
        const int N = 6, M = vt_pretrain_masked_count(&c, N), O = (int)pred->val.shape[2];
        ck_assert_int_eq(mk->M, M);
        ck_assert_int_eq((int)pred->val.shape[1], M);
        double want = 0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < M; j++) {
                const float *z = pred->val.data + ((size_t)b * M + j) * O;
                const float *img = x + (size_t)b * 2 * 96;
                const int n = mk->target[b * M + j];
                if (kinds[kk] == VT_OBJ_MASKED_COLOR) {
                    /* the class from the raw means: bits 2 per channel, channel 0 most significant */
                    int cls = 0;
                    for (int ch = 0; ch < 2; ch++) {
                        double s = 0;
                        for (int y = 0; y < 4; y++)
                            for (int xx = 0; xx < 4; xx++) s += img[(ch * 8 + n / 3 * 4 + y) * 12 + n % 3 * 4 + xx];
                        int q = (int)floor((s / 16 * 0.25 + 0.3) * 4);
                        cls = cls * 4 + (q < 0 ? 0 : q > 3 ? 3 : q);
                    }
                    double mx = z[0], se = 0;
                    for (int k = 1; k < O; k++) mx = fmax(mx, z[k]);
                    for (int k = 0; k < O; k++) se += exp(z[k] - mx);
                    want += -(z[cls] - mx - log(se));
                } else {
                    float tg[64];
                    vt_pixel_target(tg, img, &c, n);
                    for (int k = 0; k < O; k++) want += ((double)z[k] - tg[k]) * ((double)z[k] - tg[k]) / O;
                }
            }
        want /= B * M;
        ck_assert_msg(fabs(loss->val.data[0] - want) < 1e-5 * fmax(1, fabs(want)), "%s: loss %.8g, direct %.8g",
                      m.objective->name, loss->val.data[0], want);
        vt_graph_free(&g);
        vt_vit_free(&m);
    }
}
END_TEST

/* masked patch prediction corrupts the patch embeddings as the mask says: [mask] rows hold mask_token, the others
 * the clean embedding of their source patch */
START_TEST(corruption_reaches_the_patch_embeddings)
{
    vt_vit_config c;
    tiny(&c, VT_OBJ_MASKED_COLOR, 2);
    c.pretrain.mask_ratio = 0.9;
    vt_vit m;
    init_model(&m, &c, 11);
    enum { B = 4, N = 6, D = 8 };
    float x[B * 2 * 96];
    random_images(x, B * 2 * 96, 8);
    vt_graph g;
    vt_graph_init(&g, 1 << 22);
    vt_graph_set_grad(&g, false);
    vt_var *im = vt_var_wrap(&g, x, 4, (int64_t[]){B, 2, 8, 12}, "images");
    vt_vit_acts clean = {0}, bad = {0};
    vt_var *blocks[1];
    clean.block = blocks;
    bad.block = blocks;
    ck_assert_ptr_nonnull(vt_vit_encode(&m, &g, im, &clean, NULL));
    batch_ctx t = {.m = &m, .x = x, .B = B, .pass = {.key = 7, .first = 0}};
    t.b.images = im;
    t.b.pass = &t.pass;
    ck_assert_int_eq(m.objective->mask(&m, &g, &t.b, B), VT_OK);
    ck_assert_ptr_nonnull(vt_vit_encode_masked(&m, &g, im, &bad, t.b.pass, t.b.mask));
    const float *mt = m.params.vars[m.mask_token].val.data;
    int masked = 0;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            const int s = t.b.mask->src[b * N + n];
            const float *row = bad.patch_embed->val.data + ((size_t)b * N + n) * D;
            const float *want = s < 0 ? mt : clean.patch_embed->val.data + ((size_t)b * N + s) * D;
            masked += s < 0;
            for (int d = 0; d < D; d++) ck_assert_float_eq(row[d], want[d]);
        }
    ck_assert_int_gt(masked, 0);
    vt_graph_free(&g);
    vt_vit_free(&m);
}
END_TEST

/* MAE's encoder never reads a hidden patch: changing the hidden pixels leaves its tokens and the decoder's
 * predictions as they were (only the targets change) */
START_TEST(mae_encoder_sees_only_visible_patches)
{
    vt_vit_config c;
    tiny(&c, VT_OBJ_MAE, 1);
    vt_vit m;
    init_model(&m, &c, 12);
    enum { B = 2 };
    float x[B * 96], y[B * 96];
    random_images(x, B * 96, 9);
    vt_graph g;
    vt_graph_init(&g, 1 << 22);
    batch_ctx t = {.m = &m, .x = x, .B = B, .pass = {.key = 3, .first = 2}};
    vt_var *pa, *ta;
    vt_var *la = objective_loss(&g, &t, &pa, &ta);
    ck_assert_ptr_nonnull(la);
    const int M = t.b.mask->M;
    ck_assert_int_eq(M, 3);
    ck_assert_int_eq((int)ta->val.shape[1], 1 + 3);
    memcpy(y, x, sizeof x);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < M; j++) {
            const int n = t.b.mask->target[b * M + j];
            for (int yy = 0; yy < 4; yy++)
                for (int xx = 0; xx < 4; xx++) y[b * 96 + (n / 3 * 4 + yy) * 12 + n % 3 * 4 + xx] += 0.7f * (float)(xx * yy) - 2.0f;   /* not a constant: the targets are normalised per patch */
        }
    const size_t nt = (size_t)vt_tensor_numel(&ta->val), np = (size_t)vt_tensor_numel(&pa->val);
    float *tok = malloc(nt * sizeof(float)), *pred = malloc(np * sizeof(float));
    memcpy(tok, ta->val.data, nt * sizeof(float));
    memcpy(pred, pa->val.data, np * sizeof(float));
    const float l0 = la->val.data[0];
    vt_graph_reset(&g);
    t.x = y;
    vt_var *pb, *tb;
    vt_var *lb = objective_loss(&g, &t, &pb, &tb);
    ck_assert_ptr_nonnull(lb);
    ck_assert(memcmp(tok, tb->val.data, nt * sizeof(float)) == 0);
    ck_assert(memcmp(pred, pb->val.data, np * sizeof(float)) == 0);
    ck_assert_float_ne(l0, lb->val.data[0]);   /* the targets moved */
    free(tok);
    free(pred);
    vt_graph_free(&g);
    vt_vit_free(&m);
}
END_TEST

typedef struct {
    batch_ctx t;
} gc_ctx;

static vt_var *gc_loss(vt_graph *g, vt_var **in, int nin, void *ctx)
{
    (void)in;
    (void)nin;
    return objective_loss(g, &((gc_ctx *)ctx)->t, NULL, NULL);
}

/* every parameter of the objective's own (mask token, head or decoder) and a few of the encoder's, against
 * central finite differences of the whole loss */
START_TEST(gradients_match_finite_differences)
{
    const vt_objective_kind kinds[3] = {VT_OBJ_MASKED_COLOR, VT_OBJ_MASKED_PIXELS, VT_OBJ_MAE};
    for (int kk = 0; kk < 3; kk++) {
        vt_vit_config c;
        tiny(&c, kinds[kk], 1);
        c.pretrain.color_bits = 2;
        c.pretrain.mask_ratio = 0.67;   /* 4 of 6 corrupted: some [mask], and with this key a random one */
        vt_vit m;
        init_model(&m, &c, 21 + kk);
        enum { B = 2 };
        float x[B * 96];
        random_images(x, B * 96, 10 + kk);
        gc_ctx ctx = {.t = {.m = &m, .x = x, .B = B, .pass = {.key = 5, .first = 1}}};
        vt_var *in[32];
        int nin = 0;
        const int first_obj = vt_paramset_find(&m.params, kinds[kk] == VT_OBJ_MAE ? "decoder_embed.weight" : "mask_token");
        ck_assert_int_ge(first_obj, 0);
        for (int i = first_obj; i < m.params.count && nin < 30; i++) in[nin++] = &m.params.vars[i];
        in[nin++] = vt_vit_param(&m, "patch_embed.proj.weight");
        in[nin++] = vt_vit_param(&m, "blocks.0.attn.qkv.weight");
        char desc[256];
        double worst = vt_gradcheck(gc_loss, &ctx, in, nin, 1e-2, 2e-3, 2e-2, desc, sizeof desc);
        ck_assert_msg(worst <= 1, "%s: worst %.3g at %s", m.objective->name, worst, desc);
        vt_vit_free(&m);
    }
}
END_TEST

/* in evaluation the masks are those of each image's index among the evaluated images (the batch's first
 * image's index, eval_first, plus its place in the batch), not of its place in the batch: image 4 of a pass
 * gets the same masks in a batch of 6 from image 0 as in a batch from image 4, and other masks than image 0 */
START_TEST(evaluation_masks_follow_the_image_not_the_batch_position)
{
    const vt_objective_kind kinds[2] = {VT_OBJ_MAE, VT_OBJ_MASKED_COLOR};
    for (int kk = 0; kk < 2; kk++) {
        vt_vit_config c;
        tiny(&c, kinds[kk], 1);
        vt_vit m;
        init_model(&m, &c, 11);
        vt_vit_replicas rep;
        ck_assert_int_eq(vt_vit_replicas_init_eval(&rep, &m, 1, 8u << 20), VT_OK);
        const int per = c.in_chans * c.img_h * c.img_w, N = m.grid_h * m.grid_w;
        float x[6 * 1 * 8 * 12];
        random_images(x, 6 * per, 5);
        int32_t a0[64], a4[64], b0[64];
        int len = 0;
        for (int call = 0; call < 2; call++) {
            vt_vit_train_pass pass;
            vt_obj_batch b;
            rep.eval_first = call ? 4 : 0;
            vt_var *tok = vt_vit_replicas_part_encode(&rep, 0, call ? x + 4 * per : x, NULL, 0, call ? 2 : 6, NULL,
                                                      &pass, &b);
            ck_assert_msg(tok && b.mask, "%s", vt_errmsg());
            /* MAE: the visible patches; masked patch prediction: what each patch's embedding became */
            const int32_t *sel = kinds[kk] == VT_OBJ_MAE ? b.mask->keep : b.mask->src;
            len = kinds[kk] == VT_OBJ_MAE ? b.mask->K : N;
            ck_assert(sel && len > 0 && len <= 64);
            if (call == 0) {
                memcpy(a0, sel, sizeof(int32_t) * (size_t)len);
                memcpy(a4, sel + (size_t)4 * len, sizeof(int32_t) * (size_t)len);
            } else {
                memcpy(b0, sel, sizeof(int32_t) * (size_t)len);
            }
        }
        ck_assert_msg(memcmp(a4, b0, sizeof(int32_t) * (size_t)len) == 0, "%s: image 4's masks depend on the batch",
                      m.objective->name);
        ck_assert_msg(memcmp(a0, b0, sizeof(int32_t) * (size_t)len) != 0, "%s: images 0 and 4 have the same masks",
                      m.objective->name);
        vt_vit_replicas_free(&rep);
        vt_vit_free(&m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pretrain");
    TCase *tc = tcase_create("pretrain");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, color_targets_on_hand_made_images);
    tcase_add_test(tc, pixel_targets_on_hand_made_images);
    tcase_add_test(tc, corruption_statistics_and_determinism);
    tcase_add_test(tc, mae_split_partitions_the_patches);
    tcase_add_test(tc, losses_match_a_direct_computation);
    tcase_add_test(tc, corruption_reaches_the_patch_embeddings);
    tcase_add_test(tc, mae_encoder_sees_only_visible_patches);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, evaluation_masks_follow_the_image_not_the_batch_position);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
