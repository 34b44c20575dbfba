/*
 * driver_out.c: what a run writes.  Scalar metrics (ibrt_drv_put_metric: into
 * results.json and the table summarised over seeds), results.json
 * itself (begun, finished, or partial for a run that stopped), the
 * traces (loss, balance, singular values: opened or resumed, a row per
 * recorded step, closed or left as .part for a checkpoint), the
 * parameters and --snapshots as .npy files, and outputs that could not
 * be written (reported, listed in results.json, exit status 1).
 */
#include "driver_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ibrt_metrics ibrt_drv_metrics;   /* the current run's scalar metrics (summarised over seeds) */
char ibrt_drv_mechanism[16][12];   /* per model of the current run: "conserved", "driven" or "" */

void ibrt_drv_errmsg(const ibrt_error *err) { fprintf(stderr, "error: %s\n", err->msg); }

/* An output that could not be written: reported now, and the run's exit
 * status becomes 1 (after it has written what it can). */
void ibrt_drv_output_failed(run_state *R, const ibrt_error *err)
{
    ibrt_drv_errmsg(err);
    R->io_failed = true;
    if (R->nout_err < 4)
        snprintf(R->out_err[R->nout_err], sizeof R->out_err[0], "%s", err->msg);
    R->nout_err++;
}

/* Before results.json, the run's last write, is written: the disk may be
 * full (after a failed output, or filled by the outputs themselves: a
 * run whose every other file fitted lost its results.json), and the space
 * held back since the start (run_one) goes to it. */
static void release_reserve(const run_state *R)
{
    ibrt_outdir_release(R->o.out_dir);
}

/* "output_errors": the outputs that could not be written (results.json) */
static void output_errors_json(const run_state *R, ibrt_json *j)
{
    ibrt_json_key(j, "output_errors");
    ibrt_json_arr_begin(j);
    for (int i = 0; i < R->nout_err && i < 4; i++)
        ibrt_json_str(j, R->out_err[i]);
    if (R->nout_err > 4) {
        char more[64];
        snprintf(more, sizeof more, "and %d more (on stderr)", R->nout_err - 4);
        ibrt_json_str(j, more);
    }
    ibrt_json_arr_end(j);
}

/* "data_files": the data and operator files set-up read, each with an
 * FNV-1a hash of its bytes, so that results say which data they are of
 * (nothing when a generator made the data) */
static void data_files_json(ibrt_json *j)
{
    const ibrt_io_files *fr = ibrt_io_files_read();
    if (fr->n == 0)
        return;
    ibrt_json_key(j, "data_files");
    ibrt_json_arr_begin(j);
    for (size_t i = 0; i < fr->n && i < IBRT_IO_FILES_MAX; i++) {
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)fr->bytes_hash[i]);
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "path");
        ibrt_json_str(j, fr->path[i]);
        ibrt_json_key(j, "fnv1a_64");
        ibrt_json_str(j, h);
        ibrt_json_obj_end(j);
    }
    ibrt_json_arr_end(j);
}

/* A cost paid once per run (set-up, checks, references), printed with
 * its time so that a user sees where a short run's time goes (stderr;
 * nothing under --quiet). */
void ibrt_drv_fixed_cost(const run_state *R, const char *what, const char *model, double seconds)
{
    if (!R->o.quiet)
        fprintf(stderr, "fixed cost: %s%s%s%s: %.3g s\n", what, model ? " (" : "", model ? model : "", model ? ")" : "",
                seconds);
}

/* A scalar metric: into results.json as NAME_SUFFIX, and into the table. */
void ibrt_drv_put_metric(run_state *R, const char *name, const char *suffix, double v)
{
    char key[128];
    snprintf(key, sizeof key, "%s%s%s", name, *suffix ? "_" : "", suffix);
    ibrt_json_key(R->j, key);
    ibrt_json_num(R->j, v);
    ibrt_metrics_add(&ibrt_drv_metrics, name, suffix, v);
}

