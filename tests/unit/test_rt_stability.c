/* test_rt_stability.c: the stability probe and lr = auto (ibrt_stability.h)
 * on hand-written problems whose Hessian is known in closed form:
 * linear regression x @ w with the mean squared error, Hessian 2 X'X / n
 * (its largest eigenvalue from LAPACKE's dsyev, an independent
 * computation), also with random batches (the probe takes the whole
 * training set, or the mean of many batches of fresh samples), f = 3 u^2
 * + w^2 at a saddle, Hessian diag(-12, 4), and lr = auto when every rate
 * of a rung diverges. */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "ibrt_stability.h"

/* ---------------------------------------------- linear regression x @ w */

enum { D = 6, NS = 20 };
static double lth[D], lg[D], ltp[NS], lad[NS], lx[NS * D], ly[NS], work[4 * D];

static void lin_init(double *t, ibrt_rng *r)
{
    for (int i = 0; i < D; i++)
        t[i] = 0.1 * ibrt_rng_normal(r);
}

static void lin_forward(const double *restrict t, const double *restrict x, long nb, double *restrict p)
{
    for (long s = 0; s < nb; s++) {
        double f = 0;
        for (int i = 0; i < D; i++)
            f += x[s * D + i] * t[i];
        p[s] = f;
    }
}

static void lin_backward(const double *restrict t, const double *restrict x, long nb, const double *restrict p,
                         double *restrict a, double *restrict gr)
{
    (void)t;
    (void)p;
    for (long s = 0; s < nb; s++)
        for (int i = 0; i < D; i++)
            gr[i] += x[s * D + i] * a[s];
}

static ibrt_status lin_setup(ibrt_dataset *ds, uint64_t seed, bool quiet, ibrt_error *err)
{
    (void)ds;
    (void)quiet;
    (void)err;
    ibrt_rng r;
    ibrt_rng_fork(&r, seed, 0);
    for (int e = 0; e < NS * D; e++)   /* columns of different scales: a spread spectrum */
        lx[e] = ibrt_rng_normal(&r) * (1 + (e % D));
    for (int s = 0; s < NS; s++)
        ly[s] = ibrt_rng_normal(&r);
    return IBRT_OK;
}

static long lin_draw(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y)
{
    (void)ds;
    (void)r;
    *X = lx;
    *Y = ly;
    return NS;
}

static ibrt_model lin_model = {
    .name = "model", .suffix = "", .nth = D, .tape = NS, .root = 0, .root_batched = true,
    .th = lth, .g = lg, .tp = ltp, .ad = lad, .lr = 0.01, .init = lin_init, .forward = lin_forward,
    .backward = lin_backward,
};
static ibrt_problem lin_problem = {
    .name = "linreg", .description = "x @ w", .default_steps = 100, .in = D, .out = 1, .bmax = NS,
    .minibatch = false, .setup = lin_setup, .draw_batch = lin_draw, .nmodels = 1, .models = &lin_model,
};

/* the largest eigenvalue of 2 X'X / n by LAPACKE_dsyev */
static double lin_lambda_max(void)
{
    double h[D * D], ev[D];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double a = 0;
            for (int s = 0; s < NS; s++)
                a += lx[s * D + i] * lx[s * D + j];
            h[i * D + j] = 2 * a / NS;
        }
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', D, h, D, ev), 0);
    return ev[D - 1];   /* ascending */
}

