/* test_analyze.c - the numbers of vit-analyze against independent computations: hand-made position
 * embeddings with known cosines, a patch embedding with a known principal basis, hand-made attention
 * with a known mean distance and rollout, a double-precision forward pass of a tiny ViT for the
 * probabilities the tape keeps, the goldens' vit_tiny_f64 against a PyTorch reference
 * (analyze_reference.h, printed by bench/analyze_reference.py), and the tool itself run as a user runs it. */
#include "testutil.h"
#include "analyze_reference.h"
#include "data_fixtures.h"
#include "analyze/analyze.h"
#include <cairo.h>
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------- position-embedding similarity */
START_TEST(pos_similarity_known_cosines)
{
    /* a prefix row that must be left out, then 5 positions in 3 dimensions */
    const float pos[6][3] = {{9, 9, 9}, {1, 0, 0}, {0, 2, 0}, {1, 1, 0}, {-3, 0, 0}, {0, 0, 0}};
    double sim[25];
    vt_an_pos_similarity(&pos[0][0], 1, 5, 3, sim);
    const double h = 1 / sqrt(2.0);
    const double want[5][5] = {{1, 0, h, -1, 0}, {0, 1, h, 0, 0}, {h, h, 1, -h, 0}, {-1, 0, -h, 1, 0}, {0, 0, 0, 0, 1}};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            ck_assert_msg(fabs(sim[i * 5 + j] - want[i][j]) < 1e-12, "sim[%d][%d] = %.15g, expected %.15g", i, j,
                          sim[i * 5 + j], want[i][j]);
}
END_TEST

/* a 2 x 3 grid whose similarity is 1 along rows, -1 along columns, 0.5 elsewhere: the means say so, and the
 * neighbours (7 pairs in each direction: 4 along rows, 3 along columns) average 1 and -1 */
START_TEST(pos_structure_known)
{
    enum { gh = 2, gw = 3, N = gh * gw };
    double sim[N * N], out[4];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            sim[i * N + j] = i == j ? 1 : i / gw == j / gw ? 1 : i % gw == j % gw ? -1 : 0.5;
    vt_an_pos_structure(sim, gh, gw, out);
    const double want[4] = {(4 * 1.0 + 3 * -1.0) / 7, 1, -1, 0.5};
    for (int k = 0; k < 4; k++) ck_assert_msg(fabs(out[k] - want[k]) < 1e-12, "kind %d: %g, expected %g", k, out[k], want[k]);
}
END_TEST

/* ---------------------------------------------------------------- principal components */
/* an orthonormal basis of R^k (rows of u, k x k) from Gram-Schmidt on seeded random vectors */
static void random_basis(double *u, int k, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed);
    for (int i = 0; i < k; i++) {
        double *v = u + (size_t)i * k;
        for (int a = 0; a < k; a++) v[a] = vt_rng_uniform(&r) - 0.5;
        for (int j = 0; j < i; j++) {
            double d = 0;
            for (int a = 0; a < k; a++) d += v[a] * u[(size_t)j * k + a];
            for (int a = 0; a < k; a++) v[a] -= d * u[(size_t)j * k + a];
        }
        double n = 0;
        for (int a = 0; a < k; a++) n += v[a] * v[a];
        for (int a = 0; a < k; a++) v[a] /= sqrt(n);
    }
}

/* 8 rows = mean + sum_j s_j H[i][j+1] u_j with the columns of the 8 x 8 Hadamard matrix, which are zero-mean
 * and orthogonal (norm^2 8): the sample covariance is exactly sum_j s_j^2 8/7 u_j u_j^T */
START_TEST(pca_known_basis)
{
    enum { n = 8, k = 12, nd = 4 };
    const double s[nd] = {4, 3, 2, 1}, mean = 0.25;
    double u[k * k];
    random_basis(u, k, 3);
    float w[n * k];
    for (int i = 0; i < n; i++)
        for (int a = 0; a < k; a++) {
            double v = mean + 0.01 * a;
            for (int j = 0; j < nd; j++) {
                const int col = j + 1, hij = __builtin_popcount((unsigned)(i & col)) % 2 ? -1 : 1;   /* Sylvester */
                v += s[j] * hij * u[j * k + a];
            }
            w[i * k + a] = (float)v;
        }
    double comp[5 * k], var[5], ratio[5];
    ck_assert_msg(vt_an_pca(w, n, k, 5, comp, var, ratio) == VT_OK, "%s", vt_errmsg());
    double total = 0;
    for (int j = 0; j < nd; j++) total += s[j] * s[j] * 8 / 7;
    for (int j = 0; j < nd; j++) {
        const double ev = s[j] * s[j] * 8 / 7;
        ck_assert_msg(fabs(var[j] - ev) < 1e-5 * ev, "variance %d: %.9g, expected %.9g", j, var[j], ev);
        ck_assert_msg(fabs(ratio[j] - ev / total) < 1e-6, "ratio %d: %.9g, expected %.9g", j, ratio[j], ev / total);
        double dot = 0, big = 0;
        int at = 0;
        for (int a = 0; a < k; a++) {
            dot += comp[j * k + a] * u[j * k + a];
            if (fabs(comp[j * k + a]) > big) big = fabs(comp[j * k + a]), at = a;
        }
        ck_assert_msg(fabs(fabs(dot) - 1) < 1e-5, "component %d: |<pc, u>| = %.9g, expected 1", j, fabs(dot));
        ck_assert_msg(comp[j * k + at] > 0, "component %d: its largest entry is negative", j);
    }
    ck_assert_msg(var[4] < 1e-5 && ratio[4] < 1e-6, "a fifth component of a rank-4 set: variance %g", var[4]);
    ck_assert_int_eq(vt_an_pca(w, 1, k, 3, comp, var, ratio), VT_ERR);
    ck_assert_ptr_nonnull(strstr(vt_errmsg(), "2 rows or more"));
}
END_TEST

