/*
 * rng.c: xoshiro256** (D. Blackman, S. Vigna, "Scrambled linear
 * pseudorandom number generators", ACM TOMS 2021) seeded by splitmix64,
 * and the ziggurat method for normals.  Deterministic on every
 * platform: the same seed gives the same numbers.
 */
#include "ibrt_rng.h"

#include "ibrt_exp.h"

#include <assert.h>

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool zig_ready;   /* the ziggurat's tables (below) are filled */
static void zig_init(void);

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ibrt_rng_seed(ibrt_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!zig_ready)
        zig_init();
}

void ibrt_rng_fork(ibrt_rng *child, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ull * (stream + 1));
    ibrt_rng_seed(child, splitmix64(&x));
}

uint64_t ibrt_rng_next(ibrt_rng *r) { return ibrt_rng_next_inline(r); }

double ibrt_rng_uniform(ibrt_rng *r) { return (double)(ibrt_rng_next(r) >> 11) * 0x1.0p-53; }

/* Normals by the ziggurat method (G. Marsaglia, W. W. Tsang, "The
 * ziggurat method for generating random variables", J. Stat. Softw. 5(8),
 * 2000) in J. Doornik's ZIGNOR form ("An improved ziggurat method to
 * generate normal random samples", 2005): 128 layers of equal area V under
 * exp(-x^2/2), the base layer holding the tail beyond R.  One 64-bit draw
 * gives both the layer (its low 7 bits) and the 53-bit uniform (its high
 * bits), which are independent bits of xoshiro256**'s output, so 97.2% of
 * normals (those inside their layer's rectangle; the mean over the layers
 * of 1 - ratio is 2.76%) cost one draw and no transcendental function. */
enum { ZIG_C = 128 };
static const double ZIG_R = 3.442619855899, ZIG_V = 9.91256303526217e-3;
static ibrt_zig zig;

/* x[i]: right edge of layer i (x[0] = V / f(R) for the base layer with
 * its tail, x[1] = R, x[C] = 0); ratio[i] = x[i+1] / x[i], the part of
 * layer i that lies wholly under the density; f[i] = f(x[i]), the heights
 * between which layer i's wedge lies (f[i] <= f <= f[i+1]). */
static void zig_init(void)
{
    double f = exp(-0.5 * ZIG_R * ZIG_R);
    zig.x[0] = ZIG_V / f;
    zig.x[1] = ZIG_R;
    zig.x[ZIG_C] = 0;
    for (int i = 2; i < ZIG_C; i++) {
        zig.x[i] = sqrt(-2 * log(ZIG_V / zig.x[i - 1] + f));
        f = exp(-0.5 * zig.x[i] * zig.x[i]);
    }
    for (int i = 0; i < ZIG_C; i++)
        zig.ratio[i] = zig.x[i + 1] / zig.x[i];
    for (int i = 0; i < ZIG_C; i++) {
        zig.xr[i][0] = zig.x[i];
        zig.xr[i][1] = zig.ratio[i];
    }
    for (int i = 0; i <= ZIG_C; i++)
        zig.f[i] = exp(-0.5 * zig.x[i] * zig.x[i]);
    zig_ready = true;
}

const ibrt_zig *ibrt_rng_zig(void)
{
    if (!zig_ready)
        zig_init();
    return &zig;
}

/* uniform in (0, 1]: log() of it is finite */
static double uniform_pos(ibrt_rng *r) { return (double)((ibrt_rng_next(r) >> 11) + 1) * 0x1.0p-53; }

/* The tail beyond R (Marsaglia 1964). */
static double zig_tail(ibrt_rng *r, bool negative)
{
    double x, y;
    do {
        x = log(uniform_pos(r)) / ZIG_R;
        y = log(uniform_pos(r));
    } while (-2 * y < x * x);
    return negative ? x - ZIG_R : ZIG_R - x;
}

/* The 53-bit uniform of a draw, mapped to (-1, 1), and its layer. */
static double zig_u(uint64_t b) { return 2 * ((double)(int64_t)(b >> 11) * 0x1.0p-53) - 1; }

/* The wedge or tail test of a draw b that missed its layer's rectangle,
 * given fx = exp(-x^2/2) (ibrt_exp) for its x = u x[i], unused in the base
 * layer: true with the normal in *z, false when b is rejected. */
static bool zig_wedge(ibrt_rng *r, uint64_t b, double fx, double *z)
{
    double u = zig_u(b);
    unsigned i = (unsigned)(b & (ZIG_C - 1));
    if (i == 0) {
        *z = zig_tail(r, u < 0);
        return true;
    }
    /* the wedge between the rectangle and the curve: accept x when a
     * height uniform on [f(x[i]), f(x[i+1])] lies under f(x) */
    *z = u * zig.x[i];
    return zig.f[i + 1] + ibrt_rng_uniform(r) * (zig.f[i] - zig.f[i + 1]) < fx;
}

double ibrt_rng_normal_from(ibrt_rng *r, uint64_t b)
{
    for (;; b = ibrt_rng_next(r)) {   /* a rejected draw starts again with a fresh one */
        double u = zig_u(b), z;
        unsigned i = (unsigned)(b & (ZIG_C - 1));
        if (fabs(u) < zig.ratio[i])   /* inside the layer's rectangle under the curve */
            return u * zig.x[i];
        double x = u * zig.x[i];
        if (zig_wedge(r, b, ibrt_exp(-0.5 * x * x), &z))
            return z;
    }
}

double ibrt_rng_normal_miss(ibrt_rng *r, uint64_t b, double fx)
{
    double z;
    return zig_wedge(r, b, fx, &z) ? z : ibrt_rng_normal_from(r, ibrt_rng_next(r));
}

double ibrt_rng_normal(ibrt_rng *r)
{
    if (!zig_ready)
        zig_init();
    return ibrt_rng_normal_from(r, ibrt_rng_next(r));
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
