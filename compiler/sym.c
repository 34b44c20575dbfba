/*
 * sym.c: the symbolic derivation (docs/theory.md §§2-4).
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

#include <gmp.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_DIM 3
#define SYM_MAX_FULL 4000   /* unknowns of a full-size instance */

struct sym_derivation {
    const ibc_spec *spec;
    sym_family *families;
    size_t nfamilies;
    long nunknowns;          /* exponent unknowns of the small instance */
    long nconstraints;
    sym_group *groups;       /* GL junctions first (in predictor order), then torus families outside them */
    size_t ngroups;
    int nsets;               /* SYM_SLICE_SET blocks named so far (S1, S2, ...) */
    bool full;               /* inferred on the full instance (an operator file's zeros), not a small one */
};

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

/* ------------------------------------------------- exponent inference */

/* A value of the small instance: per entry, its exponent as an integer
 * linear form over the N unknowns, and whether the entry is structurally
 * non-zero (an operator's zeros take no part in a contraction). */
typedef struct {
    int rows, cols;
    long *form;     /* rows * cols * N */
    bool *nz;       /* rows * cols */
} xval;

typedef struct {
    ibc_arena *arena;
    ibc_diag *diag;
    const ibc_spec *spec;
    int N;                    /* unknowns */
    int *param_off;           /* first unknown of each parameter */
    int *param_rows, *param_cols;
    long *eq;                 /* constraints, each N longs */
    size_t neq, cap_eq;
    bool failed;
    int cap;                  /* dimensions above it shrink to it: SMALL_DIM, or INT_MAX (the full instance) */
    int bad_param;            /* the parameter classify last found not rescaled as a slice, or -1 */
    sym_group *junctions;     /* the predictor's GL junctions (their diagonals are natural generators) */
    size_t njunctions;
} infer;

static int small(const infer *in, long d) { return d >= in->cap ? in->cap : (int)d; }

static xval xv_new(infer *in, int rows, int cols, bool dense)
{
    xval v = { rows, cols, NULL, NULL };
    v.form = arena_alloc(in->arena, (size_t)rows * cols * (size_t)in->N * sizeof(long) + sizeof(long));
    v.nz = arena_alloc(in->arena, (size_t)rows * cols * sizeof(bool) + 1);
    for (int i = 0; i < rows * cols; i++)
        v.nz[i] = dense;
    return v;
}

static long *xv_at(infer *in, xval *v, int i, int j) { return v->form + ((size_t)i * v->cols + j) * in->N; }

static void eq_add(infer *in, const long *a, const long *b)   /* a - b = 0 */
{
    long *row = NULL;
    bool nonzero = false;
    for (int k = 0; k < in->N; k++)
        if (a[k] - (b ? b[k] : 0)) {
            nonzero = true;
            break;
        }
    if (!nonzero)
        return;
    if (in->neq == in->cap_eq) {
        size_t nc = in->cap_eq ? 2 * in->cap_eq : 64;
        long *ne = arena_alloc(in->arena, nc * (size_t)in->N * sizeof(long));
        if (in->neq)
            memcpy(ne, in->eq, in->neq * (size_t)in->N * sizeof(long));
        in->eq = ne;
        in->cap_eq = nc;
    }
    row = in->eq + in->neq++ * (size_t)in->N;
    for (int k = 0; k < in->N; k++)
        row[k] = a[k] - (b ? b[k] : 0);
}

/* All non-zero entries of v have equal exponent; returns one (or NULL). */
static long *xv_all_equal(infer *in, xval *v)
{
    long *first = NULL;
    for (int i = 0; i < v->rows; i++)
        for (int j = 0; j < v->cols; j++) {
            if (!v->nz[i * v->cols + j])
                continue;
            long *f = xv_at(in, v, i, j);
            if (!first)
                first = f;
            else
                eq_add(in, f, first);
        }
    return first;
}

/* Structural pattern of a fixed operator (or its inverse) at size r x c. */
static bool op_nonzero(const char *name, bool inverse, int i, int j)
{
    if (!strcmp(name, "identity") || !strcmp(name, "diag"))
        return i == j;
    if (!strcmp(name, "diff"))
        return inverse ? j <= i : (j == i || j == i - 1);
    if (!strcmp(name, "diff_open"))
        return j == i || j == i + 1;
    return true;   /* dct, cosine, matrix: dense */
}

static xval infer_expr(infer *in, const ast_node *n);

static xval infer_operator(infer *in, const ast_node *n, bool inverse, bool transpose)
{
    int r = small(in, n->shape.rows < 0 ? SMALL_DIM : n->shape.rows);
    int c = small(in, n->shape.cols < 0 ? SMALL_DIM : n->shape.cols), c0 = c;
    /* a matrix read from a file: its zeros, on the full instance (its
     * inverse is taken as dense: a zero assumed away only costs a
     * symmetry, never invents one) */
    bool data = n->opdata && !inverse && in->cap != SMALL_DIM;
    if (transpose) {
        int t = r;
        r = c;
        c = t;
    }
    xval v = xv_new(in, r, c, false);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++)
            v.nz[i * c + j] = data ? n->opdata[transpose ? (size_t)j * c0 + i : (size_t)i * c0 + j] != 0
                              : transpose ? op_nonzero(n->name, inverse, j, i) : op_nonzero(n->name, inverse, i, j);
    return v;
}

/* Shapes as matrices: a vector is n x 1, a scalar 1 x 1. */
static void shape_small(const infer *in, const ibc_shape *s, int *r, int *c)
{
    *r = s->rank == 0 ? 1 : small(in, s->rows < 0 ? SMALL_DIM : s->rows);
    *c = s->rank == 2 ? small(in, s->cols < 0 ? SMALL_DIM : s->cols) : 1;
}

/* A matrix operator from a file with a zero entry, used forward: its
 * zeros decide which entries meet in a contraction, and no small instance
 * keeps an arbitrary pattern, so the derivation then runs at full size. */
static bool has_sparse_file_operator(const ast_node *n)
{
    if (!n)
        return false;
    if (n->kind == AST_CALL && n->opdata && !strcmp(n->name, "matrix"))
        for (long e = 0; e < n->shape.rows * n->shape.cols; e++)
            if (n->opdata[e] == 0)
                return true;
    if (n->kind == AST_CALL && !strcmp(n->name, "solve"))
        return n->nkids > 1 && has_sparse_file_operator(n->kids[1]);
    if (has_sparse_file_operator(n->lhs) || has_sparse_file_operator(n->rhs))
        return true;
    for (size_t i = 0; i < n->nkids; i++)
        if (has_sparse_file_operator(n->kids[i]))
            return true;
    return false;
}

static xval infer_matmul(infer *in, xval a, xval b, const ast_node *n)
{
    /* numpy rules: a vector on the left is a row. */
    bool a_vec = n->lhs->shape.rank == 1, b_vec = n->rhs->shape.rank == 1;
    int ar = a_vec ? 1 : a.rows, ac = a_vec ? a.rows : a.cols;
    int br = b.rows, bc = b_vec ? 1 : b.cols;
    if (ac != br) {
        in->failed = true;
        return xv_new(in, 1, 1, true);
    }
    xval out = xv_new(in, ar, bc, false);
    for (int i = 0; i < ar; i++)
        for (int j = 0; j < bc; j++) {
            long *first = NULL;
            long *tmp = arena_alloc(in->arena, (size_t)in->N * sizeof(long));
            for (int k = 0; k < ac; k++) {
                int ai = a_vec ? k : i * a.cols + k, bi = k * b.cols + j;
                if (!a.nz[ai] || !b.nz[bi])
                    continue;
                const long *fa = a.form + (size_t)ai * in->N, *fb = b.form + (size_t)bi * in->N;
                if (!first) {
                    first = xv_at(in, &out, i, j);
                    for (int u = 0; u < in->N; u++)
                        first[u] = fa[u] + fb[u];
                    out.nz[i * bc + j] = true;
                } else {
                    for (int u = 0; u < in->N; u++)
                        tmp[u] = fa[u] + fb[u];
                    eq_add(in, tmp, first);
                }
            }
        }
    if (b_vec && !a_vec) {
        out.cols = 1;   /* already ar x 1 */
    } else if (a_vec && !b_vec) {
        xval t = xv_new(in, bc, 1, false);   /* row result as a column vector */
        memcpy(t.form, out.form, (size_t)bc * in->N * sizeof(long));
        memcpy(t.nz, out.nz, (size_t)bc);
        out = t;
    }
    return out;
}

static xval infer_elementwise(infer *in, xval a, xval b, int op)
{
    bool a_scalar = a.rows * a.cols == 1, b_scalar = b.rows * b.cols == 1;
    int r = a_scalar ? b.rows : a.rows, c = a_scalar ? b.cols : a.cols;
    xval out = xv_new(in, r, c, false);
    for (int i = 0; i < r * c; i++) {
        int ia = a_scalar ? 0 : i, ib = b_scalar ? 0 : i;
        const long *fa = a.form + (size_t)ia * in->N, *fb = b.form + (size_t)ib * in->N;
        long *fo = out.form + (size_t)i * in->N;
        if (op == '*' ) {
            out.nz[i] = a.nz[ia] && b.nz[ib];
            for (int u = 0; u < in->N; u++)
                fo[u] = fa[u] + fb[u];
        } else if (op == '/') {
            out.nz[i] = a.nz[ia];
            for (int u = 0; u < in->N; u++)
                fo[u] = fa[u] - fb[u];
        } else {   /* + and -: the terms must scale alike */
            out.nz[i] = a.nz[ia] || b.nz[ib];
            if (a.nz[ia] && b.nz[ib])
                eq_add(in, fa, fb);
            memcpy(fo, a.nz[ia] ? fa : fb, (size_t)in->N * sizeof(long));
        }
    }
    return out;
}

static xval infer_call(infer *in, const ast_node *n)
{
    const char *f = n->name;
    if (!strcmp(f, "identity") || !strcmp(f, "diff") || !strcmp(f, "diff_open") || !strcmp(f, "dct") ||
        !strcmp(f, "cosine") || !strcmp(f, "diag") || !strcmp(f, "matrix"))
        return infer_operator(in, n, false, false);
    if (!strcmp(f, "solve")) {
        const ast_node *op = n->kids[0];
        bool tr = op->kind == AST_TRANSPOSE;
        xval a = infer_operator(in, tr ? op->lhs : op, true, tr);
        xval b = infer_expr(in, n->kids[1]);
        ast_node fake = *n;
        ast_node l = *op, r = *n->kids[1];
        fake.lhs = &l;
        fake.rhs = &r;
        return infer_matmul(in, a, b, &fake);
    }
    xval a = infer_expr(in, n->kids[0]);
    if (!strcmp(f, "relu"))
        return a;
    if (!strcmp(f, "transpose")) {
        xval t = xv_new(in, a.cols, a.rows, false);
        for (int i = 0; i < a.rows; i++)
            for (int j = 0; j < a.cols; j++) {
                memcpy(xv_at(in, &t, j, i), xv_at(in, &a, i, j), (size_t)in->N * sizeof(long));
                t.nz[j * t.cols + i] = a.nz[i * a.cols + j];
            }
        return t;
    }
    if (!strcmp(f, "sum") || !strcmp(f, "cumsum")) {
        /* a sum mixes its terms: they must scale alike */
        long *e = xv_all_equal(in, &a);
        if (!strcmp(f, "sum")) {
            xval s = xv_new(in, 1, 1, e != NULL);
            if (e)
                memcpy(s.form, e, (size_t)in->N * sizeof(long));
            return s;
        }
        xval s = xv_new(in, a.rows, a.cols, false);
        for (int i = 0; i < a.rows * a.cols; i++) {
            bool any = false;
            for (int j = 0; j <= i; j++)
                any = any || a.nz[j];
            s.nz[i] = any;
            if (e)
                memcpy(s.form + (size_t)i * in->N, e, (size_t)in->N * sizeof(long));
        }
        return s;
    }
    /* softmax, tanh, sigmoid, exp: not homogeneous; the argument cannot
     * scale at all (exponent 0), and the result does not scale. */
    bool scales = false;
    for (int i = 0; i < a.rows * a.cols; i++)
        if (a.nz[i]) {
            for (int u = 0; u < in->N && !scales; u++)
                scales = a.form[(size_t)i * in->N + u] != 0;
            eq_add(in, a.form + (size_t)i * in->N, NULL);
        }
    if (scales)
        diag_note(in->diag, n->loc,
                  "'%s' is not homogeneous: its argument must keep its scale (exponent 0), so parameters inside it "
                  "rescale only in combinations that cancel there (docs/theory.md §3)", f);
    return xv_new(in, a.rows, a.cols, true);
}

