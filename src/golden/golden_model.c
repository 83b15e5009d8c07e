/* golden_model.c - model cases (forward, loss, activations and every gradient of a ViT against timm's)
 * and position-embedding resampling against timm's resample_abs_pos_embed. */
#include "golden_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the case's weights: its params/ group, or the file of --weights (a checkpoint, .safetensors or .npz) */
static int load_weights(ctx_t *c, const char *g, vt_vit *m)
{
    char path[512];
    if (c->opts->weights) {
        const char *w = c->opts->weights;
        size_t wl = strlen(w);
        if (wl > 12 && strcmp(w + wl - 12, ".safetensors") == 0) {
            if (vt_vit_load_safetensors(m, w) != VT_OK) return VT_ERR;
        } else if (wl > 4 && strcmp(w + wl - 4, ".npz") == 0) {
            if (vt_vit_load_npz(m, w) != VT_OK) return VT_ERR;
        } else {
            vt_h5id wf = vt_h5_open(w, false);
            if (wf < 0) return VT_ERR;
            const char *grp = vt_h5_exists(wf, "/model") ? "/model" : "/";
            int r = vt_vit_load_h5(m, wf, strcmp(grp, "/") ? grp : "");
            vt_h5_close(wf);
            if (r != VT_OK) return VT_ERR;
        }
    } else {
        snprintf(path, sizeof path, "%s/params", g);
        if (vt_vit_load_h5(m, c->f, path) != VT_OK) return VT_ERR;
    }
    return VT_OK;
}

/* the activations the reference holds (patch_embed, block_<i>_attn, block_<i>, norm) */
static int compare_acts(ctx_t *c, const char *g, const vt_vit_acts *acts, int depth)
{
    char path[512];
    double *ref = NULL;
    struct { const char *name; vt_var *v; } act_list[2 + 2 * 64];
    int na = 0;
    act_list[na].name = "patch_embed";
    act_list[na++].v = acts->patch_embed;
    for (int i = 0; i < depth && i < 64; i++) {
        static _Thread_local char names[2 * 64][32];
        snprintf(names[2 * i], 32, "block_%d_attn", i);
        snprintf(names[2 * i + 1], 32, "block_%d", i);
        act_list[na].name = names[2 * i];
        act_list[na++].v = acts->block_attn[i];
        act_list[na].name = names[2 * i + 1];
        act_list[na++].v = acts->block[i];
    }
    act_list[na].name = "norm";
    act_list[na++].v = acts->norm;
    for (int i = 0; i < na; i++) {
        snprintf(path, sizeof path, "%s/acts/%s", g, act_list[i].name);
        if (!vt_h5_exists(c->f, path) || !act_list[i].v) continue;
        int64_t n = vt_tensor_numel(&act_list[i].v->val);
        if (golden_read_ref(c, path, &ref, n) != VT_OK) {
            free(ref);
            return VT_ERR;
        }
        char what[64];
        snprintf(what, sizeof what, "acts/%s", act_list[i].name);
        golden_compare(c, what, act_list[i].v->val.data, ref, n, 1e-4, 0);
        free(ref);
        ref = NULL;
    }
    return VT_OK;
}

