/*
 * emit.c: code generation (the last phase).
 *
 * Each model's predictor is lowered to a list of values (a tape) with
 * fixed per-sample shapes.  Parameters live in th[], the batch's inputs in
 * x[] (IN per sample), intermediate values in tp[], their adjoints in ad[],
 * parameter gradients in g[].  A value that depends on an input is
 * *batched*: it has one block per sample of the step's batch.  A value of
 * the parameters alone (w = cumsum(u * v), U V') is computed once per step
 * and its adjoint is summed over the batch, so the per-sample work is only
 * what truly depends on the sample.  Matrix products go to BLAS: the
 * products of a whole batch with a parameter matrix stack into one
 * gemm/gemv call (X W' for W x_s, X w for x_s . w), per-sample products
 * too small for a BLAS call to pay become plain loops with constant sizes.
 * The reverse pass walks the tape backwards with the hand-derived adjoint
 * of each operation (matrix product with fused transposes, Hadamard,
 * scaling, sums, transpose, relu and the other maps, row softmax, fixed
 * operators, their transposes and inverses); the first contribution to an
 * adjoint overwrites it, so no pass zeroes the tape.  All buffers are
 * static arrays sized at compile time (BMAX samples): the training step
 * allocates nothing.  The trainer checks itself: --gradcheck compares the
 * analytic gradient of every model with central differences.
 *
 * The passes read in the spec's words: parameters, inputs and values of
 * the tape are named after the spec (p_Wq, in_X, t_XWq; see "names"),
 * each statement sits under the spec expression it computes and its line,
 * each initialisation under the parameter and its distribution, and
 * constants print shortest-exact (num).  Every name and string from the
 * spec reaches the C file only as an escaped string literal, inside a
 * comment scrubbed of comment delimiters and trigraphs, or as part of an
 * identifier made of its [A-Za-z0-9_] bytes behind a prefix of ours,
 * unique in its function; no spec text becomes code otherwise.
 */
#include "emit.h"

#include "cwrite.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum {
    V_PARAM, V_INPUT, V_CONST, V_MATMUL, V_HAD, V_SCALE, V_DIV, V_ADD, V_SUB, V_NEG,
    V_TRANS, V_MAP, V_SOFTMAX, V_SUM, V_OP,
} vkind;

/* Fixed operators applied to a vector (or each column of a matrix). */
typedef enum {
    OP_ID, OP_DIFF, OP_DIFF_T, OP_CUMSUM, OP_CUMSUM_T, OP_DCT, OP_DCT_T, OP_DIAG, OP_DIAG_INV,
    OP_DENSE, OP_DENSE_T, OP_DENSE_INV, OP_DENSE_INV_T,   /* matrix("file"), its transpose, inverse */
} opkind;

typedef struct {
    vkind kind;
    long rows, cols;     /* per sample */
    int a, b;            /* operands */
    bool avec, bvec;     /* matmul: operand was a vector (numpy rules) */
    bool ta, tb;         /* matmul: operand used transposed (fused A' @ B) */
    bool batched;        /* depends on the inputs: one copy per sample */
    long off;            /* offset in th / x / tp */
    double c;            /* constant */
    ibc_builtin fn;      /* V_MAP: IBC_B_relu, _tanh, _sigmoid or _exp */
    opkind op;
    int diag_id;         /* OP_DIAG*: which static diagonal; OP_DENSE*: which matrix */
    int var;             /* V_PARAM, V_INPUT: which of the spec's parameters or inputs */
    /* What the value is in the spec's words, for names and comments: the
     * expression it computes (node), or for one step of an operator
     * expression applied to a value (A @ (B @ z) lowers to two) the
     * operator call applied (opcall, transposed or inverted); site: where
     * in the spec, for the line number. */
    const ast_node *node;
    const ast_node *opcall;
    bool op_tr, op_inv;
    const ast_node *site;
} ival;

typedef struct {
    ival *v;
    int n, cap;
    char **name;         /* per value: its C name's stem (t_<stem>, d_<stem>), NULL for leaves */
    char **pname, **iname;   /* per parameter and input: p_<name> and in_<name> stems */
    long tape;           /* size of tp[] and ad[] */
    long bmax;           /* samples per batch: batched values have bmax copies */
    int root;
    bool *started;       /* emission of the reverse pass: adjoint written yet */
    const ibc_spec *spec;
    long *param_off;
    long nth;            /* size of th[] */
    long *input_off;
    long nx;
    bool failed;
    ibc_diag *diag;
} prog;

typedef struct {
    FILE *out;
    const ast_node **diags;  /* diag([...]) operators met, emitted as arrays */
    int ndiags, cap_diags;
    long *dct_sizes;      /* sizes of the dct(n) operators met, each once */
    int ndct, cap_dct;
    /* matrix("file") operators: path as written, resolved path, size, and
     * whether the inverse is needed (formed once in set-up) */
    const ast_node *dense[16];
    char *dense_path[16];
    long dense_r[16], dense_c[16];   /* the file's shape (square when inverted) */
    bool dense_inv[16];
    int ndense;
} emitter;

static emitter *E;   /* the emitter of the current program */

/* Caps on what a trainer may need, checked before code is written. */
#define IBC_MAX_TRAINER_BYTES (4.0 * 1024 * 1024 * 1024)   /* static buffers */
#define IBC_MAX_TRACE_BYTES (2.0 * 1024 * 1024 * 1024)     /* trace files */

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
    for (int i = 0; i < E->ndiags; i++)
        if (E->diags[i] == call)
            return i;
    E->diags = grow_table(E->diags, E->ndiags, &E->cap_diags, sizeof *E->diags);
    E->diags[E->ndiags] = call;
    return E->ndiags++;
}

static void dct_needed(long n)
{
    for (int i = 0; i < E->ndct; i++)
        if (E->dct_sizes[i] == n)
            return;
    E->dct_sizes = grow_table(E->dct_sizes, E->ndct, &E->cap_dct, sizeof *E->dct_sizes);
    E->dct_sizes[E->ndct++] = n;
}

/* A file named in the spec (a matrix("file") operator, data files), found
 * relative to the spec (as sema and design find it) and made absolute, so
 * that the trainer reads it from any working directory. */
