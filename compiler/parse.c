/*
 * parse.c: drives the flex scanner and bison parser (grammar/) over a
 * source, and holds the AST constructors the grammar's actions call.
 *
 * The scanner reads the whole source as bytes (NUL bytes included), so no
 * input can end a scan early.  Syntax errors are reported through diag by
 * ibs_error; an INVALID token from the scanner carries its own message.
 * After an error, bracket tracking is reset so that the next newline ends
 * the bad statement again (otherwise a missing ')' would swallow the file).
 */
#include "parse_ctx.h"
#include "ibs.tab.h"
#define YYSTYPE IBS_STYPE
#define YYLTYPE IBS_LTYPE
#include "lex.yy.h"

#include <string.h>

char *parse_strndup(struct parse_ctx *ctx, const char *s, size_t n)
{
    return arena_strndup(ctx->arena, s, n);
}

static int parse_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool parse_decode_string(struct parse_ctx *ctx, const char *lit, size_t n, char **out)
{
    char *buf = arena_alloc(ctx->arena, n);
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = lit[i];
        if (c != '\\') {
            buf[k++] = c;
            continue;
        }
        c = lit[++i];
        switch (c) {
        case 'n': buf[k++] = '\n'; break;
        case 't': buf[k++] = '\t'; break;
        case 'r': buf[k++] = '\r'; break;
        case '\\': buf[k++] = '\\'; break;
        case '"': buf[k++] = '"'; break;
        case 'x': {
            int h = i + 1 < n - 1 ? parse_hex(lit[i + 1]) : -1;
            int l = i + 2 < n - 1 ? parse_hex(lit[i + 2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                snprintf(ctx->lex_msg, sizeof ctx->lex_msg,
                         "bad \\x escape in string (two hex digits, not 00)");
                return false;
            }
            buf[k++] = (char)(h * 16 + l);
            i += 2;
            break;
        }
        default:
            snprintf(ctx->lex_msg, sizeof ctx->lex_msg,
                     "unknown escape '\\%c' in string (use \\n \\t \\r \\\\ \\\" \\xHH)",
                     c >= 0x20 && c < 0x7f ? c : '?');
            return false;
        }
    }
    buf[k] = '\0';
    *out = buf;
    return true;
}

ibc_loc parse_loc_span(ibc_loc a, ibc_loc b)
{
    ibc_loc l = { a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end };
    return l;
}

