/*
 * verify.c: the thin-shell test of the stationary law (docs/theory.md §7; the
 * derivation of the predicted density is in ibrt_verify.h) and the
 * Kolmogorov-Smirnov machinery it needs.
 */
#include "ibrt_verify.h"

#include "ibrt_rng.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* F at x by linear interpolation on the grid. */
static double grid_cdf(double x, const double *xs, const double *F, size_t m, size_t *hint)
{
    if (x <= xs[0])
        return 0;
    if (x >= xs[m - 1])
        return 1;
    size_t i = *hint;
    while (i + 1 < m && xs[i + 1] < x)
        i++;
    *hint = i;
    double t = (x - xs[i]) / (xs[i + 1] - xs[i]);
    return F[i] + t * (F[i + 1] - F[i]);
}

double ibrt_ks_distance(const double *sorted, size_t n, const double *xs, const double *F, size_t m)
{
    double D = 0;
    size_t hint = 0;
    for (size_t i = 0; i < n; i++) {
        double c = grid_cdf(sorted[i], xs, F, m, &hint);
        double lo = c - (double)i / (double)n, hi = (double)(i + 1) / (double)n - c;
        D = fmax(D, fmax(lo, hi));
    }
    return D;
}

double ibrt_ks_pvalue(double D, size_t n)
{
    double sn = sqrt((double)n), lambda = (sn + 0.12 + 0.11 / sn) * D;
    if (lambda < 1e-3)
        return 1;
    double p = 0, sign = 1;
    for (int j = 1; j <= 200; j++) {
        double term = sign * exp(-2.0 * j * j * lambda * lambda);
        p += term;
        if (fabs(term) < 1e-300)
            break;
        sign = -sign;
    }
    p *= 2;
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

/* CDF on a grid of the density exp(-beta L(theta)) * w(theta), theta > 0,
 * where w is asinh(eps/theta) raised to the power `power` (1 predicted, 0
 * no det G factor, -1 inverted).  Trapezoid rule on a grid refined near 0,
 * where asinh(eps/theta) has its integrable logarithmic singularity. */
static void density_cdf(const ibrt_stationary_cfg *c, int power, double *xs, double *F, size_t m, double hi)
{
    double prev = 0;
    for (size_t i = 0; i < m; i++) {
        double t = (double)i / (double)(m - 1);
        xs[i] = hi * t * t;   /* quadratic spacing: dense near 0 */
        double th = xs[i] > 0 ? xs[i] : 1e-300;
        double L = 0.5 * c->beta_d * (th - c->theta_star) * (th - c->theta_star);
        double w = power == 0 ? 1 : power > 0 ? asinh(c->eps / th) : 1 / asinh(c->eps / th);
        double f = exp(-c->beta * L) * w;
        if (i == 0 && power > 0)
            f = 0;   /* the singular endpoint: its mass is in the first panel's other end */
        F[i] = i ? F[i - 1] + 0.5 * (f + prev) * (xs[i] - xs[i - 1]) : 0;
        prev = f;
    }
    for (size_t i = 0; i < m; i++)
        F[i] /= F[m - 1];
}

ibrt_status ibrt_ks_test(const double *samples, size_t n, ibrt_cdf_fn cdf, void *ctx, double *D, double *p,
                         ibrt_error *err)
{
    if (n == 0) {
        snprintf(err->msg, sizeof err->msg, "KS test: no samples");
        return IBRT_EVALUE;
    }
    double *x = malloc(n * sizeof *x);
    if (!x) {
        snprintf(err->msg, sizeof err->msg, "KS test: out of memory for %zu samples", n);
        return IBRT_ENOMEM;
    }
    memcpy(x, samples, n * sizeof *x);
    qsort(x, n, sizeof *x, cmp_d);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double c = cdf(x[i], ctx);
        d = fmax(d, fmax(c - (double)i / (double)n, (double)(i + 1) / (double)n - c));
    }
    free(x);
    *D = d;
    *p = ibrt_ks_pvalue(d, n);
    return IBRT_OK;
}

