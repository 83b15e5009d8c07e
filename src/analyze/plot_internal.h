/* plot_internal.h - the drawing pieces the figures share (plot.c): a canvas written to PNG, text,
 * colour maps, heat-map tiles, colour bars and axes. cairo does the drawing. */
#ifndef VIT_ANALYZE_PLOT_INTERNAL_H
#define VIT_ANALYZE_PLOT_INTERNAL_H

#include "analyze.h"
#include <cairo.h>

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    int w, h;
} an_canvas;

/* colour maps: t in [0, 1] (clamped) -> r, g, b in [0, 1] */
typedef void (*an_cmap)(double t, double rgb[3]);
void an_viridis(double t, double rgb[3]);   /* dark blue - green - yellow (sequential) */
void an_diverging(double t, double rgb[3]); /* blue - white - red (0.5 is white) */
void an_inferno(double t, double rgb[3]);   /* black - red - yellow (heat) */

/* a white w x h canvas; VT_ERR when cairo cannot make one */
int an_canvas_begin(an_canvas *c, int w, int h);
/* write it to path as PNG and free it (also on failure: VT_ERR naming path and cairo's reason) */
int an_canvas_end(an_canvas *c, const char *path);

/* text of size px at (x, y): ax, ay place the anchor (0 left/top, 0.5 centre, 1 right/bottom);
 * rotated a quarter turn anticlockwise with vertical (for a y-axis label) */
void an_text(cairo_t *cr, double x, double y, double px, double ax, double ay, bool vertical, const char *s);

/* a rows x cols table of values (row-major, row stride ld) drawn as cells filling (x, y, w, h): colours
 * cmap((v - lo) / (hi - lo)); smooth: bilinear upsampling, else one flat square per value; alpha < 1
 * paints over what is there */
int an_heatmap(cairo_t *cr, const double *v, int rows, int cols, int ld, double lo, double hi, an_cmap cmap,
               double x, double y, double w, double h, bool smooth, double alpha);
/* an image (C, H, W) of values in [0, 1] (C 1: gray; C >= 3: the first three channels) into (x, y, w, h),
 * upsampled bilinearly (smooth) or as flat squares */
int an_image(cairo_t *cr, const float *img, int C, int H, int W, double x, double y, double w, double h, bool smooth);
/* a vertical colour bar in (x, y, w, h) from lo (bottom) to hi (top) with ticks and a label on its right */
void an_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi, an_cmap cmap,
                 const char *label);
/* a tick step of about range / n, rounded to 1, 2 or 5 times a power of ten */
double an_nice_step(double range, int n);

#endif
