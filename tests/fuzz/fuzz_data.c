/* fuzz_data.c - the dataset readers that take files of bytes: IDX (MNIST) and CIFAR folders, opened as
 * vit-train and vit-data open them (vt_dataset_open_opts, format detected from the folder), then every
 * sample read. An opened dataset must deliver what it promises: samples of its shape, labels below its
 * class count. */
#include "fuzz.h"
#include "data/data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* open split of the dataset at dir with o, read every sample (at most 256) and check it */
void vt_fuzz_read_dataset(const char *target, const char *dir, const char *split, const vt_data_options *o)
{
    vt_dataset *ds = NULL;
    if (vt_dataset_open_opts(&ds, dir, split, o) != VT_OK) {
        vt_fuzz_require(ds == NULL, target, "a failed open returned a dataset");
        vt_fuzz_require_msg(target);
        return;
    }
    if (!ds) return;   /* no such split */
    vt_fuzz_require(ds->count >= 1 && ds->h >= 1 && ds->w >= 1 && ds->c >= 1 && ds->c <= 4 && ds->num_classes >= 1,
                    target, "an opened dataset has no samples, classes or shape");
    size_t sz = (size_t)ds->h * ds->w * ds->c;
    uint8_t *pix = malloc(sz);
    vt_fuzz_require(pix != NULL, target, "out of memory for one sample");
    for (int64_t i = 0; i < ds->count && i < 256; i++) {
        int label = -1;
        if (ds->read(ds, i, pix, &label) != VT_OK) {
            vt_fuzz_require_msg(target);
            continue;
        }
        vt_fuzz_require(label >= 0 && label < ds->num_classes, target, "a sample's label is outside the classes");
    }
    free(pix);
    vt_dataset_close(ds);
}

/* IDX: images file, "IDXSPLIT", labels file[, "IDXSPLIT", classes.txt]; either file may be gzip'd */
int vt_fuzz_idx(const uint8_t *data, size_t size)
{
    const uint8_t *part[3];
    size_t len[3];
    int n = vt_fuzz_split(data, size, "IDXSPLIT", part, len, 3);
    const char *dir = vt_fuzz_subdir("fashion-idx");
    vt_fuzz_write(0, dir, "train-images-idx3-ubyte", part[0], len[0]);
    if (n > 1) vt_fuzz_write(1, dir, "train-labels-idx1-ubyte", part[1], len[1]);
    if (n > 2) vt_fuzz_write(2, dir, "classes.txt", part[2], len[2]);
    vt_data_options o = {0};
    vt_fuzz_read_dataset("idx", dir, "train", &o);
    vt_fuzz_read_dataset("idx", dir, "test", &o);
    return 0;
}

/* CIFAR: the first byte picks the layout (0: CIFAR-10, 1: CIFAR-100, 2: CIFAR-100 coarse labels), then up to
 * five batch files separated by "CIFSPLIT" (CIFAR-10: data_batch_1..5, a missing one a copy of the last
 * given; CIFAR-100: train.bin, test.bin), then the class-names file */
int vt_fuzz_cifar(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] % 3;
    const uint8_t *part[7];
    size_t len[7];
    int n = vt_fuzz_split(data + 1, size - 1, "CIFSPLIT", part, len, 7);
    const char *dir = vt_fuzz_subdir("cifar");
    vt_data_options o = {0};
    o.cifar_coarse = mode == 2;
    int batches = mode == 0 ? 5 : 2;
    for (int b = 0; b < batches; b++) {
        char name[32];
        if (mode == 0) snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        else snprintf(name, sizeof name, b == 0 ? "train.bin" : "test.bin");
        int k = b < n ? b : n - 1;
        if (mode != 0 && b >= n) break;
        vt_fuzz_write(b, dir, name, part[k], len[k]);
    }
    if (n > batches)
        vt_fuzz_write(6, dir, mode == 0 ? "batches.meta.txt" : mode == 1 ? "fine_label_names.txt" : "coarse_label_names.txt",
                      part[batches], len[batches]);
    vt_fuzz_read_dataset("cifar", dir, "train", &o);
    vt_fuzz_read_dataset("cifar", dir, "test", &o);
    return 0;
}
