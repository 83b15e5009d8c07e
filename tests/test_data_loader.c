/* test_data_loader.c - transforms (resize, crops, flip, channels, normalisation) and the batch
 * loader: exact resume, epoch permutations, evaluation batches, subsets and the train/val split.
 * The samples come from a synthetic in-memory dataset (no files). */
#include "testutil.h"
#include "data/data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TCase *tc_data_loader(void);

/* sample i: pixel (y, x, k) = (i * 13 + y * 7 + x * 3 + k * 50) & 255, label i % 7 */
static int synth_read(vt_dataset *ds, int64_t i, uint8_t *pix, int *label)
{
    if (i < 0 || i >= ds->count) return vt_err("synthetic: sample %lld out of range", (long long)i);
    for (int y = 0; y < ds->h; y++)
        for (int x = 0; x < ds->w; x++)
            for (int k = 0; k < ds->c; k++)
                pix[(y * ds->w + x) * ds->c + k] = (uint8_t)((i * 13 + y * 7 + x * 3 + k * 50) & 255);
    *label = (int)(i % 7);
    return VT_OK;
}

static vt_dataset synth(int64_t n, int h, int w, int c)
{
    vt_dataset ds = {.path = "synthetic", .format = "synthetic", .count = n, .num_classes = 7, .h = h, .w = w, .c = c,
                     .read = synth_read};
    return ds;
}

static vt_transform tf_plain(int c, int h, int w)
{
    vt_transform t = {.out_c = c, .out_h = h, .out_w = w};
    for (int k = 0; k < 4; k++) t.mean[k] = 0, t.std[k] = 1;
    return t;
}

