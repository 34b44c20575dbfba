/*
 * sweep_impl.h: what the files of `ibc sweep` share and nothing else sees
 * (sweep.h is the contract, docs/sweeps.md the user's account): the sweep's
 * state, the small utilities, and the functions one file calls in another.
 *
 *   sweep.c          the help text; sweep_open (command line, plan, lock,
 *                    builds), sweep_free, sweep_main; the lock on DIR/.lock
 *   sweep_util.c     allocation that exits on failure, a growing string,
 *                    files (mkdir -p, whole-file read, atomic write), CSV
 *                    and JSON quoting, file-name-safe labels, durations
 *   sweep_grid.c     the command line (sweep_parse_args) and each --set key
 *                    resolved to an edit of the spec's text
 *                    (sweep_resolve_key)
 *   sweep_plan.c     the grid points, their derived texts, the distinct
 *                    trainers among them checked by the ordinary front end,
 *                    the runs and their state on disk (sweep_plan,
 *                    sweep_read_status), the --dry-run plan
 *   sweep_run.c      the stop flag and signals, fork/exec (sweep_spawn),
 *                    the builds (sweep_build_models), starting and ending
 *                    runs (their sweep_status), the progress line, the
 *                    schedulers (sweep_run_wait, sweep_run_all)
 *   sweep_results.c  each run's results read back from its directory
 *                    (sweep_read_result), the metric columns and the
 *                    per-point statistics (sweep_collect), and the tables
 *                    sweep.csv, summary.csv, summary.json, timings.csv
 *   sweep_report.c   sweep_report: the learning-rate choice, the gnuplot
 *                    figures, sweep.md, and writing every output
 *
 * Why edits of the text rather than of the checked spec: a derived spec is
 * then an ordinary spec, checked by every rule `ibc check` applies (a
 * batch larger than the training set, factor names that do not exist at a
 * new depth, ...), reported at the spec's own lines, and kept beside its
 * trainer (DIR/models/HASH/spec.ibs) for anyone to read or rebuild (it is
 * checked as if it stood where the spec does: file names in it are
 * relative to the spec's directory).  The
 * edits never add or remove a line before the last one (values are
 * confined to one expression: no newline, ';', '#', '{', '}', top-level
 * ',' or unbalanced bracket), so line numbers stay the spec's own, and the
 * derived text is parsed again to confirm that each value landed as
 * exactly the expression of its setting.
 */
#ifndef IBC_SWEEP_IMPL_H
#define IBC_SWEEP_IMPL_H

#include "sweep.h"
#include "ibc.h"
#include "design.h"
#include "emit.h"
#include "sym.h"
#include "ibrt_io.h"   /* ibrt_fnv1a (runtime/read.c, linked into ibc) */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

#define SWEEP_MAX_RUNS 100000
#define SWEEP_MAX_AXES 16

/* ---- sweep_util.c */

/* Allocation that prints "out of memory" and exits 1 on failure. */
void sweep_oom(void);
void *sweep_xmalloc(size_t n);
void *sweep_xcalloc(size_t n, size_t size);
void *sweep_xrealloc(void *p, size_t n);
char *sweep_xstrdup(const char *s);

/* A growing string. */
typedef struct {
    char *s;                 /* the text, NUL-terminated (NULL while empty) */
    size_t n, cap;           /* its length; bytes allocated */
} sbuf;

void sweep_sb_add(sbuf *b, const char *s, size_t n);
void sweep_sb_puts(sbuf *b, const char *s);
__attribute__((format(printf, 2, 3))) void sweep_sb_printf(sbuf *b, const char *fmt, ...);
/* the string (never NULL), which the caller frees; b is empty again */
char *sweep_sb_take(sbuf *b);
/* a new string, as sprintf would print it */
__attribute__((format(printf, 1, 2))) char *sweep_xprintf(const char *fmt, ...);

/* The start of the sweep's FNV-1a hashes (ibrt_fnv1a, runtime/ibrt_io.h)
 * of a model's text (DIR/models/HASH) and of a label that had to be
 * made file-name safe (tests/sweep.sh recomputes both).  Not the
 * standard basis IBRT_FNV1A_BASIS (14695981039346656037: this is it
 * without its last digit), and never to be changed to it: the hashes name
 * the directories of existing sweeps, which a rerun over the same DIR
 * resumes. */
#define SWEEP_FNV_BASIS 1469598103934665603ull

