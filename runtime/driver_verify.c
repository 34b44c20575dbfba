/*
 * driver_verify.c: --verify RUN, this trainer's checks and metrics on
 * the parameter snapshots of a run made elsewhere (PyTorch through the
 * export, or this trainer's --snapshots; layout in docs/interop.md).
 * Nothing is trained: the snapshots are read in order, and the traces,
 * dual_MODEL.csv and results.json go to RUN/verify (or --out).
 */
#include "driver_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- verify */

/* --verify RUN: the checks and metrics of this trainer on a training run
 * made elsewhere (PyTorch, through the export's ibrt_drv_write_snapshot; or this
 * trainer's --snapshots), read from its parameter snapshots
 * (docs/interop.md):
 *
 *   RUN/run.json            {"model": NAME, "lr": LR, ...}, optional
 *   RUN/step_<S>/<p>.npy    parameter p (named as in the spec) before step S
 *   RUN/step_<S>/<p>.grad.npy   the gradient of step S, optional
 *
 * The first and the last snapshot get the structural checks; every
 * snapshot a row of the traces (the loss on this spec's data, chi and the
 * ratio per index) and of dual_MODEL.csv (every conserved quadratic:
 * chi of each torus family, C's upper triangle of each GL junction);
 * the last one the metrics of a trained model (chi conserved or driven,
 * the ratio against its predictions, log det G, ...).  When the
 * snapshots are consecutive steps with their gradients and the learning
 * rate is known, the finite-step identity and that the snapshots are
 * plain SGD steps are checked too. */

typedef struct {
    long step;      /* S, parsed from the directory's name */
    char dir[48];   /* the directory's name as found in RUN ("step_<S>"; longer names are skipped) */
} vsnap;

static int vsnap_cmp(const void *a, const void *b)
{
    long x = ((const vsnap *)a)->step, y = ((const vsnap *)b)->step;
    return x != y ? (x > y) - (x < y) : strcmp(((const vsnap *)a)->dir, ((const vsnap *)b)->dir);
}

/* RUN's step_<S> directories, sorted by S; NULL and *n = 0 when none. */
static vsnap *verify_list(const char *run, size_t *n, ibrt_error *err)
{
    DIR *d = opendir(run);
    *n = 0;
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "%.400s: cannot open: %s", run, strerror(errno));
        return NULL;
    }
    vsnap *v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *q = e->d_name;
        if (strncmp(q, "step_", 5) || !q[5] || strlen(q) >= sizeof v->dir || strspn(q + 5, "0123456789") != strlen(q + 5))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            vsnap *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                snprintf(err->msg, sizeof err->msg, "out of memory");
                return NULL;
            }
            v = nv;
        }
        v[*n].step = strtol(q + 5, NULL, 10);
        snprintf(v[*n].dir, sizeof v[*n].dir, "%s", q);
        (*n)++;
    }
    closedir(d);
    if (!*n)
        snprintf(err->msg, sizeof err->msg, "%.400s holds no step_<S> directories of parameter snapshots "
                 "(docs/interop.md)", run);
    else
        qsort(v, *n, sizeof *v, vsnap_cmp);
    for (size_t i = 1; i < *n; i++)
        if (v[i].step == v[i - 1].step) {   /* step_7 and step_0000000007 */
            snprintf(err->msg, sizeof err->msg, "%.380s: %.47s and %.47s are the same step: keep one", run, v[i - 1].dir,
                     v[i].dir);
            free(v);
            *n = 0;
            return NULL;
        }
    return v;
}

/* The string or number of "key" in a small JSON object (run.json). */
static bool verify_field(const char *text, const char *key, char *buf, size_t cap, double *num)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *s = strstr(text, pat); s; s = strstr(s + 1, pat)) {
        const char *q = s + strlen(pat);
        q += strspn(q, " \t\r\n");
        if (*q != ':')
            continue;
        q++;
        q += strspn(q, " \t\r\n");
        if (*q == '"' && buf) {
            size_t n = 0;
            for (q++; *q && *q != '"' && n + 1 < cap; q++) {
                if (*q == '\\' && q[1])
                    q++;
                buf[n++] = *q;
            }
            buf[n] = '\0';
            return *q == '"';
        }
        if (num) {
            char *end;
            *num = strtod(q, &end);
            return end != q;
        }
        return false;
    }
    return false;
}

