/* test_pos_resample.c - position-embedding resampling: timm's goldens (through the vit-golden code),
 * and properties that must hold for any grid. */
#include "testutil.h"
#include "nn/nn.h"
#include "golden/golden.h"
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(goldens_match_timm)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    char **names;
    int n;
    ck_assert_int_eq(vt_h5_list(f, "/pos_resample", &names, &n), VT_OK);
    vt_h5_close(f);
    ck_assert_int_ge(n, 5);
    for (int i = 0; i < n; i++) {
        char g[128];
        snprintf(g, sizeof g, "/pos_resample/%s", names[i]);
        vt_golden_opts o = {g, NULL, true};
        vt_golden_result r = {0};
        ck_assert_int_eq(vt_golden_check_file(tu_golden("vit_reference.h5"), &o, stdout, &r), VT_OK);
        ck_assert_msg(r.cases == 1 && r.failed == 0 && r.errors == 0, "%s failed", g);
    }
    vt_h5_free_names(names, n);
}
END_TEST

/* same size: identity; a constant grid stays constant, growing and shrinking, square or not */
START_TEST(identity_and_constants)
{
    const int D = 3;
    float in[(1 + 3 * 5) * D], out[(1 + 8 * 8) * D];
    vt_rng r;
    vt_rng_seed(&r, 1);
    tu_fill_uniform(&r, in, (1 + 15) * D, -1, 1);
    for (int mode = 0; mode < 2; mode++)
        for (int aa = 0; aa < 2; aa++) {
            ck_assert_int_eq(vt_pos_resample(out, in, D, 1, 3, 5, 3, 5, (vt_interp)mode, aa), VT_OK);
            ck_assert_msg(tu_maxdiff(out, in, 16 * D) == 0, "identity mode %d aa %d: %g", mode, aa,
                          tu_maxdiff(out, in, 16 * D));
        }
    for (int i = 0; i < 15; i++)
        for (int d = 0; d < D; d++) in[(1 + i) * D + d] = 0.25f * (float)(d + 1);
    const int sizes[][2] = {{6, 4}, {2, 2}, {8, 8}, {1, 7}};
    for (int s = 0; s < 4; s++)
        for (int mode = 0; mode < 2; mode++)
            for (int aa = 0; aa < 2; aa++) {
                ck_assert_int_eq(vt_pos_resample(out, in, D, 1, 3, 5, sizes[s][0], sizes[s][1], (vt_interp)mode, aa), VT_OK);
                ck_assert(memcmp(out, in, D * sizeof(float)) == 0);   /* class token untouched */
                for (int i = 0; i < sizes[s][0] * sizes[s][1]; i++)
                    for (int d = 0; d < D; d++)
                        ck_assert_msg(fabsf(out[(1 + i) * D + d] - 0.25f * (float)(d + 1)) < 1e-6,
                                      "size %dx%d mode %d aa %d", sizes[s][0], sizes[s][1], mode, aa);
            }
}
END_TEST

/* bilinear without antialias keeps a linear ramp linear away from the borders */
START_TEST(bilinear_ramp)
{
    float in[1 + 4 * 4], out[1 + 8 * 8];
    in[0] = 7;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) in[1 + y * 4 + x] = (float)x;
    ck_assert_int_eq(vt_pos_resample(out, in, 1, 1, 4, 4, 8, 8, VT_INTERP_BILINEAR, false), VT_OK);
    /* output x maps to source (x + 0.5) / 2 - 0.5 */
    for (int y = 0; y < 8; y++)
        for (int x = 1; x < 7; x++) ck_assert(fabsf(out[1 + y * 8 + x] - ((x + 0.5f) / 2 - 0.5f)) < 1e-6);
}
END_TEST

/* non-square 3x5 -> 6x4, bilinear without antialias: a ramp x + 10 y is reproduced exactly at the
 * source coordinates sx = (x+0.5)*5/4-0.5, sy = (y+0.5)*3/6-0.5, each clamped to the grid */
