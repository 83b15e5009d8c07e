/* ops_general.c - the small general ops that make this a real autograd engine: broadcasting
 * add/sub/mul, scale, (batched) matmul, sum, mean, reshape, transpose, exp, log, tanh, relu. */
#include "autograd_internal.h"
#include <math.h>
#include <string.h>

#define NUMEL(v) vt_tensor_numel(&(v)->val)

/* b broadcasts over a when b's shape equals the trailing dims of a's shape */
static bool broadcastable(const vt_var *a, const vt_var *b)
{
    if (b->val.ndim > a->val.ndim) return false;
    int off = a->val.ndim - b->val.ndim;
    for (int i = 0; i < b->val.ndim; i++)
        if (b->val.shape[i] != a->val.shape[off + i]) {
            /* allow leading 1s in b: (1, 1, D) over (B, T, D) */
            bool lead_ones = true;
            for (int j = 0; j <= i; j++) lead_ones &= b->val.shape[j] == 1;
            if (!lead_ones) return false;
        }
    return NUMEL(b) > 0 && NUMEL(a) % NUMEL(b) == 0;
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL } bin_kind;

static vt_var *binary(vt_graph *g, vt_var *a, vt_var *b, bin_kind k, vt_op op)
{
    const char *nm = vt_op_name(op);
    vt_var *ins[2] = {a, b};
    if (!ag_check_inputs(nm, ins, 2)) return NULL;
    if (!broadcastable(a, b)) {
        vt_err("%s: shapes %s and %s do not match (the second must equal or broadcast over the first's trailing dims)",
               nm, ag_shape(a), ag_shape(b));
        return NULL;
    }
    vt_var *o = ag_out(g, a->val.ndim, a->val.shape, nm, ins, 2);
    if (!o) return NULL;
    int64_t n = NUMEL(a), M = NUMEL(b), R = n / M;
    const float *x = a->val.data, *y = b->val.data;
    float *z = o->val.data;
    if (k == BIN_ADD && M == n) {
        vt_add_forward(z, x, y, n);
    } else {
        /* rows of M: b repeats over the leading dims */
        #pragma omp parallel for schedule(static) if (n > 16384)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * M;
            float *zr = z + r * M;
            if (k == BIN_ADD)
                for (int64_t j = 0; j < M; j++) zr[j] = xr[j] + y[j];
            else if (k == BIN_SUB)
                for (int64_t j = 0; j < M; j++) zr[j] = xr[j] - y[j];
            else
                for (int64_t j = 0; j < M; j++) zr[j] = xr[j] * y[j];
        }
    }
    ag_record(g, op, o, ins, 2);
    return o;
}

vt_var *vt_add(vt_graph *g, vt_var *a, vt_var *b) { return binary(g, a, b, BIN_ADD, VT_OP_ADD); }
vt_var *vt_sub(vt_graph *g, vt_var *a, vt_var *b) { return binary(g, a, b, BIN_SUB, VT_OP_SUB); }
vt_var *vt_mul(vt_graph *g, vt_var *a, vt_var *b) { return binary(g, a, b, BIN_MUL, VT_OP_MUL); }

