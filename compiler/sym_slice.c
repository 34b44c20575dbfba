/*
 * sym_slice.c: whether the dual slice chi = 0 of a torus family is the
 * minimiser of log det G on its orbit (docs/theory.md §4, "(a) and (b)
 * coincide ..."), decided exactly for closed-form and numeric minima alike
 * (sym_slice_is_minimiser, sym_impl.h).
 *
 * Its place in the derivation: sym_minimise (sym_gp.c) finds the dual
 * slice and the orbit minimum of each family (sym.c's) and asks this file
 * whether the two agree; sym_print.c prints the answer ("the two agree" /
 * "the two differ").
 *
 * Approach: the gradient of log det G along the orbit, restricted to the
 * slice, expanded as a polynomial with rational coefficients (GMP) and
 * compared with 0 coefficient by coefficient.
 */
#include "sym.h"
#include "sym_impl.h"

#include <gmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------ is the slice the minimiser? */

/* A polynomial in at most SYM_MAX_BLOCKS variables with rational
 * coefficients, as a list of (exponent vector, coefficient). */
typedef struct {
    int nvar, n, cap;                     /* variables used, terms held, terms allocated */
    unsigned char (*e)[SYM_MAX_BLOCKS];   /* cap: each term's exponents (malloc'd, qpoly_clear frees) */
    mpq_t *c;                             /* cap: each term's coefficient, the first n initialised (malloc'd) */
} qpoly;

static void qpoly_init(qpoly *q, int nvar)
{
    memset(q, 0, sizeof *q);
    q->nvar = nvar;
}

static void qpoly_clear(qpoly *q)
{
    for (int i = 0; i < q->n; i++)
        mpq_clear(q->c[i]);
    free(q->e);
    free(q->c);
}

/* q += c * x^e */
static void qpoly_add(qpoly *q, const unsigned char *e, const mpq_t c)
{
    for (int i = 0; i < q->n; i++)
        if (!memcmp(q->e[i], e, SYM_MAX_BLOCKS)) {
            mpq_add(q->c[i], q->c[i], c);
            return;
        }
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->e = realloc(q->e, (size_t)q->cap * sizeof *q->e);
        q->c = realloc(q->c, (size_t)q->cap * sizeof *q->c);
        if (!q->e || !q->c) {
            fprintf(stderr, "ibc: out of memory\n");
            exit(70);
        }
    }
    memcpy(q->e[q->n], e, SYM_MAX_BLOCKS);
    mpq_init(q->c[q->n]);
    mpq_set(q->c[q->n], c);
    q->n++;
}

/* q *= sum_j l[j] x_j (a linear form) */
static void qpoly_mul_linear(qpoly *q, const long *l)
{
    qpoly r;
    qpoly_init(&r, q->nvar);
    mpq_t t, lj;
    mpq_inits(t, lj, NULL);
    for (int i = 0; i < q->n; i++)
        for (int j = 0; j < q->nvar; j++) {
            if (!l[j])
                continue;
            unsigned char e[SYM_MAX_BLOCKS];
            memcpy(e, q->e[i], SYM_MAX_BLOCKS);
            e[j]++;
            mpq_set_si(lj, l[j], 1);
            mpq_mul(t, q->c[i], lj);
            qpoly_add(&r, e, t);
        }
    mpq_clears(t, lj, NULL);
    qpoly_clear(q);
    *q = r;
}

static bool qpoly_zero(const qpoly *q)
{
    for (int i = 0; i < q->n; i++)
        if (mpq_sgn(q->c[i]))
            return false;
    return true;
}

/* Exactly: is every point of the dual slice chi = 0 a stationary point of
 * log det G along its orbit?  The gradient of log det G(t) at t = 0 is
 * sum_S c_S n_S e_S / det G; on the slice n = N y (N a basis of the
 * nullspace of alpha, nd columns) its numerator is a polynomial in y of
 * degree k for each of the k components, expanded here and compared with
 * 0 coefficient by coefficient.  (The slice's positive part is open in
 * that subspace when it has a point with every block non-zero, so an
 * identity there is an identity everywhere.)  This decides agreement
 * for every family, closed form or not: u v + v w (minimum 2 |v|
 * sqrt(u^2 + w^2), on chi = 0) agrees, u^2 v does not. */
bool sym_slice_is_minimiser(const sym_family *f, const long *ns, int nd)
{
    int k = f->k, P = f->nblocks;
    bool zero = true;
    for (int a = 0; a < k && zero; a++) {
        qpoly F;
        qpoly_init(&F, nd);
        for (int s = 0; s < f->nterms; s++) {
            long w = 0;   /* (e_S)_a / 2 = sum_{p in S} alpha_ap */
            for (int p = 0; p < P; p++)
                if (f->term_set[s] & (1u << p))
                    w += f->alpha[a][p];
            if (!w)
                continue;
            qpoly t;
            qpoly_init(&t, nd);
            unsigned char e0[SYM_MAX_BLOCKS] = { 0 };
            mpq_t c;
            mpq_init(c);
            mpq_set_si(c, f->term_coef[s], 1);   /* c_S w, exactly (their product may exceed a long) */
            mpz_mul_si(mpq_numref(c), mpq_numref(c), w);
            qpoly_add(&t, e0, c);
            for (int p = 0; p < P; p++)
                if (f->term_set[s] & (1u << p)) {
                    long l[SYM_MAX_BLOCKS] = { 0 };
                    for (int j = 0; j < nd; j++)
                        l[j] = ns[(size_t)j * P + p];
                    qpoly_mul_linear(&t, l);
                }
            for (int i = 0; i < t.n; i++)
                qpoly_add(&F, t.e[i], t.c[i]);
            mpq_clear(c);
            qpoly_clear(&t);
        }
        zero = qpoly_zero(&F);
        qpoly_clear(&F);
    }
    return zero;
}
