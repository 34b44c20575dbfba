/* test_sym.c: the symbolic derivation and the inverse design, against the
 * exact values of docs/theory.md, plus a property test of Cauchy-Binet and of
 * the geometric-programme minimum against LAPACKE and Newton. */
#include <criterion/criterion.h>
#include <gmp.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "design.h"
#include "sym.h"

typedef struct {
    ibc_source src;
    ibc_arena *arena;
    ibc_diag diag;
    ibc_spec *spec;
    char *msgs;
    size_t msglen;
    FILE *out;
} loaded;

static void load(loaded *l, const char *path)
{
    memset(l, 0, sizeof *l);
    const char *err;
    cr_assert(diag_source_read(&l->src, path, &err), "cannot read %s", path);
    l->arena = arena_new();
    l->out = open_memstream(&l->msgs, &l->msglen);
    diag_init(&l->diag, &l->src, l->out);
    l->spec = sema_check(l->arena, parse_spec(l->arena, &l->src, &l->diag), &l->diag);
    cr_assert_not_null(l->spec, "%s does not check", path);
}

static void unload(loaded *l)
{
    fclose(l->out);
    free(l->msgs);
    arena_free(l->arena);
    diag_source_free(&l->src);
}

static const sym_family *derive1(loaded *l, const char *path)
{
    load(l, path);
    sym_derivation *d = sym_derive(l->arena, l->spec, &l->diag);
    cr_assert_not_null(d);
    cr_assert_eq(sym_nfamilies(d), 1);
    return sym_family_at(d, 0);
}

Test(sym, toy_uv)
{
    loaded l;
    const sym_family *f = derive1(&l, "specs/toy_uv.ibs");
    cr_assert_eq(f->nterms, 2);
    cr_assert_eq(f->term_coef[0], 1);
    cr_assert_eq(f->term_coef[1], 1);
    cr_assert_str_eq(f->min_text, "2 |u| |v|");
    cr_assert_str_eq(f->coefficient, "1");
    cr_assert_str_eq(f->constant, "log(2)");
    /* the values other phases compare: coefficient 1, constant log(2^1),
     * invariant |u|^1 |v|^1, dual weights 1/2, 1/2 */
    cr_assert(f->coef.num == 1 && f->coef.den == 1);
    cr_assert(f->const_exp[0].num == 1 && f->const_exp[0].den == 1);
    for (int i = 1; i < SYM_NPRIMES; i++)
        cr_assert_eq(f->const_exp[i].num, 0);
    cr_assert(f->monomial && f->inv_exp[0] == 1 && f->inv_exp[1] == 1);
    cr_assert_eq(f->ndelta, 2);
    cr_assert(f->delta[0].num == 1 && f->delta[0].den == 2 && f->delta[1].num == 1 && f->delta[1].den == 2);
    double rl, rd;
    sym_balance_predictions(f, &rl, &rd);
    cr_assert(rl == 1 && rd == 1, "u^2/v^2 = 1 at both: %g %g", rl, rd);
    cr_assert(f->agree);
    unload(&l);
}

Test(sym, hadamard_depths)
{
    const char *paths[] = { "specs/toy_uv.ibs", "tests/sym/hadamard3.ibs", "tests/sym/hadamard4.ibs" };
    const char *coef[] = { "1", "4/3", "3/2" }, *cst[] = { "log(2)", "log(3)", "log(4)" };
    for (int i = 0; i < 3; i++) {
        loaded l;
        const sym_family *f = derive1(&l, paths[i]);
        cr_assert_eq(f->k, i + 1);
        cr_assert_eq(f->min_kind, SYM_MIN_ATTAINED);
        cr_assert_str_eq(f->coefficient, coef[i]);
        cr_assert_str_eq(f->constant, cst[i]);
        /* the values: 2(L-1)/L and log(L), L = i + 2 */
        cr_assert(f->coef.num * (i + 2) == 2 * (i + 1) * f->coef.den, "coefficient %ld/%ld", f->coef.num, f->coef.den);
        cr_assert(i == 2 ? f->const_exp[0].num == 2 : i == 0 ? f->const_exp[0].num == 1 : f->const_exp[1].num == 1);
        unload(&l);
    }
}

