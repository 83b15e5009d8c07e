/* test_train.c - vit-train end to end on a small dataset the test writes: training, exact resume
 * (after --stop-after and after kill -9), metrics without duplicates, fine-tuning at a higher
 * resolution from a checkpoint, refusal of bad checkpoints and bad command lines; the image-folder case
 * is test_train_folder.c. */
#include "testutil.h"
#include "data_fixtures.h"
#include "train_fixtures.h"
#include "train/train.h"
#include <dirent.h>
#include <fcntl.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* every tensor of group (e.g. "/ema") bitwise the same in two checkpoints */
static void assert_same_group(const char *a, const char *b, const char *group)
{
    vt_h5id fa = vt_h5_open(a, false), fb = vt_h5_open(b, false);
    ck_assert_msg(fa >= 0 && fb >= 0, "%s", vt_errmsg());
    char **names;
    int n;
    ck_assert_msg(vt_h5_list(fa, group, &names, &n) == VT_OK, "%s: %s", a, vt_errmsg());
    ck_assert_int_gt(n, 10);
    for (int i = 0; i < n; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", group, names[i]);
        float *x, *y;
        int nd;
        int64_t sh[8], cnt = 1;
        ck_assert_int_eq(vt_h5_read_f32(fa, p, &x, &nd, sh), VT_OK);
        ck_assert_int_eq(vt_h5_read_f32(fb, p, &y, &nd, sh), VT_OK);
        for (int k = 0; k < nd; k++) cnt *= sh[k];
        ck_assert_msg(memcmp(x, y, sizeof(float) * (size_t)cnt) == 0, "%s differs between %s and %s", p, a, b);
        free(x);
        free(y);
    }
    vt_h5_free_names(names, n);
    vt_h5_close(fa);
    vt_h5_close(fb);
}

START_TEST(resume_is_exact)
{
    char cfg[512], outA[512], outB[512], outC[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(outA, sizeof outA, "%s/A", dir);
    snprintf(outB, sizeof outB, "%s/B", dir);
    snprintf(outC, sizeof outC, "%s/C", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    /* 320 images / 16 = 20 steps per epoch, 3 epochs = 60 steps */
    /* A straight; B: stop after 25 steps (mid-epoch, between checkpoints), resume, finish */
    assert_stop_resume_exact(cfg, outA, outB, log, NULL);
    char *ma = metrics_without_speed(outA);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/ckpt-000000060.h5", outA);
    /* C: kill -9 somewhere in the run, then resume auto until done */
    pid_t pid = fork();
    if (pid == 0) {
        const char *bin = getenv("VIT_TRAIN_BIN");
        freopen(log, "a", stdout);
        execl(bin, bin, "--config", cfg, "--out", outC, (char *)NULL);
        _exit(127);
    }
    char probe[600];
    snprintf(probe, sizeof probe, "%s/ckpt-000000033.h5", outC);
    struct stat st;
    for (int i = 0; i < 4000 && stat(probe, &st) != 0; i++) usleep(5000);
    usleep(20000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outC, "--resume", "auto", NULL}, log), 0);
    char *mc = metrics_without_speed(outC);
    ck_assert_msg(strcmp(ma, mc) == 0, "metrics differ after kill -9:\n%s\n---\n%s", ma, mc);
    snprintf(b, sizeof b, "%s/ckpt-000000060.h5", outC);
    assert_same_weights(a, b);
    /* D: SIGTERM finishes the step, writes a checkpoint and exits 130; resuming ends identically */
    char outD[512];
    snprintf(outD, sizeof outD, "%s/D", dir);
    pid = fork();
    if (pid == 0) {
        const char *bin = getenv("VIT_TRAIN_BIN");
        freopen(log, "a", stdout);
        execl(bin, bin, "--config", cfg, "--out", outD, (char *)NULL);
        _exit(127);
    }
    snprintf(probe, sizeof probe, "%s/ckpt-000000012.h5", outD);
    for (int i = 0; i < 4000 && stat(probe, &st) != 0; i++) usleep(5000);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && (WEXITSTATUS(status) == 130 || WEXITSTATUS(status) == 0), "status %d", status);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outD, "--resume", "auto", NULL}, log), 0);
    char *md = metrics_without_speed(outD);
    ck_assert_msg(strcmp(ma, md) == 0, "metrics differ after SIGTERM:\n%s\n---\n%s", ma, md);
    snprintf(b, sizeof b, "%s/ckpt-000000060.h5", outD);
    assert_same_weights(a, b);
    free(md);
    free(ma);
    free(mc);
}
END_TEST

/* keep_last 2 and the best: a resumed run still keeps the best checkpoint written before the stop */
START_TEST(best_checkpoint_survives_resume)
{
    char cfg[512], out[512], log[512], best[600], path[600];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(out, sizeof out, "%s/K", dir);
    snprintf(log, sizeof log, "%s/log-keep.txt", dir);
    /* checkpoints every 3 steps, evaluations every 20: step 20 is the best; stop after 21 */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--stop-after", "21", NULL}, log), 130);
    snprintf(best, sizeof best, "%s/ckpt-000000020.h5", out);
    struct stat st;
    ck_assert_msg(stat(best, &st) == 0, "%s missing before the resume", best);
    /* resume to step 24: its checkpoint pushes 20 out of the last two, but 20 is still the best */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", "--stop-after", "3", NULL}, log), 130);
    snprintf(path, sizeof path, "%s/ckpt-000000024.h5", out);
    ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
    ck_assert_msg(stat(best, &st) == 0, "the best checkpoint %s was pruned after the resume", best);
    snprintf(path, sizeof path, "%s/ckpt-000000018.h5", out);
    ck_assert_msg(stat(path, &st) != 0, "%s kept (keep_last 2)", path);
}
END_TEST

