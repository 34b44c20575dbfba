/*
 * sym.h: the symbolic derivation (docs/theory.md §§2-4), exact with GMP.
 *
 * From a checked spec's predictor: the rescaling torus (scaling-exponent
 * inference), its generator families, the dual slice, det G by
 * Cauchy-Binet, the orbit minimum of log det G as a geometric programme,
 * the dual-slice balance, and the induced bias in terms of torus
 * invariants.  Everything is exact (rationals, integer coefficients, logs
 * of rationals) except what is labelled numeric.
 */
#ifndef IBC_SYM_H
#define IBC_SYM_H

#include "ibc.h"

/* A family's size: a Hadamard product of L factors sharing an index is one
 * family of L - 1 generators over L blocks, so these admit L <= 16.  The
 * bounds that depend on them: term_set holds a block set as the bits of an
 * unsigned (SYM_MAX_BLOCKS <= 31); the Cauchy-Binet minors are exact
 * (GMP) and a term whose det(alpha_S)^2 does not fit a long is refused;
 * a depth-L chain has L terms, within the 64 a family holds. */
#define SYM_MAX_GEN 15     /* generators per index of one family */
#define SYM_MAX_BLOCKS 16  /* blocks (parameter slices) per family */

/* SYM_SLICE_SET: a set of entries of the parameter (row-major offsets),
 * one set per index value, as an operator's zero pattern makes them
 * (a group-membership matrix rescales the entries of each group). */
typedef enum { SYM_SLICE_WHOLE, SYM_SLICE_ROW, SYM_SLICE_COL, SYM_SLICE_ENTRY, SYM_SLICE_SET } sym_slice;

typedef enum { SYM_MIN_ATTAINED, SYM_MIN_UNBOUNDED, SYM_MIN_NOT_ATTAINED, SYM_MIN_NUMERIC } sym_min_kind;

/* An exact rational num / den in lowest terms with den > 0, as the
 * derivation hands it to design and emit (only printers make text of
 * it); den == 0: no value. */
typedef struct {
    long num, den;
} sym_rat;

/* The primes a derived constant is written over: the constant
 * log(prod_i sym_primes[i]^e_i) is held as its rational exponents e_i. */
#define SYM_NPRIMES 15
extern const unsigned long sym_primes[SYM_NPRIMES];

typedef struct {
    int param;           /* index into spec->params */
    sym_slice slice;     /* which slice of the parameter, tied to the family index */
    const char *text;    /* e.g. "W[j,:]", "v[j]", "Wq[:,k]", "u", "w[S1_i]" */
    /* SYM_SLICE_SET: index value i rescales the entries
     * set_entries[set_start[i] .. set_start[i + 1]) (sorted, disjoint
     * across i); set_name names the sets ("S1", defined in the output) */
    const long *set_start, *set_entries;
    const char *set_name;
} sym_block;

typedef struct {
    const char *name;        /* "per hidden unit j", ... */
    const char *index;       /* index variable name ("j") or NULL for one generator group */
    long count;              /* how many index values (real dims) */
    int k;                   /* generators per index */
    int nblocks;             /* P */
    sym_block blocks[SYM_MAX_BLOCKS];          /* the P slices it rescales, in order of parameters */
    long alpha[SYM_MAX_GEN][SYM_MAX_BLOCKS];   /* exponent matrix k x P */

    /* det G = sum over k-subsets S of coef[S] * prod_{p in S} n_p */
    int nterms;              /* terms of det G (at most 64) */
    unsigned term_set[64];   /* bit mask of blocks (bit p: block p; SYM_MAX_BLOCKS < 32) */
    long term_coef[64];      /* det(alpha[:,S])^2 > 0 */

    /* Orbit minimisation (geometric programme). */
    sym_min_kind min_kind;   /* SYM_MIN_NUMERIC when attained but no closed form */
    sym_min_kind existence;  /* exact: ATTAINED, UNBOUNDED or NOT_ATTAINED */
    int degree;              /* degree of difficulty: nterms - k - 1 */
    sym_rat delta[64];       /* dual weights: one per term, or (terms with equal orbit
                              * exponents merged) one per group in delta[0 .. ndelta) */
    int ndelta;              /* weights in delta; 0: none derived */
    int term_group[64];      /* the weight of term t is delta[term_group[t]] (t itself unless merged) */
    const char *min_text;    /* "2 |u| |v|" */
    const char *log_det_minimizer;   /* balance at the minimiser, e.g. "u^2/v^2 = 8" */
    const char *dual_slice;          /* balance chi = 0, e.g. "u^2/v^2 = 2" */
    bool agree;              /* the minimum is attained and the dual slice chi = 0 is the set of orbit minimisers */
    /* Bias: coefficient * log(invariant) + constant, per index; the texts
     * are what the printers show, the values below what other phases
     * compare (set when min_kind is SYM_MIN_ATTAINED). */
    const char *coefficient; /* "4/3" */
    const char *invariant;   /* "|u| |v|" */
    const char *constant;    /* "log(3)" */
    sym_rat coef;            /* the coefficient (den 0: none) */
    bool monomial;           /* the invariant is prod_p |theta_p|^inv_exp[p] (else a merged posynomial) */
    long inv_exp[SYM_MAX_BLOCKS];      /* monomial: the invariant's exponent of block p's norm (0: absent) */
    sym_rat const_exp[SYM_NPRIMES];   /* constant = log(prod_i sym_primes[i]^const_exp[i]) */
} sym_family;

