/*
 * ibrt_kernels.h: the matrix products and the row softmax of generated
 * forward and reverse passes (module prefixes ibrt_mm, ibrt_softmax).
 * Header-only and static inline: the small kernels are meant to be
 * specialised by the C compiler for the constant sizes of each call site
 * in a generated trainer.
 *
 * Both products compute C = op(A) op(B) + beta C, row-major, C M x N,
 * op(A) M x K, with leading dimensions as stored and op the transpose when
 * ta / tb.  ibrt_mm goes to BLAS: gemv when one side is a single row or
 * column, gemm otherwise.  ibrt_mm_small is for products too small for a
 * BLAS call to pay (per-sample blocks of a few hundred multiply-adds, and
 * products of a few thousand with C at most 32 columns wide; at most
 * IBRT_MM_SMALL entries of op(B) when tb): rows of C are accumulated in
 * blocks held in registers over a contiguous copy of op(B).  It also
 * serves stacked products with many rows but a narrow op(B), and the
 * gradients of their narrow right operands (a small C summed over many
 * rows), where OpenBLAS's packing costs more than the product:
 * bench/kernels.c measures both on the shapes of the paper's specs, and
 * the compiler's routing rule (compiler/emit_tape.c) follows it.
 */
#ifndef IBRT_KERNELS_H
#define IBRT_KERNELS_H

#include <cblas.h>
#include <math.h>

#include "ibrt.h"
#include "ibrt_exp.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
/* The vector block of the product fuses its multiply-adds, so it is used
 * only where IBRT_FMA (below) fuses them too: eight lanes with AVX-512
 * (IBRT_MM_BLOCK), four with AVX2 (IBRT_MM_BLOCK4).  The exp's eight
 * lanes also convert doubles to 64-bit integers (AVX512DQ); its four AVX2
 * lanes build 2^k from the bits of k + 1.5 2^52 instead, the same value. */
#if defined(__AVX512F__) && defined(__FMA__)
#define IBRT_MM_BLOCK 1
#elif defined(__AVX2__) && defined(__FMA__)
#define IBRT_MM_BLOCK4 1
#endif
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__FMA__)
#define IBRT_SOFTMAX_EXP8 1
#elif defined(__AVX2__) && defined(__FMA__)
#define IBRT_SOFTMAX_EXP4 1
#endif

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

/* a * b + c, fused where the code is built for FMA (-march=x86-64-v3 and
 * later, or -march=native on such a machine) */
#if defined(__FMA__)
#define IBRT_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define IBRT_FMA(a, b, c) ((a) * (b) + (c))
#endif

#if defined(IBRT_MM_BLOCK)
/* One block of R rows of C = op(A) b + beta C, b K x N (op already
 * applied, rows ldb apart), N <= 8 NV: each row is NV vectors, the last
 * with the lanes of N masked (masked loads and stores never touch memory
 * past a row).  The R x NV accumulators (at most 16 of the 32 vector
 * registers) are independent chains of multiply-adds, each entry the sum
 * over k in increasing order as in the loops below, so the bits are
 * theirs.  A points at the block's first row of op(A), C at its first
 * row.  Written with intrinsics because GCC's vectoriser, given the plain
 * loops, kept a register per row index (then moved to and from vector
 * registers) and stored the accumulators to the stack before writing C:
 * bench/kernels.c's E2 shapes ran 20-30% faster this way, and E3's 20 x 20
 * product (N not a multiple of 8, the plain loops' blocks 3 rows high)
 * more than twice as fast. */
