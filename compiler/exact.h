/*
 * exact.h: the exact linear algebra of the derivation (GMP rationals and
 * integers), apart from what it is used for.
 *
 * qmat: a dense rational matrix, reduced row echelon form in place;
 * nullspace: a basis of the rational nullspace of an integer system,
 * each vector scaled to primitive integers.  zmat: a dense integer matrix;
 * exact_lattice_kernel: a basis of the integer lattice {x : E x = 0} by
 * unimodular column operations; exact_lattice_hnf: its Hermite normal form over
 * a given order of the unknowns, so that it depends only on the lattice.
 * exact_literal: the exact rational of a numeric literal's text.
 * Nothing here allocates outside the matrices it is given (or the arena,
 * for nullspace's output); every result is exact.
 */
#ifndef IBC_EXACT_H
#define IBC_EXACT_H

#include "ibc.h"

#include <gmp.h>

typedef struct {
    int rows, cols;   /* the shape, fixed at init (0 allowed) */
    mpq_t *a;         /* row-major, rows * cols; malloc'd and initialised by init, released by clear */
} qmat;

#define Q(m, i, j) ((m)->a[(size_t)(i) * (m)->cols + (j)])

void qmat_init(qmat *m, int rows, int cols);   /* every entry 0 */
void qmat_clear(qmat *m);
/* Reduced row echelon form in place; piv[r] the pivot column of row r.
 * Returns the rank. */
int qmat_rref(qmat *m, int *piv);
/* A basis of {x in Q^N : eq x = 0} (neq rows of N longs), each vector
 * scaled to coprime integers, as *out (arena-allocated, dim * N longs).
 * Returns the dimension. */
int exact_nullspace(ibc_arena *a, const long *eq, size_t neq, int N, long **out);

typedef struct {
    int rows, cols;   /* the shape, fixed at init (0 allowed) */
    mpz_t *a;         /* row-major, rows * cols; malloc'd and initialised by init, released by clear */
} zmat;

#define Z(m, i, j) ((m)->a[(size_t)(i) * (m)->cols + (j)])

void zmat_init(zmat *m, int rows, int cols);   /* every entry 0 */
void zmat_clear(zmat *m);
/* K: the rows are a basis of the lattice {x in Z^N : eq x = 0}. */
void exact_lattice_kernel(const long *eq, size_t neq, int N, zmat *K);
/* K's rows in Hermite normal form with the columns taken in the order
 * col[0], col[1], ... (the same lattice). */
void exact_lattice_hnf(zmat *K, const int *col);
/* The entries of K as longs; false when one does not fit. */
bool zmat_get_long(const zmat *K, long *out);

/* q = the exact rational of a numeric literal's text: "4/3", "1.5",
 * "15e-1" (a decimal is read digit by digit, never through a double, so
 * 1.5 is exactly 3/2); false when the text is not one. */
bool exact_literal(mpq_t q, const char *text);

/* det M of the n x n integer matrix M (row-major, n*n initialised mpz_t,
 * destroyed), exactly (Bareiss); det must be initialised.  n = 0 gives 1. */
void exact_zdet(mpz_t det, mpz_t *M, int n);

#endif
