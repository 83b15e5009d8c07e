/* test_pos_resample.c - position-embedding resampling: timm's goldens (through the vit-golden code),
 * and properties that must hold for any grid. */
#include "testutil.h"
#include "nn/nn.h"
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
            ck_assert_msg(tu_maxdiff(out, in, 16 * D) < 1e-6, "identity mode %d aa %d: %g", mode, aa,
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

START_TEST(bad_arguments)
{
    float a[8] = {0}, b[8];
    ck_assert_int_eq(vt_pos_resample(b, a, 1, 1, 0, 2, 2, 2, VT_INTERP_BICUBIC, false), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "bad sizes") != NULL);
    vt_interp m;
    ck_assert_int_eq(vt_interp_parse("nearest", &m), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "nearest") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pos_resample");
    TCase *tc = tcase_create("resample");
    tcase_add_test(tc, goldens_match_timm);
    tcase_add_test(tc, identity_and_constants);
    tcase_add_test(tc, bilinear_ramp);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
