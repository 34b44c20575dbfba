/*
 * ibrt.h: the runtime library of ibc's generated trainers (libibrt).
 *
 * The runtime knows nothing of the compiler: it offers what every trainer
 * needs — a documented random number generator, the paper's data
 * generators, atomic writers for JSON/CSV/.npy results, the trainer's
 * command line, a progress line, a table of checks, and small linear
 * algebra helpers over LAPACKE.  Functions that can fail return an
 * ibrt_status and fill an ibrt_error with a message naming the file, row,
 * column or dimension at fault.  Nothing here allocates after set-up:
 * per-step functions (rng draws, progress updates) never call malloc.
 */
#ifndef IBRT_H
#define IBRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Unrolls the loop that follows completely (up to 16 iterations).  GCC's
 * -O2 neither unrolls loops whose trip counts are known only after
 * inlining nor vectorises loops of unknown length; the kernels and the
 * step loops use this so that their short loops run in registers and in
 * vector lanes. */
#if defined(__GNUC__) && !defined(__clang__)
#define IBRT_UNROLL _Pragma("GCC unroll 16")
#else
#define IBRT_UNROLL
#endif

typedef enum { IBRT_OK = 0, IBRT_EIO, IBRT_EFORMAT, IBRT_ESHAPE, IBRT_EVALUE, IBRT_ENOMEM } ibrt_status;

typedef struct {
    char msg[512];   /* set by a call that fails: what and why, NUL-terminated */
} ibrt_error;

/* ------------------------------------------------------------------ rng
 * xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64 so that
 * any 64-bit seed gives a well-mixed state.  Normals by the ziggurat
 * method (Marsaglia & Tsang 2000, Doornik's ZIGNOR; rng.c), one draw per
 * normal in 97% of cases, no state beyond the generator's.  Streams: ibrt_rng_fork derives an
 * independent generator from (seed, stream) — data, each model's init and
 * batches use different streams, so adding a model changes no other. */
typedef struct {
    uint64_t s[4];   /* the xoshiro256** state, set by ibrt_rng_seed or ibrt_rng_fork */
} ibrt_rng;

void ibrt_rng_seed(ibrt_rng *r, uint64_t seed);
void ibrt_rng_fork(ibrt_rng *child, uint64_t seed, uint64_t stream);
uint64_t ibrt_rng_next(ibrt_rng *r);
double ibrt_rng_uniform(ibrt_rng *r);            /* [0, 1), 53 bits */
double ibrt_rng_normal(ibrt_rng *r);             /* N(0, 1) */
size_t ibrt_rng_below(ibrt_rng *r, size_t n);    /* uniform in [0, n) */
void ibrt_rng_fill_normal(ibrt_rng *r, double *x, size_t n, double mean, double std);

/* ----------------------------------------------------------------- data
 * A fixed data set: n_train (and n_test) samples of in_size inputs and
 * out_size labels, row-major; truth is the ground truth when the
 * generator knows it (w*, the signal, the matrix M); mask marks observed
 * entries (low_rank). */
typedef struct {
    size_t n_train, n_test, in_size, out_size;
    /* n_train x in_size, n_train x out_size, n_test x in_size, n_test x out_size; owned (ibrt_dataset_free);
     * with no test set, the test arrays are still allocated (one zero) */
    double *x_train, *y_train, *x_test, *y_test;
    double *truth;     /* owned; NULL for data read from files */
    size_t truth_size; /* elements of truth (0: none) */
    double *mask;      /* per entry of y_train (low_rank's one sample): 1 observed, 0 not; owned; NULL: none */
    size_t nonzeros;   /* non-zeros of a sparse truth */
} ibrt_dataset;

void ibrt_dataset_free(ibrt_dataset *ds);
/* E4: x_k(t) = cos(2 pi k t), t ~ U(0,1), k = 0..modes-1; w* has `nonzeros`
 * entries at distinct random k >= 1, magnitudes U(1,2), random signs;
 * y = x.w* + N(0, noise^2) on train, noiseless on test. */
