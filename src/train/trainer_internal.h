/* trainer_internal.h - what the pieces of vit-train's loop share (trainer.c: setup, the step, the
 * evaluation and checkpoint cadence; run_dir.c: the run folder; run_report.c: what the run prints).
 * Nothing outside src/train/trainer*.c, run_dir.c and run_report.c includes it. */
#ifndef VIT_TRAINER_INTERNAL_H
#define VIT_TRAINER_INTERNAL_H
#include "train.h"

typedef struct {
    vt_config cfg;
    char out_dir[2048], metrics_path[4200];
    /* Every file the run writes into out_dir (lock, config.ini, metrics.csv, checkpoints) goes through
     * run_dir.c, and only when `writes` is true. It is set in one place, vt_train_run (false for a dry
     * run); a data-parallel version over ranks sets it for rank 0 only. */
    bool writes;
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
    vt_mix mix;            /* [data] mixup / cutmix */
    float *mix_targets;    /* (batch, classes) soft targets of the micro-batch being mixed */
    char made_dir[2048];   /* the topmost folder run_dir_open created ("" when out_dir existed) */
    bool made_lock;        /* run_dir_open created the lock file */
    float *ema, *ema_swap; /* [train] ema_decay: the EMA of the weights, and room for the weights while it is evaluated */
    vt_eval_result ema_ev; /* the EMA's evaluation beside the model's */
    /* data-parallel (trainer_dist.c): this rank of the job (rank 0 of 1 alone); the gradient sum over the
     * ranks and what backward's hook needs to start it early */
    const vt_dist *d;
    bool shared_failure;   /* the failure is every rank's (decided from values all ranks share) */
    vt_grad_sum gsum;      /* the gradient sum over the ranks (grad_sum.c) */
    int stop_agreed;       /* a stop request some rank saw during this step (exchanged) */
    bool sharded;          /* [train] shard_optimizer: opt holds the moments of [shard_lo, shard_lo + opt.n) */
    int64_t shard_lo;
    double *losses;        /* the step's part losses (trainer.c) */
} run_t;

/* ---- run_dir.c: the run folder (where it is, lock, refusals, resume policy, the files written) */
/* r->out_dir from --out, the run folder of a config.ini a run wrote, or runs/<config name> */
int run_dir_choose(run_t *r, const char *out_arg, const char *config_path);
/* create and lock the folder (one trainer per folder), refuse another run's folder for a new run, and
 * remove checkpoints a killed trainer left half-written */
int run_dir_open(run_t *r, bool resuming);
/* --resume auto|PATH: find the checkpoint, check that it can go on here (architecture, data order, the
 * folder's other checkpoints) and load it into r (model, optimizer, state); *resumed false when auto
 * found none (a fresh start) */
int run_dir_resume(run_t *r, const char *resume, bool *resumed);
/* a start refused after run_dir_open: remove the lock file and the folders it created (a refused start
 * leaves nothing behind) */
void run_dir_abandon(run_t *r);
/* write config.ini and cut metrics.csv back to the resumed step */
int run_dir_begin(run_t *r);
/* one metrics.csv row (the header first in a new file) */
int run_dir_metrics_row(run_t *r, const char *row);
/* write the checkpoint of this step (the new best when better) and prune the old ones; path gets its name */
int run_dir_checkpoint(run_t *r, char *path, size_t n, bool better);
/* what a stop on a non-finite value leaves: "the last checkpoint, X, is kept", or that there is none */
const char *run_dir_kept(const run_t *r);

/* ---- recipe.c: the DeiT / timm recipe's per-step pieces */
int recipe_init(run_t *r);   /* after the model is built */
void recipe_free(run_t *r);
/* micro-batch k of this step mixed in place (x, y: the loader's), *targets its soft targets; *targets NULL
 * when mixing is off */
int recipe_mix(run_t *r, float *x, const int *y, int k, const float **targets);
/* the banner's "recipe: ..." line (none when every switch is off) */
void recipe_banner(run_t *r);
/* after resume / init: the EMA starts at the weights unless the checkpoint held one (said on out when it did not) */
void recipe_ema_start(run_t *r, FILE *out);
/* after the optimizer step (r->st.step already counts it) */
void recipe_ema_update(run_t *r);
/* the EMA weights evaluated on the eval loader (the model's weights restored after) */
int recipe_ema_eval(run_t *r, vt_eval_result *ev);
/* metrics.csv's EMA columns (",ema_eval_<key>..." for the header; the values of ev, or empty ones for NULL);
 * "" without an EMA */
void recipe_csv(const run_t *r, const vt_eval_result *ev, bool header, char *buf, size_t n);
/* ---- trainer_dist.c: one rank of a data-parallel run (no-ops alone) */
/* the compute threads of this rank (the config's, else the host's cores over its ranks), and the same build
 * and the same resolved config on every rank, else refused on all naming what differs */
int dist_start(run_t *r, const char *cfg_text);
/* rank 0's parameters, optimizer state and training state onto every rank */
int dist_share_state(run_t *r);
/* this rank's share of the batches (the replicas'), room for the step's losses, the gradient sum and
 * backward's hook that starts its buckets as they are final */
int dist_grad_init(run_t *r);
/* wait for the sum (starting what the hook has not): the gradient buffer is then the ranks' sum */
int dist_grad_sum(run_t *r);
/* the step's mean loss from every rank's parts' losses (r->losses, micro-batch by micro-batch; added in
 * part order, as one process would), exchanged with this rank's stop request: r->stop_agreed is any rank's */
int dist_step_loss(run_t *r, int stop_signal, double *loss);
/* the update (of this rank's slice with shard_optimizer, then the slices gathered) */
int dist_optim_step(run_t *r, double lr, float gscale);
/* write this step's checkpoint on rank 0 (with shard_optimizer every rank sends its moments there first) */
int dist_checkpoint(run_t *r, char *path, size_t n, bool better);
/* after the loop (every rank): the gradient sum's cost per step, the time it waited and the share hidden */
void dist_report(run_t *r, int64_t steps);
void dist_free(run_t *r);

/* ---- run_report.c: what the run prints */
void run_banner(run_t *r, bool dry_run);
/* the step's loss and the mean since the previous line */
void run_progress(run_t *r, double loss, double avg, double lr, double gnorm, double ips, double eta);
void run_print_eval(run_t *r, const vt_eval_result *ev);
void run_print_eval_ema(run_t *r, const vt_eval_result *ev);

#endif
