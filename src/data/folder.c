/* folder.c - ImageNet-style image folders: root/<class>/<file>.jpg|.jpeg|.png (train only), or
 * root/train/<class>/... with root/val/ (or root/test/) as the test split; for pretraining (labels not read), a
 * folder with images directly in it (root/ or root/train/) is read without classes: all its images and its
 * subfolders', in the same order, label 0. Classes are the
 * training folder's subfolders sorted by name (byte order, as Python's sorted()); a class's images are
 * those in its folder and its subfolders, in torchvision ImageFolder's order (folders by whole path,
 * files by name; hidden files and folders left out). Every file's header is probed at open: an undecodable one is refused (the default) or
 * skipped; a file that fails later, at full decode, is refused or replaced by the next sample that
 * decodes. Files are recognised by their first bytes, so a PNG named .jpg still decodes. Samples are
 * delivered at one size: image_h x image_w when given, else the images' own when they all agree (and,
 * when auto_h/w are given, do not exceed them on both sides), else auto_h x auto_w (default 256), by
 * shorter-side resize + center crop, JPEGs decoded at a reduced DCT scale when that is enough. */
#include "data_internal.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char root[1024];   /* the split's folder */
    char *pool;        /* "class/file" strings */
    size_t *off;       /* count: offsets into pool */
    int *labels;       /* count */
    uint8_t *failed;   /* count (skip mode): 1 once a sample's full decode failed; set atomically */
    vt_bad_policy bad;
} folder_impl;

typedef struct {
    char **v;
    int n, cap;
} strlist;

static int push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, sizeof *nv * (size_t)nc);
        if (!nv) return VT_ERR;
        l->v = nv;
        l->cap = nc;
    }
    return (l->v[l->n] = strdup(s)) ? (l->n++, VT_OK) : VT_ERR;
}

static void strlist_free(strlist *l)
{
    vt_free_names(l->v, l->n);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_image_name(const char *n) { return vt_is_jpeg_name(n) || vt_is_png_name(n); }

/* sorted non-hidden entries of dir: subfolders (dirs true) or image files (dirs false) */
static int list_dir(const char *dir, bool dirs, strlist *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return vt_err("%s: cannot list: %s", dir, strerror(errno));
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        bool isd;
        if (e->d_type == DT_DIR) isd = true;
        else if (e->d_type == DT_REG) isd = false;
        else {
            isd = snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p && is_dir(p);
        }
        if (isd != dirs || (!dirs && !is_image_name(e->d_name))) continue;
        if (push(out, e->d_name) != VT_OK) {
            closedir(d);
            strlist_free(out);
            return vt_err("%s: out of memory listing", dir);
        }
    }
    closedir(d);
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return VT_OK;
}

/* subfolders of a class are followed to this depth; deeper is an error naming the folder */
enum { MAX_DEPTH = 32 };

/* does dir, or a subfolder of it (to depth levels), hold an image file? */
static bool has_image_below(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) found = e->d_name[0] != '.' && is_image_name(e->d_name);
    closedir(d);
    if (found || depth <= 0) return found;
    strlist sub;
    if (list_dir(dir, true, &sub) != VT_OK) return false;
    char p[4096];
    for (int k = 0; k < sub.n && !found; k++)
        if (snprintf(p, sizeof p, "%s/%s", dir, sub.v[k]) < (int)sizeof p) found = has_image_below(p, depth - 1);
    strlist_free(&sub);
    return found;
}

/* does dir hold at least one subfolder with an image file in it or below it (a class folder)? */
static bool has_class_dirs(const char *dir)
{
    strlist sub;
    if (list_dir(dir, true, &sub) != VT_OK) return false;
    bool found = false;
    char p[4096];
    for (int k = 0; k < sub.n && !found; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub.v[k]);
        found = has_image_below(p, MAX_DEPTH);   /* as deep as scanning goes (it stops at the first image) */
    }
    strlist_free(&sub);
    return found;
}

static bool split_layout(const char *root)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/train", root);
    return is_dir(p) && (has_class_dirs(p) || has_image_below(p, 0));
}

/* class folders, train/ (holding them or images), or images directly in dir (a folder without classes) */
bool vt_folder_detect(const char *dir) { return split_layout(dir) || has_class_dirs(dir) || has_image_below(dir, 0); }

