/* gradcheck.c - compare the tape's gradients with central finite differences. */
#include "autograd_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int eval_loss(vt_gradcheck_fn f, void *ctx, vt_var **inputs, int nin, vt_graph *g, double *loss)
{
    vt_graph_reset(g);
    vt_var *l = f(g, inputs, nin, ctx);
    if (!l) return VT_ERR;
    *loss = l->val.data[0];
    return VT_OK;
}

double vt_gradcheck(vt_gradcheck_fn f, void *ctx, vt_var **inputs, int nin, double h, double atol, double rtol,
                    char *worst_desc, size_t desc_len)
{
    vt_graph g;
    if (vt_graph_init(&g, 1 << 20) != VT_OK) return INFINITY;
    double worst = 0.0;
    if (worst_desc && desc_len) worst_desc[0] = '\0';
    /* analytic gradients: inputs get heap gradient buffers for the duration of the check */
    float **analytic = calloc((size_t)nin, sizeof *analytic);
    float **saved_grad = calloc((size_t)nin, sizeof *saved_grad);
    bool *saved_rg = calloc((size_t)nin, sizeof *saved_rg);
    for (int i = 0; i < nin; i++) {
        saved_rg[i] = inputs[i]->requires_grad;
        int64_t n = vt_tensor_numel(&inputs[i]->val);
        analytic[i] = calloc((size_t)n, sizeof(float));
        saved_grad[i] = inputs[i]->grad;
        inputs[i]->grad = analytic[i];
        inputs[i]->requires_grad = true;
    }
    vt_var *l = f(&g, inputs, nin, ctx);
    if (!l || vt_backward(&g, l) != VT_OK) {
        worst = INFINITY;
        if (worst_desc) snprintf(worst_desc, desc_len, "forward/backward failed: %s", vt_errmsg());
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        float *x = inputs[i]->val.data;
        int64_t n = vt_tensor_numel(&inputs[i]->val);
        for (int64_t k = 0; k < n; k++) {
            float x0 = x[k];
            double lp, lm;
            x[k] = (float)(x0 + h);
            double hp = (double)x[k] - x0;
            int ok = eval_loss(f, ctx, inputs, nin, &g, &lp);
            x[k] = (float)(x0 - h);
            double hm = x0 - (double)x[k];
            ok |= eval_loss(f, ctx, inputs, nin, &g, &lm);
            x[k] = x0;
            if (ok != VT_OK) {
                worst = INFINITY;
                if (worst_desc) snprintf(worst_desc, desc_len, "forward failed: %s", vt_errmsg());
                goto done;
            }
            double num = (lp - lm) / (hp + hm), ana = analytic[i][k];
            double err = fabs(num - ana) / fmax(atol, rtol * fmax(fabs(num), fabs(ana)));
            if (!(err <= worst)) {
                worst = err;
                if (worst_desc)
                    snprintf(worst_desc, desc_len, "input %d element %lld: analytic %.6g numeric %.6g", i, (long long)k,
                             ana, num);
            }
        }
    }
done:
    for (int i = 0; i < nin; i++) {
        inputs[i]->grad = saved_grad[i];
        inputs[i]->requires_grad = saved_rg[i];   /* the inputs leave the check as they came */
        free(analytic[i]);
    }
    free(analytic);
    free(saved_grad);
    free(saved_rg);
    vt_graph_free(&g);
    return worst;
}
