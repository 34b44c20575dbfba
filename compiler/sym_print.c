/*
 * sym_print.c: the derivation in text, markdown, TeX and JSON (sym_print,
 * sym.h).  Only printing: every value is the derivation's (sym_impl.h).
 */
#include "sym.h"
#include "sym_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ printing */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static const char *gram_text(ibc_arena *a, const sym_family *f)
{
    char *s = "";
    for (int t = 0; t < f->nterms; t++) {
        char *mono = "";
        for (int p = 0; p < f->nblocks; p++)
            if (f->term_set[t] & (1u << p))
                mono = arena_printf(a, "%s%s%s", mono, *mono ? " " : "", sym_block_norm2(a, f, p));
        s = f->term_coef[t] == 1 ? arena_printf(a, "%s%s%s", s, t ? " + " : "", mono)
                                 : arena_printf(a, "%s%s%ld %s", s, t ? " + " : "", f->term_coef[t], mono);
    }
    return s;
}

static const char *slice_eq(ibc_arena *a, const sym_family *f, int g)
{
    char *s = "chi = 1/2 (";
    bool first = true;
    for (int p = 0; p < f->nblocks; p++) {
        long e = f->alpha[g][p];
        if (!e)
            continue;
        const char *nm = sym_block_norm2(a, f, p);
        if (first)
            s = e == 1 ? arena_printf(a, "%s%s", s, nm) : e == -1 ? arena_printf(a, "%s-%s", s, nm)
                                                              : arena_printf(a, "%s%ld %s", s, e, nm);
        else
            s = labs(e) == 1 ? arena_printf(a, "%s %c %s", s, e > 0 ? '+' : '-', nm)
                             : arena_printf(a, "%s %c %ld %s", s, e > 0 ? '+' : '-', labs(e), nm);
        first = false;
    }
    return arena_printf(a, "%s)", s);
}

static const char *exists_text(const sym_family *f)
{
    switch (f->existence) {
    case SYM_MIN_ATTAINED: return "true";
    case SYM_MIN_UNBOUNDED: return "false";
    case SYM_MIN_NOT_ATTAINED: return "\"not_attained\"";
    default: return "\"numeric\"";
    }
}

/* The "balance" and "bias" members of a family, each on its own line
 * indented by ind (used per family and, for the first, at the top level). */
static void json_balance_bias(FILE *out, const sym_family *f, const char *ind)
{
    fprintf(out, ",\n%s\"balance\": {\"log_det_minimizer\": ", ind);
    json_str(out, f->log_det_minimizer);
    fprintf(out, ", \"dual_slice\": ");
    json_str(out, f->dual_slice);
    fprintf(out, ", \"agree\": %s, \"exists\": %s},\n%s\"bias\": {\"coefficient\": ", f->agree ? "true" : "false",
            exists_text(f), ind);
    json_str(out, f->coefficient);
    fprintf(out, ", \"invariant\": ");
    json_str(out, f->invariant);
    fprintf(out, ", \"constant\": ");
    json_str(out, f->constant);
    fprintf(out, ", \"terms\": %ld}", f->count);
}

/* "Wq'Wq" / "W1 W1'" / "w3 w3'": the Gram matrix of a junction's leg, r x r */
static const char *leg_gram(ibc_arena *a, const ibc_spec *sp, const sym_leg *l)
{
    const ibc_var *p = &sp->params[l->param];
    if (p->shape.rank < 2 || l->rows)
        return arena_printf(a, "%s %s'", p->name, p->name);
    return arena_printf(a, "%s'%s", p->name, p->name);
}

/* the junction's product in the orientation Z = A B */
static const char *junction_product(ibc_arena *a, const ibc_spec *sp, const sym_group *g)
{
    const ibc_var *A = &sp->params[g->left.param], *B = &sp->params[g->right.param];
    bool at = A->shape.rank == 2 && g->left.rows, bt = B->shape.rank == 2 && !g->right.rows;
    return arena_printf(a, "%s%s %s%s", A->name, at ? "'" : "", B->name, bt ? "'" : "");
}

static int family_of_junction(const sym_derivation *d, const sym_group *g)
{
    for (size_t f = 0; f < d->nfamilies; f++)
        if (sym_family_in_junction(&d->families[f], g))
            return (int)f;
    return -1;
}

static bool group_coupled(const sym_derivation *d, size_t i)
{
    for (size_t h = 0; h < d->ngroups; h++)
        if (h != i && d->groups[h].component == d->groups[i].component)
            return true;
    return false;
}

