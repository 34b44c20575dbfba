/*
 * ast_text.c: an expression of the AST as spec text, for the comments of
 * generated code ("X @ Wq", "softmax((X @ Wq) @ (X @ Wk)' / sqrt(k))").
 *
 * Numbers print as written, operators with one space either side, calls
 * and lists with ", " between arguments.  Parentheses go where the grammar
 * needs them (grammar/ibs.y: '+' '-' below '*' '/' '@', all left
 * associative, then unary minus, then the postfix transpose) and where the
 * spec itself has them: a node whose source text is one parenthesised
 * group keeps its parentheses, so "(X @ Wq) @ (X @ Wk)'" reads back as
 * written rather than as the equivalent "X @ Wq @ (X @ Wk)'".  Nodes built
 * by later phases (inverse design's factorisations) print from their
 * structure alone.
 *
 * The text is what the spec says, any bytes included (a matrix("file")
 * path): a caller putting it in a comment scrubs it (emit.c).
 */
#include "ibc.h"

#include <stdlib.h>
#include <string.h>

/* How tightly a node binds: a child binding less tightly than its context
 * needs parentheses. */
enum { PREC_SUM = 1, PREC_PRODUCT = 2, PREC_NEG = 3, PREC_POSTFIX = 4, PREC_ATOM = 5 };

static int prec(const ast_node *n)
{
    switch (n->kind) {
    case AST_BINOP: return n->op == '+' || n->op == '-' ? PREC_SUM : PREC_PRODUCT;
    case AST_NEG: return PREC_NEG;
    case AST_TRANSPOSE: return PREC_POSTFIX;
    default: return PREC_ATOM;
    }
}

/* The source text of n is one parenthesised group: "(...)" whose opening
 * parenthesis closes at the end (string literals skipped).  False for
 * nodes without source text of their own. */
static bool parenthesised_in_source(const ast_node *n, const ibc_source *src)
{
    if (!src || !src->text || n->loc.end <= n->loc.begin + 1 || n->loc.end > src->len)
        return false;
    const char *s = src->text + n->loc.begin, *end = src->text + n->loc.end;
    if (s[0] != '(' || end[-1] != ')')
        return false;
    int depth = 0;
    for (const char *c = s; c < end; c++) {
        if (*c == '"') {
            for (c++; c < end && *c != '"'; c++)
                if (*c == '\\' && c + 1 < end)
                    c++;
            continue;
        }
        if (*c == '(')
            depth++;
        else if (*c == ')' && --depth == 0)
            return c == end - 1;
    }
    return false;
}

static void print(FILE *out, const ast_node *n, const ibc_source *src, size_t max);

/* A child in a context of precedence ctx: parenthesised when it binds less
 * tightly (or, strict, no more tightly), or when the spec parenthesises it. */
static void child(FILE *out, const ast_node *n, const ibc_source *src, int ctx, bool strict, size_t max)
{
    bool paren = prec(n) < ctx || (strict && prec(n) == ctx) ||
                 (prec(n) < PREC_ATOM && parenthesised_in_source(n, src));
    fputs(paren ? "(" : "", out);
    print(out, n, src, max);
    fputs(paren ? ")" : "", out);
}

static void print_list(FILE *out, ast_node *const *kids, size_t n, const ibc_source *src, size_t max)
{
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", out);
        print(out, kids[i], src, max);
    }
}

/* n, or, when its text is longer than max bytes (0: no limit), n with the
 * children that do not fit in half of max elided: "softmax(...)", "...". */
static void print(FILE *out, const ast_node *n, const ibc_source *src, size_t max)
{
    if (!n) {
        fputs("?", out);
        return;
    }
    if (max) {
        char *full = ast_text(n, src, 0);
        size_t len = strlen(full);
        if (len <= max)
            fputs(full, out);
        free(full);
        if (len <= max)
            return;
        if (max < 8) {
            fputs(n->kind == AST_CALL && n->name ? n->name : "", out);
            fputs(n->kind == AST_CALL ? "(...)" : "...", out);
            return;
        }
        max /= 2;
    }
    switch (n->kind) {
    case AST_NUM:
        if (n->text) {
            fputs(n->text, out);
        } else {   /* a number built by a later phase: its shortest exact form */
            char b[40];
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(b, sizeof b, "%.*g", digits, n->value);
                if (strtod(b, NULL) == n->value)
                    break;
            }
            fputs(b, out);
        }
        return;
    case AST_STR: fprintf(out, "\"%s\"", n->text ? n->text : ""); return;
    case AST_IDENT: fputs(n->name ? n->name : "?", out); return;
    case AST_SLICE_ALL: fputs(":", out); return;
    case AST_LIST:
        fputs("[", out);
        print_list(out, n->kids, n->nkids, src, max);
        fputs("]", out);
        return;
    case AST_CALL:
        fprintf(out, "%s(", n->name ? n->name : "?");
        print_list(out, n->kids, n->nkids, src, max);
        fputs(")", out);
        return;
    case AST_KWARG:
        fprintf(out, "%s = ", n->name ? n->name : "?");
        print(out, n->lhs, src, max);
        return;
    case AST_NEG:
        fputs("-", out);
        child(out, n->lhs, src, PREC_NEG, true, max);
        return;
    case AST_TRANSPOSE:
        child(out, n->lhs, src, PREC_POSTFIX, false, max);
        fputs("'", out);
        return;
    case AST_INDEX:
        child(out, n->lhs, src, PREC_POSTFIX, false, max);
        fputs("[", out);
        print_list(out, n->kids, n->nkids, src, max);
        fputs("]", out);
        return;
    case AST_BINOP:
        child(out, n->lhs, src, prec(n), false, max);
        fprintf(out, " %c ", n->op);
        child(out, n->rhs, src, prec(n), true, max);
        return;
    default:
        fputs(n->name ? n->name : "?", out);
        return;
    }
}

char *ast_text(const ast_node *n, const ibc_source *src, size_t max)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        fputs("ibc: fatal: out of memory\n", stderr);
        exit(70);
    }
    print(out, n, src, max);
    fclose(out);
    return buf;
}

bool ast_is_operator_call(const ast_node *n)
{
    return n->kind == AST_CALL && ibc_builtin_class_of(n->builtin) == IBC_BC_OPERATOR;
}

bool ast_is_operator_expr(const ast_node *n)
{
    if (n->kind == AST_TRANSPOSE)
        return ast_is_operator_expr(n->lhs);
    if (n->kind == AST_BINOP && n->op == '@')
        return ast_is_operator_expr(n->lhs) && ast_is_operator_expr(n->rhs);
    return ast_is_operator_call(n);
}

const ast_node *ast_init_dist(const ast_node *n, const ast_node **factor)
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
