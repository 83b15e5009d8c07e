/* test_tools.c - the command-line tools as a user runs them: their refusals of bad command lines and
 * files (vit-data, vit-export, vit-eval, vit-golden, the benches), exit statuses and messages */
#include "testutil.h"
#include "data_fixtures.h"
#include "data/data.h"
#include "train/train.h"
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static void setup(void) { fx_tempdir(dir, sizeof dir, "vit_tools"); }

static void teardown(void) { fx_remove(dir); }

/* ---------------------------------------------------------------- the tools, as a user runs them */
typedef struct {
    int status;              /* exit code, or 128 + signal */
    char out[16384], err[16384];
} tool_run;

/* the build folder: this test is <build>/tests/test_data */
static const char *build_dir(void)
{
    static char b[4096];
    ssize_t n = readlink("/proc/self/exe", b, sizeof b - 1);
    ck_assert_int_gt(n, 0);
    b[n] = '\0';
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(b, '/');
        ck_assert_ptr_nonnull(slash);
        *slash = '\0';
    }
    return b;
}

static void slurp_text(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t len = f ? fread(buf, 1, n - 1, f) : 0;
    buf[len] = '\0';
    if (f) fclose(f);
}

/* run <build>/<tool> (e.g. "tools/vit-data") with the NULL-terminated arguments, its file-size limit
 * fsize bytes (0: none), stdout and stderr captured */
