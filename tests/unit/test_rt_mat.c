/* test_rt_mat.c: views, dimension-checked BLAS, Cholesky log det, SVD
 * values and the reusable LU on matrices with known answers. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ibrt_mat.h"

Test(mat, views_and_strides)
{
    double a[12];
    for (int i = 0; i < 12; i++)
        a[i] = i;
    ibrt_mat m = ibrt_mat_view(a, 3, 4);
    ibrt_vec col = ibrt_mat_col(&m, 2), row = ibrt_mat_row(&m, 1);
    cr_assert_eq(col.size, 3);
    cr_assert_eq(col.stride, 4);
    cr_assert_eq(*ibrt_vec_ptr(&col, 2), 10);
    cr_assert_eq(*ibrt_vec_ptr(&row, 3), 7);
    ibrt_mat sub = ibrt_mat_submatrix(&m, 1, 1, 2, 2);
    cr_assert_eq(*ibrt_mat_ptr(&sub, 1, 1), 10);
    cr_assert_eq(sub.tda, 4);
    ibrt_mat own;
    ibrt_error e;
    cr_assert_eq(ibrt_mat_alloc(&own, 2, 3, &e), IBRT_OK);
    cr_assert(own.owner && own.data[5] == 0);
    ibrt_mat_free(&own);
    cr_assert_null(own.data);
    ibrt_mat_free(&m);   /* a view: nothing to release */
    cr_assert_eq(a[0], 0);
}

Test(mat, gemv_gemm_results_and_shape_errors)
{
    double a[6] = { 1, 2, 3, 4, 5, 6 };   /* 2 x 3 */
    double x[3] = { 1, 0, -1 }, y[2] = { 10, 20 };
    ibrt_mat A = ibrt_mat_view(a, 2, 3);
    ibrt_vec vx = ibrt_vec_view(x, 3), vy = ibrt_vec_view(y, 2);
    ibrt_error e;
    cr_assert_eq(ibrt_blas_gemv(0, 1, &A, &vx, 0.5, &vy, &e), IBRT_OK);
    cr_assert(y[0] == 5 - 2 && y[1] == 10 - 2, "%g %g", y[0], y[1]);
    cr_assert_eq(ibrt_blas_gemv(0, 1, &A, &vy, 0, &vx, &e), IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "gemv: A is 2 x 3, x has 2 entries (expected 3), y has 3 (expected 2)");
    /* A' y through the column stride of a view */
    double yt[2] = { 1, 1 }, out[3];
    ibrt_vec vyt = ibrt_vec_view(yt, 2), vout = ibrt_vec_view(out, 3);
    cr_assert_eq(ibrt_blas_gemv(1, 1, &A, &vyt, 0, &vout, &e), IBRT_OK);
    cr_assert(out[0] == 5 && out[1] == 7 && out[2] == 9);
    double c[4];
    ibrt_mat C = ibrt_mat_view(c, 2, 2);
    cr_assert_eq(ibrt_blas_gemm(0, 1, 1, &A, &A, 0, &C, &e), IBRT_OK);   /* A A' */
    cr_assert(c[0] == 14 && c[1] == 32 && c[2] == 32 && c[3] == 77);
    cr_assert_eq(ibrt_blas_gemm(0, 0, 1, &A, &A, 0, &C, &e), IBRT_ESHAPE);
    cr_assert_str_eq(e.msg, "gemm: A is 2 x 3, B is 2 x 3, C is 2 x 2 (expected inner dimensions equal and C 2 x 3)");
    double d;
    cr_assert_eq(ibrt_blas_dot(&vx, &vx, &d, &e), IBRT_OK);
    cr_assert_eq(ibrt_blas_dot(&vx, &vy, &d, &e), IBRT_ESHAPE);
}

