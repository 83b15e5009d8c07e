/* train_fixtures.c - what the end-to-end vit-train tests share (test_train.c, test_train_mpi.c): the run
 * folder of a test, its small IDX dataset and config, running the tool, and comparing runs. */
#include "train_fixtures.h"
#include "train/train.h"
#include <check.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

char dir[256];

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* n images of s x s whose class is where a bright square sits; gz or plain */
void write_idx(const char *folder, const char *prefix, int n, int s, bool gz, uint64_t seed, int classes)
{
    size_t isz = 16 + (size_t)n * s * s, lsz = 8 + (size_t)n;
    uint8_t *im = calloc(1, isz), *lb = calloc(1, lsz);
    put_be32(im, 0x803);
    put_be32(im + 4, (uint32_t)n);
    put_be32(im + 8, (uint32_t)s);
    put_be32(im + 12, (uint32_t)s);
    put_be32(lb, 0x801);
    put_be32(lb + 4, (uint32_t)n);
    vt_rng r;
    vt_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int cls = (int)(vt_rng_u64(&r) % (uint64_t)classes);
        lb[8 + i] = (uint8_t)cls;
        uint8_t *p = im + 16 + (size_t)i * s * s;
        for (int k = 0; k < s * s; k++) p[k] = (uint8_t)(vt_rng_u64(&r) % 60);
        /* a bright half-size square in one of 4 quadrants; classes 4, 5: two opposite quadrants */
        int q = cls % 4, y0 = (q / 2) * s / 2, x0 = (q % 2) * s / 2;
        if (cls >= 4)
            for (int y = s / 2 - y0; y < s / 2 - y0 + s / 2; y++)
                for (int x = s / 2 - x0; x < s / 2 - x0 + s / 2; x++) p[y * s + x] = 200;
        for (int y = y0; y < y0 + s / 2; y++)
            for (int x = x0; x < x0 + s / 2; x++) p[y * s + x] = (uint8_t)(150 + vt_rng_u64(&r) % 100);
    }
    char path[512];
    const char *kinds[2] = {"images-idx3-ubyte", "labels-idx1-ubyte"};
    uint8_t *bufs[2] = {im, lb};
    size_t lens[2] = {isz, lsz};
    for (int k = 0; k < 2; k++) {
        ck_assert(snprintf(path, sizeof path, "%s/%s-%s%s", folder, prefix, kinds[k], gz ? ".gz" : "") < (int)sizeof path);
        if (gz) {
            gzFile g = gzopen(path, "wb");
            gzwrite(g, bufs[k], (unsigned)lens[k]);
            gzclose(g);
        } else {
            FILE *f = fopen(path, "wb");
            fwrite(bufs[k], 1, lens[k], f);
            fclose(f);
        }
    }
    free(im);
    free(lb);
}

void write_config(const char *path, int img, const char *extra)
{
    FILE *f = fopen(path, "w");
    fprintf(f,
            "[model]\nimg_size = %d\npatch_size = 4\nin_chans = 1\nembed_dim = 16\ndepth = 2\nnum_heads = 2\n"
            "mlp_ratio = 2\n[data]\npath = %s/data\nbatch_size = 16\nworkers = 2\nmean = 0.3\nstd = 0.3\n"
            "hflip = false\ncrop_padding = 1\n[optim]\noptimizer = adamw\nlr = 3e-3\nclip_grad_norm = 1.0\n"
            "label_smoothing = 0.1\n[schedule]\nwarmup_steps = 4\n[train]\nepochs = 3\nseed = 5\nlog_every_steps = 1\n"
            "threads = 2\n[checkpoint]\nevery_steps = 3\nkeep_last = 2\n%s",
            img, dir, extra);
    fclose(f);
}

/* when not 0: the largest file the next tools run may write, in bytes */
rlim_t child_fsize_limit;

/* run the tool named by an environment variable (VIT_TRAIN_BIN, VIT_EVAL_BIN) with arguments, its
 * output appended to log; returns the exit status (or -signal) */
