/* test_rt_rng.c: xoshiro256** / splitmix64 against an independent
 * implementation written here from the published definitions, and the
 * distributions of the derived draws within statistically justified
 * bounds (fixed seeds, so each test is deterministic). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ibrt_rng.h"
#include "ibrt_verify.h"

/* splitmix64 (Steele, Lea, Flood 2014), as published by Vigna */
static uint64_t ref_splitmix(uint64_t *x)
{
    uint64_t z = *x = *x + UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* xoshiro256** 1.0 (Blackman, Vigna) */
static uint64_t ref_next(uint64_t s[4])
{
    uint64_t x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

Test(rng, matches_reference_definitions)
{
    uint64_t x = 0, s[4];
    /* the well-known first splitmix64 output from state 0 */
    uint64_t first = ref_splitmix(&x);
    cr_assert_eq(first, UINT64_C(0xe220a8397b1dcdaf));
    x = 0;
    for (int i = 0; i < 4; i++)
        s[i] = ref_splitmix(&x);
    ibrt_rng r;
    ibrt_rng_seed(&r, 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t want = ref_next(s);
        cr_assert_eq(ibrt_rng_next(&r), want, "draw %d", i);
    }
    /* another seed, and the 53-bit uniform built from the same words */
    x = UINT64_C(12345);
    for (int i = 0; i < 4; i++)
        s[i] = ref_splitmix(&x);
    ibrt_rng_seed(&r, 12345);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(ibrt_rng_uniform(&r), (double)(ref_next(s) >> 11) * 0x1.0p-53);
}

Test(rng, reproducible_and_seed_sensitive)
{
    ibrt_rng a, b, c;
    ibrt_rng_seed(&a, 7);
    ibrt_rng_seed(&b, 7);
    ibrt_rng_seed(&c, 8);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(ibrt_rng_normal(&a), ibrt_rng_normal(&b));
        same += ibrt_rng_next(&a) == ibrt_rng_next(&c);
        ibrt_rng_next(&b);
    }
    cr_assert_eq(same, 0);
}

Test(rng, fork_and_split_streams)
{
    ibrt_rng a, b, c;
    ibrt_rng_fork(&a, 42, 0);
    ibrt_rng_fork(&b, 42, 0);
    ibrt_rng_fork(&c, 42, 1);
    cr_assert_eq(memcmp(a.s, b.s, sizeof a.s), 0);
    cr_assert_neq(ibrt_rng_next(&a), ibrt_rng_next(&c));
    ibrt_rng parent, before, k0, k1, k0again;
    ibrt_rng_seed(&parent, 3);
    before = parent;
    ibrt_rng_split(&parent, 0, &k0);
    ibrt_rng_split(&parent, 1, &k1);
    ibrt_rng_split(&parent, 0, &k0again);
    cr_assert_eq(memcmp(parent.s, before.s, sizeof parent.s), 0, "the parent is not advanced");
    cr_assert_eq(memcmp(k0.s, k0again.s, sizeof k0.s), 0);
    cr_assert_neq(memcmp(k0.s, k1.s, sizeof k0.s), 0);
    cr_assert_neq(memcmp(k0.s, parent.s, sizeof k0.s), 0);
}

/* n = 200000 normals: the sample mean has standard error 1/sqrt(n) =
 * 0.00224 and the sample variance sqrt(2/n) = 0.00316; 5 standard errors
 * (two-sided p ~ 6e-7) are the bounds.  KS against Phi at p > 1e-3. */
static double phi(double x, void *ctx)
{
    (void)ctx;
    return 0.5 * erfc(-x / sqrt(2.0));
}

Test(rng, normal_moments_and_shape)
{
    enum { N = 200000 };
    static double x[N];
    ibrt_rng r;
    ibrt_rng_seed(&r, 2024);
    ibrt_rng_fill_normal(&r, x, N, 0, 1);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++)
        m += x[i];
    m /= N;
    for (int i = 0; i < N; i++)
        v += (x[i] - m) * (x[i] - m);
    v /= N - 1;
    cr_assert_lt(fabs(m), 5 / sqrt((double)N), "mean %g", m);
    cr_assert_lt(fabs(v - 1), 5 * sqrt(2.0 / N), "variance %g", v);
    double D, p;
    ibrt_error e;
    cr_assert_eq(ibrt_ks_test(x, N, phi, NULL, &D, &p, &e), IBRT_OK);
    cr_assert_gt(p, 1e-3, "KS D %g p %g", D, p);
    /* mean and std are applied */
    ibrt_rng_fill_normal(&r, x, N, 3, 0.5);
    m = 0;
    for (int i = 0; i < N; i++)
        m += x[i];
    cr_assert_lt(fabs(m / N - 3), 5 * 0.5 / sqrt((double)N));
}

