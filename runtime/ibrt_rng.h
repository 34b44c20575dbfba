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
    /* xr[i] = { x[i], ratio[i] }: the two values a draw of layer i needs,
     * in one 16-byte load (the AVX2 lanes) */
    _Alignas(16) double xr[128][2];
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

/* ibrt_rng_next, inline: the body rng.c's ibrt_rng_next calls, for the
 * loops of ibrt_rng_normals below */
static inline uint64_t ibrt_rng_next_inline(ibrt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return result;
}

/* ibrt_rng_normal and ibrt_rng_uniform inline, for loops that draw one
 * value at a time (the stationary-law chains, verify.c): the same draws
 * and values; the 2.8% of draws outside their rectangle go on in
 * ibrt_rng_normal_from with the same b.  zg: ibrt_rng_zig(). */
static inline double ibrt_rng_normal_inline(ibrt_rng *r, const ibrt_zig *zg)
{
    uint64_t b = ibrt_rng_next_inline(r);
    double u = 2 * ((double)(int64_t)(b >> 11) * 0x1.0p-53) - 1;
    unsigned k = (unsigned)(b & 127);
    return fabs(u) < zg->ratio[k] ? u * zg->x[k] : ibrt_rng_normal_from(r, b);
}

static inline double ibrt_rng_uniform_inline(ibrt_rng *r) { return (double)(ibrt_rng_next_inline(r) >> 11) * 0x1.0p-53; }

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

#if defined(__AVX2__) && !(defined(__AVX512F__) && defined(__AVX512DQ__))
#define IBRT_RNG_AVX2 1
/* The AVX2 form of the eight lanes: two halves of four, each state word
 * in a 256-bit register (GCC's 8-lane vectors split in two kept part of
 * the state in general registers and on the stack). */
typedef struct {
    __m256i s0, s1, s2, s3;
} ibrt_rng_lanes4;

static inline __m256i ibrt_rng_rotl4(__m256i v, int k)
{
    return _mm256_or_si256(_mm256_slli_epi64(v, k), _mm256_srli_epi64(v, 64 - k));
}

/* For the four-bit mask m of a register's lanes, the 32-bit lane indices
 * that bring lanes l with bit l set to the front, in order
 * (vpermd): a register of draws compressed as AVX-512 does in one
 * instruction */
static _Alignas(32) const int32_t ibrt_rng_compress4[16][8] = {
    { 0, 0, 0, 0, 0, 0, 0, 0 }, { 0, 1, 0, 0, 0, 0, 0, 0 }, { 2, 3, 0, 0, 0, 0, 0, 0 }, { 0, 1, 2, 3, 0, 0, 0, 0 },
    { 4, 5, 0, 0, 0, 0, 0, 0 }, { 0, 1, 4, 5, 0, 0, 0, 0 }, { 2, 3, 4, 5, 0, 0, 0, 0 }, { 0, 1, 2, 3, 4, 5, 0, 0 },
    { 6, 7, 0, 0, 0, 0, 0, 0 }, { 0, 1, 6, 7, 0, 0, 0, 0 }, { 2, 3, 6, 7, 0, 0, 0, 0 }, { 0, 1, 2, 3, 6, 7, 0, 0 },
    { 4, 5, 6, 7, 0, 0, 0, 0 }, { 0, 1, 4, 5, 6, 7, 0, 0 }, { 2, 3, 4, 5, 6, 7, 0, 0 }, { 0, 1, 2, 3, 4, 5, 6, 7 },
};

/* xoshiro256** on four lanes: the products by 5 and 9 as x + (x << 2)
 * and x + (x << 3) (the same integers mod 2^64; AVX2 has no 64-bit
 * multiply) */
static inline __m256i ibrt_rng_xoshiro4(ibrt_rng_lanes4 *q)
{
    __m256i m5 = _mm256_add_epi64(q->s1, _mm256_slli_epi64(q->s1, 2)), r7 = ibrt_rng_rotl4(m5, 7);
    __m256i b = _mm256_add_epi64(r7, _mm256_slli_epi64(r7, 3)), t = _mm256_slli_epi64(q->s1, 17);
    q->s2 = _mm256_xor_si256(q->s2, q->s0);
    q->s3 = _mm256_xor_si256(q->s3, q->s1);
    q->s1 = _mm256_xor_si256(q->s1, q->s2);
    q->s0 = _mm256_xor_si256(q->s0, q->s3);
    q->s2 = _mm256_xor_si256(q->s2, t);
    q->s3 = ibrt_rng_rotl4(q->s3, 45);
    return b;
}

