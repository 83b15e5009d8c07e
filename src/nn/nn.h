/* nn.h - ViT modules on top of the autograd engine: parameters in one flat buffer addressed by
 * timm state_dict names, the model description, the encoder and the training objectives on its
 * tokens, the data-parallel replicas, initialisation, presets, weight files and position-embedding
 * resampling. */
#ifndef VIT_NN_H
#define VIT_NN_H

#include "tensor/tensor.h"
#include "autograd/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ViT */
/* What the encoder's tokens are trained for ([pretrain] objective; classification when absent) */
typedef enum { VT_OBJ_CLASSIFY = 0, VT_OBJ_MASKED_COLOR, VT_OBJ_MASKED_PIXELS, VT_OBJ_MAE } vt_objective_kind;
#define VT_OBJECTIVE_NAMES(X)                                                                                  \
    X(VT_OBJ_CLASSIFY, "classification") X(VT_OBJ_MASKED_COLOR, "masked_patch_color")                           \
    X(VT_OBJ_MASKED_PIXELS, "masked_patch_pixels") X(VT_OBJ_MAE, "mae")

/* a self-supervised objective's settings (pretrain.c, mae.c) */
typedef struct {
    vt_objective_kind kind;
    double mask_ratio;      /* patches masked per image: masked patch prediction corrupts (int)(N r + 0.5), MAE
                               hides N - max(1, (int)(N (1 - r))) of the N */
    int color_bits;         /* masked_patch_color: bits per channel of the mean-colour classes (2^(bits C) classes) */
    int target_size;        /* masked_patch_pixels: the target is the patch averaged down to t x t (0: the patch) */
    int decoder_dim, decoder_depth, decoder_heads;   /* mae's decoder */
    bool norm_pix_loss;     /* mae: each target patch normalised by its own mean and (unbiased) variance */
    float in_mean[4], in_std[4];   /* the normalisation the model's images carry (colour targets are in [0, 1]) */
} vt_pretrain_config;

typedef struct {
    int img_h, img_w;       /* input resolution (multiples of patch) */
    int patch;              /* patch size P (conv kernel = stride = P) */
    int in_chans;
    int num_classes;
    int embed_dim;          /* D */
    int depth;              /* number of blocks */
    int num_heads;
    double mlp_ratio;       /* hidden = (int)(D * mlp_ratio), as timm */
    float ln_eps;           /* 1e-6 */
    vt_pool_kind pool;      /* class token (timm 'token') or mean of patch tokens ('avg') */
    bool fc_norm;           /* avg pooling only: no LayerNorm over the tokens (timm's norm is Identity); the
                               pooled vector goes through fc_norm (LayerNorm, ln_eps) before the head, as
                               timm's fc_norm=True (its default for 'avg'). false: norm, then the pooling */
    vt_gelu_kind gelu;      /* exact erf (timm default) or tanh */
    double patch_drop_rate; /* training passes only: each image keeps max(1, (int)(N (1 - rate))) of its
                               N patch tokens, a random subset (timm's patch_drop_rate / PatchDropout) */
    vt_pretrain_config pretrain;   /* kind VT_OBJ_CLASSIFY: supervised (the head on num_classes) */
    double drop_path_rate;  /* training passes only: stochastic depth (timm's drop_path_rate); block i drops each
                               residual branch of an image with probability rate * i / (depth - 1), scaling a kept
                               one by 1 / (1 - that) */
    double init_values;     /* LayerScale (timm's init_values): > 0 gives every block ls1.gamma and ls2.gamma (D),
                               x + gamma * branch, initialised to it; 0: none */
    int reg_tokens;         /* register tokens (timm's reg_tokens): reg_token (1, R, D), after the class token and
                               before the patches; pooling and patch dropout treat them as prefix tokens, as timm */
    bool no_embed_class;    /* pos_embed covers the patch tokens only, (1, N, D) (timm's no_embed_class, DeiT-III);
                               false: every token, (1, 1 + R + N, D) */
} vt_vit_config;

/* indices into the model's vt_paramset */
typedef struct {
    int norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
    int ls1, ls2;           /* LayerScale gammas (ls1.gamma, ls2.gamma); -1 without */
} vt_block_params;

