/*
 * driver_checks.c: the measurements and checks a run makes of a model
 * outside its training steps: the gradient check at the initial point
 * (central differences), the metrics after training (test error, the
 * design parameter w, a matrix output), the balance quantities and their
 * three predictions (docs/theory.md §4, §6), the finite-step identity
 * (§9), the symmetry groups' log det G jointly and group by group (§8),
 * and the run's references (matrix completion, the stationary law, §7).
 * Buffers needed only here are allocated here, after training.
 */
#include "driver_impl.h"
#include "ibrt_mat.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Central differences of the loss along one entry e of theta (d NULL)
 * or along the unit direction d (e < 0), taken at seven steps h = 1e-1
 * ... 1e-7 (times max(1, |theta_e|) for an entry): truncation grows as
 * h^2 and round-off as eps L / h, and which h balances them depends on the
 * scale of the loss and of the gradient (a small initialisation gives
 * gradients many orders below the loss).  Each pair of neighbouring steps
 * is scored by its disagreement plus the round-off bound 4 eps |L| / h of
 * its smaller step (at tiny h the loss differences are quantised, and two
 * steps can agree by rounding to the same value), and the best pair is
 * used: its smaller step's estimate is returned, their disagreement in
 * *spread.  theta is restored exactly (th0: its copy, for a direction). */
static double central_difference(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb,
                                 long e, const double *d, const double *th0, double l0, double *spread)
{
    enum { NH = 7 };
    const ibrt_problem *p = R->p;
    double t = e >= 0 ? m->th[e] : 0, fd[NH], score[NH], h = 1e-1;
    for (int q = 0; q < NH; q++, h /= 10) {
        double he = e >= 0 ? h * fmax(1, fabs(t)) : h, l[2];
        score[q] = 4 * 2.220446049250313e-16 * l0 / he;   /* the round-off bound at this step */
        for (int side = 0; side < 2; side++) {
            double step = side ? -he : he;
            if (e >= 0)
                m->th[e] = t + step;
            else
                for (long i = 0; i < m->nth; i++)
                    m->th[i] = th0[i] + step * d[i];
            l[side] = ibrt_drv_loss_grad(p, m, X, Y, nb, false, false);
        }
        if (e >= 0)
            m->th[e] = t;
        else
            memcpy(m->th, th0, sizeof(double) * (size_t)m->nth);
        fd[q] = (l[0] - l[1]) / (2 * he);
    }
    int best = 0;
    for (int q = 0; q + 1 < NH; q++) {
        score[q] = fabs(fd[q] - fd[q + 1]) + score[q + 1];
        if (score[q] < score[best])
            best = q;
    }
    *spread = fabs(fd[best] - fd[best + 1]);
    return fd[best + 1];
}

/* The gradient check: the analytic gradient against central
 * differences, relative to the largest gradient entry.  Every entry when
 * theta has at most GC_ALL of them; otherwise GC_ENTRIES entries drawn at
 * random (without repetition) plus GC_DIRS random unit directions v, where
 * the directional derivative g . v is compared relative to ||g||_2, so
 * that the cost (14 loss evaluations each) does not grow with the model
 * (rng stream 2000 + k: the run's other streams are untouched).  When even
 * the best pair of steps disagrees by more than the tolerance the loss has
 * a kink within +-h (a relu switching): the derivative is not defined
 * there, and the entry or direction is skipped and counted.  A wrong
 * gradient still fails: the differences agree with each other and not
 * with it.  *checked: entries and directions compared, skipped included. */
enum { GC_ALL = 1024, GC_ENTRIES = 256, GC_DIRS = 8 };

