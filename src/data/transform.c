/* transform.c - per-sample transforms: channel conversion, resize (bilinear, antialiased when
 * shrinking), random-resized-crop, random crop with padding, horizontal flip, normalisation,
 * random erasing. */
#include "data_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vt_parse_floats(const char *text, float *out, int n, const char *what)
{
    /* items separated by commas (spaces around them allowed), each a finite decimal number that fits a float */
    float v[16];
    int k = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, ",");
        char item[64];
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (len == 0 || len >= sizeof item || k == 16)
            return vt_err("%s: '%s' is not a comma-separated list of up to 16 numbers (an empty or overlong item)", what, text);
        memcpy(item, p, len);
        item[len] = '\0';
        double x = vt_is_decimal(item) ? strtod(item, NULL) : NAN;
        if (!isfinite(x) || fabs(x) > 3e38)
            return vt_err("%s: '%s' is not a finite decimal number", what, item);
        v[k++] = (float)x;
        p += strcspn(p, ",");
        if (!*p) break;
        p++;   /* past the comma: an item must follow */
    }
    if (k == 1)
        for (int i = 0; i < n; i++) out[i] = v[0];
    else if (k == n)
        for (int i = 0; i < n; i++) out[i] = v[i];
    else
        return n == 1 ? vt_err("%s: %d values given, expected 1", what, k)
                      : vt_err("%s: %d values given, expected 1 or %d (one per channel)", what, k, n);
    return VT_OK;
}

/* splitmix64's finalizer: a bijection of 64-bit words that mixes every bit into every other */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void vt_sample_rng(vt_rng *r, uint64_t seed, int64_t epoch, int64_t index)
{
    /* chained: within one (seed, epoch) distinct indices give distinct streams */
    uint64_t h = mix(seed + 0x9e3779b97f4a7c15ULL);
    h = mix(h ^ ((uint64_t)epoch + 0x632be59bd9b4e019ULL));
    h = mix(h ^ ((uint64_t)index + 0x85ebca6b0f1c2a5dULL));
    vt_rng_seed(r, h);
}

/* src (C, sh, sw) region [y0, y0+rh) x [x0, x0+rw) (whole pixels) -> dst (C, dh, dw): the crop is
 * copied to tmp, then resized like torch's bilinear interpolate with antialias (tensor/resize.c) in
 * the workspace work */
static int resize_region(const float *src, int C, int sh, int sw, int y0, int x0, int rh, int rw, float *dst, int dh,
                         int dw, float *tmp, void *work)
{
    (void)sh;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < rh; y++)
            memcpy(tmp + ((size_t)c * rh + y) * rw, src + ((size_t)c * sh + y0 + y) * sw + x0, sizeof(float) * (size_t)rw);
    return vt_resize_image_f32_work(dst, tmp, C, rh, rw, dh, dw, VT_INTERP_BILINEAR, true, work);
}

/* the scratch's parts: planar input, a copy of the crop for the resize, the padded-crop source, then the
 * resize's workspace (its size for the whole image bounds every crop's) from the next 8-byte boundary */
static size_t scratch_parts(const vt_transform *t, int h, int w, size_t *work_at)
{
    const size_t out = (size_t)t->out_c * t->out_h * t->out_w;
    /* + two uint8 images of the output's size for RandAugment */
    const size_t head = 2 * (size_t)t->out_c * h * w + out + (t->randaug.kind ? (2 * out + 3) / 4 : 0);
    const size_t at = (head + 1) & ~(size_t)1;   /* floats from an allocation's start: even = 8-byte aligned */
    if (work_at) *work_at = at;
    return at + (vt_resize_work_bytes(h, w, t->out_h, t->out_w) + sizeof(float) - 1) / sizeof(float);
}

size_t vt_transform_scratch(const vt_transform *t, int h, int w) { return scratch_parts(t, h, w, NULL); }

/* the source region of a random-resized-crop (torchvision's RandomResizedCrop.get_params) */
static void rrc_region(const vt_transform *t, int h, int w, vt_rng *rng, int *y0, int *x0, int *rh, int *rw)
{
    double area = (double)h * w;
    double lr0 = log(t->rrc_ratio_min), lr1 = log(t->rrc_ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double s = t->rrc_scale_min + (1.0 - t->rrc_scale_min) * vt_rng_uniform(rng);
        double ratio = exp(lr0 + (lr1 - lr0) * vt_rng_uniform(rng));
        int cw = (int)round(sqrt(area * s * ratio)), ch = (int)round(sqrt(area * s / ratio));
        if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
            *y0 = (int)floor(vt_rng_uniform(rng) * (h - ch + 1));
            *x0 = (int)floor(vt_rng_uniform(rng) * (w - cw + 1));
            *rh = ch;
            *rw = cw;
            return;
        }
    }
    /* fallback: center crop at the clamped ratio */
    double ratio = (double)w / h;
    *rh = h;
    *rw = w;
    if (ratio < t->rrc_ratio_min) *rh = (int)round(w / t->rrc_ratio_min);
    else if (ratio > t->rrc_ratio_max) *rw = (int)round(h * t->rrc_ratio_max);
    if (*rh > h) *rh = h;
    if (*rw > w) *rw = w;
    if (*rh < 1) *rh = 1;
    if (*rw < 1) *rw = 1;
    *y0 = (h - *rh) / 2;
    *x0 = (w - *rw) / 2;
}

/* timm's RandomErasing (count 1) on a normalised (C, H, W) image: up to 10 attempts at a rectangle
 * of area in [0.02, 1/3] of the image and log-uniform aspect in [0.3, 1/0.3] that fits */
