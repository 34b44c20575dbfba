/*
 * sym_joint.c: the joint det G of coupled torus groups (docs/theory.md §8),
 * exactly, as a polynomial in squared norms, where it is small.
 *
 * Groups that share a parameter (sym_group.component) have one Gram
 * matrix.  When every group of such a component is a torus family, every
 * generator a rescales entries: xi_a(theta)_e = alpha_ae theta_e.  The
 * entries that every generator of the component rescales alike (the same
 * exponent vector e_c in Z^m, m the generators) form a cell c: a whole
 * block when generators rescale whole blocks, a single entry where they
 * overlap (W2[i,j] of a two-hidden-layer relu network is in row i's and in
 * column j's generator).  Then
 *
 *     G = sum_c e_c e_c' ||theta_c||^2,
 *     det G = sum over m-subsets S of cells of det(E_S)^2 prod_{c in S} ||theta_c||^2
 *
 * (Cauchy-Binet), a polynomial with non-negative integer coefficients.
 * Its coefficients sum to det(E'E), computed here exactly (Bareiss, GMP);
 * when every e_c has at most one +1 and one -1 and no other non-zero (a
 * chain of rescalings: E is totally unimodular) every coefficient is 1
 * and det(E'E) is the number of terms.  The terms are the bases of the
 * cells' vector matroid, enumerated depth first (independence tested
 * modulo a prime, which can only miss a basis, never invent one; each
 * term's determinant is exact), and the enumeration is accepted only when
 * its coefficients sum to det(E'E) exactly, so that no term is missing.
 * Up to SYM_JOINT_MAX_TERMS terms the polynomial is the derivation's;
 * beyond, the number of terms (or a lower bound: det(E'E) over the largest
 * product of m squared cell norms, by Hadamard's inequality) is stated and
 * the trainer's Cholesky of the joint Gram is the only value.  A component
 * holding a GL junction has generators that are not rescalings: no such
 * polynomial, said so.
 */
#include "sym.h"
#include "sym_impl.h"
#include "exact.h"

#include <gmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRIPLES 4000000L     /* (entry, generator, exponent) triples of a component */
#define MAX_OPS 200000000L       /* modular operations of the enumeration */
#define PRIME 2147483647ULL      /* 2^31 - 1 */

size_t sym_njoints(const sym_derivation *d) { return d->njoints; }
const sym_joint *sym_joint_at(const sym_derivation *d, size_t i) { return &d->joints[i]; }

static const char *z_str(ibc_arena *a, const mpz_t z)
{
    char *s = mpz_get_str(NULL, 10, z);
    const char *r = arena_strndup(a, s, strlen(s));
    void (*freefn)(void *, size_t);
    mp_get_memory_functions(NULL, NULL, &freefn);
    freefn(s, strlen(s) + 1);
    return r;
}

/* ------------------------------------------------- cells of a component */

/* One generator's exponent on one entry: xi_gen(theta)_entry = expo theta_entry. */
typedef struct {
    long entry;     /* global entry: the parameter's first (d->order) + row-major offset */
    long gen;       /* the generator, numbered within its component from 0 */
    long expo;      /* its exponent on that entry (alpha of the entry's block) */
} triple;

static int cmp_triple(const void *x, const void *y)
{
    const triple *a = x, *b = y;
    if (a->entry != b->entry)
        return a->entry < b->entry ? -1 : 1;
    return a->gen < b->gen ? -1 : a->gen > b->gen;
}

/* one entry's exponent vector: triples [start, start + len) */
typedef struct {
    long entry;     /* the global entry */
    long start;     /* its first triple (g_tr, sorted by entry then generator) */
    long len;       /* its triples: the generators that rescale it, in order */
} evec;

static const triple *g_tr;   /* for cmp_evec (qsort has no context argument) */

static int cmp_evec(const void *x, const void *y)
{
    const evec *a = x, *b = y;
    for (long i = 0; i < a->len && i < b->len; i++) {
        const triple *s = &g_tr[a->start + i], *t = &g_tr[b->start + i];
        if (s->gen != t->gen)
            return s->gen < t->gen ? -1 : 1;
        if (s->expo != t->expo)
            return s->expo < t->expo ? -1 : 1;
    }
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->entry < b->entry ? -1 : a->entry > b->entry;
}

static long param_size(const ibc_var *p) { return p->shape.rows * (p->shape.rank == 2 ? p->shape.cols : 1); }

