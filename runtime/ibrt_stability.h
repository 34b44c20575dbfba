/*
 * ibrt_stability.h: the learning rate of a trained model (module prefix
 * ibrt_stability_): how large a rate its initial point allows, and the
 * choice of `lr = auto` (docs/sweeps.md, "Choosing the learning rate").
 *
 *   probe   the largest eigenvalue lambda_max of the Hessian of the
 *           training loss at the current parameters, by power iteration on
 *           Hessian-vector products H v = (g(th + h v) - g(th - h v)) / 2h,
 *           central differences of the model's analytic gradient (exact
 *           for a quadratic loss up to round-off), from a random unit
 *           vector.  Full-batch gradient descent th - lr g is stable near
 *           th only for lr < 2 / lambda_max (a quadratic's top eigenvector
 *           grows by |1 - lr lambda_max| per step), so the driver prints
 *           that bound and warns when the rate exceeds it.  When the
 *           eigenvalue of largest magnitude is negative (a saddle), a
 *           second iteration on H + |mu| I finds the largest one.  The
 *           L1 baseline's term (piecewise linear) is left out: its Hessian
 *           is zero wherever it is defined.
 *
 *   select  lr = auto: one rate per decade, lo, 10 lo, ... up to hi, by
 *           successive halving (docs/sweeps.md, "lr = auto").  Every rate
 *           is a trial of SGD steps from the same initial parameters with
 *           the same batch stream; rung 0 runs all of them for
 *           L0 = min(first, run) steps; each later rung runs the better
 *           half (ceil(n/2) of its n entrants, diverged ones dropped) on
 *           to L = 2 L_prev steps, or to the run's length once 2 L_prev
 *           exceeds 0.9 run; it stops when one rate is left or a rung
 *           reached the run's length, and the best of the last rung wins
 *           (IBRT_LR_BEST).  When all of the last rung's rates diverged
 *           (IBRT_LR_FALLBACK): of the rates that never diverged, below
 *           the lowest rate that diverged there, the best of those that
 *           got furthest -- an earlier rung's, whose trial is shorter
 *           than the rung that diverged.  When there is none (every rate
 *           diverged, or the rates left are above one that diverged:
 *           IBRT_LR_NONE, best -1) there is nothing to train with: the
 *           driver stops the run.
 *           A survivor goes on from where its last rung left it (its
 *           trajectory is the one a single trial of L steps would take).
 *           A score is the trial's final training loss at the end of its
 *           rung (the loss after its last step; with random batches, the
 *           mean batch loss over the last tenth, L/10, of its
 *           evaluations), +inf when its loss becomes non-finite or exceeds
 *           max_growth times its first value; a tie goes to the lower
 *           rate.  With 9 rates the rungs hold 9, 5, 3, 2 rates for
 *           L0, 2 L0, 4 L0, 8 L0 steps: at most 28 L0 steps in all.
 *
 * Both leave the model's parameters as they found them and use the
 * model's own buffers (th, g, tp, ad) and the caller's work array; the
 * selection also allocates, once before its first step, n * m->nth
 * doubles for the survivors' parameters (without them it recomputes each
 * trial from the initial point: the same scores at a higher cost).
 */
#ifndef IBRT_STABILITY_H
#define IBRT_STABILITY_H

#include "ibrt_driver.h"

#define IBRT_STABILITY_MAX_ITER 100   /* Hessian-vector products per power iteration */
#define IBRT_STABILITY_TOL 1e-4       /* converged: Rayleigh quotient's relative change below this */

/* The loss whose Hessian the probe takes (ibrt_stability_probe_init). */
typedef enum {
    IBRT_PROBE_GIVEN,      /* the samples given: the training set itself for full-batch training */
    IBRT_PROBE_TRAIN_SET,  /* random batches from a fixed training set: the whole set */
    IBRT_PROBE_OBSERVED,   /* random subsets of the observed entries (a mask): the mean of several batches */
    IBRT_PROBE_BATCHES,    /* fresh samples every step (a teacher, a noisy target): the mean of several batches */
} ibrt_probe_data;

#define IBRT_STABILITY_SAMPLES 1024   /* fresh samples: batches of the mean Hessian, at least this many samples */
#define IBRT_STABILITY_BATCHES_MIN 8
#define IBRT_STABILITY_BATCHES_MAX 256
#define IBRT_STABILITY_MASK_BATCHES 64   /* random subsets of the observed entries: batches of the mean Hessian */

