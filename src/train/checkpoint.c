/* checkpoint.c - versioned, self-describing HDF5 checkpoints written atomically; each tensor's chunks carry
 * Fletcher-32 checksums (h5write.c), verified by every read. */
#include "train.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return vt_err("%s: cannot open for fsync: %s", path, strerror(errno));
    int r = fsync(fd);
    close(fd);
    if (r != 0) return vt_err("%s: fsync failed: %s", path, strerror(errno));
    return VT_OK;
}

static int write_state(vt_h5id f, const vt_train_state *s)
{
    int r = vt_h5_mkgroup(f, "/state");
    r |= vt_h5_write_attr_i64(f, "/state", "step", s->step);
    r |= vt_h5_write_attr_i64(f, "/state", "epoch", s->epoch);
    r |= vt_h5_write_attr_i64(f, "/state", "batch_in_epoch", s->batch_in_epoch);
    r |= vt_h5_write_attr_i64(f, "/state", "seed", s->seed);
    r |= vt_h5_write_attr_f64(f, "/state", "best_top1", s->best_metric);
    r |= vt_h5_write_attr_i64(f, "/state", "best_step", s->best_step);
    if (s->train_images > 0) r |= vt_h5_write_attr_i64(f, "/state", "train_images", s->train_images);
    int64_t rng[4];
    for (int i = 0; i < 4; i++) rng[i] = (int64_t)s->rng.s[i];
    r |= vt_h5_write_i64(f, "/state/rng", rng, 1, (int64_t[]){4});
    return r ? VT_ERR : VT_OK;
}

void vt_ckpt_path(const char *dir, int64_t step, char *out, size_t n)
{
    snprintf(out, n, "%s/ckpt-%09lld.h5", dir, (long long)step);
}

int vt_ckpt_write(const char *dir, const vt_vit *m, const vt_optim *o, const vt_train_state *s,
                  const char *config_text, int deflate, char *path_out, size_t n)
{
    char final[4096], tmp[4200];
    vt_ckpt_path(dir, s->step, final, sizeof final);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    vt_h5id f = vt_h5_create(tmp);
    if (f < 0) return VT_ERR;
    int r = VT_OK;
    r |= vt_h5_write_attr_str(f, "/", "format", VT_CKPT_FORMAT);
    r |= vt_h5_write_attr_i64(f, "/", "format_version", VT_CKPT_VERSION);
    r |= vt_h5_write_attr_str(f, "/", "library_version", "vit " VIT_VERSION);
    r |= vt_h5_mkgroup(f, "/model");
    if (r == VT_OK) r = vt_vit_write_attrs(f, "/model", &m->cfg);
    if (r == VT_OK) r = vt_vit_save_h5(m, f, "/model", deflate);
    if (r == VT_OK && o) r = vt_optim_save(o, f, "/optimizer");
    if (r == VT_OK && s->ema) {   /* the EMA model: the same tensors, the EMA's values */
        vt_vit e = *m;
        e.params.data = s->ema;
        r = vt_h5_mkgroup(f, "/ema");
        if (r == VT_OK) r = vt_vit_save_h5(&e, f, "/ema", deflate);
    }
    if (r == VT_OK) r = write_state(f, s);
    if (r == VT_OK) r = vt_h5_mkgroup(f, "/config");
    if (r == VT_OK) r = vt_h5_write_attr_str(f, "/config", "ini", config_text ? config_text : "");
    /* the last attribute written marks the file complete */
    if (r == VT_OK) r = vt_h5_write_attr_i64(f, "/", "complete", 1);
    if (r != VT_OK) {
        char first[512];   /* the first failure says most; closing may fail too */
        snprintf(first, sizeof first, "%s", vt_errmsg());
        vt_h5_close(f);
        vt_err("%s", first);
    } else {
        r = vt_h5_close(f);   /* a full disk may show only when the file is written out */
    }
    if (r != VT_OK) {
        unlink(tmp);
        return vt_err_prefix("writing checkpoint %s: ", final);
    }
    if (fsync_path(tmp, false) != VT_OK) {
        unlink(tmp);
        return VT_ERR;
    }
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return vt_err("%s: cannot rename to %s: %s", tmp, final, strerror(e));
    }
    if (fsync_path(dir, true) != VT_OK) return VT_ERR;
    if (path_out) snprintf(path_out, n, "%s", final);
    return VT_OK;
}