Test(sym, u2v_minimiser_and_slice_differ)
{
    loaded l;
    const sym_family *f = derive1(&l, "tests/sym/u2v.ibs");
    cr_assert_eq(f->term_coef[0], 1);
    cr_assert_eq(f->term_coef[1], 4);
    cr_assert_str_eq(f->min_text, "3 (|u|^2 |v|)^(2/3)");
    cr_assert_str_eq(f->log_det_minimizer, "u^2/v^2 = 8");
    cr_assert_str_eq(f->dual_slice, "u^2/v^2 = 2");
    cr_assert(!f->agree);
    unload(&l);
}

Test(sym, existence)
{
    loaded l;
    cr_assert_eq(derive1(&l, "tests/sym/u3vw.ibs")->min_kind, SYM_MIN_UNBOUNDED);
    unload(&l);
    cr_assert_eq(derive1(&l, "tests/sym/u2vw.ibs")->min_kind, SYM_MIN_NOT_ATTAINED);
    unload(&l);
}

Test(sym, families_of_the_paper_models)
{
    loaded l;
    const sym_family *f = derive1(&l, "specs/shallow_relu.ibs");
    cr_assert_eq(f->count, 16);
    /* blocks in the order of first appearance in v @ relu(W @ x) */
    cr_assert_str_eq(f->min_text, "2 |v[j]| ||W[j,:]||");
    unload(&l);
    f = derive1(&l, "specs/attention.ibs");
    cr_assert_eq(f->count, 8);
    cr_assert_str_eq(f->min_text, "2 ||Wq[:,k]|| ||Wk[:,k]||");
    unload(&l);
}

Test(sym, nonhomogeneous_function_removes_the_symmetry)
{
    /* tanh(u) * v: u cannot scale, so neither can v */
    const char t[] = "model m\nparam u : scalar\nparam v : scalar\ndata noisy_target(value = 1, noise = 0.1)\n"
                     "predict tanh(u) * v\nloss mse\ntrain { lr = 0.1; steps = 1; batch = 1 }\n";
    ibc_source src = { "t.ibs", t, sizeof t - 1 };
    ibc_arena *a = arena_new();
    FILE *devnull = fopen("/dev/null", "w");
    ibc_diag d;
    diag_init(&d, &src, devnull);
    ibc_spec *sp = sema_check(a, parse_spec(a, &src, &d), &d);
    cr_assert_not_null(sp);
    sym_derivation *der = sym_derive(a, sp, &d);
    cr_assert_not_null(der);
    cr_assert_eq(sym_nfamilies(der), 0);
    fclose(devnull);
    arena_free(a);
}

/* G = sum_p n_p alpha_p alpha_p' assembled in double; log det by Cholesky. */
static double logdet_lapacke(const sym_family *f, const double *n, int *info)
{
    int k = f->k;
    double G[SYM_MAX_GEN * SYM_MAX_GEN] = { 0 };
    for (int p = 0; p < f->nblocks; p++)
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                G[a * k + b] += n[p] * (double)f->alpha[a][p] * (double)f->alpha[b][p];
    *info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, G, k);
    double s = 0;
    for (int a = 0; a < k; a++)
        s += 2 * log(G[a * k + a]);
    return s;
}

/* Deep families, up to the limits (k = SYM_MAX_GEN generators over
 * SYM_MAX_BLOCKS blocks): det G by exact Cauchy-Binet against Cholesky of
 * G assembled in double, for random exponents in {-1, 0, 1} (minors of
 * size up to 15, whose Bareiss intermediates exceed a long), and the
 * depth-L chain's closed forms (docs/theory.md §5): L terms of
 * coefficient 1, bias coefficient 2(L-1)/L, constant log(L). */