/* ---------------------------------------------------------------- hand-made attention */
/* the pixel distance of patches i, j of a gh x gw grid, from first principles */
static double ref_dist(int i, int j, int gw, int p)
{
    const int r1 = i / gw, c1 = i % gw, r2 = j / gw, c2 = j % gw;
    return hypot((r1 + 0.5) * p - (r2 + 0.5) * p, (c1 + 0.5) * p - (c2 + 0.5) * p);
}

/* uniform attention over every token (class token included) is uniform over the patches after the
 * renormalisation: the mean distance is the mean over all pairs of patches; attention split between the
 * class token and the right-hand neighbour is one patch width for the queries that have one */
START_TEST(attention_distance_known)
{
    enum { gh = 3, gw = 5, p = 4, N = gh * gw, T = N + 1, NH = 2, B = 2 };
    double dist[N * N], sum[NH] = {0, 0};
    vt_an_patch_distances(gh, gw, p, dist);
    static float att[B * NH * T * T];
    for (int b = 0; b < B; b++)
        for (int s = 0; s < T; s++)
            for (int t = 0; t < T; t++) {
                att[((b * NH + 0) * T + s) * T + t] = 1.0f / T;   /* head 0: uniform */
                const bool right = t >= 1 && (t - 1) % gw < gw - 1 && s == t + 1;
                const bool self = t >= 1 && (t - 1) % gw == gw - 1 && s == t;
                att[((b * NH + 1) * T + s) * T + t] = s == 0 ? 0.5f : right || self ? 0.5f : 0.0f;
            }
    vt_an_attention_distance(att, B, NH, T, dist, sum);
    double uni = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) uni += ref_dist(i, j, gw, p) / N;
    const double want1 = (double)p * gh * (gw - 1);   /* the last column attends to itself: distance 0 */
    ck_assert_msg(fabs(sum[0] / (B * N) - uni / N) < 1e-9, "uniform: %.12g, expected %.12g", sum[0] / (B * N), uni / N);
    ck_assert_msg(fabs(sum[1] / B - want1) < 1e-9, "right neighbour: %.12g, expected %.12g", sum[1] / B, want1);
}
END_TEST

/* every query of every block attends only to patch token k: v A = (e_k + v) / 2 for any row v that sums
 * to one, so after L blocks the class token's row is e_k (1 - 2^-L) + e_0 2^-L, and so is the mean row */
