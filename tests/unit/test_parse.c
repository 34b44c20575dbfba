/* test_parse.c: the parser (grammar/ibs.y, parse.c) and the arena it
 * allocates from.  Trees are compared through ast_dump, so a test states
 * the whole shape: precedence and associativity, unary minus, transpose,
 * calls with keyword arguments, types, blocks, symmetry targets.  Error
 * recovery: several errors in one file, each located, and the statements
 * around them still in the tree, also after an error right after a
 * complete statement on the same line.  ast_text: expressions printed back as
 * spec text, with the spec's parentheses, bounded in length. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ibc.h"

typedef struct {
    char *tree;     /* ast_dump of the root */
    char *diags;    /* everything diag printed, summary included */
    int errors;
} parsed;

static parsed parse_text(const char *text, size_t len)
{
    ibc_source src = { "t.ibs", text, len };
    ibc_arena *a = arena_new();
    parsed p = { 0 };
    size_t n1 = 0, n2 = 0;
    FILE *df = open_memstream(&p.diags, &n1);
    FILE *tf = open_memstream(&p.tree, &n2);
    ibc_diag d;
    diag_init(&d, &src, df);
    ast_node *root = parse_spec(a, &src, &d);
    cr_assert_not_null(root, "parse_spec always returns a tree");
    cr_assert_eq(root->kind, AST_SPEC);
    ast_dump(tf, root);
    diag_summary(&d);
    p.errors = d.errors;
    fclose(df);
    fclose(tf);
    arena_free(a);
    return p;
}

static parsed parse_str(const char *text)
{
    return parse_text(text, strlen(text));
}

static void parsed_free(parsed *p)
{
    free(p->tree);
    free(p->diags);
}

/* Parses text without errors and compares its tree. */
static void expect_tree(const char *text, const char *tree)
{
    parsed p = parse_str(text);
    cr_assert_eq(p.errors, 0, "unexpected errors:\n%s", p.diags);
    cr_assert_str_eq(p.tree, tree);
    parsed_free(&p);
}

Test(parse, precedence_and_associativity)
{
    /* * / @ bind tighter than + -, all left-associative; unary minus binds
     * tighter than the binary operators and ' tightest of all. */
    expect_tree("predict a + b * c @ d' - -e / 2",
                "(spec (predict (binop - (binop + (ident a) (binop @ (binop * (ident b) (ident c)) "
                "(transpose (ident d)))) (binop / (neg (ident e)) (num 2)))))");
    expect_tree("predict a - b - c",
                "(spec (predict (binop - (binop - (ident a) (ident b)) (ident c))))");
    expect_tree("predict a @ b @ c",
                "(spec (predict (binop @ (binop @ (ident a) (ident b)) (ident c))))");
    expect_tree("predict (a + b) * c",
                "(spec (predict (binop * (binop + (ident a) (ident b)) (ident c))))");
    expect_tree("predict (W @ x)'",
                "(spec (predict (transpose (binop @ (ident W) (ident x)))))");
    expect_tree("predict -x'",
                "(spec (predict (neg (transpose (ident x)))))");
}

Test(parse, declarations_and_types)
{
    expect_tree("model m \"a\\tb\"\ndim n = 2 * 8\ninput x : vector[n]\n"
                "param W : matrix[h, 2*d] ~ normal(0, 0.1)\nparam s : scalar\n",
                "(spec (model m (str \"a\tb\")) (dim n (binop * (num 2) (num 8))) "
                "(input x vector (ident n)) "
                "(param W matrix (ident h) (binop * (num 2) (ident d)) (call normal (num 0) (num 0.1))) "
                "(param s scalar))");
}

