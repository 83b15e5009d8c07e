/* train.h - the top layer: golden checks against timm, the config, training loop, evaluation, checkpoints. */
#ifndef VIT_TRAIN_H
#define VIT_TRAIN_H

#include <stdio.h>
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "data/data.h"
#include "dist/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- checkpoints (HDF5) */
#define VT_CKPT_FORMAT "vit-checkpoint"
#define VT_CKPT_VERSION 1

/* where training stands: enough to continue exactly */
typedef struct {
    int64_t step;            /* optimizer steps done */
    int64_t epoch;           /* current epoch (0-based) */
    int64_t batch_in_epoch;  /* micro-batches of this epoch already consumed */
    int64_t seed;            /* run seed (init, shuffling, augmentation) */
    vt_rng rng;              /* the trainer's own RNG stream */
    double best_metric;      /* the objective's best metric so far (-1: none; metrics are never negative);
                                checkpoints store it as /state best_top1, its name from before objectives */
    int64_t best_step;
    int64_t train_images;    /* the training set's size (the data order depends on it); 0: not recorded */
    float *ema;              /* the EMA of the weights ([train] ema_decay; the model's layout) or NULL: written as
                                /ema, and read into (ema_loaded) when the file has it; not owned */
    bool ema_loaded;
} vt_train_state;

/* <dir>/ckpt-<step>.h5, the name a checkpoint of that step gets */
void vt_ckpt_path(const char *dir, int64_t step, char *out, size_t n);
/* Write <dir>/ckpt-<step>.h5 atomically (write .tmp, flush, fsync, rename, fsync dir). The file holds
 * /model/<timm name> (+ the architecture as attributes), /optimizer (if o), /state, /config (text).
 * path_out (may be NULL) receives the final path. */
int vt_ckpt_write(const char *dir, const vt_vit *m, const vt_optim *o, const vt_train_state *s,
                  const char *config_text, int deflate, char *path_out, size_t n);
/* read the model description stored in a checkpoint (/model attributes) */
int vt_ckpt_model_config(const char *path, vt_vit_config *mc);
/* VT_OK when a checkpoint's model description ck can serve the config's model mc: the same architecture
 * (depth, width, heads, patch, channels, MLP ratio, LayerNorm eps, pooling, fc_norm, GELU), and with whole (resume)
 * also the same input size and classes; else VT_ERR naming path, the [model] key and both values */
int vt_ckpt_check_arch(const char *path, const vt_vit_config *ck, const vt_vit_config *mc, bool whole);
/* Load a checkpoint: format version and every tensor's shape are checked against m (and o);
 * o and s may be NULL (weights only). config_text (may be NULL) gets a malloc'd copy of /config. */
int vt_ckpt_load(const char *path, vt_vit *m, vt_optim *o, vt_train_state *s, char **config_text);
/* the EMA weights of a checkpoint (/ema, [train] ema_decay) into m's parameters; an error naming the key
 * when the run kept none */
int vt_ckpt_load_ema(const char *path, vt_vit *m);
/* a checkpoint written before checksums (its tensors without Fletcher-32): says so on out, after prefix,
 * and returns true; such files still load, unverified */
bool vt_ckpt_note_unverified(FILE *out, const char *prefix, const char *path);
/* the newest complete checkpoint in dir (by the step in its name): *found false when there is none (VT_ERR
 * only when dir cannot be listed); the newer ones passed over as unreadable or incomplete are listed in
 * skipped, each with its reason ("" when none) */
int vt_ckpt_find_latest(const char *dir, char *path, size_t n, bool *found, char *skipped, size_t skipped_n);
/* how many files named like checkpoints dir holds (0 when dir does not exist) */
int vt_ckpt_count(const char *dir, int *count);
/* of the checkpoints up to step upto (the one just written), delete all but the newest keep_last, never
 * the one named keep (best); those of later steps (an unreadable one passed over on resuming) stay */
int vt_ckpt_prune(const char *dir, int keep_last, const char *keep, int64_t upto);
/* the steps of the checkpoints in dir newer than step, as "ckpt-A.h5, ckpt-B.h5" in buf ("" when none) */
int vt_ckpt_newer(const char *dir, int64_t step, char *buf, size_t n);

/* ---------------------------------------------------------------- config (INI) */
/* Every key of every section is described by one table (config_keys.c): name, type, default, range,
 * help. The parser, --set overrides, the resolved config written to the out dir and the key table in
 * configs/README.md all come from it. */
