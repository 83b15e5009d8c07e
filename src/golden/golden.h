/* golden.h - checks against timm's reference values (../shared/goldens, the goldens layout): a layer of
 * its own beside src/train, over nn and optim; vit-golden and the tests use it. */
#ifndef VIT_GOLDEN_H
#define VIT_GOLDEN_H

#include <stdio.h>
#include "nn/nn.h"
#include "optim/optim.h"

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
 * Returns VT_OK when the file could be walked (look at res for failures); VT_ERR when it cannot be read,
 * holds no golden group, or opts names a case that is not one (of the kind asked for). */
int vt_golden_check_file(const char *path, const vt_golden_opts *opts, FILE *out, vt_golden_result *res);

#ifdef __cplusplus
}
#endif
#endif
