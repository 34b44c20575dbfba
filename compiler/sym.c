/*
 * sym.c: the symbolic derivation (theory.md §§2-4).
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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_DIM 3

struct sym_derivation {
    const ibc_spec *spec;
    sym_family *families;
    size_t nfamilies;
    long nunknowns;          /* exponent unknowns of the small instance */
    long nconstraints;
};

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
} infer;

static int small(long d) { return d >= SMALL_DIM ? SMALL_DIM : (int)d; }

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
    int r = small(n->shape.rows < 0 ? SMALL_DIM : n->shape.rows);
    int c = small(n->shape.cols < 0 ? SMALL_DIM : n->shape.cols);
    if (transpose) {
        int t = r;
        r = c;
        c = t;
    }
    xval v = xv_new(in, r, c, false);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++)
            v.nz[i * c + j] = transpose ? op_nonzero(n->name, inverse, j, i) : op_nonzero(n->name, inverse, i, j);
    return v;
}

/* Shapes as matrices: a vector is n x 1, a scalar 1 x 1. */
static void shape_small(const ibc_shape *s, int *r, int *c)
{
    *r = s->rank == 0 ? 1 : small(s->rows < 0 ? SMALL_DIM : s->rows);
    *c = s->rank == 2 ? small(s->cols < 0 ? SMALL_DIM : s->cols) : 1;
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
                  "rescale only in combinations that cancel there (theory.md §3)", f);
    return xv_new(in, a.rows, a.cols, true);
}

static xval infer_expr(infer *in, const ast_node *n)
{
    int r, c;
    shape_small(&n->shape, &r, &c);
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
    if (b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY)
        return arena_printf(a, "%s^2", b->text);
    return arena_printf(a, "||%s||^2", b->text);
}

static const char *block_abs(ibc_arena *a, const sym_family *f, int p)
{
    const sym_block *b = &f->blocks[p];
    if (b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY)
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
        s = arena_printf(a, "%s%s%lu^(%s)", s, first ? "" : "*", primes[i], q_str(a, pexp[i]));
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
 * exp(e_S . t) (theory.md §4), exactly, by the theorems of the
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
        f->agree = slice_ok && !strcmp(f->log_det_minimizer, f->dual_slice);
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
        if (!uniform || *nout >= SYM_MAX_BLOCKS)
            return false;
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
        } else {
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
    default: return p->name;
    }
}

static long slice_count(const ibc_var *p, sym_slice s)
{
    switch (s) {
    case SYM_SLICE_ROW: return p->shape.rows;
    case SYM_SLICE_COL: return p->shape.cols;
    case SYM_SLICE_ENTRY: return p->shape.rows * p->shape.cols;
    default: return 1;
    }
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
                       "entries; the derivation supports rescaling tori only (theory.md §3)");
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
                                gs[g][s].slice == gs[members[m]][t].slice)
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
         * mark them used (they repeat it). */
        long reps = 1;
        for (int g = 0; g < dim; g++) {
            if (used[g] || gidx[g] == gidx[g0] || gidx[g0] < 0)
                continue;
            bool same = ng[g] == ng[g0];
            for (int s = 0; same && s < ng[g]; s++)
                same = gs[g][s].param == gs[g0][s].param && gs[g][s].slice == gs[g0][s].slice &&
                       gs[g][s].expo == gs[g0][s].expo;
            if (same) {
                used[g] = true;
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
    in.param_off = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_rows = arena_alloc(a, (P + 1) * sizeof(int));
    in.param_cols = arena_alloc(a, (P + 1) * sizeof(int));
    for (size_t p = 0; p < P; p++) {
        shape_small(&spec->params[p].shape, &in.param_rows[p], &in.param_cols[p]);
        in.param_off[p] = in.N;
        in.N += in.param_rows[p] * in.param_cols[p];
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
    long *basis;
    int dim = nullspace(a, in.eq, in.neq, in.N, &basis);
    sym_derivation *d = arena_alloc(a, sizeof *d);
    d->spec = spec;
    d->nunknowns = in.N;
    d->nconstraints = (long)in.neq;
    if (!build_families(&in, d, basis, dim))
        return NULL;
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
            fprintf(out, "]}");
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
    /* The first family's values at the top level, as the schema
     * names them (most specs have one family). */
    if (d->nfamilies > 0) {
        const sym_family *f = &d->families[0];
        fprintf(out, ",\n  \"gram_det\": ");
        json_str(out, gram_text(a, f));
        json_balance_bias(out, f, "  ");
    }
    fprintf(out, "\n}\n");
}

static void print_text(FILE *out, ibc_arena *a, const sym_derivation *d, bool md)
{
    const char *h = md ? "### " : "";
    const char *code = md ? "`" : "";
    fprintf(out, "%sderivation of %s%s%s\n\n", md ? "## " : "", code, d->spec->model, code);
    fprintf(out, "scaling-exponent inference: %ld unknowns, %ld equations on the small instance;\n"
                 "%zu generator famil%s\n",
            d->nunknowns, d->nconstraints, d->nfamilies, d->nfamilies == 1 ? "y" : "ies");
    if (d->nfamilies == 0)
        fprintf(out, "\nno rescaling symmetry: no implicit bias from this mechanism\n");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "\n%sfamily %zu: %s\n", h, i + 1, f->name);
        fprintf(out, "  count:        %ld (one block of %d generator%s each)\n", f->count, f->k, f->k == 1 ? "" : "s");
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
            for (int t = 0; t < f->nterms; t++)
                fprintf(out, "%s%s", t ? ", " : "", f->delta[t]);
            fprintf(out, "\n");
        }
        fprintf(out, "  balance:      log det G minimiser %s\n", f->log_det_minimizer);
        fprintf(out, "                dual slice chi = 0  %s\n", f->dual_slice);
        fprintf(out, "                %s\n", f->agree ? "the two agree"
                                                      : "the two differ (theory.md §4: SGD's noise equilibrium is "
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
                         "(theory.md §5)\n",
                    f->invariant, f->index);
    }
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
    fprintf(out, "\\end{align*}\n");
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
