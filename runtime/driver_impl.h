/*
 * driver_impl.h: what the files of the experiment driver share, inside
 * libibrt only (the contract generated trainers use is ibrt_driver.h;
 * nothing here is part of it).
 *
 * The driver is one run of a trainer (ibrt_main) split by concern:
 *
 *   driver_main.c    the process: options, signals, BLAS threads, the
 *                    output directory's lock and reserve, --seeds K and
 *                    summary.json, --stability
 *   driver.c         one run: set-up, each model trained step by step,
 *                    the run's references, results.json
 *   driver_ckpt.c    the checkpoint: its format, writing, reading and
 *                    refusals, resuming from it, stopping a run with one
 *   driver_out.c     the run's outputs: metrics and results.json, the
 *                    traces, parameters and snapshots, failed outputs
 *   driver_checks.c  the measurements and checks of a model: the gradient
 *                    check at the initial point, the metrics after
 *                    training, balance, the finite-step identity, the
 *                    symmetry groups' log det G
 *   driver_verify.c  --verify RUN: the same checks on another program's
 *                    parameter snapshots
 *
 * One run's state is a run_state, owned by ibrt_drv_run_in_dir (or
 * ibrt_drv_verify_one, stability_only); the functions taking one act on
 * the model in R->k.
 * The names below have external linkage inside libibrt.a, which is
 * linked into researchers' own programs: each carries the prefix
 * ibrt_drv_ (tests/lib-symbols.sh, run by `make unit`, fails on any
 * external symbol of the library without ibrt_), and a function only one
 * file uses is static there.  None is declared in a public header.
 */
#ifndef IBRT_DRIVER_IMPL_H
#define IBRT_DRIVER_IMPL_H

#include "ibrt_baseline.h"
#include "ibrt_driver.h"
#include "ibrt_io.h"
#include "ibrt_json.h"
#include "ibrt_stability.h"

#include <lapacke.h>
#include <signal.h>

/* ------------------------------------------------------------ checkpoint */

/* The fixed part of DIR/checkpoint.bin; then the checks and metrics
 * tables, th[nth], the batch buffer bx[bmax * in], the mask (if any),
 * chi0, n0 and n1 at initialisation and the pair contraction sum (nbal
 * each), the conserved quadratics at initialisation and the finite-step
 * identity's two sums (nquad each), the JSON text, and an
 * FNV-1a hash of everything before it.  Native byte order and layout: a
 * checkpoint is resumed by the trainer that wrote it (layout says so). */
typedef struct {
    char magic[8];        /* CKPT_MAGIC's 7 bytes, then CKPT_VERSION (driver_ckpt.c) */
    uint64_t layout;      /* hash of the problem's shape (ckpt_layout) */
    uint64_t seed;        /* the run's seed (a --seed on resume must match it) */
    long steps;           /* per model */
    long model;           /* the model in training */
    long step;            /* its next step; -1: not started */
    double loss, loss0;   /* last and first loss of that model */
    double elapsed;       /* wall seconds of earlier processes */
    double max_growth;    /* --max-growth of the run (part of its behaviour) */
    long snapshots;       /* --snapshots N of the run (0: none): a resume goes on writing them */
    ibrt_rng rb, rs;      /* its batch and structural-check streams */
    long trace_len, balance_len, sv_len;   /* bytes of the three traces (.part) the checkpoint refers to */
    int x_is_buffer;      /* the last batch's inputs were bx (else the training set) */
    int json_comma;       /* the JSON under construction needs a comma before its next value */
    int blas_threads;     /* OpenBLAS threads of the run (resumed only with the same) */
    uint64_t json_len;    /* bytes of the JSON text near the end of the file */
    /* the data and operator files the run read (ibrt_io_files_read):
     * resumed only if each has the same bytes (ibrt_drv_ckpt_same_files) */
    uint64_t nfiles;                          /* how many it read */
    uint64_t file_path[IBRT_IO_FILES_MAX];    /* the FNV-1a hash of each one's path */
    uint64_t file_bytes[IBRT_IO_FILES_MAX];   /* and of its bytes */
    uint64_t files_rest;                      /* both hashes of the files past IBRT_IO_FILES_MAX, folded */
} ckpt_head;

/* ------------------------------------------------------------ run state */

/* One run (one seed) of the trainer.  The per-index buffers are sized
 * for the largest model (ibrt_drv_run_alloc: nbal + 1 doubles each,
 * nquad + 1 for the quadratics); "index" is a balanced index i < nbal of
 * the model in training, family after family (ibrt_model.balance). */