Test(stability, linear_regression_lambda_max_matches_lapack)
{
    ibrt_error err;
    lin_setup(NULL, 7, true, &err);
    ibrt_rng r;
    ibrt_rng_fork(&r, 7, 2);
    lin_model.init(lth, &r);
    double th0[D];
    memcpy(th0, lth, sizeof th0);
    ibrt_stability st;
    ibrt_rng_fork(&r, 7, 3000);
    ibrt_stability_probe(&lin_problem, &lin_model, lx, ly, NS, &r, work, &st);
    double want = lin_lambda_max();
    cr_assert(st.converged, "not converged after %d products (change %g)", st.iterations, st.change);
    cr_assert(!st.shifted);
    /* the quadratic's central differences are exact up to round-off; the
     * power iteration stops at a relative change of 1e-4 of the quotient */
    cr_assert(fabs(st.lambda_max - want) <= 1e-3 * want, "lambda_max %.17g, dsyev %.17g", st.lambda_max, want);
    cr_assert(fabs(st.bound - 2 / st.lambda_max) <= 1e-15 * st.bound);
    cr_log_info("linear regression: lambda_max %.17g, dsyev %.17g, relative error %.2e, %d products", st.lambda_max,
                want, fabs(st.lambda_max - want) / want, st.iterations);
    cr_assert(memcmp(th0, lth, sizeof th0) == 0, "the probe moved the parameters");
}

/* The loss after `steps` steps of gradient descent at rate lr from th0:
 * one trial written out, to check the halving's continued trials. */
static double lin_descend(const double *th0, double lr, long steps)
{
    memcpy(lth, th0, sizeof lth);
    for (long s = 0; s < steps; s++) {
        ibrt_driver_loss(&lin_problem, &lin_model, lx, ly, NS, true);
        for (int i = 0; i < D; i++)
            lth[i] -= lr * lg[i];
    }
    return ibrt_driver_loss(&lin_problem, &lin_model, lx, ly, NS, false);
}

