/*
 * fuzz_gen.c: libFuzzer target for the data generators' arguments, from
 * the spec to the runtime.
 *
 * The input picks a generator (its first byte) and then gives, one per
 * line, the text of `dim n = ...` and of each of the generator's arguments
 * in order (a line "-" leaves that argument out; lines past the last
 * argument are added to the call as they are; missing lines keep a valid
 * default).  So the fuzzer writes hostile values into an otherwise valid
 * spec: 1e400, -3, 2.5, nan, huge lists, strings for counts, expressions,
 * brackets that do not close.  The spec goes through the checker as `ibc
 * check` runs it.  When the check passes and the data are small, the
 * runtime generator runs with the values the emitted trainer would pass
 * (ibrt_gen_*, ibrt_gen_from_files_header) and the data set must be what
 * the check promised: samples of n numbers, every value finite, every
 * array addressable to its end (ASan sees a short one).  The contract
 * under test: what `ibc check` accepts, the trainer's data set-up handles
 * without a crash, an abort or a read past its buffers.
 */
#include "ibc.h"
#include "ibrt.h"
#include "ibrt_data.h"
#include "ibrt_io.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT 4096
#define FUZZ_MAX_VALUES 200000.0   /* runtime generation only below this many numbers */

static const struct {
    const char *name;
    const char *keys[5];
    const char *defaults[5];
    int model;   /* 0 a vector input, 1 a matrix to complete, 2 a scalar product, 3 a teacher */
} gens[] = {
    { "sparse_regression", { "features", "train", "test", "nonzeros", "noise" }, { "n", "32", "10", "3", "0.1" }, 0 },
    { "cosine_spikes", { "modes", "train", "test", "nonzeros", "noise" }, { "n", "32", "10", "3", "0.1" }, 0 },
    { "piecewise_signal", { "length", "measurements", "levels", "lengths", "noise" },
      { "n", "20", "[1.0, -1.5]", "[3, 5]", "0.1" }, 0 },
    { "low_rank", { "size", "singular_values", "observed", "batch_fraction", NULL },
      { "n", "[6, 2]", "0.5", "0.5", NULL }, 1 },
    { "noisy_target", { "value", "noise", NULL }, { "1.0", "0.5", NULL }, 2 },
    { "teacher", { "inputs", "noise", NULL }, { "normal(0, 1)", "0.1", NULL }, 3 },
    { "csv", { "x", "y", "header", NULL }, { "\"x.csv\"", "\"y.csv\"", "true", NULL }, 0 },
};
#define NGENS (sizeof gens / sizeof gens[0])

static char fuzz_dir[64], fuzz_spec[96], fuzz_x[96], fuzz_y[96];

static void fuzz_cleanup(void)
{
    unlink(fuzz_x);
    unlink(fuzz_y);
    rmdir(fuzz_dir);
}

static void fuzz_setup(void)
{
    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/ibc-fuzz-gen-XXXXXX");
    if (!mkdtemp(fuzz_dir)) {
        snprintf(fuzz_spec, sizeof fuzz_spec, "/nonexistent-ibc-fuzz-dir/fuzz.ibs");
        return;
    }
    atexit(fuzz_cleanup);
    snprintf(fuzz_x, sizeof fuzz_x, "%s/x.csv", fuzz_dir);
    snprintf(fuzz_y, sizeof fuzz_y, "%s/y.csv", fuzz_dir);
    FILE *f = fopen(fuzz_x, "w");
    if (f) {   /* 0,1,...,7 then 8 samples of 8 numbers */
        for (int r = 0; r < 9; r++)
            for (int c = 0; c < 8; c++)
                fprintf(f, "%d%c", r == 0 ? c : r * c - 3, c == 7 ? '\n' : ',');
        fclose(f);
    }
    f = fopen(fuzz_y, "w");
    if (f) {
        fputs("0\n1\n2\n3\n4\n5\n6\n7\n8\n", f);
        fclose(f);
    }
    snprintf(fuzz_spec, sizeof fuzz_spec, "%s/fuzz.ibs", fuzz_dir);
}

/* Appends to a growing string; false when out of memory. */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static bool put(sbuf *b, const char *t, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t nc = (b->n + len + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return false;
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, t, len);
    b->n += len;
    b->s[b->n] = '\0';
    return true;
}

static bool puts_(sbuf *b, const char *t)
{
    return put(b, t, strlen(t));
}

