/*
 * ibrt_verify.h: goodness of fit for the stationary-law test (docs/theory.md
 * §7), complementing ibrt_stationary_uv, ibrt_ks_distance and
 * ibrt_ks_pvalue of ibrt.h.
 *
 * Kolmogorov-Smirnov: D = sup_x |F_n(x) - F(x)| over the empirical CDF
 * F_n, computed at the order statistics as max_i max(F(x_(i)) - (i-1)/n,
 * i/n - F(x_(i))).  The p-value is the asymptotic Kolmogorov tail
 * Q(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2) evaluated at
 * Stephens' corrected lambda = (sqrt(n) + 0.12 + 0.11/sqrt(n)) D
 * (Stephens 1970; Numerical Recipes 14.3), accurate to a few per cent
 * for n >= 35 and better as n grows.
 *
 * Densities with no closed-form CDF (exp(-beta L) asinh(eps/theta)) are
 * integrated on a grid: nodes x_i = lo + (hi - lo) (i/(m-1))^2, dense near
 * lo where the shell factor has its integrable logarithmic singularity;
 * trapezoid rule, normalised so F(hi) = 1; linear interpolation between
 * nodes, F = 0 below lo and 1 above hi.  A non-finite density value at a
 * node (the singular endpoint) counts as 0; the mass lost is that of the
 * first panel, O(h log h) with h = (hi - lo)/(m-1)^2.
 *
 * Derivation of the predicted density (the shell-volume factor).  Take
 * u, v > 0, theta = u v, chi = (u^2 - v^2)/2.  The Jacobian of
 * (u, v) -> (theta, chi) is |det [[v, u], [u, -v]]| = u^2 + v^2, and
 * (u^2 + v^2)^2 = (u^2 - v^2)^2 + 4 u^2 v^2 = 4 (chi^2 + theta^2), so
 *     du dv = dtheta dchi / (2 sqrt(theta^2 + chi^2)),
 * the map being a bijection of the open quadrant onto theta > 0.  The Gibbs
 * law exp(-beta L(u v)) du dv restricted to |chi| < eps has theta-marginal
 *     p(theta) ~ exp(-beta L(theta)) * int_{-eps}^{eps} dchi / (2 sqrt(theta^2 + chi^2))
 *              = exp(-beta L(theta)) * asinh(eps / theta),
 * which tends to exp(-beta L) * eps / theta, the det G^(-1/2) = 1 / (2 theta)
 * factor on the slice chi = 0 (det G = u^2 + v^2 = 2 theta there), as
 * eps / theta -> 0.  The two wrong alternatives: no factor, exp(-beta L),
 * and the factor inverted, exp(-beta L) / asinh(eps / theta).  Checked
 * numerically by test_rt_verify.c (both regimes, eps << theta and theta
 * reaching 0).
 */
#ifndef IBRT_VERIFY_H
#define IBRT_VERIFY_H

#include "ibrt.h"

typedef double (*ibrt_cdf_fn)(double x, void *ctx);

/* D and its p-value for samples (any order; copied and sorted). */
ibrt_status ibrt_ks_test(const double *samples, size_t n, ibrt_cdf_fn cdf, void *ctx, double *D, double *p,
                         ibrt_error *err);

typedef struct {
    size_t m;          /* nodes (>= 2) */
    /* xs: the nodes, lo + (hi - lo) t^2 for t = i / (m - 1) (denser near lo); F: the CDF there, by the
     * trapezoid rule, F[0] = 0, F[m - 1] = 1.  Both malloc'd (ibrt_grid_cdf_free) */
    double *xs, *F;
} ibrt_grid_cdf;

/* Needs lo < hi, m >= 2 and a density that is >= 0, finite (except at lo)
 * and not identically 0 on [lo, hi]; IBRT_EVALUE otherwise. */
ibrt_status ibrt_grid_cdf_build(ibrt_grid_cdf *g, double (*density)(double x, void *ctx), void *ctx, double lo,
                                double hi, size_t m, ibrt_error *err);
double ibrt_grid_cdf_eval(double x, void *grid);   /* an ibrt_cdf_fn with ctx = the ibrt_grid_cdf */
void ibrt_grid_cdf_free(ibrt_grid_cdf *g);

/* A GL(r) junction Z = A B (docs/theory.md §8) as trainers check it: each
 * factor's entry with contracted index l and other index o is
 * th[off + l * ls + o * os], o < other (a column index of a row-major
 * A, ls 1 and os its column count; a row index, ls the column count and
 * os 1; a vector, ls 1, os 0, other 1). */
typedef struct {
    long off, ls, os, other;
} ibrt_gl_leg;

/* th2 = th (nth entries) with A -> A g and B -> g^-1 B, for g = I + M,
 * M_ij ~ U(-0.15, 0.15) from rng (near I, so exp of some M in gl(r)), the
 * inverse by LU; false when g is singular (then th2 is th). */
bool ibrt_gl_transform(const double *th, double *th2, long nth, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r,
                       ibrt_rng *rng);

/* The r^2 generator vectors of the junction's gl(r) at th, as rows of
 * xi (r^2 rows of nth entries, row i r + j for the elementary matrix
 * E_ij; the caller zeroes xi): xi_E = (A E, -E B), so row (i, j) holds
 * A's index-i leg at index j and minus B's index-j leg at index i.  Their
 * Gram matrix is G[(i,j),(k,l)] = d_jl P_ik + d_ik Q_jl (below). */
void ibrt_gl_gens(const double *th, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r, long nth, double *xi);

/* |log det G - sum_{i,j} log(p_i + q_j)| / max(1, |sum ...|): G the
 * r^2 x r^2 Gram matrix of the gl(r) generators, assembled entry by entry
 * as G[(i,j),(k,l)] = d_jl P_ik + d_ik Q_jl (P, Q the Gram matrices of
 * the legs, P_ik = sum_o A(i, o) A(k, o)), its log det by Cholesky; p, q
 * the eigenvalues of P and Q (LAPACKE dsyev): the Kronecker-sum
 * determinant of docs/theory.md §8.  INFINITY when a factorisation fails. */
double ibrt_gl_logdet_error(const double *th, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r);

#endif
