/* evaluate.c - loss, top-1 and top-5 accuracy of a model over a loader, without gradients. */
#include "train.h"
#include <math.h>

int vt_evaluate(vt_vit *m, vt_loader *l, vt_graph *g, vt_eval_result *r)
{
    const vt_vit_config *c = &m->cfg;
    r->loss = r->top1 = r->top5 = 0;
    r->count = 0;
    if (vt_loader_start(l, 0, 0) != VT_OK) return VT_ERR;
    bool was = g->grad_enabled;
    vt_graph_set_grad(g, false);
    double loss_sum = 0;
    int64_t hit1 = 0, hit5 = 0;
    for (;;) {
        float *x;
        int *y, bs;
        if (vt_loader_next(l, &x, &y, NULL, &bs) != VT_OK) goto fail;
        if (bs == 0) break;
        vt_graph_reset(g);
        vt_var *in = vt_var_wrap(g, x, 4, (int64_t[]){bs, c->in_chans, c->img_h, c->img_w}, "images");
        vt_var *logits = in ? vt_vit_forward(m, g, in, NULL) : NULL;
        vt_var *loss = logits ? vt_cross_entropy(g, logits, y, 0.0f) : NULL;
        if (!loss) goto fail;
        loss_sum += (double)loss->val.data[0] * bs;
        const int K = c->num_classes;
        for (int b = 0; b < bs; b++) {
            const float *z = logits->val.data + (size_t)b * K;
            /* rank of the true class: how many logits beat it (ties counted against) */
            int above = 0;
            for (int k = 0; k < K; k++)
                if (k != y[b] && (z[k] > z[y[b]] || (z[k] == z[y[b]] && k < y[b]))) above++;
            hit1 += above < 1;
            hit5 += above < 5;
        }
        r->count += bs;
    }
    vt_graph_reset(g);
    vt_graph_set_grad(g, was);
    if (r->count) {
        r->loss = loss_sum / (double)r->count;
        r->top1 = 100.0 * (double)hit1 / (double)r->count;
        r->top5 = 100.0 * (double)hit5 / (double)r->count;
    }
    return VT_OK;
fail:
    vt_graph_reset(g);
    vt_graph_set_grad(g, was);
    return vt_err_prefix("evaluation: ");
}
