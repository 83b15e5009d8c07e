/* test_data_folder.c - image folders on PNG and JPEG files the test writes (libpng, libjpeg):
 * classes, labels, exact pixels, channel conversion, delivered size (DCT-scaled JPEG decode, center
 * crop), the train/val layout, and every kind of bad image, refused or skipped. */
#include "testutil.h"
#include "data/data.h"
#include "data/data_internal.h"   /* the decoders and the fit, checked directly */
#include <stdio.h>   /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

TCase *tc_data_folder(void);

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vit_folder_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* dir/a/b/... (folders made on the way); returns one of 4 static paths used in turn */
static const char *at(const char *fmt, ...)
{
    static char ring[4][1024];
    static int turn;
    char *p = ring[turn++ % 4];
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(p, sizeof ring[0], "%s/%s", dir, rel);
    for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0777);
        *s = '/';
    }
    return p;
}

/* pixel (y, x, k) of test image `seed`: varied, exact in PNG */
static uint8_t px(int seed, int y, int x, int k) { return (uint8_t)((seed * 37 + y * 11 + x * 5 + k * 80) & 255); }

/* PNG of (h, w) with c = 1 (gray), 3 (RGB) or 4 (RGBA, alpha varying) channels of px(seed) */
static void write_png(const char *path, int h, int w, int c, int seed)
{
    uint8_t *buf = malloc((size_t)h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) buf[((size_t)y * w + x) * c + k] = k == 3 ? (uint8_t)(x * 40 + 3) : px(seed, y, x, k);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = c == 1 ? PNG_FORMAT_GRAY : c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    ck_assert_msg(png_image_write_to_file(&im, path, 0, buf, 0, NULL), "%s", im.message);
    free(buf);
}

/* smooth image for JPEG: channel k of (y, x) = 20 + x + y + 30k (below 256 up to 96x64), c = 1 or 3 */
static uint8_t smooth(int y, int x, int k) { return (uint8_t)(20 + x + y + 30 * k); }

static void write_jpeg(const char *path, int h, int w, int c)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    struct jpeg_compress_struct cs;
    struct jpeg_error_mgr jerr;
    cs.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cs);
    jpeg_stdio_dest(&cs, f);
    cs.image_width = (JDIMENSION)w;
    cs.image_height = (JDIMENSION)h;
    cs.input_components = c;
    cs.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cs);
    jpeg_set_quality(&cs, 98, TRUE);
    jpeg_start_compress(&cs, TRUE);
    uint8_t *row = malloc((size_t)w * c);
    while (cs.next_scanline < cs.image_height) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) row[x * c + k] = smooth((int)cs.next_scanline, x, k);
        JSAMPROW r = row;
        jpeg_write_scanlines(&cs, &r, 1);
    }
    jpeg_finish_compress(&cs);
    jpeg_destroy_compress(&cs);
    fclose(f);
    free(row);
}

/* libjpeg's own full-size decode of a file, (h, w, c) */
static uint8_t *decode_jpeg_ref(const char *path, int c, int *h, int *w)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;
    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&d);
    *w = (int)d.output_width;
    *h = (int)d.output_height;
    uint8_t *out = malloc((size_t)*w * *h * c);
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = out + (size_t)d.output_scanline * *w * c;
        jpeg_read_scanlines(&d, &r, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    return out;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(b, 1, n, f);
    fclose(f);
}

