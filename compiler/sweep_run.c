/*
 * sweep_run.c: processes.  The stop flag set by SIGINT/SIGTERM/SIGHUP;
 * fork/exec from an argument vector (no shell); the builds of the
 * trainers (sweep_build_models); starting a run (its directory, its
 * identity file, --resume when it has a checkpoint) and ending it (its
 * sweep_status from the exit status); the progress line; the schedulers
 * (sweep_run_wait for one run in this process, sweep_run_all for --jobs N
 * at a time).  What a run leaves on disk is all the outputs read back.
 */
#include "sweep_impl.h"

/* --------------------------------------------------------- signals, stop */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

void sweep_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int sweep_stopping(void) { return stop_signal; }

/* ------------------------------------------------------- processes, builds */

/* fork + exec from an argument vector: no shell.  path with a '/' is run
 * as it is, otherwise found on PATH; envp NULL keeps the environment.
 * stdin is /dev/null, stdout and stderr go to log (appended) when given;
 * cwd when given.  own_group: a process group of its own, so that a
 * terminal's Ctrl-C reaches only the sweep, which passes one SIGTERM on
 * (the trainer's second signal would end it before its checkpoint); and on
 * Linux a SIGTERM when the sweep dies.  The child calls only
 * async-signal-safe functions before exec.  Returns the pid, or -1. */
pid_t sweep_spawn(const char *path, char *const argv[], char *const envp[], const char *log, const char *cwd,
                  bool own_group)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0 && own_group)
            setpgid(pid, pid);
        return pid;
    }
    if (own_group) {
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(128 + SIGTERM);
#endif
    }
    (void)parent;
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0) {
        dup2(in, 0);
        close(in);
    }
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    if (cwd && chdir(cwd) != 0)
        _exit(127);
    if (envp)
        execve(path, argv, envp);
    else
        execvp(path, argv);
    static const char msg[] = "ibc sweep: cannot run ";
    ssize_t w = write(2, msg, sizeof msg - 1);
    w = write(2, path, strlen(path));
    w = write(2, "\n", 1);
    (void)w;
    _exit(127);
}

/* Waits for pid (retrying on signals); its wait status, or -1. */
int sweep_wait_for(pid_t pid)
{
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR)
            return -1;
    return ws;
}

/* The directory of this executable (bin/), where ibc is. */
static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return sweep_xstrdup("bin");
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return sweep_xstrdup(buf);
}

/* `ibc build --print-cflags` (or --print-libs), split into words: the
 * trainer flags exactly as `ibc build` uses them. */
static char **build_flags(const char *which, size_t *n)
{
    char *dir = exe_dir(), *ibc = sweep_xprintf("%s/ibc", dir);
    free(dir);
    int fd[2];
    char **w = NULL;
    *n = 0;
    if (pipe(fd) != 0) {
        free(ibc);
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        close(fd[1]);
        char *argv[] = { ibc, "build", (char *)which, NULL };
        execv(ibc, argv);
        _exit(127);
    }
    close(fd[1]);
    sbuf out = { 0 };
    char buf[4096];
    ssize_t r;
    while ((r = read(fd[0], buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        sweep_sb_add(&out, buf, (size_t)r);
    }
    close(fd[0]);
    int ws = pid > 0 ? sweep_wait_for(pid) : -1;
    if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !out.s) {
        fprintf(stderr, "ibc sweep: error: '%s build %s' failed: is bin/ibc built (make)?\n", ibc, which);
        free(ibc);
        free(out.s);
        return NULL;
    }
    free(ibc);
    size_t cap = 16;
    w = sweep_xmalloc(cap * sizeof *w);
    for (char *t = strtok(out.s, " \t\n"); t; t = strtok(NULL, " \t\n")) {
        if (*n + 1 >= cap)
            w = sweep_xrealloc(w, (cap *= 2) * sizeof *w);
        w[(*n)++] = sweep_xstrdup(t);
    }
    w[*n] = NULL;
    free(out.s);
    return w;
}

static void free_words(char **w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i]);
    free(w);
}

