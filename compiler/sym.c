/*
 * sym.c: the symbolic derivation (docs/theory.md §§2-4).
 *
 * This file: from the exponent equations (sym_infer.c) and the lattice of
 * symmetries (sym_lattice.c) to its generator families and the model's
 * symmetry groups; det G and the orbit minimum of each family are
 * sym_gp.c's (whether the dual slice is the minimiser sym_slice.c's), the
 * outputs sym_print.c's (sym_impl.h says which file does what).
 *
 * Approach.  Scaling-exponent inference (§3) gives every scalar entry of
 * every parameter an unknown exponent and turns each operation of the
 * predictor into linear equations on them.  The equations only depend on
 * the predictor's structure, not on the sizes, so they are built on a small
 * instance: every dimension d is replaced by min(d, 3) (equal dimensions
 * stay equal, contractions stay contractions).  The integer nullspace of
 * the system, found by exact rational elimination (GMP) and scaled to
 * primitive integer vectors, is the torus of rescaling symmetries.  Each
 * basis vector scales whole slices (a parameter, a row, a column, an entry)
 * tied to one index; generators sharing an index form one block of a
 * family, and the family's size is the real size of that index.  So an
 * index family (one generator per neuron, per coordinate, per column) is
 * derived once, symbolically, whatever the real dimensions.
 *
 * For each family: det G by Cauchy-Binet with exact integer coefficients
 * (§2), the orbit minimum of log det G as a geometric programme solved in
 * closed form when its degree of difficulty is 0 (§4: dual weights δ,
 * existence when every δ > 0, "unbounded" when one is negative, "not
 * attained" when one is zero), the dual slice χ = 0, and the bias as a
 * coefficient times the log of a torus invariant plus the log of a
 * rational constant.  Degree > 0 is left to a numerical Newton solve,
 * labelled numeric.
 */
#include "sym.h"
#include "sym_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

size_t sym_ngroups(const sym_derivation *d) { return d->ngroups; }

bool sym_families_coupled(const sym_derivation *d)
{
    for (size_t f = 0; f < d->nfamilies; f++)
        for (size_t h = f + 1; h < d->nfamilies; h++)
            for (int b = 0; b < d->families[f].nblocks; b++)
                for (int c = 0; c < d->families[h].nblocks; c++)
                    if (d->families[f].blocks[b].param == d->families[h].blocks[c].param)
                        return true;
    return false;
}
const sym_group *sym_group_at(const sym_derivation *d, size_t i) { return &d->groups[i]; }
/* Every torus generator gives one conserved chi, except that each GL(r)
 * junction's diagonal torus (r generators, always in the lattice and
 * independent across junctions) is replaced by the junction's r(r+1)/2
 * entries of C.  Counted from the lattice's size, so that it does not
 * depend on which basis presents the torus (with a hidden width of 1 a
 * junction's diagonal and a whole-layer rescaling are equally small
 * generators, and either may be the one listed). */
long sym_conservation_laws(const sym_derivation *d)
{
    long n = 0;
    for (size_t f = 0; f < d->nfamilies; f++)
        n += d->families[f].count * d->families[f].k;
    for (size_t i = 0; i < d->ngroups; i++)
        if (d->groups[i].kind == SYM_GROUP_GL)
            n += d->groups[i].conserved - d->groups[i].r;
    return n;
}

size_t sym_nfamilies(const sym_derivation *d) { return d->nfamilies; }
const sym_family *sym_family_at(const sym_derivation *d, size_t i) { return &d->families[i]; }
const ibc_spec *sym_spec(const sym_derivation *d) { return d->spec; }

/* ------------------------------------------- families from the torus */