START_TEST(transforms)
{
    float out[3 * 8 * 8];
    _Alignas(double) float scratch[4096];   /* vt_transform_apply wants 8-byte-aligned scratch */
    vt_rng r;
    vt_rng_seed(&r, 1);
    /* eval: resize 4x4 -> 2x2 averages (antialiased); gray -> 3 channels; normalisation */
    uint8_t pix[16 * 16 * 3];
    for (int i = 0; i < 16; i++) pix[i] = (uint8_t)(i < 8 ? 0 : 255);
    vt_transform tf = tf_plain(3, 2, 2);
    for (int k = 0; k < 3; k++) tf.mean[k] = 0.5f, tf.std[k] = 0.5f;
    vt_transform_apply(&tf, pix, 4, 4, 1, out, &r, scratch);
    for (int c = 0; c < 3; c++) {   /* torch's antialiased filter reaches one row across the edge */
        ck_assert(out[c * 4 + 0] < -0.5f && out[c * 4 + 2] > 0.5f);
        ck_assert_float_eq(out[c * 4 + 0], out[c * 4 + 1]);
        ck_assert_float_eq_tol(out[c * 4 + 0], -out[c * 4 + 2], 1e-6f);
        ck_assert_float_eq(out[c * 4 + 0], out[0]);
    }
    /* same size: an exact copy, planar; RGB -> gray by ITU-R 601 luma */
    for (int i = 0; i < 4 * 3 * 3; i++) pix[i] = (uint8_t)(i * 7);
    tf = tf_plain(3, 4, 3);
    vt_transform_apply(&tf, pix, 4, 3, 3, out, &r, scratch);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 3; x++)
            for (int k = 0; k < 3; k++) ck_assert_float_eq(out[(k * 4 + y) * 3 + x], pix[(y * 3 + x) * 3 + k] / 255.0f);
    tf = tf_plain(1, 4, 3);
    vt_transform_apply(&tf, pix, 4, 3, 3, out, &r, scratch);
    ck_assert_float_eq_tol(out[4], (0.299f * pix[12] + 0.587f * pix[13] + 0.114f * pix[14]) / 255.0f, 1e-6f);
    /* crop_pct: 8x4 (w x h) -> 4x4 takes the centered 4x4 region (crop_pct 1), then 2x2 of 4x4 (0.5) */
    for (int i = 0; i < 32; i++) pix[i] = (uint8_t)i;
    tf = tf_plain(1, 4, 4);
    tf.crop_pct = 1.0f;
    vt_transform_apply(&tf, pix, 4, 8, 1, out, &r, scratch);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) ck_assert_float_eq_tol(out[y * 4 + x], pix[y * 8 + x + 2] / 255.0f, 1e-6f);
    tf = tf_plain(1, 2, 2);
    tf.crop_pct = 0.5f;
    vt_transform_apply(&tf, pix, 4, 4, 1, out, &r, scratch);   /* center 2x2 of a 4x4, copied */
    ck_assert_float_eq_tol(out[0], pix[5] / 255.0f, 1e-6f);
    ck_assert_float_eq_tol(out[3], pix[10] / 255.0f, 1e-6f);
    /* padded random crop: a shift by (dy, dx) in [-2, 2] with zeros coming in, same for every channel */
    for (int i = 0; i < 64; i++) pix[i] = (uint8_t)(i + 1);
    tf = tf_plain(1, 8, 8);
    tf.train = true;
    tf.crop_padding = 2;
    bool shifted = false;
    for (int trial = 0; trial < 20; trial++) {
        vt_transform_apply(&tf, pix, 8, 8, 1, out, &r, scratch);
        int dy = 99, dx = 99;
        for (int y = 0; y < 8 && dy == 99; y++)
            for (int x = 0; x < 8 && dy == 99; x++)
                if (out[y * 8 + x] > 0) {
                    int v = (int)lroundf(out[y * 8 + x] * 255.0f) - 1;
                    dy = v / 8 - y, dx = v % 8 - x;
                }
        ck_assert(abs(dy) <= 2 && abs(dx) <= 2);
        shifted = shifted || dy || dx;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                int sy = y + dy, sx = x + dx;
                float want = sy >= 0 && sy < 8 && sx >= 0 && sx < 8 ? pix[sy * 8 + sx] / 255.0f : 0.0f;
                ck_assert_float_eq(out[y * 8 + x], want);
            }
    }
    ck_assert(shifted);
    /* flip: the mirror image of the unflipped eval output (one of the two, at random) */
    tf = tf_plain(1, 8, 8);
    tf.train = true;
    tf.hflip = true;
    int flips = 0;
    for (int trial = 0; trial < 20; trial++) {
        vt_transform_apply(&tf, pix, 8, 8, 1, out, &r, scratch);
        bool f = out[0] == pix[7] / 255.0f;
        flips += f;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) ck_assert_float_eq(out[y * 8 + x], pix[y * 8 + (f ? 7 - x : x)] / 255.0f);
    }
    ck_assert(flips > 0 && flips < 20);
    /* random-resized-crop: the same RNG state gives the same crop; different states differ */
    tf = tf_plain(3, 8, 8);
    tf.train = true;
    tf.rrc = true;
    tf.rrc_scale_min = 0.08;
    tf.rrc_ratio_min = 0.75;
    tf.rrc_ratio_max = 4.0 / 3.0;
    for (int i = 0; i < 16 * 16 * 3; i++) pix[i] = (uint8_t)(i * 31 % 251);
    float out2[3 * 8 * 8];
    vt_rng a, b;
    vt_sample_rng(&a, 5, 1, 2);
    vt_sample_rng(&b, 5, 1, 2);
    ck_assert_uint_le(vt_transform_scratch(&tf, 16, 16), sizeof scratch / sizeof *scratch);
    ck_assert_int_eq(vt_transform_apply(&tf, pix, 16, 16, 3, out, &a, scratch), VT_OK);
    ck_assert_int_eq(vt_transform_apply(&tf, pix, 16, 16, 3, out2, &b, scratch), VT_OK);
    ck_assert_mem_eq(out, out2, sizeof out);
    vt_sample_rng(&b, 5, 1, 2);   /* a misaligned scratch is refused, not a wrong or black image */
    ck_assert_int_eq(vt_transform_apply(&tf, pix, 16, 16, 3, out2, &b, scratch + 1), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "aligned") != NULL);
    vt_sample_rng(&b, 5, 1, 3);
    vt_transform_apply(&tf, pix, 16, 16, 3, out2, &b, scratch);
    ck_assert(memcmp(out, out2, sizeof out) != 0);
    for (int i = 0; i < 3 * 64; i++) ck_assert(out[i] >= 0.0f && out[i] <= 1.0f);
    /* random erasing (const: zeros after normalisation): one rectangle of 2%..1/3 of a 16x16 image of
     * ones, aspect within 0.3..3.3; never in evaluation; probability 0.5 erases some and not others */
    for (int i = 0; i < 16 * 16; i++) pix[i] = 255;
    tf = tf_plain(1, 16, 16);
    tf.train = true;
    tf.erase_prob = 1.0f;
    tf.erase_mode = VT_ERASE_CONST;
    float er[16 * 16];
    for (int trial = 0; trial < 50; trial++) {
        vt_transform_apply(&tf, pix, 16, 16, 1, er, &r, scratch);
        int y0 = 16, y1 = -1, x0 = 16, x1 = -1, zeros = 0;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                ck_assert(er[y * 16 + x] == 0.0f || er[y * 16 + x] == 1.0f);
                if (er[y * 16 + x] != 0.0f) continue;
                zeros++;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1, x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
            }
        int h = y1 - y0 + 1, w = x1 - x0 + 1;
        ck_assert_msg(zeros == h * w, "not one rectangle");
        ck_assert_msg(zeros >= 4 && zeros <= 16 * 16 / 3 + 16, "erased area %d", zeros);   /* rounding of the sides */
        ck_assert_msg(h * 10 <= w * 34 && w * 10 <= h * 34, "aspect %d x %d", h, w);
    }
    tf.erase_mode = VT_ERASE_PIXEL;   /* normal noise: values other than 0 and 1 */
    vt_transform_apply(&tf, pix, 16, 16, 1, er, &r, scratch);
    int noisy = 0;
    for (int i = 0; i < 256; i++) noisy += er[i] != 0.0f && er[i] != 1.0f;
    ck_assert_int_gt(noisy, 4);
    tf.train = false;
    vt_transform_apply(&tf, pix, 16, 16, 1, er, &r, scratch);
    for (int i = 0; i < 256; i++) ck_assert_float_eq(er[i], 1.0f);
    tf.train = true;
    tf.erase_prob = 0.5f;
    int erased = 0;
    for (int trial = 0; trial < 40; trial++) {
        vt_transform_apply(&tf, pix, 16, 16, 1, er, &r, scratch);
        bool any = false;
        for (int i = 0; i < 256; i++) any |= er[i] != 1.0f;
        erased += any;
    }
    ck_assert_msg(erased > 5 && erased < 35, "%d of 40 erased at probability 0.5", erased);
    /* parse */
    float vals[3];
    ck_assert_int_eq(vt_parse_floats("0.1, 0.2,0.3", vals, 3, "mean"), VT_OK);
    ck_assert(vals[2] == 0.3f);
    ck_assert_int_eq(vt_parse_floats("0.5", vals, 3, "mean"), VT_OK);
    ck_assert(vals[0] == 0.5f && vals[2] == 0.5f);
    ck_assert_int_eq(vt_parse_floats("0.1, 0.2", vals, 3, "mean"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "2 values given, expected 1 or 3") != NULL);
    ck_assert_int_eq(vt_parse_floats("0.1, x", vals, 3, "[data] std"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "[data] std") != NULL);
    /* only finite decimal numbers, no empty items: each refused naming the key */
    const char *bad[] = {"nan", "inf", "1e400", "0x1p-1", "0.3,", "0.5,,0.5", ",0.5", ""};
    for (int k = 0; k < 8; k++) {
        ck_assert_msg(vt_parse_floats(bad[k], vals, 3, "[data] mean") == VT_ERR, "'%s' accepted", bad[k]);
        ck_assert_msg(strstr(vt_errmsg(), "[data] mean"), "%s", vt_errmsg());
    }
}
END_TEST

