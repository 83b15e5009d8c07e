/* test_safetensors.c - timm's safetensors file loads and reproduces timm's logits; export -> import is
 * exact and follows the format; truncated or inconsistent files are refused naming file and tensor. */
#include "testutil.h"
#include "golden/golden.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <zip.h>
#include <hdf5.h>

static void tiny(vt_vit_config *c)
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
static void model_pair(const vt_vit_config *c, vt_vit *a, vt_vit *b, vt_rng *r, uint64_t seed, bool uniform)
{
    ck_assert_int_eq(vt_vit_init(a, c), VT_OK);
    ck_assert_int_eq(vt_vit_init(b, c), VT_OK);
    vt_rng_seed(r, seed);
    if (uniform) tu_fill_uniform(r, a->params.data, a->params.numel, -1, 1);
    else vt_vit_init_weights(a, r);
}

static void golden_with(const char *file)
{
    char weights[4096], ref[4096];
    snprintf(weights, sizeof weights, "%s", tu_golden(file));
    snprintf(ref, sizeof ref, "%s", tu_golden("vit_reference.h5"));
    vt_golden_opts o = {"/vit_tiny_f64", weights, false};
    vt_golden_result r = {0};
    ck_assert_int_eq(vt_golden_check_file(ref, &o, stdout, &r), VT_OK);
    ck_assert_msg(r.cases == 1 && r.failed == 0 && r.errors == 0, "%s: %s", file, vt_errmsg());
}

START_TEST(timm_file_matches_goldens) { golden_with("vit_tiny_timm.safetensors"); }
END_TEST

START_TEST(google_npz_matches_goldens) { golden_with("vit_tiny_google.npz"); }
END_TEST

/* a damaged member (bad CRC) and a missing array are refused naming file and tensor */
/* export -> import through the Google layout is exact, including q/k/v and out kernels */
START_TEST(npz_round_trip)
{
    vt_vit_config c;
    tiny(&c);
    c.img_w = 24;   /* non-square grid */
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 8, true);
    char p[64] = "/tmp/vit_npzrt_XXXXXX";
    close(mkstemp(p));
    char q[80];
    snprintf(q, sizeof q, "%s.npz", p);
    ck_assert_msg(vt_vit_save_npz(&a, q) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_vit_load_npz(&b, q) == VT_OK, "%s", vt_errmsg());
    for (int i = 0; i < a.params.count; i++) {
        const vt_param_info *pi = &a.params.info[i];
        ck_assert_msg(memcmp(a.params.data + pi->offset, b.params.data + pi->offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs after the npz round trip", pi->name);
    }
    /* and timm's own file goes out and back unchanged */
    vt_vit g, h;
    tiny(&c);
    ck_assert_int_eq(vt_vit_init(&g, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&h, &c), VT_OK);
    ck_assert_int_eq(vt_vit_load_npz(&g, tu_golden("vit_tiny_google.npz")), VT_OK);
    ck_assert_int_eq(vt_vit_save_npz(&g, q), VT_OK);
    ck_assert_int_eq(vt_vit_load_npz(&h, q), VT_OK);
    ck_assert_int_eq(memcmp(g.params.data, h.params.data, sizeof(float) * (size_t)g.params.numel), 0);
    remove(q);
    remove(p);
    vt_vit_free(&a);
    vt_vit_free(&b);
    vt_vit_free(&g);
    vt_vit_free(&h);
}
END_TEST

START_TEST(bad_npz_refused)
{
    vt_vit_config c;
    tiny(&c);
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &c), VT_OK);
    FILE *f = fopen(tu_golden("vit_tiny_google.npz"), "rb");
    ck_assert_ptr_nonnull(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char p[64] = "/tmp/vit_npz_XXXXXX";
    close(mkstemp(p));
    /* flip a byte inside the first member's compressed data (after its 30-byte local header + name) */
    size_t off = 30 + (size_t)(buf[26] | buf[27] << 8) + (size_t)(buf[28] | buf[29] << 8) + 10;
    buf[off] ^= 0x5a;
    FILE *o = fopen(p, "wb");
    fwrite(buf, 1, n, o);
    fclose(o);
    ck_assert_int_eq(vt_vit_load_npz(&m, p), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), p) && strstr(vt_errmsg(), "embedding/kernel.npy"), "%s", vt_errmsg());
    /* a first member claiming 4 GiB (local header and central directory agree) is refused before its size
     * sizes a buffer (found by fuzzing: tests/fuzz/regressions/npz/member-claims-4gib) */
    buf[off] ^= 0x5a;
    uint8_t *cd = NULL;   /* the first central directory entry */
    for (size_t k = 0; !cd && k + 4 <= n; k++)
        if (memcmp(buf + k, "PK\x01\x02", 4) == 0) cd = buf + k;
    ck_assert_ptr_nonnull(cd);
    memcpy(buf + 22, "\xf0\xff\xff\xff", 4);
    memcpy(cd + 24, "\xf0\xff\xff\xff", 4);
    o = fopen(p, "wb");
    fwrite(buf, 1, n, o);
    fclose(o);
    ck_assert_int_eq(vt_vit_load_npz(&m, p), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "is damaged (it claims 4294967280 bytes"), "%s", vt_errmsg());
    /* a model with more blocks than the file has */
    c.depth = 3;
    vt_vit m3;
    ck_assert_int_eq(vt_vit_init(&m3, &c), VT_OK);
    ck_assert_int_eq(vt_vit_load_npz(&m3, tu_golden("vit_tiny_google.npz")), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "missing tensor Transformer/encoderblock_2/"), "%s", vt_errmsg());
    /* not a zip at all */
    ck_assert_int_eq(vt_vit_load_npz(&m, tu_golden("vit_reference.h5")), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "not a readable zip") != NULL);
    remove(p);
    vt_vit_free(&m);
    vt_vit_free(&m3);
}
END_TEST

static char path[64];