struct vt_objective;

typedef struct {
    vt_vit_config cfg;
    vt_paramset params;     /* timm state_dict names and layouts, in timm's order: the encoder's, then the objective's */
    int cls_token, pos_embed, patch_w, patch_b;
    int reg_token;          /* "reg_token" (1, R, D); -1 without register tokens */
    int norm_w, norm_b;     /* the encoder's final LayerNorm over the tokens ("norm.*"); -1 with cfg.fc_norm */
    vt_block_params *blocks;
    int grid_h, grid_w;     /* img / patch */
    const struct vt_objective *objective;   /* what the encoder's tokens are trained for: its head and loss */
    int fc_norm_w, fc_norm_b; /* the classification head: the LayerNorm after pooling ("fc_norm.*"); -1 without cfg.fc_norm */
    int head_w, head_b;       /* its Linear ("head.*"); -1 when the objective has no such head */
    int mask_token;           /* masked objectives: the learned [mask] embedding (1, 1, D or decoder_dim); -1 otherwise */
    int pt_w, pt_b;           /* masked patch prediction's Linear ("mpp_head.*"); -1 otherwise */
    int dec_embed_w, dec_embed_b, dec_pos, dec_norm_w, dec_norm_b, dec_pred_w, dec_pred_b;   /* MAE's decoder; -1 */
    vt_block_params *dec_blocks;
} vt_vit;

/* Optional intermediate outputs of a forward pass (pointers into the graph's arena). */
typedef struct {
    vt_var *patch_embed;    /* (B, N, D) */
    vt_var **block_attn;    /* depth entries: (B, N+1, D), attention after proj */
    vt_var **block;         /* depth entries: (B, N+1, D) */
    vt_var *norm;           /* (B, N+1, D); NULL with fc_norm (no norm over the tokens) */
    vt_var *fc_norm;        /* (B, D): with fc_norm, the pooled tokens after it (NULL otherwise) */
} vt_vit_acts;

/* The names of the pooling and GELU kinds, one table each: [model] pool/gelu, the checkpoints' attributes
 * and the banner read them. VT_POOL_CHOICES, VT_GELU_CHOICES: "token|avg", "erf|tanh" (a config key's choices) */
#define VT_POOL_NAMES(X) X(VT_POOL_TOKEN, "token") X(VT_POOL_MEAN, "avg")
#define VT_GELU_NAMES(X) X(VT_GELU_ERF, "erf") X(VT_GELU_TANH, "tanh")
#define VT_KIND_BAR(kind, name) "|" name
#define VT_POOL_CHOICES (VT_POOL_NAMES(VT_KIND_BAR) + 1)
#define VT_GELU_CHOICES (VT_GELU_NAMES(VT_KIND_BAR) + 1)
const char *vt_pool_name(vt_pool_kind k);
const char *vt_gelu_name(vt_gelu_kind k);
/* name -> kind; VT_ERR (message: what is expected) for another name */
int vt_pool_parse(const char *name, vt_pool_kind *k);
int vt_gelu_parse(const char *name, vt_gelu_kind *k);

/* the tokens before the patch tokens: the class token and the register tokens (timm's num_prefix_tokens) */
static inline int vt_vit_prefix_tokens(const vt_vit_config *c) { return 1 + c->reg_tokens; }
/* the rows of pos_embed's leading tokens: the prefix tokens, or none with no_embed_class */
static inline int vt_vit_pos_prefix(const vt_vit_config *c) { return c->no_embed_class ? 0 : vt_vit_prefix_tokens(c); }

/* fill the timm defaults (eps 1e-6, token pooling, erf GELU, mlp 4, 3 channels, fc_norm false) */
void vt_vit_config_defaults(vt_vit_config *c);
/* named presets of the paper's Table 1: "ti16" "s16" "b16" "l16" "h14" (also "vit_tiny_patch16" style
 * names); sets embed_dim, depth, num_heads, patch, mlp_ratio only */
