/* test_rt_kernels.c: the kernels of generated passes (ibrt_kernels.h) and
 * their exp (ibrt_exp.h).  The small product and the row softmax are
 * blocked for speed but promise the bits of their plain definitions (each
 * sum in increasing index order), so they are compared for equality with
 * those definitions, written here, over shapes that reach every path:
 * whole blocks, rows left over, wide rows, transposes, beta and strides.
 * The Makefile builds this test once per x86-64 level (the portable
 * loops; x86-64-v3, FMA; x86-64-v4, FMA and the AVX-512 blocks) and runs
 * each build where the CPU has the level; the sanitizer build runs the
 * portable code. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ibrt_kernels.h"
#include "ibrt_rng.h"

/* C = op(A) op(B) + beta C by its definition: each entry one sum over k
 * in increasing order, with the kernel's multiply-add (IBRT_FMA) */
static void ref_mm(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B, long ldb,
                   double beta, double *C, long ldc)
{
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            double acc = 0;
            for (long k = 0; k < K; k++)
                acc = IBRT_FMA(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j], acc);
            C[i * ldc + j] = (beta == 0 ? 0 : beta * C[i * ldc + j]) + acc;
        }
}

static double A[200 * 40], B[200 * 40], C0[200 * 40], C1[200 * 40], C2[200 * 40];

/* A (entries of standard deviation sd_a), B and C0 (1) drawn from seed */
static void random_operands(uint64_t seed, double sd_a)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, seed);
    ibrt_rng_fill_normal(&r, A, sizeof A / sizeof *A, 0, sd_a);
    ibrt_rng_fill_normal(&r, B, sizeof B / sizeof *B, 0, 1);
    ibrt_rng_fill_normal(&r, C0, sizeof C0 / sizeof *C0, 0, 1);
}

/* one shape through the kernel and the definition; the sizes are not
 * constants here, so this exercises the loops as written, and the
 * specialised copies of constant sizes are checked below */
static void check_mm(int ta, int tb, long M, long N, long K, double beta)
{
    long lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;   /* strides wider than the rows */
    memcpy(C1, C0, sizeof C1);
    memcpy(C2, C0, sizeof C2);
    ibrt_mm_small(ta, tb, M, N, K, A, lda, B, ldb, beta, C1, ldc);
    ref_mm(ta, tb, M, N, K, A, lda, B, ldb, beta, C2, ldc);
    cr_assert(memcmp(C1, C2, sizeof C1) == 0, "ta %d tb %d %ldx%ldx%ld beta %g: not the definition's bits", ta, tb, M,
              N, K, beta);
}

Test(kernels, small_product_is_its_definition)
{
    random_operands(11, 1);
    /* N = 1 (rows one at a time), 2..32 (blocks of 64 / N rows; with
     * AVX-512 and FMA, vector blocks of 16 / NV and 8 / NV rows, NV =
     * ceil(N / 8), the last vector masked unless N is 8, 16, 24 or 32; with
     * AVX2 and FMA, blocks of 12 / NV and 4 / NV rows, NV = ceil(N / 4), every
     * lane count of the last vector), 33 (one at a time again); M a multiple
     * of the block and not; K = 1 and longer */
    const long Ms[] = { 1, 3, 8, 12, 13, 25, 32, 37 }, Ns[] = { 1, 2, 3, 5, 6, 7, 8, 12, 16, 20, 24, 28, 31, 32, 33 },
               Ks[] = { 1, 5, 16 };
    const double betas[] = { 0, 1, 0.5 };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
                for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                    for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++)
                        for (size_t d = 0; d < 3; d++)
                            check_mm(ta, tb, Ms[a], Ns[b], Ks[c], betas[d]);
}

/* the shapes of the attention spec with constant sizes, as a generated
 * trainer calls them, so that the unrolled code is the one compared */
Test(kernels, small_product_at_constant_sizes)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 12);
    ibrt_rng_fill_normal(&r, A, sizeof A / sizeof *A, 0, 1);
    ibrt_rng_fill_normal(&r, B, sizeof B / sizeof *B, 0, 1);
    memset(C1, 0, sizeof C1);
    memset(C2, 0, sizeof C2);
    ibrt_mm_small(0, 0, 128, 8, 16, A, 16, B, 8, 0.0, C1, 8);   /* X Wq */
    ref_mm(0, 0, 128, 8, 16, A, 16, B, 8, 0.0, C2, 8);
    ibrt_mm_small(0, 1, 8, 8, 8, A, 8, B, 8, 0.0, C1 + 1024, 8);   /* Q K' */
    ref_mm(0, 1, 8, 8, 8, A, 8, B, 8, 0.0, C2 + 1024, 8);
    ibrt_mm_small(1, 0, 16, 8, 128, A, 16, B, 8, 1.0, C1 + 2048, 8);   /* X' dQ into the gradient */
    ref_mm(1, 0, 16, 8, 128, A, 16, B, 8, 1.0, C2 + 2048, 8);
    ibrt_mm_small(0, 1, 20, 20, 20, A, 20, B, 20, 0.0, C1 + 4096, 20);   /* U V' */
    ref_mm(0, 1, 20, 20, 20, A, 20, B, 20, 0.0, C2 + 4096, 20);
    cr_assert(memcmp(C1, C2, sizeof C1) == 0);
}

