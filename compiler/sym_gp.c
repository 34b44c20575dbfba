/*
 * sym_gp.c: for each family of the torus (sym_impl.h), det G by
 * Cauchy-Binet with exact integer coefficients (docs/theory.md §2), the
 * orbit minimum of log det G as a geometric programme (§4): closed form at
 * degree of difficulty 0 or when terms share their orbit exponents,
 * existence decided exactly (a linear programme over the rationals),
 * numeric Newton otherwise, labelled so; the dual-slice balance and the
 * bias.  Whether the slice is the minimiser (decided exactly) is
 * sym_slice.c's.
 */
#include "sym.h"
#include "exact.h"
#include "sym_impl.h"

#include <gmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ Cauchy-Binet */

_Static_assert(SYM_MAX_BLOCKS < 32, "term_set holds a block set in the bits of an unsigned");

/* det m (k x k) squared into *sq, exactly (exact_zdet: GMP integers, as
 * the intermediate values, products of two minors, can exceed a long for
 * k up to SYM_MAX_GEN).  Returns false when the square does not fit a
 * long (*sq is then unset); a singular m gives *sq = 0. */
static bool det_small_sq(long m[SYM_MAX_GEN][SYM_MAX_GEN], int k, long *sq)
{
    mpz_t a[SYM_MAX_GEN * SYM_MAX_GEN], d;
    mpz_init(d);
    for (int r = 0; r < k; r++)
        for (int j = 0; j < k; j++)
            mpz_init_set_si(a[r * k + j], m[r][j]);
    exact_zdet(d, a, k);
    mpz_mul(d, d, d);
    bool fits = mpz_fits_slong_p(d);
    if (fits)
        *sq = mpz_get_si(d);
    for (int e = 0; e < k * k; e++)
        mpz_clear(a[e]);
    mpz_clear(d);
    return fits;
}

bool sym_gram_terms(sym_family *f)
{
    f->nterms = 0;
    int P = f->nblocks, k = f->k;
    for (unsigned set = 0; set < (1u << P); set++) {
        if (__builtin_popcount(set) != k)
            continue;
        long m[SYM_MAX_GEN][SYM_MAX_GEN] = { { 0 } };
        int col = 0;
        for (int p = 0; p < P; p++)
            if (set & (1u << p)) {
                for (int a = 0; a < k; a++)
                    m[a][col] = f->alpha[a][p];
                col++;
            }
        long d2;
        if (!det_small_sq(m, k, &d2))
            return false;   /* a coefficient beyond a long: never a wrong det G */
        if (d2 != 0 && f->nterms == 64)
            return false;   /* more terms than term_set holds: never a truncated det G */
        if (d2 != 0) {
            f->term_set[f->nterms] = set;
            f->term_coef[f->nterms] = d2;
            f->nterms++;
        }
    }
    return f->nterms > 0;
}

double sym_logdet_eval(const sym_family *f, const double *n)
{
    double s = 0;
    for (int t = 0; t < f->nterms; t++) {
        double v = (double)f->term_coef[t];
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                v *= n[p];
        s += v;
    }
    return log(s);
}

/* e_S = 2 sum_{p in S} alpha_p: how term S grows along the orbit. */
static void term_exponent(const sym_family *f, int t, long *e)
{
    for (int a = 0; a < f->k; a++) {
        e[a] = 0;
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                e[a] += 2 * f->alpha[a][p];
    }
}

/* log sum_s exp(logc_s + e_s . t), stably. */
static double lse_eval(int T, int k, const double *logc, double e[][SYM_MAX_GEN], const double *t, double *w)
{
    double z[64], mx = -INFINITY, sum = 0;
    for (int s = 0; s < T; s++) {
        z[s] = logc[s];
        for (int a = 0; a < k; a++)
            z[s] += e[s][a] * t[a];
        if (z[s] > mx)
            mx = z[s];
    }
    for (int s = 0; s < T; s++)
        sum += exp(z[s] - mx);
    if (w)
        for (int s = 0; s < T; s++)
            w[s] = exp(z[s] - mx) / sum;
    return mx + log(sum);
}

/* Damped Newton's method on the convex f(t) = log sum_S c_S n_S
 * exp(e_S . t) (backtracking line search: Boyd & Vandenberghe §9.5). */