/* The entries (row-major offsets) of block b of family f at index value i. */
static long block_entries(const ibc_var *pv, const sym_family *f, const sym_block *b, long i, long *out)
{
    long R = pv->shape.rows, C = pv->shape.rank == 2 ? pv->shape.cols : 1, n = 0;
    switch (b->slice) {
    case SYM_SLICE_ROW:
        if (i < R)
            for (long c = 0; c < C; c++)
                out[n++] = i * C + c;
        break;
    case SYM_SLICE_COL:
        if (i < C)
            for (long r = 0; r < R; r++)
                out[n++] = r * C + i;
        break;
    case SYM_SLICE_ENTRY:
        if (i < R * C)
            out[n++] = i;
        break;
    case SYM_SLICE_SET:
        if (i < f->count)
            for (long t = b->set_start[i]; t < b->set_start[i + 1]; t++)
                out[n++] = b->set_entries[t];
        break;
    default:
        for (long e = 0; e < R * C; e++)
            out[n++] = e;
        break;
    }
    return n;
}

/* The squared norm of a set of entries of one parameter (sorted offsets). */
static const char *part_name(ibc_arena *a, const ibc_var *pv, const long *e, long n)
{
    long R = pv->shape.rows, C = pv->shape.rank == 2 ? pv->shape.cols : 1;
    if (n == R * C)
        return pv->shape.rank == 0 ? arena_printf(a, "%s^2", pv->name) : arena_printf(a, "||%s||^2", pv->name);
    if (n == 1)
        return pv->shape.rank == 2 ? arena_printf(a, "%s[%ld,%ld]^2", pv->name, e[0] / C, e[0] % C)
                                   : arena_printf(a, "%s[%ld]^2", pv->name, e[0]);
    if (pv->shape.rank == 2 && n == C && e[0] % C == 0 && e[n - 1] == e[0] + C - 1)
        return arena_printf(a, "||%s[%ld,:]||^2", pv->name, e[0] / C);
    if (pv->shape.rank == 2 && n == R) {
        bool col = true;
        for (long t = 1; t < n && col; t++)
            col = e[t] == e[0] + t * C;
        if (col)
            return arena_printf(a, "||%s[:,%ld]||^2", pv->name, e[0]);
    }
    char *s = arena_printf(a, "||%s{", pv->name);   /* a set of entries, row-major offsets */
    for (long t = 0; t < n; t++)
        s = arena_printf(a, "%s%s%ld", s, t ? "," : "", e[t]);
    return arena_printf(a, "%s}||^2", s);
}

/* Arithmetic runs (start, count, stride) of sorted offsets. */
static int make_runs(ibc_arena *a, int param, const long *e, long n, sym_run **out)
{
    sym_run *r = arena_alloc(a, (size_t)(n + 1) * sizeof *r);
    int nr = 0;
    for (long t = 0; t < n;) {
        long stride = t + 1 < n ? e[t + 1] - e[t] : 1, c = 1;
        while (t + c < n && e[t + c] - e[t + c - 1] == stride)
            c++;
        r[nr++] = (sym_run){ param, e[t], c, stride };
        t += c;
    }
    *out = r;
    return nr;
}

/* ------------------------------------------------------ the enumeration */

/* The state of the depth-first enumeration of the cells' bases (the
 * polynomial's terms); every array is owned by its caller. */
typedef struct {
    int K, m;              /* cells and generators: E's rows and columns */
    const long *E;         /* K x m, row-major: the cells' exponent vectors */
    int *chosen, nchosen;  /* the cells chosen so far (m slots), increasing */
    uint64_t *work;        /* (K + m) x m: rank_modp's elimination scratch */
    long ops;              /* modular operations so far (budget MAX_OPS) */
    bool aborted;          /* the budget or cap was exceeded: the terms are incomplete */
    int found, cap;        /* terms found (cap + 1 when more than cap) and the most kept */
    int *terms;            /* cap x m: each term's cells */
    mpz_t *coef;           /* cap: each term's coefficient det(E_S)^2 */
    mpz_t *M;              /* m x m scratch for zdet */
    mpz_t det;             /* the last det(E_S) */
} dfs_t;

static uint64_t modp(long v)
{
    long r = v % (long)PRIME;
    return (uint64_t)(r < 0 ? r + (long)PRIME : r);
}

