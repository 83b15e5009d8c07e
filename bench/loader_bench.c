/* vit-loader-bench - images/s of the data loader alone (read, decode, transform, batch), built from a
 * config exactly as vit-train builds its training loader; and a writer of synthetic image folders of
 * JPEGs so that the figure for a 224x224 JPEG folder can be reproduced without downloads. */
#include "train/train.h"
#include "../tools/cli.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>   /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vit-loader-bench (--config FILE | --data PATH) [--set S.K=V ...] [--size S] [--chans C]\n"
            "                        [--batch B] [--workers W] [--batches N] [--rrc] [--split train|test]\n"
            "       vit-loader-bench --make-jpeg-folder DIR [--count N] [--size S] [--classes K] [--quality Q]\n"
            "\n"
            "Times N batches (default 50, after 2 warm-up batches) taken from the loader alone, built by the\n"
            "same code as vit-train's training loader (shuffled, augmented; --split test: the evaluation\n"
            "loader), and prints the dataset open time, images/s and ms/batch. --data PATH uses the default\n"
            "config with that path; --size (model input, default the config's img_size), --chans ([model]\n"
            "in_chans), --batch, --workers and --rrc (random_resized_crop = true) override the config.\n"
            "\n"
            "--make-jpeg-folder writes DIR/<class>/img_<n>.jpg: N (default 2000) synthetic S x S (default 224)\n"
            "RGB JPEGs in K (default 10) classes, smooth shapes plus noise, quality Q (default 90).\n"
            "\n"
            "examples:\n"
            "  vit-loader-bench --config configs/fashion_mnist.ini\n"
            "  vit-loader-bench --make-jpeg-folder /tmp/jpeg224 --count 2000 --size 224\n"
            "  vit-loader-bench --data /tmp/jpeg224 --size 224 --rrc --batch 128 --workers 2\n");
}

/* ---------------------------------------------------------------- synthetic JPEG folder */

