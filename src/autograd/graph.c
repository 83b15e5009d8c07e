/* graph.c - the tape: recording, var allocation, and the reverse walk. */
#include "autograd_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
#define OP_NAME_(E, name) [VT_OP_##E] = #name,
    VT_OPS(OP_NAME_)
#undef OP_NAME_
};
_Static_assert(sizeof op_names / sizeof op_names[0] == VT_OP_COUNT, "op_names must name every op");
/* the ops a gradient check covers (tests/test_autograd.c); a new op changes this count with its check */
_Static_assert(VT_OP_COUNT == 25, "a new op: add its gradient check to tests/test_autograd.c, then update this count");

const char *vt_op_name(vt_op op)
{
    return (op >= 0 && op < VT_OP_COUNT) ? op_names[op] : "unknown-op";
}

/* node n's backward; an op without one is a bug of this library: abort naming it */
static int backward_of(vt_graph *g, vt_node *n)
{
    switch (n->op) {
#define OP_BACKWARD_(E, name) \
    case VT_OP_##E: return ag_backward_##name(g, n);
        VT_OPS(OP_BACKWARD_)
#undef OP_BACKWARD_
    default:
        fprintf(stderr, "vit: internal error: no backward for op %d (%s)\n", (int)n->op, vt_op_name(n->op));
        abort();
    }
}

int vt_graph_init(vt_graph *g, size_t arena_bytes)
{
    memset(g, 0, sizeof *g);
    vt_arena_init(&g->arena, arena_bytes);
    g->grad_enabled = true;
    g->cap = 256;
    g->nodes = malloc((size_t)g->cap * sizeof *g->nodes);
    if (!g->nodes) return vt_err("graph: out of memory");
    return VT_OK;
}

void vt_graph_free(vt_graph *g)
{
    vt_arena_free(&g->arena);
    free(g->nodes);
    g->nodes = NULL;
    g->nnodes = g->cap = 0;
}

void vt_graph_reset(vt_graph *g)
{
    vt_arena_reset(&g->arena);
    g->nnodes = 0;
    g->npool = 0;
}

void vt_graph_set_grad(vt_graph *g, bool enabled) { g->grad_enabled = enabled; }

float *ag_alloc(vt_graph *g, int64_t n, bool zero)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    return zero ? vt_arena_calloc(&g->arena, bytes) : vt_arena_alloc(&g->arena, bytes);
}

vt_var *vt_var_new(vt_graph *g, int ndim, const int64_t *shape, const char *name, bool zero)
{
    if (ndim < 1 || ndim > VT_MAXDIM) {
        vt_err("var %s: %d dimensions (1 to %d supported)", name ? name : "?", ndim, VT_MAXDIM);
        return NULL;
    }
    vt_var *v = vt_arena_alloc(&g->arena, sizeof *v);
    if (!v) return NULL;
    v->val = vt_tensor_view(NULL, ndim, shape, name);
    v->val.data = ag_alloc(g, vt_tensor_numel(&v->val), zero);
    if (!v->val.data) return NULL;
    v->grad = NULL;
    v->requires_grad = false;
    return v;
}

vt_var *vt_var_wrap(vt_graph *g, float *data, int ndim, const int64_t *shape, const char *name)
{
    if (!data) {
        vt_err("var %s: NULL data", name ? name : "?");
        return NULL;
    }
    if (ndim < 1 || ndim > VT_MAXDIM) {
        vt_err("var %s: %d dimensions (1 to %d supported)", name ? name : "?", ndim, VT_MAXDIM);
        return NULL;
    }
    vt_var *v = vt_arena_alloc(&g->arena, sizeof *v);
    if (!v) return NULL;
    v->val = vt_tensor_view(data, ndim, shape, name);
    v->grad = NULL;
    v->requires_grad = false;
    return v;
}

/* v's gradient buffer from the pool (a block of the same size) or the arena; zeroed or not */
static float *grad_alloc(vt_graph *g, vt_var *v, bool zero)
{
    int64_t n = vt_tensor_numel(&v->val);
    for (int i = g->npool - 1; i >= 0; i--)
        if (g->pool_n[i] == n) {
            v->grad = g->pool_p[i];
            g->pool_p[i] = g->pool_p[g->npool - 1];
            g->pool_n[i] = g->pool_n[g->npool - 1];
            g->npool--;
            if (zero) memset(v->grad, 0, (size_t)n * sizeof(float));
            return v->grad;
        }
    v->grad = ag_alloc(g, n, zero);
    return v->grad;
}

float *vt_var_grad(vt_graph *g, vt_var *v) { return v->grad ? v->grad : grad_alloc(g, v, true); }

float *ag_grad_dst(vt_graph *g, vt_var *v, bool *acc)
{
    *acc = true;
    if (!v || !v->requires_grad) return NULL;
    if (v->grad) return v->grad;
    *acc = false;
    return grad_alloc(g, v, false);
}

