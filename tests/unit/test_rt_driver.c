/* test_rt_driver.c: the experiment driver (ibrt_main) on a hand-written
 * problem, the scalar pair z = u v fitted to noisy labels: the loss in
 * chunks, results and exit status, checkpoint/stop/resume bit for bit, a
 * corrupt or foreign checkpoint, divergence with partial results; the
 * output directory's lock, a repeated signal, what a killed run left, the
 * file size limit, the BLAS thread count (issue 17). */
#include <cblas.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ibrt_driver.h"
#include "ibrt_io.h"

enum { BMAX = 4 };
static double th[2], g[2], tp[2], ad[2], bx[BMAX], by[BMAX];

static void init(double *t, ibrt_rng *r)
{
    (void)r;
    t[0] = 3.0;
    t[1] = 0.3;
}

static void forward(const double *restrict t, const double *restrict x, long nb, double *restrict p)
{
    (void)x;
    (void)nb;
    p[0] = t[0] * t[1];
}

static void backward(const double *restrict t, const double *restrict x, long nb, const double *restrict p,
                     double *restrict a, double *restrict gr)
{
    (void)x;
    (void)nb;
    (void)p;
    gr[0] += t[1] * a[0];
    gr[1] += t[0] * a[0];
}

static void structure(const double *x, ibrt_rng *r, ibrt_checks *c, const char *when)
{
    (void)x;
    (void)r;
    ibrt_checks_add(c, when, 0, 0, 1e-10, true, "");
}

static void balance(const double *t, double *chi, double *ratio, double *n0, double *n1)
{
    chi[0] = 0.5 * (t[0] * t[0] - t[1] * t[1]);
    ratio[0] = fabs(t[0] / t[1]);
    if (n0) {
        *n0 = t[0] * t[0];
        *n1 = t[1] * t[1];
    }
}

/* data_file: a CSV file set-up reads (its bytes are recorded, as a
 * generated trainer's data files are); edit_at_seed: that seed's set-up
 * first changes one byte of it, as a researcher editing the file during
 * a --seeds run would */
static const char *data_file;
static uint64_t edit_at_seed;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

static ibrt_status setup(ibrt_dataset *ds, uint64_t seed, bool quiet, ibrt_error *err)
{
    (void)ds;
    (void)quiet;
    if (!data_file)
        return IBRT_OK;
    if (edit_at_seed && seed == edit_at_seed)
        write_text(data_file, "1\n3\n");
    size_t r, c;
    double *d;
    ibrt_status st = ibrt_csv_read(data_file, &r, &c, &d, err);
    if (st == IBRT_OK)
        free(d);
    return st;
}

/* signal_at > 0: the signal_at-th batch drawn sends this process two
 * SIGTERMs, as `timeout` does (the trainer, then its process group) */
static int signal_at, batches_drawn;

static long draw(const ibrt_dataset *ds, ibrt_rng *r, const double **X, const double **Y)
{
    (void)ds;
    if (signal_at && ++batches_drawn == signal_at) {
        kill(getpid(), SIGTERM);
        kill(getpid(), SIGTERM);
    }
    for (int b = 0; b < BMAX; b++)
        by[b] = 1 + 0.5 * ibrt_rng_normal(r);
    *X = bx;
    *Y = by;
    return BMAX;
}

static const ibrt_param params[] = { { "u", 0, 1, 1, 1 }, { "v", 1, 1, 1, 1 } };
static const ibrt_family fams[] = { { 1, 1, 1, -1, 1, 1, "|u| / |v|" } };
static ibrt_model model = {
    .name = "model", .suffix = "", .nth = 2, .tape = 2, .root = 0, .root_batched = false,
    .th = th, .g = g, .tp = tp, .ad = ad, .lr = 0.05,
    .init = init, .forward = forward, .backward = backward, .structure = structure,
    .nbal = 1, .nfam = 1, .fams = fams, .balance = balance, .pair = true, .pair_off0 = 0, .pair_off1 = 1,
    .nparams = 2, .params = params,
};
static ibrt_problem problem = {
    .name = "uv", .description = "z = u v", .default_steps = 400, .default_seed = 1, .record_every = 10,
    .in = 1, .out = 1, .bmax = BMAX, .bx = bx, .minibatch = true, .gradient_tol = 1e-6,
    .setup = setup, .draw_batch = draw, .nmodels = 1, .models = &model,
};