static void write_bytes(const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

START_TEST(round_trip_and_format)
{
    vt_vit_config c;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 4, false);
    snprintf(path, sizeof path, "/tmp/vit_st_XXXXXX");
    close(mkstemp(path));
    ck_assert_int_eq(vt_vit_save_safetensors(&a, path), VT_OK);
    ck_assert_msg(vt_vit_load_safetensors(&b, path) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
    /* the format: 8-byte little-endian length, JSON header with __metadata__, 8-byte aligned data */
    FILE *f = fopen(path, "rb");
    uint8_t lb[8];
    ck_assert_int_eq(fread(lb, 1, 8, f), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lb[i];
    ck_assert_int_eq(n % 8, 0);
    char *h = calloc(1, n + 1);
    ck_assert_int_eq(fread(h, 1, n, f), n);
    fclose(f);
    ck_assert(h[0] == '{');
    ck_assert(strstr(h, "\"__metadata__\"") != NULL);
    ck_assert(strstr(h, "\"blocks.1.attn.qkv.weight\":{\"dtype\":\"F32\",\"shape\":[144,48],\"data_offsets\":[") != NULL);
    free(h);
    /* truncated header */
    FILE *g = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, g);
    fclose(g);
    write_bytes(buf, 100);
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "header length"), "%s", vt_errmsg());
    /* data cut short: the offsets overrun the file */
    write_bytes(buf, len - 40);
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "head.bias") && strstr(vt_errmsg(), "data_offsets"), "%s", vt_errmsg());
    /* another architecture */
    vt_vit d;
    c.embed_dim = 96;
    ck_assert_int_eq(vt_vit_init(&d, &c), VT_OK);
    write_bytes(buf, len);
    ck_assert_int_eq(vt_vit_load_safetensors(&d, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "cls_token") && strstr(vt_errmsg(), "(1, 1, 48)"), "%s", vt_errmsg());
    /* garbage */
    write_bytes("\x08\0\0\0\0\0\0\0not json", 16);
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "bad safetensors header") != NULL);
    remove(path);
    vt_vit_free(&a);
    vt_vit_free(&b);
    vt_vit_free(&d);
}
END_TEST

/* a safetensors file of m's parameters as F32, except f64 (if not NULL) as F64 with its element 0 set to
 * poke; extra is appended to the header's entries (e.g. a second entry of a name) */
static const char *st_skip;   /* when set, write_st leaves out the tensors whose names start with it */

static void write_st(const vt_vit *m, const char *f64, double poke, const char *extra)
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

/* values must be finite, names unique; only a shape mismatch carries the note about the missing model
 * description */
START_TEST(safetensors_refuses_nan_and_duplicates)
{
    vt_vit_config c;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 5, false);
    snprintf(path, sizeof path, "/tmp/vit_stbad_XXXXXX");
    close(mkstemp(path));
    /* the helper's file is a good one */
    write_st(&a, "head.bias", a.params.data[a.params.info[a.head_b].offset], NULL);
    ck_assert_msg(vt_vit_load_safetensors(&b, path) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
    /* NaN (written by our own exporter, which takes anything) */
    const vt_param_info *qkv = &a.params.info[a.blocks[1].qkv_w];
    a.params.data[qkv->offset + 7] = NAN;
    ck_assert_int_eq(vt_vit_save_safetensors(&a, path), VT_OK);
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "blocks.1.attn.qkv.weight holds nan at element 7") &&
                  !strstr(vt_errmsg(), "model description"), "%s", vt_errmsg());
    a.params.data[qkv->offset + 7] = 0.5f;
    /* an F64 value beyond float32 */
    write_st(&a, "head.bias", 1e300, NULL);
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "head.bias holds 1e+300 (beyond float32's range) at element 0"), "%s", vt_errmsg());
    /* a name twice (the second entry pointing at other data): which one counts is not ours to guess */
    write_st(&a, NULL, 0, ",\"cls_token\":{\"dtype\":\"F32\",\"shape\":[1,1,48],\"data_offsets\":[0,192]}");
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "tensor cls_token appears twice") &&
                  !strstr(vt_errmsg(), "model description"), "%s", vt_errmsg());
    write_st(&a, NULL, 0, ",\"__metadata__\":{}");
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "__metadata__ appears twice"), "%s", vt_errmsg());
    write_st(&a, NULL, 0, ",\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[2],\"data_offsets\":[0,4]}");
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "tensor extra gives \"shape\" twice"), "%s", vt_errmsg());
    /* the shape mismatch says why shapes must match */
    write_st(&a, NULL, 0, NULL);
    vt_vit d;
    c.embed_dim = 96;
    ck_assert_int_eq(vt_vit_init(&d, &c), VT_OK);
    ck_assert_int_eq(vt_vit_load_safetensors(&d, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "cls_token has shape (1, 1, 48)") && strstr(vt_errmsg(), "holds no model description"),
                  "%s", vt_errmsg());
    remove(path);
    vt_vit_free(&a);
    vt_vit_free(&b);
    vt_vit_free(&d);
}
END_TEST

/* path's file rewritten: in its header, the data_offsets of tensor name set to [b, e] (unless name is
 * NULL), text after the header's object (its padding kept before it), data_extra zero bytes after the
 * data */
static void st_rewrite(const char *name, uint64_t b, uint64_t e, const char *after, size_t data_extra)
{
    static uint8_t buf[1 << 20];
    static char h[1 << 16];
    FILE *f = fopen(path, "rb");
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    ck_assert(n < sizeof h / 2 && 8 + n <= len);
    size_t hl = 0;
    static char old[1 << 15];
    memcpy(old, buf + 8, n);
    old[n] = '\0';
    const char *src = old, *src_end = src + n;
    if (name) {
        char key[128];
        snprintf(key, sizeof key, "\"%s\":{", name);
        const char *at = strstr(src, key);
        ck_assert(at != NULL);
        const char *d = strstr(at, "\"data_offsets\":[");
        ck_assert(d != NULL);
        const char *close = strchr(d, ']');
        hl += (size_t)snprintf(h + hl, sizeof h - hl, "%.*s\"data_offsets\":[%llu,%llu]", (int)(d - src), src,
                               (unsigned long long)b, (unsigned long long)e);
        src = close + 1;
    }
    memcpy(h + hl, src, (size_t)(src_end - src));
    hl += (size_t)(src_end - src);
    if (after) hl += (size_t)snprintf(h + hl, sizeof h - hl, "%s", after);
    f = fopen(path, "wb");
    uint64_t nn = hl;
    fwrite(&nn, 8, 1, f);   /* little-endian host */
    fwrite(h, 1, hl, f);
    fwrite(buf + 8 + n, 1, len - 8 - n, f);
    for (size_t k = 0; k < data_extra; k++) fputc(0, f);
    fclose(f);
}

/* the format: data_offsets tile the data region exactly and nothing but spaces follows the header's JSON
 * object; each violation refused naming the tensor, by the loader and by --init's model reader (an
 * overlap loaded before: head.weight pointing into blocks.0.attn.qkv.weight's bytes changed the loss) */
