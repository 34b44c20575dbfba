/*
 * emit_torch.c: the PyTorch export (emit_torch.h), `ibc emit --target torch`.
 *
 * Contract.  In: a checked spec, its design (or NULL) and the derivation
 * of its own model, exactly what emit.c's C trainer is generated from.
 * Out: one Python module (torch and the standard library only) with
 *
 *   - a torch.nn.Module per model of the C trainer, named Designed,
 *     Vanilla, L1 (a design target and its baselines) or Model (a spec
 *     without one): the spec's parameters (names, shapes, initial
 *     distributions; the C trainer's random stream is not reproduced),
 *     `forward` the predictor, `penalty` the baseline's L1 term, LR the
 *     model's learning rate in the trainer, and at its current parameters
 *     `dual_slices` (chi per torus family, C = Gram(A) - Gram(B) per GL(r)
 *     junction), `balance` (the ratio of each two-block family, with the
 *     two exact predictions of docs/theory.md §4) and `predicted_bias`;
 *   - loss_fn, the spec's loss as the trainer computes it;
 *   - Reparam and register_design (design targets): the designed
 *     reparameterisation on any tensor of the right size, through
 *     torch.nn.utils.parametrize; requested_bias, the penalty asked for;
 *   - write_snapshot: parameters (and gradients) in the layout `ibc verify`
 *     reads (docs/interop.md);
 *   - the derivation (`ibc derive`'s text) as the module's docstring.
 *
 * How.  The predictor is translated from the checked AST the C lowering
 * (emit.c) starts from, with the same operator semantics (runtime/ops.c):
 * every value has its per-sample shape from sema and is batched (a
 * leading batch dimension) exactly when it depends on an input, as the C
 * tape's values are; products pick the torch form that keeps the batch
 * dimension first.  Each intermediate is one line `vN = ...` with the
 * expression it computes as a comment.  The derivation's families and
 * groups (sym.h) become the dual-slice and bias methods.  Constructs the
 * C code generator refuses (an operator C cannot apply, a constant
 * operand of '@') are refused here too, with a located error.
 *
 * Safety: spec text reaches Python only through py_str/py_doc (escaped,
 * ASCII only) and py_comment (no line breaks, ASCII only); parameter and
 * input names through py_name (see emit_torch.h).
 */
#include "emit_torch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---------------------------------------------------------- Python text */

/* Bytes of a well-formed UTF-8 sequence at s (1 for ASCII), 0 if none;
 * its code point in *cp. */
static int utf8_seq(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int n = s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (!n)
        return 0;
    unsigned c = s[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c < 0xe000))) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return n;
}

/* The body of a Python string literal for arbitrary bytes: ASCII only,
 * quotes and backslashes escaped, UTF-8 text as \u escapes, other bytes
 * as \x escapes; newlines kept as line breaks when `lines` (docstrings). */
static void py_str_body(FILE *out, const char *s, bool lines)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        int n = utf8_seq(p, &cp);
        if (n == 0) {
            fprintf(out, "\\x%02x", *p++);
            continue;
        }
        p += n;
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (int)cp);
        else if (cp == '\n' && lines)
            fputc('\n', out);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (cp >= 0x20 && cp < 0x7f)
            fputc((int)cp, out);
        else if (lines && cp >= 0xa0 && cp != 0xad && !(cp >= 0x200b && cp <= 0x200f) &&
                 !(cp >= 0x2028 && cp <= 0x202e) && !(cp >= 0x2060 && cp <= 0x206f) && cp != 0xfeff && cp < 0xfff0)
            fwrite(p - n, 1, (size_t)n, out);   /* readable text in a docstring: no invisible or bidi controls */
        else if (cp < 0x100)
            fprintf(out, "\\x%02x", cp);
        else if (cp < 0x10000)
            fprintf(out, "\\u%04x", cp);
        else
            fprintf(out, "\\U%08x", cp);
    }
}

static void py_str(FILE *out, const char *s)
{
    fputc('"', out);
    py_str_body(out, s ? s : "", false);
    fputc('"', out);
}

