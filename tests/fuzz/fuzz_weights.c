/* fuzz_weights.c - the pretrained-weight readers vit-train --init uses: timm .safetensors (header JSON and
 * tensors) and Google .npz (zip of .npy arrays). As vt_finetune_init does, the model is read from the file's
 * shapes and the file loaded into it; the file is also loaded into one fixed small model (the path of a
 * config whose architecture is given). A file that loads must export and load back to the same weights. */
#include "fuzz.h"
#include "nn/nn.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* parameters of the model c describes, without building it (a file may name a model of any size: the
 * trainer refuses one that is not the config's before building it; here the big ones are skipped) */
static double params_of(const vt_vit_config *c)
{
    double D = c->embed_dim, H = (int)(c->embed_dim * c->mlp_ratio), P = c->patch, K = c->num_classes;
    double T = (double)(c->img_h / (c->patch ? c->patch : 1)) * (c->img_w / (c->patch ? c->patch : 1)) + 1;
    double block = 4 * D + 3 * D * D + 3 * D + D * D + D + D * H + H + H * D + D;
    return P * P * c->in_chans * D + D + T * D + D + c->depth * block + 2 * D + D * K + K;
}

/* the fixed model: 8x8 images, patch 4, 3 channels, width 8, 2 heads, 1 block, MLP 16, 3 classes */
void vt_fuzz_small_config(vt_vit_config *c)
{
    vt_vit_config_defaults(c);
    c->img_h = c->img_w = 8;
    c->patch = 4;
    c->embed_dim = 8;
    c->num_heads = 2;
    c->depth = 1;
    c->mlp_ratio = 2;
    c->num_classes = 3;
}

typedef int (*load_fn)(vt_vit *m, const char *path);
typedef int (*save_fn)(const vt_vit *m, const char *path);

/* m loaded from path: it saves, and the saved file loads back to the same values */
static void round_trip(const char *target, const vt_vit *m, load_fn load, save_fn save, const char *ext)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/back.%s", vt_fuzz_dir(), ext);
    vt_fuzz_require(save(m, path) == VT_OK, target, "a loaded model does not save");
    vt_vit b;
    vt_fuzz_require(vt_vit_init(&b, &m->cfg) == VT_OK, target, "a loaded model's config does not build again");
    if (load(&b, path) != VT_OK) {
        fprintf(stderr, "fuzz %s: a saved model does not load back: %s\n", target, vt_errmsg());
        abort();
    }
    vt_fuzz_require(memcmp(b.params.data, m->params.data, sizeof(float) * (size_t)m->params.numel) == 0, target,
                    "a saved model loads back with other weights");
    vt_vit_free(&b);
}

static void check_loaded(const char *target, const vt_vit *m)
{
    for (int64_t k = 0; k < m->params.numel; k++)
        vt_fuzz_require(isfinite(m->params.data[k]), target, "a loaded model holds a weight that is not finite");
}

/* read the model the file describes (from base), load the file into it and into the fixed model */
static void weights_case(const char *target, const char *path, int (*describe)(const char *, vt_vit_config *),
                         load_fn load, save_fn save, const char *ext, bool safetensors)
{
    vt_vit_config c;
    vt_fuzz_small_config(&c);
    c.num_heads = 1;   /* divides any width */
    if (describe(path, &c) != VT_OK) {
        vt_fuzz_require_msg(target);
    } else if (vt_vit_config_check(&c) != VT_OK) {
        vt_fuzz_require_msg(target);
    } else if (params_of(&c) <= 1 << 22) {
        vt_vit m;
        vt_fuzz_require(vt_vit_init(&m, &c) == VT_OK, target, "a described model of < 4M parameters does not build");
        bool had_head = true;
        int r = safetensors ? vt_vit_load_safetensors_backbone(&m, path, &had_head) : load(&m, path);
        if (r != VT_OK) vt_fuzz_require_msg(target);
        else {
            check_loaded(target, &m);
            if (had_head) round_trip(target, &m, load, save, ext);
        }
        vt_vit_free(&m);
    }
    vt_fuzz_small_config(&c);
    vt_vit m;
    vt_fuzz_require(vt_vit_init(&m, &c) == VT_OK, target, "the fixed model does not build");
    if (load(&m, path) != VT_OK) vt_fuzz_require_msg(target);
    else {
        check_loaded(target, &m);
        round_trip(target, &m, load, save, ext);
    }
    vt_vit_free(&m);
}

int vt_fuzz_safetensors(const uint8_t *data, size_t size)
{
    const char *path = vt_fuzz_write(0, vt_fuzz_dir(), "w.safetensors", data, size);
    weights_case("safetensors", path, vt_vit_config_from_safetensors, vt_vit_load_safetensors, vt_vit_save_safetensors,
                 "safetensors", true);
    return 0;
}

int vt_fuzz_npz(const uint8_t *data, size_t size)
{
    const char *path = vt_fuzz_write(0, vt_fuzz_dir(), "w.npz", data, size);
    char ignored[256];
    if (vt_vit_npz_ignored(path, ignored, sizeof ignored) != VT_OK) vt_fuzz_require_msg("npz");
    weights_case("npz", path, vt_vit_config_from_npz, vt_vit_load_npz, vt_vit_save_npz, "npz", false);
    return 0;
}
