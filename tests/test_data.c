/* test_data.c - dataset formats on files the test writes (IDX plain and gz, CIFAR-10/100, HDF5),
 * Fashion-MNIST from the Debian package, transforms, and the loader's resume determinism. */
#include "testutil.h"
#include "data/data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vit_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void write_file(const char *path, const void *buf, size_t n, bool gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        gzwrite(g, buf, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
    }
}

/* IDX with pixel (i, y, x) = (i * 7 + y * 3 + x) & 255, label i % 10 */
static void write_idx(const char *prefix, int n, int h, int w, bool gz, int truncate_labels)
{
    size_t isz = 16 + (size_t)n * h * w, lsz = 8 + (size_t)n;
    uint8_t *im = malloc(isz), *lb = malloc(lsz);
    be32(im, 0x803), be32(im + 4, (uint32_t)n), be32(im + 8, (uint32_t)h), be32(im + 12, (uint32_t)w);
    be32(lb, 0x801), be32(lb + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        lb[8 + i] = (uint8_t)(i % 10);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) im[16 + ((size_t)i * h + y) * w + x] = (uint8_t)((i * 7 + y * 3 + x) & 255);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_file(p, im, isz, gz);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_file(p, lb, lsz - (size_t)truncate_labels, gz);
    free(im);
    free(lb);
}

static void check_idx_pixels(vt_dataset *ds, int n, int h, int w)
{
    ck_assert_int_eq(ds->count, n);
    ck_assert_int_eq(ds->h, h);
    ck_assert_int_eq(ds->w, w);
    ck_assert_int_eq(ds->c, 1);
    uint8_t *pix = malloc((size_t)h * w);
    for (int i = 0; i < n; i++) {
        int label;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, i % 10);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) ck_assert_int_eq(pix[y * w + x], (i * 7 + y * 3 + x) & 255);
    }
    free(pix);
}

START_TEST(idx_plain_and_gz)
{
    write_idx("train", 30, 5, 7, true, 0);
    write_idx("t10k", 20, 5, 7, false, 0);
    vt_dataset *tr, *te;
    ck_assert_msg(vt_dataset_open(&tr, dir, "train", "auto", NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(tr->format, "idx");
    check_idx_pixels(tr, 30, 5, 7);
    ck_assert_int_eq(tr->num_classes, 10);
    ck_assert_int_eq(vt_dataset_open(&te, dir, "test", "idx", NULL, NULL), VT_OK);
    check_idx_pixels(te, 20, 5, 7);
    vt_dataset_close(tr);
    vt_dataset_close(te);
}
END_TEST

START_TEST(idx_bad_files)
{
    vt_dataset *ds;
    write_idx("train", 30, 5, 7, false, 3);   /* labels file cut short */
    ck_assert_int_eq(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "train-labels-idx1-ubyte") && strstr(vt_errmsg(), "truncated"), "%s", vt_errmsg());
    /* a corrupted gzip stream */
    write_idx("train", 30, 5, 7, true, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(p, "r+b");
    fseek(f, 20, SEEK_SET);
    fputc(0x55, f);
    fputc(0xaa, f);
    fclose(f);
    ck_assert_int_eq(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "train-images-idx3-ubyte.gz") != NULL, "%s", vt_errmsg());
    /* wrong magic */
    uint8_t junk[64] = {1, 2, 3, 4};
    write_file(p, junk, sizeof junk, true);
    ck_assert_int_eq(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "not an IDX image file") != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(vt_dataset_open(&ds, "/nonexistent/x", "train", "auto", NULL, NULL), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "/nonexistent/x") != NULL);
}
END_TEST

