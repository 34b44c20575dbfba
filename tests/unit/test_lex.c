/* test_lex.c: the scanner (grammar/ibs.l) on its own, driven token by token
 * through the reentrant flex interface, as parse.c drives it.  Checks token
 * kinds, byte-range locations, decoded strings, the newline rules (ended
 * statements, insignificant inside ( and [), the final synthesised newline,
 * and the INVALID token with its message for every kind of bad byte. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "parse_ctx.h"
#include "ibs.tab.h"
#define YYSTYPE IBS_STYPE
#define YYLTYPE IBS_LTYPE
#include "lex.yy.h"

#define LEX_MAX 64

typedef struct {
    int n;
    int tok[LEX_MAX];
    ibc_loc loc[LEX_MAX];
    char *str[LEX_MAX];          /* NUM, IDENT, STR: the token's value */
    char msg[LEX_MAX][256];      /* INVALID: the scanner's message */
} lexed;

/* Scans len bytes of text to the end (or LEX_MAX tokens). */
static void lex_all(const char *text, size_t len, lexed *out, ibc_arena *a)
{
    ibc_source src = { "t.ibs", text, len };
    ibc_diag d;
    diag_init(&d, &src, stderr);
    struct parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.arena = a;
    ctx.diag = &d;
    ctx.src = &src;
    yyscan_t sc;
    cr_assert_eq(ibs_lex_init_extra(&ctx, &sc), 0);
    YY_BUFFER_STATE buf = ibs__scan_bytes(text, (int)len, sc);
    memset(out, 0, sizeof *out);
    for (;;) {
        IBS_STYPE v = { 0 };
        ibc_loc l = { 0, 0 };
        int t = ibs_lex(&v, &l, sc);
        if (t == 0 || out->n == LEX_MAX)
            break;
        out->tok[out->n] = t;
        out->loc[out->n] = l;
        if (t == NUM || t == IDENT || t == STR)
            out->str[out->n] = v.str;
        if (t == INVALID) {
            memcpy(out->msg[out->n], ctx.lex_msg, sizeof ctx.lex_msg);
            ctx.lex_msg[0] = '\0';
        }
        out->n++;
    }
    ibs__delete_buffer(buf, sc);
    ibs_lex_destroy(sc);
    cr_assert_eq(d.errors, 0, "the scanner is silent: it never reports by itself");
}

static void lex_str(const char *text, lexed *out, ibc_arena *a)
{
    lex_all(text, strlen(text), out, a);
}

Test(lex, keywords_identifiers_and_punctuation)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("param W : matrix[h, d] ~ normal(0, 1)", &x, a);
    static const int want[] = { KW_PARAM, IDENT, ':', KW_MATRIX, '[', IDENT, ',', IDENT, ']',
                                '~', IDENT, '(', NUM, ',', NUM, ')', NL };
    cr_assert_eq(x.n, (int)(sizeof want / sizeof want[0]), "got %d tokens", x.n);
    for (int i = 0; i < x.n; i++)
        cr_assert_eq(x.tok[i], want[i], "token %d: got %d, want %d", i, x.tok[i], want[i]);
    cr_assert_str_eq(x.str[1], "W");
    cr_assert_str_eq(x.str[10], "normal");
    /* A keyword prefix inside a longer word is an identifier. */
    lex_str("models dimension in_ over2 inx", &x, a);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(x.tok[i], IDENT, "token %d", i);
    lex_str("over in scalar vector", &x, a);
    cr_assert_eq(x.tok[0], KW_OVER);
    cr_assert_eq(x.tok[1], KW_IN);
    cr_assert_eq(x.tok[2], KW_SCALAR);
    cr_assert_eq(x.tok[3], KW_VECTOR);
    lex_str("@ ' * / + - = ~ : , ;", &x, a);
    static const int ops[] = { '@', '\'', '*', '/', '+', '-', '=', '~', ':', ',', ';', NL };
    cr_assert_eq(x.n, 12);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(x.tok[i], ops[i], "operator %d", i);
    arena_free(a);
}