/* [train] replicas = 2 (each batch of 16 cut in two halves on two threads): a stopped and resumed run
 * ends bitwise like a straight one, and the banner says so */
START_TEST(replicas_resume_is_exact)
{
    char cfg[512], outA[512], outB[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(outA, sizeof outA, "%s/RA", dir);
    snprintf(outB, sizeof outB, "%s/RB", dir);
    snprintf(log, sizeof log, "%s/log-replicas.txt", dir);
    /* with patch dropout: its kept tokens are a function of (seed, step, image), so resuming is exact too; and
     * evaluation keeps every token (vit-eval below runs a.ini, without dropout) */
    assert_stop_resume_exact(cfg, outA, outB, log,
                             (const char *[]){"--set", "train.replicas=2", "--set", "model.patch_drop_rate=0.25",
                                              "--threads", "2", NULL});
    const char *text = read_log(log);
    ck_assert_msg(strstr(text, "(2 data-parallel replicas)"), "banner without the replicas:\n%s", text);
    /* evaluation splits each batch over the replicas too: the trainer's last eval line, vit-eval with
     * the checkpoint's config (2 replicas) and with a.ini (1 replica) agree */
    const char *last = text, *p;
    while ((p = strstr(last + 1, "eval after step 60:"))) last = p;
    ck_assert_msg(strstr(last, "eval after step 60:"), "no eval at step 60:\n%s", text);
    double tl, t1, t5;
    ck_assert_int_eq(sscanf(last, "eval after step 60: loss %lf top-1 %lf%% top-5 %lf%%", &tl, &t1, &t5), 3);
    char ck[600], elog[600];
    snprintf(ck, sizeof ck, "%s/ckpt-000000060.h5", outA);
    for (int k = 0; k < 2; k++) {
        snprintf(elog, sizeof elog, "%s/eval%d.txt", dir, k);
        const char *a2[] = {"--checkpoint", ck, "--threads", "2", NULL}, *a1[] = {"--checkpoint", ck, "--config", cfg, NULL};
        ck_assert_int_eq(run_tool("VIT_EVAL_BIN", k ? a1 : a2, elog), 0);
        const char *e = read_log(elog), *q = strstr(e, "images): loss ");
        double el, e1, e5;
        ck_assert_msg(q && sscanf(q, "images): loss %lf top-1 %lf%% top-5 %lf%%", &el, &e1, &e5) == 3, "%s", e);
        ck_assert_msg(fabs(el - tl) < 1e-3 && e1 == t1 && e5 == t5, "vit-eval (%s): %s\ntrainer: %.4f %.2f %.2f",
                      k ? "1 replica" : "2 replicas", e, tl, t1, t5);
    }
    /* more replicas than images in a batch is refused */
    snprintf(outB, sizeof outB, "%s/R17", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outB, "--set", "train.replicas=17", NULL}, log), 1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "replicas = 17 is more than [data] batch_size = 16"), "%s", text);
}
END_TEST

/* the EMA of runs A and B (one straight, one resumed): bitwise the same, not the weights; metrics.csv has its
 * columns; vit-eval --ema gives the trainer's last EMA evaluation; vit-export --ema writes it; a run without an
 * EMA is refused by --ema naming the key */