bool sym_logdet_min_numeric(const sym_family *f, const double *n, double *out)
{
    int k = f->k, T = f->nterms;
    double t[SYM_MAX_GEN] = { 0 }, logc[64], e[64][SYM_MAX_GEN], w[64];
    for (int s = 0; s < T; s++) {
        long ei[SYM_MAX_GEN];
        term_exponent(f, s, ei);
        logc[s] = log((double)f->term_coef[s]);
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[s] & (1u << p))
                logc[s] += log(n[p]);
        for (int a = 0; a < k; a++)
            e[s][a] = (double)ei[a];
    }
    double val = lse_eval(T, k, logc, e, t, w);
    for (int it = 0; it < 500; it++) {
        double g[SYM_MAX_GEN] = { 0 }, A[SYM_MAX_GEN][SYM_MAX_GEN + 1];
        for (int s = 0; s < T; s++)
            for (int a = 0; a < k; a++)
                g[a] += w[s] * e[s][a];
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++) {
                double h = 0;
                for (int s = 0; s < T; s++)
                    h += w[s] * e[s][a] * e[s][b];
                A[a][b] = h - g[a] * g[b] + (a == b ? 1e-14 : 0);
            }
            A[a][k] = -g[a];
        }
        /* Gauss-Jordan with partial pivoting: A becomes diagonal. */
        for (int c = 0; c < k; c++) {
            int p = c;
            for (int r = c + 1; r < k; r++)
                if (fabs(A[r][c]) > fabs(A[p][c]))
                    p = r;
            for (int j = 0; j <= k; j++) {
                double tmp = A[c][j];
                A[c][j] = A[p][j];
                A[p][j] = tmp;
            }
            if (A[c][c] == 0)
                continue;
            for (int r = 0; r < k; r++)
                if (r != c) {
                    double m = A[r][c] / A[c][c];
                    for (int j = c; j <= k; j++)
                        A[r][j] -= m * A[c][j];
                }
        }
        double d[SYM_MAX_GEN], dec = 0;
        for (int a = 0; a < k; a++) {
            d[a] = A[a][a] != 0 ? A[a][k] / A[a][a] : 0;
            dec -= g[a] * d[a];   /* Newton decrement squared */
        }
        if (dec < 1e-20)
            break;
        double step = 1, tn[SYM_MAX_GEN], nv = val;
        for (int ls = 0; ls < 60; ls++, step *= 0.5) {
            for (int a = 0; a < k; a++)
                tn[a] = t[a] + step * d[a];
            nv = lse_eval(T, k, logc, e, tn, NULL);
            if (nv <= val - 0.25 * step * dec)
                break;
        }
        memcpy(t, tn, sizeof(double) * (size_t)k);
        val = lse_eval(T, k, logc, e, t, w);
        double norm = 0;
        for (int a = 0; a < k; a++)
            norm += t[a] * t[a];
        if (norm > 1e8)
            return false;   /* running off along the orbit: no minimiser */
    }
    /* A minimiser is a stationary point; otherwise f decreases forever. */
    double gn = 0;
    for (int a = 0; a < k; a++) {
        double g = 0;
        for (int s = 0; s < T; s++)
            g += w[s] * e[s][a];
        gn += g * g;
    }
    if (gn > 1e-12)
        return false;
    *out = val;
    return true;
}

/* ----------------------------------------------- geometric programme */

const char *sym_block_norm2(ibc_arena *a, const sym_family *f, int p)
{
    const sym_block *b = &f->blocks[p];
    if ((b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY) && !b->set_name)
        return arena_printf(a, "%s^2", b->text);
    return arena_printf(a, "||%s||^2", b->text);
}

const char *sym_block_abs(ibc_arena *a, const sym_family *f, int p)
{
    const sym_block *b = &f->blocks[p];
    if ((b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY) && !b->set_name)
        return arena_printf(a, "|%s|", b->text);
    return arena_printf(a, "||%s||", b->text);
}

static const char *q_str(ibc_arena *a, const mpq_t q)
{
    char *s = mpq_get_str(NULL, 10, q);
    const char *r = arena_strndup(a, s, strlen(s));
    void (*freefn)(void *, size_t);
    mp_get_memory_functions(NULL, NULL, &freefn);
    freefn(s, strlen(s) + 1);
    return r;
}

/* Adds q * log(r) to the prime exponents (r a positive rational); false
 * when r has a prime factor beyond primes[np - 1] (then the exponents
 * miss it: the caller must not state the constant). */
static bool add_log(mpq_t *pexp, const unsigned long *primes, int np, const mpq_t q, const mpq_t r)
{
    mpz_t num, den;
    mpz_inits(num, den, NULL);
    mpz_set(num, mpq_numref(r));
    mpz_set(den, mpq_denref(r));
    mpq_t t;
    mpq_init(t);
    for (int i = 0; i < np; i++) {
        long c = 0;
        while (mpz_divisible_ui_p(num, primes[i])) {
            mpz_divexact_ui(num, num, primes[i]);
            c++;
        }
        while (mpz_divisible_ui_p(den, primes[i])) {
            mpz_divexact_ui(den, den, primes[i]);
            c--;
        }
        mpq_set_si(t, c, 1);
        mpq_mul(t, t, q);
        mpq_add(pexp[i], pexp[i], t);
    }
    bool whole = mpz_cmp_ui(num, 1) == 0 && mpz_cmp_ui(den, 1) == 0;
    mpq_clear(t);
    mpz_clears(num, den, NULL);
    return whole;
}

