/* npz_write.c - a model as Google's original ViT .npz layout (the names and layouts npz.c reads):
 * float32 .npy members, deflate-compressed, written to PATH.tmp and renamed into place. */
#include "nn_internal.h"
#include <stdlib.h>
#include <zip.h>


/* add one array as <name>.npy; data (numel floats) is copied */
static int add_npy(zip_t *z, const char *path, const char *name, const float *data, int ndim, const int64_t *shape)
{
    char dict[256], sh[128] = "";
    size_t o = 0;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        numel *= shape[i];
    }
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", sh);
    /* magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64 */
    size_t hl = (size_t)dl + 1, total = 10 + hl;
    size_t pad = (64 - total % 64) % 64;
    hl += pad;
    size_t n = 10 + hl + sizeof(float) * (size_t)numel;
    uint8_t *buf = malloc(n);
    if (!buf) return vt_err("out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hl & 255);
    buf[9] = (uint8_t)(hl >> 8);
    memcpy(buf + 10, dict, (size_t)dl);
    memset(buf + 10 + dl, ' ', pad);
    buf[10 + hl - 1] = '\n';
    memcpy(buf + 10 + hl, data, sizeof(float) * (size_t)numel);
    zip_source_t *src = zip_source_buffer(z, buf, n, 1);   /* libzip frees buf */
    if (!src) {
        free(buf);
        return vt_err("%s: cannot add %s: %s", path, name, zip_strerror(z));
    }
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_int64_t idx = zip_file_add(z, member, src, ZIP_FL_OVERWRITE);
    if (idx < 0) {
        zip_source_free(src);
        return vt_err("%s: cannot add %s: %s", path, member, zip_strerror(z));
    }
    zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0);
    return VT_OK;
}

int vt_vit_save_npz(const vt_vit *mc, const char *path)
{
    vt_vit *m = (vt_vit *)mc;   /* read only */
    const vt_vit_config *c = &m->cfg;
    if (vt_npz_supported(c, path, ": write .safetensors instead") != VT_OK) return VT_ERR;
    const int64_t D = c->embed_dim, Hd = (int64_t)(c->embed_dim * c->mlp_ratio), K = c->num_classes, Cp = c->in_chans,
                  Pp = c->patch, NH = c->num_heads, hd = D / NH, T = (int64_t)m->grid_h * m->grid_w + 1;
    int64_t big = Pp * Pp * Cp * D;
    if (D * Hd > big) big = D * Hd;
    if (D * K > big) big = D * K;
    if (D * D > big) big = D * D;
    float *tmp = malloc(sizeof(float) * (size_t)big);
    if (!tmp) return vt_err("out of memory");
    char tpath[4200];
    snprintf(tpath, sizeof tpath, "%s.tmp", path);
    remove(tpath);
    int zerr = 0;
    zip_t *z = zip_open(tpath, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z) {
        free(tmp);
        return vt_err("%s: cannot create the zip", tpath);
    }
    int r = VT_OK;
    const float *w = vt_pdata(m, m->patch_w);
    for (int64_t py = 0; py < Pp; py++)
        for (int64_t px = 0; px < Pp; px++)
            for (int64_t ch = 0; ch < Cp; ch++)
                for (int64_t d = 0; d < D; d++)
                    tmp[((py * Pp + px) * Cp + ch) * D + d] = w[((d * Cp + ch) * Pp + py) * Pp + px];
    r = add_npy(z, path, "embedding/kernel", tmp, 4, (int64_t[]){Pp, Pp, Cp, D});
    if (r == VT_OK) r = add_npy(z, path, "embedding/bias", vt_pdata(m, m->patch_b), 1, (int64_t[]){D});
    if (r == VT_OK) r = add_npy(z, path, "cls", vt_pdata(m, m->cls_token), 3, (int64_t[]){1, 1, D});
    if (r == VT_OK)
        r = add_npy(z, path, "Transformer/posembed_input/pos_embedding", vt_pdata(m, m->pos_embed), 3, (int64_t[]){1, T, D});
    char name[256];
    for (int i = 0; r == VT_OK && i < c->depth; i++) {
        const vt_block_params *b = &m->blocks[i];
        char pre[96];
        snprintf(pre, sizeof pre, "Transformer/encoderblock_%d", i);
        vt_npz_vec vec[VT_NPZ_BLOCK_VECS];
        vt_npz_block_vecs(m, i, vec);
        for (size_t k = 0; r == VT_OK && k < VT_NPZ_BLOCK_VECS; k++) {
            snprintf(name, sizeof name, "%s/%s", pre, vec[k].name);
            r = add_npy(z, path, name, vt_pdata(m, vec[k].idx), 1, (int64_t[]){vec[k].numel});
        }
        const char *qkv[3] = {"query", "key", "value"};
        for (int j = 0; r == VT_OK && j < 3; j++) {
            vt_transpose2(tmp, vt_pdata(m, b->qkv_w) + j * D * D, D, D);   /* (D out, D in) -> (D in, heads, hd) */
            snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/%s/kernel", pre, qkv[j]);
            r = add_npy(z, path, name, tmp, 3, (int64_t[]){D, NH, hd});
            snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/%s/bias", pre, qkv[j]);
            if (r == VT_OK) r = add_npy(z, path, name, vt_pdata(m, b->qkv_b) + j * D, 2, (int64_t[]){NH, hd});
        }
        if (r != VT_OK) break;
        vt_transpose2(tmp, vt_pdata(m, b->proj_w), D, D);
        snprintf(name, sizeof name, "%s/MultiHeadDotProductAttention_1/out/kernel", pre);
        r = add_npy(z, path, name, tmp, 3, (int64_t[]){NH, hd, D});
        vt_transpose2(tmp, vt_pdata(m, b->fc1_w), Hd, D);
        snprintf(name, sizeof name, "%s/MlpBlock_3/Dense_0/kernel", pre);
        if (r == VT_OK) r = add_npy(z, path, name, tmp, 2, (int64_t[]){D, Hd});
        vt_transpose2(tmp, vt_pdata(m, b->fc2_w), D, Hd);
        snprintf(name, sizeof name, "%s/MlpBlock_3/Dense_1/kernel", pre);
        if (r == VT_OK) r = add_npy(z, path, name, tmp, 2, (int64_t[]){Hd, D});
    }
    if (r == VT_OK) r = add_npy(z, path, "Transformer/encoder_norm/scale", vt_pdata(m, m->norm_w), 1, (int64_t[]){D});
    if (r == VT_OK) r = add_npy(z, path, "Transformer/encoder_norm/bias", vt_pdata(m, m->norm_b), 1, (int64_t[]){D});
    if (r == VT_OK) {
        vt_transpose2(tmp, vt_pdata(m, m->head_w), K, D);
        r = add_npy(z, path, "head/kernel", tmp, 2, (int64_t[]){D, K});
    }
    if (r == VT_OK) r = add_npy(z, path, "head/bias", vt_pdata(m, m->head_b), 1, (int64_t[]){K});
    free(tmp);
    if (r != VT_OK) {
        zip_discard(z);
        remove(tpath);
        return VT_ERR;
    }
    if (zip_close(z) != 0) {
        r = vt_err("%s: cannot write: %s", tpath, zip_strerror(z));
        zip_discard(z);
        remove(tpath);
        return r;
    }
    if (rename(tpath, path) != 0) {
        remove(tpath);
        return vt_err("%s: cannot rename into place", path);
    }
    return VT_OK;
}