static const char *spec_file_path(const ibc_spec *spec, const char *file, char *full, size_t size)
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
    char full[8192];
    const char *path = spec_file_path(p->spec, call->kids[0]->text, full, sizeof full);
    for (int i = 0; i < E->ndense; i++)
        if (!strcmp(E->dense_path[i], path) && E->dense_r[i] == r && E->dense_c[i] == c) {
            E->dense_inv[i] = E->dense_inv[i] || inverse;
            return i;
        }
    if (E->ndense == 16) {
        diag_error(p->diag, call->loc, "code generation supports at most 16 matrix files per spec");
        return -1;
    }
    E->dense[E->ndense] = call;
    E->dense_path[E->ndense] = strdup(path);
    E->dense_r[E->ndense] = r;
    E->dense_c[E->ndense] = c;
    E->dense_inv[E->ndense] = inverse;
    return E->ndense++;
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
static bool prog_build(prog *p, const ibc_spec *spec, const ast_node *expr, long bmax, const char *root_stem,
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

static void prog_free(prog *p)
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

/* ------------------------------------------------------------- emission */

#define OUT(...) fprintf(E->out, __VA_ARGS__)

/* Text from the spec inside a C comment, scrubbed. */
static void emit_comment_text(const char *s)
{
    char *t = cw_scrub(s);
    fputs(t, E->out);
    free(t);
}

/* out = A in for one column: n entries out, nin in (equal except for a
 * rectangular matrix file); a fixed operator, O(n) where its structure
 * allows; statements indented by ind. */
static void emit_op_apply(opkind op, long n, long nin, int diag_id, const char *in, const char *out, int ind)
{
    OUT("%*s", ind, "");
    switch (op) {
    case OP_ID: OUT("memcpy(%s, %s, sizeof(double) * %ld);\n", out, in, n); break;
    case OP_DIFF: OUT("ibrt_op_diff(%ld, %s, %s);\n", n, in, out); break;
    case OP_DIFF_T: OUT("ibrt_op_diff_T(%ld, %s, %s);\n", n, in, out); break;
    case OP_CUMSUM: OUT("ibrt_op_cumsum(%ld, %s, %s);\n", n, in, out); break;
    case OP_CUMSUM_T: OUT("ibrt_op_cumsum_T(%ld, %s, %s);\n", n, in, out); break;
    case OP_DCT:
    case OP_DCT_T:
        OUT("cblas_dgemv(CblasRowMajor, %s, %ld, %ld, 1.0, dct_%ld, %ld, %s, 1, 0.0, %s, 1);\n",
            op == OP_DCT ? "CblasNoTrans" : "CblasTrans", n, n, n, n, in, out);
        break;
    case OP_DIAG:
    case OP_DIAG_INV:
        OUT("for (long r = 0; r < %ld; r++)\n%*s    %s[r] = %s[r] %c diag_%d[r];\n", n, ind, "", out, in,
            op == OP_DIAG ? '*' : '/', diag_id);
        break;
    case OP_DENSE:
    case OP_DENSE_T:
    case OP_DENSE_INV:
    case OP_DENSE_INV_T:
    {   /* the stored matrix is n x nin, or nin x n when transposed */
        bool t = op == OP_DENSE_T || op == OP_DENSE_INV_T;
        OUT("cblas_dgemv(CblasRowMajor, %s, %ld, %ld, 1.0, %s_%d, %ld, %s, 1, 0.0, %s, 1);\n",
            t ? "CblasTrans" : "CblasNoTrans", t ? nin : n, t ? n : nin,
            op == OP_DENSE || op == OP_DENSE_T ? "dense" : "dense_inv", diag_id, t ? n : nin, in, out);
    }
        break;
    }
}

/* Element idx of value i in sample s (forward), or of its adjoint, by
 * the names of the passes: p_W[idx], in_X[s * IN + idx] (inputs are IN
 * apart), t_XW[s * 64 + idx] (a batched value of the tape has one block
 * per sample), t_uv[idx] (a value of the parameters alone is computed once
 * per batch, hoisted), a constant's literal. */
enum { REF_MAX = 256 };

static const char *ref(const prog *p, int i, const char *idx, char *buf)
{
    const ival *v = &p->v[i];
    switch (v->kind) {
    case V_PARAM: snprintf(buf, REF_MAX, "p_%s[%s]", p->pname[v->var], idx); break;
    case V_INPUT: snprintf(buf, REF_MAX, "in_%s[s * IN + %s]", p->iname[v->var], idx); break;
    case V_CONST: snprintf(buf, REF_MAX, "%s", cw_num(v->c)); break;
    default:
        if (v->batched)
            snprintf(buf, REF_MAX, "t_%s[s * %ld + %s]", p->name[i], v->rows * v->cols, idx);
        else
            snprintf(buf, REF_MAX, "t_%s[%s]", p->name[i], idx);
        break;
    }
    return buf;
}

static const char *adj(const prog *p, int i, const char *idx, char *buf)
{
    const ival *v = &p->v[i];
    switch (v->kind) {
    case V_PARAM: snprintf(buf, REF_MAX, "g_%s[%s]", p->pname[v->var], idx); return buf;
    case V_INPUT:
    case V_CONST: return NULL;
    default:
        if (v->batched)
            snprintf(buf, REF_MAX, "d_%s[s * %ld + %s]", p->name[i], v->rows * v->cols, idx);
        else
            snprintf(buf, REF_MAX, "d_%s[%s]", p->name[i], idx);
        return buf;
    }
}

/* The block of value i (or of its adjoint) for sample expression s ("0":
 * the first, where a whole batch starts). */
static const char *ptr(const prog *p, int i, bool adjoint, const char *s, char *buf)
{
    const ival *v = &p->v[i];
    bool first = !strcmp(s, "0");
    if (v->kind == V_PARAM)
        snprintf(buf, REF_MAX, "%s_%s", adjoint ? "g" : "p", p->pname[v->var]);
    else if (v->kind == V_INPUT)
        snprintf(buf, REF_MAX, first ? "in_%s" : "in_%s + (%s) * IN", p->iname[v->var], s);
    else if (v->batched && !first)
        snprintf(buf, REF_MAX, "%s_%s + (%s) * %ld", adjoint ? "d" : "t", p->name[i], s, v->rows * v->cols);
    else
        snprintf(buf, REF_MAX, "%s_%s", adjoint ? "d" : "t", p->name[i]);
    return buf;
}

/* Distance between the blocks of consecutive samples of a batched value. */
static const char *stride(const prog *p, int i, char *buf)
{
    const ival *v = &p->v[i];
    if (v->kind == V_INPUT)
        strcpy(buf, "IN");
    else
        snprintf(buf, REF_MAX, "%ld", v->rows * v->cols);
    return buf;
}

/* Value i in the spec's words, about max bytes at most (malloc'd). */
static char *value_text(const prog *p, int i, size_t max)
{
    const ival *v = &p->v[i];
    const ibc_source *src = p->spec->src;
    if (v->node || !v->opcall)
        return v->node ? ast_text(v->node, src, max) : cw_printf("v%d", i);
    /* one step of an operator expression: A @ z, A' @ z or solve(A, z) */
    char *op = ast_text(v->opcall, src, max / 2 + 1), *z = value_text(p, v->a, max / 2 + 1);
    const ival *a = &p->v[v->a];
    bool paren = !v->op_inv && ((a->node && (a->node->kind == AST_BINOP || a->node->kind == AST_NEG)) ||
                                (!a->node && a->opcall && !a->op_inv));
    char *t = v->op_inv ? cw_printf("solve(%s%s, %s)", op, v->op_tr ? "'" : "", z)
                        : cw_printf("%s%s @ %s%s%s", op, v->op_tr ? "'" : "", paren ? "(" : "", z, paren ? ")" : "");
    free(op);
    free(z);
    return t;
}

/* A model's learning-rate setting for the driver: where it is written
 * (for the stability warning, "spec.ibs:12") and, for lr = auto, the
 * grid's bounds and the length of each trial run (docs/sweeps.md). */
static void emit_lr_setting(const ibc_lrset *lrs, const ibc_source *src)
{
    if (lrs->node && src && src->path && lrs->node->loc.begin <= src->len) {
        int line, col;
        diag_line_col(src, lrs->node->loc.begin, &line, &col);
        const char *slash = strrchr(src->path, '/');
        char *where = cw_printf("%s:%d", slash ? slash + 1 : src->path, line);
        OUT("        .lr_where = ");
        emit_c_string(E->out, where);
        OUT(",\n");
        free(where);
    }
    if (lrs->is_auto)
        OUT("        .lr_auto = true,   /* lr = auto: one rate per decade, each tried for min(steps, %ld) steps */\n"
            "        .lr_lo = %s,\n        .lr_hi = %s,\n        .lr_auto_steps = %ld,\n", lrs->steps, cw_num(lrs->lo),
            cw_num(lrs->hi), lrs->steps);
}

/* " (attention.ibs:15)": where in the spec n is */
static void emit_where(const ibc_source *src, const ast_node *n)
{
    if (!n || !src || !src->path || n->loc.begin > src->len)
        return;
    int line, col;
    diag_line_col(src, n->loc.begin, &line, &col);
    const char *slash = strrchr(src->path, '/');
    OUT(" (");
    emit_comment_text(slash ? slash + 1 : src->path);
    OUT(":%d)", line);
}

/* The comment above the statements of value i: the spec's expression, its
 * line, and what the statements do ("(8 x 16) @ (16 x 8) per sample"), on
 * a second line when one would be long. */
static void emit_value_comment(const prog *p, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit_value_comment(const prog *p, int i, const char *fmt, ...)
{
    cw_buf cb;
    cw_begin(&cb, &E->out);
    char *text = value_text(p, i, 72);
    emit_comment_text(text);
    free(text);
    emit_where(p->spec->src, p->v[i].site);
    char *what = cw_end(&cb, &E->out);
    va_list ap;
    va_start(ap, fmt);
    char detail[256];
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!*detail)
        OUT("    /* %s */\n", what);
    else if (strlen(what) + strlen(detail) > 100)
        OUT("    /* %s:\n     * %s */\n", what, detail);
    else
        OUT("    /* %s: %s */\n", what, detail);
    free(what);
}

/* The reverse pass writes an adjoint with '=' at its first contribution
 * when that contribution covers every entry exactly once, so no pass
 * zeroes the tape; otherwise (a reduction, a broadcast operand) it zeroes
 * the adjoint first and accumulates.  Parameter gradients are zeroed once
 * per step and always accumulate.  Returns true for '='. */
static bool adj_first(const prog *p, int a, bool covers)
{
    const ival *v = &p->v[a];
    if (v->kind == V_PARAM || p->started[a])
        return false;
    p->started[a] = true;
    if (covers)
        return true;
    if (v->batched)
        OUT("    memset(d_%s, 0, sizeof(double) * %ld * (size_t)nb);\n", p->name[a], v->rows * v->cols);
    else
        OUT("    memset(d_%s, 0, sizeof(double) * %ld);\n", p->name[a], v->rows * v->cols);
    return false;
}

static void s_open(const ival *v)
{
    OUT(v->batched ? "    for (long s = 0; s < nb; s++) {\n" : "    {\n");
}

/* The head of a one-statement loop over the batch's samples, or nothing:
 * printed before a call that takes sample s ("s") or the only one ("0"). */
static const char *s_loop(bool each) { return each ? "    for (long s = 0; s < nb; s++)\n    " : ""; }
static const char *s_index(bool each) { return each ? "s" : "0"; }

/* Element (i, k) of a matmul operand, numpy rules: a vector on the left is
 * a row, on the right a column. */
static void mm_dims(const prog *p, const ival *v, long *m, long *k, long *n)
{
    const ival *a = &p->v[v->a], *b = &p->v[v->b];
    *m = v->avec ? 1 : v->ta ? a->cols : a->rows;
    *k = v->avec ? a->rows : v->ta ? a->rows : a->cols;
    *n = v->bvec ? 1 : v->tb ? b->rows : b->cols;
}

/* How a product of a batch is computed: one call for all samples when the
 * per-sample blocks stack into one matrix, else a call per sample. */
typedef enum { MM_STATIC, MM_STACK_A, MM_STACK_B, MM_EACH } mm_plan;

/* Multiply-adds below which plain loops beat a BLAS call (measured on the
 * attention spec: 8 x 8 x 8 blocks cost ~0.5 us each through OpenBLAS).
 * A stacked product (the samples' rows one tall matrix) also goes to the
 * small kernel when op(B) is narrow, 2 to MM_NARROW columns and at most
 * MM_SMALL entries: rows of C then go in register blocks, and OpenBLAS's
 * packing of the tall operand costs more than the product (bench/kernels.c:
 * 128 x 16 @ 16 x 8 took 1.36 us through dgemm, 0.53 us inline). */
enum { MM_SMALL = 1024, MM_NARROW = 16 };

/* the kernel of a stacked product C (rows x n) = A op(B), op(B) k x n */
static const char *mm_stacked_fn(long k, long n)
{
    return n > 1 && n <= MM_NARROW && k * n <= MM_SMALL ? "ibrt_mm_small" : "ibrt_mm";   /* n = 1: gemv */
}

/* The kernel of a parameter's gradient from a stacked product, C (m x n)
 * = A' B summed over all the samples' rows: the small kernel when C is
 * small and 2 to 32 columns wide, so that its rows go in blocks of
 * independent chains (bench/kernels.c: (128 x 16)' @ 128 x 8 took 0.99 us
 * through dgemm, 0.46 us inline); n = 1 is a gemv. */
static const char *mm_gradient_fn(long m, long n)
{
    return n > 1 && n <= 2 * MM_NARROW && m * n <= MM_SMALL ? "ibrt_mm_small" : "ibrt_mm";
}

/* Products computed whole (once a step, or once per sample) that BLAS
 * still loses on: up to MM_BLOCKED multiply-adds when C has at least 8
 * rows and 2 to 32 columns, so its rows go in register blocks, and a
 * transposed op(B) fits the kernel's copy (MM_SMALL entries).
 * bench/kernels.c: E3's 20x20 @ (20x20)' took 0.58 us through dgemm,
 * 0.25 us inline; larger products are left to BLAS, unmeasured. */
enum { MM_BLOCKED = 8192 };

/* the kernel of such a product, C (M x N) = op(A) op(B), op(B) K x N */
static const char *mm_whole_fn(mm_plan plan, long M, long N, long K, bool tb)
{
    if (plan != MM_EACH && plan != MM_STATIC)
        return "ibrt_mm";
    if (M * N * K <= MM_SMALL)
        return "ibrt_mm_small";
    return M >= 8 && N >= 2 && N <= 2 * MM_NARROW && M * N * K <= MM_BLOCKED && (!tb || K * N <= MM_SMALL)
               ? "ibrt_mm_small"
               : "ibrt_mm";
}

static mm_plan mm_plan_of(const prog *p, const ival *v, long m, long k, long n)
{
    const ival *a = &p->v[v->a], *b = &p->v[v->b];
    if (!v->batched)
        return MM_STATIC;
    /* rows of A_s stack when A_s is one row or the samples are contiguous */
    if (a->batched && !b->batched && !v->ta && (m == 1 || a->kind != V_INPUT || p->nx == a->rows * a->cols))
        return MM_STACK_A;
    /* C_s = op(A) b_s for all s is B_stacked op(A)' */
    if (!a->batched && b->batched && n == 1)
        return MM_STACK_B;
    (void)k;
    return MM_EACH;
}

/* An operand of a call, parenthesised when it is a sum (t_x + (s) * 8). */
static const char *operand(const char *s, char *buf)
{
    snprintf(buf, REF_MAX + 2, strchr(s, ' ') ? "(%s)" : "%s", s);
    return buf;
}

static void emit_forward_value(const prog *p, int i)
{
    const ival *v = &p->v[i];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX];
    long n = v->rows * v->cols;
    switch (v->kind) {
    case V_PARAM:
    case V_INPUT:
    case V_CONST:
        return;
    case V_MATMUL: {
        long m, k, nn;
        mm_dims(p, v, &m, &k, &nn);
        long lda = v->ta ? m : k, ldb = v->tb ? k : nn;
        emit_value_comment(p, i, "(%ld x %ld) @ (%ld x %ld)%s", m, k, k, nn, v->batched ? " per sample" : "");
        mm_plan plan = mm_plan_of(p, v, m, k, nn);
        const char *fn = mm_whole_fn(plan, m, nn, k, v->tb);
        switch (plan) {
        case MM_STATIC:
            OUT("    %s(%d, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, 0.0, %s, %ld);\n", fn, v->ta, v->tb, m, nn, k,
                ptr(p, v->a, false, "0", b1), lda, ptr(p, v->b, false, "0", b2), ldb, ptr(p, i, false, "0", b3), nn);
            break;
        case MM_STACK_A:
            OUT("    %s(0, %d, nb * %ld, %ld, %ld, %s, %s, %s, %ld, 0.0, %s, %ld);\n", mm_stacked_fn(k, nn), v->tb, m, nn, k,
                ptr(p, v->a, false, "0", b1), m == 1 ? stride(p, v->a, b4) : (snprintf(b4, REF_MAX, "%ld", k), b4),
                ptr(p, v->b, false, "0", b2), ldb, ptr(p, i, false, "0", b3), nn);
            break;
        case MM_STACK_B:
            OUT("    ibrt_mm(0, %d, nb, %ld, %ld, %s, %s, %s, %ld, 0.0, %s, %ld);\n", !v->ta, m, k,
                ptr(p, v->b, false, "0", b1), stride(p, v->b, b4), ptr(p, v->a, false, "0", b2), lda,
                ptr(p, i, false, "0", b3), m);
            break;
        case MM_EACH:
            OUT("    for (long s = 0; s < nb; s++)\n        %s(%d, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, 0.0, %s, %ld);\n",
                fn, v->ta, v->tb, m, nn, k, ptr(p, v->a, false, "s", b1), lda, ptr(p, v->b, false, "s", b2), ldb,
                ptr(p, i, false, "s", b3), nn);
            break;
        }
        return;
    }
    case V_HAD:
    case V_ADD:
    case V_SUB: {
        char op = v->kind == V_HAD ? '*' : v->kind == V_ADD ? '+' : '-';
        emit_value_comment(p, i, "elementwise");
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s %c %s;\n    }\n", n, ref(p, i, "e", b1),
            ref(p, v->a, "e", b2), op, ref(p, v->b, "e", b3));
        return;
    }
    case V_SCALE:
    case V_DIV:
        emit_value_comment(p, i, "by a scalar");
        s_open(v);
        if (v->kind == V_SCALE)
            OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s * %s;\n    }\n", n, ref(p, i, "e", b1),
                ref(p, v->a, "0", b2), ref(p, v->b, "e", b3));
        else
            OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s / %s;\n    }\n", n, ref(p, i, "e", b1),
                ref(p, v->a, "e", b2), ref(p, v->b, "0", b3));
        return;
    case V_NEG:
        emit_value_comment(p, i, "elementwise");
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = -%s;\n    }\n", n, ref(p, i, "e", b1),
            ref(p, v->a, "e", b2));
        return;
    case V_TRANS:
        emit_value_comment(p, i, "transposed");
        s_open(v);
        OUT("        for (long r = 0; r < %ld; r++)\n            for (long c = 0; c < %ld; c++)\n", v->rows, v->cols);
        OUT("                %s = %s;\n    }\n", ref(p, i, (snprintf(b3, REF_MAX, "r * %ld + c", v->cols), b3), b1),
            ref(p, v->a, (snprintf(b4, REF_MAX, "c * %ld + r", v->rows), b4), b2));
        return;
    case V_MAP: {
        const char *f = v->fn == IBC_B_relu ? "(%s > 0 ? %s : 0)"
                        : v->fn == IBC_B_tanh ? "tanh(%s)%.0s"
                        : v->fn == IBC_B_sigmoid ? "1 / (1 + exp(-%s))%.0s"
                                                    : "exp(%s)%.0s";
        emit_value_comment(p, i, "elementwise");
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = ", n, ref(p, i, "e", b1));
        OUT(f, ref(p, v->a, "e", b2), b2);
        OUT(";\n    }\n");
        return;
    }
    case V_SOFTMAX:
        emit_value_comment(p, i, "each row, its maximum subtracted for stability");
        OUT("%s    ibrt_softmax_rows(%ld, %ld, %s, %s);\n", s_loop(v->batched), v->rows, v->cols,
            ptr(p, v->a, false, s_index(v->batched), b1), ptr(p, i, false, s_index(v->batched), b2));
        return;
    case V_SUM:
        emit_value_comment(p, i, "the sum of the entries");
        s_open(v);
        OUT("        double sum = 0;\n        for (long e = 0; e < %ld; e++)\n            sum += %s;\n",
            p->v[v->a].rows * p->v[v->a].cols, ref(p, v->a, "e", b2));
        OUT("        %s = sum;\n    }\n", ref(p, i, "0", b1));
        return;
    case V_OP: {
        static const char *const names[] = { "identity", "diff", "diff'", "cumsum (diff^-1)", "reverse cumsum",
                                             "DCT", "DCT'", "diag", "diag^-1", "matrix", "matrix'", "matrix^-1",
                                             "matrix^-T" };
        if (v->opcall || v->op != OP_ID || i != p->root)
            emit_value_comment(p, i, "%s applied to each column", names[v->op]);
        else
            emit_value_comment(p, i, "a copy, the output's own slot of the tape");
        s_open(v);
        if (v->cols == 1) {   /* a vector: in place of the tape, no copies */
            char pin[REF_MAX + 2], pout[REF_MAX + 2];
            operand(ptr(p, v->a, false, "s", b2), pin);
            operand(ptr(p, i, false, "s", b1), pout);
            emit_op_apply(v->op, v->rows, p->v[v->a].rows, v->diag_id, pin, pout, 8);
            OUT("    }\n");
            return;
        }
        OUT("        for (long j = 0; j < %ld; j++) {\n", v->cols);
        OUT("            double cin[%ld], cout[%ld];\n", p->v[v->a].rows, v->rows);
        OUT("            for (long r = 0; r < %ld; r++)\n                cin[r] = %s;\n", p->v[v->a].rows,
            ref(p, v->a, (snprintf(b3, REF_MAX, "r * %ld + j", v->cols), b3), b2));
        emit_op_apply(v->op, v->rows, p->v[v->a].rows, v->diag_id, "cin", "cout", 12);
        OUT("            for (long r = 0; r < %ld; r++)\n                %s = cout[r];\n        }\n    }\n", v->rows,
            ref(p, i, b3, b1));
        return;
    }
    }
}

/* The adjoint rule of value v, C = f(A, B): dA (when da) and dB (when
 * db) from dC (and C), in the letters of its form ("C = A B': dA = dC B"). */
static char *adjoint_rule(const ival *v, bool da, bool db)
{
    const char *form = "", *ra = "", *rb = "";
    switch (v->kind) {
    case V_MATMUL: {
        static const char *const forms[] = { "C = A B", "C = A B'", "C = A' B", "C = A' B'" };
        static const char *const ras[] = { "dA = dC B'", "dA = dC B", "dA = B dC'", "dA = B' dC'" };
        static const char *const rbs[] = { "dB = A' dC", "dB = dC' A", "dB = A dC", "dB = dC' A'" };
        int t = 2 * v->ta + v->tb;
        form = forms[t];
        ra = ras[t];
        rb = rbs[t];
        break;
    }
    case V_HAD: form = "C = A * B"; ra = "dA = dC * B"; rb = "dB = dC * A"; break;
    case V_ADD: form = "C = A + B"; ra = "dA = dC"; rb = "dB = dC"; break;
    case V_SUB: form = "C = A - B"; ra = "dA = dC"; rb = "dB = -dC"; break;
    case V_SCALE: form = "C = a B, a a scalar"; ra = "da = sum(B * dC)"; rb = "dB = a dC"; break;
    case V_DIV: form = "C = A / b, b a scalar"; ra = "dA = dC / b"; rb = "db = -sum(dC * C) / b"; break;
    case V_NEG: form = "C = -A"; ra = "dA = -dC"; break;
    case V_TRANS: form = "C = A'"; ra = "dA = dC'"; break;
    case V_MAP:
        form = v->fn == IBC_B_relu ? "C = relu(A)" : v->fn == IBC_B_tanh ? "C = tanh(A)"
               : v->fn == IBC_B_sigmoid ? "C = sigmoid(A)" : "C = exp(A)";
        ra = v->fn == IBC_B_relu ? "dA = dC * (A > 0)" : v->fn == IBC_B_tanh ? "dA = dC * (1 - C * C)"
             : v->fn == IBC_B_sigmoid ? "dA = dC * C * (1 - C)" : "dA = dC * C";
        break;
    case V_SOFTMAX: form = "C = softmax(A), row by row"; ra = "dA = C * (dC - sum_j dC_j C_j)"; break;
    case V_SUM: form = "c = sum(A)"; ra = "dA = dc in every entry"; break;
    case V_OP: form = "C = op A, op the operator"; ra = "dA = op' dC"; break;
    default: break;
    }
    return cw_printf("%s: %s%s%s", form, da ? ra : "", da && db ? ", " : "", db ? rb : "");
}

