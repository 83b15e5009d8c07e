/* fuzz_h5.c - our two HDF5 readers: checkpoints (as vit-train --resume and --init read them: the stored
 * model description, then the model, optimizer state, training state and config text, and the search for
 * the newest checkpoint of a folder) and HDF5 datasets (vt_dataset_open_opts, every sample read). The file
 * is built from a description (h5build.c), so that the fuzzer explores structure, names, types, shapes and
 * values rather than libhdf5's own parsing of damaged bytes. */
#include "fuzz.h"
#include "optim/optim.h"
#include "train/train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int vt_fuzz_ckpt(const uint8_t *data, size_t size)
{
    const char *dir = vt_fuzz_subdir("run");
    char path[1200];
    snprintf(path, sizeof path, "%s/ckpt-000000007.h5", dir);
    if (vt_fuzz_h5build(path, data, size) != 0) return 0;
    char found_path[1200], skipped[512];
    bool found = false;
    vt_fuzz_require(vt_ckpt_find_latest(dir, found_path, sizeof found_path, &found, skipped, sizeof skipped) == VT_OK,
                    "ckpt", "vt_ckpt_find_latest failed on a readable folder");
    vt_vit_config mc;
    if (vt_ckpt_model_config(path, &mc) != VT_OK) {
        vt_fuzz_require_msg("ckpt");
        return 0;
    }
    vt_fuzz_require(vt_vit_config_check(&mc) == VT_OK, "ckpt", "an accepted model description fails its check");
    /* a checkpoint may describe any model; only the small ones are built (the trainer refuses another
     * architecture than the config's before building it) */
    double D = mc.embed_dim, H = (int)(mc.embed_dim * mc.mlp_ratio), T = (double)(mc.img_h / mc.patch) * (mc.img_w / mc.patch);
    double params = mc.depth * (4 * D * D + 2 * D * H) + (T + 1) * D + (double)mc.patch * mc.patch * mc.in_chans * D +
                    D * mc.num_classes;
    if (params > 1 << 22) return 0;
    vt_vit m;
    vt_fuzz_require(vt_vit_init(&m, &mc) == VT_OK, "ckpt", "a small accepted model does not build");
    vt_optim_config oc;
    vt_optim_config_defaults(&oc);
    oc.kind = VT_OPTIM_ADAMW;
    vt_optim o;
    vt_fuzz_require(vt_optim_init(&o, &oc, m.params.numel) == VT_OK, "ckpt", "the optimizer does not build");
    vt_train_state s;
    char *text = NULL;
    if (vt_ckpt_load(path, &m, &o, &s, &text) != VT_OK) {
        vt_fuzz_require_msg("ckpt");
    } else {
        for (int64_t k = 0; k < m.params.numel; k++)
            vt_fuzz_require(isfinite(m.params.data[k]) && isfinite(o.m[k]) && isfinite(o.v[k]) && o.v[k] >= 0, "ckpt",
                            "a loaded checkpoint holds values that are not finite (or a negative second moment)");
        vt_config c;
        vt_config_defaults(&c);
        if (text && vt_config_load_text(&c, text, "checkpoint /config") != VT_OK) vt_fuzz_require_msg("ckpt");
    }
    free(text);
    /* weights only, as --init reads a checkpoint */
    if (vt_ckpt_load(path, &m, NULL, NULL, NULL) != VT_OK) vt_fuzz_require_msg("ckpt");
    vt_optim_free(&o);
    vt_vit_free(&m);
    return 0;
}

int vt_fuzz_h5data(const uint8_t *data, size_t size)
{
    const char *dir = vt_fuzz_subdir("h5data");
    char path[1200];
    snprintf(path, sizeof path, "%s/data.h5", dir);
    if (vt_fuzz_h5build(path, data, size) != 0) return 0;
    vt_data_options o = {0};
    vt_fuzz_read_dataset("h5data", path, "train", &o);
    vt_fuzz_read_dataset("h5data", path, "test", &o);
    o.format = "hdf5";
    o.num_classes = 3;
    vt_fuzz_read_dataset("h5data", path, "train", &o);
    return 0;
}