START_TEST(non_square_ramp)
{
    float in[3 * 5], out[6 * 4];
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) in[y * 5 + x] = (float)(x + 10 * y);
    ck_assert_int_eq(vt_pos_resample(out, in, 1, 0, 3, 5, 6, 4, VT_INTERP_BILINEAR, false), VT_OK);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 4; x++) {
            double sx = fmin(fmax((x + 0.5) * 5.0 / 4.0 - 0.5, 0.0), 4.0);
            double sy = fmin(fmax((y + 0.5) * 3.0 / 6.0 - 0.5, 0.0), 2.0);
            ck_assert_msg(fabs(out[y * 4 + x] - (sx + 10 * sy)) < 1e-5, "(%d,%d): %g, expected %g", y, x,
                          out[y * 4 + x], sx + 10 * sy);
        }
}
END_TEST

/* antialiased shrinking (not covered by the goldens), worked by hand from torch's aa weights:
 * support = interp/2 * scale, taps filter((j - center + 0.5) / scale), normalised.
 * 4 -> 2 of 0 1 2 3: triangle weights .75 .75 .25 -> 5/7, mirrored 16/7; cubic (A = -0.5) weights
 * .8671875 .8671875 .2265625 -.0703125 -> 71/121, mirrored 3 - 71/121. 6 -> 3 of 0..5: 5/7, 5/2, 30/7.
 * Separable: a 4x6 grid x + 10 y -> 2x3 is ax[x] + 10 ay[y]. */
START_TEST(antialias_shrink_by_hand)
{
    const double lin4[2] = {5.0 / 7, 16.0 / 7}, cub4[2] = {71.0 / 121, 3 - 71.0 / 121};
    const double lin6[3] = {5.0 / 7, 2.5, 30.0 / 7};
    float in[4 * 6], out[2 * 3];
    for (int i = 0; i < 4; i++) in[i] = (float)i;
    /* along w (1x4 -> 1x2) and along h (4x1 -> 2x1) */
    for (int axis = 0; axis < 2; axis++) {
        int ih = axis ? 4 : 1, iw = axis ? 1 : 4, oh = axis ? 2 : 1, ow = axis ? 1 : 2;
        ck_assert_int_eq(vt_pos_resample(out, in, 1, 0, ih, iw, oh, ow, VT_INTERP_BILINEAR, true), VT_OK);
        for (int o = 0; o < 2; o++) ck_assert_msg(fabs(out[o] - lin4[o]) < 1e-6, "bilinear aa axis %d: %g", axis, out[o]);
        ck_assert_int_eq(vt_pos_resample(out, in, 1, 0, ih, iw, oh, ow, VT_INTERP_BICUBIC, true), VT_OK);
        for (int o = 0; o < 2; o++) ck_assert_msg(fabs(out[o] - cub4[o]) < 1e-6, "bicubic aa axis %d: %g", axis, out[o]);
    }
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++) in[y * 6 + x] = (float)(x + 10 * y);
    ck_assert_int_eq(vt_pos_resample(out, in, 1, 0, 4, 6, 2, 3, VT_INTERP_BILINEAR, true), VT_OK);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            ck_assert_msg(fabs(out[y * 3 + x] - (lin6[x] + 10 * lin4[y])) < 1e-5, "(%d,%d): %g", y, x, out[y * 3 + x]);
}
END_TEST

/* h and w are not mixed up: resizing the transposed grid gives the transposed result, every mode */
START_TEST(transpose_symmetry)
{
    const int D = 2, H = 3, W = 5, NH = 6, NW = 4;
    float in[H * W * D], tin[H * W * D], out[NH * NW * D], tout[NH * NW * D];
    vt_rng r;
    vt_rng_seed(&r, 7);
    tu_fill_uniform(&r, in, H * W * D, -1, 1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int d = 0; d < D; d++) tin[(x * H + y) * D + d] = in[(y * W + x) * D + d];
    for (int mode = 0; mode < 2; mode++)
        for (int aa = 0; aa < 2; aa++) {
            ck_assert_int_eq(vt_pos_resample(out, in, D, 0, H, W, NH, NW, (vt_interp)mode, aa), VT_OK);
            ck_assert_int_eq(vt_pos_resample(tout, tin, D, 0, W, H, NW, NH, (vt_interp)mode, aa), VT_OK);
            for (int y = 0; y < NH; y++)
                for (int x = 0; x < NW; x++)
                    for (int d = 0; d < D; d++)
                        ck_assert_msg(fabsf(out[(y * NW + x) * D + d] - tout[(x * NH + y) * D + d]) < 1e-6,
                                      "mode %d aa %d at (%d,%d,%d)", mode, aa, y, x, d);
        }
}
END_TEST