Test(sym, deep_families)
{
    unsigned long long st = 7;
#define DRND() (st = st * 6364136223846793005ull + 1442695040888963407ull, (double)(st >> 11) / 9007199254740992.0)
    int tested = 0;
    while (tested < 100) {
        sym_family f;
        memset(&f, 0, sizeof f);
        f.k = 7 + (int)(DRND() * (SYM_MAX_GEN - 6));
        f.nblocks = f.k + 1 + (f.k < 10 && DRND() < 0.5);
        for (int g = 0; g < f.k; g++)
            for (int p = 0; p < f.nblocks; p++)
                f.alpha[g][p] = (long)(DRND() * 3) - 1;
        if (!sym_gram_terms(&f))
            continue;   /* rank-deficient */
        double n[SYM_MAX_BLOCKS];
        for (int p = 0; p < f.nblocks; p++)
            n[p] = exp(2 * DRND() - 1);
        int info;
        double ref = logdet_lapacke(&f, n, &info);
        cr_assert_eq(info, 0);
        double cb = sym_logdet_eval(&f, n);
        cr_assert(fabs(cb - ref) <= 1e-9 * fmax(1, fabs(ref)), "k=%d P=%d: %.17g vs %.17g", f.k, f.nblocks, cb, ref);
        tested++;
    }
    ibc_arena *a = arena_new();
    for (int L = 2; L <= SYM_MAX_BLOCKS; L++) {
        sym_family f;
        memset(&f, 0, sizeof f);
        f.k = L - 1;
        f.nblocks = L;
        for (int g = 0; g < f.k; g++) {   /* generator g: block g up, block g + 1 down */
            f.alpha[g][g] = 1;
            f.alpha[g][g + 1] = -1;
        }
        for (int p = 0; p < L; p++)
            f.blocks[p].text = "x";
        cr_assert(sym_gram_terms(&f));
        cr_assert_eq(f.nterms, L);
        for (int t = 0; t < L; t++)
            cr_assert_eq(f.term_coef[t], 1);
        sym_minimise(a, &f);
        cr_assert_eq(f.min_kind, SYM_MIN_ATTAINED, "L=%d", L);
        cr_assert(f.coef.num * L == 2 * (L - 1) * f.coef.den, "L=%d: %ld/%ld", L, f.coef.num, f.coef.den);
        long m = L;   /* the constant log(L) over the primes */
        for (int i = 0; i < SYM_NPRIMES; i++) {
            long e = 0;
            while (m % (long)sym_primes[i] == 0) {
                m /= (long)sym_primes[i];
                e++;
            }
            cr_assert(f.const_exp[i].num == e && (e == 0 || f.const_exp[i].den == 1), "L=%d prime %lu", L, sym_primes[i]);
        }
    }
    arena_free(a);
    /* A coefficient det(alpha_S)^2 beyond a long is refused, never wrapped:
     * alpha = (2^32, 1) has det G = 2^64 n_1 + n_0. */
    sym_family f;
    memset(&f, 0, sizeof f);
    f.k = 1;
    f.nblocks = 2;
    f.alpha[0][0] = 1L << 32;
    f.alpha[0][1] = 1;
    cr_assert_not(sym_gram_terms(&f));
    f.alpha[0][0] = 3037000499L;   /* floor(sqrt(2^63 - 1)): its square fits */
    cr_assert(sym_gram_terms(&f));
    cr_assert_eq(f.term_coef[0], 3037000499L * 3037000499L);
    /* A constant with a prime factor beyond sym_primes is not stated (it
     * would lose that factor): alpha = (1, -53) gives the dual weights
     * 53/54, 1/54 and the constant 53/54 log(54/53) + 1/54 log(53^2 54),
     * so the minimum is labelled numeric. */
    a = arena_new();
    f.alpha[0][0] = 1;
    f.alpha[0][1] = -53;
    f.blocks[0].text = "u";
    f.blocks[1].text = "v";
    cr_assert(sym_gram_terms(&f));
    sym_minimise(a, &f);
    cr_assert_eq(f.min_kind, SYM_MIN_NUMERIC, "%s", f.min_text);
    cr_assert(strstr(f.min_text, "prime factor above 47") != NULL, "%s", f.min_text);
    cr_assert_eq(f.coef.den, 0);
    f.alpha[0][1] = -43;   /* within the primes: closed form */
    cr_assert(sym_gram_terms(&f));
    sym_minimise(a, &f);
    cr_assert_eq(f.min_kind, SYM_MIN_ATTAINED, "%s", f.min_text);
    arena_free(a);
#undef DRND
}