static void recipe_ema_checks(const char *cfg, const char *outA, const char *outB, const char *log)
{
    char a[600], b[600], elog[600], out[700];
    snprintf(a, sizeof a, "%s/ckpt-000000060.h5", outA);
    snprintf(b, sizeof b, "%s/ckpt-000000060.h5", outB);
    assert_same_group(a, b, "/ema");
    vt_h5id f = vt_h5_open(a, false);
    float *w, *e;
    ck_assert_int_eq(vt_h5_read_f32(f, "/model/head.weight", &w, NULL, NULL), VT_OK);
    ck_assert_int_eq(vt_h5_read_f32(f, "/ema/head.weight", &e, NULL, NULL), VT_OK);
    ck_assert_msg(memcmp(w, e, 16 * sizeof(float)) != 0, "the EMA is the weights");
    free(w);
    free(e);
    vt_h5_close(f);
    char *m = metrics_without_speed(outA);
    ck_assert_msg(strstr(m, ",eval_top5,ema_eval_loss,ema_eval_top1,ema_eval_top5\n"), "%.300s", m);
    free(m);
    const char *text = read_log(log), *last = text, *p;
    while ((p = strstr(last + 1, "eval of the EMA after step 60:"))) last = p;
    double tl, t1, t5, el, e1, e5;
    ck_assert_msg(sscanf(last, "eval of the EMA after step 60: loss %lf top-1 %lf%% top-5 %lf%%", &tl, &t1, &t5) == 3,
                  "%s", tail(text));
    snprintf(elog, sizeof elog, "%s/eval-ema.txt", outA);
    ck_assert_int_eq(run_tool("VIT_EVAL_BIN", (const char *[]){"--checkpoint", a, "--ema", NULL}, elog), 0);
    const char *q = strstr(read_log(elog), "images): loss ");
    ck_assert_msg(q && sscanf(q, "images): loss %lf top-1 %lf%% top-5 %lf%%", &el, &e1, &e5) == 3, "%s", read_log(elog));
    ck_assert_msg(strstr(read_log(elog), " (EMA) on ") && fabs(el - tl) < 1e-3 && e1 == t1 && e5 == t5,
                  "vit-eval --ema: %s\ntrainer: %.4f %.2f %.2f", read_log(elog), tl, t1, t5);
    snprintf(out, sizeof out, "%s/ema.safetensors", outA);
    ck_assert_int_eq(run_tool("VIT_EXPORT_BIN", (const char *[]){a, out, "--ema", NULL}, elog), 0);
    ck_assert_msg(strstr(read_log(elog), " (EMA) -> "), "%s", read_log(elog));
    /* a checkpoint without an EMA */
    snprintf(out, sizeof out, "%s/noema", outA);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "train.max_steps=5", NULL}, log), 0);
    snprintf(a, sizeof a, "%.580s/ckpt-000000005.h5", out);
    ck_assert_int_eq(run_tool("VIT_EVAL_BIN", (const char *[]){"--checkpoint", a, "--ema", NULL}, elog), 1);
    ck_assert_msg(strstr(read_log(elog), "no EMA weights (/ema): the run had [train] ema_decay = 0"), "%s", read_log(elog));
}

/* the DeiT / timm recipe's switches together (mixup, cutmix, RandAugment, repeated augmentation: 320 images
 * make epochs of 256, 8 steps of 2 x 16, and the EMA with its warmup), with gradient accumulation, clipping and
 * 2 replicas: a stopped and resumed run ends bitwise like a straight one; a bad
 * RandAugment string is refused naming the key */
START_TEST(recipe_resume_is_exact)
{
    char cfg[512], outA[512], outB[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(outA, sizeof outA, "%s/DA", dir);
    snprintf(outB, sizeof outB, "%s/DB", dir);
    snprintf(log, sizeof log, "%s/log-recipe.txt", dir);
    assert_stop_resume_exact(cfg, outA, outB, log,
                             (const char *[]){"--set", "data.mixup_alpha=0.8", "--set", "data.cutmix_alpha=1.0",
                                              "--set", "data.mix_prob=0.8", "--set", "data.randaugment=m9-n2-mstd0.5", "--set", "train.ema_decay=0.9", "--set",
                                              "train.ema_warmup=true", "--set", "optim.accum_steps=2", "--set",
                                              "data.repeats=3", "--set", "train.max_steps=60", "--set",
                                              "train.replicas=2", "--threads", "2", NULL});
    const char *text = read_log(log);
    ck_assert_msg(strstr(text, "recipe: mixup 0.8 cutmix 1 (prob 0.8, switch 0.5, smoothing 0.1 in the targets) | "
                               "randaugment m9-n2-mstd0.5 | repeated augmentation x3 (256 samples an epoch) | ema 0.9 with warmup "
                               "(ModelEmaV3)"),
                  "banner without the recipe:\n%s", tail(text));
    recipe_ema_checks(cfg, outA, outB, log);
    /* the repeats are part of the data order: a resume with another count is refused (a log of its own: read_log
     * reads the first 64 KB) */
    char own[600];
    snprintf(log, sizeof log, "%s/log-recipe-refused.txt", dir);
    snprintf(own, sizeof own, "%s/config.ini", outB);
    ck_assert_int_eq(run((const char *[]){"--config", own, "--resume", "auto", "--set", "data.repeats=2", "--set",
                                          "train.max_steps=70", NULL}, log), 1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "trained with [data] repeats = 3, the config says 2"), "%s", tail(text));
    snprintf(outB, sizeof outB, "%s/DC", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outB, "--set", "data.randaugment=m9-q2", NULL}, log), 1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "[data] randaugment 'm9-q2': 'q2' is not one of"), "%s", tail(text));
}
END_TEST

