/*
 * driver.c: one run of the experiment driver (one seed), the loop every
 * generated trainer's models go through (ibrt_main, driver_main.c, calls
 * ibrt_drv_run_in_dir; the files' split is in driver_impl.h).
 *
 * One run is: set-up (data, operators, teacher), then each model in turn
 * -- initialisation, structural checks and a gradient check at the
 * initial point, SGD, structural checks at the end, parameters and
 * metrics -- then the run's references (the completion baseline, the
 * stationary-law test) if the spec asks for them, then results.json.
 * The order of random draws is fixed by the streams (ibrt_rng_fork):
 * data 0, teacher 1, model k's initialisation 2+2k, its batches 3+2k,
 * its structural checks 1000+k.  A checkpoint therefore needs only the
 * model in training, its step, its parameters, the states of its two
 * live streams, its last batch and what the run has produced so far
 * (checks, metrics, the JSON under construction, the lengths of the
 * traces): everything else is recomputed from the seed on resume
 * (driver_ckpt.c).  No allocation inside a training step.
 */
#include "driver_impl.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ training */

double ibrt_drv_loss_grad(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n,
                          bool grad, bool with_l1)
{
    const long OUT = p->out, IN = p->in, BMAX = p->bmax;
    double loss = 0, norm = (double)n * (double)OUT;
    const double *mask = p->bmask;
    if (mask && !p->normalise_all) {   /* the mean over this batch's observed entries */
        norm = 0;
        for (long e = 0; e < OUT; e++)
            norm += mask[e];
        if (norm == 0)
            norm = 1;
    }
    if (grad)
        memset(m->g, 0, sizeof(double) * (size_t)m->nth);
    /* an output of the parameters alone is one value for every sample:
     * its adjoint accumulates over the samples */
    const long os = m->root_batched ? OUT : 0;
    double *dy = m->ad + m->root;
    for (long c0 = 0; c0 < n; c0 += BMAX) {   /* chunks of at most BMAX samples: the tape holds no more */
        long nb = n - c0 < BMAX ? n - c0 : BMAX;
        const double *x = X + c0 * IN, *y = Y + c0 * OUT;
        m->forward(m->th, x, nb, m->tp);
        if (grad && !m->root_batched)
            memset(dy, 0, sizeof(double) * (size_t)OUT);
        /* residuals r = f - y (masked); the loss sum r^2 / norm and its
         * adjoint 2 r / norm, divided once (a division per entry cost as
         * much as the rest of the loop) */
        const double *f = m->tp + m->root;
        const double two_n = 2 / norm;
        long s = 0;
        if (!mask && grad && os)   /* four samples at once: their sums are four independent chains (one sample at */
            for (; s + 4 <= nb; s += 4) {   /* a time waited on the add's latency: 3.4% of E2's step); same bits */
                double sq4[4] = { 0, 0, 0, 0 };
                for (long o = 0; o < OUT; o++)
                    for (int l = 0; l < 4; l++) {
                        double r = f[(s + l) * os + o] - y[(s + l) * OUT + o];
                        sq4[l] += r * r;
                        dy[(s + l) * os + o] = two_n * r;
                    }
                for (int l = 0; l < 4; l++)
                    loss += sq4[l];
            }
        for (; s < nb; s++) {
            const double *fs = f + s * os, *ys = y + s * OUT;
            double *ds = dy + s * os, sq = 0;
            if (mask) {
                for (long o = 0; o < OUT; o++) {
                    double r = (fs[o] - ys[o]) * mask[o];
                    sq += r * r;
                    if (grad)
                        ds[o] = (os ? 0 : ds[o]) + two_n * r;
                }
            } else if (grad && os) {
                for (long o = 0; o < OUT; o++) {
                    double r = fs[o] - ys[o];
                    sq += r * r;
                    ds[o] = two_n * r;
                }
            } else {
                for (long o = 0; o < OUT; o++) {
                    double r = fs[o] - ys[o];
                    sq += r * r;
                    if (grad)
                        ds[o] = (os ? 0 : ds[o]) + two_n * r;
                }
            }
            loss += sq;
        }
        if (grad)
            m->backward(m->th, x, nb, m->tp, m->ad, m->g);
    }
    loss /= norm;
    if (grad && with_l1 && m->l1 > 0)   /* subgradient of l1 * ||w||_1 */
        for (long e = 0; e < m->l1_size; e++) {
            double w = m->th[m->l1_off + e];
            m->g[m->l1_off + e] += m->l1 * ((w > 0) - (w < 0));
        }
    return loss;
}

