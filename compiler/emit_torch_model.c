/*
 * emit_torch_model.c: one model class of the PyTorch export
 * (emit_torch_impl.h says which file of the export owns what).
 *
 * A class per model of the C trainer: its docstring (what it is, its
 * parameters in the spec's names), NAME and LR, the L1 baseline's
 * penalty, PARAMETERS (spec name -> attribute and .npy shape), __init__
 * (parameters and the operators' buffers), reset_parameters (the spec's
 * initial distributions, and the init unbalance along each one-generator
 * family), forward (the predictor, translated by emit_torch_expr.c),
 * designed_parameter (the designed model), and the methods of the
 * derivation (sym.h): dual_slices (chi per torus family, C = Gram(A) -
 * Gram(B) per GL junction), balance (each two-block family's norm ratio),
 * predicted_bias (the closed-form orbit minima), with DERIVED,
 * BIAS_NOT_COVERED and RATIO_PREDICTIONS describing their keys.
 */
#include "emit_torch_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- small texts */

/* The kind of a family's block, as _ibc_block_sq takes it. */
static const char *slice_kind(sym_slice s)
{
    switch (s) {
    case SYM_SLICE_ROW: return "row";
    case SYM_SLICE_COL: return "col";
    case SYM_SLICE_ENTRY: return "entry";
    case SYM_SLICE_SET: return "set";
    default: return "whole";
    }
}


/* A shape in the docstring's words: scalar, vector[n], matrix[r, c]. */
static const char *shape_text(ibc_arena *a, const ibc_shape *s)
{
    return s->rank == 0 ? "scalar" : s->rank == 1 ? arena_printf(a, "vector[%ld]", s->rows)
                                                  : arena_printf(a, "matrix[%ld, %ld]", s->rows, s->cols);
}

/* The shape of forward's argument or result, batch first when batched. */
static const char *out_shape_text(ibc_arena *a, bool batched, const ibc_shape *s)
{
    const char *b = batched ? "batch" : "";
    if (s->rank == 0)
        return batched ? "(batch,)" : "a 0-d tensor";
    if (s->rank == 1)
        return arena_printf(a, "(%s%s%ld)", b, batched ? ", " : "", s->rows);
    return arena_printf(a, "(%s%s%ld, %ld)", b, batched ? ", " : "", s->rows, s->cols);
}

/* ------------------------------------------------------ initialisation */

/* An initialisation expression's scalar factor, drawn once per parameter
 * (emit_data.c: emit_init_expr; abs and sqrt of draws). */
static void py_init_scalar(pyemit *pe, const ast_node *n)
{
    char nb[40];
    switch (n->kind) {
    case AST_NEG:
        P("(-");
        py_init_scalar(pe, n->lhs);
        P(")");
        return;
    case AST_BINOP:
        P("(");
        py_init_scalar(pe, n->lhs);
        P(" %c ", n->op == '@' ? '*' : n->op);
        py_init_scalar(pe, n->rhs);
        P(")");
        return;
    case AST_CALL:
        if (n->builtin == IBC_B_normal || n->builtin == IBC_B_uniform) {
            P("_ibc_draw(\"%s\", %s, ", n->name, py_num(nb, n->kids[0]->value));
            P("%s, generator)", py_num(nb, n->kids[1]->value));
        } else if (n->builtin == IBC_B_constant)
            P("%s", py_num(nb, n->kids[0]->value));
        else if (n->builtin == IBC_B_zeros)
            P("0.0");
        else if (n->builtin == IBC_B_abs || n->builtin == IBC_B_sqrt) {
            P("%s(", n->builtin == IBC_B_abs ? "abs" : "math.sqrt");
            py_init_scalar(pe, n->kids[0]);
            P(")");
        } else
            P("0.0");
        return;
    default: P("%s", py_num(nb, n->value)); return;
    }
}

