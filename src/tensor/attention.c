/* attention.c - multi-head scaled dot-product self-attention on a fused qkv tensor.
 * Parallel over (batch, head); q, k, v are read in place (row stride 3C), no copies.
 *
 * Each head works on the transposed scores S^T = scale K Q^T (row s, column t), so that the
 * softmax over s for every query t, and backward's sum over s, run down the columns with whole
 * vectors across t instead of a horizontal reduction per row; P^T is what att keeps.
 *
 * Two ways to give backward the softmax probabilities:
 *  - keep them (att != NULL): fastest, T*T floats per head and image;
 *  - keep only two floats per query, the max m and 1/sum (stats != NULL, att == NULL), and
 *    recompute P^T = exp(S^T - m) / sum in backward with the same GEMM and the same float
 *    operations: bitwise the P that forward had, for one extra (T x T x hs) GEMM per head. */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* row of P^T in place: e = exp(e - m) elementwise (m per column), and sum += e when sum is given (one loop
 * body for forward and recompute) */
static inline void exp_row(float *e, const float *restrict m, float *restrict sum, int n)
{
    if (sum) {
        #pragma omp simd
        for (int t = 0; t < n; t++) {
            e[t] = vt__expf(e[t] - m[t]);
            sum[t] += e[t];
        }
    } else {
        #pragma omp simd
        for (int t = 0; t < n; t++) e[t] = vt__expf(e[t] - m[t]);
    }
}

static inline void scale_row(float *restrict e, const float *restrict inv, int n)
{
    #pragma omp simd
    for (int t = 0; t < n; t++) e[t] *= inv[t];
}

/* in-place softmax of every column of S^T (T, T): st[0..T) = column max, st[T..2T) = 1/sum */
static void softmax_cols(float *S, int T, float *st)
{
    float *m = st, *inv = st + T;
    for (int t = 0; t < T; t++) m[t] = -INFINITY, inv[t] = 0.0f;
    for (int s = 0; s < T; s++) {
        const float *r = S + (size_t)s * T;
        #pragma omp simd
        for (int t = 0; t < T; t++) m[t] = r[t] > m[t] ? r[t] : m[t];
    }
    for (int s = 0; s < T; s++) exp_row(S + (size_t)s * T, m, inv, T);
    for (int t = 0; t < T; t++) inv[t] = 1.0f / inv[t];
    for (int s = 0; s < T; s++) scale_row(S + (size_t)s * T, inv, T);
}

/* Short sequences with small heads (the default Fashion-MNIST model: T 50, head size 32) make each
 * per-head product about 100k multiply-adds, little more than a BLAS call costs to set up; they go
 * through small_gemm's register tiles. Longer sequences or larger heads use BLAS (at T 50, head size
 * 64, BLAS was already faster: vit-bench --model fmnist --batch 128, attention 38 vs 48 ms a step). */
enum { SMALL_T = 64, SMALL_HS = 32 };

static inline bool small_path(int T, int hs) { return T <= SMALL_T && hs <= SMALL_HS; }

/* C (M, N) = alpha A B + beta C, or alpha A^T B + beta C with transA (A of row stride lda), B row-major
 * with at least N rounded up to VL readable columns. Register tiles of up to MR rows x NV vectors of VL
 * floats (GCC vector extensions), sized from the target so that the MR x NV accumulators, NV vectors
 * of B and one broadcast of A fit its vector registers without spilling:
 *   AVX-512 (32 zmm): 16 lanes, 8 x 2 -> 19 registers;  AVX/AVX2 (16 ymm): 8 lanes, 6 x 2 -> 15;
 *   aarch64 NEON (32 q): 4 lanes, 8 x 3 -> 28;          other targets (SSE2's 16 xmm): 4 lanes, 6 x 2.
 * (A vector wider than the target's is split by GCC into pieces that no longer fit its registers:
 * the 8 x 32 tile of 16-float vectors built for AVX2 took 70 of a 92 ms step on the default model.)
 * The last vector of a row may be partial (nl < VL lanes stored). */
#if defined(__AVX512F__)
#define VL 16
#define MR 8
#define NV 2
#elif defined(__AVX__)
#define VL 8
#define MR 6
#define NV 2
#elif defined(__aarch64__)
#define VL 4
#define MR 8
#define NV 3
#else
#define VL 4
#define MR 6
#define NV 2
#endif
typedef float vfl __attribute__((vector_size(VL * sizeof(float))));

