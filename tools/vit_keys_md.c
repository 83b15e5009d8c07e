/* vit-config-keys - print the table of every config key as markdown (configs/README.md embeds it). */
#include "train/train.h"

int main(void)
{
    vt_config_markdown(stdout);
    return 0;
}
