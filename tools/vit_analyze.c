/* vit-analyze - what a trained ViT learned, as the paper's section 4.5 shows it: position-embedding
 * similarity, patch-embedding filters, mean attention distance and attention rollout, each as a PNG
 * and, all together, their numbers in one HDF5 file. */
#include "analyze/analyze.h"
#include "train/train.h"
#include "cli.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { SHOW = 8 };   /* images drawn in the rollout figure (the numbers cover all) */

typedef struct {
    const char *ckpt, *out, *data, *split, *image, *cfgpath;
    int images, heads, threads;
} opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-analyze CHECKPOINT --out DIR [--data PATH] [--split test|train] [--images N]\n"
               "                   [--image FILE.png|jpg] [--config FILE] [--heads N] [--threads N]\n"
               "CHECKPOINT: one of our HDF5 checkpoints, a timm .safetensors or a Google .npz file (their model is\n"
               "read from the shapes; the heads, pooling and input size from --config's [model] or --heads).\n"
               "Writes to DIR: pos_similarity.png, embedding_filters.png, attention_distance.png,\n"
               "attention_rollout.png and analysis.h5 (every number). The attention figures need images: the\n"
               "first N (default 32) of the split (default test) of the data the checkpoint's config names\n"
               "(--data elsewhere, --config for another config), or one picture of yours with --image, which\n"
               "takes the evaluation transform (resize / crop_pct, mean, std) as the data would.\n"
               "example: vit-analyze runs/fashion_mnist/ckpt-000135000.h5 --out runs/fashion_mnist/analysis\n");
}

/* the model and the config (data keys) of the checkpoint, through the loaders vit-eval and --init use */
static int load_model(const opts *o, vt_config *c, vt_vit_config *mc, vt_vit *m, bool *have)
{
    const bool st = cli_has_ext(o->ckpt, ".safetensors"), npz = cli_has_ext(o->ckpt, ".npz");
    vt_config_defaults(c);
    if (o->cfgpath && vt_config_load(c, o->cfgpath) != VT_OK) return VT_ERR;
    int r;
    if (st || npz) {
        vt_vit_config_defaults(mc);
        if (o->cfgpath && vt_config_model(c, mc) != VT_OK) return VT_ERR;
        if (o->heads) mc->num_heads = o->heads;
        r = st ? vt_vit_config_from_safetensors(o->ckpt, mc) : vt_vit_config_from_npz(o->ckpt, mc);
        if (r == VT_OK && (r = vt_vit_init(m, mc)) == VT_OK) *have = true;
        if (r == VT_OK) r = st ? vt_vit_load_safetensors(m, o->ckpt) : vt_vit_load_npz(m, o->ckpt);
    } else {
        if (o->heads) return vt_err("--heads is for .safetensors and .npz files: %s stores its model", o->ckpt);
        char *text = NULL;
        r = vt_ckpt_model_config(o->ckpt, mc);
        if (r == VT_OK && (r = vt_vit_init(m, mc)) == VT_OK) *have = true;
        if (r == VT_OK) r = vt_ckpt_load(o->ckpt, m, NULL, NULL, &text);
        if (r == VT_OK) vt_ckpt_note_unverified(stderr, "vit-analyze: ", o->ckpt);
        if (r == VT_OK && !o->cfgpath && text) r = vt_config_load_text(c, text, o->ckpt);
        free(text);
    }
    if (r != VT_OK) return VT_ERR;
    if (o->data) snprintf(c->data_path, sizeof c->data_path, "%s", o->data);
    c->num_classes = mc->num_classes;
    return VT_OK;
}

