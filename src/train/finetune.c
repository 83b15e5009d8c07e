/* finetune.c - start a run from pretrained weights (--init): weights only, step 0. The source model is
 * the one the file describes (an HDF5 checkpoint's stored description, or what the shapes of a
 * .safetensors / .npz file tell, as timm reads its pretrained files); it must have the config's
 * architecture. Its tensors are then copied: a head of a different class count is re-initialised, and
 * one is made for a .safetensors backbone without a head (timm's DINO/MAE weights); the
 * position embedding is resized when the patch grid differs; any other shape mismatch is refused naming
 * the tensor and both shapes. */
#include "train.h"
#include <string.h>

/* copy pre (the model src describes, loaded from path) into m, adapting the head and pos_embed; new_head:
 * the file had none (a backbone), so the head is initialised whatever the class count */
static int transfer(vt_vit *m, const vt_vit *pre, const vt_vit_config *src, const char *path, const vt_config *c,
                    bool new_head, FILE *out)
{
    char a[96], b[96];
    int r = VT_OK;
    for (int i = 0; i < m->params.count && r == VT_OK; i++) {
        const vt_param_info *dst = &m->params.info[i];
        const bool head = strncmp(dst->name, "head.", 5) == 0;
        int j = vt_paramset_find(&pre->params, dst->name);
        float *d = m->params.data + dst->offset;
        if (j < 0 && new_head && strncmp(dst->name, "fc_norm.", 8) == 0) {   /* a new head's LayerNorm: the identity */
            for (int64_t k = 0; k < dst->numel; k++) d[k] = strcmp(dst->name, "fc_norm.weight") == 0 ? 1.0f : 0.0f;
            continue;
        }
        if (j < 0 && !(head && new_head))
            return vt_err("%s: no tensor %s (the model needs %s)", path, dst->name,
                          vt_dims_str(dst->ndim, dst->shape, a, sizeof a));
        const vt_param_info *s = j >= 0 ? &pre->params.info[j] : dst;   /* a new head: none in the file */
        bool same = s->ndim == dst->ndim;
        for (int k = 0; same && k < s->ndim; k++) same = s->shape[k] == dst->shape[k];
        const float *sv = pre->params.data + (j >= 0 ? s->offset : 0);
        /* the same token count on another grid (2x8 -> 4x4) is still a resize */
        const bool regrid = strcmp(dst->name, "pos_embed") == 0 &&
                            (src->img_h / src->patch != m->grid_h || src->img_w / src->patch != m->grid_w);
        if (same && !(head && new_head) && !regrid) {
            memcpy(d, sv, sizeof(float) * (size_t)dst->numel);
        } else if (head && (new_head || src->num_classes != m->cfg.num_classes)) {
            /* new head: zeros (the paper's fine-tuning) or timm's trunc normal */
            if (strcmp(c->head_init, "zeros") == 0 || strcmp(dst->name, "head.bias") == 0) {
                memset(d, 0, sizeof(float) * (size_t)dst->numel);
            } else {
                vt_rng rng;
                vt_rng_seed(&rng, (uint64_t)c->seed + 17);
                for (int64_t k = 0; k < dst->numel; k++) d[k] = (float)vt_rng_trunc_normal(&rng, 0, 0.02, -2, 2);
            }
            if (strcmp(dst->name, "head.weight") == 0 && new_head && src->pretrain.kind != VT_OBJ_CLASSIFY)
                fprintf(out, "head: new, %d classes (initialised: %s)\n", m->cfg.num_classes, c->head_init);
            else if (strcmp(dst->name, "head.weight") == 0 && new_head)
                fprintf(out, "head: none in the file, %d classes (initialised: %s)\n", m->cfg.num_classes, c->head_init);
            else if (strcmp(dst->name, "head.weight") == 0)
                fprintf(out, "head: %d -> %d classes (re-initialised: %s)\n", src->num_classes, m->cfg.num_classes,
                        c->head_init);
        } else if (regrid && s->shape[2] == dst->shape[2]) {
            int gh = src->img_h / src->patch, gw = src->img_w / src->patch;
            vt_interp mode;
            r = vt_interp_parse(c->pos_interp, &mode);
            if (r == VT_OK)
                r = vt_pos_resample(d, sv, (int)dst->shape[2], vt_vit_pos_prefix(&m->cfg), gh, gw, m->grid_h, m->grid_w,
                                    mode, c->pos_antialias);
            if (r == VT_OK)
                fprintf(out, "pos_embed: %dx%d -> %dx%d (%s%s)\n", gh, gw, m->grid_h, m->grid_w, c->pos_interp,
                        c->pos_antialias ? ", antialias" : "");
        } else {
            r = vt_err("%s: tensor %s has shape %s, the model needs %s", path, dst->name,
                       vt_dims_str(s->ndim, s->shape, a, sizeof a), vt_dims_str(dst->ndim, dst->shape, b, sizeof b));
        }
    }
    return r;
}