/* copy the first keep bytes of src to dst */
static void write_cut(const char *src, const char *dst, long keep)
{
    FILE *f = fopen(src, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t *b = malloc((size_t)keep);
    ck_assert_int_eq((long)fread(b, 1, (size_t)keep, f), keep);
    fclose(f);
    write_bytes(dst, b, (size_t)keep);
    free(b);
}

static long file_size(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return (long)st.st_size;
}

static vt_dataset *open_ok(const char *path, const char *split, const vt_data_options *o)
{
    vt_dataset *ds = NULL;
    ck_assert_msg(vt_dataset_open_opts(&ds, path, split, o) == VT_OK, "%s", vt_errmsg());
    ck_assert_ptr_nonnull(ds);
    return ds;
}

static void refused(const char *path, const vt_data_options *o, const char *w1, const char *w2)
{
    vt_dataset *ds = (vt_dataset *)1;
    ck_assert_msg(vt_dataset_open_opts(&ds, path, "train", o) == VT_ERR, "%s: opened, expected a refusal (%s)", path, w1);
    ck_assert_ptr_null(ds);
    ck_assert_msg(strstr(vt_errmsg(), w1) && (!w2 || strstr(vt_errmsg(), w2)), "message: %s", vt_errmsg());
}

START_TEST(png_classes_and_pixels)
{
    /* classes sorted by name whatever the creation order; files sorted within a class */
    write_png(at("classes/bird/b.png"), 5, 6, 1, 2);           /* gray: replicated to RGB */
    write_png(at("classes/ant/2.png"), 5, 6, 3, 1);
    write_png(at("classes/ant/1.PNG"), 5, 6, 3, 0);
    write_png(at("classes/cat/rgba.png"), 5, 6, 4, 3);         /* alpha dropped */
    write_png(at("classes/cat/really_png.jpg"), 5, 6, 3, 4);   /* recognised by its bytes */
    write_bytes(at("classes/cat/notes.txt"), "x", 1);
    write_bytes(at("classes/cat/.hidden.png"), "x", 1);
    char root[512];
    snprintf(root, sizeof root, "%s/classes", dir);
    vt_dataset *ds = open_ok(root, "train", NULL);
    ck_assert_str_eq(ds->format, "folder");
    ck_assert_int_eq(ds->count, 5);
    ck_assert_int_eq(ds->num_classes, 3);
    ck_assert_str_eq(ds->class_names[0], "ant");
    ck_assert_str_eq(ds->class_names[1], "bird");
    ck_assert_str_eq(ds->class_names[2], "cat");
    ck_assert(ds->h == 5 && ds->w == 6 && ds->c == 3);
    const int seeds[5] = {0, 1, 2, 4, 3}, labels[5] = {0, 0, 1, 2, 2}, gray[5] = {0, 0, 1, 0, 0};
    uint8_t pix[90];
    for (int i = 0; i < 5; i++) {
        int label;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, labels[i]);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 6; x++)
                for (int k = 0; k < 3; k++)
                    ck_assert_msg(pix[(y * 6 + x) * 3 + k] == px(seeds[i], y, x, gray[i] ? 0 : k),
                                  "sample %d (%d, %d, %d): %d", i, y, x, k, pix[(y * 6 + x) * 3 + k]);
    }
    vt_dataset_close(ds);
    ck_assert_int_eq(vt_dataset_open(&ds, root, "test", NULL, NULL, NULL), VT_OK);
    ck_assert_ptr_null(ds);   /* no val/ or test/: no test split */
    /* one channel asked: RGB reduced to luma (ITU-R 601), gray exact */
    vt_data_options o = {.channels = 1};
    ds = open_ok(root, "train", &o);
    ck_assert_int_eq(ds->c, 1);
    int label;
    ck_assert_int_eq(ds->read(ds, 2, pix, &label), VT_OK);
    ck_assert_int_eq(pix[7], px(2, 1, 1, 0));
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_OK);
    int luma = (299 * px(0, 1, 1, 0) + 587 * px(0, 1, 1, 1) + 114 * px(0, 1, 1, 2) + 500) / 1000;
    ck_assert_int_eq(pix[7], luma);
    vt_dataset_close(ds);
    /* images in subfolders of a class belong to it, as in torchvision's ImageFolder: a folder's own files
     * first, then its subfolders in name order, depth first */
    write_png(at("classes/ant/zoo/deep/3.png"), 5, 6, 3, 5);
    write_png(at("classes/ant/sub/0.png"), 5, 6, 3, 6);
    mkdir(at("classes/bird/nothing_here"), 0777);
    ds = open_ok(root, "train", NULL);
    ck_assert_int_eq(ds->count, 7);
    const int nested[4] = {0, 1, 6, 5};   /* ant/1.PNG, ant/2.png, ant/sub/0.png, ant/zoo/deep/3.png */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, 0);
        ck_assert_msg(pix[0] == px(nested[i], 0, 0, 0), "sample %d is not the image of seed %d", i, nested[i]);
    }
    vt_dataset_close(ds);
    /* a symlink back up a class folder is walked once, not until a depth limit */
    char link[600];
    snprintf(link, sizeof link, "%s/classes/cat/loop", dir);
    ck_assert_int_eq(symlink(".", link), 0);
    snprintf(link, sizeof link, "%s/classes/cat/loop2", dir);
    ck_assert_int_eq(symlink("..", link), 0);   /* up to the root: the other classes' folders are not cat's */
    char link3[600];
    snprintf(link3, sizeof link3, "%s/classes/cat/ants", dir);
    ck_assert_int_eq(symlink("../ant", link3), 0);   /* into another class: its images keep their own label */
    ds = open_ok(root, "train", NULL);
    ck_assert_int_eq(ds->count, 7);
    vt_dataset_close(ds);
    unlink(link);
    unlink(link3);
    /* torchvision's order: folders by their whole path ("a-b" < "a/x" as '-' < '/'), files by name */
    write_png(at("ord/c/a/1.png"), 5, 6, 3, 11);
    write_png(at("ord/c/a-b/2.png"), 5, 6, 3, 12);
    write_png(at("ord/c/a/x/3.png"), 5, 6, 3, 13);
    char ord[512];
    snprintf(ord, sizeof ord, "%s/ord", dir);
    ds = open_ok(ord, "train", NULL);
    ck_assert_int_eq(ds->count, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_msg(pix[0] == px(11 + i, 0, 0, 0), "sample %d is not the image of seed %d", i, 11 + i);
    }
    vt_dataset_close(ds);
    /* classes whose images are all in subfolders are found, also in the train/val layout (train and val never
     * taken as classes) */
    write_png(at("nest/train/a/s/1.png"), 5, 6, 3, 1);
    write_png(at("nest/train/b/t/u/2.png"), 5, 6, 3, 2);
    write_png(at("nest/val/a/x/3.png"), 5, 6, 3, 3);
    char nest[512];
    snprintf(nest, sizeof nest, "%s/nest", dir);
    ck_assert_msg(vt_dataset_open(&ds, nest, "train", "auto", NULL, NULL) == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(ds->format, "folder");
    ck_assert_int_eq(ds->count, 2);
    ck_assert_int_eq(ds->num_classes, 2);
    ck_assert_str_eq(ds->class_names[0], "a");
    vt_dataset_close(ds);
    ds = open_ok(nest, "test", NULL);
    ck_assert_int_eq(ds->count, 1);
    vt_dataset_close(ds);
}
END_TEST

