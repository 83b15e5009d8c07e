/* test_train_folder.c - the "folder" test case of test_train (CK_RUN_CASE=folder runs it alone): vit-train on
 * image folders (bad images by bad_images, a bad held-out image keeps the step's checkpoint, a folder without
 * classes pretrains and resumes exactly), a refused start leaves no folder behind, an unchecked checkpoint is
 * noted at resume. The same binary as test_train.c, which registers the case (add_train_folder_tests). */
#include "testutil.h"
#include "data_fixtures.h"
#include "train_fixtures.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(refused_start_leaves_nothing)
{
    char cfg[512], log[512], out[512], bad[512], p[700];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(log, sizeof log, "%s/refused.txt", dir);
    snprintf(bad, sizeof bad, "%s/not-a-checkpoint.h5", dir);
    FILE *f = fopen(bad, "w");
    fputs("not an HDF5 file", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/N1/deeper/run", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--init", bad, NULL}, log), 1);
    ck_assert_msg(strstr(read_log(log), "--init: ") && strstr(read_log(log), "not-a-checkpoint.h5"), "%s",
                  tail(read_log(log)));
    snprintf(p, sizeof p, "%s/N1", dir);
    ck_assert_msg(access(p, F_OK) != 0, "%s left behind", p);
    snprintf(out, sizeof out, "%s/N2", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", bad, NULL}, log), 1);
    ck_assert_msg(access(out, F_OK) != 0, "%s left behind", out);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "data.path=/nonexistent/data", NULL},
                         log),
                     1);
    ck_assert_msg(access(out, F_OK) != 0, "%s left behind", out);
    /* a folder that was there stays, without the lock file */
    mkdir(out, 0777);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", bad, NULL}, log), 1);
    snprintf(p, sizeof p, "%s/.vit-train.lock", out);
    ck_assert_int_eq(access(out, F_OK), 0);
    ck_assert_msg(access(p, F_OK) != 0, "%s left behind", p);
    /* and a start that is not refused still makes its folder */
    snprintf(out, sizeof out, "%s/N3/run", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "train.max_steps=6", NULL}, log), 0);
    snprintf(p, sizeof p, "%s/config.ini", out);
    ck_assert_int_eq(access(p, F_OK), 0);
}
END_TEST

/* a resume from a checkpoint written before the checksums says once that its tensors are unverified; one
 * from a checksummed checkpoint says nothing of the kind */
START_TEST(resume_unchecked_checkpoint_notes_it)
{
    char cfg[512], log[512], out[512], ck[700];
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(out, sizeof out, "%s/OLD", dir);
    snprintf(log, sizeof log, "%s/old1.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", "train.max_steps=6", NULL}, log), 0);
    snprintf(ck, sizeof ck, "%s/ckpt-000000006.h5", out);
    vt_vit_config mc;
    vt_vit m;
    ck_assert_int_eq(vt_ckpt_model_config(ck, &mc), VT_OK);
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    ck_assert_int_eq(vt_ckpt_load(ck, &m, NULL, NULL, NULL), VT_OK);
    snprintf(log, sizeof log, "%s/old2.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", "--set", "train.max_steps=9",
                                          NULL},
                         log),
                     0);
    ck_assert_msg(!strstr(read_log(log), "unverified"), "%s", tail(read_log(log)));
    char ck9[700];
    snprintf(ck9, sizeof ck9, "%s/ckpt-000000009.h5", out);
    ck_assert_int_eq(unlink(ck9), 0);
    fx_strip_checksums(ck, &m);
    vt_vit_free(&m);
    snprintf(log, sizeof log, "%s/old3.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--resume", "auto", "--set", "train.max_steps=9",
                                          NULL},
                         log),
                     0);
    const char *text = read_log(log);
    ck_assert_msg(strstr(text, "ckpt-000000006.h5 was written without checksums") && strstr(text, "unverified") &&
                      strstr(text, "resumed from"),
                  "%s", tail(text));
}
END_TEST

/* an image folder with one undecodable file: [data] bad_images = refuse (the default) stops with the
 * file's name, skip trains and says how many were left out; the decode size follows decode_size, or the
 * auto rule (mixed sizes: the model's 8 / 0.875 = 9) */
/* a folder of images without classes (PNGs directly in it and in nested subfolders): pretraining reads it, labels
 * not read (the banner says so), holds out val_fraction of it for the evaluation, stops and resumes bitwise
 * exactly with mae and masked_patch_color; vit-eval --reconstruct writes its held-out images' PNGs; supervised
 * training refuses the folder naming it and what it expects */
