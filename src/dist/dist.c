/* dist.c - ranks and the deterministic bucketed gradient sum (see dist.h); MPI when VIT_HAVE_MPI. */
#include "dist.h"
#include <limits.h>
#include <stdio.h>
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

/* every rank's host name: how many hosts, how many ranks on this one */
static int count_hosts(vt_dist *d)
{
    d->nhosts = d->local_size = 1;
    if (d->size == 1) return VT_OK;
    char *all = malloc(sizeof d->host * (size_t)d->size);
    if (!all) return vt_err("dist: out of memory for %d host names", d->size);
    if (vt_dist_allgather(d, d->host, sizeof d->host, all) != VT_OK) {
        free(all);
        return VT_ERR;
    }
    d->nhosts = d->local_size = 0;
    for (int j = 0; j < d->size; j++) {
        const char *h = all + sizeof d->host * (size_t)j;
        bool seen = false;
        for (int k = 0; k < j && !seen; k++) seen = strcmp(h, all + sizeof d->host * (size_t)k) == 0;
        d->nhosts += !seen;
        d->local_size += strcmp(h, d->host) == 0;
    }
    free(all);
    return VT_OK;
}

int vt_dist_init(vt_dist *d, int *argc, char ***argv)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    if (gethostname(d->host, sizeof d->host - 1) != 0) strcpy(d->host, "?");
#ifdef VIT_HAVE_MPI
    /* started by mpirun (Open MPI's, or another PMI launcher's variables)? Else a job of one without MPI:
     * Open MPI's singleton start makes shared-memory files and may fail where a plain run would not */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK") && !getenv("PMI_SIZE"))
        return count_hosts(d);
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
    return count_hosts(d);
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

int vt_dist_allgather(const vt_dist *d, const void *mine, size_t bytes, void *all)
{
    if (d->size == 1) {
        memmove(all, mine, bytes);
        return VT_OK;
    }
#ifdef VIT_HAVE_MPI
    if (bytes > (size_t)1 << 30) return vt_err("dist: an all-gather of %zu bytes per rank (at most 1 GiB)", bytes);
    int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? VT_OK : mpi_err("MPI_Allgather", rc);
#else
    return vt_err("dist: %d ranks in a build without MPI", d->size);
#endif
}

int vt_dist_bcast(const vt_dist *d, void *buf, size_t bytes)
{
    if (d->size == 1) return VT_OK;
#ifdef VIT_HAVE_MPI
    for (size_t at = 0; at < bytes;) {   /* MPI counts are int */
        const size_t k = bytes - at < (size_t)1 << 30 ? bytes - at : (size_t)1 << 30;
        int rc = MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_err("MPI_Bcast", rc);
        at += k;
    }
    return VT_OK;
#else
    (void)buf, (void)bytes;
    return vt_err("dist: %d ranks in a build without MPI", d->size);
#endif
}

/* the first line where a and b differ, as "line N: 'A' here, 'B' on rank 0" into buf; false when equal */
static bool first_difference(const char *a, const char *b, char *buf, size_t n)
{
    for (int line = 1;; line++) {
        const size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(buf, n, "line %d: '%.*s' here, '%.*s' on rank 0", line, (int)(la < 200 ? la : 200), a,
                     (int)(lb < 200 ? lb : 200), b);
            return true;
        }
        if (!a[la] && !b[lb]) return false;
        a += la + (a[la] != 0);
        b += lb + (b[lb] != 0);
    }
}

int vt_dist_same_text(const vt_dist *d, const char *what, const char *text)
{
    if (d->size == 1) return VT_OK;
    uint64_t len = strlen(text);
    if (vt_dist_bcast(d, &len, sizeof len) != VT_OK) return VT_ERR;
    char *r0 = malloc(len + 1), *all = NULL;
    enum { M = 512 };
    char mine[M] = "";
    if (!r0) return vt_err("dist: out of memory for %s", what);   /* the others then wait: abort */
    if (d->rank == 0) memcpy(r0, text, len);
    r0[len] = '\0';
    int rc = vt_dist_bcast(d, r0, len);
    char diff[M - 128];
    if (rc == VT_OK && d->rank != 0 && first_difference(text, r0, diff, sizeof diff)) {
        mine[0] = 1;
        snprintf(mine + 1, M - 1, "rank %d of %d (host %.40s): its %s differs from rank 0's at %s", d->rank, d->size,
                 d->host, what, diff);
    }
    if (rc == VT_OK && !(all = malloc((size_t)M * (size_t)d->size))) rc = vt_err("dist: out of memory");
    if (rc == VT_OK) rc = vt_dist_allgather(d, mine, M, all);
    for (int j = 0; rc == VT_OK && j < d->size; j++)
        if (all[(size_t)M * j]) {
            rc = vt_err("%.*s", M - 1, all + (size_t)M * j + 1);
            break;
        }
    free(r0);
    free(all);
    return rc;
}

void vt_dist_slice(const vt_dist *d, int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = n * d->rank / d->size;
    *hi = n * (d->rank + 1) / d->size;
}

#ifdef VIT_HAVE_MPI
/* counts and displacements of the ranks' slices of n floats (a malloc'd pair of arrays) */
static int *slice_counts(const vt_dist *d, int64_t n)
{
    if (n > INT_MAX) return NULL;
    int *c = malloc(sizeof(int) * 2 * (size_t)d->size);
    for (int j = 0; c && j < d->size; j++) {
        c[d->size + j] = (int)(n * j / d->size);
        c[j] = (int)(n * (j + 1) / d->size) - c[d->size + j];
    }
    return c;
}
#endif

