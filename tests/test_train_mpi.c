/* test_train_mpi.c - vit-train as ranks of a data-parallel run (mpirun on localhost, --oversubscribe):
 * 2 ranks x 1 replica train bitwise as 1 process x 2 replicas (also with [train] shard_optimizer), 2 x 2 as
 * 1 x 4 (metrics.csv losses and the final checkpoint's weights and optimizer state); a run stopped under one
 * rank count and resumed under another is the same run (a sharded one's checkpoint holds the whole state); a bad sample on rank 1 alone, and ranks whose configs differ, stop every rank
 * with a message naming the rank and its host; kill -9 of a rank, then --resume auto, finishes the run.
 * vit-bench under mpirun: rank 0 alone prints, the gradient sum's bytes are the parameters', and its
 * communication figures are consistent (exposed within the time in flight, hidden share in [0, 1]). */
#include "testutil.h"
#include "train_fixtures.h"
#include "train/train.h"
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { STEPS = 12 };

/* vit-train with args, alone (ranks 0) or under mpirun -n ranks; the output appended to log */
static int train(int ranks, const char *const *args, const char *log)
{
    if (ranks == 0) return run(args, log);
    const char *bin = getenv("VIT_TRAIN_BIN");
    ck_assert_ptr_nonnull(bin);
    char n[8];
    snprintf(n, sizeof n, "%d", ranks);
    const char *argv[48];
    join_args(argv, 48, (const char *[]){"-n", n, "--oversubscribe", "--bind-to", "none", bin, NULL}, args);
    return run_tool("VIT_MPIRUN", argv, log);
}

/* the test config's run of STEPS steps with `replicas` replicas and `threads` threads per process into out */
static int layout_run(int ranks, int replicas, const char *out, const char *const *extra, const char *log)
{
    char cfg[512], rep[64], th[16];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(rep, sizeof rep, "train.replicas=%d", replicas);
    snprintf(th, sizeof th, "%d", replicas);   /* a replica per thread: every part runs single-threaded */
    const char *argv[40];
    join_args(argv, 40,
              (const char *[]){"--config", cfg, "--out", out, "--threads", th, "--set", rep, "--set", "train.max_steps=12",
                               "--set", "train.eval_every_steps=6", "--set", "checkpoint.every_steps=4", NULL},
              extra);
    return train(ranks, argv, log);
}

static void assert_same_run(const char *a, const char *b)
{
    char *ma = metrics_without_speed(a), *mb = metrics_without_speed(b);
    ck_assert_msg(strcmp(ma, mb) == 0, "metrics differ:\n%s\n---\n%s", ma, mb);
    ck_assert_msg(strstr(ma, ",12,") || strstr(ma, "\n12,"), "no row of step 12:\n%s", ma);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/ckpt-%09d.h5", a, STEPS);
    snprintf(pb, sizeof pb, "%s/ckpt-%09d.h5", b, STEPS);
    assert_same_weights(pa, pb);
    free(ma);
    free(mb);
}