START_TEST(classless_folder_pretrains)
{
    char root[512], p[700], cfg[512], set_path[600], log[512], out[512];
    snprintf(root, sizeof root, "%s/photos", dir);
    mkdir(root, 0777);
    snprintf(p, sizeof p, "%s/trip", root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/trip/day2", root);
    mkdir(p, 0777);
    for (int i = 0; i < 400; i++) {   /* 320 training images (20 steps of 16 an epoch) and 80 held out */
        const char *sub = i % 5 == 0 ? "trip/" : i % 7 == 0 ? "trip/day2/" : "";
        snprintf(p, sizeof p, "%s/%simg%03d.png", root, sub, i);
        write_class_png(p, 8, 8, i % 4, i);
    }
    char flat[512];   /* images alone, no subfolder: a supervised run refuses it */
    snprintf(flat, sizeof flat, "%s/flat", dir);
    mkdir(flat, 0777);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%d.png", flat, i);
        write_class_png(p, 8, 8, i, i);
    }
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(set_path, sizeof set_path, "data.path=%s", flat);
    snprintf(log, sizeof log, "%s/classless_refused.txt", dir);
    snprintf(out, sizeof out, "%s/SUP", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, NULL}, log), 1);
    char *text = read_log(log);
    char want[700];
    snprintf(want, sizeof want, "%s: images directly in the folder and no class folders", flat);
    ck_assert_msg(strstr(text, want) && strstr(text, "only pretraining reads") &&
                      strstr(text, "supervised training expects class folders"),
                  "%s", text);
    /* vit-data: the folder refused as vit-train refuses it, with the way to read it; --unlabelled describes it and
     * packs it (num_classes 0), and the packed file is read by pretraining alone, as the folder is */
    snprintf(log, sizeof log, "%s/classless_data.txt", dir);
    ck_assert_int_eq(run_tool("VIT_DATA_BIN", (const char *[]){"info", flat, NULL}, log), 1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "no class folders") && strstr(text, "vit-data --unlabelled reads it so"), "%s", text);
    ck_assert_int_eq(run_tool("VIT_DATA_BIN", (const char *[]){"info", root, "--unlabelled", NULL}, log), 0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "train: 400 images 8x8x1 (folder), images without classes") && strstr(text, "mean:") &&
                      !strstr(text, "per class"),
                  "%s", text);
    char packed[520];
    snprintf(packed, sizeof packed, "%s/photos.h5", dir);
    ck_assert_int_eq(run_tool("VIT_DATA_BIN", (const char *[]){"pack", root, packed, "--unlabelled", NULL}, log), 0);
    ck_assert_int_eq(run_tool("VIT_DATA_BIN", (const char *[]){"info", packed, "--unlabelled", NULL}, log), 0);
    ck_assert_msg(strstr(read_log(log), "train: 400 images 8x8x1 (hdf5), images without classes"), "%s", read_log(log));
    snprintf(set_path, sizeof set_path, "data.path=%s", packed);
    snprintf(out, sizeof out, "%s/SUPH5", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, NULL}, log), 1);
    text = read_log(log);
    ck_assert_msg(strstr(text, "photos.h5") && strstr(text, "says 0 classes") && strstr(text, "only pretraining reads"),
                  "%s", text);
    snprintf(out, sizeof out, "%s/MAEH5", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--set", set_path, "--set",
                                          "pretrain.objective=mae", "--set", "pretrain.decoder_dim=8", "--set",
                                          "pretrain.decoder_depth=1", "--set", "pretrain.decoder_heads=2", "--set",
                                          "data.val_fraction=0.2", "--set", "train.max_steps=4", "--set",
                                          "schedule.warmup_steps=2", NULL},
                         log),
                     0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "(hdf5, images without classes: labels not read) 320 training images"), "%s", text);
    snprintf(set_path, sizeof set_path, "data.path=%s", root);
    const char *objectives[2] = {"mae", "masked_patch_color"};
    for (int k = 0; k < 2; k++) {
        char outA[512], outB[512], obj[96], ck[600];
        snprintf(outA, sizeof outA, "%s/CL%dA", dir, k);
        snprintf(outB, sizeof outB, "%s/CL%dB", dir, k);
        snprintf(log, sizeof log, "%s/classless%d.txt", dir, k);
        snprintf(obj, sizeof obj, "pretrain.objective=%s", objectives[k]);
        assert_stop_resume_exact(cfg, outA, outB, log,
                                 (const char *[]){"--set", set_path, "--set", "data.val_fraction=0.2", "--set", obj, "--set",
                                                  "pretrain.decoder_dim=8", "--set", "pretrain.decoder_depth=1", "--set",
                                                  "pretrain.decoder_heads=2", NULL});
        text = read_log(log);
        snprintf(want, sizeof want, "data: %s (folder, images without classes: labels not read) 320 training images "
                                    "8x8x1, validation 80", root);
        ck_assert_msg(strstr(text, want), "%s\n(expected: %s)", text, want);
        /* no classification head in pretraining: the model line counts no classes */
        ck_assert_msg(strstr(text, "pooling, ") && !strstr(text, " classes, "), "%s", text);
        ck_assert_msg(strstr(text, "final validation masked") || strstr(text, "final test masked"), "%s", tail(text));
        if (k > 0) continue;
        snprintf(ck, sizeof ck, "%s/ckpt-000000060.h5", outA);
        snprintf(out, sizeof out, "%s/rec-classless", dir);
        snprintf(log, sizeof log, "%s/classless-rec.txt", dir);
        ck_assert_int_eq(run_tool("VIT_EVAL_BIN", (const char *[]){"--checkpoint", ck, "--split", "val", "--reconstruct",
                                                                   "3", "--out", out, NULL},
                                  log),
                         0);
        for (int i = 0; i < 3; i++) {
            struct stat st;
            snprintf(p, sizeof p, "%s/reconstruct-%04d.png", out, i);
            ck_assert_msg(stat(p, &st) == 0 && st.st_size > 0, "%s missing: %s", p, read_log(log));
        }
    }
}
END_TEST