/* Model m's parameters (into th) and, when every one has its
 * <p>.grad.npy, their gradients (into g) from RUN/DIR. */
static ibrt_status verify_load(const char *run, const char *dir, const ibrt_model *m, double *th, double *g,
                               bool *has_grad, ibrt_error *err)
{
    char path[1600];
    *has_grad = true;
    for (int pass = 0; pass < 2; pass++)
        for (size_t q = 0; q < m->nparams; q++) {
            const ibrt_param *pv = &m->params[q];
            snprintf(path, sizeof path, "%.800s/%s/%.200s%s.npy", run, dir, pv->name, pass ? ".grad" : "");
            if (pass && (!*has_grad || access(path, F_OK) != 0)) {
                *has_grad = false;
                continue;
            }
            size_t ndim, shape[2];
            double *v;
            ibrt_status st = ibrt_npy_read(path, &ndim, shape, &v, err);
            if (st != IBRT_OK)
                return st;
            /* the parameter's shape: a matrix exactly (a transposed file
             * has as many values), a vector or a scalar also as a row or
             * a column (one way to read it) */
            size_t count = ndim == 0 ? 1 : ndim == 1 ? shape[0] : shape[0] * shape[1];
            bool fits = ndim == 2 && shape[0] == pv->rows && shape[1] == pv->cols;
            if (pv->cols == 1)
                fits = count == pv->rows && (ndim < 2 || shape[0] == 1 || shape[1] == 1);
            if (!fits) {
                char want[48], got[48];
                if (pv->cols > 1)
                    snprintf(want, sizeof want, "(%zu, %zu)", pv->rows, pv->cols);
                else
                    snprintf(want, sizeof want, "(%zu,)", pv->rows);
                if (ndim == 2)
                    snprintf(got, sizeof got, "(%zu, %zu)", shape[0], shape[1]);
                else
                    snprintf(got, sizeof got, "(%zu,)", shape[0]);
                snprintf(err->msg, sizeof err->msg, "%.270s: shape %.44s; %s%.40s of model '%.20s' is %s: expected "
                         "shape %.44s (docs/interop.md)", path, got, pass ? "the gradient of " : "", pv->name, m->name,
                         pv->cols > 1 ? "a matrix" : pv->rows > 1 ? "a vector" : "a scalar", want);
                free(v);
                return IBRT_ESHAPE;
            }
            memcpy((pass ? g : th) + pv->off, v, sizeof(double) * count);
            free(v);
        }
    return IBRT_OK;
}

/* The model RUN's snapshots are of: run.json's "model", or the only one
 * whose parameter files are all in the first snapshot; -1 after a message. */
static long verify_model(const ibrt_problem *p, const char *run, const char *dir, const char *name)
{
    long found = -1;
    int matches = 0;
    for (size_t k = 0; k < p->nmodels; k++) {
        const ibrt_model *m = &p->models[k];
        if (*name) {
            if (!strcmp(name, m->name))
                return (long)k;
            continue;
        }
        bool all = true;
        for (size_t q = 0; q < m->nparams && all; q++) {
            char path[1600];
            snprintf(path, sizeof path, "%.800s/%s/%.200s.npy", run, dir, m->params[q].name);
            all = access(path, R_OK) == 0;
        }
        if (all) {
            found = (long)k;
            matches++;
        }
    }
    if (*name || matches != 1) {
        if (*name)
            fprintf(stderr, "error: %s: run.json names the model '%s', which this spec does not have", run, name);
        else
            fprintf(stderr, "error: %s: %s", run,
                    matches ? "its parameters fit more than one model: name it in run.json (\"model\")"
                            : "its first snapshot does not hold the parameters of any model");
        fprintf(stderr, "; the models of %s:", p->name);
        for (size_t k = 0; k < p->nmodels; k++) {
            fprintf(stderr, " %s (", p->models[k].name);
            for (size_t q = 0; q < p->models[k].nparams; q++)
                fprintf(stderr, "%s%s", q ? ", " : "", p->models[k].params[q].name);
            fprintf(stderr, ")");
        }
        fprintf(stderr, "\n");
        return -1;
    }
    return found;
}

