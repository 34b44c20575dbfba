/*
 * data.c: the synthetic data sets of the paper's experiments (their
 * settings are in the specs and docs/results.md).  Every generator draws from the rng it is given,
 * so the data set is a function of the seed.
 */
#include "ibrt_data.h"
#include "ibrt_io.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ibrt_dataset_free(ibrt_dataset *ds)
{
    free(ds->x_train);
    free(ds->y_train);
    free(ds->x_test);
    free(ds->y_test);
    free(ds->truth);
    free(ds->mask);
    memset(ds, 0, sizeof *ds);
}

/* n + 1 zeroed doubles (never a zero-byte block) on a 64-byte boundary,
 * for the generators' data sets: the trainers' products read them with
 * vector loads, and OpenBLAS's dgemv on E5's 60 x 200 matrix took about
 * 20% longer when malloc placed it 16 bytes off a 32-byte boundary.
 * (Data read from files keeps the reader's allocation.)  free() releases
 * it. */
static double *data_zeros(size_t n)
{
    size_t bytes = ((n + 1) * sizeof(double) + 63) / 64 * 64;
    double *d = aligned_alloc(64, bytes);
    if (d)
        memset(d, 0, bytes);
    return d;
}

static ibrt_status alloc_ds(ibrt_dataset *ds, size_t train, size_t test, size_t in, size_t out, size_t truth,
                            ibrt_error *err)
{
    memset(ds, 0, sizeof *ds);
    /* every product below must fit: refuse sizes whose element count overflows */
    size_t lim = SIZE_MAX / sizeof(double) / 2;
    if ((in && train > lim / in) || (out && train > lim / out) || (in && test > lim / in) ||
        (out && test > lim / out) || truth > lim) {
        snprintf(err->msg, sizeof err->msg, "data set of %zu + %zu samples x (%zu inputs, %zu labels) is too large",
                 train, test, in, out);
        return IBRT_ENOMEM;
    }
    ds->n_train = train;
    ds->n_test = test;
    ds->in_size = in;
    ds->out_size = out;
    ds->truth_size = truth;
    ds->x_train = data_zeros(train * in);
    ds->y_train = data_zeros(train * out);
    ds->x_test = data_zeros(test * in);
    ds->y_test = data_zeros(test * out);
    ds->truth = data_zeros(truth);
    if (!ds->x_train || !ds->y_train || !ds->x_test || !ds->y_test || !ds->truth) {
        snprintf(err->msg, sizeof err->msg, "out of memory for a data set of %zu + %zu samples", train, test);
        ibrt_dataset_free(ds);
        return IBRT_ENOMEM;
    }
    return IBRT_OK;
}

/* `count` distinct indices in [lo, n), magnitudes U(1, 2), random signs. */
static ibrt_status sparse_truth(ibrt_dataset *ds, ibrt_rng *r, size_t n, size_t lo, size_t count, ibrt_error *err)
{
    if (lo >= n || count > n - lo) {
        snprintf(err->msg, sizeof err->msg, "cannot place %zu non-zeros among %zu coefficients", count,
                 lo < n ? n - lo : 0);
        return IBRT_EVALUE;
    }
    ds->nonzeros = count;
    for (size_t placed = 0; placed < count;) {
        size_t k = lo + ibrt_rng_below(r, n - lo);
        if (ds->truth[k] != 0)
            continue;
        double mag = 1 + ibrt_rng_uniform(r);
        ds->truth[k] = ibrt_rng_uniform(r) < 0.5 ? -mag : mag;
        placed++;
    }
    return IBRT_OK;
}

static ibrt_status check_noise(const char *gen, double noise, ibrt_error *err)
{
    if (!(noise >= 0) || !isfinite(noise)) {
        snprintf(err->msg, sizeof err->msg, "%s: noise = %g, expected a finite standard deviation >= 0", gen, noise);
        return IBRT_EVALUE;
    }
    return IBRT_OK;
}

static void linear_labels(ibrt_dataset *ds, ibrt_rng *r, double noise)
{
    size_t n = ds->in_size;
    for (size_t s = 0; s < ds->n_train; s++) {
        double y = 0;
        for (size_t k = 0; k < n; k++)
            y += ds->x_train[s * n + k] * ds->truth[k];
        ds->y_train[s] = y + noise * ibrt_rng_normal(r);
    }
    for (size_t s = 0; s < ds->n_test; s++) {
        double y = 0;
        for (size_t k = 0; k < n; k++)
            y += ds->x_test[s * n + k] * ds->truth[k];
        ds->y_test[s] = y;
    }
}

