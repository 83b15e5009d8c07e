/* optimizer.c - SGD (momentum, dampening, Nesterov), Adam, AdamW with torch's single-tensor
 * semantics over flat buffers; weight-decay segments and timm's decay rule; state to and from HDF5. */
#include "optim.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No fused multiply-adds in this file (the build turns them on elsewhere): every product and sum is
 * rounded on its own, as torch's op-by-op update rounds it, and the clipping factor applied inside
 * the update (vt_optim_step_scaled) gives exactly the gradients clip_grad_norm_ would have written. */
#pragma GCC optimize("fp-contract=off")

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

/* segments may come in any order but must not overlap (an element would be stepped twice) */
int vt_optim_add_segment(vt_optim *o, int64_t offset, int64_t len, bool decay)
{
    return vt_optim_add_segment_scaled(o, offset, len, decay, 1.0);
}

double vt_layer_decay_scale(const char *name, int depth, double decay)
{
    int layer = depth + 1;
    if (!strcmp(name, "cls_token") || !strcmp(name, "pos_embed") || !strcmp(name, "mask_token") ||
        !strncmp(name, "patch_embed.", 12))
        layer = 0;
    else if (!strncmp(name, "blocks.", 7))
        layer = atoi(name + 7) + 1;
    return pow(decay, depth + 1 - layer);
}

int vt_optim_add_segment_scaled(vt_optim *o, int64_t offset, int64_t len, bool decay, double lr_scale)
{
    if (!(lr_scale > 0 && lr_scale < HUGE_VAL)) return vt_err("optimizer: learning-rate scale %g must be positive", lr_scale);
    if (offset < 0 || len < 0 || offset > o->n - len)
        return vt_err("optimizer: segment [%lld, %lld) outside the %lld parameters", (long long)offset,
                      (long long)offset + len, (long long)o->n);
    for (int i = 0; i < o->nseg; i++) {
        const vt_optim_segment *t = &o->seg[i];
        if (len > 0 && t->len > 0 && offset < t->offset + t->len && t->offset < offset + len)
            return vt_err("optimizer: segment [%lld, %lld) overlaps segment %d [%lld, %lld)", (long long)offset,
                          (long long)(offset + len), i, (long long)t->offset, (long long)(t->offset + t->len));
    }
    if (o->nseg == o->capseg) {
        int cap = o->capseg ? 2 * o->capseg : 64;
        vt_optim_segment *sg = realloc(o->seg, (size_t)cap * sizeof *sg);
        if (!sg) return vt_err("optimizer: out of memory for %d segments", cap);
        o->seg = sg;
        o->capseg = cap;
    }
    o->seg[o->nseg++] = (vt_optim_segment){offset, len, decay, lr_scale};
    return VT_OK;
}

