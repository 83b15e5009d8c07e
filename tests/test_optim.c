/* test_optim.c - optimizers step for step against torch, the schedule against timm, clipping,
 * decay groups, validation, state round trip. The golden groups are read here directly (an
 * independent per-element check) and also through the code vit-golden runs (src/train/golden.c). */
#include "testutil.h"
#include "optim/optim.h"
#include "golden/golden.h"
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ golden groups */

/* the check vit-golden runs: tolerance relative to the largest magnitude of each step's vector */
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

/* hyper-parameters of /optim/<name> from its torch attributes */
static void read_config(vt_h5id f, const char *g, vt_optim_config *c)
{
    char kind[32], betas[64];
    vt_optim_config_defaults(c);
    ck_assert_int_eq(vt_h5_attr_str(f, g, "torch_optimizer", kind, sizeof kind), VT_OK);
    if (strcmp(kind, "AdamW") == 0) c->kind = VT_OPTIM_ADAMW;
    else if (strcmp(kind, "Adam") == 0) c->kind = VT_OPTIM_ADAM;
    else if (strcmp(kind, "SGD") == 0) c->kind = VT_OPTIM_SGD;
    else ck_abort_msg("%s: unknown torch_optimizer %s", g, kind);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "lr", &c->lr), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "weight_decay", &c->weight_decay), VT_OK);
    if (c->kind == VT_OPTIM_SGD) {
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "momentum", &c->momentum), VT_OK);
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "dampening", &c->dampening), VT_OK);
        ck_assert_int_eq(vt_h5_attr_bool(f, g, "nesterov", &c->nesterov), VT_OK);
    } else {
        ck_assert_int_eq(vt_h5_attr_str(f, g, "betas", betas, sizeof betas), VT_OK);
        ck_assert_int_eq(sscanf(betas, "%lf,%lf", &c->beta1, &c->beta2), 2);
        ck_assert_int_eq(vt_h5_attr_f64(f, g, "eps", &c->eps), VT_OK);
    }
    ck_assert_msg(vt_optim_config_check(c) == VT_OK, "%s", vt_errmsg());
}

/* params0 (P), grads (T, P), params (T, P): T float32 steps; element i after step t must satisfy
 * |ours - ref| <= 1e-6 * scale, scale = the largest |value| element i has held so far (params0 and
 * ref steps 1..t). Plain |ref| would demand the impossible of an element passing near zero: its
 * float32 rounding error was made while it was larger. Returns the worst error / scale. */
static double golden_trajectory(const char *name)
{
    char g[128], path[256];
    snprintf(g, sizeof g, "/optim/%s", name);
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    vt_optim_config c;
    read_config(f, g, &c);
    float *p, *grads;
    double *ref, *p0;
    int nd;
    int64_t sh[8], shg[8], shr[8];
    snprintf(path, sizeof path, "%s/params0", g);
    ck_assert_int_eq(vt_h5_read_f32(f, path, &p, &nd, sh), VT_OK);
    ck_assert_int_eq(vt_h5_read_f64(f, path, &p0, &nd, sh), VT_OK);
    snprintf(path, sizeof path, "%s/grads", g);
    ck_assert_int_eq(vt_h5_read_f32(f, path, &grads, &nd, shg), VT_OK);
    snprintf(path, sizeof path, "%s/params", g);
    ck_assert_int_eq(vt_h5_read_f64(f, path, &ref, &nd, shr), VT_OK);
    vt_h5_close(f);
    const int64_t P = sh[0], T = shg[0];
    ck_assert(shg[1] == P && shr[0] == T && shr[1] == P && T > 0);

    vt_optim o;
    ck_assert_int_eq(vt_optim_init(&o, &c, P), VT_OK);
    double *scale = malloc((size_t)P * sizeof *scale);
    for (int64_t i = 0; i < P; i++) scale[i] = fabs(p0[i]);
    double worst = 0;
    int64_t wt = 0, wi = 0;
    for (int64_t t = 0; t < T; t++) {
        vt_optim_step(&o, p, grads + t * P, c.lr);
        for (int64_t i = 0; i < P; i++) {
            double r = ref[t * P + i];
            scale[i] = fmax(scale[i], fabs(r));
            double e = fabs((double)p[i] - r) / fmax(scale[i], 1e-30);
            if (!(e <= worst)) worst = e, wt = t, wi = i;
        }
    }
    printf("%s (independent): %lld steps of %lld, worst per-element error %.3e of the element's scale "
           "(step %lld, element %lld; tolerance 1e-6)\n",
           g, (long long)T, (long long)P, worst, (long long)wt + 1, (long long)wi);
    ck_assert_int_eq(o.step, T);
    vt_optim_free(&o);
    free(scale);
    free(p);
    free(p0);
    free(grads);
    free(ref);
    ck_assert_msg(worst <= 1e-6, "%s: worst error %.3e of the element's scale at step %lld, element %lld", g, worst,
                  (long long)wt + 1, (long long)wi);
    return worst;
}

START_TEST(adamw_matches_torch)
{
    golden_trajectory("adamw");
    run_golden("optim/adamw");
}
END_TEST
START_TEST(adam_matches_torch)
{
    golden_trajectory("adam");
    run_golden("optim/adam");
}
END_TEST
START_TEST(sgd_momentum_matches_torch)
{
    golden_trajectory("sgd_momentum");
    run_golden("optim/sgd_momentum");
}
END_TEST
START_TEST(sgd_nesterov_matches_torch)
{
    golden_trajectory("sgd_nesterov");
    run_golden("optim/sgd_nesterov");
}
END_TEST