START_TEST(rollout_one_hot)
{
    enum { N = 6, T = N + 1, NH = 3, L = 4, k = 4 };
    static float a[L][NH * T * T];
    const float *att[L];
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) a[l][(h * T + k) * T + t] = 1.0f;
        att[l] = a[l];
    }
    double out[N], work[3 * T];
    for (int mean = 0; mean < 2; mean++) {
        vt_an_rollout(att, L, 0, NH, T, mean, out, work);
        for (int i = 0; i < N; i++) {
            double want = i + 1 == k ? 1 - pow(2, -L) : 0;
            if (mean) want = i + 1 == k ? 1 - pow(2, -L) + pow(2, -L) / N : pow(2, -L) / N;
            ck_assert_msg(fabs(out[i] - want) < 1e-12, "mean row %d, patch %d: %.15g, expected %.15g", mean, i, out[i], want);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------- a tiny ViT in double precision */
static double pd(const vt_vit *m, int idx, int64_t i) { return m->params.vars[idx].val.data[i]; }

static void ref_layernorm(const vt_vit *m, int wi, int bi, const double *x, double *y, int T, int D)
{
    for (int t = 0; t < T; t++) {
        double mu = 0, var = 0;
        for (int d = 0; d < D; d++) mu += x[t * D + d] / D;
        for (int d = 0; d < D; d++) var += (x[t * D + d] - mu) * (x[t * D + d] - mu) / D;
        for (int d = 0; d < D; d++)
            y[t * D + d] = (x[t * D + d] - mu) / sqrt(var + m->cfg.ln_eps) * pd(m, wi, d) + pd(m, bi, d);
    }
}

/* y (T, out) = x (T, in) W^T + b */
static void ref_linear(const vt_vit *m, int wi, int bi, const double *x, double *y, int T, int in, int out)
{
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = pd(m, bi, o);
            for (int i = 0; i < in; i++) s += x[t * in + i] * pd(m, wi, (int64_t)o * in + i);
            y[t * out + o] = s;
        }
}

/* softmax(q k^T / sqrt(hs)) of every head from qkv (T, 3D): P[h][t][s] (query t, key s), and o (T, D) = P v */
static void ref_heads(const double *qkv, int T, int D, int NH, double *P, double *o)
{
    const int hs = D / NH;
    for (int hd = 0; hd < NH; hd++)
        for (int t = 0; t < T; t++) {
            double *row = P + ((size_t)hd * T + t) * T, mx = -INFINITY, z = 0;
            for (int s = 0; s < T; s++) {
                double d = 0;
                for (int e = 0; e < hs; e++) d += qkv[t * 3 * D + hd * hs + e] * qkv[s * 3 * D + D + hd * hs + e];
                row[s] = d / sqrt((double)hs);
                mx = fmax(mx, row[s]);
            }
            for (int s = 0; s < T; s++) z += row[s] = exp(row[s] - mx);
            for (int s = 0; s < T; s++) row[s] /= z;
            for (int e = 0; o && e < hs; e++) {
                double acc = 0;
                for (int s = 0; s < T; s++) acc += row[s] * qkv[s * 3 * D + 2 * D + hd * hs + e];
                o[t * D + hd * hs + e] = acc;
            }
        }
}

/* the attention probabilities of one image x (C, H, W): P[l][h][t][s] (query t, key s) */
static void ref_attention(const vt_vit *m, const float *x, double *P)
{
    const vt_vit_config *c = &m->cfg;
    const int D = c->embed_dim, gw = m->grid_w, p = c->patch, C = c->in_chans, N = m->grid_h * gw, T = N + 1;
    const int NH = c->num_heads, Hd = (int)(D * c->mlp_ratio), K = C * p * p;
    double *tok = calloc((size_t)T * D, 8), *h = calloc((size_t)T * D, 8), *qkv = calloc((size_t)T * 3 * D, 8);
    double *o = calloc((size_t)T * D, 8), *f = calloc((size_t)T * Hd, 8), *patch = calloc((size_t)K, 8);
    for (int d = 0; d < D; d++) tok[d] = pd(m, m->cls_token, d) + pd(m, m->pos_embed, d);
    for (int i = 0; i < N; i++) {
        for (int ch = 0; ch < C; ch++)
            for (int py = 0; py < p; py++)
                for (int px = 0; px < p; px++)
                    patch[(ch * p + py) * p + px] = x[((size_t)ch * c->img_h + (i / gw) * p + py) * c->img_w + (i % gw) * p + px];
        ref_linear(m, m->patch_w, m->patch_b, patch, tok + (size_t)(i + 1) * D, 1, K, D);
        for (int d = 0; d < D; d++) tok[(i + 1) * D + d] += pd(m, m->pos_embed, (int64_t)(i + 1) * D + d);
    }
    for (int l = 0; l < c->depth; l++) {
        const vt_block_params *b = &m->blocks[l];
        ref_layernorm(m, b->norm1_w, b->norm1_b, tok, h, T, D);
        ref_linear(m, b->qkv_w, b->qkv_b, h, qkv, T, D, 3 * D);
        ref_heads(qkv, T, D, NH, P + (size_t)l * NH * T * T, o);
        ref_linear(m, b->proj_w, b->proj_b, o, h, T, D, D);
        for (int e = 0; e < T * D; e++) tok[e] += h[e];
        ref_layernorm(m, b->norm2_w, b->norm2_b, tok, h, T, D);
        ref_linear(m, b->fc1_w, b->fc1_b, h, f, T, D, Hd);
        for (int e = 0; e < T * Hd; e++) f[e] = 0.5 * f[e] * (1 + erf(f[e] / sqrt(2.0)));
        ref_linear(m, b->fc2_w, b->fc2_b, f, h, T, Hd, D);
        for (int e = 0; e < T * D; e++) tok[e] += h[e];
    }
    free(tok), free(h), free(qkv), free(o), free(f), free(patch);
}

/* rollout from P by whole T x T matrix products (last block leftmost), the row asked for */
static void ref_rollout(const double *P, int L, int NH, int T, bool mean_row, double *out)
{
    double *R = calloc((size_t)T * T, 8), *A = calloc((size_t)T * T, 8), *Z = calloc((size_t)T * T, 8);
    for (int t = 0; t < T; t++) R[t * T + t] = 1;
    for (int l = 0; l < L; l++) {
        for (int t = 0; t < T; t++) {
            double rs = 0;
            for (int s = 0; s < T; s++) {
                double a = t == s;
                for (int h = 0; h < NH; h++) a += P[(((size_t)l * NH + h) * T + t) * T + s] / NH;
                A[t * T + s] = a;
                rs += a;
            }
            for (int s = 0; s < T; s++) A[t * T + s] /= rs;
        }
        for (int i = 0; i < T; i++)   /* R = A R */
            for (int j = 0; j < T; j++) {
                double s = 0;
                for (int q = 0; q < T; q++) s += A[i * T + q] * R[q * T + j];
                Z[i * T + j] = s;
            }
        memcpy(R, Z, sizeof(double) * (size_t)T * T);
    }
    for (int j = 1; j < T; j++) {
        double s = 0;
        for (int i = 1; i < T; i++) s += R[i * T + j] / (T - 1);
        out[j - 1] = mean_row ? s : R[j];
    }
    free(R), free(A), free(Z);
}

/* mean attention distance of P (depth, heads) for one image from its definition */
static void ref_distance(const double *P, int L, int NH, int gh, int gw, int p, double *out)
{
    const int N = gh * gw, T = N + 1;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++) {
            double acc = 0;
            for (int t = 1; t < T; t++) {
                const double *row = P + (((size_t)l * NH + h) * T + t) * T;
                double ws = 0, ds = 0;
                for (int s = 1; s < T; s++) ws += row[s], ds += row[s] * ref_dist(t - 1, s - 1, gw, p);
                acc += ds / ws;
            }
            out[l * NH + h] = acc / N;
        }
}

static void tiny_model(vt_vit *m, int h, int w, int patch, int C, int depth, int heads, vt_pool_kind pool, uint64_t seed)
{
    vt_vit_config mc;
    vt_vit_config_defaults(&mc);
    mc.img_h = h, mc.img_w = w, mc.patch = patch, mc.in_chans = C, mc.num_classes = 10;
    mc.embed_dim = 8, mc.depth = depth, mc.num_heads = heads, mc.mlp_ratio = 2, mc.pool = pool;
    ck_assert_int_eq(vt_vit_init(m, &mc), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, seed);
    /* weights larger than timm's initialisation, so that the attention is far from uniform */
    for (int64_t i = 0; i < m->params.numel; i++) m->params.data[i] = (float)(vt_rng_uniform(&r) - 0.5);
}

/* the probabilities read from the tape are the model's (against the double forward pass), and the
 * mean distance and rollout computed from them match the same numbers from the double ones */