/* Parameter i drawn from its initialisation (a factor times a draw). */
static void py_init_param(pyemit *pe, const pymodel *m, size_t i)
{
    const ibc_var *v = &m->spec->params[i];
    const char *at = m->attr[i];
    char nb[40];
    P("            # %s ~ ", at);
    if (v->init)
        py_comment(pe->out, py_unparse(pe->a, v->init));
    else
        P("normal(0, 0.1) (the default)");
    P("\n");
    const ast_node *factor = NULL, *dist = v->init ? ast_init_dist(v->init, &factor) : NULL;
    P("            self.%s.copy_(", at);
    if (factor) {
        py_init_scalar(pe, factor);
        P(" * ");
    }
    ibc_builtin kind = dist ? dist->builtin : IBC_B_normal;
    if (kind == IBC_B_normal) {
        P("_ibc_normal(self.%s.shape, %s, ", at, py_num(nb, dist ? dist->kids[0]->value : 0));
        P("%s, generator, self.%s.dtype))\n", py_num(nb, dist ? dist->kids[1]->value : 0.1), at);
    } else if (kind == IBC_B_uniform) {
        P("_ibc_uniform(self.%s.shape, %s, ", at, py_num(nb, dist->kids[0]->value));
        P("%s, generator, self.%s.dtype))\n", py_num(nb, dist->kids[1]->value), at);
    } else if (kind == IBC_B_constant) {
        P("torch.full_like(self.%s, %s))\n", at, py_num(nb, dist->kids[0]->value));
    } else {
        P("torch.zeros_like(self.%s))\n", at);
    }
}

/* ----------------------------------------------------- the derivation */

/* The squared block norms of family f as locals n<f>_<p>, each a tensor
 * over the family's indices. */
static void py_block_norms(pyemit *pe, const pymodel *m, const sym_family *fam, size_t f)
{
    for (int b = 0; b < fam->nblocks; b++) {
        const sym_block *bl = &fam->blocks[b];
        const ibc_var *v = &m->spec->params[bl->param];
        long R, C;
        py_dims(&v->shape, &R, &C);
        P("        n%zu_%d = _ibc_block_sq(self.%s, %ld, %ld, \"%s\", %ld", f + 1, b, m->attr[bl->param], R, C,
          slice_kind(bl->slice), fam->count);
        if (bl->slice == SYM_SLICE_SET)
            P(", self._IBC_SET_%zu_%d", f + 1, b);
        P(")  # ||");
        py_comment(pe->out, bl->text);
        P("||^2\n");
    }
}

/* chi_a = 1/2 sum_p alpha_ap n_p for generator a of family f */
static void py_chi_expr(pyemit *pe, const sym_family *fam, size_t f, int a)
{
    P("0.5 * (");
    bool first = true;
    for (int b = 0; b < fam->nblocks; b++) {
        long al = fam->alpha[a][b];
        if (!al)
            continue;
        const char *coef = labs(al) == 1 ? "" : arena_printf(pe->a, "%ld * ", labs(al));
        if (first)
            P("%s%sn%zu_%d", al < 0 ? "-" : "", coef, f + 1, b);
        else
            P(" %c %sn%zu_%d", al < 0 ? '-' : '+', coef, f + 1, b);
        first = false;
    }
    if (first)
        P("0.0");
    P(")");
}


/* The torus families and the groups of m's derivation (0 without one). */
static size_t families_of(const pymodel *m)
{
    return m->deriv ? sym_nfamilies(m->deriv) : 0;
}

static size_t groups_of(const pymodel *m)
{
    return m->deriv ? sym_ngroups(m->deriv) : 0;
}