/* 'j' JPEG, 'p' PNG by the first bytes; 0 neither; VT_ERR cannot read */
static int sniff(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vt_err("%s: cannot open: %s", path, strerror(errno));
    uint8_t b[8] = {0};
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return 'j';
    if (n == 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return 'p';
    return vt_err("%s: neither a JPEG nor a PNG (expected FF D8 FF or the PNG signature, found %s)", path,
                  n < 8 ? "a file of fewer than 8 bytes" : "other bytes");
}

/* the header of the image at path; a size of more than cap pixels (0: the default) is refused before any
 * decode */
static int probe(const char *path, vt_image_info *info, int64_t cap)
{
    int k = sniff(path);
    if (k == VT_ERR) return VT_ERR;
    int r = k == 'j' ? vt_jpeg_probe(path, info) : vt_png_probe(path, info);
    if (r == VT_OK && (info->w < 1 || info->h < 1 || (int64_t)info->w * info->h > VT_IMAGE_MAX_PIXELS))
        return vt_err("%s: image size %dx%d (expected 1 to 2^28 pixels)", path, info->w, info->h);
    if (cap <= 0) cap = VT_IMAGE_DEFAULT_PIXELS;
    int64_t px = (int64_t)info->w * info->h;
    if (r == VT_OK && px > cap)
        r = vt_err("%s: image size %dx%d is %lld pixels, over [data] max_image_pixels = %lld (a guard against files "
                   "that decode to far more memory than they take, as Pillow's MAX_IMAGE_PIXELS: decoded whole this one "
                   "takes %lld MB; raise the key, or vit-data's --max-image-pixels, up to 268435456 to accept it)",
                   path, info->w, info->h, (long long)px, (long long)cap, (long long)(px * (info->gray ? 1 : 3) >> 20));
    return r;
}

/* decode file k into pixels (h, w, c) */
static int decode(vt_dataset *ds, folder_impl *m, int64_t k, uint8_t *pixels)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", m->root, m->pool + m->off[k]);
    int kind = sniff(p);
    if (kind == VT_ERR) return VT_ERR;
    uint8_t *img;
    int h, w;
    int r = kind == 'j' ? vt_jpeg_decode(p, ds->c, ds->h, ds->w, &img, &h, &w) : vt_png_decode(p, ds->c, ds->h, ds->w, &img, &h, &w);
    if (r != VT_OK) return VT_ERR;
    if (h == ds->h && w == ds->w) memcpy(pixels, img, (size_t)h * w * ds->c);
    else r = vt_image_fit_u8(img, h, w, ds->c, pixels, ds->h, ds->w);
    free(img);
    return r;
}

/* pixels (h, w, c) of sample i (or, skipping, of the next sample that decodes) */
static int folder_read(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label)
{
    folder_impl *m = ds->impl;
    if (i < 0 || i >= ds->count) return vt_err("%s: sample %lld out of range [0, %lld)", ds->path, (long long)i, (long long)ds->count);
    int attempt = 0;
    for (; attempt < 16 && attempt < ds->count; attempt++) {
        int64_t k = (i + attempt) % ds->count;
        if (m->failed && __atomic_load_n(&m->failed[k], __ATOMIC_RELAXED)) continue;   /* known bad: no retry */
        if (decode(ds, m, k, pixels) == VT_OK) {
            *label = m->labels[k];
            return VT_OK;
        }
        if (m->bad == VT_BAD_REFUSE) return VT_ERR;
        /* each bad file counted once, however often it is met */
        if (!m->failed || __atomic_exchange_n(&m->failed[k], 1, __ATOMIC_RELAXED) == 0) vt_dataset_note_skip(ds, vt_errmsg());
    }
    return vt_err("%s: %d images in a row from sample %lld fail to decode (first: %s)", ds->path, attempt, (long long)i,
                  ds->skip_note);
}

static void folder_close(vt_dataset *ds)
{
    folder_impl *m = ds->impl;
    if (m) {
        free(m->pool);
        free(m->off);
        free(m->labels);
        free(m->failed);
        free(m);
    }
    vt_dataset_free_base(ds);
}

