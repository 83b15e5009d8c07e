/* make_seeds.c - writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/) with the
 * library's own writers where it has them (safetensors, npz, checkpoints, HDF5 datasets through the
 * description language of h5build.c) and small hand-made files elsewhere (IDX, CIFAR, PNG, JPEG), plus the
 * config dictionary from the key table. Run from the source root: build/tests/fuzz/fuzz-seeds tests/fuzz
 * (built on demand: ninja -C build tests/fuzz/fuzz-seeds). Each file is a few KB at most. */
#include "fuzz.h"
#include "nn/nn.h"
#include "train/train.h"
#include <jpeglib.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static char root[1024];

static void put(const char *target, const char *name, const void *data, size_t n)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/corpus/%s", root, target);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/corpus/%s/%s", root, target, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
}

static void put_text(const char *target, const char *name, const char *text) { put(target, name, text, strlen(text)); }

/* the bytes of a file (malloc'd) */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    if (!b || fread(b, 1, *n, f) != *n) exit(1);
    fclose(f);
    return b;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static size_t gz(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);   /* 31: a gzip wrapper */
    z.next_in = (uint8_t *)in, z.avail_in = (uInt)n, z.next_out = out, z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static void idx_seeds(void)
{
    /* 3 images of 2x3, labels 0 2 1 */
    uint8_t img[16 + 18], lab[8 + 3], buf[256];
    be32(img, 0x803), be32(img + 4, 3), be32(img + 8, 2), be32(img + 12, 3);
    for (int i = 0; i < 18; i++) img[16 + i] = (uint8_t)(i * 14);
    be32(lab, 0x801), be32(lab + 4, 3);
    lab[8] = 0, lab[9] = 2, lab[10] = 1;
    size_t n = 0;
    memcpy(buf, img, sizeof img), n = sizeof img;
    memcpy(buf + n, "IDXSPLIT", 8), n += 8;
    memcpy(buf + n, lab, sizeof lab), n += sizeof lab;
    put("idx", "plain", buf, n);
    memcpy(buf + n, "IDXSPLITzero\none\ntwo\n", 21);
    put("idx", "classes", buf, n + 21);
    size_t g = gz(img, sizeof img, buf, sizeof buf);
    memcpy(buf + g, "IDXSPLIT", 8);
    size_t g2 = gz(lab, sizeof lab, buf + g + 8, sizeof buf - g - 8);
    put("idx", "gzip", buf, g + 8 + g2);
    /* the unit tests' bad cases: wrong magic, truncated header, counts that disagree */
    be32(img, 0x801);
    memcpy(buf, img, sizeof img), memcpy(buf + sizeof img, "IDXSPLIT", 8), memcpy(buf + sizeof img + 8, lab, sizeof lab);
    put("idx", "bad-magic", buf, sizeof img + 8 + sizeof lab);
    put("idx", "bad-short", "\0\0\x08\x03\0\0IDXSPLIT\0\0\x08\x01", 22);
    be32(img, 0x803), be32(lab + 4, 2);
    memcpy(buf, img, sizeof img), memcpy(buf + sizeof img, "IDXSPLIT", 8), memcpy(buf + sizeof img + 8, lab, 10);
    put("idx", "bad-counts", buf, sizeof img + 8 + 10);
}

static void cifar_seeds(void)
{
    static uint8_t buf[1 + 2 * 3074 + 64];
    for (int mode = 0; mode < 3; mode++) {
        int lb = mode == 0 ? 1 : 2;
        size_t n = 0;
        buf[n++] = (uint8_t)mode;
        for (int rec = 0; rec < 2; rec++) {
            for (int k = 0; k < lb; k++) buf[n++] = (uint8_t)(rec + k);
            for (int i = 0; i < 3072; i++) buf[n++] = (uint8_t)((i * 7 + rec * 31) & 0xff);
            if (rec == 0 && mode == 0) break;   /* CIFAR-10: one record, repeated for the five batches */
            if (rec == 0) memcpy(buf + n, "CIFSPLIT", 8), n += 8;   /* CIFAR-100: train.bin, test.bin */
        }
        char name[32];
        snprintf(name, sizeof name, "mode%d", mode);
        put("cifar", name, buf, n);
    }
    put("cifar", "bad-partial-record", "\0\x01\x02\x03", 4);
}