IBRT_INLINE void ibrt_mm_block(int ta, long R, long N, long NV, long K, const double *A, long lda, const double *b,
                               long ldb, double beta, double *C, long ldc)
{
    enum { ACC = 16 };   /* R NV <= ACC; the bounds below say so to the compiler */
    const __mmask8 last = (__mmask8)(0xffu >> (8 * NV - N));   /* the lanes of the last vector in use */
    __m512d acc[ACC];
    IBRT_UNROLL
    for (long e = 0; e < ACC; e++)
        acc[e] = _mm512_setzero_pd();
    for (long k = 0; k < K; k++) {
        const double *bk = b + k * ldb, *ak = ta ? A + k * lda : A + k;
        __m512d bv[4];
        IBRT_UNROLL
        for (long v = 0; v < 4; v++)
            bv[v] = v < NV - 1 ? _mm512_loadu_pd(bk + 8 * v)
                    : v == NV - 1 ? _mm512_maskz_loadu_pd(last, bk + 8 * v)
                                  : _mm512_setzero_pd();
        IBRT_UNROLL
        for (long r = 0; r < R; r++) {
            __m512d a = _mm512_set1_pd(ak[ta ? r : r * lda]);
            IBRT_UNROLL
            for (long v = 0; v < NV; v++)
                if (r * NV + v < ACC)
                    acc[r * NV + v] = _mm512_fmadd_pd(a, bv[v], acc[r * NV + v]);
        }
    }
    IBRT_UNROLL
    for (long r = 0; r < R; r++)
        IBRT_UNROLL
        for (long v = 0; v < NV; v++) {
            if (r * NV + v >= ACC)
                break;
            double *c = C + r * ldc + 8 * v;
            __mmask8 m = v < NV - 1 ? (__mmask8)0xff : last;
            __m512d c0 =
                beta == 0 ? _mm512_setzero_pd() : _mm512_mul_pd(_mm512_set1_pd(beta), _mm512_maskz_loadu_pd(m, c));
            _mm512_mask_storeu_pd(c, m, _mm512_add_pd(c0, acc[r * NV + v]));
        }
}
#endif

#if defined(IBRT_MM_BLOCK4)
/* ibrt_mm_block on four lanes (AVX2): N <= 4 NV, NV <= 8; the R x NV
 * accumulators (at most 12 of the 16 vector registers) are the same
 * chains of multiply-adds, each entry summed over k in increasing order,
 * so the bits are those of the other paths. */
IBRT_INLINE void ibrt_mm_block4(int ta, long R, long N, long NV, long K, const double *A, long lda, const double *b,
                                long ldb, double beta, double *C, long ldc)
{
    enum { ACC = 12 };
    /* lane l of the last vector is in use when 4 (NV - 1) + l < N */
    const __m256i last = _mm256_cmpgt_epi64(_mm256_set1_epi64x(N - 4 * (NV - 1)), _mm256_set_epi64x(3, 2, 1, 0));
    /* no lane masked when N fills the last vector: plain loads and stores
     * then (AMD's masked store vmaskmovpd is slow: 11% of E2's step) */
    const int whole = N == 4 * NV;
    __m256d acc[ACC];
    IBRT_UNROLL
    for (long e = 0; e < ACC; e++)
        acc[e] = _mm256_setzero_pd();
    for (long k = 0; k < K; k++) {
        const double *bk = b + k * ldb, *ak = ta ? A + k * lda : A + k;
        __m256d bv[8];
        IBRT_UNROLL
        for (long v = 0; v < 8; v++)
            bv[v] = v < NV - 1 || (v == NV - 1 && whole) ? _mm256_loadu_pd(bk + 4 * v)
                    : v == NV - 1                         ? _mm256_maskload_pd(bk + 4 * v, last)
                                                          : _mm256_setzero_pd();
        IBRT_UNROLL
        for (long r = 0; r < R; r++) {
            __m256d a = _mm256_set1_pd(ak[ta ? r : r * lda]);
            IBRT_UNROLL
            for (long v = 0; v < NV; v++)
                if (r * NV + v < ACC)
                    acc[r * NV + v] = _mm256_fmadd_pd(a, bv[v], acc[r * NV + v]);
        }
    }
    IBRT_UNROLL
    for (long r = 0; r < R; r++)
        IBRT_UNROLL
        for (long v = 0; v < NV; v++) {
            if (r * NV + v >= ACC)
                break;
            double *c = C + r * ldc + 4 * v;
            if (v < NV - 1 || whole) {
                __m256d c0 = beta == 0 ? _mm256_setzero_pd() : _mm256_mul_pd(_mm256_set1_pd(beta), _mm256_loadu_pd(c));
                _mm256_storeu_pd(c, _mm256_add_pd(c0, acc[r * NV + v]));
            } else {
                __m256d c0 =
                    beta == 0 ? _mm256_setzero_pd() : _mm256_mul_pd(_mm256_set1_pd(beta), _mm256_maskload_pd(c, last));
                _mm256_maskstore_pd(c, last, _mm256_add_pd(c0, acc[r * NV + v]));
            }
        }
}
#endif