#define UNFACTORED "the constant has a prime factor above 47, beyond the primes it is written over"

const unsigned long sym_primes[SYM_NPRIMES] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47 };

/* *r = q when its numerator and denominator fit in a long; false (and
 * r->den = 0, no value) otherwise. */
static bool rat_set(sym_rat *r, const mpq_t q)
{
    if (!mpz_fits_slong_p(mpq_numref(q)) || !mpz_fits_slong_p(mpq_denref(q))) {
        *r = (sym_rat){ 0, 0 };
        return false;
    }
    *r = (sym_rat){ mpz_get_si(mpq_numref(q)), mpz_get_si(mpq_denref(q)) };
    return true;
}

const char *sym_rat_text(ibc_arena *a, sym_rat r)
{
    return r.den == 1 ? arena_printf(a, "%ld", r.num) : arena_printf(a, "%ld/%ld", r.num, r.den);
}

/* The number inside the constant's log from prime exponents: "3", "3/2"
 * or "2^(1/2)*3"; NULL when every exponent is 0 (the constant is 0). */
static const char *prime_power_text(ibc_arena *a, mpq_t *pexp, const unsigned long *primes, int np)
{
    bool integral = true, any = false;
    for (int i = 0; i < np; i++) {
        if (mpq_sgn(pexp[i]))
            any = true;
        if (mpz_cmp_ui(mpq_denref(pexp[i]), 1) != 0)
            integral = false;
    }
    if (!any)
        return NULL;
    if (integral) {
        mpq_t v;
        mpq_init(v);
        mpq_set_ui(v, 1, 1);
        for (int i = 0; i < np; i++) {
            long e = mpz_get_si(mpq_numref(pexp[i]));
            mpz_t pw;
            mpz_init(pw);
            mpz_ui_pow_ui(pw, primes[i], (unsigned long)labs(e));
            if (e > 0)
                mpz_mul(mpq_numref(v), mpq_numref(v), pw);
            else if (e < 0)
                mpz_mul(mpq_denref(v), mpq_denref(v), pw);
            mpz_clear(pw);
        }
        mpq_canonicalize(v);
        const char *s = q_str(a, v);
        mpq_clear(v);
        return s;
    }
    char *s = "";
    bool first = true;
    for (int i = 0; i < np; i++) {
        if (!mpq_sgn(pexp[i]))
            continue;
        s = mpq_cmp_ui(pexp[i], 1, 1) == 0 ? arena_printf(a, "%s%s%lu", s, first ? "" : "*", primes[i])
                                           : arena_printf(a, "%s%s%lu^(%s)", s, first ? "" : "*", primes[i], q_str(a, pexp[i]));
        first = false;
    }
    return s;
}

/* The family's constant from prime exponents over sym_primes: its value
 * (const_exp) and its text, "log(3)", "log(3/2)", "log(2^(1/2)*3)" or "0";
 * returns the number inside the log (NULL for 0), the factor exp(constant)
 * of the minimum's text. */
static const char *set_constant(ibc_arena *a, sym_family *f, mpq_t *pexp)
{
    for (int i = 0; i < SYM_NPRIMES; i++)
        rat_set(&f->const_exp[i], pexp[i]);
    const char *inner = prime_power_text(a, pexp, sym_primes, SYM_NPRIMES);
    f->constant = inner ? arena_printf(a, "log(%s)", inner) : "0";
    return inner;
}

/* Ratio text of positive rationals r over blocks: "u^2/v^2 = 8" or
 * "u^2 : v^2 : w^2 = 1 : 1 : 1". */
static const char *ratio_text(ibc_arena *a, const sym_family *f, mpq_t *r)
{
    if (f->nblocks == 2) {
        mpq_t q;
        mpq_init(q);
        mpq_div(q, r[0], r[1]);
        const char *s = arena_printf(a, "%s/%s = %s", sym_block_norm2(a, f, 0), sym_block_norm2(a, f, 1), q_str(a, q));
        mpq_clear(q);
        return s;
    }
    /* scale to coprime integers */
    mpz_t l, g;
    mpz_inits(l, g, NULL);
    mpz_set_ui(l, 1);
    for (int p = 0; p < f->nblocks; p++)
        mpz_lcm(l, l, mpq_denref(r[p]));
    mpz_t *v = malloc(sizeof(mpz_t) * (size_t)f->nblocks);
    mpz_set_ui(g, 0);
    for (int p = 0; p < f->nblocks; p++) {
        mpz_init(v[p]);
        mpz_divexact(v[p], l, mpq_denref(r[p]));
        mpz_mul(v[p], v[p], mpq_numref(r[p]));
        mpz_gcd(g, g, v[p]);
    }
    char *lhs = "", *rhs = "";
    for (int p = 0; p < f->nblocks; p++) {
        mpz_divexact(v[p], v[p], g);
        lhs = arena_printf(a, "%s%s%s", lhs, p ? " : " : "", sym_block_norm2(a, f, p));
        rhs = arena_printf(a, "%s%s%ld", rhs, p ? " : " : "", mpz_get_si(v[p]));
        mpz_clear(v[p]);
    }
    free(v);
    mpz_clears(l, g, NULL);
    return arena_printf(a, "%s = %s", lhs, rhs);
}

