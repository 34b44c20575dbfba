/*
 * sema.c: checks a parsed spec and builds the ibc_spec later phases use.
 *
 * One pass over the statements in order (a name is visible after its
 * declaration), then whole-spec checks (required statements, unused
 * names).  Every error is placed at the AST node it is about and the pass
 * goes on, so one run reports every independent problem.  Expressions get
 * their shapes here (node->shape); dimensions and other constants are
 * folded to doubles (node->value) — the exact rational value of a literal
 * is the symbolic phase's business, from node->text.
 */
#include "ibc.h"
#include "ibrt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    ibc_arena *arena;
    ibc_diag *diag;
    ibc_spec *spec;
    size_t cap_dims, cap_params, cap_inputs, cap_base, cap_sym, cap_files;
    const char *spec_dir;        /* files are found relative to the spec */
    bool has_mask;               /* the data defines the mask "observed" */
    bool data_bad;               /* the data statement had an error */
    ast_node *first[AST_SPEC];   /* first statement of each kind, for duplicates */
    const char **poisoned;       /* names whose declaration had an error: */
    size_t npoisoned, cap_poisoned; /* their uses are not reported again */
} sema;

/* ------------------------------------------------------------ builtins */

typedef enum { FK_HOMOG1, FK_LINEAR, FK_NONHOMOG, FK_CONST } func_kind;
enum { HOMOG1 = FK_HOMOG1, LINEAR = FK_LINEAR, NONHOMOG = FK_NONHOMOG, CONST = FK_CONST };

static const struct { const char *name; int kind; } sema_funcs[] = {
#define IBRT_FUNC(n, k, doc) { #n, k },
#include "ibrt_builtins.def"
};
static const char *const sema_operators[] = {
#define IBRT_OPERATOR(n, a, doc) #n,
#include "ibrt_builtins.def"
};
static const struct { const char *name; int nargs; } sema_dists[] = {
#define IBRT_DIST(n, a, doc) { #n, a },
#include "ibrt_builtins.def"
};
static const struct { const char *name; const char *keys; } sema_generators[] = {
#define IBRT_GENERATOR(n, k, doc) { #n, k },
#include "ibrt_builtins.def"
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int sema_find_func(const char *name)
{
    for (size_t i = 0; i < COUNT(sema_funcs); i++)
        if (!strcmp(sema_funcs[i].name, name))
            return (int)i;
    return -1;
}

static bool sema_is_operator(const char *name)
{
    for (size_t i = 0; i < COUNT(sema_operators); i++)
        if (!strcmp(sema_operators[i], name))
            return true;
    return false;
}

static int sema_find_dist(const char *name)
{
    for (size_t i = 0; i < COUNT(sema_dists); i++)
        if (!strcmp(sema_dists[i].name, name))
            return (int)i;
    return -1;
}

/* A "did you mean" suffix for name among n candidates (or ""). */
static const char *sema_hint(sema *s, const char *name, const char *const *cands, size_t n)
{
    const char *best = diag_suggest(name, cands, n);
    return best ? arena_printf(s->arena, "; did you mean '%s'?", best) : "";
}

static const char *shape_str(sema *s, ibc_shape sh)
{
    if (sh.rank == 0)
        return "scalar";
    if (sh.rank == 1)
        return arena_printf(s->arena, "vector[%ld]", sh.rows);
    if (sh.rows < 0)
        return "matrix[?, ?]";
    return arena_printf(s->arena, "matrix[%ld, %ld]", sh.rows, sh.cols);
}

static ibc_shape shape_make(int rank, long rows, long cols)
{
    ibc_shape sh = { rank, rank ? rows : 1, rank == 2 ? cols : 1 };
    return sh;
}

static bool shape_eq(ibc_shape a, ibc_shape b)
{
    if (a.rank != b.rank)
        return false;
    if (a.rows < 0 || b.rows < 0)   /* a matrix read from a file: unknown */
        return true;
    return a.rows == b.rows && a.cols == b.cols;
}

/* --------------------------------------------------------------- names */

static void *sema_grow(sema *s, void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t nc = *cap ? 2 * *cap : 8;
    void *na = arena_alloc(s->arena, nc * elem);
    if (n)
        memcpy(na, arr, n * elem);
    *cap = nc;
    return na;
}

/* Finds name among dims, params and inputs; returns IBC_REF_* and index. */
static int sema_lookup(sema *s, const char *name, int *idx)
{
    ibc_spec *sp = s->spec;
    for (size_t i = 0; i < sp->ndims; i++)
        if (!strcmp(sp->dims[i].name, name)) {
            *idx = (int)i;
            return IBC_REF_DIM;
        }
    for (size_t i = 0; i < sp->nparams; i++)
        if (!strcmp(sp->params[i].name, name)) {
            *idx = (int)i;
            return IBC_REF_PARAM;
        }
    for (size_t i = 0; i < sp->ninputs; i++)
        if (!strcmp(sp->inputs[i].name, name)) {
            *idx = (int)i;
            return IBC_REF_INPUT;
        }
    if (s->has_mask && !strcmp(name, "observed")) {
        *idx = 0;
        return IBC_REF_DATA;
    }
    return IBC_REF_NONE;
}

static const char *sema_name_hint(sema *s, const char *name)
{
    ibc_spec *sp = s->spec;
    size_t n = sp->ndims + sp->nparams + sp->ninputs;
    const char **c = arena_alloc(s->arena, (n + 1) * sizeof *c);
    size_t k = 0;
    for (size_t i = 0; i < sp->ndims; i++)
        c[k++] = sp->dims[i].name;
    for (size_t i = 0; i < sp->nparams; i++)
        c[k++] = sp->params[i].name;
    for (size_t i = 0; i < sp->ninputs; i++)
        c[k++] = sp->inputs[i].name;
    return sema_hint(s, name, c, k);
}

static void *sema_grow(sema *s, void *arr, size_t n, size_t *cap, size_t elem);

static void sema_poison(sema *s, const char *name)
{
    s->poisoned = sema_grow(s, s->poisoned, s->npoisoned, &s->cap_poisoned, sizeof *s->poisoned);
    s->poisoned[s->npoisoned++] = name;
}

static bool sema_is_poisoned(sema *s, const char *name)
{
    for (size_t i = 0; i < s->npoisoned; i++)
        if (!strcmp(s->poisoned[i], name))
            return true;
    return false;
}

/* Names become file names (a parameter's MODEL_NAME.npy, the trainer's
 * default results/NAME), whose parts are at most 255 bytes: a longer name
 * is an error here rather than outputs that cannot be written.  Reported
 * only: the name is still declared (its uses are not errors too). */
static void sema_name_length(sema *s, const char *name, ibc_loc loc)
{
    size_t n = strlen(name);
    if (n > IBC_MAX_NAME)
        diag_error(s->diag, loc, "a name of %zu characters: at most %d (names become file names, e.g. "
                   "MODEL_NAME.npy for a parameter)", n, IBC_MAX_NAME);
}

/* Declares a new name; reports a duplicate with a note at the first one. */
static bool sema_declare(sema *s, ast_node *decl)
{
    sema_name_length(s, decl->name, decl->name_loc);
    int idx;
    int kind = sema_lookup(s, decl->name, &idx);
    if (kind == IBC_REF_NONE)
        return true;
    ast_node *prev = kind == IBC_REF_DIM     ? s->spec->dims[idx].decl
                     : kind == IBC_REF_PARAM ? s->spec->params[idx].decl
                     : kind == IBC_REF_INPUT ? s->spec->inputs[idx].decl
                                             : NULL;
    diag_error(s->diag, decl->name_loc, "'%s' is already declared", decl->name);
    if (prev)
        diag_note(s->diag, prev->name_loc, "'%s' was declared here", decl->name);
    return false;
}

/* ---------------------------------------------------------- expressions */

static bool sema_expr(sema *s, ast_node *n);

/* A constant scalar expression (numbers, dims, + - * /, sqrt, abs). */
static bool sema_const(sema *s, ast_node *n, double *out)
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

static bool sema_const_int(sema *s, ast_node *n, long lo, long hi, const char *what, long *out)
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
static bool sema_file_exists(sema *s, ast_node *str)
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
    if (!strcmp(n->name, "diag")) {
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
        n->shape = shape_make(2, (long)l->nkids, (long)l->nkids);
        return true;
    }
    if (!strcmp(n->name, "matrix")) {
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
        n->shape = shape_make(2, (long)r, (long)c);
        return true;
    }
    if (!sema_dim_arg(s, n, 1, &size))
        return false;
    if (!strcmp(n->name, "diff_open"))
        n->shape = shape_make(2, size - 1, size);
    else
        n->shape = shape_make(2, size, size);
    return true;
}