/* Spec text inside a '#' comment: printable ASCII only. */
static void py_comment(FILE *out, const char *s)
{
    for (; s && *s; s++)
        fputc((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?', out);
}

/* A double as a Python literal (finite: the checker folds constants). */
static const char *py_num(char buf[40], double v)
{
    if (!isfinite(v))
        snprintf(buf, 40, "float(\"%s\")", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    else {
        char t[32];
        for (int prec = 15; prec <= 17; prec++) {   /* the shortest text that reads back as v */
            snprintf(t, sizeof t, "%.*g", prec, v);
            if (strtod(t, NULL) == v)
                break;
        }
        snprintf(buf, 40, v < 0 ? "(%s)" : "%s", t);
    }
    return buf;
}

/* Names a spec's identifier may not take in Python: keywords, the
 * module's own names (a leading "_ibc" is the module's), and the public
 * attributes of torch.nn.Module and of the generated model classes
 * (parameters are attributes of a module). */
static const char *const py_reserved[] = {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "match", "case", "type", "print",
    /* what the generated code names (inputs are the locals of forward) */
    "self", "torch", "math", "os", "json", "ast", "struct",
    /* torch.nn.Module (1.13 and later) */
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "children", "compile", "cpu", "cuda", "double",
    "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "smart_apply", "state_dict", "to",
    "to_empty", "train", "training", "xpu", "zero_grad", "call_super_init", "parametrizations",
    /* the generated model classes */
    "NAME", "LR", "L1_WEIGHT", "PARAMETERS", "INPUTS", "DERIVED", "RATIO_PREDICTIONS", "reset_parameters",
    "penalty", "spec_tensors", "load_parameters", "dual_slices", "balance", "predicted_bias",
    "designed_parameter",
};

static bool py_is_reserved(const char *s)
{
    for (size_t i = 0; i < sizeof py_reserved / sizeof *py_reserved; i++)
        if (!strcmp(py_reserved[i], s))
            return true;
    /* temporaries of forward: v1, v2, ... */
    if (s[0] == 'v' && s[1]) {
        const char *p = s + 1;
        while (*p >= '0' && *p <= '9')
            p++;
        if (!*p)
            return true;
    }
    return !strncasecmp(s, "_ibc", 4);
}

/* A safe Python identifier for spec name `name`, distinct from taken[0..n). */
static const char *py_name(ibc_arena *a, const char *name, const char *const *taken, size_t n)
{
    char *s = arena_printf(a, "%s%s", name[0] >= '0' && name[0] <= '9' ? "p" : "", name);
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    if (s[0] == '_')   /* no dunders, private names of nn.Module (_parameters, ...) or the module's _ibc */
        s = arena_printf(a, "p%s", s);
    if (!*s)
        s = arena_printf(a, "p");
    for (;;) {
        bool clash = py_is_reserved(s);
        for (size_t i = 0; i < n && !clash; i++)
            clash = taken[i] && !strcmp(taken[i], s);
        if (!clash)
            return s;
        s = arena_printf(a, "%s_", s);
    }
}

/* ------------------------------------------------------------ unparsing */

/* The source form of an expression (for comments), at most ~120 bytes. */
static void unparse(FILE *o, const ast_node *n, int depth)
{
    if (depth > 40) {
        fputs("...", o);
        return;
    }
    switch (n->kind) {
    case AST_NUM: fputs(n->text ? n->text : "?", o); return;
    case AST_IDENT: fputs(n->name, o); return;
    case AST_STR: fputs("\"...\"", o); return;
    case AST_NEG:
        fputc('-', o);
        if (n->lhs->kind == AST_BINOP)
            fputc('(', o);
        unparse(o, n->lhs, depth + 1);
        if (n->lhs->kind == AST_BINOP)
            fputc(')', o);
        return;
    case AST_TRANSPOSE:
        if (n->lhs->kind == AST_BINOP || n->lhs->kind == AST_NEG)
            fputc('(', o);
        unparse(o, n->lhs, depth + 1);
        if (n->lhs->kind == AST_BINOP || n->lhs->kind == AST_NEG)
            fputc(')', o);
        fputc('\'', o);
        return;
    case AST_BINOP:
        for (int side = 0; side < 2; side++) {
            const ast_node *k = side ? n->rhs : n->lhs;
            bool par = k->kind == AST_BINOP && !k->is_const;
            if (side)
                fprintf(o, " %c ", n->op);
            if (par)
                fputc('(', o);
            if (k->is_const && k->kind == AST_BINOP)
                fprintf(o, "%.6g", k->value);
            else
                unparse(o, k, depth + 1);
            if (par)
                fputc(')', o);
        }
        return;
    case AST_LIST:
        fputc('[', o);
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                fputs(", ", o);
            unparse(o, n->kids[i], depth + 1);
        }
        fputc(']', o);
        return;
    case AST_KWARG:
        fprintf(o, "%s = ", n->name);
        unparse(o, n->lhs, depth + 1);
        return;
    case AST_CALL:
        fprintf(o, "%s(", n->name);
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                fputs(", ", o);
            unparse(o, n->kids[i], depth + 1);
        }
        fputc(')', o);
        return;
    default: fputs("?", o); return;
    }
}

static const char *unparse_str(ibc_arena *a, const ast_node *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return "";
    unparse(m, n, 0);
    fclose(m);
    if (len > 120)
        strcpy(buf + 110, " ...");
    char *s = arena_printf(a, "%s", buf);
    free(buf);
    return s;
}

/* ----------------------------------------------------------- translation */

/* A value of the predictor in Python: an expression (a name, a literal or
 * a temporary), whether it has a leading batch dimension, its per-sample
 * rank and shape. */
typedef struct {
    const char *e;
    bool batched;
    int rank;
    long rows, cols;
} pyv;

/* The fixed operators a class holds as buffers. */
typedef struct {
    const ast_node *diag[16];
    int ndiag;
    char *dense_path[16];
    const ast_node *dense[16];
    long dense_r[16], dense_c[16];
    bool dense_inv[16];
    int ndense;
} opset;

typedef struct {
    FILE *out;                  /* the body being written */
    ibc_arena *a;
    const ibc_spec *spec;       /* of the model: its params and inputs */
    const char **leaf_param;    /* Python expression of each parameter */
    const char **leaf_input;
    int ntmp;
    const char *indent;
    opset *ops;
    ibc_diag *diag;
    bool failed;
} pyx;

static pyv pv_make(const char *e, bool batched, int rank, long rows, long cols)
{
    return (pyv){ e, batched, rank, rows, cols };
}

/* One line `vN = expr  # what` of the body; the temporary. */
static pyv tx_line(pyx *x, pyv v, const char *what)
{
    const char *t = arena_printf(x->a, "v%d", ++x->ntmp);
    fprintf(x->out, "%s%s = %s", x->indent, t, v.e);
    if (what) {
        fputs("  # ", x->out);
        py_comment(x->out, what);
    }
    fputc('\n', x->out);
    v.e = t;
    return v;
}

static void tx_error(pyx *x, const ast_node *n, const char *msg, const char *name)
{
    diag_error(x->diag, n->loc, msg, name);
    x->failed = true;
}

static pyv tx(pyx *x, const ast_node *n);

/* A file named in the spec, relative to the spec's directory, made
 * absolute (as the C trainer finds it). */
static const char *spec_file(ibc_arena *a, const ibc_spec *spec, const char *file)
{
    const char *spath = spec->src && spec->src->path ? spec->src->path : "./x";
    const char *slash = strrchr(spath, '/');
    const char *joined = file[0] == '/' || !slash ? file : arena_printf(a, "%.*s/%s", (int)(slash - spath), spath, file);
    char cwd[4096];
    if (joined[0] != '/' && getcwd(cwd, sizeof cwd))
        return arena_printf(a, "%s/%s", cwd, joined);
    return joined;
}

static const char *op_diag(pyx *x, const ast_node *call)
{
    int i = 0;
    while (i < x->ops->ndiag && x->ops->diag[i] != call)
        i++;
    if (i == x->ops->ndiag) {
        if (i == 16) {
            tx_error(x, call, "the torch export supports at most 16 %s operators per model", "diag");
            return "None";
        }
        x->ops->diag[x->ops->ndiag++] = call;
    }
    return arena_printf(x->a, "self._ibc_diag%d", i);
}

static const char *op_dense(pyx *x, const ast_node *call, long r, long c, bool inverse)
{
    const char *path = spec_file(x->a, x->spec, call->kids[0]->text);
    int i = 0;
    while (i < x->ops->ndense && !(!strcmp(x->ops->dense_path[i], path) && x->ops->dense_r[i] == r &&
                                   x->ops->dense_c[i] == c))
        i++;
    if (i == x->ops->ndense) {
        if (i == 16) {
            tx_error(x, call, "the torch export supports at most 16 %s files per model", "matrix");
            return "None";
        }
        x->ops->dense_path[i] = (char *)path;
        x->ops->dense[i] = call;
        x->ops->dense_r[i] = r;
        x->ops->dense_c[i] = c;
        x->ops->ndense++;
    }
    x->ops->dense_inv[i] = x->ops->dense_inv[i] || inverse;
    return arena_printf(x->a, "self._ibc_dense%d%s", i, inverse ? "_inv" : "");
}

/* A fixed operator call applied to z (transposed, inverted): the C
 * lowering's lower_op, operator by operator. */
static pyv tx_op(pyx *x, const ast_node *n, bool tr, bool inverse, pyv z, const ast_node *site)
{
    const char *dim = z.rank == 2 ? "-2" : "-1";
    const char *name = n->name, *what = arena_printf(x->a, "%s%s%s applied", unparse_str(x->a, n), tr ? "'" : "",
                                                     inverse ? "^-1" : "");
    pyv v = z;
    ibc_builtin b = n->builtin;
    if (b == IBC_B_identity)
        return z;
    if (b == IBC_B_diff) {
        const char *f = inverse ? (tr ? "_ibc_cumsum_t" : "_ibc_cumsum") : (tr ? "_ibc_diff_t" : "_ibc_diff");
        v.e = arena_printf(x->a, "%s(%s, %s)", f, z.e, dim);
        return tx_line(x, v, what);
    }
    if (b == IBC_B_dct || b == IBC_B_cosine) {
        v.e = arena_printf(x->a, "_ibc_dct(%s, %s%s)", z.e, dim, inverse != tr ? ", transpose=True" : "");
        return tx_line(x, v, what);
    }
    if (b == IBC_B_diag) {
        v.e = arena_printf(x->a, "_ibc_scale(%s, %s, %s%s)", z.e, op_diag(x, n), dim, inverse ? ", inverse=True" : "");
        return tx_line(x, v, what);
    }
    if (b == IBC_B_matrix && n->nkids == 1 && n->kids[0]->kind == AST_STR &&
        (n->shape.rows < 0 || (n->shape.rows == z.rows && n->shape.cols == z.rows) ||
         (!inverse && (tr ? n->shape.rows : n->shape.cols) == z.rows))) {
        long R = n->shape.rows < 0 ? z.rows : n->shape.rows, C = n->shape.rows < 0 ? z.rows : n->shape.cols;
        v.e = arena_printf(x->a, "_ibc_apply(%s%s, %s, %s)", op_dense(x, n, R, C, inverse), tr ? ".T" : "", z.e, dim);
        v.rows = tr ? C : R;
        return tx_line(x, v, what);
    }
    if (b == IBC_B_matrix)
        tx_error(x, site, "the torch export supports '%s' as an operator whose columns match the rows of what it "
                          "applies to (square when inverted)", name);
    else
        tx_error(x, site, "the torch export does not support the operator '%s' here (it is not square)", name);
    return z;
}

/* An operator expression (calls, transposes, compositions) applied to z,
 * or its inverse, as lower_opexpr in emit_lower.c. */
static pyv tx_opexpr(pyx *x, const ast_node *op, bool tr, bool inverse, pyv z, const ast_node *site)
{
    if (op->kind == AST_TRANSPOSE)
        return tx_opexpr(x, op->lhs, !tr, inverse, z, site);
    if (op->kind == AST_BINOP) {
        const ast_node *first = op->rhs, *second = op->lhs;   /* A (B z): B first */
        if (tr != inverse) {
            first = op->lhs;
            second = op->rhs;
        }
        return tx_opexpr(x, second, tr, inverse, tx_opexpr(x, first, tr, inverse, z, site), site);
    }
    if (z.e && !z.batched && z.rank == 0) {
        tx_error(x, site, "the torch export does not support an operator applied to a %s", "scalar");
        return z;
    }
    return tx_op(x, op, tr, inverse, z, site);
}

/* A per-sample scalar s to multiply a tensor of per-sample rank `rank`:
 * reshaped to (batch, 1, ...) when it is batched. */
static const char *scalar_for(pyx *x, pyv s, int rank)
{
    if (!s.batched || rank == 0)
        return s.e;
    return arena_printf(x->a, "%s.reshape(-1%s)", s.e, rank == 2 ? ", 1, 1" : ", 1");
}

/* a @ b with numpy's rules per sample, the batch dimension first. */
static const char *tx_matmul(pyx *x, pyv a, pyv b)
{
    if (!b.batched)   /* (batch,) op(a) @ b: matmul broadcasts a's batch */
        return arena_printf(x->a, "%s @ %s", a.e, b.e);
    if (!a.batched) {
        if (a.rank == 1 && b.rank == 1)
            return arena_printf(x->a, "%s @ %s", b.e, a.e);
        if (a.rank == 2 && b.rank == 1)
            return arena_printf(x->a, "%s @ %s.T", b.e, a.e);
        return arena_printf(x->a, "%s @ %s", a.e, b.e);   /* (k) or (m, k) @ (batch, k, n) */
    }
    if (a.rank == 1 && b.rank == 1)
        return arena_printf(x->a, "torch.einsum(\"bk,bk->b\", %s, %s)", a.e, b.e);
    if (a.rank == 2 && b.rank == 1)
        return arena_printf(x->a, "torch.einsum(\"bmk,bk->bm\", %s, %s)", a.e, b.e);
    if (a.rank == 1 && b.rank == 2)
        return arena_printf(x->a, "torch.einsum(\"bk,bkn->bn\", %s, %s)", a.e, b.e);
    return arena_printf(x->a, "%s @ %s", a.e, b.e);
}

static void dims_of(const ibc_shape *s, long *r, long *c)
{
    *r = s->rank == 0 ? 1 : s->rows;
    *c = s->rank == 2 ? s->cols : 1;
}

static pyv tx(pyx *x, const ast_node *n)
{
    long r, c;
    dims_of(&n->shape, &r, &c);
    const char *what = unparse_str(x->a, n);
    char nb[40];
    if (n->is_const)
        return pv_make(arena_printf(x->a, "%s", py_num(nb, n->value)), false, 0, 1, 1);
    pyv v = pv_make(NULL, false, n->shape.rank, r, c);
    switch (n->kind) {
    case AST_IDENT:
        if (n->ref_kind == IBC_REF_PARAM)
            return pv_make(x->leaf_param[n->ref], false, n->shape.rank, r, c);
        if (n->ref_kind == IBC_REF_INPUT)
            return pv_make(x->leaf_input[n->ref], true, n->shape.rank, r, c);
        tx_error(x, n, "the torch export does not support the name '%s' here", n->name);
        return pv_make("None", false, 0, 1, 1);
    case AST_NEG: {
        pyv a = tx(x, n->lhs);
        v.batched = a.batched;
        v.e = arena_printf(x->a, "-%s", a.e);
        return tx_line(x, v, what);
    }
    case AST_TRANSPOSE: {
        pyv a = tx(x, n->lhs);
        v.batched = a.batched;
        v.e = arena_printf(x->a, "%s.transpose(-1, -2)", a.e);
        return tx_line(x, v, what);
    }
    case AST_BINOP: {
        if (n->op == '@' && ast_is_operator_expr(n->lhs)) {
            pyv z = tx(x, n->rhs);
            if (z.e && !z.batched && n->rhs->is_const) {
                tx_error(x, n, "the torch export does not support an operator applied to a %s", "constant");
                return z;
            }
            return tx_opexpr(x, n->lhs, false, false, z, n);
        }
        pyv a = tx(x, n->lhs), b = tx(x, n->rhs);
        v.batched = a.batched || b.batched;
        switch (n->op) {
        case '@':
            if (n->lhs->is_const || n->rhs->is_const) {
                tx_error(x, n, "the torch export does not support a %s operand of '@'", "constant");
                return v;
            }
            v.e = tx_matmul(x, a, b);
            break;
        case '*':
            if (a.rank == 0 && b.rank != 0)
                v.e = arena_printf(x->a, "%s * %s", scalar_for(x, a, b.rank), b.e);
            else if (b.rank == 0 && a.rank != 0)
                v.e = arena_printf(x->a, "%s * %s", a.e, scalar_for(x, b, a.rank));
            else
                v.e = arena_printf(x->a, "%s * %s", a.e, b.e);
            break;
        case '/': v.e = arena_printf(x->a, "%s / %s", a.e, scalar_for(x, b, a.rank)); break;
        case '+': v.e = arena_printf(x->a, "%s + %s", a.e, b.e); break;
        default: v.e = arena_printf(x->a, "%s - %s", a.e, b.e); break;
        }
        return tx_line(x, v, what);
    }
    case AST_CALL: {
        const char *f = n->name;
        ibc_builtin fb = n->builtin;
        if (fb == IBC_B_solve)
            return tx_opexpr(x, n->kids[0], false, true, tx(x, n->kids[1]), n);
        if (n->nkids != 1) {
            tx_error(x, n, "the torch export does not support '%s' here", f);
            return v;
        }
        pyv a = tx(x, n->kids[0]);
        v.batched = a.batched;
        if (fb == IBC_B_cumsum) {
            if (!a.batched && n->kids[0]->is_const) {
                tx_error(x, n, "the torch export does not support cumsum of a %s", "constant");
                return v;
            }
            v.e = arena_printf(x->a, "torch.cumsum(%s, dim=-1)", a.e);
        } else if (fb == IBC_B_relu || fb == IBC_B_tanh || fb == IBC_B_sigmoid || fb == IBC_B_exp)
            v.e = arena_printf(x->a, "torch.%s(%s)", f, a.e);
        else if (fb == IBC_B_softmax)
            v.e = arena_printf(x->a, "torch.softmax(%s, dim=-1)", a.e);   /* each row; a vector is one row */
        else if (fb == IBC_B_sum) {
            if (a.rank == 0)
                return a;
            v.rank = 0;
            v.rows = v.cols = 1;
            v.e = a.batched ? arena_printf(x->a, "%s.sum(dim=%s)", a.e, a.rank == 2 ? "(-2, -1)" : "-1")
                            : arena_printf(x->a, "%s.sum()", a.e);
        } else if (fb == IBC_B_transpose)
            v.e = arena_printf(x->a, "%s.transpose(-1, -2)", a.e);
        else {
            tx_error(x, n, "the torch export does not support '%s' here", f);
            return v;
        }
        return tx_line(x, v, what);
    }
    default:
        tx_error(x, n, "the torch export does not support %s", "this expression");
        return pv_make("None", false, 0, 1, 1);
    }
}

/* ----------------------------------------------------------- the module */

typedef struct {
    const char *cls;            /* Python class */
    const char *base;           /* its base class */
    const char *name;           /* the C trainer's name: designed, vanilla, l1, model */
    const ibc_spec *spec;       /* its parameters and predictor */
    const sym_derivation *deriv;
    double lr, l1;
    int l1_param;               /* the penalised parameter, -1: all */
    bool unbalance;
    bool designed;
    bool in_trainer;            /* one of the C trainer's models (MODELS) */
    const char **attr;          /* Python attribute of each parameter */
    const char **arg;           /* Python argument of each input */
    opset ops;
} pymodel;

typedef struct {
    FILE *out;
    ibc_arena *a;
    const ibc_spec *spec;
    const design_result *design;
    ibc_diag *diag;
    bool failed;
} pyemit;

#define P(...) fprintf(pe->out, __VA_ARGS__)

/* The fixed helpers every module has (no spec text in them). */
static const char *const py_helpers =
    "# ---------------------------------------------------------------- operators\n"
    "# A fixed operator applied along dimension `dim` of z: -1 for a vector's\n"
    "# entries, -2 for each column of a matrix (the batch dimension first, as\n"
    "# everywhere in this module).  O(n) where the structure allows, as in the\n"
    "# C trainer (runtime/ops.c); the DCT in O(n log n) through the FFT;\n"
    "# operators read from files are dense matrices.\n"
    "\n\n"
    "def _ibc_diff(z, dim):\n"
    "    \"\"\"diff(n) z: z_0, z_1 - z_0, ..., z_(n-1) - z_(n-2).\"\"\"\n"
    "    return torch.diff(z, dim=dim, prepend=torch.zeros_like(z.narrow(dim, 0, 1)))\n"
    "\n\n"
    "def _ibc_diff_t(z, dim):\n"
    "    \"\"\"diff(n)' z: z_i - z_(i+1), and z_(n-1) last.\"\"\"\n"
    "    return -torch.diff(z, dim=dim, append=torch.zeros_like(z.narrow(dim, 0, 1)))\n"
    "\n\n"
    "def _ibc_cumsum(z, dim):\n"
    "    \"\"\"diff(n)^-1 z: the running sum.\"\"\"\n"
    "    return torch.cumsum(z, dim=dim)\n"
    "\n\n"
    "def _ibc_cumsum_t(z, dim):\n"
    "    \"\"\"(diff(n)^-1)' z: the running sum from the end.\"\"\"\n"
    "    return torch.flip(torch.cumsum(torch.flip(z, (dim,)), dim=dim), (dim,))\n"
    "\n\n"
    "def _ibc_apply(m, z, dim):\n"
    "    \"\"\"The matrix m applied along dimension dim of z.\"\"\"\n"
    "    return m @ z if dim == -2 else z @ m.transpose(0, 1)\n"
    "\n\n"
    "def _ibc_scale(z, d, dim, inverse=False):\n"
    "    \"\"\"diag(d) z, or diag(d)^-1 z.\"\"\"\n"
    "    if dim == -2:\n"
    "        d = d.unsqueeze(-1)\n"
    "    return z / d if inverse else z * d\n"
    "\n\n"
    "def _ibc_dct_matrix(n, dtype):\n"
    "    \"\"\"dct(n) as a matrix, its definition: the orthonormal DCT-II of\n"
    "    runtime/ops.c, row k is c_k cos(pi (i + 1/2) k / n), c_0 = sqrt(1/n),\n"
    "    c_k = sqrt(2/n), the argument pi (2i + 1) k / (2n) with (2i + 1) k\n"
    "    reduced modulo 4n first, as there.  Not used by the models (_ibc_dct\n"
    "    applies it in O(n log n)); tests/torch compares the two.\"\"\"\n"
    "    i = torch.arange(n, dtype=torch.int64).unsqueeze(0)\n"
    "    k = torch.arange(n, dtype=torch.int64).unsqueeze(1)\n"
    "    r = ((2 * i + 1) * k % (4 * n)).to(torch.float64)\n"
    "    c = torch.full((n, 1), math.sqrt(2.0 / n), dtype=torch.float64)\n"
    "    c[0, 0] = math.sqrt(1.0 / n)\n"
    "    return (c * torch.cos(math.pi * r / (2 * n))).to(dtype)\n"
    "\n\n"
    "def _ibc_dct(z, dim, transpose=False):\n"
    "    \"\"\"dct(n) z along dimension dim (n = its length), or dct(n)' z, which is\n"
    "    also dct(n)^-1 z (the DCT is orthonormal); O(n log n) through the FFT.\n"
    "    With c_k as in _ibc_dct_matrix and theta_k = pi k / (2 n),\n"
    "    cos(pi (i + 1/2) k / n) = Re(e^(-i theta_k) e^(-2 pi i i k / (2 n))), so\n"
    "      (dct z)_k  = c_k Re(e^(-i theta_k) F_k), F the DFT of length 2n of z\n"
    "                   (zero-padded);\n"
    "      (dct' y)_i = Re sum_k c_k y_k e^(i theta_k) e^(2 pi i i k / (2 n)), 2n times\n"
    "                   the inverse DFT of length 2n of (c_k y_k e^(i theta_k)).\"\"\"\n"
    "    if dim == -2:\n"
    "        return _ibc_dct(z.transpose(-1, -2), -1, transpose).transpose(-1, -2)\n"
    "    n = z.shape[-1]\n"
    "    theta = (math.pi / (2 * n)) * torch.arange(n, dtype=z.dtype, device=z.device)\n"
    "    c = torch.full((n,), math.sqrt(2.0 / n), dtype=z.dtype, device=z.device)\n"
    "    c[0] = math.sqrt(1.0 / n)\n"
    "    if not transpose:\n"
    "        f = torch.fft.rfft(z, n=2 * n, dim=-1)[..., :n]\n"
    "        return c * (torch.cos(theta) * f.real + torch.sin(theta) * f.imag)\n"
    "    y = c * z\n"
    "    w = torch.complex(y * torch.cos(theta), y * torch.sin(theta))\n"
    "    return torch.fft.ifft(w, n=2 * n, dim=-1)[..., :n].real * (2 * n)\n"
    "\n\n"
    "def _ibc_read_matrix(path, rows, cols, dtype):\n"
    "    \"\"\"A dense operator from its file, .npy when the name ends so and CSV\n"
    "    otherwise, as the C trainer reads it; it must be rows x cols.\"\"\"\n"
    "    if path.endswith(\".npy\"):\n"
    "        shape, values = _ibc_read_npy(path)\n"
    "        if len(shape) == 1:\n"
    "            shape = (shape[0], 1)\n"
    "    else:\n"
    "        shape, values = _ibc_read_csv(path)\n"
    "    if tuple(shape) != (rows, cols):\n"
    "        raise ValueError(\"%s: the operator must be %d x %d, the file holds %s\"\n"
    "                         % (path, rows, cols, \" x \".join(str(s) for s in shape)))\n"
    "    return torch.tensor(values, dtype=torch.float64).reshape(rows, cols).to(dtype)\n"
    "\n\n"
    "def _ibc_read_csv(path):\n"
    "    \"\"\"Rows of comma-separated numbers; '#' comment lines, blank lines and\n"
    "    one header line before the numbers are skipped.\"\"\"\n"
    "    rows, header = [], False\n"
    "    with open(path, encoding=\"utf-8-sig\") as f:\n"
    "        for number, line in enumerate(f, 1):\n"
    "            line = line.strip()\n"
    "            if not line or line.startswith(\"#\"):\n"
    "                continue\n"
    "            try:\n"
    "                rows.append([float(cell) for cell in line.split(\",\")])\n"
    "            except ValueError:\n"
    "                if rows or header:\n"
    "                    raise ValueError(\"%s:%d: expected numbers, got %r\" % (path, number, line)) from None\n"
    "                header = True\n"
    "    if not rows or any(len(r) != len(rows[0]) for r in rows):\n"
    "        raise ValueError(\"%s: expected rows of numbers, all of the same length\" % path)\n"
    "    return (len(rows), len(rows[0])), [v for r in rows for v in r]\n"
    "\n\n"
    "def _ibc_read_npy(path):\n"
    "    \"\"\"A little-endian float64, float32, int64 or int32 .npy array in C order:\n"
    "    (shape, values as a flat list).\"\"\"\n"
    "    with open(path, \"rb\") as f:\n"
    "        data = f.read()\n"
    "    if data[:6] != b\"\\x93NUMPY\" or len(data) < 10:\n"
    "        raise ValueError(\"%s: not a .npy file\" % path)\n"
    "    wide = data[6] >= 2\n"
    "    start = 12 if wide else 10\n"
    "    size = struct.unpack(\"<I\" if wide else \"<H\", data[8:start])[0]\n"
    "    header = ast.literal_eval(data[start:start + size].decode(\"latin1\"))\n"
    "    codes = {\"<f8\": \"d\", \"<f4\": \"f\", \"<i8\": \"q\", \"<i4\": \"i\"}\n"
    "    if not isinstance(header, dict) or header.get(\"descr\") not in codes or header.get(\"fortran_order\"):\n"
    "        raise ValueError(\"%s: expected a little-endian float or int array in C order\" % path)\n"
    "    shape = tuple(header[\"shape\"])\n"
    "    count = 1\n"
    "    for s in shape:\n"
    "        count *= s\n"
    "    code = codes[header[\"descr\"]]\n"
    "    body = data[start + size:start + size + count * struct.calcsize(code)]\n"
    "    if len(body) != count * struct.calcsize(code):\n"
    "        raise ValueError(\"%s: the file ends before its %d values\" % (path, count))\n"
    "    return shape, [float(v) for v in struct.unpack(\"<%d%s\" % (count, code), body)]\n"
    "\n\n"
    "def _ibc_write_npy(path, tensor, shape):\n"
    "    \"\"\"tensor as a little-endian float64 .npy file of the given shape,\n"
    "    written beside and renamed: never a half-written file.\"\"\"\n"
    "    values = tensor.detach().to(device=\"cpu\", dtype=torch.float64).reshape(-1).tolist()\n"
    "    header = \"{'descr': '<f8', 'fortran_order': False, 'shape': %r, }\" % (tuple(shape),)\n"
    "    header += \" \" * (-(len(header) + 11) % 64) + \"\\n\"\n"
    "    tmp = \"%s.tmp.%d\" % (path, os.getpid())\n"
    "    with open(tmp, \"wb\") as f:\n"
    "        f.write(b\"\\x93NUMPY\\x01\\x00\" + struct.pack(\"<H\", len(header)) + header.encode(\"latin1\"))\n"
    "        f.write(struct.pack(\"<%dd\" % len(values), *values))\n"
    "    os.replace(tmp, path)\n"
    "\n\n"
    "# ------------------------------------------------------ initialisation\n"
    "\n\n"
    "def _ibc_normal(shape, mean, std, generator, dtype):\n"
    "    return mean + std * torch.randn(shape, generator=generator, dtype=dtype)\n"
    "\n\n"
    "def _ibc_uniform(shape, lo, hi, generator, dtype):\n"
    "    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=dtype)\n"
    "\n\n"
    "def _ibc_draw(kind, a, b, generator):\n"
    "    \"\"\"One scalar draw of normal(a, b) or uniform(a, b).\"\"\"\n"
    "    if kind == \"normal\":\n"
    "        return a + b * torch.randn((), generator=generator, dtype=torch.float64).item()\n"
    "    return a + (b - a) * torch.rand((), generator=generator, dtype=torch.float64).item()\n"
    "\n\n"
    "# ------------------------------------------------------ symmetry blocks\n"
    "\n\n"
    "def _ibc_block_sq(p, rows, cols, kind, count, sets=None):\n"
    "    \"\"\"The squared norm n_p of a block of a symmetry family at each of the\n"
    "    family's `count` indices: p as rows x cols in row-major order (the C\n"
    "    trainer's layout); kind is \"whole\", \"row\", \"col\", \"entry\" or \"set\" (sets:\n"
    "    the owning index of each entry, and the entries).\"\"\"\n"
    "    q = p.reshape(rows, cols)\n"
    "    q = q * q\n"
    "    if kind == \"row\":\n"
    "        return q.sum(1)\n"
    "    if kind == \"col\":\n"
    "        return q.sum(0)\n"
    "    if kind == \"entry\":\n"
    "        return q.reshape(-1)\n"
    "    if kind == \"set\":\n"
    "        owner = torch.tensor(sets[0], device=p.device)\n"
    "        entries = torch.tensor(sets[1], device=p.device)\n"
    "        return torch.zeros(count, dtype=p.dtype, device=p.device).index_add(0, owner, q.reshape(-1)[entries])\n"
    "    return q.sum().expand(count)\n"
    "\n\n"
    "def _ibc_leg(p, rows, cols, along_rows, left):\n"
    "    \"\"\"A GL junction's factor p (rows x cols) as the matrix of the product\n"
    "    A B it takes part in: the contracted index last (left) or first (right);\n"
    "    along_rows: the index runs over p's rows (a vector: its entries).\"\"\"\n"
    "    q = p.reshape(rows, cols)\n"
    "    if left:\n"
    "        return q.transpose(0, 1) if along_rows else q\n"
    "    return q if along_rows else q.transpose(0, 1)\n"
    "\n\n"
    "def _ibc_log_pairs(s):\n"
    "    \"\"\"sum over i, j of log(s_i + s_j).\"\"\"\n"
    "    return torch.log(s.unsqueeze(0) + s.unsqueeze(1)).sum()\n"
    "\n\n";

/* ------------------------------------------------------------ the model */

static const char *slice_kind(sym_slice s)
{
    switch (s) {
    case SYM_SLICE_ROW: return "row";
    case SYM_SLICE_COL: return "col";
    case SYM_SLICE_ENTRY: return "entry";
    case SYM_SLICE_SET: return "set";
    default: return "whole";
    }
}

static void shape_tuple(FILE *o, const ibc_var *v, bool npy)
{
    if (v->shape.rank == 0)
        fputs(npy ? "(1,)" : "()", o);
    else if (v->shape.rank == 1)
        fprintf(o, "(%ld,)", v->shape.rows);
    else
        fprintf(o, "(%ld, %ld)", v->shape.rows, v->shape.cols);
}

static const char *shape_text(ibc_arena *a, const ibc_shape *s)
{
    return s->rank == 0 ? "scalar" : s->rank == 1 ? arena_printf(a, "vector[%ld]", s->rows)
                                                  : arena_printf(a, "matrix[%ld, %ld]", s->rows, s->cols);
}

/* An initialisation expression's scalar factor, drawn once per parameter
 * (emit_data.c: emit_init_expr; abs and sqrt of draws). */
static void py_init_scalar(pyemit *pe, const ast_node *n)
{
    char nb[40];
    switch (n->kind) {
    case AST_NEG:
        P("(-");
        py_init_scalar(pe, n->lhs);
        P(")");
        return;
    case AST_BINOP:
        P("(");
        py_init_scalar(pe, n->lhs);
        P(" %c ", n->op == '@' ? '*' : n->op);
        py_init_scalar(pe, n->rhs);
        P(")");
        return;
    case AST_CALL:
        if (n->builtin == IBC_B_normal || n->builtin == IBC_B_uniform) {
            P("_ibc_draw(\"%s\", %s, ", n->name, py_num(nb, n->kids[0]->value));
            P("%s, generator)", py_num(nb, n->kids[1]->value));
        } else if (n->builtin == IBC_B_constant)
            P("%s", py_num(nb, n->kids[0]->value));
        else if (n->builtin == IBC_B_zeros)
            P("0.0");
        else if (n->builtin == IBC_B_abs || n->builtin == IBC_B_sqrt) {
            P("%s(", n->builtin == IBC_B_abs ? "abs" : "math.sqrt");
            py_init_scalar(pe, n->kids[0]);
            P(")");
        } else
            P("0.0");
        return;
    default: P("%s", py_num(nb, n->value)); return;
    }
}

static void py_init_param(pyemit *pe, const pymodel *m, size_t i)
{
    const ibc_var *v = &m->spec->params[i];
    const char *at = m->attr[i];
    char nb[40];
    P("            # %s ~ ", at);
    if (v->init)
        py_comment(pe->out, unparse_str(pe->a, v->init));
    else
        P("normal(0, 0.1) (the default)");
    P("\n");
    const ast_node *factor = NULL, *dist = v->init ? ast_init_dist(v->init, &factor) : NULL;
    P("            self.%s.copy_(", at);
    if (factor) {
        py_init_scalar(pe, factor);
        P(" * ");
    }
    ibc_builtin kind = dist ? dist->builtin : IBC_B_normal;
    if (kind == IBC_B_normal) {
        P("_ibc_normal(self.%s.shape, %s, ", at, py_num(nb, dist ? dist->kids[0]->value : 0));
        P("%s, generator, self.%s.dtype))\n", py_num(nb, dist ? dist->kids[1]->value : 0.1), at);
    } else if (kind == IBC_B_uniform) {
        P("_ibc_uniform(self.%s.shape, %s, ", at, py_num(nb, dist->kids[0]->value));
        P("%s, generator, self.%s.dtype))\n", py_num(nb, dist->kids[1]->value), at);
    } else if (kind == IBC_B_constant) {
        P("torch.full_like(self.%s, %s))\n", at, py_num(nb, dist->kids[0]->value));
    } else {
        P("torch.zeros_like(self.%s))\n", at);
    }
}

/* The squared block norms of family f as locals n<f>_<p>, each a tensor
 * over the family's indices. */
static void py_block_norms(pyemit *pe, const pymodel *m, const sym_family *fam, size_t f)
{
    for (int b = 0; b < fam->nblocks; b++) {
        const sym_block *bl = &fam->blocks[b];
        const ibc_var *v = &m->spec->params[bl->param];
        long R, C;
        dims_of(&v->shape, &R, &C);
        P("        n%zu_%d = _ibc_block_sq(self.%s, %ld, %ld, \"%s\", %ld", f + 1, b, m->attr[bl->param], R, C,
          slice_kind(bl->slice), fam->count);
        if (bl->slice == SYM_SLICE_SET)
            P(", self._IBC_SET_%zu_%d", f + 1, b);
        P(")  # ||");
        py_comment(pe->out, bl->text);
        P("||^2\n");
    }
}

/* chi_a = 1/2 sum_p alpha_ap n_p for generator a of family f */
static void py_chi_expr(pyemit *pe, const sym_family *fam, size_t f, int a)
{
    P("0.5 * (");
    bool first = true;
    for (int b = 0; b < fam->nblocks; b++) {
        long al = fam->alpha[a][b];
        if (!al)
            continue;
        const char *coef = labs(al) == 1 ? "" : arena_printf(pe->a, "%ld * ", labs(al));
        if (first)
            P("%s%sn%zu_%d", al < 0 ? "-" : "", coef, f + 1, b);
        else
            P(" %c %sn%zu_%d", al < 0 ? '-' : '+', coef, f + 1, b);
        first = false;
    }
    if (first)
        P("0.0");
    P(")");
}

/* The derivation's methods of a model: dual_slices, balance,
 * predicted_bias, and their descriptions (DERIVED). */
static void py_derived_methods(pyemit *pe, const pymodel *m)
{
    const sym_derivation *d = m->deriv;
    size_t nf = d ? sym_nfamilies(d) : 0, ng = d ? sym_ngroups(d) : 0;
    char nb[40], nb2[40];
    bool any;

    /* the sets of entries of set blocks, as (owner, entries) tuples */
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        for (int b = 0; b < fam->nblocks; b++) {
            const sym_block *bl = &fam->blocks[b];
            if (bl->slice != SYM_SLICE_SET)
                continue;
            P("    # family %zu: the entries of %s in each set %s (row-major), and their index\n", f + 1,
              m->attr[bl->param], bl->set_name);
            P("    _IBC_SET_%zu_%d = ((", f + 1, b);
            for (long i = 0; i < fam->count; i++)
                for (long t = bl->set_start[i]; t < bl->set_start[i + 1]; t++)
                    P("%ld, ", i);
            P("), (");
            for (long t = 0; t < bl->set_start[fam->count]; t++)
                P("%ld, ", bl->set_entries[t]);
            P("))\n");
        }
    }

    /* DERIVED: what each key of the methods' results is */
    P("    # The keys of dual_slices(), balance() and predicted_bias(), from the derivation.\n");
    P("    DERIVED = {\n");
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        P("        \"chi%zu\": ", f + 1);
        char *t = arena_printf(pe->a, "family %zu, %s: ", f + 1, fam->name);
        for (int ga = 0; ga < fam->k; ga++) {
            t = arena_printf(pe->a, "%s%s1/2 (", t, ga ? "; " : "chi = ");
            bool first = true;
            for (int b = 0; b < fam->nblocks; b++) {
                long al = fam->alpha[ga][b];
                if (!al)
                    continue;
                t = arena_printf(pe->a, "%s%s%s||%s||^2", t, first ? (al < 0 ? "-" : "") : (al < 0 ? " - " : " + "),
                                 labs(al) == 1 ? "" : arena_printf(pe->a, "%ld ", labs(al)), fam->blocks[b].text);
                first = false;
            }
            t = arena_printf(pe->a, "%s)", t);
        }
        t = arena_printf(pe->a, "%s, at each of %ld indices%s", t, fam->count,
                         fam->k > 1 ? arena_printf(pe->a, " (a column per generator: %d)", fam->k) : "");
        py_str(pe->out, t);
        P(",\n");
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL)
            continue;
        P("        \"C%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: C = Gram(%s) - Gram(%s), %ld x %ld", g + 1, gr->text,
                                     m->spec->params[gr->left.param].name, m->spec->params[gr->right.param].name,
                                     gr->r, gr->r));
        P(",\n");
    }
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->nblocks == 2 && fam->k == 1) {
            P("        \"ratio%zu\": ", f + 1);
            py_str(pe->out, arena_printf(pe->a, "family %zu: ||%s|| / ||%s|| at each index", f + 1, fam->blocks[0].text,
                                         fam->blocks[1].text));
            P(",\n");
        }
        if (fam->min_kind == SYM_MIN_ATTAINED) {
            P("        \"bias%zu\": ", f + 1);
            py_str(pe->out, arena_printf(pe->a, "family %zu: sum over indices of min over the orbit of log det G = "
                                                "sum of [%s log(%s) + %s] (times 1/(2 beta))",
                                         f + 1, fam->coefficient, fam->invariant, fam->constant));
            P(",\n");
        }
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL || !gr->full_rank)
            continue;
        P("        \"bias_group%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: sum_{i,j} log(sigma_i + sigma_j), sigma the singular "
                                            "values of the product (times 1/(2 beta)); the minimum over the whole "
                                            "group's orbit, when the product has rank %ld",
                                     g + 1, gr->text, gr->r));
        P(",\n");
    }
    P("    }\n\n");

    /* BIAS_NOT_COVERED: the biases predicted_bias leaves out, and why */
    P("    # The biases predicted_bias() does not give (no closed-form orbit minimum;\n"
      "    # a GL junction whose product cannot reach full rank), each with the reason.\n");
    P("    BIAS_NOT_COVERED = {");
    any = false;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->min_kind == SYM_MIN_ATTAINED)
            continue;
        P("\n        \"bias%zu\": ", f + 1);
        py_str(pe->out, arena_printf(pe->a, "family %zu, %s: %s", f + 1, fam->name, fam->min_text));
        P(",");
        any = true;
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL || gr->full_rank)
            continue;
        P("\n        \"bias_group%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: not derived: the product has rank below %ld, which the "
                                            "formula sum_{i,j} log(sigma_i + sigma_j) needs", g + 1, gr->text, gr->r));
        P(",");
        any = true;
    }
    P("%s}\n\n", any ? "\n    " : "");

    /* RATIO_PREDICTIONS */
    P("    # The two exact predictions of each ratio (docs/theory.md §4): at the log det G\n"
      "    # minimiser and on the dual slice chi = 0 (None: no such prediction).\n");
    P("    RATIO_PREDICTIONS = {");
    any = false;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        double rl, rd;
        sym_balance_predictions(fam, &rl, &rd);
        P("%s\n        \"ratio%zu\": {\"logdet_min\": %s, \"dual_slice\": %s}", any ? "," : "", f + 1,
          isfinite(rl) ? py_num(nb, rl) : "None", isfinite(rd) ? py_num(nb2, rd) : "None");
        any = true;
    }
    P("%s}\n\n", any ? ",\n    " : "");

    /* dual_slices */
    P("    def dual_slices(self):\n");
    P("        \"\"\"The derived dual slices at the current parameters (keys: DERIVED):\n"
      "        chi<f> per torus family (one value per index, or per index and\n"
      "        generator), C<g> per GL(r) junction.  Gradient flow conserves them;\n"
      "        an SGD step with gradient g moves each by lr^2 times its value at g.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        py_block_norms(pe, m, fam, f);
        if (fam->k == 1) {
            P("        out[\"chi%zu\"] = ", f + 1);
            py_chi_expr(pe, fam, f, 0);
            P("\n");
        } else {
            P("        out[\"chi%zu\"] = torch.stack([", f + 1);
            for (int a = 0; a < fam->k; a++) {
                if (a)
                    P(", ");
                py_chi_expr(pe, fam, f, a);
            }
            P("], dim=1)\n");
        }
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL)
            continue;
        long R[2], C[2];
        const sym_leg *leg[2] = { &gr->left, &gr->right };
        for (int s = 0; s < 2; s++)
            dims_of(&m->spec->params[leg[s]->param].shape, &R[s], &C[s]);
        P("        # group %zu: ", g + 1);
        py_comment(pe->out, gr->text);
        P("\n");
        for (int s = 0; s < 2; s++) {
            const ibc_var *v = &m->spec->params[leg[s]->param];
            P("        %s = _ibc_leg(self.%s, %ld, %ld, %s, %s)\n", s ? "b" : "a", m->attr[leg[s]->param], R[s], C[s],
              v->shape.rank < 2 || leg[s]->rows ? "True" : "False", s ? "False" : "True");
        }
        P("        out[\"C%zu\"] = a.T @ a - b @ b.T\n", g + 1);
    }
    P("        return out\n\n");

    /* balance */
    P("    def balance(self):\n");
    P("        \"\"\"The norm ratio of each two-block family at each index (keys: DERIVED),\n"
      "        to compare with RATIO_PREDICTIONS.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        py_block_norms(pe, m, fam, f);
        P("        out[\"ratio%zu\"] = torch.sqrt(n%zu_0 / n%zu_1)\n", f + 1, f + 1, f + 1);
    }
    P("        return out\n\n");

    /* predicted_bias */
    P("    def predicted_bias(self, per_index=False):\n");
    P("        \"\"\"The implicit bias the derivation predicts, at the current parameters\n"
      "        (keys: DERIVED): for each torus family whose orbit minimum of log det G\n"
      "        is in closed form, the sum over its indices of that minimum, by the\n"
      "        dual weights delta_S of its terms c_S prod n_p, sum_S delta_S (log c_S -\n"
      "        log delta_S + sum_{p in S} log n_p) (per_index: one value per index);\n"
      "        for each GL junction of full rank, sum_{i,j} log(sigma_i + sigma_j).\n"
      "        The bias SGD adds is 1/(2 beta) times these.  Families or groups that\n"
      "        share a parameter are coupled: their sum is not the model's log det G\n"
      "        (see the docstring's derivation).  The others are left out, and\n"
      "        BIAS_NOT_COVERED says why.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->min_kind != SYM_MIN_ATTAINED)
            continue;
        py_block_norms(pe, m, fam, f);
        P("        b = 0.0");
        /* one weight per group of terms (terms with equal orbit exponents
         * merged: delta_g log(C_g / delta_g), C_g the group's sum) */
        for (int g = 0; g < fam->ndelta; g++) {
            double dl = sym_rat_double(fam->delta[g]);
            int nin = 0, t = -1;
            for (int u = 0; u < fam->nterms; u++)
                if (fam->term_group[u] == g) {
                    nin++;
                    t = t < 0 ? u : t;
                }
            if (!(dl > 0) || !nin)
                continue;
            if (nin == 1) {
                P(" + %s * (math.log(%ld / %s)", py_num(nb, dl), fam->term_coef[t], py_num(nb2, dl));
                for (int b = 0; b < fam->nblocks; b++)
                    if (fam->term_set[t] & (1u << b))
                        P(" + torch.log(n%zu_%d)", f + 1, b);
                P(")");
                continue;
            }
            P(" + %s * (torch.log(", py_num(nb, dl));
            for (int u = t; u < fam->nterms; u++) {
                if (fam->term_group[u] != g)
                    continue;
                P("%s%ld", u > t ? " + " : "", fam->term_coef[u]);
                for (int b = 0; b < fam->nblocks; b++)
                    if (fam->term_set[u] & (1u << b))
                        P(" * n%zu_%d", f + 1, b);
            }
            P(") - math.log(%s))", py_num(nb2, dl));
        }
        P("\n        out[\"bias%zu\"] = b if per_index else b.sum()\n", f + 1);
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL || !gr->full_rank)
            continue;
        long R[2], C[2];
        const sym_leg *leg[2] = { &gr->left, &gr->right };
        for (int s = 0; s < 2; s++)
            dims_of(&m->spec->params[leg[s]->param].shape, &R[s], &C[s]);
        for (int s = 0; s < 2; s++) {
            const ibc_var *v = &m->spec->params[leg[s]->param];
            P("        %s = _ibc_leg(self.%s, %ld, %ld, %s, %s)\n", s ? "b" : "a", m->attr[leg[s]->param], R[s], C[s],
              v->shape.rank < 2 || leg[s]->rows ? "True" : "False", s ? "False" : "True");
        }
        P("        s = torch.linalg.svdvals(a @ b)[:%ld]\n", gr->r);
        P("        out[\"bias_group%zu\"] = _ibc_log_pairs(s)\n", g + 1);
    }
    P("        return out\n");
}

