/* vit-plot - a run's metrics.csv as PNGs: training loss (and its running mean) with the evaluation loss,
 * learning rate, gradient norm and evaluation top-1 / top-5, against step or epoch; several runs on one
 * plot when several folders are given. */
#include "analyze/analyze.h"
#include "cli.h"
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAXRUNS = 10 };

static void usage(FILE *f)
{
    fprintf(f, "usage: vit-plot RUN... [--out DIR] [--x step|epoch] [--window N]\n"
               "RUN: a run folder (holding metrics.csv) or a metrics.csv file; up to %d, one colour each.\n"
               "Writes loss.png (training loss, thin, its running mean over --window rows (default a 20th of the rows), thick,\n"
               "and the evaluation loss as dots), lr.png, grad_norm.png and accuracy.png (evaluation top-1, solid,\n"
               "and top-5, dashed) into DIR (default: RUN/plots for one run; required for several).\n"
               "--x epoch: against epochs, step / the steps per epoch the rows' epoch column shows.\n"
               "example: vit-plot runs/fashion_mnist runs/other --out plots\n", MAXRUNS);
}

typedef struct {
    char label[256];
    vt_an_metrics m;
    double *x, *mean;   /* x (step or epoch) and the running mean of the loss */
    int window;         /* rows in that mean */
} run;

static int load_run(const char *arg, bool epoch, int window, run *r)
{
    char path[4200];
    struct stat st;
    const bool dir = stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(path, sizeof path, dir ? "%s/metrics.csv" : "%s", arg);
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", dir ? arg : path);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    snprintf(r->label, sizeof r->label, "%s", dir ? basename(copy) : basename(dirname(copy)));
    if (vt_an_metrics_read(path, &r->m) != VT_OK) return VT_ERR;
    if (r->m.rows == 0) return vt_err("%s: no rows yet (the run has not logged a step)", path);
    const int rows = r->m.rows;
    r->x = malloc(sizeof(double) * (size_t)rows);
    r->mean = malloc(sizeof(double) * (size_t)rows);
    if (!r->x || !r->mean) return vt_err("out of memory");
    /* step s logged in (1-based) epoch e: (e - 1) spe < s <= e spe, so spe >= s / e, within a log period of
     * the truth once the run has gone past its first epoch (before, nothing bounds it from above) */
    double spe = 0, last = 0;
    for (int i = 0; i < rows; i++)
        if (r->m.col[VT_AN_EPOCH][i] >= 1)
            spe = fmax(spe, r->m.col[VT_AN_STEP][i] / r->m.col[VT_AN_EPOCH][i]), last = fmax(last, r->m.col[VT_AN_EPOCH][i]);
    if (epoch && last < 2)
        return vt_err("%s: %s, so its steps per epoch are unknown: plot it against --x step", path,
                      spe > 0 ? "the run has not gone past its first epoch" : "no epoch column");
    for (int i = 0; i < rows; i++) r->x[i] = epoch ? r->m.col[VT_AN_STEP][i] / spe : r->m.col[VT_AN_STEP][i];
    r->window = window > 0 ? window : rows / 20 > 1 ? rows / 20 : 1;
    vt_an_running_mean(r->m.col[VT_AN_LOSS], rows, r->window, r->mean);
    return VT_OK;
}