/* A generator as slices (the contract: sym_impl.h). */
bool sym_classify(infer *in, const long *g, gslice *out, int *nout)
{
    const ibc_spec *sp = in->spec;
    *nout = 0;
    for (size_t q = 0; q < sp->nparams; q++) {
        size_t p = (size_t)in->order[q];
        int R = in->param_rows[p], C = in->param_cols[p], off = in->param_off[p];
        int nzr = -1, nzc = -1, count = 0;
        long val = 0;
        bool rowsame = true, colsame = true, uniform = true;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) {
                long e = g[off + i * C + j];
                if (!e)
                    continue;
                if (count == 0) {
                    nzr = i;
                    nzc = j;
                    val = e;
                }
                if (e != val)
                    uniform = false;
                if (i != nzr)
                    rowsame = false;
                if (j != nzc)
                    colsame = false;
                count++;
            }
        if (!count)
            continue;
        if (!uniform || *nout >= SYM_MAX_BLOCKS) {
            in->bad_param = (int)p;
            return false;
        }
        gslice s = { (int)p, SYM_SLICE_WHOLE, -1, val };
        if (R * C == 1 || count == R * C) {
            s.slice = SYM_SLICE_WHOLE;
        } else if (C == 1 && count == 1) {
            s.slice = SYM_SLICE_ENTRY;
            s.index = nzr;
        } else if (rowsame && count == C) {
            s.slice = SYM_SLICE_ROW;
            s.index = nzr;
        } else if (colsame && count == R) {
            s.slice = SYM_SLICE_COL;
            s.index = nzc;
        } else if (count == 1) {
            s.slice = SYM_SLICE_ENTRY;
            s.index = nzr * C + nzc;
        } else if (in->cap != SMALL_DIM) {
            /* a set of entries: only on the full instance, where the
             * entries are the spec's own (a small instance's would not
             * lift) */
            s.slice = SYM_SLICE_SET;
            s.index = -1;
        } else {
            in->bad_param = (int)p;
            return false;
        }
        out[(*nout)++] = s;
    }
    return *nout > 0;
}

static const char *slice_text(ibc_arena *a, const ibc_var *p, sym_slice s, const char *idx)
{
    switch (s) {
    case SYM_SLICE_ROW: return arena_printf(a, "%s[%s,:]", p->name, idx);
    case SYM_SLICE_COL: return arena_printf(a, "%s[:,%s]", p->name, idx);
    case SYM_SLICE_ENTRY: return arena_printf(a, "%s[%s]", p->name, idx);
    case SYM_SLICE_SET: return NULL;   /* named with its sets, by build_families */
    default: return p->name;
    }
}

static long slice_count(const ibc_var *p, sym_slice s)
{
    switch (s) {
    case SYM_SLICE_ROW: return p->shape.rows;
    case SYM_SLICE_COL: return p->shape.cols;
    case SYM_SLICE_ENTRY: return p->shape.rows * p->shape.cols;
    default: return 1;   /* the whole parameter; a set's index comes from the other blocks */
    }
}

/* Whether generators g and h both rescale an entry of parameter p. */
static bool sets_meet(const infer *in, const long *g, const long *h, int p)
{
    int off = in->param_off[p], n = in->param_rows[p] * in->param_cols[p];
    for (int e = 0; e < n; e++)
        if (g[off + e] && h[off + e])
            return true;
    return false;
}

/* The sets of a family's SYM_SLICE_SET block p: index value i takes the
 * entries that the family's generator at i (rep[i]) rescales.  False
 * (with a located error) when an index value has no generator or two
 * sets share an entry. */
static bool family_sets(infer *in, sym_family *f, int p, const long *basis, const int *rep, int nset)
{
    const ibc_spec *sp = in->spec;
    sym_block *b = &f->blocks[p];
    int par = b->param, off = in->param_off[par], n = in->param_rows[par] * in->param_cols[par];
    long *start = arena_alloc(in->arena, (size_t)(f->count + 1) * sizeof(long));
    long *entries = arena_alloc(in->arena, (size_t)n * sizeof(long) + sizeof(long));
    bool *seen = arena_alloc(in->arena, (size_t)n + 1);
    long t = 0;
    for (long i = 0; i < f->count; i++) {
        start[i] = t;
        if (rep[i] < 0) {
            diag_error(in->diag, sp->predict->loc,
                       "the symmetries rescale sets of entries of '%s' that are not one set per index value of their "
                       "family (as when an operator puts an entry in two groups, whose factors must then scale "
                       "together); the derivation supports one disjoint set per index value only",
                       sp->params[par].name);
            return false;
        }
        const long *g = basis + (size_t)rep[i] * in->N;
        for (int e = 0; e < n; e++)
            if (g[off + e]) {
                if (seen[e]) {
                    diag_error(in->diag, sp->predict->loc,
                               "the sets of entries of '%s' that the symmetries rescale overlap (entry %d is in two); "
                               "the derivation supports disjoint sets only", sp->params[par].name, e);
                    return false;
                }
                seen[e] = true;
                entries[t++] = e;
            }
    }
    start[f->count] = t;
    b->set_start = start;
    b->set_entries = entries;
    b->set_name = arena_printf(in->arena, "S%d", nset);
    b->text = f->index ? arena_printf(in->arena, "%s[%s_%s]", sp->params[par].name, b->set_name, f->index)
                       : arena_printf(in->arena, "%s[%s]", sp->params[par].name, b->set_name);
    return true;
}


