/*
 * emit_data.c: the data and the initialisation of a trainer (emit_impl.h).
 *
 * Contract: the parameters' draws (m<k>_init, the teacher's weights) as
 * the spec's initialisations read, in the spec's order, from the streams
 * of ibrt_rng; the data's part of setup() (a generator on stream 0 or
 * files read at run time, shapes checked), setup() itself with the fixed
 * operators read from their files, and draw_batch, the sampler (the full
 * training set, a minibatch, fresh teacher or target samples, or a
 * low-rank mask), which allocates nothing.  Spec text reaches the C only
 * through emit_c_string and emit_comment_text.
 */
#include "emit_impl.h"

/* ------------------------------------------------------- initialisation */

/* C expression of an initialisation (a distribution times a factor). */
static void emit_init_expr(const ast_node *n, const char *rng)
{
    switch (n->kind) {
    case AST_NUM: OUT("%s", cw_num(n->value)); return;
    case AST_IDENT: OUT("%s", cw_num(n->value)); return;
    case AST_NEG: OUT("(-"); emit_init_expr(n->lhs, rng); OUT(")"); return;
    case AST_BINOP:
        OUT("(");
        emit_init_expr(n->lhs, rng);
        OUT(" %c ", n->op == '@' ? '*' : n->op);
        emit_init_expr(n->rhs, rng);
        OUT(")");
        return;
    case AST_CALL:
        if (n->builtin == IBC_B_normal) {
            OUT("(%s + %s * ibrt_rng_normal(%s))", cw_num(n->kids[0]->value), cw_num(n->kids[1]->value), rng);
        } else if (n->builtin == IBC_B_uniform) {
            OUT("(%s + %s * ibrt_rng_uniform(%s))", cw_num(n->kids[0]->value), cw_num(n->kids[1]->value - n->kids[0]->value),
                rng);
        } else if (n->builtin == IBC_B_constant) {
            OUT("%s", cw_num(n->kids[0]->value));
        } else if (n->builtin == IBC_B_zeros) {
            OUT("0.0");
        } else if (n->builtin == IBC_B_abs || n->builtin == IBC_B_sqrt) {
            OUT("%s(", n->builtin == IBC_B_abs ? "fabs" : "sqrt");
            emit_init_expr(n->kids[0], rng);
            OUT(")");
        } else {
            OUT("0.0");
        }
        return;
    default:
        OUT("%s", cw_num(n->value));
    }
}

/* Parameter v's initialisation init (NULL: the default), drawn from rng
 * into th[off...]; the comment names the parameter and its distribution,
 * as the spec writes them. */
static void emit_init_param(const ibc_var *v, const ast_node *init, long off, const char *th, const char *rng,
                            const ibc_source *src)
{
    long size = v->shape.rows * v->shape.cols;
    OUT("    /* ");
    emit_comment_text(v->name);
    if (init) {
        char *t = ast_text(init, src, 120);
        OUT(" ~ ");
        emit_comment_text(t);
        free(t);
        emit_where(src, init);
    } else {
        OUT(" ~ normal(0, 0.1), the default");
    }
    OUT(" */\n    {\n        double f = ");
    const ast_node *factor = NULL, *dist = init ? ast_init_dist(init, &factor) : NULL;
    if (factor)
        emit_init_expr(factor, rng);
    else
        OUT("1.0");
    OUT(";\n        for (int e = 0; e < %ld; e++)\n            %s[%ld + e] = f * ", size, th, off);
    if (dist)
        emit_init_expr(dist, rng);
    else
        OUT("(0.1 * ibrt_rng_normal(%s))", rng);
    OUT(";\n    }\n");
}

/* m<k>_init: draws the model's parameters from their initialisations (in
 * the spec's order), then unbalances along the families if asked. */
