/* objective.c - the training objectives on the encoder's tokens. Classification: timm's head (token
 * or avg pooling, fc_norm, the Linear head) and the label-smoothed cross-entropy; evaluation counts
 * top-1 and top-5 hits.
 *
 * The self-supervised ones are pretrain.c (masked patch prediction) and mae.c. A new objective is one more
 * vt_objective: its parameters (after the encoder's), its mask hook when it masks, its head, its loss and its
 * metrics, a name in VT_OBJECTIVE_NAMES (nn.h) and a case in vt_objective_for. */
#include "nn.h"
#include <math.h>
#include <string.h>

#define PV(idx) (&m->params.vars[(idx)])

static int classify_params(vt_vit *m)
{
    const vt_vit_config *c = &m->cfg;
    const int64_t D = c->embed_dim, K = c->num_classes;
    int r = VT_OK;
    if (c->fc_norm) {
        r |= (m->fc_norm_w = vt_paramset_add(&m->params, "fc_norm.weight", 1, (int64_t[]){D})) < 0;
        r |= (m->fc_norm_b = vt_paramset_add(&m->params, "fc_norm.bias", 1, (int64_t[]){D})) < 0;
    }
    r |= (m->head_w = vt_paramset_add(&m->params, "head.weight", 2, (int64_t[]){K, D})) < 0;
    r |= (m->head_b = vt_paramset_add(&m->params, "head.bias", 1, (int64_t[]){K})) < 0;
    return r ? VT_ERR : VT_OK;
}

/* tokens (B, T, D) -> logits (B, K): the pooling, timm's fc_norm when asked for, the head */
static vt_var *classify_head(vt_vit *m, vt_graph *g, vt_var *tokens, vt_vit_acts *acts)
{
    const vt_vit_config *c = &m->cfg;
    vt_var *x = vt_pool(g, tokens, c->pool, vt_vit_prefix_tokens(c));   /* avg: the patch tokens, as timm */
    if (c->fc_norm) {
        x = x ? vt_layernorm(g, x, PV(m->fc_norm_w), PV(m->fc_norm_b), c->ln_eps) : NULL;
        if (acts && x) acts->fc_norm = x;
    }
    return x ? vt_linear(g, x, PV(m->head_w), PV(m->head_b)) : NULL;
}

static vt_var *classify_loss(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, vt_var **out)
{
    vt_var *logits = classify_head(m, g, tokens, NULL);
    if (out) *out = logits;
    if (logits && b->targets) return vt_cross_entropy_soft(g, logits, b->targets);
    if (logits && !b->labels) return vt_err("classification: a batch without labels"), NULL;
    return logits ? vt_cross_entropy(g, logits, b->labels, b->label_smoothing) : NULL;
}

/* sums: the loss without smoothing times nb, the top-1 hits, the top-5 hits */
static int classify_eval(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, int nb, double *sums)
{
    vt_obj_batch plain = *b;
    plain.label_smoothing = 0.0f;
    plain.targets = NULL;
    vt_var *logits = NULL;
    vt_var *loss = classify_loss(m, g, tokens, &plain, &logits);
    if (!loss) return VT_ERR;
    sums[0] += (double)loss->val.data[0] * nb;
    const int K = m->cfg.num_classes;
    const int *y = b->labels;
    int64_t h1 = 0, h5 = 0;
    for (int i = 0; i < nb; i++) {
        const float *z = logits->val.data + (size_t)i * K;
        /* rank of the true class: how many logits beat it (ties counted against); a NaN beats everything,
         * as in torch.topk, so a model that outputs NaN scores nothing (every comparison with NaN is false) */
        int above = 0;
        for (int k = 0; k < K; k++)
            if (k != y[i] && (!(z[k] <= z[y[i]]) || (z[k] == z[y[i]] && k < y[i]))) above++;
        if (isnan(z[y[i]])) above = K;
        h1 += above < 1;
        h5 += above < 5;
    }
    sums[1] += (double)h1;
    sums[2] += (double)h5;
    return VT_OK;
}

const vt_objective vt_objective_classification = {
    .name = "classification",
    .summary = "accuracy",
    .nmetrics = 3,
    .metrics = {{"loss", "loss", "%.9g", 4, false}, {"top1", "top-1", "%.4f", 2, true}, {"top5", "top-5", "%.4f", 2, true}},
    .best = 1,
    .labels = true,
    .add_params = classify_params,
    .head = classify_head,
    .loss = classify_loss,
    .eval = classify_eval,
};

bool vt_objective_better(const vt_objective *o, double value, double best)
{
    return best < 0 || (o->best_lowest ? value < best : value > best);
}

const vt_objective *vt_objective_for(const vt_vit_config *c)
{
    switch (c->pretrain.kind) {
    case VT_OBJ_MASKED_COLOR: return &vt_objective_masked_color;
    case VT_OBJ_MASKED_PIXELS: return &vt_objective_masked_pixels;
    case VT_OBJ_MAE: return &vt_objective_mae;
    default: return &vt_objective_classification;
    }
}

#define KIND_NAME(kind, name) [kind] = name,
static const char *const kind_names[] = {VT_OBJECTIVE_NAMES(KIND_NAME)};
#define NKINDS (int)(sizeof kind_names / sizeof *kind_names)

const char *vt_objective_kind_name(vt_objective_kind k) { return (int)k >= 0 && (int)k < NKINDS ? kind_names[k] : "?"; }

int vt_objective_kind_parse(const char *name, vt_objective_kind *k)
{
    for (int i = 0; i < NKINDS; i++)
        if (strcmp(kind_names[i], name) == 0) return *k = (vt_objective_kind)i, VT_OK;
    return vt_err("objective '%s' unknown (expected classification, masked_patch_color, masked_patch_pixels or mae)", name);
}
