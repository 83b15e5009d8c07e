/* config.c - strict INI configs: one table describes every key; our own small line parser (below)
 * reads them and the writer emits text that reads back to the same values. */
#include "train.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    {"model", "pool", VT_CFG_ENUM, F(pool), "token", 0, 0, "token|avg", false, "class token, or mean of the patch tokens (timm's global_pool='avg'), after the final LayerNorm unless fc_norm"},
    {"model", "fc_norm", VT_CFG_BOOL, F(fc_norm), "false", 0, 0, NULL, false,
     "no LayerNorm over the tokens, a LayerNorm (fc_norm.*, not norm.*) of the pooled vector instead: timm's fc_norm=True, its default for global_pool='avg' (false, the default here so that older configs and checkpoints keep their model: timm's fc_norm=False); with pool = token the same numbers as norm, under timm's other name"},
    {"model", "gelu", VT_CFG_ENUM, F(gelu), "erf", 0, 0, "erf|tanh", false, "exact GELU or the tanh approximation"},
    {"model", "patch_drop_rate", VT_CFG_FLOAT, F(patch_drop_rate), "0", 0, 0.99, NULL, false,
     "training only: fraction of patch tokens each image drops, a random subset per image and step (timm PatchDropout; evaluation keeps all)"},
    /* [data] */
    {"data", "path", VT_CFG_STRING, F(data_path), "", 0, 0, NULL, true,
     "dataset: a folder of IDX files, a CIFAR folder, an HDF5 file or an image-folder root"},
    {"data", "format", VT_CFG_ENUM, F(data_format), "auto", 0, 0, "auto|idx|cifar|hdf5|folder", false, "dataset format (auto: detect)"},
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
    {"train", "replicas", VT_CFG_INT, F(replicas), "1", 1, 256, NULL, false,
     "data-parallel replicas: each batch is cut into this many parts that run forward and backward side by side, one thread each, gradients summed (for small models whose kernels are too short to share among threads; 1: every kernel uses all threads)"},
    {"train", "eval_every_steps", VT_CFG_INT, F(eval_every_steps), "0", 0, 1 << 30, NULL, false, "evaluate every N steps (0: every epoch)"},
    /* [checkpoint] */
    {"checkpoint", "every_steps", VT_CFG_INT, F(every_steps), "0", 0, 1 << 30, NULL, false, "write a checkpoint every N steps (0: every epoch)"},
    {"checkpoint", "keep_last", VT_CFG_INT, F(keep_last), "3", 1, 1 << 20, NULL, false, "checkpoints kept (plus the best)"},
    {"checkpoint", "keep_best", VT_CFG_BOOL, F(keep_best), "true", 0, 0, NULL, false, "also keep the one with the best eval top-1"},
    {"checkpoint", "deflate", VT_CFG_INT, F(deflate), "0", 0, 9, NULL, false, "zlib compression level of checkpoint tensors (0: none; trained float weights shrink by about 1%, so it mostly costs time)"},
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

static const vt_cfg_key *find_key(const char *section, const char *key)
{
    for (const vt_cfg_key *k = keys; k->key; k++)
        if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0) return k;
    return NULL;
}

/* the table's own spelling of a section name, or NULL */
static const char *find_section(const char *section)
{
    for (const vt_cfg_key *k = keys; k->key; k++)
        if (strcmp(k->section, section) == 0) return k->section;
    return NULL;
}

static int edit_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[n][m];
}