static xval infer_expr(infer *in, const ast_node *n)
{
    int r, c;
    shape_small(in, &n->shape, &r, &c);
    if (n->is_const)
        return xv_new(in, r, c, true);
    switch (n->kind) {
    case AST_IDENT: {
        xval v = xv_new(in, r, c, true);
        if (n->ref_kind == IBC_REF_PARAM)
            for (int i = 0; i < r * c; i++)
                v.form[(size_t)i * in->N + in->param_off[n->ref] + i] = 1;
        return v;   /* inputs do not scale */
    }
    case AST_NEG:
        return infer_expr(in, n->lhs);
    case AST_TRANSPOSE: {
        if (n->lhs->kind == AST_CALL && n->lhs->shape.rank == 2 && !n->lhs->kids)
            return infer_operator(in, n->lhs, false, true);
        ast_node call = *n;
        call.kind = AST_CALL;
        call.name = "transpose";
        ast_node *kid = n->lhs;
        call.kids = &kid;
        call.nkids = 1;
        return infer_call(in, &call);
    }
    case AST_BINOP: {
        xval a = infer_expr(in, n->lhs), b = infer_expr(in, n->rhs);
        if (n->op == '@')
            return infer_matmul(in, a, b, n);
        return infer_elementwise(in, a, b, n->op);
    }
    case AST_CALL:
        return infer_call(in, n);
    default:
        diag_error(in->diag, n->loc, "the symbolic derivation does not support this expression");
        in->failed = true;
        return xv_new(in, r, c, true);
    }
}

/* ------------------------------------------ exact linear algebra (GMP) */

typedef struct {
    int rows, cols;
    mpq_t *a;
} qmat;

static void qmat_init(qmat *m, int rows, int cols)
{
    m->rows = rows;
    m->cols = cols;
    m->a = malloc((size_t)(rows ? rows : 1) * (cols ? cols : 1) * sizeof(mpq_t));
    for (int i = 0; i < rows * cols; i++)
        mpq_init(m->a[i]);
}

static void qmat_clear(qmat *m)
{
    for (int i = 0; i < m->rows * m->cols; i++)
        mpq_clear(m->a[i]);
    free(m->a);
}

#define Q(m, i, j) ((m)->a[(size_t)(i) * (m)->cols + (j)])

/* Reduced row echelon form in place; pivot column of each row in piv.
 * Returns the rank. */
static int qmat_rref(qmat *m, int *piv)
{
    int rank = 0;
    mpq_t f, t;
    mpq_inits(f, t, NULL);
    for (int c = 0; c < m->cols && rank < m->rows; c++) {
        int p = -1;
        for (int r = rank; r < m->rows; r++)
            if (mpq_sgn(Q(m, r, c))) {
                p = r;
                break;
            }
        if (p < 0)
            continue;
        for (int j = 0; j < m->cols; j++)
            mpq_swap(Q(m, p, j), Q(m, rank, j));
        mpq_inv(f, Q(m, rank, c));
        for (int j = 0; j < m->cols; j++)
            mpq_mul(Q(m, rank, j), Q(m, rank, j), f);
        for (int r = 0; r < m->rows; r++) {
            if (r == rank || !mpq_sgn(Q(m, r, c)))
                continue;
            mpq_set(f, Q(m, r, c));
            for (int j = 0; j < m->cols; j++) {
                mpq_mul(t, f, Q(m, rank, j));
                mpq_sub(Q(m, r, j), Q(m, r, j), t);
            }
        }
        piv[rank++] = c;
    }
    mpq_clears(f, t, NULL);
    return rank;
}

/* Primitive integer basis of the nullspace of eq (neq x N), in out
 * (dim x N longs, arena).  One vector per free variable: the RREF basis,
 * whose vectors have disjoint supports whenever the system splits. */
static int nullspace(ibc_arena *a, const long *eq, size_t neq, int N, long **out)
{
    qmat m;
    qmat_init(&m, (int)neq, N);
    for (size_t i = 0; i < neq; i++)
        for (int j = 0; j < N; j++)
            mpq_set_si(Q(&m, i, j), eq[i * N + j], 1);
    int *piv = malloc(sizeof(int) * (neq + 1));
    int rank = qmat_rref(&m, piv);
    bool *is_piv = calloc((size_t)N + 1, 1);
    for (int r = 0; r < rank; r++)
        is_piv[piv[r]] = true;
    int dim = N - rank;
    long *basis = arena_alloc(a, (size_t)(dim ? dim : 1) * N * sizeof(long));
    mpz_t l, g, v;
    mpz_inits(l, g, v, NULL);
    int b = 0;
    for (int f = 0; f < N; f++) {
        if (is_piv[f])
            continue;
        /* x_f = 1, x_piv[r] = -R[r][f]; scale by the lcm of denominators */
        mpz_set_ui(l, 1);
        for (int r = 0; r < rank; r++)
            mpz_lcm(l, l, mpq_denref(Q(&m, r, f)));
        long *vec = basis + (size_t)b * N;
        mpz_set_ui(g, 0);
        for (int j = 0; j < N; j++) {
            mpz_set_ui(v, 0);
            if (j == f)
                mpz_set(v, l);
            for (int r = 0; r < rank; r++)
                if (piv[r] == j) {
                    mpz_divexact(v, l, mpq_denref(Q(&m, r, f)));
                    mpz_mul(v, v, mpq_numref(Q(&m, r, f)));
                    mpz_neg(v, v);
                }
            vec[j] = mpz_get_si(v);
            mpz_gcd(g, g, v);
        }
        long gg = mpz_get_si(g);
        /* sign: first non-zero entry positive */
        int first = 0;
        while (first < N && vec[first] == 0)
            first++;
        if (first < N && vec[first] < 0)
            gg = -gg;
        for (int j = 0; j < N && gg; j++)
            vec[j] /= gg;
        b++;
    }
    mpz_clears(l, g, v, NULL);
    free(is_piv);
    free(piv);
    qmat_clear(&m);
    *out = basis;
    return dim;
}

/* ------------------------------------------------------ Cauchy-Binet */

static long det_small(long m[SYM_MAX_GEN][SYM_MAX_GEN], int k)
{
    /* Bareiss fraction-free elimination: exact on integers. */
    long a[SYM_MAX_GEN][SYM_MAX_GEN];
    memcpy(a, m, sizeof a);
    long prev = 1, sign = 1;
    for (int c = 0; c < k; c++) {
        int p = c;
        while (p < k && a[p][c] == 0)
            p++;
        if (p == k)
            return 0;
        if (p != c) {
            for (int j = 0; j < k; j++) {
                long t = a[p][j];
                a[p][j] = a[c][j];
                a[c][j] = t;
            }
            sign = -sign;
        }
        for (int r = c + 1; r < k; r++)
            for (int j = c + 1; j < k; j++)
                a[r][j] = (a[r][j] * a[c][c] - a[r][c] * a[c][j]) / prev;
        prev = a[c][c];
    }
    return sign * a[k - 1][k - 1];
}

bool sym_gram_terms(sym_family *f)
{
    f->nterms = 0;
    int P = f->nblocks, k = f->k;
    for (unsigned set = 0; set < (1u << P); set++) {
        if (__builtin_popcount(set) != k)
            continue;
        long m[SYM_MAX_GEN][SYM_MAX_GEN] = { { 0 } };
        int col = 0;
        for (int p = 0; p < P; p++)
            if (set & (1u << p)) {
                for (int a = 0; a < k; a++)
                    m[a][col] = f->alpha[a][p];
                col++;
            }
        long d = det_small(m, k);
        if (d != 0 && f->nterms < 64) {
            f->term_set[f->nterms] = set;
            f->term_coef[f->nterms] = d * d;
            f->nterms++;
        }
    }
    return f->nterms > 0;
}

double sym_logdet_eval(const sym_family *f, const double *n)
{
    double s = 0;
    for (int t = 0; t < f->nterms; t++) {
        double v = (double)f->term_coef[t];
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                v *= n[p];
        s += v;
    }
    return log(s);
}

/* e_S = 2 sum_{p in S} alpha_p: how term S grows along the orbit. */
static void term_exponent(const sym_family *f, int t, long *e)
{
    for (int a = 0; a < f->k; a++) {
        e[a] = 0;
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                e[a] += 2 * f->alpha[a][p];
    }
}

/* log sum_s exp(logc_s + e_s . t), stably. */
static double lse_eval(int T, int k, const double *logc, double e[][SYM_MAX_GEN], const double *t, double *w)
{
    double z[64], mx = -INFINITY, sum = 0;
    for (int s = 0; s < T; s++) {
        z[s] = logc[s];
        for (int a = 0; a < k; a++)
            z[s] += e[s][a] * t[a];
        if (z[s] > mx)
            mx = z[s];
    }
    for (int s = 0; s < T; s++)
        sum += exp(z[s] - mx);
    if (w)
        for (int s = 0; s < T; s++)
            w[s] = exp(z[s] - mx) / sum;
    return mx + log(sum);
}

/* Damped Newton's method on the convex f(t) = log sum_S c_S n_S
 * exp(e_S . t) (backtracking line search: Boyd & Vandenberghe §9.5). */
bool sym_logdet_min_numeric(const sym_family *f, const double *n, double *out)
{
    int k = f->k, T = f->nterms;
    double t[SYM_MAX_GEN] = { 0 }, logc[64], e[64][SYM_MAX_GEN], w[64];
    for (int s = 0; s < T; s++) {
        long ei[SYM_MAX_GEN];
        term_exponent(f, s, ei);
        logc[s] = log((double)f->term_coef[s]);
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[s] & (1u << p))
                logc[s] += log(n[p]);
        for (int a = 0; a < k; a++)
            e[s][a] = (double)ei[a];
    }
    double val = lse_eval(T, k, logc, e, t, w);
    for (int it = 0; it < 500; it++) {
        double g[SYM_MAX_GEN] = { 0 }, A[SYM_MAX_GEN][SYM_MAX_GEN + 1];
        for (int s = 0; s < T; s++)
            for (int a = 0; a < k; a++)
                g[a] += w[s] * e[s][a];
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++) {
                double h = 0;
                for (int s = 0; s < T; s++)
                    h += w[s] * e[s][a] * e[s][b];
                A[a][b] = h - g[a] * g[b] + (a == b ? 1e-14 : 0);
            }
            A[a][k] = -g[a];
        }
        /* Gauss-Jordan with partial pivoting: A becomes diagonal. */
        for (int c = 0; c < k; c++) {
            int p = c;
            for (int r = c + 1; r < k; r++)
                if (fabs(A[r][c]) > fabs(A[p][c]))
                    p = r;
            for (int j = 0; j <= k; j++) {
                double tmp = A[c][j];
                A[c][j] = A[p][j];
                A[p][j] = tmp;
            }
            if (A[c][c] == 0)
                continue;
            for (int r = 0; r < k; r++)
                if (r != c) {
                    double m = A[r][c] / A[c][c];
                    for (int j = c; j <= k; j++)
                        A[r][j] -= m * A[c][j];
                }
        }
        double d[SYM_MAX_GEN], dec = 0;
        for (int a = 0; a < k; a++) {
            d[a] = A[a][a] != 0 ? A[a][k] / A[a][a] : 0;
            dec -= g[a] * d[a];   /* Newton decrement squared */
        }
        if (dec < 1e-20)
            break;
        double step = 1, tn[SYM_MAX_GEN], nv = val;
        for (int ls = 0; ls < 60; ls++, step *= 0.5) {
            for (int a = 0; a < k; a++)
                tn[a] = t[a] + step * d[a];
            nv = lse_eval(T, k, logc, e, tn, NULL);
            if (nv <= val - 0.25 * step * dec)
                break;
        }
        memcpy(t, tn, sizeof(double) * (size_t)k);
        val = lse_eval(T, k, logc, e, t, w);
        double norm = 0;
        for (int a = 0; a < k; a++)
            norm += t[a] * t[a];
        if (norm > 1e8)
            return false;   /* running off along the orbit: no minimiser */
    }
    /* A minimiser is a stationary point; otherwise f decreases forever. */
    double gn = 0;
    for (int a = 0; a < k; a++) {
        double g = 0;
        for (int s = 0; s < T; s++)
            g += w[s] * e[s][a];
        gn += g * g;
    }
    if (gn > 1e-12)
        return false;
    *out = val;
    return true;
}

