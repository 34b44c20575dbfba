/*
 * ibrt_exp.h: exp(x) in plain double arithmetic (module prefix ibrt_exp),
 * header-only so that loops calling it vectorise.  The ziggurat's wedge
 * test (ibrt_rng.h, rng.c) uses it; with no fused multiply-adds (C11 mode)
 * every instruction set, scalar or vector, gives the same bits.  The row
 * softmax (ibrt_kernels.h) uses the same method with fused multiply-adds,
 * ibrt_softmax_exp.
 */
#ifndef IBRT_EXP_H
#define IBRT_EXP_H

#include <stdint.h>
#include <string.h>

#include "ibrt.h"

/* The method's constants, shared with the softmax's fused form
 * (ibrt_softmax_exp, ibrt_kernels.h): log2(e); ln 2 split in a high part
 * exact in 20 bits and a low part (Cody & Waite); 1.5 * 2^52, whose
 * addition rounds to an integer; the Taylor coefficients 1/13!, 1/12!,
 * ..., 1/2, 1, 1 in Horner order. */
#define IBRT_EXP_LOG2E 1.4426950408889634
#define IBRT_EXP_LN2_HI 6.93145751953125e-1
#define IBRT_EXP_LN2_LO 1.42860682030941723212e-6
#define IBRT_EXP_SHIFT 6755399441055744.0
static const double ibrt_exp_taylor[14] = { 1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                            1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                                            1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                                            1.0 / 24.0,         1.0 / 6.0,         0.5,
                                            1.0,                1.0 };

/* 2^k for an integer-valued k in [-1022, 1023], from the exponent bits; a
 * NaN k (from a NaN x) gives 1, the conversion of a NaN being undefined,
 * and the caller's polynomial is NaN then anyway */
static inline double ibrt_exp_scale(double k)
{
    uint64_t bits = (uint64_t)((int64_t)(k == k ? k : 0) + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return scale;
}

/* exp(x), branch-free so that loops calling it vectorise (glibc's exp
 * is a call per element).  x = k ln 2 + r with k = round(x / ln 2) (the
 * 1.5 * 2^52 trick), |r| <= ln 2 / 2; exp(r) by its Taylor series to r^13
 * (truncation below 4e-18 relative); 2^k from the exponent bits.  x is
 * clamped to [-708, 709], where 2^k stays a normal double: below, the
 * result is exp(-708) ~ 3e-308 instead of a subnormal or 0 (negligible
 * against a softmax row's largest term, 1).  Relative error within a few
 * ulp of exp over the whole range (tests/unit/test_rt_kernels.c). */
static inline double ibrt_exp(double x)
{
    x = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
    double k = (x * IBRT_EXP_LOG2E + IBRT_EXP_SHIFT) - IBRT_EXP_SHIFT;
    double r = (x - k * IBRT_EXP_LN2_HI) - k * IBRT_EXP_LN2_LO;
    double p = ibrt_exp_taylor[0];
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        p = p * r + ibrt_exp_taylor[i];
    return p * ibrt_exp_scale(k);
}

#if defined(__AVX2__)
#include <immintrin.h>
/* ibrt_exp on four lanes (AVX2), the same operations in the same order,
 * each rounded on its own (no fused multiply-add), so every lane gives
 * ibrt_exp's bits: the clamp with the constants first (a NaN passes
 * through, as in the scalar form), and 2^k from the bits of k + 1.5 2^52
 * (AVX2 has no double-to-int64 conversion), which are those of 1.5 2^52
 * plus the integer k. */
static inline __m256d ibrt_exp4(__m256d x)
{
    const __m256d shift = _mm256_set1_pd(IBRT_EXP_SHIFT);
    x = _mm256_min_pd(_mm256_set1_pd(709.0), _mm256_max_pd(_mm256_set1_pd(-708.0), x));
    __m256d k = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(IBRT_EXP_LOG2E)), shift), shift);
    __m256d r = _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(k, _mm256_set1_pd(IBRT_EXP_LN2_HI))),
                              _mm256_mul_pd(k, _mm256_set1_pd(IBRT_EXP_LN2_LO)));
    __m256d p = _mm256_set1_pd(ibrt_exp_taylor[0]);
    IBRT_UNROLL
    for (int i = 1; i < 14; i++)
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(ibrt_exp_taylor[i]));
    __m256i e = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, shift)), _mm256_castpd_si256(shift));
    __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
}
#endif

#endif
