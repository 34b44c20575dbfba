/*
 * sym_infer.c: scaling-exponent inference (docs/theory.md §3).  Every
 * scalar entry of every parameter gets an unknown exponent; each operation
 * of the predictor turns into linear equations on them (in->eq), which
 * sym.c solves for the lattice of symmetries.  Built on a small instance
 * (every dimension d replaced by min(d, SMALL_DIM)) unless an operator
 * read from a file has zeros, whose pattern needs the full instance.
 */
#include "sym.h"
#include "sym_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- exponent inference */

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

void sym_eq_add(infer *in, const long *a, const long *b)   /* a - b = 0 */
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
                sym_eq_add(in, f, first);
        }
    return first;
}

/* Structural pattern of a fixed operator (or its inverse) at size r x c. */
static bool op_nonzero(ibc_builtin op, bool inverse, int i, int j)
{
    if (op == IBC_B_identity || op == IBC_B_diag)
        return i == j;
    if (op == IBC_B_diff)
        return inverse ? j <= i : (j == i || j == i - 1);
    if (op == IBC_B_diff_open)
        return j == i || j == i + 1;
    return true;   /* dct, cosine, matrix: dense */
}


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
                              : transpose ? op_nonzero(n->builtin, inverse, j, i) : op_nonzero(n->builtin, inverse, i, j);
    return v;
}

/* Shapes as matrices: a vector is n x 1, a scalar 1 x 1. */
void sym_shape_small(const infer *in, const ibc_shape *s, int *r, int *c)
{
    *r = s->rank == 0 ? 1 : small(in, s->rows < 0 ? SMALL_DIM : s->rows);
    *c = s->rank == 2 ? small(in, s->cols < 0 ? SMALL_DIM : s->cols) : 1;
}

/* A matrix operator from a file with a zero entry, used forward: its
 * zeros decide which entries meet in a contraction, and no small instance
 * keeps an arbitrary pattern, so the derivation then runs at full size. */
bool sym_has_sparse_file_operator(const ast_node *n)
{
    if (!n)
        return false;
    if (n->kind == AST_CALL && n->opdata && n->builtin == IBC_B_matrix)
        for (long e = 0; e < n->shape.rows * n->shape.cols; e++)
            if (n->opdata[e] == 0)
                return true;
    if (n->kind == AST_CALL && n->builtin == IBC_B_solve)
        return n->nkids > 1 && sym_has_sparse_file_operator(n->kids[1]);
    if (sym_has_sparse_file_operator(n->lhs) || sym_has_sparse_file_operator(n->rhs))
        return true;
    for (size_t i = 0; i < n->nkids; i++)
        if (sym_has_sparse_file_operator(n->kids[i]))
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
                    sym_eq_add(in, tmp, first);
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
                sym_eq_add(in, fa, fb);
            memcpy(fo, a.nz[ia] ? fa : fb, (size_t)in->N * sizeof(long));
        }
    }
    return out;
}

static xval infer_call(infer *in, const ast_node *n)
{
    ibc_builtin f = n->builtin;
    if (ibc_builtin_class_of(f) == IBC_BC_OPERATOR)
        return infer_operator(in, n, false, false);
    if (f == IBC_B_solve) {
        const ast_node *op = n->kids[0];
        bool tr = op->kind == AST_TRANSPOSE;
        xval a = infer_operator(in, tr ? op->lhs : op, true, tr);
        xval b = sym_infer_expr(in, n->kids[1]);
        ast_node fake = *n;
        ast_node l = *op, r = *n->kids[1];
        fake.lhs = &l;
        fake.rhs = &r;
        return infer_matmul(in, a, b, &fake);
    }
    xval a = sym_infer_expr(in, n->kids[0]);
    if (f == IBC_B_relu)
        return a;
    if (f == IBC_B_transpose) {
        xval t = xv_new(in, a.cols, a.rows, false);
        for (int i = 0; i < a.rows; i++)
            for (int j = 0; j < a.cols; j++) {
                memcpy(xv_at(in, &t, j, i), xv_at(in, &a, i, j), (size_t)in->N * sizeof(long));
                t.nz[j * t.cols + i] = a.nz[i * a.cols + j];
            }
        return t;
    }
    if (f == IBC_B_sum || f == IBC_B_cumsum) {
        /* a sum mixes its terms: they must scale alike */
        long *e = xv_all_equal(in, &a);
        if (f == IBC_B_sum) {
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
            sym_eq_add(in, a.form + (size_t)i * in->N, NULL);
        }
    if (scales)
        diag_note(in->diag, n->loc,
                  "'%s' is not homogeneous: its argument must keep its scale (exponent 0), so parameters inside it "
                  "rescale only in combinations that cancel there (docs/theory.md §3)", n->name);
    return xv_new(in, a.rows, a.cols, true);
}

xval sym_infer_expr(infer *in, const ast_node *n)
{
    int r, c;
    sym_shape_small(in, &n->shape, &r, &c);
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
        return sym_infer_expr(in, n->lhs);
    case AST_TRANSPOSE: {
        if (n->lhs->kind == AST_CALL && n->lhs->shape.rank == 2 && !n->lhs->kids)
            return infer_operator(in, n->lhs, false, true);
        ast_node call = *n;
        call.kind = AST_CALL;
        call.name = "transpose";
        call.builtin = IBC_B_transpose;
        ast_node *kid = n->lhs;
        call.kids = &kid;
        call.nkids = 1;
        return infer_call(in, &call);
    }
    case AST_BINOP: {
        xval a = sym_infer_expr(in, n->lhs), b = sym_infer_expr(in, n->rhs);
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
        if (n->builtin == IBC_B_transpose && n->nkids == 1)
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

void sym_count_params(const ast_node *n, int *uses)
{
    if (!n)
        return;
    if (n->kind == AST_IDENT && n->ref_kind == IBC_REF_PARAM)
        uses[n->ref]++;
    sym_count_params(n->lhs, uses);
    sym_count_params(n->rhs, uses);
    for (size_t i = 0; i < n->nkids; i++)
        sym_count_params(n->kids[i], uses);
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
void sym_find_junctions(ibc_arena *a, const ibc_spec *sp, const ast_node *n, const int *uses, sym_group *out,
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
    sym_find_junctions(a, sp, n->lhs, uses, out, nout, cap);
    sym_find_junctions(a, sp, n->rhs, uses, out, nout, cap);
    for (size_t i = 0; i < n->nkids; i++)
        sym_find_junctions(a, sp, n->kids[i], uses, out, nout, cap);
}

