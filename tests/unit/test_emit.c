/* test_emit.c: code generation on specs held as strings.  What is checked
 * here, beside the emitted program compiling: escaping of spec text into
 * C, code in the spec's words (names from the spec made valid and unique
 * identifiers, the spec's expressions and lines in comments, constants
 * shortest-exact, nothing declared or voided that is not needed), the
 * batched lowering (values of the parameters alone computed once per
 * step, not once per sample), products through BLAS, byte-identical
 * output for the same input, and a located error instead of a crash for
 * what code generation does not support.  tests/e2e.sh runs the trainers
 * (gradient checks of every operation, determinism, every spec). */
#include "ibc_flags.h"   /* build/: the trainer flags of the Makefile */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cwrite.h"
#include "design.h"
#include "emit.h"
#include "emit_torch.h"
#include "ibc.h"
#include "sym.h"

/* Runs the phases up to emission; returns the C text (or NULL after
 * errors, the diagnostics then in *diags). */
static char *emit_text(const char *text, char **diags)
{
    ibc_source src = { "t.ibs", text, strlen(text) };
    ibc_arena *a = arena_new();
    size_t dn = 0, cn = 0;
    char *dbuf = NULL, *cbuf = NULL;
    FILE *df = open_memstream(&dbuf, &dn), *cf = open_memstream(&cbuf, &cn);
    ibc_diag d;
    diag_init(&d, &src, df);
    bool ok = false;
    ast_node *root = parse_spec(a, &src, &d);
    ibc_spec *spec = d.errors ? NULL : sema_check(a, root, &d);
    if (spec) {
        design_result *r = spec->design.kind != DESIGN_NONE ? design_synthesise(a, spec, &d) : NULL;
        sym_derivation *der = sym_derive(a, spec, &d);
        if ((spec->design.kind == DESIGN_NONE || r) && der)
            ok = emit_program(cf, spec, r, der, &d);
    }
    fclose(df);
    fclose(cf);
    arena_free(a);
    if (diags)
        *diags = dbuf;
    else
        free(dbuf);
    if (!ok) {
        free(cbuf);
        return NULL;
    }
    return cbuf;
}

/* Whether C text compiles without a warning with the flags `ibc build`
 * compiles trainers with, and -Werror. */
static bool compiles_cleanly(const char *c)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_emit_%ld.c", (long)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(c, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cc %s -fsyntax-only -Werror -Iruntime %s", IBC_TRAINER_CFLAGS, path);
    int st = system(cmd);
    unlink(path);
    return st == 0;
}