/* images without classes (pretraining, o.unlabelled): every image of the folder and its subfolders in torchvision's
 * walk order (the folder's own files, then its subfolders by whole path), label 0, no classes; also as train/ and
 * val/ of the split layout; refused without unlabelled, naming the folder */
START_TEST(folder_without_classes)
{
    write_png(at("u/b.png"), 5, 6, 3, 1);
    write_png(at("u/a.png"), 5, 6, 3, 0);
    write_png(at("u/x/y/d.png"), 5, 6, 3, 3);
    write_png(at("u/x/c.png"), 5, 6, 3, 2);
    mkdir(at("u/empty"), 0777);
    char root[512];
    snprintf(root, sizeof root, "%s/u", dir);
    vt_data_options o = {.unlabelled = true};
    vt_dataset *ds = open_ok(root, "train", &o);
    ck_assert_str_eq(ds->format, "folder");
    ck_assert_int_eq(ds->count, 4);
    ck_assert_int_eq(ds->num_classes, 0);
    ck_assert_ptr_null(ds->class_names);
    uint8_t pix[90];
    for (int i = 0; i < 4; i++) {
        int label = -1;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, 0);
        ck_assert_msg(pix[0] == px(i, 0, 0, 0), "sample %d is not the image of seed %d", i, i);
    }
    vt_dataset_close(ds);
    ck_assert_int_eq(vt_dataset_open_opts(&ds, root, "test", &o), VT_OK);
    ck_assert_ptr_null(ds);
    write_png(at("f/1.png"), 5, 6, 3, 0);   /* images alone: not a supervised dataset */
    snprintf(root, sizeof root, "%s/f", dir);
    refused(root, NULL, "images directly in the folder and no class folders",
            "supervised training expects class folders");
    /* with class folders beside the images, a supervised run reads the classes (as before), pretraining all images */
    write_png(at("m/top.png"), 5, 6, 3, 0);
    write_png(at("m/cls/1.png"), 5, 6, 3, 1);
    snprintf(root, sizeof root, "%s/m", dir);
    ds = open_ok(root, "train", NULL);
    ck_assert(ds->count == 1 && ds->num_classes == 1);
    vt_dataset_close(ds);
    ds = open_ok(root, "train", &o);
    ck_assert(ds->count == 2 && ds->num_classes == 0);
    vt_dataset_close(ds);
    /* train/ and val/ of images alone */
    write_png(at("s/train/1.png"), 5, 6, 3, 0);
    write_png(at("s/train/2.png"), 5, 6, 3, 1);
    write_png(at("s/val/sub/3.png"), 5, 6, 3, 2);
    write_png(at("s/val/4.png"), 5, 6, 3, 3);
    snprintf(root, sizeof root, "%s/s", dir);
    ds = open_ok(root, "train", &o);
    ck_assert_int_eq(ds->count, 2);
    vt_dataset_close(ds);
    ds = open_ok(root, "test", &o);
    ck_assert(ds->count == 2 && ds->num_classes == 0);
    int label;
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_OK);
    ck_assert_int_eq(pix[0], px(3, 0, 0, 0));
    vt_dataset_close(ds);
    char train[600];
    snprintf(train, sizeof train, "%s/train", root);
    refused(root, NULL, train, "no class folders");
}
END_TEST