typedef struct {
    const ibrt_problem *p;   /* the trainer's problem: its models, data set-up and sizes */
    ibrt_opts o;          /* the options in force (a resume's are the checkpoint's) */
    ibrt_dataset ds;      /* the data set-up made at this seed */
    ibrt_json *j;         /* results.json under construction (inside its "metrics" object while training) */
    ibrt_checks checks;   /* the run's checks so far */
    double t0, elapsed;   /* this process's start; wall seconds of earlier ones */
    long steps_run;       /* training steps taken by this process */
    bool gc_failed;       /* --gradcheck: a model's gradient check failed (exit 5) */
    bool io_failed;       /* an output could not be written: exit 1 at the end */
    int blas_threads;     /* OpenBLAS threads of this process (blas_threads_setup) */
    /* the messages of the first outputs that could not be written, for
     * results.json ("output_errors"), and how many there were */
    char out_err[4][512];   /* the first four messages */
    int nout_err;           /* how many outputs failed (may exceed 4) */

    /* balance, per index (nbal each, sized for the largest model) */
    double *chi, *ratio;  /* chi_i and the norm ratio at the current parameters (the end, after training) */
    double *chi0;         /* chi_i at initialisation */
    double *nA0, *nB0;    /* the two blocks' squared norms n0_i, n1_i at initialisation */
    double *nA, *nB;      /* the same at the end */
    double *mA, *mB;      /* the two blocks' mean squared gradient norm over 256 fresh minibatches, at the end
                           * (balance_metrics: the noise-equilibrium prediction) */
    /* scratch, nbal each: what they hold is set by each user (pair_contraction:
     * measured, predicted and ratio; balance_metrics: a minibatch gradient's
     * squared block norms, then |chi0| and |chi|, then the relative change of
     * chi and the norm growth, and the predicted ratio) */
    double *scratch0, *scratch1, *scratch2;
    double *tmp;          /* scratch of nbal + max w_size + zrows + zcols doubles (medians, support flags,
                           * singular values) */
    double *brow;         /* a row of the balance trace: step, chi[nbal], ratio[nbal] (also scratch for a
                           * minibatch gradient's ratio in balance_metrics) */
    double *g_analytic;   /* the analytic gradient at the gradient check's point (nth) */
    double *w;            /* the design parameter w as the researcher sees it (max w_size) */
    double *contr;        /* Hadamard-type pairs: sum over steps of eta^2 r_i^2 */
    double *sw;           /* the stability probe's and lr = auto's work (4 nth) */
    /* the finite-step identity (ibrt_model.quad), nquad each: q at the
     * start, at the end, of this step's gradient, the sum over steps of
     * lr^2 q(g) and of its absolute values, the end's absolute terms */
    double *q0, *qT, *qg, *qacc, *qaccabs, *qa;
    double *qrec;         /* q at a recorded step (nquad), for the loss trace's dual-slice columns */
    double *trow;         /* a row of the loss trace: 6 columns and one per symmetry group */
    char path[1200];      /* the output file being written (scratch for its name) */
    /* the model in training, for checkpoints and partial results */
    long k, step;         /* its index (nmodels: every model trained) and next step (-1: not started) */
    double loss, loss0;   /* its last and first loss */
    ibrt_rng rb, rs;      /* its batch and structural-check streams */
    const double *X;      /* its last batch's inputs (p->bx or the training set) */
    ibrt_csv tr, bt, sv;  /* its traces: loss, balance, singular values */
    bool tr_open, bt_open, sv_open;   /* each of the three is open */
    /* a matrix output: its singular values over training (dgesvd_work on
     * buffers allocated once) */
    double *svd_a, *svd_s, *svd_work;   /* the matrix (overwritten), its singular values, LAPACK's work */
    lapack_int svd_lwork;               /* the length of svd_work */
} run_state;

/* ------------------------------------------------ the process (driver_main.c) */

/* The first stopping signal received (0: none); the step loop looks at
 * it once per step. */
extern volatile sig_atomic_t ibrt_drv_stop_signal;
/* OpenBLAS threads of this process, set by ibrt_main */
extern int ibrt_drv_blas_threads;
/* --seeds K: the files the first seed read, which every later seed must
 * read unchanged (ibrt_drv_seeds_ref_set: while a later seed runs) */
extern ibrt_io_files ibrt_drv_seeds_ref;
extern bool ibrt_drv_seeds_ref_set;
/* The name of a signal that stops a run, for its message and results.json */
const char *ibrt_drv_stop_signal_name(int sig);

/* ------------------------------------------------------- one run (driver.c) */

