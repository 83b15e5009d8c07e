/* mix.c - mixup and cutmix of a whole batch, as timm's Mixup in its batch mode: one lambda per batch,
 * the batch mixed with its own flip (sample b with sample B-1-b), soft targets as timm's mixup_target
 * (label smoothing in them), cutmix's box from timm's rand_bbox and its lambda corrected to the box's
 * clipped area. The draws come from the caller's RNG (the trainer's: a function of the seed and the
 * micro-batch's number), so a resumed run mixes exactly as an uninterrupted one. */
#include "data.h"
#include <math.h>
#include <string.h>

bool vt_mix_enabled(const vt_mix *m) { return m && (m->mixup_alpha > 0 || m->cutmix_alpha > 0) && m->prob > 0; }

/* Gamma(a, 1): Marsaglia and Tsang's method; for a < 1 Gamma(a + 1) * U^(1/a) */
static double gamma_draw(vt_rng *r, double a)
{
    if (a < 1) {
        double u = vt_rng_uniform(r);
        return gamma_draw(r, a + 1) * pow(u > 0 ? u : 1e-300, 1 / a);
    }
    const double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = vt_rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = vt_rng_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x || log(u > 0 ? u : 1e-300) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

double vt_beta_draw(vt_rng *r, double a, double b)
{
    double x = gamma_draw(r, a), y = gamma_draw(r, b);
    return x + y > 0 ? x / (x + y) : 0.5;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void vt_cutmix_box(int H, int W, double lam, int cy, int cx, vt_mix_params *p)
{
    double ratio = sqrt(1 - lam);
    int cut_h = (int)(H * ratio), cut_w = (int)(W * ratio);   /* int() truncates, as numpy's int of a float */
    p->y0 = clampi(cy - cut_h / 2, 0, H);
    p->y1 = clampi(cy + cut_h / 2, 0, H);
    p->x0 = clampi(cx - cut_w / 2, 0, W);
    p->x1 = clampi(cx + cut_w / 2, 0, W);
    p->cutmix = true;
    p->lam = 1.0 - (double)(p->y1 - p->y0) * (p->x1 - p->x0) / ((double)H * W);
}

void vt_mix_draw(const vt_mix *m, vt_rng *r, int H, int W, vt_mix_params *p)
{
    memset(p, 0, sizeof *p);
    p->lam = 1.0;
    if (!vt_mix_enabled(m) || !(vt_rng_uniform(r) < m->prob)) return;
    bool cut;
    double lam;
    if (m->mixup_alpha > 0 && m->cutmix_alpha > 0) {
        cut = vt_rng_uniform(r) < m->switch_prob;
        lam = cut ? vt_beta_draw(r, m->cutmix_alpha, m->cutmix_alpha) : vt_beta_draw(r, m->mixup_alpha, m->mixup_alpha);
    } else {
        cut = m->cutmix_alpha > 0;
        lam = cut ? vt_beta_draw(r, m->cutmix_alpha, m->cutmix_alpha) : vt_beta_draw(r, m->mixup_alpha, m->mixup_alpha);
    }
    if (lam == 1.0) return;   /* timm: nothing mixed */
    if (!cut) {
        p->lam = lam;
        return;
    }
    int cy = (int)(vt_rng_u64(r) % (uint64_t)H), cx = (int)(vt_rng_u64(r) % (uint64_t)W);
    vt_cutmix_box(H, W, lam, cy, cx, p);
}

void vt_mix_targets(const int *labels, int B, int K, double smoothing, double lam, float *targets)
{
    const double off = smoothing / K, on = 1.0 - smoothing + off;
    /* timm: one_hot(y) * lam + one_hot(y.flip(0)) * (1 - lam), in float32 */
    const float a_on = (float)on * (float)lam, a_off = (float)off * (float)lam;
    const float b_on = (float)on * (float)(1.0 - lam), b_off = (float)off * (float)(1.0 - lam);
    for (int b = 0; b < B; b++) {
        float *t = targets + (size_t)b * K;
        int y1 = labels[b], y2 = labels[B - 1 - b];
        for (int k = 0; k < K; k++) t[k] = (k == y1 ? a_on : a_off) + (k == y2 ? b_on : b_off);
    }
}

int vt_mix_apply(const vt_mix_params *p, float *x, const int *labels, int B, int C, int H, int W, int K, double smoothing,
                 float *targets)
{
    if (B < 1 || K < 1) return vt_err("mixup: a batch of %d images and %d classes", B, K);
    for (int b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= K) return vt_err("mixup: label %d of sample %d outside [0, %d)", labels[b], b, K);
    const size_t per = (size_t)C * H * W;
    const float lam = (float)p->lam, rest = (float)(1.0 - p->lam);
    /* pairs (b, B-1-b) together: both read the originals, as timm's x.flip(0) is a copy */
    for (int b = 0; p->lam != 1.0 && b <= B - 1 - b; b++) {
        float *u = x + per * (size_t)b, *v = x + per * (size_t)(B - 1 - b);
        if (!p->cutmix) {
            for (size_t i = 0; i < per; i++) {
                float xu = u[i], xv = v[i];
                u[i] = xu * lam + xv * rest;
                v[i] = xv * lam + xu * rest;
            }
            continue;
        }
        for (int c = 0; c < C && u != v; c++)
            for (int y = p->y0; y < p->y1; y++)
                for (int xx = p->x0; xx < p->x1; xx++) {
                    size_t i = ((size_t)c * H + y) * W + xx;
                    float s = u[i];
                    u[i] = v[i];
                    v[i] = s;
                }
    }
    vt_mix_targets(labels, B, K, smoothing, p->lam, targets);
    return VT_OK;
}
