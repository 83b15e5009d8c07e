/* rng.c - xoshiro256** seeded with splitmix64; explicit state, no globals. */
#include "base.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void vt_rng_seed(vt_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vt_rng_u64(vt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double vt_rng_uniform(vt_rng *r) { return (double)(vt_rng_u64(r) >> 11) * 0x1.0p-53; }

double vt_rng_normal(vt_rng *r)
{
    /* Box-Muller; one value per call keeps the state a pure function of the call count */
    double u1 = vt_rng_uniform(r), u2 = vt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double vt_rng_trunc_normal(vt_rng *r, double mean, double std, double a, double b)
{
    /* rejection sampling; the bounds used by timm (+-2 absolute with std .02) accept ~always */
    for (int i = 0; i < 1000; i++) {
        double v = mean + std * vt_rng_normal(r);
        if (v >= a && v <= b) return v;
    }
    double v = mean;
    return v < a ? a : (v > b ? b : v);
}