/* ----------------------------------------------- geometric programme */

static const char *block_norm2(ibc_arena *a, const sym_family *f, int p)
{
    const sym_block *b = &f->blocks[p];
    if ((b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY) && !b->set_name)
        return arena_printf(a, "%s^2", b->text);
    return arena_printf(a, "||%s||^2", b->text);
}

static const char *block_abs(ibc_arena *a, const sym_family *f, int p)
{
    const sym_block *b = &f->blocks[p];
    if ((b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY) && !b->set_name)
        return arena_printf(a, "|%s|", b->text);
    return arena_printf(a, "||%s||", b->text);
}

static const char *q_str(ibc_arena *a, const mpq_t q)
{
    char *s = mpq_get_str(NULL, 10, q);
    const char *r = arena_strndup(a, s, strlen(s));
    void (*freefn)(void *, size_t);
    mp_get_memory_functions(NULL, NULL, &freefn);
    freefn(s, strlen(s) + 1);
    return r;
}

/* Adds q * log(r) to the prime exponents (r a positive rational). */
static void add_log(mpq_t *pexp, const unsigned long *primes, int np, const mpq_t q, const mpq_t r)
{
    mpz_t num, den;
    mpz_inits(num, den, NULL);
    mpz_set(num, mpq_numref(r));
    mpz_set(den, mpq_denref(r));
    mpq_t t;
    mpq_init(t);
    for (int i = 0; i < np; i++) {
        long c = 0;
        while (mpz_divisible_ui_p(num, primes[i])) {
            mpz_divexact_ui(num, num, primes[i]);
            c++;
        }
        while (mpz_divisible_ui_p(den, primes[i])) {
            mpz_divexact_ui(den, den, primes[i]);
            c--;
        }
        mpq_set_si(t, c, 1);
        mpq_mul(t, t, q);
        mpq_add(pexp[i], pexp[i], t);
    }
    mpq_clear(t);
    mpz_clears(num, den, NULL);
}

/* "log(3)", "log(3/2)" or "log(2^(1/2)*3)" from prime exponents. */
static const char *log_text(ibc_arena *a, mpq_t *pexp, const unsigned long *primes, int np, const char *prefix)
{
    bool integral = true, any = false;
    for (int i = 0; i < np; i++) {
        if (mpq_sgn(pexp[i]))
            any = true;
        if (mpz_cmp_ui(mpq_denref(pexp[i]), 1) != 0)
            integral = false;
    }
    if (!any)
        return arena_printf(a, "%s0", prefix);
    if (integral) {
        mpq_t v;
        mpq_init(v);
        mpq_set_ui(v, 1, 1);
        for (int i = 0; i < np; i++) {
            long e = mpz_get_si(mpq_numref(pexp[i]));
            mpz_t pw;
            mpz_init(pw);
            mpz_ui_pow_ui(pw, primes[i], (unsigned long)labs(e));
            if (e > 0)
                mpz_mul(mpq_numref(v), mpq_numref(v), pw);
            else if (e < 0)
                mpz_mul(mpq_denref(v), mpq_denref(v), pw);
            mpz_clear(pw);
        }
        mpq_canonicalize(v);
        const char *s = arena_printf(a, "%slog(%s)", prefix, q_str(a, v));
        mpq_clear(v);
        return s;
    }
    char *s = arena_printf(a, "%slog(", prefix);
    bool first = true;
    for (int i = 0; i < np; i++) {
        if (!mpq_sgn(pexp[i]))
            continue;
        s = mpq_cmp_ui(pexp[i], 1, 1) == 0 ? arena_printf(a, "%s%s%lu", s, first ? "" : "*", primes[i])
                                           : arena_printf(a, "%s%s%lu^(%s)", s, first ? "" : "*", primes[i], q_str(a, pexp[i]));
        first = false;
    }
    return arena_printf(a, "%s)", s);
}

/* Ratio text of positive rationals r over blocks: "u^2/v^2 = 8" or
 * "u^2 : v^2 : w^2 = 1 : 1 : 1". */
static const char *ratio_text(ibc_arena *a, const sym_family *f, mpq_t *r)
{
    if (f->nblocks == 2) {
        mpq_t q;
        mpq_init(q);
        mpq_div(q, r[0], r[1]);
        const char *s = arena_printf(a, "%s/%s = %s", block_norm2(a, f, 0), block_norm2(a, f, 1), q_str(a, q));
        mpq_clear(q);
        return s;
    }
    /* scale to coprime integers */
    mpz_t l, g;
    mpz_inits(l, g, NULL);
    mpz_set_ui(l, 1);
    for (int p = 0; p < f->nblocks; p++)
        mpz_lcm(l, l, mpq_denref(r[p]));
    mpz_t *v = malloc(sizeof(mpz_t) * (size_t)f->nblocks);
    mpz_set_ui(g, 0);
    for (int p = 0; p < f->nblocks; p++) {
        mpz_init(v[p]);
        mpz_divexact(v[p], l, mpq_denref(r[p]));
        mpz_mul(v[p], v[p], mpq_numref(r[p]));
        mpz_gcd(g, g, v[p]);
    }
    char *lhs = "", *rhs = "";
    for (int p = 0; p < f->nblocks; p++) {
        mpz_divexact(v[p], v[p], g);
        lhs = arena_printf(a, "%s%s%s", lhs, p ? " : " : "", block_norm2(a, f, p));
        rhs = arena_printf(a, "%s%s%ld", rhs, p ? " : " : "", mpz_get_si(v[p]));
        mpz_clear(v[p]);
    }
    free(v);
    mpz_clears(l, g, NULL);
    return arena_printf(a, "%s = %s", lhs, rhs);
}

/* Phase 1 of the simplex method in exact rationals: finds x >= 0 with
 * A x = b (A m x n, row-major longs) or reports that none exists.  Bland's
 * rule (smallest index enters and leaves) rules out cycling, so it ends.
 * On success x (n entries, initialised by the caller) holds a basic
 * feasible point. */
static bool lp_feasible(int m, int n, const long *A, const long *b, mpq_t *x)
{
    int W = n + m + 1;   /* columns: x, artificials, right-hand side */
    qmat t;
    qmat_init(&t, m + 1, W);   /* row m: reduced costs of sum(artificials) */
    int *basis = malloc(sizeof(int) * (size_t)(m ? m : 1));
    mpq_t f, q, best;
    mpq_inits(f, q, best, NULL);
    for (int i = 0; i < m; i++) {
        long sg = b[i] < 0 ? -1 : 1;
        for (int j = 0; j < n; j++)
            mpq_set_si(Q(&t, i, j), sg * A[(size_t)i * n + j], 1);
        mpq_set_ui(Q(&t, i, n + i), 1, 1);
        mpq_set_si(Q(&t, i, W - 1), sg * b[i], 1);
        basis[i] = n + i;
        for (int j = 0; j < n; j++)
            mpq_sub(Q(&t, m, j), Q(&t, m, j), Q(&t, i, j));
        mpq_sub(Q(&t, m, W - 1), Q(&t, m, W - 1), Q(&t, i, W - 1));
    }
    for (;;) {
        int e = -1;
        for (int j = 0; j < n + m && e < 0; j++)
            if (mpq_sgn(Q(&t, m, j)) < 0)
                e = j;
        if (e < 0)
            break;
        int r = -1;
        for (int i = 0; i < m; i++) {
            if (mpq_sgn(Q(&t, i, e)) <= 0)
                continue;
            mpq_div(q, Q(&t, i, W - 1), Q(&t, i, e));
            int c = r < 0 ? -1 : mpq_cmp(q, best);
            if (r < 0 || c < 0 || (c == 0 && basis[i] < basis[r])) {
                r = i;
                mpq_set(best, q);
            }
        }
        if (r < 0)
            break;   /* cannot happen: the phase-1 objective is bounded below by 0 */
        mpq_inv(f, Q(&t, r, e));
        for (int j = 0; j < W; j++)
            mpq_mul(Q(&t, r, j), Q(&t, r, j), f);
        for (int i = 0; i <= m; i++) {
            if (i == r || !mpq_sgn(Q(&t, i, e)))
                continue;
            mpq_set(f, Q(&t, i, e));
            for (int j = 0; j < W; j++) {
                mpq_mul(q, f, Q(&t, r, j));
                mpq_sub(Q(&t, i, j), Q(&t, i, j), q);
            }
        }
        basis[r] = e;
    }
    bool ok = mpq_sgn(Q(&t, m, W - 1)) == 0;
    if (ok) {
        for (int j = 0; j < n; j++)
            mpq_set_ui(x[j], 0, 1);
        for (int i = 0; i < m; i++)
            if (basis[i] < n)
                mpq_set(x[basis[i]], Q(&t, i, W - 1));
    }
    mpq_clears(f, q, best, NULL);
    free(basis);
    qmat_clear(&t);
    return ok;
}

/* Support of the cone {x >= 0 : M x = 0} (M rows x n): supp[j] is true
 * when some point of the cone has x_j > 0.  One feasibility problem per
 * index not yet covered, with the extra row x_j = 1.  Returns how many. */
static int cone_support(int rows, int n, const long *M, bool *supp)
{
    long *A = calloc((size_t)(rows + 1) * (size_t)n, sizeof(long));
    long *b = calloc((size_t)rows + 1, sizeof(long));
    mpq_t *x = malloc(sizeof(mpq_t) * (size_t)n);
    for (int j = 0; j < n; j++) {
        mpq_init(x[j]);
        supp[j] = false;
    }
    memcpy(A, M, sizeof(long) * (size_t)rows * (size_t)n);
    b[rows] = 1;
    int count = 0;
    for (int s = 0; s < n; s++) {
        if (supp[s])
            continue;
        for (int j = 0; j < n; j++)
            A[(size_t)rows * n + j] = j == s;
        if (!lp_feasible(rows + 1, n, A, b, x))
            continue;
        for (int j = 0; j < n; j++)
            if (mpq_sgn(x[j]) > 0 && !supp[j]) {
                supp[j] = true;
                count++;
            }
    }
    for (int j = 0; j < n; j++)
        mpq_clear(x[j]);
    free(x);
    free(b);
    free(A);
    return count;
}