START_TEST(finetune_at_higher_resolution)
{
    char cfg[512], ft[512], out[512], outF[512], log[512], ck[600];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(out, sizeof out, "%s/P", dir);
    snprintf(outF, sizeof outF, "%s/F", dir);
    snprintf(log, sizeof log, "%s/ft.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "train.epochs=10", NULL}, log), 0);
    snprintf(ck, sizeof ck, "%s/ckpt-000000200.h5", out);
    /* the pretraining learned the task: top-1 far above chance (25%) */
    FILE *lf = fopen(log, "r");
    char line[512], last[512] = "";
    while (fgets(line, sizeof line, lf))
        if (strstr(line, "final test accuracy")) snprintf(last, sizeof last, "%s", line);
    fclose(lf);
    double top1 = 0;
    const char *at = strstr(last, "top-1");
    ck_assert_msg(at && sscanf(at, "top-1 %lf", &top1) == 1, "%s", last);
    ck_assert_msg(top1 > 60.0, "pretraining reached only %.2f%% top-1", top1);
    /* a new task at 12x12 (grid 2x2 -> 3x3), 4 classes -> head kept; then 6 classes -> new head */
    char data2[512];
    snprintf(data2, sizeof data2, "%s/data12", dir);
    mkdir(data2, 0777);
    write_idx(data2, "train", 160, 12, false, 3, 6);
    write_idx(data2, "t10k", 64, 12, false, 4, 6);
    snprintf(ft, sizeof ft, "%s/ft.ini", dir);
    write_config(ft, 12, "[finetune]\npos_interp = bicubic\n");
    /* pretraining data has 4 classes, the new task 6 (labels 0..5) */
    char setpath[600];
    snprintf(setpath, sizeof setpath, "data.path=%s", data2);
    ck_assert_int_eq(run((const char *[]){"--config", ft, "--out", outF, "--init", ck, "--set", setpath, "--set",
                                          "train.epochs=1", "--set", "model.num_classes=6", NULL},
                         log),
                     0);
    const char *text = read_log(log);
    ck_assert_msg(strstr(text, "pos_embed: 2x2 -> 3x3 (bicubic)") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "head: 4 -> 6 classes") != NULL, "%s", text);
    ck_assert(strstr(text, "final test accuracy") != NULL);
    /* a fine-tuning config names its weights ([finetune] init): --resume auto starts from them while the
     * folder has no checkpoint, and continues from the checkpoint once there is one */
    char setinit[700], outR[600];
    snprintf(setinit, sizeof setinit, "finetune.init=%s", ck);
    snprintf(outR, sizeof outR, "%s/FR", dir);
    const char *ftr[] = {"--config", ft, "--out", outR, "--resume", "auto", "--set", setinit, "--set", setpath, "--set",
                         "train.epochs=1", "--set", "model.num_classes=6", "--stop-after", "4", NULL};
    ck_assert_int_eq(run(ftr, log), 130);
    text = read_log(log);
    ck_assert_msg(strstr(text, "no checkpoint in") && strstr(text, "head: 4 -> 6 classes"), "%s", text);
    ck_assert_int_eq(run(ftr, log), 130);
    text = read_log(log);
    ck_assert_msg(strstr(text, "resumed from") && strstr(text, "not loaded: the run continues from its checkpoint"), "%s",
                  text);
    /* --init and --resume together are refused */
    ck_assert_int_eq(run((const char *[]){"--config", ft, "--out", outF, "--init", ck, "--resume", "auto", NULL}, log), 1);
    /* a new run never writes into a folder that holds one: nothing there changes */
    char before[600], after[600];
    snprintf(before, sizeof before, "%s/ckpt-000000010.h5", outF);
    struct stat sb, sa;
    ck_assert_int_eq(stat(before, &sb), 0);
    char *metrics_before = metrics_without_speed(outF);
    ck_assert_int_eq(run((const char *[]){"--config", ft, "--out", outF, "--init", ck, "--set", setpath, "--set",
                                          "train.epochs=1", "--set", "model.num_classes=6", NULL},
                         log),
                     1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "already holds a run (config.ini, metrics.csv, ") && strstr(text, "--resume auto"), "%s",
                  text);
    ck_assert_int_eq(stat(before, &sa), 0);
    ck_assert(sa.st_mtime == sb.st_mtime && sa.st_size == sb.st_size);
    char *metrics_after = metrics_without_speed(outF);
    ck_assert_str_eq(metrics_before, metrics_after);
    free(metrics_before);
    free(metrics_after);
    /* another architecture is refused naming the setting, also where every shape would fit */
    snprintf(outF, sizeof outF, "%s/F2", dir);
    const char *other[][2] = {{"model.embed_dim=32", "[model] embed_dim = 16, the config 32"},
                              {"model.num_heads=4", "[model] num_heads = 2, the config 4"},
                              {"model.gelu=tanh", "[model] gelu = erf, the config tanh"},
                              {"model.layer_norm_eps=1e-5", "[model] layer_norm_eps = 1e-06, the config 1e-05"}};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(run((const char *[]){"--config", ft, "--out", outF, "--init", ck, "--set", setpath, "--set",
                                              other[k][0], NULL},
                             log),
                         1);
        text = read_log(log);
        ck_assert_msg(strstr(text, other[k][1]) && strstr(text, "to start from its weights"), "%s", text);
    }
    (void)after;
}
END_TEST

/* vit-eval --reconstruct 3 of a pixel objective's checkpoint: three PNGs of the 8x8 test images, three panels
 * each (original, masked input, reconstruction); the original is the test image itself (its bytes through the
 * normalisation and back) and the reconstruction keeps it on the patches not predicted */
