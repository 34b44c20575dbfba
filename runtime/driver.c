/*
 * driver.c: ibrt_main, the experiment driver every generated trainer
 * hands its models to (contract in ibrt_driver.h).
 *
 * One run (one seed) is: set-up (data, operators, teacher), then each
 * model in turn -- initialisation, structural checks and a gradient check
 * at the initial point, SGD, structural checks at the end, parameters
 * and metrics -- then the stationary-law test if the spec asks for it,
 * then results.json.  The order of random draws is fixed by the streams
 * (ibrt_rng_fork): data 0, teacher 1, model k's initialisation 2+2k, its
 * batches 3+2k, its structural checks 1000+k.  A checkpoint therefore
 * needs only the model in training, its step, its parameters, the states
 * of its two live streams, its last batch and what the run has produced
 * so far (checks, metrics, the JSON under construction, the lengths of
 * the traces): everything else is recomputed from the seed on resume.
 */
#include "ibrt_baseline.h"
#include "ibrt_driver.h"
#include "ibrt_stability.h"
#include "ibrt_io.h"
#include "ibrt_json.h"

#include <cblas.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lapacke.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Set by the first stopping signal (install_signals); the step loop
 * looks at it once per step.  Later ones are only noted until the process ends: `timeout`
 * signals the trainer and then its whole process group, and a second
 * signal must not kill it before its checkpoint is written (SIGKILL, or
 * SIGQUIT from Ctrl-\, still ends it at once). */
static volatile sig_atomic_t stop_signal, signal_noted;

static void on_signal(int sig)
{
    if (!stop_signal) {
        stop_signal = sig;
        return;
    }
    if (!signal_noted) {
        static const char note[] = "\nsignal received again: still writing the checkpoint (SIGKILL ends the "
                                   "process at once, losing it)\n";
        signal_noted = 1;
        ssize_t w = write(STDERR_FILENO, note, sizeof note - 1);
        (void)w;
    }
}

/* SIGINT, SIGTERM, SIGHUP (the terminal went away), SIGXCPU (the CPU
 * time limit, ulimit -t, reached: SIGKILL follows at the hard limit) and
 * SIGUSR1/SIGUSR2 (a batch system's warning before its time limit, as
 * `sbatch --signal`) stop the run at the next step with a checkpoint (not
 * with --gradcheck, which has nothing to keep: they end it at once); a
 * SIGHUP ignored when the trainer starts (`nohup`) stays ignored, so the
 * run goes on.  SIGXFSZ is
 * ignored, so that a write past the file size limit (ulimit -f) fails
 * with EFBIG and is reported instead of killing the trainer; SIGPIPE is
 * ignored, so that a closed standard output (`trainer | head -1`) only
 * loses the lines printed there: the run and its files go on. */
static void install_signals(bool gradcheck)
{
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (gradcheck)
        return;
    struct sigaction sa, hup;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaddset(&sa.sa_mask, SIGXCPU);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGXCPU, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
}

/* The name of a signal that stops a run, for its message and results.json */
static const char *stop_signal_name(int sig)
{
    return sig == SIGINT    ? "SIGINT"
           : sig == SIGTERM ? "SIGTERM"
           : sig == SIGHUP  ? "SIGHUP (the terminal went away)"
           : sig == SIGXCPU ? "SIGXCPU (the CPU time limit, ulimit -t, was reached)"
           : sig == SIGUSR1 ? "SIGUSR1"
           : sig == SIGUSR2 ? "SIGUSR2"
                            : "a signal";
}

/* BLAS threads: one unless OPENBLAS_NUM_THREADS says otherwise (a
 * trainer's products are far too small to gain from threads: threads
 * fighting over two cores made E5 3 times slower on an idle machine and
 * up to 200 times on a loaded one, docs/reliability.md).  The
 * count is recorded in results.json and in checkpoints: a resumed run
 * must use the same, as the sums inside a product may depend on it. */
static int blas_threads;   /* of this process, set by ibrt_main */

static int blas_threads_setup(void)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env)
        openblas_set_num_threads(1);
    return openblas_get_num_threads();
}

/* ------------------------------------------------------------ checkpoint */

/* "IBRTCKP" and the format's version: 2 added blas_threads, 3 the hashes
 * of the data and operator files read and --snapshots.  A checkpoint of another version
 * is refused by name (ckpt_read). */
#define CKPT_MAGIC "IBRTCKP"
#define CKPT_VERSION '3'

/* The fixed part of DIR/checkpoint.bin; then the checks and metrics
 * tables, th[nth], the batch buffer bx[bmax * in], the mask (if any),
 * chi0, n0 and n1 at initialisation and the pair contraction sum (nbal
 * each), the conserved quadratics at initialisation and the finite-step
 * identity's two sums (nquad each), the JSON text, and an
 * FNV-1a hash of everything before it.  Native byte order and layout: a
 * checkpoint is resumed by the trainer that wrote it (layout says so). */
typedef struct {
    char magic[8];
    uint64_t layout;      /* hash of the problem's shape (ckpt_layout) */
    uint64_t seed;
    long steps;           /* per model */
    long model;           /* the model in training */
    long step;            /* its next step; -1: not started */
    double loss, loss0;   /* last and first loss of that model */
    double elapsed;       /* wall seconds of earlier processes */
    double max_growth;    /* --max-growth of the run (part of its behaviour) */
    long snapshots;       /* --snapshots N of the run (0: none): a resume goes on writing them */
    ibrt_rng rb, rs;      /* its batch and structural-check streams */
    long trace_len, balance_len, sv_len;
    int x_is_buffer;      /* the last batch's inputs were bx (else the training set) */
    int json_comma;
    int blas_threads;     /* OpenBLAS threads of the run (resumed only with the same) */
    uint64_t json_len;
    /* the data and operator files the run read (ibrt_io_files_read):
     * resumed only if each has the same bytes (ckpt_same_files) */
    uint64_t nfiles, file_path[IBRT_IO_FILES_MAX], file_bytes[IBRT_IO_FILES_MAX], files_rest;
} ckpt_head;

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t ckpt_layout(const ibrt_problem *p)
{
    uint64_t h = fnv(14695981039346656037ULL, p->name, strlen(p->name));
    h = fnv(h, &p->fingerprint, sizeof p->fingerprint);   /* the spec's bytes and the ibc version */
    long dims[4] = { p->in, p->out, p->bmax, (long)p->nmodels };
    h = fnv(h, dims, sizeof dims);
    for (size_t k = 0; k < p->nmodels; k++) {
        const ibrt_model *m = &p->models[k];
        long md[5] = { m->nth, m->tape, m->root, m->nbal, m->nquad };
        double hp[2] = { m->lr_auto ? 0 : m->lr, m->l1 };   /* lr = auto: chosen again on resume */
        h = fnv(h, md, sizeof md);
        h = fnv(h, hp, sizeof hp);
    }
    return h;
}

/* The model a checkpoint's index k refers to; k == nmodels (every model
 * trained, the run finishing) holds no parameters. */
static const ibrt_model *ckpt_model(const ibrt_problem *p, long k)
{
    static const ibrt_model none = { .nth = 0, .nbal = 0 };
    return (size_t)k < p->nmodels ? &p->models[k] : &none;
}

/* ------------------------------------------------------------ run state */

typedef struct {
    const ibrt_problem *p;
    ibrt_opts o;
    ibrt_dataset ds;
    ibrt_json *j;
    ibrt_checks checks;
    double t0, elapsed;   /* this process's start; wall seconds of earlier ones */
    long steps_run;       /* training steps taken by this process */
    bool gc_failed;
    bool io_failed;       /* an output could not be written: exit 1 at the end */
    int blas_threads;     /* OpenBLAS threads of this process (blas_threads_setup) */
    /* the messages of the first outputs that could not be written, for
     * results.json ("output_errors"), and how many there were */
    char out_err[4][512];
    int nout_err;
    /* per-index balance buffers, sized for the largest model */
    double *chi, *ratio, *nA0, *nB0, *nA, *nB, *mA, *mB, *pr, *chi0, *tmp, *brow, *c0, *c1, *ga, *w;
    double *contr;        /* Hadamard-type pairs: sum over steps of eta^2 r_i^2 */
    double *sw;           /* the stability probe's and lr = auto's work (4 nth) */
    /* the finite-step identity (ibrt_model.quad), nquad each: q at the
     * start, at the end, of this step's gradient, the sum over steps of
     * lr^2 q(g) and of its absolute values, the end's absolute terms */
    double *q0, *qT, *qg, *qacc, *qaccabs, *qa;
    double *qrec;         /* q at a recorded step (nquad), for the loss trace's dual-slice columns */
    double *trow;         /* a row of the loss trace: 6 columns and one per symmetry group */
    char path[1200];
    /* the model in training, for checkpoints and partial results */
    long k, step;
    double loss, loss0;
    ibrt_rng rb, rs;
    const double *X;
    ibrt_csv tr, bt, sv;
    bool tr_open, bt_open, sv_open;
    /* a matrix output: its singular values over training (dgesvd_work on
     * buffers allocated once) */
    double *svd_a, *svd_s, *svd_work;
    lapack_int svd_lwork;
} run_state;

static ibrt_metrics mt;   /* the current run's scalar metrics (summarised over seeds) */
static char mechanism[16][12];   /* per model of the current run: "conserved", "driven" or "" */

static void errmsg(const ibrt_error *err) { fprintf(stderr, "error: %s\n", err->msg); }

/* An output that could not be written: reported now, and the run's exit
 * status becomes 1 (after it has written what it can). */
static void output_failed(run_state *R, const ibrt_error *err)
{
    errmsg(err);
    R->io_failed = true;
    if (R->nout_err < 4)
        snprintf(R->out_err[R->nout_err], sizeof R->out_err[0], "%s", err->msg);
    R->nout_err++;
}

/* Before results.json, the run's last write, is written: the disk may be
 * full (after a failed output, or filled by the outputs themselves: a
 * run whose every other file fitted lost its results.json), and the space
 * held back since the start (run_one) goes to it. */
static void release_reserve(const run_state *R)
{
    ibrt_outdir_release(R->o.out_dir);
}

/* "output_errors": the outputs that could not be written (results.json) */
static void output_errors_json(const run_state *R, ibrt_json *j)
{
    ibrt_json_key(j, "output_errors");
    ibrt_json_arr_begin(j);
    for (int i = 0; i < R->nout_err && i < 4; i++)
        ibrt_json_str(j, R->out_err[i]);
    if (R->nout_err > 4) {
        char more[64];
        snprintf(more, sizeof more, "and %d more (on stderr)", R->nout_err - 4);
        ibrt_json_str(j, more);
    }
    ibrt_json_arr_end(j);
}

static bool write_all(FILE *f, const void *data, size_t n, uint64_t *h)
{
    *h = fnv(*h, data, n);
    return n == 0 || fwrite(data, 1, n, f) == n;
}

static ibrt_status ckpt_write(run_state *R, ibrt_error *err)
{
    const ibrt_problem *p = R->p;
    /* R->k == nmodels: every model is trained, the run is finishing */
    const ibrt_model *m = ckpt_model(p, R->k);
    ckpt_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 7);
    h.magic[7] = CKPT_VERSION;
    h.blas_threads = R->blas_threads;
    h.layout = ckpt_layout(p);
    h.seed = R->o.seed;
    h.steps = R->o.steps;
    h.model = R->k;
    h.step = R->step;
    h.loss = R->loss;
    h.loss0 = R->loss0;
    h.elapsed = R->elapsed + ibrt_time_now() - R->t0;
    h.max_growth = R->o.max_growth;
    h.snapshots = R->o.snapshots;
    h.rb = R->rb;
    h.rs = R->rs;
    h.x_is_buffer = R->X == p->bx;
    h.json_comma = ibrt_json_need_comma(R->j);
    h.json_len = strlen(ibrt_json_text(R->j));
    const ibrt_io_files *fr = ibrt_io_files_read();
    h.nfiles = fr->n;
    memcpy(h.file_path, fr->path_hash, sizeof h.file_path);
    memcpy(h.file_bytes, fr->bytes_hash, sizeof h.file_bytes);
    h.files_rest = fr->rest;
    if (R->tr_open && ibrt_csv_sync(&R->tr, &h.trace_len, err) != IBRT_OK)
        return IBRT_EIO;
    if (R->bt_open && ibrt_csv_sync(&R->bt, &h.balance_len, err) != IBRT_OK)
        return IBRT_EIO;
    if (R->sv_open && ibrt_csv_sync(&R->sv, &h.sv_len, err) != IBRT_OK)
        return IBRT_EIO;
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    ibrt_atomic a;
    if (ibrt_atomic_open(&a, R->path, err) != IBRT_OK)
        return IBRT_EIO;
    uint64_t hash = 14695981039346656037ULL;
    errno = 0;
    bool ok = write_all(a.f, &h, sizeof h, &hash) && write_all(a.f, &R->checks, sizeof R->checks, &hash) &&
              write_all(a.f, &mt, sizeof mt, &hash) &&
              write_all(a.f, m->th, sizeof(double) * (size_t)m->nth, &hash) &&
              write_all(a.f, p->bx, sizeof(double) * (size_t)(p->bmax * p->in), &hash) &&
              (!p->bmask || write_all(a.f, p->bmask, sizeof(double) * (size_t)p->out, &hash)) &&
              write_all(a.f, R->chi0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->nA0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->nB0, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->contr, sizeof(double) * (size_t)m->nbal, &hash) &&
              write_all(a.f, R->q0, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, R->qacc, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, R->qaccabs, sizeof(double) * (size_t)m->nquad, &hash) &&
              write_all(a.f, ibrt_json_text(R->j), (size_t)h.json_len, &hash);
    uint64_t sum = hash;
    ok = ok && fwrite(&sum, sizeof sum, 1, a.f) == 1;
    if (!ok) {
        ibrt_io_write_error(err->msg, sizeof err->msg, R->path, errno, a.f);
        ibrt_atomic_abort(&a);
        return IBRT_EIO;
    }
    return ibrt_atomic_commit(&a, err);
}

/* Whether the files this process read since set-up are those of REF (a
 * checkpoint's or the first seed's), byte for byte; if not, a message in
 * ERR: WHAT, the first file that differs, SINCE (when REF read it) and
 * FIX. */
static bool same_files(const ibrt_io_files *ref, const char *what, const char *since, const char *fix,
                       ibrt_error *err)
{
    const ibrt_io_files *fr = ibrt_io_files_read();
    size_t n = fr->n < ref->n ? fr->n : ref->n;
    if (n > IBRT_IO_FILES_MAX)
        n = IBRT_IO_FILES_MAX;
    for (size_t i = 0; i < n; i++) {
        if (fr->path_hash[i] != ref->path_hash[i] || fr->bytes_hash[i] != ref->bytes_hash[i]) {
            snprintf(err->msg, sizeof err->msg, "%.150s: the data file '%.180s' %s %s; %s", what, fr->path[i],
                     fr->path_hash[i] != ref->path_hash[i] ? "is not the one read" : "changed", since, fix);
            return false;
        }
    }
    if (fr->n != ref->n || fr->rest != ref->rest) {
        snprintf(err->msg, sizeof err->msg, "%.150s: %zu data or operator files were read %s, %zu now%s; %s", what,
                 ref->n, since, fr->n, fr->n == ref->n ? " (one after the 16th changed)" : "", fix);
        return false;
    }
    return true;
}

/* same_files against checkpoint CK of DIR */
static bool ckpt_same_files(const ckpt_head *ck, const char *dir, ibrt_error *err)
{
    ibrt_io_files ref;
    memset(&ref, 0, sizeof ref);
    ref.n = (size_t)ck->nfiles;
    memcpy(ref.path_hash, ck->file_path, sizeof ref.path_hash);
    memcpy(ref.bytes_hash, ck->file_bytes, sizeof ref.bytes_hash);
    ref.rest = ck->files_rest;
    char what[200];
    snprintf(what, sizeof what, "cannot resume from '%.120s/checkpoint.bin'", dir);
    return same_files(&ref, what, "since the checkpoint was written", "the resumed run would mix two data sets: "
                      "restore the file, or run again without --resume", err);
}

/* "data_files": the data and operator files set-up read, each with an
 * FNV-1a hash of its bytes, so that results say which data they are of
 * (nothing when a generator made the data) */
