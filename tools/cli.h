/* cli.h - what the command-line tools (tools/ and bench/) share to read their command lines: numbers
 * parsed strictly (the whole string, range-checked, an error line that names the option and the range
 * it takes) and the checks of an output path. Static functions in a header, so that a tool takes it
 * with one #include and no change to the build. Only tools use it: they print and exit, the library
 * never does. */
#ifndef VIT_TOOLS_CLI_H
#define VIT_TOOLS_CLI_H

#include "tensor/tensor.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* v as a decimal integer in [lo, hi], the whole string; else an error line
 * "prog: opt v: expected an integer in [lo, hi]" on stderr and false */
static inline bool cli_ll(const char *prog, const char *opt, const char *v, long long lo, long long hi,
                          long long *out)
{
    char *end = NULL;
    long long x = 0;
    bool ok = v && *v && !isspace((unsigned char)*v);
    if (ok) {
        errno = 0;
        x = strtoll(v, &end, 10);
        ok = end != v && *end == '\0' && errno == 0 && x >= lo && x <= hi;
    }
    if (!ok) {
        fprintf(stderr, "%s: %s %s: expected an integer in [%lld, %lld]\n", prog, opt, v ? v : "(missing)", lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static inline bool cli_int(const char *prog, const char *opt, const char *v, int lo, int hi, int *out)
{
    long long x;
    if (!cli_ll(prog, opt, v, lo, hi, &x)) return false;
    *out = (int)x;
    return true;
}

/* v as a finite number in [lo, hi] in decimal notation, the whole string (no nan, inf, hex or trailing text) */
static inline bool cli_double(const char *prog, const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    double x = 0;
    bool ok = v && vt_is_decimal(v);
    if (ok) {
        errno = 0;
        x = strtod(v, &end);
        ok = end != v && *end == '\0' && errno == 0 && isfinite(x) && x >= lo && x <= hi;
    }
    if (!ok) {
        fprintf(stderr, "%s: %s %s: expected a number in [%g, %g]\n", prog, opt, v ? v : "(missing)", lo, hi);
        return false;
    }
    *out = x;
    return true;
}

/* v is one of the NULL-terminated choices; else "prog: opt v: expected a, b or c" */
static inline bool cli_choice(const char *prog, const char *opt, const char *v, const char *const *choices)
{
    for (int k = 0; choices[k]; k++)
        if (v && strcmp(v, choices[k]) == 0) return true;
    fprintf(stderr, "%s: %s %s: expected ", prog, opt, v ? v : "(missing)");
    for (int k = 0; choices[k]; k++)
        fprintf(stderr, "%s%s", k ? (choices[k + 1] ? ", " : " or ") : "", choices[k]);
    fprintf(stderr, "\n");
    return false;
}

/* do a and b name the same existing file (same device and inode: symlinks, hard links and ./ paths too)? */
static inline bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* out may be written from in: not a folder, and not in itself (writing would destroy the source);
 * else an error line naming out and false */
static inline bool cli_check_output(const char *prog, const char *in, const char *out)
{
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s is a folder, expected the name of the file to write\n", prog, out);
        return false;
    }
    if (cli_same_file(in, out)) {
        fprintf(stderr, "%s: %s: the output is the input file %s (it would be overwritten); name another file\n",
                prog, out, in);
        return false;
    }
    return true;
}

/* path ends in ext (e.g. ".npz") after at least one other character */
static inline bool cli_has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}


/* the OpenMP thread count from the environment (OMP_NUM_THREADS: a number, or a list of them for nested
 * levels) is at most 1024 per level, the limit of --threads and [train] threads; else an error line and
 * false. Tools call it first in main, before any parallel region: libgomp creates that many threads at the
 * first one, and tens of thousands crash it. */
static inline bool cli_check_omp_env(const char *prog)
{
    const char *v = getenv("OMP_NUM_THREADS");
    if (!v) return true;
    for (const char *p = v; *p;) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        size_t digits = strspn(p, "0123456789");
        if (!digits) {   /* not a number: libgomp ignores the variable (with its own warning) */
            p += strcspn(p, ",");
            continue;
        }
        long x = 0;
        for (size_t k = 0; k < digits && x <= 1024; k++) x = 10 * x + (p[k] - '0');
        if (x > 1024) {
            fprintf(stderr, "%s: OMP_NUM_THREADS=%s: more than 1024 threads (the most --threads and [train] threads "
                            "take); unset it or give a smaller number\n", prog, v);
            return false;
        }
        p += digits;
    }
    return true;
}

#endif