START_TEST(train_val_layout)
{
    /* all gray: one channel; val lacks class b; classes come from train/ */
    write_png(at("r/train/a/1.png"), 4, 4, 1, 0);
    write_png(at("r/train/b/1.png"), 4, 4, 1, 1);
    write_png(at("r/train/b/2.png"), 4, 4, 1, 2);
    write_png(at("r/train/c/1.png"), 4, 4, 1, 3);
    write_png(at("r/val/a/x.png"), 4, 4, 1, 4);
    write_png(at("r/val/c/y.png"), 4, 4, 1, 5);
    char root[512];
    snprintf(root, sizeof root, "%s/r", dir);
    vt_dataset *tr = open_ok(root, "train", NULL), *te = open_ok(root, "test", NULL);
    ck_assert_int_eq(tr->count, 4);
    ck_assert_int_eq(te->count, 2);
    ck_assert(tr->c == 1 && te->c == 1 && te->num_classes == 3);
    uint8_t pix[16];
    int label;
    ck_assert_int_eq(te->read(te, 1, pix, &label), VT_OK);
    ck_assert_int_eq(label, 2);
    ck_assert_int_eq(pix[5], px(5, 1, 1, 0));
    vt_dataset_close(tr);
    vt_dataset_close(te);
    /* a val class the training set does not have */
    write_png(at("r/val/zebra/z.png"), 4, 4, 1, 6);
    vt_dataset *ds = (vt_dataset *)1;
    ck_assert_int_eq(vt_dataset_open_opts(&ds, root, "test", NULL), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "zebra") && strstr(vt_errmsg(), "not among the 3 training classes"), "%s",
                  vt_errmsg());
    /* more class folders than the model's classes */
    vt_data_options o = {.num_classes = 2};
    refused(root, &o, "3 class folders", "at most 2");
}
END_TEST

START_TEST(jpeg_pixels_and_sizes)
{
    /* same-size JPEGs: delivered as decoded, exactly libjpeg's decode, close to the source */
    write_jpeg(at("j/one/a.jpg"), 24, 40, 3);
    write_jpeg(at("j/two/b.jpeg"), 24, 40, 1);   /* gray JPEG: replicated */
    char root[512];
    snprintf(root, sizeof root, "%s/j", dir);
    vt_dataset *ds = open_ok(root, "train", NULL);
    ck_assert(ds->h == 24 && ds->w == 40 && ds->c == 3);
    uint8_t *pix = malloc(24 * 40 * 3);
    for (int i = 0; i < 2; i++) {
        int label, h, w, c = i == 0 ? 3 : 1;
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        ck_assert_int_eq(label, i);
        uint8_t *ref = decode_jpeg_ref(at(i == 0 ? "j/one/a.jpg" : "j/two/b.jpeg"), c, &h, &w);
        int worst = 0;
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 40; x++)
                for (int k = 0; k < 3; k++) {
                    int got = pix[(y * 40 + x) * 3 + k];
                    ck_assert_int_eq(got, ref[(y * 40 + x) * c + (c == 1 ? 0 : k)]);
                    int d = abs(got - smooth(y, x, c == 1 ? 0 : k));
                    worst = d > worst ? d : worst;
                }
        ck_assert_msg(worst <= 6, "JPEG %d differs from its source by %d", i, worst);
        free(ref);
    }
    vt_dataset_close(ds);
    free(pix);
    /* mixed sizes: 256x256 by default; a 96x64 JPEG asked at 16x16 decodes at 1/4 scale (DCT) and is
     * center-cropped (the 64x64 region at x0 = 16): output (oy, ox) averages the 4x4 block centered
     * at source (4 oy + 1.5, 16 + 4 ox + 1.5), within JPEG error */
    write_jpeg(at("j/one/big.jpg"), 64, 96, 3);
    ds = open_ok(root, "train", NULL);
    ck_assert(ds->h == 256 && ds->w == 256 && ds->count == 3);
    vt_dataset_close(ds);
    vt_data_options o = {.image_h = 16, .image_w = 16};
    ds = open_ok(root, "train", &o);
    uint8_t small[16 * 16 * 3];
    int label;
    ck_assert_int_eq(ds->read(ds, 1, small, &label), VT_OK);   /* one/a.jpg, one/big.jpg, two/b.jpeg */
    double sum = 0;
    int worst = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            for (int k = 0; k < 3; k++) {
                double sy = (y + 0.5) * 4 - 0.5, sx = 16 + (x + 0.5) * 4 - 0.5;   /* region 64x64 at x0 = 16 */
                double want = 20 + sx + sy + 30 * k;
                int d = (int)fabs(small[(y * 16 + x) * 3 + k] - want);
                sum += d;
                worst = d > worst ? d : worst;
            }
    ck_assert_msg(worst <= 12 && sum / 768 < 3, "resized JPEG: worst %d, mean %.2f", worst, sum / 768);
    vt_dataset_close(ds);
}
END_TEST