START_TEST(schedule_matches_timm)
{
    const char *g = "/schedule/warmup_cosine";
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "base_lr", &s.base_lr), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "lr_min", &s.lr_min), VT_OK);
    ck_assert_int_eq(vt_h5_attr_f64(f, g, "warmup_lr_init", &s.warmup_lr_init), VT_OK);
    ck_assert_int_eq(vt_h5_attr_i64(f, g, "warmup_steps", &s.warmup_steps), VT_OK);
    ck_assert_int_eq(vt_h5_attr_i64(f, g, "total_steps", &s.total_steps), VT_OK);
    double *lrs;
    int nd;
    int64_t sh[8];
    ck_assert_int_eq(vt_h5_read_f64(f, "/schedule/warmup_cosine/lrs", &lrs, &nd, sh), VT_OK);
    vt_h5_close(f);
    ck_assert_int_eq(vt_schedule_check(&s), VT_OK);
    ck_assert_int_eq(sh[0], s.warmup_steps + s.total_steps);
    double worst = 0;
    for (int64_t t = 0; t < sh[0]; t++) worst = fmax(worst, fabs(vt_lr_at(&s, t) - lrs[t]) / fabs(lrs[t]));
    printf("%s (independent): %lld LRs, worst relative error %.3e (tolerance 1e-9)\n", g, (long long)sh[0], worst);
    free(lrs);
    ck_assert_msg(worst <= 1e-9, "worst relative LR error %.3e", worst);
    run_golden("schedule/warmup_cosine");

    /* warmup then linear decay, by hand: W = 10, T = 100, 1.0 -> 0.1 */
    vt_schedule l = {VT_SCHED_LINEAR, 1.0, 0.0, 0.1, 10, 100};
    ck_assert(vt_lr_at(&l, 0) == 0.0);
    ck_assert(fabs(vt_lr_at(&l, 5) - 0.5) < 1e-15);
    ck_assert(vt_lr_at(&l, 10) == 1.0);
    ck_assert(fabs(vt_lr_at(&l, 60) - (1.0 - 0.9 * 0.5)) < 1e-15);
    ck_assert(fabs(vt_lr_at(&l, 109) - (1.0 - 0.9 * 0.99)) < 1e-15);
    ck_assert(vt_lr_at(&l, 110) == 0.1 && vt_lr_at(&l, 500) == 0.1);
    /* cosine: half way through the decay is the mean of base and min; past the end lr_min */
    vt_schedule cs = {VT_SCHED_COSINE, 1.0, 0.0, 0.1, 10, 100};
    ck_assert(fabs(vt_lr_at(&cs, 60) - 0.55) < 1e-15);
    ck_assert(vt_lr_at(&cs, 110) == 0.1);
    /* constant: the warmup, then base for ever; no warmup at all */
    l.kind = VT_SCHED_CONSTANT;
    ck_assert(fabs(vt_lr_at(&l, 5) - 0.5) < 1e-15 && vt_lr_at(&l, 500) == 1.0);
    vt_schedule nw = {VT_SCHED_COSINE, 2.0, 0.0, 0.0, 0, 4};
    ck_assert(vt_lr_at(&nw, 0) == 2.0);
    ck_assert(fabs(vt_lr_at(&nw, 2) - 1.0) < 1e-15);
    /* LR scaling: base * global batch / 256 */
    ck_assert(fabs(vt_lr_scale(1e-3, 4096) - 0.016) < 1e-15);
    ck_assert(vt_lr_scale(3e-3, 256) == 3e-3);
}
END_TEST

START_TEST(train_steps_match_timm)
{
    run_golden("train_steps/adamw");
    run_golden("train_steps/sgd");
}
END_TEST

/* ------------------------------------------------------------ semantics by hand */