/* Reverse mode: adjoint of each operation, in reverse tape order. */
static void emit_backward_value(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = v->a >= 0 ? &p->v[v->a] : NULL, *B = v->b >= 0 ? &p->v[v->b] : NULL;
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX], b5[REF_MAX];
    long n = v->rows * v->cols;
    const char *aa, *ab;
    bool f;
    switch (v->kind) {
    case V_PARAM:
    case V_INPUT:
    case V_CONST:
        return;
    default:
        break;
    }
    bool da = A && A->kind != V_INPUT && A->kind != V_CONST, db = B && B->kind != V_INPUT && B->kind != V_CONST;
    if (da || db) {
        char *rule = adjoint_rule(v, da, db);
        emit_value_comment(p, i, "%s", rule);
        free(rule);
    }
    switch (v->kind) {
    case V_PARAM:
    case V_INPUT:
    case V_CONST:
        return;
    case V_MATMUL: {
        long m, k, nn;
        mm_dims(p, v, &m, &k, &nn);
        long lda = v->ta ? m : k, ldb = v->tb ? k : nn;
        mm_plan plan = mm_plan_of(p, v, m, k, nn);
        const char *sv = s_index(plan == MM_EACH), *loop = s_loop(plan == MM_EACH);
        if (adj(p, v->a, "0", b1)) {
            f = adj_first(p, v->a, plan != MM_EACH || A->batched);
            const char *beta = f ? "0.0" : "1.0";
            if (plan == MM_STACK_A) {
                char lds[REF_MAX];
                if (m == 1)
                    stride(p, v->a, lds);
                else
                    snprintf(lds, sizeof lds, "%ld", k);
                OUT("    %s(0, %d, nb * %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %s);\n", mm_stacked_fn(nn, k), !v->tb, m, k, nn,
                    ptr(p, i, true, "0", b2), nn, ptr(p, v->b, false, "0", b3), ldb, beta, ptr(p, v->a, true, "0", b4), lds);
            } else if (plan == MM_STACK_B) {
                if (!v->ta)
                    OUT("    ibrt_mm(1, 0, %ld, %ld, nb, %s, %ld, %s, %s, %s, %s, %ld);\n", m, k, ptr(p, i, true, "0", b2), m,
                        ptr(p, v->b, false, "0", b3), stride(p, v->b, b5), beta, ptr(p, v->a, true, "0", b4), k);
                else
                    OUT("    ibrt_mm(1, 0, %ld, %ld, nb, %s, %s, %s, %ld, %s, %s, %ld);\n", k, m, ptr(p, v->b, false, "0", b3),
                        stride(p, v->b, b5), ptr(p, i, true, "0", b2), m, beta, ptr(p, v->a, true, "0", b4), m);
            } else if (!v->ta) {
                OUT("%s    %s(0, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, mm_whole_fn(plan, m, k, nn, !v->tb),
                    !v->tb, m, k, nn,
                    ptr(p, i, true, sv, b2), nn, ptr(p, v->b, false, sv, b3), ldb, beta, ptr(p, v->a, true, sv, b4), k);
            } else {
                OUT("%s    %s(%d, 1, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, mm_whole_fn(plan, k, m, nn, true),
                    v->tb, k, m, nn,
                    ptr(p, v->b, false, sv, b3), ldb, ptr(p, i, true, sv, b2), nn, beta, ptr(p, v->a, true, sv, b4), m);
            }
        }
        if (adj(p, v->b, "0", b1)) {
            f = adj_first(p, v->b, plan != MM_EACH || B->batched);
            const char *beta = f ? "0.0" : "1.0";
            if (plan == MM_STACK_A) {
                char lds[REF_MAX];
                if (m == 1)
                    stride(p, v->a, lds);
                else
                    snprintf(lds, sizeof lds, "%ld", k);
                if (!v->tb)
                    OUT("    %s(1, 0, %ld, %ld, nb * %ld, %s, %s, %s, %ld, %s, %s, %ld);\n", mm_gradient_fn(k, nn), k, nn, m,
                        ptr(p, v->a, false, "0", b3), lds, ptr(p, i, true, "0", b2), nn, beta, ptr(p, v->b, true, "0", b4), nn);
                else
                    OUT("    %s(1, 0, %ld, %ld, nb * %ld, %s, %ld, %s, %s, %s, %s, %ld);\n", mm_gradient_fn(nn, k), nn, k, m,
                        ptr(p, i, true, "0", b2), nn, ptr(p, v->a, false, "0", b3), lds, beta, ptr(p, v->b, true, "0", b4), k);
            } else if (plan == MM_STACK_B) {
                OUT("    ibrt_mm(0, %d, nb, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %s);\n", v->ta, k, m, ptr(p, i, true, "0", b2), m,
                    ptr(p, v->a, false, "0", b3), lda, beta, ptr(p, v->b, true, "0", b4), stride(p, v->b, b5));
            } else if (!v->tb) {
                OUT("%s    %s(%d, 0, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, mm_whole_fn(plan, k, nn, m, false),
                    !v->ta, k, nn, m,
                    ptr(p, v->a, false, sv, b3), lda, ptr(p, i, true, sv, b2), nn, beta, ptr(p, v->b, true, sv, b4), nn);
            } else {
                OUT("%s    %s(1, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, mm_whole_fn(plan, nn, k, m, v->ta),
                    v->ta, nn, k, m,
                    ptr(p, i, true, sv, b2), nn, ptr(p, v->a, false, sv, b3), lda, beta, ptr(p, v->b, true, sv, b4), k);
            }
        }
        return;
    }
    case V_HAD:
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s * %s;\n    }\n", n, aa, f ? "=" : "+=",
                adj(p, i, "e", b2), ref(p, v->b, "e", b3));
        }
        if ((ab = adj(p, v->b, "e", b1))) {
            f = adj_first(p, v->b, B->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s * %s;\n    }\n", n, ab, f ? "=" : "+=",
                adj(p, i, "e", b2), ref(p, v->a, "e", b3));
        }
        return;
    case V_ADD:
    case V_SUB:
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s;\n    }\n", n, aa, f ? "=" : "+=",
                adj(p, i, "e", b2));
        }
        if ((ab = adj(p, v->b, "e", b1))) {
            f = adj_first(p, v->b, B->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s%s;\n    }\n", n, ab,
                f ? "=" : v->kind == V_ADD ? "+=" : "-=", f && v->kind == V_SUB ? "-" : "", adj(p, i, "e", b2));
        }
        return;
    case V_SCALE:   /* a scalar, b tensor */
        if ((ab = adj(p, v->b, "e", b1))) {
            f = adj_first(p, v->b, B->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s * %s;\n    }\n", n, ab, f ? "=" : "+=",
                ref(p, v->a, "0", b2), adj(p, i, "e", b3));
        }
        if ((aa = adj(p, v->a, "0", b1))) {
            adj_first(p, v->a, false);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s += %s * %s;\n    }\n", n, aa, ref(p, v->b, "e", b2),
                adj(p, i, "e", b3));
        }
        return;
    case V_DIV:     /* a tensor / b scalar */
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s / %s;\n    }\n", n, aa, f ? "=" : "+=",
                adj(p, i, "e", b2), ref(p, v->b, "0", b3));
        }
        if ((ab = adj(p, v->b, "0", b1))) {
            adj_first(p, v->b, false);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s -= %s * %s / %s;\n    }\n", n, ab, adj(p, i, "e", b2),
                ref(p, i, "e", b3), ref(p, v->b, "0", b4));
        }
        return;
    case V_NEG:
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s;\n    }\n", n, aa, f ? "= -" : "-=",
                adj(p, i, "e", b2));
        }
        return;
    case V_TRANS:
        if ((aa = adj(p, v->a, (snprintf(b3, REF_MAX, "c * %ld + r", v->rows), b3), b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long r = 0; r < %ld; r++)\n            for (long c = 0; c < %ld; c++)\n", v->rows, v->cols);
            OUT("                %s %s %s;\n    }\n", aa, f ? "=" : "+=",
                adj(p, i, (snprintf(b4, REF_MAX, "r * %ld + c", v->cols), b4), b2));
        }
        return;
    case V_MAP:
        if ((aa = adj(p, v->a, "e", b1))) {
            const char *d = v->fn == IBC_B_relu ? "(%s > 0)"
                            : v->fn == IBC_B_tanh ? "(1 - %s * %s)"
                            : v->fn == IBC_B_sigmoid ? "%s * (1 - %s)"
                                                        : "%s%.0s";
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s * ", n, aa, f ? "=" : "+=", adj(p, i, "e", b2));
            if (v->fn == IBC_B_relu)
                OUT(d, ref(p, v->a, "e", b3));
            else
                OUT(d, ref(p, i, "e", b3), b3);
            OUT(";\n    }\n");
        }
        return;
    case V_SOFTMAX:
        if (adj(p, v->a, "0", b1)) {
            const char *sv = s_index(v->batched);
            f = adj_first(p, v->a, A->batched == v->batched);
            OUT("%s    ibrt_softmax_rows_adjoint(%ld, %ld, %s, %s, %s, %d);\n", s_loop(v->batched), v->rows, v->cols,
                ptr(p, i, false, sv, b2), ptr(p, i, true, sv, b3), ptr(p, v->a, true, sv, b4), !f);
        }
        return;
    case V_SUM:
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s;\n    }\n", A->rows * A->cols, aa, f ? "=" : "+=",
                adj(p, i, "0", b2));
        }
        return;
    case V_OP: {
        snprintf(b5, REF_MAX, "r * %ld + j", v->cols);
        if (!(aa = adj(p, v->a, b5, b1)))
            return;
        /* the adjoint of y = A x is dx += A' dy */
        static const opkind transpose_of[] = { OP_ID, OP_DIFF_T, OP_DIFF, OP_CUMSUM_T, OP_CUMSUM, OP_DCT_T, OP_DCT,
                                               OP_DIAG, OP_DIAG_INV, OP_DENSE_T, OP_DENSE, OP_DENSE_INV_T,
                                               OP_DENSE_INV };
        f = adj_first(p, v->a, A->batched == v->batched);
        s_open(v);
        if (v->cols == 1 && f) {   /* first contribution to a vector: straight into its adjoint */
            char pin[REF_MAX + 2], pout[REF_MAX + 2];
            operand(ptr(p, i, true, "s", b2), pin);
            operand(ptr(p, v->a, true, "s", b3), pout);
            emit_op_apply(transpose_of[v->op], A->rows, v->rows, v->diag_id, pin, pout, 8);
            OUT("    }\n");
            return;
        }
        OUT("        for (long j = 0; j < %ld; j++) {\n", v->cols);
        OUT("            double cin[%ld], cout[%ld];\n", v->rows, A->rows);
        OUT("            for (long r = 0; r < %ld; r++)\n                cin[r] = %s;\n", v->rows, adj(p, i, b5, b2));
        emit_op_apply(transpose_of[v->op], A->rows, v->rows, v->diag_id, "cin", "cout", 12);
        OUT("            for (long r = 0; r < %ld; r++)\n                %s %s cout[r];\n        }\n    }\n", A->rows, aa,
            f ? "=" : "+=");
        return;
    }
    }
}

/* Rows x columns ("8 x 16"), or the length of a vector ("200"). */
static char *dims_text(long rows, long cols)
{
    return cols == 1 ? cw_printf("%ld", rows) : cw_printf("%ld x %ld", rows, cols);
}

/* The named pointers of a pass (see "names"), each declared when the pass
 * uses it: every parameter (and in the reverse pass its gradient), input,
 * and value of the tape (and in the reverse pass its adjoint).  Returns
 * how many of d's entries it filled. */
static size_t pass_decls(const prog *p, bool backward, cw_decl *d)
{
    size_t nd = 0;
    for (size_t k = 0; k < p->spec->nparams; k++) {
        const ibc_var *pv = &p->spec->params[k];
        long cols = pv->shape.rank == 2 ? pv->shape.cols : 1, rows = pv->shape.rank == 0 ? 1 : pv->shape.rows;
        char *name = cw_scrub(pv->name), *shape = dims_text(rows, cols);
        d[nd].name = cw_printf("p_%s", p->pname[k]);
        d[nd].text = cw_printf("const double *%s = th + %ld;", d[nd].name, p->param_off[k]);
        d[nd].comment = cw_printf("%s: %s", name, shape);
        nd++;
        if (backward) {
            d[nd].name = cw_printf("g_%s", p->pname[k]);
            d[nd].text = cw_printf("double *%s = g + %ld;", d[nd].name, p->param_off[k]);
            d[nd].comment = cw_printf("the gradient of %s, added to", name);
            nd++;
        }
        free(name);
        free(shape);
    }
    for (size_t k = 0; k < p->spec->ninputs; k++) {
        const ibc_var *iv = &p->spec->inputs[k];
        long cols = iv->shape.rank == 2 ? iv->shape.cols : 1, rows = iv->shape.rank == 0 ? 1 : iv->shape.rows;
        char *name = cw_scrub(iv->name), *shape = dims_text(rows, cols);
        d[nd].name = cw_printf("in_%s", p->iname[k]);
        d[nd].text = cw_printf("const double *%s = x + %ld;", d[nd].name, p->input_off[k]);
        d[nd].comment = cw_printf("%s: %s per sample, IN apart", name, shape);
        nd++;
        free(name);
        free(shape);
    }
    for (int i = 0; i < p->n; i++) {
        const ival *v = &p->v[i];
        if (v->kind == V_PARAM || v->kind == V_INPUT || v->kind == V_CONST)
            continue;
        char *raw = value_text(p, i, 48), *text = cw_scrub(raw), *shape = dims_text(v->rows, v->cols);
        d[nd].name = cw_printf("t_%s", p->name[i]);
        d[nd].text = cw_printf("%sdouble *%s = tp + %ld;", backward ? "const " : "", d[nd].name, v->off);
        d[nd].comment = cw_printf("%s: %s%s", text, shape, v->batched ? " per sample" : "");
        nd++;
        if (backward) {
            d[nd].name = cw_printf("d_%s", p->name[i]);
            d[nd].text = cw_printf("double *%s = ad + %ld;", d[nd].name, v->off);
            d[nd].comment = cw_printf("the adjoint of %s", text);
            nd++;
        }
        free(raw);
        free(text);
        free(shape);
    }
    return nd;
}

/* A pass's body (code written since b was begun) after the pass's named
 * pointers. */
static void emit_pass_body(const prog *p, bool backward, cw_buf *b, const char *const *params, size_t np)
{
    char *body = cw_end(b, &E->out);
    cw_decl *d = cw_calloc(2 * (p->spec->nparams + p->spec->ninputs + (size_t)p->n) + 1, sizeof *d);
    size_t nd = pass_decls(p, backward, d);
    cw_fn_body(E->out, params, np, d, nd, body);
    free(d);
    free(body);
}