Test(sym, property_cauchy_binet_and_gp)
{
    unsigned long long st = 42;
#define RND() (st = st * 6364136223846793005ull + 1442695040888963407ull, (double)(st >> 11) / 9007199254740992.0)
    int tested = 0, gp_tested = 0;
    ibc_arena *a = arena_new();
    while (tested < 200) {
        sym_family f;
        memset(&f, 0, sizeof f);
        f.k = 1 + (int)(RND() * 4);
        f.nblocks = f.k + (int)(RND() * (8 - f.k));
        if (f.nblocks > 7)
            f.nblocks = 7;
        for (int g = 0; g < f.k; g++)
            for (int p = 0; p < f.nblocks; p++)
                f.alpha[g][p] = (long)(RND() * 7) - 3;
        for (int p = 0; p < f.nblocks; p++)
            f.blocks[p].text = "x";
        if (!sym_gram_terms(&f))
            continue;   /* rank-deficient: G singular, not a torus */
        double n[SYM_MAX_BLOCKS];
        for (int p = 0; p < f.nblocks; p++)
            n[p] = exp(4 * RND() - 2);
        int info;
        double ref = logdet_lapacke(&f, n, &info);
        cr_assert_eq(info, 0);
        double cb = sym_logdet_eval(&f, n);
        cr_assert(fabs(cb - ref) <= 1e-9 * fmax(1, fabs(ref)), "k=%d P=%d: %.17g vs %.17g", f.k, f.nblocks, cb, ref);
        tested++;
        /* GP: closed form vs Newton, where the closed form exists */
        sym_minimise(a, &f);
        if (f.min_kind == SYM_MIN_ATTAINED) {
            double num;
            cr_assert(sym_logdet_min_numeric(&f, n, &num));
            /* closed form: sum_g delta_g log(C_g / delta_g), the terms with
             * equal orbit exponents merged into groups g (in order of first
             * appearance), C_g = sum_{S in g} c_S n_S */
            double closed = 0, C[64] = { 0 };
            long ge[64][SYM_MAX_GEN];
            int ng = 0;
            for (int s = 0; s < f.nterms; s++) {
                long e[SYM_MAX_GEN] = { 0 };
                for (int a2 = 0; a2 < f.k; a2++)
                    for (int p = 0; p < f.nblocks; p++)
                        if (f.term_set[s] & (1u << p))
                            e[a2] += 2 * f.alpha[a2][p];
                int g = 0;
                while (g < ng && memcmp(ge[g], e, sizeof(long) * (size_t)f.k))
                    g++;
                if (g == ng)
                    memcpy(ge[ng++], e, sizeof(long) * (size_t)f.k);
                cr_assert_eq(f.term_group[s], g, "term %d: the group later phases read its weight from", s);
                double v = (double)f.term_coef[s];
                for (int p = 0; p < f.nblocks; p++)
                    if (f.term_set[s] & (1u << p))
                        v *= n[p];
                C[g] += v;
            }
            cr_assert_eq(f.ndelta, ng);
            for (int g = 0; g < ng; g++) {
                cr_assert(f.delta[g].den > 0);
                double dl = sym_rat_double(f.delta[g]);
                closed += dl * (log(C[g]) - log(dl));
            }
            cr_assert(fabs(closed - num) <= 1e-8 * fmax(1, fabs(closed)), "closed %.17g newton %.17g", closed, num);
            gp_tested++;
        }
    }
    /* Monomial tori z = prod theta_p^m_p (P = k + 1, degree of difficulty
     * 0): closed form vs Newton where a minimiser exists (docs/theory.md §4:
     * iff (P-1) max m < sum m), Newton running off where it does not. */
    int unbounded = 0;
    for (int iter = 0; iter < 200; iter++) {
        sym_family f;
        memset(&f, 0, sizeof f);
        f.k = 1 + (int)(RND() * 4);
        f.nblocks = f.k + 1;
        long m[SYM_MAX_BLOCKS], sum = 0, mx = 0;
        for (int p = 0; p < f.nblocks; p++) {
            m[p] = 1 + (long)(RND() * 4);
            sum += m[p];
            mx = m[p] > mx ? m[p] : mx;
            f.blocks[p].text = "x";
        }
        for (int g = 0; g < f.k; g++) {   /* theta_0 up by m_(g+1), theta_(g+1) down by m_0 */
            f.alpha[g][0] = m[g + 1];
            f.alpha[g][g + 1] = -m[0];
        }
        cr_assert(sym_gram_terms(&f));
        sym_minimise(a, &f);
        double n[SYM_MAX_BLOCKS];
        for (int p = 0; p < f.nblocks; p++)
            n[p] = exp(4 * RND() - 2);
        bool exists = (f.nblocks - 1) * mx < sum;
        cr_assert_eq(f.min_kind == SYM_MIN_ATTAINED, exists, "m sum %ld max %ld kind %d", sum, mx, f.min_kind);
        double num;
        if (!exists) {
            if ((f.nblocks - 1) * mx > sum) {
                cr_assert(!sym_logdet_min_numeric(&f, n, &num), "Newton should run off: unbounded below");
                unbounded++;
            }
            continue;
        }
        cr_assert(sym_logdet_min_numeric(&f, n, &num));
        double closed = 0;
        for (int s = 0; s < f.nterms; s++) {
            cr_assert(s < f.ndelta && f.delta[s].den > 0);
            double dl = sym_rat_double(f.delta[s]);
            double ln = log((double)f.term_coef[s]) - log(dl);
            for (int p = 0; p < f.nblocks; p++)
                if (f.term_set[s] & (1u << p))
                    ln += log(n[p]);
            closed += dl * ln;
        }
        cr_assert(fabs(closed - num) <= 1e-8 * fmax(1, fabs(closed)), "closed %.17g newton %.17g", closed, num);
        gp_tested++;
    }
    cr_assert_gt(gp_tested, 50, "only %d closed-form cases", gp_tested);
    cr_assert_gt(unbounded, 5, "only %d unbounded cases", unbounded);
    arena_free(a);
}