/* The symmetry groups of the whole model (docs/theory.md §8).  A GL(r)
 * junction is a contraction over an index of size r between two
 * parameters that reach it through nothing but products with other
 * values, transposes and constant factors, each used once in the
 * predictor: Z = A B with A -> A g, B -> g^-1 B for every invertible g.
 * Its r^2 generators hold the diagonal torus of that index (then not
 * counted again); only the r(r+1)/2 symmetric ones have a dual slice,
 * C = A'A - B B' (the antisymmetric ones are rotations).  Every torus
 * family not inside a junction is a group of its own.  Groups that share
 * a parameter are coupled: their Gram matrix is one, not a block
 * diagonal, and their log det G is not the sum of the groups' own. */
typedef enum { SYM_GROUP_TORUS, SYM_GROUP_GL } sym_group_kind;

typedef struct {
    int param;               /* index into spec->params */
    bool rows;               /* the contracted index runs over its rows (else its columns; a vector: its entries) */
} sym_leg;

typedef struct {
    sym_group_kind kind;     /* a torus family, or a GL(r) junction */
    int family;              /* TORUS: index into the families */
    sym_leg left, right;     /* GL: Z = A B, A's column index = left, B's row index = right */
    long r;                  /* GL: the contracted dimension */
    bool full_rank;          /* GL: A and B can have rank r (the orbit minimum's formula needs it) */
    ibc_loc loc;             /* GL: the contraction in the predictor */
    const char *text;        /* "GL(8): Wq[:,k] with Wk[:,k]" */
    long generators;         /* dimension of its Lie algebra */
    long conserved;          /* independent conserved functions (dual slices) it gives */
    int component;           /* groups with the same component share parameters (coupled) */
} sym_group;

/* The joint det G of coupled groups (sym_joint.c, docs/theory.md §8):
 * groups with the same component, when they are all torus families, have
 * det G = sum over m-subsets S of cells of det(E_S)^2 prod_{c in S}
 * ||theta_c||^2, a cell being the entries that every one of their m
 * generators rescales alike (E: its exponent vector under each).  The
 * polynomial is the derivation's up to SYM_JOINT_MAX_TERMS terms. */
#define SYM_JOINT_MAX_TERMS 64
#define SYM_JOINT_MAX_GEN 128

typedef enum {
    SYM_JOINT_POLY,          /* the polynomial, exact */
    SYM_JOINT_LARGE,         /* more than SYM_JOINT_MAX_TERMS terms: their number (or a lower bound) only */
    SYM_JOINT_GL,            /* a GL junction among the groups: not a polynomial in squared norms */
    SYM_JOINT_NOT_EXPANDED   /* too many generators or entries to expand */
} sym_joint_kind;

typedef struct {
    int param;               /* index into spec->params */
    long start, count, stride;   /* the entries start + t stride, t < count (row-major offsets) */
} sym_run;

typedef struct {
    const char *norm2;       /* "||W1[0,:]||^2", "W2[1,0]^2", "(||a||^2 + b^2)" (indices from 0) */
    int nruns;               /* runs of its entries */
    const sym_run *runs;     /* its entries, parameter by parameter, as arithmetic runs (arena) */
} sym_cell;

