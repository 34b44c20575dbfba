/*
 * sym_lattice.c: the lattice of symmetries (docs/theory.md §3, "The
 * lattice, not just the nullspace"): from the exponent equations of
 * sym_infer.c, a basis of the integer lattice {x in Z^N : E x = 0} of
 * rescaling symmetries whose generators rescale whole slices
 * (sym_lattice_basis, sym_impl.h).
 *
 * Its place in the derivation: sym_derive (sym.c) runs the inference
 * (sym_infer.c), takes this basis, and groups its generators into the
 * torus families and groups (sym.c); det G and the orbit minimum of each
 * family are sym_gp.c's.
 *
 * Approach, in exact arithmetic (GMP, exact.c): the integer kernel K of
 * the equations, its Hermite normal form over the unknowns in reverse
 * canonical order, and circuits (minimal-support vectors of the lattice)
 * through each unknown, of which the smallest independent ones are the
 * basis when they span the lattice itself and are all whole-slice
 * rescalings; otherwise the Hermite normal form, its supports reduced.
 */
#include "sym.h"
#include "exact.h"
#include "sym_impl.h"

#include <gmp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------- the lattice of symmetries */

/* Whether every generator of the basis (d rows of N longs) is a rescaling
 * of whole slices (sym_classify). */
static bool all_slices(infer *in, const long *basis, int d)
{
    gslice gs[SYM_MAX_BLOCKS];
    int ng;
    for (int g = 0; g < d; g++)
        if (!sym_classify(in, basis + (size_t)g * in->N, gs, &ng))
            return false;
    return true;
}

/* Support reduction: replace a generator by its sum with or difference
 * from another while that touches fewer unknowns (a unimodular change, so
 * the lattice is the same).  Natural generators (one hidden unit's
 * rescaling) have the smallest supports; a sum of several of them (all of
 * one layer against all of the next, which is a whole-slice rescaling
 * too) is taken apart this way. */
static void support_reduce(long *basis, int d, int N)
{
    for (bool improved = true; improved;) {
        improved = false;
        for (int i = 0; i < d; i++) {
            long *bi = basis + (size_t)i * N;
            int si = 0;
            for (int u = 0; u < N; u++)
                si += bi[u] != 0;
            for (int j = 0; j < d; j++) {
                if (j == i)
                    continue;
                const long *bj = basis + (size_t)j * N;
                for (long sg = -1; sg <= 1; sg += 2) {
                    int c = 0;
                    for (int u = 0; u < N; u++)
                        c += bi[u] + sg * bj[u] != 0;
                    if (c < si) {
                        for (int u = 0; u < N; u++)
                            bi[u] += sg * bj[u];
                        si = c;
                        improved = true;
                    }
                }
            }
        }
    }
}

/* A circuit of L through unknown u: starting from L (the rows of K),
 * force x_v = 0 for each v in order unless that would force x_u = 0 too;
 * what is left is one line (a minimal support containing u), written as
 * a primitive integer vector in out.  False when x_u is 0 on all of L. */