double ibrt_driver_loss(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n, bool grad)
{
    return ibrt_drv_loss_grad(p, m, X, Y, n, grad, true);
}

/* The two loops of every step over all parameters, in blocks of eight
 * (IBRT_UNROLL) so that GCC's -O2 vectorises them; the arithmetic per
 * entry is the same. */

/* th -= lr g: plain SGD */
static void sgd_step(double *restrict th, const double *restrict g, long n, double lr)
{
    long e = 0;
    for (; e + 8 <= n; e += 8)
        IBRT_UNROLL
        for (long l = 0; l < 8; l++)
            th[e + l] -= lr * g[e + l];
    for (; e < n; e++)
        th[e] -= lr * g[e];
}

/* contr_i += lr^2 (gu_i^2 + gv_i^2) / (u_i^2 + v_i^2), which is lr^2 r_i^2 for
 * z_i = u_i v_i with residual r_i = dL/dz_i (gu = r v, gv = r u) */
void ibrt_drv_pair_step(double *restrict contr, const double *u, const double *v, const double *gu, const double *gv,
                        long n, double lr)
{
    long i = 0;
    for (; i + 8 <= n; i += 8)
        IBRT_UNROLL
        for (long l = 0; l < 8; l++)
            contr[i + l] += lr * lr * (gu[i + l] * gu[i + l] + gv[i + l] * gv[i + l]) /
                            (u[i + l] * u[i + l] + v[i + l] * v[i + l]);
    for (; i < n; i++)
        contr[i] += lr * lr * (gu[i] * gu[i] + gv[i] * gv[i]) / (u[i] * u[i] + v[i] * v[i]);
}

/* acc_i += lr^2 q_i(g), accabs_i += lr^2 |q_i(g)| */
void ibrt_drv_quad_step(run_state *R, const ibrt_model *m)
{
    double l2 = m->lr * m->lr;
    m->quad(m->g, R->qg, NULL);
    for (long i = 0; i < m->nquad; i++) {
        R->qacc[i] += l2 * R->qg[i];
        R->qaccabs[i] += l2 * fabs(R->qg[i]);
    }
}

/* How lr = auto ended (g->outcome), in `why` (results.json's lr_auto
 * "note"); a fallback is a warning, no rate at all an error (the run
 * stops), each naming the spec's lr line and, for the error, bounds to
 * try: the decade below both the lower bound and 2/lambda_max. */
static void lr_auto_outcome(const run_state *R, const ibrt_model *m, const ibrt_lr_grid *g, double bound, char *why,
                            size_t len)
{
    (void)R;
    const char *w = m->lr_where ? m->lr_where : "the spec's lr line";
    if (g->outcome == IBRT_LR_BEST) {
        snprintf(why, len, "the best score of the last rung (%ld steps)", g->rungs ? g->rung[g->rungs - 1] : 0L);
        return;
    }
    if (g->outcome == IBRT_LR_FALLBACK) {
        const int f = g->failed_rung;
        char rates[96] = "";
        size_t o = 0;
        for (int c = 0; c < g->n && o < sizeof rates; c++)
            if (g->reached[c] == g->rung[f])
                o += (size_t)snprintf(rates + o, sizeof rates - o, "%s%g", o ? ", " : "", g->lr[c]);
        snprintf(why, len, "every rate of rung %d (%s) diverged within %ld steps; fallback: %g, the best of the rates "
                 "below them that never diverged, whose trial ran %ld steps", f, rates, g->rung[f], m->lr,
                 g->reached[g->best]);
        fprintf(stderr, "warning: model '%s': lr = auto (%s): %s; no trial ran it further, so the run may still "
                "diverge after step %ld\n", m->name, w, why, g->reached[g->best]);
        return;
    }
    double hi = m->lr_lo / 10;
    if (isfinite(bound) && bound > 0 && bound < hi)
        hi = pow(10, floor(log10(bound)));
    char lo_s[32], hi_s[32];
    snprintf(lo_s, sizeof lo_s, "%.0e", hi * 1e-4);
    snprintf(hi_s, sizeof hi_s, "%.0e", hi);
    const long at = g->rungs ? g->rung[g->failed_rung] : 0L;
    if (g->failed_rung > 0)
        snprintf(why, len, "every rate of rung %d diverged within %ld steps and no lower rate ran its trial without "
                 "diverging; try lr = auto(%s, %s)", g->failed_rung, at, lo_s, hi_s);
    else
        snprintf(why, len, "every rate from %g to %g diverged within %ld steps; try lr = auto(%s, %s)", m->lr_lo,
                 m->lr_hi, at, lo_s, hi_s);
    fprintf(stderr, "error: model '%s': lr = auto (%s): no rate to train with: %s (a trial is the run's own "
            "beginning, so the run would diverge too; nothing was trained; 2/lambda_max at the initial point: "
            "%.3g)\n", m->name, w, why, bound);
}

