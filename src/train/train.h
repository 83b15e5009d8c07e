/* train.h - the top layer: golden checks against timm, (later) config, training loop, checkpoints. */
#ifndef VIT_TRAIN_H
#define VIT_TRAIN_H

#include <stdio.h>
#include "tensor/tensor.h"
#include "autograd/autograd.h"
#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- golden checks */
typedef struct {
    const char *only_case;   /* check only this group (NULL: every group found) */
    const char *weights;     /* load the model case's weights from this file instead of its params/ */
    bool verbose;            /* one line per tensor (otherwise only failures and a summary per case) */
} vt_golden_opts;

typedef struct {
    int checked;       /* tensors/values compared */
    int failed;        /* of those, outside tolerance */
    int cases;         /* groups checked */
    int not_checked;   /* groups found that this build cannot check */
    int errors;        /* groups that could not be read */
} vt_golden_result;

/* Walk an HDF5 file of the goldens layout, check every group it recognises, print a report to out.
 * Returns VT_OK when the file could be walked (look at res for failures). */
int vt_golden_check_file(const char *path, const vt_golden_opts *opts, FILE *out, vt_golden_result *res);

#ifdef __cplusplus
}
#endif
#endif
