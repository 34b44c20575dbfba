/* test_rt_verify.c: the thin-shell test of the stationary law accepts the
 * predicted density and rejects the two wrong ones; the KS p-value. */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "ibrt.h"

Test(verify, ks_pvalue_known_values)
{
    /* Kolmogorov distribution: P(K > 1.358) = 0.05, P(K > 1.628) = 0.01 */
    size_t n = 1000000;   /* large n: the correction is negligible */
    cr_assert_float_eq(ibrt_ks_pvalue(1.358 / sqrt((double)n), n), 0.05, 2e-3);
    cr_assert_float_eq(ibrt_ks_pvalue(1.628 / sqrt((double)n), n), 0.01, 5e-4);
    cr_assert_float_eq(ibrt_ks_pvalue(0, n), 1.0, 1e-12);
}

Test(verify, stationary_law_thin_shell, .timeout = 60)
{
    /* docs/theory.md §7 at beta = 20, eps = 0.02, with fewer chains than a
     * trainer uses (10000 x 2000 steps, about 1 s) */
    ibrt_stationary_cfg c = { .beta = 20, .beta_d = 2, .theta_star = 1, .eps = 0.02, .chains = 10000, .steps = 2000,
                              .step = 0.02, .seed = 3 };
    ibrt_stationary_result r;
    ibrt_error e;
    cr_assert_eq(ibrt_stationary_uv(&c, &r, &e), IBRT_OK);
    cr_assert_gt(r.p_pred, 0.01, "predicted density rejected: D %g p %g", r.ks_pred, r.p_pred);
    cr_assert_lt(r.p_nodet, 1e-6, "no-det alternative not rejected: D %g p %g", r.ks_nodet, r.p_nodet);
    cr_assert_lt(r.p_flip, 1e-6, "flipped alternative not rejected: D %g p %g", r.ks_flip, r.p_flip);
    cr_assert(r.pass);
}

/* ---- ibrt_verify.h: KS with a CDF callback, grid CDFs, both regimes */
#include "ibrt_rng.h"
#include "ibrt_verify.h"