Test(parse, calls_keyword_arguments_and_lists)
{
    expect_tree("data low_rank(rows = 4,\n   observed = 0.5)\n",
                "(spec (data (call low_rank (kwarg rows (num 4)) (kwarg observed (num 0.5)))))");
    /* Keywords may name keyword arguments (train = 32). */
    expect_tree("data sparse_regression(train = 32, test = 8)",
                "(spec (data (call sparse_regression (kwarg train (num 32)) (kwarg test (num 8)))))");
    expect_tree("predict diag([1, 2.5, 3]) @ matrix(\"A.csv\") @ x",
                "(spec (predict (binop @ (binop @ (call diag (list (num 1) (num 2.5) (num 3))) "
                "(call matrix (str \"A.csv\"))) (ident x))))");
    expect_tree("data teacher(inputs = normal(0, 1))\nteacher { W ~ normal(0, 1) }",
                "(spec (data (call teacher (kwarg inputs (call normal (num 0) (num 1))))) "
                "(teacher (setting ~ W (call normal (num 0) (num 1)))))");
}

Test(parse, blocks_settings_and_symmetry)
{
    expect_tree("symmetry s over j in h { W[j, :] = 1, v[j] = -1 }\n"
                "design log_sparsity(diff(n) @ w) { strength = 4/3; u ~ normal(0,1)\n"
                " init ~ normal(0, 1e-3) }\n"
                "train { lr = 1e-3; steps = 10; extend { steps = 5 } }; baseline l1(weight = 0.1) { lr = 2 }\n"
                "baseline vanilla\n"
                "loss mse(mask = observed, normalise = all)\n"
                "verify {\n  gradient_tol = 1e-6\n\n}\n",
                "(spec (symmetry s (setting W (num 1) (index (ident j) (:))) "
                "(setting v (neg (num 1)) (index (ident j)))) "
                "(design (call log_sparsity (binop @ (call diff (ident n)) (ident w))) "
                "(setting strength (binop / (num 4) (num 3))) (setting ~ u (call normal (num 0) (num 1))) "
                "(setting ~ init (call normal (num 0) (num 1e-3)))) "
                "(train (setting lr (num 1e-3)) (setting steps (num 10)) (block extend (setting steps (num 5)))) "
                "(baseline (call l1 (kwarg weight (num 0.1))) (setting lr (num 2))) "
                "(baseline (ident vanilla)) "
                "(loss (call mse (kwarg mask (ident observed)) (kwarg normalise (ident all)))) "
                "(verify (setting gradient_tol (num 1e-6))))");
}

Test(parse, statement_separators_and_comments)
{
    expect_tree("\n\n# comment\ndim a = 1; dim b = 2 # trailing\n;;\n  dim c = 3",
                "(spec (dim a (num 1)) (dim b (num 2)) (dim c (num 3)))");
}

Test(parse, empty_file_is_an_empty_spec)
{
    expect_tree("", "(spec)");
    expect_tree("# nothing but a comment\n\n", "(spec)");
}

Test(parse, locations_cover_constructs)
{
    const char t[] = "model m\npredict  a +\tb\n";
    ibc_source src = { "t.ibs", t, sizeof t - 1 };
    ibc_arena *a = arena_new();
    ibc_diag d;
    diag_init(&d, &src, stderr);
    ast_node *root = parse_spec(a, &src, &d);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(root->nkids, 2);
    ast_node *m = root->kids[0];
    cr_assert_eq(m->name_loc.begin, 6);
    cr_assert_eq(m->name_loc.end, 7);
    ast_node *e = root->kids[1]->lhs;
    cr_assert_eq(e->kind, AST_BINOP);
    cr_assert_eq(e->loc.begin, 17, "from the first operand");
    cr_assert_eq(e->loc.end, 22, "to the last");
    arena_free(a);
}

Test(parse, several_errors_recover_per_line)
{
    parsed p = parse_str("dim = 3\npredict (a +\n b)\nparam : vector[n]\ntrain { lr = ; steps = 3 }\n");
    cr_assert_eq(p.errors, 3, "got:\n%s", p.diags);
    cr_assert_str_eq(p.diags,
                     "t.ibs:1:5: error: syntax error, unexpected '=', expecting identifier\n"
                     "dim = 3\n"
                     "    ^\n"
                     "t.ibs:4:7: error: syntax error, unexpected ':', expecting identifier\n"
                     "param : vector[n]\n"
                     "      ^\n"
                     "t.ibs:5:14: error: syntax error, unexpected ';'\n"
                     "train { lr = ; steps = 3 }\n"
                     "             ^\n"
                     "3 errors generated.\n");
    /* The good statements between the bad ones survive, and so does the rest
     * of a block after a bad entry. */
    cr_assert_str_eq(p.tree, "(spec (predict (binop + (ident a) (ident b))) (train (setting steps (num 3))))");
    parsed_free(&p);
}