int ag_grad_add(vt_graph *g, vt_node *n, vt_var *v, const float *src)
{
    if (!v || !v->requires_grad) return VT_OK;
    int64_t numel = vt_tensor_numel(&v->val);
    if (!v->grad && src == n->out->grad && !g->retain_grads && numel == vt_tensor_numel(&n->out->val)) {
        /* the output's gradient is released after this op anyway: hand the buffer over */
        v->grad = n->out->grad;
        n->out->grad = NULL;
    } else if (!v->grad) {
        if (!grad_alloc(g, v, false)) return VT_ERR;
        memcpy(v->grad, src, (size_t)numel * sizeof(float));
    } else {
        vt_accumulate(v->grad, src, numel);
    }
    return VT_OK;
}

/* backward is done with an intermediate var's gradient: keep the block for a later one */
static void release_grad(vt_graph *g, vt_var *v)
{
    if (g->retain_grads || !v->grad) return;
    if (g->npool < (int)(sizeof g->pool_p / sizeof g->pool_p[0])) {
        g->pool_p[g->npool] = v->grad;
        g->pool_n[g->npool] = vt_tensor_numel(&v->val);
        g->npool++;
    }
    v->grad = NULL;
}

float *ag_grad_of(vt_graph *g, vt_var *v)
{
    if (!v || !v->requires_grad) return NULL;
    return vt_var_grad(g, v);
}

vt_var *ag_out(vt_graph *g, int ndim, const int64_t *shape, const char *name, vt_var *const *ins, int nin)
{
    if (g->profile) g->t_op_start = vt_now();
    vt_var *o = vt_var_new(g, ndim, shape, name, false);
    if (!o) return NULL;
    if (g->grad_enabled)
        for (int i = 0; i < nin; i++)
            if (ins[i] && ins[i]->requires_grad) o->requires_grad = true;
    return o;
}

vt_node *ag_record(vt_graph *g, vt_op op, vt_var *out, vt_var *const *ins, int nin)
{
    if (g->profile) g->op_seconds[op][0] += vt_now() - g->t_op_start;
    if (!g->grad_enabled || !out->requires_grad) return NULL;
    if (g->nnodes == g->cap) {
        int cap = g->cap * 2;
        vt_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) {
            vt_err("graph: out of memory growing the tape to %d nodes", cap);
            return NULL;
        }
        g->nodes = n;
        g->cap = cap;
    }
    vt_node *n = &g->nodes[g->nnodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->nin = nin;
    for (int i = 0; i < nin; i++) n->in[i] = ins[i];
    return n;
}

bool ag_check_inputs(const char *op, vt_var *const *ins, int nin)
{
    for (int i = 0; i < nin; i++)
        if (!ins[i] || !ins[i]->val.data) {
            vt_err("%s: input %d is NULL", op, i);
            return false;
        }
    return true;
}

int64_t ag_rows(const vt_var *v)
{
    int64_t n = vt_tensor_numel(&v->val);
    int64_t c = v->val.shape[v->val.ndim - 1];
    return c ? n / c : 0;
}

const char *ag_shape(const vt_var *v)
{
    static _Thread_local char bufs[4][96];
    static _Thread_local int k;
    char *b = bufs[k++ & 3];
    return vt_shape_str(&v->val, b, 96);
}

int vt_backward(vt_graph *g, vt_var *loss)
{
    if (!loss) return vt_err("backward: loss is NULL");
    if (vt_tensor_numel(&loss->val) != 1)
        return vt_err("backward: loss must be a scalar, got shape %s", ag_shape(loss));
    if (!loss->requires_grad) return vt_err("backward: the loss does not depend on anything that requires grad");
    /* intermediate gradients belong to one pass: clear what an earlier backward on this tape left
     * in them, or it would flow to the leaves a second time (leaves keep accumulating) */
    for (int i = 0; i < g->nnodes; i++) {
        vt_var *o = g->nodes[i].out;
        if (o->grad) memset(o->grad, 0, (size_t)vt_tensor_numel(&o->val) * sizeof(float));
    }
    float *gl = vt_var_grad(g, loss);
    if (!gl) return VT_ERR;
    gl[0] += 1.0f;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        vt_node *n = &g->nodes[i];
        if (n->out->grad) {   /* else nothing flowed into this op's output */
            double t0 = g->profile ? vt_now() : 0;
            if (backward_of(g, n) != VT_OK) return vt_err_prefix("backward of %s: ", vt_op_name(n->op));
            release_grad(g, n->out);
            if (g->profile) g->op_seconds[n->op][1] += vt_now() - t0;
        }
        if (g->after_node) g->after_node(g, i, g->after_node_ctx);
    }
    return VT_OK;
}