static double gradient_check(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb,
                             long *skipped, long *checked, bool *sampled)
{
    const ibrt_problem *p = R->p;
    double tol = p->gradient_tol, worst = 0, scale = 0, norm = 0, *ga = R->g_analytic;
    double l0 = fabs(ibrt_drv_loss_grad(p, m, X, Y, nb, true, false));
    memcpy(ga, m->g, sizeof(double) * (size_t)m->nth);
    for (long e = 0; e < m->nth; e++) {
        scale = fmax(scale, fabs(ga[e]));
        norm += ga[e] * ga[e];
    }
    norm = sqrt(norm);
    *skipped = 0;
    *sampled = m->nth > GC_ALL;
    long n = *sampled ? GC_ENTRIES : m->nth;
    long *pick = *sampled ? malloc(sizeof(long) * (size_t)m->nth) : NULL;
    double *th0 = *sampled ? malloc(sizeof(double) * (size_t)m->nth) : NULL;
    double *v = *sampled ? malloc(sizeof(double) * (size_t)m->nth) : NULL;
    if (*sampled && (!pick || !th0 || !v)) {
        free(pick);
        free(th0);
        free(v);
        *checked = 0;
        return INFINITY;   /* out of memory: the check fails rather than pass unchecked */
    }
    ibrt_rng rg;
    ibrt_rng_fork(&rg, R->o.seed, 2000 + (uint64_t)R->k);
    if (*sampled) {   /* a partial Fisher-Yates shuffle: n distinct entries */
        for (long i = 0; i < m->nth; i++)
            pick[i] = i;
        for (long i = 0; i < n; i++) {
            long j = i + (long)ibrt_rng_below(&rg, (uint64_t)(m->nth - i));
            long tmp = pick[i];
            pick[i] = pick[j];
            pick[j] = tmp;
        }
    }
    for (long c = 0; c < n; c++) {
        long e = pick ? pick[c] : c;
        double spread, fd = central_difference(R, m, X, Y, nb, e, NULL, NULL, l0, &spread);
        if (spread > tol * fmax(scale, 1e-300)) {
            (*skipped)++;
            continue;
        }
        worst = fmax(worst, fabs(fd - ga[e]) / fmax(scale, 1e-300));
    }
    *checked = n;
    if (*sampled) {
        memcpy(th0, m->th, sizeof(double) * (size_t)m->nth);
        for (int q = 0; q < GC_DIRS; q++) {
            double vn = 0, gv = 0, spread;
            for (long i = 0; i < m->nth; i++) {
                v[i] = ibrt_rng_normal(&rg);
                vn += v[i] * v[i];
            }
            vn = sqrt(vn);
            for (long i = 0; i < m->nth; i++) {
                v[i] /= vn;
                gv += ga[i] * v[i];
            }
            double fd = central_difference(R, m, X, Y, nb, -1, v, th0, l0, &spread);
            (*checked)++;
            if (spread > tol * fmax(norm, 1e-300)) {
                (*skipped)++;
                continue;
            }
            worst = fmax(worst, fabs(fd - gv) / fmax(norm, 1e-300));
        }
    }
    free(pick);
    free(th0);
    free(v);
    return worst;
}

/* The checks of model m at its initial point, on the batch X, Y: its
 * structural checks and the gradient check, each with its fixed cost;
 * under --gradcheck the gradient check's line on stdout (R->gc_failed
 * when it fails). */
void ibrt_drv_checks_at_init(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb)
{
    const ibrt_problem *p = R->p;
    char when[64];
    snprintf(when, sizeof when, "%s, init", m->name);
    double ts0 = ibrt_time_now();
    if (m->structure)
        m->structure(X, &R->rs, &R->checks, when);
    ibrt_drv_fixed_cost(R, "structure checks at init", m->name, ibrt_time_now() - ts0);
    long skipped, checked;
    bool sampled;
    double t0 = ibrt_time_now();
    double gerr = gradient_check(R, m, X, Y, nb, &skipped, &checked, &sampled);
    bool gok = gerr <= p->gradient_tol && checked > 0 && skipped * 10 < checked;
    char name[96], detail[200], what[96];
    if (sampled)
        snprintf(what, sizeof what, "%d random entries of %ld and %d random directions", GC_ENTRIES, m->nth,
                 GC_DIRS);
    else
        snprintf(what, sizeof what, "all %ld entries", m->nth);
    snprintf(name, sizeof name, "gradient vs central differences (%s)", m->name);
    snprintf(detail, sizeof detail, "max |fd - analytic| / max |analytic| over %s; %ld at a kink, skipped", what,
             skipped);
    ibrt_checks_add(&R->checks, name, gerr, 0, p->gradient_tol, gok, detail);
    ibrt_drv_fixed_cost(R, "gradient check", m->name, ibrt_time_now() - t0);
    if (R->o.gradcheck) {   /* the initial point only, no training */
        printf("gradcheck %-10s max |fd - analytic| / max |analytic| = %.3g (tolerance %.3g) over %s, "
               "%ld at a kink skipped: %s\n", m->name, gerr, p->gradient_tol, what, skipped,
               gok ? "PASS" : "FAIL");
        R->gc_failed = R->gc_failed || !gok;
    }
}

/* docs/theory.md §6 on a Hadamard-type pair: one step maps chi_i to chi_i (1 -
 * eta^2 r_i^2), so log |chi_i(0) / chi_i(T)| = -sum_t log(1 - eta^2 r_t^2),
 * which is sum_t eta^2 r_t^2 to leading order.  Compared over the indices
 * where the predicted contraction exceeds 0.01 (below that, rounding of
 * chi = (u^2 - v^2)/2 competes with the signal). */
