/* golden.c - compare this implementation with reference values computed by timm (goldens layout,
 * see shared/goldens/README.md). Every group of a file is classified by its content and checked by the
 * checker of its kind (golden_model.c: model cases and position-embedding resampling; golden_optim.c:
 * optimizers, the schedule and whole training steps); each tensor is compared with the reference. */
#include "golden_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* compare n floats with a float64 reference: worst |a-b| against tol = rel * max|ref| (+ abs) */
void golden_compare(ctx_t *c, const char *what, const float *ours, const double *ref, int64_t n, double rel,
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

int golden_read_ref(ctx_t *c, const char *path, double **ref, int64_t expect)
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

/* the model description in a group's attributes (the sizes and mlp_ratio; layer_norm_eps, pool, fc_norm and
 * gelu when given) */
int golden_read_model_config(vt_h5id f, const char *g, vt_vit_config *mc)
{
    vt_vit_config_defaults(mc);
    if (vt_vit_read_attrs(f, g, mc, false) != VT_OK) return VT_ERR;
    return vt_vit_config_check(mc);
}

int golden_compare_params(ctx_t *c, const char *g, const char *sub, const vt_vit *m, const float *values,
                          const char *missing)
{
    char path[512], what[128];
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        double *ref = NULL;
        snprintf(path, sizeof path, "%s/%s/%s", g, sub, pi->name);
        if (missing && !vt_h5_exists(c->f, path)) return vt_err("%s: missing reference %s", path, missing);
        if (golden_read_ref(c, path, &ref, pi->numel) != VT_OK) return VT_ERR;
        snprintf(what, sizeof what, "%s/%s", sub, pi->name);
        golden_compare(c, what, values + pi->offset, ref, pi->numel, 1e-4, 0);
        free(ref);
    }
    return VT_OK;
}

/* labels (B,) of any integer type -> int */
int golden_read_labels(vt_h5id f, const char *path, int **labels, int64_t expect)
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
        case G_MODEL: r = golden_check_model_case(c, name); break;
        case G_POS_RESAMPLE: r = golden_check_pos_resample(c, name); break;
        case G_OPTIM: r = golden_check_optim(c, name); break;
        case G_SCHEDULE: r = golden_check_schedule(c, name); break;
        case G_TRAIN_STEPS: r = golden_check_train_steps(c, name); break;
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