/* The rectangle test of ibrt_rng_normal_from on four draws b: *z = mean +
 * sd u x[k], and the lanes that miss (bits 0-3).  u = 2 (b >> 11) 2^-53 - 1
 * is formed as d - c: d = 1 + f 2^-52, f the low 52 bits of b >> 11 put in
 * the mantissa of 1.0, and c = 1 when b's top bit (the 53rd of b >> 11) is
 * set, else 2.  Both forms are exact (a 53-bit integer over 2^52, minus 1),
 * so they give the same double, with no integer-to-double conversion
 * (AVX2 has none for 64-bit integers). */
static inline unsigned ibrt_rng_zig4(__m256i b, const uint64_t *bl, const ibrt_zig *zg, __m256d mean, __m256d sd,
                                     __m256d *z)
{
    __m256i f = _mm256_srli_epi64(_mm256_slli_epi64(b, 1), 12);
    __m256d d = _mm256_castsi256_pd(_mm256_or_si256(f, _mm256_set1_epi64x(0x3ff0000000000000)));
    __m256d u = _mm256_sub_pd(d, _mm256_blendv_pd(_mm256_set1_pd(2.0), _mm256_set1_pd(1.0), _mm256_castsi256_pd(b)));
    /* x[k] and ratio[k] of the four layers k: (x, ratio) of lanes 0 and 2,
     * of lanes 1 and 3, then unpacked */
    __m256d p02 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_load_pd(zg->xr[bl[0] & 127])),
                                       _mm_load_pd(zg->xr[bl[2] & 127]), 1);
    __m256d p13 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_load_pd(zg->xr[bl[1] & 127])),
                                       _mm_load_pd(zg->xr[bl[3] & 127]), 1);
    __m256d xk = _mm256_unpacklo_pd(p02, p13), rk = _mm256_unpackhi_pd(p02, p13);
    __m256d in = _mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), u), rk, _CMP_LT_OQ);
    *z = _mm256_add_pd(mean, _mm256_mul_pd(sd, _mm256_mul_pd(u, xk)));
    return ~(unsigned)_mm256_movemask_pd(in) & 15u;
}
#endif

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
#ifdef IBRT_RNG_AVX2
    /* lanes 0-3 and 4-7 */
    ibrt_rng_lanes4 qa = { (__m256i)__builtin_shufflevector(s0, s0, 0, 1, 2, 3),
                           (__m256i)__builtin_shufflevector(s1, s1, 0, 1, 2, 3),
                           (__m256i)__builtin_shufflevector(s2, s2, 0, 1, 2, 3),
                           (__m256i)__builtin_shufflevector(s3, s3, 0, 1, 2, 3) };
    ibrt_rng_lanes4 qb = { (__m256i)__builtin_shufflevector(s0, s0, 4, 5, 6, 7),
                           (__m256i)__builtin_shufflevector(s1, s1, 4, 5, 6, 7),
                           (__m256i)__builtin_shufflevector(s2, s2, 4, 5, 6, 7),
                           (__m256i)__builtin_shufflevector(s3, s3, 4, 5, 6, 7) };
    const __m256d vmean = _mm256_set1_pd(mean), vsd = _mm256_set1_pd(sd);