/* The key NAME_SUFFIX of a metric whose value (an object) the caller writes */
void ibrt_drv_metric_key(run_state *R, const char *name, const char *suffix)
{
    char k[128];
    snprintf(k, sizeof k, "%s%s%s", name, *suffix ? "_" : "", suffix);
    ibrt_json_key(R->j, k);
}

/* results.json of a run that did not finish: what it has measured so
 * far, the checks so far, and why it stopped. */
void ibrt_drv_write_partial(run_state *R, const char *status, const char *extra_key, double step, double loss)
{
    ibrt_json *j = ibrt_json_clone(R->j);
    ibrt_json_obj_end(j);   /* metrics */
    ibrt_json_key(j, "wall_seconds");
    ibrt_json_num(j, R->elapsed + ibrt_time_now() - R->t0);
    ibrt_json_key(j, "checks");
    ibrt_checks_to_json(&R->checks, j);
    ibrt_json_key(j, "status");
    ibrt_json_str(j, status);
    if (!strcmp(status, "interrupted")) {   /* what stopped it */
        ibrt_json_key(j, "stopped_by");
        ibrt_json_str(j, ibrt_drv_stop_signal ? ibrt_drv_stop_signal_name(ibrt_drv_stop_signal) : "--stop-after");
    }
    ibrt_json_key(j, extra_key);
    ibrt_json_obj_begin(j);
    if ((size_t)R->k < R->p->nmodels) {
        ibrt_json_key(j, "model");
        ibrt_json_str(j, R->p->models[R->k].name);
        ibrt_json_key(j, "step");
        if (step >= 0)
            ibrt_json_num(j, step);
        else
            ibrt_json_str(j, "before its first step");
        ibrt_json_key(j, "loss");
        ibrt_json_num(j, step >= 0 ? loss : NAN);
        ibrt_json_key(j, "learning_rate");
        ibrt_json_num(j, R->p->models[R->k].lr);
    } else {
        ibrt_json_key(j, "model");
        ibrt_json_str(j, "every model trained; final checks not yet run");
    }
    ibrt_json_obj_end(j);
    if (R->nout_err)
        output_errors_json(R, j);
    ibrt_json_obj_end(j);
    ibrt_error err;
    snprintf(R->path, sizeof R->path, "%s/results.json", R->o.out_dir);
    release_reserve(R);
    if (ibrt_json_write_file(j, R->path, &err) != IBRT_OK)
        ibrt_drv_errmsg(&err);
    ibrt_json_free(j);
}

void ibrt_drv_write_params(run_state *R, const ibrt_model *m)
{
    ibrt_error err;
    for (size_t q = 0; q < m->nparams; q++) {
        const ibrt_param *pv = &m->params[q];
        size_t shp[2] = { pv->rows, pv->cols };
        snprintf(R->path, sizeof R->path, "%s/%s_%s.npy", R->o.out_dir, m->name, pv->name);
        if (ibrt_npy_write(R->path, m->th + pv->off, (size_t)pv->ndim, shp, &err) != IBRT_OK)
            ibrt_drv_output_failed(R, &err);
    }
}

/* --snapshots N: model m's parameters before step `step` (and, when
 * grad, the gradient of that step, m->g) as .npy files in
 * DIR/snapshots/MODEL/step_<step>/, with DIR/snapshots/MODEL/run.json
 * naming the model and its learning rate: the layout `ibc verify` reads
 * (docs/interop.md). */
