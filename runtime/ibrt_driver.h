/*
 * ibrt_driver.h: the experiment driver of generated trainers (ibrt_main,
 * module prefix ibrt_driver_).
 *
 * A generated trainer holds only what is particular to its spec: each
 * model's forward and reverse passes, its balance quantities and its
 * structural checks (all with sizes fixed at compile time), the data
 * set-up and the minibatch sampler.  It describes them as an ibrt_problem
 * and calls ibrt_main, which owns everything the models share:
 *
 *   command line   ibrt_opts_parse (ibrt.h) plus --gradcheck, --stability
 *                  (the probe of every model and nothing else),
 *                  --checkpoint-every, --resume, --stop-after;
 *   per seed       data (rng stream 0), then each model k in order:
 *                  initialisation (stream 2+2k), structural checks at
 *                  initialisation (stream 1000+k), gradient check, the
 *                  stability probe (stream 3000+k; fresh batches for it,
 *                  4000+k) and, for lr = auto, the
 *                  choice of the rate (ibrt_stability.h), SGD
 *                  with fresh batches (stream 3+2k), traces, structural
 *                  checks at the end, parameters as .npy, metrics;
 *   traces         trace_MODEL.csv every record interval: step, loss, the
 *                  first family's median |chi| and ratio summaries, then
 *                  per symmetry group ||C||_F (a GL junction) or max |chi|
 *                  (a torus), each row at the parameters after that step's
 *                  update; balance_MODEL.csv: chi and the ratio of every
 *                  index of every two-block family; sv_MODEL.csv: the
 *                  singular values of a matrix output;
 *   results        results.json (metrics, checks, status), the table of
 *                  metrics, the table of checks; with --seeds K,
 *                  summary.json of median/min/max; per model, the
 *                  stability probe (stability_lambda_max_MODEL,
 *                  stability_lr_bound_MODEL, stability_MODEL) and for
 *                  lr = auto the trials (lr_auto_chosen_MODEL,
 *                  lr_auto_MODEL) inside "metrics";
 *   faults         a non-finite loss, or one larger than --max-growth
 *                  times the model's first loss, stops the run naming the
 *                  model, the step and the learning rate, and writes the
 *                  partial results and traces (status "diverged", exit 3);
 *   snapshots      --snapshots N: every model's parameters and the gradient
 *                  of the step taken from them, every N steps and at the
 *                  end, in DIR/snapshots/MODEL/step_S/ (docs/interop.md);
 *   verify         --verify RUN trains nothing: the structural checks, traces
 *                  and metrics of the run whose snapshots are in RUN (made
 *                  by --snapshots or by PyTorch), and the finite-step
 *                  identity when RUN has every step with its gradient;
 *   long runs      --checkpoint-every N writes DIR/checkpoint.bin
 *                  atomically every N steps; SIGINT, SIGTERM, SIGHUP
 *                  (unless ignored, as under nohup), SIGXCPU, SIGUSR1 and
 *                  SIGUSR2 (and --stop-after N steps) write a checkpoint
 *                  and partial results (status "interrupted", with
 *                  "stopped_by"); SIGPIPE is ignored (a closed stdout
 *                  loses lines, not the run); --resume DIR continues
 *                  from the checkpoint bit for bit as if never stopped,
 *                  refused when a data or operator file's bytes changed
 *                  (their hashes are in the checkpoint and in
 *                  results.json's "data_files"); with --seeds K, every
 *                  seed must read the bytes the first one read.
 *
 *   output dir     held locked by the run (DIR/.lock, ibrt_outdir_lock):
 *                  a second run with the same directory is refused
 *                  (status 6); temporaries of a killed run are removed
 *                  at the next start; 256 KiB are held back (DIR/.reserve)
 *                  for results.json, which on a failed output (a full
 *                  disk, the file size limit) has status "output_error"
 *                  and the messages in "output_errors";
 *   BLAS           one OpenBLAS thread unless OPENBLAS_NUM_THREADS is set;
 *                  the count is in results.json and in checkpoints, and
 *                  --resume with another count is refused (status 2).
 *
 * Exit status: 0 all checks pass, 1 an error (I/O, data, an output that
 * could not be written), 2 usage, 3 a model diverged (with --seeds K: in
 * some seed; the others still run), 4 a check failed, 5 --gradcheck failed,
 * 6 the output directory is in use by another run (IBRT_EXIT_IN_USE), 75
 * stopped by --stop-after (resumable), 128+N stopped by signal N
 * (resumable; repeated signals are ignored until the checkpoint is
 * written): 129 SIGHUP, 130 SIGINT, 138 SIGUSR1, 140 SIGUSR2, 143 SIGTERM,
 * 152 SIGXCPU.
 *
 * Nothing is allocated inside a training step: buffers are allocated
 * when a run starts and the step loop only calls the model's passes.
 */