/* RUN/run.json, when it is there: the model's name (into name[cap])
 * and the learning rate (*lr); path[pathcap] is scratch for its name.
 * false after a message when it is there but unreadable (present but
 * unreadable is an error, not a guess). */
static bool verify_run_json(const char *run, char *path, size_t pathcap, char *name, size_t cap, double *lr)
{
    char text[8192] = "";
    snprintf(path, pathcap, "%.1000s/run.json", run);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* a FIFO must not block */
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "warning: %s is not a regular file: not read\n", path);
        close(fd);
        fd = -1;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
        /* present but unreadable is an error, not a guess */
        const char *bad = strstr(text, "\"model\"") && !verify_field(text, "model", name, cap, NULL)
                              ? "\"model\" is not a string"
                          : strstr(text, "\"lr\"") && (!verify_field(text, "lr", NULL, 0, lr) || !(*lr > 0) ||
                                                        !isfinite(*lr))
                              ? "\"lr\" is not a positive number"
                              : NULL;
        if (bad) {
            fprintf(stderr, "error: %s: %s; expected {\"model\": NAME, \"lr\": LR} (docs/interop.md)\n", path,
                    bad);
            return false;
        }
    }
    return true;
}

/* The head of results.json: the spec, the run verified (model, its
 * snapshots, lr), the seed and what the data are, then the "metrics"
 * object left open for ibrt_drv_put_metric. */
static void verify_json_begin(run_state *R, const char *run, const ibrt_model *m, const vsnap *sn, size_t ns,
                              double lr)
{
    const ibrt_problem *p = R->p;
    ibrt_json_obj_begin(R->j);
    ibrt_json_key(R->j, "model");
    ibrt_json_str(R->j, p->name);
    ibrt_json_key(R->j, "verified_run");
    ibrt_json_str(R->j, run);
    ibrt_json_key(R->j, "verified_model");
    ibrt_json_str(R->j, m->name);
    ibrt_json_key(R->j, "snapshots");
    ibrt_json_int(R->j, (long)ns);
    ibrt_json_key(R->j, "first_step");
    ibrt_json_int(R->j, sn[0].step);
    ibrt_json_key(R->j, "last_step");
    ibrt_json_int(R->j, sn[ns - 1].step);
    ibrt_json_key(R->j, "lr");
    ibrt_json_num(R->j, lr);
    ibrt_json_key(R->j, "seed");
    ibrt_json_int(R->j, (long)R->o.seed);
    ibrt_json_key(R->j, "data_note");
    ibrt_json_str(R->j, "the loss and the fits to data (final_loss, test_mse, ...) are on this spec's own data at "
                       "this seed, as its trainer computes them: they describe the run only if it trained on "
                       "those data");
    ibrt_json_key(R->j, "metrics");
    ibrt_json_obj_begin(R->j);
}

/* dual_MODEL.csv, every conserved quadratic of model m at each snapshot
 * (chi of each torus family, C's upper triangle of each GL junction):
 * opened into *dual (true), or an output failed. */
