/* ema.c - the exponential moving average of the weights, as timm's ModelEmaV2 (ema = decay ema +
 * (1 - decay) w) and ModelEmaV3 (its warmup of the decay, and torch's lerp). */
#include "optim.h"
#include <math.h>

double vt_ema_decay_at(double decay, bool warmup, int64_t t)
{
    if (!warmup) return decay;
    /* ModelEmaV3.get_decay(step = t): max(0, t - 1); 0 gives 0, else 1 - (1 + s)^(-2/3), at most decay */
    int64_t s = t - 1;
    if (s <= 0) return 0.0;
    double d = 1.0 - pow(1.0 + (double)s, -2.0 / 3.0);
    return d < decay ? d : decay;
}

void vt_ema_update(float *ema, const float *w, int64_t n, double decay, bool lerp)
{
    if (!lerp) {   /* ModelEmaV2: ema * decay + (1 - decay) * w, float32 with the two factors rounded to float */
        const float d = (float)decay, od = (float)(1.0 - decay);
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) ema[i] = ema[i] * d + od * w[i];
        return;
    }
    /* ModelEmaV3: torch.lerp(ema, w, 1 - decay), torch's two-sided formula */
    const float a = (float)(1.0 - decay), b = 1.0f - a;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) ema[i] = fabsf(a) < 0.5f ? ema[i] + a * (w[i] - ema[i]) : w[i] - (w[i] - ema[i]) * b;
}
