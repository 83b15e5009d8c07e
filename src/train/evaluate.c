/* evaluate.c - loss, top-1 and top-5 accuracy of a model over a loader, without gradients; each
 * batch is split over the replicas' graphs as the training step is. */
#include "train.h"
#include <math.h>

typedef struct {
    float *x;
    int *y;
    double loss_sum[256];   /* per part: sum over its images of the loss */
    int64_t hit1[256], hit5[256];
} eval_ctx;

static int eval_part(vt_vit_replicas *r, int i, int b0, int nb, void *ctx)
{
    eval_ctx *e = ctx;
    const int *y = e->y + b0;
    vt_var *logits = NULL;
    vt_var *loss = vt_vit_replicas_part_loss(r, i, e->x, e->y, b0, nb, 0.0f, NULL, &logits);
    if (!loss) return VT_ERR;
    e->loss_sum[i] = (double)loss->val.data[0] * nb;
    const int K = r->views[i].cfg.num_classes;
    int64_t h1 = 0, h5 = 0;
    for (int b = 0; b < nb; b++) {
        const float *z = logits->val.data + (size_t)b * K;
        /* rank of the true class: how many logits beat it (ties counted against); a NaN beats everything,
         * as in torch.topk, so a model that outputs NaN scores nothing (every comparison with NaN is false) */
        int above = 0;
        for (int k = 0; k < K; k++)
            if (k != y[b] && (!(z[k] <= z[y[b]]) || (z[k] == z[y[b]] && k < y[b]))) above++;
        if (isnan(z[y[b]])) above = K;
        h1 += above < 1;
        h5 += above < 5;
    }
    e->hit1[i] = h1;
    e->hit5[i] = h5;
    vt_graph_reset(&r->graphs[i]);
    return VT_OK;
}

int vt_evaluate(vt_vit_replicas *rep, vt_loader *l, vt_eval_result *r)
{
    r->loss = r->top1 = r->top5 = 0;
    r->count = 0;
    if (vt_loader_start(l, 0, 0) != VT_OK) return VT_ERR;
    bool was[256];
    for (int i = 0; i < rep->n; i++) {
        was[i] = rep->graphs[i].grad_enabled;
        vt_graph_set_grad(&rep->graphs[i], false);
    }
    double loss_sum = 0;
    int64_t hit1 = 0, hit5 = 0;
    int st = VT_OK;
    eval_ctx ctx, *e = &ctx;
    while (st == VT_OK) {
        int bs;
        if (vt_loader_next(l, &e->x, &e->y, NULL, &bs) != VT_OK) {
            st = VT_ERR;
            break;
        }
        if (bs == 0) break;
        int n = vt_vit_replicas_each(rep, bs, eval_part, e);
        if (n < 1) {
            st = VT_ERR;
            break;
        }
        for (int i = 0; i < n; i++) {   /* in part order: the same sums whatever the thread timing */
            loss_sum += e->loss_sum[i];
            hit1 += e->hit1[i];
            hit5 += e->hit5[i];
        }
        r->count += bs;
    }
    for (int i = 0; i < rep->n; i++) {
        vt_graph_reset(&rep->graphs[i]);
        vt_graph_set_grad(&rep->graphs[i], was[i]);
    }
    if (st != VT_OK) return vt_err_prefix("evaluation: ");
    if (r->count) {
        r->loss = loss_sum / (double)r->count;
        r->top1 = 100.0 * (double)hit1 / (double)r->count;
        r->top5 = 100.0 * (double)hit5 / (double)r->count;
    }
    return VT_OK;
}