/* Existence of the orbit minimum of log det G = log sum_S c_S n_S
 * exp(e_S . t) (docs/theory.md §4), exactly, by the theorems of the
 * alternative on the dual cone D = {delta >= 0 : sum_S delta_S e_S = 0}:
 * Gordan, D = {0} iff some direction makes every term decay (unbounded
 * below); Stiemke, D holds a point with every delta_S > 0 iff no direction
 * decreases some term without increasing another (attained).  Between the
 * two, the infimum is finite but approached only at infinity. */
static sym_min_kind orbit_existence(const sym_family *f)
{
    int k = f->k, T = f->nterms;
    long *M = calloc((size_t)k * (size_t)(T ? T : 1), sizeof(long));
    bool supp[64];
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        for (int a = 0; a < k; a++)
            M[(size_t)a * T + s] = e[a];
    }
    int c = cone_support(k, T, M, supp);
    free(M);
    return c == T ? SYM_MIN_ATTAINED : c == 0 ? SYM_MIN_UNBOUNDED : SYM_MIN_NOT_ATTAINED;
}

/* ------------------------------------------ is the slice the minimiser? */

/* A polynomial in at most SYM_MAX_BLOCKS variables with rational
 * coefficients, as a list of (exponent vector, coefficient). */
typedef struct {
    int nvar, n, cap;
    unsigned char (*e)[SYM_MAX_BLOCKS];
    mpq_t *c;
} qpoly;

static void qpoly_init(qpoly *q, int nvar)
{
    memset(q, 0, sizeof *q);
    q->nvar = nvar;
}

static void qpoly_clear(qpoly *q)
{
    for (int i = 0; i < q->n; i++)
        mpq_clear(q->c[i]);
    free(q->e);
    free(q->c);
}

/* q += c * x^e */
static void qpoly_add(qpoly *q, const unsigned char *e, const mpq_t c)
{
    for (int i = 0; i < q->n; i++)
        if (!memcmp(q->e[i], e, SYM_MAX_BLOCKS)) {
            mpq_add(q->c[i], q->c[i], c);
            return;
        }
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->e = realloc(q->e, (size_t)q->cap * sizeof *q->e);
        q->c = realloc(q->c, (size_t)q->cap * sizeof *q->c);
        if (!q->e || !q->c) {
            fprintf(stderr, "ibc: out of memory\n");
            exit(70);
        }
    }
    memcpy(q->e[q->n], e, SYM_MAX_BLOCKS);
    mpq_init(q->c[q->n]);
    mpq_set(q->c[q->n], c);
    q->n++;
}

/* q *= sum_j l[j] x_j (a linear form) */
static void qpoly_mul_linear(qpoly *q, const long *l)
{
    qpoly r;
    qpoly_init(&r, q->nvar);
    mpq_t t, lj;
    mpq_inits(t, lj, NULL);
    for (int i = 0; i < q->n; i++)
        for (int j = 0; j < q->nvar; j++) {
            if (!l[j])
                continue;
            unsigned char e[SYM_MAX_BLOCKS];
            memcpy(e, q->e[i], SYM_MAX_BLOCKS);
            e[j]++;
            mpq_set_si(lj, l[j], 1);
            mpq_mul(t, q->c[i], lj);
            qpoly_add(&r, e, t);
        }
    mpq_clears(t, lj, NULL);
    qpoly_clear(q);
    *q = r;
}

static bool qpoly_zero(const qpoly *q)
{
    for (int i = 0; i < q->n; i++)
        if (mpq_sgn(q->c[i]))
            return false;
    return true;
}

/* Exactly: is every point of the dual slice chi = 0 a stationary point of
 * log det G along its orbit?  The gradient of log det G(t) at t = 0 is
 * sum_S c_S n_S e_S / det G; on the slice n = N y (N a basis of the
 * nullspace of alpha, nd columns) its numerator is a polynomial in y of
 * degree k for each of the k components, expanded here and compared with
 * 0 coefficient by coefficient.  (The slice's positive part is open in
 * that subspace when it has a point with every block non-zero, so an
 * identity there is an identity everywhere.)  This decides agreement
 * for every family, closed form or not: u v + v w (minimum 2 |v|
 * sqrt(u^2 + w^2), on chi = 0) agrees, u^2 v does not. */
static bool slice_is_minimiser(const sym_family *f, const long *ns, int nd)
{
    int k = f->k, P = f->nblocks;
    bool zero = true;
    for (int a = 0; a < k && zero; a++) {
        qpoly F;
        qpoly_init(&F, nd);
        for (int s = 0; s < f->nterms; s++) {
            long w = 0;   /* (e_S)_a / 2 = sum_{p in S} alpha_ap */
            for (int p = 0; p < P; p++)
                if (f->term_set[s] & (1u << p))
                    w += f->alpha[a][p];
            if (!w)
                continue;
            qpoly t;
            qpoly_init(&t, nd);
            unsigned char e0[SYM_MAX_BLOCKS] = { 0 };
            mpq_t c;
            mpq_init(c);
            mpq_set_si(c, f->term_coef[s] * w, 1);
            qpoly_add(&t, e0, c);
            for (int p = 0; p < P; p++)
                if (f->term_set[s] & (1u << p)) {
                    long l[SYM_MAX_BLOCKS] = { 0 };
                    for (int j = 0; j < nd; j++)
                        l[j] = ns[(size_t)j * P + p];
                    qpoly_mul_linear(&t, l);
                }
            for (int i = 0; i < t.n; i++)
                qpoly_add(&F, t.e[i], t.c[i]);
            mpq_clear(c);
            qpoly_clear(&t);
        }
        zero = qpoly_zero(&F);
        qpoly_clear(&F);
    }
    return zero;
}

/* Terms whose exponents e_S are equal move together along the orbit, so
 * they are one term of the geometric programme, with a posynomial
 * coefficient C_g = sum_{S in g} c_S n_S (u v + v w: u^2 and w^2 both grow
 * as e^(2t)).  When the merged programme has degree of difficulty 0 and
 * one dual solution, the minimum is closed-form:
 * min log det G = sum_g delta_g log(C_g / delta_g).  Fills the family's
 * texts and returns true; false when it does not apply. */
static bool minimise_merged(ibc_arena *a, sym_family *f)
{
    int k = f->k, T = f->nterms;
    int grp[64], ng = 0;
    long ge[64][SYM_MAX_GEN];
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        grp[s] = -1;
        for (int g = 0; g < ng && grp[s] < 0; g++)
            if (!memcmp(ge[g], e, sizeof(long) * (size_t)k))
                grp[s] = g;
        if (grp[s] < 0) {
            memcpy(ge[ng], e, sizeof(long) * (size_t)k);
            grp[s] = ng++;
        }
    }
    if (ng == T || ng != k + 1)
        return false;
    qmat m;
    qmat_init(&m, k + 1, ng + 1);
    for (int g = 0; g < ng; g++) {
        for (int r = 0; r < k; r++)
            mpq_set_si(Q(&m, r, g), ge[g][r], 1);
        mpq_set_ui(Q(&m, k, g), 1, 1);
    }
    mpq_set_ui(Q(&m, k, ng), 1, 1);
    int piv[SYM_MAX_GEN + 2];
    bool ok = qmat_rref(&m, piv) == ng;
    for (int g = 0; g < ng && ok; g++)
        ok = piv[g] == g && mpq_sgn(Q(&m, g, ng)) > 0;
    if (!ok) {
        qmat_clear(&m);
        return false;
    }
    /* constant: sum_g delta_g log(1 / delta_g), plus delta_g log c_S for a
     * group of one term (a coefficient inside a sum stays there) */
    static const unsigned long primes[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47 };
    const int np = (int)(sizeof primes / sizeof primes[0]);
    mpq_t pexp[15], r;
    mpq_init(r);
    for (int i = 0; i < np; i++)
        mpq_init(pexp[i]);
    char *inv = "";
    for (int g = 0; g < ng; g++) {
        const mpq_t *dg = &Q(&m, g, ng);
        int nin = 0, last = -1;
        for (int s = 0; s < T; s++)
            if (grp[s] == g) {
                nin++;
                last = s;
            }
        mpq_set_ui(r, 1, 1);
        if (nin == 1)
            mpq_set_si(r, f->term_coef[last], 1);
        mpq_div(r, r, *dg);
        add_log(pexp, primes, np, *dg, r);
        char *poly = "";
        for (int s = 0; s < T; s++) {
            if (grp[s] != g)
                continue;
            char *mono = nin > 1 && f->term_coef[s] != 1 ? arena_printf(a, "%ld", f->term_coef[s]) : "";
            for (int p = 0; p < f->nblocks; p++)
                if (f->term_set[s] & (1u << p))
                    mono = arena_printf(a, "%s%s%s", mono, *mono ? " " : "", block_norm2(a, f, p));
            poly = arena_printf(a, "%s%s%s", poly, *poly ? " + " : "", mono);
        }
        inv = arena_printf(a, "%s%s(%s)^(%s)", inv, *inv ? " " : "", poly, q_str(a, *dg));
        snprintf(f->delta[g], sizeof f->delta[g], "%s", q_str(a, *dg));
    }
    for (int g = ng; g < T; g++)
        f->delta[g][0] = 0;
    f->constant = log_text(a, pexp, primes, np, "");
    f->coefficient = "1";
    f->invariant = inv;
    f->degree = 0;
    f->min_kind = SYM_MIN_ATTAINED;
    const char *cst = f->constant + 4;   /* inside "log(...)", or "0" */
    f->min_text = f->constant[0] == 'l' ? arena_printf(a, "%.*s %s", (int)strlen(cst) - 1, cst, inv) : inv;
    f->log_det_minimizer = arena_printf(a, "the terms of det G with equal orbit exponents merged (%d groups): each "
                                           "group's share of det G equals its dual weight", ng);
    for (int i = 0; i < np; i++)
        mpq_clear(pexp[i]);
    mpq_clear(r);
    qmat_clear(&m);
    return true;
}

