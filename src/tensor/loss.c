/* loss.c - softmax cross-entropy with label smoothing (torch's definition), and against soft targets
 * (timm's SoftTargetCrossEntropy, the loss of mixup and cutmix). */
#include "tensor.h"
#include "tensor_internal.h"
#include <math.h>

/* logits (B, K), labels (B) -> mean loss; probs (B, K) */
double vt_crossentropy_forward(float *probs, const float *logits, const int *labels, int B, int K,
                               float smoothing)
{
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        int y = labels[b];
        if (y < 0 || y >= K) return NAN;
        float m = -INFINITY;
        for (int k = 0; k < K; k++) m = z[k] > m ? z[k] : m;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - m);
        double lse = m + log(s);
        double nll = lse - z[y], smooth = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = (float)exp((double)z[k] - lse);
            smooth += lse - z[k];
        }
        total += (1.0 - smoothing) * nll + smoothing * smooth / K;
    }
    return total / B;
}

/* dlogits (B, K) (+)= dloss * (probs - target) / B */
void vt_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K,
                              float smoothing, float dloss, bool acc)
{
    float off = smoothing / K, scale = dloss / B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K;
        float *g = dlogits + (size_t)b * K;
        for (int k = 0; k < K; k++) {
            float target = off + (k == labels[b] ? 1.0f - smoothing : 0.0f);
            g[k] = (acc ? g[k] : 0.0f) + scale * (p[k] - target);
        }
    }
}

/* logits (B, K), targets (B, K) -> mean over B of sum_k -t[k] log p[k]; probs (B, K) */
double vt_crossentropy_soft_forward(float *probs, const float *logits, const float *targets, int B, int K)
{
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K, *t = targets + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float m = -INFINITY;
        for (int k = 0; k < K; k++) m = z[k] > m ? z[k] : m;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - m);
        double lse = m + log(s), l = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = (float)exp((double)z[k] - lse);
            l += (double)t[k] * (lse - z[k]);
        }
        total += l;
    }
    return total / B;
}

/* dlogits (B, K) (+)= dloss * (probs * sum_k t[k] - t) / B (probs - t for targets that sum to 1) */
void vt_crossentropy_soft_backward(float *dlogits, const float *probs, const float *targets, int B, int K, float dloss,
                                   bool acc)
{
    float scale = dloss / B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K, *t = targets + (size_t)b * K;
        float *g = dlogits + (size_t)b * K, st = 0.0f;
        for (int k = 0; k < K; k++) st += t[k];
        for (int k = 0; k < K; k++) g[k] = (acc ? g[k] : 0.0f) + scale * (p[k] * st - t[k]);
    }
}