START_TEST(image_folder_bad_images)
{
    char root[512], p[700], cfg[512], set_path[600], log[512], out[512];
    snprintf(root, sizeof root, "%s/folder", dir);
    mkdir(root, 0777);
    for (int cls = 0; cls < 4; cls++) {
        snprintf(p, sizeof p, "%s/c%d", root, cls);
        mkdir(p, 0777);
        for (int i = 0; i < 10; i++) {
            snprintf(p, sizeof p, "%s/c%d/img%02d.png", root, cls, i);
            write_class_png(p, i == 3 ? 12 : 8, i == 3 ? 10 : 8, cls, cls * 10 + i);   /* one of another size */
        }
    }
    snprintf(p, sizeof p, "%s/c2/zz_broken.png", root);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("\x89PNG\r\n\x1a\n but not really a PNG after the signature", f);
    fclose(f);
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(set_path, sizeof set_path, "data.path=%s", root);
    snprintf(log, sizeof log, "%s/folder_refuse.txt", dir);
    snprintf(out, sizeof out, "%s/FOLDER", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, NULL}, log), 1);
    char *text = read_log(log);
    ck_assert_msg(strstr(text, "c2/zz_broken.png") != NULL, "%s", text);
    snprintf(log, sizeof log, "%s/folder_skip.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, "--set",
                                          "data.bad_images=skip", NULL},
                         log),
                     0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "40 training images 9x9x1") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "1 undecodable image skipped") && strstr(text, "zz_broken.png"), "%s", text);
    ck_assert_msg(strstr(text, "dry run: one step done") != NULL, "%s", text);
    /* an explicit decode size, and a held-out part read with crop_pct */
    snprintf(log, sizeof log, "%s/folder_size.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, "--set",
                                          "data.bad_images=skip", "--set", "data.decode_size=12", "--set",
                                          "data.crop_pct=0.875", "--set", "data.val_fraction=0.2", NULL},
                         log),
                     0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "32 training images 12x12x1, validation 8") != NULL, "%s", text);
    /* one size for all: kept when it is not larger than the auto size (16 / 0.875 = 18), decoded smaller
     * when it is (4 / 0.875 = 4) */
    for (int cls = 0; cls < 4; cls++) {
        snprintf(p, sizeof p, "%s/c%d/img03.png", root, cls);
        ck_assert_int_eq(remove(p), 0);
    }
    snprintf(log, sizeof log, "%s/folder_uniform.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, "--set",
                                          "data.bad_images=skip", "--set", "model.img_size=16", NULL},
                         log),
                     0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "36 training images 8x8x1") != NULL, "%s", text);
    snprintf(log, sizeof log, "%s/folder_small.txt", dir);
    ck_assert_int_eq(run((const char *[]){"--config", cfg, "--out", out, "--dry-run", "--set", set_path, "--set",
                                          "data.bad_images=skip", "--set", "model.img_size=4", "--set",
                                          "model.patch_size=2", NULL},
                         log),
                     0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "36 training images 4x4x1") != NULL, "%s", text);
}
END_TEST

/* a held-out image that passes the open probe but fails its full decode (a PNG cut short): the first
 * evaluation stops the run, but the step it followed is saved first, and --resume auto goes on from it
 * once the image decodes (here: skipped) */
