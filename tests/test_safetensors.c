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

START_TEST(timm_file_matches_goldens)
{
    char weights[4096], ref[4096];
    snprintf(weights, sizeof weights, "%s", tu_golden("vit_tiny_timm.safetensors"));
    snprintf(ref, sizeof ref, "%s", tu_golden("vit_reference.h5"));
    vt_golden_opts o = {"/vit_tiny_f64", weights, false};
    vt_golden_result r = {0};
    ck_assert_int_eq(vt_golden_check_file(ref, &o, stdout, &r), VT_OK);
    ck_assert_msg(r.cases == 1 && r.failed == 0 && r.errors == 0, "%s", vt_errmsg());
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
    suite_add_tcase(s, tc);
    return tu_run(s);
}