/* The sets of entries of set blocks, as (owner, entries) tuples. */
static void py_set_tables(pyemit *pe, const pymodel *m)
{
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        for (int b = 0; b < fam->nblocks; b++) {
            const sym_block *bl = &fam->blocks[b];
            if (bl->slice != SYM_SLICE_SET)
                continue;
            P("    # family %zu: the entries of %s in each set %s (row-major), and their index\n", f + 1,
              m->attr[bl->param], bl->set_name);
            P("    _IBC_SET_%zu_%d = ((", f + 1, b);
            for (long i = 0; i < fam->count; i++)
                for (long t = bl->set_start[i]; t < bl->set_start[i + 1]; t++)
                    P("%ld, ", i);
            P("), (");
            for (long t = 0; t < bl->set_start[fam->count]; t++)
                P("%ld, ", bl->set_entries[t]);
            P("))\n");
        }
    }
}

/* What chi<f> is: "family f, NAME: chi = 1/2 (||u||^2 - ||v||^2), at each
 * of N indices", one formula per generator. */
static const char *chi_description(pyemit *pe, const sym_family *fam, size_t f)
{
    char *t = arena_printf(pe->a, "family %zu, %s: ", f + 1, fam->name);
    for (int ga = 0; ga < fam->k; ga++) {
        t = arena_printf(pe->a, "%s%s1/2 (", t, ga ? "; " : "chi = ");
        bool first = true;
        for (int b = 0; b < fam->nblocks; b++) {
            long al = fam->alpha[ga][b];
            if (!al)
                continue;
            t = arena_printf(pe->a, "%s%s%s||%s||^2", t, first ? (al < 0 ? "-" : "") : (al < 0 ? " - " : " + "),
                             labs(al) == 1 ? "" : arena_printf(pe->a, "%ld ", labs(al)), fam->blocks[b].text);
            first = false;
        }
        t = arena_printf(pe->a, "%s)", t);
    }
    return arena_printf(pe->a, "%s, at each of %ld indices%s", t, fam->count,
                        fam->k > 1 ? arena_printf(pe->a, " (a column per generator: %d)", fam->k) : "");
}

/* DERIVED: what each key of the methods' results is. */
static void py_derived_keys(pyemit *pe, const pymodel *m)
{
    const sym_derivation *d = m->deriv;
    size_t nf = families_of(m), ng = groups_of(m);
    P("    # The keys of dual_slices(), balance() and predicted_bias(), from the derivation.\n");
    P("    DERIVED = {\n");
    for (size_t f = 0; f < nf; f++) {
        P("        \"chi%zu\": ", f + 1);
        py_str(pe->out, chi_description(pe, sym_family_at(d, f), f));
        P(",\n");
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL)
            continue;
        P("        \"C%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: C = Gram(%s) - Gram(%s), %ld x %ld", g + 1, gr->text,
                                     m->spec->params[gr->left.param].name, m->spec->params[gr->right.param].name,
                                     gr->r, gr->r));
        P(",\n");
    }
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(d, f);
        if (fam->nblocks == 2 && fam->k == 1) {
            P("        \"ratio%zu\": ", f + 1);
            py_str(pe->out, arena_printf(pe->a, "family %zu: ||%s|| / ||%s|| at each index", f + 1, fam->blocks[0].text,
                                         fam->blocks[1].text));
            P(",\n");
        }
        if (fam->min_kind == SYM_MIN_ATTAINED) {
            P("        \"bias%zu\": ", f + 1);
            py_str(pe->out, arena_printf(pe->a, "family %zu: sum over indices of min over the orbit of log det G = "
                                                "sum of [%s log(%s) + %s] (times 1/(2 beta))",
                                         f + 1, fam->coefficient, fam->invariant, fam->constant));
            P(",\n");
        }
    }
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(d, g);
        if (gr->kind != SYM_GROUP_GL || !gr->full_rank)
            continue;
        P("        \"bias_group%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: sum_{i,j} log(sigma_i + sigma_j), sigma the singular "
                                            "values of the product (times 1/(2 beta)); the minimum over the whole "
                                            "group's orbit, when the product has rank %ld",
                                     g + 1, gr->text, gr->r));
        P(",\n");
    }
    P("    }\n\n");
}