/* A coupled component's joint det G (sym_joint.c): the polynomial in the
 * cells' squared norms, or what is known of it. */
static void print_joint_text(FILE *out, const sym_joint *j)
{
    if (j->kind == SYM_JOINT_GL) {
        fprintf(out, "    joint det G: %s\n", j->text);
        return;
    }
    fprintf(out, "    joint det G: %ld generators; %ld cells (the entries every generator rescales alike, indices from "
                 "0); by Cauchy-Binet the sum over %ld-subsets S of cells of det(E_S)^2 prod_{c in S} ||theta_c||^2",
            j->generators, j->ncells, j->generators);
    if (j->total)
        fprintf(out, ", coefficients summing to det(E'E) = %s", j->total);
    fprintf(out, "\n");
    if (j->kind == SYM_JOINT_POLY)
        fprintf(out, "                 = %s  (%s terms)\n", j->text, j->nterms);
    else
        fprintf(out, "                 %s\n", j->text);
}

static void print_groups_text(FILE *out, ibc_arena *a, const sym_derivation *d, const char *h)
{
    const ibc_spec *sp = d->spec;
    if (d->ngroups == 0)
        return;
    fprintf(out, "\n%ssymmetry groups of the whole model (docs/theory.md §8)\n", h);
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        if (g->kind == SYM_GROUP_TORUS) {
            fprintf(out, "  group %zu: torus, family %d: %ld generators, %ld conserved (chi)\n", i + 1, g->family + 1,
                    g->generators, g->conserved);
            continue;
        }
        const char *P = leg_gram(a, sp, &g->left), *Qg = leg_gram(a, sp, &g->right), *Z = junction_product(a, sp, g);
        int f = family_of_junction(d, g);
        fprintf(out, "  group %zu: %s, the contraction of %s\n", i + 1, g->text, Z);
        fprintf(out, "    generators:  %ld, one per elementary matrix E of gl(%ld): A -> A e^(tE), B -> e^(-tE) B in "
                     "%s = A B%s",
                g->generators, g->r, Z, f >= 0 ? "" : "\n");
        if (f >= 0)
            fprintf(out, "; its diagonal is family %d\n", f + 1);
        fprintf(out, "    dual slice:  C = %s - %s = 0, symmetric %ld x %ld: %ld conserved functions; the %ld "
                     "antisymmetric generators are rotations, with no dual slice\n",
                P, Qg, g->r, g->r, g->conserved, g->generators - g->conserved);
        fprintf(out, "    det G:       prod_{i,j=1..%ld} (p_i + q_j), p and q the eigenvalues of %s and %s\n", g->r, P, Qg);
        if (g->full_rank) {
            fprintf(out, "    minimum:     sum_{i,j} log(sigma_i + sigma_j) at C = 0, sigma the singular values of %s "
                         "(when its rank is %ld); the minimiser and the dual slice agree\n", Z, g->r);
            fprintf(out, "    bias:        full group: (1/2beta) [sum_i log(2 sigma_i) + 2 sum_{i<j} log(sigma_i + sigma_j)]\n");
            if (f >= 0)
                fprintf(out, "                 diagonal torus (family %d, log-spectral): (1/2beta) sum_k [log(2 sigma_k)] "
                             "when the factors are aligned; the two are different predictions\n", f + 1);
        } else {
            fprintf(out, "    minimum:     not derived: %s has rank below %ld, which the formula sum_{i,j} log(sigma_i "
                         "+ sigma_j) needs\n", Z, g->r);
        }
    }
    for (size_t i = 0; i < d->ngroups; i++) {
        if (!group_coupled(d, i) || (int)i != d->groups[i].component)
            continue;
        char *list = "";
        for (size_t o = 0; o < d->ngroups; o++)
            if (d->groups[o].component == (int)i)
                list = arena_printf(a, "%s%s%zu", list, *list ? ", " : "", o + 1);
        fprintf(out, "  coupled:     groups %s share parameters: one Gram matrix (block tridiagonal along a chain), "
                     "its log det computed as a whole, not as the sum of the groups' own\n", list);
        for (size_t j = 0; j < sym_njoints(d); j++)
            if (sym_joint_at(d, j)->component == (int)i)
                print_joint_text(out, sym_joint_at(d, j));
    }
    fprintf(out, "  conservation laws: %ld independent conserved functions\n", sym_conservation_laws(d));
}

