/*
 * emit_impl.h: the internals shared by the files of the code-generation
 * phase (emit.h is its public interface, emit_program and emit_c_string).
 * Nothing outside these files includes it.
 *
 * Which file owns what:
 *   emit.c        the program skeleton: emit_program (the models, their
 *                 lowering, the resource caps, then the file top to
 *                 bottom), the header comment and includes, the fixed
 *                 operators' arrays, each model's section, the teacher,
 *                 the problem table and main; the text helpers
 *                 emit_c_string and emit_comment_text; the emitter
 *                 state emit_current.
 *   emit_lower.c  lowering a spec expression to a tape (prog): values,
 *                 shapes, offsets, fixed operators met (recorded in
 *                 emit_current), and the names of the values
 *                 (emit_prog_build).
 *   emit_tape.c   the forward and reverse passes of a tape as C
 *                 (emit_prog_functions): products through BLAS or inline
 *                 kernels, the adjoint of each operation, the comments
 *                 in the spec's words.
 *   emit_model.c  what each model's derivation gives the trainer: the
 *                 balance, generator, quadratic-group, joint-det and
 *                 structural-check functions, the unbalanced start, the
 *                 designed parameter's functions, and the tables of
 *                 models[] (emit_model_tables).
 *   emit_data.c   the data and the initialisation: parameter draws,
 *                 m<k>_init, the data generator's set-up, draw_batch and
 *                 setup() (fixed operators read, teacher weights).
 *
 * Functions shared between these files carry the emit_ prefix; the
 * emitted text goes through OUT to emit_current->out (emit_current: see
 * its declaration below).
 */
#ifndef IBC_EMIT_IMPL_H
#define IBC_EMIT_IMPL_H

#include "emit.h"

#include "cwrite.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a value of a tape is: a leaf (parameter, input, constant) or the
 * operation that computes it from its operands. */
typedef enum {
    V_PARAM, V_INPUT, V_CONST, V_MATMUL, V_HAD, V_SCALE, V_DIV, V_ADD, V_SUB, V_NEG,
    V_TRANS, V_MAP, V_SOFTMAX, V_SUM, V_OP,
} vkind;

/* Fixed operators applied to a vector (or each column of a matrix). */
typedef enum {
    OP_ID, OP_DIFF, OP_DIFF_T, OP_CUMSUM, OP_CUMSUM_T, OP_DCT, OP_DCT_T, OP_DIAG, OP_DIAG_INV,
    OP_DENSE, OP_DENSE_T, OP_DENSE_INV, OP_DENSE_INV_T,   /* matrix("file"), its transpose, inverse */
} opkind;

/* One value of a tape (prog). */
typedef struct {
    vkind kind;          /* leaf or operation */
    long rows, cols;     /* per sample */
    int a, b;            /* operands */
    bool avec, bvec;     /* matmul: operand was a vector (numpy rules) */
    bool ta, tb;         /* matmul: operand used transposed (fused A' @ B) */
    bool batched;        /* depends on the inputs: one copy per sample */
    long off;            /* offset in th / x / tp */
    double c;            /* constant */
    ibc_builtin fn;      /* V_MAP: IBC_B_relu, _tanh, _sigmoid or _exp */
    opkind op;           /* V_OP: which fixed operator */
    int diag_id;         /* OP_DIAG*: which static diagonal; OP_DENSE*: which matrix */
    int var;             /* V_PARAM, V_INPUT: which of the spec's parameters or inputs */
    /* What the value is in the spec's words, for names and comments: the
     * expression it computes (node), or for one step of an operator
     * expression applied to a value (A @ (B @ z) lowers to two) the
     * operator call applied (opcall, transposed or inverted); site: where
     * in the spec, for the line number. */
    const ast_node *node;    /* the expression it computes, or NULL */
    const ast_node *opcall;  /* the operator call it applies, or NULL */
    bool op_tr, op_inv;      /* that call transposed, inverted */
    const ast_node *site;    /* where in the spec */
} ival;

