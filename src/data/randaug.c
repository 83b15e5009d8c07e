/* randaug.c - RandAugment as timm's rand_augment_transform ("rand-m9-n2-mstd0.5-inc1") and
 * TrivialAugment as torchvision's TrivialAugmentWide ("ta"), on a planar uint8 image (C, H, W) with
 * the pixel operations of PIL that timm calls (ImageOps, ImageEnhance, Image.transform with AFFINE).
 * Colour only has a meaning for RGB: on one channel (grey data) it is left out of the choice. */
#include "data_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[VT_AUG_NOPS] = {
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
    "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Identity"};

const char *vt_aug_op_name(vt_aug_op op) { return op >= 0 && op < VT_AUG_NOPS ? op_names[op] : "?"; }

static uint8_t clip_trunc(float v) { return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v; }

static void apply_lut(uint8_t *p, size_t n, const uint8_t lut[256])
{
    for (size_t i = 0; i < n; i++) p[i] = lut[p[i]];
}

/* PIL's ImageOps.autocontrast (cutoff 0) and equalize, one channel */
static void autocontrast(uint8_t *p, size_t n)
{
    int lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = p[i] < lo ? p[i] : lo;
        hi = p[i] > hi ? p[i] : hi;
    }
    if (hi <= lo) return;
    uint8_t lut[256];
    double scale = 255.0 / (hi - lo), offset = -lo * scale;
    for (int i = 0; i < 256; i++) {
        int v = (int)(i * scale + offset);
        lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    apply_lut(p, n, lut);
}

static void equalize(uint8_t *p, size_t n)
{
    int64_t h[256] = {0};
    for (size_t i = 0; i < n; i++) h[p[i]]++;
    int64_t total = 0, last = 0;
    int used = 0;
    for (int i = 0; i < 256; i++)
        if (h[i]) {
            total += h[i];
            last = h[i];
            used++;
        }
    int64_t step = used <= 1 ? 0 : (total - last) / 255;
    if (!step) return;
    uint8_t lut[256];
    int64_t acc = step / 2;
    for (int i = 0; i < 256; i++) {
        int64_t v = acc / step;
        lut[i] = (uint8_t)(v > 255 ? 255 : v);
        acc += h[i];
    }
    apply_lut(p, n, lut);
}

/* PIL's RGB -> L: (R 19595 + G 38470 + B 7471 + 0x8000) >> 16 */
static uint8_t luma(const uint8_t *img, size_t plane, size_t i)
{
    return (uint8_t)((img[i] * 19595u + img[plane + i] * 38470u + img[2 * plane + i] * 7471u + 0x8000u) >> 16);
}

/* ImageEnhance: Image.blend(degenerate, image, factor), degenerate in deg (C, H, W) */
static void blend(uint8_t *img, const uint8_t *deg, size_t n, float f)
{
    for (size_t i = 0; i < n; i++) img[i] = clip_trunc((float)deg[i] + f * (float)((int)img[i] - (int)deg[i]));
}

/* PIL's ImageFilter.SMOOTH (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, divided by 13); the border copied */
static void smooth(const uint8_t *in, uint8_t *out, int H, int W)
{
    memcpy(out, in, (size_t)H * W);
    for (int y = 1; y < H - 1; y++)
        for (int x = 1; x < W - 1; x++) {
            float s = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    s += (float)in[(size_t)(y + dy) * W + x + dx] * ((dy == 0 && dx == 0) ? 5.0f / 13 : 1.0f / 13);
            out[(size_t)y * W + x] = clip_trunc(s + 0.5f);
        }
}

/* Image.transform(AFFINE, (a, b, c, d, e, f)) with bilinear resampling: output pixel (x, y) reads the input
 * at (a x' + b y' + c, d x' + e y' + f), x' = x + 0.5, y' = y + 0.5 (pixel centres); outside: fill */
