/* test_optim.c - optimizers step for step against torch, the schedule against timm, clipping,
 * decay groups, validation, state round trip. */
#include "testutil.h"
#include "optim/optim.h"
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the golden groups are checked by the same code vit-golden runs (src/train/golden.c) */
static void run_golden(const char *name)
{
    char g[128];
    snprintf(g, sizeof g, "/%s", name);
    vt_golden_opts o = {g, NULL, true};
    vt_golden_result r = {0};
    ck_assert_msg(vt_golden_check_file(tu_golden("vit_reference.h5"), &o, stdout, &r) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(r.cases, 1);
    ck_assert_int_eq(r.errors, 0);
    ck_assert_int_eq(r.failed, 0);
    ck_assert_int_gt(r.checked, 0);
}

START_TEST(adamw_matches_torch) { run_golden("optim/adamw"); }
END_TEST
START_TEST(adam_matches_torch) { run_golden("optim/adam"); }
END_TEST
START_TEST(sgd_momentum_matches_torch) { run_golden("optim/sgd_momentum"); }
END_TEST
START_TEST(sgd_nesterov_matches_torch) { run_golden("optim/sgd_nesterov"); }
END_TEST

START_TEST(schedule_matches_timm)
{
    run_golden("schedule/warmup_cosine");
    /* linear and constant */
    vt_schedule l = {VT_SCHED_LINEAR, 1.0, 0.0, 0.1, 10, 100};
    ck_assert(fabs(vt_lr_at(&l, 5) - 0.5) < 1e-12);
    ck_assert(fabs(vt_lr_at(&l, 60) - (1.0 - 0.9 * 0.5)) < 1e-12);
    ck_assert(fabs(vt_lr_at(&l, 500) - 0.1) < 1e-12);
    l.kind = VT_SCHED_CONSTANT;
    ck_assert(vt_lr_at(&l, 500) == 1.0);
    ck_assert(fabs(vt_lr_scale(1e-3, 4096) - 0.016) < 1e-15);
}
END_TEST

START_TEST(train_steps_match_timm)
{
    run_golden("train_steps/adamw");
    run_golden("train_steps/sgd");
}
END_TEST

START_TEST(clipping_and_finiteness)
{
    float g[5] = {3, 4, 0, 0, 0};
    double n = vt_clip_grad_norm(g, 5, 1.0);
    ck_assert(fabs(n - 5.0) < 1e-12);
    ck_assert(fabs(g[0] - 3.0 / (5.0 + 1e-6)) < 1e-7 && fabs(g[1] - 4.0 / (5.0 + 1e-6)) < 1e-7);
    float h[2] = {0.3f, 0.4f};
    n = vt_clip_grad_norm(h, 2, 1.0);
    ck_assert(fabs(n - 0.5) < 1e-7 && h[0] == 0.3f);   /* below the limit: untouched */
    ck_assert(vt_all_finite(h, 2));
    h[1] = NAN;
    ck_assert(!vt_all_finite(h, 2));
    /* the norm does not depend on the thread count */
    int64_t N = 1 << 20;
    float *big = malloc((size_t)N * sizeof(float));
    vt_rng r;
    vt_rng_seed(&r, 5);
    tu_fill_uniform(&r, big, N, -1, 1);
    vt_set_threads(1);
    double a = vt_clip_grad_norm(big, N, 0);
    vt_set_threads(2);
    double b = vt_clip_grad_norm(big, N, 0);
    ck_assert(a == b);
    free(big);
}
END_TEST

START_TEST(decay_groups_follow_timm)
{
    ck_assert(vt_optim_decays("blocks.0.attn.qkv.weight", 2, NULL, 0));
    ck_assert(!vt_optim_decays("blocks.0.attn.qkv.bias", 1, NULL, 0));
    ck_assert(!vt_optim_decays("pos_embed", 3, NULL, 0));
    ck_assert(!vt_optim_decays("cls_token", 3, NULL, 0));
    ck_assert(!vt_optim_decays("norm.weight", 1, NULL, 0));
    ck_assert(vt_optim_decays("patch_embed.proj.weight", 4, NULL, 0));
    const char *pats[] = {"head.*"};
    ck_assert(!vt_optim_decays("head.weight", 2, pats, 1));
    ck_assert(vt_optim_decays("blocks.1.mlp.fc1.weight", 2, pats, 1));
    /* AdamW decays only the marked segment */
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    c.weight_decay = 0.5;
    vt_optim o;
    ck_assert_int_eq(vt_optim_init(&o, &c, 4), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 0, 2, true), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 2, 2, false), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 3, 2, false), VT_ERR);
    float p[4] = {1, 1, 1, 1}, g[4] = {0, 0, 0, 0};
    vt_optim_step(&o, p, g, 0.1);
    ck_assert(fabsf(p[0] - 0.95f) < 1e-7 && p[2] == 1.0f);
    vt_optim_free(&o);
}
END_TEST