/* A lowered expression: its tape of values, in evaluation order (each
 * value's operands come before it), and the layout of its buffers. */
typedef struct {
    ival *v;             /* the values */
    int n, cap;          /* how many, and allocated */
    char **name;         /* per value: its C name's stem (t_<stem>, d_<stem>), NULL for leaves */
    char **pname, **iname;   /* per parameter and input: p_<name> and in_<name> stems */
    long tape;           /* size of tp[] and ad[] */
    long bmax;           /* samples per batch: batched values have bmax copies */
    int root;            /* the value of the whole expression (the output) */
    bool *started;       /* emission of the reverse pass: adjoint written yet */
    const ibc_spec *spec;   /* whose parameters and inputs the leaves are */
    long *param_off;     /* per parameter: its offset in th[] */
    long nth;            /* size of th[] */
    long *input_off;     /* per input: its offset in a sample's block of x[] */
    long nx;             /* size of a sample's block of x[] (IN) */
    bool failed;         /* lowering met a located error */
    ibc_diag *diag;      /* where lowering reports them */
} prog;

/* The state of the program being emitted (emit_current). */
typedef struct {
    FILE *out;               /* where OUT writes: the trainer's file, or a cw_buf while a body is written */
    const ast_node **diags;  /* diag([...]) operators met, emitted as arrays */
    int ndiags, cap_diags;   /* how many, and allocated */
    long *dct_sizes;      /* sizes of the dct(n) operators met, each once */
    int ndct, cap_dct;    /* how many, and allocated */
    /* matrix("file") operators: path as written, resolved path, size, and
     * whether the inverse is needed (formed once in set-up) */
    const ast_node *dense[16];       /* the matrix(...) call */
    char *dense_path[16];            /* its file, resolved (malloc'd) */
    long dense_r[16], dense_c[16];   /* the file's shape (square when inverted) */
    bool dense_inv[16];              /* its inverse is applied too */
    int ndense;                      /* how many of the dense arrays are used */
} emitter;

/* How a product of a batch is computed: one call for all samples when the
 * per-sample blocks stack into one matrix, else a call per sample. */
typedef enum { MM_STATIC, MM_STACK_A, MM_STACK_B, MM_EACH } mm_plan;

/* One model of the trainer (emit.c's set_models). */
typedef struct {
    const char *name;        /* "designed", "vanilla", "l1", or "model" */
    const ibc_spec *spec;    /* its parameters and predictor (the designed spec for "designed") */
    const sym_derivation *deriv;   /* its derivation; NULL: none (e.g. a deep log-spectral design) */
    prog p;                  /* its predictor, lowered */
    double lr;               /* 0: lr = auto (lrs) */
    const ibc_lrset *lrs;    /* its learning-rate setting, for lr = auto and the stability warning */
    double l1;               /* weight, 0: none */
    long l1_off, l1_size;    /* the penalised parameter */
    const ast_node *replacement;   /* designed: w(factors) */
    prog rp;                 /* its program */
    prog ap;                 /* A applied to it: must give the factors' product */
    bool unbalance;          /* the spec's init unbalance(...) applies to it */
    char pre[16];            /* its prefix in the generated code: "m0", "m1", ... */
} model;

/* Where the training data comes from (emit_data_of): fixed (generated or
 * files), a teacher's outputs, a noisy target, a low-rank matrix. */
typedef enum { D_FIXED, D_TEACHER, D_TARGET, D_LOWRANK } data_kind;

/* The emitter state of the program being written: where OUT writes, and
 * the fixed operators the lowering met (for the arrays emit.c declares
 * and the set-up emit_data.c writes).  Set by emit_program to its own
 * local emitter for the duration of one call, NULL outside it (the
 * phase writes one program at a time; it is not thread-safe).  Every
 * emit*.c function that writes C or lowers runs inside that call. */
extern emitter *emit_current;

