/*
 * design.c: inverse design (docs/theory.md §5) and its closed loop.
 *
 * log_sparsity(A @ w), depth L (or strength c = 2(L-1)/L):
 *     z = a1 * ... * aL,  w = A^-1 z
 *   per coordinate det G = L |z|^(2(L-1)/L), so the bias is
 *   (2(L-1)/L) sum_i log|(A w)_i| + n log L.
 * log_spectral(A @ W), rank r:  A W = U V',  per column 2 ||U_k|| ||V_k||,
 *   equal to 2 sigma_k only when U, V are aligned with the SVD.
 * log_spectral depth L: A W = W_L ... W_1; under alignment each mode is the
 *   depth-L Hadamard chain: (2(L-1)/L) sum_k log sigma_k + r log L.
 *
 * A must be square and invertible: otherwise the factorised model has
 * other symmetries and realises a different prior, so the compiler stops
 * with the failing property, the kernel or co-kernel dimension and the
 * fix.  Structured inverses are applied in O(n) (cumsum, transpose of an
 * orthonormal basis, reciprocal diagonal); a dense A is factorised once
 * with LAPACKE and its condition number is reported.
 *
 * The synthesised model is an ordinary spec.  It goes back through
 * sym_derive, and a derived bias that differs from the requested one in
 * coefficient, constant or invariant is an internal error.
 */
#include "design.h"

#include "ibrt_io.h"

#include <errno.h>
#include <gmp.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ operators */

/* A dense operator from a CSV or .npy file, read by the runtime's strict
 * reader (runtime/read.c), the one the trainer uses on the same file, so
 * that the operator analysed here is the one trained with; errors name
 * the file, line and column (or the .npy header field). */
static bool read_matrix(ibc_arena *a, const char *path, long *rows, long *cols, double **data, const char **err)
{
    size_t r, c;
    double *v;
    ibrt_error e;
    if (ibrt_io_read_matrix(path, &r, &c, &v, &e) != IBRT_OK) {
        *err = arena_printf(a, "%s", e.msg);
        return false;
    }
    *rows = (long)r;
    *cols = (long)c;
    *data = arena_alloc(a, r * c * sizeof(double));
    memcpy(*data, v, r * c * sizeof(double));
    free(v);
    return true;
}

static const char *spec_dir_path(ibc_arena *a, const ibc_spec *spec, const char *file)
{
    if (file[0] == '/')
        return file;
    const char *path = spec->src ? spec->src->path : ".";
    const char *slash = strrchr(path, '/');
    return slash ? arena_printf(a, "%.*s/%s", (int)(slash - path), path, file) : file;
}

/* Dense analysis: rank and condition from the singular values, and the
 * LU solve checked on a random right-hand side. */
static void dense_analyse(double *A, long m, long n, design_operator *op)
{
    long k = m < n ? m : n;
    double *copy = malloc((size_t)(m * n) * sizeof *copy), *s = malloc((size_t)k * sizeof *s);
    double *superb = malloc((size_t)(k + 1) * sizeof *superb);
    memcpy(copy, A, (size_t)(m * n) * sizeof *copy);
    LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)m, (lapack_int)n, copy, (lapack_int)n, s, NULL, 1, NULL, 1,
                   superb);
    long rank = 0;
    double tol = (double)(m > n ? m : n) * s[0] * 2.220446049250313e-16;
    for (long i = 0; i < k; i++)
        if (s[i] > tol)
            rank++;
    op->kernel_dim = n - rank;
    op->cokernel_dim = m - rank;
    op->invertible = m == n && rank == n;
    op->condition = rank == k && s[k - 1] > 0 ? s[0] / s[k - 1] : INFINITY;
    if (op->invertible) {
        /* LU once; solve A x = z for a fixed pseudo-random z; residual. */
        lapack_int *ipiv = malloc((size_t)n * sizeof *ipiv);
        double *z = malloc((size_t)n * sizeof *z), *x = malloc((size_t)n * sizeof *x);
        memcpy(copy, A, (size_t)(n * n) * sizeof *copy);
        unsigned long long st = 0x243f6a8885a308d3ull;
        for (long i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            z[i] = (double)(st >> 11) / 9007199254740992.0 - 0.5;
            x[i] = z[i];
        }
        LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, copy, (lapack_int)n, ipiv);
        LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'N', (lapack_int)n, 1, copy, (lapack_int)n, ipiv, x, 1);
        double res = 0;
        for (long i = 0; i < n; i++) {
            double r = -z[i];
            for (long j = 0; j < n; j++)
                r += A[i * n + j] * x[j];
            if (fabs(r) > res)
                res = fabs(r);
        }
        op->residual = res;
        free(ipiv);
        free(z);
        free(x);
    }
    free(copy);
    free(s);
    free(superb);
}

