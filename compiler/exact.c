/*
 * exact.c: exact linear algebra with GMP (exact.h): rational elimination
 * and the integer lattice of solutions of an integer system.
 */
#include "exact.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------ exact linear algebra (GMP) */


void qmat_init(qmat *m, int rows, int cols)
{
    m->rows = rows;
    m->cols = cols;
    m->a = malloc((size_t)(rows ? rows : 1) * (cols ? cols : 1) * sizeof(mpq_t));
    for (int i = 0; i < rows * cols; i++)
        mpq_init(m->a[i]);
}

void qmat_clear(qmat *m)
{
    for (int i = 0; i < m->rows * m->cols; i++)
        mpq_clear(m->a[i]);
    free(m->a);
}


/* Reduced row echelon form in place; pivot column of each row in piv.
 * Returns the rank. */
int qmat_rref(qmat *m, int *piv)
{
    int rank = 0;
    mpq_t f, t;
    mpq_inits(f, t, NULL);
    for (int c = 0; c < m->cols && rank < m->rows; c++) {
        int p = -1;
        for (int r = rank; r < m->rows; r++)
            if (mpq_sgn(Q(m, r, c))) {
                p = r;
                break;
            }
        if (p < 0)
            continue;
        for (int j = 0; j < m->cols; j++)
            mpq_swap(Q(m, p, j), Q(m, rank, j));
        mpq_inv(f, Q(m, rank, c));
        for (int j = 0; j < m->cols; j++)
            mpq_mul(Q(m, rank, j), Q(m, rank, j), f);
        for (int r = 0; r < m->rows; r++) {
            if (r == rank || !mpq_sgn(Q(m, r, c)))
                continue;
            mpq_set(f, Q(m, r, c));
            for (int j = 0; j < m->cols; j++) {
                mpq_mul(t, f, Q(m, rank, j));
                mpq_sub(Q(m, r, j), Q(m, r, j), t);
            }
        }
        piv[rank++] = c;
    }
    mpq_clears(f, t, NULL);
    return rank;
}

/* Primitive integer basis of the nullspace of eq (neq x N), in out
 * (dim x N longs, arena).  One vector per free variable: the RREF basis,
 * whose vectors have disjoint supports whenever the system splits. */
int exact_nullspace(ibc_arena *a, const long *eq, size_t neq, int N, long **out)
{
    qmat m;
    qmat_init(&m, (int)neq, N);
    for (size_t i = 0; i < neq; i++)
        for (int j = 0; j < N; j++)
            mpq_set_si(Q(&m, i, j), eq[i * N + j], 1);
    int *piv = malloc(sizeof(int) * (neq + 1));
    int rank = qmat_rref(&m, piv);
    bool *is_piv = calloc((size_t)N + 1, 1);
    for (int r = 0; r < rank; r++)
        is_piv[piv[r]] = true;
    int dim = N - rank;
    long *basis = arena_alloc(a, (size_t)(dim ? dim : 1) * N * sizeof(long));
    mpz_t l, g, v;
    mpz_inits(l, g, v, NULL);
    int b = 0;
    for (int f = 0; f < N; f++) {
        if (is_piv[f])
            continue;
        /* x_f = 1, x_piv[r] = -R[r][f]; scale by the lcm of denominators */
        mpz_set_ui(l, 1);
        for (int r = 0; r < rank; r++)
            mpz_lcm(l, l, mpq_denref(Q(&m, r, f)));
        long *vec = basis + (size_t)b * N;
        mpz_set_ui(g, 0);
        for (int j = 0; j < N; j++) {
            mpz_set_ui(v, 0);
            if (j == f)
                mpz_set(v, l);
            for (int r = 0; r < rank; r++)
                if (piv[r] == j) {
                    mpz_divexact(v, l, mpq_denref(Q(&m, r, f)));
                    mpz_mul(v, v, mpq_numref(Q(&m, r, f)));
                    mpz_neg(v, v);
                }
            vec[j] = mpz_get_si(v);
            mpz_gcd(g, g, v);
        }
        long gg = mpz_get_si(g);
        /* sign: first non-zero entry positive */
        int first = 0;
        while (first < N && vec[first] == 0)
            first++;
        if (first < N && vec[first] < 0)
            gg = -gg;
        for (int j = 0; j < N && gg; j++)
            vec[j] /= gg;
        b++;
    }
    mpz_clears(l, g, v, NULL);
    free(is_piv);
    free(piv);
    qmat_clear(&m);
    *out = basis;
    return dim;
}


/* ------------------------------------------- the lattice of symmetries */

