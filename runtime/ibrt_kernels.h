/*
 * ibrt_kernels.h: the matrix products of generated forward and reverse
 * passes (module prefix ibrt_mm).  Header-only and static inline: the
 * small kernel is meant to be specialised by the C compiler for the
 * constant sizes of each call site in a generated trainer.
 *
 * Both compute C = op(A) op(B) + beta C, row-major, C M x N, op(A) M x K,
 * with leading dimensions as stored and op the transpose when ta / tb.
 * ibrt_mm goes to BLAS: gemv when one side is a single row or column,
 * gemm otherwise.  ibrt_mm_small is for products too small for a BLAS
 * call to pay (per-sample blocks of a few hundred multiply-adds, at most
 * IBRT_MM_SMALL entries of op(B) and N <= IBRT_MM_SMALL): a row of C is
 * accumulated in a local array (no aliasing with the tape, so the inner
 * loop vectorises) over a contiguous copy of op(B).
 */
#ifndef IBRT_KERNELS_H
#define IBRT_KERNELS_H

#include <cblas.h>

enum { IBRT_MM_SMALL = 1024 };

static inline void ibrt_mm(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B,
                           long ldb, double beta, double *C, long ldc)
{
    if (N == 1)
        cblas_dgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, (int)(ta ? K : M), (int)(ta ? M : K), 1.0, A,
                    (int)lda, B, (int)(tb ? 1 : ldb), beta, C, (int)ldc);
    else if (M == 1)
        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)(tb ? N : K), (int)(tb ? K : N), 1.0, B,
                    (int)ldb, A, (int)(ta ? lda : 1), beta, C, 1);
    else
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static inline void ibrt_mm_small(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B,
                                 long ldb, double beta, double *C, long ldc)
{
    double bt[IBRT_MM_SMALL], acc[IBRT_MM_SMALL];
    const double *b = B;
    if (tb) {
        for (long k = 0; k < K; k++)
            for (long j = 0; j < N; j++)
                bt[k * N + j] = B[j * ldb + k];
        b = bt;
        ldb = N;
    }
    for (long i = 0; i < M; i++) {
        for (long j = 0; j < N; j++)
            acc[j] = 0;
        for (long k = 0; k < K; k++) {
            double a = ta ? A[k * lda + i] : A[i * lda + k];
            for (long j = 0; j < N; j++)
                acc[j] += a * b[k * ldb + j];
        }
        double *c = C + i * ldc;
        for (long j = 0; j < N; j++)
            c[j] = (beta == 0 ? 0 : beta * c[j]) + acc[j];
    }
}

#endif
