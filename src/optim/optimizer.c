/* optimizer.c - SGD (momentum, dampening, Nesterov), Adam, AdamW with torch's single-tensor
 * semantics over flat buffers; weight-decay segments; state to and from HDF5. */
#include "optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[] = {"sgd", "adam", "adamw"};

const char *vt_optim_kind_name(vt_optim_kind k) { return (k >= 0 && k <= 2) ? kind_names[k] : "?"; }

int vt_optim_kind_parse(const char *name, vt_optim_kind *k)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, kind_names[i]) == 0) return *k = (vt_optim_kind)i, VT_OK;
    return vt_err("unknown optimizer '%s' (sgd, adam, adamw)", name);
}

void vt_optim_config_defaults(vt_optim_config *c)
{
    memset(c, 0, sizeof *c);
    c->kind = VT_OPTIM_ADAMW;
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.01;
}

int vt_optim_config_check(const vt_optim_config *c)
{
    if (c->kind < VT_OPTIM_SGD || c->kind > VT_OPTIM_ADAMW) return vt_err("optimizer: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0)) return vt_err("optimizer: learning rate %g must not be negative", c->lr);
    if (!(c->weight_decay >= 0)) return vt_err("optimizer: weight_decay %g must not be negative", c->weight_decay);
    if (c->kind != VT_OPTIM_SGD) {
        if (!(c->beta1 >= 0 && c->beta1 < 1)) return vt_err("optimizer: beta1 %g outside [0, 1)", c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1)) return vt_err("optimizer: beta2 %g outside [0, 1)", c->beta2);
        if (!(c->eps >= 0)) return vt_err("optimizer: eps %g must not be negative", c->eps);
    } else {
        if (!(c->momentum >= 0)) return vt_err("optimizer: momentum %g must not be negative", c->momentum);
        if (!(c->dampening >= 0 && c->dampening <= 1)) return vt_err("optimizer: dampening %g outside [0, 1]", c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return vt_err("optimizer: Nesterov momentum needs momentum > 0 and zero dampening (momentum %g, dampening %g)",
                          c->momentum, c->dampening);
    }
    return VT_OK;
}

int vt_optim_init(vt_optim *o, const vt_optim_config *c, int64_t n)
{
    memset(o, 0, sizeof *o);
    if (vt_optim_config_check(c) != VT_OK) return VT_ERR;
    if (n < 0) return vt_err("optimizer: %lld parameters", (long long)n);
    o->cfg = *c;
    o->n = n;
    size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    o->m = calloc(1, bytes);
    o->v = c->kind == VT_OPTIM_SGD ? NULL : calloc(1, bytes);
    if (!o->m || (c->kind != VT_OPTIM_SGD && !o->v)) {
        vt_optim_free(o);
        return vt_err("optimizer: out of memory for %lld parameters", (long long)n);
    }
    return VT_OK;
}

void vt_optim_free(vt_optim *o)
{
    free(o->m);
    free(o->v);
    free(o->seg);
    memset(o, 0, sizeof *o);
}

int vt_optim_add_segment(vt_optim *o, int64_t offset, int64_t len, bool decay)
{
    if (offset < 0 || len < 0 || offset + len > o->n)
        return vt_err("optimizer: segment [%lld, %lld) outside %lld parameters", (long long)offset,
                      (long long)(offset + len), (long long)o->n);
    if (o->nseg == o->capseg) {
        int cap = o->capseg ? 2 * o->capseg : 64;
        vt_optim_segment *s = realloc(o->seg, (size_t)cap * sizeof *s);
        if (!s) return vt_err("optimizer: out of memory");
        o->seg = s;
        o->capseg = cap;
    }
    o->seg[o->nseg++] = (vt_optim_segment){offset, len, decay};
    return VT_OK;
}

/* Adam / AdamW on [lo, hi): torch's _single_tensor_adam (float32 math as torch does on float32) */
static void adam_range(vt_optim *o, float *p, const float *g, int64_t lo, int64_t hi, double lr, bool decay)
{
    const vt_optim_config *c = &o->cfg;
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    const double bc1 = 1.0 - pow(c->beta1, (double)o->step), bc2 = 1.0 - pow(c->beta2, (double)o->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float wd = decay ? (float)c->weight_decay : 0.0f;
    const bool decoupled = c->kind == VT_OPTIM_ADAMW;
    const float keep = (float)(1.0 - lr * (decay ? c->weight_decay : 0.0));
    float *m = o->m, *v = o->v;
    #pragma omp parallel for schedule(static) if (hi - lo > 16384)
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (decoupled) p[i] *= keep;
        else if (wd != 0.0f) gi += wd * p[i];
        m[i] += (1.0f - b1) * (gi - m[i]);                 /* lerp(m, g, 1 - beta1) */
        v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

/* SGD on [lo, hi): torch's _single_tensor_sgd */
static void sgd_range(vt_optim *o, float *p, const float *g, int64_t lo, int64_t hi, double lr, bool decay)
{
    const vt_optim_config *c = &o->cfg;
    const float wd = decay ? (float)c->weight_decay : 0.0f, mom = (float)c->momentum, damp = (float)c->dampening;
    const float flr = (float)lr;
    const bool first = o->step == 1;
    float *buf = o->m;
    #pragma omp parallel for schedule(static) if (hi - lo > 16384)
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (wd != 0.0f) gi += wd * p[i];
        if (mom != 0.0f) {
            buf[i] = first ? gi : buf[i] * mom + (1.0f - damp) * gi;
            gi = c->nesterov ? gi + mom * buf[i] : buf[i];
        }
        p[i] -= flr * gi;
    }
}

void vt_optim_step(vt_optim *o, float *params, const float *grads, double lr)
{
    o->step++;
    vt_optim_segment all = {0, o->n, true};
    const vt_optim_segment *segs = o->nseg ? o->seg : &all;
    int nseg = o->nseg ? o->nseg : 1;
    for (int s = 0; s < nseg; s++) {
        int64_t lo = segs[s].offset, hi = segs[s].offset + segs[s].len;
        if (o->cfg.kind == VT_OPTIM_SGD) sgd_range(o, params, grads, lo, hi, lr, segs[s].decay);
        else adam_range(o, params, grads, lo, hi, lr, segs[s].decay);
    }
}

bool vt_glob_match(const char *pat, const char *s)
{
    if (*pat == '\0') return *s == '\0';
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (vt_glob_match(pat + 1, t)) return true;
            if (*t == '\0') return false;
        }
    }
    return *s == *pat && vt_glob_match(pat + 1, s + 1);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool vt_optim_decays(const char *name, int ndim, const char *const *patterns, int npatterns)
{
    if (ndim < 2) return false;
    if (ends_with(name, "pos_embed") || ends_with(name, "cls_token")) return false;
    for (int i = 0; i < npatterns; i++)
        if (patterns[i] && patterns[i][0] && vt_glob_match(patterns[i], name)) return false;
    return true;
}

int vt_optim_save(const vt_optim *o, vt_h5id f, const char *group)
{
    char p[512];
    int r = vt_h5_mkgroup(f, group);
    r |= vt_h5_write_attr_str(f, group, "kind", vt_optim_kind_name(o->cfg.kind));
    r |= vt_h5_write_attr_i64(f, group, "step", o->step);
    r |= vt_h5_write_attr_i64(f, group, "numel", o->n);
    r |= vt_h5_write_attr_f64(f, group, "beta1", o->cfg.beta1);
    r |= vt_h5_write_attr_f64(f, group, "beta2", o->cfg.beta2);
    r |= vt_h5_write_attr_f64(f, group, "eps", o->cfg.eps);
    r |= vt_h5_write_attr_f64(f, group, "weight_decay", o->cfg.weight_decay);
    r |= vt_h5_write_attr_f64(f, group, "momentum", o->cfg.momentum);
    if (r) return VT_ERR;
    snprintf(p, sizeof p, "%s/%s", group, o->cfg.kind == VT_OPTIM_SGD ? "momentum_buffer" : "exp_avg");
    if (vt_h5_write_f32(f, p, o->m, 1, (int64_t[]){o->n}, 0) != VT_OK) return VT_ERR;
    if (o->v) {
        snprintf(p, sizeof p, "%s/exp_avg_sq", group);
        if (vt_h5_write_f32(f, p, o->v, 1, (int64_t[]){o->n}, 0) != VT_OK) return VT_ERR;
    }
    return VT_OK;
}

int vt_optim_load(vt_optim *o, vt_h5id f, const char *group)
{
    char p[512], kind[32], fb[512];
    int64_t step, n;
    if (vt_h5_attr_str(f, group, "kind", kind, sizeof kind) != VT_OK || vt_h5_attr_i64(f, group, "step", &step) ||
        vt_h5_attr_i64(f, group, "numel", &n))
        return VT_ERR;
    if (strcmp(kind, vt_optim_kind_name(o->cfg.kind)) != 0)
        return vt_err("%s: optimizer state is for %s, this run uses %s", vt_h5_filename(f, fb, sizeof fb), kind,
                      vt_optim_kind_name(o->cfg.kind));
    if (n != o->n)
        return vt_err("%s: optimizer state holds %lld values, the model has %lld", vt_h5_filename(f, fb, sizeof fb),
                      (long long)n, (long long)o->n);
    snprintf(p, sizeof p, "%s/%s", group, o->cfg.kind == VT_OPTIM_SGD ? "momentum_buffer" : "exp_avg");
    if (vt_h5_read_into_f32(f, p, o->m, o->n) != VT_OK) return VT_ERR;
    if (o->v) {
        snprintf(p, sizeof p, "%s/exp_avg_sq", group);
        if (vt_h5_read_into_f32(f, p, o->v, o->n) != VT_OK) return VT_ERR;
    }
    o->step = step;
    return VT_OK;
}
