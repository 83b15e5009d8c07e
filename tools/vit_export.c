/* vit-export - write a checkpoint's weights as a timm state_dict in safetensors format. */
#include "train/train.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *format = "safetensors";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vit-export CHECKPOINT OUT.safetensors|OUT.npz [--format safetensors|npz]\n"
                   "Writes the model of a vit checkpoint under timm's state_dict names, float32, so that\n"
                   "timm's VisionTransformer.load_state_dict(safetensors.torch.load_file(OUT)) takes it as is;\n"
                   "npz writes the layout of the original Google releases (timm's _load_weights reads it).\n");
            return 0;
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else {
            fprintf(stderr, "vit-export: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "usage: vit-export CHECKPOINT OUT.safetensors [--format safetensors]\n");
        return 2;
    }
    size_t ol = strlen(out);
    if (ol > 4 && strcmp(out + ol - 4, ".npz") == 0 && !strcmp(format, "safetensors")) format = "npz";
    if (strcmp(format, "safetensors") != 0 && strcmp(format, "npz") != 0) {
        fprintf(stderr, "vit-export: unknown format '%s' (safetensors, npz)\n", format);
        return 2;
    }
    vt_vit_config mc;
    vt_vit m;
    if (vt_ckpt_model_config(in, &mc) != VT_OK || vt_vit_init(&m, &mc) != VT_OK ||
        vt_ckpt_load(in, &m, NULL, NULL, NULL) != VT_OK ||
        (strcmp(format, "npz") ? vt_vit_save_safetensors(&m, out) : vt_vit_save_npz(&m, out)) != VT_OK) {
        fprintf(stderr, "vit-export: %s\n", vt_errmsg());
        return 1;
    }
    printf("%s -> %s (%d tensors, %lld parameters)\n", in, out, m.params.count, (long long)vt_vit_num_params(&m));
    vt_vit_free(&m);
    return 0;
}
