/* test_rt_verify.c: the thin-shell test of the stationary law accepts the
 * predicted density and rejects the two wrong ones; the KS p-value. */
#include <criterion/criterion.h>
#include <math.h>

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
    /* theory.md §7 at beta = 20, eps = 0.02, with fewer chains than a
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
