/*
 * sweep_report.c: sweep_report, the outputs of a sweep, a function of the
 * run directories alone read in grid order (sweep_results.c collects them
 * and prints the tables): the learning-rate choice (into summary.json and
 * sweep.md), the gnuplot figures, sweep.md, each output written
 * atomically into DIR; the exit status of sweep.h.
 */
#include "sweep_impl.h"

/* gnuplot's single-quoted strings: ' doubled */
static void gp_str(sbuf *b, const char *s)
{
    sweep_sb_add(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            sweep_sb_add(b, "'", 1);
        if ((unsigned char)*s >= 0x20)
            sweep_sb_add(b, s, 1);
    }
    sweep_sb_add(b, "'", 1);
}

/* Markdown table cell: '|' escaped, no newline */
static void md_cell(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            sweep_sb_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r')
            sweep_sb_add(b, " ", 1);
        else
            sweep_sb_add(b, s, 1);
    }
}

static bool plot_wanted(const sweep *s, const char *name)
{
    if (!s->nplot)
        return !strncmp(name, "final_loss", 10) || !strncmp(name, "test_mse", 8);
    for (size_t k = 0; k < s->nplot; k++) {
        size_t n = strlen(s->plot[k]);
        if (n && s->plot[k][n - 1] == '*' ? !strncmp(name, s->plot[k], n - 1) : !strcmp(name, s->plot[k]))
            return true;
    }
    return false;
}

/* Grid strides (axis 0 slowest) and the first point of series sr along
 * axis a: the sr-th combination of the other axes' values. */
static void grid_strides(const sweep *s, size_t *stride)
{
    for (size_t k = s->naxes, m = 1; k-- > 0;) {
        stride[k] = m;
        m *= s->axes[k].nvalues;
    }
}

static size_t series_base(const sweep *s, size_t a, size_t sr, const size_t *stride)
{
    size_t base = 0, rem = sr;
    for (size_t k = s->naxes; k-- > 0;) {
        if (k == a)
            continue;
        base += (rem % s->axes[k].nvalues) * stride[k];
        rem /= s->axes[k].nvalues;
    }
    return base;
}

/* "depth=3, batch=8": the other axes' values at point base */
static char *series_title(const sweep *s, size_t a, size_t base)
{
    sbuf t = { 0 };
    for (size_t k = 0; k < s->naxes; k++)
        if (k != a)
            sweep_sb_printf(&t, "%s%s=%s", t.n ? ", " : "", s->axes[k].key, s->axes[k].values[s->points[base].vi[k]]);
    return sweep_sb_take(&t);
}

/* The paper's choice of a learning rate ("a grid search over orders of
 * magnitude by minimizing the training loss"): along an axis of train.lr or
 * design.lr, for each combination of the other axes and each final_loss*
 * metric, the value with the lowest median final loss among those where no
 * run diverged.  Into summary.json ("lr_choice") and sweep.md. */
