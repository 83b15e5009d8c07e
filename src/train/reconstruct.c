/* reconstruct.c - vit-eval --reconstruct: what a pixel-predicting pretraining (mae, masked_patch_pixels) makes
 * of images it partly cannot see. Each PNG holds three panels side by side: the original, the input as the
 * objective masks it (hidden or [mask] patches gray, a patch replaced by another shows that one), and the
 * reconstruction (the visible patches as they are, the predicted ones in place of the masked; MAE's
 * per-patch normalised predictions are mapped back with the original patch's mean and variance, as MAE's
 * own figures do; a target_size below the patch is shown blown up). Masks are the evaluation ones. */
#include "train.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GAP 2

typedef struct {
    const vt_vit_config *c;
    int oc, W;             /* output channels (1 or 3) and width of the whole figure */
    uint8_t *pix;          /* (H, W, oc) */
} figure;

static uint8_t to_u8(const vt_vit_config *c, int ch, double v)
{
    v = v * c->pretrain.in_std[ch] + c->pretrain.in_mean[ch];   /* back to [0, 1] */
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint8_t)lround(v * 255);
}

/* patch n of panel k from values val(ch, y, x) of the patch (normalised), or gray when val is NULL */
static void put_patch(figure *f, int k, int n, const float *img, int from)
{
    const vt_vit_config *c = f->c;
    const int P = c->patch, gw = c->img_w / P, y0 = n / gw * P, x0 = n % gw * P;
    const int sy = from / gw * P, sx = from % gw * P;
    for (int y = 0; y < P; y++)
        for (int x = 0; x < P; x++)
            for (int o = 0; o < f->oc; o++) {
                const int ch = f->oc == 3 ? o : 0;
                uint8_t *d = f->pix + ((size_t)(y0 + y) * f->W + k * (c->img_w + GAP) + x0 + x) * f->oc + o;
                *d = img ? to_u8(c, ch, img[((size_t)ch * c->img_h + sy + y) * c->img_w + sx + x]) : 128;
            }
}

/* the prediction of patch n (O values (C, t, t)) into panel 2; MAE's normalised ones mapped back first */
static void put_prediction(figure *f, int n, const float *img, const float *pred)
{
    const vt_vit_config *c = f->c;
    const int P = c->patch, gw = c->img_w / P, y0 = n / gw * P, x0 = n % gw * P, t = vt_pixel_target_side(c), s = P / t;
    double mean = 0, sd = 1;
    if (c->pretrain.kind == VT_OBJ_MAE && c->pretrain.norm_pix_loss) {
        const int O = c->in_chans * P * P;
        double var = 0;
        float raw[4 * 64 * 64], *v = O <= (int)(sizeof raw / sizeof *raw) ? raw : malloc(sizeof(float) * (size_t)O);
        if (!v) return;
        for (int ch = 0, k = 0; ch < c->in_chans; ch++)
            for (int y = 0; y < P; y++)
                for (int x = 0; x < P; x++, k++) mean += v[k] = img[((size_t)ch * c->img_h + y0 + y) * c->img_w + x0 + x];
        mean /= O;
        for (int k = 0; k < O; k++) var += (v[k] - mean) * (v[k] - mean);
        sd = sqrt((O > 1 ? var / (O - 1) : 0) + 1e-6);
        if (v != raw) free(v);
    }
    for (int y = 0; y < P; y++)
        for (int x = 0; x < P; x++)
            for (int o = 0; o < f->oc; o++) {
                const int ch = f->oc == 3 ? o : 0;
                const double p = pred[((size_t)ch * t + y / s) * t + x / s] * sd + mean;
                f->pix[((size_t)(y0 + y) * f->W + 2 * (c->img_w + GAP) + x0 + x) * f->oc + o] = to_u8(c, ch, p);
            }
}