static void data_files_json(ibrt_json *j)
{
    const ibrt_io_files *fr = ibrt_io_files_read();
    if (fr->n == 0)
        return;
    ibrt_json_key(j, "data_files");
    ibrt_json_arr_begin(j);
    for (size_t i = 0; i < fr->n && i < IBRT_IO_FILES_MAX; i++) {
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)fr->bytes_hash[i]);
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "path");
        ibrt_json_str(j, fr->path[i]);
        ibrt_json_key(j, "fnv1a_64");
        ibrt_json_str(j, h);
        ibrt_json_obj_end(j);
    }
    ibrt_json_arr_end(j);
}

/* --seeds K: the files the first seed read; every later seed must read
 * the same bytes (a file edited during the run trained seeds on
 * different data, and summary.json mixed them) */
static ibrt_io_files seeds_ref;
static bool seeds_ref_set;

/* Reads DIR/checkpoint.bin into a malloc'ed buffer, checking its size,
 * its hash and that this trainer wrote it. */
static ibrt_status ckpt_read(const ibrt_problem *p, const char *dir, unsigned char **buf, size_t *size,
                             ibrt_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    /* opened without blocking and read only if a regular file: a FIFO
     * there blocked the trainer for good (SIGTERM could not end it), a
     * symbolic link to /dev/zero was read until memory ran out */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.400s': not a regular file (%s)", path,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or a socket");
        return IBRT_EIO;
    }
    if (fd < 0 || !(f = fdopen(fd, "rb"))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.400s': %s", path, strerror(e));
        return IBRT_EIO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *nb = cap < ((size_t)1 << 34) ? realloc(b, cap * 2) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    bool rerr = ferror(f);
    fclose(f);
    if (!b || rerr) {
        free(b);
        snprintf(err->msg, sizeof err->msg, "cannot read '%.400s': %s", path, b ? "read error" : "out of memory");
        return IBRT_EIO;
    }
    ckpt_head h;
    uint64_t sum;
    const char *why = NULL;
    if (n >= 8 && !memcmp(b, CKPT_MAGIC, 7) && b[7] != CKPT_VERSION) {
        /* another format: its layout is not this one, so nothing else is read */
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.250s': checkpoint format %c, this trainer reads "
                 "format %c (written by another version of ibc): finish that run with the trainer that wrote it, or "
                 "run again without --resume", path, isprint(b[7]) ? b[7] : '?', CKPT_VERSION);
        free(b);
        return IBRT_EFORMAT;
    }
    if (n < sizeof h + sizeof sum)
        why = "too short to be a checkpoint";
    else {
        memcpy(&h, b, sizeof h);
        memcpy(&sum, b + n - sizeof sum, sizeof sum);
        if (memcmp(h.magic, CKPT_MAGIC, 7))
            why = "not an ibc checkpoint";
        else if (fnv(14695981039346656037ULL, b, n - sizeof sum) != sum)
            why = "corrupt (its checksum does not match)";
        else if (h.layout != ckpt_layout(p))
            why = "written by a different trainer (the spec or ibc changed since); run it again from the start";
        else if (h.model < 0 || (size_t)h.model > p->nmodels || h.step < -1 || h.step > h.steps ||
                 ((size_t)h.model == p->nmodels && h.step != -1) ||
                 h.steps < 1 || h.trace_len < 0 || h.balance_len < 0 || h.sv_len < 0 || h.snapshots < 0)
            why = "corrupt (values out of range)";
        else {
            const ibrt_model *m = ckpt_model(p, h.model);
            size_t want = sizeof h + sizeof(ibrt_checks) + sizeof(ibrt_metrics) +
                          sizeof(double) * (size_t)(m->nth + p->bmax * p->in + (p->bmask ? p->out : 0) + 4 * m->nbal + 3 * m->nquad) +
                          (size_t)h.json_len + sizeof sum;
            if (h.json_len > n || want != n)
                why = "truncated or corrupt (its size does not match its contents)";
        }
    }
    if (why) {
        free(b);
        snprintf(err->msg, sizeof err->msg, "cannot resume from '%.380s': %s", path, why);
        return IBRT_EFORMAT;
    }
    *buf = b;
    *size = n;
    return IBRT_OK;
}

/* ------------------------------------------------------------ training */

static double loss_grad(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n, bool grad,
                        bool with_l1)
{
    const long OUT = p->out, IN = p->in, BMAX = p->bmax;
    double loss = 0, norm = (double)n * (double)OUT;
    const double *mask = p->bmask;
    if (mask && !p->normalise_all) {   /* the mean over this batch's observed entries */
        norm = 0;
        for (long e = 0; e < OUT; e++)
            norm += mask[e];
        if (norm == 0)
            norm = 1;
    }
    if (grad)
        memset(m->g, 0, sizeof(double) * (size_t)m->nth);
    /* an output of the parameters alone is one value for every sample:
     * its adjoint accumulates over the samples */
    const long os = m->root_batched ? OUT : 0;
    double *dy = m->ad + m->root;
    for (long c0 = 0; c0 < n; c0 += BMAX) {   /* chunks of at most BMAX samples: the tape holds no more */
        long nb = n - c0 < BMAX ? n - c0 : BMAX;
        const double *x = X + c0 * IN, *y = Y + c0 * OUT;
        m->forward(m->th, x, nb, m->tp);
        if (grad && !m->root_batched)
            memset(dy, 0, sizeof(double) * (size_t)OUT);
        /* residuals r = f - y (masked); the loss sum r^2 / norm and its
         * adjoint 2 r / norm, divided once (a division per entry cost as
         * much as the rest of the loop) */
        const double *f = m->tp + m->root;
        const double two_n = 2 / norm;
        for (long s = 0; s < nb; s++) {
            const double *fs = f + s * os, *ys = y + s * OUT;
            double *ds = dy + s * os, sq = 0;
            if (mask) {
                for (long o = 0; o < OUT; o++) {
                    double r = (fs[o] - ys[o]) * mask[o];
                    sq += r * r;
                    if (grad)
                        ds[o] = (os ? 0 : ds[o]) + two_n * r;
                }
            } else if (grad && os) {
                for (long o = 0; o < OUT; o++) {
                    double r = fs[o] - ys[o];
                    sq += r * r;
                    ds[o] = two_n * r;
                }
            } else {
                for (long o = 0; o < OUT; o++) {
                    double r = fs[o] - ys[o];
                    sq += r * r;
                    if (grad)
                        ds[o] = (os ? 0 : ds[o]) + two_n * r;
                }
            }
            loss += sq;
        }
        if (grad)
            m->backward(m->th, x, nb, m->tp, m->ad, m->g);
    }
    loss /= norm;
    if (grad && with_l1 && m->l1 > 0)   /* subgradient of l1 * ||w||_1 */
        for (long e = 0; e < m->l1_size; e++) {
            double w = m->th[m->l1_off + e];
            m->g[m->l1_off + e] += m->l1 * ((w > 0) - (w < 0));
        }
    return loss;
}

double ibrt_driver_loss(const ibrt_problem *p, const ibrt_model *m, const double *X, const double *Y, long n, bool grad)
{
    return loss_grad(p, m, X, Y, n, grad, true);
}

/* A cost paid once per run (set-up, checks, references), printed with
 * its time so that a user sees where a short run's time goes (stderr;
 * nothing under --quiet). */
static void fixed_cost(const run_state *R, const char *what, const char *model, double seconds)
{
    if (!R->o.quiet)
        fprintf(stderr, "fixed cost: %s%s%s%s: %.3g s\n", what, model ? " (" : "", model ? model : "", model ? ")" : "",
                seconds);
}

/* Central differences of the loss along one entry e of theta (d NULL)
 * or along the unit direction d (e < 0), taken at seven steps h = 1e-1
 * ... 1e-7 (times max(1, |theta_e|) for an entry): truncation grows as
 * h^2 and round-off as eps L / h, and which h balances them depends on the
 * scale of the loss and of the gradient (a small initialisation gives
 * gradients many orders below the loss).  Each pair of neighbouring steps
 * is scored by its disagreement plus the round-off bound 4 eps |L| / h of
 * its smaller step (at tiny h the loss differences are quantised, and two
 * steps can agree by rounding to the same value), and the best pair is
 * used: its smaller step's estimate is returned, their disagreement in
 * *spread.  theta is restored exactly (th0: its copy, for a direction). */
static double central_difference(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb,
                                 long e, const double *d, const double *th0, double l0, double *spread)
{
    enum { NH = 7 };
    const ibrt_problem *p = R->p;
    double t = e >= 0 ? m->th[e] : 0, fd[NH], score[NH], h = 1e-1;
    for (int q = 0; q < NH; q++, h /= 10) {
        double he = e >= 0 ? h * fmax(1, fabs(t)) : h, l[2];
        score[q] = 4 * 2.220446049250313e-16 * l0 / he;   /* the round-off bound at this step */
        for (int side = 0; side < 2; side++) {
            double step = side ? -he : he;
            if (e >= 0)
                m->th[e] = t + step;
            else
                for (long i = 0; i < m->nth; i++)
                    m->th[i] = th0[i] + step * d[i];
            l[side] = loss_grad(p, m, X, Y, nb, false, false);
        }
        if (e >= 0)
            m->th[e] = t;
        else
            memcpy(m->th, th0, sizeof(double) * (size_t)m->nth);
        fd[q] = (l[0] - l[1]) / (2 * he);
    }
    int best = 0;
    for (int q = 0; q + 1 < NH; q++) {
        score[q] = fabs(fd[q] - fd[q + 1]) + score[q + 1];
        if (score[q] < score[best])
            best = q;
    }
    *spread = fabs(fd[best] - fd[best + 1]);
    return fd[best + 1];
}

/* The gradient check: the analytic gradient against central
 * differences, relative to the largest gradient entry.  Every entry when
 * theta has at most GC_ALL of them; otherwise GC_ENTRIES entries drawn at
 * random (without repetition) plus GC_DIRS random unit directions v, where
 * the directional derivative g . v is compared relative to ||g||_2, so
 * that the cost (14 loss evaluations each) does not grow with the model
 * (rng stream 2000 + k: the run's other streams are untouched).  When even
 * the best pair of steps disagrees by more than the tolerance the loss has
 * a kink within +-h (a relu switching): the derivative is not defined
 * there, and the entry or direction is skipped and counted.  A wrong
 * gradient still fails: the differences agree with each other and not
 * with it.  *checked: entries and directions compared, skipped included. */
enum { GC_ALL = 1024, GC_ENTRIES = 256, GC_DIRS = 8 };

static double gradient_check(run_state *R, const ibrt_model *m, const double *X, const double *Y, long nb,
                             long *skipped, long *checked, bool *sampled)
{
    const ibrt_problem *p = R->p;
    double tol = p->gradient_tol, worst = 0, scale = 0, norm = 0, *ga = R->ga;
    double l0 = fabs(loss_grad(p, m, X, Y, nb, true, false));
    memcpy(ga, m->g, sizeof(double) * (size_t)m->nth);
    for (long e = 0; e < m->nth; e++) {
        scale = fmax(scale, fabs(ga[e]));
        norm += ga[e] * ga[e];
    }
    norm = sqrt(norm);
    *skipped = 0;
    *sampled = m->nth > GC_ALL;
    long n = *sampled ? GC_ENTRIES : m->nth;
    long *pick = *sampled ? malloc(sizeof(long) * (size_t)m->nth) : NULL;
    double *th0 = *sampled ? malloc(sizeof(double) * (size_t)m->nth) : NULL;
    double *v = *sampled ? malloc(sizeof(double) * (size_t)m->nth) : NULL;
    if (*sampled && (!pick || !th0 || !v)) {
        free(pick);
        free(th0);
        free(v);
        *checked = 0;
        return INFINITY;   /* out of memory: the check fails rather than pass unchecked */
    }
    ibrt_rng rg;
    ibrt_rng_fork(&rg, R->o.seed, 2000 + (uint64_t)R->k);
    if (*sampled) {   /* a partial Fisher-Yates shuffle: n distinct entries */
        for (long i = 0; i < m->nth; i++)
            pick[i] = i;
        for (long i = 0; i < n; i++) {
            long j = i + (long)ibrt_rng_below(&rg, (uint64_t)(m->nth - i));
            long tmp = pick[i];
            pick[i] = pick[j];
            pick[j] = tmp;
        }
    }
    for (long c = 0; c < n; c++) {
        long e = pick ? pick[c] : c;
        double spread, fd = central_difference(R, m, X, Y, nb, e, NULL, NULL, l0, &spread);
        if (spread > tol * fmax(scale, 1e-300)) {
            (*skipped)++;
            continue;
        }
        worst = fmax(worst, fabs(fd - ga[e]) / fmax(scale, 1e-300));
    }
    *checked = n;
    if (*sampled) {
        memcpy(th0, m->th, sizeof(double) * (size_t)m->nth);
        for (int q = 0; q < GC_DIRS; q++) {
            double vn = 0, gv = 0, spread;
            for (long i = 0; i < m->nth; i++) {
                v[i] = ibrt_rng_normal(&rg);
                vn += v[i] * v[i];
            }
            vn = sqrt(vn);
            for (long i = 0; i < m->nth; i++) {
                v[i] /= vn;
                gv += ga[i] * v[i];
            }
            double fd = central_difference(R, m, X, Y, nb, -1, v, th0, l0, &spread);
            (*checked)++;
            if (spread > tol * fmax(norm, 1e-300)) {
                (*skipped)++;
                continue;
            }
            worst = fmax(worst, fabs(fd - gv) / fmax(norm, 1e-300));
        }
    }
    free(pick);
    free(th0);
    free(v);
    return worst;
}

/* A scalar metric: into results.json as NAME_SUFFIX, and into the table. */
static void put(run_state *R, const char *name, const char *suffix, double v)
{
    char key[128];
    snprintf(key, sizeof key, "%s%s%s", name, *suffix ? "_" : "", suffix);
    ibrt_json_key(R->j, key);
    ibrt_json_num(R->j, v);
    ibrt_metrics_add(&mt, name, suffix, v);
}

static void key(run_state *R, const char *name, const char *suffix)
{
    char k[128];
    snprintf(k, sizeof k, "%s%s%s", name, *suffix ? "_" : "", suffix);
    ibrt_json_key(R->j, k);
}

/* results.json of a run that did not finish: what it has measured so
 * far, the checks so far, and why it stopped. */
static void write_partial(run_state *R, const char *status, const char *extra_key, double step, double loss)
{
    ibrt_json *j = ibrt_json_clone(R->j);
    ibrt_json_obj_end(j);   /* metrics */
    ibrt_json_key(j, "wall_seconds");
    ibrt_json_num(j, R->elapsed + ibrt_time_now() - R->t0);
    ibrt_json_key(j, "checks");
    ibrt_checks_to_json(&R->checks, j);
    ibrt_json_key(j, "status");
    ibrt_json_str(j, status);
    if (!strcmp(status, "interrupted")) {   /* what stopped it */
        ibrt_json_key(j, "stopped_by");
        ibrt_json_str(j, stop_signal ? stop_signal_name(stop_signal) : "--stop-after");
    }
    ibrt_json_key(j, extra_key);
    ibrt_json_obj_begin(j);
    if ((size_t)R->k < R->p->nmodels) {
        ibrt_json_key(j, "model");
        ibrt_json_str(j, R->p->models[R->k].name);
        ibrt_json_key(j, "step");
        if (step >= 0)
            ibrt_json_num(j, step);
        else
            ibrt_json_str(j, "before its first step");
        ibrt_json_key(j, "loss");
        ibrt_json_num(j, step >= 0 ? loss : NAN);
        ibrt_json_key(j, "learning_rate");
        ibrt_json_num(j, R->p->models[R->k].lr);
    } else {
        ibrt_json_key(j, "model");
        ibrt_json_str(j, "every model trained; final checks not yet run");
    }
    ibrt_json_obj_end(j);
    if (R->nout_err)
        output_errors_json(R, j);
    ibrt_json_obj_end(j);
    ibrt_error err;
    snprintf(R->path, sizeof R->path, "%s/results.json", R->o.out_dir);
    release_reserve(R);
    if (ibrt_json_write_file(j, R->path, &err) != IBRT_OK)
        errmsg(&err);
    ibrt_json_free(j);
}