ibrt_status ibrt_gen_cosine_spikes(ibrt_dataset *ds, ibrt_rng *r, size_t modes, size_t train, size_t test,
                                   size_t nonzeros, double noise, ibrt_error *err);
/* x ~ N(0, I), otherwise as cosine_spikes (non-zeros at any index). */
ibrt_status ibrt_gen_sparse_regression(ibrt_dataset *ds, ibrt_rng *r, size_t features, size_t train, size_t test,
                                       size_t nonzeros, double noise, ibrt_error *err);
/* E5: rows of A ~ N(0, 1/m) are the inputs; truth w* piecewise constant
 * (levels[i] repeated lengths[i] times, the lengths summing to length);
 * y = A w* + N(0, noise^2). */
ibrt_status ibrt_gen_piecewise_signal(ibrt_dataset *ds, ibrt_rng *r, size_t length, size_t measurements,
                                      const double *levels, const double *lengths, size_t nlevels, double noise,
                                      ibrt_error *err);
/* E3: M = P diag(s) Q' (size x size), P, Q orthonormal from the QR of
 * Gaussian matrices; each entry observed with probability p (mask). */
ibrt_status ibrt_gen_low_rank(ibrt_dataset *ds, ibrt_rng *r, size_t size, const double *sv, size_t rank, double p,
                              ibrt_error *err);

/* -------------------------------------------------------------- writers
 * All writers are atomic: they write "PATH.tmp.PID", flush, fsync and
 * rename, so a reader never sees a half-written file. */
ibrt_status ibrt_mkdir_p(const char *path, ibrt_error *err);
ibrt_status ibrt_npy_write(const char *path, const double *data, size_t ndim, const size_t *shape, ibrt_error *err);

/* CSV trace: a header line then rows of numbers (%.10g). */
typedef struct {
    FILE *f;         /* open on tmp; NULL after close or a failed open */
    char path[1024], tmp[1100];   /* the trace's name, and the file written until close renames it */
} ibrt_csv;
ibrt_status ibrt_csv_open(ibrt_csv *c, const char *path, const char *header, ibrt_error *err);
void ibrt_csv_row(ibrt_csv *c, const double *v, size_t n);
ibrt_status ibrt_csv_close(ibrt_csv *c, ibrt_error *err);

/* A JSON document built in memory; numbers with %.17g, non-finite as null,
 * strings escaped. */
typedef struct ibrt_json ibrt_json;
ibrt_json *ibrt_json_new(void);
void ibrt_json_free(ibrt_json *j);
void ibrt_json_obj_begin(ibrt_json *j);
void ibrt_json_obj_end(ibrt_json *j);
void ibrt_json_arr_begin(ibrt_json *j);
void ibrt_json_arr_end(ibrt_json *j);
void ibrt_json_key(ibrt_json *j, const char *key);
void ibrt_json_num(ibrt_json *j, double v);
void ibrt_json_int(ibrt_json *j, long v);
void ibrt_json_str(ibrt_json *j, const char *s);
void ibrt_json_bool(ibrt_json *j, bool v);
void ibrt_json_nums(ibrt_json *j, const double *v, size_t n);   /* an array */
const char *ibrt_json_text(const ibrt_json *j);
ibrt_status ibrt_json_write_file(const ibrt_json *j, const char *path, ibrt_error *err);