static inline vfl ldv(const float *p)
{
    vfl v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* rows [0, mr) and vectors [0, nv) of a tile, nl lanes of the last vector; mr <= MR, nv <= NV and
 * transA are constants after inlining */
static inline __attribute__((always_inline)) void tile(int mr, int nv, bool transA, int nl, int K, float alpha,
                                                       const float *A, int lda, const float *B, int ldb,
                                                       float beta, float *C, int ldc)
{
    vfl c[MR][NV] = {{{0}}};
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        vfl bv[NV];
        for (int v = 0; v < nv; v++) bv[v] = ldv(b + VL * v);
        const float *a = transA ? A + (size_t)k * lda : A + k;
        for (int r = 0; r < mr; r++) {
            const float ar = transA ? a[r] : a[(size_t)r * lda];
            for (int v = 0; v < nv; v++) c[r][v] += ar * bv[v];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *o = C + (size_t)r * ldc + VL * v;
            const vfl x = alpha * c[r][v];
            if (v < nv - 1 || nl == VL) {
                const vfl y = beta == 0.0f ? x : x + beta * ldv(o);
                memcpy(o, &y, sizeof y);
            } else {
                for (int l = 0; l < nl; l++) o[l] = beta == 0.0f ? x[l] : x[l] + beta * o[l];
            }
        }
}

/* the tile for nv vectors (1..NV) and mr rows (1..MR), each a constant inside */
#define TILE_NV(R, NVC) tile(R, NVC, transA, nl, K, alpha, a, lda, B + j, ldb, beta, c, ldc)
#if NV == 3
#define TILE_ROWS(R) (nv == 3 ? TILE_NV(R, 3) : nv == 2 ? TILE_NV(R, 2) : TILE_NV(R, 1))
#else
#define TILE_ROWS(R) (nv == 2 ? TILE_NV(R, 2) : TILE_NV(R, 1))
#endif

static inline __attribute__((always_inline)) void small_gemm_t(bool transA, int M, int N, int K, float alpha,
                                                               const float *A, int lda, const float *B, int ldb,
                                                               float beta, float *C, int ldc)
{
    for (int j = 0; j < N;) {
        const int left = N - j, nv = left >= NV * VL ? NV : (left + VL - 1) / VL;
        const int nl = left >= NV * VL ? VL : (left - 1) % VL + 1;
        for (int i = 0; i < M; i += MR) {
            const float *a = transA ? A + i : A + (size_t)i * lda;
            float *c = C + (size_t)i * ldc + j;
            const int mr = M - i < MR ? M - i : MR;
            switch (mr) {
            case 1: TILE_ROWS(1); break;
            case 2: TILE_ROWS(2); break;
            case 3: TILE_ROWS(3); break;
            case 4: TILE_ROWS(4); break;
            case 5: TILE_ROWS(5); break;
            case 6: TILE_ROWS(6); break;
#if MR > 6
            case 7: TILE_ROWS(7); break;
            case 8: TILE_ROWS(8); break;
#endif
            }
        }
        j += VL * nv;
    }
}
#undef TILE_ROWS
#undef TILE_NV

static void small_gemm(bool transA, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc)
{
    if (transA) small_gemm_t(true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else small_gemm_t(false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static inline int padv(int n) { return (n + VL - 1) / VL * VL; }

/* Z (T, n) of row stride ld, as small_gemm's B: itself when n is a multiple of VL (reading a row's
 * vectors stays inside it), else copied into buf (T, padv(n)) with zeros after column n */
static const float *padded(const float *Z, int T, int n, int ld, float *buf, int *ldo)
{
    if (n % VL == 0) {
        *ldo = ld;
        return Z;
    }
    const int np = padv(n);
    for (int t = 0; t < T; t++) {
        memcpy(buf + (size_t)t * np, Z + (size_t)t * ld, sizeof(float) * (size_t)n);
        memset(buf + (size_t)t * np + n, 0, sizeof(float) * (size_t)(np - n));
    }
    *ldo = np;
    return buf;
}

/* C (T, T) = alpha X Y^T for X, Y (T, hs) of row strides ldx, ldy: the dot-product form, as
 * small_gemm on Y transposed (zero-padded columns) when small, else BLAS */
static void gemm_nt(int T, int hs, float alpha, const float *X, int ldx, const float *Y, int ldy, float *C)
{
    if (!small_path(T, hs)) {
        vt_sgemm(false, true, T, T, hs, alpha, X, ldx, Y, ldy, 0.0f, C, T);
        return;
    }
    const int tp = padv(T);
    float yt[SMALL_HS * SMALL_T];
    for (int d = 0; d < hs; d++) {
        float *row = yt + (size_t)d * tp;
        for (int s = 0; s < T; s++) row[s] = Y[(size_t)s * ldy + d];
        for (int s = T; s < tp; s++) row[s] = 0.0f;
    }
    small_gemm(false, T, T, hs, alpha, X, ldx, yt, tp, 0.0f, C, T);
}

/* C (T, hs) = P Z + beta C, or P^T Z with trans, for P (T, T) and Z (T, hs) of row stride ldz */
static void gemm_pz(bool trans, int T, int hs, const float *P, const float *Z, int ldz, float beta, float *C,
                    int ldc)
{
    if (small_path(T, hs)) {
        float buf[SMALL_T * SMALL_HS];
        int ld;
        const float *z = padded(Z, T, hs, ldz, buf, &ld);
        small_gemm(trans, T, hs, T, 1.0f, P, T, z, ld, beta, C, ldc);
    } else {
        vt_sgemm(trans, false, T, hs, T, 1.0f, P, T, Z, ldz, beta, C, ldc);
    }
}

/* S^T = scale K Q^T of one (b, h) into A (T, T) */
static inline void scores_t(float *A, const float *q, const float *k, int T, int hs, int C3, float scale)
{
    gemm_nt(T, hs, scale, k, C3, q, C3, A);
}

size_t vt_attention_scratch_floats(int T) { return (size_t)2 * omp_get_max_threads() * T * T; }

void vt_attention_forward_ex(float *out, float *att, float *stats, float *scratch, const float *qkv, int B, int T,
                             int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *own = NULL, *buf = NULL, st[2 * T];
        if (!att) buf = scratch ? scratch + (size_t)2 * omp_get_thread_num() * T * T
                                : (own = malloc(sizeof(float) * (size_t)T * T));
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
                const size_t bh = (size_t)b * NH + h;
                float *A = att ? att + bh * T * T : buf;
                scores_t(A, q, k, T, hs, C3, scale);
                softmax_cols(A, T, stats ? stats + bh * 2 * T : st);
                /* O = P V = (P^T)^T V (T, hs) into the head's columns of out */
                gemm_pz(true, T, hs, A, v, C3, 0.0f, out + (size_t)b * T * C + h * hs, C);
            }
        }
        free(own);
    }
}

void vt_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    vt_attention_forward_ex(out, att, NULL, NULL, qkv, B, T, C, NH);
}