int golden_check_model_case(ctx_t *c, const char *g)
{
    vt_vit_config mc;
    vt_vit m;
    vt_graph gr;
    char path[512];
    float *input = NULL;
    int *labels = NULL;
    double *ref = NULL;
    int rc = VT_ERR;
    bool have_model = false, have_graph = false;
    if (golden_read_model_config(c->f, g, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK) goto out;
    have_model = true;
    if (load_weights(c, g, &m) != VT_OK) goto out;
    int nd;
    int64_t sh[8];
    snprintf(path, sizeof path, "%s/input", g);
    if (vt_h5_read_f32(c->f, path, &input, &nd, sh) != VT_OK) goto out;
    if (nd != 4) {
        vt_err("%s: expected (B, C, H, W)", path);
        goto out;
    }
    const int64_t B = sh[0];
    snprintf(path, sizeof path, "%s/labels", g);
    if (golden_read_labels(c->f, path, &labels, B) != VT_OK) goto out;

    fprintf(c->out, "%s: ViT %dx%d patch %d, %d channels, dim %d, depth %d, heads %d, mlp %g, %d classes, batch %lld%s%s\n",
            g, mc.img_h, mc.img_w, mc.patch, mc.in_chans, mc.embed_dim, mc.depth, mc.num_heads, mc.mlp_ratio,
            mc.num_classes, (long long)B, c->opts->weights ? ", weights from " : "",
            c->opts->weights ? c->opts->weights : "");
    if (vt_graph_init(&gr, 1 << 22) != VT_OK) goto out;
    have_graph = true;
    vt_vit_acts acts = {0};
    acts.block = vt_arena_calloc(&gr.arena, sizeof(vt_var *) * (size_t)(mc.depth + 1));
    acts.block_attn = vt_arena_calloc(&gr.arena, sizeof(vt_var *) * (size_t)(mc.depth + 1));
    vt_var *img = vt_var_wrap(&gr, input, 4, sh, "input");
    vt_var *logits = img ? vt_vit_forward(&m, &gr, img, &acts) : NULL;
    vt_var *loss = logits ? vt_cross_entropy(&gr, logits, labels, 0.0f) : NULL;
    vt_paramset_zero_grad(&m.params);
    if (!loss || vt_backward(&gr, loss) != VT_OK) goto out;
    c->res->cases++;

    const int64_t K = mc.num_classes;
    snprintf(path, sizeof path, "%s/logits", g);
    if (golden_read_ref(c, path, &ref, B * K) != VT_OK) goto out;
    golden_compare(c, "logits", logits->val.data, ref, B * K, 1e-5, 0);
    free(ref);
    ref = NULL;
    snprintf(path, sizeof path, "%s/loss", g);
    if (golden_read_ref(c, path, &ref, 1) != VT_OK) goto out;
    golden_compare(c, "loss", loss->val.data, ref, 1, 0, 1e-6);
    free(ref);
    ref = NULL;
    snprintf(path, sizeof path, "%s/loss_label_smoothing", g);
    if (vt_h5_exists(c->f, path)) {
        double eps_ls = 0.1;
        if (vt_h5_attr_f64(c->f, g, "label_smoothing", &eps_ls) != VT_OK) goto out;
        float *probs = malloc((size_t)(B * K) * sizeof(float));
        float ls = probs ? (float)vt_crossentropy_forward(probs, logits->val.data, labels, (int)B, (int)K, (float)eps_ls) : NAN;
        free(probs);
        if (golden_read_ref(c, path, &ref, 1) != VT_OK) goto out;
        golden_compare(c, "loss_label_smoothing", &ls, ref, 1, 0, 1e-6);
        free(ref);
        ref = NULL;
    }
    if (compare_acts(c, g, &acts, mc.depth) != VT_OK) goto out;
    if (golden_compare_params(c, g, "grads", &m, m.params.grad, "gradient") != VT_OK) goto out;   /* every parameter gradient */
    rc = VT_OK;
out:
    free(ref);
    free(input);
    free(labels);
    if (have_graph) vt_graph_free(&gr);
    if (have_model) vt_vit_free(&m);
    return rc;
}

/* ---- pos_resample/case_*: in (1, prefix + old_h*old_w, D) -> out (1, prefix + new_h*new_w, D) */
int golden_check_pos_resample(ctx_t *c, const char *g)
{
    int64_t oh, ow, nh, nw, prefix = 1;
    char mode_s[32], path[512];
    bool aa = false;
    if (vt_h5_attr_i64(c->f, g, "old_h", &oh) || vt_h5_attr_i64(c->f, g, "old_w", &ow) ||
        vt_h5_attr_i64(c->f, g, "new_h", &nh) || vt_h5_attr_i64(c->f, g, "new_w", &nw) ||
        vt_h5_attr_str(c->f, g, "mode", mode_s, sizeof mode_s))
        return VT_ERR;
    if (vt_h5_has_attr(c->f, g, "num_prefix_tokens") && vt_h5_attr_i64(c->f, g, "num_prefix_tokens", &prefix)) return VT_ERR;
    if (vt_h5_has_attr(c->f, g, "antialias") && vt_h5_attr_bool(c->f, g, "antialias", &aa)) return VT_ERR;
    bool ac = false;
    if (vt_h5_has_attr(c->f, g, "align_corners") && vt_h5_attr_bool(c->f, g, "align_corners", &ac)) return VT_ERR;
    if (ac) return vt_err("%s: align_corners=True is not supported (timm uses False)", g);
    vt_interp mode;
    if (vt_interp_parse(mode_s, &mode) != VT_OK) return VT_ERR;
    float *in = NULL;
    double *ref = NULL;
    int nd;
    int64_t sh[8];
    snprintf(path, sizeof path, "%s/in", g);
    if (vt_h5_read_f32(c->f, path, &in, &nd, sh) != VT_OK) return VT_ERR;
    int64_t D = sh[nd - 1];
    int rc = VT_ERR;
    float *out = malloc(sizeof(float) * (size_t)((prefix + nh * nw) * D));
    if (!out || sh[nd - 2] != prefix + oh * ow) {
        vt_err("%s: in has %lld tokens, expected %lld", g, (long long)sh[nd - 2], (long long)(prefix + oh * ow));
        goto out;
    }
    snprintf(path, sizeof path, "%s/out", g);
    if (golden_read_ref(c, path, &ref, (prefix + nh * nw) * D) != VT_OK) goto out;
    if (vt_pos_resample(out, in, (int)D, (int)prefix, (int)oh, (int)ow, (int)nh, (int)nw, mode, aa) != VT_OK) goto out;
    fprintf(c->out, "%s: pos_embed %lldx%lld -> %lldx%lld (%s%s), D %lld\n", g, (long long)oh, (long long)ow,
            (long long)nh, (long long)nw, mode_s, aa ? ", antialias" : "", (long long)D);
    c->res->cases++;
    golden_compare(c, "out", out, ref, (prefix + nh * nw) * D, 1e-5, 0);
    rc = VT_OK;
out:
    free(in);
    free(out);
    free(ref);
    return rc;
}

