/* test_rt_ops.c: the fixed operators: cumsum and diff are inverse, each
 * transpose is the adjoint (<A x, y> = <x, A' y>), the DCT matrix is
 * orthonormal. */
#include <criterion/criterion.h>
#include <math.h>

#include "ibrt_ops.h"
#include "ibrt_rng.h"

enum { N = 37 };

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

Test(ops, cumsum_and_diff_are_inverse)
{
    double w[N], z[N], back[N];
    for (int i = 0; i < N; i++)
        w[i] = (i * 7 % 11) - 5;   /* integers: every operation below is exact */
    ibrt_op_diff(N, w, z);
    cr_assert_eq(z[0], w[0]);
    cr_assert_eq(z[5], w[5] - w[4]);
    ibrt_op_cumsum(N, z, back);
    for (int i = 0; i < N; i++)
        cr_assert_eq(back[i], w[i]);
    ibrt_op_cumsum(N, w, z);
    ibrt_op_diff(N, z, back);
    for (int i = 0; i < N; i++)
        cr_assert_eq(back[i], w[i]);
    /* and the transposes: (cumsum)' (diff)' = (diff cumsum)' = id */
    ibrt_op_diff_T(N, w, z);
    ibrt_op_cumsum_T(N, z, back);
    for (int i = 0; i < N; i++)
        cr_assert_eq(back[i], w[i]);
}

Test(ops, transposes_are_adjoints)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 4);
    double x[N], y[N], ax[N], aty[N];
    ibrt_rng_fill_normal(&r, x, N, 0, 1);
    ibrt_rng_fill_normal(&r, y, N, 0, 1);
    void (*fwd[2])(size_t, const double *, double *) = { ibrt_op_diff, ibrt_op_cumsum };
    void (*adj[2])(size_t, const double *, double *) = { ibrt_op_diff_T, ibrt_op_cumsum_T };
    for (int k = 0; k < 2; k++) {
        fwd[k](N, x, ax);
        adj[k](N, y, aty);
        double l = dot(ax, y, N), rr = dot(x, aty, N);
        cr_assert_lt(fabs(l - rr), 1e-12 * (1 + fabs(l)), "operator %d: %.17g vs %.17g", k, l, rr);
    }
    /* diff_open: (n-1) x n */
    ibrt_op_diff_open(N, x, ax);
    ibrt_op_diff_open_T(N, y, aty);
    double l = dot(ax, y, N - 1), rr = dot(x, aty, N);
    cr_assert_lt(fabs(l - rr), 1e-12 * (1 + fabs(l)));
    cr_assert_eq(ax[3], x[4] - x[3]);
    double d[N];
    ibrt_rng_fill_normal(&r, d, N, 0, 1);
    ibrt_op_diag(N, d, x, ax);
    cr_assert_eq(ax[7], d[7] * x[7]);
}

Test(ops, dct_is_orthonormal)
{
    static double C[N * N];
    ibrt_op_dct_matrix(N, C);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double g = dot(C + i * N, C + j * N, N);
            cr_assert_lt(fabs(g - (i == j)), 1e-12, "C C'(%d,%d) = %.17g", i, j, g);
        }
    /* row 0 is constant 1/sqrt(n); row 1 is the half cosine */
    cr_assert_lt(fabs(C[3] - 1 / sqrt((double)N)), 1e-15);
    cr_assert_lt(fabs(C[N + 2] - sqrt(2.0 / N) * cos(3.14159265358979323846 * 2.5 / N)), 1e-15);
    double x[N], y[N], back[N];
    for (int i = 0; i < N; i++)
        x[i] = sin(i);
    ibrt_op_dct_apply(N, C, 0, x, y);
    ibrt_op_dct_apply(N, C, 1, y, back);
    for (int i = 0; i < N; i++)
        cr_assert_lt(fabs(back[i] - x[i]), 1e-13);
}

/* Issue 19: the entries are accurate to the last bits at any size (the
 * argument reduced in integers): against the cosine in long double (of
 * the argument reduced the same way, an identity), at n = 1000, where
 * the cosine of the unreduced argument (up to pi n) was off by 3e-14. */
Test(ops, dct_entries_accurate_at_large_n)
{
    enum { M = 1000 };
    static double C[M * M];
    ibrt_op_dct_matrix(M, C);
    const long double pi = 3.141592653589793238462643383279502884L;
    double worst = 0;
    for (long k = 0; k < M; k++)
        for (long i = 0; i < M; i++) {
            long double want = sqrtl((k ? 2.0L : 1.0L) / M) * cosl(pi * (long double)((2 * i + 1) * k % (4 * M)) / (2.0L * M));
            worst = fmax(worst, (double)fabsl((long double)C[k * M + i] - want));
        }
    /* the rounding of pi and of the argument (< 2 pi) costs up to ~1e-15 in
     * the argument, times c_k = 0.045: 1e-16 bounds it; unreduced: 3e-14 */
    cr_assert_lt(worst, 1e-16, "largest error of an entry %.3g (entries are at most %.3g)", worst, sqrt(2.0 / M));
}