#ifndef IBRT_DRIVER_H
#define IBRT_DRIVER_H

#include "ibrt.h"

#define IBRT_EXIT_IN_USE 6   /* another live run holds the output directory */
#include "ibrt_verify.h"   /* ibrt_gl_leg */

/* A learned parameter: where it lives in th[] and its shape. */
typedef struct {
    const char *name;   /* as written in the spec (any bytes; escaped where written) */
    long off;           /* its first entry in th[] (row-major, rows * cols entries) */
    size_t rows, cols;  /* cols 1 for a vector */
    int ndim;           /* 1 or 2, for the .npy file */
} ibrt_param;

/* A family of one-generator, two-block symmetries (balance quantities
 * chi = 1/2 (alpha0 n0 + alpha1 n1) and ratio = ||block0|| / ||block1||
 * per index): its number in the derivation, its count of indices (its
 * entries of balance()'s chi and ratio follow the previous family's),
 * its exponents, and the two exact predictions of docs/theory.md §4 for the
 * ratio: the log det G minimiser and the dual slice (NAN: none). */
typedef struct {
    int id;
    long count;
    double alpha0, alpha1;
    double pred_logdet, pred_dual;
    const char *ratio_definition;   /* "||U[:,k]|| / ||V[:,k]||" */
} ibrt_family;

/* A symmetry group of the whole model (docs/theory.md §8) as the driver
 * assembles the joint Gram matrix of every generator: a torus group is
 * family `family` of gens() (an index into genfam); a GL(r) junction
 * (family -1) has the r^2 generators (A E_ij, -E_ij B) of its legs a, b.
 * Groups with the same component share a parameter (coupled). */
typedef struct {
    int family;
    ibrt_gl_leg a, b;
    long r;
    int component;
} ibrt_symgroup;

/* A coupled component whose joint det G the derivation expanded as an
 * exact polynomial in squared cell norms (docs/theory.md §8): det(th)
 * evaluates it; its torus families are fams[0 .. nfams) (indices into
 * genfam).  At the end of a run the driver compares its log with the
 * Cholesky log det of the Gram of those families' generators. */
typedef struct {
    const char *groups;   /* "1, 2" */
    const int *fams;
    size_t nfams;
    double (*det)(const double *th);
} ibrt_jointpoly;

/* A symmetry group's conserved quadratic functions: q[prev end .. end). */
typedef struct {
    const char *name;   /* the derivation's name for the group */
    long end;           /* one past its last function in q (the previous group's end is its first) */
    long r;             /* a GL(r) junction: its functions are C's upper triangle, row by row; 0: a torus's chi */
} ibrt_qgroup;

/* A torus family's generators: count indices of k generators each. */
typedef struct {
    long count;
    int k;
} ibrt_genfam;

