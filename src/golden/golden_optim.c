/* golden_optim.c - optimizer trajectories, the warmup + cosine schedule and whole training steps
 * against torch's. */
#include "golden_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* optimizer hyper-parameters from a group's attributes (torch names) */
static int read_optim_config(vt_h5id f, const char *g, const char *kind, vt_optim_config *oc)
{
    vt_optim_config_defaults(oc);
    char betas[64];
    if (vt_optim_kind_parse(kind, &oc->kind) != VT_OK) return VT_ERR;
    if (vt_h5_has_attr(f, g, "lr") && vt_h5_attr_f64(f, g, "lr", &oc->lr)) return VT_ERR;
    if (vt_h5_has_attr(f, g, "weight_decay") && vt_h5_attr_f64(f, g, "weight_decay", &oc->weight_decay)) return VT_ERR;
    if (oc->kind == VT_OPTIM_SGD) {
        oc->momentum = 0;
        if (vt_h5_has_attr(f, g, "momentum") && vt_h5_attr_f64(f, g, "momentum", &oc->momentum)) return VT_ERR;
        if (vt_h5_has_attr(f, g, "dampening") && vt_h5_attr_f64(f, g, "dampening", &oc->dampening)) return VT_ERR;
        if (vt_h5_has_attr(f, g, "nesterov") && vt_h5_attr_bool(f, g, "nesterov", &oc->nesterov)) return VT_ERR;
    } else {
        if (vt_h5_has_attr(f, g, "betas")) {
            if (vt_h5_attr_str(f, g, "betas", betas, sizeof betas) != VT_OK) return VT_ERR;
            if (sscanf(betas, "%lf,%lf", &oc->beta1, &oc->beta2) != 2)
                return vt_err("%s: betas '%s' is not 'b1,b2'", g, betas);
        }
        if (vt_h5_has_attr(f, g, "eps") && vt_h5_attr_f64(f, g, "eps", &oc->eps)) return VT_ERR;
    }
    return vt_optim_config_check(oc);
}

/* ---- optim/<name>: params0 (P), grads (T, P), params (T, P) after each step */
int golden_check_optim(ctx_t *c, const char *g)
{
    char kind[32], path[512];
    if (vt_h5_attr_str(c->f, g, "torch_optimizer", kind, sizeof kind) != VT_OK) return VT_ERR;
    for (char *k = kind; *k; k++) *k = (char)(*k >= 'A' && *k <= 'Z' ? *k - 'A' + 'a' : *k);
    vt_optim_config oc;
    if (read_optim_config(c->f, g, kind, &oc) != VT_OK) return VT_ERR;
    float *p = NULL, *grads = NULL;
    double *ref = NULL;
    int nd;
    int64_t sh[8], shg[8];
    int rc = VT_ERR;
    vt_optim o;
    bool have = false;
    snprintf(path, sizeof path, "%s/params0", g);
    if (vt_h5_read_f32(c->f, path, &p, &nd, sh) != VT_OK) goto out;
    snprintf(path, sizeof path, "%s/grads", g);
    if (vt_h5_read_f32(c->f, path, &grads, &nd, shg) != VT_OK) goto out;
    const int64_t P = sh[0], T = shg[0];
    snprintf(path, sizeof path, "%s/params", g);
    if (golden_read_ref(c, path, &ref, T * P) != VT_OK) goto out;
    if (vt_optim_init(&o, &oc, P) != VT_OK) goto out;
    have = true;
    fprintf(c->out, "%s: %s, %lld steps of %lld parameters\n", g, kind, (long long)T, (long long)P);
    c->res->cases++;
    for (int64_t t = 0; t < T; t++) {
        vt_optim_step(&o, p, grads + t * P, oc.lr);
        char what[64];
        snprintf(what, sizeof what, "params after step %lld", (long long)t + 1);
        /* 1e-6 relative to the parameter vector's largest magnitude */
        golden_compare(c, what, p, ref + t * P, P, 1e-6, 0);
    }
    rc = VT_OK;
out:
    if (have) vt_optim_free(&o);
    free(p);
    free(grads);
    free(ref);
    return rc;
}