static void pair_contraction(run_state *R, const ibrt_model *m)
{
    const char *sfx = m->suffix;
    double med, mn, mx, *meas = R->scratch0, *pred = R->scratch1, *rat = R->scratch2;
    size_t n = 0;
    for (long i = 0; i < m->nbal; i++)
        if (R->contr[i] > 0.01 && R->chi[i] != 0 && R->chi0[i] != 0) {
            meas[n] = log(fabs(R->chi0[i] / R->chi[i]));
            pred[n] = R->contr[i];
            rat[n] = meas[n] / pred[n];
            n++;
        }
    ibrt_drv_put_metric(R, "chi_contraction_indices", sfx, (double)n);
    if (n == 0)
        return;
    ibrt_stats_median_min_max(meas, n, &med, &mn, &mx);
    ibrt_drv_put_metric(R, "chi_contraction_measured_median", sfx, med);
    ibrt_stats_median_min_max(pred, n, &med, &mn, &mx);
    ibrt_drv_put_metric(R, "chi_contraction_predicted_median", sfx, med);
    ibrt_stats_median_min_max(rat, n, &med, &mn, &mx);
    ibrt_drv_put_metric(R, "chi_contraction_ratio_median", sfx, med);
    char name[96];
    snprintf(name, sizeof name, "chi contraction = sum eta^2 r^2 (%s)", m->name);
    ibrt_checks_add(&R->checks, name, med, 1, 0.05, fabs(med - 1) <= 0.05,
                    "median over indices of log|chi(0)/chi(T)| / sum_t eta^2 r_t^2 (docs/theory.md §6)");
}

/* The balance quantities at the end of a run, family by family (metrics
 * without a tag: the first family; "_fam<id>" for the others). */
static void balance_metrics(run_state *R, const ibrt_model *m, size_t k)
{
    const char *sfx = m->suffix;
    const ibrt_problem *p = R->p;
    long nbal = m->nbal;
    double med, mn, mx;
    m->balance(m->th, R->chi, R->ratio, R->nA, R->nB);
    if (p->minibatch) {
        /* per-index second moments m_p of the blocks' gradients over 256
         * fresh minibatches, for the noise equilibrium below */
        const double *X, *Y;
        memset(R->mA, 0, sizeof(double) * (size_t)nbal);
        memset(R->mB, 0, sizeof(double) * (size_t)nbal);
        for (int q = 0; q < 256; q++) {
            long nq = p->draw_batch(&R->ds, &R->rb, &X, &Y);
            ibrt_drv_loss_grad(p, m, X, Y, nq, true, true);
            /* scratch for the gradient's chi and ratio: R->chi keeps chi(T) */
            m->balance(m->g, R->tmp, R->brow, R->scratch0, R->scratch1);
            for (long i = 0; i < nbal; i++) {
                R->mA[i] += R->scratch0[i] / 256;
                R->mB[i] += R->scratch1[i] / 256;
            }
        }
    }
    long start = 0;
    for (size_t f = 0; f < m->nfam; start += m->fams[f].count, f++) {
        const ibrt_family *fam = &m->fams[f];
        long n = fam->count;
        const double *chi = R->chi + start, *chi0 = R->chi0 + start, *nA = R->nA + start, *nB = R->nB + start;
        const double *nA0 = R->nA0 + start, *nB0 = R->nB0 + start;
        double *c0 = R->scratch0, *c1 = R->scratch1;
        char name[96], tag[24] = "";
        if (f > 0)
            snprintf(tag, sizeof tag, "_fam%d", fam->id);
#define PUT(base, v) (snprintf(name, sizeof name, "%s%s", base, tag), ibrt_drv_put_metric(R, name, sfx, (v)))
        memcpy(R->tmp, R->ratio + start, sizeof(double) * (size_t)n);
        ibrt_stats_median_min_max(R->tmp, (size_t)n, &med, &mn, &mx);
        PUT("ratio_median", med);
        PUT("ratio_min", mn);
        PUT("ratio_max", mx);
        for (long i = 0; i < n; i++) {
            c0[i] = fabs(chi0[i]);
            c1[i] = fabs(chi[i]);
        }
        ibrt_stats_median_min_max(c0, (size_t)n, &med, &mn, &mx);
        PUT("chi_abs_median_start", med);
        ibrt_stats_median_min_max(c1, (size_t)n, &med, &mn, &mx);
        PUT("chi_abs_median_end", med);
        /* Which mechanism (docs/theory.md §6): chi conserved while the norms
         * grow, or chi driven.  The threshold is fixed, not tuned: a
         * median relative change of chi below 5% is "conserved". */
        for (long i = 0; i < n; i++) {
            c0[i] = fabs(chi[i] - chi0[i]) / fmax(fabs(chi0[i]), 1e-12 * (nA0[i] + nB0[i]));
            c1[i] = sqrt((nA[i] + nB[i]) / (nA0[i] + nB0[i]));
        }
        double rel, growth;
        ibrt_stats_median_min_max(c0, (size_t)n, &rel, &mn, &mx);
        ibrt_stats_median_min_max(c1, (size_t)n, &growth, &mn, &mx);
        PUT("chi_rel_change_median", rel);
        PUT("norm_growth_median", growth);
        if (f == 0 && k < 16)
            snprintf(ibrt_drv_mechanism[k], sizeof ibrt_drv_mechanism[k], "%s", rel < 0.05 ? "conserved" : "driven");
        snprintf(name, sizeof name, "mechanism%s", tag);
        ibrt_drv_metric_key(R, name, sfx);
        ibrt_json_str(R->j, rel < 0.05 ? (growth > 1.5 ? "conserved: chi kept its initial value while the norms grew "
                                                         "(a gradient-flow invariant, not the noise correction)"
                                                       : "conserved: chi kept its initial value")
                                       : "driven: chi moved (SGD noise at finite step size)");
        /* The three predictions of docs/theory.md §4 for the norm ratio: the log
         * det G minimiser and the dual slice (exact, from the derivation),
         * and the noise equilibrium from the measured per-block gradient
         * second moments m_p: along the orbit m_p scales as e^(-2 alpha_p
         * t), so sum_p alpha_p m_p e^(-2 alpha_p t) = 0 gives (n0/n1)* =
         * n0 alpha0 m0 / (-n1 alpha1 m1). */
        PUT("ratio_pred_logdet_min", fam->pred_logdet);
        PUT("ratio_pred_dual_slice", fam->pred_dual);
        if (p->minibatch) {
            for (long i = 0; i < n; i++)
                R->scratch2[i] = sqrt(nA[i] * fam->alpha0 * R->mA[start + i] / (-nB[i] * fam->alpha1 * R->mB[start + i]));
            ibrt_stats_median_min_max(R->scratch2, (size_t)n, &med, &mn, &mx);
            PUT("ratio_pred_noise_equilibrium", med);
        }
#undef PUT
        snprintf(name, sizeof name, "ratio_definition%s", tag);
        ibrt_drv_metric_key(R, name, sfx);
        ibrt_json_str(R->j, fam->ratio_definition);
    }
    if (m->pair)
        pair_contraction(R, m);
}