/* torch's lerp(a, b, w) = a + w (b - a), computed from the nearer end as ATen's scalar kernel does */
static inline float lerpf(float a, float b, float w)
{
    return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

/* the scalars of one step for one group (decayed or not), formed in double (Python floats) and
 * rounded once to float, as torch does */
typedef struct {
    bool sgd, decoupled, nesterov, first;
    float gscale;
    /* Adam / AdamW */
    float b2, eps, w1, w2, neg_step, bc2_sqrt, keep, fwd;
    /* SGD */
    float wd, mom, keep_g, neg_lr;
} step_consts;

static step_consts consts_for(const vt_optim *o, double lr, bool decay, float gscale)
{
    const vt_optim_config *c = &o->cfg;
    step_consts k = {.sgd = c->kind == VT_OPTIM_SGD, .gscale = gscale};
    if (k.sgd) {
        k.wd = decay ? (float)c->weight_decay : 0.0f;
        k.mom = (float)c->momentum;
        k.keep_g = (float)(1.0 - c->dampening);
        k.neg_lr = (float)(-lr);
        k.first = o->step == 1;
        k.nesterov = c->nesterov;
    } else {
        k.b2 = (float)c->beta2;
        k.eps = (float)c->eps;
        k.w1 = (float)(1.0 - c->beta1);
        k.w2 = (float)(1.0 - c->beta2);
        const double bc1 = 1.0 - pow(c->beta1, (double)o->step), bc2 = 1.0 - pow(c->beta2, (double)o->step);
        k.neg_step = (float)(-(lr / bc1));
        k.bc2_sqrt = (float)sqrt(bc2);
        const double wd = decay ? c->weight_decay : 0.0;
        k.decoupled = c->kind == VT_OPTIM_ADAMW;
        k.keep = (float)(1.0 - lr * wd);
        k.fwd = (float)wd;
    }
    return k;
}

/* Adam / AdamW on [lo, hi) of p, g, m, v (all float32), torch's _single_tensor_adam (foreach=False):
 *   AdamW: p *= 1 - lr*wd            Adam: g += wd*p
 *   m = lerp(m, g, 1-b1);  v = v*b2 + (1-b2)*g*g
 *   p += (-lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc_k = 1 - b_k^step
 * g is first multiplied by gscale (clip_grad_norm_'s in-place scaling, the same float product). */
static void adam_range(const step_consts *k, float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, int64_t lo, int64_t hi)
{
    /* constants in locals: the stores below could alias *k otherwise, and nothing would vectorise */
    const float gscale = k->gscale, keep = k->keep, fwd = k->fwd, w1 = k->w1, w2 = k->w2, b2 = k->b2;
    const float bc2_sqrt = k->bc2_sqrt, eps = k->eps, neg_step = k->neg_step;
    const bool decoupled = k->decoupled;
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i] * gscale;
        if (decoupled) p[i] *= keep;
        else if (fwd != 0.0f) gi += fwd * p[i];
        m[i] = lerpf(m[i], gi, w1);
        v[i] = v[i] * b2 + w2 * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += neg_step * m[i] / denom;
    }
}

/* SGD on [lo, hi) of p, g, buf (float32), torch's _single_tensor_sgd:
 *   g += wd*p;  buf = g on the first step, else buf = buf*mom + (1-damp)*g;
 *   g = nesterov ? g + mom*buf : buf;  p += -lr*g      (no buffer when momentum is 0) */
static void sgd_range(const step_consts *k, float *restrict p, const float *restrict g, float *restrict buf,
                      int64_t lo, int64_t hi)
{
    const float gscale = k->gscale, wd = k->wd, mom = k->mom, keep_g = k->keep_g, neg_lr = k->neg_lr;
    const bool first = k->first, nesterov = k->nesterov;
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i] * gscale;
        if (wd != 0.0f) gi += wd * p[i];
        if (mom != 0.0f) {
            buf[i] = first ? gi : buf[i] * mom + keep_g * gi;
            gi = nesterov ? gi + mom * buf[i] : buf[i];
        }
        p[i] += neg_lr * gi;
    }
}

void vt_optim_step_scaled(vt_optim *o, float *params, const float *grads, double lr, float gscale)
{
    o->step++;
    vt_optim_segment all = {0, o->n, true, 1.0};
    const vt_optim_segment *segs = o->nseg ? o->seg : &all;
    const int nseg = o->nseg ? o->nseg : 1;
    const step_consts kd = consts_for(o, lr, true, gscale), kn = consts_for(o, lr, false, gscale);
    int64_t total = 0;
    for (int s = 0; s < nseg; s++) total += segs[s].len;
    /* one parallel region: thread t takes the t-th equal share of the segments' elements, in order */
    #pragma omp parallel if (total > 16384)
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t from = total * t / nt, to = total * (t + 1) / nt;
        int64_t before = 0;   /* elements of the segments before s */
        for (int s = 0; s < nseg && before < to; before += segs[s].len, s++) {
            int64_t lo = from > before ? from - before : 0, hi = to - before < segs[s].len ? to - before : segs[s].len;
            if (lo >= hi) continue;
            /* a scaled group forms its own scalars from lr * scale (the same as torch's param group lr) */
            const step_consts ks = segs[s].lr_scale != 1.0 ? consts_for(o, lr * segs[s].lr_scale, segs[s].decay, gscale)
                                                           : (step_consts){0};
            const step_consts *k = segs[s].lr_scale != 1.0 ? &ks : segs[s].decay ? &kd : &kn;
            lo += segs[s].offset;
            hi += segs[s].offset;
            if (k->sgd) sgd_range(k, params, grads, o->m, lo, hi);
            else adam_range(k, params, grads, o->m, o->v, lo, hi);
        }
    }
}

