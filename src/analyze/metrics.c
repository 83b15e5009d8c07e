/* metrics.c - a run's metrics.csv (the trainer's columns: step, epoch, loss, lr, grad_norm, img_per_s,
 * eval_loss, eval_top1, eval_top5) read back for vit-plot. The columns are found by their header
 * names, so a file with more columns (or in another order) still reads. */
#include "analyze.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[VT_AN_NCOLS] = {"step", "epoch", "loss", "lr", "grad_norm", "eval_loss", "eval_top1",
                                               "eval_top5"};

/* the cell's value (NAN for an empty cell); false for text that is not a whole finite number */
static bool cell(const char *s, size_t n, double *v)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
    if (n == 0) return *v = NAN, true;
    char b[64], *end;
    if (n >= sizeof b) return false;
    memcpy(b, s, n);
    b[n] = '\0';
    errno = 0;
    *v = strtod(b, &end);
    return *end == '\0' && errno == 0 && isfinite(*v);
}

static int grow(vt_an_metrics *m)
{
    if (m->rows < m->cap) return VT_OK;
    int cap = m->cap ? 2 * m->cap : 256;
    for (int k = 0; k < VT_AN_NCOLS; k++) {
        double *p = realloc(m->col[k], sizeof(double) * (size_t)cap);
        if (!p) return vt_err("out of memory reading a metrics file");
        m->col[k] = p;
    }
    m->cap = cap;
    return VT_OK;
}

/* the header line: where each column we know is (-1: absent); step is required */
static int header(const char *path, char *line, int *where, int *ncells)
{
    for (int k = 0; k < VT_AN_NCOLS; k++) where[k] = -1;
    int i = 0;
    for (char *tok = line, *next; tok; tok = next, i++) {
        next = strchr(tok, ',');
        size_t n = next ? (size_t)(next - tok) : strcspn(tok, "\r\n");
        if (next) next++;
        for (int k = 0; k < VT_AN_NCOLS; k++)
            if (strlen(names[k]) == n && strncmp(tok, names[k], n) == 0) where[k] = i;
    }
    *ncells = i;
    if (where[VT_AN_STEP] < 0) return vt_err("%s: no 'step' column in the header line (not a metrics.csv of vit-train?)", path);
    return VT_OK;
}

int vt_an_metrics_read(const char *path, vt_an_metrics *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) return vt_err("%s: cannot open (%s)", path, strerror(errno));
    char line[4096];
    int where[VT_AN_NCOLS], ncells = 0, r = VT_OK, lineno = 1;
    if (!fgets(line, sizeof line, f)) r = vt_err("%s: empty file, expected the header line of a metrics.csv", path);
    if (r == VT_OK) r = header(path, line, where, &ncells);
    while (r == VT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\r') continue;
        if ((r = grow(m)) != VT_OK) break;
        double v[64];
        int i = 0;
        for (char *tok = line, *next; tok && r == VT_OK; tok = next, i++) {
            next = strchr(tok, ',');
            size_t n = next ? (size_t)(next - tok) : strcspn(tok, "\r\n");
            if (next) next++;
            if (i >= 64 || !cell(tok, n, &v[i])) r = vt_err("%s:%d: cell %d is not a number: '%.*s'", path, lineno, i + 1, (int)n, tok);
        }
        if (r == VT_OK && i != ncells)
            r = vt_err("%s:%d: %d cells, the header has %d (a cut line?)", path, lineno, i, ncells);
        if (r == VT_OK && isnan(v[where[VT_AN_STEP]])) r = vt_err("%s:%d: no step", path, lineno);
        for (int k = 0; r == VT_OK && k < VT_AN_NCOLS; k++) m->col[k][m->rows] = where[k] >= 0 ? v[where[k]] : NAN;
        if (r == VT_OK) m->rows++;
    }
    if (r == VT_OK && ferror(f)) r = vt_err("%s: read error", path);
    fclose(f);
    if (r != VT_OK) vt_an_metrics_free(m);
    return r;
}

void vt_an_metrics_free(vt_an_metrics *m)
{
    for (int k = 0; k < VT_AN_NCOLS; k++) free(m->col[k]);
    memset(m, 0, sizeof *m);
}

void vt_an_running_mean(const double *y, int n, int window, double *out)
{
    double s = 0;
    int cnt = 0;
    for (int i = 0; i < n; i++) {
        if (!isnan(y[i])) s += y[i], cnt++;
        if (i >= window && !isnan(y[i - window])) s -= y[i - window], cnt--;
        out[i] = cnt ? s / cnt : NAN;
    }
}