static bool circuit_through(const zmat *K, int u, const int *order, long *out)
{
    int d = K->rows, N = K->cols, n = d;
    qmat V;
    qmat_init(&V, d, N);
    for (int i = 0; i < d * N; i++)
        mpq_set_z(V.a[i], K->a[i]);
    mpq_t f, t;
    mpq_inits(f, t, NULL);
    bool any = false;
    for (int i = 0; i < n && !any; i++)
        any = mpq_sgn(Q(&V, i, u)) != 0;
    for (int s = 0; any && s < N && n > 1; s++) {
        int v = order[s];
        if (v == u)
            continue;
        int p = -1;
        for (int i = 0; i < n && p < 0; i++)
            if (mpq_sgn(Q(&V, i, v)))
                p = i;
        if (p < 0)
            continue;
        /* would every vector with x_v = 0 have x_u = 0?  The rows other
         * than p, made zero at v, span that space */
        bool keeps = false;
        for (int i = 0; i < n && !keeps; i++) {
            if (i == p)
                continue;
            mpq_div(f, Q(&V, i, v), Q(&V, p, v));
            mpq_mul(t, f, Q(&V, p, u));
            mpq_sub(t, Q(&V, i, u), t);
            keeps = mpq_sgn(t) != 0;
        }
        if (!keeps)
            continue;
        for (int i = 0; i < n; i++) {
            if (i == p || !mpq_sgn(Q(&V, i, v)))
                continue;
            mpq_div(f, Q(&V, i, v), Q(&V, p, v));
            for (int j = 0; j < N; j++) {
                mpq_mul(t, f, Q(&V, p, j));
                mpq_sub(Q(&V, i, j), Q(&V, i, j), t);
            }
        }
        for (int j = 0; j < N; j++)   /* drop row p */
            mpq_swap(Q(&V, p, j), Q(&V, n - 1, j));
        n--;
    }
    /* the line: the row with x_u != 0 (the others, if any, have x_u = 0) */
    int r = -1;
    for (int i = 0; i < n && r < 0; i++)
        if (mpq_sgn(Q(&V, i, u)))
            r = i;
    bool ok = any && r >= 0;
    if (ok) {
        mpz_t l, g, x;
        mpz_inits(l, g, x, NULL);
        mpz_set_ui(l, 1);
        for (int j = 0; j < N; j++)
            mpz_lcm(l, l, mpq_denref(Q(&V, r, j)));
        for (int j = 0; j < N && ok; j++) {
            mpz_divexact(x, l, mpq_denref(Q(&V, r, j)));
            mpz_mul(x, x, mpq_numref(Q(&V, r, j)));
            mpz_gcd(g, g, x);
        }
        for (int j = 0; j < N && ok; j++) {
            mpz_divexact(x, l, mpq_denref(Q(&V, r, j)));
            mpz_mul(x, x, mpq_numref(Q(&V, r, j)));
            mpz_divexact(x, x, g);
            ok = mpz_fits_slong_p(x);
            out[j] = ok ? mpz_get_si(x) : 0;
        }
        mpz_clears(l, g, x, NULL);
    }
    mpq_clears(f, t, NULL);
    qmat_clear(&V);
    return ok;
}

/* The first d independent candidates, those that rescale slices at one
 * index value first, then in order of how many whole parameters (of more
 * than one entry) they rescale and then of their support, into basis (the matroid greedy choice); true when they span L
 * itself.  Whole-parameter rescalings come last: between the first and
 * the last layer of a chain one is as small as one hidden unit's
 * rescaling, but it is a product of those, and a basis holding it misses
 * a unit. */
static bool circuit_basis(infer *in, const zmat *K, const long *cand, int ncand, long *basis)
{
    int d = K->rows, N = K->cols, n = 0;
    int *idx = malloc(sizeof(int) * (size_t)(ncand + 1)), *sup = malloc(sizeof(int) * (size_t)(ncand + 1));
    for (int c = 0; c < ncand; c++) {
        sup[c] = 0;
        for (int j = 0; j < N; j++)
            sup[c] += cand[(size_t)c * N + j] != 0;
        gslice gs[SYM_MAX_BLOCKS];
        int ng = 0;
        const int big = (N + 1) * (SYM_MAX_BLOCKS + 1);
        if (!sym_classify(in, cand + (size_t)c * N, gs, &ng))
            sup[c] += 2 * big;   /* not a rescaling of slices: last of all */
        int first = -1;
        bool diagonal = false;   /* the two legs of a junction, as its diagonal torus scales them */
        for (size_t j = 0; j < in->njunctions && ng == 2; j++) {
            const sym_group *g = &in->junctions[j];
            diagonal = diagonal || (gs[0].expo == -gs[1].expo &&
                                    ((gs[0].param == g->left.param && gs[1].param == g->right.param) ||
                                     (gs[1].param == g->left.param && gs[0].param == g->right.param)));
        }
        for (int b = 0; b < ng; b++) {
            if (first < 0)
                first = gs[b].index;
            if (gs[b].index >= 0 && gs[b].index != first)
                sup[c] += big;   /* slices at two index values (hidden units 0 and 1): a sum of generators */
            if (gs[b].slice == SYM_SLICE_SET)
                sup[c] += big;   /* a set of entries: after every slice, fewest sets first */
            if (!diagonal && gs[b].slice == SYM_SLICE_WHOLE && in->param_rows[gs[b].param] * in->param_cols[gs[b].param] > 1)
                sup[c] += N + 1;
        }
        int i = c;
        while (i > 0 && sup[idx[i - 1]] > sup[c]) {
            idx[i] = idx[i - 1];
            i--;
        }
        idx[i] = c;
    }
    for (int c = 0; c < ncand && n < d; c++) {
        qmat m;
        qmat_init(&m, n + 1, N);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < N; j++)
                mpq_set_si(Q(&m, i, j), basis[(size_t)i * N + j], 1);
        for (int j = 0; j < N; j++)
            mpq_set_si(Q(&m, n, j), cand[(size_t)idx[c] * N + j], 1);
        int *piv = malloc(sizeof(int) * (size_t)(n + 2));
        if (qmat_rref(&m, piv) == n + 1) {
            memcpy(basis + (size_t)n * N, cand + (size_t)idx[c] * N, (size_t)N * sizeof(long));
            n++;
        }
        free(piv);
        qmat_clear(&m);
    }
    free(idx);
    free(sup);
    if (n < d)
        return false;
    /* same lattice: the HNF of the chosen rows equals that of K */
    zmat C, H;
    zmat_init(&C, d, N);
    zmat_init(&H, d, N);
    int *col = malloc(sizeof(int) * (size_t)(N + 1));
    for (int j = 0; j < N; j++)
        col[j] = j;
    for (int i = 0; i < d * N; i++) {
        mpz_set_si(C.a[i], basis[i]);
        mpz_set(H.a[i], K->a[i]);
    }
    exact_lattice_hnf(&C, col);
    exact_lattice_hnf(&H, col);
    bool same = true;
    for (int i = 0; i < d * N && same; i++)
        same = mpz_cmp(C.a[i], H.a[i]) == 0;
    free(col);
    zmat_clear(&C);
    zmat_clear(&H);
    return same;
}