static int check_header(vt_h5id f, const char *path)
{
    char fmt[64];
    int64_t ver = 0, complete = 0;
    if (!vt_h5_has_attr(f, "/", "format") || vt_h5_attr_str(f, "/", "format", fmt, sizeof fmt) != VT_OK ||
        strcmp(fmt, VT_CKPT_FORMAT) != 0)
        return vt_err("%s: not a vit checkpoint (no format attribute '%s')", path, VT_CKPT_FORMAT);
    if (vt_h5_attr_i64(f, "/", "format_version", &ver) != VT_OK) return VT_ERR;
    if (ver != VT_CKPT_VERSION)
        return vt_err("%s: checkpoint format version %lld, this build reads version %d", path, (long long)ver,
                      VT_CKPT_VERSION);
    if (!vt_h5_has_attr(f, "/", "complete") || vt_h5_attr_i64(f, "/", "complete", &complete) != VT_OK || complete != 1)
        return vt_err("%s: incomplete checkpoint (the write did not finish)", path);
    return VT_OK;
}

/* a file that is not HDF5 but one of the weight files --init reads: say what it is and what to give instead */
static void not_hdf5_weights(const char *path)
{
    unsigned char b[9] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp) fclose(fp);
    uint64_t hl = 0;
    for (int k = 7; got == 9 && k >= 0; k--) hl = hl << 8 | b[k];
    const char *what = got == 9 && b[8] == '{' && hl > 1 && hl < (1ull << 32) ? "a safetensors weight file (a timm state_dict)"
                       : got >= 4 && memcmp(b, "PK\3\4", 4) == 0       ? "a zip archive (as Google's .npz weights)"
                                                                         : NULL;
    if (what)
        vt_err("%s: %s, not a vit checkpoint: give the HDF5 checkpoint vit-train wrote (<run folder>/ckpt-<step>.h5, "
               "e.g. runs/fashion_mnist/ckpt-000135000.h5); to start from these weights, train with vit-train "
               "--config FILE --init %s", path, what, path);
}

int vt_ckpt_model_config(const char *path, vt_vit_config *mc)
{
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) {
        not_hdf5_weights(path);
        return VT_ERR;
    }
    int r = check_header(f, path);
    vt_vit_config_defaults(mc);
    if (r == VT_OK) r = vt_vit_read_attrs(f, "/model", mc, true);   /* older files lack fc_norm: false */
    vt_h5_close(f);
    if (r != VT_OK) return VT_ERR;
    if (vt_vit_config_check(mc) != VT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vt_errmsg());
        return vt_err("%s: bad model description: %s", path, strncmp(msg, "model: ", 7) == 0 ? msg + 7 : msg);
    }
    return VT_OK;
}

static int arch_diff(const char *path, const char *key, const char *ck, const char *cfg, bool whole)
{
    /* timm's fc_norm goes with average pooling: say so where the config would keep class-token pooling */
    const char *also = strcmp(key, "fc_norm") == 0 && strcmp(ck, "true") == 0 ? "; timm uses it with pool = avg" : "";
    if (strcmp(key, "init_values") == 0)   /* LayerScale or not: the value itself only initialises */
        return vt_err("%s: the model in the file has %s, the config %s (set [model] init_values %s %s)", path,
                      strcmp(ck, "0") ? "LayerScale (blocks.*.ls1/ls2.gamma)" : "no LayerScale",
                      strcmp(cfg, "0") ? "LayerScale" : "none", strcmp(ck, "0") ? "> 0, e.g. 1e-6 (DeiT-III)," : "= 0",
                      whole ? "to continue that run" : "to start from its weights");
    return vt_err("%s: the model in the file has [model] %s = %s, the config %s (set %s = %s %s%s)", path, key, ck, cfg,
                  key, ck, whole ? "to continue that run" : "to start from its weights", also);
}