/* the samples: every image of every class folder, probed; fills m and the shape statistics */
typedef struct {
    size_t pool_len, pool_cap;
    int64_t n, cap;
    int first_h, first_w;
    bool uniform, all_gray;
} scan_t;

static int add_sample(folder_impl *m, scan_t *s, const char *rel, int label)
{
    size_t len = strlen(rel) + 1;
    if (s->pool_len + len > s->pool_cap) {
        size_t nc = (s->pool_len + len) * 2;
        char *np = realloc(m->pool, nc);
        if (!np) return vt_err("out of memory");
        m->pool = np;
        s->pool_cap = nc;
    }
    if (s->n == s->cap) {
        int64_t nc = s->cap ? s->cap * 2 : 1024;
        size_t *no = realloc(m->off, sizeof *no * (size_t)nc);
        if (no) m->off = no;
        int *nl = no ? realloc(m->labels, sizeof *nl * (size_t)nc) : NULL;
        if (nl) m->labels = nl;
        if (!no || !nl) return vt_err("out of memory");
        s->cap = nc;
    }
    memcpy(m->pool + s->pool_len, rel, len);
    m->off[s->n] = s->pool_len;
    m->labels[s->n++] = label;
    s->pool_len += len;
    return VT_OK;
}

/* the folders of a split seen so far (device, inode): the split's folder and its class folders first, so
 * that a symlink back up, or into another class, is not walked as part of this class; then each class's */
typedef struct {
    dev_t *dev;
    ino_t *ino;
    int n, cap;
} visited_t;

/* adds dir; false when it was there already (or cannot be read: the caller lists it and says why) */
static bool visit(visited_t *v, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) return true;
    for (int k = 0; k < v->n; k++)
        if (v->dev[k] == st.st_dev && v->ino[k] == st.st_ino) return false;
    if (v->n == v->cap) {
        int nc = v->cap ? 2 * v->cap : 256;
        dev_t *nd = realloc(v->dev, sizeof *nd * (size_t)nc);
        if (nd) v->dev = nd;
        ino_t *ni = nd ? realloc(v->ino, sizeof *ni * (size_t)nc) : NULL;
        if (ni) v->ino = ni;
        if (!nd || !ni) return true;   /* out of memory: no loop check for this one (depth still bounds it) */
        v->cap = nc;
    }
    v->dev[v->n] = st.st_dev;
    v->ino[v->n++] = st.st_ino;
    return true;
}

