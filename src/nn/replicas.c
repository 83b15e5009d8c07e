/* replicas.c - the training forward/backward of one batch, optionally split over data-parallel
 * replicas of the model.
 *
 * A small model's kernels are too short to share among threads: at dim 96 and 50 tokens the
 * threads of every LayerNorm, GELU or 96-wide GEMM spend much of their time meeting each other.
 * With n replicas the batch is cut into n contiguous parts and each part runs forward and backward
 * on its own graph, in its own thread, with single-threaded kernels and BLAS calls; the replicas
 * read the same parameter values and write their own gradient buffers, which are then added, in a
 * fixed tree (vt_tree_split), into the model's (so the result does not depend on thread timing, and
 * ranks of replicas add as one process of all of them). */
#include "nn.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int init_replicas(vt_vit_replicas *r, vt_vit *m, int n, size_t arena_bytes, bool recompute_attention,
                         bool grads)
{
    memset(r, 0, sizeof *r);
    const vt_paramset *ps = &m->params;
    if (n < 1 || n > 256) return vt_err("replicas: %d outside [1, 256]", n);
    r->model = m;
    r->graphs = calloc((size_t)n, sizeof *r->graphs);
    r->views = calloc((size_t)n, sizeof *r->views);
    if (!r->graphs || !r->views) goto oom;
    r->eval_only = !grads;
    if (n > 1 && !grads)
        for (int i = 1; i < n; i++) r->views[i] = *m;   /* nothing is written: all share the model's buffers */
    if (n > 1 && grads) {
        size_t per = ((size_t)ps->numel + 15) / 16 * 16;   /* 64-byte multiples */
        r->grad_base = calloc(1, per * sizeof(float) * (size_t)(n - 1) + 64);
        if (!r->grad_base) goto oom;
        float *gb = (float *)(((uintptr_t)r->grad_base + 63) & ~(uintptr_t)63);
        for (int i = 1; i < n; i++) {
            vt_vit *v = &r->views[i];
            *v = *m;   /* same description, indices and parameter values */
            v->params.grad = gb + per * (size_t)(i - 1);
            v->params.vars = calloc((size_t)(ps->count ? ps->count : 1), sizeof *v->params.vars);
            if (!v->params.vars) goto oom;
            for (int k = 0; k < ps->count; k++) {
                v->params.vars[k] = ps->vars[k];
                v->params.vars[k].grad = v->params.grad + ps->info[k].offset;
            }
        }
    }
    r->views[0] = *m;
    for (int i = 0; i < n; i++) {
        if (vt_graph_init(&r->graphs[i], arena_bytes) != VT_OK) {
            for (int k = 0; k < i; k++) vt_graph_free(&r->graphs[k]);
            r->n = 0;
            vt_vit_replicas_free(r);
            return VT_ERR;
        }
        r->graphs[i].recompute_attention = recompute_attention;
    }
    r->n = n;
    r->first = 0;
    r->parts = n;
    return VT_OK;
oom:
    vt_vit_replicas_free(r);
    return vt_err("replicas: out of memory for %d replicas of %lld parameters", n, (long long)ps->numel);
}

int vt_vit_replicas_init(vt_vit_replicas *r, vt_vit *m, int n, size_t arena_bytes, bool recompute_attention)
{
    return init_replicas(r, m, n, arena_bytes, recompute_attention, true);
}

int vt_vit_replicas_init_eval(vt_vit_replicas *r, vt_vit *m, int n, size_t arena_bytes)
{
    return init_replicas(r, m, n, arena_bytes, false, false);
}

void vt_vit_replicas_free(vt_vit_replicas *r)
{
    for (int i = 0; i < r->n; i++) vt_graph_free(&r->graphs[i]);
    if (r->views && !r->eval_only)
        for (int i = 1; i < (r->n > 0 ? r->n : 0); i++) free(r->views[i].params.vars);
    free(r->views);
    free(r->graphs);
    free(r->grad_base);
    memset(r, 0, sizeof *r);
}

int vt_vit_replicas_set_share(vt_vit_replicas *r, int first, int parts)
{
    if (first < 0 || first + r->n > parts)
        return vt_err("replicas: parts %d..%d of %d", first, first + r->n - 1, parts);
    r->first = first;
    r->parts = parts;
    return VT_OK;
}

double vt_batch_loss(const double *part_loss, int parts, int64_t B)
{
    const int P = parts < B ? parts : (int)B;
    if (P == 1) return part_loss[0];
    double l = 0;
    for (int j = 0; j < P; j++) {
        int64_t b0, b1;
        vt_batch_share(B, parts, j, 1, &b0, &b1);
        l += part_loss[j] * (double)(b1 - b0);
    }
    return l / (double)B;
}

/* runs fn on this process's contiguous parts of a batch of B images side by side (alone: n =
 * min(replicas, B) parts), one thread each with single-threaded kernels; with one part, fn runs here with
 * all threads. The first failing part's message, naming the part, is returned. */
