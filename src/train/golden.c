/* golden.c - compare this implementation with reference values computed by timm (goldens layout,
 * see shared/goldens/README.md). Every group of a file is classified by its content; model cases are
 * run forward and backward and each tensor is compared with the reference. */
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    FILE *out;
    const vt_golden_opts *opts;
    vt_golden_result *res;
    vt_h5id f;
} ctx_t;

/* compare n floats with a float64 reference: worst |a-b| against tol = rel * max|ref| (+ abs) */
static void compare(ctx_t *c, const char *what, const float *ours, const double *ref, int64_t n, double rel,
                    double abs_tol)
{
    double maxref = 0, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) maxref = fmax(maxref, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    double tol = rel * maxref + abs_tol;
    bool ok = worst <= tol;
    c->res->checked++;
    if (!ok) c->res->failed++;
    if (!ok || c->opts->verbose)
        fprintf(c->out, "  %-34s worst %.3e at %lld (tolerance %.3e, max|ref| %.3e)  %s\n", what, worst, (long long)at,
                tol, maxref, ok ? "ok" : "FAIL");
}

static int read_ref(ctx_t *c, const char *path, double **ref, int64_t expect)
{
    int nd;
    int64_t sh[8];
    if (vt_h5_read_f64(c->f, path, ref, &nd, sh) != VT_OK) return VT_ERR;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= sh[i];
    if (n != expect) {
        free(*ref);
        *ref = NULL;
        return vt_err("%s has %lld values, expected %lld", path, (long long)n, (long long)expect);
    }
    return VT_OK;
}

static int attr_int(vt_h5id f, const char *g, const char *name, int *v)
{
    int64_t x;
    if (vt_h5_attr_i64(f, g, name, &x) != VT_OK) return VT_ERR;
    *v = (int)x;
    return VT_OK;
}

/* the model description in a group's attributes (img_h img_w patch in_chans num_classes embed_dim
 * depth num_heads mlp_ratio layer_norm_eps) */
static int read_model_config(vt_h5id f, const char *g, vt_vit_config *mc)
{
    vt_vit_config_defaults(mc);
    double eps = 1e-6;
    if (attr_int(f, g, "img_h", &mc->img_h) || attr_int(f, g, "img_w", &mc->img_w) ||
        attr_int(f, g, "patch", &mc->patch) || attr_int(f, g, "in_chans", &mc->in_chans) ||
        attr_int(f, g, "num_classes", &mc->num_classes) || attr_int(f, g, "embed_dim", &mc->embed_dim) ||
        attr_int(f, g, "depth", &mc->depth) || attr_int(f, g, "num_heads", &mc->num_heads) ||
        vt_h5_attr_f64(f, g, "mlp_ratio", &mc->mlp_ratio))
        return VT_ERR;
    if (vt_h5_has_attr(f, g, "layer_norm_eps") && vt_h5_attr_f64(f, g, "layer_norm_eps", &eps) != VT_OK) return VT_ERR;
    mc->ln_eps = (float)eps;
    return vt_vit_config_check(mc);
}

/* labels (B,) of any integer type -> int */
static int read_labels(vt_h5id f, const char *path, int **labels, int64_t expect)
{
    int64_t *raw;
    int nd;
    int64_t sh[8];
    if (vt_h5_read_i64(f, path, &raw, &nd, sh) != VT_OK) return VT_ERR;
    if (nd != 1 || sh[0] != expect) {
        free(raw);
        return vt_err("%s: expected %lld labels", path, (long long)expect);
    }
    *labels = malloc((size_t)expect * sizeof(int));
    if (!*labels) {
        free(raw);
        return vt_err("out of memory");
    }
    for (int64_t i = 0; i < expect; i++) (*labels)[i] = (int)raw[i];
    free(raw);
    return VT_OK;
}