START_TEST(safetensors_offsets_tile_the_data)
{
    vt_vit_config c, fc;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 6, false);
    snprintf(path, sizeof path, "/tmp/vit_sttile_XXXXXX");
    close(mkstemp(path));
    const vt_param_info *qkv = &a.params.info[a.blocks[0].qkv_w], *hw = &a.params.info[a.head_w],
                        *hb = &a.params.info[a.head_b];
    /* our writer's order: offsets by parameter order */
    uint64_t qkv_b = 0, hb_b = 0;
    for (int i = 0; i < a.params.count; i++) {
        if (i == a.blocks[0].qkv_w) qkv_b = hb_b;
        if (i < a.head_b) hb_b += (uint64_t)a.params.info[i].numel * 4;
    }
    uint64_t hw_n = (uint64_t)hw->numel * 4, hb_n = (uint64_t)hb->numel * 4;
    ck_assert_uint_ge((uint64_t)qkv->numel * 4, hw_n);
    static const struct { int kind; const char *want[3]; } cases[] = {
        {0, {"tensor blocks.0.attn.qkv.weight's data_offsets", "overlap tensor head.weight's", NULL}},
        {1, {"4 data bytes before tensor head.bias", "belong to no tensor", NULL}},
        {2, {"8 bytes after the last tensor head.bias", "belong to no tensor", NULL}},
        {3, {"bad safetensors header: 'x' after the header's JSON object", NULL}},
        {4, {"bad safetensors header: '{}' after the header's JSON object", NULL}},
        {5, {"tensor head.bias: data_offsets", "not a range", NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ck_assert_int_eq(vt_vit_save_safetensors(&a, path), VT_OK);
        switch (cases[k].kind) {
        case 0: st_rewrite("head.weight", qkv_b, qkv_b + hw_n, NULL, 0); break;   /* its own bytes left over */
        case 1: st_rewrite("head.bias", hb_b + 4, hb_b + 4 + hb_n, NULL, 4); break;
        case 2: st_rewrite(NULL, 0, 0, NULL, 8); break;
        case 3: st_rewrite(NULL, 0, 0, "x", 0); break;
        case 4: st_rewrite(NULL, 0, 0, " {}", 0); break;
        default: st_rewrite("head.bias", hb_b + 8, hb_b, NULL, 0); break;
        }
        for (int way = 0; way < 2; way++) {
            fc = c;
            ck_assert_int_eq(way ? vt_vit_config_from_safetensors(path, &fc) : vt_vit_load_safetensors(&b, path), VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), path), "%s", vt_errmsg());
            for (int w = 0; w < 3 && cases[k].want[w]; w++)
                ck_assert_msg(strstr(vt_errmsg(), cases[k].want[w]), "case %zu: '%s' not in: %s", k, cases[k].want[w],
                              vt_errmsg());
        }
    }
    /* what the format allows: spaces after the object, tensors' data in another order than the header's */
    ck_assert_int_eq(vt_vit_save_safetensors(&a, path), VT_OK);
    st_rewrite(NULL, 0, 0, "  \n\t ", 0);
    ck_assert_msg(vt_vit_load_safetensors(&b, path) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
    uint64_t hw_b = hb_b - hw_n;   /* head.bias's bytes first, then head.weight's */
    st_rewrite("head.bias", hw_b, hw_b + hb_n, NULL, 0);
    st_rewrite("head.weight", hw_b + hb_n, hb_b + hb_n, NULL, 0);
    ck_assert_msg(vt_vit_load_safetensors(&b, path) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_vit_config_from_safetensors(path, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert(memcmp(b.params.data + hb->offset, a.params.data + hw->offset, (size_t)hb_n) == 0);
    remove(path);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

/* as timm's strict load_state_dict: a tensor the model does not have is refused, naming the first few and
 * what they are when recognisable (LayerScale, register tokens, q/k norm; fc_norm beside norm, which no
 * ViT has); a file without a class token says so instead of miscounting its patch tokens */
START_TEST(safetensors_refuses_unexpected_tensors)
{
    vt_vit_config c, fc;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 9, false);
    snprintf(path, sizeof path, "/tmp/vit_stextra_XXXXXX");
    close(mkstemp(path));
#define E(name) ",\"" name "\":{\"dtype\":\"F32\",\"shape\":[48],\"data_offsets\":[0,192]}"
    static const struct { const char *extra, *want[4]; } cases[] = {
        {E("blocks.0.ls1.gamma"), {"unexpected tensor blocks.0.ls1.gamma", "LayerScale", "strict", NULL}},
        {E("fc_norm.weight") E("fc_norm.bias"),
         {"unexpected tensors fc_norm.weight, fc_norm.bias (not parameters of", "both norm.* and fc_norm.*", NULL}},
        {E("reg_token"), {"unexpected tensor reg_token", "register tokens", NULL}},
        {E("blocks.1.attn.q_norm.weight") E("blocks.1.attn.k_norm.weight"),
         {"blocks.1.attn.q_norm.weight, blocks.1.attn.k_norm.weight", "q/k norm", NULL}},
        {E("foo.bar"), {"unexpected tensor foo.bar (not parameters of a plain ViT", NULL}},
        {E("blocks.0.ls1.gamma") E("blocks.0.ls2.gamma") E("fc_norm.weight") E("reg_token") E("foo.bar")
         E("blocks.0.attn.q_norm.weight"),
         {"blocks.0.ls1.gamma, blocks.0.ls2.gamma, fc_norm.weight, reg_token and 2 more",
          "not supported: LayerScale (blocks.*.ls1/ls2.gamma), register tokens (reg_token), q/k norm",
          "both norm.* and fc_norm.*"}},
    };
#undef E
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_st(&a, NULL, 0, cases[k].extra);
        for (int way = 0; way < 2; way++) {
            fc = c;
            ck_assert_int_eq(way ? vt_vit_config_from_safetensors(path, &fc) : vt_vit_load_safetensors(&b, path), VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), path), "%s", vt_errmsg());
            for (int w = 0; w < 4 && cases[k].want[w]; w++)
                ck_assert_msg(strstr(vt_errmsg(), cases[k].want[w]), "'%s' not in: %s", cases[k].want[w], vt_errmsg());
            ck_assert_msg(!strstr(vt_errmsg(), "cls_token"), "%s", vt_errmsg());
        }
    }
    /* a block the model does not have */
    write_st(&a, NULL, 0, ",\"blocks.2.norm1.weight\":{\"dtype\":\"F32\",\"shape\":[48],\"data_offsets\":[0,192]}");
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "unexpected tensor blocks.2.norm1.weight"), "%s", vt_errmsg());
    /* no class token: said as such, by both */
    st_skip = "cls_token";
    write_st(&a, NULL, 0, NULL);
    st_skip = NULL;
    fc = c;
    ck_assert_int_eq(vt_vit_config_from_safetensors(path, &fc), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) &&
                  strstr(vt_errmsg(), "no cls_token: models without a class token are not supported") &&
                  !strstr(vt_errmsg(), "patch tokens"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_vit_load_safetensors(&b, path), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "no cls_token: models without a class token are not supported"), "%s", vt_errmsg());
    /* the plain file still loads, by both */
    write_st(&a, NULL, 0, NULL);
    fc = c;
    ck_assert_msg(vt_vit_config_from_safetensors(path, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_vit_load_safetensors(&b, path) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
    remove(path);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

/* replace (or add) member name.npy of the zip at p with an f4 array of the given shape */
static void put_npy(const char *p, const char *name, const float *data, int ndim, const int64_t *shape)
{
    char dict[256], sh[128] = "";
    size_t o = 0;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%lld,", (long long)shape[i]);
        numel *= shape[i];
    }
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", sh);
    size_t hl = (size_t)dl + 1;
    hl += (64 - (10 + hl) % 64) % 64;
    size_t n = 10 + hl + 4 * (size_t)numel;
    uint8_t *buf = malloc(n);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hl & 255);
    buf[9] = (uint8_t)(hl >> 8);
    memset(buf + 10, ' ', hl);
    memcpy(buf + 10, dict, (size_t)dl);
    buf[10 + hl - 1] = '\n';
    memcpy(buf + 10 + hl, data, 4 * (size_t)numel);
    int err = 0;
    zip_t *z = zip_open(p, 0, &err);
    ck_assert_ptr_nonnull(z);
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_source_t *src = zip_source_buffer(z, buf, n, 1);
    ck_assert(zip_file_add(z, member, src, ZIP_FL_OVERWRITE) >= 0);
    ck_assert_int_eq(zip_close(z), 0);
}

