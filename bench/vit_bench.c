/* vit-bench - time full training steps (forward, backward, clip, AdamW) of a ViT on random data.
 * Prints images/s, achieved GFLOPS (exact count of GEMM and attention FLOPs), the fraction of the
 * sgemm peak it measures itself, peak RSS and a per-op time breakdown. Under mpirun each rank runs its share
 * of every batch and the gradients are summed over the ranks as vit-train sums them (grad_sum.c: buckets
 * reduced while backward runs); rank 0 then prints the compute and communication time per step, the part
 * of the communication the step waited for after backward and the share hidden behind it. */
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
               "--patch-drop P: patch dropout rate of the training passes (default: the config's, else 0).\n"
               "Under mpirun -n R: each rank runs its share of the batch (ranks x replicas parts), threads per rank\n"
               "as vit-train (the host's cores over its ranks unless --threads); rank 0 prints the gradient sum's cost.\n");
}

typedef struct {
    const char *model, *cfgpath;
    int batch, steps, threads, img, replicas;
    double patch_drop;
    bool recompute;
} bench_opts;

/* the command line into o: -1 to go on, else the exit status */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.model = "fmnist", .steps = 5, .patch_drop = -1};
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
        case 'm': o->model = optarg, model_given = true; break;
        case 'c': o->cfgpath = optarg; break;
        case 'b': ok = cli_int("vit-bench", "--batch", optarg, 1, 1 << 20, &o->batch); break;
        case 's': ok = cli_int("vit-bench", "--steps", optarg, 1, 1000000, &o->steps); break;
        case 't': ok = cli_int("vit-bench", "--threads", optarg, 1, 1024, &o->threads); break;
        case 'i': ok = cli_int("vit-bench", "--img", optarg, 1, 65536, &o->img); break;
        case 'r': o->recompute = true; break;
        case 'R': ok = cli_int("vit-bench", "--replicas", optarg, 1, 256, &o->replicas); break;
        case 'p': ok = cli_double("vit-bench", "--patch-drop", optarg, 0, 0.99, &o->patch_drop); break;
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
    if (model_given && o->cfgpath) {
        fprintf(stderr, "vit-bench: --model %s and --config %s: give one (a config describes its own model)\n",
                o->model, o->cfgpath);
        return 2;
    }
    return -1;
}

/* the model of --config or --model into mc, the batch and replicas it implies into o: -1 to go on, else the
 * exit status; `parts`: the processes the batch is cut over (each its replicas' parts) */
static int resolve_model(bench_opts *o, vt_vit_config *mc, int parts)
{
    vt_vit_config_defaults(mc);
    if (o->cfgpath) {
        vt_config cfg;
        vt_config_defaults(&cfg);
        if (vt_config_load(&cfg, o->cfgpath) != VT_OK || vt_config_model(&cfg, mc) != VT_OK) {
            fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
            return 1;
        }
        if (mc->num_classes < 2) mc->num_classes = 10;
        if (!o->batch) o->batch = cfg.batch_size;
        if (!o->replicas) o->replicas = cfg.replicas;   /* as the config trains */
        o->model = o->cfgpath;
    } else if (strcmp(o->model, "fmnist") == 0) {
        mc->img_h = mc->img_w = 28;
        mc->patch = 4;
        mc->in_chans = 1;
        mc->num_classes = 10;
        mc->embed_dim = 192;
        mc->depth = 6;
        mc->num_heads = 3;
        if (!o->batch) o->batch = 128;
    } else if (vt_vit_preset(mc, o->model) != VT_OK) {
        fprintf(stderr, "vit-bench: %s (or fmnist)\n", vt_errmsg());
        return 2;
    }
    if (o->img) mc->img_h = mc->img_w = o->img;
    if (o->patch_drop >= 0) mc->patch_drop_rate = o->patch_drop;
    if (!o->batch) o->batch = 8;
    if (!o->replicas) o->replicas = 1;
    if (o->replicas * parts > o->batch) {
        if (parts == 1)
            fprintf(stderr, "vit-bench: --replicas %d is more than the batch of %d images (each replica takes a part)\n",
                    o->replicas, o->batch);
        else
            fprintf(stderr, "vit-bench: %d ranks x %d replicas are more than the batch of %d images (each takes a part)\n",
                    parts, o->replicas, o->batch);
        return 2;
    }
    return -1;
}

