/* test_rt_data.c: the synthetic generators produce what
 * the paper's experiments describe (checked on the numbers), reproducibly,
 * and data files are checked against the expected shapes. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ibrt_data.h"
#include "ibrt_rng.h"

Test(data, cosine_spikes)
{
    ibrt_dataset ds;
    ibrt_rng r;
    ibrt_error e;
    ibrt_rng_seed(&r, 1);
    cr_assert_eq(ibrt_gen_cosine_spikes(&ds, &r, 64, 500, 200, 3, 0.1, &e), IBRT_OK, "%s", e.msg);
    cr_assert(ds.n_train == 500 && ds.n_test == 200 && ds.in_size == 64 && ds.out_size == 1 && ds.truth_size == 64);
    int nz = 0;
    for (int k = 0; k < 64; k++)
        if (ds.truth[k] != 0) {
            nz++;
            cr_assert(k >= 1, "no spike at k = 0");
            cr_assert(fabs(ds.truth[k]) >= 1 && fabs(ds.truth[k]) < 2, "magnitude %g", ds.truth[k]);
        }
    cr_assert_eq(nz, 3);
    /* x_k = cos(2 pi k t): x_0 = 1 and the Chebyshev identity x_2 = 2 x_1^2 - 1 */
    double resid = 0;
    for (size_t s = 0; s < ds.n_train; s++) {
        const double *x = ds.x_train + s * 64;
        cr_assert_eq(x[0], 1);
        cr_assert_lt(fabs(x[2] - (2 * x[1] * x[1] - 1)), 1e-12);
        double y = 0;
        for (int k = 0; k < 64; k++)
            y += x[k] * ds.truth[k];
        resid += (ds.y_train[s] - y) * (ds.y_train[s] - y);
    }
    /* the train noise has variance 0.01: 500 residuals, chi-square bounds
     * (mean 500, sd sqrt(1000) = 31.6; 5 sd) */
    cr_assert_lt(fabs(resid / 0.01 - 500), 5 * sqrt(1000.0), "noise sum of squares %g", resid);
    for (size_t s = 0; s < ds.n_test; s++) {   /* test labels are noiseless */
        double y = 0;
        for (int k = 0; k < 64; k++)
            y += ds.x_test[s * 64 + k] * ds.truth[k];
        cr_assert_lt(fabs(ds.y_test[s] - y), 1e-12);
    }
    /* reproducible from the seed */
    ibrt_dataset again;
    ibrt_rng_seed(&r, 1);
    cr_assert_eq(ibrt_gen_cosine_spikes(&again, &r, 64, 500, 200, 3, 0.1, &e), IBRT_OK);
    cr_assert_eq(memcmp(again.y_train, ds.y_train, 500 * sizeof(double)), 0);
    ibrt_dataset_free(&again);
    ibrt_dataset_free(&ds);
    cr_assert_null(ds.x_train);
    /* impossible requests are refused, not looped on */
    ibrt_rng_seed(&r, 1);
    cr_assert_eq(ibrt_gen_cosine_spikes(&ds, &r, 3, 5, 5, 3, 0.1, &e), IBRT_EVALUE);
    cr_assert_str_eq(e.msg, "cannot place 3 non-zeros among 2 coefficients");
    cr_assert_eq(ibrt_gen_cosine_spikes(&ds, &r, 0, 5, 5, 1, 0.1, &e), IBRT_EVALUE);
    cr_assert_eq(ibrt_gen_cosine_spikes(&ds, &r, 8, 5, 5, 1, -1, &e), IBRT_EVALUE);
    cr_assert_str_eq(e.msg, "cosine_spikes: noise = -1, expected a finite standard deviation >= 0");
}

