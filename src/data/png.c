/* png.c - PNG header probe and decode with libpng: palette expanded, 16-bit reduced to 8 (the high
 * byte), alpha and transparency dropped (as PIL's convert('RGB') does), gray replicated to RGB or
 * RGB reduced to ITU-R 601 luma; an image at least twice the size the caller needs is reduced by
 * k x k means while its rows are read (as JPEG's DCT scaling), so that a huge image never sits in
 * memory whole. Errors come back as messages; libpng prints nothing. */
#include "data_internal.h"
#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char msg[256];
} perr_t;

static void on_error(png_structp p, png_const_charp msg)
{
    perr_t *e = png_get_error_ptr(p);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

bool vt_is_png_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && !strcasecmp(dot, ".png");
}

/* open path, check the signature, read the header; the caller owns f, *pp and *ip */
static int begin(const char *path, FILE **fo, png_structp *pp, png_infop *ip, perr_t *e)
{
    *pp = NULL;
    *ip = NULL;
    FILE *f = *fo = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    uint8_t sig[8];
    size_t got = fread(sig, 1, 8, f);
    if (got != 8 || png_sig_cmp(sig, 0, 8))
        return vt_err("%s: not a PNG (expected the 8-byte PNG signature, found %s)", path,
                      got < 8 ? "a shorter file" : "other bytes");
    *pp = png_create_read_struct(PNG_LIBPNG_VER_STRING, e, on_error, on_warning);
    if (*pp) *ip = png_create_info_struct(*pp);
    if (!*pp || !*ip) return vt_err("%s: out of memory", path);
    png_init_io(*pp, f);
    png_set_sig_bytes(*pp, 8);
    return VT_OK;
}

static void finish(FILE *f, png_structp p, png_infop i)
{
    if (p) png_destroy_read_struct(&p, i ? &i : NULL, NULL);
    if (f) fclose(f);
}

int vt_png_probe(const char *path, vt_image_info *info)
{
    FILE *f;
    png_structp p;
    png_infop i;
    perr_t e = {""};
    if (begin(path, &f, &p, &i, &e) != VT_OK) {
        finish(f, p, i);
        return VT_ERR;
    }
    if (setjmp(png_jmpbuf(p))) {
        finish(f, p, i);
        return vt_err("%s: not a decodable PNG (libpng: %s)", path, e.msg);
    }
    png_read_info(p, i);
    info->w = (int)png_get_image_width(p, i);
    info->h = (int)png_get_image_height(p, i);
    info->gray = !(png_get_color_type(p, i) & PNG_COLOR_MASK_COLOR);
    finish(f, p, i);
    return VT_OK;
}

/* the integer factor k >= 1 by which an h x w image can be box-reduced (k x k pixel means) and still cover
 * the aspect-preserving fit to (min_h, min_w), as JPEG's DCT scaling does (1: min_h or min_w 0) */
static int reduce_factor(int h, int w, int min_h, int min_w)
{
    if (min_h <= 0 || min_w <= 0) return 1;
    double f = (double)min_h / h;
    if ((double)min_w / w > f) f = (double)min_w / w;
    int k = f >= 1 ? 1 : (int)(1 / f);
    while (k > 1 && ((double)(h / k) < f * h - 1e-9 || (double)(w / k) < f * w - 1e-9)) k--;
    return k;
}

/* the rows of the image read one at a time into k x k means (the last h % k rows and w % k columns, less than
 * one output pixel, left out): memory for one input row and one row of sums, never the whole image */
static void read_reduced(png_structp p, png_bytep row, uint64_t *sum, uint8_t *out, int H, int W, int got, int k)
{
    const int oh = H / k, ow = W / k;
    const uint64_t kk = (uint64_t)k * k;
    memset(sum, 0, sizeof *sum * (size_t)ow * got);
    for (int y = 0; y < H; y++) {
        png_read_row(p, row, NULL);   /* every row, the last too: a truncated file is refused as before */
        if (y >= oh * k) continue;
        for (int x = 0; x < ow * k; x++)
            for (int j = 0; j < got; j++) sum[(size_t)(x / k) * got + j] += row[(size_t)x * got + j];
        if ((y + 1) % k) continue;
        uint8_t *o = out + (size_t)(y / k) * ow * got;
        for (size_t i = 0; i < (size_t)ow * got; i++) {
            o[i] = (uint8_t)((sum[i] + kk / 2) / kk);
            sum[i] = 0;
        }
    }
}