/* A composition A @ B (opn): invertible when both factors are, its
 * inverse the factors' inverses in reverse order, its kernel and
 * co-kernel dimensions exact when a factor is invertible and lower bounds
 * otherwise; false after a located error (a factor that cannot be read,
 * or shapes that do not fit). */
static bool compose_analyse(ibc_arena *ar, const ibc_spec *spec, ast_node *opn, ibc_diag *diag, design_operator *op)
{
    design_operator fa, fb;
    if (!design_operator_analyse(ar, spec, opn->lhs, diag, &fa, NULL) ||
        !design_operator_analyse(ar, spec, opn->rhs, diag, &fb, NULL))
        return false;
    op->text = arena_printf(ar, "%s @ %s", fa.text, fb.text);
    op->rows = fa.rows;
    op->cols = fb.cols;
    if (fa.cols != fb.rows) {
        diag_error(diag, opn->loc, "operator composition %s @ %s does not fit: %ld x %ld times %ld x %ld", fa.text,
                   fb.text, fa.rows, fa.cols, fb.rows, fb.cols);
        return false;
    }
    op->invertible = fa.invertible && fb.invertible;
    /* rank(A B) = rank(B) when A is invertible, rank(A) when B is;
     * otherwise only the bounds ker(A B) >= ker(B), rank(A B) <=
     * rank(A) (and the transposed pair for the co-kernel). */
    long ra = fa.cols - fa.kernel_dim, rb = fb.cols - fb.kernel_dim;
    if (fa.invertible || fb.invertible) {
        long rk = fa.invertible ? rb : ra;
        op->kernel_dim = fb.cols - rk;
        op->cokernel_dim = fa.rows - rk;
    } else {
        op->kernel_dim = fb.kernel_dim > fb.cols - ra ? fb.kernel_dim : fb.cols - ra;
        op->cokernel_dim = fa.cokernel_dim > fa.rows - rb ? fa.cokernel_dim : fa.rows - rb;
        op->dims_lower_bound = true;
    }
    op->inverse = arena_printf(ar, "%s, then %s", fa.inverse ? fa.inverse : "?", fb.inverse ? fb.inverse : "?");
    op->condition = fa.condition * fb.condition;   /* an upper bound */
    op->residual = fa.residual > fb.residual ? fa.residual : fb.residual;
    op->dense = fa.dense || fb.dense;
    return true;
}

bool design_operator_analyse(ibc_arena *a, const ibc_spec *spec, ast_node *opn, ibc_diag *diag,
                             design_operator *op, double **dense)
{
    memset(op, 0, sizeof *op);
    op->condition = 1;
    op->rows = opn->shape.rows;
    op->cols = opn->shape.cols;
    if (dense)
        *dense = NULL;
    if (opn->kind == AST_BINOP && opn->op == '@')
        return compose_analyse(a, spec, opn, diag, op);
    ast_node *n = opn;
    bool transposed = false;
    if (n->kind == AST_TRANSPOSE) {
        transposed = true;
        n = n->lhs;
    }
    if (n->kind != AST_CALL) {
        diag_error(diag, opn->loc, "a design operator is one of identity, diff, dct, cosine, diag, matrix, "
                                   "their transposes and compositions (A @ B)");
        return false;
    }
    const char *name = n->name;
    ibc_builtin b = n->builtin;
    long size = n->shape.rows;
    op->text = arena_printf(a, "%s(%s)%s", name,
                            b == IBC_B_matrix ? arena_printf(a, "\"%s\"", n->kids[0]->text)
                            : b == IBC_B_diag ? "[...]"
                                              : arena_printf(a, "%ld", n->shape.cols),
                            transposed ? "'" : "");
    op->invertible = true;
    if (b == IBC_B_identity) {
        op->inverse = "identity";
    } else if (b == IBC_B_diff) {
        op->inverse = transposed ? "reverse cumulative sum, O(n)" : "cumulative sum, O(n)";
    } else if (b == IBC_B_dct || b == IBC_B_cosine) {
        op->inverse = "transpose (orthonormal basis)";
    } else if (b == IBC_B_diag) {
        op->inverse = "reciprocal diagonal, O(n)";
        ast_node *l = n->kids[0];
        for (size_t i = 0; i < l->nkids; i++)
            if (l->kids[i]->value == 0) {
                op->invertible = false;
                op->kernel_dim++;
                op->cokernel_dim++;
            }
    } else if (b == IBC_B_diff_open) {
        op->invertible = false;
        /* (n-1) x n: the kernel is the constants; diff_open(n)' is
         * n x (n-1) with a trivial kernel and the constants as co-kernel. */
        op->kernel_dim = transposed ? 0 : 1;
        op->cokernel_dim = transposed ? 1 : 0;
        (void)size;
    } else if (b == IBC_B_matrix) {
        const char *path = spec_dir_path(a, spec, n->kids[0]->text);
        const char *err;
        long r, c;
        double *A;
        if (!read_matrix(a, path, &r, &c, &A, &err)) {
            diag_error(diag, n->kids[0]->loc, "%s", err);
            return false;
        }
        if (transposed) {
            double *t = arena_alloc(a, (size_t)(r * c) * sizeof *t);
            for (long i = 0; i < r; i++)
                for (long j = 0; j < c; j++)
                    t[j * r + i] = A[i * c + j];
            A = t;
            long tmp = r;
            r = c;
            c = tmp;
        }
        op->rows = r;
        op->cols = c;
        op->dense = true;
        dense_analyse(A, r, c, op);
        op->inverse = "LU factorisation (LAPACKE dgetrf once, dgetrs per use)";
        if (dense)
            *dense = A;
    } else {
        diag_error(diag, n->name_loc, "'%s' is not an operator", name);
        return false;
    }
    return true;
}