Test(data, piecewise_signal)
{
    ibrt_dataset ds;
    ibrt_rng r;
    ibrt_error e;
    ibrt_rng_seed(&r, 2);
    double levels[3] = { 0, 2, -1 }, lengths[3] = { 4, 3, 3 };
    cr_assert_eq(ibrt_gen_piecewise_signal(&ds, &r, 10, 2000, levels, lengths, 3, 0, &e), IBRT_OK, "%s", e.msg);
    const double want[10] = { 0, 0, 0, 0, 2, 2, 2, -1, -1, -1 };
    cr_assert_eq(memcmp(ds.truth, want, sizeof want), 0);
    /* A_ij ~ N(0, 1/m): sum of squares of 20000 entries is 10 on average,
     * sd sqrt(2 * 20000) / 2000 = 0.1 */
    double ss = 0;
    for (size_t i = 0; i < 20000; i++)
        ss += ds.x_train[i] * ds.x_train[i];
    cr_assert_lt(fabs(ss - 10), 0.5, "%g", ss);
    double y = 0;   /* noise 0: y = A w* exactly */
    for (int k = 0; k < 10; k++)
        y += ds.x_train[7 * 10 + k] * want[k];
    cr_assert_lt(fabs(ds.y_train[7] - y), 1e-15);
    ibrt_dataset_free(&ds);
    lengths[2] = 2;
    cr_assert_eq(ibrt_gen_piecewise_signal(&ds, &r, 10, 20, levels, lengths, 3, 0, &e), IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "piecewise_signal: the lengths sum to 9, not length = 10");
    lengths[2] = 2.5;
    cr_assert_eq(ibrt_gen_piecewise_signal(&ds, &r, 10, 20, levels, lengths, 3, 0, &e), IBRT_EVALUE);
    cr_assert_str_eq(e.msg, "piecewise_signal: lengths[2] = 2.5 is not a count");
}

Test(data, low_rank)
{
    ibrt_dataset ds;
    ibrt_rng r;
    ibrt_error e;
    ibrt_rng_seed(&r, 3);
    double sv[2] = { 15, 5 };
    cr_assert_eq(ibrt_gen_low_rank(&ds, &r, 30, sv, 2, 0.3, &e), IBRT_OK, "%s", e.msg);
    double s[30];
    cr_assert_eq(ibrt_linalg_svd_values(30, 30, ds.truth, s, &e), IBRT_OK);
    cr_assert_lt(fabs(s[0] - 15), 1e-12);
    cr_assert_lt(fabs(s[1] - 5), 1e-12);
    cr_assert_lt(s[2], 1e-12);
    /* 900 Bernoulli(0.3): mean 270, sd 13.7; 5 sd */
    double obs = 0;
    for (int i = 0; i < 900; i++) {
        cr_assert(ds.mask[i] == 0 || ds.mask[i] == 1);
        obs += ds.mask[i];
    }
    cr_assert_lt(fabs(obs - 270), 5 * sqrt(900 * 0.21), "%g observed", obs);
    ibrt_dataset_free(&ds);
    cr_assert_eq(ibrt_gen_low_rank(&ds, &r, 30, sv, 2, 1.5, &e), IBRT_EVALUE);
    cr_assert_str_eq(e.msg, "low_rank: observed = 1.5, expected a probability in [0, 1]");
    cr_assert_eq(ibrt_gen_low_rank(&ds, &r, 1, sv, 2, 0.5, &e), IBRT_ESHAPE);
}

