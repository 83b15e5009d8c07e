/* weights_fixtures.h - shared by the weight-file suites (test_safetensors.c, test_finetune.c). */
#ifndef VIT_WEIGHTS_FIXTURES_H
#define VIT_WEIGHTS_FIXTURES_H
#include "testutil.h"
#include "nn/nn.h"

/* the file the current test writes (each test sets it) */
extern char path[64];
/* a tiny ViT config: 32x32, patch 8, dim 48, depth 2, 3 heads, 10 classes */
void tiny(vt_vit_config *c);
/* a (weights drawn from seed: timm's initialisation, or uniform in [-1, 1]) and b, both of config c; r
 * goes on from the draw */
void model_pair(const vt_vit_config *c, vt_vit *a, vt_vit *b, vt_rng *r, uint64_t seed, bool uniform);
/* n bytes into path */
void write_bytes(const void *p, size_t n);
/* when set, write_st leaves out the tensors whose names start with it */
extern const char *st_skip;
/* a safetensors file (at path) of m's parameters as F32, except f64 (if not NULL) as F64 with its
 * element 0 set to poke; extra is appended to the header's entries, its data placed after the model's */
void write_st(const vt_vit *m, const char *f64, double poke, const char *extra);
#endif