/* AdamW over m's parameters, with timm's weight-decay rule */
static int make_optim(vt_optim *opt, const vt_vit *m)
{
    vt_optim_config oc;
    vt_optim_config_defaults(&oc);
    oc.kind = VT_OPTIM_ADAMW;
    oc.lr = 1e-4;
    oc.weight_decay = 0.05;
    if (vt_optim_init(opt, &oc, m->params.numel) != VT_OK) return VT_ERR;
    for (int i = 0; i < m->params.count; i++)
        vt_optim_add_segment(opt, m->params.info[i].offset, m->params.info[i].numel,
                             vt_optim_decays(m->params.info[i].name, m->params.info[i].ndim, NULL, 0));
    return VT_OK;
}

/* the timed steps' totals (seconds over the steps after the 2 warm-up ones) */
typedef struct {
    double total, opt;          /* whole steps; clipping and the optimizer */
    double waited;              /* under mpirun: in the sum's wait after backward */
    double exposed, in_flight;  /* the part of it waiting for reductions; the reductions in flight */
    double hidden_lo, hidden_hi;   /* the steps' hidden shares, lowest and highest */
    size_t act_bytes;           /* the replicas' arena peaks */
} bench_times;

/* steps + 2 training steps on x, y (this process's images of the batch of B) */
static int run_steps(vt_vit *m, vt_optim *opt, vt_vit_replicas *rep, vt_grad_sum *gs, float *x, const int *y, int B,
                     int steps, bench_times *bt)
{
    *bt = (bench_times){.hidden_lo = 1, .hidden_hi = 0};
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2)
            for (int i = 0; i < rep->n; i++) {
                memset(rep->graphs[i].op_seconds, 0, sizeof rep->graphs[i].op_seconds);
                rep->graphs[i].profile = true;
            }
        const double e0 = gs->exposed, f0 = gs->in_flight;
        double t0 = vt_now();
        vt_paramset_zero_grad(&m->params);
        double loss;
        if (vt_vit_replicas_train(rep, x, y, B, 0.1f, 1.0f, (uint64_t)s, &loss) != VT_OK) return VT_ERR;
        double t1 = vt_now();
        if (vt_grad_sum_wait(gs) != VT_OK) return vt_err_prefix("gradient sum over the ranks: ");
        double t1w = vt_now();
        double norm = vt_grad_norm(m->params.grad, m->params.numel);
        vt_optim_step_scaled(opt, m->params.data, m->params.grad, 1e-4, vt_clip_coef(norm, 1.0));
        double t2 = vt_now();
        if (s >= 2) {
            bt->total += t2 - t0;
            bt->opt += t2 - t1w;
            bt->waited += t1w - t1;
            const double e = gs->exposed - e0, f = gs->in_flight - f0, h = f > 0 ? 1 - e / f : 0;
            bt->exposed += e, bt->in_flight += f;
            if (h < bt->hidden_lo) bt->hidden_lo = h;
            if (h > bt->hidden_hi) bt->hidden_hi = h;
        }
        bt->act_bytes = 0;
        for (int i = 0; i < rep->n; i++) bt->act_bytes += rep->graphs[i].arena.peak;
    }
    return VT_OK;
}

/* the per-op table: each op's mean forward and backward time of the replicas and its achieved rate on
 * `part` images (one replica's); returns the seconds accounted for */
static double print_ops(FILE *out, const vt_vit_config *mc, const vt_vit_replicas *rep, int steps, double part)
{
    fprintf(out, "per-op time (ms per step%s)      forward  backward   achieved fwd / bwd\n",
            rep->n > 1 ? ", mean of the replicas" : "");
    op_cost costs[16];
    const int ncost = op_costs(mc, costs);
    double accounted = 0;
    for (int op = 0; op < VT_OP_COUNT; op++) {
        double t[2] = {0, 0};
        for (int i = 0; i < rep->n; i++)
            for (int d = 0; d < 2; d++) t[d] += rep->graphs[i].op_seconds[op][d] / steps / rep->n;
        accounted += t[0] + t[1];
        if (t[0] + t[1] <= 1e-5) continue;
        fprintf(out, "  %-26s %9.2f %9.2f", vt_op_name(op), 1e3 * t[0], 1e3 * t[1]);
        for (int k = 0; k < ncost; k++) {
            if (strcmp(costs[k].op, vt_op_name(op)) != 0) continue;
            const bool fl = costs[k].flops[0] > 0;
            const double *w = fl ? costs[k].flops : costs[k].bytes;
            fprintf(out, "   %6.1f / %6.1f %s", t[0] > 0 ? w[0] * part / t[0] / 1e9 : 0,
                    t[1] > 0 ? w[1] * part / t[1] / 1e9 : 0, fl ? "GFLOPS" : "GB/s");
        }
        fprintf(out, "\n");
    }
    return accounted;
}