/* The body of the generated function NAME (up to the next function). */
static char *function_body(const char *c, const char *name)
{
    const char *b = strstr(c, name);
    cr_assert(b, "no %s in the emitted program", name);
    const char *e = strstr(b, "\n}\n");
    cr_assert(e);
    return strndup(b, (size_t)(e - b));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const char tv[] =
    "model tv \"x\"\n"
    "dim n = 200\n"
    "input a : vector[n]\n"
    "param w : vector[n] ~ normal(0, 1e-4)\n"
    "data piecewise_signal(length = n, measurements = 60, levels = [1.0, -1.5], lengths = [100, 100], noise = 0.1)\n"
    "predict a @ w\n"
    "loss mse\n"
    "design log_sparsity(diff(n) @ w) { depth = 2\n u ~ normal(0, 0.3)\n v ~ normal(0, 0.3) }\n"
    "baseline vanilla\n"
    "train { lr = 1e-3; steps = 100; batch = full }\n";

Test(emit, parameter_values_are_hoisted_out_of_the_batch)
{
    char *c = emit_text(tv, NULL);
    cr_assert(c);
    /* designed: w = cumsum(u * v) once (200 + 200 values), the prediction
     * once per sample (60): a tape of 460, not 60 x 401 */
    cr_assert(strstr(c, "model 'designed': 400 parameters, tape of 460 values"), "%.3000s", c);
    char *fw = function_body(c, "static void m0_forward(");
    cr_assert_eq(count(fw, "ibrt_op_cumsum("), 1);
    /* the cumsum is not inside a loop over samples */
    const char *cs = strstr(fw, "ibrt_op_cumsum("), *loop = strstr(fw, "for (long s = 0; s < nb; s++)");
    cr_assert(!loop || loop > cs, "cumsum(u * v) is recomputed per sample");
    /* a @ w for all 60 samples is one BLAS call (gemv through mm) */
    cr_assert_eq(count(fw, "mm(0, 0, nb * 1, 1, 200"), 1, "%s", fw);
    free(fw);
    char *bw = function_body(c, "static void m0_backward(");
    cr_assert_eq(count(bw, "ibrt_op_cumsum_T("), 1, "the adjoint of cumsum runs once per step");
    free(bw);
    free(c);
}

Test(emit, same_input_same_bytes)
{
    char *a = emit_text(tv, NULL), *b = emit_text(tv, NULL);
    cr_assert(a && b);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

static const char relu_net[] =
    "model net \"x\"\n"
    "dim d = 3\n"
    "dim h = 16\n"
    "input x : vector[d]\n"
    "param W : matrix[h, d] ~ normal(0, 0.05)\n"
    "param v : vector[h] ~ normal(0, 0.05)\n"
    "predict v @ relu(W @ x)\n"
    "loss mse\n"
    "data teacher(inputs = normal(0, 1), noise = 0.1)\n"
    "teacher { W ~ normal(0, 1.5)\n v ~ normal(0, 1.5) }\n"
    "train { lr = 5e-5; steps = 10; batch = 8 }\n";

Test(emit, products_of_a_batch_are_single_blas_calls)
{
    char *c = emit_text(relu_net, NULL);
    cr_assert(c);
    char *fw = function_body(c, "static void m0_forward(");
    /* W @ x_s for all s: X (nb x 3) W' (3 x 16), one call, no per-sample loop */
    cr_assert(strstr(fw, "ibrt_mm(0, 1, nb, 16, 3, in_x, IN, p_W, 3, 0.0, t_Wx, 16);"), "%s", fw);
    cr_assert_eq(count(fw, "for (long s = 0; s < nb; s++)\n        ibrt_mm"), 0, "%s", fw);
    free(fw);
    /* the step allocates nothing: no malloc in forward, backward or the
     * sampler (the loss is the runtime driver's, tested in test_rt_driver) */
    char *bw = function_body(c, "static void m0_backward("), *lg = function_body(c, "static long draw_batch(");
    cr_assert_null(strstr(bw, "alloc("));
    cr_assert_null(strstr(lg, "alloc("));
    free(bw);
    free(lg);
    free(c);
}

Test(emit, c_string_escapes_every_byte_that_could_break_out)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    emit_c_string(f, "a\"b\\c\nd?" "?=e*/f\x01\xff");
    fclose(f);
    cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\012d\\077\\077=e*/f\\001\\377\"");
    free(buf);
}

Test(emit, hostile_description_stays_inside_strings_and_comments)
{
    static const char hostile[] =
        "model m \"*/ int main(void) { return 1; } /* \\\" ?" "?/ \\n\"\n"
        "dim n = 4\n"
        "input x : vector[n]\n"
        "param w : vector[n] ~ normal(0, 0.1)\n"
        "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n"
        "predict x @ w\n"
        "loss mse\n"
        "train { lr = 0.01; steps = 10 }\n";
    char *c = emit_text(hostile, NULL);
    cr_assert(c);
    /* the program compiles cleanly: nothing of the text escaped into code */
    cr_assert(compiles_cleanly(c), "the emitted program does not compile cleanly");
    const char *hdr_end = strstr(c, " */\n#include");
    cr_assert(hdr_end);
    char *hdr = strndup(c, (size_t)(hdr_end - c));
    cr_assert_null(strstr(hdr + 2, "*/"), "header comment closed early");
    free(hdr);
    cr_assert_null(strstr(c, "?" "?/"), "a trigraph reached the C file");
    free(c);
}