/* the fixed small model of the weight targets, initialised */
static void small_model(vt_vit *m, bool avg)
{
    vt_vit_config c;
    vt_fuzz_small_config(&c);
    if (avg) c.pool = VT_POOL_MEAN, c.fc_norm = true;
    if (vt_vit_init(m, &c) != VT_OK) exit(1);
    vt_rng r;
    vt_rng_seed(&r, 1);
    vt_vit_init_weights(m, &r);
}

static void weight_seeds(void)
{
    char p[1200];
    vt_vit m;
    size_t n;
    uint8_t *b;
    small_model(&m, false);
    snprintf(p, sizeof p, "%s/seed.safetensors", vt_fuzz_dir());
    if (vt_vit_save_safetensors(&m, p) != VT_OK) exit(1);
    b = slurp(p, &n);
    put("safetensors", "small", b, n);
    /* header only, and damaged lengths */
    uint64_t hl;
    memcpy(&hl, b, 8);
    put("safetensors", "bad-truncated", b, 8 + (size_t)hl + 16);
    b[0] ^= 0x40;
    put("safetensors", "bad-header-length", b, n);
    free(b);
    snprintf(p, sizeof p, "%s/seed.npz", vt_fuzz_dir());
    if (vt_vit_save_npz(&m, p) != VT_OK) exit(1);
    b = slurp(p, &n);
    put("npz", "small", b, n);
    put("npz", "bad-truncated", b, n / 2);
    free(b);
    vt_vit_free(&m);
    small_model(&m, true);   /* fc_norm.* names (npz has no such layout) */
    snprintf(p, sizeof p, "%s/seed.safetensors", vt_fuzz_dir());
    if (vt_vit_save_safetensors(&m, p) != VT_OK) exit(1);
    b = slurp(p, &n);
    put("safetensors", "fc-norm", b, n);
    free(b);
    vt_vit_free(&m);
    /* LayerScale gammas, register tokens and a position embedding over the patch tokens only (DeiT-III's names) */
    vt_vit_config c;
    vt_fuzz_small_config(&c);
    c.init_values = 1e-6;
    c.reg_tokens = 2;
    c.no_embed_class = true;
    vt_rng r;
    vt_rng_seed(&r, 2);
    if (vt_vit_init(&m, &c) != VT_OK) exit(1);
    vt_vit_init_weights(&m, &r);
    if (vt_vit_save_safetensors(&m, p) != VT_OK) exit(1);
    b = slurp(p, &n);
    put("safetensors", "deit3-reg", b, n);
    free(b);
    vt_vit_free(&m);
    const char *tiny = "{\"__metadata__\":{\"format\":\"pt\"},\"cls_token\":{\"dtype\":\"F16\",\"shape\":[1,1,2],"
                       "\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[4,6]}}";
    uint8_t t[512];
    hl = strlen(tiny);
    memcpy(t, &hl, 8), memcpy(t + 8, tiny, hl), memset(t + 8 + hl, 0x3c, 6);
    put("safetensors", "f16-bf16", t, 8 + hl + 6);
}

/* the description of m's parameters as checkpoint datasets under /model (values cycling through a few) */
static size_t describe_params(char *o, size_t cap, const vt_vit *m)
{
    size_t n = 0;
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        n += (size_t)snprintf(o + n, cap - n, "d /model/%s f32 ", pi->name);
        for (int k = 0; k < pi->ndim; k++) n += (size_t)snprintf(o + n, cap - n, "%s%lld", k ? "," : "", (long long)pi->shape[k]);
        n += (size_t)snprintf(o + n, cap - n, " 0.02 -0.01 0.5 1\n");
    }
    return n;
}

