/* dataset.c - one opener that recognises the format from the path, and what every format shares. */
#include "data_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool exists(const char *dir, const char *name)
{
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static bool has_idx(const char *dir)
{
    static const char *names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte",
                                  "t10k-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (exists(dir, names[k])) return true;
    return false;
}

static bool has_cifar(const char *dir)
{
    return exists(dir, "data_batch_1.bin") || exists(dir, "train.bin") || exists(dir, "test_batch.bin") ||
           exists(dir, "test.bin");
}

/* an IDX file named directly: its folder is the dataset */
static bool idx_file_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strstr(b, "-idx3-ubyte") || strstr(b, "-idx1-ubyte");
}

int vt_dataset_open_opts(vt_dataset **out, const char *path, const char *split, const vt_data_options *o)
{
    *out = NULL;
    vt_data_options def = {0};
    if (!o) o = &def;
    struct stat st;
    if (!path || !*path) return vt_err("no dataset path given ([data] path)");
    if (!split || (strcmp(split, "train") && strcmp(split, "test")))
        return vt_err("%s: split '%s' (expected train or test)", path, split ? split : "(null)");
    if (stat(path, &st) != 0) return vt_err("%s: no such file or folder", path);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    const char *fmt = o->format && *o->format ? o->format : "auto";
    if (strcmp(fmt, "auto") == 0) {
        if (S_ISREG(st.st_mode) && idx_file_name(path)) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
            fmt = "idx";
        } else if (S_ISREG(st.st_mode)) fmt = "hdf5";
        else if (has_idx(path)) fmt = "idx";
        else if (has_cifar(path)) fmt = "cifar";
        else if (vt_folder_detect(path)) fmt = "folder";
        else
            return vt_err("%s: cannot tell the dataset format: expected IDX files (train-images-idx3-ubyte[.gz]), "
                          "CIFAR batches (data_batch_1.bin or train.bin) or class folders of .jpg/.png images, "
                          "found none of them", path);
    }
    if (strcmp(fmt, "idx") == 0) return vt_idx_open(out, dir, split, o);
    if (strcmp(fmt, "cifar") == 0) return vt_cifar_open(out, path, split, o);
    if (strcmp(fmt, "hdf5") == 0) return vt_h5data_open(out, path, split, o);
    if (strcmp(fmt, "folder") == 0) return vt_folder_open(out, path, split, o);
    return vt_err("%s: dataset format '%s' unknown (expected auto, idx, cifar, hdf5 or folder)", path, fmt);
}

int vt_dataset_open(vt_dataset **out, const char *path, const char *split, const char *format,
                    const char *images_key, const char *labels_key)
{
    vt_data_options o = {0};
    o.format = format;
    o.images_key = images_key;
    o.labels_key = labels_key;
    return vt_dataset_open_opts(out, path, split, &o);
}

void vt_dataset_close(vt_dataset *ds)
{
    if (ds && ds->close) ds->close(ds);
}

vt_dataset *vt_dataset_alloc(const char *path, const char *format)
{
    vt_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        vt_err("%s: out of memory", path);
        return NULL;
    }
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->format = format;
    return ds;
}

void vt_dataset_free_base(vt_dataset *ds)
{
    if (!ds) return;
    vt_free_names(ds->class_names, ds->num_classes);
    free(ds);
}

void vt_free_names(char **names, int count)
{
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

int vt_read_names(const char *path, char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? VT_OK : vt_err("%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    char **v = NULL;
    int n = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = 0;
        if (len == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) goto oom;
            v = nv;
        }
        if (!(v[n] = strdup(line))) goto oom;
        n++;
    }
    fclose(f);
    *names = v;
    *count = n;
    return VT_OK;
oom:
    fclose(f);
    vt_free_names(v, n);
    return vt_err("%s: out of memory", path);
}

void vt_dataset_note_skip(vt_dataset *ds, const char *why)
{
    if (__atomic_fetch_add(&ds->skipped, 1, __ATOMIC_RELAXED) == 0)
        snprintf(ds->skip_note, sizeof ds->skip_note, "%s", why);
}
