/*
 * sym_impl.h: what the files of the derivation share and nothing else
 * sees (sym.h is the contract): the derivation's record, and the helpers
 * that one of them defines and another calls (inference, the lattice, the
 * geometric programme, the printers).
 *
 *   sym_infer.c    scaling-exponent inference, the GL junctions
 *                  (sym_infer_expr, sym_find_junctions)
 *   sym.c          generators as slices, the families of the torus, the
 *                  symmetry groups, the driver (sym_derive)
 *   sym_lattice.c  the lattice of symmetries: its basis of whole-slice
 *                  rescalings (sym_lattice_basis)
 *   sym_gp.c       det G by Cauchy-Binet, the orbit minimum of log det G as
 *                  a geometric programme, balance and bias (sym_minimise)
 *   sym_slice.c    whether the dual slice is the minimiser
 *                  (sym_slice_is_minimiser)
 *   sym_joint.c    the joint det G of coupled torus groups (sym_joints)
 *   sym_print.c    the text, markdown, TeX and JSON outputs (sym_print)
 *   exact.c        the exact linear algebra they use (exact.h)
 */
#ifndef IBC_SYM_IMPL_H
#define IBC_SYM_IMPL_H

#include "sym.h"

/* Arena-allocated, as is everything it points to (except spec). */
struct sym_derivation {
    const ibc_spec *spec;    /* the spec derived (the caller's) */
    sym_family *families;    /* the torus families, in the order of the lattice basis */
    size_t nfamilies;        /* entries of families */
    long nunknowns;          /* exponent unknowns of the small instance */
    long nconstraints;       /* exponent equations on them */
    sym_group *groups;       /* GL junctions first (in predictor order), then torus families outside them */
    size_t ngroups;          /* entries of groups */
    int nsets;               /* SYM_SLICE_SET blocks named so far (S1, S2, ...) */
    bool full;               /* inferred on the full instance (an operator file's zeros), not a small one */
    const int *order;        /* the parameters by first appearance in the predictor (unused ones last, by name) */
    sym_joint *joints;       /* one per coupled component (sym_joint.c) */
    size_t njoints;          /* entries of joints */
};

/* Fills d->joints from its groups and families. */
void sym_joints(ibc_arena *a, sym_derivation *d);

#define SMALL_DIM 3         /* the small instance's largest dimension */
#define SYM_MAX_FULL 4000   /* unknowns of a full-size instance */

/* A value of the small instance: per entry, its exponent as an integer
 * linear form over the N unknowns, and whether the entry is structurally
 * non-zero (an operator's zeros take no part in a contraction). */
typedef struct {
    int rows, cols;  /* its shape on the instance (a scalar 1 x 1, a vector n x 1) */
    long *form;     /* rows * cols * N */
    bool *nz;       /* rows * cols */
} xval;

/* The state of scaling-exponent inference on one instance. */
typedef struct {
    ibc_arena *arena;         /* where the forms, equations and results live */
    ibc_diag *diag;           /* where located errors go */
    const ibc_spec *spec;     /* the spec derived (the caller's) */
    int N;                    /* unknowns */
    int *order;               /* the parameters by first appearance in the predictor, unused ones last by name:
                               * the order of the unknowns, of blocks and of the sign convention, so that the
                               * derivation does not depend on the order of declaration */
    int *param_off;           /* first unknown of each parameter (in that order) */
    int *param_rows, *param_cols;   /* each parameter's rows and columns on the instance (capped) */
    long *eq;                 /* constraints, each N longs */
    size_t neq, cap_eq;       /* constraints held, and room for */
    bool failed;              /* an expression could not be inferred (shapes that do not fit on the instance,
                               * or an unsupported construct: then a located error was reported) */
    int cap;                  /* dimensions above it shrink to it: SMALL_DIM, or INT_MAX (the full instance) */
    int bad_param;            /* the parameter classify last found not rescaled as a slice, or -1 */
    sym_group *junctions;     /* the predictor's GL junctions (their diagonals are natural generators) */
    size_t njunctions;
} infer;

/* The exponent forms of the value of n (its equations added to in->eq). */
xval sym_infer_expr(infer *in, const ast_node *n);
/* Adds the equation a - b = 0 (b NULL: a = 0) over the N unknowns. */
void sym_eq_add(infer *in, const long *a, const long *b);
/* A shape's rows and columns on the instance (dimensions capped). */
void sym_shape_small(const infer *in, const ibc_shape *s, int *r, int *c);
/* Whether the predictor applies an operator read from a file that has
 * zeros (then the inference runs on the full instance). */
bool sym_has_sparse_file_operator(const ast_node *n);

/* One slice that a generator rescales, with its exponent. */
typedef struct {
    int param;      /* index into spec->params */
    sym_slice slice;   /* the kind of slice */
    int index;      /* row, column or entry index; -1 for whole (and for a set) */
    long expo;      /* the generator's exponent on every entry of the slice */
} gslice;

/* Describes generator g (N longs) as slices into out (room for
 * SYM_MAX_BLOCKS), *nout of them; false (in->bad_param set) if it scales
 * a parameter in a pattern that is not a whole slice (sym.c). */
bool sym_classify(infer *in, const long *g, gslice *out, int *nout);
/* The lattice basis of the torus as d rows of N longs (arena) into *out,
 * whole-slice rescalings in canonical presentation; returns d, or -1
 * after a located error (sym_lattice.c, docs/theory.md §3). */
int sym_lattice_basis(infer *in, long **out);

/* uses[p] += the times parameter p appears in n. */
void sym_count_params(const ast_node *n, int *uses);
/* The GL(r) junctions of the predictor n (docs/theory.md §8): contractions
 * over an index between two parameters used once each (uses) and reaching
 * it through products, transposes and constant factors only; at most cap
 * into out. */
void sym_find_junctions(ibc_arena *a, const ibc_spec *sp, const ast_node *n, const int *uses, sym_group *out,
                        size_t *nout, size_t cap);

/* "||W[j,:]||^2" or "u^2" (a scalar block), and "||W[j,:]||" or "|u|" */
const char *sym_block_norm2(ibc_arena *a, const sym_family *f, int p);
const char *sym_block_abs(ibc_arena *a, const sym_family *f, int p);

/* "3" or "3/2": the text of an exact rational (den > 0). */
const char *sym_rat_text(ibc_arena *a, sym_rat r);

/* Exactly: whether every point of family f's dual slice chi = 0 (ns: a
 * basis of alpha's nullspace, nd rows of nblocks longs) is a stationary
 * point of log det G along its orbit (sym_slice.c, docs/theory.md §4). */
bool sym_slice_is_minimiser(const sym_family *f, const long *ns, int nd);

/* Whether torus family f is the diagonal of GL junction g (its two
 * blocks are the junction's legs, scaled oppositely): then it is not a
 * group of its own. */
bool sym_family_in_junction(const sym_family *f, const sym_group *g);

#endif