START_TEST(center_crop_exact)
{
    /* an 8x4 (w x h) PNG delivered at 4x4: the centered 4x4 region, copied exactly */
    write_png(at("c/k/wide.png"), 4, 8, 3, 7);
    write_png(at("c/k/tall.png"), 12, 4, 3, 8);
    char root[512];
    snprintf(root, sizeof root, "%s/c", dir);
    vt_data_options o = {.image_h = 4, .image_w = 4};
    vt_dataset *ds = open_ok(root, "train", &o);
    uint8_t pix[48];
    int label;
    ck_assert_int_eq(ds->read(ds, 1, pix, &label), VT_OK);   /* tall < wide */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int k = 0; k < 3; k++) ck_assert_int_eq(pix[(y * 4 + x) * 3 + k], px(7, y, x + 2, k));
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_OK);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int k = 0; k < 3; k++) ck_assert_int_eq(pix[(y * 4 + x) * 3 + k], px(8, y + 4, x, k));
    vt_dataset_close(ds);
}
END_TEST

START_TEST(bad_images)
{
    char root[512];
    snprintf(root, sizeof root, "%s/b", dir);
    write_png(at("b/a/ok.png"), 4, 4, 3, 0);
    write_png(at("b/a/ok2.png"), 4, 4, 3, 1);
    /* an empty class folder */
    mkdir(at("b/empty"), 0777);
    refused(root, NULL, "b/empty", "empty class folder");
    rmdir(at("b/empty"));
    /* not an image at all: refused by default, skipped on request */
    write_bytes(at("b/a/broken.jpg"), "hello, world", 12);
    refused(root, NULL, "broken.jpg", "neither a JPEG nor a PNG");
    vt_data_options skip = {.bad_images = VT_BAD_SKIP, .image_h = 4, .image_w = 4}, refuse = {.image_h = 4, .image_w = 4};
    vt_dataset *ds = open_ok(root, "train", &skip);
    ck_assert_int_eq(ds->count, 2);
    ck_assert_int_eq(ds->skipped, 1);
    ck_assert_msg(strstr(ds->skip_note, "broken.jpg") != NULL, "%s", ds->skip_note);
    vt_dataset_close(ds);
    /* a class every image of which fails: refused even when skipping (it would be trained on nothing) */
    write_bytes(at("b/z/only.png"), "not a png", 9);
    vt_dataset *none = NULL;
    ck_assert_int_eq(vt_dataset_open_opts(&none, root, "train", &skip), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "b/z: none of its 1 image decodes"), "%s", vt_errmsg());
    unlink(at("b/z/only.png"));
    rmdir(at("b/z"));
    unlink(at("b/a/broken.jpg"));
    /* JPEG magic with a damaged header */
    static const char hdr[] = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01garbage";
    write_bytes(at("b/a/header.jpg"), hdr, sizeof hdr - 1);
    refused(root, NULL, "header.jpg", "not a decodable JPEG");
    unlink(at("b/a/header.jpg"));
    /* a PNG cut short inside its header */
    write_png(at("tmp.png"), 4, 4, 3, 0);
    write_cut(at("tmp.png"), at("b/a/cut.png"), 20);
    refused(root, NULL, "cut.png", "PNG");
    unlink(at("b/a/cut.png"));
    /* a JPEG cut in its data: the header probes fine, the decode fails at read time */
    write_jpeg(at("tmp.jpg"), 64, 64, 3);
    write_cut(at("tmp.jpg"), at("b/a/half.jpg"), file_size(at("tmp.jpg")) - 40);   /* headers kept, data cut */
    ds = open_ok(root, "train", &refuse);
    ck_assert_int_eq(ds->count, 3);   /* half.jpg, ok.png, ok2.png */
    uint8_t pix[4 * 4 * 3];
    int label;
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "half.jpg") && strstr(vt_errmsg(), "Premature end"), "%s", vt_errmsg());
    /* ... and through the loader, from a worker thread */
    vt_transform tf = {.out_c = 3, .out_h = 4, .out_w = 4, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    vt_loader_config lc = {.ds = ds, .tf = tf, .batch = 3, .workers = 2, .prefetch = 2};
    vt_loader *l;
    ck_assert_int_eq(vt_loader_create(&l, &lc), VT_OK);
    ck_assert_int_eq(vt_loader_start(l, 0, 0), VT_OK);
    float *x;
    int *y, bs;
    ck_assert_int_eq(vt_loader_next(l, &x, &y, NULL, &bs), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "half.jpg") != NULL, "%s", vt_errmsg());
    vt_loader_free(l);
    vt_dataset_close(ds);
    /* skipping: replaced by the next sample that decodes */
    ds = open_ok(root, "train", &skip);
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_OK);
    ck_assert_int_eq(ds->skipped, 1);
    ck_assert_msg(strstr(ds->skip_note, "half.jpg") != NULL, "%s", ds->skip_note);
    ck_assert_int_eq(pix[5], px(0, 0, 1, 2));   /* ok.png */
    ck_assert_int_eq(ds->read(ds, 0, pix, &label), VT_OK);   /* met again (next epoch): counted once */
    ck_assert_int_eq(ds->skipped, 1);
    vt_dataset_close(ds);
    /* a folder of nothing but bad images, skipping */
    write_bytes(at("z/k/a.png"), "not a png", 9);
    snprintf(root, sizeof root, "%s/z", dir);
    refused(root, &skip, "none of its 1 image decodes", "a.png");
}
END_TEST