ast_node *ast_new(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc)
{
    ast_node *n = arena_alloc(ctx->arena, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    n->name_loc = loc;
    return n;
}

ast_node *ast_leaf(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, const char *name)
{
    ast_node *n = ast_new(ctx, kind, loc);
    n->name = name;
    return n;
}

ast_node *ast_unary(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, ast_node *lhs)
{
    ast_node *n = ast_new(ctx, kind, loc);
    n->lhs = lhs;
    return n;
}

ast_node *ast_binop(struct parse_ctx *ctx, int op, ibc_loc loc, ast_node *lhs, ast_node *rhs)
{
    ast_node *n = ast_new(ctx, AST_BINOP, loc);
    n->op = op;
    n->lhs = lhs;
    n->rhs = rhs;
    return n;
}

ast_node *ast_named(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, const char *name,
                    ibc_loc name_loc, ast_node *lhs)
{
    ast_node *n = ast_new(ctx, kind, loc);
    n->name = name;
    n->name_loc = name_loc;
    n->lhs = lhs;
    return n;
}

ast_node *ast_list(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc)
{
    return ast_new(ctx, kind, loc);
}

/* Capacity is the next power of two >= nkids, so growth is implicit. */
ast_node *ast_append(struct parse_ctx *ctx, ast_node *list, ast_node *kid)
{
    size_t n = list->nkids;
    if ((n & (n - 1)) == 0) {
        size_t cap = n ? 2 * n : 1;
        ast_node **k = arena_alloc(ctx->arena, cap * sizeof *k);
        if (n)
            memcpy(k, list->kids, n * sizeof *k);
        list->kids = k;
    }
    list->kids[list->nkids++] = kid;
    list->loc = parse_loc_span(list->loc, kid->loc);
    return list;
}

ast_node *ast_with_kids(ast_node *n, const ast_node *list, ibc_loc loc)
{
    if (list) {
        n->kids = list->kids;
        n->nkids = list->nkids;
    }
    n->loc = loc;
    return n;
}

ast_type ast_mktype(ast_type_kind kind, ast_node *d0, ast_node *d1, ibc_loc loc)
{
    ast_type t = { kind, { d0, d1 }, loc };
    return t;
}

ast_node *parse_symmetry(struct parse_ctx *ctx, ibc_loc loc, const char *name, ibc_loc name_loc,
                         const char *var, const char *dim, ast_node *block)
{
    ast_node *n = ast_with_kids(ast_named(ctx, AST_SYMMETRY, loc, name, name_loc, NULL), block, loc);
    n->index_var = var;
    n->index_dim = dim;
    return n;
}

/* W[j, :] = 1 inside a symmetry block: an AST_SETTING whose rhs is the index. */
ast_node *parse_target(struct parse_ctx *ctx, ibc_loc loc, const char *name, ibc_loc name_loc,
                       ast_node *index, ast_node *value)
{
    ast_node *n = ast_named(ctx, AST_SETTING, loc, name, name_loc, value);
    n->op = '=';
    n->rhs = index;
    return n;
}

void parse_unclosed(struct parse_ctx *ctx, ibc_loc open)
{
    diag_error(ctx->diag, open, "unclosed '{': the block opened here reaches the end of the file (add '}')");
}

void ibs_error(ibc_loc *loc, void *scanner, struct parse_ctx *ctx, const char *msg)
{
    (void)scanner;
    if (ctx->lex_msg[0]) {
        diag_error(ctx->diag, *loc, "%s", ctx->lex_msg);
        ctx->lex_msg[0] = '\0';
    } else {
        diag_error(ctx->diag, *loc, "%s", msg);
    }
    ctx->paren_depth = 0;
    ctx->depth = 0;
}

/* Chains built by left-recursive rules (a + b + c ..., x'' ...) and
 * unary minus grow the tree without brackets, so the lexer's bracket limit
 * does not bound its depth, while every later phase (and ast_dump) walks
 * expressions recursively: a spec of a few hundred kilobytes could
 * overflow the stack.  No sensible spec comes near this depth. */
#define PARSE_MAX_TREE_DEPTH 1000

/* Walks n with at most budget more levels (so this recursion is bounded
 * too); a node reached with no budget left loses its children, and the
 * first such node is reported unless errors were reported already (the
 * tree is then never checked, only cut so that it stays safe to walk). */
static void parse_limit_depth(ibc_diag *diag, ast_node *n, int budget, bool *reported)
{
    if (!n)
        return;
    if (budget == 0) {
        if (!*reported && diag->errors == 0)
            diag_error(diag, n->loc, "expression nested deeper than %d levels (operators, calls and brackets)",
                       PARSE_MAX_TREE_DEPTH);
        *reported = true;
        n->lhs = n->rhs = NULL;
        n->kids = NULL;
        n->nkids = 0;
        n->type.dim[0] = n->type.dim[1] = NULL;
        return;
    }
    parse_limit_depth(diag, n->lhs, budget - 1, reported);
    parse_limit_depth(diag, n->rhs, budget - 1, reported);
    for (size_t i = 0; i < n->nkids; i++)
        parse_limit_depth(diag, n->kids[i], budget - 1, reported);
    parse_limit_depth(diag, n->type.dim[0], budget - 1, reported);
    parse_limit_depth(diag, n->type.dim[1], budget - 1, reported);
}

ast_node *parse_spec(ibc_arena *arena, const ibc_source *src, ibc_diag *diag)
{
    struct parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.arena = arena;
    ctx.diag = diag;
    ctx.src = src;
    yyscan_t scanner;
    if (ibs_lex_init_extra(&ctx, &scanner) != 0) {
        diag_error(diag, (ibc_loc){ 0, 0 }, "cannot initialise the scanner");
        return NULL;
    }
    /* A UTF-8 byte-order mark (as some editors save) is not part of the
     * spec: skipped, with locations still counted from the file's start. */
    size_t bom = diag_source_bom(src);
    ctx.offset = bom;
    YY_BUFFER_STATE buf = ibs__scan_bytes(src->text + bom, (int)(src->len - bom), scanner);
    ibs_parse(scanner, &ctx);
    ibs__delete_buffer(buf, scanner);
    ibs_lex_destroy(scanner);
    if (!ctx.root)
        ctx.root = ast_new(&ctx, AST_SPEC, (ibc_loc){ 0, 0 });
    bool reported = false;
    parse_limit_depth(diag, ctx.root, PARSE_MAX_TREE_DEPTH, &reported);
    return ctx.root;
}

/* ------------------------------------------------------------ debugging */

static const char *const ast_kind_names[] = {
    "num", "str", "ident", "list", "call", "kwarg", "neg", "binop", "transpose",
    "index", ":", "model", "dim", "input", "param", "data", "teacher", "predict",
    "loss", "design", "symmetry", "init", "train", "baseline", "verify", "setting",
    "block", "spec",
};

void ast_dump(FILE *out, const ast_node *n)
{
    if (!n) {
        fputs("nil", out);
        return;
    }
    fprintf(out, "(%s", ast_kind_names[n->kind]);
    if (n->kind == AST_BINOP || (n->kind == AST_SETTING && n->op == '~'))
        fprintf(out, " %c", n->op);
    if (n->name)
        fprintf(out, " %s", n->name);
    if (n->text)
        fprintf(out, n->kind == AST_STR ? " \"%s\"" : " %s", n->text);
    if (n->kind == AST_INPUT || n->kind == AST_PARAM) {
        static const char *const tn[] = { "scalar", "vector", "matrix" };
        fprintf(out, " %s", tn[n->type.kind]);
        for (int i = 0; i < 2; i++)
            if (n->type.dim[i]) {
                fputc(' ', out);
                ast_dump(out, n->type.dim[i]);
            }
    }
    if (n->lhs) {
        fputc(' ', out);
        ast_dump(out, n->lhs);
    }
    if (n->rhs) {
        fputc(' ', out);
        ast_dump(out, n->rhs);
    }
    for (size_t i = 0; i < n->nkids; i++) {
        fputc(' ', out);
        ast_dump(out, n->kids[i]);
    }
    fputc(')', out);
}