void vt_optim_step(vt_optim *o, float *params, const float *grads, double lr)
{
    vt_optim_step_scaled(o, params, grads, lr, 1.0f);
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

/* name is `x` or ends in `.x` (a prefixed state_dict name such as "module.pos_embed") */
static bool is_named(const char *name, const char *x)
{
    size_t a = strlen(name), b = strlen(x);
    if (a < b || strcmp(name + a - b, x) != 0) return false;
    return a == b || name[a - b - 1] == '.';
}

/* timm's param_groups_weight_decay with VisionTransformer.no_weight_decay():
 * no decay for ndim <= 1, names ending in ".bias", pos_embed / cls_token / dist_token,
 * nor for names matching a user pattern */
bool vt_optim_decays(const char *name, int ndim, const char *const *patterns, int npatterns)
{
    if (ndim < 2) return false;
    size_t len = strlen(name);
    if (len >= 5 && strcmp(name + len - 5, ".bias") == 0) return false;
    if (is_named(name, "pos_embed") || is_named(name, "cls_token") || is_named(name, "dist_token")) return false;
    for (int i = 0; i < npatterns; i++)
        if (patterns[i] && patterns[i][0] && vt_glob_match(patterns[i], name)) return false;
    return true;
}

/* group/{exp_avg, exp_avg_sq} (Adam, AdamW) or group/momentum_buffer (SGD), each float32 (n);
 * attributes: kind, step, numel and the hyper-parameters (informational) */
static const char *first_moment_name(const vt_optim *o)
{
    return o->cfg.kind == VT_OPTIM_SGD ? "momentum_buffer" : "exp_avg";
}

int vt_optim_save(const vt_optim *o, vt_h5id f, const char *group)
{
    char p[512];
    int r = vt_h5_mkgroup(f, group);
    r |= vt_h5_write_attr_str(f, group, "kind", vt_optim_kind_name(o->cfg.kind));
    r |= vt_h5_write_attr_i64(f, group, "step", o->step);
    r |= vt_h5_write_attr_i64(f, group, "numel", o->n);
    r |= vt_h5_write_attr_f64(f, group, "lr", o->cfg.lr);
    r |= vt_h5_write_attr_f64(f, group, "beta1", o->cfg.beta1);
    r |= vt_h5_write_attr_f64(f, group, "beta2", o->cfg.beta2);
    r |= vt_h5_write_attr_f64(f, group, "eps", o->cfg.eps);
    r |= vt_h5_write_attr_f64(f, group, "weight_decay", o->cfg.weight_decay);
    r |= vt_h5_write_attr_f64(f, group, "momentum", o->cfg.momentum);
    r |= vt_h5_write_attr_f64(f, group, "dampening", o->cfg.dampening);
    r |= vt_h5_write_attr_i64(f, group, "nesterov", o->cfg.nesterov);
    if (r) return VT_ERR;
    snprintf(p, sizeof p, "%s/%s", group, first_moment_name(o));
    if (vt_h5_write_f32(f, p, o->m, 1, (int64_t[]){o->n}, 0) != VT_OK) return VT_ERR;
    if (o->v) {
        snprintf(p, sizeof p, "%s/exp_avg_sq", group);
        if (vt_h5_write_f32(f, p, o->v, 1, (int64_t[]){o->n}, 0) != VT_OK) return VT_ERR;
    }
    return VT_OK;
}

/* dataset `path` must be 1-D of n values */
static int check_moment(vt_h5id f, const char *path, int64_t n)
{
    char fb[512], b[128];
    int nd;
    int64_t sh[8];
    if (vt_h5_shape(f, path, &nd, sh) != VT_OK) return VT_ERR;
    if (nd != 1 || sh[0] != n)
        return vt_err("%s: optimizer state %s has shape %s, the model has %lld parameters",
                      vt_h5_filename(f, fb, sizeof fb), path, vt_dims_str(nd, sh, b, sizeof b), (long long)n);
    return VT_OK;
}

/* the n values of a moment are finite, and with second (Adam's exp_avg_sq, a running mean of squares) not
 * negative: anything else would turn the next update into NaN or inf */
static int check_values(const char *fname, const char *path, const float *x, int64_t n, bool second)
{
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(x[k]) || (second && x[k] < 0))
            return vt_err("%s: optimizer state %s holds %g at element %lld of %lld (expected %s: the file is damaged "
                          "or the run it comes from diverged)", fname, path, (double)x[k], (long long)k, (long long)n,
                          second ? "finite values >= 0, a mean of squared gradients" : "finite values");
    return VT_OK;
}