static void path_in(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

/* 1 x 2 = 2 x 1 and 1 x 4 = 2 x 2, bitwise; the same layout twice the same; the banner of a rank run */
START_TEST(layouts_agree_bitwise)
{
    char a[512], b[512], c[512], d[512], log[512];
    path_in(log, sizeof log, "layouts.txt");
    path_in(a, sizeof a, "L1x2"), path_in(b, sizeof b, "L2x1"), path_in(c, sizeof c, "L1x4"), path_in(d, sizeof d, "L2x2");
    ck_assert_int_eq(layout_run(0, 2, a, NULL, log), 0);
    ck_assert_msg(layout_run(2, 1, b, NULL, log) == 0, "%s", tail(read_log(log)));
    char *text = read_log(log);
    ck_assert_msg(strstr(text, "data parallel: 2 ranks on 1 host, 1 thread and 1 replica per rank (each batch in 2 parts)"),
                  "%s", tail(text));
    assert_same_run(a, b);
    char e[512];   /* ZeRO-1: each rank updates half the parameters with its half of the moments */
    path_in(e, sizeof e, "L2x1shard");
    const char *shard[] = {"--set", "train.shard_optimizer=true", NULL};
    ck_assert_msg(layout_run(2, 1, e, shard, log) == 0, "%s", tail(read_log(log)));
    assert_same_run(a, e);
    ck_assert_int_eq(layout_run(0, 4, c, NULL, log), 0);
    ck_assert_msg(layout_run(2, 2, d, NULL, log) == 0, "%s", tail(read_log(log)));
    assert_same_run(c, d);
}
END_TEST

/* stopped with 2 ranks, resumed alone, and the other way round: the straight run's result */
START_TEST(resume_on_another_rank_count)
{
    char a[512], b[512], c[512], log[512];
    path_in(log, sizeof log, "resume.txt");
    path_in(a, sizeof a, "R1x2"), path_in(b, sizeof b, "R2to1"), path_in(c, sizeof c, "R1to2");
    ck_assert_int_eq(layout_run(0, 2, a, NULL, log), 0);
    const char *stop[] = {"--stop-after", "5", NULL}, *resume[] = {"--resume", "auto", NULL};
    ck_assert_msg(layout_run(2, 1, b, stop, log) == 130, "%s", tail(read_log(log)));
    ck_assert_int_eq(layout_run(0, 2, b, resume, log), 0);
    assert_same_run(a, b);
    ck_assert_int_eq(layout_run(0, 2, c, stop, log), 130);
    ck_assert_msg(layout_run(2, 1, c, resume, log) == 0, "%s", tail(read_log(log)));
    assert_same_run(a, c);
    /* a sharded run's checkpoint holds the whole optimizer state: resumed alone, the same run */
    char d[512];
    path_in(d, sizeof d, "R2shardto1");
    const char *stop_shard[] = {"--stop-after", "5", "--set", "train.shard_optimizer=true", NULL};
    ck_assert_msg(layout_run(2, 1, d, stop_shard, log) == 130, "%s", tail(read_log(log)));
    ck_assert_int_eq(layout_run(0, 2, d, resume, log), 0);
    assert_same_run(a, d);
}
END_TEST

/* a PNG whose header is whole and whose pixels are cut off: the folder opens, reading the image fails */
static void write_cut_png(const char *path)
{
    write_class_png(path, 8, 8, 3, 1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size - 20), 0);   /* IEND (12 bytes) and the end of IDAT */
}

/* an image folder whose evaluation split has a broken image in the part of every batch rank 1 reads:
 * rank 1 stops the run naming itself, its host and the file; rank 0 does not wait for it forever */
START_TEST(bad_sample_on_rank_1)
{
    char root[512], p[700], cfg[512], set_path[800], log[512], out[512];
    path_in(root, sizeof root, "folder");
    const char *splits[] = {"train", "val"};
    for (int s = 0; s < 2; s++)
        for (int cls = 0; cls < 4; cls++) {
            snprintf(p, sizeof p, "%s/%s/c%d", root, splits[s], cls);
            ck_assert_int_eq(system((snprintf(set_path, sizeof set_path, "mkdir -p '%s'", p), set_path)), 0);
            for (int i = 0; i < (s == 0 ? 8 : 2); i++) {
                snprintf(p, sizeof p, "%s/%s/c%d/img%02d.png", root, splits[s], cls, i);
                write_class_png(p, 8, 8, cls, cls * 10 + i);
            }
        }
    snprintf(p, sizeof p, "%s/val/c3/img01.png", root);   /* the 8th of 8: rank 1's half of the batch */
    write_cut_png(p);
    path_in(cfg, sizeof cfg, "a.ini");
    path_in(log, sizeof log, "bad_sample.txt");
    path_in(out, sizeof out, "BAD");
    snprintf(set_path, sizeof set_path, "data.path=%s", root);
    const char *argv[] = {"--config", cfg, "--out", out, "--threads", "1", "--set", set_path, "--set", "data.eval_batch_size=8",
                          "--set", "train.max_steps=6", "--set", "train.eval_every_steps=1", NULL};
    ck_assert_int_ne(train(2, argv, log), 0);
    char *text = read_log(log);
    ck_assert_msg(strstr(text, "vit-train: rank 1 of 2 (host ") && strstr(text, "c3/img01.png"), "%s", tail(text));
    ck_assert_msg(!strstr(text, "rank 0 of 2"), "%s", tail(text));
}
END_TEST

/* two ranks started with different --set values (mpirun's a : b form) are refused before anything is written */
START_TEST(configs_differing_between_ranks_refused)
{
    char cfg[512], log[512], out[512];
    path_in(cfg, sizeof cfg, "a.ini");
    path_in(log, sizeof log, "differ.txt");
    path_in(out, sizeof out, "DIFFER");
    const char *bin = getenv("VIT_TRAIN_BIN");
    const char *argv[] = {"-n", "1", "--oversubscribe", "--bind-to", "none", bin, "--config", cfg, "--out", out, "--threads",
                          "1", ":", "-n", "1", bin, "--config", cfg, "--out", out, "--threads", "1", "--set",
                          "optim.lr=2e-3", NULL};
    ck_assert_int_eq(run_tool("VIT_MPIRUN", argv, log), 1);
    char *text = read_log(log);
    ck_assert_msg(strstr(text, "refused: rank 1 of 2 (host ") && strstr(text, "lr = 0.002") &&
                      strstr(text, "resolved config"),
                  "%s", tail(text));
    struct stat st;
    ck_assert_msg(stat(out, &st) != 0, "%s was created", out);
}
END_TEST