#if defined(__AVX2__)
/* The 4 x 4 transpose in registers (AVX2): r[l] row l in, column l out */
IBRT_INLINE void ibrt_transpose4(__m256d r[4])
{
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

/* Rows of C go in blocks of R = 64 / N (for 2 <= N <= 32): the block's
 * R x N accumulators fit in eight 8-wide vector registers, and its R rows
 * are R independent chains of multiply-adds.  One row at a time, a row's
 * chain of K dependent multiply-adds kept the kernel at the latency of one
 * FMA per step (bench/kernels.c).  With AVX-512 and FMA (2 <= N <= 32,
 * NV = ceil(N / 8) vectors a row), blocks of 16 / NV rows, then of 8 / NV,
 * go through ibrt_mm_block instead.  Rows left over, and every row when
 * N is 1 or over 32, go one at a time.  Each entry of C is the sum over k
 * in increasing order either way, so the blocking does not change the
 * bits.  The inner loops carry
 * IBRT_UNROLL: rolled, their accumulators stayed on the stack. */
IBRT_INLINE void ibrt_mm_small(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B,
                               long ldb, double beta, double *C, long ldc)
{
    double bt[IBRT_MM_SMALL];
    const double *b = B;
    if (tb) {
#if defined(IBRT_MM_BLOCK4)
        /* op(B) in 4 x 4 blocks transposed in registers, stored whole:
         * copied entry by entry, the block kernel's vector loads of bt
         * waited for the eight-byte stores (no store forwarding; 2.4% of
         * E2's step, whose Q K' and dC V' take this path) */
        if (N % 4 == 0 && K % 4 == 0) {
            IBRT_UNROLL
            for (long j0 = 0; j0 < N; j0 += 4)
                IBRT_UNROLL
                for (long k0 = 0; k0 < K; k0 += 4) {
                    __m256d v[4];
                    IBRT_UNROLL
                    for (int l = 0; l < 4; l++)
                        v[l] = _mm256_loadu_pd(B + (j0 + l) * ldb + k0);
                    ibrt_transpose4(v);
                    IBRT_UNROLL
                    for (int l = 0; l < 4; l++)
                        _mm256_storeu_pd(bt + (k0 + l) * N + j0, v[l]);
                }
        } else
#endif
        IBRT_UNROLL
        for (long k = 0; k < K; k++)
            IBRT_UNROLL
            for (long j = 0; j < N; j++)
                bt[k * N + j] = B[j * ldb + k];
        b = bt;
        ldb = N;
    }
    long full = 0;   /* rows done in whole blocks */
    if (N >= 2 && N <= 32) {
#if defined(IBRT_MM_BLOCK)
        const long NV = (N + 7) / 8;
        for (; full + 16 / NV <= M; full += 16 / NV)
            ibrt_mm_block(ta, 16 / NV, N, NV, K, ta ? A + full : A + full * lda, lda, b, ldb, beta, C + full * ldc,
                          ldc);
        for (; full + 8 / NV <= M; full += 8 / NV)
            ibrt_mm_block(ta, 8 / NV, N, NV, K, ta ? A + full : A + full * lda, lda, b, ldb, beta, C + full * ldc, ldc);
#elif defined(IBRT_MM_BLOCK4)
        const long NV = (N + 3) / 4;   /* 1 .. 8 */
        /* with two vectors a row, 8 rows left go as two blocks of 4 (8
         * accumulators each) rather than 6 and 2 (a block of 4 chains
         * waiting on the FMA's latency): E2's 8 x 8 per-sample products */
        for (; full + 12 / NV <= M && !(NV == 2 && M - full == 8); full += 12 / NV)
            ibrt_mm_block4(ta, 12 / NV, N, NV, K, ta ? A + full : A + full * lda, lda, b, ldb, beta, C + full * ldc,
                           ldc);
        if (NV == 2)
            for (; full + 4 <= M; full += 4)
                ibrt_mm_block4(ta, 4, N, NV, K, ta ? A + full : A + full * lda, lda, b, ldb, beta, C + full * ldc, ldc);
        if (NV <= 4)
            for (; full + 4 / NV <= M; full += 4 / NV)
                ibrt_mm_block4(ta, 4 / NV, N, NV, K, ta ? A + full : A + full * lda, lda, b, ldb, beta,
                               C + full * ldc, ldc);
#else
        /* full is computed, not counted up, so that at constant sizes the
         * compiler sees the rows left over (and drops their loop when there
         * are none: counted up, GCC warned of overflow in that dead loop) */
        const long R = 64 / N;
        full = M / R * R;
        for (long i0 = 0; i0 < full; i0 += R) {
            double acc[64];
            for (long e = 0; e < R * N; e++)
                acc[e] = 0;
            for (long k = 0; k < K; k++) {
                const double *bk = b + k * ldb;
                IBRT_UNROLL
                for (long r = 0; r < R; r++) {
                    double a = ta ? A[k * lda + i0 + r] : A[(i0 + r) * lda + k];
                    IBRT_UNROLL
                    for (long j = 0; j < N; j++)
                        acc[r * N + j] = IBRT_FMA(a, bk[j], acc[r * N + j]);
                }
            }
            for (long r = 0; r < R; r++) {
                double *c = C + (i0 + r) * ldc;
                for (long j = 0; j < N; j++)
                    c[j] = (beta == 0 ? 0 : beta * c[j]) + acc[r * N + j];
            }
        }
#endif
    }
    for (long i = full; i < M; i++)   /* a row at a time, in pieces of IBRT_MM_SMALL columns */
        for (long j0 = 0; j0 < N; j0 += IBRT_MM_SMALL) {
            long nj = N - j0 < IBRT_MM_SMALL ? N - j0 : IBRT_MM_SMALL;
            double acc[IBRT_MM_SMALL];
            for (long j = 0; j < nj; j++)
                acc[j] = 0;
            for (long k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k];
                for (long j = 0; j < nj; j++)
                    acc[j] = IBRT_FMA(a, b[k * ldb + j0 + j], acc[j]);
            }
            double *c = C + i * ldc + j0;
            for (long j = 0; j < nj; j++)
                c[j] = (beta == 0 ? 0 : beta * c[j]) + acc[j];
        }
}