/* under mpirun: the layout, the bytes summed per step and every rank's compute and communication per step
 * (a collective: every rank calls it, rank 0 prints) */
static int print_dist(FILE *out, const vt_dist *d, vt_grad_sum *gs, const bench_times *bt, const bench_opts *o,
                      int threads, int steps)
{
    const double mine[5] = {(bt->total - bt->waited) / steps, bt->in_flight / steps, bt->exposed / steps,
                            bt->hidden_lo, bt->hidden_hi};
    double all[5 * 1024];
    if (d->size > 1024) return vt_err("more than 1024 ranks");
    if (vt_dist_allgather(d, mine, sizeof mine, all) != VT_OK) return VT_ERR;
    const double alone = vt_grad_sum_alone(gs);
    if (alone < 0) return VT_ERR;
    const int64_t n = gs->ps->numel;
    fprintf(out, "data parallel: %d ranks on %d host%s, %d thread%s and %d replica%s per rank, batch %d in %d parts\n",
            d->size, d->nhosts, d->nhosts == 1 ? "" : "s", threads, threads == 1 ? "" : "s", o->replicas,
            o->replicas == 1 ? "" : "s", o->batch, d->size * o->replicas);
    fprintf(out, "gradient sum: %lld floats = %lld bytes reduced per step, in %d bucket%s (%s); alone (after the "
                 "steps, nothing to hide behind) %.2f ms\n",
            (long long)n, 4 * (long long)n, gs->sum.nb, gs->sum.nb == 1 ? "" : "s",
            o->replicas == 1 ? "started while backward runs" : "started after the replicas' backward", 1e3 * alone);
    fprintf(out, "per step, mean of %d (communication: the reductions in flight; exposed: waited for them after backward;\n"
                 "  hidden = 1 - exposed / communication; in flight can be far longer than the sum alone: the reductions\n"
                 "  move only when a rank calls MPI, after each backward node):\n", steps);
    for (int q = 0; q < d->size; q++) {
        const double *v = all + 5 * q, hidden = v[1] > 0 ? 1 - v[2] / v[1] : 0;
        fprintf(out, "  rank %d: compute %.3f ms, communication %.3f ms, exposed %.3f ms, hidden %.3f (steps %.3f to %.3f); "
                     "exposed / the sum alone %.3f\n",
                q, 1e3 * v[0], 1e3 * v[1], 1e3 * v[2], hidden, v[3], v[4], alone > 0 ? v[2] / alone : 0);
    }
    return VT_OK;
}

/* the figures of the timed steps (this process's; images/s and GFLOPS of the whole batch) */
static void print_results(FILE *out, const vt_vit_config *mc, const vt_vit_replicas *rep, const bench_times *bt,
                          const bench_opts *o, int ranks, double peak)
{
    const int steps = o->steps, batch = o->batch;
    double patch_part;
    double fwd = forward_flops(mc, &patch_part);
    double train_flops = 3 * fwd - patch_part;   /* no gradient for the input image */
    double ips = steps * batch / bt->total;
    double gflops = train_flops * ips / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char of[64] = "the sgemm peak";
    if (ranks > 1) snprintf(of, sizeof of, "%d ranks' sgemm peak", ranks);
    fprintf(out, "step %.1f ms, train FLOPs/image %.3f G, achieved %.1f GFLOPS = %.1f%% of %s\n",
            1e3 * bt->total / steps, train_flops / 1e9, gflops, 100 * gflops / peak / ranks, of);
    const double images = (double)batch / ranks;   /* this process's */
    fprintf(out, "activation memory %.2f MB per image (arena peak %.1f MB%s), peak RSS %.1f MB\n",
            bt->act_bytes / 1e6 / images, bt->act_bytes / 1e6, o->recompute ? ", attention recomputed" : "",
            ru.ru_maxrss / 1024.0);
    const double accounted = print_ops(out, mc, rep, steps, images / rep->n);
    fprintf(out, "  %-26s %9.2f\n", "clip + optimizer", 1e3 * bt->opt / steps);
    fprintf(out, "  %-26s %9.2f\n", "other", 1e3 * (bt->total / steps - accounted - (bt->opt + bt->waited) / steps));
    if (ranks > 1) fprintf(out, "  %-26s %9.2f\n", "waiting for the sum", 1e3 * bt->waited / steps);
    fprintf(out, "images/s: %.2f\n", ips);
}