ibrt_status ibrt_gen_cosine_spikes(ibrt_dataset *ds, ibrt_rng *r, size_t modes, size_t train, size_t test,
                                   size_t nonzeros, double noise, ibrt_error *err)
{
    ibrt_status st = check_noise("cosine_spikes", noise, err);
    if (st)
        return st;
    st = alloc_ds(ds, train, test, modes, 1, modes, err);
    if (st)
        return st;
    if ((st = sparse_truth(ds, r, modes, 1, nonzeros, err))) {
        ibrt_dataset_free(ds);
        return st;
    }
    const double pi = 3.14159265358979323846;
    for (size_t s = 0; s < train + test; s++) {
        double t = ibrt_rng_uniform(r);
        double *x = s < train ? ds->x_train + s * modes : ds->x_test + (s - train) * modes;
        for (size_t k = 0; k < modes; k++)
            x[k] = cos(2 * pi * (double)k * t);
    }
    linear_labels(ds, r, noise);
    return IBRT_OK;
}

ibrt_status ibrt_gen_sparse_regression(ibrt_dataset *ds, ibrt_rng *r, size_t features, size_t train, size_t test,
                                       size_t nonzeros, double noise, ibrt_error *err)
{
    ibrt_status st = check_noise("sparse_regression", noise, err);
    if (st)
        return st;
    st = alloc_ds(ds, train, test, features, 1, features, err);
    if (st)
        return st;
    if ((st = sparse_truth(ds, r, features, 0, nonzeros, err))) {
        ibrt_dataset_free(ds);
        return st;
    }
    ibrt_rng_fill_normal(r, ds->x_train, train * features, 0, 1);
    ibrt_rng_fill_normal(r, ds->x_test, test * features, 0, 1);
    linear_labels(ds, r, noise);
    return IBRT_OK;
}

ibrt_status ibrt_gen_piecewise_signal(ibrt_dataset *ds, ibrt_rng *r, size_t length, size_t measurements,
                                      const double *levels, const double *lengths, size_t nlevels, double noise,
                                      ibrt_error *err)
{
    size_t total = 0;
    ibrt_status st0 = check_noise("piecewise_signal", noise, err);
    if (st0)
        return st0;
    if (measurements == 0) {
        snprintf(err->msg, sizeof err->msg, "piecewise_signal: measurements = 0, expected at least 1");
        return IBRT_EVALUE;
    }
    for (size_t i = 0; i < nlevels; i++) {
        if (!(lengths[i] >= 0) || lengths[i] != floor(lengths[i]) || lengths[i] > 1e9) {
            snprintf(err->msg, sizeof err->msg, "piecewise_signal: lengths[%zu] = %g is not a count", i, lengths[i]);
            return IBRT_EVALUE;
        }
        total += (size_t)lengths[i];
    }
    if (total != length) {
        snprintf(err->msg, sizeof err->msg, "piecewise_signal: the lengths sum to %zu, not length = %zu", total,
                 length);
        return IBRT_ESHAPE;
    }
    ibrt_status st = alloc_ds(ds, measurements, 0, length, 1, length, err);
    if (st)
        return st;
    for (size_t i = 0, k = 0; i < nlevels; i++)
        for (size_t j = 0; j < (size_t)lengths[i]; j++)
            ds->truth[k++] = levels[i];
    ibrt_rng_fill_normal(r, ds->x_train, measurements * length, 0, 1 / sqrt((double)measurements));
    linear_labels(ds, r, noise);
    return IBRT_OK;
}

ibrt_status ibrt_gen_low_rank(ibrt_dataset *ds, ibrt_rng *r, size_t n, const double *sv, size_t rank, double p,
                              ibrt_error *err)
{
    if (rank > n) {
        snprintf(err->msg, sizeof err->msg, "low_rank: %zu singular values for a %zu x %zu matrix", rank, n, n);
        return IBRT_ESHAPE;
    }
    if (!(p >= 0 && p <= 1)) {
        snprintf(err->msg, sizeof err->msg, "low_rank: observed = %g, expected a probability in [0, 1]", p);
        return IBRT_EVALUE;
    }
    if (n == 0 || n > 46340) {   /* 46340^2 < 2^31: LAPACKE's int leading dimensions */
        snprintf(err->msg, sizeof err->msg, "low_rank: size = %zu, expected 1 to 46340", n);
        return IBRT_ESHAPE;
    }
    ibrt_status st = alloc_ds(ds, 1, 0, 0, n * n, n * n, err);
    if (st)
        return st;
    ds->mask = data_zeros(n * n);
    double *P = malloc(n * n * sizeof *P), *Q = malloc(n * n * sizeof *Q), *tau = malloc(n * sizeof *tau);
    if (!ds->mask || !P || !Q || !tau) {
        free(P);
        free(Q);
        free(tau);
        ibrt_dataset_free(ds);
        snprintf(err->msg, sizeof err->msg, "low_rank: out of memory for a %zu x %zu matrix", n, n);
        return IBRT_ENOMEM;
    }
    double *mats[2] = { P, Q };
    for (int m = 0; m < 2; m++) {
        ibrt_rng_fill_normal(r, mats[m], n * n, 0, 1);
        lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, mats[m], (lapack_int)n, tau);
        if (!info)
            info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, (lapack_int)n, mats[m],
                                  (lapack_int)n, tau);
        if (info) {
            free(P);
            free(Q);
            free(tau);
            ibrt_dataset_free(ds);
            snprintf(err->msg, sizeof err->msg, "low_rank: QR of a %zu x %zu Gaussian matrix failed (info %d)", n, n,
                     (int)info);
            return IBRT_EVALUE;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t k = 0; k < rank; k++)
                v += P[i * n + k] * sv[k] * Q[j * n + k];
            ds->truth[i * n + j] = ds->y_train[i * n + j] = v;
            ds->mask[i * n + j] = ibrt_rng_uniform(r) < p ? 1 : 0;
        }
    free(P);
    free(Q);
    free(tau);
    return IBRT_OK;
}

