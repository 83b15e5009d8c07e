/* test_data.c - dataset formats on files the test writes (IDX plain and gz, CIFAR-10/100, HDF5,
 * packing), their bad-file messages, and Fashion-MNIST from the Debian package. Image folders are in
 * test_data_folder.c, transforms and the loader in test_data_loader.c, the command-line tools in
 * test_tools.c; main is here. */
#include "testutil.h"
#include "data_fixtures.h"
#include "data/data.h"
#include "train/train.h"
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

TCase *tc_data_folder(void);
TCase *tc_data_loader(void);

static char dir[256];

static void setup(void) { fx_tempdir(dir, sizeof dir, "vit_data"); }

static void teardown(void) { fx_remove(dir); }






/* IDX with pixel (i, y, x) = (i * 7 + y * 3 + x) & 255, label i % 10; the label file holds
 * nlabels labels (n normally), is cut short by truncate bytes, its first label set to label0 (>= 0) */
static void write_idx_ex(const char *prefix, int n, int h, int w, bool gz, int truncate, int nlabels, int label0)
{
    size_t isz = 16 + (size_t)n * h * w, lsz = 8 + (size_t)nlabels;
    uint8_t *im = malloc(isz), *lb = malloc(lsz);
    be32(im, 0x803), be32(im + 4, (uint32_t)n), be32(im + 8, (uint32_t)h), be32(im + 12, (uint32_t)w);
    be32(lb, 0x801), be32(lb + 4, (uint32_t)nlabels);
    for (int i = 0; i < nlabels; i++) lb[8 + i] = (uint8_t)(i % 10);
    if (label0 >= 0) lb[8] = (uint8_t)label0;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) im[16 + ((size_t)i * h + y) * w + x] = (uint8_t)((i * 7 + y * 3 + x) & 255);
    char p[512];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_file(p, im, isz, gz);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    write_file(p, lb, lsz - (size_t)truncate, gz);
    free(im);
    free(lb);
}

