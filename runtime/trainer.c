/*
 * trainer.c: what every generated trainer shares: its command line, a
 * progress line, the table of checks, summary statistics and singular
 * values.
 */
#include "ibrt.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v > 1) || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* --help: the usage, each option, the exit statuses (stdout) */
static void opts_help(const char *prog, const char *description, long default_steps, uint64_t default_seed)
{
    printf("usage: %s [--steps N] [--seed S] [--seeds K] [--out DIR] [--quiet] [--gradcheck] [--stability]\n"
           "       [--checkpoint-every N] [--stop-after N] [--resume DIR] [--max-growth F] [--reference]\n"
           "       [--snapshots N] [--verify RUN]\n\n%s\n\n"
           "  --steps N     training steps per model (default %ld)\n"
           "  --seed S      seed of data, initialisation and batches (default %llu)\n"
           "  --seeds K     K independent seeds S..S+K-1; metrics summarised by median/min/max\n"
           "  --out DIR     where results.json, traces and parameters go (default results/%s)\n"
           "  --quiet       no progress line and no table\n"
           "  --gradcheck   compare the analytic gradient of every model with central\n"
           "                differences at its initial point and exit (status 5 on failure)\n"
           "  --stability   the largest Hessian eigenvalue of every model's loss at its\n"
           "                initial point and the bound 2/lambda on the learning rate;\n"
           "                no training, no output directory (ibc check --stability)\n"
           "  --checkpoint-every N  write DIR/checkpoint.bin every N steps (also on SIGINT, SIGTERM,\n"
           "                        SIGHUP, SIGXCPU, SIGUSR1, SIGUSR2)\n"
           "  --stop-after N        checkpoint and stop after N steps of this process (status 75)\n"
           "  --resume DIR          continue the run checkpointed in DIR, bit for bit\n"
           "  --max-growth F        stop as diverged when the loss exceeds F times its first value\n"
           "                        (default 1e6)\n"
           "  --reference           run reference methods at any size (matrix completion's\n"
           "                        soft-impute sweep, 9000 SVDs, is skipped above 64 x 64)\n"
           "  --snapshots N         every model's parameters, and the gradient of the step\n"
           "                        taken from them, every N steps and at the end, as\n"
           "                        DIR/snapshots/MODEL/step_S/NAME.npy and NAME.grad.npy\n"
           "                        (the layout ibc verify reads; docs/interop.md); kept in\n"
           "                        the checkpoint: --resume goes on writing them\n"
           "  --verify RUN          train nothing: the checks and metrics of the run whose\n"
           "                        snapshots are in RUN (RUN/step_S/NAME.npy, made by this\n"
           "                        trainer's --snapshots or by PyTorch), into RUN/verify\n"
           "                        unless --out is given (ibc verify)\n\n"
           "exit status: 0 all checks pass, 1 error, 2 usage, 3 diverged, 4 a check failed,\n"
           "5 gradient check failed, 6 the output directory is in use by another run,\n"
           "75 stopped (--stop-after), 128+N stopped by signal N\n"
           "environment: OPENBLAS_NUM_THREADS (default 1; --resume needs the run's)\n",
           prog, description, default_steps, (unsigned long long)default_seed, prog);
}

/* An unknown option, or a known one with a missing or bad value (v: the
 * next argument, NULL at the end): the message (stderr). */
static void opts_refuse(const char *prog, const char *a, const char *v)
{
    static const char *const takes[][2] = {
        { "--steps", "a whole number from 1 to 1000000000" },
        { "--seed", "a whole number from 0 to 2147483647" },
        { "--seeds", "a whole number from 1 to 1000" },
        { "--checkpoint-every", "a whole number from 1 to 1000000000" },
        { "--stop-after", "a whole number from 1 to 1000000000" },
        { "--snapshots", "a whole number from 1 to 1000000000" },
        { "--verify", "the directory of a run's snapshots" },
        { "--resume", "the directory of a checkpointed run" },
        { "--max-growth", "a finite number greater than 1 (the default is 1e6)" },
        { "--out", "a directory" },
    };
    size_t k = 0;
    while (k < sizeof takes / sizeof takes[0] && strcmp(a, takes[k][0]))
        k++;
    if (k == sizeof takes / sizeof takes[0])
        fprintf(stderr, "%s: error: unknown option '%s'\n", prog, a);
    else if (!v)
        fprintf(stderr, "%s: error: %s needs a value: %s\n", prog, a, takes[k][1]);
    else
        fprintf(stderr, "%s: error: %s '%s': expected %s\n", prog, a, v, takes[k][1]);
    fprintf(stderr, "run '%s --help' for the options\n", prog);
}