static void write_params(run_state *R, const ibrt_model *m)
{
    ibrt_error err;
    for (size_t q = 0; q < m->nparams; q++) {
        const ibrt_param *pv = &m->params[q];
        size_t shp[2] = { pv->rows, pv->cols };
        snprintf(R->path, sizeof R->path, "%s/%s_%s.npy", R->o.out_dir, m->name, pv->name);
        if (ibrt_npy_write(R->path, m->th + pv->off, (size_t)pv->ndim, shp, &err) != IBRT_OK)
            output_failed(R, &err);
    }
}

/* --snapshots N: model m's parameters before step `step` (and, when
 * grad, the gradient of that step, m->g) as .npy files in
 * DIR/snapshots/MODEL/step_<step>/, with DIR/snapshots/MODEL/run.json
 * naming the model and its learning rate: the layout `ibc verify` reads
 * (docs/interop.md). */
static void write_snapshot(run_state *R, const ibrt_model *m, long step, bool grad)
{
    ibrt_error err;
    char dir[900];   /* enough: --out is at most IBRT_MAX_DIR bytes, a model name at most 128 */
    snprintf(dir, sizeof dir, "%s/snapshots/%s/step_%010ld", R->o.out_dir, m->name, step);
    if (ibrt_mkdir_p(dir, &err) != IBRT_OK) {
        output_failed(R, &err);
        return;
    }
    if (step == 0) {
        ibrt_json *j = ibrt_json_new();
        ibrt_json_obj_begin(j);
        ibrt_json_key(j, "format");
        ibrt_json_str(j, "ibc-snapshots-1");
        ibrt_json_key(j, "spec");
        ibrt_json_str(j, R->p->name);
        ibrt_json_key(j, "model");
        ibrt_json_str(j, m->name);
        ibrt_json_key(j, "lr");
        ibrt_json_num(j, m->lr);
        ibrt_json_key(j, "every");
        ibrt_json_int(j, R->o.snapshots);
        ibrt_json_obj_end(j);
        snprintf(R->path, sizeof R->path, "%s/snapshots/%s/run.json", R->o.out_dir, m->name);
        if (ibrt_json_write_file(j, R->path, &err) != IBRT_OK)
            output_failed(R, &err);
        ibrt_json_free(j);
    }
    for (size_t q = 0; q < m->nparams; q++) {
        const ibrt_param *pv = &m->params[q];
        size_t shp[2] = { pv->rows, pv->cols };
        for (int g = 0; g < (grad ? 2 : 1); g++) {
            snprintf(R->path, sizeof R->path, "%s/%.200s%s.npy", dir, pv->name, g ? ".grad" : "");
            if (ibrt_npy_write(R->path, (g ? m->g : m->th) + pv->off, (size_t)pv->ndim, shp, &err) != IBRT_OK)
                output_failed(R, &err);
        }
    }
}

static void close_traces(run_state *R)
{
    ibrt_error err;
    if (R->tr_open && ibrt_csv_close(&R->tr, &err) != IBRT_OK)
        output_failed(R, &err);
    if (R->bt_open && ibrt_csv_close(&R->bt, &err) != IBRT_OK)
        output_failed(R, &err);
    if (R->sv_open && ibrt_csv_close(&R->sv, &err) != IBRT_OK)
        output_failed(R, &err);
    R->tr_open = R->bt_open = R->sv_open = false;
}

/* Closes the traces in training without renaming them: they stay as
 * TRACE.part, which a checkpoint refers to. */
static void leave_traces(run_state *R)
{
    if (R->tr_open)
        fclose(R->tr.f);
    if (R->bt_open)
        fclose(R->bt.f);
    if (R->sv_open)
        fclose(R->sv.f);
    R->tr_open = R->bt_open = R->sv_open = false;
}

/* A checkpoint could not be written (a full disk, the file size limit):
 * the run stops here rather than go on with no way to resume, keeping
 * the last checkpoint written (if any) and the traces it refers to;
 * results.json says where and why (status "output_error").  Exit 1. */
static int stop_output_error(run_state *R, const ibrt_error *err)
{
    output_failed(R, err);
    write_partial(R, "output_error", "stopped_at", (double)R->step, R->loss);
    leave_traces(R);
    snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
    if (access(R->path, F_OK) == 0)
        fprintf(stderr, "%s: stopped: the checkpoint could not be written; the last one written, in %s, is kept: "
                "once there is room, continue with: --resume %s\n", R->p->name, R->path, R->o.out_dir);
    else
        fprintf(stderr, "%s: stopped: no checkpoint could be written; results so far in %s/results.json\n",
                R->p->name, R->o.out_dir);
    return 1;
}

/* Stops a run for a checkpoint: writes it and the partial results; the
 * traces stay as TRACE.part, which the checkpoint refers to. */
static int stop_run(run_state *R, int status)
{
    ibrt_error err;
    if (ckpt_write(R, &err) != IBRT_OK)
        return stop_output_error(R, &err);
    write_partial(R, "interrupted", "stopped_at", (double)R->step, R->loss);
    if (stop_signal)
        fprintf(stderr, "%s: %s received: checkpoint written\n", R->p->name, stop_signal_name(stop_signal));
    if (R->step >= 0)
        fprintf(stderr, "%s: stopped at step %ld of model '%s'", R->p->name, R->step, R->p->models[R->k].name);
    else if ((size_t)R->k < R->p->nmodels)
        fprintf(stderr, "%s: stopped before model '%s'", R->p->name, R->p->models[R->k].name);
    else
        fprintf(stderr, "%s: stopped after training every model", R->p->name);
    fprintf(stderr, "; checkpoint in %s/checkpoint.bin\ncontinue with: --resume %s\n", R->o.out_dir, R->o.out_dir);
    leave_traces(R);
    return status;
}

/* The traces of model m: the loss (and balance summaries) every `every`
 * steps, and chi and the ratio of every index. */
static ibrt_status open_traces(run_state *R, const ibrt_model *m, const ckpt_head *resume, ibrt_error *err)
{
    /* the loss trace: step, loss, the first family's balance summaries,
     * then the size of each symmetry group's dual slice (||C||_F of a GL
     * junction, max |chi| of a torus) */
    size_t hcap = 96 + 32 * m->nqgroups, hlen;
    char *hdr = malloc(hcap);
    if (!hdr) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    hlen = (size_t)snprintf(hdr, hcap, "%s", m->nbal ? "step,loss,chi_abs_median,ratio_median,ratio_min,ratio_max" : "step,loss");
    for (size_t g = 0; g < m->nqgroups; g++)
        hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, m->qgroups[g].r ? ",C_fro_group%zu" : ",chi_abs_max_group%zu",
                                 g + 1);
    snprintf(R->path, sizeof R->path, "%s/trace_%s.csv", R->o.out_dir, m->name);
    ibrt_status st = resume ? ibrt_csv_resume(&R->tr, R->path, resume->trace_len, err)
                            : ibrt_csv_open_resumable(&R->tr, R->path, hdr, err);
    free(hdr);
    if (st != IBRT_OK)
        return st;
    R->tr_open = true;
    if (R->p->zrows > 0) {   /* sv_MODEL.csv: step, sigma_1 >= sigma_2 >= ... */
        long ns = R->p->zrows < R->p->zcols ? R->p->zrows : R->p->zcols;
        char h[64 * 24];
        size_t hl = (size_t)snprintf(h, sizeof h, "step");
        for (long q = 0; q < ns && hl < sizeof h - 24; q++)
            hl += (size_t)snprintf(h + hl, sizeof h - hl, ",sigma_%ld", q + 1);
        snprintf(R->path, sizeof R->path, "%s/sv_%s.csv", R->o.out_dir, m->name);
        st = resume ? ibrt_csv_resume(&R->sv, R->path, resume->sv_len, err)
                    : ibrt_csv_open_resumable(&R->sv, R->path, h, err);
        if (st != IBRT_OK)
            return st;
        R->sv_open = true;
    }
    if (!m->nbal)
        return IBRT_OK;
    size_t cap = 64 * (size_t)(2 * m->nbal + 1), len;
    char *bh = malloc(cap);
    if (!bh) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IBRT_ENOMEM;
    }
    len = (size_t)snprintf(bh, cap, "step");
    for (int q = 0; q < 2; q++)
        for (size_t f = 0; f < m->nfam; f++)
            for (long i = 0; i < m->fams[f].count; i++)
                len += (size_t)snprintf(bh + len, cap - len, ",%s%d_%ld", q ? "ratio" : "chi", m->fams[f].id, i);
    snprintf(R->path, sizeof R->path, "%s/balance_%s.csv", R->o.out_dir, m->name);
    st = resume ? ibrt_csv_resume(&R->bt, R->path, resume->balance_len, err)
                : ibrt_csv_open_resumable(&R->bt, R->path, bh, err);
    free(bh);
    if (st == IBRT_OK)
        R->bt_open = true;
    return st;
}

/* docs/theory.md §6 on a Hadamard-type pair: one step maps chi_i to chi_i (1 -
 * eta^2 r_i^2), so log |chi_i(0) / chi_i(T)| = -sum_t log(1 - eta^2 r_t^2),
 * which is sum_t eta^2 r_t^2 to leading order.  Compared over the indices
 * where the predicted contraction exceeds 0.01 (below that, rounding of
 * chi = (u^2 - v^2)/2 competes with the signal). */
static void pair_contraction(run_state *R, const ibrt_model *m)
{
    const char *sfx = m->suffix;
    double med, mn, mx, *meas = R->c0, *pred = R->c1, *rat = R->pr;
    size_t n = 0;
    for (long i = 0; i < m->nbal; i++)
        if (R->contr[i] > 0.01 && R->chi[i] != 0 && R->chi0[i] != 0) {
            meas[n] = log(fabs(R->chi0[i] / R->chi[i]));
            pred[n] = R->contr[i];
            rat[n] = meas[n] / pred[n];
            n++;
        }
    put(R, "chi_contraction_indices", sfx, (double)n);
    if (n == 0)
        return;
    ibrt_stats_median_min_max(meas, n, &med, &mn, &mx);
    put(R, "chi_contraction_measured_median", sfx, med);
    ibrt_stats_median_min_max(pred, n, &med, &mn, &mx);
    put(R, "chi_contraction_predicted_median", sfx, med);
    ibrt_stats_median_min_max(rat, n, &med, &mn, &mx);
    put(R, "chi_contraction_ratio_median", sfx, med);
    char name[96];
    snprintf(name, sizeof name, "chi contraction = sum eta^2 r^2 (%s)", m->name);
    ibrt_checks_add(&R->checks, name, med, 1, 0.05, fabs(med - 1) <= 0.05,
                    "median over indices of log|chi(0)/chi(T)| / sum_t eta^2 r_t^2 (docs/theory.md §6)");
}

/* The balance quantities at the end of a run, family by family (metrics
 * without a tag: the first family; "_fam<id>" for the others). */
static void balance_metrics(run_state *R, const ibrt_model *m, size_t k)
{
    const char *sfx = m->suffix;
    const ibrt_problem *p = R->p;
    long nbal = m->nbal;
    double med, mn, mx;
    m->balance(m->th, R->chi, R->ratio, R->nA, R->nB);
    if (p->minibatch) {
        /* per-index second moments m_p of the blocks' gradients over 256
         * fresh minibatches, for the noise equilibrium below */
        const double *X, *Y;
        memset(R->mA, 0, sizeof(double) * (size_t)nbal);
        memset(R->mB, 0, sizeof(double) * (size_t)nbal);
        for (int q = 0; q < 256; q++) {
            long nq = p->draw_batch(&R->ds, &R->rb, &X, &Y);
            loss_grad(p, m, X, Y, nq, true, true);
            /* scratch for the gradient's chi and ratio: R->chi keeps chi(T) */
            m->balance(m->g, R->tmp, R->brow, R->c0, R->c1);
            for (long i = 0; i < nbal; i++) {
                R->mA[i] += R->c0[i] / 256;
                R->mB[i] += R->c1[i] / 256;
            }
        }
    }
    long start = 0;
    for (size_t f = 0; f < m->nfam; start += m->fams[f].count, f++) {
        const ibrt_family *fam = &m->fams[f];
        long n = fam->count;
        const double *chi = R->chi + start, *chi0 = R->chi0 + start, *nA = R->nA + start, *nB = R->nB + start;
        const double *nA0 = R->nA0 + start, *nB0 = R->nB0 + start;
        double *c0 = R->c0, *c1 = R->c1;
        char name[96], tag[24] = "";
        if (f > 0)
            snprintf(tag, sizeof tag, "_fam%d", fam->id);
#define PUT(base, v) (snprintf(name, sizeof name, "%s%s", base, tag), put(R, name, sfx, (v)))
        memcpy(R->tmp, R->ratio + start, sizeof(double) * (size_t)n);
        ibrt_stats_median_min_max(R->tmp, (size_t)n, &med, &mn, &mx);
        PUT("ratio_median", med);
        PUT("ratio_min", mn);
        PUT("ratio_max", mx);
        for (long i = 0; i < n; i++) {
            c0[i] = fabs(chi0[i]);
            c1[i] = fabs(chi[i]);
        }
        ibrt_stats_median_min_max(c0, (size_t)n, &med, &mn, &mx);
        PUT("chi_abs_median_start", med);
        ibrt_stats_median_min_max(c1, (size_t)n, &med, &mn, &mx);
        PUT("chi_abs_median_end", med);
        /* Which mechanism (docs/theory.md §6): chi conserved while the norms
         * grow, or chi driven.  The threshold is fixed, not tuned: a
         * median relative change of chi below 5% is "conserved". */
        for (long i = 0; i < n; i++) {
            c0[i] = fabs(chi[i] - chi0[i]) / fmax(fabs(chi0[i]), 1e-12 * (nA0[i] + nB0[i]));
            c1[i] = sqrt((nA[i] + nB[i]) / (nA0[i] + nB0[i]));
        }
        double rel, growth;
        ibrt_stats_median_min_max(c0, (size_t)n, &rel, &mn, &mx);
        ibrt_stats_median_min_max(c1, (size_t)n, &growth, &mn, &mx);
        PUT("chi_rel_change_median", rel);
        PUT("norm_growth_median", growth);
        if (f == 0 && k < 16)
            snprintf(mechanism[k], sizeof mechanism[k], "%s", rel < 0.05 ? "conserved" : "driven");
        snprintf(name, sizeof name, "mechanism%s", tag);
        key(R, name, sfx);
        ibrt_json_str(R->j, rel < 0.05 ? (growth > 1.5 ? "conserved: chi kept its initial value while the norms grew "
                                                         "(a gradient-flow invariant, not the noise correction)"
                                                       : "conserved: chi kept its initial value")
                                       : "driven: chi moved (SGD noise at finite step size)");
        /* The three predictions of docs/theory.md §4 for the norm ratio: the log
         * det G minimiser and the dual slice (exact, from the derivation),
         * and the noise equilibrium from the measured per-block gradient
         * second moments m_p: along the orbit m_p scales as e^(-2 alpha_p
         * t), so sum_p alpha_p m_p e^(-2 alpha_p t) = 0 gives (n0/n1)* =
         * n0 alpha0 m0 / (-n1 alpha1 m1). */
        PUT("ratio_pred_logdet_min", fam->pred_logdet);
        PUT("ratio_pred_dual_slice", fam->pred_dual);
        if (p->minibatch) {
            for (long i = 0; i < n; i++)
                R->pr[i] = sqrt(nA[i] * fam->alpha0 * R->mA[start + i] / (-nB[i] * fam->alpha1 * R->mB[start + i]));
            ibrt_stats_median_min_max(R->pr, (size_t)n, &med, &mn, &mx);
            PUT("ratio_pred_noise_equilibrium", med);
        }
#undef PUT
        snprintf(name, sizeof name, "ratio_definition%s", tag);
        key(R, name, sfx);
        ibrt_json_str(R->j, fam->ratio_definition);
    }
    if (m->pair)
        pair_contraction(R, m);
}

