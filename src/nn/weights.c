/* weights.c - what the two importers of other frameworks' weights share (timm's safetensors, Google's
 * npz): the list of names a file holds that the model does not read, the plain ViT's names and block
 * indices, the model inferred from shapes (MLP ratio, patch grid) and the message for a non-finite value. */
#include "nn_internal.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

void vt_unexpected_add(vt_unexpected *u, const char *name, const char *feature)
{
    u->bad++;
    if (u->shown < 4 && u->ll < sizeof u->list - 100) {
        u->ll += (size_t)snprintf(u->list + u->ll, sizeof u->list - u->ll, "%s%.80s", u->shown ? ", " : "", name);
        u->shown++;
    }
    if (feature && !strstr(u->feats, feature) && u->fl < sizeof u->feats - 100)
        u->fl += (size_t)snprintf(u->feats + u->fl, sizeof u->feats - u->fl, "%s%s", u->fl ? ", " : "", feature);
}

const char *vt_unexpected_more(vt_unexpected *u)
{
    u->more[0] = '\0';
    if (u->bad > u->shown) snprintf(u->more, sizeof u->more, " and %d more", u->bad - u->shown);
    return u->more;
}

long vt_weights_block(const char *name, const char *prefix, char sep, bool strict, const char **rest)
{
    const size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) || !isdigit((unsigned char)name[pl])) return -1;
    char *end;
    long b = strtol(name + pl, &end, 10);
    if (*end != sep || b >= 1 << 20 || (strict && name[pl] == '0' && end != name + pl + 1)) return -1;
    if (rest) *rest = end + 1;
    return b;
}

bool vt_weights_plain_name(const char *name, const char *const *top, size_t ntop, const char *prefix, char sep,
                           const char *const *blk, size_t nblk, int depth)
{
    for (size_t k = 0; k < ntop; k++)
        if (!strcmp(name, top[k])) return true;
    const char *rest;
    long b = vt_weights_block(name, prefix, sep, true, &rest);
    if (b < 0 || (depth >= 0 && b >= depth)) return false;
    for (size_t k = 0; k < nblk; k++)
        if (!strcmp(rest, blk[k])) return true;
    return false;
}

void vt_weights_mlp_ratio(vt_vit_config *o, int hidden)
{
    /* hidden = (int)(D * mlp_ratio): keep the config's ratio when it gives the file's hidden size */
    if ((int)(o->embed_dim * o->mlp_ratio) != hidden) {
        o->mlp_ratio = (double)hidden / o->embed_dim;
        if ((int)(o->embed_dim * o->mlp_ratio) != hidden) o->mlp_ratio = nextafter(o->mlp_ratio, INFINITY);
    }
}

int vt_weights_not_finite(const char *path, const char *what, double d, int64_t k, int64_t n)
{
    /* NaN, inf, or a float64 beyond float32's range */
    return vt_err("%s: %s holds %g%s at element %lld of %lld (the weights must be finite)", path, what, d,
                  isfinite(d) ? " (beyond float32's range)" : "", (long long)k, (long long)n);
}

/* floor(sqrt(n)) */
static int64_t isqrt(int64_t n)
{
    int64_t s = (int64_t)sqrt((double)n);
    while (s * s > n) s--;
    while ((s + 1) * (s + 1) <= n) s++;
    return s;
}

static bool is_square(int64_t n) { return n >= 1 && isqrt(n) * isqrt(n) == n; }

int vt_vit_grid_from_pos_embed(const char *path, const char *name, int64_t tokens, int prefix, int patch, vt_vit_config *c)
{
    const int64_t n = tokens - prefix;   /* without the prefix tokens it covers */
    const int gh = c->patch > 0 ? c->img_h / c->patch : 0, gw = c->patch > 0 ? c->img_w / c->patch : 0;
    if (n < 1)
        return vt_err("%s: %s has %lld tokens: no patch tokens besides the %d prefix tokens", path, name,
                      (long long)tokens, prefix);
    if (n == (int64_t)gh * gw) {
        c->img_h = gh * patch;
        c->img_w = gw * patch;
        return VT_OK;
    }
    if (!is_square(n))
        return vt_err("%s: %s has %lld patch tokens (+ %d prefix tokens): not the config's %dx%d grid and not a square "
                      "one, so the grid it was trained on is unknown (set [model] img_h and img_w to that grid times "
                      "the patch size %d)", path, name, (long long)n, prefix, gh, gw, patch);
    const int64_t s = isqrt(n);
    if (s * patch > 1 << 20) return vt_err("%s: %s has %lld patch tokens: too many", path, name, (long long)n);
    c->img_h = c->img_w = (int)s * patch;
    return VT_OK;
}

void vt_vit_pos_layout(int64_t tokens, int patch, vt_vit_config *c)
{
    const int gh = patch > 0 ? c->img_h / patch : 0, gw = patch > 0 ? c->img_w / patch : 0;
    const int64_t grid = (int64_t)gh * gw, mine = tokens - vt_vit_pos_prefix(c);
    vt_vit_config o = *c;
    o.no_embed_class = !c->no_embed_class;
    const int64_t other = tokens - vt_vit_pos_prefix(&o);
    /* the config's layout when it gives the config's grid, else the other's; then a square grid, the same way */
    if (mine == grid) return;
    if (other == grid || (!is_square(mine) && is_square(other)))
        c->no_embed_class = o.no_embed_class;
}

int vt_npz_supported(const vt_vit_config *c, const char *path, const char *after)
{
    if (c->fc_norm) return vt_err(VT_NPZ_FC_NORM, path, after);
    if (c->init_values > 0)
        return vt_err("%s: a model with LayerScale ([model] init_values > 0, blocks.*.ls1/ls2.gamma) has no Google "
                      ".npz layout%s", path, after);
    return VT_OK;
}