typedef struct {
    double lambda_max;   /* the estimate (<= 0: no positive curvature found) */
    double bound;        /* 2 / lambda_max; INFINITY when lambda_max <= 0 */
    double mu;           /* the eigenvalue of largest magnitude, found first */
    double change;       /* relative change of the Rayleigh quotient at the last iteration */
    double fd_step;      /* h of the central differences */
    int iterations;      /* Hessian-vector products taken, both iterations together */
    bool converged;      /* change <= IBRT_STABILITY_TOL (of the iteration giving lambda_max) */
    bool shifted;        /* mu < 0: lambda_max is from the iteration on H + |mu| I */
    ibrt_probe_data data;   /* the loss: which samples */
    long samples;        /* samples (for IBRT_PROBE_OBSERVED: observed entries) in that loss */
    int batches;         /* IBRT_PROBE_BATCHES: batches averaged (else 1) */
} ibrt_stability;

/* lambda_max of model m's loss over the n samples X, Y (masked by
 * p->bmask) at m->th; r draws the starting vector; work holds 4 m->nth
 * doubles. */
void ibrt_stability_probe(const ibrt_problem *p, ibrt_model *m, const double *X, const double *Y, long n,
                          ibrt_rng *r, double *work, ibrt_stability *out);

/* The probe of a model before it trains, on the loss the run descends
 * (docs/sweeps.md, "The stability bound"): for full-batch training the
 * samples X, Y, n given (the training set); for random batches, not the
 * first batch but the loss the batches estimate: the whole training set
 * (ds->x_train, n_train samples) when there is one; otherwise the mean
 * Hessian of B batches drawn by p->draw_batch from a copy of *rdata, the
 * same B batches for every product (the draws overwrite the sampler's
 * buffers and mask): for a masked loss (random subsets of the observed
 * entries) B = IBRT_STABILITY_MASK_BATCHES, for fresh samples every step
 * B = IBRT_STABILITY_SAMPLES / p->bmax within [IBRT_STABILITY_BATCHES_MIN,
 * IBRT_STABILITY_BATCHES_MAX].  out->data, samples, batches say which. */
void ibrt_stability_probe_init(const ibrt_problem *p, ibrt_model *m, const ibrt_dataset *ds, const double *X,
                               const double *Y, long n, const ibrt_rng *rdata, ibrt_rng *r, double *work,
                               ibrt_stability *out);

/* "" (full batch), or " on the training set (N samples)" and so on: how
 * the probe's loss was formed, for messages; buf of size len. */
const char *ibrt_stability_data_text(const ibrt_stability *st, char *buf, size_t len);

#define IBRT_LR_GRID_MAX 32
#define IBRT_LR_RUNG_MAX 8   /* halving 32 rates leaves one after 5 rungs */

/* How lr = auto ended (docs/sweeps.md, "lr = auto"). */
typedef enum {
    IBRT_LR_BEST,       /* the best rate of the last rung */
    IBRT_LR_FALLBACK,   /* every rate of the last rung diverged: the best of the rates that never did, below the
                           lowest of those, among those that got furthest (an earlier rung's) */
    IBRT_LR_NONE,       /* no such rate: nothing to train with (best = -1) */
} ibrt_lr_outcome;

typedef struct {
    int n;           /* rates tried */
    int best;        /* index of the choice; -1 when every trial diverged */
    ibrt_lr_outcome outcome;
    int failed_rung; /* FALLBACK, NONE: the rung every one of whose rates diverged */
    int rungs;       /* rungs run */
    bool batches;    /* random batches: scores are means over the last tenth */
    long rung[IBRT_LR_RUNG_MAX];       /* each rung's trial length, in steps from the initial point */
    int entrants[IBRT_LR_RUNG_MAX];    /* rates in each rung */
    long total;      /* SGD steps taken by all trials together */
    double lr[IBRT_LR_GRID_MAX];
    double score[IBRT_LR_GRID_MAX];    /* at the last rung the rate ran (+inf: diverged) */
    long reached[IBRT_LR_GRID_MAX];    /* that rung's length */
} ibrt_lr_grid;

/* The grid lo, 10 lo, ... <= hi (at most IBRT_LR_GRID_MAX rates), by
 * successive halving from rung 0 of min(first, run) steps, in a run of
 * `run` steps, from m->th with batches drawn from a copy of *rb on ds; th
 * is restored at the end and *rb is untouched.  work holds m->nth
 * doubles. */
void ibrt_stability_select_lr(const ibrt_problem *p, ibrt_model *m, const ibrt_dataset *ds, const ibrt_rng *rb,
                              double lo, double hi, long first, long run, double max_growth, double *work,
                              ibrt_lr_grid *g);

#endif