/* The buffers of the operators a class applies, in __init__. */
static void py_op_buffers(pyemit *pe, const opset *o, const char *ind)
{
    char nb[40];
    for (int i = 0; i < o->ndiag; i++) {
        const ast_node *l = o->diag[i]->kids[0];
        P("%sself.register_buffer(\"_ibc_diag%d\", torch.tensor([", ind, i);
        for (size_t j = 0; j < l->nkids; j++)
            P("%s%s", j ? ", " : "", py_num(nb, l->kids[j]->value));
        P("], dtype=dtype), persistent=False)\n");
    }
    for (int i = 0; i < o->ndense; i++) {
        P("%s# matrix(", ind);
        py_comment(pe->out, o->dense[i]->kids[0]->text);
        P("), read from its file as the C trainer reads it\n");
        P("%sdense = _ibc_read_matrix(", ind);
        py_str(pe->out, o->dense_path[i]);
        P(", %ld, %ld, torch.float64)\n", o->dense_r[i], o->dense_c[i]);
        P("%sself.register_buffer(\"_ibc_dense%d\", dense.to(dtype), persistent=False)\n", ind, i);
        if (o->dense_inv[i])
            P("%sself.register_buffer(\"_ibc_dense%d_inv\", torch.linalg.inv(dense).to(dtype), persistent=False)\n",
              ind, i);
    }
}