START_TEST(cifar10_and_100)
{
    /* CIFAR-10: two training batches of 3 records, pixel (i, c, p) = (i + 5c + p) & 255 */
    uint8_t rec[3 * 3074];
    for (int b = 1; b <= 2; b++) {
        for (int i = 0; i < 3; i++) {
            uint8_t *r = rec + i * 3073;
            int gi = (b - 1) * 3 + i;
            r[0] = (uint8_t)(gi % 10);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p++) r[1 + c * 1024 + p] = (uint8_t)((gi + 5 * c + p) & 255);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        write_file(path, rec, 3 * 3073, false);
    }
    vt_dataset *ds;
    ck_assert_msg(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(ds->format, "cifar");
    ck_assert_int_eq(ds->count, 6);
    ck_assert_int_eq(ds->num_classes, 10);
    uint8_t pix[3072];
    for (int i = 0; i < 6; i++) {
        int label;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, i % 10);
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++) ck_assert_int_eq(pix[p * 3 + c], (i + 5 * c + p) & 255);
    }
    vt_dataset_close(ds);
    vt_dataset *te;
    ck_assert_int_eq(vt_dataset_open(&te, dir, "test", "auto", NULL, NULL), VT_OK);
    ck_assert_ptr_null(te);   /* no test_batch.bin: no test split, not an error */
    /* CIFAR-100 (coarse, fine label bytes) in another folder; a truncated file is refused */
    char d100[512], path[600];
    snprintf(d100, sizeof d100, "%s/c100", dir);
    mkdir(d100, 0777);
    for (int i = 0; i < 2; i++) {
        uint8_t *r = rec + i * 3074;
        r[0] = 3;
        r[1] = (uint8_t)(42 + i);
        memset(r + 2, i, 3072);
    }
    snprintf(path, sizeof path, "%s/train.bin", d100);
    write_file(path, rec, 2 * 3074, false);
    ck_assert_int_eq(vt_dataset_open(&ds, d100, "train", "cifar", NULL, NULL), VT_OK);
    ck_assert_int_eq(ds->num_classes, 100);
    int label;
    ck_assert_int_eq(ds->read(ds, 1, pix, &label), VT_OK);
    ck_assert_int_eq(label, 43);
    ck_assert_int_eq(pix[100], 1);
    vt_dataset_close(ds);
    write_file(path, rec, 2 * 3074 - 10, false);
    ck_assert_int_eq(vt_dataset_open(&ds, d100, "train", "cifar", NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "train.bin") && strstr(vt_errmsg(), "truncated"), "%s", vt_errmsg());
}
END_TEST

