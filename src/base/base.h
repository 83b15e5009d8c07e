/* base.h - the layer under everything: errors, RNG, threads and clock, the OpenBLAS core check,
 * and HDF5 helpers. Nothing here knows about tensors; src/tensor and every layer above build on it.
 *
 * Library code never exits: functions that can fail return VT_OK (0) or VT_ERR (-1) / NULL and
 * leave a message in vt_errmsg().
 */
#ifndef VIT_BASE_H
#define VIT_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
enum { VT_OK = 0, VT_ERR = -1 };

/* Set the calling thread's error message (printf format); always returns VT_ERR. */
int vt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with more context ("loading x.h5: " + old message); returns VT_ERR. */
int vt_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The calling thread's last error message ("" if none). */
const char *vt_errmsg(void);
/* v is a number in decimal notation: [+-] digits [. digits] or [+-] . digits, then [eE [+-] digits]
 * (what configs and command lines take: no hex, hex floats, inf or nan, which strtod also reads) */
bool vt_is_decimal(const char *v);
void vt_err_clear(void);
/* writes "(2, 3, 4)" into buf (shapes in messages) */
const char *vt_dims_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* ---------------------------------------------------------------- RNG */
/* Explicit, seedable RNG (xoshiro256** seeded by splitmix64). State is plain data so a
 * checkpoint can store it. */
typedef struct { uint64_t s[4]; } vt_rng;

void vt_rng_seed(vt_rng *r, uint64_t seed);
uint64_t vt_rng_u64(vt_rng *r);
double vt_rng_uniform(vt_rng *r);            /* [0, 1) */
double vt_rng_normal(vt_rng *r);             /* N(0, 1) */
/* normal(mean, std) truncated to [a, b] (absolute bounds, as torch.nn.init.trunc_normal_) */
double vt_rng_trunc_normal(vt_rng *r, double mean, double std, double a, double b);

/* ---------------------------------------------------------------- threads and clock */
void vt_set_threads(int n);   /* OpenMP and OpenBLAS threads */
int vt_get_threads(void);
/* OpenBLAS only (the data-parallel step makes single-threaded BLAS calls side by side, then restores it) */
void vt_set_blas_threads(int n);
double vt_now(void);   /* monotonic seconds */

/* ---------------------------------------------------------------- a batch in parts */
/* A batch of B images cut into `parts` contiguous parts (min(parts, B) of them: none empty), part j being
 * [B j / P, B (j + 1) / P): the images [*lo, *hi) of parts [first, first + count) (clipped to the parts
 * there are; *lo == *hi when none). The in-process replicas and the ranks of a data-parallel run cut
 * every batch this way, so the parts are the same whatever the layout. */
static inline void vt_batch_share(int64_t B, int parts, int first, int count, int64_t *lo, int64_t *hi)
{
    const int64_t P = parts < B ? parts : B;
    const int64_t a = first < P ? first : P, b = first + count < P ? first + count : P;
    *lo = P > 0 ? B * a / P : 0;
    *hi = P > 0 ? B * b / P : 0;
}
/* The order in which the gradients of parts [0, n) are added, one tree for every layout: parts [0, h) then
 * [h, n) summed alone, then added, h the largest power of two below n (n = 2, 3: in order; n = 4:
 * (g0 + g1) + (g2 + g3)). With p (a power of two) parts per rank, the ranks' sums added in this tree over
 * ranks give the tree over all parts: R ranks x p replicas add as one process of R p replicas. */
static inline int vt_tree_split(int n)
{
    int h = 1;
    while (2 * h < n) h *= 2;
    return h;
}

/* ---------------------------------------------------------------- BLAS core */
/* the OpenBLAS kernel family in use ("SkylakeX", "Haswell", "Prescott", ...) */
const char *vt_blas_core(void);
/* the best family this CPU supports (NULL if none better than the generic ones) */
const char *vt_blas_best_core(void);
/* Call first thing in main(): if OpenBLAS picked weaker kernels than the CPU supports and the user
 * did not set OPENBLAS_CORETYPE, set it and re-exec the program (returns only if nothing to do or
 * the exec failed, VT_ERR with a message then). */
int vt_blas_ensure_core(int argc, char **argv);

/* ---------------------------------------------------------------- HDF5 helpers */
/* Thin wrappers over the HDF5 C library (hid_t is an int64_t). Every failure sets a message
 * naming the file and object. HDF5's own error stack printing is turned off by vt_h5_open. */