Test(emit, data_files_are_read_at_run_time_relative_to_the_spec)
{
    static const char csv[] =
        "model m \"x\"\n"
        "dim n = 4\n"
        "input x : vector[n]\n"
        "param w : vector[n] ~ normal(0, 0.1)\n"
        "data csv(x = \"tests/emit/from_files_x.csv\", y = \"tests/emit/from_files_y.csv\")\n"
        "predict x @ w\n"
        "loss mse\n"
        "train { lr = 0.01; steps = 10; batch = full }\n";
    char *c = emit_text(csv, NULL);
    cr_assert(c);
    cr_assert(strstr(c, "ibrt_gen_from_files(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, err)"));
    cr_assert(strstr(c, "/tests/emit/from_files_x.csv\";"), "paths are made absolute");
    /* full batch over a file of unknown size: the whole training set is
     * the batch, which the driver's loss walks in chunks of BMAX */
    cr_assert(strstr(c, "*X = ds->x_train;"));
    cr_assert(strstr(c, ".bmax = BMAX,"));
    free(c);
}

Test(emit, unsupported_operator_is_a_located_error)
{
    static const char bad[] =
        "model m \"x\"\n"
        "dim n = 4\n"
        "input x : vector[n]\n"
        "param w : vector[n] ~ normal(0, 0.1)\n"
        "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, noise = 0.1)\n"
        "predict sum(diff_open(n) @ w) + x @ w\n"
        "loss mse\n"
        "train { lr = 0.01; steps = 10 }\n";
    char *diags = NULL;
    char *c = emit_text(bad, &diags);
    cr_assert_null(c);
    cr_assert(strstr(diags, "t.ibs:6:13: error: code generation does not support the operator 'diff_open'"), "%s",
              diags);
    free(diags);
}

/* Issue 17, item 8: past 32 diag([...]) operators, operator 33 and on were
 * compiled with the first one's values (a fixed table, and index 0 when it
 * was full); past 16 dct(n) operators the 17th size had no matrix.  Every
 * operator now gets its own entry. */
Test(emit, any_number_of_diag_and_dct_operators)
{
    char spec[16384], *p = spec, *end = spec + sizeof spec;
    p += snprintf(p, (size_t)(end - p), "model m \"x\"\ndim n = 4\ninput x : vector[n]\n"
                  "param w : vector[n] ~ normal(0, 0.1)\n");
    for (int k = 1; k <= 18; k++)
        p += snprintf(p, (size_t)(end - p), "param q%d : vector[%d] ~ normal(0, 0.1)\n", k, k);
    p += snprintf(p, (size_t)(end - p), "data sparse_regression(features = n, train = 8, test = 8, nonzeros = 2, "
                  "noise = 0.1)\npredict x @ (diag([1, 1, 1, 1]) @ w)");
    for (int k = 2; k <= 40; k++)
        p += snprintf(p, (size_t)(end - p), " + x @ (diag([%d, 1, 1, %d]) @ w)", k, k);
    for (int k = 1; k <= 18; k++)
        p += snprintf(p, (size_t)(end - p), " + sum(dct(%d) @ q%d)", k, k);
    snprintf(p, (size_t)(end - p), "\nloss mse\ntrain { lr = 0.01; steps = 10; batch = 4 }\n");
    char *diags = NULL;
    char *c = emit_text(spec, &diags);
    cr_assert_not_null(c, "%s", diags);
    free(diags);
    char want[128];
    for (int k = 0; k < 40; k++) {
        snprintf(want, sizeof want, "static const double diag_%d[4] = { %d, 1, 1, %d };", k, k + 1, k + 1);
        cr_assert(strstr(c, want), "missing: %s", want);
        snprintf(want, sizeof want, "* diag_%d[r];", k);
        cr_assert_eq(count(c, want), 2, "diag_%d: %zu uses, want 2 (forward and reverse)", k, count(c, want));
    }
    for (int k = 1; k <= 18; k++) {
        snprintf(want, sizeof want, "static double dct_%d[%d * %d];", k, k, k);
        cr_assert_eq(count(c, want), 1, "%s", want);
        snprintf(want, sizeof want, "ibrt_op_dct_matrix(%d, dct_%d);", k, k);
        cr_assert_eq(count(c, want), 1, "%s", want);
    }
    free(c);
}