static void print_groups_json(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    const ibc_spec *sp = d->spec;
    fprintf(out, ",\n  \"conservation_laws\": %ld,\n  \"groups\": [", sym_conservation_laws(d));
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        fprintf(out, "%s\n    {\"kind\": \"%s\", \"name\": ", i ? "," : "", g->kind == SYM_GROUP_GL ? "gl" : "torus");
        json_str(out, g->text);
        fprintf(out, ", \"generators\": %ld, \"conserved\": %ld, \"coupled\": %s", g->generators, g->conserved,
                group_coupled(d, i) ? "true" : "false");
        if (g->kind == SYM_GROUP_TORUS) {
            const sym_family *f = &d->families[g->family];
            fprintf(out, ", \"family\": %d, \"dual_slice\": [", g->family + 1);
            for (int k = 0; k < f->k; k++) {
                fprintf(out, "%s", k ? ", " : "");
                json_str(out, slice_eq(a, f, k));
            }
            fprintf(out, "], \"gram_det\": ");
            json_str(out, gram_text(a, f));
            fprintf(out, "}");
            continue;
        }
        const char *P = leg_gram(a, sp, &g->left), *Qg = leg_gram(a, sp, &g->right);
        int f = family_of_junction(d, g);
        fprintf(out, ", \"r\": %ld, \"product\": ", g->r);
        json_str(out, junction_product(a, sp, g));
        fprintf(out, ", \"dual_slice\": ");
        json_str(out, arena_printf(a, "C = %s - %s", P, Qg));
        fprintf(out, ", \"gram_det\": ");
        json_str(out, arena_printf(a, "prod_{i,j} (p_i + q_j), p, q eigenvalues of %s, %s", P, Qg));
        fprintf(out, ", \"minimum\": ");
        json_str(out, g->full_rank ? "sum_{i,j} log(sigma_i + sigma_j) at C = 0" : "not derived (rank below r)");
        fprintf(out, ", \"agree\": %s, \"diagonal_family\": %d", g->full_rank ? "true" : "false", f + 1);
        fprintf(out, ", \"bias\": ");
        json_str(out, g->full_rank ? "sum_i log(2 sigma_i) + 2 sum_{i<j} log(sigma_i + sigma_j)" : "none");
        fprintf(out, "}");
    }
    fprintf(out, "\n  ],\n  \"coupled_groups\": [");
    for (size_t i = 0; i < sym_njoints(d); i++) {
        const sym_joint *j = sym_joint_at(d, i);
        static const char *const kinds[] = { "polynomial", "large", "gl", "not_expanded" };
        fprintf(out, "%s\n    {\"groups\": [%s], \"kind\": \"%s\"", i ? "," : "", j->groups, kinds[j->kind]);
        if (j->kind != SYM_JOINT_GL)
            fprintf(out, ", \"generators\": %ld, \"cells\": %ld", j->generators, j->ncells);
        fprintf(out, ", \"terms\": ");
        if (j->nterms)
            json_str(out, j->nterms);
        else
            fprintf(out, "null");
        fprintf(out, ", \"coefficient_sum\": ");
        if (j->total)
            json_str(out, j->total);
        else
            fprintf(out, "null");
        fprintf(out, ", \"gram_det\": ");
        if (j->kind == SYM_JOINT_POLY)
            json_str(out, j->text);
        else
            fprintf(out, "null");
        fprintf(out, ", \"statement\": ");
        json_str(out, j->kind == SYM_JOINT_POLY ? "the exact polynomial (Cauchy-Binet over the cells)" : j->text);
        fprintf(out, "}");
    }
    fprintf(out, "%s]", sym_njoints(d) ? "\n  " : "");
}