/* --------------------------------------------------------- synthesis */

static ast_node *mk(ibc_arena *a, ast_kind k, ibc_loc loc, ibc_shape sh)
{
    ast_node *n = arena_alloc(a, sizeof *n);
    n->kind = k;
    n->loc = loc;
    n->name_loc = loc;
    n->shape = sh;
    return n;
}

static ast_node *mk_ident(ibc_arena *a, ibc_loc loc, const char *name, int ref, ibc_shape sh)
{
    ast_node *n = mk(a, AST_IDENT, loc, sh);
    n->name = name;
    n->ref = ref;
    n->ref_kind = IBC_REF_PARAM;
    return n;
}

static ast_node *mk_bin(ibc_arena *a, int op, ast_node *l, ast_node *r, ibc_shape sh)
{
    ast_node *n = mk(a, AST_BINOP, l->loc, sh);
    n->op = op;
    n->lhs = l;
    n->rhs = r;
    return n;
}

static ast_node *mk_call(ibc_arena *a, ibc_builtin b, ast_node *x, ast_node *y, ibc_shape sh)
{
    ast_node *n = mk(a, AST_CALL, x->loc, sh);
    n->name = ibc_builtins[b].name;
    n->builtin = b;
    n->nkids = y ? 2 : 1;
    n->kids = arena_alloc(a, 2 * sizeof *n->kids);
    n->kids[0] = x;
    n->kids[1] = y;
    return n;
}

/* Deep copy of an expression, with the designed parameter replaced and
 * other parameter references renumbered. */
static ast_node *clone_subst(ibc_arena *a, const ast_node *n, int param, ast_node *repl, const int *remap)
{
    if (!n)
        return NULL;
    if (n->kind == AST_IDENT && n->ref_kind == IBC_REF_PARAM && n->ref == param)
        return repl;
    ast_node *c = arena_alloc(a, sizeof *c);
    *c = *n;
    if (n->kind == AST_IDENT && n->ref_kind == IBC_REF_PARAM)
        c->ref = remap[n->ref];
    c->lhs = clone_subst(a, n->lhs, param, repl, remap);
    c->rhs = clone_subst(a, n->rhs, param, repl, remap);
    if (n->nkids) {
        c->kids = arena_alloc(a, n->nkids * sizeof *c->kids);
        for (size_t i = 0; i < n->nkids; i++)
            c->kids[i] = clone_subst(a, n->kids[i], param, repl, remap);
    }
    return c;
}

static ast_node *factor_init(const ibc_design *d, const char *name)
{
    ast_node *all = NULL;
    for (size_t i = 0; i < d->ninits; i++) {
        if (!strcmp(d->inits[i]->name, name))
            return d->inits[i]->lhs;
        if (!strcmp(d->inits[i]->name, "init"))
            all = d->inits[i]->lhs;
    }
    return all;
}

/* 2(L-1)/L in lowest terms (the strength a depth-L product gives) */
static sym_rat depth_coef(long L);

/* The deepest design the closed loop's derivation handles: L factors are
 * one family of L - 1 generators per index over L blocks. */