typedef int64_t vt_h5id;
vt_h5id vt_h5_open(const char *path, bool write);          /* <0 + vt_err on failure */
/* create (truncate) a new file */
vt_h5id vt_h5_create(const char *path);
/* VT_ERR when the file could not be written out (a full disk: the reason is in the message); HDF5 may
 * then keep the file open inside the library until the process ends (it is not cleaned up at exit) */
int vt_h5_close(vt_h5id f);
/* path is a readable HDF5 file (its signature, also after a user block) */
bool vt_h5_is_file(const char *path);
/* HDF5's own error printing off in the calling thread (the wrappers' messages say what failed); the
 * wrappers that open files do it, a thread calling HDF5 directly calls this first */
void vt_h5_quiet(void);
/* the operating system's reason for the calling thread's newest HDF5 failure, when its error stack
 * carries one ("No space left on device"), as " (reason)" in buf, else "" */
const char *vt_h5_reason(char buf[128]);
/* after a failed H5Dread, before any other HDF5 call (each clears HDF5's error stack): did a chunk fail its
 * Fletcher-32 checksum; the message then says VT_H5_CHECKSUM_BAD after the file and dataset */
bool vt_h5_checksum_failed(void);
#define VT_H5_CHECKSUM_BAD                                                                                   \
    " fails its Fletcher-32 checksum: the file's bytes changed after it was written (a damaged copy or disk; " \
    "the data is not used)"
/* does dataset path carry Fletcher-32 checksums (written by this library since they were added) */
bool vt_h5_checksummed(vt_h5id loc, const char *path);
bool vt_h5_exists(vt_h5id loc, const char *path);          /* every link on the path exists */
bool vt_h5_is_group(vt_h5id loc, const char *path);
/* names of the direct children of a group, sorted; *names is malloc'd (free with vt_h5_free_names) */
int vt_h5_list(vt_h5id loc, const char *group, char ***names, int *count);
void vt_h5_free_names(char **names, int count);
/* read a dataset of any float/int type as float32 / float64 / int64 (malloc'd; caller frees).
 * ndim/shape may be NULL; shape must hold 8 entries (datasets up to 8-D accepted). */
int vt_h5_read_f32(vt_h5id loc, const char *path, float **out, int *ndim, int64_t *shape);
int vt_h5_read_f64(vt_h5id loc, const char *path, double **out, int *ndim, int64_t *shape);
int vt_h5_read_i64(vt_h5id loc, const char *path, int64_t **out, int *ndim, int64_t *shape);
/* read a dataset into caller memory; the dataset must have exactly expect_numel elements */
int vt_h5_read_into_f32(vt_h5id loc, const char *path, float *dst, int64_t expect_numel);
/* dataset shape without reading (ndim up to 8) */
int vt_h5_shape(vt_h5id loc, const char *path, int *ndim, int64_t *shape);
/* attributes of the object at obj (a group or dataset path, "." for loc itself) */
bool vt_h5_has_attr(vt_h5id loc, const char *obj, const char *name);
int vt_h5_attr_f64(vt_h5id loc, const char *obj, const char *name, double *v);
int vt_h5_attr_i64(vt_h5id loc, const char *obj, const char *name, int64_t *v);
int vt_h5_attr_bool(vt_h5id loc, const char *obj, const char *name, bool *v);   /* h5py bool enum or int */
int vt_h5_attr_str(vt_h5id loc, const char *obj, const char *name, char *buf, size_t n);
/* writing (float32 datasets, optional deflate level 0..9) and scalar attributes */
int vt_h5_write_f32(vt_h5id loc, const char *path, const float *data, int ndim, const int64_t *shape, int deflate);
int vt_h5_write_f64(vt_h5id loc, const char *path, const double *data, int ndim, const int64_t *shape);
int vt_h5_write_u8(vt_h5id loc, const char *path, const uint8_t *data, int ndim, const int64_t *shape, int deflate);
int vt_h5_write_i64(vt_h5id loc, const char *path, const int64_t *data, int ndim, const int64_t *shape);
int vt_h5_write_attr_i64(vt_h5id loc, const char *obj, const char *name, int64_t v);
int vt_h5_write_attr_f64(vt_h5id loc, const char *obj, const char *name, double v);
int vt_h5_write_attr_str(vt_h5id loc, const char *obj, const char *name, const char *v);
/* create the group and any missing parents */
int vt_h5_mkgroup(vt_h5id loc, const char *path);
/* the serial HDF5 library is not thread-safe: threads that touch HDF5 while others may (data loader
 * workers, checkpoint writes) hold this recursive lock around each use */
void vt_h5_lock(void);
void vt_h5_unlock(void);
/* the file name of an open object, for messages */
const char *vt_h5_filename(vt_h5id loc, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
