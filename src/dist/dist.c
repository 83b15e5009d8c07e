/* dist.c - ranks and the deterministic bucketed gradient sum (see dist.h); MPI when VIT_HAVE_MPI. */
#include "dist.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef VIT_HAVE_MPI
#include <mpi.h>
#endif

bool vt_dist_available(void)
{
#ifdef VIT_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#ifdef VIT_HAVE_MPI
static int mpi_err(const char *what, int code)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, s, &len);
    return vt_err("%s: %.*s", what, len, s);
}
#endif

int vt_dist_init(vt_dist *d, int *argc, char ***argv)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    if (gethostname(d->host, sizeof d->host - 1) != 0) strcpy(d->host, "?");
#ifdef VIT_HAVE_MPI
    int provided = 0, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_err("MPI_Init_thread", rc);
    d->mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    if (provided < MPI_THREAD_FUNNELED)
        return vt_err("MPI gives thread level %d, the trainer needs MPI_THREAD_FUNNELED (OpenMP threads that never "
                      "call MPI)", provided);
#else
    (void)argc, (void)argv;
#endif
    return VT_OK;
}

void vt_dist_finalize(vt_dist *d)
{
#ifdef VIT_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = false;
}

void vt_dist_abort(const vt_dist *d, int code)
{
#ifdef VIT_HAVE_MPI
    if (d->mpi && d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)d, (void)code;
#endif
}

/* ---------------------------------------------------------------- the bucketed sum */

static int64_t bucket_start(const vt_dist_sum *s, int b) { return (int64_t)b * s->bucket; }
static int64_t bucket_len(const vt_dist_sum *s, int b)
{
    const int64_t a = bucket_start(s, b), e = a + s->bucket;
    return (e < s->n ? e : s->n) - a;
}
/* rank j's slice of a bucket of L floats: [L j / R, L (j + 1) / R) */
static int64_t slice_at(int64_t L, int j, int R) { return L * j / R; }

int vt_dist_sum_bucket_of(const vt_dist_sum *s, int64_t offset)
{
    if (offset <= 0) return 0;
    if (offset >= s->n) return s->nb - 1;
    return (int)(offset / s->bucket);
}

#ifdef VIT_HAVE_MPI
/* counts and displacements (in floats) of the slices of an L-float bucket, and of this rank's slice
 * received from every rank; kept while a request is in flight, as MPI requires */
typedef struct {
    int *cnt, *dsp, *rcnt, *rdsp;
} slices;

typedef struct {
    MPI_Request *req;
    slices full, last;   /* buckets of s->bucket floats, and the last one */
    /* Collectives must be started in the same order on every rank. The all-to-alls are started in
     * bucket order on `world`; the all-gathers, which start when an all-to-all has arrived (at another
     * moment on each rank), on a communicator of their own, also in bucket order: `gathered` is how
     * many have started. */
    MPI_Comm world, gather;
    int gathered;
} mpi_state;

static int slices_init(slices *sl, int64_t L, int R, int me)
{
    int *a = malloc(sizeof(int) * 4 * (size_t)R);
    if (!a) return vt_err("dist: out of memory for %d ranks", R);
    sl->cnt = a, sl->dsp = a + R, sl->rcnt = a + 2 * R, sl->rdsp = a + 3 * R;
    const int64_t mine = slice_at(L, me + 1, R) - slice_at(L, me, R);
    for (int j = 0; j < R; j++) {
        sl->dsp[j] = (int)slice_at(L, j, R);
        sl->cnt[j] = (int)(slice_at(L, j + 1, R) - slice_at(L, j, R));
        sl->rcnt[j] = (int)mine;
        sl->rdsp[j] = (int)(mine * j);
    }
    return VT_OK;
}

static const slices *slices_of(const vt_dist_sum *s, int b)
{
    const mpi_state *m = s->req;
    return b == s->nb - 1 ? &m->last : &m->full;
}
#endif

int vt_dist_sum_init(vt_dist_sum *s, const vt_dist *d, float *buf, int64_t n, int64_t bucket)
{
    memset(s, 0, sizeof *s);
    if (n < 0 || bucket < 1) return vt_err("dist sum: %lld floats in buckets of %lld", (long long)n, (long long)bucket);
    if (bucket > (int64_t)1 << 30) bucket = (int64_t)1 << 30;   /* MPI counts are int */
    s->d = d, s->buf = buf, s->n = n, s->bucket = bucket;
    s->nb = n == 0 ? 0 : (int)((n + bucket - 1) / bucket);
    if (s->nb > VT_DIST_MAX_BUCKETS)
        return vt_err("dist sum: %lld floats in buckets of %lld are %d buckets (at most %d: take larger ones)",
                      (long long)n, (long long)bucket, s->nb, VT_DIST_MAX_BUCKETS);
    if (d->size == 1 || s->nb == 0) return VT_OK;
#ifdef VIT_HAVE_MPI
    const int R = d->size;
    s->state = calloc((size_t)s->nb, 1);
    s->scratch = malloc(sizeof(float) * (size_t)s->nb * (size_t)(bucket + R));
    mpi_state *m = calloc(1, sizeof *m);
    s->req = m;
    if (!s->state || !s->scratch || !m || !(m->req = malloc(sizeof(MPI_Request) * (size_t)s->nb))) {
        vt_dist_sum_free(s);
        return vt_err("dist sum: out of memory for %d buckets of %lld floats", s->nb, (long long)bucket);
    }
    if (slices_init(&m->full, bucket, R, d->rank) != VT_OK ||
        slices_init(&m->last, bucket_len(s, s->nb - 1), R, d->rank) != VT_OK) {
        vt_dist_sum_free(s);
        return VT_ERR;
    }
    m->world = m->gather = MPI_COMM_NULL;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->world);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->gather);
    if (rc != MPI_SUCCESS) {
        vt_dist_sum_free(s);
        return mpi_err("gradient sum (MPI_Comm_dup)", rc);
    }
    return VT_OK;
