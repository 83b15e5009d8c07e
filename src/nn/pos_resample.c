/* pos_resample.c - 2D resizing of the position-embedding grid, numerically what timm's
 * resample_abs_pos_embed does: prefix tokens kept, the grid seen as a (1, D, H, W) image and resized
 * by the tensor layer's vt_resize_image_f32 (torch's interpolate, align_corners=False, antialias). */
#include "nn.h"
#include <stdlib.h>
#include <string.h>

/* in (prefix + old_h*old_w, D) -> out (prefix + new_h*new_w, D) */
int vt_pos_resample(float *out, const float *in, int D, int prefix, int old_h, int old_w, int new_h, int new_w,
                    vt_interp mode, bool antialias)
{
    if (D < 1 || prefix < 0 || old_h < 1 || old_w < 1 || new_h < 1 || new_w < 1)
        return vt_err("pos_embed resample: bad sizes (D %d, prefix %d, %dx%d -> %dx%d)", D, prefix, old_h, old_w, new_h,
                      new_w);
    if (mode != VT_INTERP_BICUBIC && mode != VT_INTERP_BILINEAR)
        return vt_err("pos_embed resample: unknown interpolation mode %d", (int)mode);
    memcpy(out, in, sizeof(float) * (size_t)prefix * D);
    size_t no = (size_t)old_h * old_w, nn = (size_t)new_h * new_w;
    float *a = malloc(sizeof(float) * no * D), *b = malloc(sizeof(float) * nn * D);
    if (!a || !b) {
        free(a);
        free(b);
        return vt_err("pos_embed resample: out of memory");
    }
    /* tokens (N, D) -> planar (D, H, W) */
    for (size_t t = 0; t < no; t++)
        for (int d = 0; d < D; d++) a[(size_t)d * no + t] = in[(prefix + t) * D + d];
    int r = vt_resize_image_f32(b, a, D, old_h, old_w, new_h, new_w, mode, antialias);
    if (r == VT_OK)
        for (size_t t = 0; t < nn; t++)
            for (int d = 0; d < D; d++) out[(prefix + t) * D + d] = b[(size_t)d * nn + t];
    free(a);
    free(b);
    return r;
}