/* Row softmax of an R x C block (rows contiguous, C apart):
 * y[r, c] = exp(x[r, c] - m_r) / sum_c' exp(x[r, c'] - m_r), m_r the row's
 * largest entry (subtracted for stability).  Rows go eight at a time
 * through a transposed copy t[c][lane], so the max, the exps, the sum and
 * the division run across eight rows in vector lanes; a row at a time, the
 * max and the sum were chains of dependent scalar operations.  Each row's
 * max and sum still run over c in increasing order, so the bits are those
 * of the row-by-row loops, which serve the rows left over and C >
 * IBRT_SOFTMAX_COLS. */
enum { IBRT_SOFTMAX_COLS = 64 };

/* The softmax's exp: ibrt_exp's method and constants (ibrt_exp.h) with
 * its multiply-adds fused (IBRT_FMA), which halves the polynomial's
 * instructions and rounds once per step instead of twice.
 * ibrt_softmax_exp8 is the same sequence of operations on eight lanes,
 * so the two give the same bits; the ziggurat keeps ibrt_exp, whose bits
 * do not depend on the instruction set. */
IBRT_INLINE double ibrt_softmax_exp(double x)
{
    x = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
    double k = IBRT_FMA(x, IBRT_EXP_LOG2E, IBRT_EXP_SHIFT) - IBRT_EXP_SHIFT;
    double r = IBRT_FMA(-k, IBRT_EXP_LN2_LO, IBRT_FMA(-k, IBRT_EXP_LN2_HI, x));
    double p = ibrt_exp_taylor[0];
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        p = IBRT_FMA(p, r, ibrt_exp_taylor[i]);
    return p * ibrt_exp_scale(k);
}

#if defined(IBRT_SOFTMAX_EXP8)
IBRT_INLINE __m512d ibrt_softmax_exp8(__m512d x)
{
    const __m512d shift = _mm512_set1_pd(IBRT_EXP_SHIFT);
    /* the clamp, with the constants first so that a NaN passes through as
     * in the scalar form */
    x = _mm512_min_pd(_mm512_set1_pd(709.0), _mm512_max_pd(_mm512_set1_pd(-708.0), x));
    __m512d k = _mm512_sub_pd(_mm512_fmadd_pd(x, _mm512_set1_pd(IBRT_EXP_LOG2E), shift), shift);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(IBRT_EXP_LN2_HI), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(IBRT_EXP_LN2_LO), r);
    __m512d p = _mm512_set1_pd(ibrt_exp_taylor[0]);
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(ibrt_exp_taylor[i]));
    __m512i bits = _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtpd_epi64(k), _mm512_set1_epi64(1023)), 52);
    return _mm512_mul_pd(p, _mm512_castsi512_pd(bits));
}
#endif

