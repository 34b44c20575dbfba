/*
 * sema_blocks.c: the settings blocks of a spec (sema_impl.h): train (and
 * its extend), verify, design (target, operator, depth or strength found
 * exactly, rank, factor inits), baseline, teacher and symmetry.  Each
 * setting is checked against its block's known keys, once, with its
 * range; values go into the ibc_spec.
 */
#include "sema_impl.h"
#include "exact.h"
#include "ibrt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* A learning rate: a positive constant, or `auto`, `auto(LO, HI)`,
 * `auto(LO, HI, steps = K)` (ibc.h ibc_lrset): the trainer's grid of one
 * value per decade from LO to HI, at most IBC_LR_AUTO_DECADES decades. */
#define IBC_LR_AUTO_DECADES 30
static bool sema_lr(sema *s, ast_node *e, double *value, ibc_lrset *lrs)
{
    memset(lrs, 0, sizeof *lrs);
    lrs->node = e;
    bool named_auto = (e->kind == AST_IDENT || e->kind == AST_CALL) && e->name && !strcmp(e->name, "auto");
    if (!named_auto)
        return sema_positive(s, e, value, "the learning rate");
    *value = 0;
    lrs->is_auto = true;
    lrs->lo = IBC_LR_AUTO_LO;
    lrs->hi = IBC_LR_AUTO_HI;
    lrs->steps = IBC_LR_AUTO_STEPS;
    if (e->kind == AST_IDENT)
        return true;
    size_t npos = 0;
    bool ok = true;
    for (size_t i = 0; i < e->nkids; i++) {
        ast_node *a = e->kids[i];
        if (a->kind == AST_KWARG) {
            if (strcmp(a->name, "steps")) {
                diag_error(s->diag, a->name_loc.end > a->name_loc.begin ? a->name_loc : a->loc,
                           "lr = auto takes the bounds and 'steps': auto(1e-8, 1, steps = 500)");
                ok = false;
            } else
                ok = sema_const_int(s, a->lhs, 1, IBC_MAX_STEPS, "the steps of each trial run", &lrs->steps) && ok;
            continue;
        }
        if (npos == 2) {
            diag_error(s->diag, a->loc, "lr = auto takes two bounds, the lowest and the highest rate tried: "
                       "auto(1e-8, 1)");
            return false;
        }
        double v;
        if (!sema_const(s, a, &v))
            return false;
        if (!(v > 0) || !isfinite(v)) {
            diag_error(s->diag, a->loc, "the %s bound of lr = auto must be a positive number, got %g",
                       npos ? "upper" : "lower", v);
            return false;
        }
        *(npos++ ? &lrs->hi : &lrs->lo) = v;
    }
    if (npos == 1) {
        diag_error(s->diag, e->loc, "lr = auto takes both bounds or neither: auto(%g, 1) (the defaults are "
                   "auto(1e-8, 1))", lrs->lo);
        return false;
    }
    if (ok && !(lrs->lo < lrs->hi)) {
        diag_error(s->diag, e->loc, "the bounds of lr = auto are (lowest, highest): the lower %g is not below the "
                   "upper %g; swap them", lrs->lo, lrs->hi);
        return false;
    }
    if (ok && lrs->hi / lrs->lo > 1.000001 * pow(10, IBC_LR_AUTO_DECADES)) {
        diag_error(s->diag, e->loc, "lr = auto over more than %d decades (%g to %g): narrow the bounds",
                   IBC_LR_AUTO_DECADES, lrs->lo, lrs->hi);
        return false;
    }
    return ok;
}

const ibc_lrset *sema_spec_lr(const ibc_spec *spec, const ibc_lrset *own, double own_value, double *value)
{
    if (own && own->node) {
        *value = own_value;
        return own;
    }
    *value = spec->train.lr;
    return &spec->train.lrs;
}

static bool sema_expect_eq(sema *s, ast_node *set)
{
    if (set->kind != AST_SETTING || set->op != '=' || set->rhs) {
        diag_error(s->diag, set->loc, "expected 'name = value' here");
        return false;
    }
    return true;
}