/* the wall clock, in seconds */
double sweep_now(void);
bool sweep_exists(const char *path);
/* mkdir -p; false (errno set) on failure */
bool sweep_mkdir_p(const char *path);
/* The whole file, NUL-terminated; NULL when it cannot be read. */
char *sweep_read_text(const char *path, size_t *len);
/* Writes beside, then renames: never a half-written file.  Reports errors. */
bool sweep_write_atomic(const char *path, const char *data, size_t len);
/* One CSV cell (RFC 4180 quoting when needed). */
void sweep_csv_cell(sbuf *b, const char *s);
/* a JSON string literal */
void sweep_json_str(sbuf *b, const char *s);
/* A name safe in a file name: [A-Za-z0-9.+=-], every other byte '_'. */
char *sweep_safe_name(const char *s, size_t max);
/* H:MM:SS or M:SS */
void sweep_fmt_duration(char *buf, size_t size, double s);
/* x as %.17g (read back exactly) */
void sweep_sb_num(sbuf *b, double x);
/* whether v is the whole text of a finite number, into *x (when not NULL) */
bool sweep_numeric_text(const char *v, double *x);

/* ---- the sweep */

/* An edit of the spec's text: [begin, end) becomes prefix VALUE suffix. */
typedef struct {
    uint32_t begin, end;     /* byte offsets into the spec's text */
    const char *prefix, *suffix; /* text around the value ("lr = ", "" ...) */
    const char *canon;       /* the setting, for messages: "train.lr" */
} edit;

/* One --set axis. */
typedef struct {
    const char *key;         /* as given */
    char **values;           /* its values, as given (each one expression) */
    size_t nvalues;          /* how many */
    bool runtime;            /* steps: the trainer's --steps, no edit */
    long *steps;             /* runtime: the values as numbers */
    edit e;                  /* where a value goes in the text (e.canon also when runtime) */
} axis;

/* One distinct derived text: one trainer, DIR/models/HASH. */
typedef struct {
    char *text;              /* the derived spec */
    size_t len;              /* its length */
    char hex[17];            /* FNV-1a of the text and the ibc version */
    long steps, extend_steps;/* the spec's train.steps and extend steps */
    char *code;              /* the emitted C (SWEEP_PREPARE), until built */
    size_t code_len;         /* its length */
    size_t first_point;      /* the first grid point using it (build messages) */
} model;

/* One grid point: a value of every axis. */
typedef struct {
    size_t *vi;              /* the value of each axis */
    size_t model;            /* index into models ((size_t)-1 while it does not check) */
    long steps;              /* the trainer's --steps (0: its default) */
    char *label;             /* directory name */
    char *settings;          /* "lr=1e-3, depth=3" for messages */
} point;

/* a run's state: not started, stopped with a checkpoint, has a sweep_status */
enum { RUN_NEW, RUN_RESUME, RUN_FINISHED };

/* One run: a grid point and a seed. */
typedef struct {
    size_t point;            /* index into points */
    unsigned long long seed; /* its seed (the trainer's --seed) */
    char *dir, *rel;         /* DIR/runs/LABEL/seed_S and runs/LABEL/seed_S */
    int state;               /* RUN_NEW, RUN_RESUME or RUN_FINISHED */
    bool failed;             /* finished, not complete */
    pid_t pid;               /* the trainer while it runs, else 0 */
    double started;          /* wall clock at its start (sweep_now()) */
} run;

struct sweep {
    /* the command line */
    char *cmdline;           /* as sweep.md shows it (quoted for a shell) */
    const char *spec_path, *out; /* the spec; DIR (argv or out_alloc) */
    char *out_alloc;         /* the default DIR, results/MODEL-sweep */
    axis axes[SWEEP_MAX_AXES]; /* the --set axes, in command-line order */
    size_t naxes;            /* how many */
    long seeds;              /* --seeds K */
    unsigned long long seed0;/* the first seed: --seed S, else the spec's */
    bool seed_given;         /* --seed was given */
    int jobs;                /* --jobs N (default: the cores) */
    long checkpoint_every;   /* --checkpoint-every N (0: a tenth of the steps) */
    const char *max_growth;  /* --max-growth F, or NULL */
    char **plot;             /* --plot names (M* a prefix) */
    size_t nplot;            /* how many */
    bool dry_run;            /* --dry-run */
    sweep_mode mode;         /* SWEEP_PREPARE or SWEEP_ATTACH (MPI ranks) */

    /* the spec */
    ibc_source src;          /* its text */
    ibc_arena *arena;        /* holds ast, spec and the edits' strings */
    ast_node *ast;           /* its syntax tree, where keys are resolved */
    ibc_spec *spec;          /* checked */

    /* the plan */
    model *models;           /* the distinct trainers */
    size_t nmodels;          /* how many */
    point *points;           /* the grid, axis 0 slowest */
    size_t npoints;          /* how many */
    run *runs;               /* point-major: run i is point i / seeds */
    size_t nruns;            /* how many (npoints x seeds) */
    int lock_fd;             /* DIR/.lock, held while the sweep runs (-1: none) */