Test(stability, lr_auto_on_linear_regression_stays_below_the_bound)
{
    ibrt_error err;
    lin_setup(NULL, 7, true, &err);
    ibrt_rng r;
    ibrt_rng_fork(&r, 7, 2);
    lin_model.init(lth, &r);
    double th0[D];
    memcpy(th0, lth, sizeof th0);
    double want = lin_lambda_max(), loss0 = ibrt_driver_loss(&lin_problem, &lin_model, lx, ly, NS, false);
    ibrt_lr_grid g;
    ibrt_rng rb;
    ibrt_rng_fork(&rb, 7, 3);
    /* rung 0 of 300 steps in a run of 100 000: the rungs double */
    ibrt_stability_select_lr(&lin_problem, &lin_model, NULL, &rb, 1e-6, 10, 300, 100000, 1e6, work, &g);
    cr_assert(memcmp(th0, lth, sizeof th0) == 0, "the selection moved the parameters");
    cr_assert_eq(g.n, 8);
    cr_assert_eq(g.lr[3], 1e-3);   /* one per decade, rounded: not 9.999999999999999e-04 */
    cr_assert(g.best >= 0);
    /* the schedule: all 8 rates in rung 0, then at most the better half
     * of each rung on to twice its steps, until one is left */
    cr_assert_eq(g.entrants[0], 8);
    cr_assert(g.rungs >= 2, "%d rungs", g.rungs);
    long most = 0, prev = 0;
    for (int k = 0; k < g.rungs; k++) {
        cr_assert_eq(g.rung[k], 300L << k);
        if (k)
            cr_assert(g.entrants[k] >= 2 && g.entrants[k] <= (g.entrants[k - 1] + 1) / 2, "rung %d: %d after %d", k,
                      g.entrants[k], g.entrants[k - 1]);
        most += g.entrants[k] * (g.rung[k] - prev);
        prev = g.rung[k];
    }
    cr_assert(g.total > 0 && g.total <= most, "%ld trial steps, at most %ld", g.total, most);
    /* gradient descent on a quadratic: a rate above 2 / lambda_max grows
     * along the top eigenvector (diverged, +inf, in rung 0); the best rate
     * is below it and lowers the loss */
    for (int c = 0; c < g.n; c++)
        if (g.lr[c] > 2.2 / want) {
            cr_assert(isinf(g.score[c]), "lr %g above the bound %g scored %g", g.lr[c], 2 / want, g.score[c]);
            cr_assert_eq(g.reached[c], 300);
        }
    cr_assert(g.lr[g.best] < 2 / want, "chosen %g, bound %g", g.lr[g.best], 2 / want);
    /* the choice is the best of the last rung, and each rate's score is
     * the loss of one uninterrupted trial of its length, bit for bit (the
     * survivors went on from where their rung left them) */
    long last = g.rung[g.rungs - 1];
    cr_assert_eq(g.reached[g.best], last);
    int inlast = 0;
    for (int c = 0; c < g.n; c++) {
        if (g.reached[c] == last) {
            inlast++;
            cr_assert(g.score[g.best] <= g.score[c]);
        }
        if (isfinite(g.score[c]))
            cr_assert(lin_descend(th0, g.lr[c], g.reached[c]) == g.score[c], "lr %g: %.17g after %ld steps, scored %.17g",
                      g.lr[c], lin_descend(th0, g.lr[c], g.reached[c]), g.reached[c], g.score[c]);
    }
    cr_assert_eq(inlast, g.entrants[g.rungs - 1]);
    memcpy(lth, th0, sizeof th0);
    /* it trains: below the initial loss, not below the least-squares minimum (dgels) */
    double a[NS * D], b[NS];
    memcpy(a, lx, sizeof a);
    memcpy(b, ly, sizeof b);
    cr_assert_eq(LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', NS, D, 1, a, D, b, 1), 0);
    double minloss = 0;
    for (int s = D; s < NS; s++)   /* the residual's squares are b[D..NS) */
        minloss += b[s] * b[s] / NS;
    cr_assert(g.score[g.best] < 0.9 * loss0, "score %g, initial loss %g", g.score[g.best], loss0);
    cr_assert(g.score[g.best] <= 1.01 * minloss, "score %g, least-squares minimum %g", g.score[g.best], minloss);
    cr_assert(g.score[g.best] >= minloss * (1 - 1e-9), "score %g below the minimum %g", g.score[g.best], minloss);
    cr_log_info("lr = auto on linear regression: lr %g (bound %g), score %g, initial loss %g, minimum %g, %d rungs, "
                "%ld trial steps", g.lr[g.best], 2 / want, g.score[g.best], loss0, minloss, g.rungs, g.total);
    /* a run shorter than rung 0: one rung of the run's length */
    ibrt_lr_grid h;
    ibrt_stability_select_lr(&lin_problem, &lin_model, NULL, &rb, 1e-6, 10, 300, 250, 1e6, work, &h);
    cr_assert_eq(h.rungs, 1);
    cr_assert_eq(h.rung[0], 250);
    cr_assert(h.best >= 0 && h.reached[h.best] == 250);
}

/* The rungs of a run not a power of two times rung 0: the last one is the
 * run's length once doubling passes 0.9 of it, and a survivor's score is
 * still its uninterrupted trial's. */
Test(stability, lr_auto_last_rung_is_the_run)
{
    ibrt_error err;
    lin_setup(NULL, 7, true, &err);
    ibrt_rng r;
    ibrt_rng_fork(&r, 7, 2);
    lin_model.init(lth, &r);
    double th0[D];
    memcpy(th0, lth, sizeof th0);
    ibrt_lr_grid g;
    ibrt_rng rb;
    ibrt_rng_fork(&rb, 7, 3);
    /* 100, 200, then 400 > 0.9 * 420: the run, 420 */
    ibrt_stability_select_lr(&lin_problem, &lin_model, NULL, &rb, 1e-6, 10, 100, 420, 1e6, work, &g);
    cr_assert_eq(g.rungs, 3);
    cr_assert_eq(g.rung[0], 100);
    cr_assert_eq(g.rung[1], 200);
    cr_assert_eq(g.rung[2], 420);
    cr_assert(g.best >= 0 && g.reached[g.best] == 420);
    cr_assert(lin_descend(th0, g.lr[g.best], 420) == g.score[g.best]);
    memcpy(lth, th0, sizeof th0);
}

/* --------------------- linear regression with random batches (minibatch) */

/* Two kinds of samples, far apart: rows 0..NM/2 scale column 0 by 30,
 * the others column D-1 by 30.  A batch of MB rows drawn uniformly has a
 * Hessian 2 Xb'Xb / MB far from the training set's 2 X'X / NM (a batch of
 * one kind sees only one large direction, with twice its weight): the
 * probe must take the whole set, not the first batch. */
enum { NM = 40, MB = 4 };
static double mx[NM * D], my[NM], mbx[MB * D], mby[MB], mtp[NM], mad[NM];

static void mb_setup(ibrt_dataset *ds, uint64_t seed)
{
    ibrt_rng r;
    ibrt_rng_fork(&r, seed, 0);
    for (int s = 0; s < NM; s++) {
        for (int i = 0; i < D; i++)
            mx[s * D + i] = ibrt_rng_normal(&r);
        mx[s * D + (s < NM / 2 ? 0 : D - 1)] *= 30;
        my[s] = ibrt_rng_normal(&r);
    }
    memset(ds, 0, sizeof *ds);
    ds->n_train = NM;
    ds->in_size = D;
    ds->out_size = 1;
    ds->x_train = mx;
    ds->y_train = my;
}

static long mb_draw(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y)
{
    for (int b = 0; b < MB; b++) {
        size_t s = ibrt_rng_below(r, ds->n_train);
        memcpy(mbx + b * D, ds->x_train + s * D, sizeof(double) * D);
        mby[b] = ds->y_train[s];
    }
    *X = mbx;
    *Y = mby;
    return MB;
}

static ibrt_model mb_model = {
    .name = "model", .suffix = "", .nth = D, .tape = NM, .root = 0, .root_batched = true,
    .th = lth, .g = lg, .tp = mtp, .ad = mad, .lr = 0.01, .init = lin_init, .forward = lin_forward,
    .backward = lin_backward,
};
static ibrt_problem mb_problem = {
    .name = "linreg_mb", .description = "x @ w, batches of 4", .default_steps = 100, .in = D, .out = 1, .bmax = MB,
    .minibatch = true, .draw_batch = mb_draw, .nmodels = 1, .models = &mb_model,
};

/* the largest eigenvalue of 2 X'X / n over the n rows of x, by dsyev */
static double gram_lambda_max(const double *x, long n)
{
    double h[D * D], ev[D];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double a = 0;
            for (long s = 0; s < n; s++)
                a += x[s * D + i] * x[s * D + j];
            h[i * D + j] = 2 * a / (double)n;
        }
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', D, h, D, ev), 0);
    return ev[D - 1];
}

