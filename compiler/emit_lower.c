/*
 * emit_lower.c: lowering, the first step of code generation (emit_impl.h).
 *
 * Contract: emit_prog_build turns one spec expression (a model's
 * predictor, a designed parameter's w(factors), or A w(factors)) into a
 * prog: a tape of values with fixed per-sample shapes and offsets in
 * th[], x[] and tp[], each value marked batched when it depends on an
 * input, and named in the spec's words (see "names").  The fixed
 * operators it meets (diag([...]), dct(n), matrix("file")) are recorded
 * once each in emit_current (the emitter), for emit.c and emit_data.c
 * to declare and fill.  It writes no C.  A construct code generation does not support
 * (or a 17th matrix file) is a located error in the prog's diag and makes
 * emit_prog_build return false.
 */
#include "emit_impl.h"

/* ------------------------------------------------------------- lowering */

static int iv_add(prog *p, ival v)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->v = realloc(p->v, (size_t)p->cap * sizeof *p->v);
        if (!p->v) {
            fputs("ibc: fatal: out of memory\n", stderr);
            exit(70);
        }
    }
    if (v.kind == V_INPUT)
        v.batched = true;
    else if (v.kind != V_PARAM && v.kind != V_CONST)
        v.batched = (v.a >= 0 && p->v[v.a].batched) || (v.b >= 0 && p->v[v.b].batched);
    if (v.kind != V_PARAM && v.kind != V_INPUT && v.kind != V_CONST) {
        v.off = p->tape;
        p->tape += v.rows * v.cols * (v.batched ? p->bmax : 1);
    }
    p->v[p->n] = v;
    return p->n++;
}

static void dims_of(const ibc_shape *s, long *r, long *c)
{
    *r = s->rank == 0 ? 1 : s->rows;
    *c = s->rank == 2 ? s->cols : 1;
}

static int lower(prog *p, const ast_node *n);

/* Room for one more entry in an emitter table (any number of operators:
 * a fixed table once sent operators past its end to entry 0). */
static void *grow_table(void *table, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return table;
    int nc = *cap ? 2 * *cap : 16;
    void *nt = realloc(table, (size_t)nc * elem);
    if (!nt) {
        fputs("ibc: fatal: out of memory\n", stderr);
        exit(70);
    }
    *cap = nc;
    return nt;
}

static int diag_index(const ast_node *call)
{
    emitter *em = emit_current;
    for (int i = 0; i < em->ndiags; i++)
        if (em->diags[i] == call)
            return i;
    em->diags = grow_table(em->diags, em->ndiags, &em->cap_diags, sizeof *em->diags);
    em->diags[em->ndiags] = call;
    return em->ndiags++;
}

static void dct_needed(long n)
{
    emitter *em = emit_current;
    for (int i = 0; i < em->ndct; i++)
        if (em->dct_sizes[i] == n)
            return;
    em->dct_sizes = grow_table(em->dct_sizes, em->ndct, &em->cap_dct, sizeof *em->dct_sizes);
    em->dct_sizes[em->ndct++] = n;
}

/* A file named in the spec (a matrix("file") operator, data files), found
 * relative to the spec (as sema and design find it) and made absolute, so
 * that the trainer reads it from any working directory. */
