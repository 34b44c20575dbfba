/*
 * emit_model.c: what each model's derivation gives its trainer
 * (emit_impl.h).
 *
 * Contract: for one model (its prog and its sym_derivation, which may be
 * NULL) these functions write the C the driver's checks call: the
 * families' index tables, the balance measure (chi and the ratio), the
 * generators, the conserved quadratic functions, the joint dets, the
 * structural (symmetry) check, the unbalanced start, and for a
 * log-sparsity design w(theta) and its check; emit_model_tables writes
 * each model's constant arrays and its entry of models[].  A function
 * whose kind the model's derivation lacks writes nothing (the model's
 * entry then has NULL there, which the runtime skips, or leaves it unset).
 */
#include "emit_impl.h"

/* The slice of block b at index idx as loops: emits `for` header(s) that
 * bind `e` to each element offset in th. */
static void emit_slice_loop(const model *m, const sym_block *b, const char *idx, const char *body)
{
    const ibc_var *v = &m->spec->params[b->param];
    long off = m->p.param_off[b->param], R = v->shape.rows, C = v->shape.rows ? v->shape.cols : 1;
    switch (b->slice) {
    case SYM_SLICE_ROW:
        OUT("            for (long c = 0; c < %ld; c++) { long e = %ld + (%s) * %ld + c; %s }\n", C, off, idx, C, body);
        break;
    case SYM_SLICE_COL:
        OUT("            for (long r = 0; r < %ld; r++) { long e = %ld + r * %ld + (%s); %s }\n", R, off, C, idx, body);
        break;
    case SYM_SLICE_ENTRY:
        OUT("            { long e = %ld + (%s); %s }\n", off, idx, body);
        break;
    case SYM_SLICE_SET:   /* the tables of emit_set_tables */
        OUT("            for (long se = %s_%s_start[%s]; se < %s_%s_start[(%s) + 1]; se++) { long e = %ld + %s_%s_entries[se]; %s }\n",
            m->pre, b->set_name, idx, m->pre, b->set_name, idx, off, m->pre, b->set_name, body);
        break;
    default:
        OUT("            for (long e = %ld; e < %ld; e++) { %s }\n", off, off + R * C, body);
        break;
    }
}

/* The sets of entries that a family's set blocks rescale (SYM_SLICE_SET,
 * from an operator's zero pattern): index value i owns
 * entries[start[i] .. start[i + 1]) of the parameter (row-major). */
void emit_set_tables(const model *m)
{
    for (size_t f = 0; m->deriv && f < sym_nfamilies(m->deriv); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        for (int p = 0; p < fam->nblocks; p++) {
            const sym_block *b = &fam->blocks[p];
            if (b->slice != SYM_SLICE_SET)
                continue;
            OUT("/* family %zu: the entries of %s in each set %s (row-major) */\n", f + 1,
                m->spec->params[b->param].name, b->set_name);
            OUT("static const long %s_%s_start[%ld] = {", m->pre, b->set_name, fam->count + 1);
            for (long i = 0; i <= fam->count; i++)
                OUT("%s%s%ld", i ? "," : "", i % 16 ? " " : "\n    ", b->set_start[i]);
            OUT("\n};\nstatic const long %s_%s_entries[%ld] = {", m->pre, b->set_name, b->set_start[fam->count]);
            for (long t = 0; t < b->set_start[fam->count]; t++)
                OUT("%s%s%ld", t ? "," : "", t % 16 ? " " : "\n    ", b->set_entries[t]);
            OUT("\n};\n");
        }
    }
}

/* Balance quantities of every 2-block family at the current parameters:
 * chi = 1/2 (alpha_0 n_0 + alpha_1 n_1) and ratio = ||block 0|| / ||block 1||
 * per index, summarised as median |chi| and median/min/max ratio (models
 * without such a family have .balance = NULL). */
void emit_balance_function(const model *m, const char *pre)
{
    if (!emit_balance_count(m))
        return;   /* the model's table has .balance = NULL */
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    OUT("/* %s: per family f and index i, chi[f][i] and ratio[f][i] */\n", pre);
    OUT("static void %s_balance(const double *th, double *chi, double *ratio, double *n0o, double *n1o)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &emit_current->out);
    long base = 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks != 2 || fam->k != 1)
            continue;
        OUT("    /* family %zu: chi = 1/2 (%ld n0 %+ld n1), n_p the squared norm of ", f + 1, fam->alpha[0][0], fam->alpha[0][1]);
        emit_comment_text(fam->blocks[0].text);
        OUT(", ");
        emit_comment_text(fam->blocks[1].text);
        OUT(" */\n    for (long i = 0; i < %ld; i++) {\n        double n0 = 0, n1 = 0;\n        {\n", fam->count);
        emit_slice_loop(m, &fam->blocks[0], "i", "n0 += th[e] * th[e];");
        emit_slice_loop(m, &fam->blocks[1], "i", "n1 += th[e] * th[e];");
        OUT("        }\n        chi[%ld + i] = 0.5 * (%ld * n0 + %ld * n1);\n", base, fam->alpha[0][0], fam->alpha[0][1]);
        OUT("        ratio[%ld + i] = sqrt(n0 / n1);\n        if (n0o) {\n            n0o[%ld + i] = n0;\n            n1o[%ld + i] = n1;\n        }\n    }\n",
            base, base, base);
        base += fam->count;
    }
    char *code = cw_end(&cb, &emit_current->out);
    static const char *const params[] = { "th", "chi", "ratio", "n0o", "n1o" };
    cw_fn_body(emit_current->out, params, 5, NULL, 0, code);
    free(code);
    OUT("}\n\n");
}