/* op 0 scatter, 1 gather, 2 all-gather in place */
static int slice_op(const vt_dist *d, int op, const float *src, float *dst, int64_t n)
{
    int64_t lo, hi;
    vt_dist_slice(d, n, &lo, &hi);
    if (d->size == 1) {
        if (op != 2 && src != dst) memmove(dst, src, sizeof(float) * (size_t)n);
        return VT_OK;
    }
#ifdef VIT_HAVE_MPI
    int *c = slice_counts(d, n), rc;
    if (!c) return vt_err("dist: slices of %lld floats (at most %d: MPI counts are int)", (long long)n, INT_MAX);
    const int mine = (int)(hi - lo);
    if (op == 0) rc = MPI_Scatterv(src, c, c + d->size, MPI_FLOAT, dst, mine, MPI_FLOAT, 0, MPI_COMM_WORLD);
    else if (op == 1) rc = MPI_Gatherv(src, mine, MPI_FLOAT, dst, c, c + d->size, MPI_FLOAT, 0, MPI_COMM_WORLD);
    else rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, dst, c, c + d->size, MPI_FLOAT, MPI_COMM_WORLD);
    free(c);
    return rc == MPI_SUCCESS ? VT_OK : mpi_err(op == 0 ? "MPI_Scatterv" : op == 1 ? "MPI_Gatherv" : "MPI_Allgatherv", rc);
#else
    (void)src, (void)dst;
    return vt_err("dist: %d ranks in a build without MPI", d->size);
#endif
}

int vt_dist_scatter_slices(const vt_dist *d, const float *whole, float *mine, int64_t n)
{
    return slice_op(d, 0, whole, mine, n);
}
int vt_dist_gather_slices(const vt_dist *d, const float *mine, float *whole, int64_t n)
{
    return slice_op(d, 1, mine, whole, n);
}
int vt_dist_allgather_slices(const vt_dist *d, float *buf, int64_t n) { return slice_op(d, 2, buf, buf, n); }

void vt_dist_build_id(char *buf, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a of the file's bytes */
    FILE *f = fopen("/proc/self/exe", "rb");
    buf[0] = '\0';
    if (!f) return;
    unsigned char b[65536];
    size_t k, total = 0;
    while ((k = fread(b, 1, sizeof b, f)) > 0) {
        for (size_t i = 0; i < k; i++) h = (h ^ b[i]) * 0x100000001b3ull;
        total += k;
    }
    fclose(f);
    snprintf(buf, n, "executable of %zu bytes, FNV-1a %016llx", total, (unsigned long long)h);
}

/* ---------------------------------------------------------------- the bucketed sum */

/* bucket b: [b bucket, (b + 1) bucket) clipped at n; from the end: [n - (b + 1) bucket, n - b bucket)
 * clipped at 0. Either way the last bucket is the short one. */
static int64_t bucket_len(const vt_dist_sum *s, int b)
{
    const int64_t a = (int64_t)b * s->bucket, e = a + s->bucket;
    return (e < s->n ? e : s->n) - a;
}
static int64_t bucket_start(const vt_dist_sum *s, int b)
{
    return s->from_end ? s->n - (int64_t)b * s->bucket - bucket_len(s, b) : (int64_t)b * s->bucket;
}
/* rank j's slice of a bucket of L floats: [L j / R, L (j + 1) / R) */
static int64_t slice_at(int64_t L, int j, int R) { return L * j / R; }

int vt_dist_sum_bucket_of(const vt_dist_sum *s, int64_t offset)
{
    if (offset < 0) offset = 0;
    if (offset >= s->n) offset = s->n - 1;
    if (s->from_end) offset = s->n - 1 - offset;
    const int b = offset <= 0 ? 0 : (int)(offset / s->bucket);
    return b < s->nb ? b : s->nb - 1;
}

int vt_dist_sum_start_suffix(vt_dist_sum *s, int64_t from)
{
    if (!s->from_end) return vt_err("internal: dist sum: start_suffix on a sum in buffer order");
    if (from <= 0) return vt_dist_sum_start_upto(s, s->nb - 1);
    const int64_t whole = (s->n - from) / s->bucket;   /* buckets wholly inside [from, n) */
    return whole > 0 ? vt_dist_sum_start_upto(s, (int)whole - 1) : VT_OK;
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

/* the slices [lo, hi) of len floats each at in added into slice lo in vt_tree_split's order (the order of
 * the in-process replicas: nn/replicas.c) */
static void add_tree(float *in, int len, int lo, int hi)
{
    if (hi - lo < 2) return;
    const int mid = lo + vt_tree_split(hi - lo);
    add_tree(in, len, lo, mid);
    add_tree(in, len, mid, hi);
    float *restrict a = in + (size_t)lo * len;
    const float *restrict g = in + (size_t)mid * len;
    for (int i = 0; i < len; i++) a[i] += g[i];
}

/* phase 1 done: sum the owned slice in rank order into buf, then gather every rank's summed slice */
static int gather_bucket(vt_dist_sum *s, int b)
{
    const slices *sl = slices_of(s, b);
    mpi_state *m = s->req;
    const int R = s->d->size, me = s->d->rank, len = sl->rcnt[0];
    const float *in = scratch_of(s, b);
    float *out = s->buf + bucket_start(s, b) + sl->dsp[me];
    add_tree(scratch_of(s, b), len, 0, R);
    memcpy(out, in, sizeof(float) * (size_t)len);
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
