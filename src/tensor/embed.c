/* embed.c - patch extraction (im2col for the patch conv), class token + position embedding,
 * token pooling. */
#include "tensor.h"
#include <string.h>

/* img (B, Cin, H, W) -> patches (B, Gh*Gw, Cin*P*P), rows ordered (c, py, px) */
void vt_patchify_forward(float *patches, const float *img, int B, int Cin, int H, int W, int P)
{
    const int Gh = H / P, Gw = W / P, K = Cin * P * P;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < Gh; gy++)
            for (int gx = 0; gx < Gw; gx++) {
                float *row = patches + ((size_t)b * Gh * Gw + (size_t)gy * Gw + gx) * K;
                for (int c = 0; c < Cin; c++)
                    for (int py = 0; py < P; py++) {
                        const float *src = img + (((size_t)b * Cin + c) * H + (size_t)gy * P + py) * W + (size_t)gx * P;
                        memcpy(row + ((size_t)c * P + py) * P, src, (size_t)P * sizeof(float));
                    }
            }
}

/* dpatches (B, Gh*Gw, Cin*P*P) -> dimg (B, Cin, H, W) (+)= (each pixel belongs to one patch) */
void vt_patchify_backward(float *dimg, const float *dpatches, int B, int Cin, int H, int W, int P, bool acc)
{
    const int Gh = H / P, Gw = W / P, K = Cin * P * P;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < Gh; gy++)
            for (int gx = 0; gx < Gw; gx++) {
                const float *row = dpatches + ((size_t)b * Gh * Gw + (size_t)gy * Gw + gx) * K;
                for (int c = 0; c < Cin; c++)
                    for (int py = 0; py < P; py++) {
                        float *dst = dimg + (((size_t)b * Cin + c) * H + (size_t)gy * P + py) * W + (size_t)gx * P;
                        const float *src = row + ((size_t)c * P + py) * P;
                        for (int px = 0; px < P; px++) dst[px] = (acc ? dst[px] : 0.0f) + src[px];
                    }
            }
}

/* tok (B, N, D), cls (D), reg (R, D), pos (1+R+N, D) or (N, D) -> x (B, 1+R+N, D) */
void vt_embed_forward_ex(float *x, const float *tok, const float *cls, const float *reg, const float *pos, int B, int N,
                         int R, int D, bool pos_all)
{
    const int P = 1 + R, T = P + N;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * T * D;
        for (int j = 0; j < P; j++) {
            const float *src = j ? reg + (size_t)(j - 1) * D : cls;
            float *xr = xb + (size_t)j * D;
            if (pos_all)
                for (int d = 0; d < D; d++) xr[d] = src[d] + pos[(size_t)j * D + d];
            else
                memcpy(xr, src, sizeof(float) * (size_t)D);
        }
        for (int i = 0; i < N; i++) {
            const float *tr = tok + ((size_t)b * N + i) * D, *pr = pos + (size_t)(pos_all ? P + i : i) * D;
            float *xr = xb + (size_t)(P + i) * D;
            for (int d = 0; d < D; d++) xr[d] = tr[d] + pr[d];
        }
    }
}

void vt_embed_forward(float *x, const float *tok, const float *cls, const float *pos, int B, int N, int D)
{
    vt_embed_forward_ex(x, tok, cls, NULL, pos, B, N, 0, D, true);
}

/* dx (B, 1+R+N, D) -> dtok (B, N, D) (+)=, dcls (D) +=, dreg (R, D) +=, dpos (1+R+N or N, D) += */
void vt_embed_backward_ex(float *dtok, float *dcls, float *dreg, float *dpos, const float *dx, int B, int N, int R, int D,
                          bool pos_all, bool acc)
{
    const int P = 1 + R, T = P + N;
    if (dtok) {
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) {
                const float *src = dx + ((size_t)b * T + P + i) * D;
                float *dst = dtok + ((size_t)b * N + i) * D;
                for (int d = 0; d < D; d++) dst[d] = (acc ? dst[d] : 0.0f) + src[d];
            }
    }
    if (dpos) {
        /* tokens split between threads, batch summed in order: deterministic */
        const int first = pos_all ? 0 : P;
        #pragma omp parallel for schedule(static)
        for (int i = first; i < T; i++)
            for (int b = 0; b < B; b++) {
                const float *src = dx + ((size_t)b * T + i) * D;
                float *dst = dpos + (size_t)(i - first) * D;
                for (int d = 0; d < D; d++) dst[d] += src[d];
            }
    }
    for (int j = 0; j < P; j++) {
        float *dst = j ? (dreg ? dreg + (size_t)(j - 1) * D : NULL) : dcls;
        if (!dst) continue;
        for (int b = 0; b < B; b++) {
            const float *src = dx + ((size_t)b * T + j) * D;
            for (int d = 0; d < D; d++) dst[d] += src[d];
        }
    }
}