void sym_minimise(ibc_arena *a, sym_family *f)
{
    int k = f->k, T = f->nterms, P = f->nblocks;
    f->degree = T - k - 1;
    f->agree = false;
    /* The dual slice: chi_a = 1/2 sum_p alpha_ap n_p = 0, i.e. n in the
     * nullspace of alpha; with P = k + 1 blocks it is one ray. */
    long *ns = NULL;
    long eqs[SYM_MAX_GEN * SYM_MAX_BLOCKS];
    for (int r = 0; r < k; r++)
        for (int p = 0; p < P; p++)
            eqs[r * P + p] = f->alpha[r][p];
    int nd = nullspace(a, eqs, (size_t)k, P, &ns);
    mpq_t slice_r[SYM_MAX_BLOCKS];
    bool slice_ok = nd == 1;
    for (int p = 0; p < P; p++) {
        mpq_init(slice_r[p]);
        if (slice_ok) {
            mpq_set_si(slice_r[p], ns[p], 1);
            if (ns[p] <= 0)
                slice_ok = false;
        }
    }
    if (slice_ok) {
        f->dual_slice = ratio_text(a, f, slice_r);
    } else {
        /* chi = 0 with n >= 0 is a cone; it is a balance only if some of
         * its points have every block non-zero. */
        bool supp[SYM_MAX_BLOCKS];
        bool positive = cone_support(k, P, eqs, supp) == P;
        f->dual_slice = !positive ? "chi = 0 has no point with every block non-zero"
                                  : arena_printf(a, "chi = 0 (a cone of dimension %d in the squared block norms)", nd);
    }

    f->existence = orbit_existence(f);
    {
        bool supp[SYM_MAX_BLOCKS];
        f->agree = f->existence == SYM_MIN_ATTAINED && nd > 0 && cone_support(k, P, eqs, supp) == P &&
                   slice_is_minimiser(f, ns, nd);
    }
    /* Closed form only when the dual system has exactly one solution. */
    bool unique = false;
    if (f->degree == 0) {
        qmat m0;
        qmat_init(&m0, k + 1, T);
        for (int s = 0; s < T; s++) {
            long e[SYM_MAX_GEN];
            term_exponent(f, s, e);
            for (int r = 0; r < k; r++)
                mpq_set_si(Q(&m0, r, s), e[r], 1);
            mpq_set_ui(Q(&m0, k, s), 1, 1);
        }
        int piv0[SYM_MAX_GEN + 2];
        unique = qmat_rref(&m0, piv0) == T;
        qmat_clear(&m0);
    }
    if (f->existence == SYM_MIN_ATTAINED && !unique && minimise_merged(a, f)) {
        for (int p = 0; p < P; p++)
            mpq_clear(slice_r[p]);
        return;
    }
    if (f->existence == SYM_MIN_ATTAINED && !unique) {
        f->min_kind = SYM_MIN_NUMERIC;
        double unit[SYM_MAX_BLOCKS], v;
        for (int p = 0; p < P; p++)
            unit[p] = 1;
        if (sym_logdet_min_numeric(f, unit, &v))
            f->min_text = arena_printf(a, "no closed form (degree of difficulty %d); numeric (Newton): min log det G "
                                          "= %.12g at unit block norms", f->degree, v);
        else
            f->min_text = arena_printf(a, "no closed form (degree of difficulty %d); numeric (Newton): no minimiser "
                                          "found (log det G decreases without bound along the orbit)", f->degree);
        f->log_det_minimizer = "numeric";
        f->coefficient = "numeric";
        f->invariant = "numeric";
        f->constant = "numeric";
        for (int p = 0; p < P; p++)
            mpq_clear(slice_r[p]);
        return;
    }
    if (f->existence != SYM_MIN_ATTAINED && !unique) {
        bool unb = f->existence == SYM_MIN_UNBOUNDED;
        f->min_kind = f->existence;
        f->min_text = unb ? "no minimiser: log det G is unbounded below along the orbit (no non-negative dual weights)"
                          : "infimum not attained (every feasible dual weight vector has a zero): the orbit minimum is "
                            "approached only at infinity";
        f->log_det_minimizer = unb ? "none (unbounded below)" : "none (infimum not attained)";
        f->coefficient = f->invariant = f->constant = "none";
        for (int s = 0; s < T; s++)
            snprintf(f->delta[s], sizeof f->delta[s], "-");
        for (int p = 0; p < P; p++)
            mpq_clear(slice_r[p]);
        return;
    }
    /* Dual weights: sum_S delta_S e_S = 0, sum_S delta_S = 1. */
    qmat m;
    qmat_init(&m, k + 1, T + 1);
    for (int s = 0; s < T; s++) {
        long e[SYM_MAX_GEN];
        term_exponent(f, s, e);
        for (int r = 0; r < k; r++)
            mpq_set_si(Q(&m, r, s), e[r], 1);
        mpq_set_ui(Q(&m, k, s), 1, 1);
    }
    mpq_set_ui(Q(&m, k, T), 1, 1);
    int piv[SYM_MAX_GEN + 2];
    int rank = qmat_rref(&m, piv);
    mpq_t delta[64];
    bool unbounded = false, zero = false;
    for (int s = 0; s < T; s++) {
        mpq_init(delta[s]);
        for (int r = 0; r < rank; r++)
            if (piv[r] == s)
                mpq_set(delta[s], Q(&m, r, T));
        if (mpq_sgn(delta[s]) < 0)
            unbounded = true;
        if (mpq_sgn(delta[s]) == 0)
            zero = true;
        snprintf(f->delta[s], sizeof f->delta[s], "%s", q_str(a, delta[s]));
    }
    qmat_clear(&m);
    if (unbounded || zero) {
        f->min_kind = unbounded ? SYM_MIN_UNBOUNDED : SYM_MIN_NOT_ATTAINED;
        f->min_text = unbounded ? "no minimiser: log det G is unbounded below along the orbit (a dual weight is negative)"
                                : "infimum not attained (a dual weight is zero): the orbit minimum is approached only at infinity";
        f->log_det_minimizer = unbounded ? "none (unbounded below)" : "none (infimum not attained)";
        f->coefficient = f->invariant = f->constant = "none";
        for (int s = 0; s < T; s++)
            mpq_clear(delta[s]);
        for (int p = 0; p < P; p++)
            mpq_clear(slice_r[p]);
        return;
    }
    f->min_kind = SYM_MIN_ATTAINED;
    /* Constant: sum_S delta_S log(c_S / delta_S), as prime exponents. */
    static const unsigned long primes[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47 };
    const int np = (int)(sizeof primes / sizeof primes[0]);
    mpq_t pexp[15], r;
    mpq_init(r);
    for (int i = 0; i < np; i++)
        mpq_init(pexp[i]);
    for (int s = 0; s < T; s++) {
        mpq_set_si(r, f->term_coef[s], 1);
        mpq_div(r, r, delta[s]);
        add_log(pexp, primes, np, delta[s], r);
    }
    f->constant = log_text(a, pexp, primes, np, "");
    /* exp(constant), for the minimum's text */
    const char *cst = f->constant + 4;   /* inside "log(...)" */
    char *factor = arena_strndup(a, cst, strlen(cst) - 1);

    /* Invariant: w_p = sum_{S contains p} delta_S; log det G_min =
     * const + sum_p w_p log n_p = const + sum_p 2 w_p log|theta_p|.
     * Write 2w = c * m with m a primitive positive integer vector. */
    mpq_t w[SYM_MAX_BLOCKS], c;
    mpq_init(c);
    mpz_t gnum, lden;
    mpz_inits(gnum, lden, NULL);
    mpz_set_ui(gnum, 0);
    mpz_set_ui(lden, 1);
    for (int p = 0; p < P; p++) {
        mpq_init(w[p]);
        for (int s = 0; s < T; s++)
            if (f->term_set[s] & (1u << p))
                mpq_add(w[p], w[p], delta[s]);
        mpq_set_ui(r, 2, 1);
        mpq_mul(w[p], w[p], r);
        mpz_gcd(gnum, gnum, mpq_numref(w[p]));
        mpz_lcm(lden, lden, mpq_denref(w[p]));
    }
    mpq_set_num(c, gnum);
    mpq_set_den(c, lden);
    mpq_canonicalize(c);
    f->coefficient = q_str(a, c);
    char *inv = "";
    for (int p = 0; p < P; p++) {
        mpq_div(r, w[p], c);
        long mp = mpz_get_si(mpq_numref(r));
        if (mp == 0)
            continue;
        inv = mp == 1 ? arena_printf(a, "%s%s%s", inv, *inv ? " " : "", block_abs(a, f, p))
                      : arena_printf(a, "%s%s%s^%ld", inv, *inv ? " " : "", block_abs(a, f, p), mp);
    }
    f->invariant = inv;
    bool one = !strcmp(f->coefficient, "1");
    f->min_text = one ? arena_printf(a, "%s %s", factor, inv)
                      : arena_printf(a, "%s (%s)^(%s)", factor, inv, f->coefficient);

    /* The minimiser: at the optimum each term's share is delta_S.  With
     * P = k + 1 blocks each term omits one block q, so n_q is
     * proportional to c_S(-q) / delta_S(-q). */
    if (P == k + 1 && T == P) {
        mpq_t rr[SYM_MAX_BLOCKS];
        for (int p = 0; p < P; p++) {
            mpq_init(rr[p]);
            unsigned want = ((1u << P) - 1) & ~(1u << p);
            for (int s = 0; s < T; s++)
                if (f->term_set[s] == want) {
                    mpq_set_si(rr[p], f->term_coef[s], 1);
                    mpq_div(rr[p], rr[p], delta[s]);
                }
        }
        f->log_det_minimizer = ratio_text(a, f, rr);
        for (int p = 0; p < P; p++)
            mpq_clear(rr[p]);
    } else {
        f->log_det_minimizer = "every term's share of det G equals its dual weight";
    }
    for (int p = 0; p < P; p++) {
        mpq_clear(w[p]);
        mpq_clear(slice_r[p]);
    }
    mpz_clears(gnum, lden, NULL);
    mpq_clear(c);
    mpq_clear(r);
    for (int i = 0; i < np; i++)
        mpq_clear(pexp[i]);
    for (int s = 0; s < T; s++)
        mpq_clear(delta[s]);
}

/* ------------------------------------------- families from the torus */

typedef struct {
    int param;
    sym_slice slice;
    int index;      /* row, column or entry index; -1 for whole */
    long expo;
} gslice;

/* Describes a generator as slices; false if it scales a parameter in a
 * pattern that is not a whole slice (not a rescaling of blocks). */
