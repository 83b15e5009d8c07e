/* test_tensor.c - arena, views, RNG, HDF5 helpers. */
#include "testutil.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(arena_steady_state_no_malloc)
{
    vt_arena a;
    vt_arena_init(&a, 1 << 20);
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 40; i++) {
            float *p = vt_arena_alloc(&a, 100000 * sizeof(float));
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % 64, 0);
            p[0] = 1.0f;
            p[99999] = 2.0f;
        }
        vt_arena_reset(&a);
        if (step == 1) a.nmallocs = 0;  /* after the first steps the arena holds the peak */
    }
    ck_assert_int_eq(a.nmallocs, 0);
    ck_assert_uint_ge(vt_arena_capacity(&a), 40u * 100000 * sizeof(float));
    vt_arena_free(&a);
}
END_TEST

START_TEST(views_reshape_slice_transpose)
{
    float data[24];
    for (int i = 0; i < 24; i++) data[i] = (float)i;
    vt_tensor t = vt_tensor_view(data, 3, (int64_t[]){2, 3, 4}, "t");
    ck_assert(vt_tensor_is_contiguous(&t));
    vt_tensor r, s, tr;
    ck_assert_int_eq(vt_tensor_reshape(&r, &t, 2, (int64_t[]){6, 4}), VT_OK);
    ck_assert_int_eq(r.stride[0], 4);
    ck_assert_int_eq(vt_tensor_reshape(&r, &t, 2, (int64_t[]){5, 4}), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "24 elements") != NULL);
    ck_assert_int_eq(vt_tensor_slice(&s, &t, 1, 1, 2), VT_OK);
    ck_assert_float_eq(vt_tensor_get(&s, (int64_t[]){1, 0, 3}), 12 + 4 + 3);
    ck_assert_int_eq(vt_tensor_slice(&s, &t, 1, 2, 2), VT_ERR);
    ck_assert_int_eq(vt_tensor_transpose(&tr, &t, 1, 2), VT_OK);
    ck_assert(!vt_tensor_is_contiguous(&tr));
    float out[24];
    vt_tensor_copy_to_contiguous(out, &tr);
    /* tr[b][i][j] = t[b][j][i] */
    ck_assert_float_eq(out[(1 * 4 + 3) * 3 + 2], data[(1 * 3 + 2) * 4 + 3]);
    ck_assert_int_eq(vt_tensor_reshape(&r, &tr, 1, (int64_t[]){24}), VT_ERR);
}
END_TEST

START_TEST(rng_deterministic_and_normal)
{
    vt_rng a, b;
    vt_rng_seed(&a, 42);
    vt_rng_seed(&b, 42);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = vt_rng_normal(&a);
        ck_assert(x == vt_rng_normal(&b));
        s += x;
        s2 += x * x;
    }
    ck_assert(fabs(s / 100000) < 0.02);
    ck_assert(fabs(s2 / 100000 - 1.0) < 0.02);
    for (int i = 0; i < 10000; i++) {
        double v = vt_rng_trunc_normal(&a, 0, 1, -2, 2);
        ck_assert(v >= -2 && v <= 2);
    }
}
END_TEST

START_TEST(h5_read_golden_and_errors)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    int64_t depth;
    ck_assert_int_eq(vt_h5_attr_i64(f, "/vit_tiny_f64", "depth", &depth), VT_OK);
    ck_assert_int_eq(depth, 2);
    float *x;
    int nd;
    int64_t sh[8];
    ck_assert_int_eq(vt_h5_read_f32(f, "/vit_tiny_f64/input", &x, &nd, sh), VT_OK);
    ck_assert_int_eq(nd, 4);
    ck_assert_int_eq(sh[1], 3);
    free(x);
    char mode[32];
    ck_assert_int_eq(vt_h5_attr_str(f, "/pos_resample/case_0", "mode", mode, sizeof mode), VT_OK);
    ck_assert_str_eq(mode, "bicubic");
    bool aa = true;
    ck_assert_int_eq(vt_h5_attr_bool(f, "/pos_resample/case_0", "antialias", &aa), VT_OK);
    ck_assert(!aa);
    ck_assert_int_eq(vt_h5_read_f32(f, "/nope/input", &x, &nd, sh), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "vit_reference.h5") && strstr(vt_errmsg(), "/nope/input"));
    char **names;
    int n;
    ck_assert_int_eq(vt_h5_list(f, "/vit_tiny_f64/params", &names, &n), VT_OK);
    ck_assert_int_eq(n, 4 + 12 * 2 + 4);
    vt_h5_free_names(names, n);
    vt_h5_close(f);
    ck_assert(vt_h5_open("/nonexistent/x.h5", false) < 0);
    ck_assert(strstr(vt_errmsg(), "/nonexistent/x.h5") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, arena_steady_state_no_malloc);
    tcase_add_test(tc, views_reshape_slice_transpose);
    tcase_add_test(tc, rng_deterministic_and_normal);
    tcase_add_test(tc, h5_read_golden_and_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
