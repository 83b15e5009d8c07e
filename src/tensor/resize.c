/* resize.c - 2D resizing of planar float images, numerically what torch.nn.functional.interpolate
 * does (bicubic or bilinear, align_corners=False, antialias), computed in double: the one resize of
 * the project (position-embedding resampling in nn, image fitting and crops in data). */
#include "tensor.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int vt_interp_parse(const char *name, vt_interp *out)
{
    if (!name) return vt_err("interpolation: no name given (bicubic, bilinear)");
    if (strcmp(name, "bicubic") == 0) *out = VT_INTERP_BICUBIC;
    else if (strcmp(name, "bilinear") == 0) *out = VT_INTERP_BILINEAR;
    else return vt_err("unknown interpolation '%s' (bicubic, bilinear)", name);
    return VT_OK;
}

/* cubic convolution (Keys) with parameter A: torch uses A = -0.75 without antialias, -0.5 with */
static double cubic(double x, double A)
{
    x = fabs(x);
    if (x < 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    return 0.0;
}

/* For one axis: the taps (first index, count, weights) of every output position.
 * w has room for out * maxk weights. */
static int axis_weights(int in, int out, vt_interp mode, bool aa, int *first, int *count, double *w, int maxk)
{
    const double scale = (double)in / (double)out;
    for (int o = 0; o < out; o++) {
        double *wo = w + (size_t)o * maxk;
        if (aa) {
            /* torch's separable antialiased kernels (_upsample_*_aa) */
            double interp = mode == VT_INTERP_BICUBIC ? 4.0 : 2.0;
            double support = scale >= 1.0 ? interp / 2.0 * scale : interp / 2.0;
            double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
            double center = scale * (o + 0.5);
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > in) xmax = in;
            int n = xmax - xmin;
            if (n > maxk) return vt_err("resize: %d taps exceed %d", n, maxk);
            double total = 0;
            for (int j = 0; j < n; j++) {
                double x = (j + xmin - center + 0.5) * invscale;
                double v = mode == VT_INTERP_BICUBIC ? cubic(x, -0.5) : (fabs(x) < 1.0 ? 1.0 - fabs(x) : 0.0);
                wo[j] = v;
                total += v;
            }
            for (int j = 0; j < n; j++) wo[j] = total != 0.0 ? wo[j] / total : 0.0;
            first[o] = xmin;
            count[o] = n;
        } else if (mode == VT_INTERP_BICUBIC) {
            /* source index without clamping, 4 taps at floor-1 .. floor+2, indices clamped to the border */
            double real = scale * (o + 0.5) - 0.5;
            int x0 = (int)floor(real);
            double t = real - x0;
            double c[4] = {cubic(t + 1.0, -0.75), cubic(t, -0.75), cubic(1.0 - t, -0.75), cubic(2.0 - t, -0.75)};
            /* taps may repeat a border index: expand into per-index weights over [lo, hi] */
            int lo = x0 - 1 < 0 ? 0 : x0 - 1, hi = x0 + 2 > in - 1 ? in - 1 : x0 + 2;
            if (lo > in - 1) lo = in - 1;
            if (hi < 0) hi = 0;
            int n = hi - lo + 1;
            for (int j = 0; j < n; j++) wo[j] = 0.0;
            for (int k = 0; k < 4; k++) {
                int idx = x0 - 1 + k;
                idx = idx < 0 ? 0 : (idx > in - 1 ? in - 1 : idx);
                wo[idx - lo] += c[k];
            }
            first[o] = lo;
            count[o] = n;
        } else {
            /* bilinear: negative source coordinates clamp to 0 */
            double real = scale * (o + 0.5) - 0.5;
            if (real < 0) real = 0;
            int x0 = (int)real;
            int x1 = x0 + (x0 < in - 1 ? 1 : 0);
            double l1 = real - x0, l0 = 1.0 - l1;
            first[o] = x0;
            if (x1 == x0) {
                count[o] = 1;
                wo[0] = l0 + l1;
            } else {
                count[o] = 2;
                wo[0] = l0;
                wo[1] = l1;
            }
        }
    }
    return VT_OK;
}

/* taps per output sample an axis of in -> out samples may need: 4 source samples per output sample
 * widened by the downscale factor (antialias), and room for the border cases */