static void ckpt_seeds(void)
{
    vt_vit m;
    small_model(&m, false);
    static char d[16384];
    size_t n = 0;
    n += (size_t)snprintf(d + n, sizeof d - n,
                          "a / format str vit-checkpoint\na / format_version i64 1\na / complete i64 1\ng /model\n"
                          "a /model img_h i64 8\na /model img_w i64 8\na /model patch i64 4\na /model in_chans i64 3\n"
                          "a /model num_classes i64 3\na /model embed_dim i64 8\na /model depth i64 1\n"
                          "a /model num_heads i64 2\na /model mlp_ratio f64 2\na /model layer_norm_eps f64 1e-6\n"
                          "a /model pool str token\na /model gelu str erf\na /model fc_norm i64 0\n");
    n += describe_params(d + n, sizeof d - n, &m);
    n += (size_t)snprintf(d + n, sizeof d - n,
                          "g /optimizer\na /optimizer kind str adamw\na /optimizer step i64 5\na /optimizer numel i64 %lld\n"
                          "d /optimizer/exp_avg f32 %lld 0.001 -0.002\nd /optimizer/exp_avg_sq f32 %lld 0.0001 0\n"
                          "g /state\na /state step i64 7\na /state epoch i64 0\na /state batch_in_epoch i64 7\n"
                          "a /state seed i64 1\na /state best_top1 f64 0.5\na /state best_step i64 5\n"
                          "a /state train_images i64 100\nd /state/rng i64 4 1 2 3 4\ng /config\n"
                          "a /config ini str [model]\\nembed_dim = 8\\ndepth = 1\\n[data]\\npath = data.h5\\n\n",
                          (long long)m.params.numel, (long long)m.params.numel, (long long)m.params.numel);
    put("ckpt", "small", d, n);
    vt_vit_free(&m);
    put_text("ckpt", "bad-incomplete", "a / format str vit-checkpoint\na / format_version i64 1\na / complete i64 0\n");
    put_text("ckpt", "bad-version", "a / format str vit-checkpoint\na / format_version i64 2\na / complete i64 1\n");
}

static void h5data_seeds(void)
{
    put_text("h5data", "root", "d /images u8 3,2,2 0 17 255 9\nd /labels i64 3 0 1 2\n");
    put_text("h5data", "splits",
             "d /train/images u8 4,3,2,3 chunk=1,3,2,3 deflate 1 2 3 200\nd /train/labels u8 4 0 1 0 1\n"
             "a /train/labels num_classes i64 2\na /train/labels class_names str cat\\ndog\n"
             "d /test/images u8 2,3,2,3 5\nd /test/labels i32 2 1 0\n");
    put_text("h5data", "gray4", "d /train/images u8 2,4,4,1 7\nd /train/labels i16 2 0 0\n"
             "a /train/labels num_classes bool 1\n");
    put_text("h5data", "bad-float-images", "d /images f32 2,2,2 0.5\nd /labels i64 2 0 1\n");
    put_text("h5data", "bad-chunk", "d /images u8 2,2,2 chunk=1,2,2 1\nd /labels i64 2 0 9\n");
    put_text("h5data", "bad-labels-shape", "d /images u8 2,2,2 1\nd /labels i64 2,1 0 1\n");
}