#if defined(IBRT_SOFTMAX_EXP4)
IBRT_INLINE __m256d ibrt_softmax_exp4(__m256d x)
{
    const __m256d shift = _mm256_set1_pd(IBRT_EXP_SHIFT), magic = _mm256_set1_pd(0x1.8p52);
    x = _mm256_min_pd(_mm256_set1_pd(709.0), _mm256_max_pd(_mm256_set1_pd(-708.0), x));
    __m256d k = _mm256_sub_pd(_mm256_fmadd_pd(x, _mm256_set1_pd(IBRT_EXP_LOG2E), shift), shift);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(IBRT_EXP_LN2_HI), x);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(IBRT_EXP_LN2_LO), r);
    __m256d p = _mm256_set1_pd(ibrt_exp_taylor[0]);
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(ibrt_exp_taylor[i]));
    /* k is an integer in [-1022, 1023]: the bits of k + 1.5 2^52 are those
     * of 1.5 2^52 plus k, so subtracting them and adding 1023 gives the
     * biased exponent of 2^k exactly (ibrt_exp_scale's value) */
    __m256i e = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, magic)), _mm256_castpd_si256(magic));
    __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
}
#endif

#if defined(IBRT_SOFTMAX_EXP4)
/* ibrt_softmax_exp4 on eight vectors at once, x[c] = exp(x[c] - m), its
 * steps taken in lockstep across the eight: each vector's operations are
 * ibrt_softmax_exp4's, in its order, so the bits are the same; the eight
 * Horner chains (13 dependent multiply-adds each) side by side keep both
 * FMA units busy, where one exp after the other filled the scheduler
 * with multiply-adds waiting on their predecessor. */
IBRT_INLINE void ibrt_softmax_exp4x8(__m256d x[8], __m256d m)
{
    const __m256d shift = _mm256_set1_pd(IBRT_EXP_SHIFT), magic = _mm256_set1_pd(0x1.8p52);
    __m256d k[8], r[8], p[8];
    IBRT_UNROLL
    for (int c = 0; c < 8; c++) {
        __m256d xc = _mm256_min_pd(_mm256_set1_pd(709.0), _mm256_max_pd(_mm256_set1_pd(-708.0), _mm256_sub_pd(x[c], m)));
        k[c] = _mm256_sub_pd(_mm256_fmadd_pd(xc, _mm256_set1_pd(IBRT_EXP_LOG2E), shift), shift);
        r[c] = _mm256_fnmadd_pd(k[c], _mm256_set1_pd(IBRT_EXP_LN2_HI), xc);
        r[c] = _mm256_fnmadd_pd(k[c], _mm256_set1_pd(IBRT_EXP_LN2_LO), r[c]);
        p[c] = _mm256_set1_pd(ibrt_exp_taylor[0]);
    }
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        IBRT_UNROLL
        for (int c = 0; c < 8; c++)
            p[c] = _mm256_fmadd_pd(p[c], r[c], _mm256_set1_pd(ibrt_exp_taylor[i]));
    IBRT_UNROLL
    for (int c = 0; c < 8; c++) {
        __m256i e = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k[c], magic)), _mm256_castpd_si256(magic));
        __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(1023)), 52);
        x[c] = _mm256_mul_pd(p[c], _mm256_castsi256_pd(bits));
    }
}
#endif

/* One row: the exps in vector lanes along the row where the machine has
 * them (the lanes give the scalar exp's bits), then the sum in increasing
 * c as in the definition, so a wide row (C > IBRT_SOFTMAX_COLS, attention
 * over long sequences) gets the vector exp too without changing a bit. */