START_TEST(bad_settings_refused)
{
    vt_optim_config c;
    vt_optim o;
    vt_optim_config_defaults(&c);
    c.lr = -1;
    ck_assert_int_eq(vt_optim_init(&o, &c, 3), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "learning rate") != NULL);
    vt_optim_config_defaults(&c);
    c.beta2 = 1.0;
    ck_assert_int_eq(vt_optim_config_check(&c), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "beta2") != NULL);
    vt_optim_config_defaults(&c);
    c.kind = VT_OPTIM_SGD;
    c.nesterov = true;
    ck_assert_int_eq(vt_optim_config_check(&c), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "Nesterov") != NULL);
    vt_schedule s = {VT_SCHED_COSINE, 1e-3, 0, 0, 100, 0};
    ck_assert_int_eq(vt_schedule_check(&s), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "warmup") != NULL);
}
END_TEST

START_TEST(state_round_trip)
{
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    vt_optim a, b;
    ck_assert_int_eq(vt_optim_init(&a, &c, 100), VT_OK);
    float p[100], g[100];
    vt_rng r;
    vt_rng_seed(&r, 2);
    tu_fill_uniform(&r, p, 100, -1, 1);
    tu_fill_uniform(&r, g, 100, -1, 1);
    vt_optim_step(&a, p, g, 1e-2);
    vt_optim_step(&a, p, g, 1e-2);
    char tmpl[] = "/tmp/vit_optim_XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    vt_h5id f = vt_h5_create(tmpl);
    ck_assert_int_eq(vt_optim_save(&a, f, "/optimizer"), VT_OK);
    vt_h5_close(f);
    ck_assert_int_eq(vt_optim_init(&b, &c, 100), VT_OK);
    f = vt_h5_open(tmpl, false);
    ck_assert_msg(vt_optim_load(&b, f, "/optimizer") == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(b.step, 2);
    ck_assert_int_eq(memcmp(a.m, b.m, sizeof p), 0);
    ck_assert_int_eq(memcmp(a.v, b.v, sizeof p), 0);
    vt_optim_free(&b);
    ck_assert_int_eq(vt_optim_init(&b, &c, 99), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "100") && strstr(vt_errmsg(), "99"), "%s", vt_errmsg());
    vt_optim_free(&b);
    c.kind = VT_OPTIM_SGD;
    c.momentum = 0.9;
    ck_assert_int_eq(vt_optim_init(&b, &c, 100), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "adamw") != NULL);
    vt_optim_free(&b);
    vt_h5_close(f);
    remove(tmpl);
    vt_optim_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_test(tc, adamw_matches_torch);
    tcase_add_test(tc, adam_matches_torch);
    tcase_add_test(tc, sgd_momentum_matches_torch);
    tcase_add_test(tc, sgd_nesterov_matches_torch);
    tcase_add_test(tc, schedule_matches_timm);
    tcase_add_test(tc, train_steps_match_timm);
    tcase_add_test(tc, clipping_and_finiteness);
    tcase_add_test(tc, decay_groups_follow_timm);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, state_round_trip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