#define VT_STR 256
typedef struct {
    /* [model] */
    char model_preset[32];      /* "" or ti16 s16 b16 l16 h14 ... (fills dim/depth/heads/patch) */
    int img_size, img_h, img_w, patch_size, in_chans, num_classes, embed_dim, depth, num_heads;
    double mlp_ratio, layer_norm_eps, patch_drop_rate;
    char pool[16], gelu[16];
    bool fc_norm;               /* a LayerNorm after the average pooling instead of before it (timm's fc_norm) */
    double drop_path_rate, init_values;   /* stochastic depth, LayerScale (timm's names) */
    int reg_tokens;
    bool no_embed_class;
    /* [data] */
    char data_path[VT_STR], data_format[16], images_key[64], labels_key[64], bad_images[16];
    bool cifar_coarse;
    int decode_size;
    int max_image_pixels;
    double crop_pct;
    int batch_size, eval_batch_size, workers, prefetch;
    double val_fraction;
    double train_fraction;      /* a fixed, seed-determined share of the training set (the label-scarce runs) */
    char mean[VT_STR], std[VT_STR];
    bool hflip, random_resized_crop;
    int crop_padding;
    double random_erasing;
    char random_erasing_mode[16];
    double rrc_scale_min, rrc_ratio_min, rrc_ratio_max;
    /* [data]: the DeiT / timm recipe (mixup and cutmix, RandAugment, repeated augmentation) */
    double mixup_alpha, cutmix_alpha, mix_prob, switch_prob;
    char randaugment[64];
    int repeats;
    /* [optim] */
    char optimizer[16];
    double lr, beta1, beta2, eps, weight_decay, momentum, dampening, clip_grad_norm, label_smoothing;
    double layer_decay;         /* layer-wise learning-rate decay (1: none) */
    bool nesterov, scale_lr;
    int accum_steps;
    bool recompute_attention;
    bool shard_optimizer;     /* [train] ZeRO-1 over the ranks */
    char no_weight_decay[VT_STR];
    /* [schedule] */
    char schedule[16];
    int warmup_steps;
    double warmup_epochs, warmup_lr_init, lr_min;
    /* [train] */
    int epochs, max_steps, seed, threads, log_every_steps, eval_every_steps, replicas;
    double ema_decay;           /* EMA of the weights (timm's ModelEmaV2; 0: off) */
    bool ema_warmup;            /* timm's ModelEmaV3 warmup of the decay */
    /* [checkpoint] */
    int every_steps, keep_last, deflate;
    bool keep_best;
    /* [pretrain] */
    char pretrain_objective[32];   /* "none" (supervised) or a self-supervised objective */
    double mask_ratio;             /* 0: the objective's default (0.5; mae 0.75) */
    int color_bits, target_size, decoder_dim, decoder_depth, decoder_heads;
    bool norm_pix_loss;
    /* [finetune] */
    char init[VT_STR], pos_interp[16], head_init[16];
    bool pos_antialias;
    /* not keys: where the values came from, for the messages of vt_config_validate / vt_config_model */
    char source[1024];   /* the file (or checkpoint) last loaded, "" for none */
    bool overridden;     /* vt_config_set changed a value */
} vt_config;

typedef enum { VT_CFG_INT, VT_CFG_FLOAT, VT_CFG_BOOL, VT_CFG_STRING, VT_CFG_ENUM } vt_cfg_type;
typedef struct {
    const char *section, *key;
    vt_cfg_type type;
    size_t offset, size;        /* field in vt_config */
    const char *def;            /* default as text */
    double min, max;            /* range (numbers; max HUGE_VAL: no upper bound, any finite value) */
    const char *choices;        /* ENUM: "a|b|c" */
    bool required;
    const char *help;
} vt_cfg_key;

/* the table (terminated by a NULL key) */
const vt_cfg_key *vt_config_keys(void);
void vt_config_defaults(vt_config *c);
/* parse an INI file over the current values; errors name file:line, the key and, for an unknown key,
 * the nearest valid one (the syntax, comments and quoting: config.c, configs/README.md). A folder is
 * refused; the path is kept in c->source for later messages. */
int vt_config_load(vt_config *c, const char *path);
/* the same from INI text (e.g. the /config of a checkpoint); name is used in messages */
int vt_config_load_text(vt_config *c, const char *text, const char *name);
/* "section.key=value" (as --set takes it): the value as given, ends trimmed, no comments; or in double
 * quotes with \" and \\ escapes, as in a file */