START_TEST(tape_attention_matches_double_forward)
{
    enum { B = 3 };
    vt_vit m;
    tiny_model(&m, 8, 12, 4, 2, 3, 2, VT_POOL_TOKEN, 7);   /* a 2 x 3 grid, 2 channels */
    const vt_vit_config *c = &m.cfg;
    const int L = c->depth, NH = c->num_heads, gh = m.grid_h, gw = m.grid_w, N = gh * gw, T = N + 1;
    const int CHW = c->in_chans * c->img_h * c->img_w;
    float x[B * 2 * 8 * 12];
    vt_rng r;
    vt_rng_seed(&r, 9);
    tu_fill_uniform(&r, x, B * CHW, -2, 2);
    vt_graph g;
    ck_assert_int_eq(vt_graph_init(&g, 1 << 20), VT_OK);
    const float *att[3], *logits;
    ck_assert_msg(vt_an_forward_attention(&m, &g, x, B, att, &logits) == VT_OK, "%s", vt_errmsg());
    double *P = malloc(sizeof(double) * L * NH * T * T), dist[N * N], sum[3 * 2] = {0}, want[3 * 2], wsum[3 * 2] = {0};
    double out[N], ref[N], work[3 * T], worst = 0;
    vt_an_patch_distances(gh, gw, c->patch, dist);
    for (int l = 0; l < L; l++) vt_an_attention_distance(att[l], B, NH, T, dist, sum + l * NH);
    for (int b = 0; b < B; b++) {
        ref_attention(&m, x + b * CHW, P);
        for (int l = 0; l < L; l++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++)
                    for (int s = 0; s < T; s++)
                        worst = fmax(worst, fabs(att[l][((size_t)(b * NH + h) * T + s) * T + t] - P[((l * NH + h) * T + t) * T + s]));
        ref_distance(P, L, NH, gh, gw, c->patch, want);
        for (int k = 0; k < L * NH; k++) wsum[k] += want[k] / B;
        for (int mean = 0; mean < 2; mean++) {
            vt_an_rollout(att, L, b, NH, T, mean, out, work);
            ref_rollout(P, L, NH, T, mean, ref);
            for (int i = 0; i < N; i++)
                ck_assert_msg(fabs(out[i] - ref[i]) < 1e-5, "image %d, mean row %d, patch %d: rollout %.9g, double %.9g",
                              b, mean, i, out[i], ref[i]);
        }
    }
    ck_assert_msg(worst < 1e-5, "probabilities from the tape differ from the double forward pass by %g", worst);
    for (int k = 0; k < L * NH; k++)
        ck_assert_msg(fabs(sum[k] / (B * N) - wsum[k]) < 1e-5 * wsum[k], "distance of block %d head %d: %.9g, double %.9g",
                      k / NH, k % NH, sum[k] / (B * N), wsum[k]);
    /* the graph must keep the probabilities: one that recomputes them is refused */
    g.recompute_attention = true;
    ck_assert_int_eq(vt_an_forward_attention(&m, &g, x, B, att, NULL), VT_ERR);
    free(P);
    vt_graph_free(&g);
    vt_vit_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- timm's model of the goldens */
static double *golden_f64(vt_h5id f, const char *fmt, int i)
{
    char path[256];
    snprintf(path, sizeof path, fmt, i);
    double *v;
    int nd;
    int64_t sh[VT_MAXDIM];
    ck_assert_msg(vt_h5_read_f64(f, path, &v, &nd, sh) == VT_OK, "%s", vt_errmsg());
    return v;
}

/* the goldens' vit_tiny_f64 (file f open) as our model m (config *mc) with its timm parameters, and its
 * input images *x (*B, C, H, W) */
static void golden_vit_tiny(vt_h5id f, vt_vit *m, vt_vit_config *mc, float **x, int *B)
{
    const char *G = "/vit_tiny_f64";
    vt_vit_config_defaults(mc);
    int64_t a[8];
    const char *names[8] = {"img_h", "img_w", "patch", "in_chans", "num_classes", "embed_dim", "depth", "num_heads"};
    for (int k = 0; k < 8; k++) ck_assert_int_eq(vt_h5_attr_i64(f, G, names[k], &a[k]), VT_OK);
    mc->img_h = (int)a[0], mc->img_w = (int)a[1], mc->patch = (int)a[2], mc->in_chans = (int)a[3];
    mc->num_classes = (int)a[4], mc->embed_dim = (int)a[5], mc->depth = (int)a[6], mc->num_heads = (int)a[7];
    ck_assert_int_eq(vt_h5_attr_f64(f, G, "mlp_ratio", &mc->mlp_ratio), VT_OK);
    ck_assert_int_eq(vt_vit_init(m, mc), VT_OK);
    ck_assert_msg(vt_vit_load_h5(m, f, "/vit_tiny_f64/params") == VT_OK, "%s", vt_errmsg());
    int nd;
    int64_t sh[VT_MAXDIM];
    ck_assert_int_eq(vt_h5_read_f32(f, "/vit_tiny_f64/input", x, &nd, sh), VT_OK);
    ck_assert_int_eq(nd, 4);
    *B = (int)sh[0];
}

/* vit_tiny_f64 of the goldens: the probabilities of every block recomputed in double precision from
 * timm's own float64 activations (the tokens entering the block, timm's parameters), against the ones
 * the tape keeps in our float32 forward pass of the case's input; and the mean distance and rollout of
 * both within 1e-5 */
START_TEST(golden_vit_tiny_matches_timm_activations)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    vt_vit_config mc;
    vt_vit m;
    float *x;
    int B;
    golden_vit_tiny(f, &m, &mc, &x, &B);
    const int L = mc.depth, NH = mc.num_heads, D = mc.embed_dim, N = m.grid_h * m.grid_w, T = N + 1;
    vt_graph g;
    ck_assert_int_eq(vt_graph_init(&g, 1 << 20), VT_OK);
    const float *att[16];
    ck_assert_int_le(L, 16);
    ck_assert_msg(vt_an_forward_attention(&m, &g, x, B, att, NULL) == VT_OK, "%s", vt_errmsg());
    double *P = malloc(sizeof(double) * L * NH * T * T), *h = malloc(sizeof(double) * T * D);
    double *qkv = malloc(sizeof(double) * T * 3 * D), *tok = malloc(sizeof(double) * T * D);
    double *pe = golden_f64(f, "/vit_tiny_f64/acts/patch_embed", 0), *cls = golden_f64(f, "/vit_tiny_f64/params/cls_token", 0);
    double *pos = golden_f64(f, "/vit_tiny_f64/params/pos_embed", 0), dist[64 * 64], sum[16 * 16] = {0}, want[16 * 16] = {0};
    double one[16 * 16], out[64], ref[64], work[3 * 65], worst = 0;
    ck_assert_int_le(N, 64);
    ck_assert_int_le(L * NH, 256);
    vt_an_patch_distances(m.grid_h, m.grid_w, mc.patch, dist);
    for (int l = 0; l < L; l++) vt_an_attention_distance(att[l], B, NH, T, dist, sum + l * NH);
    for (int b = 0; b < B; b++) {
        for (int l = 0; l < L; l++) {
            if (l == 0) {   /* the tokens entering block 0: [cls; patch_embed] + pos */
                for (int t = 0; t < T; t++)
                    for (int d = 0; d < D; d++)
                        tok[t * D + d] = (t ? pe[((size_t)b * N + t - 1) * D + d] : cls[d]) + pos[t * D + d];
            } else {
                double *prev = golden_f64(f, "/vit_tiny_f64/acts/block_%d", l - 1);
                memcpy(tok, prev + (size_t)b * T * D, sizeof(double) * T * D);
                free(prev);
            }
            double *lw = golden_f64(f, "/vit_tiny_f64/params/blocks.%d.norm1.weight", l);
            double *lb = golden_f64(f, "/vit_tiny_f64/params/blocks.%d.norm1.bias", l);
            double *qw = golden_f64(f, "/vit_tiny_f64/params/blocks.%d.attn.qkv.weight", l);
            double *qb = golden_f64(f, "/vit_tiny_f64/params/blocks.%d.attn.qkv.bias", l);
            for (int t = 0; t < T; t++) {
                double mu = 0, var = 0;
                for (int d = 0; d < D; d++) mu += tok[t * D + d] / D;
                for (int d = 0; d < D; d++) var += (tok[t * D + d] - mu) * (tok[t * D + d] - mu) / D;
                for (int d = 0; d < D; d++) h[t * D + d] = (tok[t * D + d] - mu) / sqrt(var + 1e-6) * lw[d] + lb[d];
                for (int o = 0; o < 3 * D; o++) {
                    double s = qb[o];
                    for (int d = 0; d < D; d++) s += h[t * D + d] * qw[(size_t)o * D + d];
                    qkv[t * 3 * D + o] = s;
                }
            }
            free(lw), free(lb), free(qw), free(qb);
            ref_heads(qkv, T, D, NH, P + (size_t)l * NH * T * T, NULL);
            for (int hd = 0; hd < NH; hd++)
                for (int t = 0; t < T; t++)
                    for (int s = 0; s < T; s++)
                        worst = fmax(worst, fabs(att[l][((size_t)(b * NH + hd) * T + s) * T + t] - P[((l * NH + hd) * T + t) * T + s]));
        }
        ref_distance(P, L, NH, m.grid_h, m.grid_w, mc.patch, one);
        for (int k = 0; k < L * NH; k++) want[k] += one[k] / B;
        for (int mean = 0; mean < 2; mean++) {
            vt_an_rollout(att, L, b, NH, T, mean, out, work);
            ref_rollout(P, L, NH, T, mean, ref);
            for (int i = 0; i < N; i++)
                ck_assert_msg(fabs(out[i] - ref[i]) < 1e-5, "image %d, mean row %d, patch %d: rollout %.9g, timm %.9g", b,
                              mean, i, out[i], ref[i]);
        }
    }
    ck_assert_msg(worst < 1e-5, "attention probabilities differ from timm's by %g", worst);
    for (int k = 0; k < L * NH; k++)
        ck_assert_msg(fabs(sum[k] / (B * N) - want[k]) < 1e-5 * want[k], "distance of block %d head %d: %.9g, timm %.9g",
                      k / NH, k % NH, sum[k] / (B * N), want[k]);
    free(P), free(h), free(qkv), free(tok), free(pe), free(cls), free(pos), free(x);
    vt_graph_free(&g);
    vt_vit_free(&m);
    vt_h5_close(f);
}
END_TEST

