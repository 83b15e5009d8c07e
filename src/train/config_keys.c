/* config_keys.c - the table of every config key (name, type, default, range, help: the parser, --set,
 * the resolved config.ini and configs/README.md all come from it), the checks across keys, and the model
 * description a config asks for. */
#include "train.h"
#include <math.h>
#include <stddef.h>
#include <string.h>

#define F(field) offsetof(vt_config, field), sizeof(((vt_config *)0)->field)
#define UNBOUNDED HUGE_VAL   /* a float key's max when only the lower bound matters (any finite value) */

static const vt_cfg_key keys[] = {
    /* [model] */
    {"model", "preset", VT_CFG_STRING, F(model_preset), "", 0, 0, NULL, false,
     "named size (ti16 s16 b16 l16 h14, also s32 b32 l32: the paper's Table 1 and timm's Ti/S); sets embed_dim, depth, num_heads, patch_size unless given"},
    {"model", "img_size", VT_CFG_INT, F(img_size), "224", 1, 65536, NULL, false, "input resolution (square); img_h/img_w override"},
    {"model", "img_h", VT_CFG_INT, F(img_h), "0", 0, 65536, NULL, false, "input height (0: img_size)"},
    {"model", "img_w", VT_CFG_INT, F(img_w), "0", 0, 65536, NULL, false, "input width (0: img_size)"},
    {"model", "patch_size", VT_CFG_INT, F(patch_size), "16", 1, 4096, NULL, false, "patch size P (conv kernel = stride = P)"},
    {"model", "in_chans", VT_CFG_INT, F(in_chans), "3", 1, 4, NULL, false, "input channels the model takes (data is converted: gray to RGB, RGB to gray by luma; 2 and 4 take the first channels, repeating the last)"},
    {"model", "num_classes", VT_CFG_INT, F(num_classes), "0", 0, 1000000, NULL, false, "classes of the head (0: from the dataset)"},
    {"model", "embed_dim", VT_CFG_INT, F(embed_dim), "768", 1, 65536, NULL, false, "token width D"},
    {"model", "depth", VT_CFG_INT, F(depth), "12", 0, 1024, NULL, false, "number of transformer blocks"},
    {"model", "num_heads", VT_CFG_INT, F(num_heads), "12", 1, 1024, NULL, false, "attention heads (must divide embed_dim)"},
    {"model", "mlp_ratio", VT_CFG_FLOAT, F(mlp_ratio), "4", 0.01, 64, NULL, false, "MLP hidden size / embed_dim"},
    {"model", "layer_norm_eps", VT_CFG_FLOAT, F(layer_norm_eps), "1e-6", 1e-12, 1, NULL, false, "LayerNorm epsilon (timm: 1e-6)"},
    {"model", "pool", VT_CFG_ENUM, F(pool), "token", 0, 0, VT_POOL_CHOICES, false, "class token, or mean of the patch tokens (timm's global_pool='avg'), after the final LayerNorm unless fc_norm"},
    {"model", "fc_norm", VT_CFG_BOOL, F(fc_norm), "false", 0, 0, NULL, false,
     "no LayerNorm over the tokens, a LayerNorm (fc_norm.*, not norm.*) of the pooled vector instead: timm's fc_norm=True, its default for global_pool='avg' (false, the default here so that older configs and checkpoints keep their model: timm's fc_norm=False); with pool = token the same numbers as norm, under timm's other name"},
    {"model", "gelu", VT_CFG_ENUM, F(gelu), "erf", 0, 0, VT_GELU_CHOICES, false, "exact GELU or the tanh approximation"},
    {"model", "patch_drop_rate", VT_CFG_FLOAT, F(patch_drop_rate), "0", 0, 0.99, NULL, false,
     "training only: fraction of patch tokens each image drops, a random subset per image and step (timm PatchDropout; evaluation keeps all)"},
    {"model", "drop_path_rate", VT_CFG_FLOAT, F(drop_path_rate), "0", 0, 0.99, NULL, false,
     "training only: stochastic depth (timm's drop_path_rate): block i drops each residual branch of an image with probability rate * i / (depth - 1), a kept one scaled by 1 / (1 - that); evaluation keeps all"},
    {"model", "init_values", VT_CFG_FLOAT, F(init_values), "0", 0, 1e6, NULL, false,
     "LayerScale (timm's init_values, DeiT-III): > 0 gives every block ls1.gamma and ls2.gamma (x + gamma * branch) initialised to it; 0: none"},
    {"model", "reg_tokens", VT_CFG_INT, F(reg_tokens), "0", 0, 1024, NULL, false,
     "register tokens (timm's reg_tokens, reg_token (1, R, D)): after the class token, before the patches; average pooling and patch dropout leave them out as timm does"},
    {"model", "no_embed_class", VT_CFG_BOOL, F(no_embed_class), "false", 0, 0, NULL, false,
     "the position embedding covers the patch tokens only, (1, N, D) (timm's no_embed_class, DeiT-III and register-token models); false: the class and register tokens too"},
    /* [data] */
    {"data", "path", VT_CFG_STRING, F(data_path), "", 0, 0, NULL, true,
     "dataset: a folder of IDX files, a CIFAR folder, an HDF5 file or an image-folder root (with a pretraining "
     "objective also a folder of images without classes)"},
    {"data", "format", VT_CFG_ENUM, F(data_format), "auto", 0, 0, VT_DATA_FORMAT_CHOICES, false, "dataset format (auto: detect)"},
    {"data", "images_key", VT_CFG_STRING, F(images_key), "images", 0, 0, NULL, false, "HDF5 dataset of uint8 images (N, H, W, C)"},
    {"data", "labels_key", VT_CFG_STRING, F(labels_key), "labels", 0, 0, NULL, false, "HDF5 dataset of integer labels (N,)"},
    {"data", "cifar_coarse", VT_CFG_BOOL, F(cifar_coarse), "false", 0, 0, NULL, false,
     "CIFAR-100: the 20 coarse labels instead of the 100 fine ones"},
    {"data", "bad_images", VT_CFG_ENUM, F(bad_images), "refuse", 0, 0, "refuse|skip", false,
     "image folders: an undecodable JPEG/PNG is an error naming the file (refuse), or (skip) counted with a warning and left out when its header is bad, replaced by the next sample when only the full decode fails"},
    {"data", "max_image_pixels", VT_CFG_INT, F(max_image_pixels), "89478485", 1, 268435456, NULL, false,
     "image folders: an image whose header claims more pixels is refused (or skipped, with bad_images = skip) before "
     "it is decoded (Pillow's MAX_IMAGE_PIXELS and default: a small file can claim a huge image)"},
    {"data", "decode_size", VT_CFG_INT, F(decode_size), "0", 0, 16384, NULL, false,
     "image folders: size images are decoded (JPEG: DCT-scaled) and kept at before the transform, by shorter-side resize + center crop "
     "(0: the model size / crop_pct, or / 0.875 when crop_pct is 0; but the images' own size when they all agree and are not larger on both sides)"},
    {"data", "batch_size", VT_CFG_INT, F(batch_size), "128", 1, 1 << 20, NULL, false, "images per micro-batch (one forward/backward)"},
    {"data", "eval_batch_size", VT_CFG_INT, F(eval_batch_size), "0", 0, 1 << 20, NULL, false, "images per evaluation batch (0: batch_size)"},
    {"data", "workers", VT_CFG_INT, F(workers), "2", 0, 256, NULL, false, "loader threads (0: load in the training thread)"},
    {"data", "prefetch", VT_CFG_INT, F(prefetch), "4", 1, 256, NULL, false, "batches prepared ahead"},
    {"data", "val_fraction", VT_CFG_FLOAT, F(val_fraction), "0", 0, 0.9, NULL, false,
     "fraction of the training set held out for validation when there is no test split"},
    {"data", "train_fraction", VT_CFG_FLOAT, F(train_fraction), "1", 0.0001, 1, NULL, false,
     "train on this fraction of the training set only: a fixed subset drawn from [train] seed (after val_fraction's "
     "split), the same in every run of that seed (label-scarce fine-tuning and its from-scratch baseline)"},
    {"data", "mean", VT_CFG_STRING, F(mean), "0.5", 0, 0, NULL, false, "per-channel mean for normalisation (one value or one per channel, comma-separated)"},
    {"data", "std", VT_CFG_STRING, F(std), "0.5", 0, 0, NULL, false, "per-channel std for normalisation"},
    {"data", "hflip", VT_CFG_BOOL, F(hflip), "false", 0, 0, NULL, false, "random horizontal flip"},
    {"data", "random_resized_crop", VT_CFG_BOOL, F(random_resized_crop), "false", 0, 0, NULL, false, "random-resized-crop augmentation"},
    {"data", "random_erasing", VT_CFG_FLOAT, F(random_erasing), "0", 0, 1, NULL, false,
     "probability of erasing a random rectangle of each training image (timm's --reprob; 2%..1/3 of the area, aspect 0.3..3.3)"},
    {"data", "random_erasing_mode", VT_CFG_ENUM, F(random_erasing_mode), "pixel", 0, 0, "pixel|rand|const", false,
     "what fills it (timm's --remode): normal noise per pixel, per channel, or zeros (the mean)"},
    {"data", "crop_padding", VT_CFG_INT, F(crop_padding), "0", 0, 1024, NULL, false, "random crop after zero padding by this many pixels (0: off)"},
    {"data", "rrc_scale_min", VT_CFG_FLOAT, F(rrc_scale_min), "0.08", 0.001, 1, NULL, false, "random-resized-crop: smallest area fraction"},
    {"data", "rrc_ratio_min", VT_CFG_FLOAT, F(rrc_ratio_min), "0.75", 0.01, 100, NULL, false, "random-resized-crop: smallest aspect ratio"},
    {"data", "rrc_ratio_max", VT_CFG_FLOAT, F(rrc_ratio_max), "1.3333333333", 0.01, 100, NULL, false, "random-resized-crop: largest aspect ratio"},
    {"data", "crop_pct", VT_CFG_FLOAT, F(crop_pct), "0", 0, 1, NULL, false,
     "evaluation, and training without random_resized_crop: resize the shorter side to size / crop_pct, then center-crop "
     "(timm: 0.875 at 224; 0 or 0.1 .. 1); 0: resize the whole image to the model size"},
    {"data", "mixup_alpha", VT_CFG_FLOAT, F(mixup_alpha), "0", 0, 100, NULL, false,
     "mixup (timm's --mixup): each training batch mixed with its flip by lambda ~ Beta(alpha, alpha), one lambda per batch, "
     "soft targets mixed alike with [optim] label_smoothing in them (timm's Mixup, batch mode; 0: off; DeiT: 0.8)"},
    {"data", "cutmix_alpha", VT_CFG_FLOAT, F(cutmix_alpha), "0", 0, 100, NULL, false,
     "cutmix (timm's --cutmix): a box of the flipped batch pasted, lambda ~ Beta(alpha, alpha) corrected to the clipped "
     "box's area (0: off; DeiT: 1.0)"},
    {"data", "mix_prob", VT_CFG_FLOAT, F(mix_prob), "1", 0, 1, NULL, false,
     "probability that a batch is mixed when mixup or cutmix is on (timm's --mixup-prob)"},
    {"data", "switch_prob", VT_CFG_FLOAT, F(switch_prob), "0.5", 0, 1, NULL, false,
     "with both mixup and cutmix on: probability of cutmix for a mixed batch (timm's --mixup-switch-prob)"},
    {"data", "randaugment", VT_CFG_STRING, F(randaugment), "", 0, 0, NULL, false,
     "training: RandAugment in timm's notation, e.g. m9-n2 or rand-m9-n2-mstd0.5-inc1 (m magnitude of 10, n ops, mstd "
     "its noise, mmax its cap, inc1 the increasing ops, p each op's probability, 0.5), or ta (TrivialAugmentWide); PIL's "
     "ops on the uint8 image after crop and flip (Color left out for one channel; bilinear, fill the mean); \"\": off"},
    {"data", "repeats", VT_CFG_INT, F(repeats), "1", 1, 64, NULL, false,
     "repeated augmentation (DeiT's RASampler, DeiT: 3): each sample of the epoch's shuffled order repeated this many "
     "times in a row, each repeat augmented differently, the epoch cut to floor(n / 256) * 256 samples (n under 256); 1: off"},
    /* [optim] */
    {"optim", "optimizer", VT_CFG_ENUM, F(optimizer), "adamw", 0, 0, "sgd|adam|adamw", false, "update rule (torch semantics)"},
    {"optim", "lr", VT_CFG_FLOAT, F(lr), "1e-3", 0, 1e3, NULL, false, "base learning rate (after warmup)"},
    {"optim", "scale_lr", VT_CFG_BOOL, F(scale_lr), "false", 0, 0, NULL, false, "lr = lr * global_batch / 256"},
    {"optim", "beta1", VT_CFG_FLOAT, F(beta1), "0.9", 0, 0.999999999, NULL, false, "Adam beta1"},
    {"optim", "beta2", VT_CFG_FLOAT, F(beta2), "0.999", 0, 0.999999999, NULL, false, "Adam beta2"},
    {"optim", "eps", VT_CFG_FLOAT, F(eps), "1e-8", 0, 1, NULL, false, "Adam epsilon"},
    {"optim", "weight_decay", VT_CFG_FLOAT, F(weight_decay), "0.05", 0, 10, NULL, false,
     "weight decay (decoupled for AdamW; only weights of 2+ dims other than pos_embed, cls_token)"},
    {"optim", "no_weight_decay", VT_CFG_STRING, F(no_weight_decay), "", 0, 0, NULL, false,
     "extra parameter-name patterns (comma-separated, * wildcard) excluded from weight decay"},
    {"optim", "momentum", VT_CFG_FLOAT, F(momentum), "0.9", 0, 0.999999999, NULL, false, "SGD momentum"},
    {"optim", "dampening", VT_CFG_FLOAT, F(dampening), "0", 0, 1, NULL, false, "SGD dampening"},
    {"optim", "nesterov", VT_CFG_BOOL, F(nesterov), "false", 0, 0, NULL, false, "SGD Nesterov momentum"},
    {"optim", "clip_grad_norm", VT_CFG_FLOAT, F(clip_grad_norm), "0", 0, UNBOUNDED, NULL, false, "global-norm gradient clipping (0: off)"},
    {"optim", "label_smoothing", VT_CFG_FLOAT, F(label_smoothing), "0", 0, 0.999, NULL, false, "label smoothing of the cross-entropy"},
    {"optim", "layer_decay", VT_CFG_FLOAT, F(layer_decay), "1", 0.01, 1, NULL, false,
     "layer-wise learning-rate decay (BEiT, MAE fine-tuning): block i of depth (1-based) learns at lr * layer_decay^(depth + 1 - i), "
     "the embeddings (cls_token, pos_embed, patch_embed) at lr * layer_decay^(depth + 1), the final norm and head at lr (1: off)"},
    {"optim", "accum_steps", VT_CFG_INT, F(accum_steps), "1", 1, 1 << 20, NULL, false,
     "micro-batches accumulated per optimizer step (global batch = batch_size * accum_steps)"},
    /* [schedule] */
    {"schedule", "name", VT_CFG_ENUM, F(schedule), "cosine", 0, 0, "cosine|linear|constant", false, "LR after warmup"},
    {"schedule", "warmup_steps", VT_CFG_INT, F(warmup_steps), "0", 0, 1 << 30, NULL, false, "linear warmup, in optimizer steps"},
    {"schedule", "warmup_epochs", VT_CFG_FLOAT, F(warmup_epochs), "0", 0, 1e6, NULL, false, "warmup in epochs (used when warmup_steps is 0)"},
    {"schedule", "warmup_lr_init", VT_CFG_FLOAT, F(warmup_lr_init), "1e-6", 0, 1e3, NULL, false, "LR at step 0 of the warmup"},
    {"schedule", "lr_min", VT_CFG_FLOAT, F(lr_min), "1e-5", 0, 1e3, NULL, false, "LR at the end of the cosine / linear decay"},
    /* [train] */
    {"train", "epochs", VT_CFG_INT, F(epochs), "10", 1, 1 << 20, NULL, false, "passes over the training set"},
    {"train", "max_steps", VT_CFG_INT, F(max_steps), "0", 0, 1 << 30, NULL, false, "the run's length in optimizer steps, in place of epochs (shorter or longer; 0: epochs decide)"},
    {"train", "seed", VT_CFG_INT, F(seed), "0", 0, 2147483647, NULL, false, "seed of initialisation, shuffling and augmentation"},
    {"train", "threads", VT_CFG_INT, F(threads), "0", 0, 1024, NULL, false, "compute threads (0: all cores)"},
    {"train", "log_every_steps", VT_CFG_INT, F(log_every_steps), "50", 1, 1 << 30, NULL, false, "metrics.csv row and progress line period"},
    {"train", "recompute_attention", VT_CFG_BOOL, F(recompute_attention), "false", 0, 0, NULL, false,
     "keep 2 floats per attention row instead of the T x T probabilities; backward recomputes them (bitwise the same, one more GEMM per head): less memory for long sequences"},
    {"train", "shard_optimizer", VT_CFG_BOOL, F(shard_optimizer), "false", 0, 0, NULL, false,
     "data-parallel runs (mpirun): each rank keeps and updates the optimizer moments of 1/ranks of the parameters, "
     "then the ranks gather the updated parameters (ZeRO stage 1; the same weights, checkpoints hold the whole state)"},
    {"train", "replicas", VT_CFG_INT, F(replicas), "1", 1, 256, NULL, false,
     "data-parallel replicas: each batch is cut into this many parts that run forward and backward side by side, one thread each, gradients summed (for small models whose kernels are too short to share among threads; 1: every kernel uses all threads)"},
    {"train", "eval_every_steps", VT_CFG_INT, F(eval_every_steps), "0", 0, 1 << 30, NULL, false, "evaluate every N steps (0: every epoch)"},
    {"train", "ema_decay", VT_CFG_FLOAT, F(ema_decay), "0", 0, 0.999999999, NULL, false,
     "EMA of the weights after every optimizer step, ema = decay ema + (1 - decay) w (timm's ModelEmaV2; timm's "
     "default 0.9998), evaluated beside the model (metrics.csv ema_eval_*), kept in checkpoints (/ema; vit-eval and "
     "vit-export --ema); 0: off"},
    {"train", "ema_warmup", VT_CFG_BOOL, F(ema_warmup), "false", 0, 0, NULL, false,
     "timm's ModelEmaV3 warmup: at update t the decay is min(ema_decay, 1 - t^(-2/3)) (0 at the first, which copies "
     "the weights), by lerp"},
    /* [checkpoint] */
    {"checkpoint", "every_steps", VT_CFG_INT, F(every_steps), "0", 0, 1 << 30, NULL, false, "write a checkpoint every N steps (0: every epoch)"},
    {"checkpoint", "keep_last", VT_CFG_INT, F(keep_last), "3", 1, 1 << 20, NULL, false, "checkpoints kept (plus the best)"},
    {"checkpoint", "keep_best", VT_CFG_BOOL, F(keep_best), "true", 0, 0, NULL, false, "also keep the one with the best eval top-1"},
    {"checkpoint", "deflate", VT_CFG_INT, F(deflate), "0", 0, 9, NULL, false, "zlib compression level of checkpoint tensors (0: none; trained float weights shrink by about 1%, so it mostly costs time)"},
    /* [pretrain] */
    {"pretrain", "objective", VT_CFG_ENUM, F(pretrain_objective), "none", 0, 0, "none|masked_patch_color|masked_patch_pixels|mae", false,
     "self-supervised pretraining without labels (none: supervised classification): the paper's masked patch prediction "
     "(section 4.6) of the mean colour or the pixels of corrupted patches, or a masked autoencoder (He et al.)"},
    {"pretrain", "mask_ratio", VT_CFG_FLOAT, F(mask_ratio), "0", 0, 0.99, NULL, false,
     "fraction of each image's patches masked (0: the objective's default, 0.5 for masked patch prediction, 0.75 for mae)"},
    {"pretrain", "color_bits", VT_CFG_INT, F(color_bits), "3", 1, 8, NULL, false,
     "masked_patch_color: bits per channel of the mean-colour classes (3: 512 classes for RGB, 8 for gray)"},
    {"pretrain", "target_size", VT_CFG_INT, F(target_size), "0", 0, 4096, NULL, false,
     "masked_patch_pixels: regress the patch averaged down to target_size x target_size (must divide patch_size; 0: the full patch)"},
    {"pretrain", "decoder_dim", VT_CFG_INT, F(decoder_dim), "512", 1, 65536, NULL, false, "mae: the decoder's token width"},
    {"pretrain", "decoder_depth", VT_CFG_INT, F(decoder_depth), "8", 0, 1024, NULL, false, "mae: the decoder's blocks"},
    {"pretrain", "decoder_heads", VT_CFG_INT, F(decoder_heads), "16", 1, 1024, NULL, false,
     "mae: the decoder's attention heads (must divide decoder_dim)"},
    {"pretrain", "norm_pix_loss", VT_CFG_BOOL, F(norm_pix_loss), "true", 0, 0, NULL, false,
     "mae: the target pixels of each patch normalised by the patch's mean and variance (MAE's default)"},
    /* [finetune] */
    {"finetune", "init", VT_CFG_STRING, F(init), "", 0, 0, NULL, false,
     "start from these weights (HDF5 checkpoint, .safetensors or Google .npz): weights only, step 0"},
    {"finetune", "pos_interp", VT_CFG_ENUM, F(pos_interp), "bicubic", 0, 0, "bicubic|bilinear", false,
     "interpolation of the position embeddings when the grid changes"},
    {"finetune", "pos_antialias", VT_CFG_BOOL, F(pos_antialias), "false", 0, 0, NULL, false, "antialias when shrinking the grid"},
    {"finetune", "head_init", VT_CFG_ENUM, F(head_init), "zeros", 0, 0, "zeros|trunc_normal", false,
     "new head when the number of classes differs"},
    {NULL, NULL, 0, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

const vt_cfg_key *vt_config_keys(void) { return keys; }

static int model_err(const vt_config *c, const char *what)
{
    char msg[1024], o[1100];
    snprintf(msg, sizeof msg, "%s", vt_errmsg());
    const char *m = strncmp(msg, "model: ", 7) == 0 ? msg + 7 : msg;
    if (m[0] == '[') what = "";   /* the message names its section itself ([pretrain]) */
    return vt_err("%s: %s%s", vt_config_origin(c, o, sizeof o), what, m);
}

/* the [pretrain] keys into the model description; [data] mean/std are the normalisation its images carry */
static int pretrain_model(const vt_config *c, vt_vit_config *mc)
{
    vt_pretrain_config *p = &mc->pretrain;
    if (strcmp(c->pretrain_objective, "none") == 0) return VT_OK;
    if (vt_objective_kind_parse(c->pretrain_objective, &p->kind) != VT_OK) return VT_ERR;
    p->mask_ratio = c->mask_ratio > 0 ? c->mask_ratio : p->kind == VT_OBJ_MAE ? 0.75 : 0.5;
    p->color_bits = c->color_bits;
    p->target_size = c->target_size;
    p->decoder_dim = c->decoder_dim;
    p->decoder_depth = c->decoder_depth;
    p->decoder_heads = c->decoder_heads;
    p->norm_pix_loss = c->norm_pix_loss;
    const int n = mc->in_chans < 4 ? mc->in_chans : 4;
    if (vt_parse_floats(c->mean, p->in_mean, n, "[data] mean") != VT_OK || vt_parse_floats(c->std, p->in_std, n, "[data] std") != VT_OK)
        return VT_ERR;
    return VT_OK;
}

int vt_config_model(const vt_config *c, vt_vit_config *mc)
{
    vt_vit_config_defaults(mc);
    mc->embed_dim = c->embed_dim;
    mc->depth = c->depth;
    mc->num_heads = c->num_heads;
    mc->patch = c->patch_size;
    mc->mlp_ratio = c->mlp_ratio;
    if (c->model_preset[0] && vt_vit_preset(mc, c->model_preset) != VT_OK) return model_err(c, "[model] preset: ");
    mc->img_h = c->img_h ? c->img_h : c->img_size;
    mc->img_w = c->img_w ? c->img_w : c->img_size;
    mc->in_chans = c->in_chans;
    mc->num_classes = c->num_classes ? c->num_classes : 1;   /* 0: filled in from the dataset */
    mc->ln_eps = (float)c->layer_norm_eps;
    if (vt_pool_parse(c->pool, &mc->pool) != VT_OK || vt_gelu_parse(c->gelu, &mc->gelu) != VT_OK)
        return model_err(c, "[model] ");
    mc->fc_norm = c->fc_norm;
    mc->patch_drop_rate = c->patch_drop_rate;
    mc->drop_path_rate = c->drop_path_rate;
    mc->init_values = c->init_values;
    mc->reg_tokens = c->reg_tokens;
    mc->no_embed_class = c->no_embed_class;
    if (pretrain_model(c, mc) != VT_OK) return model_err(c, "");
    if (vt_vit_config_check(mc) != VT_OK) return model_err(c, "[model] ");
    return VT_OK;
}