/* The metrics of model k after training (loss: its final training loss). */
void ibrt_drv_model_metrics(run_state *R, size_t k, double loss)
{
    const ibrt_problem *p = R->p;
    const ibrt_model *m = &p->models[k];
    const ibrt_dataset *ds = &R->ds;
    const char *sfx = m->suffix;
    const long OUT = p->out, IN = p->in, BMAX = p->bmax;
    ibrt_error err;
    ibrt_drv_put_metric(R, "final_loss", sfx, loss);
    if (ds->n_test > 0) {
        double mse = 0;
        for (size_t s0 = 0; s0 < ds->n_test; s0 += (size_t)BMAX) {
            long nc = ds->n_test - s0 < (size_t)BMAX ? (long)(ds->n_test - s0) : BMAX;
            m->forward(m->th, ds->x_test + s0 * (size_t)IN, nc, m->tp);
            for (long s = 0; s < nc; s++)
                for (long e = 0; e < OUT; e++) {
                    double r = m->tp[m->root + (m->root_batched ? s * OUT : 0) + e] - ds->y_test[(s0 + (size_t)s) * (size_t)OUT + (size_t)e];
                    mse += r * r;
                }
        }
        ibrt_drv_put_metric(R, "test_mse", sfx, mse / (double)(ds->n_test * (size_t)OUT));
    }
    if (m->w_size > 0) {   /* the design parameter w, as the researcher sees it */
        long n = m->w_size;
        double *w = R->w;
        if (m->w_of)
            m->w_of(m->th, w);
        else
            memcpy(w, m->th + m->w_off, sizeof(double) * (size_t)n);
        if (m->w_check) {
            double rel = m->w_check(m->th);
            ibrt_checks_add(&R->checks, "designed parameterisation: A w = product of factors", rel, 0, 1e-10,
                            rel <= 1e-10, "max |A w - a1*...*aL| / max |a1*...*aL|");
        }
        snprintf(R->path, sizeof R->path, "%s/w_%s.npy", R->o.out_dir, m->name);
        size_t shp[1] = { (size_t)n };
        if (ibrt_npy_write(R->path, w, 1, shp, &err) != IBRT_OK)
            ibrt_drv_output_failed(R, &err);
        if (ds->truth_size == (size_t)n) {
            double rec = 0, tv = 0;
            ibrt_csv wc;   /* the learned coefficients next to the truth, for plots */
            snprintf(R->path, sizeof R->path, "%s/w_%s.csv", R->o.out_dir, m->name);
            if (ibrt_csv_open(&wc, R->path, "i,w,truth", &err) == IBRT_OK) {
                for (long i = 0; i < n; i++) {
                    double row[3] = { (double)i, w[i], ds->truth[i] };
                    ibrt_csv_row(&wc, row, 3);
                }
                if (ibrt_csv_close(&wc, &err) != IBRT_OK)
                    ibrt_drv_output_failed(R, &err);
            } else
                ibrt_drv_output_failed(R, &err);
            for (long i = 0; i < n; i++) {
                rec += (w[i] - ds->truth[i]) * (w[i] - ds->truth[i]) / (double)n;
                if (i)
                    tv += fabs(w[i] - w[i - 1]);
            }
            ibrt_drv_put_metric(R, "recon_mse", sfx, rec);
            ibrt_drv_put_metric(R, "tv", sfx, tv);
            ibrt_drv_put_metric(R, "fit_mse", sfx, loss);
            /* support: the indices of the largest |w_i|, as many as the truth's non-zeros */
            if (ds->nonzeros > 0 && ds->nonzeros <= 64) {
                double sup[64];
                bool *used = (bool *)R->tmp;   /* nbal or more doubles: room for n flags */
                memset(used, 0, (size_t)n);
                for (size_t q = 0; q < ds->nonzeros; q++) {
                    long best = -1;
                    for (long i = 0; i < n; i++)
                        if (!used[i] && (best < 0 || fabs(w[i]) > fabs(w[best])))
                            best = i;
                    used[best] = true;
                }
                size_t c = 0;
                for (long i = 0; i < n; i++)
                    if (used[i])
                        sup[c++] = (double)i;
                ibrt_drv_metric_key(R, "support", sfx);
                ibrt_json_nums(R->j, sup, c);
                if (k == 0) {
                    c = 0;
                    for (long i = 0; i < n; i++)
                        if (ds->truth[i] != 0)
                            sup[c++] = (double)i;
                    ibrt_json_key(R->j, "support_true");
                    ibrt_json_nums(R->j, sup, c);
                }
            }
        }
    }
    if (p->zrows > 0) {   /* a matrix output against its ground truth */
        long r = p->zrows, c = p->zcols, ns = r < c ? r : c;
        m->forward(m->th, R->X, 1, m->tp);
        if (ibrt_linalg_svd_values((size_t)r, (size_t)c, m->tp + m->root, R->tmp, &err) == IBRT_OK) {
            ibrt_drv_metric_key(R, "singular_values", sfx);
            ibrt_json_nums(R->j, R->tmp, (size_t)ns);
        }
        double num = 0, den = 0;
        for (long e = 0; e < OUT; e++) {
            double d = m->tp[m->root + e] - ds->truth[e];
            num += d * d;
            den += ds->truth[e] * ds->truth[e];
        }
        ibrt_drv_put_metric(R, "relative_error", sfx, sqrt(num / den));
        snprintf(R->path, sizeof R->path, "%s/Z_%s.npy", R->o.out_dir, m->name);
        size_t shp[2] = { (size_t)r, (size_t)c };
        if (ibrt_npy_write(R->path, m->tp + m->root, 2, shp, &err) != IBRT_OK)
            ibrt_drv_output_failed(R, &err);
    }
    if (m->nbal)
        balance_metrics(R, m, k);
}