int vt_vit_replicas_each(vt_vit_replicas *r, int B, vt_replica_fn fn, void *ctx)
{
    if (r->n < 1) return vt_err("replicas: not initialised");
    if (B < 1) return vt_err("replicas: empty batch");
    int64_t lo, hi;
    vt_batch_share(B, r->parts, r->first, r->n, &lo, &hi);
    r->x_base = lo;
    const int P = r->parts < B ? r->parts : B;   /* no empty parts */
    const int n = P - r->first < r->n ? (P - r->first > 0 ? P - r->first : 0) : r->n;
    if (n == 0) return 0;
    if (n == 1) return fn(r, 0, (int)lo, (int)(hi - lo), ctx) == VT_OK ? 1 : VT_ERR;
    int status[256];
    char msg[2048] = "";
    int threads = vt_get_threads();
    int nt = n < threads ? n : threads;
    vt_set_blas_threads(1);
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int i = 0; i < n; i++) {
        omp_set_num_threads(1);   /* this thread's kernels run alone */
        int64_t p0, p1;
        vt_batch_share(B, r->parts, r->first + i, 1, &p0, &p1);
        const int b0 = (int)p0, b1 = (int)p1;
        status[i] = fn(r, i, b0, b1 - b0, ctx);
        if (status[i] != VT_OK) {
#pragma omp critical(vt_replicas_msg)
            if (!msg[0]) snprintf(msg, sizeof msg, "replica %d (images %d..%d of %d): %s", i, b0, b1 - 1, B, vt_errmsg());
        }
    }
    vt_set_blas_threads(threads);
    for (int i = 0; i < n; i++)
        if (status[i] != VT_OK) return vt_err("%s", msg);
    return n;
}

typedef struct {
    float *x;
    const int *y;
    const float *targets;   /* (B, K) or NULL */
    int B;
    float smoothing, scale;
    uint64_t key;
} train_ctx;

vt_var *vt_vit_replicas_part_encode(vt_vit_replicas *r, int i, float *x, const int *y, int b0, int nb,
                                    const uint64_t *train_key, vt_vit_train_pass *pass, vt_obj_batch *b)
{
    vt_vit *v = &r->views[i];
    vt_graph *g = &r->graphs[i];
    const vt_vit_config *c = &v->cfg;
    int64_t per_img = (int64_t)c->in_chans * c->img_h * c->img_w;
    int64_t shape[4] = {nb, c->in_chans, c->img_h, c->img_w};
    vt_graph_reset(g);
    *pass = (vt_vit_train_pass){.key = train_key ? *train_key : 0, .first = b0};
    memset(b, 0, sizeof *b);
    b->images = vt_var_wrap(g, x + per_img * (b0 - r->x_base), 4, shape, "images");
    b->labels = y ? y + (b0 - r->x_base) : NULL;
    b->pass = train_key ? pass : NULL;
    b->first = b0 + (train_key ? 0 : r->eval_first);   /* evaluation: each image's own masks, whatever the batch */
    if (b->images && v->objective->mask && v->objective->mask(v, g, b, nb) != VT_OK) return NULL;
    return b->images ? vt_vit_encode_masked(v, g, b->images, NULL, b->pass, b->mask) : NULL;
}

/* the gradients of replicas [lo, hi) added into replica lo's buffer in vt_tree_split's order */
static void add_tree(vt_vit_replicas *r, int lo, int hi)
{
    if (hi - lo < 2) return;
    const int mid = lo + vt_tree_split(hi - lo);
    add_tree(r, lo, mid);
    add_tree(r, mid, hi);
    const int64_t NP = r->model->params.numel;
    float *restrict a = r->views[lo].params.grad;
    const float *restrict b = r->views[mid].params.grad;
#pragma omp parallel for simd schedule(static) if (NP > 65536)
    for (int64_t k = 0; k < NP; k++) a[k] += b[k];
}

/* forward + backward of images [b0, b0 + nb) of the batch on replica i */
static int train_part(vt_vit_replicas *r, int i, int b0, int nb, void *ctx)
{
    train_ctx *t = ctx;
    if (i > 0) memset(r->views[i].params.grad, 0, (size_t)r->model->params.numel * sizeof(float));
    r->part_loss[i] = 0;
    vt_vit_train_pass pass;
    vt_obj_batch b;
    vt_var *tokens = vt_vit_replicas_part_encode(r, i, t->x, t->y, b0, nb, &t->key, &pass, &b);
    b.label_smoothing = t->smoothing;
    vt_vit *v = &r->views[i];
    if (t->targets) b.targets = t->targets + (size_t)b0 * (size_t)v->cfg.num_classes;
    vt_var *l = tokens ? v->objective->loss(v, &r->graphs[i], tokens, &b, NULL) : NULL;
    /* this part's share of the mean over the batch; with one part the factor is exactly scale */
    float w = nb == t->B ? t->scale : (float)((double)t->scale * nb / t->B);
    vt_var *scaled = l ? vt_scale(&r->graphs[i], l, w) : NULL;
    if (!scaled) return VT_ERR;
    r->part_loss[i] = l->val.data[0];
    return vt_backward(&r->graphs[i], scaled);
}

int vt_vit_replicas_train(vt_vit_replicas *r, float *x, const int *y, int B, float smoothing, float scale,
                          uint64_t key, double *loss)
{
    return vt_vit_replicas_train_soft(r, x, y, NULL, B, smoothing, scale, key, loss);
}

int vt_vit_replicas_train_soft(vt_vit_replicas *r, float *x, const int *y, const float *targets, int B,
                               float smoothing, float scale, uint64_t key, double *loss)
{
    if (r->eval_only) return vt_err("replicas: made for evaluation only (no gradient buffers)");
    train_ctx t = {.x = x, .y = y, .targets = targets, .B = B, .smoothing = smoothing, .scale = scale, .key = key};
    int n = vt_vit_replicas_each(r, B, train_part, &t);
    if (n < 1) return n == 0 ? vt_err("replicas: a training batch of %d images leaves parts %d.. of %d none", B,
                                      r->first, r->parts)
                             : VT_ERR;
    /* gradients added in a fixed tree: the same sums whatever the thread timing */
    add_tree(r, 0, n);
    *loss = r->parts == r->n ? vt_batch_loss(r->part_loss, n, B) : 0;   /* a share: the caller adds every process's */
    return VT_OK;
}
