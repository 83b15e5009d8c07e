/* dist.h - data-parallel processes: which rank this is, and the sum of the gradients over the ranks.
 *
 * Built with MPI (meson option -Dmpi=auto|enabled|disabled; Open MPI from Debian), a program started by
 * mpirun is one rank of a job; without MPI, or started alone, it is rank 0 of 1 and every call below is
 * a cheap no-op, so callers need no #ifdef.
 *
 * The gradient sum (vt_dist_sum) is deterministic and matches the in-process replicas bitwise: every
 * element ends as ((g_0 + g_1) + g_2) + ... in rank order, the order in which the replicas' gradients
 * are added (src/nn/replicas.c), so R ranks of one replica each give the weights of one process with R
 * replicas. The flat buffer is cut into buckets that are reduced as soon as backward has produced them,
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
} vt_dist;

/* MPI_Init when built with MPI (a process not started by mpirun is a job of one), else rank 0 of 1 */
int vt_dist_init(vt_dist *d, int *argc, char ***argv);
void vt_dist_finalize(vt_dist *d);
/* stop every rank of the job at once (after this rank printed why); returns only without MPI */
void vt_dist_abort(const vt_dist *d, int code);
/* true if the build has MPI */
bool vt_dist_available(void);

enum { VT_DIST_MAX_BUCKETS = 4096 };

typedef struct {
    const vt_dist *d;
    float *buf;
    int64_t n, bucket;      /* bucket b covers [b * bucket, min(n, (b + 1) * bucket)) */
    int nb;
    int next;               /* buckets started so far (they are started in order 0, 1, ...) */
    float *scratch;         /* n floats: each bucket's slices from every rank */
    unsigned char *state;   /* per bucket: 0 not started, 1 summing, 2 gathering, 3 done */
    void *req;              /* per bucket: the request in flight (MPI_Request) */
} vt_dist_sum;

/* buf (n floats) summed over d's ranks in buckets of `bucket` floats (the last may be shorter) */
int vt_dist_sum_init(vt_dist_sum *s, const vt_dist *d, float *buf, int64_t n, int64_t bucket);
void vt_dist_sum_free(vt_dist_sum *s);
/* the bucket holding element `offset` of the buffer */
int vt_dist_sum_bucket_of(const vt_dist_sum *s, int64_t offset);
/* this rank's values of buckets [next, upto] are final: start summing them (in order) */
int vt_dist_sum_start_upto(vt_dist_sum *s, int upto);
/* move on whatever has arrived (cheap; call now and then while backward runs) */
int vt_dist_sum_progress(vt_dist_sum *s);
/* start the buckets not started yet, wait for all: buf then holds the sum on every rank, and the
 * next step may start again from bucket 0 */
int vt_dist_sum_wait(vt_dist_sum *s);

#ifdef __cplusplus
}
#endif
#endif
