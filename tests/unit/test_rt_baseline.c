/* test_rt_baseline.c: the matrix-completion reference (soft-impute with an
 * oracle lambda) and the identifiability counts of an observation pattern. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ibrt_baseline.h"

/* M = a b' + c d', 8 x 6, rank 2 */
static void rank2(double *M)
{
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 6; j++)
            M[i * 6 + j] = (1 + i) * (2 - 0.5 * j) + 0.3 * (i % 3 - 1) * (j * j - 4);
}

Test(completion, fully_observed_is_recovered)
{
    double M[48], mask[48];
    rank2(M);
    for (int e = 0; e < 48; e++)
        mask[e] = 1;
    ibrt_completion_report r;
    ibrt_error err;
    cr_assert_eq(ibrt_baseline_completion(8, 6, M, mask, true, &r, &err), IBRT_OK);
    cr_assert_eq(r.rank, 2);
    cr_assert_eq(r.observed, 48);
    cr_assert_eq(r.rows_under + r.cols_under, 0);
    /* the smallest lambda of the grid is 1e-4 sigma_1: the shrinkage costs
     * at most that much of each singular value */
    cr_assert_lt(r.best_error, 2e-4, "%g", r.best_error);
}

Test(completion, an_unobserved_row_is_underdetermined)
{
    double M[48], mask[48];
    rank2(M);
    for (int e = 0; e < 48; e++)
        mask[e] = (e * 7) % 5 != 0;   /* about 80% observed */
    for (int j = 0; j < 6; j++)
        mask[3 * 6 + j] = j == 0;     /* row 3: one entry, rank 2 needs two */
    ibrt_completion_report r;
    ibrt_error err;
    cr_assert_eq(ibrt_baseline_completion(8, 6, M, mask, true, &r, &err), IBRT_OK);
    cr_assert_eq(r.rows_under, 1);
    cr_assert_eq(r.cols_under, 0);
    /* row 3 cannot be recovered: the error is bounded away from zero */
    cr_assert_gt(r.best_error, 1e-3, "%g", r.best_error);
}

/* The truncated, warm-started SVT (SUBSPACE) against the full SVD on a
 * 36 x 30 rank-2 matrix with about 25% of its entries observed.  Both run
 * the same 9000 soft-impute steps from Z = 0; each truncated step is
 * within its residual ||R_c||_F of the exact one and the soft-impute step
 * is nonexpansive, so the best errors differ by at most
 * svt_residual_sum / ||M||_F (ibrt_baseline.h), plus the rounding of the
 * full SVDs themselves (backward stable, about n eps ||A|| each: 9000 x 36
 * x 2.2e-16 < 1e-10 relative, taken as 1e-9). */
Test(completion, truncated_svt_agrees_with_the_full_svd)
{
    enum { N1 = 36, N2 = 30 };
    static double M[N1 * N2], mask[N1 * N2];
    ibrt_rng r;
    ibrt_rng_seed(&r, 7);
    double a[2][N1], b[2][N2];
    ibrt_rng_fill_normal(&r, a[0], 2 * N1, 0, 1);
    ibrt_rng_fill_normal(&r, b[0], 2 * N2, 0, 1);
    double norm = 0;
    for (int i = 0; i < N1; i++)
        for (int j = 0; j < N2; j++) {
            M[i * N2 + j] = 15 * a[0][i] * b[0][j] + 5 * a[1][i] * b[1][j];
            mask[i * N2 + j] = ibrt_rng_uniform(&r) < 0.25;
            norm += M[i * N2 + j] * M[i * N2 + j];
        }
    norm = sqrt(norm);
    ibrt_completion_report full, sub;
    ibrt_error err;
    cr_assert_eq(ibrt_baseline_completion_svt(N1, N2, M, mask, true, IBRT_BASELINE_SVT_FULL, &full, &err), IBRT_OK);
    cr_assert_eq(ibrt_baseline_completion_svt(N1, N2, M, mask, true, IBRT_BASELINE_SVT_SUBSPACE, &sub, &err), IBRT_OK);
    /* the truncated path did much of the work (not the fallback throughout;
     * where more than 15 triplets exceed lambda, the full SVD does it) */
    cr_assert_gt(sub.svt_truncated, 3000, "%zu truncated, %zu full", sub.svt_truncated, sub.svt_full);
    cr_assert_eq(sub.svt_truncated + sub.svt_full, 9000);
    cr_assert_eq(full.svt_truncated, 0);
    double bound = sub.svt_residual_sum / norm + 1e-9;
    cr_assert_leq(fabs(sub.best_error - full.best_error), bound, "%.17g vs %.17g (bound %g)", sub.best_error,
                  full.best_error, bound);
    cr_assert_eq(sub.best_lambda, full.best_lambda);
    cr_assert_eq(sub.rank, full.rank);
    /* the bound is informative: the sweep's own error is far above it */
    cr_assert_gt(full.best_error, 100 * bound, "%g %g", full.best_error, bound);
}
