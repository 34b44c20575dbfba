/*
 * ibrt_mat.h: vectors, matrices and the few dense linear algebra routines
 * the trainers need (module prefixes ibrt_vec_, ibrt_mat_, ibrt_blas_,
 * ibrt_linalg_, ibrt_lu_).
 *
 * As in GSL, a vector knows its size, stride and whether it owns its data,
 * and a matrix (row-major) its rows, columns and row stride tda, so views
 * (a row, a column, a block, a wrapper around a static buffer) are plain
 * structs that cost nothing and are never freed.  Every BLAS/LAPACKE call
 * is preceded by a dimension check that names the operands and their
 * shapes: a mismatch returns IBRT_ESHAPE instead of letting BLAS read out
 * of bounds.  Views, element access and the BLAS wrappers never allocate,
 * so they may be used in a training step; *_alloc, ibrt_lu_factor and
 * ibrt_linalg_logdet_chol allocate and belong in set-up.
 */
#ifndef IBRT_MAT_H
#define IBRT_MAT_H

#include "ibrt.h"

typedef struct {
    size_t size, stride;  /* elements; element i is data[i * stride] */
    double *data;         /* NULL after a failed alloc or a free */
    int owner;            /* 1: ibrt_vec_free releases data */
} ibrt_vec;

typedef struct {
    size_t rows, cols, tda;   /* element (i, j) is data[i * tda + j] */
    double *data;             /* row-major; NULL after a failed alloc or a free */
    int owner;                /* 1: ibrt_mat_free releases data (0: a view) */
} ibrt_mat;

/* Zero-filled; on failure *v is left empty (size 0, data NULL). */
ibrt_status ibrt_vec_alloc(ibrt_vec *v, size_t n, ibrt_error *err);
void ibrt_vec_free(ibrt_vec *v);   /* releases data only if owner; safe on an empty vec */
ibrt_vec ibrt_vec_view(double *data, size_t n);
ibrt_vec ibrt_vec_view_stride(double *data, size_t n, size_t stride);

ibrt_status ibrt_mat_alloc(ibrt_mat *m, size_t rows, size_t cols, ibrt_error *err);
void ibrt_mat_free(ibrt_mat *m);
ibrt_mat ibrt_mat_view(double *data, size_t rows, size_t cols);
ibrt_vec ibrt_mat_row(const ibrt_mat *m, size_t i);   /* i < rows (checked by assert) */
ibrt_vec ibrt_mat_col(const ibrt_mat *m, size_t j);   /* j < cols, stride tda */
/* The r x c block whose top-left element is (i, j); must fit in m. */
ibrt_mat ibrt_mat_submatrix(const ibrt_mat *m, size_t i, size_t j, size_t r, size_t c);

static inline double *ibrt_vec_ptr(const ibrt_vec *v, size_t i) { return v->data + i * v->stride; }
static inline double *ibrt_mat_ptr(const ibrt_mat *m, size_t i, size_t j) { return m->data + i * m->tda + j; }

/* y = alpha op(A) x + beta y, op(A) = A or A' (trans != 0): cblas_dgemv. */
ibrt_status ibrt_blas_gemv(int trans, double alpha, const ibrt_mat *A, const ibrt_vec *x, double beta, ibrt_vec *y,
                           ibrt_error *err);
/* C = alpha op(A) op(B) + beta C: cblas_dgemm. */
ibrt_status ibrt_blas_gemm(int transA, int transB, double alpha, const ibrt_mat *A, const ibrt_mat *B, double beta,
                           ibrt_mat *C, ibrt_error *err);
/* x . y: cblas_ddot. */
ibrt_status ibrt_blas_dot(const ibrt_vec *x, const ibrt_vec *y, double *out, ibrt_error *err);

/* log det G of a symmetric positive definite n x n matrix (row-major, only
 * the lower triangle is read): Cholesky G = L L' (LAPACKE_dpotrf), then
 * log det G = 2 sum_i log L_ii, which cannot overflow where det G itself
 * would.  *status is IBRT_OK, IBRT_EVALUE when G is not positive definite
 * (the leading minor of that order is not positive) or IBRT_ENOMEM; the
 * result is then NaN.  The _inplace variant overwrites G with L and does
 * not allocate. */
double ibrt_linalg_logdet_chol(size_t n, const double *G, int *status);
double ibrt_linalg_logdet_chol_inplace(size_t n, double *G, int *status);

/* LU factorisation of a square operator, computed once (LAPACKE_dgetrf
 * with partial pivoting) and reused for every solve (LAPACKE_dgetrs).
 * rcond is the reciprocal 1-norm condition number estimated by
 * LAPACKE_dgecon from the 1-norm of A kept at factorisation time: a solve
 * loses about log10(1/rcond) digits. */
typedef struct {
    size_t n;        /* A is n x n */
    double *lu;      /* n x n, row-major L\U factors */
    int *ipiv;       /* pivots, LAPACK's 1-based convention */
    double anorm;    /* ||A||_1 */
    double rcond;    /* estimate of 1 / (||A||_1 ||A^-1||_1); 0 if singular */
} ibrt_lu;

/* Fails with IBRT_EVALUE naming the zero pivot when A is exactly singular
 * (rcond is then 0 and lu is freed). */
ibrt_status ibrt_lu_factor(ibrt_lu *lu, size_t n, const double *A, ibrt_error *err);
/* Solves A X = B in place for the n x nrhs row-major B (op(A) = A' when
 * trans != 0). */
ibrt_status ibrt_lu_solve(const ibrt_lu *lu, int trans, size_t nrhs, double *B, ibrt_error *err);
void ibrt_lu_free(ibrt_lu *lu);

#endif