/* The metrics of model k after training (loss: its final training loss). */
static void model_metrics(run_state *R, size_t k, double loss)
{
    const ibrt_problem *p = R->p;
    const ibrt_model *m = &p->models[k];
    const ibrt_dataset *ds = &R->ds;
    const char *sfx = m->suffix;
    const long OUT = p->out, IN = p->in, BMAX = p->bmax;
    ibrt_error err;
    put(R, "final_loss", sfx, loss);
    if (ds->n_test > 0) {
        double mse = 0;
        for (size_t s0 = 0; s0 < ds->n_test; s0 += (size_t)BMAX) {
            long nc = ds->n_test - s0 < (size_t)BMAX ? (long)(ds->n_test - s0) : BMAX;
            m->forward(m->th, ds->x_test + s0 * (size_t)IN, nc, m->tp);
            for (long s = 0; s < nc; s++)
                for (long e = 0; e < OUT; e++) {
                    double r = m->tp[m->root + (m->root_batched ? s * OUT : 0) + e] - ds->y_test[(s0 + (size_t)s) * (size_t)OUT + (size_t)e];
                    mse += r * r;
                }
        }
        put(R, "test_mse", sfx, mse / (double)(ds->n_test * (size_t)OUT));
    }
    if (m->w_size > 0) {   /* the design parameter w, as the researcher sees it */
        long n = m->w_size;
        double *w = R->w;
        if (m->w_of)
            m->w_of(m->th, w);
        else
            memcpy(w, m->th + m->w_off, sizeof(double) * (size_t)n);
        if (m->w_check) {
            double rel = m->w_check(m->th);
            ibrt_checks_add(&R->checks, "designed parameterisation: A w = product of factors", rel, 0, 1e-10,
                            rel <= 1e-10, "max |A w - a1*...*aL| / max |a1*...*aL|");
        }
        snprintf(R->path, sizeof R->path, "%s/w_%s.npy", R->o.out_dir, m->name);
        size_t shp[1] = { (size_t)n };
        if (ibrt_npy_write(R->path, w, 1, shp, &err) != IBRT_OK)
            output_failed(R, &err);
        if (ds->truth_size == (size_t)n) {
            double rec = 0, tv = 0;
            ibrt_csv wc;   /* the learned coefficients next to the truth, for plots */
            snprintf(R->path, sizeof R->path, "%s/w_%s.csv", R->o.out_dir, m->name);
            if (ibrt_csv_open(&wc, R->path, "i,w,truth", &err) == IBRT_OK) {
                for (long i = 0; i < n; i++) {
                    double row[3] = { (double)i, w[i], ds->truth[i] };
                    ibrt_csv_row(&wc, row, 3);
                }
                if (ibrt_csv_close(&wc, &err) != IBRT_OK)
                    output_failed(R, &err);
            } else
                output_failed(R, &err);
            for (long i = 0; i < n; i++) {
                rec += (w[i] - ds->truth[i]) * (w[i] - ds->truth[i]) / (double)n;
                if (i)
                    tv += fabs(w[i] - w[i - 1]);
            }
            put(R, "recon_mse", sfx, rec);
            put(R, "tv", sfx, tv);
            put(R, "fit_mse", sfx, loss);
            /* support: the indices of the largest |w_i|, as many as the truth's non-zeros */
            if (ds->nonzeros > 0 && ds->nonzeros <= 64) {
                double sup[64];
                bool *used = (bool *)R->tmp;   /* nbal or more doubles: room for n flags */
                memset(used, 0, (size_t)n);
                for (size_t q = 0; q < ds->nonzeros; q++) {
                    long best = -1;
                    for (long i = 0; i < n; i++)
                        if (!used[i] && (best < 0 || fabs(w[i]) > fabs(w[best])))
                            best = i;
                    used[best] = true;
                }
                size_t c = 0;
                for (long i = 0; i < n; i++)
                    if (used[i])
                        sup[c++] = (double)i;
                key(R, "support", sfx);
                ibrt_json_nums(R->j, sup, c);
                if (k == 0) {
                    c = 0;
                    for (long i = 0; i < n; i++)
                        if (ds->truth[i] != 0)
                            sup[c++] = (double)i;
                    ibrt_json_key(R->j, "support_true");
                    ibrt_json_nums(R->j, sup, c);
                }
            }
        }
    }
    if (p->zrows > 0) {   /* a matrix output against its ground truth */
        long r = p->zrows, c = p->zcols, ns = r < c ? r : c;
        m->forward(m->th, R->X, 1, m->tp);
        if (ibrt_linalg_svd_values((size_t)r, (size_t)c, m->tp + m->root, R->tmp, &err) == IBRT_OK) {
            key(R, "singular_values", sfx);
            ibrt_json_nums(R->j, R->tmp, (size_t)ns);
        }
        double num = 0, den = 0;
        for (long e = 0; e < OUT; e++) {
            double d = m->tp[m->root + e] - ds->truth[e];
            num += d * d;
            den += ds->truth[e] * ds->truth[e];
        }
        put(R, "relative_error", sfx, sqrt(num / den));
        snprintf(R->path, sizeof R->path, "%s/Z_%s.npy", R->o.out_dir, m->name);
        size_t shp[2] = { (size_t)r, (size_t)c };
        if (ibrt_npy_write(R->path, m->tp + m->root, 2, shp, &err) != IBRT_OK)
            output_failed(R, &err);
    }
    if (m->nbal)
        balance_metrics(R, m, k);
}

/* The size of symmetry group g's dual slice from its conserved
 * functions q: ||C||_F of a GL junction (q its upper triangle, the
 * off-diagonal entries counted twice), max |chi| of a torus. */
static double dual_slice_size(const ibrt_model *m, size_t g, const double *q)
{
    long first = g ? m->qgroups[g - 1].end : 0, r = m->qgroups[g].r;
    double s = 0;
    if (r) {
        for (long i = 0, t = first; i < r; i++)
            for (long j = i; j < r; j++, t++)
                s += (i == j ? 1 : 2) * q[t] * q[t];
        return sqrt(s);
    }
    for (long t = first; t < m->qgroups[g].end; t++)
        s = fmax(s, fabs(q[t]));
    return s;
}

/* One row of the traces: the loss, and chi and the ratio of every index
 * (the first family's median |chi| and median, min and max ratio in the
 * loss trace; every family's in the balance trace). */
static void record(run_state *R, const ibrt_model *m, long step, double loss)
{
    double *row = R->trow;
    row[0] = (double)step;
    row[1] = loss;
    size_t nrow = m->nbal ? 6 : 2;
    if (m->nquad) {   /* the dual slices' sizes after the balance columns */
        m->quad(m->th, R->qrec, NULL);
        for (size_t g = 0; g < m->nqgroups; g++)
            row[nrow + g] = dual_slice_size(m, g, R->qrec);
    }
    nrow += m->nquad ? m->nqgroups : 0;
    if (R->sv_open) {   /* the output matrix's singular values (its tape is scratch) */
        const ibrt_problem *p = R->p;
        long r = p->zrows, c = p->zcols, ns = r < c ? r : c;
        m->forward(m->th, R->X, 1, m->tp);
        memcpy(R->svd_a, m->tp + m->root, sizeof(double) * (size_t)(r * c));
        R->svd_s[0] = (double)step;
        /* the row-major r x c matrix read column-major is its transpose,
         * with the same singular values: no transposed copy (which
         * LAPACKE's row-major path would allocate) */
        if (LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'N', 'N', (lapack_int)c, (lapack_int)r, R->svd_a, (lapack_int)c,
                                R->svd_s + 1, NULL, 1, NULL, 1, R->svd_work, R->svd_lwork) != 0)
            for (long q = 1; q <= ns; q++)
                R->svd_s[q] = NAN;
        ibrt_csv_row(&R->sv, R->svd_s, (size_t)(ns + 1));
    }
    if (!m->nbal) {
        ibrt_csv_row(&R->tr, row, nrow);
        return;
    }
    long nbal = m->nbal, n0 = m->fams[0].count;   /* the loss trace summarises the first family */
    double mn, mx;
    m->balance(m->th, R->chi, R->ratio, NULL, NULL);
    for (long i = 0; i < n0; i++)
        R->tmp[i] = fabs(R->chi[i]);
    ibrt_stats_median_min_max(R->tmp, (size_t)n0, &row[2], &mn, &mx);
    memcpy(R->tmp, R->ratio, sizeof(double) * (size_t)n0);
    ibrt_stats_median_min_max(R->tmp, (size_t)n0, &row[3], &row[4], &row[5]);
    ibrt_csv_row(&R->tr, row, nrow);
    R->brow[0] = (double)step;
    memcpy(R->brow + 1, R->chi, sizeof(double) * (size_t)nbal);
    memcpy(R->brow + 1 + nbal, R->ratio, sizeof(double) * (size_t)nbal);
    ibrt_csv_row(&R->bt, R->brow, (size_t)(1 + 2 * nbal));
}

/* The two loops of every step over all parameters, in blocks of eight
 * (IBRT_UNROLL) so that GCC's -O2 vectorises them; the arithmetic per
 * entry is the same. */

/* th -= lr g: plain SGD */
static void sgd_step(double *restrict th, const double *restrict g, long n, double lr)
{
    long e = 0;
    for (; e + 8 <= n; e += 8)
        IBRT_UNROLL
        for (long l = 0; l < 8; l++)
            th[e + l] -= lr * g[e + l];
    for (; e < n; e++)
        th[e] -= lr * g[e];
}

/* contr_i += lr^2 (gu_i^2 + gv_i^2) / (u_i^2 + v_i^2), which is lr^2 r_i^2 for
 * z_i = u_i v_i with residual r_i = dL/dz_i (gu = r v, gv = r u) */
static void pair_step(double *restrict contr, const double *u, const double *v, const double *gu, const double *gv,
                      long n, double lr)
{
    long i = 0;
    for (; i + 8 <= n; i += 8)
        IBRT_UNROLL
        for (long l = 0; l < 8; l++)
            contr[i + l] += lr * lr * (gu[i + l] * gu[i + l] + gv[i + l] * gv[i + l]) /
                            (u[i + l] * u[i + l] + v[i + l] * v[i + l]);
    for (; i < n; i++)
        contr[i] += lr * lr * (gu[i] * gu[i] + gv[i] * gv[i]) / (u[i] * u[i] + v[i] * v[i]);
}

/* acc_i += lr^2 q_i(g), accabs_i += lr^2 |q_i(g)| */
static void quad_step(run_state *R, const ibrt_model *m)
{
    double l2 = m->lr * m->lr;
    m->quad(m->g, R->qg, NULL);
    for (long i = 0; i < m->nquad; i++) {
        R->qacc[i] += l2 * R->qg[i];
        R->qaccabs[i] += l2 * fabs(R->qg[i]);
    }
}

/* How far a GL(r) junction is from its dual slice C = 0 at the end of a
 * run: ||C||_F relative to tr A'A + tr B B' (the sum of the absolute
 * terms of C's diagonal, R->qa), 0 exactly on the slice and at most 1;
 * and the extreme eigenvalues of C (allocated here, after training). */
static void junction_balance(run_state *R, const ibrt_model *m, size_t g, long first, long r, double fro)
{
    double tr = 0, *C = malloc(sizeof(double) * (size_t)(r * r + r)), lo = NAN, hi = NAN;
    for (long i = 0, t = first; i < r; i++)
        for (long j = i; j < r; j++, t++) {
            if (i == j)
                tr += R->qa[t];
            if (C)
                C[i * r + j] = C[j * r + i] = R->qT[t];
        }
    if (C && LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)r, C, (lapack_int)r, C + r * r) == 0) {
        lo = C[r * r];
        hi = C[r * r + r - 1];
    }
    free(C);
    char key_[48];
    snprintf(key_, sizeof key_, "C_fro_rel_end_group%zu", g + 1);
    put(R, key_, m->suffix, tr > 0 ? fro / tr : NAN);
    snprintf(key_, sizeof key_, "C_eig_min_end_group%zu", g + 1);
    put(R, key_, m->suffix, lo);
    snprintf(key_, sizeof key_, "C_eig_max_end_group%zu", g + 1);
    put(R, key_, m->suffix, hi);
}

/* docs/theory.md §9: for every group, max over its functions of
 * |q_i(th_T) - q_i(th_0) - sum_t lr^2 q_i(g_t)| / D_i, D_i the larger of
 * sum_t lr^2 |q_i(g_t)| (the path of the predicted change) and qa_i, the
 * size of q_i's terms at the end: q_i is a difference of such terms, and
 * every update and gradient rounds at that scale (an index whose
 * residual has converged to 1e-6 drifts by less than the rounding of its
 * own u^2 - v^2).  The identity is exact, so the tolerance is 1e-9: a
 * wrong generator or gradient breaks invariance, K th . g != 0, and
 * every step then adds lr K th . g to the error. */
static void finite_step_identity(run_state *R, const ibrt_model *m, bool check)
{
    m->quad(m->th, R->qT, R->qa);
    long begin = 0;
    double all = 0;
    for (size_t g = 0; g < m->nqgroups; g++) {
        double worst = 0, drift = 0;
        for (long i = begin; i < m->qgroups[g].end; i++) {
            double d = fmax(R->qaccabs[i], R->qa[i]);
            double e = fabs(R->qT[i] - R->q0[i] - R->qacc[i]);
            worst = fmax(worst, d > 0 ? e / d : e);
            drift = fmax(drift, fabs(R->qT[i] - R->q0[i]));
        }
        begin = m->qgroups[g].end;
        all = fmax(all, worst);
        char name[160];
        snprintf(name, sizeof name, "finite-step identity, group %zu (%s)", g + 1, m->name);
        if (check)
            ibrt_checks_add(&R->checks, name, worst, 0, 1e-9, worst <= 1e-9,
                            "max |q(T) - q(0) - sum lr^2 q(g)| / max(sum lr^2 |q(g)|, |terms of q|) over the group's "
                            "conserved functions (docs/theory.md §9)");
        char key_[48];
        snprintf(key_, sizeof key_, "conserved_drift_max_group%zu", g + 1);
        put(R, key_, m->suffix, drift);
        /* the size of the dual slice at both ends */
        long first = g ? m->qgroups[g - 1].end : 0, r = m->qgroups[g].r;
        double s0 = dual_slice_size(m, g, R->q0), sT = dual_slice_size(m, g, R->qT);
        snprintf(key_, sizeof key_, r ? "C_fro_start_group%zu" : "chi_abs_max_start_group%zu", g + 1);
        put(R, key_, m->suffix, s0);
        snprintf(key_, sizeof key_, r ? "C_fro_end_group%zu" : "chi_abs_max_end_group%zu", g + 1);
        put(R, key_, m->suffix, sT);
        if (r)
            junction_balance(R, m, g, first, r, sT);
    }
    if (check)
        put(R, "finite_step_identity_max", m->suffix, all);
}

/* log det of the Gram matrix of the model's torus generators, jointly
 * and as the sum of its per-index blocks (ibrt_model.gens).  At the end
 * of a run, so the buffers are allocated here; a model whose generator
 * matrix would exceed 64 MiB is left out (metrics NaN). */
static void joint_logdet(run_state *R, const ibrt_model *m)
{
    long n = m->ngen, D = m->nth;
    double joint = NAN, blocks = NAN;
    double *xi = n * D <= (8L << 20) ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    double *G = xi ? calloc((size_t)(n * n), sizeof(double)) : NULL;
    if (G) {
        m->gens(m->th, xi);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)D, 1.0, xi, (int)D, 0.0, G, (int)n);
        blocks = 0;
        long row = 0;
        for (size_t f = 0; f < m->ngenfam && !isnan(blocks); f++)
            for (long i = 0; i < m->genfam[f].count; i++, row += m->genfam[f].k) {
                int k = m->genfam[f].k;
                double B[36];
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++)
                        B[a * k + b] = G[(row + (a > b ? a : b)) * n + row + (a > b ? b : a)];
                if (k > 6 || LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, B, k) != 0) {
                    blocks = NAN;
                    break;
                }
                for (int a = 0; a < k; a++)
                    blocks += 2 * log(B[a * k + a]);
            }
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, G, (lapack_int)n) == 0) {
            joint = 0;
            for (long a = 0; a < n; a++)
                joint += 2 * log(G[a * n + a]);
        }
    }
    free(xi);
    free(G);
    put(R, "logdet_G_joint_end", m->suffix, joint);
    put(R, "logdet_G_blocks_end", m->suffix, blocks);
    if (!m->gen_coupled && !isnan(joint)) {
        double e = fabs(joint - blocks) / fmax(1, fabs(joint));
        char name[96];
        snprintf(name, sizeof name, "joint log det G = sum over families (%s)", m->name);
        ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                        "no family shares a parameter: the joint Gram is block diagonal (docs/theory.md §2)");
    }
}

/* log det of the Gram matrix of every generator of the model's symmetry
 * groups at once (ibrt_model.symgroups: torus families outside a
 * junction and the r^2 generators of each GL junction), and the sum of
 * the groups' own log dets, at the end of a run (buffers allocated here;
 * a generator matrix over 64 MiB is left out, metrics NaN).  Without
 * coupling the Gram matrix is block diagonal and the two agree (checked);
 * along a chain the blocks of adjacent junctions overlap and only the
 * joint one is the model's (docs/theory.md §8).  One group alone has nothing
 * to check. */