static int check_model_case(ctx_t *c, const char *g)
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
    if (read_model_config(c->f, g, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK) goto out;
    have_model = true;
    if (c->opts->weights) {
        const char *w = c->opts->weights;
        size_t wl = strlen(w);
        if (wl > 12 && strcmp(w + wl - 12, ".safetensors") == 0) {
            if (vt_vit_load_safetensors(&m, w) != VT_OK) goto out;
        } else if (wl > 4 && strcmp(w + wl - 4, ".npz") == 0) {
            if (vt_vit_load_npz(&m, w) != VT_OK) goto out;
        } else {
            vt_h5id wf = vt_h5_open(w, false);
            if (wf < 0) goto out;
            const char *grp = vt_h5_exists(wf, "/model") ? "/model" : "/";
            int r = vt_vit_load_h5(&m, wf, strcmp(grp, "/") ? grp : "");
            vt_h5_close(wf);
            if (r != VT_OK) goto out;
        }
    } else {
        snprintf(path, sizeof path, "%s/params", g);
        if (vt_vit_load_h5(&m, c->f, path) != VT_OK) goto out;
    }
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
    if (read_labels(c->f, path, &labels, B) != VT_OK) goto out;

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
    if (read_ref(c, path, &ref, B * K) != VT_OK) goto out;
    compare(c, "logits", logits->val.data, ref, B * K, 1e-5, 0);
    free(ref);
    ref = NULL;
    snprintf(path, sizeof path, "%s/loss", g);
    if (read_ref(c, path, &ref, 1) != VT_OK) goto out;
    compare(c, "loss", loss->val.data, ref, 1, 0, 1e-6);
    free(ref);
    ref = NULL;
    snprintf(path, sizeof path, "%s/loss_label_smoothing", g);
    if (vt_h5_exists(c->f, path)) {
        double eps_ls = 0.1;
        if (vt_h5_attr_f64(c->f, g, "label_smoothing", &eps_ls) != VT_OK) goto out;
        float *probs = malloc((size_t)(B * K) * sizeof(float));
        float ls = probs ? (float)vt_crossentropy_forward(probs, logits->val.data, labels, (int)B, (int)K, (float)eps_ls) : NAN;
        free(probs);
        if (read_ref(c, path, &ref, 1) != VT_OK) goto out;
        compare(c, "loss_label_smoothing", &ls, ref, 1, 0, 1e-6);
        free(ref);
        ref = NULL;
    }
    /* activations */
    struct { const char *name; vt_var *v; } act_list[2 + 2 * 64];
    int na = 0;
    act_list[na].name = "patch_embed";
    act_list[na++].v = acts.patch_embed;
    for (int i = 0; i < mc.depth && i < 64; i++) {
        static _Thread_local char names[2 * 64][32];
        snprintf(names[2 * i], 32, "block_%d_attn", i);
        snprintf(names[2 * i + 1], 32, "block_%d", i);
        act_list[na].name = names[2 * i];
        act_list[na++].v = acts.block_attn[i];
        act_list[na].name = names[2 * i + 1];
        act_list[na++].v = acts.block[i];
    }
    act_list[na].name = "norm";
    act_list[na++].v = acts.norm;
    for (int i = 0; i < na; i++) {
        snprintf(path, sizeof path, "%s/acts/%s", g, act_list[i].name);
        if (!vt_h5_exists(c->f, path) || !act_list[i].v) continue;
        int64_t n = vt_tensor_numel(&act_list[i].v->val);
        if (read_ref(c, path, &ref, n) != VT_OK) goto out;
        char what[64];
        snprintf(what, sizeof what, "acts/%s", act_list[i].name);
        compare(c, what, act_list[i].v->val.data, ref, n, 1e-4, 0);
        free(ref);
        ref = NULL;
    }
    /* every parameter gradient */
    for (int i = 0; i < m.params.count; i++) {
        const vt_param_info *pi = &m.params.info[i];
        snprintf(path, sizeof path, "%s/grads/%s", g, pi->name);
        if (!vt_h5_exists(c->f, path)) {
            vt_err("%s: missing reference gradient", path);
            goto out;
        }
        if (read_ref(c, path, &ref, pi->numel) != VT_OK) goto out;
        char what[128];
        snprintf(what, sizeof what, "grads/%s", pi->name);
        compare(c, what, m.params.grad + pi->offset, ref, pi->numel, 1e-4, 0);
        free(ref);
        ref = NULL;
    }
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
static int check_pos_resample(ctx_t *c, const char *g)
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
    if (read_ref(c, path, &ref, (prefix + nh * nw) * D) != VT_OK) goto out;
    if (vt_pos_resample(out, in, (int)D, (int)prefix, (int)oh, (int)ow, (int)nh, (int)nw, mode, aa) != VT_OK) goto out;
    fprintf(c->out, "%s: pos_embed %lldx%lld -> %lldx%lld (%s%s), D %lld\n", g, (long long)oh, (long long)ow,
            (long long)nh, (long long)nw, mode_s, aa ? ", antialias" : "", (long long)D);
    c->res->cases++;
    compare(c, "out", out, ref, (prefix + nh * nw) * D, 1e-5, 0);
    rc = VT_OK;
out:
    free(in);
    free(out);
    free(ref);
    return rc;
}