/* BIAS_NOT_COVERED: the biases predicted_bias leaves out, and why. */
static void py_bias_not_covered(pyemit *pe, const pymodel *m)
{
    P("    # The biases predicted_bias() does not give (no closed-form orbit minimum;\n"
      "    # a GL junction whose product cannot reach full rank), each with the reason.\n");
    P("    BIAS_NOT_COVERED = {");
    bool any = false;
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->min_kind == SYM_MIN_ATTAINED)
            continue;
        P("\n        \"bias%zu\": ", f + 1);
        py_str(pe->out, arena_printf(pe->a, "family %zu, %s: %s", f + 1, fam->name, fam->min_text));
        P(",");
        any = true;
    }
    for (size_t g = 0; g < groups_of(m); g++) {
        const sym_group *gr = sym_group_at(m->deriv, g);
        if (gr->kind != SYM_GROUP_GL || gr->full_rank)
            continue;
        P("\n        \"bias_group%zu\": ", g + 1);
        py_str(pe->out, arena_printf(pe->a, "group %zu, %s: not derived: the product has rank below %ld, which the "
                                            "formula sum_{i,j} log(sigma_i + sigma_j) needs", g + 1, gr->text, gr->r));
        P(",");
        any = true;
    }
    P("%s}\n\n", any ? "\n    " : "");
}

/* RATIO_PREDICTIONS: the two exact predictions of each two-block ratio. */
static void py_ratio_predictions(pyemit *pe, const pymodel *m)
{
    char nb[40], nb2[40];
    P("    # The two exact predictions of each ratio (docs/theory.md §4): at the log det G\n"
      "    # minimiser and on the dual slice chi = 0 (None: no such prediction).\n");
    P("    RATIO_PREDICTIONS = {");
    bool any = false;
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        double rl, rd;
        sym_balance_predictions(fam, &rl, &rd);
        P("%s\n        \"ratio%zu\": {\"logdet_min\": %s, \"dual_slice\": %s}", any ? "," : "", f + 1,
          isfinite(rl) ? py_num(nb, rl) : "None", isfinite(rd) ? py_num(nb2, rd) : "None");
        any = true;
    }
    P("%s}\n\n", any ? ",\n    " : "");
}

/* The locals a and b: GL junction gr's two factors as the matrices of the
 * product A B, the contracted index last in a and first in b. */
static void py_gl_legs(pyemit *pe, const pymodel *m, const sym_group *gr)
{
    long R[2], C[2];
    const sym_leg *leg[2] = { &gr->left, &gr->right };
    for (int s = 0; s < 2; s++)
        py_dims(&m->spec->params[leg[s]->param].shape, &R[s], &C[s]);
    for (int s = 0; s < 2; s++) {
        const ibc_var *v = &m->spec->params[leg[s]->param];
        P("        %s = _ibc_leg(self.%s, %ld, %ld, %s, %s)\n", s ? "b" : "a", m->attr[leg[s]->param], R[s], C[s],
          v->shape.rank < 2 || leg[s]->rows ? "True" : "False", s ? "False" : "True");
    }
}

/* dual_slices: chi<f> per torus family, C<g> per GL junction. */
static void py_dual_slices(pyemit *pe, const pymodel *m)
{
    P("    def dual_slices(self):\n");
    P("        \"\"\"The derived dual slices at the current parameters (keys: DERIVED):\n"
      "        chi<f> per torus family (one value per index, or per index and\n"
      "        generator), C<g> per GL(r) junction.  Gradient flow conserves them;\n"
      "        an SGD step with gradient g moves each by lr^2 times its value at g.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        py_block_norms(pe, m, fam, f);
        if (fam->k == 1) {
            P("        out[\"chi%zu\"] = ", f + 1);
            py_chi_expr(pe, fam, f, 0);
            P("\n");
        } else {
            P("        out[\"chi%zu\"] = torch.stack([", f + 1);
            for (int a = 0; a < fam->k; a++) {
                if (a)
                    P(", ");
                py_chi_expr(pe, fam, f, a);
            }
            P("], dim=1)\n");
        }
    }
    for (size_t g = 0; g < groups_of(m); g++) {
        const sym_group *gr = sym_group_at(m->deriv, g);
        if (gr->kind != SYM_GROUP_GL)
            continue;
        P("        # group %zu: ", g + 1);
        py_comment(pe->out, gr->text);
        P("\n");
        py_gl_legs(pe, m, gr);
        P("        out[\"C%zu\"] = a.T @ a - b @ b.T\n", g + 1);
    }
    P("        return out\n\n");
}