static int run(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5, const char *a6)
{
    char *argv[8] = { "uv", (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6, NULL };
    int argc = 1;
    while (argv[argc])
        argc++;
    return ibrt_main(argc, argv, &problem);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s missing", path);
    char *b = malloc(1 << 20);
    *n = fread(b, 1, (1 << 20) - 1, f);
    b[*n] = '\0';
    fclose(f);
    return b;
}

/* results.json without its wall time */
static char *results(const char *dir)
{
    char path[256];
    size_t n;
    snprintf(path, sizeof path, "%s/results.json", dir);
    char *t = slurp(path, &n), *w = strstr(t, "\"wall_seconds\": ");
    cr_assert(w);
    char *end = strchr(w, ',');
    memmove(w, end + 1, strlen(end + 1) + 1);
    return t;
}

static void same_file(const char *a, const char *b, const char *name)
{
    char pa[256], pb[256];
    size_t na, nb;
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    char *x = slurp(pa, &na), *y = slurp(pb, &nb);
    cr_assert(na == nb && !memcmp(x, y, na), "%s differs", name);
    free(x);
    free(y);
}

/* two runs' outputs are the same: results up to the wall time, traces and
 * parameters byte for byte */
static void same_outputs(const char *a, const char *b)
{
    char *x = results(a), *y = results(b);
    cr_assert_str_eq(x, y);
    free(x);
    free(y);
    const char *files[] = { "model_u.npy", "model_v.npy", "trace_model.csv", "balance_model.csv" };
    for (int i = 0; i < 4; i++)
        same_file(a, b, files[i]);
}

static char dir[64];

static void mkdirs(void)
{
    snprintf(dir, sizeof dir, "/tmp/ibrt_driver_%ld", (long)getpid());
    mkdir(dir, 0777);
}

Test(driver, loss_in_chunks_equals_one_pass)
{
    /* 10 samples through a tape of 4: chunks of 4, 4, 2 */
    double Y[10], X[10] = { 0 };
    for (int i = 0; i < 10; i++)
        Y[i] = 0.1 * i;
    init(th, NULL);
    double loss = ibrt_driver_loss(&problem, &model, X, Y, 10, true), want = 0, dz = 0;
    for (int i = 0; i < 10; i++) {
        want += (0.9 - Y[i]) * (0.9 - Y[i]) / 10;
        dz += 2 * (0.9 - Y[i]) / 10;
    }
    cr_assert_float_eq(loss, want, 1e-15);
    cr_assert_float_eq(g[0], dz * 0.3, 1e-15);
    cr_assert_float_eq(g[1], dz * 3.0, 1e-14);
}

Test(driver, complete_run_writes_results, .init = cr_redirect_stdout)
{
    mkdirs();
    char out[96];
    snprintf(out, sizeof out, "%s/a", dir);
    cr_assert_eq(run("--steps", "200", "--out", out, "--quiet", NULL), 0);
    char *r = results(out);
    cr_assert(strstr(r, "\"status\": \"complete\""), "%s", r);
    cr_assert(strstr(r, "\"ratio_pred_noise_equilibrium\""));
    /* docs/theory.md §6: chi contracts by exp(-sum eta^2 r^2); lr 0.05, 200
     * steps, noise 0.5 over batches of 4 give a contraction near 0.1 */
    cr_assert(strstr(r, "{\"name\": \"chi contraction = sum eta^2 r^2 (model)\""), "%s", r);
    char path[128];
    snprintf(path, sizeof path, "%s/checkpoint.bin", out);
    cr_assert_neq(access(path, F_OK), 0, "a finished run leaves no checkpoint");
    free(r);
}

Test(driver, stop_and_resume_is_bit_exact, .init = cr_redirect_stderr)
{
    mkdirs();
    char a[96], b[96];
    snprintf(a, sizeof a, "%s/straight", dir);
    snprintf(b, sizeof b, "%s/stopped", dir);
    cr_assert_eq(run("--steps", "300", "--out", a, "--quiet", NULL), 0);
    cr_assert_eq(run("--steps", "300", "--out", b, "--quiet", "--stop-after"), 2, "--stop-after needs a value");
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "137", "--checkpoint-every", "50",
                     NULL };
    cr_assert_eq(ibrt_main(10, argv, &problem), 75);
    char *part = results(b);
    cr_assert(strstr(part, "\"status\": \"interrupted\""), "%s", part);
    cr_assert(strstr(part, "\"step\": 137"), "%s", part);
    free(part);
    cr_assert_eq(run("--resume", b, "--quiet", "--steps", "301", NULL), 2, "a different step count is refused");
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    same_outputs(a, b);
}