void emit_init_function(const model *m, const char *pre, const ibc_spec *spec)
{
    OUT("/* %s: initial parameters from the stream rng */\n", pre);
    OUT("static void %s_init(double *th, ibrt_rng *rng)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &emit_current->out);
    for (size_t i = 0; i < m->spec->nparams; i++)
        emit_init_param(&m->spec->params[i], m->spec->params[i].init, m->p.param_off[i], "th", "rng", m->spec->src);
    if (m->unbalance)
        emit_unbalance(m, emit_kwnum(spec->init, "from", 0), emit_kwnum(spec->init, "to", 0));
    char *code = cw_end(&cb, &emit_current->out);
    static const char *const params[] = { "th", "rng" };
    cw_fn_body(emit_current->out, params, 2, NULL, 0, code);
    free(code);
    OUT("}\n\n");
}

/* ---------------------------------------------------------------- data */

/* The value of keyword argument name of call, NULL when absent. */
static const ast_node *kwarg(const ast_node *call, const char *name)
{
    for (size_t i = 0; i < call->nkids; i++)
        if (call->kids[i]->kind == AST_KWARG && !strcmp(call->kids[i]->name, name))
            return call->kids[i]->lhs;
    return NULL;
}

/* Its number, def when absent. */
double emit_kwnum(const ast_node *call, const char *name, double def)
{
    const ast_node *v = kwarg(call, name);
    return v ? v->value : def;
}

/* A list of numbers as a static array named cname. */
static void emit_list_array(const char *cname, const ast_node *list)
{
    OUT("    static const double %s[%zu] = {", cname, list->nkids);
    for (size_t i = 0; i < list->nkids; i++)
        OUT("%s%s", i ? ", " : " ", cw_num(list->kids[i]->value));
    OUT(" };\n");
}

/* What kind of data the spec trains on. */
data_kind emit_data_of(const ibc_spec *spec)
{
    ibc_builtin g = spec->data->builtin;
    if (g == IBC_B_teacher)
        return D_TEACHER;
    if (g == IBC_B_noisy_target)
        return D_TARGET;
    if (g == IBC_B_low_rank)
        return D_LOWRANK;
    return D_FIXED;
}

/* The data's part of setup(): a generator drawing the data set from
 * stream 0, files read at run time, or nothing (a teacher or a noisy
 * target draws every batch afresh). */
static void emit_data_setup(const ibc_spec *spec)
{
    const ast_node *d = spec->data;
    const char *g = d->name;
    ibc_builtin gb = d->builtin;
    bool files = gb == IBC_B_csv || gb == IBC_B_npy;
    bool gen = gb == IBC_B_cosine_spikes || gb == IBC_B_sparse_regression || gb == IBC_B_piecewise_signal ||
               gb == IBC_B_low_rank;
    OUT("    /* data: ");
    emit_comment_text(g);
    if (!gen && !files) {
        OUT(": nothing to set up, every step draws its batch */\n");
        return;
    }
    OUT(" */\n");
    if (gen)
        OUT("    ibrt_rng rd;\n    ibrt_rng_fork(&rd, seed, 0);   /* stream 0: data */\n");
    if (gb == IBC_B_cosine_spikes || gb == IBC_B_sparse_regression) {
        OUT("    st = ibrt_gen_%s(ds, &rd, %ld, %ld, %ld, %ld, %s, err);\n", g,
            (long)emit_kwnum(d, gb == IBC_B_cosine_spikes ? "modes" : "features", 0), (long)emit_kwnum(d, "train", 0),
            (long)emit_kwnum(d, "test", 0), (long)emit_kwnum(d, "nonzeros", 0), cw_num(emit_kwnum(d, "noise", 0)));
    } else if (gb == IBC_B_piecewise_signal) {
        emit_list_array("levels", kwarg(d, "levels"));
        emit_list_array("lengths", kwarg(d, "lengths"));
        OUT("    st = ibrt_gen_piecewise_signal(ds, &rd, %ld, %ld, levels, lengths, %zu, %s, err);\n",
            (long)emit_kwnum(d, "length", 0), (long)emit_kwnum(d, "measurements", 0), kwarg(d, "levels")->nkids,
            cw_num(emit_kwnum(d, "noise", 0)));
    } else if (gb == IBC_B_low_rank) {
        emit_list_array("sv", kwarg(d, "singular_values"));
        OUT("    st = ibrt_gen_low_rank(ds, &rd, %ld, sv, %zu, %s, err);\n", (long)emit_kwnum(d, "size", 0),
            kwarg(d, "singular_values")->nkids, cw_num(emit_kwnum(d, "observed", 0)));
    } else if (files) {
        /* read at run time (CSV or .npy by extension), shapes checked
         * against the spec's input and output sizes */
        static const char *const keys[] = { "x", "y", "test_x", "test_y" };
        char full[8192];
        for (int i = 0; i < 4; i++) {
            const ast_node *f = kwarg(d, keys[i]);
            OUT("    const char *file_%s = ", keys[i]);
            if (f && f->kind == AST_STR)
                emit_c_string(emit_current->out, emit_spec_file_path(spec, f->text, full, sizeof full));
            else
                OUT("NULL");
            OUT(";\n");
        }
        const ast_node *hd = kwarg(d, "header");
        if (hd)   /* the spec says whether the first line of each CSV file is a header */
            OUT("    st = ibrt_gen_from_files_header(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, %d, err);\n",
                !strcmp(hd->name, "true"));
        else
            OUT("    st = ibrt_gen_from_files(ds, file_x, file_y, file_test_x, file_test_y, IN, OUT, err);\n");
        if (spec->train.batch > 0)
            OUT("    if (st == IBRT_OK)\n        st = ibrt_data_fits_batch(ds, file_x, %ld, err);\n", spec->train.batch);
    }
    OUT("    if (st != IBRT_OK) {\n        ibrt_error e = *err;\n"
        "        snprintf(err->msg, sizeof err->msg, \"data: %%.500s\", e.msg);\n        return st;\n    }\n");
}

/* The batch buffers and draw_batch, the sampler the driver calls each
 * step: the training set itself (full batch) or a minibatch drawn from
 * it, fresh teacher or target samples, or the low-rank mask. */
void emit_draw_batch(const ibc_spec *spec, const prog *teacher, const char *teacher_fw, data_kind dk, long bmax)
{
    long batch = spec->train.batch;
    /* the sampler's body first: it says whether the labels' buffer is used */
    cw_buf cb;
    cw_begin(&cb, &emit_current->out);
    switch (dk) {
    case D_FIXED:
        if (batch == 0) {
            OUT("    /* full batch: the training set itself, no copy */\n    *X = ds->x_train;\n    *Y = ds->y_train;\n");
            OUT("    return (long)ds->n_train;\n");
        } else {
            OUT("    *X = bx;\n    *Y = by;\n");
            OUT("    /* %ld samples drawn uniformly (with replacement) from the training set */\n", batch);
            OUT("    for (long b = 0; b < %ld; b++) {\n        size_t s = ibrt_rng_below(rb, ds->n_train);\n", batch);
            OUT("        memcpy(bx + b * IN, ds->x_train + s * IN, sizeof(double) * IN);\n");
            OUT("        memcpy(by + b * OUT, ds->y_train + s * OUT, sizeof(double) * OUT);\n    }\n    return %ld;\n", batch);
        }
        break;
    case D_TEACHER: {
        const ast_node *inp = kwarg(spec->data, "inputs");
        OUT("    *X = bx;\n    *Y = by;\n");
        OUT("    /* fresh inputs ~ ");
        emit_comment_text(inp->name);
        OUT("; labels from the teacher plus N(0, noise^2) */\n");
        if (inp->kind == AST_CALL && inp->builtin == IBC_B_normal) {
            OUT("    ibrt_rng_normals(rb, bx, BMAX * IN, %s, %s);\n", cw_num(inp->kids[0]->value), cw_num(inp->kids[1]->value));
        } else {
            OUT("    for (long e = 0; e < BMAX * IN; e++)\n        bx[e] = ");
            emit_init_expr(inp, "rb");
            OUT(";\n");
        }
        OUT("    %s(te_th, bx, BMAX, te_tp);\n", teacher_fw);
        OUT("    ibrt_rng_normals(rb, by, BMAX * OUT, 0, %s);\n", cw_num(emit_kwnum(spec->data, "noise", 0)));
        OUT("    for (long s = 0; s < BMAX; s++)\n        for (long o = 0; o < OUT; o++)\n"
            "            by[s * OUT + o] += te_tp[%ld + %so];\n",
            teacher->v[teacher->root].off, teacher->v[teacher->root].batched ? "s * OUT + " : "");
        OUT("    return BMAX;\n");
        break;
    }
    case D_TARGET:
        OUT("    *X = bx;\n    *Y = by;\n");
        OUT("    /* labels value + N(0, noise^2), no inputs */\n");
        OUT("    ibrt_rng_normals(rb, by, %ld, %s, %s);\n    return %ld;\n", bmax, cw_num(emit_kwnum(spec->data, "value", 0)),
            cw_num(emit_kwnum(spec->data, "noise", 0)), bmax);
        break;
    case D_LOWRANK:
        OUT("    /* each observed entry joins the minibatch with probability %s */\n",
            cw_num(emit_kwnum(spec->data, "batch_fraction", 1)));
        OUT("    *X = bx;\n    *Y = ds->y_train;\n    for (long e = 0; e < OUT; e++)\n");
        OUT("        bmask[e] = ds->mask[e] != 0 && ibrt_rng_uniform(rb) < %s ? 1.0 : 0.0;\n    return 1;\n",
            cw_num(emit_kwnum(spec->data, "batch_fraction", 1)));
        break;
    }
    char *code = cw_end(&cb, &emit_current->out);
    OUT("enum { BMAX = %ld };   /* samples per step */\n", bmax);
    OUT(cw_uses(code, "by") ? "static double bx[BMAX * IN], by[BMAX * OUT];\n" : "static double bx[BMAX * IN];\n");
    if (dk == D_LOWRANK)
        OUT("static double bmask[OUT];   /* this step's observed entries */\n");
    OUT("\n");
    OUT("/* One minibatch: *X its inputs, *Y its labels%s; returns its number\n"
        " * of samples.  Nothing is allocated. */\n", dk == D_LOWRANK ? " (and bmask the mask)" : "");
    OUT("static long draw_batch(const ibrt_dataset *ds, ibrt_rng *rb, const double **X, const double **Y)\n{\n");
    static const char *const batch_params[] = { "ds", "rb", "X", "Y" };
    cw_fn_body(emit_current->out, batch_params, 4, NULL, 0, code);
    free(code);
    OUT("}\n\n");
}

/* setup(): operators, data (stream 0), teacher (stream 1). */
void emit_setup_function(const ibc_spec *spec, const prog *teacher, data_kind dk)
{
    emitter *em = emit_current;
    OUT("/* Fixed operators, the data (stream 0) and the teacher (stream 1) for\n"
        " * one seed; an error names the file or generator at fault. */\n");
    OUT("static ibrt_status setup(ibrt_dataset *ds, uint64_t seed, bool quiet, ibrt_error *err)\n{\n");
    cw_buf setup_cb;
    cw_begin(&setup_cb, &em->out);
    for (int i = 0; i < em->ndct; i++)
        OUT("    ibrt_op_dct_matrix(%ld, dct_%ld);\n", em->dct_sizes[i], em->dct_sizes[i]);
    for (int i = 0; i < em->ndense; i++) {
        long n = em->dense_r[i], nc = em->dense_c[i];
        OUT("    {   /* matrix(...) operator %d: read, shape checked", i);
        if (em->dense_inv[i])
            OUT(", inverse formed once from its LU\n         * factors (LAPACKE dgetrf/dgetrs) so that each step is one gemv,\n"
                "         * allocation-free");
        OUT(" */\n        const char *path = ");
        emit_c_string(em->out, em->dense_path[i]);
        OUT(";\n        size_t r, c;\n        double *a;\n");
        OUT("        if ((st = ibrt_io_read_matrix(path, &r, &c, &a, err)) != IBRT_OK)\n            return st;\n");
        OUT("        if (r != %ld || c != %ld) {\n"
            "            snprintf(err->msg, sizeof err->msg, \"%%.400s: the operator must be %ld x %ld, the file holds %%zu x %%zu\", path, r, c);\n"
            "            free(a);\n            return IBRT_ESHAPE;\n        }\n        memcpy(dense_%d, a, sizeof dense_%d);\n",
            n, nc, n, nc, i, i);
        if (em->dense_inv[i]) {
            OUT("        ibrt_lu lu;\n        if ((st = ibrt_lu_factor(&lu, %ld, a, err)) == IBRT_OK) {\n", n);
            OUT("            if (lu.rcond < 1e-12 && !quiet)\n"
                "                fprintf(stderr, \"warning: %%s: condition number about %%.3g: \"\n"
                "                        \"its inverse loses about %%.0f digits\\n\", path, 1 / lu.rcond, -log10(lu.rcond));\n");
            OUT("            for (long q = 0; q < %ld * %ld; q++)\n                dense_inv_%d[q] = q %% %ld == q / %ld;\n", n, n,
                i, n, n);
            OUT("            st = ibrt_lu_solve(&lu, 0, %ld, dense_inv_%d, err);\n            ibrt_lu_free(&lu);\n        }\n", n, i);
            OUT("        if (st != IBRT_OK) {\n            ibrt_error e = *err;\n"
                "            snprintf(err->msg, sizeof err->msg, \"%%.200s: %%.300s\", path, e.msg);\n"
                "            free(a);\n            return st;\n        }\n");
        }
        OUT("        free(a);\n    }\n");
    }
    emit_data_setup(spec);
    if (dk == D_TEACHER) {
        OUT("    /* teacher weights (stream 1) */\n    ibrt_rng rt;\n    ibrt_rng_fork(&rt, seed, 1);\n");
        for (size_t i = 0; i < spec->nparams; i++) {
            const ast_node *ti = NULL;
            for (size_t j = 0; j < spec->teacher->nkids; j++)
                if (!strcmp(spec->teacher->kids[j]->name, spec->params[i].name))
                    ti = spec->teacher->kids[j]->lhs;
            emit_init_param(&spec->params[i], ti ? ti : spec->params[i].init, teacher->param_off[i], "te_th", "&rt",
                            spec->src);
        }
    }
    OUT("    return IBRT_OK;\n");
    char *setup_code = cw_end(&setup_cb, &em->out);
    static const char *const setup_params[] = { "ds", "seed", "quiet", "err" };
    cw_decl st = { cw_strdup("st"), cw_strdup("ibrt_status st;"), NULL };
    cw_fn_body(em->out, setup_params, 4, &st, 1, setup_code);
    free(setup_code);
    OUT("}\n\n");
}