/* Every generator of the basis as slices (gs[g], ng[g] of them) and its
 * index value gidx[g] (that of its indexed slices, -1 when it has none);
 * false after a located error (a generator that is not a rescaling of
 * whole slices). */
static bool classify_generators(infer *in, const long *basis, int dim, gslice (*gs)[SYM_MAX_BLOCKS], int *ng,
                                int *gidx)
{
    for (int g = 0; g < dim; g++) {
        if (!sym_classify(in, basis + (size_t)g * in->N, gs[g], &ng[g])) {
            diag_error(in->diag, in->spec->predict->loc,
                       "the predictor has a scaling symmetry that is not a rescaling of whole rows, columns or "
                       "entries; the derivation supports rescaling tori only (docs/theory.md §3)");
            return false;
        }
        gidx[g] = -1;
        for (int s = 0; s < ng[g]; s++)
            if (gs[g][s].index >= 0)
                gidx[g] = gs[g][s].index;
    }
    return true;
}

/* The members of the family that generator g0 starts: g0 and the unused
 * generators at its index value connected to it through shared blocks
 * (the same parameter and slice; for sets, sets that meet), into members
 * and marked used; returns how many, or -1 after a located error when
 * there are more than SYM_MAX_GEN (a family is never cut in two: its
 * parts would each get a bias that is not the model's). */
static int family_members(infer *in, const long *basis, int dim, gslice (*gs)[SYM_MAX_BLOCKS], const int *ng,
                          const int *gidx, bool *used, int g0, int *members)
{
    int nm = 0;
    members[nm++] = g0;
    used[g0] = true;
    for (bool grew = true; grew;) {
        grew = false;
        for (int g = 0; g < dim; g++) {
            if (used[g] || gidx[g] != gidx[g0])
                continue;
            bool shares = false;
            for (int m = 0; m < nm && !shares; m++)
                for (int s = 0; s < ng[g]; s++)
                    for (int t = 0; t < ng[members[m]]; t++)
                        if (gs[g][s].param == gs[members[m]][t].param &&
                            gs[g][s].slice == gs[members[m]][t].slice &&
                            (gs[g][s].slice != SYM_SLICE_SET ||
                             sets_meet(in, basis + (size_t)g * in->N, basis + (size_t)members[m] * in->N,
                                       gs[g][s].param)))
                            shares = true;
            if (shares && nm == SYM_MAX_GEN) {
                diag_error(in->diag, in->spec->predict->loc,
                           "a family of rescalings here has more than %d generators per index (a product of more "
                           "than %d factors that share an index); ibc derives families of at most %d factors: "
                           "write the product with fewer factors (docs/theory.md §8)",
                           SYM_MAX_GEN, SYM_MAX_GEN + 1, SYM_MAX_GEN + 1);
                return -1;
            }
            if (shares) {
                members[nm++] = g;
                used[g] = true;
                grew = true;
            }
        }
    }
    return nm;
}

/* The family's blocks, the union of its members' slices in order of
 * appearance, and its exponent matrix alpha (k = nm rows); false when
 * there would be more than SYM_MAX_BLOCKS. */
static bool family_blocks(sym_family *f, gslice (*gs)[SYM_MAX_BLOCKS], const int *ng, const int *members, int nm)
{
    for (int m = 0; m < nm; m++)
        for (int s = 0; s < ng[members[m]]; s++) {
            gslice *sl = &gs[members[m]][s];
            int p = 0;
            while (p < f->nblocks && !(f->blocks[p].param == sl->param && f->blocks[p].slice == sl->slice))
                p++;
            if (p == f->nblocks) {
                if (f->nblocks == SYM_MAX_BLOCKS)
                    return false;
                f->blocks[f->nblocks].param = sl->param;
                f->blocks[f->nblocks].slice = sl->slice;
                f->nblocks++;
            }
            f->alpha[m][p] = sl->expo;
        }
    f->k = nm;
    return true;
}