#define OUT(...) fprintf(emit_current->out, __VA_ARGS__)

/* Caps on what a trainer may need, checked before code is written. */
#define IBC_MAX_TRAINER_BYTES (4.0 * 1024 * 1024 * 1024)   /* static buffers */
#define IBC_MAX_TRACE_BYTES (2.0 * 1024 * 1024 * 1024)     /* trace files */

/* ---- emit.c */
/* Text from the spec inside a C comment, scrubbed. */
void emit_comment_text(const char *s);

/* ---- emit_lower.c */
/* Lowers expr (a predictor, or a designed parameter's w(factors)) to a
 * tape of bmax samples named after root_stem; false after a located error
 * in diag.  emit_prog_free releases it (also after a failure). */
bool emit_prog_build(prog *p, const ibc_spec *spec, const ast_node *expr, long bmax, const char *root_stem,
                     ibc_diag *diag);
void emit_prog_free(prog *p);
/* A file named in the spec (operator, data), found relative to the spec
 * and made absolute, in full (size bytes); returns full. */
const char *emit_spec_file_path(const ibc_spec *spec, const char *file, char *full, size_t size);

/* ---- emit_tape.c */
/* <pre>_forward and, if backward, <pre>_backward for tape p. */
void emit_prog_functions(const prog *p, const char *pre, bool backward);
/* " (attention.ibs:15)": where in the spec n is */
void emit_where(const ibc_source *src, const ast_node *n);
/* The kernel of a whole product C (M x N) = op(A) op(B), op(B) K x N. */
const char *emit_mm_whole_fn(mm_plan plan, long M, long N, long K, bool tb);

/* ---- emit_model.c (m->deriv may be NULL; the functions of one kind of
 * derivation result write nothing when m has none of that kind) */
/* The index tables of the families' set slices (<pre>_<set>_start, _entries). */
void emit_set_tables(const model *m);
/* Indices of the families of two blocks and one generator (the balance). */
long emit_balance_count(const model *m);
/* <pre>_balance: chi and the ratio per index of those families. */
void emit_balance_function(const model *m, const char *pre);
/* <pre>_gens: the torus generator vectors. */
void emit_gens_function(const model *m, const char *pre);
/* <pre>_jdet<j>: the exact joint det G of each expanded coupled component. */
void emit_joint_dets(const model *m, const char *pre);
/* <pre>_quad: the conserved quadratic functions of its symmetry groups. */
void emit_quad_function(const model *m, const char *pre);
/* <pre>_structure: the symmetry checks (torus families, GL junctions). */
void emit_structure_function(const model *m, const char *pre, const ibc_verify *ver);
/* init unbalance(from, to): theta_p,i *= exp(alpha_p t_i), into m<k>_init. */
void emit_unbalance(const model *m, double from, double to);
/* Log-sparsity design: m<k>_w_of and m<k>_w_check. */
void emit_design_w_functions(const model *m, int k, const ibc_spec *spec);
/* Every model's arrays, no_structure / no_balance when needed, models[]. */
void emit_model_tables(const ibc_spec *spec, const model *models, int nm, data_kind dk);

/* ---- emit_data.c */
/* <pre>_init: the model's parameters drawn from their initialisations. */
void emit_init_function(const model *m, const char *pre, const ibc_spec *spec);
/* Fixed data (generated or files), a teacher, a noisy target, low rank. */
data_kind emit_data_of(const ibc_spec *spec);
/* The number of keyword argument name of call, def when absent. */
double emit_kwnum(const ast_node *call, const char *name, double def);
/* BMAX, the batch buffers and draw_batch (teacher_fw: the teacher's
 * forward pass); setup(): operators, data, the teacher's weights. */
void emit_draw_batch(const ibc_spec *spec, const prog *teacher, const char *teacher_fw, data_kind dk, long bmax);
void emit_setup_function(const ibc_spec *spec, const prog *teacher, data_kind dk);

#endif