void vt_embed_backward(float *dtok, float *dcls, float *dpos, const float *dx, int B, int N, int D, bool acc)
{
    vt_embed_backward_ex(dtok, dcls, NULL, dpos, dx, B, N, 0, D, true, acc);
}

/* x (B, T, D) -> out (B, D) */
void vt_pool_forward(float *out, const float *x, int B, int T, int D, vt_pool_kind kind, int prefix)
{
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * D;
        float *o = out + (size_t)b * D;
        if (kind == VT_POOL_TOKEN) {
            memcpy(o, xb, (size_t)D * sizeof(float));
        } else {
            memset(o, 0, (size_t)D * sizeof(float));
            for (int t = prefix; t < T; t++)
                for (int d = 0; d < D; d++) o[d] += xb[(size_t)t * D + d];
            float inv = 1.0f / (float)(T - prefix);
            for (int d = 0; d < D; d++) o[d] *= inv;
        }
    }
}

/* dout (B, D) -> dx (B, T, D) (+)= (the rows pooling does not read get nothing: zeros when overwriting) */
void vt_pool_backward(float *dx, const float *dout, int B, int T, int D, vt_pool_kind kind, int prefix, bool acc)
{
    if (!acc) memset(dx, 0, sizeof(float) * (size_t)B * T * D);
    for (int b = 0; b < B; b++) {
        float *xb = dx + (size_t)b * T * D;
        const float *g = dout + (size_t)b * D;
        if (kind == VT_POOL_TOKEN) {
            for (int d = 0; d < D; d++) xb[d] += g[d];
        } else {
            float inv = 1.0f / (float)(T - prefix);
            for (int t = prefix; t < T; t++)
                for (int d = 0; d < D; d++) xb[(size_t)t * D + d] += g[d] * inv;
        }
    }
}

/* row r of out (the prefix tokens, then the kept ones) comes from row keep_src(keep_b, r, prefix) of x */
static inline int keep_src(const int32_t *keep_b, int r, int prefix) { return r < prefix ? r : keep_b[r - prefix]; }

void vt_token_keep_forward(float *out, const float *x, const int32_t *keep, int B, int T, int K, int D, int prefix)
{
    const int TO = prefix + K;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int r = 0; r < TO; r++)
            memcpy(out + ((size_t)b * TO + r) * D, x + ((size_t)b * T + keep_src(keep + (size_t)b * K, r, prefix)) * D,
                   sizeof(float) * (size_t)D);
}

void vt_token_keep_backward(float *dx, const float *dout, const int32_t *keep, int B, int T, int K, int D, int prefix,
                            bool acc)
{
    const int TO = prefix + K;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        if (!acc) memset(dx + (size_t)b * T * D, 0, sizeof(float) * (size_t)T * D);   /* dropped rows: zeros */
        for (int r = 0; r < TO; r++) {
            const float *src = dout + ((size_t)b * TO + r) * D;
            float *dst = dx + ((size_t)b * T + keep_src(keep + (size_t)b * K, r, prefix)) * D;
            #pragma omp simd
            for (int d = 0; d < D; d++) dst[d] += src[d];
        }
    }
}

void vt_token_fill_forward(float *out, const float *x, const float *fill, const int32_t *src, int B, int T, int TO,
                           int D)
{
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < TO; t++) {
            const int32_t s = src[(size_t)b * TO + t];
            memcpy(out + ((size_t)b * TO + t) * D, s >= 0 ? x + ((size_t)b * T + s) * D : fill, sizeof(float) * (size_t)D);
        }
}

void vt_token_fill_backward(float *dx, float *dfill, const float *dout, const int32_t *src, int B, int T, int TO, int D,
                            bool acc)
{
    if (dx) {
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            if (!acc) memset(dx + (size_t)b * T * D, 0, sizeof(float) * (size_t)T * D);
            for (int t = 0; t < TO; t++) {
                const int32_t s = src[(size_t)b * TO + t];
                if (s < 0) continue;
                const float *g = dout + ((size_t)b * TO + t) * D;
                float *dst = dx + ((size_t)b * T + s) * D;
                #pragma omp simd
                for (int d = 0; d < D; d++) dst[d] += g[d];
            }
        }
    }
    if (dfill)   /* one thread, in order: the same sums whatever the thread count */
        for (size_t r = 0; r < (size_t)B * TO; r++)
            if (src[r] < 0)
                for (int d = 0; d < D; d++) dfill[d] += dout[r * D + d];
}
