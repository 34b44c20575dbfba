/*
 * design.h: inverse design (docs/theory.md §5).
 *
 * From a design target in a checked spec, log_sparsity(A @ w) or
 * log_spectral(A @ W), synthesise the redundant parameterisation (a depth-L
 * Hadamard product pulled back through A's inverse, or a matrix
 * factorisation), as an ordinary spec whose predictor uses only language
 * constructs, then run it back through the symbolic derivation and require
 * the derived bias to equal the requested one exactly (the closed loop).
 */
#ifndef IBC_DESIGN_H
#define IBC_DESIGN_H

#include "ibc.h"
#include "sym.h"

/* What the compiler knows about a fixed linear operator. */
typedef struct {
    const char *text;         /* "diff(200)" */
    long rows, cols;          /* its shape */
    bool invertible;          /* square and of full rank */
    long kernel_dim, cokernel_dim;   /* dimensions of its kernel and co-kernel (0 when invertible) */
    bool dims_lower_bound;    /* composition of singular factors: the dims are lower bounds */
    const char *inverse;      /* how A^-1 is applied: "cumsum, O(n)", ... */
    double condition;         /* 2-norm condition number (dense), 1 otherwise */
    double residual;          /* max |A (A^-1 z) - z| on a random z (dense) */
    bool dense;               /* a matrix from a file is (a factor of) it: its condition and residual are reported */
} design_operator;

/* A synthesised design (arena-allocated, as are its texts and trees). */
typedef struct {
    ibc_design_kind kind;     /* the target: DESIGN_LOG_SPARSITY or DESIGN_LOG_SPECTRAL */
    long depth;               /* L: the factors (2 unless a depth or strength says otherwise) */
    long rank;                /* spectral: the factors' inner dimension r (0 for sparsity) */
    const char *requested;    /* "log_sparsity(diff(200) @ w)" */
    const char *factorisation;/* "w = cumsum(u * v)" */
    const char *coefficient;  /* requested: "4/3" */
    const char *constant;     /* requested per term: "log(3)" */
    sym_rat coef;             /* the requested coefficient, exact: 2(L-1)/L */
    design_operator op;       /* the operator A of the target */
    ibc_spec *designed;       /* the synthesised model */
    ast_node *replacement;    /* the designed parameter as a function of the factors */
    sym_derivation *derivation;   /* of the designed model (or its aligned per-mode chain) */
    const char *alignment;    /* spectral: the SVD-alignment condition */
    bool matches;             /* the closed loop derived the requested bias (always true when returned) */
} design_result;

/* NULL after located errors (unachievable strength, singular or
 * non-square operator, closed-loop mismatch). */
design_result *design_synthesise(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag);
void design_print(FILE *out, const design_result *r, sym_format fmt);

/* Analyses the operator expression of a design target; false (after a
 * located error) when it cannot be read. */
bool design_operator_analyse(ibc_arena *a, const ibc_spec *spec, ast_node *op, ibc_diag *diag,
                             design_operator *out, double **dense);

#endif
