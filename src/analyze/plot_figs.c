/* plot_figs.c - the four figures of the paper's section 4.5, each a PNG with axes, labels and a colour
 * bar or legend, drawn from the numbers the analysis computed. */
#include "plot_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* tick labels 1..n at the centres of n cells of size cell + gap starting at x0 (along x, or y with
 * vertical), every k-th so that they do not crowd */
static void cell_ticks(cairo_t *cr, int n, double x0, double cell, double gap, double at, bool vertical)
{
    const int k = (int)ceil(n / 14.0);
    char b[16];
    for (int i = 0; i < n; i += k) {
        const double c = x0 + i * (cell + gap) + cell / 2;
        snprintf(b, sizeof b, "%d", i + 1);
        if (vertical) an_text(cr, at, c, 11, 1, 0.5, false, b);
        else an_text(cr, c, at, 11, 0.5, 0, false, b);
    }
}

int vt_an_plot_pos_similarity(const char *path, const double *sim, int gh, int gw, const char *title)
{
    const int N = gh * gw, tile = clampi(560 / (gh > gw ? gh : gw), 12, 72), gap = tile > 24 ? 3 : 1;
    const int left = 70, top = 56, right = 120, bottom = 62;
    const int pw = gw * tile + (gw - 1) * gap, ph = gh * tile + (gh - 1) * gap;
    an_canvas c;
    const int W = left + pw + right;
    if (an_canvas_begin(&c, W < 440 ? 440 : W, top + ph + bottom) != VT_OK) return VT_ERR;
    cairo_t *cr = c.cr;
    int r = VT_OK;
    for (int i = 0; i < N && r == VT_OK; i++) {
        const double x = left + (i % gw) * (tile + gap), y = top + (i / gw) * (tile + gap);
        r = an_heatmap(cr, sim + (size_t)i * N, gh, gw, gw, -1, 1, an_viridis, x, y, tile, tile, false, 1.0);
    }
    cell_ticks(cr, gw, left, tile, gap, top + ph + 6, false);
    cell_ticks(cr, gh, top, tile, gap, left - 6, true);
    an_text(cr, left + pw / 2.0, top + ph + 30, 13, 0.5, 0, false, "input patch column");
    an_text(cr, 22, top + ph / 2.0, 13, 0.5, 0.5, true, "input patch row");
    an_text(cr, left + pw / 2.0, 16, 14, 0.5, 0, false, title ? title : "Position embedding similarity");
    an_text(cr, left + pw / 2.0, 36, 11, 0.5, 0, false, "tile (r, c): similarity of position (r, c) with every position");
    an_colorbar(cr, left + pw + 24, top, 18, ph, -1, 1, an_viridis, "cosine similarity");
    const int e = an_canvas_end(&c, path);
    return r == VT_OK ? e : VT_ERR;
}

