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
 * Every name and string from the spec reaches the C file only as an
 * escaped string literal or inside a comment scrubbed of comment
 * delimiters and trigraphs; C identifiers are generated (m0_th, v12),
 * never taken from the spec.
 */
#include "emit.h"

#include <math.h>
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
    const char *fn;      /* V_MAP: relu, tanh, sigmoid, exp */
    opkind op;
    int diag_id;         /* OP_DIAG*: which static diagonal; OP_DENSE*: which matrix */
    const char *what;    /* source text of the node, for comments */
} ival;

typedef struct {
    ival *v;
    int n, cap;
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
    ast_node *diags[32];  /* diag([...]) operators met, emitted as arrays */
    int ndiags;
    bool need_dct[4096];
    long dct_sizes[16];
    int ndct;
    /* matrix("file") operators: path as written, resolved path, size, and
     * whether the inverse is needed (formed once in set-up) */
    const ast_node *dense[16];
    char *dense_path[16];
    long dense_n[16];
    bool dense_inv[16];
    int ndense;
} emitter;

static emitter *E;   /* the emitter of the current program */

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

static bool is_operator_call(const ast_node *n)
{
    static const char *const ops[] = { "identity", "diff", "diff_open", "dct", "cosine", "diag", "matrix" };
    if (n->kind != AST_CALL)
        return false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(n->name, ops[i]))
            return true;
    return false;
}

static int diag_index(const ast_node *call)
{
    for (int i = 0; i < E->ndiags; i++)
        if (E->diags[i] == call)
            return i;
    if (E->ndiags == 32)
        return 0;
    E->diags[E->ndiags] = (ast_node *)call;
    return E->ndiags++;
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

static int dense_index(prog *p, const ast_node *call, long n, bool inverse)
{
    char full[8192];
    const char *path = spec_file_path(p->spec, call->kids[0]->text, full, sizeof full);
    for (int i = 0; i < E->ndense; i++)
        if (!strcmp(E->dense_path[i], path) && E->dense_n[i] == n) {
            E->dense_inv[i] = E->dense_inv[i] || inverse;
            return i;
        }
    if (E->ndense == 16) {
        diag_error(p->diag, call->loc, "code generation supports at most 16 matrix files per spec");
        return -1;
    }
    E->dense[E->ndense] = call;
    E->dense_path[E->ndense] = strdup(path);
    E->dense_n[E->ndense] = n;
    E->dense_inv[E->ndense] = inverse;
    return E->ndense++;
}

/* An operator call (optionally transposed, optionally inverted) applied
 * to z. */
static int lower_op(prog *p, const ast_node *n, bool tr, bool inverse, int z, const ast_node *site)
{
    ival v = { .kind = V_OP, .rows = p->v[z].rows, .cols = p->v[z].cols, .a = z, .b = -1, .what = "operator" };
    if (p->v[z].kind == V_CONST) {
        diag_error(p->diag, site->loc, "code generation does not support an operator applied to a constant");
        p->failed = true;
    }
    const char *name = n->name;
    if (!strcmp(name, "identity"))
        v.op = OP_ID;
    else if (!strcmp(name, "diff"))
        v.op = inverse ? (tr ? OP_CUMSUM_T : OP_CUMSUM) : (tr ? OP_DIFF_T : OP_DIFF);
    else if (!strcmp(name, "dct") || !strcmp(name, "cosine")) {
        v.op = (inverse != tr) ? OP_DCT_T : OP_DCT;
        if (E->ndct < 16)
            E->dct_sizes[E->ndct++] = n->shape.rows;
    } else if (!strcmp(name, "diag")) {
        v.op = inverse ? OP_DIAG_INV : OP_DIAG;
        v.diag_id = diag_index(n);
    } else if (!strcmp(name, "matrix") && n->nkids == 1 && n->kids[0]->kind == AST_STR &&
               (n->shape.rows < 0 || (n->shape.rows == v.rows && n->shape.cols == v.rows))) {
        /* a square operator of the operand's size; the trainer checks the
         * file's shape when it loads it */
        v.op = inverse ? (tr ? OP_DENSE_INV_T : OP_DENSE_INV) : (tr ? OP_DENSE_T : OP_DENSE);
        v.diag_id = dense_index(p, n, v.rows, inverse);
    } else {
        if (!strcmp(name, "matrix"))
            diag_error(p->diag, site->loc, "code generation supports 'matrix' only as a square operator of the size "
                                           "of the vector it applies to");
        else
            diag_error(p->diag, site->loc, "code generation does not support the operator '%s' here (it is not "
                                           "square)", name);
        p->failed = true;
    }
    if (v.diag_id < 0)
        p->failed = true;
    return iv_add(p, v);
}

static bool is_operator_expr(const ast_node *n)
{
    if (n->kind == AST_TRANSPOSE)
        return is_operator_expr(n->lhs);
    if (n->kind == AST_BINOP && n->op == '@')
        return is_operator_expr(n->lhs) && is_operator_expr(n->rhs);
    return is_operator_call(n);
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
    if (n->kind == AST_CALL && !strcmp(n->name, "transpose") && n->nkids == 1)
        return n->kids[0];
    return NULL;
}

/* A matrix transpose (postfix ' or transpose()) that a product can fuse. */
static bool is_transpose(const ast_node *n)
{
    const ast_node *in = transposed(n);
    return in && in->shape.rank == 2 && !in->is_const && !n->is_const;
}

static int lower(prog *p, const ast_node *n)
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
        if (n->op == '@' && is_operator_expr(n->lhs))
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
        const char *f = n->name;
        if (!strcmp(f, "solve"))
            return lower_opexpr(p, n->kids[0], false, true, lower(p, n->kids[1]), n);
        if (!strcmp(f, "cumsum")) {
            ival o = { .kind = V_OP, .rows = r, .cols = c, .op = OP_CUMSUM, .b = -1 };
            o.a = lower(p, n->kids[0]);
            if (p->v[o.a].kind == V_CONST) {
                diag_error(p->diag, n->loc, "code generation does not support cumsum of a constant");
                p->failed = true;
            }
            return iv_add(p, o);
        }
        v.a = lower(p, n->kids[0]);
        if (!strcmp(f, "relu") || !strcmp(f, "tanh") || !strcmp(f, "sigmoid") || !strcmp(f, "exp")) {
            v.kind = V_MAP;
            v.fn = f;
        } else if (!strcmp(f, "softmax")) {
            v.kind = V_SOFTMAX;
            if (n->kids[0]->shape.rank == 1) {   /* a vector is one row */
                v.rows = 1;
                v.cols = r;
            }
        } else if (!strcmp(f, "sum")) {
            v.kind = V_SUM;
        } else if (!strcmp(f, "transpose")) {
            v.kind = V_TRANS;
        } else {
            diag_error(p->diag, n->loc, "code generation does not support '%s' here", f);
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

static bool prog_build(prog *p, const ibc_spec *spec, const ast_node *expr, long bmax, ibc_diag *diag)
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
                    .b = -1, .what = "output" };
        p->root = iv_add(p, id);
    }
    p->started = calloc((size_t)p->n + 1, sizeof(bool));
    return !p->failed;
}

static void prog_free(prog *p)
{
    free(p->v);
    free(p->started);
    free(p->param_off);
    free(p->input_off);
}

/* ------------------------------------------------------------- emission */

#define OUT(...) fprintf(E->out, __VA_ARGS__)

/* out = A in for one column of n entries (a fixed operator, O(n) where
 * its structure allows). */
static void emit_op_apply(opkind op, long n, int diag_id, const char *in, const char *out)
{
    switch (op) {
    case OP_ID: OUT("            memcpy(%s, %s, sizeof(double) * %ld);\n", out, in, n); break;
    case OP_DIFF: OUT("            ibrt_op_diff(%ld, %s, %s);\n", n, in, out); break;
    case OP_DIFF_T: OUT("            ibrt_op_diff_T(%ld, %s, %s);\n", n, in, out); break;
    case OP_CUMSUM: OUT("            ibrt_op_cumsum(%ld, %s, %s);\n", n, in, out); break;
    case OP_CUMSUM_T: OUT("            ibrt_op_cumsum_T(%ld, %s, %s);\n", n, in, out); break;
    case OP_DCT:
    case OP_DCT_T:
        OUT("            cblas_dgemv(CblasRowMajor, %s, %ld, %ld, 1.0, dct_%ld, %ld, %s, 1, 0.0, %s, 1);\n",
            op == OP_DCT ? "CblasNoTrans" : "CblasTrans", n, n, n, n, in, out);
        break;
    case OP_DIAG:
    case OP_DIAG_INV:
        OUT("            for (long r = 0; r < %ld; r++)\n                %s[r] = %s[r] %c diag_%d[r];\n", n, out, in,
            op == OP_DIAG ? '*' : '/', diag_id);
        break;
    case OP_DENSE:
    case OP_DENSE_T:
    case OP_DENSE_INV:
    case OP_DENSE_INV_T:
        OUT("            cblas_dgemv(CblasRowMajor, %s, %ld, %ld, 1.0, %s_%d, %ld, %s, 1, 0.0, %s, 1);\n",
            op == OP_DENSE || op == OP_DENSE_INV ? "CblasNoTrans" : "CblasTrans", n, n,
            op == OP_DENSE || op == OP_DENSE_T ? "dense" : "dense_inv", diag_id, n, in, out);
        break;
    }
}

/* Element idx of value i in sample s (forward), or of its adjoint.  Inputs
 * are x[s * IN + ...]; a batched tape value has one block per sample, a
 * value of the parameters alone is computed once per batch (hoisted). */
static const char *ref(const prog *p, int i, const char *idx, char *buf)
{
    const ival *v = &p->v[i];
    switch (v->kind) {
    case V_PARAM: sprintf(buf, "th[%ld + %s]", v->off, idx); break;
    case V_INPUT: sprintf(buf, "x[s * IN + %ld + %s]", v->off, idx); break;
    case V_CONST: sprintf(buf, "%.17g", v->c); break;
    default:
        if (v->batched)
            sprintf(buf, "tp[%ld + s * %ld + %s]", v->off, v->rows * v->cols, idx);
        else
            sprintf(buf, "tp[%ld + %s]", v->off, idx);
        break;
    }
    return buf;
}

static const char *adj(const prog *p, int i, const char *idx, char *buf)
{
    const ival *v = &p->v[i];
    switch (v->kind) {
    case V_PARAM: sprintf(buf, "g[%ld + %s]", v->off, idx); return buf;
    case V_INPUT:
    case V_CONST: return NULL;
    default:
        if (v->batched)
            sprintf(buf, "ad[%ld + s * %ld + %s]", v->off, v->rows * v->cols, idx);
        else
            sprintf(buf, "ad[%ld + %s]", v->off, idx);
        return buf;
    }
}

/* The block of value i (or of its adjoint) for sample expression s. */
static const char *ptr(const prog *p, int i, bool adjoint, const char *s, char *buf)
{
    const ival *v = &p->v[i];
    if (v->kind == V_PARAM)
        sprintf(buf, "%s + %ld", adjoint ? "g" : "th", v->off);
    else if (v->kind == V_INPUT)
        sprintf(buf, "x + (%s) * IN + %ld", s, v->off);
    else if (v->batched)
        sprintf(buf, "%s + %ld + (%s) * %ld", adjoint ? "ad" : "tp", v->off, s, v->rows * v->cols);
    else
        sprintf(buf, "%s + %ld", adjoint ? "ad" : "tp", v->off);
    return buf;
}

/* Distance between the blocks of consecutive samples of a batched value. */
static const char *stride(const prog *p, int i, char *buf)
{
    const ival *v = &p->v[i];
    if (v->kind == V_INPUT)
        strcpy(buf, "IN");
    else
        sprintf(buf, "%ld", v->rows * v->cols);
    return buf;
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
        OUT("    memset(ad + %ld, 0, sizeof(double) * %ld * (size_t)nb);\n", v->off, v->rows * v->cols);
    else
        OUT("    memset(ad + %ld, 0, sizeof(double) * %ld);\n", v->off, v->rows * v->cols);
    return false;
}