/* Phase 1 of the simplex method in exact rationals: finds x >= 0 with
 * A x = b (A m x n, row-major longs) or reports that none exists.  Bland's
 * rule (smallest index enters and leaves) rules out cycling, so it ends.
 * On success x (n entries, initialised by the caller) holds a basic
 * feasible point. */
static bool lp_feasible(int m, int n, const long *A, const long *b, mpq_t *x)
{
    int W = n + m + 1;   /* columns: x, artificials, right-hand side */
    qmat t;
    qmat_init(&t, m + 1, W);   /* row m: reduced costs of sum(artificials) */
    int *basis = malloc(sizeof(int) * (size_t)(m ? m : 1));
    mpq_t f, q, best;
    mpq_inits(f, q, best, NULL);
    for (int i = 0; i < m; i++) {
        long sg = b[i] < 0 ? -1 : 1;
        for (int j = 0; j < n; j++)
            mpq_set_si(Q(&t, i, j), sg * A[(size_t)i * n + j], 1);
        mpq_set_ui(Q(&t, i, n + i), 1, 1);
        mpq_set_si(Q(&t, i, W - 1), sg * b[i], 1);
        basis[i] = n + i;
        for (int j = 0; j < n; j++)
            mpq_sub(Q(&t, m, j), Q(&t, m, j), Q(&t, i, j));
        mpq_sub(Q(&t, m, W - 1), Q(&t, m, W - 1), Q(&t, i, W - 1));
    }
    for (;;) {
        int e = -1;
        for (int j = 0; j < n + m && e < 0; j++)
            if (mpq_sgn(Q(&t, m, j)) < 0)
                e = j;
        if (e < 0)
            break;
        int r = -1;
        for (int i = 0; i < m; i++) {
            if (mpq_sgn(Q(&t, i, e)) <= 0)
                continue;
            mpq_div(q, Q(&t, i, W - 1), Q(&t, i, e));
            int c = r < 0 ? -1 : mpq_cmp(q, best);
            if (r < 0 || c < 0 || (c == 0 && basis[i] < basis[r])) {
                r = i;
                mpq_set(best, q);
            }
        }
        if (r < 0)
            break;   /* cannot happen: the phase-1 objective is bounded below by 0 */
        mpq_inv(f, Q(&t, r, e));
        for (int j = 0; j < W; j++)
            mpq_mul(Q(&t, r, j), Q(&t, r, j), f);
        for (int i = 0; i <= m; i++) {
            if (i == r || !mpq_sgn(Q(&t, i, e)))
                continue;
            mpq_set(f, Q(&t, i, e));
            for (int j = 0; j < W; j++) {
                mpq_mul(q, f, Q(&t, r, j));
                mpq_sub(Q(&t, i, j), Q(&t, i, j), q);
            }
        }
        basis[r] = e;
    }
    bool ok = mpq_sgn(Q(&t, m, W - 1)) == 0;
    if (ok) {
        for (int j = 0; j < n; j++)
            mpq_set_ui(x[j], 0, 1);
        for (int i = 0; i < m; i++)
            if (basis[i] < n)
                mpq_set(x[basis[i]], Q(&t, i, W - 1));
    }
    mpq_clears(f, q, best, NULL);
    free(basis);
    qmat_clear(&t);
    return ok;
}

/* Support of the cone {x >= 0 : M x = 0} (M rows x n): supp[j] is true
 * when some point of the cone has x_j > 0.  One feasibility problem per
 * index not yet covered, with the extra row x_j = 1.  Returns how many. */
static int cone_support(int rows, int n, const long *M, bool *supp)
{
    long *A = calloc((size_t)(rows + 1) * (size_t)n, sizeof(long));
    long *b = calloc((size_t)rows + 1, sizeof(long));
    mpq_t *x = malloc(sizeof(mpq_t) * (size_t)n);
    for (int j = 0; j < n; j++) {
        mpq_init(x[j]);
        supp[j] = false;
    }
    memcpy(A, M, sizeof(long) * (size_t)rows * (size_t)n);
    b[rows] = 1;
    int count = 0;
    for (int s = 0; s < n; s++) {
        if (supp[s])
            continue;
        for (int j = 0; j < n; j++)
            A[(size_t)rows * n + j] = j == s;
        if (!lp_feasible(rows + 1, n, A, b, x))
            continue;
        for (int j = 0; j < n; j++)
            if (mpq_sgn(x[j]) > 0 && !supp[j]) {
                supp[j] = true;
                count++;
            }
    }
    for (int j = 0; j < n; j++)
        mpq_clear(x[j]);
    free(x);
    free(b);
    free(A);
    return count;
}

