/* trainer.c - the training loop behind vit-train: config, data, model, optimizer, schedule,
 * accumulation, clipping, evaluation, metrics.csv, checkpoints and exact resume. */
#include "train.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

void vt_train_request_stop(int signo) { stop_signal = signo ? signo : SIGINT; }

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return vt_err("%.64s...: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return vt_err("%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return vt_err("%s: cannot create: %s", buf, strerror(errno));
    return VT_OK;
}

/* write a whole text file atomically (tmp + rename) */
static int write_text_atomic(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return vt_err("%s: cannot write: %s", tmp, strerror(errno));
    int e = 0;
    if (fputs(text, f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        return vt_err("%s: cannot write: %s", path, strerror(e));
    }
    return VT_OK;
}

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

#define CSV_HEADER "step,epoch,loss,lr,grad_norm,img_per_s,eval_loss,eval_top1,eval_top5\n"

/* keep the rows of metrics.csv up to (and including) step, so a resumed run appends without
 * duplicating what it will redo */
static int metrics_truncate(const char *path, int64_t step)
{
    FILE *f = fopen(path, "r");
    if (!f) return VT_OK;
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char line[1024];
    bool first = true;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = false;
            fputs(CSV_HEADER, m);
            continue;
        }
        long long s = atoll(line);
        if (s <= step) fputs(line, m);
    }
    fclose(f);
    fclose(m);
    int r = write_text_atomic(path, out);
    free(out);
    return r;
}

/* is path the config.ini of a run folder (next to its metrics.csv or checkpoints)? Then dir is that folder */
static bool run_config_dir(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    if (strcmp(base, "config.ini") != 0) return false;
    int len = !slash ? 1 : slash == path ? 1 : (int)(slash - path);
    if (snprintf(dir, n, "%.*s", len, !slash ? "." : slash == path ? "/" : path) >= (int)n) return false;
    char p[4200];
    if (snprintf(p, sizeof p, "%s/metrics.csv", dir) >= (int)sizeof p) return false;
    int nck = 0;
    return access(p, F_OK) == 0 || (vt_ckpt_count(dir, &nck) == VT_OK && nck > 0);
}

/* a new run (no --resume) never writes over another run's files: its config.ini, metrics.csv and
 * checkpoints would be mixed with the new ones (and pruned) */
static int refuse_used_dir(const char *dir)
{
    int nckpt = 0;
    if (vt_ckpt_count(dir, &nckpt) != VT_OK) return VT_ERR;
    const char *names[] = {"config.ini", "metrics.csv"};
    char found[64] = "";
    for (int i = 0; i < 2; i++) {
        char p[4200];
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) continue;
        if (access(p, F_OK) == 0) snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s",
                                           found[0] ? ", " : "", names[i]);
    }
    if (!nckpt && !found[0]) return VT_OK;
    return vt_err("%s already holds a run (%s%s%d checkpoint%s): continue it with --resume auto, or train "
                  "into another folder with --out DIR (or remove this one)", dir, found, found[0] ? ", " : "", nckpt,
                  nckpt == 1 ? "" : "s");
}

typedef struct {
    vt_config cfg;
    char out_dir[2048], metrics_path[4200];
    vt_dataset *train_ds, *test_ds;
    vt_loader *train_l, *eval_l;
    vt_vit model;
    bool have_model;
    vt_optim opt;
    bool have_opt;
    vt_vit_replicas rep;   /* the training step's and evaluation's graphs */
    bool have_graph;
    vt_schedule sched;
    int64_t steps_per_epoch, total_steps;
    vt_train_state st;
    char *cfg_text;
    char best_path[4200];
    FILE *out;
    bool tty;
    int lock_fd;   /* > 0 while the out folder is locked */
} run_t;

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
    int rc = vt_config_loader(c, &mc, ds, tr, ntr, true, seed, &r->train_l);
    if (rc == VT_OK && r->test_ds)
        rc = vt_config_loader(c, &mc, r->test_ds, NULL, 0, false, seed, &r->eval_l);
    else if (rc == VT_OK && nva > 0)
        rc = vt_config_loader(c, &mc, ds, va, nva, false, seed, &r->eval_l);
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
        if (vt_optim_add_segment(&r->opt, pi->offset, pi->numel, d) != VT_OK) return VT_ERR;
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