typedef struct {
    const char *name;     /* "designed", "vanilla", "l1" or "model" */
    const char *suffix;   /* appended to metric names ("" for a lone model) */
    long nth, tape, root; /* parameter count, tape size, output slot */
    bool root_batched;    /* the output depends on the inputs (one per sample) */
    /* the trainer's static buffers: parameters and gradient (nth each), the tape's values and adjoints
     * (tape each; they hold at most the problem's bmax samples) */
    double *th, *g, *tp, *ad;
    double lr, l1;        /* l1: weight of l1 * ||th[l1_off .. +l1_size)||_1 */
    long l1_off, l1_size;

    /* th[0 .. nth) drawn as the spec's initialisations say, from r (the model's init stream) */
    void (*init)(double *th, ibrt_rng *r);
    /* the predictor on nb <= bmax samples x (IN apart): every value into tp, the output at tp + root */
    void (*forward)(const double *restrict th, const double *restrict x, long nb, double *restrict tp);
    /* the reverse pass after forward: from the output's adjoint, set by the caller at ad + root, adds the
     * gradient of these samples' loss to g (the caller zeroes g first) */
    void (*backward)(const double *restrict th, const double *restrict x, long nb, const double *restrict tp,
                     double *restrict ad, double *restrict g);
    /* invariance, grad chi = xi and log det G at the current parameters;
     * NULL for a model without a symmetry (nothing to check) */
    void (*structure)(const double *x, ibrt_rng *r, ibrt_checks *c, const char *when);

    /* balance: nbal = sum of the families' counts; balance() fills
     * chi[i], ratio[i] and (when n0 is not NULL) the squared block norms,
     * family after family.  Metrics without a family tag are the first
     * family's; with more than one family, the others' carry "_fam<id>".
     * balance is called only when nbal > 0 (NULL otherwise). */
    long nbal;
    size_t nfam;                   /* entries of fams (0: no two-block family) */
    const ibrt_family *fams;       /* the families, in the order of balance()'s output */
    void (*balance)(const double *th, double *chi, double *ratio, double *n0, double *n1);

    /* The finite-step identity (docs/theory.md §9): quad(th, q, qa) gives the
     * nquad conserved quadratic functions of every symmetry group (a
     * torus's chi, a GL junction's C = A'A - B B'), q_i = 1/2 th' K_i th
     * with K_i th orthogonal to every gradient; qa (when not NULL) the
     * sums of their absolute terms.  One step th - lr g changes q_i by
     * exactly lr^2 q_i(g); the driver adds that up over every step and
     * checks it against q(th_T) - q(th_0), group by group. */
    /* The torus generators (docs/theory.md §2, §8): gens(th, xi) writes the
     * ngen generator vectors xi_a (alpha_ap theta_p in each block p) as
     * the rows of xi (ngen x nth, zeroed by the caller), family by family
     * (genfam), index by index.  At the end of a run the driver reports
     * log det of their joint Gram and the sum of the log dets of its
     * per-index blocks: equal when no two families share a parameter
     * (checked), different when they are coupled (gen_coupled), where the
     * joint one is the model's. */
    long ngen;
    size_t ngenfam;                /* entries of genfam */
    const ibrt_genfam *genfam;
    bool gen_coupled;
    void (*gens)(const double *th, double *xi);

    /* the finite-step identity (above): nquad functions, split into the groups qgroups[0 .. nqgroups) */
    long nquad;
    size_t nqgroups;
    const ibrt_qgroup *qgroups;
    void (*quad)(const double *th, double *q, double *qa);

    /* Every symmetry group of the model (torus families outside a
     * junction, GL junctions): at the end of a run the driver reports log
     * det of the Gram matrix of all their generators at once, and the sum
     * of each group's own; equal (checked) when no two groups share a
     * parameter, different when they are coupled (a chain), where the
     * joint one is the model's (docs/theory.md §8). */
    size_t nsymgroups;
    const ibrt_symgroup *symgroups;   /* symgroups[0 .. nsymgroups) */
    size_t njoints;                   /* entries of joints (0: none) */
    const ibrt_jointpoly *joints;     /* the coupled components with an exact det G, joints[0 .. njoints) */

    /* A Hadamard-type pair (one family of scalar blocks u_i, v_i with
     * exponents +1, -1, z_i = u_i v_i): u_i at th[pair_off0 + i], v_i at
     * th[pair_off1 + i], i < nbal.  One SGD step maps chi_i to chi_i (1 -
     * eta^2 r_i^2), r_i = dL/dz_i (docs/theory.md §6), so the driver adds up
     * eta^2 r_i^2 = eta^2 (g_u^2 + g_v^2) / (u^2 + v^2) over the steps and
     * compares it with the measured log |chi_i(0) / chi_i(T)|. */
    bool pair;
    long pair_off0, pair_off1;

    size_t nparams;               /* entries of params */
    const ibrt_param *params;     /* the spec's parameters, each a slice of th[] (for .npy files, snapshots) */

    /* A log-sparsity design on fixed data: the designed parameter w, of
     * w_size entries, is w_of(th) (NULL: th + w_off); w_check(th) is the
     * relative error of A w(th) against the product of the factors (NULL
     * for a baseline, whose w is its parameter). */
    long w_size, w_off;
    void (*w_of)(const double *th, double *w);
    double (*w_check)(const double *th);

    /* The learning-rate setting: where the spec writes it ("spec.ibs:12";
     * NULL: unknown), named in the stability warning; lr_auto: lr = auto,
     * the rate is chosen before the model trains, from lr_lo, 10 lr_lo,
     * ... <= lr_hi by successive halving from trial runs of
     * min(steps, lr_auto_steps) steps (ibrt_stability.h); m->lr then holds
     * the choice. */
    const char *lr_where;
    bool lr_auto;
    double lr_lo, lr_hi;
    long lr_auto_steps;
} ibrt_model;

