/*
 * ibrt_data.h: data sets read from files, and input sampling for the
 * streaming generators (teacher, noisy_target), complementing the fixed
 * synthetic generators of ibrt.h.
 *
 * ibrt_gen_from_files reads inputs and labels (CSV or .npy, chosen by the
 * file name, see ibrt_io.h) and checks that they agree: x has in_size
 * columns, y has out_size columns (a 1-D array or a single column is
 * accepted when out_size is 1, likewise for x), and x and y have the same
 * number of rows.  A mismatch is IBRT_ESHAPE naming the file, the
 * dimension, what it has and what the spec expects.  Test files are
 * optional (NULL): then n_test is 0.  truth is left empty (truth_size 0).
 */
#ifndef IBRT_DATA_H
#define IBRT_DATA_H

#include "ibrt.h"

ibrt_status ibrt_gen_from_files(ibrt_dataset *ds, const char *x_path, const char *y_path, const char *test_x_path,
                                const char *test_y_path, size_t in_size, size_t out_size, ibrt_error *err);
/* The same with the header rule of every CSV file given (ibrt_csv_read_header:
 * 1, 0, or IBRT_CSV_HEADER_DATA, which is ibrt_gen_from_files: the spec
 * does not say); .npy files have no header line. */
ibrt_status ibrt_gen_from_files_header(ibrt_dataset *ds, const char *x_path, const char *y_path,
                                       const char *test_x_path, const char *test_y_path, size_t in_size,
                                       size_t out_size, int header, ibrt_error *err);
/* A minibatch of BATCH samples drawn each step from a training set read
 * from files must fit in it (as the compiler checks for the generators'
 * training sets): IBRT_ESHAPE naming X_PATH and its number of samples
 * otherwise. */
ibrt_status ibrt_data_fits_batch(const ibrt_dataset *ds, const char *x_path, size_t batch, ibrt_error *err);
/* x[i] ~ N(mean, std^2); no allocation (called per batch). */
void ibrt_sample_normal_inputs(ibrt_rng *r, double *x, size_t n, double mean, double std);

#endif