long emit_balance_count(const model *m)
{
    long n = 0;
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->nblocks == 2 && fam->k == 1)
            n += fam->count;
    }
    return n;
}

/* The torus generator vectors, as rows of xi (ibrt_model.gens). */
static long gen_count(const model *m)
{
    long n = 0;
    for (size_t f = 0; m->deriv && f < sym_nfamilies(m->deriv); f++)
        n += sym_family_at(m->deriv, f)->count * sym_family_at(m->deriv, f)->k;
    return n;
}

void emit_gens_function(const model *m, const char *pre)
{
    if (!gen_count(m))
        return;
    OUT("/* %s: the torus generators xi_a = alpha_ap theta_p, one row of xi each */\n", pre);
    OUT("static void %s_gens(const double *th, double *xi)\n{\n", pre);
    long base = 0;
    for (size_t f = 0; f < sym_nfamilies(m->deriv); f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        OUT("    /* family %zu */\n    for (long i = 0; i < %ld; i++) {\n", f + 1, fam->count);
        for (int a = 0; a < fam->k; a++)
            for (int b = 0; b < fam->nblocks; b++) {
                if (!fam->alpha[a][b])
                    continue;
                char body[160];
                snprintf(body, sizeof body, "xi[(%ld + i * %d + %d) * %ld + e] = %ld.0 * th[e];", base, fam->k, a,
                         m->p.nth, fam->alpha[a][b]);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
        OUT("    }\n");
        base += fam->count * fam->k;
    }
    OUT("}\n\n");
}

/* The joint det G of each coupled component whose polynomial the
 * derivation expanded (sym_joint.c, docs/theory.md §8): the squared norm
 * of every cell, then the exact polynomial; the driver compares its log
 * with the Cholesky log det of the component's joint Gram
 * (ibrt_model.joints).  IBC_FAULT=jdet (a test hook, tests/e2e.sh) adds 1
 * to the first coefficient, which that check must catch. */
static size_t joint_poly_count(const model *m)
{
    size_t n = 0;
    for (size_t j = 0; m->deriv && j < sym_njoints(m->deriv); j++)
        n += sym_joint_at(m->deriv, j)->kind == SYM_JOINT_POLY;
    return n;
}

void emit_joint_dets(const model *m, const char *pre)
{
    const char *fault = getenv("IBC_FAULT");
    bool fault_jdet = fault && !strcmp(fault, "jdet");
    for (size_t j = 0; m->deriv && j < sym_njoints(m->deriv); j++) {
        const sym_joint *jt = sym_joint_at(m->deriv, j);
        if (jt->kind != SYM_JOINT_POLY)
            continue;
        OUT("/* %s: det G of the coupled groups %s, %ld generators: Cauchy-Binet over its %ld cells\n", pre,
            jt->groups, jt->generators, jt->ncells);
        OUT(" * (entries every generator rescales alike), det G =\n");
        for (int t = 0; t < jt->npoly; t++) {
            OUT(" *   %s", t ? "+ " : "  ");
            if (strcmp(jt->term_coef[t], "1"))
                OUT("%s ", jt->term_coef[t]);
            for (long u = 0; u < jt->generators; u++) {
                emit_comment_text(jt->cells[jt->term_cells[(size_t)t * jt->generators + u]].norm2);
                OUT("%s", u + 1 < jt->generators ? " " : "\n");
            }
        }
        OUT(" */\nstatic double %s_jdet%zu(const double *th)\n{\n    double n[%ld] = { 0 };\n", pre, j, jt->ncells);
        for (long c = 0; c < jt->ncells; c++) {
            const sym_cell *cl = &jt->cells[c];
            OUT("    /* ");
            emit_comment_text(cl->norm2);
            OUT(" */\n");
            for (int r = 0; r < cl->nruns; r++) {
                const sym_run *ru = &cl->runs[r];
                long off = m->p.param_off[ru->param] + ru->start;
                if (ru->count == 1)
                    OUT("    n[%ld] += th[%ld] * th[%ld];\n", c, off, off);
                else
                    OUT("    for (long e = %ld; e <= %ld; e += %ld)\n        n[%ld] += th[e] * th[e];\n", off,
                        off + (ru->count - 1) * ru->stride, ru->stride, c);
            }
        }
        OUT("    return 0");
        for (int t = 0; t < jt->npoly; t++) {
            const char *co = jt->term_coef[t];
            OUT("\n        + %s%s.0", co, fault_jdet && t == 0 ? " + 1" : "");
            for (long u = 0; u < jt->generators; u++)
                OUT(" * n[%d]", jt->term_cells[(size_t)t * jt->generators + u]);
        }
        OUT(";\n}\n\n");
    }
}

/* The conserved quadratic functions of every symmetry group, in one
 * vector q (docs/theory.md §9): for a torus family, chi_a = 1/2 sum_p alpha_ap
 * n_p at each index i (q[base + i k + a]); for a GL(r) junction Z = A B,
 * the upper triangle of C = Gram(A's leg) - Gram(B's leg), row by row.
 * Each is 1/2 theta' K theta with K theta orthogonal to every gradient
 * of the loss, so one SGD step theta - lr g changes it by exactly
 * lr^2 q(g): the driver adds that up over the steps and compares it with
 * the measured change (the finite-step identity).  qa (when not NULL)
 * gets the same sums of absolute terms, the scale of q's round-off. */
/* how many conserved quadratics group gr has: C's upper triangle, or a
 * chi per index and generator */
static long group_quad_size(const model *m, const sym_group *gr)
{
    const sym_family *f = gr->kind == SYM_GROUP_TORUS ? sym_family_at(m->deriv, (size_t)gr->family) : NULL;
    return f ? f->count * f->k : gr->r * (gr->r + 1) / 2;
}

static long quad_count(const model *m)
{
    long n = 0;
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    for (size_t g = 0; g < ng; g++)
        n += group_quad_size(m, sym_group_at(m->deriv, g));
    return n;
}

/* the entry of parameter b's leg at index (ix), other index o, as an
 * offset expression: a column leg runs down column ix, a row leg along
 * row ix, a vector's leg is its entries */
static void emit_leg_entry(const model *m, const sym_leg *l, const char *ix, char *buf, size_t n)
{
    const ibc_var *v = &m->spec->params[l->param];
    long off = m->p.param_off[l->param], C = v->shape.rank == 2 ? v->shape.cols : 1;
    if (v->shape.rank < 2)
        snprintf(buf, n, "%ld + %s", off, ix);
    else if (l->rows)
        snprintf(buf, n, "%ld + %s * %ld + o", off, ix, C);
    else
        snprintf(buf, n, "%ld + o * %ld + %s", off, C, ix);
}

void emit_quad_function(const model *m, const char *pre)
{
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    if (!quad_count(m))
        return;
    OUT("/* %s: the conserved quadratic functions of its symmetry groups, q, and\n"
        " * their sums of absolute terms, qa (when not NULL); see ibrt_model.quad */\n", pre);
    OUT("static void %s_quad(const double *th, double *q, double *qa)\n{\n", pre);
    /* IBC_FAULT=quad (a test hook, tests/e2e.sh): the first torus
     * function's last non-zero exponent negated, a quadratic that is not
     * conserved,
     * which the finite-step identity must catch */
    const char *fault = getenv("IBC_FAULT");
    bool fault_quad = fault && !strcmp(fault, "quad");
    long base = 0;
    for (size_t g = 0; g < ng; g++) {
        const sym_group *gr = sym_group_at(m->deriv, g);
        if (gr->kind == SYM_GROUP_TORUS) {
            const sym_family *fam = sym_family_at(m->deriv, (size_t)gr->family);
            OUT("    /* group %zu, family %d: chi_a = 1/2 sum_p alpha_ap n_p at each index */\n", g + 1,
                gr->family + 1);
            OUT("    for (long i = 0; i < %ld; i++) {\n        double n[%d] = { 0 };\n        {\n", fam->count,
                fam->nblocks);
            for (int b = 0; b < fam->nblocks; b++) {
                char body[64];
                snprintf(body, sizeof body, "n[%d] += th[e] * th[e];", b);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
            OUT("        }\n");
            for (int a = 0; a < fam->k; a++) {
                OUT("        q[%ld + i * %d + %d] = 0.5 * (", base, fam->k, a);
                int lastnz = fam->nblocks - 1;
                while (lastnz > 0 && !fam->alpha[a][lastnz])
                    lastnz--;
                for (int b = 0; b < fam->nblocks; b++) {
                    bool flip = fault_quad && base == 0 && a == 0 && b == lastnz;
                    OUT("%s%ld.0 * n[%d]", b ? " + " : "", flip ? -fam->alpha[a][b] : fam->alpha[a][b], b);
                }
                OUT(");\n        if (qa)\n            qa[%ld + i * %d + %d] = 0.5 * (", base, fam->k, a);
                for (int b = 0; b < fam->nblocks; b++)
                    OUT("%s%ld.0 * n[%d]", b ? " + " : "", labs(fam->alpha[a][b]), b);
                OUT(");\n");
            }
            OUT("    }\n");
            base += group_quad_size(m, gr);
            continue;
        }
        const ibc_var *A = &m->spec->params[gr->left.param], *B = &m->spec->params[gr->right.param];
        long oa = A->shape.rank < 2 ? 1 : gr->left.rows ? A->shape.cols : A->shape.rows;
        long ob = B->shape.rank < 2 ? 1 : gr->right.rows ? B->shape.cols : B->shape.rows;
        char ai[96], aj[96], bi[96], bj[96];
        emit_leg_entry(m, &gr->left, "i", ai, sizeof ai);
        emit_leg_entry(m, &gr->left, "j", aj, sizeof aj);
        emit_leg_entry(m, &gr->right, "i", bi, sizeof bi);
        emit_leg_entry(m, &gr->right, "j", bj, sizeof bj);
        OUT("    /* group %zu, %s: C = Gram(", g + 1, gr->text);
        emit_comment_text(A->name);
        OUT(") - Gram(");
        emit_comment_text(B->name);
        OUT("), r = %ld, upper triangle */\n", gr->r);
        /* the two Gram matrices through the product kernels (the step
         * calls this on every gradient; entry by entry, as dot products,
         * it cost E3's trainer half its time), then the upper
         * triangle of their difference; the absolute terms (for the end of
         * a run only) entry by entry */
        long offa = m->p.param_off[gr->left.param], offb = m->p.param_off[gr->right.param];
        long lda = A->shape.rank == 2 ? A->shape.cols : 1, ldb = B->shape.rank == 2 ? B->shape.cols : 1;
        bool ta = !(A->shape.rank < 2 || gr->left.rows), tb = !(B->shape.rank < 2 || gr->right.rows);
        OUT("    {\n        static double P[%ld * %ld], Q[%ld * %ld];\n", gr->r, gr->r, gr->r, gr->r);
        /* Gram of a column leg: X'X (op(A) = X', op(B) = X); of a row leg or a vector: X X' */
        OUT("        %s(%d, %d, %ld, %ld, %ld, th + %ld, %ld, th + %ld, %ld, 0.0, P, %ld);\n",
            emit_mm_whole_fn(MM_STATIC, gr->r, gr->r, oa, !ta), ta, !ta, gr->r, gr->r, oa, offa, lda, offa, lda, gr->r);
        OUT("        %s(%d, %d, %ld, %ld, %ld, th + %ld, %ld, th + %ld, %ld, 0.0, Q, %ld);\n",
            emit_mm_whole_fn(MM_STATIC, gr->r, gr->r, ob, !tb), tb, !tb, gr->r, gr->r, ob, offb, ldb, offb, ldb, gr->r);
        OUT("        for (long i = 0, t = %ld; i < %ld; i++)\n            for (long j = i; j < %ld; j++, t++)\n"
            "                q[t] = P[i * %ld + j] - Q[i * %ld + j];\n    }\n", base, gr->r, gr->r, gr->r, gr->r);
        OUT("    if (qa)\n        for (long i = 0, t = %ld; i < %ld; i++)\n            for (long j = i; j < %ld; j++, t++) {\n"
            "                double sa = 0;\n", base, gr->r, gr->r);
        OUT("                for (long o = 0; o < %ld; o++)\n                    sa += fabs(th[%s] * th[%s]);\n", oa, ai, aj);
        OUT("                for (long o = 0; o < %ld; o++)\n                    sa += fabs(th[%s] * th[%s]);\n", ob, bi, bj);
        OUT("                qa[t] = sa;\n            }\n");
        base += group_quad_size(m, gr);
    }
    OUT("}\n\n");
}

/* Structural checks of the derivation on the numbers (issue: verification
 * 1): for every family and index, (a) the predictor is unchanged by
 * exp(t xi) for random t, (b) the gradient of chi_a is xi_a (central
 * differences), (c) log det of the Gram matrix assembled from the explicit
 * generator vectors (Cholesky, LAPACKE) equals the exact Cauchy-Binet
 * polynomial of the derivation.  IBC_FAULT (a test hook, see
 * tests/e2e.sh) emits a deliberately wrong derivation so that the checks
 * are seen to fail: "alpha" flips an exponent, "coef" changes a
 * Cauchy-Binet coefficient. */
/* A factor's contracted axis as the runtime's ibrt_gl_leg initialiser:
 * entry (l, o) at off + l ls + o os */
static void emit_gl_leg(const model *m, const sym_leg *l)
{
    const ibc_var *v = &m->spec->params[l->param];
    long off = m->p.param_off[l->param], C = v->shape.rank == 2 ? v->shape.cols : 1;
    if (v->shape.rank < 2)
        OUT("{ %ld, 1, 0, 1 }", off);
    else if (l->rows)
        OUT("{ %ld, %ld, 1, %ld }", off, C, C);
    else
        OUT("{ %ld, 1, %ld, %ld }", off, C, v->shape.rows);
}

/* The checks of a GL(r) junction Z = A B (docs/theory.md §8, runtime
 * ibrt_verify.h): (a) the predictor at (A g, g^-1 B) against the predictor
 * at (A, B), g = I + M random (ibrt_gl_transform); (b) log det of its
 * r^2 x r^2 Gram matrix by Cholesky against the derived sum
 * log(p_i + q_j) (ibrt_gl_logdet_error), skipped above r = 24, where the
 * dense Gram would cost more than the run. */
static void emit_gl_checks(const model *m, const char *pre, const ibc_verify *ver, size_t gi, const sym_group *gr)
{
    OUT("    /* group %zu, ", gi + 1);
    emit_comment_text(gr->text);
    OUT(": A -> A g, B -> g^-1 B */\n    {\n        static const ibrt_gl_leg a = ");
    emit_gl_leg(m, &gr->left);
    OUT(", b = ");
    emit_gl_leg(m, &gr->right);
    OUT(";\n        bool ok = ibrt_gl_transform(%s_th, th2, %ld, &a, &b, %ld, rng);\n", pre, m->p.nth, gr->r);
    OUT("        %s_forward(%s_th, x, 1, %s_tp);\n        memcpy(y0, %s_tp + %ld, sizeof y0);\n"
        "        %s_forward(th2, x, 1, %s_tp);\n", pre, pre, pre, pre, m->p.v[m->p.root].off, pre, pre);
    OUT("        double dy = 0, ys = 0;\n        for (long o = 0; o < OUT; o++) {\n"
        "            dy = fmax(dy, fabs(%s_tp[%ld + o] - y0[o]));\n            ys = fmax(ys, fabs(y0[o]));\n        }\n",
        pre, m->p.v[m->p.root].off);
    OUT("        snprintf(name, sizeof name, \"invariance, group %zu, GL(%ld) (%%s)\", when);\n", gi + 1, gr->r);
    OUT("        ibrt_checks_add(checks, name, ok ? dy / fmax(ys, 1e-300) : INFINITY, 0, %s, ok && dy <= %s * fmax(ys, "
        "1e-300), \"max |f(A g, g^-1 B) - f(A, B)| / max |f|, g = I + M, M_ij ~ U(-0.15, 0.15)\");\n",
        cw_num(ver->invariance_tol), cw_num(ver->invariance_tol));
    if (gr->r <= 24) {
        OUT("        double lerr = ibrt_gl_logdet_error(%s_th, &a, &b, %ld);\n", pre, gr->r);
        OUT("        snprintf(name, sizeof name, \"log det G, group %zu, GL(%ld) (%%s)\", when);\n", gi + 1, gr->r);
        OUT("        ibrt_checks_add(checks, name, lerr, 0, %s, lerr <= %s, \"Cholesky of the r^2 x r^2 Gram vs "
            "sum log(p_i + q_j), relative in log space\");\n", cw_num(ver->logdet_tol), cw_num(ver->logdet_tol));
    }
    OUT("    }\n");
}

/* Whether the model has structural checks: a torus family or a GL junction. */
static bool has_structure(const model *m)
{
    for (size_t g = 0; m->deriv && g < sym_ngroups(m->deriv); g++)
        if (sym_group_at(m->deriv, g)->kind == SYM_GROUP_GL)
            return true;
    return m->deriv && sym_nfamilies(m->deriv) > 0;
}

void emit_structure_function(const model *m, const char *pre, const ibc_verify *ver)
{
    if (!has_structure(m))
        return;   /* the model's table has .structure = NULL */
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    const char *fault = getenv("IBC_FAULT");
    bool fault_alpha = fault && !strcmp(fault, "alpha"), fault_coef = fault && !strcmp(fault, "coef");
    OUT("/* %s: structural checks of the derivation at the current parameters */\n", pre);
    OUT("static void %s_structure(const double *x, ibrt_rng *rng, ibrt_checks *checks, const char *when)\n{\n", pre);
    cw_buf cb;
    cw_begin(&cb, &emit_current->out);
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        long alpha[SYM_MAX_GEN][SYM_MAX_BLOCKS];
        memcpy(alpha, fam->alpha, sizeof alpha);
        if (fault_alpha)
            alpha[0][0] = -alpha[0][0] + (alpha[0][0] == 0);
        OUT("    /* family %zu: %d generator(s) per index, %d blocks, %ld indices */\n    {\n", f + 1, fam->k,
            fam->nblocks, fam->count);
        /* (a) invariance */
        OUT("        memcpy(th2, %s_th, sizeof(double) * %ld);\n", pre, m->p.nth);
        OUT("        for (long i = 0; i < %ld; i++) {\n            double t[%d];\n", fam->count, fam->k);
        OUT("            for (int a = 0; a < %d; a++)\n                t[a] = ibrt_rng_uniform(rng) - 0.5;\n", fam->k);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[64 + 32 * SYM_MAX_GEN];   /* " + %ld * t[%d]" per generator */
            int len = snprintf(body, sizeof body, "th2[e] *= exp(0");
            for (int a = 0; a < fam->k; a++)
                len += snprintf(body + len, sizeof body - (size_t)len, " + %ld * t[%d]", alpha[a][b], a);
            snprintf(body + len, sizeof body - (size_t)len, ");");
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        OUT("        }\n        %s_forward(%s_th, x, 1, %s_tp);\n", pre, pre, pre);
        OUT("        memcpy(y0, %s_tp + %ld, sizeof y0);\n        %s_forward(th2, x, 1, %s_tp);\n", pre, m->p.v[m->p.root].off,
            pre, pre);
        OUT("        double dy = 0, ys = 0;\n        for (long o = 0; o < OUT; o++) {\n");
        OUT("            dy = fmax(dy, fabs(%s_tp[%ld + o] - y0[o]));\n            ys = fmax(ys, fabs(y0[o]));\n        }\n",
            pre, m->p.v[m->p.root].off);
        OUT("        snprintf(name, sizeof name, \"invariance, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, dy / fmax(ys, 1e-300), 0, %s, dy <= %s * fmax(ys, 1e-300), "
            "\"max |f(exp(t xi) theta) - f(theta)| / max |f|, t ~ U(-1/2, 1/2)\");\n",
            cw_num(ver->invariance_tol), cw_num(ver->invariance_tol));
        /* (b) grad chi = xi and (c) log det, per index */
        OUT("        double gworst = 0, lworst = 0;\n        for (long i = 0; i < %ld; i++) {\n", fam->count);
        OUT("            double n[%d] = { 0 };\n", fam->nblocks);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[96];
            snprintf(body, sizeof body, "n[%d] += %s_th[e] * %s_th[e];", b, pre, pre);
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        /* grad chi: chi_a = 1/2 sum_p alpha_ap n_p; d chi_a / d theta_e by
         * central differences against xi_a[e] = alpha_ap theta_e */
        for (int a = 0; a < fam->k; a++)
            for (int b = 0; b < fam->nblocks; b++) {
                char body[512];
                snprintf(body, sizeof body,
                         "double t0 = %s_th[e], h = 1e-4 * fmax(1, fabs(t0)); "
                         "double np = n[%d] - t0 * t0 + (t0 + h) * (t0 + h), nm = n[%d] - t0 * t0 + (t0 - h) * (t0 - h); "
                         "double fd = 0.5 * %ld * (np - nm) / (2 * h); "
                         "gworst = fmax(gworst, fabs(fd - %ld * t0) / fmax(1, fabs(%ld * t0)));",
                         pre, b, b, fam->alpha[a][b], alpha[a][b], alpha[a][b]);
                emit_slice_loop(m, &fam->blocks[b], "i", body);
            }
        /* Gram from the generator vectors: G_ab = <xi_a, xi_b> */
        OUT("            double G[%d * %d];\n", fam->k, fam->k);
        for (int a = 0; a < fam->k; a++)
            for (int bb = 0; bb < fam->k; bb++) {
                OUT("            G[%d] = 0", a * fam->k + bb);
                for (int b = 0; b < fam->nblocks; b++)
                    if (alpha[a][b] != 0 && alpha[bb][b] != 0)
                        OUT(" + %ld * n[%d]", alpha[a][b] * alpha[bb][b], b);
                OUT(";\n");
            }
        OUT("            double ld = NAN;\n            if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', %d, G, %d) == 0) {\n", fam->k,
            fam->k);
        OUT("                ld = 0;\n                for (int a = 0; a < %d; a++)\n                    ld += 2 * log(G[a * %d + a]);\n            }\n",
            fam->k, fam->k);
        OUT("            /* the exact Cauchy-Binet polynomial of the derivation */\n            double cb = 0");
        for (int t = 0; t < fam->nterms; t++) {
            OUT(" + %ld.0", fam->term_coef[t] + (fault_coef && t == 0 ? 1 : 0));
            for (int b = 0; b < fam->nblocks; b++)
                if (fam->term_set[t] & (1u << b))
                    OUT(" * n[%d]", b);
        }
        OUT(";\n            lworst = fmax(lworst, isnan(ld) ? INFINITY : fabs(ld - log(cb)) / fmax(1, fabs(log(cb))));\n        }\n");
        OUT("        snprintf(name, sizeof name, \"grad chi = xi, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, gworst, 0, %s, gworst <= %s, \"central differences of chi_a vs alpha_p theta_p\");\n",
            cw_num(ver->gradient_tol), cw_num(ver->gradient_tol));
        OUT("        snprintf(name, sizeof name, \"log det G, family %zu (%%s)\", when);\n", f + 1);
        OUT("        ibrt_checks_add(checks, name, lworst, 0, %s, lworst <= %s, \"Cholesky of <xi_a, xi_b> vs exact "
            "Cauchy-Binet, relative in log space\");\n    }\n",
            cw_num(ver->logdet_tol), cw_num(ver->logdet_tol));
    }
    size_t ng = m->deriv ? sym_ngroups(m->deriv) : 0;
    for (size_t g = 0; g < ng; g++)
        if (sym_group_at(m->deriv, g)->kind == SYM_GROUP_GL)
            emit_gl_checks(m, pre, ver, g, sym_group_at(m->deriv, g));
    char *code = cw_end(&cb, &emit_current->out);
    static const char *const params[] = { "x", "rng", "checks", "when" };
    cw_decl decls[] = {
        { cw_strdup("th2"), cw_printf("static double th2[%ld];", m->p.nth + 1), cw_strdup("the parameters transformed") },
        { cw_strdup("y0"), cw_strdup("static double y0[OUT];"), cw_strdup("the predictor before") },
        { cw_strdup("name"), cw_strdup("char name[96];"), cw_strdup("a check's name") },
    };
    cw_fn_body(emit_current->out, params, 4, decls, 3, code);
    free(code);
    OUT("}\n\n");
}

/* init unbalance(from, to): theta_p,i *= exp(alpha_p t_i), t_i = linspace. */
void emit_unbalance(const model *m, double from, double to)
{
    size_t nf = m->deriv ? sym_nfamilies(m->deriv) : 0;
    for (size_t f = 0; f < nf; f++) {
        const sym_family *fam = sym_family_at(m->deriv, f);
        if (fam->k != 1)
            continue;
        OUT("    /* unbalance along family %zu: t_i = linspace(%s, %s, %ld) */\n", f + 1, cw_num(from), cw_num(to), fam->count);
        OUT("    for (long i = 0; i < %ld; i++) {\n", fam->count);
        OUT("        double t = %s + (%s) * (double)i / %ld.0;\n        {\n", cw_num(from), cw_num(to - from),
            fam->count > 1 ? fam->count - 1 : 1);
        for (int b = 0; b < fam->nblocks; b++) {
            char body[96];
            snprintf(body, sizeof body, "th[e] *= exp(%ld * t);", fam->alpha[0][b]);
            emit_slice_loop(m, &fam->blocks[b], "i", body);
        }
        OUT("        }\n    }\n");
    }
}

/* A log-sparsity design on fixed data: the designed parameter w as a
 * function of the factors, and the check that A w equals their product. */
void emit_design_w_functions(const model *m, int k, const ibc_spec *spec)
{
    long n = spec->params[spec->design.param].shape.rows;
    OUT("/* m%d: the designed parameter w(theta) */\n", k);
    OUT("static void m%d_w_of(const double *th, double *w)\n{\n", k);
    OUT("    m%d_w_forward(th, NULL, 1, m%d_w_tp);\n    memcpy(w, m%d_w_tp + %ld, sizeof(double) * %ld);\n}\n\n", k, k, k,
        m->rp.v[m->rp.root].off, n);
    OUT("/* m%d: the synthesised parameterisation on the numbers, A w(theta) =\n"
        " * a1 * ... * aL: max |A w - product| / max |product| */\n", k);
    OUT("static double m%d_w_check(const double *th)\n{\n", k);
    OUT("    m%d_aw_forward(th, NULL, 1, m%d_aw_tp);\n    double worst = 0, scale = 0;\n", k, k);
    OUT("    for (long i = 0; i < %ld; i++) {\n        double z = 1;\n", n);
    for (size_t f = 0; f + (spec->nparams - 1) < m->spec->nparams; f++)
        OUT("        z *= th[%ld + i];\n", m->p.param_off[f]);
    OUT("        scale = fmax(scale, fabs(z));\n        worst = fmax(worst, fabs(m%d_aw_tp[%ld + i] - z));\n    }\n",
        k, m->ap.v[m->ap.root].off);
    OUT("    return worst / fmax(scale, 1e-300);\n}\n\n");
}

/* Model k's constant arrays the driver reads: its parameters, and what
 * its derivation found (generator families, quadratic groups, balance
 * families, joint dets, symmetry groups). */
static void emit_model_arrays(const model *m, int k)
{
    OUT("static const ibrt_param m%d_params[] = {\n", k);
    for (size_t q = 0; q < m->spec->nparams; q++) {
        const ibc_var *pv = &m->spec->params[q];
        OUT("    { ");
        emit_c_string(emit_current->out, pv->name);
        OUT(", %ld, %ld, %ld, %d },\n", m->p.param_off[q], pv->shape.rank == 0 ? 1L : pv->shape.rows,
            pv->shape.rank == 2 ? pv->shape.cols : 1L, pv->shape.rank == 2 ? 2 : 1);
    }
    OUT("};\n");
    if (gen_count(m)) {
        OUT("static const ibrt_genfam m%d_genfam[] = {", k);
        for (size_t f = 0; f < sym_nfamilies(m->deriv); f++)
            OUT(" { %ld, %d },", sym_family_at(m->deriv, f)->count, sym_family_at(m->deriv, f)->k);
        OUT(" };\n");
    }
    if (quad_count(m)) {
        OUT("static const ibrt_qgroup m%d_qgroups[] = {\n", k);
        long end = 0;
        for (size_t g = 0; g < sym_ngroups(m->deriv); g++) {
            const sym_group *gr = sym_group_at(m->deriv, g);
            end += group_quad_size(m, gr);
            OUT("    { ");
            emit_c_string(emit_current->out, gr->kind == SYM_GROUP_GL ? gr->text
                                                           : sym_family_at(m->deriv, (size_t)gr->family)->name);
            OUT(", %ld, %ld },\n", end, gr->kind == SYM_GROUP_GL ? gr->r : 0L);
        }
        OUT("};\n");
    }
    if (emit_balance_count(m)) {
        /* per family: id, count, exponents, the ratio's two exact
         * predictions (docs/theory.md §4) and its definition */
        OUT("static const ibrt_family m%d_families[] = {\n", k);
        size_t nf = sym_nfamilies(m->deriv);
        for (size_t f = 0; f < nf; f++) {
            const sym_family *fam = sym_family_at(m->deriv, f);
            if (fam->nblocks != 2 || fam->k != 1)
                continue;
            double rl, rd;
            sym_balance_predictions(fam, &rl, &rd);
            OUT("    { .id = %zu, .count = %ld, .alpha0 = %ld, .alpha1 = %ld, .pred_logdet = %s, .pred_dual = %s,\n"
                "      .ratio_definition = ", f + 1, fam->count, fam->alpha[0][0], fam->alpha[0][1],
                cw_num(rl), cw_num(rd));
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            fprintf(mem, "||%s|| / ||%s||", fam->blocks[0].text, fam->blocks[1].text);
            fclose(mem);
            emit_c_string(emit_current->out, buf);
            free(buf);
            OUT(" },\n");
        }
        OUT("};\n");
    }
    if (joint_poly_count(m)) {
        /* the coupled components with an exact joint det G: their torus families */
        OUT("static const ibrt_jointpoly m%d_joints[] = {\n", k);
        for (size_t j = 0; j < sym_njoints(m->deriv); j++) {
            const sym_joint *jt = sym_joint_at(m->deriv, j);
            if (jt->kind != SYM_JOINT_POLY)
                continue;
            OUT("    { \"%s\", (const int[]){", jt->groups);
            size_t nf = 0;
            for (size_t g = 0; g < sym_ngroups(m->deriv); g++)
                if (sym_group_at(m->deriv, g)->component == jt->component) {
                    OUT("%s%d", nf ? ", " : " ", sym_group_at(m->deriv, g)->family);
                    nf++;
                }
            OUT(" }, %zu, m%d_jdet%zu },\n", nf, k, j);
        }
        OUT("};\n");
    }
    if (m->deriv && sym_ngroups(m->deriv)) {
        /* every symmetry group, for the joint Gram of the whole model */
        OUT("static const ibrt_symgroup m%d_symgroups[] = {\n", k);
        for (size_t g = 0; g < sym_ngroups(m->deriv); g++) {
            const sym_group *gr = sym_group_at(m->deriv, g);
            OUT("    /* group %zu: ", g + 1);
            emit_comment_text(gr->kind == SYM_GROUP_GL ? gr->text : sym_family_at(m->deriv, (size_t)gr->family)->name);
            OUT(" */\n");
            if (gr->kind == SYM_GROUP_GL) {
                OUT("    { .family = -1, .a = ");
                emit_gl_leg(m, &gr->left);
                OUT(", .b = ");
                emit_gl_leg(m, &gr->right);
                OUT(", .r = %ld, .component = %d },\n", gr->r, gr->component);
            } else
                OUT("    { .family = %d, .component = %d },\n", gr->family, gr->component);
        }
        OUT("};\n");
    }
}

/* A model's learning-rate setting for the driver: where it is written
 * (for the stability warning, "spec.ibs:12") and, for lr = auto, the
 * grid's bounds and the length of each trial run (docs/sweeps.md). */
static void emit_lr_setting(const ibc_lrset *lrs, const ibc_source *src)
{
    if (lrs->node && src && src->path && lrs->node->loc.begin <= src->len) {
        int line, col;
        diag_line_col(src, lrs->node->loc.begin, &line, &col);
        const char *slash = strrchr(src->path, '/');
        char *where = cw_printf("%s:%d", slash ? slash + 1 : src->path, line);
        OUT("        .lr_where = ");
        emit_c_string(emit_current->out, where);
        OUT(",\n");
        free(where);
    }
    if (lrs->is_auto)
        OUT("        .lr_auto = true,   /* lr = auto: one rate per decade, successive halving from a first rung of min(steps, %ld) steps */\n"
            "        .lr_lo = %s,\n        .lr_hi = %s,\n        .lr_auto_steps = %ld,\n", lrs->steps, cw_num(lrs->lo),
            cw_num(lrs->hi), lrs->steps);
}

/* Model k's entry of models[]: its buffers, passes, checks and tables. */
static void emit_model_entry(const ibc_spec *spec, const model *m, int k, data_kind dk)
{
    long nbal = emit_balance_count(m);
    OUT("    {\n        .name = \"%s\",\n        .suffix = \"%s\",\n", m->name, strcmp(m->name, "model") ? m->name : "");
    OUT("        .nth = %ld,\n        .tape = %ld,\n        .root = %ld,\n        .root_batched = %s,\n", m->p.nth,
        m->p.tape + 1, m->p.v[m->p.root].off, m->p.v[m->p.root].batched ? "true" : "false");
    OUT("        .th = m%d_th,\n        .g = m%d_g,\n        .tp = m%d_tp,\n        .ad = m%d_ad,\n", k, k, k, k);
    OUT("        .lr = %s,\n        .l1 = %s,\n        .l1_off = %ld,\n        .l1_size = %ld,\n", cw_num(m->lr), cw_num(m->l1),
        m->l1_off, m->l1_size);
    emit_lr_setting(m->lrs, spec->src);
    char structure[32] = "NULL", balance[32] = "NULL";   /* no symmetry, no balance: nothing to call */
    if (has_structure(m))
        snprintf(structure, sizeof structure, "m%d_structure", k);
    if (nbal)
        snprintf(balance, sizeof balance, "m%d_balance", k);
    OUT("        .init = m%d_init,\n        .forward = m%d_forward,\n        .backward = m%d_backward,\n"
        "        .structure = %s,\n        .balance = %s,\n", k, k, k, structure, balance);
    if (gen_count(m)) {
        bool coupled = sym_families_coupled(m->deriv);
        OUT("        .ngen = %ld,\n        .ngenfam = %zu,\n        .genfam = m%d_genfam,\n        .gen_coupled = %s,\n"
            "        .gens = m%d_gens,\n", gen_count(m), sym_nfamilies(m->deriv), k, coupled ? "true" : "false", k);
    }
    if (quad_count(m))
        OUT("        .nquad = %ld,\n        .nqgroups = %zu,\n        .qgroups = m%d_qgroups,\n        .quad = m%d_quad,\n",
            quad_count(m), sym_ngroups(m->deriv), k, k);
    if (nbal) {
        size_t nfam = 0, nf = sym_nfamilies(m->deriv);
        for (size_t f = 0; f < nf; f++)
            nfam += sym_family_at(m->deriv, f)->nblocks == 2 && sym_family_at(m->deriv, f)->k == 1;
        OUT("        .nbal = %ld,\n        .nfam = %zu,\n        .fams = m%d_families,\n", nbal, nfam, k);
    }
    if (m->deriv && sym_ngroups(m->deriv))
        OUT("        .nsymgroups = %zu,\n        .symgroups = m%d_symgroups,\n", sym_ngroups(m->deriv), k);
    if (joint_poly_count(m))
        OUT("        .njoints = %zu,\n        .joints = m%d_joints,\n", joint_poly_count(m), k);
    if (nbal) {
        /* a Hadamard-type pair: the contraction of chi is measured */
        const sym_family *f0 = sym_family_at(m->deriv, 0);
        bool pair = f0->k == 1 && f0->nblocks == 2 && f0->count == nbal &&
                    f0->alpha[0][0] * f0->alpha[0][1] == -1;
        for (int b = 0; b < 2 && pair; b++) {
            const ibc_var *pv = &m->spec->params[f0->blocks[b].param];
            pair = f0->blocks[b].slice == SYM_SLICE_ENTRY ||
                   (f0->blocks[b].slice == SYM_SLICE_WHOLE && pv->shape.rows * (pv->shape.rank == 2 ? pv->shape.cols : 1) <= 1);
        }
        if (pair)
            OUT("        .pair = true,\n        .pair_off0 = %ld,\n        .pair_off1 = %ld,\n",
                m->p.param_off[f0->blocks[0].param], m->p.param_off[f0->blocks[1].param]);
    }
    OUT("        .nparams = %zu,\n        .params = m%d_params,\n", m->spec->nparams, k);
    if (spec->design.kind == DESIGN_LOG_SPARSITY && dk == D_FIXED) {
        OUT("        .w_size = %ld,\n", spec->params[spec->design.param].shape.rows);
        if (m->replacement)
            OUT("        .w_of = m%d_w_of,\n        .w_check = m%d_w_check,\n", k, k);
        else
            OUT("        .w_off = %ld,\n", m->p.param_off[spec->design.param]);
    }
    OUT("    },\n");
}

/* The models' tables: each model's arrays, then models[] (a model
 * without a symmetry or a balance has NULL there: the runtime skips it). */
void emit_model_tables(const ibc_spec *spec, const model *models, int nm, data_kind dk)
{
    for (int k = 0; k < nm; k++)
        emit_model_arrays(&models[k], k);
    OUT("\nstatic ibrt_model models[] = {\n");
    for (int k = 0; k < nm; k++)
        emit_model_entry(spec, &models[k], k, dk);
    OUT("};\n\n");
}