/* ---- schedule groups: lrs[t] for t = 0 .. W+T-1 */
int golden_check_schedule(ctx_t *c, const char *g)
{
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    if (vt_h5_attr_f64(c->f, g, "base_lr", &s.base_lr) || vt_h5_attr_f64(c->f, g, "lr_min", &s.lr_min) ||
        vt_h5_attr_f64(c->f, g, "warmup_lr_init", &s.warmup_lr_init) ||
        vt_h5_attr_i64(c->f, g, "warmup_steps", &s.warmup_steps) || vt_h5_attr_i64(c->f, g, "total_steps", &s.total_steps))
        return VT_ERR;
    char path[512];
    snprintf(path, sizeof path, "%s/lrs", g);
    double *lrs;
    int nd;
    int64_t sh[8];
    if (vt_h5_read_f64(c->f, path, &lrs, &nd, sh) != VT_OK) return VT_ERR;
    double worst = 0;
    for (int64_t t = 0; t < sh[0]; t++) worst = fmax(worst, fabs(vt_lr_at(&s, t) - lrs[t]) / fmax(fabs(lrs[t]), 1e-300));
    free(lrs);
    bool ok = worst <= 1e-9;
    c->res->cases++;
    c->res->checked++;
    if (!ok) c->res->failed++;
    fprintf(c->out, "%s: warmup %lld + cosine %lld steps\n", g, (long long)s.warmup_steps, (long long)s.total_steps);
    if (!ok || c->opts->verbose)
        fprintf(c->out, "  %-34s worst relative %.3e (tolerance 1e-9)  %s\n", "lrs", worst, ok ? "ok" : "FAIL");
    return VT_OK;
}

