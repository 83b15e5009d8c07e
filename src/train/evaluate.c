/* evaluate.c - the metrics of the model's objective (classification: loss, top-1 and top-5 accuracy)
 * over a loader, without gradients; each batch is split over the replicas' graphs as the training step
 * is. And how they are printed and written to metrics.csv. */
#include "train.h"
#include <string.h>

typedef struct {
    float *x;
    int *y;
    double sums[256][VT_OBJ_MAX_METRICS];   /* per part: the objective's metric sums over its images */
} eval_ctx;

static int eval_part(vt_vit_replicas *r, int i, int b0, int nb, void *ctx)
{
    eval_ctx *e = ctx;
    vt_vit_train_pass pass;
    vt_obj_batch b;
    vt_vit *v = &r->views[i];
    memset(e->sums[i], 0, sizeof e->sums[i]);
    vt_var *tokens = vt_vit_replicas_part_encode(r, i, e->x, v->objective->labels ? e->y : NULL, b0, nb, NULL, &pass, &b);
    if (!tokens || v->objective->eval(v, &r->graphs[i], tokens, &b, nb, e->sums[i]) != VT_OK) return VT_ERR;
    vt_graph_reset(&r->graphs[i]);
    return VT_OK;
}

int vt_evaluate(vt_vit_replicas *rep, vt_loader *l, vt_eval_result *r)
{
    const vt_objective *obj = rep->model->objective;
    memset(r, 0, sizeof *r);
    r->obj = obj;
    if (vt_loader_start(l, 0, 0) != VT_OK) return VT_ERR;
    bool was[256];
    for (int i = 0; i < rep->n; i++) {
        was[i] = rep->graphs[i].grad_enabled;
        vt_graph_set_grad(&rep->graphs[i], false);
    }
    double sums[VT_OBJ_MAX_METRICS] = {0};
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
        for (int i = 0; i < n; i++)   /* in part order: the same sums whatever the thread timing */
            for (int k = 0; k < obj->nmetrics; k++) sums[k] += e->sums[i][k];
        r->count += bs;
    }
    for (int i = 0; i < rep->n; i++) {
        vt_graph_reset(&rep->graphs[i]);
        vt_graph_set_grad(&rep->graphs[i], was[i]);
    }
    if (st != VT_OK) return vt_err_prefix("evaluation: ");
    for (int k = 0; k < obj->nmetrics && r->count; k++)
        r->v[k] = obj->metrics[k].percent ? 100.0 * sums[k] / (double)r->count : sums[k] / (double)r->count;
    return VT_OK;
}

void vt_eval_format(const vt_eval_result *ev, bool loss_last, char *buf, size_t n)
{
    const vt_objective *o = ev->obj;
    size_t used = 0;
    buf[0] = '\0';
    for (int j = 0; j < o->nmetrics && used < n; j++) {
        const int k = loss_last ? (j + 1) % o->nmetrics : j;
        const vt_obj_metric *mt = &o->metrics[k];
        int w = snprintf(buf + used, n - used, "%s%s %.*f%s", j ? "  " : "", mt->label, mt->digits, ev->v[k],
                         mt->percent ? "%" : "");
        used = w < 0 ? n : used + (size_t)w;
    }
}

void vt_eval_csv(const vt_objective *o, const vt_eval_result *ev, bool header, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < o->nmetrics && used < n; k++) {
        int w = snprintf(buf + used, n - used, header ? ",eval_%s" : ",", header ? o->metrics[k].key : "");
        used = w < 0 ? n : used + (size_t)w;
        if (!header && ev && used < n) {
            w = snprintf(buf + used, n - used, o->metrics[k].csv_fmt, ev->v[k]);
            used = w < 0 ? n : used + (size_t)w;
        }
    }
}