#define DESIGN_MAX_DEPTH (SYM_MAX_GEN + 1 < SYM_MAX_BLOCKS ? SYM_MAX_GEN + 1 : SYM_MAX_BLOCKS)

static const char *rational_coef(ibc_arena *a, long L);

/* The depth sema found for the strength c = 2(L-1)/L (exactly; ibc.h),
 * or the error listing the achievable strengths. */
static bool strength_depth(ibc_arena *a, const ibc_design *d, ibc_diag *diag, long *L, const char **coef)
{
    if (!d->strength_depth) {
        char *list = "";
        for (long l = 2; l <= DESIGN_MAX_DEPTH; l++)
            list = arena_printf(a, "%s%s%s", list, l == 2 ? "" : l == DESIGN_MAX_DEPTH ? " and " : ", ",
                                rational_coef(a, l));
        diag_error(diag, d->strength_node->loc,
                   "strength %s is not achievable: a depth-L Hadamard product gives 2(L-1)/L, so the achievable "
                   "strengths are %s (L = 2, ..., %d, the deepest the derivation that checks the design handles)",
                   d->strength, list, DESIGN_MAX_DEPTH);
        return false;
    }
    *L = d->strength_depth;
    sym_rat c = depth_coef(*L);
    *coef = c.den == 1 ? arena_printf(a, "%ld", c.num) : arena_printf(a, "%ld/%ld", c.num, c.den);
    return true;
}

/* 2(L-1)/L in lowest terms (the strength a depth-L product gives) */
static sym_rat depth_coef(long L)
{
    long num = 2 * (L - 1), den = L, g = num, h = den;
    while (h) {
        long t = g % h;
        g = h;
        h = t;
    }
    return (sym_rat){ num / g, den / g };
}

static const char *rational_coef(ibc_arena *a, long L)
{
    sym_rat c = depth_coef(L);
    return c.den == 1 ? arena_printf(a, "%ld", c.num) : arena_printf(a, "%ld/%ld", c.num, c.den);
}

/* Whether a derived constant (prime exponents over sym_primes) is log(n). */
static bool constant_is_log(const sym_family *f, long n)
{
    for (int i = 0; i < SYM_NPRIMES; i++) {
        long e = 0;
        while (n % (long)sym_primes[i] == 0) {
            n /= (long)sym_primes[i];
            e++;
        }
        if (f->const_exp[i].num != e || f->const_exp[i].den != 1)
            return false;
    }
    return n == 1;
}

/* The closed loop's comparison, on exact values: the designed model has
 * one family, its orbit minimum attained, its bias coefficient coef, its
 * constant log(n), and its invariant the product of every block's norm
 * to the power 1 (each block a scalar, an entry or a column). */
static bool derived_bias_is(const sym_family *fam, sym_rat coef, long n)
{
    if (fam->min_kind != SYM_MIN_ATTAINED || !fam->coef.den || fam->coef.num != coef.num ||
        fam->coef.den != coef.den || !constant_is_log(fam, n) || !fam->monomial)
        return false;
    for (int p = 0; p < fam->nblocks; p++) {
        const sym_block *b = &fam->blocks[p];
        if (fam->inv_exp[p] != 1 ||
            !(b->slice == SYM_SLICE_COL || ((b->slice == SYM_SLICE_WHOLE || b->slice == SYM_SLICE_ENTRY) && !b->set_name)))
            return false;
    }
    return true;
}

/* A new spec sharing everything but the parameters and the predictor. */
static ibc_spec *spec_with_factors(ibc_arena *a, const ibc_spec *spec, int param, ibc_var *factors, int nf,
                                   int **remap_out)
{
    ibc_spec *s = arena_alloc(a, sizeof *s);
    *s = *spec;
    s->nparams = spec->nparams - 1 + (size_t)nf;
    s->params = arena_alloc(a, s->nparams * sizeof *s->params);
    int *remap = arena_alloc(a, (spec->nparams + 1) * sizeof(int));
    size_t k = 0;
    for (int i = 0; i < nf; i++)
        s->params[k++] = factors[i];
    for (size_t p = 0; p < spec->nparams; p++) {
        if ((int)p == param)
            continue;
        remap[p] = (int)k;
        s->params[k++] = spec->params[p];
    }
    s->design.kind = DESIGN_NONE;
    s->nbaselines = 0;
    *remap_out = remap;
    return s;
}