/* The spec: the model of the generator around `data GEN(args)`. */
static bool build_spec(sbuf *b, size_t g, const char *const *field, const size_t *flen, size_t nf)
{
    static const char *const dflt_n = "8";
    bool ok = puts_(b, "model m \"fuzzed generator arguments\"\ndim n = ");
    ok = ok && (nf > 0 ? put(b, field[0], flen[0]) : puts_(b, dflt_n));
    ok = ok && puts_(b, "\n");
    switch (gens[g].model) {
    case 0:
        ok = ok && puts_(b, "input x : vector[n]\nparam w : vector[n] ~ normal(0, 0.1)\n");
        break;
    case 1:
        ok = ok && puts_(b, "param Z : matrix[n, n] ~ normal(0, 0.01)\n");
        break;
    case 2:
        ok = ok && puts_(b, "param u : scalar ~ constant(3.0)\nparam v : scalar ~ constant(0.3)\n");
        break;
    default:
        ok = ok && puts_(b, "input x : vector[n]\nparam W : matrix[4, n] ~ normal(0, 0.05)\n"
                            "param v : vector[4] ~ normal(0, 0.05)\n");
        break;
    }
    ok = ok && puts_(b, "data ") && puts_(b, gens[g].name) && puts_(b, "(");
    bool first = true;
    size_t k = 0;
    for (; k < 5 && gens[g].keys[k]; k++) {
        const char *v = gens[g].defaults[k];
        size_t vl = strlen(v);
        if (k + 1 < nf) {
            v = field[k + 1];
            vl = flen[k + 1];
        }
        if (vl == 1 && v[0] == '-')
            continue;   /* left out */
        ok = ok && (first || puts_(b, ", ")) && puts_(b, gens[g].keys[k]) && puts_(b, " = ") && put(b, v, vl);
        first = false;
    }
    for (size_t i = k + 1; i < nf; i++)   /* extra arguments, as written */
        ok = ok && (first || puts_(b, ", ")) && put(b, field[i], flen[i]), first = false;
    ok = ok && puts_(b, ")\n");
    switch (gens[g].model) {
    case 0:
        ok = ok && puts_(b, "predict x @ w\nloss mse\n");
        break;
    case 1:
        ok = ok && puts_(b, "predict Z\nloss mse(mask = observed, normalise = all)\n");
        break;
    case 2:
        ok = ok && puts_(b, "predict u * v\nloss mse\n");
        break;
    default:
        ok = ok && puts_(b, "teacher {\n  W ~ normal(0, 1.5)\n  v ~ normal(0, 1.5)\n}\n"
                            "predict v @ relu(W @ x)\nloss mse\n");
        break;
    }
    return ok && puts_(b, "train { lr = 1e-2; steps = 10; batch = full }\n");
}

static const ast_node *arg(const ast_node *call, const char *name)
{
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG && !strcmp(call->kids[i]->name, name))
            return call->kids[i]->lhs;
    return NULL;
}

static double num(const ast_node *call, const char *name)
{
    const ast_node *v = arg(call, name);
    return v ? v->value : 0;
}

/* A list argument as the emitted trainer holds it; NULL if out of memory. */
static double *list(const ast_node *call, const char *name, size_t *n)
{
    const ast_node *l = arg(call, name);
    *n = l ? l->nkids : 0;
    double *a = malloc((*n ? *n : 1) * sizeof *a);
    for (size_t i = 0; a && i < *n; i++)
        a[i] = l->kids[i]->value;
    return a;
}

static void must(bool cond)
{
    if (!cond)
        abort();
}

/* The data set the check promised: sizes, finite values, whole arrays. */
static void check_dataset(const ibrt_dataset *ds, size_t in, size_t out, size_t ntrain)
{
    must(ds->in_size == in && ds->out_size == out && ds->n_train == ntrain);
    volatile double sink = 0;
    size_t nx = ds->n_train * in, ny = ds->n_train * out;
    for (size_t i = 0; i < nx; i++)
        must(isfinite(ds->x_train[i]));
    for (size_t i = 0; i < ny; i++)
        must(isfinite(ds->y_train[i]));
    if (ds->n_test) {
        sink += ds->x_test[ds->n_test * in - 1];
        sink += ds->y_test[ds->n_test * out - 1];
    }
    if (ds->truth_size)
        sink += ds->truth[ds->truth_size - 1];
    if (ds->mask)
        sink += ds->mask[out - 1];
    (void)sink;
}