#else
    return vt_err("dist sum: %d ranks in a build without MPI", d->size);
#endif
}

void vt_dist_sum_free(vt_dist_sum *s)
{
#ifdef VIT_HAVE_MPI
    mpi_state *m = s->req;
    if (m) {
        if (m->world != MPI_COMM_NULL) MPI_Comm_free(&m->world);
        if (m->gather != MPI_COMM_NULL) MPI_Comm_free(&m->gather);
        free(m->req);
        free(m->full.cnt);
        free(m->last.cnt);
        free(m);
    }
#endif
    free(s->scratch);
    free(s->state);
    memset(s, 0, sizeof *s);
}

#ifdef VIT_HAVE_MPI
static float *scratch_of(const vt_dist_sum *s, int b) { return s->scratch + (size_t)b * (size_t)(s->bucket + s->d->size); }

/* phase 1: every rank's copy of the slice this rank owns, into scratch */
static int start_bucket(vt_dist_sum *s, int b)
{
    const slices *sl = slices_of(s, b);
    mpi_state *m = s->req;
    int rc = MPI_Ialltoallv(s->buf + bucket_start(s, b), sl->cnt, sl->dsp, MPI_FLOAT, scratch_of(s, b), sl->rcnt,
                            sl->rdsp, MPI_FLOAT, m->world, &m->req[b]);
    if (rc != MPI_SUCCESS) return mpi_err("gradient sum (MPI_Ialltoallv)", rc);
    s->state[b] = 1;
    return VT_OK;
}

/* phase 1 done: sum the owned slice in rank order into buf, then gather every rank's summed slice */
static int gather_bucket(vt_dist_sum *s, int b)
{
    const slices *sl = slices_of(s, b);
    mpi_state *m = s->req;
    const int R = s->d->size, me = s->d->rank, len = sl->rcnt[0];
    const float *in = scratch_of(s, b);
    float *out = s->buf + bucket_start(s, b) + sl->dsp[me];
    memcpy(out, in, sizeof(float) * (size_t)len);
    for (int k = 1; k < R; k++) {
        const float *g = in + (size_t)k * len;
        for (int i = 0; i < len; i++) out[i] += g[i];
    }
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, s->buf + bucket_start(s, b), sl->cnt, sl->dsp,
                             MPI_FLOAT, m->gather, &m->req[b]);
    if (rc != MPI_SUCCESS) return mpi_err("gradient sum (MPI_Iallgatherv)", rc);
    s->state[b] = 2;
    m->gathered = b + 1;
    return VT_OK;
}

/* bucket b's request in flight done (wait: block until it is, else test)? */
static int finished(vt_dist_sum *s, int b, bool wait, bool *done)
{
    mpi_state *m = s->req;
    int flag = 1, rc = wait ? MPI_Wait(&m->req[b], MPI_STATUS_IGNORE) : MPI_Test(&m->req[b], &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_err("gradient sum", rc);
    *done = flag != 0;
    return VT_OK;
}

/* move every bucket on as far as it goes (blocking with wait): all-gathers start strictly in bucket order */
static int advance_all(vt_dist_sum *s, bool wait)
{
    mpi_state *m = s->req;
    bool done;
    while (m->gathered < s->next) {
        const int b = m->gathered;
        if (finished(s, b, wait, &done) != VT_OK) return VT_ERR;
        if (!done) break;
        if (gather_bucket(s, b) != VT_OK) return VT_ERR;
    }
    for (int b = 0; b < m->gathered; b++)
        if (s->state[b] == 2) {
            if (finished(s, b, wait, &done) != VT_OK) return VT_ERR;
            if (done) s->state[b] = 3;
        }
    return VT_OK;
}
#endif

int vt_dist_sum_start_upto(vt_dist_sum *s, int upto)
{
    if (upto >= s->nb) upto = s->nb - 1;
    if (s->d->size == 1) {
        if (upto >= s->next) s->next = upto + 1;
        return VT_OK;
    }
#ifdef VIT_HAVE_MPI
    for (; s->next <= upto; s->next++)
        if (start_bucket(s, s->next) != VT_OK) return VT_ERR;
#endif
    return VT_OK;
}

int vt_dist_sum_progress(vt_dist_sum *s)
{
#ifdef VIT_HAVE_MPI
    if (s->d->size > 1) return advance_all(s, false);
#else
    (void)s;
#endif
    return VT_OK;
}

int vt_dist_sum_wait(vt_dist_sum *s)
{
    if (vt_dist_sum_start_upto(s, s->nb - 1) != VT_OK) return VT_ERR;
#ifdef VIT_HAVE_MPI
    if (s->d->size > 1 && s->nb > 0) {
        if (advance_all(s, true) != VT_OK) return VT_ERR;
        memset(s->state, 0, (size_t)s->nb);
        ((mpi_state *)s->req)->gathered = 0;
    }
#endif
    s->next = 0;
    return VT_OK;
}