/* Resource caps (issue: reliability): a trainer whose buffers or traces
 * would exceed the caps is refused before any C is written, at the
 * setting to change, with the computed size. */
Test(emit, oversized_trainer_is_refused_with_its_size)
{
    static const char big[] =
        "model big \"a batch too large for memory\"\n"
        "dim n = 100000\n"
        "input x : vector[n]\n"
        "param w : vector[n] ~ normal(0, 0.1)\n"
        "data teacher(inputs = normal(0, 1), noise = 0.1)\n"
        "teacher { w ~ normal(0, 1) }\n"
        "predict x @ w\n"
        "loss mse\n"
        "train { lr = 1e-3; steps = 100; batch = 100000 }\n";
    char *d = NULL;
    cr_assert_null(emit_text(big, &d));
    cr_assert(strstr(d, "t.ibs:9:41: error: the trainer would need 76299 MiB of buffers"), "%s", d);
    cr_assert(strstr(d, "the cap is 4096 MiB: lower the batch size or the dimensions"), "%s", d);
    free(d);
}

Test(emit, oversized_traces_are_refused)
{
    static const char many[] =
        "model many \"a trace of every step of a billion\"\n"
        "param u : scalar ~ constant(1)\n"
        "param v : scalar ~ constant(1)\n"
        "data noisy_target(value = 1.0, noise = 0.5)\n"
        "predict u * v\n"
        "loss mse\n"
        "train { lr = 1e-3; steps = 1000000000; batch = 4; record_every = 1 }\n";
    char *d = NULL;
    cr_assert_null(emit_text(many, &d));
    cr_assert(strstr(d, "error: recording every 1 steps would write about"), "%s", d);
    cr_assert(strstr(d, "the cap is 2048 MiB: record less often"), "%s", d);
    free(d);
}

static const char attention[] =
    "model attention \"x\"\n"
    "dim T = 8\n"
    "dim e = 16\n"
    "dim k = 8\n"
    "input X : matrix[T, e]\n"
    "param Wq : matrix[e, k] ~ normal(0, 0.1) * (0.25 + 0.25 * abs(normal(0, 1)))\n"
    "param Wk : matrix[e, k] ~ normal(0, 0.1)\n"
    "param Wv : matrix[e, k] ~ normal(0, 0.1)\n"
    "predict softmax((X @ Wq) @ (X @ Wk)' / sqrt(k)) @ (X @ Wv)\n"
    "loss mse\n"
    "data teacher(inputs = normal(0, 1), noise = 0.02)\n"
    "teacher { Wq ~ normal(0, 0.75)\n Wk ~ normal(0, 0.75)\n Wv ~ normal(0, 0.75) }\n"
    "train { lr = 1e-3; steps = 10; batch = 16 }\n";

/* Issue 16, point 2: a reader of the spec recognises every line of the
 * passes: parameters, inputs and values named after the spec, each
 * statement under the spec's expression and its line. */
