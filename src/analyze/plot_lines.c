/* plot_lines.c - line charts (vit-plot's curves of a run): axes fitted to the series, ticks, a legend. */
#include "plot_internal.h"
#include <math.h>
#include <stdio.h>

/* tab10, the palette of matplotlib's default cycle */
static const double palette[10][3] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                      {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                      {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                      {0.090, 0.745, 0.812}};

typedef struct {
    double x0, y0, w, h;         /* the plot area on the canvas */
    double xlo, xhi, ylo, yhi;   /* its data range */
} frame;

static double fx(const frame *f, double x) { return f->x0 + (x - f->xlo) / (f->xhi - f->xlo) * f->w; }
static double fy(const frame *f, double y) { return f->y0 + f->h - (y - f->ylo) / (f->yhi - f->ylo) * f->h; }

/* the range of the finite points of all series, widened to whole tick steps */
static bool fit(const vt_an_series *s, int ns, frame *f)
{
    f->xlo = f->ylo = INFINITY, f->xhi = f->yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i])) {
                f->xlo = fmin(f->xlo, s[k].x[i]), f->xhi = fmax(f->xhi, s[k].x[i]);
                f->ylo = fmin(f->ylo, s[k].y[i]), f->yhi = fmax(f->yhi, s[k].y[i]);
            }
    if (!(f->xlo <= f->xhi)) return false;
    if (f->xlo > 0) f->xlo = 0;   /* steps and epochs from the start of the run */
    if (f->xhi == f->xlo) f->xhi = f->xlo + 1;
    if (f->yhi == f->ylo) f->yhi = f->ylo + (f->ylo ? fabs(f->ylo) * 0.1 : 1);
    const double ys = an_nice_step(f->yhi - f->ylo, 5), xs = an_nice_step(f->xhi - f->xlo, 6);
    f->ylo = floor(f->ylo / ys) * ys, f->yhi = ceil(f->yhi / ys) * ys;
    f->xlo = floor(f->xlo / xs) * xs, f->xhi = ceil(f->xhi / xs) * xs;
    return true;
}

static void axes(cairo_t *cr, const frame *f)
{
    char b[32];
    cairo_set_line_width(cr, 1);
    const double ys = an_nice_step(f->yhi - f->ylo, 5), xs = an_nice_step(f->xhi - f->xlo, 6);
    for (double v = f->ylo; v <= f->yhi + 1e-9 * ys; v += ys) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f->x0, fy(f, v)), cairo_line_to(cr, f->x0 + f->w, fy(f, v)), cairo_stroke(cr);
        snprintf(b, sizeof b, "%g", fabs(v) < 1e-9 * ys ? 0.0 : v);
        an_text(cr, f->x0 - 6, fy(f, v), 11, 1, 0.5, false, b);
    }
    for (double v = f->xlo; v <= f->xhi + 1e-9 * xs; v += xs) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, fx(f, v), f->y0), cairo_line_to(cr, fx(f, v), f->y0 + f->h), cairo_stroke(cr);
        snprintf(b, sizeof b, "%g", fabs(v) < 1e-9 * xs ? 0.0 : v);
        an_text(cr, fx(f, v), f->y0 + f->h + 6, 11, 0.5, 0, false, b);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, f->x0 + 0.5, f->y0 + 0.5, f->w, f->h), cairo_stroke(cr);
}

static void style(cairo_t *cr, const vt_an_series *s)
{
    const double *c = palette[((s->colour % 10) + 10) % 10], dash[] = {6, 4};
    if (s->thin) cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.35);
    else cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_set_line_width(cr, s->thin ? 1 : 2);
    cairo_set_dash(cr, dash, s->dashed ? 2 : 0, 0);
}

static void draw(cairo_t *cr, const frame *f, const vt_an_series *s)
{
    cairo_save(cr);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_clip(cr);
    style(cr, s);
    bool open = false;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;   /* eval columns: only the eval rows */
        if (open) cairo_line_to(cr, fx(f, s->x[i]), fy(f, s->y[i]));
        else cairo_move_to(cr, fx(f, s->x[i]), fy(f, s->y[i])), open = true;
    }
    cairo_stroke(cr);
    for (int i = 0; s->markers && i < s->n; i++)
        if (isfinite(s->x[i]) && isfinite(s->y[i])) {
            cairo_arc(cr, fx(f, s->x[i]), fy(f, s->y[i]), 3.5, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    cairo_restore(cr);
}

int vt_an_plot_lines(const char *path, const vt_an_series *s, int ns, const char *title, const char *xlabel,
                     const char *ylabel)
{
    frame f = {80, 50, 520, 330, 0, 0, 0, 0};
    if (!fit(s, ns, &f)) return vt_err("%s: nothing to plot (no finite values)", path);
    an_canvas c;
    if (an_canvas_begin(&c, 900, 440) != VT_OK) return VT_ERR;
    cairo_t *cr = c.cr;
    axes(cr, &f);
    int row = 0;
    for (int k = 0; k < ns; k++) {
        draw(cr, &f, &s[k]);
        if (!s[k].label || row >= 18) continue;
        const double ly = f.y0 + 8 + 18 * row++;
        cairo_save(cr);
        style(cr, &s[k]);
        cairo_move_to(cr, f.x0 + f.w + 16, ly), cairo_line_to(cr, f.x0 + f.w + 40, ly), cairo_stroke(cr);
        cairo_restore(cr);
        an_text(cr, f.x0 + f.w + 46, ly, 11, 0, 0.5, false, s[k].label);
    }
    an_text(cr, f.x0 + f.w / 2, f.y0 + f.h + 30, 13, 0.5, 0, false, xlabel);
    an_text(cr, 22, f.y0 + f.h / 2, 13, 0.5, 0.5, true, ylabel);
    an_text(cr, f.x0 + f.w / 2, 18, 14, 0.5, 0, false, title);
    return an_canvas_end(&c, path);
}