static void group_logdet(run_state *R, const ibrt_model *m)
{
    long n = 0, D = m->nth, ntor = m->ngen, *first = calloc(m->ngenfam + 1, sizeof(long));
    for (size_t f = 0; first && f < m->ngenfam; f++)
        first[f + 1] = first[f] + m->genfam[f].count * m->genfam[f].k;
    bool coupled = false;
    for (size_t g = 0; g < m->nsymgroups; g++) {
        const ibrt_symgroup *s = &m->symgroups[g];
        n += s->family >= 0 ? m->genfam[s->family].count * m->genfam[s->family].k : s->r * s->r;
        for (size_t h = 0; h < g; h++)
            coupled |= m->symgroups[h].component == s->component;
    }
    double joint = NAN, sum = NAN;
    bool fits = first && (n + ntor) * D <= (8L << 20);
    double *xi = fits ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    double *tor = xi && ntor ? calloc((size_t)(ntor * D), sizeof(double)) : NULL;
    double *G = xi ? calloc((size_t)(n * n), sizeof(double)) : NULL;
    if (G && (tor || !ntor)) {
        if (ntor)
            m->gens(m->th, tor);
        long row = 0;
        for (size_t g = 0; g < m->nsymgroups; g++) {
            const ibrt_symgroup *s = &m->symgroups[g];
            if (s->family >= 0) {
                long rows = m->genfam[s->family].count * m->genfam[s->family].k;
                memcpy(xi + row * D, tor + first[s->family] * D, sizeof(double) * (size_t)(rows * D));
                row += rows;
            } else {
                ibrt_gl_gens(m->th, &s->a, &s->b, s->r, D, xi + row * D);
                row += s->r * s->r;
            }
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)D, 1.0, xi, (int)D, 0.0, G, (int)n);
        /* each group's own block first (a copy), then the whole */
        sum = 0;
        row = 0;
        for (size_t g = 0; g < m->nsymgroups && !isnan(sum); g++) {
            const ibrt_symgroup *s = &m->symgroups[g];
            long b = s->family >= 0 ? m->genfam[s->family].count * m->genfam[s->family].k : s->r * s->r;
            double *B = malloc(sizeof(double) * (size_t)(b * b));
            for (long i = 0; B && i < b; i++)
                memcpy(B + i * b, G + (row + i) * n + row, sizeof(double) * (size_t)(i + 1));
            if (B && LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)b, B, (lapack_int)b) == 0)
                for (long i = 0; i < b; i++)
                    sum += 2 * log(B[i * b + i]);
            else
                sum = NAN;
            free(B);
            row += b;
        }
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, G, (lapack_int)n) == 0) {
            joint = 0;
            for (long a = 0; a < n; a++)
                joint += 2 * log(G[a * n + a]);
        }
    }
    free(first);
    free(xi);
    free(tor);
    free(G);
    put(R, "logdet_G_group_end", m->suffix, joint);
    put(R, "logdet_G_group_sum_end", m->suffix, sum);
    if (m->nsymgroups > 1 && !coupled && !isnan(joint) && !isnan(sum)) {
        double e = fabs(joint - sum) / fmax(1, fabs(joint));
        char name[96];
        snprintf(name, sizeof name, "whole-group log det G = sum over groups (%s)", m->name);
        ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                        "no two symmetry groups share a parameter: the Gram matrix of all their generators is block "
                        "diagonal (docs/theory.md §8)");
    }
}

/* For every coupled component whose joint det G the derivation expanded
 * (ibrt_model.joints, docs/theory.md §8): the log of the exact polynomial
 * at the current parameters against the Cholesky log det of the Gram of
 * the component's torus generators (m->gens), 1e-9 relative.  The buffers
 * are allocated here, at the end of a run; a generator matrix over 64 MiB
 * is left out (no row). */
static void joint_poly_checks(run_state *R, const ibrt_model *m)
{
    long n = m->ngen, D = m->nth;
    double *xi = n * D <= (8L << 20) ? calloc((size_t)(n * D), sizeof(double)) : NULL;
    long *first = calloc(m->ngenfam + 1, sizeof(long)), *rows = calloc((size_t)n + 1, sizeof(long));
    double *G = calloc((size_t)(n * n) + 1, sizeof(double));
    if (xi && first && rows && G) {
        m->gens(m->th, xi);
        for (size_t f = 0; f < m->ngenfam; f++)
            first[f + 1] = first[f] + m->genfam[f].count * m->genfam[f].k;
        for (size_t j = 0; j < m->njoints; j++) {
            const ibrt_jointpoly *jp = &m->joints[j];
            long k = 0;
            for (size_t f = 0; f < jp->nfams; f++)
                for (long r = first[jp->fams[f]]; r < first[jp->fams[f] + 1]; r++)
                    rows[k++] = r;
            for (long a = 0; a < k; a++)
                for (long b = 0; b <= a; b++)
                    G[a * k + b] = cblas_ddot((int)D, xi + rows[a] * D, 1, xi + rows[b] * D, 1);
            double ld = NAN, p = jp->det(m->th);
            if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)k, G, (lapack_int)k) == 0) {
                ld = 0;
                for (long a = 0; a < k; a++)
                    ld += 2 * log(G[a * k + a]);
            }
            double e = isnan(ld) || !(p > 0) ? INFINITY : fabs(ld - log(p)) / fmax(1, fabs(ld));
            char name[128];
            snprintf(name, sizeof name, "log det G = derived polynomial, coupled groups %s (%s)", jp->groups, m->name);
            ibrt_checks_add(&R->checks, name, e, 0, 1e-9, e <= 1e-9,
                            "Cholesky of the Gram of the groups' generators vs log of the exact Cauchy-Binet "
                            "polynomial over the cells, relative in log space (docs/theory.md §8)");
        }
    }
    free(xi);
    free(first);
    free(rows);
    free(G);
}

/* The stability probe of model k at its initial point (the batch X, Y
 * of the checks at initialisation) and, for lr = auto, the choice of its
 * rate by trial runs from that point with the batch stream R->rb (a
 * copy; ibrt_stability.h).  Printed (stderr) and, when record, written to
 * results.json (a resumed run has them there already); a warning names
 * the spec's lr line when the rate exceeds 2 / lambda_max. */
static void lr_setup(run_state *R, ibrt_model *m, size_t k, const double *X, const double *Y, long nb, bool record)
{
    const ibrt_problem *p = R->p;
    ibrt_stability st;
    ibrt_rng rp;
    ibrt_rng_fork(&rp, R->o.seed, 3000 + k);
    double t0 = ibrt_time_now();
    ibrt_stability_probe(p, m, X, Y, nb, &rp, R->sw, &st);
    const char *batch = p->minibatch ? "on the first batch, " : "";
    if (!R->o.quiet) {
        fprintf(stderr, "stability (%s): lambda_max ~ %.3g at init (power iteration %s%d Hessian-vector products%s, "
                "%s to %.1e)", m->name, st.lambda_max, batch, st.iterations, st.shifted ? ", shifted" : "",
                st.converged ? "converged" : "NOT converged", st.change);
        if (isfinite(st.bound))
            fprintf(stderr, ", so lr < 2/lambda = %.3g for full-batch GD\n", st.bound);
        else
            fprintf(stderr, ": no positive curvature at init, no bound\n");
    }
    fixed_cost(R, "stability probe", m->name, ibrt_time_now() - t0);
    if (record) {
        put(R, "stability_lambda_max", m->suffix, st.lambda_max);
        put(R, "stability_lr_bound", m->suffix, st.bound);
        key(R, "stability", m->suffix);
        ibrt_json_obj_begin(R->j);
        ibrt_json_key(R->j, "method");
        ibrt_json_str(R->j, p->minibatch ? "power iteration on central differences of the gradient, first batch"
                                         : "power iteration on central differences of the gradient, full batch");
        ibrt_json_key(R->j, "hessian_vector_products");
        ibrt_json_int(R->j, st.iterations);
        ibrt_json_key(R->j, "converged");
        ibrt_json_bool(R->j, st.converged);
        ibrt_json_key(R->j, "relative_change");
        ibrt_json_num(R->j, st.change);
        ibrt_json_key(R->j, "fd_step");
        ibrt_json_num(R->j, st.fd_step);
        ibrt_json_key(R->j, "dominant_eigenvalue");
        ibrt_json_num(R->j, st.mu);
        ibrt_json_obj_end(R->j);
    }
    if (m->lr_auto) {
        ibrt_lr_grid g;
        t0 = ibrt_time_now();
        ibrt_stability_select_lr(p, m, &R->ds, &R->rb, m->lr_lo, m->lr_hi, m->lr_auto_steps, R->o.steps,
                                 R->o.max_growth, R->sw, &g);
        m->lr = g.best >= 0 ? g.lr[g.best] : g.lr[0];
        double rung[IBRT_LR_RUNG_MAX], reached[IBRT_LR_GRID_MAX];
        for (int r = 0; r < g.rungs; r++)
            rung[r] = (double)g.rung[r];
        for (int c = 0; c < g.n; c++)
            reached[c] = (double)g.reached[c];
        if (!R->o.quiet) {
            fprintf(stderr, "lr = auto (%s): successive halving of %d rates from the initial point, rungs of", m->name,
                    g.n);
            for (int r = 0; r < g.rungs; r++)
                fprintf(stderr, "%s %d x %ld", r ? "," : "", g.entrants[r], g.rung[r]);
            fprintf(stderr, " steps (%ld trial steps, %.3g x the run), scored by the %s:", g.total,
                    (double)g.total / (double)R->o.steps, g.batches ? "mean loss of the last tenth" : "final loss");
            for (int c = 0; c < g.n; c++)
                fprintf(stderr, "%s %.0e %.3g at %ld", c ? "," : "", g.lr[c], g.score[c], g.reached[c]);
            fprintf(stderr, " -> lr = %g\n", m->lr);
        }
        if (g.best < 0)
            fprintf(stderr, "warning: model '%s': lr = auto%s%s%s: every rate from %g to %g diverged within %ld steps; "
                    "training with the lowest (lower the bounds: lr = auto(%g, %g))\n", m->name,
                    m->lr_where ? " (" : "", m->lr_where ? m->lr_where : "", m->lr_where ? ")" : "", m->lr_lo,
                    m->lr_hi, g.rung[0], m->lr_lo / 1e4, m->lr_lo);
        fixed_cost(R, "lr = auto trial runs", m->name, ibrt_time_now() - t0);
        if (record) {
            put(R, "lr_auto_chosen", m->suffix, m->lr);
            key(R, "lr_auto", m->suffix);
            ibrt_json_obj_begin(R->j);
            ibrt_json_key(R->j, "bounds");
            double b[2] = { m->lr_lo, m->lr_hi };
            ibrt_json_nums(R->j, b, 2);
            ibrt_json_key(R->j, "method");
            ibrt_json_str(R->j, "successive halving: the better half goes on to twice the steps");
            ibrt_json_key(R->j, "rungs");   /* each rung's trial length */
            ibrt_json_nums(R->j, rung, (size_t)g.rungs);
            ibrt_json_key(R->j, "trial_steps_total");
            ibrt_json_int(R->j, g.total);
            ibrt_json_key(R->j, "score");
            ibrt_json_str(R->j, g.batches ? "mean batch loss of the last tenth of the trial" : "final training loss");
            ibrt_json_key(R->j, "grid");
            ibrt_json_nums(R->j, g.lr, (size_t)g.n);
            ibrt_json_key(R->j, "scores");   /* null: the trial diverged */
            ibrt_json_nums(R->j, g.score, (size_t)g.n);
            ibrt_json_key(R->j, "reached");   /* the trial length of each rate's score */
            ibrt_json_nums(R->j, reached, (size_t)g.n);
            ibrt_json_key(R->j, "chosen");
            ibrt_json_num(R->j, m->lr);
            ibrt_json_obj_end(R->j);
        }
    }
    if (m->lr > st.bound)
        fprintf(stderr, "warning: model '%s': lr = %g%s%s%s%s is above the stability bound 2/lambda_max = %.3g at the "
                "initial point: full-batch gradient descent moves away from it along the top eigenvector; %s\n",
                m->name, m->lr, m->lr_auto ? ", chosen by lr = auto" : "", m->lr_where ? " (" : "",
                m->lr_where ? m->lr_where : "", m->lr_where ? ")" : "", st.bound,
                m->lr_auto ? "its trial run did not diverge, so the curvature falls as it trains"
                           : "lower it below the bound or write lr = auto");
}

/* Model k from its initialisation (or from the checkpoint ck) to its
 * metrics.  0, or the exit status that ends the run. */