/* a header claiming 60000x60000 is refused before the decoder allocates for it (10.8 GB), whoever reads the
 * file (found by fuzzing vt_image_file_read: tests/fuzz/regressions/png/claims-60000x60000) */
static unsigned long png_crc_of(const uint8_t *b, size_t n) { return crc32(0, b, (uInt)n); }

static void patch_file(const char *path, long off, const uint8_t *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, SEEK_SET);
    ck_assert_int_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* a small PNG at path whose header claims w x h (its IHDR patched, the CRC recomputed; the pixel data stays
 * the 3x3 image's) */
static void png_claiming(const char *p, uint32_t w, uint32_t h)
{
    write_png(p, 3, 3, 3, 1);
    uint8_t ihdr[17];   /* "IHDR" + 13 bytes at offset 12: width, height at 16 and 20; the CRC at 29 */
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 12, SEEK_SET);
    ck_assert_int_eq(fread(ihdr, 1, 17, f), 17);
    fclose(f);
    for (int k = 0; k < 4; k++) {
        ihdr[4 + k] = (uint8_t)(w >> (24 - 8 * k));
        ihdr[8 + k] = (uint8_t)(h >> (24 - 8 * k));
    }
    uint32_t crc = (uint32_t)png_crc_of(ihdr, 17);
    const uint8_t cb[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    patch_file(p, 12, ihdr, 17);
    patch_file(p, 29, cb, 4);
}

/* a small JPEG at path whose SOF0 claims w x h (at most 65535 each) */
static void jpeg_claiming(const char *p, int w, int h)
{
    write_jpeg(p, 8, 8, 3);
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    long sof = -1;   /* FF C0, length, precision, then height and width */
    for (size_t k = 0; sof < 0 && k + 9 < n; k++)
        if (buf[k] == 0xff && buf[k + 1] == 0xc0) sof = (long)k;
    ck_assert(sof > 0);
    const uint8_t hw[4] = {(uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w};
    patch_file(p, sof + 5, hw, 4);
}

START_TEST(huge_header_refused_before_decode)
{
    char p[400];
    uint8_t *pix = NULL;
    int h, w;
    snprintf(p, sizeof p, "%s/big.png", dir);
    png_claiming(p, 60000, 60000);
    ck_assert_int_eq(vt_image_file_read(p, 3, &pix, &h, &w), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "image size 60000x60000 (expected 1 to 2^28 pixels)"), "%s", vt_errmsg());
    ck_assert_ptr_null(pix);
    snprintf(p, sizeof p, "%s/big.jpg", dir);
    jpeg_claiming(p, 60000, 60000);
    ck_assert_int_eq(vt_image_file_read(p, 3, &pix, &h, &w), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "image size 60000x60000 (expected 1 to 2^28 pixels)"), "%s", vt_errmsg());
    ck_assert_ptr_null(pix);
}
END_TEST

