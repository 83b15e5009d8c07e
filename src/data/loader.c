/* loader.c - batches assembled by worker threads into a ring of preallocated buffers, ahead of
 * the consumer. Batch k of epoch e holds samples perm_e[k*B .. k*B+B) where perm_e is a pure
 * function of (seed, e); sample i of epoch e is augmented with vt_sample_rng(seed, e, i). */
#include "data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    float *images;
    int *labels;
    int64_t *ids;
    int64_t batch_id;   /* -1: free */
    int size, full;     /* the images held (this loader's share) and the whole batch's size */
    bool ready;
    int status;         /* VT_OK or VT_ERR (message in err) */
    char err[512];
} slot_t;

struct vt_loader {
    vt_loader_config cfg;
    int64_t *base;          /* the subset (dataset indices) */
    int64_t n;
    int64_t *perm;          /* order of this epoch */
    int64_t epoch, nbatches, next_produce, next_consume;
    slot_t *slots;
    int nslots;
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    double waited;
    /* per worker scratch (index nthreads is the caller's) */
    uint8_t **pix;
    float **scratch;
    int held;               /* slot handed to the caller, -1 none */
    int full;               /* the whole size of the batch last handed out (0: the epoch's end) */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t vt_loader_size(const vt_loader *l) { return l->n; }

int64_t vt_loader_epoch_samples(const vt_loader *l)
{
    /* DeiT's RASampler on one process: floor(len // 256 * 256 / num_replicas) of the repeated order */
    return l->cfg.repeats > 1 && l->n >= 256 ? l->n / 256 * 256 : l->n;
}

int64_t vt_loader_batches(const vt_loader *l)
{
    int64_t B = l->cfg.batch, n = vt_loader_epoch_samples(l);
    return l->cfg.drop_last ? n / B : (n + B - 1) / B;
}

void vt_sample_rng_repeat(vt_rng *r, uint64_t seed, int64_t epoch, int64_t index, int k)
{
    vt_sample_rng(r, k > 0 ? seed ^ (0x7265706561747300ULL + (uint64_t)k) : seed, epoch, index);   /* "repeats" */
}

double vt_loader_wait_seconds(const vt_loader *l) { return l->waited; }

static void fill(vt_loader *l, slot_t *s, int64_t k, int worker)
{
    const vt_loader_config *c = &l->cfg;
    const int64_t n = vt_loader_epoch_samples(l);
    int64_t lo = k * c->batch, hi = lo + c->batch < n ? lo + c->batch : n;
    size_t per = (size_t)c->tf.out_c * c->tf.out_h * c->tf.out_w;
    s->full = (int)(hi - lo);
    if (c->share_parts > 0) {   /* only this loader's parts of the batch */
        int64_t a, b;
        vt_batch_share(hi - lo, c->share_parts, c->share_first, c->share_count, &a, &b);
        hi = lo + b;
        lo += a;
    }
    s->size = (int)(hi - lo);
    s->status = VT_OK;
    for (int64_t j = lo; j < hi; j++) {
        int64_t id = l->perm[j];
        int label;
        if (c->ds->read(c->ds, id, l->pix[worker], &label) != VT_OK) {
            s->status = VT_ERR;
            snprintf(s->err, sizeof s->err, "%s", vt_errmsg());
            return;
        }
        vt_rng r;
        vt_sample_rng_repeat(&r, c->seed, l->epoch, id, c->repeats > 1 ? (int)(j % c->repeats) : 0);
        if (vt_transform_apply(&c->tf, l->pix[worker], c->ds->h, c->ds->w, c->ds->c, s->images + (size_t)(j - lo) * per,
                               &r, l->scratch[worker]) != VT_OK) {
            s->status = VT_ERR;
            snprintf(s->err, sizeof s->err, "sample %lld: %s", (long long)id, vt_errmsg());
            return;
        }
        s->labels[j - lo] = label;
        s->ids[j - lo] = id;
    }
}

static void *worker_main(void *arg)
{
    void **a = arg;
    vt_loader *l = a[0];
    int w = (int)(intptr_t)a[1];
    free(arg);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->next_produce < l->nbatches &&
               l->slots[l->next_produce % l->nslots].batch_id != -1)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop || l->next_produce >= l->nbatches) break;
        int64_t k = l->next_produce++;
        slot_t *s = &l->slots[k % l->nslots];
        s->batch_id = k;
        s->ready = false;
        pthread_mutex_unlock(&l->mu);
        fill(l, s, k, w);
        pthread_mutex_lock(&l->mu);
        s->ready = true;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_workers(vt_loader *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
    l->nthreads = 0;
    l->stop = false;
}