    /* progress */
    double t0, run_seconds;  /* start of the line; wall time of the timed runs */
    size_t done, failed, running; /* runs finished (of them not complete), running */
    size_t timed, earlier;   /* runs ended by this process; finished before it */
    int slots;               /* runs at once */
    bool tty, line_open;     /* stderr is a terminal; a line is drawn, not ended */
    double last_draw;        /* when it was drawn */
};


/* ---- sweep_grid.c */

/* v as a whole number in [lo, hi] into *out */
bool sweep_parse_whole(const char *v, long lo, long hi, long *out);
/* The command line into s (argv[0] is the program's name): 0, or 2 after a
 * usage message. */
int sweep_parse_args(sweep *s, int argc, char **argv);

enum { KEY_EDIT, KEY_STEPS, KEY_ERROR };

/* Resolves KEY against the spec's syntax tree: KEY_EDIT (with *e),
 * KEY_STEPS (the trainer's --steps), or KEY_ERROR with a message in err. */
int sweep_resolve_key(ibc_arena *a, const ibc_source *src, ast_node *root, const char *key, edit *e, sbuf *err);

/* ---- sweep_plan.c */

/* The grid: axes resolved, points, models (checked), runs and their state.
 * 0, or 1/2 after an error message. */
int sweep_plan(sweep *s);
/* --dry-run: the plan on stdout */
void sweep_print_plan(const sweep *s);
/* What makes a run the same run (its model, seed, steps, max growth): the
 * text of DIR/runs/LABEL/seed_S/sweep_run. */
char *sweep_run_identity(const sweep *s, const run *r);
/* sweep_status: "status WORD\nexit N\n..." -> WORD into status; false
 * when dir has none (the run is not finished). */
bool sweep_read_status(const char *dir, char *status, size_t ssize, char *exitv, size_t esize, double *t0,
                       double *t1);

/* ---- sweep_run.c */

/* fork + exec from an argument vector, no shell (sweep_run.c says more);
 * the pid, or -1. */
pid_t sweep_spawn(const char *path, char *const argv[], char *const envp[], const char *log, const char *cwd,
                  bool own_group);
/* Waits for pid (retrying on signals); its wait status, or -1. */
int sweep_wait_for(pid_t pid);
/* DIR/models/HASH/{spec.ibs, trainer.c, trainer, build.log} for every
 * model not built yet: 0, or 1 (or 128+N when stopped). */
int sweep_build_models(sweep *s);

/* ---- sweep_results.c */

/* A run's outcome, read back from its directory alone. */
typedef struct {
    char *name;              /* the metric's name in results.json */
    char *num;               /* the number as written; NULL for null */
} metric_val;

typedef struct {
    bool finished;           /* a sweep_status */
    char status[64], exitv[64]; /* sweep_status's (or interrupted, pending) */
    double started, ended;   /* sweep_status's wall clock times */
    bool have;               /* results.json read */
    char *json_status, *wall;/* results.json's status and wall_seconds (as written) */
    metric_val *m;           /* its numeric or null metrics, in file order */
    size_t nm;               /* how many */
    long passed, failed;     /* its checks passed and failed */
} result;

/* A metric's statistics at one grid point, over its counted runs. */
typedef struct {
    size_t n;                /* runs with a value */
    double med, min, max;    /* their median, minimum and maximum */
} mstat;

/* Reads run r's sweep_status and results.json into res (zeroed first): a
 * malformed results.json is warned about and its metrics left out. */
void sweep_read_result(const run *r, result *res);
void sweep_result_free(result *r);

/* Every run's result and what the outputs are computed from. */
typedef struct {
    result *res;             /* per run, in grid order */
    char **cols;             /* the metric columns, in the order of first appearance */
    size_t ncols;            /* how many */
    size_t **at;             /* per run: column -> index into res[i].m, or SIZE_MAX */
    mstat *st;               /* per point and column: st[p * ncols + c] */
    size_t (*cnt)[5];        /* per point: complete, check_failed, diverged, failed, unfinished */
    size_t n_complete, n_failed, n_unfinished;   /* runs */
    double wall_sum;         /* the trainers' wall time (set by sweep_timings) */
} sweep_table;

/* Reads every run directory (warnings for unreadable results.json) and
 * computes the columns, counts and statistics; sweep_table_free frees. */
void sweep_collect(sweep *s, sweep_table *t);
void sweep_table_free(const sweep *s, sweep_table *t);
/* sweep.csv: one row per run */
void sweep_csv(const sweep *s, const sweep_table *t, sbuf *csv);
/* summary.csv, and summary.json up to its "points" array: the caller
 * adds the learning-rate choice and closes the object */
void sweep_summary(const sweep *s, const sweep_table *t, sbuf *sc, sbuf *sj);
/* timings.csv, and t->wall_sum */
void sweep_timings(const sweep *s, sweep_table *t, sbuf *tc);

#endif