int vt_ckpt_check_arch(const char *path, const vt_vit_config *ck, const vt_vit_config *mc, bool whole)
{
    const struct { const char *key; double a, b; bool need; } num[] = {
        {"depth", ck->depth, mc->depth, true},
        {"embed_dim", ck->embed_dim, mc->embed_dim, true},
        {"num_heads", ck->num_heads, mc->num_heads, true},
        {"patch_size", ck->patch, mc->patch, true},
        {"in_chans", ck->in_chans, mc->in_chans, true},
        {"mlp_ratio", ck->mlp_ratio, mc->mlp_ratio, true},
        {"layer_norm_eps", ck->ln_eps, mc->ln_eps, true},
        {"img_h", ck->img_h, mc->img_h, whole},
        {"img_w", ck->img_w, mc->img_w, whole},
        {"num_classes", ck->num_classes, mc->num_classes, whole},
        {"reg_tokens", ck->reg_tokens, mc->reg_tokens, true},
    };
    char a[64], b[64];
    for (size_t i = 0; i < sizeof num / sizeof *num; i++)
        if (num[i].need && num[i].a != num[i].b) {
            const bool close = (snprintf(a, sizeof a, "%g", num[i].a), snprintf(b, sizeof b, "%g", num[i].b),
                                strcmp(a, b) == 0);   /* short unless that hides the difference */
            if (close) snprintf(a, sizeof a, "%.17g", num[i].a), snprintf(b, sizeof b, "%.17g", num[i].b);
            return arch_diff(path, num[i].key, a, b, whole);
        }
    if (ck->pool != mc->pool) return arch_diff(path, "pool", vt_pool_name(ck->pool), vt_pool_name(mc->pool), whole);
    if (ck->fc_norm != mc->fc_norm)
        return arch_diff(path, "fc_norm", ck->fc_norm ? "true" : "false", mc->fc_norm ? "true" : "false", whole);
    if (ck->gelu != mc->gelu) return arch_diff(path, "gelu", vt_gelu_name(ck->gelu), vt_gelu_name(mc->gelu), whole);
    if (whole && ck->pretrain.kind != mc->pretrain.kind)   /* --init may change it: fine-tuning a pretrained encoder */
        return vt_err("%s: the model in the file is trained for %s, the config for %s (set [pretrain] objective = %s to "
                      "continue that run)", path, vt_objective_kind_name(ck->pretrain.kind),
                      vt_objective_kind_name(mc->pretrain.kind),
                      ck->pretrain.kind == VT_OBJ_CLASSIFY ? "none" : vt_objective_kind_name(ck->pretrain.kind));
    if (ck->no_embed_class != mc->no_embed_class)
        return arch_diff(path, "no_embed_class", ck->no_embed_class ? "true" : "false",
                         mc->no_embed_class ? "true" : "false", whole);
    if ((ck->init_values > 0) != (mc->init_values > 0))
        return arch_diff(path, "init_values", ck->init_values > 0 ? "1" : "0", mc->init_values > 0 ? "1" : "0", whole);
    return VT_OK;
}

int vt_ckpt_load(const char *path, vt_vit *m, vt_optim *o, vt_train_state *s, char **config_text)
{
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) return VT_ERR;
    int r = check_header(f, path);
    if (r == VT_OK) r = vt_vit_load_h5(m, f, "/model");
    if (r == VT_OK && o) {
        if (!vt_h5_exists(f, "/optimizer")) r = vt_err("%s: no optimizer state (a weights-only file?)", path);
        else r = vt_optim_load(o, f, "/optimizer");
    }
    if (r == VT_OK && s) {
        float *ema = s->ema;   /* the caller's buffer */
        memset(s, 0, sizeof *s);
        s->ema = ema;
        if (ema && vt_h5_exists(f, "/ema")) {
            vt_vit e = *m;
            e.params.data = ema;
            r = vt_vit_load_h5(&e, f, "/ema");
            s->ema_loaded = r == VT_OK;
        }
        r |= vt_h5_attr_i64(f, "/state", "step", &s->step);
        r |= vt_h5_attr_i64(f, "/state", "epoch", &s->epoch);
        r |= vt_h5_attr_i64(f, "/state", "batch_in_epoch", &s->batch_in_epoch);
        r |= vt_h5_attr_i64(f, "/state", "seed", &s->seed);
        r |= vt_h5_attr_f64(f, "/state", "best_top1", &s->best_metric);
        r |= vt_h5_attr_i64(f, "/state", "best_step", &s->best_step);
        if (r == VT_OK && vt_h5_has_attr(f, "/state", "train_images"))   /* written since format 1's first files */
            r = vt_h5_attr_i64(f, "/state", "train_images", &s->train_images);
        int64_t *rng = NULL;
        int nd;
        int64_t sh[8];
        if (r == VT_OK && vt_h5_read_i64(f, "/state/rng", &rng, &nd, sh) == VT_OK && nd == 1 && sh[0] == 4) {
            for (int i = 0; i < 4; i++) s->rng.s[i] = (uint64_t)rng[i];
        } else if (r == VT_OK) {
            r = vt_err("%s: /state/rng missing or not 4 values", path);
        }
        free(rng);
    }
    if (r == VT_OK && config_text) {
        char *buf = malloc(1 << 16);
        if (!buf) r = vt_err("out of memory");
        else if (vt_h5_attr_str(f, "/config", "ini", buf, 1 << 16) != VT_OK) {
            free(buf);
            r = VT_ERR;
        } else {
            *config_text = buf;
        }
    }
    vt_h5_close(f);
    if (r != VT_OK) return vt_err_prefix("loading checkpoint: ");
    return VT_OK;
}