/* the pids of mpirun's children that run vit-train (its ranks) */
static int rank_pids(pid_t parent, pid_t *out, int cap)
{
    DIR *dp = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (dp && (e = readdir(dp)) && n < cap) {
        char p[300], buf[512];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        int pid = 0, ppid = 0;
        char comm[256] = "";
        if (fgets(buf, sizeof buf, f) && sscanf(buf, "%d (%255[^)]) %*c %d", &pid, comm, &ppid) == 3 && ppid == parent &&
            strstr(comm, "vit-train"))
            out[n++] = pid;
        fclose(f);
    }
    if (dp) closedir(dp);
    return n;
}

/* kill -9 of rank 1 after the checkpoint of step 10 of 60: mpirun ends the job (non-zero), nothing hangs, and
 * --resume auto under 2 ranks ends with the straight run's weights and metrics */
START_TEST(kill_9_of_a_rank_then_resume)
{
    char cfg[512], a[512], b[512], log[512], probe[600];
    path_in(cfg, sizeof cfg, "a.ini");
    path_in(log, sizeof log, "kill.txt");
    path_in(a, sizeof a, "K_straight"), path_in(b, sizeof b, "K_killed");
    const char *heavier[] = {"--config", cfg, "--threads", "1", "--set", "model.embed_dim=64", "--set", "model.depth=4",
                             "--set", "model.num_heads=4", "--set", "train.max_steps=60", "--set", "checkpoint.every_steps=10",
                             "--set", "train.eval_every_steps=30", "--set", "data.workers=0", "--out", NULL, NULL};
    heavier[sizeof heavier / sizeof *heavier - 2] = a;
    ck_assert_msg(train(2, heavier, log) == 0, "%s", tail(read_log(log)));
    heavier[sizeof heavier / sizeof *heavier - 2] = b;
    const char *argv[48];
    char mpirun_n[] = "2";
    join_args(argv, 48,
              (const char *[]){getenv("VIT_MPIRUN"), "-n", mpirun_n, "--oversubscribe", "--bind-to", "none",
                               getenv("VIT_TRAIN_BIN"), NULL},
              heavier);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "a", stdout);
        freopen(log, "a", stderr);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    snprintf(probe, sizeof probe, "%s/ckpt-000000010.h5", b);
    struct stat st;
    for (int i = 0; i < 6000 && stat(probe, &st) != 0; i++) usleep(2000);
    pid_t ranks[4];
    int n = rank_pids(pid, ranks, 4);
    ck_assert_msg(n == 2, "found %d ranks of mpirun %d", n, (int)pid);
    kill(ranks[1], SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "mpirun ended with status %d (the run finished first?)",
                  status);
    const char *resume[] = {"--resume", "auto", NULL};
    const char *args2[48];
    join_args(args2, 48, heavier, resume);
    ck_assert_msg(train(2, args2, log) == 0, "%s", tail(read_log(log)));
    char *ma = metrics_without_speed(a), *mb = metrics_without_speed(b);
    ck_assert_msg(strcmp(ma, mb) == 0, "metrics differ:\n%s\n---\n%s", ma, mb);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/ckpt-000000060.h5", a);
    snprintf(pb, sizeof pb, "%s/ckpt-000000060.h5", b);
    assert_same_weights(pa, pb);
    free(ma);
    free(mb);
}
END_TEST

/* vit-bench --config a.ini under mpirun -n 2 with `replicas` replicas a rank: its output into log, read back
 * (read_log's buffer) */
static char *bench_ranks(int replicas, const char *batch, const char *log, int *status)
{
    const char *bin = getenv("VIT_BENCH_BIN");
    ck_assert_ptr_nonnull(bin);
    char cfg[512], rep[16];
    path_in(cfg, sizeof cfg, "a.ini");
    snprintf(rep, sizeof rep, "%d", replicas);
    const char *argv[] = {"-n", "2", "--oversubscribe", "--bind-to", "none", bin, "--config", cfg, "--steps", "3",
                          "--threads", "1", "--replicas", rep, "--batch", batch, NULL};
    remove(log);
    *status = run_tool("VIT_MPIRUN", argv, log);
    return read_log(log);
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++) n++;
    return n;
}