static void run_generator(const ibc_spec *spec)
{
    const ast_node *d = spec->data;
    const char *g = d->name;
    ibrt_dataset ds;
    ibrt_error err;
    ibrt_rng r;
    ibrt_rng_fork(&r, 7, 0);
    memset(&ds, 0, sizeof ds);
    ibrt_status st = IBRT_OK;
    bool ran = true;
    size_t in = 0, out = 1, ntrain = 0;
    if (!strcmp(g, "sparse_regression") || !strcmp(g, "cosine_spikes")) {
        bool cos = !strcmp(g, "cosine_spikes");
        double n = num(d, cos ? "modes" : "features"), tr = num(d, "train"), te = num(d, "test");
        if (n * (tr + te) > FUZZ_MAX_VALUES)
            return;
        in = (size_t)n;
        ntrain = (size_t)tr;
        st = cos ? ibrt_gen_cosine_spikes(&ds, &r, in, ntrain, (size_t)te, (size_t)num(d, "nonzeros"),
                                          num(d, "noise"), &err)
                 : ibrt_gen_sparse_regression(&ds, &r, in, ntrain, (size_t)te, (size_t)num(d, "nonzeros"),
                                              num(d, "noise"), &err);
    } else if (!strcmp(g, "piecewise_signal")) {
        double n = num(d, "length"), m = num(d, "measurements");
        if (n * m > FUZZ_MAX_VALUES)
            return;
        size_t nl, nn;
        double *lv = list(d, "levels", &nl), *ln = list(d, "lengths", &nn);
        in = (size_t)n;
        ntrain = (size_t)m;
        if (lv && ln)
            st = ibrt_gen_piecewise_signal(&ds, &r, in, ntrain, lv, ln, nl, num(d, "noise"), &err);
        else
            ran = false;
        free(lv);
        free(ln);
    } else if (!strcmp(g, "low_rank")) {
        double n = num(d, "size");
        if (n * n > FUZZ_MAX_VALUES)
            return;
        size_t ns;
        double *sv = list(d, "singular_values", &ns);
        in = 0;
        out = (size_t)n * (size_t)n;
        ntrain = 1;
        if (sv)
            st = ibrt_gen_low_rank(&ds, &r, (size_t)n, sv, ns, num(d, "observed"), &err);
        else
            ran = false;
        free(sv);
    } else if (!strcmp(g, "csv")) {
        const ast_node *h = arg(d, "header");
        const ast_node *x = arg(d, "x"), *y = arg(d, "y");
        char px[600], py[600];
        snprintf(px, sizeof px, "%s/%s", fuzz_dir, x->text);
        snprintf(py, sizeof py, "%s/%s", fuzz_dir, y->text);
        for (size_t i = 0; i < spec->ninputs; i++)
            in += (size_t)(spec->inputs[i].shape.rows * spec->inputs[i].shape.cols);
        st = ibrt_gen_from_files_header(&ds, px, py, NULL, NULL, in, 1,
                                        h ? !strcmp(h->name, "true") : IBRT_CSV_HEADER_DATA, &err);
        if (st == IBRT_OK)
            ntrain = ds.n_train;
        else
            must(err.msg[0] != '\0');   /* a refusal says why; the data is not the check's to promise */
        ran = st == IBRT_OK;
    } else {
        ran = false;   /* noisy_target, teacher: no data set; the check is the target */
    }
    if (ran) {
        must(st == IBRT_OK);   /* the check accepted these values: the generator must too */
        check_dataset(&ds, in, out, ntrain);
    }
    ibrt_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    if (!fuzz_spec[0])
        fuzz_setup();
    size_t g = data[0] % NGENS;
    /* fields: the rest split at '\n' (NUL bytes kept: the lexer sees them) */
    const char *field[64];
    size_t flen[64], nf = 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end && nf < 64) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *fe = nl ? nl : end;
        field[nf] = p;
        flen[nf++] = (size_t)(fe - p);
        p = nl ? nl + 1 : end;
    }
    sbuf b = { NULL, 0, 0 };
    if (!build_spec(&b, g, field, flen, nf)) {
        free(b.s);
        return 0;
    }
    ibc_source src = { fuzz_spec, b.s, b.n };
    char *dbuf = NULL;
    size_t dlen = 0;
    FILE *dout = open_memstream(&dbuf, &dlen);
    if (!dout) {
        free(b.s);
        return 0;
    }
    ibc_arena *arena = arena_new();
    ibc_diag diag;
    diag_init(&diag, &src, dout);
    ast_node *ast = parse_spec(arena, &src, &diag);
    ibc_spec *spec = NULL;
    if (ast && diag.errors == 0)
        spec = sema_check(arena, ast, &diag);
    if (spec && diag.errors == 0 && spec->data)
        run_generator(spec);
    fclose(dout);
    free(dbuf);
    arena_free(arena);
    free(b.s);
    return 0;
}