/* An earlier unknown (in canonical order) whose exponent is the same
 * linear form on L (the same column of K) has the same circuits: the
 * unknown canon[s] need not seed its own. */
static bool same_form_before(const zmat *K, const int *canon, int s)
{
    for (int t = 0; t < s; t++) {
        bool same = true;
        for (int i = 0; i < K->rows && same; i++)
            same = mpz_cmp(Z(K, i, canon[s]), Z(K, i, canon[t])) == 0;
        if (same)
            return true;
    }
    return false;
}

/* The unknowns in canonical order, the parameters by first appearance in
 * the predictor (in->order), each row-major, into canon; rev is canon
 * reversed (N entries each). */
static void canonical_unknowns(const infer *in, int *canon, int *rev)
{
    const ibc_spec *sp = in->spec;
    int N = in->N, t = 0;
    for (size_t i = 0; i < sp->nparams; i++) {
        int p = in->order[i];
        for (int e = 0; e < in->param_rows[p] * in->param_cols[p]; e++)
            canon[t++] = in->param_off[p] + e;
    }
    for (int u = 0; u < N; u++)
        rev[u] = canon[N - 1 - u];
}

/* Step 3's candidates: circuits (minimal-support vectors of the lattice
 * K) through each unknown whose form is new, one for each of six orders
 * of forcing zeros, into cand (rows of N longs, room for 6 N); returns
 * how many. */
static int circuit_candidates(infer *in, const zmat *K, const int *canon, const int *rev, long *cand)
{
    int N = in->N;
    int *order = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
    int ncand = 0;
    for (int su = 0; su < N; su++) {
        int u = canon[su];
        if (same_form_before(K, canon, su))
            continue;
        int param = 0;
        while (!(in->param_off[param] <= u && u < in->param_off[param] + in->param_rows[param] * in->param_cols[param]))
            param++;
        /* zeros forced, in six orders: on the other parameters first
         * (in reverse canonical order, or in canonical order), then on u's
         * own; or first on u's own parameter off u's row (off its
         * column), which keeps that row (column) a slice, then on the
         * others in either order */
        int off = in->param_off[param], R = in->param_rows[param], C = in->param_cols[param];
        int ui = (u - off) / C, uj = (u - off) % C;
        for (int pass = 0; pass < 6; pass++) {
            int t = 0, keep = pass < 2 ? 0 : pass % 2 == 0 ? 1 : 2;   /* 1: u's row, 2: u's column */
            bool forward = pass == 1 || pass >= 4;
            if (keep)
                for (int e = 0; e < R * C; e++)
                    if (keep == 1 ? e / C != ui : e % C != uj)
                        order[t++] = off + e;
            for (int v = 0; v < N; v++) {
                int w = forward ? canon[v] : rev[v];
                if (w < off || w >= off + R * C)
                    order[t++] = w;
            }
            for (int e = 0; e < R * C; e++)
                if (!keep || (keep == 1 ? e / C == ui : e % C == uj))
                    order[t++] = off + e;
            if (circuit_through(K, u, order, cand + (size_t)ncand * N))
                ncand++;
        }
    }
    return ncand;
}