/* optimizer hyper-parameters from a group's attributes (torch names) */
static int read_optim_config(vt_h5id f, const char *g, const char *kind, vt_optim_config *oc)
{
    vt_optim_config_defaults(oc);
    char betas[64];
    if (vt_optim_kind_parse(kind, &oc->kind) != VT_OK) return VT_ERR;
    if (vt_h5_has_attr(f, g, "lr") && vt_h5_attr_f64(f, g, "lr", &oc->lr)) return VT_ERR;
    if (vt_h5_has_attr(f, g, "weight_decay") && vt_h5_attr_f64(f, g, "weight_decay", &oc->weight_decay)) return VT_ERR;
    if (oc->kind == VT_OPTIM_SGD) {
        oc->momentum = 0;
        if (vt_h5_has_attr(f, g, "momentum") && vt_h5_attr_f64(f, g, "momentum", &oc->momentum)) return VT_ERR;
        if (vt_h5_has_attr(f, g, "dampening") && vt_h5_attr_f64(f, g, "dampening", &oc->dampening)) return VT_ERR;
        if (vt_h5_has_attr(f, g, "nesterov") && vt_h5_attr_bool(f, g, "nesterov", &oc->nesterov)) return VT_ERR;
    } else {
        if (vt_h5_has_attr(f, g, "betas")) {
            if (vt_h5_attr_str(f, g, "betas", betas, sizeof betas) != VT_OK) return VT_ERR;
            if (sscanf(betas, "%lf,%lf", &oc->beta1, &oc->beta2) != 2)
                return vt_err("%s: betas '%s' is not 'b1,b2'", g, betas);
        }
        if (vt_h5_has_attr(f, g, "eps") && vt_h5_attr_f64(f, g, "eps", &oc->eps)) return VT_ERR;
    }
    return vt_optim_config_check(oc);
}

/* ---- optim/<name>: params0 (P), grads (T, P), params (T, P) after each step */
static int check_optim(ctx_t *c, const char *g)
{
    char kind[32], path[512];
    if (vt_h5_attr_str(c->f, g, "torch_optimizer", kind, sizeof kind) != VT_OK) return VT_ERR;
    for (char *k = kind; *k; k++) *k = (char)(*k >= 'A' && *k <= 'Z' ? *k - 'A' + 'a' : *k);
    vt_optim_config oc;
    if (read_optim_config(c->f, g, kind, &oc) != VT_OK) return VT_ERR;
    float *p = NULL, *grads = NULL;
    double *ref = NULL;
    int nd;
    int64_t sh[8], shg[8];
    int rc = VT_ERR;
    vt_optim o;
    bool have = false;
    snprintf(path, sizeof path, "%s/params0", g);
    if (vt_h5_read_f32(c->f, path, &p, &nd, sh) != VT_OK) goto out;
    snprintf(path, sizeof path, "%s/grads", g);
    if (vt_h5_read_f32(c->f, path, &grads, &nd, shg) != VT_OK) goto out;
    const int64_t P = sh[0], T = shg[0];
    snprintf(path, sizeof path, "%s/params", g);
    if (read_ref(c, path, &ref, T * P) != VT_OK) goto out;
    if (vt_optim_init(&o, &oc, P) != VT_OK) goto out;
    have = true;
    fprintf(c->out, "%s: %s, %lld steps of %lld parameters\n", g, kind, (long long)T, (long long)P);
    c->res->cases++;
    for (int64_t t = 0; t < T; t++) {
        vt_optim_step(&o, p, grads + t * P, oc.lr);
        char what[64];
        snprintf(what, sizeof what, "params after step %lld", (long long)t + 1);
        /* 1e-6 relative to the parameter vector's largest magnitude */
        compare(c, what, p, ref + t * P, P, 1e-6, 0);
    }
    rc = VT_OK;
out:
    if (have) vt_optim_free(&o);
    free(p);
    free(grads);
    free(ref);
    return rc;
}