START_TEST(bad_heldout_image_keeps_the_step)
{
    char root[512], p[700], cfg[512], set_path[600], log[512], out[512];
    snprintf(root, sizeof root, "%s/heldout", dir);
    mkdir(root, 0777);
    for (int cls = 0; cls < 4; cls++) {
        snprintf(p, sizeof p, "%s/c%d", root, cls);
        mkdir(p, 0777);
        for (int i = 0; i < 10; i++) {
            snprintf(p, sizeof p, "%s/c%d/img%02d.png", root, cls, i);
            write_class_png(p, 8, 8, cls, cls * 10 + i);
        }
    }
    /* the trainer's own split of the 40 samples (class folders, then files, in order) with a.ini's seed */
    int64_t *tr, *va, ntr, nva;
    ck_assert_int_eq(vt_split_indices(40, 0.2, 5, &tr, &ntr, &va, &nva), VT_OK);
    ck_assert_int_eq(nva, 8);
    snprintf(p, sizeof p, "%s/c%d/img%02d.png", root, (int)(va[0] / 10), (int)(va[0] % 10));
    free(tr);
    free(va);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 20), 0);   /* the header stays, the pixels end early */
    snprintf(cfg, sizeof cfg, "%s/a.ini", dir);
    snprintf(set_path, sizeof set_path, "data.path=%s", root);
    snprintf(log, sizeof log, "%s/heldout.txt", dir);
    snprintf(out, sizeof out, "%s/HELDOUT", dir);
    /* 32 training images: 2 steps an epoch, the first evaluation after step 2 (checkpoints every 3 steps) */
    const char *args[] = {"--config", cfg, "--out", out, "--set", set_path, "--set", "data.val_fraction=0.2",
                          "--set", "data.crop_padding=0", NULL, NULL, NULL};
    ck_assert_int_eq(run(args, log), 1);
    char *text = read_log(log);
    const char *cut = strrchr(p, '/');
    ck_assert_msg(strstr(text, "evaluation after step 2") && strstr(text, cut + 1) &&
                      strstr(text, "the step is saved in") && strstr(text, "--resume auto"),
                  "%s", tail(text));
    char ck[700];
    snprintf(ck, sizeof ck, "%s/ckpt-000000002.h5", out);
    ck_assert_msg(access(ck, F_OK) == 0, "no %s: %s", ck, tail(text));
    vt_train_state s;
    vt_vit_config mc;
    vt_vit m;
    ck_assert_int_eq(vt_ckpt_model_config(ck, &mc), VT_OK);
    ck_assert_int_eq(vt_vit_init(&m, &mc), VT_OK);
    ck_assert_int_eq(vt_ckpt_load(ck, &m, NULL, &s, NULL), VT_OK);
    vt_vit_free(&m);
    ck_assert(s.step == 2 && s.epoch == 1 && s.batch_in_epoch == 0);   /* the epoch's end, as a cadence checkpoint */
    char *rows = metrics_without_speed(out);
    ck_assert_msg(strstr(rows, "\n2,1,") != NULL, "%s", rows);   /* the step's row too */
    free(rows);
    /* the same image skipped: the run goes on from step 2 to its end */
    args[10] = "--resume", args[11] = "auto";
    const char *skip[16];
    join_args(skip, 16, args, (const char *[]){"--set", "data.bad_images=skip", NULL});
    ck_assert_int_eq(run(skip, log), 0);
    text = read_log(log);
    ck_assert_msg(strstr(text, "resumed from ") && strstr(text, "ckpt-000000002.h5 at step 2") &&
                      strstr(text, "final validation"),
                  "%s", tail(text));
    snprintf(ck, sizeof ck, "%s/ckpt-000000006.h5", out);
    ck_assert_int_eq(access(ck, F_OK), 0);
}
END_TEST

/* the whole DeiT recipe on: the model half (stochastic depth, its draws a function of seed, step, image and block;
 * LayerScale; register tokens with the position embedding over the patches only) with the data half (mixup, cutmix,
 * RandAugment, EMA), accumulation and two replicas; a stopped and resumed run ends bitwise like a straight one */

void add_train_folder_tests(TCase *tf)
{
    tcase_add_test(tf, image_folder_bad_images);
    tcase_add_test(tf, classless_folder_pretrains);
    tcase_add_test(tf, bad_heldout_image_keeps_the_step);
    tcase_add_test(tf, refused_start_leaves_nothing);
    tcase_add_test(tf, resume_unchecked_checkpoint_notes_it);
}
