/* test_optim.c - optimizers step for step against torch, the schedule against timm, clipping,
 * decay groups, validation, state round trip. */
#include "testutil.h"
#include "optim/optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void run_golden(const char *name)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    char g[128], p[160], kind[32], betas[64];
    snprintf(g, sizeof g, "/optim/%s", name);
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    ck_assert_int_eq(vt_h5_attr_str(f, g, "torch_optimizer", kind, sizeof kind), VT_OK);
    if (strcmp(kind, "SGD") == 0) {
        c.kind = VT_OPTIM_SGD;
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "momentum", &c.momentum), VT_OK);
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "dampening", &c.dampening), VT_OK);
        ck_assert_int_eq(vt_h5_attr_bool(f, g, "nesterov", &c.nesterov), VT_OK);
    } else {
        c.kind = strcmp(kind, "AdamW") == 0 ? VT_OPTIM_ADAMW : VT_OPTIM_ADAM;
        ck_assert_msg(c.kind == VT_OPTIM_ADAMW || strcmp(kind, "Adam") == 0, "unknown optimizer %s", kind);
        ck_assert_int_eq(vt_h5_attr_str(f, g, "betas", betas, sizeof betas), VT_OK);
        ck_assert_int_eq(sscanf(betas, "%lf,%lf", &c.beta1, &c.beta2), 2);
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "eps", &c.eps), VT_OK);
    }
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "lr", &c.lr), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "weight_decay", &c.weight_decay), VT_OK);
    float *p0, *grads, *ref;
    int nd;
    int64_t sh[8], shg[8];
    snprintf(p, sizeof p, "%s/params0", g);
    ck_assert_int_eq(vt_h5_read_f32(f, p, &p0, &nd, sh), VT_OK);
    snprintf(p, sizeof p, "%s/grads", g);
    ck_assert_int_eq(vt_h5_read_f32(f, p, &grads, &nd, shg), VT_OK);
    snprintf(p, sizeof p, "%s/params", g);
    double *refd;
    ck_assert_int_eq(vt_h5_read_f64(f, p, &refd, &nd, shg), VT_OK);
    (void)ref;
    int64_t P = sh[0], T = shg[0];
    vt_optim o;
    ck_assert_msg(vt_optim_init(&o, &c, P) == VT_OK, "%s", vt_errmsg());
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        vt_optim_step(&o, p0, grads + t * P, c.lr);
        /* relative to the largest magnitude of the step's parameter vector: float32 parameters
         * cannot carry 1e-6 relative precision on an element that is crossing zero */
        double scale = 0;
        for (int64_t i = 0; i < P; i++) scale = fmax(scale, fabs(refd[t * P + i]));
        for (int64_t i = 0; i < P; i++) {
            double rel = fabs(p0[i] - refd[t * P + i]) / scale;
            if (!(rel <= worst)) worst = rel;
        }
    }
    printf("optim/%s: %lld steps of %lld params, worst relative error %.3g\n", name, (long long)T, (long long)P, worst);
    ck_assert_msg(worst <= 1e-6, "optim/%s: worst relative error %g", name, worst);
    vt_optim_free(&o);
    free(p0);
    free(grads);
    free(refd);
    vt_h5_close(f);
}

START_TEST(adamw_matches_torch) { run_golden("adamw"); }
END_TEST
START_TEST(adam_matches_torch) { run_golden("adam"); }
END_TEST
START_TEST(sgd_momentum_matches_torch) { run_golden("sgd_momentum"); }
END_TEST
START_TEST(sgd_nesterov_matches_torch) { run_golden("sgd_nesterov"); }
END_TEST

START_TEST(schedule_matches_timm)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    const char *g = "/schedule/warmup_cosine";
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "base_lr", &s.base_lr), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "lr_min", &s.lr_min), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "warmup_lr_init", &s.warmup_lr_init), VT_OK);
    ck_assert_int_eq(vt_h5_attr_i64(f, g, "warmup_steps", &s.warmup_steps), VT_OK);
    ck_assert_int_eq(vt_h5_attr_i64(f, g, "total_steps", &s.total_steps), VT_OK);
    ck_assert_int_eq(vt_schedule_check(&s), VT_OK);
    double *lrs;
    int nd;
    int64_t sh[8];
    ck_assert_int_eq(vt_h5_read_f64(f, "/schedule/warmup_cosine/lrs", &lrs, &nd, sh), VT_OK);
    ck_assert_int_eq(sh[0], s.warmup_steps + s.total_steps);
    double worst = 0;
    for (int64_t t = 0; t < sh[0]; t++) {
        double rel = fabs(vt_lr_at(&s, t) - lrs[t]) / fmax(fabs(lrs[t]), 1e-30);
        if (rel > worst) worst = rel;
    }
    printf("schedule/warmup_cosine: %lld steps, worst relative error %.3g\n", (long long)sh[0], worst);
    ck_assert_msg(worst <= 1e-9, "worst relative error %g", worst);
    free(lrs);
    vt_h5_close(f);
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
    tcase_add_test(tc, clipping_and_finiteness);
    tcase_add_test(tc, decay_groups_follow_timm);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, state_round_trip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