/* npz arrays must have their Flax layout (or the heads-merged one timm also takes), not merely as many
 * values; and finite values */
START_TEST(npz_checks_layouts_and_values)
{
    vt_vit_config c;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 6, true);
    char p[64] = "/tmp/vit_npzbad_XXXXXX", q[80];
    close(mkstemp(p));
    snprintf(q, sizeof q, "%s.npz", p);
    const int64_t D = 48, Hd = 192, NH = 3;
    const vt_param_info *fc1 = &a.params.info[a.blocks[0].fc1_w];
    const char *dense0 = "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel";
    float *kern = malloc(sizeof(float) * (size_t)(D * Hd));
    for (int64_t i = 0; i < D; i++)   /* Flax (in, out) of timm's (out, in) */
        for (int64_t o = 0; o < Hd; o++) kern[i * Hd + o] = a.params.data[fc1->offset + o * D + i];
    /* the same values as one flat vector: refused (it used to load, by count) */
    ck_assert_int_eq(vt_vit_save_npz(&a, q), VT_OK);
    put_npy(q, dense0, kern, 1, (int64_t[]){D * Hd});
    ck_assert_int_eq(vt_vit_load_npz(&b, q), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), q) && strstr(vt_errmsg(), "Dense_0/kernel has shape (9216), the model needs (48, 192)") &&
                  strstr(vt_errmsg(), "holds no model description"), "%s", vt_errmsg());
    /* transposed (out, in): refused */
    put_npy(q, dense0, kern, 2, (int64_t[]){Hd, D});
    ck_assert_int_eq(vt_vit_load_npz(&b, q), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "has shape (192, 48), the model needs (48, 192)"), "%s", vt_errmsg());
    /* what timm's loader also takes: heads merged, leading 1s dropped or added; loads the same values */
    put_npy(q, dense0, kern, 4, (int64_t[]){1, 1, D, Hd});
    const vt_param_info *qkvb = &a.params.info[a.blocks[1].qkv_b], *cls = &a.params.info[a.cls_token];
    put_npy(q, "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/key/bias", a.params.data + qkvb->offset + D, 1,
            (int64_t[]){D});
    put_npy(q, "cls", a.params.data + cls->offset, 1, (int64_t[]){D});
    float *k2 = malloc(sizeof(float) * (size_t)(D * D));
    const vt_param_info *qkvw = &a.params.info[a.blocks[1].qkv_w];
    for (int64_t i = 0; i < D; i++)
        for (int64_t o = 0; o < D; o++) k2[i * D + o] = a.params.data[qkvw->offset + (2 * D + o) * D + i];
    put_npy(q, "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/value/kernel", k2, 2, (int64_t[]){D, D});
    ck_assert_msg(vt_vit_load_npz(&b, q) == VT_OK, "%s", vt_errmsg());
    for (int i = 0; i < a.params.count; i++) {
        const vt_param_info *pi = &a.params.info[i];
        ck_assert_msg(memcmp(a.params.data + pi->offset, b.params.data + pi->offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs", pi->name);
    }
    /* heads of another split (same D): refused */
    put_npy(q, "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/value/kernel", k2, 3, (int64_t[]){D, 4, 12});
    ck_assert_int_eq(vt_vit_load_npz(&b, q), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "value/kernel has shape (48, 4, 12), the model needs (48, 3, 16) or (48, 48)"), "%s",
                  vt_errmsg());
    (void)NH;
    /* a NaN: refused naming the member, without the shape note */
    a.params.data[a.params.info[a.norm_w].offset + 3] = NAN;
    ck_assert_int_eq(vt_vit_save_npz(&a, q), VT_OK);
    ck_assert_int_eq(vt_vit_load_npz(&b, q), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), q) && strstr(vt_errmsg(), "encoder_norm/scale.npy holds nan at element 3") &&
                  !strstr(vt_errmsg(), "model description"), "%s", vt_errmsg());
    free(kern);
    free(k2);
    remove(q);
    remove(p);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

