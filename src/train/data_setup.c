/* data_setup.c - [data] keys to the data layer: dataset options, transforms and loaders, shared by
 * vit-train, vit-eval and vit-loader-bench so that they read a config the same way. */
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the stored size of a side of the model's input: side / pct (timm's floor(size / crop_pct)) */
static int decoded_side(int side, double pct) { return (int)floor(side / pct + 1e-6); }

void vt_config_data_options(const vt_config *c, const vt_vit_config *mc, vt_data_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = c->data_format;
    o->images_key = c->images_key;
    o->labels_key = c->labels_key;
    o->num_classes = c->num_classes > 0 ? c->num_classes : 0;
    o->cifar_coarse = c->cifar_coarse;
    o->bad_images = strcmp(c->bad_images, "skip") == 0 ? VT_BAD_SKIP : VT_BAD_REFUSE;
    o->max_image_pixels = c->max_image_pixels;
    o->unlabelled = strcmp(c->pretrain_objective, "none") != 0;   /* pretraining reads no labels */
    o->channels = mc->in_chans == 1 || mc->in_chans == 3 ? mc->in_chans : 0;
    int H = mc->img_h, W = mc->img_w;
    if (c->decode_size > 0) {   /* the shorter side, at the model's aspect */
        int S = c->decode_size;
        o->image_h = H <= W ? S : (int)lround((double)S * H / W);
        o->image_w = W <= H ? S : (int)lround((double)S * W / H);
    } else {   /* auto: the folder keeps the images' own size when they all agree and are not larger */
        double pct = c->crop_pct > 0 ? c->crop_pct : 0.875;
        o->auto_h = decoded_side(H, pct);
        o->auto_w = decoded_side(W, pct);
    }
}

int vt_config_open_data(const vt_config *c, const vt_vit_config *mc, const char *split, vt_dataset **out)
{
    vt_data_options o;
    vt_config_data_options(c, mc, &o);
    return vt_dataset_open_opts(out, c->data_path, split, &o);
}

int vt_config_transform(const vt_config *c, const vt_vit_config *mc, bool train, vt_transform *tf)
{
    memset(tf, 0, sizeof *tf);
    tf->out_c = mc->in_chans;
    tf->out_h = mc->img_h;
    tf->out_w = mc->img_w;
    if (tf->out_c > 4) return vt_err("[model] in_chans = %d: the data loader delivers at most 4 channels", tf->out_c);
    if (vt_parse_floats(c->mean, tf->mean, tf->out_c, "[data] mean") != VT_OK ||
        vt_parse_floats(c->std, tf->std, tf->out_c, "[data] std") != VT_OK)
        return VT_ERR;
    for (int k = 0; k < tf->out_c; k++)
        if (!(tf->std[k] >= 1e-6f)) return vt_err("[data] std: %g must be at least 1e-6 (normalisation divides by it)", tf->std[k]);
    tf->train = train;
    if (train && vt_randaug_parse(c->randaugment, &tf->randaug) != VT_OK) return vt_err_prefix("[data] ");
    for (int k = 0; k < tf->out_c && tf->randaug.kind == VT_RANDAUG_RAND; k++) {   /* timm: round(255 mean) */
        long v = lround(255.0 * tf->mean[k]);
        tf->randaug.fill[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    tf->hflip = c->hflip;
    tf->crop_padding = c->crop_padding;
    tf->rrc = c->random_resized_crop;
    tf->rrc_scale_min = c->rrc_scale_min;
    tf->rrc_ratio_min = c->rrc_ratio_min;
    tf->rrc_ratio_max = c->rrc_ratio_max;
    tf->crop_pct = (float)c->crop_pct;
    tf->erase_prob = (float)c->random_erasing;
    tf->erase_mode = strcmp(c->random_erasing_mode, "rand") == 0    ? VT_ERASE_RAND
                     : strcmp(c->random_erasing_mode, "const") == 0 ? VT_ERASE_CONST
                                                                     : VT_ERASE_PIXEL;
    return VT_OK;
}

int vt_config_loader(const vt_config *c, const vt_vit_config *mc, vt_dataset *ds, const int64_t *idx, int64_t n,
                     bool train, uint64_t seed, vt_loader **out)
{
    return vt_config_loader_share(c, mc, ds, idx, n, train, seed, 0, 0, 0, out);
}

int vt_config_loader_share(const vt_config *c, const vt_vit_config *mc, vt_dataset *ds, const int64_t *idx,
                           int64_t n, bool train, uint64_t seed, int first, int count, int parts, vt_loader **out)
{
    *out = NULL;
    vt_loader_config lc;
    memset(&lc, 0, sizeof lc);
    if (vt_config_transform(c, mc, train, &lc.tf) != VT_OK) return VT_ERR;
    lc.ds = ds;
    lc.indices = idx;
    lc.n = n;
    lc.batch = train || c->eval_batch_size == 0 ? c->batch_size : c->eval_batch_size;
    lc.shuffle = lc.drop_last = train;
    lc.seed = seed;
    lc.workers = c->workers;
    lc.prefetch = c->prefetch;
    lc.share_first = first;
    lc.share_count = count;
    lc.share_parts = parts;
    lc.repeats = train ? c->repeats : 1;
    return vt_loader_create(out, &lc);
}

int vt_config_train_subset(const vt_config *c, const int64_t *idx, int64_t n, uint64_t seed, int64_t **out, int64_t *nout)
{
    *out = NULL;
    *nout = n;
    if (!(c->train_fraction < 1)) return VT_OK;
    int64_t *pos, *rest, npos, nrest;
    /* a split of the positions with its own stream: not val_fraction's held-out images, whatever the seed */
    if (vt_split_indices(n, 1.0 - c->train_fraction, seed ^ 0x51AB5EEDull, &pos, &npos, &rest, &nrest) != VT_OK)
        return vt_err_prefix("[data] train_fraction: ");
    free(rest);
    if (npos == 0) {
        free(pos);
        return vt_err("[data] train_fraction = %g of %lld training images keeps none", c->train_fraction, (long long)n);
    }
    for (int64_t i = 0; i < npos && idx; i++) pos[i] = idx[pos[i]];   /* ascending, as idx is */
    *out = pos;
    *nout = npos;
    return VT_OK;
}

void vt_data_warn_skipped(FILE *f, const char *prefix, const vt_dataset *ds, const char *what)
{
    int64_t n = ds ? __atomic_load_n(&ds->skipped, __ATOMIC_RELAXED) : 0;
    if (n > 0)
        fprintf(f, "%swarning: %s: %lld undecodable image%s skipped ([data] bad_images = skip); first: %s\n", prefix,
                what, (long long)n, n == 1 ? "" : "s", ds->skip_note);
}