static void check_reconstruct_pngs(const char *ck, const char *objective)
{
    char out[600], log[600], path[700], idx[600];
    snprintf(out, sizeof out, "%s/rec-%s", dir, objective);
    snprintf(log, sizeof log, "%s/rec-%s.txt", dir, objective);
    ck_assert_int_eq(run_tool("VIT_EVAL_BIN", (const char *[]){"--checkpoint", ck, "--reconstruct", "3", "--out", out, NULL}, log), 0);
    snprintf(idx, sizeof idx, "%s/data/t10k-images-idx3-ubyte", dir);
    FILE *f = fopen(idx, "rb");
    uint8_t raw[16 + 3 * 64];
    ck_assert(f && fread(raw, 1, sizeof raw, f) == sizeof raw);
    fclose(f);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/reconstruct-%04d.png", out, i);
        png_image im;
        memset(&im, 0, sizeof im);
        im.version = PNG_IMAGE_VERSION;
        ck_assert_msg(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
        im.format = PNG_FORMAT_GRAY;
        ck_assert_int_eq(im.width, 3 * 8 + 4);
        ck_assert_int_eq(im.height, 8);
        uint8_t px[8 * 28];
        ck_assert(png_image_finish_read(&im, NULL, px, 0, NULL));
        int same = 0;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                ck_assert_msg(abs(px[y * 28 + x] - raw[16 + i * 64 + y * 8 + x]) <= 1, "%s: original differs at %d,%d", path, y, x);
                same += px[y * 28 + 20 + x] == px[y * 28 + x];
            }
        ck_assert_msg(same >= 16 && same < 64, "%s: %d of 64 reconstructed pixels are the original's", path, same);
    }
}

/* each self-supervised objective trains without labels, stops and resumes bitwise exactly (its masks are functions
 * of the seed, the step and the image), and its checkpoint fine-tunes: the encoder taken, the objective's own
 * tensors dropped (the banner names them), a new classification head; resuming it as a classifier is refused */
START_TEST(pretraining_resumes_exactly_and_fine_tunes)
{
    const char *objectives[3][2] = {{"masked_patch_color", "mask_token, mpp_head.* (3 tensors)"},
                                    {"masked_patch_pixels", "mask_token, mpp_head.* (3 tensors)"},
                                    {"mae", "decoder_embed.*, mask_token, decoder_pos_embed, decoder_blocks.*, decoder_norm.*, "
                                            "decoder_pred.* (20 tensors)"}};
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    for (int k = 0; k < 3; k++) {
        char outA[512], outB[512], outF[512], log[512], obj[96], ck[600];
        snprintf(outA, sizeof outA, "%s/S%dA", dir, k);
        snprintf(outB, sizeof outB, "%s/S%dB", dir, k);
        snprintf(outF, sizeof outF, "%s/S%dF", dir, k);
        snprintf(log, sizeof log, "%s/log-ssl%d.txt", dir, k);
        snprintf(obj, sizeof obj, "pretrain.objective=%s", objectives[k][0]);
        assert_stop_resume_exact(cfg, outA, outB, log,
                                 (const char *[]){"--set", obj, "--set", "pretrain.decoder_dim=8", "--set",
                                                  "pretrain.decoder_depth=1", "--set", "pretrain.decoder_heads=2",
                                                  "--set", "pretrain.target_size=2", NULL});
        const char *text = read_log(log);
        ck_assert_msg(strstr(text, "final test masked"), "%s", tail(text));
        snprintf(ck, sizeof ck, "%s/ckpt-000000060.h5", outA);
        if (k > 0) check_reconstruct_pngs(ck, objectives[k][0]);
        snprintf(log, sizeof log, "%s/log-ssl%d-ft.txt", dir, k);
        ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outF, "--init", ck, "--set", "train.epochs=1", NULL},
                             log),
                         0);
        text = read_log(log);
        char want[300];
        snprintf(want, sizeof want, "pretraining objective %s: encoder taken; dropped %s", objectives[k][0],
                 objectives[k][1]);
        ck_assert_msg(strstr(text, want) && strstr(text, "head: new, 4 classes (initialised: zeros)") &&
                          strstr(text, "final test accuracy"),
                      "%s\n(expected: %s)", tail(text), want);
        /* the pretraining run is not continued as a classifier */
        snprintf(log, sizeof log, "%s/log-ssl%d-r.txt", dir, k);
        ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", outA, "--resume", ck, "--set", "train.epochs=4", NULL},
                             log),
                         1);
        text = read_log(log);
        snprintf(want, sizeof want, "is trained for %s, the config for classification (set [pretrain] objective = %s",
                 objectives[k][0], objectives[k][0]);
        ck_assert_msg(strstr(text, want), "%s", tail(text));
    }
}
END_TEST

/* batch 16 in one step equals 2 accumulated micro-batches of 8: the same samples (batch k of 16 is
 * micro-batches 2k and 2k+1 of 8), the same augmentation, the mean of the two gradients */
