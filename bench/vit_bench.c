/* vit-bench - time full training steps (forward, backward, clip, AdamW) of a ViT on random data.
 * Prints images/s, achieved GFLOPS (exact count of GEMM and attention FLOPs), the fraction of the
 * sgemm peak it measures itself, peak RSS and a per-op time breakdown. */
#include "train/train.h"
#include "optim/optim.h"
#include "../tools/cli.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* FLOPs of one training forward pass for one image (multiply-add = 2); the blocks see the tokens
 * patch dropout keeps */
static double forward_flops(const vt_vit_config *c, double *patch_part)
{
    const int n = (c->img_h / c->patch) * (c->img_w / c->patch);
    double P = c->patch, D = c->embed_dim, N = n, T = vt_vit_patch_keep_count(c, n) + 1;
    double H = (int)(c->embed_dim * c->mlp_ratio), K = c->num_classes;
    double patch = 2 * N * c->in_chans * P * P * D;
    double block = 2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * H;
    *patch_part = patch;
    return patch + c->depth * block + 2 * D * K;
}

/* what one op does per image in a training step, for its achieved-rate column: FLOPs for the
 * compute-bound ones (GEMMs, attention), else the bytes it must at least read and write (each tensor
 * once: a lower bound on its memory traffic) */
typedef struct {
    const char *op;
    double flops[2], bytes[2];   /* [forward, backward] per image */
} op_cost;

static int op_costs(const vt_vit_config *c, op_cost *o)
{
    const int n = (c->img_h / c->patch) * (c->img_w / c->patch);
    const double P = c->patch, D = c->embed_dim, N = n, T = vt_vit_patch_keep_count(c, n) + 1;
    const double H = (int)(c->embed_dim * c->mlp_ratio), K = c->num_classes, L = c->depth, f = sizeof(float);
    const double patch = 2 * N * c->in_chans * P * P * D;
    const double lin = patch + L * (2 * T * D * 3 * D + 2 * T * D * D + 2 * 2 * T * D * H) + 2 * D * K;
    const double att = L * 2 * 2 * T * T * D;
    int k = 0;
    /* backward: the weight and input gradients (twice forward), no input gradient of the patch embedding */
    o[k++] = (op_cost){"linear", {lin, 2 * lin - patch}, {0, 0}};
    o[k++] = (op_cost){"attention", {att, 2 * att}, {0, 0}};
    /* LayerNorm (2 a block + the final one) reads x, writes y; backward reads dy and x, writes dx */
    o[k++] = (op_cost){"layernorm", {0, 0}, {(2 * L + 1) * 2 * T * D * f, (2 * L + 1) * 3 * T * D * f}};
    /* GELU writes its output and its derivative; backward reads dy and the derivative, writes dx */
    o[k++] = (op_cost){"gelu", {0, 0}, {L * 3 * T * H * f, L * 3 * T * H * f}};
    /* two residual adds a block: read two, write one; backward passes dy on to both inputs */
    o[k++] = (op_cost){"add", {0, 0}, {L * 2 * 3 * T * D * f, L * 2 * 3 * T * D * f}};
    o[k++] = (op_cost){"embed", {0, 0}, {(2 * N + 1) * D * f + T * D * f, 2 * T * D * f}};
    o[k++] = (op_cost){"pool", {0, 0}, {T * D * f, T * D * f}};
    return k;
}

/* the CPU's name as the kernel reports it (x86 "model name"; elsewhere the machine type) */
static void cpu_name(char *out, size_t n)
{
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
            const char *v = strchr(line, ':');
            if (!v) continue;
            v++;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(out, n, "%s", v);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    }
    fclose(f);
}