/* DIR/models/HASH/{spec.ibs, trainer.c, trainer, build.log} for every
 * model not built yet. */
int sweep_build_models(sweep *s)
{
    size_t need = 0;
    for (size_t j = 0; j < s->nmodels; j++) {
        char *exe = sweep_xprintf("%s/models/%s/trainer", s->out, s->models[j].hex);
        if (access(exe, X_OK) == 0) {
            free(s->models[j].code);
            s->models[j].code = NULL;
        } else
            need++;
        free(exe);
    }
    if (!need)
        return 0;
    size_t nc, nl;
    char **cflags = build_flags("--print-cflags", &nc), **libs = cflags ? build_flags("--print-libs", &nl) : NULL;
    if (!cflags || !libs) {
        free_words(cflags, nc);
        return 1;
    }
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    fprintf(stderr, "sweep: building %zu trainer%s\n", need, need > 1 ? "s" : "");
    int status = 0;
    for (size_t j = 0; j < s->nmodels && !status; j++) {
        model *m = &s->models[j];
        if (!m->code)
            continue;
        if (stop_signal) {
            status = 128 + stop_signal;
            break;
        }
        char *dir = sweep_xprintf("%s/models/%s", s->out, m->hex), *spec = sweep_xprintf("%s/spec.ibs", dir),
             *csrc = sweep_xprintf("%s/trainer.c", dir), *exe = sweep_xprintf("%s/trainer", dir),
             *tmp = sweep_xprintf("%s/trainer.tmp.%ld", dir, (long)getpid()), *log = sweep_xprintf("%s/build.log", dir);
        if (!sweep_mkdir_p(dir)) {
            fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", dir, strerror(errno));
            status = 1;
        } else if (!sweep_write_atomic(spec, m->text, m->len) || !sweep_write_atomic(csrc, m->code, m->code_len)) {
            status = 1;
        } else {
            char **argv = sweep_xmalloc((nc + nl + 6) * sizeof *argv);
            size_t n = 0;
            argv[n++] = (char *)cc;
            for (size_t i = 0; i < nc; i++)
                argv[n++] = cflags[i];
            argv[n++] = csrc;
            for (size_t i = 0; i < nl; i++)
                argv[n++] = libs[i];
            argv[n++] = "-o";
            argv[n++] = tmp;
            argv[n] = NULL;
            unlink(log);
            pid_t pid = sweep_spawn(cc, argv, NULL, log, NULL, false);
            int ws = pid > 0 ? sweep_wait_for(pid) : -1;
            free(argv);
            if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
                char *text = sweep_read_text(log, NULL);
                fprintf(stderr, "ibc sweep: error: compiling %s failed%s\n%s", csrc,
                        stop_signal ? " (stopped)" : ":", stop_signal || !text ? "" : text);
                free(text);
                unlink(tmp);
                status = stop_signal ? 128 + stop_signal : 1;
            } else if (rename(tmp, exe) != 0) {
                fprintf(stderr, "ibc sweep: error: cannot install '%s': %s\n", exe, strerror(errno));
                unlink(tmp);
                status = 1;
            } else
                fprintf(stderr, "sweep: built models/%s (%s)\n", m->hex, s->points[m->first_point].settings);
        }
        free(m->code);
        m->code = NULL;
        free(dir);
        free(spec);
        free(csrc);
        free(exe);
        free(tmp);
        free(log);
    }
    free_words(cflags, nc);
    free_words(libs, nl);
    return status;
}

/* ------------------------------------------------------------------- runs */

static char **trainer_env(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = sweep_xmalloc((n + 2) * sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21))
            env[k++] = environ[i];
    env[k++] = "OPENBLAS_NUM_THREADS=1";
    env[k] = NULL;
    return env;
}

/* Starts run i; false when it could not start (then it is recorded as
 * failed: status error). */