/* one element, two steps of each optimizer, against the update written out in double */
START_TEST(updates_by_hand)
{
    vt_optim_config c;
    vt_optim o;
    const double lr = 0.1, p0 = 0.8, g1 = 0.5, g2 = -0.25;
    float p[1], g[1];

    /* AdamW, beta1 0.3 (lerp's other branch), wd 0.2: decoupled decay, then Adam */
    vt_optim_config_defaults(&c);
    c.beta1 = 0.3, c.beta2 = 0.9, c.eps = 1e-3, c.weight_decay = 0.2;
    double m = 0, v = 0, pe = p0, gs[2] = {g1, g2};
    for (int t = 1; t <= 2; t++) {
        pe *= 1 - lr * c.weight_decay;
        m = c.beta1 * m + (1 - c.beta1) * gs[t - 1];
        v = c.beta2 * v + (1 - c.beta2) * gs[t - 1] * gs[t - 1];
        double mh = m / (1 - pow(c.beta1, t)), vh = sqrt(v) / sqrt(1 - pow(c.beta2, t));
        pe -= lr * mh / (vh + c.eps);
    }
    ck_assert_int_eq(vt_optim_init(&o, &c, 1), VT_OK);
    p[0] = (float)p0;
    for (int t = 0; t < 2; t++) g[0] = (float)gs[t], vt_optim_step(&o, p, g, lr);
    ck_assert_msg(fabs(p[0] - pe) <= 1e-6 * fabs(pe), "adamw %.9g vs %.9g", p[0], pe);
    ck_assert(fabs(o.m[0] - m) <= 1e-6 * fabs(m) && fabs(o.v[0] - v) <= 1e-6 * v);
    vt_optim_free(&o);

    /* Adam, wd 0.2 coupled: g += wd*p */
    c.kind = VT_OPTIM_ADAM;
    m = 0, v = 0, pe = p0;
    for (int t = 1; t <= 2; t++) {
        double gt = gs[t - 1] + c.weight_decay * pe;
        m = c.beta1 * m + (1 - c.beta1) * gt;
        v = c.beta2 * v + (1 - c.beta2) * gt * gt;
        pe -= lr * (m / (1 - pow(c.beta1, t))) / (sqrt(v) / sqrt(1 - pow(c.beta2, t)) + c.eps);
    }
    ck_assert_int_eq(vt_optim_init(&o, &c, 1), VT_OK);
    p[0] = (float)p0;
    for (int t = 0; t < 2; t++) g[0] = (float)gs[t], vt_optim_step(&o, p, g, lr);
    ck_assert_msg(fabs(p[0] - pe) <= 1e-6 * fabs(pe), "adam %.9g vs %.9g", p[0], pe);
    vt_optim_free(&o);

    /* SGD, momentum 0.9, dampening 0.5, wd 0.2: the first step's buffer is the (decayed) gradient,
     * undampened; the second is buf*mom + (1-damp)*g */
    vt_optim_config_defaults(&c);
    c.kind = VT_OPTIM_SGD, c.momentum = 0.9, c.dampening = 0.5, c.weight_decay = 0.2;
    ck_assert_int_eq(vt_optim_init(&o, &c, 1), VT_OK);
    p[0] = (float)p0, g[0] = (float)g1;
    vt_optim_step(&o, p, g, lr);
    double b = g1 + 0.2 * p0;
    pe = p0 - lr * b;
    ck_assert(fabs(o.m[0] - b) <= 1e-7 && fabs(p[0] - pe) <= 1e-7);
    g[0] = (float)g2;
    double gt = g2 + 0.2 * pe;
    b = 0.9 * b + 0.5 * gt;
    pe -= lr * b;
    vt_optim_step(&o, p, g, lr);
    ck_assert_msg(fabs(p[0] - pe) <= 1e-6 * fabs(pe), "sgd %.9g vs %.9g", p[0], pe);
    vt_optim_free(&o);

    /* SGD Nesterov: p -= lr * (g + mom*buf) */
    c.dampening = 0, c.nesterov = true, c.weight_decay = 0;
    ck_assert_int_eq(vt_optim_init(&o, &c, 1), VT_OK);
    p[0] = (float)p0, g[0] = (float)g1;
    vt_optim_step(&o, p, g, lr);
    pe = p0 - lr * (g1 + 0.9 * g1);
    g[0] = (float)g2;
    vt_optim_step(&o, p, g, lr);
    pe -= lr * (g2 + 0.9 * (0.9 * g1 + g2));
    ck_assert_msg(fabs(p[0] - pe) <= 1e-6 * fabs(pe), "nesterov %.9g vs %.9g", p[0], pe);
    vt_optim_free(&o);

    /* plain SGD (no momentum) keeps no buffer values */
    c.momentum = 0, c.nesterov = false;
    ck_assert_int_eq(vt_optim_init(&o, &c, 1), VT_OK);
    p[0] = (float)p0, g[0] = (float)g1;
    vt_optim_step(&o, p, g, lr);
    ck_assert(fabs(p[0] - (p0 - lr * g1)) <= 1e-7 && o.m[0] == 0.0f);
    vt_optim_free(&o);
}
END_TEST

/* ------------------------------------------------------------ gradients */

