/*
 * mat.c: GSL-style vectors and matrices over caller or owned storage, BLAS
 * wrappers that check dimensions first, Cholesky log-determinants and a
 * reusable LU factorisation (LAPACKE).
 */
#include "ibrt_mat.h"

#include <assert.h>
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(lapack_int) == sizeof(int), "ibrt_lu stores pivots as int: LAPACKE must use 32-bit integers");

ibrt_status ibrt_vec_alloc(ibrt_vec *v, size_t n, ibrt_error *err)
{
    memset(v, 0, sizeof *v);
    double *d = calloc(n ? n : 1, sizeof *d);
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "out of memory for a vector of %zu", n);
        return IBRT_ENOMEM;
    }
    *v = (ibrt_vec){ .size = n, .stride = 1, .data = d, .owner = 1 };
    return IBRT_OK;
}

void ibrt_vec_free(ibrt_vec *v)
{
    if (v->owner)
        free(v->data);
    memset(v, 0, sizeof *v);
}

ibrt_vec ibrt_vec_view(double *data, size_t n) { return (ibrt_vec){ .size = n, .stride = 1, .data = data }; }

ibrt_vec ibrt_vec_view_stride(double *data, size_t n, size_t stride)
{
    return (ibrt_vec){ .size = n, .stride = stride, .data = data };
}

ibrt_status ibrt_mat_alloc(ibrt_mat *m, size_t rows, size_t cols, ibrt_error *err)
{
    memset(m, 0, sizeof *m);
    double *d = cols && rows > SIZE_MAX / sizeof(double) / cols ? NULL : calloc(rows * cols + 1, sizeof *d);
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "out of memory for a %zu x %zu matrix", rows, cols);
        return IBRT_ENOMEM;
    }
    *m = (ibrt_mat){ .rows = rows, .cols = cols, .tda = cols, .data = d, .owner = 1 };
    return IBRT_OK;
}

void ibrt_mat_free(ibrt_mat *m)
{
    if (m->owner)
        free(m->data);
    memset(m, 0, sizeof *m);
}

ibrt_mat ibrt_mat_view(double *data, size_t rows, size_t cols)
{
    return (ibrt_mat){ .rows = rows, .cols = cols, .tda = cols, .data = data };
}

ibrt_vec ibrt_mat_row(const ibrt_mat *m, size_t i)
{
    assert(i < m->rows);
    return (ibrt_vec){ .size = m->cols, .stride = 1, .data = m->data + i * m->tda };
}

ibrt_vec ibrt_mat_col(const ibrt_mat *m, size_t j)
{
    assert(j < m->cols);
    return (ibrt_vec){ .size = m->rows, .stride = m->tda, .data = m->data + j };
}

ibrt_mat ibrt_mat_submatrix(const ibrt_mat *m, size_t i, size_t j, size_t r, size_t c)
{
    assert(i + r <= m->rows && j + c <= m->cols);
    return (ibrt_mat){ .rows = r, .cols = c, .tda = m->tda, .data = m->data + i * m->tda + j };
}

/* BLAS takes int dimensions: larger ones are refused rather than wrapped. */
static bool too_big(size_t n) { return n > 0x7fffffff; }

ibrt_status ibrt_blas_gemv(int trans, double alpha, const ibrt_mat *A, const ibrt_vec *x, double beta, ibrt_vec *y,
                           ibrt_error *err)
{
    size_t r = trans ? A->cols : A->rows, c = trans ? A->rows : A->cols;
    if (x->size != c || y->size != r) {
        snprintf(err->msg, sizeof err->msg, "gemv: %s is %zu x %zu, x has %zu entries (expected %zu), y has %zu "
                 "(expected %zu)", trans ? "A'" : "A", r, c, x->size, c, y->size, r);
        return IBRT_ESHAPE;
    }
    if (too_big(A->rows) || too_big(A->cols) || too_big(A->tda) || too_big(x->stride) || too_big(y->stride)) {
        snprintf(err->msg, sizeof err->msg, "gemv: dimensions beyond BLAS's int range");
        return IBRT_ESHAPE;
    }
    if (r == 0)
        return IBRT_OK;
    if (c == 0) {   /* BLAS quick-returns without scaling y when A has no columns */
        for (size_t i = 0; i < r; i++)
            *ibrt_vec_ptr(y, i) *= beta;
        return IBRT_OK;
    }
    cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, (int)A->rows, (int)A->cols, alpha, A->data,
                (int)A->tda, x->data, (int)x->stride, beta, y->data, (int)y->stride);
    return IBRT_OK;
}

ibrt_status ibrt_blas_gemm(int transA, int transB, double alpha, const ibrt_mat *A, const ibrt_mat *B, double beta,
                           ibrt_mat *C, ibrt_error *err)
{
    size_t ar = transA ? A->cols : A->rows, ac = transA ? A->rows : A->cols;
    size_t br = transB ? B->cols : B->rows, bc = transB ? B->rows : B->cols;
    if (ac != br || C->rows != ar || C->cols != bc) {
        snprintf(err->msg, sizeof err->msg, "gemm: %s is %zu x %zu, %s is %zu x %zu, C is %zu x %zu (expected "
                 "inner dimensions equal and C %zu x %zu)", transA ? "A'" : "A", ar, ac, transB ? "B'" : "B", br, bc,
                 C->rows, C->cols, ar, bc);
        return IBRT_ESHAPE;
    }
    if (too_big(ar) || too_big(ac) || too_big(bc) || too_big(A->tda) || too_big(B->tda) || too_big(C->tda)) {
        snprintf(err->msg, sizeof err->msg, "gemm: dimensions beyond BLAS's int range");
        return IBRT_ESHAPE;
    }
    if (ar == 0 || bc == 0)
        return IBRT_OK;
    if (ac == 0) {
        for (size_t i = 0; i < ar; i++)
            for (size_t j = 0; j < bc; j++)
                *ibrt_mat_ptr(C, i, j) *= beta;
        return IBRT_OK;
    }
    cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (int)ar,
                (int)bc, (int)ac, alpha, A->data, (int)A->tda, B->data, (int)B->tda, beta, C->data, (int)C->tda);
    return IBRT_OK;
}