static bool sema_call(sema *s, ast_node *n)
{
    if (sema_is_operator(n->name))
        return sema_operator(s, n);
    int f = sema_find_func(n->name);
    if (f < 0) {
        const char *c[COUNT(sema_funcs) + COUNT(sema_operators)];
        size_t k = 0;
        for (size_t i = 0; i < COUNT(sema_funcs); i++)
            c[k++] = sema_funcs[i].name;
        for (size_t i = 0; i < COUNT(sema_operators); i++)
            c[k++] = sema_operators[i];
        diag_error(s->diag, n->name_loc, "unknown function '%s'%s", n->name, sema_hint(s, n->name, c, k));
        return false;
    }
    size_t want = !strcmp(n->name, "solve") ? 2 : 1;
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
    n->shape = a->shape;
    n->is_const = false;
    if (sema_funcs[f].kind == FK_CONST) {
        if (!a->is_const || a->shape.rank != 0) {
            diag_error(s->diag, a->loc, "'%s' applies only to constant numbers here", name);
            return false;
        }
        if (!strcmp(name, "sqrt") && a->value < 0) {
            diag_error(s->diag, a->loc, "square root of a negative number (%g)", a->value);
            return false;
        }
        n->is_const = true;
        n->value = !strcmp(name, "sqrt") ? sqrt(a->value) : fabs(a->value);
        return true;
    }
    if (!strcmp(name, "sum")) {
        n->shape = shape_make(0, 1, 1);
    } else if (!strcmp(name, "transpose")) {
        if (a->shape.rank != 2) {
            diag_error(s->diag, a->loc, "'transpose' needs a matrix, got %s", shape_str(s, a->shape));
            return false;
        }
        n->shape = shape_make(2, a->shape.cols, a->shape.rows);
    } else if (!strcmp(name, "cumsum")) {
        if (a->shape.rank != 1) {
            diag_error(s->diag, a->loc, "'cumsum' needs a vector, got %s", shape_str(s, a->shape));
            return false;
        }
    } else if (!strcmp(name, "softmax")) {
        if (a->shape.rank == 0) {
            diag_error(s->diag, a->loc, "'softmax' needs a vector or a matrix (rows), got a scalar");
            return false;
        }
    } else if (!strcmp(name, "solve")) {
        ast_node *b = n->kids[1];
        if (a->shape.rank != 2 || (a->shape.rows >= 0 && a->shape.rows != a->shape.cols)) {
            diag_error(s->diag, a->loc, "'solve' needs a square operator, got %s", shape_str(s, a->shape));
            return false;
        }
        if (b->shape.rank == 0 || (a->shape.rows >= 0 && b->shape.rows != a->shape.cols)) {
            diag_error(s->diag, n->loc, "shape mismatch in 'solve': %s and %s",
                       shape_str(s, a->shape), shape_str(s, b->shape));
            return false;
        }
        n->shape = b->shape;
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
        if (!shape_eq(x, y)) {
            diag_error(s->diag, n->loc, "shape mismatch in '%c': %s %c %s", op, shape_str(s, x), op,
                       shape_str(s, y));
            return false;
        }
        n->shape = x;
        return true;
    case '*':
        if (x.rank == 0 || y.rank == 0) {
            n->shape = x.rank == 0 ? y : x;
            return true;
        }
        if (!shape_eq(x, y)) {
            diag_error(s->diag, n->loc,
                       "shape mismatch in '*' (elementwise): %s * %s (use '@' for a matrix product)",
                       shape_str(s, x), shape_str(s, y));
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
            diag_error(s->diag, b->loc, "division needs a scalar on the right, got %s", shape_str(s, y));
            return false;
        }
        n->shape = x;
        return true;
    case '@': {
        if (x.rank == 0 || y.rank == 0) {
            diag_error(s->diag, n->loc, "'@' needs vectors or matrices, got %s @ %s (use '*' to scale)",
                       shape_str(s, x), shape_str(s, y));
            return false;
        }
        long inner_a = x.rank == 2 ? x.cols : x.rows;
        long inner_b = y.rows;
        if (inner_a >= 0 && inner_b >= 0 && inner_a != inner_b) {
            diag_error(s->diag, n->loc, "shape mismatch in '@': %s @ %s (inner dimensions %ld and %ld differ)",
                       shape_str(s, x), shape_str(s, y), inner_a, inner_b);
            return false;
        }
        long rows = x.rank == 2 ? x.rows : -2, cols = y.rank == 2 ? y.cols : -2;
        if (rows != -2 && cols != -2)
            n->shape = shape_make(2, rows, cols);
        else if (rows != -2)
            n->shape = shape_make(1, rows, 1);
        else if (cols != -2)
            n->shape = shape_make(1, cols, 1);
        else
            n->shape = shape_make(0, 1, 1);
        return true;
    }
    }
    return false;
}

static bool sema_expr(sema *s, ast_node *n)
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
        n->shape = shape_make(0, 1, 1);
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
            n->shape = shape_make(0, 1, 1);
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
            diag_error(s->diag, n->loc, "transpose (') needs a matrix, got %s", shape_str(s, n->lhs->shape));
            return false;
        }
        n->shape = shape_make(2, n->lhs->shape.cols, n->lhs->shape.rows);
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