/* ---- schedule groups: lrs[t] for t = 0 .. W+T-1 */
static int check_schedule(ctx_t *c, const char *g)
{
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    if (vt_h5_attr_f64(c->f, g, "base_lr", &s.base_lr) || vt_h5_attr_f64(c->f, g, "lr_min", &s.lr_min) ||
        vt_h5_attr_f64(c->f, g, "warmup_lr_init", &s.warmup_lr_init) ||
        vt_h5_attr_i64(c->f, g, "warmup_steps", &s.warmup_steps) || vt_h5_attr_i64(c->f, g, "total_steps", &s.total_steps))
        return VT_ERR;
    char path[512];
    snprintf(path, sizeof path, "%s/lrs", g);
    double *lrs;
    int nd;
    int64_t sh[8];
    if (vt_h5_read_f64(c->f, path, &lrs, &nd, sh) != VT_OK) return VT_ERR;
    double worst = 0;
    for (int64_t t = 0; t < sh[0]; t++) worst = fmax(worst, fabs(vt_lr_at(&s, t) - lrs[t]) / fmax(fabs(lrs[t]), 1e-300));
    free(lrs);
    bool ok = worst <= 1e-9;
    c->res->cases++;
    c->res->checked++;
    if (!ok) c->res->failed++;
    fprintf(c->out, "%s: warmup %lld + cosine %lld steps\n", g, (long long)s.warmup_steps, (long long)s.total_steps);
    if (!ok || c->opts->verbose)
        fprintf(c->out, "  %-34s worst relative %.3e (tolerance 1e-9)  %s\n", "lrs", worst, ok ? "ok" : "FAIL");
    return VT_OK;
}