/* Existence of the orbit minimum of log det G = log sum_S c_S n_S
 * exp(e_S . t) (docs/theory.md §4), exactly, by the theorems of the
 * alternative on the dual cone D = {delta >= 0 : sum_S delta_S e_S = 0}:
 * Gordan, D = {0} iff some direction makes every term decay (unbounded
 * below); Stiemke, D holds a point with every delta_S > 0 iff no direction
 * decreases some term without increasing another (attained).  Between the
 * two, the infimum is finite but approached only at infinity. */
static sym_min_kind orbit_existence(const sym_family *f)
{
    int k = f->k, T = f->nterms;
    long *M = calloc((size_t)k * (size_t)(T ? T : 1), sizeof(long));
    bool supp[64];
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        for (int a = 0; a < k; a++)
            M[(size_t)a * T + s] = e[a];
    }
    int c = cone_support(k, T, M, supp);
    free(M);
    return c == T ? SYM_MIN_ATTAINED : c == 0 ? SYM_MIN_UNBOUNDED : SYM_MIN_NOT_ATTAINED;
}

/* Terms whose exponents e_S are equal move together along the orbit, so
 * they are one term of the geometric programme, with a posynomial
 * coefficient C_g = sum_{S in g} c_S n_S (u v + v w: u^2 and w^2 both grow
 * as e^(2t)).  When the merged programme has degree of difficulty 0 and
 * one dual solution, the minimum is closed-form:
 * min log det G = sum_g delta_g log(C_g / delta_g).  Fills the family's
 * texts and returns true; false when it does not apply. */
static void set_numeric(ibc_arena *a, sym_family *f, const char *why);

static bool minimise_merged(ibc_arena *a, sym_family *f)
{
    int k = f->k, T = f->nterms;
    int grp[64], ng = 0;
    long ge[64][SYM_MAX_GEN];
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        grp[s] = -1;
        for (int g = 0; g < ng && grp[s] < 0; g++)
            if (!memcmp(ge[g], e, sizeof(long) * (size_t)k))
                grp[s] = g;
        if (grp[s] < 0) {
            memcpy(ge[ng], e, sizeof(long) * (size_t)k);
            grp[s] = ng++;
        }
    }
    if (ng == T || ng != k + 1)
        return false;
    qmat m;
    qmat_init(&m, k + 1, ng + 1);
    for (int g = 0; g < ng; g++) {
        for (int r = 0; r < k; r++)
            mpq_set_si(Q(&m, r, g), ge[g][r], 1);
        mpq_set_ui(Q(&m, k, g), 1, 1);
    }
    mpq_set_ui(Q(&m, k, ng), 1, 1);
    int piv[SYM_MAX_GEN + 2];
    bool ok = qmat_rref(&m, piv) == ng;
    for (int g = 0; g < ng && ok; g++)
        ok = piv[g] == g && mpq_sgn(Q(&m, g, ng)) > 0;
    if (!ok) {
        qmat_clear(&m);
        return false;
    }
    /* constant: sum_g delta_g log(1 / delta_g), plus delta_g log c_S for a
     * group of one term (a coefficient inside a sum stays there) */
    const unsigned long *primes = sym_primes;
    const int np = SYM_NPRIMES;
    mpq_t pexp[SYM_NPRIMES], r;
    mpq_init(r);
    for (int i = 0; i < np; i++)
        mpq_init(pexp[i]);
    char *inv = "";
    bool fits = true, factored = true;
    for (int g = 0; g < ng; g++) {
        const mpq_t *dg = &Q(&m, g, ng);
        int nin = 0, last = -1;
        for (int s = 0; s < T; s++)
            if (grp[s] == g) {
                nin++;
                last = s;
            }
        mpq_set_ui(r, 1, 1);
        if (nin == 1)
            mpq_set_si(r, f->term_coef[last], 1);
        mpq_div(r, r, *dg);
        factored = add_log(pexp, primes, np, *dg, r) && factored;
        char *poly = "";
        for (int s = 0; s < T; s++) {
            if (grp[s] != g)
                continue;
            char *mono = nin > 1 && f->term_coef[s] != 1 ? arena_printf(a, "%ld", f->term_coef[s]) : "";
            for (int p = 0; p < f->nblocks; p++)
                if (f->term_set[s] & (1u << p))
                    mono = arena_printf(a, "%s%s%s", mono, *mono ? " " : "", sym_block_norm2(a, f, p));
            poly = arena_printf(a, "%s%s%s", poly, *poly ? " + " : "", mono);
        }
        inv = arena_printf(a, "%s%s(%s)^(%s)", inv, *inv ? " " : "", poly, q_str(a, *dg));
        fits = rat_set(&f->delta[g], *dg) && fits;
    }
    f->ndelta = ng;
    for (int t = 0; t < T; t++)
        f->term_group[t] = grp[t];
    const char *factor = set_constant(a, f, pexp);
    f->coefficient = "1";
    f->coef = (sym_rat){ 1, 1 };
    f->invariant = inv;
    f->monomial = false;
    f->degree = 0;
    f->min_kind = SYM_MIN_ATTAINED;
    f->min_text = factor ? arena_printf(a, "%s %s", factor, inv) : inv;
    f->log_det_minimizer = arena_printf(a, "the terms of det G with equal orbit exponents merged (%d groups): each "
                                           "group's share of det G equals its dual weight", ng);
    for (int i = 0; i < np; i++)
        mpq_clear(pexp[i]);
    mpq_clear(r);
    qmat_clear(&m);
    if (!fits)
        set_numeric(a, f, "a dual weight does not fit a 64-bit integer");
    else if (!factored)
        set_numeric(a, f, UNFACTORED);
    return true;
}

