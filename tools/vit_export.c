/* vit-export - write a checkpoint's weights as a timm state_dict in safetensors format. */
#include "train/train.h"
#include "cli.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-export CHECKPOINT OUT.safetensors|OUT.npz [--format safetensors|npz] [--ema]\n"
               "Writes the model of a vit checkpoint under timm's state_dict names, float32, so that\n"
               "timm's VisionTransformer.load_state_dict(safetensors.torch.load_file(OUT)) takes it as is;\n"
               "npz writes the layout of the original Google releases (timm's _load_weights reads it).\n"
               "The output name's extension (.safetensors or .npz) chooses the format; --format, when given,\n"
               "must agree with it. Any other name is refused, so that a checkpoint, a config or a data file\n"
               "is never overwritten by mistake. --ema writes the run's EMA of the weights ([train] ema_decay).\n");
}

int main(int argc, char **argv)
{
    if (!cli_check_omp_env("vit-export")) return 2;
    const char *in = NULL, *out = NULL, *format = NULL;
    bool ema = false;
    static const struct option longs[] = {{"format", required_argument, 0, 'f'},
                                          {"ema", no_argument, 0, 'e'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    static const char *const formats[] = {"safetensors", "npz", NULL};
    int ch;
    while ((ch = getopt_long(argc, argv, "f:eh", longs, NULL)) != -1) {
        switch (ch) {
        case 'f':
            if (!cli_choice("vit-export", "--format", optarg, formats)) return 2;
            format = optarg;
            break;
        case 'e': ema = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;   /* getopt has named the unknown option */
        }
    }
    if (optind < argc) in = argv[optind++];
    if (optind < argc) out = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "vit-export: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!in || !out) {
        fprintf(stderr, "vit-export: missing %s\n", in ? "the output file" : "the checkpoint and the output file");
        usage(stderr);
        return 2;
    }
    if (!cli_check_output("vit-export", in, out)) return 2;
    /* the name says the format: anything else (ckpt-*.h5, config.ini, a data file) is refused unwritten */
    const char *by_name = cli_has_ext(out, ".safetensors") ? "safetensors" : cli_has_ext(out, ".npz") ? "npz" : NULL;
    if (!by_name) {
        fprintf(stderr, "vit-export: %s: expected an output name ending in .safetensors or .npz (it chooses the "
                        "format; other names are refused so that no other file is overwritten)\n", out);
        return 2;
    }
    if (format && strcmp(format, by_name) != 0) {
        fprintf(stderr, "vit-export: --format %s but the output %s names a .%s file\n", format, out, by_name);
        return 2;
    }
    format = by_name;
    vt_vit_config mc;
    vt_vit m;
    if (vt_ckpt_model_config(in, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK) {
        fprintf(stderr, "vit-export: %s\n", vt_errmsg());
        return 1;
    }
    int r = vt_ckpt_load(in, &m, NULL, NULL, NULL);
    if (r == VT_OK && ema) r = vt_ckpt_load_ema(in, &m);
    if (r == VT_OK) vt_ckpt_note_unverified(stderr, "vit-export: ", in);
    if (r == VT_OK) r = strcmp(format, "npz") ? vt_vit_save_safetensors(&m, out) : vt_vit_save_npz(&m, out);
    if (r != VT_OK) {
        fprintf(stderr, "vit-export: %s\n", vt_errmsg());
        vt_vit_free(&m);
        return 1;
    }
    printf("%s%s -> %s (%d tensors, %lld parameters)\n", in, ema ? " (EMA)" : "", out, m.params.count,
           (long long)vt_vit_num_params(&m));
    vt_vit_free(&m);
    return 0;
}