void ibrt_drv_write_snapshot(run_state *R, const ibrt_model *m, long step, bool grad)
{
    ibrt_error err;
    char dir[900];   /* enough: --out is at most IBRT_MAX_DIR bytes, a model name at most 128 */
    snprintf(dir, sizeof dir, "%s/snapshots/%s/step_%010ld", R->o.out_dir, m->name, step);
    if (ibrt_mkdir_p(dir, &err) != IBRT_OK) {
        ibrt_drv_output_failed(R, &err);
        return;
    }
    if (step == 0) {
        ibrt_json *j = ibrt_json_new();
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "format");
        ibrt_json_str(j, "ibc-snapshots-1");
        ibrt_json_key(j, "spec");
        ibrt_json_str(j, R->p->name);
        ibrt_json_key(j, "model");
        ibrt_json_str(j, m->name);
        ibrt_json_key(j, "lr");
        ibrt_json_num(j, m->lr);
        ibrt_json_key(j, "every");
        ibrt_json_int(j, R->o.snapshots);
        ibrt_json_obj_end(j);
        snprintf(R->path, sizeof R->path, "%s/snapshots/%s/run.json", R->o.out_dir, m->name);
        if (ibrt_json_write_file(j, R->path, &err) != IBRT_OK)
            ibrt_drv_output_failed(R, &err);
        ibrt_json_free(j);
    }
    for (size_t q = 0; q < m->nparams; q++) {
        const ibrt_param *pv = &m->params[q];
        size_t shp[2] = { pv->rows, pv->cols };
        for (int g = 0; g < (grad ? 2 : 1); g++) {
            snprintf(R->path, sizeof R->path, "%s/%.200s%s.npy", dir, pv->name, g ? ".grad" : "");
            if (ibrt_npy_write(R->path, (g ? m->g : m->th) + pv->off, (size_t)pv->ndim, shp, &err) != IBRT_OK)
                ibrt_drv_output_failed(R, &err);
        }
    }
}

void ibrt_drv_close_traces(run_state *R)
{
    ibrt_error err;
    if (R->tr_open && ibrt_csv_close(&R->tr, &err) != IBRT_OK)
        ibrt_drv_output_failed(R, &err);
    if (R->bt_open && ibrt_csv_close(&R->bt, &err) != IBRT_OK)
        ibrt_drv_output_failed(R, &err);
    if (R->sv_open && ibrt_csv_close(&R->sv, &err) != IBRT_OK)
        ibrt_drv_output_failed(R, &err);
    R->tr_open = R->bt_open = R->sv_open = false;
}

/* Closes the traces in training without renaming them: they stay as
 * TRACE.part, which a checkpoint refers to. */
void ibrt_drv_leave_traces(run_state *R)
{
    if (R->tr_open)
        fclose(R->tr.f);
    if (R->bt_open)
        fclose(R->bt.f);
    if (R->sv_open)
        fclose(R->sv.f);
    R->tr_open = R->bt_open = R->sv_open = false;
}

/* The traces of model m: the loss (and balance summaries) every `every`
 * steps, and chi and the ratio of every index. */