/* No closed form: the orbit minimum numerically (Newton), labelled so,
 * with why (NULL: the degree of difficulty). */
static void set_numeric(ibc_arena *a, sym_family *f, const char *why)
{
    f->min_kind = SYM_MIN_NUMERIC;
    f->ndelta = 0;
    f->coef = (sym_rat){ 0, 0 };
    f->monomial = false;
    double unit[SYM_MAX_BLOCKS], v;
    for (int p = 0; p < f->nblocks; p++)
        unit[p] = 1;
    const char *cause = why ? why : arena_printf(a, "degree of difficulty %d", f->degree);
    if (sym_logdet_min_numeric(f, unit, &v))
        f->min_text = arena_printf(a, "no closed form (%s); numeric (Newton): min log det G "
                                      "= %.12g at unit block norms", cause, v);
    else
        f->min_text = arena_printf(a, "no closed form (%s); numeric (Newton): no minimiser "
                                      "found (log det G decreases without bound along the orbit)", cause);
    f->log_det_minimizer = "numeric";
    f->coefficient = "numeric";
    f->invariant = "numeric";
    f->constant = "numeric";
}

/* The dual slice chi_a = 1/2 sum_p alpha_ap n_p = 0, i.e. n in the
 * nullspace of alpha (with P = k + 1 blocks it is one ray): its text in
 * f->dual_slice.  eqs gets alpha (k x P, row-major; the caller's
 * SYM_MAX_GEN * SYM_MAX_BLOCKS longs), *ns the nullspace's basis (arena,
 * one row of P per dimension); returns its dimension. */
static int set_dual_slice(ibc_arena *a, sym_family *f, long *eqs, long **ns)
{
    int k = f->k, P = f->nblocks;
    for (int r = 0; r < k; r++)
        for (int p = 0; p < P; p++)
            eqs[r * P + p] = f->alpha[r][p];
    *ns = NULL;
    int nd = exact_nullspace(a, eqs, (size_t)k, P, ns);
    mpq_t slice_r[SYM_MAX_BLOCKS];
    bool slice_ok = nd == 1;
    for (int p = 0; p < P; p++) {
        mpq_init(slice_r[p]);
        if (slice_ok) {
            mpq_set_si(slice_r[p], (*ns)[p], 1);
            if ((*ns)[p] <= 0)
                slice_ok = false;
        }
    }
    if (slice_ok) {
        f->dual_slice = ratio_text(a, f, slice_r);
    } else {
        /* chi = 0 with n >= 0 is a cone; it is a balance only if some of
         * its points have every block non-zero. */
        bool supp[SYM_MAX_BLOCKS];
        bool positive = cone_support(k, P, eqs, supp) == P;
        f->dual_slice = !positive ? "chi = 0 has no point with every block non-zero"
                                  : arena_printf(a, "chi = 0 (a cone of dimension %d in the squared block norms)", nd);
    }
    for (int p = 0; p < P; p++)
        mpq_clear(slice_r[p]);
    return nd;
}

/* Whether the dual system (sum_S delta_S e_S = 0, sum_S delta_S = 1) has
 * exactly one solution: degree of difficulty 0 and the (k + 1) x T system
 * of full column rank.  Only then is the minimum closed-form. */
static bool dual_unique(const sym_family *f)
{
    int k = f->k, T = f->nterms;
    if (f->degree != 0)
        return false;
    qmat m0;
    qmat_init(&m0, k + 1, T);
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        for (int r = 0; r < k; r++)
            mpq_set_si(Q(&m0, r, s), e[r], 1);
        mpq_set_ui(Q(&m0, k, s), 1, 1);
    }
    int piv0[SYM_MAX_GEN + 2];
    bool unique = qmat_rref(&m0, piv0) == T;
    qmat_clear(&m0);
    return unique;
}

/* No unique dual solution: an attained minimum is the merged programme's
 * closed form when it applies, else numeric; otherwise the statement that
 * there is no minimiser (unbounded) or that it is not attained. */