static uint64_t inv_modp(uint64_t x)
{
    uint64_t r = 1, e = PRIME - 2;
    while (e) {
        if (e & 1)
            r = r * x % PRIME;
        x = x * x % PRIME;
        e >>= 1;
    }
    return r;
}

/* rank modulo PRIME of the rows idx[0..n) of E (at most the rank over Q) */
static int rank_modp(dfs_t *s, const int *idx, int n)
{
    int m = s->m, rank = 0;
    uint64_t *w = s->work;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
            w[i * m + j] = modp(s->E[(size_t)idx[i] * m + j]);
    s->ops += (long)n * m * m;
    for (int c = 0; c < m && rank < n; c++) {
        int p = rank;
        while (p < n && !w[p * m + c])
            p++;
        if (p == n)
            continue;
        if (p != rank)
            for (int j = 0; j < m; j++) {
                uint64_t t = w[p * m + j];
                w[p * m + j] = w[rank * m + j];
                w[rank * m + j] = t;
            }
        uint64_t inv = inv_modp(w[rank * m + c]);
        for (int i = rank + 1; i < n; i++) {
            if (!w[i * m + c])
                continue;
            uint64_t f = w[i * m + c] * inv % PRIME;
            for (int j = c; j < m; j++)
                w[i * m + j] = (w[i * m + j] + (PRIME - f) * w[rank * m + j]) % PRIME;
        }
        rank++;
    }
    return rank;
}

static void dfs(dfs_t *s, int i, int *idx)
{
    int m = s->m, K = s->K;
    if (s->aborted)
        return;
    if (s->nchosen == m) {
        for (int r = 0; r < m; r++)
            for (int j = 0; j < m; j++)
                mpz_set_si(s->M[r * m + j], s->E[(size_t)s->chosen[r] * m + j]);
        exact_zdet(s->det, s->M, m);
        if (!mpz_sgn(s->det))
            return;   /* independent modulo p implies independent: not reached */
        if (s->found == s->cap) {
            s->aborted = true;   /* more terms than wanted */
            s->found++;
            return;
        }
        memcpy(s->terms + (size_t)s->found * m, s->chosen, sizeof(int) * (size_t)m);
        mpz_mul(s->coef[s->found], s->det, s->det);
        s->found++;
        return;
    }
    if (K - i < m - s->nchosen || s->ops > MAX_OPS) {
        s->aborted = s->aborted || s->ops > MAX_OPS;
        return;
    }
    /* with cell i, when it is independent of the chosen ones */
    s->chosen[s->nchosen] = i;
    if (rank_modp(s, s->chosen, s->nchosen + 1) == s->nchosen + 1) {
        s->nchosen++;
        dfs(s, i + 1, idx);
        s->nchosen--;
    }
    /* without it, when the chosen ones and the cells after it still span */
    int n = 0;
    for (int t = 0; t < s->nchosen; t++)
        idx[n++] = s->chosen[t];
    for (int t = i + 1; t < K; t++)
        idx[n++] = t;
    if (rank_modp(s, idx, n) == m)
        dfs(s, i + 1, idx);
}

/* ------------------------------------------------------- one component */

static const char *const CHOLESKY = "computed in the trainer by Cholesky of the joint Gram";

/* Global entry numbers: the parameters in the derivation's order (first
 * appearance in the predictor), so that the cells' order is canonical;
 * parameter p's entries are [goff[p], gend[p]) (arena).  Returns the
 * largest parameter's size (at least 1). */
static long entry_numbers(ibc_arena *a, const sym_derivation *d, long **goff_out, long **gend_out)
{
    const ibc_spec *sp = d->spec;
    size_t P = sp->nparams;
    long *goff = arena_alloc(a, (P + 1) * sizeof(long)), *gend = arena_alloc(a, (P + 1) * sizeof(long)), next = 0;
    for (size_t i = 0; i < P; i++) {
        int p = d->order[i];
        goff[p] = next;
        next += param_size(&sp->params[p]);
        gend[p] = next;
    }
    long maxsz = 1;
    for (size_t p = 0; p < P; p++)
        maxsz = param_size(&sp->params[p]) > maxsz ? param_size(&sp->params[p]) : maxsz;
    *goff_out = goff;
    *gend_out = gend;
    return maxsz;
}

/* m: the generators of a component, count * k summed over its groups. */
static long component_generators(const sym_derivation *d, int component)
{
    long m = 0;
    for (size_t g = 0; g < d->ngroups; g++)
        if (d->groups[g].component == component)
            m += d->families[d->groups[g].family].count * d->families[d->groups[g].family].k;
    return m;
}

