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
        vt_h5id wf = vt_h5_open(c->opts->weights, false);
        if (wf < 0) goto out;
        const char *grp = vt_h5_exists(wf, "/model") ? "/model" : "/";
        int r = vt_vit_load_h5(&m, wf, strcmp(grp, "/") ? grp : "");
        vt_h5_close(wf);
        if (r != VT_OK) goto out;
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
        int r = VT_ERR;
        bool implemented = k == G_MODEL;
        if (!implemented) {
            fprintf(c->out, "%s: %s: not checked (not implemented yet)\n", name, kind_name(k));
            c->res->not_checked++;
            return VT_OK;
        }
        if (c->opts->weights && k != G_MODEL) return VT_OK;
        int before = c->res->failed;
        r = check_model_case(c, name);
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

int vt_golden_check_file(const char *path, const vt_golden_opts *opts, FILE *out, vt_golden_result *res)
{
    vt_golden_opts defaults = {0};
    ctx_t c = {out, opts ? opts : &defaults, res, -1};
    c.f = vt_h5_open(path, false);
    if (c.f < 0) return VT_ERR;
    int r = walk(&c, "", 0);
    vt_h5_close(c.f);
    return r;
}
