/* error.c - per-thread error message: library code sets it and returns VT_ERR, the command
 * line layer prints it; and the two text helpers messages and parsers share (shapes, decimals). */
#include "base.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char vt_msg[2048];

int vt_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vt_msg, sizeof vt_msg, fmt, ap);
    va_end(ap);
    return VT_ERR;
}

int vt_err_prefix(const char *fmt, ...)
{
    char old[sizeof vt_msg];
    memcpy(old, vt_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(vt_msg, sizeof vt_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof vt_msg)
        snprintf(vt_msg + n, sizeof vt_msg - (size_t)n, "%s", old);
    return VT_ERR;
}

const char *vt_errmsg(void) { return vt_msg; }
void vt_err_clear(void) { vt_msg[0] = '\0'; }

const char *vt_dims_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "(");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < n) snprintf(buf + off, n - off, ")");
    return buf;
}

bool vt_is_decimal(const char *v)
{
    const char *p = v;
    if (*p == '+' || *p == '-') p++;
    size_t before = strspn(p, "0123456789"), after = 0;
    p += before;
    if (*p == '.') {
        after = strspn(p + 1, "0123456789");
        p += 1 + after;
    }
    if (before + after == 0) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        size_t ex = strspn(p, "0123456789");
        if (!ex) return false;
        p += ex;
    }
    return *p == '\0';
}
