/* test_sema.c: the semantic checks (sema.c).  Shapes of every operator
 * (numpy-like '@', Hadamard and scaling '*', '+', '/', transpose, the
 * elementwise functions, softmax, sum, cumsum, the fixed operators), the
 * checked spec (dims, train/verify defaults, design, baselines, loss mask,
 * teacher, symmetry), one located error per check with its exact first
 * line, warnings, and the seven specs of specs/ checking clean; the
 * design's factor names from its strength, a setting given twice, a
 * division by a constant zero, and one error (not also a warning) for a
 * misspelt mask. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibc.h"

typedef struct {
    ibc_arena *arena;
    ibc_source src;
    ibc_spec *spec;     /* NULL when errors were reported */
    char *diags;
    int errors, warnings;
} checked;

static checked check_as(const char *path, const char *text)
{
    checked c = { 0 };
    c.arena = arena_new();
    c.src = (ibc_source){ path, text, strlen(text) };
    size_t n = 0;
    FILE *f = open_memstream(&c.diags, &n);
    ibc_diag d;
    diag_init(&d, &c.src, f);
    ast_node *root = parse_spec(c.arena, &c.src, &d);
    cr_assert_eq(d.errors, 0, "the test's spec must parse");
    c.spec = sema_check(c.arena, root, &d);
    c.errors = d.errors;
    c.warnings = d.warnings;
    fclose(f);
    return c;
}

static checked check(const char *text)
{
    return check_as("t.ibs", text);
}

static void checked_free(checked *c)
{
    arena_free(c->arena);
    free(c->diags);
}

/* A complete spec around one predictor: every name below is used by some
 * predictor, unused ones only warn.  The data are files, whose shapes the
 * trainer checks when it reads them: any inputs and predictor fit. */
#define PRELUDE                                                                   \
    "model m \"test\"\n"                                                          \
    "dim n = 4\n"                                                                 \
    "dim h = 3\n"                                                                 \
    "input x : vector[n]\n"                                                       \
    "input X : matrix[h, n]\n"                                                    \
    "param w : vector[n] ~ normal(0, 0.1)\n"                                      \
    "param W : matrix[h, n] ~ normal(0, 0.1)\n"                                   \
    "param v : vector[h] ~ normal(0, 0.1)\n"                                      \
    "param s : scalar ~ constant(1)\n"                                            \
    "data csv(x = \"tests/data/good.csv\", y = \"tests/data/y3.csv\")\n"          \
    "loss mse\n"                                                                  \
    "train { lr = 0.01; steps = 10 }\n"

static void expect_shape(const char *expr, int rank, long rows, long cols)
{
    char text[2048];
    snprintf(text, sizeof text, PRELUDE "predict %s\n", expr);
    checked c = check(text);
    cr_assert_not_null(c.spec, "predict %s: unexpected errors:\n%s", expr, c.diags);
    ibc_shape sh = c.spec->predict->shape;
    cr_assert(sh.rank == rank && sh.rows == rows && sh.cols == cols,
              "predict %s: got rank %d %ld x %ld, want rank %d %ld x %ld", expr, sh.rank, sh.rows,
              sh.cols, rank, rows, cols);
    cr_assert_eq(c.spec->out_shape.rank, rank);
    checked_free(&c);
}

Test(sema, matmul_shapes)
{
    expect_shape("W @ x", 1, 3, 1);              /* matrix @ vector -> vector */
    expect_shape("v @ W", 1, 4, 1);              /* vector @ matrix -> vector */
    expect_shape("x @ w", 0, 1, 1);              /* vector @ vector -> scalar */
    expect_shape("W @ W'", 2, 3, 3);             /* matrix @ matrix -> matrix */
    expect_shape("W' @ X", 2, 4, 4);
    expect_shape("v @ (W @ x)", 0, 1, 1);
}