int vt_an_plot_distance(const char *path, const double *dist, int depth, int heads, double uniform, double max_dist,
                        const char *title)
{
    const int x0 = 80, y0 = 56, pw = 440, ph = 320, W = 660, H = 440;
    double top = uniform > 0 ? uniform : 0;
    for (int i = 0; i < depth * heads; i++) top = fmax(top, dist[i]);
    if (!(max_dist > 0)) {
        const double s = an_nice_step(top * 1.1 + 1e-9, 5);
        max_dist = ceil((top * 1.1 + 1e-9) / s) * s;
    }
    an_canvas c;
    if (an_canvas_begin(&c, W, H) != VT_OK) return VT_ERR;
    cairo_t *cr = c.cr;
    char b[48];
    /* grid, axes and ticks */
    cairo_set_line_width(cr, 1);
    const double ys = an_nice_step(max_dist, 5);
    for (double v = 0; v <= max_dist + 1e-9 * ys; v += ys) {
        const double py = y0 + ph - v / max_dist * ph;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x0, py), cairo_line_to(cr, x0 + pw, py), cairo_stroke(cr);
        snprintf(b, sizeof b, "%g", v);
        an_text(cr, x0 - 6, py, 11, 1, 0.5, false, b);
    }
    const double xw = (double)pw / depth;
    const int k = (int)ceil(depth / 16.0);
    for (int l = 0; l < depth; l += k) {
        snprintf(b, sizeof b, "%d", l + 1);
        an_text(cr, x0 + (l + 0.5) * xw, y0 + ph + 6, 11, 0.5, 0, false, b);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, pw, ph), cairo_stroke(cr);
    if (uniform > 0) {   /* the reference: every key patch weighted alike */
        const double py = y0 + ph - fmin(uniform, max_dist) / max_dist * ph, dash[] = {6, 4};
        cairo_save(cr);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        cairo_move_to(cr, x0, py), cairo_line_to(cr, x0 + pw, py), cairo_stroke(cr);
        const double ly = y0 + 10 + (heads < 16 ? heads : 17) * 18;   /* its legend entry, below the heads' */
        cairo_move_to(cr, x0 + pw + 16, ly), cairo_line_to(cr, x0 + pw + 32, ly), cairo_stroke(cr);
        cairo_restore(cr);
        an_text(cr, x0 + pw + 36, ly, 11, 0, 0.5, false, "uniform attention");
    }
    /* one dot per head, coloured by head */
    for (int l = 0; l < depth; l++)
        for (int h = 0; h < heads; h++) {
            double rgb[3];
            an_viridis(heads > 1 ? (double)h / (heads - 1) : 0.5, rgb);
            const double px = x0 + (l + 0.5) * xw, py = y0 + ph - fmin(dist[l * heads + h], max_dist) / max_dist * ph;
            cairo_arc(cr, px, py, 4.5, 0, 2 * M_PI);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            cairo_stroke(cr);
        }
    for (int h = 0; h < heads && h < 16; h++) {   /* legend */
        double rgb[3];
        an_viridis(heads > 1 ? (double)h / (heads - 1) : 0.5, rgb);
        const double ly = y0 + 10 + h * 18;
        cairo_arc(cr, x0 + pw + 24, ly, 4.5, 0, 2 * M_PI);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_stroke(cr);
        snprintf(b, sizeof b, "head %d", h + 1);
        an_text(cr, x0 + pw + 34, ly, 11, 0, 0.5, false, b);
    }
    if (heads > 16) an_text(cr, x0 + pw + 20, y0 + 10 + 16 * 18, 11, 0, 0.5, false, "...");
    an_text(cr, x0 + pw / 2.0, y0 + ph + 30, 13, 0.5, 0, false, "network depth (block)");
    an_text(cr, 24, y0 + ph / 2.0, 13, 0.5, 0.5, true, "mean attention distance (pixels)");
    an_text(cr, x0 + pw / 2.0, 16, 14, 0.5, 0, false, title ? title : "Mean attention distance");
    an_text(cr, x0 + pw / 2.0, 36, 11, 0.5, 0, false, "one dot per head: attention-weighted query-key distance, mean over patches and images");
    return an_canvas_end(&c, path);
}

/* component c of comp (ncomp, C, p, p) as an RGB image (3, p, p) in [0, 1], scaled to its own range */
static void rgb_component(const double *v, int C, int p, float *img)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < 3 * p * p; k++) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
    for (int k = 0; k < 3 * p * p; k++) img[k] = hi > lo ? (float)((v[k] - lo) / (hi - lo)) : 0.5f;
    (void)C;
}

