/* test_fixes.c: front-end behaviour that needs the three proposed patches
 * (ibs.y.lac.patch, sema.c.all.patch, diag.c.suggest.patch);
 * every test here fails against the unpatched sources.
 *  - parse: an error right after a complete statement on the same line
 *    ended the whole parse (bison's default reduction of "stmts stmt" to
 *    the spec), so later errors were never reported;
 *  - sema: a log_sparsity design given by strength (4/3 -> depth 3)
 *    rejected a1..a3 and accepted u, v;
 *  - sema: a setting given twice in a block silently took the last value;
 *    x / 0 passed when x was not a constant; a misspelt mask name also
 *    drew the warning that the loss ignores the mask;
 *  - diag: any one-letter name was "one edit" from any other, so 'q' got
 *    "did you mean 'u'?"; a case-only difference is now the first guess. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ibc.h"

typedef struct {
    char *tree;
    char *diags;
    int errors;
} parsed;

static parsed parse_str(const char *text)
{
    ibc_source src = { "t.ibs", text, strlen(text) };
    ibc_arena *a = arena_new();
    parsed p = { 0 };
    size_t n1 = 0, n2 = 0;
    FILE *df = open_memstream(&p.diags, &n1);
    FILE *tf = open_memstream(&p.tree, &n2);
    ibc_diag d;
    diag_init(&d, &src, df);
    ast_dump(tf, parse_spec(a, &src, &d));
    diag_summary(&d);
    p.errors = d.errors;
    fclose(df);
    fclose(tf);
    arena_free(a);
    return p;
}

static void parsed_free(parsed *p)
{
    free(p->tree);
    free(p->diags);
}

/* parse + sema; the diagnostics text (caller frees) and the error count. */
static int check_str(const char *text, char **out)
{
    ibc_source src = { "t.ibs", text, strlen(text) };
    ibc_arena *a = arena_new();
    size_t n = 0;
    FILE *f = open_memstream(out, &n);
    ibc_diag d;
    diag_init(&d, &src, f);
    ast_node *root = parse_spec(a, &src, &d);
    if (d.errors == 0)
        sema_check(a, root, &d);
    fclose(f);
    arena_free(a);
    return d.errors;
}

/* An error right after a complete statement on the same line must not end
 * the parse: the statement is dropped to the end of its line and parsing
 * goes on.  (Needs LAC in ibs.y: with bison's default reductions the parser
 * reduced "stmts stmt" to the whole spec, said "expecting end of file" and
 * stopped, so every later error was lost.) */
Test(parse, error_after_a_complete_statement_recovers)
{
    parsed p = parse_str("predict x y\ndim = 2\nmodel m \"a\" b\ndim j = 1\n");
    cr_assert_eq(p.errors, 3, "got:\n%s", p.diags);
    cr_assert_str_eq(p.diags,
                     "t.ibs:1:11: error: syntax error, unexpected identifier\n"
                     "predict x y\n"
                     "          ^\n"
                     "t.ibs:2:5: error: syntax error, unexpected '=', expecting identifier\n"
                     "dim = 2\n"
                     "    ^\n"
                     "t.ibs:3:13: error: syntax error, unexpected identifier, expecting end of file or newline or ';'\n"
                     "model m \"a\" b\n"
                     "            ^\n"
                     "3 errors generated.\n");
    cr_assert_str_eq(p.tree, "(spec (dim j (num 1)))");
    parsed_free(&p);
}

Test(parse, invalid_token_after_a_complete_statement)
{
    parsed p = parse_str("dim n = 3 $ 4\ndim k = \"ab\\q\"\ndim j = 1\n");
    cr_assert_eq(p.errors, 2, "got:\n%s", p.diags);
    cr_assert(strstr(p.diags, "t.ibs:1:11: error: invalid character 0x24\n") != NULL, "got:\n%s", p.diags);
    cr_assert(strstr(p.diags, "t.ibs:2:9: error: unknown escape '\\q' in string") != NULL, "got:\n%s", p.diags);
    cr_assert(strstr(p.tree, "(dim j (num 1))") != NULL);
    parsed_free(&p);
}

#define DESIGN_PRELUDE                                                            \
    "model m\ndim n = 4\ninput x : vector[n]\nparam w : vector[n] ~ normal(0, 0.1)\n"  \
    "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n" \
    "predict x @ w\nloss mse\ntrain { lr = 0.01; steps = 10 }\n"

Test(sema, strength_sets_the_factor_names)
{
    char *out;
    /* strength 4/3 is depth 3: the factors are a1, a2, a3. */
    cr_assert_eq(check_str(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
                           "{ strength = 4/3; a1 ~ zeros(); a2 ~ zeros(); a3 ~ zeros() }\n", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(check_str(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
                           "{ strength = 4/3; u ~ zeros() }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "t.ibs:9:56: error: 'u' is not a factor of this design\n"), "%s", out);
    free(out);
    /* strength 1.5 = 3/2 is depth 4. */
    cr_assert_eq(check_str(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
                           "{ strength = 1.5; a4 ~ zeros() }\n", &out), 0, "%s", out);
    free(out);
    /* Suggestions come from this design's own factor names. */
    cr_assert_eq(check_str(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
                           "{ depth = 3; a4 ~ zeros() }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "error: 'a4' is not a factor of this design; did you mean 'a1'?\n"), "%s", out);
    free(out);
}

Test(diag, suggest_needs_evidence)
{
    static const char *const c[] = { "u", "v", "W", "relu" };
    cr_assert_null(diag_suggest("q", c, 4), "one letter is not evidence");
    cr_assert_str_eq(diag_suggest("w", c, 4), "W", "a case-only difference");
    cr_assert_str_eq(diag_suggest("RELU", c, 4), "relu");
    cr_assert_str_eq(diag_suggest("rleu", c, 4), "relu");
}

Test(sema, a_setting_is_given_once)
{
    char *out;
    cr_assert_eq(check_str("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
                           "data noisy_target(value = 0, noise = 1)\npredict sum(w)\nloss mse\n"
                           "train { lr = 0.1; steps = 3; lr = 0.2 }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "t.ibs:7:30: error: 'lr' is set twice in 'train'\n"
                          "train { lr = 0.1; steps = 3; lr = 0.2 }\n"
                          "                             ^~\n"
                          "t.ibs:7:9: note: the first 'lr' is here\n"), "%s", out);
    free(out);
    cr_assert_eq(check_str(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
                           "{ u ~ zeros(); u ~ normal(0, 1) }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "error: 'u' is set twice in 'design'\n"), "%s", out);
    free(out);
}

Test(sema, division_by_a_constant_zero)
{
    char *out;
    cr_assert_eq(check_str("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
                           "data noisy_target(value = 0, noise = 1)\npredict sum(w) / (1 - 1)\nloss mse\n"
                           "train { lr = 0.1; steps = 3 }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "t.ibs:5:18: error: division by zero\n"), "%s", out);
    free(out);
}

Test(sema, misspelt_mask_is_one_error_not_also_a_warning)
{
    char *out;
    cr_assert_eq(check_str("model m\ndim n = 5\nparam Z : matrix[n, n] ~ zeros()\n"
                           "data low_rank(size = n, singular_values = [3, 1], observed = 0.5)\n"
                           "predict Z\nloss mse(mask = observd)\ntrain { lr = 0.1; steps = 3 }\n", &out), 1, "%s", out);
    cr_assert(strstr(out, "t.ibs:6:17: error: unknown mask 'observd' (the data defines 'observed')\n"), "%s", out);
    cr_assert_null(strstr(out, "warning"), "%s", out);
    free(out);
}