START_TEST(clipping_and_finiteness)
{
    /* by hand: norm 5 clipped to 1 scales by 1 / (5 + 1e-6) */
    float g[5] = {3, 4, 0, 0, 0};
    double n = vt_clip_grad_norm(g, 5, 1.0);
    ck_assert(fabs(n - 5.0) < 1e-12);
    ck_assert(fabs(g[0] - 3.0 / (5.0 + 1e-6)) < 1e-7 && fabs(g[1] - 4.0 / (5.0 + 1e-6)) < 1e-7);
    ck_assert(g[2] == 0.0f);
    /* below the limit: returned, untouched; max_norm <= 0 only measures */
    float h[2] = {0.3f, 0.4f};
    n = vt_clip_grad_norm(h, 2, 1.0);
    ck_assert(fabs(n - 0.5) < 1e-7 && h[0] == 0.3f && h[1] == 0.4f);
    float k[2] = {30, 40};
    ck_assert(fabs(vt_clip_grad_norm(k, 2, 0) - 50.0) < 1e-12 && k[0] == 30.0f);
    ck_assert(vt_clip_grad_norm(k, 0, 1.0) == 0.0);
    /* the norm is how the trainer finds a non-finite gradient */
    ck_assert(isfinite(vt_grad_norm(h, 2)));
    h[1] = NAN;
    ck_assert(!isfinite(vt_grad_norm(h, 2)));
    h[1] = -INFINITY;
    ck_assert(!isfinite(vt_grad_norm(h, 2)));
    float huge[2] = {3e38f, -3e38f};   /* finite: squares summed in double do not overflow */
    ck_assert(isfinite(vt_grad_norm(huge, 2)));
    ck_assert(vt_clip_coef(5.0, 1.0) == (float)(1.0 / (5.0 + 1e-6)) && vt_clip_coef(0.5, 1.0) == 1.0f);
    ck_assert(vt_clip_coef(5.0, 0) == 1.0f);

    /* a long vector: the norm in double as a plain loop, clipped to 1, the same for any thread count */
    int64_t N = (1 << 20) + 7;
    float *big = malloc((size_t)N * sizeof(float)), *copy = malloc((size_t)N * sizeof(float));
    vt_rng r;
    vt_rng_seed(&r, 5);
    tu_fill_uniform(&r, big, N, -1, 1);
    big[N - 1] = NAN;
    ck_assert(!isfinite(vt_grad_norm(big, N)));
    big[N - 1] = 0.5f;
    ck_assert(isfinite(vt_grad_norm(big, N)));
    double ss = 0;
    for (int64_t i = 0; i < N; i++) ss += (double)big[i] * big[i];
    memcpy(copy, big, (size_t)N * sizeof(float));
    vt_set_threads(1);
    double a = vt_clip_grad_norm(big, N, 0);
    vt_set_threads(2);
    double b = vt_clip_grad_norm(big, N, 0);
    ck_assert(a == b);
    ck_assert_msg(fabs(a - sqrt(ss)) <= 1e-12 * sqrt(ss), "%.17g vs %.17g", a, sqrt(ss));
    double before = vt_clip_grad_norm(big, N, 1.0);
    ck_assert(before == a);
    float coef = (float)(1.0 / (a + 1e-6));
    for (int64_t i = 0; i < N; i += 9973) ck_assert(big[i] == copy[i] * coef);
    ck_assert(fabs(vt_clip_grad_norm(big, N, 0) - 1.0) < 1e-5);

    /* accumulation over k micro-batches: sum, then divide by k */
    float acc[3] = {0, 0, 0}, mb[3][3] = {{1, 2, 3}, {3, 2, 1}, {2, 2, 2}};
    for (int j = 0; j < 3; j++) vt_accumulate(acc, mb[j], 3);
    vt_grad_scale(acc, 3, 1.0f / 3);
    ck_assert(fabsf(acc[0] - 2) < 1e-6f && fabsf(acc[1] - 2) < 1e-6f && fabsf(acc[2] - 2) < 1e-6f);
    free(big);
    free(copy);
}
END_TEST

/* ------------------------------------------------------------ decay groups */

START_TEST(decay_groups_follow_timm)
{
    ck_assert(vt_optim_decays("blocks.0.attn.qkv.weight", 2, NULL, 0));
    ck_assert(!vt_optim_decays("blocks.0.attn.qkv.bias", 1, NULL, 0));
    ck_assert(!vt_optim_decays("pos_embed", 3, NULL, 0));
    ck_assert(!vt_optim_decays("cls_token", 3, NULL, 0));
    ck_assert(!vt_optim_decays("dist_token", 3, NULL, 0));
    ck_assert(!vt_optim_decays("module.pos_embed", 3, NULL, 0));
    ck_assert(!vt_optim_decays("norm.weight", 1, NULL, 0));
    ck_assert(!vt_optim_decays("blocks.3.norm2.bias", 1, NULL, 0));
    ck_assert(vt_optim_decays("patch_embed.proj.weight", 4, NULL, 0));
    ck_assert(vt_optim_decays("head.weight", 2, NULL, 0));
    ck_assert(vt_optim_decays("my_pos_embed_proj.weight", 2, NULL, 0));   /* a name containing it */
    const char *pats[] = {"head.*", "*.fc2.*", ""};
    ck_assert(!vt_optim_decays("head.weight", 2, pats, 3));
    ck_assert(!vt_optim_decays("blocks.11.mlp.fc2.weight", 2, pats, 3));
    ck_assert(vt_optim_decays("blocks.1.mlp.fc1.weight", 2, pats, 3));
    ck_assert(vt_glob_match("*", "") && vt_glob_match("a*b*c", "aXbYc") && !vt_glob_match("a*b", "aXbY"));
    ck_assert(vt_glob_match("blocks.*.attn.*", "blocks.0.attn.qkv.weight") && !vt_glob_match("blocks.*", "block"));

    /* AdamW decays only the decayed segment; elements outside every segment are frozen */
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    c.weight_decay = 0.5;
    vt_optim o;
    ck_assert_int_eq(vt_optim_init(&o, &c, 5), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 2, 2, false), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 0, 2, true), VT_OK);
    ck_assert_int_eq(vt_optim_add_segment(&o, 3, 2, false), VT_ERR);   /* overlaps [2, 4) */
    ck_assert_msg(strstr(vt_errmsg(), "[3, 5)") && strstr(vt_errmsg(), "overlaps"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_optim_add_segment(&o, 4, 2, false), VT_ERR);   /* past the end */
    ck_assert_msg(strstr(vt_errmsg(), "outside"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_optim_add_segment(&o, -1, 1, false), VT_ERR);
    float p[5] = {1, 1, 1, 1, 1}, g[5] = {0, 0, 0, 0, 1};
    vt_optim_step(&o, p, g, 0.1);
    ck_assert(fabsf(p[0] - 0.95f) < 1e-7f && fabsf(p[1] - 0.95f) < 1e-7f);
    ck_assert(p[2] == 1.0f && p[3] == 1.0f);
    ck_assert(p[4] == 1.0f && o.m[4] == 0.0f && o.v[4] == 0.0f);   /* frozen */
    vt_optim_free(&o);
    /* no segment registered: everything is one decayed group */
    ck_assert_int_eq(vt_optim_init(&o, &c, 2), VT_OK);
    float q[2] = {1, 1}, z[2] = {0, 0};
    vt_optim_step(&o, q, z, 0.1);
    ck_assert(fabsf(q[0] - 0.95f) < 1e-7f && fabsf(q[1] - 0.95f) < 1e-7f);
    vt_optim_free(&o);
}
END_TEST

/* ------------------------------------------------------------ validation */

/* the config is refused and the message names the setting and its value */
static void refused(const vt_optim_config *c, const char *setting, const char *value)
{
    ck_assert_int_eq(vt_optim_config_check(c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), setting) && strstr(vt_errmsg(), value), "message: %s", vt_errmsg());
    vt_optim o;
    ck_assert_int_eq(vt_optim_init(&o, c, 3), VT_ERR);
    ck_assert(o.m == NULL && o.v == NULL);
    vt_optim_free(&o);
}