static void s_open(const ival *v)
{
    OUT(v->batched ? "    for (long s = 0; s < nb; s++) {\n" : "    {\n");
}

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
 * attention spec: 8 x 8 x 8 blocks cost ~0.5 us each through OpenBLAS). */
enum { MM_SMALL = 1024 };

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

static void emit_forward_value(const prog *p, int i)
{
    const ival *v = &p->v[i];
    char b1[128], b2[128], b3[128], b4[128];
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
        OUT("    /* v%d = v%d%s @ v%d%s: (%ld x %ld) @ (%ld x %ld)%s */\n", i, v->a, v->ta ? "'" : "", v->b, v->tb ? "'" : "",
            m, k, k, nn, v->batched ? " per sample" : "");
        mm_plan plan = mm_plan_of(p, v, m, k, nn);
        const char *fn = (plan == MM_EACH || plan == MM_STATIC) && m * k * nn <= MM_SMALL ? "mm_small" : "mm";
        switch (plan) {
        case MM_STATIC:
            OUT("    %s(%d, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, 0.0, %s, %ld);\n", fn, v->ta, v->tb, m, nn, k,
                ptr(p, v->a, false, "0", b1), lda, ptr(p, v->b, false, "0", b2), ldb, ptr(p, i, false, "0", b3), nn);
            break;
        case MM_STACK_A:
            OUT("    mm(0, %d, nb * %ld, %ld, %ld, %s, %s, %s, %ld, 0.0, %s, %ld);\n", v->tb, m, nn, k,
                ptr(p, v->a, false, "0", b1), m == 1 ? stride(p, v->a, b4) : (sprintf(b4, "%ld", k), b4),
                ptr(p, v->b, false, "0", b2), ldb, ptr(p, i, false, "0", b3), nn);
            break;
        case MM_STACK_B:
            OUT("    mm(0, %d, nb, %ld, %ld, %s, %s, %s, %ld, 0.0, %s, %ld);\n", !v->ta, m, k,
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
        OUT("    /* v%d = v%d %c v%d (elementwise) */\n", i, v->a, op, v->b);
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s %c %s;\n    }\n", n, ref(p, i, "e", b1),
            ref(p, v->a, "e", b2), op, ref(p, v->b, "e", b3));
        return;
    }
    case V_SCALE:
    case V_DIV:
        OUT("    /* v%d = v%d %s v%d (scalar) */\n", i, v->kind == V_SCALE ? v->b : v->a, v->kind == V_SCALE ? "*" : "/",
            v->kind == V_SCALE ? v->a : v->b);
        s_open(v);
        if (v->kind == V_SCALE)
            OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s * %s;\n    }\n", n, ref(p, i, "e", b1),
                ref(p, v->a, "0", b2), ref(p, v->b, "e", b3));
        else
            OUT("        for (long e = 0; e < %ld; e++)\n            %s = %s / %s;\n    }\n", n, ref(p, i, "e", b1),
                ref(p, v->a, "e", b2), ref(p, v->b, "0", b3));
        return;
    case V_NEG:
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = -%s;\n    }\n", n, ref(p, i, "e", b1),
            ref(p, v->a, "e", b2));
        return;
    case V_TRANS:
        OUT("    /* v%d = v%d' */\n", i, v->a);
        s_open(v);
        OUT("        for (long r = 0; r < %ld; r++)\n            for (long c = 0; c < %ld; c++)\n", v->rows, v->cols);
        OUT("                %s = %s;\n    }\n", ref(p, i, (sprintf(b3, "r * %ld + c", v->cols), b3), b1),
            ref(p, v->a, (sprintf(b4, "c * %ld + r", v->rows), b4), b2));
        return;
    case V_MAP: {
        const char *f = !strcmp(v->fn, "relu") ? "(%s > 0 ? %s : 0)"
                        : !strcmp(v->fn, "tanh") ? "tanh(%s)%.0s"
                        : !strcmp(v->fn, "sigmoid") ? "1 / (1 + exp(-%s))%.0s"
                                                    : "exp(%s)%.0s";
        OUT("    /* v%d = %s(v%d) */\n", i, v->fn, v->a);
        s_open(v);
        OUT("        for (long e = 0; e < %ld; e++)\n            %s = ", n, ref(p, i, "e", b1));
        OUT(f, ref(p, v->a, "e", b2), b2);
        OUT(";\n    }\n");
        return;
    }
    case V_SOFTMAX:
        OUT("    /* v%d = softmax of each row of v%d (max subtracted for stability) */\n", i, v->a);
        s_open(v);
        OUT("        for (long r = 0; r < %ld; r++) {\n            double mx = -INFINITY, sum = 0;\n", v->rows);
        sprintf(b3, "r * %ld + c", v->cols);
        OUT("            for (long c = 0; c < %ld; c++)\n                mx = fmax(mx, %s);\n", v->cols, ref(p, v->a, b3, b2));
        OUT("            for (long c = 0; c < %ld; c++)\n                sum += (%s = exp(%s - mx));\n", v->cols,
            ref(p, i, b3, b1), ref(p, v->a, b3, b2));
        OUT("            for (long c = 0; c < %ld; c++)\n                %s /= sum;\n        }\n    }\n", v->cols,
            ref(p, i, b3, b1));
        return;
    case V_SUM:
        OUT("    /* v%d = sum(v%d) */\n", i, v->a);
        s_open(v);
        OUT("        double sum = 0;\n        for (long e = 0; e < %ld; e++)\n            sum += %s;\n",
            p->v[v->a].rows * p->v[v->a].cols, ref(p, v->a, "e", b2));
        OUT("        %s = sum;\n    }\n", ref(p, i, "0", b1));
        return;
    case V_OP: {
        static const char *const names[] = { "identity", "diff", "diff'", "cumsum (diff^-1)", "reverse cumsum",
                                             "DCT", "DCT'", "diag", "diag^-1", "matrix", "matrix'", "matrix^-1",
                                             "matrix^-T" };
        OUT("    /* v%d = %s applied to each column of v%d */\n", i, names[v->op], v->a);
        s_open(v);
        if (v->cols == 1) {   /* a vector: in place of the tape, no copies */
            char pin[160], pout[160];
            snprintf(pin, sizeof pin, "(%s)", ptr(p, v->a, false, "s", b2));
            snprintf(pout, sizeof pout, "(%s)", ptr(p, i, false, "s", b1));
            emit_op_apply(v->op, v->rows, v->diag_id, pin, pout);
            OUT("    }\n");
            return;
        }
        OUT("        for (long j = 0; j < %ld; j++) {\n", v->cols);
        OUT("            double cin[%ld], cout[%ld];\n", v->rows, v->rows);
        OUT("            for (long r = 0; r < %ld; r++)\n                cin[r] = %s;\n", v->rows,
            ref(p, v->a, (sprintf(b3, "r * %ld + j", v->cols), b3), b2));
        emit_op_apply(v->op, v->rows, v->diag_id, "cin", "cout");
        OUT("            for (long r = 0; r < %ld; r++)\n                %s = cout[r];\n        }\n    }\n", v->rows,
            ref(p, i, b3, b1));
        return;
    }
    }
}