Test(parse, unclosed_block_hint)
{
    parsed p = parse_str("model m\ntrain { lr = 3\n  steps = 4\n");
    cr_assert_eq(p.errors, 1, "got:\n%s", p.diags);
    cr_assert_str_eq(p.diags,
                     "t.ibs:2:7: error: unclosed '{': the block opened here reaches the end of the file (add '}')\n"
                     "train { lr = 3\n"
                     "      ^\n"
                     "1 error generated.\n");
    cr_assert_str_eq(p.tree, "(spec (model m) (train (setting lr (num 3)) (setting steps (num 4))))");
    parsed_free(&p);
}

Test(parse, missing_paren_does_not_swallow_the_file)
{
    /* After the error, brackets are forgotten, so the next newline ends the
     * bad statement and the following ones parse. */
    parsed p = parse_str("predict f(x\ndim n = 3\ndim k = 4\n");
    cr_assert_eq(p.errors, 1, "got:\n%s", p.diags);
    cr_assert(strstr(p.tree, "(dim k (num 4))") != NULL, "got: %s", p.tree);
    parsed_free(&p);
}

Test(parse, invalid_tokens_are_reported_with_the_lexer_message)
{
    parsed p = parse_str("dim n = $ 4\ndim k = \"ab\\q\"\ndim j = 1\n");
    cr_assert_eq(p.errors, 2, "got:\n%s", p.diags);
    cr_assert(strstr(p.diags, "t.ibs:1:9: error: invalid character 0x24\n") != NULL, "got:\n%s", p.diags);
    cr_assert(strstr(p.diags, "t.ibs:2:9: error: unknown escape '\\q' in string") != NULL, "got:\n%s", p.diags);
    cr_assert(strstr(p.tree, "(dim j (num 1))") != NULL);
    parsed_free(&p);
}

Test(parse, nesting_up_to_the_cap_parses)
{
    size_t depth = 256;   /* the cap: "deeper than 256" is the error */
    size_t len = strlen("predict ") + 2 * depth + 1;
    char *t = malloc(len + 1);
    strcpy(t, "predict ");
    size_t k = strlen(t);
    memset(t + k, '(', depth);
    t[k + depth] = 'x';
    memset(t + k + depth + 1, ')', depth);
    t[len] = '\0';
    parsed p = parse_text(t, len);
    cr_assert_eq(p.errors, 0, "got:\n%.300s", p.diags);
    cr_assert_str_eq(p.tree, "(spec (predict (ident x)))");
    parsed_free(&p);

    /* One level more is an error, once, not one per bracket. */
    char *u = malloc(len + 3);
    strcpy(u, "predict ");
    memset(u + k, '(', depth + 1);
    u[k + depth + 1] = 'x';
    memset(u + k + depth + 2, ')', depth + 1);
    u[len + 2] = '\0';
    p = parse_text(u, len + 2);
    cr_assert_eq(p.errors, 1, "got:\n%.300s", p.diags);
    cr_assert(strstr(p.diags, "t.ibs:1:265: error: nesting deeper than 256 levels\n") != NULL,
              "got:\n%.300s", p.diags);
    parsed_free(&p);
    free(u);
    free(t);
}

Test(parse, garbage_never_crashes)
{
    /* Every single byte value alone, and after a statement keyword. */
    for (int c = 0; c < 256; c++) {
        char t[16];
        t[0] = (char)c;
        parsed p = parse_text(t, 1);
        parsed_free(&p);
        memcpy(t, "predict ", 8);
        t[8] = (char)c;
        p = parse_text(t, 9);
        parsed_free(&p);
    }
}

