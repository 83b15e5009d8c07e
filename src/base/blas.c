/* blas.c - make sure OpenBLAS runs the kernels this CPU deserves.
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise some recent Xeons and falls back to
 * its slowest "Prescott" kernels (47 instead of 311 GFLOPS measured for sgemm on 2 cores). The core
 * type is read from OPENBLAS_CORETYPE when the library loads, so the fix is to set it and re-exec. */
#include "base.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *vt_blas_core(void) { return openblas_get_corename(); }

const char *vt_blas_best_core(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

static bool weaker(const char *have, const char *best)
{
    static const char *order[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona",
                                  "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator",
                                  "haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
    int h = -1, b = -1;
    for (int i = 0; i < (int)(sizeof order / sizeof order[0]); i++) {
        if (strcasecmp(have, order[i]) == 0) h = i;
        if (strcasecmp(best, order[i]) == 0) b = i;
    }
    if (b < 0) return false;
    return h < b;   /* unknown names (h = -1) count as weaker */
}

int vt_blas_ensure_core(int argc, char **argv)
{
    (void)argc;
    if (getenv("OPENBLAS_CORETYPE")) return VT_OK;   /* the user decided */
    const char *best = vt_blas_best_core(), *have = vt_blas_core();
    if (!best || !have || !weaker(have, best)) return VT_OK;
    if (getenv("VIT_BLAS_REEXEC")) return VT_OK;     /* tried once already: keep going */
    setenv("OPENBLAS_CORETYPE", best, 1);
    setenv("VIT_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: continue with the slow kernels */
    unsetenv("OPENBLAS_CORETYPE");
    return vt_err("OpenBLAS picked the %s kernels on a CPU that supports %s, and re-executing with "
                  "OPENBLAS_CORETYPE=%s failed; set it yourself for full speed", have, best, best);
}
