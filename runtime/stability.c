/*
 * stability.c: the stability probe at initialisation and lr = auto
 * (ibrt_stability.h, docs/sweeps.md).
 */
#include "ibrt_stability.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loss the probe differentiates: the n samples X, Y, or (batches > 0)
 * the mean over that many batches drawn from a copy of `from`, the same
 * batches at every call. */
typedef struct {
    const double *X, *Y;       /* inputs and labels of n samples, row-major (not read when batches > 0) */
    long n;                    /* samples in X, Y */
    const ibrt_dataset *ds;    /* what p->draw_batch draws from when batches > 0; NULL in the plain probe */
    ibrt_rng from;             /* the batches' stream: each call draws from a copy, so the batches repeat */
    int batches;               /* 0: the n samples X, Y */
} probe_loss;

/* hv = H v by central differences of the analytic gradient at th0 (m->th
 * holds th0 on return), the L1 term left out by the caller; with batches,
 * the mean of the batches' H v. */
static void hess_vec(const ibrt_problem *p, ibrt_model *m, const probe_loss *pl, const double *th0, const double *v,
                     double h, double *gp, double *hv)
{
    const long N = m->nth;
    const int nb = pl->batches > 0 ? pl->batches : 1;
    const double inv = 1 / (2 * h * nb);
    ibrt_rng r = pl->from;
    for (long i = 0; i < N; i++)
        hv[i] = 0;
    for (int b = 0; b < nb; b++) {
        const double *X = pl->X, *Y = pl->Y;
        long n = pl->n;
        if (pl->batches > 0)
            n = p->draw_batch(pl->ds, &r, &X, &Y);
        for (long i = 0; i < N; i++)
            m->th[i] = th0[i] + h * v[i];
        ibrt_driver_loss(p, m, X, Y, n, true);
        memcpy(gp, m->g, sizeof(double) * (size_t)N);
        for (long i = 0; i < N; i++)
            m->th[i] = th0[i] - h * v[i];
        ibrt_driver_loss(p, m, X, Y, n, true);
        for (long i = 0; i < N; i++)
            hv[i] += (gp[i] - m->g[i]) * inv;
    }
    memcpy(m->th, th0, sizeof(double) * (size_t)N);
}

/* Power iteration on H + shift I from the unit vector v (overwritten by
 * the last iterate): the Rayleigh quotient v'(H + shift I)v minus shift. */
static double power(const ibrt_problem *p, ibrt_model *m, const probe_loss *pl, const double *th0, double *v,
                    double h, double shift, double *gp, double *hv, int *iters, double *change)
{
    const long N = m->nth;
    double lam = NAN;
    *change = INFINITY;
    for (int it = 0; it < IBRT_STABILITY_MAX_ITER; it++) {
        hess_vec(p, m, pl, th0, v, h, gp, hv);
        (*iters)++;
        double q = 0, nn = 0;
        for (long i = 0; i < N; i++) {
            hv[i] += shift * v[i];
            q += v[i] * hv[i];
            nn += hv[i] * hv[i];
        }
        nn = sqrt(nn);
        if (!isfinite(q) || !isfinite(nn))
            return NAN;
        if (nn == 0) {   /* H v = -shift v exactly (H = 0 along v at shift 0) */
            *change = 0;
            return q - shift;
        }
        *change = isfinite(lam) ? fabs(q - lam) / fmax(fabs(q), 1e-300) : INFINITY;
        lam = q;
        for (long i = 0; i < N; i++)
            v[i] = hv[i] / nn;
        if (*change <= IBRT_STABILITY_TOL)
            break;
    }
    return lam - shift;
}

