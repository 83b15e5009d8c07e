/* trainer_dist.c - what vit-train does differently as one rank of a data-parallel run (mpirun -n R):
 * the start-up checks (the same resolved config and the same build on every rank), the threads per rank,
 * rank 0's state (a new run's, a resumed or fine-tuned one's) sent to the others, the gradient sum over the
 * ranks started bucket by bucket while backward runs, and the per-step exchange of the parts' losses and
 * of a stop request. Alone (one rank) every function here is a no-op or a copy. */
#include "trainer_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int dist_start(run_t *r, const char *cfg_text)
{
    const vt_dist *d = r->d;
    const int threads = vt_rank_threads(d, r->cfg.threads);
    if (threads > 0) vt_set_threads(threads);
    if (d->size == 1) return VT_OK;
    char id[128];
    vt_dist_build_id(id, sizeof id);
    if (vt_dist_same_text(d, "build (vit-train's executable)", id) != VT_OK ||
        vt_dist_same_text(d, "resolved config (--config with --set, --seed, --threads, --init)", cfg_text) != VT_OK) {
        r->shared_failure = true;
        return vt_err_prefix("refused: ");
    }
    return VT_OK;
}

/* [train] shard_optimizer: the optimizer of this rank's slice [lo, hi) of the parameters (the whole one's
 * segments cut to it), its moments rank 0's slice of the whole one's; the whole one is freed (its moments,
 * calloc'd and never written on the other ranks, took no memory there) */
static int shard_optimizer(run_t *r)
{
    const vt_dist *d = r->d;
    vt_optim *w = &r->opt, sh;
    int64_t lo, hi;
    vt_dist_slice(d, w->n, &lo, &hi);
    if (vt_optim_init(&sh, &w->cfg, hi - lo) != VT_OK) return VT_ERR;
    int rc = VT_OK, added = 0;
    for (int k = 0; k < w->nseg && rc == VT_OK; k++) {
        const vt_optim_segment *g = &w->seg[k];
        const int64_t a = g->offset > lo ? g->offset : lo, b = g->offset + g->len < hi ? g->offset + g->len : hi;
        if (a < b) rc = vt_optim_add_segment_scaled(&sh, a - lo, b - a, g->decay, g->lr_scale), added++;
    }
    if (rc == VT_OK && w->nseg > 0 && added == 0) rc = vt_optim_add_segment(&sh, 0, 0, false);   /* all frozen */
    if (rc == VT_OK) rc = vt_dist_scatter_slices(d, w->m, sh.m, w->n);
    if (rc == VT_OK && w->v) rc = vt_dist_scatter_slices(d, w->v, sh.v, w->n);
    sh.step = w->step;
    if (rc != VT_OK) {
        vt_optim_free(&sh);
        return VT_ERR;
    }
    vt_optim_free(w);
    *w = sh;
    r->shard_lo = lo;
    r->sharded = true;
    return VT_OK;
}

int dist_share_state(run_t *r)
{
    const vt_dist *d = r->d;
    if (d->size == 1) return VT_OK;
    vt_paramset *ps = &r->model.params;
    int rc = vt_dist_bcast(d, ps->data, sizeof(float) * (size_t)ps->numel);
    if (rc == VT_OK) rc = vt_dist_bcast(d, &r->opt.step, sizeof r->opt.step);
    if (rc == VT_OK && r->cfg.shard_optimizer) rc = shard_optimizer(r);
    if (rc == VT_OK && !r->sharded && r->opt.m) rc = vt_dist_bcast(d, r->opt.m, sizeof(float) * (size_t)r->opt.n);
    if (rc == VT_OK && !r->sharded && r->opt.v) rc = vt_dist_bcast(d, r->opt.v, sizeof(float) * (size_t)r->opt.n);
    float *ema = r->st.ema;   /* this rank's buffer: the pointer is not rank 0's to send */
    if (rc == VT_OK) rc = vt_dist_bcast(d, &r->st, sizeof r->st);
    r->st.ema = ema;
    if (rc == VT_OK && ema && r->st.ema_loaded) rc = vt_dist_bcast(d, ema, sizeof(float) * (size_t)ps->numel);
    return rc == VT_OK ? VT_OK : vt_err_prefix("sending rank 0's state: ");
}

int dist_grad_init(run_t *r)
{
    const vt_dist *d = r->d;
    const vt_config *c = &r->cfg;
    const int R = d->size, n = r->rep.n;
    if (vt_vit_replicas_set_share(&r->rep, d->rank * n, R * n) != VT_OK) return VT_ERR;
    /* the parts' losses of a step: this rank's, every rank's, one micro-batch's in part order, then
     * the exchange's send and receive rows (the losses and a stop flag per rank) */
    const size_t nl = (size_t)c->accum_steps * (size_t)n;
    if (!(r->losses = malloc(sizeof(double) * (nl * (size_t)(R + 1) + (size_t)(R * n) + (nl + 1) * (size_t)(R + 1)))))
        return vt_err("out of memory");
    return vt_grad_sum_init(&r->gsum, d, &r->model.params, &r->rep);
}