/* ---- train_steps groups: whole training steps (label-smoothed loss, backward, clip, LR, decay groups, step) */
static int check_train_steps(ctx_t *c, const char *g)
{
    vt_vit_config mc;
    char kind[32], path[512];
    double smoothing = 0, clip = 0;
    vt_schedule s = {VT_SCHED_COSINE, 0, 0, 0, 0, 0};
    if (read_model_config(c->f, g, &mc) != VT_OK || vt_h5_attr_str(c->f, g, "optimizer", kind, sizeof kind) ||
        vt_h5_attr_f64(c->f, g, "label_smoothing", &smoothing) || vt_h5_attr_f64(c->f, g, "clip_grad_norm", &clip) ||
        vt_h5_attr_f64(c->f, g, "base_lr", &s.base_lr) || vt_h5_attr_f64(c->f, g, "lr_min", &s.lr_min) ||
        vt_h5_attr_f64(c->f, g, "warmup_lr_init", &s.warmup_lr_init) ||
        vt_h5_attr_i64(c->f, g, "warmup_steps", &s.warmup_steps) || vt_h5_attr_i64(c->f, g, "total_steps", &s.total_steps))
        return VT_ERR;
    vt_optim_config oc;
    if (read_optim_config(c->f, g, kind, &oc) != VT_OK) return VT_ERR;
    vt_vit m;
    if (vt_vit_init(&m, &mc) != VT_OK) return VT_ERR;
    vt_optim o;
    vt_graph gr;
    bool have_o = false, have_g = false;
    float *inputs = NULL;
    int64_t *labels64 = NULL;
    int *labels = NULL;
    double *ref_loss = NULL, *ref_norm = NULL, *ref = NULL;
    int rc = VT_ERR, nd;
    int64_t sh[8];
    snprintf(path, sizeof path, "%s/params_initial", g);
    if (vt_vit_load_h5(&m, c->f, path) != VT_OK) goto out;
    if (vt_optim_init(&o, &oc, m.params.numel) != VT_OK) goto out;
    have_o = true;
    for (int i = 0; i < m.params.count; i++)
        vt_optim_add_segment(&o, m.params.info[i].offset, m.params.info[i].numel,
                             vt_optim_decays(m.params.info[i].name, m.params.info[i].ndim, NULL, 0));
    snprintf(path, sizeof path, "%s/inputs", g);
    if (vt_h5_read_f32(c->f, path, &inputs, &nd, sh) != VT_OK) goto out;
    if (nd != 5) {
        vt_err("%s: expected (steps, B, C, H, W)", path);
        goto out;
    }
    const int64_t T = sh[0], B = sh[1], per = sh[2] * sh[3] * sh[4];
    snprintf(path, sizeof path, "%s/labels", g);
    if (vt_h5_read_i64(c->f, path, &labels64, NULL, NULL) != VT_OK) goto out;
    labels = malloc(sizeof(int) * (size_t)(T * B));
    if (!labels) goto out;
    for (int64_t i = 0; i < T * B; i++) labels[i] = (int)labels64[i];
    snprintf(path, sizeof path, "%s/losses", g);
    if (read_ref(c, path, &ref_loss, T) != VT_OK) goto out;
    snprintf(path, sizeof path, "%s/grad_norms_before_clip", g);
    if (read_ref(c, path, &ref_norm, T) != VT_OK) goto out;
    if (vt_graph_init(&gr, 1 << 22) != VT_OK) goto out;
    have_g = true;
    fprintf(c->out, "%s: %lld steps of %s (batch %lld, clip %g, smoothing %g, warmup %lld)\n", g, (long long)T, kind,
            (long long)B, clip, smoothing, (long long)s.warmup_steps);
    c->res->cases++;
    float *losses = malloc(sizeof(float) * (size_t)T), *norms = malloc(sizeof(float) * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        vt_graph_reset(&gr);
        vt_paramset_zero_grad(&m.params);
        vt_var *x = vt_var_wrap(&gr, inputs + t * B * per, 4, (int64_t[]){B, sh[2], sh[3], sh[4]}, "inputs");
        vt_var *logits = x ? vt_vit_forward(&m, &gr, x, NULL) : NULL;
        vt_var *loss = logits ? vt_cross_entropy(&gr, logits, labels + t * B, (float)smoothing) : NULL;
        if (!loss || vt_backward(&gr, loss) != VT_OK) {
            free(losses);
            free(norms);
            goto out;
        }
        losses[t] = loss->val.data[0];
        norms[t] = (float)vt_clip_grad_norm(m.params.grad, m.params.numel, clip);
        vt_optim_step(&o, m.params.data, m.params.grad, vt_lr_at(&s, t));
    }
    compare(c, "losses", losses, ref_loss, T, 0, 1e-5);
    /* grad norms: 1e-5 relative, element by element */
    for (int64_t t = 0; t < T; t++) {
        double r = ref_norm[t], d = fabs(norms[t] - r) / fabs(r);
        c->res->checked++;
        if (!(d <= 1e-5)) {
            c->res->failed++;
            fprintf(c->out, "  grad norm before clip, step %lld: %.8g vs %.8g (relative %.2e)  FAIL\n", (long long)t,
                    norms[t], r, d);
        } else if (c->opts->verbose) {
            fprintf(c->out, "  %-34s relative %.3e (tolerance 1e-5)  ok\n", "grad_norm_before_clip", d);
        }
    }
    free(losses);
    free(norms);
    for (int i = 0; i < m.params.count; i++) {
        const vt_param_info *pi = &m.params.info[i];
        snprintf(path, sizeof path, "%s/params_final/%s", g, pi->name);
        if (read_ref(c, path, &ref, pi->numel) != VT_OK) goto out;
        char what[128];
        snprintf(what, sizeof what, "params_final/%s", pi->name);
        compare(c, what, m.params.data + pi->offset, ref, pi->numel, 1e-4, 0);
        free(ref);
        ref = NULL;
    }
    rc = VT_OK;
out:
    if (have_g) vt_graph_free(&gr);
    if (have_o) vt_optim_free(&o);
    vt_vit_free(&m);
    free(inputs);
    free(labels64);
    free(labels);
    free(ref_loss);
    free(ref_norm);
    free(ref);
    return rc;
}

