/* tensor_internal.h - helpers shared between kernel files of src/tensor; not public. */
#ifndef VIT_TENSOR_INTERNAL_H
#define VIT_TENSOR_INTERNAL_H
#include <stdint.h>
#include <math.h>
#include <string.h>


/* exp for float32 written without calls or branches so that loops over it vectorise:
 * e^x = 2^n e^r, n = round(x log2 e), r = x - n ln2 (two-part ln2), e^r by its degree-7 Taylor
 * polynomial (|r| <= ln2/2: relative error below 1e-8 before rounding). */
static inline float vt__expf(float x)
{
    /* clamp, one select each: a value-select vectorises on every target; nested ternaries and
     * fminf/fmaxf (NaN rules) need AVX-512's mask registers under GCC's default -ftrapping-math */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round to nearest by adding and subtracting 1.5 * 2^23 (vectorises, unlike floorf) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    /* a NaN x (a diverged run's logits) passes the clamp: keep n a number so that the exponent below is in
     * range (converting NaN to int and shifting the negative result is undefined); the result is still NaN,
     * through r */
    n = n == n ? n : 0.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { int32_t i; float f; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

/* erf via erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2) (Numerical Recipes' Chebyshev fit,
 * fractional error below 1.2e-7), vectorisable like vt__expf */
static inline float vt__erff(float x)
{
    float z = fabsf(x);
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float erfc = t * vt__expf(-z * z + p);
    float r = 1.0f - erfc;
    return copysignf(r, x);   /* erf is odd; sign by bit operations, no branch */
}

/* Column sums split between threads (bias and LayerNorm parameter gradients): thread t owns columns
 * [c0, c1) and adds row after row into a private copy of them, VT_COLS at a time, copied back at the
 * end: bitwise the sums of adding into the destination directly, but two threads no longer write the
 * cache line their ranges share once a row (that false sharing made 2 threads 2.6x slower than one
 * on a (6400, 192) LayerNorm backward) */
enum { VT_COLS = 256 };
static inline void vt__col_range(int C, int *c0, int *c1, int t, int nt)
{
    *c0 = (int)((int64_t)C * t / nt);
    *c1 = (int)((int64_t)C * (t + 1) / nt);
}
#endif