IBRT_INLINE void ibrt_softmax_row(long C, const double *x, double *y)
{
    double mx = -INFINITY, sum = 0;
    for (long c = 0; c < C; c++)
        mx = x[c] > mx ? x[c] : mx;
    long c0 = 0;
#if defined(IBRT_SOFTMAX_EXP8)
    for (; c0 + 8 <= C; c0 += 8)
        _mm512_storeu_pd(y + c0, ibrt_softmax_exp8(_mm512_sub_pd(_mm512_loadu_pd(x + c0), _mm512_set1_pd(mx))));
#elif defined(IBRT_SOFTMAX_EXP4)
    for (; c0 + 4 <= C; c0 += 4)
        _mm256_storeu_pd(y + c0, ibrt_softmax_exp4(_mm256_sub_pd(_mm256_loadu_pd(x + c0), _mm256_set1_pd(mx))));
#endif
    for (long c = c0; c < C; c++)
        y[c] = ibrt_softmax_exp(x[c] - mx);
    for (long c = 0; c < C; c++)
        sum += y[c];
    for (long c = 0; c < C; c++)
        y[c] /= sum;
}

#if defined(IBRT_SOFTMAX_EXP8)
/* The 8 x 8 transpose in registers: r[l] row l in, r[c] column c out
 * (unpacks pair the rows' entries, two 128-bit lane shuffles gather the
 * pairs; 24 shuffles, no memory) */
IBRT_INLINE void ibrt_transpose8(__m512d r[8])
{
    __m512d t[8], u[8];
    IBRT_UNROLL
    for (int j = 0; j < 4; j++) {
        t[2 * j] = _mm512_unpacklo_pd(r[2 * j], r[2 * j + 1]);       /* pairs of columns 0 2 4 6 */
        t[2 * j + 1] = _mm512_unpackhi_pd(r[2 * j], r[2 * j + 1]);   /* pairs of columns 1 3 5 7 */
    }
    IBRT_UNROLL
    for (int h = 0; h < 2; h++) {   /* rows 0-3, then 4-7 */
        u[4 * h + 0] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0x88);       /* columns 0 4 */
        u[4 * h + 1] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0x88);   /* columns 1 5 */
        u[4 * h + 2] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0xdd);       /* columns 2 6 */
        u[4 * h + 3] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0xdd);   /* columns 3 7 */
    }
    IBRT_UNROLL
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f64x2(u[c], u[4 + c], 0x88);
        r[c + 4] = _mm512_shuffle_f64x2(u[c], u[4 + c], 0xdd);
    }
}
#endif