static void print_json(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    fprintf(out, "{\n  \"model\": ");
    json_str(out, d->spec->model);
    fprintf(out, ",\n  \"generators\": [");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s\n    {\"name\": ", i ? "," : "");
        json_str(out, f->name);
        fprintf(out, ", \"count\": %ld, \"per_index\": %d, \"blocks\": [", f->count, f->k);
        for (int p = 0; p < f->nblocks; p++) {
            fprintf(out, "%s{\"block\": ", p ? ", " : "");
            json_str(out, f->blocks[p].text);
            fprintf(out, ", \"exponents\": [");
            for (int g = 0; g < f->k; g++)
                fprintf(out, "%s%ld", g ? ", " : "", f->alpha[g][p]);
            fprintf(out, "]");
            if (f->blocks[p].set_name) {   /* the entries (row-major offsets) of each index value's set */
                const sym_block *b = &f->blocks[p];
                fprintf(out, ", \"sets\": [");
                for (long q = 0; q < f->count; q++) {
                    fprintf(out, "%s[", q ? ", " : "");
                    for (long t = b->set_start[q]; t < b->set_start[q + 1]; t++)
                        fprintf(out, "%s%ld", t > b->set_start[q] ? ", " : "", b->set_entries[t]);
                    fprintf(out, "]");
                }
                fprintf(out, "]");
            }
            fprintf(out, "}");
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n  ],\n  \"slice\": [");
    bool first = true;
    for (size_t i = 0; i < d->nfamilies; i++)
        for (int g = 0; g < d->families[i].k; g++) {
            fprintf(out, "%s", first ? "" : ", ");
            json_str(out, slice_eq(a, &d->families[i], g));
            first = false;
        }
    fprintf(out, "],\n  \"families\": [");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s\n    {\"gram_det\": ", i ? "," : "");
        json_str(out, gram_text(a, f));
        fprintf(out, ", \"degree_of_difficulty\": %d, \"minimum\": ", f->degree);
        json_str(out, f->min_text);
        json_balance_bias(out, f, "     ");
        fputc('}', out);
    }
    fprintf(out, "\n  ]");
    print_groups_json(out, a, d);
    /* The whole model's bias: one term per torus family (a sum over its
     * index), unless groups are coupled (then only the joint Gram). */
    bool coupled = false;
    for (size_t i = 0; i < d->ngroups; i++)
        coupled = coupled || group_coupled(d, i);
    fprintf(out, ",\n  \"bias\": {\"coupled\": %s, \"per_family\": [", coupled ? "true" : "false");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "%s{\"family\": %zu, \"coefficient\": ", i ? ", " : "", i + 1);
        json_str(out, f->coefficient);
        fprintf(out, ", \"invariant\": ");
        json_str(out, f->invariant);
        fprintf(out, ", \"constant\": ");
        json_str(out, f->constant);
        fprintf(out, ", \"terms\": %ld}", f->count);
    }
    fprintf(out, "]}\n}\n");
}

/* A set block's sets (row-major entry offsets), the first few of each. */
static void print_sets(FILE *out, const ibc_spec *sp, const sym_family *f, const sym_block *b)
{
    fprintf(out, "  sets:         %s%s%s: the entries of %s (row-major offsets) that %s rescales:", b->set_name,
            f->index ? "_" : "", f->index ? f->index : "", sp->params[b->param].name,
            f->index ? "the generator at index value i" : "the generator");
    for (long i = 0; i < f->count && i < 6; i++) {
        fprintf(out, "%s %s", i ? ";" : "", b->set_name);
        if (f->index)
            fprintf(out, "_%ld", i);
        fprintf(out, " = {");
        for (long t = b->set_start[i]; t < b->set_start[i + 1] && t < b->set_start[i] + 12; t++)
            fprintf(out, "%s%ld", t > b->set_start[i] ? ", " : "", b->set_entries[t]);
        fprintf(out, "%s}", b->set_start[i + 1] - b->set_start[i] > 12 ? ", ..." : "");
    }
    fprintf(out, "%s\n", f->count > 6 ? "; ..." : "");
}