static int max_taps(int in, int out) { return (int)(4.0 * ((double)in / out > 1.0 ? (double)in / out : 1.0)) + 8; }

/* the workspace's parts, doubles first so that one 8-byte-aligned block serves */
typedef struct {
    double *wx, *wy, *tmp;
    int *fx, *fy;
    int maxkx, maxky;
} resize_work;

static size_t resize_layout(int ih, int iw, int oh, int ow, void *base, resize_work *w)
{
    const int kx = max_taps(iw, ow), ky = max_taps(ih, oh);
    const size_t nwx = (size_t)ow * kx, nwy = (size_t)oh * ky, ntmp = (size_t)ih * ow;
    if (w) {
        w->wx = base;
        w->wy = w->wx + nwx;
        w->tmp = w->wy + nwy;
        w->fx = (int *)(w->tmp + ntmp);
        w->fy = w->fx + 2 * (size_t)ow;
        w->maxkx = kx;
        w->maxky = ky;
    }
    return sizeof(double) * (nwx + nwy + ntmp) + sizeof(int) * 2 * ((size_t)ow + oh);
}

size_t vt_resize_work_bytes(int ih, int iw, int oh, int ow)
{
    return ih < 1 || iw < 1 || oh < 1 || ow < 1 ? 0 : resize_layout(ih, iw, oh, ow, NULL, NULL);
}

int vt_resize_image_f32_work(float *out, const float *in, int C, int ih, int iw, int oh, int ow, vt_interp mode,
                             bool aa, void *work)
{
    if (C < 1 || ih < 1 || iw < 1 || oh < 1 || ow < 1)
        return vt_err("resize: bad sizes %d channels %dx%d -> %dx%d", C, ih, iw, oh, ow);
    if (mode != VT_INTERP_BICUBIC && mode != VT_INTERP_BILINEAR)
        return vt_err("resize: unknown interpolation mode %d (bicubic %d, bilinear %d)", (int)mode, VT_INTERP_BICUBIC,
                      VT_INTERP_BILINEAR);
    if (!work || (uintptr_t)work % sizeof(double) != 0)
        return vt_err("resize: the workspace must be %zu-byte aligned", sizeof(double));
    resize_work wk;
    resize_layout(ih, iw, oh, ow, work, &wk);
    const int *fx = wk.fx, *fy = wk.fy;
    int r = axis_weights(iw, ow, mode, aa, wk.fx, wk.fx + ow, wk.wx, wk.maxkx);
    if (r == VT_OK) r = axis_weights(ih, oh, mode, aa, wk.fy, wk.fy + oh, wk.wy, wk.maxky);
    for (int c = 0; r == VT_OK && c < C; c++) {
        const float *src = in + (size_t)c * ih * iw;
        for (int y = 0; y < ih; y++)   /* horizontal pass */
            for (int x = 0; x < ow; x++) {
                double s = 0;
                const double *w = wk.wx + (size_t)x * wk.maxkx;
                for (int j = 0; j < fx[ow + x]; j++) s += w[j] * src[(size_t)y * iw + fx[x] + j];
                wk.tmp[(size_t)y * ow + x] = s;
            }
        for (int y = 0; y < oh; y++)   /* vertical pass */
            for (int x = 0; x < ow; x++) {
                double s = 0;
                const double *w = wk.wy + (size_t)y * wk.maxky;
                for (int j = 0; j < fy[oh + y]; j++) s += w[j] * wk.tmp[(size_t)(fy[y] + j) * ow + x];
                out[((size_t)c * oh + y) * ow + x] = (float)s;
            }
    }
    return r;
}

/* in (C, ih, iw) -> out (C, oh, ow), planar float images */
int vt_resize_image_f32(float *out, const float *in, int C, int ih, int iw, int oh, int ow, vt_interp mode, bool aa)
{
    const size_t bytes = vt_resize_work_bytes(ih, iw, oh, ow);
    void *work = bytes ? malloc(bytes) : NULL;
    if (bytes && !work) return vt_err("resize: out of memory (%zu bytes for %dx%d -> %dx%d)", bytes, iw, ih, ow, oh);
    int r = vt_resize_image_f32_work(out, in, C, ih, iw, oh, ow, mode, aa, work);   /* bad sizes: refused first */
    free(work);
    return r;
}