static void emit_prog_functions(const prog *p, const char *pre, bool backward)
{
    static const char *const fw_params[] = { "th", "x", "nb", "tp" };
    static const char *const bw_params[] = { "th", "x", "nb", "tp", "ad", "g" };
    cw_buf b;
    OUT("/* %s: forward pass over a batch of nb samples (th: parameters, x: the\n"
        " * samples' inputs, IN per sample, tp: tape), the spec's expression and\n"
        " * its line above each statement */\n", pre);
    OUT("static void %s_forward(const double *restrict th, const double *restrict x, long nb, double *restrict tp)\n{\n",
        pre);
    cw_begin(&b, &E->out);
    for (int i = 0; i < p->n; i++)
        emit_forward_value(p, i);
    emit_pass_body(p, false, &b, fw_params, 4);
    OUT("}\n\n");
    if (!backward)
        return;
    OUT("/* %s: reverse pass; ad[] holds the adjoint of the output at its tape\n"
        " * slot on entry; parameter gradients are added to g.  Each value C =\n"
        " * f(A, B) of the forward pass, last first, passes its adjoint dC on to\n"
        " * its operands' dA and dB (the first contribution to an adjoint sets\n"
        " * it, later ones add to it). */\n", pre);
    OUT("static void %s_backward(const double *restrict th, const double *restrict x, long nb, const double *restrict tp,\n"
        "                        double *restrict ad, double *restrict g)\n{\n", pre);
    cw_begin(&b, &E->out);
    const char *fault = getenv("IBC_FAULT");
    if (fault && !strcmp(fault, "grad")) {
        /* IBC_FAULT=grad (a test hook, tests/e2e.sh): the output's adjoint
         * scaled by 1.01, a wrong gradient that --gradcheck must catch */
        const ival *r = &p->v[p->root];
        OUT("    for (long e = 0; e < %s%ld; e++)   /* IBC_FAULT=grad: a deliberately wrong gradient */\n"
            "        d_%s[e] *= 1.01;\n", r->batched ? "nb * " : "", r->rows * r->cols, p->name[p->root]);
    }
    memset(p->started, 0, (size_t)p->n * sizeof(bool));
    p->started[p->root] = true;
    for (int i = p->n - 1; i >= 0; i--)
        emit_backward_value(p, i);
    emit_pass_body(p, true, &b, bw_params, 6);
    OUT("}\n\n");
}

/* C expression of an initialisation (a distribution times a factor). */
static void emit_init_expr(const ast_node *n, const char *rng)
{
    switch (n->kind) {
    case AST_NUM: OUT("%s", cw_num(n->value)); return;
    case AST_IDENT: OUT("%s", cw_num(n->value)); return;
    case AST_NEG: OUT("(-"); emit_init_expr(n->lhs, rng); OUT(")"); return;
    case AST_BINOP:
        OUT("(");
        emit_init_expr(n->lhs, rng);
        OUT(" %c ", n->op == '@' ? '*' : n->op);
        emit_init_expr(n->rhs, rng);
        OUT(")");
        return;
    case AST_CALL:
        if (n->builtin == IBC_B_normal) {
            OUT("(%s + %s * ibrt_rng_normal(%s))", cw_num(n->kids[0]->value), cw_num(n->kids[1]->value), rng);
        } else if (n->builtin == IBC_B_uniform) {
            OUT("(%s + %s * ibrt_rng_uniform(%s))", cw_num(n->kids[0]->value), cw_num(n->kids[1]->value - n->kids[0]->value),
                rng);
        } else if (n->builtin == IBC_B_constant) {
            OUT("%s", cw_num(n->kids[0]->value));
        } else if (n->builtin == IBC_B_zeros) {
            OUT("0.0");
        } else if (n->builtin == IBC_B_abs || n->builtin == IBC_B_sqrt) {
            OUT("%s(", n->builtin == IBC_B_abs ? "fabs" : "sqrt");
            emit_init_expr(n->kids[0], rng);
            OUT(")");
        } else {
            OUT("0.0");
        }
        return;
    default:
        OUT("%s", cw_num(n->value));
    }
}

/* A distribution call inside an init expression; the rest is a factor
 * drawn once per parameter. */
static const ast_node *init_dist(const ast_node *n, const ast_node **factor)
{
    *factor = NULL;
    if (n->kind == AST_CALL)
        return n;
    if (n->lhs->kind == AST_CALL && n->lhs->builtin != IBC_B_abs && n->lhs->builtin != IBC_B_sqrt) {
        *factor = n->rhs;
        return n->lhs;
    }
    *factor = n->lhs;
    return n->rhs;
}

/* Parameter v's initialisation init (NULL: the default), drawn from rng
 * into th[off...]; the comment names the parameter and its distribution,
 * as the spec writes them. */
static void emit_init_param(const ibc_var *v, const ast_node *init, long off, const char *th, const char *rng,
                            const ibc_source *src)
{
    long size = v->shape.rows * v->shape.cols;
    OUT("    /* ");
    emit_comment_text(v->name);
    if (init) {
        char *t = ast_text(init, src, 120);
        OUT(" ~ ");
        emit_comment_text(t);
        free(t);
        emit_where(src, init);
    } else {
        OUT(" ~ normal(0, 0.1), the default");
    }
    OUT(" */\n    {\n        double f = ");
    const ast_node *factor = NULL, *dist = init ? init_dist(init, &factor) : NULL;
    if (factor)
        emit_init_expr(factor, rng);
    else
        OUT("1.0");
    OUT(";\n        for (int e = 0; e < %ld; e++)\n            %s[%ld + e] = f * ", size, th, off);
    if (dist)
        emit_init_expr(dist, rng);
    else
        OUT("(0.1 * ibrt_rng_normal(%s))", rng);
    OUT(";\n    }\n");
}

void emit_c_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f && c != '?')   /* '?' would allow trigraphs */
            fputc(c, out);
        else
            fprintf(out, "\\%03o", c);
    }
    fputc('"', out);
}


/* ------------------------------------------------------------ the model */

typedef struct {
    const char *name;        /* "designed", "vanilla", "l1", or "model" */
    const ibc_spec *spec;
    const sym_derivation *deriv;
    prog p;
    double lr;               /* 0: lr = auto (lrs) */
    const ibc_lrset *lrs;    /* its learning-rate setting, for lr = auto and the stability warning */
    double l1;               /* weight, 0: none */
    long l1_off, l1_size;    /* the penalised parameter */
    const ast_node *replacement;   /* designed: w(factors) */
    prog rp;                 /* its program */
    prog ap;                 /* A applied to it: must give the factors' product */
    bool unbalance;
    char pre[16];            /* its prefix in the generated code: "m0", "m1", ... */
} model;

/* The slice of block b at index idx as loops: emits `for` header(s) that
 * bind `e` to each element offset in th. */
static void emit_slice_loop(const model *m, const sym_block *b, const char *idx, const char *body)
{
    const ibc_var *v = &m->spec->params[b->param];
    long off = m->p.param_off[b->param], R = v->shape.rows, C = v->shape.rows ? v->shape.cols : 1;
    switch (b->slice) {
    case SYM_SLICE_ROW:
        OUT("            for (long c = 0; c < %ld; c++) { long e = %ld + (%s) * %ld + c; %s }\n", C, off, idx, C, body);
        break;
    case SYM_SLICE_COL:
        OUT("            for (long r = 0; r < %ld; r++) { long e = %ld + r * %ld + (%s); %s }\n", R, off, C, idx, body);
        break;
    case SYM_SLICE_ENTRY:
        OUT("            { long e = %ld + (%s); %s }\n", off, idx, body);
        break;
    case SYM_SLICE_SET:   /* the tables of emit_set_tables */
        OUT("            for (long se = %s_%s_start[%s]; se < %s_%s_start[(%s) + 1]; se++) { long e = %ld + %s_%s_entries[se]; %s }\n",
            m->pre, b->set_name, idx, m->pre, b->set_name, idx, off, m->pre, b->set_name, body);
        break;
    default:
        OUT("            for (long e = %ld; e < %ld; e++) { %s }\n", off, off + R * C, body);
        break;
    }
}

/* The sets of entries that a family's set blocks rescale (SYM_SLICE_SET,
 * from an operator's zero pattern): index value i owns
 * entries[start[i] .. start[i + 1]) of the parameter (row-major). */
static void emit_set_tables(const model *m)
{
    for (size_t f = 0; m->deriv && f < sym_nfamilies(m->deriv); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        for (int p = 0; p < fam->nblocks; p++) {
            const sym_block *b = &fam->blocks[p];
            if (b->slice != SYM_SLICE_SET)
                continue;
            OUT("/* family %zu: the entries of %s in each set %s (row-major) */\n", f + 1,
                m->spec->params[b->param].name, b->set_name);
            OUT("static const long %s_%s_start[%ld] = {", m->pre, b->set_name, fam->count + 1);
            for (long i = 0; i <= fam->count; i++)
                OUT("%s%s%ld", i ? "," : "", i % 16 ? " " : "\n    ", b->set_start[i]);
            OUT("\n};\nstatic const long %s_%s_entries[%ld] = {", m->pre, b->set_name, b->set_start[fam->count]);
            for (long t = 0; t < b->set_start[fam->count]; t++)
                OUT("%s%s%ld", t ? "," : "", t % 16 ? " " : "\n    ", b->set_entries[t]);
            OUT("\n};\n");
        }
    }
}

static long balance_count(const model *m);

/* Balance quantities of every 2-block family at the current parameters:
 * chi = 1/2 (alpha_0 n_0 + alpha_1 n_1) and ratio = ||block 0|| / ||block 1||
 * per index, summarised as median |chi| and median/min/max ratio (models
 * without such a family share no_balance). */
static void emit_balance_function(const model *m, const char *pre)
{
    if (!balance_count(m))
        return;   /* the model's table points at no_balance */
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    OUT("/* %s: per family f and index i, chi[f][i] and ratio[f][i] */\n", pre);
    OUT("static void %s_balance(const double *th, double *chi, double *ratio, double *n0o, double *n1o)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &E->out);
    long base = 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        OUT("    /* family %zu: chi = 1/2 (%ld n0 %+ld n1), n_p the squared norm of ", f + 1, fam->alpha[0][0], fam->alpha[0][1]);
        emit_comment_text(fam->blocks[0].text);
        OUT(", ");
        emit_comment_text(fam->blocks[1].text);
        OUT(" */\n    for (long i = 0; i < %ld; i++) {\n        double n0 = 0, n1 = 0;\n        {\n", fam->count);
        emit_slice_loop(m, &fam->blocks[0], "i", "n0 += th[e] * th[e];");
        emit_slice_loop(m, &fam->blocks[1], "i", "n1 += th[e] * th[e];");
        OUT("        }\n        chi[%ld + i] = 0.5 * (%ld * n0 + %ld * n1);\n", base, fam->alpha[0][0], fam->alpha[0][1]);
        OUT("        ratio[%ld + i] = sqrt(n0 / n1);\n        if (n0o) {\n            n0o[%ld + i] = n0;\n            n1o[%ld + i] = n1;\n        }\n    }\n",
            base, base, base);
        base += fam->count;
    }
    char *code = cw_end(&cb, &E->out);
    static const char *const params[] = { "th", "chi", "ratio", "n0o", "n1o" };
    cw_fn_body(E->out, params, 5, NULL, 0, code);
    free(code);
    OUT("}\n\n");
}

static long balance_count(const model *m)
{
    long n = 0;
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks == 2 && fam->k == 1)
            n += fam->count;
    }
    return n;
}

/* The torus generator vectors, as rows of xi (ibrt_model.gens). */
static long gen_count(const model *m)
{
    long n = 0;
    for (size_t f = 0; m->deriv && f < sym_nfamilies(m->deriv); f++)
        n += sym_family_at(m->deriv, f)->count * sym_family_at(m->deriv, f)->k;
    return n;
}

