/* fuzz.h - the fuzz targets: each takes the bytes of one input and feeds them to one parser through the
 * library's real entry point (from memory, or from a file in a scratch folder where the library only
 * reads files). Built into one libFuzzer executable per target (meson -Dfuzz=true, clang; see
 * scripts/fuzz.sh) and, in every build, into tests/test_fuzz_replay, which replays the seed corpus and the
 * regression inputs (tests/fuzz/corpus/<target>/, tests/fuzz/regressions/<target>/) through the same
 * functions. A target returns 0; it aborts (naming what broke) when the library breaks a promise that an
 * error message alone cannot show (an accepted file that reads back differently, an error without a
 * message). */
#ifndef VIT_FUZZ_H
#define VIT_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "data/data.h"
#include "nn/nn.h"

#define VT_FUZZ_TARGETS(X) \
    X(config) X(idx) X(cifar) X(safetensors) X(npz) X(ckpt) X(h5data) X(png) X(jpeg)

#define VT_FUZZ_DECLARE(name) int vt_fuzz_##name(const uint8_t *data, size_t size);
VT_FUZZ_TARGETS(VT_FUZZ_DECLARE)
#undef VT_FUZZ_DECLARE

typedef struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
} vt_fuzz_target;
extern const vt_fuzz_target vt_fuzz_targets[];   /* ends with {NULL, NULL} */

/* this process's scratch folder (created on first use, under $TMPDIR or /tmp, removed at exit) */
const char *vt_fuzz_dir(void);
/* (re)create the folder sub of the scratch folder, empty; returns its path (static storage) */
const char *vt_fuzz_subdir(const char *sub);
/* write size bytes to dir/name, replacing it; returns the path (static storage, one per name slot k) */
const char *vt_fuzz_write(int k, const char *dir, const char *name, const void *data, size_t size);
/* the input split at each occurrence of sep into at most max parts (part[i], len[i]); returns the count */
int vt_fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **part, size_t *len, int max);
/* abort naming the target and what broke unless ok */
void vt_fuzz_require(bool ok, const char *target, const char *what);
/* a failing call must leave a message */
void vt_fuzz_require_msg(const char *target);

/* open split of the dataset at dir with o (vt_dataset_open_opts), read every sample (at most 256) and
 * check each: its label below the class count */
void vt_fuzz_read_dataset(const char *target, const char *dir, const char *split, const vt_data_options *o);

/* the HDF5 description language of the ckpt and h5data targets (h5build.c): text lines that make an HDF5
 * file with the library's own HDF5 calls, so that the fuzzer explores what our readers do with any
 * structure, names, types, shapes and values (libhdf5's own parsing of damaged bytes is not ours to fix):
 *   g PATH                                 group (and its parents)
 *   d PATH TYPE DIMS [chunk=C,..] [deflate] [VALUES...]  dataset; VALUES repeat to fill it (none: zeros)
 *   a OBJ NAME TYPE [DIMS] VALUE...        attribute of OBJ (scalar unless DIMS; str: the rest of the line)
 * TYPE: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 str fstr bool; DIMS: 2,3,4 or - (scalar); \n in a str is a
 * newline. Returns 0 with the file written to path, -1 when the description cannot be built (skipped). */
/* the fixed small model of the weight targets (fuzz_weights.c): 8x8, patch 4, width 8, 2 heads, 1 block */
void vt_fuzz_small_config(vt_vit_config *c);

int vt_fuzz_h5build(const char *path, const uint8_t *data, size_t size);

#endif