static ast_node *apply_inverse(ibc_arena *a, ast_node *opn, ast_node *z)
{
    if (opn->kind == AST_BINOP)   /* (A B)^-1 z = B^-1 (A^-1 z) */
        return apply_inverse(a, opn->rhs, apply_inverse(a, opn->lhs, z));
    ast_node *n = opn->kind == AST_TRANSPOSE ? opn->lhs : opn;
    ibc_builtin b = n->builtin;
    bool tr = opn->kind == AST_TRANSPOSE;
    if (b == IBC_B_identity)
        return z;
    if (b == IBC_B_diff && !tr && z->shape.rank == 1)   /* cumsum takes vectors only */
        return mk_call(a, IBC_B_cumsum, z, NULL, z->shape);
    if (b == IBC_B_dct || b == IBC_B_cosine) {
        if (tr)
            return mk_bin(a, '@', n, z, z->shape);   /* (D')^-1 = D */
        ast_node *t = mk(a, AST_TRANSPOSE, n->loc, n->shape);
        t->lhs = n;
        return mk_bin(a, '@', t, z, z->shape);
    }
    return mk_call(a, IBC_B_solve, opn, z, z->shape);
}

/* The depth L of the design (from depth or strength, 2 by default) within
 * what the closed loop's derivation handles: r->depth, coefficient, coef
 * and the requested constant; false after a located error. */
static bool design_depth(ibc_arena *a, const ibc_design *d, ibc_diag *diag, design_result *r)
{
    ibc_loc at = d->decl->loc;
    long L = d->depth ? d->depth : 2;
    const char *coef = NULL;
    if (d->strength && !strength_depth(a, d, diag, &L, &coef))
        return false;
    /* The closed loop derives a model of L factors: one family of L - 1
     * generators per index over L blocks, which the derivation bounds. */
    if (L - 1 > SYM_MAX_GEN || L > SYM_MAX_BLOCKS) {
        int most = DESIGN_MAX_DEPTH;
        diag_error(diag, d->strength ? d->strength_node->loc : at,
                   "depth %ld needs %ld factors, but the derivation that checks the design handles at most %d "
                   "(%d generators per index): use a depth of at most %d (strength at most %s)",
                   L, L, most, SYM_MAX_GEN, most, rational_coef(a, most));
        return false;
    }
    if (!coef)
        coef = rational_coef(a, L);
    r->depth = L;
    r->coefficient = coef;
    r->coef = depth_coef(L);
    r->constant = arena_printf(a, "log(%ld)", L);
    if (d->kind == DESIGN_LOG_SPECTRAL && d->depth <= 0)
        r->constant = "log(2)";
    return true;
}

/* The design operator analysed into r->op, and required to fit the
 * parameter and to be square and invertible (else a located error naming
 * the failing property and the fix; false); warns when it is
 * ill-conditioned.  Sets r->requested. */
static bool operator_usable(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag, design_result *r)
{
    const ibc_design *d = &spec->design;
    const ibc_var *P = &spec->params[d->param];
    if (!design_operator_analyse(a, spec, d->op, diag, &r->op, NULL))
        return false;
    design_operator *op = &r->op;
    if (op->cols != P->shape.rows) {
        diag_error(diag, d->op->loc, "operator %s is %ld x %ld, but %s has %ld %s; the operator must act on %s",
                   op->text, op->rows, op->cols, P->name, P->shape.rows, P->shape.rank == 2 ? "rows" : "entries",
                   P->shape.rank == 2 ? "its columns" : "it");
        return false;
    }
    if (op->rows != op->cols || !op->invertible) {
        if (d->op->kind == AST_BINOP) {
            const char *bound = op->dims_lower_bound ? "at least " : "";
            diag_error(diag, d->op->loc,
                       "operator %s is not invertible: it is %ld x %ld with a kernel of dimension %s%ld and a "
                       "co-kernel of dimension %s%ld (a factor of the composition is singular or not square); "
                       "design needs a square invertible operator: use invertible factors (diff(n), not "
                       "diff_open(n)), or add an explicit unpenalised kernel component w = A^+ z + N c",
                       op->text, op->rows, op->cols, bound, op->kernel_dim, bound, op->cokernel_dim);
            return false;
        }
        ibc_builtin opb = d->op->kind == AST_TRANSPOSE ? d->op->lhs->builtin : d->op->builtin;
        if (opb == IBC_B_diff_open)
            diag_error(diag, d->op->loc,
                       "operator %s is not invertible: it is %ld x %ld with a %s of dimension 1 (the "
                       "constants), so the factorised model would have extra, non-rescaling symmetries; use "
                       "diff(%ld), the invertible n x n difference (z_0 = w_0), or add an explicit unpenalised "
                       "kernel component",
                       op->text, op->rows, op->cols, d->op->kind == AST_TRANSPOSE ? "co-kernel" : "kernel",
                       op->rows > op->cols ? op->rows : op->cols);
        else if (op->rows != op->cols)
            diag_error(diag, d->op->loc,
                       "operator %s is %ld x %ld, not square: %s %ld; log-sparsity design needs a "
                       "square invertible operator (for a %s frame, parameterise w = A^+ z + N c with an explicit "
                       "unpenalised kernel component)",
                       op->text, op->rows, op->cols, op->rows > op->cols ? "its co-kernel has dimension" : "its kernel has dimension",
                       op->rows > op->cols ? op->cokernel_dim : op->kernel_dim,
                       op->rows > op->cols ? "redundant (tall)" : "wide");
        else
            diag_error(diag, d->op->loc,
                       "operator %s is singular: kernel of dimension %ld; make it invertible, or add an explicit "
                       "unpenalised kernel component w = A^+ z + N c",
                       op->text, op->kernel_dim);
        return false;
    }
    if (op->condition > 1e8)
        diag_warning(diag, d->op->loc, "operator %s is ill-conditioned (condition number %.3g > 1e8): its inverse "
                                       "amplifies noise", op->text, op->condition);
    r->requested = arena_printf(a, "%s(%s @ %s)", d->kind == DESIGN_LOG_SPECTRAL ? "log_spectral" : "log_sparsity",
                                op->text, P->name);
    return true;
}