/* write the checkpoint of this step (the new best when better), then prune the old ones */
static int save_checkpoint(run_t *r, char *path, size_t n, bool better)
{
    vt_h5_lock();
    int rc = vt_ckpt_write(r->out_dir, &r->model, &r->opt, &r->st, r->cfg_text, r->cfg.deflate, path, n);
    if (rc == VT_OK && better) snprintf(r->best_path, sizeof r->best_path, "%s", path);
    if (rc == VT_OK)
        rc = vt_ckpt_prune(r->out_dir, r->cfg.keep_last, r->cfg.keep_best ? r->best_path : NULL, r->st.step);
    vt_h5_unlock();
    return rc;
}

/* the step's loss and the mean since the previous line (avg; timm's is the mean since the epoch began) */
static void progress(run_t *r, int64_t step, double loss, double avg, double lr, double gnorm, double ips, double eta)
{
    int64_t e = r->st.epoch + 1;
    if (r->tty) {
        fprintf(r->out,
                "\r\033[Kepoch %lld  step %lld/%lld  loss %.4f (avg %.4f)  lr %.3e  grad %.3f  %.0f img/s  ETA %02d:%02d:%02d",
                (long long)e, (long long)step, (long long)r->total_steps, loss, avg, lr, gnorm, ips, (int)(eta / 3600),
                (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    } else {
        fprintf(r->out, "epoch %lld step %lld/%lld loss %.4f (avg %.4f) lr %.3e grad_norm %.3f img/s %.0f eta %.0fs\n",
                (long long)e, (long long)step, (long long)r->total_steps, loss, avg, lr, gnorm, ips, eta);
    }
    fflush(r->out);
}

static int append_metrics(run_t *r, const char *row)
{
    FILE *f = fopen(r->metrics_path, "a");
    if (!f) return vt_err("%s: cannot append: %s", r->metrics_path, strerror(errno));
    if (ftell(f) == 0) fputs(CSV_HEADER, f);
    fputs(row, f);
    fclose(f);
    return VT_OK;
}

/* what a stop on a non-finite value leaves: "the last checkpoint (...) is kept", or that there is none */
static const char *kept(const run_t *r)
{
    static char buf[4400];
    char path[4200], skipped[8];
    bool found = false;
    vt_h5_lock();   /* loader workers may be reading an HDF5 dataset */
    int rc = vt_ckpt_find_latest(r->out_dir, path, sizeof path, &found, skipped, sizeof skipped);
    vt_h5_unlock();
    if (rc == VT_OK && found)
        snprintf(buf, sizeof buf, "the last checkpoint, %s, is kept", path);
    else
        snprintf(buf, sizeof buf, "no checkpoint was written before it");
    return buf;
}

static int run_eval(run_t *r, vt_eval_result *ev)
{
    if (!r->eval_l) return VT_ERR;
    return vt_evaluate(&r->rep, r->eval_l, ev);
}

static void print_eval(run_t *r, const vt_eval_result *ev)
{
    if (r->tty) fputc('\n', r->out);
    fprintf(r->out, "eval after step %lld: loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%lld images)\n",
            (long long)r->st.step, ev->loss, ev->top1, ev->top5, (long long)ev->count);
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
    if (r->lock_fd > 0) close(r->lock_fd);   /* releases the folder */
}

/* one trainer per run folder: an exclusive lock on <out>/.vit-train.lock for the whole run (released
 * by the system however the process ends), holding the owner's pid for the message */
static int lock_dir(run_t *r)
{
    char p[4200];
    if (snprintf(p, sizeof p, "%s/.vit-train.lock", r->out_dir) >= (int)sizeof p)
        return vt_err("%.64s...: output directory path too long", r->out_dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);   /* never through a link to another file */
    if (fd < 0) return vt_err("%s: cannot create the lock file: %s", p, strerror(errno));
    struct stat st;   /* nor a hard link to one: the pid is written into it */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_size > 64) {
        close(fd);
        return vt_err("%s: not a lock file of vit-train (a link to another file, or another file): remove it", p);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t k = pread(fd, pid, sizeof pid - 1, 0);
        pid[k > 0 ? k : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        char who[48] = "";
        if (pid[0]) snprintf(who, sizeof who, " (pid %.20s)", pid);
        if (e == EWOULDBLOCK)
            return vt_err("%s: another vit-train%s is writing to this folder (two runs would mix their checkpoints "
                          "and metrics); wait for it, or give another --out", r->out_dir, who);
        return vt_err("%s: cannot lock: %s", p, strerror(e));
    }
    char pid[32];
    int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)k, 0) != k) { /* the pid is only for the message */ }
    r->lock_fd = fd;
    /* checkpoints a killed trainer was writing (never renamed into place): nobody else writes here now */
    DIR *d = opendir(r->out_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && n > 7 && strcmp(e->d_name + n - 7, ".h5.tmp") == 0 &&
            snprintf(p, sizeof p, "%s/%s", r->out_dir, e->d_name) < (int)sizeof p)
            unlink(p);
    }
    if (d) closedir(d);
    return VT_OK;
}