static void affine(uint8_t *img, uint8_t *tmp, int C, int H, int W, const double m[6], const uint8_t *fill)
{
    const size_t plane = (size_t)H * W;
    memcpy(tmp, img, plane * C);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double xi = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2], yi = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
            bool out = xi < 0 || xi >= W || yi < 0 || yi >= H;
            xi -= 0.5;
            yi -= 0.5;
            int x0 = (int)floor(xi), y0 = (int)floor(yi);
            double dx = xi - x0, dy = yi - y0;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + 1 > W - 1 ? W - 1 : x0 + 1;
            int ya = y0 < 0 ? 0 : y0, yb = y0 + 1 > H - 1 ? H - 1 : y0 + 1;
            for (int c = 0; c < C; c++) {
                const uint8_t *s = tmp + plane * c;
                if (out) {
                    img[plane * c + (size_t)y * W + x] = fill[c];
                    continue;
                }
                double v1 = s[(size_t)ya * W + xa] + (s[(size_t)ya * W + xb] - s[(size_t)ya * W + xa]) * dx;
                double v2 = y0 + 1 < H ? s[(size_t)yb * W + xa] + (s[(size_t)yb * W + xb] - s[(size_t)yb * W + xa]) * dx : v1;
                double v = v1 + (v2 - v1) * dy;
                img[plane * c + (size_t)y * W + x] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;   /* PIL truncates */
            }
        }
}

/* PIL's Image.rotate(degrees) (counter-clockwise, about the centre, the same size) */
static void rotate(uint8_t *img, uint8_t *tmp, int C, int H, int W, double degrees, const uint8_t *fill)
{
    double a = -degrees * M_PI / 180.0, cx = W / 2.0, cy = H / 2.0;
    double cs = nearbyint(cos(a) * 1e15) / 1e15, sn = nearbyint(sin(a) * 1e15) / 1e15;   /* PIL: round(., 15) */
    double m[6] = {cs, sn, 0, -sn, cs, 0};
    m[2] = m[0] * -cx + m[1] * -cy + cx;
    m[5] = m[3] * -cx + m[4] * -cy + cy;
    affine(img, tmp, C, H, W, m, fill);
}

void vt_aug_apply_op(vt_aug_op op, double arg, uint8_t *img, int C, int H, int W, const uint8_t *fill, uint8_t *tmp)
{
    const size_t plane = (size_t)H * W, n = plane * C;
    uint8_t lut[256];
    switch (op) {
    case VT_AUG_AUTOCONTRAST:
        for (int c = 0; c < C; c++) autocontrast(img + plane * c, plane);
        return;
    case VT_AUG_EQUALIZE:
        for (int c = 0; c < C; c++) equalize(img + plane * c, plane);
        return;
    case VT_AUG_INVERT:
        for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(255 - img[i]);
        return;
    case VT_AUG_ROTATE: rotate(img, tmp, C, H, W, arg, fill); return;
    case VT_AUG_POSTERIZE: {   /* keep the top arg bits (8 or more: unchanged) */
        int bits = (int)arg;
        if (bits >= 8) return;
        uint8_t mask = (uint8_t)~((1u << (8 - (bits < 0 ? 0 : bits))) - 1);
        for (size_t i = 0; i < n; i++) img[i] &= mask;
        return;
    }
    case VT_AUG_SOLARIZE:   /* pixels >= arg inverted */
        for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(i < arg ? i : 255 - i);
        apply_lut(img, n, lut);
        return;
    case VT_AUG_SOLARIZE_ADD:   /* timm's solarize_add: arg added to pixels < 128 */
        for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(i < 128 ? (i + (int)arg > 255 ? 255 : i + (int)arg) : i);
        apply_lut(img, n, lut);
        return;
    case VT_AUG_COLOR:   /* towards the grey (L) image; one channel is its own grey */
        if (C != 3) return;
        for (size_t i = 0; i < plane; i++) tmp[i] = tmp[plane + i] = tmp[2 * plane + i] = luma(img, plane, i);
        blend(img, tmp, n, (float)arg);
        return;
    case VT_AUG_CONTRAST: {   /* towards the mean grey value, int(mean + 0.5) */
        double s = 0;
        for (size_t i = 0; i < plane; i++) s += C == 3 ? luma(img, plane, i) : img[i];
        memset(tmp, (int)(s / (double)plane + 0.5), n);
        blend(img, tmp, n, (float)arg);
        return;
    }
    case VT_AUG_BRIGHTNESS:
        memset(tmp, 0, n);
        blend(img, tmp, n, (float)arg);
        return;
    case VT_AUG_SHARPNESS:
        for (int c = 0; c < C; c++) smooth(img + plane * c, tmp + plane * c, H, W);
        blend(img, tmp, n, (float)arg);
        return;
    case VT_AUG_SHEAR_X: affine(img, tmp, C, H, W, (double[6]){1, arg, 0, 0, 1, 0}, fill); return;
    case VT_AUG_SHEAR_Y: affine(img, tmp, C, H, W, (double[6]){1, 0, 0, arg, 1, 0}, fill); return;
    case VT_AUG_TRANSLATE_X: affine(img, tmp, C, H, W, (double[6]){1, 0, arg, 0, 1, 0}, fill); return;
    case VT_AUG_TRANSLATE_Y: affine(img, tmp, C, H, W, (double[6]){1, 0, 0, 0, 1, arg}, fill); return;
    case VT_AUG_IDENTITY:
    case VT_AUG_NOPS: return;
    }
}

