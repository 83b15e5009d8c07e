/* nn_internal.h - what the weight importers share (weights.c, safetensors*.c, npz*.c) and nothing else
 * includes. */
#ifndef VIT_NN_INTERNAL_H
#define VIT_NN_INTERNAL_H
#include "nn.h"
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- both formats (weights.c) */

/* added to a shape mismatch, the one error where the missing model description is the point; file is
 * "a safetensors file", "an npz file" */
#define VT_WEIGHTS_NOTE(file)                                                                                  \
    " (" file " holds no model description, so its shapes must match the model's: the config's, or under " \
    "--init the one read from the file's shapes, which then takes a new head and patch grid)"

/* the names a file holds that the model does not read: how many, the first few, and the features they
 * belong to when recognisable (LayerScale, register tokens, ...), for one message */
typedef struct {
    int bad, shown;
    char list[640], feats[640], more[48];
    size_t ll, fl;
} vt_unexpected;

/* count name; feature (may be NULL) is what it belongs to */
void vt_unexpected_add(vt_unexpected *u, const char *name, const char *feature);
/* " and N more" when names were left out of list, else "" */
const char *vt_unexpected_more(vt_unexpected *u);

/* the block index b of name "<prefix>b<sep>..." (decimal below 2^20; strict: without leading zeros), -1
 * when name is not one; *rest (may be NULL) points after sep */
long vt_weights_block(const char *name, const char *prefix, char sep, bool strict, const char **rest);
/* name is one of a plain ViT's tensors: one of top, or prefix b sep one of blk for a block b below depth
 * (depth < 0: any) */
bool vt_weights_plain_name(const char *name, const char *const *top, size_t ntop, const char *prefix, char sep,
                           const char *const *blk, size_t nblk, int depth);
/* o->mlp_ratio for an MLP of hidden units: o's own when (int)(embed_dim * mlp_ratio) gives hidden, else the
 * smallest ratio that does */
void vt_weights_mlp_ratio(vt_vit_config *o, int hidden);
/* the error for a value that is not finite in float32: d (the file's value) at element k of n of the tensor
 * what (its name, prefixed by the caller's words) */
int vt_weights_not_finite(const char *path, const char *what, double d, int64_t k, int64_t n);

static inline float *vt_pdata(vt_vit *m, int idx) { return m->params.data + m->params.info[idx].offset; }

/* ---------------------------------------------------------------- safetensors (safetensors_header.c) */
typedef struct {
    char name[256];
    char dtype[8];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;
} vt_st_entry;

/* the file open after its header, read into *entries (malloc'd, *count of them), the data's start (8 + the
 * header's length) and length; NULL with a message (nothing to free) on failure */
FILE *vt_st_open(const char *path, vt_st_entry **entries, int *count, uint64_t *data_start, uint64_t *data_len);

/* ---------------------------------------------------------------- npz (npz.c, npz_write.c) */
#define VT_NPZ_FC_NORM                                                                                         \
    "%s: a model with [model] fc_norm = true has no Google .npz layout (its Transformer/encoder_norm is the norm " \
    "over the tokens before pooling, fc_norm = false)%s"

/* VT_OK for a model Google's layout holds, else the error naming what it lacks (fc_norm, LayerScale), path
 * and what to do (after: "" or ": write .safetensors instead") */
int vt_npz_supported(const vt_vit_config *c, const char *path, const char *after);

/* the vectors of encoder block b as Google's layout names them, under Transformer/encoderblock_<i>/ */
typedef struct {
    const char *name;
    int idx;         /* parameter index */
    int64_t numel;
} vt_npz_vec;
enum { VT_NPZ_BLOCK_VECS = 7 };
void vt_npz_block_vecs(const vt_vit *m, int i, vt_npz_vec v[VT_NPZ_BLOCK_VECS]);

/* copy an (in, out) kernel into an (out, in) weight */
static inline void vt_transpose2(float *dst, const float *src, int64_t in, int64_t out)
{
    for (int64_t i = 0; i < in; i++)
        for (int64_t o = 0; o < out; o++) dst[o * in + i] = src[i * out + o];
}

#endif