Test(stability, minibatch_probe_takes_the_whole_training_set)
{
    ibrt_dataset ds;
    mb_setup(&ds, 11);
    ibrt_rng r, rb, rd;
    ibrt_rng_fork(&r, 11, 2);
    lin_init(lth, &r);
    double th0[D];
    memcpy(th0, lth, sizeof th0);
    /* the first batch, as the driver draws it before the probe */
    ibrt_rng_fork(&rb, 11, 3);
    const double *X, *Y;
    long nb = mb_draw(&ds, &rb, &X, &Y);
    double want = gram_lambda_max(mx, NM), first = gram_lambda_max(mbx, MB);
    /* the construction: the first batch's curvature is not the set's */
    cr_assert(fabs(first - want) > 0.3 * want, "first batch %g, training set %g: the batches do not differ", first,
              want);
    ibrt_stability st;
    ibrt_rng_fork(&r, 11, 3000);
    ibrt_rng_fork(&rd, 11, 4000);
    ibrt_stability_probe_init(&mb_problem, &mb_model, &ds, X, Y, nb, &rd, &r, work, &st);
    cr_assert_eq(st.data, IBRT_PROBE_TRAIN_SET);
    cr_assert_eq(st.samples, NM);
    cr_assert(st.converged, "not converged after %d products", st.iterations);
    cr_assert(fabs(st.lambda_max - want) <= 1e-3 * want, "lambda_max %.17g, dsyev of the training set %.17g (first "
              "batch %.17g)", st.lambda_max, want, first);
    cr_assert(memcmp(th0, lth, sizeof th0) == 0, "the probe moved the parameters");
    cr_log_info("minibatch linear regression: lambda_max %.17g, dsyev of the training set %.17g (relative error "
                "%.2e, %d products), of the first batch %.17g", st.lambda_max, want,
                fabs(st.lambda_max - want) / want, st.iterations, first);
}

