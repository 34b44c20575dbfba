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
 * loop vectorises) over a contiguous copy of op(B).  It also serves
 * stacked products with many rows but a narrow op(B) (N <= 16, a row of C
 * in one or two vector registers), where OpenBLAS's packing costs more
 * than the product: bench/kernels.c measures both on the shapes of the
 * paper's specs.
 */
#ifndef IBRT_KERNELS_H
#define IBRT_KERNELS_H

#include <cblas.h>
#include <stdint.h>
#include <string.h>

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

/* The small kernel must be inlined at each call site, where the sizes are
 * constants: a shared out-of-line copy (which GCC makes of a large static
 * inline function called many times) runs its loops with sizes unknown and
 * took 16% of the attention trainer's step. */
#if defined(__GNUC__)
#define IBRT_INLINE static inline __attribute__((always_inline))
#else
#define IBRT_INLINE static inline
#endif

/* a * b + c, fused where the machine has FMA (-march=native) */
#if defined(__FMA__)
#define IBRT_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define IBRT_FMA(a, b, c) ((a) * (b) + (c))
#endif

IBRT_INLINE void ibrt_mm_small(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B,
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
                acc[j] = IBRT_FMA(a, b[k * ldb + j], acc[j]);
        }
        double *c = C + i * ldc;
        for (long j = 0; j < N; j++)
            c[j] = (beta == 0 ? 0 : beta * c[j]) + acc[j];
    }
}

/* exp(x) for the row softmax, branch-free so that the row loops
 * vectorise (glibc's exp is a call per element).  x = k ln 2 + r with k =
 * round(x / ln 2) (the 1.5 * 2^52 trick), |r| <= ln 2 / 2, ln 2 split in a
 * high part exact in 20 bits and a low part (Cody & Waite); exp(r) by its
 * Taylor series to r^13 (truncation below 4e-18 relative); 2^k from the
 * exponent bits.  x is clamped to [-708, 709], where 2^k stays a normal
 * double: below, the result is exp(-708) ~ 3e-308 instead of a subnormal
 * or 0 (negligible against the row's largest term, 1).  Relative error
 * within a few ulp of exp over the whole range (tests/unit/test_rt_ops.c). */
static inline double ibrt_exp(double x)
{
    const double log2e = 1.4426950408889634, ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6,
                 shift = 6755399441055744.0;   /* 1.5 * 2^52 */
    x = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
    double k = (x * log2e + shift) - shift;
    double r = (x - k * ln2_hi) - k * ln2_lo;
    double p = 1.0 / 6227020800.0;   /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits = (uint64_t)((int64_t)k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