static void probe(const ibrt_problem *p, ibrt_model *m, const probe_loss *pl, ibrt_rng *r, double *work,
                  ibrt_stability *out)
{
    const long N = m->nth;
    double *th0 = work, *v = work + N, *gp = work + 2 * N, *hv = work + 3 * N;
    memcpy(th0, m->th, sizeof(double) * (size_t)N);
    double l1 = m->l1, scale = 1, vn = 0;
    m->l1 = 0;   /* the L1 term: piecewise linear, no curvature where defined */
    for (long i = 0; i < N; i++)
        scale = fmax(scale, fabs(th0[i]));
    for (long i = 0; i < N; i++) {
        v[i] = ibrt_rng_normal(r);
        vn += v[i] * v[i];
    }
    vn = sqrt(vn);
    for (long i = 0; i < N; i++)
        v[i] /= vn;
    memset(out, 0, sizeof *out);
    out->fd_step = 1e-5 * scale;
    double mu = power(p, m, pl, th0, v, out->fd_step, 0, gp, hv, &out->iterations, &out->change);
    out->mu = mu;
    out->lambda_max = mu;
    out->converged = out->change <= IBRT_STABILITY_TOL;
    if (mu < 0) {
        /* the dominant eigenvalue is negative: H + |mu| I has eigenvalues in
         * [0, lambda_max + |mu|], and its dominant one gives lambda_max */
        out->shifted = true;
        double change;
        for (long i = 0; i < N; i++)   /* a fresh start: v is now close to mu's eigenvector */
            v[i] = ibrt_rng_normal(r);
        vn = 0;
        for (long i = 0; i < N; i++)
            vn += v[i] * v[i];
        vn = sqrt(vn);
        for (long i = 0; i < N; i++)
            v[i] /= vn;
        out->lambda_max = power(p, m, pl, th0, v, out->fd_step, -mu, gp, hv, &out->iterations, &change);
        out->change = change;
        /* the shifted quotient's relative change, in units of lambda_max + |mu| */
        out->converged = change <= IBRT_STABILITY_TOL;
    }
    out->bound = out->lambda_max > 0 ? 2 / out->lambda_max : INFINITY;
    m->l1 = l1;
    memcpy(m->th, th0, sizeof(double) * (size_t)N);
}

void ibrt_stability_probe(const ibrt_problem *p, ibrt_model *m, const double *X, const double *Y, long n,
                          ibrt_rng *r, double *work, ibrt_stability *out)
{
    probe_loss pl = { .X = X, .Y = Y, .n = n };
    probe(p, m, &pl, r, work, out);
    out->data = IBRT_PROBE_GIVEN;
    out->samples = n;
    out->batches = 1;
}

void ibrt_stability_probe_init(const ibrt_problem *p, ibrt_model *m, const ibrt_dataset *ds, const double *X,
                               const double *Y, long n, const ibrt_rng *rdata, ibrt_rng *r, double *work,
                               ibrt_stability *out)
{
    probe_loss pl = { .X = X, .Y = Y, .n = n, .ds = ds, .from = *rdata };
    ibrt_probe_data data = IBRT_PROBE_GIVEN;
    long samples = n;
    if (p->minibatch && p->bmask && ds->mask) {
        /* random subsets of the observed entries: the mean of
         * IBRT_STABILITY_MASK_BATCHES of them, whatever the loss's
         * normalisation (the full mask would give 1/q times the expected
         * batch's Hessian when the loss is divided by every entry, q the
         * chance of an entry to be drawn) */
        samples = 0;
        for (long e = 0; e < p->out; e++)
            samples += ds->mask[e] != 0;
        pl.batches = IBRT_STABILITY_MASK_BATCHES;
        data = IBRT_PROBE_OBSERVED;
    } else if (p->minibatch && ds->n_train > 0 && ds->x_train && ds->y_train) {
        pl.X = ds->x_train;
        pl.Y = ds->y_train;
        pl.n = samples = (long)ds->n_train;
        data = IBRT_PROBE_TRAIN_SET;
    } else if (p->minibatch) {
        long b = p->bmax > 0 ? p->bmax : 1, k = (IBRT_STABILITY_SAMPLES + b - 1) / b;
        k = k < IBRT_STABILITY_BATCHES_MIN ? IBRT_STABILITY_BATCHES_MIN : k;
        pl.batches = (int)(k > IBRT_STABILITY_BATCHES_MAX ? IBRT_STABILITY_BATCHES_MAX : k);
        samples = pl.batches * b;
        data = IBRT_PROBE_BATCHES;
    }
    probe(p, m, &pl, r, work, out);
    out->data = data;
    out->samples = samples;
    out->batches = pl.batches > 0 ? pl.batches : 1;
}