/* balance: the norm ratio of each two-block family. */
static void py_balance(pyemit *pe, const pymodel *m)
{
    P("    def balance(self):\n");
    P("        \"\"\"The norm ratio of each two-block family at each index (keys: DERIVED),\n"
      "        to compare with RATIO_PREDICTIONS.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        py_block_norms(pe, m, fam, f);
        P("        out[\"ratio%zu\"] = torch.sqrt(n%zu_0 / n%zu_1)\n", f + 1, f + 1, f + 1);
    }
    P("        return out\n\n");
}

/* The local b: family f's orbit minimum of log det G at each index, one
 * weight per group of terms (terms with equal orbit exponents merged:
 * delta_g log(C_g / delta_g), C_g the group's sum). */
static void py_family_bias(pyemit *pe, const sym_family *fam, size_t f)
{
    char nb[40], nb2[40];
    P("        b = 0.0");
    for (int g = 0; g < fam->ndelta; g++) {
        double dl = sym_rat_double(fam->delta[g]);
        int nin = 0, t = -1;
        for (int u = 0; u < fam->nterms; u++)
            if (fam->term_group[u] == g) {
                nin++;
                t = t < 0 ? u : t;
            }
        if (!(dl > 0) || !nin)
            continue;
        if (nin == 1) {
            P(" + %s * (math.log(%ld / %s)", py_num(nb, dl), fam->term_coef[t], py_num(nb2, dl));
            for (int b = 0; b < fam->nblocks; b++)
                if (fam->term_set[t] & (1u << b))
                    P(" + torch.log(n%zu_%d)", f + 1, b);
            P(")");
            continue;
        }
        P(" + %s * (torch.log(", py_num(nb, dl));
        for (int u = t; u < fam->nterms; u++) {
            if (fam->term_group[u] != g)
                continue;
            P("%s%ld", u > t ? " + " : "", fam->term_coef[u]);
            for (int b = 0; b < fam->nblocks; b++)
                if (fam->term_set[u] & (1u << b))
                    P(" * n%zu_%d", f + 1, b);
        }
        P(") - math.log(%s))", py_num(nb2, dl));
    }
    P("\n");
}

/* predicted_bias: the closed-form orbit minima, families and junctions. */
static void py_predicted_bias(pyemit *pe, const pymodel *m)
{
    P("    def predicted_bias(self, per_index=False):\n");
    P("        \"\"\"The implicit bias the derivation predicts, at the current parameters\n"
      "        (keys: DERIVED): for each torus family whose orbit minimum of log det G\n"
      "        is in closed form, the sum over its indices of that minimum, by the\n"
      "        dual weights delta_S of its terms c_S prod n_p, sum_S delta_S (log c_S -\n"
      "        log delta_S + sum_{p in S} log n_p) (per_index: one value per index);\n"
      "        for each GL junction of full rank, sum_{i,j} log(sigma_i + sigma_j).\n"
      "        The bias SGD adds is 1/(2 beta) times these.  Families or groups that\n"
      "        share a parameter are coupled: their sum is not the model's log det G\n"
      "        (see the docstring's derivation).  The others are left out, and\n"
      "        BIAS_NOT_COVERED says why.\"\"\"\n");
    P("        out = {}\n");
    for (size_t f = 0; f < families_of(m); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->min_kind != SYM_MIN_ATTAINED)
            continue;
        py_block_norms(pe, m, fam, f);
        py_family_bias(pe, fam, f);
        P("        out[\"bias%zu\"] = b if per_index else b.sum()\n", f + 1);
    }
    for (size_t g = 0; g < groups_of(m); g++) {
        const sym_group *gr = sym_group_at(m->deriv, g);
        if (gr->kind != SYM_GROUP_GL || !gr->full_rank)
            continue;
        py_gl_legs(pe, m, gr);
        P("        s = torch.linalg.svdvals(a @ b)[:%ld]\n", gr->r);
        P("        out[\"bias_group%zu\"] = _ibc_log_pairs(s)\n", g + 1);
    }
    P("        return out\n");
}

