/* params.c - every parameter in one flat buffer, every gradient in another; named views. */
#include "autograd_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vt_paramset_init(vt_paramset *ps) { memset(ps, 0, sizeof *ps); }

int vt_paramset_add(vt_paramset *ps, const char *name, int ndim, const int64_t *shape)
{
    if (ps->data) {
        vt_err("parameter %s: declared after the buffers were allocated", name);
        return -1;
    }
    if (ndim < 1 || ndim > VT_MAXDIM) {
        vt_err("parameter %s: %d dimensions (1 to %d supported)", name, ndim, VT_MAXDIM);
        return -1;
    }
    if (strlen(name) >= sizeof ps->info[0].name) {
        vt_err("parameter name too long: %s", name);
        return -1;
    }
    if (vt_paramset_find(ps, name) >= 0) {
        vt_err("parameter %s declared twice", name);
        return -1;
    }
    if (ps->count == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 64;
        vt_param_info *n = realloc(ps->info, (size_t)cap * sizeof *n);
        if (!n) {
            vt_err("out of memory declaring parameter %s", name);
            return -1;
        }
        ps->info = n;
        ps->cap = cap;
    }
    vt_param_info *p = &ps->info[ps->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    /* keep every tensor 16-float (64-byte) aligned inside the flat buffer */
    p->offset = ps->numel;
    ps->numel += (p->numel + 15) / 16 * 16;
    return ps->count++;
}

int vt_paramset_alloc(vt_paramset *ps)
{
    size_t bytes = (size_t)(ps->numel ? ps->numel : 16) * sizeof(float);
    /* calloc: large buffers come zeroed from the OS without touching every page; aligned by hand */
    ps->data_base = calloc(1, bytes + 64);
    ps->grad_base = calloc(1, bytes + 64);
    ps->vars = calloc((size_t)(ps->count ? ps->count : 1), sizeof *ps->vars);
    if (!ps->data_base || !ps->grad_base || !ps->vars) {
        const long long n = (long long)ps->numel;   /* freeing forgets the count */
        vt_paramset_free(ps);
        return vt_err("out of memory allocating %lld parameters (%.1f GB with their gradients)", n, 8.0 * n / 1e9);
    }
    ps->data = (float *)(((uintptr_t)ps->data_base + 63) & ~(uintptr_t)63);
    ps->grad = (float *)(((uintptr_t)ps->grad_base + 63) & ~(uintptr_t)63);
    for (int i = 0; i < ps->count; i++) {
        vt_param_info *p = &ps->info[i];
        vt_var *v = &ps->vars[i];
        v->val = vt_tensor_view(ps->data + p->offset, p->ndim, p->shape, p->name);
        v->grad = ps->grad + p->offset;
        v->requires_grad = true;
    }
    return VT_OK;
}

void vt_paramset_free(vt_paramset *ps)
{
    free(ps->data_base);
    free(ps->grad_base);
    free(ps->vars);
    free(ps->info);
    memset(ps, 0, sizeof *ps);
}

int vt_paramset_find(const vt_paramset *ps, const char *name)
{
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->info[i].name, name) == 0) return i;
    return -1;
}

void vt_paramset_zero_grad(vt_paramset *ps)
{
    if (ps->grad) memset(ps->grad, 0, (size_t)ps->numel * sizeof(float));
}