typedef struct {
    int component;           /* sym_group.component of its groups */
    const char *groups;      /* "1, 2": their numbers, from 1 */
    sym_joint_kind kind;     /* what is known of its det G: the polynomial, its size only, or why not */
    long generators;         /* m (torus components) */
    long ncells;             /* its cells (0 when not computed: a GL junction, or too many generators or entries) */
    const sym_cell *cells;   /* in the order of their first entry */
    const char *nterms;      /* "12", "4096", "at least 70", "more than 64" (NULL: not counted) */
    const char *total;       /* the coefficients' sum, det(E'E) (NULL: not computed) */
    int npoly;               /* POLY: its terms, lexicographic in the cells */
    const int *term_cells;   /* npoly x generators cell indices */
    const char *const *term_coef;   /* det(E_S)^2, decimal */
    const char *text;        /* POLY: the polynomial; otherwise the statement of what is known */
} sym_joint;

typedef struct sym_derivation sym_derivation;   /* arena-allocated */

size_t sym_ngroups(const sym_derivation *d);
const sym_group *sym_group_at(const sym_derivation *d, size_t i);
/* The number of independent conserved functions derived: sum over groups. */
long sym_conservation_laws(const sym_derivation *d);
/* Whether two torus families rescale the same parameter (then their
 * joint Gram is not block diagonal). */
bool sym_families_coupled(const sym_derivation *d);
/* The coupled components, in the order of their first group. */
size_t sym_njoints(const sym_derivation *d);
const sym_joint *sym_joint_at(const sym_derivation *d, size_t i);

typedef enum { SYM_FMT_TEXT, SYM_FMT_MD, SYM_FMT_TEX, SYM_FMT_JSON } sym_format;

/* Derives the torus and bias of spec's predictor; NULL after reporting
 * located errors (an unsupported construct on a parameter path, a stated
 * symmetry that does not preserve the predictor). */
sym_derivation *sym_derive(ibc_arena *a, const ibc_spec *spec, ibc_diag *diag);
void sym_print(FILE *out, const sym_derivation *d, sym_format fmt);

size_t sym_nfamilies(const sym_derivation *d);
const sym_family *sym_family_at(const sym_derivation *d, size_t i);
const ibc_spec *sym_spec(const sym_derivation *d);

/* ---- the exact mathematics, usable on its own (tests, design) ---- */

/* det G by Cauchy-Binet for an exponent matrix alpha (k x P): fills the
 * family's terms.  Returns false if G is singular for every norm (rank of
 * alpha < k), if it has more than 64 terms (more than the family
 * holds), or if a coefficient det(alpha[:,S])^2 does not fit a long (the
 * minors themselves are computed exactly). */
bool sym_gram_terms(sym_family *f);
/* Solves the geometric programme of a family with terms; fills min_kind,
 * degree, the dual weights, the bias (coefficient, invariant, constant) as
 * exact values and as texts, and the minimiser and slice texts (using
 * block names). */
void sym_minimise(ibc_arena *a, sym_family *f);
/* The double nearest r (num / den: each converts exactly below 2^53 and
 * the quotient is correctly rounded); NAN when r has no value. */
double sym_rat_double(sym_rat r);
/* The two exact predictions of docs/theory.md §4 for a one-generator,
 * two-block family's norm ratio ||block 0|| / ||block 1||, as doubles from
 * the exact values: at the log det G minimiser (a two-term geometric
 * programme, n_q ~ c_S(-q) / delta_S(-q) with S(-0) = {1}, S(-1) = {0};
 * NAN when its minimum is not attained in that closed form) and on the
 * dual slice chi = 0 (alpha0 n0 + alpha1 n1 = 0; NAN when the exponents
 * have one sign). */
void sym_balance_predictions(const sym_family *f, double *logdet_min, double *dual);
/* log det G at block norms n (n_p = ||theta_p||^2), from the terms. */
double sym_logdet_eval(const sym_family *f, const double *n);
/* min over the orbit of log det G at norms n, numerically (Newton on the
 * convex log-sum-exp); returns false when it diverges (no minimiser). */
bool sym_logdet_min_numeric(const sym_family *f, const double *n, double *out);

#endif