static bool sema_dist_call(sema *s, ast_node *n)
{
    int d = sema_find_dist(n->name);
    if (d < 0) {
        const char *c[COUNT(sema_dists)];
        for (size_t i = 0; i < COUNT(sema_dists); i++)
            c[i] = sema_dists[i].name;
        diag_error(s->diag, n->name_loc, "unknown distribution '%s'%s", n->name,
                   sema_hint(s, n->name, c, COUNT(sema_dists)));
        return false;
    }
    if ((int)n->nkids != sema_dists[d].nargs) {
        diag_error(s->diag, n->loc, "'%s' takes %d argument%s, got %zu", n->name, sema_dists[d].nargs,
                   sema_dists[d].nargs == 1 ? "" : "s", n->nkids);
        return false;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        double v;
        if (!sema_const(s, n->kids[i], &v))
            return false;
    }
    if (!strcmp(n->name, "normal") && n->kids[1]->value < 0) {
        diag_error(s->diag, n->kids[1]->loc, "standard deviation must be non-negative, got %g", n->kids[1]->value);
        return false;
    }
    if (!strcmp(n->name, "uniform") && !(n->kids[0]->value < n->kids[1]->value)) {
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
        if (!strcmp(n->name, "abs") || !strcmp(n->name, "sqrt")) {
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
static bool sema_init(sema *s, ast_node *n)
{
    if (n->kind == AST_CALL)
        return sema_dist_call(s, n);
    if (n->kind == AST_BINOP && n->op == '*') {
        /* both factors checked, so that each reports its own errors */
        if (n->lhs->kind == AST_CALL && sema_find_dist(n->lhs->name) >= 0) {
            bool d = sema_dist_call(s, n->lhs), f = sema_random_scalar(s, n->rhs, true);
            return d && f;
        }
        if (n->rhs->kind == AST_CALL && sema_find_dist(n->rhs->name) >= 0) {
            bool f = sema_random_scalar(s, n->lhs, true), d = sema_dist_call(s, n->rhs);
            return f && d;
        }
    }
    diag_error(s->diag, n->loc,
               "an initialisation is a distribution, optionally scaled: normal(0, 0.1) or normal(0, 0.1) * (0.25 + abs(normal(0, 1)))");
    return false;
}

/* ---------------------------------------------------------- statements */

static bool sema_type(sema *s, ast_node *decl, ibc_shape *out)
{
    ast_type *t = &decl->type;
    long d[2] = { 1, 1 };
    int rank = t->kind == TYPE_SCALAR ? 0 : t->kind == TYPE_VECTOR ? 1 : 2;
    for (int i = 0; i < rank; i++)
        if (!sema_const_int(s, t->dim[i], 1, IBC_MAX_DIM, "a dimension", &d[i]))
            return false;
    if (d[0] * d[1] > IBC_MAX_ELEMS) {
        diag_error(s->diag, t->loc, "'%s' has %ld elements, more than the cap of %ld (%ld MiB of doubles)",
                   decl->name, d[0] * d[1], IBC_MAX_ELEMS, IBC_MAX_ELEMS * 8 / (1024 * 1024));
        return false;
    }
    *out = shape_make(rank, d[0], d[1]);
    return true;
}

static void sema_var(sema *s, ast_node *n, bool is_param)
{
    ibc_spec *sp = s->spec;
    ibc_shape sh;
    bool ok = sema_declare(s, n);
    if (!sema_type(s, n, &sh) || !ok || (n->lhs && !sema_init(s, n->lhs))) {
        if (ok)
            sema_poison(s, n->name);
        return;
    }
    ibc_var v = { n->name, sh, n, n->lhs, false };
    if (is_param) {
        sp->params = sema_grow(s, sp->params, sp->nparams, &s->cap_params, sizeof v);
        sp->params[sp->nparams++] = v;
    } else {
        sp->inputs = sema_grow(s, sp->inputs, sp->ninputs, &s->cap_inputs, sizeof v);
        sp->inputs[sp->ninputs++] = v;
    }
}

/* Settings tables: the names a block accepts. */
static const char *const train_keys[] = { "lr", "steps", "batch", "seed", "record_every", "extend" };
static const char *const extend_keys[] = { "steps", "lr" };
static const char *const verify_keys[] = { "invariance_tol", "gradient_tol", "logdet_tol",
                                           "stationary_beta", "stationary_eps" };
static const char *const design_keys[] = { "depth", "strength", "rank", "lr", "init" };
static const char *const baseline_keys[] = { "lr" };

static bool sema_known_key(sema *s, ast_node *set, const char *const *keys, size_t n, const char *where)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], set->name))
            return true;
    diag_error(s->diag, set->name_loc, "unknown setting '%s' in %s%s", set->name, where,
               sema_hint(s, set->name, keys, n));
    return false;
}

/* A block sets each name once: a second 'lr = ...' would silently win. */
static bool sema_set_once(sema *s, ast_node *const *kids, size_t i, const char *where)
{
    for (size_t j = 0; j < i; j++)
        if (kids[j]->name && kids[i]->name && !strcmp(kids[j]->name, kids[i]->name)) {
            diag_error(s->diag, kids[i]->name_loc, "'%s' is set twice in %s", kids[i]->name, where);
            diag_note(s->diag, kids[j]->name_loc, "the first '%s' is here", kids[i]->name);
            return false;
        }
    return true;
}

static bool sema_positive(sema *s, ast_node *e, double *out, const char *what)
{
    if (!sema_const(s, e, out))
        return false;
    if (!(*out > 0)) {
        diag_error(s->diag, e->loc, "%s must be positive, got %g", what, *out);
        return false;
    }
    return true;
}

static bool sema_expect_eq(sema *s, ast_node *set)
{
    if (set->kind != AST_SETTING || set->op != '=' || set->rhs) {
        diag_error(s->diag, set->loc, "expected 'name = value' here");
        return false;
    }
    return true;
}

static void sema_train(sema *s, ast_node *n)
{
    ibc_train *t = &s->spec->train;
    bool have_lr = false, have_steps = false;
    t->decl = n;
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *set = n->kids[i];
        if (!sema_known_key(s, set, train_keys, COUNT(train_keys), "'train'") ||
            !sema_set_once(s, n->kids, i, "'train'"))
            continue;
        const char *k = set->name;
        if (!strcmp(k, "extend")) {
            if (set->kind != AST_BLOCK) {
                diag_error(s->diag, set->loc, "'extend' is a block: extend { steps = N }");
                continue;
            }
            for (size_t j = 0; j < set->nkids; j++) {
                ast_node *e = set->kids[j];
                if (!sema_known_key(s, e, extend_keys, COUNT(extend_keys), "'extend'") ||
                    !sema_set_once(s, set->kids, j, "'extend'") || !sema_expect_eq(s, e))
                    continue;
                if (!strcmp(e->name, "steps"))
                    sema_const_int(s, e->lhs, 1, IBC_MAX_STEPS, "steps", &t->extend_steps);
                else
                    sema_positive(s, e->lhs, &t->extend_lr, "the learning rate");
            }
            continue;
        }
        if (!sema_expect_eq(s, set))
            continue;
        if (!strcmp(k, "lr"))
            have_lr = sema_positive(s, set->lhs, &t->lr, "the learning rate");
        else if (!strcmp(k, "steps"))
            have_steps = sema_const_int(s, set->lhs, 1, IBC_MAX_STEPS, "steps", &t->steps);
        else if (!strcmp(k, "batch")) {
            t->batch_node = set->lhs;
            if (set->lhs->kind == AST_IDENT && !strcmp(set->lhs->name, "full"))
                t->batch = 0;
            else
                sema_const_int(s, set->lhs, 1, 1000000, "the batch size", &t->batch);
        } else if (!strcmp(k, "seed")) {
            long seed;
            if (sema_const_int(s, set->lhs, 0, 2147483647L, "the seed", &seed))
                t->seed = (uint64_t)seed;
        } else if (!strcmp(k, "record_every")) {
            t->record_node = set->lhs;
            sema_const_int(s, set->lhs, 1, IBC_MAX_STEPS, "record_every", &t->record_every);
        }
    }
    if (!have_lr && s->diag->errors == 0)
        diag_error(s->diag, n->loc, "'train' needs a learning rate: lr = 1e-3");
    if (!have_steps && s->diag->errors == 0)
        diag_error(s->diag, n->loc, "'train' needs a number of steps: steps = 10000");
}