ibrt_status ibrt_blas_dot(const ibrt_vec *x, const ibrt_vec *y, double *out, ibrt_error *err)
{
    if (x->size != y->size) {
        snprintf(err->msg, sizeof err->msg, "dot: x has %zu entries, y has %zu", x->size, y->size);
        return IBRT_ESHAPE;
    }
    if (too_big(x->size) || too_big(x->stride) || too_big(y->stride)) {
        snprintf(err->msg, sizeof err->msg, "dot: dimensions beyond BLAS's int range");
        return IBRT_ESHAPE;
    }
    *out = x->size ? cblas_ddot((int)x->size, x->data, (int)x->stride, y->data, (int)y->stride) : 0;
    return IBRT_OK;
}

double ibrt_linalg_logdet_chol_inplace(size_t n, double *G, int *status)
{
    if (too_big(n)) {
        *status = IBRT_ESHAPE;
        return NAN;
    }
    if (n == 0) {   /* the empty product */
        *status = IBRT_OK;
        return 0;
    }
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, G, (lapack_int)n);
    if (info != 0) {
        *status = IBRT_EVALUE;
        return NAN;
    }
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += log(G[i * n + i]);
    *status = IBRT_OK;
    return 2 * s;
}

double ibrt_linalg_logdet_chol(size_t n, const double *G, int *status)
{
    if (n && n > SIZE_MAX / sizeof(double) / n) {
        *status = IBRT_ENOMEM;
        return NAN;
    }
    double *copy = malloc((n * n + 1) * sizeof *copy);
    if (!copy) {
        *status = IBRT_ENOMEM;
        return NAN;
    }
    if (n)
        memcpy(copy, G, n * n * sizeof *copy);
    double r = ibrt_linalg_logdet_chol_inplace(n, copy, status);
    free(copy);
    return r;
}

ibrt_status ibrt_lu_factor(ibrt_lu *lu, size_t n, const double *A, ibrt_error *err)
{
    memset(lu, 0, sizeof *lu);
    if (n == 0 || too_big(n) || n > SIZE_MAX / sizeof(double) / n) {
        snprintf(err->msg, sizeof err->msg, "LU: cannot factor a %zu x %zu matrix", n, n);
        return IBRT_ESHAPE;
    }
    lu->n = n;
    lu->lu = malloc(n * n * sizeof *lu->lu);
    lu->ipiv = malloc(n * sizeof *lu->ipiv);
    if (!lu->lu || !lu->ipiv) {
        ibrt_lu_free(lu);
        snprintf(err->msg, sizeof err->msg, "LU: out of memory for a %zu x %zu matrix", n, n);
        return IBRT_ENOMEM;
    }
    memcpy(lu->lu, A, n * n * sizeof *lu->lu);
    /* 1-norm: the largest absolute column sum */
    double anorm = 0;
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += fabs(A[i * n + j]);
        anorm = fmax(anorm, s);
    }
    lu->anorm = anorm;
    lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, lu->lu, (lapack_int)n, lu->ipiv);
    if (info > 0) {
        ibrt_lu_free(lu);
        snprintf(err->msg, sizeof err->msg, "LU: the %zu x %zu matrix is singular (U(%d,%d) = 0 exactly)", n, n,
                 (int)info, (int)info);
        return IBRT_EVALUE;
    }
    if (info < 0 || !isfinite(anorm)) {
        ibrt_lu_free(lu);
        snprintf(err->msg, sizeof err->msg, "LU: the matrix has %s", info < 0 ? "an invalid argument" : "NaN or Inf");
        return IBRT_EVALUE;
    }
    double rcond = 0;
    if (LAPACKE_dgecon(LAPACK_ROW_MAJOR, '1', (lapack_int)n, lu->lu, (lapack_int)n, anorm, &rcond) != 0)
        rcond = 0;
    lu->rcond = rcond;
    return IBRT_OK;
}

ibrt_status ibrt_lu_solve(const ibrt_lu *lu, int trans, size_t nrhs, double *B, ibrt_error *err)
{
    if (!lu->lu) {
        snprintf(err->msg, sizeof err->msg, "LU solve: no factorisation");
        return IBRT_EVALUE;
    }
    if (too_big(nrhs)) {
        snprintf(err->msg, sizeof err->msg, "LU solve: %zu right-hand sides beyond LAPACK's int range", nrhs);
        return IBRT_ESHAPE;
    }
    if (nrhs == 0)
        return IBRT_OK;
    lapack_int info = LAPACKE_dgetrs(LAPACK_ROW_MAJOR, trans ? 'T' : 'N', (lapack_int)lu->n, (lapack_int)nrhs,
                                     lu->lu, (lapack_int)lu->n, lu->ipiv, B, (lapack_int)nrhs);
    if (info != 0) {
        snprintf(err->msg, sizeof err->msg, "LU solve: LAPACKE_dgetrs argument %d invalid", (int)-info);
        return IBRT_EVALUE;
    }
    return IBRT_OK;
}

void ibrt_lu_free(ibrt_lu *lu)
{
    free(lu->lu);
    free(lu->ipiv);
    memset(lu, 0, sizeof *lu);
}
