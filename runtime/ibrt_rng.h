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
 * None of these allocate; all are deterministic on every platform (only
 * integer arithmetic and IEEE double operations with a fixed evaluation
 * order).
 */
#ifndef IBRT_RNG_H
#define IBRT_RNG_H

#include "ibrt.h"

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

#endif