/* The ziggurat's tail (beyond R = 3.4426, its base layer) and its wedges
 * are the rare paths: the tail mass 2 (1 - Phi(R)) = 5.76e-4 and the
 * fourth moment 3 are checked on 2 million draws (binomial sd about 34 of
 * 1152 expected; the fourth moment's sd is sqrt(96 / N) = 0.007). */
Test(rng, normal_tail_and_kurtosis)
{
    enum { N = 2000000 };
    ibrt_rng r;
    ibrt_rng_seed(&r, 99);
    double tail = 0, m4 = 0, expect = N * erfc(3.442619855899 / sqrt(2.0));
    for (int i = 0; i < N; i++) {
        double x = ibrt_rng_normal(&r);
        tail += fabs(x) > 3.442619855899;
        m4 += x * x * x * x / N;
    }
    cr_assert_lt(fabs(tail - expect), 5 * sqrt(expect), "tail %g, expected %g", tail, expect);
    cr_assert_lt(fabs(m4 - 3), 5 * sqrt(96.0 / N), "fourth moment %g", m4);
}

/* ibrt_rng_normals as its header defines it, written out lane by lane:
 * lane l is a generator seeded (as ibrt_rng_seed does) with the l-th of 8
 * draws of r and gives x[i] for i = l mod 8; a draw outside its layer's
 * rectangle finishes in ibrt_rng_normal_from on r, in index order.  This
 * test is built once per x86-64 level (Makefile), so on a machine with
 * AVX-512 its x86-64-v4 build compares the vector path; the other builds,
 * and the sanitizer build, compare the portable path. */
static void ref_normals(ibrt_rng *r, double *x, long n, double mean, double sd)
{
    if (n < IBRT_RNG_NORMALS_MIN) {
        for (long i = 0; i < n; i++)
            x[i] = mean + sd * ibrt_rng_normal(r);
        return;
    }
    ibrt_rng lane[8];
    for (int l = 0; l < 8; l++)
        ibrt_rng_seed(&lane[l], ibrt_rng_next(r));
    const ibrt_zig *z = ibrt_rng_zig();
    for (long i = 0; i < n; i++) {
        uint64_t b = ibrt_rng_next(&lane[i % 8]);
        double u = 2 * ((double)(b >> 11) * 0x1.0p-53) - 1;
        unsigned k = (unsigned)(b & 127);
        x[i] = mean + sd * (fabs(u) < z->ratio[k] ? u * z->x[k] : ibrt_rng_normal_from(r, b));
    }
}

Test(rng, normals_match_their_definition)
{
    enum { N = 5000 };
    static double a[N], b[N];
    ibrt_rng r1, r2;
    ibrt_rng_seed(&r1, 77);
    ibrt_rng_seed(&r2, 77);
    /* lengths below the lane threshold, at it, with a partial last block,
     * and long enough to meet wedge and tail draws */
    long lens[] = { 1, 24, 63, 64, 65, 100, 1023, 2048, N };
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        ibrt_rng_normals(&r1, a, lens[t], 0.5, 2.0);
        ref_normals(&r2, b, lens[t], 0.5, 2.0);
        for (long i = 0; i < lens[t]; i++)
            cr_assert_eq(a[i], b[i], "length %ld, index %ld: %.17g vs %.17g", lens[t], i, a[i], b[i]);
        cr_assert_eq(memcmp(&r1, &r2, sizeof r1), 0, "length %ld: the stream advanced differently", lens[t]);
    }
    /* below the threshold it is ibrt_rng_normal value by value */
    ibrt_rng_seed(&r1, 5);
    ibrt_rng_seed(&r2, 5);
    ibrt_rng_normals(&r1, a, 40, 0, 1);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(a[i], ibrt_rng_normal(&r2));
}

/* The lanes' normals in bulk: 2 million draws in fills of 2048 (E2's input
 * batch) and 1000 (a partial last block).  Bounds as in the two tests
 * above (5 standard errors), plus the lag-1 and lag-8 autocorrelations
 * (neighbouring lanes, and one lane's consecutive draws), whose standard
 * error is 1/sqrt(N) = 7.1e-4. */
