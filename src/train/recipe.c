/* recipe.c - the per-step pieces of the DeiT / timm training recipe the loop calls: mixup and cutmix of
 * a micro-batch (its draws a function of the seed and the micro-batch's number, so a resumed run mixes
 * as an uninterrupted one), and the EMA of the weights (updated after each optimizer step, evaluated
 * beside the model, kept in the checkpoints). */
#include "trainer_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int recipe_init(run_t *r)
{
    const vt_config *c = &r->cfg;
    r->mix = (vt_mix){.mixup_alpha = c->mixup_alpha, .cutmix_alpha = c->cutmix_alpha, .prob = c->mix_prob,
                      .switch_prob = c->switch_prob};
    const size_t np = (size_t)r->model.params.numel;
    if (c->ema_decay > 0) {
        r->ema = malloc(sizeof(float) * np);
        r->ema_swap = malloc(sizeof(float) * np);
        if (!r->ema || !r->ema_swap) return vt_err("out of memory for the EMA of %zu weights", np);
        r->st.ema = r->ema;   /* a checkpoint writes it, and a resumed one fills it */
    }
    if (!vt_mix_enabled(&r->mix)) return VT_OK;
    if (r->model.objective != &vt_objective_classification)
        return vt_err("[data] mixup_alpha / cutmix_alpha: mixing needs the classification objective (labels), the "
                      "model trains for %s", r->model.objective->name);
    if (r->d->size > 1)   /* a rank holds its parts of the batch only */
        return vt_err("[data] mixup_alpha / cutmix_alpha: mixing pairs each image with one from the other end of the "
                      "batch, which another rank holds: not supported in a data-parallel run (%d ranks) yet", r->d->size);
    r->mix_targets = malloc(sizeof(float) * (size_t)c->batch_size * (size_t)r->model.cfg.num_classes);
    return r->mix_targets ? VT_OK : vt_err("out of memory for the mixup targets");
}

void recipe_free(run_t *r)
{
    free(r->mix_targets);
    free(r->ema);
    free(r->ema_swap);
    r->mix_targets = r->ema = r->ema_swap = NULL;
    r->st.ema = NULL;
}

void recipe_ema_start(run_t *r, FILE *out)
{
    if (!r->ema) return;
    if (r->st.ema_loaded) return;
    /* a new run, a fine-tuning start or a checkpoint without one: the EMA starts at the weights (timm's copy) */
    memcpy(r->ema, r->model.params.data, sizeof(float) * (size_t)r->model.params.numel);
    if (r->st.step > 0) fprintf(out, "ema: the checkpoint holds no EMA; it starts from the weights of step %lld\n",
                                (long long)r->st.step);
}

void recipe_ema_update(run_t *r)
{
    if (!r->ema) return;
    const double d = vt_ema_decay_at(r->cfg.ema_decay, r->cfg.ema_warmup, r->st.step);
    vt_ema_update(r->ema, r->model.params.data, r->model.params.numel, d, r->cfg.ema_warmup);
}

int recipe_ema_eval(run_t *r, vt_eval_result *ev)
{
    float *w = r->model.params.data;
    const size_t bytes = sizeof(float) * (size_t)r->model.params.numel;
    memcpy(r->ema_swap, w, bytes);   /* the replicas read the model's buffer: the EMA goes there for the pass */
    memcpy(w, r->ema, bytes);
    int rc = vt_evaluate_ranks(&r->rep, r->eval_l, r->d, ev);
    memcpy(w, r->ema_swap, bytes);
    return rc == VT_OK ? VT_OK : vt_err_prefix("EMA ");
}

void recipe_csv(const run_t *r, const vt_eval_result *ev, bool header, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!r->ema) return;
    const vt_objective *o = r->model.objective;
    size_t used = 0;
    for (int k = 0; header && k < o->nmetrics && used < n; k++) {
        int w = snprintf(buf + used, n - used, ",ema_eval_%s", o->metrics[k].key);
        used = w < 0 ? n : used + (size_t)w;
    }
    if (!header) vt_eval_csv(o, ev, false, buf, n);
}

int recipe_mix(run_t *r, float *x, const int *y, int k, const float **targets)
{
    *targets = NULL;
    if (!vt_mix_enabled(&r->mix)) return VT_OK;
    const vt_vit_config *m = &r->model.cfg;
    const uint64_t micro = (uint64_t)r->st.step * (uint64_t)r->cfg.accum_steps + (uint64_t)k;
    vt_rng rng;
    vt_sample_rng(&rng, (uint64_t)r->st.seed ^ 0x6d69787570ULL, (int64_t)micro, -3);   /* "mixup" */
    vt_mix_params p;
    vt_mix_draw(&r->mix, &rng, m->img_h, m->img_w, &p);
    if (vt_mix_apply(&p, x, y, r->cfg.batch_size, m->in_chans, m->img_h, m->img_w, m->num_classes,
                     r->cfg.label_smoothing, r->mix_targets) != VT_OK)
        return VT_ERR;
    *targets = r->mix_targets;
    return VT_OK;
}

/* the banner's line of the recipe's switches that are on (nothing when none is) */
void recipe_banner(run_t *r)
{
    const vt_config *c = &r->cfg;
    char line[512] = "";
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(line + n, n < sizeof line ? sizeof line - n : 0, __VA_ARGS__)
    if (vt_mix_enabled(&r->mix)) {
        ADD(" |");
        if (c->mixup_alpha > 0) ADD(" mixup %g", c->mixup_alpha);
        if (c->cutmix_alpha > 0) ADD(" cutmix %g", c->cutmix_alpha);
        ADD(" (prob %g", c->mix_prob);
        if (c->mixup_alpha > 0 && c->cutmix_alpha > 0) ADD(", switch %g", c->switch_prob);
        ADD(", smoothing %g in the targets)", c->label_smoothing);
    }
    if (c->randaugment[0]) ADD(" | %s %s", strcmp(c->randaugment, "ta") ? "randaugment" : "trivialaugment", c->randaugment);
    if (c->repeats > 1) ADD(" | repeated augmentation x%d (%lld samples an epoch)", c->repeats,
                            (long long)vt_loader_epoch_samples(r->train_l));
    if (r->ema) ADD(" | ema %g%s", c->ema_decay, c->ema_warmup ? " with warmup (ModelEmaV3)" : "");
#undef ADD
    if (n > 0) fprintf(r->out, "recipe:%s\n", line + 2);
}