Test(lex, locations_are_byte_ranges)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("dim  n12 = 345\n", &x, a);
    cr_assert_eq(x.n, 6, "five tokens and the newline synthesised at end of file");
    cr_assert_eq(x.loc[0].begin, 0);
    cr_assert_eq(x.loc[0].end, 3);
    cr_assert_eq(x.loc[1].begin, 5);
    cr_assert_eq(x.loc[1].end, 8);
    cr_assert_eq(x.loc[2].begin, 9);
    cr_assert_eq(x.loc[3].begin, 11);
    cr_assert_eq(x.loc[3].end, 14);
    cr_assert_eq(x.tok[4], NL);
    cr_assert_eq(x.loc[4].begin, 14);
    cr_assert_eq(x.loc[4].end, 15);
    arena_free(a);
}

Test(lex, numbers)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("0 42 3.5 1e-3 2.5E+10 .25 7. 4/3", &x, a);
    static const char *const want[] = { "0", "42", "3.5", "1e-3", "2.5E+10", ".25", "7." };
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(x.tok[i], NUM, "number %d", i);
        cr_assert_str_eq(x.str[i], want[i]);
    }
    /* A fraction is three tokens; sema reads it as an exact rational. */
    cr_assert_eq(x.tok[7], NUM);
    cr_assert_eq(x.tok[8], '/');
    cr_assert_eq(x.tok[9], NUM);
    arena_free(a);
}

Test(lex, malformed_numbers_are_invalid)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("1e 2.5e+ 12abc", &x, a);
    cr_assert_eq(x.n, 4);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(x.tok[i], INVALID, "token %d", i);
        cr_assert_str_eq(x.msg[i], "malformed number");
    }
    cr_assert_eq(x.loc[2].begin, 9);
    cr_assert_eq(x.loc[2].end, 14, "the whole of 12abc is underlined");
    arena_free(a);
}

Test(lex, strings_decode_escapes)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("\"a\\tb\\n\\\\ \\\" \\x41\" \"\"", &x, a);
    cr_assert_eq(x.tok[0], STR);
    cr_assert_str_eq(x.str[0], "a\tb\n\\ \" A");
    cr_assert_eq(x.tok[1], STR);
    cr_assert_str_eq(x.str[1], "");
    /* Non-ASCII text is allowed inside strings, byte for byte. */
    lex_str("\"caf\xc3\xa9\"", &x, a);
    cr_assert_eq(x.tok[0], STR);
    cr_assert_str_eq(x.str[0], "caf\xc3\xa9");
    arena_free(a);
}

Test(lex, bad_strings)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("\"abc\n", &x, a);
    cr_assert_eq(x.tok[0], INVALID);
    cr_assert(strstr(x.msg[0], "unterminated string") != NULL, "got: %s", x.msg[0]);
    cr_assert_eq(x.loc[0].end, 4, "the string stops at the end of its line");
    cr_assert_eq(x.tok[1], NL);

    lex_str("\"a\\q\"", &x, a);
    cr_assert_eq(x.tok[0], INVALID);
    cr_assert(strstr(x.msg[0], "unknown escape '\\q'") != NULL, "got: %s", x.msg[0]);

    lex_str("\"\\x0\" \"\\x00\" \"\\xzz\"", &x, a);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(x.tok[i], INVALID, "string %d", i);
        cr_assert(strstr(x.msg[i], "bad \\x escape") != NULL, "got: %s", x.msg[i]);
    }
    /* A NUL byte ends no string early: it is not allowed inside one. */
    lex_all("\"a\0b\"", 5, &x, a);
    cr_assert_eq(x.tok[0], INVALID);
    arena_free(a);
}

Test(lex, invalid_bytes_have_messages)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_all("x \x01 \0 $ \xff \xc3\xa9", 12, &x, a);
    cr_assert_eq(x.tok[0], IDENT);
    cr_assert_eq(x.tok[1], INVALID);
    cr_assert_str_eq(x.msg[1], "invalid character 0x01");
    cr_assert_eq(x.tok[2], INVALID);
    cr_assert_str_eq(x.msg[2], "invalid character 0x00");
    cr_assert_eq(x.loc[2].begin, 4);
    cr_assert_eq(x.tok[3], INVALID);
    cr_assert_str_eq(x.msg[3], "invalid character 0x24");
    cr_assert_eq(x.tok[4], INVALID);
    cr_assert(strncmp(x.msg[4], "non-ASCII byte 0xff", 19) == 0, "got: %s", x.msg[4]);
    /* An encoded character outside a string is reported byte by byte. */
    cr_assert_eq(x.tok[5], INVALID);
    cr_assert(strncmp(x.msg[5], "non-ASCII byte 0xc3", 19) == 0, "got: %s", x.msg[5]);
    cr_assert_eq(x.tok[6], INVALID);
    cr_assert_eq(x.tok[7], NL);
    cr_assert_eq(x.n, 8);
    arena_free(a);
}