START_TEST(bad_arguments)
{
    float a[8] = {0}, b[8];
    ck_assert_int_eq(vt_pos_resample(b, a, 1, 1, 0, 2, 2, 2, VT_INTERP_BICUBIC, false), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "bad sizes") != NULL);
    ck_assert_int_eq(vt_pos_resample(b, a, 0, 1, 2, 2, 2, 2, VT_INTERP_BICUBIC, false), VT_ERR);
    ck_assert_int_eq(vt_pos_resample(b, a, 1, -1, 2, 2, 2, 2, VT_INTERP_BICUBIC, false), VT_ERR);
    ck_assert_int_eq(vt_pos_resample(b, a, 1, 1, 2, 2, 2, -3, VT_INTERP_BILINEAR, true), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "-3") != NULL);
    ck_assert_int_eq(vt_resize_image_f32(b, a, 1, 2, 2, 0, 2, VT_INTERP_BILINEAR, false), VT_ERR);
    ck_assert_int_eq(vt_resize_image_f32(b, a, 1, 2, 2, 2, 2, (vt_interp)7, false), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "interpolation") != NULL);
    vt_interp m = VT_INTERP_BILINEAR;
    ck_assert_int_eq(vt_interp_parse("nearest", &m), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "nearest") != NULL);
    ck_assert_int_eq(vt_interp_parse(NULL, &m), VT_ERR);
    ck_assert_int_eq(vt_interp_parse("bicubic", &m), VT_OK);
    ck_assert_int_eq(m, VT_INTERP_BICUBIC);
}
END_TEST

/* the allocation-free form: the same numbers, a workspace size that bounds every smaller input (the
 * loader sizes it once for the stored image and resizes crops of it), a misaligned workspace refused */
START_TEST(workspace_form)
{
    enum { MAXS = 24 };
    static float in[3 * MAXS * MAXS], a[3 * MAXS * MAXS], b[3 * MAXS * MAXS];
    for (int i = 0; i < 3 * MAXS * MAXS; i++) in[i] = (float)((i * 37) % 101) / 7.0f;
    const size_t big = vt_resize_work_bytes(MAXS, MAXS, 9, 13);
    double *work = malloc(big + sizeof(double));
    ck_assert_ptr_nonnull(work);
    for (int ih = 1; ih <= MAXS; ih++)
        for (int iw = 1; iw <= MAXS; iw++) {
            const size_t n = vt_resize_work_bytes(ih, iw, 9, 13);
            ck_assert_uint_le(n, big);
            if (ih > 1) ck_assert_uint_le(vt_resize_work_bytes(ih - 1, iw, 9, 13), n);
            if (iw > 1) ck_assert_uint_le(vt_resize_work_bytes(ih, iw - 1, 9, 13), n);
            for (int mode = 0; mode < 2; mode++) {
                const bool aa = (ih + iw) % 2 == 0;
                ck_assert_int_eq(vt_resize_image_f32(a, in, 3, ih, iw, 9, 13, (vt_interp)mode, aa), VT_OK);
                ck_assert_int_eq(vt_resize_image_f32_work(b, in, 3, ih, iw, 9, 13, (vt_interp)mode, aa, work), VT_OK);
                ck_assert_mem_eq(a, b, sizeof(float) * 3 * 9 * 13);
            }
        }
    ck_assert_uint_eq(vt_resize_work_bytes(0, 4, 9, 13), 0);
    ck_assert_int_eq(vt_resize_image_f32_work(b, in, 1, 4, 4, 2, 2, VT_INTERP_BILINEAR, true, (char *)work + 4), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "aligned") != NULL);
    free(work);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pos_resample");
    TCase *tc = tcase_create("resample");
    tcase_add_test(tc, goldens_match_timm);
    tcase_add_test(tc, identity_and_constants);
    tcase_add_test(tc, bilinear_ramp);
    tcase_add_test(tc, non_square_ramp);
    tcase_add_test(tc, antialias_shrink_by_hand);
    tcase_add_test(tc, transpose_symmetry);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, workspace_form);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