static bool classify(infer *in, const long *g, gslice *out, int *nout)
{
    const ibc_spec *sp = in->spec;
    *nout = 0;
    for (size_t p = 0; p < sp->nparams; p++) {
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

/* ------------------------------------------------------- GL junctions */

/* Which parameter axis carries axis `axis` (0: rows, or a vector's
 * entries; 1: columns) of the value of n, through operations that act on
 * the other axis only (products with anything, transposes, negation,
 * constant scalar factors); -1 when something else (an elementwise
 * function, a sum, a Hadamard product, an input) is on the way. */
static int leg_trace(const ast_node *n, int axis, bool *rows)
{
    switch (n->kind) {
    case AST_IDENT:
        if (n->ref_kind != IBC_REF_PARAM)
            return -1;
        *rows = n->shape.rank < 2 || axis == 0;
        return n->ref;
    case AST_NEG:
        return leg_trace(n->lhs, axis, rows);
    case AST_TRANSPOSE:
        return leg_trace(n->lhs, n->lhs->shape.rank == 2 ? 1 - axis : axis, rows);
    case AST_CALL:
        if (!strcmp(n->name, "transpose") && n->nkids == 1)
            return leg_trace(n->kids[0], n->kids[0]->shape.rank == 2 ? 1 - axis : axis, rows);
        return -1;
    case AST_BINOP:
        if (n->op == '@') {
            if (n->shape.rank == 2)
                return axis == 0 ? leg_trace(n->lhs, 0, rows) : leg_trace(n->rhs, 1, rows);
            if (n->shape.rank == 1)
                return n->lhs->shape.rank == 2 ? leg_trace(n->lhs, 0, rows) : leg_trace(n->rhs, 1, rows);
            return -1;
        }
        if (n->op == '*' && n->lhs->is_const && n->lhs->shape.rank == 0)
            return leg_trace(n->rhs, axis, rows);
        if ((n->op == '*' || n->op == '/') && n->rhs->is_const && n->rhs->shape.rank == 0)
            return leg_trace(n->lhs, axis, rows);
        return -1;
    default:
        return -1;
    }
}

static void count_params(const ast_node *n, int *uses)
{
    if (!n)
        return;
    if (n->kind == AST_IDENT && n->ref_kind == IBC_REF_PARAM)
        uses[n->ref]++;
    count_params(n->lhs, uses);
    count_params(n->rhs, uses);
    for (size_t i = 0; i < n->nkids; i++)
        count_params(n->kids[i], uses);
}

static long leg_dim(const ibc_var *p, bool rows)
{
    return p->shape.rank == 0 ? 1 : rows ? p->shape.rows : p->shape.cols;
}

static const char *leg_text(ibc_arena *a, const ibc_var *p, bool rows)
{
    if (p->shape.rank == 0)
        return p->name;
    if (p->shape.rank == 1)
        return arena_printf(a, "%s[k]", p->name);
    return rows ? arena_printf(a, "%s[k,:]", p->name) : arena_printf(a, "%s[:,k]", p->name);
}

/* Every '@' of the predictor whose two contracted axes trace to two
 * different parameters used once each: a GL(r) junction. */
static void find_junctions(ibc_arena *a, const ibc_spec *sp, const ast_node *n, const int *uses, sym_group *out,
                           size_t *nout, size_t cap)
{
    if (!n)
        return;
    if (n->kind == AST_BINOP && n->op == '@' && n->lhs->shape.rank >= 1 && n->rhs->shape.rank >= 1 && *nout < cap) {
        bool lrows, rrows;
        int l = leg_trace(n->lhs, n->lhs->shape.rank == 2 ? 1 : 0, &lrows);
        int r = leg_trace(n->rhs, 0, &rrows);
        if (l >= 0 && r >= 0 && l != r && uses[l] == 1 && uses[r] == 1) {
            sym_group *g = &out[(*nout)++];
            memset(g, 0, sizeof *g);
            g->kind = SYM_GROUP_GL;
            g->left = (sym_leg){ l, lrows };
            g->right = (sym_leg){ r, rrows };
            const ibc_var *A = &sp->params[l], *B = &sp->params[r];
            g->r = leg_dim(A, lrows);
            g->full_rank = leg_dim(A, !lrows) >= g->r && leg_dim(B, !rrows) >= g->r;
            if (A->shape.rank < 2)
                g->full_rank = g->r == 1;
            if (B->shape.rank < 2)
                g->full_rank = g->full_rank && g->r == 1;
            g->loc = n->loc;
            g->generators = g->r * g->r;
            g->conserved = g->r * (g->r + 1) / 2;
            g->text = arena_printf(a, "GL(%ld): %s with %s", g->r, leg_text(a, A, lrows), leg_text(a, B, rrows));
        }
    }
    find_junctions(a, sp, n->lhs, uses, out, nout, cap);
    find_junctions(a, sp, n->rhs, uses, out, nout, cap);
    for (size_t i = 0; i < n->nkids; i++)
        find_junctions(a, sp, n->kids[i], uses, out, nout, cap);
}

/* ------------------------------------------- the lattice of symmetries */

/* The torus is the set of integer exponent vectors x with E x = 0 (a
 * lattice L), and its generators must be a basis of L: another full-rank
 * set of integer solutions (the rational nullspace scaled to integers)
 * spans a sublattice of index m > 1, which multiplies det G by m^2 and so
 * shifts the bias constant by log m, differently for each order of the
 * unknowns.  The basis is found in three exact steps (GMP integers):
 *
 *   1. unimodular column operations bring E to echelon form; the columns
 *      of the accumulated unimodular matrix past the rank are a basis of
 *      L (Cohen, A Course in Computational Algebraic Number Theory, §2.4.3);
 *   2. that basis is put in Hermite normal form over the unknowns in
 *      reverse canonical order, so it depends only on L: the canonical
 *      order ranks parameters by name, not by declaration, and reversing
 *      it makes the HNF equal the familiar nullspace basis (one generator
 *      per free unknown, 1 there, 0 at the other free unknowns) whenever
 *      that basis is integral;
 *   3. where the HNF rows are not rescalings of whole slices (a deep chain:
 *      a middle factor's rows and columns scale with two different
 *      hidden layers), the basis is re-expressed in the coordinates of d
 *      unknowns whose exponent forms are a unimodular basis of the dual
 *      (those of the largest slices first): each new generator is 1 on one
 *      of them and 0 on the others, which picks the natural generators
 *      (one hidden unit's rescaling) when they exist.  The result is
 *      verified (integral, unimodular, every row a slice rescaling);
 *      otherwise the derivation stops with an error instead of using a
 *      basis that is not one. */

typedef struct {
    int rows, cols;
    mpz_t *a;
} zmat;

static void zmat_init(zmat *m, int rows, int cols)
{
    m->rows = rows;
    m->cols = cols;
    m->a = malloc((size_t)(rows ? rows : 1) * (size_t)(cols ? cols : 1) * sizeof(mpz_t));
    for (int i = 0; i < rows * cols; i++)
        mpz_init(m->a[i]);
}

static void zmat_clear(zmat *m)
{
    for (int i = 0; i < m->rows * m->cols; i++)
        mpz_clear(m->a[i]);
    free(m->a);
}

#define Z(m, i, j) ((m)->a[(size_t)(i) * (m)->cols + (j)])

/* column j -= q column i, in E and U (both with N columns) */
static void zcol_submul(zmat *E, zmat *U, int j, int i, const mpz_t q)
{
    for (int r = 0; r < E->rows; r++)
        mpz_submul(Z(E, r, j), q, Z(E, r, i));
    for (int r = 0; r < U->rows; r++)
        mpz_submul(Z(U, r, j), q, Z(U, r, i));
}

static void zcol_swap(zmat *m, int i, int j)
{
    for (int r = 0; r < m->rows; r++)
        mpz_swap(Z(m, r, i), Z(m, r, j));
}

/* row i -= q row j of m */
static void zrow_submul(zmat *m, int i, int j, const mpz_t q)
{
    for (int c = 0; c < m->cols; c++)
        mpz_submul(Z(m, i, c), q, Z(m, j, c));
}

static void zrow_swap(zmat *m, int i, int j)
{
    for (int c = 0; c < m->cols; c++)
        mpz_swap(Z(m, i, c), Z(m, j, c));
}

/* Step 1: a basis of {x in Z^N : E x = 0} as the rows of K (d x N). */
static void lattice_kernel(const long *eq, size_t neq, int N, zmat *K)
{
    zmat E, U;
    zmat_init(&E, (int)neq, N);
    zmat_init(&U, N, N);
    for (size_t i = 0; i < neq; i++)
        for (int j = 0; j < N; j++)
            mpz_set_si(Z(&E, i, j), eq[i * (size_t)N + j]);
    for (int j = 0; j < N; j++)
        mpz_set_ui(Z(&U, j, j), 1);
    mpz_t q;
    mpz_init(q);
    int piv = 0;
    for (int r = 0; r < E.rows && piv < N; r++) {
        for (;;) {   /* Euclid across the row: leave one non-zero entry at or past piv */
            int best = -1;
            for (int c = piv; c < N; c++)
                if (mpz_sgn(Z(&E, r, c)) && (best < 0 || mpz_cmpabs(Z(&E, r, c), Z(&E, r, best)) < 0))
                    best = c;
            if (best < 0)
                break;
            bool more = false;
            for (int c = piv; c < N; c++) {
                if (c == best || !mpz_sgn(Z(&E, r, c)))
                    continue;
                mpz_fdiv_q(q, Z(&E, r, c), Z(&E, r, best));
                zcol_submul(&E, &U, c, best, q);
                more = more || mpz_sgn(Z(&E, r, c));
            }
            if (!more) {
                zcol_swap(&E, piv, best);
                zcol_swap(&U, piv, best);
                piv++;
                break;
            }
        }
    }
    zmat_init(K, N - piv, N);
    for (int b = 0; b < N - piv; b++)
        for (int j = 0; j < N; j++)
            mpz_set(Z(K, b, j), Z(&U, j, piv + b));
    mpz_clear(q);
    zmat_clear(&E);
    zmat_clear(&U);
}

/* Step 2: Hermite normal form of the rows of K, taking the columns in the
 * order col[0], col[1], ...: pivots positive, entries above a pivot reduced
 * into [0, pivot).  Unique for the lattice the rows span. */
static void lattice_hnf(zmat *K, const int *col)
{
    mpz_t q;
    mpz_init(q);
    int row = 0;
    for (int t = 0; t < K->cols && row < K->rows; t++) {
        int c = col[t];
        for (;;) {
            int best = -1;
            for (int i = row; i < K->rows; i++)
                if (mpz_sgn(Z(K, i, c)) && (best < 0 || mpz_cmpabs(Z(K, i, c), Z(K, best, c)) < 0))
                    best = i;
            if (best < 0)
                break;
            bool more = false;
            for (int i = row; i < K->rows; i++) {
                if (i == best || !mpz_sgn(Z(K, i, c)))
                    continue;
                mpz_fdiv_q(q, Z(K, i, c), Z(K, best, c));
                zrow_submul(K, i, best, q);
                more = more || mpz_sgn(Z(K, i, c));
            }
            if (!more) {
                zrow_swap(K, row, best);
                break;
            }
        }
        if (row < K->rows && mpz_sgn(Z(K, row, c))) {
            if (mpz_sgn(Z(K, row, c)) < 0)
                for (int j = 0; j < K->cols; j++)
                    mpz_neg(Z(K, row, j), Z(K, row, j));
            for (int i = 0; i < row; i++) {
                mpz_fdiv_q(q, Z(K, i, c), Z(K, row, c));
                zrow_submul(K, i, row, q);
            }
            row++;
        }
    }
    mpz_clear(q);
}

static bool classify(infer *in, const long *g, gslice *out, int *nout);

/* The rows of K as longs (false when an entry does not fit). */
static bool zmat_get_long(const zmat *K, long *out)
{
    for (int i = 0; i < K->rows * K->cols; i++) {
        if (!mpz_fits_slong_p(K->a[i]))
            return false;
        out[i] = mpz_get_si(K->a[i]);
    }
    return true;
}

static bool all_slices(infer *in, const long *basis, int d)
{
    gslice gs[SYM_MAX_BLOCKS];
    int ng;
    for (int g = 0; g < d; g++)
        if (!classify(in, basis + (size_t)g * in->N, gs, &ng))
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
        if (!classify(in, cand + (size_t)c * N, gs, &ng))
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
    lattice_hnf(&C, col);
    lattice_hnf(&H, col);
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

/* The lattice basis of the torus (steps 1-3 above) as d rows of N longs,
 * each with its first non-zero entry (in declaration order) positive and
 * ordered by their last non-zero unknown; -1 after a located error. */
static int lattice_basis(infer *in, long **out)
{
    const ibc_spec *sp = in->spec;
    int N = in->N;
    int *canon = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
    int *rev = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
    {   /* parameters by name, their entries in order */
        size_t P = sp->nparams, *byname = arena_alloc(in->arena, (P + 1) * sizeof(size_t));
        for (size_t p = 0; p < P; p++) {
            size_t i = p;
            while (i > 0 && strcmp(sp->params[byname[i - 1]].name, sp->params[p].name) > 0) {
                byname[i] = byname[i - 1];
                i--;
            }
            byname[i] = p;
        }
        int t = 0;
        for (size_t i = 0; i < P; i++) {
            size_t p = byname[i];
            for (int e = 0; e < in->param_rows[p] * in->param_cols[p]; e++)
                canon[t++] = in->param_off[p] + e;
        }
        for (int u = 0; u < N; u++)
            rev[u] = canon[N - 1 - u];
    }
    zmat K;
    lattice_kernel(in->eq, in->neq, N, &K);
    lattice_hnf(&K, rev);
    int d = K.rows;
    long *basis = arena_alloc(in->arena, (size_t)(d ? d : 1) * (size_t)N * sizeof(long));
    bool ok = false;
    {
        /* step 3: circuits (minimal-support vectors of L), one through
         * each unknown, then the smallest independent ones */
        int *order = arena_alloc(in->arena, (size_t)(N + 1) * sizeof(int));
        long *cand = arena_alloc(in->arena, (size_t)(6 * N + 1) * (size_t)N * sizeof(long));
        int ncand = 0;
        for (int su = 0; su < N; su++) {
            int u = canon[su];
            if (same_form_before(&K, canon, su))
                continue;
            int param = 0;
            while (param + 1 < (int)sp->nparams && in->param_off[param + 1] <= u)
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
                if (circuit_through(&K, u, order, cand + (size_t)ncand * N))
                    ncand++;
            }
        }
        ok = circuit_basis(in, &K, cand, ncand, basis) && all_slices(in, basis, d);
    }
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
    /* presentation: signs and order follow the declaration */
    for (int g = 0; g < d; g++) {
        long *v = basis + (size_t)g * N;
        int first = 0;
        while (first < N && v[first] == 0)
            first++;
        if (first < N && v[first] < 0)
            for (int j = 0; j < N; j++)
                v[j] = -v[j];
    }
    long *tmp = arena_alloc(in->arena, (size_t)N * sizeof(long) + sizeof(long));
    for (int g = 1; g < d; g++)
        for (int h = g; h > 0; h--) {
            long *a = basis + (size_t)(h - 1) * N, *b = basis + (size_t)h * N;
            int la = N - 1, lb = N - 1;
            while (la > 0 && !a[la])
                la--;
            while (lb > 0 && !b[lb])
                lb--;
            if (la <= lb)
                break;
            memcpy(tmp, a, (size_t)N * sizeof(long));
            memcpy(a, b, (size_t)N * sizeof(long));
            memcpy(b, tmp, (size_t)N * sizeof(long));
        }
    *out = basis;
    return d;
}

static bool build_families(infer *in, sym_derivation *d, const long *basis, int dim)
{
    gslice (*gs)[SYM_MAX_BLOCKS] = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof *gs);
    int *ng = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(int));
    int *gidx = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(int));
    bool *used = arena_alloc(in->arena, (size_t)(dim ? dim : 1));
    for (int g = 0; g < dim; g++) {
        if (!classify(in, basis + (size_t)g * in->N, gs[g], &ng[g])) {
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
    d->families = arena_alloc(in->arena, (size_t)(dim ? dim : 1) * sizeof(sym_family));
    /* Group: the generators at one index value whose slices share their
     * (parameter, kind) set form one block; the family is that block. */
    for (int g0 = 0; g0 < dim; g0++) {
        if (used[g0])
            continue;
        sym_family *f = &d->families[d->nfamilies];
        memset(f, 0, sizeof *f);
        /* members at the same index value, connected through shared blocks */
        int members[SYM_MAX_GEN], nm = 0;
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
                if (shares && nm < SYM_MAX_GEN) {
                    members[nm++] = g;
                    used[g] = true;
                    grew = true;
                }
            }
        }
        /* Blocks: union of slices in order of parameters. */
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
        /* The same pattern at other index values belongs to this family:
         * mark them used (they repeat it).  rep[i]: the generator at index
         * value i (for the sets of SYM_SLICE_SET blocks). */
        long reps = 1;
        int *rep = arena_alloc(in->arena, (size_t)(dim + 1) * sizeof(int)), nrep = 0;
        int *repidx = arena_alloc(in->arena, (size_t)(dim + 1) * sizeof(int));
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
                reps++;
            }
        }
        (void)reps;
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
        char *names = "";
        for (int p = 0; p < f->nblocks; p++)
            names = arena_printf(in->arena, "%s%s%s", names, p ? ", " : "", f->blocks[p].text);
        f->name = f->index ? arena_printf(in->arena, "rescaling of (%s), one per %s", names, f->index)
                           : arena_printf(in->arena, "rescaling of (%s)", names);
        if (!sym_gram_terms(f))
            return false;
        sym_minimise(in->arena, f);
        d->nfamilies++;
    }
    return true;
}