#endif
    for (long c0 = 0; c0 < n; c0 += CHUNK) {
        long c1 = n - c0 < CHUNK ? n : c0 + CHUNK, nm = 0;
        for (long i = c0; i < c1; i += 8) {
            int m = c1 - i < 8 ? (int)(c1 - i) : 8;   /* lanes in use: all but at the end */
            unsigned use = (1u << m) - 1;
#ifdef IBRT_RNG_AVX2
            /* the same steps as below, on two registers of four lanes */
            __m256i ba = ibrt_rng_xoshiro4(&qa), bb = ibrt_rng_xoshiro4(&qb);
            _Alignas(32) uint64_t bl[8];
            _mm256_store_si256((__m256i *)bl, ba);
            _mm256_store_si256((__m256i *)(bl + 4), bb);
            __m256d za, zb;
            unsigned miss =
                (ibrt_rng_zig4(ba, bl, zg, vmean, vsd, &za) | ibrt_rng_zig4(bb, bl + 4, zg, vmean, vsd, &zb) << 4) & use;
            if (m == 8) {   /* every lane: plain stores (AMD's masked one is slow) */
                _mm256_storeu_pd(x + i, za);
                _mm256_storeu_pd(x + i + 4, zb);
            } else {
                const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
                _mm256_maskstore_pd(x + i, _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), lane), za);
                _mm256_maskstore_pd(x + i + 4, _mm256_cmpgt_epi64(_mm256_set1_epi64x(m - 4), lane), zb);
            }
            /* the misses' indices and draws put aside without a branch
             * (a branch taken in 18% of groups, unpredictably, was 7% of
             * the fill): each register compressed, stored whole */
            IBRT_UNROLL
            for (int h = 0; h < 2; h++) {
                unsigned mh = (miss >> 4 * h) & 15u;
                __m256i c = _mm256_load_si256((const __m256i *)ibrt_rng_compress4[mh]);
                __m256i idx = _mm256_add_epi64(_mm256_set1_epi64x(i + 4 * h), _mm256_set_epi64x(3, 2, 1, 0));
                _mm256_storeu_si256((__m256i *)(mi + nm), _mm256_permutevar8x32_epi32(idx, c));
                _mm256_storeu_si256((__m256i *)(mb + nm), _mm256_permutevar8x32_epi32(h ? bb : ba, c));
                nm += __builtin_popcount(mh);
            }
#else
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
#endif
        }
        /* the misses' exp(-x^2/2), eight at a time in vector lanes */
        double fx[CHUNK];
        for (long q = nm; q < (nm + 7) / 8 * 8; q++)
            mb[q] = 0;
#ifdef IBRT_RNG_AVX2
        /* four lanes: u as in ibrt_rng_zig4, the exp as ibrt_exp (GCC
         * does not vectorise the loop below for AVX2) */
        for (long q0 = 0; q0 < nm; q0 += 4) {
            __m256i bq = _mm256_loadu_si256((const __m256i *)(mb + q0));
            __m256d d = _mm256_castsi256_pd(
                _mm256_or_si256(_mm256_srli_epi64(_mm256_slli_epi64(bq, 1), 12), _mm256_set1_epi64x(0x3ff0000000000000)));
            __m256d u = _mm256_sub_pd(d, _mm256_blendv_pd(_mm256_set1_pd(2.0), _mm256_set1_pd(1.0), _mm256_castsi256_pd(bq)));
            __m256d xq = _mm256_mul_pd(u, _mm256_i64gather_pd(zg->x, _mm256_and_si256(bq, _mm256_set1_epi64x(127)), 8));
            _mm256_storeu_pd(fx + q0, ibrt_exp4(_mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(-0.5), xq), xq)));
        }
#else
        for (long q0 = 0; q0 < nm; q0 += 8)
            for (int l = 0; l < 8; l++) {   /* not unrolled: the loop vectoriser if-converts ibrt_exp's clamp */
                uint64_t bq = mb[q0 + l];
                double xq = (2 * ((double)(int64_t)(bq >> 11) * 0x1.0p-53) - 1) * zg->x[bq & 127];
                fx[q0 + l] = ibrt_exp(-0.5 * xq * xq);
            }
#endif
        /* ibrt_rng_normal_miss, its wedge test written out here (the
         * same operations: no call for the 97% of misses outside the base
         * layer); the base layer's tail and a rejected draw's fresh start
         * call rng.c */
        for (long q = 0; q < nm; q++) {
            uint64_t bq = mb[q];
            unsigned k = (unsigned)(bq & 127);
            double z;
            if (k) {
                z = (2 * ((double)(int64_t)(bq >> 11) * 0x1.0p-53) - 1) * zg->x[k];
                double h = zg->f[k + 1] + (double)(ibrt_rng_next_inline(r) >> 11) * 0x1.0p-53 * (zg->f[k] - zg->f[k + 1]);
                if (!(h < fx[q]))
                    z = ibrt_rng_normal_from(r, ibrt_rng_next_inline(r));
            } else
                z = ibrt_rng_normal_miss(r, bq, fx[q]);
            x[mi[q]] = mean + sd * z;
        }
    }
}

#endif
