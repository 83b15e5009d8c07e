/* dataset.c - one opener that recognises the format from the path. */
#include "data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vt_idx_open(vt_dataset **out, const char *dir, const char *split);
int vt_cifar_open(vt_dataset **out, const char *dir, const char *split);
int vt_h5data_open(vt_dataset **out, const char *path, const char *split, const char *images_key, const char *labels_key);

static bool exists(const char *dir, const char *name)
{
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

int vt_dataset_open(vt_dataset **out, const char *path, const char *split, const char *format,
                    const char *images_key, const char *labels_key)
{
    *out = NULL;
    struct stat st;
    if (!path || !*path) return vt_err("no dataset path given ([data] path)");
    if (stat(path, &st) != 0) return vt_err("%s: no such file or folder", path);
    const char *fmt = format && *format ? format : "auto";
    if (strcmp(fmt, "auto") == 0) {
        if (S_ISREG(st.st_mode)) fmt = "hdf5";
        else if (exists(path, "train-images-idx3-ubyte") || exists(path, "train-images-idx3-ubyte.gz") ||
                 exists(path, "t10k-images-idx3-ubyte") || exists(path, "t10k-images-idx3-ubyte.gz"))
            fmt = "idx";
        else if (exists(path, "data_batch_1.bin") || exists(path, "train.bin") || exists(path, "test_batch.bin"))
            fmt = "cifar";
        else
            return vt_err("%s: cannot tell the dataset format (no IDX files, no CIFAR batches; an image folder "
                          "needs format = folder, not available in this build)", path);
    }
    int r;
    if (strcmp(fmt, "idx") == 0) r = vt_idx_open(out, path, split);
    else if (strcmp(fmt, "cifar") == 0) r = vt_cifar_open(out, path, split);
    else if (strcmp(fmt, "hdf5") == 0)
        r = vt_h5data_open(out, path, split, images_key ? images_key : "images", labels_key ? labels_key : "labels");
    else return vt_err("%s: dataset format '%s' is not available in this build (idx, cifar, hdf5)", path, fmt);
    return r;
}

void vt_dataset_close(vt_dataset *ds)
{
    if (ds && ds->close) ds->close(ds);
}