/* remove member name.npy from the zip at p */
static void del_npy(const char *p, const char *name)
{
    int err = 0;
    zip_t *z = zip_open(p, 0, &err);
    ck_assert_ptr_nonnull(z);
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_int64_t i = zip_name_locate(z, member, 0);
    ck_assert(i >= 0);
    ck_assert_int_eq(zip_delete(z, (zip_uint64_t)i), 0);
    ck_assert_int_eq(zip_close(z), 0);
}

/* npz members the loaders do not read are refused, naming them, except the representation layer
 * (pre_logits) of the original ImageNet-21k releases, accepted and listed by vt_vit_npz_ignored for the
 * caller to report; a file without cls.npy says so */
START_TEST(npz_refuses_unexpected_members)
{
    vt_vit_config c, fc;
    tiny(&c);
    vt_vit a, b;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 10, true);
    char p[64] = "/tmp/vit_npzextra_XXXXXX", q[80], ign[256];
    close(mkstemp(p));
    snprintf(q, sizeof q, "%s.npz", p);
    ck_assert_int_eq(vt_vit_save_npz(&a, q), VT_OK);
    ck_assert_int_eq(vt_vit_npz_ignored(q, ign, sizeof ign), VT_OK);
    ck_assert_str_eq(ign, "");
    /* pre_logits: accepted, the weights as without it, and listed as ignored */
    static float zeros[48 * 48];
    put_npy(q, "pre_logits/kernel", zeros, 2, (int64_t[]){48, 48});
    put_npy(q, "pre_logits/bias", zeros, 1, (int64_t[]){48});
    ck_assert_msg(vt_vit_load_npz(&b, q) == VT_OK, "%s", vt_errmsg());
    for (int i = 0; i < a.params.count; i++) {
        const vt_param_info *pi = &a.params.info[i];
        ck_assert_msg(memcmp(a.params.data + pi->offset, b.params.data + pi->offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs", pi->name);
    }
    fc = c;
    ck_assert_msg(vt_vit_config_from_npz(q, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(vt_vit_npz_ignored(q, ign, sizeof ign), VT_OK);
    ck_assert_msg(strstr(ign, "pre_logits/kernel") && strstr(ign, "pre_logits/bias") && !strstr(ign, ".npy"), "%s", ign);
    /* anything else: refused by both, naming it */
    put_npy(q, "foo", zeros, 1, (int64_t[]){48});
    put_npy(q, "MAPHead_0/probe", zeros, 3, (int64_t[]){1, 1, 48});
    for (int way = 0; way < 2; way++) {
        fc = c;
        ck_assert_int_eq(way ? vt_vit_config_from_npz(q, &fc) : vt_vit_load_npz(&b, q), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), q) && strstr(vt_errmsg(), "unexpected members") &&
                      strstr(vt_errmsg(), "foo.npy") && strstr(vt_errmsg(), "MAPHead_0/probe.npy") &&
                      strstr(vt_errmsg(), "attention pooling") && !strstr(vt_errmsg(), "pre_logits"),
                      "%s", vt_errmsg());
    }
    ck_assert_int_eq(vt_vit_save_npz(&a, q), VT_OK);
    /* a block beyond the model's depth, for the loader */
    put_npy(q, "Transformer/encoderblock_2/LayerNorm_0/scale", zeros, 1, (int64_t[]){48});
    ck_assert_int_eq(vt_vit_load_npz(&b, q), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "unexpected member Transformer/encoderblock_2/LayerNorm_0/scale.npy"), "%s",
                  vt_errmsg());
    /* no class token */
    ck_assert_int_eq(vt_vit_save_npz(&a, q), VT_OK);
    del_npy(q, "cls");
    for (int way = 0; way < 2; way++) {
        fc = c;
        ck_assert_int_eq(way ? vt_vit_config_from_npz(q, &fc) : vt_vit_load_npz(&b, q), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), "no cls.npy") && strstr(vt_errmsg(), "without a class token are not supported") &&
                      !strstr(vt_errmsg(), "patch tokens"), "%s", vt_errmsg());
    }
    remove(q);
    remove(p);
    vt_vit_free(&a);
    vt_vit_free(&b);
}
END_TEST

/* ---- vit-train --init from these files: the model is read from their shapes, then adapted as for an
 * HDF5 checkpoint (new head, resized pos_embed); architecture differences are refused */


static void small(vt_vit_config *c, int img_h, int img_w, int classes, int depth)
{
    vt_vit_config_defaults(c);
    c->img_h = img_h;
    c->img_w = img_w;
    c->patch = 4;
    c->num_classes = classes;
    c->embed_dim = 16;
    c->depth = depth;
    c->num_heads = 2;
}

static void random_model(vt_vit *m, const vt_vit_config *c, uint64_t seed)
{
    ck_assert_msg(vt_vit_init(m, c) == VT_OK, "%s", vt_errmsg());
    vt_rng r;
    vt_rng_seed(&r, seed);
    tu_fill_uniform(&r, m->params.data, m->params.numel, -1, 1);
}

/* vt_finetune_init(m, file) with [finetune] head_init = zeros, pos_interp = bicubic; what it prints in log */
static int finetune(vt_vit *m, const char *file, char *log, size_t n)
{
    vt_config cfg;
    vt_config_defaults(&cfg);
    ck_assert_int_eq(vt_config_set(&cfg, "finetune.head_init=zeros"), VT_OK);
    ck_assert_int_eq(vt_config_set(&cfg, "finetune.pos_interp=bicubic"), VT_OK);
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    int r = vt_finetune_init(m, file, &cfg, out);
    rewind(out);
    size_t got = fread(log, 1, n - 1, out);
    log[got] = '\0';
    fclose(out);
    return r;
}

static void save_as(const vt_vit *m, const char *file)
{
    size_t l = strlen(file);
    int r = l > 4 && strcmp(file + l - 4, ".npz") == 0 ? vt_vit_save_npz(m, file) : vt_vit_save_safetensors(m, file);
    ck_assert_msg(r == VT_OK, "%s", vt_errmsg());
}

/* t's tensors are a's, but for pos_embed (a's resampled to t's grid, class token kept) and a new head
 * (zeros) when the class counts differ */
