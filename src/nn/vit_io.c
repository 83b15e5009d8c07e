/* vit_io.c - parameters to and from HDF5 groups, by timm name, with exact shape checks; loading refuses a
 * value that is not finite. */
#include "nn.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

int vt_vit_load_h5(vt_vit *m, vt_h5id file, const char *group)
{
    char path[512], fb[512], a[128], b[128];
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        snprintf(path, sizeof path, "%s/%s", group, pi->name);
        int nd;
        int64_t sh[8];
        if (!vt_h5_exists(file, path))
            return vt_err("%s: missing tensor %s (expected shape %s)", vt_h5_filename(file, fb, sizeof fb), path,
                          vt_dims_str(pi->ndim, pi->shape, a, sizeof a));
        if (vt_h5_shape(file, path, &nd, sh) != VT_OK) return VT_ERR;
        bool same = nd == pi->ndim;
        for (int k = 0; same && k < nd; k++) same = sh[k] == pi->shape[k];
        if (!same)
            return vt_err("%s: tensor %s has shape %s, the model expects %s", vt_h5_filename(file, fb, sizeof fb),
                          pi->name, vt_dims_str(nd, sh, a, sizeof a), vt_dims_str(pi->ndim, pi->shape, b, sizeof b));
        float *w = m->params.data + pi->offset;
        if (vt_h5_read_into_f32(file, path, w, pi->numel) != VT_OK) return VT_ERR;
        /* a NaN or inf would only show later as a loss of nan (or be exported as it is) */
        for (int64_t k = 0; k < pi->numel; k++)
            if (!isfinite(w[k]))
                return vt_err("%s: tensor %s holds %g at element %lld of %lld (the weights must be finite: the file "
                              "is damaged or the run it comes from diverged)", vt_h5_filename(file, fb, sizeof fb),
                              path, (double)w[k], (long long)k, (long long)pi->numel);
    }
    return VT_OK;
}

int vt_vit_save_h5(const vt_vit *m, vt_h5id file, const char *group, int deflate)
{
    char path[512];
    for (int i = 0; i < m->params.count; i++) {
        const vt_param_info *pi = &m->params.info[i];
        snprintf(path, sizeof path, "%s/%s", group, pi->name);
        if (vt_h5_write_f32(file, path, m->params.data + pi->offset, pi->ndim, pi->shape, deflate) != VT_OK)
            return VT_ERR;
    }
    return VT_OK;
}