/* How far a GL(r) junction is from its dual slice C = 0 at the end of a
 * run: ||C||_F relative to tr A'A + tr B B' (the sum of the absolute
 * terms of C's diagonal, R->qa), 0 exactly on the slice and at most 1;
 * and the extreme eigenvalues of C (allocated here, after training). */
static void junction_balance(run_state *R, const ibrt_model *m, size_t g, long first, long r, double fro)
{
    double tr = 0, *C = malloc(sizeof(double) * (size_t)(r * r + r)), lo = NAN, hi = NAN;
    for (long i = 0, t = first; i < r; i++)
        for (long j = i; j < r; j++, t++) {
            if (i == j)
                tr += R->qa[t];
            if (C)
                C[i * r + j] = C[j * r + i] = R->qT[t];
        }
    if (C && LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)r, C, (lapack_int)r, C + r * r) == 0) {
        lo = C[r * r];
        hi = C[r * r + r - 1];
    }
    free(C);
    char key_[48];
    snprintf(key_, sizeof key_, "C_fro_rel_end_group%zu", g + 1);
    ibrt_drv_put_metric(R, key_, m->suffix, tr > 0 ? fro / tr : NAN);
    snprintf(key_, sizeof key_, "C_eig_min_end_group%zu", g + 1);
    ibrt_drv_put_metric(R, key_, m->suffix, lo);
    snprintf(key_, sizeof key_, "C_eig_max_end_group%zu", g + 1);
    ibrt_drv_put_metric(R, key_, m->suffix, hi);
}

/* docs/theory.md §9: for every group, max over its functions of
 * |q_i(th_T) - q_i(th_0) - sum_t lr^2 q_i(g_t)| / D_i, D_i the larger of
 * sum_t lr^2 |q_i(g_t)| (the path of the predicted change) and qa_i, the
 * size of q_i's terms at the end: q_i is a difference of such terms, and
 * every update and gradient rounds at that scale (an index whose
 * residual has converged to 1e-6 drifts by less than the rounding of its
 * own u^2 - v^2).  The identity is exact, so the tolerance is 1e-9: a
 * wrong generator or gradient breaks invariance, K th . g != 0, and
 * every step then adds lr K th . g to the error. */