/* Fresh samples every step (no training set): the mean Hessian of the B
 * batches drawn from the probe's stream, against dsyev of the same B
 * batches' rows stacked; and near the population's 2 diag(s^2). */
static long fresh_draw(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y)
{
    (void)ds;
    for (int b = 0; b < MB; b++) {
        for (int i = 0; i < D; i++)
            mbx[b * D + i] = ibrt_rng_normal(r) * (1 + i);   /* column i scaled by i + 1 */
        mby[b] = ibrt_rng_normal(r);
    }
    *X = mbx;
    *Y = mby;
    return MB;
}

Test(stability, fresh_samples_probe_takes_the_mean_of_many_batches)
{
    ibrt_dataset ds;
    memset(&ds, 0, sizeof ds);
    ibrt_problem fp = mb_problem;
    fp.draw_batch = fresh_draw;
    ibrt_rng r, rd;
    ibrt_rng_fork(&r, 5, 2);
    lin_init(lth, &r);
    const double *X, *Y;
    ibrt_rng_fork(&rd, 5, 3);
    long nb = fresh_draw(&ds, &rd, &X, &Y);
    ibrt_stability st;
    ibrt_rng_fork(&r, 5, 3000);
    ibrt_rng_fork(&rd, 5, 4000);
    ibrt_stability_probe_init(&fp, &mb_model, &ds, X, Y, nb, &rd, &r, work, &st);
    cr_assert_eq(st.data, IBRT_PROBE_BATCHES);
    cr_assert_eq(st.batches, IBRT_STABILITY_SAMPLES / MB);
    cr_assert_eq(st.samples, IBRT_STABILITY_SAMPLES);
    /* the oracle: the same batches (a fresh copy of stream 4000), stacked */
    static double all[IBRT_STABILITY_SAMPLES * D];
    ibrt_rng_fork(&rd, 5, 4000);
    for (int b = 0; b < st.batches; b++) {
        fresh_draw(&ds, &rd, &X, &Y);
        memcpy(all + (size_t)b * MB * D, mbx, sizeof mbx);
    }
    double want = gram_lambda_max(all, IBRT_STABILITY_SAMPLES), pop = 2.0 * D * D;
    cr_assert(fabs(st.lambda_max - want) <= 1e-3 * want, "lambda_max %.17g, dsyev of its batches %.17g",
              st.lambda_max, want);
    cr_assert(fabs(st.lambda_max - pop) <= 0.15 * pop, "lambda_max %g, population 2 max s^2 = %g", st.lambda_max, pop);
    cr_log_info("fresh samples: lambda_max %.6g, dsyev of the %d batches %.6g, population %g", st.lambda_max,
                st.batches, want, pop);
}

/* ---------------- lr = auto when the survivors of a rung diverge later */

/* A scalar w from 0 towards 1: each step's batch is x = 1, y = 1 (loss
 * (w - 1)^2, w_t = 1 - (1 - 2 lr)^t), except about one in 100, an
 * outlier x = XO, y = 0 whose loss XO^2 w^2 = 400 w^2 is large where w
 * has got close to 1.  With max-growth 100 (loss0 = 1) a rate diverges at
 * the first outlier after w > 0.5.  The fast rates win rung 0, meet the
 * outlier in rung 1 near w = 1 and diverge there; the slow 1e-3, left out
 * of rung 1, is the fallback. */