Test(emit, passes_speak_the_spec)
{
    char *c = emit_text(attention, NULL);
    cr_assert(c);
    char *fw = function_body(c, "static void m0_forward(");
    cr_assert(strstr(fw, "const double *p_Wq = th + 0;"), "%s", fw);
    cr_assert(strstr(fw, "const double *p_Wk = th + 128;"), "%s", fw);
    cr_assert(strstr(fw, "const double *p_Wv = th + 256;"), "%s", fw);
    cr_assert(strstr(fw, "const double *in_X = x + 0;"), "%s", fw);
    cr_assert(strstr(fw, "double *t_XWq = tp + 0;"), "%s", fw);
    cr_assert(strstr(fw, "/* X @ Wq (t.ibs:9): (8 x 16) @ (16 x 8) per sample */\n"
                         "    ibrt_mm_small(0, 0, nb * 8, 8, 16, in_X, 16, p_Wq, 8, 0.0, t_XWq, 8);"), "%s", fw);
    /* the spec's parentheses are kept, its constants folded in the code */
    cr_assert(strstr(fw, "/* (X @ Wq) @ (X @ Wk)' / sqrt(k) (t.ibs:9): by a scalar */"), "%s", fw);
    cr_assert(strstr(fw, "/ 2.8284271247461903;"), "%s", fw);
    /* no tape offsets, no v-numbers in the comments, no (void) of what is used */
    cr_assert_null(strstr(fw, "tp["), "%s", fw);
    cr_assert_null(strstr(fw, "th["), "%s", fw);
    cr_assert_null(strstr(fw, "/* v"), "%s", fw);
    cr_assert_null(strstr(fw, "(void)"), "%s", fw);
    free(fw);
    char *bw = function_body(c, "static void m0_backward(");
    cr_assert(strstr(bw, "/* X @ Wq (t.ibs:9): C = A B: dB = A' dC */\n"
                         "    ibrt_mm_small(1, 0, 16, 8, nb * 8, in_X, 16, d_XWq, 8, 1.0, g_Wq, 8);"), "%s", bw);
    /* th is the one parameter the reverse pass does not read */
    cr_assert(strstr(bw, "(void)th;"), "%s", bw);
    cr_assert_eq(count(bw, "(void)"), 1, "%s", bw);
    free(bw);
    /* initialisations name the parameter and its distribution; constants
     * are the shortest that read back exactly */
    cr_assert(strstr(c, "/* Wq ~ normal(0, 0.1) * (0.25 + 0.25 * abs(normal(0, 1))) (t.ibs:6) */"), "%s", c);
    cr_assert(strstr(c, "/* Wk ~ normal(0, 0.75) (t.ibs:13) */"), "%s", c);
    cr_assert(strstr(c, "(0 + 0.1 * ibrt_rng_normal(rng))"), "%s", c);
    cr_assert_null(strstr(c, "0.10000000000000001"));
    cr_assert_null(strstr(c, "parameter ~"));
    /* the teacher's predictor is the model's: one forward pass, called
     * with the teacher's weights */
    cr_assert_null(strstr(c, "te_forward"));
    cr_assert(strstr(c, "m0_forward(te_th, bx, BMAX, te_tp);"), "%s", c);
    cr_assert_eq(count(c, "static void m0_forward("), 1);
    cr_assert(compiles_cleanly(c));
    free(c);
}

/* Names from the spec become identifiers that are valid and unique
 * whatever the spec calls things: C keywords and libc names, names that
 * differ only past the bytes kept, an input named like a prefixed
 * parameter, the same expression twice. */