const char *emit_spec_file_path(const ibc_spec *spec, const char *file, char *full, size_t size)
{
    const char *spath = spec->src && spec->src->path ? spec->src->path : "./x";
    const char *slash = strrchr(spath, '/');
    char joined[4096], cwd[2048];
    if (file[0] == '/' || !slash)
        snprintf(joined, sizeof joined, "%s", file);
    else
        snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - spath), spath, file);
    if (joined[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(full, size, "%s/%s", cwd, joined);
    else
        snprintf(full, size, "%s", joined);
    return full;
}

static int dense_index(prog *p, const ast_node *call, long r, long c, bool inverse)
{
    emitter *em = emit_current;
    char full[8192];
    const char *path = emit_spec_file_path(p->spec, call->kids[0]->text, full, sizeof full);
    for (int i = 0; i < em->ndense; i++)
        if (!strcmp(em->dense_path[i], path) && em->dense_r[i] == r && em->dense_c[i] == c) {
            em->dense_inv[i] = em->dense_inv[i] || inverse;
            return i;
        }
    if (em->ndense == 16) {
        diag_error(p->diag, call->loc, "code generation supports at most 16 matrix files per spec");
        return -1;
    }
    em->dense[em->ndense] = call;
    em->dense_path[em->ndense] = strdup(path);
    em->dense_r[em->ndense] = r;
    em->dense_c[em->ndense] = c;
    em->dense_inv[em->ndense] = inverse;
    return em->ndense++;
}

/* An operator call (optionally transposed, optionally inverted) applied
 * to z. */
static int lower_op(prog *p, const ast_node *n, bool tr, bool inverse, int z, const ast_node *site)
{
    ival v = { .kind = V_OP, .rows = p->v[z].rows, .cols = p->v[z].cols, .a = z, .b = -1, .opcall = n, .op_tr = tr,
               .op_inv = inverse, .site = site };
    if (p->v[z].kind == V_CONST) {
        diag_error(p->diag, site->loc, "code generation does not support an operator applied to a constant");
        p->failed = true;
    }
    const char *name = n->name;
    ibc_builtin b = n->builtin;
    if (b == IBC_B_identity)
        v.op = OP_ID;
    else if (b == IBC_B_diff)
        v.op = inverse ? (tr ? OP_CUMSUM_T : OP_CUMSUM) : (tr ? OP_DIFF_T : OP_DIFF);
    else if (b == IBC_B_dct || b == IBC_B_cosine) {
        v.op = (inverse != tr) ? OP_DCT_T : OP_DCT;
        dct_needed(n->shape.rows);
    } else if (b == IBC_B_diag) {
        v.op = inverse ? OP_DIAG_INV : OP_DIAG;
        v.diag_id = diag_index(n);
    } else if (b == IBC_B_matrix && n->nkids == 1 && n->kids[0]->kind == AST_STR &&
               (n->shape.rows < 0 || (n->shape.rows == v.rows && n->shape.cols == v.rows) ||
                (!inverse && (tr ? n->shape.rows : n->shape.cols) == v.rows))) {
        /* the file's operator (R x C, square when unknown until the
         * trainer loads it, which checks the shape): applied, C entries in
         * and R out; transposed, R in and C out; inverted, square */
        long R = n->shape.rows < 0 ? v.rows : n->shape.rows, C = n->shape.rows < 0 ? v.rows : n->shape.cols;
        v.op = inverse ? (tr ? OP_DENSE_INV_T : OP_DENSE_INV) : (tr ? OP_DENSE_T : OP_DENSE);
        v.rows = tr ? C : R;
        v.diag_id = dense_index(p, n, R, C, inverse);
    } else {
        if (b == IBC_B_matrix)
            diag_error(p->diag, site->loc, "code generation supports 'matrix' as an operator whose columns match "
                                           "the rows of what it applies to (square when inverted)");
        else
            diag_error(p->diag, site->loc, "code generation does not support the operator '%s' here (it is not "
                                           "square)", name);
        p->failed = true;
    }
    if (v.diag_id < 0)
        p->failed = true;
    return iv_add(p, v);
}

/* An operator expression (calls, transposes, compositions) applied to z,
 * or its inverse: (A B) z = A (B z), (A B)' z = B' (A' z),
 * (A B)^-1 z = B^-1 (A^-1 z), (A B)'^-1 z = A'^-1 (B'^-1 z). */
static int lower_opexpr(prog *p, const ast_node *op, bool tr, bool inverse, int z, const ast_node *site)
{
    if (op->kind == AST_TRANSPOSE)
        return lower_opexpr(p, op->lhs, !tr, inverse, z, site);
    if (op->kind == AST_BINOP) {
        const ast_node *first = op->rhs, *second = op->lhs;   /* A (B z): B first */
        if (tr != inverse) {
            first = op->lhs;
            second = op->rhs;
        }
        return lower_opexpr(p, second, tr, inverse, lower_opexpr(p, first, tr, inverse, z, site), site);
    }
    return lower_op(p, op, tr, inverse, z, site);
}

static const ast_node *transposed(const ast_node *n)
{
    if (n->kind == AST_TRANSPOSE)
        return n->lhs;
    if (n->kind == AST_CALL && n->builtin == IBC_B_transpose && n->nkids == 1)
        return n->kids[0];
    return NULL;
}

/* A matrix transpose (postfix ' or transpose()) that a product can fuse. */
static bool is_transpose(const ast_node *n)
{
    const ast_node *in = transposed(n);
    return in && in->shape.rank == 2 && !in->is_const && !n->is_const;
}

static int lower_node(prog *p, const ast_node *n);

/* The value of expression n, named after it. */
static int lower(prog *p, const ast_node *n)
{
    int i = lower_node(p, n);
    if (!p->v[i].node && !p->v[i].site) {
        p->v[i].node = n;
        p->v[i].site = n;
    } else if (p->v[i].opcall && p->v[i].site == n) {
        p->v[i].node = n;   /* the whole of A @ z or solve(A, z): its own text */
    }
    return i;
}

static int lower_node(prog *p, const ast_node *n)
{
    long r, c;
    dims_of(&n->shape, &r, &c);
    ival v = { .rows = r, .cols = c, .a = -1, .b = -1 };
    if (n->is_const) {
        v.kind = V_CONST;
        v.c = n->value;
        return iv_add(p, v);
    }
    switch (n->kind) {
    case AST_IDENT:
        v.var = n->ref;
        if (n->ref_kind == IBC_REF_PARAM) {
            v.kind = V_PARAM;
            v.off = p->param_off[n->ref];
        } else {
            v.kind = V_INPUT;
            v.off = p->input_off[n->ref];
        }
        return iv_add(p, v);
    case AST_NEG:
        v.kind = V_NEG;
        v.a = lower(p, n->lhs);
        return iv_add(p, v);
    case AST_TRANSPOSE:
        v.kind = V_TRANS;
        v.a = lower(p, n->lhs);
        return iv_add(p, v);
    case AST_BINOP: {
        if (n->op == '@' && ast_is_operator_expr(n->lhs))
            return lower_opexpr(p, n->lhs, false, false, lower(p, n->rhs), n);
        if (n->op == '@') {
            /* A' @ B: the transpose is a BLAS flag, not a copy */
            const ast_node *l = n->lhs, *r_ = n->rhs;
            v.ta = is_transpose(l);
            v.tb = is_transpose(r_);
            v.a = lower(p, v.ta ? transposed(l) : l);
            v.b = lower(p, v.tb ? transposed(r_) : r_);
            v.kind = V_MATMUL;
            v.avec = l->shape.rank == 1;
            v.bvec = r_->shape.rank == 1;
            if (p->v[v.a].kind == V_CONST || p->v[v.b].kind == V_CONST) {
                diag_error(p->diag, n->loc, "code generation does not support a constant operand of '@'");
                p->failed = true;
            }
            return iv_add(p, v);
        }
        int a = lower(p, n->lhs), b = lower(p, n->rhs);
        v.a = a;
        v.b = b;
        switch (n->op) {
        case '@':
            v.kind = V_MATMUL;
            v.avec = n->lhs->shape.rank == 1;
            v.bvec = n->rhs->shape.rank == 1;
            break;
        case '*':
            if (n->lhs->shape.rank == 0 || n->rhs->shape.rank == 0) {
                v.kind = V_SCALE;   /* a: the scalar, b: the tensor */
                if (n->lhs->shape.rank != 0) {
                    v.a = b;
                    v.b = a;
                }
            } else {
                v.kind = V_HAD;
            }
            break;
        case '/': v.kind = V_DIV; break;
        case '+': v.kind = V_ADD; break;
        default: v.kind = V_SUB; break;
        }
        return iv_add(p, v);
    }
    case AST_CALL: {
        ibc_builtin f = n->builtin;
        if (f == IBC_B_solve)
            return lower_opexpr(p, n->kids[0], false, true, lower(p, n->kids[1]), n);
        if (f == IBC_B_cumsum) {
            ival o = { .kind = V_OP, .rows = r, .cols = c, .op = OP_CUMSUM, .b = -1, .node = n, .site = n };
            o.a = lower(p, n->kids[0]);
            if (p->v[o.a].kind == V_CONST) {
                diag_error(p->diag, n->loc, "code generation does not support cumsum of a constant");
                p->failed = true;
            }
            return iv_add(p, o);
        }
        v.a = lower(p, n->kids[0]);
        if (f == IBC_B_relu || f == IBC_B_tanh || f == IBC_B_sigmoid || f == IBC_B_exp) {
            v.kind = V_MAP;
            v.fn = f;
        } else if (f == IBC_B_softmax) {
            v.kind = V_SOFTMAX;
            if (n->kids[0]->shape.rank == 1) {   /* a vector is one row */
                v.rows = 1;
                v.cols = r;
            }
        } else if (f == IBC_B_sum) {
            v.kind = V_SUM;
        } else if (f == IBC_B_transpose) {
            v.kind = V_TRANS;
        } else {
            diag_error(p->diag, n->loc, "code generation does not support '%s' here", n->name);
            p->failed = true;
        }
        return iv_add(p, v);
    }
    default:
        diag_error(p->diag, n->loc, "code generation does not support this expression");
        p->failed = true;
        return iv_add(p, v);
    }
}

/* ---------------------------------------------------------------- names */

/* The passes name what they touch after the spec: p_<name> a parameter's
 * entries (g_<name> its gradient), in_<name> an input's (per sample, IN
 * apart), t_<stem> a value of the tape and d_<stem> its adjoint.  A stem is
 * spelt from a small expression (X @ Wq: XWq; relu(W @ x): relu_Wx;
 * softmax of a larger one: softmax), or is the value's number (v6) when
 * there is nothing short to say; the output of a larger expression is
 * predict (or, for the designed parameter's programs, w and A_w).  Stems
 * hold only [A-Za-z0-9_], at most STEM_MAX bytes of the
 * spec's names, whatever the spec's bytes, and are unique within their kind
 * (a second X @ Wq is XWq_2); the prefixes keep the kinds apart and away
 * from every other identifier of a trainer (its locals s, e, r, c, j, cin,
 * cout, sum; th, x, tp, ad, g; m0_th; ibrt_...; C keywords), none of which
 * has the form p_, g_, in_, t_ or d_ followed by anything. */
enum { STEM_MAX = 32 };

static const char *const op_stems[] = { "identity", "diff", "diffT", "cumsum", "cumsumT", "dct", "dctT", "diag",
                                        "diag_inv", "matrix", "matrixT", "matrix_inv", "matrix_invT" };

/* The stem of value i spelt from its operands' (spelt[], NULL where a
 * constant or an expression too large to spell is involved), with the
 * number of parameters and inputs it combines in leaves[i]; NULL when it
 * cannot be spelt. */
static char *value_stem(const prog *p, int i, char *const *spelt, int *leaves)
{
    const ival *v = &p->v[i];
    leaves[i] = (v->kind == V_PARAM || v->kind == V_INPUT) + (v->a >= 0 ? leaves[v->a] : 0) +
                (v->b >= 0 ? leaves[v->b] : 0);
    switch (v->kind) {
    case V_PARAM: return cw_strdup(p->pname[v->var]);
    case V_INPUT: return cw_strdup(p->iname[v->var]);
    case V_CONST: return NULL;
    default: break;
    }
    const char *a = v->a >= 0 ? spelt[v->a] : "", *b = v->b >= 0 ? spelt[v->b] : "";
    if (!a || !b)
        return NULL;
    switch (v->kind) {
    case V_MATMUL: return cw_printf("%s%s%s%s", a, v->ta ? "T" : "", b, v->tb ? "T" : "");
    case V_HAD: return cw_printf("%s%s", a, b);
    case V_SCALE: return cw_printf("%s%s", a, b);
    case V_ADD: return cw_printf("%s_plus_%s", a, b);
    case V_SUB: return cw_printf("%s_minus_%s", a, b);
    case V_DIV: return cw_printf("%s_over_%s", a, b);
    case V_NEG: return cw_printf("neg_%s", a);
    case V_TRANS: return cw_printf("%sT", a);
    case V_MAP: return cw_printf("%s_%s", ibc_builtins[v->fn].name, a);
    case V_SOFTMAX: return cw_printf("softmax_%s", a);
    case V_SUM: return cw_printf("sum_%s", a);
    case V_OP: return cw_printf("%s_%s", op_stems[v->op], a);
    default: return NULL;
    }
}

/* A product or Hadamard product of parameters and inputs alone (W3 @ W2 @
 * W1, a1 * a2 * a3): its stem reads well with three names. */
static bool plain_chain(const prog *p, int i, vkind kind)
{
    const ival *v = &p->v[i];
    if (v->kind == V_PARAM || v->kind == V_INPUT)
        return true;
    return v->kind == kind && plain_chain(p, v->a, kind) && plain_chain(p, v->b, kind);
}

/* Names every parameter, input and value of the tape (see above). */
static void prog_name(prog *p, const char *root_stem)
{
    size_t np = p->spec->nparams, ni = p->spec->ninputs;
    p->pname = cw_calloc(np + 1, sizeof *p->pname);
    p->iname = cw_calloc(ni + 1, sizeof *p->iname);
    p->name = cw_calloc((size_t)p->n + 1, sizeof *p->name);
    for (size_t i = 0; i < np; i++)
        p->pname[i] = cw_unique(p->pname, (int)i, cw_ident(p->spec->params[i].name, STEM_MAX));
    for (size_t i = 0; i < ni; i++)
        p->iname[i] = cw_unique(p->iname, (int)i, cw_ident(p->spec->inputs[i].name, STEM_MAX));
    /* operands come before the values that use them: one pass spells
     * every small expression from its operands' stems */
    char **spelt = cw_calloc((size_t)p->n + 1, sizeof *spelt);
    int *leaves = cw_calloc((size_t)p->n + 1, sizeof *leaves);
    for (int i = 0; i < p->n; i++) {
        const ival *v = &p->v[i];
        char *stem = value_stem(p, i, spelt, leaves);
        if (v->kind == V_PARAM || v->kind == V_INPUT || v->kind == V_CONST) {
            spelt[i] = stem;
            continue;
        }
        bool small = stem && strlen(stem) <= 16 &&
                     (leaves[i] <= 2 ||
                      (leaves[i] == 3 && (plain_chain(p, i, V_MATMUL) || plain_chain(p, i, V_HAD))));
        if (!small) {
            free(stem);
            stem = NULL;
        }
        spelt[i] = stem ? cw_strdup(stem) : NULL;
        if (i == p->root && (!small || (v->kind == V_OP && v->op == OP_ID && !v->opcall))) {
            free(stem);
            stem = cw_ident(root_stem, STEM_MAX);   /* the output of a larger expression, or the copy of a leaf */
        } else if (!small) {
            if (v->kind == V_MAP || v->kind == V_SOFTMAX || v->kind == V_SUM || v->kind == V_OP)
                stem = cw_strdup(v->kind == V_MAP ? ibc_builtins[v->fn].name : v->kind == V_SOFTMAX ? "softmax"
                                                        : v->kind == V_SUM       ? "sum"
                                                                                 : op_stems[v->op]);
            else
                stem = cw_printf("v%d", i);
        }
        p->name[i] = cw_unique(p->name, i, stem);
    }
    for (int i = 0; i < p->n; i++)
        free(spelt[i]);
    free(spelt);
    free(leaves);
}

/* Lowers expr, the program's output (named root_stem when it is not
 * small: "predict"). */
bool emit_prog_build(prog *p, const ibc_spec *spec, const ast_node *expr, long bmax, const char *root_stem,
                       ibc_diag *diag)
{
    memset(p, 0, sizeof *p);
    p->spec = spec;
    p->diag = diag;
    p->bmax = bmax > 0 ? bmax : 1;
    p->param_off = calloc(spec->nparams + 1, sizeof(long));
    p->input_off = calloc(spec->ninputs + 1, sizeof(long));
    for (size_t i = 0; i < spec->nparams; i++) {
        p->param_off[i] = p->nth;
        p->nth += spec->params[i].shape.rows * spec->params[i].shape.cols;
    }
    for (size_t i = 0; i < spec->ninputs; i++) {
        p->input_off[i] = p->nx;
        p->nx += spec->inputs[i].shape.rows * spec->inputs[i].shape.cols;
    }
    p->root = lower(p, expr);
    if (p->v[p->root].kind == V_PARAM || p->v[p->root].kind == V_INPUT || p->v[p->root].kind == V_CONST) {
        /* the output gets a tape slot of its own, so that the loss can
         * seed its adjoint there (predict Z for a parameter Z) */
        ival id = { .kind = V_OP, .op = OP_ID, .rows = p->v[p->root].rows, .cols = p->v[p->root].cols, .a = p->root,
                    .b = -1, .node = expr, .site = expr };
        p->root = iv_add(p, id);
    }
    p->started = calloc((size_t)p->n + 1, sizeof(bool));
    if (!p->failed)
        prog_name(p, root_stem);
    return !p->failed;
}

void emit_prog_free(prog *p)
{
    for (int i = 0; p->name && i < p->n; i++)
        free(p->name[i]);
    for (size_t i = 0; p->pname && i < p->spec->nparams; i++)
        free(p->pname[i]);
    for (size_t i = 0; p->iname && i < p->spec->ninputs; i++)
        free(p->iname[i]);
    free(p->name);
    free(p->pname);
    free(p->iname);
    free(p->v);
    free(p->started);
    free(p->param_off);
    free(p->input_off);
}
