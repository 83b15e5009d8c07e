/* weights_fixtures.c - small models and hand-written safetensors files shared by the weight-file suites
 * (test_safetensors.c, test_finetune.c). */
#include "weights_fixtures.h"
#include <stdio.h>
#include <string.h>

char path[64];

void tiny(vt_vit_config *c)
{
    vt_vit_config_defaults(c);
    c->img_h = c->img_w = 32;
    c->patch = 8;
    c->num_classes = 10;
    c->embed_dim = 48;
    c->depth = 2;
    c->num_heads = 3;
}

/* a (weights drawn from seed: timm's initialisation, or uniform in [-1, 1]) and b, both of config c; r
 * goes on from the draw */
void model_pair(const vt_vit_config *c, vt_vit *a, vt_vit *b, vt_rng *r, uint64_t seed, bool uniform)
{
    ck_assert_int_eq(vt_vit_init(a, c), VT_OK);
    ck_assert_int_eq(vt_vit_init(b, c), VT_OK);
    vt_rng_seed(r, seed);
    if (uniform) tu_fill_uniform(r, a->params.data, a->params.numel, -1, 1);
    else vt_vit_init_weights(a, r);
}

void write_bytes(const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* a safetensors file of m's parameters as F32, except f64 (if not NULL) as F64 with its element 0 set to
 * poke; extra is appended to the header's entries (e.g. a second entry of a name) */
const char *st_skip;   /* when set, write_st leaves out the tensors whose names start with it */

void write_st(const vt_vit *m, const char *f64, double poke, const char *extra)
{
    static char h[1 << 16];
    size_t len = (size_t)snprintf(h, sizeof h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        if (st_skip && strncmp(pi->name, st_skip, strlen(st_skip)) == 0) continue;
        bool d = f64 && strcmp(pi->name, f64) == 0;
        len += (size_t)snprintf(h + len, sizeof h - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", pi->name, d ? "F64" : "F32");
        for (int k = 0; k < pi->ndim; k++) len += (size_t)snprintf(h + len, sizeof h - len, k ? ",%lld" : "%lld", (long long)pi->shape[k]);
        uint64_t end = off + (uint64_t)pi->numel * (d ? 8 : 4);
        len += (size_t)snprintf(h + len, sizeof h - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)end);
        off = end;
    }
    /* the extra entries' data follows the model's: their data_offsets [b, e] are moved to [off, off + e - b]
     * (zeros), so that the file tiles its data as the format requires */
    uint64_t extra_bytes = 0;
    for (const char *x = extra, *d; x && (d = strstr(x, "\"data_offsets\":[")) != NULL;) {
        len += (size_t)snprintf(h + len, sizeof h - len, "%.*s", (int)(d - x), x);
        unsigned long long b, e;
        int used = 0;
        ck_assert_int_eq(sscanf(d, "\"data_offsets\":[%llu,%llu]%n", &b, &e, &used), 2);
        {
            unsigned long long size = e - b;
            b = off + extra_bytes;
            e = b + size;
            extra_bytes += size;
        }
        len += (size_t)snprintf(h + len, sizeof h - len, "\"data_offsets\":[%llu,%llu]", b, e);
        x = d + used;
        extra = x;
    }
    len += (size_t)snprintf(h + len, sizeof h - len, "%s}", extra ? extra : "");
    FILE *f = fopen(path, "wb");
    uint64_t n = len;
    fwrite(&n, 8, 1, f);   /* little-endian host */
    fwrite(h, 1, len, f);
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        if (st_skip && strncmp(pi->name, st_skip, strlen(st_skip)) == 0) continue;
        const float *v = m->params.data + pi->offset;
        if (f64 && strcmp(pi->name, f64) == 0)
            for (int64_t k = 0; k < pi->numel; k++) {
                double x = k ? v[k] : poke;
                fwrite(&x, 8, 1, f);
            }
        else
            fwrite(v, 4, (size_t)pi->numel, f);
    }
    for (uint64_t k = 0; k < extra_bytes; k++) fputc(0, f);
    fclose(f);
}
