/*
 * sema_data.c: the data statement and the loss (sema_impl.h).  Checks a
 * data generator's keyword arguments against its keys in the built-in
 * table (required, unknown, duplicated), each argument's type and range,
 * the arguments against each other (non-zeros that fit, lengths that add
 * up), and, after the whole spec is read, the data against the model
 * (sample sizes against the inputs, labels against the predictor, batch
 * against the training set); and the loss with its mask and
 * normalisation.
 */
#include "sema_impl.h"
#include "exact.h"
#include "ibrt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Keyword arguments of a call against "a! b c" (required marked '!'). */
void sema_kwargs(sema *s, ast_node *call, const char *spec_keys)
{
    char buf[256];
    const char *names[16];
    bool req[16], seen[16] = { false };
    size_t nk = 0;
    snprintf(buf, sizeof buf, "%s", spec_keys);
    for (char *tok = strtok(buf, " "); tok && nk < 16; tok = strtok(NULL, " ")) {
        size_t len = strlen(tok);
        req[nk] = tok[len - 1] == '!';
        if (req[nk])
            tok[len - 1] = '\0';
        names[nk++] = arena_strndup(s->arena, tok, strlen(tok));
    }
    for (size_t i = 0; i < call->nkids; i++) {
        ast_node *a = call->kids[i];
        if (a->kind != AST_KWARG) {
            diag_error(s->diag, a->loc, "'%s' takes keyword arguments only (name = value)", call->name);
            continue;
        }
        size_t j = 0;
        while (j < nk && strcmp(names[j], a->name))
            j++;
        if (j == nk) {
            diag_error(s->diag, a->name_loc, "'%s' has no argument '%s'%s", call->name, a->name,
                       sema_hint(s, a->name, names, nk));
            continue;
        }
        if (seen[j])
            diag_error(s->diag, a->name_loc, "argument '%s' given twice", a->name);
        seen[j] = true;
    }
    for (size_t j = 0; j < nk; j++)
        if (req[j] && !seen[j])
            diag_error(s->diag, call->loc, "'%s' needs the argument '%s'", call->name, names[j]);
}

/* The arguments of the data generators, by name (a name means the same in
 * every generator that takes it): 'i' an integer in [lo, hi], 'r' a number
 * in [lo, hi], 'l' a list of numbers, 'f' a file, 'd' a distribution, 'b'
 * true or false.
 * Values the data are made of stay within the magnitude the file readers
 * accept (IBRT_IO_MAX_ABS: a square stays finite). */
#define SEMA_MAX_SAMPLES 10000000L   /* training or test samples of a generator */
#define SEMA_MAX_DATA_MIB 4096        /* a generator's data set, as the trainer's other buffers */
static const struct {
    const char *key;
    char type;
    double lo, hi;
    const char *what;
} gen_args[] = {
    { "features", 'i', 1, IBC_MAX_DIM, "the number of features" },
    { "modes", 'i', 1, IBC_MAX_DIM, "the number of modes" },
    { "length", 'i', 1, IBC_MAX_DIM, "the signal length" },
    { "size", 'i', 1, 46340, "the matrix size" },
    { "train", 'i', 1, SEMA_MAX_SAMPLES, "the number of training samples" },
    { "measurements", 'i', 1, SEMA_MAX_SAMPLES, "the number of measurements" },
    { "test", 'i', 0, SEMA_MAX_SAMPLES, "the number of test samples" },
    { "nonzeros", 'i', 0, IBC_MAX_DIM, "the number of non-zeros" },
    { "noise", 'r', 0, IBRT_IO_MAX_ABS, "the noise, a standard deviation" },
    { "value", 'r', -IBRT_IO_MAX_ABS, IBRT_IO_MAX_ABS, "the target value" },
    { "observed", 'r', 0, 1, "the probability of observing an entry" },
    { "batch_fraction", 'r', 0, 1, "the fraction of observed entries in a minibatch" },
    { "levels", 'l', 0, 0, "levels" },
    { "lengths", 'l', 0, 0, "lengths" },
    { "singular_values", 'l', 0, 0, "singular_values" },
    { "x", 'f', 0, 0, "x" }, { "y", 'f', 0, 0, "y" }, { "test_x", 'f', 0, 0, "test_x" }, { "test_y", 'f', 0, 0, "test_y" },
    { "inputs", 'd', 0, 0, "inputs" },
    { "header", 'b', 0, 0, "whether the first line of each CSV file is a header" },
};