int run_tool(const char *envvar, const char *const *args, const char *log)
{
    const char *bin = getenv(envvar);
    ck_assert_msg(bin != NULL, "%s not set", envvar);
    pid_t pid = fork();
    if (pid == 0) {
        if (child_fsize_limit) {   /* a disk that fills up: writes past the limit fail with EFBIG */
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &(struct rlimit){child_fsize_limit, child_fsize_limit});
        }
        freopen(log, "a", stdout);
        freopen(log, "a", stderr);
        const char *argv[32] = {bin};
        int n = 1;
        for (; args[n - 1]; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

int run(const char *const *args, const char *log) { return run_tool("VIT_TRAIN_BIN", args, log); }

/* the metrics rows without the img/s column */
char *metrics_without_speed(const char *out)
{
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.csv", out);
    FILE *f = fopen(p, "r");
    ck_assert_msg(f != NULL, "no %s", p);
    static char buf[1 << 16];
    size_t n = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* drop field 6 (img_per_s) */
        int field = 1;
        for (char *c = line; *c && n < sizeof buf - 1; c++) {
            if (*c == ',') field++;
            if (field != 6 || (*c == ',' && field == 6 && 0)) buf[n++] = *c;
        }
    }
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

void assert_same_weights(const char *a, const char *b)
{
    vt_h5id fa = vt_h5_open(a, false), fb = vt_h5_open(b, false);
    ck_assert_msg(fa >= 0 && fb >= 0, "%s", vt_errmsg());
    char **names;
    int n;
    ck_assert_int_eq(vt_h5_list(fa, "/model", &names, &n), VT_OK);
    ck_assert_int_gt(n, 10);
    for (int i = 0; i < n; i++) {
        char p[256];
        snprintf(p, sizeof p, "/model/%s", names[i]);
        float *x, *y;
        int nd;
        int64_t sh[8];
        ck_assert_int_eq(vt_h5_read_f32(fa, p, &x, &nd, sh), VT_OK);
        ck_assert_int_eq(vt_h5_read_f32(fb, p, &y, &nd, sh), VT_OK);
        int64_t cnt = 1;
        for (int k = 0; k < nd; k++) cnt *= sh[k];
        ck_assert_msg(memcmp(x, y, sizeof(float) * (size_t)cnt) == 0, "%s differs between %s and %s", p, a, b);
        free(x);
        free(y);
    }
    vt_h5_free_names(names, n);
    float *m;   /* the optimizer state is there too */
    ck_assert_int_eq(vt_h5_read_f32(fa, "/optimizer/exp_avg", &m, NULL, NULL), VT_OK);
    free(m);
    vt_h5_close(fa);
    vt_h5_close(fb);
}

/* the last 1500 characters of a log: enough for a failure message (Check refuses long ones) */
const char *tail(const char *text)
{
    size_t n = strlen(text);
    return n > 1500 ? text + n - 1500 : text;
}

char *read_log(const char *log)
{
    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* args + extra (NULL-terminated) into out (NULL-terminated) */
void join_args(const char **out, int cap, const char *const *args, const char *const *extra)
{
    int n = 0;
    for (; args[n]; n++) out[n] = args[n];
    for (int i = 0; extra && extra[i]; i++) out[n++] = extra[i];
    ck_assert_int_lt(n, cap);
    out[n] = NULL;
}

/* a straight run into outA, and a run into outB stopped after 25 of its 60 steps then resumed with
 * --resume auto, both with the extra arguments: the same metrics.csv losses and bitwise the same weights */
void assert_stop_resume_exact(const char *cfg, const char *outA, const char *outB, const char *log,
                                     const char *const *extra)
{
    const char *argv[32];
    join_args(argv, 32, (const char *[]){"--config", cfg, "--out", outA, NULL}, extra);
    ck_assert_int_eq(run(argv, log), 0);
    join_args(argv, 32, (const char *[]){"--config", cfg, "--out", outB, "--stop-after", "25", NULL}, extra);
    ck_assert_int_eq(run(argv, log), 130);
    join_args(argv, 32, (const char *[]){"--config", cfg, "--out", outB, "--resume", "auto", NULL}, extra);
    ck_assert_int_eq(run(argv, log), 0);
    char *ma = metrics_without_speed(outA), *mb = metrics_without_speed(outB);
    ck_assert_msg(strcmp(ma, mb) == 0, "metrics differ:\n%s\n---\n%s", ma, mb);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/ckpt-000000060.h5", outA);
    snprintf(b, sizeof b, "%s/ckpt-000000060.h5", outB);
    assert_same_weights(a, b);
    free(ma);
    free(mb);
}

void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vit_train_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof p, "%s/data", dir);
    mkdir(p, 0777);
    write_idx(p, "train", 320, 8, true, 1, 4);
    write_idx(p, "t10k", 96, 8, false, 2, 4);
    snprintf(p, sizeof p, "%s/a.ini", dir);
    write_config(p, 8, "");
}

void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* a gray PNG of (h, w) whose bright quadrant is the class */
void write_class_png(const char *path, int h, int w, int cls, int seed)
{
    uint8_t *buf = malloc((size_t)h * w);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            bool lit = (y < h / 2) == (cls / 2 == 0) && (x < w / 2) == (cls % 2 == 0);
            buf[y * w + x] = (uint8_t)(lit ? 180 + (seed * 7 + x) % 60 : (seed * 13 + y * 3 + x) % 50);
        }
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    ck_assert_msg(png_image_write_to_file(&im, path, 0, buf, 0, NULL), "%s: %s", path, im.message);
    free(buf);
}