/* The (entry, generator, exponent) triples of the component's generators,
 * numbered each group's family index by index, generator by generator,
 * into *out (malloc'd, the caller frees) and *nout; false (nothing
 * allocated) when there are more than MAX_TRIPLES. */
static bool collect_triples(const sym_derivation *d, int component, const long *goff, long maxsz, triple **out,
                            long *nout)
{
    const ibc_spec *sp = d->spec;
    long *ent = malloc(sizeof(long) * (size_t)maxsz);
    triple *tr = NULL;
    long cap = 0, ntr = 0;
    bool over = false;
    long gen = 0;
    for (size_t g = 0; g < d->ngroups && !over; g++) {
        if (d->groups[g].component != component)
            continue;
        const sym_family *f = &d->families[d->groups[g].family];
        for (long i = 0; i < f->count && !over; i++)
            for (int k = 0; k < f->k && !over; k++, gen++)
                for (int b = 0; b < f->nblocks && !over; b++) {
                    if (!f->alpha[k][b])
                        continue;
                    const sym_block *bl = &f->blocks[b];
                    const ibc_var *pv = &sp->params[bl->param];
                    long n = block_entries(pv, f, bl, f->count > 1 ? i : 0, ent);
                    if (ntr + n > MAX_TRIPLES) {
                        over = true;
                        break;
                    }
                    if (ntr + n > cap) {
                        cap = 2 * (ntr + n) + 64;
                        tr = realloc(tr, sizeof(triple) * (size_t)cap);
                    }
                    for (long t = 0; t < n; t++)
                        tr[ntr++] = (triple){ goff[bl->param] + ent[t], gen, f->alpha[k][b] };
                }
    }
    free(ent);
    if (over) {
        free(tr);
        return false;
    }
    *out = tr;
    *nout = ntr;
    return true;
}

/* Sorts the triples by (entry, generator); an entry rescaled by two blocks
 * of one generator adds its exponents, and zero exponents are dropped.
 * Returns the triples left (a prefix of tr). */
static long merge_triples(triple *tr, long ntr)
{
    qsort(tr, (size_t)ntr, sizeof *tr, cmp_triple);
    long w = 0;
    for (long t = 0; t < ntr; t++) {
        if (w && tr[w - 1].entry == tr[t].entry && tr[w - 1].gen == tr[t].gen)
            tr[w - 1].expo += tr[t].expo;
        else
            tr[w++] = tr[t];
    }
    long nz = 0;
    for (long t = 0; t < w; t++)
        if (tr[t].expo)
            tr[nz++] = tr[t];
    return nz;
}

/* The cells of a component: its entries grouped by equal exponent vectors
 * (all arrays malloc'd; cells_free releases them). */
typedef struct {
    evec *ev;       /* nev entries, each with its exponent vector; sorted by vector, then by entry */
    long nev;
    long *cstart;   /* K + 1: cell c (in sorted order) is ev[cstart[c] .. cstart[c + 1]) */
    long K;         /* the number of cells */
    long *order;    /* K: the sorted cells' indices in the order of their first entry */
} cells_t;

static void cells_free(cells_t *cs)
{
    free(cs->ev), free(cs->cstart), free(cs->order);
}

/* Per entry its exponent vector (triples merged and sorted by
 * merge_triples), then the cells of equal vectors, ordered by their first
 * entry. */
static void group_cells(const triple *tr, long ntr, cells_t *cs)
{
    evec *ev = malloc(sizeof(evec) * (size_t)(ntr + 1));
    long nev = 0;
    for (long t = 0; t < ntr;) {
        long u = t;
        while (u < ntr && tr[u].entry == tr[t].entry)
            u++;
        ev[nev++] = (evec){ tr[t].entry, t, u - t };
        t = u;
    }
    g_tr = tr;
    qsort(ev, (size_t)nev, sizeof *ev, cmp_evec);
    long *cstart = malloc(sizeof(long) * (size_t)(nev + 1)), K = 0;
    for (long t = 0; t < nev; t++) {
        bool same = t > 0 && ev[t].len == ev[t - 1].len;
        for (long u = 0; same && u < ev[t].len; u++)
            same = tr[ev[t].start + u].gen == tr[ev[t - 1].start + u].gen &&
                   tr[ev[t].start + u].expo == tr[ev[t - 1].start + u].expo;
        if (!same)
            cstart[K++] = t;
    }
    cstart[K] = nev;
    /* cells in the order of their first entry: within a cell the entries are
     * sorted (cmp_evec's last key), so that is ev[cstart[c]] */
    long *order = malloc(sizeof(long) * (size_t)(K + 1));
    for (long c = 0; c < K; c++) {
        long at = c;
        while (at > 0 && ev[cstart[order[at - 1]]].entry > ev[cstart[c]].entry) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = c;
    }
    *cs = (cells_t){ ev, nev, cstart, K, order };
}