static bool start_run(sweep *s, size_t i)
{
    run *r = &s->runs[i];
    const point *p = &s->points[r->point];
    const model *m = &s->models[p->model];
    r->started = sweep_now();
    if (!sweep_mkdir_p(r->dir)) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", r->dir, strerror(errno));
        return false;
    }
    char *idp = sweep_xprintf("%s/sweep_run", r->dir), *id = sweep_run_identity(s, r);
    bool ok = sweep_exists(idp) || sweep_write_atomic(idp, id, strlen(id));
    free(idp);
    free(id);
    if (!ok)
        return false;
    long steps = p->steps ? p->steps + m->extend_steps : m->steps + m->extend_steps;
    long every = s->checkpoint_every ? s->checkpoint_every : (steps + 9) / 10;
    char *exe = sweep_xprintf("%s/models/%s/trainer", s->out, m->hex), *log = sweep_xprintf("%s/trainer.log", r->dir);
    char seed[32], stepv[32], everyv[32];
    snprintf(seed, sizeof seed, "%llu", r->seed);
    snprintf(stepv, sizeof stepv, "%ld", steps);
    snprintf(everyv, sizeof everyv, "%ld", every);
    char *ck = sweep_xprintf("%s/checkpoint.bin", r->dir);
    bool resume = r->state == RUN_RESUME && sweep_exists(ck);
    free(ck);
    char *argv[16];
    int n = 0;
    argv[n++] = exe;
    if (resume) {
        argv[n++] = "--resume";
        argv[n++] = r->dir;
    } else {
        argv[n++] = "--out";
        argv[n++] = r->dir;
        argv[n++] = "--seed";
        argv[n++] = seed;
        if (p->steps) {
            argv[n++] = "--steps";
            argv[n++] = stepv;
        }
        if (s->max_growth) {
            argv[n++] = "--max-growth";
            argv[n++] = (char *)s->max_growth;
        }
    }
    argv[n++] = "--quiet";
    argv[n++] = "--checkpoint-every";
    argv[n++] = everyv;
    argv[n] = NULL;
    FILE *lf = fopen(log, "a");
    if (lf) {
        fprintf(lf, "ibc sweep: %s:", resume ? "resuming from checkpoint.bin" : "starting");
        for (int k = 0; k < n; k++)
            fprintf(lf, " %s", argv[k]);
        fprintf(lf, "\n");
        fclose(lf);
    }
    char **env = trainer_env();
    r->pid = sweep_spawn(exe, argv, env, log, NULL, true);
    free(env);
    free(exe);
    free(log);
    if (r->pid < 0)
        fprintf(stderr, "ibc sweep: error: cannot start a trainer: %s\n", strerror(errno));
    return r->pid > 0;
}

/* Records how run i ended (wait status ws; -1: it never started); true
 * when it is finished (its sweep_status written), false when it was
 * stopped and can be resumed. */
static bool end_run(sweep *s, size_t i, int ws)
{
    run *r = &s->runs[i];
    const char *status = "error";
    char exitv[32] = "";
    bool final = true;
    r->pid = 0;
    if (ws == -1) {
        snprintf(exitv, sizeof exitv, "not started");
    } else if (WIFEXITED(ws)) {
        int c = WEXITSTATUS(ws);
        snprintf(exitv, sizeof exitv, "%d", c);
        switch (c) {
        case 0: status = "complete"; break;
        case 3: status = "diverged"; break;
        case 4: status = "check_failed"; break;
        case 5: status = "gradcheck_failed"; break;
        case 75: final = false; break;
        default:
            if (c > 128)   /* a signal, after its checkpoint */
                final = false;
        }
    } else if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        snprintf(exitv, sizeof exitv, "signal %d", sig);
        if (stop_signal || sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGKILL)
            final = false;   /* stopped from outside: resumable */
        else
            status = "crashed";
    }
    if (final) {
        char *path = sweep_xprintf("%s/sweep_status", r->dir);
        char *text = sweep_xprintf("status %s\nexit %s\nstarted %.3f\nended %.3f\n", status, exitv, r->started,
                                   sweep_now());
        if (!sweep_write_atomic(path, text, strlen(text)))
            final = false;
        free(path);
        free(text);
    }
    r->state = final ? RUN_FINISHED : RUN_RESUME;
    r->failed = final && strcmp(status, "complete") != 0;
    return final;
}