START_TEST(accumulation_matches_a_big_batch)
{
    char cfg[512], o1[512], o2[512], log[512], a[600], b[600];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(o1, sizeof o1, "%s/big", dir);
    snprintf(o2, sizeof o2, "%s/acc", dir);
    snprintf(log, sizeof log, "%s/acc.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", o1, "--set", "train.max_steps=8", NULL}, log), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", o2, "--set", "train.max_steps=8", "--set",
                                          "data.batch_size=8", "--set", "optim.accum_steps=2", NULL},
                         log),
                     0);
    snprintf(a, sizeof a, "%s/ckpt-000000008.h5", o1);
    snprintf(b, sizeof b, "%s/ckpt-000000008.h5", o2);
    vt_h5id fa = vt_h5_open(a, false), fb = vt_h5_open(b, false);
    ck_assert(fa >= 0 && fb >= 0);
    float *x, *y;
    int64_t sh[8];
    int nd;
    ck_assert_int_eq(vt_h5_read_f32(fa, "/model/blocks.1.mlp.fc1.weight", &x, &nd, sh), VT_OK);
    ck_assert_int_eq(vt_h5_read_f32(fb, "/model/blocks.1.mlp.fc1.weight", &y, &nd, sh), VT_OK);
    double d = tu_maxdiff(x, y, sh[0] * sh[1]), m = tu_maxabs(x, sh[0] * sh[1]);
    ck_assert_msg(d <= 1e-4 * m, "accumulated run differs by %g (max %g)", d, m);
    free(x);
    free(y);
    vt_h5_close(fa);
    vt_h5_close(fb);
}
END_TEST

/* what a run folder holds belongs to one run: resuming from an older checkpoint than the folder's newest,
 * into another run's folder, with another batch size, or while another trainer writes there, is refused
 * before anything is written; a run's own config.ini resumes that run */
START_TEST(run_folder_rules)
{
    char cfg[512], r1[512], r2[512], r3[512], log[512], c6[600], c9[600];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(r1, sizeof r1, "%s/W1", dir);
    snprintf(r2, sizeof r2, "%s/W2", dir);
    snprintf(r3, sizeof r3, "%s/W3", dir);
    snprintf(log, sizeof log, "%s/folder.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--set", "train.max_steps=9", NULL}, log), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r2, "--set", "train.max_steps=6", NULL}, log), 0);
    snprintf(c6, sizeof c6, "%s/ckpt-000000006.h5", r1);
    snprintf(c9, sizeof c9, "%s/ckpt-000000009.h5", r1);
    char *m1 = metrics_without_speed(r1), *m2 = metrics_without_speed(r2);
    struct stat s9;
    ck_assert_int_eq(stat(c9, &s9), 0);
    /* an older checkpoint while the folder holds a later one */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--resume", c6, "--set", "train.max_steps=12",
                                          NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "holds later checkpoints of this run (ckpt-000000009.h5)"), "%s", tail(read_log(log)));
    /* into another run's folder */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r2, "--resume", c9, "--set", "train.max_steps=12",
                                          NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "names another run's folder"), "%s", tail(read_log(log)));
    /* another batch size: the data order would not be the run's */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--resume", "auto", "--set", "data.batch_size=8",
                                          "--set", "train.max_steps=12", NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "trained with [data] batch_size = 16, the config says 8"), "%s", tail(read_log(log)));
    /* while another trainer holds the folder */
    char lockp[600];
    snprintf(lockp, sizeof lockp, "%s/.vit-train.lock", r1);
    int fd = open(lockp, O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--resume", "auto", NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "another vit-train"), "%s", tail(read_log(log)));
    close(fd);
    /* none of that changed either folder */
    char *a1 = metrics_without_speed(r1), *a2 = metrics_without_speed(r2);
    ck_assert_str_eq(m1, a1);
    ck_assert_str_eq(m2, a2);
    struct stat t9;
    ck_assert_int_eq(stat(c9, &t9), 0);
    ck_assert(t9.st_mtime == s9.st_mtime && t9.st_size == s9.st_size);
    ck_assert_int_eq(access(c6, F_OK), 0);
    free(a1), free(a2), free(m1), free(m2);
    /* a newer checkpoint that cannot be read (truncated, or from a newer format): --resume auto stops
     * instead of going on from an older one, which would overwrite or prune it */
    char c99[600];
    snprintf(c99, sizeof c99, "%s/ckpt-000000099.h5", r1);
    FILE *tf = fopen(c99, "wb");
    fputs("not an HDF5 file", tf);
    fclose(tf);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--resume", "auto", "--set", "train.max_steps=12",
                                          NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "newer checkpoints that cannot be read") && strstr(read_log(log), "ckpt-000000099.h5"),
                  "%s", tail(read_log(log)));
    ck_assert_int_eq(access(c99, F_OK), 0);
    unlink(c99);
    /* a readable checkpoint under a later step's name (a copy) is not taken for that step */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", c6, c99);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r1, "--resume", "auto", "--set", "train.max_steps=12",
                                          NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "named step 99 but holds step 6"), "%s", tail(read_log(log)));
    unlink(c99);
    /* a diverging run: an evaluation of NaN logits is never scored as hits nor kept as the best checkpoint */
    char r6[512];
    snprintf(r6, sizeof r6, "%s/W6", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r6, "--set", "optim.lr=1000", "--set",
                                          "train.eval_every_steps=1", "--set", "optim.clip_grad_norm=0", NULL},
                         log),
                     1);
    const char *dl = tail(read_log(log));
    ck_assert_msg((strstr(dl, "evaluation loss is nan") || strstr(dl, "loss is nan")) && !strstr(dl, "loss nan") &&
                      !strstr(dl, "loss -nan"),
                  "%s", dl);
    /* keys a combination does not use are named, not silently ignored */
    snprintf(r6, sizeof r6, "%s/W10", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r6, "--dry-run", "--set", "data.val_fraction=0.1",
                                          "--set", "data.decode_size=64", NULL},
                         log),
                     0);
    ck_assert_msg(strstr(read_log(log), "warning: [data] val_fraction = 0.1 unused") &&
                      strstr(read_log(log), "warning: [data] decode_size = 64 unused"),
                  "%s", tail(read_log(log)));
    /* into an empty folder: fine */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r3, "--resume", c9, "--set", "train.max_steps=12",
                                          NULL},
                         log),
                     0);
    /* a checkpoint a killed trainer was writing is removed by the next one in the folder */
    char stale[600];
    snprintf(stale, sizeof stale, "%s/ckpt-000000010.h5.tmp", r1);
    tf = fopen(stale, "wb");
    fputs("partial", tf);
    fclose(tf);
    /* the run's own config.ini: that folder, no --out needed */
    char own[600];
    snprintf(own, sizeof own, "%s/config.ini", r1);
    ck_assert_int_eq(run((const char *[]){"--config", own, "--resume", "auto", "--set", "train.max_steps=12", NULL}, log),
                     0);
    ck_assert_msg(strstr(read_log(log), "resumed from ") && strstr(read_log(log), "W1/ckpt-000000009.h5 at step 9"),
                  "%s", tail(read_log(log)));
    ck_assert_int_ne(access(stale, F_OK), 0);
    /* the lock file is never opened through a link (it would truncate the file linked to) */
    char r4[512], victim[600], lk[600];
    snprintf(r4, sizeof r4, "%s/W4", dir);
    mkdir(r4, 0777);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    tf = fopen(victim, "w");
    fputs("important", tf);
    fclose(tf);
    snprintf(lk, sizeof lk, "%s/.vit-train.lock", r4);
    ck_assert_int_eq(symlink(victim, lk), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r4, "--set", "train.max_steps=6", NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), ".vit-train.lock: cannot create the lock file"), "%s", tail(read_log(log)));
    tf = fopen(victim, "r");
    char vb[32] = "";
    ck_assert_ptr_nonnull(fgets(vb, sizeof vb, tf));
    fclose(tf);
    ck_assert_str_eq(vb, "important");
    /* nor through a hard link */
    unlink(lk);
    ck_assert_int_eq(link(victim, lk), 0);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r4, "--set", "train.max_steps=6", NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "not a lock file of vit-train"), "%s", tail(read_log(log)));
    tf = fopen(victim, "r");
    ck_assert_ptr_nonnull(fgets(vb, sizeof vb, tf));
    fclose(tf);
    ck_assert_str_eq(vb, "important");
    /* a path longer than the config holds is refused, not cut short */
    char longp[400];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", r3, "--init", longp, NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "path too long"), "%s", tail(read_log(log)));
}
END_TEST