/* The derivation's methods of a model: dual_slices, balance,
 * predicted_bias, and their descriptions (DERIVED). */
static void py_derived_methods(pyemit *pe, const pymodel *m)
{
    py_set_tables(pe, m);
    py_derived_keys(pe, m);
    py_bias_not_covered(pe, m);
    py_ratio_predictions(pe, m);
    py_dual_slices(pe, m);
    py_balance(pe, m);
    py_predicted_bias(pe, m);
}

/* ------------------------------------------------------------ the class */

/* The class's docstring: which model it is, its parameters. */
static void py_class_docstring(pyemit *pe, const pymodel *m)
{
    const ibc_spec *s = m->spec;
    P("    \"\"\"");
    if (m->designed) {
        py_str_body(pe->out, arena_printf(pe->a, "The designed model: %s, for %s;\n    the C trainer's model "
                                                 "'designed'.",
                                          pe->design->factorisation, pe->design->requested), true);
    } else if (!strcmp(m->name, "model")) {
        py_str_body(pe->out, "The spec's model, trained by the C trainer as model 'model'.", true);
    } else if (!strcmp(m->name, "l1")) {
        py_str_body(pe->out, arena_printf(pe->a, "The spec's own parameterisation with the L1 baseline's penalty "
                                                 "%g * ||%s||_1 (penalty()), the C trainer's model 'l1'.",
                                          m->l1, m->l1_param >= 0 ? s->params[m->l1_param].name : "theta"),
                    true);
    } else {
        py_str_body(pe->out, "The spec's own parameterisation (no design), the C trainer's baseline 'vanilla'.", true);
    }
    P("\n\n    Parameters, named as in the spec:");
    for (size_t i = 0; i < s->nparams; i++) {
        P("\n      %s: %s", m->attr[i], shape_text(pe->a, &s->params[i].shape));
        if (strcmp(m->attr[i], s->params[i].name)) {
            P(" (in the spec: ");
            py_str_body(pe->out, s->params[i].name, false);
            P(")");
        }
    }
    P("\n    \"\"\"\n\n");
}

/* The class line, its docstring, NAME, LR and the L1 baseline's penalty;
 * true when the class is a subclass whose base has the rest (L1). */
static bool py_class_head(pyemit *pe, const pymodel *m, bool subclass)
{
    char nb[40];
    P("\n\nclass %s(%s):\n", m->cls, m->base);
    py_class_docstring(pe, m);
    P("    NAME = ");
    py_str(pe->out, m->name);
    if (m->lr > 0)
        P("\n    LR = %s  # its learning rate in the C trainer\n", py_num(nb, m->lr));
    else   /* lr = auto: chosen by the C trainer's trial runs, in its results.json */
        P("\n    LR = None  # lr = auto: the C trainer chooses it (results.json, lr_%s)\n", m->name);
    if (!strcmp(m->name, "l1")) {
        P("    L1_WEIGHT = %s\n", py_num(nb, m->l1));
        P("\n    def penalty(self):\n        \"\"\"The L1 baseline's term of the objective.\"\"\"\n");
        if (m->l1_param >= 0)
            P("        return self.L1_WEIGHT * self.%s.abs().sum()\n", m->attr[m->l1_param]);
        else
            P("        return self.L1_WEIGHT * sum(p.abs().sum() for p in self.parameters())\n");
        if (subclass)
            return true;
        P("\n");
    }
    return false;
}