/* A torus family that is the diagonal of a junction: its two blocks are
 * the junction's legs, scaled oppositely. */
static bool family_in_junction(const sym_family *f, const sym_group *g)
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
            inside = family_in_junction(&d->families[f], &d->groups[g]);
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

sym_derivation *sym_derive(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag)
{
    infer in;
    memset(&in, 0, sizeof in);
    in.arena = a;
    in.diag = diag;
    in.spec = spec;
    size_t P = spec->nparams;
    in.cap = has_sparse_file_operator(spec->predict) ? INT_MAX : SMALL_DIM;
    in.param_off = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_rows = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_cols = arena_alloc(a, (P + 1) * sizeof(int));
    for (size_t p = 0; p < P; p++) {
        shape_small(&in, &spec->params[p].shape, &in.param_rows[p], &in.param_cols[p]);
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
    xval out = infer_expr(&in, spec->predict);
    if (in.failed || diag->errors > errors) {
        if (diag->errors == errors)
            diag_error(diag, spec->predict->loc, "internal error: the scaling system could not be built");
        return NULL;
    }
    /* The prediction itself must not scale. */
    for (int i = 0; i < out.rows * out.cols; i++)
        if (out.nz[i])
            eq_add(&in, out.form + (size_t)i * in.N, NULL);
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
        eq_add(&in, pin, NULL);
    }
    for (size_t s = 0; s < spec->nsymmetries; s++)
        check_symmetry(&in, spec->symmetries[s]);
    if (diag->errors > errors)
        return NULL;
    {
        int *uses = arena_alloc(a, (P + 1) * sizeof(int));
        count_params(spec->predict, uses);
        size_t cap = 2 * (P + 1);
        in.junctions = arena_alloc(a, cap * sizeof(sym_group));
        find_junctions(a, spec, spec->predict, uses, in.junctions, &in.njunctions, cap);
    }
    long *basis;
    int dim = lattice_basis(&in, &basis);
    if (dim < 0)
        return NULL;
    sym_derivation *d = arena_alloc(a, sizeof *d);
    d->spec = spec;
    d->nunknowns = in.N;
    d->nconstraints = (long)in.neq;
    d->full = in.cap != SMALL_DIM;
    if (!build_families(&in, d, basis, dim))
        return NULL;
    build_groups(a, d, in.junctions, in.njunctions);
    return d;
}

/* ------------------------------------------------------------ printing */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static const char *gram_text(ibc_arena *a, const sym_family *f)
{
    char *s = "";
    for (int t = 0; t < f->nterms; t++) {
        char *mono = "";
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                mono = arena_printf(a, "%s%s%s", mono, *mono ? " " : "", block_norm2(a, f, p));
        s = f->term_coef[t] == 1 ? arena_printf(a, "%s%s%s", s, t ? " + " : "", mono)
                                 : arena_printf(a, "%s%s%ld %s", s, t ? " + " : "", f->term_coef[t], mono);
    }
    return s;
}

static const char *slice_eq(ibc_arena *a, const sym_family *f, int g)
{
    char *s = "chi = 1/2 (";
    bool first = true;
    for (int p = 0; p < f->nblocks; p++) {
        long e = f->alpha[g][p];
        if (!e)
            continue;
        const char *nm = block_norm2(a, f, p);
        if (first)
            s = e == 1 ? arena_printf(a, "%s%s", s, nm) : e == -1 ? arena_printf(a, "%s-%s", s, nm)
                                                              : arena_printf(a, "%s%ld %s", s, e, nm);
        else
            s = labs(e) == 1 ? arena_printf(a, "%s %c %s", s, e > 0 ? '+' : '-', nm)
                             : arena_printf(a, "%s %c %ld %s", s, e > 0 ? '+' : '-', labs(e), nm);
        first = false;
    }
    return arena_printf(a, "%s)", s);
}

static const char *exists_text(const sym_family *f)
{
    switch (f->existence) {
    case SYM_MIN_ATTAINED: return "true";
    case SYM_MIN_UNBOUNDED: return "false";
    case SYM_MIN_NOT_ATTAINED: return "\"not_attained\"";
    default: return "\"numeric\"";
    }
}

/* The "balance" and "bias" members of a family, each on its own line
 * indented by ind (used per family and, for the first, at the top level). */
static void json_balance_bias(FILE *out, const sym_family *f, const char *ind)
{
    fprintf(out, ",\n%s\"balance\": {\"log_det_minimizer\": ", ind);
    json_str(out, f->log_det_minimizer);
    fprintf(out, ", \"dual_slice\": ");
    json_str(out, f->dual_slice);
    fprintf(out, ", \"agree\": %s, \"exists\": %s},\n%s\"bias\": {\"coefficient\": ", f->agree ? "true" : "false",
            exists_text(f), ind);
    json_str(out, f->coefficient);
    fprintf(out, ", \"invariant\": ");
    json_str(out, f->invariant);
    fprintf(out, ", \"constant\": ");
    json_str(out, f->constant);
    fprintf(out, ", \"terms\": %ld}", f->count);
}

/* "Wq'Wq" / "W1 W1'" / "w3 w3'": the Gram matrix of a junction's leg, r x r */
static const char *leg_gram(ibc_arena *a, const ibc_spec *sp, const sym_leg *l)
{
    const ibc_var *p = &sp->params[l->param];
    if (p->shape.rank < 2 || l->rows)
        return arena_printf(a, "%s %s'", p->name, p->name);
    return arena_printf(a, "%s'%s", p->name, p->name);
}

/* the junction's product in the orientation Z = A B */
static const char *junction_product(ibc_arena *a, const ibc_spec *sp, const sym_group *g)
{
    const ibc_var *A = &sp->params[g->left.param], *B = &sp->params[g->right.param];
    bool at = A->shape.rank == 2 && g->left.rows, bt = B->shape.rank == 2 && !g->right.rows;
    return arena_printf(a, "%s%s %s%s", A->name, at ? "'" : "", B->name, bt ? "'" : "");
}

static int family_of_junction(const sym_derivation *d, const sym_group *g)
{
    for (size_t f = 0; f < d->nfamilies; f++)
        if (family_in_junction(&d->families[f], g))
            return (int)f;
    return -1;
}

static bool group_coupled(const sym_derivation *d, size_t i)
{
    for (size_t h = 0; h < d->ngroups; h++)
        if (h != i && d->groups[h].component == d->groups[i].component)
            return true;
    return false;
}

static void print_groups_text(FILE *out, ibc_arena *a, const sym_derivation *d, const char *h)
{
    const ibc_spec *sp = d->spec;
    if (d->ngroups == 0)
        return;
    fprintf(out, "\n%ssymmetry groups of the whole model (docs/theory.md §8)\n", h);
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        if (g->kind == SYM_GROUP_TORUS) {
            fprintf(out, "  group %zu: torus, family %d: %ld generators, %ld conserved (chi)\n", i + 1, g->family + 1,
                    g->generators, g->conserved);
            continue;
        }
        const char *P = leg_gram(a, sp, &g->left), *Qg = leg_gram(a, sp, &g->right), *Z = junction_product(a, sp, g);
        int f = family_of_junction(d, g);
        fprintf(out, "  group %zu: %s, the contraction of %s\n", i + 1, g->text, Z);
        fprintf(out, "    generators:  %ld, one per elementary matrix E of gl(%ld): A -> A e^(tE), B -> e^(-tE) B in "
                     "%s = A B%s",
                g->generators, g->r, Z, f >= 0 ? "" : "\n");
        if (f >= 0)
            fprintf(out, "; its diagonal is family %d\n", f + 1);
        fprintf(out, "    dual slice:  C = %s - %s = 0, symmetric %ld x %ld: %ld conserved functions; the %ld "
                     "antisymmetric generators are rotations, with no dual slice\n",
                P, Qg, g->r, g->r, g->conserved, g->generators - g->conserved);
        fprintf(out, "    det G:       prod_{i,j=1..%ld} (p_i + q_j), p and q the eigenvalues of %s and %s\n", g->r, P, Qg);
        if (g->full_rank) {
            fprintf(out, "    minimum:     sum_{i,j} log(sigma_i + sigma_j) at C = 0, sigma the singular values of %s "
                         "(when its rank is %ld); the minimiser and the dual slice agree\n", Z, g->r);
            fprintf(out, "    bias:        full group: (1/2beta) [sum_i log(2 sigma_i) + 2 sum_{i<j} log(sigma_i + sigma_j)]\n");
            if (f >= 0)
                fprintf(out, "                 diagonal torus (family %d, log-spectral): (1/2beta) sum_k [log(2 sigma_k)] "
                             "when the factors are aligned; the two are different predictions\n", f + 1);
        } else {
            fprintf(out, "    minimum:     not derived: %s has rank below %ld, which the formula sum_{i,j} log(sigma_i "
                         "+ sigma_j) needs\n", Z, g->r);
        }
    }
    for (size_t i = 0; i < d->ngroups; i++) {
        if (!group_coupled(d, i) || (int)i != d->groups[i].component)
            continue;
        char *list = "";
        for (size_t o = 0; o < d->ngroups; o++)
            if (d->groups[o].component == (int)i)
                list = arena_printf(a, "%s%s%zu", list, *list ? ", " : "", o + 1);
        fprintf(out, "  coupled:     groups %s share parameters: one Gram matrix (block tridiagonal along a chain), "
                     "its log det computed as a whole, not as the sum of the groups' own\n", list);
    }
    fprintf(out, "  conservation laws: %ld independent conserved functions\n", sym_conservation_laws(d));
}