static design_result *design_of(loaded *l, const char *path)
{
    load(l, path);
    return design_synthesise(l->arena, l->spec, &l->diag);
}

Test(design, paper_models)
{
    loaded l;
    design_result *r = design_of(&l, "specs/spectral_sparse.ibs");
    cr_assert_not_null(r);
    cr_assert_str_eq(r->factorisation, "w = u * v");
    cr_assert(r->matches);
    unload(&l);
    r = design_of(&l, "specs/piecewise_tv.ibs");
    cr_assert_not_null(r);
    cr_assert_str_eq(r->factorisation, "w = cumsum(u * v)");
    unload(&l);
    r = design_of(&l, "specs/deep_hadamard.ibs");
    cr_assert_not_null(r);
    cr_assert_eq(r->depth, 3);
    cr_assert_str_eq(sym_family_at(r->derivation, 0)->coefficient, "4/3");
    cr_assert_str_eq(sym_family_at(r->derivation, 0)->constant, "log(3)");
    unload(&l);
    r = design_of(&l, "specs/matrix_completion.ibs");
    cr_assert_not_null(r);
    cr_assert_str_eq(r->factorisation, "Z = U @ V'");
    cr_assert_eq(sym_family_at(r->derivation, 0)->count, 20);
    cr_assert_str_eq(sym_family_at(r->derivation, 0)->constant, "log(2)");
    unload(&l);
    r = design_of(&l, "tests/design/chain3.ibs");
    cr_assert_not_null(r);
    cr_assert_str_eq(sym_family_at(r->derivation, 0)->coefficient, "4/3");
    unload(&l);
}

Test(design, composition)
{
    loaded l;
    design_result *r = design_of(&l, "tests/design/composed.ibs");
    cr_assert_not_null(r);
    cr_assert(r->op.invertible);
    cr_assert_str_eq(r->factorisation, "w = (diff(16) @ dct(16)')^-1 (u * v)");
    cr_assert_str_eq(r->op.inverse, "cumulative sum, O(n), then transpose (orthonormal basis)");
    unload(&l);
}

Test(design, errors)
{
    const char *paths[] = { "tests/design/strength_17.ibs", "tests/design/diff_open.ibs", "tests/design/tall.ibs" };
    const char *want[] = { "achievable strengths are 1, 4/3, 3/2, 8/5", "kernel of dimension 1 (the constants)",
                           "its co-kernel has dimension 10" };
    for (int i = 0; i < 3; i++) {
        loaded l;
        cr_assert_null(design_of(&l, paths[i]));
        fflush(l.out);
        cr_assert(strstr(l.msgs, want[i]) != NULL, "%s: %s", paths[i], l.msgs);
        unload(&l);
    }
}

Test(design, dense_operator)
{
    loaded l;
    design_result *r = design_of(&l, "tests/design/dense50.ibs");
    cr_assert_not_null(r);
    cr_assert(r->op.invertible);
    cr_assert_leq(r->op.residual, 1e-10);
    cr_assert(r->op.condition > 1 && isfinite(r->op.condition));
    unload(&l);
}