/* vit_tiny_f64 of the goldens against PyTorch: bench/analyze_reference.py rebuilt timm's forward in torch
 * float64 and computed the three numbers as src/analyze defines them (tests/analyze_reference.h holds
 * what it printed); our float32 forward and double sums agree within 1e-5 */
START_TEST(golden_vit_tiny_matches_torch_reference)
{
    vt_h5id f = vt_h5_open(tu_golden("vit_reference.h5"), false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    vt_vit_config mc;
    vt_vit m;
    float *x;
    int B;
    golden_vit_tiny(f, &m, &mc, &x, &B);
    const int L = mc.depth, NH = mc.num_heads, N = m.grid_h * m.grid_w, T = N + 1;
    ck_assert_int_eq(L, 2);
    ck_assert_int_eq(NH, 3);
    ck_assert_int_eq(N, 16);
    ck_assert_int_eq(B, 4);
    double sim[16 * 16], dist[16 * 16], sum[2 * 3] = {0}, out[16], work[3 * 17], worst = 0;
    vt_an_pos_similarity(m.params.vars[m.pos_embed].val.data, 1, N, mc.embed_dim, sim);
    for (int i = 0; i < N * N; i++) {
        ck_assert_msg(fabs(sim[i] - torch_pos_similarity[i / N][i % N]) < 1e-5, "similarity of positions %d and %d: %.9g, "
                      "torch %.9g", i / N, i % N, sim[i], torch_pos_similarity[i / N][i % N]);
        worst = fmax(worst, fabs(sim[i] - torch_pos_similarity[i / N][i % N]));
    }
    vt_graph g;
    ck_assert_int_eq(vt_graph_init(&g, 1 << 20), VT_OK);
    const float *att[2];
    ck_assert_msg(vt_an_forward_attention(&m, &g, x, B, att, NULL) == VT_OK, "%s", vt_errmsg());
    vt_an_patch_distances(m.grid_h, m.grid_w, mc.patch, dist);
    for (int l = 0; l < L; l++) vt_an_attention_distance(att[l], B, NH, T, dist, sum + l * NH);
    for (int k = 0; k < L * NH; k++) {
        const double d = sum[k] / (B * N), want = torch_distance[k / NH][k % NH];
        ck_assert_msg(fabs(d - want) < 1e-5, "distance of block %d head %d: %.9g, torch %.9g", k / NH, k % NH, d, want);
        worst = fmax(worst, fabs(d - want));
    }
    for (int b = 0; b < B; b++)
        for (int mean = 0; mean < 2; mean++) {
            vt_an_rollout(att, L, b, NH, T, mean, out, work);
            const double *want = mean ? torch_rollout_mean[b] : torch_rollout_cls[b];
            for (int i = 0; i < N; i++) {
                ck_assert_msg(fabs(out[i] - want[i]) < 1e-5, "image %d, mean row %d, patch %d: rollout %.9g, torch %.9g", b,
                              mean, i, out[i], want[i]);
                worst = fmax(worst, fabs(out[i] - want[i]));
            }
        }
    printf("vit_tiny_f64 against the torch reference: worst difference %.3g\n", worst);
    free(x);
    vt_graph_free(&g);
    vt_vit_free(&m);
    vt_h5_close(f);
}
END_TEST

/* ---------------------------------------------------------------- the figures' layout */
/* the grid of grids on a 2 x 3 grid, read back from the PNG: tile (r, c) shows position (r, c)'s row of the
 * matrix, cell (r2, c2) of it the similarity with position (r2, c2) (here 1 with itself, -1 with the rest):
 * the yellow end of the colour map exactly where r2 = r and c2 = c. The layout is plot_figs.c's: 70 px
 * left, 56 px top, tiles of min(560 / 3, 72) px and 3 px gaps. */
START_TEST(pos_similarity_figure_layout)
{
    enum { gh = 2, gw = 3, N = gh * gw, tile = 72, gap = 3, left = 70, top = 56 };
    double sim[N * N];
    for (int i = 0; i < N * N; i++) sim[i] = i / N == i % N ? 1 : -1;
    char d[256], p[512];
    fx_tempdir(d, sizeof d, "vit_fig");
    snprintf(p, sizeof p, "%s/sim.png", d);
    ck_assert_msg(vt_an_plot_pos_similarity(p, sim, gh, gw, NULL) == VT_OK, "%s", vt_errmsg());
    cairo_surface_t *s = cairo_image_surface_create_from_png(p);
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    const unsigned char *px = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            const double cell = (double)tile / gw, cellh = (double)tile / gh;   /* a tile holds the gh x gw grid */
            const int x = left + (i % gw) * (tile + gap) + (int)((j % gw + 0.5) * cell);
            const int y = top + (i / gw) * (tile + gap) + (int)((j / gw + 0.5) * cellh);
            const uint32_t v = *(const uint32_t *)(px + (size_t)y * stride + 4 * (size_t)x);
            const int r = v >> 16 & 255, g = v >> 8 & 255, b = v & 255;
            const bool yellow = r > 200 && g > 200 && b < 80, purple = r < 100 && g < 30 && b > 60;
            ck_assert_msg(i == j ? yellow : purple, "tile %d, cell %d at (%d, %d): rgb %d %d %d", i, j, x, y, r, g, b);
        }
    cairo_surface_destroy(s);
    vt_an_plot_finish();   /* the font caches the text loaded, for LeakSanitizer */
    fx_remove(d);
}
END_TEST