static bool verify_open_dual(run_state *R, const ibrt_model *m, ibrt_csv *dual)
{
    ibrt_error err;
    bool dual_open = false;
    size_t cap = 32 * (size_t)(m->nquad + 1);
    char *h = malloc(cap);
    if (h) {
        size_t len = (size_t)snprintf(h, cap, "step");
        long begin = 0;
        for (size_t g = 0; g < m->nqgroups; begin = m->qgroups[g].end, g++) {
            long r = m->qgroups[g].r;
            for (long t = begin, i = 0, j = 0; t < m->qgroups[g].end; t++) {
                if (r) {   /* C's upper triangle, row by row */
                    len += (size_t)snprintf(h + len, cap - len, ",group%zu_C_%ld_%ld", g + 1, i, j);
                    if (++j == r)
                        j = ++i;
                } else
                    len += (size_t)snprintf(h + len, cap - len, ",group%zu_chi_%ld", g + 1, t - begin);
            }
        }
        snprintf(R->path, sizeof R->path, "%.1000s/dual_%s.csv", R->o.out_dir, m->name);
        if (ibrt_csv_open(dual, R->path, h, &err) == IBRT_OK)
            dual_open = true;
        else
            ibrt_drv_output_failed(R, &err);
        free(h);
    }
    return dual_open;
}

/* At the first snapshot of model m (X the checks' batch): the
 * structural checks, and chi, the block norms and the conserved
 * quadratics the run starts from. */
static void verify_first(run_state *R, const ibrt_model *m, const double *X)
{
    char when[96];
    snprintf(when, sizeof when, "%s, first snapshot", m->name);
    if (m->structure)
        m->structure(X, &R->rs, &R->checks, when);
    if (m->nbal) {
        m->balance(m->th, R->chi, R->ratio, R->nA0, R->nB0);
        memcpy(R->chi0, R->chi, sizeof(double) * (size_t)m->nbal);
    }
    if (m->nquad)
        m->quad(m->th, R->q0, NULL);
}

/* How far m's parameters are from one SGD step th = prev - lr g from
 * the previous snapshot (prev, its gradient g): max |difference| / max
 * |prev| (absolute when prev is 0). */
static double sgd_step_error(const ibrt_model *m, const double *prev, const double *g, double lr)
{
    double e = 0, scale = 0;
    for (long q = 0; q < m->nth; q++) {
        e = fmax(e, fabs(m->th[q] - (prev[q] - lr * g[q])));
        scale = fmax(scale, fabs(prev[q]));
    }
    return scale > 0 ? e / scale : e;
}

/* What the walk over a run's snapshots (verify_snapshots) reads and
 * carries from one snapshot to the next, for verify_finish. */
typedef struct {
    const char *run;         /* the run's directory */
    const vsnap *sn;         /* its snapshots, in step order */
    size_t ns;               /* how many */
    double lr;               /* its learning rate (NAN: run.json gives none) */
    const double *X, *Y;     /* the spec's batch: the checks' inputs and the loss column's data */
    long nb;                 /* its rows */
    double *prev, *pg;       /* the previous snapshot's parameters and gradient (nth each) */
    bool identity;           /* so far every step is there with its gradient, and lr is known */
    double sgd_err;          /* the worst sgd_step_error so far (while identity) */
    double loss;             /* the loss at the last snapshot read */
} verify_walk;

/* Every snapshot of w in order into m's parameters and gradient: the
 * checks at the first (verify_first), between consecutive steps whether
 * they are plain SGD steps and their share of the finite-step identity,
 * at each a row of the traces and, when dual is not NULL, of the
 * dual-slice trace.  0, or 1 after a message when a snapshot cannot be
 * read. */
