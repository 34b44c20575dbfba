/*
 * sema.c: checks a parsed spec and builds the ibc_spec later phases use
 * (sema_check, ibc.h), with the pieces every file of the check shares.
 *
 * One pass over the statements in order (a name is visible after its
 * declaration), then whole-spec checks (required statements, unused
 * names).  Every error is placed at the AST node it is about and the pass
 * goes on, so one run reports every independent problem.  Expressions get
 * their shapes here (node->shape); dimensions and other constants are
 * folded to doubles (node->value) — the exact rational value of a literal
 * is the symbolic phase's business, from node->text, except a design
 * strength's, whose depth sema finds exactly (exact_literal) and hands on
 * (ibc_design.strength_depth).  Built-in names are resolved once to
 * ibc_builtin (ast_node.builtin) from the table of builtin.c.
 *
 * This file: built-in resolution and "did you mean" hints, shapes, the
 * name table (declarations, lookups, poisoned names), declarations of
 * dims, inputs and parameters, the statement dispatch and the whole-spec
 * checks.  The other files of the check (sema_impl.h says which does
 * what) are called from sema_stmt.
 */
#include "sema_impl.h"
#include "exact.h"
#include "ibrt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ builtins */

/* The names of the built-ins of class c1 or c2, in the order of
 * runtime/ibrt_builtins.def, into out (IBC_B_COUNT entries), for "did you
 * mean"; returns how many. */
size_t sema_builtin_names(ibc_builtin_class c1, ibc_builtin_class c2, const char **out)
{
    size_t k = 0;
    for (int b = IBC_B_NONE + 1; b < IBC_B_COUNT; b++)
        if (ibc_builtins[b].cls == c1 || ibc_builtins[b].cls == c2)
            out[k++] = ibc_builtins[b].name;
    return k;
}

/* Every call's built-in (ast_node.builtin) from its name, once, before
 * the checks: later code, here and in later phases, compares it. */
static void sema_resolve_builtins(ast_node *n)
{
    if (!n)
        return;
    if (n->kind == AST_CALL)
        n->builtin = ibc_builtin_lookup(n->name);
    sema_resolve_builtins(n->lhs);
    sema_resolve_builtins(n->rhs);
    for (size_t i = 0; i < n->nkids; i++)
        sema_resolve_builtins(n->kids[i]);
    sema_resolve_builtins(n->type.dim[0]);
    sema_resolve_builtins(n->type.dim[1]);
}

/* A "did you mean" suffix for name among n candidates (or ""). */
const char *sema_hint(sema *s, const char *name, const char *const *cands, size_t n)
{
    const char *best = diag_suggest(name, cands, n);
    return best ? arena_printf(s->arena, "; did you mean '%s'?", best) : "";
}

const char *sema_shape_str(sema *s, ibc_shape sh)
{
    if (sh.rank == 0)
        return "scalar";
    if (sh.rank == 1)
        return arena_printf(s->arena, "vector[%ld]", sh.rows);
    if (sh.rows < 0)
        return "matrix[?, ?]";
    return arena_printf(s->arena, "matrix[%ld, %ld]", sh.rows, sh.cols);
}

ibc_shape sema_shape_make(int rank, long rows, long cols)
{
    ibc_shape sh = { rank, rank ? rows : 1, rank == 2 ? cols : 1 };
    return sh;
}

bool sema_shape_eq(ibc_shape a, ibc_shape b)
{
    if (a.rank != b.rank)
        return false;
    if (a.rows < 0 || b.rows < 0)   /* a matrix read from a file: unknown */
        return true;
    return a.rows == b.rows && a.cols == b.cols;
}

/* --------------------------------------------------------------- names */

void *sema_grow(sema *s, void *arr, size_t n, size_t *cap, size_t elem)
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
int sema_lookup(sema *s, const char *name, int *idx)
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

const char *sema_name_hint(sema *s, const char *name)
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

static void sema_poison(sema *s, const char *name)
{
    s->poisoned = sema_grow(s, s->poisoned, s->npoisoned, &s->cap_poisoned, sizeof *s->poisoned);
    s->poisoned[s->npoisoned++] = name;
}

bool sema_is_poisoned(sema *s, const char *name)
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
    *out = sema_shape_make(rank, d[0], d[1]);
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
    sema_resolve_builtins(root);
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
    if (sp->data && sp->data->builtin == IBC_B_teacher && !sp->teacher)
        diag_error(diag, sp->data->loc, "data teacher(...) needs a 'teacher' block giving the teacher's weights");
    if (sp->teacher && (!sp->data || sp->data->builtin != IBC_B_teacher))
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