/* ---------------------------------------------------------------- metrics.csv */
START_TEST(metrics_read_and_running_mean)
{
    char d[256], p[512];
    fx_tempdir(d, sizeof d, "vit_metrics");
    /* columns found by name (another order, an extra column), empty eval cells are NAN */
    write_text(d, "metrics.csv", "epoch,step,extra,loss,lr,grad_norm,eval_loss,eval_top1,eval_top5\n"
                                 "1,10,7,2.5,1e-3,0.5,,,\n1,20,7,1.5,2e-3,0.25,1.25,50.5,90\r\n\n2,30,7,0.5,3e-3,0.125,,,\n");
    snprintf(p, sizeof p, "%s/metrics.csv", d);
    vt_an_metrics m;
    ck_assert_msg(vt_an_metrics_read(p, &m) == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(m.rows, 3);
    const double step[3] = {10, 20, 30}, loss[3] = {2.5, 1.5, 0.5}, ep[3] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
        ck_assert(m.col[VT_AN_STEP][i] == step[i] && m.col[VT_AN_LOSS][i] == loss[i] && m.col[VT_AN_EPOCH][i] == ep[i]);
        ck_assert(i == 1 ? m.col[VT_AN_EVAL_TOP1][i] == 50.5 : isnan(m.col[VT_AN_EVAL_TOP1][i]));
    }
    double mean[3];
    vt_an_running_mean(m.col[VT_AN_LOSS], 3, 2, mean);
    ck_assert(mean[0] == 2.5 && mean[1] == 2.0 && mean[2] == 1.0);
    vt_an_running_mean(m.col[VT_AN_EVAL_LOSS], 3, 2, mean);   /* NANs left out of the mean */
    ck_assert(isnan(mean[0]) && mean[1] == 1.25 && mean[2] == 1.25);
    vt_an_metrics_free(&m);
    /* refusals name the file and line */
    const char *bad[][2] = {{"step,loss\n10,abc\n", ":2: cell 2 is not a number"},
                            {"step,loss\n10,1\n20\n", ":3: 1 cells, the header has 2"},
                            {"loss,lr\n1,2\n", "no 'step' column"},
                            {"", "empty file"},
                            {"step,loss\n10,nan\n", "not a number"}};
    for (int k = 0; k < 5; k++) {
        write_text(d, "metrics.csv", bad[k][0]);
        ck_assert_int_eq(vt_an_metrics_read(p, &m), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), bad[k][1]) && strstr(vt_errmsg(), "metrics.csv"), "case %d: %s", k, vt_errmsg());
    }
    fx_remove(d);
}
END_TEST