int vt_loader_create(vt_loader **out, const vt_loader_config *c)
{
    *out = NULL;
    if (!c->ds) return vt_err("loader: no dataset");
    if (c->batch < 1) return vt_err("loader: batch size %d (expected at least 1)", c->batch);
    if (c->tf.out_c < 1 || c->tf.out_c > 4 || c->tf.out_h < 1 || c->tf.out_w < 1)
        return vt_err("loader: output images (%d, %d, %d) (expected 1..4 channels and a positive size)", c->tf.out_c,
                      c->tf.out_h, c->tf.out_w);
    for (int k = 0; k < c->tf.out_c; k++)
        if (!(c->tf.std[k] > 0)) return vt_err("loader: std %g of channel %d (expected > 0)", c->tf.std[k], k);
    for (int64_t i = 0; c->indices && i < c->n; i++)
        if (c->indices[i] < 0 || c->indices[i] >= c->ds->count)
            return vt_err("%s: subset index %lld outside the %lld samples", c->ds->path, (long long)c->indices[i],
                          (long long)c->ds->count);
    vt_loader *l = calloc(1, sizeof *l);
    if (!l) return vt_err("out of memory");
    l->cfg = *c;
    l->n = c->indices ? c->n : c->ds->count;
    l->base = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
    l->perm = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
    l->nslots = c->prefetch > 1 ? c->prefetch : 2;
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    int nw = c->workers > 0 ? c->workers : 0;
    l->threads = calloc((size_t)(nw ? nw : 1), sizeof *l->threads);
    l->pix = calloc((size_t)nw + 1, sizeof *l->pix);
    l->scratch = calloc((size_t)nw + 1, sizeof *l->scratch);
    l->held = -1;
    bool ok = l->base && l->perm && l->slots && l->threads && l->pix && l->scratch;
    size_t per = (size_t)c->tf.out_c * c->tf.out_h * c->tf.out_w;
    for (int i = 0; ok && i < l->nslots; i++) {
        l->slots[i].images = malloc(sizeof(float) * per * (size_t)c->batch);
        l->slots[i].labels = malloc(sizeof(int) * (size_t)c->batch);
        l->slots[i].ids = malloc(sizeof(int64_t) * (size_t)c->batch);
        l->slots[i].batch_id = -1;
        ok = l->slots[i].images && l->slots[i].labels && l->slots[i].ids;
    }
    for (int i = 0; ok && i <= nw; i++) {
        l->pix[i] = malloc((size_t)c->ds->h * c->ds->w * c->ds->c);
        l->scratch[i] = malloc(sizeof(float) * vt_transform_scratch(&c->tf, c->ds->h, c->ds->w));
        ok = l->pix[i] && l->scratch[i];
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->cfg.workers = nw;
    if (!ok) {
        vt_loader_free(l);
        return vt_err("loader: out of memory");
    }
    for (int64_t i = 0; i < l->n; i++) l->base[i] = c->indices ? c->indices[i] : i;
    l->cfg.indices = NULL;
    *out = l;
    return VT_OK;
}

void vt_loader_free(vt_loader *l)
{
    if (!l) return;
    stop_workers(l);
    for (int i = 0; l->slots && i < l->nslots; i++) {
        free(l->slots[i].images);
        free(l->slots[i].labels);
        free(l->slots[i].ids);
    }
    for (int i = 0; l->pix && i <= l->cfg.workers; i++) {
        free(l->pix[i]);
        free(l->scratch[i]);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->pix);
    free(l->scratch);
    free(l->slots);
    free(l->threads);
    free(l->base);
    free(l->perm);
    free(l);
}

int vt_loader_start(vt_loader *l, int64_t epoch, int64_t batch)
{
    stop_workers(l);
    l->epoch = epoch;
    l->nbatches = vt_loader_batches(l);
    if (batch < 0 || batch > l->nbatches)
        return vt_err("loader: batch %lld outside the %lld batches of an epoch", (long long)batch, (long long)l->nbatches);
    memcpy(l->perm, l->base, sizeof(int64_t) * (size_t)l->n);
    if (l->cfg.shuffle) {
        vt_rng r;
        vt_sample_rng(&r, l->cfg.seed ^ 0x5eed5eed5eedULL, epoch, -1);
        for (int64_t i = l->n - 1; i > 0; i--) {
            int64_t j = (int64_t)(vt_rng_u64(&r) % (uint64_t)(i + 1));
            int64_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    /* repeated augmentation: position j holds perm[j / repeats] (written from the end, each read before its
     * slot is overwritten: j / repeats <= j) */
    const int rep = l->cfg.repeats > 1 ? l->cfg.repeats : 1;
    for (int64_t j = vt_loader_epoch_samples(l) - 1; rep > 1 && j >= 0; j--) l->perm[j] = l->perm[j / rep];
    l->next_produce = l->next_consume = batch;
    l->waited = 0;
    l->held = -1;
    for (int i = 0; i < l->nslots; i++) l->slots[i].batch_id = -1;
    for (int i = 0; i < l->cfg.workers; i++) {
        void **arg = malloc(2 * sizeof(void *));
        if (!arg) return vt_err("out of memory");
        arg[0] = l;
        arg[1] = (void *)(intptr_t)i;
        if (pthread_create(&l->threads[i], NULL, worker_main, arg) != 0) {
            free(arg);
            return vt_err("loader: cannot start worker thread %d", i);
        }
        l->nthreads++;
    }
    return VT_OK;
}

int vt_loader_full_size(const vt_loader *l) { return l->full; }

int vt_loader_next(vt_loader *l, float **images, int **labels, const int64_t **ids, int *bsize)
{
    *bsize = 0;
    l->full = 0;
    pthread_mutex_lock(&l->mu);
    if (l->held >= 0) {   /* give the previous batch's slot back */
        l->slots[l->held].batch_id = -1;
        l->held = -1;
        pthread_cond_broadcast(&l->cv);
    }
    if (l->next_consume >= l->nbatches) {
        pthread_mutex_unlock(&l->mu);
        return VT_OK;
    }
    int64_t k = l->next_consume;
    slot_t *s = &l->slots[k % l->nslots];
    if (l->cfg.workers == 0) {   /* the caller fills the batch itself: all of that is waiting */
        pthread_mutex_unlock(&l->mu);
        double t0 = now();
        s->batch_id = k;
        l->next_produce = k + 1;
        fill(l, s, k, 0);
        l->waited += now() - t0;
        pthread_mutex_lock(&l->mu);
        s->ready = true;
    } else {
        double t0 = now();
        while (!(s->batch_id == k && s->ready)) pthread_cond_wait(&l->cv, &l->mu);
        l->waited += now() - t0;
    }
    l->next_consume++;
    l->held = (int)(k % l->nslots);
    pthread_mutex_unlock(&l->mu);
    if (s->status != VT_OK) return vt_err("%s", s->err);
    *images = s->images;
    *labels = s->labels;
    if (ids) *ids = s->ids;
    *bsize = s->size;
    l->full = s->full;
    return VT_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int vt_split_indices(int64_t count, double val_fraction, uint64_t seed, int64_t **train, int64_t *ntrain,
                     int64_t **val, int64_t *nval)
{
    if (!(val_fraction >= 0 && val_fraction < 1))
        return vt_err("validation fraction %g (expected 0 <= fraction < 1)", val_fraction);
    int64_t nv = (int64_t)(count * val_fraction), nt = count - nv;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    if (!perm) return vt_err("out of memory");
    for (int64_t i = 0; i < count; i++) perm[i] = i;
    vt_rng r;
    vt_sample_rng(&r, seed ^ 0x7a11d47aULL, -2, -2);
    for (int64_t i = count - 1; i > 0; i--) {
        int64_t j = (int64_t)(vt_rng_u64(&r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    *train = malloc(sizeof(int64_t) * (size_t)(nt ? nt : 1));
    *val = malloc(sizeof(int64_t) * (size_t)(nv ? nv : 1));
    if (!*train || !*val) {
        free(perm);
        free(*train);
        free(*val);
        return vt_err("out of memory");
    }
    memcpy(*train, perm, sizeof(int64_t) * (size_t)nt);
    memcpy(*val, perm + nt, sizeof(int64_t) * (size_t)nv);
    qsort(*train, (size_t)nt, sizeof(int64_t), cmp_i64);
    qsort(*val, (size_t)nv, sizeof(int64_t), cmp_i64);
    *ntrain = nt;
    *nval = nv;
    free(perm);
    return VT_OK;
}