/* softmax of each row, and its reverse, by their definitions */
static void ref_softmax(long R, long C, const double *x, double *y)
{
    for (long r = 0; r < R; r++) {
        double mx = -INFINITY, sum = 0;
        for (long c = 0; c < C; c++)
            mx = x[r * C + c] > mx ? x[r * C + c] : mx;
        for (long c = 0; c < C; c++)
            sum += (y[r * C + c] = ibrt_softmax_exp(x[r * C + c] - mx));
        for (long c = 0; c < C; c++)
            y[r * C + c] /= sum;
    }
}

static void ref_softmax_adjoint(long R, long C, const double *y, const double *dy, double *da, int accumulate)
{
    for (long r = 0; r < R; r++) {
        double sum = 0;
        for (long c = 0; c < C; c++)
            sum += dy[r * C + c] * y[r * C + c];
        for (long c = 0; c < C; c++) {
            double d = y[r * C + c] * (dy[r * C + c] - sum);
            da[r * C + c] = accumulate ? da[r * C + c] + d : d;
        }
    }
}

Test(kernels, softmax_rows_are_their_definition)
{
    random_operands(13, 3);
    A[5] = 800;   /* a row whose other entries underflow (exp clamped) */
    /* rows 8 at a time and left over; C up to IBRT_SOFTMAX_COLS and past it */
    const long Rs[] = { 1, 7, 8, 9, 16, 29 }, Cs[] = { 1, 2, 3, 5, 8, 13, 64, 65, 128, 131 };
    for (size_t a = 0; a < sizeof Rs / sizeof *Rs; a++)
        for (size_t b = 0; b < sizeof Cs / sizeof *Cs; b++) {
            long R = Rs[a], C = Cs[b];
            memcpy(C1, C0, sizeof C1);
            memcpy(C2, C0, sizeof C2);
            ibrt_softmax_rows(R, C, A, C1);
            ref_softmax(R, C, A, C2);
            cr_assert(memcmp(C1, C2, sizeof C1) == 0, "softmax %ldx%ld: not the definition's bits", R, C);
            for (long i = 0; i < R; i++) {
                double s = 0;
                for (long c = 0; c < C; c++)
                    s += C1[i * C + c];
                cr_assert_float_eq(s, 1.0, 1e-14, "row %ld of %ldx%ld sums to %.17g", i, R, C, s);
            }
            for (int acc = 0; acc < 2; acc++) {
                memcpy(C1, C0, sizeof C1);
                memcpy(C2, C0, sizeof C2);
                ibrt_softmax_rows_adjoint(R, C, A + 1000, B, C1, acc);
                ref_softmax_adjoint(R, C, A + 1000, B, C2, acc);
                cr_assert(memcmp(C1, C2, sizeof C1) == 0, "softmax adjoint %ldx%ld (%d): not the definition's bits", R,
                          C, acc);
            }
        }
    /* constant sizes, as the attention spec's trainer calls it */
    ibrt_softmax_rows(8, 8, A, C1);
    ref_softmax(8, 8, A, C2);
    cr_assert(memcmp(C1, C2, 64 * sizeof *C1) == 0);
}

/* The worst relative error of an exp against libm's on a million points
 * over [-708, 709] (a quarter in the softmax's range [-40, 0]) and at the
 * points where the reduction changes k. */
static double exp_error(double (*f)(double))
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 5);
    double worst = 0;
    for (int i = 0; i < 1000000; i++) {
        double x = -708 + 1417 * ibrt_rng_uniform(&r);
        if (i % 4 == 0)
            x = -40 + 40 * ibrt_rng_uniform(&r);
        worst = fmax(worst, fabs(f(x) / exp(x) - 1));
    }
    for (int k = -1000; k <= 1000; k++) {
        double x = (k + 0.5) * 0.6931471805599453;
        for (int d = -2; d <= 2; d++) {
            double y = nextafter(x, d < 0 ? -INFINITY : INFINITY);
            if (y > -708 && y < 709)
                worst = fmax(worst, fabs(f(y) / exp(y) - 1));
        }
    }
    return worst;
}