int vt_vit_preset(vt_vit_config *c, const char *name);
/* check a description; message names the bad field */
int vt_vit_config_check(const vt_vit_config *c);
/* build the parameter set (zeroed) for a description */
int vt_vit_init(vt_vit *m, const vt_vit_config *c);
void vt_vit_free(vt_vit *m);
/* timm's initialisation from an explicit seeded RNG */
void vt_vit_init_weights(vt_vit *m, vt_rng *rng);
/* number of parameters (without the flat buffer's alignment padding) */
int64_t vt_vit_num_params(const vt_vit *m);
/* parameter by timm name, or NULL (+ vt_err) */
vt_var *vt_vit_param(vt_vit *m, const char *name);
/* A training pass (timm's model.train()): patch dropout and stochastic depth when the config asks for them.
 * Image i of the pass keeps the tokens and residual branches drawn from (key, first + i): they depend on the
 * key (one per micro-batch of an optimizer step) and the image's place in the whole batch, not on how the
 * batch is split. */
typedef struct {
    uint64_t key;
    int64_t first;
} vt_vit_train_pass;
/* The encoder: images (B, C, H, W) -> tokens (B, T, D) (T = 1 + the patch tokens kept), after the final
 * LayerNorm (none with cfg.fc_norm: the classification head normalises after pooling). tp: a training
 * pass, NULL for evaluation. acts may be NULL. With the graph's grad disabled, nothing is recorded and the
 * activations of each block are released as soon as the next exists. */
vt_var *vt_vit_encode(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp);
/* The masks of a masked-image objective for one batch (arena memory of its graph), drawn by its mask hook */
typedef struct {
    int K;                  /* patch tokens the encoder keeps per image (keep != NULL) */
    const int32_t *keep;    /* (B, K) or NULL: the token indices in [1, 1 + N) the encoder sees, ascending (MAE) */
    const int32_t *src;     /* (B, N) or NULL: patch embedding n of image b becomes embedding src[b N + n] of that
                               image (n: itself), or the [mask] token for -1 (masked patch prediction) */
    vt_var *mask_token;     /* the fill for src -1 */
    int M;                  /* patches per image the loss is on (corrupted / masked) */
    const int32_t *target;  /* (B, M): their indices in [0, N), ascending */
} vt_vit_mask;
/* the encoder with a mask (NULL: vt_vit_encode): corrupted patch embeddings before the position embedding,
 * the kept tokens after it (in place of patch dropout) */
vt_var *vt_vit_encode_masked(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp,
                             const vt_vit_mask *mask);
/* a block's twelve parameters under "<prefix>.<i>.norm1.weight" ... (timm's names), width D, MLP hidden H, and with
 * ls the LayerScale gammas ls1.gamma (after attn.proj) and ls2.gamma (after mlp.fc2), else ls1 = ls2 = -1 */
int vt_block_add_params(vt_paramset *ps, const char *prefix, int i, int64_t D, int64_t H, bool ls, vt_block_params *b);
/* one pre-norm block of m's parameters with heads attention heads (the encoder's, or MAE's decoder's); keep:
 * NULL, or the per-image stochastic-depth factors of its two branches, keep[0] and keep[1] (B each) */
vt_var *vt_block_forward(vt_vit *m, vt_graph *g, const vt_block_params *b, vt_var *x, int heads, vt_var **attn_out,
                         float *const *keep);
/* the encoder, then the objective's head: images -> logits (B, num_classes) for classification */
vt_var *vt_vit_forward(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts);
vt_var *vt_vit_forward_train(vt_vit *m, vt_graph *g, vt_var *images, vt_vit_acts *acts, const vt_vit_train_pass *tp);
/* the kept patch tokens of one image: K of the indices [prefix, prefix + N), ascending, a uniformly
 * random subset drawn from (key, image) */
void vt_vit_patch_keep(int32_t *keep, int N, int K, int prefix, uint64_t key, int64_t image);
/* stochastic depth: block i's drop rate, timm's linear rule rate * i / (depth - 1) (0 for one block) */
double vt_vit_drop_path_rate(const vt_vit_config *c, int block);
/* the factor of residual branch `branch` (0 attention, 1 MLP) of a block dropping with `rate`, for image `image`
 * of the pass with key `key`: 0 (dropped, with probability rate) or 1 / (1 - rate); a pure function of (key,
 * image, block, branch) */