static void finite_step_identity(run_state *R, const ibrt_model *m, bool check)
{
    m->quad(m->th, R->qT, R->qa);
    long begin = 0;
    double all = 0;
    for (size_t g = 0; g < m->nqgroups; g++) {
        double worst = 0, drift = 0;
        for (long i = begin; i < m->qgroups[g].end; i++) {
            double d = fmax(R->qaccabs[i], R->qa[i]);
            double e = fabs(R->qT[i] - R->q0[i] - R->qacc[i]);
            worst = fmax(worst, d > 0 ? e / d : e);
            drift = fmax(drift, fabs(R->qT[i] - R->q0[i]));
        }
        begin = m->qgroups[g].end;
        all = fmax(all, worst);
        char name[160];
        snprintf(name, sizeof name, "finite-step identity, group %zu (%s)", g + 1, m->name);
        if (check)
            ibrt_checks_add(&R->checks, name, worst, 0, 1e-9, worst <= 1e-9,
                            "max |q(T) - q(0) - sum lr^2 q(g)| / max(sum lr^2 |q(g)|, |terms of q|) over the group's "
                            "conserved functions (docs/theory.md §9)");
        char key_[48];
        snprintf(key_, sizeof key_, "conserved_drift_max_group%zu", g + 1);
        ibrt_drv_put_metric(R, key_, m->suffix, drift);
        /* the size of the dual slice at both ends */
        long first = g ? m->qgroups[g - 1].end : 0, r = m->qgroups[g].r;
        double s0 = ibrt_drv_dual_slice_size(m, g, R->q0), sT = ibrt_drv_dual_slice_size(m, g, R->qT);
        snprintf(key_, sizeof key_, r ? "C_fro_start_group%zu" : "chi_abs_max_start_group%zu", g + 1);
        ibrt_drv_put_metric(R, key_, m->suffix, s0);
        snprintf(key_, sizeof key_, r ? "C_fro_end_group%zu" : "chi_abs_max_end_group%zu", g + 1);
        ibrt_drv_put_metric(R, key_, m->suffix, sT);
        if (r)
            junction_balance(R, m, g, first, r, sT);
    }
    if (check)
        ibrt_drv_put_metric(R, "finite_step_identity_max", m->suffix, all);
}

/* log det of the Gram matrix of the model's torus generators, jointly
 * and as the sum of its per-index blocks (ibrt_model.gens).  At the end
 * of a run, so the buffers are allocated here; a model whose generator
 * matrix would exceed 64 MiB is left out (metrics NaN). */
static void joint_logdet(run_state *R, const ibrt_model *m)
{
    long n = m->ngen, D = m->nth;
    double joint = NAN, blocks = NAN;
    double *xi = n * D <= (8L << 20) ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    double *G = xi ? calloc((size_t)(n * n), sizeof(double)) : NULL;
    int kmax = 1;   /* the largest family's generators per index: its block B is kmax x kmax */
    for (size_t f = 0; f < m->ngenfam; f++)
        kmax = m->genfam[f].k > kmax ? m->genfam[f].k : kmax;
    double *B = G ? malloc(sizeof(double) * (size_t)kmax * (size_t)kmax) : NULL;
    if (B) {
        m->gens(m->th, xi);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)D, 1.0, xi, (int)D, 0.0, G, (int)n);
        blocks = 0;
        long row = 0;
        for (size_t f = 0; f < m->ngenfam && !isnan(blocks); f++)
            for (long i = 0; i < m->genfam[f].count; i++, row += m->genfam[f].k) {
                int k = m->genfam[f].k;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++)
                        B[a * k + b] = G[(row + (a > b ? a : b)) * n + row + (a > b ? b : a)];
                /* each 2 log L_aa added to the running sum, in the order of
                 * the joint Cholesky's diagonal (not block by block): an
                 * uncoupled Gram then gives joint - blocks exactly 0 */
                if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, B, k) != 0) {
                    blocks = NAN;
                    break;
                }
                for (int a = 0; a < k; a++)
                    blocks += 2 * log(B[a * k + a]);
            }
        int st;
        joint = ibrt_linalg_logdet_chol_inplace((size_t)n, G, &st);   /* NaN unless positive definite */
    }
    free(xi);
    free(G);
    free(B);
    ibrt_drv_put_metric(R, "logdet_G_joint_end", m->suffix, joint);
    ibrt_drv_put_metric(R, "logdet_G_blocks_end", m->suffix, blocks);
    if (!m->gen_coupled && !isnan(joint)) {
        double e = fabs(joint - blocks) / fmax(1, fabs(joint));
        char name[96];
        snprintf(name, sizeof name, "joint log det G = sum over families (%s)", m->name);
        ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                        "no family shares a parameter: the joint Gram is block diagonal (docs/theory.md §2)");
    }
}

/* log det of the Gram matrix of every generator of the model's symmetry
 * groups at once (ibrt_model.symgroups: torus families outside a
 * junction and the r^2 generators of each GL junction), and the sum of
 * the groups' own log dets, at the end of a run (buffers allocated here;
 * a generator matrix over 64 MiB is left out, metrics NaN).  Without
 * coupling the Gram matrix is block diagonal and the two agree (checked);
 * along a chain the blocks of adjacent junctions overlap and only the
 * joint one is the model's (docs/theory.md §8).  One group alone has nothing
 * to check. */