/* The factors replacing parameter P, into f (at most 64; returns how
 * many): u, v or a1..aL of P's shape (sparsity), U, V of rank r->rank
 * (spectral), or W_L .. W_1 (spectral chain); sets r->rank. */
static int design_factors(ibc_arena *a, const ibc_design *d, const ibc_var *P, design_result *r, ibc_var *f)
{
    bool spectral = d->kind == DESIGN_LOG_SPECTRAL, chain = spectral && d->depth > 0;
    long L = r->depth;
    int nf = 0;
    ibc_shape sh = P->shape;
    if (!spectral) {
        for (long k = 1; k <= L; k++) {
            const char *name = L == 2 ? (k == 1 ? "u" : "v") : arena_printf(a, "a%ld", k);
            f[nf++] = (ibc_var){ name, sh, d->decl, factor_init(d, name), true };
        }
    } else if (!chain) {
        long rk = d->rank ? d->rank : (sh.rows < sh.cols ? sh.rows : sh.cols);
        r->rank = rk;
        f[nf++] = (ibc_var){ "U", { 2, sh.rows, rk }, d->decl, factor_init(d, "U"), true };
        f[nf++] = (ibc_var){ "V", { 2, sh.cols, rk }, d->decl, factor_init(d, "V"), true };
    } else {
        long rk = d->rank ? d->rank : (sh.rows < sh.cols ? sh.rows : sh.cols);
        r->rank = rk;
        for (long k = L; k >= 1; k--) {
            long rows = k == L ? sh.rows : rk, cols = k == 1 ? sh.cols : rk;
            const char *name = arena_printf(a, "W%ld", k);
            f[nf++] = (ibc_var){ name, { 2, rows, cols }, d->decl, factor_init(d, name), true };
        }
    }
    return nf;
}

/* z, the factors' product that A @ P equals (a Hadamard product, U @ V'
 * or the chain W_L @ ... @ W_1, the factors numbered 0.. as parameters of
 * the designed spec), of shape sh; *ftext its text. */
static ast_node *factor_product(ibc_arena *a, const ibc_design *d, const ibc_var *f, int nf, ibc_shape sh,
                                const char **ftext)
{
    bool spectral = d->kind == DESIGN_LOG_SPECTRAL, chain = spectral && d->depth > 0;
    ibc_loc at = d->decl->loc;
    ast_node *z;
    if (!spectral) {
        z = mk_ident(a, at, f[0].name, 0, sh);
        *ftext = f[0].name;
        for (int k = 1; k < nf; k++) {
            z = mk_bin(a, '*', z, mk_ident(a, at, f[k].name, k, sh), sh);
            *ftext = arena_printf(a, "%s * %s", *ftext, f[k].name);
        }
    } else if (!chain) {
        ast_node *vt = mk(a, AST_TRANSPOSE, at, (ibc_shape){ 2, f[1].shape.cols, f[1].shape.rows });
        vt->lhs = mk_ident(a, at, "V", 1, f[1].shape);
        z = mk_bin(a, '@', mk_ident(a, at, "U", 0, f[0].shape), vt, sh);
        *ftext = "U @ V'";
    } else {
        z = mk_ident(a, at, f[0].name, 0, f[0].shape);
        *ftext = f[0].name;
        for (int k = 1; k < nf; k++) {
            ibc_shape s2 = { 2, f[0].shape.rows, f[k].shape.cols };
            z = mk_bin(a, '@', z, mk_ident(a, at, f[k].name, k, f[k].shape), s2);
            *ftext = arena_printf(a, "%s @ %s", *ftext, f[k].name);
        }
    }
    return z;
}