/* The torus is the set of integer exponent vectors x with E x = 0 (a
 * lattice L), and its generators must be a basis of L: another full-rank
 * set of integer solutions (the rational nullspace scaled to integers)
 * spans a sublattice of index m > 1, which multiplies det G by m^2 and so
 * shifts the bias constant by log m, differently for each order of the
 * unknowns.  The basis is found in three exact steps (GMP integers):
 *
 *   1. unimodular column operations bring E to echelon form; the columns
 *      of the accumulated unimodular matrix past the rank are a basis of
 *      L (Cohen, A Course in Computational Algebraic Number Theory, §2.4.3);
 *   2. that basis is put in Hermite normal form over the unknowns in
 *      reverse canonical order, so it depends only on L: the canonical
 *      order ranks parameters by name, not by declaration, and reversing
 *      it makes the HNF equal the familiar nullspace basis (one generator
 *      per free unknown, 1 there, 0 at the other free unknowns) whenever
 *      that basis is integral;
 *   3. where the HNF rows are not rescalings of whole slices (a deep chain:
 *      a middle factor's rows and columns scale with two different
 *      hidden layers), the basis is re-expressed in the coordinates of d
 *      unknowns whose exponent forms are a unimodular basis of the dual
 *      (those of the largest slices first): each new generator is 1 on one
 *      of them and 0 on the others, which picks the natural generators
 *      (one hidden unit's rescaling) when they exist.  The result is
 *      verified (integral, unimodular, every row a slice rescaling);
 *      otherwise the derivation stops with an error instead of using a
 *      basis that is not one. */


void zmat_init(zmat *m, int rows, int cols)
{
    m->rows = rows;
    m->cols = cols;
    m->a = malloc((size_t)(rows ? rows : 1) * (size_t)(cols ? cols : 1) * sizeof(mpz_t));
    for (int i = 0; i < rows * cols; i++)
        mpz_init(m->a[i]);
}

void zmat_clear(zmat *m)
{
    for (int i = 0; i < m->rows * m->cols; i++)
        mpz_clear(m->a[i]);
    free(m->a);
}


/* column j -= q column i, in E and U (both with N columns) */
static void zcol_submul(zmat *E, zmat *U, int j, int i, const mpz_t q)
{
    for (int r = 0; r < E->rows; r++)
        mpz_submul(Z(E, r, j), q, Z(E, r, i));
    for (int r = 0; r < U->rows; r++)
        mpz_submul(Z(U, r, j), q, Z(U, r, i));
}

static void zcol_swap(zmat *m, int i, int j)
{
    for (int r = 0; r < m->rows; r++)
        mpz_swap(Z(m, r, i), Z(m, r, j));
}

/* row i -= q row j of m */
static void zrow_submul(zmat *m, int i, int j, const mpz_t q)
{
    for (int c = 0; c < m->cols; c++)
        mpz_submul(Z(m, i, c), q, Z(m, j, c));
}

static void zrow_swap(zmat *m, int i, int j)
{
    for (int c = 0; c < m->cols; c++)
        mpz_swap(Z(m, i, c), Z(m, j, c));
}

/* Step 1: a basis of {x in Z^N : E x = 0} as the rows of K (d x N). */
void exact_lattice_kernel(const long *eq, size_t neq, int N, zmat *K)
{
    zmat E, U;
    zmat_init(&E, (int)neq, N);
    zmat_init(&U, N, N);
    for (size_t i = 0; i < neq; i++)
        for (int j = 0; j < N; j++)
            mpz_set_si(Z(&E, i, j), eq[i * (size_t)N + j]);
    for (int j = 0; j < N; j++)
        mpz_set_ui(Z(&U, j, j), 1);
    mpz_t q;
    mpz_init(q);
    int piv = 0;
    for (int r = 0; r < E.rows && piv < N; r++) {
        for (;;) {   /* Euclid across the row: leave one non-zero entry at or past piv */
            int best = -1;
            for (int c = piv; c < N; c++)
                if (mpz_sgn(Z(&E, r, c)) && (best < 0 || mpz_cmpabs(Z(&E, r, c), Z(&E, r, best)) < 0))
                    best = c;
            if (best < 0)
                break;
            bool more = false;
            for (int c = piv; c < N; c++) {
                if (c == best || !mpz_sgn(Z(&E, r, c)))
                    continue;
                mpz_fdiv_q(q, Z(&E, r, c), Z(&E, r, best));
                zcol_submul(&E, &U, c, best, q);
                more = more || mpz_sgn(Z(&E, r, c));
            }
            if (!more) {
                zcol_swap(&E, piv, best);
                zcol_swap(&U, piv, best);
                piv++;
                break;
            }
        }
    }
    zmat_init(K, N - piv, N);
    for (int b = 0; b < N - piv; b++)
        for (int j = 0; j < N; j++)
            mpz_set(Z(K, b, j), Z(&U, j, piv + b));
    mpz_clear(q);
    zmat_clear(&E);
    zmat_clear(&U);
}

/* Step 2: Hermite normal form of the rows of K, taking the columns in the
 * order col[0], col[1], ...: pivots positive, entries above a pivot reduced
 * into [0, pivot).  Unique for the lattice the rows span. */