START_TEST(bad_checkpoints_and_commands)
{
    char cfg[512], out[512], log[512], ck[600], bad[600];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(out, sizeof out, "%s/Q", dir);
    snprintf(log, sizeof log, "%s/bad.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "train.max_steps=6", NULL}, log), 0);
    snprintf(ck, sizeof ck, "%s/ckpt-000000006.h5", out);
    /* truncated copy */
    snprintf(bad, sizeof bad, "%s/trunc.h5", dir);
    FILE *in = fopen(ck, "rb"), *o = fopen(bad, "wb");
    char buf[4096];
    size_t total = 0, k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0 && total < 6000) {
        fwrite(buf, 1, k, o);
        total += k;
    }
    fclose(in);
    fclose(o);
    vt_vit_config mc;
    ck_assert_int_eq(vt_ckpt_model_config(bad, &mc), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "trunc.h5") != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", bad, NULL}, log), 1);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", dir, NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "is a folder, expected an HDF5 file"), "%s", tail(read_log(log)));
    /* not a checkpoint at all */
    ck_assert_int_eq(vt_ckpt_model_config(tu_golden("vit_reference.h5"), &mc), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "not a vit checkpoint") != NULL);
    /* a truncated newest checkpoint is skipped by --resume auto (the older one is used) */
    char newest[600];
    snprintf(newest, sizeof newest, "%s/ckpt-000000999.h5", out);
    rename(bad, newest);
    bool found;
    char p[600];
    char skipped[512];
    ck_assert_int_eq(vt_ckpt_find_latest(out, p, sizeof p, &found, skipped, sizeof skipped), VT_OK);
    ck_assert(found && strcmp(p, ck) == 0);
    ck_assert_msg(strstr(skipped, "ckpt-000000999.h5") != NULL, "%s", skipped);
    unlink(newest);
    /* resuming with another architecture is refused naming the setting, also where the shapes fit */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", "--set", "model.pool=avg",
                                          "--set", "train.max_steps=9", NULL},
                         log),
                     1);
    ck_assert_msg(strstr(read_log(log), "[model] pool = token, the config avg (set pool = token to continue that run)"),
                  "%s", tail(read_log(log)));
    /* a full disk while writing a checkpoint: refused with the reason, no partial file, the older ones kept */
    struct stat st0;
    ck_assert_int_eq(stat(ck, &st0), 0);
    child_fsize_limit = (rlim_t)st0.st_size / 2;
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", "--set",
                                          "train.max_steps=9", NULL},
                         log),
                     1);
    child_fsize_limit = 0;
    ck_assert_msg(strstr(read_log(log), "writing checkpoint") && strstr(read_log(log), "(File too large)"), "%s",
                  read_log(log));
    char ck9[600];
    snprintf(ck9, sizeof ck9, "%s/ckpt-000000009.h5", out);
    ck_assert_int_ne(access(ck9, F_OK), 0);
    snprintf(ck9, sizeof ck9, "%s/ckpt-000000009.h5.tmp", out);
    ck_assert_int_ne(access(ck9, F_OK), 0);
    ck_assert_int_eq(vt_ckpt_find_latest(out, p, sizeof p, &found, skipped, sizeof skipped), VT_OK);
    ck_assert(found && strcmp(p, ck) == 0 && skipped[0] == '\0');
    /* when no checkpoint is readable, --resume auto stops instead of starting afresh over the run */
    char *metrics_before = metrics_without_speed(out);
    int nck = 0;
    ck_assert_int_eq(vt_ckpt_count(out, &nck), VT_OK);
    ck_assert_int_ge(nck, 1);
    DIR *dd = opendir(out);
    struct dirent *de;
    while ((de = readdir(dd)))
        if (strncmp(de->d_name, "ckpt-", 5) == 0) {
            char cp[800];
            snprintf(cp, sizeof cp, "%s/%s", out, de->d_name);
            ck_assert_int_eq(truncate(cp, 100), 0);
        }
    closedir(dd);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "resume auto: no readable checkpoint in"), "%s", tail(read_log(log)));
    char *metrics_after = metrics_without_speed(out);
    ck_assert_str_eq(metrics_before, metrics_after);
    free(metrics_before);
    free(metrics_after);
    /* command line */
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--bogus", NULL}, log), 2);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--threads", "zero", NULL}, log), 2);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--threads", "100000", NULL}, log), 2);
    ck_assert_msg(strstr(read_log(log), "--threads 100000: expected an integer in [0, 1024]"), "%s", tail(read_log(log)));
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--config", cfg, NULL}, log), 2);
    ck_assert_msg(strstr(read_log(log), "--config given twice"), "%s", tail(read_log(log)));
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", "a", "--out", "b", NULL}, log), 2);
    ck_assert_msg(strstr(read_log(log), "--out given twice"), "%s", tail(read_log(log)));
    ck_assert_int_eq(run((const char *[]){"--config", "/nonexistent.ini", NULL}, log), 1);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--set", "model.dept=3", NULL}, log), 1);
    const char *text = read_log(log);
    ck_assert(strstr(text, "/nonexistent.ini") != NULL);
    ck_assert(strstr(text, "did you mean depth") != NULL);
}
END_TEST

