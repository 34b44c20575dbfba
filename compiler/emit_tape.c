/*
 * emit_tape.c: the forward and reverse passes of a tape as C
 * (emit_impl.h).
 *
 * Contract: emit_prog_functions writes <pre>_forward and (when asked)
 * <pre>_backward for a prog built by emit_lower.c: each value of the tape
 * as statements under the spec expression it computes, products of a
 * batch stacked into one BLAS call or sent to the runtime's inline
 * kernels (the routing rule, MM_SMALL, MM_NARROW, MM_BLOCKED, follows
 * bench/kernels.c), and the hand-derived adjoint of each operation in
 * reverse order, the first contribution to an adjoint overwriting it.
 * The passes allocate nothing.
 */
#include "emit_impl.h"

/* ------------------------------------------------------------- emission */

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

/* " (attention.ibs:15)": where in the spec n is */
void emit_where(const ibc_source *src, const ast_node *n)
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
    cw_begin(&cb, &emit_current->out);
    char *text = value_text(p, i, 72);
    emit_comment_text(text);
    free(text);
    emit_where(p->spec->src, p->v[i].site);
    char *what = cw_end(&cb, &emit_current->out);
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
const char *emit_mm_whole_fn(mm_plan plan, long M, long N, long K, bool tb)
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

/* A product C = op(A) op(B): one call for the batch when the per-sample
 * blocks stack (mm_plan_of), else a call per sample. */
static void emit_forward_matmul(const prog *p, int i)
{
    const ival *v = &p->v[i];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX];
    long m, k, nn;
    mm_dims(p, v, &m, &k, &nn);
    long lda = v->ta ? m : k, ldb = v->tb ? k : nn;
    emit_value_comment(p, i, "(%ld x %ld) @ (%ld x %ld)%s", m, k, k, nn, v->batched ? " per sample" : "");
    mm_plan plan = mm_plan_of(p, v, m, k, nn);
    const char *fn = emit_mm_whole_fn(plan, m, nn, k, v->tb);
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
}

/* A fixed operator applied to each column: a vector in place in the
 * tape, a matrix column by column through copies. */
static void emit_forward_op(const prog *p, int i)
{
    const ival *v = &p->v[i];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX];
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
}

/* The forward statement of value i, under its expression's comment. */
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
    case V_MATMUL:
        emit_forward_matmul(p, i);
        return;
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
    case V_OP:
        emit_forward_op(p, i);
        return;
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

/* The adjoints of a product C = op(A) op(B): dA and dB, each written
 * with the plan of the forward product (stacked or per sample). */
static void emit_backward_matmul(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = &p->v[v->a], *B = &p->v[v->b];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX], b5[REF_MAX];
    bool f;
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
            OUT("%s    %s(0, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, emit_mm_whole_fn(plan, m, k, nn, !v->tb),
                !v->tb, m, k, nn,
                ptr(p, i, true, sv, b2), nn, ptr(p, v->b, false, sv, b3), ldb, beta, ptr(p, v->a, true, sv, b4), k);
        } else {
            OUT("%s    %s(%d, 1, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, emit_mm_whole_fn(plan, k, m, nn, true),
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
            OUT("%s    %s(%d, 0, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, emit_mm_whole_fn(plan, k, nn, m, false),
                !v->ta, k, nn, m,
                ptr(p, v->a, false, sv, b3), lda, ptr(p, i, true, sv, b2), nn, beta, ptr(p, v->b, true, sv, b4), nn);
        } else {
            OUT("%s    %s(1, %d, %ld, %ld, %ld, %s, %ld, %s, %ld, %s, %s, %ld);\n", loop, emit_mm_whole_fn(plan, nn, k, m, v->ta),
                v->ta, nn, k, m,
                ptr(p, i, true, sv, b2), nn, ptr(p, v->a, false, sv, b3), lda, beta, ptr(p, v->b, true, sv, b4), k);
        }
    }
}

/* The adjoint of y = op x, a fixed operator applied to each column:
 * dx += op' dy, column by column. */
static void emit_backward_op(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = &p->v[v->a];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b5[REF_MAX];
    const char *aa;
    bool f;
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
}

/* The adjoints of the entrywise operations C = A * B, A + B, A - B and
 * -A: a loop over the entries per operand that has an adjoint. */
static void emit_backward_entrywise(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = &p->v[v->a], *B = v->b >= 0 ? &p->v[v->b] : NULL;
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX];
    long n = v->rows * v->cols;
    const char *aa, *ab;
    bool f;
    switch (v->kind) {
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
    default:   /* V_NEG */
        if ((aa = adj(p, v->a, "e", b1))) {
            f = adj_first(p, v->a, A->batched == v->batched);
            s_open(v);
            OUT("        for (long e = 0; e < %ld; e++)\n            %s %s %s;\n    }\n", n, aa, f ? "= -" : "-=",
                adj(p, i, "e", b2));
        }
        return;
    }
}

/* The adjoints of C = a B and C = A / b, a and b scalars: the tensor's
 * per entry, the scalar's summed over the entries. */
static void emit_backward_scalar(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = &p->v[v->a], *B = &p->v[v->b];
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX];
    long n = v->rows * v->cols;
    const char *aa, *ab;
    bool f;
    if (v->kind == V_SCALE) {   /* a scalar, b tensor */
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
    }
    /* V_DIV: a tensor / b scalar */
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
}

/* Reverse mode: adjoint of each operation, in reverse tape order. */
static void emit_backward_value(const prog *p, int i)
{
    const ival *v = &p->v[i];
    const ival *A = v->a >= 0 ? &p->v[v->a] : NULL, *B = v->b >= 0 ? &p->v[v->b] : NULL;
    char b1[REF_MAX], b2[REF_MAX], b3[REF_MAX], b4[REF_MAX];
    long n = v->rows * v->cols;
    const char *aa;
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
    case V_MATMUL:
        emit_backward_matmul(p, i);
        return;
    case V_HAD:
    case V_ADD:
    case V_SUB:
    case V_NEG:
        emit_backward_entrywise(p, i);
        return;
    case V_SCALE:
    case V_DIV:
        emit_backward_scalar(p, i);
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
    case V_OP:
        emit_backward_op(p, i);
        return;
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
    char *body = cw_end(b, &emit_current->out);
    cw_decl *d = cw_calloc(2 * (p->spec->nparams + p->spec->ninputs + (size_t)p->n) + 1, sizeof *d);
    size_t nd = pass_decls(p, backward, d);
    cw_fn_body(emit_current->out, params, np, d, nd, body);
    free(d);
    free(body);
}

void emit_prog_functions(const prog *p, const char *pre, bool backward)
{
    static const char *const fw_params[] = { "th", "x", "nb", "tp" };
    static const char *const bw_params[] = { "th", "x", "nb", "tp", "ad", "g" };
    cw_buf b;
    OUT("/* %s: forward pass over a batch of nb samples (th: parameters, x: the\n"
        " * samples' inputs, IN per sample, tp: tape), the spec's expression and\n"
        " * its line above each statement */\n", pre);
    OUT("static void %s_forward(const double *restrict th, const double *restrict x, long nb, double *restrict tp)\n{\n",
        pre);
    cw_begin(&b, &emit_current->out);
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
    cw_begin(&b, &emit_current->out);
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
