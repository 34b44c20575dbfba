/* test_front.c: the front end (lexer, parser, diagnostics, sema) on inputs
 * the diagnostics corpus cannot hold as files: huge lines, NUL bytes,
 * random garbage, and the exact rendering of underlines with tabs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ibc.h"

/* Parses and checks text; returns the error count, diagnostics in *out. */
static int front_run(const char *text, size_t len, char **out)
{
    ibc_source src = { "t.ibs", text, len };
    ibc_arena *a = arena_new();
    size_t sz = 0;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &sz);
    ibc_diag d;
    diag_init(&d, &src, f);
    ast_node *root = parse_spec(a, &src, &d);
    if (d.errors == 0)
        sema_check(a, root, &d);
    diag_summary(&d);
    fclose(f);
    arena_free(a);
    if (out)
        *out = buf;
    else
        free(buf);
    return d.errors;
}

static const char good[] =
    "model m \"x\"\n"
    "dim n = 4\n"
    "input x : vector[n]\n"
    "param w : vector[n] ~ normal(0, 0.1)\n"
    "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n"
    "predict x @ w\n"
    "loss mse\n"
    "train { lr = 0.01; steps = 10 }";   /* no final newline: allowed */

Test(front, good_spec_is_clean)
{
    cr_assert_eq(front_run(good, strlen(good), NULL), 0);
}

Test(front, ten_megabyte_line)
{
    size_t n = 10u * 1024 * 1024;
    char *t = malloc(n + 32);
    strcpy(t, "model m\npredict ");
    size_t k = strlen(t);
    memset(t + k, 'a', n);
    t[k + n] = '\0';
    char *out;
    cr_assert_gt(front_run(t, k + n, &out), 0);
    cr_assert(strstr(out, "t.ibs:2:9: error: undefined name") != NULL, "got: %.200s", out);
    cr_assert_lt(strlen(out), 4000, "a long line is shown as a window, not whole");
    free(out);
    free(t);
}

Test(front, nul_bytes_and_invalid_utf8)
{
    const char t[] = "model m\n\0\xff\xfe dim n = \xc3\x28\n";
    char *out;
    cr_assert_gt(front_run(t, sizeof t - 1, &out), 0);
    cr_assert(strstr(out, "invalid character 0x00") != NULL, "got: %s", out);
    free(out);
}

/* Issue 17, item 10: a UTF-8 byte-order mark at the top of a spec (as
 * some editors save one) is skipped, not "non-ASCII byte 0xef". */
Test(front, byte_order_mark_is_skipped)
{
    size_t n = strlen(good);
    char *t = malloc(n + 4);
    memcpy(t, "\xef\xbb\xbf", 3);
    memcpy(t + 3, good, n + 1);
    char *out;
    cr_assert_eq(front_run(t, n + 3, &out), 0, "got: %s", out);
    free(out);
    free(t);
}

Test(front, random_garbage_never_crashes)
{
    unsigned long long s = 0x9e3779b97f4a7c15ull;
    char buf[4096] = { 0 };
    for (int iter = 0; iter < 300; iter++) {
        size_t n = (size_t)(iter * 13) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            /* mostly grammar characters, so the parser gets deep */
            static const char alphabet[] = "model dim param predict{}()[]@*+-'=~:,;\n#\"x0.5e\x01\xff";
            buf[i] = alphabet[s % (sizeof alphabet - 1)];
        }
        front_run(buf, n, NULL);
    }
}

Test(front, deep_nesting_is_an_error)
{
    size_t depth = 100000;
    char *t = malloc(2 * depth + 32);
    strcpy(t, "model m\npredict ");
    size_t k = strlen(t);
    memset(t + k, '(', depth);
    t[k + depth] = 'x';
    memset(t + k + depth + 1, ')', depth);
    t[k + 2 * depth + 1] = '\0';
    char *out;
    cr_assert_gt(front_run(t, strlen(t), &out), 0);
    cr_assert(strstr(out, "nesting deeper than 256 levels") != NULL);
    free(out);
    free(t);
}

Test(front, tabs_line_up)
{
    const char t[] = "model m\n\tdim\tn = \t0\n";
    char *out;
    front_run(t, sizeof t - 1, &out);
    /* The echoed line expands tabs to 8 columns; the caret sits under 0. */
    cr_assert(strstr(out, "t.ibs:2:11: error: a dimension must be at least 1, got 0\n"
                          "        dim     n =     0\n"
                          "                        ^\n") != NULL, "got: %s", out);
    free(out);
}

Test(front, suggestions)
{
    const char *c[] = { "relu", "softmax", "sum" };
    cr_assert_str_eq(diag_suggest("rleu", c, 3), "relu");
    cr_assert_str_eq(diag_suggest("softmx", c, 3), "softmax");
    cr_assert_null(diag_suggest("banana", c, 3));
}

Test(front, shapes_are_filled)
{
    const char t[] =
        "model m\ndim d = 3\ndim h = 16\ninput x : vector[d]\n"
        "param W : matrix[h, d] ~ normal(0, 1)\nparam v : vector[h] ~ normal(0, 1)\n"
        "data teacher(inputs = normal(0, 1), noise = 0.1)\nteacher { W ~ normal(0, 1) }\n"
        "predict v @ relu(W @ x)\nloss mse\ntrain { lr = 1e-3; steps = 5; batch = 8 }\n";
    ibc_source src = { "t.ibs", t, sizeof t - 1 };
    ibc_arena *a = arena_new();
    ibc_diag d;
    FILE *devnull = fopen("/dev/null", "w");
    diag_init(&d, &src, devnull);
    ibc_spec *sp = sema_check(a, parse_spec(a, &src, &d), &d);
    cr_assert_not_null(sp);
    cr_assert_eq(sp->predict->shape.rank, 0);
    ast_node *relu = sp->predict->rhs;
    cr_assert_eq(relu->shape.rank, 1);
    cr_assert_eq(relu->shape.rows, 16);
    cr_assert_eq(sp->train.batch, 8);
    cr_assert_eq(sp->params[0].shape.cols, 3);
    fclose(devnull);
    arena_free(a);
}