Test(sym, explicit_symmetry_checked)
{
    loaded l;
    load(&l, "tests/sym/symmetry_ok.ibs");
    cr_assert_not_null(sym_derive(l.arena, l.spec, &l.diag));
    unload(&l);
    load(&l, "tests/sym/symmetry_bad.ibs");
    cr_assert_null(sym_derive(l.arena, l.spec, &l.diag));
    fflush(l.out);
    cr_assert(strstr(l.msgs, "symmetry 'neuron' does not preserve the predictor") != NULL, "%s", l.msgs);
    unload(&l);
}

Test(sym, nonhomogeneous_gets_a_located_note)
{
    loaded l;
    load(&l, "specs/attention.ibs");
    cr_assert_not_null(sym_derive(l.arena, l.spec, &l.diag));
    fflush(l.out);
    cr_assert(strstr(l.msgs, "specs/attention.ibs:15:9: note: 'softmax' is not homogeneous") != NULL, "%s", l.msgs);
    unload(&l);
}

Test(sym, degenerate_exponents_unbounded)
{
    /* u/v: both terms of det G grow alike, no dual weights at all */
    loaded l;
    const sym_family *f = derive1(&l, "tests/sym/u_over_v.ibs");
    cr_assert_eq(f->existence, SYM_MIN_UNBOUNDED);
    cr_assert_eq(f->min_kind, SYM_MIN_UNBOUNDED);
    unload(&l);
}

Test(sym, degree_one_is_numeric_with_exact_existence)
{
    loaded l;
    /* u v + v w^2: alpha = (2, -2, 1), three distinct orbit exponents
     * (4, -4, 2) for one generator */
    const sym_family *f = derive1(&l, "tests/sym/degree1.ibs");
    cr_assert_eq(f->degree, 1);
    cr_assert_eq(f->min_kind, SYM_MIN_NUMERIC);
    cr_assert_eq(f->existence, SYM_MIN_ATTAINED);
    cr_assert_str_eq(f->coefficient, "numeric");
    unload(&l);
}

Test(sym, unused_parameter_is_not_a_family)
{
    loaded l;
    const sym_family *f = derive1(&l, "tests/sym/unused_param.ibs");   /* asserts one family */
    cr_assert_eq(f->nblocks, 2);
    cr_assert_str_eq(f->constant, "log(2)");
    unload(&l);
}

/* The exact existence test (theorems of the alternative, simplex in
 * rationals) against Newton: attained -> Newton converges to a stationary
 * point, unbounded -> Newton runs off along the orbit. */
Test(sym, property_existence_against_newton)
{
    unsigned long long st = 7;
#define RND2() (st = st * 6364136223846793005ull + 1442695040888963407ull, (double)(st >> 11) / 9007199254740992.0)
    int attained = 0, unbounded = 0;
    ibc_arena *a = arena_new();
    for (int iter = 0; iter < 400; iter++) {
        sym_family f;
        memset(&f, 0, sizeof f);
        f.k = 1 + (int)(RND2() * 3);
        f.nblocks = f.k + (int)(RND2() * (7 - f.k));
        for (int g = 0; g < f.k; g++)
            for (int p = 0; p < f.nblocks; p++)
                f.alpha[g][p] = (long)(RND2() * 7) - 3;
        for (int p = 0; p < f.nblocks; p++)
            f.blocks[p].text = "x";
        if (!sym_gram_terms(&f))
            continue;
        sym_minimise(a, &f);
        double n[SYM_MAX_BLOCKS], v;
        for (int p = 0; p < f.nblocks; p++)
            n[p] = exp(2 * RND2() - 1);
        if (f.existence == SYM_MIN_ATTAINED) {
            cr_assert(sym_logdet_min_numeric(&f, n, &v), "k=%d P=%d: exact says attained, Newton fails", f.k, f.nblocks);
            attained++;
        } else if (f.existence == SYM_MIN_UNBOUNDED) {
            cr_assert(!sym_logdet_min_numeric(&f, n, &v), "k=%d P=%d: exact says unbounded, Newton converges", f.k,
                      f.nblocks);
            unbounded++;
        }
    }
    cr_assert_gt(attained, 20, "only %d attained cases", attained);
    cr_assert_gt(unbounded, 20, "only %d unbounded cases", unbounded);
    arena_free(a);
}

/* ------------------------------------------------ conservation laws */

/* Offsets of the parameters in one flat vector theta. */
static long param_offsets(const ibc_spec *sp, long *off)
{
    long n = 0;
    for (size_t p = 0; p < sp->nparams; p++) {
        off[p] = n;
        n += sp->params[p].shape.rows * (sp->params[p].shape.rank == 2 ? sp->params[p].shape.cols : 1);
    }
    return n;
}