/* the model, its optimizer and the random batch, the timed steps and the figures */
static int bench(const bench_opts *o, const vt_vit_config *mc, const vt_dist *d, int threads, FILE *out)
{
    const int batch = o->batch, R = d->size, n = o->replicas;
    vt_vit m;
    if (vt_vit_init(&m, mc) != VT_OK) return VT_ERR;
    vt_rng rng;
    vt_rng_seed(&rng, 0);
    vt_vit_init_weights(&m, &rng);
    vt_optim opt;
    memset(&opt, 0, sizeof opt);
    vt_vit_replicas rep;
    memset(&rep, 0, sizeof rep);
    vt_grad_sum gs;
    memset(&gs, 0, sizeof gs);
    const int64_t pix = (int64_t)mc->in_chans * mc->img_h * mc->img_w;
    float *x = malloc((size_t)(batch * pix) * sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int));
    int rc = x && labels ? make_optim(&opt, &m) : vt_err("out of memory for a batch of %d images", batch);
    if (rc == VT_OK) {   /* every rank draws the whole batch and takes its share */
        for (int64_t i = 0; i < batch * pix; i++) x[i] = (float)vt_rng_normal(&rng);
        for (int i = 0; i < batch; i++) labels[i] = (int)(vt_rng_u64(&rng) % (uint64_t)mc->num_classes);
        double peak = sgemm_peak(2048);
        fprintf(out, "model %s: %dx%d patch %d, dim %d, depth %d, heads %d, mlp %g, %d classes, %.2fM params\n",
                o->model, mc->img_h, mc->img_w, mc->patch, mc->embed_dim, mc->depth, mc->num_heads, mc->mlp_ratio,
                mc->num_classes, vt_vit_num_params(&m) / 1e6);
        char cpu[160];
        cpu_name(cpu, sizeof cpu);
        fprintf(out, "CPU %s; kernels built for %s\n", cpu, VIT_ISA);
        fprintf(out, "batch %d, %d thread%s, %d replica%s, OpenBLAS core %s, sgemm peak (2048^3) %.1f GFLOPS\n", batch,
                threads, threads == 1 ? "" : "s", n, n == 1 ? "" : "s", vt_blas_core(), peak);
        rc = vt_vit_replicas_init(&rep, &m, n, 64 << 20, o->recompute);
        if (rc == VT_OK && R > 1) rc = vt_vit_replicas_set_share(&rep, d->rank * n, R * n);
        if (rc == VT_OK) rc = vt_grad_sum_init(&gs, d, &m.params, &rep);
        int64_t lo, hi;
        vt_batch_share(batch, R * n, d->rank * n, n, &lo, &hi);
        bench_times bt;
        if (rc == VT_OK) rc = run_steps(&m, &opt, &rep, &gs, x + lo * pix, labels + lo, batch, o->steps, &bt);
        if (rc == VT_OK && R > 1) rc = print_dist(out, d, &gs, &bt, o, threads, o->steps);
        if (rc == VT_OK) print_results(out, mc, &rep, &bt, o, R, peak);
    }
    vt_grad_sum_free(&gs);
    if (rep.n > 0) vt_vit_replicas_free(&rep);
    vt_optim_free(&opt);
    vt_vit_free(&m);
    free(x);
    free(labels);
    return rc;
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-bench")) return 2;
    vt_blas_ensure_core(argc, argv);
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    vt_dist d;   /* under mpirun: one rank (alone: rank 0 of 1) */
    if (vt_dist_init(&d, &argc, &argv) != VT_OK) {
        fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
        return 1;
    }
    vt_vit_config mc;
    rc = resolve_model(&o, &mc, d.size);
    if (rc < 0) {
        int threads = vt_rank_threads(&d, o.threads);
        if (threads > 0) vt_set_threads(threads);
        threads = vt_get_threads();
        FILE *quiet = d.rank > 0 ? fopen("/dev/null", "w") : NULL;   /* rank 0 alone prints */
        rc = bench(&o, &mc, &d, threads, quiet ? quiet : stdout) == VT_OK ? 0 : 1;
        if (quiet) fclose(quiet);
        if (rc != 0 && d.size > 1) {   /* this rank's failure stops the others (none waits forever) */
            fprintf(stderr, "vit-bench: rank %d of %d (host %s): %s\n", d.rank, d.size, d.host, vt_errmsg());
            fflush(stderr);
            vt_dist_abort(&d, 1);
        } else if (rc != 0)
            fprintf(stderr, "vit-bench: %s\n", vt_errmsg());
    }
    vt_dist_finalize(&d);
    return rc;
}
