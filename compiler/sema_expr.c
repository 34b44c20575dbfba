/*
 * sema_expr.c: expressions of a spec (sema_impl.h).  Gives every
 * expression node its shape and folds constants to doubles (node->value,
 * is_const); checks operator calls (sizes, diag lists, matrix files read
 * with the runtime's reader for their shape), function calls (arity and
 * argument shapes from the built-in table), binary operators and their
 * shapes, and initialisations (a distribution, optionally scaled by a
 * constant or random scalar).  Errors are located at the node and the
 * caller goes on.
 */
#include "sema_impl.h"
#include "exact.h"
#include "ibrt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------- expressions */

/* A constant scalar expression (numbers, dims, + - * /, sqrt, abs). */
bool sema_const(sema *s, ast_node *n, double *out)
{
    if (!sema_expr(s, n))
        return false;
    if (!n->is_const || n->shape.rank != 0) {
        diag_error(s->diag, n->loc, "expected a constant number here");
        return false;
    }
    if (!isfinite(n->value)) {   /* a folded function of a constant, say */
        diag_error(s->diag, n->loc, "this constant is %g, not a finite number", n->value);
        return false;
    }
    *out = n->value;
    return true;
}

bool sema_const_int(sema *s, ast_node *n, long lo, long hi, const char *what, long *out)
{
    double v;
    if (!sema_const(s, n, &v))
        return false;
    if (v != floor(v)) {
        diag_error(s->diag, n->loc, "%s must be an integer, got %g", what, v);
        return false;
    }
    if (v < (double)lo || v > (double)hi) {
        if (v < (double)lo)
            diag_error(s->diag, n->loc, "%s must be at least %ld, got %.0f", what, lo, v);
        else
            diag_error(s->diag, n->loc, "%s %.0f is larger than the cap of %ld", what, v, hi);
        return false;
    }
    *out = (long)v;
    return true;
}

static bool sema_dim_arg(sema *s, ast_node *call, size_t nargs, long *n)
{
    if (call->nkids != nargs || (nargs && call->kids[0]->kind == AST_KWARG)) {
        diag_error(s->diag, call->loc, "'%s' takes %zu positional argument%s", call->name,
                   nargs, nargs == 1 ? "" : "s");
        return false;
    }
    return sema_const_int(s, call->kids[0], 1, IBC_MAX_DIM, "operator size", n);
}

/* A file named in the spec, found relative to the spec: it must be one the
 * runtime's readers accept (a regular file within their size cap), so that
 * what passes the check is what the trainer can read. */
bool sema_file_exists(sema *s, ast_node *str)
{
    const char *path = str->text;
    const char *full = path[0] == '/' ? path : arena_printf(s->arena, "%s/%s", s->spec_dir, path);
    char why[400];
    if (!ibrt_io_file_usable(full, why, sizeof why)) {
        diag_error(s->diag, str->loc, "cannot open '%s': %s", full, why);
        return false;
    }
    ibc_spec *sp = s->spec;
    sp->files = sema_grow(s, sp->files, sp->nfiles, &s->cap_files, sizeof *sp->files);
    sp->files[sp->nfiles++] = full;
    return true;
}

static bool sema_operator(sema *s, ast_node *n)
{
    long size = 0;
    n->is_const = false;
    if (n->builtin == IBC_B_diag) {
        if (n->nkids != 1 || n->kids[0]->kind != AST_LIST) {
            diag_error(s->diag, n->loc, "'diag' takes a list of numbers: diag([d1, d2, ...])");
            return false;
        }
        ast_node *l = n->kids[0];
        for (size_t i = 0; i < l->nkids; i++) {
            double v;
            if (!sema_const(s, l->kids[i], &v))
                return false;
        }
        n->shape = sema_shape_make(2, (long)l->nkids, (long)l->nkids);
        return true;
    }
    if (n->builtin == IBC_B_matrix) {
        if (n->nkids != 1 || n->kids[0]->kind != AST_STR) {
            diag_error(s->diag, n->loc, "'matrix' takes a file name: matrix(\"A.csv\") or matrix(\"A.npy\")");
            return false;
        }
        if (!sema_file_exists(s, n->kids[0]))
            return false;
        /* read here, with the trainers' reader, for its shape: a product
         * with a wrongly sized operator is then an error at its '@' */
        const char *path = n->kids[0]->text;
        const char *full = path[0] == '/' ? path : arena_printf(s->arena, "%s/%s", s->spec_dir, path);
        size_t r, c;
        double *data;
        ibrt_error err;
        if (ibrt_io_read_matrix(full, &r, &c, &data, &err) != IBRT_OK) {
            diag_error(s->diag, n->kids[0]->loc, "%s", err.msg);
            return false;
        }
        double *kept = arena_alloc(s->arena, r * c * sizeof(double) + sizeof(double));
        memcpy(kept, data, r * c * sizeof(double));
        free(data);
        n->opdata = kept;   /* its zeros are structure the derivation uses */
        n->shape = sema_shape_make(2, (long)r, (long)c);
        return true;
    }
    if (!sema_dim_arg(s, n, 1, &size))
        return false;
    if (n->builtin == IBC_B_diff_open)
        n->shape = sema_shape_make(2, size - 1, size);
    else
        n->shape = sema_shape_make(2, size, size);
    return true;
}