int ibrt_opts_parse(int argc, char **argv, ibrt_opts *o, const char *prog, const char *description,
                    long default_steps, uint64_t default_seed)
{
    static char outbuf[512];
    o->steps = default_steps;
    o->seed = default_seed;
    o->seeds = 1;
    o->quiet = 0;
    o->gradcheck = false;
    o->stability = false;
    o->reference = false;
    o->checkpoint_every = 0;
    o->resume = NULL;
    o->stop_after = 0;
    o->max_growth = 1e6;
    o->snapshots = 0;
    o->verify = NULL;
    o->steps_given = o->seed_given = o->max_growth_given = o->out_given = false;
    snprintf(outbuf, sizeof outbuf, "results/%s", prog);
    o->out_dir = outbuf;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opts_help(prog, description, default_steps, default_seed);
            return 1;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "--steps") && v && parse_long(v, 1, 1000000000L, &x)) {
            o->steps = x;
            o->steps_given = true;
            i++;
        } else if (!strcmp(a, "--seed") && v && parse_long(v, 0, 2147483647L, &x)) {
            o->seed = (uint64_t)x;
            o->seed_given = true;
            i++;
        } else if (!strcmp(a, "--seeds") && v && parse_long(v, 1, 1000, &x)) {
            o->seeds = (int)x;
            i++;
        } else if (!strcmp(a, "--gradcheck")) {
            o->gradcheck = true;
        } else if (!strcmp(a, "--stability")) {
            o->stability = true;
        } else if (!strcmp(a, "--reference")) {
            o->reference = true;
        } else if (!strcmp(a, "--checkpoint-every") && v && parse_long(v, 1, 1000000000L, &x)) {
            o->checkpoint_every = x;
            i++;
        } else if (!strcmp(a, "--snapshots") && v && parse_long(v, 1, 1000000000L, &x)) {
            o->snapshots = x;
            i++;
        } else if (!strcmp(a, "--verify") && v && *v) {
            o->verify = v;
            i++;
        } else if (!strcmp(a, "--stop-after") && v && parse_long(v, 1, 1000000000L, &x)) {
            o->stop_after = x;
            i++;
        } else if (!strcmp(a, "--resume") && v && *v) {
            o->resume = v;
            i++;
        } else if (!strcmp(a, "--max-growth") && v && parse_double(v, &o->max_growth)) {
            o->max_growth_given = true;
            i++;
        } else if (!strcmp(a, "--out") && v) {
            o->out_dir = v;
            o->out_given = true;
            i++;
        } else {
            opts_refuse(prog, a, v);
            return -1;
        }
    }
    return 0;
}

int ibrt_opts_check(const ibrt_opts *o, const char *prog)
{
    /* directories: every output path is DIR/... in fixed buffers of at
     * least 900 bytes (DIR/seed_N/snapshots/MODEL/step_S/NAME.grad.npy,
     * names of at most 128 characters): a longer DIR is refused here
     * rather than cut short there */
    const char *const dirs[][2] = { { "--out", o->out_dir }, { "--resume", o->resume }, { "--verify", o->verify } };
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        const char *d = dirs[k][1];
        if (!d)
            continue;
        size_t n = strlen(d);
        if (n == 0 || n > IBRT_MAX_DIR) {
            fprintf(stderr, "%s: error: %s: %s\n", prog, dirs[k][0],
                    n ? "a directory name of at most " IBRT_MAX_DIR_TEXT " bytes (it becomes the start of every "
                        "output path)"
                      : "an empty directory name");
            return 2;
        }
    }
    if (o->resume && o->out_given && strcmp(o->out_dir, o->resume)) {
        fprintf(stderr, "%s: error: --resume DIR writes into DIR, where the run was checkpointed; drop --out\n", prog);
        return 2;
    }
    if (o->resume && (o->seeds > 1 || o->gradcheck)) {
        fprintf(stderr, "%s: error: --resume continues one run: resume each seed's directory (OUT/seed_N) on its "
                "own, without --seeds or --gradcheck\n", prog);
        return 2;
    }
    if (o->verify && (o->seeds > 1 || o->gradcheck || o->resume || o->snapshots)) {
        fprintf(stderr, "%s: error: --verify RUN checks one run's snapshots: without --seeds, --gradcheck, "
                "--resume or --snapshots\n", prog);
        return 2;
    }
    return 0;
}