static int binary_backward(vt_graph *g, vt_node *n, bin_kind k)
{
    vt_var *a = n->in[0], *b = n->in[1];
    int64_t N = NUMEL(a), M = NUMEL(b);
    const float *dz = n->out->grad;
    if (k == BIN_ADD && M == N)   /* the residual add: both inputs get dz (one of them the buffer itself) */
        return ag_grad_add(g, n, b, dz) == VT_OK && ag_grad_add(g, n, a, dz) == VT_OK ? VT_OK : VT_ERR;
    float *da = ag_grad_of(g, a), *db = ag_grad_of(g, b);
    const int64_t R = N / M;
    if (da) {
        if (k == BIN_MUL) {
            const float *y = b->val.data;
            #pragma omp parallel for schedule(static) if (N > 16384)
            for (int64_t r = 0; r < R; r++)
                for (int64_t j = 0; j < M; j++) da[r * M + j] += dz[r * M + j] * y[j];
        } else {
            vt_accumulate(da, dz, N);
        }
    }
    if (db) {
        if (M == N && k != BIN_MUL) {
            if (k == BIN_ADD) vt_accumulate(db, dz, N);
            else
                for (int64_t i = 0; i < N; i++) db[i] -= dz[i];
        } else if (k == BIN_ADD) {
            vt_bias_add_backward(db, dz, (int)R, (int)M);
        } else {
            /* rows summed in order: deterministic */
            const float *x = a->val.data;
            for (int64_t r = 0; r < R; r++)
                for (int64_t j = 0; j < M; j++) {
                    float v = k == BIN_SUB ? -dz[r * M + j] : dz[r * M + j] * x[r * M + j];
                    db[j] += v;
                }
        }
    }
    return VT_OK;
}

int ag_backward_add(vt_graph *g, vt_node *n) { return binary_backward(g, n, BIN_ADD); }
int ag_backward_sub(vt_graph *g, vt_node *n) { return binary_backward(g, n, BIN_SUB); }
int ag_backward_mul(vt_graph *g, vt_node *n) { return binary_backward(g, n, BIN_MUL); }

vt_var *vt_scale(vt_graph *g, vt_var *a, float s)
{
    vt_var *ins[1] = {a};
    if (!ag_check_inputs("scale", ins, 1)) return NULL;
    vt_var *o = ag_out(g, a->val.ndim, a->val.shape, "scale", ins, 1);
    if (!o) return NULL;
    int64_t n = NUMEL(a);
    for (int64_t i = 0; i < n; i++) o->val.data[i] = s * a->val.data[i];
    vt_node *nd = ag_record(g, VT_OP_SCALE, o, ins, 1);
    if (nd) nd->ctx.scale.s = s;
    return o;
}

int ag_backward_scale(vt_graph *g, vt_node *n)
{
    float *da = ag_grad_of(g, n->in[0]);
    if (da) {
        int64_t N = NUMEL(n->in[0]);
        for (int64_t i = 0; i < N; i++) da[i] += n->ctx.scale.s * n->out->grad[i];
    }
    return VT_OK;
}

/* a (M, K) @ b (K, N); a (Bt, M, K) @ b (Bt, K, N); a (Bt, M, K) @ b (K, N) */
vt_var *vt_matmul(vt_graph *g, vt_var *a, vt_var *b)
{
    vt_var *ins[2] = {a, b};
    if (!ag_check_inputs("matmul", ins, 2)) return NULL;
    int an = a->val.ndim, bn = b->val.ndim;
    bool ok = (an == 2 || an == 3) && (bn == 2 || (bn == 3 && an == 3 && b->val.shape[0] == a->val.shape[0]));
    if (ok) ok = a->val.shape[an - 1] == b->val.shape[bn - 2];
    if (!ok) {
        vt_err("matmul: shapes %s and %s do not multiply (expected (M, K) @ (K, N), optionally batched)", ag_shape(a),
               ag_shape(b));
        return NULL;
    }
    int64_t Bt = an == 3 ? a->val.shape[0] : 1, M = a->val.shape[an - 2], K = a->val.shape[an - 1],
            N = b->val.shape[bn - 1];
    int64_t shape[3] = {Bt, M, N};
    vt_var *o = an == 3 ? ag_out(g, 3, shape, "matmul", ins, 2) : ag_out(g, 2, shape + 1, "matmul", ins, 2);
    if (!o) return NULL;
    int64_t bstride = bn == 3 ? K * N : 0;
    for (int64_t t = 0; t < Bt; t++)
        vt_sgemm(false, false, (int)M, (int)N, (int)K, 1.0f, a->val.data + t * M * K, (int)K, b->val.data + t * bstride,
                 (int)N, 0.0f, o->val.data + t * M * N, (int)N);
    vt_node *nd = ag_record(g, VT_OP_MATMUL, o, ins, 2);
    if (nd) {
        nd->ctx.matmul = (struct vt_ctx_matmul){Bt, M, K, N, bstride};
    }
    return o;
}