void sema_train(sema *s, ast_node *n)
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
                else if (e->lhs->kind == AST_IDENT && e->lhs->name && !strcmp(e->lhs->name, "auto"))
                    diag_error(s->diag, e->lhs->loc, "lr = auto chooses the rate of the whole run: an extension "
                               "takes a number (or drop its lr to keep the chosen one)");
                else
                    sema_positive(s, e->lhs, &t->extend_lr, "the learning rate");
            }
            continue;
        }
        if (!sema_expect_eq(s, set))
            continue;
        if (!strcmp(k, "lr"))
            have_lr = sema_lr(s, set->lhs, &t->lr, &t->lrs);
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

void sema_verify(sema *s, ast_node *n)
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


/* The depth a log-sparsity strength c = num / den (literal texts; den
 * NULL: 1) asks for, exactly: L = 2 / (2 - c) (docs/theory.md §5: the
 * depth-L Hadamard product has bias of strength 2 - 2/L) when that is an
 * integer from 2 to 64; otherwise 0 (design.c then reports the strength,
 * listing the ones that are possible). */
static long sema_strength_depth(const char *num, const char *den)
{
    mpq_t c, d, l;
    mpq_inits(c, d, l, NULL);
    mpq_set_ui(d, 1, 1);
    bool ok = exact_literal(c, num) && (!den || exact_literal(d, den)) && mpq_sgn(d) != 0;
    long L = 0;
    if (ok) {
        mpq_div(c, c, d);
        mpq_set_ui(l, 2, 1);
        ok = mpq_cmp_ui(c, 1, 1) >= 0 && mpq_cmp(c, l) < 0;
    }
    if (ok) {
        mpq_sub(d, l, c);
        mpq_div(l, l, d);   /* 2 / (2 - c) */
        if (mpz_cmp_ui(mpq_denref(l), 1) == 0 && mpz_cmp_ui(mpq_numref(l), 64) <= 0)
            L = mpz_get_si(mpq_numref(l));
    }
    mpq_clears(c, d, l, NULL);
    return L;
}

/* The target log_sparsity(A @ w) or log_spectral(A @ W) of design block n:
 * a known target, an operator (a matrix) that fits a parameter of the
 * right rank; fills d->kind, decl, op and param and returns the parameter
 * node, or NULL after a located error. */
static ast_node *design_target(sema *s, ast_node *n)
{
    ibc_design *d = &s->spec->design;
    ast_node *call = n->lhs;
    const char *kinds[] = { "log_sparsity", "log_spectral" };
    if (strcmp(call->name, kinds[0]) && strcmp(call->name, kinds[1])) {
        diag_error(s->diag, call->name_loc, "unknown design target '%s'%s", call->name,
                   sema_hint(s, call->name, kinds, 2));
        return NULL;
    }
    bool spectral = !strcmp(call->name, "log_spectral");
    d->kind = spectral ? DESIGN_LOG_SPECTRAL : DESIGN_LOG_SPARSITY;
    d->decl = n;
    ast_node *arg = call->nkids == 1 ? call->kids[0] : NULL;
    if (!arg || arg->kind != AST_BINOP || arg->op != '@' || arg->rhs->kind != AST_IDENT) {
        diag_error(s->diag, call->loc, "a design target is %s(OPERATOR @ PARAMETER), e.g. %s(identity(n) @ w)",
                   call->name, call->name);
        return NULL;
    }
    if (!sema_expr(s, arg->lhs) || !sema_expr(s, arg->rhs))
        return NULL;
    ast_node *op = arg->lhs, *p = arg->rhs;
    if (p->ref_kind != IBC_REF_PARAM) {
        diag_error(s->diag, p->loc, "'%s' is not a parameter; a design target applies to a parameter", p->name);
        return NULL;
    }
    ibc_shape ps = p->shape;
    if (op->shape.rank != 2) {
        diag_error(s->diag, op->loc, "expected an operator such as identity(n) or diff(n), got %s",
                   sema_shape_str(s, op->shape));
        return NULL;
    }
    if (spectral ? ps.rank != 2 : ps.rank != 1) {
        diag_error(s->diag, p->loc, "%s needs a %s parameter, but '%s' is %s", call->name,
                   spectral ? "matrix" : "vector", p->name, sema_shape_str(s, ps));
        return NULL;
    }
    if (op->shape.cols >= 0 && op->shape.cols != ps.rows) {
        diag_error(s->diag, arg->loc, "operator does not fit its argument: %s @ %s (%ld columns, %ld rows)",
                   sema_shape_str(s, op->shape), sema_shape_str(s, ps), op->shape.cols, ps.rows);
        return NULL;
    }
    d->op = op;
    d->param = p->ref;
    return p;
}

