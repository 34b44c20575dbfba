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

/* exp(x), branch-free so that loops calling it vectorise (glibc's exp
 * is a call per element).  x = k ln 2 + r with k = round(x / ln 2) (the
 * 1.5 * 2^52 trick), |r| <= ln 2 / 2, ln 2 split in a high part exact in
 * 20 bits and a low part (Cody & Waite); exp(r) by its Taylor series to
 * r^13 (truncation below 4e-18 relative); 2^k from the exponent bits.  x
 * is clamped to [-708, 709], where 2^k stays a normal double: below, the
 * result is exp(-708) ~ 3e-308 instead of a subnormal or 0 (negligible
 * against a softmax row's largest term, 1).  Relative error within a few
 * ulp of exp over the whole range (tests/unit/test_rt_ops.c). */
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