/* everything is checked before the first byte of o is overwritten */
int vt_optim_load(vt_optim *o, vt_h5id f, const char *group)
{
    char pm[512], pv[512], kind[32], fb[512];
    int64_t step, n;
    if (vt_h5_attr_str(f, group, "kind", kind, sizeof kind) != VT_OK || vt_h5_attr_i64(f, group, "step", &step) ||
        vt_h5_attr_i64(f, group, "numel", &n))
        return VT_ERR;
    const char *fname = vt_h5_filename(f, fb, sizeof fb);
    if (strcmp(kind, vt_optim_kind_name(o->cfg.kind)) != 0)
        return vt_err("%s: optimizer state %s is for %s, this run uses %s", fname, group, kind,
                      vt_optim_kind_name(o->cfg.kind));
    if (n != o->n)
        return vt_err("%s: optimizer state %s holds %lld values (attribute numel), the model has %lld", fname, group,
                      (long long)n, (long long)o->n);
    if (step < 0) return vt_err("%s: optimizer state %s has step %lld", fname, group, (long long)step);
    snprintf(pm, sizeof pm, "%s/%s", group, first_moment_name(o));
    snprintf(pv, sizeof pv, "%s/exp_avg_sq", group);
    if (check_moment(f, pm, o->n) != VT_OK || (o->v && check_moment(f, pv, o->n) != VT_OK)) return VT_ERR;
    /* read into copies: o keeps its state until every value has passed */
    size_t bytes = sizeof(float) * (size_t)(o->n ? o->n : 1);
    float *m = malloc(bytes), *v = o->v ? malloc(bytes) : NULL;
    int r = !m || (o->v && !v) ? vt_err("%s: out of memory for the optimizer state (%lld values)", fname, (long long)o->n)
                               : VT_OK;
    if (r == VT_OK) r = vt_h5_read_into_f32(f, pm, m, o->n);
    if (r == VT_OK && v) r = vt_h5_read_into_f32(f, pv, v, o->n);
    if (r == VT_OK) r = check_values(fname, pm, m, o->n, false);
    if (r == VT_OK && v) r = check_values(fname, pv, v, o->n, true);
    if (r == VT_OK) {
        memcpy(o->m, m, sizeof(float) * (size_t)o->n);
        if (v) memcpy(o->v, v, sizeof(float) * (size_t)o->n);
        o->step = step;
    }
    free(m);
    free(v);
    return r;
}