/* a start that is refused (--init or --resume of a file that is no checkpoint, data that cannot be read)
 * leaves no folder it made and no lock file behind */
START_TEST(deit_model_resume_is_exact)
{
    char cfg[512], outA[512], outB[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(outA, sizeof outA, "%s/MA", dir);
    snprintf(outB, sizeof outB, "%s/MB", dir);
    snprintf(log, sizeof log, "%s/log-deit.txt", dir);
    assert_stop_resume_exact(cfg, outA, outB, log,
                             (const char *[]){"--set", "train.replicas=2", "--set", "model.drop_path_rate=0.3", "--set",
                                              "model.init_values=0.1", "--set", "model.reg_tokens=2", "--set",
                                              "model.no_embed_class=true", "--set", "data.mixup_alpha=0.8", "--set",
                                              "data.cutmix_alpha=1.0", "--set", "data.randaugment=m9-n2", "--set",
                                              "train.ema_decay=0.9", "--set", "optim.accum_steps=2", "--set",
                                              "train.epochs=6", "--threads", "2", NULL});
    const char *text = read_log(log);
    ck_assert_msg(strstr(text, "stochastic depth 0.3 (last block)") && strstr(text, "LayerScale (init 0.1)") &&
                      strstr(text, "2 register tokens") && strstr(text, "recipe: mixup 0.8 cutmix 1"),
                  "banner without stochastic depth and LayerScale:\n%s", text);
}
END_TEST

void add_train_folder_tests(TCase *tf);

int main(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, resume_is_exact);
    tcase_add_test(tc, replicas_resume_is_exact);
    tcase_add_test(tc, recipe_resume_is_exact);
    tcase_add_test(tc, deit_model_resume_is_exact);
    tcase_add_test(tc, best_checkpoint_survives_resume);
    tcase_add_test(tc, finetune_at_higher_resolution);
    tcase_add_test(tc, accumulation_matches_a_big_batch);
    tcase_add_test(tc, pretraining_resumes_exactly_and_fine_tunes);
    tcase_add_test(tc, bad_checkpoints_and_commands);
    tcase_add_test(tc, run_folder_rules);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("folder");   /* CK_RUN_CASE=folder runs it alone (a few seconds) */
    tcase_set_timeout(tf, 120);
    tcase_add_checked_fixture(tf, setup, teardown);
    add_train_folder_tests(tf);   /* test_train_folder.c */
    suite_add_tcase(s, tf);
    return tu_run(s);
}
