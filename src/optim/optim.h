/* optim.h - optimizers with torch's exact semantics over flat parameter/gradient buffers,
 * LR schedules as pure functions of the step, gradient clipping, weight-decay groups. */
#ifndef VIT_OPTIM_H
#define VIT_OPTIM_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VT_OPTIM_SGD = 0, VT_OPTIM_ADAM = 1, VT_OPTIM_ADAMW = 2 } vt_optim_kind;

typedef struct {
    vt_optim_kind kind;
    double lr;              /* informational: the step takes the LR of the schedule */
    double beta1, beta2, eps;
    double weight_decay;    /* AdamW: decoupled p -= lr*wd*p; Adam, SGD: g += wd*p */
    double momentum, dampening;
    bool nesterov;
} vt_optim_config;

typedef struct {
    int64_t offset, len;
    bool decay;
    double lr_scale;        /* the group's learning rate is the schedule's times this (layer-wise decay; 1: none) */
} vt_optim_segment;

typedef struct {
    vt_optim_config cfg;
    int64_t n;              /* floats in the flat buffers */
    int64_t step;           /* optimizer steps taken */
    float *m;               /* Adam first moment / SGD momentum buffer (n) */
    float *v;               /* Adam second moment (n), NULL for SGD */
    vt_optim_segment *seg;  /* weight-decay groups; none registered = one decayed group of all n */
    int nseg, capseg;
} vt_optim;

const char *vt_optim_kind_name(vt_optim_kind k);
int vt_optim_kind_parse(const char *name, vt_optim_kind *k);
/* torch defaults: AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01; momentum 0 */
void vt_optim_config_defaults(vt_optim_config *c);
/* refuse negative LR, betas outside [0,1), negative eps / weight decay / momentum, nesterov
 * without momentum or with dampening */
int vt_optim_config_check(const vt_optim_config *c);
/* check c, zeroed moments for n floats, step 0 (o is zeroed on failure, so vt_optim_free is safe) */
int vt_optim_init(vt_optim *o, const vt_optim_config *c, int64_t n);
void vt_optim_free(vt_optim *o);
/* mark [offset, offset+len) of the flat buffer as one group, decayed or not. Segments must lie inside
 * the buffer and not overlap. Once any is registered, elements outside every segment are frozen
 * (neither stepped nor their moments touched); with none, all n elements form one decayed group. */
int vt_optim_add_segment(vt_optim *o, int64_t offset, int64_t len, bool decay);
/* the same with the group's learning rate scaled by lr_scale (> 0): its weight decay follows (AdamW's lr*wd) */
int vt_optim_add_segment_scaled(vt_optim *o, int64_t offset, int64_t len, bool decay, double lr_scale);
/* layer-wise learning-rate decay (BEiT, MAE fine-tuning): the scale of parameter name in a ViT of depth blocks,
 * decay^(depth + 1 - layer) with layer 0 for cls_token, pos_embed, patch_embed.* and mask_token, i + 1 for
 * blocks.i.*, depth + 1 (scale 1) for the rest (norm, fc_norm, head, a decoder) */
double vt_layer_decay_scale(const char *name, int depth, double decay);
/* one update of params (n) from grads (n) with learning rate lr (the schedule's, passed per step);
 * increments o->step first, so bias correction and SGD's first-step buffer see steps 1, 2, ... */
void vt_optim_step(vt_optim *o, float *params, const float *grads, double lr);
/* the same with the gradients taken as grads * gscale (one float product per element, as after
 * clip_grad_norm_'s in-place scaling; grads are left as they are) */
void vt_optim_step_scaled(vt_optim *o, float *params, const float *grads, double lr, float gscale);
/* timm's rule (param_groups_weight_decay + VisionTransformer.no_weight_decay): decay only tensors of
 * 2+ dims whose name does not end in ".bias", whose last component is not pos_embed, cls_token or
 * dist_token, and that match none of the extra patterns ('*' matches any run of characters) */
bool vt_optim_decays(const char *name, int ndim, const char *const *no_decay_patterns, int npatterns);
bool vt_glob_match(const char *pattern, const char *name);
/* every byte of state (moments as float32 datasets, step, kind, numel; the hyper-parameters as
 * informational attributes) to / from an HDF5 group. Load refuses another kind or length, and moments
 * that are not finite or (exp_avg_sq) negative, with a message naming file, dataset and element; it checks
 * everything before it overwrites o. */
int vt_optim_save(const vt_optim *o, vt_h5id file, const char *group);
int vt_optim_load(vt_optim *o, vt_h5id file, const char *group);

/* ---- gradients */
/* global L2 norm (accumulated in double, deterministic), then torch's clip_grad_norm_: scale by
 * max_norm / (norm + 1e-6) when that is below 1. Returns the norm before clipping. max_norm <= 0:
 * only measure. */
double vt_clip_grad_norm(float *grads, int64_t n, double max_norm);
/* the norm alone (the same value), and the factor clip_grad_norm_ would scale by (1 when none); the
 * norm is non-finite exactly when some gradient is */
double vt_grad_norm(const float *grads, int64_t n);
float vt_clip_coef(double norm, double max_norm);

/* EMA of the weights (ema.c): the decay at update t = 1, 2, ... (timm's ModelEmaV2: decay; with warmup,
 * ModelEmaV3's min(decay, 1 - t^(-2/3)), 0 at t = 1) and the update of n values (lerp: ModelEmaV3's
 * torch.lerp(ema, w, 1 - decay); else ModelEmaV2's ema * decay + (1 - decay) * w) */
double vt_ema_decay_at(double decay, bool warmup, int64_t t);
void vt_ema_update(float *ema, const float *w, int64_t n, double decay, bool lerp);
void vt_grad_scale(float *grads, int64_t n, float s);

/* ---- LR schedules, pure functions of the optimizer step */
typedef enum { VT_SCHED_CONSTANT = 0, VT_SCHED_COSINE = 1, VT_SCHED_LINEAR = 2 } vt_sched_kind;
typedef struct {
    vt_sched_kind kind;
    double base_lr, warmup_lr_init, lr_min;
    int64_t warmup_steps;   /* W */
    int64_t total_steps;    /* T: steps of the decay after the warmup (timm warmup_prefix=True) */
} vt_schedule;

int vt_sched_kind_parse(const char *name, vt_sched_kind *k);
int vt_schedule_check(const vt_schedule *s);
/* t < W: warmup_lr_init + t (base - init) / W; then cosine: lr_min + (base - lr_min)(1 + cos(pi (t-W)/T))/2,
 * linear: base - (base - lr_min)(t-W)/T, constant: base; past W+T: lr_min (constant: base) */
double vt_lr_at(const vt_schedule *s, int64_t step);
/* lr * global_batch / 256 */
double vt_lr_scale(double base_lr, int64_t global_batch);

#ifdef __cplusplus
}
#endif
#endif