enum { XO = 20 };
static double oth[1], og[1], otp[1], oad[1], obx[1], oby[1];

static void out_init(double *t, ibrt_rng *r)
{
    (void)r;
    t[0] = 0;
}

static long out_draw(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y)
{
    (void)ds;
    bool outlier = ibrt_rng_below(r, 100) == 0;
    obx[0] = outlier ? XO : 1;
    oby[0] = outlier ? 0 : 1;
    *X = obx;
    *Y = oby;
    return 1;
}

/* w x for a scalar w and one input per sample */
static void lin_forward1(const double *restrict t, const double *restrict x, long nb, double *restrict p)
{
    for (long s = 0; s < nb; s++)
        p[s] = x[s] * t[0];
}

static void lin_backward1(const double *restrict t, const double *restrict x, long nb, const double *restrict p,
                          double *restrict a, double *restrict gr)
{
    (void)t;
    (void)p;
    for (long s = 0; s < nb; s++)
        gr[0] += x[s] * a[s];
}

static ibrt_model out_model = {
    .name = "model", .suffix = "", .nth = 1, .tape = 1, .root = 0, .root_batched = true,
    .th = oth, .g = og, .tp = otp, .ad = oad, .lr = 0.01, .init = out_init, .forward = lin_forward1,
    .backward = lin_backward1,
};
static ibrt_problem out_problem = {
    .name = "outlier", .description = "w x, a rare outlier", .in = 1, .out = 1, .bmax = 1, .minibatch = true,
    .draw_batch = out_draw, .nmodels = 1, .models = &out_model,
};

/* the first draw (0, 1, ...) of the stream that is an outlier */
static long first_outlier(const ibrt_rng *rb)
{
    ibrt_rng r = *rb;
    const double *X, *Y;
    for (long s = 0;; s++) {
        out_draw(NULL, &r, &X, &Y);
        if (X[0] != 1)
            return s;
    }
}

Test(stability, lr_auto_falls_back_when_a_later_rung_diverges)
{
    /* the construction: a batch stream whose first outlier s1 lies in
     * [120, 340] (the first such stream: deterministic); rung 0 (s1 - 1
     * steps, draws 0 .. s1 - 1) ends before it, rung 1 (to 2 (s1 - 1))
     * reaches it, and by then 1e-2 is near w = 1 (1 - 0.98^120 > 0.9:
     * loss 400 w^2 > 100) */
    ibrt_rng rb;
    long s1 = 0;
    for (uint64_t stream = 3; stream < 1000 && !(s1 >= 120 && s1 <= 340); stream++) {
        ibrt_rng_fork(&rb, 1, stream);
        s1 = first_outlier(&rb);
    }
    cr_assert(s1 >= 120 && s1 <= 340, "no stream with its first outlier in [120, 340]");
    long l0 = s1 - 1;
    out_init(oth, NULL);
    ibrt_lr_grid g;
    double w2[4];
    ibrt_stability_select_lr(&out_problem, &out_model, NULL, &rb, 1e-3, 1e-1, l0, 100000, 100, w2, &g);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.rungs, 2);
    cr_assert_eq(g.entrants[1], 2);
    /* 1e-2 and 1e-1 went on (the better half) and diverged at the outlier */
    cr_assert(isinf(g.score[1]) && isinf(g.score[2]), "scores %g %g", g.score[1], g.score[2]);
    cr_assert_eq(g.reached[1], 2 * l0);
    cr_assert(isfinite(g.score[0]) && g.reached[0] == l0);
    cr_assert_eq(g.outcome, IBRT_LR_FALLBACK);
    cr_assert_eq(g.failed_rung, 1);
    cr_assert_eq(g.best, 0, "chose %d", g.best);
    cr_assert(oth[0] == 0, "the selection moved the parameters");
    /* a rate above the diverged ones is no fallback: 1e-2, 1e-1 go on
     * (1 oscillates between w = 0 and 2: the worst of rung 0) and diverge;
     * 1 is left, above them: nothing to train with */
    ibrt_stability_select_lr(&out_problem, &out_model, NULL, &rb, 1e-2, 1, l0, 100000, 100, w2, &g);
    cr_assert_eq(g.rungs, 2);
    cr_assert(isfinite(g.score[2]) && g.reached[2] == l0, "lr 1: %g at %ld", g.score[2], g.reached[2]);
    cr_assert(isinf(g.score[0]) && isinf(g.score[1]));
    cr_assert_eq(g.outcome, IBRT_LR_NONE);
    cr_assert_eq(g.failed_rung, 1);
    cr_assert_eq(g.best, -1);
    /* every rate diverges in rung 0: linear regression far above 2/lambda_max */
    ibrt_error err;
    lin_setup(NULL, 7, true, &err);
    ibrt_rng r;
    ibrt_rng_fork(&r, 7, 2);
    lin_model.init(lth, &r);
    ibrt_stability_select_lr(&lin_problem, &lin_model, NULL, &rb, 10, 1000, 300, 100000, 1e6, work, &g);
    cr_assert_eq(g.rungs, 1);
    cr_assert_eq(g.outcome, IBRT_LR_NONE);
    cr_assert_eq(g.failed_rung, 0);
    cr_assert_eq(g.best, -1);
    for (int c = 0; c < g.n; c++)
        cr_assert(isinf(g.score[c]));
}