/* The kwarg node NAME of a call, or NULL. */
static ast_node *sema_kwarg(const ast_node *call, const char *name)
{
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG && !strcmp(call->kids[i]->name, name))
            return call->kids[i];
    return NULL;
}

static bool sema_gen_arg(sema *s, ast_node *a)
{
    ast_node *v = a->lhs;
    size_t k = 0;
    while (k < COUNT(gen_args) && strcmp(gen_args[k].key, a->name))
        k++;
    if (k == COUNT(gen_args))
        return false;   /* reported by sema_kwargs */
    char type = gen_args[k].type;
    if (type == 'b') {   /* true or false */
        if (v->kind != AST_IDENT || (strcmp(v->name, "true") && strcmp(v->name, "false"))) {
            diag_error(s->diag, v->loc, "'%s' must be true (the first line of each CSV file is a header, skipped "
                       "whatever it holds) or false (it is data)", a->name);
            return false;
        }
        return true;
    }
    static const char *const kinds[] = { ['i'] = "a whole number", ['r'] = "a number", ['l'] = "a list of numbers",
                                         ['f'] = "a file name in quotes", ['d'] = "a distribution, e.g. normal(0, 1)" };
    bool got_str = v->kind == AST_STR, got_list = v->kind == AST_LIST;
    if ((type == 'f') != got_str || (type == 'l') != got_list || (type == 'd' && v->kind != AST_CALL)) {
        diag_error(s->diag, v->loc, "'%s' must be %s, got %s", a->name, kinds[(int)type],
                   got_str ? "a string" : got_list ? "a list" : "a number");
        return false;
    }
    switch (type) {
    case 'f':
        return sema_file_exists(s, v);
    case 'd':
        return sema_dist_call(s, v);
    case 'l': {
        bool ok = true;
        for (size_t j = 0; j < v->nkids; j++) {
            double x;
            if (!sema_const(s, v->kids[j], &x)) {
                ok = false;
            } else if (fabs(x) > IBRT_IO_MAX_ABS) {
                diag_error(s->diag, v->kids[j]->loc, "an entry of '%s' must be of magnitude at most %g, got %g",
                           a->name, IBRT_IO_MAX_ABS, x);
                ok = false;
            }
        }
        if (ok && v->nkids == 0) {
            diag_error(s->diag, v->loc, "'%s' is an empty list", a->name);
            return false;
        }
        return ok;
    }
    case 'i': {
        long x;
        return sema_const_int(s, v, (long)gen_args[k].lo, (long)gen_args[k].hi,
                              arena_printf(s->arena, "'%s' (%s)", a->name, gen_args[k].what), &x);
    }
    default: {
        double x;
        if (!sema_const(s, v, &x))
            return false;
        if (x < gen_args[k].lo || x > gen_args[k].hi || (!strcmp(a->name, "batch_fraction") && x == 0)) {
            double lo = gen_args[k].lo, hi = gen_args[k].hi;
            const char *range = hi == 1    ? (!strcmp(a->name, "batch_fraction") ? "in (0, 1]" : "in [0, 1]")
                                : lo == -hi ? arena_printf(s->arena, "of magnitude at most %g", hi)
                                : x < lo    ? arena_printf(s->arena, "at least %g", lo)
                                            : arena_printf(s->arena, "at most %g", hi);
            diag_error(s->diag, v->loc, "'%s' (%s) must be %s, got %g", a->name, gen_args[k].what, range, x);
            return false;
        }
        return true;
    }
    }
}