/* "w = cumsum(u * v)", "w = dct(8)^-1 (u * v)", ...: the parameter as
 * the operator's inverse applied to the factors' product ftext. */
static const char *factorisation_text(ibc_arena *a, const ibc_design *d, const ibc_var *P, const design_operator *op,
                                      const char *ftext)
{
    ibc_builtin opb = d->op->kind == AST_TRANSPOSE ? d->op->lhs->builtin : d->op->builtin;   /* NONE: a composition */
    if (opb == IBC_B_identity)
        return arena_printf(a, "%s = %s", P->name, ftext);
    if (opb == IBC_B_diff && d->op->kind != AST_TRANSPOSE && P->shape.rank == 1)
        return arena_printf(a, "%s = cumsum(%s)", P->name, ftext);
    return arena_printf(a, d->op->kind == AST_BINOP ? "%s = (%s)^-1 (%s)" : "%s = %s^-1 (%s)", P->name, op->text,
                        ftext);
}

/* The spec the closed loop derives: the designed spec ds, or for a
 * spectral chain its aligned per-mode restriction s_L * ... * s_1 (docs/
 * theory.md §5); sets r->alignment for spectral designs. */
static const ibc_spec *closed_loop_spec(ibc_arena *a, const ibc_design *d, design_result *r, ibc_spec *ds)
{
    bool spectral = d->kind == DESIGN_LOG_SPECTRAL, chain = spectral && d->depth > 0;
    ibc_loc at = d->decl->loc;
    long L = r->depth;
    if (chain) {
        /* Under alignment each mode of the chain is the scalar chain
         * s_L ... s_1 (docs/theory.md §5); derive that restriction. */
        ibc_spec *m = arena_alloc(a, sizeof *m);
        *m = *ds;
        m->nparams = (size_t)L;
        m->params = arena_alloc(a, (size_t)L * sizeof *m->params);
        ibc_shape one = { 0, 1, 1 };
        ast_node *e = NULL;
        for (long k = 0; k < L; k++) {
            m->params[k] = (ibc_var){ arena_printf(a, "s%ld", L - k), one, d->decl, NULL, true };
            ast_node *id = mk_ident(a, at, m->params[k].name, (int)k, one);
            e = e ? mk_bin(a, '*', e, id, one) : id;
        }
        m->predict = e;
        m->model = arena_printf(a, "%s (one aligned mode)", ds->model);
        r->alignment = arena_printf(a, "under alignment (W_l = P_l diag(s_l) P_(l-1)', orthonormal P_l) each of the %ld "
                                       "modes is the scalar chain s_%ld ... s_1 with sigma_k = prod_l s_l,k; the "
                                       "derivation below is of one mode",
                                    r->rank, L);
        return m;
    }
    if (spectral)
        r->alignment = "the bias is sum_k log sigma_k(Z) + r log 2 only when U = P D1, V = Q D2 with P, Q the "
                       "singular vectors of Z (SVD-aligned factors); for other factors 2||U_k|| ||V_k|| is not a "
                       "function of Z";
    return ds;
}

/* The closed loop's verdict on r->derivation, exactly: one family with the
 * requested coefficient, constant and invariant, as many blocks as
 * factors and one generator per index value of P (rows: P's rows); false
 * after the internal error naming both biases. */
static bool closed_loop_matches(const ibc_design *d, design_result *r, long rows, ibc_diag *diag)
{
    bool spectral = d->kind == DESIGN_LOG_SPECTRAL, chain = spectral && d->depth > 0;
    long L = r->depth;
    bool ok = sym_nfamilies(r->derivation) == 1;
    const sym_family *fam = ok ? sym_family_at(r->derivation, 0) : NULL;
    if (ok)
        ok = derived_bias_is(fam, spectral && !chain ? (sym_rat){ 1, 1 } : r->coef, spectral && !chain ? 2 : L) &&
             fam->nblocks == (spectral && !chain ? 2 : (int)L) &&
             fam->count == (chain ? 1 : spectral ? r->rank : rows);
    if (!ok)
        diag_error(diag, d->decl->loc,
                   "internal error: the synthesised parameterisation %s does not derive the requested bias "
                   "(requested coefficient %s, constant %s; derived %s, %s)",
                   r->factorisation, spectral && !chain ? "1" : r->coefficient, r->constant,
                   fam ? fam->coefficient : "?", fam ? fam->constant : "?");
    return ok;
}

