/* test_integrity.c - what we write is checked when it is read back: every dataset of a checkpoint and of a
 * packed dataset carries Fletcher-32 checksums, a byte flipped inside a chunk's stored data is refused
 * naming the file and the dataset, and a checkpoint written before the checksums still loads (said once). */
#include "testutil.h"
#include "data_fixtures.h"
#include "train/train.h"
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* m a tiny ViT with uniform weights drawn from seed, back another of its architecture */
static void model_pair(vt_vit *m, vt_vit *back, uint64_t seed)
{
    vt_vit_config c;
    vt_vit_config_defaults(&c);
    c.img_h = c.img_w = 16;
    c.patch = 4;
    c.in_chans = 1;
    c.num_classes = 10;
    c.embed_dim = 32;
    c.depth = 2;
    c.num_heads = 2;
    ck_assert_int_eq(vt_vit_init(m, &c), VT_OK);
    ck_assert_int_eq(vt_vit_init(back, &c), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, seed);
    tu_fill_uniform(&r, m->params.data, m->params.numel, -1, 1);
}

/* the file offset and stored size of chunk 0 of dataset name in file path (the chunk information API) */
static void chunk0(const char *path, const char *name, haddr_t *addr, hsize_t *size)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert(d >= 0);
    hsize_t n = 0, off[8];
    unsigned mask = 0;
    hid_t s = H5Dget_space(d);
    ck_assert(H5Dget_num_chunks(d, s, &n) >= 0 && n >= 1);
    ck_assert(H5Dget_chunk_info(d, s, 0, off, &mask, addr, size) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
}