/* The mean squared error (masked) of model m on n samples X, Y, the
 * gradient into m->g when grad, with the l1 subgradient when with_l1. */
double ibrt_drv_loss_grad(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n,
                          bool grad, bool with_l1);
/* The sums of the pair contraction and of the finite-step identity for one step */
void ibrt_drv_pair_step(double *restrict contr, const double *u, const double *v, const double *gu, const double *gv,
                        long n, double lr);
void ibrt_drv_quad_step(run_state *R, const ibrt_model *m);
/* The run's buffers (false: out of memory), and freeing them with the data and JSON */
bool ibrt_drv_run_alloc(run_state *R);
void ibrt_drv_free_run(run_state *R);
/* One whole experiment at seed o.seed in o.out_dir (or resumed from o.resume); the exit status */
int ibrt_drv_run_in_dir(const ibrt_problem *p, ibrt_opts o);

/* ---------------------------------------------------- checkpoint (driver_ckpt.c) */

ibrt_status ibrt_drv_ckpt_write(run_state *R, ibrt_error *err);
/* --resume: the checkpoint read and checked against the options (*ck its head,
 * *data its bytes, owned by the caller), R's options, elapsed time, checks and
 * metrics restored; 0, or the exit status after a message */
int ibrt_drv_ckpt_resume_begin(run_state *R, ibrt_opts o, ckpt_head *ck, unsigned char **data, size_t *size);
/* results.json under construction as the checkpoint left it */
bool ibrt_drv_ckpt_restore_json(run_state *R, const ckpt_head *ck, const unsigned char *data, size_t size);
/* model m's parameters, batch and sums as the checkpoint left them */
void ibrt_drv_ckpt_restore_model(run_state *R, ibrt_model *m, const ckpt_head *ck, const unsigned char *data);
bool ibrt_drv_same_files(const ibrt_io_files *ref, const char *what, const char *since, const char *fix,
                         ibrt_error *err);
bool ibrt_drv_ckpt_same_files(const ckpt_head *ck, const char *dir, ibrt_error *err);
/* Stopping the run with a checkpoint (status: the exit status), or
 * because one could not be written (exit 1) */
int ibrt_drv_stop_run(run_state *R, int status);
int ibrt_drv_stop_output_error(run_state *R, const ibrt_error *err);

/* -------------------------------------------------------- outputs (driver_out.c) */

/* The current run's scalar metrics (summarised over seeds) */
extern ibrt_metrics ibrt_drv_metrics;
/* Per model of the current run: "conserved", "driven" or "" */
extern char ibrt_drv_mechanism[16][12];
void ibrt_drv_errmsg(const ibrt_error *err);
void ibrt_drv_output_failed(run_state *R, const ibrt_error *err);
void ibrt_drv_fixed_cost(const run_state *R, const char *what, const char *model, double seconds);
void ibrt_drv_put_metric(run_state *R, const char *name, const char *suffix, double v);
void ibrt_drv_metric_key(run_state *R, const char *name, const char *suffix);
void ibrt_drv_results_json_begin(run_state *R);
int ibrt_drv_write_results(run_state *R);
void ibrt_drv_write_partial(run_state *R, const char *status, const char *extra_key, double step, double loss);
void ibrt_drv_write_params(run_state *R, const ibrt_model *m);
void ibrt_drv_write_snapshot(run_state *R, const ibrt_model *m, long step, bool grad);
ibrt_status ibrt_drv_open_traces(run_state *R, const ibrt_model *m, const ckpt_head *resume, ibrt_error *err);
void ibrt_drv_close_traces(run_state *R);
void ibrt_drv_leave_traces(run_state *R);
double ibrt_drv_dual_slice_size(const ibrt_model *m, size_t g, const double *q);
void ibrt_drv_record_step(run_state *R, const ibrt_model *m, long step, double loss);

/* -------------------------------------------------- checks (driver_checks.c) */

/* The structural and gradient checks of model m at its initial point */
void ibrt_drv_checks_at_init(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb);
void ibrt_drv_model_metrics(run_state *R, size_t k, double loss);
/* The end-of-run symmetry-group measurements of model m (each when the model has them) */
void ibrt_drv_symmetry_checks(run_state *R, const ibrt_model *m, bool identity);
/* The run's references after every model: matrix completion, stationary law; 0 or 1 */
int ibrt_drv_run_references(run_state *R);

/* ----------------------------------------------------- --verify (driver_verify.c) */

int ibrt_drv_verify_one(const ibrt_problem *p, ibrt_opts o);

#endif
