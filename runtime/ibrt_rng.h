/*
 * ibrt_rng.h: more of the random number generator of ibrt.h (xoshiro256**
 * seeded by splitmix64, ziggurat normals).
 *
 * ibrt_rng_split derives a child stream from a parent's current state
 * without advancing the parent: the parent's four words and the stream
 * number are folded through splitmix64 into a new seed, so children of
 * different stream numbers are unrelated and a child never depends on how
 * many draws its siblings make.  ibrt_rng_fork (ibrt.h) does the same from
 * a (seed, stream) pair, which is what the trainers use.
 *
 * ibrt_rng_normals fills a buffer with normals several times faster than
 * ibrt_rng_normal value by value: eight xoshiro256** lanes, seeded for the
 * call from eight draws of the stream, advance together in vector
 * registers.  It is static inline so that each trainer compiles it for
 * its own instruction set (AVX-512 lanes where the machine has them, two
 * halves of four AVX2 lanes where it has those); the values are the same
 * on every instruction set (test_rt_rng, built once per x86-64 level).
 *
 * None of these allocate; all are deterministic on every platform (only
 * integer arithmetic and IEEE double operations with a fixed evaluation
 * order).
 */
#ifndef IBRT_RNG_H
#define IBRT_RNG_H

#include "ibrt.h"
#include "ibrt_exp.h"

#include <math.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

void ibrt_rng_split(const ibrt_rng *parent, uint64_t stream, ibrt_rng *child);
/* x[i] ~ U(lo, hi). */
void ibrt_rng_fill_uniform(ibrt_rng *r, double *x, size_t n, double lo, double hi);
/* Fisher-Yates (Durstenfeld) shuffle of idx[0..n): every permutation has
 * probability 1/n! because ibrt_rng_below is exactly uniform. */
void ibrt_rng_shuffle(ibrt_rng *r, size_t *idx, size_t n);
/* k distinct indices of [0, n) in increasing order, each k-subset equally
 * likely: Knuth's selection sampling (TAOCP vol. 2, 3.4.2, Algorithm S),
 * O(n) time and no memory beyond out[0..k).  Requires k <= n. */
void ibrt_rng_sample(ibrt_rng *r, size_t n, size_t k, size_t *out);

/* The ziggurat's 128 layers (rng.c): right edges x[0..128], the part
 * ratio[i] = x[i+1] / x[i] of layer i wholly under the density, and the
 * density's heights f[i] = exp(-x[i]^2 / 2) at the edges.  Filled on
 * first use. */
typedef struct {
    double x[129], ratio[128], f[129];
} ibrt_zig;
const ibrt_zig *ibrt_rng_zig(void);
/* N(0, 1) by the ziggurat from the draw b (already taken from some
 * stream): u in (-1, 1) from its high 53 bits, the layer from its low 7;
 * when b falls outside its layer's rectangle, the wedge or tail test and
 * any fresh start draw from r.  ibrt_rng_normal(r) is
 * ibrt_rng_normal_from(r, ibrt_rng_next(r)). */
double ibrt_rng_normal_from(ibrt_rng *r, uint64_t b);
/* The same for a draw b known to miss its rectangle, given fx = exp(-x^2/2)
 * (ibrt_exp) for its x = u x[layer] (unused in the base layer): so a
 * caller can compute the exps of many misses at once. */
double ibrt_rng_normal_miss(ibrt_rng *r, uint64_t b, double fx);

/* Fills shorter than this draw value by value from r: seeding the lanes
 * (8 draws and 32 splitmix64 steps) costs more than the lanes save. */
enum { IBRT_RNG_NORMALS_MIN = 64 };

typedef uint64_t ibrt_u64x8 __attribute__((vector_size(64)));

/* splitmix64 (Steele, Lea, Flood 2014) on eight states at once */
static inline void ibrt_rng_splitmix8(ibrt_u64x8 *x, ibrt_u64x8 *out)
{
    ibrt_u64x8 z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    *out = z ^ (z >> 31);
}