/* -------------------------------------------------------------- trainer */
typedef struct {
    long steps;              /* --steps N: training steps per model (default: the trainer's, from the spec) */
    uint64_t seed;           /* --seed S (default: the trainer's, from the spec) */
    int seeds;               /* --seeds K: runs with seeds S..S+K-1, each in OUT/seed_<seed> (default 1) */
    const char *out_dir;     /* --out DIR (default "results/PROG", in a static buffer) */
    int quiet;               /* --quiet: 1, the progress line and the printed tables are left out */
    bool gradcheck;          /* --gradcheck: compare gradients at the start, train nothing */
    bool stability;          /* --stability: the stability probe of every model, train nothing */
    bool reference;          /* --reference: run reference methods above their size limit */
    long checkpoint_every;   /* --checkpoint-every N (0: only on a signal) */
    const char *resume;      /* --resume DIR: continue the run checkpointed there */
    long stop_after;         /* --stop-after N: checkpoint and stop after N steps (0: never) */
    double max_growth;       /* --max-growth F: a loss above F times the first is divergence */
    long snapshots;          /* --snapshots N: parameters (and gradients) every N steps; 0: none */
    const char *verify;      /* --verify RUN: check another run's snapshots instead of training */
    bool steps_given, seed_given, max_growth_given, out_given;   /* given on the command line, not defaults */
} ibrt_opts;

/* Parses --steps N, --seed S, --seeds K, --out DIR, --quiet, --gradcheck,
 * --checkpoint-every N, --resume DIR, --stop-after N, --max-growth F,
 * --snapshots N, --verify RUN, --help.  Returns 0 to go on, 1 after printing help (exit 0), -1 after a
 * usage error (exit 2). */
int ibrt_opts_parse(int argc, char **argv, ibrt_opts *o, const char *prog, const char *description,
                    long default_steps, uint64_t default_seed);

/* The options that go together (after ibrt_opts_parse returned 0): 0, or
 * 2 after a usage error on stderr.  --out, --resume and --verify name a
 * directory of 1 to IBRT_MAX_DIR bytes. */
#define IBRT_MAX_DIR 512
#define IBRT_MAX_DIR_TEXT "512"
int ibrt_opts_check(const ibrt_opts *o, const char *prog);

double ibrt_time_now(void);   /* monotonic seconds */

/* A progress line on stderr, only when stderr is a terminal and not quiet;
 * at most ~10 updates a second; no allocation. */
typedef struct {
    const char *label;    /* shown in brackets (the model's name); not copied */
    long total;           /* steps of the whole run, for the ETA */
    double start, last;   /* ibrt_time_now() at begin and at the last line printed */
    bool active;          /* stderr is a terminal and not quiet: lines are printed */
} ibrt_progress;
void ibrt_progress_begin(ibrt_progress *p, const char *label, long total, bool quiet);
void ibrt_progress_update(ibrt_progress *p, long step, double loss);
void ibrt_progress_end(ibrt_progress *p);

/* A table of named checks: value against expected within tolerance. */
#define IBRT_MAX_CHECKS 64
typedef struct {
    char name[96], detail[160];         /* what is checked; a note for the table ("" when none); both cut to fit */
    double value, expected, tolerance;  /* shown in the table and results.json (NAN as null) */
    bool pass;                          /* decided by the caller, not recomputed from the numbers */
} ibrt_check;
typedef struct {
    ibrt_check c[IBRT_MAX_CHECKS];   /* c[0..n), in the order added */
    size_t n;                        /* at most IBRT_MAX_CHECKS: one more turns the last into a failure */
} ibrt_checks;
void ibrt_checks_add(ibrt_checks *t, const char *name, double value, double expected, double tolerance, bool pass,
                     const char *detail);
void ibrt_checks_print(const ibrt_checks *t, FILE *out);
void ibrt_checks_to_json(const ibrt_checks *t, ibrt_json *j);
bool ibrt_checks_all_pass(const ibrt_checks *t);

/* Scalar metrics of several models, printed as one table: a row per
 * metric, a column per model (the designed one against its baselines). */