int ag_backward_matmul(vt_graph *g, vt_node *n)
{
    vt_var *a = n->in[0], *b = n->in[1];
    const struct vt_ctx_matmul *c = &n->ctx.matmul;
    const int64_t Bt = c->Bt, M = c->M, K = c->K, N = c->N, bs = c->bstride;
    float *da = ag_grad_of(g, a), *db = ag_grad_of(g, b);
    const float *dz = n->out->grad;
    for (int64_t t = 0; t < Bt; t++) {
        /* da (M, K) += dz (M, N) b^T;  db (K, N) += a^T dz */
        if (da)
            vt_sgemm(false, true, (int)M, (int)K, (int)N, 1.0f, dz + t * M * N, (int)N, b->val.data + t * bs, (int)N,
                     1.0f, da + t * M * K, (int)K);
        if (db)
            vt_sgemm(true, false, (int)K, (int)N, (int)M, 1.0f, a->val.data + t * M * K, (int)K, dz + t * M * N,
                     (int)N, 1.0f, db + t * bs, (int)N);
    }
    return VT_OK;
}

static vt_var *reduce(vt_graph *g, vt_var *a, bool mean)
{
    const char *nm = mean ? "mean" : "sum";
    vt_var *ins[1] = {a};
    if (!ag_check_inputs(nm, ins, 1)) return NULL;
    vt_var *o = ag_out(g, 1, (int64_t[]){1}, nm, ins, 1);
    if (!o) return NULL;
    int64_t n = NUMEL(a);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a->val.data[i];
    o->val.data[0] = (float)(mean ? s / (double)n : s);
    ag_record(g, mean ? VT_OP_MEAN : VT_OP_SUM, o, ins, 1);
    return o;
}

vt_var *vt_sum(vt_graph *g, vt_var *a) { return reduce(g, a, false); }
vt_var *vt_mean(vt_graph *g, vt_var *a) { return reduce(g, a, true); }

static int reduce_backward(vt_graph *g, vt_node *n, bool mean)
{
    float *da = ag_grad_of(g, n->in[0]);
    if (da) {
        int64_t N = NUMEL(n->in[0]);
        float d = mean ? n->out->grad[0] / (float)N : n->out->grad[0];
        for (int64_t i = 0; i < N; i++) da[i] += d;
    }
    return VT_OK;
}

int ag_backward_sum(vt_graph *g, vt_node *n) { return reduce_backward(g, n, false); }
int ag_backward_mean(vt_graph *g, vt_node *n) { return reduce_backward(g, n, true); }

/* same data, new shape; the output has its own gradient buffer */
vt_var *vt_reshape(vt_graph *g, vt_var *a, int ndim, const int64_t *shape)
{
    vt_var *ins[1] = {a};
    if (!ag_check_inputs("reshape", ins, 1)) return NULL;
    vt_tensor t;
    if (vt_tensor_reshape(&t, &a->val, ndim, shape) != VT_OK) return NULL;
    vt_var *o = vt_var_wrap(g, a->val.data, ndim, shape, "reshape");
    if (!o) return NULL;
    o->requires_grad = g->grad_enabled && a->requires_grad;
    ag_record(g, VT_OP_RESHAPE, o, ins, 1);
    return o;
}

int ag_backward_reshape(vt_graph *g, vt_node *n)
{
    return ag_grad_add(g, n, n->in[0], n->out->grad);
}