/* x[i] = mean + sd * N(0, 1), i < n.  Lane l (of 8) is xoshiro256** seeded
 * like ibrt_rng_seed from the l-th of eight draws of r, and gives x[i] for
 * i = l mod 8 (which the lane-by-lane definition in test_rt_rng.c
 * spells out); the 2.8% of draws that miss their ziggurat rectangle
 * finish as in ibrt_rng_normal_from, whose further draws come from r in
 * index order.  So the values depend only on r's state, r advances by 8 draws
 * plus those of the misses, and a fill is as reproducible (and
 * checkpointable, r being the only state) as value-by-value draws, though
 * its values differ from theirs.  Every lane operation is exact integer
 * arithmetic and the double operations are those of ibrt_rng_normal, so
 * all instruction sets give the same bits. */
static inline void ibrt_rng_normals(ibrt_rng *restrict r, double *restrict x, long n, double mean, double sd)
{
    if (n < IBRT_RNG_NORMALS_MIN) {   /* value by value */
        ibrt_rng_fill_normal(r, x, n > 0 ? (size_t)n : 0, mean, sd);
        return;
    }
    const ibrt_zig *zg = ibrt_rng_zig();
    ibrt_u64x8 w, s0, s1, s2, s3;
    for (int l = 0; l < 8; l++)
        w[l] = ibrt_rng_next(r);
    ibrt_rng_splitmix8(&w, &s0);
    ibrt_rng_splitmix8(&w, &s1);
    ibrt_rng_splitmix8(&w, &s2);
    ibrt_rng_splitmix8(&w, &s3);
    /* Misses are put aside (index and draw) and finished after each chunk
     * of values, still in index order: the lanes never read r, so this
     * gives the same values as finishing each at once, and the vector loop
     * keeps its state in registers, with no call and no branch on a miss. */
    enum { CHUNK = 512 };
    long mi[CHUNK + 8];   /* + 8: each group stores eight entries */
    uint64_t mb[CHUNK + 8];
    for (long c0 = 0; c0 < n; c0 += CHUNK) {
        long c1 = n - c0 < CHUNK ? n : c0 + CHUNK, nm = 0;
        for (long i = c0; i < c1; i += 8) {
            /* xoshiro256**: result rotl(s1 * 5, 7) * 9, then the linear step */
            ibrt_u64x8 m5 = s1 * 5, b = ((m5 << 7) | (m5 >> 57)) * 9, t = s1 << 17;
            s2 ^= s0;
            s3 ^= s1;
            s1 ^= s2;
            s0 ^= s3;
            s2 ^= t;
            s3 = (s3 << 45) | (s3 >> 19);
            /* the rectangle test of ibrt_rng_normal_from on the 8 draws:
             * u = 2 (b >> 11) 2^-53 - 1, layer k = b & 127, inside when
             * |u| < ratio[k], then the normal is u x[k] */
            int m = c1 - i < 8 ? (int)(c1 - i) : 8;   /* lanes in use: all but at the end */
            unsigned use = (1u << m) - 1;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
            __m512i bi = (__m512i)b, k = _mm512_and_si512(bi, _mm512_set1_epi64(127));
            __m512d u = _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_srli_epi64(bi, 11)), _mm512_set1_pd(0x1.0p-53));
            u = _mm512_sub_pd(_mm512_add_pd(u, u), _mm512_set1_pd(1.0));
            __m512d zv = _mm512_mul_pd(u, _mm512_i64gather_pd(k, zg->x, 8));
            __mmask8 miss =
                (__mmask8)(use & ~(unsigned)_mm512_cmp_pd_mask(_mm512_abs_pd(u), _mm512_i64gather_pd(k, zg->ratio, 8),
                                                                _CMP_LT_OQ));
            _mm512_mask_storeu_pd(x + i, (__mmask8)use,
                                  _mm512_add_pd(_mm512_set1_pd(mean), _mm512_mul_pd(_mm512_set1_pd(sd), zv)));
            __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(i), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
            /* compressed in registers, then stored whole: AMD's compress to
             * memory is microcoded and was 12% of the fill */
            _mm512_storeu_si512(mi + nm, _mm512_maskz_compress_epi64(miss, idx));
            _mm512_storeu_si512(mb + nm, _mm512_maskz_compress_epi64(miss, bi));
            nm += __builtin_popcount(miss);
#elif defined(__AVX2__)
            /* two halves of four lanes; (double) of the 53-bit b >> 11 from
             * its two 32-bit halves through the exponent-bias trick (each
             * exact, and so is their sum), the value the scalar cast gives */
            /* the halves taken in registers: through memory (a copy of b
             * stored as four 16-byte pieces, read as 32-byte halves), each
             * load waited for the stores (no store forwarding): 17% of the
             * AVX2 fill */
            const __m256i half[2] = { (__m256i)__builtin_shufflevector(b, b, 0, 1, 2, 3),
                                      (__m256i)__builtin_shufflevector(b, b, 4, 5, 6, 7) };
            for (int h = 0; h < 8; h += 4) {
                __m256i bi = half[h / 4], v = _mm256_srli_epi64(bi, 11);
                __m256d lo = _mm256_sub_pd(
                    _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi64x(0xffffffff)),
                                                        _mm256_set1_epi64x(0x4330000000000000))),
                    _mm256_set1_pd(0x1.0p52));
                __m256d hi = _mm256_sub_pd(
                    _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(v, 32), _mm256_set1_epi64x(0x4530000000000000))),
                    _mm256_set1_pd(0x1.0p84));
                __m256d u = _mm256_mul_pd(_mm256_add_pd(hi, lo), _mm256_set1_pd(0x1.0p-53));
                u = _mm256_sub_pd(_mm256_add_pd(u, u), _mm256_set1_pd(1.0));
                __m256i k = _mm256_and_si256(bi, _mm256_set1_epi64x(127));
                __m256d zv = _mm256_mul_pd(u, _mm256_i64gather_pd(zg->x, k, 8));
                __m256d au = _mm256_andnot_pd(_mm256_set1_pd(-0.0), u);
                unsigned in = (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(au, _mm256_i64gather_pd(zg->ratio, k, 8), _CMP_LT_OQ));
                unsigned hu = (use >> h) & 15u;
                __m256i lanes = _mm256_cmpgt_epi64(_mm256_set1_epi64x(m - h), _mm256_set_epi64x(3, 2, 1, 0));
                __m256d xv = _mm256_add_pd(_mm256_set1_pd(mean), _mm256_mul_pd(_mm256_set1_pd(sd), zv));
                if (m == 8)   /* every lane: a plain store (AMD's masked one is slow) */
                    _mm256_storeu_pd(x + i + h, xv);
                else
                    _mm256_maskstore_pd(x + i + h, lanes, xv);
                for (unsigned miss = hu & ~in; miss; miss &= miss - 1) {
                    int l = __builtin_ctz(miss);
                    mi[nm] = i + h + l;
                    mb[nm++] = b[h + l];
                }
            }