bool vt_ckpt_note_unverified(FILE *out, const char *prefix, const char *path)
{
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) return false;
    bool old = vt_h5_exists(f, "/model/cls_token") && !vt_h5_checksummed(f, "/model/cls_token");
    vt_h5_close(f);
    if (old)
        fprintf(out, "%snote: %s was written without checksums (by a version before Fletcher-32 checksummed "
                "checkpoints): its tensors are loaded unverified\n", prefix, path);
    return old;
}

/* checkpoint file names: ckpt-<9 digit step>.h5 */
static bool parse_name(const char *name, long long *step)
{
    int len = 0;
    if (sscanf(name, "ckpt-%lld.h5%n", step, &len) != 1) return false;
    return len > 0 && name[len] == '\0';
}

typedef struct { long long step; char name[256]; } entry;

static int list_ckpts(const char *dir, entry **out, int *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? VT_OK : vt_err("%s: cannot list: %s", dir, strerror(errno));
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        long long st;
        if (!parse_name(e->d_name, &st) || strlen(e->d_name) >= sizeof((*out)->name)) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            entry *n = realloc(*out, (size_t)cap * sizeof *n);
            if (!n) {
                closedir(d);
                return vt_err("out of memory");
            }
            *out = n;
        }
        (*out)[*count].step = st;
        snprintf((*out)[*count].name, sizeof(*out)->name, "%s", e->d_name);
        (*count)++;
    }
    closedir(d);
    /* newest first */
    for (int i = 1; i < *count; i++)
        for (int j = i; j > 0 && (*out)[j].step > (*out)[j - 1].step; j--) {
            entry t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return VT_OK;
}

int vt_ckpt_find_latest(const char *dir, char *path, size_t n, bool *found, char *skipped, size_t skipped_n)
{
    entry *list;
    int count;
    *found = false;
    if (skipped_n) skipped[0] = '\0';
    if (list_ckpts(dir, &list, &count) != VT_OK) return VT_ERR;
    size_t used = 0;
    for (int i = 0; i < count && !*found; i++) {
        snprintf(path, n, "%s/%s", dir, list[i].name);
        vt_h5id f = vt_h5_open(path, false);
        if (f >= 0) {
            int64_t inside = -1;
            if (check_header(f, path) == VT_OK && vt_h5_attr_i64(f, "/state", "step", &inside) == VT_OK) {
                /* a copy under another name would be taken for a later step */
                if (inside == list[i].step) *found = true;
                else vt_err("%s: named step %lld but holds step %lld", path, list[i].step, (long long)inside);
            }
            vt_h5_close(f);
        }
        if (!*found && used < skipped_n) {   /* truncated or corrupted: say why, try an older one */
            int k = snprintf(skipped + used, skipped_n - used, "%s%s", used ? "; " : "", vt_errmsg());
            used = k < 0 ? skipped_n : used + (size_t)k;
        }
    }
    free(list);
    if (!*found) path[0] = '\0';
    return VT_OK;
}

int vt_ckpt_count(const char *dir, int *count)
{
    entry *list;
    if (list_ckpts(dir, &list, count) != VT_OK) return VT_ERR;
    free(list);
    return VT_OK;
}

int vt_ckpt_newer(const char *dir, int64_t step, char *buf, size_t n)
{
    entry *list;
    int count;
    if (n) buf[0] = '\0';
    if (list_ckpts(dir, &list, &count) != VT_OK) return VT_ERR;
    size_t used = 0;
    for (int i = count - 1; i >= 0; i--)   /* oldest first */
        if (list[i].step > step && used < n) {
            int k = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", list[i].name);
            used = k < 0 ? n : used + (size_t)k;
        }
    free(list);
    return VT_OK;
}

int vt_ckpt_prune(const char *dir, int keep_last, const char *keep, int64_t upto)
{
    entry *list;
    int count;
    if (list_ckpts(dir, &list, &count) != VT_OK) return VT_ERR;
    int kept = 0;
    for (int i = 0; i < count; i++) {
        if (list[i].step > upto) continue;   /* not this run's past: never ours to delete */
        if (++kept <= (keep_last > 1 ? keep_last : 1)) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, list[i].name);
        if (keep && strcmp(p, keep) == 0) continue;
        unlink(p);
    }
    free(list);
    return VT_OK;
}

int vt_ckpt_load_ema(const char *path, vt_vit *m)
{
    vt_h5id f = vt_h5_open(path, false);
    if (f < 0) return VT_ERR;
    int r = check_header(f, path);
    if (r == VT_OK && !vt_h5_exists(f, "/ema"))
        r = vt_err("%s: no EMA weights (/ema): the run had [train] ema_decay = 0", path);
    if (r == VT_OK) r = vt_vit_load_h5(m, f, "/ema");
    vt_h5_close(f);
    return r;
}
