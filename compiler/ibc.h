/*
 * ibc.h: the contract shared by every compiler phase.
 *
 * ibc compiles a .ibs spec in phases, one file each, run in order by main.c:
 *
 *   grammar/ibs.l (flex)    bytes        -> tokens
 *   parse.c / grammar/ibs.y tokens       -> AST              (parse_)
 *   sema.c                  AST          -> ibc_spec         (sema_)
 *   sym.c                   ibc_spec     -> derivation       (sym_)
 *   design.c                design target-> parameterisation (design_)
 *   emit.c                  spec + deriv -> C trainer        (emit_)
 *
 * The semantic check is four files behind sema_check (sema_impl.h says
 * which does what): sema.c, sema_expr.c, sema_data.c, sema_blocks.c.
 * The derivation is seven files behind sym.h (sym_impl.h says which does
 * what): sym_infer.c (exponent inference, GL junctions), sym_lattice.c
 * (the lattice of symmetries), sym.c (families, groups, the driver),
 * sym_gp.c (det G, the orbit minimum, balance, bias), sym_slice.c
 * (whether the dual slice is the minimiser), sym_joint.c (the joint det G
 * of coupled groups) and sym_print.c (its outputs), on exact.c's GMP
 * linear algebra.  Code generation is five files behind emit.h
 * (emit_impl.h says which does what): emit.c (the program skeleton),
 * emit_lower.c (expressions to tapes), emit_tape.c (forward and reverse
 * passes), emit_model.c (the derivation's functions and tables) and
 * emit_data.c (initialisation, data, sampler, set-up).  The PyTorch
 * export (`ibc emit --target torch`) is three files behind emit_torch.h
 * (emit_torch_impl.h says which does what): emit_torch.c (the module),
 * emit_torch_expr.c (Python text, expressions) and emit_torch_model.c
 * (a model's class).  builtin.c is the
 * table of built-in names, from runtime/ibrt_builtins.def, that every phase looks built-ins up in (sema
 * resolves each call to an ibc_builtin once).  ast_text.c prints an expression of the AST back as
 * spec text, and cwrite.c (cwrite.h) writes C text: both for emit*.c, whose
 * trainers speak the spec's words.
 *
 * This header has the pieces every phase needs: source files and locations,
 * diagnostics, the arena, the AST, and the checked spec (ibc_spec) that the
 * later phases consume.  Phase-specific contracts live in their own headers
 * (sym.h, design.h, emit.h).
 */
#ifndef IBC_H
#define IBC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IBC_VERSION "0.1.0"

/* ---------------------------------------------------------------- arena.c */

/* All AST nodes, names and checked-spec tables of one compilation come from
 * one arena, freed once.  Allocation never fails: on exhaustion of memory
 * the process stops with a message (there is nothing sensible to recover). */
typedef struct ibc_arena ibc_arena;