/* batches k.. of epoch e are the same (ids and augmented pixels) whether the loader ran from batch 0
 * or was created fresh at batch k, with any number of workers; for two augmentation recipes */
START_TEST(loader_resume_determinism)
{
    vt_dataset ds = synth(100, 12, 10, 3);
    for (int recipe = 0; recipe < 2; recipe++) {
        vt_transform tf = tf_plain(recipe ? 3 : 1, 8, 8);
        tf.train = tf.hflip = true;
        if (recipe) {
            tf.rrc = true;
            tf.rrc_scale_min = 0.08, tf.rrc_ratio_min = 0.75, tf.rrc_ratio_max = 4.0 / 3.0;
        } else {
            tf.crop_padding = 2;
        }
        int per = tf.out_c * 64;
        float *ref = malloc(sizeof(float) * 14 * 7 * (size_t)per);
        int64_t ref_ids[14][7];
        for (int run = 0; run < 4; run++) {
            vt_loader_config lc = {&ds, NULL, 0, tf, 7, true, true, 42, run == 0 ? 0 : run - 1, 3, 0, 0, 0, 1};
            vt_loader *l;
            ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
            ck_assert_int_eq(vt_loader_batches(l), 14);   /* 100 / 7, the partial batch dropped */
            int start = run == 0 ? 0 : 4 + 3 * run;
            ck_assert_int_eq(vt_loader_start(l, 3, start), VT_OK);
            for (int k = start; k < 14; k++) {
                float *x;
                int *y, bs;
                const int64_t *ids;
                ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
                ck_assert_int_eq(bs, 7);
                if (run == 0) {
                    memcpy(ref + (size_t)k * 7 * per, x, sizeof(float) * 7 * (size_t)per);
                    memcpy(ref_ids[k], ids, sizeof ref_ids[0]);
                } else {
                    ck_assert_msg(memcmp(ref_ids[k], ids, sizeof ref_ids[0]) == 0, "ids of batch %d differ", k);
                    ck_assert_msg(memcmp(ref + (size_t)k * 7 * per, x, sizeof(float) * 7 * (size_t)per) == 0,
                                  "pixels of batch %d differ (recipe %d, run %d)", k, recipe, run);
                }
                for (int b = 0; b < 7; b++) ck_assert_int_eq(y[b], (int)(ids[b] % 7));
            }
            float *x;
            int *y, bs;
            ck_assert_int_eq(vt_loader_next(l, &x, &y, NULL, &bs), VT_OK);
            ck_assert_int_eq(bs, 0);   /* end of the epoch */
            ck_assert(vt_loader_wait_seconds(l) >= 0);
            vt_loader_free(l);
        }
        free(ref);
    }
}
END_TEST

