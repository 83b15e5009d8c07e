/* fuzz_util.c - what every fuzz target shares: the scratch folder, files written from input bytes,
 * splitting an input into parts, and the checks that abort. */
#define _XOPEN_SOURCE 700
#include "fuzz.h"
#include "tensor/tensor.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const vt_fuzz_target vt_fuzz_targets[] = {
#define VT_FUZZ_ENTRY(name) {#name, vt_fuzz_##name},
    VT_FUZZ_TARGETS(VT_FUZZ_ENTRY)
#undef VT_FUZZ_ENTRY
    {NULL, NULL}};

static char scratch[512];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    remove(p);
    return 0;
}

static void rm_tree(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void remove_scratch(void)
{
    if (scratch[0]) rm_tree(scratch);
}

const char *vt_fuzz_dir(void)
{
    if (scratch[0]) return scratch;
    const char *t = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/vit-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "fuzz: cannot create a scratch folder %s: %s\n", scratch, strerror(errno));
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

const char *vt_fuzz_subdir(const char *sub)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", vt_fuzz_dir(), sub);
    rm_tree(p);
    if (mkdir(p, 0700) != 0) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", p, strerror(errno));
        abort();
    }
    return p;
}

const char *vt_fuzz_write(int k, const char *dir, const char *name, const void *data, size_t size)
{
    static char paths[8][1200];
    char *p = paths[k & 7];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", p, strerror(errno));
        abort();
    }
    return p;
}

int vt_fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **part, size_t *len, int max)
{
    size_t sl = strlen(sep), start = 0;
    int n = 0;
    for (size_t i = 0; n < max - 1 && i + sl <= size; i++)
        if (memcmp(data + i, sep, sl) == 0) {
            part[n] = data + start;
            len[n++] = i - start;
            start = i + sl;
            i += sl - 1;
        }
    part[n] = data + start;
    len[n++] = size - start;
    return n;
}

void vt_fuzz_require(bool ok, const char *target, const char *what)
{
    if (ok) return;
    fprintf(stderr, "fuzz %s: %s\n", target, what);
    abort();
}

void vt_fuzz_require_msg(const char *target)
{
    const char *m = vt_errmsg();
    vt_fuzz_require(m && *m, target, "a call failed without a message");
    static int verbose = -1;   /* VIT_FUZZ_VERBOSE=1: print every refusal (to see what an input reaches) */
    if (verbose < 0) verbose = getenv("VIT_FUZZ_VERBOSE") && atoi(getenv("VIT_FUZZ_VERBOSE")) > 0;
    if (verbose) fprintf(stderr, "fuzz %s: refused: %s\n", target, m);
}
