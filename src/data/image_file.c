/* image_file.c - one image file (PNG or JPEG, recognised by its first bytes) decoded for a tool that
 * takes a user's picture (vit-analyze --image), through the decoders the image folders use. */
#include "data_internal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

int vt_image_file_read(const char *path, int channels, uint8_t **pix, int *h, int *w)
{
    *pix = NULL;
    unsigned char sig[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open the image (%s)", path, strerror(errno));
    const size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n == 8 && memcmp(sig, png, 8) == 0) return vt_png_decode(path, channels, 0, 0, pix, h, w);
    if (n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff)
        return vt_jpeg_decode(path, channels, 0, 0, pix, h, w);
    return vt_err("%s: not a PNG or JPEG image (its first bytes are neither's signature)", path);
}