/* The stability probe of model k at its initial point (on the batch X,
 * Y of the checks at initialisation for full-batch training, else on the
 * data the batches come from: ibrt_stability_probe_init) and, for
 * lr = auto, the choice of its
 * rate by trial runs from that point with the batch stream R->rb (a
 * copy; ibrt_stability.h).  Printed (stderr) and, when record, written to
 * results.json (a resumed run has them there already); a warning names
 * the spec's lr line when the rate exceeds 2 / lambda_max.  0, or 3 when
 * lr = auto leaves no rate to train with (the run stops, "diverged"). */
static int lr_setup(run_state *R, ibrt_model *m, size_t k, const double *X, const double *Y, long nb, bool record)
{
    const ibrt_problem *p = R->p;
    ibrt_stability st;
    ibrt_rng rp, rd;
    char on[96];
    ibrt_rng_fork(&rp, R->o.seed, 3000 + k);
    ibrt_rng_fork(&rd, R->o.seed, 4000 + k);   /* fresh samples: the probe's own batches */
    double t0 = ibrt_time_now();
    ibrt_stability_probe_init(p, m, &R->ds, X, Y, nb, &rd, &rp, R->sw, &st);
    ibrt_stability_data_text(&st, on, sizeof on);
    if (!R->o.quiet) {
        fprintf(stderr, "stability (%s): lambda_max ~ %.3g at init%s (power iteration %d Hessian-vector products%s, "
                "%s to %.1e)", m->name, st.lambda_max, on, st.iterations, st.shifted ? ", shifted" : "",
                st.converged ? "converged" : "NOT converged", st.change);
        if (isfinite(st.bound))
            fprintf(stderr, ", so lr < 2/lambda = %.3g for full-batch GD\n", st.bound);
        else
            fprintf(stderr, ": no positive curvature at init, no bound\n");
    }
    ibrt_drv_fixed_cost(R, "stability probe", m->name, ibrt_time_now() - t0);
    if (record) {
        ibrt_drv_put_metric(R, "stability_lambda_max", m->suffix, st.lambda_max);
        ibrt_drv_put_metric(R, "stability_lr_bound", m->suffix, st.bound);
        ibrt_drv_metric_key(R, "stability", m->suffix);
        ibrt_json_obj_begin(R->j);
        ibrt_json_key(R->j, "method");
        ibrt_json_str(R->j, "power iteration on central differences of the gradient");
        ibrt_json_key(R->j, "data");   /* the loss whose Hessian it is */
        ibrt_json_str(R->j, st.data == IBRT_PROBE_GIVEN ? "full batch: the training set" : on + 4);   /* " on " */
        ibrt_json_key(R->j, "samples");
        ibrt_json_int(R->j, st.samples);
        ibrt_json_key(R->j, "hessian_vector_products");
        ibrt_json_int(R->j, st.iterations);
        ibrt_json_key(R->j, "converged");
        ibrt_json_bool(R->j, st.converged);
        ibrt_json_key(R->j, "relative_change");
        ibrt_json_num(R->j, st.change);
        ibrt_json_key(R->j, "fd_step");
        ibrt_json_num(R->j, st.fd_step);
        ibrt_json_key(R->j, "dominant_eigenvalue");
        ibrt_json_num(R->j, st.mu);
        ibrt_json_obj_end(R->j);
    }
    if (m->lr_auto) {
        ibrt_lr_grid g;
        t0 = ibrt_time_now();
        ibrt_stability_select_lr(p, m, &R->ds, &R->rb, m->lr_lo, m->lr_hi, m->lr_auto_steps, R->o.steps,
                                 R->o.max_growth, R->sw, &g);
        m->lr = g.best >= 0 ? g.lr[g.best] : NAN;
        double rung[IBRT_LR_RUNG_MAX], reached[IBRT_LR_GRID_MAX];
        for (int r = 0; r < g.rungs; r++)
            rung[r] = (double)g.rung[r];
        for (int c = 0; c < g.n; c++)
            reached[c] = (double)g.reached[c];
        if (!R->o.quiet) {
            fprintf(stderr, "lr = auto (%s): successive halving of %d rates from the initial point, rungs of", m->name,
                    g.n);
            for (int r = 0; r < g.rungs; r++)
                fprintf(stderr, "%s %d x %ld", r ? "," : "", g.entrants[r], g.rung[r]);
            fprintf(stderr, " steps (%ld trial steps, %.3g x the run), scored by the %s:", g.total,
                    (double)g.total / (double)R->o.steps, g.batches ? "mean loss of the last tenth" : "final loss");
            for (int c = 0; c < g.n; c++)
                fprintf(stderr, "%s %.0e %.3g at %ld", c ? "," : "", g.lr[c], g.score[c], g.reached[c]);
            fprintf(stderr, " -> lr = %g%s\n", m->lr, g.outcome == IBRT_LR_FALLBACK ? " (fallback)" : "");
        }
        char why[256];
        lr_auto_outcome(R, m, &g, st.bound, why, sizeof why);
        ibrt_drv_fixed_cost(R, "lr = auto trial runs", m->name, ibrt_time_now() - t0);
        if (record) {
            ibrt_drv_put_metric(R, "lr_auto_chosen", m->suffix, m->lr);
            ibrt_drv_metric_key(R, "lr_auto", m->suffix);
            ibrt_json_obj_begin(R->j);
            ibrt_json_key(R->j, "bounds");
            double b[2] = { m->lr_lo, m->lr_hi };
            ibrt_json_nums(R->j, b, 2);
            ibrt_json_key(R->j, "method");
            ibrt_json_str(R->j, "successive halving: the better half goes on to twice the steps");
            ibrt_json_key(R->j, "rungs");   /* each rung's trial length */
            ibrt_json_nums(R->j, rung, (size_t)g.rungs);
            ibrt_json_key(R->j, "trial_steps_total");
            ibrt_json_int(R->j, g.total);
            ibrt_json_key(R->j, "score");
            ibrt_json_str(R->j, g.batches ? "mean batch loss of the last tenth of the trial" : "final training loss");
            ibrt_json_key(R->j, "grid");
            ibrt_json_nums(R->j, g.lr, (size_t)g.n);
            ibrt_json_key(R->j, "scores");   /* null: the trial diverged */
            ibrt_json_nums(R->j, g.score, (size_t)g.n);
            ibrt_json_key(R->j, "reached");   /* the trial length of each rate's score */
            ibrt_json_nums(R->j, reached, (size_t)g.n);
            ibrt_json_key(R->j, "chosen");
            ibrt_json_num(R->j, m->lr);
            ibrt_json_key(R->j, "outcome");
            ibrt_json_str(R->j, g.outcome == IBRT_LR_BEST       ? "best of the last rung"
                                : g.outcome == IBRT_LR_FALLBACK ? "fallback: every rate of the last rung diverged"
                                                                : "none: every rate diverged");
            ibrt_json_key(R->j, "note");
            ibrt_json_str(R->j, why);
            ibrt_json_obj_end(R->j);
        }
        if (g.outcome == IBRT_LR_NONE) {
            char name[96];
            snprintf(name, sizeof name, "lr = auto finds a rate that trains (%s)", m->name);
            ibrt_checks_add(&R->checks, name, 0, 1, 0, false,
                            "rates of the grid to train with (a trial without divergence, below any that diverged)");
            R->step = -1;
            ibrt_drv_write_partial(R, "diverged", "diverged", -1, NAN);
            snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
            unlink(R->path);   /* a resume would choose again, and find nothing again */
            return 3;
        }
    }
    if (m->lr > st.bound)
        fprintf(stderr, "warning: model '%s': lr = %g%s%s%s%s is above the stability bound 2/lambda_max = %.3g at the "
                "initial point: full-batch gradient descent moves away from it along the top eigenvector; %s\n",
                m->name, m->lr, m->lr_auto ? ", chosen by lr = auto" : "", m->lr_where ? " (" : "",
                m->lr_where ? m->lr_where : "", m->lr_where ? ")" : "", st.bound,
                m->lr_auto ? "its trial run did not diverge, so the curvature falls as it trains"
                           : "lower it below the bound or write lr = auto");
    return 0;
}

