/* tensor.c - tensor descriptions and views. */
#include "tensor.h"
#include <stdio.h>
#include <string.h>

static void set_contiguous_strides(vt_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

vt_tensor vt_tensor_view(float *data, int ndim, const int64_t *shape, const char *name)
{
    vt_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    set_contiguous_strides(&t);
    t.data = data;
    t.name = name;
    return t;
}

int vt_tensor_arena(vt_tensor *t, vt_arena *a, int ndim, const int64_t *shape, const char *name, bool zero)
{
    if (ndim < 0 || ndim > VT_MAXDIM) return vt_err("tensor %s: %d dimensions (at most %d)", name ? name : "?", ndim, VT_MAXDIM);
    *t = vt_tensor_view(NULL, ndim, shape, name);
    int64_t n = vt_tensor_numel(t);
    t->data = zero ? vt_arena_calloc(a, (size_t)n * sizeof(float)) : vt_arena_alloc(a, (size_t)n * sizeof(float));
    return t->data ? VT_OK : VT_ERR;
}

int64_t vt_tensor_numel(const vt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool vt_tensor_is_contiguous(const vt_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool vt_shape_equal(const vt_tensor *a, const vt_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *vt_shape_str(const vt_tensor *t, char *buf, size_t n)
{
    return vt_dims_str(t->ndim, t->shape, buf, n);
}

int vt_tensor_reshape(vt_tensor *out, const vt_tensor *t, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > VT_MAXDIM) return vt_err("reshape of %s: %d dimensions", t->name ? t->name : "tensor", ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    char a[96], b[96];
    if (n != vt_tensor_numel(t))
        return vt_err("reshape of %s: %s has %lld elements, target %s has %lld",
                      t->name ? t->name : "tensor", vt_shape_str(t, a, sizeof a), (long long)vt_tensor_numel(t),
                      vt_dims_str(ndim, shape, b, sizeof b), (long long)n);
    if (!vt_tensor_is_contiguous(t))
        return vt_err("reshape of %s: the tensor is not contiguous", t->name ? t->name : "tensor");
    *out = vt_tensor_view(t->data, ndim, shape, t->name);
    return VT_OK;
}

int vt_tensor_slice(vt_tensor *out, const vt_tensor *t, int dim, int64_t start, int64_t len)
{
    if (dim < 0 || dim >= t->ndim) return vt_err("slice of %s: no dimension %d", t->name ? t->name : "tensor", dim);
    if (start < 0 || len < 0 || start + len > t->shape[dim])
        return vt_err("slice of %s: [%lld, %lld) outside dimension %d of size %lld", t->name ? t->name : "tensor",
                      (long long)start, (long long)(start + len), dim, (long long)t->shape[dim]);
    *out = *t;
    out->data = t->data + start * t->stride[dim];
    out->shape[dim] = len;
    return VT_OK;
}

int vt_tensor_transpose(vt_tensor *out, const vt_tensor *t, int d0, int d1)
{
    if (d0 < 0 || d1 < 0 || d0 >= t->ndim || d1 >= t->ndim)
        return vt_err("transpose of %s: dimensions %d, %d of a %d-D tensor", t->name ? t->name : "tensor", d0, d1, t->ndim);
    *out = *t;
    out->shape[d0] = t->shape[d1];
    out->shape[d1] = t->shape[d0];
    out->stride[d0] = t->stride[d1];
    out->stride[d1] = t->stride[d0];
    return VT_OK;
}

float vt_tensor_get(const vt_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
    return t->data[off];
}

void vt_tensor_copy_to_contiguous(float *dst, const vt_tensor *t)
{
    int64_t idx[VT_MAXDIM] = {0};
    int64_t n = vt_tensor_numel(t);
    for (int64_t k = 0; k < n; k++) {
        dst[k] = vt_tensor_get(t, idx);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}