/* Translates expr into a method body (written to a buffer, since the
 * operators it needs go in __init__ before it); returns the text and
 * the result. */
static char *py_translate(pyemit *pe, pymodel *m, const ast_node *expr, const char **leaf_param, const char *indent,
                          pyv *result)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        fputs("ibc: fatal: out of memory\n", stderr);
        exit(70);
    }
    pyx x = { .out = mem, .a = pe->a, .spec = m->spec, .leaf_param = leaf_param, .leaf_input = m->arg,
              .indent = indent, .ops = &m->ops, .diag = pe->diag };
    *result = tx(&x, expr);
    fclose(mem);
    if (x.failed)
        pe->failed = true;
    return buf;
}

static const char *out_shape_text(ibc_arena *a, bool batched, const ibc_shape *s)
{
    const char *b = batched ? "batch" : "";
    if (s->rank == 0)
        return batched ? "(batch,)" : "a 0-d tensor";
    if (s->rank == 1)
        return arena_printf(a, "(%s%s%ld)", b, batched ? ", " : "", s->rows);
    return arena_printf(a, "(%s%s%ld, %ld)", b, batched ? ", " : "", s->rows, s->cols);
}

static void py_model_class(pyemit *pe, pymodel *m)
{
    const ibc_spec *s = m->spec;
    char nb[40];
    const char **self_param = arena_alloc(pe->a, (s->nparams + 1) * sizeof *self_param);
    for (size_t i = 0; i < s->nparams; i++)
        self_param[i] = arena_printf(pe->a, "self.%s", m->attr[i]);
    bool subclass = strcmp(m->base, "_IbcModel") != 0;   /* L1: its base has the rest */
    pyv res = { 0 };
    char *fwd = subclass ? NULL : py_translate(pe, m, s->predict, self_param, "        ", &res);
    char *wfun = NULL;
    pyv wres = { 0 };
    if (!subclass && m->designed && pe->design && pe->design->replacement)
        wfun = py_translate(pe, m, pe->design->replacement, self_param, "        ", &wres);

    P("\n\nclass %s(%s):\n", m->cls, m->base);
    P("    \"\"\"");
    if (m->designed) {
        py_str_body(pe->out, arena_printf(pe->a, "The designed model: %s, for %s;\n    the C trainer's model "
                                                 "'designed'.",
                                          pe->design->factorisation, pe->design->requested), true);
    } else if (!strcmp(m->name, "model")) {
        py_str_body(pe->out, "The spec's model, trained by the C trainer as model 'model'.", true);
    } else if (!strcmp(m->name, "l1")) {
        py_str_body(pe->out, arena_printf(pe->a, "The spec's own parameterisation with the L1 baseline's penalty "
                                                 "%g * ||%s||_1 (penalty()), the C trainer's model 'l1'.",
                                          m->l1, m->l1_param >= 0 ? s->params[m->l1_param].name : "theta"),
                    true);
    } else {
        py_str_body(pe->out, "The spec's own parameterisation (no design), the C trainer's baseline 'vanilla'.", true);
    }
    P("\n\n    Parameters, named as in the spec:");
    for (size_t i = 0; i < s->nparams; i++) {
        P("\n      %s: %s", m->attr[i], shape_text(pe->a, &s->params[i].shape));
        if (strcmp(m->attr[i], s->params[i].name)) {
            P(" (in the spec: ");
            py_str_body(pe->out, s->params[i].name, false);
            P(")");
        }
    }
    P("\n    \"\"\"\n\n");
    P("    NAME = ");
    py_str(pe->out, m->name);
    if (m->lr > 0)
        P("\n    LR = %s  # its learning rate in the C trainer\n", py_num(nb, m->lr));
    else   /* lr = auto: chosen by the C trainer's trial runs, in its results.json */
        P("\n    LR = None  # lr = auto: the C trainer chooses it (results.json, lr_%s)\n", m->name);
    if (!strcmp(m->name, "l1")) {
        P("    L1_WEIGHT = %s\n", py_num(nb, m->l1));
        P("\n    def penalty(self):\n        \"\"\"The L1 baseline's term of the objective.\"\"\"\n");
        if (m->l1_param >= 0)
            P("        return self.L1_WEIGHT * self.%s.abs().sum()\n", m->attr[m->l1_param]);
        else
            P("        return self.L1_WEIGHT * sum(p.abs().sum() for p in self.parameters())\n");
        if (subclass)
            return;   /* the rest is its base's */
        P("\n");
    }
    P("    # spec name -> (attribute, shape of its .npy file in the C trainer's output)\n");
    P("    PARAMETERS = {\n");
    for (size_t i = 0; i < s->nparams; i++) {
        P("        ");
        py_str(pe->out, s->params[i].name);
        P(": (\"%s\", ", m->attr[i]);
        shape_tuple(pe->out, &s->params[i], true);
        P("),\n");
    }
    P("    }\n\n");

    /* __init__ */
    P("    def __init__(self, dtype=DTYPE, generator=None):\n");
    P("        \"\"\"Parameters drawn from the spec's initialisation (a torch.Generator\n"
      "        for reproducible draws); dtype float64 unless given.\"\"\"\n");
    P("        super().__init__()\n");
    for (size_t i = 0; i < s->nparams; i++) {
        P("        self.%s = torch.nn.Parameter(torch.empty(", m->attr[i]);
        shape_tuple(pe->out, &s->params[i], false);
        P(", dtype=dtype))\n");
    }
    py_op_buffers(pe, &m->ops, "        ");
    P("        self.reset_parameters(generator)\n\n");

    /* reset_parameters */
    P("    def reset_parameters(self, generator=None):\n");
    P("        \"\"\"Draws the parameters from the spec's initialisation: the same\n"
      "        distributions as the C trainer, not its random stream.\"\"\"\n");
    P("        with torch.no_grad():\n");
    for (size_t i = 0; i < s->nparams; i++)
        py_init_param(pe, m, i);
    if (m->unbalance && m->deriv) {
        double from = 0, to = 0;
        for (size_t k = 0; k < pe->spec->init->nkids; k++) {
            const ast_node *kw = pe->spec->init->kids[k];
            if (kw->kind == AST_KWARG && !strcmp(kw->name, "from"))
                from = kw->lhs->value;
            if (kw->kind == AST_KWARG && !strcmp(kw->name, "to"))
                to = kw->lhs->value;
        }
        for (size_t f = 0; f < sym_nfamilies(m->deriv); f++) {
            const sym_family *fam = sym_family_at(m->deriv, f);
            if (fam->k != 1)
                continue;
            P("            # init unbalance: along family %zu, t_i = linspace(%g, %g, %ld)\n", f + 1, from, to,
              fam->count);
            char nb2[40];
            P("            t = %s + (%s) * torch.arange(%ld, dtype=torch.float64) / %ld.0\n", py_num(nb, from),
              py_num(nb2, to - from), fam->count, fam->count > 1 ? fam->count - 1 : 1);
            for (int b = 0; b < fam->nblocks; b++) {
                const sym_block *bl = &fam->blocks[b];
                const ibc_var *v = &s->params[bl->param];
                long R, C;
                dims_of(&v->shape, &R, &C);
                const char *at = m->attr[bl->param];
                P("            e = torch.exp(%ld * t).to(self.%s.dtype)\n", fam->alpha[0][b], at);
                switch (bl->slice) {
                case SYM_SLICE_ROW: P("            self.%s.view(%ld, %ld).mul_(e.unsqueeze(1))\n", at, R, C); break;
                case SYM_SLICE_COL: P("            self.%s.view(%ld, %ld).mul_(e.unsqueeze(0))\n", at, R, C); break;
                case SYM_SLICE_ENTRY: P("            self.%s.view(-1).mul_(e)\n", at); break;
                default: P("            self.%s.mul_(e[0])  # the whole block\n", at); break;
                }
            }
        }
    }
    P("\n");

    /* forward */
    P("    def forward(self");
    for (size_t i = 0; i < s->ninputs; i++)
        P(", %s", m->arg[i]);
    P("):\n        \"\"\"The predictor: ");
    py_str_body(pe->out, unparse_str(pe->a, s->predict), false);
    for (size_t i = 0; i < s->ninputs; i++) {
        ibc_shape is = s->inputs[i].shape;
        P("\n        %s: %s", m->arg[i], out_shape_text(pe->a, true, &is));
    }
    P("\n        Returns %s.\"\"\"\n", out_shape_text(pe->a, res.batched, &s->out_shape));
    fputs(fwd, pe->out);
    P("        return %s\n", res.e);
    free(fwd);

    if (wfun) {
        const ibc_var *w = &pe->spec->params[pe->spec->design.param];
        P("\n    def designed_parameter(self):\n");
        P("        \"\"\"The spec's parameter %s as a function of the factors: ", w->name);
        py_str_body(pe->out, pe->design->factorisation, false);
        P(".\"\"\"\n");
        fputs(wfun, pe->out);
        P("        return %s\n", wres.e);
        free(wfun);
    }
    if (m->deriv && (sym_nfamilies(m->deriv) || sym_ngroups(m->deriv))) {
        P("\n");
        py_derived_methods(pe, m);
    }
}