static void sched_refused(const vt_schedule *s, const char *setting, const char *value)
{
    ck_assert_int_eq(vt_schedule_check(s), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), setting) && strstr(vt_errmsg(), value), "message: %s", vt_errmsg());
}

/* layer-wise learning-rate decay: BEiT / MAE's layer ids and scales, and a scaled group steps as a group of
 * lr * scale does (SGD without momentum: p - lr s g; AdamW: its own lr * scale, decay included) */
START_TEST(layer_decay_scales_groups)
{
    const double d = 0.75;
    const struct { const char *name; double want; } cases[] = {
        {"cls_token", 0.75 * 0.75 * 0.75 * 0.75}, {"pos_embed", 0.75 * 0.75 * 0.75 * 0.75},
        {"patch_embed.proj.weight", 0.75 * 0.75 * 0.75 * 0.75}, {"blocks.0.attn.qkv.weight", 0.75 * 0.75 * 0.75},
        {"blocks.1.norm1.bias", 0.75 * 0.75}, {"blocks.2.mlp.fc2.weight", 0.75}, {"norm.weight", 1},
        {"fc_norm.bias", 1}, {"head.weight", 1}, {"decoder_blocks.0.norm1.weight", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(fabs(vt_layer_decay_scale(cases[i].name, 3, d) - cases[i].want) < 1e-15, "%s: %g, expected %g",
                      cases[i].name, vt_layer_decay_scale(cases[i].name, 3, d), cases[i].want);
    ck_assert_double_eq(vt_layer_decay_scale("blocks.0.attn.qkv.weight", 3, 1.0), 1.0);
    for (int kind = 0; kind < 2; kind++) {
        vt_optim_config c;
        vt_optim_config_defaults(&c);
        c.kind = kind ? VT_OPTIM_ADAMW : VT_OPTIM_SGD;
        c.momentum = 0;
        c.weight_decay = 0.1;
        vt_optim o, r1, r2;   /* r1, r2: each group as an optimizer of its own, at its learning rate */
        ck_assert_int_eq(vt_optim_init(&o, &c, 6), VT_OK);
        ck_assert_int_eq(vt_optim_init(&r1, &c, 3), VT_OK);
        ck_assert_int_eq(vt_optim_init(&r2, &c, 3), VT_OK);
        ck_assert_int_eq(vt_optim_add_segment_scaled(&o, 0, 3, true, 0.25), VT_OK);
        ck_assert_int_eq(vt_optim_add_segment_scaled(&o, 3, 3, false, 1.0), VT_OK);
        ck_assert_int_eq(vt_optim_add_segment_scaled(&o, 6, 0, false, 0.0), VT_ERR);
        ck_assert_int_eq(vt_optim_add_segment(&r2, 0, 3, false), VT_OK);
        float p[6] = {1, -2, 0.5f, 3, -1, 2}, g[6] = {0.5f, 0.25f, -1, 2, 1, -0.5f}, q[6], s1[3], s2[3];
        memcpy(q, p, sizeof p);
        memcpy(s1, p, sizeof s1);
        memcpy(s2, p + 3, sizeof s2);
        for (int step = 0; step < 3; step++) {
            vt_optim_step(&o, p, g, 0.1);
            vt_optim_step(&r1, s1, g, 0.1 * 0.25);
            vt_optim_step(&r2, s2, g + 3, 0.1);
            for (int i = 0; i < 6 && kind == 0; i++) {   /* SGD by hand: p - lr s (g + wd p), p - lr g */
                const float lr = i < 3 ? (float)(0.1 * 0.25) : 0.1f, wd = i < 3 ? 0.1f : 0.0f;
                q[i] += -lr * (g[i] + wd * q[i]);
            }
        }
        for (int i = 0; i < 6; i++) {
            const float want = i < 3 ? s1[i] : s2[i - 3];
            ck_assert_msg(p[i] == want, "%s element %d: %.9g, its group alone %.9g", kind ? "AdamW" : "SGD", i, p[i], want);
            if (kind == 0) ck_assert_msg(p[i] == q[i], "SGD element %d: %.9g, by hand %.9g", i, p[i], q[i]);
        }
        ck_assert_msg(p[0] != 1.0f - 0.1f * (0.5f + 0.1f), "the scale had no effect");
        vt_optim_free(&o);
        vt_optim_free(&r1);
        vt_optim_free(&r2);
    }
}
END_TEST

START_TEST(bad_settings_refused)
{
    vt_optim_config c, d;
    vt_optim_config_defaults(&d);
    ck_assert_int_eq(vt_optim_config_check(&d), VT_OK);
    c = d, c.lr = -1;
    refused(&c, "learning rate", "-1");
    c = d, c.lr = NAN;
    refused(&c, "learning rate", "nan");
    c = d, c.beta1 = -0.1;
    refused(&c, "beta1", "-0.1");
    c = d, c.beta1 = 1.0;
    refused(&c, "beta1", "1");
    c = d, c.beta2 = 1.0;
    refused(&c, "beta2", "1");
    c = d, c.beta2 = 1.5, c.kind = VT_OPTIM_ADAM;
    refused(&c, "beta2", "1.5");
    c = d, c.eps = -1e-8;
    refused(&c, "eps", "-1e-08");
    c = d, c.weight_decay = -0.05;
    refused(&c, "weight_decay", "-0.05");
    c = d, c.kind = VT_OPTIM_SGD, c.momentum = -0.9;
    refused(&c, "momentum", "-0.9");
    c = d, c.kind = VT_OPTIM_SGD, c.nesterov = true;
    refused(&c, "Nesterov", "momentum 0");
    c = d, c.kind = VT_OPTIM_SGD, c.nesterov = true, c.momentum = 0.9, c.dampening = 0.1;
    refused(&c, "Nesterov", "dampening 0.1");
    c = d, c.kind = (vt_optim_kind)7;
    refused(&c, "kind", "7");
    c = d, c.kind = VT_OPTIM_SGD, c.nesterov = true, c.momentum = 0.9;
    ck_assert_int_eq(vt_optim_config_check(&c), VT_OK);

    vt_optim_kind k;
    ck_assert_int_eq(vt_optim_kind_parse("adamw", &k), VT_OK);
    ck_assert_int_eq(k, VT_OPTIM_ADAMW);
    ck_assert_int_eq(vt_optim_kind_parse("lamb", &k), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "lamb") != NULL);
    vt_sched_kind sk;
    ck_assert_int_eq(vt_sched_kind_parse("step", &sk), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "step") != NULL);

    vt_schedule s0 = {VT_SCHED_COSINE, 1e-3, 1e-6, 1e-5, 10, 90}, s;
    ck_assert_int_eq(vt_schedule_check(&s0), VT_OK);
    s = s0, s.total_steps = 0;   /* the warmup takes the whole run */
    sched_refused(&s, "warmup", "10");
    s = s0, s.total_steps = -5;  /* the warmup is longer than the run */
    sched_refused(&s, "warmup", "10");
    s = s0, s.base_lr = -1e-3;
    sched_refused(&s, "base learning rate", "-0.001");
    s = s0, s.lr_min = -1;
    sched_refused(&s, "lr_min", "-1");
    s = s0, s.warmup_lr_init = -1;
    sched_refused(&s, "warmup_lr_init", "-1");
    s = s0, s.warmup_steps = -3;
    sched_refused(&s, "warmup_steps", "-3");
}
END_TEST

