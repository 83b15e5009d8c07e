/* test_safetensors.c - timm's safetensors file loads and reproduces timm's logits; export -> import is
 * exact and follows the format; truncated or inconsistent files are refused naming file and tensor. */
#include "testutil.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    ck_assert_int_eq(vt_vit_init(&a, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&b, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 8);
    tu_fill_uniform(&r, a.params.data, a.params.numel, -1, 1);
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
    ck_assert_int_eq(vt_vit_init(&a, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(&b, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 4);
    vt_vit_init_weights(&a, &r);
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

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, timm_file_matches_goldens);
    tcase_add_test(tc, round_trip_and_format);
    tcase_add_test(tc, google_npz_matches_goldens);
    tcase_add_test(tc, npz_round_trip);
    tcase_add_test(tc, bad_npz_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