/* ---------------------------------------------------------------- the policies */
static double negate(vt_rng *r, double v) { return vt_rng_uniform(r) > 0.5 ? -v : v; }

double vt_randaug_arg(vt_aug_op op, double m, bool inc, int H, int W, vt_rng *r)
{
    const double l = m / 10.0;   /* timm's level / _LEVEL_DENOM */
    switch (op) {
    case VT_AUG_ROTATE: return negate(r, l * 30.0);
    case VT_AUG_SHEAR_X:
    case VT_AUG_SHEAR_Y: return negate(r, l * 0.3);
    case VT_AUG_TRANSLATE_X: return negate(r, l * 0.45) * W;
    case VT_AUG_TRANSLATE_Y: return negate(r, l * 0.45) * H;
    case VT_AUG_POSTERIZE: return inc ? 4 - (int)(l * 4) : (int)(l * 4);
    case VT_AUG_SOLARIZE: return inc ? 256 - (int)(l * 256) : (int)(l * 256);
    case VT_AUG_SOLARIZE_ADD: return (int)(l * 110);
    case VT_AUG_COLOR:
    case VT_AUG_CONTRAST:
    case VT_AUG_BRIGHTNESS:
    case VT_AUG_SHARPNESS: return inc ? 1.0 + negate(r, l * 0.9) : l * 1.8 + 0.1;
    default: return 0;
    }
}

/* the ops to choose from: timm's _RAND_TRANSFORMS, torchvision's TrivialAugmentWide space; without Color
 * on other than 3 channels */
int vt_randaug_ops(const vt_randaug *ra, int C, vt_aug_op *ops)
{
    static const vt_aug_op rand_ops[] = {VT_AUG_AUTOCONTRAST, VT_AUG_EQUALIZE, VT_AUG_INVERT, VT_AUG_ROTATE,
                                         VT_AUG_POSTERIZE, VT_AUG_SOLARIZE, VT_AUG_SOLARIZE_ADD, VT_AUG_COLOR,
                                         VT_AUG_CONTRAST, VT_AUG_BRIGHTNESS, VT_AUG_SHARPNESS, VT_AUG_SHEAR_X,
                                         VT_AUG_SHEAR_Y, VT_AUG_TRANSLATE_X, VT_AUG_TRANSLATE_Y};
    static const vt_aug_op ta_ops[] = {VT_AUG_IDENTITY, VT_AUG_SHEAR_X, VT_AUG_SHEAR_Y, VT_AUG_TRANSLATE_X,
                                       VT_AUG_TRANSLATE_Y, VT_AUG_ROTATE, VT_AUG_BRIGHTNESS, VT_AUG_COLOR,
                                       VT_AUG_CONTRAST, VT_AUG_SHARPNESS, VT_AUG_POSTERIZE, VT_AUG_SOLARIZE,
                                       VT_AUG_AUTOCONTRAST, VT_AUG_EQUALIZE};
    const vt_aug_op *all = ra->kind == VT_RANDAUG_TRIVIAL ? ta_ops : rand_ops;
    int n = ra->kind == VT_RANDAUG_TRIVIAL ? (int)(sizeof ta_ops / sizeof ta_ops[0]) : (int)(sizeof rand_ops / sizeof rand_ops[0]);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (all[i] != VT_AUG_COLOR || C == 3) ops[k++] = all[i];
    return k;
}

