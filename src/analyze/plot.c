/* plot.c - the drawing pieces of the figures: canvas and PNG, text, colour maps, heat-map tiles,
 * images, colour bars, tick steps. */
#include "plot_internal.h"
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* piecewise-linear colour map through n evenly spaced anchors */
static void lerp_map(const double (*a)[3], int n, double t, double rgb[3])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    if (isnan(t)) t = 0;
    double x = t * (n - 1);
    int i = (int)x;
    if (i >= n - 1) i = n - 2;
    double f = x - i;
    for (int k = 0; k < 3; k++) rgb[k] = a[i][k] + f * (a[i + 1][k] - a[i][k]);
}

void an_viridis(double t, double rgb[3])
{
    static const double a[][3] = {{0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530},
                                  {0.207, 0.372, 0.553}, {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551},
                                  {0.135, 0.659, 0.518}, {0.267, 0.749, 0.441}, {0.478, 0.821, 0.318},
                                  {0.741, 0.873, 0.150}, {0.993, 0.906, 0.144}};
    lerp_map(a, 11, t, rgb);
}

void an_inferno(double t, double rgb[3])
{
    static const double a[][3] = {{0.001, 0.000, 0.014}, {0.122, 0.047, 0.282}, {0.341, 0.062, 0.429},
                                  {0.550, 0.161, 0.506}, {0.735, 0.216, 0.330}, {0.890, 0.347, 0.198},
                                  {0.978, 0.557, 0.035}, {0.973, 0.789, 0.197}, {0.988, 0.998, 0.645}};
    lerp_map(a, 9, t, rgb);
}

void an_diverging(double t, double rgb[3])
{
    static const double a[][3] = {{0.230, 0.299, 0.754}, {0.552, 0.690, 0.996}, {0.970, 0.970, 0.970},
                                  {0.958, 0.604, 0.482}, {0.706, 0.016, 0.150}};
    lerp_map(a, 5, t, rgb);
}

int an_canvas_begin(an_canvas *c, int w, int h)
{
    c->w = w, c->h = h;
    c->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    c->cr = cairo_create(c->surface);
    if (cairo_status(c->cr) != CAIRO_STATUS_SUCCESS) {
        const char *why = cairo_status_to_string(cairo_status(c->cr));
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surface);
        c->cr = NULL, c->surface = NULL;
        return vt_err("a %d x %d canvas: %s", w, h, why);
    }
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    cairo_select_font_face(c->cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return VT_OK;
}

int an_canvas_end(an_canvas *c, const char *path)
{
    cairo_status_t st = cairo_status(c->cr);
    cairo_surface_flush(c->surface);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(c->surface, path);
    cairo_destroy(c->cr);
    cairo_surface_destroy(c->surface);
    c->cr = NULL, c->surface = NULL;
    return st == CAIRO_STATUS_SUCCESS ? VT_OK : vt_err("%s: writing the PNG failed: %s", path, cairo_status_to_string(st));
}

void an_text(cairo_t *cr, double x, double y, double px, double ax, double ay, bool vertical, const char *s)
{
    cairo_text_extents_t e;
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, px);
    cairo_text_extents(cr, s, &e);
    cairo_translate(cr, x, y);
    if (vertical) cairo_rotate(cr, -M_PI / 2);
    /* the anchor on the text's box: ax across its width, ay down its cap height (0.72 of the size), so that
     * labels of one row share a baseline whatever letters they hold */
    cairo_move_to(cr, -e.x_bearing - ax * e.width, px * 0.72 * (1 - ay));
    cairo_show_text(cr, s);
    cairo_new_path(cr);   /* no current point left for the next path to start from */
    cairo_restore(cr);
}

/* a w x h RGB24 surface whose pixel (i, j) is colour(ctx, i, j) */
typedef void (*pixel_fn)(const void *ctx, int i, int j, double rgb[3]);