/* Does entry (i, j) of parameter p (R x C) belong to block b at index k? */
static bool in_block(const sym_block *b, long R, long C, long i, long j, long k)
{
    (void)R;
    switch (b->slice) {
    case SYM_SLICE_ROW: return i == k;
    case SYM_SLICE_COL: return j == k;
    case SYM_SLICE_ENTRY: return C == 1 ? i == k : i * C + j == k;
    default: return true;
    }
}

/* The gradients of every conserved function the derivation names, at a
 * random point, as rows of J (nlaws x D): a torus family's chi_a at each
 * index (grad = xi_a), and the upper triangle of each junction's
 * C = Gram(A leg) - Gram(B leg).  Their rank must equal their number. */
static void conservation_rank(const char *path, long want)
{
    loaded l;
    load(&l, path);
    sym_derivation *d = sym_derive(l.arena, l.spec, &l.diag);
    cr_assert_not_null(d, "%s does not derive", path);
    const ibc_spec *sp = l.spec;
    long off[16], D = param_offsets(sp, off);
    long laws = sym_conservation_laws(d);
    cr_assert_eq(laws, want, "%s: %ld conservation laws, want %ld", path, laws, want);
    double *th = malloc(sizeof(double) * (size_t)D), *J = calloc((size_t)(laws * D), sizeof(double));
    srand(7);
    for (long e = 0; e < D; e++)
        th[e] = (double)rand() / RAND_MAX - 0.5;
    long row = 0;
    for (size_t gi = 0; gi < sym_ngroups(d); gi++) {
        const sym_group *g = sym_group_at(d, gi);
        if (g->kind == SYM_GROUP_TORUS) {
            const sym_family *f = sym_family_at(d, (size_t)g->family);
            for (long k = 0; k < f->count; k++)
                for (int a = 0; a < f->k; a++, row++)
                    for (int b = 0; b < f->nblocks; b++) {
                        const ibc_var *pv = &sp->params[f->blocks[b].param];
                        long R = pv->shape.rank == 0 ? 1 : pv->shape.rows, C = pv->shape.rank == 2 ? pv->shape.cols : 1;
                        for (long i = 0; i < R; i++)
                            for (long j = 0; j < C; j++)
                                if (in_block(&f->blocks[b], R, C, i, j, k)) {
                                    long e = off[f->blocks[b].param] + i * C + j;
                                    J[row * D + e] += (double)f->alpha[a][b] * th[e];
                                }
                    }
            continue;
        }
        /* C_ij = sum_m X[m,i] X[m,j] over the leg's other axis, A minus B */
        const sym_leg *legs[2] = { &g->left, &g->right };
        for (long i = 0; i < g->r; i++)
            for (long j = i; j < g->r; j++, row++)
                for (int s = 0; s < 2; s++) {
                    const ibc_var *pv = &sp->params[legs[s]->param];
                    long R = pv->shape.rank == 0 ? 1 : pv->shape.rows, C = pv->shape.rank == 2 ? pv->shape.cols : 1;
                    bool rows = legs[s]->rows || pv->shape.rank < 2;
                    long other = rows ? C : R;
                    double sign = s == 0 ? 1 : -1;
                    for (long m = 0; m < other; m++) {
                        /* entry at leg index x, other index m */
                        long ei = off[legs[s]->param] + (rows ? i * C + m : m * C + i);
                        long ej = off[legs[s]->param] + (rows ? j * C + m : m * C + j);
                        J[row * D + ei] += sign * th[ej];
                        J[row * D + ej] += sign * th[ei];
                    }
                }
    }
    cr_assert_eq(row, laws, "%s: %ld functions built, %ld counted", path, row, laws);
    long ns = laws < D ? laws : D;
    double *sv = malloc(sizeof(double) * (size_t)(ns + 1)), *sup = malloc(sizeof(double) * (size_t)(ns + 1));
    cr_assert_eq(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (int)laws, (int)D, J, (int)D, sv, NULL, 1, NULL, 1, sup), 0);
    long rank = 0;
    for (long i = 0; i < ns; i++)
        rank += sv[i] > 1e-10 * sv[0];
    cr_assert_eq(rank, laws, "%s: the %ld conserved functions have Jacobian rank %ld", path, laws, rank);
    free(sv);
    free(sup);
    free(J);
    free(th);
    unload(&l);
}