ibc_arena *arena_new(void);
void arena_free(ibc_arena *a);
void *arena_alloc(ibc_arena *a, size_t size);          /* zeroed, aligned */
char *arena_strndup(ibc_arena *a, const char *s, size_t n);
char *arena_printf(ibc_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Register a cleanup run by arena_free (e.g. mpq_clear of arena values). */
void arena_on_free(ibc_arena *a, void (*fn)(void *), void *arg);

/* ----------------------------------------------------------------- diag.c */

/* A source file held in memory.  Locations are byte ranges into text;
 * line and column are computed only when a diagnostic is printed. */
typedef struct {
    const char *path;   /* as given to diag_source_read (not copied), shown in diagnostics */
    const char *text;   /* NUL-terminated copy of the file's bytes */
    size_t len;         /* may contain NUL bytes before text[len] */
} ibc_source;

typedef struct {
    uint32_t begin, end;  /* byte offsets, end exclusive; begin == end: a point */
} ibc_loc;

typedef struct {
    /* the file locations point into; NULL: printed as "<input>", without the source line */
    const ibc_source *src;
    FILE *out;            /* where diagnostics go (stderr by default) */
    int errors, warnings; /* how many reported so far (errors counts those past max_errors too) */
    int max_errors;       /* stop reporting after this many (0: 100) */
    bool color;           /* not read: diagnostics are printed without colour */
} ibc_diag;

void diag_init(ibc_diag *d, const ibc_source *src, FILE *out);
/* "file:line:col: error: message", the source line, a ^~~~ underline. */
void diag_error(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "file:line:col: note: ..." attached to the previous diagnostic. */
void diag_note(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "N errors generated." (and warnings) when any; returns d->errors. */
int diag_summary(ibc_diag *d);
/* Line and column (both 1-based, column in bytes, tabs counted as 1; on
 * line 1, counted after a UTF-8 byte-order mark). */
void diag_line_col(const ibc_source *src, uint32_t off, int *line, int *col);
/* The closest of candidates[0..n) to word by edit distance, or NULL when
 * nothing is close enough to suggest ("did you mean ...?"). */
const char *diag_suggest(const char *word, const char *const *candidates, size_t n);

/* Reads a whole file; returns false and fills err (static text) on failure. */
bool diag_source_read(ibc_source *src, const char *path, const char **err);
void diag_source_free(ibc_source *src);
/* 3 when the text starts with a UTF-8 byte-order mark (EF BB BF), which
 * the lexer skips and diagnostics never show; else 0. */
size_t diag_source_bom(const ibc_source *src);

/* ------------------------------------------------------------- builtin.c */

/* The built-in names, one enumerator each (IBC_B_relu, IBC_B_diff, ...),
 * generated from runtime/ibrt_builtins.def, the one list: adding a
 * built-in there adds it here.  IBC_B_NONE: not a built-in (a user name, a
 * design target, a baseline). */
typedef enum {
    IBC_B_NONE,
#define IBRT_FUNC(n, k, a, doc) IBC_B_##n,
#define IBRT_OPERATOR(n, a, doc) IBC_B_##n,
#define IBRT_DIST(n, a, doc) IBC_B_##n,
#define IBRT_GENERATOR(n, k, doc) IBC_B_##n,
#include "ibrt_builtins.def"
    IBC_B_COUNT
} ibc_builtin;

typedef enum { IBC_BC_NONE, IBC_BC_FUNC, IBC_BC_OPERATOR, IBC_BC_DIST, IBC_BC_GENERATOR } ibc_builtin_class;
/* How a function scales (ibrt_builtins.def, docs/theory.md §3). */
typedef enum { IBC_FK_HOMOG1, IBC_FK_LINEAR, IBC_FK_NONHOMOG, IBC_FK_CONST } ibc_func_kind;

typedef struct {
    const char *name;     /* as written in a spec ("relu"); "" for IBC_B_NONE */
    /* function, operator, distribution or data generator */
    ibc_builtin_class cls;
    ibc_func_kind kind;   /* IBC_BC_FUNC */
    int nargs;            /* IBC_BC_FUNC, IBC_BC_OPERATOR, IBC_BC_DIST: arguments */
    const char *keys;     /* IBC_BC_GENERATOR: keyword arguments, required ones marked '!' */
    const char *doc;      /* the .def's one-line description (not read by the compiler), NULL for IBC_B_NONE */
} ibc_builtin_info;

/* The table, indexed by ibc_builtin (entry IBC_B_NONE is empty). */
extern const ibc_builtin_info ibc_builtins[IBC_B_COUNT];
/* The built-in named name, or IBC_B_NONE. */
ibc_builtin ibc_builtin_lookup(const char *name);
/* Its class (IBC_BC_NONE for IBC_B_NONE). */
ibc_builtin_class ibc_builtin_class_of(ibc_builtin b);

/* ------------------------------------------------------------------ AST */

typedef enum {
    /* expressions */
    AST_NUM,        /* text: the literal as written; exact value by sym */
    AST_STR,        /* text: the decoded string (may hold any byte but NUL) */
    AST_IDENT,      /* name */
    AST_LIST,       /* [a, b, ...]: kids */
    AST_CALL,       /* name(kids...), kids may be AST_KWARG */
    AST_KWARG,      /* name = lhs */
    AST_NEG,        /* -lhs */
    AST_BINOP,      /* lhs op rhs, op one of '+', '-', '*', '/', '@' */
    AST_TRANSPOSE,  /* lhs' */
    AST_INDEX,      /* lhs[kids...], used by explicit symmetries: W[j, :] */
    AST_SLICE_ALL,  /* the ':' of an index */

    /* statements (one per line or block) */
    AST_MODEL,      /* model name "text" */
    AST_DIM,        /* dim name = lhs */
    AST_INPUT,      /* input name : type */
    AST_PARAM,      /* param name : type ~ lhs (lhs NULL: default init) */
    AST_DATA,       /* data lhs (an AST_CALL) */
    AST_TEACHER,    /* teacher { settings } : kids */
    AST_PREDICT,    /* predict lhs */
    AST_LOSS,       /* loss lhs (AST_IDENT or AST_CALL) */
    AST_DESIGN,     /* design lhs (AST_CALL) { settings }: kids */
    AST_SYMMETRY,   /* symmetry name over index_var in dim { targets }: kids */
    AST_INIT,       /* init lhs (AST_CALL) */
    AST_TRAIN,      /* train { settings } */
    AST_BASELINE,   /* baseline lhs (AST_IDENT or AST_CALL) { settings } */
    AST_VERIFY,     /* verify { settings } */
    AST_SETTING,    /* name = lhs   or   name ~ lhs (op == '~') */
    AST_BLOCK,      /* name { settings }  (nested, e.g. extend { ... }) */
    AST_SPEC,       /* the whole file: kids are statements */
} ast_kind;

typedef enum { TYPE_SCALAR, TYPE_VECTOR, TYPE_MATRIX } ast_type_kind;

typedef struct ast_node ast_node;

typedef struct {
    ast_type_kind kind; /* scalar, vector or matrix */
    ast_node *dim[2];   /* vector: dim[0]; matrix: dim[0] x dim[1] */
    ibc_loc loc;        /* the type as written, for errors on its size */
} ast_type;

/* Shape of a value after sema: rank 0 scalar, 1 vector[rows], 2 matrix. */
typedef struct {
    int rank;           /* 0, 1 or 2 */
    long rows, cols;    /* rank 0: 1 x 1; rank 1: rows x 1 */
} ibc_shape;

struct ast_node {
    ast_kind kind;        /* what the node is; says which of the fields below are used */
    ibc_loc loc;          /* the whole construct, for underlines */
    ibc_loc name_loc;     /* the name token, where there is one */
    const char *name;     /* identifier / call / statement name */
    const char *text;     /* AST_NUM literal, AST_STR value, AST_MODEL text */
    size_t text_len;      /* for AST_STR (bytes) */
    int op;               /* AST_BINOP, AST_SETTING ('=' or '~') */
    ast_node *lhs, *rhs;  /* the operands or value the kind names (see ast_kind), NULL: none */
    ast_node **kids;      /* list elements, call arguments, block settings or statements (arena) */
    size_t nkids;         /* how many kids (0: kids may be NULL) */
    ast_type type;        /* AST_INPUT, AST_PARAM */
    const char *index_var;/* AST_SYMMETRY: the index variable (j) or NULL */
    const char *index_dim;/* AST_SYMMETRY: the dim it ranges over */

    /* Filled by sema. */
    ibc_shape shape;      /* expressions */
    double value;         /* AST_NUM, constant-folded dims and scalars */
    bool is_const;        /* expression is a compile-time constant */
    int ref;              /* AST_IDENT: index into spec params/inputs/dims */
    int ref_kind;         /* AST_IDENT: one of IBC_REF_* */
    const double *opdata; /* AST_CALL matrix("file"): its entries, row-major, shape.rows x shape.cols */
    ibc_builtin builtin;  /* AST_CALL: the built-in its name is, resolved once by sema (IBC_B_NONE: none) */
};

enum { IBC_REF_NONE, IBC_REF_DIM, IBC_REF_PARAM, IBC_REF_INPUT, IBC_REF_DATA };

/* parse.c: parse src into an AST_SPEC allocated in arena.  Syntax errors go
 * to diag; the returned tree is usable (with error recovery) but later
 * phases must not run when diag->errors > 0. */
ast_node *parse_spec(ibc_arena *arena, const ibc_source *src, ibc_diag *diag);

/* Debug: print the AST as an S-expression. */
void ast_dump(FILE *out, const ast_node *n);

/* ast_text.c: expression n as spec text ("(X @ Wq) @ (X @ Wk)'"), with
 * the parentheses the grammar needs and those the spec has (src: the
 * source of n's locations, or NULL).  max > 0 bounds the length: children
 * that do not fit print as "..." or "f(...)".  Malloc'd. */
char *ast_text(const ast_node *n, const ibc_source *src, size_t max);
/* Whether n is a fixed linear operator (identity, diff, diff_open, dct,
 * cosine, diag, matrix), or a product or transpose of such only: the code
 * generators (C and PyTorch) apply these as operators, not as values. */
bool ast_is_operator_call(const ast_node *n);
bool ast_is_operator_expr(const ast_node *n);
/* An init expression's distribution call and its scalar factor (*factor,
 * NULL when there is none): `normal(0, 1)`, `0.1 * normal(0, 1)`,
 * `normal(0, 1) * s`; abs(...) and sqrt(...) are factors, not
 * distributions.  Both code generators draw parameters by it. */
const ast_node *ast_init_dist(const ast_node *n, const ast_node **factor);

/* --------------------------------------------------------- checked spec */

/* Caps on sizes, checked by sema with a message that states them. */
#define IBC_MAX_DIM 100000L            /* any single dimension */
#define IBC_MAX_ELEMS 50000000L        /* elements in one parameter/input */
#define IBC_MAX_STEPS 1000000000L
#define IBC_MAX_NAME 128               /* a declared name or the model's: they become file names */

typedef struct {
    const char *name;     /* as declared (the AST's string) */
    long value;           /* its size, 1..IBC_MAX_DIM */
    ast_node *decl;       /* the AST_DIM statement, for messages */
    bool used;            /* referenced by a checked expression, type or symmetry; else sema warns */
} ibc_dim;

typedef struct {
    const char *name;     /* as declared (the AST's string) */
    ibc_shape shape;      /* its declared type, sizes resolved */
    ast_node *decl;       /* the AST_PARAM or AST_INPUT statement, for messages */
    ast_node *init;       /* init expression (a distribution), or NULL */
    bool used;            /* referenced by a checked expression; else sema warns */
} ibc_var;                /* a parameter or an input */

typedef enum { LOSS_MSE } ibc_loss_kind;

/* A learning-rate setting as written: `lr = 1e-3` (is_auto false) or
 * `lr = auto` / `lr = auto(LO, HI, steps = K)`: the trainer picks the rate
 * by short runs on a grid of one value per decade from LO to HI (defaults
 * IBC_LR_AUTO_LO, IBC_LR_AUTO_HI), each of min(steps, K) steps (K default
 * IBC_LR_AUTO_STEPS; docs/sweeps.md).  node: the setting's value, for the
 * trainer's "file:line" in its stability warning (NULL: not given). */
#define IBC_LR_AUTO_LO 1e-8
#define IBC_LR_AUTO_HI 1.0
#define IBC_LR_AUTO_STEPS 500
typedef struct {
    bool is_auto;         /* false: a fixed rate, held beside this (e.g. ibc_train.lr) */
    double lo, hi;        /* auto: the lowest and highest rate of the grid; 0 when fixed */
    long steps;           /* auto: the steps of each trial run (K); 0 when fixed */
    ast_node *node;       /* the setting's value, NULL: not given */
} ibc_lrset;

/* The learning rate of a trained model whose own setting is `own` (a
 * design's or a baseline's): own when given, else the train block's.
 * *value is the fixed rate (0 for auto). */
struct ibc_spec;
const ibc_lrset *sema_spec_lr(const struct ibc_spec *spec, const ibc_lrset *own, double own_value, double *value);

typedef enum { DESIGN_NONE, DESIGN_LOG_SPARSITY, DESIGN_LOG_SPECTRAL } ibc_design_kind;

typedef struct {
    ibc_design_kind kind; /* DESIGN_NONE: the spec has no design statement */
    ast_node *decl;       /* the AST_DESIGN statement */
    ast_node *op;         /* the operator expression (left of '@') */
    int param;            /* the parameter it applies to */
    long depth;           /* 0: not given */
    const char *strength; /* the strength as written ("4/3"), for messages, or NULL */
    long strength_depth;  /* the depth L whose 2(L-1)/L equals the strength exactly (2..64); 0: none */
    /* the strength's value, for errors; NULL: not given */
    ast_node *strength_node;
    long rank;            /* log_spectral: 0 = full */
    double lr;            /* 0: the train lr (or lr = auto: lrs) */
    ibc_lrset lrs;        /* the design's own lr setting (node NULL: none, the train block's applies) */
    ast_node **inits;     /* AST_SETTING name ~ dist (factor name or "init") */
    size_t ninits;        /* entries of inits */
} ibc_design;

typedef enum { BASELINE_VANILLA, BASELINE_L1 } ibc_baseline_kind;

typedef struct {
    /* vanilla or L1 */
    ibc_baseline_kind kind;
    double weight;        /* L1 */
    double lr;            /* 0: the train lr (or lr = auto: lrs) */
    ibc_lrset lrs;        /* the baseline's own lr setting (node NULL: none, the train block's applies) */
    ast_node *decl;       /* the AST_BASELINE statement */
} ibc_baseline;

typedef struct {
    double lr;            /* 0 with lrs.is_auto */
    ibc_lrset lrs;        /* the train block's lr setting, fixed or auto */
    long steps;           /* training steps, 1..IBC_MAX_STEPS (required) */
    long batch;           /* 0: full batch */
    uint64_t seed;        /* the trainers' default seed, 0..2^31-1 (0 when not given) */
    long extend_steps;    /* 0: none */
    double extend_lr;     /* 0: same lr */
    long record_every;    /* trace interval in steps; 0: automatic */
    ast_node *decl;       /* the train block, and its batch and record_every */
    ast_node *batch_node, *record_node;   /* settings (NULL when not given), for errors */
} ibc_train;

typedef struct {
    double invariance_tol;   /* default 1e-10 */
    double gradient_tol;     /* default 1e-6 */
    double logdet_tol;       /* default 1e-9 */
    double stationary_beta;  /* 0: no stationary test */
    double stationary_eps;   /* the shell's half-width (0: the trainer's 0.02) */
} ibc_verify;

typedef struct ibc_spec {
    const char *model;       /* the model's name (at most IBC_MAX_NAME: it names files) */
    const char *description; /* the model line's text, "" when none */
    /* the declarations in spec order; the arrays are arena-allocated */
    ibc_dim *dims;       size_t ndims;
    ibc_var *params;     size_t nparams;
    ibc_var *inputs;     size_t ninputs;
    ast_node *data;          /* the AST_CALL of the data statement */
    ast_node *teacher;       /* AST_TEACHER or NULL */
    ast_node *predict;       /* the predictor expression, shapes filled */
    ibc_shape out_shape;     /* the predictor's shape */
    ibc_loss_kind loss;      /* always LOSS_MSE */
    const char *loss_mask;   /* NULL or the mask's name (e.g. "observed") */
    bool loss_normalise_all; /* mean over all entries, not observed ones */
    ibc_design design;       /* kind DESIGN_NONE when the spec has none */
    ibc_baseline *baselines; size_t nbaselines;    /* in spec order (arena) */
    ast_node **symmetries;   size_t nsymmetries;   /* the AST_SYMMETRY statements, in spec order (arena) */
    ast_node *init;          /* AST_INIT call or NULL */
    ibc_train train;         /* the train block (required) */
    ibc_verify verify;       /* the verify block's tolerances (the defaults when there is none) */
    const ibc_source *src;   /* the spec's source (diag's), for locations and the fingerprint; may be NULL */
    const char **files;      /* the files the spec reads (data, operators), */
    size_t nfiles;           /* as found relative to it (`ibc run` hashes them) */
} ibc_spec;

/* sema.c: check the AST and build the spec.  Returns NULL when errors were
 * reported (diag->errors > 0). */
ibc_spec *sema_check(ibc_arena *arena, ast_node *root, ibc_diag *diag);

#endif
