/*
 * ibs.y: the grammar of the .ibs spec language (docs/language.md).
 *
 * A pure, reentrant parser with byte-range locations.  Each action is one
 * constructor call (parse.c).  Errors are reported through the diagnostics
 * module and parsing goes on: a bad statement is skipped to the end of its
 * line, a bad block entry to the end of its line or to the closing brace,
 * and a block still open at the end of the file gets its own hint.
 */
%require "3.5"
%define api.pure full
%define api.prefix {ibs_}
%define api.location.type {ibc_loc}
%define parse.error verbose
/* LAC: the expected-token list of an error is exact, and an error right
 * after a complete statement does not end the parse (tests/diag). */
%define parse.lac full
%locations
%param {void *scanner}
%parse-param {struct parse_ctx *ctx}

/* No conflicts: the expression grammar is disambiguated by precedence and
 * every statement starts with its own keyword. */
%expect 0

%code requires {
#include "parse_ctx.h"
}

%code provides {
int ibs_lex(IBS_STYPE *yylval, ibc_loc *yylloc, void *scanner);
void ibs_error(ibc_loc *loc, void *scanner, struct parse_ctx *ctx, const char *msg);
}

%code {
/* The span of a rule: from its first to its last symbol. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                  \
    do {                                                             \
        if (N) {                                                     \
            (Cur).begin = YYRHSLOC(Rhs, 1).begin;                    \
            (Cur).end = YYRHSLOC(Rhs, N).end;                        \
        } else {                                                     \
            (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;          \
        }                                                            \
    } while (0)
}

%union {
    char *str;
    ast_node *node;
    ast_type type;
}

%token KW_MODEL "model" KW_DIM "dim" KW_INPUT "input" KW_PARAM "param"
%token KW_DATA "data" KW_TEACHER "teacher" KW_PREDICT "predict" KW_LOSS "loss"
%token KW_DESIGN "design" KW_SYMMETRY "symmetry" KW_INIT "init" KW_TRAIN "train"
%token KW_BASELINE "baseline" KW_VERIFY "verify" KW_SCALAR "scalar"
%token KW_VECTOR "vector" KW_MATRIX "matrix" KW_OVER "over" KW_IN "in"
%token <str> NUM "number" IDENT "identifier" STR "string"
%token NL "newline"
%token INVALID "invalid token"

%type <node> stmts stmt expr primary args arglist arg call callish block items item
%type <node> opt_block opt_str index_list index targets
%type <str> callee sname kwname
%type <type> type

%left '+' '-'
%left '*' '/' '@'
%precedence NEG
%precedence '\''

%start spec

%%

spec    : stmts                              { ctx->root = ast_with_kids(ast_new(ctx, AST_SPEC, @$), $1, @$); }
        | stmts stmt  /* after an unclosed block took the end of file */
                                             { ctx->root = ast_with_kids(ast_new(ctx, AST_SPEC, @$), ast_append(ctx, $1, $2), @$); }
        ;

stmts   : %empty                             { $$ = ast_list(ctx, AST_SPEC, @$); }
        | stmts stmt end                     { $$ = $2 ? ast_append(ctx, $1, $2) : $1; }
        | stmts end                          { $$ = $1; }
        | stmts error end                    { $$ = $1; yyerrok; }
        ;

end     : NL | ';' ;

stmt    : "model" IDENT opt_str              { $$ = ast_named(ctx, AST_MODEL, @$, $2, @2, $3); }
        | "dim" IDENT '=' expr               { $$ = ast_named(ctx, AST_DIM, @$, $2, @2, $4); }
        | "input" IDENT ':' type             { $$ = ast_named(ctx, AST_INPUT, @$, $2, @2, NULL); $$->type = $4; }
        | "param" IDENT ':' type             { $$ = ast_named(ctx, AST_PARAM, @$, $2, @2, NULL); $$->type = $4; }
        | "param" IDENT ':' type '~' expr    { $$ = ast_named(ctx, AST_PARAM, @$, $2, @2, $6); $$->type = $4; }
        | "data" call                        { $$ = ast_unary(ctx, AST_DATA, @$, $2); }
        | "teacher" block                    { $$ = ast_with_kids(ast_new(ctx, AST_TEACHER, @$), $2, @$); }
        | "predict" expr                     { $$ = ast_unary(ctx, AST_PREDICT, @$, $2); }
        | "loss" callish                     { $$ = ast_unary(ctx, AST_LOSS, @$, $2); }
        | "design" call opt_block            { $$ = ast_with_kids(ast_unary(ctx, AST_DESIGN, @$, $2), $3, @$); }
        | "symmetry" IDENT "over" IDENT "in" IDENT block
                                             { $$ = parse_symmetry(ctx, @$, $2, @2, $4, $6, $7); }
        | "init" call                        { $$ = ast_unary(ctx, AST_INIT, @$, $2); }
        | "train" block                      { $$ = ast_with_kids(ast_new(ctx, AST_TRAIN, @$), $2, @$); }
        | "baseline" callish opt_block       { $$ = ast_with_kids(ast_unary(ctx, AST_BASELINE, @$, $2), $3, @$); }
        | "verify" block                     { $$ = ast_with_kids(ast_new(ctx, AST_VERIFY, @$), $2, @$); }
        ;

opt_str : %empty                             { $$ = NULL; }
        | STR                                { $$ = ast_leaf(ctx, AST_STR, @$, NULL); $$->text = $1; }
        ;

type    : "scalar"                           { $$ = ast_mktype(TYPE_SCALAR, NULL, NULL, @$); }
        | "vector" '[' expr ']'              { $$ = ast_mktype(TYPE_VECTOR, $3, NULL, @$); }
        | "matrix" '[' expr ',' expr ']'     { $$ = ast_mktype(TYPE_MATRIX, $3, $5, @$); }
        ;

/* A block: settings separated by newlines, ';' or ','. */
block   : '{' items '}'                      { $$ = $2; $$->loc = @$; }
        | '{' items YYEOF                    { $$ = $2; parse_unclosed(ctx, @1); }
        ;

opt_block: %empty                            { $$ = NULL; }
        | block                              { $$ = $1; }
        ;

items   : %empty                             { $$ = ast_list(ctx, AST_BLOCK, @$); }
        | items item                         { $$ = $2 ? ast_append(ctx, $1, $2) : $1; }
        | items error sep                    { $$ = $1; yyerrok; }
        ;

sep     : NL | ';' | ',' ;

item    : sep                                { $$ = NULL; }
        | sname '=' expr                     { $$ = ast_named(ctx, AST_SETTING, @$, $1, @1, $3); $$->op = '='; }
        | sname '~' expr                     { $$ = ast_named(ctx, AST_SETTING, @$, $1, @1, $3); $$->op = '~'; }
        | sname block                        { $$ = ast_with_kids(ast_named(ctx, AST_BLOCK, @$, $1, @1, NULL), $2, @$); }
        | IDENT '[' index_list ']' '=' expr  { $$ = parse_target(ctx, @$, $1, @1, $3, $6); }
        ;

/* Keyword arguments may be named by any word, keywords included (train = 32). */
kwname  : IDENT
        | "model" { $$ = parse_strndup(ctx, "model", 5); }     | "dim" { $$ = parse_strndup(ctx, "dim", 3); }
        | "input" { $$ = parse_strndup(ctx, "input", 5); }     | "param" { $$ = parse_strndup(ctx, "param", 5); }
        | "data" { $$ = parse_strndup(ctx, "data", 4); }       | "loss" { $$ = parse_strndup(ctx, "loss", 4); }
        | "init" { $$ = parse_strndup(ctx, "init", 4); }       | "train" { $$ = parse_strndup(ctx, "train", 5); }
        | "verify" { $$ = parse_strndup(ctx, "verify", 6); }   | "over" { $$ = parse_strndup(ctx, "over", 4); }
        | "in" { $$ = parse_strndup(ctx, "in", 2); }           | "scalar" { $$ = parse_strndup(ctx, "scalar", 6); }
        | "vector" { $$ = parse_strndup(ctx, "vector", 6); }
        ;

sname   : IDENT | "init" { $$ = parse_strndup(ctx, "init", 4); } ;

index_list: index                            { $$ = ast_append(ctx, ast_list(ctx, AST_INDEX, @$), $1); }
        | index_list ',' index               { $$ = ast_append(ctx, $1, $3); }
        ;

index   : IDENT                              { $$ = ast_leaf(ctx, AST_IDENT, @$, $1); }
        | ':'                                { $$ = ast_new(ctx, AST_SLICE_ALL, @$); }
        ;

/* loss mse | loss mse(mask = observed); baseline vanilla | baseline l1(...) */
callish : IDENT                              { $$ = ast_leaf(ctx, AST_IDENT, @$, $1); }
        | call                               { $$ = $1; }
        ;

call    : callee '(' args ')'                { $$ = ast_with_kids(ast_leaf(ctx, AST_CALL, @$, $1), $3, @$); $$->name_loc = @1; }
        ;

callee  : IDENT | "teacher" { $$ = parse_strndup(ctx, "teacher", 7); }
        | "matrix" { $$ = parse_strndup(ctx, "matrix", 6); }
        ;

args    : %empty                             { $$ = ast_list(ctx, AST_CALL, @$); }
        | arglist                            { $$ = $1; }
        ;

arglist : arg                                { $$ = ast_append(ctx, ast_list(ctx, AST_CALL, @$), $1); }
        | arglist ',' arg                    { $$ = ast_append(ctx, $1, $3); }
        ;

arg     : expr                               { $$ = $1; }
        | kwname '=' expr                    { $$ = ast_named(ctx, AST_KWARG, @$, $1, @1, $3); }
        ;

expr    : expr '+' expr                      { $$ = ast_binop(ctx, '+', @$, $1, $3); }
        | expr '-' expr                      { $$ = ast_binop(ctx, '-', @$, $1, $3); }
        | expr '*' expr                      { $$ = ast_binop(ctx, '*', @$, $1, $3); }
        | expr '/' expr                      { $$ = ast_binop(ctx, '/', @$, $1, $3); }
        | expr '@' expr                      { $$ = ast_binop(ctx, '@', @$, $1, $3); }
        | '-' expr %prec NEG                 { $$ = ast_unary(ctx, AST_NEG, @$, $2); }
        | expr '\''                          { $$ = ast_unary(ctx, AST_TRANSPOSE, @$, $1); }
        | primary                            { $$ = $1; }
        ;

primary : NUM                                { $$ = ast_leaf(ctx, AST_NUM, @$, NULL); $$->text = $1; }
        | STR                                { $$ = ast_leaf(ctx, AST_STR, @$, NULL); $$->text = $1; }
        | IDENT                              { $$ = ast_leaf(ctx, AST_IDENT, @$, $1); }
        | call                               { $$ = $1; }
        | '(' expr ')'                       { $$ = $2; $$->loc = @$; }
        | '[' targets ']'                    { $$ = $2; $$->loc = @$; }
        ;

targets : expr                               { $$ = ast_append(ctx, ast_list(ctx, AST_LIST, @$), $1); }
        | targets ',' expr                   { $$ = ast_append(ctx, $1, $3); }
        ;

%%