int vt_png_decode(const char *path, int c, int min_h, int min_w, uint8_t **pix, int *h, int *w)
{
    *pix = NULL;
    FILE *f;
    png_structp p;
    png_infop i;
    perr_t e = {""};
    uint8_t *volatile out = NULL, *volatile row = NULL;
    uint64_t *volatile sum = NULL;
    png_bytep *volatile rows = NULL;
    if (begin(path, &f, &p, &i, &e) != VT_OK) {
        finish(f, p, i);
        return VT_ERR;
    }
    if (setjmp(png_jmpbuf(p))) {
        finish(f, p, i);
        free(out);
        free(rows);
        free(row);
        free(sum);
        return vt_err("%s: not a decodable PNG (libpng: %s)", path, e.msg);
    }
    png_read_info(p, i);
    int W = (int)png_get_image_width(p, i), H = (int)png_get_image_height(p, i);
    if (W < 1 || H < 1 || (int64_t)W * H > VT_IMAGE_MAX_PIXELS) {
        finish(f, p, i);
        return vt_err("%s: image size %dx%d (expected 1 to 2^28 pixels)", path, W, H);
    }
    int type = png_get_color_type(p, i);
    bool gray = !(type & PNG_COLOR_MASK_COLOR);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (gray && png_get_bit_depth(p, i) < 8) png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_16(p);
    png_set_strip_alpha(p);
    if (gray && c == 3) png_set_gray_to_rgb(p);
    /* an interlaced image comes in passes over the whole image: decoded whole, then fitted */
    int k = png_set_interlace_handling(p) == 1 ? reduce_factor(H, W, min_h, min_w) : 1;
    png_read_update_info(p, i);
    int got = png_get_channels(p, i);   /* 1 or 3 now */
    size_t stride = png_get_rowbytes(p, i);
    int oh = H / k, ow = W / k;
    if (k > 1) {
        out = malloc((size_t)oh * ow * got);
        row = malloc(stride);
        sum = malloc(sizeof(uint64_t) * (size_t)ow * got);
    } else {
        out = malloc(stride * (size_t)H);
        rows = malloc(sizeof(png_bytep) * (size_t)H);
    }
    if (!out || (k > 1 ? !row || !sum : !rows)) {
        snprintf(e.msg, sizeof e.msg, "out of memory for %dx%d pixels", W, H);
        png_longjmp(p, 1);
    }
    if (k > 1) {
        read_reduced(p, row, sum, out, H, W, got, k);
    } else {
        for (int y = 0; y < H; y++) rows[y] = out + (size_t)y * stride;
        png_read_image(p, rows);
    }
    png_read_end(p, NULL);
    finish(f, p, i);
    free(rows);
    free(row);
    free(sum);
    if (got == 3 && c == 1) {   /* luma, in place (row by row, the output never overtakes the input) */
        for (size_t q = 0; q < (size_t)ow * oh; q++)
            out[q] = (uint8_t)((299 * out[3 * q] + 587 * out[3 * q + 1] + 114 * out[3 * q + 2] + 500) / 1000);
    }
    *pix = out;
    *h = oh;
    *w = ow;
    return VT_OK;
}

int vt_png_write(const char *path, const uint8_t *pix, int h, int w, int c)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1) return vt_err("%s: a PNG of %dx%d with %d channels (expected 1 or 3)", path, h, w, c);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&im, path, 0, pix, 0, NULL)) {
        int r = vt_err("%s: cannot write the PNG: %s", path, im.message);
        png_image_free(&im);
        return r;
    }
    return VT_OK;
}