/* ------------------------------------------------------------ state */

static vt_h5id temp_h5(char *path)
{
    strcpy(path, "/tmp/vit_optim_XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    vt_h5id f = vt_h5_create(path);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    return f;
}

/* save after 3 steps, load into a fresh optimizer: moments and step identical to the byte, and the
 * next steps of both runs identical to the byte */
static void round_trip(const vt_optim_config *c)
{
    enum { N = 1000 };
    vt_optim a, b;
    ck_assert_int_eq(vt_optim_init(&a, c, N), VT_OK);
    ck_assert_int_eq(vt_optim_init(&b, c, N), VT_OK);
    float *p = malloc(N * sizeof(float)), *q = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    vt_rng r;
    vt_rng_seed(&r, 2);
    tu_fill_uniform(&r, p, N, -1, 1);
    for (int t = 0; t < 3; t++) tu_fill_uniform(&r, g, N, -1, 1), vt_optim_step(&a, p, g, 1e-2);
    char path[64];
    vt_h5id f = temp_h5(path);
    ck_assert_msg(vt_optim_save(&a, f, "/optimizer") == VT_OK, "%s", vt_errmsg());
    vt_h5_close(f);
    f = vt_h5_open(path, false);
    ck_assert_msg(vt_optim_load(&b, f, "/optimizer") == VT_OK, "%s", vt_errmsg());
    vt_h5_close(f);
    remove(path);
    ck_assert_int_eq(b.step, 3);
    ck_assert_int_eq(memcmp(a.m, b.m, N * sizeof(float)), 0);
    ck_assert(a.v ? memcmp(a.v, b.v, N * sizeof(float)) == 0 : b.v == NULL);
    memcpy(q, p, N * sizeof(float));
    for (int t = 0; t < 2; t++) {
        tu_fill_uniform(&r, g, N, -1, 1);
        vt_optim_step(&a, p, g, 1e-2);
        vt_optim_step(&b, q, g, 1e-2);
    }
    ck_assert_int_eq(memcmp(p, q, N * sizeof(float)), 0);
    vt_optim_free(&a);
    vt_optim_free(&b);
    free(p);
    free(q);
    free(g);
}

START_TEST(state_round_trip)
{
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    round_trip(&c);
    c.kind = VT_OPTIM_ADAM;
    round_trip(&c);
    c.kind = VT_OPTIM_SGD, c.momentum = 0.9, c.nesterov = true;
    round_trip(&c);
}
END_TEST

/* the step over many segments (any order, gaps frozen, decayed or not) in one parallel region, with the
 * clipping factor folded in, gives to the byte what clipping the gradients and then stepping each
 * segment on its own gives, with 1 or 2 threads */
static void fused_step(const vt_optim_config *c)
{
    enum { N = 70000, S = 9 };
    const int64_t off[S] = {40000, 0, 100, 7000, 20000, 20017, 36000, 60000, 69990};
    const int64_t len[S] = {19000, 90, 6800, 12000, 17, 15000, 3000, 9000, 10};
    float *p0 = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float)), *gc = malloc(N * sizeof(float));
    float *want = malloc(N * sizeof(float)), *got = malloc(N * sizeof(float));
    vt_rng r;
    vt_rng_seed(&r, 9);
    tu_fill_uniform(&r, p0, N, -1, 1);
    vt_optim ref[S], o;
    for (int s = 0; s < S; s++) {
        ck_assert_int_eq(vt_optim_init(&ref[s], c, len[s]), VT_OK);
        ck_assert_int_eq(vt_optim_add_segment(&ref[s], 0, len[s], s % 3 != 1), VT_OK);
    }
    memcpy(want, p0, N * sizeof(float));
    for (int threads = 1; threads <= 2; threads++) {
        vt_set_threads(threads);
        ck_assert_int_eq(vt_optim_init(&o, c, N), VT_OK);
        for (int s = 0; s < S; s++) ck_assert_int_eq(vt_optim_add_segment(&o, off[s], len[s], s % 3 != 1), VT_OK);
        memcpy(got, p0, N * sizeof(float));
        vt_rng_seed(&r, 10);
        for (int t = 0; t < 3; t++) {
            tu_fill_uniform(&r, g, N, -3, 3);
            memcpy(gc, g, N * sizeof(float));
            float coef = vt_clip_coef(vt_grad_norm(g, N), t == 1 ? 1e6 : 10.0);   /* clipped, not, clipped */
            vt_optim_step_scaled(&o, got, g, 0.05, coef);
            if (threads == 2) continue;   /* the reference is stepped once */
            vt_clip_grad_norm(gc, N, t == 1 ? 1e6 : 10.0);
            for (int s = 0; s < S; s++) {
                vt_optim one = ref[s];
                vt_optim_step(&one, want + off[s], gc + off[s], 0.05);
                ref[s] = one;
            }
        }
        ck_assert_msg(memcmp(got, want, N * sizeof(float)) == 0, "%s, %d threads: differs", vt_optim_kind_name(c->kind), threads);
        vt_optim_free(&o);
    }
    for (int s = 0; s < S; s++) vt_optim_free(&ref[s]);
    free(p0), free(g), free(gc), free(want), free(got);
}