/* the figures of the weights: position-embedding similarity and the embedding filters */
static int weight_figures(vt_vit *m, const char *dir, vt_h5id f)
{
    const vt_vit_config *c = &m->cfg;
    const int N = m->grid_h * m->grid_w, D = c->embed_dim, K = c->in_chans * c->patch * c->patch;
    const int nc = K < 28 ? K : 28;
    double *sim = malloc(sizeof(double) * (size_t)N * N), *comp = malloc(sizeof(double) * (size_t)nc * K);
    double var[28], ratio[28];
    char p[4200];
    int r = sim && comp ? VT_OK : vt_err("out of memory");
    if (r == VT_OK) {
        vt_an_pos_similarity(m->params.vars[m->pos_embed].val.data, vt_vit_pos_prefix(c), N, D, sim);
        snprintf(p, sizeof p, "%s/pos_similarity.png", dir);
        r = vt_an_plot_pos_similarity(p, sim, m->grid_h, m->grid_w, NULL);
    }
    if (r == VT_OK) r = vt_h5_write_f64(f, "pos_similarity", sim, 2, (int64_t[]){N, N});
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, "pos_similarity", "grid_h", m->grid_h);
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, "pos_similarity", "grid_w", m->grid_w);
    double ps[4];
    vt_an_pos_structure(sim, m->grid_h, m->grid_w, ps);
    static const char *const kinds[4] = {"mean_neighbours", "mean_same_row", "mean_same_column", "mean_other"};
    for (int k = 0; k < 4 && r == VT_OK; k++) r = vt_h5_write_attr_f64(f, "pos_similarity", kinds[k], ps[k]);
    if (r == VT_OK) r = vt_an_pca(m->params.vars[m->patch_w].val.data, D, K, nc, comp, var, ratio);
    if (r == VT_OK) {
        snprintf(p, sizeof p, "%s/embedding_filters.png", dir);
        r = vt_an_plot_filters(p, comp, ratio, nc, c->in_chans, c->patch, NULL);
    }
    if (r == VT_OK)
        r = vt_h5_write_f64(f, "embedding_components", comp, 4, (int64_t[]){nc, c->in_chans, c->patch, c->patch});
    if (r == VT_OK) r = vt_h5_write_f64(f, "embedding_variance", var, 1, (int64_t[]){nc});
    if (r == VT_OK) r = vt_h5_write_f64(f, "embedding_variance_ratio", ratio, 1, (int64_t[]){nc});
    if (r == VT_OK) {
        double top = 0;
        for (int i = 0; i < nc; i++) top += ratio[i];
        printf("position embeddings, %dx%d grid: mean cosine similarity %.3f with the 4 neighbours, %.3f in the same "
               "row, %.3f in the same column, %.3f elsewhere\n", m->grid_h, m->grid_w, ps[0], ps[1], ps[2], ps[3]);
        printf("embedding filters: the top %d of %d components explain %.1f%% of the variance (the first %.1f%%)\n", nc,
               K, 100 * top, 100 * ratio[0]);
    }
    free(sim);
    free(comp);
    return r;
}

/* where the images come from: the first n of a loader, or one file */
typedef struct {
    vt_loader *l;
    vt_dataset *ds;
    float *one;            /* --image: the transformed picture */
    int64_t n, done;
} source;

static int open_source(const opts *o, const vt_config *c, const vt_vit_config *mc, int batch, source *s)
{
    memset(s, 0, sizeof *s);
    if (o->image) {
        vt_transform tf;
        uint8_t *pix = NULL;
        int h, w;
        const int ch = mc->in_chans == 1 ? 1 : 3;
        if (vt_config_transform(c, mc, false, &tf) != VT_OK || vt_image_file_read(o->image, ch, &pix, &h, &w) != VT_OK)
            return VT_ERR;
        float *scratch = malloc(sizeof(float) * (vt_transform_scratch(&tf, h, w) + 1));
        s->one = malloc(sizeof(float) * (size_t)mc->in_chans * mc->img_h * mc->img_w);
        vt_rng rng;
        vt_rng_seed(&rng, 0);
        int r = scratch && s->one ? vt_transform_apply(&tf, pix, h, w, ch, s->one, &rng, scratch) : vt_err("out of memory");
        free(pix);
        free(scratch);
        s->n = 1;
        return r;
    }
    if (!c->data_path[0]) return VT_OK;   /* no images: the weight figures only */
    vt_config cc = *c;
    cc.eval_batch_size = batch;
    if (vt_config_open_data(&cc, mc, o->split, &s->ds) != VT_OK) return VT_ERR;
    if (!s->ds) return vt_err("%s: no %s split (--split train takes the training images)", c->data_path, o->split);
    if (vt_config_loader(&cc, mc, s->ds, NULL, 0, false, 0, &s->l) != VT_OK || vt_loader_start(s->l, 0, 0) != VT_OK)
        return VT_ERR;
    s->n = s->ds->count < o->images ? s->ds->count : o->images;
    return VT_OK;
}

static void close_source(source *s)
{
    vt_loader_free(s->l);
    vt_dataset_close(s->ds);
    free(s->one);
}