ibrt_status ibrt_drv_open_traces(run_state *R, const ibrt_model *m, const ckpt_head *resume, ibrt_error *err)
{
    /* the loss trace: step, loss, the first family's balance summaries,
     * then the size of each symmetry group's dual slice (||C||_F of a GL
     * junction, max |chi| of a torus) */
    size_t hcap = 96 + 32 * m->nqgroups, hlen;
    char *hdr = malloc(hcap);
    if (!hdr) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    hlen = (size_t)snprintf(hdr, hcap, "%s", m->nbal ? "step,loss,chi_abs_median,ratio_median,ratio_min,ratio_max" : "step,loss");
    for (size_t g = 0; g < m->nqgroups; g++)
        hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, m->qgroups[g].r ? ",C_fro_group%zu" : ",chi_abs_max_group%zu",
                                 g + 1);
    snprintf(R->path, sizeof R->path, "%s/trace_%s.csv", R->o.out_dir, m->name);
    ibrt_status st = resume ? ibrt_csv_resume(&R->tr, R->path, resume->trace_len, err)
                            : ibrt_csv_open_resumable(&R->tr, R->path, hdr, err);
    free(hdr);
    if (st != IBRT_OK)
        return st;
    R->tr_open = true;
    if (R->p->zrows > 0) {   /* sv_MODEL.csv: step, sigma_1 >= sigma_2 >= ... */
        long ns = R->p->zrows < R->p->zcols ? R->p->zrows : R->p->zcols;
        char h[64 * 24];
        size_t hl = (size_t)snprintf(h, sizeof h, "step");
        for (long q = 0; q < ns && hl < sizeof h - 24; q++)
            hl += (size_t)snprintf(h + hl, sizeof h - hl, ",sigma_%ld", q + 1);
        snprintf(R->path, sizeof R->path, "%s/sv_%s.csv", R->o.out_dir, m->name);
        st = resume ? ibrt_csv_resume(&R->sv, R->path, resume->sv_len, err)
                    : ibrt_csv_open_resumable(&R->sv, R->path, h, err);
        if (st != IBRT_OK)
            return st;
        R->sv_open = true;
    }
    if (!m->nbal)
        return IBRT_OK;
    size_t cap = 64 * (size_t)(2 * m->nbal + 1), len;
    char *bh = malloc(cap);
    if (!bh) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    len = (size_t)snprintf(bh, cap, "step");
    for (int q = 0; q < 2; q++)
        for (size_t f = 0; f < m->nfam; f++)
            for (long i = 0; i < m->fams[f].count; i++)
                len += (size_t)snprintf(bh + len, cap - len, ",%s%d_%ld", q ? "ratio" : "chi", m->fams[f].id, i);
    snprintf(R->path, sizeof R->path, "%s/balance_%s.csv", R->o.out_dir, m->name);
    st = resume ? ibrt_csv_resume(&R->bt, R->path, resume->balance_len, err)
                : ibrt_csv_open_resumable(&R->bt, R->path, bh, err);
    free(bh);
    if (st == IBRT_OK)
        R->bt_open = true;
    return st;
}

/* The size of symmetry group g's dual slice from its conserved
 * functions q: ||C||_F of a GL junction (q its upper triangle, the
 * off-diagonal entries counted twice), max |chi| of a torus. */
double ibrt_drv_dual_slice_size(const ibrt_model *m, size_t g, const double *q)
{
    long first = g ? m->qgroups[g - 1].end : 0, r = m->qgroups[g].r;
    double s = 0;
    if (r) {
        for (long i = 0, t = first; i < r; i++)
            for (long j = i; j < r; j++, t++)
                s += (i == j ? 1 : 2) * q[t] * q[t];
        return sqrt(s);
    }
    for (long t = first; t < m->qgroups[g].end; t++)
        s = fmax(s, fabs(q[t]));
    return s;
}

/* One row of the traces: the loss, and chi and the ratio of every index
 * (the first family's median |chi| and median, min and max ratio in the
 * loss trace; every family's in the balance trace). */
void ibrt_drv_record_step(run_state *R, const ibrt_model *m, long step, double loss)
{
    double *row = R->trow;
    row[0] = (double)step;
    row[1] = loss;
    size_t nrow = m->nbal ? 6 : 2;
    if (m->nquad) {   /* the dual slices' sizes after the balance columns */
        m->quad(m->th, R->qrec, NULL);
        for (size_t g = 0; g < m->nqgroups; g++)
            row[nrow + g] = ibrt_drv_dual_slice_size(m, g, R->qrec);
    }
    nrow += m->nquad ? m->nqgroups : 0;
    if (R->sv_open) {   /* the output matrix's singular values (its tape is scratch) */
        const ibrt_problem *p = R->p;
        long r = p->zrows, c = p->zcols, ns = r < c ? r : c;
        m->forward(m->th, R->X, 1, m->tp);
        memcpy(R->svd_a, m->tp + m->root, sizeof(double) * (size_t)(r * c));
        R->svd_s[0] = (double)step;
        /* the row-major r x c matrix read column-major is its transpose,
         * with the same singular values: no transposed copy (which
         * LAPACKE's row-major path would allocate) */
        if (LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'N', 'N', (lapack_int)c, (lapack_int)r, R->svd_a, (lapack_int)c,
                                R->svd_s + 1, NULL, 1, NULL, 1, R->svd_work, R->svd_lwork) != 0)
            for (long q = 1; q <= ns; q++)
                R->svd_s[q] = NAN;
        ibrt_csv_row(&R->sv, R->svd_s, (size_t)(ns + 1));
    }
    if (!m->nbal) {
        ibrt_csv_row(&R->tr, row, nrow);
        return;
    }
    long nbal = m->nbal, n0 = m->fams[0].count;   /* the loss trace summarises the first family */
    double mn, mx;
    m->balance(m->th, R->chi, R->ratio, NULL, NULL);
    for (long i = 0; i < n0; i++)
        R->tmp[i] = fabs(R->chi[i]);
    ibrt_stats_median_min_max(R->tmp, (size_t)n0, &row[2], &mn, &mx);
    memcpy(R->tmp, R->ratio, sizeof(double) * (size_t)n0);
    ibrt_stats_median_min_max(R->tmp, (size_t)n0, &row[3], &row[4], &row[5]);
    ibrt_csv_row(&R->tr, row, nrow);
    R->brow[0] = (double)step;
    memcpy(R->brow + 1, R->chi, sizeof(double) * (size_t)nbal);
    memcpy(R->brow + 1 + nbal, R->ratio, sizeof(double) * (size_t)nbal);
    ibrt_csv_row(&R->bt, R->brow, (size_t)(1 + 2 * nbal));
}