Test(linalg, logdet_chol_known_matrices)
{
    int st;
    double g2[4] = { 4, 2, 2, 3 };   /* det 8 */
    cr_assert_lt(fabs(ibrt_linalg_logdet_chol(2, g2, &st) - log(8.0)), 1e-14);
    cr_assert_eq(st, IBRT_OK);
    cr_assert_eq(g2[0], 4, "the input is not modified");
    /* tridiag(-1, 2, -1) of order n has det n + 1 */
    double t[25] = { 0 };
    for (int i = 0; i < 5; i++) {
        t[i * 5 + i] = 2;
        if (i)
            t[i * 5 + i - 1] = t[(i - 1) * 5 + i] = -1;
    }
    cr_assert_lt(fabs(ibrt_linalg_logdet_chol(5, t, &st) - log(6.0)), 1e-14);
    /* det 1e-600 underflows as a product, not as a log */
    double tiny[4] = { 1e-300, 0, 0, 1e-300 };
    cr_assert_lt(fabs(ibrt_linalg_logdet_chol(2, tiny, &st) + 600 * log(10.0)), 1e-9);
    double indef[4] = { 1, 2, 2, 1 };
    cr_assert(isnan(ibrt_linalg_logdet_chol(2, indef, &st)));
    cr_assert_eq(st, IBRT_EVALUE);
    cr_assert_eq(ibrt_linalg_logdet_chol(0, NULL, &st), 0);
    cr_assert_eq(st, IBRT_OK);
}

Test(linalg, svd_of_rank_two_product)
{
    /* M = P diag(15, 5) Q' with orthonormal columns P (4 x 2), Q (3 x 2) */
    double c = cos(0.3), s = sin(0.3), h = 0.5;
    double P[8] = { h, h, h, -h, h, h, h, -h };
    double Q[6] = { c, -s, s, c, 0, 0 };
    double sv[2] = { 15, 5 }, M[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            M[i * 3 + j] = P[i * 2] * sv[0] * Q[j * 2] + P[i * 2 + 1] * sv[1] * Q[j * 2 + 1];
    double out[3];
    ibrt_error e;
    cr_assert_eq(ibrt_linalg_svd_values(4, 3, M, out, &e), IBRT_OK);
    cr_assert_lt(fabs(out[0] - 15), 1e-13);
    cr_assert_lt(fabs(out[1] - 5), 1e-13);
    cr_assert_lt(out[2], 1e-13);
}

Test(linalg, lu_solve_and_condition)
{
    double a[9] = { 4, -2, 1, -2, 4, -2, 1, -2, 4 }, x[3] = { 1, -2, 3 }, b[3];
    for (int i = 0; i < 3; i++)
        b[i] = a[i * 3] * x[0] + a[i * 3 + 1] * x[1] + a[i * 3 + 2] * x[2];
    ibrt_lu lu;
    ibrt_error e;
    cr_assert_eq(ibrt_lu_factor(&lu, 3, a, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(ibrt_lu_solve(&lu, 0, 1, b, &e), IBRT_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_lt(fabs(b[i] - x[i]), 1e-14);
    /* the same factors solve the transposed system (A is symmetric here, so
     * check with a non-symmetric one below) */
    ibrt_lu_free(&lu);
    double n[4] = { 1, 2, 0, 1 }, rhs[2] = { 1, 1 };   /* N' z = rhs: z = (1, -1) */
    cr_assert_eq(ibrt_lu_factor(&lu, 2, n, &e), IBRT_OK);
    cr_assert_eq(ibrt_lu_solve(&lu, 1, 1, rhs, &e), IBRT_OK);
    cr_assert(fabs(rhs[0] - 1) < 1e-15 && fabs(rhs[1] + 1) < 1e-15, "%g %g", rhs[0], rhs[1]);
    ibrt_lu_free(&lu);
    double id[4] = { 1, 0, 0, 1 }, ill[4] = { 1, 0, 0, 1e-8 };
    cr_assert_eq(ibrt_lu_factor(&lu, 2, id, &e), IBRT_OK);
    cr_assert_eq(lu.rcond, 1);
    ibrt_lu_free(&lu);
    cr_assert_eq(ibrt_lu_factor(&lu, 2, ill, &e), IBRT_OK);
    cr_assert_lt(fabs(lu.rcond - 1e-8), 1e-20);
    ibrt_lu_free(&lu);
    double sing[4] = { 1, 2, 2, 4 };
    cr_assert_eq(ibrt_lu_factor(&lu, 2, sing, &e), IBRT_EVALUE);
    cr_assert_str_eq(e.msg, "LU: the 2 x 2 matrix is singular (U(2,2) = 0 exactly)");
    cr_assert_null(lu.lu);
    cr_assert_eq(ibrt_lu_solve(&lu, 0, 1, rhs, &e), IBRT_EVALUE);
}