/* Waiting for runs.  The schedulers block in waitpid until a child ends,
 * so that the next run starts at once (a 50 ms polling loop cost runs of
 * 0.2 s an eighth of the machine: make sweep-speedup).  The wait is cut
 * short by the stop signals (installed without SA_RESTART, so waitpid
 * returns EINTR) and by a one-second alarm, which bounds the time a stop
 * signal arriving just before waitpid can go unseen and keeps a terminal's
 * progress line fresh.  The alarm is not inherited by fork's children. */
static void on_alarm(int sig) { (void)sig; }

/* Waits for pid, or for any child when pid is -1, for at most about one
 * second.  Returns what waitpid returned: the pid of an ended child (its
 * status in *ws), or 0 when woken without one, or -1 with errno ECHILD. */
static pid_t wait_child(pid_t pid, int *ws)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarm(1);
    pid_t w = waitpid(pid, ws, 0);
    int e = errno;
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    errno = e;
    if (w < 0 && errno == EINTR)
        return 0;
    return w;
}

/* --------------------------------------------------------------- progress */

/* "3/18 runs done, 1 failed, 2 running, 0:04 elapsed, about 0:20 left" */
static void progress_counts(const sweep *s, char *buf, size_t size)
{
    char el[32], left[48] = "time left unknown";
    sweep_fmt_duration(el, sizeof el, sweep_now() - s->t0);
    size_t todo = s->nruns - s->done - s->running;
    if (s->timed) {
        double mean = s->run_seconds / (double)s->timed;
        double l = mean * ((double)todo + 0.5 * (double)s->running) / (double)(s->slots > 0 ? s->slots : 1);
        char d[32];
        sweep_fmt_duration(d, sizeof d, l);
        snprintf(left, sizeof left, "about %s left", d);
    } else if (!todo && !s->running)
        snprintf(left, sizeof left, "none left");
    snprintf(buf, size, "%zu/%zu runs done, %zu failed, %zu running, %s elapsed, %s", s->done, s->nruns, s->failed,
             s->running, el, left);
}

/* On a terminal, one line rewritten in place (after each event, and every
 * second); elsewhere (a log file, a batch job) one line per ended run. */
static void progress_draw(sweep *s)
{
    if (!s->tty)
        return;
    char line[256];
    progress_counts(s, line, sizeof line);
    fprintf(stderr, "\r\033[Ksweep: %s", line);
    fflush(stderr);
    s->line_open = true;
    s->last_draw = sweep_now();
}

void sweep_progress_start(sweep *s, int slots)
{
    s->t0 = sweep_now();
    s->slots = slots;
    s->tty = isatty(2);
    s->done = s->failed = s->running = s->timed = 0;
    s->run_seconds = 0;
    for (size_t i = 0; i < s->nruns; i++)
        if (s->runs[i].state == RUN_FINISHED) {
            s->done++;
            s->failed += s->runs[i].failed;
        }
    s->earlier = s->done;
    size_t resume = 0;
    for (size_t i = 0; i < s->nruns; i++)
        resume += s->runs[i].state == RUN_RESUME;
    fprintf(stderr, "sweep: %zu run%s (%zu grid point%s x %ld seed%s) in %s: %zu finished earlier, %zu to resume, "
            "%zu to start, %d at once\n", s->nruns, s->nruns == 1 ? "" : "s", s->npoints, s->npoints == 1 ? "" : "s",
            s->seeds, s->seeds == 1 ? "" : "s", s->out, s->done, resume, s->nruns - s->done - resume, slots);
}