/* The sums a run keeps from model m's initial point: chi, the block
 * norms and the pair contraction (nbal), the conserved quadratics and the
 * finite-step identity's sums (nquad). */
static void sums_at_init(run_state *R, const ibrt_model *m)
{
    if (m->nbal) {
        m->balance(m->th, R->chi, R->ratio, R->nA0, R->nB0);
        memcpy(R->chi0, R->chi, sizeof(double) * (size_t)m->nbal);
        memset(R->contr, 0, sizeof(double) * (size_t)m->nbal);
    }
    if (m->nquad) {
        m->quad(m->th, R->q0, NULL);
        memset(R->qacc, 0, sizeof(double) * (size_t)m->nquad);
        memset(R->qaccabs, 0, sizeof(double) * (size_t)m->nquad);
    }
}

/* Model m diverged at `step` (loss not finite, or above --max-growth
 * times its first value): the message, the step's trace row, its
 * parameters, a failed check and results.json "diverged"; exit status 3. */
static int diverged(run_state *R, const ibrt_model *m, long step, double loss)
{
    if (step == 0)   /* no step taken yet: the learning rate played no part */
        fprintf(stderr, "error: model '%s': the loss at the initial parameters is %g, before any step: not "
                "the learning rate; look for values too large in the data or the initialisation\n",
                m->name, loss);
    else if (isfinite(loss))
        fprintf(stderr, "error: model '%s' diverged at step %ld: loss %g, more than %g times its first value "
                "%g; the learning rate %g is likely too large: lower it in the spec\n", m->name, step, loss,
                R->o.max_growth, R->loss0, m->lr);
    else
        fprintf(stderr, "error: model '%s' diverged at step %ld: the loss is %g (its first value was %g); "
                "the learning rate %g is likely too large: lower it in the spec\n", m->name, step, loss,
                R->loss0, m->lr);
    R->step = step;
    ibrt_drv_record_step(R, m, step, loss);   /* the step that diverged, at the parameters that gave it */
    ibrt_drv_close_traces(R);
    ibrt_drv_write_params(R, m);
    char name[96];
    snprintf(name, sizeof name, "training stays finite (%s)", m->name);
    ibrt_checks_add(&R->checks, name, loss, R->loss0, R->o.max_growth, false,
                    "loss finite and below max-growth times the first loss");
    ibrt_drv_write_partial(R, "diverged", "diverged", (double)step, loss);
    /* an earlier checkpoint of this run would resume into the same divergence */
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    unlink(R->path);
    return 3;
}