/* The design's reparameterisation on a user's tensor. */
static void py_reparam(pyemit *pe, pymodel *dm)
{
    const design_result *r = pe->design;
    const ibc_spec *ds = r->designed;
    const ibc_var *w = &pe->spec->params[pe->spec->design.param];
    size_t nf = 0;   /* the factors: the designed spec's first parameters, until the spec's own */
    while (nf < ds->nparams && ds->params[nf].decl == pe->spec->design.decl)
        nf++;
    pymodel rm = *dm;
    memset(&rm.ops, 0, sizeof rm.ops);
    const char **leaf = arena_alloc(pe->a, (ds->nparams + 1) * sizeof *leaf);
    const char **fname = arena_alloc(pe->a, (nf + 1) * sizeof *fname);
    for (size_t i = 0; i < ds->nparams; i++)
        leaf[i] = i < nf ? (fname[i] = py_name(pe->a, ds->params[i].name, fname, i)) : "None";
    pyv res;
    char *fwd = py_translate(pe, &rm, r->replacement, leaf, "        ", &res);
    /* A w, for balanced factors of a given w */
    const char *wleaf[1] = { "w" };
    ibc_spec tmp = *pe->spec;
    rm.spec = &tmp;
    char *aw = NULL;
    pyv awres = { 0 };
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        pyx x = { .out = mem, .a = pe->a, .spec = pe->spec, .leaf_param = wleaf, .leaf_input = NULL,
                  .indent = "        ", .ops = &rm.ops, .diag = pe->diag };
        long rr, cc;
        dims_of(&w->shape, &rr, &cc);
        awres = tx_opexpr(&x, pe->spec->design.op, false, false, pv_make("w", false, w->shape.rank, rr, cc),
                          pe->spec->design.decl);
        fclose(mem);
        pe->failed = pe->failed || x.failed;
        aw = buf;
    }
    long n = w->shape.rows * (w->shape.rank == 2 ? w->shape.cols : 1);

    P("\n\nclass Reparam(torch.nn.Module):\n    \"\"\"");
    py_str_body(pe->out, arena_printf(pe->a, "The designed reparameterisation %s (%s), for\n"
                                             "    torch.nn.utils.parametrize.register_parametrization on a tensor of "
                                             "%ld entries\n    (any shape holding them, e.g. the weight of "
                                             "nn.Linear(%ld, 1, bias=False)):",
                                      r->factorisation, r->requested, n, n),
                true);
    P("\n\n        register_design(layer, \"weight\")       # factors drawn as Designed draws them\n"
      "        torch.nn.utils.parametrize.register_parametrization(layer, \"weight\", Reparam())\n"
      "                                                 # factors balanced from the current weight\n\n"
      "    The factors become the module's parameters\n"
      "    (layer.parametrizations.weight.original0, original1, ...: ");
    for (size_t i = 0; i < nf; i++)
        P("%s%s", i ? ", " : "", fname[i]);
    P(" in that order);\n    dual_slices(layer), balance(layer), predicted_bias(layer) and\n"
      "    write_snapshot(layer, ...) read them there.\n    \"\"\"\n\n");
    P("    FACTORS = (");
    for (size_t i = 0; i < nf; i++) {
        py_str(pe->out, ds->params[i].name);
        P(", ");
    }
    P(")\n    SIZE = %ld\n    PARAMETER = ", n);
    py_str(pe->out, w->name);
    P("  # the spec's parameter it replaces\n\n");
    P("    def __init__(self, dtype=DTYPE):\n        super().__init__()\n        self.shape = None\n");
    py_op_buffers(pe, &rm.ops, "        ");
    P("\n    def forward(self");
    for (size_t i = 0; i < nf; i++)
        P(", %s", fname[i]);
    P("):\n        \"\"\"");
    py_str_body(pe->out, r->factorisation, false);
    P(", shaped as the tensor it replaces.\"\"\"\n");
    fputs(fwd, pe->out);
    long R, C;
    dims_of(&w->shape, &R, &C);
    const char *wshape = w->shape.rank == 2 ? arena_printf(pe->a, "%ld, %ld", R, C) : arena_printf(pe->a, "%ld,", R);
    P("        return %s.reshape(self.shape if self.shape is not None else (%s))\n\n", res.e, wshape);
    free(fwd);


    /* right_inverse: balanced factors */
    P("    def right_inverse(self, weight):\n");
    P("        \"\"\"Balanced factors of a tensor of %ld entries: the image z of its\n"
      "        values under the design's operator, split equally over the factors\n"
      "        (on the dual slice chi = 0).  torch calls it when the design is\n"
      "        registered, with the tensor it replaces.\"\"\"\n", n);
    P("        self.to(device=weight.device, dtype=weight.dtype)  # its operators: the tensor's precision\n");
    P("        self.shape = tuple(weight.shape)\n");
    P("        w = weight.detach().reshape(%s)\n", wshape);
    fputs(aw, pe->out);
    P("        z = %s\n", awres.e);
    if (r->kind == DESIGN_LOG_SPARSITY) {
        P("        root = z.abs() ** (1.0 / %zu)\n", nf);
        P("        return (torch.sign(z) * root");
        for (size_t i = 1; i < nf; i++)
            P(", root.clone()");
        P(")\n\n");
    } else {
        P("        p, s, qt = torch.linalg.svd(z, full_matrices=False)\n");
        P("        p, s, qt = p[:, :%ld], s[:%ld], qt[:%ld, :]\n", r->rank, r->rank, r->rank);
        P("        root = s ** (1.0 / %zu)\n", nf);
        P("        return (p * root");
        for (size_t i = 1; i + 1 < nf; i++)
            P(", torch.diag(root)");
        P(", qt.T * root)\n\n");
    }
    (void)C;

    /* requested_bias */
    double coef = r->kind == DESIGN_LOG_SPECTRAL && r->depth <= 2 ? 1.0 : sym_rat_double(r->coef);
    long terms = r->kind == DESIGN_LOG_SPARSITY ? n : r->rank;
    char nb[40];
    P("    def requested_bias(self, weight):\n");
    P("        \"\"\"The penalty the design asked for, at a tensor of %ld entries: ", n);
    py_str_body(pe->out, r->requested, false);
    if (r->kind == DESIGN_LOG_SPARSITY)
        P(",\n        %s sum_i log|(A w)_i| + n log(%ld).  The derived bias equals it on the dual\n"
          "        slice (balanced factors).\"\"\"\n", r->coefficient, r->depth);
    else
        P(",\n        %s sum_k log sigma_k(A Z) + r log(%ld), over the %ld largest singular values.  The\n"
          "        derived bias equals it for balanced, SVD-aligned factors.\"\"\"\n",
          r->depth > 2 ? r->coefficient : "1", r->depth, r->rank);
    P("        w = weight.reshape(%s)\n", wshape);
    fputs(aw, pe->out);
    free(aw);
    P("        z = %s\n", awres.e);
    if (r->kind == DESIGN_LOG_SPARSITY)
        P("        return %s * torch.log(z.abs()).sum() + %ld * math.log(%ld)\n", py_num(nb, coef), terms, r->depth);
    else
        P("        return %s * torch.log(torch.linalg.svdvals(z)[:%ld]).sum() + %ld * math.log(%ld)\n", py_num(nb, coef),
          r->rank, terms, r->depth);

    /* register_design */
    P("\n\ndef register_design(module, tensor_name=\"weight\", init=\"spec\", generator=None):\n");
    P("    \"\"\"Puts the designed reparameterisation on module.<tensor_name> (a tensor of\n"
      "    %ld entries) through torch.nn.utils.parametrize, and returns the Reparam.\n"
      "    init=\"spec\": the factors drawn from the spec's initialisation, as Designed\n"
      "    draws them (the tensor's value is replaced); init=\"balanced\": balanced\n"
      "    factors of the tensor's current value (Reparam.right_inverse).\"\"\"\n", n);
    P("    if init not in (\"spec\", \"balanced\"):\n"
      "        raise ValueError(\"init must be 'spec' or 'balanced', not %%r\" %% (init,))\n");
    P("    tensor = getattr(module, tensor_name)\n");
    P("    if tensor.numel() != Reparam.SIZE:\n"
      "        raise ValueError(\"the design replaces a tensor of %%d entries; %%s has %%d\"\n"
      "                         %% (Reparam.SIZE, tensor_name, tensor.numel()))\n");
    P("    reparam = Reparam(dtype=tensor.dtype).to(tensor.device)\n");
    P("    torch.nn.utils.parametrize.register_parametrization(module, tensor_name, reparam)\n");
    P("    if init == \"spec\":\n");
    P("        drawn = Designed(dtype=tensor.dtype, generator=generator).spec_tensors()\n");
    P("        originals = module.parametrizations[tensor_name]\n");
    P("        with torch.no_grad():\n");
    P("            for i, name in enumerate(Reparam.FACTORS):\n");
    P("                getattr(originals, \"original%%d\" %% i).copy_(drawn[name])\n");
    P("    return reparam\n");
}