ibrt_status ibrt_grid_cdf_build(ibrt_grid_cdf *g, double (*density)(double x, void *ctx), void *ctx, double lo,
                                double hi, size_t m, ibrt_error *err)
{
    memset(g, 0, sizeof *g);
    if (!(lo < hi) || !isfinite(lo) || !isfinite(hi) || m < 2) {
        snprintf(err->msg, sizeof err->msg, "grid CDF: need lo < hi (finite) and m >= 2, got [%g, %g], m = %zu", lo,
                 hi, m);
        return IBRT_EVALUE;
    }
    g->xs = malloc(m * sizeof *g->xs);
    g->F = malloc(m * sizeof *g->F);
    if (!g->xs || !g->F) {
        ibrt_grid_cdf_free(g);
        snprintf(err->msg, sizeof err->msg, "grid CDF: out of memory for %zu nodes", m);
        return IBRT_ENOMEM;
    }
    g->m = m;
    double prev = 0;
    for (size_t i = 0; i < m; i++) {
        double t = (double)i / (double)(m - 1);
        g->xs[i] = i + 1 == m ? hi : lo + (hi - lo) * t * t;
        double f = density(g->xs[i], ctx);
        if (!isfinite(f) && i == 0)
            f = 0;   /* an integrable singularity at lo: see ibrt_verify.h */
        if (!(f >= 0) || !isfinite(f)) {
            snprintf(err->msg, sizeof err->msg, "grid CDF: density(%g) = %g, expected finite and >= 0", g->xs[i], f);
            ibrt_grid_cdf_free(g);
            return IBRT_EVALUE;
        }
        g->F[i] = i ? g->F[i - 1] + 0.5 * (f + prev) * (g->xs[i] - g->xs[i - 1]) : 0;
        prev = f;
    }
    double total = g->F[m - 1];
    if (!(total > 0)) {
        snprintf(err->msg, sizeof err->msg, "grid CDF: the density integrates to %g on [%g, %g]", total, lo, hi);
        ibrt_grid_cdf_free(g);
        return IBRT_EVALUE;
    }
    for (size_t i = 0; i < m; i++)
        g->F[i] /= total;
    return IBRT_OK;
}

