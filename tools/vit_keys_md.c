/* vit-config-keys - print the table of every config key as markdown (configs/README.md embeds it). */
#include "train/train.h"
#include <stdio.h>
#include <string.h>

#define USAGE "usage: vit-config-keys   (prints every config key as a markdown table; takes no arguments)\n"

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "vit-config-keys: unexpected argument '%s'\n" USAGE, argv[1]);
        return 2;
    }
    vt_config_markdown(stdout);
    return 0;
}