int vt_an_plot_filters(const char *path, const double *comp, const double *ratio, int ncomp, int C, int p,
                       const char *title)
{
    const int cols = ncomp < 7 ? ncomp : 7, rows = (ncomp + cols - 1) / cols, tile = 76, gap = 10, cap = 18;
    const int left = 24, top = 58, right = C >= 3 ? 24 : 110, W0 = cols * tile + (cols - 1) * gap;
    const int W = left + W0 + right, H = top + rows * (tile + cap + gap) + 12;
    const size_t K = (size_t)C * p * p;
    double vmax = 0;
    for (size_t k = 0; k < (size_t)ncomp * K; k++) vmax = fmax(vmax, fabs(comp[k]));
    if (!(vmax > 0)) vmax = 1;
    float *img = malloc(sizeof(float) * 3 * (size_t)p * p);
    if (!img) return vt_err("out of memory drawing %s", path);
    an_canvas c;
    if (an_canvas_begin(&c, W < 360 ? 360 : W, H) != VT_OK) return free(img), VT_ERR;
    cairo_t *cr = c.cr;
    int r = VT_OK;
    char b[48];
    for (int i = 0; i < ncomp && r == VT_OK; i++) {
        const double x = left + (i % cols) * (tile + gap), y = top + (i / cols) * (tile + cap + gap);
        if (C >= 3) {
            rgb_component(comp + i * K, C, p, img);
            r = an_image(cr, img, 3, p, p, x, y, tile, tile, false);
        } else {
            r = an_heatmap(cr, comp + i * K, p, p, p, -vmax, vmax, an_diverging, x, y, tile, tile, false, 1.0);
        }
        snprintf(b, sizeof b, "PC %d  %.1f%%", i + 1, 100 * ratio[i]);
        an_text(cr, x + tile / 2.0, y + tile + 4, 10, 0.5, 0, false, b);
    }
    if (C < 3) an_colorbar(cr, left + W0 + 20, top, 16, rows * (tile + cap + gap) - cap - gap, -vmax, vmax,
                           an_diverging, "component weight");
    an_text(cr, c.w / 2.0, 16, 14, 0.5, 0, false, title ? title : "Patch embedding filters");
    snprintf(b, sizeof b, "top %d principal components, explained variance", ncomp);
    an_text(cr, c.w / 2.0, 36, 11, 0.5, 0, false, C >= 3 ? "principal components (RGB, each to its own range)" : b);
    free(img);
    const int e = an_canvas_end(&c, path);
    return r == VT_OK ? e : VT_ERR;
}

int vt_an_plot_rollout(const char *path, const float *images, int n, int C, int H, int W, const double *maps, int gh,
                       int gw, const char *const *captions, const char *title)
{
    const int pairs = n < 4 ? n : 4, rows = (n + pairs - 1) / pairs, tile = 120, gap = 6, pgap = 22, cap = 18;
    const int left = 20, top = 48, right = 110, W0 = pairs * (2 * tile + gap) + (pairs - 1) * pgap;
    const int N = gh * gw;
    double *m = malloc(sizeof(double) * (size_t)N);
    if (!m) return vt_err("out of memory drawing %s", path);
    an_canvas c;
    if (an_canvas_begin(&c, left + W0 + right, top + rows * (tile + cap + gap) + 10) != VT_OK) return free(m), VT_ERR;
    cairo_t *cr = c.cr;
    int r = VT_OK;
    for (int i = 0; i < n && r == VT_OK; i++) {
        const double x = left + (i % pairs) * (2 * tile + gap + pgap), y = top + cap + (i / pairs) * (tile + cap + gap);
        const float *img = images + (size_t)i * C * H * W;
        double hi = 0;
        for (int k = 0; k < N; k++) hi = fmax(hi, maps[(size_t)i * N + k]);
        for (int k = 0; k < N; k++) m[k] = hi > 0 ? maps[(size_t)i * N + k] / hi : 0;
        r = an_image(cr, img, C, H, W, x, y, tile, tile, true);
        if (r == VT_OK) r = an_image(cr, img, C, H, W, x + tile + gap, y, tile, tile, true);
        if (r == VT_OK) r = an_heatmap(cr, m, gh, gw, gw, 0, 1, an_inferno, x + tile + gap, y, tile, tile, true, 0.6);
        if (captions && captions[i]) an_text(cr, x + tile + gap / 2.0, y - 4, 11, 0.5, 1, false, captions[i]);
    }
    an_colorbar(cr, left + W0 + 24, top + cap, 16, rows * (tile + cap + gap) - cap - gap, 0, 1, an_inferno,
                "rollout / image's max");
    an_text(cr, c.w / 2.0, 14, 14, 0.5, 0, false, title ? title : "Attention rollout");
    free(m);
    const int e = an_canvas_end(&c, path);
    return r == VT_OK ? e : VT_ERR;
}