/* PARAMETERS and __init__ (the parameters, the operators' buffers). */
static void py_init_method(pyemit *pe, const pymodel *m)
{
    const ibc_spec *s = m->spec;
    P("    # spec name -> (attribute, shape of its .npy file in the C trainer's output)\n");
    P("    PARAMETERS = {\n");
    for (size_t i = 0; i < s->nparams; i++) {
        P("        ");
        py_str(pe->out, s->params[i].name);
        P(": (\"%s\", ", m->attr[i]);
        py_shape_tuple(pe->out, &s->params[i], true);
        P("),\n");
    }
    P("    }\n\n");

    P("    def __init__(self, dtype=DTYPE, generator=None):\n");
    P("        \"\"\"Parameters drawn from the spec's initialisation (a torch.Generator\n"
      "        for reproducible draws); dtype float64 unless given.\"\"\"\n");
    P("        super().__init__()\n");
    for (size_t i = 0; i < s->nparams; i++) {
        P("        self.%s = torch.nn.Parameter(torch.empty(", m->attr[i]);
        py_shape_tuple(pe->out, &s->params[i], false);
        P(", dtype=dtype))\n");
    }
    py_op_buffers(pe, &m->ops, "        ");
    P("        self.reset_parameters(generator)\n\n");
}

/* init unbalance(from, to): each block of each one-generator family
 * scaled by exp(alpha_p t_i), t_i from `from` to `to` over its indices
 * (emit_model.c: emit_unbalance). */
static void py_init_unbalance(pyemit *pe, const pymodel *m)
{
    char nb[40], nb2[40];
    double from = 0, to = 0;
    for (size_t k = 0; k < pe->spec->init->nkids; k++) {
        const ast_node *kw = pe->spec->init->kids[k];
        if (kw->kind == AST_KWARG && !strcmp(kw->name, "from"))
            from = kw->lhs->value;
        if (kw->kind == AST_KWARG && !strcmp(kw->name, "to"))
            to = kw->lhs->value;
    }
    for (size_t f = 0; f < sym_nfamilies(m->deriv); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->k != 1)
            continue;
        P("            # init unbalance: along family %zu, t_i = linspace(%g, %g, %ld)\n", f + 1, from, to,
          fam->count);
        P("            t = %s + (%s) * torch.arange(%ld, dtype=torch.float64) / %ld.0\n", py_num(nb, from),
          py_num(nb2, to - from), fam->count, fam->count > 1 ? fam->count - 1 : 1);
        for (int b = 0; b < fam->nblocks; b++) {
            const sym_block *bl = &fam->blocks[b];
            const ibc_var *v = &m->spec->params[bl->param];
            long R, C;
            py_dims(&v->shape, &R, &C);
            const char *at = m->attr[bl->param];
            P("            e = torch.exp(%ld * t).to(self.%s.dtype)\n", fam->alpha[0][b], at);
            switch (bl->slice) {
            case SYM_SLICE_ROW: P("            self.%s.view(%ld, %ld).mul_(e.unsqueeze(1))\n", at, R, C); break;
            case SYM_SLICE_COL: P("            self.%s.view(%ld, %ld).mul_(e.unsqueeze(0))\n", at, R, C); break;
            case SYM_SLICE_ENTRY: P("            self.%s.view(-1).mul_(e)\n", at); break;
            default: P("            self.%s.mul_(e[0])  # the whole block\n", at); break;
            }
        }
    }
}