static void lr_choice(const sweep *s, char **cols, size_t ncols, const mstat *st, size_t (*cnt)[5], sbuf *sj,
                      sbuf *md)
{
    size_t stride[SWEEP_MAX_AXES];
    grid_strides(s, stride);
    size_t rows = 0;
    for (size_t a = 0; a < s->naxes; a++) {
        const axis *ax = &s->axes[a];
        if (ax->nvalues < 2 || (strcmp(ax->e.canon, "train.lr") && strcmp(ax->e.canon, "design.lr")))
            continue;
        for (size_t c = 0; c < ncols; c++) {
            if (strncmp(cols[c], "final_loss", 10))
                continue;
            for (size_t sr = 0; sr < s->npoints / ax->nvalues; sr++) {
                size_t base = series_base(s, a, sr, stride);
                long best = -1;
                sbuf div = { 0 }, jdiv = { 0 };
                for (size_t v = 0; v < ax->nvalues; v++) {
                    size_t p = base + v * stride[a];
                    if (cnt[p][2]) {
                        sweep_sb_printf(&div, "%s`%s`", div.n ? ", " : "", ax->values[v]);
                        if (jdiv.n)
                            sweep_sb_puts(&jdiv, ", ");
                        sweep_json_str(&jdiv, ax->values[v]);
                        continue;
                    }
                    const mstat *x = &st[p * ncols + c];
                    if (x->n && (best < 0 || x->med < st[(base + (size_t)best * stride[a]) * ncols + c].med))
                        best = (long)v;
                }
                char *title = series_title(s, a, base);
                if (!rows++) {
                    sweep_sb_puts(md, "\n## Learning rate by final training loss\n\nThe paper's procedure (a grid over "
                                      "orders of magnitude, scored by the final training loss): for each combination "
                                      "of the other axes, the learning rate with the lowest median final loss among "
                                      "those where no run diverged (summary.json, `lr_choice`).\n\n"
                                      "| other settings | metric | lr | median final loss | diverged at |\n"
                                      "|---|---|---|---|---|\n");
                    sweep_sb_puts(sj, ",\n  \"lr_choice\": [");
                } else
                    sweep_sb_add(sj, ",", 1);
                sweep_sb_puts(md, "| ");
                md_cell(md, *title ? title : "-");
                sweep_sb_puts(md, " | ");
                md_cell(md, cols[c]);
                sweep_sb_puts(sj, "\n    {\"axis\": ");
                sweep_json_str(sj, ax->key);
                sweep_sb_puts(sj, ", \"metric\": ");
                sweep_json_str(sj, cols[c]);
                sweep_sb_puts(sj, ", \"settings\": {");
                for (size_t k = 0, first = 1; k < s->naxes; k++)
                    if (k != a) {
                        if (!first)
                            sweep_sb_puts(sj, ", ");
                        first = 0;
                        sweep_json_str(sj, s->axes[k].key);
                        sweep_sb_puts(sj, ": ");
                        sweep_json_str(sj, s->axes[k].values[s->points[base].vi[k]]);
                    }
                sweep_sb_puts(sj, "}, \"best\": ");
                if (best >= 0) {
                    const mstat *x = &st[(base + (size_t)best * stride[a]) * ncols + c];
                    sweep_sb_printf(md, " | `%s` | %.4g |", ax->values[best], x->med);
                    sweep_json_str(sj, ax->values[best]);
                    sweep_sb_puts(sj, ", \"median\": ");
                    sweep_sb_num(sj, x->med);
                } else {
                    sweep_sb_puts(md, " | none | - |");
                    sweep_sb_puts(sj, "null, \"median\": null");
                }
                sweep_sb_puts(md, " ");
                sweep_sb_puts(md, div.n ? div.s : "-");
                sweep_sb_puts(md, " |\n");
                sweep_sb_puts(sj, ", \"diverged\": [");
                if (jdiv.n)
                    sweep_sb_add(sj, jdiv.s, jdiv.n);
                sweep_sb_puts(sj, "]}");
                free(title);
                free(div.s);
                free(jdiv.s);
            }
        }
    }
    if (rows)
        sweep_sb_puts(sj, "\n  ]");
}

/* The extent of a figure's points, for the scales of its axes. */
typedef struct {
    bool numeric;            /* every value of the axis is a number (else x is its index) */
    bool xpos, ypos;         /* every x, every min is positive */
    double xmin, xmax, ymin, ymax;
} extent;

/* A figure's data: one block of .dat rows (x, median, min, max) per
 * series, every combination of the other axes in grid order, and the
 * plot clauses naming the data file DAT; the y extent into ex.  How many
 * series have a point. */
