/* image.c - geometry on whole uint8 images: the centered region of a target aspect, and the
 * shorter-side-resize + center-crop fit image folders use to deliver one size. The resampling is
 * the tensor layer's torch-exact bilinear (antialiased when shrinking): one resize implementation in the project. */
#include "data_internal.h"
#include <math.h>
#include <stdlib.h>

void vt_center_region(int h, int w, int H, int W, double frac, int *y0, int *x0, int *rh, int *rw)
{
    /* the scale s that makes (H, W) / s fit (h, w) exactly along one side */
    double s = fmax((double)H / h, (double)W / w);
    int ch = (int)lround(H / s * frac), cw = (int)lround(W / s * frac);
    if (ch < 1) ch = 1;
    if (cw < 1) cw = 1;
    if (ch > h) ch = h;
    if (cw > w) cw = w;
    *rh = ch;
    *rw = cw;
    *y0 = (h - ch) / 2;
    *x0 = (w - cw) / 2;
}

/* src uint8 (sh, sw, c) -> dst uint8 (dh, dw, c) */
int vt_image_fit_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw)
{
    int y0, x0, rh, rw;
    vt_center_region(sh, sw, dh, dw, 1.0, &y0, &x0, &rh, &rw);
    float *in = malloc(sizeof(float) * (size_t)c * rh * rw), *out = malloc(sizeof(float) * (size_t)c * dh * dw);
    if (!in || !out) {
        free(in);
        free(out);
        return vt_err("out of memory resizing a %dx%d image", sw, sh);
    }
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++)
            for (int k = 0; k < c; k++)
                in[((size_t)k * rh + y) * rw + x] = src[((size_t)(y0 + y) * sw + x0 + x) * c + k];
    int r = vt_resize_image_f32(out, in, c, rh, rw, dh, dw, VT_INTERP_BILINEAR, true);
    for (int y = 0; r == VT_OK && y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < c; k++) {
                float v = out[((size_t)k * dh + y) * dw + x];
                dst[((size_t)y * dw + x) * c + k] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
            }
    free(in);
    free(out);
    return r;
}
