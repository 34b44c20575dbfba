/*
 * sweep.c: `ibc sweep`, a grid of ordinary trainer runs.  The contract is
 * in sweep.h, the user's account in docs/sweeps.md, the files of the
 * sweep and what each owns in sweep_impl.h.
 *
 * Here: the help text, sweep_open (the command line, the plan, the lock
 * on DIR, the builds), sweep_free and sweep_main.  In order, a sweep is:
 * the command line (sweep_parse_args, sweep_grid.c); each --set key
 * resolved to an edit of the spec's text (sweep_resolve_key); the grid
 * points, their derived texts and the distinct trainers among them, each
 * checked by the ordinary front end (sweep_plan, sweep_plan.c); the builds
 * (sweep_build_models, sweep_run.c); the runs (sweep_run_all); the
 * outputs, read back from the run directories alone (sweep_report,
 * sweep_report.c).
 */
#include "sweep_impl.h"
const char sweep_usage[] =
    "ibc sweep SPEC [--set KEY=V1,V2,...]... [--seeds K] [--seed S] [--jobs N] [--out DIR]\n"
    "                 [--plot M1,M2,...] [--checkpoint-every N] [--max-growth F] [--dry-run]";

const char sweep_help[] =
    "Run the spec's trainer over a grid: every combination of the --set values,\n"
    "each with K seeds, as ordinary trainer runs in DIR/runs/LABEL/seed_S.\n\n"
    "  --set KEY=V1,V2,...  an axis of the grid.  KEY is a setting of the spec:\n"
    "                       lr, steps, batch, record_every, extend.steps, extend.lr\n"
    "                       (train); depth, strength, rank, design.lr, design.init,\n"
    "                       design.FACTOR (design); a dim by name (n or dim.n);\n"
    "                       param.NAME (its initialisation); data.ARG, init.ARG;\n"
    "                       verify.KEY; vanilla.lr, l1.lr, l1.weight (baselines).\n"
    "                       Values are expressions as in the spec (1e-3, 4/3, full,\n"
    "                       normal(0, 0.1)); commas inside brackets stay in a value.\n"
    "                       A learning rate may be auto or auto(LO, HI, steps = K)\n"
    "                       (chosen by the trainer's trial runs, docs/sweeps.md).\n"
    "  --seeds K            seeds S..S+K-1 for every grid point (default 1)\n"
    "  --seed S             the first seed (default: the spec's)\n"
    "  --jobs N             trainers at once, each with OPENBLAS_NUM_THREADS=1\n"
    "                       (default: the number of cores)\n"
    "  --out DIR            default results/MODEL-sweep\n"
    "  --plot M1,M2,...     metrics drawn against each axis (default: final_loss*\n"
    "                       and test_mse*; M* names every metric starting with M)\n"
    "  --checkpoint-every N passed to every trainer (default: a tenth of its steps)\n"
    "  --max-growth F       passed to every trainer (divergence threshold)\n"
    "  --dry-run            check every grid point and print the plan; run nothing\n\n"
    "steps and seed are trainer flags: they never rebuild.  Each distinct derived\n"
    "spec is built once into DIR/models/HASH.  Run again over the same DIR to\n"
    "continue: finished runs are kept, interrupted ones resume from their\n"
    "checkpoint.  Outputs: DIR/sweep.csv (one row per run), summary.csv and\n"
    "summary.json (median/min/max per grid point), timings.csv, figures/ and\n"
    "sweep.md (docs/sweeps.md).\n"
    "Exit status: 0 every run complete and its checks pass, 1 sweep error,\n"
    "2 usage or a refused --set, 3 some runs diverged or failed, 75 some runs\n"
    "unfinished (rerun to continue), 128+N stopped by signal N.";

size_t sweep_nruns(const sweep *s) { return s->nruns; }
bool sweep_run_finished(const sweep *s, size_t i) { return s->runs[i].state == RUN_FINISHED; }
/* ------------------------------------------------------------ open, main */

/* One sweep at a time in a directory: a lock on DIR/.lock (fcntl, released
 * when the process ends, however it ends). */
static bool lock_out(sweep *s)
{
    char *path = sweep_xprintf("%s/.lock", s->out);
    s->lock_fd = open(path, O_RDWR | O_CREAT, 0666);
    if (s->lock_fd < 0) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", path, strerror(errno));
        free(path);
        return false;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(s->lock_fd, F_SETLK, &fl) != 0) {
        fl.l_type = F_WRLCK;
        long other = fcntl(s->lock_fd, F_GETLK, &fl) == 0 ? (long)fl.l_pid : 0;
        fprintf(stderr, "ibc sweep: error: another sweep or a trainer (process %ld) is running in %s: wait for it, "
                "or sweep into another --out\n", other, s->out);
        close(s->lock_fd);
        s->lock_fd = -1;
        free(path);
        return false;
    }
    free(path);
    return true;
}

sweep *sweep_open(int argc, char **argv, sweep_mode mode, int *status)
{
    sweep *s = sweep_xcalloc(1, sizeof *s);
    s->mode = mode;
    s->lock_fd = -1;
    *status = sweep_parse_args(s, argc, argv);
    if (!*status)
        *status = sweep_plan(s);
    if (!*status && s->dry_run) {
        sweep_print_plan(s);
        sweep_free(s);
        return NULL;
    }
    if (!*status && mode == SWEEP_PREPARE) {
        if (!sweep_mkdir_p(s->out)) {
            fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", s->out, strerror(errno));
            *status = 1;
        } else if (!lock_out(s))
            *status = 1;
        else
            *status = sweep_build_models(s);
    }
    if (!*status && mode == SWEEP_ATTACH)
        for (size_t j = 0; j < s->nmodels && !*status; j++) {
            char *exe = sweep_xprintf("%s/models/%s/trainer", s->out, s->models[j].hex);
            if (access(exe, X_OK) != 0) {
                fprintf(stderr, "ibc sweep: error: %s is missing (is %s on a file system every process sees?)\n", exe,
                        s->out);
                *status = 1;
            }
            free(exe);
        }
    if (*status) {
        sweep_free(s);
        return NULL;
    }
    return s;
}

void sweep_free(sweep *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->naxes; k++) {
        free((char *)s->axes[k].key);
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            free(s->axes[k].values[v]);
        free(s->axes[k].values);
        free(s->axes[k].steps);
    }
    for (size_t k = 0; k < s->nplot; k++)
        free(s->plot[k]);
    free(s->plot);
    for (size_t j = 0; j < s->nmodels; j++) {
        free(s->models[j].text);
        free(s->models[j].code);
    }
    free(s->models);
    for (size_t p = 0; p < s->npoints; p++) {
        free(s->points[p].vi);
        free(s->points[p].label);
        free(s->points[p].settings);
    }
    free(s->points);
    for (size_t i = 0; i < s->nruns; i++) {
        free(s->runs[i].dir);
        free(s->runs[i].rel);
    }
    free(s->runs);
    if (s->arena)
        arena_free(s->arena);
    diag_source_free(&s->src);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->cmdline);
    free(s->out_alloc);
    free(s);
}

int sweep_main(int argc, char **argv)
{
    int status;
    sweep_signals();
    sweep *s = sweep_open(argc, argv, SWEEP_PREPARE, &status);
    if (!s)
        return status;
    sweep_run_all(s, s->jobs);
    status = sweep_report(s);
    sweep_free(s);
    return status;
}