/* Fills E (K x m, row c the exponent vector of cell c, cells in the order
 * of their first entry) and returns the cells (arena): each one's squared
 * norm text and its entries as runs, parameter by parameter. */
static sym_cell *cell_matrix(ibc_arena *a, const ibc_spec *sp, const triple *tr, const cells_t *cs, const long *goff,
                             const long *gend, long m, long *E)
{
    const evec *ev = cs->ev;
    const long *cstart = cs->cstart;
    sym_cell *cells = arena_alloc(a, (size_t)(cs->K + 1) * sizeof *cells);
    long *offs = malloc(sizeof(long) * (size_t)(cs->nev + 1));
    for (long c = 0; c < cs->K; c++) {
        long c0 = cs->order[c];
        const evec *v = &ev[cstart[c0]];
        for (long u = 0; u < v->len; u++)
            E[c * m + tr[v->start + u].gen] = tr[v->start + u].expo;
        /* the cell's entries, parameter by parameter */
        sym_cell *cl = &cells[c];
        cl->norm2 = "";
        int nparts = 0;
        sym_run *runs = arena_alloc(a, sizeof(sym_run) * (size_t)(cstart[c0 + 1] - cstart[c0] + 1));
        for (long t = cstart[c0]; t < cstart[c0 + 1];) {
            size_t p = 0;
            while (!(goff[p] <= ev[t].entry && ev[t].entry < gend[p]))
                p++;
            long n = 0;
            while (t < cstart[c0 + 1] && ev[t].entry < gend[p])
                offs[n++] = ev[t++].entry - goff[p];
            const char *nm = part_name(a, &sp->params[p], offs, n);
            cl->norm2 = arena_printf(a, "%s%s%s", cl->norm2, nparts ? " + " : "", nm);
            nparts++;
            sym_run *r;
            int nr = make_runs(a, (int)p, offs, n, &r);
            memcpy(runs + cl->nruns, r, sizeof(sym_run) * (size_t)nr);
            cl->nruns += nr;
        }
        cl->runs = runs;
        if (nparts > 1)
            cl->norm2 = arena_printf(a, "(%s)", cl->norm2);
    }
    free(offs);
    return cells;
}

/* total = det(E'E), the sum of the polynomial's coefficients; returns the
 * m x m mpz scratch it used (initialised, malloc'd; the caller clears and
 * frees it after the enumeration, which reuses it). */
static mpz_t *gram_total(mpz_t total, const long *E, long K, long m)
{
    mpz_t *M = malloc(sizeof(mpz_t) * (size_t)(m * m));
    for (long r = 0; r < m * m; r++)
        mpz_init(M[r]);
    for (long r = 0; r < m; r++)
        for (long s = 0; s < m; s++) {
            long v = 0;
            for (long c = 0; c < K; c++)
                v += E[c * m + r] * E[c * m + s];
            mpz_set_si(M[r * m + s], v);
        }
    exact_zdet(total, M, (int)m);
    return M;
}

/* Whether every row of E has at most one +1 and one -1 and no other
 * non-zero (a chain of rescalings: E is totally unimodular, every
 * coefficient is 1 and det(E'E) is the number of terms). */
static bool chain_of_rescalings(const long *E, long K, long m)
{
    bool tu = true;
    for (long c = 0; c < K && tu; c++) {
        int pos = 0, neg = 0;
        for (long g = 0; g < m && tu; g++) {
            long e = E[c * m + g];
            pos += e == 1;
            neg += e == -1;
            tu = (e == 0 || e == 1 || e == -1) && pos <= 1 && neg <= 1;
        }
    }
    return tu;
}

/* lower (initialised) = a lower bound on the number of terms: total over
 * the largest product of m squared norms of E's rows (Hadamard: det(E_S)^2
 * <= that), 0 when that product is 0, and total itself when tu. */