float vt_vit_drop_path_factor(uint64_t key, int64_t image, int block, int branch, double rate);
/* the number of patch tokens a training pass keeps of N (N when the rate is 0) */
int vt_vit_patch_keep_count(const vt_vit_config *c, int N);
/* read every parameter from group/<timm name> of an HDF5 file; shapes must match exactly and every value
 * must be finite (a NaN or inf is refused naming file, tensor and element) */
int vt_vit_load_h5(vt_vit *m, vt_h5id file, const char *group);
int vt_vit_save_h5(const vt_vit *m, vt_h5id file, const char *group, int deflate);
/* The model description as attributes of an HDF5 group, from one table (vit_io.c): img_h img_w patch
 * in_chans num_classes embed_dim depth num_heads mlp_ratio layer_norm_eps pool fc_norm gelu init_values
 * reg_tokens no_embed_class. Write: all of them (and a note on the layout). Read over c (which keeps what a file
 * does not say): with all (a checkpoint) every one but fc_norm, init_values, reg_tokens and no_embed_class, which
 * files written before them lack (false, 0), must be there; without
 * (a golden case, a timm model) the sizes and mlp_ratio must, the others are read when present.
 * Errors name the group and the attribute; the description is not checked (vt_vit_config_check). */
int vt_vit_write_attrs(vt_h5id file, const char *group, const vt_vit_config *c);
int vt_vit_read_attrs(vt_h5id file, const char *group, vt_vit_config *c, bool all);
/* safetensors (timm state_dict names): load every parameter (F32, F64, F16 or BF16, shapes exact,
 * offsets checked against the file); save all as F32 with a __metadata__ entry (little-endian hosts) */
int vt_vit_load_safetensors(vt_vit *m, const char *path);
/* the same, except that a file without any head.* tensor (a backbone, as timm's DINO/MAE weights) loads
 * everything else and leaves the head as it was; *had_head says which it was */
int vt_vit_load_safetensors_backbone(vt_vit *m, const char *path, bool *had_head);
int vt_vit_save_safetensors(const vt_vit *m, const char *path);
/* Google's original .npz releases (zip of .npy, via libzip with CRC checks), mapped as timm's
 * _load_weights does (conv and Dense kernels transposed, q/k/v kernels into the fused qkv). Their layout
 * has no norm after pooling (Transformer/encoder_norm is timm's norm): a model with fc_norm is refused by
 * the loader and the writer. */
int vt_vit_load_npz(vt_vit *m, const char *path);
/* Members other than the model's arrays are refused by both loaders (vt_vit_load_npz, vt_vit_config_from_npz),
 * naming them, except those a real Google release carries and the loaders knowingly leave out: the
 * representation layer pre_logits/{kernel,bias} of the original ImageNet-21k checkpoints (timm's
 * _load_weights skips it too; fine-tuning replaces it with the new head). Their names, comma-separated, go to
 * out ("" for none), for the caller to report as ignored. */
int vt_vit_npz_ignored(const char *path, char *out, size_t n);
int vt_vit_save_npz(const vt_vit *m, const char *path);
/* The model such a file holds, read from its shapes into c, which starts as the config's model: embed_dim
 * (cls_token / pos_embed), depth (the blocks present), mlp_ratio (fc1; the config's kept when it gives the
 * same hidden size), patch and in_chans (patch embedding), num_classes (head) and, from pos_embed's tokens
 * less the prefix tokens it covers, the input size: the config's grid when the count is its, else a square grid (as
 * timm assumes), else an error; fc_norm: safetensors, true when the file has fc_norm.* and no norm.* (both
 * refused), npz, always false; init_values (LayerScale): 0 without blocks.*.ls1/ls2.gamma, else the config's,
 * or 1e-6 when that is 0 (the gammas are the file's; npz: always 0); reg_tokens from reg_token (npz: 0);
 * no_embed_class from pos_embed's count (vt_vit_pos_layout; npz: false). num_heads (npz: read when the q kernel keeps its heads axis), layer_norm_eps,
 * gelu and pool stay c's. */
int vt_vit_config_from_safetensors(const char *path, vt_vit_config *c);
int vt_vit_config_from_npz(const char *path, vt_vit_config *c);
/* c's img_h, img_w for a position embedding of `tokens` rows (prefix of them before the patch tokens: the class
 * and register tokens, or none with no_embed_class) named name in path, at the patch size patch: c's own grid
 * (c->img_h / c->patch ...) when the count is its, else a square one */