Test(sema, elementwise_and_scaling_shapes)
{
    expect_shape("W * X", 2, 3, 4);              /* Hadamard */
    expect_shape("s * w", 1, 4, 1);              /* scalar scaling, either side */
    expect_shape("w * 2", 1, 4, 1);
    expect_shape("w / 2", 1, 4, 1);
    expect_shape("W / s", 2, 3, 4);
    expect_shape("w + x - w", 1, 4, 1);
    expect_shape("-W", 2, 3, 4);
    expect_shape("relu(W @ x) * v", 1, 3, 1);
    expect_shape("tanh(w) + sigmoid(w) + exp(w)", 1, 4, 1);
}

Test(sema, function_shapes)
{
    expect_shape("sum(W)", 0, 1, 1);
    expect_shape("softmax(W)", 2, 3, 4);         /* rows */
    expect_shape("softmax(w)", 1, 4, 1);
    expect_shape("cumsum(w)", 1, 4, 1);
    expect_shape("transpose(W)", 2, 4, 3);
    expect_shape("W'", 2, 4, 3);
    expect_shape("x @ w * sqrt(4) * abs(-2)", 0, 1, 1);
}

Test(sema, operator_shapes)
{
    expect_shape("identity(n) @ w", 1, 4, 1);
    expect_shape("diff(n) @ w", 1, 4, 1);
    expect_shape("diff_open(n) @ w", 1, 3, 1);   /* (n-1) x n */
    expect_shape("dct(n) @ w", 1, 4, 1);
    expect_shape("cosine(n)' @ w", 1, 4, 1);
    expect_shape("diag([1, 2, 3]) @ v", 1, 3, 1);
    expect_shape("solve(diff(n), w)", 1, 4, 1);
    expect_shape("identity(2 * h) @ identity(6)", 2, 6, 6);
}

