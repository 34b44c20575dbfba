/*
 * ibrt_baseline.h: reference methods a designed model is compared with
 * (module prefix ibrt_baseline_).
 *
 * Matrix completion (E3): nuclear-norm completion by soft-impute, and the
 * identifiability of the observation pattern.  A rank-r matrix M = P S Q'
 * is determined by its observed entries only if every row and every
 * column has at least r of them: row i of M is a combination of the r
 * rows of S Q', and fewer than r observed entries cannot fix its r
 * coefficients.  With such a row or column M is not determined by the
 * data, and no method can be counted on to recover it: that tells a
 * failure of the implicit bias from a lack of data.
 */
#ifndef IBRT_BASELINE_H
#define IBRT_BASELINE_H

#include "ibrt.h"

typedef struct {
    double best_error;      /* min over the lambda grid of ||Z - M||_F / ||M||_F */
    double best_lambda;
    size_t lambdas;         /* grid size */
    size_t rank;            /* numerical rank of M (sigma > 1e-9 sigma_1) */
    size_t observed;        /* observed entries */
    size_t rows_under, cols_under;   /* rows / columns with fewer than rank observed entries */
} ibrt_completion_report;

/* Soft-impute (Mazumder, Hastie & Tibshirani, JMLR 2010): iterate
 * Z <- S_lambda(P_obs(M) + P_unobs(Z)), S_lambda soft-thresholding the
 * singular values by lambda, on a geometric grid of 30 lambdas from
 * sigma_1(P_obs M) down to 1e-4 of it, warm-started, 300 iterations each
 * (LAPACKE dgesvd).  lambda is chosen by the truth (an oracle): the best
 * error is a lower bound for nuclear-norm completion with lambda tuned on
 * the data.  M and mask are n1 x n2 row-major (mask 1: observed).  The
 * sweep costs 9000 SVDs of n1 x n2; with sweep false only the report's
 * counts (rank, observed, underdetermined rows and columns: two SVDs) are
 * computed, and best_error, best_lambda are NAN, lambdas 0. */
ibrt_status ibrt_baseline_completion(size_t n1, size_t n2, const double *M, const double *mask, bool sweep,
                                     ibrt_completion_report *rep, ibrt_error *err);

#endif
