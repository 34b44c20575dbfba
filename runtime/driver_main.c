/*
 * driver_main.c: ibrt_main, the entry point every generated trainer
 * hands its problem to (contract in ibrt_driver.h), and what belongs to
 * the process rather than to one run: the options, the signals that stop
 * a run with a checkpoint, OpenBLAS's thread count, the output
 * directory's lock and space reserve, --seeds K (one run per seed, then
 * summary.json) and --stability.  One run is ibrt_drv_run_in_dir (driver.c).
 */
#include "driver_impl.h"

#include <cblas.h>
#include <errno.h>
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
volatile sig_atomic_t ibrt_drv_stop_signal;
static volatile sig_atomic_t signal_noted;

static void on_signal(int sig)
{
    if (!ibrt_drv_stop_signal) {
        ibrt_drv_stop_signal = sig;
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
const char *ibrt_drv_stop_signal_name(int sig)
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
int ibrt_drv_blas_threads;   /* of this process, set by ibrt_main */

static int blas_threads_setup(void)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env)
        openblas_set_num_threads(1);
    return openblas_get_num_threads();
}

/* --seeds K: the files the first seed read; every later seed must read
 * the same bytes (a file edited during the run trained seeds on
 * different data, and summary.json mixed them) */
ibrt_io_files ibrt_drv_seeds_ref;
bool ibrt_drv_seeds_ref_set;

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
        ibrt_drv_errmsg(&err);
        return 1;
    }
    if (o.resume && stat(dir, &st) != 0)
        return ibrt_drv_run_in_dir(p, o);   /* which says that there is no checkpoint to resume */
    int fd;
    bool in_use;
    if (ibrt_outdir_lock(dir, &fd, &in_use, &err) != IBRT_OK) {
        fprintf(stderr, "%s: error: %s\n", p->name, err.msg);
        return in_use ? IBRT_EXIT_IN_USE : 1;
    }
    ibrt_outdir_clean(dir, !o.resume && !o.gradcheck);
    if (!o.gradcheck)
        ibrt_outdir_reserve(dir, RESERVE_BYTES);
    int rc = ibrt_drv_run_in_dir(p, o);
    ibrt_outdir_release(dir);
    ibrt_outdir_unlock(fd);
    return rc;
}

/* --stability: every model's probe at its initial point for seed
 * o.seed, printed as one line each, "stability MODEL LAMBDA_MAX BOUND LR
 * ITERATIONS CONVERGED[ on WHICH DATA]" (LR 0: lr = auto; the data as
 * ibrt_stability_data_text says, nothing for full batch), which `ibc check --stability`
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
        ibrt_drv_errmsg(&err);
        ibrt_dataset_free(&R.ds);
        return 1;
    }
    if (!ibrt_drv_run_alloc(&R)) {
        fprintf(stderr, "error: out of memory\n");
        ibrt_drv_free_run(&R);
        return 1;
    }
    for (size_t k = 0; k < p->nmodels; k++) {
        ibrt_model *m = &p->models[k];
        ibrt_rng ri, rb, rp, rd;
        const double *X, *Y;
        ibrt_rng_fork(&ri, o.seed, 2 + 2 * k);   /* as train_model: the same initial point, batch and probe */
        ibrt_rng_fork(&rb, o.seed, 3 + 2 * k);
        ibrt_rng_fork(&rp, o.seed, 3000 + k);
        ibrt_rng_fork(&rd, o.seed, 4000 + k);
        m->init(m->th, &ri);
        long nb = p->draw_batch(&R.ds, &rb, &X, &Y);
        ibrt_stability st;
        char on[96];
        ibrt_stability_probe_init(p, m, &R.ds, X, Y, nb, &rd, &rp, R.sw, &st);
        printf("stability %s %.17g %.17g %.17g %d %d%s\n", m->name, st.lambda_max, st.bound, m->lr_auto ? 0 : m->lr,
               st.iterations, st.converged ? 1 : 0, ibrt_stability_data_text(&st, on, sizeof on));
    }
    ibrt_drv_free_run(&R);
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
    ibrt_drv_blas_threads = blas_threads_setup();
    if (o.stability)
        return stability_only(p, o);
    if (o.verify)
        return ibrt_drv_verify_one(p, o);
    install_signals(o.gradcheck);
    if (o.seeds == 1 || o.gradcheck)
        return run_one(p, o);
    /* K independent seeds S..S+K-1, each in OUT/seed_N (locked in turn);
     * summary.json has median, min and max of every scalar metric */
    ibrt_error err;
    if (ibrt_mkdir_p(o.out_dir, &err) != IBRT_OK) {
        ibrt_drv_errmsg(&err);
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
        ibrt_drv_seeds_ref_set = k > 0;   /* seed 0 reads the files the others must find unchanged */
        int r = run_one(p, one);
        ibrt_drv_seeds_ref_set = false;   /* only within this loop */
        if (k == 0)
            ibrt_drv_seeds_ref = *ibrt_io_files_read();
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
        memcpy(mech[k], ibrt_drv_mechanism, sizeof ibrt_drv_mechanism);
        if (r > worst && worst != 3)
            worst = r;
        if (!o.quiet)
            fprintf(stderr, "seed %llu: %s\n", (unsigned long long)one.seed, r ? "a check FAILED" : "all checks pass");
        memcpy(all + nall, ibrt_drv_metrics.m, sizeof *all * ibrt_drv_metrics.n);
        nall += ibrt_drv_metrics.n;
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
        ibrt_drv_errmsg(&err);
        rc = 1;
    } else if (!o.quiet)
        printf("\nsummary: %s\n", path);
    ibrt_json_free(j);
    free(all);
    free(mech);
    return rc;
}