static void terms_lower_bound(mpz_t lower, const mpz_t total, const long *E, long K, long m, bool tu)
{
    long *nrm = malloc(sizeof(long) * (size_t)(K + 1));
    for (long c = 0; c < K; c++) {
        nrm[c] = 0;
        for (long g = 0; g < m; g++)
            nrm[c] += E[c * m + g] * E[c * m + g];
    }
    for (long c = 1; c < K; c++)   /* descending */
        for (long u = c; u > 0 && nrm[u] > nrm[u - 1]; u--) {
            long t = nrm[u];
            nrm[u] = nrm[u - 1];
            nrm[u - 1] = t;
        }
    mpz_t prod;
    mpz_init(prod);
    mpz_set_ui(prod, 1);
    for (long c = 0; c < m && c < K; c++)
        mpz_mul_si(prod, prod, nrm[c]);
    free(nrm);
    if (mpz_sgn(prod))
        mpz_cdiv_q(lower, total, prod);
    if (tu)
        mpz_set(lower, total);
    mpz_clear(prod);
}

/* The polynomial's terms by the depth-first enumeration (at most
 * SYM_JOINT_MAX_TERMS, M the m x m mpz scratch), accepted only when their
 * coefficients sum to total: fills j's kind, nterms, npoly, term_cells,
 * term_coef and text. */
static void enumerate_terms(ibc_arena *a, sym_joint *j, const long *E, long K, long m, mpz_t *M, const mpz_t total)
{
    dfs_t s;
    memset(&s, 0, sizeof s);
    s.K = (int)K;
    s.m = (int)m;
    s.E = E;
    s.cap = SYM_JOINT_MAX_TERMS;
    s.chosen = malloc(sizeof(int) * (size_t)(m + 1));
    s.work = malloc(sizeof(uint64_t) * (size_t)((K + m) * m + 1));
    s.terms = malloc(sizeof(int) * (size_t)(s.cap * m + 1));
    s.coef = malloc(sizeof(mpz_t) * (size_t)s.cap);
    for (int t = 0; t < s.cap; t++)
        mpz_init(s.coef[t]);
    s.M = M;
    mpz_init(s.det);
    int *idx = malloc(sizeof(int) * (size_t)(K + m + 1));
    dfs(&s, 0, idx);
    free(idx);
    mpz_t sum;
    mpz_init(sum);
    for (int t = 0; t < s.found && t < s.cap; t++)
        mpz_add(sum, sum, s.coef[t]);
    if (s.aborted && s.found > s.cap) {
        j->kind = SYM_JOINT_LARGE;
        j->nterms = arena_printf(a, "more than %d", SYM_JOINT_MAX_TERMS);
        j->text = arena_printf(a, "%s terms, not printed; %s", j->nterms, CHOLESKY);
    } else if (s.aborted || mpz_cmp(sum, total) != 0) {
        j->kind = SYM_JOINT_NOT_EXPANDED;
        j->text = arena_printf(a, "%ld generators, %ld cells: the enumeration of its terms %s: not expanded; %s", m,
                               K, s.aborted ? "exceeded its budget" : "did not sum to det(E'E)", CHOLESKY);
    } else {
        j->kind = SYM_JOINT_POLY;
        j->npoly = s.found;
        j->nterms = arena_printf(a, "%d", s.found);
        int *tc = arena_alloc(a, sizeof(int) * (size_t)(s.found * m + 1));
        memcpy(tc, s.terms, sizeof(int) * (size_t)(s.found * m));
        j->term_cells = tc;
        const char **co = arena_alloc(a, sizeof(char *) * (size_t)(s.found + 1));
        char *txt = "";
        for (int t = 0; t < s.found; t++) {
            co[t] = z_str(a, s.coef[t]);
            char *mono = "";
            for (long u = 0; u < m; u++)
                mono = arena_printf(a, "%s%s%s", mono, u ? " " : "", j->cells[tc[t * m + u]].norm2);
            txt = strcmp(co[t], "1") ? arena_printf(a, "%s%s%s %s", txt, t ? " + " : "", co[t], mono)
                                     : arena_printf(a, "%s%s%s", txt, t ? " + " : "", mono);
        }
        j->term_coef = co;
        j->text = txt;
    }
    mpz_clear(sum);
    for (int t = 0; t < s.cap; t++)
        mpz_clear(s.coef[t]);
    mpz_clear(s.det);
    free(s.coef), free(s.terms), free(s.work), free(s.chosen);
}