const char *ibrt_stability_data_text(const ibrt_stability *st, char *buf, size_t len)
{
    switch (st->data) {
    case IBRT_PROBE_TRAIN_SET:
        snprintf(buf, len, " on the whole training set (%ld samples)", st->samples);
        break;
    case IBRT_PROBE_OBSERVED:
        snprintf(buf, len, " on the mean of %d batches of the %ld observed entries", st->batches, st->samples);
        break;
    case IBRT_PROBE_BATCHES:
        snprintf(buf, len, " on the mean of %d batches (%ld fresh samples)", st->batches, st->samples);
        break;
    default:
        snprintf(buf, len, "%s", "");
    }
    return buf;
}

/* The objective a trial is scored by: the loss, plus the L1 term for the
 * L1 baseline (what its steps descend). */
static double objective(const ibrt_model *m, double loss)
{
    if (m->l1 > 0) {
        double a = 0;
        for (long e = 0; e < m->l1_size; e++)
            a += fabs(m->th[m->l1_off + e]);
        loss += m->l1 * a;
    }
    return loss;
}

/* One stretch of a trial at rate lr: m->th holds the parameters after
 * `from` steps and r the batch stream before batch `from`; loss
 * evaluations at from, ..., to (each before the step it takes, the last
 * one after the last step, without a gradient).  The score: the mean
 * objective of the evaluations after to - window (they lie in this
 * stretch: window <= to - from), +inf when the loss becomes non-finite or
 * exceeds max_growth * loss0 (*loss0, when NAN, is set by evaluation 0).
 * *rend: the stream before batch `to` (the same for every rate). */
static double stretch(const ibrt_problem *p, ibrt_model *m, const ibrt_dataset *ds, ibrt_rng r, double lr, long from,
                      long to, long window, double max_growth, double *loss0, ibrt_rng *rend, long *taken)
{
    const long N = m->nth;
    double sum = 0;
    for (long s = from; s <= to; s++) {
        const double *X, *Y;
        if (s == to)
            *rend = r;
        long nb = p->draw_batch(ds, &r, &X, &Y);
        double loss = ibrt_driver_loss(p, m, X, Y, nb, s < to);
        if (s == 0)
            *loss0 = loss;
        if (!isfinite(loss) || (*loss0 > 0 && loss > max_growth * *loss0))
            return INFINITY;
        if (s > to - window)
            sum += objective(m, loss);
        if (s < to) {
            for (long i = 0; i < N; i++)
                m->th[i] -= lr * m->g[i];
            (*taken)++;
        }
    }
    return isfinite(sum) ? sum / (double)window : INFINITY;
}

/* The length of the rung after one of length prev, in a run of `run`
 * steps: twice as long, or the whole run once that is above 0.9 run (so
 * the last rung's window, a tenth of the run, lies after prev). */
static long next_rung(long prev, long run)
{
    long next = prev > run / 2 ? run : 2 * prev;
    return (double)next > 0.9 * (double)run ? run : next;
}

