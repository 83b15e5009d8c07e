/* run_dir.c - the run folder of vit-train: where it is, one trainer at a time (a lock), the refusals
 * that keep two runs apart, the resume policy, and every file written into it (config.ini,
 * metrics.csv, checkpoints). The writers do nothing when r->writes is false (a dry run; with MPI, a
 * rank other than 0): see trainer_internal.h. */
#include "trainer_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* create dir and its missing parents; made (n bytes) gets the topmost folder this created ("" when none) */
static int mkdir_p(const char *dir, char *made, size_t n)
{
    char buf[2048];
    made[0] = '\0';
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return vt_err("%.64s...: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p && *p != '/') continue;
        const char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) == 0) {
            if (!made[0]) snprintf(made, n, "%s", buf);
        } else if (errno != EEXIST) {
            return vt_err("%s: cannot create: %s", buf, strerror(errno));
        }
        *p = c;
        if (!c) return VT_OK;
    }
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

/* metrics.csv's header: the step's columns, then the objective's evaluation metrics */
static void csv_header(const run_t *r, char *buf, size_t n)
{
    char ev[224], ema[224];   /* within the callers' 512 bytes */
    vt_eval_csv(r->model.objective, NULL, true, ev, sizeof ev);
    recipe_csv(r, NULL, true, ema, sizeof ema);   /* the EMA's columns, when there is one */
    snprintf(buf, n, "step,epoch,loss,lr,grad_norm,img_per_s%s%s\n", ev, ema);
}

/* keep the rows of metrics.csv up to (and including) step, so a resumed run appends without
 * duplicating what it will redo */
static int metrics_truncate(const run_t *r, const char *path, int64_t step)
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
            char h[512];
            csv_header(r, h, sizeof h);
            fputs(h, m);
            continue;
        }
        long long s = atoll(line);
        if (s <= step) fputs(line, m);
    }
    fclose(f);
    fclose(m);
    int rc = write_text_atomic(path, out);
    free(out);
    return rc;
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

/* one trainer per run folder: an exclusive lock on <out>/.vit-train.lock for the whole run (released
 * by the system however the process ends), holding the owner's pid for the message */