/* sub (relative to the root) and its subfolders, each real folder once, at most MAX_DEPTH deep, into dirs */
static int gather_dirs(folder_impl *m, const char *sub, int depth, bool top, visited_t *seen, strlist *dirs)
{
    char dir[4096], rel[4096];
    if (snprintf(dir, sizeof dir, "%s%s%s", m->root, *sub ? "/" : "", sub) >= (int)sizeof dir)   /* "": the root */
        return vt_err("%s/%s: path too long", m->root, sub);
    if (!top && !visit(seen, dir)) return VT_OK;   /* a link to a folder seen (the class's own is pre-visited) */
    if (depth > MAX_DEPTH) return vt_err("%s: folders nested deeper than %d levels in a class", dir, MAX_DEPTH);
    if (push(dirs, sub) != VT_OK) return vt_err("out of memory listing %s", dir);
    strlist subs;
    if (list_dir(dir, true, &subs) != VT_OK) return VT_ERR;
    int r = VT_OK;
    for (int k = 0; r == VT_OK && k < subs.n; k++) {
        if (snprintf(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", subs.v[k]) >= (int)sizeof rel)
            r = vt_err("%s/%s: path too long", dir, subs.v[k]);
        else r = gather_dirs(m, rel, depth + 1, false, seen, dirs);
    }
    strlist_free(&subs);
    return r;
}

/* the images of class folder cls and its subfolders as torchvision's ImageFolder orders them
 * (sorted(os.walk(...)): folders by their whole path, files sorted within each); *found counts the files */
static int scan_class(vt_dataset *ds, folder_impl *m, scan_t *s, const char *cls, int label, const vt_data_options *o,
                      visited_t *seen)
{
    strlist dirs = {0};
    int r = gather_dirs(m, cls, 0, true, seen, &dirs);
    if (r == VT_OK && dirs.n > 1) qsort(dirs.v, (size_t)dirs.n, sizeof *dirs.v, cmp_str);
    int64_t found = 0;
    const int64_t before = s->n;
    char dir[4096], p[4200], rel[4200];
    for (int d = 0; r == VT_OK && d < dirs.n; d++) {
        snprintf(dir, sizeof dir, "%s%s%s", m->root, *dirs.v[d] ? "/" : "", dirs.v[d]);
        strlist files;
        if (list_dir(dir, false, &files) != VT_OK) {
            r = VT_ERR;
            break;
        }
        for (int k = 0; r == VT_OK && k < files.n; k++) {
            snprintf(p, sizeof p, "%s/%s", dir, files.v[k]);
            found++;
            vt_image_info info;
            if (probe(p, &info, o->max_image_pixels) != VT_OK) {
                if (o->bad_images != VT_BAD_SKIP) r = VT_ERR;
                else vt_dataset_note_skip(ds, vt_errmsg());
                continue;
            }
            if (s->n == 0) s->first_h = info.h, s->first_w = info.w;
            s->uniform = s->uniform && info.h == s->first_h && info.w == s->first_w;
            s->all_gray = s->all_gray && info.gray;
            if (snprintf(rel, sizeof rel, "%s%s%s", dirs.v[d], *dirs.v[d] ? "/" : "", files.v[k]) >= (int)sizeof rel)
                r = vt_err("%s: path too long", p);
            else r = add_sample(m, s, rel, label);
        }
        strlist_free(&files);
    }
    strlist_free(&dirs);
    if (r == VT_OK && found > 0 && s->n == before)   /* skip mode: the class would be trained on nothing */
        r = vt_err("%s%s%s: none of its %lld image%s decodes (first failure: %s)", m->root, *cls ? "/" : "", cls,
                   (long long)found, found == 1 ? "" : "s", ds->skip_note);
    if (r == VT_OK && found == 0)
        r = vt_err("%s%s%s: empty %sfolder (expected .jpg, .jpeg or .png files in it or its subfolders, found none)",
                   m->root, *cls ? "/" : "", cls, *cls ? "class " : "");
    return r;
}

/* the split's folder, or "" when the split does not exist */
static void split_dir(const char *root, const char *split, char *out, size_t n)
{
    bool layout = split_layout(root);
    *out = 0;
    if (strcmp(split, "train") == 0) snprintf(out, n, layout ? "%s/train" : "%s", root);
    else if (layout) {
        static const char *names[] = {"val", "test"};
        for (int k = 0; k < 2 && !*out; k++) {
            snprintf(out, n, "%s/%s", root, names[k]);
            if (!is_dir(out)) *out = 0;
        }
    }
}

static int scan(vt_dataset *ds, folder_impl *m, scan_t *s, const char *root, const vt_data_options *o)
{
    char train[2048];
    split_dir(root, "train", train, sizeof train);
    strlist cls, here = {0};
    if (list_dir(train, true, &cls) != VT_OK) return VT_ERR;
    int r = VT_OK;
    if (has_image_below(train, 0) && (o->unlabelled || cls.n == 0)) {   /* images in it: a folder without classes */
        strlist_free(&cls);
        if (!o->unlabelled)
            return vt_err("%s: images directly in the folder and no class folders: a folder of images without classes, "
                          "which only pretraining reads ([pretrain] objective = mae, masked_patch_color or "
                          "masked_patch_pixels); supervised training expects class folders (%s/<class>/<image>.jpg|.png)",
                          train, train);
        visited_t seen = {0};
        visit(&seen, m->root);
        r = scan_class(ds, m, s, "", 0, o, &seen);   /* every image of the split's folder and its subfolders, label 0 */
        free(seen.dev);
        free(seen.ino);
        return r;
    }
    if (cls.n == 0) r = vt_err("%s: expected class folders (<class>/<image>.jpg|.png), found none", train);
    else if (o->num_classes > 0 && cls.n > o->num_classes)
        r = vt_err("%s: %d class folders, expected at most %d (num_classes)", train, cls.n, o->num_classes);
    bool test = strcmp(m->root, train) != 0;
    if (r == VT_OK && test) {   /* the test split's classes must be training classes */
        r = list_dir(m->root, true, &here);
        for (int k = 0; r == VT_OK && k < here.n; k++)
            if (!bsearch(&here.v[k], cls.v, (size_t)cls.n, sizeof *cls.v, cmp_str))
                r = vt_err("%s/%s: class folder not among the %d training classes of %s", m->root, here.v[k], cls.n, train);
    }
    char p[4096];
    visited_t seen = {0};
    visit(&seen, m->root);
    for (int k = 0; k < cls.n; k++) {
        snprintf(p, sizeof p, "%s/%s", m->root, cls.v[k]);
        visit(&seen, p);
    }
    for (int k = 0; r == VT_OK && k < cls.n; k++) {
        snprintf(p, sizeof p, "%s/%s", m->root, cls.v[k]);
        if (test && !is_dir(p)) continue;   /* a class without test images */
        r = scan_class(ds, m, s, cls.v[k], k, o, &seen);
    }
    free(seen.dev);
    free(seen.ino);
    if (r == VT_OK && s->n == 0)
        r = ds->skip_note[0] ? vt_err("%s: no decodable image (first failure: %s)", m->root, ds->skip_note)
                             : vt_err("%s: no image files (expected <class>/<image>.jpg|.png)", m->root);
    if (r == VT_OK) {
        ds->num_classes = cls.n;
        ds->class_names = cls.v;   /* ownership moves */
        cls.v = NULL;
        cls.n = 0;
    }
    strlist_free(&cls);
    strlist_free(&here);
    return r;
}

int vt_folder_open(vt_dataset **out, const char *root, const char *split, const vt_data_options *o)
{
    *out = NULL;
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return vt_err("%s: %d channels asked for image folders (expected 1 or 3)", root, o->channels);
    if (o->image_h < 0 || o->image_w < 0 || o->image_h > 16384 || o->image_w > 16384 || o->auto_h < 0 ||
        o->auto_w < 0 || o->auto_h > 16384 || o->auto_w > 16384)
        return vt_err("%s: image size %dx%d asked for (expected 1..16384)", root,
                      o->image_h || o->image_w ? o->image_w : o->auto_w, o->image_h || o->image_w ? o->image_h : o->auto_h);
    folder_impl *m = calloc(1, sizeof *m);
    if (!m) return vt_err("out of memory");
    split_dir(root, split, m->root, sizeof m->root);
    if (!*m->root) {   /* no test split */
        free(m);
        return VT_OK;
    }
    vt_dataset *ds = vt_dataset_alloc(root, "folder");
    scan_t s = {0};
    s.uniform = s.all_gray = true;
    if (!ds || scan(ds, m, &s, root, o) != VT_OK) {
        free(m->pool);
        free(m->off);
        free(m->labels);
        free(m);
        vt_dataset_free_base(ds);
        return VT_ERR;
    }
    m->bad = o->bad_images;
    if (m->bad == VT_BAD_SKIP && !(m->failed = calloc((size_t)s.n, 1))) {
        ds->impl = m;
        folder_close(ds);   /* frees m too */
        return vt_err("%s: out of memory", root);
    }
    ds->count = s.n;
    if (o->image_h > 0 || o->image_w > 0) {
        ds->h = o->image_h > 0 ? o->image_h : o->image_w;
        ds->w = o->image_w > 0 ? o->image_w : o->image_h;
    } else {
        int ah = o->auto_h > 0 ? o->auto_h : o->auto_w > 0 ? o->auto_w : 256;
        int aw = o->auto_w > 0 ? o->auto_w : ah;
        /* one size for all: kept, unless auto_h/w ask for less (then decoding smaller saves time) */
        bool own = s.uniform && (o->auto_h <= 0 && o->auto_w <= 0 ? true : s.first_h <= ah || s.first_w <= aw);
        ds->h = own ? s.first_h : ah;
        ds->w = own ? s.first_w : aw;
    }
    ds->c = o->channels ? o->channels : s.all_gray ? 1 : 3;
    ds->read = folder_read;
    ds->close = folder_close;
    ds->impl = m;
    *out = ds;
    return VT_OK;
}