static void minimise_not_unique(ibc_arena *a, sym_family *f)
{
    if (f->existence == SYM_MIN_ATTAINED) {
        if (!minimise_merged(a, f))
            set_numeric(a, f, NULL);
        return;
    }
    bool unb = f->existence == SYM_MIN_UNBOUNDED;
    f->min_kind = f->existence;
    f->min_text = unb ? "no minimiser: log det G is unbounded below along the orbit (no non-negative dual weights)"
                      : "infimum not attained (every feasible dual weight vector has a zero): the orbit minimum is "
                        "approached only at infinity";
    f->log_det_minimizer = unb ? "none (unbounded below)" : "none (infimum not attained)";
    f->coefficient = f->invariant = f->constant = "none";
    f->ndelta = 0;   /* printed as "-" per term */
}

/* The unique dual solution, sum_S delta_S e_S = 0, sum_S delta_S = 1, into
 * delta (T entries, initialised here; the caller clears them) and
 * f->delta, f->ndelta, f->term_group.  Returns true when every weight is
 * positive and fits a sym_rat (the closed form follows); otherwise states
 * the minimum (unbounded, not attained, or numeric) and returns false. */
static bool dual_weights(ibc_arena *a, sym_family *f, mpq_t *delta)
{
    int k = f->k, T = f->nterms;
    qmat m;
    qmat_init(&m, k + 1, T + 1);
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        for (int r = 0; r < k; r++)
            mpq_set_si(Q(&m, r, s), e[r], 1);
        mpq_set_ui(Q(&m, k, s), 1, 1);
    }
    mpq_set_ui(Q(&m, k, T), 1, 1);
    int piv[SYM_MAX_GEN + 2];
    int rank = qmat_rref(&m, piv);
    bool unbounded = false, zero = false, fits = true;
    for (int s = 0; s < T; s++) {
        mpq_init(delta[s]);
        for (int r = 0; r < rank; r++)
            if (piv[r] == s)
                mpq_set(delta[s], Q(&m, r, T));
        if (mpq_sgn(delta[s]) < 0)
            unbounded = true;
        if (mpq_sgn(delta[s]) == 0)
            zero = true;
        fits = rat_set(&f->delta[s], delta[s]) && fits;
    }
    f->ndelta = T;
    for (int t = 0; t < T; t++)
        f->term_group[t] = t;
    qmat_clear(&m);
    if (unbounded || zero) {
        f->min_kind = unbounded ? SYM_MIN_UNBOUNDED : SYM_MIN_NOT_ATTAINED;
        f->min_text = unbounded ? "no minimiser: log det G is unbounded below along the orbit (a dual weight is negative)"
                                : "infimum not attained (a dual weight is zero): the orbit minimum is approached only at infinity";
        f->log_det_minimizer = unbounded ? "none (unbounded below)" : "none (infimum not attained)";
        f->coefficient = f->invariant = f->constant = "none";
        return false;
    }
    if (!fits) {
        set_numeric(a, f, "a dual weight does not fit a 64-bit integer");
        return false;
    }
    return true;
}

/* Constant: sum_S delta_S log(c_S / delta_S), as prime exponents, into
 * f->constant and f->const_exp; returns the factor exp(constant) for the
 * minimum's text (the constant is an entropy plus logs of integers >= 1,
 * so not 0). */
static const char *gp_constant(ibc_arena *a, sym_family *f, mpq_t *delta, bool *factored)
{
    *factored = true;
    const unsigned long *primes = sym_primes;
    const int np = SYM_NPRIMES;
    mpq_t pexp[SYM_NPRIMES], r;
    mpq_init(r);
    for (int i = 0; i < np; i++)
        mpq_init(pexp[i]);
    for (int s = 0; s < f->nterms; s++) {
        mpq_set_si(r, f->term_coef[s], 1);
        mpq_div(r, r, delta[s]);
        *factored = add_log(pexp, primes, np, delta[s], r) && *factored;
    }
    const char *factor = set_constant(a, f, pexp);
    for (int i = 0; i < np; i++)
        mpq_clear(pexp[i]);
    mpq_clear(r);
    return factor;
}

/* Invariant: w_p = sum_{S contains p} delta_S; log det G_min = const +
 * sum_p w_p log n_p = const + sum_p 2 w_p log|theta_p|.  Writes 2w = c * m
 * with m a primitive positive integer vector: f->coefficient and coef (c),
 * inv_exp and invariant (m), monomial, and min_text (factor the
 * constant's exp). */
