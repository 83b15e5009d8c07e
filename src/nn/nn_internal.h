/* nn_internal.h - what the weight importers (safetensors.c, npz.c) share and nothing else includes */
#ifndef VIT_NN_INTERNAL_H
#define VIT_NN_INTERNAL_H
#include <stdio.h>
#include <string.h>

/* the names a file holds that the model does not read: how many, the first few, and the features they
 * belong to when recognisable (LayerScale, register tokens, ...), for one message */
typedef struct {
    int bad, shown;
    char list[640], feats[640], more[48];
    size_t ll, fl;
} vt_unexpected;

/* count name; feature (may be NULL) is what it belongs to */
static inline void vt_unexpected_add(vt_unexpected *u, const char *name, const char *feature)
{
    u->bad++;
    if (u->shown < 4 && u->ll < sizeof u->list - 100) {
        u->ll += (size_t)snprintf(u->list + u->ll, sizeof u->list - u->ll, "%s%.80s", u->shown ? ", " : "", name);
        u->shown++;
    }
    if (feature && !strstr(u->feats, feature) && u->fl < sizeof u->feats - 100)
        u->fl += (size_t)snprintf(u->feats + u->fl, sizeof u->feats - u->fl, "%s%s", u->fl ? ", " : "", feature);
}

/* " and N more" when names were left out of list, else "" */
static inline const char *vt_unexpected_more(vt_unexpected *u)
{
    u->more[0] = '\0';
    if (u->bad > u->shown) snprintf(u->more, sizeof u->more, " and %d more", u->bad - u->shown);
    return u->more;
}

#endif