/* A run stopped between its model's end (the traces renamed from .part to
 * their final names) and the next checkpoint: the checkpoint on disk is
 * the one taken at the model's last step, which names the .part files.
 * Stopped here at the last step and the renames done by hand, that is the
 * state a SIGKILL in the window leaves (tests/e2e.sh met it by timing);
 * resuming takes the final files back and ends like a straight run. */
Test(driver, resume_after_the_traces_were_finalised, .init = cr_redirect_stderr)
{
    mkdirs();
    char a[96], b[96], from[160], to[160];
    snprintf(a, sizeof a, "%s/straight2", dir);
    snprintf(b, sizeof b, "%s/window", dir);
    cr_assert_eq(run("--steps", "300", "--out", a, "--quiet", NULL), 0);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "300", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    const char *traces[] = { "trace_model.csv", "balance_model.csv" };
    for (int t = 0; t < 2; t++) {
        snprintf(from, sizeof from, "%s/%s.part", b, traces[t]);
        snprintf(to, sizeof to, "%s/%s", b, traces[t]);
        cr_assert_eq(rename(from, to), 0, "%s", from);
    }
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    same_outputs(a, b);
}

Test(driver, corrupt_checkpoint_is_refused, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], path[128];
    snprintf(b, sizeof b, "%s/corrupt", dir);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    snprintf(path, sizeof path, "%s/checkpoint.bin", b);
    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    fseek(f, 200, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    fflush(stderr);
    FILE *e = cr_get_redirected_stderr();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, e);
    buf[n] = '\0';
    cr_assert(strstr(buf, "corrupt (its checksum does not match)"), "%s", buf);
}

Test(driver, checkpoint_of_another_trainer_is_refused, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96];
    snprintf(b, sizeof b, "%s/foreign", dir);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    model.lr = 0.04;   /* a different trainer: same name, another learning rate */
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    model.lr = 0.05;
}

Test(driver, divergence_stops_with_partial_results, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], path[160];
    snprintf(b, sizeof b, "%s/diverged", dir);
    model.lr = 5;   /* u v with u = 3: curvature 2 (u^2 + v^2) ~ 18, so lr 5 explodes */
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--checkpoint-every", "1", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 3);
    model.lr = 0.05;
    char *r = results(b);
    cr_assert(strstr(r, "\"status\": \"diverged\""), "%s", r);
    cr_assert(strstr(r, "\"learning_rate\": 5"), "%s", r);
    cr_assert(strstr(r, "\"name\": \"training stays finite (model)\""), "%s", r);
    free(r);
    snprintf(path, sizeof path, "%s/trace_model.csv", b);
    cr_assert_eq(access(path, F_OK), 0, "the trace is kept");
    snprintf(path, sizeof path, "%s/model_u.npy", b);
    cr_assert_eq(access(path, F_OK), 0, "the parameters are kept");
    snprintf(path, sizeof path, "%s/checkpoint.bin", b);
    cr_assert_neq(access(path, F_OK), 0, "no checkpoint that would resume into the same divergence");
}

Test(driver, resume_keeps_the_divergence_threshold, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96];
    snprintf(b, sizeof b, "%s/growth", dir);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", "--max-growth", "50", NULL };
    cr_assert_eq(ibrt_main(10, argv, &problem), 75);
    cr_assert_eq(run("--resume", b, "--quiet", "--max-growth", "60", NULL), 2, "another threshold is refused");
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
}

/* The text the trainer wrote on the redirected stderr so far. */
static char *stderr_text(void)
{
    static char buf[8192];
    fflush(stderr);
    FILE *e = cr_get_redirected_stderr();
    size_t n = fread(buf, 1, sizeof buf - 1, e);
    buf[n] = '\0';
    return buf;
}

/* Issue 17, item 4: a second run with the same --out while one holds it
 * (here a child process holding DIR/.lock as a run does) is refused with
 * status 6, naming the holder; the directory is free again once it ends. */