static double unif_cdf(double x, void *ctx)
{
    (void)ctx;
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

static double sq_cdf(double x, void *ctx)   /* law of max(U1, U2) */
{
    (void)ctx;
    return x < 0 ? 0 : x > 1 ? 1 : x * x;
}

Test(verify, ks_test_accepts_truth_rejects_wrong_law)
{
    enum { N = 20000 };
    static double u[N];
    ibrt_rng r;
    ibrt_rng_seed(&r, 17);
    for (int i = 0; i < N; i++)
        u[i] = ibrt_rng_uniform(&r);
    double D, p;
    ibrt_error e;
    cr_assert_eq(ibrt_ks_test(u, N, unif_cdf, NULL, &D, &p, &e), IBRT_OK);
    cr_assert_gt(p, 1e-3, "D %g p %g", D, p);
    cr_assert_lt(D, 1.95 / sqrt((double)N));   /* the 0.001 critical value */
    cr_assert_eq(ibrt_ks_test(u, N, sq_cdf, NULL, &D, &p, &e), IBRT_OK);
    cr_assert_lt(p, 1e-12, "D %g p %g", D, p);
    cr_assert_lt(fabs(D - 0.25), 0.02, "sup |x - x^2| = 1/4: D %g", D);
    cr_assert_eq(ibrt_ks_test(u, 0, unif_cdf, NULL, &D, &p, &e), IBRT_EVALUE);
}

static double expo(double x, void *ctx)
{
    (void)ctx;
    return exp(-x);
}

static double log_sing(double x, void *ctx)   /* log(1/x) on (0, 1]: CDF x (1 - log x) */
{
    (void)ctx;
    return -log(x);
}

Test(verify, grid_cdf_matches_closed_forms)
{
    ibrt_grid_cdf g;
    ibrt_error e;
    cr_assert_eq(ibrt_grid_cdf_build(&g, expo, NULL, 0, 40, 200001, &e), IBRT_OK, "%s", e.msg);
    for (double x = 0.01; x < 10; x *= 1.7)
        cr_assert_lt(fabs(ibrt_grid_cdf_eval(x, &g) - (1 - exp(-x))), 1e-8, "x %g", x);
    cr_assert_eq(ibrt_grid_cdf_eval(-1, &g), 0);
    cr_assert_eq(ibrt_grid_cdf_eval(41, &g), 1);
    ibrt_grid_cdf_free(&g);
    /* an integrable singularity at lo (infinite density there) */
    cr_assert_eq(ibrt_grid_cdf_build(&g, log_sing, NULL, 0, 1, 200001, &e), IBRT_OK, "%s", e.msg);
    for (double x = 1e-4; x < 1; x *= 3)
        cr_assert_lt(fabs(ibrt_grid_cdf_eval(x, &g) - x * (1 - log(x))), 1e-7, "x %g", x);
    ibrt_grid_cdf_free(&g);
    cr_assert_eq(ibrt_grid_cdf_build(&g, expo, NULL, 1, 1, 10, &e), IBRT_EVALUE);
    cr_assert_null(g.xs);
}

Test(verify, stationary_law_theta_reaching_zero, .timeout = 60)
{
    /* docs/theory.md §7's second regime, beta = 5, eps = 0.1: theta reaches 0 and
     * only the asinh form holds.  10000 chains x 2000 steps (about 1 s):
     * measured D 0.0057 (p 0.90) for the prediction, 0.16 and 0.28
     * (p < 1e-200) for the wrong ones. */
    ibrt_stationary_cfg c = { .beta = 5, .beta_d = 2, .theta_star = 1, .eps = 0.1, .chains = 10000, .steps = 2000,
                              .step = 0.05, .seed = 3 };
    ibrt_stationary_result r;
    ibrt_error e;
    cr_assert_eq(ibrt_stationary_uv(&c, &r, &e), IBRT_OK);
    cr_assert_gt(r.p_pred, 0.01, "predicted density rejected: D %g p %g", r.ks_pred, r.p_pred);
    cr_assert_lt(r.p_nodet, 1e-6, "D %g p %g", r.ks_nodet, r.p_nodet);
    cr_assert_lt(r.p_flip, 1e-6, "D %g p %g", r.ks_flip, r.p_flip);
    cr_assert(r.pass);
}

Test(verify, stationary_rejects_bad_configuration)
{
    ibrt_stationary_cfg c = { .beta = 5, .beta_d = 2, .theta_star = 1, .eps = 0, .chains = 100, .steps = 10,
                              .step = 0.05, .seed = 3 };
    ibrt_stationary_result r;
    ibrt_error e;
    cr_assert_eq(ibrt_stationary_uv(&c, &r, &e), IBRT_EVALUE);
    cr_assert(strstr(e.msg, "eps 0"), "%s", e.msg);
    c.eps = 0.1;
    c.chains = 0;
    cr_assert_eq(ibrt_stationary_uv(&c, &r, &e), IBRT_EVALUE);
}

/* GL(3) junction Z = A B, A 5 x 3 (its columns contracted), B 3 x 4 (its
 * rows), in one th[]: the transform keeps A B, and the Kronecker-sum log
 * det matches the Gram matrix of the 9 generator vectors xi_Eij =
 * (A Eij, -Eij B) built explicitly, entry by entry (an independent
 * assembly of the same matrix). */
Test(verify, gl_junction_transform_and_logdet)
{
    enum { M = 5, R = 3, N = 4, NTH = M * R + R * N };
    double th[NTH], th2[NTH];
    ibrt_rng rng;
    ibrt_rng_seed(&rng, 3);
    for (int e = 0; e < NTH; e++)
        th[e] = ibrt_rng_uniform(&rng) - 0.5;
    const ibrt_gl_leg a = { 0, 1, R, M }, b = { M * R, N, 1, N };
    cr_assert(ibrt_gl_transform(th, th2, NTH, &a, &b, R, &rng));
    double worst = 0, changed = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double z = 0, z2 = 0;
            for (int k = 0; k < R; k++) {
                z += th[i * R + k] * th[M * R + k * N + j];
                z2 += th2[i * R + k] * th2[M * R + k * N + j];
            }
            worst = fmax(worst, fabs(z2 - z));
        }
    for (int e = 0; e < NTH; e++)
        changed = fmax(changed, fabs(th2[e] - th[e]));
    cr_assert_lt(worst, 1e-14, "A g g^-1 B != A B: %g", worst);
    cr_assert_gt(changed, 1e-3, "the transform left th unchanged");
    /* explicit generators: xi_Eij has A Eij (column j of it is A's column
     * i) and -Eij B (row i of it is -B's row j) */
    double xi[R * R][NTH], G[R * R * R * R];
    memset(xi, 0, sizeof xi);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) {
            for (int o = 0; o < M; o++)
                xi[i * R + j][o * R + j] = th[o * R + i];
            for (int o = 0; o < N; o++)
                xi[i * R + j][M * R + i * N + o] = -th[M * R + j * N + o];
        }
    /* the runtime's generator rows (the driver's whole-group Gram) are
     * these, entry for entry */
    static double xg[R * R][NTH];
    memset(xg, 0, sizeof xg);
    ibrt_gl_gens(th, &a, &b, R, NTH, &xg[0][0]);
    for (int p = 0; p < R * R; p++)
        for (int e = 0; e < NTH; e++)
            cr_assert_eq(xg[p][e], xi[p][e], "generator %d, entry %d: %g, explicit %g", p, e, xg[p][e], xi[p][e]);
    for (int p = 0; p < R * R; p++)
        for (int q = 0; q < R * R; q++) {
            double s = 0;
            for (int e = 0; e < NTH; e++)
                s += xi[p][e] * xi[q][e];
            G[p * R * R + q] = s;
        }
    cr_assert_eq(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', R * R, G, R * R), 0);
    double ld = 0;
    for (int p = 0; p < R * R; p++)
        ld += 2 * log(G[p * R * R + p]);
    /* the runtime's error of log det (Kronecker assembly) against the
     * formula is tiny, and so is the formula against the explicit Gram */
    cr_assert_lt(ibrt_gl_logdet_error(th, &a, &b, R), 1e-12);
    double P[R * R], Q[R * R], ev[2 * R], lf = 0;
    for (int i = 0; i < R; i++)
        for (int k = 0; k < R; k++) {
            P[i * R + k] = Q[i * R + k] = 0;
            for (int o = 0; o < M; o++)
                P[i * R + k] += th[o * R + i] * th[o * R + k];
            for (int o = 0; o < N; o++)
                Q[i * R + k] += th[M * R + i * N + o] * th[M * R + k * N + o];
        }
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', R, P, R, ev), 0);
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', R, Q, R, ev + R), 0);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++)
            lf += log(ev[i] + ev[R + j]);
    cr_assert_lt(fabs(ld - lf) / fmax(1, fabs(lf)), 1e-12, "explicit %.17g, Kronecker sum %.17g", ld, lf);
}