static void write_idx(const char *prefix, int n, int h, int w, bool gz, int truncate)
{
    write_idx_ex(prefix, n, h, w, gz, truncate, n, -1);
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

static void unlink_in(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* vt_dataset_open fails and the message holds every one of the (NULL-terminated) words */
static void expect_refused(const char *path, const char *split, const vt_data_options *o, ...)
{
    vt_dataset *ds = (vt_dataset *)1;
    ck_assert_int_eq(vt_dataset_open_opts(&ds, path, split, o), VT_ERR);
    ck_assert_ptr_null(ds);
    va_list ap;
    va_start(ap, o);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_msg(strstr(vt_errmsg(), w) != NULL, "'%s' not in the message: %s", w, vt_errmsg());
    va_end(ap);
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
    ck_assert_ptr_null(tr->class_names);
    ck_assert_int_eq(vt_dataset_open(&te, dir, "test", "idx", NULL, NULL), VT_OK);
    check_idx_pixels(te, 20, 5, 7);
    vt_dataset_close(tr);
    vt_dataset_close(te);
    /* a file named directly opens its folder; classes.txt names the classes */
    write_text(dir, "classes.txt", "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n");
    char p[512];
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    ck_assert_msg(vt_dataset_open(&tr, p, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_ptr_nonnull(tr->class_names);
    ck_assert_str_eq(tr->class_names[7], "seven");
    vt_dataset_close(tr);
    /* a model with more classes than the data shows: num_classes as asked (names must then agree) */
    unlink_in("classes.txt");
    vt_data_options o = {.num_classes = 12};
    ck_assert_int_eq(vt_dataset_open_opts(&tr, dir, "train", &o), VT_OK);
    ck_assert_int_eq(tr->num_classes, 12);
    vt_dataset_close(tr);
}
END_TEST

START_TEST(idx_bad_files)
{
    char p[512];
    /* missing path, missing labels file */
    expect_refused("/nonexistent/x", "train", NULL, "/nonexistent/x", "no such", NULL);
    write_idx("train", 30, 5, 7, false, 0);
    unlink_in("train-labels-idx1-ubyte");
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte", "labels", NULL);
    /* labels file cut short */
    write_idx("train", 30, 5, 7, false, 3);
    expect_refused(dir, "train", NULL, "train-labels-idx1-ubyte", "30 labels", "truncated", NULL);
    /* image count != label count */
    write_idx_ex("train", 30, 5, 7, false, 0, 29, -1);
    expect_refused(dir, "train", NULL, "30 images", "29 labels", "train-labels-idx1-ubyte", NULL);
    /* label >= the number of classes asked for */
    write_idx_ex("train", 30, 5, 7, false, 0, 30, 10);
    vt_data_options o = {.num_classes = 10};
    expect_refused(dir, "train", &o, "train-labels-idx1-ubyte", "label 10", "expected 0..9", NULL);
    /* classes.txt with fewer names than the labels need */
    write_idx("train", 30, 5, 7, false, 0);
    write_text(dir, "classes.txt", "a\nb\nc\n");
    expect_refused(dir, "train", NULL, "train-labels-idx1-ubyte", "label 9", "3 classes", NULL);
    unlink_in("classes.txt");
    /* a corrupted and a truncated gzip stream */
    unlink_in("train-labels-idx1-ubyte");
    unlink_in("train-images-idx3-ubyte");
    write_idx("train", 30, 5, 7, true, 0);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(p, "r+b");
    fseek(f, 20, SEEK_SET);
    fputc(0x55, f);
    fputc(0xaa, f);
    fclose(f);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte.gz", "corrupted", NULL);
    write_idx("train", 30, 5, 7, true, 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 12), 0);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte.gz", "truncated", NULL);
    /* wrong magic */
    uint8_t junk[64] = {1, 2, 3, 4};
    write_file(p, junk, sizeof junk, true);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte.gz", "not an IDX image file", "0x01020304", NULL);
    /* an unknown format and split */
    vt_data_options bad = {.format = "tiff"};
    expect_refused(dir, "train", &bad, "tiff", "expected auto, idx, cifar, hdf5 or folder", NULL);
    expect_refused(dir, "validation", NULL, "validation", "expected train or test", NULL);
    /* a folder with nothing recognisable */
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0777);
    expect_refused(empty, "train", NULL, empty, "cannot tell the dataset format", NULL);
}
END_TEST

/* CIFAR record i of a batch: label, then planar R, G, B with pixel (i, c, p) = (i + 5c + p) & 255 */
static void cifar_record(uint8_t *r, int label_bytes, int gi, int coarse, int fine)
{
    if (label_bytes == 2) r[0] = (uint8_t)coarse;
    r[label_bytes - 1] = (uint8_t)fine;
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 1024; p++) r[label_bytes + c * 1024 + p] = (uint8_t)((gi + 5 * c + p) & 255);
}

static void check_cifar_pixels(vt_dataset *ds, int i, int gi)
{
    uint8_t pix[3072];
    int label;
    ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
    for (int p = 0; p < 1024; p++)
        for (int c = 0; c < 3; c++) ck_assert_int_eq(pix[p * 3 + c], (gi + 5 * c + p) & 255);
}

START_TEST(cifar10_and_100)
{
    /* CIFAR-10: five training batches of 3 records and a test batch of 2 */
    static uint8_t rec[3 * 3074];
    char path[600];
    for (int b = 1; b <= 5; b++) {
        for (int i = 0; i < 3; i++) cifar_record(rec + i * 3073, 1, (b - 1) * 3 + i, 0, ((b - 1) * 3 + i) % 10);
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        write_file(path, rec, 3 * 3073, false);
    }
    vt_dataset *ds, *te;
    ck_assert_msg(vt_dataset_open(&ds, dir, "train", "auto", NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(ds->format, "cifar");
    ck_assert_int_eq(ds->count, 15);
    ck_assert_int_eq(ds->num_classes, 10);
    ck_assert(ds->h == 32 && ds->w == 32 && ds->c == 3);
    ck_assert_ptr_null(ds->class_names);
    for (int i = 0; i < 15; i++) {
        int label;
        uint8_t pix[3072];
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, i % 10);
        check_cifar_pixels(ds, i, i);
    }
    vt_dataset_close(ds);
    /* a batch missing (an incomplete download) is refused by name, not trained on four fifths */
    char b4[600], b4x[620];
    snprintf(b4, sizeof b4, "%s/data_batch_4.bin", dir);
    snprintf(b4x, sizeof b4x, "%s.away", b4);
    ck_assert_int_eq(rename(b4, b4x), 0);
    expect_refused(dir, "train", NULL, "data_batch_4.bin is missing", "incomplete download", NULL);
    ck_assert_int_eq(rename(b4x, b4), 0);
    ck_assert_int_eq(vt_dataset_open(&te, dir, "test", "auto", NULL, NULL), VT_OK);
    ck_assert_ptr_null(te);   /* no test_batch.bin: no test split, not an error */
    for (int i = 0; i < 2; i++) cifar_record(rec + i * 3073, 1, 100 + i, 0, 9 - i);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_file(path, rec, 2 * 3073, false);
    write_text(dir, "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    ck_assert_int_eq(vt_dataset_open(&te, dir, "test", "auto", NULL, NULL), VT_OK);
    ck_assert_int_eq(te->count, 2);
    ck_assert_str_eq(te->class_names[9], "truck");
    check_cifar_pixels(te, 1, 101);
    vt_dataset_close(te);
    /* a label outside CIFAR-10's classes */
    rec[3073] = 12;
    write_file(path, rec, 2 * 3073, false);
    expect_refused(dir, "test", NULL, "test_batch.bin", "record 1", "label 12", "expected 0..9", NULL);

    /* CIFAR-100 (coarse, fine label bytes) in another folder: fine by default, coarse on request */
    char d100[512];
    snprintf(d100, sizeof d100, "%s/c100", dir);
    mkdir(d100, 0777);
    for (int i = 0; i < 3; i++) cifar_record(rec + i * 3074, 2, i, 3 + i, 42 + i);
    snprintf(path, sizeof path, "%s/train.bin", d100);
    write_file(path, rec, 3 * 3074, false);
    ck_assert_int_eq(vt_dataset_open(&ds, d100, "train", "cifar", NULL, NULL), VT_OK);
    ck_assert_int_eq(ds->num_classes, 100);
    int label;
    uint8_t pix[3072];
    ck_assert_int_eq(ds->read(ds, 1, pix, &label), VT_OK);
    ck_assert_int_eq(label, 43);
    check_cifar_pixels(ds, 2, 2);
    vt_dataset_close(ds);
    vt_data_options coarse = {.cifar_coarse = true};
    ck_assert_int_eq(vt_dataset_open_opts(&ds, d100, "train", &coarse), VT_OK);
    ck_assert_int_eq(ds->num_classes, 20);
    ck_assert_int_eq(ds->read(ds, 2, pix, &label), VT_OK);
    ck_assert_int_eq(label, 5);
    vt_dataset_close(ds);
    /* truncated */
    write_file(path, rec, 2 * 3074 - 10, false);
    expect_refused(d100, "train", NULL, "train.bin", "truncated", "3074-byte", NULL);
}
END_TEST

/* images uint8 (n, 3, 2, 3) with pixel k of image i = ((i * 18 + k) * 11) & 255 */
static void fill_h5_images(uint8_t *img, int n)
{
    for (int i = 0; i < n * 18; i++) img[i] = (uint8_t)((i * 11) & 255);
}

START_TEST(hdf5_layout)
{
    char path[512];
    snprintf(path, sizeof path, "%s/d.h5", dir);
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    uint8_t img[5 * 18];
    fill_h5_images(img, 5);
    int64_t lab[5] = {2, 0, 1, 2, 1};
    ck_assert_int_eq(vt_h5_write_u8(f, "/train/images", img, 4, (int64_t[]){4, 3, 2, 3}, 4), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/train/labels", lab, 1, (int64_t[]){4}), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_str(f, "/train/labels", "class_names", "cat\ndog\nemu"), VT_OK);
    ck_assert_int_eq(vt_h5_write_u8(f, "/test/images", img, 4, (int64_t[]){2, 3, 2, 3}, 0), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/test/labels", lab, 1, (int64_t[]){3}), VT_OK);
    vt_h5_close(f);
    vt_dataset *ds;
    ck_assert_msg(vt_dataset_open(&ds, path, "train", "auto", "images", "labels") == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(ds->format, "hdf5");
    ck_assert_int_eq(ds->count, 4);
    ck_assert_int_eq(ds->num_classes, 3);
    ck_assert_str_eq(ds->class_names[2], "emu");
    ck_assert(ds->h == 3 && ds->w == 2 && ds->c == 3);
    for (int i = 0; i < 4; i++) {
        uint8_t pix[18];
        int label;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, lab[i]);
        ck_assert_mem_eq(pix, img + i * 18, 18);
    }
    vt_dataset_close(ds);
    /* the test split has 2 images but 3 labels: refused */
    expect_refused(path, "test", NULL, "d.h5", "2 images", "3 labels", NULL);
    /* no dataset of that name: say what is there */
    vt_data_options o = {.images_key = "pixels"};
    expect_refused(path, "train", &o, "d.h5", "'pixels'", "/train", "found: images, labels", NULL);
    /* a train-only file at the root, (N, H, W) gray, names given, num_classes from the attribute */
    snprintf(path, sizeof path, "%s/g.h5", dir);
    ck_assert((f = vt_h5_create(path)) >= 0);
    ck_assert_int_eq(vt_h5_write_u8(f, "/px", img, 3, (int64_t[]){5, 3, 6}, 4), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/y", lab, 1, (int64_t[]){5}), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/y", "num_classes", 7), VT_OK);
    vt_h5_close(f);
    vt_data_options g = {.images_key = "px", .labels_key = "y"};
    ck_assert_msg(vt_dataset_open_opts(&ds, path, "train", &g) == VT_OK, "%s", vt_errmsg());
    ck_assert(ds->count == 5 && ds->h == 3 && ds->w == 6 && ds->c == 1 && ds->num_classes == 7);
    uint8_t pix[18];
    int label;
    ck_assert_int_eq(ds->read(ds, 4, pix, &label), VT_OK);
    ck_assert_mem_eq(pix, img + 4 * 18, 18);
    ck_assert_int_eq(label, 1);
    vt_dataset_close(ds);
    ck_assert_int_eq(vt_dataset_open_opts(&ds, path, "test", &g), VT_OK);
    ck_assert_ptr_null(ds);   /* train-only file */
    vt_data_options g2 = {.images_key = "nope", .labels_key = "y"};
    expect_refused(path, "train", &g2, "g.h5", "'nope' in /", "found: px, y", NULL);
    /* a label >= the num_classes attribute */
    snprintf(path, sizeof path, "%s/n.h5", dir);
    ck_assert((f = vt_h5_create(path)) >= 0);
    ck_assert_int_eq(vt_h5_write_u8(f, "/images", img, 3, (int64_t[]){5, 3, 6}, 0), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/labels", lab, 1, (int64_t[]){5}), VT_OK);
    ck_assert_int_eq(vt_h5_write_attr_i64(f, "/labels", "num_classes", 2), VT_OK);
    vt_h5_close(f);
    expect_refused(path, "train", NULL, "n.h5", "label 2 of sample 0", "expected 0..1", NULL);
    /* float images are not pixels */
    snprintf(path, sizeof path, "%s/fl.h5", dir);
    ck_assert((f = vt_h5_create(path)) >= 0);
    double fimg[18] = {0};
    ck_assert_int_eq(vt_h5_write_f64(f, "/images", fimg, 4, (int64_t[]){1, 3, 2, 3}), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/labels", lab, 1, (int64_t[]){1}), VT_OK);
    vt_h5_close(f);
    expect_refused(path, "train", NULL, "fl.h5", "float64", "expected uint8", NULL);
    /* not an HDF5 file at all */
    write_text(dir, "junk.h5", "this is not HDF5");
    snprintf(path, sizeof path, "%s/junk.h5", dir);
    expect_refused(path, "train", NULL, "junk.h5", "not an HDF5 file", NULL);
}
END_TEST

/* every sample of a equals the same sample of b */
static void same_samples(vt_dataset *a, vt_dataset *b)
{
    ck_assert_int_eq(a->count, b->count);
    ck_assert(a->h == b->h && a->w == b->w && a->c == b->c);
    ck_assert_int_eq(a->num_classes, b->num_classes);
    size_t px = (size_t)a->h * a->w * a->c;
    uint8_t *pa = malloc(px), *pb = malloc(px);
    for (int64_t i = 0; i < a->count; i++) {
        int la, lb;
        ck_assert_int_eq(a->read(a, i, pa, &la), VT_OK);
        ck_assert_int_eq(b->read(b, i, pb, &lb), VT_OK);
        ck_assert_int_eq(la, lb);
        ck_assert_mem_eq(pa, pb, px);
    }
    free(pa);
    free(pb);
}

START_TEST(pack_round_trip)
{
    /* enough images for several chunks and blocks */
    write_idx("train", 3000, 12, 20, true, 0);
    write_idx("t10k", 7, 12, 20, false, 0);
    write_text(dir, "classes.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
    char out[512];
    snprintf(out, sizeof out, "%s/packed.h5", dir);
    vt_h5id f = vt_h5_create(out);
    ck_assert(f >= 0);
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        vt_dataset *src;
        ck_assert_int_eq(vt_dataset_open(&src, dir, splits[s], NULL, NULL, NULL), VT_OK);
        char g[16];
        snprintf(g, sizeof g, "/%s", splits[s]);
        ck_assert_msg(vt_dataset_pack_h5(src, f, g) == VT_OK, "%s", vt_errmsg());
        vt_dataset_close(src);
    }
    vt_h5_close(f);
    for (int s = 0; s < 2; s++) {
        vt_dataset *src, *h5;
        ck_assert_int_eq(vt_dataset_open(&src, dir, splits[s], NULL, NULL, NULL), VT_OK);
        ck_assert_msg(vt_dataset_open(&h5, out, splits[s], NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
        ck_assert_str_eq(h5->format, "hdf5");
        same_samples(src, h5);
        ck_assert_str_eq(h5->class_names[9], "j");
        vt_dataset_close(src);
        vt_dataset_close(h5);
    }
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
    ck_assert_str_eq(tr->format, "idx");
    ck_assert_int_eq(tr->count, 60000);
    ck_assert_int_eq(te->count, 10000);
    ck_assert(tr->h == 28 && tr->w == 28 && tr->c == 1 && tr->num_classes == 10);
    ck_assert_str_eq(tr->class_names[0], "T-shirt/top");
    ck_assert_str_eq(te->class_names[9], "Ankle boot");
    int hist[2][10] = {{0}};
    uint8_t pix[784];
    vt_dataset *sets[2] = {tr, te};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < sets[s]->count; i++) {
            int label;
            ck_assert_int_eq(sets[s]->read(sets[s], i, pix, &label), VT_OK);
            ck_assert(label >= 0 && label < 10);
            hist[s][label]++;
        }
    for (int k = 0; k < 10; k++) {
        ck_assert_int_eq(hist[0][k], 6000);
        ck_assert_int_eq(hist[1][k], 1000);
    }
    /* the first training image is an ankle boot (label 9), as in Zalando's README */
    int label;
    ck_assert_int_eq(tr->read(tr, 0, pix, &label), VT_OK);
    ck_assert_int_eq(label, 9);
    vt_dataset_close(tr);
    vt_dataset_close(te);
}
END_TEST


START_TEST(idx_header_messages)
{
    write_idx("train", 30, 5, 7, false, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    /* empty, shorter than the magic, the right magic but the dimensions cut short */
    write_file(p, "", 0, false);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte", "empty", "0x00000803", NULL);
    write_file(p, "\0\0", 2, false);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte", "only 2 bytes", "4-byte magic", NULL);
    static const uint8_t short_hdr[10] = {0, 0, 8, 3, 0, 0, 0, 30, 0, 0};
    write_file(p, short_hdr, sizeof short_hdr, false);
    expect_refused(dir, "train", NULL, "train-images-idx3-ubyte", "truncated", "12 bytes of dimensions", NULL);
    write_idx("train", 30, 5, 7, false, 0);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    static const uint8_t short_lab[5] = {0, 0, 8, 1, 0};
    write_file(p, short_lab, sizeof short_lab, false);
    expect_refused(dir, "train", NULL, "train-labels-idx1-ubyte", "truncated", "4 bytes of dimensions", NULL);
}
END_TEST

/* the file offset of the first occurrence of needle (n bytes) in the file, or -1 */
static long find_bytes(const char *path, const uint8_t *needle, size_t n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, needle, n) == 0) return (long)i;
    return -1;
}

static void xor_byte(const char *path, long at, uint8_t x)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ x, f);
    fclose(f);
}

/* a header claiming 2^61 samples (chunked storage allocates nothing, so HDF5 makes such a file in a few
 * KB): the element count sized the read buffers and overflowed; refused naming the dataset */
START_TEST(hdf5_huge_claimed_shape)
{
    char p[512];
    snprintf(p, sizeof p, "%s/big.h5", dir);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    const hsize_t N = ((hsize_t)1 << 61) + 1;
    const char *names[2] = {"images", "labels"};
    for (int k = 0; k < 2; k++) {
        hsize_t d[4] = {N, 2, 2, 1}, c[4] = {1024, 2, 2, 1};
        hid_t s = H5Screate_simple(k ? 1 : 4, d, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(pl, k ? 1 : 4, c);
        hid_t ds = H5Dcreate2(f, names[k], k ? H5T_STD_I64LE : H5T_STD_U8LE, s, H5P_DEFAULT, pl, H5P_DEFAULT);
        ck_assert(ds >= 0);
        H5Dclose(ds);
        H5Pclose(pl);
        H5Sclose(s);
    }
    H5Fclose(f);
    vt_dataset *ds = NULL;
    ck_assert_int_eq(vt_dataset_open(&ds, p, "train", NULL, NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "big.h5") && strstr(vt_errmsg(), "more than 2^48 elements"), "%s", vt_errmsg());
}
END_TEST

/* a billion labels created without their values (HDF5 stores nothing: the file is 2 KB, and a read gives fill
 * values): the count sized an 8 GB buffer, which the read then filled; refused from the storage size (found
 * by fuzzing: tests/fuzz/regressions/h5data/labels-without-values) */
START_TEST(hdf5_claimed_values_not_stored)
{
    char p[512];
    snprintf(p, sizeof p, "%s/empty.h5", dir);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    const char *names[2] = {"images", "labels"};
    for (int k = 0; k < 2; k++) {
        hsize_t d[3] = {1000000000, 1, 1};
        hid_t s = H5Screate_simple(k ? 1 : 3, d, NULL);
        hid_t ds = H5Dcreate2(f, names[k], k ? H5T_STD_I64LE : H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert(ds >= 0);
        H5Dclose(ds);
        H5Sclose(s);
    }
    H5Fclose(f);
    vt_dataset *ds = NULL;
    ck_assert_int_eq(vt_dataset_open(&ds, p, "train", NULL, NULL, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "empty.h5: dataset /labels claims 1000000000 values of 8 bytes but stores 0 bytes"),
                  "%s", vt_errmsg());
}
END_TEST

/* a flipped byte in the chunk dimensions of the layout message (no checksum in this file format):
 * a chunk larger than the dataset made H5Dread write past its buffers; refused at open now */
START_TEST(hdf5_corrupt_chunk_dims)
{
    char path[512];
    snprintf(path, sizeof path, "%s/c.h5", dir);
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    enum { N = 300, H = 12, W = 20 };   /* chunks of ceil(65536 / 240) = 274 rows */
    static uint8_t img[N * H * W];
    for (int i = 0; i < N * H * W; i++) img[i] = (uint8_t)(i * 7);
    int64_t lab[N] = {0};
    ck_assert_int_eq(vt_h5_write_u8(f, "/train/images", img, 4, (int64_t[]){N, H, W, 1}, 4), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/train/labels", lab, 1, (int64_t[]){N}), VT_OK);
    vt_h5_close(f);
    /* the layout message's chunk dimensions: 274, 12, 20, 1 as little-endian uint32 */
    static const uint8_t dims[16] = {274 & 255, 274 >> 8, 0, 0, H, 0, 0, 0, W, 0, 0, 0, 1, 0, 0, 0};
    long at = find_bytes(path, dims, sizeof dims);
    ck_assert_msg(at > 0, "chunk dimensions not found in %s", path);
    vt_dataset *ds;
    ck_assert_msg(vt_dataset_open(&ds, path, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    vt_dataset_close(ds);
    xor_byte(path, at + 1, 0xff);   /* 274 = 0x0112 -> 0xfe12 = 65042 rows per chunk, in a dataset of 300 */
    expect_refused(path, "train", NULL, "c.h5", "/train/images", "chunks of (65042, 12, 20, 1)", "(300, 12, 20, 1)",
                   NULL);
}
END_TEST

typedef struct {
    vt_dataset *ds;
    int r;
    char msg[1024];   /* vt_errmsg() of the thread */
} read_job;

static void *read_sample0(void *arg)
{
    read_job *j = arg;
    uint8_t pix[240];
    int label;
    j->r = j->ds->read(j->ds, 0, pix, &label);
    snprintf(j->msg, sizeof j->msg, "%s", vt_errmsg());
    return NULL;
}

/* a corrupted chunk read from another thread (as the loader's workers do) is an error with our
 * message only: HDF5's own error printing is off in that thread too (it is per thread in thread-safe
 * builds of HDF5) */
START_TEST(hdf5_bad_chunk_in_thread_is_quiet)
{
    char path[512], errp[512];
    snprintf(path, sizeof path, "%s/b.h5", dir);
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    enum { N = 600, H = 12, W = 20 };
    static uint8_t img[N * H * W];
    vt_rng r;
    vt_rng_seed(&r, 1);
    for (int i = 0; i < N * H * W; i++) img[i] = (uint8_t)(vt_rng_u64(&r) & 15);
    int64_t lab[N] = {0};
    ck_assert_int_eq(vt_h5_write_u8(f, "/train/images", img, 4, (int64_t[]){N, H, W, 1}, 4), VT_OK);
    ck_assert_int_eq(vt_h5_write_i64(f, "/train/labels", lab, 1, (int64_t[]){N}), VT_OK);
    vt_h5_close(f);
    /* where the first chunk's deflated bytes are, and a few of them flipped */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(h, "/train/images", H5P_DEFAULT);
    hsize_t off[4] = {0, 0, 0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask;
    ck_assert_int_ge(H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &size), 0);
    H5Dclose(d);
    H5Fclose(h);
    ck_assert_int_gt(size, 64);
    for (int k = 0; k < 8; k++) xor_byte(path, (long)(addr + size / 2 + (hsize_t)k), 0x5a);
    vt_dataset *ds;
    ck_assert_msg(vt_dataset_open(&ds, path, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    /* stderr to a file while the thread reads */
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    read_job j = {ds, VT_OK, ""};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, read_sample0, &j), 0);
    pthread_join(t, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    vt_dataset_close(ds);
    ck_assert_int_eq(j.r, VT_ERR);
    ck_assert_msg(strstr(j.msg, "b.h5") && strstr(j.msg, "image 0"), "%s", j.msg);
    FILE *e = fopen(errp, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, e);
    text[n] = '\0';
    fclose(e);
    ck_assert_msg(strstr(text, "HDF5-DIAG") == NULL, "HDF5 printed its error stack:\n%s", text);
}
END_TEST





/* packing into a file through vt_pack_file_*: a failure (here the file-size limit, as a full disk)
 * leaves the old file as it was and no partial file; success replaces it */
START_TEST(pack_file_atomic)
{
    write_noise_idx(dir, 2);
    char out[512], tmp[600];
    snprintf(out, sizeof out, "%s/x.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.partial", out);
    vt_pack_file pf;
    /* a folder is not a file name; an existing file that is not HDF5 (a data file, a config) is not replaced */
    ck_assert_int_eq(vt_pack_file_begin(&pf, dir, NULL), VT_ERR);
    ck_assert(pf.refused);   /* a bad output name, not a failure to write */
    ck_assert_msg(strstr(vt_errmsg(), "is a folder"), "%s", vt_errmsg());
    write_text(dir, "x.h5", "keep");
    ck_assert_int_eq(vt_pack_file_begin(&pf, out, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), out) && strstr(vt_errmsg(), "exists and is not an HDF5 file"), "%s", vt_errmsg());
    expect_file_text(out, "keep");
    ck_assert_int_ne(access(tmp, F_OK), 0);
    write_small_h5(out, false);   /* an HDF5 file of another kind (a checkpoint): not a dataset to replace */
    ck_assert_int_eq(vt_pack_file_begin(&pf, out, NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "is an HDF5 file but not a dataset"), "%s", vt_errmsg());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    write_small_h5(out, true);
    long crc0 = file_crc(out);
    vt_dataset *src;
    ck_assert_int_eq(vt_dataset_open(&src, dir, "train", NULL, NULL, NULL), VT_OK);
    /* in a child process, with a file-size limit of 200 KB: writes beyond it fail with EFBIG (as on
     * a full disk; HDF5 may then be unable to close the file at all, which is safe only because it
     * does not clean up at exit: h5io.c) */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit lim;
        getrlimit(RLIMIT_FSIZE, &lim);
        lim.rlim_cur = 200 << 10;
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        char msg[1024];
        int rc = vt_pack_file_begin(&pf, out, NULL);
        if (rc == VT_OK) rc = vt_dataset_pack_h5(src, pf.file, "/train");
        if (rc == VT_OK) rc = vt_pack_file_commit(&pf);
        else vt_pack_file_abort(&pf);
        snprintf(msg, sizeof msg, "%d %s", rc, vt_errmsg());
        if (write(fds[1], msg, strlen(msg) + 1) < 0) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char msg[1024] = "";
    ssize_t got = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got > 0, "the packing process failed (status %d)", st);
    ck_assert_msg(atoi(msg) == VT_ERR && strstr(msg, "x.h5.partial") && strstr(msg, strerror(EFBIG)), "%s", msg);
    ck_assert(file_crc(out) == crc0);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* without the limit it replaces the old file */
    ck_assert_int_eq(vt_pack_file_begin(&pf, out, NULL), VT_OK);
    ck_assert_msg(vt_dataset_pack_h5(src, pf.file, "/train") == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_pack_file_commit(&pf) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    vt_dataset *back;
    ck_assert_msg(vt_dataset_open(&back, out, "train", NULL, NULL, NULL) == VT_OK, "%s", vt_errmsg());
    same_samples(src, back);
    vt_dataset_close(back);
    vt_dataset_close(src);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("formats");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, idx_plain_and_gz);
    tcase_add_test(tc, idx_bad_files);
    tcase_add_test(tc, cifar10_and_100);
    tcase_add_test(tc, hdf5_layout);
    tcase_add_test(tc, pack_round_trip);
    tcase_add_test(tc, fashion_mnist_package);
    tcase_add_test(tc, idx_header_messages);
    tcase_add_test(tc, hdf5_corrupt_chunk_dims);
    tcase_add_test(tc, hdf5_huge_claimed_shape);
    tcase_add_test(tc, hdf5_claimed_values_not_stored);
    tcase_add_test(tc, hdf5_bad_chunk_in_thread_is_quiet);
    tcase_add_test(tc, pack_file_atomic);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tc_data_folder());
    suite_add_tcase(s, tc_data_loader());
    return tu_run(s);
}