typedef struct {
    const char *name, *description;   /* the spec's model name (the program's, in messages and the
                                         default output directory) and its description (--help) */
    uint64_t fingerprint;     /* of the spec's bytes and the ibc version: a checkpoint
                                 resumes only in the trainer of the same spec */
    long default_steps;       /* the steps without --steps: the spec's, extend's included */
    uint64_t default_seed;    /* the seed without --seed: the spec's train seed */
    long record_every;        /* trace interval at the default step count */
    long in, out, bmax;       /* per-sample input and output sizes, samples per step */
    double *bx;               /* the sampler's input buffer (bmax * in) */
    double *bmask;            /* this step's observed entries (out), NULL: no mask */
    bool normalise_all;       /* masked loss: mean over all entries, not the observed */
    bool minibatch;           /* batches are random (noise equilibrium measured) */
    long zrows, zcols;        /* > 0: the output is a matrix with a ground truth */
    double gradient_tol;      /* the gradient check's tolerance (the spec's verify gradient_tol) */

    /* data, fixed operators and teacher for seed `seed` */
    ibrt_status (*setup)(ibrt_dataset *ds, uint64_t seed, bool quiet, ibrt_error *err);
    /* one minibatch: *X its inputs, *Y its labels; returns its sample count */
    long (*draw_batch)(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y);

    size_t nmodels;           /* entries of models (>= 1) */
    ibrt_model *models;       /* models[0 .. nmodels), trained in this order (k of the rng streams) */

    bool stationary;          /* run the thin-shell test of docs/theory.md §7 */
    ibrt_stationary_cfg stationary_cfg;   /* its configuration, when stationary */
} ibrt_problem;

/* Runs the trainer's command line; returns the exit status. */
int ibrt_main(int argc, char **argv, const ibrt_problem *p);

/* Mean squared error of model m over n samples (masked by p->bmask); with
 * grad, its gradient into m->g (plus the l1 subgradient). */
double ibrt_driver_loss(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n,
                        bool grad);

#endif