/* every epoch is a permutation (each sample once, drop_last aside), a pure function of (seed, epoch);
 * each sample's pixels are vt_transform_apply under vt_sample_rng(seed, epoch, id) */
START_TEST(loader_epochs)
{
    vt_dataset ds = synth(50, 6, 6, 1);
    vt_transform tf = tf_plain(1, 6, 6);
    tf.train = tf.hflip = true;
    tf.crop_padding = 1;
    vt_loader_config lc = {&ds, NULL, 0, tf, 10, true, true, 7, 2, 4, 0, 0, 0, 1};
    vt_loader *l, *l2;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
    lc.seed = 8;
    ck_assert_int_eq(vt_loader_create(&l2, &lc), VT_OK);
    int64_t order[3][50], other[50];
    _Alignas(double) float scratch[1024];
    float want[36];
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(vt_loader_start(l, e, 0), VT_OK);
        bool seen[50] = {false};
        for (int k = 0; k < 5; k++) {
            float *x;
            int *y, bs;
            const int64_t *ids;
            ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
            ck_assert_int_eq(bs, 10);
            for (int b = 0; b < 10; b++) {
                ck_assert(!seen[ids[b]]);
                seen[ids[b]] = true;
                order[e][k * 10 + b] = ids[b];
                uint8_t pix[36];
                int label;
                ck_assert_int_eq(ds.read(&ds, ids[b], pix, &label), VT_OK);
                vt_rng r;
                vt_sample_rng(&r, 7, e, ids[b]);
                vt_transform_apply(&tf, pix, 6, 6, 1, want, &r, scratch);
                ck_assert_mem_eq(x + b * 36, want, sizeof want);
            }
        }
    }
    ck_assert(memcmp(order[0], order[1], sizeof order[0]) != 0);
    ck_assert(memcmp(order[1], order[2], sizeof order[0]) != 0);
    ck_assert_int_eq(vt_loader_start(l2, 1, 0), VT_OK);   /* another seed, another order */
    for (int k = 0; k < 5; k++) {
        float *x;
        int *y, bs;
        const int64_t *ids;
        ck_assert_int_eq(vt_loader_next(l2, &x, &y, &ids, &bs), VT_OK);
        memcpy(other + k * 10, ids, sizeof(int64_t) * 10);
    }
    ck_assert(memcmp(order[1], other, sizeof other) != 0);
    vt_loader_free(l);
    vt_loader_free(l2);
}
END_TEST

