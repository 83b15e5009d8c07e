/* evaluate.c - the metrics of the model's objective (classification: loss, top-1 and top-5 accuracy)
 * over a loader, without gradients; each batch is split over the replicas' graphs as the training step
 * is (over the ranks' replicas in a data-parallel run: every part's sums are gathered and added in part
 * order, the sums of one process with all the replicas). And how they are printed and written to
 * metrics.csv. */
#include "train.h"
#include "dist/dist.h"
#include <stdlib.h>
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

/* the batch's part sums added into sums in part order: this process's, or every rank's (gathered) */
static int add_parts(vt_vit_replicas *rep, const vt_dist *d, eval_ctx *e, int n, int full, double *gather,
                     double *sums)
{
    const int nm = rep->model->objective->nmetrics;
    if (!d || d->size == 1) {
        for (int i = 0; i < n; i++)
            for (int k = 0; k < nm; k++) sums[k] += e->sums[i][k];
        return VT_OK;
    }
    const size_t per = sizeof e->sums[0] * (size_t)rep->n;   /* a rank's parts, run or not */
    for (int i = n; i < rep->n; i++) memset(e->sums[i], 0, sizeof e->sums[i]);
    if (vt_dist_allgather(d, e->sums, per, gather) != VT_OK) return VT_ERR;
    const int P = rep->parts < full ? rep->parts : full;   /* rank k's parts are k n .. k n + n - 1 */
    for (int j = 0; j < P; j++)
        for (int k = 0; k < nm; k++) sums[k] += gather[(size_t)j * VT_OBJ_MAX_METRICS + k];
    return VT_OK;
}

int vt_evaluate(vt_vit_replicas *rep, vt_loader *l, vt_eval_result *r)
{
    return vt_evaluate_ranks(rep, l, NULL, r);
}

int vt_evaluate_ranks(vt_vit_replicas *rep, vt_loader *l, const vt_dist *d, vt_eval_result *r)
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
    double *gather = NULL;
    if (d && d->size > 1 && !(gather = malloc(sizeof e->sums[0] * (size_t)rep->n * (size_t)d->size)))
        st = vt_err("out of memory for %d ranks' metric sums", d->size);
    while (st == VT_OK) {
        int bs;
        if (vt_loader_next(l, &e->x, &e->y, NULL, &bs) != VT_OK) {
            st = VT_ERR;
            break;
        }
        const int full = vt_loader_full_size(l);   /* bs: this rank's share of it */
        if (full == 0) break;
        rep->eval_first = r->count;   /* the masks of image k of the pass: those of its index k */
        int n = vt_vit_replicas_each(rep, full, eval_part, e);
        /* in part order: the same sums whatever the thread timing and the layout */
        if (n < 0 || add_parts(rep, d, e, n, full, gather, sums) != VT_OK) {
            st = VT_ERR;
            break;
        }
        r->count += full;
    }
    free(gather);
    rep->eval_first = 0;
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
