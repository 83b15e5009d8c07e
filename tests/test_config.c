/* test_config.c - strict INI configs: every error names file:line and the key. */
#include "testutil.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_cfg_n(const char *text, size_t n)
{
    snprintf(path, sizeof path, "/tmp/vit_cfg_XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void write_cfg(const char *text) { write_cfg_n(text, strlen(text)); }

static int load(vt_config *c, const char *text)
{
    vt_config_defaults(c);
    write_cfg(text);
    int r = vt_config_load(c, path);
    remove(path);
    return r;
}

START_TEST(valid_config_parses)
{
    vt_config c;
    ck_assert_msg(load(&c, "# comment\n[model]\nembed_dim = 64\nmlp_ratio=2.5\npool = avg\n\n[data]\npath = /x/y\n"
                           "hflip = yes\n[optim]\nlr = 3e-4 ; inline comment\n") == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(c.embed_dim, 64);
    ck_assert(c.mlp_ratio == 2.5);
    ck_assert_str_eq(c.pool, "avg");
    ck_assert_str_eq(c.data_path, "/x/y");
    ck_assert(c.hflip);
    ck_assert(c.lr == 3e-4);
    ck_assert_int_eq(c.depth, 12);   /* default kept */
}
END_TEST

START_TEST(unknown_key_suggests_nearest)
{
    vt_config c;
    ck_assert_int_eq(load(&c, "[model]\nembed_dim = 64\npatch_sise = 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":3:") && strstr(vt_errmsg(), "patch_sise") &&
                  strstr(vt_errmsg(), "did you mean patch_size"), "%s", vt_errmsg());
    ck_assert_msg(strstr(vt_errmsg(), path) != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\nwhatever_this_is = 4\n"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "unknown key 'whatever_this_is'") && !strstr(vt_errmsg(), "did you mean"));
    ck_assert_int_eq(load(&c, "[modle]\ndepth = 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "unknown section [modle]") && strstr(vt_errmsg(), "did you mean [model]"), "%s",
                  vt_errmsg());
    /* a key in the wrong section points at the right one */
    ck_assert_int_eq(load(&c, "[model]\nlr = 0.1\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "did you mean lr in [optim]"), "%s", vt_errmsg());
}
END_TEST

START_TEST(wrong_type_and_range)
{
    vt_config c;
    ck_assert_int_eq(load(&c, "[model]\ndepth = twelve\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "depth") && strstr(vt_errmsg(), "not an integer"),
                  "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[optim]\nlr = -1\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "lr") && strstr(vt_errmsg(), "out of range"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[optim]\nbeta1 = 1.0\n"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "beta1") != NULL);
    ck_assert_int_eq(load(&c, "[data]\nhflip = maybe\n"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "not a boolean") != NULL);
    ck_assert_int_eq(load(&c, "[optim]\noptimizer = lamb\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "sgd|adam|adamw") != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth = 4\ndepth = 5\n"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "twice") != NULL);
    ck_assert_int_eq(load(&c, "[model\ndepth = 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":1:") && strstr(vt_errmsg(), "no closing ']'"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "depth = 4\n[model]\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":1:") && strstr(vt_errmsg(), "outside any [section]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2: syntax error") != NULL, "%s", vt_errmsg());
}
END_TEST

START_TEST(missing_required_and_unreadable)
{
    vt_config c;
    ck_assert_int_eq(load(&c, "[model]\ndepth = 4\n"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[data] path") != NULL, "%s", vt_errmsg());
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_load(&c, "/nonexistent/dir/x.ini"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "/nonexistent/dir/x.ini") != NULL);
    ck_assert_int_eq(load(&c, "[data]\npath=/x\n[model]\nembed_dim = 10\nnum_heads = 3\n"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "num_heads") != NULL);
}
END_TEST

START_TEST(set_overrides_use_the_same_checks)
{
    vt_config c;
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_set(&c, "optim.lr=0.5"), VT_OK);
    ck_assert(c.lr == 0.5);
    ck_assert_int_eq(vt_config_set(&c, "optim.lr=abc"), VT_ERR);
    ck_assert_int_eq(vt_config_set(&c, "model.patch_sizes=4"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "did you mean patch_size") != NULL);
    ck_assert_int_eq(vt_config_set(&c, "lr=4"), VT_ERR);
    ck_assert(strstr(vt_errmsg(), "section.key=value") != NULL);
}
END_TEST

START_TEST(resolved_config_round_trips)
{
    vt_config a, b;
    ck_assert_int_eq(load(&a, "[data]\npath = /d\n[optim]\nlr = 0.1234567890123\n[model]\npreset = s16\n"), VT_OK);
    write_cfg("");
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(vt_config_write(&a, f), VT_OK);
    fclose(f);
    vt_config_defaults(&b);
    ck_assert_msg(vt_config_load(&b, path) == VT_OK, "%s", vt_errmsg());
    remove(path);
    memcpy(b.source, a.source, sizeof a.source);   /* where they came from, not a key */
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
}
END_TEST

/* the writer quotes what needs it: every string, however odd, reads back as written (a value with " ;"
 * once lost its tail to a comment) */
START_TEST(odd_strings_round_trip)
{
    static char longq[256];
    memset(longq, '"', 255);
    const char *vals[] = {"/tmp/sp ;x", "/tmp/sp #x", "a;b", "a#b", ";lead", "#lead", "\"quoted\"", "say \"hi\" ;x",
                          "back\\slash\\", "\\\"", "  lead", "trail  ", "\tlead tab", "", "x = y", "[model]", "\"", "\\",
                          " ; ", "a\t#b", longq};
    int n = (int)(sizeof vals / sizeof vals[0]);
    for (int i = 0; i < n; i++) {
        vt_config a, b;
        vt_config_defaults(&a);
        snprintf(a.data_path, sizeof a.data_path, "%s", vals[i]);
        snprintf(a.no_weight_decay, sizeof a.no_weight_decay, "%s", vals[(i + 1) % n]);
        snprintf(a.init, sizeof a.init, "%s", vals[(i + 2) % n]);
        if (strlen(vals[(i + 3) % n]) < sizeof a.images_key)
            snprintf(a.images_key, sizeof a.images_key, "%s", vals[(i + 3) % n]);
        write_cfg("");
        FILE *f = fopen(path, "w");
        ck_assert_int_eq(vt_config_write(&a, f), VT_OK);
        fclose(f);
        vt_config_defaults(&b);
        int r = vt_config_load(&b, path);
        remove(path);
        ck_assert_msg(r == VT_OK, "value %d: %s", i, vt_errmsg());
        ck_assert_msg(strcmp(a.data_path, b.data_path) == 0, "'%s' read back as '%s'", a.data_path, b.data_path);
        ck_assert_msg(strcmp(a.no_weight_decay, b.no_weight_decay) == 0, "'%s' read back as '%s'", a.no_weight_decay,
                      b.no_weight_decay);
        memcpy(b.source, a.source, sizeof a.source);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "value %d changed in the round trip", i);
    }
    /* as the audit found it: --set, config.ini, read back */
    vt_config c, d;
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_set(&c, "data.path=/tmp/sp ;x"), VT_OK);
    ck_assert_str_eq(c.data_path, "/tmp/sp ;x");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    ck_assert_int_eq(vt_config_write(&c, m), VT_OK);
    fclose(m);
    ck_assert_msg(strstr(buf, "path = \"/tmp/sp ;x\"\n") && strstr(buf, "images_key = images\n"), "%s", buf);
    vt_config_defaults(&d);
    ck_assert_int_eq(vt_config_load_text(&d, buf, "config.ini"), VT_OK);
    ck_assert_str_eq(d.data_path, "/tmp/sp ;x");
    free(buf);
    /* --set takes quotes too, and refuses what no file line can hold */
    ck_assert_int_eq(vt_config_set(&c, "data.path= \"  a\\\"b \" "), VT_OK);
    ck_assert_str_eq(c.data_path, "  a\"b ");
    ck_assert_int_eq(vt_config_set(&c, "data.path=\"open"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "unterminated"), "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "data.path=a\nb"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[data] path") && strstr(vt_errmsg(), "control character"), "%s", vt_errmsg());
}
END_TEST

/* one comment rule for every key: ';' or '#' after a space or tab; double quotes keep anything */
START_TEST(comments_and_quotes_one_rule)
{
    vt_config c;
    ck_assert_msg(load(&c, "[data]\npath = x # c\n[train]\nepochs = 3 # c\nseed = 4 ; c\n") == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(c.data_path, "x");
    ck_assert_int_eq(c.epochs, 3);
    ck_assert_int_eq(c.seed, 4);
    ck_assert_msg(load(&c, "[data]\npath = a#b\nimages_key = a;b\nlabels_key=;c\n") == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(c.data_path, "a#b");
    ck_assert_str_eq(c.images_key, "a;b");
    ck_assert_str_eq(c.labels_key, ";c");
    ck_assert_msg(load(&c, "[data] ; a comment\npath = \" a ; b \" # c\nimages_key = \"\"\nlabels_key = \"x\\\\y\\\"z\"\n"
                           "mean = ;nothing\n") == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(c.data_path, " a ; b ");
    ck_assert_str_eq(c.images_key, "");
    ck_assert_str_eq(c.labels_key, "x\\y\"z");
    ck_assert_str_eq(c.mean, "");
    /* indented lines are plain lines; CRLF endings; a line longer than inih's 200 bytes is whole */
    char text[600], longp[300];
    memset(longp, 'p', 250);
    longp[0] = '/';
    longp[250] = '\0';
    snprintf(text, sizeof text, "[data]\r\nimages_key = k\r\n   path = %s ; c\r\n", longp);
    ck_assert_msg(load(&c, text) == VT_OK, "%s", vt_errmsg());
    ck_assert_str_eq(c.data_path, longp);
    ck_assert_str_eq(c.images_key, "k");
    /* bad quoted values name file:line and the key */
    ck_assert_int_eq(load(&c, "[data]\npath = \"abc\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "[data] path") &&
                  strstr(vt_errmsg(), "unterminated"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath = \"a\\nb\"\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "escape"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath = \"a\" b\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "after the closing quote"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath = \"a\";b\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "after the closing quote"), "%s", vt_errmsg());
}
END_TEST

/* junk the old reader dropped silently: "[]", text after "]", a NUL byte, a line without a key */
START_TEST(junk_lines_refused)
{
    vt_config c;
    ck_assert_int_eq(load(&c, "[]\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), ":1:") && strstr(vt_errmsg(), "empty section"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath = /x\n[train]junk\nepochs = 2\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), ":3:") && strstr(vt_errmsg(), "'junk'"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(load(&c, "[train];x\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":1:") && strstr(vt_errmsg(), "after the section header"), "%s", vt_errmsg());
    ck_assert_msg(load(&c, "[train]   # fine\nepochs = 2\n") == VT_OK, "%s", vt_errmsg());
    vt_config_defaults(&c);
    static const char nul[] = "[data]\npath = /a\0/b\n";
    write_cfg_n(nul, sizeof nul - 1);
    ck_assert_int_eq(vt_config_load(&c, path), VT_ERR);
    remove(path);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "NUL byte"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\n= 5\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "without a key"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth: 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2: syntax error"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth ; = 4\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), ":2: syntax error"), "%s", vt_errmsg());
}
END_TEST

/* a folder is not a config; errors found after loading (validate, model) name the file */
START_TEST(errors_name_the_file)
{
    vt_config c;
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_load(&c, "/tmp"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "/tmp: is a folder, expected an INI file"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, ""), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "missing required key [data] path"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath=/x\n[model]\nembed_dim = 10\nnum_heads = 3\n"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "[model] embed_dim 10 is not divisible by num_heads 3") &&
                  !strstr(vt_errmsg(), "model: "), "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "model.num_heads=4"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "--set"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath=/x\n[model]\npreset = zz\n"), VT_OK);
    vt_vit_config mc;
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "[model] preset: unknown model preset 'zz'"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(load(&c, "[data]\npath=/x\n[schedule]\nlr_min = 0.0010000000001\n"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), path) && strstr(vt_errmsg(), "lr_min = 0.0010000000001 is above [optim] lr = 0.001"),
                  "%s", vt_errmsg());
    vt_config_defaults(&c);
    ck_assert_int_eq(vt_config_load_text(&c, "[data]\npath = /x\n[model]\ndepth = -1\n", "ckpt.h5"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "ckpt.h5:4:"), "%s", vt_errmsg());
}
END_TEST

/* ranges print as they are checked: integers whole, floats in full, no upper bound as ">= min" */
START_TEST(ranges_print_exactly)
{
    vt_config c;
    ck_assert_int_eq(load(&c, "[train]\nepochs = 1048577\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "epochs = 1048577 is out of range [1, 1048576]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[train]\nseed = 2147483648\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "seed = 2147483648 is out of range [0, 2147483647]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[optim]\nbeta1 = 1\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "beta1 = 1 is out of range [0, 0.999999999]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[optim]\nclip_grad_norm = -0.5\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "clip_grad_norm = -0.5 is out of range (expected >= 0)"), "%s", vt_errmsg());
    /* documented as ">= 0": any finite value is taken */
    ck_assert_msg(load(&c, "[optim]\nclip_grad_norm = 1e301\n") == VT_OK, "%s", vt_errmsg());
    ck_assert(c.clip_grad_norm == 1e301);
    ck_assert_int_eq(load(&c, "[optim]\nclip_grad_norm = inf\n"), VT_ERR);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    vt_config_markdown(m);
    fclose(m);
    ck_assert_msg(strstr(buf, "| train | epochs | int | 10 | 1 .. 1048576 |") &&
                  strstr(buf, "| train | seed | int | 0 | 0 .. 2147483647 |") &&
                  strstr(buf, "| optim | beta1 | float | 0.9 | 0 .. 0.999999999 |") &&
                  strstr(buf, "| optim | clip_grad_norm | float | 0 | >= 0 |"), "%s", buf);
    free(buf);
}
END_TEST

/* the [data] keys reach the data layer through the one shared setup (trainer, vit-eval, loader bench) */
START_TEST(data_keys_reach_the_data_layer)
{
    vt_config c;
    ck_assert_msg(load(&c, "[data]\npath = /d\nbad_images = skip\ncifar_coarse = true\ncrop_pct = 0.9\n"
                           "hflip = true\nrandom_resized_crop = true\ncrop_padding = 2\nmean = 0.1, 0.2, 0.3\n"
                           "std = 0.5\n[model]\nimg_size = 224\nnum_classes = 7\n") == VT_OK, "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_validate(&c), VT_OK);
    vt_vit_config mc;
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    vt_data_options o;
    vt_config_data_options(&c, &mc, &o);
    ck_assert_int_eq(o.bad_images, VT_BAD_SKIP);
    ck_assert_int_eq(o.max_image_pixels, VT_IMAGE_DEFAULT_PIXELS);   /* Pillow's MAX_IMAGE_PIXELS */
    ck_assert(o.cifar_coarse);
    ck_assert_int_eq(o.num_classes, 7);
    ck_assert_int_eq(o.channels, 3);
    ck_assert_str_eq(o.format, "auto");
    /* auto decode size: the images' own when they agree, else 224 / 0.9 */
    ck_assert_int_eq(o.image_h, 0);
    ck_assert_int_eq(o.image_w, 0);
    ck_assert_int_eq(o.auto_h, 248);
    ck_assert_int_eq(o.auto_w, 248);
    /* crop_pct 0: timm's 256 for 224; an explicit decode size is the shorter side at the model's aspect */
    ck_assert_int_eq(vt_config_set(&c, "data.crop_pct=0"), VT_OK);
    vt_config_data_options(&c, &mc, &o);
    ck_assert_int_eq(o.auto_h, 256);
    ck_assert_int_eq(vt_config_set(&c, "data.decode_size=300"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.max_image_pixels=268435456"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.max_image_pixels=268435457"), VT_ERR);   /* the decoders' 2^28 */
    ck_assert_int_eq(vt_config_set(&c, "model.img_w=448"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "model.in_chans=2"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "model.num_classes=0"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    vt_config_data_options(&c, &mc, &o);
    ck_assert_int_eq(o.image_h, 300);
    ck_assert_int_eq(o.image_w, 600);
    ck_assert_int_eq(o.max_image_pixels, 268435456);
    ck_assert_int_eq(o.channels, 0);   /* the data decides, the transform converts */
    ck_assert_int_eq(o.num_classes, 0);
    ck_assert_int_eq(o.bad_images, VT_BAD_SKIP);
    /* transforms: augmentation only for training, crop_pct for both */
    ck_assert_int_eq(vt_config_set(&c, "model.in_chans=3"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.crop_pct=0.875"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    vt_transform t;
    ck_assert_int_eq(vt_config_transform(&c, &mc, true, &t), VT_OK);
    ck_assert(t.train && t.hflip && t.rrc && t.crop_padding == 2 && t.crop_pct == 0.875f);
    ck_assert(t.out_c == 3 && t.out_h == 224 && t.out_w == 448);
    ck_assert(t.mean[1] == 0.2f && t.std[2] == 0.5f);
    ck_assert(t.rrc_scale_min == 0.08 && t.rrc_ratio_max == 1.3333333333);
    ck_assert_int_eq(vt_config_transform(&c, &mc, false, &t), VT_OK);
    ck_assert(!t.train && t.crop_pct == 0.875f);
    ck_assert_int_eq(vt_config_set(&c, "data.std=0.5, 0, 0.5"), VT_OK);
    ck_assert_int_eq(vt_config_transform(&c, &mc, false, &t), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[data] std") != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "data.mean=0.1, 0.2"), VT_OK);
    ck_assert_int_eq(vt_config_transform(&c, &mc, false, &t), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[data] mean") != NULL, "%s", vt_errmsg());
    /* bad values are refused by the table's own checks */
    ck_assert_int_eq(vt_config_set(&c, "data.bad_images=ignore"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "refuse|skip") != NULL, "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "data.crop_pct=1.5"), VT_ERR);
    ck_assert_int_eq(vt_config_set(&c, "data.crop_pct=0.01"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.std=0.5"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.mean=0.5"), VT_OK);
    ck_assert_int_eq(vt_config_validate(&c), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "crop_pct") != NULL, "%s", vt_errmsg());
}
END_TEST

/* configs/README.md carries the table the parser generates: they cannot drift apart */
START_TEST(readme_table_matches_parser)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    vt_config_markdown(m);
    fclose(m);
    const char *src = getenv("VIT_SOURCE_ROOT");
    ck_assert_ptr_nonnull(src);
    char p[4096];
    snprintf(p, sizeof p, "%s/configs/README.md", src);
    FILE *f = fopen(p, "r");
    ck_assert_msg(f != NULL, "cannot open %s", p);
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(doc, buf) != NULL,
                  "configs/README.md does not contain the key table; regenerate it with `build/tools/vit-config-keys`");
    free(buf);
}
END_TEST

/* [data] train_fraction: a fixed subset of the given indices, ascending, of the asked size, the same for the same
 * seed and another for another; [pretrain] and [optim] layer_decay reach the model and are checked */
START_TEST(train_fraction_and_pretrain_keys)
{
    vt_config c;
    vt_config_defaults(&c);
    int64_t idx[200], *a, *b, na, nb;
    for (int i = 0; i < 200; i++) idx[i] = 3 * i + 1;
    ck_assert_int_eq(vt_config_train_subset(&c, idx, 200, 5, &a, &na), VT_OK);
    ck_assert_ptr_null(a);   /* 1: all of them */
    ck_assert_int_eq(na, 200);
    ck_assert_int_eq(vt_config_set(&c, "data.train_fraction=0.1"), VT_OK);
    ck_assert_int_eq(vt_config_train_subset(&c, idx, 200, 5, &a, &na), VT_OK);
    ck_assert_int_eq(vt_config_train_subset(&c, idx, 200, 5, &b, &nb), VT_OK);
    ck_assert_int_eq(na, 20);
    ck_assert_int_eq(nb, 20);
    ck_assert(memcmp(a, b, sizeof(int64_t) * 20) == 0);
    for (int i = 0; i < 20; i++) {
        ck_assert(a[i] % 3 == 1 && a[i] >= 1 && a[i] < 600);
        if (i) ck_assert_int_lt(a[i - 1], a[i]);
    }
    free(b);
    ck_assert_int_eq(vt_config_train_subset(&c, idx, 200, 6, &b, &nb), VT_OK);
    ck_assert(memcmp(a, b, sizeof(int64_t) * 20) != 0);
    free(a);
    free(b);
    ck_assert_int_eq(vt_config_train_subset(&c, NULL, 1000, 6, &a, &na), VT_OK);   /* all images: indices themselves */
    ck_assert_int_eq(na, 100);
    ck_assert(a[99] < 1000);
    free(a);
    ck_assert_int_eq(vt_config_set(&c, "data.train_fraction=0"), VT_ERR);
    /* the objectives */
    vt_vit_config mc;
    ck_assert_int_eq(vt_config_set(&c, "data.path=x"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "model.in_chans=1"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    ck_assert_int_eq(mc.pretrain.kind, VT_OBJ_CLASSIFY);
    ck_assert_int_eq(vt_config_set(&c, "pretrain.objective=mae"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "data.mean=0.25"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    ck_assert_int_eq(mc.pretrain.kind, VT_OBJ_MAE);
    ck_assert_double_eq(mc.pretrain.mask_ratio, 0.75);
    ck_assert_float_eq(mc.pretrain.in_mean[0], 0.25f);
    ck_assert_int_eq(vt_config_set(&c, "pretrain.objective=masked_patch_color"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_OK);
    ck_assert_double_eq(mc.pretrain.mask_ratio, 0.5);
    ck_assert_int_eq(vt_config_set(&c, "model.patch_drop_rate=0.5"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[pretrain] masked_patch_color masks patches itself: [model] patch_drop_rate must be 0"),
                  "%s", vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "model.patch_drop_rate=0"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "pretrain.objective=mae"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "pretrain.decoder_heads=3"), VT_OK);
    ck_assert_int_eq(vt_config_model(&c, &mc), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "[pretrain] decoder_dim 512 must be positive and divisible by decoder_heads 3"), "%s",
                  vt_errmsg());
    ck_assert_int_eq(vt_config_set(&c, "pretrain.objective=bert"), VT_ERR);
    ck_assert_int_eq(vt_config_set(&c, "optim.layer_decay=0.65"), VT_OK);
    ck_assert_int_eq(vt_config_set(&c, "optim.layer_decay=1.5"), VT_ERR);
}
END_TEST

/* every shipped config parses and validates */
START_TEST(shipped_configs_are_valid)
{
    const char *names[] = {"fashion_mnist.ini", "vit_ti16.ini", "vit_s16.ini", "vit_b16.ini", "vit_l16.ini", "vit_h14.ini",
                           "vit_b16_ft384.ini", "mnist_ft40.ini", "fashion_mnist_mae.ini", "fashion_mnist_ft_mae.ini",
                           "fashion_mnist_10pct.ini", "vit_b16_mpp.ini", "fashion_mnist_deit.ini"};
    const char *src = getenv("VIT_SOURCE_ROOT");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/configs/%s", src, names[i]);
        vt_config c;
        vt_config_defaults(&c);
        ck_assert_msg(vt_config_load(&c, p) == VT_OK, "%s", vt_errmsg());
        ck_assert_msg(vt_config_validate(&c) == VT_OK, "%s: %s", names[i], vt_errmsg());
    }
}
END_TEST

/* float keys take decimal notation only, as integer keys do (strtod alone would take 0x10 as 16, and hex
 * floats, inf, nan); a whole number beyond long long is out of range, not "not an integer" */
START_TEST(numbers_decimal_only)
{
    vt_config c;
    char text[128];
    static const char *bad[] = {"0x10", "0X1A", "0x1p3", "infinity", "inf", "-inf", "nan", "NAN(1)", "1e", ".", "-",
                                "1.2.3", "1e+", "e5", "1,5"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(text, sizeof text, "[optim]\nlr = %s\n", bad[k]);
        ck_assert_int_eq(load(&c, text), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), ":2:") && strstr(vt_errmsg(), "lr") && strstr(vt_errmsg(), bad[k]) &&
                      strstr(vt_errmsg(), "is not a number") && strstr(vt_errmsg(), "decimal"), "%s", vt_errmsg());
        vt_config_defaults(&c);
        snprintf(text, sizeof text, "optim.lr=%s", bad[k]);
        ck_assert_int_eq(vt_config_set(&c, text), VT_ERR);
        ck_assert_msg(strstr(vt_errmsg(), "is not a number"), "%s", vt_errmsg());
    }
    static const struct { const char *v; double x; } good[] = {
        {"1e-3", 1e-3}, {".5", 0.5}, {"5.", 5}, {"+2", 2}, {"1E+2", 100}, {"0", 0}, {"-0", 0}, {"007", 7}};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        snprintf(text, sizeof text, "[optim]\nlr = %s\n", good[k].v);
        ck_assert_msg(load(&c, text) == VT_OK, "%s: %s", good[k].v, vt_errmsg());
        ck_assert_msg(c.lr == good[k].x, "%s read as %g", good[k].v, c.lr);
    }
    ck_assert_int_eq(load(&c, "[optim]\nlr = 1e999\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "lr = 1e999 is out of range [0, 1000]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[optim]\nlr = 1e-400\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "1e-400 is too close to zero"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth = 99999999999999999999\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "depth = 99999999999999999999 is out of range [0, 1024]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth = -99999999999999999999\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "is out of range [0, 1024]"), "%s", vt_errmsg());
    ck_assert_int_eq(load(&c, "[model]\ndepth = 0x10\n"), VT_ERR);
    ck_assert_msg(strstr(vt_errmsg(), "is not an integer"), "%s", vt_errmsg());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("ini");
    tcase_add_test(tc, valid_config_parses);
    tcase_add_test(tc, unknown_key_suggests_nearest);
    tcase_add_test(tc, wrong_type_and_range);
    tcase_add_test(tc, missing_required_and_unreadable);
    tcase_add_test(tc, set_overrides_use_the_same_checks);
    tcase_add_test(tc, resolved_config_round_trips);
    tcase_add_test(tc, odd_strings_round_trip);
    tcase_add_test(tc, comments_and_quotes_one_rule);
    tcase_add_test(tc, junk_lines_refused);
    tcase_add_test(tc, errors_name_the_file);
    tcase_add_test(tc, ranges_print_exactly);
    tcase_add_test(tc, numbers_decimal_only);
    tcase_add_test(tc, data_keys_reach_the_data_layer);
    tcase_add_test(tc, readme_table_matches_parser);
    tcase_add_test(tc, shipped_configs_are_valid);
    tcase_add_test(tc, train_fraction_and_pretrain_keys);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