/* Reverse mode: adjoint of each operation, in reverse tape order. */
static void emit_backward_value(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = v->a >= 0 ? &p->v[v->a] : NULL, *B = v->b >= 0 ? &p->v[v->b] : NULL;
    char b1[128], b2[128], b3[128], b4[128], b5[64];
    long n = v->rows * v->cols;
    const char *aa, *ab;
    bool f;
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
        OUT("    /* d(v%d%s @ v%d%s): dA = dC op(B)', dB = op(A)' dC */\n", v->a, v->ta ? "'" : "", v->b, v->tb ? "'" : "");
        const char *sv = plan == MM_EACH ? "s" : "0";
        const char *loop = plan == MM_EACH ? "    for (long s = 0; s < nb; s++)\n    " : "";
        const char *fn = (plan == MM_EACH || plan == MM_STATIC) && m * k * nn <= MM_SMALL ? "mm_small" : "mm";
        if (adj(p, v->a, "0", b1)) {
            f = adj_first(p, v->a, plan != MM_EACH || A->batched);
            const char *beta = f ? "0.0" : "1.0";
            if (plan == MM_STACK_A) {
                char lds[32];
                if (m == 1)
                    stride(p, v->a, lds);
                else
                    sprintf(lds, "%ld", k);
                OUT("    mm(0, %d, nb * %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %s);\n", !v->tb, m, k, nn,
                    ptr(p, i, true, "0", b2), nn, ptr(p, v->b, false, "0", b3), ldb, beta, ptr(p, v->a, true, "0", b4), lds);
            } else if (plan == MM_STACK_B) {
                if (!v->ta)
                    OUT("    mm(1, 0, %ld, %ld, nb, %s, %ld, %s, %s, %s, %s, %ld);\n", m, k, ptr(p, i, true, "0", b2), m,
                        ptr(p, v->b, false, "0", b3), stride(p, v->b, b5), beta, ptr(p, v->a, true, "0", b4), k);
                else
                    OUT("    mm(1, 0, %ld, %ld, nb, %s, %s, %s, %ld, %s, %s, %ld);\n", k, m, ptr(p, v->b, false, "0", b3),
                        stride(p, v->b, b5), ptr(p, i, true, "0", b2), m, beta, ptr(p, v->a, true, "0", b4), m);
            } else if (!v->ta) {
                OUT("%s    %s(0, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, fn, !v->tb, m, k, nn,
                    ptr(p, i, true, sv, b2), nn, ptr(p, v->b, false, sv, b3), ldb, beta, ptr(p, v->a, true, sv, b4), k);
            } else {
                OUT("%s    %s(%d, 1, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, fn, v->tb, k, m, nn,
                    ptr(p, v->b, false, sv, b3), ldb, ptr(p, i, true, sv, b2), nn, beta, ptr(p, v->a, true, sv, b4), m);
            }
        }
        if (adj(p, v->b, "0", b1)) {
            f = adj_first(p, v->b, plan != MM_EACH || B->batched);
            const char *beta = f ? "0.0" : "1.0";
            if (plan == MM_STACK_A) {
                char lds[32];
                if (m == 1)
                    stride(p, v->a, lds);
                else
                    sprintf(lds, "%ld", k);
                if (!v->tb)
                    OUT("    mm(1, 0, %ld, %ld, nb * %ld, %s, %s, %s, %ld, %s, %s, %ld);\n", k, nn, m,
                        ptr(p, v->a, false, "0", b3), lds, ptr(p, i, true, "0", b2), nn, beta, ptr(p, v->b, true, "0", b4), nn);
                else
                    OUT("    mm(1, 0, %ld, %ld, nb * %ld, %s, %ld, %s, %s, %s, %s, %ld);\n", nn, k, m,
                        ptr(p, i, true, "0", b2), nn, ptr(p, v->a, false, "0", b3), lds, beta, ptr(p, v->b, true, "0", b4), k);
            } else if (plan == MM_STACK_B) {
                OUT("    mm(0, %d, nb, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %s);\n", v->ta, k, m, ptr(p, i, true, "0", b2), m,
                    ptr(p, v->a, false, "0", b3), lda, beta, ptr(p, v->b, true, "0", b4), stride(p, v->b, b5));
            } else if (!v->tb) {
                OUT("%s    %s(%d, 0, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, fn, !v->ta, k, nn, m,
                    ptr(p, v->a, false, sv, b3), lda, ptr(p, i, true, sv, b2), nn, beta, ptr(p, v->b, true, sv, b4), nn);
            } else {
                OUT("%s    %s(1, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, fn, v->ta, nn, k, m,
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
        if ((aa = adj(p, v->a, (sprintf(b3, "c * %ld + r", v->rows), b3), b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long r = 0; r < %ld; r++)\n            for (long c = 0; c < %ld; c++)\n", v->rows, v->cols);
            OUT("                %s %s %s;\n    }\n", aa, f ? "=" : "+=", adj(p, i, (sprintf(b4, "r * %ld + c", v->cols), b4), b2));
        }
        return;
    case V_MAP:
        if ((aa = adj(p, v->a, "e", b1))) {
            const char *d = !strcmp(v->fn, "relu") ? "(%s > 0)"
                            : !strcmp(v->fn, "tanh") ? "(1 - %s * %s)"
                            : !strcmp(v->fn, "sigmoid") ? "%s * (1 - %s)"
                                                        : "%s%.0s";
            f = adj_first(p, v->a, A->batched == v->batched);
            OUT("    /* d %s */\n", v->fn);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s * ", n, aa, f ? "=" : "+=", adj(p, i, "e", b2));
            if (!strcmp(v->fn, "relu"))
                OUT(d, ref(p, v->a, "e", b3));
            else
                OUT(d, ref(p, i, "e", b3), b3);
            OUT(";\n    }\n");
        }
        return;
    case V_SOFTMAX:
        sprintf(b5, "r * %ld + c", v->cols);
        if ((aa = adj(p, v->a, b5, b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            OUT("    /* d softmax: da = y * (dy - sum_c dy_c y_c), row by row */\n");
            s_open(v);
            OUT("        for (long r = 0; r < %ld; r++) {\n            double sum = 0;\n", v->rows);
            OUT("            for (long c = 0; c < %ld; c++)\n                sum += %s * %s;\n", v->cols, adj(p, i, b5, b2),
                ref(p, i, b5, b3));
            OUT("            for (long c = 0; c < %ld; c++)\n                %s %s %s * (%s - sum);\n        }\n    }\n", v->cols, aa,
                f ? "=" : "+=", ref(p, i, b5, b3), adj(p, i, b5, b2));
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
        sprintf(b5, "r * %ld + j", v->cols);
        if (!(aa = adj(p, v->a, b5, b1)))
            return;
        /* the adjoint of y = A x is dx += A' dy */
        static const opkind transpose_of[] = { OP_ID, OP_DIFF_T, OP_DIFF, OP_CUMSUM_T, OP_CUMSUM, OP_DCT_T, OP_DCT,
                                               OP_DIAG, OP_DIAG_INV, OP_DENSE_T, OP_DENSE, OP_DENSE_INV_T,
                                               OP_DENSE_INV };
        f = adj_first(p, v->a, A->batched == v->batched);
        OUT("    /* d operator: dx += A' dy */\n");
        s_open(v);
        if (v->cols == 1 && f) {   /* first contribution to a vector: straight into its adjoint */
            char pin[160], pout[160];
            snprintf(pin, sizeof pin, "(%s)", ptr(p, i, true, "s", b2));
            snprintf(pout, sizeof pout, "(%s)", ptr(p, v->a, true, "s", b3));
            emit_op_apply(transpose_of[v->op], v->rows, v->diag_id, pin, pout);
            OUT("    }\n");
            return;
        }
        OUT("        for (long j = 0; j < %ld; j++) {\n", v->cols);
        OUT("            double cin[%ld], cout[%ld];\n", v->rows, v->rows);
        OUT("            for (long r = 0; r < %ld; r++)\n                cin[r] = %s;\n", v->rows, adj(p, i, b5, b2));
        emit_op_apply(transpose_of[v->op], v->rows, v->diag_id, "cin", "cout");
        OUT("            for (long r = 0; r < %ld; r++)\n                %s %s cout[r];\n        }\n    }\n", v->rows, aa,
            f ? "=" : "+=");
        return;
    }
    }
}

static void emit_prog_functions(const prog *p, const char *pre, bool backward)
{
    OUT("/* %s: forward pass over a batch of nb samples (th: parameters, x: the\n"
        " * samples' inputs, IN per sample, tp: tape) */\n", pre);
    OUT("static void %s_forward(const double *restrict th, const double *restrict x, long nb, double *restrict tp)\n{\n",
        pre);
    OUT("    (void)th;\n    (void)x;\n    (void)nb;\n    (void)tp;\n");
    for (int i = 0; i < p->n; i++)
        emit_forward_value(p, i);
    OUT("}\n\n");
    if (!backward)
        return;
    OUT("/* %s: reverse pass; ad[] holds the adjoint of the output at its tape\n"
        " * slot on entry; parameter gradients are added to g. */\n", pre);
    OUT("static void %s_backward(const double *restrict th, const double *restrict x, long nb, const double *restrict tp,\n"
        "                        double *restrict ad, double *restrict g)\n{\n", pre);
    OUT("    (void)th;\n    (void)x;\n    (void)nb;\n    (void)tp;\n    (void)ad;\n    (void)g;\n");
    memset(p->started, 0, (size_t)p->n * sizeof(bool));
    p->started[p->root] = true;
    for (int i = p->n - 1; i >= 0; i--)
        emit_backward_value(p, i);
    OUT("}\n\n");
}

/* C expression of an initialisation (a distribution times a factor). */
static void emit_init_expr(const ast_node *n, const char *rng)
{
    switch (n->kind) {
    case AST_NUM: OUT("%.17g", n->value); return;
    case AST_IDENT: OUT("%.17g", n->value); return;
    case AST_NEG: OUT("(-"); emit_init_expr(n->lhs, rng); OUT(")"); return;
    case AST_BINOP:
        OUT("(");
        emit_init_expr(n->lhs, rng);
        OUT(" %c ", n->op == '@' ? '*' : n->op);
        emit_init_expr(n->rhs, rng);
        OUT(")");
        return;
    case AST_CALL:
        if (!strcmp(n->name, "normal")) {
            OUT("(%.17g + %.17g * ibrt_rng_normal(%s))", n->kids[0]->value, n->kids[1]->value, rng);
        } else if (!strcmp(n->name, "uniform")) {
            OUT("(%.17g + %.17g * ibrt_rng_uniform(%s))", n->kids[0]->value, n->kids[1]->value - n->kids[0]->value, rng);
        } else if (!strcmp(n->name, "constant")) {
            OUT("%.17g", n->kids[0]->value);
        } else if (!strcmp(n->name, "zeros")) {
            OUT("0.0");
        } else if (!strcmp(n->name, "abs") || !strcmp(n->name, "sqrt")) {
            OUT("%s(", !strcmp(n->name, "abs") ? "fabs" : "sqrt");
            emit_init_expr(n->kids[0], rng);
            OUT(")");
        } else {
            OUT("0.0");
        }
        return;
    default:
        OUT("%.17g", n->value);
    }
}

/* A distribution call inside an init expression; the rest is a factor
 * drawn once per parameter. */
static const ast_node *init_dist(const ast_node *n, const ast_node **factor)
{
    *factor = NULL;
    if (n->kind == AST_CALL)
        return n;
    if (n->lhs->kind == AST_CALL && strcmp(n->lhs->name, "abs") && strcmp(n->lhs->name, "sqrt")) {
        *factor = n->rhs;
        return n->lhs;
    }
    *factor = n->lhs;
    return n->rhs;
}

static void emit_init_param(const ibc_var *v, const ast_node *init, long off, const char *th, const char *rng)
{
    long size = v->shape.rows * v->shape.cols;
    OUT("    /* %s ~ ", v->decl ? "parameter" : "parameter");
    OUT("*/\n    {\n        double f = ");
    const ast_node *factor = NULL, *dist = init ? init_dist(init, &factor) : NULL;
    if (factor)
        emit_init_expr(factor, rng);
    else
        OUT("1.0");
    OUT(";\n        for (int e = 0; e < %ld; e++)\n            %s[%ld + e] = f * ", size, th, off);
    if (dist)
        emit_init_expr(dist, rng);
    else
        OUT("(0.1 * ibrt_rng_normal(%s)) /* default: normal(0, 0.1) */", rng);
    OUT(";\n    }\n");
}

/* A C literal for any double: NAN and INFINITY (math.h) where %.17g
 * would print "nan" or "inf", which are not C. */
static const char *c_double(double v, char buf[40])
{
    if (isnan(v))
        strcpy(buf, "NAN");
    else if (isinf(v))
        strcpy(buf, v > 0 ? "INFINITY" : "-INFINITY");
    else
        snprintf(buf, 40, "%.17g", v);
    return buf;
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

/* Text from the spec inside a C comment: no comment delimiters, no
 * trigraphs (-std=c11 enables them), no control characters. */
static void emit_comment_text(const char *s)
{
    char prev = 0;
    for (; *s; s++) {
        char c = *s;
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
            c = ' ';
        if ((prev == '*' && c == '/') || (prev == '/' && c == '*') || (prev == '?' && c == '?'))
            c = ' ';   /* no comment delimiters, no trigraphs */
        fputc(c, E->out);
        prev = c;
    }
}

/* ------------------------------------------------------------ the model */

typedef struct {
    const char *name;        /* "designed", "vanilla", "l1", or "model" */
    const ibc_spec *spec;
    const sym_derivation *deriv;
    prog p;
    double lr;
    double l1;               /* weight, 0: none */
    long l1_off, l1_size;    /* the penalised parameter */
    const ast_node *replacement;   /* designed: w(factors) */
    prog rp;                 /* its program */
    prog ap;                 /* A applied to it: must give the factors' product */
    bool unbalance;
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
    default:
        OUT("            for (long e = %ld; e < %ld; e++) { %s }\n", off, off + R * C, body);
        break;
    }
}

/* Balance quantities of every 2-block family at the current parameters:
 * chi = 1/2 (alpha_0 n_0 + alpha_1 n_1) and ratio = ||block 0|| / ||block 1||
 * per index, summarised as median |chi| and median/min/max ratio. */
static void emit_balance_function(const model *m, const char *pre)
{
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    OUT("/* %s: per family f and index i, chi[f][i] and ratio[f][i] */\n", pre);
    OUT("static void %s_balance(const double *th, double *chi, double *ratio, double *n0o, double *n1o)\n{\n"
        "    (void)th;\n    (void)chi;\n    (void)ratio;\n    (void)n0o;\n    (void)n1o;\n", pre);
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

/* Structural checks of the derivation on the numbers (issue: verification
 * 1): for every family and index, (a) the predictor is unchanged by
 * exp(t xi) for random t, (b) the gradient of chi_a is xi_a (central
 * differences), (c) log det of the Gram matrix assembled from the explicit
 * generator vectors (Cholesky, LAPACKE) equals the exact Cauchy-Binet
 * polynomial of the derivation.  IBC_FAULT (a test hook, see
 * tests/e2e.sh) emits a deliberately wrong derivation so that the checks
 * are seen to fail: "alpha" flips an exponent, "coef" changes a
 * Cauchy-Binet coefficient. */
static void emit_structure_function(const model *m, const char *pre, const ibc_verify *ver)
{
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    const char *fault = getenv("IBC_FAULT");
    bool fault_alpha = fault && !strcmp(fault, "alpha"), fault_coef = fault && !strcmp(fault, "coef");
    OUT("/* %s: structural checks of the derivation at the current parameters */\n", pre);
    OUT("static void %s_structure(const double *x, ibrt_rng *r, ibrt_checks *c, const char *when)\n{\n", pre);
    OUT("    static double th2[%ld], y0[OUT];\n    char name[96];\n    (void)name;\n    (void)x;\n    (void)r;\n    (void)c;\n    (void)when;\n    (void)th2;\n    (void)y0;\n",
        m->p.nth + 1);
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
        OUT("            for (int a = 0; a < %d; a++)\n                t[a] = ibrt_rng_uniform(r) - 0.5;\n", fam->k);
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
        OUT("        ibrt_checks_add(c, name, dy / fmax(ys, 1e-300), 0, %.3g, dy <= %.3g * fmax(ys, 1e-300), "
            "\"max |f(exp(t xi) theta) - f(theta)| / max |f|, t ~ U(-1/2, 1/2)\");\n",
            ver->invariance_tol, ver->invariance_tol);
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
        OUT("        ibrt_checks_add(c, name, gworst, 0, %.3g, gworst <= %.3g, \"central differences of chi_a vs alpha_p theta_p\");\n",
            ver->gradient_tol, ver->gradient_tol);
        OUT("        snprintf(name, sizeof name, \"log det G, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(c, name, lworst, 0, %.3g, lworst <= %.3g, \"Cholesky of <xi_a, xi_b> vs exact "
            "Cauchy-Binet, relative in log space\");\n    }\n",
            ver->logdet_tol, ver->logdet_tol);
    }
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
        OUT("    /* unbalance along family %zu: t_i = linspace(%g, %g, %ld) */\n", f + 1, from, to, fam->count);
        OUT("    for (long i = 0; i < %ld; i++) {\n", fam->count);
        OUT("        double t = %.17g + (%.17g) * (double)i / %ld.0;\n        {\n", from, to - from,
            fam->count > 1 ? fam->count - 1 : 1);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[96];
            snprintf(body, sizeof body, "m0_th[e] *= exp(%ld * t);", fam->alpha[0][b]);
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
        OUT("%s%.17g", i ? ", " : " ", list->kids[i]->value);
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
    OUT(" */\n#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    OUT("#include <cblas.h>\n#include <lapacke.h>\n\n#include \"ibrt.h\"\n#include \"ibrt_data.h\"\n#include \"ibrt_io.h\"\n#include \"ibrt_mat.h\"\n\n");
}

static data_kind data_of(const ibc_spec *spec)
{
    const char *g = spec->data->name;
    if (!strcmp(g, "teacher"))
        return D_TEACHER;
    if (!strcmp(g, "noisy_target"))
        return D_TARGET;
    if (!strcmp(g, "low_rank"))
        return D_LOWRANK;
    return D_FIXED;
}

static void emit_data_setup(const ibc_spec *spec)
{
    const ast_node *d = spec->data;
    const char *g = d->name;
    OUT("    /* data: ");
    emit_comment_text(g);
    OUT(" */\n");
    if (!strcmp(g, "cosine_spikes") || !strcmp(g, "sparse_regression")) {
        OUT("    st = ibrt_gen_%s(ds, &rd, %ld, %ld, %ld, %ld, %.17g, &err);\n", g,
            (long)kwnum(d, !strcmp(g, "cosine_spikes") ? "modes" : "features", 0), (long)kwnum(d, "train", 0),
            (long)kwnum(d, "test", 0), (long)kwnum(d, "nonzeros", 0), kwnum(d, "noise", 0));
    } else if (!strcmp(g, "piecewise_signal")) {
        emit_list_array("levels", kwarg(d, "levels"));
        emit_list_array("lengths", kwarg(d, "lengths"));
        OUT("    st = ibrt_gen_piecewise_signal(ds, &rd, %ld, %ld, levels, lengths, %zu, %.17g, &err);\n",
            (long)kwnum(d, "length", 0), (long)kwnum(d, "measurements", 0), kwarg(d, "levels")->nkids,
            kwnum(d, "noise", 0));
    } else if (!strcmp(g, "low_rank")) {
        emit_list_array("sv", kwarg(d, "singular_values"));
        OUT("    st = ibrt_gen_low_rank(ds, &rd, %ld, sv, %zu, %.17g, &err);\n", (long)kwnum(d, "size", 0),
            kwarg(d, "singular_values")->nkids, kwnum(d, "observed", 0));
    } else if (!strcmp(g, "csv") || !strcmp(g, "npy")) {
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
        OUT("    st = ibrt_gen_from_files(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, &err);\n");
    } else {
        OUT("    st = IBRT_OK;\n");
    }
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
        m->lr = spec->design.lr > 0 ? spec->design.lr : spec->train.lr;
        m->replacement = design->replacement;
        for (size_t b = 0; b < spec->nbaselines && nm < 8; b++) {
            model *bm = &models[nm++];
            bm->name = spec->baselines[b].kind == BASELINE_L1 ? "l1" : "vanilla";
            bm->spec = spec;
            bm->deriv = derivation;
            bm->lr = spec->baselines[b].lr > 0 ? spec->baselines[b].lr : spec->train.lr;
            bm->l1 = spec->baselines[b].kind == BASELINE_L1 ? spec->baselines[b].weight : 0;
        }
    } else {
        model *m = &models[nm++];
        m->name = "model";
        m->spec = spec;
        m->deriv = derivation;
        m->lr = spec->train.lr;
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
        ok = prog_build(&models[k].p, models[k].spec, models[k].spec->predict, bmax, diag) && ok;
        if (models[k].replacement) {
            ok = prog_build(&models[k].rp, models[k].spec, models[k].replacement, 1, diag) && ok;
            if (spec->design.kind == DESIGN_LOG_SPARSITY) {
                static ast_node aw;   /* A @ w(factors), for the parameterisation check */
                memset(&aw, 0, sizeof aw);
                aw.kind = AST_BINOP;
                aw.op = '@';
                aw.lhs = spec->design.op;
                aw.rhs = (ast_node *)models[k].replacement;
                aw.shape = models[k].replacement->shape;
                aw.loc = spec->design.decl->loc;
                ok = prog_build(&models[k].ap, models[k].spec, &aw, 1, diag) && ok;
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
        ok = prog_build(&teacher, spec, spec->predict, bmax, diag) && ok;
    if (!ok) {
        for (int k = 0; k < nm; k++) {
            prog_free(&models[k].p);
            prog_free(&models[k].rp);
        }
        prog_free(&teacher);
        return false;
    }

    long in_size = models[0].p.nx, out_size = spec->out_shape.rank == 0 ? 1 : spec->out_shape.rows *
                                                                                (spec->out_shape.rank == 2 ? spec->out_shape.cols : 1);
    long steps = spec->train.steps + spec->train.extend_steps;
    emit_header(spec, design, models, nm);

    OUT("enum { IN = %ld, OUT = %ld };   /* per-sample input and output sizes */\n\n", in_size ? in_size : 1, out_size);
    OUT("/* C = op(A) op(B) + beta C, row-major, C M x N, op(A) M x K, leading\n"
        " * dimensions as stored; BLAS gemv when one side is a single row or\n"
        " * column, gemm otherwise. */\n"
        "static inline void mm(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B, long ldb,\n"
        "                      double beta, double *C, long ldc)\n{\n"
        "    if (N == 1)\n"
        "        cblas_dgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, (int)(ta ? K : M), (int)(ta ? M : K), 1.0, A,\n"
        "                    (int)lda, B, (int)(tb ? 1 : ldb), beta, C, (int)ldc);\n"
        "    else if (M == 1)\n"
        "        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)(tb ? N : K), (int)(tb ? K : N), 1.0, B,\n"
        "                    (int)ldb, A, (int)(ta ? lda : 1), beta, C, 1);\n"
        "    else\n"
        "        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,\n"
        "                    (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);\n}\n\n");
    OUT("/* The same for products too small for a BLAS call to pay (per-sample\n"
        " * blocks of a few hundred multiply-adds): plain loops the C compiler\n"
        " * specialises for the constant sizes of each call site.  A row of C is\n"
        " * accumulated in a local array (no aliasing with the tape, so the j loop\n"
        " * vectorises) over a contiguous copy of op(B). */\n"
        "static inline void mm_small(int ta, int tb, long M, long N, long K, const double *A, long lda, const double *B,\n"
        "                            long ldb, double beta, double *C, long ldc)\n{\n"
        "    double bt[%d], acc[%d];\n"
        "    const double *b = B;\n"
        "    if (tb) {\n"
        "        for (long k = 0; k < K; k++)\n"
        "            for (long j = 0; j < N; j++)\n"
        "                bt[k * N + j] = B[j * ldb + k];\n"
        "        b = bt;\n"
        "        ldb = N;\n"
        "    }\n"
        "    for (long i = 0; i < M; i++) {\n"
        "        for (long j = 0; j < N; j++)\n"
        "            acc[j] = 0;\n"
        "        for (long k = 0; k < K; k++) {\n"
        "            double a = ta ? A[k * lda + i] : A[i * lda + k];\n"
        "            for (long j = 0; j < N; j++)\n"
        "                acc[j] += a * b[k * ldb + j];\n"
        "        }\n"
        "        double *c = C + i * ldc;\n"
        "        for (long j = 0; j < N; j++)\n"
        "            c[j] = (beta == 0 ? 0 : beta * c[j]) + acc[j];\n"
        "    }\n}\n\n", MM_SMALL, MM_SMALL);
    for (int i = 0; i < em.ndiags; i++) {
        const ast_node *l = em.diags[i]->kids[0];
        OUT("static const double diag_%d[%zu] = {", i, l->nkids);
        for (size_t j = 0; j < l->nkids; j++)
            OUT("%s%.17g", j ? ", " : " ", l->kids[j]->value);
        OUT(" };\n");
    }
    for (int i = 0; i < em.ndct; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen = seen || em.dct_sizes[j] == em.dct_sizes[i];
        if (!seen)
            OUT("static double dct_%ld[%ld * %ld];   /* orthonormal DCT-II, filled in main */\n", em.dct_sizes[i],
                em.dct_sizes[i], em.dct_sizes[i]);
    }
    for (int i = 0; i < em.ndense; i++) {
        OUT("static double dense_%d[%ld * %ld];   /* matrix(", i, em.dense_n[i], em.dense_n[i]);
        emit_comment_text(em.dense[i]->kids[0]->text);
        OUT("), read in main */\n");
        if (em.dense_inv[i])
            OUT("static double dense_inv_%d[%ld * %ld];   /* its inverse, from its LU factors */\n", i, em.dense_n[i],
                em.dense_n[i]);
    }
    OUT("\n");
    for (int k = 0; k < nm; k++) {
        model *m = &models[k];
        char pre[16];
        snprintf(pre, sizeof pre, "m%d", k);
        OUT("/* ---- model '%s': %ld parameters, tape of %ld values ---- */\n", m->name, m->p.nth, m->p.tape);
        OUT("static double %s_th[%ld], %s_g[%ld], %s_tp[%ld], %s_ad[%ld];\n", pre, m->p.nth, pre, m->p.nth, pre,
            m->p.tape + 1, pre, m->p.tape + 1);
        emit_prog_functions(&m->p, pre, true);
        emit_balance_function(m, pre);
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
        }
    }
    if (dk == D_TEACHER) {
        OUT("/* ---- the teacher: the same predictor with fixed weights ---- */\n");
        OUT("static double te_th[%ld], te_tp[%ld];\n", teacher.nth, teacher.tape + 1);
        emit_prog_functions(&teacher, "te", false);
    }

    /* Batch buffers. */
    OUT("enum { BMAX = %ld };   /* samples per step */\n", bmax);
    OUT("static double bx[BMAX * IN], by[BMAX * OUT];\n");
    if (dk == D_LOWRANK)
        OUT("static double bmask[OUT];   /* this step's observed entries */\n");
    OUT("\n");

    /* Training of one model. */
    OUT("/* SGD on one model; returns the final training loss. */\n");
    OUT("typedef struct {\n    void (*forward)(const double *restrict, const double *restrict, long, double *restrict);\n"
        "    void (*backward)(const double *restrict, const double *restrict, long, const double *restrict, double *restrict,"
        " double *restrict);\n    void (*balance)(const double *, double *, double *, double *, double *);\n"
        "    double *th, *g, *tp, *ad;\n    long nth, tape, root, nbal;\n    double lr, l1;\n    long l1_off, l1_size;\n"
        "    const char *name;\n    bool root_batched;   /* the output depends on the inputs */\n} model_t;\n\n");

    OUT("/* One minibatch: *X its inputs, *Y its labels (and bmask the mask);\n"
        " * returns its number of samples.  Nothing is allocated. */\n");
    OUT("static long draw_batch(const ibrt_dataset *ds, ibrt_rng *rb, const double **X, const double **Y)\n{\n"
        "    (void)ds;\n    (void)rb;\n    *X = bx;\n    *Y = by;\n");
    switch (dk) {
    case D_FIXED:
        if (batch == 0) {
            OUT("    /* full batch: the training set itself, no copy */\n    *X = ds->x_train;\n    *Y = ds->y_train;\n");
            OUT("    return (long)ds->n_train;\n");
        } else {
            OUT("    /* %ld samples drawn uniformly (with replacement) from the training set */\n", batch);
            OUT("    for (long b = 0; b < %ld; b++) {\n        size_t s = ibrt_rng_below(rb, ds->n_train);\n", batch);
            OUT("        memcpy(bx + b * IN, ds->x_train + s * IN, sizeof(double) * IN);\n");
            OUT("        memcpy(by + b * OUT, ds->y_train + s * OUT, sizeof(double) * OUT);\n    }\n    return %ld;\n", batch);
        }
        break;
    case D_TEACHER: {
        const ast_node *inp = kwarg(spec->data, "inputs");
        OUT("    /* fresh inputs ~ ");
        emit_comment_text(inp->name);
        OUT("; labels from the teacher plus N(0, noise^2) */\n");
        OUT("    for (long e = 0; e < BMAX * IN; e++)\n        bx[e] = ");
        emit_init_expr(inp, "rb");
        OUT(";\n    te_forward(te_th, bx, BMAX, te_tp);\n");
        OUT("    for (long s = 0; s < BMAX; s++)\n        for (long o = 0; o < OUT; o++)\n"
            "            by[s * OUT + o] = te_tp[%ld + %so] + %.17g * ibrt_rng_normal(rb);\n",
            teacher.v[teacher.root].off, teacher.v[teacher.root].batched ? "s * OUT + " : "", kwnum(spec->data, "noise", 0));
        OUT("    return BMAX;\n");
        break;
    }
    case D_TARGET:
        OUT("    /* labels value + N(0, noise^2), no inputs */\n    for (long b = 0; b < %ld; b++)\n", bmax);
        OUT("        by[b] = %.17g + %.17g * ibrt_rng_normal(rb);\n    return %ld;\n", kwnum(spec->data, "value", 0),
            kwnum(spec->data, "noise", 0), bmax);
        break;
    case D_LOWRANK:
        OUT("    /* each observed entry joins the minibatch with probability %g */\n", kwnum(spec->data, "batch_fraction", 1));
        OUT("    *Y = ds->y_train;\n    for (long e = 0; e < OUT; e++)\n");
        OUT("        bmask[e] = ds->mask[e] != 0 && ibrt_rng_uniform(rb) < %.17g ? 1.0 : 0.0;\n    return 1;\n",
            kwnum(spec->data, "batch_fraction", 1));
        break;
    }
    OUT("}\n\n");

    /* loss normalisation */
    bool masked = dk == D_LOWRANK && spec->loss_mask;
    OUT("/* Mean squared error over the n samples (and output entries%s); with\n"
        " * grad, its gradient into m->g.  The samples go through the tape in\n"
        " * chunks of at most BMAX: one chunk, unless a data file holds more\n"
        " * samples than the tape (full batch over a file). */\n", masked ? ", masked" : "");
    OUT("static double loss_and_grad(const model_t *m, const double *X, const double *Y, long n, bool grad)\n{\n");
    OUT("    double loss = 0, norm = (double)n * OUT;\n");
    if (masked && !spec->loss_normalise_all)
        OUT("    norm = 0;\n    for (long e = 0; e < OUT; e++)\n        norm += bmask[e];\n    if (norm == 0)\n        norm = 1;\n");
    OUT("    if (grad)\n        memset(m->g, 0, sizeof(double) * (size_t)m->nth);\n");
    OUT("    /* an output of the parameters alone is one value for every sample */\n");
    OUT("    const long os = m->root_batched ? OUT : 0;\n    double *dy = m->ad + m->root;\n");
    OUT("    for (long c0 = 0; c0 < n; c0 += BMAX) {\n        long nb = n - c0 < BMAX ? n - c0 : BMAX;\n"
        "        const double *x = X + c0 * IN, *y = Y + c0 * OUT;\n");
    OUT("        m->forward(m->th, x, nb, m->tp);\n");
    OUT("        if (grad && !m->root_batched)\n            memset(dy, 0, sizeof(double) * OUT);\n");
    OUT("        for (long s = 0; s < nb; s++)\n            for (long o = 0; o < OUT; o++) {\n"
        "                double r = (m->tp[m->root + s * os + o] - y[s * OUT + o])%s;\n", masked ? " * bmask[o]" : "");
    /* IBC_FAULT=grad (a test hook, tests/e2e.sh): seed the reverse pass with
     * a wrong derivative, 2.02 r for 2 r, which --gradcheck must catch */
    const char *fault = getenv("IBC_FAULT");
    OUT("                loss += r * r / norm;\n                if (grad)\n"
        "                    dy[s * os + o] = (os ? 0 : dy[o]) + %s * r / norm;\n            }\n",
        fault && !strcmp(fault, "grad") ? "2.02" : "2");
    OUT("        if (grad)\n            m->backward(m->th, x, nb, m->tp, m->ad, m->g);\n    }\n");
    OUT("    if (grad && m->l1 > 0)   /* subgradient of l1 * ||w||_1 */\n");
    OUT("        for (long e = 0; e < m->l1_size; e++) {\n            double w = m->th[m->l1_off + e];\n");
    OUT("            m->g[m->l1_off + e] += m->l1 * ((w > 0) - (w < 0));\n        }\n    return loss;\n}\n\n");

    /* gradient check */
    OUT("/* Largest relative difference between the analytic gradient and central\n"
        " * differences, over every parameter entry. */\n");
    OUT("/* A scalar metric: into results.json as NAME_MODEL, and into the table. */\n");
    OUT("static void put(ibrt_json *j, ibrt_metrics *t, const char *name, const char *model, double v)\n{\n");
    OUT("    char key[128];\n    snprintf(key, sizeof key, \"%%s%%s%%s\", name, *model ? \"_\" : \"\", model);\n");
    OUT("    ibrt_json_key(j, key);\n    ibrt_json_num(j, v);\n    ibrt_metrics_add(t, name, model, v);\n}\n\n");
    long maxth = 0;
    for (int k = 0; k < nm; k++)
        maxth = models[k].p.nth > maxth ? models[k].p.nth : maxth;
    OUT("static double gradient_check(model_t *m, const double *X, const double *Y, long nb, double tol, long *skipped)\n{\n"
        "    static double ga[%ld];   /* the largest model */\n", 1 + maxth);
    OUT("    double l1 = m->l1, worst = 0, scale = 0;\n    m->l1 = 0;\n    loss_and_grad(m, X, Y, nb, true);\n");
    OUT("    memcpy(ga, m->g, sizeof(double) * (size_t)m->nth);\n");
    OUT("    for (long e = 0; e < m->nth; e++)\n        scale = fmax(scale, fabs(ga[e]));\n");
    /* h balances truncation (h^2) against round-off (eps / h).  A kink of
     * the loss within +-h (a relu switching) shows as central differences
     * at h and h/10 that disagree (for a smooth loss they agree to
     * O(h^2)): the derivative is not defined there, the entry is skipped
     * and counted.  A wrong gradient still fails: both agree, with each
     * other and not with it. */
    OUT("    *skipped = 0;\n");
    OUT("    for (long e = 0; e < m->nth; e++) {\n        double t = m->th[e], fd[2];\n");
    OUT("        for (int q = 0; q < 2; q++) {\n            double h = (q ? 1e-6 : 1e-5) * fmax(1, fabs(t));\n");
    OUT("            m->th[e] = t + h;\n            double lp = loss_and_grad(m, X, Y, nb, false);\n");
    OUT("            m->th[e] = t - h;\n            double lm = loss_and_grad(m, X, Y, nb, false);\n");
    OUT("            m->th[e] = t;\n            fd[q] = (lp - lm) / (2 * h);\n        }\n");
    OUT("        if (fabs(fd[0] - fd[1]) > tol * fmax(scale, 1e-12)) {\n            (*skipped)++;\n            continue;\n        }\n");
    OUT("        worst = fmax(worst, fabs(fd[0] - ga[e]) / fmax(scale, 1e-12));\n    }\n");
    OUT("    m->l1 = l1;\n    return worst;\n}\n\n");

    OUT("static ibrt_metrics mt;   /* this run's scalar metrics */\n\n");
    OUT("/* --gradcheck: compare the analytic gradient of every model with central\n"
        " * differences at its initial point, print the result, train nothing. */\n"
        "static bool gradcheck_only;\n\n");
    OUT("/* One whole experiment at seed o.seed: data, every model, metrics,\n"
        " * checks, results in o.out_dir.  0: all checks pass, 4: a check failed. */\n");
    OUT("static int run(ibrt_opts o)\n{\n    mt.n = 0;\n    bool gc_failed = false;\n");
    for (int i = 0; i < em.ndct; i++)
        OUT("    ibrt_op_dct_matrix(%ld, dct_%ld);\n", em.dct_sizes[i], em.dct_sizes[i]);
    OUT("    ibrt_error err;\n    ibrt_status st;\n");
    for (int i = 0; i < em.ndense; i++) {
        long n = em.dense_n[i];
        OUT("    {   /* matrix(...) operator %d: read, shape checked", i);
        if (em.dense_inv[i])
            OUT(", inverse formed once from its LU\n         * factors (LAPACKE dgetrf/dgetrs) so that each step is one gemv,\n"
                "         * allocation-free");
        OUT(" */\n        const char *path = ");
        emit_c_string(out, em.dense_path[i]);
        OUT(";\n        size_t r, c;\n        double *a;\n");
        OUT("        if (ibrt_io_read_matrix(path, &r, &c, &a, &err) != IBRT_OK) {\n"
            "            fprintf(stderr, \"error: %%s\\n\", err.msg);\n            return 1;\n        }\n");
        OUT("        if (r != %ld || c != %ld) {\n            fprintf(stderr, \"error: %%s: the operator must be %ld x %ld, the file holds %%zu x %%zu\\n\", path, r, c);\n"
            "            free(a);\n            return 1;\n        }\n        memcpy(dense_%d, a, sizeof dense_%d);\n", n, n, n, n, i, i);
        if (em.dense_inv[i]) {
            OUT("        ibrt_lu lu;\n        if (ibrt_lu_factor(&lu, %ld, a, &err) != IBRT_OK) {\n"
                "            fprintf(stderr, \"error: %%s: %%s\\n\", path, err.msg);\n            free(a);\n            return 1;\n        }\n", n);
            OUT("        if (lu.rcond < 1e-12 && !o.quiet)\n            fprintf(stderr, \"warning: %%s: condition number about %%.3g: \"\n"
                "                    \"its inverse loses about %%.0f digits\\n\", path, 1 / lu.rcond, -log10(lu.rcond));\n");
            OUT("        for (long q = 0; q < %ld * %ld; q++)\n            dense_inv_%d[q] = q %% %ld == q / %ld;\n", n, n, i, n + 1 > 0 ? n : 1, n);
            OUT("        st = ibrt_lu_solve(&lu, 0, %ld, dense_inv_%d, &err);\n        ibrt_lu_free(&lu);\n", n, i);
            OUT("        if (st != IBRT_OK) {\n            fprintf(stderr, \"error: %%s: %%s\\n\", path, err.msg);\n            free(a);\n            return 1;\n        }\n");
        }
        OUT("        free(a);\n    }\n");
    }
    OUT("        if (ibrt_mkdir_p(o.out_dir, &err) != IBRT_OK) {\n");
    OUT("        fprintf(stderr, \"error: %%s\\n\", err.msg);\n        return 1;\n    }\n");
    OUT("    ibrt_rng rd;\n    ibrt_rng_fork(&rd, o.seed, 0);   /* stream 0: data */\n");
    OUT("    static ibrt_dataset dsv;\n    ibrt_dataset *ds = &dsv;\n");
    emit_data_setup(spec);
    OUT("    if (st != IBRT_OK) {\n        fprintf(stderr, \"error: data: %%s\\n\", err.msg);\n        return 1;\n    }\n");
    if (dk == D_TEACHER) {
        OUT("    /* teacher weights (stream 1) */\n    ibrt_rng rt;\n    ibrt_rng_fork(&rt, o.seed, 1);\n");
        for (size_t i = 0; i < spec->nparams; i++) {
            const ast_node *ti = NULL;
            for (size_t j = 0; j < spec->teacher->nkids; j++)
                if (!strcmp(spec->teacher->kids[j]->name, spec->params[i].name))
                    ti = spec->teacher->kids[j]->lhs;
            emit_init_param(&spec->params[i], ti ? ti : spec->params[i].init, teacher.param_off[i], "te_th", "&rt");
        }
    }
    OUT("    ibrt_json *j = ibrt_json_new();\n    ibrt_json_obj_begin(j);\n    ibrt_json_key(j, \"model\");\n    ibrt_json_str(j, ");
    emit_c_string(out, spec->model);
    OUT(");\n    ibrt_json_key(j, \"steps\");\n    ibrt_json_int(j, o.steps);\n    ibrt_json_key(j, \"seed\");\n");
    OUT("    ibrt_json_int(j, (long)o.seed);\n    ibrt_json_key(j, \"metrics\");\n    ibrt_json_obj_begin(j);\n");
    OUT("    static ibrt_checks checks;\n    checks.n = 0;\n    double t0 = ibrt_time_now();\n    char path[1200];\n");
    long maxbal = 1;
    for (int k = 0; k < nm; k++)
        maxbal = balance_count(&models[k]) + 1 > maxbal ? balance_count(&models[k]) + 1 : maxbal;
    if (maxbal > 1)
        OUT("    static double chi[%ld], ratio[%ld], nA0[%ld], nB0[%ld], nA[%ld], nB[%ld], mA[%ld], mB[%ld], pr[%ld];\n",
            maxbal, maxbal, maxbal, maxbal, maxbal, maxbal, maxbal, maxbal, maxbal);
    if (maxbal > 1)
        OUT("    (void)mA;\n    (void)mB;\n    (void)pr;\n");
    OUT("    if (!o.quiet && !gradcheck_only)\n        printf(\"%%-10s %%14s %%14s\\n\", \"model\", \"final loss\", \"steps/s\");\n");

    for (int k = 0; k < nm; k++) {
        model *m = &models[k];
        char pre[16];
        snprintf(pre, sizeof pre, "m%d", k);
        const char *suffix = strcmp(m->name, "model") ? m->name : NULL;
        long nbal = balance_count(m);
        OUT("\n    /* ================= model '%s' ================= */\n    {\n", m->name);
        OUT("        model_t m = { %s_forward, %s_backward, %s_balance, %s_th, %s_g, %s_tp, %s_ad, %ld, %ld, %ld, %ld, "
            "%.17g, %.17g, %ld, %ld, \"%s\", %s };\n",
            pre, pre, pre, pre, pre, pre, pre, m->p.nth, m->p.tape + 1, m->p.v[m->p.root].off, nbal, m->lr, m->l1,
            m->l1_off, m->l1_size, m->name, m->p.v[m->p.root].batched ? "true" : "false");
        OUT("        ibrt_rng ri, rb;\n        ibrt_rng_fork(&ri, o.seed, %d);   /* this model's initialisation */\n", 2 + 2 * k);
        OUT("        ibrt_rng_fork(&rb, o.seed, %d);   /* its batches */\n", 3 + 2 * k);
        char thname[24];
        snprintf(thname, sizeof thname, "%s_th", pre);
        for (size_t i = 0; i < m->spec->nparams; i++)
            emit_init_param(&m->spec->params[i], m->spec->params[i].init, m->p.param_off[i], thname, "&ri");
        if (m->unbalance) {
            const ast_node *c = spec->init;
            emit_unbalance(m, kwnum(c, "from", 0), kwnum(c, "to", 0));
        }
        OUT("        ibrt_rng rs;\n        ibrt_rng_fork(&rs, o.seed, %d);   /* structural checks */\n", 1000 + k);
        OUT("        const double *X, *Y;\n        long nb = draw_batch(ds, &rb, &X, &Y), skipped;\n"
            "        %s_structure(X, &rs, &checks, \"%s, init\");\n", pre, m->name);
        OUT("        double gerr = gradient_check(&m, X, Y, nb, %.3g, &skipped);\n",
            spec->verify.gradient_tol);
        OUT("        snprintf(path, sizeof path, \"gradient vs central differences (%s)\");\n", m->name);
        OUT("        char detail[128];\n        snprintf(detail, sizeof detail, \"max |fd - analytic| / max |analytic|; %%ld of %%ld entries at a kink, skipped\", skipped, m.nth);\n");
        OUT("        ibrt_checks_add(&checks, path, gerr, 0, %.3g, gerr <= %.3g && skipped * 10 < m.nth, detail);\n",
            spec->verify.gradient_tol, spec->verify.gradient_tol);
        OUT("        if (gradcheck_only) {   /* --gradcheck: the initial point only, no training */\n");
        OUT("            bool gok = gerr <= %.3g && skipped * 10 < m.nth;\n", spec->verify.gradient_tol);
        OUT("            printf(\"gradcheck %%-10s max |fd - analytic| / max |analytic| = %%.3g (tolerance %.3g) over %%ld \"\n"
            "                   \"entries, %%ld at a kink skipped: %%s\\n\", m.name, gerr, m.nth, skipped, gok ? \"PASS\" : \"FAIL\");\n",
            spec->verify.gradient_tol);
        OUT("            gc_failed = gc_failed || !gok;\n            goto done_%d;\n        }\n", k);
        if (nbal)
            OUT("        m.balance(m.th, chi, ratio, nA0, nB0);\n        double chi0[%ld];\n        memcpy(chi0, chi, sizeof chi0);\n", nbal);
        OUT("        snprintf(path, sizeof path, \"%%s/trace_%s.csv\", o.out_dir);\n        ibrt_csv tr;\n", m->name);
        OUT("        if (ibrt_csv_open(&tr, path, \"step,loss%s\", &err) != IBRT_OK) {\n", nbal ? ",chi_abs_median,ratio_median,ratio_min,ratio_max" : "");
        OUT("            fprintf(stderr, \"error: %%s\\n\", err.msg);\n            return 1;\n        }\n");
        long rec = spec->train.record_every ? spec->train.record_every : (steps / 200 > 0 ? steps / 200 : 1);
        OUT("        long every = %ld;   /* trace interval, scaled to --steps */\n", rec);
        OUT("        if (o.steps != %ldL)\n            every = o.steps / 200 > 0 ? o.steps / 200 : 1;\n", steps);
        OUT("        ibrt_progress pg;\n        ibrt_progress_begin(&pg, m.name, o.steps, o.quiet);\n");
        if (nbal) {
            /* balance_MODEL.csv: chi and the block-norm ratio of every index of
             * every generator family, over training (the header is built here,
             * in set-up, never in the step loop) */
            OUT("        ibrt_csv bt;\n        static double brow[%ld];\n        {\n", 1 + 2 * nbal);
            OUT("            static char bh[%ld];\n            size_t bl = (size_t)snprintf(bh, sizeof bh, \"step\");\n",
                64 * (2 * nbal + 1));
            for (int q = 0; q < 2; q++) {
                size_t nf = sym_nfamilies(m->deriv);
                for (size_t f = 0; f < nf; f++) {
                    const sym_family *fam = sym_family_at(m->deriv, f);
                    if (fam->nblocks != 2 || fam->k != 1)
                        continue;
                    OUT("            for (long i = 0; i < %ld; i++)\n                bl += (size_t)snprintf(bh + bl, sizeof bh - bl, "
                        "\",%s%zu_%%ld\", i);\n", fam->count, q ? "ratio" : "chi", f + 1);
                }
            }
            OUT("            snprintf(path, sizeof path, \"%%s/balance_%s.csv\", o.out_dir);\n", m->name);
            OUT("            if (ibrt_csv_open(&bt, path, bh, &err) != IBRT_OK) {\n"
                "                fprintf(stderr, \"error: %%s\\n\", err.msg);\n                return 1;\n            }\n        }\n");
        }
        OUT("        double loss = 0, ts = ibrt_time_now();\n");
        if (nbal)
            OUT("        static double tmp[%ld];\n", nbal);
        OUT("        for (long step = 0; step < o.steps; step++) {\n");
        OUT("            nb = draw_batch(ds, &rb, &X, &Y);\n            loss = loss_and_grad(&m, X, Y, nb, true);\n");
        OUT("            if (!isfinite(loss)) {\n                fprintf(stderr, \"error: model '%%s' diverged at step %%ld (loss %%g): \"\n"
            "                        \"lower the learning rate (%%g)\\n\", m.name, step, loss, m.lr);\n");
        OUT("                ibrt_csv_close(&tr, &err);\n%s                return 3;\n            }\n",
            nbal ? "                ibrt_csv_close(&bt, &err);\n" : "");
        OUT("            for (long e = 0; e < m.nth; e++)\n                m.th[e] -= m.lr * m.g[e];\n");
        OUT("            if (step %% every == 0 || step == o.steps - 1) {\n");
        if (nbal) {
            OUT("                m.balance(m.th, chi, ratio, NULL, NULL);\n                double row[5] = { (double)step, loss, 0, 0, 0 };\n");
            OUT("                for (long i = 0; i < %ld; i++)\n                    tmp[i] = fabs(chi[i]);\n", nbal);
            OUT("                double mn, mx;\n                ibrt_stats_median_min_max(tmp, %ld, &row[2], &mn, &mx);\n", nbal);
            OUT("                memcpy(tmp, ratio, sizeof(double) * %ld);\n", nbal);
            OUT("                ibrt_stats_median_min_max(tmp, %ld, &row[3], &row[4], &mx);\n", nbal);
            OUT("                double full[6] = { row[0], row[1], row[2], row[3], row[4], mx };\n");
            OUT("                ibrt_csv_row(&tr, full, 6);\n");
            OUT("                brow[0] = (double)step;\n                memcpy(brow + 1, chi, sizeof(double) * %ld);\n"
                "                memcpy(brow + 1 + %ld, ratio, sizeof(double) * %ld);\n                ibrt_csv_row(&bt, brow, %ld);\n",
                nbal, nbal, nbal, 1 + 2 * nbal);
        } else {
            OUT("                double row[2] = { (double)step, loss };\n                ibrt_csv_row(&tr, row, 2);\n");
        }
        OUT("            }\n            ibrt_progress_update(&pg, step + 1, loss);\n        }\n");
        OUT("        %s_structure(X, &rs, &checks, \"%s, end\");\n", pre, m->name);
        OUT("        ibrt_progress_end(&pg);\n        double rate = (double)o.steps / (ibrt_time_now() - ts + 1e-12);\n");
        OUT("        if (ibrt_csv_close(&tr, &err) != IBRT_OK)\n            fprintf(stderr, \"error: %%s\\n\", err.msg);\n");
        if (nbal)
            OUT("        if (ibrt_csv_close(&bt, &err) != IBRT_OK)\n            fprintf(stderr, \"error: %%s\\n\", err.msg);\n");
        /* every learned parameter as MODEL_NAME.npy */
        for (size_t q = 0; q < m->spec->nparams; q++) {
            const ibc_var *pv = &m->spec->params[q];
            OUT("        {\n            size_t shp[2] = { %ld, %ld };\n            snprintf(path, sizeof path, \"%%s/%s_%%s.npy\", o.out_dir, ",
                pv->shape.rank == 0 ? 1L : pv->shape.rows, pv->shape.rank == 2 ? pv->shape.cols : 1L, m->name);
            emit_c_string(out, pv->name);
            OUT(");\n            if (ibrt_npy_write(path, m.th + %ld, %d, shp, &err) != IBRT_OK)\n"
                "                fprintf(stderr, \"error: %%s\\n\", err.msg);\n        }\n",
                m->p.param_off[q], pv->shape.rank == 2 ? 2 : 1);
        }
        OUT("        if (!o.quiet)\n            printf(\"%%-10s %%14.6g %%14.0f\\n\", m.name, loss, rate);\n");
        /* metrics */
#define KEY(fmt_name) OUT("        ibrt_json_key(j, \"%s%s%s\");\n", fmt_name, suffix ? "_" : "", suffix ? suffix : "")
        OUT("        put(j, &mt, \"final_loss\", \"%s\", loss);\n", suffix ? suffix : "");
        if (dk == D_FIXED) {
            OUT("        if (ds->n_test > 0) {\n            double mse = 0;\n");
            OUT("            /* the test set in chunks of BMAX samples: the tape holds no more */\n");
            OUT("            for (size_t s0 = 0; s0 < ds->n_test; s0 += BMAX) {\n");
            OUT("                long nc = ds->n_test - s0 < BMAX ? (long)(ds->n_test - s0) : BMAX;\n");
            OUT("                m.forward(m.th, ds->x_test + s0 * IN, nc, m.tp);\n");
            OUT("                for (long s = 0; s < nc; s++)\n                    for (long e = 0; e < OUT; e++) {\n");
            OUT("                        double r = m.tp[m.root + (m.root_batched ? s * OUT : 0) + e] - ds->y_test[(s0 + s) * OUT + e];\n"
                "                        mse += r * r;\n                    }\n            }\n");
            OUT("            put(j, &mt, \"test_mse\", \"%s\", mse / (double)(ds->n_test * OUT));\n        }\n", suffix ? suffix : "");
        }
        /* the design parameter's effective value */
        if (spec->design.kind == DESIGN_LOG_SPARSITY && dk == D_FIXED) {
            const ibc_var *w = &spec->params[spec->design.param];
            long n = w->shape.rows;
            OUT("        {\n            static double w[%ld];\n", n);
            if (m->replacement) {
                OUT("            m%d_w_forward(m.th, NULL, 1, m%d_w_tp);\n            memcpy(w, m%d_w_tp + %ld, sizeof w);\n", k, k,
                    k, m->rp.v[m->rp.root].off);
                /* the synthesised parameterisation, checked numerically: A w(theta) = a1 * ... * aL */
                OUT("            m%d_aw_forward(m.th, NULL, 1, m%d_aw_tp);\n            double worst = 0, scale = 0;\n", k, k);
                OUT("            for (long i = 0; i < %ld; i++) {\n                double z = 1;\n", n);
                for (size_t f = 0; f + (spec->nparams - 1) < m->spec->nparams; f++)
                    OUT("                z *= m.th[%ld + i];\n", m->p.param_off[f]);
                OUT("                scale = fmax(scale, fabs(z));\n                worst = fmax(worst, fabs(m%d_aw_tp[%ld + i] - z));\n            }\n",
                    k, m->ap.v[m->ap.root].off);
                OUT("            ibrt_checks_add(&checks, \"designed parameterisation: A w = product of factors\", worst / fmax(scale, 1e-300), 0, 1e-10,\n"
                    "                            worst <= 1e-10 * fmax(scale, 1e-300), \"max |A w - a1*...*aL| / max |a1*...*aL|\");\n");
            }
            else
                OUT("            memcpy(w, m.th + %ld, sizeof w);\n", m->p.param_off[spec->design.param]);
            OUT("            snprintf(path, sizeof path, \"%%s/w_%s.npy\", o.out_dir);\n", m->name);
            OUT("            size_t shp[1] = { %ld };\n            if (ibrt_npy_write(path, w, 1, shp, &err) != IBRT_OK)\n"
                "                fprintf(stderr, \"error: %%s\\n\", err.msg);\n", n);
            OUT("            if (ds->truth_size == %ld) {\n                double rec = 0, tv = 0;\n", n);
            /* the learned coefficients next to the truth, for plots */
            OUT("                ibrt_csv wc;\n                snprintf(path, sizeof path, \"%%s/w_%s.csv\", o.out_dir);\n", m->name);
            OUT("                if (ibrt_csv_open(&wc, path, \"i,w,truth\", &err) == IBRT_OK) {\n");
            OUT("                    for (long i = 0; i < %ld; i++) {\n                        double row[3] = { (double)i, w[i], ds->truth[i] };\n", n);
            OUT("                        ibrt_csv_row(&wc, row, 3);\n                    }\n                    ibrt_csv_close(&wc, &err);\n                }\n");
            OUT("                for (long i = 0; i < %ld; i++) {\n                    rec += (w[i] - ds->truth[i]) * (w[i] - ds->truth[i]) / %ld.0;\n", n, n);
            OUT("                    if (i)\n                        tv += fabs(w[i] - w[i - 1]);\n                }\n");
            OUT("                put(j, &mt, \"recon_mse\", \"%s\", rec);\n", suffix ? suffix : "");
            OUT("                put(j, &mt, \"tv\", \"%s\", tv);\n", suffix ? suffix : "");
            OUT("                put(j, &mt, \"fit_mse\", \"%s\", loss);\n", suffix ? suffix : "");
            OUT("                /* support: the indices of the largest |w_i|, as many as the truth's non-zeros */\n");
            OUT("                if (ds->nonzeros > 0 && ds->nonzeros <= 64) {\n                    double sup[64];\n                    bool used[%ld] = { false };\n", n);
            OUT("                    for (size_t q = 0; q < ds->nonzeros; q++) {\n                        long best = -1;\n");
            OUT("                        for (long i = 0; i < %ld; i++)\n                            if (!used[i] && (best < 0 || fabs(w[i]) > fabs(w[best])))\n                                best = i;\n", n);
            OUT("                        used[best] = true;\n                    }\n                    size_t c = 0;\n");
            OUT("                    for (long i = 0; i < %ld; i++)\n                        if (used[i])\n                            sup[c++] = (double)i;\n", n);
            KEY("support");
            OUT("                    ibrt_json_nums(j, sup, c);\n");
            if (k == 0) {
                OUT("                    c = 0;\n                    for (long i = 0; i < %ld; i++)\n                        if (ds->truth[i] != 0)\n                            sup[c++] = (double)i;\n", n);
                OUT("                    ibrt_json_key(j, \"support_true\");\n                    ibrt_json_nums(j, sup, c);\n");
            }
            OUT("                }\n            }\n        }\n");
        }
        if (spec->out_shape.rank == 2 && dk == D_LOWRANK) {
            long r = spec->out_shape.rows, c = spec->out_shape.cols;
            OUT("        {\n            static double sv[%ld];\n            m.forward(m.th, X, 1, m.tp);\n", r < c ? r : c);
            OUT("            if (ibrt_linalg_svd_values(%ld, %ld, m.tp + m.root, sv, &err) == IBRT_OK) {\n", r, c);
            KEY("singular_values");
            OUT("                ibrt_json_nums(j, sv, %ld);\n            }\n", r < c ? r : c);
            OUT("            double num = 0, den = 0;\n            for (long e = 0; e < OUT; e++) {\n");
            OUT("                double d = m.tp[m.root + e] - ds->truth[e];\n                num += d * d;\n                den += ds->truth[e] * ds->truth[e];\n            }\n");
            OUT("            put(j, &mt, \"relative_error\", \"%s\", sqrt(num / den));\n", suffix ? suffix : "");
            OUT("            snprintf(path, sizeof path, \"%%s/Z_%s.npy\", o.out_dir);\n", m->name);
            OUT("            size_t shp[2] = { %ld, %ld };\n            if (ibrt_npy_write(path, m.tp + m.root, 2, shp, &err) != IBRT_OK)\n"
                "                fprintf(stderr, \"error: %%s\\n\", err.msg);\n        }\n", r, c);
        }
        if (nbal) {
            OUT("        {\n            m.balance(m.th, chi, ratio, nA, nB);\n            double med, mn, mx, c0[%ld], c1[%ld];\n", nbal, nbal);
            OUT("            memcpy(tmp, ratio, sizeof(double) * %ld);\n            ibrt_stats_median_min_max(tmp, %ld, &med, &mn, &mx);\n", nbal, nbal);
            OUT("            put(j, &mt, \"ratio_median\", \"%s\", med);\n", suffix ? suffix : "");
            OUT("            put(j, &mt, \"ratio_min\", \"%s\", mn);\n", suffix ? suffix : "");
            OUT("            put(j, &mt, \"ratio_max\", \"%s\", mx);\n", suffix ? suffix : "");
            OUT("            for (long i = 0; i < %ld; i++) {\n                c0[i] = fabs(chi0[i]);\n                c1[i] = fabs(chi[i]);\n            }\n", nbal);
            OUT("            ibrt_stats_median_min_max(c0, %ld, &med, &mn, &mx);\n", nbal);
            OUT("            put(j, &mt, \"chi_abs_median_start\", \"%s\", med);\n", suffix ? suffix : "");
            OUT("            ibrt_stats_median_min_max(c1, %ld, &med, &mn, &mx);\n", nbal);
            OUT("            put(j, &mt, \"chi_abs_median_end\", \"%s\", med);\n", suffix ? suffix : "");
            /* Which mechanism (theory.md §6): chi conserved while the norms
             * grow, or chi driven.  Thresholds fixed here, not tuned: a
             * median relative change of chi below 5%% is "conserved". */
            OUT("            for (long i = 0; i < %ld; i++) {\n", nbal);
            OUT("                c0[i] = fabs(chi[i] - chi0[i]) / fmax(fabs(chi0[i]), 1e-12 * (nA0[i] + nB0[i]));\n");
            OUT("                c1[i] = sqrt((nA[i] + nB[i]) / (nA0[i] + nB0[i]));\n            }\n");
            OUT("            double rel, growth;\n            ibrt_stats_median_min_max(c0, %ld, &rel, &mn, &mx);\n", nbal);
            OUT("            ibrt_stats_median_min_max(c1, %ld, &growth, &mn, &mx);\n", nbal);
            OUT("            put(j, &mt, \"chi_rel_change_median\", \"%s\", rel);\n", suffix ? suffix : "");
            OUT("            put(j, &mt, \"norm_growth_median\", \"%s\", growth);\n", suffix ? suffix : "");
            KEY("mechanism");
            OUT("            ibrt_json_str(j, rel < 0.05 ? (growth > 1.5 ? \"conserved: chi kept its initial value while the "
                "norms grew (a gradient-flow invariant, not the noise correction)\" : \"conserved: chi kept its initial "
                "value\") : \"driven: chi moved (SGD noise at finite step size)\");\n");
            /* The three predictions of theory.md §4 for the norm ratio, per
             * index: the log det G minimiser and the dual slice (exact, from
             * the derivation), and the noise equilibrium from the measured
             * per-block gradient second moments m_p: along the orbit m_p
             * scales as e^(-2 alpha_p t), so sum_p alpha_p m_p e^(-2 alpha_p t)
             * = 0 gives (n0/n1)* = n0 alpha0 m0 / (-n1 alpha1 m1). */
            double rl = 0, rd = 0;
            {
                const sym_family *f0 = sym_family_at(m->deriv, 0);
                double a0 = (double)f0->alpha[0][0], a1 = (double)f0->alpha[0][1], c[2] = { 0, 0 }, dl[2] = { 0, 0 };
                for (int t = 0; t < f0->nterms; t++) {
                    int b = f0->term_set[t] == 1u ? 0 : 1;
                    c[b] = (double)f0->term_coef[t];
                    char *slash = strchr(f0->delta[t], '/');
                    dl[b] = strtod(f0->delta[t], NULL) / (slash ? strtod(slash + 1, NULL) : 1);
                }
                /* n_q ~ c_S(-q) / delta_S(-q): S(-0) = {1}, S(-1) = {0} */
                rl = f0->min_kind == SYM_MIN_ATTAINED ? sqrt((c[1] / dl[1]) / (c[0] / dl[0])) : NAN;
                rd = -a1 / a0 > 0 ? sqrt(-a1 / a0) : NAN;
                char lit[40];
                OUT("            put(j, &mt, \"ratio_pred_logdet_min\", \"%s\", %s);\n", suffix ? suffix : "", c_double(rl, lit));
                OUT("            put(j, &mt, \"ratio_pred_dual_slice\", \"%s\", %s);\n", suffix ? suffix : "", c_double(rd, lit));
                if (!(dk == D_FIXED && batch == 0)) {
                    OUT("            /* noise equilibrium: gradient second moments over 256 fresh minibatches */\n");
                    OUT("            memset(mA, 0, sizeof(double) * %ld);\n            memset(mB, 0, sizeof(double) * %ld);\n", nbal, nbal);
                    OUT("            for (int q = 0; q < 256; q++) {\n                long nq = draw_batch(ds, &rb, &X, &Y);\n");
                    OUT("                loss_and_grad(&m, X, Y, nq, true);\n                m.balance(m.g, chi, ratio, c0, c1);\n");
                    OUT("                for (long i = 0; i < %ld; i++) {\n                    mA[i] += c0[i] / 256;\n                    mB[i] += c1[i] / 256;\n                }\n            }\n", nbal);
                    OUT("            for (long i = 0; i < %ld; i++)\n                pr[i] = sqrt(nA[i] * %.17g * mA[i] / (-nB[i] * %.17g * mB[i]));\n", nbal, a0, a1);
                    OUT("            ibrt_stats_median_min_max(pr, %ld, &med, &mn, &mx);\n", nbal);
                    OUT("            put(j, &mt, \"ratio_pred_noise_equilibrium\", \"%s\", med);\n", suffix ? suffix : "");
                }
            }
            const sym_family *fam = sym_family_at(m->deriv, 0);
            KEY("ratio_definition");
            OUT("            ibrt_json_str(j, ");
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            fprintf(mem, "||%s|| / ||%s||", fam->blocks[0].text, fam->blocks[1].text);
            fclose(mem);
            emit_c_string(out, buf);
            free(buf);
            OUT(");\n        }\n");
        }
        OUT("    done_%d:;\n    }\n", k);
    }
    OUT("    if (gradcheck_only) {\n        ibrt_json_free(j);\n        ibrt_dataset_free(ds);\n        return gc_failed ? 5 : 0;\n    }\n");
    if (spec->verify.stationary_beta > 0) {
        /* theory.md §7 on the scalar pair z = u v with L = (theta - value)^2,
         * i.e. beta_d = 2 and theta* = the data's value */
        const sym_family *fam = derivation && sym_nfamilies(derivation) ? sym_family_at(derivation, 0) : NULL;
        bool scalar_pair = fam && fam->k == 1 && fam->nblocks == 2 && fam->count == 1 && dk == D_TARGET &&
                           fam->alpha[0][0] == -fam->alpha[0][1];
        if (!scalar_pair) {
            diag_error(diag, spec->data->loc, "the stationary-law test needs a scalar pair z = u v with "
                                              "noisy_target data (theory.md §7)");
            return false;
        }
        OUT("\n    /* the stationary law, thin-shell Metropolis test (theory.md §7) */\n    {\n");
        OUT("        ibrt_stationary_cfg sc = { .beta = %.17g, .beta_d = 2, .theta_star = %.17g, .eps = %.17g,\n"
            "                                   .chains = 40000, .steps = 4000, .step = 0.02, .seed = o.seed + 77 };\n",
            spec->verify.stationary_beta, kwnum(spec->data, "value", 1),
            spec->verify.stationary_eps > 0 ? spec->verify.stationary_eps : 0.02);
        OUT("        if (o.steps < %ldL)   /* shortened runs (tests) use fewer chains */\n            sc.chains = 4000;\n", steps);
        OUT("        ibrt_stationary_result sr;\n        if (ibrt_stationary_uv(&sc, &sr, &err) != IBRT_OK) {\n"
            "            fprintf(stderr, \"error: %%s\\n\", err.msg);\n            return 1;\n        }\n");
        OUT("        put(j, &mt, \"stationary_ks_predicted\", \"\", sr.ks_pred);\n        put(j, &mt, \"stationary_p_predicted\", \"\", sr.p_pred);\n");
        OUT("        put(j, &mt, \"stationary_ks_no_det\", \"\", sr.ks_nodet);\n        put(j, &mt, \"stationary_p_no_det\", \"\", sr.p_nodet);\n");
        OUT("        put(j, &mt, \"stationary_ks_flipped\", \"\", sr.ks_flip);\n        put(j, &mt, \"stationary_p_flipped\", \"\", sr.p_flip);\n");
        OUT("        ibrt_checks_add(&checks, \"stationary law: predicted density accepted\", sr.p_pred, 0.01, 0.01, sr.p_pred > 0.01, \"KS p-value, exp(-beta L) asinh(eps/theta)\");\n");
        OUT("        ibrt_checks_add(&checks, \"stationary law: no det G factor rejected\", sr.p_nodet, 1e-6, 1e-6, sr.p_nodet < 1e-6, \"KS p-value, exp(-beta L)\");\n");
        OUT("        ibrt_checks_add(&checks, \"stationary law: inverted factor rejected\", sr.p_flip, 1e-6, 1e-6, sr.p_flip < 1e-6, \"KS p-value, exp(-beta L) / asinh(eps/theta)\");\n    }\n");
    }
    OUT("\n    ibrt_json_obj_end(j);\n    ibrt_json_key(j, \"wall_seconds\");\n    ibrt_json_num(j, ibrt_time_now() - t0);\n");
    OUT("    ibrt_json_key(j, \"checks\");\n    ibrt_checks_to_json(&checks, j);\n    ibrt_json_obj_end(j);\n");
    OUT("    snprintf(path, sizeof path, \"%%s/results.json\", o.out_dir);\n");
    OUT("    if (ibrt_json_write_file(j, path, &err) != IBRT_OK) {\n        fprintf(stderr, \"error: %%s\\n\", err.msg);\n        return 1;\n    }\n");
    OUT("    if (!o.quiet) {\n        printf(\"\\n\");\n        ibrt_metrics_print(&mt, stdout);\n");
    OUT("        printf(\"\\n\");\n        ibrt_checks_print(&checks, stdout);\n        printf(\"\\nresults: %%s\\n\", path);\n    }\n");
    OUT("    bool pass = ibrt_checks_all_pass(&checks);\n    ibrt_json_free(j);\n    ibrt_dataset_free(ds);\n");
    OUT("    return pass ? 0 : 4;\n}\n\n");
    /* main: one run, or --seeds K runs summarised by median/min/max */
    OUT("int main(int argc, char **argv)\n{\n    ibrt_opts o;\n");
    OUT("    int ac = 0;   /* --gradcheck is ours; the other flags go to ibrt_opts_parse */\n");
    OUT("    for (int i = 0; i < argc; i++) {\n        if (i > 0 && !strcmp(argv[i], \"--gradcheck\"))\n            gradcheck_only = true;\n"
        "        else\n            argv[ac++] = argv[i];\n    }\n    argv[ac] = NULL;\n");
    OUT("    int rc = ibrt_opts_parse(ac, argv, &o, ");
    emit_c_string(out, spec->model);
    OUT(", ");
    emit_c_string(out, spec->description ? spec->description : "");
    OUT(", %ldL, %lluULL);\n", steps, (unsigned long long)spec->train.seed);
    OUT("    if (rc > 0)\n        printf(\"  --gradcheck   compare the analytic gradient of every model with central\\n\"\n"
        "               \"                differences at its initial point and exit (status 5 on failure)\\n\");\n");
    OUT("    if (rc)\n        return rc > 0 ? 0 : 2;\n");
    OUT("    if (o.seeds == 1 || gradcheck_only)\n        return run(o);\n");
    OUT("    /* K independent seeds S..S+K-1, each in OUT/seed_N; summary.json has\n"
        "     * median, min and max of every scalar metric */\n");
    OUT("    ibrt_error err;\n    if (ibrt_mkdir_p(o.out_dir, &err) != IBRT_OK) {\n        fprintf(stderr, \"error: %%s\\n\", err.msg);\n        return 1;\n    }\n");
    OUT("    ibrt_metric *all = malloc(sizeof *all * IBRT_MAX_METRICS * (size_t)o.seeds);\n    size_t nall = 0;\n    int worst = 0;\n");
    OUT("    if (!all) {\n        fprintf(stderr, \"error: out of memory\\n\");\n        return 1;\n    }\n");
    OUT("    for (int k = 0; k < o.seeds; k++) {\n        ibrt_opts one = o;\n        static char dir[1100];\n");
    OUT("        one.seed = o.seed + (uint64_t)k;\n        one.quiet = 1;\n");
    OUT("        snprintf(dir, sizeof dir, \"%%s/seed_%%llu\", o.out_dir, (unsigned long long)one.seed);\n        one.out_dir = dir;\n");
    OUT("        int r = run(one);\n        if (r != 0 && r != 4)\n            return r;\n        if (r > worst)\n            worst = r;\n");
    OUT("        if (!o.quiet)\n            fprintf(stderr, \"seed %%llu: %%s\\n\", (unsigned long long)one.seed, r ? \"a check FAILED\" : \"all checks pass\");\n");
    OUT("        memcpy(all + nall, mt.m, sizeof *all * mt.n);\n        nall += mt.n;\n    }\n");
    OUT("    ibrt_json *j = ibrt_json_new();\n    ibrt_json_obj_begin(j);\n    ibrt_json_key(j, \"model\");\n    ibrt_json_str(j, ");
    emit_c_string(out, spec->model);
    OUT(");\n    ibrt_json_key(j, \"seeds\");\n    ibrt_json_int(j, o.seeds);\n    ibrt_json_key(j, \"first_seed\");\n    ibrt_json_int(j, (long)o.seed);\n");
    OUT("    ibrt_json_key(j, \"metrics\");\n    ibrt_metrics_summarise(all, nall, j, o.quiet ? NULL : stdout);\n");
    OUT("    ibrt_json_key(j, \"all_checks_pass\");\n    ibrt_json_bool(j, worst == 0);\n    ibrt_json_obj_end(j);\n");
    OUT("    char path[1200];\n    snprintf(path, sizeof path, \"%%s/summary.json\", o.out_dir);\n");
    OUT("    if (ibrt_json_write_file(j, path, &err) != IBRT_OK) {\n        fprintf(stderr, \"error: %%s\\n\", err.msg);\n        return 1;\n    }\n");
    OUT("    if (!o.quiet)\n        printf(\"\\nsummary: %%s\\n\", path);\n    ibrt_json_free(j);\n    free(all);\n    return worst;\n}\n");
    for (int k = 0; k < nm; k++) {
        prog_free(&models[k].p);
        prog_free(&models[k].rp);
        prog_free(&models[k].ap);
    }
    prog_free(&teacher);
    for (int i = 0; i < em.ndense; i++)
        free(em.dense_path[i]);
    return true;
}