static void sema_verify(sema *s, ast_node *n)
{
    ibc_verify *v = &s->spec->verify;
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *set = n->kids[i];
        if (!sema_known_key(s, set, verify_keys, COUNT(verify_keys), "'verify'") ||
            !sema_set_once(s, n->kids, i, "'verify'") || !sema_expect_eq(s, set))
            continue;
        const char *k = set->name;
        double *dst = !strcmp(k, "invariance_tol")    ? &v->invariance_tol
                      : !strcmp(k, "gradient_tol")    ? &v->gradient_tol
                      : !strcmp(k, "logdet_tol")      ? &v->logdet_tol
                      : !strcmp(k, "stationary_beta") ? &v->stationary_beta
                                                      : &v->stationary_eps;
        sema_positive(s, set->lhs, dst, k);
    }
}

/* Keyword arguments of a call against "a! b c" (required marked '!'). */
static void sema_kwargs(sema *s, ast_node *call, const char *spec_keys)
{
    char buf[256];
    const char *names[16];
    bool req[16], seen[16] = { false };
    size_t nk = 0;
    snprintf(buf, sizeof buf, "%s", spec_keys);
    for (char *tok = strtok(buf, " "); tok && nk < 16; tok = strtok(NULL, " ")) {
        size_t len = strlen(tok);
        req[nk] = tok[len - 1] == '!';
        if (req[nk])
            tok[len - 1] = '\0';
        names[nk++] = arena_strndup(s->arena, tok, strlen(tok));
    }
    for (size_t i = 0; i < call->nkids; i++) {
        ast_node *a = call->kids[i];
        if (a->kind != AST_KWARG) {
            diag_error(s->diag, a->loc, "'%s' takes keyword arguments only (name = value)", call->name);
            continue;
        }
        size_t j = 0;
        while (j < nk && strcmp(names[j], a->name))
            j++;
        if (j == nk) {
            diag_error(s->diag, a->name_loc, "'%s' has no argument '%s'%s", call->name, a->name,
                       sema_hint(s, a->name, names, nk));
            continue;
        }
        if (seen[j])
            diag_error(s->diag, a->name_loc, "argument '%s' given twice", a->name);
        seen[j] = true;
    }
    for (size_t j = 0; j < nk; j++)
        if (req[j] && !seen[j])
            diag_error(s->diag, call->loc, "'%s' needs the argument '%s'", call->name, names[j]);
}

/* The arguments of the data generators, by name (a name means the same in
 * every generator that takes it): 'i' an integer in [lo, hi], 'r' a number
 * in [lo, hi], 'l' a list of numbers, 'f' a file, 'd' a distribution, 'b'
 * true or false.
 * Values the data are made of stay within the magnitude the file readers
 * accept (IBRT_IO_MAX_ABS: a square stays finite). */
#define SEMA_MAX_SAMPLES 10000000L   /* training or test samples of a generator */
#define SEMA_MAX_DATA_MIB 4096        /* a generator's data set, as the trainer's other buffers */
static const struct {
    const char *key;
    char type;
    double lo, hi;
    const char *what;
} gen_args[] = {
    { "features", 'i', 1, IBC_MAX_DIM, "the number of features" },
    { "modes", 'i', 1, IBC_MAX_DIM, "the number of modes" },
    { "length", 'i', 1, IBC_MAX_DIM, "the signal length" },
    { "size", 'i', 1, 46340, "the matrix size" },
    { "train", 'i', 1, SEMA_MAX_SAMPLES, "the number of training samples" },
    { "measurements", 'i', 1, SEMA_MAX_SAMPLES, "the number of measurements" },
    { "test", 'i', 0, SEMA_MAX_SAMPLES, "the number of test samples" },
    { "nonzeros", 'i', 0, IBC_MAX_DIM, "the number of non-zeros" },
    { "noise", 'r', 0, IBRT_IO_MAX_ABS, "the noise, a standard deviation" },
    { "value", 'r', -IBRT_IO_MAX_ABS, IBRT_IO_MAX_ABS, "the target value" },
    { "observed", 'r', 0, 1, "the probability of observing an entry" },
    { "batch_fraction", 'r', 0, 1, "the fraction of observed entries in a minibatch" },
    { "levels", 'l', 0, 0, "levels" },
    { "lengths", 'l', 0, 0, "lengths" },
    { "singular_values", 'l', 0, 0, "singular_values" },
    { "x", 'f', 0, 0, "x" }, { "y", 'f', 0, 0, "y" }, { "test_x", 'f', 0, 0, "test_x" }, { "test_y", 'f', 0, 0, "test_y" },
    { "inputs", 'd', 0, 0, "inputs" },
    { "header", 'b', 0, 0, "whether the first line of each CSV file is a header" },
};

/* The kwarg node NAME of a call, or NULL. */
static ast_node *sema_kwarg(const ast_node *call, const char *name)
{
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG && !strcmp(call->kids[i]->name, name))
            return call->kids[i];
    return NULL;
}

static bool sema_gen_arg(sema *s, ast_node *a)
{
    ast_node *v = a->lhs;
    size_t k = 0;
    while (k < COUNT(gen_args) && strcmp(gen_args[k].key, a->name))
        k++;
    if (k == COUNT(gen_args))
        return false;   /* reported by sema_kwargs */
    char type = gen_args[k].type;
    if (type == 'b') {   /* true or false */
        if (v->kind != AST_IDENT || (strcmp(v->name, "true") && strcmp(v->name, "false"))) {
            diag_error(s->diag, v->loc, "'%s' must be true (the first line of each CSV file is a header, skipped "
                       "whatever it holds) or false (it is data)", a->name);
            return false;
        }
        return true;
    }
    static const char *const kinds[] = { ['i'] = "a whole number", ['r'] = "a number", ['l'] = "a list of numbers",
                                         ['f'] = "a file name in quotes", ['d'] = "a distribution, e.g. normal(0, 1)" };
    bool got_str = v->kind == AST_STR, got_list = v->kind == AST_LIST;
    if ((type == 'f') != got_str || (type == 'l') != got_list || (type == 'd' && v->kind != AST_CALL)) {
        diag_error(s->diag, v->loc, "'%s' must be %s, got %s", a->name, kinds[(int)type],
                   got_str ? "a string" : got_list ? "a list" : "a number");
        return false;
    }
    switch (type) {
    case 'f':
        return sema_file_exists(s, v);
    case 'd':
        return sema_dist_call(s, v);
    case 'l': {
        bool ok = true;
        for (size_t j = 0; j < v->nkids; j++) {
            double x;
            if (!sema_const(s, v->kids[j], &x)) {
                ok = false;
            } else if (fabs(x) > IBRT_IO_MAX_ABS) {
                diag_error(s->diag, v->kids[j]->loc, "an entry of '%s' must be of magnitude at most %g, got %g",
                           a->name, IBRT_IO_MAX_ABS, x);
                ok = false;
            }
        }
        if (ok && v->nkids == 0) {
            diag_error(s->diag, v->loc, "'%s' is an empty list", a->name);
            return false;
        }
        return ok;
    }
    case 'i': {
        long x;
        return sema_const_int(s, v, (long)gen_args[k].lo, (long)gen_args[k].hi,
                              arena_printf(s->arena, "'%s' (%s)", a->name, gen_args[k].what), &x);
    }
    default: {
        double x;
        if (!sema_const(s, v, &x))
            return false;
        if (x < gen_args[k].lo || x > gen_args[k].hi || (!strcmp(a->name, "batch_fraction") && x == 0)) {
            double lo = gen_args[k].lo, hi = gen_args[k].hi;
            const char *range = hi == 1    ? (!strcmp(a->name, "batch_fraction") ? "in (0, 1]" : "in [0, 1]")
                                : lo == -hi ? arena_printf(s->arena, "of magnitude at most %g", hi)
                                : x < lo    ? arena_printf(s->arena, "at least %g", lo)
                                            : arena_printf(s->arena, "at most %g", hi);
            diag_error(s->diag, v->loc, "'%s' (%s) must be %s, got %g", a->name, gen_args[k].what, range, x);
            return false;
        }
        return true;
    }
    }
}