int vt_vit_grid_from_pos_embed(const char *path, const char *name, int64_t tokens, int prefix, int patch, vt_vit_config *c);
/* c->no_embed_class for a position embedding of `tokens` rows (c->reg_tokens set): c's own when its patch count is
 * c's grid; else the other when that gives c's grid, or a square grid where c's does not */
void vt_vit_pos_layout(int64_t tokens, int patch, vt_vit_config *c);

/* ---------------------------------------------------------------- objectives (objective.c)
 * What the encoder's tokens are trained for. An objective owns its head (the parameters it declares
 * after the encoder's, so that the flat buffer keeps timm's names and order), its loss and its
 * evaluation metrics; the trainer, the replicas and the evaluation ask it and assume nothing else
 * (no labels, no logits). Classification (token or avg pooling, fc_norm, head, label-smoothed
 * cross-entropy) is the one there is; a masked-image objective (masked patch prediction, MAE) takes its
 * targets from b->images' patches and draws its mask from b->pass, with labels NULL. */
#define VT_OBJ_MAX_METRICS 4
typedef struct {
    const char *key;        /* metrics.csv column eval_<key> */
    const char *label;      /* in printed lines: "<label> <value>" */
    const char *csv_fmt;    /* the value's format in metrics.csv, e.g. "%.9g" */
    int digits;             /* decimals printed */
    bool percent;           /* value = 100 * sum / count, printed with % (else sum / count) */
} vt_obj_metric;

/* one batch (or one replica's part of it) as the objective sees it */
typedef struct {
    vt_var *images;                 /* (B, C, H, W): what the encoder read */
    const int *labels;              /* (B) classes; NULL for a self-supervised objective */
    const vt_vit_train_pass *pass;  /* the training pass (its key), NULL in evaluation */
    float label_smoothing;          /* classification's training loss ([optim] label_smoothing) */
    const float *targets;           /* (B, num_classes) soft targets (mixup / cutmix, smoothing in them) in
                                       place of labels and smoothing in the training loss; NULL: none */
    int64_t first;                  /* the part's first image in the whole batch (its masks depend on it) */
    const vt_vit_mask *mask;        /* a masked objective's masks (its mask hook draws them), else NULL */
} vt_obj_batch;

typedef struct vt_objective {
    const char *name;
    const char *summary;            /* what the final line calls the metrics: "final test <summary>: ..." */
    int nmetrics;                   /* metric 0 is the mean loss */
    vt_obj_metric metrics[VT_OBJ_MAX_METRICS];
    int best;                       /* the metric that picks the best checkpoint */
    bool best_lowest;               /* its lowest value wins (a loss), else its highest (an accuracy) */
    bool labels;                    /* it reads the labels (the trainer hands NULL to one that does not) */
    /* declare the head's parameters after the encoder's (vt_vit_init calls it) */
    int (*add_params)(vt_vit *m);
    /* a masked objective: draw b->mask for the nb images before the encoder runs (NULL: none) */
    int (*mask)(vt_vit *m, vt_graph *g, vt_obj_batch *b, int nb);
    /* the head on the encoder's tokens (classification: the logits), NULL on error */
    vt_var *(*head)(vt_vit *m, vt_graph *g, vt_var *tokens, vt_vit_acts *acts);
    /* the mean loss over the batch (a scalar); *out (may be NULL) gets the head's output */
    vt_var *(*loss)(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, vt_var **out);
    /* evaluation of nb images: adds each metric's sum over them into sums[0..nmetrics) (metric 0: the
     * loss times nb) */
    int (*eval)(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_obj_batch *b, int nb, double *sums);
} vt_objective;

extern const vt_objective vt_objective_classification;
extern const vt_objective vt_objective_masked_color, vt_objective_masked_pixels, vt_objective_mae;
const char *vt_objective_kind_name(vt_objective_kind k);
int vt_objective_kind_parse(const char *name, vt_objective_kind *k);

/* ---- the self-supervised objectives' parts (pretrain.c, mae.c), public for the tests and vit-eval.
 * Masks are pure functions of (key, image): the key is the training pass's (a function of the seed and the
 * micro-batch's number), a fixed one in evaluation; image is the image's place in the batch. */