/* the next batch of at most `want` images: *b 0 at the end */
static int next_batch(source *s, float **x, const int **y, const int64_t **ids, int *b)
{
    static const int none = -1;
    static const int64_t zero = 0;
    *b = 0;
    if (s->done >= s->n) return VT_OK;
    if (s->one) {
        *x = s->one, *y = &none, *ids = &zero, *b = 1;
    } else {
        int *lab;
        if (vt_loader_next(s->l, x, &lab, ids, b) != VT_OK) return VT_ERR;
        *y = lab;
        if (*b > s->n - s->done) *b = (int)(s->n - s->done);
    }
    s->done += *b;
    return VT_OK;
}

/* what the attention figures gather over the images */
typedef struct {
    double *dist_sum;      /* (depth, heads) */
    double *maps;          /* (n, N) */
    int64_t *ids;
    int *labels, *preds;
    float *show;           /* (SHOW, C, H, W) in [0, 1] */
    int64_t n;
    double uniform;        /* the mean distance of uniform attention (every patch key alike) */
} gathered;

static int gather(vt_vit *m, source *s, int batch, const vt_transform *tf, gathered *g)
{
    const vt_vit_config *c = &m->cfg;
    const int L = c->depth, NH = c->num_heads, N = m->grid_h * m->grid_w, T = N + 1, CHW = c->in_chans * c->img_h * c->img_w;
    double *dist = malloc(sizeof(double) * (size_t)N * N), *work = malloc(sizeof(double) * 3 * (size_t)T);
    const float **att = malloc(sizeof(float *) * (size_t)L);
    vt_graph gr;
    int r = vt_graph_init(&gr, (size_t)64 << 20);
    if (r == VT_OK && (!dist || !work || !att)) r = vt_err("out of memory");
    if (r == VT_OK) vt_an_patch_distances(m->grid_h, m->grid_w, c->patch, dist);
    for (size_t k = 0; r == VT_OK && k < (size_t)N * N; k++) g->uniform += dist[k] / ((double)N * N);
    for (int b = 0; r == VT_OK;) {
        float *x;
        const int *y;
        const int64_t *ids;
        const float *logits;
        if ((r = next_batch(s, &x, &y, &ids, &b)) != VT_OK || b == 0) break;
        if ((r = vt_an_forward_attention(m, &gr, x, b, att, &logits)) != VT_OK) break;
        for (int l = 0; l < L; l++) vt_an_attention_distance(att[l], b, NH, T, dist, g->dist_sum + (size_t)l * NH);
        for (int i = 0; i < b; i++, g->n++) {
            vt_an_rollout(att, L, i, NH, T, c->pool == VT_POOL_MEAN, g->maps + (size_t)g->n * N, work);
            int best = 0;
            for (int k = 1; k < c->num_classes; k++)
                if (logits[(size_t)i * c->num_classes + k] > logits[(size_t)i * c->num_classes + best]) best = k;
            g->ids[g->n] = ids[i], g->labels[g->n] = y[i], g->preds[g->n] = best;
            for (int k = 0; g->n < SHOW && k < CHW; k++) {   /* back to [0, 1] pixels for the figure */
                const int ch = k / (c->img_h * c->img_w);
                const float v = x[(size_t)i * CHW + k] * tf->std[ch] + tf->mean[ch];
                g->show[(size_t)g->n * CHW + k] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
        vt_graph_reset(&gr);
    }
    vt_graph_free(&gr);
    free(dist);
    free(work);
    free(att);
    return r;
}

/* images per forward pass: about 256 MB of kept activations and probabilities at the most */
static int batch_for(const vt_vit *m)
{
    const vt_vit_config *c = &m->cfg;
    const double T = 1 + m->grid_h * m->grid_w, H = c->embed_dim * c->mlp_ratio;
    const double per = c->depth * (c->num_heads * T * T + T * (16.0 * c->embed_dim + 2 * H));
    const double b = (64.0 * (1 << 20)) / per;
    return b < 1 ? 1 : b > 16 ? 16 : (int)b;
}

static int write_attention(vt_vit *m, const gathered *g, const char *dir, vt_h5id f)
{
    const vt_vit_config *c = &m->cfg;
    const int L = c->depth, NH = c->num_heads, N = m->grid_h * m->grid_w;
    for (int k = 0; k < L * NH; k++) g->dist_sum[k] /= (double)g->n * N;   /* the mean */
    char p[4200], cap[SHOW][64];
    const char *caps[SHOW];
    snprintf(p, sizeof p, "%s/attention_distance.png", dir);
    int r = vt_an_plot_distance(p, g->dist_sum, L, NH, g->uniform, 0, NULL);
    const int shown = g->n < SHOW ? (int)g->n : SHOW;
    for (int i = 0; i < shown; i++) {
        if (g->labels[i] >= 0) snprintf(cap[i], sizeof cap[i], "#%lld  label %d  predicted %d", (long long)g->ids[i], g->labels[i], g->preds[i]);
        else snprintf(cap[i], sizeof cap[i], "predicted class %d", g->preds[i]);
        caps[i] = cap[i];
    }
    snprintf(p, sizeof p, "%s/attention_rollout.png", dir);
    if (r == VT_OK)
        r = vt_an_plot_rollout(p, g->show, shown, c->in_chans, c->img_h, c->img_w, g->maps, m->grid_h, m->grid_w, caps,
                               c->pool == VT_POOL_MEAN ? "Attention rollout (mean row of the patch tokens)"
                                                      : "Attention rollout (class token's row)");
    if (r == VT_OK) r = vt_h5_write_f64(f, "attention_distance", g->dist_sum, 2, (int64_t[]){L, NH});
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, "attention_distance", "images", g->n);
    if (r == VT_OK) r = vt_h5_write_attr_f64(f, "attention_distance", "uniform", g->uniform);
    if (r == VT_OK) r = vt_h5_write_f64(f, "rollout", g->maps, 3, (int64_t[]){g->n, m->grid_h, m->grid_w});
    if (r == VT_OK) r = vt_h5_write_attr_str(f, "rollout", "row", c->pool == VT_POOL_MEAN ? "mean of the patch tokens" : "class token");
    if (r == VT_OK) r = vt_h5_write_i64(f, "rollout_ids", g->ids, 1, (int64_t[]){g->n});
    if (r != VT_OK) return VT_ERR;
    printf("mean attention distance over %lld image%s (pixels, mean of the heads; min..max; uniform attention: %.3f):\n",
           (long long)g->n, g->n == 1 ? "" : "s", g->uniform);
    for (int l = 0; l < L; l++) {
        double s = 0, lo = INFINITY, hi = 0;
        for (int h = 0; h < NH; h++) s += g->dist_sum[l * NH + h], lo = fmin(lo, g->dist_sum[l * NH + h]), hi = fmax(hi, g->dist_sum[l * NH + h]);
        printf("  block %2d: %7.3f  (%.3f..%.3f)\n", l + 1, s / NH, lo, hi);
    }
    return VT_OK;
}

static int attention_figures(const opts *o, const vt_config *c, vt_vit *m, const char *dir, vt_h5id f, bool *drawn)
{
    const vt_vit_config *mc = &m->cfg;
    const int batch = batch_for(m), N = m->grid_h * m->grid_w, CHW = mc->in_chans * mc->img_h * mc->img_w;
    vt_transform tf;
    source s;
    if (mc->reg_tokens > 0) {   /* the maps below take the one class token as the only prefix token */
        fprintf(stderr, "vit-analyze: the model has %d register tokens: the attention figures are not drawn (not "
                        "supported yet)\n", mc->reg_tokens);
        return VT_OK;
    }
    if (vt_config_transform(c, mc, false, &tf) != VT_OK) return VT_ERR;
    int r = open_source(o, c, mc, batch, &s);
    if (r == VT_OK && s.n == 0) {
        close_source(&s);
        fprintf(stderr, "vit-analyze: no images (%s): the attention figures are not drawn; --data PATH or --image FILE\n",
                c->data_path[0] ? "the split is empty" : "the checkpoint names no data");
        return VT_OK;
    }
    gathered g = {0};
    g.dist_sum = calloc((size_t)mc->depth * mc->num_heads, sizeof(double));
    g.maps = malloc(sizeof(double) * (size_t)(s.n ? s.n : 1) * N);
    g.ids = malloc(sizeof(int64_t) * (size_t)(s.n ? s.n : 1));
    g.labels = malloc(sizeof(int) * (size_t)(s.n ? s.n : 1));
    g.preds = malloc(sizeof(int) * (size_t)(s.n ? s.n : 1));
    g.show = malloc(sizeof(float) * SHOW * (size_t)CHW);
    if (r == VT_OK && (!g.dist_sum || !g.maps || !g.ids || !g.labels || !g.preds || !g.show)) r = vt_err("out of memory");
    if (r == VT_OK) r = gather(m, &s, batch, &tf, &g);
    if (r == VT_OK) r = write_attention(m, &g, dir, f);
    *drawn = r == VT_OK;
    close_source(&s);
    free(g.dist_sum), free(g.maps), free(g.ids), free(g.labels), free(g.preds), free(g.show);
    return r;
}

static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {{"out", required_argument, 0, 'o'},     {"data", required_argument, 0, 'd'},
                                          {"split", required_argument, 0, 's'},   {"images", required_argument, 0, 'n'},
                                          {"image", required_argument, 0, 'i'},   {"config", required_argument, 0, 'c'},
                                          {"heads", required_argument, 0, 'H'},   {"threads", required_argument, 0, 't'},
                                          {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    static const char *const splits[] = {"test", "train", NULL};
    const char *P = "vit-analyze";
    *o = (opts){.split = "test", .images = 32};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:d:s:n:i:c:H:t:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'o': o->out = optarg; break;
        case 'd': o->data = optarg; break;
        case 's':
            if (!cli_choice(P, "--split", optarg, splits)) return 2;
            o->split = optarg;
            break;
        case 'n':
            if (!cli_int(P, "--images", optarg, 1, 1 << 20, &o->images)) return 2;
            break;
        case 'i': o->image = optarg; break;
        case 'c': o->cfgpath = optarg; break;
        case 'H':
            if (!cli_int(P, "--heads", optarg, 1, 4096, &o->heads)) return 2;
            break;
        case 't':
            if (!cli_int(P, "--threads", optarg, 1, 1024, &o->threads)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) o->ckpt = argv[optind++];
    if (optind < argc || !o->ckpt || !o->out) {
        if (optind < argc) fprintf(stderr, "%s: unexpected argument '%s'\n", P, argv[optind]);
        else fprintf(stderr, "%s: %s is required\n", P, !o->ckpt ? "a CHECKPOINT" : "--out DIR");
        usage(stderr);
        return 2;
    }
    if (o->image && o->data) {
        fprintf(stderr, "%s: --image and --data: one source of images, not both\n", P);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-analyze")) return 2;
    vt_blas_ensure_core(argc, argv);
    opts o;
    const int pr = parse(argc, argv, &o);
    if (pr >= 0) return pr;
    if (o.threads > 0) vt_set_threads(o.threads);
    const double t0 = vt_now();
    vt_config c;
    vt_vit_config mc;
    vt_vit m;
    bool have = false, drawn = false;
    vt_h5id f = -1;
    int rc = 1;
    char p[4200];
    struct stat st;
    if (load_model(&o, &c, &mc, &m, &have) != VT_OK) goto fail;
    if (stat(o.out, &st) == 0 ? !S_ISDIR(st.st_mode) : mkdir(o.out, 0777) != 0) {
        vt_err("--out %s: %s", o.out, stat(o.out, &st) == 0 ? "not a folder" : strerror(errno));
        goto fail;
    }
    snprintf(p, sizeof p, "%s/analysis.h5", o.out);
    if ((f = vt_h5_create(p)) < 0) goto fail;
    printf("%s: %d blocks, %d heads, dim %d, %dx%d input, patch %d, pool %s\n", o.ckpt, mc.depth, mc.num_heads,
           mc.embed_dim, mc.img_h, mc.img_w, mc.patch, mc.pool == VT_POOL_MEAN ? "avg" : "token");
    if (weight_figures(&m, o.out, f) != VT_OK || attention_figures(&o, &c, &m, o.out, f, &drawn) != VT_OK) goto fail;
    if (vt_h5_close(f) != VT_OK) {
        f = -1;
        goto fail;
    }
    f = -1;
    printf("wrote %s/{pos_similarity,embedding_filters%s}.png and analysis.h5 (%.1f s)\n", o.out,
           drawn ? ",attention_distance,attention_rollout" : "", vt_now() - t0);
    rc = 0;
fail:
    if (rc != 0) fprintf(stderr, "vit-analyze: %s\n", vt_errmsg());
    if (f >= 0) vt_h5_close(f);
    if (have) vt_vit_free(&m);
    vt_an_plot_finish();
    return rc;
}