void ibrt_sample_normal_inputs(ibrt_rng *r, double *x, size_t n, double mean, double std)
{
    ibrt_rng_fill_normal(r, x, n, mean, std);
}

/* One file of a pair: rows x want columns; a single column stands for a
 * 1-D array of labels. */
static ibrt_status read_part(const char *path, const char *what, size_t want, int header, double **out,
                             size_t *rows, ibrt_error *err)
{
    size_t c, n = strlen(path);
    ibrt_status st = n >= 4 && !strcmp(path + n - 4, ".npy") ? ibrt_io_read_matrix(path, rows, &c, out, err)
                                                              : ibrt_csv_read_header(path, header, rows, &c, out, err);
    if (st)
        return st;
    if (c != want) {
        snprintf(err->msg, sizeof err->msg, "%.400s: %s have %zu column%s, the spec expects %zu", path, what, c,
                 c == 1 ? "" : "s", want);
        free(*out);
        *out = NULL;
        return IBRT_ESHAPE;
    }
    if (*rows == 0) {
        snprintf(err->msg, sizeof err->msg, "%.400s: no samples", path);
        free(*out);
        *out = NULL;
        return IBRT_ESHAPE;
    }
    return IBRT_OK;
}

static ibrt_status read_pair(const char *xp, const char *yp, size_t in, size_t out, int header, double **x,
                             double **y, size_t *n, ibrt_error *err)
{
    size_t nx, ny;
    ibrt_status st = read_part(xp, "inputs", in, header, x, &nx, err);
    if (st)
        return st;
    if ((st = read_part(yp, "labels", out, header, y, &ny, err)))
        return st;
    if (nx != ny) {
        snprintf(err->msg, sizeof err->msg, "%.200s has %zu samples but %.200s has %zu labels: one row per sample in "
                 "both", xp, nx, yp, ny);
        return IBRT_ESHAPE;
    }
    *n = nx;
    return IBRT_OK;
}

ibrt_status ibrt_gen_from_files(ibrt_dataset *ds, const char *x_path, const char *y_path, const char *test_x_path,
                                const char *test_y_path, size_t in_size, size_t out_size, ibrt_error *err)
{
    return ibrt_gen_from_files_header(ds, x_path, y_path, test_x_path, test_y_path, in_size, out_size,
                                      IBRT_CSV_HEADER_DATA, err);
}

ibrt_status ibrt_gen_from_files_header(ibrt_dataset *ds, const char *x_path, const char *y_path,
                                       const char *test_x_path, const char *test_y_path, size_t in_size,
                                       size_t out_size, int header, ibrt_error *err)
{
    memset(ds, 0, sizeof *ds);
    ds->in_size = in_size;
    ds->out_size = out_size;
    if (!x_path || !y_path || (!test_x_path) != (!test_y_path)) {
        snprintf(err->msg, sizeof err->msg, "data files: %s", !x_path || !y_path ? "inputs and labels are both required"
                 : "test inputs and test labels go together");
        return IBRT_EVALUE;
    }
    ibrt_status st = read_pair(x_path, y_path, in_size, out_size, header, &ds->x_train, &ds->y_train, &ds->n_train, err);
    if (!st && test_x_path)
        st = read_pair(test_x_path, test_y_path, in_size, out_size, header, &ds->x_test, &ds->y_test, &ds->n_test, err);
    if (!st && !test_x_path) {
        /* empty test arrays, as the generators leave them, so that callers may free and index uniformly */
        ds->x_test = calloc(1, sizeof(double));
        ds->y_test = calloc(1, sizeof(double));
        if (!ds->x_test || !ds->y_test) {
            snprintf(err->msg, sizeof err->msg, "out of memory");
            st = IBRT_ENOMEM;
        }
    }
    if (st)
        ibrt_dataset_free(ds);
    return st;
}

ibrt_status ibrt_data_fits_batch(const ibrt_dataset *ds, const char *x_path, size_t batch, ibrt_error *err)
{
    if (ds->n_train >= batch)
        return IBRT_OK;
    snprintf(err->msg, sizeof err->msg, "%.300s has %zu sample%s, fewer than the batch of %zu drawn each step: set "
             "the spec's batch to at most %zu, or batch = full", x_path, ds->n_train, ds->n_train == 1 ? "" : "s",
             batch, ds->n_train);
    return IBRT_ESHAPE;
}