/* patches per image the loss is on: masked patch prediction corrupts (int)(N mask_ratio + 0.5) (1 at least), MAE
 * hides N - (int)(N (1 - mask_ratio)) (1 .. N-1) */
int vt_pretrain_masked_count(const vt_vit_config *c, int N);
uint64_t vt_pretrain_mask_key(const vt_obj_batch *b);
/* masked patch prediction: target (M) the corrupted patches, ascending; src (N) as vt_vit_mask.src: of each
 * corrupted patch, with probability 0.8 the [mask] token (-1), 0.1 another patch of the image, uniformly, else itself */
void vt_mpp_corrupt(int32_t *src, int32_t *target, int N, int M, uint64_t key, int64_t image);
/* MAE: keep (K) the visible tokens 1 + n ascending, masked (N - K) the other patches n ascending */
void vt_mae_split(int32_t *keep, int32_t *masked, int N, int K, uint64_t key, int64_t image);
/* colour classes 2^(color_bits in_chans); the class of patch n of img (C, H, W, normalised by in_mean/in_std):
 * each channel's mean in [0, 1] quantised to floor(mean 2^bits) (clamped), the first channel most significant */
int vt_color_classes(const vt_vit_config *c);
int vt_color_target(const float *img, const vt_vit_config *c, int n);
/* pixel targets: the patch (C, t, t) (t: masked_patch_pixels' target_size by t x t block means, else P) of the
 * normalised image; MAE with norm_pix_loss: minus the patch's mean, over sqrt(its unbiased variance + 1e-6) */
int vt_pixel_target_side(const vt_vit_config *c);
int vt_pixel_target_size(const vt_vit_config *c);
void vt_pixel_target(float *out, const float *img, const vt_vit_config *c, int n);
/* the pixel targets of a mask's target patches, (B, M, O), a constant of g */
vt_var *vt_pixel_targets(vt_vit *m, vt_graph *g, const vt_var *images, const vt_vit_mask *mask);
/* mean((pred - target)^2) */
vt_var *vt_mse(vt_graph *g, vt_var *pred, vt_var *target);
/* tokens (B, T, D) -> (B, M, D): rows prefix + mask->target[b M + j] */
vt_var *vt_target_tokens(vt_graph *g, vt_var *tokens, const vt_vit_mask *mask, int prefix);
/* every patch a target, nothing hidden (in g's arena) */
const vt_vit_mask *vt_mask_all(vt_graph *g, int B, int N);
/* MAE's decoder: the encoder's tokens (B, 1 + K, D) of the mask's visible patches -> the predicted pixels of
 * its target patches (B, M, C P P), in the targets' layout (normalised per patch with norm_pix_loss) */
vt_var *vt_mae_decode(vt_vit *m, vt_graph *g, vt_var *tokens, const vt_vit_mask *mask);
/* is value of o's best metric better than best (-1: none yet)? */
bool vt_objective_better(const vt_objective *o, double value, double best);
/* the objective a model description trains for (classification: the only one so far) */
const vt_objective *vt_objective_for(const vt_vit_config *c);

/* ---------------------------------------------------------------- training step, data-parallel replicas */
/* The forward and backward of one training batch on n replicas of one model: the batch is cut into n
 * contiguous parts that run side by side, one thread each with single-threaded kernels, on their own
 * graphs; the replicas read the model's parameter values and write their own gradient buffers, added
 * in a fixed tree (vt_tree_split) into the model's. For small models whose kernels are too short to
 * share among threads. n = 1 is the plain step on one graph with all threads.
 * In a data-parallel run a process computes parts [first, first + n) of `parts` parts of every batch
 * (vt_vit_replicas_set_share; x then holds only those images): the parts, their loss weights and the
 * patch-dropout draws are those of one process with `parts` replicas. */