int vt_config_set(vt_config *c, const char *assignment);
/* required keys present, cross-field checks; errors name c->source */
int vt_config_validate(const vt_config *c);
/* write every key (resolved) as INI text that vt_config_load reads back to the same config (strings
 * that need it are quoted) */
int vt_config_write(const vt_config *c, FILE *f);
/* where c came from, for messages: "cfg.ini", "cfg.ini (with --set overrides)", "--set" or "config" */
const char *vt_config_origin(const vt_config *c, char *buf, size_t n);
/* the model description the config asks for */
int vt_config_model(const vt_config *c, vt_vit_config *mc);
/* start m from the weights in path (--init: an HDF5 checkpoint, .safetensors or .npz): the file's model
 * (stored, or read from its shapes) must have the config's architecture; a head of another class count is
 * re-initialised ([finetune] head_init), pos_embed resized to m's grid ([finetune] pos_interp); what was
 * adapted is printed to out */
int vt_finetune_init(vt_vit *m, const char *path, const vt_config *c, FILE *out);
/* markdown table of every key (configs/README.md is generated from, and tested against, this) */
void vt_config_markdown(FILE *f);

/* ---------------------------------------------------------------- data from the config (data_setup.c)
 * The one place where [data] keys become the data layer's options, transforms and loaders: vit-train,
 * vit-eval and vit-loader-bench all go through it. mc is the model the images are for (its in_chans,
 * img_h, img_w); only those fields are read. */
/* the dataset options: format, HDF5 keys, cifar_coarse, bad_images, num_classes ([model] num_classes
 * when > 0), channels (in_chans when 1 or 3) and, for image folders, the decode size (decode_size, or
 * the auto rule: the model size / crop_pct (0.875 when 0), but the images' own size when they all agree
 * and are not larger on both sides) */
void vt_config_data_options(const vt_config *c, const vt_vit_config *mc, vt_data_options *o);
/* open split "train" or "test" of [data] path with those options; *out NULL with VT_OK when the
 * split does not exist */
int vt_config_open_data(const vt_config *c, const vt_vit_config *mc, const char *split, vt_dataset **out);
/* the per-sample transform to (in_chans, img_h, img_w): mean/std (std > 0), crop_pct, and with train
 * the augmentations (hflip, crop_padding, random-resized-crop) */
int vt_config_transform(const vt_config *c, const vt_vit_config *mc, bool train, vt_transform *tf);
/* a loader over ds (or the subset idx[0..n) when idx is not NULL) as training (train: batch_size,
 * shuffled, last partial batch dropped, augmented) or evaluation (eval_batch_size or batch_size, in
 * order, every sample) uses it, with [data] workers and prefetch */
int vt_config_loader(const vt_config *c, const vt_vit_config *mc, vt_dataset *ds, const int64_t *idx, int64_t n,
                     bool train, uint64_t seed, vt_loader **out);
/* the training subset [data] train_fraction asks for: of the n indices idx (all count images when idx is NULL),
 * a fixed share drawn from seed, ascending, into *out (malloc'd; *out NULL when the fraction is 1: all of them) */
int vt_config_train_subset(const vt_config *c, const int64_t *idx, int64_t n, uint64_t seed, int64_t **out, int64_t *nout);
/* the same loader filling only parts [first, first + count) of parts of every batch (a data-parallel
 * rank's share, vt_batch_share); parts 0: the whole batch */
int vt_config_loader_share(const vt_config *c, const vt_vit_config *mc, vt_dataset *ds, const int64_t *idx,
                           int64_t n, bool train, uint64_t seed, int first, int count, int parts, vt_loader **out);
/* "warning: <what>: N undecodable images skipped (first: ...)" on f when ds skipped any */
void vt_data_warn_skipped(FILE *f, const char *prefix, const vt_dataset *ds, const char *what);

/* ---------------------------------------------------------------- training */
typedef struct {
    const char *config_path;
    const char *sets[64];     /* --set section.key=value, in order */
    int nsets;
    const char *out_dir;      /* NULL: runs/<config name> */
    const char *resume;       /* NULL, "auto" or a checkpoint path */
    const char *init;         /* NULL or weights to start from (fine-tuning) */
    int threads;              /* -1: the config's; 0: all cores; else this many */
    long long seed;           /* -1: config */
    bool print_config;        /* print the resolved config and stop */
    bool dry_run;             /* build everything, run one step without saving, stop */
    long long stop_after;     /* > 0: stop like an interrupt (checkpoint, exit) after this many steps */
    const vt_dist *dist;      /* this rank of a data-parallel run (NULL: alone) */
    bool *failure_shared;     /* (may be NULL) set when a failure is every rank's, not this rank's alone */
} vt_train_args;