static void group_logdet(run_state *R, const ibrt_model *m)
{
    long n = 0, D = m->nth, ntor = m->ngen, *first = calloc(m->ngenfam + 1, sizeof(long));
    for (size_t f = 0; first && f < m->ngenfam; f++)
        first[f + 1] = first[f] + m->genfam[f].count * m->genfam[f].k;
    bool coupled = false;
    for (size_t g = 0; g < m->nsymgroups; g++) {
        const ibrt_symgroup *s = &m->symgroups[g];
        n += s->family >= 0 ? m->genfam[s->family].count * m->genfam[s->family].k : s->r * s->r;
        for (size_t h = 0; h < g; h++)
            coupled |= m->symgroups[h].component == s->component;
    }
    double joint = NAN, sum = NAN;
    bool fits = first && (n + ntor) * D <= (8L << 20);
    double *xi = fits ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    double *tor = xi && ntor ? calloc((size_t)(ntor * D), sizeof(double)) : NULL;
    double *G = xi ? calloc((size_t)(n * n), sizeof(double)) : NULL;
    if (G && (tor || !ntor)) {
        if (ntor)
            m->gens(m->th, tor);
        long row = 0;
        for (size_t g = 0; g < m->nsymgroups; g++) {
            const ibrt_symgroup *s = &m->symgroups[g];
            if (s->family >= 0) {
                long rows = m->genfam[s->family].count * m->genfam[s->family].k;
                memcpy(xi + row * D, tor + first[s->family] * D, sizeof(double) * (size_t)(rows * D));
                row += rows;
            } else {
                ibrt_gl_gens(m->th, &s->a, &s->b, s->r, D, xi + row * D);
                row += s->r * s->r;
            }
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)D, 1.0, xi, (int)D, 0.0, G, (int)n);
        /* each group's own block first (a copy), then the whole */
        sum = 0;
        row = 0;
        for (size_t g = 0; g < m->nsymgroups && !isnan(sum); g++) {
            const ibrt_symgroup *s = &m->symgroups[g];
            long b = s->family >= 0 ? m->genfam[s->family].count * m->genfam[s->family].k : s->r * s->r;
            double *B = malloc(sizeof(double) * (size_t)(b * b));
            for (long i = 0; B && i < b; i++)
                memcpy(B + i * b, G + (row + i) * n + row, sizeof(double) * (size_t)(i + 1));
            /* added term by term, in the joint Cholesky's order (as joint_logdet) */
            if (B && LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)b, B, (lapack_int)b) == 0)
                for (long i = 0; i < b; i++)
                    sum += 2 * log(B[i * b + i]);
            else
                sum = NAN;
            free(B);
            row += b;
        }
        int st;
        joint = ibrt_linalg_logdet_chol_inplace((size_t)n, G, &st);   /* NaN unless positive definite */
    }
    free(first);
    free(xi);
    free(tor);
    free(G);
    ibrt_drv_put_metric(R, "logdet_G_group_end", m->suffix, joint);
    ibrt_drv_put_metric(R, "logdet_G_group_sum_end", m->suffix, sum);
    if (m->nsymgroups > 1 && !coupled && !isnan(joint) && !isnan(sum)) {
        double e = fabs(joint - sum) / fmax(1, fabs(joint));
        char name[96];
        snprintf(name, sizeof name, "whole-group log det G = sum over groups (%s)", m->name);
        ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                        "no two symmetry groups share a parameter: the Gram matrix of all their generators is block "
                        "diagonal (docs/theory.md §8)");
    }
}

/* For every coupled component whose joint det G the derivation expanded
 * (ibrt_model.joints, docs/theory.md §8): the log of the exact polynomial
 * at the current parameters against the Cholesky log det of the Gram of
 * the component's torus generators (m->gens), 1e-9 relative.  The buffers
 * are allocated here, at the end of a run; a generator matrix over 64 MiB
 * is left out (no row). */
static void joint_poly_checks(run_state *R, const ibrt_model *m)
{
    long n = m->ngen, D = m->nth;
    double *xi = n * D <= (8L << 20) ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    long *first = calloc(m->ngenfam + 1, sizeof(long)), *rows = calloc((size_t)n + 1, sizeof(long));
    double *G = calloc((size_t)(n * n) + 1, sizeof(double));
    if (xi && first && rows && G) {
        m->gens(m->th, xi);
        for (size_t f = 0; f < m->ngenfam; f++)
            first[f + 1] = first[f] + m->genfam[f].count * m->genfam[f].k;
        for (size_t j = 0; j < m->njoints; j++) {
            const ibrt_jointpoly *jp = &m->joints[j];
            long k = 0;
            for (size_t f = 0; f < jp->nfams; f++)
                for (long r = first[jp->fams[f]]; r < first[jp->fams[f] + 1]; r++)
                    rows[k++] = r;
            for (long a = 0; a < k; a++)
                for (long b = 0; b <= a; b++)
                    G[a * k + b] = cblas_ddot((int)D, xi + rows[a] * D, 1, xi + rows[b] * D, 1);
            int st;
            double p = jp->det(m->th), ld = ibrt_linalg_logdet_chol_inplace((size_t)k, G, &st);
            double e = isnan(ld) || !(p > 0) ? INFINITY : fabs(ld - log(p)) / fmax(1, fabs(ld));
            char name[128];
            snprintf(name, sizeof name, "log det G = derived polynomial, coupled groups %s (%s)", jp->groups, m->name);
            ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                            "Cholesky of the Gram of the groups' generators vs log of the exact Cauchy-Binet "
                            "polynomial over the cells, relative in log space (docs/theory.md §8)");
        }
    }
    free(xi);
    free(first);
    free(rows);
    free(G);
}