static void emit_gens_function(const model *m, const char *pre)
{
    if (!gen_count(m))
        return;
    OUT("/* %s: the torus generators xi_a = alpha_ap theta_p, one row of xi each */\n", pre);
    OUT("static void %s_gens(const double *th, double *xi)\n{\n", pre);
    long base = 0;
    for (size_t f = 0; f < sym_nfamilies(m->deriv); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        OUT("    /* family %zu */\n    for (long i = 0; i < %ld; i++) {\n", f + 1, fam->count);
        for (int a = 0; a < fam->k; a++)
            for (int b = 0; b < fam->nblocks; b++) {
                if (!fam->alpha[a][b])
                    continue;
                char body[160];
                snprintf(body, sizeof body, "xi[(%ld + i * %d + %d) * %ld + e] = %ld.0 * th[e];", base, fam->k, a,
                         m->p.nth, fam->alpha[a][b]);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
        OUT("    }\n");
        base += fam->count * fam->k;
    }
    OUT("}\n\n");
}

/* The joint det G of each coupled component whose polynomial the
 * derivation expanded (sym_joint.c, docs/theory.md §8): the squared norm
 * of every cell, then the exact polynomial; the driver compares its log
 * with the Cholesky log det of the component's joint Gram
 * (ibrt_model.joints).  IBC_FAULT=jdet (a test hook, tests/e2e.sh) adds 1
 * to the first coefficient, which that check must catch. */
static size_t joint_poly_count(const model *m)
{
    size_t n = 0;
    for (size_t j = 0; m->deriv && j < sym_njoints(m->deriv); j++)
        n += sym_joint_at(m->deriv, j)->kind == SYM_JOINT_POLY;
    return n;
}

static void emit_joint_dets(const model *m, const char *pre)
{
    const char *fault = getenv("IBC_FAULT");
    bool fault_jdet = fault && !strcmp(fault, "jdet");
    for (size_t j = 0; m->deriv && j < sym_njoints(m->deriv); j++) {
        const sym_joint *jt = sym_joint_at(m->deriv, j);
        if (jt->kind != SYM_JOINT_POLY)
            continue;
        OUT("/* %s: det G of the coupled groups %s, %ld generators: Cauchy-Binet over its %ld cells\n", pre,
            jt->groups, jt->generators, jt->ncells);
        OUT(" * (entries every generator rescales alike), det G =\n");
        for (int t = 0; t < jt->npoly; t++) {
            OUT(" *   %s", t ? "+ " : "  ");
            if (strcmp(jt->term_coef[t], "1"))
                OUT("%s ", jt->term_coef[t]);
            for (long u = 0; u < jt->generators; u++) {
                emit_comment_text(jt->cells[jt->term_cells[(size_t)t * jt->generators + u]].norm2);
                OUT("%s", u + 1 < jt->generators ? " " : "\n");
            }
        }
        OUT(" */\nstatic double %s_jdet%zu(const double *th)\n{\n    double n[%ld] = { 0 };\n", pre, j, jt->ncells);
        for (long c = 0; c < jt->ncells; c++) {
            const sym_cell *cl = &jt->cells[c];
            OUT("    /* ");
            emit_comment_text(cl->norm2);
            OUT(" */\n");
            for (int r = 0; r < cl->nruns; r++) {
                const sym_run *ru = &cl->runs[r];
                long off = m->p.param_off[ru->param] + ru->start;
                if (ru->count == 1)
                    OUT("    n[%ld] += th[%ld] * th[%ld];\n", c, off, off);
                else
                    OUT("    for (long e = %ld; e <= %ld; e += %ld)\n        n[%ld] += th[e] * th[e];\n", off,
                        off + (ru->count - 1) * ru->stride, ru->stride, c);
            }
        }
        OUT("    return 0");
        for (int t = 0; t < jt->npoly; t++) {
            const char *co = jt->term_coef[t];
            OUT("\n        + %s%s.0", co, fault_jdet && t == 0 ? " + 1" : "");
            for (long u = 0; u < jt->generators; u++)
                OUT(" * n[%d]", jt->term_cells[(size_t)t * jt->generators + u]);
        }
        OUT(";\n}\n\n");
    }
}

/* The conserved quadratic functions of every symmetry group, in one
 * vector q (docs/theory.md §9): for a torus family, chi_a = 1/2 sum_p alpha_ap
 * n_p at each index i (q[base + i k + a]); for a GL(r) junction Z = A B,
 * the upper triangle of C = Gram(A's leg) - Gram(B's leg), row by row.
 * Each is 1/2 theta' K theta with K theta orthogonal to every gradient
 * of the loss, so one SGD step theta - lr g changes it by exactly
 * lr^2 q(g): the driver adds that up over the steps and compares it with
 * the measured change (the finite-step identity).  qa (when not NULL)
 * gets the same sums of absolute terms, the scale of q's round-off. */
/* how many conserved quadratics group gr has: C's upper triangle, or a
 * chi per index and generator */
static long group_quad_size(const model *m, const sym_group *gr)
{
    const sym_family *f = gr->kind == SYM_GROUP_TORUS ? sym_family_at(m->deriv, (size_t)gr->family) : NULL;
    return f ? f->count * f->k : gr->r * (gr->r + 1) / 2;
}

static long quad_count(const model *m)
{
    long n = 0;
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    for (size_t g = 0; g < ng; g++)
        n += group_quad_size(m, sym_group_at(m->deriv, g));
    return n;
}

/* the entry of parameter b's leg at index (ix), other index o, as an
 * offset expression: a column leg runs down column ix, a row leg along
 * row ix, a vector's leg is its entries */
static void emit_leg_entry(const model *m, const sym_leg *l, const char *ix, char *buf, size_t n)
{
    const ibc_var *v = &m->spec->params[l->param];
    long off = m->p.param_off[l->param], C = v->shape.rank == 2 ? v->shape.cols : 1;
    if (v->shape.rank < 2)
        snprintf(buf, n, "%ld + %s", off, ix);
    else if (l->rows)
        snprintf(buf, n, "%ld + %s * %ld + o", off, ix, C);
    else
        snprintf(buf, n, "%ld + o * %ld + %s", off, C, ix);
}

static void emit_quad_function(const model *m, const char *pre)
{
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    if (!quad_count(m))
        return;
    OUT("/* %s: the conserved quadratic functions of its symmetry groups, q, and\n"
        " * their sums of absolute terms, qa (when not NULL); see ibrt_model.quad */\n", pre);
    OUT("static void %s_quad(const double *th, double *q, double *qa)\n{\n", pre);
    /* IBC_FAULT=quad (a test hook, tests/e2e.sh): the first torus
     * function's last non-zero exponent negated, a quadratic that is not
     * conserved,
     * which the finite-step identity must catch */
    const char *fault = getenv("IBC_FAULT");
    bool fault_quad = fault && !strcmp(fault, "quad");
    long base = 0;
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(m->deriv, g);
        if (gr->kind == SYM_GROUP_TORUS) {
            const sym_family *fam = sym_family_at(m->deriv, (size_t)gr->family);
            OUT("    /* group %zu, family %d: chi_a = 1/2 sum_p alpha_ap n_p at each index */\n", g + 1,
                gr->family + 1);
            OUT("    for (long i = 0; i < %ld; i++) {\n        double n[%d] = { 0 };\n        {\n", fam->count,
                fam->nblocks);
            for (int b = 0; b < fam->nblocks; b++) {
                char body[64];
                snprintf(body, sizeof body, "n[%d] += th[e] * th[e];", b);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
            OUT("        }\n");
            for (int a = 0; a < fam->k; a++) {
                OUT("        q[%ld + i * %d + %d] = 0.5 * (", base, fam->k, a);
                int lastnz = fam->nblocks - 1;
                while (lastnz > 0 && !fam->alpha[a][lastnz])
                    lastnz--;
                for (int b = 0; b < fam->nblocks; b++) {
                    bool flip = fault_quad && base == 0 && a == 0 && b == lastnz;
                    OUT("%s%ld.0 * n[%d]", b ? " + " : "", flip ? -fam->alpha[a][b] : fam->alpha[a][b], b);
                }
                OUT(");\n        if (qa)\n            qa[%ld + i * %d + %d] = 0.5 * (", base, fam->k, a);
                for (int b = 0; b < fam->nblocks; b++)
                    OUT("%s%ld.0 * n[%d]", b ? " + " : "", labs(fam->alpha[a][b]), b);
                OUT(");\n");
            }
            OUT("    }\n");
            base += group_quad_size(m, gr);
            continue;
        }
        const ibc_var *A = &m->spec->params[gr->left.param], *B = &m->spec->params[gr->right.param];
        long oa = A->shape.rank < 2 ? 1 : gr->left.rows ? A->shape.cols : A->shape.rows;
        long ob = B->shape.rank < 2 ? 1 : gr->right.rows ? B->shape.cols : B->shape.rows;
        char ai[96], aj[96], bi[96], bj[96];
        emit_leg_entry(m, &gr->left, "i", ai, sizeof ai);
        emit_leg_entry(m, &gr->left, "j", aj, sizeof aj);
        emit_leg_entry(m, &gr->right, "i", bi, sizeof bi);
        emit_leg_entry(m, &gr->right, "j", bj, sizeof bj);
        OUT("    /* group %zu, %s: C = Gram(", g + 1, gr->text);
        emit_comment_text(A->name);
        OUT(") - Gram(");
        emit_comment_text(B->name);
        OUT("), r = %ld, upper triangle */\n", gr->r);
        /* the two Gram matrices through the product kernels (the step
         * calls this on every gradient; entry by entry, as dot products,
         * it cost E3's trainer half its time), then the upper
         * triangle of their difference; the absolute terms (for the end of
         * a run only) entry by entry */
        long offa = m->p.param_off[gr->left.param], offb = m->p.param_off[gr->right.param];
        long lda = A->shape.rank == 2 ? A->shape.cols : 1, ldb = B->shape.rank == 2 ? B->shape.cols : 1;
        bool ta = !(A->shape.rank < 2 || gr->left.rows), tb = !(B->shape.rank < 2 || gr->right.rows);
        OUT("    {\n        static double P[%ld * %ld], Q[%ld * %ld];\n", gr->r, gr->r, gr->r, gr->r);
        /* Gram of a column leg: X'X (op(A) = X', op(B) = X); of a row leg or a vector: X X' */
        OUT("        %s(%d, %d, %ld, %ld, %ld, th + %ld, %ld, th + %ld, %ld, 0.0, P, %ld);\n",
            mm_whole_fn(MM_STATIC, gr->r, gr->r, oa, !ta), ta, !ta, gr->r, gr->r, oa, offa, lda, offa, lda, gr->r);
        OUT("        %s(%d, %d, %ld, %ld, %ld, th + %ld, %ld, th + %ld, %ld, 0.0, Q, %ld);\n",
            mm_whole_fn(MM_STATIC, gr->r, gr->r, ob, !tb), tb, !tb, gr->r, gr->r, ob, offb, ldb, offb, ldb, gr->r);
        OUT("        for (long i = 0, t = %ld; i < %ld; i++)\n            for (long j = i; j < %ld; j++, t++)\n"
            "                q[t] = P[i * %ld + j] - Q[i * %ld + j];\n    }\n", base, gr->r, gr->r, gr->r, gr->r);
        OUT("    if (qa)\n        for (long i = 0, t = %ld; i < %ld; i++)\n            for (long j = i; j < %ld; j++, t++) {\n"
            "                double sa = 0;\n", base, gr->r, gr->r);
        OUT("                for (long o = 0; o < %ld; o++)\n                    sa += fabs(th[%s] * th[%s]);\n", oa, ai, aj);
        OUT("                for (long o = 0; o < %ld; o++)\n                    sa += fabs(th[%s] * th[%s]);\n", ob, bi, bj);
        OUT("                qa[t] = sa;\n            }\n");
        base += group_quad_size(m, gr);
    }
    OUT("}\n\n");
}

/* Structural checks of the derivation on the numbers (issue: verification
 * 1): for every family and index, (a) the predictor is unchanged by
 * exp(t xi) for random t, (b) the gradient of chi_a is xi_a (central
 * differences), (c) log det of the Gram matrix assembled from the explicit
 * generator vectors (Cholesky, LAPACKE) equals the exact Cauchy-Binet
 * polynomial of the derivation.  IBC_FAULT (a test hook, see
 * tests/e2e.sh) emits a deliberately wrong derivation so that the checks
 * are seen to fail: "alpha" flips an exponent, "coef" changes a
 * Cauchy-Binet coefficient. */
/* A factor's contracted axis as the runtime's ibrt_gl_leg initialiser:
 * entry (l, o) at off + l ls + o os */
static void emit_gl_leg(const model *m, const sym_leg *l)
{
    const ibc_var *v = &m->spec->params[l->param];
    long off = m->p.param_off[l->param], C = v->shape.rank == 2 ? v->shape.cols : 1;
    if (v->shape.rank < 2)
        OUT("{ %ld, 1, 0, 1 }", off);
    else if (l->rows)
        OUT("{ %ld, %ld, 1, %ld }", off, C, C);
    else
        OUT("{ %ld, 1, %ld, %ld }", off, C, v->shape.rows);
}

/* The checks of a GL(r) junction Z = A B (docs/theory.md §8, runtime
 * ibrt_verify.h): (a) the predictor at (A g, g^-1 B) against the predictor
 * at (A, B), g = I + M random (ibrt_gl_transform); (b) log det of its
 * r^2 x r^2 Gram matrix by Cholesky against the derived sum
 * log(p_i + q_j) (ibrt_gl_logdet_error), skipped above r = 24, where the
 * dense Gram would cost more than the run. */
static void emit_gl_checks(const model *m, const char *pre, const ibc_verify *ver, size_t gi, const sym_group *gr)
{
    OUT("    /* group %zu, ", gi + 1);
    emit_comment_text(gr->text);
    OUT(": A -> A g, B -> g^-1 B */\n    {\n        static const ibrt_gl_leg a = ");
    emit_gl_leg(m, &gr->left);
    OUT(", b = ");
    emit_gl_leg(m, &gr->right);
    OUT(";\n        bool ok = ibrt_gl_transform(%s_th, th2, %ld, &a, &b, %ld, rng);\n", pre, m->p.nth, gr->r);
    OUT("        %s_forward(%s_th, x, 1, %s_tp);\n        memcpy(y0, %s_tp + %ld, sizeof y0);\n"
        "        %s_forward(th2, x, 1, %s_tp);\n", pre, pre, pre, pre, m->p.v[m->p.root].off, pre, pre);
    OUT("        double dy = 0, ys = 0;\n        for (long o = 0; o < OUT; o++) {\n"
        "            dy = fmax(dy, fabs(%s_tp[%ld + o] - y0[o]));\n            ys = fmax(ys, fabs(y0[o]));\n        }\n",
        pre, m->p.v[m->p.root].off);
    OUT("        snprintf(name, sizeof name, \"invariance, group %zu, GL(%ld) (%%s)\", when);\n", gi + 1, gr->r);
    OUT("        ibrt_checks_add(checks, name, ok ? dy / fmax(ys, 1e-300) : INFINITY, 0, %s, ok && dy <= %s * fmax(ys, "
        "1e-300), \"max |f(A g, g^-1 B) - f(A, B)| / max |f|, g = I + M, M_ij ~ U(-0.15, 0.15)\");\n",
        cw_num(ver->invariance_tol), cw_num(ver->invariance_tol));
    if (gr->r <= 24) {
        OUT("        double lerr = ibrt_gl_logdet_error(%s_th, &a, &b, %ld);\n", pre, gr->r);
        OUT("        snprintf(name, sizeof name, \"log det G, group %zu, GL(%ld) (%%s)\", when);\n", gi + 1, gr->r);
        OUT("        ibrt_checks_add(checks, name, lerr, 0, %s, lerr <= %s, \"Cholesky of the r^2 x r^2 Gram vs "
            "sum log(p_i + q_j), relative in log space\");\n", cw_num(ver->logdet_tol), cw_num(ver->logdet_tol));
    }
    OUT("    }\n");
}

/* Whether the model has structural checks: a torus family or a GL junction. */
static bool has_structure(const model *m)
{
    for (size_t g = 0; m->deriv && g < sym_ngroups(m->deriv); g++)
        if (sym_group_at(m->deriv, g)->kind == SYM_GROUP_GL)
            return true;
    return m->deriv && sym_nfamilies(m->deriv) > 0;
}

static void emit_structure_function(const model *m, const char *pre, const ibc_verify *ver)
{
    if (!has_structure(m))
        return;   /* the model's table points at no_structure */
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    const char *fault = getenv("IBC_FAULT");
    bool fault_alpha = fault && !strcmp(fault, "alpha"), fault_coef = fault && !strcmp(fault, "coef");
    OUT("/* %s: structural checks of the derivation at the current parameters */\n", pre);
    OUT("static void %s_structure(const double *x, ibrt_rng *rng, ibrt_checks *checks, const char *when)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &E->out);
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        long alpha[SYM_MAX_GEN][SYM_MAX_BLOCKS];
        memcpy(alpha, fam->alpha, sizeof alpha);
        if (fault_alpha)
            alpha[0][0] = -alpha[0][0] + (alpha[0][0] == 0);
        OUT("    /* family %zu: %d generator(s) per index, %d blocks, %ld indices */\n    {\n", f + 1, fam->k,
            fam->nblocks, fam->count);
        /* (a) invariance */
        OUT("        memcpy(th2, %s_th, sizeof(double) * %ld);\n", pre, m->p.nth);
        OUT("        for (long i = 0; i < %ld; i++) {\n            double t[%d];\n", fam->count, fam->k);
        OUT("            for (int a = 0; a < %d; a++)\n                t[a] = ibrt_rng_uniform(rng) - 0.5;\n", fam->k);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[256];
            int len = snprintf(body, sizeof body, "th2[e] *= exp(0");
            for (int a = 0; a < fam->k; a++)
                len += snprintf(body + len, sizeof body - (size_t)len, " + %ld * t[%d]", alpha[a][b], a);
            snprintf(body + len, sizeof body - (size_t)len, ");");
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        OUT("        }\n        %s_forward(%s_th, x, 1, %s_tp);\n", pre, pre, pre);
        OUT("        memcpy(y0, %s_tp + %ld, sizeof y0);\n        %s_forward(th2, x, 1, %s_tp);\n", pre, m->p.v[m->p.root].off,
            pre, pre);
        OUT("        double dy = 0, ys = 0;\n        for (long o = 0; o < OUT; o++) {\n");
        OUT("            dy = fmax(dy, fabs(%s_tp[%ld + o] - y0[o]));\n            ys = fmax(ys, fabs(y0[o]));\n        }\n",
            pre, m->p.v[m->p.root].off);
        OUT("        snprintf(name, sizeof name, \"invariance, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, dy / fmax(ys, 1e-300), 0, %s, dy <= %s * fmax(ys, 1e-300), "
            "\"max |f(exp(t xi) theta) - f(theta)| / max |f|, t ~ U(-1/2, 1/2)\");\n",
            cw_num(ver->invariance_tol), cw_num(ver->invariance_tol));
        /* (b) grad chi = xi and (c) log det, per index */
        OUT("        double gworst = 0, lworst = 0;\n        for (long i = 0; i < %ld; i++) {\n", fam->count);
        OUT("            double n[%d] = { 0 };\n", fam->nblocks);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[96];
            snprintf(body, sizeof body, "n[%d] += %s_th[e] * %s_th[e];", b, pre, pre);
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        /* grad chi: chi_a = 1/2 sum_p alpha_ap n_p; d chi_a / d theta_e by
         * central differences against xi_a[e] = alpha_ap theta_e */
        for (int a = 0; a < fam->k; a++)
            for (int b = 0; b < fam->nblocks; b++) {
                char body[512];
                snprintf(body, sizeof body,
                         "double t0 = %s_th[e], h = 1e-4 * fmax(1, fabs(t0)); "
                         "double np = n[%d] - t0 * t0 + (t0 + h) * (t0 + h), nm = n[%d] - t0 * t0 + (t0 - h) * (t0 - h); "
                         "double fd = 0.5 * %ld * (np - nm) / (2 * h); "
                         "gworst = fmax(gworst, fabs(fd - %ld * t0) / fmax(1, fabs(%ld * t0)));",
                         pre, b, b, fam->alpha[a][b], alpha[a][b], alpha[a][b]);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
        /* Gram from the generator vectors: G_ab = <xi_a, xi_b> */
        OUT("            double G[%d * %d];\n", fam->k, fam->k);
        for (int a = 0; a < fam->k; a++)
            for (int bb = 0; bb < fam->k; bb++) {
                OUT("            G[%d] = 0", a * fam->k + bb);
                for (int b = 0; b < fam->nblocks; b++)
                    if (alpha[a][b] != 0 && alpha[bb][b] != 0)
                        OUT(" + %ld * n[%d]", alpha[a][b] * alpha[bb][b], b);
                OUT(";\n");
            }
        OUT("            double ld = NAN;\n            if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', %d, G, %d) == 0) {\n", fam->k,
            fam->k);
        OUT("                ld = 0;\n                for (int a = 0; a < %d; a++)\n                    ld += 2 * log(G[a * %d + a]);\n            }\n",
            fam->k, fam->k);
        OUT("            /* the exact Cauchy-Binet polynomial of the derivation */\n            double cb = 0");
        for (int t = 0; t < fam->nterms; t++) {
            OUT(" + %ld.0", fam->term_coef[t] + (fault_coef && t == 0 ? 1 : 0));
            for (int b = 0; b < fam->nblocks; b++)
                if (fam->term_set[t] & (1u << b))
                    OUT(" * n[%d]", b);
        }
        OUT(";\n            lworst = fmax(lworst, isnan(ld) ? INFINITY : fabs(ld - log(cb)) / fmax(1, fabs(log(cb))));\n        }\n");
        OUT("        snprintf(name, sizeof name, \"grad chi = xi, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, gworst, 0, %s, gworst <= %s, \"central differences of chi_a vs alpha_p theta_p\");\n",
            cw_num(ver->gradient_tol), cw_num(ver->gradient_tol));
        OUT("        snprintf(name, sizeof name, \"log det G, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, lworst, 0, %s, lworst <= %s, \"Cholesky of <xi_a, xi_b> vs exact "
            "Cauchy-Binet, relative in log space\");\n    }\n",
            cw_num(ver->logdet_tol), cw_num(ver->logdet_tol));
    }
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    for (size_t g = 0; g < ng; g++)
        if (sym_group_at(m->deriv, g)->kind == SYM_GROUP_GL)
            emit_gl_checks(m, pre, ver, g, sym_group_at(m->deriv, g));
    char *code = cw_end(&cb, &E->out);
    static const char *const params[] = { "x", "rng", "checks", "when" };
    cw_decl decls[] = {
        { cw_strdup("th2"), cw_printf("static double th2[%ld];", m->p.nth + 1), cw_strdup("the parameters transformed") },
        { cw_strdup("y0"), cw_strdup("static double y0[OUT];"), cw_strdup("the predictor before") },
        { cw_strdup("name"), cw_strdup("char name[96];"), cw_strdup("a check's name") },
    };
    cw_fn_body(E->out, params, 4, decls, 3, code);
    free(code);
    OUT("}\n\n");
}

/* init unbalance(from, to): theta_p,i *= exp(alpha_p t_i), t_i = linspace. */
static void emit_unbalance(const model *m, double from, double to)
{
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->k != 1)
            continue;
        OUT("    /* unbalance along family %zu: t_i = linspace(%s, %s, %ld) */\n", f + 1, cw_num(from), cw_num(to), fam->count);
        OUT("    for (long i = 0; i < %ld; i++) {\n", fam->count);
        OUT("        double t = %s + (%s) * (double)i / %ld.0;\n        {\n", cw_num(from), cw_num(to - from),
            fam->count > 1 ? fam->count - 1 : 1);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[96];
            snprintf(body, sizeof body, "th[e] *= exp(%ld * t);", fam->alpha[0][b]);
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        OUT("        }\n    }\n");
    }
}