/* The module-level functions that take any model of the module, or a
 * module carrying the design. */
static void py_functions(pyemit *pe)
{
    P("\n\ndef _ibc_as_model(obj):\n");
    P("    \"\"\"The model of this module that holds obj's parameters: for a torch module\n"
      "    carrying the design (register_design), a Designed model whose factors are\n"
      "    that module's own tensors; otherwise obj itself.\"\"\"\n");
    if (!pe->design)
        P("    if isinstance(obj, _IbcModel):\n        return obj\n");
    if (!pe->design) {
        P("    raise TypeError(\"expected a model of this module (%%s), got %%s\"\n"
          "                    %% (\", \".join(c.__name__ for c in MODELS.values()), type(obj).__name__))\n");
    } else {
        P("    found = [plist for m in obj.modules() for plist in getattr(m, \"parametrizations\", {}).values()\n"
          "             if any(isinstance(p, Reparam) for p in plist)]\n");
        P("    if not found and isinstance(obj, _IbcModel):\n        return obj\n");
    P("    if len(found) != 1:\n"
          "        raise TypeError(\"expected a model of this module, or a module carrying the design once \"\n"
          "                        \"(register_design); %%s carries it %%d times\" %% (type(obj).__name__, len(found)))\n");
        P("    model = Designed(dtype=found[0].original0.dtype)\n");
        P("    for i, name in enumerate(Reparam.FACTORS):\n");
        P("        setattr(model, Designed.PARAMETERS[name][0], getattr(found[0], \"original%%d\" %% i))\n");
        P("    model._ibc_factors_only = True\n");
        P("    return model\n");
    }
    P("\n\ndef dual_slices(obj):\n    \"\"\"obj.dual_slices() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).dual_slices()\n");
    P("\n\ndef balance(obj):\n    \"\"\"obj.balance() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).balance()\n");
    P("\n\ndef predicted_bias(obj, per_index=False):\n"
      "    \"\"\"obj.predicted_bias() for a model, or of the design a module carries.\"\"\"\n"
      "    return _ibc_as_model(obj).predicted_bias(per_index)\n");
    P("\n\ndef write_snapshot(obj, run_dir, step, lr=None, grads=False):\n");
    P("    \"\"\"Writes the parameters of obj at training step `step` where `ibc verify\n"
      "    SPEC RUN_DIR` reads them (docs/interop.md):\n\n"
      "        RUN_DIR/run.json                     {\"format\": \"ibc-snapshots-1\", \"spec\": ...,\n"
      "                                              \"model\": ..., \"lr\": ...}\n"
      "        RUN_DIR/step_<step>/<name>.npy       each parameter, named as in the spec\n"
      "        RUN_DIR/step_<step>/<name>.grad.npy  with grads=True: its .grad, the gradient\n"
      "                                             of the step taken from these parameters\n\n"
      "    obj is a model of this module, or a torch module carrying the design\n"
      "    (register_design: its factors are written, as the designed model's).\n"
      "    Write step 0 before the first step, then every k steps and the last; with\n"
      "    lr and the gradients of every step, ibc verify checks the finite-step\n"
      "    identity too.\"\"\"\n");
    P("    model = _ibc_as_model(obj)\n");
    if (pe->design)
        P("    names = Reparam.FACTORS if getattr(model, \"_ibc_factors_only\", False) else tuple(model.PARAMETERS)\n");
    else
        P("    names = tuple(model.PARAMETERS)\n");
    P("    os.makedirs(run_dir, exist_ok=True)\n");
    P("    info = {\"format\": \"ibc-snapshots-1\", \"spec\": SPEC_MODEL, \"model\": model.NAME}\n");
    P("    if lr is not None:\n        info[\"lr\"] = float(lr)\n");
    P("    meta = os.path.join(run_dir, \"run.json\")\n");
    P("    with open(meta + \".tmp\", \"w\") as f:\n        json.dump(info, f)\n        f.write(\"\\n\")\n");
    P("    os.replace(meta + \".tmp\", meta)\n");
    P("    step_dir = os.path.join(run_dir, \"step_%%010d\" %% step)\n");
    P("    os.makedirs(step_dir, exist_ok=True)\n");
    P("    for name in names:\n");
    P("        attr, shape = model.PARAMETERS[name]\n");
    P("        tensor = getattr(model, attr)\n");
    P("        _ibc_write_npy(os.path.join(step_dir, name + \".npy\"), tensor, shape)\n");
    P("        if grads:\n");
    P("            if tensor.grad is None:\n"
      "                raise ValueError(\"write_snapshot(grads=True): %%s has no gradient\" %% name)\n");
    P("            _ibc_write_npy(os.path.join(step_dir, name + \".grad.npy\"), tensor.grad, shape)\n");
}

