/* schedule.c - learning-rate schedules as pure functions of the optimizer step (timm
 * CosineLRScheduler with warmup_prefix=True, stepped per update), so a resumed run needs no state. */
#include "optim.h"
#include <math.h>
#include <string.h>

int vt_sched_kind_parse(const char *name, vt_sched_kind *k)
{
    if (strcmp(name, "constant") == 0) *k = VT_SCHED_CONSTANT;
    else if (strcmp(name, "cosine") == 0) *k = VT_SCHED_COSINE;
    else if (strcmp(name, "linear") == 0) *k = VT_SCHED_LINEAR;
    else return vt_err("unknown schedule '%s' (constant, cosine, linear)", name);
    return VT_OK;
}

int vt_schedule_check(const vt_schedule *s)
{
    if (!(s->base_lr >= 0)) return vt_err("schedule: base learning rate %g must not be negative", s->base_lr);
    if (!(s->warmup_lr_init >= 0)) return vt_err("schedule: warmup_lr_init %g must not be negative", s->warmup_lr_init);
    if (!(s->lr_min >= 0)) return vt_err("schedule: lr_min %g must not be negative", s->lr_min);
    if (s->warmup_steps < 0) return vt_err("schedule: warmup_steps %lld must not be negative", (long long)s->warmup_steps);
    if (s->total_steps < 1 && s->kind != VT_SCHED_CONSTANT)
        return vt_err("schedule: the warmup (warmup_steps %lld) is not shorter than the run: %lld steps are left "
                      "for the decay (total_steps), at least 1 needed",
                      (long long)s->warmup_steps, (long long)s->total_steps);
    return VT_OK;
}

double vt_lr_at(const vt_schedule *s, int64_t t)
{
    /* timm: warmup_lr_init + t * ((base - init) / W), in that order */
    if (t < s->warmup_steps) return s->warmup_lr_init + (double)t * ((s->base_lr - s->warmup_lr_init) / (double)s->warmup_steps);
    double u = (double)(t - s->warmup_steps), T = (double)s->total_steps;
    switch (s->kind) {
    case VT_SCHED_COSINE:
        if (u >= T) return s->lr_min;
        return s->lr_min + 0.5 * (s->base_lr - s->lr_min) * (1.0 + cos(M_PI * u / T));
    case VT_SCHED_LINEAR:
        if (u >= T) return s->lr_min;
        return s->base_lr - (s->base_lr - s->lr_min) * u / T;
    default:
        return s->base_lr;
    }
}

double vt_lr_scale(double base_lr, int64_t global_batch) { return base_lr * (double)global_batch / 256.0; }