/* TrivialAugmentWide: one op, a magnitude bin of 31, a random sign for the signed ops (fill 0) */
static void trivial(const vt_randaug *ra, const vt_aug_op *ops, int nops, uint8_t *img, int C, int H, int W,
                    vt_rng *r, uint8_t *tmp)
{
    (void)ra;
    vt_aug_op op = ops[vt_rng_u64(r) % (uint64_t)nops];
    const double k = (double)(vt_rng_u64(r) % 31), f = k / 30.0;
    double arg = 0;
    bool signed_op = true;
    switch (op) {
    case VT_AUG_SHEAR_X:
    case VT_AUG_SHEAR_Y: arg = 0.99 * f; break;
    case VT_AUG_TRANSLATE_X:
    case VT_AUG_TRANSLATE_Y: arg = (int)(32.0 * f); break;
    case VT_AUG_ROTATE: arg = 135.0 * f; break;
    case VT_AUG_BRIGHTNESS:
    case VT_AUG_COLOR:
    case VT_AUG_CONTRAST:
    case VT_AUG_SHARPNESS: arg = 0.99 * f; break;
    case VT_AUG_POSTERIZE: arg = 8 - (int)nearbyint(k / 5.0), signed_op = false; break;
    case VT_AUG_SOLARIZE: arg = 255.0 - 255.0 * f, signed_op = false; break;
    default: signed_op = false; break;
    }
    if (signed_op && (vt_rng_u64(r) & 1)) arg = -arg;
    if (op == VT_AUG_BRIGHTNESS || op == VT_AUG_COLOR || op == VT_AUG_CONTRAST || op == VT_AUG_SHARPNESS) arg += 1.0;
    vt_aug_apply_op(op, arg, img, C, H, W, (const uint8_t[4]){0, 0, 0, 0}, tmp);
}

void vt_randaug_apply(const vt_randaug *ra, uint8_t *img, int C, int H, int W, vt_rng *r, uint8_t *tmp)
{
    vt_aug_op ops[VT_AUG_NOPS];
    const int nops = vt_randaug_ops(ra, C, ops);
    if (ra->kind == VT_RANDAUG_TRIVIAL) {
        trivial(ra, ops, nops, img, C, H, W, r, tmp);
        return;
    }
    if (ra->kind != VT_RANDAUG_RAND) return;
    vt_aug_op chosen[64];
    const int n = ra->n < 64 ? ra->n : 64;
    for (int i = 0; i < n; i++) chosen[i] = ops[vt_rng_u64(r) % (uint64_t)nops];   /* with replacement, as timm */
    for (int i = 0; i < n; i++) {
        if (ra->prob < 1.0 && vt_rng_uniform(r) > ra->prob) continue;
        double m = ra->m;
        if (isinf(ra->mstd)) m = vt_rng_uniform(r) * m;
        else if (ra->mstd > 0) m = m + ra->mstd * vt_rng_normal(r);
        const double upper = ra->mmax > 0 ? ra->mmax : 10.0;
        m = m < 0 ? 0 : m > upper ? upper : m;
        double arg = vt_randaug_arg(chosen[i], m, ra->increasing, H, W, r);
        vt_aug_apply_op(chosen[i], arg, img, C, H, W, ra->fill, tmp);
    }
}

/* "rand-m9-n2-mstd0.5-inc1" (the "rand-" optional), "ta" or "" (off) */
int vt_randaug_parse(const char *text, vt_randaug *ra)
{
    memset(ra, 0, sizeof *ra);
    if (!text || !*text) return VT_OK;
    if (!strcmp(text, "ta")) {
        ra->kind = VT_RANDAUG_TRIVIAL;
        return VT_OK;
    }
    *ra = (vt_randaug){.kind = VT_RANDAUG_RAND, .n = 2, .m = 10, .prob = 0.5};
    char buf[128];
    if (snprintf(buf, sizeof buf, "%s", strncmp(text, "rand-", 5) ? text : text + 5) >= (int)sizeof buf)
        return vt_err("randaugment '%.40s...': too long", text);
    for (char *save = NULL, *t = strtok_r(buf, "-", &save); t; t = strtok_r(NULL, "-", &save)) {
        size_t k = strcspn(t, "0123456789.");
        char *end = NULL;
        double v = t[k] ? strtod(t + k, &end) : NAN;
        bool ok = t[k] && end && !*end && isfinite(v) && v >= 0;
        if (ok && k == 1 && t[0] == 'm') ra->m = v;
        else if (ok && k == 1 && t[0] == 'n' && v == floor(v) && v >= 1 && v <= 64) ra->n = (int)v;
        else if (ok && k == 1 && t[0] == 'p' && v <= 1) ra->prob = v;
        else if (ok && k == 4 && !strncmp(t, "mstd", 4)) ra->mstd = v > 100 ? INFINITY : v;
        else if (ok && k == 4 && !strncmp(t, "mmax", 4)) ra->mmax = v;
        else if (ok && k == 3 && !strncmp(t, "inc", 3)) ra->increasing = v != 0;
        else
            return vt_err("randaugment '%s': '%s' is not one of m<magnitude>, n<ops 1..64>, mstd<std>, mmax<max>, "
                          "inc<0|1>, p<probability 0..1> (timm's notation, e.g. rand-m9-n2-mstd0.5; or 'ta' for "
                          "TrivialAugment)", text, t);
    }
    return VT_OK;
}