Test(rng, normals_in_bulk_are_normal)
{
    enum { N = 2000000 };
    static double x[N];
    ibrt_rng r;
    ibrt_rng_seed(&r, 31337);
    for (long i = 0; i < N;) {
        long n = (i / 2048) % 2 ? 1000 : 2048;
        n = n < N - i ? n : N - i;
        ibrt_rng_normals(&r, x + i, n, 0, 1);
        i += n;
    }
    double m = 0, v = 0, m4 = 0, tail = 0, c1 = 0, c8 = 0, expect = N * erfc(3.442619855899 / sqrt(2.0));
    for (int i = 0; i < N; i++) {
        m += x[i] / N;
        v += x[i] * x[i] / N;
        m4 += x[i] * x[i] * x[i] * x[i] / N;
        tail += fabs(x[i]) > 3.442619855899;
        if (i >= 1)
            c1 += x[i] * x[i - 1] / N;
        if (i >= 8)
            c8 += x[i] * x[i - 8] / N;
    }
    cr_assert_lt(fabs(m), 5 / sqrt((double)N), "mean %g", m);
    cr_assert_lt(fabs(v - 1), 5 * sqrt(2.0 / N), "variance %g", v);
    cr_assert_lt(fabs(m4 - 3), 5 * sqrt(96.0 / N), "fourth moment %g", m4);
    cr_assert_lt(fabs(tail - expect), 5 * sqrt(expect), "tail %g, expected %g", tail, expect);
    cr_assert_lt(fabs(c1), 5 / sqrt((double)N), "lag-1 correlation %g", c1);
    cr_assert_lt(fabs(c8), 5 / sqrt((double)N), "lag-8 correlation %g", c8);
    double D, p;
    ibrt_error e;
    cr_assert_eq(ibrt_ks_test(x, 200000, phi, NULL, &D, &p, &e), IBRT_OK);
    cr_assert_gt(p, 1e-3, "KS D %g p %g", D, p);
}

/* 7 cells, 70000 draws: chi-square with 6 degrees of freedom, 22.46 is its
 * 0.999 quantile. */
Test(rng, below_is_uniform)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 99);
    long count[7] = { 0 };
    for (int i = 0; i < 70000; i++) {
        size_t k = ibrt_rng_below(&r, 7);
        cr_assert_lt(k, 7);
        count[k]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 7; k++)
        chi2 += (count[k] - 10000.0) * (count[k] - 10000.0) / 10000.0;
    cr_assert_lt(chi2, 22.46, "chi2 %g", chi2);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(ibrt_rng_below(&r, 1), 0);
}

Test(rng, uniform_range)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 5);
    double x[10000];
    ibrt_rng_fill_uniform(&r, x, 10000, -2, 3);
    double lo = 1e9, hi = -1e9;
    for (int i = 0; i < 10000; i++)
        lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    cr_assert(lo >= -2 && hi < 3 && lo < -1.99 && hi > 2.99, "[%g, %g]", lo, hi);
}

Test(rng, shuffle_is_a_permutation_and_unbiased)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 1);
    /* position of element 0 after shuffling 5 items, 50000 times:
     * chi-square with 4 dof, 0.999 quantile 18.47 */
    long pos[5] = { 0 };
    for (int t = 0; t < 50000; t++) {
        size_t idx[5] = { 0, 1, 2, 3, 4 };
        ibrt_rng_shuffle(&r, idx, 5);
        int seen = 0;
        for (int i = 0; i < 5; i++) {
            seen |= 1 << idx[i];
            if (idx[i] == 0)
                pos[i]++;
        }
        cr_assert_eq(seen, 31);
    }
    double chi2 = 0;
    for (int i = 0; i < 5; i++)
        chi2 += (pos[i] - 10000.0) * (pos[i] - 10000.0) / 10000.0;
    cr_assert_lt(chi2, 18.47, "chi2 %g", chi2);
}

Test(rng, sample_without_replacement)
{
    ibrt_rng r;
    ibrt_rng_seed(&r, 11);
    size_t out[10];
    long hits[10] = { 0 };
    /* 3 of 10, 30000 times: each index is chosen with probability 3/10
     * (9000 expected hits, sd sqrt(30000 * 0.21) = 79; bound 5 sd) */
    for (int t = 0; t < 30000; t++) {
        ibrt_rng_sample(&r, 10, 3, out);
        cr_assert(out[0] < out[1] && out[1] < out[2] && out[2] < 10);
        for (int i = 0; i < 3; i++)
            hits[out[i]]++;
    }
    for (int i = 0; i < 10; i++)
        cr_assert_lt(fabs(hits[i] - 9000.0), 5 * sqrt(30000 * 0.21), "index %d: %ld", i, hits[i]);
    ibrt_rng_sample(&r, 10, 10, out);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(out[i], i);
}