double ibrt_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ibrt_progress_begin(ibrt_progress *p, const char *label, long total, bool quiet)
{
    p->label = label;
    p->total = total;
    p->start = p->last = ibrt_time_now();
    p->active = !quiet && isatty(STDERR_FILENO);
}

void ibrt_progress_update(ibrt_progress *p, long step, double loss)
{
    if (!p->active)
        return;
    double now = ibrt_time_now();
    if (now - p->last < 0.1)
        return;
    p->last = now;
    double rate = (double)step / (now - p->start + 1e-12);
    fprintf(stderr, "\r[%s] step %ld/%ld  %.0f steps/s  ETA %.0fs  loss %.4g   ", p->label, step, p->total, rate,
            (double)(p->total - step) / (rate + 1e-12), loss);
}

void ibrt_progress_end(ibrt_progress *p)
{
    if (p->active)
        fprintf(stderr, "\r\033[K");
}

void ibrt_checks_add(ibrt_checks *t, const char *name, double value, double expected, double tolerance, bool pass,
                     const char *detail)
{
    if (t->n == IBRT_MAX_CHECKS) {
        /* a dropped check must not let the table pass: the last row becomes a failure saying why */
        ibrt_check *last = &t->c[IBRT_MAX_CHECKS - 1];
        snprintf(last->name, sizeof last->name, "check table full");
        snprintf(last->detail, sizeof last->detail, "more than %d checks; '%.60s' and later ones were dropped",
                 IBRT_MAX_CHECKS, name);
        last->value = last->expected = last->tolerance = 0;
        last->pass = false;
        return;
    }
    ibrt_check *c = &t->c[t->n++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->detail, sizeof c->detail, "%s", detail ? detail : "");
    c->value = value;
    c->expected = expected;
    c->tolerance = tolerance;
    c->pass = pass;
}

void ibrt_checks_print(const ibrt_checks *t, FILE *out)
{
    fprintf(out, "%-52s %14s %14s %10s  %s\n", "check", "value", "expected", "tolerance", "result");
    for (size_t i = 0; i < t->n; i++) {
        const ibrt_check *c = &t->c[i];
        fprintf(out, "%-52s %14.6g %14.6g %10.2g  %s%s%s\n", c->name, c->value, c->expected, c->tolerance,
                c->pass ? "PASS" : "FAIL", c->detail[0] ? "  " : "", c->detail);
    }
}

void ibrt_checks_to_json(const ibrt_checks *t, ibrt_json *j)
{
    ibrt_json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++) {
        const ibrt_check *c = &t->c[i];
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "name");
        ibrt_json_str(j, c->name);
        ibrt_json_key(j, "value");
        ibrt_json_num(j, c->value);
        ibrt_json_key(j, "expected");
        ibrt_json_num(j, c->expected);
        ibrt_json_key(j, "tolerance");
        ibrt_json_num(j, c->tolerance);
        ibrt_json_key(j, "pass");
        ibrt_json_bool(j, c->pass);
        if (c->detail[0]) {
            ibrt_json_key(j, "detail");
            ibrt_json_str(j, c->detail);
        }
        ibrt_json_obj_end(j);
    }
    ibrt_json_arr_end(j);
}