IBRT_INLINE void ibrt_softmax_rows(long R, long C, const double *x, double *y)
{
    long r0 = 0;
#if defined(IBRT_SOFTMAX_EXP8)
    /* rows of 8 (attention with a head of 8): the transposes in registers,
     * every entry's operations those of the general loop below */
    if (C == 8)
        for (; r0 + 8 <= R; r0 += 8) {
            __m512d v[8];
            IBRT_UNROLL
            for (int l = 0; l < 8; l++)
                v[l] = _mm512_loadu_pd(x + (r0 + l) * 8);
            ibrt_transpose8(v);
            __m512d vmx = _mm512_set1_pd(-INFINITY), vsum = _mm512_setzero_pd();
            IBRT_UNROLL
            for (int c = 0; c < 8; c++)
                vmx = _mm512_max_pd(v[c], vmx);   /* v > mx ? v : mx, as the scalar form */
            IBRT_UNROLL
            for (int c = 0; c < 8; c++) {
                v[c] = ibrt_softmax_exp8(_mm512_sub_pd(v[c], vmx));
                vsum = _mm512_add_pd(vsum, v[c]);
            }
            IBRT_UNROLL
            for (int c = 0; c < 8; c++)
                v[c] = _mm512_div_pd(v[c], vsum);
            ibrt_transpose8(v);
            IBRT_UNROLL
            for (int l = 0; l < 8; l++)
                _mm512_storeu_pd(y + (r0 + l) * 8, v[l]);
        }
#elif defined(IBRT_SOFTMAX_EXP4)
    /* the same in two halves of four rows, each row two vectors: the 4 x 4
     * blocks transposed in registers */
    if (C == 8)
        for (; r0 + 4 <= R; r0 += 4) {
            __m256d v[8];   /* v[c]: column c of the four rows */
            IBRT_UNROLL
            for (int l = 0; l < 4; l++) {
                v[l] = _mm256_loadu_pd(x + (r0 + l) * 8);
                v[4 + l] = _mm256_loadu_pd(x + (r0 + l) * 8 + 4);
            }
            ibrt_transpose4(v);
            ibrt_transpose4(v + 4);
            __m256d vmx = _mm256_set1_pd(-INFINITY), vsum = _mm256_setzero_pd();
            IBRT_UNROLL
            for (int c = 0; c < 8; c++)
                vmx = _mm256_max_pd(v[c], vmx);   /* v > mx ? v : mx, as the scalar form */
            ibrt_softmax_exp4x8(v, vmx);
            IBRT_UNROLL
            for (int c = 0; c < 8; c++)
                vsum = _mm256_add_pd(vsum, v[c]);
            IBRT_UNROLL
            for (int c = 0; c < 8; c++)
                v[c] = _mm256_div_pd(v[c], vsum);
            ibrt_transpose4(v);
            ibrt_transpose4(v + 4);
            IBRT_UNROLL
            for (int l = 0; l < 4; l++) {
                _mm256_storeu_pd(y + (r0 + l) * 8, v[l]);
                _mm256_storeu_pd(y + (r0 + l) * 8 + 4, v[4 + l]);
            }
        }
#endif
    if (C <= IBRT_SOFTMAX_COLS)
        for (; r0 + 8 <= R; r0 += 8) {
            double t[IBRT_SOFTMAX_COLS][8], mx[8], sum[8];
            IBRT_UNROLL
            for (long c = 0; c < C; c++)
                IBRT_UNROLL
                for (long l = 0; l < 8; l++)
                    t[c][l] = x[(r0 + l) * C + c];
            for (long l = 0; l < 8; l++) {
                mx[l] = -INFINITY;
                sum[l] = 0;
            }
            IBRT_UNROLL
            for (long c = 0; c < C; c++)
                for (long l = 0; l < 8; l++)
                    mx[l] = t[c][l] > mx[l] ? t[c][l] : mx[l];
#if defined(IBRT_SOFTMAX_EXP8)
            __m512d vmx = _mm512_loadu_pd(mx), vsum = _mm512_setzero_pd();
            IBRT_UNROLL
            for (long c = 0; c < C; c++) {
                __m512d e = ibrt_softmax_exp8(_mm512_sub_pd(_mm512_loadu_pd(t[c]), vmx));
                vsum = _mm512_add_pd(vsum, e);
                _mm512_storeu_pd(t[c], e);
            }
            _mm512_storeu_pd(sum, vsum);
#elif defined(IBRT_SOFTMAX_EXP4)
            IBRT_UNROLL
            for (long h = 0; h < 8; h += 4) {
                __m256d vmx = _mm256_loadu_pd(mx + h), vsum = _mm256_setzero_pd();
                IBRT_UNROLL
                for (long c = 0; c < C; c++) {
                    __m256d e = ibrt_softmax_exp4(_mm256_sub_pd(_mm256_loadu_pd(t[c] + h), vmx));
                    vsum = _mm256_add_pd(vsum, e);
                    _mm256_storeu_pd(t[c] + h, e);
                }
                _mm256_storeu_pd(sum + h, vsum);
            }
#else
            IBRT_UNROLL
            for (long c = 0; c < C; c++)
                for (long l = 0; l < 8; l++)
                    sum[l] += (t[c][l] = ibrt_softmax_exp(t[c][l] - mx[l]));
#endif
            IBRT_UNROLL
            for (long c = 0; c < C; c++)
                IBRT_UNROLL
                for (long l = 0; l < 8; l++)
                    y[(r0 + l) * C + c] = t[c][l] / sum[l];
        }
    for (long r = r0; r < R; r++)
        ibrt_softmax_row(C, x + r * C, y + r * C);
}

/* Its reverse, da[r, c] (= or +=, as accumulate) y[r, c] (dy[r, c] -
 * sum_c' dy[r, c'] y[r, c']), a row at a time: the products of a row are
 * one vector operation and its rows independent chains, and eight rows
 * through transposed copies, as in the forward pass, measured slower on
 * the attention spec's reverse pass. */
IBRT_INLINE void ibrt_softmax_rows_adjoint(long R, long C, const double *y, const double *dy, double *da, int accumulate)
{
    for (long r = 0; r < R; r++) {
        const double *yr = y + r * C, *dr = dy + r * C;
        double *ar = da + r * C, sum = 0;
        for (long c = 0; c < C; c++)
            sum += dr[c] * yr[c];
        for (long c = 0; c < C; c++) {
            double d = yr[c] * (dr[c] - sum);
            ar[c] = accumulate ? ar[c] + d : d;
        }
    }
}

#endif