static void random_erase(const vt_transform *t, float *img, int C, int H, int W, vt_rng *rng)
{
    if (!(vt_rng_uniform(rng) < t->erase_prob)) return;
    const double area = (double)H * W, lr0 = log(0.3), lr1 = log(1 / 0.3);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = (0.02 + (1.0 / 3 - 0.02) * vt_rng_uniform(rng)) * area;
        double aspect = exp(lr0 + (lr1 - lr0) * vt_rng_uniform(rng));
        int h = (int)round(sqrt(target * aspect)), w = (int)round(sqrt(target / aspect));
        if (h < 1 || w < 1 || h >= H || w >= W) continue;
        int top = (int)(vt_rng_u64(rng) % (uint64_t)(H - h + 1)), left = (int)(vt_rng_u64(rng) % (uint64_t)(W - w + 1));
        for (int k = 0; k < C; k++) {
            float v = t->erase_mode == VT_ERASE_RAND ? (float)vt_rng_normal(rng) : 0.0f;
            for (int y = top; y < top + h; y++)
                for (int x = left; x < left + w; x++)
                    img[((size_t)k * H + y) * W + x] = t->erase_mode == VT_ERASE_PIXEL ? (float)vt_rng_normal(rng) : v;
        }
        return;
    }
}

/* out (C, H, W) in [0, 1] rounded to uint8 (exact for unresized pixels: v / 255), augmented, back to v / 255 */
static void randaug_u8(const vt_transform *t, float *out, uint8_t *q, vt_rng *rng)
{
    const int C = t->out_c, H = t->out_h, W = t->out_w;
    const size_t n = (size_t)C * H * W;
    for (size_t i = 0; i < n; i++) {
        float v = out[i] * 255.0f;
        q[i] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)lrintf(v));
    }
    vt_randaug_apply(&t->randaug, q, C, H, W, rng, q + n);
    for (size_t i = 0; i < n; i++) out[i] = q[i] / 255.0f;
}

/* pix uint8 (h, w, c) -> out float (C, H, W) */
int vt_transform_apply(const vt_transform *t, const uint8_t *pix, int h, int w, int c, float *out, vt_rng *rng,
                       float *scratch)
{
    size_t work_at;
    scratch_parts(t, h, w, &work_at);
    const int C = t->out_c, H = t->out_h, W = t->out_w;
    /* 1. channels: uint8 (h, w, c) -> float [0,1] planar (C, h, w) */
    float *img = scratch;
    float *tmp = img + (size_t)C * h * w;
    float *padsrc = tmp + (size_t)C * h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = pix + ((size_t)y * w + x) * c;
            for (int k = 0; k < C; k++) {
                float v;
                if (c == C) v = p[k];
                else if (c == 1) v = p[0];
                else if (C == 1) v = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
                else v = p[k < c ? k : c - 1];
                img[((size_t)k * h + y) * w + x] = v / 255.0f;
            }
        }
    /* 2. geometry: which region of the source maps onto the (H, W) output */
    int y0 = 0, x0 = 0, rh = h, rw = w;
    bool rrc = t->train && t->rrc;
    int pad = t->train && !rrc ? t->crop_padding : 0;
    if (rrc) rrc_region(t, h, w, rng, &y0, &x0, &rh, &rw);
    else if (t->crop_pct > 0) vt_center_region(h, w, H, W, t->crop_pct, &y0, &x0, &rh, &rw);
    float *dst = pad > 0 ? padsrc : out;
    if (y0 == 0 && x0 == 0 && rh == h && rw == w && h == H && w == W)
        memcpy(dst, img, sizeof(float) * (size_t)C * H * W);
    else if (resize_region(img, C, h, w, y0, x0, rh, rw, dst, H, W, tmp, scratch + work_at) != VT_OK)
        return VT_ERR;
    if (pad > 0) {
        /* random crop of the zero-padded (H, W) image: an offset in [-pad, pad] per axis */
        int dy = (int)(vt_rng_u64(rng) % (uint64_t)(2 * pad + 1)) - pad;
        int dx = (int)(vt_rng_u64(rng) % (uint64_t)(2 * pad + 1)) - pad;
        for (int k = 0; k < C; k++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int sy = y + dy, sx = x + dx;
                    out[((size_t)k * H + y) * W + x] =
                        (sy >= 0 && sy < H && sx >= 0 && sx < W) ? padsrc[((size_t)k * H + sy) * W + sx] : 0.0f;
                }
    }
    /* 3. flip, RandAugment on the uint8 image (a PIL image in timm), normalise */
    bool flip = t->train && t->hflip && (vt_rng_u64(rng) & 1);
    for (int k = 0; flip && k < C; k++)
        for (int y = 0; y < H; y++) {
            float *row = out + ((size_t)k * H + y) * W;
            for (int x = 0; x < W / 2; x++) {
                float s = row[x];
                row[x] = row[W - 1 - x];
                row[W - 1 - x] = s;
            }
        }
    if (t->train && t->randaug.kind) randaug_u8(t, out, (uint8_t *)(padsrc + (size_t)C * H * W), rng);
    for (int k = 0; k < C; k++) {
        float m = t->mean[k], inv = 1.0f / t->std[k];
        float *p = out + (size_t)k * H * W;
        for (int i = 0; i < H * W; i++) p[i] = (p[i] - m) * inv;
    }
    /* 4. random erasing */
    if (t->train && t->erase_prob > 0) random_erase(t, out, C, H, W, rng);
    return VT_OK;
}
