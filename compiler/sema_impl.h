/*
 * sema_impl.h: what the files of the semantic check share and nothing
 * else sees (ibc.h's sema_check is the contract): the checker's state and
 * the helpers one file calls in another.
 *
 *   sema.c         sema_check: names, declarations, shapes, built-in
 *                  resolution, the statement dispatch, whole-spec checks
 *   sema_expr.c    expressions, operators, function calls, initialisations
 *   sema_data.c    the data generator and its arguments, data against
 *                  model, the loss
 *   sema_blocks.c  train, verify, design, baseline, teacher, symmetry
 */
#ifndef IBC_SEMA_IMPL_H
#define IBC_SEMA_IMPL_H

#include "ibc.h"

typedef struct {
    ibc_arena *arena;            /* the spec and its arrays are allocated here */
    ibc_diag *diag;              /* where errors and warnings go */
    ibc_spec *spec;              /* the spec being built (arena) */
    /* allocated lengths (sema_grow) of spec's dims, params, inputs, baselines, symmetries, files */
    size_t cap_dims, cap_params, cap_inputs, cap_base, cap_sym, cap_files;
    const char *spec_dir;        /* files are found relative to the spec */
    bool has_mask;               /* the data defines the mask "observed" */
    bool data_bad;               /* the data statement had an error */
    ast_node *first[AST_SPEC];   /* first statement of each kind, for duplicates */
    const char **poisoned;       /* names whose declaration had an error: */
    size_t npoisoned, cap_poisoned; /* their uses are not reported again */
} sema;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- sema.c */

/* The names of the built-ins of class c1 or c2, in the order of
 * runtime/ibrt_builtins.def, into out (IBC_B_COUNT entries); how many. */
size_t sema_builtin_names(ibc_builtin_class c1, ibc_builtin_class c2, const char **out);
/* A "did you mean" suffix for name among n candidates (or ""). */
const char *sema_hint(sema *s, const char *name, const char *const *cands, size_t n);
/* A shape as text for messages (arena). */
const char *sema_shape_str(sema *s, ibc_shape sh);
ibc_shape sema_shape_make(int rank, long rows, long cols);
bool sema_shape_eq(ibc_shape a, ibc_shape b);
/* arr grown to hold n + 1 elements of size elem (capacity *cap). */
void *sema_grow(sema *s, void *arr, size_t n, size_t *cap, size_t elem);
/* The kind (IBC_REF_*) of a declared name and its index in *idx;
 * IBC_REF_NONE when it is not declared. */
int sema_lookup(sema *s, const char *name, int *idx);
/* A "did you mean" suffix among the declared names (or ""). */
const char *sema_name_hint(sema *s, const char *name);
/* Whether name's declaration had an error (its uses are not reported). */
bool sema_is_poisoned(sema *s, const char *name);

/* ---- sema_expr.c */

/* A constant expression's value; false (after an error) otherwise. */
bool sema_const(sema *s, ast_node *n, double *out);
/* A constant whole number in [lo, hi] (what names it in errors). */
bool sema_const_int(sema *s, ast_node *n, long lo, long hi, const char *what, long *out);
/* Whether a file named by a string literal exists (relative to the
 * spec); records it in the spec's files. */
bool sema_file_exists(sema *s, ast_node *str);
/* Checks an expression and gives it its shape; false after an error. */
bool sema_expr(sema *s, ast_node *n);
/* A distribution call: known, with its arity and valid arguments. */
bool sema_dist_call(sema *s, ast_node *n);
/* An initialisation: dist(...) [* constant-or-random scalar factor]. */
bool sema_init(sema *s, ast_node *n);

/* ---- sema_data.c */

/* Keyword arguments of a call against "a! b c" (required marked '!'). */
void sema_kwargs(sema *s, ast_node *call, const char *spec_keys);
void sema_data(sema *s, ast_node *n);
/* Whole-spec checks of the data against the model. */
void sema_data_fits(sema *s);
void sema_loss(sema *s, ast_node *n);

/* ---- sema_blocks.c */

void sema_train(sema *s, ast_node *n);
void sema_verify(sema *s, ast_node *n);
void sema_design(sema *s, ast_node *n);
void sema_baseline(sema *s, ast_node *n);
void sema_teacher(sema *s, ast_node *n);
void sema_symmetry(sema *s, ast_node *n);

#endif