/* Checks of one generator's arguments against each other (all present and
 * valid): non-zeros that fit, piecewise lengths that add up. */
static void sema_gen_consistent(sema *s, ast_node *call)
{
    const char *g = call->name;
    if (!strcmp(g, "cosine_spikes") || !strcmp(g, "sparse_regression")) {
        bool cos = !strcmp(g, "cosine_spikes");
        ast_node *n = sema_kwarg(call, cos ? "modes" : "features"), *nz = sema_kwarg(call, "nonzeros");
        long room = (long)n->lhs->value - (cos ? 1 : 0);   /* cosine_spikes never puts one on mode 0 */
        if (nz->lhs->value > (double)room)
            diag_error(s->diag, nz->lhs->loc, "%s cannot place %.0f non-zeros among %ld %s: at most %ld", g,
                       nz->lhs->value, room, cos ? "modes (mode 0, the constant, is never one)" : "features", room);
    } else if (!strcmp(g, "piecewise_signal")) {
        ast_node *lv = sema_kwarg(call, "levels")->lhs, *ln = sema_kwarg(call, "lengths")->lhs;
        ast_node *length = sema_kwarg(call, "length");
        if (lv->nkids != ln->nkids) {
            diag_error(s->diag, ln->loc, "'lengths' has %zu entr%s but 'levels' has %zu: one length per level",
                       ln->nkids, ln->nkids == 1 ? "y" : "ies", lv->nkids);
            return;
        }
        double total = 0;
        for (size_t j = 0; j < ln->nkids; j++) {
            double x = ln->kids[j]->value;
            if (x < 0 || x != floor(x) || x > IBC_MAX_DIM) {
                diag_error(s->diag, ln->kids[j]->loc, "a length is a whole number of samples from 0 to %ld, got %g",
                           IBC_MAX_DIM, x);
                return;
            }
            total += x;
        }
        if (total != length->lhs->value)
            diag_error(s->diag, ln->loc, "the lengths add up to %.0f, but length = %.0f: they must be equal", total,
                       length->lhs->value);
    } else if (!strcmp(g, "low_rank")) {
        ast_node *sv = sema_kwarg(call, "singular_values")->lhs, *size = sema_kwarg(call, "size");
        if ((double)sv->nkids > size->lhs->value)
            diag_error(s->diag, sv->loc, "%zu singular values for a %.0f x %.0f matrix: at most %.0f", sv->nkids,
                       size->lhs->value, size->lhs->value, size->lhs->value);
    }
}

/* Data files are read by the trainer when it starts; the check reads them
 * too, by the same reader and rule (a CSV header as the spec says), so
 * that a file the trainer would refuse (a header of numbers, a NUL byte,
 * a ragged row, a value too large) is an error at its name in the spec
 * rather than at run time.  The trainer still reads and checks them: they
 * may change in between. */
static void sema_data_files_read(sema *s, ast_node *call)
{
    static const char *const keys[] = { "x", "y", "test_x", "test_y" };
    ast_node *h = sema_kwarg(call, "header");
    int header = h ? !strcmp(h->lhs->name, "true") : IBRT_CSV_HEADER_DATA;
    for (size_t i = 0; i < COUNT(keys); i++) {
        ast_node *f = sema_kwarg(call, keys[i]);
        if (!f)
            continue;
        const char *path = f->lhs->text;
        const char *full = path[0] == '/' ? path : arena_printf(s->arena, "%s/%s", s->spec_dir, path);
        size_t n = strlen(full), rows, cols;
        double *data = NULL;
        ibrt_error err;
        ibrt_status st = n >= 4 && !strcmp(full + n - 4, ".npy") ? ibrt_io_read_matrix(full, &rows, &cols, &data, &err)
                                                                 : ibrt_csv_read_header(full, header, &rows, &cols,
                                                                                        &data, &err);
        free(data);
        if (st != IBRT_OK)
            diag_error(s->diag, f->lhs->loc, "the trainer would refuse this file: %s", err.msg);
    }
}

static void sema_data(sema *s, ast_node *n)
{
    ast_node *call = n->lhs;
    size_t g = 0;
    while (g < COUNT(sema_generators) && strcmp(sema_generators[g].name, call->name))
        g++;
    if (g == COUNT(sema_generators)) {
        const char *c[COUNT(sema_generators)];
        for (size_t i = 0; i < COUNT(sema_generators); i++)
            c[i] = sema_generators[i].name;
        diag_error(s->diag, call->name_loc, "unknown data generator '%s'%s", call->name,
                   sema_hint(s, call->name, c, COUNT(sema_generators)));
        return;
    }
    int before = s->diag->errors;
    sema_kwargs(s, call, sema_generators[g].keys);
    s->spec->data = call;
    bool ok = s->diag->errors == before;
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG)
            ok = sema_gen_arg(s, call->kids[i]) && ok;
    if (ok)
        sema_gen_consistent(s, call);
    else
        s->data_bad = true;   /* no whole-spec checks of the data either */
    if (ok && (!strcmp(call->name, "csv") || !strcmp(call->name, "npy")))
        sema_data_files_read(s, call);
    if (!strcmp(call->name, "low_rank"))
        s->has_mask = true;
}

/* Whole-spec checks of the data against the model (issue 17): a
 * generator's samples must have as many numbers as the inputs take and
 * labels of the predictor's shape, or the trainer would read past its data;
 * a minibatch must not be larger than the training set. */