typedef enum { G_NONE, G_MODEL, G_POS_RESAMPLE, G_OPTIM, G_SCHEDULE, G_TRAIN_STEPS } group_kind;

static group_kind classify(vt_h5id f, const char *g)
{
    char p[4][512];
    snprintf(p[0], 512, "%s/params", g);
    snprintf(p[1], 512, "%s/input", g);
    snprintf(p[2], 512, "%s/logits", g);
    snprintf(p[3], 512, "%s/grads", g);
    if (vt_h5_is_group(f, p[0]) && vt_h5_exists(f, p[1]) && vt_h5_exists(f, p[2]) && vt_h5_is_group(f, p[3]))
        return G_MODEL;
    snprintf(p[0], 512, "%s/in", g);
    snprintf(p[1], 512, "%s/out", g);
    if (vt_h5_exists(f, p[0]) && vt_h5_exists(f, p[1]) && vt_h5_has_attr(f, g, "old_h")) return G_POS_RESAMPLE;
    snprintf(p[0], 512, "%s/params_initial", g);
    snprintf(p[1], 512, "%s/losses", g);
    if (vt_h5_is_group(f, p[0]) && vt_h5_exists(f, p[1])) return G_TRAIN_STEPS;
    snprintf(p[0], 512, "%s/params0", g);
    snprintf(p[1], 512, "%s/grads", g);
    if (vt_h5_exists(f, p[0]) && vt_h5_exists(f, p[1])) return G_OPTIM;
    snprintf(p[0], 512, "%s/lrs", g);
    if (vt_h5_exists(f, p[0]) && vt_h5_has_attr(f, g, "warmup_steps")) return G_SCHEDULE;
    return G_NONE;
}

static const char *kind_name(group_kind k)
{
    switch (k) {
    case G_MODEL: return "model case";
    case G_POS_RESAMPLE: return "pos-embed resampling";
    case G_OPTIM: return "optimizer trajectory";
    case G_SCHEDULE: return "LR schedule";
    case G_TRAIN_STEPS: return "training steps";
    default: return "?";
    }
}

static int walk(ctx_t *c, const char *g, int depth)
{
    group_kind k = classify(c->f, g);
    const char *name = g[0] ? g : "/";
    if (k != G_NONE) {
        if (c->opts->only_case && strcmp(c->opts->only_case, name) != 0 &&
            !(c->opts->only_case[0] != '/' && strcmp(c->opts->only_case, name + 1) == 0))
            return VT_OK;
        if (c->opts->weights && k != G_MODEL) return VT_OK;
        int before = c->res->failed, r;
        switch (k) {
        case G_MODEL: r = check_model_case(c, name); break;
        case G_POS_RESAMPLE: r = check_pos_resample(c, name); break;
        case G_OPTIM: r = check_optim(c, name); break;
        case G_SCHEDULE: r = check_schedule(c, name); break;
        case G_TRAIN_STEPS: r = check_train_steps(c, name); break;
        default:
            fprintf(c->out, "%s: %s: not checked\n", name, kind_name(k));
            c->res->not_checked++;
            return VT_OK;
        }
        if (r != VT_OK) {
            fprintf(c->out, "%s: ERROR: %s\n", name, vt_errmsg());
            c->res->errors++;
        } else {
            fprintf(c->out, "%s: %s\n", name, c->res->failed == before ? "ok" : "FAILED");
        }
        return VT_OK;
    }
    if (depth > 8) return VT_OK;
    char **names;
    int n;
    if (vt_h5_list(c->f, g[0] ? g : "/", &names, &n) != VT_OK) return VT_ERR;
    for (int i = 0; i < n; i++) {
        char child[512];
        snprintf(child, sizeof child, "%s/%s", g, names[i]);
        if (vt_h5_is_group(c->f, child)) walk(c, child, depth + 1);
    }
    vt_h5_free_names(names, n);
    return VT_OK;
}