/* "did you mean ..." text for an unknown section or key ("" when nothing is close) */
static void suggest(const char *section, const char *key, char *buf, size_t n)
{
    const vt_cfg_key *best = NULL;
    int bd = 1000;
    for (const vt_cfg_key *k = keys; k->key; k++) {
        int d = key ? edit_distance(key, k->key) + (strcmp(section, k->section) ? 2 : 0)
                    : edit_distance(section, k->section);
        if (d < bd) {
            bd = d;
            best = k;
        }
    }
    size_t len = key ? strlen(key) : strlen(section);
    if (!best || bd > (int)(len / 2 + 2)) {
        buf[0] = '\0';
        return;
    }
    if (key)
        snprintf(buf, n, " (did you mean %s in [%s]?)", best->key, best->section);
    else
        snprintf(buf, n, " (did you mean [%s]?)", best->section);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* the shortest %g text that reads back as x: a range printed with it never looks like the value */
static const char *num_text(double x, char *buf, size_t n)
{
    if (x == floor(x) && fabs(x) < 1e15) {   /* whole numbers in full: 100, not 1e+02 */
        snprintf(buf, n, "%.0f", x);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

/* "[min, max]" of a key (with between: "min<between>max"), or ">= min" when it has no upper bound;
 * integers as integers */
static const char *range_text(const vt_cfg_key *k, const char *between, char *buf, size_t n)
{
    char a[40], b[40];
    if (k->type == VT_CFG_INT) {
        snprintf(a, sizeof a, "%lld", (long long)k->min);
        snprintf(b, sizeof b, "%lld", (long long)k->max);
    } else {
        num_text(k->min, a, sizeof a);
        num_text(k->max, b, sizeof b);
    }
    if (isinf(k->max)) snprintf(buf, n, between ? ">= %s" : "(expected >= %s)", a);
    else if (between) snprintf(buf, n, "%s%s%s", a, between, b);
    else snprintf(buf, n, "[%s, %s]", a, b);
    return buf;
}

/* the file (and --set) a config came from, for messages */
const char *vt_config_origin(const vt_config *c, char *buf, size_t n)
{
    if (c->source[0]) snprintf(buf, n, "%s%s", c->source, c->overridden ? " (with --set overrides)" : "");
    else snprintf(buf, n, "%s", c->overridden ? "--set" : "config");
    return buf;
}

/* parse value into the field of c; where names the source ("cfg.ini:12" or "--set"). A string is taken as
 * given (the parser has already trimmed or unquoted it); other types ignore surrounding whitespace. */
static int assign(vt_config *c, const vt_cfg_key *k, const char *value, const char *where)
{
    char *field = (char *)c + k->offset;
    if (k->type == VT_CFG_STRING) {
        for (const char *q = value; *q; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return vt_err("%s: [%s] %s: the value holds a control character (byte 0x%02x at position %d)", where,
                              k->section, k->key, (unsigned)(unsigned char)*q, (int)(q - value) + 1);
        if (strlen(value) >= k->size)
            return vt_err("%s: [%s] %s: value longer than %zu characters", where, k->section, k->key, k->size - 1);
        snprintf(field, k->size, "%s", value);
        return VT_OK;
    }
    char tmp[VT_STR + 64];
    if (strlen(value) >= sizeof tmp)
        return vt_err("%s: [%s] %s: value longer than %zu characters", where, k->section, k->key, sizeof tmp - 1);
    snprintf(tmp, sizeof tmp, "%s", value);
    char *v = trim(tmp);
    char *end = NULL, range[96], num[40];
    switch (k->type) {
    case VT_CFG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || (errno && errno != ERANGE))
            return vt_err("%s: [%s] %s = '%s' is not an integer", where, k->section, k->key, v);
        if (errno == ERANGE)   /* a whole number, but beyond long long: out of range, not "not an integer" */
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, v,
                          range_text(k, NULL, range, sizeof range));
        if ((double)x < k->min || (double)x > k->max)
            return vt_err("%s: [%s] %s = %lld is out of range %s", where, k->section, k->key, x,
                          range_text(k, NULL, range, sizeof range));
        *(int *)field = (int)x;
        return VT_OK;
    }
    case VT_CFG_FLOAT: {
        /* decimal notation only, as the integers: strtod alone would also take hex (0x10), hex floats,
         * inf, infinity and nan */
        if (!vt_is_decimal(v))
            return vt_err("%s: [%s] %s = '%s' is not a number (expected decimal notation, e.g. 0.001 or 1e-3)",
                          where, k->section, k->key, v);
        errno = 0;
        double x = strtod(v, &end);
        if (*end || !isfinite(x))   /* 1e999: beyond a double */
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, v,
                          range_text(k, NULL, range, sizeof range));
        if (errno == ERANGE)   /* 1e-400: closer to zero than a double's normal range */
            return vt_err("%s: [%s] %s = %s is too close to zero for a double (use 0 or a larger value)", where,
                          k->section, k->key, v);
        if (x < k->min || x > k->max)
            return vt_err("%s: [%s] %s = %s is out of range %s", where, k->section, k->key, num_text(x, num, sizeof num),
                          range_text(k, NULL, range, sizeof range));
        *(double *)field = x;
        return VT_OK;
    }
    case VT_CFG_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(v, yes[i]) == 0) return *(bool *)field = true, VT_OK;
            if (strcasecmp(v, no[i]) == 0) return *(bool *)field = false, VT_OK;
        }
        return vt_err("%s: [%s] %s = '%s' is not a boolean (true/false)", where, k->section, k->key, v);
    }
    case VT_CFG_ENUM: {
        const char *p = k->choices;
        size_t n = strlen(v);
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && strncmp(p, v, n) == 0) {
                snprintf(field, k->size, "%s", v);
                return VT_OK;
            }
            p = bar ? bar + 1 : NULL;
        }
        return vt_err("%s: [%s] %s = '%s' is not one of %s", where, k->section, k->key, v, k->choices);
    }
    default: break;
    }
    return vt_err("%s: [%s] %s: unknown type", where, k->section, k->key);
}