/* Checks of one generator's arguments against each other (all present and
 * valid): non-zeros that fit, piecewise lengths that add up. */
static void sema_gen_consistent(sema *s, ast_node *call)
{
    const char *g = call->name;
    ibc_builtin gb = call->builtin;
    if (gb == IBC_B_cosine_spikes || gb == IBC_B_sparse_regression) {
        bool cos = gb == IBC_B_cosine_spikes;
        ast_node *n = sema_kwarg(call, cos ? "modes" : "features"), *nz = sema_kwarg(call, "nonzeros");
        long room = (long)n->lhs->value - (cos ? 1 : 0);   /* cosine_spikes never puts one on mode 0 */
        if (nz->lhs->value > (double)room)
            diag_error(s->diag, nz->lhs->loc, "%s cannot place %.0f non-zeros among %ld %s: at most %ld", g,
                       nz->lhs->value, room, cos ? "modes (mode 0, the constant, is never one)" : "features", room);
    } else if (gb == IBC_B_piecewise_signal) {
        ast_node *lv = sema_kwarg(call, "levels")->lhs, *ln = sema_kwarg(call, "lengths")->lhs;
        ast_node *length = sema_kwarg(call, "length");
        if (lv->nkids != ln->nkids) {
            diag_error(s->diag, ln->loc, "'lengths' has %zu entr%s but 'levels' has %zu: one length per level",
                       ln->nkids, ln->nkids == 1 ? "y" : "ies", lv->nkids);
            return;
        }
        double total = 0;
        for (size_t j = 0; j < ln->nkids; j++) {
            double x = ln->kids[j]->value;
            if (x < 0 || x != floor(x) || x > IBC_MAX_DIM) {
                diag_error(s->diag, ln->kids[j]->loc, "a length is a whole number of samples from 0 to %ld, got %g",
                           IBC_MAX_DIM, x);
                return;
            }
            total += x;
        }
        if (total != length->lhs->value)
            diag_error(s->diag, ln->loc, "the lengths add up to %.0f, but length = %.0f: they must be equal", total,
                       length->lhs->value);
    } else if (gb == IBC_B_low_rank) {
        ast_node *sv = sema_kwarg(call, "singular_values")->lhs, *size = sema_kwarg(call, "size");
        if ((double)sv->nkids > size->lhs->value)
            diag_error(s->diag, sv->loc, "%zu singular values for a %.0f x %.0f matrix: at most %.0f", sv->nkids,
                       size->lhs->value, size->lhs->value, size->lhs->value);
    }
}

/* Data files are read by the trainer when it starts; the check reads them
 * too, by the same reader and rule (a CSV header as the spec says), so
 * that a file the trainer would refuse (a header of numbers, a NUL byte,
 * a ragged row, a value too large) is an error at its name in the spec
 * rather than at run time.  The trainer still reads and checks them: they
 * may change in between. */
static void sema_data_files_read(sema *s, ast_node *call)
{
    static const char *const keys[] = { "x", "y", "test_x", "test_y" };
    ast_node *h = sema_kwarg(call, "header");
    int header = h ? !strcmp(h->lhs->name, "true") : IBRT_CSV_HEADER_DATA;
    for (size_t i = 0; i < COUNT(keys); i++) {
        ast_node *f = sema_kwarg(call, keys[i]);
        if (!f)
            continue;
        const char *path = f->lhs->text;
        const char *full = path[0] == '/' ? path : arena_printf(s->arena, "%s/%s", s->spec_dir, path);
        size_t n = strlen(full), rows, cols;
        double *data = NULL;
        ibrt_error err;
        ibrt_status st = n >= 4 && !strcmp(full + n - 4, ".npy") ? ibrt_io_read_matrix(full, &rows, &cols, &data, &err)
                                                                 : ibrt_csv_read_header(full, header, &rows, &cols,
                                                                                        &data, &err);
        free(data);
        if (st != IBRT_OK)
            diag_error(s->diag, f->lhs->loc, "the trainer would refuse this file: %s", err.msg);
    }
}


