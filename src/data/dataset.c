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

/* an IDX file named directly: its folder is the dataset */
static bool idx_file_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strstr(b, "-idx3-ubyte") || strstr(b, "-idx1-ubyte");
}

bool vt_idx_detect(const char *path, const struct stat *st)
{
    if (S_ISREG(st->st_mode)) return idx_file_name(path);
    static const char *names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte",
                                  "t10k-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (exists(path, names[k])) return true;
    return false;
}

int vt_idx_open_path(vt_dataset **out, const char *path, const char *split, const vt_data_options *o)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && idx_file_name(path)) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    return vt_idx_open(out, dir, split, o);
}

bool vt_cifar_detect(const char *path, const struct stat *st)
{
    (void)st;
    return exists(path, "data_batch_1.bin") || exists(path, "train.bin") || exists(path, "test_batch.bin") ||
           exists(path, "test.bin");
}

/* any other file: the HDF5 reader says when it is not one */
bool vt_h5data_detect(const char *path, const struct stat *st)
{
    (void)path;
    return S_ISREG(st->st_mode);
}

bool vt_folder_detect_path(const char *path, const struct stat *st)
{
    return S_ISDIR(st->st_mode) && vt_folder_detect(path);
}

typedef struct {
    const char *name;
    bool (*detect)(const char *path, const struct stat *st);
    int (*open)(vt_dataset **out, const char *path, const char *split, const vt_data_options *o);
    const char *what;
} data_format;

#define VT_DATA_FORMAT_ENTRY(name, detect, open, what) {name, detect, open, what},
static const data_format formats[] = {VT_DATA_FORMATS(VT_DATA_FORMAT_ENTRY)};
#define NFORMATS (sizeof formats / sizeof *formats)

/* "A, B or C" of the formats' descriptions (those that have one) or names */
static void list_formats(bool names, char *buf, size_t n)
{
    size_t used = 0, count = 0, total = 0;
    for (size_t i = 0; i < NFORMATS; i++) total += names || formats[i].what;
    buf[0] = '\0';
    for (size_t i = 0; i < NFORMATS && used < n; i++) {
        const char *w = names ? formats[i].name : formats[i].what;
        if (!w) continue;
        count++;
        int k = snprintf(buf + used, n - used, "%s%s", count == 1 ? "" : count == total ? " or " : ", ", w);
        used = k < 0 ? n : used + (size_t)k;
    }
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
    const char *fmt = o->format && *o->format ? o->format : "auto";
    const bool detect = strcmp(fmt, "auto") == 0;
    for (size_t i = 0; i < NFORMATS; i++)
        if (detect ? formats[i].detect(path, &st) : strcmp(fmt, formats[i].name) == 0)
            return formats[i].open(out, path, split, o);
    char list[512];
    list_formats(!detect, list, sizeof list);
    if (detect)
        return vt_err("%s: cannot tell the dataset format: expected %s, found none of them", path, list);
    return vt_err("%s: dataset format '%s' unknown (expected auto, %s)", path, fmt, list);
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
