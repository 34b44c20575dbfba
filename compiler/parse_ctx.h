/*
 * parse_ctx.h: state shared by the lexer (grammar/ibs.l), the parser
 * (grammar/ibs.y) and the AST constructors in parse.c.  Not used by later
 * phases: they see only the AST declared in ibc.h.
 */
#ifndef IBC_PARSE_CTX_H
#define IBC_PARSE_CTX_H

#include "ibc.h"

#define PARSE_MAX_DEPTH 256   /* ( [ { nesting the lexer accepts */

struct parse_ctx {
    ibc_arena *arena;         /* where the AST and its strings are allocated */
    ibc_diag *diag;           /* where syntax errors are reported */
    const ibc_source *src;    /* the text being parsed (locations are offsets into it) */
    ast_node *root;           /* the AST_SPEC, set by the grammar's start rule; NULL until then */
    size_t offset;            /* byte offset of the next token */
    int paren_depth;          /* open ( and [: newlines are whitespace */
    int depth;                /* all open brackets */
    char stack[PARSE_MAX_DEPTH];   /* the open brackets' characters, stack[0..depth) */
    int eof_nl;               /* the newline at end of file was sent */
    char lex_msg[256];        /* message of the last INVALID token */
};

char *parse_strndup(struct parse_ctx *ctx, const char *s, size_t n);
/* Decode a quoted string literal with C escapes (\n \t \\ \" \xHH \0);
 * on a bad escape, sets ctx->lex_msg and returns false. */
bool parse_decode_string(struct parse_ctx *ctx, const char *lit, size_t n, char **out);

/* AST constructors: one call per grammar action. */
ast_node *ast_new(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc);
ast_node *ast_leaf(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, const char *name);
ast_node *ast_unary(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, ast_node *lhs);
ast_node *ast_binop(struct parse_ctx *ctx, int op, ibc_loc loc, ast_node *lhs, ast_node *rhs);
ast_node *ast_named(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc, const char *name,
                    ibc_loc name_loc, ast_node *lhs);
/* Lists are built by appending; kids live in the arena (amortised growth). */
ast_node *ast_list(struct parse_ctx *ctx, ast_kind kind, ibc_loc loc);
ast_node *ast_append(struct parse_ctx *ctx, ast_node *list, ast_node *kid);
ast_node *ast_with_kids(ast_node *n, const ast_node *list, ibc_loc loc);
ast_type ast_mktype(ast_type_kind kind, ast_node *d0, ast_node *d1, ibc_loc loc);
ibc_loc parse_loc_span(ibc_loc a, ibc_loc b);
ast_node *parse_symmetry(struct parse_ctx *ctx, ibc_loc loc, const char *name, ibc_loc name_loc,
                         const char *var, const char *dim, ast_node *block);
ast_node *parse_target(struct parse_ctx *ctx, ibc_loc loc, const char *name, ibc_loc name_loc,
                       ast_node *index, ast_node *value);
void parse_unclosed(struct parse_ctx *ctx, ibc_loc open);

#endif