/* a small file claiming 16000 x 16000 (under 2^28: a 746 KB PNG of that size took vit-train to 1.78 GB, vit-data
 * pack --size 28 to 3.77 GB) is refused by [data] max_image_pixels (Pillow's MAX_IMAGE_PIXELS by default)
 * before any decode, naming the file, its size and the key; skipped under bad_images = skip; accepted by the
 * header check when the key is raised */
START_TEST(image_pixel_cap)
{
    write_png(at("cap/a/ok.png"), 4, 4, 3, 1);
    png_claiming(at("cap/b/big.png"), 16000, 16000);
    write_png(at("cap/b/ok.png"), 4, 4, 3, 2);
    write_png(at("capj/a/ok.png"), 4, 4, 3, 1);
    jpeg_claiming(at("capj/b/big.jpg"), 16000, 16000);
    write_png(at("capj/b/ok.png"), 4, 4, 3, 2);
    const char *roots[2] = {"cap", "capj"}, *names[2] = {"big.png", "big.jpg"};
    for (int k = 0; k < 2; k++) {
        char root[400];
        snprintf(root, sizeof root, "%s/%s", dir, roots[k]);
        vt_data_options o = {.image_h = 4, .image_w = 4};
        refused(root, &o, "image size 16000x16000 is 256000000 pixels, over [data] max_image_pixels = 89478485",
                names[k]);
        ck_assert_msg(strstr(vt_errmsg(), "decoded whole this one takes 732 MB"), "%s", vt_errmsg());
        o.max_image_pixels = 1000;   /* the user's own cap */
        refused(root, &o, "over [data] max_image_pixels = 1000", names[k]);
        o.max_image_pixels = 0;
        o.bad_images = VT_BAD_SKIP;
        vt_dataset *ds = open_ok(root, "train", &o);
        ck_assert_int_eq(ds->count, 2);
        ck_assert_int_eq(ds->skipped, 1);
        ck_assert_msg(strstr(ds->skip_note, names[k]) && strstr(ds->skip_note, "max_image_pixels"), "%s", ds->skip_note);
        vt_dataset_close(ds);
        o.bad_images = VT_BAD_REFUSE;
        o.max_image_pixels = 1 << 28;   /* raised: the header passes (the body is the small image's) */
        ds = open_ok(root, "train", &o);
        ck_assert_int_eq(ds->count, 3);
        vt_dataset_close(ds);
    }
}
END_TEST

/* k x k means (rounded) of a (h, w, c) image, as the PNG decoder reduces: (h / k, w / k, c) */
static uint8_t *box_means(const uint8_t *src, int h, int w, int c, int k)
{
    int oh = h / k, ow = w / k;
    uint8_t *o = malloc((size_t)oh * ow * c);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int j = 0; j < c; j++) {
                unsigned s = 0;
                for (int dy = 0; dy < k; dy++)
                    for (int dx = 0; dx < k; dx++) s += src[((size_t)(y * k + dy) * w + x * k + dx) * c + j];
                o[((size_t)y * ow + x) * c + j] = (uint8_t)((s + (unsigned)(k * k) / 2) / (unsigned)(k * k));
            }
    return o;
}

/* a PNG at least twice the size its reader needs is reduced by k x k means as its rows are read (the largest
 * k whose result still covers the fit, as JPEG's DCT scaling): the same pixels as means of the full decode,
 * and through an image folder the same sample as fitting those means */