static void run_tool(tool_run *t, long fsize, const char *tool, ...)
{
    const char *argv[64];
    char exe[4200], op[600], ep[600];
    snprintf(exe, sizeof exe, "%s/%s", build_dir(), tool);
    ck_assert_msg(access(exe, X_OK) == 0, "%s not built", exe);
    argv[0] = exe;
    int n = 1;
    va_list ap;
    va_start(ap, tool);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 63;) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(op, sizeof op, "%s/tool.out", dir);
    snprintf(ep, sizeof ep, "%s/tool.err", dir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        if (fsize > 0) {
            signal(SIGXFSZ, SIG_IGN);   /* a write past the limit fails with EFBIG instead */
            struct rlimit lim;
            getrlimit(RLIMIT_FSIZE, &lim);
            lim.rlim_cur = (rlim_t)fsize;
            setrlimit(RLIMIT_FSIZE, &lim);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    t->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp_text(op, t->out, sizeof t->out);
    slurp_text(ep, t->err, sizeof t->err);
}

/* the run exited with status and its stderr holds every one of the (NULL-terminated) words */
static void expect_tool(const tool_run *t, int status, ...)
{
    ck_assert_msg(t->status == status, "exit status %d, expected %d; stderr:\n%s", t->status, status, t->err);
    va_list ap;
    va_start(ap, status);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_msg(strstr(t->err, w) != NULL, "'%s' not in stderr:\n%s", w, t->err);
    va_end(ap);
}

/* vit-data pack on a full disk (a file-size limit): exit 1 naming the file and the OS's reason, the
 * old file as it was, no partial file left; into a folder or the source itself: refused up front */
START_TEST(tool_data_pack_refusals)
{
    static tool_run t;
    char src[300], out[512], part[600];
    snprintf(src, sizeof src, "%s/src", dir);
    mkdir(src, 0777);
    write_noise_idx(src, 3);
    snprintf(out, sizeof out, "%s/x.h5", dir);
    snprintf(part, sizeof part, "%s.partial", out);
    write_small_h5(out, true);
    long crc0 = file_crc(out);
    run_tool(&t, 200 << 10, "tools/vit-data", "pack", src, out, NULL);
    expect_tool(&t, 1, "vit-data", "x.h5.partial", "/train/images", strerror(EFBIG), "x.h5 left as it was", NULL);
    ck_assert(file_crc(out) == crc0);
    ck_assert_int_ne(access(part, F_OK), 0);
    /* an existing file that is not HDF5: a data file inside the source folder (here, an IDX source, which
     * the same-file check does not cover), or any other file, is never overwritten */
    char idx[600], ini[600];
    snprintf(idx, sizeof idx, "%s/train-images-idx3-ubyte", src);
    long crc_idx = file_crc(idx);
    run_tool(&t, 0, "tools/vit-data", "pack", src, idx, NULL);
    expect_tool(&t, 2, "vit-data:", idx, "is a file of the source folder", NULL);
    ck_assert(file_crc(idx) == crc_idx);
    ck_assert_ptr_null(strstr(t.out, "images ->"));
    write_text(dir, "config.ini", "[data]\n");
    snprintf(ini, sizeof ini, "%s/config.ini", dir);
    run_tool(&t, 0, "tools/vit-data", "pack", src, ini, NULL);
    expect_tool(&t, 2, "vit-data:", ini, "exists and is not an HDF5 file", NULL);
    expect_file_text(ini, "[data]\n");
    /* an existing folder as the output: refused before anything is packed */
    run_tool(&t, 0, "tools/vit-data", "pack", src, dir, NULL);
    expect_tool(&t, 2, "vit-data:", "is a folder", NULL);
    ck_assert_ptr_null(strstr(t.out, "images ->"));
    /* the output is the source, through a symlink */
    char link[600];
    snprintf(link, sizeof link, "%s/link.h5", dir);
    ck_assert_int_eq(symlink(out, link), 0);
    run_tool(&t, 0, "tools/vit-data", "pack", out, link, NULL);
    expect_tool(&t, 2, "vit-data:", "is the input file", NULL);
    ck_assert(file_crc(out) == crc0);
    /* an unknown command is named */
    run_tool(&t, 0, "tools/vit-data", "bogus", src, out, NULL);
    expect_tool(&t, 2, "vit-data: unknown command 'bogus'", NULL);
    /* with room it packs, over the old HDF5 file, and again over its own output; a new file inside the
     * source folder is fine */
    run_tool(&t, 0, "tools/vit-data", "pack", src, out, NULL);
    expect_tool(&t, 0, NULL);
    ck_assert_int_ne(access(part, F_OK), 0);
    run_tool(&t, 0, "tools/vit-data", "pack", src, out, NULL);
    expect_tool(&t, 0, NULL);
    char inside[600];
    snprintf(inside, sizeof inside, "%s/packed.h5", src);
    run_tool(&t, 0, "tools/vit-data", "pack", src, inside, NULL);
    expect_tool(&t, 0, NULL);
    ck_assert(file_crc(idx) == crc_idx);
}
END_TEST

/* vit-export refuses to write over its input (by any path), and its command-line errors are named */
START_TEST(tool_export_refusals)
{
    static tool_run t, help;
    vt_vit_config mc;
    vt_vit_config_defaults(&mc);
    mc.img_h = mc.img_w = 8, mc.patch = 4, mc.in_chans = 1, mc.num_classes = 2;
    mc.embed_dim = 8, mc.depth = 1, mc.num_heads = 2;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    vt_train_state s;
    memset(&s, 0, sizeof s);
    char ck[600], dotted[700], link[600];
    ck_assert_msg(vt_ckpt_write(dir, &m, NULL, &s, "", 0, ck, sizeof ck) == VT_OK, "%s", vt_errmsg());
    vt_vit_free(&m);
    struct stat before, after;
    ck_assert_int_eq(stat(ck, &before), 0);
    snprintf(dotted, sizeof dotted, "%s/./%s", dir, strrchr(ck, '/') + 1);
    snprintf(link, sizeof link, "%s/link.h5", dir);
    ck_assert_int_eq(symlink(ck, link), 0);
    const char *outs[3] = {ck, dotted, link};
    for (int k = 0; k < 3; k++) {
        run_tool(&t, 0, "tools/vit-export", ck, outs[k], NULL);
        expect_tool(&t, 2, "vit-export:", "is the input file", NULL);
        ck_assert_int_eq(stat(ck, &after), 0);
        ck_assert(after.st_ino == before.st_ino && after.st_size == before.st_size &&
                  after.st_mtime == before.st_mtime);
    }
    vt_vit_config back;   /* still a checkpoint */
    ck_assert_msg(vt_ckpt_model_config(ck, &back) == VT_OK, "%s", vt_errmsg());
    /* no arguments: an error line and the same usage as --help */
    run_tool(&help, 0, "tools/vit-export", "--help", NULL);
    ck_assert_int_eq(help.status, 0);
    run_tool(&t, 0, "tools/vit-export", NULL);
    expect_tool(&t, 2, "vit-export: missing", help.out, NULL);
    /* an unknown option is named as such */
    run_tool(&t, 0, "tools/vit-export", "--bogus", "A", "B", NULL);
    expect_tool(&t, 2, "--bogus", NULL);
    ck_assert_ptr_null(strstr(t.err, "unexpected argument"));
    /* an output not named .safetensors or .npz (another checkpoint, a config) is refused, untouched */
    char other[600], ini[600], npz[600];
    snprintf(other, sizeof other, "%s/ckpt-000000056.h5", dir);
    write_small_h5(other, false);
    long crc_other = file_crc(other);
    write_text(dir, "config.ini", "[data]\n");
    snprintf(ini, sizeof ini, "%s/config.ini", dir);
    const char *wrong[] = {other, ini};
    for (int k = 0; k < 2; k++) {
        run_tool(&t, 0, "tools/vit-export", ck, wrong[k], NULL);
        expect_tool(&t, 2, "vit-export:", wrong[k], "expected an output name ending in .safetensors or .npz", NULL);
    }
    ck_assert(file_crc(other) == crc_other);
    expect_file_text(ini, "[data]\n");
    snprintf(npz, sizeof npz, "%s/w.npz", dir);
    run_tool(&t, 0, "tools/vit-export", ck, npz, "--format", "safetensors", NULL);
    expect_tool(&t, 2, "vit-export: --format safetensors but the output", "names a .npz file", NULL);
    ck_assert_int_ne(access(npz, F_OK), 0);
    /* and it still exports, in the format the name says */
    char st[600];
    snprintf(st, sizeof st, "%s/w.safetensors", dir);
    run_tool(&t, 0, "tools/vit-export", ck, st, NULL);
    expect_tool(&t, 0, NULL);
    run_tool(&t, 0, "tools/vit-export", ck, npz, NULL);
    expect_tool(&t, 0, NULL);
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    ck_assert_msg(vt_vit_load_safetensors(&m, st) == VT_OK, "%s", vt_errmsg());
    ck_assert_msg(vt_vit_load_npz(&m, npz) == VT_OK, "%s", vt_errmsg());
    vt_vit_free(&m);
}
END_TEST

/* vit-eval checks its options before anything else: whole integers in range, known splits, no
 * stray arguments, and an error line saying what is wrong */
START_TEST(tool_eval_options)
{
    static tool_run t;
    const char *E = "tools/vit-eval", *ck = "/nonexistent/ckpt.h5";
    static const char *bad_batch[] = {"abc", "-5", "0", "1e999", "99999999999", "12x"};
    for (int k = 0; k < 6; k++) {
        run_tool(&t, 0, E, "--checkpoint", ck, "--batch", bad_batch[k], NULL);
        expect_tool(&t, 2, "vit-eval: --batch", bad_batch[k], "[1, 1048576]", NULL);
    }
    run_tool(&t, 0, E, "--checkpoint", ck, "--threads", "-1", NULL);
    expect_tool(&t, 2, "vit-eval: --threads -1", "[1, 1024]", NULL);
    run_tool(&t, 0, E, "--checkpoint", ck, "--threads", "100000", NULL);
    expect_tool(&t, 2, "vit-eval: --threads 100000", NULL);
    run_tool(&t, 0, E, "--checkpoint", ck, "stray", NULL);
    expect_tool(&t, 2, "vit-eval: unexpected argument 'stray'", NULL);
    run_tool(&t, 0, E, "--checkpoint", ck, "--split", "valid", NULL);
    expect_tool(&t, 2, "vit-eval: --split valid: expected test, train or val", NULL);
    run_tool(&t, 0, E, "--batch", "8", NULL);
    expect_tool(&t, 2, "vit-eval: --checkpoint FILE is required", "usage:", NULL);
}
END_TEST

/* vit-data info on IDX labels 0..9 and one 77: 78 classes, 67 of them empty (the largest label + 1, nothing names them), said
 * with the classes left without images and how to refuse such labels (--num-classes, as vit-train's
 * [model] num_classes); vit-eval given a .safetensors or .npz file says what it is and what it takes */
START_TEST(tool_info_classes_and_eval_weight_files)
{
    static tool_run t;
    char src[512], p[600];
    snprintf(src, sizeof src, "%s/stray", dir);
    mkdir(src, 0777);
    write_noise_idx(src, 3);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", src);
    FILE *f = fopen(p, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 8 + 1234, SEEK_SET);
    fputc(77, f);
    fclose(f);
    run_tool(&t, 0, "tools/vit-data", "info", src, NULL);
    ck_assert_msg(t.status == 0, "%s", t.err);
    ck_assert_msg(strstr(t.out, "78 classes") && strstr(t.out, "the largest label, 77, + 1") &&
                      strstr(t.out, "67 of them have no image") && strstr(t.out, "--num-classes N refuses"),
                  "%s", t.out);
    run_tool(&t, 0, "tools/vit-data", "info", src, "--num-classes", "10", NULL);
    expect_tool(&t, 1, "label 77 of sample 1234 is outside the 10 classes", NULL);
    /* every label used: nothing to say */
    snprintf(src, sizeof src, "%s/clean", dir);
    mkdir(src, 0777);
    write_noise_idx(src, 3);
    run_tool(&t, 0, "tools/vit-data", "info", src, NULL);
    ck_assert_msg(t.status == 0 && strstr(t.out, "10 classes") && !strstr(t.out, "largest label"), "%s", t.out);
    /* weight files given to vit-eval */
    static const unsigned char st[] = "\x13\0\0\0\0\0\0\0{\"__metadata__\":{}} ";
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_file(p, st, sizeof st - 1, false);
    run_tool(&t, 0, "tools/vit-eval", "--checkpoint", p, NULL);
    expect_tool(&t, 1, "model.safetensors: a safetensors weight file", "not a vit checkpoint", "ckpt-<step>.h5",
                "--init", NULL);
    snprintf(p, sizeof p, "%s/model.npz", dir);
    write_file(p, "PK\3\4 not much of a zip", 22, false);   /* its 22 bytes (24 read past the literal: ASan) */
    run_tool(&t, 0, "tools/vit-eval", "--checkpoint", p, NULL);
    expect_tool(&t, 1, "model.npz: a zip archive", "not a vit checkpoint", NULL);
    snprintf(p, sizeof p, "%s/other.bin", dir);
    write_file(p, "just bytes", 10, false);
    run_tool(&t, 0, "tools/vit-eval", "--checkpoint", p, NULL);
    expect_tool(&t, 1, "other.bin: not an HDF5 file", NULL);
}
END_TEST

/* a checkpoint of an untrained 12x20 one-channel model for write_noise_idx's data, in folder out, whose
 * stored config is cfg and whose state says the run trained on train_images images */
static void eval_ckpt(const char *out, const char *cfg, int64_t train_images, char *ck, size_t n)
{
    vt_vit_config mc;
    vt_vit_config_defaults(&mc);
    mc.img_h = 12, mc.img_w = 20, mc.patch = 4, mc.in_chans = 1, mc.num_classes = 10;
    mc.embed_dim = 8, mc.depth = 1, mc.num_heads = 2;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    vt_rng r;
    vt_rng_seed(&r, 11);
    vt_vit_init_weights(&m, &r);
    vt_train_state s;
    memset(&s, 0, sizeof s);
    s.seed = 5;
    s.train_images = train_images;
    mkdir(out, 0777);
    ck_assert_msg(vt_ckpt_write(out, &m, NULL, &s, cfg, 0, ck, n) == VT_OK, "%s", vt_errmsg());
    vt_vit_free(&m);
}

/* vit-eval --split val evaluates the images the trainer held out ([data] val_fraction, the run's seed): the
 * same split function, so the same images and the same loss as evaluating them here; refused, saying why,
 * when the run held out nothing, the data has a test split or is not the run's. A data path from the stored
 * config that is gone says where it came from; --data is used whole or refused */
START_TEST(tool_eval_val_split_and_paths)
{
    static tool_run t;
    const char *E = "tools/vit-eval";
    char src[300], cfg[1024], ck[600], ck0[600], ckn[600], ckgone[600], both[300];
    snprintf(src, sizeof src, "%s/fm", dir);
    mkdir(src, 0777);
    write_noise_idx(src, 4);   /* 3000 training images, no test split */
    snprintf(cfg, sizeof cfg, "[data]\npath = %s\nval_fraction = 0.1\n[train]\nseed = 5\n", src);
    char out[600];
    snprintf(out, sizeof out, "%s/run", dir);
    eval_ckpt(out, cfg, 2700, ck, sizeof ck);
    run_tool(&t, 0, E, "--checkpoint", ck, "--split", "val", NULL);
    expect_tool(&t, 0, NULL);
    ck_assert_msg(strstr(t.out, "(val: held out of the training split as the run did, 300 images)"), "%s", t.out);
    /* the loss of those 300 images, evaluated here through the trainer's split */
    vt_config c;
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_load_text(&c, cfg, "cfg"), VT_OK);
    vt_vit_config mc;
    ck_assert_int_eq(vt_ckpt_model_config(ck, &mc), VT_OK);
    c.num_classes = mc.num_classes;
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    ck_assert_int_eq(vt_ckpt_load(ck, &m, NULL, NULL, NULL), VT_OK);
    vt_dataset *ds;
    ck_assert_int_eq(vt_config_open_data(&c, &mc, "train", &ds), VT_OK);
    int64_t *tr, *va, ntr, nva;
    ck_assert_int_eq(vt_split_indices(ds->count, c.val_fraction, (uint64_t)c.seed, &tr, &ntr, &va, &nva), VT_OK);
    ck_assert_int_eq(nva, 300);
    vt_loader *l;
    vt_vit_replicas rep;
    vt_eval_result ev;
    ck_assert_int_eq(vt_config_loader(&c, &mc, ds, va, nva, false, 0, &l), VT_OK);
    ck_assert_int_eq(vt_vit_replicas_init_eval(&rep, &m, 1, 16u << 20), VT_OK);
    ck_assert_int_eq(vt_evaluate(&rep, l, &ev), VT_OK);
    char want[96];
    snprintf(want, sizeof want, "loss %.4f  top-1 %.2f%%", ev.v[0], ev.v[1]);   /* classification: loss, top-1, top-5 */
    ck_assert_msg(strstr(t.out, want), "'%s' not in %s", want, t.out);
    vt_loader_free(l);
    vt_vit_replicas_free(&rep);
    vt_dataset_close(ds);
    vt_vit_free(&m);
    free(tr);
    free(va);
    /* without --split: no test split, and the way to the held-out one */
    run_tool(&t, 0, E, "--checkpoint", ck, NULL);
    expect_tool(&t, 1, "no test split", "--split val", NULL);
    /* another training set size: not the run's data */
    snprintf(out, sizeof out, "%s/run_n", dir);
    eval_ckpt(out, cfg, 2999, ckn, sizeof ckn);
    run_tool(&t, 0, E, "--checkpoint", ckn, "--split", "val", NULL);
    expect_tool(&t, 1, "the run trained on 2999 images", "not the data of the run", NULL);
    /* a run without val_fraction */
    snprintf(cfg, sizeof cfg, "[data]\npath = %s\n", src);
    snprintf(out, sizeof out, "%s/run0", dir);
    eval_ckpt(out, cfg, 3000, ck0, sizeof ck0);
    run_tool(&t, 0, E, "--checkpoint", ck0, "--split", "val", NULL);
    expect_tool(&t, 1, "held out no validation images", "val_fraction = 0", NULL);
    /* data with a test split: the trainer held out nothing */
    snprintf(both, sizeof both, "%s/both", dir);
    mkdir(both, 0777);
    write_noise_idx(both, 5);
    char a[600], b[600];
    const char *kinds[2][2] = {{"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"},
                               {"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int k = 0; k < 2; k++) {
        snprintf(a, sizeof a, "%s/%s", both, kinds[k][0]);
        snprintf(b, sizeof b, "%s/%s", both, kinds[k][1]);
        ck_assert_int_eq(link(a, b), 0);
    }
    run_tool(&t, 0, E, "--checkpoint", ck, "--split", "val", "--data", both, NULL);
    expect_tool(&t, 1, "has a test split", "--split test", NULL);
    /* the stored data path is gone: said to come from the checkpoint's config, with --data as the way out */
    snprintf(cfg, sizeof cfg, "[data]\npath = %s/fm_tmp\n", dir);
    snprintf(out, sizeof out, "%s/rungone", dir);
    eval_ckpt(out, cfg, 0, ckgone, sizeof ckgone);
    run_tool(&t, 0, E, "--checkpoint", ckgone, NULL);
    expect_tool(&t, 1, "fm_tmp: no such file or folder", "config stored in", ckgone, "--data PATH", NULL);
    run_tool(&t, 0, E, "--checkpoint", ckgone, "--data", src, "--split", "train", NULL);
    expect_tool(&t, 0, NULL);
    ck_assert_msg(strstr(t.out, "3000 images"), "%s", t.out);
    /* --data longer than a config's path takes: refused whole, even when its first 255 characters name a
     * dataset (they used to be evaluated instead) */
    char longp[600];
    int pre = snprintf(longp, sizeof longp, "%s/", dir);
    memset(longp + pre, 'a', (size_t)(255 - pre));
    longp[255] = '\0';
    ck_assert_int_eq(rename(src, longp), 0);
    strcat(longp, "b");
    run_tool(&t, 0, E, "--checkpoint", ckgone, "--data", longp, "--split", "train", NULL);
    expect_tool(&t, 2, "vit-eval: --data", "path too long (256 characters, at most 255)", NULL);
    ck_assert_ptr_null(strstr(t.out, "images)"));
}
END_TEST

/* an OpenMP thread count above 1024 in the environment (libgomp crashed creating 65536 threads) is
 * refused by the tools before any parallel region, naming the variable */
START_TEST(tool_omp_threads_env)
{
    static tool_run t;
    char src[300], out[600], ck[600], cfg[600], st[600];
    snprintf(src, sizeof src, "%s/fm", dir);
    mkdir(src, 0777);
    write_noise_idx(src, 6);
    snprintf(cfg, sizeof cfg, "[data]\npath = %s\n", src);
    snprintf(out, sizeof out, "%s/run", dir);
    eval_ckpt(out, cfg, 0, ck, sizeof ck);
    snprintf(st, sizeof st, "%s/w.safetensors", dir);
    static const char *bad[] = {"65536", "4,2000", "99999999999999999999"};
    for (int k = 0; k < 3; k++) {
        setenv("OMP_NUM_THREADS", bad[k], 1);
        run_tool(&t, 0, "tools/vit-eval", "--checkpoint", ck, "--split", "train", NULL);
        expect_tool(&t, 2, "vit-eval: OMP_NUM_THREADS=", bad[k], "more than 1024 threads", NULL);
        run_tool(&t, 0, "tools/vit-data", "info", src, NULL);
        expect_tool(&t, 2, "vit-data: OMP_NUM_THREADS=", NULL);
        run_tool(&t, 0, "tools/vit-export", ck, st, NULL);
        expect_tool(&t, 2, "vit-export: OMP_NUM_THREADS=", NULL);
        ck_assert_int_ne(access(st, F_OK), 0);
    }
    setenv("OMP_NUM_THREADS", "2", 1);
    run_tool(&t, 0, "tools/vit-eval", "--checkpoint", ck, "--split", "train", NULL);
    unsetenv("OMP_NUM_THREADS");
    expect_tool(&t, 0, NULL);
}
END_TEST

/* vit-golden: a file without golden groups fails; --case naming a parent group or (with --weights) a
 * case that is not a model case says so */
START_TEST(tool_golden_refusals)
{
    static tool_run t;
    const char *G = "tools/vit-golden", *ref = tu_golden("vit_reference.h5");
    char ref_copy[4096], path[512];
    snprintf(ref_copy, sizeof ref_copy, "%s", ref);
    snprintf(path, sizeof path, "%s/plain.h5", dir);
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    int64_t v[3] = {1, 2, 3};
    ck_assert_int_eq(vt_h5_write_i64(f, "/model/x", v, 1, (int64_t[]){3}), VT_OK);
    vt_h5_close(f);
    run_tool(&t, 0, G, path, NULL);
    expect_tool(&t, 1, "plain.h5", "no golden groups", NULL);
    if (access(ref_copy, R_OK) != 0) {
        printf("note: %s absent: the --case checks skipped\n", ref_copy);
        return;
    }
    run_tool(&t, 0, G, "--case", "/schedule", ref_copy, NULL);
    expect_tool(&t, 1, "/schedule is not a case", "/schedule/warmup_cosine", NULL);
    ck_assert_ptr_null(strstr(t.err, "no group named"));
    run_tool(&t, 0, G, "--case", "/schedule/warmup_cosine", "--weights", path, ref_copy, NULL);
    expect_tool(&t, 1, "not a model case", "/vit_tiny_f64", NULL);
    ck_assert_ptr_null(strstr(t.err, "no group named"));
}
END_TEST

/* the benches and vit-config-keys check their arguments too */
START_TEST(tool_bench_options)
{
    static tool_run t;
    const char *B = "bench/vit-bench", *L = "bench/vit-loader-bench";
    static const char *bad[][2] = {{"--batch", "0"}, {"--batch", "abc"}, {"--steps", "0"}, {"--steps", "-1"},
                                   {"--patch-drop", "nan"}, {"--patch-drop", "0x0.1"}};
    for (int k = 0; k < 6; k++) {
        run_tool(&t, 0, B, bad[k][0], bad[k][1], NULL);
        expect_tool(&t, 2, "vit-bench:", bad[k][0], bad[k][1], "expected", NULL);
    }
    run_tool(&t, 0, B, "--steps", "1", "stray", NULL);
    expect_tool(&t, 2, "vit-bench: unexpected argument 'stray'", NULL);
    run_tool(&t, 0, B, "--model", "s16", "--config", "x.ini", NULL);
    expect_tool(&t, 2, "vit-bench: --model s16 and --config x.ini: give one", NULL);
    run_tool(&t, 0, B, "--model", "fmnist", "--batch", "2", "--replicas", "4", NULL);
    expect_tool(&t, 2, "--replicas 4 is more than the batch of 2 images", NULL);
    static const char *lbad[][2] = {{"--batch", "0"}, {"--size", "0"}, {"--batches", "0"}};
    for (int k = 0; k < 3; k++) {
        run_tool(&t, 0, L, "--data", "/nonexistent", lbad[k][0], lbad[k][1], NULL);
        expect_tool(&t, 2, "vit-loader-bench:", lbad[k][0], "expected an integer", NULL);
    }
    run_tool(&t, 0, L, "--data", "/nonexistent", "--split", "val", NULL);
    expect_tool(&t, 2, "vit-loader-bench: --split val: expected train or test", NULL);
    run_tool(&t, 0, "tools/vit-config-keys", "--help", NULL);
    ck_assert_int_eq(t.status, 0);
    ck_assert_ptr_nonnull(strstr(t.out, "usage: vit-config-keys"));
    ck_assert_ptr_null(strstr(t.out, "| section |"));
    run_tool(&t, 0, "tools/vit-config-keys", "--bogus", NULL);
    expect_tool(&t, 2, "vit-config-keys: unexpected argument '--bogus'", NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools");
    TCase *tools = tcase_create("tools");
    tcase_set_timeout(tools, 300);
    tcase_add_checked_fixture(tools, setup, teardown);
    tcase_add_test(tools, tool_data_pack_refusals);
    tcase_add_test(tools, tool_export_refusals);
    tcase_add_test(tools, tool_eval_options);
    tcase_add_test(tools, tool_info_classes_and_eval_weight_files);
    tcase_add_test(tools, tool_eval_val_split_and_paths);
    tcase_add_test(tools, tool_omp_threads_env);
    tcase_add_test(tools, tool_golden_refusals);
    tcase_add_test(tools, tool_bench_options);
    suite_add_tcase(s, tools);
    return tu_run(s);
}