bool ibrt_checks_all_pass(const ibrt_checks *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->c[i].pass)
            return false;
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ibrt_stats_median_min_max(double *x, size_t n, double *med, double *min, double *max)
{
    if (n == 0) {
        *med = *min = *max = NAN;
        return;
    }
    qsort(x, n, sizeof *x, cmp_double);
    *min = x[0];
    *max = x[n - 1];
    *med = n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

ibrt_status ibrt_linalg_svd_values(size_t m, size_t n, const double *A, double *s, ibrt_error *err)
{
    size_t k = m < n ? m : n;
    double *copy = malloc(m * n * sizeof *copy), *superb = malloc((k + 1) * sizeof *superb);
    if (!copy || !superb) {
        free(copy);
        free(superb);
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    memcpy(copy, A, m * n * sizeof *copy);
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)m, (lapack_int)n, copy, (lapack_int)n,
                                     s, NULL, 1, NULL, 1, superb);
    free(copy);
    free(superb);
    if (info != 0) {
        snprintf(err->msg, sizeof err->msg, "SVD did not converge (LAPACKE_dgesvd info %d)", (int)info);
        return IBRT_EVALUE;
    }
    return IBRT_OK;
}

void ibrt_metrics_add(ibrt_metrics *t, const char *name, const char *model, double v)
{
    if (t->n == IBRT_MAX_METRICS)
        return;
    ibrt_metric *m = &t->m[t->n++];
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->model, sizeof m->model, "%s", model);
    m->v = v;
}

void ibrt_metrics_print(const ibrt_metrics *t, FILE *out)
{
    const char *models[8];
    size_t nm = 0;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = 0;
        while (k < nm && strcmp(models[k], t->m[i].model))
            k++;
        if (k == nm && nm < 8)
            models[nm++] = t->m[i].model;
    }
    fprintf(out, "%-32s", "metric");
    for (size_t k = 0; k < nm; k++)
        fprintf(out, " %14s", *models[k] ? models[k] : "value");
    fputc('\n', out);
    for (size_t i = 0; i < t->n; i++) {
        bool first = true;   /* print each metric name once, at its first occurrence */
        for (size_t q = 0; q < i; q++)
            if (!strcmp(t->m[q].name, t->m[i].name))
                first = false;
        if (!first)
            continue;
        fprintf(out, "%-32s", t->m[i].name);
        for (size_t k = 0; k < nm; k++) {
            const ibrt_metric *hit = NULL;
            for (size_t q = 0; q < t->n; q++)
                if (!strcmp(t->m[q].name, t->m[i].name) && !strcmp(t->m[q].model, models[k]))
                    hit = &t->m[q];
            if (hit)
                fprintf(out, " %14.6g", hit->v);
            else
                fprintf(out, " %14s", "-");
        }
        fputc('\n', out);
    }
}

void ibrt_metrics_summarise(const ibrt_metric *m, size_t n, ibrt_json *j, FILE *out)
{
    double *v = malloc((n + 1) * sizeof *v);
    ibrt_json_obj_begin(j);
    if (out)
        fprintf(out, "%-32s %-10s %14s %14s %14s\n", "metric", "model", "median", "min", "max");
    for (size_t i = 0; i < n && v; i++) {
        bool first = true;
        for (size_t q = 0; q < i && first; q++)
            first = strcmp(m[q].name, m[i].name) || strcmp(m[q].model, m[i].model);
        if (!first)
            continue;
        size_t c = 0;
        for (size_t q = i; q < n; q++)
            if (!strcmp(m[q].name, m[i].name) && !strcmp(m[q].model, m[i].model))
                v[c++] = m[q].v;
        double med, mn, mx;
        ibrt_stats_median_min_max(v, c, &med, &mn, &mx);
        char key[128];
        snprintf(key, sizeof key, "%s%s%s", m[i].name, m[i].model[0] ? "_" : "", m[i].model);
        ibrt_json_key(j, key);
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "median");
        ibrt_json_num(j, med);
        ibrt_json_key(j, "min");
        ibrt_json_num(j, mn);
        ibrt_json_key(j, "max");
        ibrt_json_num(j, mx);
        ibrt_json_key(j, "n");
        ibrt_json_int(j, (long)c);
        ibrt_json_obj_end(j);
        if (out)
            fprintf(out, "%-32s %-10s %14.6g %14.6g %14.6g\n", m[i].name, m[i].model[0] ? m[i].model : "-", med, mn, mx);
    }
    ibrt_json_obj_end(j);
    free(v);
}