typedef struct {
    int n;
    vt_vit *model;
    vt_vit *views;          /* n views of the model: its parameter values, own gradients (view 0: the model) */
    vt_graph *graphs;       /* one per replica (also used by evaluation) */
    void *grad_base;        /* gradient buffers of views 1..n-1 */
    bool eval_only;         /* made by vt_vit_replicas_init_eval: no gradient buffers, no training */
    int first, parts;       /* this process's parts of every batch: [first, first + n) of parts (0 and n alone) */
    int64_t x_base;         /* the batch index of x's first image in the current call */
    int64_t eval_first;     /* evaluation: the index in the evaluated images of the batch's first one (the masks
                             * of a masked objective are drawn for image eval_first + b0 + i; 0 in training) */
    double part_loss[256];  /* the last training call's mean loss of each of its parts */
} vt_vit_replicas;

int vt_vit_replicas_init(vt_vit_replicas *r, vt_vit *m, int n, size_t arena_bytes, bool recompute_attention);
/* the same for evaluation only: the views share the model's buffers (no gradient memory) */
int vt_vit_replicas_init_eval(vt_vit_replicas *r, vt_vit *m, int n, size_t arena_bytes);
void vt_vit_replicas_free(vt_vit_replicas *r);
/* compute parts [first, first + n) of `parts` of every batch (first + n <= parts) */
int vt_vit_replicas_set_share(vt_vit_replicas *r, int first, int parts);
/* the mean loss over a batch of B images from its P = min(parts, B) parts' mean losses, added in part order
 * (one part: its loss as it is) */
double vt_batch_loss(const double *part_loss, int parts, int64_t B);
/* images x (B, C, H, W), labels y (B; NULL for an objective without labels): adds scale * d(the model's
 * objective's mean loss over B)/d(params) into the model's gradient buffer (which the caller zeroes once
 * per optimizer step) and returns the mean loss; smoothing: classification's label smoothing. With a share
 * (set_share) B is the whole batch, x and y hold this process's images, the gradient and *loss are those of
 * its parts (part_loss[] each part's; vt_batch_loss over every process's gives the batch's mean). */
int vt_vit_replicas_train(vt_vit_replicas *r, float *x, const int *y, int B, float smoothing, float scale,
                          uint64_t key, double *loss);
/* the same with soft targets (B, num_classes) (mixup / cutmix: the rows of the whole batch, each replica
 * taking its part's rows) in place of y and smoothing in the loss; targets NULL: vt_vit_replicas_train */
int vt_vit_replicas_train_soft(vt_vit_replicas *r, float *x, const int *y, const float *targets, int B,
                               float smoothing, float scale, uint64_t key, double *loss);
/* fn(r, i, b0, nb, ctx) on the parts [b0, b0 + nb) of a batch of B images, part i on replica i (its view
 * and graph); parts run side by side, one thread each with single-threaded kernels (one part: here, with
 * all threads). With a share, B is the whole batch, the parts are this process's and b0 counts from the
 * whole batch's start. Returns the number of parts run (min(n, B) alone; 0 when a short batch leaves this
 * process none), or VT_ERR with the first failing part's message. */
typedef int (*vt_replica_fn)(vt_vit_replicas *r, int i, int b0, int nb, void *ctx);
int vt_vit_replicas_each(vt_vit_replicas *r, int B, vt_replica_fn fn, void *ctx);
/* inside fn: the graph of replica i reset, the objective's masks drawn (a masked objective), then the encoder
 * on images [b0, b0 + nb) of the batch (of x from x_base on: x holds this process's share); b
 * gets that part of the batch (labels y + b0 when y is not NULL; the pass of train_key, the step's key, or
 * NULL for evaluation) for the objective. Returns the tokens, NULL on error. */
vt_var *vt_vit_replicas_part_encode(vt_vit_replicas *r, int i, float *x, const int *y, int b0, int nb,
                                    const uint64_t *train_key, vt_vit_train_pass *pass, vt_obj_batch *b);

/* ---- BEGIN pos_resample (src/nn/pos_resample.c) ---- */
/* position embedding in (prefix + old_h*old_w, D) -> out (prefix + new_h*new_w, D): prefix tokens kept,
 * the grid resized (timm resample_abs_pos_embed) */
int vt_pos_resample(float *out, const float *in, int D, int prefix, int old_h, int old_w, int new_h, int new_w,
                    vt_interp mode, bool antialias);
/* ---- END pos_resample ---- */

#ifdef __cplusplus
}
#endif
#endif