Test(emit, names_from_the_spec_are_valid_unique_identifiers)
{
    static const char names[] =
        "model names \"x\"\n"
        "dim int = 3\n"
        "input return : vector[int]\n"
        "input p_return : vector[int]\n"
        "param a_parameter_name_longer_than_thirty_two_1 : vector[int] ~ normal(0, 0.1)\n"
        "param a_parameter_name_longer_than_thirty_two_2 : vector[int] ~ normal(0, 0.1)\n"
        "param _ : vector[int] ~ normal(0, 0.1)\n"
        "param v6 : vector[int] ~ normal(0, 0.1)\n"
        "data teacher(inputs = normal(0, 1), noise = 0.1)\n"
        "teacher { _ ~ normal(0, 1) }\n"
        "predict return @ (a_parameter_name_longer_than_thirty_two_1 * a_parameter_name_longer_than_thirty_two_2)"
        " + return @ _ + return @ _ + p_return @ v6 + sum(relu(_ * return))\n"
        "loss mse\n"
        "train { lr = 0.01; steps = 10; batch = 4 }\n";
    char *c = emit_text(names, NULL);
    cr_assert(c);
    char *fw = function_body(c, "static void m0_forward(");
    cr_assert(strstr(fw, "const double *p_a_parameter_name_longer_than_thi = th + 0;"), "%s", fw);
    cr_assert(strstr(fw, "const double *p_a_parameter_name_longer_than_thi_2 = th + 3;"), "%s", fw);
    cr_assert(strstr(fw, "const double *p__ = th + 6;"), "%s", fw);
    cr_assert(strstr(fw, "const double *in_return = x + 0;"), "%s", fw);
    cr_assert(strstr(fw, "const double *in_p_return = x + 3;"), "%s", fw);
    cr_assert(strstr(fw, "double *t_return_ = tp + "), "%s", fw);
    cr_assert(strstr(fw, "double *t_return__2 = tp + "), "%s", fw);
    cr_assert(strstr(fw, "double *t_relu__return = tp + "), "%s", fw);
    free(fw);
    cr_assert(compiles_cleanly(c), "the emitted program does not compile cleanly");
    free(c);
}

/* Where nothing of the spec needs a function's parameter, the function
 * says (void) of it and of nothing else; a model without a symmetry
 * shares one empty structural check and balance. */
Test(emit, only_unused_parameters_are_voided)
{
    static const char scalar[] =
        "model uv \"x\"\n"
        "param u : scalar ~ constant(3.0)\n"
        "param v : scalar ~ constant(0.3)\n"
        "data noisy_target(value = 1.0, noise = 0.5)\n"
        "predict u * v\n"
        "loss mse\n"
        "train { lr = 0.05; steps = 10; batch = 4 }\n";
    char *c = emit_text(scalar, NULL);
    cr_assert(c);
    char *fw = function_body(c, "static void m0_forward(");
    /* no inputs, nothing per sample */
    cr_assert(strstr(fw, "{\n    (void)x;\n    (void)nb;\n    const double *p_u = th + 0;"), "%s", fw);
    cr_assert_eq(count(fw, "(void)"), 2, "%s", fw);
    free(fw);
    /* constant initialisations draw nothing: the stream is unused */
    char *in = function_body(c, "static void m0_init(");
    cr_assert(strstr(in, "(void)rng;"), "%s", in);
    cr_assert(strstr(in, "/* u ~ constant(3.0) (t.ibs:2) */"), "%s", in);
    free(in);
    /* the data needs no set-up: no stream 0, no status */
    char *su = function_body(c, "static ibrt_status setup(");
    cr_assert_null(strstr(su, "ibrt_rng rd;"), "%s", su);
    cr_assert_null(strstr(su, "ibrt_status st;"), "%s", su);
    free(su);
    cr_assert(compiles_cleanly(c));
    free(c);

    char *d = emit_text(tv, NULL);
    cr_assert(d);
    /* the vanilla baseline has no symmetry: no structure function, NULL */
    cr_assert_eq(count(d, "no_structure"), 0);
    cr_assert(strstr(d, ".structure = NULL,"));
    cr_assert_null(strstr(d, "m1_structure"));
    cr_assert(compiles_cleanly(d));
    free(d);
}