static int train_model(run_state *R, size_t k, const ckpt_head *ck, const unsigned char *ckdata)
{
    const ibrt_problem *p = R->p;
    ibrt_model *m = &p->models[k];
    const ibrt_dataset *ds = &R->ds;
    ibrt_error err;
    ibrt_rng ri;
    char when[64];
    const double *X = NULL, *Y;
    long nb, start = 0;
    bool resumed = ck && ck->model == (long)k && ck->step >= 0;
    size_t nchecks = R->checks.n;
    R->k = (long)k;
    R->loss = 0;
    R->loss0 = NAN;
    ibrt_rng_fork(&ri, R->o.seed, 2 + 2 * k);      /* this model's initialisation */
    ibrt_rng_fork(&R->rb, R->o.seed, 3 + 2 * k);   /* its batches */
    ibrt_rng_fork(&R->rs, R->o.seed, 1000 + k);    /* its structural checks */
    m->init(m->th, &ri);
    if (!resumed) {
        nb = p->draw_batch(ds, &R->rb, &X, &Y);
        snprintf(when, sizeof when, "%s, init", m->name);
        double ts0 = ibrt_time_now();
        m->structure(X, &R->rs, &R->checks, when);
        fixed_cost(R, "structure checks at init", m->name, ibrt_time_now() - ts0);
        long skipped, checked;
        bool sampled;
        double t0 = ibrt_time_now();
        double gerr = gradient_check(R, m, X, Y, nb, &skipped, &checked, &sampled);
        bool gok = gerr <= p->gradient_tol && checked > 0 && skipped * 10 < checked;
        char name[96], detail[200], what[96];
        if (sampled)
            snprintf(what, sizeof what, "%d random entries of %ld and %d random directions", GC_ENTRIES, m->nth,
                     GC_DIRS);
        else
            snprintf(what, sizeof what, "all %ld entries", m->nth);
        snprintf(name, sizeof name, "gradient vs central differences (%s)", m->name);
        snprintf(detail, sizeof detail, "max |fd - analytic| / max |analytic| over %s; %ld at a kink, skipped", what,
                 skipped);
        ibrt_checks_add(&R->checks, name, gerr, 0, p->gradient_tol, gok, detail);
        fixed_cost(R, "gradient check", m->name, ibrt_time_now() - t0);
        if (R->o.gradcheck) {   /* the initial point only, no training */
            printf("gradcheck %-10s max |fd - analytic| / max |analytic| = %.3g (tolerance %.3g) over %s, "
                   "%ld at a kink skipped: %s\n", m->name, gerr, p->gradient_tol, what, skipped,
                   gok ? "PASS" : "FAIL");
            R->gc_failed = R->gc_failed || !gok;
            return 0;
        }
        if (stop_signal) {
            /* a signal during the checks at initialisation (long for a
             * large model): the run stops before this model, without
             * them; a resume starts the model over */
            R->checks.n = nchecks;
            R->step = -1;
            R->X = p->bx;
            return stop_run(R, 128 + stop_signal);
        }
        /* after the stop above: a run stopped there starts the model over,
         * and must not find its stability metrics already written */
        lr_setup(R, m, k, X, Y, nb, true);
        if (m->nbal) {
            m->balance(m->th, R->chi, R->ratio, R->nA0, R->nB0);
            memcpy(R->chi0, R->chi, sizeof(double) * (size_t)m->nbal);
            memset(R->contr, 0, sizeof(double) * (size_t)m->nbal);
        }
        if (m->nquad) {
            m->quad(m->th, R->q0, NULL);
            memset(R->qacc, 0, sizeof(double) * (size_t)m->nquad);
            memset(R->qaccabs, 0, sizeof(double) * (size_t)m->nquad);
        }
    } else {
        if (m->lr_auto) {   /* the same choice again: the same batch of the checks and the same stream */
            ibrt_rng_fork(&R->rb, R->o.seed, 3 + 2 * k);
            nb = p->draw_batch(ds, &R->rb, &X, &Y);
            lr_setup(R, m, k, X, Y, nb, false);
        }
        /* the payload after the head, checks and metrics (ckpt_write's order) */
        const unsigned char *q = ckdata + sizeof *ck + sizeof(ibrt_checks) + sizeof(ibrt_metrics);
        size_t nbx = (size_t)(p->bmax * p->in), nbal = (size_t)m->nbal;
        memcpy(m->th, q, sizeof(double) * (size_t)m->nth);
        q += sizeof(double) * (size_t)m->nth;
        memcpy(p->bx, q, sizeof(double) * nbx);
        q += sizeof(double) * nbx;
        if (p->bmask) {
            memcpy(p->bmask, q, sizeof(double) * (size_t)p->out);
            q += sizeof(double) * (size_t)p->out;
        }
        memcpy(R->chi0, q, sizeof(double) * nbal);
        memcpy(R->nA0, q + sizeof(double) * nbal, sizeof(double) * nbal);
        memcpy(R->nB0, q + 2 * sizeof(double) * nbal, sizeof(double) * nbal);
        memcpy(R->contr, q + 3 * sizeof(double) * nbal, sizeof(double) * nbal);
        q += 4 * sizeof(double) * nbal;
        size_t nq = (size_t)m->nquad;
        memcpy(R->q0, q, sizeof(double) * nq);
        memcpy(R->qacc, q + sizeof(double) * nq, sizeof(double) * nq);
        memcpy(R->qaccabs, q + 2 * sizeof(double) * nq, sizeof(double) * nq);
        R->rb = ck->rb;
        R->rs = ck->rs;
        R->loss = ck->loss;
        R->loss0 = ck->loss0;
        X = ck->x_is_buffer ? p->bx : ds->x_train;
        start = ck->step;
    }
    if (open_traces(R, m, resumed ? ck : NULL, &err) != IBRT_OK) {
        errmsg(&err);
        return 1;
    }
    long steps = R->o.steps, every = p->record_every;   /* trace interval, scaled to --steps */
    if (steps != p->default_steps)
        every = steps / 200 > 0 ? steps / 200 : 1;
    ibrt_progress pg;
    ibrt_progress_begin(&pg, m->name, steps, R->o.quiet);
    double ts = ibrt_time_now(), loss = R->loss;
    R->X = X;
    for (long step = start; step < steps; step++) {
        nb = p->draw_batch(ds, &R->rb, &X, &Y);
        loss = loss_grad(p, m, X, Y, nb, true, true);
        if (step == 0)
            R->loss0 = loss;
        if (!isfinite(loss) || (R->loss0 > 0 && loss > R->o.max_growth * R->loss0)) {
            ibrt_progress_end(&pg);
            if (step == 0)   /* no step taken yet: the learning rate played no part */
                fprintf(stderr, "error: model '%s': the loss at the initial parameters is %g, before any step: not "
                        "the learning rate; look for values too large in the data or the initialisation\n",
                        m->name, loss);
            else if (isfinite(loss))
                fprintf(stderr, "error: model '%s' diverged at step %ld: loss %g, more than %g times its first value "
                        "%g; the learning rate %g is likely too large: lower it in the spec\n", m->name, step, loss,
                        R->o.max_growth, R->loss0, m->lr);
            else
                fprintf(stderr, "error: model '%s' diverged at step %ld: the loss is %g (its first value was %g); "
                        "the learning rate %g is likely too large: lower it in the spec\n", m->name, step, loss,
                        R->loss0, m->lr);
            R->step = step;
            record(R, m, step, loss);   /* the step that diverged, at the parameters that gave it */
            close_traces(R);
            write_params(R, m);
            char name[96];
            snprintf(name, sizeof name, "training stays finite (%s)", m->name);
            ibrt_checks_add(&R->checks, name, loss, R->loss0, R->o.max_growth, false,
                            "loss finite and below max-growth times the first loss");
            write_partial(R, "diverged", "diverged", (double)step, loss);
            /* an earlier checkpoint of this run would resume into the same divergence */
            snprintf(R->path, sizeof R->path, "%s/checkpoint.bin", R->o.out_dir);
            unlink(R->path);
            return 3;
        }
        if (R->o.snapshots && step % R->o.snapshots == 0)
            write_snapshot(R, m, step, true);
        if (m->pair)   /* eta^2 r_i^2 of this step, before it moves u_i, v_i */
            pair_step(R->contr, m->th + m->pair_off0, m->th + m->pair_off1, m->g + m->pair_off0, m->g + m->pair_off1,
                      m->nbal, m->lr);
        if (m->nquad)   /* lr^2 q(g): this step's change of every conserved quadratic */
            quad_step(R, m);
        sgd_step(m->th, m->g, m->nth, m->lr);
        if (step % every == 0 || step == steps - 1) {
            R->X = X;
            record(R, m, step, loss);
        }
        ibrt_progress_update(&pg, step + 1, loss);
        R->steps_run++;
        bool stop = stop_signal || (R->o.stop_after && R->steps_run >= R->o.stop_after);
        if (stop || (R->o.checkpoint_every && (step + 1) % R->o.checkpoint_every == 0)) {
            R->step = step + 1;
            R->loss = loss;
            R->X = X;
            if (stop) {
                ibrt_progress_end(&pg);
                return stop_run(R, stop_signal ? 128 + stop_signal : 75);
            }
            if (ckpt_write(R, &err) != IBRT_OK)
                return stop_output_error(R, &err);
        }
    }
    R->X = X;
    if (R->o.snapshots)
        write_snapshot(R, m, steps, false);
    snprintf(when, sizeof when, "%s, end", m->name);
    double te0 = ibrt_time_now();
    m->structure(X, &R->rs, &R->checks, when);
    if (m->nquad)
        finite_step_identity(R, m, true);
    if (m->ngen)
        joint_logdet(R, m);
    if (m->nsymgroups)
        group_logdet(R, m);
    if (m->njoints)
        joint_poly_checks(R, m);
    ibrt_progress_end(&pg);
    double rate = (double)(steps - start) / (ibrt_time_now() - ts + 1e-12);
    close_traces(R);
    write_params(R, m);
    if (!R->o.quiet)
        printf("%-10s %14.6g %14.0f\n", m->name, loss, rate);
    model_metrics(R, k, loss);
    fixed_cost(R, "end-of-run checks and metrics", m->name, ibrt_time_now() - te0);
    return 0;
}

static void free_run(run_state *R)
{
    double *bufs[] = { R->chi, R->ratio, R->nA0, R->nB0, R->nA, R->nB, R->mA, R->mB, R->pr, R->chi0, R->tmp,
                       R->brow, R->c0, R->c1, R->ga, R->w, R->contr, R->svd_a, R->svd_s, R->svd_work,
                       R->q0, R->qT, R->qg, R->qacc, R->qaccabs, R->qa, R->qrec, R->trow, R->sw };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    ibrt_json_free(R->j);
    ibrt_dataset_free(&R->ds);
}

/* The run's buffers, sized for the largest model, allocated before any
 * step; false when memory runs out (free_run frees what was allocated). */
static bool run_alloc(run_state *R)
{
    const ibrt_problem *p = R->p;
    /* buffers for the largest model, allocated before any step */
    long nbal = 1, nth = 1, wmax = 1, nquad = 1, ngroups = 0;
    for (size_t k = 0; k < p->nmodels; k++) {
        ngroups = (long)p->models[k].nqgroups > ngroups ? (long)p->models[k].nqgroups : ngroups;
        nquad = p->models[k].nquad + 1 > nquad ? p->models[k].nquad + 1 : nquad;
        nbal = p->models[k].nbal + 1 > nbal ? p->models[k].nbal + 1 : nbal;
        nth = p->models[k].nth > nth ? p->models[k].nth : nth;
        wmax = p->models[k].w_size > wmax ? p->models[k].w_size : wmax;
    }
    long ntmp = nbal + wmax + (p->zrows > 0 ? p->zrows + p->zcols : 0);
    double **bufs[] = { &R->chi, &R->ratio, &R->nA0, &R->nB0, &R->nA, &R->nB, &R->mA, &R->mB, &R->pr, &R->chi0,
                        &R->c0, &R->c1, &R->contr };
    bool oom = false;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        oom |= !(*bufs[i] = calloc((size_t)nbal, sizeof(double)));
    double **qbufs[] = { &R->q0, &R->qT, &R->qg, &R->qacc, &R->qaccabs, &R->qa, &R->qrec };
    for (size_t i = 0; i < sizeof qbufs / sizeof *qbufs; i++)
        oom |= !(*qbufs[i] = calloc((size_t)nquad, sizeof(double)));
    oom |= !(R->tmp = calloc((size_t)ntmp, sizeof(double)));
    oom |= !(R->brow = calloc((size_t)(2 * nbal + 1), sizeof(double)));
    oom |= !(R->trow = calloc((size_t)(6 + ngroups), sizeof(double)));
    oom |= !(R->ga = calloc((size_t)nth, sizeof(double)));
    oom |= !(R->sw = calloc((size_t)(4 * nth), sizeof(double)));
    oom |= !(R->w = calloc((size_t)wmax, sizeof(double)));
    if (p->zrows > 0) {   /* dgesvd's workspace, queried once */
        double q = 0;
        lapack_int r = (lapack_int)p->zrows, c = (lapack_int)p->zcols;
        oom |= !(R->svd_a = calloc((size_t)(r * c), sizeof(double)));
        oom |= !(R->svd_s = calloc((size_t)(r + c + 1), sizeof(double)));
        if (!oom &&
            LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'N', 'N', c, r, R->svd_a, c, R->svd_s, NULL, 1, NULL, 1, &q, -1) == 0) {
            R->svd_lwork = (lapack_int)q + 1;
            oom |= !(R->svd_work = calloc((size_t)R->svd_lwork, sizeof(double)));
        } else
            oom = true;
    }
    R->j = ibrt_json_new();
    return !oom && R->j;
}