static bool sema_call(sema *s, ast_node *n)
{
    ibc_builtin_class cls = ibc_builtin_class_of(n->builtin);
    if (cls == IBC_BC_OPERATOR)
        return sema_operator(s, n);
    if (cls != IBC_BC_FUNC) {
        const char *c[IBC_B_COUNT];
        size_t k = sema_builtin_names(IBC_BC_FUNC, IBC_BC_OPERATOR, c);
        diag_error(s->diag, n->name_loc, "unknown function '%s'%s", n->name, sema_hint(s, n->name, c, k));
        return false;
    }
    const ibc_builtin_info *f = &ibc_builtins[n->builtin];
    size_t want = (size_t)f->nargs;
    if (n->nkids != want) {
        diag_error(s->diag, n->loc, "'%s' takes %zu argument%s, got %zu", n->name, want,
                   want == 1 ? "" : "s", n->nkids);
        return false;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        if (n->kids[i]->kind == AST_KWARG) {
            diag_error(s->diag, n->kids[i]->loc, "'%s' takes no keyword arguments", n->name);
            return false;
        }
        if (!sema_expr(s, n->kids[i]))
            return false;
    }
    ast_node *a = n->kids[0];
    const char *name = n->name;
    ibc_builtin b = n->builtin;
    n->shape = a->shape;
    n->is_const = false;
    if (f->kind == IBC_FK_CONST) {
        if (!a->is_const || a->shape.rank != 0) {
            diag_error(s->diag, a->loc, "'%s' applies only to constant numbers here", name);
            return false;
        }
        if (b == IBC_B_sqrt && a->value < 0) {
            diag_error(s->diag, a->loc, "square root of a negative number (%g)", a->value);
            return false;
        }
        n->is_const = true;
        n->value = b == IBC_B_sqrt ? sqrt(a->value) : fabs(a->value);
        return true;
    }
    if (b == IBC_B_sum) {
        n->shape = sema_shape_make(0, 1, 1);
    } else if (b == IBC_B_transpose) {
        if (a->shape.rank != 2) {
            diag_error(s->diag, a->loc, "'transpose' needs a matrix, got %s", sema_shape_str(s, a->shape));
            return false;
        }
        n->shape = sema_shape_make(2, a->shape.cols, a->shape.rows);
    } else if (b == IBC_B_cumsum) {
        if (a->shape.rank != 1) {
            diag_error(s->diag, a->loc, "'cumsum' needs a vector, got %s", sema_shape_str(s, a->shape));
            return false;
        }
    } else if (b == IBC_B_softmax) {
        if (a->shape.rank == 0) {
            diag_error(s->diag, a->loc, "'softmax' needs a vector or a matrix (rows), got a scalar");
            return false;
        }
    } else if (b == IBC_B_solve) {
        ast_node *z = n->kids[1];
        if (a->shape.rank != 2 || (a->shape.rows >= 0 && a->shape.rows != a->shape.cols)) {
            diag_error(s->diag, a->loc, "'solve' needs a square operator, got %s", sema_shape_str(s, a->shape));
            return false;
        }
        if (z->shape.rank == 0 || (a->shape.rows >= 0 && z->shape.rows != a->shape.cols)) {
            diag_error(s->diag, n->loc, "shape mismatch in 'solve': %s and %s",
                       sema_shape_str(s, a->shape), sema_shape_str(s, z->shape));
            return false;
        }
        n->shape = z->shape;
    }
    return true;
}