Test(arena, allocations_are_zeroed_aligned_and_distinct)
{
    ibc_arena *a = arena_new();
    char *prev = NULL;
    for (size_t i = 1; i < 2000; i += 37) {
        char *p = arena_alloc(a, i);
        cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t k = 0; k < i; k++)
            cr_assert_eq(p[k], 0);
        memset(p, 0xab, i);
        cr_assert_neq(p, prev);
        prev = p;
    }
    /* A block larger than a chunk, then small ones again. */
    char *big = arena_alloc(a, 1u << 20);
    big[(1u << 20) - 1] = 1;
    char *s = arena_strndup(a, "hello world", 5);
    cr_assert_str_eq(s, "hello");
    cr_assert_str_eq(arena_printf(a, "%s-%d", "x", 42), "x-42");
    cr_assert_not_null(arena_alloc(a, 0), "a zero-size request still gives a pointer");
    arena_free(a);
    arena_free(NULL);
}

static int cleanup_count;
static void count_cleanup(void *arg)
{
    cleanup_count += *(int *)arg;
}

Test(arena, cleanups_run_once_at_free)
{
    static int one = 1, ten = 10;
    ibc_arena *a = arena_new();
    cleanup_count = 0;
    arena_on_free(a, count_cleanup, &one);
    arena_on_free(a, count_cleanup, &ten);
    cr_assert_eq(cleanup_count, 0);
    arena_free(a);
    cr_assert_eq(cleanup_count, 11);
}

/* ast_text: the predictor of "predict EXPR" printed back, with the
 * source (src) or without it (NULL: no parentheses of the spec's known),
 * at most max bytes (0: any). */
static char *predict_text(const char *expr, bool with_source, size_t max)
{
    char text[512];
    snprintf(text, sizeof text, "predict %s\n", expr);
    ibc_source src = { "t.ibs", text, strlen(text) };
    ibc_arena *a = arena_new();
    char *dbuf = NULL;
    size_t dn = 0;
    FILE *df = open_memstream(&dbuf, &dn);
    ibc_diag d;
    diag_init(&d, &src, df);
    ast_node *root = parse_spec(a, &src, &d);
    fclose(df);
    cr_assert_eq(d.errors, 0, "%s", dbuf);
    free(dbuf);
    cr_assert_eq(root->nkids, 1);
    char *t = ast_text(root->kids[0]->lhs, with_source ? &src : NULL, max);
    arena_free(a);
    return t;
}

static void expect_text(const char *expr, bool with_source, size_t max, const char *want)
{
    char *t = predict_text(expr, with_source, max);
    cr_assert_str_eq(t, want, "%s printed as %s", expr, t);
    free(t);
}

Test(parse, expressions_print_back_as_spec_text)
{
    /* the spec's parentheses are kept, even where the grammar needs none */
    expect_text("softmax((X @ Wq) @ (X @ Wk)' / sqrt(k)) @ (X @ Wv)", true, 0,
                "softmax((X @ Wq) @ (X @ Wk)' / sqrt(k)) @ (X @ Wv)");
    expect_text("W3 @ W2 @ W1", true, 0, "W3 @ W2 @ W1");
    expect_text("a  +(b*c)", true, 0, "a + (b * c)");
    expect_text("mse(mask=observed, normalise = all)", true, 0, "mse(mask = observed, normalise = all)");
    expect_text("x @ (diag([1, 2.50, 3e-1]) @ w)", true, 0, "x @ (diag([1, 2.50, 3e-1]) @ w)");
    expect_text("matrix(\"a b.csv\") @ w", true, 0, "matrix(\"a b.csv\") @ w");
    /* without the source, the parentheses the grammar needs and no more */
    expect_text("(X @ Wq) @ (X @ Wk)'", false, 0, "X @ Wq @ (X @ Wk)'");
    expect_text("a - (b - c) - (d + e)", false, 0, "a - (b - c) - (d + e)");
    expect_text("-(a * b) * -c'", false, 0, "-(a * b) * -c'");
    expect_text("-(-a)", false, 0, "-(-a)");
    expect_text("(a + b) * c / (d @ e)", false, 0, "(a + b) * c / (d @ e)");
    /* bounded: what does not fit becomes "..." or "f(...)" */
    expect_text("sum(softmax(A @ W' / 2) * tanh(W @ V)) + c * (u @ cumsum(relu(V @ (W @ x)) - sigmoid(x * u)))",
                true, 60, "sum(softmax(...) * tanh(...)) + c * (u @ cumsum(...))");
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
