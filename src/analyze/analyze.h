/* analyze.h - what a trained ViT learned, as the paper's section 4.5 ("Inspecting Vision Transformer")
 * shows it: the similarity of the position embeddings, the principal components of the patch-embedding
 * filters, the mean attention distance of every head, and attention rollout (Abnar & Zuidema 2020).
 * The numbers are computed in double precision (compute.c, attn.c); the figures are drawn with cairo
 * (plot.c, plot_figs.c). Library code: errors are returned (vt_err), nothing is printed.
 *
 * Tokens: our ViT always prepends a class token (index 0; with pool = avg it is carried but not read by
 * the head), the patch tokens 1..N follow in row-major grid order (row r, column c is token 1 + r gw + c).
 * Attention probabilities come from the forward pass itself: src/tensor/attention.c keeps P^T per
 * (image, head), att[(b NH + h) T T + s T + t] = P(query t -> key s). */
#ifndef VIT_ANALYZE_H
#define VIT_ANALYZE_H

#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- weights (compute.c) */
/* cosine similarity of the position embeddings of every pair of patch positions: pos (prefix + N, D)
 * (row-major), the first prefix rows (the class token) left out; sim (N, N). A zero embedding has
 * similarity 0 with everything (and 1 with itself). */
void vt_an_pos_similarity(const float *pos, int prefix, int N, int D, double *sim);

/* how row/column structured a similarity matrix (N, N) of a gh x gw grid is: the mean over the pairs of
 * distinct positions that are 4-neighbours (out[0]), in the same row (out[1]), in the same column (out[2]),
 * and in neither (out[3]); 0 for a kind without pairs */
void vt_an_pos_structure(const double *sim, int gh, int gw, double out[4]);

/* principal components of the rows of w (n, k) (the patch embedding's D filters of C p p weights),
 * centred on their mean: the ncomp (<= k) directions of largest variance, unit vectors in comp
 * (ncomp, k), sign fixed so that the largest-magnitude entry is positive; var (ncomp) their variance
 * (divisor n - 1, as sklearn's explained_variance_), ratio (ncomp) var / total variance (the trace) */
int vt_an_pca(const float *w, int n, int k, int ncomp, double *comp, double *var, double *ratio);

/* ---------------------------------------------------------------- attention (attn.c) */
/* The forward pass of images x (B, C, H, W) on g (reset first) with the tape recording, so that every
 * block's attention keeps its probabilities; att[l] (depth entries) then points at block l's P^T
 * (B, NH, T, T) in g's arena, valid until g is reset; *logits (may be NULL) the logits (B, classes).
 * g must not recompute attention. */
int vt_an_forward_attention(vt_vit *m, vt_graph *g, float *x, int B, const float **att, const float **logits);

/* pixel distance between the centres of patches i and j of a gh x gw grid of p x p patches, (N, N) */
void vt_an_patch_distances(int gh, int gw, int patch, double *dist);

/* mean attention distance of one block for B images: att P^T (B, NH, T, T) with the class token first
 * (T = 1 + N); for every head, the sum over images and query patches of the attention-weighted mean
 * distance to the key patches (weights renormalised over the patch keys, class token excluded as query
 * and key) is added to sum[h]; divide by B N for the mean. dist (N, N) from vt_an_patch_distances. */
void vt_an_attention_distance(const float *att, int B, int NH, int T, const double *dist, double *sum);

/* attention rollout of image b: per block the attention averaged over heads plus the identity, rows
 * renormalised, multiplied over the blocks (last block leftmost); out (N) the row of the class token
 * over the patch keys, or with mean_row the mean of the patch tokens' rows (the case of average
 * pooling, where the head reads the patch tokens). att[l] P^T (B, NH, T, T) as from
 * vt_an_forward_attention; work holds 3 T doubles. */
void vt_an_rollout(const float *const *att, int depth, int b, int NH, int T, bool mean_row, double *out, double *work);

/* ---------------------------------------------------------------- figures (plot.c, plot_figs.c) */
/* Position-embedding similarity as a grid of grids (the paper's Fig. 7 centre): the tile at row r,
 * column c of the grid shows the similarity of position (r, c) with every position, colours -1..1
 * with a colour bar. sim (N, N), N = gh gw. */
int vt_an_plot_pos_similarity(const char *path, const double *sim, int gh, int gw, const char *title);
/* mean attention distance (depth, heads) against the block, one dot per head (Fig. 7 right); uniform > 0
 * draws the distance of uniform attention as a dashed line; max_dist <= 0: the axis fits the data */
int vt_an_plot_distance(const char *path, const double *dist, int depth, int heads, double uniform, double max_dist,
                        const char *title);
/* the principal components comp (ncomp, C, p, p) as p x p images with their explained variance
 * (Fig. 7 left): RGB (C >= 3, the first three channels, each component scaled to its own range), or
 * channel 0 (C < 3) on a diverging scale shared by all components, with a colour bar */
int vt_an_plot_filters(const char *path, const double *comp, const double *ratio, int ncomp, int C, int p,
                       const char *title);
/* each image next to its rollout map upsampled and overlaid (Fig. 6): images (n, C, H, W) in [0, 1]
 * (C 1 or 3), maps (n, gh, gw), each scaled to its own maximum; captions (may be NULL) one per image */
int vt_an_plot_rollout(const char *path, const float *images, int n, int C, int H, int W, const double *maps, int gh,
                       int gw, const char *const *captions, const char *title);

/* ---------------------------------------------------------------- plots of a run (metrics.c, plot_lines.c) */
/* the columns of a run's metrics.csv that vit-plot draws (found by their header names; NAN where a row has
 * no value, as the eval columns between evaluations, or where the file has no such column) */
enum { VT_AN_STEP, VT_AN_EPOCH, VT_AN_LOSS, VT_AN_LR, VT_AN_GRAD_NORM, VT_AN_EVAL_LOSS, VT_AN_EVAL_TOP1, VT_AN_EVAL_TOP5,
       VT_AN_NCOLS };
typedef struct {
    int rows, cap;
    double *col[VT_AN_NCOLS];
} vt_an_metrics;
/* read path; a cell that is not a finite number, a row of another length than the header or a header without
 * a step column is refused naming file and line */
int vt_an_metrics_read(const char *path, vt_an_metrics *m);
void vt_an_metrics_free(vt_an_metrics *m);
/* out[i] the mean of the non-NAN values among y[i - window + 1 .. i] (NAN when there are none) */
void vt_an_running_mean(const double *y, int n, int window, double *out);

/* one line (or, with markers, dots joined by a line) of a chart: points with a NAN coordinate are left out;
 * colour indexes a palette of 10; thin: a light thin line (raw values under their mean) */
typedef struct {
    const char *label;   /* legend entry (NULL: none) */
    const double *x, *y;
    int n, colour;
    bool markers, thin, dashed;
} vt_an_series;
/* a line chart of the series with axes that fit them, labels and a legend */
int vt_an_plot_lines(const char *path, const vt_an_series *s, int ns, const char *title, const char *xlabel,
                     const char *ylabel);

/* give back what the drawing library keeps for the life of the process (its font caches): once, at exit */
void vt_an_plot_finish(void);

#ifdef __cplusplus
}
#endif
#endif