static bool sema_binop(sema *s, ast_node *n)
{
    ast_node *a = n->lhs, *b = n->rhs;
    ibc_shape x = a->shape, y = b->shape;
    n->is_const = a->is_const && b->is_const && x.rank == 0 && y.rank == 0;
    char op = (char)n->op;
    if (n->is_const) {
        switch (op) {
        case '+': n->value = a->value + b->value; break;
        case '-': n->value = a->value - b->value; break;
        case '*': case '@': n->value = a->value * b->value; break;
        case '/':
            if (b->value == 0) {
                diag_error(s->diag, b->loc, "division by zero");
                return false;
            }
            n->value = a->value / b->value;
            break;
        }
        if (!isfinite(n->value)) {   /* 1e308 * 1e308 folded to inf and reached the trainer */
            diag_error(s->diag, n->loc, "this constant is %g %c %g, beyond the largest number (about 1.8e308)",
                       a->value, op, b->value);
            return false;
        }
        n->shape = x;
        return true;
    }
    switch (op) {
    case '+':
    case '-':
        if (!sema_shape_eq(x, y)) {
            diag_error(s->diag, n->loc, "shape mismatch in '%c': %s %c %s", op, sema_shape_str(s, x), op,
                       sema_shape_str(s, y));
            return false;
        }
        n->shape = x;
        return true;
    case '*':
        if (x.rank == 0 || y.rank == 0) {
            n->shape = x.rank == 0 ? y : x;
            return true;
        }
        if (!sema_shape_eq(x, y)) {
            diag_error(s->diag, n->loc,
                       "shape mismatch in '*' (elementwise): %s * %s (use '@' for a matrix product)",
                       sema_shape_str(s, x), sema_shape_str(s, y));
            return false;
        }
        n->shape = x;
        return true;
    case '/':
        if (b->is_const && b->value == 0) {   /* x / 0 with x not constant */
            diag_error(s->diag, b->loc, "division by zero");
            return false;
        }
        if (y.rank != 0) {
            diag_error(s->diag, b->loc, "division needs a scalar on the right, got %s", sema_shape_str(s, y));
            return false;
        }
        n->shape = x;
        return true;
    case '@': {
        if (x.rank == 0 || y.rank == 0) {
            diag_error(s->diag, n->loc, "'@' needs vectors or matrices, got %s @ %s (use '*' to scale)",
                       sema_shape_str(s, x), sema_shape_str(s, y));
            return false;
        }
        long inner_a = x.rank == 2 ? x.cols : x.rows;
        long inner_b = y.rows;
        if (inner_a >= 0 && inner_b >= 0 && inner_a != inner_b) {
            diag_error(s->diag, n->loc, "shape mismatch in '@': %s @ %s (inner dimensions %ld and %ld differ)",
                       sema_shape_str(s, x), sema_shape_str(s, y), inner_a, inner_b);
            return false;
        }
        long rows = x.rank == 2 ? x.rows : -2, cols = y.rank == 2 ? y.cols : -2;
        if (rows != -2 && cols != -2)
            n->shape = sema_shape_make(2, rows, cols);
        else if (rows != -2)
            n->shape = sema_shape_make(1, rows, 1);
        else if (cols != -2)
            n->shape = sema_shape_make(1, cols, 1);
        else
            n->shape = sema_shape_make(0, 1, 1);
        return true;
    }
    }
    return false;
}

bool sema_expr(sema *s, ast_node *n)
{
    switch (n->kind) {
    case AST_NUM: {
        errno = 0;
        char *end;
        n->value = strtod(n->text, &end);
        if (errno == ERANGE || !isfinite(n->value)) {
            diag_error(s->diag, n->loc, "number '%s' is out of range", n->text);
            return false;
        }
        n->shape = sema_shape_make(0, 1, 1);
        n->is_const = true;
        return true;
    }
    case AST_IDENT: {
        int idx;
        int kind = sema_lookup(s, n->name, &idx);
        n->ref = idx;
        n->ref_kind = kind;
        switch (kind) {
        case IBC_REF_DIM:
            s->spec->dims[idx].used = true;
            n->value = (double)s->spec->dims[idx].value;
            n->is_const = true;
            n->shape = sema_shape_make(0, 1, 1);
            return true;
        case IBC_REF_PARAM:
            s->spec->params[idx].used = true;
            n->shape = s->spec->params[idx].shape;
            return true;
        case IBC_REF_INPUT:
            s->spec->inputs[idx].used = true;
            n->shape = s->spec->inputs[idx].shape;
            return true;
        case IBC_REF_DATA:
            diag_error(s->diag, n->loc, "'observed' is the data's mask; use it as loss mse(mask = observed)");
            return false;
        }
        if (!sema_is_poisoned(s, n->name))
            diag_error(s->diag, n->loc, "undefined name '%s'%s", n->name, sema_name_hint(s, n->name));
        return false;
    }
    case AST_NEG:
        if (!sema_expr(s, n->lhs))
            return false;
        n->shape = n->lhs->shape;
        n->is_const = n->lhs->is_const;
        n->value = -n->lhs->value;
        return true;
    case AST_TRANSPOSE:
        if (!sema_expr(s, n->lhs))
            return false;
        if (n->lhs->shape.rank != 2) {
            diag_error(s->diag, n->loc, "transpose (') needs a matrix, got %s", sema_shape_str(s, n->lhs->shape));
            return false;
        }
        n->shape = sema_shape_make(2, n->lhs->shape.cols, n->lhs->shape.rows);
        return true;
    case AST_BINOP: {
        bool ok = sema_expr(s, n->lhs);
        ok = sema_expr(s, n->rhs) && ok;
        return ok && sema_binop(s, n);
    }
    case AST_CALL:
        return sema_call(s, n);
    case AST_STR:
        diag_error(s->diag, n->loc, "a string is not a value here");
        return false;
    case AST_LIST:
        diag_error(s->diag, n->loc, "a list is not a value here");
        return false;
    default:
        diag_error(s->diag, n->loc, "not an expression");
        return false;
    }
}