static void print_groups_json(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    const ibc_spec *sp = d->spec;
    fprintf(out, ",\n  \"conservation_laws\": %ld,\n  \"groups\": [", sym_conservation_laws(d));
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        fprintf(out, "%s\n    {\"kind\": \"%s\", \"name\": ", i ? "," : "", g->kind == SYM_GROUP_GL ? "gl" : "torus");
        json_str(out, g->text);
        fprintf(out, ", \"generators\": %ld, \"conserved\": %ld, \"coupled\": %s", g->generators, g->conserved,
                group_coupled(d, i) ? "true" : "false");
        if (g->kind == SYM_GROUP_TORUS) {
            const sym_family *f = &d->families[g->family];
            fprintf(out, ", \"family\": %d, \"dual_slice\": [", g->family + 1);
            for (int k = 0; k < f->k; k++) {
                fprintf(out, "%s", k ? ", " : "");
                json_str(out, slice_eq(a, f, k));
            }
            fprintf(out, "], \"gram_det\": ");
            json_str(out, gram_text(a, f));
            fprintf(out, "}");
            continue;
        }
        const char *P = leg_gram(a, sp, &g->left), *Qg = leg_gram(a, sp, &g->right);
        int f = family_of_junction(d, g);
        fprintf(out, ", \"r\": %ld, \"product\": ", g->r);
        json_str(out, junction_product(a, sp, g));
        fprintf(out, ", \"dual_slice\": ");
        json_str(out, arena_printf(a, "C = %s - %s", P, Qg));
        fprintf(out, ", \"gram_det\": ");
        json_str(out, arena_printf(a, "prod_{i,j} (p_i + q_j), p, q eigenvalues of %s, %s", P, Qg));
        fprintf(out, ", \"minimum\": ");
        json_str(out, g->full_rank ? "sum_{i,j} log(sigma_i + sigma_j) at C = 0" : "not derived (rank below r)");
        fprintf(out, ", \"agree\": %s, \"diagonal_family\": %d", g->full_rank ? "true" : "false", f + 1);
        fprintf(out, ", \"bias\": ");
        json_str(out, g->full_rank ? "sum_i log(2 sigma_i) + 2 sum_{i<j} log(sigma_i + sigma_j)" : "none");
        fprintf(out, "}");
    }
    fprintf(out, "\n  ]");
}

static void print_json(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    fprintf(out, "{\n  \"model\": ");
    json_str(out, d->spec->model);
    fprintf(out, ",\n  \"generators\": [");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s\n    {\"name\": ", i ? "," : "");
        json_str(out, f->name);
        fprintf(out, ", \"count\": %ld, \"per_index\": %d, \"blocks\": [", f->count, f->k);
        for (int p = 0; p < f->nblocks; p++) {
            fprintf(out, "%s{\"block\": ", p ? ", " : "");
            json_str(out, f->blocks[p].text);
            fprintf(out, ", \"exponents\": [");
            for (int g = 0; g < f->k; g++)
                fprintf(out, "%s%ld", g ? ", " : "", f->alpha[g][p]);
            fprintf(out, "]");
            if (f->blocks[p].set_name) {   /* the entries (row-major offsets) of each index value's set */
                const sym_block *b = &f->blocks[p];
                fprintf(out, ", \"sets\": [");
                for (long q = 0; q < f->count; q++) {
                    fprintf(out, "%s[", q ? ", " : "");
                    for (long t = b->set_start[q]; t < b->set_start[q + 1]; t++)
                        fprintf(out, "%s%ld", t > b->set_start[q] ? ", " : "", b->set_entries[t]);
                    fprintf(out, "]");
                }
                fprintf(out, "]");
            }
            fprintf(out, "}");
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n  ],\n  \"slice\": [");
    bool first = true;
    for (size_t i = 0; i < d->nfamilies; i++)
        for (int g = 0; g < d->families[i].k; g++) {
            fprintf(out, "%s", first ? "" : ", ");
            json_str(out, slice_eq(a, &d->families[i], g));
            first = false;
        }
    fprintf(out, "],\n  \"families\": [");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s\n    {\"gram_det\": ", i ? "," : "");
        json_str(out, gram_text(a, f));
        fprintf(out, ", \"degree_of_difficulty\": %d, \"minimum\": ", f->degree);
        json_str(out, f->min_text);
        json_balance_bias(out, f, "     ");
        fputc('}', out);
    }
    fprintf(out, "\n  ]");
    print_groups_json(out, a, d);
    /* The whole model's bias: one term per torus family (a sum over its
     * index), unless groups are coupled (then only the joint Gram). */
    bool coupled = false;
    for (size_t i = 0; i < d->ngroups; i++)
        coupled = coupled || group_coupled(d, i);
    fprintf(out, ",\n  \"bias\": {\"coupled\": %s, \"per_family\": [", coupled ? "true" : "false");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s{\"family\": %zu, \"coefficient\": ", i ? ", " : "", i + 1);
        json_str(out, f->coefficient);
        fprintf(out, ", \"invariant\": ");
        json_str(out, f->invariant);
        fprintf(out, ", \"constant\": ");
        json_str(out, f->constant);
        fprintf(out, ", \"terms\": %ld}", f->count);
    }
    fprintf(out, "]}\n}\n");
}

/* A set block's sets (row-major entry offsets), the first few of each. */
static void print_sets(FILE *out, const ibc_spec *sp, const sym_family *f, const sym_block *b)
{
    fprintf(out, "  sets:         %s%s%s: the entries of %s (row-major offsets) that %s rescales:", b->set_name,
            f->index ? "_" : "", f->index ? f->index : "", sp->params[b->param].name,
            f->index ? "the generator at index value i" : "the generator");
    for (long i = 0; i < f->count && i < 6; i++) {
        fprintf(out, "%s %s", i ? ";" : "", b->set_name);
        if (f->index)
            fprintf(out, "_%ld", i);
        fprintf(out, " = {");
        for (long t = b->set_start[i]; t < b->set_start[i + 1] && t < b->set_start[i] + 12; t++)
            fprintf(out, "%s%ld", t > b->set_start[i] ? ", " : "", b->set_entries[t]);
        fprintf(out, "%s}", b->set_start[i + 1] - b->set_start[i] > 12 ? ", ..." : "");
    }
    fprintf(out, "%s\n", f->count > 6 ? "; ..." : "");
}

static void print_text(FILE *out, ibc_arena *a, const sym_derivation *d, bool md)
{
    const char *h = md ? "### " : "";
    const char *code = md ? "`" : "";
    fprintf(out, "%sderivation of %s%s%s\n\n", md ? "## " : "", code, d->spec->model, code);
    fprintf(out, "scaling-exponent inference: %ld unknowns, %ld equations on the %s instance;\n"
                 "%zu generator famil%s\n",
            d->nunknowns, d->nconstraints, d->full ? "full" : "small", d->nfamilies, d->nfamilies == 1 ? "y" : "ies");
    if (d->nfamilies == 0)
        fprintf(out, "\nno rescaling symmetry: no implicit bias from this mechanism\n");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "\n%sfamily %zu: %s\n", h, i + 1, f->name);
        fprintf(out, "  count:        %ld (one block of %d generator%s each)\n", f->count, f->k, f->k == 1 ? "" : "s");
        for (int p = 0; p < f->nblocks; p++)
            if (f->blocks[p].set_name)
                print_sets(out, d->spec, f, &f->blocks[p]);
        for (int g = 0; g < f->k; g++) {
            fprintf(out, "  generator %d:  ", g + 1);
            for (int p = 0; p < f->nblocks; p++)
                if (f->alpha[g][p])
                    fprintf(out, "%s -> e^(%ld t) %s  ", f->blocks[p].text, f->alpha[g][p], f->blocks[p].text);
            fprintf(out, "\n  dual slice:   %s\n", slice_eq(a, f, g));
        }
        fprintf(out, "  det G:        %s\n", gram_text(a, f));
        fprintf(out, "  minimum:      %s\n", f->min_text);
        if (f->min_kind == SYM_MIN_ATTAINED || f->min_kind == SYM_MIN_UNBOUNDED || f->min_kind == SYM_MIN_NOT_ATTAINED) {
            fprintf(out, "  dual weights: ");
            for (int t = 0; t < f->nterms && f->delta[t][0]; t++)   /* merged terms: one weight a group */
                fprintf(out, "%s%s", t ? ", " : "", f->delta[t]);
            fprintf(out, "\n");
        }
        fprintf(out, "  balance:      log det G minimiser %s\n", f->log_det_minimizer);
        fprintf(out, "                dual slice chi = 0  %s\n", f->dual_slice);
        fprintf(out, "                %s\n", f->agree ? "the two agree"
                                                      : "the two differ (docs/theory.md §4: SGD's noise equilibrium is "
                                                        "the dual slice for isotropic per-block noise)");
        if (f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "  bias:         (1/2beta) * sum over %s of [%s log(%s) + %s]\n", f->index ? f->index : "the block",
                    f->coefficient, f->invariant, f->constant);
        bool spectral = false;
        for (int p = 0; p < f->nblocks; p++)
            spectral = spectral || f->blocks[p].slice == SYM_SLICE_COL;
        if (spectral && f->nblocks == 2 && f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "  alignment:    %s equals sigma_%s of the product only when the factors are aligned with "
                         "its SVD (columns along the singular vectors); otherwise it is not a function of the product "
                         "(docs/theory.md §5)\n",
                    f->invariant, f->index);
    }
    print_groups_text(out, a, d, h);
}

static void print_tex(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    fprintf(out, "%% derivation of %s (ibc)\n\\begin{align*}\n", d->spec->model);
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "\\det G_{%zu} &= \\texttt{%s} \\\\\n", i + 1, gram_text(a, f));
        if (f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "\\min_{\\text{orbit}} \\log\\det G_{%zu} &= %s \\log \\texttt{%s} + \\texttt{%s} \\quad (\\times %ld)\\\\\n",
                    i + 1, f->coefficient, f->invariant, f->constant, f->count);
        else
            fprintf(out, "\\min_{\\text{orbit}} \\log\\det G_{%zu} &: \\text{%s} \\\\\n", i + 1, f->log_det_minimizer);
    }
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        if (g->kind != SYM_GROUP_GL)
            continue;
        fprintf(out, "\\det G_{\\mathrm{GL}(%ld)} &= \\prod_{i,j=1}^{%ld} (p_i + q_j), \\quad C = \\texttt{%s} - \\texttt{%s} "
                     "\\quad (%ld \\text{ conserved})\\\\\n",
                g->r, g->r, leg_gram(a, d->spec, &g->left), leg_gram(a, d->spec, &g->right), g->conserved);
    }
    fprintf(out, "\\end{align*}\n%% conservation laws: %ld\n", sym_conservation_laws(d));
}

void sym_print(FILE *out, const sym_derivation *d, sym_format fmt)
{
    ibc_arena *a = arena_new();
    switch (fmt) {
    case SYM_FMT_JSON: print_json(out, a, d); break;
    case SYM_FMT_TEX: print_tex(out, a, d); break;
    case SYM_FMT_MD: print_text(out, a, d, true); break;
    default: print_text(out, a, d, false); break;
    }
    arena_free(a);
}