/* evaluation: in order, deterministic, the last partial batch kept with its real size; subsets */
START_TEST(loader_eval_and_subsets)
{
    vt_dataset ds = synth(23, 5, 5, 3);
    vt_transform tf = tf_plain(3, 5, 5);
    for (int workers = 0; workers < 3; workers += 2) {
        vt_loader_config lc = {&ds, NULL, 0, tf, 5, false, false, 1, workers, 2, 0, 0, 0, 1};
        vt_loader *l;
        ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
        ck_assert_int_eq(vt_loader_batches(l), 5);
        ck_assert_int_eq(vt_loader_start(l, 0, 0), VT_OK);
        int64_t next = 0;
        for (int k = 0; k < 5; k++) {
            float *x;
            int *y, bs;
            const int64_t *ids;
            ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
            ck_assert_int_eq(bs, k < 4 ? 5 : 3);
            for (int b = 0; b < bs; b++, next++) {
                ck_assert_int_eq(ids[b], next);
                ck_assert_int_eq(y[b], next % 7);
                uint8_t pix[75];
                int label;
                ds.read(&ds, next, pix, &label);
                ck_assert_float_eq(x[b * 75 + 25 + 2 * 5 + 1], pix[(2 * 5 + 1) * 3 + 1] / 255.0f);   /* (c1, y2, x1) */
            }
        }
        ck_assert_int_eq(next, 23);
        vt_loader_free(l);
    }
    /* train/validation split: disjoint, complete, sorted, deterministic in the seed */
    int64_t *tr, *va, ntr, nva, *tr2, *va2, ntr2, nva2;
    ck_assert_int_eq(vt_split_indices(1000, 0.1, 3, &tr, &ntr, &va, &nva), VT_OK);
    ck_assert(ntr == 900 && nva == 100);
    bool seen[1000] = {false};
    for (int64_t i = 0; i < ntr; i++) {
        ck_assert(i == 0 || tr[i] > tr[i - 1]);
        seen[tr[i]] = true;
    }
    for (int64_t i = 0; i < nva; i++) {
        ck_assert(i == 0 || va[i] > va[i - 1]);
        ck_assert(!seen[va[i]]);
        seen[va[i]] = true;
    }
    ck_assert_int_eq(vt_split_indices(1000, 0.1, 3, &tr2, &ntr2, &va2, &nva2), VT_OK);
    ck_assert_mem_eq(va, va2, sizeof(int64_t) * 100);
    free(tr2);
    free(va2);
    ck_assert_int_eq(vt_split_indices(1000, 0.1, 4, &tr2, &ntr2, &va2, &nva2), VT_OK);
    ck_assert(memcmp(va, va2, sizeof(int64_t) * 100) != 0);
    free(tr2);
    free(va2);
    ck_assert_int_eq(vt_split_indices(10, 1.0, 3, &tr2, &ntr2, &va2, &nva2), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "fraction") != NULL);
    /* a loader over the validation subset sees exactly those samples */
    vt_dataset big = synth(1000, 2, 2, 1);
    vt_loader_config lc = {&big, va, nva, tf_plain(1, 2, 2), 32, false, false, 1, 1, 2, 0, 0, 0, 1};
    vt_loader *l;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_size(l), 100);
    ck_assert_int_eq(vt_loader_batches(l), 4);
    ck_assert_int_eq(vt_loader_start(l, 0, 0), VT_OK);
    int64_t got = 0;
    for (;;) {
        float *x;
        int *y, bs;
        const int64_t *ids;
        ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
        if (!bs) break;
        for (int b = 0; b < bs; b++, got++) ck_assert_int_eq(ids[b], va[got]);
    }
    ck_assert_int_eq(got, 100);
    vt_loader_free(l);
    free(tr);
    free(va);
    /* bad configurations */
    lc = (vt_loader_config){&big, NULL, 0, tf_plain(1, 2, 2), 0, false, false, 1, 0, 2, 0, 0, 0, 1};
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "batch size 0") != NULL);
    lc.batch = 4;
    lc.tf.std[0] = 0;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "std") != NULL);
    int64_t bad[2] = {3, 1000};
    lc = (vt_loader_config){&big, bad, 2, tf_plain(1, 2, 2), 1, false, false, 1, 0, 2, 0, 0, 0, 1};
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "index 1000") != NULL);
    lc.indices = NULL;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_start(l, 0, 1001), VT_ERR);
    vt_loader_free(l);
}
END_TEST