Test(driver, output_directory_in_use_is_refused, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], lock[128];
    snprintf(b, sizeof b, "%s/locked", dir);
    mkdir(b, 0777);
    snprintf(lock, sizeof lock, "%s/.lock", b);
    int ready[2], done[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(done[1]);   /* so that read() ends if the test ends early */
        int fd = open(lock, O_RDWR | O_CREAT, 0666);
        struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char c = fd >= 0 && fcntl(fd, F_SETLK, &l) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(done[0]);
    char c = 0;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    cr_assert_eq(c, 'y');
    cr_assert_eq(run("--steps", "50", "--out", b, "--quiet", NULL), 6);
    char want[160];
    snprintf(want, sizeof want, "is in use by another run (process %ld)", (long)child);
    char *e = stderr_text();
    cr_assert(strstr(e, want), "%s", e);
    snprintf(want, sizeof want, "%s/results.json", b);
    cr_assert_neq(access(want, F_OK), 0, "the refused run wrote nothing");
    cr_assert_eq(write(done[1], "x", 1), 1);
    int st;
    waitpid(child, &st, 0);
    cr_assert_eq(run("--steps", "50", "--out", b, "--quiet", NULL), 0);
}

/* Issue 17, item 5: two SIGTERMs in a row (`timeout` signals the trainer
 * and then its process group) still end in a checkpoint and exit 143,
 * and the run resumes to the straight run's outputs. */
Test(driver, repeated_signal_still_writes_the_checkpoint, .init = cr_redirect_stderr)
{
    mkdirs();
    char a[96], b[96], path[160];
    snprintf(a, sizeof a, "%s/straight3", dir);
    snprintf(b, sizeof b, "%s/signalled", dir);
    cr_assert_eq(run("--steps", "300", "--out", a, "--quiet", NULL), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        signal_at = 120;
        _exit(run("--steps", "300", "--out", b, "--quiet", NULL));
    }
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st), "the trainer was killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 128 + SIGTERM);
    snprintf(path, sizeof path, "%s/checkpoint.bin", b);
    cr_assert_eq(access(path, F_OK), 0, "no checkpoint");
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    same_outputs(a, b);
}

/* The same signals before the first step (during the structural and
 * gradient checks at initialisation, long for a large model): the run
 * stops before the model without waiting for the checks, and a resume
 * starts the model over, ending like a straight run. */
Test(driver, signal_during_the_initial_checks_stops_before_the_model, .init = cr_redirect_stderr)
{
    mkdirs();
    char a[96], b[96];
    snprintf(a, sizeof a, "%s/straight4", dir);
    snprintf(b, sizeof b, "%s/early", dir);
    cr_assert_eq(run("--steps", "300", "--out", a, "--quiet", NULL), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        signal_at = 1;
        _exit(run("--steps", "300", "--out", b, "--quiet", NULL));
    }
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "status %d", st);
    char *r = results(b);
    cr_assert(strstr(r, "\"step\": \"before its first step\""), "%s", r);
    cr_assert(!strstr(r, "gradient vs central differences"), "%s", r);
    free(r);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    same_outputs(a, b);
}

/* Issue 17, item 5: what a SIGKILL'ed run leaves (temporaries of the
 * atomic writers, resumable traces, its checkpoint) is removed when a run
 * starts afresh there; --resume removes only the temporaries.  Other
 * files are left alone. */
Test(driver, leftovers_of_a_killed_run_are_removed_at_start, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], path[160];
    snprintf(b, sizeof b, "%s/leftovers", dir);
    mkdir(b, 0777);
    const char *stale[] = { "checkpoint.bin.tmp.4242", "results.json.tmp.17", "model_u.npy.tmp.99", "trace_model.csv.part",
                            "checkpoint.bin" };
    const char *kept[] = { "notes.txt", "mine.tmp.1", "data.tmp.x" };
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", b, stale[i]);
        fclose(fopen(path, "w"));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", b, kept[i]);
        fclose(fopen(path, "w"));
    }
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", b, stale[i]);
        cr_assert_neq(access(path, F_OK), 0, "%s was left", stale[i]);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", b, kept[i]);
        cr_assert_eq(access(path, F_OK), 0, "%s was removed", kept[i]);
    }
    cr_assert(strstr(stderr_text(), "removed the checkpoint of an earlier run"));
    snprintf(path, sizeof path, "%s/checkpoint.bin.tmp.4243", b);
    fclose(fopen(path, "w"));
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    cr_assert_neq(access(path, F_OK), 0, "the temporary was left on --resume");
}

/* Issue 17, item 6: past the file size limit (ulimit -f) the trainer is
 * not killed by SIGXFSZ: the writes fail, results.json says so naming the
 * limit (status "output_error"), exit 1. */