void sema_data(sema *s, ast_node *n)
{
    ast_node *call = n->lhs;
    if (ibc_builtin_class_of(call->builtin) != IBC_BC_GENERATOR) {
        const char *c[IBC_B_COUNT];
        size_t k = sema_builtin_names(IBC_BC_GENERATOR, IBC_BC_GENERATOR, c);
        diag_error(s->diag, call->name_loc, "unknown data generator '%s'%s", call->name,
                   sema_hint(s, call->name, c, k));
        return;
    }
    int before = s->diag->errors;
    sema_kwargs(s, call, ibc_builtins[call->builtin].keys);
    s->spec->data = call;
    bool ok = s->diag->errors == before;
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG)
            ok = sema_gen_arg(s, call->kids[i]) && ok;
    if (ok)
        sema_gen_consistent(s, call);
    else
        s->data_bad = true;   /* no whole-spec checks of the data either */
    if (ok && (call->builtin == IBC_B_csv || call->builtin == IBC_B_npy))
        sema_data_files_read(s, call);
    if (call->builtin == IBC_B_low_rank)
        s->has_mask = true;
}

/* Whole-spec checks of the data against the model (issue 17): a
 * generator's samples must have as many numbers as the inputs take and
 * labels of the predictor's shape, or the trainer would read past its data;
 * a minibatch must not be larger than the training set. */