static int lock_dir(run_t *r)
{
    char p[4200];
    if (snprintf(p, sizeof p, "%s/.vit-train.lock", r->out_dir) >= (int)sizeof p)
        return vt_err("%.64s...: output directory path too long", r->out_dir);
    r->made_lock = access(p, F_OK) != 0 && errno == ENOENT;
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
        {"[data] repeats", old.repeats, c->repeats},
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

const char *run_dir_kept(const run_t *r)
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

int run_dir_checkpoint(run_t *r, char *path, size_t n, bool better)
{
    if (!r->writes) return vt_err("internal: a checkpoint asked of a trainer that writes nothing");
    vt_h5_lock();
    int rc = vt_ckpt_write(r->out_dir, &r->model, &r->opt, &r->st, r->cfg_text, r->cfg.deflate, path, n);
    if (rc == VT_OK && better) snprintf(r->best_path, sizeof r->best_path, "%s", path);
    if (rc == VT_OK)
        rc = vt_ckpt_prune(r->out_dir, r->cfg.keep_last, r->cfg.keep_best ? r->best_path : NULL, r->st.step);
    vt_h5_unlock();
    return rc;
}

int run_dir_metrics_row(run_t *r, const char *row)
{
    if (!r->writes) return VT_OK;
    FILE *f = fopen(r->metrics_path, "a");
    if (!f) return vt_err("%s: cannot append: %s", r->metrics_path, strerror(errno));
    char h[512];
    csv_header(r, h, sizeof h);
    if (ftell(f) == 0) fputs(h, f);
    fputs(row, f);
    fclose(f);
    return VT_OK;
}


int run_dir_choose(run_t *r, const char *out_arg, const char *config_path)
{
    if (out_arg) {
        if (snprintf(r->out_dir, sizeof r->out_dir, "%s", out_arg) >= (int)sizeof r->out_dir)
            return vt_err("--out %.64s...: path too long (at most %zu bytes)", out_arg, sizeof r->out_dir - 1);
    } else if (run_config_dir(config_path, r->out_dir, sizeof r->out_dir)) {
        /* the config.ini a run wrote: that run's folder */
    } else {
        const char *base = strrchr(config_path, '/');
        base = base ? base + 1 : config_path;
        snprintf(r->out_dir, sizeof r->out_dir, "runs/%.*s", (int)(strcspn(base, ".")), base);
    }
    if (snprintf(r->metrics_path, sizeof r->metrics_path, "%s/metrics.csv", r->out_dir) >= (int)sizeof r->metrics_path)
        return vt_err("%.64s...: output directory path too long", r->out_dir);
    return VT_OK;
}

int run_dir_open(run_t *r, bool resuming)
{
    if (r->writes && (mkdir_p(r->out_dir, r->made_dir, sizeof r->made_dir) != VT_OK || lock_dir(r) != VT_OK))
        return VT_ERR;
    return resuming ? VT_OK : refuse_used_dir(r->out_dir);
}

void run_dir_abandon(run_t *r)
{
    char p[4200];
    if (r->made_lock && snprintf(p, sizeof p, "%s/.vit-train.lock", r->out_dir) < (int)sizeof p) unlink(p);
    r->made_lock = false;
    if (!r->made_dir[0]) return;
    /* the folders made, deepest first; rmdir leaves any that holds something */
    snprintf(p, sizeof p, "%s", r->out_dir);
    for (size_t top = strlen(r->made_dir); strlen(p) >= top;) {
        if (rmdir(p) != 0 && errno != ENOENT) break;
        char *slash = strrchr(p, '/');
        if (!slash) break;
        while (slash > p && slash[-1] == '/') slash--;
        *slash = '\0';
    }
    r->made_dir[0] = '\0';
}

/* --resume auto: the newest readable checkpoint of the folder; refused when newer ones cannot be read */
static int find_auto(const run_t *r, char *ckpt, size_t n, bool *found)
{
    char skipped[2048];
    vt_h5_lock();
    int rc = vt_ckpt_find_latest(r->out_dir, ckpt, n, found, skipped, sizeof skipped);
    vt_h5_unlock();
    if (rc != VT_OK) return VT_ERR;
    if (!*found && skipped[0])
        return vt_err("resume auto: no readable checkpoint in %s: %s (move them away to start afresh, or give "
                      "--resume PATH)", r->out_dir, skipped);
    if (skipped[0])   /* going on from an older one would overwrite or prune them */
        return vt_err("resume auto: %s holds newer checkpoints that cannot be read: %s (move them away to resume from "
                      "%s, or give --resume PATH)", r->out_dir, skipped, ckpt);
    if (!*found) fprintf(r->out, "resume auto: no checkpoint in %s, starting fresh\n", r->out_dir);
    return VT_OK;
}

int run_dir_resume(run_t *r, const char *resume, bool *resumed)
{
    char ckpt[4200] = "";
    const bool is_auto = strcmp(resume, "auto") == 0;
    *resumed = true;
    if (is_auto && find_auto(r, ckpt, sizeof ckpt, resumed) != VT_OK) return VT_ERR;
    if (!is_auto) snprintf(ckpt, sizeof ckpt, "%s", resume);
    if (!*resumed) return VT_OK;
    vt_vit_config ck;
    vt_h5_lock();
    int rc = vt_ckpt_model_config(ckpt, &ck);
    if (rc == VT_OK) rc = vt_ckpt_check_arch(ckpt, &ck, &r->model.cfg, true);
    char *text = NULL;
    if (rc == VT_OK) rc = vt_ckpt_load(ckpt, &r->model, &r->opt, &r->st, &text);
    if (rc == VT_OK) vt_ckpt_note_unverified(r->out, "", ckpt);   /* written before the checksums */
    vt_h5_unlock();
    if (rc == VT_OK) rc = same_data_order(r, ckpt, text);
    free(text);
    if (rc == VT_OK && !is_auto) rc = resume_here(r, ckpt);
    if (rc != VT_OK) return VT_ERR;
    r->st.train_images = vt_loader_size(r->train_l);
    /* the best checkpoint so far stays protected from pruning after the resume */
    if (r->st.best_metric >= 0) vt_ckpt_path(r->out_dir, r->st.best_step, r->best_path, sizeof r->best_path);
    fprintf(r->out, "resumed from %s at step %lld (epoch %lld, batch %lld)\n", ckpt, (long long)r->st.step,
            (long long)r->st.epoch + 1, (long long)r->st.batch_in_epoch);
    return VT_OK;
}

int run_dir_begin(run_t *r)
{
    if (!r->writes) return VT_OK;
    char p[4200];
    if (snprintf(p, sizeof p, "%s/config.ini", r->out_dir) >= (int)sizeof p)
        return vt_err("%.64s...: output directory path too long", r->out_dir);
    if (write_text_atomic(p, r->cfg_text) != VT_OK) return VT_ERR;
    return metrics_truncate(r, r->metrics_path, r->st.step);
}