Test(driver, file_size_limit_is_reported_in_results, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96];
    snprintf(b, sizeof b, "%s/fsize", dir);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        struct rlimit rl = { 6000, 6000 };   /* results.json fits, the traces do not */
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(run("--steps", "2000", "--out", b, "--quiet", NULL));
    }
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st), "the trainer was killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 1);
    char *r = results(b);
    cr_assert(strstr(r, "\"status\": \"output_error\""), "%s", r);
    cr_assert(strstr(r, "\"output_errors\": [\"cannot write"), "%s", r);
    cr_assert(strstr(r, "(the file size limit, ulimit -f, is 6000 bytes)"), "%s", r);
    free(r);
}

/* Issue 17, item 9: one BLAS thread by default, recorded in results.json
 * and in the checkpoint; --resume with another count is refused. */
Test(driver, blas_threads_are_recorded_and_kept_on_resume, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96];
    snprintf(b, sizeof b, "%s/threads", dir);
    unsetenv("OPENBLAS_NUM_THREADS");
    openblas_set_num_threads(2);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    cr_assert_eq(openblas_get_num_threads(), 1, "the default is one thread");
    char *r = results(b);
    cr_assert(strstr(r, "\"blas_threads\": 1,"), "%s", r);
    free(r);
    setenv("OPENBLAS_NUM_THREADS", "2", 1);
    openblas_set_num_threads(2);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 2);
    char *e = stderr_text();
    cr_assert(strstr(e, "is a run with 1 BLAS thread and this process has 2"), "%s", e);
    cr_assert(strstr(e, "resume with OPENBLAS_NUM_THREADS=1"), "%s", e);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    openblas_set_num_threads(1);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    unsetenv("OPENBLAS_NUM_THREADS");
}

/* Issue 17, item 9: the checkpoint format is versioned; one of another
 * version (here the format before snapshots, 2) is refused by name. */
Test(driver, checkpoint_of_another_format_is_refused, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], path[128];
    snprintf(b, sizeof b, "%s/format", dir);
    char *argv[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--stop-after", "100", NULL };
    cr_assert_eq(ibrt_main(8, argv, &problem), 75);
    snprintf(path, sizeof path, "%s/checkpoint.bin", b);
    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    char magic[8];
    cr_assert_eq(fread(magic, 1, 8, f), 8);
    cr_assert(!memcmp(magic, "IBRTCKP3", 8), "format 3 is written");
    fseek(f, 7, SEEK_SET);
    fputc('2', f);
    fclose(f);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    char *e = stderr_text();
    cr_assert(strstr(e, "checkpoint format 2, this trainer reads format 3"), "%s", e);
}

/* Issue 19: --snapshots is kept in the checkpoint: a resumed run goes on
 * writing them without being told, and writes the same files as the run
 * that was not stopped; another count, or snapshots asked of a run that
 * had none, is refused (they would not be one series). */
Test(driver, snapshots_are_kept_on_resume, .init = cr_redirect_stderr)
{
    mkdirs();
    char a[96], b[96], c[96], pa[160], pb[160];
    snprintf(a, sizeof a, "%s/snap_straight", dir);
    snprintf(b, sizeof b, "%s/snap_stopped", dir);
    snprintf(c, sizeof c, "%s/snap_none", dir);
    char *straight[] = { "uv", "--steps", "300", "--out", a, "--quiet", "--snapshots", "50", NULL };
    cr_assert_eq(ibrt_main(8, straight, &problem), 0);
    char *stopped[] = { "uv", "--steps", "300", "--out", b, "--quiet", "--snapshots", "50", "--stop-after", "120",
                        NULL };
    cr_assert_eq(ibrt_main(10, stopped, &problem), 75);
    snprintf(pb, sizeof pb, "%s/snapshots/model/step_0000000150", b);
    cr_assert_neq(access(pb, F_OK), 0, "no snapshot after the stop");
    cr_assert_eq(run("--resume", b, "--quiet", "--snapshots", "25", NULL), 2, "another count is refused");
    char *e = stderr_text();
    cr_assert(strstr(e, "is a run with --snapshots 50; drop --snapshots"), "%s", e);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    for (int step = 0; step <= 300; step += 50) {
        const char *names[] = { "u.npy", "v.npy", "u.grad.npy" };
        for (int q = 0; q < (step < 300 ? 3 : 2); q++) {
            snprintf(pa, sizeof pa, "%s/snapshots/model/step_%010d/%s", a, step, names[q]);
            snprintf(pb, sizeof pb, "%s/snapshots/model/step_%010d/%s", b, step, names[q]);
            size_t nx, ny;
            char *x = slurp(pa, &nx), *y = slurp(pb, &ny);
            cr_assert(nx > 128 && nx == ny && !memcmp(x, y, nx), "%s differs from the run that was not stopped", pb);
            free(x);
            free(y);
        }
    }
    char *none[] = { "uv", "--steps", "300", "--out", c, "--quiet", "--stop-after", "120", NULL };
    cr_assert_eq(ibrt_main(8, none, &problem), 75);
    cr_assert_eq(run("--resume", c, "--quiet", "--snapshots", "50", NULL), 2, "snapshots from mid-run are refused");
    e = stderr_text();
    cr_assert(strstr(e, "is a run without --snapshots"), "%s", e);
}

