/* data_internal.h - what the files of src/data share and nobody else needs: the per-format
 * openers behind vt_dataset_open_opts, image decoders, and small helpers. */
#ifndef VIT_DATA_INTERNAL_H
#define VIT_DATA_INTERNAL_H

#include "data.h"
#include <stdio.h>

/* ---- format openers: *out stays NULL with VT_OK when the split does not exist */
int vt_idx_open(vt_dataset **out, const char *dir, const char *split, const vt_data_options *o);
/* ---- the registry's detect and open functions (VT_DATA_FORMATS, data.h; dataset.c) */
struct stat;
bool vt_idx_detect(const char *path, const struct stat *st);
/* an IDX folder, or one IDX file named directly (its folder is the dataset) */
int vt_idx_open_path(vt_dataset **out, const char *path, const char *split, const vt_data_options *o);
bool vt_cifar_detect(const char *path, const struct stat *st);
bool vt_h5data_detect(const char *path, const struct stat *st);
bool vt_folder_detect_path(const char *path, const struct stat *st);
int vt_cifar_open(vt_dataset **out, const char *dir, const char *split, const vt_data_options *o);
int vt_h5data_open(vt_dataset **out, const char *path, const char *split, const vt_data_options *o);
int vt_folder_open(vt_dataset **out, const char *root, const char *split, const vt_data_options *o);
/* does dir look like an image-folder root (class subfolders, or train/ holding them)? */
bool vt_folder_detect(const char *dir);

/* ---- helpers (dataset.c) */
/* a dataset with the common fields set and the class names freed by vt_dataset_free_base */
vt_dataset *vt_dataset_alloc(const char *path, const char *format);
void vt_dataset_free_base(vt_dataset *ds);
/* read a text file of names, one per line (blank lines ignored) into a malloc'd array;
 * *names NULL and VT_OK when the file does not exist */
int vt_read_names(const char *path, char ***names, int *count);
void vt_free_names(char **names, int count);
/* record a skipped/replaced image (thread-safe counter; the first note is kept) */
void vt_dataset_note_skip(vt_dataset *ds, const char *why);

/* ---- image decoding (jpeg.c, png.c). Pixels are uint8 interleaved (h, w, c), c = 1 or 3.
 * probe: the stored size and whether it is grayscale, reading only the header.
 * decode: to c channels (gray replicated / RGB to luma; alpha dropped, as PIL's convert does); a
 * JPEG is decoded with DCT scaling at the smallest scale M/8 whose output still covers
 * (min_h, min_w) after an aspect-preserving fit (0, 0: full size). *pix is malloc'd. */
typedef struct {
    int w, h;
    bool gray;
} vt_image_info;
/* the largest image probed or decoded (a header may claim any size; the decoders refuse a larger one before
 * allocating for it): 2^28 pixels, 16384 x 16384 */
#define VT_IMAGE_MAX_PIXELS (1LL << 28)
bool vt_is_jpeg_name(const char *name);
bool vt_is_png_name(const char *name);
int vt_jpeg_probe(const char *path, vt_image_info *info);
int vt_jpeg_decode(const char *path, int c, int min_h, int min_w, uint8_t **pix, int *h, int *w);
int vt_png_probe(const char *path, vt_image_info *info);
/* PNG: a non-interlaced image is reduced by the largest integer factor k whose k x k means still cover
 * (min_h, min_w) after the aspect-preserving fit, row by row as it is read (0, 0: full size) */
int vt_png_decode(const char *path, int c, int min_h, int min_w, uint8_t **pix, int *h, int *w);

/* ---- image geometry (image.c)
 * src uint8 (sh, sw, c) -> dst uint8 (dh, dw, c): the largest centered region of aspect dh:dw
 * (the shorter side resized to fit, then a center crop), bilinear, antialiased when shrinking */
int vt_image_fit_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw);
/* the centered region [y0, y0+rh) x [x0, x0+rw) of an (h, w) image with the aspect of (H, W),
 * scaled by frac (1: as large as fits) */
void vt_center_region(int h, int w, int H, int W, double frac, int *y0, int *x0, int *rh, int *rw);

#endif