/* pixel rows of one image: a class-coloured background gradient, a few soft ellipses, noise */
static void synth_image(uint8_t *img, int S, int cls, int classes, vt_rng *r)
{
    double base[3], grad[3];
    for (int k = 0; k < 3; k++) {
        base[k] = 60 + 140 * (0.5 + 0.5 * sin(2 * M_PI * cls / classes + 2.1 * k));
        grad[k] = 60 * (vt_rng_uniform(r) - 0.5);
    }
    double ang = 2 * M_PI * vt_rng_uniform(r), ca = cos(ang), sa = sin(ang);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double t = ((x - S / 2.0) * ca + (y - S / 2.0) * sa) / S;
            for (int k = 0; k < 3; k++) {
                double v = base[k] + grad[k] * t * 2;
                img[((size_t)y * S + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    int blobs = 2 + (int)(vt_rng_u64(r) % 4);
    for (int b = 0; b < blobs; b++) {
        double cx = S * vt_rng_uniform(r), cy = S * vt_rng_uniform(r);
        double rx = S * (0.05 + 0.25 * vt_rng_uniform(r)), ry = S * (0.05 + 0.25 * vt_rng_uniform(r));
        double col[3];
        for (int k = 0; k < 3; k++) col[k] = 255 * vt_rng_uniform(r);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dx = (x - cx) / rx, dy = (y - cy) / ry, d = dx * dx + dy * dy;
                if (d >= 1.2) continue;
                double a = d < 0.8 ? 0.85 : 0.85 * (1.2 - d) / 0.4;   /* soft edge */
                for (int k = 0; k < 3; k++) {
                    uint8_t *p = &img[((size_t)y * S + x) * 3 + k];
                    *p = (uint8_t)lrint((1 - a) * *p + a * col[k]);
                }
            }
    }
    for (size_t i = 0; i < (size_t)S * S * 3; i++) {
        int v = img[i] + (int)(vt_rng_u64(r) % 17) - 8;
        img[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* libjpeg's default error handler exits the process; a bench tool may do that, but say where */
static int write_jpeg(const char *path, const uint8_t *img, int S, int quality)
{
    FILE *f = fopen(path, "wb");
    if (!f) return vt_err("%s: cannot write: %s", path, strerror(errno));
    struct jpeg_compress_struct cs;
    struct jpeg_error_mgr jerr;
    cs.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cs);
    jpeg_stdio_dest(&cs, f);
    cs.image_width = (JDIMENSION)S;
    cs.image_height = (JDIMENSION)S;
    cs.input_components = 3;
    cs.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cs);
    jpeg_set_quality(&cs, quality, TRUE);
    jpeg_start_compress(&cs, TRUE);
    while (cs.next_scanline < cs.image_height) {
        JSAMPROW row = (JSAMPROW)(img + (size_t)cs.next_scanline * S * 3);
        jpeg_write_scanlines(&cs, &row, 1);
    }
    jpeg_finish_compress(&cs);
    jpeg_destroy_compress(&cs);
    if (fclose(f) != 0) return vt_err("%s: cannot write: %s", path, strerror(errno));
    return VT_OK;
}

static int make_dir(const char *p)
{
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return vt_err("%s: cannot create: %s", p, strerror(errno));
    return VT_OK;
}

static int make_jpeg_folder(const char *dir, int count, int S, int classes, int quality)
{
    if (make_dir(dir) != VT_OK) return VT_ERR;
    uint8_t *img = malloc((size_t)S * S * 3);
    if (!img) return vt_err("out of memory");
    char p[4096];
    for (int k = 0; k < classes; k++) {
        snprintf(p, sizeof p, "%s/class%02d", dir, k);
        if (make_dir(p) != VT_OK) {
            free(img);
            return VT_ERR;
        }
    }
    vt_rng r;
    vt_rng_seed(&r, 12345);
    double bytes = 0, t0 = vt_now();
    for (int i = 0; i < count; i++) {
        int cls = i % classes;
        synth_image(img, S, cls, classes, &r);
        snprintf(p, sizeof p, "%s/class%02d/img_%06d.jpg", dir, cls, i);
        if (write_jpeg(p, img, S, quality) != VT_OK) {
            free(img);
            return VT_ERR;
        }
        struct stat st;
        if (stat(p, &st) == 0) bytes += (double)st.st_size;
    }
    free(img);
    printf("wrote %d JPEGs of %dx%d in %d classes to %s (%.1f MB, %.1f KB each, %.1f s)\n", count, S, S, classes, dir,
           bytes / 1e6, bytes / 1e3 / (count ? count : 1), vt_now() - t0);
    return VT_OK;
}

/* ---------------------------------------------------------------- timing */

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-loader-bench")) return 2;
    const char *cfgpath = NULL, *data = NULL, *mkdir_jpeg = NULL, *split = "train", *sets[64];
    int nsets = 0, size = 0, chans = 0, batch = 0, workers = -1, batches = 50, count = 2000, classes = 10, quality = 90;
    bool rrc = false;
    enum { O_MAKE = 256, O_COUNT, O_CLASSES, O_QUALITY, O_SPLIT, O_CHANS };
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'},     {"data", required_argument, 0, 'd'},
        {"set", required_argument, 0, 's'},        {"size", required_argument, 0, 'S'},
        {"batch", required_argument, 0, 'b'},      {"workers", required_argument, 0, 'w'},
        {"batches", required_argument, 0, 'n'},    {"rrc", no_argument, 0, 'r'},
        {"make-jpeg-folder", required_argument, 0, O_MAKE}, {"count", required_argument, 0, O_COUNT},
        {"classes", required_argument, 0, O_CLASSES}, {"quality", required_argument, 0, O_QUALITY},
        {"split", required_argument, 0, O_SPLIT},  {"chans", required_argument, 0, O_CHANS},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    static const char *const splits[] = {"train", "test", NULL};
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "c:d:s:S:b:w:n:rh", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': cfgpath = optarg; break;
        case 'd': data = optarg; break;
        case 's':
            if (nsets == 64) {
                fprintf(stderr, "vit-loader-bench: too many --set options (64 at most)\n");
                return 2;
            }
            sets[nsets++] = optarg;
            break;
        case 'S': bad |= !cli_int("vit-loader-bench", "--size", optarg, 1, 65536, &size); break;
        case 'b': bad |= !cli_int("vit-loader-bench", "--batch", optarg, 1, 1 << 20, &batch); break;
        case 'w': bad |= !cli_int("vit-loader-bench", "--workers", optarg, 0, 256, &workers); break;
        case 'n': bad |= !cli_int("vit-loader-bench", "--batches", optarg, 1, 1000000, &batches); break;
        case 'r': rrc = true; break;
        case O_MAKE: mkdir_jpeg = optarg; break;
        case O_COUNT: bad |= !cli_int("vit-loader-bench", "--count", optarg, 1, 1 << 24, &count); break;
        case O_CLASSES: bad |= !cli_int("vit-loader-bench", "--classes", optarg, 1, 65536, &classes); break;
        case O_QUALITY: bad |= !cli_int("vit-loader-bench", "--quality", optarg, 1, 100, &quality); break;
        case O_SPLIT: bad |= !cli_choice("vit-loader-bench", "--split", optarg, splits), split = optarg; break;
        case O_CHANS: bad |= !cli_int("vit-loader-bench", "--chans", optarg, 1, 64, &chans); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   /* getopt has named the unknown option */
        }
    }
    if (bad) return 2;
    if (optind < argc) {
        fprintf(stderr, "vit-loader-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (mkdir_jpeg) {
        if (size > 16384) {
            fprintf(stderr, "vit-loader-bench: --size %d: expected at most 16384 for --make-jpeg-folder\n", size);
            return 2;
        }
        if (make_jpeg_folder(mkdir_jpeg, count, size ? size : 224, classes, quality) != VT_OK) {
            fprintf(stderr, "vit-loader-bench: %s\n", vt_errmsg());
            return 1;
        }
        return 0;
    }
    if (!cfgpath == !data) {
        fprintf(stderr, "vit-loader-bench: %s\n", cfgpath ? "--config and --data exclude each other: give one"
                                                        : "expected --config FILE or --data PATH");
        usage(stderr);
        return 2;
    }

    /* the config: as vit-train resolves it, then the command line's overrides */
    vt_config c;
    vt_config_defaults(&c);
    if (cfgpath && vt_config_load(&c, cfgpath) != VT_OK) goto fail;
    if (data) snprintf(c.data_path, sizeof c.data_path, "%s", data);
    for (int i = 0; i < nsets; i++)
        if (vt_config_set(&c, sets[i]) != VT_OK) goto fail;
    if (size) c.img_size = size, c.img_h = c.img_w = 0;
    if (chans) c.in_chans = chans;
    if (batch) c.batch_size = c.eval_batch_size = batch;
    if (workers >= 0) c.workers = workers;
    if (rrc) c.random_resized_crop = true;
    if (vt_config_validate(&c) != VT_OK) goto fail;
    vt_vit_config mc;
    if (vt_config_model(&c, &mc) != VT_OK) goto fail;
    bool train = strcmp(split, "train") == 0;

    double t0 = vt_now();
    vt_dataset *ds = NULL;
    if (vt_config_open_data(&c, &mc, split, &ds) != VT_OK) goto fail;
    if (!ds) {
        fprintf(stderr, "vit-loader-bench: %s: no %s split\n", c.data_path, split);
        return 1;
    }
    double t_open = vt_now() - t0;
    vt_data_warn_skipped(stdout, "", ds, split);
    int64_t skipped0 = ds->skipped;
    vt_loader *l;
    if (vt_config_loader(&c, &mc, ds, NULL, 0, train, (uint64_t)c.seed, &l) != VT_OK) goto fail;
    int64_t per_epoch = vt_loader_batches(l);
    if (per_epoch < 1) {
        vt_err("%s: %lld samples make no batch of %d", ds->path, (long long)ds->count, c.batch_size);
        goto fail;
    }
    printf("data: %s (%s) %s split, %lld images stored %dx%dx%d -> model input %dx%dx%d | batch %d, %d workers, "
           "prefetch %d%s%s%s (opened in %.2f s)\n",
           ds->path, ds->format, split, (long long)ds->count, ds->h, ds->w, ds->c, mc.in_chans, mc.img_h, mc.img_w,
           train ? c.batch_size : (c.eval_batch_size ? c.eval_batch_size : c.batch_size), c.workers, c.prefetch,
           train && c.random_resized_crop ? ", random-resized-crop" : "", train && c.hflip ? ", hflip" : "",
           train && c.crop_padding ? ", crop padding" : "", t_open);

    /* 2 warm-up batches, then N timed; a new epoch starts whenever one ends */
    int64_t epoch = 0, images = 0;
    int done = 0;
    double t_start = 0;
    if (vt_loader_start(l, epoch, 0) != VT_OK) goto fail;
    for (int k = 0; k < batches + 2; k++) {
        if (k == 2) t_start = vt_now(), images = 0;
        float *x;
        int *y, bs;
        if (vt_loader_next(l, &x, &y, NULL, &bs) != VT_OK) goto fail;
        if (bs == 0) {   /* end of the epoch */
            if (vt_loader_start(l, ++epoch, 0) != VT_OK) goto fail;
            k--;
            continue;
        }
        images += bs;
        if (k >= 2) done++;
    }
    double t = vt_now() - t_start;
    printf("%d batches, %lld images in %.2f s: %.1f ms/batch\n", done, (long long)images, t, 1e3 * t / done);
    printf("loader images/s: %.0f\n", images / t);
    vt_loader_free(l);
    if (ds->skipped > skipped0) vt_data_warn_skipped(stdout, "", ds, split);
    vt_dataset_close(ds);
    return 0;
fail:
    fprintf(stderr, "vit-loader-bench: %s\n", vt_errmsg());
    return 1;
}