static void sema_data_fits(sema *s)
{
    ibc_spec *sp = s->spec;
    ast_node *call = sp->data;
    const char *g = call->name;
    long in = 0;
    for (size_t i = 0; i < sp->ninputs; i++)
        in += sp->inputs[i].shape.rows * sp->inputs[i].shape.cols;
    const char *size_key = !strcmp(g, "cosine_spikes")       ? "modes"
                           : !strcmp(g, "sparse_regression") ? "features"
                           : !strcmp(g, "piecewise_signal")  ? "length"
                                                             : NULL;
    bool no_inputs = !strcmp(g, "low_rank") || !strcmp(g, "noisy_target");
    if (size_key) {
        ast_node *a = sema_kwarg(call, size_key);
        long want = (long)a->lhs->value;
        if (sp->ninputs == 0) {
            diag_error(s->diag, a->loc, "%s gives samples of %s = %ld numbers, but the model has no input: declare "
                       "one, e.g. input x : vector[%ld]", g, size_key, want, want);
        } else if (in != want) {
            diag_error(s->diag, a->loc, "%s gives samples of %s = %ld numbers, but the model's inputs take %ld per "
                       "sample: make them agree (%s = %ld, or inputs of %ld numbers in all)", g, size_key, want, in,
                       size_key, in, want);
            for (size_t i = 0; i < sp->ninputs; i++)
                diag_note(s->diag, sp->inputs[i].decl->loc, "input '%s' is %s (%ld number%s)", sp->inputs[i].name,
                          shape_str(s, sp->inputs[i].shape), sp->inputs[i].shape.rows * sp->inputs[i].shape.cols,
                          sp->inputs[i].shape.rows * sp->inputs[i].shape.cols == 1 ? "" : "s");
        }
    } else if (no_inputs) {
        for (size_t i = 0; i < sp->ninputs; i++)
            diag_error(s->diag, sp->inputs[i].decl->loc, "%s gives no inputs, only labels: input '%s' would always "
                       "be zero; remove it", g, sp->inputs[i].name);
    }
    /* labels: one number per sample, or low_rank's size x size matrix */
    ibc_shape out = sp->out_shape;
    if (size_key || !strcmp(g, "noisy_target")) {
        if (out.rank != 0)
            diag_error(s->diag, sp->predict->loc, "%s gives one number per sample as its label, but the predictor "
                       "gives %s: the predictor must be a scalar", g, shape_str(s, out));
    } else if (!strcmp(g, "low_rank")) {
        ast_node *a = sema_kwarg(call, "size");
        long n = (long)a->lhs->value;
        if (out.rank != 2 || out.rows != n || out.cols != n) {
            diag_error(s->diag, sp->predict->loc, "low_rank gives a %ld x %ld matrix of labels, but the predictor "
                       "gives %s: the predictor must be a matrix[%ld, %ld]", n, n, shape_str(s, out), n, n);
            diag_note(s->diag, a->loc, "the matrix size is set here");
        }
    }
    /* the data set a generator draws once, held by the trainer for the
     * whole run: within the cap on its buffers (features = 100000 with
     * train = 10^7 passed the check and needed 8 TB at run time) */
    if (size_key) {
        ast_node *a = sema_kwarg(call, size_key), *tr = sema_kwarg(call, !strcmp(g, "piecewise_signal") ? "measurements"
                                                                                                       : "train");
        ast_node *te = sema_kwarg(call, "test");
        double samples = tr->lhs->value + (te ? te->lhs->value : 0);
        double mib = samples * (a->lhs->value + 1) * 8.0 / 1048576.0;   /* inputs and a label per sample */
        if (mib > SEMA_MAX_DATA_MIB) {
            diag_error(s->diag, tr->lhs->loc, "the data set of %.0f samples of %.0f numbers would need %.0f MiB; the "
                       "cap is %d MiB: fewer samples, or fewer %s", samples, a->lhs->value, mib, SEMA_MAX_DATA_MIB,
                       size_key);
        }
    }
    /* a minibatch drawn from a fixed training set fits in it */
    const char *train_key = !strcmp(g, "piecewise_signal") ? "measurements" : size_key ? "train" : NULL;
    ibc_train *t = &sp->train;
    if (train_key && t->batch > 0) {
        ast_node *a = sema_kwarg(call, train_key);
        long n = (long)a->lhs->value;
        if (t->batch > n) {
            diag_error(s->diag, t->batch_node->loc, "batch = %ld draws more samples per step than the %ld training "
                       "sample%s: lower the batch to at most %ld, or use batch = full", t->batch, n,
                       n == 1 ? "" : "s", n);
            diag_note(s->diag, a->loc, "the training set's size is set here");
        }
    }
}

static void sema_loss(sema *s, ast_node *n)
{
    ast_node *l = n->lhs;
    if (strcmp(l->name, "mse")) {
        const char *c[] = { "mse" };
        diag_error(s->diag, l->kind == AST_CALL ? l->name_loc : l->loc, "unknown loss '%s'%s", l->name,
                   sema_hint(s, l->name, c, 1));
        return;
    }
    s->spec->loss = LOSS_MSE;
    if (l->kind != AST_CALL)
        return;
    for (size_t i = 0; i < l->nkids; i++) {
        ast_node *a = l->kids[i];
        if (a->kind == AST_KWARG && !strcmp(a->name, "mask") && a->lhs->kind == AST_IDENT) {
            if (!s->has_mask || strcmp(a->lhs->name, "observed"))
                diag_error(s->diag, a->lhs->loc, "unknown mask '%s' (the data defines %s)", a->lhs->name,
                           s->has_mask ? "'observed'" : "no mask");
            else
                s->spec->loss_mask = "observed";
        } else if (a->kind == AST_KWARG && !strcmp(a->name, "normalise") && a->lhs->kind == AST_IDENT &&
                   (!strcmp(a->lhs->name, "all") || !strcmp(a->lhs->name, "observed"))) {
            s->spec->loss_normalise_all = !strcmp(a->lhs->name, "all");
        } else {
            diag_error(s->diag, a->loc, "'mse' takes mask = NAME and normalise = all | observed");
        }
    }
}

/* The depth a log-sparsity strength c asks for: L = 2 / (2 - c)
 * (docs/theory.md §5: the depth-L Hadamard product has bias of strength
 * 2 - 2/L), when that is an integer >= 2; otherwise 2 (design.c then
 * reports the strength, listing the ones that are possible). */
static long sema_strength_depth(const char *strength)
{
    if (!strength)
        return 2;
    char *end;
    double c = strtod(strength, &end);
    if (*end == '/') {
        double q = strtod(end + 1, NULL);
        c = q != 0 ? c / q : 0;
    }
    if (!(c >= 1 && c < 2))
        return 2;
    double L = 2 / (2 - c);
    long r = lround(L);
    return r >= 2 && r <= 64 && fabs(L - (double)r) < 1e-9 ? r : 2;
}