void sweep_progress_started(sweep *s, size_t i)
{
    s->runs[i].started = sweep_now();
    s->running++;
}

void sweep_progress_ended(sweep *s, size_t i, bool finished)
{
    run *r = &s->runs[i];
    if (s->running)
        s->running--;
    char st[64] = "stopped (resumable)", ex[64] = "";
    if (finished) {   /* as recorded (by this process, or by an MPI rank) */
        r->state = RUN_FINISHED;
        r->failed = !sweep_read_status(r->dir, st, sizeof st, ex, sizeof ex, NULL, NULL) || strcmp(st, "complete") != 0;
        s->done++;
        s->failed += r->failed;
        s->timed++;
        s->run_seconds += sweep_now() - r->started;
    }
    if (s->tty && !r->failed && finished)
        return;
    char line[256];
    progress_counts(s, line, sizeof line);
    if (s->line_open)
        fprintf(stderr, "\r\033[K");
    s->line_open = false;
    fprintf(stderr, "sweep: %s seed %llu: %s%s%s%s", s->points[r->point].settings, r->seed, st,
            *ex ? " (exit " : "", ex, *ex ? ")" : "");
    if (r->failed)
        fprintf(stderr, ", see %s/trainer.log", r->dir);
    if (!s->tty)
        fprintf(stderr, "; %s", line);
    fprintf(stderr, "\n");
}

void sweep_progress_tick(sweep *s, bool changed)
{
    if (s->tty && (changed || sweep_now() - s->last_draw > 1.0))
        progress_draw(s);
}

void sweep_progress_end(sweep *s)
{
    if (s->line_open)
        fprintf(stderr, "\n");
    s->line_open = false;
}

/* ------------------------------------------------------------- schedulers */

int sweep_run_wait(sweep *s, size_t i)
{
    if (s->runs[i].state == RUN_FINISHED)
        return 1;
    if (stop_signal)
        return 0;
    if (!start_run(s, i))
        return end_run(s, i, -1) ? 1 : 0;
    bool passed = false;
    int ws;
    for (;;) {
        if (stop_signal && !passed) {
            kill(s->runs[i].pid, SIGTERM);
            passed = true;
        }
        pid_t w = wait_child(s->runs[i].pid, &ws);
        if (w == s->runs[i].pid)
            break;
        if (w < 0) {
            ws = -1;
            break;
        }
    }
    return end_run(s, i, ws) ? 1 : 0;
}

void sweep_run_all(sweep *s, int jobs)
{
    sweep_progress_start(s, jobs);
    size_t next = 0;
    bool passed = false, changed = true;
    for (;;) {
        while (!stop_signal && (int)s->running < jobs) {
            while (next < s->nruns && s->runs[next].state == RUN_FINISHED)
                next++;
            if (next >= s->nruns)
                break;
            size_t i = next++;
            sweep_progress_started(s, i);
            if (!start_run(s, i))
                sweep_progress_ended(s, i, end_run(s, i, -1));
            changed = true;
        }
        if (!s->running)
            break;
        sweep_progress_tick(s, changed);
        changed = false;
        if (stop_signal && !passed) {
            for (size_t i = 0; i < s->nruns; i++)
                if (s->runs[i].pid > 0)
                    kill(s->runs[i].pid, SIGTERM);
            passed = true;
        }
        /* the runs are this process's only children here */
        int ws;
        pid_t w = wait_child(-1, &ws);
        for (size_t i = 0; i < s->nruns; i++) {
            if (s->runs[i].pid <= 0)
                continue;
            if (w == s->runs[i].pid || w < 0) {   /* w < 0: ECHILD, none is left */
                sweep_progress_ended(s, i, end_run(s, i, w < 0 ? -1 : ws));
                changed = true;
            }
        }
    }
    sweep_progress_end(s);
}