static int verify_snapshots(run_state *R, ibrt_model *m, verify_walk *w, ibrt_csv *dual)
{
    ibrt_error err;
    bool has_grad = false, prev_grad = false;
    for (size_t i = 0; i < w->ns; i++) {
        if (verify_load(w->run, w->sn[i].dir, m, m->th, m->g, &has_grad, &err) != IBRT_OK) {
            ibrt_drv_errmsg(&err);
            return 1;
        }
        if (i == 0)
            verify_first(R, m, w->X);
        else if (w->identity) {
            if (!prev_grad || w->sn[i].step != w->sn[i - 1].step + 1)
                w->identity = false;
            else   /* theta_i = theta_(i-1) - lr g_(i-1)? */
                w->sgd_err = fmax(w->sgd_err, sgd_step_error(m, w->prev, w->pg, w->lr));
        }
        if (has_grad && isfinite(w->lr) && i + 1 < w->ns) {   /* this step's share of the identity */
            if (m->pair)
                ibrt_drv_pair_step(R->contr, m->th + m->pair_off0, m->th + m->pair_off1, m->g + m->pair_off0,
                                   m->g + m->pair_off1, m->nbal, w->lr);
            if (m->nquad)
                ibrt_drv_quad_step(R, m);
        }
        w->loss = ibrt_drv_loss_grad(R->p, m, w->X, w->Y, w->nb, false, false);
        ibrt_drv_record_step(R, m, w->sn[i].step, w->loss);
        if (dual) {
            R->qg[0] = (double)w->sn[i].step;   /* qg: scratch here, nquad + 1 long */
            m->quad(m->th, R->qg + 1, NULL);
            ibrt_csv_row(dual, R->qg, (size_t)m->nquad + 1);
        }
        memcpy(w->prev, m->th, sizeof(double) * (size_t)m->nth);
        memcpy(w->pg, m->g, sizeof(double) * (size_t)m->nth);
        prev_grad = has_grad;
    }
    return 0;
}

/* After the last snapshot (model k, X the checks' batch, loss its loss
 * there): the structural checks, whether the snapshots are plain SGD steps
 * (when `identity`, the worst relative error sgd_err), the symmetry
 * checks, the metrics, results.json and the printed results.  0, or 1
 * when results.json could not be written. */