Test(lex, comments_and_whitespace)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("# only a comment \x01 \xff \"\r\n\t\f\v x # trailing\r\r\n", &x, a);
    cr_assert_eq(x.n, 4);
    cr_assert_eq(x.tok[0], NL);
    cr_assert_eq(x.tok[1], IDENT);
    cr_assert_eq(x.tok[2], NL);
    cr_assert_eq(x.tok[3], NL, "the synthesised newline at end of file");
    /* a carriage return without a line feed (classic Mac line ends: the
     * whole file was one line, a first comment hid the rest) is an error,
     * also inside a comment; one at the very end of the file is not */
    lex_str("# a comment\rx\n", &x, a);
    cr_assert_eq(x.tok[0], INVALID);
    lex_str("x\r", &x, a);
    cr_assert_eq(x.tok[0], IDENT);
    cr_assert_eq(x.tok[1], NL);
    arena_free(a);
}

Test(lex, newlines_inside_brackets_are_whitespace)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_str("f(a,\n b)\n[1,\n2]\n{\nx\n}", &x, a);
    static const int want[] = { IDENT, '(', IDENT, ',', IDENT, ')', NL,
                                '[', NUM, ',', NUM, ']', NL,
                                '{', NL, IDENT, NL, '}', NL };
    cr_assert_eq(x.n, (int)(sizeof want / sizeof want[0]), "got %d tokens", x.n);
    for (int i = 0; i < x.n; i++)
        cr_assert_eq(x.tok[i], want[i], "token %d: got %d, want %d", i, x.tok[i], want[i]);
    /* A '(' inside a '{' block: only the parenthesised part joins lines. */
    lex_str("{ f(\n) \n }", &x, a);
    static const int want2[] = { '{', IDENT, '(', ')', NL, '}', NL };
    cr_assert_eq(x.n, 7);
    for (int i = 0; i < x.n; i++)
        cr_assert_eq(x.tok[i], want2[i], "token %d", i);
    arena_free(a);
}

Test(lex, empty_input_is_one_newline)
{
    ibc_arena *a = arena_new();
    lexed x;
    lex_all("", 0, &x, a);
    cr_assert_eq(x.n, 1);
    cr_assert_eq(x.tok[0], NL);
    arena_free(a);
}

Test(lex, nesting_cap)
{
    ibc_arena *a = arena_new();
    size_t n = PARSE_MAX_DEPTH + 1;
    char *t = malloc(n + 1);
    memset(t, '(', n);
    t[n] = '\0';
    ibc_source src = { "t.ibs", t, n };
    ibc_diag d;
    diag_init(&d, &src, stderr);
    struct parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.arena = a;
    ctx.diag = &d;
    ctx.src = &src;
    yyscan_t sc;
    cr_assert_eq(ibs_lex_init_extra(&ctx, &sc), 0);
    YY_BUFFER_STATE buf = ibs__scan_bytes(t, (int)n, sc);
    IBS_STYPE v;
    ibc_loc l;
    for (int i = 0; i < PARSE_MAX_DEPTH; i++)
        cr_assert_eq(ibs_lex(&v, &l, sc), '(', "bracket %d is accepted", i);
    cr_assert_eq(ibs_lex(&v, &l, sc), INVALID);
    cr_assert_str_eq(ctx.lex_msg, "nesting deeper than 256 levels");
    cr_assert_eq(l.begin, PARSE_MAX_DEPTH);
    ibs__delete_buffer(buf, sc);
    ibs_lex_destroy(sc);
    free(t);
    arena_free(a);
}