void sema_data_fits(sema *s)
{
    ibc_spec *sp = s->spec;
    ast_node *call = sp->data;
    const char *g = call->name;
    ibc_builtin gb = call->builtin;
    long in = 0;
    for (size_t i = 0; i < sp->ninputs; i++)
        in += sp->inputs[i].shape.rows * sp->inputs[i].shape.cols;
    const char *size_key = gb == IBC_B_cosine_spikes       ? "modes"
                           : gb == IBC_B_sparse_regression ? "features"
                           : gb == IBC_B_piecewise_signal  ? "length"
                                                           : NULL;
    bool no_inputs = gb == IBC_B_low_rank || gb == IBC_B_noisy_target;
    if (size_key) {
        ast_node *a = sema_kwarg(call, size_key);
        long want = (long)a->lhs->value;
        if (sp->ninputs == 0) {
            diag_error(s->diag, a->loc, "%s gives samples of %s = %ld numbers, but the model has no input: declare "
                       "one, e.g. input x : vector[%ld]", g, size_key, want, want);
        } else if (in != want) {
            diag_error(s->diag, a->loc, "%s gives samples of %s = %ld numbers, but the model's inputs take %ld per "
                       "sample: make them agree (%s = %ld, or inputs of %ld numbers in all)", g, size_key, want, in,
                       size_key, in, want);
            for (size_t i = 0; i < sp->ninputs; i++)
                diag_note(s->diag, sp->inputs[i].decl->loc, "input '%s' is %s (%ld number%s)", sp->inputs[i].name,
                          sema_shape_str(s, sp->inputs[i].shape), sp->inputs[i].shape.rows * sp->inputs[i].shape.cols,
                          sp->inputs[i].shape.rows * sp->inputs[i].shape.cols == 1 ? "" : "s");
        }
    } else if (no_inputs) {
        for (size_t i = 0; i < sp->ninputs; i++)
            diag_error(s->diag, sp->inputs[i].decl->loc, "%s gives no inputs, only labels: input '%s' would always "
                       "be zero; remove it", g, sp->inputs[i].name);
    }
    /* labels: one number per sample, or low_rank's size x size matrix */
    ibc_shape out = sp->out_shape;
    if (size_key || gb == IBC_B_noisy_target) {
        if (out.rank != 0)
            diag_error(s->diag, sp->predict->loc, "%s gives one number per sample as its label, but the predictor "
                       "gives %s: the predictor must be a scalar", g, sema_shape_str(s, out));
    } else if (gb == IBC_B_low_rank) {
        ast_node *a = sema_kwarg(call, "size");
        long n = (long)a->lhs->value;
        if (out.rank != 2 || out.rows != n || out.cols != n) {
            diag_error(s->diag, sp->predict->loc, "low_rank gives a %ld x %ld matrix of labels, but the predictor "
                       "gives %s: the predictor must be a matrix[%ld, %ld]", n, n, sema_shape_str(s, out), n, n);
            diag_note(s->diag, a->loc, "the matrix size is set here");
        }
    }
    /* the data set a generator draws once, held by the trainer for the
     * whole run: within the cap on its buffers (features = 100000 with
     * train = 10^7 passed the check and needed 8 TB at run time) */
    if (size_key) {
        ast_node *a = sema_kwarg(call, size_key), *tr = sema_kwarg(call, gb == IBC_B_piecewise_signal ? "measurements"
                                                                                                       : "train");
        ast_node *te = sema_kwarg(call, "test");
        double samples = tr->lhs->value + (te ? te->lhs->value : 0);
        double mib = samples * (a->lhs->value + 1) * 8.0 / 1048576.0;   /* inputs and a label per sample */
        if (mib > SEMA_MAX_DATA_MIB) {
            diag_error(s->diag, tr->lhs->loc, "the data set of %.0f samples of %.0f numbers would need %.0f MiB; the "
                       "cap is %d MiB: fewer samples, or fewer %s", samples, a->lhs->value, mib, SEMA_MAX_DATA_MIB,
                       size_key);
        }
    }
    /* a minibatch drawn from a fixed training set fits in it */
    const char *train_key = gb == IBC_B_piecewise_signal ? "measurements" : size_key ? "train" : NULL;
    ibc_train *t = &sp->train;
    if (train_key && t->batch > 0) {
        ast_node *a = sema_kwarg(call, train_key);
        long n = (long)a->lhs->value;
        if (t->batch > n) {
            diag_error(s->diag, t->batch_node->loc, "batch = %ld draws more samples per step than the %ld training "
                       "sample%s: lower the batch to at most %ld, or use batch = full", t->batch, n,
                       n == 1 ? "" : "s", n);
            diag_note(s->diag, a->loc, "the training set's size is set here");
        }
    }
}

void sema_loss(sema *s, ast_node *n)
{
    ast_node *l = n->lhs;
    if (strcmp(l->name, "mse")) {
        const char *c[] = { "mse" };
        diag_error(s->diag, l->kind == AST_CALL ? l->name_loc : l->loc, "unknown loss '%s'%s", l->name,
                   sema_hint(s, l->name, c, 1));
        return;
    }
    s->spec->loss = LOSS_MSE;
    if (l->kind != AST_CALL)
        return;
    for (size_t i = 0; i < l->nkids; i++) {
        ast_node *a = l->kids[i];
        if (a->kind == AST_KWARG && !strcmp(a->name, "mask") && a->lhs->kind == AST_IDENT) {
            if (!s->has_mask || strcmp(a->lhs->name, "observed"))
                diag_error(s->diag, a->lhs->loc, "unknown mask '%s' (the data defines %s)", a->lhs->name,
                           s->has_mask ? "'observed'" : "no mask");
            else
                s->spec->loss_mask = "observed";
        } else if (a->kind == AST_KWARG && !strcmp(a->name, "normalise") && a->lhs->kind == AST_IDENT &&
                   (!strcmp(a->lhs->name, "all") || !strcmp(a->lhs->name, "observed"))) {
            s->spec->loss_normalise_all = !strcmp(a->lhs->name, "all");
        } else {
            diag_error(s->diag, a->loc, "'mse' takes mask = NAME and normalise = all | observed");
        }
    }
}