int dist_grad_sum(run_t *r)
{
    return vt_grad_sum_wait(&r->gsum) == VT_OK ? VT_OK : vt_err_prefix("gradient sum over the ranks: ");
}

static int step_exchange(run_t *r, const double *mine, int n, double *all, int *stop)
{
    const vt_dist *d = r->d;
    /* after the losses' rows in r->losses (dist_grad_init): no allocation in the step */
    double *buf = r->losses + (size_t)n * (size_t)(d->size + 1) + (size_t)d->size * r->rep.n, *got = buf + n + 1;
    memcpy(buf, mine, sizeof(double) * (size_t)n);
    buf[n] = *stop;
    int rc = vt_dist_allgather(d, buf, sizeof(double) * (size_t)(n + 1), got);
    for (int q = 0; rc == VT_OK && q < d->size; q++) {
        memcpy(all + (size_t)q * n, got + (size_t)q * (n + 1), sizeof(double) * (size_t)n);
        if (got[(size_t)q * (n + 1) + n] != 0 && *stop == 0) *stop = (int)got[(size_t)q * (n + 1) + n];
    }
    return rc;
}

int dist_step_loss(run_t *r, int stop_signal, double *loss)
{
    const vt_config *c = &r->cfg;
    const int A = c->accum_steps, n = r->rep.n, R = r->d->size;
    double *mine = r->losses, *all = mine + (size_t)A * n, *parts = all + (size_t)R * A * n;
    r->stop_agreed = R > 1 ? stop_signal : 0;
    if (step_exchange(r, mine, A * n, all, &r->stop_agreed) != VT_OK) return VT_ERR;
    *loss = 0;
    for (int k = 0; k < A; k++) {   /* micro-batch k's parts: rank q's part i is part q n + i */
        for (int j = 0; j < R * n; j++) parts[j] = all[(size_t)(j / n) * A * n + (size_t)k * n + j % n];
        const double l = vt_batch_loss(parts, R * n, c->batch_size);
        if (!isfinite(l)) {
            r->shared_failure = true;
            return vt_err("loss is %s at step %lld (epoch %lld): stopping; %s", isnan(l) ? "nan" : "infinite",
                          (long long)r->st.step + 1, (long long)r->st.epoch + 1, run_dir_kept(r));
        }
        *loss += l / A;
    }
    return VT_OK;
}

int dist_optim_step(run_t *r, double lr, float gscale)
{
    vt_paramset *ps = &r->model.params;
    vt_optim_step_scaled(&r->opt, ps->data + r->shard_lo, ps->grad + r->shard_lo, lr, gscale);
    if (!r->sharded) return VT_OK;
    int rc = vt_dist_allgather_slices(r->d, ps->data, ps->numel);   /* every rank's updated slice */
    return rc == VT_OK ? VT_OK : vt_err_prefix("gathering the updated parameters: ");
}

int dist_checkpoint(run_t *r, char *path, size_t n, bool better)
{
    if (!r->sharded) return r->writes ? run_dir_checkpoint(r, path, n, better) : VT_OK;
    vt_optim whole, shard = r->opt;   /* rank 0 writes the whole state: the slices gathered there */
    memset(&whole, 0, sizeof whole);
    const int64_t N = r->model.params.numel;
    int rc = r->writes ? vt_optim_init(&whole, &shard.cfg, N) : VT_OK;
    if (rc == VT_OK) rc = vt_dist_gather_slices(r->d, shard.m, whole.m, N);
    if (rc == VT_OK && shard.v) rc = vt_dist_gather_slices(r->d, shard.v, whole.v, N);
    if (rc == VT_OK && r->writes) {
        whole.step = shard.step;
        r->opt = whole;
        rc = run_dir_checkpoint(r, path, n, better);
        r->opt = shard;
    }
    vt_optim_free(&whole);
    return rc;
}

void dist_report(run_t *r, int64_t steps)
{
    if (!r->gsum.active || steps < 1) return;
    /* the sum alone (no backward to hide behind), on the gradient buffer the run no longer needs */
    const double alone = vt_grad_sum_alone(&r->gsum);
    if (alone < 0) return;
    const int A = r->cfg.accum_steps;
    const double waited = r->gsum.waited / (double)steps, whole = alone * A, hidden = 1 - waited / whole;
    fprintf(r->out, "gradient sum over %d ranks: %.2f MB per step in %d bucket%s; a step waited %.2f ms for it, the sum "
                    "alone takes %.2f ms (measured after the run): %.0f%% hidden behind backward\n",
            r->d->size, 4e-6 * (double)r->model.params.numel * A, r->gsum.sum.nb, r->gsum.sum.nb == 1 ? "" : "s", 1e3 * waited,
            1e3 * whole, 100 * (hidden > 0 ? hidden : 0));
}

void dist_free(run_t *r)
{
    free(r->losses);
    r->losses = NULL;
    vt_grad_sum_free(&r->gsum);
}