/* ------------------------------------------ a saddle: f = 3 u^2 + w^2 */

static double sth[2], sg[2], stp[1], sad[1], sy[1] = { 2 }, sx[1], swork[8];

static void sad_init(double *t, ibrt_rng *r)
{
    (void)r;
    t[0] = 0;
    t[1] = 1;
}

static void sad_forward(const double *restrict t, const double *restrict x, long nb, double *restrict p)
{
    (void)x;
    (void)nb;
    p[0] = 3 * t[0] * t[0] + t[1] * t[1];
}

static void sad_backward(const double *restrict t, const double *restrict x, long nb, const double *restrict p,
                         double *restrict a, double *restrict gr)
{
    (void)x;
    (void)nb;
    (void)p;
    gr[0] += 6 * t[0] * a[0];
    gr[1] += 2 * t[1] * a[0];
}

static ibrt_model sad_model = {
    .name = "model", .suffix = "", .nth = 2, .tape = 1, .root = 0, .root_batched = false,
    .th = sth, .g = sg, .tp = stp, .ad = sad, .lr = 0.01, .init = sad_init, .forward = sad_forward,
    .backward = sad_backward,
};
static ibrt_problem sad_problem = {
    .name = "saddle", .description = "3 u^2 + w^2", .in = 1, .out = 1, .bmax = 1, .nmodels = 1,
    .models = &sad_model,
};

/* at u = 0, w = 1, y = 2 the residual is -1: H = 2 J'J + 2 r (Hessian of
 * f) = diag(0, 8) - diag(12, 4) = diag(-12, 4); the dominant eigenvalue is
 * -12 and the largest 4, found by the shifted iteration */
Test(stability, saddle_finds_the_largest_not_the_dominant_eigenvalue)
{
    sad_init(sth, NULL);
    ibrt_rng r;
    ibrt_rng_fork(&r, 1, 3000);
    ibrt_stability st;
    ibrt_stability_probe(&sad_problem, &sad_model, sx, sy, 1, &r, swork, &st);
    cr_assert(st.shifted);
    cr_assert(fabs(st.mu + 12) <= 1e-3 * 12, "dominant %g, want -12", st.mu);
    cr_assert(fabs(st.lambda_max - 4) <= 1e-3 * 4, "lambda_max %g, want 4", st.lambda_max);
    cr_assert(fabs(st.bound - 0.5) <= 1e-3 * 0.5);
}
