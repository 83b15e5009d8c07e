/* data_fixtures.h - what test_data and test_tools share: temporary folders and the files they write */
#ifndef VIT_TESTS_DATA_FIXTURES_H
#define VIT_TESTS_DATA_FIXTURES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nn/nn.h"

/* a new folder /tmp/<name>_XXXXXX in dir; fx_remove deletes it and all it holds */
void fx_tempdir(char *dir, size_t n, const char *name);
void fx_remove(const char *dir);
void be32(uint8_t *p, uint32_t v);
void write_file(const char *path, const void *buf, size_t n, bool gz);
void write_text(const char *folder, const char *name, const char *text);
/* the file holds exactly text */
void expect_file_text(const char *path, const char *text);
/* crc32 of the whole file at path (-1 when it cannot be read): a file left as it was keeps it */
long file_crc(const char *path);
/* a small HDF5 file: with dataset, an old packed dataset (a /train/images of one 2x2 image) that vit-data
 * pack may replace; without, an HDF5 file of another kind (as a checkpoint), which it must not */
void write_small_h5(const char *path, bool dataset);
/* train-images/labels IDX files in folder: 3000 noise images of 12x20 (about 700 KB, noise does not
 * deflate), labels 0..9 */
void write_noise_idx(const char *folder, uint64_t seed);
/* checkpoint ck's /model tensors rewritten contiguous and unfiltered, as before the checksums (m: its model) */
void fx_strip_checksums(const char *ck, const vt_vit *m);

#endif