static int verify_finish(run_state *R, const char *run, size_t k, const vsnap *sn, size_t ns, const double *X,
                         bool identity, double sgd_err, double loss)
{
    const ibrt_model *m = &R->p->models[k];
    ibrt_error err;
    char when[96];
    snprintf(when, sizeof when, "%s, last snapshot", m->name);
    if (m->structure)
        m->structure(X, &R->rs, &R->checks, when);
    if (identity) {
        char cname[96];
        snprintf(cname, sizeof cname, "snapshots are plain SGD steps (%s)", m->name);
        ibrt_checks_add(&R->checks, cname, sgd_err, 0, 1e-12, sgd_err <= 1e-12,
                        "max |theta(t+1) - theta(t) + lr g(t)| / max |theta(t)| over the steps: the identity "
                        "below is SGD's");
    } else if (!R->o.quiet)
        fprintf(stderr, "note: the finite-step identity is not checked: it needs every step from the first "
                        "snapshot to the last, each with its gradient (<p>.grad.npy), and the learning rate "
                        "(run.json)\n");
    ibrt_drv_symmetry_checks(R, m, identity);
    ibrt_drv_close_traces(R);
    if (!identity)
        memset(R->contr, 0, sizeof(double) * (size_t)(m->nbal + 1));   /* no contraction measured */
    ibrt_drv_model_metrics(R, (size_t)k, loss);
    ibrt_json_obj_end(R->j);
    ibrt_json_key(R->j, "wall_seconds");
    ibrt_json_num(R->j, ibrt_time_now() - R->t0);
    ibrt_json_key(R->j, "checks");
    ibrt_checks_to_json(&R->checks, R->j);
    ibrt_json_key(R->j, "status");
    ibrt_json_str(R->j, "complete");
    ibrt_json_obj_end(R->j);
    snprintf(R->path, sizeof R->path, "%.1000s/results.json", R->o.out_dir);
    if (ibrt_json_write_file(R->j, R->path, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        return 1;
    } else if (!R->o.quiet) {
        printf("verified: %s, model '%s', %zu snapshots (steps %ld to %ld)%s%s\n", run, m->name, ns,
               sn[0].step, sn[ns - 1].step, ibrt_drv_mechanism[k < 16 ? k : 0][0] ? "; chi (family 1): " : "",
               ibrt_drv_mechanism[k < 16 ? k : 0]);
        printf("note: the loss and the fits to data (final_loss, test_mse, ...) are on this spec's own data "
               "(seed %llu), as its trainer computes them: they describe the run only if it trained on those "
               "data\n\n", (unsigned long long)R->o.seed);
        ibrt_metrics_print(&ibrt_drv_metrics, stdout);
        printf("\n");
        ibrt_checks_print(&R->checks, stdout);
        printf("\nresults: %s\n", R->path);
    }
    return 0;
}

int ibrt_drv_verify_one(const ibrt_problem *p, ibrt_opts o)
{
    run_state R;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.o = o;
    R.t0 = ibrt_time_now();
    ibrt_drv_metrics.n = 0;
    memset(ibrt_drv_mechanism, 0, sizeof ibrt_drv_mechanism);
    ibrt_error err;
    const char *run = o.verify;
    static char outbuf[1100];
    if (!o.out_given) {
        snprintf(outbuf, sizeof outbuf, "%.1000s/verify", run);
        R.o.out_dir = outbuf;
    }
    size_t ns;
    vsnap *sn = verify_list(run, &ns, &err);
    if (!sn) {
        ibrt_drv_errmsg(&err);
        return 1;
    }
    /* run.json: the model and the learning rate */
    char name[64] = "";
    double lr = NAN;
    if (!verify_run_json(run, R.path, sizeof R.path, name, sizeof name, &lr)) {
        free(sn);
        return 1;
    }
    long k = verify_model(p, run, sn[0].dir, name);
    if (k < 0) {
        free(sn);
        return 1;
    }
    ibrt_model *m = &p->models[k];
    if (isfinite(lr))
        m->lr = lr;   /* the run's, for the finite-step identity */
    if (ibrt_mkdir_p(R.o.out_dir, &err) != IBRT_OK || p->setup(&R.ds, R.o.seed, o.quiet, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        free(sn);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    double *prev = calloc((size_t)m->nth + 1, sizeof(double)), *pg = calloc((size_t)m->nth + 1, sizeof(double));
    if (!ibrt_drv_run_alloc(&R) || !prev || !pg) {
        fprintf(stderr, "error: out of memory\n");
        free(sn);
        free(prev);
        free(pg);
        ibrt_drv_free_run(&R);
        return 1;
    }
    verify_json_begin(&R, run, m, sn, ns, lr);

    /* the spec's data: a batch for the structural checks and the loss
     * column of the trace (the training set for a full batch) */
    const double *X, *Y;
    ibrt_rng_fork(&R.rb, R.o.seed, 3 + 2 * (uint64_t)k);
    ibrt_rng_fork(&R.rs, R.o.seed, 1000 + (uint64_t)k);
    long nb = p->draw_batch(&R.ds, &R.rb, &X, &Y);
    R.X = X;
    int rc = 0;
    ibrt_csv dual;
    bool dual_open = false;
    if (ibrt_drv_open_traces(&R, m, NULL, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        rc = 1;
    } else if (m->nquad)
        dual_open = verify_open_dual(&R, m, &dual);
    /* the snapshots in order; `identity`: every step from the first to
     * the last is there with its gradient, and the learning rate is known */
    verify_walk w = { .run = run, .sn = sn, .ns = ns, .lr = lr, .X = X, .Y = Y, .nb = nb, .prev = prev, .pg = pg,
                      .identity = isfinite(lr) && ns > 1, .sgd_err = 0, .loss = NAN };
    if (!rc)
        rc = verify_snapshots(&R, m, &w, dual_open ? &dual : NULL);
    if (dual_open && ibrt_csv_close(&dual, &err) != IBRT_OK)
        ibrt_drv_output_failed(&R, &err);
    if (!rc)
        rc = verify_finish(&R, run, (size_t)k, sn, ns, X, w.identity, w.sgd_err, w.loss);
    else
        ibrt_drv_close_traces(&R);
    bool pass = ibrt_checks_all_pass(&R.checks), io_failed = R.io_failed;
    free(sn);
    free(prev);
    free(pg);
    ibrt_drv_free_run(&R);
    if (rc)
        return rc;
    if (io_failed) {
        fprintf(stderr, "error: some outputs could not be written (above)\n");
        return 1;
    }
    return pass ? 0 : 4;
}
