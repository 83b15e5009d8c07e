/* golden_internal.h - what the golden checkers (golden.c, golden_model.c, golden_optim.c) share */
#ifndef VIT_GOLDEN_INTERNAL_H
#define VIT_GOLDEN_INTERNAL_H
#include "golden.h"

typedef struct {
    FILE *out;
    const vt_golden_opts *opts;
    vt_golden_result *res;
    vt_h5id f;
} ctx_t;

/* compare n floats with a float64 reference: worst |a-b| against tol = rel * max|ref| (+ abs); counted in c->res */
void golden_compare(ctx_t *c, const char *what, const float *ours, const double *ref, int64_t n, double rel, double abs_tol);
/* *ref (malloc'd) gets the float64 dataset path of the file, which must hold expect values */
int golden_read_ref(ctx_t *c, const char *path, double **ref, int64_t expect);
/* every parameter of m (values: its flat buffer of values or gradients) against g/sub/<timm name>, within
 * 1e-4 x the tensor's largest magnitude; missing (may be NULL): a reference that must exist, named so */
int golden_compare_params(ctx_t *c, const char *g, const char *sub, const vt_vit *m, const float *values,
                          const char *missing);
/* labels (B,) of any integer type -> int */
int golden_read_labels(vt_h5id f, const char *path, int **labels, int64_t expect);
/* the model description in a group's attributes */
int golden_read_model_config(vt_h5id f, const char *g, vt_vit_config *mc);

/* the checkers of each kind of group: VT_ERR when the group cannot be read */
int golden_check_model_case(ctx_t *c, const char *g);
int golden_check_pos_resample(ctx_t *c, const char *g);
int golden_check_optim(ctx_t *c, const char *g);
int golden_check_schedule(ctx_t *c, const char *g);
int golden_check_train_steps(ctx_t *c, const char *g);
#endif