Test(sema, checked_spec_fields)
{
    checked c = check(PRELUDE "predict x @ w\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    ibc_spec *sp = c.spec;
    cr_assert_str_eq(sp->model, "m");
    cr_assert_str_eq(sp->description, "test");
    cr_assert_eq(sp->ndims, 2);
    cr_assert_eq(sp->dims[0].value, 4);
    cr_assert_eq(sp->dims[1].value, 3);
    cr_assert_eq(sp->nparams, 4);
    cr_assert_eq(sp->ninputs, 2);
    cr_assert(sp->params[1].shape.rank == 2 && sp->params[1].shape.rows == 3 && sp->params[1].shape.cols == 4);
    cr_assert_not_null(sp->params[0].init);
    cr_assert_str_eq(sp->data->name, "csv");
    cr_assert_null(sp->teacher);
    cr_assert_eq(sp->loss, LOSS_MSE);
    cr_assert_null(sp->loss_mask);
    cr_assert_eq(sp->design.kind, DESIGN_NONE);
    cr_assert_eq(sp->nbaselines, 0);
    /* Defaults: full batch, seed 0, no extend, verification tolerances. */
    cr_assert_eq(sp->train.lr, 0.01);
    cr_assert_eq(sp->train.steps, 10);
    cr_assert_eq(sp->train.batch, 0);
    cr_assert_eq(sp->train.seed, 0);
    cr_assert_eq(sp->train.extend_steps, 0);
    cr_assert_eq(sp->verify.invariance_tol, 1e-10);
    cr_assert_eq(sp->verify.gradient_tol, 1e-6);
    cr_assert_eq(sp->verify.logdet_tol, 1e-9);
    cr_assert_eq(sp->verify.stationary_beta, 0);
    /* x, w used; the rest only warn. */
    cr_assert_eq(c.warnings, 4, "%s", c.diags);
    cr_assert(sp->params[0].used && sp->inputs[0].used && !sp->params[1].used);
    checked_free(&c);
}

Test(sema, train_verify_baselines_and_design)
{
    checked c = check(
        "model m\ndim n = 8\ninput x : vector[n]\nparam w : vector[n] ~ normal(0, 1e-4)\n"
        "data cosine_spikes(modes = n, train = 32, test = 100, nonzeros = 3, noise = 0.1)\n"
        "predict x @ w\nloss mse\n"
        "design log_sparsity(diff(n) @ w) {\n  depth = 2\n  u ~ normal(0, 0.01)\n  init ~ zeros()\n  lr = 0.5\n}\n"
        "baseline vanilla\nbaseline l1(weight = 0.25) { lr = 2e-3 }\n"
        "train {\n  lr = 1e-3\n  steps = 500\n  batch = 16\n  seed = 7\n  record_every = 10\n"
        "  extend { steps = 100; lr = 1e-4 }\n}\n"
        "verify { invariance_tol = 1e-8; gradient_tol = 1e-5; logdet_tol = 1e-7; "
        "stationary_beta = 100; stationary_eps = 0.01 }\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    ibc_spec *sp = c.spec;
    cr_assert_eq(sp->train.lr, 1e-3);
    cr_assert_eq(sp->train.steps, 500);
    cr_assert_eq(sp->train.batch, 16);
    cr_assert_eq(sp->train.seed, 7);
    cr_assert_eq(sp->train.record_every, 10);
    cr_assert_eq(sp->train.extend_steps, 100);
    cr_assert_eq(sp->train.extend_lr, 1e-4);
    cr_assert_eq(sp->verify.invariance_tol, 1e-8);
    cr_assert_eq(sp->verify.gradient_tol, 1e-5);
    cr_assert_eq(sp->verify.logdet_tol, 1e-7);
    cr_assert_eq(sp->verify.stationary_beta, 100);
    cr_assert_eq(sp->verify.stationary_eps, 0.01);
    cr_assert_eq(sp->nbaselines, 2);
    cr_assert_eq(sp->baselines[0].kind, BASELINE_VANILLA);
    cr_assert_eq(sp->baselines[1].kind, BASELINE_L1);
    cr_assert_eq(sp->baselines[1].weight, 0.25);
    cr_assert_eq(sp->baselines[1].lr, 2e-3);
    cr_assert_eq(sp->design.kind, DESIGN_LOG_SPARSITY);
    cr_assert_eq(sp->design.param, 0);
    cr_assert_eq(sp->design.depth, 2);
    cr_assert_null(sp->design.strength);
    cr_assert_eq(sp->design.lr, 0.5);
    cr_assert_eq(sp->design.ninits, 2);
    cr_assert_str_eq(sp->design.op->name, "diff");
    cr_assert(sp->design.op->shape.rank == 2 && sp->design.op->shape.rows == 8);
    checked_free(&c);
}

Test(sema, strength_spectral_mask_teacher_symmetry)
{
    checked c = check(
        "model m\ndim n = 5\nparam w : vector[n] ~ normal(0, 1)\n"
        "data noisy_target(value = 1, noise = 0.1)\npredict sum(w)\nloss mse\n"
        "design log_sparsity(identity(n) @ w) { strength = 4/3 }\ntrain { lr = 1; steps = 1 }\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    cr_assert_str_eq(c.spec->design.strength, "4/3");
    cr_assert_eq(c.spec->design.depth, 0);
    checked_free(&c);

    c = check("model m\ndim n = 20\nparam Z : matrix[n, n] ~ normal(0, 0.01)\n"
              "data low_rank(size = n, singular_values = [15, 5], observed = 0.2, batch_fraction = 0.5)\n"
              "predict Z\nloss mse(mask = observed, normalise = all)\n"
              "design log_spectral(identity(n) @ Z) { rank = 20; U ~ normal(0, 0.1); V ~ normal(0, 0.1) }\n"
              "train { lr = 1e-3; steps = 5 }\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    cr_assert_eq(c.warnings, 0, "%s", c.diags);
    cr_assert_eq(c.spec->design.kind, DESIGN_LOG_SPECTRAL);
    cr_assert_eq(c.spec->design.rank, 20);
    cr_assert_str_eq(c.spec->loss_mask, "observed");
    cr_assert(c.spec->loss_normalise_all);
    checked_free(&c);

    c = check("model m\ndim d = 3\ndim h = 16\ninput x : vector[d]\n"
              "param W : matrix[h, d] ~ normal(0, 1)\nparam v : vector[h] ~ normal(0, 1)\n"
              "data teacher(inputs = normal(0, 1), noise = 0.1)\nteacher { W ~ normal(0, 1); v ~ normal(0, 1) }\n"
              "predict v @ relu(W @ x)\nloss mse\n"
              "symmetry rescale over j in h { W[j, :] = 1, v[j] = -1 }\n"
              "init unbalance(from = 1, to = 2)\ntrain { lr = 1e-3; steps = 5 }\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    cr_assert_not_null(c.spec->teacher);
    cr_assert_eq(c.spec->nsymmetries, 1);
    cr_assert_not_null(c.spec->init);
    cr_assert_eq(c.warnings, 0, "%s", c.diags);
    checked_free(&c);
}

Test(sema, dims_fold_constants)
{
    checked c = check("model m\ndim n = 4\ndim k = 2 * n + 1\ndim j = (n - 1) * 3\ndim q = 8 / 2\n"
                      "param w : matrix[k, j] ~ zeros()\nparam u : vector[q] ~ zeros()\n"
                      "data noisy_target(value = 0, noise = 1)\npredict sum(w) + sum(u)\nloss mse\n"
                      "train { lr = 1; steps = 1 }\n");
    cr_assert_not_null(c.spec, "%s", c.diags);
    cr_assert_eq(c.spec->dims[1].value, 9);
    cr_assert_eq(c.spec->dims[2].value, 9);
    cr_assert_eq(c.spec->dims[3].value, 4);
    cr_assert(c.spec->params[0].shape.rows == 9 && c.spec->params[0].shape.cols == 9);
    checked_free(&c);
}

/* Each bad predictor or statement, appended to PRELUDE (which is 12 lines,
 * so extra starts on line 13; a predictor follows when extra has none),
 * gives exactly one error whose first line is `want`. */
static void expect_error(const char *extra, const char *want)
{
    char text[4096];
    snprintf(text, sizeof text, PRELUDE "%s\n%s", extra, strstr(extra, "predict") ? "" : "predict x @ w\n");
    checked c = check(text);
    cr_assert_null(c.spec, "%s: no error reported", extra);
    cr_assert_eq(c.errors, 1, "%s: got\n%s", extra, c.diags);
    size_t n = strcspn(c.diags, "\n");
    cr_assert(strlen(want) == n && strncmp(c.diags, want, n) == 0, "%s:\n got: %.*s\nwant: %s", extra,
              (int)n, c.diags, want);
    checked_free(&c);
}

Test(sema, shape_errors_show_both_shapes)
{
    expect_error("predict W @ v",
                 "t.ibs:13:9: error: shape mismatch in '@': matrix[3, 4] @ vector[3] (inner dimensions 4 and 3 differ)");
    expect_error("predict w + v",
                 "t.ibs:13:9: error: shape mismatch in '+': vector[4] + vector[3]");
    expect_error("predict sum(W * W')",
                 "t.ibs:13:13: error: shape mismatch in '*' (elementwise): matrix[3, 4] * matrix[4, 3] (use '@' for a matrix product)");
    expect_error("predict s @ w",
                 "t.ibs:13:9: error: '@' needs vectors or matrices, got scalar @ vector[4] (use '*' to scale)");
    expect_error("predict x / w",
                 "t.ibs:13:13: error: division needs a scalar on the right, got vector[4]");
    expect_error("predict w'",
                 "t.ibs:13:9: error: transpose (') needs a matrix, got vector[4]");
    expect_error("predict cumsum(W)",
                 "t.ibs:13:16: error: 'cumsum' needs a vector, got matrix[3, 4]");
    expect_error("predict softmax(s)",
                 "t.ibs:13:17: error: 'softmax' needs a vector or a matrix (rows), got a scalar");
    expect_error("predict sum(solve(diff_open(n), w))",
                 "t.ibs:13:19: error: 'solve' needs a square operator, got matrix[3, 4]");
    expect_error("predict x @ (diag([1, 2, 3]) @ w)",
                 "t.ibs:13:13: error: shape mismatch in '@': matrix[3, 3] @ vector[4] (inner dimensions 3 and 4 differ)");
}

Test(sema, name_errors_suggest)
{
    expect_error("predict x @ ww",
                 "t.ibs:13:13: error: undefined name 'ww'; did you mean 'w'?");
    expect_error("predict sum(rleu(W))",
                 "t.ibs:13:13: error: unknown function 'rleu'; did you mean 'relu'?");
    expect_error("predict identty(n) @ w @ x",
                 "t.ibs:13:9: error: unknown function 'identty'; did you mean 'identity'?");
    expect_error("param q : vector[n] ~ nromal(0, 1)",
                 "t.ibs:13:23: error: unknown distribution 'nromal'; did you mean 'normal'?");
    expect_error("param w : vector[n] ~ zeros()",
                 "t.ibs:13:7: error: 'w' is already declared");
    expect_error("dim n = 5",
                 "t.ibs:13:5: error: 'n' is already declared");
    expect_error("baseline vanila",
                 "t.ibs:13:10: error: unknown baseline 'vanila'; did you mean 'vanilla'?");
    expect_error("verify { gradient_tl = 1e-6 }",
                 "t.ibs:13:10: error: unknown setting 'gradient_tl' in 'verify'; did you mean 'gradient_tol'?");
    expect_error("init unbalnce(from = 1, to = 2)",
                 "t.ibs:13:6: error: unknown initialisation 'unbalnce'; did you mean 'unbalance'?");
}

Test(sema, value_errors)
{
    expect_error("dim k = 0",
                 "t.ibs:13:9: error: a dimension must be at least 1, got 0");
    expect_error("dim k = 2.5",
                 "t.ibs:13:9: error: a dimension must be an integer, got 2.5");
    expect_error("dim k = 1000000",
                 "t.ibs:13:9: error: a dimension 1000000 is larger than the cap of 100000");
    expect_error("param q : vector[n] ~ normal(0, -1)",
                 "t.ibs:13:33: error: standard deviation must be non-negative, got -1");
    expect_error("param q : vector[n] ~ uniform(1, 0)",
                 "t.ibs:13:23: error: uniform(lo, hi) needs lo < hi");
    expect_error("param q : vector[n] ~ normal(0)",
                 "t.ibs:13:23: error: 'normal' takes 2 arguments, got 1");
    expect_error("baseline l1(weight = -1)",
                 "t.ibs:13:22: error: the L1 weight must be positive, got -1");
    expect_error("baseline l1",
                 "t.ibs:13:10: error: an L1 baseline needs its weight: baseline l1(weight = 0.1)");
    expect_error("predict x @ w * sqrt(-4)",
                 "t.ibs:13:22: error: square root of a negative number (-4)");
    expect_error("predict x @ w * (1 / 0)",
                 "t.ibs:13:22: error: division by zero");
    expect_error("predict x @ w * 1e999",
                 "t.ibs:13:17: error: number '1e999' is out of range");
}

Test(sema, element_cap_states_the_size)
{
    expect_error("dim b = 100000\nparam big : matrix[b, b] ~ zeros()\npredict sum(big)",
                 "t.ibs:14:13: error: 'big' has 10000000000 elements, more than the cap of 50000000 (381 MiB of doubles)");
}

Test(sema, statement_errors)
{
    expect_error("predict x @ w\npredict x @ w",
                 "t.ibs:14:1: error: only one 'predict' statement is allowed");
    expect_error("predict x @ w\nteacher { w ~ normal(0, 1) }",
                 "t.ibs:14:1: error: a 'teacher' block needs data teacher(...)");
    expect_error("predict x @ w\nsymmetry s over j in q { w[j] = 1 }",
                 "t.ibs:14:1: error: 'q' is not a dimension (symmetry ... over j in DIM)");
    expect_error("predict x @ w\nsymmetry s over j in n { w[j] = 1.5 }",
                 "t.ibs:14:33: error: a symmetry exponent must be an integer, got 1.5");
}

Test(sema, design_errors)
{
    expect_error("predict x @ w\ndesign log_sparsity(identity(h) @ w)",
                 "t.ibs:14:21: error: operator does not fit its argument: matrix[3, 3] @ vector[4] (3 columns, 4 rows)");
    expect_error("predict x @ w\ndesign log_sparsity(identity(n) @ x)",
                 "t.ibs:14:35: error: 'x' is not a parameter; a design target applies to a parameter");
    expect_error("predict x @ w\ndesign log_spectral(identity(n) @ w)",
                 "t.ibs:14:35: error: log_spectral needs a matrix parameter, but 'w' is vector[4]");
    expect_error("predict x @ w\ndesign log_sparsty(identity(n) @ w)",
                 "t.ibs:14:8: error: unknown design target 'log_sparsty'; did you mean 'log_sparsity'?");
    expect_error("predict x @ w\ndesign log_sparsity(w)",
                 "t.ibs:14:8: error: a design target is log_sparsity(OPERATOR @ PARAMETER), e.g. log_sparsity(identity(n) @ w)");
    expect_error("predict x @ w\ndesign log_sparsity(identity(n) @ w) { depth = 2; strength = 4/3 }",
                 "t.ibs:14:62: error: give either a depth or a strength, not both");
    expect_error("predict x @ w\ndesign log_sparsity(identity(n) @ w) { depth = 1 }",
                 "t.ibs:14:48: error: the depth must be at least 2, got 1");
    expect_error("predict x @ w\ndesign log_sparsity(identity(n) @ w) { deph = 2 }",
                 "t.ibs:14:40: error: unknown setting 'deph' in 'design'; did you mean 'depth'?");
    expect_error("predict x @ w\ndesign log_sparsity(identity(n) @ w) { depth = 2; a1 ~ zeros() }",
                 "t.ibs:14:51: error: 'a1' is not a factor of this design");
}

Test(sema, train_errors)
{
    /* PRELUDE has its train block; a spec without one is built by hand. */
    checked c = check("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
                      "data noisy_target(value = 0, noise = 1)\npredict sum(w)\nloss mse\n"
                      "train { steps = 4; lr = 0; batch = 0; seed = 1; stepz = 3 }\n");
    cr_assert_null(c.spec);
    cr_assert(strstr(c.diags, "t.ibs:7:25: error: the learning rate must be positive, got 0\n"), "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:7:36: error: the batch size must be at least 1, got 0\n"), "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:7:49: error: unknown setting 'stepz' in 'train'; did you mean 'steps'?\n"),
              "%s", c.diags);
    checked_free(&c);

    c = check("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
              "data noisy_target(value = 0, noise = 1)\npredict sum(w)\nloss mse\ntrain { steps = 4 }\n");
    cr_assert_null(c.spec);
    cr_assert(strstr(c.diags, "t.ibs:7:1: error: 'train' needs a learning rate: lr = 1e-3\n"), "%s", c.diags);
    checked_free(&c);
}

Test(sema, required_statements_point_at_the_model_line)
{
    checked c = check("\n\nmodel m\ndim n = 2\nparam w : vector[n] ~ zeros()\n");
    cr_assert_null(c.spec);
    cr_assert_eq(c.errors, 4, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:3:1: error: the spec has no 'data' statement\n"), "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:3:1: error: the spec has no 'predict' statement\n"));
    cr_assert(strstr(c.diags, "t.ibs:3:1: error: the spec has no 'loss' statement (loss mse)\n"));
    cr_assert(strstr(c.diags, "t.ibs:3:1: error: the spec has no 'train' block\n"));
    checked_free(&c);

    c = check("# nothing\n");
    cr_assert_null(c.spec);
    cr_assert_eq(c.errors, 1);
    cr_assert(strstr(c.diags, "error: the spec is empty"), "%s", c.diags);
    checked_free(&c);
}

Test(sema, independent_errors_are_all_reported)
{
    checked c = check(PRELUDE "dim k = 0\npredict x @ ww\nbaseline vanila\n");
    cr_assert_eq(c.errors, 3, "%s", c.diags);
    checked_free(&c);
    /* A bad declaration does not cascade into errors at every use. */
    c = check(PRELUDE "param q : vector[zz] ~ zeros()\npredict x @ q + x @ q + x @ q\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    checked_free(&c);
}

Test(sema, warnings)
{
    checked c = check("model m\ndim n = 2\ndim k = 7\ninput x : vector[n]\ninput y : vector[n]\n"
                      "param w : vector[n] ~ zeros()\nparam u : vector[n] ~ zeros()\n"
                      "data sparse_regression(features = 4, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n"
                      "predict x @ w\nloss mse\ntrain { lr = 1; steps = 1 }\n");
    cr_assert_not_null(c.spec, "warnings do not fail a check:\n%s", c.diags);
    cr_assert_eq(c.errors, 0);
    cr_assert_eq(c.warnings, 3, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:3:5: warning: dimension 'k' is never used\n"), "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:5:7: warning: input 'y' is never used in the predictor\n"));
    cr_assert(strstr(c.diags, "t.ibs:7:7: warning: parameter 'u' is never used in the predictor\n"));
    checked_free(&c);
    c = check("model m\ndim n = 2\nparam Z : matrix[n, n] ~ zeros()\n"
              "data low_rank(size = n, singular_values = [1], observed = 0.5)\n"
              "predict Z\nloss mse\ntrain { lr = 1; steps = 1 }\n");
    cr_assert_not_null(c.spec, "warnings do not fail a check:\n%s", c.diags);
    cr_assert_eq(c.warnings, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:6:1: warning: the data has a mask of observed entries but the loss does not use it\n"));
    checked_free(&c);
}

/* Files named in a spec are found relative to the spec's directory. */
Test(sema, files_relative_to_the_spec)
{
    char dir[] = "/tmp/ibc-test-sema-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char csv[128], spec[128];
    snprintf(csv, sizeof csv, "%s/A.csv", dir);
    snprintf(spec, sizeof spec, "%s/t.ibs", dir);
    FILE *f = fopen(csv, "w");
    fputs("1,0\n0,1\n", f);
    fclose(f);
    static const char text[] =
        "model m\ndim n = 2\ninput x : vector[n]\nparam w : vector[n] ~ zeros()\n"
        "data csv(x = \"A.csv\", y = \"A.csv\")\npredict x @ (matrix(\"A.csv\") @ w)\nloss mse\n"
        "train { lr = 1; steps = 1 }\n";
    checked c = check_as(spec, text);
    cr_assert_not_null(c.spec, "%s", c.diags);
    checked_free(&c);
    /* The same spec elsewhere cannot see the file; the message names the path tried. */
    c = check_as("elsewhere/t.ibs", text);
    cr_assert_null(c.spec);
    cr_assert(strstr(c.diags, "cannot open 'elsewhere/A.csv': No such file or directory\n"), "%s", c.diags);
    checked_free(&c);
    /* A directory is not a file. */
    static const char text2[] =
        "model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
        "data noisy_target(value = 0, noise = 1)\npredict sum(matrix(\"/tmp\") @ w)\nloss mse\n"
        "train { lr = 1; steps = 1 }\n";
    c = check_as(spec, text2);
    cr_assert_null(c.spec);
    cr_assert(strstr(c.diags, "cannot open '/tmp': a directory, not a regular file; data and operator files must be "
                              "regular files"), "%s", c.diags);
    checked_free(&c);
    unlink(csv);
    rmdir(dir);
}

/* Every spec of the project checks without an error or a warning. */
Test(sema, project_specs_are_clean)
{
    glob_t g;
    cr_assert_eq(glob("specs/*.ibs", 0, NULL, &g), 0, "run from the repository root");
    cr_assert_geq(g.gl_pathc, 7);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        ibc_source src;
        const char *err;
        cr_assert(diag_source_read(&src, g.gl_pathv[i], &err), "%s: %s", g.gl_pathv[i], err);
        ibc_arena *a = arena_new();
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        ibc_diag d;
        diag_init(&d, &src, f);
        ibc_spec *sp = sema_check(a, parse_spec(a, &src, &d), &d);
        fclose(f);
        cr_assert_not_null(sp, "%s:\n%s", g.gl_pathv[i], buf);
        cr_assert_eq(d.warnings, 0, "%s:\n%s", g.gl_pathv[i], buf);
        cr_assert_not_null(sp->predict);
        free(buf);
        arena_free(a);
        diag_source_free(&src);
    }
    globfree(&g);
}

/* A spec a design block can be appended to (line 9). */
#define DESIGN_PRELUDE                                                            \
    "model m\ndim n = 4\ninput x : vector[n]\nparam w : vector[n] ~ normal(0, 0.1)\n"  \
    "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n" \
    "predict x @ w\nloss mse\ntrain { lr = 0.01; steps = 10 }\n"

Test(sema, strength_sets_the_factor_names)
{
    checked c;
    /* strength 4/3 is depth 3: the factors are a1, a2, a3. */
    c = check(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
              "{ strength = 4/3; a1 ~ zeros(); a2 ~ zeros(); a3 ~ zeros() }\n");
    cr_assert_eq(c.errors, 0, "%s", c.diags);
    checked_free(&c);
    c = check(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
              "{ strength = 4/3; u ~ zeros() }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:9:56: error: 'u' is not a factor of this design\n"), "%s", c.diags);
    checked_free(&c);
    /* strength 1.5 = 3/2 is depth 4. */
    c = check(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
              "{ strength = 1.5; a4 ~ zeros() }\n");
    cr_assert_eq(c.errors, 0, "%s", c.diags);
    checked_free(&c);
    /* Suggestions come from this design's own factor names. */
    c = check(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
              "{ depth = 3; a4 ~ zeros() }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "error: 'a4' is not a factor of this design; did you mean 'a1'?\n"), "%s", c.diags);
    checked_free(&c);
}

Test(sema, a_setting_is_given_once)
{
    checked c;
    c = check("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
              "data noisy_target(value = 0, noise = 1)\npredict sum(w)\nloss mse\n"
              "train { lr = 0.1; steps = 3; lr = 0.2 }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:7:30: error: 'lr' is set twice in 'train'\n"
                             "train { lr = 0.1; steps = 3; lr = 0.2 }\n"
                             "                             ^~\n"
                             "t.ibs:7:9: note: the first 'lr' is here\n"), "%s", c.diags);
    checked_free(&c);
    c = check(DESIGN_PRELUDE "design log_sparsity(identity(n) @ w) "
              "{ u ~ zeros(); u ~ normal(0, 1) }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "error: 'u' is set twice in 'design'\n"), "%s", c.diags);
    checked_free(&c);
}

Test(sema, division_by_a_constant_zero)
{
    checked c;
    c = check("model m\ndim n = 2\nparam w : vector[n] ~ zeros()\n"
              "data noisy_target(value = 0, noise = 1)\npredict sum(w) / (1 - 1)\nloss mse\n"
              "train { lr = 0.1; steps = 3 }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:5:18: error: division by zero\n"), "%s", c.diags);
    checked_free(&c);
}

Test(sema, misspelt_mask_is_one_error_not_also_a_warning)
{
    checked c;
    c = check("model m\ndim n = 5\nparam Z : matrix[n, n] ~ zeros()\n"
              "data low_rank(size = n, singular_values = [3, 1], observed = 0.5)\n"
              "predict Z\nloss mse(mask = observd)\ntrain { lr = 0.1; steps = 3 }\n");
    cr_assert_eq(c.errors, 1, "%s", c.diags);
    cr_assert(strstr(c.diags, "t.ibs:6:17: error: unknown mask 'observd' (the data defines 'observed')\n"), "%s", c.diags);
    cr_assert_null(strstr(c.diags, "warning"), "%s", c.diags);
    checked_free(&c);
}
