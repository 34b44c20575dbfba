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