/* A resumed run continues the data order and schedule of its checkpoint: they follow from the seed, the
 * training set, the batch and accumulation (and the held-out split); any of those changed would silently
 * make another run, or point past the end of an epoch. text: the checkpoint's config. */
static int same_data_order(const run_t *r, const char *ckpt, const char *text)
{
    const vt_config *c = &r->cfg;
    const char *hint = "resume with the run's own config (--config <run folder>/config.ini), or start a new run";
    if (r->st.seed != c->seed)
        return vt_err("%s: the run was trained with [train] seed = %lld, the config says %d (%s)", ckpt,
                      (long long)r->st.seed, c->seed, hint);
    const int64_t n = vt_loader_size(r->train_l);
    if (r->st.train_images > 0 && r->st.train_images != n)
        return vt_err("%s: the run was trained on %lld training images, %s now holds %lld (the data order depends on "
                      "them: %s)", ckpt, (long long)r->st.train_images, c->data_path, (long long)n, hint);
    vt_config old;
    vt_config_defaults(&old);
    if (!text || vt_config_load_text(&old, text, ckpt) != VT_OK) return VT_OK;   /* no usable record: as before */
    const struct { const char *key; double was, is; } keys[] = {
        {"[data] batch_size", old.batch_size, c->batch_size},
        {"[optim] accum_steps", old.accum_steps, c->accum_steps},
        {"[data] val_fraction", old.val_fraction, c->val_fraction},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (keys[i].was != keys[i].is)
            return vt_err("%s: the run was trained with %s = %g, the config says %g (the data order depends on it: %s)",
                          ckpt, keys[i].key, keys[i].was, keys[i].is, hint);
    /* another path may hold the same images (a moved copy): said, not refused; its size was compared above */
    if (strcmp(old.data_path, c->data_path) != 0)
        fprintf(r->out, "warning: the run was trained on [data] path = %s, the config says %s: the data order assumes "
                        "the same images in the same order\n", old.data_path, c->data_path);
    return VT_OK;
}

/* --resume PATH writes on into the out folder: only when that folder is PATH's own run (or empty), and
 * PATH is its newest checkpoint: else the new checkpoints and metrics rows would be mixed with (and pruned
 * against) another run's, or a later part of this one */
static int resume_here(const run_t *r, const char *ckpt)
{
    char here[PATH_MAX], there[PATH_MAX], dir[4200], newer[1024];
    const char *slash = strrchr(ckpt, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - ckpt) : 1, slash ? ckpt : ".");
    if (slash == ckpt) snprintf(dir, sizeof dir, "/");
    bool same = realpath(dir, there) && realpath(r->out_dir, here) && strcmp(here, there) == 0;
    if (!same && refuse_used_dir(r->out_dir) != VT_OK) {
        char why[1024];   /* vt_err must not read the message it writes */
        snprintf(why, sizeof why, "%s", vt_errmsg());
        return vt_err("--resume %s: %s (--out %s names another run's folder: resume into the checkpoint's own "
                      "folder, %s, or into an empty one)", ckpt, why, r->out_dir, dir);
    }
    if (vt_ckpt_newer(r->out_dir, r->st.step, newer, sizeof newer) != VT_OK) return VT_ERR;
    if (newer[0])
        return vt_err("--resume %s: %s holds later checkpoints of this run (%s): going on from step %lld would mix the "
                      "two; resume from the newest (--resume auto), or move the later ones away first", ckpt,
                      r->out_dir, newer, (long long)r->st.step);
    return VT_OK;
}