/* reset_parameters: the spec's distributions, then the unbalance. */
static void py_reset_method(pyemit *pe, const pymodel *m)
{
    P("    def reset_parameters(self, generator=None):\n");
    P("        \"\"\"Draws the parameters from the spec's initialisation: the same\n"
      "        distributions as the C trainer, not its random stream.\"\"\"\n");
    P("        with torch.no_grad():\n");
    for (size_t i = 0; i < m->spec->nparams; i++)
        py_init_param(pe, m, i);
    if (m->unbalance && m->deriv)
        py_init_unbalance(pe, m);
    P("\n");
}

/* forward: the predictor, its body fwd (py_translate) returning res. */
static void py_forward_method(pyemit *pe, const pymodel *m, const char *fwd, pyv res)
{
    const ibc_spec *s = m->spec;
    P("    def forward(self");
    for (size_t i = 0; i < s->ninputs; i++)
        P(", %s", m->arg[i]);
    P("):\n        \"\"\"The predictor: ");
    py_str_body(pe->out, py_unparse(pe->a, s->predict), false);
    for (size_t i = 0; i < s->ninputs; i++) {
        ibc_shape is = s->inputs[i].shape;
        P("\n        %s: %s", m->arg[i], out_shape_text(pe->a, true, &is));
    }
    P("\n        Returns %s.\"\"\"\n", out_shape_text(pe->a, res.batched, &s->out_shape));
    fputs(fwd, pe->out);
    P("        return %s\n", res.e);
}

/* designed_parameter: the spec's parameter as a function of the factors,
 * its body wfun returning wres. */
static void py_designed_parameter(pyemit *pe, const char *wfun, pyv wres)
{
    const ibc_var *w = &pe->spec->params[pe->spec->design.param];
    P("\n    def designed_parameter(self):\n");
    P("        \"\"\"The spec's parameter %s as a function of the factors: ", w->name);
    py_str_body(pe->out, pe->design->factorisation, false);
    P(".\"\"\"\n");
    fputs(wfun, pe->out);
    P("        return %s\n", wres.e);
}

/* The method bodies are translated first: the operators they apply
 * become buffers in __init__, written before them. */
void py_model_class(pyemit *pe, pymodel *m)
{
    const ibc_spec *s = m->spec;
    const char **self_param = arena_alloc(pe->a, (s->nparams + 1) * sizeof *self_param);
    for (size_t i = 0; i < s->nparams; i++)
        self_param[i] = arena_printf(pe->a, "self.%s", m->attr[i]);
    bool subclass = strcmp(m->base, "_IbcModel") != 0;   /* L1: its base has the rest */
    pyv res = { 0 };
    char *fwd = subclass ? NULL : py_translate(pe, m, s->predict, self_param, "        ", &res);
    char *wfun = NULL;
    pyv wres = { 0 };
    if (!subclass && m->designed && pe->design && pe->design->replacement)
        wfun = py_translate(pe, m, pe->design->replacement, self_param, "        ", &wres);

    if (py_class_head(pe, m, subclass))
        return;   /* the rest is its base's */
    py_init_method(pe, m);
    py_reset_method(pe, m);
    py_forward_method(pe, m, fwd, res);
    free(fwd);
    if (wfun) {
        py_designed_parameter(pe, wfun, wres);
        free(wfun);
    }
    if (m->deriv && (sym_nfamilies(m->deriv) || sym_ngroups(m->deriv))) {
        P("\n");
        py_derived_methods(pe, m);
    }
}

/* The model's Python names: attributes for parameters, arguments for inputs. */
void py_names(pyemit *pe, pymodel *m)
{
    const ibc_spec *s = m->spec;
    m->attr = arena_alloc(pe->a, (s->nparams + 1) * sizeof *m->attr);
    for (size_t i = 0; i < s->nparams; i++)
        m->attr[i] = py_name(pe->a, s->params[i].name, m->attr, i);
    m->arg = arena_alloc(pe->a, (s->ninputs + 1) * sizeof *m->arg);
    for (size_t i = 0; i < s->ninputs; i++)
        m->arg[i] = py_name(pe->a, s->inputs[i].name, m->arg, i);
}