#else
            for (int l = 0; l < m; l++) {
                double u = 2 * ((double)(int64_t)(b[l] >> 11) * 0x1.0p-53) - 1;
                unsigned k = (unsigned)(b[l] & 127);
                x[i + l] = mean + sd * (u * zg->x[k]);
                if (!(fabs(u) < zg->ratio[k])) {
                    mi[nm] = i + l;
                    mb[nm++] = b[l];
                }
            }
            (void)use;
#endif
        }
        /* the misses' exp(-x^2/2), eight at a time in vector lanes */
        double fx[CHUNK];
        for (long q = nm; q < (nm + 7) / 8 * 8; q++)
            mb[q] = 0;
        for (long q0 = 0; q0 < nm; q0 += 8)
            for (int l = 0; l < 8; l++) {   /* not unrolled: the loop vectoriser if-converts ibrt_exp's clamp */
                uint64_t bq = mb[q0 + l];
                double xq = (2 * ((double)(int64_t)(bq >> 11) * 0x1.0p-53) - 1) * zg->x[bq & 127];
                fx[q0 + l] = ibrt_exp(-0.5 * xq * xq);
            }
        for (long q = 0; q < nm; q++)
            x[mi[q]] = mean + sd * ibrt_rng_normal_miss(r, mb[q], fx[q]);
    }
}

#endif