START_TEST(fused_step_matches_separate_steps)
{
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    c.weight_decay = 0.1;
    fused_step(&c);
    c.kind = VT_OPTIM_ADAM;
    fused_step(&c);
    c.kind = VT_OPTIM_SGD, c.momentum = 0.9;
    fused_step(&c);
}
END_TEST

START_TEST(state_mismatch_refused)
{
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    vt_optim a, b;
    ck_assert_int_eq(vt_optim_init(&a, &c, 100), VT_OK);
    float p[100] = {0}, g[100];
    for (int i = 0; i < 100; i++) g[i] = (float)i - 50;
    vt_optim_step(&a, p, g, 1e-2);
    char path[64];
    vt_h5id f = temp_h5(path);
    ck_assert_int_eq(vt_optim_save(&a, f, "/optimizer"), VT_OK);
    vt_h5_close(f);
    f = vt_h5_open(path, true);

    /* another length: refused, naming file, group and both lengths, and b is untouched */
    ck_assert_int_eq(vt_optim_init(&b, &c, 99), VT_OK);
    b.m[0] = 7.0f;
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "/optimizer") && strstr(vt_errmsg(), "100") &&
                      strstr(vt_errmsg(), "99"),
                  "%s", vt_errmsg());
    ck_assert(b.m[0] == 7.0f && b.step == 0);
    /* the attribute agrees but a dataset does not: refused naming the dataset, nothing overwritten */
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/optimizer", "numel", 99), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "/optimizer/exp_avg") && strstr(vt_errmsg(), "99"),
                  "%s", vt_errmsg());
    ck_assert(b.m[0] == 7.0f && b.step == 0);
    vt_optim_free(&b);
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/optimizer", "numel", 100), VT_OK);

    /* another kind: refused, naming both */
    c.kind = VT_OPTIM_SGD;
    c.momentum = 0.9;
    ck_assert_int_eq(vt_optim_init(&b, &c, 100), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "adamw") && strstr(vt_errmsg(), "sgd"), "%s", vt_errmsg());
    vt_optim_free(&b);

    /* a missing group or dataset: refused with a message, not a crash */
    c.kind = VT_OPTIM_ADAMW;
    ck_assert_int_eq(vt_optim_init(&b, &c, 100), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/nothing"), VT_ERR);
    ck_assert(vt_errmsg()[0] != '\0');
    vt_h5_close(f);
    f = vt_h5_create(path);
    ck_assert_int_eq(vt_h5_mkgroup(f, "/optimizer"), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_str(f, "/optimizer", "kind", "adamw"), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/optimizer", "step", 1), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/optimizer", "numel", 100), VT_OK);
    ck_assert_int_eq(vt_h5_write_f32(f, "/optimizer/exp_avg", a.m, 1, (int64_t[]){100}, 0), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "exp_avg_sq"), "%s", vt_errmsg());
    ck_assert(b.step == 0 && b.m[1] == 0.0f);
    vt_optim_free(&b);
    vt_h5_close(f);
    remove(path);
    vt_optim_free(&a);
}
END_TEST