/* the parameters of the test config's model, counted by building it here */
static long long config_params(void)
{
    char cfg[512];
    path_in(cfg, sizeof cfg, "a.ini");
    vt_config c;
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_load(&c, cfg), VT_OK);
    vt_vit_config mc;
    vt_vit_config_defaults(&mc);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    if (mc.num_classes < 2) mc.num_classes = 10;   /* as vit-bench does without a dataset */
    vt_vit m;
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    const long long n = m.params.numel;
    vt_vit_free(&m);
    return n;
}

/* every rank's "rank q: compute ..." line: positive times, exposed within the time in flight, the hidden
 * share 1 - exposed / in flight in [0, 1] and within the steps' range; returns rank 0's hidden share */
static double check_rank_lines(const char *text)
{
    double hidden0 = -1;
    for (int q = 0; q < 2; q++) {
        char key[32];
        snprintf(key, sizeof key, "  rank %d: compute ", q);
        const char *p = strstr(text, key);
        ck_assert_msg(p != NULL, "no line of rank %d:\n%s", q, tail(text));
        int r;
        double comp, comm, exp, hid, lo, hi;
        ck_assert_int_eq(sscanf(p, "  rank %d: compute %lf ms, communication %lf ms, exposed %lf ms, hidden %lf (steps %lf to %lf)",
                                &r, &comp, &comm, &exp, &hid, &lo, &hi), 7);
        ck_assert_msg(comp > 0 && comm > 0 && exp >= 0 && exp <= comm + 0.005, "rank %d: %.80s", q, p);
        ck_assert_msg(hid >= 0 && hid <= 1 && lo >= 0 && lo <= hid + 0.0005 && hid <= hi + 0.0005 && hi <= 1,
                      "rank %d: %.120s", q, p);
        /* the times are printed to 0.0005 ms: the share from them is that exact */
        ck_assert_msg(fabs(hid - (1 - exp / comm)) < 0.001 + 0.0011 * (1 + exp / comm) / comm, "rank %d: the share is not 1 - exposed / in flight: %.120s", q, p);
        if (q == 0) hidden0 = hid;
    }
    return hidden0;
}

START_TEST(bench_under_mpirun)
{
    char log[512], want[128];
    path_in(log, sizeof log, "bench.txt");
    int status;
    char *text = bench_ranks(1, "16", log, &status);
    ck_assert_msg(status == 0, "%s", tail(text));
    ck_assert_msg(count_of(text, "images/s: ") == 1 && count_of(text, "\nmodel ") + (strncmp(text, "model ", 6) == 0) == 1,
                  "not rank 0 alone printing:\n%s", tail(text));
    ck_assert_msg(strstr(text, "data parallel: 2 ranks on 1 host, 1 thread and 1 replica per rank, batch 16 in 2 parts"),
                  "%s", tail(text));
    const long long n = config_params();
    snprintf(want, sizeof want, "gradient sum: %lld floats = %lld bytes reduced per step, in 1 bucket (started while backward runs)",
             n, 4 * n);
    ck_assert_msg(strstr(text, want), "no '%s':\n%s", want, tail(text));
    check_rank_lines(text);
    /* two replicas a rank add their gradients after backward: the sum starts then, nothing is hidden */
    text = bench_ranks(2, "16", log, &status);
    ck_assert_msg(status == 0, "%s", tail(text));
    ck_assert_msg(strstr(text, "1 thread and 2 replicas per rank, batch 16 in 4 parts"), "%s", tail(text));
    ck_assert_msg(strstr(text, "(started after the replicas' backward)"), "%s", tail(text));
    ck_assert_msg(check_rank_lines(text) == 0, "%s", tail(text));
    /* a batch smaller than the parts is refused */
    text = bench_ranks(2, "3", log, &status);
    ck_assert_msg(status != 0 && strstr(text, "vit-bench: 2 ranks x 2 replicas are more than the batch of 3 images"),
                  "%s", tail(text));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train_mpi");
    TCase *tc = tcase_create("ranks");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, layouts_agree_bitwise);
    tcase_add_test(tc, resume_on_another_rank_count);
    tcase_add_test(tc, bad_sample_on_rank_1);
    tcase_add_test(tc, configs_differing_between_ranks_refused);
    tcase_add_test(tc, kill_9_of_a_rank_then_resume);
    tcase_add_test(tc, bench_under_mpirun);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
