/* recipe.c - the per-step pieces of the DeiT / timm training recipe the loop calls: mixup and cutmix of
 * a micro-batch (its draws a function of the seed and the micro-batch's number, so a resumed run mixes
 * as an uninterrupted one). */
#include "trainer_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int recipe_init(run_t *r)
{
    const vt_config *c = &r->cfg;
    r->mix = (vt_mix){.mixup_alpha = c->mixup_alpha, .cutmix_alpha = c->cutmix_alpha, .prob = c->mix_prob,
                      .switch_prob = c->switch_prob};
    if (!vt_mix_enabled(&r->mix)) return VT_OK;
    r->mix_targets = malloc(sizeof(float) * (size_t)c->batch_size * (size_t)r->model.cfg.num_classes);
    return r->mix_targets ? VT_OK : vt_err("out of memory for the mixup targets");
}

void recipe_free(run_t *r)
{
    free(r->mix_targets);
    r->mix_targets = NULL;
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
#undef ADD
    if (n > 0) fprintf(r->out, "recipe:%s\n", line + 2);
}