#define IBRT_MAX_METRICS 256
typedef struct {
    char name[48], model[16];   /* the row and the column (cut to fit) */
    double v;                   /* the value; NAN allowed (null in JSON) */
} ibrt_metric;
typedef struct {
    ibrt_metric m[IBRT_MAX_METRICS];   /* m[0..n), in the order added */
    size_t n;                          /* at most IBRT_MAX_METRICS: later ones are dropped */
} ibrt_metrics;
void ibrt_metrics_add(ibrt_metrics *t, const char *name, const char *model, double v);
void ibrt_metrics_print(const ibrt_metrics *t, FILE *out);
/* Over several seeds: for each (metric, model) of m[0..n), its median, min
 * and max, as "NAME_MODEL": {"median", "min", "max", "n"} in the JSON
 * object begun here, and as a table on out (unless NULL). */
void ibrt_metrics_summarise(const ibrt_metric *m, size_t n, ibrt_json *j, FILE *out);

/* median, min and max of x[0..n) (x is reordered). */
void ibrt_stats_median_min_max(double *x, size_t n, double *med, double *min, double *max);

/* Singular values of a row-major m x n matrix, descending (LAPACKE dgesvd). */
ibrt_status ibrt_linalg_svd_values(size_t m, size_t n, const double *A, double *s, ibrt_error *err);

/* ------------------------------------------------------ stationary law
 * docs/theory.md §7: the Gibbs law exp(-beta L) of z = u v, L = (beta_d/2)
 * (u v - theta*)^2, conditioned on the thin shell |chi| < eps, chi =
 * (u^2 - v^2)/2, u, v > 0.  In (theta, chi) = (u v, chi) coordinates
 * du dv = dtheta dchi / (2 sqrt(theta^2 + chi^2)), so the law of theta is
 *     p(theta) ~ exp(-beta L(theta)) * asinh(eps / theta)
 * (-> exp(-beta L) / (2 theta) for eps << theta: the det G^(-1/2) factor).
 * Metropolis with symmetric Gaussian proposals in (u, v), moves leaving the
 * shell rejected; the final states of independent chains are compared by
 * the Kolmogorov-Smirnov test with the predicted density and with two
 * wrong ones: no det G factor, and the factor inverted. */
typedef struct {
    double beta, beta_d, theta_star, eps;   /* as above; all > 0 */
    size_t chains, steps;   /* independent chains (>= 2, each a sample), Metropolis steps of each (>= 1) */
    double step;          /* proposal std in u and v */
    uint64_t seed;        /* of the one generator all chains draw from */
} ibrt_stationary_cfg;

typedef struct {
    /* KS distance and p-value of the chains' final theta against the predicted law, the law without the
     * det G factor, and with it inverted */
    double ks_pred, p_pred, ks_nodet, p_nodet, ks_flip, p_flip;
    double acceptance, seconds;   /* accepted moves / all proposed; wall time of the test */
    bool pass;            /* p_pred > 0.01 and both alternatives p < 1e-6 */
} ibrt_stationary_result;

ibrt_status ibrt_stationary_uv(const ibrt_stationary_cfg *cfg, ibrt_stationary_result *res, ibrt_error *err);
/* Kolmogorov-Smirnov distance of sorted samples x[0..n) against a CDF given
 * on a grid (xs ascending, F non-decreasing), and its asymptotic p-value
 * (Kolmogorov distribution, Stephens' small-sample correction). */
double ibrt_ks_distance(const double *sorted, size_t n, const double *xs, const double *F, size_t m);
double ibrt_ks_pvalue(double D, size_t n);

/* ------------------------------------------------------------ operators
 * Fixed operators in O(n): the n x n difference z_0 = w_0, z_i = w_i -
 * w_(i-1), its inverse the cumulative sum, and the transposes backprop
 * needs; the orthonormal DCT-II matrix (row k: basis vector k). */
void ibrt_op_diff(size_t n, const double *in, double *out);
void ibrt_op_diff_T(size_t n, const double *in, double *out);
void ibrt_op_cumsum(size_t n, const double *in, double *out);
void ibrt_op_cumsum_T(size_t n, const double *in, double *out);   /* reverse cumulative sum */
void ibrt_op_dct_matrix(size_t n, double *out);

#endif