/* docs/theory.md §10's reference counts: 2-layer linear r(r+1)/2 (attention's
 * Wq Wk', the designed U V' of matrix_completion), ReLU one per hidden
 * neuron, deep linear sum_l n_l(n_l+1)/2, a ReLU chain one per neuron */
Test(sym, conservation_laws_counted_and_independent)
{
    conservation_rank("specs/shallow_relu.ibs", 16);
    conservation_rank("specs/attention.ibs", 36);
    conservation_rank("specs/toy_uv.ibs", 1);
    conservation_rank("tests/sym/deep_linear.ibs", 3 * 4 / 2 + 3 * 4 / 2);
    conservation_rank("tests/sym/relu2.ibs", 3 + 3);
}

/* Shared blocks with equal orbit exponents merge into one term of the
 * geometric programme: u v + v w has the closed-form minimum
 * 2 |v| sqrt(u^2 + w^2), attained exactly on chi = 0, so the minimiser
 * and the dual slice agree (they used to be reported as differing, the
 * minimum as numeric); likewise a ReLU unit with a bias. */
Test(sym, merged_terms_closed_form_and_agreement)
{
    loaded l;
    const sym_family *f = derive1(&l, "tests/sym/uv_vw.ibs");
    cr_assert_eq(f->min_kind, SYM_MIN_ATTAINED);
    cr_assert_str_eq(f->min_text, "2 (u^2 + w^2)^(1/2) (v^2)^(1/2)");
    cr_assert(f->agree);
    unload(&l);
    f = derive1(&l, "tests/sym/relu_bias.ibs");
    cr_assert_eq(f->count, 4);
    cr_assert_str_eq(f->min_text, "2 (v[j]^2)^(1/2) (||W[j,:]||^2 + b[j]^2)^(1/2)");
    cr_assert(f->agree);
    unload(&l);
    /* u^2 v^3 w^3: a lattice basis whatever the order (the constant was
     * log(2^(9/2)*3) when the generators spanned a sublattice of index 2) */
    f = derive1(&l, "tests/sym/u2v3w3.ibs");
    cr_assert_str_eq(f->constant, "log(2^(5/2)*3)");
    cr_assert(f->const_exp[0].num == 5 && f->const_exp[0].den == 2 && f->const_exp[1].num == 1 &&
              f->const_exp[1].den == 1 && f->const_exp[2].num == 0);
    cr_assert_not(f->agree);
    unload(&l);
}

/* A membership operator from a file (tests/emit/groups.ibs, entry i of w
 * in group i mod 3): one generator per group, rescaling exactly that
 * group's entries of w against s[g].  The sets are checked against the
 * file, read here independently of the compiler. */
Test(sym, membership_operator_sets)
{
    loaded l;
    const sym_family *f = derive1(&l, "tests/emit/groups.ibs");
    cr_assert_eq(f->k, 1);
    cr_assert_eq(f->count, 3);
    cr_assert_eq(f->nblocks, 2);
    const sym_block *set = &f->blocks[0], *s = &f->blocks[1];
    cr_assert_eq(set->slice, SYM_SLICE_SET, "block 0 is %s", set->text);
    cr_assert_eq(s->slice, SYM_SLICE_ENTRY);
    cr_assert_eq(f->alpha[0][0], -f->alpha[0][1]);
    FILE *csv = fopen("tests/emit/groups12x3.csv", "r");
    cr_assert_not_null(csv);
    int member[12][3], rows = 0;
    while (rows < 12 && fscanf(csv, "%d,%d,%d", &member[rows][0], &member[rows][1], &member[rows][2]) == 3)
        rows++;
    fclose(csv);
    cr_assert_eq(rows, 12);
    for (int g = 0; g < 3; g++) {
        long t = set->set_start[g];
        for (int i = 0; i < 12; i++)
            if (member[i][g]) {
                cr_assert_lt(t, set->set_start[g + 1], "group %d has fewer entries than the file says", g);
                cr_assert_eq(set->set_entries[t], i, "group %d: entry %ld, the file says %d", g, set->set_entries[t], i);
                t++;
            }
        cr_assert_eq(t, set->set_start[g + 1], "group %d has more entries than the file says", g);
    }
    cr_assert_str_eq(f->min_text, "2 ||w[S1_i]|| |s[i]|");
    cr_assert(f->agree);
    unload(&l);
}