/* outcome of a run */
typedef enum { VT_TRAIN_DONE = 0, VT_TRAIN_FAILED = 1, VT_TRAIN_INTERRUPTED = 2 } vt_train_status;

/* the whole training command; progress goes to out, errors to vt_errmsg() */
vt_train_status vt_train_run(const vt_train_args *a, FILE *out);
/* request a stop after the current step (async-signal-safe) */
void vt_train_request_stop(int signo);

typedef struct {
    const vt_objective *obj;        /* whose metrics these are */
    double v[VT_OBJ_MAX_METRICS];   /* its metrics in its order (classification: loss, top-1 %, top-5 %) */
    int64_t count;                  /* images evaluated */
} vt_eval_result;

/* evaluate the replicas' model on a loader (no grad) with its objective's metrics: each batch is cut over
 * the replicas' graphs, which are left reset */
int vt_evaluate(vt_vit_replicas *rep, vt_loader *l, vt_eval_result *r);
/* vit-eval --reconstruct: dir/reconstruct-NNNN.png for the first n images of l (created when missing), each the
 * original, the masked input and the reconstruction side by side, for a model pretrained with mae or
 * masked_patch_pixels (others: VT_ERR saying so); the paths go to out. Uses replica 0's graph, left reset. */
int vt_reconstruct_pngs(vt_vit_replicas *rep, vt_loader *l, int n, const char *dir, FILE *out);
/* the same on every rank of a data-parallel run (d NULL: alone): the replicas and the loader hold this
 * rank's share of every batch (vt_vit_replicas_set_share, vt_config_loader_share); every rank gets the
 * metrics of one process with all the parts */
int vt_evaluate_ranks(vt_vit_replicas *rep, vt_loader *l, const vt_dist *d, vt_eval_result *r);
/* "loss 0.3120  top-1 88.50%  top-5 99.60%" (loss_last: the loss at the end) */
void vt_eval_format(const vt_eval_result *ev, bool loss_last, char *buf, size_t n);
/* the metrics.csv columns of o's metrics: ",eval_loss,eval_top1,..." (header), the values of ev, or with
 * ev NULL the empty columns of a row without evaluation */
void vt_eval_csv(const vt_objective *o, const vt_eval_result *ev, bool header, char *buf, size_t n);

/* ---- the gradient sum over the ranks of a data-parallel step (grad_sum.c; vit-train's and vit-bench's).
 * ps's gradient buffer in buckets of 2 MB, reduced with vt_dist_sum; with one replica per rank
 * (rep->n == 1) a hook on its graph starts each bucket as soon as backward has finished its parameters, with
 * more the sum starts when the replicas have added their gradients. Alone (one rank) all is a no-op. */
typedef struct {
    vt_dist_sum sum;
    bool active;              /* more than one rank: there is a sum */
    const vt_paramset *ps;
    int *first_use, final_from, status;   /* the hook's: where each parameter is first read; its failure */
    char err[512];
    double t_start, t_done;   /* this step: when its first bucket started, when its last arrived (0: not yet) */
    double waited;            /* seconds the steps spent in vt_grad_sum_wait */
    double exposed;           /* the part of it spent waiting for reductions (not when all had arrived) */
    double in_flight;         /* seconds from each step's first bucket started to its last arrived */
} vt_grad_sum;

int vt_grad_sum_init(vt_grad_sum *gs, const vt_dist *d, vt_paramset *ps, vt_vit_replicas *rep);
/* after backward: start what the hook has not, wait for all; the buffer then holds the ranks' sum */
int vt_grad_sum_wait(vt_grad_sum *gs);
/* the whole sum once more with nothing to hide behind (on the buffer, which it overwrites): the seconds,
 * best of 3 after a warm-up one, -1 on failure (vt_errmsg) */
double vt_grad_sum_alone(vt_grad_sum *gs);
void vt_grad_sum_free(vt_grad_sum *gs);
/* the compute threads of a rank: `threads` if given (> 0), else the host's cores over its ranks (alone: 0,
 * the default) */
int vt_rank_threads(const vt_dist *d, int threads);

#ifdef __cplusplus
}
#endif
#endif