/* The same pattern as g0's at other index values belongs to g0's family:
 * those generators (and their partners at their index) are marked used.
 * rep[r] gets the generator at each index value found, g0 first, and
 * repidx[r] its index value (for the sets of SYM_SLICE_SET blocks; both
 * dim + 1 long); returns how many. */
static int family_repeats(int dim, gslice (*gs)[SYM_MAX_BLOCKS], const int *ng, const int *gidx, bool *used, int g0,
                          int *rep, int *repidx)
{
    int nrep = 0;
    rep[nrep] = g0;
    repidx[nrep++] = gidx[g0];
    for (int g = 0; g < dim; g++) {
        if (used[g] || gidx[g] == gidx[g0] || gidx[g0] < 0)
            continue;
        bool same = ng[g] == ng[g0];
        for (int s = 0; same && s < ng[g]; s++)
            same = gs[g][s].param == gs[g0][s].param && gs[g][s].slice == gs[g0][s].slice &&
                   gs[g][s].expo == gs[g0][s].expo;
        if (same) {
            used[g] = true;
            rep[nrep] = g;
            repidx[nrep++] = gidx[g];
            /* and its partners at that index */
            for (int h = 0; h < dim; h++)
                if (!used[h] && gidx[h] == gidx[g])
                    used[h] = true;
        }
    }
    return nrep;
}

/* The family's index name (k when a block is a column, else j for a row,
 * i for an entry, NULL for none), its count (the real size of that
 * index, 1 for none) and its blocks' texts. */
static void family_index(infer *in, sym_family *f)
{
    const ibc_spec *sp = in->spec;
    bool any_col = false, any_row = false, any_entry = false;
    for (int p = 0; p < f->nblocks; p++) {
        any_col = any_col || f->blocks[p].slice == SYM_SLICE_COL;
        any_row = any_row || f->blocks[p].slice == SYM_SLICE_ROW;
        any_entry = any_entry || f->blocks[p].slice == SYM_SLICE_ENTRY;
    }
    f->index = any_col ? "k" : any_row ? "j" : any_entry ? "i" : NULL;
    f->count = 1;
    for (int p = 0; p < f->nblocks; p++) {
        const ibc_var *pv = &sp->params[f->blocks[p].param];
        f->blocks[p].text = slice_text(in->arena, pv, f->blocks[p].slice, f->index);
        long c = slice_count(pv, f->blocks[p].slice);
        if (c > f->count)
            f->count = c;
    }
}

/* The entry sets of the family's SYM_SLICE_SET blocks (family_sets), each
 * from the generator at each index value (rep, repidx: family_repeats)
 * and named S1, S2, ... in turn (d->nsets); false after a located error
 * (a set in a family of more than one generator per index, or sets that
 * overlap). */
static bool family_set_blocks(infer *in, sym_derivation *d, sym_family *f, const long *basis, const int *rep,
                              const int *repidx, int nrep)
{
    const ibc_spec *sp = in->spec;
    for (int p = 0; p < f->nblocks; p++) {
        if (f->blocks[p].slice != SYM_SLICE_SET)
            continue;
        if (f->k > 1) {
            diag_error(in->diag, sp->predict->loc,
                       "a family of %d generators per index rescales a set of entries of '%s'; the derivation "
                       "supports sets of entries in one-generator families only", f->k,
                       sp->params[f->blocks[p].param].name);
            return false;
        }
        int *at = arena_alloc(in->arena, (size_t)f->count * sizeof(int));
        for (long i = 0; i < f->count; i++)
            at[i] = -1;
        for (int r = 0; r < nrep; r++)
            if (f->count == 1 || (repidx[r] >= 0 && repidx[r] < f->count))
                at[f->count == 1 ? 0 : repidx[r]] = rep[r];
        if (!family_sets(in, f, p, basis, at, ++d->nsets))
            return false;
    }
    return true;
}