vt_var *vt_transpose(vt_graph *g, vt_var *a, int d0, int d1)
{
    vt_var *ins[1] = {a};
    if (!ag_check_inputs("transpose", ins, 1)) return NULL;
    vt_tensor t;
    if (vt_tensor_transpose(&t, &a->val, d0, d1) != VT_OK) return NULL;
    vt_var *o = ag_out(g, t.ndim, t.shape, "transpose", ins, 1);
    if (!o) return NULL;
    vt_tensor_copy_to_contiguous(o->val.data, &t);
    vt_node *nd = ag_record(g, VT_OP_TRANSPOSE, o, ins, 1);
    if (nd) {
        nd->ctx.transpose.d0 = d0;
        nd->ctx.transpose.d1 = d1;
    }
    return o;
}

int ag_backward_transpose(vt_graph *g, vt_node *n)
{
    vt_var *a = n->in[0];
    float *da = ag_grad_of(g, a);
    if (!da) return VT_OK;
    /* walk da in order; read the matching element of the output gradient through a transposed view */
    vt_tensor dz = vt_tensor_view(n->out->grad, n->out->val.ndim, n->out->val.shape, "dz"), dzt;
    vt_tensor_transpose(&dzt, &dz, n->ctx.transpose.d0, n->ctx.transpose.d1);
    int64_t idx[VT_MAXDIM] = {0}, N = NUMEL(a);
    for (int64_t k = 0; k < N; k++) {
        da[k] += vt_tensor_get(&dzt, idx);
        for (int d = dzt.ndim - 1; d >= 0; d--) {
            if (++idx[d] < dzt.shape[d]) break;
            idx[d] = 0;
        }
    }
    return VT_OK;
}

typedef enum { UN_EXP, UN_LOG, UN_TANH, UN_RELU } un_kind;

static vt_var *unary(vt_graph *g, vt_var *a, un_kind k, vt_op op)
{
    const char *nm = vt_op_name(op);
    vt_var *ins[1] = {a};
    if (!ag_check_inputs(nm, ins, 1)) return NULL;
    vt_var *o = ag_out(g, a->val.ndim, a->val.shape, nm, ins, 1);
    if (!o) return NULL;
    int64_t n = NUMEL(a);
    const float *x = a->val.data;
    float *y = o->val.data;
    for (int64_t i = 0; i < n; i++)
        y[i] = k == UN_EXP ? expf(x[i]) : k == UN_LOG ? logf(x[i]) : k == UN_TANH ? tanhf(x[i]) : (x[i] > 0 ? x[i] : 0);
    ag_record(g, op, o, ins, 1);
    return o;
}

vt_var *vt_exp(vt_graph *g, vt_var *a) { return unary(g, a, UN_EXP, VT_OP_EXP); }
vt_var *vt_log(vt_graph *g, vt_var *a) { return unary(g, a, UN_LOG, VT_OP_LOG); }
vt_var *vt_tanh(vt_graph *g, vt_var *a) { return unary(g, a, UN_TANH, VT_OP_TANH); }
vt_var *vt_relu(vt_graph *g, vt_var *a) { return unary(g, a, UN_RELU, VT_OP_RELU); }

static int unary_backward(vt_graph *g, vt_node *n, un_kind k)
{
    float *da = ag_grad_of(g, n->in[0]);
    if (!da) return VT_OK;
    int64_t N = NUMEL(n->in[0]);
    const float *x = n->in[0]->val.data, *y = n->out->val.data, *dy = n->out->grad;
    for (int64_t i = 0; i < N; i++) {
        float d = k == UN_EXP ? y[i] : k == UN_LOG ? 1.0f / x[i] : k == UN_TANH ? 1.0f - y[i] * y[i] : (x[i] > 0 ? 1.0f : 0.0f);
        da[i] += d * dy[i];
    }
    return VT_OK;
}

int ag_backward_exp(vt_graph *g, vt_node *n) { return unary_backward(g, n, UN_EXP); }
int ag_backward_log(vt_graph *g, vt_node *n) { return unary_backward(g, n, UN_LOG); }
int ag_backward_tanh(vt_graph *g, vt_node *n) { return unary_backward(g, n, UN_TANH); }
int ag_backward_relu(vt_graph *g, vt_node *n) { return unary_backward(g, n, UN_RELU); }