/* results.json of a run that trained every model (its metrics are
 * written): the wall time, the checks, the status, written last into the
 * space held back; the results printed; the checkpoint removed.  The
 * exit status: 0, 4 (a check failed) or 1 (an output could not be
 * written). */
int ibrt_drv_write_results(run_state *R)
{
    ibrt_error err;
    ibrt_json_obj_end(R->j);
    ibrt_json_key(R->j, "wall_seconds");
    ibrt_json_num(R->j, R->elapsed + ibrt_time_now() - R->t0);
    ibrt_json_key(R->j, "checks");
    ibrt_checks_to_json(&R->checks, R->j);
    /* every model trained: "complete", or "output_error" when an output
     * (a trace, parameters) could not be written, listing them */
    ibrt_json_key(R->j, "status");
    ibrt_json_str(R->j, R->io_failed ? "output_error" : "complete");
    if (R->io_failed)
        output_errors_json(R, R->j);
    ibrt_json_obj_end(R->j);
    snprintf(R->path, sizeof R->path, "%s/results.json", R->o.out_dir);
    release_reserve(R);
    if (ibrt_json_write_file(R->j, R->path, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        return 1;
    }
    if (!R->o.quiet) {
        printf("\n");
        ibrt_metrics_print(&ibrt_drv_metrics, stdout);
        printf("\n");
        ibrt_checks_print(&R->checks, stdout);
        printf("\nresults: %s\n", R->path);
    }
    /* the run is complete: its checkpoint can no longer be resumed */
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    if (unlink(R->path) != 0 && errno != ENOENT)
        fprintf(stderr, "warning: cannot remove %s: %s\n", R->path, strerror(errno));
    if (R->io_failed) {
        fprintf(stderr, "error: some outputs could not be written (above)\n");
        return 1;
    }
    return ibrt_checks_all_pass(&R->checks) ? 0 : 4;
}

/* The head of results.json (a new run): the spec, steps, seed, BLAS
 * threads and data files, then the "metrics" object left open for
 * ibrt_drv_put_metric. */
void ibrt_drv_results_json_begin(run_state *R)
{
    ibrt_json_obj_begin(R->j);
    ibrt_json_key(R->j, "model");
    ibrt_json_str(R->j, R->p->name);
    ibrt_json_key(R->j, "steps");
    ibrt_json_int(R->j, R->o.steps);
    ibrt_json_key(R->j, "seed");
    ibrt_json_int(R->j, (long)R->o.seed);
    ibrt_json_key(R->j, "blas_threads");
    ibrt_json_int(R->j, R->blas_threads);
    data_files_json(R->j);
    ibrt_json_key(R->j, "metrics");
    ibrt_json_obj_begin(R->j);
}