/* ---------------------------------------------------------------- the tool, as a user runs it */
static char dir[256];
static void setup(void) { fx_tempdir(dir, sizeof dir, "vit_analyze"); }
static void teardown(void) { fx_remove(dir); }

/* run vit-analyze with args (a shell-quoted string), stdout and stderr into dir/out and dir/err; the exit status */
static int run_analyze(const char *args, char *err, size_t n)
{
    const char *bin = getenv("VIT_ANALYZE_BIN");
    ck_assert_msg(bin != NULL, "VIT_ANALYZE_BIN is not set (meson sets it)");
    char cmd[4096], p[512];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out' 2>'%s/err'", bin, args, dir, dir);
    int st = system(cmd);
    snprintf(p, sizeof p, "%s/err", dir);
    FILE *f = fopen(p, "r");
    size_t len = f ? fread(err, 1, n - 1, f) : 0;
    err[len] = '\0';
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool is_png(const char *path)
{
    unsigned char sig[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(sig, 1, 8, f) : 0;
    if (f) fclose(f);
    return n == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0;
}

/* a checkpoint of a tiny 12x20 one-channel model (a 3 x 5 grid) for write_noise_idx's data: the four PNGs
 * and analysis.h5 are written, whose numbers match the double forward pass of the images as the data
 * layer delivers them (mean = std = 0.5 by default); bad command lines and files are refused */
START_TEST(tool_end_to_end)
{
    enum { n = 5 };
    char data[300], ckdir[300], ck[600], cfg[512], args[2048], err[8192], p[700];
    snprintf(data, sizeof data, "%s/fm", dir);
    mkdir(data, 0777);
    write_noise_idx(data, 4);
    vt_vit m;
    tiny_model(&m, 12, 20, 4, 1, 2, 2, VT_POOL_MEAN, 5);
    const vt_vit_config *c = &m.cfg;
    vt_train_state s;
    memset(&s, 0, sizeof s);
    snprintf(cfg, sizeof cfg, "[data]\npath = %s\n", data);
    snprintf(ckdir, sizeof ckdir, "%s/run", dir);
    mkdir(ckdir, 0777);
    ck_assert_msg(vt_ckpt_write(ckdir, &m, NULL, &s, cfg, 0, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
    snprintf(args, sizeof args, "'%s' --out '%s/an' --split train --images %d", ck, dir, n);
    ck_assert_msg(run_analyze(args, err, sizeof err) == 0, "vit-analyze failed:\n%s", err);
    const char *figs[] = {"pos_similarity", "embedding_filters", "attention_distance", "attention_rollout"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/an/%s.png", dir, figs[i]);
        ck_assert_msg(is_png(p), "%s is not a PNG", p);
    }
    snprintf(p, sizeof p, "%s/an/analysis.h5", dir);
    vt_h5id f = vt_h5_open(p, false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    double *v;
    int nd;
    int64_t sh[4];
    const int L = c->depth, NH = c->num_heads, gh = m.grid_h, gw = m.grid_w, N = gh * gw, T = N + 1;
    /* position similarity: the cosines from their definition */
    ck_assert_int_eq(vt_h5_read_f64(f, "pos_similarity", &v, &nd, sh), VT_OK);
    ck_assert(nd == 2 && sh[0] == N && sh[1] == N);
    const float *pos = m.params.vars[m.pos_embed].val.data;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double d = 0, a = 0, b = 0;
            for (int e = 0; e < c->embed_dim; e++) {
                const double x = pos[(1 + i) * c->embed_dim + e], y = pos[(1 + j) * c->embed_dim + e];
                d += x * y, a += x * x, b += y * y;
            }
            ck_assert_msg(fabs(v[i * N + j] - d / sqrt(a * b)) < 1e-9, "pos_similarity[%d][%d]", i, j);
        }
    free(v);
    /* attention distance and rollout: the double forward pass of the first n training images */
    vt_dataset *ds;
    ck_assert_int_eq(vt_dataset_open(&ds, data, "train", NULL, NULL, NULL), VT_OK);
    double *P = malloc(sizeof(double) * L * NH * T * T), want[2 * 2] = {0}, one[2 * 2], ref[N], *dist, *roll;
    ck_assert_int_eq(vt_h5_read_f64(f, "attention_distance", &dist, &nd, sh), VT_OK);
    ck_assert(nd == 2 && sh[0] == L && sh[1] == NH);
    ck_assert_int_eq(vt_h5_read_f64(f, "rollout", &roll, &nd, sh), VT_OK);
    ck_assert(nd == 3 && sh[0] == n && sh[1] == gh && sh[2] == gw);
    for (int i = 0; i < n; i++) {
        uint8_t pix[12 * 20];
        int label;
        float x[12 * 20];
        ck_assert_int_eq(ds->read(ds, i, pix, &label), VT_OK);
        for (int k = 0; k < 12 * 20; k++) x[k] = (pix[k] / 255.0f - 0.5f) / 0.5f;
        ref_attention(&m, x, P);
        ref_distance(P, L, NH, gh, gw, c->patch, one);
        for (int k = 0; k < L * NH; k++) want[k] += one[k] / n;
        ref_rollout(P, L, NH, T, true, ref);   /* pool = avg: the mean row */
        for (int k = 0; k < N; k++)
            ck_assert_msg(fabs(roll[i * N + k] - ref[k]) < 1e-5, "rollout of image %d, patch %d: %.9g, double %.9g", i, k,
                          roll[i * N + k], ref[k]);
    }
    for (int k = 0; k < L * NH; k++)
        ck_assert_msg(fabs(dist[k] - want[k]) < 1e-5 * want[k], "attention distance %d: %.9g, double %.9g", k, dist[k], want[k]);
    free(dist), free(roll), free(P);
    vt_dataset_close(ds);
    vt_h5_close(f);
    /* --image: a picture of the user's (here one of the figures, a 24-bit PNG of another size) is taken
     * through the evaluation transform to the model's 12x20 gray input: one rollout map */
    snprintf(args, sizeof args, "'%s' --out '%s/an1' --image '%s/an/pos_similarity.png'", ck, dir, dir);
    ck_assert_msg(run_analyze(args, err, sizeof err) == 0, "vit-analyze --image failed:\n%s", err);
    snprintf(p, sizeof p, "%s/an1/analysis.h5", dir);
    f = vt_h5_open(p, false);
    ck_assert_msg(f >= 0, "%s", vt_errmsg());
    ck_assert_int_eq(vt_h5_shape(f, "rollout", &nd, sh), VT_OK);
    ck_assert(nd == 3 && sh[0] == 1 && sh[1] == gh && sh[2] == gw);
    vt_h5_close(f);
    /* refusals: no --out, a file that is no checkpoint, --heads for an HDF5 checkpoint, a missing image */
    snprintf(args, sizeof args, "'%s'", ck);
    ck_assert_int_eq(run_analyze(args, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "--out DIR is required"), "%s", err);
    snprintf(args, sizeof args, "'%s/err' --out '%s/an2'", dir, dir);
    ck_assert_int_eq(run_analyze(args, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "vit-analyze: "), "%s", err);
    snprintf(args, sizeof args, "'%s' --out '%s/an' --heads 2", ck, dir);
    ck_assert_int_eq(run_analyze(args, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "--heads is for .safetensors"), "%s", err);
    snprintf(args, sizeof args, "'%s' --out '%s/an' --image '%s/none.png'", ck, dir, dir);
    ck_assert_int_eq(run_analyze(args, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "none.png: cannot open the image"), "%s", err);
    vt_vit_free(&m);
}
END_TEST

/* vit-plot on two run folders (one a copy with other losses): four PNGs in --out; one run: RUN/plots by
 * default; several without --out, a broken metrics.csv and --x epoch of a run inside its first epoch refused */
START_TEST(tool_plot_end_to_end)
{
    const char *bin = getenv("VIT_PLOT_BIN");
    ck_assert_msg(bin != NULL, "VIT_PLOT_BIN is not set (meson sets it)");
    char a[300], b[300], cmd[4096], p[700], err[8192];
    snprintf(a, sizeof a, "%s/runa", dir);
    snprintf(b, sizeof b, "%s/runb", dir);
    mkdir(a, 0777), mkdir(b, 0777);
    const char *csv = "step,epoch,loss,lr,grad_norm,img_per_s,eval_loss,eval_top1,eval_top5\n"
                      "50,1,2.3,1e-4,1.5,100,,,\n100,1,2.0,2e-4,1.4,100,1.9,30,70\n150,2,1.7,1.5e-4,1.2,100,,,\n"
                      "200,2,1.5,1e-4,1.0,100,1.4,55,90\n";
    write_text(a, "metrics.csv", csv);
    write_text(b, "metrics.csv", csv);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' --out '%s/plots' --x epoch >'%s/out' 2>'%s/err'", bin, a, b, dir, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    const char *figs[] = {"loss", "lr", "grad_norm", "accuracy"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/plots/%s.png", dir, figs[i]);
        ck_assert_msg(is_png(p), "%s is not a PNG", p);
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' >'%s/out' 2>'%s/err'", bin, a, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    snprintf(p, sizeof p, "%s/plots/loss.png", a);
    ck_assert_msg(is_png(p), "%s is not a PNG", p);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' >'%s/out' 2>'%s/err'", bin, a, b, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
    write_text(b, "metrics.csv", "step,epoch,loss\n50,1,2.3\n100,1,x\n");
    snprintf(cmd, sizeof cmd, "'%s' '%s' >'%s/out' 2>'%s/err'", bin, b, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    snprintf(p, sizeof p, "%s/err", dir);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    ck_assert_msg(strstr(err, "metrics.csv:3: cell 3 is not a number"), "%s", err);
    write_text(b, "metrics.csv", "step,epoch,loss\n50,1,2.3\n");
    snprintf(cmd, sizeof cmd, "'%s' '%s' --x epoch >'%s/out' 2>'%s/err'", bin, b, dir, dir);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analyze");
    TCase *t = tcase_create("numbers");
    tcase_add_test(t, pos_similarity_known_cosines);
    tcase_add_test(t, pos_structure_known);
    tcase_add_test(t, pca_known_basis);
    tcase_add_test(t, attention_distance_known);
    tcase_add_test(t, rollout_one_hot);
    tcase_add_test(t, tape_attention_matches_double_forward);
    tcase_add_test(t, golden_vit_tiny_matches_timm_activations);
    tcase_add_test(t, golden_vit_tiny_matches_torch_reference);
    tcase_add_test(t, metrics_read_and_running_mean);
    tcase_add_test(t, pos_similarity_figure_layout);
    suite_add_tcase(s, t);
    TCase *e = tcase_create("tool");
    tcase_add_checked_fixture(e, setup, teardown);
    tcase_add_test(e, tool_end_to_end);
    tcase_add_test(e, tool_plot_end_to_end);
    suite_add_tcase(s, e);
    return tu_run(s);
}