/* "rescaling of (u, v[j]), one per j": the family's name from its blocks. */
static void family_name(ibc_arena *a, sym_family *f)
{
    char *names = "";
    for (int p = 0; p < f->nblocks; p++)
        names = arena_printf(a, "%s%s%s", names, p ? ", " : "", f->blocks[p].text);
    f->name = f->index ? arena_printf(a, "rescaling of (%s), one per %s", names, f->index)
                       : arena_printf(a, "rescaling of (%s)", names);
}

/* The families of the torus basis (dim generators of N unknowns) into d,
 * each with its det G and orbit minimum: the generators at one index value
 * whose slices share their (parameter, kind) set form one block; the
 * family is that block, repeated at every index value.  False after a
 * located error, and also, with no message, when a family has more than
 * SYM_MAX_BLOCKS blocks or a Gram singular for every norm. */
static bool build_families(infer *in, sym_derivation *d, const long *basis, int dim)
{
    gslice (*gs)[SYM_MAX_BLOCKS] = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof *gs);
    int *ng = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(int));
    int *gidx = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(int));
    bool *used = arena_alloc(in->arena, (size_t)(dim ? dim : 1));
    if (!classify_generators(in, basis, dim, gs, ng, gidx))
        return false;
    d->families = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(sym_family));
    for (int g0 = 0; g0 < dim; g0++) {
        if (used[g0])
            continue;
        sym_family *f = &d->families[d->nfamilies];
        memset(f, 0, sizeof *f);
        int members[SYM_MAX_GEN];
        int nm = family_members(in, basis, dim, gs, ng, gidx, used, g0, members);
        if (nm < 0)
            return false;
        if (!family_blocks(f, gs, ng, members, nm)) {
            diag_error(in->diag, in->spec->predict->loc,
                       "a family of rescalings here acts on more than %d parameter slices; ibc derives families "
                       "of at most %d: write the product with fewer factors (docs/theory.md §8)",
                       SYM_MAX_BLOCKS, SYM_MAX_BLOCKS);
            return false;
        }
        int *rep = arena_alloc(in->arena, (size_t)(dim + 1) * sizeof(int));
        int *repidx = arena_alloc(in->arena, (size_t)(dim + 1) * sizeof(int));
        int nrep = family_repeats(dim, gs, ng, gidx, used, g0, rep, repidx);
        family_index(in, f);
        if (!family_set_blocks(in, d, f, basis, rep, repidx, nrep))
            return false;
        family_name(in->arena, f);
        if (!sym_gram_terms(f)) {
            diag_error(in->diag, in->spec->predict->loc,
                       "the Gram matrix of a family of rescalings here is singular for every parameter value, "
                       "or its determinant has more than 64 terms or a coefficient beyond 64 bits; ibc derives none of "
                       "these (docs/theory.md §2)");
            return false;
        }
        sym_minimise(in->arena, f);
        d->nfamilies++;
    }
    return true;
}

/* A torus family that is the diagonal of a junction: its two blocks are
 * the junction's legs, scaled oppositely. */
bool sym_family_in_junction(const sym_family *f, const sym_group *g)
{
    if (f->k != 1 || f->nblocks != 2 || f->alpha[0][0] != -f->alpha[0][1] || labs(f->alpha[0][0]) != 1)
        return false;
    const sym_leg *legs[2] = { &g->left, &g->right };
    for (int s = 0; s < 2; s++) {
        bool found = false;
        for (int p = 0; p < 2 && !found; p++) {
            const sym_block *b = &f->blocks[p];
            if (b->param != legs[s]->param || b->slice == SYM_SLICE_SET)
                continue;
            found = legs[s]->rows ? b->slice != SYM_SLICE_COL : b->slice == SYM_SLICE_COL || b->slice == SYM_SLICE_ENTRY ||
                                                                 b->slice == SYM_SLICE_WHOLE;
        }
        if (!found)
            return false;
    }
    return true;
}

static bool group_uses(const sym_derivation *d, const sym_group *g, int param)
{
    if (g->kind == SYM_GROUP_GL)
        return g->left.param == param || g->right.param == param;
    const sym_family *f = &d->families[g->family];
    for (int p = 0; p < f->nblocks; p++)
        if (f->blocks[p].param == param)
            return true;
    return false;
}