vt_train_status vt_train_run(const vt_train_args *a, FILE *out)
{
    run_t R;
    run_t *r = &R;
    memset(r, 0, sizeof *r);
    r->out = out;
    r->tty = isatty(fileno(out));
    vt_train_status status = VT_TRAIN_FAILED;
    vt_config *c = &r->cfg;
    vt_config_defaults(c);
    if (!a->config_path) {
        vt_err("no config given (--config FILE)");
        goto done;
    }
    if (vt_config_load(c, a->config_path) != VT_OK) goto done;
    for (int i = 0; i < a->nsets; i++)
        if (vt_config_set(c, a->sets[i]) != VT_OK) goto done;
    if (a->seed >= 0) c->seed = (int)a->seed;
    if (a->threads >= 0) c->threads = a->threads;
    if (a->init && snprintf(c->init, sizeof c->init, "%s", a->init) >= (int)sizeof c->init) {
        vt_err("--init %.64s...: path too long (at most %zu bytes)", a->init, sizeof c->init - 1);
        goto done;
    }
    if (a->resume && a->init) {
        vt_err("--resume and --init together: resume continues a run, init starts a new one");
        goto done;
    }
    /* a fine-tuning run's config names the weights it started from: resuming, the checkpoint holds them */
    const bool init_unused = a->resume && c->init[0];
    if (vt_config_validate(c) != VT_OK) goto done;
    if (a->print_config) {
        vt_config_write(c, out);
        status = VT_TRAIN_DONE;
        goto done;
    }
    if (c->threads > 0) vt_set_threads(c->threads);
    /* out dir */
    if (a->out_dir) {
        if (snprintf(r->out_dir, sizeof r->out_dir, "%s", a->out_dir) >= (int)sizeof r->out_dir) {
            vt_err("--out %.64s...: path too long (at most %zu bytes)", a->out_dir, sizeof r->out_dir - 1);
            goto done;
        }
    } else if (run_config_dir(a->config_path, r->out_dir, sizeof r->out_dir)) {
        /* the config.ini a run wrote: that run's folder */
    } else {
        const char *base = strrchr(a->config_path, '/');
        base = base ? base + 1 : a->config_path;
        snprintf(r->out_dir, sizeof r->out_dir, "runs/%.*s", (int)(strcspn(base, ".")), base);
    }
    if (!a->dry_run && (mkdir_p(r->out_dir) != VT_OK || lock_dir(r) != VT_OK)) goto done;
    if (!a->resume && refuse_used_dir(r->out_dir) != VT_OK) goto done;
    if (snprintf(r->metrics_path, sizeof r->metrics_path, "%s/metrics.csv", r->out_dir) >= (int)sizeof r->metrics_path) {
        vt_err("%.64s...: output directory path too long", r->out_dir);
        goto done;
    }

    /* data, then the model the config describes (classes from the data when not given) */
    if (open_data(r, (uint64_t)c->seed) != VT_OK) goto done;
    vt_vit_config mc;
    if (vt_config_model(c, &mc) != VT_OK || vt_vit_init(&r->model, &mc) != VT_OK) goto done;
    r->have_model = true;
    vt_rng init_rng;
    vt_rng_seed(&init_rng, (uint64_t)c->seed);
    vt_vit_init_weights(&r->model, &init_rng);
    if (build_optimizer(r) != VT_OK) goto done;
    if (c->batch_size < c->replicas) {
        vt_err("[train] replicas = %d is more than [data] batch_size = %d", c->replicas, c->batch_size);
        goto done;
    }
    if (vt_vit_replicas_init(&r->rep, &r->model, c->replicas, 64u << 20, c->recompute_attention) != VT_OK) goto done;
    r->have_graph = true;
    r->cfg_text = config_text(c);
    r->st.seed = c->seed;
    r->st.train_images = vt_loader_size(r->train_l);
    r->st.best_top1 = -1;
    r->st.rng = init_rng;

    /* resume: everything; init: weights only */
    char ckpt[4200] = "";
    bool found = false;
    if (a->resume) {
        found = true;
        if (strcmp(a->resume, "auto") == 0) {
            char skipped[2048];
            vt_h5_lock();
            int rc = vt_ckpt_find_latest(r->out_dir, ckpt, sizeof ckpt, &found, skipped, sizeof skipped);
            vt_h5_unlock();
            if (rc != VT_OK) goto done;
            if (!found && skipped[0]) {
                vt_err("resume auto: no readable checkpoint in %s: %s (move them away to start afresh, or give "
                       "--resume PATH)", r->out_dir, skipped);
                goto done;
            }
            if (skipped[0]) {   /* going on from an older one would overwrite or prune them */
                vt_err("resume auto: %s holds newer checkpoints that cannot be read: %s (move them away to resume from "
                       "%s, or give --resume PATH)", r->out_dir, skipped, ckpt);
                goto done;
            }
            if (!found) fprintf(out, "resume auto: no checkpoint in %s, starting fresh\n", r->out_dir);
        } else {
            snprintf(ckpt, sizeof ckpt, "%s", a->resume);
        }
        if (found) {
            vt_vit_config ck;
            vt_h5_lock();
            int rc = vt_ckpt_model_config(ckpt, &ck);
            if (rc == VT_OK) rc = vt_ckpt_check_arch(ckpt, &ck, &r->model.cfg, true);
            char *text = NULL;
            if (rc == VT_OK) rc = vt_ckpt_load(ckpt, &r->model, &r->opt, &r->st, &text);
            vt_h5_unlock();
            if (rc == VT_OK) rc = same_data_order(r, ckpt, text);
            free(text);
            if (rc == VT_OK && strcmp(a->resume, "auto") != 0) rc = resume_here(r, ckpt);
            if (rc != VT_OK) goto done;
            r->st.train_images = vt_loader_size(r->train_l);
            /* the best checkpoint so far stays protected from pruning after the resume */
            if (r->st.best_top1 >= 0) vt_ckpt_path(r->out_dir, r->st.best_step, r->best_path, sizeof r->best_path);
            fprintf(out, "resumed from %s at step %lld (epoch %lld, batch %lld)\n", ckpt, (long long)r->st.step,
                    (long long)r->st.epoch + 1, (long long)r->st.batch_in_epoch);
            if (init_unused) fprintf(out, "[finetune] init = %s not loaded: the run continues from its checkpoint\n", c->init);
        }
    }
    if (!found && c->init[0]) {   /* a new run, or --resume auto before the first checkpoint */
        if (vt_finetune_init(&r->model, c->init, c, out) != VT_OK) {
            vt_err_prefix("%s ", a->init ? "--init:" : "[finetune] init:");
            goto done;
        }
    }
    if (!a->dry_run) {
        char p[4200];
        if (snprintf(p, sizeof p, "%s/config.ini", r->out_dir) >= (int)sizeof p) {
            vt_err("%.64s...: output directory path too long", r->out_dir);
            goto done;
        }
        if (write_text_atomic(p, r->cfg_text) != VT_OK) goto done;
        if (metrics_truncate(r->metrics_path, r->st.step) != VT_OK) goto done;
    }

    /* banner */
    vt_dataset *ds = r->train_ds;
    char drop[64] = "";
    const int npatch = r->model.grid_h * r->model.grid_w;
    if (mc.patch_drop_rate > 0)
        snprintf(drop, sizeof drop, ", patch dropout %g (trains on %d of %d tokens)", mc.patch_drop_rate,
                 vt_vit_patch_keep_count(&mc, npatch), npatch);
    fprintf(out, "vit %s | model: ViT %dx%d patch %d, dim %d, depth %d, heads %d, mlp %g, %s pooling%s, %d classes, "
                 "%.3fM params%s\n", VIT_VERSION, mc.img_h, mc.img_w, mc.patch, mc.embed_dim, mc.depth, mc.num_heads,
            mc.mlp_ratio, mc.pool == VT_POOL_MEAN ? "avg" : "token", mc.fc_norm ? " + fc_norm" : "", mc.num_classes,
            vt_vit_num_params(&r->model) / 1e6, drop);
    fprintf(out, "data: %s (%s) %lld training images %dx%dx%d, %s %lld | batch %d x %d accumulated | %lld steps/epoch, %lld steps\n",
            ds->path, ds->format, (long long)vt_loader_size(r->train_l), ds->h, ds->w, ds->c,
            r->test_ds ? "test" : "validation", (long long)(r->eval_l ? vt_loader_size(r->eval_l) : 0), c->batch_size,
            c->accum_steps, (long long)r->steps_per_epoch, (long long)r->total_steps);
    char reps[48] = "";
    if (r->rep.n > 1) snprintf(reps, sizeof reps, " (%d data-parallel replicas)", r->rep.n);
    fprintf(out, "compute: %d thread%s%s, OpenBLAS core %s | optimizer %s lr %g (%s schedule, warmup %lld) | out: %s\n",
            vt_get_threads(), vt_get_threads() == 1 ? "" : "s", reps, vt_blas_core(), c->optimizer, r->sched.base_lr, c->schedule,
            (long long)r->sched.warmup_steps, a->dry_run ? "(dry run)" : r->out_dir);
    /* keys this combination does not use: said, so that a setting believed in is not silently without effect */
    if (c->val_fraction > 0 && r->test_ds)
        fprintf(out, "warning: [data] val_fraction = %g unused: %s has a test split, which evaluation uses\n",
                c->val_fraction, c->data_path);
    if (c->crop_padding > 0 && c->random_resized_crop)
        fprintf(out, "warning: [data] crop_padding = %d unused: random_resized_crop takes its place\n", c->crop_padding);
    if (c->decode_size > 0 && strcmp(r->train_ds->format, "folder") != 0)
        fprintf(out, "warning: [data] decode_size = %d unused: it applies to image folders, %s is %s\n", c->decode_size,
                c->data_path, r->train_ds->format);
    vt_data_warn_skipped(out, "", r->train_ds, "training data");
    vt_data_warn_skipped(out, "", r->test_ds, "test data");
    fflush(out);

    const int B = c->batch_size;
    int64_t skipped0 = r->train_ds->skipped + (r->test_ds ? r->test_ds->skipped : 0);   /* before the workers run */
    if (vt_loader_start(r->train_l, r->st.epoch, r->st.batch_in_epoch) != VT_OK) goto done;
    double t_start = vt_now(), t_log = t_start;
    double waited = 0, t_eval = 0, t_eval_log = 0;   /* loader waits of finished epochs; time spent evaluating (all, and up to the last log row) */
    vt_eval_result final_ev = {0};
    bool have_final = false;
    int64_t imgs_since_log = 0, steps_done = 0, steps_since_log = 0;
    double loss_since_log = 0;
    float *P = r->model.params.data, *G = r->model.params.grad;
    const int64_t NP = r->model.params.numel;
    while (r->st.step < r->total_steps) {
        vt_paramset_zero_grad(&r->model.params);
        double step_loss = 0;
        for (int k = 0; k < c->accum_steps; k++) {
            float *x;
            int *y, bs;
            if (vt_loader_next(r->train_l, &x, &y, NULL, &bs) != VT_OK) goto done;
            if (bs != B) {
                vt_err("internal: loader returned %d images at batch %lld of epoch %lld", bs,
                       (long long)r->st.batch_in_epoch, (long long)r->st.epoch);
                goto done;
            }
            double loss;
            /* the step's key for patch dropout: a function of the seed and the micro-batch's number */
            const uint64_t key = (uint64_t)r->st.seed * 0xD1B54A32D192ED03ull ^
                                 ((uint64_t)r->st.step * (uint64_t)c->accum_steps + (uint64_t)k);
            if (vt_vit_replicas_train(&r->rep, x, y, B, (float)c->label_smoothing, 1.0f / (float)c->accum_steps, key,
                                      &loss) != VT_OK)
                goto done;
            if (!isfinite(loss)) {
                vt_err("loss is %s at step %lld (epoch %lld): stopping; %s", isnan(loss) ? "nan" : "infinite",
                       (long long)r->st.step + 1, (long long)r->st.epoch + 1, kept(r));
                goto done;
            }
            step_loss += loss / c->accum_steps;
        }
        double gnorm = vt_grad_norm(G, NP);   /* non-finite exactly when a gradient is */
        if (!isfinite(gnorm)) {
            vt_err("non-finite gradient at step %lld (epoch %lld): stopping; %s", (long long)r->st.step + 1,
                   (long long)r->st.epoch + 1, kept(r));
            goto done;
        }
        double lr = vt_lr_at(&r->sched, r->st.step);
        /* clipping folded into the update: the same products as scaling the gradients first */
        vt_optim_step_scaled(&r->opt, P, G, lr, vt_clip_coef(gnorm, c->clip_grad_norm));
        r->st.step++;
        r->st.batch_in_epoch += c->accum_steps;
        steps_done++;
        imgs_since_log += (int64_t)B * c->accum_steps;
        loss_since_log += step_loss;
        steps_since_log++;
        bool epoch_end = r->st.batch_in_epoch >= r->steps_per_epoch * c->accum_steps;
        bool last = r->st.step >= r->total_steps;
        if (a->dry_run) {
            fprintf(out, "dry run: one step done, loss %.4f, grad norm %.4f, lr %.3e; nothing written\n", step_loss,
                    gnorm, lr);
            status = VT_TRAIN_DONE;
            goto done;
        }
        /* evaluation */
        bool do_eval = r->eval_l && (c->eval_every_steps > 0 ? r->st.step % c->eval_every_steps == 0 || last : epoch_end || last);
        vt_eval_result ev = {0};
        double t_ev = vt_now();
        if (do_eval && run_eval(r, &ev) != VT_OK) goto done;
        if (do_eval && !isfinite(ev.loss)) {   /* never a checkpoint, let alone the best */
            vt_err("evaluation loss is %s after step %lld: the model has diverged; stopping; %s",
                   isnan(ev.loss) ? "nan" : "infinite", (long long)r->st.step, kept(r));
            goto done;
        }
        if (do_eval && last) {
            final_ev = ev;
            have_final = true;
        }
        t_eval += vt_now() - t_ev;
        bool logrow = r->st.step % c->log_every_steps == 0 || do_eval || last;
        if (logrow) {
            double now = vt_now();
            double ips = imgs_since_log / (now - t_log - (t_eval - t_eval_log));   /* training time only */
            double eta = (now - t_start) / steps_done * (r->total_steps - r->st.step);
            char row[512];
            if (do_eval)
                snprintf(row, sizeof row, "%lld,%lld,%.9g,%.9g,%.9g,%.1f,%.9g,%.4f,%.4f\n", (long long)r->st.step,
                         (long long)r->st.epoch + 1, step_loss, lr, gnorm, ips, ev.loss, ev.top1, ev.top5);
            else
                snprintf(row, sizeof row, "%lld,%lld,%.9g,%.9g,%.9g,%.1f,,,\n", (long long)r->st.step,
                         (long long)r->st.epoch + 1, step_loss, lr, gnorm, ips);
            if (append_metrics(r, row) != VT_OK) goto done;
            progress(r, r->st.step, step_loss, loss_since_log / (double)steps_since_log, lr, gnorm, ips, eta);
            if (do_eval) print_eval(r, &ev);   /* after the step's own line */
            t_log = now;
            t_eval_log = t_eval;
            imgs_since_log = 0;
            loss_since_log = 0;
            steps_since_log = 0;
        }
        bool better = do_eval && ev.top1 > r->st.best_top1;
        if (better) {
            r->st.best_top1 = ev.top1;
            r->st.best_step = r->st.step;
        }
        if (epoch_end) {
            r->st.epoch++;
            r->st.batch_in_epoch = 0;
        }
        bool stop = stop_signal != 0 || (a->stop_after > 0 && steps_done >= a->stop_after);
        bool do_ckpt = last || stop || better ||
                       (c->every_steps > 0 ? r->st.step % c->every_steps == 0 : epoch_end);
        if (do_ckpt) {
            char path[4200];
            if (save_checkpoint(r, path, sizeof path, better) != VT_OK) goto done;
            if (r->tty) fputc('\n', out);
            fprintf(out, "checkpoint %s%s\n", path, better ? " (best so far)" : "");
        }
        if (stop) {
            if (stop_signal)
                fprintf(out, "stopped by signal %d after step %lld", (int)stop_signal, (long long)r->st.step);
            else
                fprintf(out, "stopped after %lld steps (--stop-after) at step %lld", a->stop_after,
                        (long long)r->st.step);
            fprintf(out, "; continue with: vit-train --config %s/config.ini --resume auto\n", r->out_dir);
            status = VT_TRAIN_INTERRUPTED;
            goto done;
        }
        if (epoch_end && !last) {
            waited += vt_loader_wait_seconds(r->train_l);
            if (vt_loader_start(r->train_l, r->st.epoch, 0) != VT_OK) goto done;
        }
    }
    /* the training loader's share of the run (its workers are stopped before its counters are read) */
    waited += vt_loader_wait_seconds(r->train_l);
    double t_train = vt_now() - t_start - t_eval;
    vt_loader_free(r->train_l);
    r->train_l = NULL;
    if (r->tty) fputc('\n', out);
    if (r->eval_l) {
        /* the evaluation after the last step, or one now (a run resumed when it had already ended) */
        vt_eval_result ev = final_ev;
        if (!have_final) {
            if (run_eval(r, &ev) != VT_OK) goto done;
            print_eval(r, &ev);
        }
        fprintf(out, "final %s accuracy: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (after %lld step%s; this invocation "
                     "%.1f s)\n", r->test_ds ? "test" : "validation", ev.top1, ev.top5, ev.loss, (long long)r->st.step,
                r->st.step == 1 ? "" : "s", vt_now() - t_start);
    }
    fprintf(out, "data loader wait: %.2f s of %.1f s of training (%.1f%%; evaluation not counted)\n", waited, t_train,
            t_train > 0 ? 100 * waited / t_train : 0.0);
    if (r->train_ds->skipped + (r->test_ds ? r->test_ds->skipped : 0) > skipped0) {
        vt_data_warn_skipped(out, "", r->train_ds, "training data");
        vt_data_warn_skipped(out, "", r->test_ds, "test data");
    }
    status = VT_TRAIN_DONE;
done:
    /* a message about config keys ("[schedule] ...") names the config it came from */
    if (status == VT_TRAIN_FAILED && vt_errmsg()[0] == '[' && c->source[0]) {
        char o[1100];
        vt_err_prefix("%s: ", vt_config_origin(c, o, sizeof o));
    }
    cleanup(r);
    return status;
}