/* DeiT's RASampler on one process: 600 samples repeated 3 times in a row, the epoch cut to 600 // 256 * 256 =
 * 512 (64 batches of 8); the distinct samples in order are the plain loader's permutation; repeat 0 is augmented
 * as without repeats, the other repeats differently; resuming at a batch gives the same batch; under 256
 * samples the epoch keeps them all */
static void epoch_of(vt_loader *l, int64_t *ids, float *img, int per, int64_t start)
{
    ck_assert_int_eq(vt_loader_start(l, 2, start), VT_OK);
    for (int64_t k = start;; k++) {
        float *x;
        int *y, bs;
        const int64_t *id;
        ck_assert_int_eq(vt_loader_next(l, &x, &y, &id, &bs), VT_OK);
        if (bs == 0) break;
        memcpy(ids + k * 8, id, sizeof(int64_t) * (size_t)bs);
        memcpy(img + (size_t)k * 8 * per, x, sizeof(float) * (size_t)bs * per);
    }
}

START_TEST(repeated_augmentation_as_rasampler)
{
    vt_dataset ds = synth(600, 6, 6, 1);
    vt_transform tf = tf_plain(1, 6, 6);
    tf.train = tf.hflip = true;
    tf.crop_padding = 2;
    const int per = 36;
    vt_loader *lr, *l1;
    vt_loader_config lc = {&ds, NULL, 0, tf, 8, true, true, 9, 0, 2, 0, 0, 0, 3};
    ck_assert_int_eq(vt_loader_create(&lr, &lc), VT_OK);
    lc.repeats = 1;
    ck_assert_int_eq(vt_loader_create(&l1, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_epoch_samples(lr), 512);
    ck_assert_int_eq(vt_loader_batches(lr), 64);
    ck_assert_int_eq(vt_loader_batches(l1), 75);
    int64_t *ir = malloc(sizeof(int64_t) * 600), *i1 = malloc(sizeof(int64_t) * 600), *ia = malloc(sizeof(int64_t) * 600);
    float *xr = malloc(sizeof(float) * 600 * per), *x1 = malloc(sizeof(float) * 600 * per), *xa = malloc(sizeof(float) * 600 * per);
    epoch_of(lr, ir, xr, per, 0);
    epoch_of(l1, i1, x1, per, 0);
    int differ = 0;
    for (int j = 0; j < 512; j++) {
        ck_assert_msg(ir[j] == i1[j / 3], "position %d holds %lld, expected sample %lld (the plain order's %d-th)", j,
                      (long long)ir[j], (long long)i1[j / 3], j / 3);
        const float *a = xr + (size_t)j * per, *b = x1 + (size_t)(j / 3) * per;
        if (j % 3 == 0) ck_assert_msg(memcmp(a, b, sizeof(float) * per) == 0, "repeat 0 of position %d augmented otherwise", j);
        else differ += memcmp(a, xr + (size_t)(j - j % 3) * per, sizeof(float) * per) != 0;
    }
    ck_assert_msg(differ > 300, "only %d of 341 later repeats augmented differently", differ);
    epoch_of(lr, ia, xa, per, 40);   /* resumed at batch 40 */
    ck_assert(memcmp(ia + 320, ir + 320, sizeof(int64_t) * 192) == 0 && memcmp(xa + 320 * per, xr + 320 * per, sizeof(float) * 192 * per) == 0);
    vt_loader_free(lr);
    vt_loader_free(l1);
    vt_dataset small = synth(100, 6, 6, 1);
    lc.ds = &small;
    lc.repeats = 3;
    ck_assert_int_eq(vt_loader_create(&lr, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_epoch_samples(lr), 100);
    vt_loader_free(lr);
    free(ir), free(i1), free(ia), free(xr), free(x1), free(xa);
}
END_TEST

TCase *tc_data_loader(void)
{
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, transforms);
    tcase_add_test(tc, loader_resume_determinism);
    tcase_add_test(tc, loader_epochs);
    tcase_add_test(tc, loader_eval_and_subsets);
    tcase_add_test(tc, repeated_augmentation_as_rasampler);
    return tc;
}