/* Model k after its last step (X: its last batch's inputs; loss: its
 * last loss; `steps - start` steps from ts): the last snapshot, the
 * structural and symmetry checks at the end, the traces closed, its
 * parameters and metrics. */
static void model_end(run_state *R, size_t k, const double *X, double loss, long start, double ts,
                      ibrt_progress *pg)
{
    const ibrt_model *m = &R->p->models[k];
    long steps = R->o.steps;
    char when[64];
    R->X = X;
    if (R->o.snapshots)
        ibrt_drv_write_snapshot(R, m, steps, false);
    snprintf(when, sizeof when, "%s, end", m->name);
    double te0 = ibrt_time_now();
    if (m->structure)
        m->structure(X, &R->rs, &R->checks, when);
    ibrt_drv_symmetry_checks(R, m, true);
    ibrt_progress_end(pg);
    double rate = (double)(steps - start) / (ibrt_time_now() - ts + 1e-12);
    ibrt_drv_close_traces(R);
    ibrt_drv_write_params(R, m);
    if (!R->o.quiet)
        printf("%-10s %14.6g %14.0f\n", m->name, loss, rate);
    ibrt_drv_model_metrics(R, k, loss);
    ibrt_drv_fixed_cost(R, "end-of-run checks and metrics", m->name, ibrt_time_now() - te0);
}

