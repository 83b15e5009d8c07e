/* fuzz_image.c - image probing and decoding (PNG with libpng, JPEG with libjpeg-turbo) as an image-folder
 * dataset meets a file: root/<class>/<file> opened (the probe: sniffing the first bytes, the header, the
 * size check), then the sample read (the full decode, DCT scaling, the fit to the delivered size). The
 * delivered size and channels vary with the input's length, so that one input sees one setting. The file is
 * then read whole (vt_image_file_read), as vit-analyze --image reads one. */
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void image_case(const char *target, const char *name, const uint8_t *data, size_t size)
{
    const char *root = vt_fuzz_subdir("images");
    char cls[1200];
    snprintf(cls, sizeof cls, "%s/a", root);
    vt_fuzz_require(mkdir(cls, 0700) == 0, target, "cannot create the class folder");
    vt_fuzz_write(0, cls, name, data, size);
    static const int sizes[4][2] = {{16, 16}, {7, 33}, {64, 48}, {1, 1}};
    vt_data_options o = {0};
    o.format = "folder";
    o.image_h = sizes[size % 4][0];
    o.image_w = sizes[size % 4][1];
    o.channels = size / 4 % 2 ? 3 : 1;
    vt_fuzz_read_dataset(target, root, "train", &o);
    /* one image file read whole, as vit-analyze --image reads it */
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", cls, name);
    uint8_t *pix = NULL;
    int h = 0, w = 0;
    if (vt_image_file_read(path, o.channels, &pix, &h, &w) != VT_OK) vt_fuzz_require_msg(target);
    else vt_fuzz_require(pix && h >= 1 && w >= 1, target, "a decoded image has no pixels");
    free(pix);
}

int vt_fuzz_png(const uint8_t *data, size_t size)
{
    image_case("png", "x.png", data, size);
    return 0;
}

int vt_fuzz_jpeg(const uint8_t *data, size_t size)
{
    image_case("jpeg", "x.jpg", data, size);
    return 0;
}