static void build_groups(ibc_arena *a, sym_derivation *d, const sym_group *junctions, size_t njunctions)
{
    const ibc_spec *sp = d->spec;
    d->groups = arena_alloc(a, (njunctions + d->nfamilies + 1) * sizeof(sym_group));
    memcpy(d->groups, junctions, njunctions * sizeof(sym_group));
    d->ngroups = njunctions;
    for (size_t f = 0; f < d->nfamilies; f++) {
        bool inside = false;
        for (size_t g = 0; g < njunctions && !inside; g++)
            inside = sym_family_in_junction(&d->families[f], &d->groups[g]);
        if (inside)
            continue;
        sym_group *g = &d->groups[d->ngroups++];
        memset(g, 0, sizeof *g);
        g->kind = SYM_GROUP_TORUS;
        g->family = (int)f;
        g->text = d->families[f].name;
        g->generators = d->families[f].count * d->families[f].k;
        g->conserved = g->generators;
    }
    /* coupled components: groups sharing a parameter, transitively */
    for (size_t g = 0; g < d->ngroups; g++)
        d->groups[g].component = (int)g;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t g = 0; g < d->ngroups; g++)
            for (size_t h = g + 1; h < d->ngroups; h++) {
                if (d->groups[g].component == d->groups[h].component)
                    continue;
                bool share = false;
                for (size_t p = 0; p < sp->nparams && !share; p++)
                    share = group_uses(d, &d->groups[g], (int)p) && group_uses(d, &d->groups[h], (int)p);
                if (share) {
                    int lo = d->groups[g].component < d->groups[h].component ? d->groups[g].component
                                                                               : d->groups[h].component;
                    d->groups[g].component = d->groups[h].component = lo;
                    changed = true;
                }
            }
    }
}

/* Checks an explicit symmetry: its exponents must solve the system. */
static void check_symmetry(infer *in, const ast_node *sym)
{
    long *g = arena_alloc(in->arena, (size_t)in->N * sizeof(long));
    for (size_t t = 0; t < sym->nkids; t++) {
        const ast_node *tg = sym->kids[t];
        int p = -1;
        for (size_t i = 0; i < in->spec->nparams; i++)
            if (!strcmp(in->spec->params[i].name, tg->name))
                p = (int)i;
        if (p < 0)
            return;
        int R = in->param_rows[p], C = in->param_cols[p];
        /* index 0 of the symmetry's variable; ':' is the whole axis */
        const ast_node *ix = tg->rhs;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) {
                bool in_slice = true;
                if (ix && ix->nkids >= 1 && ix->kids[0]->kind == AST_IDENT)
                    in_slice = in_slice && i == 0;
                if (ix && ix->nkids >= 2 && ix->kids[1]->kind == AST_IDENT)
                    in_slice = in_slice && j == 0;
                if (in_slice)
                    g[in->param_off[p] + i * C + j] = (long)tg->lhs->value;
            }
    }
    for (size_t e = 0; e < in->neq; e++) {
        long s = 0;
        for (int k = 0; k < in->N; k++)
            s += in->eq[e * (size_t)in->N + k] * g[k];
        if (s != 0) {
            diag_error(in->diag, sym->loc,
                       "symmetry '%s' does not preserve the predictor: its exponents violate a scaling equation "
                       "of the predictor", sym->name);
            return;
        }
    }
}

/* The parameters in the order of their first appearance in the predictor
 * (left to right as written), then those it does not use, by name: an
 * order that does not depend on the order of declaration and reads as the
 * model is written. */
static void first_appearance(const ast_node *n, int *rank, int *next)
{
    if (!n)
        return;
    if (n->kind == AST_IDENT && n->ref_kind == IBC_REF_PARAM && rank[n->ref] < 0)
        rank[n->ref] = (*next)++;
    first_appearance(n->lhs, rank, next);
    for (size_t i = 0; i < n->nkids; i++)
        first_appearance(n->kids[i], rank, next);
    first_appearance(n->rhs, rank, next);
}