void exact_lattice_hnf(zmat *K, const int *col)
{
    mpz_t q;
    mpz_init(q);
    int row = 0;
    for (int t = 0; t < K->cols && row < K->rows; t++) {
        int c = col[t];
        for (;;) {
            int best = -1;
            for (int i = row; i < K->rows; i++)
                if (mpz_sgn(Z(K, i, c)) && (best < 0 || mpz_cmpabs(Z(K, i, c), Z(K, best, c)) < 0))
                    best = i;
            if (best < 0)
                break;
            bool more = false;
            for (int i = row; i < K->rows; i++) {
                if (i == best || !mpz_sgn(Z(K, i, c)))
                    continue;
                mpz_fdiv_q(q, Z(K, i, c), Z(K, best, c));
                zrow_submul(K, i, best, q);
                more = more || mpz_sgn(Z(K, i, c));
            }
            if (!more) {
                zrow_swap(K, row, best);
                break;
            }
        }
        if (row < K->rows && mpz_sgn(Z(K, row, c))) {
            if (mpz_sgn(Z(K, row, c)) < 0)
                for (int j = 0; j < K->cols; j++)
                    mpz_neg(Z(K, row, j), Z(K, row, j));
            for (int i = 0; i < row; i++) {
                mpz_fdiv_q(q, Z(K, i, c), Z(K, row, c));
                zrow_submul(K, i, row, q);
            }
            row++;
        }
    }
    mpz_clear(q);
}

/* The rows of K as longs (false when an entry does not fit). */
bool zmat_get_long(const zmat *K, long *out)
{
    for (int i = 0; i < K->rows * K->cols; i++) {
        if (!mpz_fits_slong_p(K->a[i]))
            return false;
        out[i] = mpz_get_si(K->a[i]);
    }
    return true;
}

/* ------------------------------------------------------------ literals */

/* The exact rational of a literal: "4/3", "1.5", "15e-1" (a decimal is
 * read digit by digit, never through a double, so 1.5 is exactly 3/2). */
bool exact_literal(mpq_t q, const char *text)
{
    const char *slash = strchr(text, '/');
    if (slash) {
        /* both halves are literals ("4/3", "1.5/1") */
        char head[64];
        size_t len = (size_t)(slash - text);
        if (len >= sizeof head || strchr(slash + 1, '/'))
            return false;
        memcpy(head, text, len);
        head[len] = '\0';
        mpq_t d;
        mpq_init(d);
        bool ok = exact_literal(q, head) && exact_literal(d, slash + 1) && mpq_sgn(d) != 0;
        if (ok)
            mpq_div(q, q, d);
        mpq_clear(d);
        return ok;
    }
    mpz_t num, den;
    mpz_inits(num, den, NULL);
    mpz_set_ui(den, 1);
    const char *p = text;
    bool neg = *p == '-', digits = false, ok = true;
    if (*p == '-' || *p == '+')
        p++;
    for (; *p >= '0' && *p <= '9'; p++, digits = true) {
        mpz_mul_ui(num, num, 10);
        mpz_add_ui(num, num, (unsigned long)(*p - '0'));
    }
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
            mpz_mul_ui(num, num, 10);
            mpz_add_ui(num, num, (unsigned long)(*p - '0'));
            mpz_mul_ui(den, den, 10);
        }
    if (digits && (*p == 'e' || *p == 'E')) {
        char *end;
        long e = strtol(p + 1, &end, 10);
        ok = end != p + 1 && e > -400 && e < 400;
        p = end;
        if (ok) {
            mpz_t t;
            mpz_init(t);
            mpz_ui_pow_ui(t, 10, (unsigned long)labs(e));
            if (e >= 0)
                mpz_mul(num, num, t);
            else
                mpz_mul(den, den, t);
            mpz_clear(t);
        }
    }
    ok = ok && digits && *p == '\0';
    if (ok) {
        if (neg)
            mpz_neg(num, num);
        mpq_set_num(q, num);
        mpq_set_den(q, den);
        mpq_canonicalize(q);
    }
    mpz_clears(num, den, NULL);
    return ok;
}

/* Bareiss fraction-free elimination: every intermediate value is a minor
 * of M, so the division is exact. */
void exact_zdet(mpz_t det, mpz_t *M, int n)
{
    mpz_t prev, t;
    mpz_inits(prev, t, NULL);
    mpz_set_ui(prev, 1);
    int sign = 1;
    mpz_set_ui(det, n == 0);
    for (int k = 0; k < n; k++) {
        int p = k;
        while (p < n && !mpz_sgn(M[p * n + k]))
            p++;
        if (p == n) {
            mpz_set_ui(det, 0);
            mpz_clears(prev, t, NULL);
            return;
        }
        if (p != k) {
            for (int j = 0; j < n; j++)
                mpz_swap(M[p * n + j], M[k * n + j]);
            sign = -sign;
        }
        for (int i = k + 1; i < n; i++) {
            for (int j = k + 1; j < n; j++) {
                mpz_mul(t, M[i * n + j], M[k * n + k]);
                mpz_submul(t, M[i * n + k], M[k * n + j]);
                mpz_divexact(M[i * n + j], t, prev);
            }
        }
        mpz_set(prev, M[k * n + k]);
        mpz_set(det, M[k * n + k]);
    }
    if (sign < 0)
        mpz_neg(det, det);
    mpz_clears(prev, t, NULL);
}