/* "dropped: mask_token, decoder_embed.* ... (the mae pretraining's, 12 tensors)": what the file has that m does not */
static void dropped_note(const vt_vit *pre, const vt_paramset *keep, vt_objective_kind kind, FILE *out)
{
    char list[512] = "", last[96] = "";
    size_t used = 0;
    int n = 0;
    for (int i = 0; i < pre->params.count; i++) {
        const char *name = pre->params.info[i].name;
        if (vt_paramset_find(keep, name) >= 0) continue;
        n++;
        char group[96];   /* decoder_blocks.3.attn.qkv.weight -> decoder_blocks.*, mpp_head.weight -> mpp_head.* */
        const char *dot = strchr(name, '.');
        if (dot) snprintf(group, sizeof group, "%.*s.*", (int)(dot - name), name);
        else snprintf(group, sizeof group, "%s", name);
        if (strcmp(group, last) == 0 || used >= sizeof list - 1) continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", group);
        used = w < 0 ? sizeof list : used + (size_t)w;
        snprintf(last, sizeof last, "%s", group);
    }
    fprintf(out, "pretraining objective %s: encoder taken; dropped %s (%d tensor%s)\n", vt_objective_kind_name(kind),
            n ? list : "nothing", n, n == 1 ? "" : "s");
}

int vt_finetune_init(vt_vit *m, const char *path, const vt_config *c, FILE *out)
{
    size_t pl = strlen(path);
    bool st = pl > 12 && strcmp(path + pl - 12, ".safetensors") == 0, npz = pl > 4 && strcmp(path + pl - 4, ".npz") == 0;
    /* the source model: for .safetensors / .npz the config's, with what the names and shapes tell (num_heads,
     * layer_norm_eps, gelu and pool stay the config's; fc_norm comes from a safetensors file's names) */
    vt_vit_config src = m->cfg;
    int r;
    if (st) {
        r = vt_vit_config_from_safetensors(path, &src);
    } else if (npz) {
        r = vt_vit_config_from_npz(path, &src);
    } else {
        vt_h5_lock();
        r = vt_ckpt_model_config(path, &src);
        vt_h5_unlock();
    }
    if (r == VT_OK) r = vt_ckpt_check_arch(path, &src, &m->cfg, false);
    if (r != VT_OK) return VT_ERR;
    bool had_head = true;   /* a .safetensors backbone may have none */
    vt_vit pre;
    if (vt_vit_init(&pre, &src) != VT_OK) return vt_err_prefix("%s: ", path);
    if (st) {
        r = vt_vit_load_safetensors_backbone(&pre, path, &had_head);
    } else if (npz) {
        r = vt_vit_load_npz(&pre, path);
        char ignored[256] = "";
        if (r == VT_OK && vt_vit_npz_ignored(path, ignored, sizeof ignored) == VT_OK && ignored[0])
            fprintf(out, "%s: ignored %s (the representation layer, which timm skips too)\n", path, ignored);
    } else {
        vt_h5_lock();
        r = vt_ckpt_load(path, &pre, NULL, NULL, NULL);
        if (r == VT_OK) vt_ckpt_note_unverified(out, "", path);   /* written before the checksums */
        vt_h5_unlock();
    }
    if (r == VT_OK && src.pretrain.kind != VT_OBJ_CLASSIFY) {   /* a pretrained encoder: its objective's parts stay behind */
        had_head = false;
        dropped_note(&pre, &m->params, src.pretrain.kind, out);
    }
    if (r == VT_OK) r = transfer(m, &pre, &src, path, c, !had_head, out);
    vt_vit_free(&pre);
    if (r == VT_OK) fprintf(out, "initialised from %s (weights only, step 0)\n", path);
    return r;
}
