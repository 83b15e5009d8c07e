/* error.c - per-thread error message: library code sets it and returns VT_ERR, the command
 * line layer prints it. */
#include "tensor.h"
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
