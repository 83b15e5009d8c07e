/* dist.h - data-parallel processes: which rank this is, and the sum of the gradients over the ranks.
 *
 * Built with MPI (meson option -Dmpi=auto|enabled|disabled; Open MPI from Debian), a program started by
 * mpirun is one rank of a job; without MPI, or started alone, it is rank 0 of 1 and every call below is
 * a cheap no-op, so callers need no #ifdef.
 *
 * The gradient sum (vt_dist_sum) is deterministic and matches the in-process replicas bitwise: every
 * element ends as the sum of the ranks' values in the tree of vt_tree_split (base.h; 2 or 3 ranks: in
 * rank order, 4: (g_0 + g_1) + (g_2 + g_3)), the order in which the in-process replicas' gradients are
 * added (src/nn/replicas.c), so R ranks of p replicas each (p a power of two) give the weights of one
 * process with R p replicas. The flat buffer is cut into buckets that are reduced as soon as backward has produced them,
 * without blocking: per bucket a reduce-scatter (each rank sums, in rank order, the slice it owns; an
 * all-to-all brings it every rank's copy of that slice) then an all-gather of the summed slices.
 * MPI's own reductions promise no order, so they are not used for the sum.
 *
 * Rules: every rank starts the same buckets in the same order (they are collectives), and waits before
 * it reads or writes the buffer again. Functions return VT_OK / VT_ERR with vt_errmsg() as everywhere.
 */
#ifndef VIT_DIST_H
#define VIT_DIST_H

#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int rank, size;
    bool mpi;          /* MPI was initialised here (and must be finalised) */
    char host[64];     /* this rank's host name, for messages */
    int nhosts;        /* distinct hosts of the job */
    int local_size;    /* ranks on this rank's host (this one included) */
} vt_dist;

/* MPI_Init when built with MPI and started by mpirun (a process started otherwise is a job of one and
 * does not initialise MPI), else rank 0 of 1 */
int vt_dist_init(vt_dist *d, int *argc, char ***argv);
void vt_dist_finalize(vt_dist *d);
/* stop every rank of the job at once (after this rank printed why); returns only without MPI */
void vt_dist_abort(const vt_dist *d, int code);
/* true if the build has MPI */
bool vt_dist_available(void);

/* every rank's `bytes` bytes at mine, in rank order, into all (size * bytes); a blocking collective */
int vt_dist_allgather(const vt_dist *d, const void *mine, size_t bytes, void *all);
/* rank 0's `bytes` bytes at buf onto every rank */
int vt_dist_bcast(const vt_dist *d, void *buf, size_t bytes);
/* VT_OK when every rank's text equals rank 0's; else VT_ERR on every rank, the message naming the first
 * rank that differs, its host and the first line that differs ("what" says what the text is) */
int vt_dist_same_text(const vt_dist *d, const char *what, const char *text);
/* Rank j's slice of n floats: [n j / size, n (j + 1) / size) (vt_dist_slice gives this rank's). Rank 0's
 * whole buffer's slices to every rank (mine: this rank's slice), every rank's slice to rank 0's whole
 * buffer, and every rank's slice of buf (in place) to every rank. */
void vt_dist_slice(const vt_dist *d, int64_t n, int64_t *lo, int64_t *hi);
int vt_dist_scatter_slices(const vt_dist *d, const float *whole, float *mine, int64_t n);
int vt_dist_gather_slices(const vt_dist *d, const float *mine, float *whole, int64_t n);
int vt_dist_allgather_slices(const vt_dist *d, float *buf, int64_t n);
/* a hash of this program's executable file (/proc/self/exe), "" if unreadable: ranks running another
 * build are refused by comparing it (vt_dist_same_text) */
void vt_dist_build_id(char *buf, size_t n);

enum { VT_DIST_MAX_BUCKETS = 4096 };

typedef struct {
    const vt_dist *d;
    float *buf;
    int64_t n, bucket;      /* bucket b covers [b * bucket, min(n, (b + 1) * bucket)) */
    int nb;
    int next;               /* buckets started so far (they are started in order 0, 1, ...) */
    float *scratch;         /* n floats: each bucket's slices from every rank */
    unsigned char *state;   /* per bucket: 0 not started, 1 summing, 2 gathering, 3 done */
    bool from_end;          /* set after init, before a start: bucket b is [n - (b + 1) bucket, n - b bucket)
                               (clipped at 0), for a buffer that backward produces from its end */
    void *req;              /* per bucket: the request in flight (MPI_Request) */
} vt_dist_sum;

/* buf (n floats) summed over d's ranks in buckets of `bucket` floats (the last may be shorter) */
int vt_dist_sum_init(vt_dist_sum *s, const vt_dist *d, float *buf, int64_t n, int64_t bucket);
void vt_dist_sum_free(vt_dist_sum *s);
/* the bucket holding element `offset` of the buffer */
int vt_dist_sum_bucket_of(const vt_dist_sum *s, int64_t offset);
/* this rank's values of buckets [next, upto] are final: start summing them (in order) */
int vt_dist_sum_start_upto(vt_dist_sum *s, int upto);
/* (from_end) the floats [from, n) are final: start the buckets that lie wholly inside */
int vt_dist_sum_start_suffix(vt_dist_sum *s, int64_t from);
/* move on whatever has arrived (cheap; call now and then while backward runs) */
int vt_dist_sum_progress(vt_dist_sum *s);
/* start the buckets not started yet, wait for all: buf then holds the sum on every rank, and the
 * next step may start again from bucket 0 */
int vt_dist_sum_wait(vt_dist_sum *s);

#ifdef __cplusplus
}
#endif
#endif