/* One whole experiment at seed o.seed in R.o.out_dir; the exit status. */
static int run_in_dir(const ibrt_problem *p, ibrt_opts o)
{
    run_state R;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.o = o;
    R.t0 = ibrt_time_now();
    R.blas_threads = blas_threads;
    mt.n = 0;
    memset(mechanism, 0, sizeof mechanism);
    ibrt_error err;
    unsigned char *ckdata = NULL;
    size_t cksize = 0;
    ckpt_head ck;
    if (o.resume) {
        if (ckpt_read(p, o.resume, &ckdata, &cksize, &err) != IBRT_OK) {
            errmsg(&err);
            return 1;
        }
        memcpy(&ck, ckdata, sizeof ck);
        if ((o.steps_given && o.steps != ck.steps) || (o.seed_given && o.seed != ck.seed)) {
            fprintf(stderr, "error: %s/checkpoint.bin is a run of %ld steps at seed %llu; drop --steps/--seed to "
                    "resume it\n", o.resume, ck.steps, (unsigned long long)ck.seed);
            free(ckdata);
            return 2;
        }
        if (o.max_growth_given && o.max_growth != ck.max_growth) {
            fprintf(stderr, "error: %s/checkpoint.bin is a run with --max-growth %g; drop --max-growth to resume it\n",
                    o.resume, ck.max_growth);
            free(ckdata);
            return 2;
        }
        if (o.snapshots && o.snapshots != ck.snapshots) {
            if (ck.snapshots)
                fprintf(stderr, "error: %s/checkpoint.bin is a run with --snapshots %ld; drop --snapshots (the resumed "
                        "run goes on writing them every %ld steps)\n", o.resume, ck.snapshots, ck.snapshots);
            else
                fprintf(stderr, "error: %s/checkpoint.bin is a run without --snapshots: its snapshots would start "
                        "mid-run; drop --snapshots to resume it, or run again from the start with it\n", o.resume);
            free(ckdata);
            return 2;
        }
        if (ck.blas_threads != blas_threads) {
            fprintf(stderr, "error: %s/checkpoint.bin is a run with %d BLAS thread%s and this process has %d: the "
                    "sums inside a product may depend on it, and the resumed run would match neither; resume with "
                    "OPENBLAS_NUM_THREADS=%d\n", o.resume, ck.blas_threads, ck.blas_threads == 1 ? "" : "s",
                    blas_threads, ck.blas_threads);
            free(ckdata);
            return 2;
        }
        R.o.steps = ck.steps;
        R.o.seed = ck.seed;
        R.o.max_growth = ck.max_growth;
        R.o.snapshots = ck.snapshots;
        R.o.out_dir = o.resume;
        R.elapsed = ck.elapsed;
        memcpy(&R.checks, ckdata + sizeof ck, sizeof R.checks);
        memcpy(&mt, ckdata + sizeof ck + sizeof R.checks, sizeof mt);
        if (R.checks.n > IBRT_MAX_CHECKS || mt.n > IBRT_MAX_METRICS) {
            fprintf(stderr, "error: %s/checkpoint.bin: corrupt (table sizes out of range)\n", o.resume);
            free(ckdata);
            return 1;
        }
    }
    if (ibrt_mkdir_p(R.o.out_dir, &err) != IBRT_OK) {
        errmsg(&err);
        free(ckdata);
        return 1;
    }
    double tsetup = ibrt_time_now();
    ibrt_io_files_reset();   /* the files set-up reads, hashed for the checkpoint */
    if (p->setup(&R.ds, R.o.seed, o.quiet, &err) != IBRT_OK || (o.resume && !ckpt_same_files(&ck, o.resume, &err)) ||
        (seeds_ref_set && !same_files(&seeds_ref, "--seeds", "since the first seed read it", "the seeds would train "
                                      "on different data: run them again with the files left alone", &err))) {
        errmsg(&err);
        free(ckdata);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    fixed_cost(&R, "data and operator set-up", NULL, ibrt_time_now() - tsetup);
    if (!run_alloc(&R)) {
        fprintf(stderr, "error: out of memory\n");
        free(ckdata);
        free_run(&R);
        return 1;
    }
    size_t first = 0;
    if (o.resume) {
        const char *text = (const char *)ckdata + cksize - sizeof(uint64_t) - ck.json_len;
        char *t = malloc((size_t)ck.json_len + 1);
        if (!t) {
            fprintf(stderr, "error: out of memory\n");
            free(ckdata);
            free_run(&R);
            return 1;
        }
        memcpy(t, text, (size_t)ck.json_len);
        t[ck.json_len] = '\0';
        ibrt_json_restore(R.j, t, ck.json_comma);
        free(t);
        first = (size_t)ck.model;
    } else {
        ibrt_json_obj_begin(R.j);
        ibrt_json_key(R.j, "model");
        ibrt_json_str(R.j, p->name);
        ibrt_json_key(R.j, "steps");
        ibrt_json_int(R.j, R.o.steps);
        ibrt_json_key(R.j, "seed");
        ibrt_json_int(R.j, (long)R.o.seed);
        ibrt_json_key(R.j, "blas_threads");
        ibrt_json_int(R.j, R.blas_threads);
        data_files_json(R.j);
        ibrt_json_key(R.j, "metrics");
        ibrt_json_obj_begin(R.j);
    }
    if (!o.quiet && !o.gradcheck)
        printf("%-10s %14s %14s\n", "model", "final loss", "steps/s");
    for (size_t k = first; k <= p->nmodels; k++) {
        if (k > first && !o.gradcheck && (stop_signal || R.o.checkpoint_every)) {
            /* model k-1's outputs are written: a checkpoint now points at
             * model k (not at k-1's traces, which are final), and a signal
             * received meanwhile stops here; k == nmodels: every model is
             * trained, only the final checks and results are left */
            R.k = (long)k;
            R.step = -1;
            R.X = p->bx;
            if (stop_signal) {
                free(ckdata);
                int rc = stop_run(&R, 128 + stop_signal);
                free_run(&R);
                return rc;
            }
            if (ckpt_write(&R, &err) != IBRT_OK) {
                int rc = stop_output_error(&R, &err);
                free(ckdata);
                free_run(&R);
                return rc;
            }
        }
        if (k == p->nmodels)
            break;
        int rc = train_model(&R, k, o.resume ? &ck : NULL, ckdata);
        if (rc) {
            free(ckdata);
            free_run(&R);
            return rc;
        }
    }
    free(ckdata);
    if (o.gradcheck) {
        int rc = R.gc_failed ? 5 : 0;
        free_run(&R);
        return rc;
    }
    if (p->zrows > 0 && R.ds.mask && R.ds.truth_size == (size_t)(p->zrows * p->zcols)) {
        /* E3's reference: nuclear-norm completion with an oracle lambda, and
         * whether the observed entries determine the truth at all */
        ibrt_completion_report cr;
        bool sweep = R.o.reference || p->zrows * p->zcols <= 64 * 64;
        double t0 = ibrt_time_now();
        if (ibrt_baseline_completion((size_t)p->zrows, (size_t)p->zcols, R.ds.truth, R.ds.mask, sweep, &cr, &err) !=
            IBRT_OK) {
            errmsg(&err);
            free_run(&R);
            return 1;
        }
        fixed_cost(&R, sweep ? "soft-impute reference (30 lambdas x 300 SVTs)" : "completion counts (2 SVDs)", NULL,
                   ibrt_time_now() - t0);
        if (!sweep && !R.o.quiet)
            fprintf(stderr, "note: the soft-impute reference is skipped above 64 x 64 entries (%ld x %ld: 9000 SVTs "
                            "of that size); --reference runs it\n", p->zrows, p->zcols);
        put(&R, "observed_entries", "", (double)cr.observed);
        put(&R, "truth_rank", "", (double)cr.rank);
        put(&R, "rows_underdetermined", "", (double)cr.rows_under);
        put(&R, "cols_underdetermined", "", (double)cr.cols_under);
        put(&R, "relative_error_softimpute_oracle", "", cr.best_error);
        put(&R, "softimpute_oracle_lambda", "", cr.best_lambda);
    }
    if (p->stationary) {   /* the stationary law, thin-shell Metropolis test (docs/theory.md §7) */
        ibrt_stationary_cfg sc = p->stationary_cfg;
        sc.seed = R.o.seed + 77;
        if (R.o.steps < p->default_steps)   /* shortened runs (tests) use fewer chains */
            sc.chains = 4000;
        ibrt_stationary_result sr;
        double t0 = ibrt_time_now();
        if (ibrt_stationary_uv(&sc, &sr, &err) != IBRT_OK) {
            errmsg(&err);
            free_run(&R);
            return 1;
        }
        fixed_cost(&R, "stationary law (Metropolis chains)", NULL, ibrt_time_now() - t0);
        put(&R, "stationary_ks_predicted", "", sr.ks_pred);
        put(&R, "stationary_p_predicted", "", sr.p_pred);
        put(&R, "stationary_ks_no_det", "", sr.ks_nodet);
        put(&R, "stationary_p_no_det", "", sr.p_nodet);
        put(&R, "stationary_ks_flipped", "", sr.ks_flip);
        put(&R, "stationary_p_flipped", "", sr.p_flip);
        ibrt_checks_add(&R.checks, "stationary law: predicted density accepted", sr.p_pred, 0.01, 0.01,
                        sr.p_pred > 0.01, "KS p-value, exp(-beta L) asinh(eps/theta)");
        ibrt_checks_add(&R.checks, "stationary law: no det G factor rejected", sr.p_nodet, 1e-6, 1e-6,
                        sr.p_nodet < 1e-6, "KS p-value, exp(-beta L)");
        ibrt_checks_add(&R.checks, "stationary law: inverted factor rejected", sr.p_flip, 1e-6, 1e-6,
                        sr.p_flip < 1e-6, "KS p-value, exp(-beta L) / asinh(eps/theta)");
    }
    ibrt_json_obj_end(R.j);
    ibrt_json_key(R.j, "wall_seconds");
    ibrt_json_num(R.j, R.elapsed + ibrt_time_now() - R.t0);
    ibrt_json_key(R.j, "checks");
    ibrt_checks_to_json(&R.checks, R.j);
    /* every model trained: "complete", or "output_error" when an output
     * (a trace, parameters) could not be written, listing them */
    ibrt_json_key(R.j, "status");
    ibrt_json_str(R.j, R.io_failed ? "output_error" : "complete");
    if (R.io_failed)
        output_errors_json(&R, R.j);
    ibrt_json_obj_end(R.j);
    snprintf(R.path, sizeof R.path, "%s/results.json", R.o.out_dir);
    release_reserve(&R);
    if (ibrt_json_write_file(R.j, R.path, &err) != IBRT_OK) {
        errmsg(&err);
        free_run(&R);
        return 1;
    }
    if (!o.quiet) {
        printf("\n");
        ibrt_metrics_print(&mt, stdout);
        printf("\n");
        ibrt_checks_print(&R.checks, stdout);
        printf("\nresults: %s\n", R.path);
    }
    /* the run is complete: its checkpoint can no longer be resumed */
    snprintf(R.path, sizeof R.path, "%s/checkpoint.bin", R.o.out_dir);
    if (unlink(R.path) != 0 && errno != ENOENT)
        fprintf(stderr, "warning: cannot remove %s: %s\n", R.path, strerror(errno));
    bool pass = ibrt_checks_all_pass(&R.checks), io_failed = R.io_failed;
    free_run(&R);
    if (io_failed) {
        fprintf(stderr, "error: some outputs could not be written (above)\n");
        return 1;
    }
    return pass ? 0 : 4;
}

/* Space held back in every output directory for results.json, given
 * back when an output fails (a full disk): results.json then still says
 * what happened.  A results.json is tens of kilobytes. */
#define RESERVE_BYTES (256 * 1024)

static int run_seeds(const ibrt_problem *p, ibrt_opts o);

/* One run in its output directory (--out, or --resume's DIR), which it
 * holds locked while it runs (another run there is refused, status
 * IBRT_EXIT_IN_USE), cleaned first of what a killed run left. */
static int run_one(const ibrt_problem *p, ibrt_opts o)
{
    const char *dir = o.resume ? o.resume : o.out_dir;
    ibrt_error err;
    struct stat st;
    if (!o.resume && ibrt_mkdir_p(dir, &err) != IBRT_OK) {
        errmsg(&err);
        return 1;
    }
    if (o.resume && stat(dir, &st) != 0)
        return run_in_dir(p, o);   /* which says that there is no checkpoint to resume */
    int fd;
    bool in_use;
    if (ibrt_outdir_lock(dir, &fd, &in_use, &err) != IBRT_OK) {
        fprintf(stderr, "%s: error: %s\n", p->name, err.msg);
        return in_use ? IBRT_EXIT_IN_USE : 1;
    }
    ibrt_outdir_clean(dir, !o.resume && !o.gradcheck);
    if (!o.gradcheck)
        ibrt_outdir_reserve(dir, RESERVE_BYTES);
    int rc = run_in_dir(p, o);
    ibrt_outdir_release(dir);
    ibrt_outdir_unlock(fd);
    return rc;
}

/* ------------------------------------------------------------- verify */

/* --verify RUN: the checks and metrics of this trainer on a training run
 * made elsewhere (PyTorch, through the export's write_snapshot; or this
 * trainer's --snapshots), read from its parameter snapshots
 * (docs/interop.md):
 *
 *   RUN/run.json            {"model": NAME, "lr": LR, ...}, optional
 *   RUN/step_<S>/<p>.npy    parameter p (named as in the spec) before step S
 *   RUN/step_<S>/<p>.grad.npy   the gradient of step S, optional
 *
 * The first and the last snapshot get the structural checks; every
 * snapshot a row of the traces (the loss on this spec's data, chi and the
 * ratio per index) and of dual_MODEL.csv (every conserved quadratic:
 * chi of each torus family, C's upper triangle of each GL junction);
 * the last one the metrics of a trained model (chi conserved or driven,
 * the ratio against its predictions, log det G, ...).  When the
 * snapshots are consecutive steps with their gradients and the learning
 * rate is known, the finite-step identity and that the snapshots are
 * plain SGD steps are checked too. */

typedef struct {
    long step;
    char dir[48];
} vsnap;

static int vsnap_cmp(const void *a, const void *b)
{
    long x = ((const vsnap *)a)->step, y = ((const vsnap *)b)->step;
    return x != y ? (x > y) - (x < y) : strcmp(((const vsnap *)a)->dir, ((const vsnap *)b)->dir);
}

/* RUN's step_<S> directories, sorted by S; NULL and *n = 0 when none. */
static vsnap *verify_list(const char *run, size_t *n, ibrt_error *err)
{
    DIR *d = opendir(run);
    *n = 0;
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "%.400s: cannot open: %s", run, strerror(errno));
        return NULL;
    }
    vsnap *v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *q = e->d_name;
        if (strncmp(q, "step_", 5) || !q[5] || strlen(q) >= sizeof v->dir || strspn(q + 5, "0123456789") != strlen(q + 5))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            vsnap *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                snprintf(err->msg, sizeof err->msg, "out of memory");
                return NULL;
            }
            v = nv;
        }
        v[*n].step = strtol(q + 5, NULL, 10);
        snprintf(v[*n].dir, sizeof v[*n].dir, "%s", q);
        (*n)++;
    }
    closedir(d);
    if (!*n)
        snprintf(err->msg, sizeof err->msg, "%.400s holds no step_<S> directories of parameter snapshots "
                 "(docs/interop.md)", run);
    else
        qsort(v, *n, sizeof *v, vsnap_cmp);
    for (size_t i = 1; i < *n; i++)
        if (v[i].step == v[i - 1].step) {   /* step_7 and step_0000000007 */
            snprintf(err->msg, sizeof err->msg, "%.380s: %.47s and %.47s are the same step: keep one", run, v[i - 1].dir,
                     v[i].dir);
            free(v);
            *n = 0;
            return NULL;
        }
    return v;
}

/* The string or number of "key" in a small JSON object (run.json). */
static bool verify_field(const char *text, const char *key, char *buf, size_t cap, double *num)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *s = strstr(text, pat); s; s = strstr(s + 1, pat)) {
        const char *q = s + strlen(pat);
        q += strspn(q, " \t\r\n");
        if (*q != ':')
            continue;
        q++;
        q += strspn(q, " \t\r\n");
        if (*q == '"' && buf) {
            size_t n = 0;
            for (q++; *q && *q != '"' && n + 1 < cap; q++) {
                if (*q == '\\' && q[1])
                    q++;
                buf[n++] = *q;
            }
            buf[n] = '\0';
            return *q == '"';
        }
        if (num) {
            char *end;
            *num = strtod(q, &end);
            return end != q;
        }
        return false;
    }
    return false;
}

/* Model m's parameters (into th) and, when every one has its
 * <p>.grad.npy, their gradients (into g) from RUN/DIR. */
static ibrt_status verify_load(const char *run, const char *dir, const ibrt_model *m, double *th, double *g,
                               bool *has_grad, ibrt_error *err)
{
    char path[1600];
    *has_grad = true;
    for (int pass = 0; pass < 2; pass++)
        for (size_t q = 0; q < m->nparams; q++) {
            const ibrt_param *pv = &m->params[q];
            snprintf(path, sizeof path, "%.800s/%s/%.200s%s.npy", run, dir, pv->name, pass ? ".grad" : "");
            if (pass && (!*has_grad || access(path, F_OK) != 0)) {
                *has_grad = false;
                continue;
            }
            size_t ndim, shape[2];
            double *v;
            ibrt_status st = ibrt_npy_read(path, &ndim, shape, &v, err);
            if (st != IBRT_OK)
                return st;
            /* the parameter's shape: a matrix exactly (a transposed file
             * has as many values), a vector or a scalar also as a row or
             * a column (one way to read it) */
            size_t count = ndim == 0 ? 1 : ndim == 1 ? shape[0] : shape[0] * shape[1];
            bool fits = ndim == 2 && shape[0] == pv->rows && shape[1] == pv->cols;
            if (pv->cols == 1)
                fits = count == pv->rows && (ndim < 2 || shape[0] == 1 || shape[1] == 1);
            if (!fits) {
                char want[48], got[48];
                if (pv->cols > 1)
                    snprintf(want, sizeof want, "(%zu, %zu)", pv->rows, pv->cols);
                else
                    snprintf(want, sizeof want, "(%zu,)", pv->rows);
                if (ndim == 2)
                    snprintf(got, sizeof got, "(%zu, %zu)", shape[0], shape[1]);
                else
                    snprintf(got, sizeof got, "(%zu,)", shape[0]);
                snprintf(err->msg, sizeof err->msg, "%.270s: shape %.44s; %s%.40s of model '%.20s' is %s: expected "
                         "shape %.44s (docs/interop.md)", path, got, pass ? "the gradient of " : "", pv->name, m->name,
                         pv->cols > 1 ? "a matrix" : pv->rows > 1 ? "a vector" : "a scalar", want);
                free(v);
                return IBRT_ESHAPE;
            }
            memcpy((pass ? g : th) + pv->off, v, sizeof(double) * count);
            free(v);
        }
    return IBRT_OK;
}

/* The model RUN's snapshots are of: run.json's "model", or the only one
 * whose parameter files are all in the first snapshot; -1 after a message. */
static long verify_model(const ibrt_problem *p, const char *run, const char *dir, const char *name)
{
    long found = -1;
    int matches = 0;
    for (size_t k = 0; k < p->nmodels; k++) {
        const ibrt_model *m = &p->models[k];
        if (*name) {
            if (!strcmp(name, m->name))
                return (long)k;
            continue;
        }
        bool all = true;
        for (size_t q = 0; q < m->nparams && all; q++) {
            char path[1600];
            snprintf(path, sizeof path, "%.800s/%s/%.200s.npy", run, dir, m->params[q].name);
            all = access(path, R_OK) == 0;
        }
        if (all) {
            found = (long)k;
            matches++;
        }
    }
    if (*name || matches != 1) {
        if (*name)
            fprintf(stderr, "error: %s: run.json names the model '%s', which this spec does not have", run, name);
        else
            fprintf(stderr, "error: %s: %s", run,
                    matches ? "its parameters fit more than one model: name it in run.json (\"model\")"
                            : "its first snapshot does not hold the parameters of any model");
        fprintf(stderr, "; the models of %s:", p->name);
        for (size_t k = 0; k < p->nmodels; k++) {
            fprintf(stderr, " %s (", p->models[k].name);
            for (size_t q = 0; q < p->models[k].nparams; q++)
                fprintf(stderr, "%s%s", q ? ", " : "", p->models[k].params[q].name);
            fprintf(stderr, ")");
        }
        fprintf(stderr, "\n");
        return -1;
    }
    return found;
}

