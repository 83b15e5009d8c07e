/* autograd_internal.h - shared between the files of src/autograd; not public. */
#ifndef VIT_AUTOGRAD_INTERNAL_H
#define VIT_AUTOGRAD_INTERNAL_H
#include "autograd.h"

/* output var of an op: allocated in the arena, requires_grad if any input does */
vt_var *ag_out(vt_graph *g, int ndim, const int64_t *shape, const char *name, vt_var *const *ins, int nin);
/* append a node to the tape when grad is enabled and the output requires grad; NULL = not recorded */
vt_node *ag_record(vt_graph *g, vt_op op, vt_var *out, vt_var *const *ins, int nin);
/* NULL-input guard with a message naming the op and argument */
bool ag_check_inputs(const char *op, vt_var *const *ins, int nin);
/* rows of a (..., C) tensor */
int64_t ag_rows(const vt_var *v);
/* gradient of an input if it needs one, else NULL (allocating it in the arena) */
float *ag_grad_of(vt_graph *g, vt_var *v);
/* v.grad += src (numel of v) for an input that needs a gradient; when v has none yet this is a copy,
 * or (src being the op's output gradient, released after the op) the buffer itself changes hands.
 * Read src for other inputs before calling this, or pass src again: it stays valid until the op ends. */
int ag_grad_add(vt_graph *g, vt_node *n, vt_var *v, const float *src);
/* where an op's backward puts an input's gradient: the existing one (*acc true: add into it), or a fresh
 * uninitialised buffer (*acc false: the op must write every element); NULL when none is needed */
float *ag_grad_dst(vt_graph *g, vt_var *v, bool *acc);
/* contiguous floats from the arena */
float *ag_alloc(vt_graph *g, int64_t n, bool zero);
/* "(2, 3)" of a var, in one of a few rotating static buffers per thread */
const char *ag_shape(const vt_var *v);

/* the backward of each op (ag_backward_linear, ...), defined in ops_fused.c and ops_general.c */
#define AG_BACKWARD_DECL_(E, name) int ag_backward_##name(vt_graph *g, vt_node *n);
VT_OPS(AG_BACKWARD_DECL_)
#undef AG_BACKWARD_DECL_
#endif