static cairo_surface_t *make_surface(int w, int h, pixel_fn colour, const void *ctx)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        vt_err("a %d x %d image: %s", w, h, cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int i = 0; i < h; i++) {
        uint32_t *row = (uint32_t *)(data + (size_t)i * stride);
        for (int j = 0; j < w; j++) {
            double c[3];
            colour(ctx, i, j, c);
            uint32_t p = 0;
            for (int k = 0; k < 3; k++) {
                double v = c[k] < 0 ? 0 : c[k] > 1 ? 1 : c[k];
                p = p << 8 | (uint32_t)lrint(v * 255);
            }
            row[j] = p;
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* paint s (sw x sh pixels) into (x, y, w, h) */
static void paint_surface(cairo_t *cr, cairo_surface_t *s, int sw, int sh, double x, double y, double w, double h,
                          bool smooth, double alpha)
{
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, w / sw, h / sh);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), smooth ? CAIRO_FILTER_BILINEAR : CAIRO_FILTER_NEAREST);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint_with_alpha(cr, alpha);
    cairo_restore(cr);
}

typedef struct {
    const double *v;
    int ld;
    double lo, hi;
    an_cmap cmap;
} heat_ctx;

static void heat_pixel(const void *ctx, int i, int j, double rgb[3])
{
    const heat_ctx *c = ctx;
    c->cmap((c->v[(size_t)i * c->ld + j] - c->lo) / (c->hi - c->lo), rgb);
}

int an_heatmap(cairo_t *cr, const double *v, int rows, int cols, int ld, double lo, double hi, an_cmap cmap,
               double x, double y, double w, double h, bool smooth, double alpha)
{
    heat_ctx c = {v, ld, lo, hi > lo ? hi : lo + 1, cmap};
    cairo_surface_t *s = make_surface(cols, rows, heat_pixel, &c);
    if (!s) return VT_ERR;
    paint_surface(cr, s, cols, rows, x, y, w, h, smooth, alpha);
    cairo_surface_destroy(s);
    return VT_OK;
}

typedef struct {
    const float *img;
    int C, H, W;
} image_ctx;

static void image_pixel(const void *ctx, int i, int j, double rgb[3])
{
    const image_ctx *c = ctx;
    for (int k = 0; k < 3; k++) rgb[k] = c->img[((size_t)(c->C >= 3 ? k : 0) * c->H + i) * c->W + j];
}

int an_image(cairo_t *cr, const float *img, int C, int H, int W, double x, double y, double w, double h, bool smooth)
{
    image_ctx c = {img, C, H, W};
    cairo_surface_t *s = make_surface(W, H, image_pixel, &c);
    if (!s) return VT_ERR;
    paint_surface(cr, s, W, H, x, y, w, h, smooth, 1.0);
    cairo_surface_destroy(s);
    return VT_OK;
}

double an_nice_step(double range, int n)
{
    if (!(range > 0)) return 1;
    double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

void an_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi, an_cmap cmap,
                 const char *label)
{
    enum { STEPS = 256 };
    double ramp[STEPS];
    for (int i = 0; i < STEPS; i++) ramp[i] = 1.0 - (i + 0.5) / STEPS;
    an_heatmap(cr, ramp, STEPS, 1, 1, 0, 1, cmap, x, y, w, h, true, 1.0);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_stroke(cr);
    const double step = an_nice_step(hi - lo, 4);
    char buf[32];
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
        const double py = y + h - (v - lo) / (hi - lo) * h;
        cairo_move_to(cr, x + w, py);
        cairo_line_to(cr, x + w + 4, py);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * step ? 0.0 : v);
        an_text(cr, x + w + 6, py, 11, 0, 0.5, false, buf);
    }
    if (label) an_text(cr, x + w + 44, y + h / 2, 12, 0.5, 0.5, true, label);
}

void vt_an_plot_finish(void)
{
    cairo_debug_reset_static_data();
    FcFini();   /* fontconfig's configuration, which cairo's text loaded */
}