static double plain_exp(double x) { return ibrt_exp(x); }
static double softmax_exp(double x) { return ibrt_softmax_exp(x); }

/* ibrt_exp (ibrt_exp.h: the ziggurat's exp) and ibrt_softmax_exp (its
 * fused form) within 4 ulp (8.9e-16) of libm's exp; clamped, not 0, far
 * below */
Test(kernels, exp_matches_libm)
{
    double worst = exp_error(plain_exp), worst_fused = exp_error(softmax_exp);
    cr_assert_leq(worst, 4 * 2.220446049250313e-16, "ibrt_exp: worst relative error %g", worst);
    cr_assert_leq(worst_fused, 4 * 2.220446049250313e-16, "ibrt_softmax_exp: worst relative error %g", worst_fused);
    cr_assert_eq(ibrt_exp(0), 1.0);
    cr_assert_eq(ibrt_softmax_exp(0), 1.0);
    cr_assert_gt(ibrt_exp(-1000), 0.0, "clamped, not 0");
    cr_assert_gt(ibrt_softmax_exp(-1000), 0.0, "clamped, not 0");
}

#if defined(IBRT_SOFTMAX_EXP8)
/* the eight-lane exp gives the scalar one's bits, the clamps and -0
 * included */
Test(kernels, softmax_exp8_is_the_scalar_exp)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 6);
    double x[8], y[8];
    for (int i = 0; i < 100000; i++) {
        for (int l = 0; l < 8; l++)
            x[l] = -800 + 1600 * ibrt_rng_uniform(&r);
        if (i == 0) {
            x[0] = -INFINITY;
            x[1] = INFINITY;
            x[2] = -0.0;
            x[3] = 709.5;
        }
        _mm512_storeu_pd(y, ibrt_softmax_exp8(_mm512_loadu_pd(x)));
        for (int l = 0; l < 8; l++) {
            double e = ibrt_softmax_exp(x[l]);
            cr_assert(memcmp(&e, &y[l], sizeof e) == 0, "x = %a: %a, lanes %a", x[l], e, y[l]);
        }
    }
}
#endif

#if defined(__AVX2__)
/* ibrt_exp4 (the ziggurat's exp on four lanes, ibrt_rng_normals' AVX2
 * path) gives ibrt_exp's bits: over the whole range, the clamps and -0,
 * and densely over [-7, 0], where the ziggurat's exp(-x^2/2) lies */
Test(kernels, exp4_is_the_scalar_exp)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 8);
    double x[4], y[4];
    for (int i = 0; i < 200000; i++) {
        for (int l = 0; l < 4; l++)
            x[l] = i % 2 ? -7 * ibrt_rng_uniform(&r) : -800 + 1600 * ibrt_rng_uniform(&r);
        if (i == 0) {
            x[0] = -INFINITY;
            x[1] = INFINITY;
            x[2] = -0.0;
            x[3] = 709.5;
        } else if (i == 2) {
            x[0] = -708.0;
            x[1] = 709.0;
            x[2] = -707.9;
            x[3] = 708.9;
        }
        _mm256_storeu_pd(y, ibrt_exp4(_mm256_loadu_pd(x)));
        for (int l = 0; l < 4; l++) {
            double e = ibrt_exp(x[l]);
            cr_assert(memcmp(&e, &y[l], sizeof e) == 0, "x = %a: %a, lanes %a", x[l], e, y[l]);
        }
    }
}
#endif

#if defined(IBRT_SOFTMAX_EXP4)
/* the four-lane (AVX2) exp gives the scalar one's bits, the clamps, -0
 * and the extreme exponents included */
Test(kernels, softmax_exp4_is_the_scalar_exp)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 7);
    double x[4], y[4];
    for (int i = 0; i < 200000; i++) {
        for (int l = 0; l < 4; l++)
            x[l] = -800 + 1600 * ibrt_rng_uniform(&r);
        if (i == 0) {
            x[0] = -INFINITY;
            x[1] = INFINITY;
            x[2] = -0.0;
            x[3] = 709.5;
        } else if (i == 1) {
            x[0] = -708.0;
            x[1] = 709.0;
            x[2] = -707.9;
            x[3] = 708.9;
        }
        _mm256_storeu_pd(y, ibrt_softmax_exp4(_mm256_loadu_pd(x)));
        for (int l = 0; l < 4; l++) {
            double e = ibrt_softmax_exp(x[l]);
            cr_assert(memcmp(&e, &y[l], sizeof e) == 0, "x = %a: %a, lanes %a", x[l], e, y[l]);
        }
    }
}
#endif