/* Round 3: the bytes of the data files are in the checkpoint (a resume
 * after the file changed trained on the new data, exit 0) and are
 * compared between seeds (a file edited during --seeds K trained the
 * later seeds on other data, and summary.json mixed them, exit 0). */
Test(driver, changed_data_files_are_refused, .init = cr_redirect_stderr)
{
    mkdirs();
    char b[96], path[128];
    snprintf(path, sizeof path, "%s/d.csv", dir);
    write_text(path, "1\n2\n");
    data_file = path;
    snprintf(b, sizeof b, "%s/datachk", dir);
    cr_assert_eq(run("--out", b, "--stop-after", "100", "--quiet", NULL), 75);
    write_text(path, "1\n3\n");
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    write_text(path, "1\n2\n");
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    char *res = results(b);   /* which data the results are of */
    char want[200];
    snprintf(want, sizeof want, "\"data_files\": [{\"path\": \"%s\", \"fnv1a_64\": \"", path);
    cr_assert(strstr(res, want), "%s", res);
    free(res);
    snprintf(b, sizeof b, "%s/dataseeds", dir);
    edit_at_seed = 2;
    cr_assert_eq(run("--seeds", "3", "--out", b, "--quiet", NULL), 1);
    edit_at_seed = 0;
    data_file = NULL;
    char *e = stderr_text();
    cr_assert(strstr(e, "checkpoint.bin': the data file '") && strstr(e, "d.csv' changed since the checkpoint was "
              "written; the resumed run would mix two data sets"), "%s", e);
    cr_assert(strstr(e, "--seeds: the data file '") && strstr(e, "d.csv' changed since the first seed read it; the "
              "seeds would train on different data"), "%s", e);
}

/* Round 3: a checkpoint that is not a regular file.  A FIFO blocked the
 * resume for good (SIGTERM was caught and the open restarted), a symbolic
 * link to /dev/zero was read until memory ran out, a directory was "read
 * error". */
Test(driver, checkpoint_that_is_not_a_file_is_refused, .init = cr_redirect_stderr, .timeout = 20)
{
    mkdirs();
    char b[96], path[160], keep[160];
    snprintf(b, sizeof b, "%s/ckfifo", dir);
    cr_assert_eq(run("--out", b, "--stop-after", "100", "--quiet", NULL), 75);
    snprintf(path, sizeof path, "%s/checkpoint.bin", b);
    snprintf(keep, sizeof keep, "%s/kept.bin", b);
    cr_assert_eq(rename(path, keep), 0);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(symlink("/dev/zero", path), 0);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 1);
    cr_assert_eq(rmdir(path), 0);
    cr_assert_eq(rename(keep, path), 0);
    cr_assert_eq(run("--resume", b, "--quiet", NULL, NULL, NULL), 0);
    char *e = stderr_text();
    cr_assert(strstr(e, "checkpoint.bin': not a regular file (a FIFO)") &&
              strstr(e, "checkpoint.bin': not a regular file (a device or a socket)") &&
              strstr(e, "checkpoint.bin': not a regular file (a directory)"), "%s", e);
}

/* Round 3: --verify RUN with RUN/run.json a FIFO blocked for good. */
Test(driver, verify_does_not_block_on_a_fifo, .init = cr_redirect_stderr, .timeout = 20)
{
    mkdirs();
    char b[96], run_dir[160], path[200], out[160];
    snprintf(b, sizeof b, "%s/vfifo", dir);
    cr_assert_eq(run("--out", b, "--snapshots", "100", "--quiet", NULL), 0);
    snprintf(run_dir, sizeof run_dir, "%s/snapshots/model", b);
    snprintf(path, sizeof path, "%s/run.json", run_dir);
    snprintf(out, sizeof out, "%s/verified", dir);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(run("--verify", run_dir, "--out", out, "--quiet", NULL), 0);
    char *e = stderr_text();
    cr_assert(strstr(e, "run.json is not a regular file: not read"), "%s", e);
}