static void check_transfer(const vt_vit *a, const vt_vit *t, const char *file)
{
    for (int i = 0; i < t->params.count; i++) {
        const vt_param_info *pi = &t->params.info[i];
        const float *v = t->params.data + pi->offset;
        int j = vt_paramset_find(&a->params, pi->name);
        ck_assert_int_ge(j, 0);
        const vt_param_info *si = &a->params.info[j];
        const float *sv = a->params.data + si->offset;
        if (strncmp(pi->name, "head.", 5) == 0 && a->cfg.num_classes != t->cfg.num_classes) {
            for (int64_t k = 0; k < pi->numel; k++) ck_assert_msg(v[k] == 0.0f, "%s: %s[%lld] = %g", file, pi->name, (long long)k, v[k]);
        } else if (strcmp(pi->name, "pos_embed") == 0 && (a->grid_h != t->grid_h || a->grid_w != t->grid_w)) {
            float *want = malloc(sizeof(float) * (size_t)pi->numel);
            ck_assert_int_eq(vt_pos_resample(want, sv, t->cfg.embed_dim, 1, a->grid_h, a->grid_w, t->grid_h, t->grid_w,
                                             VT_INTERP_BICUBIC, false), VT_OK);
            ck_assert_msg(memcmp(want, v, sizeof(float) * (size_t)pi->numel) == 0, "%s: pos_embed is not the resampled one", file);
            ck_assert(memcmp(want, sv, sizeof(float) * (size_t)t->cfg.embed_dim) == 0);   /* class token kept */
            free(want);
        } else {
            ck_assert_int_eq(si->numel, pi->numel);
            ck_assert_msg(memcmp(sv, v, sizeof(float) * (size_t)pi->numel) == 0, "%s: %s differs from the source", file,
                          pi->name);
        }
    }
}

static const char *const formats[] = {".safetensors", ".npz"};

/* 8x8 images (grid 2x2), 4 classes -> 12x12 (grid 3x3), 6 classes, as timm's pretrained loading does */
START_TEST(finetune_adapts_head_and_grid)
{
    for (int f = 0; f < 2; f++) {
        char base[64] = "/tmp/vit_ft_XXXXXX", file[96], log[4096];
        close(mkstemp(base));
        snprintf(file, sizeof file, "%s%s", base, formats[f]);
        vt_vit_config c;
        vt_vit a, t;
        small(&c, 8, 8, 4, 2);
        random_model(&a, &c, 11);
        save_as(&a, file);
        small(&c, 12, 12, 6, 2);
        random_model(&t, &c, 12);
        ck_assert_msg(finetune(&t, file, log, sizeof log) == VT_OK, "%s", vt_errmsg());
        check_transfer(&a, &t, file);
        ck_assert_msg(strstr(log, "pos_embed: 2x2 -> 3x3") && strstr(log, "head: 4 -> 6 classes") &&
                      strstr(log, "initialised from") && strstr(log, file), "%s", log);
        vt_vit_free(&t);
        /* a non-square grid that is the config's: taken as it (2x3 -> 2x3), only the head is new */
        vt_vit_free(&a);
        small(&c, 8, 12, 4, 2);
        random_model(&a, &c, 13);
        save_as(&a, file);
        small(&c, 8, 12, 6, 2);
        random_model(&t, &c, 14);
        ck_assert_msg(finetune(&t, file, log, sizeof log) == VT_OK, "%s", vt_errmsg());
        check_transfer(&a, &t, file);
        ck_assert_msg(!strstr(log, "pos_embed:") && strstr(log, "head: 4 -> 6 classes"), "%s", log);
        vt_vit_free(&t);
        /* the same file into a 3x3 grid: 6 patch tokens are neither the config's 9 nor a square */
        small(&c, 12, 12, 6, 2);
        random_model(&t, &c, 14);
        ck_assert_int_eq(finetune(&t, file, log, sizeof log), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), file) && strstr(vt_errmsg(), "pos_embed") &&
                      strstr(vt_errmsg(), "has 6 patch tokens") && strstr(vt_errmsg(), "not a square"), "%s", vt_errmsg());
        vt_vit_free(&t);
        vt_vit_free(&a);
        remove(file);
        remove(base);
    }
}
END_TEST

