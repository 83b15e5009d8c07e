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

#include "weights_fixtures.h"

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
    /* load_only: LayerScale and register tokens are a ViT's (test_deit.c), only not this model's */
    static const struct { const char *extra, *want[4]; bool load_only; } cases[] = {
        {E("blocks.0.ls1.gamma"),
         {"unexpected tensor blocks.0.ls1.gamma", "LayerScale", "set [model] init_values > 0", "strict"}, true},
        {E("fc_norm.weight") E("fc_norm.bias"),
         {"unexpected tensors fc_norm.weight, fc_norm.bias (not parameters of", "both norm.* and fc_norm.*", NULL}, false},
        {E("reg_token"), {"unexpected tensor reg_token", "register tokens: set [model] reg_tokens", NULL}, true},
        {E("blocks.1.attn.q_norm.weight") E("blocks.1.attn.k_norm.weight"),
         {"blocks.1.attn.q_norm.weight, blocks.1.attn.k_norm.weight", "q/k norm", NULL}, false},
        {E("foo.bar"), {"unexpected tensor foo.bar (not parameters of a plain ViT", NULL}, false},
        {E("fc_norm.weight") E("foo.bar") E("blocks.0.attn.q_norm.weight") E("blocks.0.attn.k_norm.weight")
         E("norm_pre.weight"),
         {"fc_norm.weight, foo.bar, blocks.0.attn.q_norm.weight, blocks.0.attn.k_norm.weight and 1 more",
          "not supported: q/k norm (blocks.*.attn.q_norm/k_norm), a norm before the blocks (norm_pre)",
          "both norm.* and fc_norm.*"}, false},
    };
#undef E
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_st(&a, NULL, 0, cases[k].extra);
        for (int way = 0; way < (cases[k].load_only ? 1 : 2); way++) {
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
    suite_add_tcase(s, tc);
    return tu_run(s);
}