double ibrt_grid_cdf_eval(double x, void *grid)
{
    const ibrt_grid_cdf *g = grid;
    if (!(x > g->xs[0]))
        return 0;
    if (x >= g->xs[g->m - 1])
        return 1;
    /* bisection: the last node <= x */
    size_t lo = 0, hi = g->m - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->xs[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    double t = (x - g->xs[lo]) / (g->xs[hi] - g->xs[lo]);
    return g->F[lo] + t * (g->F[hi] - g->F[lo]);
}

void ibrt_grid_cdf_free(ibrt_grid_cdf *g)
{
    free(g->xs);
    free(g->F);
    memset(g, 0, sizeof *g);
}

ibrt_status ibrt_stationary_uv(const ibrt_stationary_cfg *cfg, ibrt_stationary_result *res, ibrt_error *err)
{
    if (cfg->chains < 2 || cfg->steps < 1 || !(cfg->beta > 0) || !(cfg->beta_d > 0) || !(cfg->theta_star > 0) ||
        !(cfg->eps > 0) || !(cfg->step > 0) || !isfinite(cfg->beta * cfg->beta_d * cfg->theta_star * cfg->eps *
                                                         cfg->step)) {
        snprintf(err->msg, sizeof err->msg, "stationary test: need chains >= 2, steps >= 1 and beta, beta_d, "
                 "theta*, eps, step finite and > 0 (got %zu chains, %zu steps, beta %g, beta_d %g, theta* %g, eps %g, "
                 "step %g)", cfg->chains, cfg->steps, cfg->beta, cfg->beta_d, cfg->theta_star, cfg->eps, cfg->step);
        return IBRT_EVALUE;
    }
    double t0 = ibrt_time_now();
    size_t n = cfg->chains, m = 400001;
    double *theta = malloc(n * sizeof *theta), *xs = malloc(m * sizeof *xs), *F = malloc(m * sizeof *F);
    if (!theta || !xs || !F) {
        free(theta);
        free(xs);
        free(F);
        snprintf(err->msg, sizeof err->msg, "out of memory for %zu chains", n);
        return IBRT_ENOMEM;
    }
    ibrt_rng r;
    ibrt_rng_seed(&r, cfg->seed);
    size_t accepted = 0;
    double s0 = sqrt(cfg->theta_star);
    const ibrt_zig *zg = ibrt_rng_zig();   /* the draws inline: 3.2e8 normals at toy_uv's 40 000 chains x 4000 steps */
    for (size_t ch = 0; ch < n; ch++) {
        double u = s0, v = s0;   /* chi = 0, theta = theta*: inside the shell */
        double L = 0.5 * cfg->beta_d * (u * v - cfg->theta_star) * (u * v - cfg->theta_star);
        for (size_t k = 0; k < cfg->steps; k++) {
            double nu = u + cfg->step * ibrt_rng_normal_inline(&r, zg), nv = v + cfg->step * ibrt_rng_normal_inline(&r, zg);
            if (nu <= 0 || nv <= 0 || fabs(0.5 * (nu * nu - nv * nv)) >= cfg->eps)
                continue;   /* outside the shell: the target is 0 there */
            double nL = 0.5 * cfg->beta_d * (nu * nv - cfg->theta_star) * (nu * nv - cfg->theta_star);
            if (nL <= L || ibrt_rng_uniform_inline(&r) < exp(-cfg->beta * (nL - L))) {
                u = nu;
                v = nv;
                L = nL;
                accepted++;
            }
        }
        theta[ch] = u * v;
    }
    qsort(theta, n, sizeof *theta, cmp_d);
    double hi = fmax(theta[n - 1], cfg->theta_star) * 1.5 + 10 / sqrt(cfg->beta * cfg->beta_d);
    density_cdf(cfg, 1, xs, F, m, hi);
    res->ks_pred = ibrt_ks_distance(theta, n, xs, F, m);
    density_cdf(cfg, 0, xs, F, m, hi);
    res->ks_nodet = ibrt_ks_distance(theta, n, xs, F, m);
    density_cdf(cfg, -1, xs, F, m, hi);
    res->ks_flip = ibrt_ks_distance(theta, n, xs, F, m);
    res->p_pred = ibrt_ks_pvalue(res->ks_pred, n);
    res->p_nodet = ibrt_ks_pvalue(res->ks_nodet, n);
    res->p_flip = ibrt_ks_pvalue(res->ks_flip, n);
    res->acceptance = (double)accepted / ((double)n * (double)cfg->steps);
    res->pass = res->p_pred > 0.01 && res->p_nodet < 1e-6 && res->p_flip < 1e-6;
    res->seconds = ibrt_time_now() - t0;
    free(theta);
    free(xs);
    free(F);
    return IBRT_OK;
}

/* ------------------------------------------------------ GL junctions */

static double leg_at(const double *th, const ibrt_gl_leg *x, long l, long o)
{
    return th[x->off + l * x->ls + o * x->os];
}

bool ibrt_gl_transform(const double *th, double *th2, long nth, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r,
                       ibrt_rng *rng)
{
    memcpy(th2, th, sizeof(double) * (size_t)nth);
    double *g = malloc(sizeof(double) * (size_t)(r * r)), *gi = malloc(sizeof(double) * (size_t)(r * r));
    lapack_int *piv = malloc(sizeof(lapack_int) * (size_t)r);
    bool ok = g && gi && piv;
    for (long i = 0; ok && i < r; i++)
        for (long j = 0; j < r; j++)
            g[i * r + j] = gi[i * r + j] = (i == j) + 0.3 * (ibrt_rng_uniform(rng) - 0.5);
    ok = ok && LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (lapack_int)r, (lapack_int)r, gi, (lapack_int)r, piv) == 0 &&
         LAPACKE_dgetri(LAPACK_ROW_MAJOR, (lapack_int)r, gi, (lapack_int)r, piv) == 0;
    /* A(l, o) <- sum_i A(i, o) g[i][l];  B(l, o) <- sum_j gi[l][j] B(j, o) */
    for (long o = 0; ok && o < a->other; o++)
        for (long l = 0; l < r; l++) {
            double v = 0;
            for (long i = 0; i < r; i++)
                v += leg_at(th, a, i, o) * g[i * r + l];
            th2[a->off + l * a->ls + o * a->os] = v;
        }
    for (long o = 0; ok && o < b->other; o++)
        for (long l = 0; l < r; l++) {
            double v = 0;
            for (long j = 0; j < r; j++)
                v += gi[l * r + j] * leg_at(th, b, j, o);
            th2[b->off + l * b->ls + o * b->os] = v;
        }
    free(g);
    free(gi);
    free(piv);
    return ok;
}