/* strength = C (a number or a fraction): d->strength, strength_node and
 * the depth it needs (0 when no depth gives it; design reports that). */
static void design_strength(sema *s, ast_node *set)
{
    ibc_design *d = &s->spec->design;
    double v;
    if (!sema_const(s, set->lhs, &v))
        return;
    ast_node *e = set->lhs;
    bool rational = e->kind == AST_NUM ||
                    (e->kind == AST_BINOP && e->op == '/' && e->lhs->kind == AST_NUM && e->rhs->kind == AST_NUM);
    if (!rational) {
        diag_error(s->diag, e->loc, "the strength is a number or a fraction such as 4/3");
        return;
    }
    d->strength = e->kind == AST_NUM ? e->text : arena_printf(s->arena, "%s/%s", e->lhs->text, e->rhs->text);
    d->strength_node = e;
    d->strength_depth = e->kind == AST_NUM ? sema_strength_depth(e->text, NULL)
                                           : sema_strength_depth(e->lhs->text, e->rhs->text);
}

/* The settings of design block n: depth, rank, lr, strength, and the
 * factors' initialisations (NAME ~ distribution, into d->inits). */
static void design_settings(sema *s, ast_node *n)
{
    ibc_design *d = &s->spec->design;
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
            sema_lr(s, set->lhs, &d->lr, &d->lrs);
        else if (!strcmp(k, "strength"))
            design_strength(s, set);
        else
            diag_error(s->diag, set->loc, "'init' is a distribution: init ~ normal(0, 0.1)");
    }
}

/* Every initialised factor is one of this design's: u, v (sparsity,
 * L = 2), a1..aL (sparsity, L > 2), U, V (spectral rank form), W1..WL
 * (spectral chain), or init for all of them; else a located error with
 * a hint. */
static void design_factor_inits(sema *s, bool spectral)
{
    ibc_design *d = &s->spec->design;
    long L = d->depth ? d->depth : d->strength_depth ? d->strength_depth : 2;
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

/* The design block n (docs/theory.md §5) into spec->design: its target,
 * its settings, and the factors it initialises. */
void sema_design(sema *s, ast_node *n)
{
    ibc_design *d = &s->spec->design;
    ast_node *p = design_target(s, n);
    if (!p)
        return;
    ibc_shape ps = p->shape;
    bool spectral = d->kind == DESIGN_LOG_SPECTRAL;
    design_settings(s, n);
    if (d->depth && d->strength)
        diag_error(s->diag, d->strength_node->loc, "give either a depth or a strength, not both");
    if (spectral && d->rank > 0 && d->rank > (ps.rows < ps.cols ? ps.rows : ps.cols))
        diag_error(s->diag, n->loc, "rank %ld exceeds min(%ld, %ld), the largest rank of '%s'", d->rank, ps.rows,
                   ps.cols, p->name);
    design_factor_inits(s, spectral);
}

void sema_baseline(sema *s, ast_node *n)
{
    ast_node *b = n->lhs;
    const char *kinds[] = { "vanilla", "l1" };
    ibc_baseline base = { .kind = BASELINE_VANILLA, .decl = n };
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
            sema_lr(s, set->lhs, &base.lr, &base.lrs);
    }
    ibc_spec *sp = s->spec;
    sp->baselines = sema_grow(s, sp->baselines, sp->nbaselines, &s->cap_base, sizeof base);
    sp->baselines[sp->nbaselines++] = base;
}

void sema_teacher(sema *s, ast_node *n)
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

void sema_symmetry(sema *s, ast_node *n)
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

