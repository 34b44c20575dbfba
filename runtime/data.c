/*
 * data.c: the synthetic data sets of the paper's experiments
 * (paper-experiments.md).  Every generator draws from the rng it is given,
 * so the data set is a function of the seed.
 */
#include "ibrt.h"

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

static ibrt_status alloc_ds(ibrt_dataset *ds, size_t train, size_t test, size_t in, size_t out, size_t truth,
                            ibrt_error *err)
{
    memset(ds, 0, sizeof *ds);
    ds->n_train = train;
    ds->n_test = test;
    ds->in_size = in;
    ds->out_size = out;
    ds->truth_size = truth;
    ds->x_train = calloc(train * in + 1, sizeof(double));
    ds->y_train = calloc(train * out + 1, sizeof(double));
    ds->x_test = calloc(test * in + 1, sizeof(double));
    ds->y_test = calloc(test * out + 1, sizeof(double));
    ds->truth = calloc(truth + 1, sizeof(double));
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
    if (count > n - lo) {
        snprintf(err->msg, sizeof err->msg, "cannot place %zu non-zeros among %zu coefficients", count, n - lo);
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
    ibrt_status st = alloc_ds(ds, train, test, modes, 1, modes, err);
    if (st)
        return st;
    if ((st = sparse_truth(ds, r, modes, 1, nonzeros, err)))
        return st;
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
    ibrt_status st = alloc_ds(ds, train, test, features, 1, features, err);
    if (st)
        return st;
    if ((st = sparse_truth(ds, r, features, 0, nonzeros, err)))
        return st;
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
    for (size_t i = 0; i < nlevels; i++) {
        if (lengths[i] < 0 || lengths[i] != floor(lengths[i])) {
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
    ibrt_status st = alloc_ds(ds, 1, 0, 0, n * n, n * n, err);
    if (st)
        return st;
    ds->mask = calloc(n * n, sizeof(double));
    double *P = malloc(n * n * sizeof *P), *Q = malloc(n * n * sizeof *Q), *tau = malloc(n * sizeof *tau);
    if (!ds->mask || !P || !Q || !tau) {
        free(P);
        free(Q);
        free(tau);
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    double *mats[2] = { P, Q };
    for (int m = 0; m < 2; m++) {
        ibrt_rng_fill_normal(r, mats[m], n * n, 0, 1);
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, mats[m], (lapack_int)n, tau);
        LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, (lapack_int)n, mats[m], (lapack_int)n, tau);
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