void vt_config_defaults(vt_config *c)
{
    memset(c, 0, sizeof *c);
    for (const vt_cfg_key *k = keys; k->key; k++) assign(c, k, k->def, "defaults");
}

/* ---------------------------------------------------------------- the INI syntax
 * One rule for every key (configs/README.md says the same):
 * - a line is blank, a comment, "[section]" or "key = value"; spaces and tabs around names and values are
 *   ignored, lines end at "\n" or "\r\n", a UTF-8 byte-order mark before the first line is skipped;
 * - a comment line starts with ';' or '#'; an inline comment starts at a ';' or '#' that follows a space or
 *   tab, after a value or a [section] (so "a;b" and "a#b" are values, in "a ;b" the value is "a");
 * - a value in double quotes is taken literally: spaces at its ends, ';' and '#' are kept, \" and \\ are the
 *   only escapes, and only a comment may follow the closing quote; vt_config_write quotes exactly the values
 *   that need it, so every value reads back as written;
 * - refused, naming file:line: a NUL byte, "[]", a header without ']' or with text after it, a line that
 *   is not one of the above (no '=', no key), a key outside any section, an unknown section or key (with the
 *   nearest valid one), a key set twice, a bad quoted value, and anything assign() refuses. */
static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/* the first inline comment in s (its end when there is none): a ';' or '#' after a space or tab; lo is
 * where the text began (a ';' right there follows no blank of this text) */
static char *comment_at(char *s, const char *lo)
{
    for (; *s; s++)
        if ((*s == ';' || *s == '#') && s > lo && blank(s[-1])) return s;
    return s;
}

/* the value text after '=' (s), unquoted in place; *value points into s. Inline comments end it when
 * comments is set (file lines; --set takes the rest of its argument). NULL when fine, else what is wrong. */