/* The model's Python names: attributes for parameters, arguments for inputs. */
static void py_names(pyemit *pe, pymodel *m)
{
    const ibc_spec *s = m->spec;
    m->attr = arena_alloc(pe->a, (s->nparams + 1) * sizeof *m->attr);
    for (size_t i = 0; i < s->nparams; i++)
        m->attr[i] = py_name(pe->a, s->params[i].name, m->attr, i);
    m->arg = arena_alloc(pe->a, (s->ninputs + 1) * sizeof *m->arg);
    for (size_t i = 0; i < s->ninputs; i++)
        m->arg[i] = py_name(pe->a, s->inputs[i].name, m->arg, i);
}

bool emit_torch(FILE *out, const ibc_spec *spec, const design_result *design, const sym_derivation *derivation,
                ibc_diag *diag)
{
    ibc_arena *a = arena_new();
    pyemit E = { .out = out, .a = a, .spec = spec, .design = design, .diag = diag }, *pe = &E;
    char nb[40];

    /* the models, as emit.c's trainer has them */
    pymodel models[4];
    int nm = 0;
    memset(models, 0, sizeof models);
    if (design) {
        pymodel *m = &models[nm++];
        m->cls = "Designed";
        m->name = "designed";
        m->spec = design->designed;
        m->deriv = design->kind == DESIGN_LOG_SPECTRAL && design->depth > 2 ? NULL : design->derivation;
        sema_spec_lr(spec, &spec->design.lrs, spec->design.lr, &m->lr);
        m->designed = true;
        m->in_trainer = true;
        m->l1_param = -1;
        pymodel *v = &models[nm++];
        v->cls = "Vanilla";
        v->name = "vanilla";
        v->spec = spec;
        v->deriv = derivation;
        v->lr = spec->train.lr;
        v->l1_param = -1;
        for (size_t b = 0; b < spec->nbaselines; b++)
            if (spec->baselines[b].kind == BASELINE_VANILLA) {
                v->in_trainer = true;
                sema_spec_lr(spec, &spec->baselines[b].lrs, spec->baselines[b].lr, &v->lr);
                break;
            }
        for (size_t b = 0; b < spec->nbaselines; b++)
            if (spec->baselines[b].kind == BASELINE_L1) {
                pymodel *l = &models[nm++];
                *l = *v;
                l->cls = "L1";
                l->base = "Vanilla";
                l->name = "l1";
                sema_spec_lr(spec, &spec->baselines[b].lrs, spec->baselines[b].lr, &l->lr);
                l->l1 = spec->baselines[b].weight;
                l->l1_param = spec->design.param;
                l->in_trainer = true;
                break;
            }
    } else {
        pymodel *m = &models[nm++];
        m->cls = "Model";
        m->name = "model";
        m->spec = spec;
        m->deriv = derivation;
        m->lr = spec->train.lr;
        m->unbalance = spec->init != NULL;
        m->l1_param = -1;
        m->in_trainer = true;
    }
    for (int k = 0; k < nm; k++) {
        if (!models[k].base)
            models[k].base = "_IbcModel";
        py_names(pe, &models[k]);
    }
    if (nm > 2)
        models[2].attr = models[1].attr, models[2].arg = models[1].arg;

    /* the docstring: what the module is, and the derivation */
    P("\"\"\"");
    py_str_body(out, arena_printf(a, "PyTorch export of the ibc spec '%s': %s", spec->model,
                                  spec->description ? spec->description : ""), true);
    P("\n\nGenerated by ibc %s (`ibc emit --target torch`) from the checked spec the C\n"
      "trainer is generated from (`ibc emit`); regenerate it rather than edit it.\n\n", IBC_VERSION);
    P("Models (torch.nn.Module; MODELS maps the C trainer's model names to them):\n");
    for (int k = 0; k < nm; k++)
        if (models[k].in_trainer)
            P("  %-9s the trainer's '%s'\n", models[k].cls, models[k].name);
        else
            P("  %-9s the spec's own parameterisation (not a baseline of this spec's trainer)\n", models[k].cls);
    P("\nUse (docs/interop.md):\n\n"
      "    model = %s()                  # float64; %s(dtype=torch.float32) for float32\n"
      "    loss = loss_fn(model(%s), y) + model.penalty()\n"
      "    model.dual_slices(), model.balance(), model.predicted_bias()\n", models[0].cls, models[0].cls,
      spec->ninputs ? "*inputs" : "");
    if (design)
        P("    register_design(layer, \"weight\")      # the design on a tensor of your own module\n");
    P("    write_snapshot(model, run_dir, step, lr=lr)     # then: ibc verify SPEC run_dir\n\n");
    P("The derivation (ibc derive):\n\n");
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (design) {
            design_print(m, design, SYM_FMT_TEXT);
            fprintf(m, "\nthe spec's own model (Vanilla, L1):\n\n");
        }
        sym_print(m, derivation, SYM_FMT_TEXT);
        fclose(m);
        py_str_body(out, buf, true);
        free(buf);
    }
    P("\"\"\"\n\nimport ast\nimport json\nimport math\nimport os\nimport struct\n\nimport torch\n\n");

    /* constants */
    P("SPEC_MODEL = ");
    py_str(out, spec->model);
    P("\nSPEC_DESCRIPTION = ");
    py_str(out, spec->description ? spec->description : "");
    P("\nDTYPE = torch.float64  # every model's default; pass dtype=torch.float32 for float32\n\n");
    P("# forward's inputs, in order: (spec name, argument, shape of one sample)\nINPUTS = (");
    for (size_t i = 0; i < spec->ninputs; i++) {
        P("(");
        py_str(out, spec->inputs[i].name);
        P(", \"%s\", ", models[nm > 1 ? 1 : 0].arg[i]);
        shape_tuple(out, &spec->inputs[i], false);
        P("), ");
    }
    P(")\n# one sample's output\nOUTPUT_SHAPE = ");
    ibc_var ov = { .shape = spec->out_shape };
    shape_tuple(out, &ov, false);
    P("\n# the C trainer's settings\nTRAIN = {\"lr\": %s, \"steps\": %ld, "
      "\"batch\": ", spec->train.lr > 0 ? py_num(nb, spec->train.lr) : "None", spec->train.steps);
    if (spec->train.batch > 0)
        P("%ld", spec->train.batch);
    else
        P("None");
    /* the trainer's steps are full-batch on fixed data (emit.c: minibatch = false) */
    ibc_builtin dname = spec->data->builtin;
    bool fixed = dname != IBC_B_teacher && dname != IBC_B_noisy_target && dname != IBC_B_low_rank;
    P(", \"seed\": %llu, \"full_batch\": %s}\n", (unsigned long long)spec->train.seed,
      fixed && spec->train.batch == 0 ? "True" : "False");
    P("LOSS_MASK = ");
    if (spec->loss_mask)
        py_str(out, spec->loss_mask);
    else
        P("None");
    P("\nLOSS_NORMALISE_ALL = %s\n\n\n", spec->loss_normalise_all || !spec->loss_mask ? "True" : "False");

    fputs(py_helpers, out);

    P("# ---------------------------------------------------------------- models\n\n\n");
    P("def loss_fn(pred, y, mask=None):\n");
    P("    \"\"\"The spec's loss as the C trainer computes it: the squared error summed\n"
      "    over the batch and the output's entries, divided by their number (pred\n"
      "    broadcasts over the batch when it depends on no input)");
    if (spec->loss_mask)
        P(";\n    with the mask (0/1, the output's shape) the error counts on the observed\n"
          "    entries only, divided by %s", spec->loss_normalise_all ? "the number of all entries"
                                                                    : "the number of observed entries (at least 1)");
    P(".\"\"\"\n");
    P("    r = pred - y\n    norm = y.numel()\n");
    P("    if mask is not None:\n        r = r * mask\n");
    P("        if not LOSS_NORMALISE_ALL:\n            norm = max(float(mask.sum()), 1.0)\n");
    P("    return (r * r).sum() / norm\n\n\n");

    P("class _IbcModel(torch.nn.Module):\n");
    P("    \"\"\"What the models of this module share.\"\"\"\n\n");
    P("    DERIVED = {}  # the keys of dual_slices(), balance(), predicted_bias(): none\n"
      "    BIAS_NOT_COVERED = {}\n"
      "    RATIO_PREDICTIONS = {}\n\n");
    P("    def penalty(self):\n        \"\"\"The model's term of the training objective beyond loss_fn: none.\"\"\"\n"
      "        return 0.0\n\n");
    P("    def dual_slices(self):\n        \"\"\"The derived dual slices: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def balance(self):\n        \"\"\"The balance ratios: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def predicted_bias(self, per_index=False):\n        \"\"\"The predicted bias: none (no symmetry derived).\"\"\"\n"
      "        return {}\n\n");
    P("    def spec_tensors(self):\n        \"\"\"{spec name: parameter}.\"\"\"\n"
      "        return {name: getattr(self, attr) for name, (attr, _) in self.PARAMETERS.items()}\n\n");
    P("    def load_parameters(self, directory, prefix=\"\"):\n");
    P("        \"\"\"Sets the parameters from the .npy files <prefix><spec name>.npy in\n"
      "        directory: the C trainer's final parameters are <model>_<name>.npy in\n"
      "        its --out directory (prefix=NAME + \"_\"); its --snapshots, and\n"
      "        write_snapshot's, are step_<N>/<name>.npy.  A file must have the\n"
      "        parameter's shape (a vector's or a scalar's also as a row or a\n"
      "        column), as ibc verify requires: a transposed matrix is refused.\"\"\"\n");
    P("        with torch.no_grad():\n");
    P("            for name, (attr, shape) in self.PARAMETERS.items():\n");
    P("                path = os.path.join(directory, prefix + name + \".npy\")\n");
    P("                got, values = _ibc_read_npy(path)\n");
    P("                p = getattr(self, attr)\n");
    P("                # a vector or a scalar: as (n,), a row (1, n) or a column (n, 1)\n");
    P("                flat = len(shape) == 1 and len(values) == shape[0] and len(got) <= 2 and min(got, default=1) <= 1\n");
    P("                if tuple(got) != tuple(shape) and not flat:\n"
      "                    raise ValueError(\"%%s: shape %%s; %%s is %%s: expected shape %%s\"\n"
      "                                     %% (path, tuple(got), name, \"a matrix\" if len(shape) == 2 else \"a vector\", tuple(shape)))\n");
    P("                p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape))\n");
    P("        return self\n");

    for (int k = 0; k < nm; k++)
        py_model_class(pe, &models[k]);
    if (design)
        py_reparam(pe, &models[0]);
    py_functions(pe);

    P("\n\n# the C trainer's model names\nMODELS = {");
    for (int k = 0; k < nm; k++)
        if (models[k].in_trainer)
            P("\"%s\": %s, ", models[k].name, models[k].cls);
    P("}\n\n");
    P("# A parameter must not take the name of a torch.nn.Module attribute (this\n"
      "# torch's may have more than the export knows of).\n");
    P("for _cls in (");
    for (int k = 0; k < nm; k++)
        P("%s, ", models[k].cls);
    P("):\n"
      "    for _name, (_attr, _) in _cls.PARAMETERS.items():\n"
      "        if _attr in dir(torch.nn.Module):\n"
      "            raise ImportError(\"parameter %%r of %%s is named as an attribute of torch.nn.Module: \"\n"
      "                              \"rename it in the spec\" %% (_name, _cls.__name__))\n");
    bool ok = !pe->failed;
    arena_free(a);
    return ok;
}