static size_t figure_series(const sweep *s, size_t a, size_t c, size_t ncols, const mstat *st, const size_t *stride,
                            extent *ex, sbuf *dat, sbuf *plot)
{
    const axis *ax = &s->axes[a];
    size_t nseries = s->npoints / ax->nvalues;
    size_t drawn = 0;
    for (size_t sr = 0; sr < nseries; sr++) {
        size_t base = series_base(s, a, sr, stride), rows = 0;
        sbuf block = { 0 };
        for (size_t v = 0; v < ax->nvalues; v++) {
            const mstat *x = &st[(base + v * stride[a]) * ncols + c];
            if (!x->n)
                continue;
            if (ex->numeric)
                sweep_sb_puts(&block, ax->values[v]);
            else
                sweep_sb_printf(&block, "%zu", v);
            sweep_sb_add(&block, " ", 1);
            sweep_sb_num(&block, x->med);
            sweep_sb_add(&block, " ", 1);
            sweep_sb_num(&block, x->min);
            sweep_sb_add(&block, " ", 1);
            sweep_sb_num(&block, x->max);
            ex->ypos = ex->ypos && x->min > 0;
            ex->ymin = fmin(ex->ymin, x->min);
            ex->ymax = fmax(ex->ymax, x->max);
            sweep_sb_add(&block, "\n", 1);
            rows++;
        }
        if (rows) {
            sweep_sb_add(dat, block.s, block.n);
            sweep_sb_puts(dat, "\n\n");
            char *title = series_title(s, a, base);
            sweep_sb_printf(plot, "%s'%s' index %zu using 1:2:3:4 with yerrorlines title ", drawn ? ", \\\n     " : "",
                            "DAT", drawn);
            gp_str(plot, *title ? title : "median; bars: min to max");
            free(title);
            drawn++;
        }
        free(block.s);
    }
    return drawn;
}

/* A figure's gnuplot script: base.png from datname, titled and labelled,
 * log scales where the extent spans two decades, plot the clauses. */
static void figure_script(sbuf *gp, const char *base, const char *png, const char *datname, const char *col,
                          const axis *ax, const extent *ex, size_t drawn, const char *plot)
{
    sweep_sb_puts(gp, "# written by ibc sweep: gnuplot ");
    sweep_sb_puts(gp, base);
    sweep_sb_puts(gp, ".gp (in this directory) draws ");
    sweep_sb_puts(gp, base);
    sweep_sb_puts(gp, ".png\nset terminal pngcairo size 820,500 noenhanced font 'sans,10'\nset output ");
    gp_str(gp, png);
    sweep_sb_puts(gp, "\nset title ");
    char *title = sweep_xprintf("%s against %s (median over seeds; bars: min to max)", col, ax->key);
    gp_str(gp, title);
    free(title);
    sweep_sb_puts(gp, "\nset xlabel ");
    gp_str(gp, ax->key);
    sweep_sb_puts(gp, "\nset ylabel ");
    gp_str(gp, col);
    bool logx = ex->numeric && ex->xpos && ex->xmax >= 100 * ex->xmin, logy = ex->ypos && ex->ymax >= 100 * ex->ymin;
    sweep_sb_printf(gp, "\nset grid\nset key %s\n", drawn > 1 ? "outside right" : "top right");
    /* a margin around the points on linear axes (graph offsets misbehave on log ones) */
    sweep_sb_printf(gp, "set offsets %s, %s, %s, %s\n", logx ? "0" : "graph 0.05", logx ? "0" : "graph 0.05",
                    logy ? "0" : "graph 0.05", logy ? "0" : "graph 0.05");
    if (logx)
        sweep_sb_printf(gp, "set logscale x\nset format x '%%g'\nset xrange [%.6g:%.6g]\n", ex->xmin / 1.6,
                        ex->xmax * 1.6);
    if (logy)
        sweep_sb_puts(gp, "set logscale y\nset format y '%g'\n");
    if (!ex->numeric) {
        sweep_sb_puts(gp, "set xtics (");
        for (size_t v = 0; v < ax->nvalues; v++) {
            if (v)
                sweep_sb_puts(gp, ", ");
            gp_str(gp, ax->values[v]);
            sweep_sb_printf(gp, " %zu", v);
        }
        sweep_sb_puts(gp, ")\n");
    }
    sweep_sb_puts(gp, "plot ");
    /* the data file's name in place of DAT */
    for (const char *p = plot; *p; p++) {
        if (!strncmp(p, "'DAT'", 5)) {
            gp_str(gp, datname);
            p += 4;
        } else
            sweep_sb_add(gp, p, 1);
    }
    sweep_sb_puts(gp, "\n");
}