static const char *parse_value(char *s, bool comments, char **value)
{
    char *p = s;
    while (blank(*p)) p++;
    *value = p;
    if (*p == '"') {
        char *w = p, *r = p + 1;
        for (;; r++) {
            if (!*r) return "unterminated quoted value (no closing \")";
            if (*r == '"') break;
            if (*r == '\\') {
                r++;
                if (*r != '"' && *r != '\\')
                    return "unknown escape in a quoted value (the only escapes are \\\" and \\\\)";
            }
            *w++ = *r;
        }
        *w = '\0';   /* w < r: the closing quote is still there */
        char *after = r + 1;
        while (blank(*after)) after++;
        if (*after && !(comments && (*after == ';' || *after == '#') && blank(after[-1])))
            return "text after the closing quote (only a comment may follow, after a space)";
        return NULL;
    }
    char *end = comments ? comment_at(p, s) : p + strlen(p);
    while (end > p && blank(end[-1])) end--;
    *end = '\0';
    return NULL;
}

/* what the writer must quote for parse_value to give it back */
static bool needs_quotes(const char *v)
{
    size_t n = strlen(v);
    if (!n) return false;
    if (blank(v[0]) || blank(v[n - 1]) || v[0] == '"' || v[0] == ';' || v[0] == '#') return true;
    for (size_t i = 1; i < n; i++)
        if ((v[i] == ';' || v[i] == '#') && blank(v[i - 1])) return true;
    return false;
}

typedef struct {
    vt_config *c;
    const char *path;
    int line;
    const char *section;   /* the table's spelling; NULL before the first header */
    char seen[128];        /* keys seen in this file, as table indices */
} parse_ctx;

static int parse_line(parse_ctx *p, char *line, size_t len)
{
    char where[1100], sug[160];
    snprintf(where, sizeof where, "%s:%d", p->path, p->line);
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return vt_err("%s: NUL byte at column %d (expected INI text; is this a binary file?)", where, (int)(nul - line) + 1);
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    char *s = line;
    if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
    while (blank(*s)) s++;
    if (!*s || *s == ';' || *s == '#') return VT_OK;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) return vt_err("%s: '%.80s' has no closing ']' (expected [section])", where, s);
        char *rest = close + 1, *q = rest;
        while (blank(*q)) q++;
        if (*q && q != comment_at(rest, rest))
            return vt_err("%s: text '%.80s' after the section header (expected [section], then nothing but a comment)",
                          where, q);
        char *name = s + 1, *ne = close;
        while (blank(*name)) name++;
        while (ne > name && blank(ne[-1])) ne--;
        *ne = '\0';
        if (!*name) return vt_err("%s: empty section name [] (expected [section])", where);
        if (!(p->section = find_section(name))) {
            suggest(name, NULL, sug, sizeof sug);
            return vt_err("%s: unknown section [%.80s]%s", where, name, sug);
        }
        return VT_OK;
    }
    char *eq = strchr(s, '=');
    if (!eq || comment_at(s, s) < eq)
        return vt_err("%s: syntax error: '%.80s' (expected [section], key = value or a comment)", where, s);
    char *ke = eq;
    while (ke > s && blank(ke[-1])) ke--;
    *ke = '\0';
    if (!*s) return vt_err("%s: syntax error: a value without a key (expected key = value)", where);
    if (!p->section)
        return vt_err("%s: '%.80s' is outside any [section] (a key = value line needs a [section] header above it)",
                      where, s);
    const vt_cfg_key *k = find_key(p->section, s);
    if (!k) {
        suggest(p->section, s, sug, sizeof sug);
        return vt_err("%s: unknown key '%.80s' in [%s]%s", where, s, p->section, sug);
    }
    int idx = (int)(k - keys);
    if (idx < (int)sizeof p->seen && p->seen[idx]) return vt_err("%s: [%s] %s is set twice", where, k->section, k->key);
    if (idx < (int)sizeof p->seen) p->seen[idx] = 1;
    char *value;
    const char *bad = parse_value(eq + 1, true, &value);
    if (bad) return vt_err("%s: [%s] %s: %s", where, k->section, k->key, bad);
    return assign(p->c, k, value, where);
}