/* the three panels of image i of the batch */
static void compose(figure *f, const float *img, const vt_vit_mask *mk, int i, const float *pred, int O)
{
    const vt_vit_config *c = f->c;
    const int N = (c->img_h / c->patch) * (c->img_w / c->patch);
    memset(f->pix, 255, (size_t)c->img_h * f->W * f->oc);
    for (int n = 0; n < N; n++) {
        put_patch(f, 0, n, img, n);
        put_patch(f, 2, n, img, n);
        const int s = mk->src ? mk->src[(size_t)i * N + n] : n;
        put_patch(f, 1, n, s < 0 ? NULL : img, s < 0 ? n : s);
    }
    for (int j = 0; j < mk->M; j++) {
        const int n = mk->target[(size_t)i * mk->M + j];
        if (mk->keep) put_patch(f, 1, n, NULL, n);   /* hidden from MAE's encoder */
        put_prediction(f, n, img, pred + ((size_t)i * mk->M + j) * O);
    }
}

/* the PNGs of one batch of nb images, numbered from done */
static int batch_pngs(vt_vit *m, vt_graph *g, float *x, int nb, int64_t done, figure *f, const char *dir, FILE *out)
{
    const vt_vit_config *c = &m->cfg;
    vt_graph_reset(g);
    vt_obj_batch b = {.first = done};
    b.images = vt_var_wrap(g, x, 4, (int64_t[]){nb, c->in_chans, c->img_h, c->img_w}, "images");
    vt_var *pred = NULL;
    if (!b.images || m->objective->mask(m, g, &b, nb) != VT_OK) return VT_ERR;
    vt_var *tok = vt_vit_encode_masked(m, g, b.images, NULL, NULL, b.mask);
    if (!tok || !m->objective->loss(m, g, tok, &b, &pred)) return VT_ERR;
    const int64_t per = (int64_t)c->in_chans * c->img_h * c->img_w;
    for (int i = 0; i < nb; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/reconstruct-%04lld.png", dir, (long long)(done + i));
        compose(f, x + per * i, b.mask, i, pred->val.data, (int)pred->val.shape[2]);
        if (vt_png_write(path, f->pix, c->img_h, f->W, f->oc) != VT_OK) return VT_ERR;
        fprintf(out, "%s\n", path);
    }
    return VT_OK;
}

int vt_reconstruct_pngs(vt_vit_replicas *rep, vt_loader *l, int n, const char *dir, FILE *out)
{
    vt_vit *m = rep->model;
    const vt_vit_config *c = &m->cfg;
    if (c->pretrain.kind != VT_OBJ_MAE && c->pretrain.kind != VT_OBJ_MASKED_PIXELS)
        return vt_err("--reconstruct: the checkpoint's model is trained for %s; only mae and masked_patch_pixels "
                      "predict pixels", m->objective->name);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return vt_err("%s: cannot create the folder: %s", dir, strerror(errno));
    figure f = {.c = c, .oc = c->in_chans == 3 ? 3 : 1, .W = 3 * c->img_w + 2 * GAP};
    f.pix = malloc((size_t)c->img_h * f.W * f.oc);
    if (!f.pix || vt_loader_start(l, 0, 0) != VT_OK) return free(f.pix), f.pix ? VT_ERR : vt_err("out of memory");
    vt_graph *g = &rep->graphs[0];
    const bool was = g->grad_enabled;
    vt_graph_set_grad(g, false);
    int64_t done = 0;
    int r = VT_OK;
    while (r == VT_OK && done < n) {
        float *x;
        int *y, bs;
        if ((r = vt_loader_next(l, &x, &y, NULL, &bs)) != VT_OK || bs == 0) break;
        const int nb = bs < n - done ? bs : (int)(n - done);
        r = batch_pngs(m, g, x, nb, done, &f, dir, out);
        done += nb;
    }
    vt_graph_reset(g);
    vt_graph_set_grad(g, was);
    free(f.pix);
    return r;
}
