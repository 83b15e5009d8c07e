/* trainer.c - the training loop behind vit-train: the config and its command-line overrides, the
 * data, model and optimizer, then the loop of steps (accumulation, clipping, the schedule) with its
 * evaluation and checkpoint cadence. The run folder (lock, refusals, resume, every file written) is
 * run_dir.c; what is printed is run_report.c; what a rank of a data-parallel run adds, trainer_dist.c. */
#include "trainer_internal.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

void vt_train_request_stop(int signo) { stop_signal = signo ? signo : SIGINT; }

static char *config_text(const vt_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return NULL;
    vt_config_write(c, m);
    fclose(m);
    return buf;
}

static int open_data(run_t *r, uint64_t seed)
{
    vt_config *c = &r->cfg;
    vt_vit_config mc;   /* for the input shape; the classes may still come from the data */
    if (vt_config_model(c, &mc) != VT_OK) return VT_ERR;
    if (vt_config_open_data(c, &mc, "train", &r->train_ds) != VT_OK) {
        if (access(c->data_path, F_OK) != 0) {   /* say where the path came from, and from where it is read */
            char cwd[1024] = "";
            if (c->data_path[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
            return vt_err_prefix("[data] path = %s%s%s: ", c->data_path, cwd[0] ? ", relative to " : "", cwd);
        }
        return VT_ERR;
    }
    vt_dataset *ds = r->train_ds;
    if (!ds) return vt_err("%s: no training split found", c->data_path);
    if (c->num_classes == 0) c->num_classes = ds->num_classes;
    if (ds->num_classes > c->num_classes)
        return vt_err("%s: the dataset has %d classes, the model's head only %d ([model] num_classes)", ds->path,
                      ds->num_classes, c->num_classes);
    /* the test split is read with the training split's classes */
    if (vt_config_open_data(c, &mc, "test", &r->test_ds) != VT_OK) return VT_ERR;
    int64_t *tr = NULL, *va = NULL, ntr = ds->count, nva = 0;
    if (!r->test_ds && c->val_fraction > 0 &&
        vt_split_indices(ds->count, c->val_fraction, seed, &tr, &ntr, &va, &nva) != VT_OK)
        return VT_ERR;
    if (!r->test_ds && c->val_fraction > 0 && nva == 0) {
        free(tr);
        free(va);
        return vt_err("%s: [data] val_fraction = %g of %lld images holds out none (no evaluation would run)", ds->path,
                      c->val_fraction, (long long)ds->count);
    }
    int64_t *sub = NULL;   /* [data] train_fraction */
    int rc = vt_config_train_subset(c, tr, ntr, seed, &sub, &ntr);
    /* this rank's parts of every batch: [rank n, rank n + n) of ranks x n (n replicas per rank) */
    const int n = c->replicas, first = r->d->rank * n, parts = r->d->size * n;
    if (rc == VT_OK) rc = vt_config_loader_share(c, &mc, ds, sub ? sub : tr, ntr, true, seed, first, n, parts, &r->train_l);
    free(sub);
    if (rc == VT_OK && r->test_ds)
        rc = vt_config_loader_share(c, &mc, r->test_ds, NULL, 0, false, seed, first, n, parts, &r->eval_l);
    else if (rc == VT_OK && nva > 0)
        rc = vt_config_loader_share(c, &mc, ds, va, nva, false, seed, first, n, parts, &r->eval_l);
    free(tr);
    free(va);
    if (rc == VT_OK && vt_loader_batches(r->train_l) < c->accum_steps)
        rc = vt_err("%s: %lld training samples make fewer than one optimizer step of %d x %d", ds->path,
                    (long long)vt_loader_size(r->train_l), c->batch_size, c->accum_steps);
    return rc;
}

static int build_optimizer(run_t *r)
{
    vt_config *c = &r->cfg;
    vt_optim_config oc;
    vt_optim_config_defaults(&oc);
    if (vt_optim_kind_parse(c->optimizer, &oc.kind) != VT_OK) return VT_ERR;
    oc.lr = c->lr;
    oc.beta1 = c->beta1;
    oc.beta2 = c->beta2;
    oc.eps = c->eps;
    oc.weight_decay = c->weight_decay;
    oc.momentum = c->momentum;
    oc.dampening = c->dampening;
    oc.nesterov = c->nesterov;
    if (vt_optim_init(&r->opt, &oc, r->model.params.numel) != VT_OK) return vt_err_prefix("[optim]: ");
    r->have_opt = true;
    /* extra no-decay patterns, comma-separated (a VT_STR value holds at most VT_STR / 2 of them) */
    char pats[VT_STR], *pv[VT_STR / 2 + 1];
    int np = 0;
    snprintf(pats, sizeof pats, "%s", c->no_weight_decay);
    for (char *tok = strtok(pats, ", "); tok && np < (int)(sizeof pv / sizeof pv[0]); tok = strtok(NULL, ", "))
        pv[np++] = tok;
    for (int i = 0; i < r->model.params.count; i++) {
        const vt_param_info *pi = &r->model.params.info[i];
        bool d = vt_optim_decays(pi->name, pi->ndim, (const char *const *)pv, np);
        const double scale = c->layer_decay < 1 ? vt_layer_decay_scale(pi->name, r->model.cfg.depth, c->layer_decay) : 1.0;
        if (vt_optim_add_segment_scaled(&r->opt, pi->offset, pi->numel, d, scale) != VT_OK) return VT_ERR;
    }
    /* schedule */
    int64_t micro = vt_loader_batches(r->train_l);
    r->steps_per_epoch = micro / c->accum_steps;
    r->total_steps = (int64_t)c->epochs * r->steps_per_epoch;
    if (c->max_steps > 0 && c->max_steps < r->total_steps) r->total_steps = c->max_steps;
    if (c->max_steps > 0 && c->max_steps > r->total_steps) r->total_steps = c->max_steps;
    memset(&r->sched, 0, sizeof r->sched);
    if (vt_sched_kind_parse(c->schedule, &r->sched.kind) != VT_OK) return VT_ERR;
    double base = c->lr;
    if (c->scale_lr) base = vt_lr_scale(base, (int64_t)c->batch_size * c->accum_steps);
    r->sched.base_lr = base;
    r->sched.warmup_lr_init = c->warmup_lr_init;
    r->sched.lr_min = c->lr_min;
    if (c->scale_lr && c->lr_min > base && r->sched.kind != VT_SCHED_CONSTANT)   /* config.c compared the unscaled lr */
        return vt_err("[schedule] lr_min = %g is above the scaled lr (%g = [optim] lr %g x global batch %lld / 256, "
                      "scale_lr): the decay would raise the rate", c->lr_min, base, c->lr,
                      (long long)c->batch_size * c->accum_steps);
    r->sched.warmup_steps = c->warmup_steps ? c->warmup_steps : (int64_t)llround(c->warmup_epochs * r->steps_per_epoch);
    r->sched.total_steps = r->total_steps - r->sched.warmup_steps;
    if (r->sched.warmup_steps >= r->total_steps && r->sched.warmup_steps > 0)
        return vt_err("[schedule] the warmup (%lld steps) is not shorter than the run (%lld steps)",
                      (long long)r->sched.warmup_steps, (long long)r->total_steps);
    return vt_schedule_check(&r->sched) == VT_OK ? VT_OK : vt_err_prefix("[schedule]: ");
}

static void cleanup(run_t *r)
{
    vt_loader_free(r->train_l);
    vt_loader_free(r->eval_l);
    vt_dataset_close(r->train_ds);
    vt_dataset_close(r->test_ds);
    if (r->have_model) vt_vit_free(&r->model);
    if (r->have_opt) vt_optim_free(&r->opt);
    if (r->have_graph) vt_vit_replicas_free(&r->rep);
    free(r->cfg_text);
    recipe_free(r);
    dist_free(r);
    if (r->lock_fd > 0) close(r->lock_fd);   /* releases the folder */
}


/* the config file, --set, --seed, --threads and --init over it, checked; *init_unused when a resumed run's
 * config names weights it started from (the checkpoint holds them now) */
static int load_config(run_t *r, const vt_train_args *a, bool *init_unused)
{
    vt_config *c = &r->cfg;
    vt_config_defaults(c);
    if (!a->config_path) return vt_err("no config given (--config FILE)");
    if (vt_config_load(c, a->config_path) != VT_OK) return VT_ERR;
    for (int i = 0; i < a->nsets; i++)
        if (vt_config_set(c, a->sets[i]) != VT_OK) return VT_ERR;
    if (a->seed >= 0) c->seed = (int)a->seed;
    if (a->threads >= 0) c->threads = a->threads;
    if (a->init && snprintf(c->init, sizeof c->init, "%s", a->init) >= (int)sizeof c->init)
        return vt_err("--init %.64s...: path too long (at most %zu bytes)", a->init, sizeof c->init - 1);
    if (a->resume && a->init) return vt_err("--resume and --init together: resume continues a run, init starts a new one");
    *init_unused = a->resume && c->init[0];
    return vt_config_validate(c);
}

/* the data, then the model the config describes (classes from the data when not given), its optimizer,
 * graphs and the state of a new run */
static int build(run_t *r)
{
    vt_config *c = &r->cfg;
    if (open_data(r, (uint64_t)c->seed) != VT_OK) return VT_ERR;
    vt_vit_config mc;
    if (vt_config_model(c, &mc) != VT_OK || vt_vit_init(&r->model, &mc) != VT_OK) return VT_ERR;
    r->have_model = true;
    vt_rng init_rng;
    vt_rng_seed(&init_rng, (uint64_t)c->seed);
    vt_vit_init_weights(&r->model, &init_rng);
    if (build_optimizer(r) != VT_OK) return VT_ERR;
    const int R = r->d->size;
    if (c->batch_size < c->replicas * R)
        return vt_err("[train] replicas = %d%s is more than [data] batch_size = %d", c->replicas * R,
                      R > 1 ? " (replicas x ranks)" : "", c->batch_size);
    if (vt_vit_replicas_init(&r->rep, &r->model, c->replicas, 64u << 20, c->recompute_attention) != VT_OK) return VT_ERR;
    r->have_graph = true;
    if (recipe_init(r) != VT_OK) return VT_ERR;
    if (dist_grad_init(r) != VT_OK) return VT_ERR;
    r->cfg_text = config_text(c);
    r->st.seed = c->seed;
    r->st.train_images = vt_loader_size(r->train_l);
    r->st.best_metric = -1;
    r->st.rng = init_rng;
    return VT_OK;
}

/* resume: everything; init: weights only (a new run, or --resume auto before the first checkpoint) */
static int resume_or_init(run_t *r, const vt_train_args *a, bool init_unused)
{
    const vt_config *c = &r->cfg;
    bool resumed = false;
    if (r->d->rank > 0) return dist_share_state(r);   /* rank 0 reads and sends */
    if (a->resume && run_dir_resume(r, a->resume, &resumed) != VT_OK) return VT_ERR;
    if (resumed && init_unused)
        fprintf(r->out, "[finetune] init = %s not loaded: the run continues from its checkpoint\n", c->init);
    if (!resumed && c->init[0] && vt_finetune_init(&r->model, c->init, c, r->out) != VT_OK)
        return vt_err_prefix("%s ", a->init ? "--init:" : "[finetune] init:");
    return dist_share_state(r);
}

/* timers and running sums of the loop */
typedef struct {
    double t_start, t_log;
    double waited, t_eval, t_eval_log;   /* loader waits of finished epochs; time spent evaluating (all, and up to the last log row) */
    int64_t imgs_since_log, steps_done, steps_since_log;
    double loss_since_log;
    vt_eval_result final_ev;             /* the evaluation after the last step */
    bool have_final;
    bool eval_failed;                    /* the evaluation could not read its data (an image that fails to decode) */
} loop_t;

typedef struct {
    double loss, gnorm, lr;
} step_result;

/* one optimizer step: accum_steps micro-batches forward and backward (this rank's parts of each, their
 * gradients summed over the ranks), the gradient norm, the update */
static int train_step(run_t *r, step_result *s)
{
    const vt_config *c = &r->cfg;
    const int B = c->batch_size;
    vt_paramset_zero_grad(&r->model.params);
    for (int k = 0; k < c->accum_steps; k++) {
        float *x;
        int *y, bs;
        /* the ranks' sum of the micro-batches so far is rank 0's to add to: the others add only their part */
        if (k > 0 && r->d->rank > 0) vt_paramset_zero_grad(&r->model.params);
        if (vt_loader_next(r->train_l, &x, &y, NULL, &bs) != VT_OK) return VT_ERR;
        if (vt_loader_full_size(r->train_l) != B)
            return vt_err("internal: loader returned %d images at batch %lld of epoch %lld",
                          vt_loader_full_size(r->train_l), (long long)r->st.batch_in_epoch, (long long)r->st.epoch);
        const float *targets;
        if (recipe_mix(r, x, y, k, &targets) != VT_OK) return VT_ERR;
        double loss;
        /* the step's key for patch dropout: a function of the seed and the micro-batch's number */
        const uint64_t key = (uint64_t)r->st.seed * 0xD1B54A32D192ED03ull ^
                             ((uint64_t)r->st.step * (uint64_t)c->accum_steps + (uint64_t)k);
        if (vt_vit_replicas_train_soft(&r->rep, x, r->model.objective->labels ? y : NULL, targets, B,
                                       (float)c->label_smoothing, 1.0f / (float)c->accum_steps, key, &loss) != VT_OK ||
            dist_grad_sum(r) != VT_OK)
            return VT_ERR;
        memcpy(r->losses + (size_t)k * r->rep.n, r->rep.part_loss, sizeof(double) * (size_t)r->rep.n);
    }
    if (dist_step_loss(r, (int)stop_signal, &s->loss) != VT_OK) return VT_ERR;
    s->gnorm = vt_grad_norm(r->model.params.grad, r->model.params.numel);   /* non-finite exactly when a gradient is */
    if (!isfinite(s->gnorm)) {
        r->shared_failure = true;   /* the summed gradients: the same on every rank */
        return vt_err("non-finite gradient at step %lld (epoch %lld): stopping; %s", (long long)r->st.step + 1,
                      (long long)r->st.epoch + 1, run_dir_kept(r));
    }
    s->lr = vt_lr_at(&r->sched, r->st.step);
    /* clipping folded into the update: the same products as scaling the gradients first */
    if (dist_optim_step(r, s->lr, vt_clip_coef(s->gnorm, c->clip_grad_norm)) != VT_OK) return VT_ERR;
    r->st.step++;
    recipe_ema_update(r);
    r->st.batch_in_epoch += c->accum_steps;
    return VT_OK;
}

/* the evaluation cadence: every eval_every_steps (else at each epoch's end) and after the last step;
 * *did says whether ev holds one */
static int maybe_eval(run_t *r, loop_t *lp, bool epoch_end, bool last, vt_eval_result *ev, bool *did)
{
    const vt_config *c = &r->cfg;
    *did = r->eval_l && (c->eval_every_steps > 0 ? r->st.step % c->eval_every_steps == 0 || last : epoch_end || last);
    double t_ev = vt_now();
    if (*did && vt_evaluate_ranks(&r->rep, r->eval_l, r->d, ev) != VT_OK) {
        /* its data, not the model: the step is saved before the run ends (a rank's failure in a data-parallel
         * run stops the job at once, the last checkpoint kept) */
        lp->eval_failed = r->d->size == 1;
        return VT_ERR;
    }
    if (*did && r->ema && recipe_ema_eval(r, &r->ema_ev) != VT_OK) {
        lp->eval_failed = r->d->size == 1;
        return VT_ERR;
    }
    r->shared_failure = *did && !isfinite(ev->v[0]);   /* gathered: every rank's */
    if (*did && !isfinite(ev->v[0]))   /* never a checkpoint, let alone the best */
        return vt_err("evaluation loss is %s after step %lld: the model has diverged; stopping; %s",
                      isnan(ev->v[0]) ? "nan" : "infinite", (long long)r->st.step, run_dir_kept(r));
    if (*did && last) {
        lp->final_ev = *ev;
        lp->have_final = true;
    }
    lp->t_eval += vt_now() - t_ev;
    return VT_OK;
}

/* a metrics.csv row and a progress line every log_every_steps, at an evaluation and after the last step */
static int log_row(run_t *r, loop_t *lp, const step_result *s, const vt_eval_result *ev, bool did_eval, bool last)
{
    if (!(r->st.step % r->cfg.log_every_steps == 0 || did_eval || last)) return VT_OK;
    double now = vt_now();
    double ips = lp->imgs_since_log / (now - lp->t_log - (lp->t_eval - lp->t_eval_log));   /* training time only */
    double eta = (now - lp->t_start) / lp->steps_done * (r->total_steps - r->st.step);
    char row[768], evcols[256], emacols[256];
    vt_eval_csv(r->model.objective, did_eval ? ev : NULL, false, evcols, sizeof evcols);
    recipe_csv(r, did_eval ? &r->ema_ev : NULL, false, emacols, sizeof emacols);
    snprintf(row, sizeof row, "%lld,%lld,%.9g,%.9g,%.9g,%.1f%s%s\n", (long long)r->st.step, (long long)r->st.epoch + 1,
             s->loss, s->lr, s->gnorm, ips, evcols, emacols);
    if (run_dir_metrics_row(r, row) != VT_OK) return VT_ERR;
    run_progress(r, s->loss, lp->loss_since_log / (double)lp->steps_since_log, s->lr, s->gnorm, ips, eta);
    if (did_eval) run_print_eval(r, ev);   /* after the step's own line */
    if (did_eval && r->ema) run_print_eval_ema(r, &r->ema_ev);
    lp->t_log = now;
    lp->t_eval_log = lp->t_eval;
    lp->imgs_since_log = 0;
    lp->loss_since_log = 0;
    lp->steps_since_log = 0;
    return VT_OK;
}

/* the checkpoint cadence: every every_steps (else at each epoch's end), a new best, the last step, a stop */
static int maybe_checkpoint(run_t *r, bool epoch_end, bool last_or_stop, bool better)
{
    const vt_config *c = &r->cfg;
    if (!(last_or_stop || better || (c->every_steps > 0 ? r->st.step % c->every_steps == 0 : epoch_end))) return VT_OK;
    char path[4200];
    if (dist_checkpoint(r, path, sizeof path, better) != VT_OK) return VT_ERR;
    if (!r->writes) return VT_OK;   /* rank 0 writes */
    if (r->tty) fputc('\n', r->out);
    fprintf(r->out, "checkpoint %s%s\n", path, better ? " (best so far)" : "");
    return VT_OK;
}

/* an evaluation that cannot read its data (a held-out image that passed the open probe but fails to decode)
 * ends the run, but not before the step it followed is saved (its metrics row and a checkpoint), so that
 * --resume auto goes on from there once the image is fixed or skipped: never less kept than computed */
static vt_train_status eval_failed(run_t *r, loop_t *lp, const step_result *s, bool epoch_end)
{
    char why[2048], path[4200];
    snprintf(why, sizeof why, "%s", vt_errmsg());
    const vt_eval_result none = {0};
    int rc = log_row(r, lp, s, &none, false, true);
    if (epoch_end) {
        r->st.epoch++;
        r->st.batch_in_epoch = 0;
    }
    if (rc == VT_OK) rc = run_dir_checkpoint(r, path, sizeof path, false);
    if (rc != VT_OK) {
        char ck[1024];
        snprintf(ck, sizeof ck, "%s", vt_errmsg());
        vt_err("evaluation after step %lld: %s; stopping, and the step's checkpoint could not be written either: "
               "%s; %s", (long long)r->st.step, why, ck, run_dir_kept(r));
        return VT_TRAIN_FAILED;
    }
    if (r->tty) fputc('\n', r->out);
    fprintf(r->out, "checkpoint %s\n", path);
    vt_err("evaluation after step %lld: %s; stopping: the step is saved in %s; fix or remove that image (or set "
           "[data] bad_images = skip) and continue with: vit-train --config %s/config.ini --resume auto",
           (long long)r->st.step, why, path, r->out_dir);
    return VT_TRAIN_FAILED;
}

static vt_train_status stopped(run_t *r, const vt_train_args *a)
{
    if (stop_signal)
        fprintf(r->out, "stopped by signal %d after step %lld", (int)stop_signal, (long long)r->st.step);
    else
        fprintf(r->out, "stopped after %lld steps (--stop-after) at step %lld", a->stop_after, (long long)r->st.step);
    fprintf(r->out, "; continue with: vit-train --config %s/config.ini --resume auto\n", r->out_dir);
    return VT_TRAIN_INTERRUPTED;
}

/* after the loop: the final evaluation (the one after the last step, or one now when a resumed run had
 * already ended) and the loader's share of the training time */
static vt_train_status finish(run_t *r, loop_t *lp, int64_t skipped0)
{
    FILE *out = r->out;
    lp->waited += vt_loader_wait_seconds(r->train_l);   /* its workers are stopped before its counters are read */
    double t_train = vt_now() - lp->t_start - lp->t_eval;
    vt_loader_free(r->train_l);
    r->train_l = NULL;
    if (r->tty) fputc('\n', out);
    if (r->eval_l) {
        vt_eval_result ev = lp->final_ev;
        if (!lp->have_final) {
            if (vt_evaluate_ranks(&r->rep, r->eval_l, r->d, &ev) != VT_OK) return VT_TRAIN_FAILED;
            run_print_eval(r, &ev);
        }
        char m[256];
        vt_eval_format(&ev, true, m, sizeof m);
        fprintf(out, "final %s %s: %s  (after %lld step%s; this invocation %.1f s)\n", r->test_ds ? "test" : "validation",
                ev.obj->summary, m, (long long)r->st.step, r->st.step == 1 ? "" : "s", vt_now() - lp->t_start);
        if (r->ema && !lp->have_final && recipe_ema_eval(r, &r->ema_ev) != VT_OK) return VT_TRAIN_FAILED;
        if (r->ema) vt_eval_format(&r->ema_ev, true, m, sizeof m);
        if (r->ema) fprintf(out, "final %s %s of the EMA: %s\n", r->test_ds ? "test" : "validation", ev.obj->summary, m);
    }
    fprintf(out, "data loader wait: %.2f s of %.1f s of training (%.1f%%; evaluation not counted)\n", lp->waited,
            t_train, t_train > 0 ? 100 * lp->waited / t_train : 0.0);
    dist_report(r, lp->steps_done);
    if (r->train_ds->skipped + (r->test_ds ? r->test_ds->skipped : 0) > skipped0) {
        vt_data_warn_skipped(out, "", r->train_ds, "training data");
        vt_data_warn_skipped(out, "", r->test_ds, "test data");
    }
    return VT_TRAIN_DONE;
}

static vt_train_status train_loop(run_t *r, const vt_train_args *a)
{
    const vt_config *c = &r->cfg;
    int64_t skipped0 = r->train_ds->skipped + (r->test_ds ? r->test_ds->skipped : 0);   /* before the workers run */
    if (vt_loader_start(r->train_l, r->st.epoch, r->st.batch_in_epoch) != VT_OK) return VT_TRAIN_FAILED;
    loop_t lp = {0};
    lp.t_start = lp.t_log = vt_now();
    while (r->st.step < r->total_steps) {
        step_result s = {0};
        if (train_step(r, &s) != VT_OK) return VT_TRAIN_FAILED;
        lp.steps_done++;
        lp.imgs_since_log += (int64_t)c->batch_size * c->accum_steps;
        lp.loss_since_log += s.loss;
        lp.steps_since_log++;
        const bool epoch_end = r->st.batch_in_epoch >= r->steps_per_epoch * c->accum_steps;
        const bool last = r->st.step >= r->total_steps;
        if (a->dry_run) {
            fprintf(r->out, "dry run: one step done, loss %.4f, grad norm %.4f, lr %.3e; nothing written\n", s.loss,
                    s.gnorm, s.lr);
            return VT_TRAIN_DONE;
        }
        vt_eval_result ev = {0};
        bool did_eval;
        if (maybe_eval(r, &lp, epoch_end, last, &ev, &did_eval) != VT_OK)
            return lp.eval_failed ? eval_failed(r, &lp, &s, epoch_end) : VT_TRAIN_FAILED;
        if (log_row(r, &lp, &s, &ev, did_eval, last) != VT_OK) return VT_TRAIN_FAILED;
        const vt_objective *obj = r->model.objective;
        const bool better = did_eval && vt_objective_better(obj, ev.v[obj->best], r->st.best_metric);
        if (better) {
            r->st.best_metric = ev.v[obj->best];
            r->st.best_step = r->st.step;
        }
        if (epoch_end) {
            r->st.epoch++;
            r->st.batch_in_epoch = 0;
        }
        /* a data-parallel run stops where every rank saw the request (exchanged in the step) */
        const bool stop = (r->d->size > 1 ? r->stop_agreed : stop_signal) != 0 ||
                          (a->stop_after > 0 && lp.steps_done >= a->stop_after);
        if (maybe_checkpoint(r, epoch_end, last || stop, better) != VT_OK) return VT_TRAIN_FAILED;
        if (stop) return stopped(r, a);
        if (epoch_end && !last) {
            lp.waited += vt_loader_wait_seconds(r->train_l);
            if (vt_loader_start(r->train_l, r->st.epoch, 0) != VT_OK) return VT_TRAIN_FAILED;
        }
    }
    return finish(r, &lp, skipped0);
}

static vt_train_status run(run_t *r, const vt_train_args *a)
{
    bool init_unused = false;
    if (load_config(r, a, &init_unused) != VT_OK) return VT_TRAIN_FAILED;
    if (a->print_config) {
        vt_config_write(&r->cfg, r->out);
        return VT_TRAIN_DONE;
    }
    char *text = config_text(&r->cfg);
    int rc = text ? dist_start(r, text) : vt_err("out of memory");   /* checks, threads */
    free(text);
    if (rc != VT_OK) return VT_TRAIN_FAILED;
    if (run_dir_choose(r, a->out_dir, a->config_path) != VT_OK) return VT_TRAIN_FAILED;
    if ((r->d->rank == 0 && run_dir_open(r, a->resume != NULL) != VT_OK) || build(r) != VT_OK ||
        resume_or_init(r, a, init_unused) != VT_OK || run_dir_begin(r) != VT_OK) {
        run_dir_abandon(r);   /* a refused start leaves no folder or lock file behind */
        return VT_TRAIN_FAILED;
    }
    recipe_ema_start(r, r->out);
    run_banner(r, a->dry_run);
    return train_loop(r, a);
}

vt_train_status vt_train_run(const vt_train_args *a, FILE *out)
{
    run_t R;
    run_t *r = &R;
    memset(r, 0, sizeof *r);
    static const vt_dist alone = {.rank = 0, .size = 1, .nhosts = 1, .local_size = 1};
    r->d = a->dist ? a->dist : &alone;
    FILE *quiet = r->d->rank > 0 ? fopen("/dev/null", "w") : NULL;   /* the other ranks print nothing */
    r->out = quiet ? quiet : out;
    r->tty = r->d->size == 1 && isatty(fileno(r->out));   /* mpirun gives ranks a pty, whatever the user's output is */
    /* the one place that decides whether this process writes into the run folder (rank 0 of a
     * data-parallel run; never a dry run): run_dir.c's writers all test it */
    r->writes = !a->dry_run && r->d->rank == 0;
    vt_train_status status = run(r, a);
    if (a->failure_shared) *a->failure_shared = status == VT_TRAIN_FAILED && r->shared_failure;
    /* a message about config keys ("[schedule] ...") names the config it came from */
    if (status == VT_TRAIN_FAILED && vt_errmsg()[0] == '[' && r->cfg.source[0]) {
        char o[1100];
        vt_err_prefix("%s: ", vt_config_origin(&r->cfg, o, sizeof o));
    }
    cleanup(r);
    if (quiet) fclose(quiet);
    return status;
}