START_TEST(png_reduced_while_read)
{
    char p[400];
    snprintf(p, sizeof p, "%s/r.png", dir);
    for (int c = 1; c <= 3; c += 2) {
        write_png(p, 48, 64, c, 3);
        uint8_t *full, *red;
        int h, w, rh, rw;
        ck_assert_int_eq(vt_png_decode(p, c, 0, 0, &full, &h, &w), VT_OK);
        ck_assert(h == 48 && w == 64);
        /* 8x8 after the fit needs 8 x 10.7 of 48 x 64: k = 5 (k = 6 would give 10 columns) */
        ck_assert_int_eq(vt_png_decode(p, c, 8, 8, &red, &rh, &rw), VT_OK);
        ck_assert_int_eq(rh, 9);
        ck_assert_int_eq(rw, 12);
        uint8_t *want = box_means(full, 48, 64, c, 5);
        ck_assert_mem_eq(red, want, (size_t)9 * 12 * c);
        free(red);
        ck_assert_int_eq(vt_png_decode(p, c, 30, 30, &red, &rh, &rw), VT_OK);   /* under twice: whole */
        ck_assert(rh == 48 && rw == 64);
        ck_assert_mem_eq(red, full, (size_t)48 * 64 * c);
        free(red);
        if (c == 3) {   /* through a folder: the fit of the means */
            write_png(at("red/a/r.png"), 48, 64, 3, 3);
            char root[400];
            snprintf(root, sizeof root, "%s/red", dir);
            vt_data_options o = {.image_h = 8, .image_w = 8};
            vt_dataset *ds = open_ok(root, "train", &o);
            uint8_t got[8 * 8 * 3], fit[8 * 8 * 3];
            int label;
            ck_assert_int_eq(ds->read(ds, 0, got, &label), VT_OK);
            ck_assert_int_eq(vt_image_fit_u8(want, 9, 12, 3, fit, 8, 8), VT_OK);
            ck_assert_mem_eq(got, fit, sizeof got);
            vt_dataset_close(ds);
        }
        free(want);
        free(full);
    }
}
END_TEST

/* a 16000x16000 PNG of a few hundred KB decoded for a 32x32 sample: rows reduced as they are read, the peak
 * memory grows by far less than its 256 MB of pixels (a whole decode took vit-data pack --size 28 to 3.77 GB
 * for the RGB one); the pixels are the 500x500 means */
START_TEST(huge_png_decodes_in_little_memory)
{
    char p[400];
    snprintf(p, sizeof p, "%s/huge.png", dir);
    const int S = 16000;
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R', 0, 0, S >> 8, S & 255, 0, 0, S >> 8, S & 255, 8, 0, 0, 0, 0};
    fwrite("\x89PNG\r\n\x1a\n\0\0\0\x0d", 1, 12, f);
    fwrite(ihdr, 1, 17, f);
    uint32_t crc = (uint32_t)png_crc_of(ihdr, 17);
    uint8_t cb[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    fwrite(cb, 1, 4, f);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
    static uint8_t row[16001], chunk[4 + (1 << 16)];
    memcpy(chunk, "IDAT", 4);
    for (int y = 0; y <= S; y++) {   /* y == S: the end of the stream */
        row[0] = 0;   /* filter: none */
        memset(row + 1, (y / 500) * 7 + 20, S);   /* block row b of the 32x32 means: 7b + 20 */
        z.next_in = row;
        z.avail_in = y < S ? sizeof row : 0;
        int flush = y < S ? Z_NO_FLUSH : Z_FINISH, zr;
        do {
            z.next_out = chunk + 4;
            z.avail_out = 1 << 16;
            zr = deflate(&z, flush);
            uint32_t n = (1u << 16) - z.avail_out;
            if (n == 0) continue;
            uint8_t nb[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
            fwrite(nb, 1, 4, f);
            fwrite(chunk, 1, n + 4, f);
            crc = (uint32_t)png_crc_of(chunk, n + 4);
            uint8_t c4[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
            fwrite(c4, 1, 4, f);
        } while (z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    }
    deflateEnd(&z);
    fwrite("\0\0\0\0IEND\xae\x42\x60\x82", 1, 12, f);
    long size = ftell(f);
    fclose(f);
    ck_assert_int_lt(size, 2 << 20);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    uint8_t *pix;
    int h, w;
    ck_assert_msg(vt_png_decode(p, 1, 32, 32, &pix, &h, &w) == VT_OK, "%s", vt_errmsg());
    getrusage(RUSAGE_SELF, &after);
    ck_assert(h == 32 && w == 32);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) ck_assert_int_eq(pix[y * 32 + x], y * 7 + 20);
    free(pix);
    ck_assert_msg(after.ru_maxrss - before.ru_maxrss < 100 * 1024, "peak RSS grew by %ld KB", after.ru_maxrss - before.ru_maxrss);
}
END_TEST

TCase *tc_data_folder(void)
{
    TCase *tc = tcase_create("folder");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, png_classes_and_pixels);
    tcase_add_test(tc, train_val_layout);
    tcase_add_test(tc, folder_without_classes);
    tcase_add_test(tc, jpeg_pixels_and_sizes);
    tcase_add_test(tc, center_crop_exact);
    tcase_add_test(tc, bad_images);
    tcase_add_test(tc, huge_header_refused_before_decode);
    tcase_add_test(tc, image_pixel_cap);
    tcase_add_test(tc, png_reduced_while_read);
    tcase_add_test(tc, huge_png_decodes_in_little_memory);
    return tc;
}