/* The symmetry groups' measurements of model m at the end of a run (or
 * at the last snapshot): the finite-step identity (checked when
 * `identity`: the sums cover every step), the torus generators' joint
 * and per-index log det G, every group's, and the derived polynomials
 * of coupled groups; each when the model has them. */
void ibrt_drv_symmetry_checks(run_state *R, const ibrt_model *m, bool identity)
{
    if (m->nquad)
        finite_step_identity(R, m, identity);
    if (m->ngen)
        joint_logdet(R, m);
    if (m->nsymgroups)
        group_logdet(R, m);
    if (m->njoints)
        joint_poly_checks(R, m);
}

/* The run's references, after every model: for a matrix output with a
 * mask and its truth, nuclear-norm completion with an oracle lambda (E3)
 * and whether the observed entries determine the truth; for a spec that
 * asks for it, the stationary-law test.  0, or 1 after a message. */
int ibrt_drv_run_references(run_state *R)
{
    const ibrt_problem *p = R->p;
    ibrt_error err;
    if (p->zrows > 0 && R->ds.mask && R->ds.truth_size == (size_t)(p->zrows * p->zcols)) {
        /* E3's reference: nuclear-norm completion with an oracle lambda, and
         * whether the observed entries determine the truth at all */
        ibrt_completion_report cr;
        bool sweep = R->o.reference || p->zrows * p->zcols <= 64 * 64;
        double t0 = ibrt_time_now();
        if (ibrt_baseline_completion((size_t)p->zrows, (size_t)p->zcols, R->ds.truth, R->ds.mask, sweep, &cr, &err) !=
            IBRT_OK) {
            ibrt_drv_errmsg(&err);
            return 1;
        }
        ibrt_drv_fixed_cost(R, sweep ? "soft-impute reference (30 lambdas x 300 SVTs)" : "completion counts (2 SVDs)",
                            NULL, ibrt_time_now() - t0);
        if (!sweep && !R->o.quiet)
            fprintf(stderr, "note: the soft-impute reference is skipped above 64 x 64 entries (%ld x %ld: 9000 SVTs "
                            "of that size); --reference runs it\n", p->zrows, p->zcols);
        ibrt_drv_put_metric(R, "observed_entries", "", (double)cr.observed);
        ibrt_drv_put_metric(R, "truth_rank", "", (double)cr.rank);
        ibrt_drv_put_metric(R, "rows_underdetermined", "", (double)cr.rows_under);
        ibrt_drv_put_metric(R, "cols_underdetermined", "", (double)cr.cols_under);
        ibrt_drv_put_metric(R, "relative_error_softimpute_oracle", "", cr.best_error);
        ibrt_drv_put_metric(R, "softimpute_oracle_lambda", "", cr.best_lambda);
    }
    if (p->stationary) {   /* the stationary law, thin-shell Metropolis test (docs/theory.md §7) */
        ibrt_stationary_cfg sc = p->stationary_cfg;
        sc.seed = R->o.seed + 77;
        if (R->o.steps < p->default_steps)   /* shortened runs (tests) use fewer chains */
            sc.chains = 4000;
        ibrt_stationary_result sr;
        double t0 = ibrt_time_now();
        if (ibrt_stationary_uv(&sc, &sr, &err) != IBRT_OK) {
            ibrt_drv_errmsg(&err);
            return 1;
        }
        ibrt_drv_fixed_cost(R, "stationary law (Metropolis chains)", NULL, ibrt_time_now() - t0);
        ibrt_drv_put_metric(R, "stationary_ks_predicted", "", sr.ks_pred);
        ibrt_drv_put_metric(R, "stationary_p_predicted", "", sr.p_pred);
        ibrt_drv_put_metric(R, "stationary_ks_no_det", "", sr.ks_nodet);
        ibrt_drv_put_metric(R, "stationary_p_no_det", "", sr.p_nodet);
        ibrt_drv_put_metric(R, "stationary_ks_flipped", "", sr.ks_flip);
        ibrt_drv_put_metric(R, "stationary_p_flipped", "", sr.p_flip);
        ibrt_checks_add(&R->checks, "stationary law: predicted density accepted", sr.p_pred, 0.01, 0.01,
                        sr.p_pred > 0.01, "KS p-value, exp(-beta L) asinh(eps/theta)");
        ibrt_checks_add(&R->checks, "stationary law: no det G factor rejected", sr.p_nodet, 1e-6, 1e-6,
                        sr.p_nodet < 1e-6, "KS p-value, exp(-beta L)");
        ibrt_checks_add(&R->checks, "stationary law: inverted factor rejected", sr.p_flip, 1e-6, 1e-6,
                        sr.p_flip < 1e-6, "KS p-value, exp(-beta L) / asinh(eps/theta)");
    }
    return 0;
}
