/* arena.c - bump allocator for per-step tensors (ggml_init / ggml_reset style). */
#include "tensor.h"
#include <stdlib.h>
#include <string.h>

struct vt_arena_chunk {
    vt_arena_chunk *next;
    size_t cap, used;
    char *mem;
};

#define VT_ALIGN 64

static vt_arena_chunk *chunk_new(size_t cap)
{
    vt_arena_chunk *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = aligned_alloc(VT_ALIGN, (cap + VT_ALIGN - 1) / VT_ALIGN * VT_ALIGN);
    if (!c->mem) { free(c); return NULL; }
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

void vt_arena_init(vt_arena *a, size_t initial_bytes)
{
    memset(a, 0, sizeof *a);
    a->chunk_min = initial_bytes > (1u << 20) ? initial_bytes : (1u << 20);
}

void *vt_arena_alloc(vt_arena *a, size_t bytes)
{
    size_t need = (bytes + VT_ALIGN - 1) / VT_ALIGN * VT_ALIGN;
    if (need == 0) need = VT_ALIGN;
    vt_arena_chunk *c = a->head;
    if (!c || c->used + need > c->cap) {
        size_t cap = a->chunk_min;
        if (c && c->cap * 2 > cap) cap = c->cap * 2;
        if (need > cap) cap = need;
        vt_arena_chunk *n = chunk_new(cap);
        if (!n) {
            vt_err("arena: out of memory allocating %zu bytes", cap);
            return NULL;
        }
        a->nmallocs++;
        n->next = c;
        a->head = c = n;
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->used_total += need;
    if (a->used_total > a->peak) a->peak = a->used_total;
    return p;
}

void *vt_arena_calloc(vt_arena *a, size_t bytes)
{
    void *p = vt_arena_alloc(a, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static void free_chunks(vt_arena_chunk *c)
{
    while (c) {
        vt_arena_chunk *n = c->next;
        free(c->mem);
        free(c);
        c = n;
    }
}

void vt_arena_reset(vt_arena *a)
{
    vt_arena_chunk *c = a->head;
    if (c && c->next) {
        /* the step outgrew one chunk: replace all chunks by one that holds the peak */
        size_t total = 0;
        for (vt_arena_chunk *k = c; k; k = k->next) total += k->cap;
        if (total < a->peak) total = a->peak;
        free_chunks(c);
        a->head = chunk_new(total);
        if (a->head) a->nmallocs++;
    } else if (c) {
        c->used = 0;
    }
    a->used_total = 0;
}

void vt_arena_free(vt_arena *a)
{
    free_chunks(a->head);
    a->head = NULL;
    a->used_total = 0;
}

size_t vt_arena_capacity(const vt_arena *a)
{
    size_t t = 0;
    for (vt_arena_chunk *k = a->head; k; k = k->next) t += k->cap;
    return t;
}

vt_arena_mark vt_arena_get_mark(const vt_arena *a)
{
    vt_arena_mark m = {a->head, a->head ? a->head->used : 0, a->used_total};
    return m;
}

void vt_arena_release(vt_arena *a, vt_arena_mark m)
{
    /* chunks created after the mark are kept (moved behind) only if the mark chunk is gone;
     * normally the step fits one chunk and this is a pointer move */
    while (a->head && a->head != m.chunk) {
        vt_arena_chunk *c = a->head;
        a->head = c->next;
        free(c->mem);
        free(c);
    }
    if (a->head) a->head->used = m.used;
    a->used_total = m.used_total;
}