static void write_png(const char *name, int w, int h, png_uint_32 format, int interlace, int bits)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/seed.png", vt_fuzz_dir());
    FILE *f = fopen(p, "wb");
    png_structp s = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop i = png_create_info_struct(s);
    png_init_io(s, f);
    png_set_IHDR(s, i, (png_uint_32)w, (png_uint_32)h, bits, (int)format, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (format == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(s, i, pal, 4);
        png_byte trans[1] = {0};
        png_set_tRNS(s, i, trans, 1, NULL);
    }
    png_write_info(s, i);
    int ch = format == PNG_COLOR_TYPE_RGB ? 3 : format == PNG_COLOR_TYPE_RGBA ? 4 : format == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t row = ((size_t)w * ch * bits + 7) / 8;
    png_bytep r = calloc(row, 1);
    int passes = png_set_interlace_handling(s);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++) {
            for (size_t k = 0; k < row; k++) r[k] = (png_byte)(k * 37 + y * 11);
            if (format == PNG_COLOR_TYPE_PALETTE)
                for (size_t k = 0; k < row; k++) r[k] &= bits == 8 ? 3 : 0x55;
            png_write_row(s, r);
        }
    png_write_end(s, i);
    png_destroy_write_struct(&s, &i);
    fclose(f);
    free(r);
    size_t n;
    uint8_t *b = slurp(p, &n);
    put("png", name, b, n);
    free(b);
}

static void write_jpeg(const char *name, int w, int h, J_COLOR_SPACE cs, bool progressive)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/seed.jpg", vt_fuzz_dir());
    FILE *f = fopen(p, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = cs == JCS_GRAYSCALE ? 1 : cs == JCS_CMYK ? 4 : 3;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 50, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    JSAMPLE *row = malloc((size_t)w * c.input_components);
    for (int y = 0; y < h; y++) {
        for (int k = 0; k < w * c.input_components; k++) row[k] = (JSAMPLE)(k * 13 + y * 7);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    free(row);
    size_t n;
    uint8_t *b = slurp(p, &n);
    put("jpeg", name, b, n);
    if (strcmp(name, "rgb") == 0) put("jpeg", "bad-truncated", b, n * 2 / 3);
    free(b);
}

static void image_seeds(void)
{
    write_png("rgb", 5, 3, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, 8);
    write_png("gray16-interlaced", 9, 7, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, 16);
    write_png("gray2", 6, 2, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, 2);
    write_png("palette-trns", 4, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, 8);
    write_png("rgba", 3, 3, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, 8);
    write_png("gray-alpha", 2, 5, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, 8);
    put("png", "bad-signature", "\x89PNG\r\n\x1a\x0b", 8);
    write_jpeg("rgb", 17, 9, JCS_RGB, false);
    write_jpeg("gray", 8, 8, JCS_GRAYSCALE, false);
    write_jpeg("progressive", 20, 12, JCS_RGB, true);
    write_jpeg("cmyk", 8, 16, JCS_CMYK, false);
    put("jpeg", "bad-soi-only", "\xff\xd8\xff\xd9", 4);
}

/* the config dictionary: every section and key, and the syntax's tokens */
static void config_dict(void)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/dict/config.dict", root);
    FILE *f = fopen(p, "w");
    if (!f) exit(1);
    fprintf(f, "# generated by make_seeds.c from the config key table\n");
    const char *last = "";
    for (const vt_cfg_key *k = vt_config_keys(); k->key; k++) {
        if (strcmp(k->section, last) != 0) fprintf(f, "\"[%s]\"\n", k->section);
        last = k->section;
        fprintf(f, "\"%s\"\n\"%s.%s=\"\n", k->key, k->section, k->key);
        if (k->choices) {
            char ch[256];
            snprintf(ch, sizeof ch, "%s", k->choices);
            for (char *s = strtok(ch, "|"); s; s = strtok(NULL, "|")) fprintf(f, "\"%s\"\n", s);
        }
    }
    fprintf(f, "\" = \"\n\"\\\"\"\n\"\\\\\\\"\"\n\" ; \"\n\" # \"\n\"\\x0d\\x0a\"\n\"true\"\n\"false\"\n\"1e-6\"\n"
               "\"65536\"\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-seeds tests/fuzz\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    char p[1200];
    snprintf(p, sizeof p, "%s/corpus", root);
    mkdir(p, 0755);
    idx_seeds();
    cifar_seeds();
    weight_seeds();
    ckpt_seeds();
    h5data_seeds();
    image_seeds();
    config_dict();
    return 0;
}