/* one byte at offset in the file xor'ed with 0x10 */
static void flip(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_ne(c, EOF);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static void same_params(const vt_vit *a, const vt_vit *b)
{
    for (int i = 0; i < a->params.count; i++) {
        const vt_param_info *pi = &a->params.info[i];
        ck_assert_msg(memcmp(a->params.data + pi->offset, b->params.data + pi->offset, sizeof(float) * (size_t)pi->numel) == 0,
                      "%s differs after the checkpoint round trip", pi->name);
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a && b);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* a flipped byte inside the stored data of a tensor's chunk (deflated or not) is refused by the loader
 * naming the file and the dataset; before the checksums the same flip loaded without complaint */
START_TEST(checkpoint_flip_refused)
{
    vt_vit m, back;
    model_pair(&m, &back, 3);
    char dir[512], ck[4096], bad[4200];
    fx_tempdir(dir, sizeof dir, "vit_cksum");
    const char *ds = "/model/blocks.0.attn.qkv.weight";
    for (int deflate = 0; deflate <= 6; deflate += 6) {
        vt_train_state st = {0};
        st.step = 1 + deflate;
        ck_assert_msg(vt_ckpt_write(dir, &m, NULL, &st, "", deflate, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
        ck_assert_msg(vt_ckpt_load(ck, &back, NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
        same_params(&m, &back);
        ck_assert(!vt_ckpt_note_unverified(stdout, "", ck));
        vt_h5id f = vt_h5_open(ck, false);
        ck_assert(vt_h5_checksummed(f, ds) && vt_h5_checksummed(f, "/model/head.bias") &&
                  vt_h5_checksummed(f, "/state/rng"));
        vt_h5_close(f);
        haddr_t addr;
        hsize_t size;
        chunk0(ck, ds, &addr, &size);
        ck_assert_uint_gt(size, 16);
        for (int where = 0; where < 2; where++) {   /* inside the data, and its last byte */
            snprintf(bad, sizeof bad, "%s/flipped.h5", dir);
            copy_file(ck, bad);
            flip(bad, (long)(addr + (where ? size - 5 : size / 2)));   /* the checksum is the chunk's last 4 bytes */
            ck_assert_int_eq(vt_ckpt_load(bad, &back, NULL, NULL, NULL), VT_ERR);
            ck_assert_msg(strstr(vt_errmsg(), bad) && strstr(vt_errmsg(), ds) &&
                          strstr(vt_errmsg(), "fails its Fletcher-32 checksum"), "%s", vt_errmsg());
        }
    }
    fx_remove(dir);
    vt_vit_free(&m);
    vt_vit_free(&back);
}
END_TEST

/* a checkpoint as written before the checksums: its tensors contiguous, without the filter; it loads (the
 * same values) and the note says it is unverified */
START_TEST(checkpoint_without_checksums_loads)
{
    vt_vit m, back;
    model_pair(&m, &back, 4);
    char dir[512], ck[4096];
    fx_tempdir(dir, sizeof dir, "vit_nocksum");
    vt_train_state st = {0};
    ck_assert_msg(vt_ckpt_write(dir, &m, NULL, &st, "", 0, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
    char note[8192] = "";
    FILE *out = fmemopen(note, sizeof note - 1, "w");
    vt_config cfg;
    vt_config_defaults(&cfg);
    ck_assert_msg(vt_finetune_init(&back, ck, &cfg, out) == VT_OK, "%s", vt_errmsg());   /* a new file: no note */
    fclose(out);
    ck_assert_msg(!strstr(note, "unverified"), "%s", note);
    fx_strip_checksums(ck, &m);
    ck_assert_msg(vt_ckpt_load(ck, &back, NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    same_params(&m, &back);
    out = fmemopen(note, sizeof note - 1, "w");
    ck_assert(vt_ckpt_note_unverified(out, "vit-eval: ", ck));
    fclose(out);
    ck_assert_msg(strstr(note, "vit-eval: note: ") && strstr(note, ck) && strstr(note, "without checksums") &&
                  strstr(note, "unverified"), "%s", note);
    /* --init from it says so too (a resume prints the same note, run_dir.c) */
    out = fmemopen(note, sizeof note - 1, "w");
    ck_assert_msg(vt_finetune_init(&back, ck, &cfg, out) == VT_OK, "%s", vt_errmsg());
    fclose(out);
    ck_assert_msg(strstr(note, "note: ") && strstr(note, "unverified") && strstr(note, "initialised from"), "%s", note);
    same_params(&m, &back);
    fx_remove(dir);
    vt_vit_free(&m);
    vt_vit_free(&back);
}
END_TEST

/* vit-data pack's output: the images and the labels checksummed; a flipped byte in an images chunk is
 * refused when that image is read, naming the file and the dataset */
START_TEST(packed_flip_refused)
{
    char dir[512], out[1024];
    fx_tempdir(dir, sizeof dir, "vit_packsum");
    write_noise_idx(dir, 5);
    snprintf(out, sizeof out, "%s/packed.h5", dir);
    vt_dataset *src, *h5;
    ck_assert_msg(vt_dataset_open(&src, dir, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    vt_h5id f = vt_h5_create(out);
    ck_assert(f >= 0);
    ck_assert_msg(vt_dataset_pack_h5(src, f, "/train") == VT_OK, "%s", vt_errmsg());
    ck_assert(vt_h5_checksummed(f, "/train/images") && vt_h5_checksummed(f, "/train/labels"));
    vt_h5_close(f);
    vt_dataset_close(src);
    haddr_t addr;
    hsize_t size;
    chunk0(out, "/train/images", &addr, &size);
    flip(out, (long)(addr + size / 2));
    ck_assert_msg(vt_dataset_open(&h5, out, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    uint8_t px[12 * 20];
    int label;
    ck_assert_int_eq(h5->read(h5, 0, px, &label), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), out) && strstr(vt_errmsg(), "image 0") && strstr(vt_errmsg(), "/train/images") &&
                  strstr(vt_errmsg(), "fails its Fletcher-32 checksum"), "%s", vt_errmsg());
    ck_assert_int_eq(h5->read(h5, h5->count - 1, px, &label), VT_OK);   /* another chunk reads */
    vt_dataset_close(h5);
    fx_remove(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integrity");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, checkpoint_flip_refused);
    tcase_add_test(tc, checkpoint_without_checksums_loads);
    tcase_add_test(tc, packed_flip_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