/* ---------------------------------------------------------------- data */

typedef enum { D_FIXED, D_TEACHER, D_TARGET, D_LOWRANK } data_kind;

static const ast_node *kwarg(const ast_node *call, const char *name)
{
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG && !strcmp(call->kids[i]->name, name))
            return call->kids[i]->lhs;
    return NULL;
}

static double kwnum(const ast_node *call, const char *name, double def)
{
    const ast_node *v = kwarg(call, name);
    return v ? v->value : def;
}

static void emit_list_array(const char *cname, const ast_node *list)
{
    OUT("    static const double %s[%zu] = {", cname, list->nkids);
    for (size_t i = 0; i < list->nkids; i++)
        OUT("%s%s", i ? ", " : " ", cw_num(list->kids[i]->value));
    OUT(" };\n");
}

/* ------------------------------------------------------------- program */

static void emit_header(const ibc_spec *spec, const design_result *design, const model *models, int nm)
{
    OUT("/*\n * Generated by ibc %s from spec '", IBC_VERSION);
    emit_comment_text(spec->model);
    OUT("': ");
    emit_comment_text(spec->description ? spec->description : "");
    OUT("\n * Do not edit: regenerate with `ibc emit`.\n *\n");
    if (design) {
        OUT(" * Inverse design: ");
        emit_comment_text(design->requested);
        OUT("\n *   factorisation: ");
        emit_comment_text(design->factorisation);
        OUT("\n *   requested bias coefficient ");
        emit_comment_text(design->coefficient);
        OUT(", constant ");
        emit_comment_text(design->constant);
        OUT(" per term; the closed loop derived the same.\n *\n");
    }
    for (int k = 0; k < nm; k++) {
        const model *m = &models[k];
        OUT(" * Model '%s':", m->name);
        size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
        if (!nf)
            OUT(" no rescaling symmetry.\n");
        else
            OUT("\n");
        for (size_t f = 0; f < nf; f++) {
            const sym_family *fam = sym_family_at(m->deriv, f);
            OUT(" *   generators: ");
            emit_comment_text(fam->name);
            OUT(" (%ld)\n *   det G = ", fam->count);
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            for (int t = 0; t < fam->nterms; t++) {
                fprintf(mem, "%s%ld", t ? " + " : "", fam->term_coef[t]);
                for (int b = 0; b < fam->nblocks; b++)
                    if (fam->term_set[t] & (1u << b))
                        fprintf(mem, " n(%s)", fam->blocks[b].text);
            }
            fclose(mem);
            emit_comment_text(buf);
            free(buf);
            OUT("\n *   bias per index: ");
            emit_comment_text(fam->coefficient);
            OUT(" log(");
            emit_comment_text(fam->invariant);
            OUT(") + ");
            emit_comment_text(fam->constant);
            OUT("; balance: log det G minimiser ");
            emit_comment_text(fam->log_det_minimizer);
            OUT(", dual slice ");
            emit_comment_text(fam->dual_slice);
            OUT("\n");
        }
    }
    OUT(" *\n * This file holds what is particular to the spec: each model's forward\n"
        " * and reverse passes, balance quantities, structural checks and\n"
        " * initialisation, the data set-up and the minibatch sampler.  Training,\n"
        " * metrics, the check table, results, checkpoints and signals are the\n"
        " * runtime's experiment driver (runtime/ibrt_driver.h).\n */\n");
    OUT("#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    OUT("#include <lapacke.h>\n\n#include \"ibrt.h\"\n#include \"ibrt_data.h\"\n#include \"ibrt_driver.h\"\n"
        "#include \"ibrt_io.h\"\n#include \"ibrt_kernels.h\"\n#include \"ibrt_mat.h\"\n#include \"ibrt_rng.h\"\n"
        "#include \"ibrt_verify.h\"\n\n");
}

static data_kind data_of(const ibc_spec *spec)
{
    ibc_builtin g = spec->data->builtin;
    if (g == IBC_B_teacher)
        return D_TEACHER;
    if (g == IBC_B_noisy_target)
        return D_TARGET;
    if (g == IBC_B_low_rank)
        return D_LOWRANK;
    return D_FIXED;
}

/* The data's part of setup(): a generator drawing the data set from
 * stream 0, files read at run time, or nothing (a teacher or a noisy
 * target draws every batch afresh). */
static void emit_data_setup(const ibc_spec *spec)
{
    const ast_node *d = spec->data;
    const char *g = d->name;
    ibc_builtin gb = d->builtin;
    bool files = gb == IBC_B_csv || gb == IBC_B_npy;
    bool gen = gb == IBC_B_cosine_spikes || gb == IBC_B_sparse_regression || gb == IBC_B_piecewise_signal ||
               gb == IBC_B_low_rank;
    OUT("    /* data: ");
    emit_comment_text(g);
    if (!gen && !files) {
        OUT(": nothing to set up, every step draws its batch */\n");
        return;
    }
    OUT(" */\n");
    if (gen)
        OUT("    ibrt_rng rd;\n    ibrt_rng_fork(&rd, seed, 0);   /* stream 0: data */\n");
    if (gb == IBC_B_cosine_spikes || gb == IBC_B_sparse_regression) {
        OUT("    st = ibrt_gen_%s(ds, &rd, %ld, %ld, %ld, %ld, %s, err);\n", g,
            (long)kwnum(d, gb == IBC_B_cosine_spikes ? "modes" : "features", 0), (long)kwnum(d, "train", 0),
            (long)kwnum(d, "test", 0), (long)kwnum(d, "nonzeros", 0), cw_num(kwnum(d, "noise", 0)));
    } else if (gb == IBC_B_piecewise_signal) {
        emit_list_array("levels", kwarg(d, "levels"));
        emit_list_array("lengths", kwarg(d, "lengths"));
        OUT("    st = ibrt_gen_piecewise_signal(ds, &rd, %ld, %ld, levels, lengths, %zu, %s, err);\n",
            (long)kwnum(d, "length", 0), (long)kwnum(d, "measurements", 0), kwarg(d, "levels")->nkids,
            cw_num(kwnum(d, "noise", 0)));
    } else if (gb == IBC_B_low_rank) {
        emit_list_array("sv", kwarg(d, "singular_values"));
        OUT("    st = ibrt_gen_low_rank(ds, &rd, %ld, sv, %zu, %s, err);\n", (long)kwnum(d, "size", 0),
            kwarg(d, "singular_values")->nkids, cw_num(kwnum(d, "observed", 0)));
    } else if (files) {
        /* read at run time (CSV or .npy by extension), shapes checked
         * against the spec's input and output sizes */
        static const char *const keys[] = { "x", "y", "test_x", "test_y" };
        char full[8192];
        for (int i = 0; i < 4; i++) {
            const ast_node *f = kwarg(d, keys[i]);
            OUT("    const char *file_%s = ", keys[i]);
            if (f && f->kind == AST_STR)
                emit_c_string(E->out, spec_file_path(spec, f->text, full, sizeof full));
            else
                OUT("NULL");
            OUT(";\n");
        }
        const ast_node *hd = kwarg(d, "header");
        if (hd)   /* the spec says whether the first line of each CSV file is a header */
            OUT("    st = ibrt_gen_from_files_header(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, %d, err);\n",
                !strcmp(hd->name, "true"));
        else
            OUT("    st = ibrt_gen_from_files(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, err);\n");
        if (spec->train.batch > 0)
            OUT("    if (st == IBRT_OK)\n        st = ibrt_data_fits_batch(ds, file_x, %ld, err);\n", spec->train.batch);
    }
    OUT("    if (st != IBRT_OK) {\n        ibrt_error e = *err;\n"
        "        snprintf(err->msg, sizeof err->msg, \"data: %%.500s\", e.msg);\n        return st;\n    }\n");
}

/* m<k>_init: draws the model's parameters from their initialisations (in
 * the spec's order), then unbalances along the families if asked. */