static void sema_design(sema *s, ast_node *n)
{
    ibc_design *d = &s->spec->design;
    ast_node *call = n->lhs;
    const char *kinds[] = { "log_sparsity", "log_spectral" };
    if (strcmp(call->name, kinds[0]) && strcmp(call->name, kinds[1])) {
        diag_error(s->diag, call->name_loc, "unknown design target '%s'%s", call->name,
                   sema_hint(s, call->name, kinds, 2));
        return;
    }
    bool spectral = !strcmp(call->name, "log_spectral");
    d->kind = spectral ? DESIGN_LOG_SPECTRAL : DESIGN_LOG_SPARSITY;
    d->decl = n;
    ast_node *arg = call->nkids == 1 ? call->kids[0] : NULL;
    if (!arg || arg->kind != AST_BINOP || arg->op != '@' || arg->rhs->kind != AST_IDENT) {
        diag_error(s->diag, call->loc, "a design target is %s(OPERATOR @ PARAMETER), e.g. %s(identity(n) @ w)",
                   call->name, call->name);
        return;
    }
    if (!sema_expr(s, arg->lhs) || !sema_expr(s, arg->rhs))
        return;
    ast_node *op = arg->lhs, *p = arg->rhs;
    if (p->ref_kind != IBC_REF_PARAM) {
        diag_error(s->diag, p->loc, "'%s' is not a parameter; a design target applies to a parameter", p->name);
        return;
    }
    ibc_shape ps = p->shape;
    if (op->shape.rank != 2) {
        diag_error(s->diag, op->loc, "expected an operator such as identity(n) or diff(n), got %s",
                   shape_str(s, op->shape));
        return;
    }
    if (spectral ? ps.rank != 2 : ps.rank != 1) {
        diag_error(s->diag, p->loc, "%s needs a %s parameter, but '%s' is %s", call->name,
                   spectral ? "matrix" : "vector", p->name, shape_str(s, ps));
        return;
    }
    if (op->shape.cols >= 0 && op->shape.cols != ps.rows) {
        diag_error(s->diag, arg->loc, "operator does not fit its argument: %s @ %s (%ld columns, %ld rows)",
                   shape_str(s, op->shape), shape_str(s, ps), op->shape.cols, ps.rows);
        return;
    }
    d->op = op;
    d->param = p->ref;
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *set = n->kids[i];
        if (!sema_set_once(s, n->kids, i, "'design'"))
            continue;
        if (set->kind == AST_SETTING && set->op == '~') {
            if (!sema_init(s, set->lhs))
                continue;
            if (!d->inits)
                d->inits = arena_alloc(s->arena, n->nkids * sizeof *d->inits);
            d->inits[d->ninits++] = set;
            continue;
        }
        if (!sema_known_key(s, set, design_keys, COUNT(design_keys), "'design'") || !sema_expect_eq(s, set))
            continue;
        const char *k = set->name;
        if (!strcmp(k, "depth"))
            sema_const_int(s, set->lhs, 2, 64, "the depth", &d->depth);
        else if (!strcmp(k, "rank"))
            sema_const_int(s, set->lhs, 1, IBC_MAX_DIM, "the rank", &d->rank);
        else if (!strcmp(k, "lr"))
            sema_positive(s, set->lhs, &d->lr, "the learning rate");
        else if (!strcmp(k, "strength")) {
            double v;
            if (sema_const(s, set->lhs, &v)) {
                ast_node *e = set->lhs;
                bool rational = e->kind == AST_NUM ||
                                (e->kind == AST_BINOP && e->op == '/' && e->lhs->kind == AST_NUM &&
                                 e->rhs->kind == AST_NUM);
                if (!rational) {
                    diag_error(s->diag, e->loc, "the strength is a number or a fraction such as 4/3");
                    continue;
                }
                d->strength = e->kind == AST_NUM ? e->text : arena_printf(s->arena, "%s/%s", e->lhs->text, e->rhs->text);
                d->strength_node = e;
            }
        } else {
            diag_error(s->diag, set->loc, "'init' is a distribution: init ~ normal(0, 0.1)");
        }
    }
    if (d->depth && d->strength)
        diag_error(s->diag, d->strength_node->loc, "give either a depth or a strength, not both");
    if (spectral && d->rank > 0 && d->rank > (ps.rows < ps.cols ? ps.rows : ps.cols))
        diag_error(s->diag, n->loc, "rank %ld exceeds min(%ld, %ld), the largest rank of '%s'", d->rank, ps.rows,
                   ps.cols, p->name);
    /* Factor names the block may initialise: u, v (sparsity, L = 2),
     * a1..aL (sparsity, L > 2), U, V (spectral rank form), W1..WL
     * (spectral chain), and init for all of them. */
    long L = d->depth ? d->depth : sema_strength_depth(d->strength);
    const char **names = arena_alloc(s->arena, (size_t)(L + 3) * sizeof *names);
    size_t nnames = 0;
    names[nnames++] = "init";
    if (spectral && !d->depth) {
        names[nnames++] = "U";
        names[nnames++] = "V";
    } else if (!spectral && L == 2) {
        names[nnames++] = "u";
        names[nnames++] = "v";
    } else {
        for (long k = 1; k <= L; k++)
            names[nnames++] = arena_printf(s->arena, spectral ? "W%ld" : "a%ld", k);
    }
    for (size_t i = 0; i < d->ninits; i++) {
        const char *name = d->inits[i]->name;
        bool ok = false;
        for (size_t k = 0; k < nnames && !ok; k++)
            ok = !strcmp(name, names[k]);
        if (!ok)
            diag_error(s->diag, d->inits[i]->name_loc, "'%s' is not a factor of this design%s", name,
                       sema_hint(s, name, names, nnames));
    }
}

static void sema_baseline(sema *s, ast_node *n)
{
    ast_node *b = n->lhs;
    const char *kinds[] = { "vanilla", "l1" };
    ibc_baseline base = { BASELINE_VANILLA, 0, 0, n };
    if (!strcmp(b->name, "l1")) {
        base.kind = BASELINE_L1;
        if (b->kind != AST_CALL || b->nkids != 1 || b->kids[0]->kind != AST_KWARG ||
            strcmp(b->kids[0]->name, "weight")) {
            diag_error(s->diag, b->loc, "an L1 baseline needs its weight: baseline l1(weight = 0.1)");
            return;
        }
        if (!sema_positive(s, b->kids[0]->lhs, &base.weight, "the L1 weight"))
            return;
    } else if (strcmp(b->name, "vanilla") || b->kind == AST_CALL) {
        diag_error(s->diag, b->kind == AST_CALL ? b->name_loc : b->loc, "unknown baseline '%s'%s", b->name,
                   strcmp(b->name, "vanilla") ? sema_hint(s, b->name, kinds, 2) : " (vanilla takes no arguments)");
        return;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *set = n->kids[i];
        if (sema_known_key(s, set, baseline_keys, COUNT(baseline_keys), "'baseline'") &&
            sema_set_once(s, n->kids, i, "'baseline'") && sema_expect_eq(s, set))
            sema_positive(s, set->lhs, &base.lr, "the learning rate");
    }
    ibc_spec *sp = s->spec;
    sp->baselines = sema_grow(s, sp->baselines, sp->nbaselines, &s->cap_base, sizeof base);
    sp->baselines[sp->nbaselines++] = base;
}

static void sema_teacher(sema *s, ast_node *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *set = n->kids[i];
        int idx;
        if (set->kind != AST_SETTING || set->op != '~') {
            diag_error(s->diag, set->loc, "a teacher block sets weights: NAME ~ distribution");
            continue;
        }
        if (sema_lookup(s, set->name, &idx) != IBC_REF_PARAM) {
            diag_error(s->diag, set->name_loc, "'%s' is not a parameter of the model%s", set->name,
                       sema_name_hint(s, set->name));
            continue;
        }
        sema_init(s, set->lhs);
    }
}

static void sema_symmetry(sema *s, ast_node *n)
{
    int idx;
    if (sema_lookup(s, n->index_dim, &idx) != IBC_REF_DIM) {
        diag_error(s->diag, n->loc, "'%s' is not a dimension (symmetry ... over j in DIM)", n->index_dim);
        return;
    }
    s->spec->dims[idx].used = true;
    for (size_t i = 0; i < n->nkids; i++) {
        ast_node *t = n->kids[i];
        double e;
        if (t->kind != AST_SETTING || t->op != '=') {
            diag_error(s->diag, t->loc, "a symmetry lists exponents: W[j, :] = 1, v[j] = -1");
            continue;
        }
        if (sema_lookup(s, t->name, &idx) != IBC_REF_PARAM) {
            diag_error(s->diag, t->name_loc, "'%s' is not a parameter%s", t->name, sema_name_hint(s, t->name));
            continue;
        }
        if (sema_const(s, t->lhs, &e) && e != floor(e))
            diag_error(s->diag, t->lhs->loc, "a symmetry exponent must be an integer, got %g", e);
    }
    ibc_spec *sp = s->spec;
    sp->symmetries = sema_grow(s, sp->symmetries, sp->nsymmetries, &s->cap_sym, sizeof n);
    sp->symmetries[sp->nsymmetries++] = n;
}