/* Constants print as the shortest literal that reads back exactly. */
Test(emit, constants_are_shortest_exact)
{
    cr_assert_str_eq(cw_num(0.1), "0.1");
    cr_assert_str_eq(cw_num(1.2 - -1.2), "2.4");
    cr_assert_str_eq(cw_num(1e-4), "0.0001");
    cr_assert_str_eq(cw_num(1.0), "1");
    cr_assert_str_eq(cw_num(-0.0), "-0");
    cr_assert_str_eq(cw_num(sqrt(8.0)), "2.8284271247461903");
    cr_assert_str_eq(cw_num(1.0 / 3.0), "0.3333333333333333");
    cr_assert_str_eq(cw_num(0.1 + 0.2), "0.30000000000000004");
    cr_assert_str_eq(cw_num(NAN), "NAN");
    cr_assert_str_eq(cw_num(-INFINITY), "-INFINITY");
    /* every double reads back: a sweep of magnitudes and mantissas */
    for (int k = -300; k <= 300; k += 7)
        for (int m = 1; m < 100; m += 3) {
            double v = m * pow(10, k) / 7.0;
            cr_assert_eq(strtod(cw_num(v), NULL), v, "%.17g printed as %s", v, cw_num(v));
        }
}

/* What a generated function uses is read off its tokens: comments,
 * strings, characters and numbers are not uses. */
Test(emit, uses_are_tokens_of_code)
{
    cr_assert(cw_uses("    t_x[e] = p_x[e] * 2;\n", "p_x"));
    cr_assert_not(cw_uses("    t_x[e] = p_xy[e];\n", "p_x"));
    cr_assert_not(cw_uses("    /* x @ w */ y = 1e-10;\n", "x"));
    cr_assert_not(cw_uses("    y = 1e-10 + 0x1p-3 + 2.5e+3;\n", "e"));
    cr_assert_not(cw_uses("    f(\"x \\\" x\", 'x');\n", "x"));
    cr_assert(cw_uses("    f(\"a\", x);\n", "x"));
    cr_assert_not(cw_uses("    // x\n", "x"));
    char *id = cw_ident("a-b c\x01\xff_1", 32);
    cr_assert_str_eq(id, "a_b_c___1");
    free(id);
    char *taken[] = { cw_strdup("XW"), cw_strdup("XW_2"), NULL };
    char *u = cw_unique(taken, 3, cw_strdup("XW"));
    cr_assert_str_eq(u, "XW_3");
    free(u);
    free(taken[0]);
    free(taken[1]);
    char *sc = cw_scrub("a */ b /* c ?" "?= d\n");
    cr_assert_null(strstr(sc, "*/"));
    cr_assert_null(strstr(sc, "/*"));
    cr_assert_null(strstr(sc, "?" "?"));
    free(sc);
}

/* The PyTorch export's derived bias of a family whose det G terms merge
 * (u v + v w: u^2 and w^2 grow alike): one weight per group,
 * delta_g log(C_g / delta_g) with C_g the group's sum, here
 * 1/2 log(n_u + n_w) + 1/2 log n_v + log 2; it read the group weights as
 * if they were the terms' (1/2 log n_u + 1/2 log n_v + log 2). */
Test(emit, torch_bias_of_merged_terms_sums_the_group)
{
    ibc_source src;
    const char *err;
    cr_assert(diag_source_read(&src, "tests/sym/uv_vw.ibs", &err), "%s", err);
    ibc_arena *a = arena_new();
    size_t dn = 0, pn = 0;
    char *dbuf = NULL, *py = NULL;
    FILE *df = open_memstream(&dbuf, &dn), *pf = open_memstream(&py, &pn);
    ibc_diag d;
    diag_init(&d, &src, df);
    ibc_spec *spec = sema_check(a, parse_spec(a, &src, &d), &d);
    cr_assert_not_null(spec);
    sym_derivation *der = sym_derive(a, spec, &d);
    cr_assert_not_null(der);
    cr_assert(emit_torch(pf, spec, NULL, der, &d));
    fclose(df);
    fclose(pf);
    cr_assert(strstr(py, "b = 0.0 + 0.5 * (torch.log(1 * n1_0 + 1 * n1_2) - math.log(0.5)) + "
                         "0.5 * (math.log(1 / 0.5) + torch.log(n1_1))\n"), "%s", dbuf);
    free(py);
    free(dbuf);
    arena_free(a);
    diag_source_free(&src);
}