/* The steps of docs/theory.md §5 in order: depth, operator, factors, the
 * designed spec (the parameter replaced by A^-1 applied to the factors'
 * product), then the closed loop: its derivation must give the requested
 * bias exactly. */
design_result *design_synthesise(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag)
{
    const ibc_design *d = &spec->design;
    design_result *r = arena_alloc(a, sizeof *r);
    r->kind = d->kind;
    const ibc_var *P = &spec->params[d->param];
    if (!design_depth(a, d, diag, r) || !operator_usable(a, spec, diag, r))
        return NULL;
    ibc_var f[64];
    int nf = design_factors(a, d, P, r, f);
    int *remap;
    ibc_spec *ds = spec_with_factors(a, spec, d->param, f, nf, &remap);
    const char *ftext;
    ast_node *z = factor_product(a, d, f, nf, P->shape, &ftext);
    r->replacement = apply_inverse(a, d->op, z);
    r->factorisation = factorisation_text(a, d, P, &r->op, ftext);
    ds->predict = clone_subst(a, spec->predict, d->param, r->replacement, remap);
    r->designed = ds;

    /* Closed loop: derive the designed model and compare exactly. */
    r->derivation = sym_derive(a, closed_loop_spec(a, d, r, ds), diag);
    if (!r->derivation || !closed_loop_matches(d, r, P->shape.rows, diag))
        return NULL;
    r->matches = true;
    return r;
}

/* A JSON string: operator texts hold quotes (matrix("A.csv")) and file
 * names may hold any byte. */
static void json_str(FILE *out, const char *key, const char *v)
{
    fprintf(out, "\"%s\": \"", key);
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputs("\", ", out);
}

void design_print(FILE *out, const design_result *r, sym_format fmt)
{
    if (fmt == SYM_FMT_JSON) {
        fputc('{', out);
        json_str(out, "requested", r->requested);
        fprintf(out, "\"depth\": %ld, ", r->depth);
        json_str(out, "coefficient", r->coefficient);
        json_str(out, "constant", r->constant);
        json_str(out, "factorisation", r->factorisation);
        fprintf(out, "\"operator\": {");
        json_str(out, "text", r->op.text);
        fprintf(out, "\"shape\": [%ld, %ld], \"invertible\": %s, ", r->op.rows, r->op.cols,
                r->op.invertible ? "true" : "false");
        json_str(out, "inverse", r->op.inverse);
        if (isfinite(r->op.condition))
            fprintf(out, "\"condition\": %.6g, \"residual\": %.3g}, ", r->op.condition, r->op.residual);
        else
            fprintf(out, "\"condition\": null, \"residual\": %.3g}, ", r->op.residual);
        if (r->alignment)
            json_str(out, "alignment", r->alignment);
        fprintf(out, "\"matches\": %s}\n", r->matches ? "true" : "false");
        return;
    }
    const char *h = fmt == SYM_FMT_MD ? "## " : "";
    fprintf(out, "%sinverse design\n\n", h);
    fprintf(out, "requested:      %s", r->requested);
    if (r->kind == DESIGN_LOG_SPARSITY)
        fprintf(out, "  ->  %s sum_i log|(A w)_i| + n %s\n", r->coefficient, r->constant);
    else
        fprintf(out, "  ->  %s sum_k log sigma_k + r %s\n", r->depth > 2 ? r->coefficient : "1", r->constant);
    fprintf(out, "operator:       %s, %ld x %ld, invertible; inverse applied by %s", r->op.text, r->op.rows,
            r->op.cols, r->op.inverse);
    if (r->op.residual > 0 || r->op.dense)
        fprintf(out, "; condition number %.4g, LU residual %.2e", r->op.condition, r->op.residual);
    fprintf(out, "\nfactorisation:  %s (depth %ld)\n", r->factorisation, r->depth);
    if (r->alignment)
        fprintf(out, "alignment:      %s\n", r->alignment);
    fprintf(out, "\n");
    sym_print(out, r->derivation, fmt);
    fprintf(out, "\nclosed loop:    derived bias %s the requested one (coefficient %s, constant %s per term)\n",
            r->matches ? "MATCHES" : "DOES NOT MATCH", r->kind == DESIGN_LOG_SPECTRAL && r->depth <= 2 ? "1" : r->coefficient,
            r->constant);
}