/* Model k from its initialisation (or from the checkpoint ck) to its
 * metrics.  0, or the exit status that ends the run. */
static int train_model(run_state *R, size_t k, const ckpt_head *ck, const unsigned char *ckdata)
{
    const ibrt_problem *p = R->p;
    ibrt_model *m = &p->models[k];
    const ibrt_dataset *ds = &R->ds;
    ibrt_error err;
    ibrt_rng ri;
    const double *X = NULL, *Y;
    long nb, start = 0;
    int rc;
    bool resumed = ck && ck->model == (long)k && ck->step >= 0;
    size_t nchecks = R->checks.n;
    R->k = (long)k;
    R->loss = 0;
    R->loss0 = NAN;
    ibrt_rng_fork(&ri, R->o.seed, 2 + 2 * k);      /* this model's initialisation */
    ibrt_rng_fork(&R->rb, R->o.seed, 3 + 2 * k);   /* its batches */
    ibrt_rng_fork(&R->rs, R->o.seed, 1000 + k);    /* its structural checks */
    m->init(m->th, &ri);
    if (!resumed) {
        nb = p->draw_batch(ds, &R->rb, &X, &Y);
        ibrt_drv_checks_at_init(R, m, X, Y, nb);
        if (R->o.gradcheck)   /* the initial point only, no training */
            return 0;
        if (ibrt_drv_stop_signal) {
            /* a signal during the checks at initialisation (long for a
             * large model): the run stops before this model, without
             * them; a resume starts the model over */
            R->checks.n = nchecks;
            R->step = -1;
            R->X = p->bx;
            return ibrt_drv_stop_run(R, 128 + ibrt_drv_stop_signal);
        }
        /* after the stop above: a run stopped there starts the model over,
         * and must not find its stability metrics already written */
        if ((rc = lr_setup(R, m, k, X, Y, nb, true)) != 0)
            return rc;
        sums_at_init(R, m);
    } else {
        if (m->lr_auto) {   /* the same choice again: the same batch of the checks and the same stream */
            ibrt_rng_fork(&R->rb, R->o.seed, 3 + 2 * k);
            nb = p->draw_batch(ds, &R->rb, &X, &Y);
            if ((rc = lr_setup(R, m, k, X, Y, nb, false)) != 0)
                return rc;
        }
        ibrt_drv_ckpt_restore_model(R, m, ck, ckdata);
        X = ck->x_is_buffer ? p->bx : ds->x_train;
        start = ck->step;
    }
    if (ibrt_drv_open_traces(R, m, resumed ? ck : NULL, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        return 1;
    }
    long steps = R->o.steps, every = p->record_every;   /* trace interval, scaled to --steps */
    if (steps != p->default_steps)
        every = steps / 200 > 0 ? steps / 200 : 1;
    ibrt_progress pg;
    ibrt_progress_begin(&pg, m->name, steps, R->o.quiet);
    double ts = ibrt_time_now(), loss = R->loss;
    R->X = X;
    for (long step = start; step < steps; step++) {
        nb = p->draw_batch(ds, &R->rb, &X, &Y);
        loss = ibrt_drv_loss_grad(p, m, X, Y, nb, true, true);
        if (step == 0)
            R->loss0 = loss;
        if (!isfinite(loss) || (R->loss0 > 0 && loss > R->o.max_growth * R->loss0)) {
            ibrt_progress_end(&pg);
            return diverged(R, m, step, loss);
        }
        if (R->o.snapshots && step % R->o.snapshots == 0)
            ibrt_drv_write_snapshot(R, m, step, true);
        if (m->pair)   /* eta^2 r_i^2 of this step, before it moves u_i, v_i */
            ibrt_drv_pair_step(R->contr, m->th + m->pair_off0, m->th + m->pair_off1, m->g + m->pair_off0,
                               m->g + m->pair_off1, m->nbal, m->lr);
        if (m->nquad)   /* lr^2 q(g): this step's change of every conserved quadratic */
            ibrt_drv_quad_step(R, m);
        sgd_step(m->th, m->g, m->nth, m->lr);
        if (step % every == 0 || step == steps - 1) {
            R->X = X;
            ibrt_drv_record_step(R, m, step, loss);
        }
        ibrt_progress_update(&pg, step + 1, loss);
        R->steps_run++;
        bool stop = ibrt_drv_stop_signal || (R->o.stop_after && R->steps_run >= R->o.stop_after);
        if (stop || (R->o.checkpoint_every && (step + 1) % R->o.checkpoint_every == 0)) {
            R->step = step + 1;
            R->loss = loss;
            R->X = X;
            if (stop) {
                ibrt_progress_end(&pg);
                return ibrt_drv_stop_run(R, ibrt_drv_stop_signal ? 128 + ibrt_drv_stop_signal : 75);
            }
            if (ibrt_drv_ckpt_write(R, &err) != IBRT_OK)
                return ibrt_drv_stop_output_error(R, &err);
        }
    }
    model_end(R, k, X, loss, start, ts, &pg);
    return 0;
}

void ibrt_drv_free_run(run_state *R)
{
    double *bufs[] = { R->chi, R->ratio, R->nA0, R->nB0, R->nA, R->nB, R->mA, R->mB, R->scratch2, R->chi0, R->tmp,
                       R->brow, R->scratch0, R->scratch1, R->g_analytic, R->w, R->contr, R->svd_a, R->svd_s, R->svd_work,
                       R->q0, R->qT, R->qg, R->qacc, R->qaccabs, R->qa, R->qrec, R->trow, R->sw };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    ibrt_json_free(R->j);
    ibrt_dataset_free(&R->ds);
}

/* The run's buffers, sized for the largest model, allocated before any
 * step; false when memory runs out (ibrt_drv_free_run frees what was allocated). */
bool ibrt_drv_run_alloc(run_state *R)
{
    const ibrt_problem *p = R->p;
    /* buffers for the largest model, allocated before any step */
    long nbal = 1, nth = 1, wmax = 1, nquad = 1, ngroups = 0;
    for (size_t k = 0; k < p->nmodels; k++) {
        ngroups = (long)p->models[k].nqgroups > ngroups ? (long)p->models[k].nqgroups : ngroups;
        nquad = p->models[k].nquad + 1 > nquad ? p->models[k].nquad + 1 : nquad;
        nbal = p->models[k].nbal + 1 > nbal ? p->models[k].nbal + 1 : nbal;
        nth = p->models[k].nth > nth ? p->models[k].nth : nth;
        wmax = p->models[k].w_size > wmax ? p->models[k].w_size : wmax;
    }
    long ntmp = nbal + wmax + (p->zrows > 0 ? p->zrows + p->zcols : 0);
    double **bufs[] = { &R->chi, &R->ratio, &R->nA0, &R->nB0, &R->nA, &R->nB, &R->mA, &R->mB, &R->scratch2, &R->chi0,
                        &R->scratch0, &R->scratch1, &R->contr };
    bool oom = false;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        oom |= !(*bufs[i] = calloc((size_t)nbal, sizeof(double)));
    double **qbufs[] = { &R->q0, &R->qT, &R->qg, &R->qacc, &R->qaccabs, &R->qa, &R->qrec };
    for (size_t i = 0; i < sizeof qbufs / sizeof *qbufs; i++)
        oom |= !(*qbufs[i] = calloc((size_t)nquad, sizeof(double)));
    oom |= !(R->tmp = calloc((size_t)ntmp, sizeof(double)));
    oom |= !(R->brow = calloc((size_t)(2 * nbal + 1), sizeof(double)));
    oom |= !(R->trow = calloc((size_t)(6 + ngroups), sizeof(double)));
    oom |= !(R->g_analytic = calloc((size_t)nth, sizeof(double)));
    oom |= !(R->sw = calloc((size_t)(4 * nth), sizeof(double)));
    oom |= !(R->w = calloc((size_t)wmax, sizeof(double)));
    if (p->zrows > 0) {   /* dgesvd's workspace, queried once */
        double q = 0;
        lapack_int r = (lapack_int)p->zrows, c = (lapack_int)p->zcols;
        oom |= !(R->svd_a = calloc((size_t)(r * c), sizeof(double)));
        oom |= !(R->svd_s = calloc((size_t)(r + c + 1), sizeof(double)));
        if (!oom &&
            LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'N', 'N', c, r, R->svd_a, c, R->svd_s, NULL, 1, NULL, 1, &q, -1) == 0) {
            R->svd_lwork = (lapack_int)q + 1;
            oom |= !(R->svd_work = calloc((size_t)R->svd_lwork, sizeof(double)));
        } else
            oom = true;
    }
    R->j = ibrt_json_new();
    return !oom && R->j;
}