/* An initialisation: dist(...) [* constant-or-random scalar factor]. */
static bool sema_random_scalar(sema *s, ast_node *n, bool allow_dist);

bool sema_dist_call(sema *s, ast_node *n)
{
    if (ibc_builtin_class_of(n->builtin) != IBC_BC_DIST) {
        const char *c[IBC_B_COUNT];
        size_t k = sema_builtin_names(IBC_BC_DIST, IBC_BC_DIST, c);
        diag_error(s->diag, n->name_loc, "unknown distribution '%s'%s", n->name, sema_hint(s, n->name, c, k));
        return false;
    }
    int nargs = ibc_builtins[n->builtin].nargs;
    if ((int)n->nkids != nargs) {
        diag_error(s->diag, n->loc, "'%s' takes %d argument%s, got %zu", n->name, nargs, nargs == 1 ? "" : "s",
                   n->nkids);
        return false;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        double v;
        if (!sema_const(s, n->kids[i], &v))
            return false;
    }
    if (n->builtin == IBC_B_normal && n->kids[1]->value < 0) {
        diag_error(s->diag, n->kids[1]->loc, "standard deviation must be non-negative, got %g", n->kids[1]->value);
        return false;
    }
    if (n->builtin == IBC_B_uniform && !(n->kids[0]->value < n->kids[1]->value)) {
        diag_error(s->diag, n->loc, "uniform(lo, hi) needs lo < hi");
        return false;
    }
    return true;
}

static bool sema_random_scalar(sema *s, ast_node *n, bool allow_dist)
{
    (void)allow_dist;
    switch (n->kind) {
    case AST_CALL:
        if (n->builtin == IBC_B_abs || n->builtin == IBC_B_sqrt) {
            if (n->nkids != 1) {
                diag_error(s->diag, n->loc, "'%s' takes 1 argument", n->name);
                return false;
            }
            return sema_random_scalar(s, n->kids[0], true);
        }
        return sema_dist_call(s, n);   /* one scalar draw */
    case AST_BINOP:
        if (n->op == '@') {
            diag_error(s->diag, n->loc, "'@' is not allowed in an initialisation");
            return false;
        }
        {   /* both sides checked, so that each reports its own errors */
            bool l = sema_random_scalar(s, n->lhs, true), r = sema_random_scalar(s, n->rhs, true);
            return l && r;
        }
    case AST_NEG:
        return sema_random_scalar(s, n->lhs, true);
    default: {
        double v;
        return sema_const(s, n, &v);
    }
    }
}

/* init := dist(...) | dist(...) * factor | factor * dist(...) */
bool sema_init(sema *s, ast_node *n)
{
    if (n->kind == AST_CALL)
        return sema_dist_call(s, n);
    if (n->kind == AST_BINOP && n->op == '*') {
        /* both factors checked, so that each reports its own errors */
        if (n->lhs->kind == AST_CALL && ibc_builtin_class_of(n->lhs->builtin) == IBC_BC_DIST) {
            bool d = sema_dist_call(s, n->lhs), f = sema_random_scalar(s, n->rhs, true);
            return d && f;
        }
        if (n->rhs->kind == AST_CALL && ibc_builtin_class_of(n->rhs->builtin) == IBC_BC_DIST) {
            bool f = sema_random_scalar(s, n->lhs, true), d = sema_dist_call(s, n->rhs);
            return f && d;
        }
    }
    diag_error(s->diag, n->loc,
               "an initialisation is a distribution, optionally scaled: normal(0, 0.1) or normal(0, 0.1) * (0.25 + abs(normal(0, 1)))");
    return false;
}