/* ---- train_steps groups: whole training steps (label-smoothed loss, backward, clip, LR, decay groups, step) */
int golden_check_train_steps(ctx_t *c, const char *g)
{
    vt_vit_config mc;
    char kind[32], path[512];
    double smoothing = 0, clip = 0;
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    if (golden_read_model_config(c->f, g, &mc) != VT_OK || vt_h5_attr_str(c->f, g, "optimizer", kind, sizeof kind) ||
        vt_h5_attr_f64(c->f, g, "label_smoothing", &smoothing) || vt_h5_attr_f64(c->f, g, "clip_grad_norm", &clip) ||
        vt_h5_attr_f64(c->f, g, "base_lr", &s.base_lr) || vt_h5_attr_f64(c->f, g, "lr_min", &s.lr_min) ||
        vt_h5_attr_f64(c->f, g, "warmup_lr_init", &s.warmup_lr_init) ||
        vt_h5_attr_i64(c->f, g, "warmup_steps", &s.warmup_steps) || vt_h5_attr_i64(c->f, g, "total_steps", &s.total_steps))
        return VT_ERR;
    vt_optim_config oc;
    if (read_optim_config(c->f, g, kind, &oc) != VT_OK) return VT_ERR;
    vt_vit m;
    if (vt_vit_init(&m, &mc) != VT_OK) return VT_ERR;
    vt_optim o;
    vt_graph gr;
    bool have_o = false, have_g = false;
    float *inputs = NULL;
    int64_t *labels64 = NULL;
    int *labels = NULL;
    double *ref_loss = NULL, *ref_norm = NULL, *ref = NULL;
    int rc = VT_ERR, nd;
    int64_t sh[8];
    snprintf(path, sizeof path, "%s/params_initial", g);
    if (vt_vit_load_h5(&m, c->f, path) != VT_OK) goto out;
    if (vt_optim_init(&o, &oc, m.params.numel) != VT_OK) goto out;
    have_o = true;
    for (int i = 0; i < m.params.count; i++)
        vt_optim_add_segment(&o, m.params.info[i].offset, m.params.info[i].numel,
                             vt_optim_decays(m.params.info[i].name, m.params.info[i].ndim, NULL, 0));
    snprintf(path, sizeof path, "%s/inputs", g);
    if (vt_h5_read_f32(c->f, path, &inputs, &nd, sh) != VT_OK) goto out;
    if (nd != 5) {
        vt_err("%s: expected (steps, B, C, H, W)", path);
        goto out;
    }
    const int64_t T = sh[0], B = sh[1], per = sh[2] * sh[3] * sh[4];
    snprintf(path, sizeof path, "%s/labels", g);
    if (vt_h5_read_i64(c->f, path, &labels64, NULL, NULL) != VT_OK) goto out;
    labels = malloc(sizeof(int) * (size_t)(T * B));
    if (!labels) goto out;
    for (int64_t i = 0; i < T * B; i++) labels[i] = (int)labels64[i];
    snprintf(path, sizeof path, "%s/losses", g);
    if (golden_read_ref(c, path, &ref_loss, T) != VT_OK) goto out;
    snprintf(path, sizeof path, "%s/grad_norms_before_clip", g);
    if (golden_read_ref(c, path, &ref_norm, T) != VT_OK) goto out;
    if (vt_graph_init(&gr, 1 << 22) != VT_OK) goto out;
    have_g = true;
    fprintf(c->out, "%s: %lld steps of %s (batch %lld, clip %g, smoothing %g, warmup %lld)\n", g, (long long)T, kind,
            (long long)B, clip, smoothing, (long long)s.warmup_steps);
    c->res->cases++;
    float *losses = malloc(sizeof(float) * (size_t)T), *norms = malloc(sizeof(float) * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        vt_graph_reset(&gr);
        vt_paramset_zero_grad(&m.params);
        vt_var *x = vt_var_wrap(&gr, inputs + t * B * per, 4, (int64_t[]){B, sh[2], sh[3], sh[4]}, "inputs");
        vt_var *logits = x ? vt_vit_forward(&m, &gr, x, NULL) : NULL;
        vt_var *loss = logits ? vt_cross_entropy(&gr, logits, labels + t * B, (float)smoothing) : NULL;
        if (!loss || vt_backward(&gr, loss) != VT_OK) {
            free(losses);
            free(norms);
            goto out;
        }
        losses[t] = loss->val.data[0];
        norms[t] = (float)vt_clip_grad_norm(m.params.grad, m.params.numel, clip);
        vt_optim_step(&o, m.params.data, m.params.grad, vt_lr_at(&s, t));
    }
    golden_compare(c, "losses", losses, ref_loss, T, 0, 1e-5);
    /* grad norms: 1e-5 relative, element by element */
    for (int64_t t = 0; t < T; t++) {
        double r = ref_norm[t], d = fabs(norms[t] - r) / fabs(r);
        c->res->checked++;
        if (!(d <= 1e-5)) {
            c->res->failed++;
            fprintf(c->out, "  grad norm before clip, step %lld: %.8g vs %.8g (relative %.2e)  FAIL\n", (long long)t,
                    norms[t], r, d);
        } else if (c->opts->verbose) {
            fprintf(c->out, "  %-34s relative %.3e (tolerance 1e-5)  ok\n", "grad_norm_before_clip", d);
        }
    }
    free(losses);
    free(norms);
    if (golden_compare_params(c, g, "params_final", &m, m.params.data, NULL) != VT_OK) goto out;
    rc = VT_OK;
out:
    if (have_g) vt_graph_free(&gr);
    if (have_o) vt_optim_free(&o);
    vt_vit_free(&m);
    free(inputs);
    free(labels64);
    free(labels);
    free(ref_loss);
    free(ref_norm);
    free(ref);
    return rc;
}

