/* grad_sum.c - the gradient sum over the ranks of a data-parallel step, as vit-train and vit-bench run it:
 * the flat gradient buffer in buckets of 2 MB, started from its end by a hook after each backward node as the
 * parameters become final (one replica per rank; with more, the replicas add their gradients after backward
 * and the sum starts then), waited before the gradient norm; and how long its reductions were in flight. */
#include "train.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vt_rank_threads(const vt_dist *d, int threads)
{
    if (threads > 0 || d->size == 1) return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);   /* the host's cores shared by its ranks */
    long t = cores / (d->local_size > 0 ? d->local_size : 1);
    return t < 1 ? 1 : (int)t;
}

/* every bucket started and arrived */
static bool all_arrived(const vt_dist_sum *s)
{
    if (s->next < s->nb) return false;
    for (int b = 0; b < s->nb; b++)
        if (s->state[b] != 3) return false;
    return true;
}

/* after backward passed node i: the parameters every remaining node leaves alone are final; the buckets
 * wholly inside them start (parameters lie in the flat buffer in the order the forward reads them, so
 * backward finishes them from the end) */
static void after_node(vt_graph *g, int i, void *ctx)
{
    vt_grad_sum *gs = ctx;
    const vt_paramset *ps = gs->ps;
    if (i == g->nnodes - 1) {   /* a new backward: where each parameter is first read on this tape */
        for (int k = 0; k < ps->count; k++) gs->first_use[k] = INT_MAX;
        for (int j = 0; j < g->nnodes; j++)
            for (int a = 0; a < g->nodes[j].nin; a++) {
                const vt_var *v = g->nodes[j].in[a];
                if (v >= ps->vars && v < ps->vars + ps->count && gs->first_use[v - ps->vars] > j)
                    gs->first_use[v - ps->vars] = j;
            }
        gs->final_from = ps->count;
    }
    while (gs->final_from > 0 && gs->first_use[gs->final_from - 1] >= i) gs->final_from--;
    const int64_t from = gs->final_from < ps->count ? ps->info[gs->final_from].offset : ps->numel;
    const int started = gs->sum.next;
    if (gs->status == VT_OK) gs->status = vt_dist_sum_start_suffix(&gs->sum, from);
    if (started == 0 && gs->sum.next > 0) gs->t_start = vt_now();
    if (gs->status == VT_OK) gs->status = vt_dist_sum_progress(&gs->sum);
    if (gs->status == VT_OK && gs->sum.next > 0 && gs->t_done == 0 && all_arrived(&gs->sum)) gs->t_done = vt_now();
    if (gs->status != VT_OK) snprintf(gs->err, sizeof gs->err, "%s", vt_errmsg());
}

int vt_grad_sum_init(vt_grad_sum *gs, const vt_dist *d, vt_paramset *ps, vt_vit_replicas *rep)
{
    memset(gs, 0, sizeof *gs);
    gs->ps = ps;
    if (d->size == 1) return VT_OK;
    /* buckets of 2 MB (at most VT_DIST_MAX_BUCKETS): small enough to start early in backward */
    int64_t bucket = (int64_t)1 << 19;
    while (ps->numel / bucket >= VT_DIST_MAX_BUCKETS) bucket *= 2;
    if (vt_dist_sum_init(&gs->sum, d, ps->grad, ps->numel, bucket) != VT_OK) return VT_ERR;
    gs->active = true;
    gs->sum.from_end = true;
    if (rep->n > 1) return VT_OK;   /* replicas add their gradients after backward: the sum starts then */
    gs->first_use = malloc(sizeof(int) * (size_t)(ps->count > 0 ? ps->count : 1));
    if (!gs->first_use) {
        vt_grad_sum_free(gs);
        return vt_err("out of memory for %d parameters", ps->count);
    }
    rep->graphs[0].after_node = after_node;
    rep->graphs[0].after_node_ctx = gs;
    return VT_OK;
}

int vt_grad_sum_wait(vt_grad_sum *gs)
{
    if (!gs->active) return VT_OK;
    const double t0 = vt_now();
    if (gs->sum.next == 0) gs->t_start = t0;   /* nothing started during backward */
    int rc = gs->status;
    if (rc != VT_OK) rc = vt_err("%s", gs->err);
    gs->status = VT_OK;
    if (rc == VT_OK) rc = vt_dist_sum_wait(&gs->sum);
    const double t1 = vt_now();
    gs->waited += t1 - t0;
    if (gs->t_done == 0) gs->exposed += t1 - t0;   /* else all had arrived while backward ran */
    gs->in_flight += (gs->t_done > 0 ? gs->t_done : t1) - gs->t_start;
    gs->t_start = gs->t_done = 0;
    return rc;
}

double vt_grad_sum_alone(vt_grad_sum *gs)
{
    double best = 1e30;
    for (int k = 0; k < 4; k++) {   /* the first to warm up, the best of the 3 others */
        const double t0 = vt_now();
        if (vt_dist_sum_wait(&gs->sum) != VT_OK) return -1;
        if (k > 0 && vt_now() - t0 < best) best = vt_now() - t0;
    }
    return best;
}

void vt_grad_sum_free(vt_grad_sum *gs)
{
    if (gs->active) vt_dist_sum_free(&gs->sum);
    gs->active = false;
    free(gs->first_use);
    gs->first_use = NULL;
}
