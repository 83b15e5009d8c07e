/* data_fixtures.c - files the data and tools tests write (IDX, text, small HDF5) and check, and their
 * temporary folders; shared by test_data, test_tools, test_integrity and test_train */
#include "data_fixtures.h"
#include "testutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include <zlib.h>

void fx_tempdir(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/%s_XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

void fx_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

void write_file(const char *path, const void *buf, size_t n, bool gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, buf, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
}

void write_text(const char *folder, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", folder, name);
    write_file(p, text, strlen(text), false);
}

/* the file holds exactly text */
void expect_file_text(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_str_eq(buf, text);
}

/* crc32 of the whole file at path (-1 when it cannot be read): a file left as it was keeps it */
long file_crc(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uLong crc = crc32(0L, Z_NULL, 0);
    unsigned char b[65536];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0) crc = crc32(crc, b, (uInt)n);
    fclose(f);
    return (long)crc;
}

/* a small HDF5 file (not a dataset: what an old output of another kind could be) */
void write_small_h5(const char *path, bool dataset)
{
    vt_h5id f = vt_h5_create(path);
    ck_assert(f >= 0);
    int64_t v[3] = {4, 5, 6};
    ck_assert_int_eq(vt_h5_write_i64(f, "/old", v, 1, (int64_t[]){3}), VT_OK);
    if (dataset) {
        const uint8_t px[4] = {1, 2, 3, 4};
        ck_assert_int_eq(vt_h5_write_u8(f, "/train/images", px, 4, (int64_t[]){1, 2, 2, 1}, 0), VT_OK);
    }
    vt_h5_close(f);
}

/* train-images/labels IDX files in folder: 3000 noise images of 12x20 (about 700 KB, noise does not
 * deflate), labels 0..9 */
void write_noise_idx(const char *folder, uint64_t seed)
{
    vt_rng r;
    vt_rng_seed(&r, seed);
    const int n = 3000, h = 12, w = 20;
    size_t isz = 16 + (size_t)n * h * w;
    uint8_t *im = malloc(isz), lb[8 + 3000];
    ck_assert_ptr_nonnull(im);
    be32(im, 0x803), be32(im + 4, (uint32_t)n), be32(im + 8, (uint32_t)h), be32(im + 12, (uint32_t)w);
    for (size_t i = 16; i < isz; i++) im[i] = (uint8_t)vt_rng_u64(&r);
    be32(lb, 0x801), be32(lb + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) lb[8 + i] = (uint8_t)(i % 10);
    char p[512];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", folder);
    write_file(p, im, isz, false);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", folder);
    write_file(p, lb, sizeof lb, false);
    free(im);
}

/* checkpoint ck's /model tensors rewritten as the writer before the checksums did: contiguous, no filter
 * (the values of m, the model it holds) */
void fx_strip_checksums(const char *ck, const vt_vit *m)
{
    hid_t f = H5Fopen(ck, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        char name[512];
        snprintf(name, sizeof name, "/model/%s", pi->name);
        hsize_t dims[8];
        for (int k = 0; k < pi->ndim; k++) dims[k] = (hsize_t)pi->shape[k];
        ck_assert(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
        hid_t s = H5Screate_simple(pi->ndim, dims, NULL);
        hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert(d >= 0);
        ck_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->params.data + pi->offset) >= 0);
        H5Dclose(d);
        H5Sclose(s);
    }
    H5Fclose(f);
}