static void set_invariant(ibc_arena *a, sym_family *f, mpq_t *delta, const char *factor)
{
    int T = f->nterms, P = f->nblocks;
    mpq_t w[SYM_MAX_BLOCKS], c, r;
    mpq_inits(c, r, NULL);
    mpz_t gnum, lden;
    mpz_inits(gnum, lden, NULL);
    mpz_set_ui(gnum, 0);
    mpz_set_ui(lden, 1);
    for (int p = 0; p < P; p++) {
        mpq_init(w[p]);
        for (int s = 0; s < T; s++)
            if (f->term_set[s] & (1u << p))
                mpq_add(w[p], w[p], delta[s]);
        mpq_set_ui(r, 2, 1);
        mpq_mul(w[p], w[p], r);
        mpz_gcd(gnum, gnum, mpq_numref(w[p]));
        mpz_lcm(lden, lden, mpq_denref(w[p]));
    }
    mpq_set_num(c, gnum);
    mpq_set_den(c, lden);
    mpq_canonicalize(c);
    f->coefficient = q_str(a, c);
    rat_set(&f->coef, c);
    f->monomial = true;
    char *inv = "";
    for (int p = 0; p < P; p++) {
        mpq_div(r, w[p], c);
        long mp = mpz_get_si(mpq_numref(r));
        f->inv_exp[p] = mp;
        if (mp == 0)
            continue;
        inv = mp == 1 ? arena_printf(a, "%s%s%s", inv, *inv ? " " : "", sym_block_abs(a, f, p))
                      : arena_printf(a, "%s%s%s^%ld", inv, *inv ? " " : "", sym_block_abs(a, f, p), mp);
    }
    f->invariant = inv;
    bool one = mpq_cmp_ui(c, 1, 1) == 0;
    f->min_text = one ? arena_printf(a, "%s %s", factor, inv)
                      : arena_printf(a, "%s (%s)^(%s)", factor, inv, f->coefficient);
    for (int p = 0; p < P; p++)
        mpq_clear(w[p]);
    mpz_clears(gnum, lden, NULL);
    mpq_clears(c, r, NULL);
}

/* The minimiser, f->log_det_minimizer: at the optimum each term's share is
 * delta_S.  With P = k + 1 blocks each term omits one block q, so n_q is
 * proportional to c_S(-q) / delta_S(-q). */
static void set_minimiser(ibc_arena *a, sym_family *f, mpq_t *delta)
{
    int k = f->k, T = f->nterms, P = f->nblocks;
    if (P == k + 1 && T == P) {
        mpq_t rr[SYM_MAX_BLOCKS];
        for (int p = 0; p < P; p++) {
            mpq_init(rr[p]);
            unsigned want = ((1u << P) - 1) & ~(1u << p);
            for (int s = 0; s < T; s++)
                if (f->term_set[s] == want) {
                    mpq_set_si(rr[p], f->term_coef[s], 1);
                    mpq_div(rr[p], rr[p], delta[s]);
                }
        }
        f->log_det_minimizer = ratio_text(a, f, rr);
        for (int p = 0; p < P; p++)
            mpq_clear(rr[p]);
    } else {
        f->log_det_minimizer = "every term's share of det G equals its dual weight";
    }
}

void sym_minimise(ibc_arena *a, sym_family *f)
{
    int k = f->k, T = f->nterms, P = f->nblocks;
    f->degree = T - k - 1;
    f->agree = false;
    long *ns;
    long eqs[SYM_MAX_GEN * SYM_MAX_BLOCKS];
    int nd = set_dual_slice(a, f, eqs, &ns);
    f->existence = orbit_existence(f);
    {
        bool supp[SYM_MAX_BLOCKS];
        f->agree = f->existence == SYM_MIN_ATTAINED && nd > 0 && cone_support(k, P, eqs, supp) == P &&
                   sym_slice_is_minimiser(f, ns, nd);
    }
    /* Closed form only when the dual system has exactly one solution. */
    if (!dual_unique(f)) {
        minimise_not_unique(a, f);
        return;
    }
    mpq_t delta[64];
    if (dual_weights(a, f, delta)) {
        f->min_kind = SYM_MIN_ATTAINED;
        bool factored;
        const char *factor = gp_constant(a, f, delta, &factored);
        set_invariant(a, f, delta, factor);
        set_minimiser(a, f, delta);
        if (!factored)
            set_numeric(a, f, UNFACTORED);
    }
    for (int s = 0; s < T; s++)
        mpq_clear(delta[s]);
}

double sym_rat_double(sym_rat r)
{
    return r.den ? (double)r.num / (double)r.den : NAN;
}

void sym_balance_predictions(const sym_family *f, double *logdet_min, double *dual)
{
    double a0 = (double)f->alpha[0][0], a1 = (double)f->alpha[0][1], c[2] = { 0, 0 }, dl[2] = { 0, 0 };
    for (int t = 0; t < f->nterms && t < 2; t++) {
        int b = f->term_set[t] == 1u ? 0 : 1;
        c[b] = (double)f->term_coef[t];
        dl[b] = t < f->ndelta ? sym_rat_double(f->delta[t]) : NAN;
    }
    *logdet_min = f->min_kind == SYM_MIN_ATTAINED && f->nterms == 2 ? sqrt((c[1] / dl[1]) / (c[0] / dl[0])) : NAN;
    *dual = -a1 / a0 > 0 ? sqrt(-a1 / a0) : NAN;
}
