/*
 * emit_torch_expr.c: the PyTorch export's Python text and expressions
 * (emit_torch_impl.h says which file of the export owns what).
 *
 * Python text: string literals and docstrings of arbitrary bytes (ASCII,
 * escaped), '#' comments (printable ASCII), numbers that read back
 * exactly, and identifiers made safe (keywords, torch.nn.Module's own
 * attributes and the module's names get a trailing '_').  Unparsing: the
 * source form of an expression, for the comments.  Translation: a spec
 * expression into the lines `vN = ...` of a method body, from the
 * checked AST the C lowering (emit_lower.c) starts from, with the same
 * operator semantics (runtime/ops.c): every value has its per-sample
 * shape from sema and is batched (a leading batch dimension) exactly
 * when it depends on an input, as the C tape's values are; products pick
 * the torch form that keeps the batch dimension first.  The fixed
 * operators an expression applies are collected in an opset and become
 * buffers of its class (py_op_buffers).  Constructs the C code generator
 * refuses are refused here too, with a located error.
 */
#include "emit_torch_impl.h"

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
void py_str_body(FILE *out, const char *s, bool lines)
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

/* A Python string literal of s (NULL: the empty string). */
void py_str(FILE *out, const char *s)
{
    fputc('"', out);
    py_str_body(out, s ? s : "", false);
    fputc('"', out);
}

/* Spec text inside a '#' comment: printable ASCII only. */
void py_comment(FILE *out, const char *s)
{
    for (; s && *s; s++)
        fputc((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?', out);
}

/* A double as a Python literal (finite: the checker folds constants). */
const char *py_num(char buf[40], double v)
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

/* Whether s is reserved: in py_reserved, a temporary vN, or _ibc... */
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
const char *py_name(ibc_arena *a, const char *name, const char *const *taken, size_t n)
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

/* unparse into the arena, cut to ~120 bytes. */
const char *py_unparse(ibc_arena *a, const ast_node *n)
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

/* The state of one translation (py_translate, py_translate_operator). */
typedef struct {
    FILE *out;                  /* the body being written */
    ibc_arena *a;               /* the export's arena: every text built */
    const ibc_spec *spec;       /* of the model: its params and inputs */
    const char **leaf_param;    /* Python expression of each parameter */
    const char **leaf_input;    /* Python expression of each input (forward's arguments) */
    int ntmp;                   /* temporaries v1..v<ntmp> written so far */
    const char *indent;         /* of each line of the body */
    opset *ops;                 /* the operators applied, for the class's buffers */
    ibc_diag *diag;             /* where unsupported constructs are reported */
    bool failed;                /* one was */
} pyx;

/* A value from its fields. */
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

/* A located error at n (msg, name for its %s); the translation fails. */
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

/* The class buffer of a diag([...]) call, added to the opset once. */
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

/* The class buffer of a matrix("file") call as an r x c matrix (its
 * inverse when inverse), added to the opset once per file and shape. */
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
    const char *name = n->name, *what = arena_printf(x->a, "%s%s%s applied", py_unparse(x->a, n), tr ? "'" : "",
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

/* Rows and columns of a shape, 1 for a dimension it does not have. */
void py_dims(const ibc_shape *s, long *r, long *c)
{
    *r = s->rank == 0 ? 1 : s->rows;
    *c = s->rank == 2 ? s->cols : 1;
}

/* Expression n as a value of the body: leaves as they are, constants as
 * literals, every operation one line `vN = ...` (tx_line).  One switch
 * over the expression kinds, as lower_node in emit_lower.c. */
static pyv tx(pyx *x, const ast_node *n)
{
    long r, c;
    py_dims(&n->shape, &r, &c);
    const char *what = py_unparse(x->a, n);
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


/* ------------------------------------------------------- method bodies */

/* (rows, cols), (rows,), or () ((1,) for the .npy file of a scalar). */
void py_shape_tuple(FILE *o, const ibc_var *v, bool npy)
{
    if (v->shape.rank == 0)
        fputs(npy ? "(1,)" : "()", o);
    else if (v->shape.rank == 1)
        fprintf(o, "(%ld,)", v->shape.rows);
    else
        fprintf(o, "(%ld, %ld)", v->shape.rows, v->shape.cols);
}

/* The buffers of the operators a class applies, in __init__. */
void py_op_buffers(pyemit *pe, const opset *o, const char *ind)
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

/* A stream writing into *buf (a method body, written before the
 * operators it needs are known); out of memory stops the process. */
static FILE *body_stream(char **buf, size_t *len)
{
    FILE *mem = open_memstream(buf, len);
    if (!mem) {
        fputs("ibc: fatal: out of memory\n", stderr);
        exit(70);
    }
    return mem;
}

/* A method body is written to a buffer, since the operators it needs go
 * in __init__ before it. */
char *py_translate(pyemit *pe, pymodel *m, const ast_node *expr, const char **leaf_param, const char *indent,
                   pyv *result)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = body_stream(&buf, &len);
    pyx x = { .out = mem, .a = pe->a, .spec = m->spec, .leaf_param = leaf_param, .leaf_input = m->arg,
              .indent = indent, .ops = &m->ops, .diag = pe->diag };
    *result = tx(&x, expr);
    fclose(mem);
    if (x.failed)
        pe->failed = true;
    return buf;
}

/* The operator is applied as tx_opexpr applies it; the spec's own
 * directory resolves its files. */
char *py_translate_operator(pyemit *pe, opset *ops, const ast_node *op, const char *name, const ibc_shape *shape,
                            const ast_node *site, const char *indent, pyv *result)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = body_stream(&buf, &len);
    const char *leaf[1] = { name };
    pyx x = { .out = mem, .a = pe->a, .spec = pe->spec, .leaf_param = leaf, .leaf_input = NULL, .indent = indent,
              .ops = ops, .diag = pe->diag };
    long rr, cc;
    py_dims(shape, &rr, &cc);
    *result = tx_opexpr(&x, op, false, false, pv_make(name, false, shape->rank, rr, cc), site);
    fclose(mem);
    pe->failed = pe->failed || x.failed;
    return buf;
}