/* an HDF5 checkpoint knows its grid: 2x8 into 4x4 (the same 16 tokens) is resampled, not copied */
START_TEST(finetune_same_count_other_grid)
{
    vt_vit_config c;
    vt_vit a, t;
    small(&c, 8, 32, 4, 2);   /* patch 4: grid 2x8 */
    random_model(&a, &c, 31);
    char d[64] = "/tmp/vit_grid_XXXXXX", ck[128], log[4096];
    ck_assert_ptr_nonnull(mkdtemp(d));
    vt_train_state st = {.step = 7, .best_metric = -1};
    ck_assert_msg(vt_ckpt_write(d, &a, NULL, &st, "", 0, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
    small(&c, 16, 16, 4, 2);   /* grid 4x4 */
    random_model(&t, &c, 32);
    ck_assert_msg(finetune(&t, ck, log, sizeof log) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(strstr(log, "pos_embed: 2x8 -> 4x4 (bicubic)"), "%s", log);
    check_transfer(&a, &t, ck);
    vt_vit_free(&t);
    vt_vit_free(&a);
    remove(ck);
    rmdir(d);
}
END_TEST

/* a checkpoint's model attributes (one table writes and reads them): every field round trips; a file
 * written before fc_norm existed (no such attribute) reads as fc_norm = false; a pooling name or an
 * fc_norm value outside the table is refused naming the attribute */
START_TEST(ckpt_model_attributes)
{
    vt_vit_config c, r;
    vt_vit a;
    small(&c, 8, 16, 5, 2);
    c.pool = VT_POOL_MEAN;
    c.fc_norm = true;
    c.gelu = VT_GELU_TANH;
    c.ln_eps = 1e-5f;
    c.mlp_ratio = 2.5;
    random_model(&a, &c, 41);
    char d[64] = "/tmp/vit_attrs_XXXXXX", ck[128];
    ck_assert_ptr_nonnull(mkdtemp(d));
    vt_train_state st = {.step = 3, .best_metric = -1};
    ck_assert_msg(vt_ckpt_write(d, &a, NULL, &st, "", 0, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_ckpt_model_config(ck, &r) == VT_OK, "%s", vt_errmsg());
    ck_assert(r.img_h == 8 && r.img_w == 16 && r.patch == 4 && r.in_chans == 3 && r.num_classes == 5);
    ck_assert(r.embed_dim == 16 && r.depth == 2 && r.num_heads == 2 && r.mlp_ratio == 2.5 && r.ln_eps == 1e-5f);
    ck_assert(r.pool == VT_POOL_MEAN && r.fc_norm && r.gelu == VT_GELU_TANH);
    /* as a file from before fc_norm: the attribute gone (and a plain model, norm.* not fc_norm.*) */
    hid_t f = H5Fopen(ck, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_ge(H5Adelete_by_name(f, "/model", "fc_norm", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Fclose(f), 0);
    ck_assert_msg(vt_ckpt_model_config(ck, &r) == VT_OK, "%s", vt_errmsg());
    ck_assert(!r.fc_norm && r.pool == VT_POOL_MEAN);
    const struct { const char *name, *value, *msg; } bad[] = {
        {"fc_norm", NULL, "/model attribute fc_norm = 2, expected 0 or 1"},
        {"pool", "max", "/model attribute pool: pooling 'max' unknown (expected token|avg)"},
        {"gelu", "relu", "/model attribute gelu: GELU 'relu' unknown (expected erf|tanh)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vt_h5id h = vt_h5_open(ck, true);
        ck_assert_msg(h >= 0, "%s", vt_errmsg());
        if (H5Aexists_by_name((hid_t)h, "/model", bad[i].name, H5P_DEFAULT) > 0)
            ck_assert_int_ge(H5Adelete_by_name((hid_t)h, "/model", bad[i].name, H5P_DEFAULT), 0);
        int w = bad[i].value ? vt_h5_write_attr_str(h, "/model", bad[i].name, bad[i].value)
                             : vt_h5_write_attr_i64(h, "/model", bad[i].name, 2);
        ck_assert_msg(w == VT_OK, "%s", vt_errmsg());
        ck_assert_int_eq(vt_h5_close(h), VT_OK);
        ck_assert_int_eq(vt_ckpt_model_config(ck, &r), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), bad[i].msg) && strstr(vt_errmsg(), ck), "%s", vt_errmsg());
        h = vt_h5_open(ck, true);   /* the good value back for the next one */
        ck_assert_int_ge(H5Adelete_by_name((hid_t)h, "/model", bad[i].name, H5P_DEFAULT), 0);
        w = !bad[i].value ? vt_h5_write_attr_i64(h, "/model", "fc_norm", 0)
            : vt_h5_write_attr_str(h, "/model", bad[i].name, i == 1 ? "avg" : "tanh");
        ck_assert_int_eq(w, VT_OK);
        ck_assert_int_eq(vt_h5_close(h), VT_OK);
    }
    ck_assert_msg(vt_ckpt_model_config(ck, &r) == VT_OK, "%s", vt_errmsg());
    vt_vit_free(&a);
    remove(ck);
    rmdir(d);
}
END_TEST

/* a backbone without head.* (timm's DINO/MAE weights, a reset_classifier(0) export): everything else is
 * taken, the head made new as for another class count; the exact loader still refuses it */
START_TEST(finetune_takes_a_backbone)
{
    vt_vit_config c;
    vt_vit a, t;
    small(&c, 8, 8, 4, 2);
    random_model(&a, &c, 21);
    snprintf(path, sizeof path, "/tmp/vit_bb_XXXXXX");
    close(mkstemp(path));
    st_skip = "head.";
    write_st(&a, NULL, 0, NULL);
    st_skip = NULL;
    char file[96], log[4096];
    snprintf(file, sizeof file, "%s.safetensors", path);
    ck_assert_int_eq(rename(path, file), 0);
    small(&c, 8, 8, 4, 2);   /* the same class count: still a new head, the file has none */
    random_model(&t, &c, 22);
    ck_assert_int_eq(vt_vit_load_safetensors(&t, file), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "no tensor head.weight"), "%s", vt_errmsg());
    ck_assert_msg(finetune(&t, file, log, sizeof log) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(strstr(log, "head: none in the file, 4 classes (initialised: zeros)"), "%s", log);
    for (int i = 0; i < t.params.count; i++) {
        const vt_param_info *pi = &t.params.info[i];
        const float *v = t.params.data + pi->offset, *sv = a.params.data + a.params.info[i].offset;
        for (int64_t k = 0; k < pi->numel; k++)
            ck_assert_msg(strncmp(pi->name, "head.", 5) == 0 ? v[k] == 0.0f : v[k] == sv[k], "%s[%lld]", pi->name,
                          (long long)k);
    }
    vt_vit_free(&t);
    vt_vit_free(&a);
    remove(file);
}
END_TEST

/* the same architecture is required (as for an HDF5 checkpoint), naming the [model] key; identical
 * shapes load exactly */
START_TEST(finetune_refuses_other_architectures)
{
    for (int f = 0; f < 2; f++) {
        char base[64] = "/tmp/vit_fta_XXXXXX", file[96], log[4096];
        close(mkstemp(base));
        snprintf(file, sizeof file, "%s%s", base, formats[f]);
        vt_vit_config c;
        vt_vit a, t;
        small(&c, 8, 8, 4, 2);
        random_model(&a, &c, 21);
        save_as(&a, file);
        const struct { const char *what; int depth, dim, heads; double mlp; } bad[] = {
            {"[model] depth = 2, the config 3", 3, 16, 2, 4},
            {"[model] embed_dim = 16, the config 24", 2, 24, 2, 4},
            {"[model] mlp_ratio = 4, the config 2", 2, 16, 2, 2},
            {"[model] num_heads = 2, the config 4", 2, 16, 4, 4},   /* npz only: Flax keeps the heads axis */
        };
        for (int k = 0; k < (f ? 4 : 3); k++) {
            small(&c, 12, 12, 6, bad[k].depth);
            c.embed_dim = bad[k].dim;
            c.num_heads = bad[k].heads;
            c.mlp_ratio = bad[k].mlp;
            random_model(&t, &c, 22);
            ck_assert_int_eq(finetune(&t, file, log, sizeof log), VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), file) && strstr(vt_errmsg(), bad[k].what), "%s: %s", bad[k].what, vt_errmsg());
            vt_vit_free(&t);
        }
        /* identical shapes: every tensor as in the file, nothing adapted */
        small(&c, 8, 8, 4, 2);
        random_model(&t, &c, 23);
        ck_assert_msg(finetune(&t, file, log, sizeof log) == VT_OK, "%s", vt_errmsg());
        check_transfer(&a, &t, file);   /* same grid and classes: every tensor bitwise */
        ck_assert_msg(!strstr(log, "pos_embed:") && !strstr(log, "head:") && strstr(log, "initialised from"), "%s", log);
        vt_vit_free(&t);
        vt_vit_free(&a);
        remove(file);
        remove(base);
    }
}
END_TEST

/* [model] fc_norm: fc_norm.weight/bias in place of norm.*, exported and imported exactly; the model read
 * from a file's shapes has fc_norm = true when the file has fc_norm.* (and no norm.*), false otherwise; a
 * file of the other kind is refused naming the setting it needs; --init checks it as an architecture key;
 * Google's .npz layout has no fc_norm */
START_TEST(fc_norm_round_trip_and_inference)
{
    vt_vit_config c, pc, fc;
    tiny(&c);
    c.pool = VT_POOL_MEAN;
    c.img_w = 24;
    pc = c;
    c.fc_norm = true;
    vt_vit a, b, p, q;
    vt_rng r;
    model_pair(&c, &a, &b, &r, 12, false);
    model_pair(&pc, &p, &q, &r, 13, false);
    tu_fill_uniform(&r, a.params.data + a.params.info[a.fc_norm_w].offset, 48, 0.5f, 1.5f);
    tu_fill_uniform(&r, a.params.data + a.params.info[a.fc_norm_b].offset, 48, -0.5f, 0.5f);
    char base[64] = "/tmp/vit_stfc_XXXXXX", fcf[96], plainf[96], npz[96];
    close(mkstemp(base));
    snprintf(fcf, sizeof fcf, "%s.fc.safetensors", base);
    snprintf(plainf, sizeof plainf, "%s.plain.safetensors", base);
    snprintf(npz, sizeof npz, "%s.npz", base);
    ck_assert_msg(vt_vit_save_safetensors(&a, fcf) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_vit_save_safetensors(&p, plainf) == VT_OK, "%s", vt_errmsg());
    /* the header names fc_norm.*, not norm.* */
    FILE *f = fopen(fcf, "rb");
    static char h[1 << 16];
    size_t got = fread(h, 1, sizeof h - 1, f);
    fclose(f);
    h[got] = '\0';
    ck_assert(strstr(h + 8, "\"fc_norm.weight\":{\"dtype\":\"F32\",\"shape\":[48]") != NULL);
    ck_assert(strstr(h + 8, "\"fc_norm.bias\"") != NULL);
    ck_assert(strstr(h + 8, "\"norm.weight\"") == NULL && strstr(h + 8, "\"norm.bias\"") == NULL);
    /* back exactly */
    ck_assert_msg(vt_vit_load_safetensors(&b, fcf) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(memcmp(a.params.data, b.params.data, sizeof(float) * (size_t)a.params.numel), 0);
    /* the model the shapes tell, from a config without fc_norm, and back to false from one with it */
    tiny(&fc);
    fc.pool = VT_POOL_MEAN;
    fc.img_w = 24;   /* the grid 4x3 is not square: the config's */
    ck_assert_msg(vt_vit_config_from_safetensors(fcf, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert(fc.fc_norm);
    ck_assert(fc.embed_dim == 48 && fc.depth == 2 && fc.img_w == 24 && fc.num_classes == 10);
    ck_assert_int_eq(vt_vit_config_check(&fc), VT_OK);
    ck_assert_int_eq(vt_ckpt_check_arch(fcf, &fc, &c, true), VT_OK);
    fc.fc_norm = true;
    ck_assert_msg(vt_vit_config_from_safetensors(plainf, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert(!fc.fc_norm);
    /* the other kind of model: refused naming what to set */
    ck_assert_int_eq(vt_vit_load_safetensors(&q, fcf), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), fcf) && strstr(vt_errmsg(), "unexpected tensors fc_norm.weight, fc_norm.bias") &&
                  strstr(vt_errmsg(), "set [model] fc_norm = true"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_vit_load_safetensors(&b, plainf), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "unexpected tensors norm.weight, norm.bias (not parameters of this model") &&
                  strstr(vt_errmsg(), "set [model] fc_norm = false"), "%s", vt_errmsg());
    /* --init: fc_norm is an architecture key; the same model starts from the file's weights */
    char log[4096];
    ck_assert_int_eq(finetune(&q, fcf, log, sizeof log), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[model] fc_norm = true, the config false"), "%s", vt_errmsg());
    memset(b.params.data, 0, sizeof(float) * (size_t)b.params.numel);
    ck_assert_msg(finetune(&b, fcf, log, sizeof log) == VT_OK, "%s", vt_errmsg());
    check_transfer(&a, &b, fcf);
    ck_assert_int_eq(finetune(&b, plainf, log, sizeof log), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[model] fc_norm = false, the config true"), "%s", vt_errmsg());
    /* .npz: no fc_norm in Google's layout, both ways; the model its shapes tell has none */
    ck_assert_int_eq(vt_vit_save_npz(&a, npz), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), npz) && strstr(vt_errmsg(), "fc_norm = true has no Google .npz layout"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(vt_vit_save_npz(&p, npz), VT_OK);
    ck_assert_int_eq(vt_vit_load_npz(&b, npz), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "fc_norm = true has no Google .npz layout"), "%s", vt_errmsg());
    fc = c;
    ck_assert_msg(vt_vit_config_from_npz(npz, &fc) == VT_OK, "%s", vt_errmsg());
    ck_assert(!fc.fc_norm);
    remove(fcf);
    remove(plainf);
    remove(npz);
    remove(base);
    vt_vit_free(&a);
    vt_vit_free(&b);
    vt_vit_free(&p);
    vt_vit_free(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, timm_file_matches_goldens);
    tcase_add_test(tc, round_trip_and_format);
    tcase_add_test(tc, google_npz_matches_goldens);
    tcase_add_test(tc, npz_round_trip);
    tcase_add_test(tc, bad_npz_refused);
    tcase_add_test(tc, safetensors_refuses_nan_and_duplicates);
    tcase_add_test(tc, npz_checks_layouts_and_values);
    tcase_add_test(tc, safetensors_refuses_unexpected_tensors);
    tcase_add_test(tc, safetensors_offsets_tile_the_data);
    tcase_add_test(tc, npz_refuses_unexpected_members);
    tcase_add_test(tc, finetune_adapts_head_and_grid);
    tcase_add_test(tc, finetune_takes_a_backbone);
    tcase_add_test(tc, finetune_same_count_other_grid);
    tcase_add_test(tc, ckpt_model_attributes);
    tcase_add_test(tc, finetune_refuses_other_architectures);
    tcase_add_test(tc, fc_norm_round_trip_and_inference);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