START_TEST(hdf5_layout)
{
    char path[512];
    snprintf(path, sizeof path, "%s/d.h5", dir);
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    /* images as float64 are not uint8 but HDF5 converts; write uint8 through int64? use f64 with integer values */
    double img[4 * 3 * 2 * 3];
    int64_t lab[4] = {2, 0, 1, 2};
    for (int i = 0; i < 72; i++) img[i] = (double)((i * 11) & 255);
    ck_assert_int_eq(vt_h5_write_f64(f, "/train/images", img, 4, (int64_t[]){4, 3, 2, 3}), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/train/labels", lab, 1, (int64_t[]){4}), VT_OK);
    ck_assert_int_eq(vt_h5_write_f64(f, "/test/images", img, 4, (int64_t[]){2, 3, 2, 3}), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/test/labels", lab, 1, (int64_t[]){3}), VT_OK);
    vt_h5_close(f);
    vt_dataset *ds;
    ck_assert_msg(vt_dataset_open(&ds, path, "train", "auto", "images", "labels") == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(ds->format, "hdf5");
    ck_assert_int_eq(ds->count, 4);
    ck_assert_int_eq(ds->num_classes, 3);
    ck_assert(ds->h == 3 && ds->w == 2 && ds->c == 3);
    uint8_t pix[18];
    int label;
    ck_assert_int_eq(ds->read(ds, 2, pix, &label), VT_OK);
    ck_assert_int_eq(label, 1);
    for (int k = 0; k < 18; k++) ck_assert_int_eq(pix[k], ((36 + k) * 11) & 255);
    vt_dataset_close(ds);
    /* the test split has 2 images but 3 labels: refused */
    ck_assert_int_eq(vt_dataset_open(&ds, path, "test", "auto", "images", "labels"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "d.h5") && strstr(vt_errmsg(), "labels"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_dataset_open(&ds, path, "train", "auto", "pixels", "labels"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "pixels") != NULL);
}
END_TEST

START_TEST(fashion_mnist_package)
{
    const char *fm = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(fm, &st) != 0) {
        printf("note: %s absent (Debian package dataset-fashion-mnist): skipped\n", fm);
        return;
    }
    vt_dataset *tr, *te;
    ck_assert_msg(vt_dataset_open(&tr, fm, "train", "auto", NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(vt_dataset_open(&te, fm, "test", "auto", NULL, NULL), VT_OK);
    ck_assert_int_eq(tr->count, 60000);
    ck_assert_int_eq(te->count, 10000);
    ck_assert(tr->h == 28 && tr->w == 28 && tr->c == 1 && tr->num_classes == 10);
    int hist[2][10] = {{0}};
    uint8_t pix[784];
    vt_dataset *sets[2] = {tr, te};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < sets[s]->count; i++) {
            int label;
            ck_assert_int_eq(sets[s]->read(sets[s], i, pix, &label), VT_OK);
            hist[s][label]++;
        }
    for (int k = 0; k < 10; k++) {
        ck_assert_int_eq(hist[0][k], 6000);
        ck_assert_int_eq(hist[1][k], 1000);
    }
    vt_dataset_close(tr);
    vt_dataset_close(te);
}
END_TEST

/* batches k.. of epoch e are the same (ids and augmented pixels) whether the loader ran from batch 0
 * or was created fresh at batch k, with any number of workers */
START_TEST(loader_resume_determinism)
{
    write_idx("train", 100, 8, 8, false, 0);
    vt_dataset *ds;
    ck_assert_int_eq(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL), VT_OK);
    vt_transform tf = {1, 8, 8, {0.5f}, {0.25f}, true, true, 2, false, 0.08, 0.75, 1.333};
    float ref[12][7 * 64];
    int64_t ref_ids[12][7];
    for (int run = 0; run < 3; run++) {
        vt_loader_config lc = {ds, NULL, 0, tf, 7, true, true, 42, run == 0 ? 0 : run, 3};
        vt_loader *l;
        ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
        ck_assert_int_eq(vt_loader_batches(l), 14);
        int start = run == 0 ? 0 : 5 + run;
        ck_assert_int_eq(vt_loader_start(l, 3, start), VT_OK);
        for (int k = start; k < 14; k++) {
            float *x;
            int *y, bs;
            const int64_t *ids;
            ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
            ck_assert_int_eq(bs, 7);
            if (k < 2) continue;
            if (run == 0) {
                memcpy(ref[k - 2], x, sizeof ref[0]);
                memcpy(ref_ids[k - 2], ids, sizeof ref_ids[0]);
            } else {
                ck_assert_msg(memcmp(ref_ids[k - 2], ids, sizeof ref_ids[0]) == 0, "ids of batch %d differ", k);
                ck_assert_msg(memcmp(ref[k - 2], x, sizeof ref[0]) == 0, "pixels of batch %d differ", k);
            }
            for (int b = 0; b < 7; b++) ck_assert_int_eq(y[b], (int)(ids[b] % 10));
        }
        float *x;
        int *y, bs;
        ck_assert_int_eq(vt_loader_next(l, &x, &y, NULL, &bs), VT_OK);
        ck_assert_int_eq(bs, 0);   /* end of the epoch */
        vt_loader_free(l);
    }
    /* another epoch is another order */
    vt_loader_config lc = {ds, NULL, 0, tf, 7, true, true, 42, 1, 3};
    vt_loader *l;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_start(l, 4, 2), VT_OK);
    float *x;
    int *y, bs;
    const int64_t *ids;
    ck_assert_int_eq(vt_loader_next(l, &x, &y, &ids, &bs), VT_OK);
    ck_assert(memcmp(ref_ids[0], ids, sizeof ref_ids[0]) != 0);
    vt_loader_free(l);
    vt_dataset_close(ds);
}
END_TEST

START_TEST(transforms)
{
    /* eval: resize 4x4 -> 2x2 averages (antialiased) and normalises; gray -> 3 channels */
    uint8_t pix[16];
    for (int i = 0; i < 16; i++) pix[i] = (uint8_t)(i < 8 ? 0 : 255);
    vt_transform tf = {3, 2, 2, {0, 0, 0}, {1, 1, 1}, false, false, 0, false, 0, 0, 0};
    float out[12], scratch[256];
    vt_rng r;
    vt_rng_seed(&r, 1);
    vt_transform_apply(&tf, pix, 4, 4, 1, out, &r, scratch);
    for (int c = 0; c < 3; c++) {
        ck_assert(out[c * 4 + 0] < 0.2f && out[c * 4 + 1] < 0.2f);
        ck_assert(out[c * 4 + 2] > 0.8f && out[c * 4 + 3] > 0.8f);
    }
    float vals[3];
    ck_assert_int_eq(vt_parse_floats("0.1, 0.2,0.3", vals, 3, "mean"), VT_OK);
    ck_assert(vals[2] == 0.3f);
    ck_assert_int_eq(vt_parse_floats("0.1, 0.2", vals, 3, "mean"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "2 values given, expected 1 or 3") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, idx_plain_and_gz);
    tcase_add_test(tc, idx_bad_files);
    tcase_add_test(tc, cifar10_and_100);
    tcase_add_test(tc, hdf5_layout);
    tcase_add_test(tc, fashion_mnist_package);
    tcase_add_test(tc, loader_resume_determinism);
    tcase_add_test(tc, transforms);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
