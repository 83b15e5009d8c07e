/* jpeg.c - JPEG header probe and decode with libjpeg-turbo: errors come back as messages (never
 * printed, never exit), large images are decoded at a reduced DCT scale when the caller only needs
 * a smaller size, CMYK / YCCK (Adobe, inverted) converted to RGB. */
#include "data_internal.h"
#include <errno.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    bool eof;   /* "Premature end of JPEG file": a truncated file, refused */
} jerr_t;

static void on_error(j_common_ptr c)
{
    jerr_t *e = (jerr_t *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* warnings are not printed; a truncated file is remembered (libjpeg pads it with gray) */
static void on_message(j_common_ptr c, int level)
{
    jerr_t *e = (jerr_t *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF && !e->eof) {
        e->eof = true;
        c->err->format_message(c, e->msg);
    }
}

static void no_output(j_common_ptr c) { (void)c; }

static void setup_err(struct jpeg_decompress_struct *d, jerr_t *e)
{
    memset(e, 0, sizeof *e);
    d->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    e->pub.emit_message = on_message;
    e->pub.output_message = no_output;
}

bool vt_is_jpeg_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

int vt_jpeg_probe(const char *path, vt_image_info *info)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    struct jpeg_decompress_struct d;
    jerr_t e;
    setup_err(&d, &e);
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&d);
        fclose(f);
        return vt_err("%s: not a decodable JPEG (libjpeg: %s)", path, e.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    info->w = (int)d.image_width;
    info->h = (int)d.image_height;
    info->gray = d.jpeg_color_space == JCS_GRAYSCALE;
    jpeg_destroy_decompress(&d);
    fclose(f);
    return VT_OK;
}

/* the smallest M (of M/8) whose output covers the aspect-preserving fit of (w, h) to (min_h, min_w) */
static void pick_scale(struct jpeg_decompress_struct *d, int min_h, int min_w)
{
    if (min_h <= 0 || min_w <= 0) return;
    double f = (double)min_h / d->image_height;
    if ((double)min_w / d->image_width > f) f = (double)min_w / d->image_width;
    for (int m = 1; m <= 8; m++) {
        d->scale_num = (unsigned)m;
        d->scale_denom = 8;
        jpeg_calc_output_dimensions(d);
        if (d->output_width >= f * d->image_width - 1e-9 && d->output_height >= f * d->image_height - 1e-9) return;
    }
}

/* CMYK row -> RGB (or luma); Adobe writes CMYK inverted, so R = C*K/255 on the stored values */
static void cmyk_row(const uint8_t *src, uint8_t *dst, int w, int c, bool inverted)
{
    for (int x = 0; x < w; x++) {
        int k = src[4 * x + 3];
        int rgb[3];
        for (int j = 0; j < 3; j++) {
            int v = src[4 * x + j];
            rgb[j] = inverted ? (v * k + 127) / 255 : ((255 - v) * (255 - k) + 127) / 255;
        }
        if (c == 3)
            for (int j = 0; j < 3; j++) dst[3 * x + j] = (uint8_t)rgb[j];
        else
            dst[x] = (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
    }
}

int vt_jpeg_decode(const char *path, int c, int min_h, int min_w, uint8_t **pix, int *h, int *w)
{
    *pix = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    struct jpeg_decompress_struct d;
    jerr_t e;
    uint8_t *volatile out = NULL, *volatile row = NULL;
    setup_err(&d, &e);
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&d);
        fclose(f);
        free(out);
        free(row);
        return vt_err("%s: not a decodable JPEG (libjpeg: %s)", path, e.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    if (d.image_width < 1 || d.image_height < 1 || (int64_t)d.image_width * d.image_height > VT_IMAGE_MAX_PIXELS) {
        int W = (int)d.image_width, H = (int)d.image_height;
        jpeg_destroy_decompress(&d);
        fclose(f);
        return vt_err("%s: image size %dx%d (expected 1 to 2^28 pixels)", path, W, H);
    }
    bool cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
    d.out_color_space = cmyk ? JCS_CMYK : c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    pick_scale(&d, min_h, min_w);
    jpeg_start_decompress(&d);
    int W = (int)d.output_width, H = (int)d.output_height;
    out = malloc((size_t)W * H * c);
    if (cmyk) row = malloc((size_t)W * 4);
    if (!out || (cmyk && !row)) {
        snprintf(e.msg, sizeof e.msg, "out of memory for %dx%d pixels", W, H);
        longjmp(e.jb, 1);
    }
    while (d.output_scanline < d.output_height) {
        int y = (int)d.output_scanline;
        JSAMPROW r = cmyk ? row : out + (size_t)y * W * c;
        jpeg_read_scanlines(&d, &r, 1);
        if (cmyk) cmyk_row(row, out + (size_t)y * W * c, W, c, d.saw_Adobe_marker);
        if (e.eof) longjmp(e.jb, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    free(row);
    if (e.eof) {
        free(out);
        return vt_err("%s: not a decodable JPEG (libjpeg: %s)", path, e.msg);
    }
    *pix = out;
    *h = H;
    *w = W;
    return VT_OK;
}
