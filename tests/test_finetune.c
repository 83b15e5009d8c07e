/* test_finetune.c - --init from our checkpoints, timm .safetensors and Google .npz: a new head and a
 * resampled grid where they differ, backbones without a head, refused architectures, fc_norm, and the
 * model attributes checkpoints store. */
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
    Suite *s = suite_create("finetune");
    TCase *tc = tcase_create("finetune");
    tcase_add_test(tc, finetune_adapts_head_and_grid);
    tcase_add_test(tc, finetune_takes_a_backbone);
    tcase_add_test(tc, finetune_same_count_other_grid);
    tcase_add_test(tc, ckpt_model_attributes);
    tcase_add_test(tc, finetune_refuses_other_architectures);
    tcase_add_test(tc, fc_norm_round_trip_and_inference);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