/* The joint det G of one coupled torus component (the file's comment):
 * its generators' (entry, generator, exponent) triples, their cells and
 * exponent matrix E, det(E'E), then the polynomial's terms when few
 * enough; every limit passed is stated in j->text instead. */
static void joint_torus(ibc_arena *a, const sym_derivation *d, sym_joint *j)
{
    long *goff, *gend;
    long maxsz = entry_numbers(a, d, &goff, &gend);
    long m = component_generators(d, j->component);
    j->generators = m;
    if (m > SYM_JOINT_MAX_GEN) {
        j->kind = SYM_JOINT_NOT_EXPANDED;
        j->text = arena_printf(a, "%ld generators, more than the %d this derivation expands: not expanded; %s", m,
                               SYM_JOINT_MAX_GEN, CHOLESKY);
        return;
    }
    triple *tr;
    long ntr;
    if (!collect_triples(d, j->component, goff, maxsz, &tr, &ntr)) {
        j->kind = SYM_JOINT_NOT_EXPANDED;
        j->text = arena_printf(a, "%ld generators over more than %ld rescaled entries: not expanded; %s", m,
                               MAX_TRIPLES, CHOLESKY);
        return;
    }
    ntr = merge_triples(tr, ntr);
    cells_t cs;
    group_cells(tr, ntr, &cs);
    long K = cs.K;
    j->ncells = K;
    if (K * m > 4000000L) {
        j->kind = SYM_JOINT_NOT_EXPANDED;
        j->text = arena_printf(a, "%ld generators, %ld cells: not expanded; %s", m, K, CHOLESKY);
        free(tr), cells_free(&cs);
        return;
    }
    long *E = calloc((size_t)(K * m + 1), sizeof(long));
    j->cells = cell_matrix(a, d->spec, tr, &cs, goff, gend, m, E);
    free(tr), cells_free(&cs);

    mpz_t total, lower;
    mpz_inits(total, lower, NULL);
    mpz_t *M = gram_total(total, E, K, m);
    j->total = z_str(a, total);
    bool tu = chain_of_rescalings(E, K, m);
    terms_lower_bound(lower, total, E, K, m, tu);
    if (!mpz_sgn(total)) {
        j->kind = SYM_JOINT_NOT_EXPANDED;
        j->text = "singular for every norm (the cells' exponent vectors do not span): internal error";
    } else if (mpz_cmp_ui(lower, SYM_JOINT_MAX_TERMS) > 0) {
        j->kind = SYM_JOINT_LARGE;
        j->nterms = tu ? z_str(a, total) : arena_printf(a, "at least %s", z_str(a, lower));
        j->text = arena_printf(a, "%s terms, not printed (more than %d); %s", j->nterms, SYM_JOINT_MAX_TERMS, CHOLESKY);
    } else {
        enumerate_terms(a, j, E, K, m, M, total);
    }
    for (long r = 0; r < m * m; r++)
        mpz_clear(M[r]);
    free(M);
    free(E);
    mpz_clears(total, lower, NULL);
}

void sym_joints(ibc_arena *a, sym_derivation *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->ngroups; i++) {
        bool coupled = false;
        for (size_t h = 0; h < d->ngroups; h++)
            coupled = coupled || (h != i && d->groups[h].component == d->groups[i].component);
        n += coupled && d->groups[i].component == (int)i;
    }
    d->joints = arena_alloc(a, (n + 1) * sizeof(sym_joint));
    d->njoints = 0;
    for (size_t i = 0; i < d->ngroups; i++) {
        if (d->groups[i].component != (int)i)
            continue;
        size_t members = 0;
        bool gl = false;
        char *list = "";
        for (size_t h = 0; h < d->ngroups; h++)
            if (d->groups[h].component == (int)i) {
                members++;
                gl = gl || d->groups[h].kind == SYM_GROUP_GL;
                list = arena_printf(a, "%s%s%zu", list, *list ? ", " : "", h + 1);
            }
        if (members < 2)
            continue;
        sym_joint *j = &d->joints[d->njoints++];
        memset(j, 0, sizeof *j);
        j->component = (int)i;
        j->groups = list;
        if (gl) {
            j->kind = SYM_JOINT_GL;
            j->text = arena_printf(a, "not a polynomial in squared norms: a GL junction's generators mix entries, not "
                                      "rescale them; %s", CHOLESKY);
            continue;
        }
        joint_torus(a, d, j);
    }
}