/* The basis's presentation (d rows of N longs): signs and order follow
 * the unknowns, whose order is the parameters' first appearance in the
 * predictor; each row's first non-zero made positive, the rows sorted
 * (stably) by their last non-zero unknown. */
static void present_basis(ibc_arena *a, long *basis, int d, int N)
{
    for (int g = 0; g < d; g++) {
        long *v = basis + (size_t)g * N;
        int first = 0;
        while (first < N && v[first] == 0)
            first++;
        if (first < N && v[first] < 0)
            for (int j = 0; j < N; j++)
                v[j] = -v[j];
    }
    long *tmp = arena_alloc(a, (size_t)N * sizeof(long) + sizeof(long));
    for (int g = 1; g < d; g++)
        for (int h = g; h > 0; h--) {
            long *x = basis + (size_t)(h - 1) * N, *y = basis + (size_t)h * N;
            int lx = N - 1, ly = N - 1;
            while (lx > 0 && !x[lx])
                lx--;
            while (ly > 0 && !y[ly])
                ly--;
            if (lx <= ly)
                break;
            memcpy(tmp, x, (size_t)N * sizeof(long));
            memcpy(x, y, (size_t)N * sizeof(long));
            memcpy(y, tmp, (size_t)N * sizeof(long));
        }
}

/* The lattice basis of the torus as d rows of N longs, in three steps:
 * (1) the integer kernel K of the exponent equations, (2) its Hermite
 * normal form over the unknowns in reverse canonical order, (3) circuits
 * through each unknown, the smallest independent ones, when they are all
 * whole-slice rescalings (else the HNF itself, its supports reduced).
 * Presented with each row's first non-zero entry (the unknowns in the
 * order of first appearance in the predictor, in->order) positive and
 * ordered by their last non-zero unknown; -1 after a located error. */
int sym_lattice_basis(infer *in, long **out)
{
    const ibc_spec *sp = in->spec;
    int N = in->N;
    int *canon = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
    int *rev = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
    canonical_unknowns(in, canon, rev);
    zmat K;
    exact_lattice_kernel(in->eq, in->neq, N, &K);
    exact_lattice_hnf(&K, rev);
    int d = K.rows;
    long *basis = arena_alloc(in->arena, (size_t)(d ? d : 1) * (size_t)N * sizeof(long));
    long *cand = arena_alloc(in->arena, (size_t)(6 * N + 1) * (size_t)N * sizeof(long));
    int ncand = circuit_candidates(in, &K, canon, rev, cand);
    bool ok = circuit_basis(in, &K, cand, ncand, basis) && all_slices(in, basis, d);
    if (!ok) {   /* the HNF itself, its supports reduced */
        ok = zmat_get_long(&K, basis);
        if (ok)
            support_reduce(basis, d, N);
        ok = ok && all_slices(in, basis, d);
    }
    zmat_clear(&K);
    if (!ok) {
        in->bad_param = -1;
        all_slices(in, basis, d);
        if (in->bad_param >= 0)
            diag_error(in->diag, sp->predict->loc,
                       "the predictor's rescaling symmetries have no basis of whole-slice rescalings that ibc can find: its "
                       "generators rescale a set of entries of '%s' that is not the whole parameter, a row, a column or one "
                       "entry (as an operator's zero pattern does when it groups entries); the derivation supports "
                       "tori of such slices only", sp->params[in->bad_param].name);
        else
            diag_error(in->diag, sp->predict->loc,
                       "the predictor's rescaling symmetries have no basis of whole-slice rescalings (each generator "
                       "scaling whole parameters, rows, columns or entries); the derivation supports such tori only");
        return -1;
    }
    present_basis(in->arena, basis, d, N);
    *out = basis;
    return d;
}