static int *param_order(ibc_arena *a, const ibc_spec *spec)
{
    size_t P = spec->nparams;
    int *rank = arena_alloc(a, (P + 1) * sizeof(int)), *order = arena_alloc(a, (P + 1) * sizeof(int)), next = 0;
    for (size_t p = 0; p < P; p++)
        rank[p] = -1;
    first_appearance(spec->predict, rank, &next);
    for (size_t p = 0; p < P; p++)
        if (rank[p] >= 0)
            order[rank[p]] = (int)p;
    for (int i = next; i < (int)P; i++) {   /* unused: by name */
        int best = -1;
        for (size_t p = 0; p < P; p++)
            if (rank[p] < 0 && (best < 0 || strcmp(spec->params[p].name, spec->params[best].name) < 0))
                best = (int)p;
        rank[best] = i;
        order[i] = best;
    }
    return order;
}

sym_derivation *sym_derive(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag)
{
    infer in;
    memset(&in, 0, sizeof in);
    in.arena = a;
    in.diag = diag;
    in.spec = spec;
    size_t P = spec->nparams;
    in.cap = sym_has_sparse_file_operator(spec->predict) ? INT_MAX : SMALL_DIM;
    in.param_off = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_rows = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_cols = arena_alloc(a, (P + 1) * sizeof(int));
    in.order = param_order(a, spec);
    for (size_t i = 0; i < P; i++) {
        int p = in.order[i];
        sym_shape_small(&in, &spec->params[p].shape, &in.param_rows[p], &in.param_cols[p]);
        in.param_off[p] = in.N;
        in.N += in.param_rows[p] * in.param_cols[p];
    }
    if (in.cap != SMALL_DIM && in.N > SYM_MAX_FULL) {
        diag_error(diag, spec->predict->loc,
                   "an operator read from a file has zeros, so the derivation runs on the full instance, but it has "
                   "%d unknowns (at most %d): use fewer or smaller parameters, or a structured operator",
                   in.N, SYM_MAX_FULL);
        return NULL;
    }
    int errors = diag->errors;
    xval out = sym_infer_expr(&in, spec->predict);
    if (in.failed || diag->errors > errors) {
        if (diag->errors == errors)
            diag_error(diag, spec->predict->loc, "internal error: the scaling system could not be built");
        return NULL;
    }
    /* The prediction itself must not scale. */
    for (int i = 0; i < out.rows * out.cols; i++)
        if (out.nz[i])
            sym_eq_add(&in, out.form + (size_t)i * in.N, NULL);
    /* An entry no equation mentions does not reach the prediction (an
     * unused parameter, sema warns): rescaling it is no symmetry of the
     * predictor's, so it is pinned instead of becoming a family. */
    size_t neq0 = in.neq;
    long *pin = arena_alloc(a, (size_t)in.N * sizeof(long) + sizeof(long));
    for (int u = 0; u < in.N; u++) {
        bool seen = false;
        for (size_t e = 0; e < neq0 && !seen; e++)
            seen = in.eq[e * (size_t)in.N + u] != 0;
        if (seen)
            continue;
        memset(pin, 0, (size_t)in.N * sizeof(long));
        pin[u] = 1;
        sym_eq_add(&in, pin, NULL);
    }
    for (size_t s = 0; s < spec->nsymmetries; s++)
        check_symmetry(&in, spec->symmetries[s]);
    if (diag->errors > errors)
        return NULL;
    {
        int *uses = arena_alloc(a, (P + 1) * sizeof(int));
        sym_count_params(spec->predict, uses);
        size_t cap = 2 * (P + 1);
        in.junctions = arena_alloc(a, cap * sizeof(sym_group));
        sym_find_junctions(a, spec, spec->predict, uses, in.junctions, &in.njunctions, cap);
    }
    long *basis;
    int dim = sym_lattice_basis(&in, &basis);
    if (dim < 0)
        return NULL;
    sym_derivation *d = arena_alloc(a, sizeof *d);
    d->spec = spec;
    d->nunknowns = in.N;
    d->nconstraints = (long)in.neq;
    d->full = in.cap != SMALL_DIM;
    d->order = in.order;
    if (!build_families(&in, d, basis, dim))
        return NULL;
    build_groups(a, d, in.junctions, in.njunctions);
    sym_joints(a, d);
    return d;
}