static void sema_unique(sema *s, ast_node *n, const char *what)
{
    ast_node *prev = s->first[n->kind];
    if (prev) {
        diag_error(s->diag, n->loc, "only one '%s' statement is allowed", what);
        diag_note(s->diag, prev->loc, "the first '%s' is here", what);
    } else {
        s->first[n->kind] = n;
    }
}

static void sema_stmt(sema *s, ast_node *n, size_t pos)
{
    ibc_spec *sp = s->spec;
    static const char *const names[] = {
        [AST_MODEL] = "model", [AST_DATA] = "data", [AST_TEACHER] = "teacher", [AST_PREDICT] = "predict",
        [AST_LOSS] = "loss", [AST_DESIGN] = "design", [AST_INIT] = "init", [AST_TRAIN] = "train",
        [AST_VERIFY] = "verify",
    };
    bool repeated = n->kind < AST_SPEC && names[n->kind] && s->first[n->kind];
    if (n->kind < AST_SPEC && names[n->kind])
        sema_unique(s, n, names[n->kind]);
    switch (n->kind) {
    case AST_MODEL:
        if (pos != 0 && !repeated)   /* a second model line has its error already */
            diag_error(s->diag, n->loc, "'model' must be the first statement");
        sema_name_length(s, n->name, n->name_loc);
        sp->model = n->name;
        sp->description = n->lhs ? n->lhs->text : "";
        break;
    case AST_DIM: {
        long v;
        bool fresh = sema_declare(s, n);
        if (sema_const_int(s, n->lhs, 1, IBC_MAX_DIM, "a dimension", &v) && fresh) {
            ibc_dim d = { n->name, v, n, false };
            sp->dims = sema_grow(s, sp->dims, sp->ndims, &s->cap_dims, sizeof d);
            sp->dims[sp->ndims++] = d;
        } else if (fresh) {
            sema_poison(s, n->name);
        }
        break;
    }
    case AST_INPUT:
        sema_var(s, n, false);
        break;
    case AST_PARAM:
        sema_var(s, n, true);
        break;
    case AST_DATA:
        sema_data(s, n);
        break;
    case AST_TEACHER:
        sp->teacher = n;
        sema_teacher(s, n);
        break;
    case AST_PREDICT:
        if (sema_expr(s, n->lhs)) {
            sp->predict = n->lhs;
            sp->out_shape = n->lhs->shape;
        }
        break;
    case AST_LOSS:
        sema_loss(s, n);
        break;
    case AST_DESIGN:
        sema_design(s, n);
        break;
    case AST_SYMMETRY:
        sema_symmetry(s, n);
        break;
    case AST_INIT: {
        ast_node *c = n->lhs;
        if (strcmp(c->name, "unbalance")) {
            const char *cand[] = { "unbalance" };
            diag_error(s->diag, c->name_loc, "unknown initialisation '%s'%s", c->name, sema_hint(s, c->name, cand, 1));
            break;
        }
        sema_kwargs(s, c, "from! to!");
        for (size_t i = 0; i < c->nkids; i++) {
            double v;
            if (c->kids[i]->kind == AST_KWARG)
                sema_const(s, c->kids[i]->lhs, &v);
        }
        sp->init = c;
        break;
    }
    case AST_TRAIN:
        sema_train(s, n);
        break;
    case AST_BASELINE:
        sema_baseline(s, n);
        break;
    case AST_VERIFY:
        sema_verify(s, n);
        break;
    default:
        diag_error(s->diag, n->loc, "not a statement");
        break;
    }
}

ibc_spec *sema_check(ibc_arena *arena, ast_node *root, ibc_diag *diag)
{
    sema s;
    memset(&s, 0, sizeof s);
    s.arena = arena;
    s.diag = diag;
    s.spec = arena_alloc(arena, sizeof *s.spec);
    s.spec->src = diag->src;
    s.spec->verify.invariance_tol = 1e-10;
    s.spec->verify.gradient_tol = 1e-6;
    s.spec->verify.logdet_tol = 1e-9;
    const char *path = diag->src ? diag->src->path : ".";
    const char *slash = strrchr(path, '/');
    s.spec_dir = slash ? arena_strndup(arena, path, (size_t)(slash - path)) : ".";
    if (slash == path)
        s.spec_dir = "/";

    if (root->nkids == 0) {
        diag_error(diag, root->loc, "the spec is empty: it needs model, data, predict, loss and train "
                                    "statements (see docs/language.md)");
        return NULL;
    }
    for (size_t i = 0; i < root->nkids; i++)
        sema_stmt(&s, root->kids[i], i);

    /* Whole-spec checks, at the model line (or the file's start). */
    ibc_loc at = s.first[AST_MODEL] ? s.first[AST_MODEL]->loc : (ibc_loc){ 0, 0 };
    const struct { ast_kind k; const char *msg; } required[] = {
        { AST_MODEL, "the spec has no 'model' line (model NAME \"description\")" },
        { AST_DATA, "the spec has no 'data' statement" },
        { AST_PREDICT, "the spec has no 'predict' statement" },
        { AST_LOSS, "the spec has no 'loss' statement (loss mse)" },
        { AST_TRAIN, "the spec has no 'train' block" },
    };
    for (size_t i = 0; i < COUNT(required); i++)
        if (!s.first[required[i].k])
            diag_error(diag, at, "%s", required[i].msg);
    ibc_spec *sp = s.spec;
    if (sp->data && !strcmp(sp->data->name, "teacher") && !sp->teacher)
        diag_error(diag, sp->data->loc, "data teacher(...) needs a 'teacher' block giving the teacher's weights");
    if (sp->teacher && (!sp->data || strcmp(sp->data->name, "teacher")))
        diag_error(diag, sp->teacher->loc, "a 'teacher' block needs data teacher(...)");
    if (diag->errors == 0 && !s.data_bad && sp->data && sp->predict)
        sema_data_fits(&s);
    if (diag->errors == 0) {
        /* After an error (a misspelt mask, say) warnings would only repeat it. */
        if (sp->loss_mask == NULL && s.has_mask && s.first[AST_LOSS])
            diag_warning(diag, s.first[AST_LOSS]->loc,
                         "the data has a mask of observed entries but the loss does not use it");
        for (size_t i = 0; i < sp->ndims; i++)
            if (!sp->dims[i].used)
                diag_warning(diag, sp->dims[i].decl->name_loc, "dimension '%s' is never used", sp->dims[i].name);
        for (size_t i = 0; i < sp->nparams; i++)
            if (!sp->params[i].used)
                diag_warning(diag, sp->params[i].decl->name_loc, "parameter '%s' is never used in the predictor",
                             sp->params[i].name);
        for (size_t i = 0; i < sp->ninputs; i++)
            if (!sp->inputs[i].used)
                diag_warning(diag, sp->inputs[i].decl->name_loc, "input '%s' is never used in the predictor",
                             sp->inputs[i].name);
    }
    return diag->errors ? NULL : sp;
}