void ibrt_gl_gens(const double *th, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r, long nth, double *xi)
{
    for (long i = 0; i < r; i++)
        for (long j = 0; j < r; j++) {
            double *row = xi + (i * r + j) * nth;
            /* (A E_ij)(o, l) = A(o, i) d_jl */
            for (long o = 0; o < a->other; o++)
                row[a->off + j * a->ls + o * a->os] += leg_at(th, a, i, o);
            /* -(E_ij B)(l, o) = -d_il B(j, o) */
            for (long o = 0; o < b->other; o++)
                row[b->off + i * b->ls + o * b->os] -= leg_at(th, b, j, o);
        }
}

double ibrt_gl_logdet_error(const double *th, const ibrt_gl_leg *a, const ibrt_gl_leg *b, long r)
{
    long n = r * r;
    double *P = malloc(sizeof(double) * (size_t)n), *Q = malloc(sizeof(double) * (size_t)n);
    double *G = malloc(sizeof(double) * (size_t)(n * n)), *ev = malloc(sizeof(double) * (size_t)(2 * r));
    double err = INFINITY;
    if (!P || !Q || !G || !ev)
        goto out;
    for (long i = 0; i < r; i++)
        for (long k = 0; k < r; k++) {
            double p = 0, q = 0;
            for (long o = 0; o < a->other; o++)
                p += leg_at(th, a, i, o) * leg_at(th, a, k, o);
            for (long o = 0; o < b->other; o++)
                q += leg_at(th, b, i, o) * leg_at(th, b, k, o);
            P[i * r + k] = p;
            Q[i * r + k] = q;
        }
    for (long i = 0; i < r; i++)
        for (long j = 0; j < r; j++)
            for (long k = 0; k < r; k++)
                for (long l = 0; l < r; l++)
                    G[(i * r + j) * n + k * r + l] = (j == l) * P[i * r + k] + (i == k) * Q[j * r + l];
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, G, (lapack_int)n) != 0 ||
        LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)r, P, (lapack_int)r, ev) != 0 ||
        LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)r, Q, (lapack_int)r, ev + r) != 0)
        goto out;
    double ld = 0, lf = 0;
    for (long e = 0; e < n; e++)
        ld += 2 * log(G[e * n + e]);
    for (long i = 0; i < r; i++)
        for (long j = 0; j < r; j++)
            lf += log(ev[i] + ev[r + j]);
    err = fabs(ld - lf) / fmax(1, fabs(lf));
out:
    free(P);
    free(Q);
    free(G);
    free(ev);
    return err;
}
