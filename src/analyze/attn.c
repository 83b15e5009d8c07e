/* attn.c - attention maps from the forward pass: the probabilities every block computed, the mean
 * attention distance of each head and attention rollout. Sums in double precision. */
#include "analyze.h"
#include <math.h>
#include <string.h>

int vt_an_forward_attention(vt_vit *m, vt_graph *g, float *x, int B, const float **att, const float **logits)
{
    const vt_vit_config *c = &m->cfg;
    if (g->recompute_attention)
        return vt_err("attention maps: the graph recomputes attention in backward and keeps no probabilities");
    vt_graph_reset(g);
    vt_graph_set_grad(g, true);   /* the tape keeps each block's P^T for backward: that is what we read */
    vt_var *in = vt_var_wrap(g, x, 4, (int64_t[]){B, c->in_chans, c->img_h, c->img_w}, "images");
    vt_var *out = in ? vt_vit_forward(m, g, in, NULL) : NULL;
    if (!out) return vt_err_prefix("attention maps: ");
    const int64_t T = 1 + (int64_t)m->grid_h * m->grid_w;
    int l = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const vt_node *n = &g->nodes[i];
        if (n->op != VT_OP_ATTENTION) continue;
        const struct vt_ctx_attention *a = &n->ctx.attention;
        if (l >= c->depth || !a->att || a->B != B || a->T != T || a->NH != c->num_heads)
            return vt_err("attention maps: block %d's attention kept no probabilities of (%d, %d, %lld, %lld)", l, B,
                          c->num_heads, (long long)T, (long long)T);
        att[l++] = a->att;
    }
    if (l != c->depth) return vt_err("attention maps: %d attention ops in the forward pass of %d blocks", l, c->depth);
    if (logits) *logits = out->val.data;
    return VT_OK;
}

void vt_an_patch_distances(int gh, int gw, int patch, double *dist)
{
    const int N = gh * gw;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            const double dr = i / gw - j / gw, dc = i % gw - j % gw;
            dist[(size_t)i * N + j] = patch * sqrt(dr * dr + dc * dc);
        }
}

void vt_an_attention_distance(const float *att, int B, int NH, int T, const double *dist, double *sum)
{
    const int N = T - 1;
    double wsum[N], dsum[N];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *P = att + ((size_t)b * NH + h) * T * T;   /* P^T: row s (key), column t (query) */
            for (int t = 0; t < N; t++) wsum[t] = dsum[t] = 0;
            for (int s = 1; s < T; s++) {
                const float *row = P + (size_t)s * T + 1;
                const double *d = dist + (size_t)(s - 1) * N;   /* symmetric: d[t] = dist(key s, query t) */
                for (int t = 0; t < N; t++) {
                    wsum[t] += row[t];
                    dsum[t] += row[t] * d[t];
                }
            }
            double acc = 0;
            for (int t = 0; t < N; t++) acc += wsum[t] > 0 ? dsum[t] / wsum[t] : 0.0;
            sum[h] += acc;
        }
}

void vt_an_rollout(const float *const *att, int depth, int b, int NH, int T, bool mean_row, double *out, double *work)
{
    /* v^T A_{L-1} ... A_0 from the left, one vector-matrix product per block (never a T x T product):
     * A = (mean_h P + I) / rowsum, so v^T A (key s) = sum_t u[t] (mean_h P^T[s][t] + [s = t]) with
     * u[t] = v[t] / rowsum[t], rowsum[t] = 1 + sum_s mean_h P^T[s][t] */
    double *v = work, *rs = work + T, *nv = work + 2 * T;
    for (int t = 0; t < T; t++) v[t] = mean_row ? (t ? 1.0 / (T - 1) : 0.0) : (t ? 0.0 : 1.0);
    for (int l = depth - 1; l >= 0; l--) {
        const float *P = att[l] + (size_t)b * NH * T * T;
        for (int t = 0; t < T; t++) rs[t] = 0, nv[t] = 0;
        for (int h = 0; h < NH; h++)
            for (int s = 0; s < T; s++) {
                const float *row = P + ((size_t)h * T + s) * T;
                for (int t = 0; t < T; t++) rs[t] += row[t];
            }
        for (int t = 0; t < T; t++) rs[t] = v[t] / (1.0 + rs[t] / NH);   /* u[t] */
        for (int h = 0; h < NH; h++)
            for (int s = 0; s < T; s++) {
                const float *row = P + ((size_t)h * T + s) * T;
                double acc = 0;
                for (int t = 0; t < T; t++) acc += row[t] * rs[t];
                nv[s] += acc / NH;
            }
        for (int s = 0; s < T; s++) v[s] = nv[s] + rs[s];
    }
    for (int i = 0; i < T - 1; i++) out[i] = v[1 + i];
}