static double sgemm_peak(int n)
{
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = 0.001f * (float)(i % 1000);
    double best = 0;
    for (int r = 0; r < 4; r++) {
        double t0 = vt_now();
        vt_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = vt_now() - t0;
        if (r > 0 && 2.0 * n * n * n / t > best) best = 2.0 * n * n * n / t;
    }
    free(a);
    free(b);
    free(c);
    return best / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-bench [--model ti16|s16|b16|l16|h14|fmnist | --config FILE] [--batch B] [--steps N]\n"
               "                 [--threads T] [--img N] [--recompute-attn] [--replicas R] [--patch-drop P]\n"
               "Times full training steps (forward, backward, clip, AdamW) on random data after 2 warm-up steps.\n"
               "fmnist: 28x28x1, patch 4, dim 192, depth 6, heads 3, MLP 4x, 10 classes.\n"
               "--recompute-attn: keep 2 floats per attention row instead of the T x T probabilities\n"
               "(backward recomputes them): less activation memory for one more GEMM per head.\n"
               "--replicas R: split each batch over R data-parallel replicas, one thread each (default: the\n"
               "config's [train] replicas with --config, else 1).\n"
               "--patch-drop P: patch dropout rate of the training passes (default: the config's, else 0).\n");
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-bench")) return 2;
    vt_blas_ensure_core(argc, argv);
    const char *model = "fmnist", *cfgpath = NULL;
    int batch = 0, steps = 5, threads = 0, img = 0, replicas = 0;
    double patch_drop = -1;
    bool recompute = false;
    static const struct option longs[] = {{"model", required_argument, 0, 'm'}, {"config", required_argument, 0, 'c'},
                                          {"batch", required_argument, 0, 'b'}, {"steps", required_argument, 0, 's'},
                                          {"threads", required_argument, 0, 't'}, {"img", required_argument, 0, 'i'},
                                          {"recompute-attn", no_argument, 0, 'r'}, {"replicas", required_argument, 0, 'R'},
                                          {"patch-drop", required_argument, 0, 'p'},
                                          {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int ch;
    bool ok = true, model_given = false;
    while ((ch = getopt_long(argc, argv, "m:c:b:s:t:i:rR:p:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg, model_given = true; break;
        case 'c': cfgpath = optarg; break;
        case 'b': ok = cli_int("vit-bench", "--batch", optarg, 1, 1 << 20, &batch); break;
        case 's': ok = cli_int("vit-bench", "--steps", optarg, 1, 1000000, &steps); break;
        case 't': ok = cli_int("vit-bench", "--threads", optarg, 1, 1024, &threads); break;
        case 'i': ok = cli_int("vit-bench", "--img", optarg, 1, 65536, &img); break;
        case 'r': recompute = true; break;
        case 'R': ok = cli_int("vit-bench", "--replicas", optarg, 1, 256, &replicas); break;
        case 'p': ok = cli_double("vit-bench", "--patch-drop", optarg, 0, 0.99, &patch_drop); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   /* getopt has named the unknown option */
        }
        if (!ok) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "vit-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (model_given && cfgpath) {
        fprintf(stderr, "vit-bench: --model %s and --config %s: give one (a config describes its own model)\n", model,
                cfgpath);
        return 2;
    }
    vt_vit_config mc;
    vt_vit_config_defaults(&mc);
    if (cfgpath) {
        vt_config cfg;
        vt_config_defaults(&cfg);
        if (vt_config_load(&cfg, cfgpath) != VT_OK || vt_config_model(&cfg, &mc) != VT_OK) {
            fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
            return 1;
        }
        if (mc.num_classes < 2) mc.num_classes = 10;
        if (!batch) batch = cfg.batch_size;
        if (!replicas) replicas = cfg.replicas;   /* as the config trains */
        model = cfgpath;
    } else if (strcmp(model, "fmnist") == 0) {
        mc.img_h = mc.img_w = 28;
        mc.patch = 4;
        mc.in_chans = 1;
        mc.num_classes = 10;
        mc.embed_dim = 192;
        mc.depth = 6;
        mc.num_heads = 3;
        if (!batch) batch = 128;
    } else if (vt_vit_preset(&mc, model) != VT_OK) {
        fprintf(stderr, "vit-bench: %s (or fmnist)\n", vt_errmsg());
        return 2;
    }
    if (img) mc.img_h = mc.img_w = img;
    if (patch_drop >= 0) mc.patch_drop_rate = patch_drop;
    if (!batch) batch = 8;
    if (!replicas) replicas = 1;
    if (replicas > batch) {
        fprintf(stderr, "vit-bench: --replicas %d is more than the batch of %d images (each replica takes a part)\n",
                replicas, batch);
        return 2;
    }
    if (threads > 0) vt_set_threads(threads);
    threads = vt_get_threads();

    vt_vit m;
    if (vt_vit_init(&m, &mc) != VT_OK) {
        fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
        return 1;
    }
    vt_rng rng;
    vt_rng_seed(&rng, 0);
    vt_vit_init_weights(&m, &rng);
    vt_optim_config oc;
    vt_optim_config_defaults(&oc);
    oc.kind = VT_OPTIM_ADAMW;
    oc.lr = 1e-4;
    oc.weight_decay = 0.05;
    vt_optim opt;
    if (vt_optim_init(&opt, &oc, m.params.numel) != VT_OK) {
        fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
        return 1;
    }
    for (int i = 0; i < m.params.count; i++)
        vt_optim_add_segment(&opt, m.params.info[i].offset, m.params.info[i].numel,
                             vt_optim_decays(m.params.info[i].name, m.params.info[i].ndim, NULL, 0));

    int64_t npix = (int64_t)batch * mc.in_chans * mc.img_h * mc.img_w;
    float *x = malloc((size_t)npix * sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int));
    for (int64_t i = 0; i < npix; i++) x[i] = (float)vt_rng_normal(&rng);
    for (int i = 0; i < batch; i++) labels[i] = (int)(vt_rng_u64(&rng) % (uint64_t)mc.num_classes);

    double peak = sgemm_peak(2048);
    printf("model %s: %dx%d patch %d, dim %d, depth %d, heads %d, mlp %g, %d classes, %.2fM params\n", model, mc.img_h,
           mc.img_w, mc.patch, mc.embed_dim, mc.depth, mc.num_heads, mc.mlp_ratio, mc.num_classes,
           vt_vit_num_params(&m) / 1e6);
    char cpu[160];
    cpu_name(cpu, sizeof cpu);
    printf("CPU %s; kernels built for %s\n", cpu, VIT_ISA);
    printf("batch %d, %d thread%s, %d replica%s, OpenBLAS core %s, sgemm peak (2048^3) %.1f GFLOPS\n", batch, threads,
           threads == 1 ? "" : "s", replicas, replicas == 1 ? "" : "s", vt_blas_core(), peak);

    vt_vit_replicas rep;
    if (vt_vit_replicas_init(&rep, &m, replicas, 64 << 20, recompute) != VT_OK) {
        fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
        return 1;
    }
    double t_total = 0, t_opt = 0;
    size_t act_bytes = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2)
            for (int i = 0; i < rep.n; i++) {
                memset(rep.graphs[i].op_seconds, 0, sizeof rep.graphs[i].op_seconds);
                rep.graphs[i].profile = true;
            }
        double t0 = vt_now();
        vt_paramset_zero_grad(&m.params);
        double loss;
        if (vt_vit_replicas_train(&rep, x, labels, batch, 0.1f, 1.0f, (uint64_t)s, &loss) != VT_OK) {
            fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
            return 1;
        }
        double t1 = vt_now();
        double norm = vt_grad_norm(m.params.grad, m.params.numel);
        vt_optim_step_scaled(&opt, m.params.data, m.params.grad, 1e-4, vt_clip_coef(norm, 1.0));
        double t2 = vt_now();
        if (s >= 2) {
            t_total += t2 - t0;
            t_opt += t2 - t1;
        }
        act_bytes = 0;
        for (int i = 0; i < rep.n; i++) act_bytes += rep.graphs[i].arena.peak;
    }
    double patch_part;
    double fwd = forward_flops(&mc, &patch_part);
    double train_flops = 3 * fwd - patch_part;   /* no gradient for the input image */
    double ips = steps * batch / t_total;
    double gflops = train_flops * ips / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("step %.1f ms, train FLOPs/image %.3f G, achieved %.1f GFLOPS = %.1f%% of the sgemm peak\n",
           1e3 * t_total / steps, train_flops / 1e9, gflops, 100 * gflops / peak);
    printf("activation memory %.2f MB per image (arena peak %.1f MB%s), peak RSS %.1f MB\n",
           act_bytes / 1e6 / batch, act_bytes / 1e6, recompute ? ", attention recomputed" : "", ru.ru_maxrss / 1024.0);
    printf("per-op time (ms per step%s)      forward  backward   achieved fwd / bwd\n",
           rep.n > 1 ? ", mean of the replicas" : "");
    op_cost costs[16];
    const int ncost = op_costs(&mc, costs);
    const double part = (double)batch / rep.n;   /* images of one replica's part */
    double accounted = 0;
    for (int op = 0; op < VT_OP_COUNT; op++) {
        double t[2] = {0, 0};
        for (int i = 0; i < rep.n; i++)
            for (int d = 0; d < 2; d++) t[d] += rep.graphs[i].op_seconds[op][d] / steps / rep.n;
        accounted += t[0] + t[1];
        if (t[0] + t[1] <= 1e-5) continue;
        printf("  %-26s %9.2f %9.2f", vt_op_name(op), 1e3 * t[0], 1e3 * t[1]);
        for (int k = 0; k < ncost; k++) {
            if (strcmp(costs[k].op, vt_op_name(op)) != 0) continue;
            const bool fl = costs[k].flops[0] > 0;
            const double *w = fl ? costs[k].flops : costs[k].bytes;
            printf("   %6.1f / %6.1f %s", t[0] > 0 ? w[0] * part / t[0] / 1e9 : 0, t[1] > 0 ? w[1] * part / t[1] / 1e9 : 0,
                   fl ? "GFLOPS" : "GB/s");
        }
        printf("\n");
    }
    printf("  %-26s %9.2f\n", "clip + optimizer", 1e3 * t_opt / steps);
    printf("  %-26s %9.2f\n", "other", 1e3 * (t_total / steps - accounted - t_opt / steps));
    printf("images/s: %.2f\n", ips);
    vt_vit_replicas_free(&rep);
    vt_optim_free(&opt);
    vt_vit_free(&m);
    free(x);
    free(labels);
    return 0;
}