void ibrt_stability_select_lr(const ibrt_problem *p, ibrt_model *m, const ibrt_dataset *ds, const ibrt_rng *rb,
                              double lo, double hi, long first, long run, double max_growth, double *work,
                              ibrt_lr_grid *g)
{
    const long N = m->nth;
    double *th0 = work;
    memcpy(th0, m->th, sizeof(double) * (size_t)N);
    memset(g, 0, sizeof *g);
    g->best = -1;
    g->batches = p->minibatch;
    /* lo 10^c, rounded to 15 digits so that 1e-8 * 10^3 is 1e-05, not 9.999999999999999e-06 */
    for (int c = 0; c < IBRT_LR_GRID_MAX; c++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.15g", lo * pow(10, c));
        double lr = strtod(buf, NULL);
        if (!(lr <= hi * (1 + 1e-9)))
            break;
        g->lr[g->n++] = lr;
        g->score[c] = INFINITY;
    }
    /* each rate's parameters where its last stretch ended, one malloc
     * before any trial step; without it every stretch starts over from
     * th0 (the same scores: the same steps from the same point on the same
     * batches, at a higher cost) */
    double *state = malloc(sizeof(double) * (size_t)N * (size_t)(g->n > 0 ? g->n : 1));
    int alive[IBRT_LR_GRID_MAX], na = g->n;
    for (int c = 0; c < g->n; c++)
        alive[c] = c;
    double loss0 = NAN;
    ibrt_rng at = *rb;   /* the stream before batch `prev` */
    long prev = 0, len = first < run ? first : run;
    while (na > 0 && g->rungs < IBRT_LR_RUNG_MAX) {
        long window = g->batches ? (len / 10 > 1 ? len / 10 : 1) : 1;
        ibrt_rng rend = at;
        g->rung[g->rungs] = len;
        g->entrants[g->rungs] = na;
        for (int a = 0; a < na; a++) {
            const int c = alive[a];
            long from = state ? prev : 0;
            memcpy(m->th, from ? state + (size_t)c * (size_t)N : th0, sizeof(double) * (size_t)N);
            g->score[c] = stretch(p, m, ds, from ? at : *rb, g->lr[c], from, len, window, max_growth, &loss0, &rend,
                                  &g->total);
            g->reached[c] = len;
            if (state)
                memcpy(state + (size_t)c * (size_t)N, m->th, sizeof(double) * (size_t)N);
        }
        g->rungs++;
        /* rank the entrants by score (a tie: the lower rate), best first */
        for (int a = 1; a < na; a++)
            for (int b = a; b > 0; b--) {
                int x = alive[b - 1], y = alive[b];
                if (g->score[y] < g->score[x] || (g->score[y] == g->score[x] && y < x)) {
                    alive[b - 1] = y;
                    alive[b] = x;
                }
            }
        int keep = (na + 1) / 2, finite = 0;
        while (finite < na && isfinite(g->score[alive[finite]]))
            finite++;
        if (keep > finite)
            keep = finite;
        if (len >= run || keep <= 1)
            break;
        na = keep;
        at = rend;
        prev = len;
        len = next_rung(len, run);
    }
    /* the choice.  Normally the best of the last rung.  When every rate of
     * the last rung diverged (a trial is the run's own beginning: the run
     * at that rate would diverge there too), a fallback: of the rates
     * that never diverged and lie below the lowest rate that diverged in
     * that rung (instability grows with the rate), those that got
     * furthest, and of them the lowest score (a tie: the lower rate).
     * When no such rate is left: none (best -1), nothing to train with
     * (a higher rate that never diverged only ran a shorter trial). */
    const int last = g->rungs - 1;
    bool alldiv = last >= 0;
    double lowdiv = INFINITY;
    for (int c = 0; c < g->n; c++)
        if (last >= 0 && g->reached[c] == g->rung[last]) {
            if (isfinite(g->score[c]))
                alldiv = false;
            else if (g->lr[c] < lowdiv)
                lowdiv = g->lr[c];
        }
    for (int c = 0; c < g->n; c++)
        if (isfinite(g->score[c]) && (!alldiv || g->lr[c] < lowdiv) &&
            (g->best < 0 || g->reached[c] > g->reached[g->best] ||
             (g->reached[c] == g->reached[g->best] && g->score[c] < g->score[g->best])))
            g->best = c;
    g->outcome = g->best < 0 ? IBRT_LR_NONE : alldiv ? IBRT_LR_FALLBACK : IBRT_LR_BEST;
    g->failed_rung = alldiv ? last : -1;
    free(state);
    memcpy(m->th, th0, sizeof(double) * (size_t)N);
}