static int verify_one(const ibrt_problem *p, ibrt_opts o)
{
    run_state R;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.o = o;
    R.t0 = ibrt_time_now();
    mt.n = 0;
    memset(mechanism, 0, sizeof mechanism);
    ibrt_error err;
    const char *run = o.verify;
    static char outbuf[1100];
    if (!o.out_given) {
        snprintf(outbuf, sizeof outbuf, "%.1000s/verify", run);
        R.o.out_dir = outbuf;
    }
    size_t ns;
    vsnap *sn = verify_list(run, &ns, &err);
    if (!sn) {
        errmsg(&err);
        return 1;
    }
    /* run.json: the model and the learning rate */
    char text[8192] = "", name[64] = "";
    double lr = NAN;
    snprintf(R.path, sizeof R.path, "%.1000s/run.json", run);
    int fd = open(R.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* a FIFO must not block */
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "warning: %s is not a regular file: not read\n", R.path);
        close(fd);
        fd = -1;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
        /* present but unreadable is an error, not a guess */
        const char *bad = strstr(text, "\"model\"") && !verify_field(text, "model", name, sizeof name, NULL)
                              ? "\"model\" is not a string"
                          : strstr(text, "\"lr\"") && (!verify_field(text, "lr", NULL, 0, &lr) || !(lr > 0) ||
                                                        !isfinite(lr))
                              ? "\"lr\" is not a positive number"
                              : NULL;
        if (bad) {
            fprintf(stderr, "error: %s: %s; expected {\"model\": NAME, \"lr\": LR} (docs/interop.md)\n", R.path,
                    bad);
            free(sn);
            return 1;
        }
    }
    long k = verify_model(p, run, sn[0].dir, name);
    if (k < 0) {
        free(sn);
        return 1;
    }
    ibrt_model *m = &p->models[k];
    if (isfinite(lr))
        m->lr = lr;   /* the run's, for the finite-step identity */
    if (ibrt_mkdir_p(R.o.out_dir, &err) != IBRT_OK || p->setup(&R.ds, R.o.seed, o.quiet, &err) != IBRT_OK) {
        errmsg(&err);
        free(sn);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    double *prev = calloc((size_t)m->nth + 1, sizeof(double)), *pg = calloc((size_t)m->nth + 1, sizeof(double));
    if (!run_alloc(&R) || !prev || !pg) {
        fprintf(stderr, "error: out of memory\n");
        free(sn);
        free(prev);
        free(pg);
        free_run(&R);
        return 1;
    }
    ibrt_json_obj_begin(R.j);
    ibrt_json_key(R.j, "model");
    ibrt_json_str(R.j, p->name);
    ibrt_json_key(R.j, "verified_run");
    ibrt_json_str(R.j, run);
    ibrt_json_key(R.j, "verified_model");
    ibrt_json_str(R.j, m->name);
    ibrt_json_key(R.j, "snapshots");
    ibrt_json_int(R.j, (long)ns);
    ibrt_json_key(R.j, "first_step");
    ibrt_json_int(R.j, sn[0].step);
    ibrt_json_key(R.j, "last_step");
    ibrt_json_int(R.j, sn[ns - 1].step);
    ibrt_json_key(R.j, "lr");
    ibrt_json_num(R.j, lr);
    ibrt_json_key(R.j, "seed");
    ibrt_json_int(R.j, (long)R.o.seed);
    ibrt_json_key(R.j, "data_note");
    ibrt_json_str(R.j, "the loss and the fits to data (final_loss, test_mse, ...) are on this spec's own data at "
                       "this seed, as its trainer computes them: they describe the run only if it trained on "
                       "those data");
    ibrt_json_key(R.j, "metrics");
    ibrt_json_obj_begin(R.j);

    /* the spec's data: a batch for the structural checks and the loss
     * column of the trace (the training set for a full batch) */
    const double *X, *Y;
    ibrt_rng_fork(&R.rb, R.o.seed, 3 + 2 * (uint64_t)k);
    ibrt_rng_fork(&R.rs, R.o.seed, 1000 + (uint64_t)k);
    long nb = p->draw_batch(&R.ds, &R.rb, &X, &Y);
    R.X = X;
    int rc = 0;
    ibrt_csv dual;
    bool dual_open = false;
    if (open_traces(&R, m, NULL, &err) != IBRT_OK) {
        errmsg(&err);
        rc = 1;
    } else if (m->nquad) {
        size_t cap = 32 * (size_t)(m->nquad + 1);
        char *h = malloc(cap);
        if (h) {
            size_t len = (size_t)snprintf(h, cap, "step");
            long begin = 0;
            for (size_t g = 0; g < m->nqgroups; begin = m->qgroups[g].end, g++) {
                long r = m->qgroups[g].r;
                for (long t = begin, i = 0, j = 0; t < m->qgroups[g].end; t++) {
                    if (r) {   /* C's upper triangle, row by row */
                        len += (size_t)snprintf(h + len, cap - len, ",group%zu_C_%ld_%ld", g + 1, i, j);
                        if (++j == r)
                            j = ++i;
                    } else
                        len += (size_t)snprintf(h + len, cap - len, ",group%zu_chi_%ld", g + 1, t - begin);
                }
            }
            snprintf(R.path, sizeof R.path, "%.1000s/dual_%s.csv", R.o.out_dir, m->name);
            if (ibrt_csv_open(&dual, R.path, h, &err) == IBRT_OK)
                dual_open = true;
            else
                output_failed(&R, &err);
            free(h);
        }
    }
    /* the snapshots in order; `identity`: every step from the first to
     * the last is there with its gradient, and the learning rate is known */
    bool identity = isfinite(lr) && ns > 1, has_grad = false, prev_grad = false;
    double sgd_err = 0, loss = NAN;
    char when[96];
    for (size_t i = 0; i < ns && !rc; i++) {
        if (verify_load(run, sn[i].dir, m, m->th, m->g, &has_grad, &err) != IBRT_OK) {
            errmsg(&err);
            rc = 1;
            break;
        }
        if (i == 0) {
            snprintf(when, sizeof when, "%s, first snapshot", m->name);
            m->structure(X, &R.rs, &R.checks, when);
            if (m->nbal) {
                m->balance(m->th, R.chi, R.ratio, R.nA0, R.nB0);
                memcpy(R.chi0, R.chi, sizeof(double) * (size_t)m->nbal);
            }
            if (m->nquad)
                m->quad(m->th, R.q0, NULL);
        } else if (identity) {
            if (!prev_grad || sn[i].step != sn[i - 1].step + 1)
                identity = false;
            else {   /* theta_i = theta_(i-1) - lr g_(i-1)? */
                double e = 0, scale = 0;
                for (long q = 0; q < m->nth; q++) {
                    e = fmax(e, fabs(m->th[q] - (prev[q] - lr * pg[q])));
                    scale = fmax(scale, fabs(prev[q]));
                }
                sgd_err = fmax(sgd_err, scale > 0 ? e / scale : e);
            }
        }
        if (has_grad && isfinite(lr) && i + 1 < ns) {   /* this step's share of the identity */
            if (m->pair)
                pair_step(R.contr, m->th + m->pair_off0, m->th + m->pair_off1, m->g + m->pair_off0,
                          m->g + m->pair_off1, m->nbal, lr);
            if (m->nquad)
                quad_step(&R, m);
        }
        loss = loss_grad(p, m, X, Y, nb, false, false);
        record(&R, m, sn[i].step, loss);
        if (dual_open) {
            R.qg[0] = (double)sn[i].step;   /* qg: scratch here, nquad + 1 long */
            m->quad(m->th, R.qg + 1, NULL);
            ibrt_csv_row(&dual, R.qg, (size_t)m->nquad + 1);
        }
        memcpy(prev, m->th, sizeof(double) * (size_t)m->nth);
        memcpy(pg, m->g, sizeof(double) * (size_t)m->nth);
        prev_grad = has_grad;
    }
    if (dual_open && ibrt_csv_close(&dual, &err) != IBRT_OK)
        output_failed(&R, &err);
    if (!rc) {
        snprintf(when, sizeof when, "%s, last snapshot", m->name);
        m->structure(X, &R.rs, &R.checks, when);
        if (identity) {
            char cname[96];
            snprintf(cname, sizeof cname, "snapshots are plain SGD steps (%s)", m->name);
            ibrt_checks_add(&R.checks, cname, sgd_err, 0, 1e-12, sgd_err <= 1e-12,
                            "max |theta(t+1) - theta(t) + lr g(t)| / max |theta(t)| over the steps: the identity "
                            "below is SGD's");
        } else if (!o.quiet)
            fprintf(stderr, "note: the finite-step identity is not checked: it needs every step from the first "
                            "snapshot to the last, each with its gradient (<p>.grad.npy), and the learning rate "
                            "(run.json)\n");
        if (m->nquad)
            finite_step_identity(&R, m, identity);
        if (m->ngen)
            joint_logdet(&R, m);
        if (m->nsymgroups)
            group_logdet(&R, m);
        if (m->njoints)
            joint_poly_checks(&R, m);
        close_traces(&R);
        if (!identity)
            memset(R.contr, 0, sizeof(double) * (size_t)(m->nbal + 1));   /* no contraction measured */
        model_metrics(&R, (size_t)k, loss);
        ibrt_json_obj_end(R.j);
        ibrt_json_key(R.j, "wall_seconds");
        ibrt_json_num(R.j, ibrt_time_now() - R.t0);
        ibrt_json_key(R.j, "checks");
        ibrt_checks_to_json(&R.checks, R.j);
        ibrt_json_key(R.j, "status");
        ibrt_json_str(R.j, "complete");
        ibrt_json_obj_end(R.j);
        snprintf(R.path, sizeof R.path, "%.1000s/results.json", R.o.out_dir);
        if (ibrt_json_write_file(R.j, R.path, &err) != IBRT_OK) {
            errmsg(&err);
            rc = 1;
        } else if (!o.quiet) {
            printf("verified: %s, model '%s', %zu snapshots (steps %ld to %ld)%s%s\n", run, m->name, ns,
                   sn[0].step, sn[ns - 1].step, mechanism[k < 16 ? k : 0][0] ? "; chi (family 1): " : "",
                   mechanism[k < 16 ? k : 0]);
            printf("note: the loss and the fits to data (final_loss, test_mse, ...) are on this spec's own data "
                   "(seed %llu), as its trainer computes them: they describe the run only if it trained on those "
                   "data\n\n", (unsigned long long)R.o.seed);
            ibrt_metrics_print(&mt, stdout);
            printf("\n");
            ibrt_checks_print(&R.checks, stdout);
            printf("\nresults: %s\n", R.path);
        }
    } else
        close_traces(&R);
    bool pass = ibrt_checks_all_pass(&R.checks), io_failed = R.io_failed;
    free(sn);
    free(prev);
    free(pg);
    free_run(&R);
    if (rc)
        return rc;
    if (io_failed) {
        fprintf(stderr, "error: some outputs could not be written (above)\n");
        return 1;
    }
    return pass ? 0 : 4;
}

/* --stability: every model's probe at its initial point for seed
 * o.seed, printed as one line each, "stability MODEL LAMBDA_MAX BOUND LR
 * ITERATIONS CONVERGED" (LR 0: lr = auto), which `ibc check --stability`
 * reads; nothing is trained and nothing written. */
static int stability_only(const ibrt_problem *p, ibrt_opts o)
{
    run_state R;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.o = o;
    R.o.quiet = 1;
    ibrt_error err;
    if (p->setup(&R.ds, o.seed, true, &err) != IBRT_OK) {
        errmsg(&err);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    if (!run_alloc(&R)) {
        fprintf(stderr, "error: out of memory\n");
        free_run(&R);
        return 1;
    }
    for (size_t k = 0; k < p->nmodels; k++) {
        ibrt_model *m = &p->models[k];
        ibrt_rng ri, rb, rp;
        const double *X, *Y;
        ibrt_rng_fork(&ri, o.seed, 2 + 2 * k);   /* as train_model: the same initial point and batch */
        ibrt_rng_fork(&rb, o.seed, 3 + 2 * k);
        ibrt_rng_fork(&rp, o.seed, 3000 + k);
        m->init(m->th, &ri);
        long nb = p->draw_batch(&R.ds, &rb, &X, &Y);
        ibrt_stability st;
        ibrt_stability_probe(p, m, X, Y, nb, &rp, R.sw, &st);
        printf("stability %s %.17g %.17g %.17g %d %d\n", m->name, st.lambda_max, st.bound, m->lr_auto ? 0 : m->lr,
               st.iterations, st.converged ? 1 : 0);
    }
    free_run(&R);
    return 0;
}

int ibrt_main(int argc, char **argv, const ibrt_problem *p)
{
    ibrt_opts o;
    ibrt_io_std_fds();   /* a closed stderr must not become an output file */
    int rc = ibrt_opts_parse(argc, argv, &o, p->name, p->description, p->default_steps, p->default_seed);
    if (rc)
        return rc > 0 ? 0 : 2;
    if ((rc = ibrt_opts_check(&o, p->name)) != 0)
        return rc;
    blas_threads = blas_threads_setup();
    if (o.stability)
        return stability_only(p, o);
    if (o.verify)
        return verify_one(p, o);
    install_signals(o.gradcheck);
    if (o.seeds == 1 || o.gradcheck)
        return run_one(p, o);
    /* K independent seeds S..S+K-1, each in OUT/seed_N (locked in turn);
     * summary.json has median, min and max of every scalar metric */
    ibrt_error err;
    if (ibrt_mkdir_p(o.out_dir, &err) != IBRT_OK) {
        errmsg(&err);
        return 1;
    }
    int lock_fd;
    bool in_use;
    if (ibrt_outdir_lock(o.out_dir, &lock_fd, &in_use, &err) != IBRT_OK) {
        fprintf(stderr, "%s: error: %s\n", p->name, err.msg);
        return in_use ? IBRT_EXIT_IN_USE : 1;
    }
    ibrt_outdir_clean(o.out_dir, false);
    rc = run_seeds(p, o);
    ibrt_outdir_unlock(lock_fd);
    return rc;
}

/* --seeds K: each seed's run, then summary.json */
static int run_seeds(const ibrt_problem *p, ibrt_opts o)
{
    ibrt_error err;
    int rc;
    ibrt_metric *all = malloc(sizeof *all * IBRT_MAX_METRICS * (size_t)o.seeds);
    char(*mech)[16][12] = calloc((size_t)o.seeds, sizeof *mech);   /* per seed, per model */
    size_t nall = 0;
    int worst = 0;
    if (!all || !mech) {
        free(all);
        free(mech);
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    for (int k = 0; k < o.seeds; k++) {
        ibrt_opts one = o;
        char dir[1100];
        one.seed = o.seed + (uint64_t)k;
        one.quiet = 1;
        snprintf(dir, sizeof dir, "%s/seed_%llu", o.out_dir, (unsigned long long)one.seed);
        one.out_dir = dir;
        seeds_ref_set = k > 0;   /* seed 0 reads the files the others must find unchanged */
        int r = run_one(p, one);
        seeds_ref_set = false;   /* only within this loop */
        if (k == 0)
            seeds_ref = *ibrt_io_files_read();
        if (r == 3) {   /* a diverged seed: reported, left out of the summary; the others go on */
            fprintf(stderr, "seed %llu diverged (results in %s): left out of summary.json\n",
                    (unsigned long long)one.seed, dir);
            worst = 3;
            continue;
        }
        if (r != 0 && r != 4) {
            if (r == 75 || r > 128)
                fprintf(stderr, "%s: seeds %llu..%llu were not run and summary.json was not written: resume this "
                        "seed with --resume %s, then run the rest with --seed %llu --seeds %d\n", p->name,
                        (unsigned long long)one.seed + 1, (unsigned long long)(o.seed + (uint64_t)o.seeds - 1), dir,
                        (unsigned long long)one.seed + 1, o.seeds - k - 1);
            free(all);
            free(mech);
            return r;
        }
        memcpy(mech[k], mechanism, sizeof mechanism);
        if (r > worst && worst != 3)
            worst = r;
        if (!o.quiet)
            fprintf(stderr, "seed %llu: %s\n", (unsigned long long)one.seed, r ? "a check FAILED" : "all checks pass");
        memcpy(all + nall, mt.m, sizeof *all * mt.n);
        nall += mt.n;
    }
    ibrt_json *j = ibrt_json_new();
    ibrt_json_obj_begin(j);
    ibrt_json_key(j, "model");
    ibrt_json_str(j, p->name);
    ibrt_json_key(j, "seeds");
    ibrt_json_int(j, o.seeds);
    ibrt_json_key(j, "first_seed");
    ibrt_json_int(j, (long)o.seed);
    ibrt_json_key(j, "metrics");
    ibrt_metrics_summarise(all, nall, j, o.quiet ? NULL : stdout);
    /* which mechanism produced each seed's balance (docs/theory.md §6): the
     * median over seeds of chi's change can hide a split */
    ibrt_json_key(j, "mechanism_per_seed");
    ibrt_json_obj_begin(j);
    for (size_t m = 0; m < p->nmodels && m < 16; m++) {
        bool any = false;
        for (int k = 0; k < o.seeds; k++)
            any = any || mech[k][m][0];
        if (!any)
            continue;
        int conserved = 0;
        ibrt_json_key(j, p->models[m].name);
        ibrt_json_arr_begin(j);
        int counted = 0;
        for (int k = 0; k < o.seeds; k++) {
            ibrt_json_str(j, mech[k][m][0] ? mech[k][m] : "diverged");
            conserved += !strcmp(mech[k][m], "conserved");
            counted += mech[k][m][0] != 0;
        }
        ibrt_json_arr_end(j);
        if (!o.quiet)
            printf("mechanism %-10s conserved in %d of %d seeds, driven in %d\n", p->models[m].name, conserved, counted,
                   counted - conserved);
    }
    ibrt_json_obj_end(j);
    ibrt_json_key(j, "all_checks_pass");
    ibrt_json_bool(j, worst == 0);
    ibrt_json_obj_end(j);
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", o.out_dir);
    rc = worst;
    if (ibrt_json_write_file(j, path, &err) != IBRT_OK) {
        errmsg(&err);
        rc = 1;
    } else if (!o.quiet)
        printf("\nsummary: %s\n", path);
    ibrt_json_free(j);
    free(all);
    free(mech);
    return rc;
}