/* The figures: for each wanted metric and each axis of two values or more,
 * figures/METRIC_vs_AXIS.{dat,gp,png}: the median over the counted seeds
 * (bars from min to max) against the axis, one line per combination of
 * the other axes' values.  Names of drawn figures are added to figs. */
static void figures(sweep *s, char **cols, size_t ncols, const mstat *st, sbuf *notes, char ***figs, size_t *nfigs)
{
    char *fdir = sweep_xprintf("%s/figures", s->out);
    bool made_dir = false, gnuplot_missing = false;
    size_t stride[SWEEP_MAX_AXES];
    grid_strides(s, stride);
    for (size_t c = 0; c < ncols; c++) {
        if (!plot_wanted(s, cols[c]))
            continue;
        for (size_t a = 0; a < s->naxes; a++) {
            const axis *ax = &s->axes[a];
            if (ax->nvalues < 2)
                continue;
            extent ex = { true, true, true, INFINITY, -INFINITY, INFINITY, -INFINITY };
            for (size_t v = 0; v < ax->nvalues; v++) {
                double x;
                ex.numeric = ex.numeric && sweep_numeric_text(ax->values[v], &x);
                if (ex.numeric) {
                    ex.xpos = ex.xpos && x > 0;
                    ex.xmin = fmin(ex.xmin, x);
                    ex.xmax = fmax(ex.xmax, x);
                }
            }
            sbuf dat = { 0 }, gp = { 0 };
            sweep_sb_printf(&dat, "# %s against %s: x, median, min, max over the seeds that ran to the end\n", cols[c],
                            ax->key);
            sbuf plot = { 0 };
            size_t drawn = figure_series(s, a, c, ncols, st, stride, &ex, &dat, &plot);
            char *fs = sweep_safe_name(cols[c], 60), *as = sweep_safe_name(ax->key, 40);
            char *base = sweep_xprintf("%s_vs_%s", fs, as);
            free(fs);
            free(as);
            if (!drawn) {
                sweep_sb_printf(notes, "- %s against %s: no run of any grid point ran to its end; no figure.\n",
                                cols[c], ax->key);
                free(dat.s);
                free(plot.s);
                free(base);
                continue;
            }
            char *png = sweep_xprintf("%s.png", base), *datname = sweep_xprintf("%s.dat", base);
            figure_script(&gp, base, png, datname, cols[c], ax, &ex, drawn, plot.s);
            free(plot.s);
            if (!made_dir && !sweep_mkdir_p(fdir)) {
                fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", fdir, strerror(errno));
                free(dat.s);
                free(gp.s);
                free(png);
                free(datname);
                free(base);
                break;
            }
            made_dir = true;
            char *dpath = sweep_xprintf("%s/%s", fdir, datname), *gpath = sweep_xprintf("%s/%s.gp", fdir, base),
                 *ppath = sweep_xprintf("%s/%s", fdir, png), *gpname = sweep_xprintf("%s.gp", base),
                 *glog = sweep_xprintf("%s/gnuplot.log", fdir);
            if (sweep_write_atomic(dpath, dat.s, dat.n) && sweep_write_atomic(gpath, gp.s, gp.n)) {
                int ws = -1;
                if (!gnuplot_missing) {
                    char *argv[] = { "gnuplot", gpname, NULL };
                    unlink(ppath);
                    pid_t pid = sweep_spawn("gnuplot", argv, NULL, glog, fdir, false);
                    ws = pid > 0 ? sweep_wait_for(pid) : -1;
                    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 127) {
                        gnuplot_missing = true;
                        sweep_sb_puts(notes, "- gnuplot was not found: each figure's script and data are in figures/ "
                                             "(`gnuplot NAME.gp` there draws it).\n");
                    }
                }
                if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && sweep_exists(ppath)) {
                    *figs = sweep_xrealloc(*figs, (*nfigs + 1) * sizeof **figs);
                    (*figs)[(*nfigs)++] = sweep_xprintf("%s|%s against %s", png, cols[c], ax->key);
                } else if (!gnuplot_missing) {
                    sweep_sb_printf(notes, "- figures/%s.gp: gnuplot failed (figures/gnuplot.log).\n", base);
                    fprintf(stderr, "ibc sweep: warning: gnuplot failed on %s (see %s)\n", gpath, glog);
                }
            }
            free(dpath);
            free(gpath);
            free(ppath);
            free(gpname);
            free(glog);
            free(dat.s);
            free(gp.s);
            free(png);
            free(datname);
            free(base);
        }
    }
    free(fdir);
}