static int load_stream(vt_config *c, FILE *f, const char *path)
{
    snprintf(c->source, sizeof c->source, "%s", path);
    parse_ctx p = {c, path, 0, NULL, {0}};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = VT_OK;
    errno = 0;
    while (r == VT_OK && (n = getline(&line, &cap, f)) >= 0) {
        p.line++;
        r = parse_line(&p, line, (size_t)n);
    }
    if (r == VT_OK && ferror(f)) r = vt_err("%s: cannot read the config file: %s", path, strerror(errno ? errno : EIO));
    free(line);
    return r;
}

int vt_config_load(vt_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return vt_err("%s: cannot open the config file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return vt_err("%s: is a folder, expected an INI file", path);
    }
    int r = load_stream(c, f, path);
    fclose(f);
    return r;
}

int vt_config_load_text(vt_config *c, const char *text, const char *name)
{
    if (!*text) {   /* fmemopen refuses an empty buffer */
        snprintf(c->source, sizeof c->source, "%s", name);
        return VT_OK;
    }
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) return vt_err("%s: cannot read the config text", name);
    int r = load_stream(c, f, name);
    fclose(f);
    return r;
}

int vt_config_set(vt_config *c, const char *assignment)
{
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq)
        return vt_err("--set %s: expected section.key=value (e.g. --set optim.lr=0.001)", assignment);
    char section[64], key[64], sug[160];
    size_t sl = (size_t)(dot - assignment), kl = (size_t)(eq - dot - 1);
    if (sl >= sizeof section || kl >= sizeof key) return vt_err("--set %s: name too long", assignment);
    memcpy(section, assignment, sl);
    section[sl] = '\0';
    memcpy(key, dot + 1, kl);
    key[kl] = '\0';
    char *s = trim(section), *k = trim(key);
    if (!find_section(s)) {
        suggest(s, NULL, sug, sizeof sug);
        return vt_err("--set %s: unknown section [%s]%s", assignment, s, sug);
    }
    const vt_cfg_key *e = find_key(s, k);
    if (!e) {
        suggest(s, k, sug, sizeof sug);
        return vt_err("--set %s: unknown key '%s' in [%s]%s", assignment, k, s, sug);
    }
    /* the value as given (ends trimmed), or in double quotes as in a file; no comments */
    char *copy = strdup(eq + 1), *value;
    if (!copy) return vt_err("out of memory");
    const char *bad = parse_value(copy, false, &value);
    int r = bad ? vt_err("--set %s: [%s] %s: %s", assignment, e->section, e->key, bad) : assign(c, e, value, "--set");
    free(copy);
    if (r == VT_OK) c->overridden = true;
    return r;
}

/* the value as the parser reads it back: numbers exactly (shortest text that round-trips), strings
 * quoted and escaped when needs_quotes says so */
static void format_value(const vt_config *c, const vt_cfg_key *k, char *buf, size_t n)
{
    const char *field = (const char *)c + k->offset;
    switch (k->type) {
    case VT_CFG_INT: snprintf(buf, n, "%d", *(const int *)field); break;
    case VT_CFG_FLOAT: num_text(*(const double *)field, buf, n); break;
    case VT_CFG_BOOL: snprintf(buf, n, "%s", *(const bool *)field ? "true" : "false"); break;
    default:
        if (!needs_quotes(field)) {
            snprintf(buf, n, "%s", field);
            break;
        }
        size_t o = 0;
        buf[o++] = '"';
        for (const char *q = field; *q && o + 3 < n; q++) {
            if (*q == '"' || *q == '\\') buf[o++] = '\\';
            buf[o++] = *q;
        }
        buf[o++] = '"';
        buf[o] = '\0';
        break;
    }
}