/* the names of the groups of kind want (G_NONE: of any case kind) at or under g ("" for the root),
 * comma separated, the first 12 of count */
static void list_cases(vt_h5id f, const char *g, group_kind want, int depth, char *buf, size_t n, int *count)
{
    group_kind k = classify(f, g);
    if (k != G_NONE) {
        if (want == G_NONE || k == want) {
            size_t len = strlen(buf);
            if (*count < 12) snprintf(buf + len, n - len, "%s%s", *count ? ", " : "", g[0] ? g : "/");
            else if (*count == 12) snprintf(buf + len, n - len, ", ...");
            (*count)++;
        }
        return;
    }
    char **names;
    int m;
    if (depth > 8 || vt_h5_list(f, g[0] ? g : "/", &names, &m) != VT_OK) return;
    for (int i = 0; i < m; i++) {
        char child[512];
        snprintf(child, sizeof child, "%s/%s", g, names[i]);
        if (vt_h5_is_group(f, child)) list_cases(f, child, want, depth + 1, buf, n, count);
    }
    vt_h5_free_names(names, m);
}

/* nothing of the file was checked: say why when it is not simply that --case names no group of it
 * (the file holds no golden group at all; --case names a parent group, a dataset, or with --weights
 * a case that is not a model case) */
static int explain_nothing_checked(ctx_t *c, const char *path)
{
    const char *only = c->opts->only_case;
    char list[1024] = "", name[512];
    int n = 0;
    if (!only) {
        return vt_err("%s holds no golden groups (expected model cases: params/, input, logits, grads/; or "
                      "pos-embed resampling, optimizer, schedule or training-step groups)", path);
    }
    snprintf(name, sizeof name, "%s%s", only[0] == '/' ? "" : "/", only);
    if (!vt_h5_exists(c->f, name)) return VT_OK;   /* not in this file (the tool says so if in none) */
    group_kind k = vt_h5_is_group(c->f, name) ? classify(c->f, name) : G_NONE;
    if (k != G_NONE && c->opts->weights && k != G_MODEL) {
        list_cases(c->f, "", G_MODEL, 0, list, sizeof list, &n);
        return vt_err("%s: %s is a case of another kind (%s), not a model case: --weights takes a model case (%s: %s)",
                      path, name, kind_name(k), n ? "the model cases in the file" : "the file has none", n ? list : "");
    }
    if (!vt_h5_is_group(c->f, name)) {
        list_cases(c->f, "", G_NONE, 0, list, sizeof list, &n);
        return vt_err("%s: %s is a dataset, not a case (the cases in the file: %s)", path, name, n ? list : "none");
    }
    list_cases(c->f, name, c->opts->weights ? G_MODEL : G_NONE, 0, list, sizeof list, &n);
    if (n)
        return vt_err("%s: %s is not a case but a group of %d%s: %s (name one with --case, or leave --case out to "
                      "check them all)", path, name, n, c->opts->weights ? " model cases" : "", list);
    list_cases(c->f, "", c->opts->weights ? G_MODEL : G_NONE, 0, list, sizeof list, &n);
    return vt_err("%s: %s is not a case and holds no %scase (the %scases in the file: %s)", path, name,
                  c->opts->weights ? "model " : "", c->opts->weights ? "model " : "", n ? list : "none");
}

int vt_golden_check_file(const char *path, const vt_golden_opts *opts, FILE *out, vt_golden_result *res)
{
    vt_golden_opts defaults = {0};
    ctx_t c = {out, opts ? opts : &defaults, res, -1};
    c.f = vt_h5_open(path, false);
    if (c.f < 0) return VT_ERR;
    int found = res->cases + res->errors + res->not_checked;
    int r = walk(&c, "", 0);
    if (r == VT_OK && res->cases + res->errors + res->not_checked == found) r = explain_nothing_checked(&c, path);
    vt_h5_close(c.f);
    return r;
}