/* One whole experiment at seed o.seed in R.o.out_dir; the exit status. */
int ibrt_drv_run_in_dir(const ibrt_problem *p, ibrt_opts o)
{
    run_state R;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.o = o;
    R.t0 = ibrt_time_now();
    R.blas_threads = ibrt_drv_blas_threads;
    ibrt_drv_metrics.n = 0;
    memset(ibrt_drv_mechanism, 0, sizeof ibrt_drv_mechanism);
    ibrt_error err;
    unsigned char *ckdata = NULL;
    size_t cksize = 0;
    ckpt_head ck;
    int rc;
    if (o.resume && (rc = ibrt_drv_ckpt_resume_begin(&R, o, &ck, &ckdata, &cksize)) != 0)
        return rc;
    if (ibrt_mkdir_p(R.o.out_dir, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
        free(ckdata);
        return 1;
    }
    double tsetup = ibrt_time_now();
    ibrt_io_files_reset();   /* the files set-up reads, hashed for the checkpoint */
    if (p->setup(&R.ds, R.o.seed, o.quiet, &err) != IBRT_OK ||
        (o.resume && !ibrt_drv_ckpt_same_files(&ck, o.resume, &err)) ||
        (ibrt_drv_seeds_ref_set &&
         !ibrt_drv_same_files(&ibrt_drv_seeds_ref, "--seeds", "since the first seed read it", "the seeds would train "
                              "on different data: run them again with the files left alone", &err))) {
        ibrt_drv_errmsg(&err);
        free(ckdata);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    ibrt_drv_fixed_cost(&R, "data and operator set-up", NULL, ibrt_time_now() - tsetup);
    if (!ibrt_drv_run_alloc(&R)) {
        fprintf(stderr, "error: out of memory\n");
        free(ckdata);
        ibrt_drv_free_run(&R);
        return 1;
    }
    size_t first = 0;
    if (o.resume) {
        if (!ibrt_drv_ckpt_restore_json(&R, &ck, ckdata, cksize)) {
            free(ckdata);
            ibrt_drv_free_run(&R);
            return 1;
        }
        first = (size_t)ck.model;
    } else
        ibrt_drv_results_json_begin(&R);
    if (!o.quiet && !o.gradcheck)
        printf("%-10s %14s %14s\n", "model", "final loss", "steps/s");
    for (size_t k = first; k <= p->nmodels; k++) {
        if (k > first && !o.gradcheck && (ibrt_drv_stop_signal || R.o.checkpoint_every)) {
            /* model k-1's outputs are written: a checkpoint now points at
             * model k (not at k-1's traces, which are final), and a signal
             * received meanwhile stops here; k == nmodels: every model is
             * trained, only the final checks and results are left */
            R.k = (long)k;
            R.step = -1;
            R.X = p->bx;
            if (ibrt_drv_stop_signal) {
                free(ckdata);
                rc = ibrt_drv_stop_run(&R, 128 + ibrt_drv_stop_signal);
                ibrt_drv_free_run(&R);
                return rc;
            }
            if (ibrt_drv_ckpt_write(&R, &err) != IBRT_OK) {
                rc = ibrt_drv_stop_output_error(&R, &err);
                free(ckdata);
                ibrt_drv_free_run(&R);
                return rc;
            }
        }
        if (k == p->nmodels)
            break;
        rc = train_model(&R, k, o.resume ? &ck : NULL, ckdata);
        if (rc) {
            free(ckdata);
            ibrt_drv_free_run(&R);
            return rc;
        }
    }
    free(ckdata);
    if (o.gradcheck)
        rc = R.gc_failed ? 5 : 0;
    else if ((rc = ibrt_drv_run_references(&R)) == 0)
        rc = ibrt_drv_write_results(&R);
    ibrt_drv_free_run(&R);
    return rc;
}
