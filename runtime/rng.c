/*
 * rng.c: xoshiro256** (D. Blackman, S. Vigna, "Scrambled linear
 * pseudorandom number generators", ACM TOMS 2021) seeded by splitmix64,
 * and the Marsaglia polar method for normals.  Deterministic on every
 * platform: the same seed gives the same numbers.
 */
#include "ibrt_rng.h"

#include <assert.h>

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ibrt_rng_seed(ibrt_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

void ibrt_rng_fork(ibrt_rng *child, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ull * (stream + 1));
    ibrt_rng_seed(child, splitmix64(&x));
}

uint64_t ibrt_rng_next(ibrt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ibrt_rng_uniform(ibrt_rng *r) { return (double)(ibrt_rng_next(r) >> 11) * 0x1.0p-53; }

double ibrt_rng_normal(ibrt_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2 * ibrt_rng_uniform(r) - 1;
        v = 2 * ibrt_rng_uniform(r) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double m = sqrt(-2 * log(s) / s);
    r->spare = v * m;
    r->has_spare = 1;
    return u * m;
}

/* Lemire's nearly-divisionless method would be faster; rejection keeps it
 * exactly uniform and simple. */
size_t ibrt_rng_below(ibrt_rng *r, size_t n)
{
    assert(n > 0);
    if (n == 0)
        return 0;   /* no valid answer; 0 rather than a division by zero in release builds */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = ibrt_rng_next(r);
    while (x >= lim);
    return (size_t)(x % n);
}

void ibrt_rng_fill_normal(ibrt_rng *r, double *x, size_t n, double mean, double std)
{
    for (size_t i = 0; i < n; i++)
        x[i] = mean + std * ibrt_rng_normal(r);
}

void ibrt_rng_split(const ibrt_rng *parent, uint64_t stream, ibrt_rng *child)
{
    uint64_t x = stream;
    uint64_t seed = splitmix64(&x);
    for (int i = 0; i < 4; i++) {
        x ^= parent->s[i];
        seed ^= rotl(splitmix64(&x), 16 * i + 8);
    }
    ibrt_rng_seed(child, seed);
}

void ibrt_rng_fill_uniform(ibrt_rng *r, double *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * ibrt_rng_uniform(r);
}

void ibrt_rng_shuffle(ibrt_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = ibrt_rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* Algorithm S: index t (of n) is selected with probability
 * (k - selected) / (n - t), which makes every k-subset equally likely. */
void ibrt_rng_sample(ibrt_rng *r, size_t n, size_t k, size_t *out)
{
    assert(k <= n);
    size_t m = 0;
    for (size_t t = 0; t < n && m < k; t++)
        if (ibrt_rng_below(r, n - t) < k - m)
            out[m++] = t;
}
