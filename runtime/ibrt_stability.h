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
 *           (when all of its rates diverged: the best of the rates that
 *           got furthest without diverging).
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

typedef struct {
    double lambda_max;   /* the estimate (<= 0: no positive curvature found) */
    double bound;        /* 2 / lambda_max; INFINITY when lambda_max <= 0 */
    double mu;           /* the eigenvalue of largest magnitude, found first */
    double change;       /* relative change of the Rayleigh quotient at the last iteration */
    double fd_step;      /* h of the central differences */
    int iterations;      /* Hessian-vector products taken, both iterations together */
    bool converged;      /* change <= IBRT_STABILITY_TOL (of the iteration giving lambda_max) */
    bool shifted;        /* mu < 0: lambda_max is from the iteration on H + |mu| I */
} ibrt_stability;

/* lambda_max of model m's loss over the n samples X, Y (masked by
 * p->bmask) at m->th; r draws the starting vector; work holds 4 m->nth
 * doubles. */
void ibrt_stability_probe(const ibrt_problem *p, ibrt_model *m, const double *X, const double *Y, long n,
                          ibrt_rng *r, double *work, ibrt_stability *out);

#define IBRT_LR_GRID_MAX 32
#define IBRT_LR_RUNG_MAX 8   /* halving 32 rates leaves one after 5 rungs */

typedef struct {
    int n;           /* rates tried */
    int best;        /* index of the choice; -1 when every trial diverged */
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