int vt_config_write(const vt_config *c, FILE *f)
{
    const char *section = "";
    char v[2 * VT_STR + 8];
    for (const vt_cfg_key *k = keys; k->key; k++) {
        if (strcmp(section, k->section) != 0) {
            fprintf(f, "%s[%s]\n", section[0] ? "\n" : "", k->section);
            section = k->section;
        }
        format_value(c, k, v, sizeof v);
        fprintf(f, "%s = %s\n", k->key, v);
    }
    return ferror(f) ? vt_err("cannot write the config") : VT_OK;
}

int vt_config_validate(const vt_config *c)
{
    char o[1100], a[40], b[40];
    vt_config_origin(c, o, sizeof o);
    for (const vt_cfg_key *k = keys; k->key; k++)
        if (k->required && k->type == VT_CFG_STRING && ((const char *)c + k->offset)[0] == '\0')
            return vt_err("%s: missing required key [%s] %s (%s)", o, k->section, k->key, k->help);
    if (c->warmup_steps > 0 && c->max_steps > 0 && c->warmup_steps >= c->max_steps)
        return vt_err("%s: [schedule] warmup_steps = %d is not shorter than the run ([train] max_steps = %d)", o,
                      c->warmup_steps, c->max_steps);
    if (c->crop_pct != 0 && c->crop_pct < 0.1)
        return vt_err("%s: [data] crop_pct = %s: expected 0 (resize the whole image) or a fraction in [0.1, 1]", o,
                      num_text(c->crop_pct, a, sizeof a));
    if (c->rrc_ratio_min > c->rrc_ratio_max)
        return vt_err("%s: [data] rrc_ratio_min = %s is above rrc_ratio_max = %s", o, num_text(c->rrc_ratio_min, a, sizeof a),
                      num_text(c->rrc_ratio_max, b, sizeof b));
    if (c->lr_min > c->lr && strcmp(c->schedule, "constant") != 0)
        return vt_err("%s: [schedule] lr_min = %s is above [optim] lr = %s", o, num_text(c->lr_min, a, sizeof a),
                      num_text(c->lr, b, sizeof b));
    vt_vit_config mc;
    return vt_config_model(c, &mc);
}

/* the model layer's message as a config error: "<file>: [model] <what>" (its own "model: " dropped) */
static int model_err(const vt_config *c, const char *what)
{
    char msg[1024], o[1100];
    snprintf(msg, sizeof msg, "%s", vt_errmsg());
    const char *m = strncmp(msg, "model: ", 7) == 0 ? msg + 7 : msg;
    return vt_err("%s: %s%s", vt_config_origin(c, o, sizeof o), what, m);
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
    mc->pool = strcmp(c->pool, "avg") == 0 ? VT_POOL_MEAN : VT_POOL_TOKEN;
    mc->fc_norm = c->fc_norm;
    mc->gelu = strcmp(c->gelu, "tanh") == 0 ? VT_GELU_TANH : VT_GELU_ERF;
    mc->patch_drop_rate = c->patch_drop_rate;
    if (vt_vit_config_check(mc) != VT_OK) return model_err(c, "[model] ");
    return VT_OK;
}

void vt_config_markdown(FILE *f)
{
    fprintf(f, "| section | key | type | default | range / choices | meaning |\n");
    fprintf(f, "| --- | --- | --- | --- | --- | --- |\n");
    static const char *tn[] = {"int", "float", "bool", "string", "choice"};
    for (const vt_cfg_key *k = keys; k->key; k++) {
        char range[96] = "";
        if (k->type == VT_CFG_ENUM) snprintf(range, sizeof range, "%s", k->choices);
        else if (k->type == VT_CFG_INT || k->type == VT_CFG_FLOAT) range_text(k, " .. ", range, sizeof range);
        fprintf(f, "| %s | %s | %s | %s | %s | %s%s |\n", k->section, k->key, tn[k->type],
                k->def[0] ? k->def : (k->required ? "(required)" : "\"\""), range, k->help, k->required ? " (required)" : "");
    }
}
