/*
 * emit_torch_impl.h: the internals shared by the files of the PyTorch
 * export (emit_torch.h is its public interface, emit_torch).  Nothing
 * outside these files includes it.
 *
 * Which file owns what:
 *   emit_torch.c        the module top to bottom: emit_torch (the models
 *                       as the C trainer has them, the docstring with the
 *                       derivation, the constants, the fixed helpers,
 *                       loss_fn and the models' base class), the design's
 *                       Reparam and register_design, the module-level
 *                       functions (write_snapshot, ...) and MODELS.
 *   emit_torch_expr.c   Python text made safe (string literals, comments,
 *                       numbers, identifiers), the source form of an
 *                       expression for comments, and the translation of
 *                       a spec expression into the lines of a method
 *                       body, with the operators it needs as buffers.
 *   emit_torch_model.c  one model's class: docstring, PARAMETERS,
 *                       __init__, reset_parameters (the initialisation,
 *                       init unbalance), forward, designed_parameter, and
 *                       the derivation's methods (dual_slices, balance,
 *                       predicted_bias and the tables describing them).
 *
 * Functions shared between these files carry the py_ prefix.  Every one
 * writes to pe->out (through P) or to the FILE it is given; text lives in
 * pe->a, the arena of one emit_torch call.  Spec text reaches the module
 * only through py_str, py_str_body, py_comment and py_name.
 */
#ifndef IBC_EMIT_TORCH_IMPL_H
#define IBC_EMIT_TORCH_IMPL_H

#include "emit_torch.h"

#include <stdio.h>

/* A value of the predictor in Python, as the translation builds it. */
typedef struct {
    const char *e;      /* its expression: a name, a literal or a temporary vN */
    bool batched;       /* it has a leading batch dimension (it depends on an input) */
    int rank;           /* per-sample rank: 0 scalar, 1 vector, 2 matrix */
    long rows, cols;    /* per-sample shape (1 for a missing dimension) */
} pyv;

/* The fixed operators a class holds as buffers (at most 16 of each kind,
 * a located error beyond), collected while its methods are translated. */
typedef struct {
    const ast_node *diag[16];   /* the diag([...]) calls, buffer _ibc_diag<i> */
    int ndiag;                  /* how many of diag[] are used */
    char *dense_path[16];       /* matrix("file"): the file, made absolute (in the arena) */
    const ast_node *dense[16];  /* the matrix(...) call, for its comment */
    long dense_r[16], dense_c[16];   /* the shape its file must have */
    bool dense_inv[16];         /* its inverse is applied too: buffer _ibc_dense<i>_inv */
    int ndense;                 /* how many of the dense arrays are used */
} opset;

/* One model class of the module (emit_torch.c fills it, as emit.c's
 * trainer has its models). */
typedef struct {
    const char *cls;            /* Python class */
    const char *base;           /* its base class */
    const char *name;           /* the C trainer's name: designed, vanilla, l1, model */
    const ibc_spec *spec;       /* its parameters and predictor */
    const sym_derivation *deriv;   /* its derivation (NULL: none; the methods of _IbcModel) */
    double lr, l1;              /* learning rate in the trainer (0: lr = auto), L1 weight (0: none) */
    int l1_param;               /* the penalised parameter, -1: all */
    bool unbalance;             /* the spec's init unbalance(...) applies to it */
    bool designed;              /* the designed model (has designed_parameter) */
    bool in_trainer;            /* one of the C trainer's models (MODELS) */
    const char **attr;          /* Python attribute of each parameter */
    const char **arg;           /* Python argument of each input */
    opset ops;                  /* the operators its methods apply */
} pymodel;

/* The state of one emit_torch call, passed to every writer. */
typedef struct {
    FILE *out;                  /* the Python module being written */
    ibc_arena *a;               /* every string built, freed when emit_torch returns */
    const ibc_spec *spec;       /* the spec exported */
    const design_result *design;   /* its design, NULL without a design target */
    ibc_diag *diag;             /* where unsupported constructs are reported */
    bool failed;                /* a located error was reported: emit_torch fails */
} pyemit;

/* Writes to the module: P("...", ...) in a function with pyemit *pe. */
#define P(...) fprintf(pe->out, __VA_ARGS__)

/* ---- emit_torch_expr.c */
/* The body of a Python string literal for arbitrary bytes (ASCII, escapes;
 * newlines kept as line breaks when lines, for docstrings). */
void py_str_body(FILE *out, const char *s, bool lines);
/* A Python string literal: "..." around py_str_body (NULL: ""). */
void py_str(FILE *out, const char *s);
/* Spec text inside a '#' comment: printable ASCII only. */
void py_comment(FILE *out, const char *s);
/* A double as a Python literal, in buf (negatives parenthesised). */
const char *py_num(char buf[40], double v);
/* A safe Python identifier for spec name `name`, distinct from taken[0..n). */
const char *py_name(ibc_arena *a, const char *name, const char *const *taken, size_t n);
/* The source form of an expression (for comments), at most ~120 bytes. */
const char *py_unparse(ibc_arena *a, const ast_node *n);
/* The rows and columns of a shape (1 for a missing dimension). */
void py_dims(const ibc_shape *s, long *r, long *c);
/* A parameter's or input's shape as a tuple: () for a scalar, or (1,)
 * when npy (the shape of its .npy file). */
void py_shape_tuple(FILE *o, const ibc_var *v, bool npy);
/* Translates expr (of model m's spec, parameters named by leaf_param, its
 * inputs by m->arg) into method-body lines at indent, the operators it
 * applies added to m->ops; returns the text (malloc'd), the value in
 * *result.  An unsupported construct: a located error, pe->failed. */
char *py_translate(pyemit *pe, pymodel *m, const ast_node *expr, const char **leaf_param, const char *indent,
                   pyv *result);
/* The same for an operator expression op (the spec's design operator)
 * applied to a parameter-shaped local `name` of the given shape; site
 * locates errors; operators are added to ops. */
char *py_translate_operator(pyemit *pe, opset *ops, const ast_node *op, const char *name, const ibc_shape *shape,
                            const ast_node *site, const char *indent, pyv *result);
/* The buffers of the operators of o, registered in __init__ (at indent). */
void py_op_buffers(pyemit *pe, const opset *o, const char *ind);

/* ---- emit_torch_model.c */
/* m->attr and m->arg: the Python names of its parameters and inputs. */
void py_names(pyemit *pe, pymodel *m);
/* The class of model m. */
void py_model_class(pyemit *pe, pymodel *m);

#endif