/* one figure of column col of every run (with mean: also the running mean, and eval as dots) */
static int figure(const char *dir, const char *file, run *runs, int nr, const int *cols, int ncols, bool with_mean,
                  const char *title, const char *xlabel, const char *ylabel)
{
    vt_an_series s[3 * MAXRUNS];
    char labels[3 * MAXRUNS][300];
    int ns = 0;
    static const char *const what[VT_AN_NCOLS] = {"", "", "train", "", "", "eval", "top-1", "top-5"};
    for (int k = 0; k < nr; k++)
        for (int j = 0; j < ncols; j++) {
            const int c = cols[j];
            bool any = false;
            for (int i = 0; i < runs[k].m.rows; i++) any |= isfinite(runs[k].m.col[c][i]);
            if (!any) continue;
            const bool eval = c >= VT_AN_EVAL_LOSS, raw = with_mean && c == VT_AN_LOSS;
            const char *pre = nr > 1 ? runs[k].label : "", *sp = nr > 1 ? " " : "";
            snprintf(labels[ns], sizeof labels[ns], "%s%s%s", pre, ncols > 1 ? sp : "", ncols > 1 ? what[c] : "");
            if (!labels[ns][0]) snprintf(labels[ns], sizeof labels[ns], "%s", runs[k].label);
            s[ns] = (vt_an_series){labels[ns], runs[k].x, runs[k].m.col[c], runs[k].m.rows, k, eval, raw, c == VT_AN_EVAL_TOP5};
            ns++;
            if (raw) {   /* the running mean over the raw values */
                snprintf(labels[ns], sizeof labels[ns], "%s%strain, mean of %d", pre, sp, runs[k].window);
                s[ns] = (vt_an_series){labels[ns], runs[k].x, runs[k].mean, runs[k].m.rows, k, false, false, false};
                ns++;
            }
        }
    if (ns == 0) {
        printf("%s: no values in any run, not drawn\n", file);
        return VT_OK;
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (vt_an_plot_lines(p, s, ns, title, xlabel, ylabel) != VT_OK) return VT_ERR;
    printf("wrote %s\n", p);
    return VT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {{"out", required_argument, 0, 'o'}, {"x", required_argument, 0, 'x'},
                                          {"window", required_argument, 0, 'w'}, {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    static const char *const xs[] = {"step", "epoch", NULL};
    const char *out = NULL, *xk = "step";
    int window = 0, ch;
    while ((ch = getopt_long(argc, argv, "o:x:w:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'x':
            if (!cli_choice("vit-plot", "--x", optarg, xs)) return 2;
            xk = optarg;
            break;
        case 'w':
            if (!cli_int("vit-plot", "--window", optarg, 1, 1 << 20, &window)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const int nr = argc - optind;
    if (nr < 1 || nr > MAXRUNS || (nr > 1 && !out)) {
        fprintf(stderr, "vit-plot: %s\n", nr < 1 ? "a RUN folder is required" : nr > MAXRUNS ? "more than 10 runs"
                                                                                   : "several runs: --out DIR is required");
        usage(stderr);
        return 2;
    }
    const bool epoch = strcmp(xk, "epoch") == 0;
    run runs[MAXRUNS];
    memset(runs, 0, sizeof runs);
    char dir[4200];
    int rc = 1;
    for (int k = 0; k < nr; k++)
        if (load_run(argv[optind + k], epoch, window, &runs[k]) != VT_OK) goto done;
    snprintf(dir, sizeof dir, out ? "%s" : "%s/plots", out ? out : argv[optind]);
    struct stat st;
    if (stat(dir, &st) == 0 ? !S_ISDIR(st.st_mode) : mkdir(dir, 0777) != 0) {
        vt_err("%s: %s", dir, stat(dir, &st) == 0 ? "not a folder" : strerror(errno));
        goto done;
    }
    const char *xl = epoch ? "epoch" : "step";
    const int loss[] = {VT_AN_LOSS, VT_AN_EVAL_LOSS}, lr[] = {VT_AN_LR}, gn[] = {VT_AN_GRAD_NORM},
              acc[] = {VT_AN_EVAL_TOP1, VT_AN_EVAL_TOP5};
    if (figure(dir, "loss.png", runs, nr, loss, 2, true, "Loss", xl, "cross-entropy") != VT_OK ||
        figure(dir, "lr.png", runs, nr, lr, 1, false, "Learning rate", xl, "learning rate") != VT_OK ||
        figure(dir, "grad_norm.png", runs, nr, gn, 1, false, "Gradient norm (before clipping)", xl, "global L2 norm") != VT_OK ||
        figure(dir, "accuracy.png", runs, nr, acc, 2, false, "Evaluation accuracy", xl, "accuracy (%)") != VT_OK)
        goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "vit-plot: %s\n", vt_errmsg());
    for (int k = 0; k < nr; k++) vt_an_metrics_free(&runs[k].m), free(runs[k].x), free(runs[k].mean);
    vt_an_plot_finish();
    return rc;
}