static void print_text(FILE *out, ibc_arena *a, const sym_derivation *d, bool md)
{
    const char *h = md ? "### " : "";
    const char *code = md ? "`" : "";
    fprintf(out, "%sderivation of %s%s%s\n\n", md ? "## " : "", code, d->spec->model, code);
    fprintf(out, "scaling-exponent inference: %ld unknowns, %ld equations on the %s instance;\n"
                 "%zu generator famil%s\n",
            d->nunknowns, d->nconstraints, d->full ? "full" : "small", d->nfamilies, d->nfamilies == 1 ? "y" : "ies");
    if (d->nfamilies == 0)
        fprintf(out, "\nno rescaling symmetry: no implicit bias from this mechanism\n");
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "\n%sfamily %zu: %s\n", h, i + 1, f->name);
        fprintf(out, "  count:        %ld (one block of %d generator%s each)\n", f->count, f->k, f->k == 1 ? "" : "s");
        for (int p = 0; p < f->nblocks; p++)
            if (f->blocks[p].set_name)
                print_sets(out, d->spec, f, &f->blocks[p]);
        for (int g = 0; g < f->k; g++) {
            fprintf(out, "  generator %d:  ", g + 1);
            for (int p = 0; p < f->nblocks; p++)
                if (f->alpha[g][p])
                    fprintf(out, "%s -> e^(%ld t) %s  ", f->blocks[p].text, f->alpha[g][p], f->blocks[p].text);
            fprintf(out, "\n  dual slice:   %s\n", slice_eq(a, f, g));
        }
        fprintf(out, "  det G:        %s\n", gram_text(a, f));
        fprintf(out, "  minimum:      %s\n", f->min_text);
        if (f->min_kind == SYM_MIN_ATTAINED || f->min_kind == SYM_MIN_UNBOUNDED || f->min_kind == SYM_MIN_NOT_ATTAINED) {
            fprintf(out, "  dual weights: ");
            if (f->ndelta)   /* merged terms: one weight a group */
                for (int t = 0; t < f->ndelta; t++)
                    fprintf(out, "%s%s", t ? ", " : "", sym_rat_text(a, f->delta[t]));
            else if (f->min_kind != SYM_MIN_ATTAINED)   /* no weights exist */
                for (int t = 0; t < f->nterms; t++)
                    fprintf(out, "%s-", t ? ", " : "");
            fprintf(out, "\n");
        }
        fprintf(out, "  balance:      log det G minimiser %s\n", f->log_det_minimizer);
        fprintf(out, "                dual slice chi = 0  %s\n", f->dual_slice);
        fprintf(out, "                %s\n", f->agree ? "the two agree"
                                                      : "the two differ (docs/theory.md §4: SGD's noise equilibrium is "
                                                        "the dual slice for isotropic per-block noise)");
        if (f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "  bias:         (1/2beta) * sum over %s of [%s log(%s) + %s]\n", f->index ? f->index : "the block",
                    f->coefficient, f->invariant, f->constant);
        bool spectral = false;
        for (int p = 0; p < f->nblocks; p++)
            spectral = spectral || f->blocks[p].slice == SYM_SLICE_COL;
        if (spectral && f->nblocks == 2 && f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "  alignment:    %s equals sigma_%s of the product only when the factors are aligned with "
                         "its SVD (columns along the singular vectors); otherwise it is not a function of the product "
                         "(docs/theory.md §5)\n",
                    f->invariant, f->index);
    }
    print_groups_text(out, a, d, h);
}

static void print_tex(FILE *out, ibc_arena *a, const sym_derivation *d)
{
    fprintf(out, "%% derivation of %s (ibc)\n\\begin{align*}\n", d->spec->model);
    for (size_t i = 0; i < d->nfamilies; i++) {
        const sym_family *f = &d->families[i];
        fprintf(out, "\\det G_{%zu} &= \\texttt{%s} \\\\\n", i + 1, gram_text(a, f));
        if (f->min_kind == SYM_MIN_ATTAINED)
            fprintf(out, "\\min_{\\text{orbit}} \\log\\det G_{%zu} &= %s \\log \\texttt{%s} + \\texttt{%s} \\quad (\\times %ld)\\\\\n",
                    i + 1, f->coefficient, f->invariant, f->constant, f->count);
        else
            fprintf(out, "\\min_{\\text{orbit}} \\log\\det G_{%zu} &: \\text{%s} \\\\\n", i + 1, f->log_det_minimizer);
    }
    for (size_t i = 0; i < d->ngroups; i++) {
        const sym_group *g = &d->groups[i];
        if (g->kind != SYM_GROUP_GL)
            continue;
        fprintf(out, "\\det G_{\\mathrm{GL}(%ld)} &= \\prod_{i,j=1}^{%ld} (p_i + q_j), \\quad C = \\texttt{%s} - \\texttt{%s} "
                     "\\quad (%ld \\text{ conserved})\\\\\n",
                g->r, g->r, leg_gram(a, d->spec, &g->left), leg_gram(a, d->spec, &g->right), g->conserved);
    }
    for (size_t i = 0; i < sym_njoints(d); i++) {
        const sym_joint *j = sym_joint_at(d, i);
        if (j->kind == SYM_JOINT_POLY)
            fprintf(out, "\\det G_{\\text{groups } %s} &= \\texttt{%s} \\\\\n", j->groups, j->text);
        else
            fprintf(out, "\\det G_{\\text{groups } %s} &: \\text{%s} \\\\\n", j->groups, j->text);
    }
    fprintf(out, "\\end{align*}\n%% conservation laws: %ld\n", sym_conservation_laws(d));
}

void sym_print(FILE *out, const sym_derivation *d, sym_format fmt)
{
    ibc_arena *a = arena_new();
    switch (fmt) {
    case SYM_FMT_JSON: print_json(out, a, d); break;
    case SYM_FMT_TEX: print_tex(out, a, d); break;
    case SYM_FMT_MD: print_text(out, a, d, true); break;
    default: print_text(out, a, d, false); break;
    }
    arena_free(a);
}