/* moments that are not finite, or a negative exp_avg_sq, would turn the next update into NaN: the load
 * refuses them naming file, dataset and element, and leaves o as it was */
START_TEST(state_bad_values_refused)
{
    vt_optim_config c;
    vt_optim_config_defaults(&c);
    vt_optim a, b;
    ck_assert_int_eq(vt_optim_init(&a, &c, 50), VT_OK);
    float p[50] = {0}, g[50];
    for (int i = 0; i < 50; i++) g[i] = (float)i - 25;
    vt_optim_step(&a, p, g, 1e-2);
    const struct { int which; int at; float v; const char *want; } cases[] = {
        {0, 3, NAN, "/optimizer/exp_avg holds nan at element 3 of 50"},
        {0, 49, INFINITY, "/optimizer/exp_avg holds inf at element 49 of 50"},
        {1, 7, -INFINITY, "/optimizer/exp_avg_sq holds -inf at element 7 of 50"},
        {1, 0, -1e-3f, "/optimizer/exp_avg_sq holds -0.001 at element 0 of 50"},
        {1, 11, NAN, "/optimizer/exp_avg_sq holds nan at element 11 of 50"},
    };
    char path[64];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float *x = cases[k].which ? a.v : a.m, keep = x[cases[k].at];
        x[cases[k].at] = cases[k].v;
        vt_h5id f = temp_h5(path);
        ck_assert_int_eq(vt_optim_save(&a, f, "/optimizer"), VT_OK);
        vt_h5_close(f);
        x[cases[k].at] = keep;
        f = vt_h5_open(path, false);
        ck_assert_int_eq(vt_optim_init(&b, &c, 50), VT_OK);
        b.m[0] = 7.0f, b.v[0] = 8.0f;
        ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), cases[k].want), "%s", vt_errmsg());
        ck_assert(b.m[0] == 7.0f && b.v[0] == 8.0f && b.step == 0);
        vt_optim_free(&b);
        vt_h5_close(f);
        remove(path);
    }
    /* SGD's momentum buffer: finite, any sign */
    c.kind = VT_OPTIM_SGD, c.momentum = 0.9;
    vt_optim s;
    ck_assert_int_eq(vt_optim_init(&s, &c, 50), VT_OK);
    vt_optim_step(&s, p, g, 1e-2);
    ck_assert(s.m[0] < 0);
    vt_h5id f = temp_h5(path);
    ck_assert_int_eq(vt_optim_save(&s, f, "/optimizer"), VT_OK);
    vt_h5_close(f);
    f = vt_h5_open(path, false);
    ck_assert_int_eq(vt_optim_init(&b, &c, 50), VT_OK);
    ck_assert_msg(vt_optim_load(&b, f, "/optimizer") == VT_OK, "%s", vt_errmsg());
    ck_assert(b.m[0] == s.m[0] && b.step == 1);
    vt_optim_free(&b);
    vt_h5_close(f);
    s.m[5] = NAN;
    f = temp_h5(path);
    ck_assert_int_eq(vt_optim_save(&s, f, "/optimizer"), VT_OK);
    vt_h5_close(f);
    f = vt_h5_open(path, false);
    ck_assert_int_eq(vt_optim_init(&b, &c, 50), VT_OK);
    ck_assert_int_eq(vt_optim_load(&b, f, "/optimizer"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "/optimizer/momentum_buffer holds nan at element 5 of 50"), "%s", vt_errmsg());
    vt_optim_free(&b);
    vt_h5_close(f);
    remove(path);
    vt_optim_free(&s);
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
    tcase_add_test(tc, updates_by_hand);
    tcase_add_test(tc, clipping_and_finiteness);
    tcase_add_test(tc, decay_groups_follow_timm);
    tcase_add_test(tc, layer_decay_scales_groups);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, state_round_trip);
    tcase_add_test(tc, fused_step_matches_separate_steps);
    tcase_add_test(tc, state_mismatch_refused);
    tcase_add_test(tc, state_bad_values_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