static void emit_init_function(const model *m, const char *pre, const ibc_spec *spec)
{
    OUT("/* %s: initial parameters from the stream rng */\n", pre);
    OUT("static void %s_init(double *th, ibrt_rng *rng)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &E->out);
    for (size_t i = 0; i < m->spec->nparams; i++)
        emit_init_param(&m->spec->params[i], m->spec->params[i].init, m->p.param_off[i], "th", "rng", m->spec->src);
    if (m->unbalance)
        emit_unbalance(m, kwnum(spec->init, "from", 0), kwnum(spec->init, "to", 0));
    char *code = cw_end(&cb, &E->out);
    static const char *const params[] = { "th", "rng" };
    cw_fn_body(E->out, params, 2, NULL, 0, code);
    free(code);
    OUT("}\n\n");
}

/* A log-sparsity design on fixed data: the designed parameter w as a
 * function of the factors, and the check that A w equals their product. */
static void emit_design_w_functions(const model *m, int k, const ibc_spec *spec)
{
    long n = spec->params[spec->design.param].shape.rows;
    OUT("/* m%d: the designed parameter w(theta) */\n", k);
    OUT("static void m%d_w_of(const double *th, double *w)\n{\n", k);
    OUT("    m%d_w_forward(th, NULL, 1, m%d_w_tp);\n    memcpy(w, m%d_w_tp + %ld, sizeof(double) * %ld);\n}\n\n", k, k, k,
        m->rp.v[m->rp.root].off, n);
    OUT("/* m%d: the synthesised parameterisation on the numbers, A w(theta) =\n"
        " * a1 * ... * aL: max |A w - product| / max |product| */\n", k);
    OUT("static double m%d_w_check(const double *th)\n{\n", k);
    OUT("    m%d_aw_forward(th, NULL, 1, m%d_aw_tp);\n    double worst = 0, scale = 0;\n", k, k);
    OUT("    for (long i = 0; i < %ld; i++) {\n        double z = 1;\n", n);
    for (size_t f = 0; f + (spec->nparams - 1) < m->spec->nparams; f++)
        OUT("        z *= th[%ld + i];\n", m->p.param_off[f]);
    OUT("        scale = fmax(scale, fabs(z));\n        worst = fmax(worst, fabs(m%d_aw_tp[%ld + i] - z));\n    }\n",
        k, m->ap.v[m->ap.root].off);
    OUT("    return worst / fmax(scale, 1e-300);\n}\n\n");
}

/* The part of the trainer the driver calls back: batch buffers, the
 * sampler, the set-up, and the tables describing the models and the
 * problem; then main. */
static void emit_driver_part(const ibc_spec *spec, const model *models, int nm, const prog *teacher,
                             const char *teacher_fw, data_kind dk,
                             long bmax, long steps)
{
    long batch = spec->train.batch;
    bool masked = dk == D_LOWRANK && spec->loss_mask;
    /* the sampler's body first: it says whether the labels' buffer is used */
    cw_buf cb;
    cw_begin(&cb, &E->out);
    switch (dk) {
    case D_FIXED:
        if (batch == 0) {
            OUT("    /* full batch: the training set itself, no copy */\n    *X = ds->x_train;\n    *Y = ds->y_train;\n");
            OUT("    return (long)ds->n_train;\n");
        } else {
            OUT("    *X = bx;\n    *Y = by;\n");
            OUT("    /* %ld samples drawn uniformly (with replacement) from the training set */\n", batch);
            OUT("    for (long b = 0; b < %ld; b++) {\n        size_t s = ibrt_rng_below(rb, ds->n_train);\n", batch);
            OUT("        memcpy(bx + b * IN, ds->x_train + s * IN, sizeof(double) * IN);\n");
            OUT("        memcpy(by + b * OUT, ds->y_train + s * OUT, sizeof(double) * OUT);\n    }\n    return %ld;\n", batch);
        }
        break;
    case D_TEACHER: {
        const ast_node *inp = kwarg(spec->data, "inputs");
        OUT("    *X = bx;\n    *Y = by;\n");
        OUT("    /* fresh inputs ~ ");
        emit_comment_text(inp->name);
        OUT("; labels from the teacher plus N(0, noise^2) */\n");
        if (inp->kind == AST_CALL && inp->builtin == IBC_B_normal) {
            OUT("    ibrt_rng_normals(rb, bx, BMAX * IN, %s, %s);\n", cw_num(inp->kids[0]->value), cw_num(inp->kids[1]->value));
        } else {
            OUT("    for (long e = 0; e < BMAX * IN; e++)\n        bx[e] = ");
            emit_init_expr(inp, "rb");
            OUT(";\n");
        }
        OUT("    %s(te_th, bx, BMAX, te_tp);\n", teacher_fw);
        OUT("    ibrt_rng_normals(rb, by, BMAX * OUT, 0, %s);\n", cw_num(kwnum(spec->data, "noise", 0)));
        OUT("    for (long s = 0; s < BMAX; s++)\n        for (long o = 0; o < OUT; o++)\n"
            "            by[s * OUT + o] += te_tp[%ld + %so];\n",
            teacher->v[teacher->root].off, teacher->v[teacher->root].batched ? "s * OUT + " : "");
        OUT("    return BMAX;\n");
        break;
    }
    case D_TARGET:
        OUT("    *X = bx;\n    *Y = by;\n");
        OUT("    /* labels value + N(0, noise^2), no inputs */\n");
        OUT("    ibrt_rng_normals(rb, by, %ld, %s, %s);\n    return %ld;\n", bmax, cw_num(kwnum(spec->data, "value", 0)),
            cw_num(kwnum(spec->data, "noise", 0)), bmax);
        break;
    case D_LOWRANK:
        OUT("    /* each observed entry joins the minibatch with probability %s */\n",
            cw_num(kwnum(spec->data, "batch_fraction", 1)));
        OUT("    *X = bx;\n    *Y = ds->y_train;\n    for (long e = 0; e < OUT; e++)\n");
        OUT("        bmask[e] = ds->mask[e] != 0 && ibrt_rng_uniform(rb) < %s ? 1.0 : 0.0;\n    return 1;\n",
            cw_num(kwnum(spec->data, "batch_fraction", 1)));
        break;
    }
    char *code = cw_end(&cb, &E->out);
    OUT("enum { BMAX = %ld };   /* samples per step */\n", bmax);
    OUT(cw_uses(code, "by") ? "static double bx[BMAX * IN], by[BMAX * OUT];\n" : "static double bx[BMAX * IN];\n");
    if (dk == D_LOWRANK)
        OUT("static double bmask[OUT];   /* this step's observed entries */\n");
    OUT("\n");
    OUT("/* One minibatch: *X its inputs, *Y its labels%s; returns its number\n"
        " * of samples.  Nothing is allocated. */\n", dk == D_LOWRANK ? " (and bmask the mask)" : "");
    OUT("static long draw_batch(const ibrt_dataset *ds, ibrt_rng *rb, const double **X, const double **Y)\n{\n");
    static const char *const batch_params[] = { "ds", "rb", "X", "Y" };
    cw_fn_body(E->out, batch_params, 4, NULL, 0, code);
    free(code);
    OUT("}\n\n");

    /* set-up: operators, data (stream 0), teacher (stream 1) */
    OUT("/* Fixed operators, the data (stream 0) and the teacher (stream 1) for\n"
        " * one seed; an error names the file or generator at fault. */\n");
    OUT("static ibrt_status setup(ibrt_dataset *ds, uint64_t seed, bool quiet, ibrt_error *err)\n{\n");
    cw_buf setup_cb;
    cw_begin(&setup_cb, &E->out);
    for (int i = 0; i < E->ndct; i++)
        OUT("    ibrt_op_dct_matrix(%ld, dct_%ld);\n", E->dct_sizes[i], E->dct_sizes[i]);
    for (int i = 0; i < E->ndense; i++) {
        long n = E->dense_r[i], nc = E->dense_c[i];
        OUT("    {   /* matrix(...) operator %d: read, shape checked", i);
        if (E->dense_inv[i])
            OUT(", inverse formed once from its LU\n         * factors (LAPACKE dgetrf/dgetrs) so that each step is one gemv,\n"
                "         * allocation-free");
        OUT(" */\n        const char *path = ");
        emit_c_string(E->out, E->dense_path[i]);
        OUT(";\n        size_t r, c;\n        double *a;\n");
        OUT("        if ((st = ibrt_io_read_matrix(path, &r, &c, &a, err)) != IBRT_OK)\n            return st;\n");
        OUT("        if (r != %ld || c != %ld) {\n"
            "            snprintf(err->msg, sizeof err->msg, \"%%.400s: the operator must be %ld x %ld, the file holds %%zu x %%zu\", path, r, c);\n"
            "            free(a);\n            return IBRT_ESHAPE;\n        }\n        memcpy(dense_%d, a, sizeof dense_%d);\n",
            n, nc, n, nc, i, i);
        if (E->dense_inv[i]) {
            OUT("        ibrt_lu lu;\n        if ((st = ibrt_lu_factor(&lu, %ld, a, err)) == IBRT_OK) {\n", n);
            OUT("            if (lu.rcond < 1e-12 && !quiet)\n"
                "                fprintf(stderr, \"warning: %%s: condition number about %%.3g: \"\n"
                "                        \"its inverse loses about %%.0f digits\\n\", path, 1 / lu.rcond, -log10(lu.rcond));\n");
            OUT("            for (long q = 0; q < %ld * %ld; q++)\n                dense_inv_%d[q] = q %% %ld == q / %ld;\n", n, n,
                i, n, n);
            OUT("            st = ibrt_lu_solve(&lu, 0, %ld, dense_inv_%d, err);\n            ibrt_lu_free(&lu);\n        }\n", n, i);
            OUT("        if (st != IBRT_OK) {\n            ibrt_error e = *err;\n"
                "            snprintf(err->msg, sizeof err->msg, \"%%.200s: %%.300s\", path, e.msg);\n"
                "            free(a);\n            return st;\n        }\n");
        }
        OUT("        free(a);\n    }\n");
    }
    emit_data_setup(spec);
    if (dk == D_TEACHER) {
        OUT("    /* teacher weights (stream 1) */\n    ibrt_rng rt;\n    ibrt_rng_fork(&rt, seed, 1);\n");
        for (size_t i = 0; i < spec->nparams; i++) {
            const ast_node *ti = NULL;
            for (size_t j = 0; j < spec->teacher->nkids; j++)
                if (!strcmp(spec->teacher->kids[j]->name, spec->params[i].name))
                    ti = spec->teacher->kids[j]->lhs;
            emit_init_param(&spec->params[i], ti ? ti : spec->params[i].init, teacher->param_off[i], "te_th", "&rt",
                            spec->src);
        }
    }
    OUT("    return IBRT_OK;\n");
    char *setup_code = cw_end(&setup_cb, &E->out);
    static const char *const setup_params[] = { "ds", "seed", "quiet", "err" };
    cw_decl st = { cw_strdup("st"), cw_strdup("ibrt_status st;"), NULL };
    cw_fn_body(E->out, setup_params, 4, &st, 1, setup_code);
    free(setup_code);
    OUT("}\n\n");

    /* the models' tables */
    for (int k = 0; k < nm; k++) {
        const model *m = &models[k];
        OUT("static const ibrt_param m%d_params[] = {\n", k);
        for (size_t q = 0; q < m->spec->nparams; q++) {
            const ibc_var *pv = &m->spec->params[q];
            OUT("    { ");
            emit_c_string(E->out, pv->name);
            OUT(", %ld, %ld, %ld, %d },\n", m->p.param_off[q], pv->shape.rank == 0 ? 1L : pv->shape.rows,
                pv->shape.rank == 2 ? pv->shape.cols : 1L, pv->shape.rank == 2 ? 2 : 1);
        }
        OUT("};\n");
        if (gen_count(m)) {
            OUT("static const ibrt_genfam m%d_genfam[] = {", k);
            for (size_t f = 0; f < sym_nfamilies(m->deriv); f++)
                OUT(" { %ld, %d },", sym_family_at(m->deriv, f)->count, sym_family_at(m->deriv, f)->k);
            OUT(" };\n");
        }
        if (quad_count(m)) {
            OUT("static const ibrt_qgroup m%d_qgroups[] = {\n", k);
            long end = 0;
            for (size_t g = 0; g < sym_ngroups(m->deriv); g++) {
                const sym_group *gr = sym_group_at(m->deriv, g);
                end += group_quad_size(m, gr);
                OUT("    { ");
                emit_c_string(E->out, gr->kind == SYM_GROUP_GL ? gr->text
                                                               : sym_family_at(m->deriv, (size_t)gr->family)->name);
                OUT(", %ld, %ld },\n", end, gr->kind == SYM_GROUP_GL ? gr->r : 0L);
            }
            OUT("};\n");
        }
        if (balance_count(m)) {
            /* per family: id, count, exponents, the ratio's two exact
             * predictions (docs/theory.md §4) and its definition */
            OUT("static const ibrt_family m%d_families[] = {\n", k);
            size_t nf = sym_nfamilies(m->deriv);
            for (size_t f = 0; f < nf; f++) {
                const sym_family *fam = sym_family_at(m->deriv, f);
                if (fam->nblocks != 2 || fam->k != 1)
                    continue;
                double rl, rd;
                sym_balance_predictions(fam, &rl, &rd);
                OUT("    { .id = %zu, .count = %ld, .alpha0 = %ld, .alpha1 = %ld, .pred_logdet = %s, .pred_dual = %s,\n"
                    "      .ratio_definition = ", f + 1, fam->count, fam->alpha[0][0], fam->alpha[0][1],
                    cw_num(rl), cw_num(rd));
                char *buf = NULL;
                size_t len = 0;
                FILE *mem = open_memstream(&buf, &len);
                fprintf(mem, "||%s|| / ||%s||", fam->blocks[0].text, fam->blocks[1].text);
                fclose(mem);
                emit_c_string(E->out, buf);
                free(buf);
                OUT(" },\n");
            }
            OUT("};\n");
        }
        if (joint_poly_count(m)) {
            /* the coupled components with an exact joint det G: their torus families */
            OUT("static const ibrt_jointpoly m%d_joints[] = {\n", k);
            for (size_t j = 0; j < sym_njoints(m->deriv); j++) {
                const sym_joint *jt = sym_joint_at(m->deriv, j);
                if (jt->kind != SYM_JOINT_POLY)
                    continue;
                OUT("    { \"%s\", (const int[]){", jt->groups);
                size_t nf = 0;
                for (size_t g = 0; g < sym_ngroups(m->deriv); g++)
                    if (sym_group_at(m->deriv, g)->component == jt->component) {
                        OUT("%s%d", nf ? ", " : " ", sym_group_at(m->deriv, g)->family);
                        nf++;
                    }
                OUT(" }, %zu, m%d_jdet%zu },\n", nf, k, j);
            }
            OUT("};\n");
        }
        if (m->deriv && sym_ngroups(m->deriv)) {
            /* every symmetry group, for the joint Gram of the whole model */
            OUT("static const ibrt_symgroup m%d_symgroups[] = {\n", k);
            for (size_t g = 0; g < sym_ngroups(m->deriv); g++) {
                const sym_group *gr = sym_group_at(m->deriv, g);
                OUT("    /* group %zu: ", g + 1);
                emit_comment_text(gr->kind == SYM_GROUP_GL ? gr->text : sym_family_at(m->deriv, (size_t)gr->family)->name);
                OUT(" */\n");
                if (gr->kind == SYM_GROUP_GL) {
                    OUT("    { .family = -1, .a = ");
                    emit_gl_leg(m, &gr->left);
                    OUT(", .b = ");
                    emit_gl_leg(m, &gr->right);
                    OUT(", .r = %ld, .component = %d },\n", gr->r, gr->component);
                } else
                    OUT("    { .family = %d, .component = %d },\n", gr->family, gr->component);
            }
            OUT("};\n");
        }
    }
    bool no_structure = false, no_balance = false;
    for (int k = 0; k < nm; k++) {
        no_structure = no_structure || !has_structure(&models[k]);
        no_balance = no_balance || !balance_count(&models[k]);
    }
    if (no_structure)
        OUT("\n/* the models without a symmetry: no structural check */\n"
            "static void no_structure(const double *x, ibrt_rng *rng, ibrt_checks *checks, const char *when)\n{\n"
            "    (void)x;\n    (void)rng;\n    (void)checks;\n    (void)when;\n}\n");
    if (no_balance)
        OUT("\n/* the models without a family of two blocks and one generator: no\n"
            " * balance to measure (nbal = 0) */\n"
            "static void no_balance(const double *th, double *chi, double *ratio, double *n0o, double *n1o)\n{\n"
            "    (void)th;\n    (void)chi;\n    (void)ratio;\n    (void)n0o;\n    (void)n1o;\n}\n");
    OUT("\nstatic ibrt_model models[] = {\n");
    for (int k = 0; k < nm; k++) {
        const model *m = &models[k];
        long nbal = balance_count(m);
        OUT("    {\n        .name = \"%s\",\n        .suffix = \"%s\",\n", m->name, strcmp(m->name, "model") ? m->name : "");
        OUT("        .nth = %ld,\n        .tape = %ld,\n        .root = %ld,\n        .root_batched = %s,\n", m->p.nth,
            m->p.tape + 1, m->p.v[m->p.root].off, m->p.v[m->p.root].batched ? "true" : "false");
        OUT("        .th = m%d_th,\n        .g = m%d_g,\n        .tp = m%d_tp,\n        .ad = m%d_ad,\n", k, k, k, k);
        OUT("        .lr = %s,\n        .l1 = %s,\n        .l1_off = %ld,\n        .l1_size = %ld,\n", cw_num(m->lr), cw_num(m->l1),
            m->l1_off, m->l1_size);
        emit_lr_setting(m->lrs, spec->src);
        char structure[32] = "no_structure", balance[32] = "no_balance";
        if (has_structure(m))
            snprintf(structure, sizeof structure, "m%d_structure", k);
        if (nbal)
            snprintf(balance, sizeof balance, "m%d_balance", k);
        OUT("        .init = m%d_init,\n        .forward = m%d_forward,\n        .backward = m%d_backward,\n"
            "        .structure = %s,\n        .balance = %s,\n", k, k, k, structure, balance);
        if (gen_count(m)) {
            bool coupled = sym_families_coupled(m->deriv);
            OUT("        .ngen = %ld,\n        .ngenfam = %zu,\n        .genfam = m%d_genfam,\n        .gen_coupled = %s,\n"
                "        .gens = m%d_gens,\n", gen_count(m), sym_nfamilies(m->deriv), k, coupled ? "true" : "false", k);
        }
        if (quad_count(m))
            OUT("        .nquad = %ld,\n        .nqgroups = %zu,\n        .qgroups = m%d_qgroups,\n        .quad = m%d_quad,\n",
                quad_count(m), sym_ngroups(m->deriv), k, k);
        if (nbal) {
            size_t nfam = 0, nf = sym_nfamilies(m->deriv);
            for (size_t f = 0; f < nf; f++)
                nfam += sym_family_at(m->deriv, f)->nblocks == 2 && sym_family_at(m->deriv, f)->k == 1;
            OUT("        .nbal = %ld,\n        .nfam = %zu,\n        .fams = m%d_families,\n", nbal, nfam, k);
        }
        if (m->deriv && sym_ngroups(m->deriv))
            OUT("        .nsymgroups = %zu,\n        .symgroups = m%d_symgroups,\n", sym_ngroups(m->deriv), k);
        if (joint_poly_count(m))
            OUT("        .njoints = %zu,\n        .joints = m%d_joints,\n", joint_poly_count(m), k);
        if (nbal) {
            /* a Hadamard-type pair: the contraction of chi is measured */
            const sym_family *f0 = sym_family_at(m->deriv, 0);
            bool pair = f0->k == 1 && f0->nblocks == 2 && f0->count == nbal &&
                        f0->alpha[0][0] * f0->alpha[0][1] == -1;
            for (int b = 0; b < 2 && pair; b++) {
                const ibc_var *pv = &m->spec->params[f0->blocks[b].param];
                pair = f0->blocks[b].slice == SYM_SLICE_ENTRY ||
                       (f0->blocks[b].slice == SYM_SLICE_WHOLE && pv->shape.rows * (pv->shape.rank == 2 ? pv->shape.cols : 1) <= 1);
            }
            if (pair)
                OUT("        .pair = true,\n        .pair_off0 = %ld,\n        .pair_off1 = %ld,\n",
                    m->p.param_off[f0->blocks[0].param], m->p.param_off[f0->blocks[1].param]);
        }
        OUT("        .nparams = %zu,\n        .params = m%d_params,\n", m->spec->nparams, k);
        if (spec->design.kind == DESIGN_LOG_SPARSITY && dk == D_FIXED) {
            OUT("        .w_size = %ld,\n", spec->params[spec->design.param].shape.rows);
            if (m->replacement)
                OUT("        .w_of = m%d_w_of,\n        .w_check = m%d_w_check,\n", k, k);
            else
                OUT("        .w_off = %ld,\n", m->p.param_off[spec->design.param]);
        }
        OUT("    },\n");
    }
    OUT("};\n\n");
    OUT("static const ibrt_problem problem = {\n    .name = ");
    emit_c_string(E->out, spec->model);
    OUT(",\n    .description = ");
    emit_c_string(E->out, spec->description ? spec->description : "");
    long rec = spec->train.record_every ? spec->train.record_every : (steps / 200 > 0 ? steps / 200 : 1);
    unsigned long long fp = 1469598103934665603ull;   /* FNV-1a of the spec's bytes and the ibc version */
    for (size_t i = 0; spec->src && i < spec->src->len; i++)
        fp = (fp ^ (unsigned char)spec->src->text[i]) * 1099511628211ull;
    for (const char *v = IBC_VERSION; *v; v++)
        fp = (fp ^ (unsigned char)*v) * 1099511628211ull;
    OUT(",\n    .fingerprint = 0x%016llxULL,", fp);
    OUT("\n    .default_steps = %ldL,\n    .default_seed = %lluULL,\n    .record_every = %ld,\n", steps,
        (unsigned long long)spec->train.seed, rec);
    OUT("    .in = IN,\n    .out = OUT,\n    .bmax = BMAX,\n    .bx = bx,\n");
    if (masked)
        OUT("    .bmask = bmask,\n    .normalise_all = %s,\n", spec->loss_normalise_all ? "true" : "false");
    OUT("    .minibatch = %s,\n", dk == D_FIXED && batch == 0 ? "false" : "true");
    if (spec->out_shape.rank == 2 && dk == D_LOWRANK)
        OUT("    .zrows = %ld,\n    .zcols = %ld,\n", spec->out_shape.rows, spec->out_shape.cols);
    OUT("    .gradient_tol = %s,\n    .setup = setup,\n    .draw_batch = draw_batch,\n", cw_num(spec->verify.gradient_tol));
    OUT("    .nmodels = %d,\n    .models = models,\n", nm);
    if (spec->verify.stationary_beta > 0) {
        /* docs/theory.md §7 on the scalar pair z = u v with L = (theta - value)^2,
         * i.e. beta_d = 2 and theta* = the data's value */
        OUT("    .stationary = true,\n    .stationary_cfg = { .beta = %s, .beta_d = 2, .theta_star = %s, .eps = %s,\n"
            "                        .chains = 40000, .steps = 4000, .step = 0.02 },\n",
            cw_num(spec->verify.stationary_beta), cw_num(kwnum(spec->data, "value", 1)),
            cw_num(spec->verify.stationary_eps > 0 ? spec->verify.stationary_eps : 0.02));
    }
    OUT("};\n\nint main(int argc, char **argv)\n{\n    return ibrt_main(argc, argv, &problem);\n}\n");
}

static void emitter_free(emitter *em)
{
    for (int i = 0; i < em->ndense; i++)
        free(em->dense_path[i]);
    free(em->diags);
    free(em->dct_sizes);
}

/* Whether two lowered programs are the same code: the teacher's and a
 * model's, when the model is the spec's own predictor at the same batch
 * size (then the teacher calls that model's forward pass). */
static bool same_program(const prog *a, const prog *b)
{
    if (a->n != b->n || a->tape != b->tape || a->bmax != b->bmax || a->root != b->root || a->nth != b->nth ||
        a->nx != b->nx)
        return false;
    for (int i = 0; i < a->n; i++) {
        const ival *u = &a->v[i], *w = &b->v[i];
        if (u->kind != w->kind || u->rows != w->rows || u->cols != w->cols || u->a != w->a || u->b != w->b ||
            u->avec != w->avec || u->bvec != w->bvec || u->ta != w->ta || u->tb != w->tb ||
            u->batched != w->batched || u->off != w->off || memcmp(&u->c, &w->c, sizeof u->c) ||
            u->fn != w->fn || u->op != w->op ||
            u->diag_id != w->diag_id)
            return false;
    }
    return true;
}

bool emit_program(FILE *out, const ibc_spec *spec, const design_result *design, const sym_derivation *derivation,
                  ibc_diag *diag)
{
    emitter em;
    memset(&em, 0, sizeof em);
    em.out = out;
    E = &em;
    data_kind dk = data_of(spec);
    /* The models: designed (if any) and baselines, or the spec's own. */
    model models[8];
    int nm = 0;
    memset(models, 0, sizeof models);
    if (design) {
        model *m = &models[nm++];
        m->name = "designed";
        m->spec = design->designed;
        m->deriv = design->kind == DESIGN_LOG_SPECTRAL && design->depth > 2 ? NULL : design->derivation;
        m->lrs = spec_lr(spec, &spec->design.lrs, spec->design.lr, &m->lr);
        m->replacement = design->replacement;
        for (size_t b = 0; b < spec->nbaselines && nm < 8; b++) {
            model *bm = &models[nm++];
            bm->name = spec->baselines[b].kind == BASELINE_L1 ? "l1" : "vanilla";
            bm->spec = spec;
            bm->deriv = derivation;
            bm->lrs = spec_lr(spec, &spec->baselines[b].lrs, spec->baselines[b].lr, &bm->lr);
            bm->l1 = spec->baselines[b].kind == BASELINE_L1 ? spec->baselines[b].weight : 0;
        }
    } else {
        model *m = &models[nm++];
        m->name = "model";
        m->spec = spec;
        m->deriv = derivation;
        m->lrs = spec_lr(spec, NULL, 0, &m->lr);
        m->unbalance = spec->init != NULL;
    }
    /* Samples per step: the batch, all training samples for full batch, one
     * matrix for low_rank; batched values of the tape get that many copies. */
    long batch = spec->train.batch;
    long bmax = batch > 0 ? batch : 1;
    if (dk == D_FIXED && batch == 0)
        bmax = (long)kwnum(spec->data, "train", kwnum(spec->data, "measurements", 256));
    if (dk == D_LOWRANK)
        bmax = 1;
    bool ok = true;
    for (int k = 0; k < nm; k++) {
        ok = prog_build(&models[k].p, models[k].spec, models[k].spec->predict, bmax, "predict", diag) && ok;
        if (models[k].replacement) {
            const char *wname = spec->params[spec->design.param].name;
            ok = prog_build(&models[k].rp, models[k].spec, models[k].replacement, 1, wname, diag) && ok;
            if (spec->design.kind == DESIGN_LOG_SPARSITY) {
                static ast_node aw;   /* A @ w(factors), for the parameterisation check */
                memset(&aw, 0, sizeof aw);
                aw.kind = AST_BINOP;
                aw.op = '@';
                aw.lhs = spec->design.op;
                aw.rhs = (ast_node *)models[k].replacement;
                aw.shape = models[k].replacement->shape;
                aw.loc = spec->design.decl->loc;
                char aname[64];
                snprintf(aname, sizeof aname, "A_%s", wname);
                ok = prog_build(&models[k].ap, models[k].spec, &aw, 1, aname, diag) && ok;
            }
        }
        if (models[k].l1 > 0 && spec->design.kind != DESIGN_NONE) {
            const ibc_var *w = &spec->params[spec->design.param];
            models[k].l1_off = models[k].p.param_off[spec->design.param];
            models[k].l1_size = w->shape.rows * w->shape.cols;
        } else if (models[k].l1 > 0) {
            models[k].l1_off = 0;
            models[k].l1_size = models[k].p.nth;
        }
    }
    prog teacher;
    memset(&teacher, 0, sizeof teacher);
    if (dk == D_TEACHER)
        ok = prog_build(&teacher, spec, spec->predict, bmax, "predict", diag) && ok;
    if (!ok) {
        for (int k = 0; k < nm; k++) {
            prog_free(&models[k].p);
            prog_free(&models[k].rp);
            prog_free(&models[k].ap);
        }
        prog_free(&teacher);
        emitter_free(&em);
        return false;
    }

    /* Resource caps: the trainer's static buffers (parameters, gradients,
     * tapes and adjoints of every model, the batch) and its traces (rows of
     * the loss and of chi and the ratio per index) are sized here, before
     * any C is written, and refused above a cap with the computed size. */
    {
        double bytes = 0, rows = 0, cols = 0;
        for (int k = 0; k < nm; k++) {
            bytes += 8.0 * (2.0 * (double)models[k].p.nth + 2.0 * (double)(models[k].p.tape + 1) +
                            (double)(models[k].rp.tape + models[k].ap.tape));
            cols += 6 + 2 * (double)balance_count(&models[k]);
        }
        bytes += 8.0 * (double)bmax * (double)(models[0].p.nx + 1) + 8.0 * (double)(teacher.tape + teacher.nth);
        long total = spec->train.steps + spec->train.extend_steps;
        rows = spec->train.record_every ? (double)total / (double)spec->train.record_every : 200;
        ast_node *at = spec->train.batch_node ? spec->train.batch_node : spec->train.decl;
        if (bytes > IBC_MAX_TRAINER_BYTES) {
            diag_error(diag, at ? at->loc : spec->predict->loc,
                       "the trainer would need %.0f MiB of buffers (parameters, tapes and a batch of %ld samples); "
                       "the cap is %.0f MiB: lower the batch size or the dimensions",
                       bytes / 1048576.0, bmax, IBC_MAX_TRAINER_BYTES / 1048576.0);
            ok = false;
        }
        /* about 12 bytes per number written in a trace */
        if (rows * cols * 12 > IBC_MAX_TRACE_BYTES) {
            at = spec->train.record_node ? spec->train.record_node : spec->train.decl;
            diag_error(diag, at ? at->loc : spec->predict->loc,
                       "recording every %ld steps would write about %.0f MiB of traces (%.0f rows of %.0f numbers); "
                       "the cap is %.0f MiB: record less often",
                       spec->train.record_every, rows * cols * 12 / 1048576.0, rows, cols,
                       IBC_MAX_TRACE_BYTES / 1048576.0);
            ok = false;
        }
        if (!ok) {
            for (int k = 0; k < nm; k++) {
                prog_free(&models[k].p);
                prog_free(&models[k].rp);
                prog_free(&models[k].ap);
            }
            prog_free(&teacher);
            emitter_free(&em);
            return false;
        }
    }

    long in_size = models[0].p.nx, out_size = spec->out_shape.rank == 0 ? 1 : spec->out_shape.rows *
                                                                                (spec->out_shape.rank == 2 ? spec->out_shape.cols : 1);
    long steps = spec->train.steps + spec->train.extend_steps;
    emit_header(spec, design, models, nm);

    OUT("enum { IN = %ld, OUT = %ld };   /* per-sample input and output sizes */\n\n", in_size ? in_size : 1, out_size);
    for (int i = 0; i < em.ndiags; i++) {
        const ast_node *l = em.diags[i]->kids[0];
        OUT("static const double diag_%d[%zu] = {", i, l->nkids);
        for (size_t j = 0; j < l->nkids; j++)
            OUT("%s%s", j ? ", " : " ", cw_num(l->kids[j]->value));
        OUT(" };\n");
    }
    for (int i = 0; i < em.ndct; i++)
        OUT("static double dct_%ld[%ld * %ld];   /* orthonormal DCT-II, filled in main */\n", em.dct_sizes[i],
            em.dct_sizes[i], em.dct_sizes[i]);
    for (int i = 0; i < em.ndense; i++) {
        OUT("static double dense_%d[%ld * %ld];   /* matrix(", i, em.dense_r[i], em.dense_c[i]);
        emit_comment_text(em.dense[i]->kids[0]->text);
        OUT("), read in main */\n");
        if (em.dense_inv[i])
            OUT("static double dense_inv_%d[%ld * %ld];   /* its inverse, from its LU factors */\n", i, em.dense_r[i],
                em.dense_r[i]);
    }
    OUT("\n");
    for (int k = 0; k < nm; k++) {
        model *m = &models[k];
        char *pre = m->pre;
        snprintf(pre, sizeof m->pre, "m%d", k);
        OUT("/* ---- model '%s': %ld parameters, tape of %ld values ---- */\n", m->name, m->p.nth, m->p.tape);
        OUT("static double %s_th[%ld], %s_g[%ld], %s_tp[%ld], %s_ad[%ld];\n", pre, m->p.nth, pre, m->p.nth, pre,
            m->p.tape + 1, pre, m->p.tape + 1);
        emit_set_tables(m);
        emit_prog_functions(&m->p, pre, true);
        emit_balance_function(m, pre);
        emit_quad_function(m, pre);
        emit_gens_function(m, pre);
        emit_joint_dets(m, pre);
        emit_structure_function(m, pre, &spec->verify);
        if (m->replacement && spec->design.kind == DESIGN_LOG_SPARSITY && dk == D_FIXED) {
            char rpre[20];
            snprintf(rpre, sizeof rpre, "m%d_w", k);
            OUT("/* the designed parameter as a function of the factors */\nstatic double %s_tp[%ld];\n", rpre,
                m->rp.tape + 1);
            emit_prog_functions(&m->rp, rpre, false);
            snprintf(rpre, sizeof rpre, "m%d_aw", k);
            OUT("/* A applied to the designed parameter: equals the product of the factors */\nstatic double %s_tp[%ld];\n",
                rpre, m->ap.tape + 1);
            emit_prog_functions(&m->ap, rpre, false);
            emit_design_w_functions(m, k, spec);
        }
        emit_init_function(m, pre, spec);
    }
    char teacher_fw[32] = "te_forward";
    if (dk == D_TEACHER) {
        int same = -1;
        for (int k = 0; k < nm && same < 0; k++)
            if (same_program(&models[k].p, &teacher))
                same = k;
        OUT("/* ---- the teacher: the spec's predictor with weights of its own ---- */\n");
        OUT("static double te_th[%ld], te_tp[%ld];\n", teacher.nth, teacher.tape + 1);
        if (same >= 0) {
            snprintf(teacher_fw, sizeof teacher_fw, "m%d_forward", same);
            OUT("/* its forward pass is m%d_forward, the same program as model '%s',\n"
                " * called with te_th and te_tp */\n\n", same, models[same].name);
        } else {
            emit_prog_functions(&teacher, "te", false);
        }
    }

    emit_driver_part(spec, models, nm, &teacher, teacher_fw, dk, bmax, steps);
    for (int k = 0; k < nm; k++) {
        prog_free(&models[k].p);
        prog_free(&models[k].rp);
        prog_free(&models[k].ap);
    }
    prog_free(&teacher);
    emitter_free(&em);
    return true;
}