void vt_attention_backward_ex(float *dqkv, const float *dout, const float *qkv, const float *att,
                              const float *stats, float *scratch, int B, int T, int C, int NH, bool acc)
{
    const float beta = acc ? 1.0f : 0.0f;   /* each of dq, dk, dv of a head is written by one GEMM */
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel
    {
        float *own = NULL, *dp, *pbuf, dot[T];
        if (scratch)
            dp = scratch + (size_t)2 * omp_get_thread_num() * T * T;
        else
            dp = own = malloc(sizeof(float) * (size_t)T * T * (att ? 1 : 2));
        pbuf = dp + (size_t)T * T;
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t off = (size_t)b * T * C3 + h * hs, bh = (size_t)b * NH + h;
                const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
                float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
                const float *P;   /* P^T (s, t) */
                if (att) {
                    P = att + bh * T * T;
                } else {
                    /* recompute exactly what forward computed */
                    const float *m = stats + bh * 2 * T, *inv = m + T;
                    scores_t(pbuf, q, k, T, hs, C3, scale);
                    for (int s = 0; s < T; s++) exp_row(pbuf + (size_t)s * T, m, NULL, T);
                    for (int s = 0; s < T; s++) scale_row(pbuf + (size_t)s * T, inv, T);
                    P = pbuf;
                }
                const float *dO = dout + (size_t)b * T * C + h * hs;
                /* dP^T = V dO^T; dV += P^T dO */
                gemm_nt(T, hs, 1.0f, v, C3, dO, C, dp);
                gemm_pz(false, T, hs, P, dO, C, beta, dv, C3);
                /* dS^T = P^T (dP^T - colsum(P^T dP^T)) * scale */
                for (int t = 0; t < T; t++) dot[t] = 0.0f;
                for (int s = 0; s < T; s++) {
                    const float *pr = P + (size_t)s * T, *r = dp + (size_t)s * T;
                    #pragma omp simd
                    for (int t = 0; t < T; t++) dot[t] += pr[t] * r[t];
                }
                for (int s = 0; s < T; s++) {
                    const float *pr = P + (size_t)s * T;
                    float *r = dp + (size_t)s * T;
                    #pragma omp simd
                    for (int t = 0; t < T; t++) r[t] = pr[t] * (r[t] - dot[t]) * scale;
                }
                /* dQ += dS K = (dS^T)^T K; dK += dS^T Q */
                gemm_pz(true, T, hs, dp, k, C3, beta, dq, C3);
                gemm_pz(false, T, hs, dp, q, C3, beta, dk, C3);
            }
        }
        free(own);
    }
}

void vt_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                           int NH, bool acc)
{
    vt_attention_backward_ex(dqkv, dout, qkv, att, NULL, NULL, B, T, C, NH, acc);
}