Test(data, from_files)
{
    ibrt_dataset ds;
    ibrt_error e;
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4.csv", NULL, NULL, 2, 1, &e), IBRT_OK,
                 "%s", e.msg);
    cr_assert(ds.n_train == 4 && ds.n_test == 0 && ds.x_train[5] == 6 && ds.y_train[3] == 4);
    ibrt_dataset_free(&ds);
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4.csv", "tests/data/x4x2.csv",
                                     "tests/data/y4.csv", 2, 1, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(ds.n_test, 4);
    ibrt_dataset_free(&ds);
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4.csv", NULL, NULL, 3, 1, &e),
                 IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "tests/data/x4x2.csv: inputs have 2 columns, the spec expects 3");
    cr_assert_null(ds.x_train);
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y3.csv", NULL, NULL, 2, 1, &e),
                 IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "tests/data/x4x2.csv has 4 samples but tests/data/y3.csv has 3 labels: one row per "
                            "sample in both");
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4x2.csv", NULL, NULL, 2, 1, &e),
                 IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "tests/data/y4x2.csv: labels have 2 columns, the spec expects 1");
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/good_f8.npy", "tests/data/y4.csv", NULL, NULL, 3, 1, &e),
                 IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "tests/data/good_f8.npy has 2 samples but tests/data/y4.csv has 4 labels: one row per "
                            "sample in both");
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/ragged.csv", "tests/data/y4.csv", NULL, NULL, 3, 1, &e),
                 IBRT_EFORMAT);
    cr_assert_str_eq(e.msg, "tests/data/ragged.csv:3: row has 2 cells, expected 3 (as on line 2)");
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4.csv", "tests/data/x4x2.csv", NULL, 2,
                                     1, &e), IBRT_EVALUE);
}

/* The spec's header = true / false reaches every CSV file of the pair;
 * without it a first line 0,1,...,k-1 is refused, not guessed. */
Test(data, from_files_header)
{
    ibrt_dataset ds;
    ibrt_error e;
    cr_assert_eq(ibrt_gen_from_files_header(&ds, "tests/data/pandas_labels_x.csv", "tests/data/pandas_labels_y.csv",
                                            NULL, NULL, 2, 1, 1, &e), IBRT_OK, "%s", e.msg);
    cr_assert(ds.n_train == 4 && ds.x_train[0] == 1 && ds.x_train[7] == 8 && ds.y_train[0] == 1 && ds.y_train[3] == 4);
    ibrt_dataset_free(&ds);
    cr_assert_eq(ibrt_gen_from_files_header(&ds, "tests/data/pandas_labels_x.csv", "tests/data/pandas_labels_y.csv",
                                            NULL, NULL, 2, 1, 0, &e), IBRT_OK, "%s", e.msg);
    cr_assert(ds.n_train == 5 && ds.x_train[1] == 1 && ds.y_train[0] == 0);
    ibrt_dataset_free(&ds);
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/pandas_labels_x.csv", "tests/data/pandas_labels_y.csv", NULL,
                                     NULL, 2, 1, &e), IBRT_EFORMAT);
    cr_assert(strstr(e.msg, "pandas_labels_x.csv:1: the first line is 0,1,...,1, as pandas writes integer column "
                            "labels"), "%s", e.msg);
}

/* Issue 17, item 7: a minibatch drawn from a training set read from files
 * fits in it, as the compiler checks for the generators. */
Test(data, file_training_set_fits_the_batch)
{
    ibrt_dataset ds;
    ibrt_error e;
    cr_assert_eq(ibrt_gen_from_files(&ds, "tests/data/x4x2.csv", "tests/data/y4.csv", NULL, NULL, 2, 1, &e), IBRT_OK,
                 "%s", e.msg);
    cr_assert_eq(ibrt_data_fits_batch(&ds, "tests/data/x4x2.csv", 4, &e), IBRT_OK);
    cr_assert_eq(ibrt_data_fits_batch(&ds, "tests/data/x4x2.csv", 5, &e), IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "tests/data/x4x2.csv has 4 samples, fewer than the batch of 5 drawn each step: set the "
                            "spec's batch to at most 4, or batch = full");
    ibrt_dataset_free(&ds);
}

Test(data, normal_inputs)
{
    ibrt_rng a, b;
    ibrt_rng_seed(&a, 9);
    ibrt_rng_seed(&b, 9);
    double x[100], y[100];
    ibrt_sample_normal_inputs(&a, x, 100, 1, 2);
    ibrt_rng_fill_normal(&b, y, 100, 1, 2);
    cr_assert_eq(memcmp(x, y, sizeof x), 0);
}