/* --plot names no run has: a warning and a note in sweep.md */
static void plot_warnings(const sweep *s, const sweep_table *t, sbuf *notes)
{
    char **cols = t->cols;
    size_t ncols = t->ncols;
    if (s->nplot)
        for (size_t k = 0; k < s->nplot; k++) {
            bool any = false;
            for (size_t c = 0; c < ncols && !any; c++) {
                size_t n = strlen(s->plot[k]);
                any = s->plot[k][n - 1] == '*' ? !strncmp(cols[c], s->plot[k], n - 1) : !strcmp(cols[c], s->plot[k]);
            }
            if (!any && ncols) {
                const char *best = diag_suggest(s->plot[k], (const char *const *)cols, ncols);
                fprintf(stderr, "ibc sweep: warning: --plot %s: no run has this metric%s%s%s (sweep.csv has them all)\n",
                        s->plot[k], best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
                sweep_sb_printf(notes, "- --plot %s: no run has this metric%s%s%s.\n", s->plot[k],
                                best ? "; did you mean `" : "", best ? best : "", best ? "`?" : "");
            }
        }
}

/* sweep.md's head: the command, the grid, the counts */
static void md_head(const sweep *s, const sweep_table *t, double wall_sum, sbuf *md)
{
    size_t n_complete = t->n_complete, n_failed = t->n_failed, n_unfinished = t->n_unfinished;
    sweep_sb_printf(md, "# Sweep of %s (model %s)\n\nWritten by `ibc sweep` (docs/sweeps.md); running the same command "
                        "again continues the sweep:\n\n    %s\n\n", s->spec_path, s->spec->model, s->cmdline);
    sweep_sb_printf(md, "%zu grid point%s x %ld seed%s (%llu..%llu) = %zu runs; %zu trainer%s (models/).\n\n",
                    s->npoints, s->npoints == 1 ? "" : "s", s->seeds, s->seeds == 1 ? "" : "s", s->seed0,
                    s->seed0 + (unsigned long long)s->seeds - 1, s->nruns, s->nmodels, s->nmodels == 1 ? "" : "s");
    for (size_t k = 0; k < s->naxes; k++) {
        sweep_sb_printf(md, "- `%s` (%s%s): ", s->axes[k].key, s->axes[k].e.canon,
                        s->axes[k].runtime ? ", the trainer's --steps" : "");
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            sweep_sb_printf(md, "%s`%s`", v ? ", " : "", s->axes[k].values[v]);
        sweep_sb_puts(md, "\n");
    }
    sweep_sb_printf(md, "\nRuns: %zu complete, %zu did not complete, %zu unfinished.  Total trainer wall time %.1f s "
                        "(timings.csv).\n\n", n_complete, n_failed, n_unfinished, wall_sum);
}

/* the summary table: the plotted metrics */
static void md_summary(const sweep *s, const sweep_table *t, sbuf *md)
{
    char **cols = t->cols;
    size_t ncols = t->ncols;
    const mstat *st = t->st;
    size_t(*cnt)[5] = t->cnt;
    size_t shown[8], nshown = 0;
    for (size_t c = 0; c < ncols && nshown < 8; c++)
        if (plot_wanted(s, cols[c]))
            shown[nshown++] = c;
    sweep_sb_puts(md, "## Summary\n\nMedian over the seeds whose training ran to its end [min, max] (all metrics: "
                      "summary.csv, summary.json).\n\n| point |");
    for (size_t k = 0; k < s->naxes; k++) {
        sweep_sb_add(md, " ", 1);
        md_cell(md, s->axes[k].key);
        sweep_sb_puts(md, " |");
    }
    sweep_sb_puts(md, " complete | diverged | failed | unfinished |");
    for (size_t q = 0; q < nshown; q++) {
        sweep_sb_add(md, " ", 1);
        md_cell(md, cols[shown[q]]);
        sweep_sb_puts(md, " |");
    }
    sweep_sb_puts(md, "\n|");
    for (size_t k = 0; k < s->naxes + 5 + nshown; k++)
        sweep_sb_puts(md, "---|");
    sweep_sb_add(md, "\n", 1);
    for (size_t p = 0; p < s->npoints; p++) {
        sweep_sb_printf(md, "| %zu |", p);
        for (size_t k = 0; k < s->naxes; k++) {
            sweep_sb_add(md, " ", 1);
            md_cell(md, s->axes[k].values[s->points[p].vi[k]]);
            sweep_sb_puts(md, " |");
        }
        sweep_sb_printf(md, " %zu/%ld | %zu | %zu | %zu |", cnt[p][0] + cnt[p][1], s->seeds, cnt[p][2],
                        cnt[p][1] + cnt[p][3], cnt[p][4]);
        for (size_t q = 0; q < nshown; q++) {
            const mstat *x = &st[p * ncols + shown[q]];
            if (x->n)
                sweep_sb_printf(md, " %.4g [%.4g, %.4g] |", x->med, x->min, x->max);
            else
                sweep_sb_puts(md, " - |");
        }
        sweep_sb_add(md, "\n", 1);
    }
}

/* the runs that did not complete, each with the last line of its log */
static void md_failed(const sweep *s, const sweep_table *t, sbuf *md)
{
    const result *res = t->res;
    size_t n_failed = t->n_failed, n_unfinished = t->n_unfinished;
    if (n_failed || n_unfinished) {
        sweep_sb_puts(md, "\n## Runs that did not complete\n\n| run | status | exit | last line of trainer.log |\n"
                          "|---|---|---|---|\n");
        for (size_t i = 0; i < s->nruns; i++) {
            if (res[i].finished && !strcmp(res[i].status, "complete"))
                continue;
            char *lp = sweep_xprintf("%s/trainer.log", s->runs[i].dir), *log = sweep_read_text(lp, NULL), *last = "";
            free(lp);
            if (log) {
                size_t n = strlen(log);
                while (n && log[n - 1] == '\n')
                    log[--n] = '\0';
                char *nl = strrchr(log, '\n');
                last = nl ? nl + 1 : log;
            }
            sweep_sb_puts(md, "| ");
            md_cell(md, s->runs[i].rel);
            sweep_sb_printf(md, " | %s | ", res[i].status);
            md_cell(md, res[i].exitv);
            sweep_sb_puts(md, " | ");
            md_cell(md, last);
            sweep_sb_puts(md, " |\n");
            free(log);
        }
        if (n_unfinished)
            sweep_sb_puts(md, "\nUnfinished runs continue (from their checkpoint when they have one) when the command "
                              "above is run again.\n");
    }
}

/* the learning-rate choice, the figures (freed here), the notes, the files */
static void md_tail(const sbuf *lrmd, char **figs, size_t nfigs, const sbuf *notes, sbuf *md)
{
    if (lrmd->n)
        sweep_sb_add(md, lrmd->s, lrmd->n);
    sweep_sb_puts(md, "\n## Figures\n\n");
    if (!nfigs)
        sweep_sb_puts(md, "None drawn (an axis needs two values or more; --plot chooses the metrics).\n");
    for (size_t f = 0; f < nfigs; f++) {
        char *bar = strchr(figs[f], '|');
        *bar = '\0';
        sweep_sb_printf(md, "![%s](figures/%s)\n\n", bar + 1, figs[f]);
        free(figs[f]);
    }
    free(figs);
    if (notes->n) {
        sweep_sb_puts(md, "\n## Notes\n\n");
        sweep_sb_add(md, notes->s, notes->n);
    }
    sweep_sb_puts(md, "\n## Files\n\n"
                      "- `sweep.csv`: one row per run: its settings, seed, status, the trainer's exit status, checks "
                       "passed and failed, every scalar metric of its results.json, its directory.\n"
                       "- `summary.csv`, `summary.json`: per grid point, counts of runs by status and the median, min "
                       "and max of every metric over the runs that ran to their end.\n"
                       "- `timings.csv`: wall time, start and end of every run.\n"
                       "- `runs/LABEL/seed_S/`: each run's own outputs (results.json, traces, parameters, "
                       "trainer.log).\n"
                       "- `models/HASH/`: each trainer, its derived spec.ibs and trainer.c.\n"
                       "- `figures/`: the figures, with their data (.dat) and gnuplot scripts (.gp).\n");
}

/* DIR/name from buf, atomically; false after an error message */
static bool write_output(const sweep *s, const char *name, const sbuf *buf)
{
    char *path = sweep_xprintf("%s/%s", s->out, name);
    bool ok = sweep_write_atomic(path, buf->s ? buf->s : "", buf->n);
    free(path);
    return ok;
}

int sweep_report(sweep *s)
{
    sweep_table t;
    sweep_collect(s, &t);
    sbuf csv = { 0 }, sc = { 0 }, sj = { 0 }, lrmd = { 0 }, tc = { 0 };
    sweep_csv(s, &t, &csv);
    sweep_summary(s, &t, &sc, &sj);
    lr_choice(s, t.cols, t.ncols, t.st, t.cnt, &sj, &lrmd);
    sweep_sb_puts(&sj, "\n}\n");
    sweep_timings(s, &t, &tc);

    int status = 0;
    if (!sweep_mkdir_p(s->out)) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", s->out, strerror(errno));
        status = 1;
    }
    if (!write_output(s, "sweep.csv", &csv))
        status = 1;
    if (!write_output(s, "summary.csv", &sc))
        status = 1;
    if (!write_output(s, "summary.json", &sj))
        status = 1;
    if (!write_output(s, "timings.csv", &tc))
        status = 1;

    /* figures and sweep.md */
    sbuf notes = { 0 }, md = { 0 };
    char **figs = NULL;
    size_t nfigs = 0;
    plot_warnings(s, &t, &notes);
    figures(s, t.cols, t.ncols, t.st, &notes, &figs, &nfigs);
    md_head(s, &t, t.wall_sum, &md);
    md_summary(s, &t, &md);
    md_failed(s, &t, &md);
    md_tail(&lrmd, figs, nfigs, &notes, &md);
    if (!write_output(s, "sweep.md", &md))
        status = 1;
    fprintf(stderr, "sweep: %zu complete, %zu did not complete, %zu unfinished: %s/sweep.md\n", t.n_complete,
            t.n_failed, t.n_unfinished, s->out);

    size_t n_failed = t.n_failed, n_unfinished = t.n_unfinished;
    free(lrmd.s);
    free(notes.s);
    free(md.s);
    free(csv.s);
    free(sc.s);
    free(sj.s);
    free(tc.s);
    sweep_table_free(s, &t);
    if (status)
        return status;
    if (sweep_stopping())
        return 128 + sweep_stopping();
    if (n_unfinished)
        return 75;
    return n_failed ? 3 : 0;
}
