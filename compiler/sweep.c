/*
 * sweep.c: `ibc sweep`, a grid of ordinary trainer runs.  The contract is
 * in sweep.h, the user's account in docs/sweeps.md.
 *
 * In order: small utilities; the command line (parse_args); each --set
 * key resolved to an edit of the spec's text (resolve_key); the grid
 * points, their derived texts and the distinct trainers among them, each
 * checked by the ordinary front end (plan, check_model); the builds
 * (build_models); the runs (start_run, end_run, sweep_run_all); the
 * outputs, read back from the run directories alone (sweep_report).
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
#include "sweep.h"
#include "ibc.h"
#include "design.h"
#include "emit.h"
#include "sym.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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

const char sweep_usage[] =
    "ibc sweep SPEC [--set KEY=V1,V2,...]... [--seeds K] [--seed S] [--jobs N] [--out DIR]\n"
    "                 [--plot M1,M2,...] [--checkpoint-every N] [--max-growth F] [--dry-run]";

const char sweep_help[] =
    "Run the spec's trainer over a grid: every combination of the --set values,\n"
    "each with K seeds, as ordinary trainer runs in DIR/runs/LABEL/seed_S.\n\n"
    "  --set KEY=V1,V2,...  an axis of the grid.  KEY is a setting of the spec:\n"
    "                       lr, steps, batch, record_every, extend.steps, extend.lr\n"
    "                       (train); depth, strength, rank, design.lr, design.init,\n"
    "                       design.FACTOR (design); a dim by name (n or dim.n);\n"
    "                       param.NAME (its initialisation); data.ARG, init.ARG;\n"
    "                       verify.KEY; vanilla.lr, l1.lr, l1.weight (baselines).\n"
    "                       Values are expressions as in the spec (1e-3, 4/3, full,\n"
    "                       normal(0, 0.1)); commas inside brackets stay in a value.\n"
    "                       A learning rate may be auto or auto(LO, HI, steps = K)\n"
    "                       (chosen by the trainer's trial runs, docs/sweeps.md).\n"
    "  --seeds K            seeds S..S+K-1 for every grid point (default 1)\n"
    "  --seed S             the first seed (default: the spec's)\n"
    "  --jobs N             trainers at once, each with OPENBLAS_NUM_THREADS=1\n"
    "                       (default: the number of cores)\n"
    "  --out DIR            default results/MODEL-sweep\n"
    "  --plot M1,M2,...     metrics drawn against each axis (default: final_loss*\n"
    "                       and test_mse*; M* names every metric starting with M)\n"
    "  --checkpoint-every N passed to every trainer (default: a tenth of its steps)\n"
    "  --max-growth F       passed to every trainer (divergence threshold)\n"
    "  --dry-run            check every grid point and print the plan; run nothing\n\n"
    "steps and seed are trainer flags: they never rebuild.  Each distinct derived\n"
    "spec is built once into DIR/models/HASH.  Run again over the same DIR to\n"
    "continue: finished runs are kept, interrupted ones resume from their\n"
    "checkpoint.  Outputs: DIR/sweep.csv (one row per run), summary.csv and\n"
    "summary.json (median/min/max per grid point), timings.csv, figures/ and\n"
    "sweep.md (docs/sweeps.md).\n"
    "Exit status: 0 every run complete and its checks pass, 1 sweep error,\n"
    "2 usage or a refused --set, 3 some runs diverged or failed, 75 some runs\n"
    "unfinished (rerun to continue), 128+N stopped by signal N.";

/* ---------------------------------------------------------------- utilities */

static void oom(void)
{
    fprintf(stderr, "ibc sweep: error: out of memory\n");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *t = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, t, (size_t)n);
    free(t);
}

static char *sb_take(sbuf *b)
{
    if (!b->s)
        sb_add(b, "", 0);
    char *s = b->s;
    memset(b, 0, sizeof *b);
    return s;
}

__attribute__((format(printf, 1, 2))) static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(t, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    return t;
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}
#define FNV0 1469598103934665603ull

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* mkdir -p; false (errno set) on failure */
static bool mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                free(p);
                return false;
            }
            *c = '/';
        }
    bool ok = mkdir(p, 0777) == 0 || errno == EEXIST;
    int e = errno;
    free(p);
    if (ok) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return false;
        }
    }
    errno = e;
    return ok;
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf b = { 0 };
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_add(&b, buf, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.n;
    return sb_take(&b);
}

/* Writes beside, then renames: never a half-written file.  Reports errors. */
static bool write_atomic(const char *path, const char *data, size_t len)
{
    char *tmp = xprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "ibc sweep: error: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* One CSV cell (RFC 4180 quoting when needed). */
static void csv_cell(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        sb_puts(b, s);
        return;
    }
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            sb_add(b, "\"", 1);
        sb_add(b, s, 1);
    }
    sb_add(b, "\"", 1);
}

static void json_str(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sb_printf(b, "\\%c", *c);
        else if (*c == '\n')
            sb_puts(b, "\\n");
        else if (*c == '\t')
            sb_puts(b, "\\t");
        else if (*c < 0x20 || *c == 0x7f)
            sb_printf(b, "\\u%04x", *c);
        else
            sb_add(b, (const char *)c, 1);
    }
    sb_add(b, "\"", 1);
}

/* A name safe in a file name: [A-Za-z0-9.+=-], every other byte '_'. */
static char *safe_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *d = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '+' || c == '-' || c == '=';
        d[i] = ok ? c : '_';
    }
    d[n] = '\0';
    if (d[0] == '.')   /* never ".", ".." or a hidden file */
        d[0] = '_';
    return d;
}

static void fmt_duration(char *buf, size_t size, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

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

/* ------------------------------------------------------------ the sweep */

/* An edit of the spec's text: [begin, end) becomes prefix VALUE suffix. */
typedef struct {
    uint32_t begin, end;
    const char *prefix, *suffix;
    const char *canon;       /* the setting, for messages: "train.lr" */
} edit;

typedef struct {
    const char *key;         /* as given */
    char **values;
    size_t nvalues;
    bool runtime;            /* steps: the trainer's --steps, no edit */
    long *steps;             /* runtime: the values as numbers */
    edit e;
} axis;

typedef struct {
    char *text;              /* the derived spec */
    size_t len;
    char hex[17];            /* FNV-1a of the text and the ibc version */
    long steps, extend_steps;/* the spec's train.steps and extend steps */
    char *code;              /* the emitted C (SWEEP_PREPARE), until built */
    size_t code_len;
    size_t first_point;
} model;

typedef struct {
    size_t *vi;              /* the value of each axis */
    size_t model;
    long steps;              /* the trainer's --steps (0: its default) */
    char *label;             /* directory name */
    char *settings;          /* "lr=1e-3, depth=3" for messages */
} point;

enum { RUN_NEW, RUN_RESUME, RUN_FINISHED };

typedef struct {
    size_t point;
    unsigned long long seed;
    char *dir, *rel;         /* DIR/runs/LABEL/seed_S and runs/LABEL/seed_S */
    int state;
    bool failed;             /* finished, not complete */
    pid_t pid;
    double started;
} run;

struct sweep {
    /* the command line */
    char *cmdline;
    const char *spec_path, *out;
    char *out_alloc;
    axis axes[SWEEP_MAX_AXES];
    size_t naxes;
    long seeds;
    unsigned long long seed0;
    bool seed_given;
    int jobs;
    long checkpoint_every;
    const char *max_growth;
    char **plot;
    size_t nplot;
    bool dry_run;
    sweep_mode mode;

    /* the spec */
    ibc_source src;
    ibc_arena *arena;
    ast_node *ast;
    ibc_spec *spec;

    model *models;
    size_t nmodels;
    point *points;
    size_t npoints;
    run *runs;
    size_t nruns;
    int lock_fd;

    /* progress */
    double t0, run_seconds;
    size_t done, failed, running, timed, earlier;
    int slots;
    bool tty, line_open;
    double last_draw;
};

size_t sweep_nruns(const sweep *s) { return s->nruns; }
bool sweep_run_finished(const sweep *s, size_t i) { return s->runs[i].state == RUN_FINISHED; }

/* ------------------------------------------------------- the command line */

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "ibc sweep: error: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nusage: %s\nrun 'ibc sweep --help' for the options\n", sweep_usage);
    return 2;
}

static bool parse_whole(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

/* Splits a comma-separated list at its top-level commas (not inside
 * brackets or strings); false when brackets or quotes do not balance. */
static bool split_values(const char *list, char ***out, size_t *n)
{
    size_t cap = 4;
    char **v = xmalloc(cap * sizeof *v);
    *n = 0;
    int depth = 0;
    bool quote = false;
    const char *start = list;
    for (const char *c = list;; c++) {
        if (quote) {
            if (!*c)
                goto bad;
            if (*c == '"')
                quote = false;
            continue;
        }
        if (*c == '"')
            quote = true;
        else if (*c == '(' || *c == '[')
            depth++;
        else if (*c == ')' || *c == ']') {
            if (--depth < 0)
                goto bad;
        } else if ((*c == ',' && depth == 0) || !*c) {
            if (!*c && depth)
                goto bad;
            const char *b = start, *e = c;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (*n == cap)
                v = xrealloc(v, (cap *= 2) * sizeof *v);
            v[*n] = xmalloc((size_t)(e - b) + 1);
            memcpy(v[*n], b, (size_t)(e - b));
            v[*n][e - b] = '\0';
            (*n)++;
            if (!*c)
                break;
            start = c + 1;
        }
    }
    *out = v;
    return true;
bad:
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    *n = 0;
    return false;
}

/* A value must be one expression of the spec language and nothing else:
 * NULL when it is, else what is wrong. */
static const char *value_problem(const char *v)
{
    if (!*v)
        return "an empty value";
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c < 0x20 || *c == 0x7f)
            return "a control character (a newline, a tab ...)";
        if (strchr(";#{}\\", *c))
            return "one of ; # { } \\ (a value is one expression)";
    }
    return NULL;
}

static int parse_args(sweep *s, int argc, char **argv)
{
    sbuf cmd = { 0 };
    for (int i = 0; i < argc; i++) {
        if (i)
            sb_add(&cmd, " ", 1);
        /* shown quoted where a shell would need it (sweep.md) */
        if (strpbrk(argv[i], " \t\n'\"\\$`*?[]()<>|&;#~!{}") || !*argv[i]) {
            sb_add(&cmd, "'", 1);
            for (const char *c = argv[i]; *c; c++)
                if (*c == '\'')
                    sb_puts(&cmd, "'\\''");
                else
                    sb_add(&cmd, c, 1);
            sb_add(&cmd, "'", 1);
        } else
            sb_puts(&cmd, argv[i]);
    }
    s->cmdline = sb_take(&cmd);
    if (!strcmp(argv[0], "sweep")) {   /* `ibc sweep`, as main passes it */
        char *c = xprintf("ibc %s", s->cmdline);
        free(s->cmdline);
        s->cmdline = c;
    }
    s->seeds = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->jobs = ncpu > 0 ? (int)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        bool takes = !strcmp(a, "--set") || !strcmp(a, "--seeds") || !strcmp(a, "--seed") || !strcmp(a, "--jobs") ||
                     !strcmp(a, "--out") || !strcmp(a, "--plot") || !strcmp(a, "--checkpoint-every") ||
                     !strcmp(a, "--max-growth");
        if (takes && !v)
            return usage_error("%s needs a value%s", a, "");
        if (!strcmp(a, "--set")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return usage_error("--set '%s': expected KEY=V1,V2,... (e.g. --set lr=1e-4,1e-3)%s", v, "");
            if (s->naxes == SWEEP_MAX_AXES)
                return usage_error("more than %s axes%s", "16", "");
            axis *ax = &s->axes[s->naxes];
            char *key = xmalloc((size_t)(eq - v) + 1);
            memcpy(key, v, (size_t)(eq - v));
            key[eq - v] = '\0';
            for (size_t k = 0; k < s->naxes; k++)
                if (!strcmp(s->axes[k].key, key)) {
                    free(key);
                    return usage_error("--set %s is given twice: put every value in one list (--set %s=V1,V2,...)",
                                       s->axes[k].key, s->axes[k].key);
                }
            ax->key = key;
            s->naxes++;
            if (!split_values(eq + 1, &ax->values, &ax->nvalues))
                return usage_error("--set %s: brackets or quotes do not balance in '%s'", key, eq + 1);
            for (size_t k = 0; k < ax->nvalues; k++) {
                const char *p = value_problem(ax->values[k]);
                if (p) {
                    fprintf(stderr, "ibc sweep: error: --set %s: value %zu ('%s') holds %s\n", key, k + 1,
                            ax->values[k], p);
                    return 2;
                }
                for (size_t j = 0; j < k; j++)
                    if (!strcmp(ax->values[j], ax->values[k]))
                        return usage_error("--set %s: the value '%s' is given twice", key, ax->values[k]);
            }
            i++;
        } else if (!strcmp(a, "--seeds")) {
            if (!parse_whole(v, 1, 10000, &x))
                return usage_error("--seeds '%s': expected a whole number from 1 to 10000%s", v, "");
            s->seeds = x;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_whole(v, 0, 2147483647L, &x))
                return usage_error("--seed '%s': expected a whole number from 0 to 2147483647%s", v, "");
            s->seed0 = (unsigned long long)x;
            s->seed_given = true;
            i++;
        } else if (!strcmp(a, "--jobs")) {
            if (!parse_whole(v, 1, 4096, &x))
                return usage_error("--jobs '%s': expected a whole number from 1 to 4096%s", v, "");
            s->jobs = (int)x;
            i++;
        } else if (!strcmp(a, "--out")) {
            if (!*v)
                return usage_error("--out needs a directory%s%s", "", "");
            s->out = v;
            i++;
        } else if (!strcmp(a, "--plot")) {
            char **names;
            size_t n;
            if (!split_values(v, &names, &n))
                return usage_error("--plot '%s': expected metric names separated by commas%s", v, "");
            for (size_t k = 0; k < n; k++)
                if (!*names[k])
                    return usage_error("--plot '%s': an empty metric name%s", v, "");
            s->plot = names;
            s->nplot = n;
            i++;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (!parse_whole(v, 1, 1000000000L, &x))
                return usage_error("--checkpoint-every '%s': expected a whole number from 1 to 1000000000%s", v, "");
            s->checkpoint_every = x;
            i++;
        } else if (!strcmp(a, "--max-growth")) {
            char *end;
            double g = strtod(v, &end);
            if (!*v || *end || !(g > 1) || !isfinite(g))
                return usage_error("--max-growth '%s': expected a finite number greater than 1%s", v, "");
            s->max_growth = v;
            i++;
        } else if (!strcmp(a, "--dry-run")) {
            s->dry_run = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'%s", a, "");
        } else if (s->spec_path) {
            return usage_error("a second spec '%s' (one spec per sweep)%s", a, "");
        } else
            s->spec_path = a;
    }
    if (!s->spec_path)
        return usage_error("no spec given%s%s", "", "");
    return 0;
}

/* ------------------------------------------------- keys: edits of the text */

static ast_node *find_stmt(ast_node *root, ast_kind kind, const char *name)
{
    for (size_t i = 0; i < root->nkids; i++) {
        ast_node *n = root->kids[i];
        if (n && n->kind == kind && (!name || (n->name && !strcmp(n->name, name))))
            return n;
    }
    return NULL;
}

/* The '{' of a block that starts at or after `from` on the same line, or -1. */
static long block_brace(const ibc_source *src, uint32_t from, uint32_t limit)
{
    for (uint32_t i = from; i < limit && i < src->len; i++) {
        char c = src->text[i];
        if (c == '{')
            return (long)i;
        if (c == '\n' || c == ';')
            return -1;
    }
    return -1;
}

/* A setting `name op value` of a block statement: its value replaced, or
 * inserted after the '{' (or as a new block when the statement has none). */
static void edit_block(ibc_arena *a, const ibc_source *src, ast_node *stmt, long brace, const char *name, int op,
                       edit *e)
{
    for (size_t i = 0; i < stmt->nkids; i++) {
        ast_node *k = stmt->kids[i];
        if (k && k->kind == AST_SETTING && !k->rhs && k->name && !strcmp(k->name, name) && k->lhs) {
            e->begin = k->lhs->loc.begin;
            e->end = k->lhs->loc.end;
            e->prefix = e->suffix = "";
            return;
        }
    }
    (void)src;
    if (brace >= 0) {
        e->begin = e->end = (uint32_t)brace + 1;
        e->prefix = arena_printf(a, "%s %c ", name, op);
        e->suffix = "; ";
    } else {
        e->begin = e->end = stmt->loc.end;
        e->prefix = arena_printf(a, " { %s %c ", name, op);
        e->suffix = " }";
    }
}

/* A keyword argument of a call: its value replaced, or added before ')'. */
static bool edit_kwarg(ibc_arena *a, const ibc_source *src, ast_node *call, const char *name, edit *e)
{
    for (size_t i = 0; i < call->nkids; i++) {
        ast_node *k = call->kids[i];
        if (k && k->kind == AST_KWARG && k->name && !strcmp(k->name, name) && k->lhs) {
            e->begin = k->lhs->loc.begin;
            e->end = k->lhs->loc.end;
            e->prefix = e->suffix = "";
            return true;
        }
    }
    if (call->loc.end == 0 || call->loc.end > src->len || src->text[call->loc.end - 1] != ')')
        return false;
    e->begin = e->end = call->loc.end - 1;
    e->prefix = arena_printf(a, "%s%s = ", call->nkids ? ", " : "", name);
    e->suffix = "";
    return true;
}

static bool in_list(const char *w, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i]))
            return true;
    return false;
}

static const char *const train_keys[] = { "lr", "batch", "record_every" };
static const char *const design_eq_keys[] = { "depth", "strength", "rank", "lr" };
static const char *const verify_keys[] = { "invariance_tol", "gradient_tol", "logdet_tol", "stationary_beta",
                                           "stationary_eps" };

/* Every key this spec accepts, for "did you mean" and the error's list. */
static size_t key_candidates(ibc_arena *a, ast_node *root, const char **c, size_t cap)
{
    size_t n = 0;
#define ADD(s)            \
    do {                  \
        if (n < cap)      \
            c[n++] = (s); \
    } while (0)
    ADD("lr");
    ADD("steps");
    ADD("batch");
    ADD("record_every");
    ADD("extend.steps");
    ADD("extend.lr");
    if (find_stmt(root, AST_DESIGN, NULL)) {
        ADD("depth");
        ADD("strength");
        ADD("rank");
        ADD("design.lr");
        ADD("design.init");
    }
    for (size_t i = 0; i < root->nkids; i++) {
        ast_node *s = root->kids[i];
        if (!s)
            continue;
        if (s->kind == AST_DIM && s->name)
            ADD(s->name);
        else if (s->kind == AST_PARAM && s->name)
            ADD(arena_printf(a, "param.%s", s->name));
        else if ((s->kind == AST_DATA || s->kind == AST_INIT) && s->lhs && s->lhs->kind == AST_CALL)
            for (size_t k = 0; k < s->lhs->nkids; k++)
                if (s->lhs->kids[k]->kind == AST_KWARG)
                    ADD(arena_printf(a, "%s.%s", s->kind == AST_DATA ? "data" : "init", s->lhs->kids[k]->name));
        if (s->kind == AST_BASELINE && s->lhs && s->lhs->name) {
            ADD(arena_printf(a, "%s.lr", s->lhs->name));
            if (s->lhs->kind == AST_CALL)
                for (size_t k = 0; k < s->lhs->nkids; k++)
                    if (s->lhs->kids[k]->kind == AST_KWARG)
                        ADD(arena_printf(a, "%s.%s", s->lhs->name, s->lhs->kids[k]->name));
        }
    }
    for (size_t i = 0; i < sizeof verify_keys / sizeof *verify_keys; i++)
        ADD(arena_printf(a, "verify.%s", verify_keys[i]));
#undef ADD
    return n;
}

enum { KEY_EDIT, KEY_STEPS, KEY_ERROR };

/* Resolves KEY against the spec's syntax tree: KEY_EDIT (with *e),
 * KEY_STEPS (the trainer's --steps), or KEY_ERROR with a message in err. */
static int resolve_key(ibc_arena *a, const ibc_source *src, ast_node *root, const char *key, edit *e, sbuf *err)
{
    memset(e, 0, sizeof *e);
    const char *dot = strchr(key, '.');
    char head[128];
    const char *rest = dot ? dot + 1 : NULL;
    snprintf(head, sizeof head, "%.*s", dot ? (int)(dot - key) : (int)strlen(key), key);
    if (!rest && in_list(key, design_eq_keys, 3))   /* depth, strength, rank: the design's */
        return resolve_key(a, src, root, arena_printf(a, "design.%s", key), e, err);
    if (!rest && (!strcmp(key, "lr") || !strcmp(key, "batch") || !strcmp(key, "record_every") ||
                  !strcmp(key, "steps") || !strcmp(key, "seed")))
        return resolve_key(a, src, root, arena_printf(a, "train.%s", key), e, err);
    if (!rest) {
        ast_node *d = find_stmt(root, AST_DIM, key);
        if (d)
            return resolve_key(a, src, root, arena_printf(a, "dim.%s", key), e, err);
        if (find_stmt(root, AST_PARAM, key)) {
            sb_printf(err, "'%s' is a parameter: its initialisation is param.%s (e.g. --set 'param.%s=normal(0, 0.1)')",
                      key, key, key);
            return KEY_ERROR;
        }
    }
    e->canon = key;
    if (rest && !strcmp(head, "train")) {
        ast_node *t = find_stmt(root, AST_TRAIN, NULL);
        if (!strcmp(rest, "steps"))
            return KEY_STEPS;
        if (!strcmp(rest, "seed")) {
            sb_puts(err, "the seed is not an axis: --seeds K runs seeds S..S+K-1 at every grid point (--seed S sets S)");
            return KEY_ERROR;
        }
        if (!in_list(rest, train_keys, 3)) {
            sb_printf(err, "'%s' is not a setting of train (lr, steps, batch, record_every, extend.steps, extend.lr)",
                      rest);
            return KEY_ERROR;
        }
        if (!t)
            return sb_puts(err, "the spec has no train block"), KEY_ERROR;
        edit_block(a, src, t, block_brace(src, t->loc.begin, t->loc.end), rest, '=', e);
        e->canon = arena_printf(a, "train.%s", rest);
        return KEY_EDIT;
    }
    if (rest && !strcmp(head, "extend")) {
        ast_node *t = find_stmt(root, AST_TRAIN, NULL);
        if (strcmp(rest, "steps") && strcmp(rest, "lr")) {
            sb_printf(err, "'%s' is not a setting of extend (steps, lr)", rest);
            return KEY_ERROR;
        }
        if (!t)
            return sb_puts(err, "the spec has no train block"), KEY_ERROR;
        ast_node *x = NULL;
        for (size_t i = 0; i < t->nkids; i++)
            if (t->kids[i] && t->kids[i]->kind == AST_BLOCK && t->kids[i]->name && !strcmp(t->kids[i]->name, "extend"))
                x = t->kids[i];
        if (x)
            edit_block(a, src, x, block_brace(src, x->name_loc.end, x->loc.end), rest, '=', e);
        else {
            long brace = block_brace(src, t->loc.begin, t->loc.end);
            if (brace < 0)
                return sb_puts(err, "the train block has no '{'"), KEY_ERROR;
            e->begin = e->end = (uint32_t)brace + 1;
            e->prefix = arena_printf(a, "extend { %s = ", rest);
            e->suffix = " }; ";
        }
        e->canon = arena_printf(a, "train.extend.%s", rest);
        return KEY_EDIT;
    }
    if (rest && !strcmp(head, "design")) {
        ast_node *d = find_stmt(root, AST_DESIGN, NULL);
        if (!d) {
            sb_printf(err, "the spec has no design statement, so no design setting ('%s')", rest);
            return KEY_ERROR;
        }
        long brace = d->lhs ? block_brace(src, d->lhs->loc.end, d->loc.end) : -1;
        if (in_list(rest, design_eq_keys, 4)) {
            /* depth and strength say the same: setting one replaces the other */
            const char *other = !strcmp(rest, "depth") ? "strength" : !strcmp(rest, "strength") ? "depth" : NULL;
            bool has = false;
            ast_node *o = NULL;
            for (size_t i = 0; i < d->nkids; i++) {
                ast_node *k = d->kids[i];
                if (k && k->kind == AST_SETTING && k->name && !strcmp(k->name, rest))
                    has = true;
                if (k && k->kind == AST_SETTING && k->name && other && !strcmp(k->name, other))
                    o = k;
            }
            if (!has && o) {
                e->begin = o->loc.begin;
                e->end = o->loc.end;
                e->prefix = arena_printf(a, "%s = ", rest);
                e->suffix = "";
            } else
                edit_block(a, src, d, brace, rest, '=', e);
        } else {
            /* init or a factor: a distribution */
            bool ident = (rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z') || rest[0] == '_';
            for (const char *c = rest; *c && ident; c++)
                ident = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
            if (!ident) {
                sb_printf(err, "'%s' is not a setting of design (depth, strength, rank, lr, init or a factor's name)",
                          rest);
                return KEY_ERROR;
            }
            edit_block(a, src, d, brace, rest, '~', e);
        }
        e->canon = arena_printf(a, "design.%s", rest);
        return KEY_EDIT;
    }
    if (rest && (!strcmp(head, "data") || !strcmp(head, "init"))) {
        ast_node *st = find_stmt(root, !strcmp(head, "data") ? AST_DATA : AST_INIT, NULL);
        if (!st || !st->lhs || st->lhs->kind != AST_CALL) {
            sb_printf(err, "the spec has no %s statement", head);
            return KEY_ERROR;
        }
        if (!edit_kwarg(a, src, st->lhs, rest, e)) {
            sb_printf(err, "cannot place %s in the %s statement", key, head);
            return KEY_ERROR;
        }
        e->canon = arena_printf(a, "%s.%s", head, rest);
        return KEY_EDIT;
    }
    if (rest && !strcmp(head, "dim")) {
        ast_node *d = find_stmt(root, AST_DIM, rest);
        if (!d || !d->lhs) {
            sb_printf(err, "the spec has no dim '%s'", rest);
            return KEY_ERROR;
        }
        e->begin = d->lhs->loc.begin;
        e->end = d->lhs->loc.end;
        e->prefix = e->suffix = "";
        e->canon = arena_printf(a, "dim.%s", rest);
        return KEY_EDIT;
    }
    if (rest && !strcmp(head, "param")) {
        ast_node *p = find_stmt(root, AST_PARAM, rest);
        if (!p) {
            sb_printf(err, "the spec has no param '%s'", rest);
            return KEY_ERROR;
        }
        if (p->lhs) {
            e->begin = p->lhs->loc.begin;
            e->end = p->lhs->loc.end;
            e->prefix = e->suffix = "";
        } else {
            e->begin = e->end = p->loc.end;
            e->prefix = " ~ ";
            e->suffix = "";
        }
        e->canon = arena_printf(a, "param.%s", rest);
        return KEY_EDIT;
    }
    if (rest && !strcmp(head, "verify")) {
        if (!in_list(rest, verify_keys, sizeof verify_keys / sizeof *verify_keys)) {
            sb_printf(err, "'%s' is not a setting of verify", rest);
            return KEY_ERROR;
        }
        ast_node *v = find_stmt(root, AST_VERIFY, NULL);
        if (v)
            edit_block(a, src, v, block_brace(src, v->loc.begin, v->loc.end), rest, '=', e);
        else {
            /* a new statement after the last line */
            e->begin = e->end = (uint32_t)src->len;
            bool nl = src->len && src->text[src->len - 1] == '\n';
            e->prefix = arena_printf(a, "%sverify { %s = ", nl ? "" : "\n", rest);
            e->suffix = " }\n";
        }
        e->canon = arena_printf(a, "verify.%s", rest);
        return KEY_EDIT;
    }
    if (rest) {
        /* a baseline by its name: vanilla.lr, l1.lr, l1.weight */
        ast_node *b = NULL;
        size_t count = 0;
        for (size_t i = 0; i < root->nkids; i++) {
            ast_node *s = root->kids[i];
            if (s && s->kind == AST_BASELINE && s->lhs && s->lhs->name && !strcmp(s->lhs->name, head)) {
                b = b ? b : s;
                count++;
            }
        }
        if (b && count > 1) {
            sb_printf(err, "the spec has %zu baselines named '%s': a key names one", count, head);
            return KEY_ERROR;
        }
        if (b && !strcmp(rest, "lr")) {
            edit_block(a, src, b, block_brace(src, b->lhs->loc.end, b->loc.end), "lr", '=', e);
            e->canon = arena_printf(a, "baseline.%s.lr", head);
            return KEY_EDIT;
        }
        if (b && b->lhs->kind == AST_CALL) {
            if (!edit_kwarg(a, src, b->lhs, rest, e)) {
                sb_printf(err, "cannot place %s in the baseline", key);
                return KEY_ERROR;
            }
            e->canon = arena_printf(a, "baseline.%s.%s", head, rest);
            return KEY_EDIT;
        }
        if (b) {
            sb_printf(err, "baseline %s takes no argument '%s' (only lr)", head, rest);
            return KEY_ERROR;
        }
    }
    const char *cand[256];
    size_t n = key_candidates(a, root, cand, 256);
    const char *best = diag_suggest(key, cand, n);
    sb_printf(err, "'%s' is not a setting of this spec", key);
    if (best)
        sb_printf(err, "; did you mean '%s'?", best);
    sb_puts(err, "\n  keys of this spec:");
    for (size_t i = 0; i < n; i++)
        sb_printf(err, " %s", cand[i]);
    return KEY_ERROR;
}

/* ------------------------------------------------------------------ plan */

/* The spec's text with every edited axis at its value vi[k]; vbegin[k]
 * receives where value k starts in the result. */
static char *derive_text(const sweep *s, const size_t *vi, size_t *len, uint32_t *vbegin)
{
    size_t order[SWEEP_MAX_AXES], n = 0;
    for (size_t k = 0; k < s->naxes; k++)
        if (!s->axes[k].runtime)
            order[n++] = k;
    /* by position; at one position insertions first, then in axis order */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const edit *a = &s->axes[order[j - 1]].e, *b = &s->axes[order[j]].e;
            bool swap = a->begin > b->begin ||
                        (a->begin == b->begin && (a->end > a->begin) && b->end == b->begin);
            if (!swap)
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    sbuf b = { 0 };
    uint32_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const axis *ax = &s->axes[order[i]];
        sb_add(&b, s->src.text + pos, ax->e.begin - pos);
        sb_puts(&b, ax->e.prefix);
        vbegin[order[i]] = (uint32_t)b.n;
        sb_puts(&b, ax->values[vi[order[i]]]);
        sb_puts(&b, ax->e.suffix);
        pos = ax->e.end;
    }
    sb_add(&b, s->src.text + pos, s->src.len - pos);
    *len = b.n;
    return sb_take(&b);
}

static char *point_settings(const sweep *s, const size_t *vi, const char *sep)
{
    sbuf b = { 0 };
    for (size_t k = 0; k < s->naxes; k++)
        sb_printf(&b, "%s%s=%s", k ? sep : "", s->axes[k].key, s->axes[k].values[vi[k]]);
    if (!s->naxes)
        sb_puts(&b, "default");
    return sb_take(&b);
}

/* Checks the derived spec of model m (its first grid point's values vi,
 * starting at vbegin in its text):
 * it parses, every value is exactly the expression of its setting, it
 * checks; under SWEEP_PREPARE also the design, the derivation and the
 * trainer's C (kept in m->code).  Diagnostics are held and shown, after
 * a line naming the settings, only when there is an error. */
static bool check_model(sweep *s, model *m, const size_t *vi, const uint32_t *vbegin)
{
    ibc_source src = { s->spec_path, m->text, m->len };
    ibc_arena *a = arena_new();
    char *held = NULL;
    size_t hlen = 0;
    FILE *hf = open_memstream(&held, &hlen);
    if (!hf)
        oom();
    ibc_diag d;
    diag_init(&d, &src, hf);
    ast_node *root = parse_spec(a, &src, &d);
    bool ok = d.errors == 0 && root;
    for (size_t k = 0; ok && k < s->naxes; k++) {
        const axis *ax = &s->axes[k];
        if (ax->runtime)
            continue;
        edit e;
        sbuf err = { 0 };
        int r = resolve_key(a, &src, root, ax->key, &e, &err);
        size_t vlen = strlen(ax->values[vi[k]]);
        if (r != KEY_EDIT || e.end - e.begin != vlen || e.begin != vbegin[k] || *e.prefix) {
            ibc_loc at = { vbegin[k], vbegin[k] + (uint32_t)vlen };
            diag_error(&d, at, "'%s' is not one expression: it does not stand as the value of %s", ax->values[vi[k]],
                       ax->e.canon);
            ok = false;
        }
        free(err.s);
    }
    ibc_spec *sp = ok ? sema_check(a, root, &d) : NULL;
    ok = sp != NULL;
    if (ok) {
        m->steps = sp->train.steps;
        m->extend_steps = sp->train.extend_steps;
    }
    if (ok && s->mode == SWEEP_PREPARE) {
        FILE *code = open_memstream(&m->code, &m->code_len);
        if (!code)
            oom();
        design_result *r = NULL;
        if (sp->design.kind != DESIGN_NONE)
            r = design_synthesise(a, sp, &d);
        sym_derivation *dv = sym_derive(a, sp, &d);
        ok = (sp->design.kind == DESIGN_NONE || r) && dv && emit_program(code, sp, r, dv, &d);
        fclose(code);
        ok = ok && d.errors == 0;
    }
    if (!ok)
        diag_summary(&d);
    fclose(hf);
    if (!ok) {
        char *set = point_settings(s, vi, ", ");
        fprintf(stderr, "ibc sweep: error: %s with %s does not check (the lines are the spec's, with the values "
                "in place):\n", s->spec_path, set);
        fwrite(held, 1, hlen, stderr);
        free(set);
        free(m->code);
        m->code = NULL;
    }
    free(held);
    arena_free(a);
    return ok;
}

static void model_hash(model *m)
{
    unsigned long long h = fnv(FNV0, m->text, m->len);
    h = fnv(h, "\0" IBC_VERSION, sizeof IBC_VERSION);
    snprintf(m->hex, sizeof m->hex, "%016llx", h);
}

static char *run_identity(const sweep *s, const run *r)
{
    const point *p = &s->points[r->point];
    return xprintf("model %s\nseed %llu\nsteps %ld\nmax_growth %s\n", s->models[p->model].hex, r->seed, p->steps,
                   s->max_growth ? s->max_growth : "default");
}

/* sweep_status: "status WORD\nexit N\n..." -> WORD into status (NULL when absent) */
static bool read_status(const char *dir, char *status, size_t ssize, char *exitv, size_t esize, double *t0,
                        double *t1)
{
    char *path = xprintf("%s/sweep_status", dir);
    char *t = read_text(path, NULL);
    free(path);
    if (!t)
        return false;
    char w[64] = "", e[64] = "";
    double a = 0, b = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "status ", 7))
            snprintf(w, sizeof w, "%s", line + 7);
        else if (!strncmp(line, "exit ", 5))
            snprintf(e, sizeof e, "%s", line + 5);
        else if (!strncmp(line, "started ", 8))
            a = strtod(line + 8, NULL);
        else if (!strncmp(line, "ended ", 6))
            b = strtod(line + 6, NULL);
    }
    free(t);
    if (!*w)
        return false;
    if (status)
        snprintf(status, ssize, "%s", w);
    if (exitv)
        snprintf(exitv, esize, "%s", e);
    if (t0)
        *t0 = a;
    if (t1)
        *t1 = b;
    return true;
}

/* The grid: axes resolved, points, models (checked), runs and their state. */
static int plan(sweep *s)
{
    /* the spec itself must check first */
    const char *err;
    if (!source_read(&s->src, s->spec_path, &err)) {
        fprintf(stderr, "ibc sweep: error: cannot read '%s': %s\n", s->spec_path, err);
        return 1;
    }
    s->arena = arena_new();
    ibc_diag d;
    /* its warnings once: not again from every MPI rank */
    FILE *quiet = s->mode == SWEEP_ATTACH ? fopen("/dev/null", "w") : NULL;
    diag_init(&d, &s->src, quiet ? quiet : stderr);
    s->ast = parse_spec(s->arena, &s->src, &d);
    if (d.errors == 0)
        s->spec = sema_check(s->arena, s->ast, &d);
    diag_summary(&d);
    if (quiet)
        fclose(quiet);
    if (!s->spec) {
        fprintf(stderr, "ibc sweep: error: %s does not check (above): fix it before sweeping it\n", s->spec_path);
        return 1;
    }
    if (!s->seed_given)
        s->seed0 = s->spec->train.seed;
    if (s->seed0 + (unsigned long long)s->seeds - 1 > 2147483647ull) {
        fprintf(stderr, "ibc sweep: error: seeds %llu..%llu pass the trainer's largest seed, 2147483647: lower --seed\n",
                s->seed0, s->seed0 + (unsigned long long)s->seeds - 1);
        return 2;
    }
    if (!s->out)
        s->out = s->out_alloc = xprintf("results/%s-sweep", s->spec->model);

    /* every key to an edit (or to the trainer's --steps) */
    size_t npoints = 1;
    for (size_t k = 0; k < s->naxes; k++) {
        axis *ax = &s->axes[k];
        sbuf msg = { 0 };
        int r = resolve_key(s->arena, &s->src, s->ast, ax->key, &ax->e, &msg);
        if (r == KEY_ERROR) {
            fprintf(stderr, "ibc sweep: error: --set %s: %s\n", ax->key, msg.s);
            free(msg.s);
            return 2;
        }
        free(msg.s);
        if (r == KEY_STEPS) {
            ax->runtime = true;
            ax->e.canon = "train.steps";
            ax->steps = xcalloc(ax->nvalues, sizeof *ax->steps);
            for (size_t v = 0; v < ax->nvalues; v++)
                if (!parse_whole(ax->values[v], 1, IBC_MAX_STEPS, &ax->steps[v])) {
                    fprintf(stderr, "ibc sweep: error: --set %s: '%s' is not a number of steps (a whole number from 1 "
                            "to %ld; steps are the trainer's --steps)\n", ax->key, ax->values[v], IBC_MAX_STEPS);
                    return 2;
                }
        }
        for (size_t j = 0; j < k; j++) {
            const edit *a = &s->axes[j].e, *b = &ax->e;
            bool same = !strcmp(a->canon, b->canon);
            bool overlap = !s->axes[j].runtime && !ax->runtime &&
                           ((a->begin < b->end && b->begin < a->end) || (a->begin < b->begin && b->begin < a->end) ||
                            (b->begin < a->begin && a->begin < b->end));
            if (same || overlap) {
                fprintf(stderr, "ibc sweep: error: --set %s and --set %s change the same setting (%s): keep one\n",
                        s->axes[j].key, ax->key, same ? a->canon : "one inside the other");
                return 2;
            }
        }
        if (npoints > SWEEP_MAX_RUNS / ax->nvalues) {
            fprintf(stderr, "ibc sweep: error: the grid has more than %d points: sweep fewer values\n", SWEEP_MAX_RUNS);
            return 2;
        }
        npoints *= ax->nvalues;
    }
    if (npoints * (size_t)s->seeds > SWEEP_MAX_RUNS) {
        fprintf(stderr, "ibc sweep: error: %zu grid points x %ld seeds is more than %d runs: sweep fewer\n", npoints,
                s->seeds, SWEEP_MAX_RUNS);
        return 2;
    }

    /* the points (axis 0 slowest), their texts and the distinct models */
    s->npoints = npoints;
    s->points = xcalloc(npoints, sizeof *s->points);
    size_t mcap = 8;
    s->models = xcalloc(mcap, sizeof *s->models);
    size_t bad = 0;
    for (size_t p = 0; p < npoints; p++) {
        point *pt = &s->points[p];
        pt->vi = xcalloc(s->naxes ? s->naxes : 1, sizeof *pt->vi);
        size_t rem = p;
        for (size_t k = s->naxes; k-- > 0;) {
            pt->vi[k] = rem % s->axes[k].nvalues;
            rem /= s->axes[k].nvalues;
        }
        for (size_t k = 0; k < s->naxes; k++)
            if (s->axes[k].runtime)
                pt->steps = s->axes[k].steps[pt->vi[k]];
        uint32_t vbegin[SWEEP_MAX_AXES];
        model m;
        memset(&m, 0, sizeof m);
        m.text = derive_text(s, pt->vi, &m.len, vbegin);
        model_hash(&m);
        size_t j = 0;
        while (j < s->nmodels && (strcmp(s->models[j].hex, m.hex) || s->models[j].len != m.len ||
                                  memcmp(s->models[j].text, m.text, m.len)))
            j++;
        if (j == s->nmodels) {
            m.first_point = p;
            if (!check_model(s, &m, pt->vi, vbegin)) {
                free(m.text);
                if (++bad >= 5) {
                    fprintf(stderr, "ibc sweep: error: stopping after 5 grid points that do not check\n");
                    return 2;
                }
                pt->model = (size_t)-1;
                continue;
            }
            if (s->nmodels == mcap)
                s->models = xrealloc(s->models, (mcap *= 2) * sizeof *s->models);
            s->models[s->nmodels++] = m;
        } else
            free(m.text);
        pt->model = j;
        char *raw = point_settings(s, pt->vi, "_");
        pt->settings = point_settings(s, pt->vi, ", ");
        pt->label = safe_name(raw, 80);
        if (strcmp(pt->label, raw)) {
            char *l = xprintf("%s-%08llx", pt->label, fnv(FNV0, raw, strlen(raw)) & 0xffffffffull);
            free(pt->label);
            pt->label = l;
        }
        free(raw);
    }
    if (bad) {
        fprintf(stderr, "ibc sweep: error: %zu grid point%s above do%s not check: change the --set values; nothing "
                "was run\n", bad, bad > 1 ? "s" : "", bad > 1 ? "" : "es");
        return 2;
    }

    /* the runs and what each directory holds */
    s->nruns = npoints * (size_t)s->seeds;
    s->runs = xcalloc(s->nruns, sizeof *s->runs);
    size_t foreign = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        run *r = &s->runs[i];
        r->point = i / (size_t)s->seeds;
        r->seed = s->seed0 + i % (size_t)s->seeds;
        r->rel = xprintf("runs/%s/seed_%llu", s->points[r->point].label, r->seed);
        r->dir = xprintf("%s/%s", s->out, r->rel);
        char *idp = xprintf("%s/sweep_run", r->dir), *have = read_text(idp, NULL), *want = run_identity(s, r);
        if (have && strcmp(have, want)) {
            if (foreign++ < 3)
                fprintf(stderr, "ibc sweep: error: %s holds a run of another spec text or settings (was the spec "
                        "changed?)\n", r->dir);
        }
        free(idp);
        free(have);
        free(want);
        char st[64];
        if (read_status(r->dir, st, sizeof st, NULL, 0, NULL, NULL)) {
            r->state = RUN_FINISHED;
            r->failed = strcmp(st, "complete") != 0;
        } else {
            char *ck = xprintf("%s/checkpoint.bin", r->dir);
            r->state = exists(ck) ? RUN_RESUME : RUN_NEW;
            free(ck);
        }
    }
    if (foreign) {
        fprintf(stderr, "ibc sweep: error: %zu run director%s in %s belong%s to another sweep: sweep into another "
                "--out, or remove %s/runs to start over\n", foreign, foreign > 1 ? "ies" : "y", s->out,
                foreign > 1 ? "" : "s", s->out);
        return 2;
    }
    return 0;
}

static void print_plan(const sweep *s)
{
    size_t done = 0, resume = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        done += s->runs[i].state == RUN_FINISHED;
        resume += s->runs[i].state == RUN_RESUME;
    }
    printf("sweep of %s into %s: %zu grid point%s x %ld seed%s (%llu..%llu) = %zu run%s, %zu trainer%s\n",
           s->spec_path, s->out, s->npoints, s->npoints == 1 ? "" : "s", s->seeds, s->seeds == 1 ? "" : "s",
           s->seed0, s->seed0 + (unsigned long long)s->seeds - 1, s->nruns, s->nruns == 1 ? "" : "s", s->nmodels,
           s->nmodels == 1 ? "" : "s");
    for (size_t k = 0; k < s->naxes; k++) {
        printf("  axis %s (%s%s):", s->axes[k].key, s->axes[k].e.canon,
               s->axes[k].runtime ? ", the trainer's --steps" : "");
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            printf(" %s", s->axes[k].values[v]);
        printf("\n");
    }
    for (size_t p = 0; p < s->npoints; p++)
        printf("  point %zu: %s -> models/%s, runs/%s\n", p, s->points[p].settings,
               s->models[s->points[p].model].hex, s->points[p].label);
    printf("runs: %zu finished, %zu to resume from a checkpoint, %zu to start\n", done, resume,
           s->nruns - done - resume);
}

/* ------------------------------------------------------- processes, builds */

/* fork + exec from an argument vector: no shell.  path with a '/' is run
 * as it is, otherwise found on PATH; envp NULL keeps the environment.
 * stdin is /dev/null, stdout and stderr go to log (appended) when given;
 * cwd when given.  own_group: a process group of its own, so that a
 * terminal's Ctrl-C reaches only the sweep, which passes one SIGTERM on
 * (the trainer's second signal would end it before its checkpoint); and on
 * Linux a SIGTERM when the sweep dies.  The child calls only
 * async-signal-safe functions before exec.  Returns the pid, or -1. */
static pid_t spawn(const char *path, char *const argv[], char *const envp[], const char *log, const char *cwd,
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
static int wait_for(pid_t pid)
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
        return xstrdup("bin");
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return xstrdup(buf);
}

/* `ibc build --print-cflags` (or --print-libs), split into words: the
 * trainer flags exactly as `ibc build` uses them. */
static char **build_flags(const char *which, size_t *n)
{
    char *dir = exe_dir(), *ibc = xprintf("%s/ibc", dir);
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
        sb_add(&out, buf, (size_t)r);
    }
    close(fd[0]);
    int ws = pid > 0 ? wait_for(pid) : -1;
    if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !out.s) {
        fprintf(stderr, "ibc sweep: error: '%s build %s' failed: is bin/ibc built (make)?\n", ibc, which);
        free(ibc);
        free(out.s);
        return NULL;
    }
    free(ibc);
    size_t cap = 16;
    w = xmalloc(cap * sizeof *w);
    for (char *t = strtok(out.s, " \t\n"); t; t = strtok(NULL, " \t\n")) {
        if (*n + 1 >= cap)
            w = xrealloc(w, (cap *= 2) * sizeof *w);
        w[(*n)++] = xstrdup(t);
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
static int build_models(sweep *s)
{
    size_t need = 0;
    for (size_t j = 0; j < s->nmodels; j++) {
        char *exe = xprintf("%s/models/%s/trainer", s->out, s->models[j].hex);
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
        char *dir = xprintf("%s/models/%s", s->out, m->hex), *spec = xprintf("%s/spec.ibs", dir),
             *csrc = xprintf("%s/trainer.c", dir), *exe = xprintf("%s/trainer", dir),
             *tmp = xprintf("%s/trainer.tmp.%ld", dir, (long)getpid()), *log = xprintf("%s/build.log", dir);
        if (!mkdir_p(dir)) {
            fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", dir, strerror(errno));
            status = 1;
        } else if (!write_atomic(spec, m->text, m->len) || !write_atomic(csrc, m->code, m->code_len)) {
            status = 1;
        } else {
            char **argv = xmalloc((nc + nl + 6) * sizeof *argv);
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
            pid_t pid = spawn(cc, argv, NULL, log, NULL, false);
            int ws = pid > 0 ? wait_for(pid) : -1;
            free(argv);
            if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
                char *text = read_text(log, NULL);
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
    char **env = xmalloc((n + 2) * sizeof *env);
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
    r->started = now();
    if (!mkdir_p(r->dir)) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", r->dir, strerror(errno));
        return false;
    }
    char *idp = xprintf("%s/sweep_run", r->dir), *id = run_identity(s, r);
    bool ok = exists(idp) || write_atomic(idp, id, strlen(id));
    free(idp);
    free(id);
    if (!ok)
        return false;
    long steps = p->steps ? p->steps + m->extend_steps : m->steps + m->extend_steps;
    long every = s->checkpoint_every ? s->checkpoint_every : (steps + 9) / 10;
    char *exe = xprintf("%s/models/%s/trainer", s->out, m->hex), *log = xprintf("%s/trainer.log", r->dir);
    char seed[32], stepv[32], everyv[32];
    snprintf(seed, sizeof seed, "%llu", r->seed);
    snprintf(stepv, sizeof stepv, "%ld", steps);
    snprintf(everyv, sizeof everyv, "%ld", every);
    char *ck = xprintf("%s/checkpoint.bin", r->dir);
    bool resume = r->state == RUN_RESUME && exists(ck);
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
    r->pid = spawn(exe, argv, env, log, NULL, true);
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
        char *path = xprintf("%s/sweep_status", r->dir);
        char *text = xprintf("status %s\nexit %s\nstarted %.3f\nended %.3f\n", status, exitv, r->started, now());
        if (!write_atomic(path, text, strlen(text)))
            final = false;
        free(path);
        free(text);
    }
    r->state = final ? RUN_FINISHED : RUN_RESUME;
    r->failed = final && strcmp(status, "complete") != 0;
    return final;
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

/* --------------------------------------------------------------- progress */

/* "3/18 runs done, 1 failed, 2 running, 0:04 elapsed, about 0:20 left" */
static void progress_counts(const sweep *s, char *buf, size_t size)
{
    char el[32], left[48] = "time left unknown";
    fmt_duration(el, sizeof el, now() - s->t0);
    size_t todo = s->nruns - s->done - s->running;
    if (s->timed) {
        double mean = s->run_seconds / (double)s->timed;
        double l = mean * ((double)todo + 0.5 * (double)s->running) / (double)(s->slots > 0 ? s->slots : 1);
        char d[32];
        fmt_duration(d, sizeof d, l);
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
    s->last_draw = now();
}

void sweep_progress_start(sweep *s, int slots)
{
    s->t0 = now();
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
    s->runs[i].started = now();
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
        r->failed = !read_status(r->dir, st, sizeof st, ex, sizeof ex, NULL, NULL) || strcmp(st, "complete") != 0;
        s->done++;
        s->failed += r->failed;
        s->timed++;
        s->run_seconds += now() - r->started;
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
    if (s->tty && (changed || now() - s->last_draw > 1.0))
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
        pid_t w = waitpid(s->runs[i].pid, &ws, WNOHANG);
        if (w == s->runs[i].pid)
            break;
        if (w < 0 && errno != EINTR) {
            ws = -1;
            break;
        }
        if (stop_signal && !passed) {
            kill(s->runs[i].pid, SIGTERM);
            passed = true;
        }
        sleep_ms(50);
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
        for (size_t i = 0; i < s->nruns; i++) {
            if (s->runs[i].pid <= 0)
                continue;
            int ws;
            pid_t w = waitpid(s->runs[i].pid, &ws, WNOHANG);
            if (w == s->runs[i].pid || (w < 0 && errno == ECHILD)) {
                sweep_progress_ended(s, i, end_run(s, i, w < 0 ? -1 : ws));
                changed = true;
            }
        }
        if (!changed)
            sleep_ms(50);
    }
    sweep_progress_end(s);
}

/* ------------------------------------------------ reading results.json */

/* A small reader of the trainer's results.json: the status, every metric
 * whose value is a number (as written: %.17g) or null, the checks' pass
 * flags, the wall time.  Anything else is skipped; a malformed file is
 * reported, not guessed at. */
typedef struct {
    const char *p, *e;
} jr;

static void j_ws(jr *r)
{
    while (r->p < r->e && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool j_lit(jr *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->e - r->p) >= n && !memcmp(r->p, w, n)) {
        r->p += n;
        return true;
    }
    return false;
}

static bool j_string(jr *r, sbuf *out)
{
    j_ws(r);
    if (r->p >= r->e || *r->p != '"')
        return false;
    r->p++;
    while (r->p < r->e && *r->p != '"') {
        char c = *r->p++;
        if (c == '\\') {
            if (r->p >= r->e)
                return false;
            char x = *r->p++;
            switch (x) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                if (r->e - r->p < 4)
                    return false;
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char h = *r->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                char u[3];
                size_t n = 0;
                if (v < 0x80)
                    u[n++] = (char)v;
                else if (v < 0x800) {
                    u[n++] = (char)(0xc0 | (v >> 6));
                    u[n++] = (char)(0x80 | (v & 0x3f));
                } else
                    u[n++] = '?';
                if (out)
                    sb_add(out, u, n);
                continue;
            }
            default: c = x;
            }
        }
        if (out)
            sb_add(out, &c, 1);
    }
    if (r->p >= r->e)
        return false;
    r->p++;
    return true;
}

/* a number: its text in [*b, *b + *n) */
static bool j_number(jr *r, const char **b, size_t *n)
{
    j_ws(r);
    const char *s = r->p;
    while (r->p < r->e && strchr("+-0123456789.eE", *r->p) && *r->p)
        r->p++;
    if (r->p == s || r->p - s > 40)
        return false;
    char tmp[48], *end;
    memcpy(tmp, s, (size_t)(r->p - s));
    tmp[r->p - s] = '\0';
    strtod(tmp, &end);
    if (*end)
        return false;
    *b = s;
    *n = (size_t)(r->p - s);
    return true;
}

static bool j_skip(jr *r, int depth)
{
    j_ws(r);
    if (r->p >= r->e || depth > 64)
        return false;
    if (*r->p == '"')
        return j_string(r, NULL);
    if (*r->p == '{' || *r->p == '[') {
        char close = *r->p == '{' ? '}' : ']';
        bool obj = *r->p == '{';
        r->p++;
        j_ws(r);
        if (r->p < r->e && *r->p == close) {
            r->p++;
            return true;
        }
        for (;;) {
            if (obj) {
                if (!j_string(r, NULL))
                    return false;
                j_ws(r);
                if (!j_lit(r, ":"))
                    return false;
            }
            if (!j_skip(r, depth + 1))
                return false;
            j_ws(r);
            if (j_lit(r, ","))
                continue;
            if (r->p < r->e && *r->p == close) {
                r->p++;
                return true;
            }
            return false;
        }
    }
    if (j_lit(r, "true") || j_lit(r, "false") || j_lit(r, "null"))
        return true;
    const char *b;
    size_t n;
    return j_number(r, &b, &n);
}

typedef struct {
    char *name;
    char *num;               /* the number as written; NULL for null */
} metric_val;

typedef struct {
    bool finished;           /* a sweep_status */
    char status[64], exitv[64];
    double started, ended;
    bool have;               /* results.json read */
    char *json_status, *wall;
    metric_val *m;
    size_t nm;
    long passed, failed;
} result;

static bool parse_results(const char *text, size_t len, result *res)
{
    jr r = { text, text + len };
    j_ws(&r);
    if (!j_lit(&r, "{"))
        return false;
    size_t cap = 0;
    j_ws(&r);
    if (j_lit(&r, "}"))
        return true;
    for (;;) {
        sbuf key = { 0 };
        if (!j_string(&r, &key)) {
            free(key.s);
            return false;
        }
        j_ws(&r);
        bool ok = j_lit(&r, ":");
        const char *k = key.s ? key.s : "";
        j_ws(&r);
        if (ok && !strcmp(k, "status") && r.p < r.e && *r.p == '"') {
            sbuf v = { 0 };
            ok = j_string(&r, &v);
            free(res->json_status);
            res->json_status = sb_take(&v);
        } else if (ok && !strcmp(k, "wall_seconds") && r.p < r.e && *r.p != 'n') {
            const char *b;
            size_t n;
            ok = j_number(&r, &b, &n);
            if (ok) {
                free(res->wall);
                res->wall = xprintf("%.*s", (int)n, b);
            }
        } else if (ok && !strcmp(k, "metrics") && j_lit(&r, "{")) {
            j_ws(&r);
            if (!j_lit(&r, "}")) {
                for (;;) {
                    sbuf name = { 0 };
                    ok = j_string(&r, &name);
                    j_ws(&r);
                    ok = ok && j_lit(&r, ":");
                    j_ws(&r);
                    if (ok && r.p < r.e && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9') || *r.p == 'n')) {
                        const char *b = NULL;
                        size_t n = 0;
                        bool null = j_lit(&r, "null");
                        ok = null || j_number(&r, &b, &n);
                        if (ok) {
                            if (res->nm == cap)
                                res->m = xrealloc(res->m, (cap = cap ? 2 * cap : 64) * sizeof *res->m);
                            res->m[res->nm].name = sb_take(&name);
                            res->m[res->nm++].num = null ? NULL : xprintf("%.*s", (int)n, b);
                        }
                    } else if (ok)
                        ok = j_skip(&r, 1);
                    free(name.s);
                    j_ws(&r);
                    if (!ok || !j_lit(&r, ","))
                        break;
                }
                ok = ok && j_lit(&r, "}");
            }
        } else if (ok && !strcmp(k, "checks") && j_lit(&r, "[")) {
            j_ws(&r);
            if (!j_lit(&r, "]")) {
                for (;;) {
                    j_ws(&r);
                    ok = j_lit(&r, "{");
                    j_ws(&r);
                    bool closed = ok && j_lit(&r, "}");
                    if (ok && !closed)
                        for (;;) {
                            sbuf f = { 0 };
                            ok = j_string(&r, &f);
                            j_ws(&r);
                            ok = ok && j_lit(&r, ":");
                            j_ws(&r);
                            if (ok && f.s && !strcmp(f.s, "pass")) {
                                if (j_lit(&r, "true"))
                                    res->passed++;
                                else if (j_lit(&r, "false"))
                                    res->failed++;
                                else
                                    ok = false;
                            } else if (ok)
                                ok = j_skip(&r, 2);
                            free(f.s);
                            j_ws(&r);
                            if (!ok || !j_lit(&r, ","))
                                break;
                        }
                    ok = ok && (closed || j_lit(&r, "}"));
                    j_ws(&r);
                    if (!ok || !j_lit(&r, ","))
                        break;
                }
                ok = ok && j_lit(&r, "]");
            }
        } else if (ok)
            ok = j_skip(&r, 1);
        free(key.s);
        if (!ok)
            return false;
        j_ws(&r);
        if (j_lit(&r, ","))
            continue;
        return j_lit(&r, "}");
    }
}

static void result_free(result *r)
{
    for (size_t i = 0; i < r->nm; i++) {
        free(r->m[i].name);
        free(r->m[i].num);
    }
    free(r->m);
    free(r->json_status);
    free(r->wall);
}

static void read_result(const run *r, result *res)
{
    memset(res, 0, sizeof *res);
    res->finished = read_status(r->dir, res->status, sizeof res->status, res->exitv, sizeof res->exitv,
                                &res->started, &res->ended);
    if (!res->finished) {
        char *ck = xprintf("%s/checkpoint.bin", r->dir);
        snprintf(res->status, sizeof res->status, "%s", exists(ck) ? "interrupted" : "pending");
        free(ck);
        return;
    }
    char *path = xprintf("%s/results.json", r->dir);
    size_t len;
    char *text = read_text(path, &len);
    if (text) {
        res->have = parse_results(text, len, res);
        if (!res->have) {
            fprintf(stderr, "ibc sweep: warning: %s: not a results file the sweep can read; its metrics are left "
                    "out\n", path);
            result_free(res);
            char st[64], ex[64];
            snprintf(st, sizeof st, "%s", res->status);
            snprintf(ex, sizeof ex, "%s", res->exitv);
            double a = res->started, b = res->ended;
            memset(res, 0, sizeof *res);
            res->finished = true;
            snprintf(res->status, sizeof res->status, "%s", st);
            snprintf(res->exitv, sizeof res->exitv, "%s", ex);
            res->started = a;
            res->ended = b;
        }
    }
    free(text);
    free(path);
}

/* ---------------------------------------------------------------- outputs */

typedef struct {
    size_t n;
    double med, min, max;
} mstat;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void num(sbuf *b, double x) { sb_printf(b, "%.17g", x); }

/* a run whose training ran to its end: its metrics count in the summary */
static bool counted(const result *r)
{
    return r->finished && (!strcmp(r->status, "complete") || !strcmp(r->status, "check_failed"));
}

static bool numeric_text(const char *v, double *x)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || !isfinite(d))
        return false;
    if (x)
        *x = d;
    return true;
}

/* gnuplot's single-quoted strings: ' doubled */
static void gp_str(sbuf *b, const char *s)
{
    sb_add(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            sb_add(b, "'", 1);
        if ((unsigned char)*s >= 0x20)
            sb_add(b, s, 1);
    }
    sb_add(b, "'", 1);
}

/* Markdown table cell: '|' escaped, no newline */
static void md_cell(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            sb_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r')
            sb_add(b, " ", 1);
        else
            sb_add(b, s, 1);
    }
}

static bool plot_wanted(const sweep *s, const char *name)
{
    if (!s->nplot)
        return !strncmp(name, "final_loss", 10) || !strncmp(name, "test_mse", 8);
    for (size_t k = 0; k < s->nplot; k++) {
        size_t n = strlen(s->plot[k]);
        if (n && s->plot[k][n - 1] == '*' ? !strncmp(name, s->plot[k], n - 1) : !strcmp(name, s->plot[k]))
            return true;
    }
    return false;
}

/* Grid strides (axis 0 slowest) and the first point of series sr along
 * axis a: the sr-th combination of the other axes' values. */
static void grid_strides(const sweep *s, size_t *stride)
{
    for (size_t k = s->naxes, m = 1; k-- > 0;) {
        stride[k] = m;
        m *= s->axes[k].nvalues;
    }
}

static size_t series_base(const sweep *s, size_t a, size_t sr, const size_t *stride)
{
    size_t base = 0, rem = sr;
    for (size_t k = s->naxes; k-- > 0;) {
        if (k == a)
            continue;
        base += (rem % s->axes[k].nvalues) * stride[k];
        rem /= s->axes[k].nvalues;
    }
    return base;
}

/* "depth=3, batch=8": the other axes' values at point base */
static char *series_title(const sweep *s, size_t a, size_t base)
{
    sbuf t = { 0 };
    for (size_t k = 0; k < s->naxes; k++)
        if (k != a)
            sb_printf(&t, "%s%s=%s", t.n ? ", " : "", s->axes[k].key, s->axes[k].values[s->points[base].vi[k]]);
    return sb_take(&t);
}

/* The paper's choice of a learning rate ("a grid search over orders of
 * magnitude by minimizing the training loss"): along an axis of train.lr or
 * design.lr, for each combination of the other axes and each final_loss*
 * metric, the value with the lowest median final loss among those where no
 * run diverged.  Into summary.json ("lr_choice") and sweep.md. */
static void lr_choice(const sweep *s, char **cols, size_t ncols, const mstat *st, size_t (*cnt)[5], sbuf *sj,
                      sbuf *md)
{
    size_t stride[SWEEP_MAX_AXES];
    grid_strides(s, stride);
    size_t rows = 0;
    for (size_t a = 0; a < s->naxes; a++) {
        const axis *ax = &s->axes[a];
        if (ax->nvalues < 2 || (strcmp(ax->e.canon, "train.lr") && strcmp(ax->e.canon, "design.lr")))
            continue;
        for (size_t c = 0; c < ncols; c++) {
            if (strncmp(cols[c], "final_loss", 10))
                continue;
            for (size_t sr = 0; sr < s->npoints / ax->nvalues; sr++) {
                size_t base = series_base(s, a, sr, stride);
                long best = -1;
                sbuf div = { 0 }, jdiv = { 0 };
                for (size_t v = 0; v < ax->nvalues; v++) {
                    size_t p = base + v * stride[a];
                    if (cnt[p][2]) {
                        sb_printf(&div, "%s`%s`", div.n ? ", " : "", ax->values[v]);
                        if (jdiv.n)
                            sb_puts(&jdiv, ", ");
                        json_str(&jdiv, ax->values[v]);
                        continue;
                    }
                    const mstat *x = &st[p * ncols + c];
                    if (x->n && (best < 0 || x->med < st[(base + (size_t)best * stride[a]) * ncols + c].med))
                        best = (long)v;
                }
                char *title = series_title(s, a, base);
                if (!rows++) {
                    sb_puts(md, "\n## Learning rate by final training loss\n\nThe paper's procedure (a grid over "
                                "orders of magnitude, scored by the final training loss): for each combination of "
                                "the other axes, the learning rate with the lowest median final loss among those "
                                "where no run diverged (summary.json, `lr_choice`).\n\n"
                                "| other settings | metric | lr | median final loss | diverged at |\n"
                                "|---|---|---|---|---|\n");
                    sb_puts(sj, ",\n  \"lr_choice\": [");
                } else
                    sb_add(sj, ",", 1);
                sb_puts(md, "| ");
                md_cell(md, *title ? title : "-");
                sb_puts(md, " | ");
                md_cell(md, cols[c]);
                sb_puts(sj, "\n    {\"axis\": ");
                json_str(sj, ax->key);
                sb_puts(sj, ", \"metric\": ");
                json_str(sj, cols[c]);
                sb_puts(sj, ", \"settings\": {");
                for (size_t k = 0, first = 1; k < s->naxes; k++)
                    if (k != a) {
                        if (!first)
                            sb_puts(sj, ", ");
                        first = 0;
                        json_str(sj, s->axes[k].key);
                        sb_puts(sj, ": ");
                        json_str(sj, s->axes[k].values[s->points[base].vi[k]]);
                    }
                sb_puts(sj, "}, \"best\": ");
                if (best >= 0) {
                    const mstat *x = &st[(base + (size_t)best * stride[a]) * ncols + c];
                    sb_printf(md, " | `%s` | %.4g |", ax->values[best], x->med);
                    json_str(sj, ax->values[best]);
                    sb_puts(sj, ", \"median\": ");
                    num(sj, x->med);
                } else {
                    sb_puts(md, " | none | - |");
                    sb_puts(sj, "null, \"median\": null");
                }
                sb_puts(md, " ");
                sb_puts(md, div.n ? div.s : "-");
                sb_puts(md, " |\n");
                sb_puts(sj, ", \"diverged\": [");
                if (jdiv.n)
                    sb_add(sj, jdiv.s, jdiv.n);
                sb_puts(sj, "]}");
                free(title);
                free(div.s);
                free(jdiv.s);
            }
        }
    }
    if (rows)
        sb_puts(sj, "\n  ]");
}

/* The figures: for each wanted metric and each axis of two values or more,
 * figures/METRIC_vs_AXIS.{dat,gp,png}: the median over the counted seeds
 * (bars from min to max) against the axis, one line per combination of
 * the other axes' values.  Names of drawn figures are added to figs. */
static void figures(sweep *s, char **cols, size_t ncols, const mstat *st, sbuf *notes, char ***figs, size_t *nfigs)
{
    char *fdir = xprintf("%s/figures", s->out);
    bool made_dir = false, gnuplot_missing = false;
    size_t stride[SWEEP_MAX_AXES];
    grid_strides(s, stride);
    for (size_t c = 0; c < ncols; c++) {
        if (!plot_wanted(s, cols[c]))
            continue;
        for (size_t a = 0; a < s->naxes; a++) {
            const axis *ax = &s->axes[a];
            if (ax->nvalues < 2)
                continue;
            bool numeric = true, xpos = true, ypos = true;
            double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
            for (size_t v = 0; v < ax->nvalues; v++) {
                double x;
                numeric = numeric && numeric_text(ax->values[v], &x);
                if (numeric) {
                    xpos = xpos && x > 0;
                    xmin = fmin(xmin, x);
                    xmax = fmax(xmax, x);
                }
            }
            /* series: every combination of the other axes, in grid order */
            size_t nseries = s->npoints / ax->nvalues;
            sbuf dat = { 0 }, gp = { 0 };
            sb_printf(&dat, "# %s against %s: x, median, min, max over the seeds that ran to the end\n", cols[c],
                      ax->key);
            size_t drawn = 0;
            sbuf plot = { 0 };
            for (size_t sr = 0; sr < nseries; sr++) {
                size_t base = series_base(s, a, sr, stride), rows = 0;
                sbuf block = { 0 };
                for (size_t v = 0; v < ax->nvalues; v++) {
                    const mstat *x = &st[(base + v * stride[a]) * ncols + c];
                    if (!x->n)
                        continue;
                    if (numeric)
                        sb_puts(&block, ax->values[v]);
                    else
                        sb_printf(&block, "%zu", v);
                    sb_add(&block, " ", 1);
                    num(&block, x->med);
                    sb_add(&block, " ", 1);
                    num(&block, x->min);
                    sb_add(&block, " ", 1);
                    num(&block, x->max);
                    ypos = ypos && x->min > 0;
                    ymin = fmin(ymin, x->min);
                    ymax = fmax(ymax, x->max);
                    sb_add(&block, "\n", 1);
                    rows++;
                }
                if (rows) {
                    sb_add(&dat, block.s, block.n);
                    sb_puts(&dat, "\n\n");
                    char *title = series_title(s, a, base);
                    sb_printf(&plot, "%s'%s' index %zu using 1:2:3:4 with yerrorlines title ", drawn ? ", \\\n     " : "",
                              "DAT", drawn);
                    gp_str(&plot, *title ? title : "median; bars: min to max");
                    free(title);
                    drawn++;
                }
                free(block.s);
            }
            char *fs = safe_name(cols[c], 60), *as = safe_name(ax->key, 40);
            char *base = xprintf("%s_vs_%s", fs, as);
            free(fs);
            free(as);
            if (!drawn) {
                sb_printf(notes, "- %s against %s: no run of any grid point ran to its end; no figure.\n", cols[c],
                          ax->key);
                free(dat.s);
                free(plot.s);
                free(base);
                continue;
            }
            sb_puts(&gp, "# written by ibc sweep: gnuplot ");
            sb_puts(&gp, base);
            sb_puts(&gp, ".gp (in this directory) draws ");
            sb_puts(&gp, base);
            sb_puts(&gp, ".png\nset terminal pngcairo size 820,500 noenhanced font 'sans,10'\nset output ");
            char *png = xprintf("%s.png", base);
            gp_str(&gp, png);
            sb_puts(&gp, "\nset title ");
            char *title = xprintf("%s against %s (median over seeds; bars: min to max)", cols[c], ax->key);
            gp_str(&gp, title);
            free(title);
            sb_puts(&gp, "\nset xlabel ");
            gp_str(&gp, ax->key);
            sb_puts(&gp, "\nset ylabel ");
            gp_str(&gp, cols[c]);
            bool logx = numeric && xpos && xmax >= 100 * xmin, logy = ypos && ymax >= 100 * ymin;
            sb_printf(&gp, "\nset grid\nset key %s\n", drawn > 1 ? "outside right" : "top right");
            /* a margin around the points on linear axes (graph offsets misbehave on log ones) */
            sb_printf(&gp, "set offsets %s, %s, %s, %s\n", logx ? "0" : "graph 0.05", logx ? "0" : "graph 0.05",
                      logy ? "0" : "graph 0.05", logy ? "0" : "graph 0.05");
            if (logx)
                sb_printf(&gp, "set logscale x\nset format x '%%g'\nset xrange [%.6g:%.6g]\n", xmin / 1.6, xmax * 1.6);
            if (logy)
                sb_puts(&gp, "set logscale y\nset format y '%g'\n");
            if (!numeric) {
                sb_puts(&gp, "set xtics (");
                for (size_t v = 0; v < ax->nvalues; v++) {
                    if (v)
                        sb_puts(&gp, ", ");
                    gp_str(&gp, ax->values[v]);
                    sb_printf(&gp, " %zu", v);
                }
                sb_puts(&gp, ")\n");
            }
            char *datname = xprintf("%s.dat", base);
            sb_puts(&gp, "plot ");
            /* the data file's name in place of DAT */
            for (const char *p = plot.s; *p; p++) {
                if (!strncmp(p, "'DAT'", 5)) {
                    gp_str(&gp, datname);
                    p += 4;
                } else
                    sb_add(&gp, p, 1);
            }
            sb_puts(&gp, "\n");
            free(plot.s);
            if (!made_dir && !mkdir_p(fdir)) {
                fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", fdir, strerror(errno));
                free(dat.s);
                free(gp.s);
                free(png);
                free(datname);
                free(base);
                break;
            }
            made_dir = true;
            char *dpath = xprintf("%s/%s", fdir, datname), *gpath = xprintf("%s/%s.gp", fdir, base),
                 *ppath = xprintf("%s/%s", fdir, png), *gpname = xprintf("%s.gp", base),
                 *glog = xprintf("%s/gnuplot.log", fdir);
            if (write_atomic(dpath, dat.s, dat.n) && write_atomic(gpath, gp.s, gp.n)) {
                int ws = -1;
                if (!gnuplot_missing) {
                    char *argv[] = { "gnuplot", gpname, NULL };
                    unlink(ppath);
                    pid_t pid = spawn("gnuplot", argv, NULL, glog, fdir, false);
                    ws = pid > 0 ? wait_for(pid) : -1;
                    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 127) {
                        gnuplot_missing = true;
                        sb_puts(notes, "- gnuplot was not found: each figure's script and data are in figures/ "
                                       "(`gnuplot NAME.gp` there draws it).\n");
                    }
                }
                if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && exists(ppath)) {
                    *figs = xrealloc(*figs, (*nfigs + 1) * sizeof **figs);
                    (*figs)[(*nfigs)++] = xprintf("%s|%s against %s", png, cols[c], ax->key);
                } else if (!gnuplot_missing) {
                    sb_printf(notes, "- figures/%s.gp: gnuplot failed (figures/gnuplot.log).\n", base);
                    fprintf(stderr, "ibc sweep: warning: gnuplot failed on %s (see %s)\n", gpath, glog);
                }
            }
            free(dpath);
            free(gpath);
            free(ppath);
            free(gpname);
            free(glog);
            free(dat.s);
            free(gp.s);
            free(png);
            free(datname);
            free(base);
        }
    }
    free(fdir);
}

int sweep_report(sweep *s)
{
    result *res = xcalloc(s->nruns, sizeof *res);
    for (size_t i = 0; i < s->nruns; i++)
        read_result(&s->runs[i], &res[i]);

    /* the metric columns: every name, in the order of first appearance */
    char **cols = NULL;
    size_t ncols = 0, ccap = 0;
    size_t **at = xcalloc(s->nruns, sizeof *at);   /* column -> index into res[i].m, or SIZE_MAX */
    for (size_t i = 0; i < s->nruns; i++)
        for (size_t k = 0; k < res[i].nm; k++) {
            size_t c = 0;
            while (c < ncols && strcmp(cols[c], res[i].m[k].name))
                c++;
            if (c == ncols) {
                if (ncols == ccap)
                    cols = xrealloc(cols, (ccap = ccap ? 2 * ccap : 64) * sizeof *cols);
                cols[ncols++] = res[i].m[k].name;
            }
        }
    for (size_t i = 0; i < s->nruns; i++) {
        at[i] = xmalloc((ncols ? ncols : 1) * sizeof **at);
        for (size_t c = 0; c < ncols; c++)
            at[i][c] = SIZE_MAX;
        for (size_t k = 0; k < res[i].nm; k++)
            for (size_t c = 0; c < ncols; c++)
                if (!strcmp(cols[c], res[i].m[k].name)) {
                    at[i][c] = k;
                    break;
                }
    }

    /* sweep.csv */
    sbuf csv = { 0 };
    sb_puts(&csv, "point");
    for (size_t k = 0; k < s->naxes; k++) {
        sb_add(&csv, ",", 1);
        csv_cell(&csv, s->axes[k].key);
    }
    sb_puts(&csv, ",seed,status,exit,checks_passed,checks_failed");
    for (size_t c = 0; c < ncols; c++) {
        sb_add(&csv, ",", 1);
        csv_cell(&csv, cols[c]);
    }
    sb_puts(&csv, ",dir\n");
    size_t n_complete = 0, n_unfinished = 0, n_failed = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        const run *r = &s->runs[i];
        const point *p = &s->points[r->point];
        sb_printf(&csv, "%zu", r->point);
        for (size_t k = 0; k < s->naxes; k++) {
            sb_add(&csv, ",", 1);
            csv_cell(&csv, s->axes[k].values[p->vi[k]]);
        }
        sb_printf(&csv, ",%llu,%s,", r->seed, res[i].status);
        csv_cell(&csv, res[i].exitv);
        if (res[i].have)
            sb_printf(&csv, ",%ld,%ld", res[i].passed, res[i].failed);
        else
            sb_puts(&csv, ",,");
        for (size_t c = 0; c < ncols; c++) {
            sb_add(&csv, ",", 1);
            if (at[i][c] != SIZE_MAX && res[i].m[at[i][c]].num)
                sb_puts(&csv, res[i].m[at[i][c]].num);
        }
        sb_add(&csv, ",", 1);
        csv_cell(&csv, r->rel);
        sb_add(&csv, "\n", 1);
        if (!res[i].finished)
            n_unfinished++;
        else if (!strcmp(res[i].status, "complete"))
            n_complete++;
        else
            n_failed++;
    }

    /* per grid point: counts and median/min/max of every metric */
    mstat *st = xcalloc(s->npoints * (ncols ? ncols : 1), sizeof *st);
    double *vals = xmalloc((size_t)s->seeds * sizeof *vals);
    size_t(*cnt)[5] = xcalloc(s->npoints, sizeof *cnt);   /* complete, check_failed, diverged, failed, unfinished */
    for (size_t p = 0; p < s->npoints; p++) {
        size_t first = p * (size_t)s->seeds;
        for (size_t i = first; i < first + (size_t)s->seeds; i++) {
            const result *r = &res[i];
            int k = !r->finished ? 4 : !strcmp(r->status, "complete") ? 0 : !strcmp(r->status, "check_failed") ? 1
                    : !strcmp(r->status, "diverged") ? 2 : 3;
            cnt[p][k]++;
        }
        for (size_t c = 0; c < ncols; c++) {
            size_t n = 0;
            for (size_t i = first; i < first + (size_t)s->seeds; i++) {
                double x;
                if (counted(&res[i]) && at[i][c] != SIZE_MAX && res[i].m[at[i][c]].num &&
                    numeric_text(res[i].m[at[i][c]].num, &x))
                    vals[n++] = x;
            }
            mstat *x = &st[p * ncols + c];
            x->n = n;
            if (n) {
                qsort(vals, n, sizeof *vals, cmp_double);
                x->min = vals[0];
                x->max = vals[n - 1];
                x->med = n % 2 ? vals[n / 2] : 0.5 * (vals[n / 2 - 1] + vals[n / 2]);
            }
        }
    }
    free(vals);
    static const char *const cnames[5] = { "complete", "check_failed", "diverged", "failed", "unfinished" };
    sbuf sc = { 0 }, sj = { 0 };
    sb_puts(&sc, "point");
    for (size_t k = 0; k < s->naxes; k++) {
        sb_add(&sc, ",", 1);
        csv_cell(&sc, s->axes[k].key);
    }
    sb_puts(&sc, ",runs,complete,check_failed,diverged,failed,unfinished");
    for (size_t c = 0; c < ncols; c++) {
        static const char *const w[3] = { "median", "min", "max" };
        for (int q = 0; q < 3; q++) {
            char *h = xprintf("%s_%s", cols[c], w[q]);
            sb_add(&sc, ",", 1);
            csv_cell(&sc, h);
            free(h);
        }
    }
    sb_add(&sc, "\n", 1);
    sb_puts(&sj, "{\n  \"spec\": ");
    json_str(&sj, s->spec_path);
    sb_puts(&sj, ",\n  \"model\": ");
    json_str(&sj, s->spec->model);
    sb_puts(&sj, ",\n  \"axes\": [");
    for (size_t k = 0; k < s->naxes; k++) {
        sb_puts(&sj, k ? ",\n    {\"key\": " : "\n    {\"key\": ");
        json_str(&sj, s->axes[k].key);
        sb_puts(&sj, ", \"setting\": ");
        json_str(&sj, s->axes[k].e.canon);
        sb_puts(&sj, ", \"values\": [");
        for (size_t v = 0; v < s->axes[k].nvalues; v++) {
            if (v)
                sb_puts(&sj, ", ");
            json_str(&sj, s->axes[k].values[v]);
        }
        sb_puts(&sj, "]}");
    }
    sb_printf(&sj, "%s],\n  \"seeds\": [", s->naxes ? "\n  " : "");
    for (long k = 0; k < s->seeds; k++)
        sb_printf(&sj, "%s%llu", k ? ", " : "", s->seed0 + (unsigned long long)k);
    sb_puts(&sj, "],\n  \"summary_over\": \"runs whose training ran to its end (complete or check_failed)\",\n"
                 "  \"points\": [");
    for (size_t p = 0; p < s->npoints; p++) {
        const point *pt = &s->points[p];
        sb_printf(&sc, "%zu", p);
        for (size_t k = 0; k < s->naxes; k++) {
            sb_add(&sc, ",", 1);
            csv_cell(&sc, s->axes[k].values[pt->vi[k]]);
        }
        sb_printf(&sc, ",%ld", s->seeds);
        for (int k = 0; k < 5; k++)
            sb_printf(&sc, ",%zu", cnt[p][k]);
        sb_printf(&sj, "%s\n    {\"point\": %zu, \"settings\": {", p ? "," : "", p);
        for (size_t k = 0; k < s->naxes; k++) {
            if (k)
                sb_puts(&sj, ", ");
            json_str(&sj, s->axes[k].key);
            sb_puts(&sj, ": ");
            json_str(&sj, s->axes[k].values[pt->vi[k]]);
        }
        sb_printf(&sj, "}, \"runs\": %ld", s->seeds);
        for (int k = 0; k < 5; k++)
            sb_printf(&sj, ", \"%s\": %zu", cnames[k], cnt[p][k]);
        sb_puts(&sj, ",\n     \"metrics\": {");
        size_t shown = 0;
        for (size_t c = 0; c < ncols; c++) {
            const mstat *x = &st[p * ncols + c];
            for (int q = 0; q < 3; q++) {
                sb_add(&sc, ",", 1);
                if (x->n)
                    num(&sc, q == 0 ? x->med : q == 1 ? x->min : x->max);
            }
            if (!x->n)
                continue;
            sb_puts(&sj, shown++ ? ",\n       " : "\n       ");
            json_str(&sj, cols[c]);
            sb_printf(&sj, ": {\"n\": %zu, \"median\": ", x->n);
            num(&sj, x->med);
            sb_puts(&sj, ", \"min\": ");
            num(&sj, x->min);
            sb_puts(&sj, ", \"max\": ");
            num(&sj, x->max);
            sb_puts(&sj, "}");
        }
        sb_puts(&sj, "}}");
        sb_add(&sc, "\n", 1);
    }
    sb_puts(&sj, "\n  ]");
    sbuf lrmd = { 0 };
    lr_choice(s, cols, ncols, st, cnt, &sj, &lrmd);
    sb_puts(&sj, "\n}\n");

    /* timings.csv: what differs from one execution to the next */
    sbuf tc = { 0 };
    sb_puts(&tc, "point,seed,status,wall_seconds,started,ended,dir\n");
    double wall_sum = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        sb_printf(&tc, "%zu,%llu,%s,%s,", s->runs[i].point, s->runs[i].seed, res[i].status,
                  res[i].wall ? res[i].wall : "");
        if (res[i].finished)
            sb_printf(&tc, "%.3f,%.3f", res[i].started, res[i].ended);
        else
            sb_add(&tc, ",", 1);
        sb_add(&tc, ",", 1);
        csv_cell(&tc, s->runs[i].rel);
        sb_add(&tc, "\n", 1);
        double w;
        if (res[i].wall && numeric_text(res[i].wall, &w))
            wall_sum += w;
    }

    int status = 0;
    char *path;
#define WRITE(name, buf)                                                   \
    do {                                                                   \
        path = xprintf("%s/%s", s->out, name);                             \
        if (!write_atomic(path, (buf).s ? (buf).s : "", (buf).n))          \
            status = 1;                                                    \
        free(path);                                                        \
    } while (0)
    if (!mkdir_p(s->out)) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", s->out, strerror(errno));
        status = 1;
    }
    WRITE("sweep.csv", csv);
    WRITE("summary.csv", sc);
    WRITE("summary.json", sj);
    WRITE("timings.csv", tc);

    /* figures and sweep.md */
    sbuf notes = { 0 };
    char **figs = NULL;
    size_t nfigs = 0;
    if (s->nplot)
        for (size_t k = 0; k < s->nplot; k++) {
            bool any = false;
            for (size_t c = 0; c < ncols && !any; c++) {
                size_t n = strlen(s->plot[k]);
                any = s->plot[k][n - 1] == '*' ? !strncmp(cols[c], s->plot[k], n - 1) : !strcmp(cols[c], s->plot[k]);
            }
            if (!any && ncols) {
                const char *best = diag_suggest(s->plot[k], (const char *const *)cols, ncols);
                fprintf(stderr, "ibc sweep: warning: --plot %s: no run has this metric%s%s%s (sweep.csv has them all)\n",
                        s->plot[k], best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
                sb_printf(&notes, "- --plot %s: no run has this metric%s%s%s.\n", s->plot[k],
                          best ? "; did you mean `" : "", best ? best : "", best ? "`?" : "");
            }
        }
    figures(s, cols, ncols, st, &notes, &figs, &nfigs);

    sbuf md = { 0 };
    sb_printf(&md, "# Sweep of %s (model %s)\n\nWritten by `ibc sweep` (docs/sweeps.md); running the same command "
                   "again continues the sweep:\n\n    %s\n\n", s->spec_path, s->spec->model, s->cmdline);
    sb_printf(&md, "%zu grid point%s x %ld seed%s (%llu..%llu) = %zu runs; %zu trainer%s (models/).\n\n", s->npoints,
              s->npoints == 1 ? "" : "s", s->seeds, s->seeds == 1 ? "" : "s", s->seed0,
              s->seed0 + (unsigned long long)s->seeds - 1, s->nruns, s->nmodels, s->nmodels == 1 ? "" : "s");
    for (size_t k = 0; k < s->naxes; k++) {
        sb_printf(&md, "- `%s` (%s%s): ", s->axes[k].key, s->axes[k].e.canon,
                  s->axes[k].runtime ? ", the trainer's --steps" : "");
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            sb_printf(&md, "%s`%s`", v ? ", " : "", s->axes[k].values[v]);
        sb_puts(&md, "\n");
    }
    sb_printf(&md, "\nRuns: %zu complete, %zu did not complete, %zu unfinished.  Total trainer wall time %.1f s "
                   "(timings.csv).\n\n", n_complete, n_failed, n_unfinished, wall_sum);
    /* the summary table: the plotted metrics */
    size_t shown[8], nshown = 0;
    for (size_t c = 0; c < ncols && nshown < 8; c++)
        if (plot_wanted(s, cols[c]))
            shown[nshown++] = c;
    sb_puts(&md, "## Summary\n\nMedian over the seeds whose training ran to its end [min, max] (all metrics: "
                 "summary.csv, summary.json).\n\n| point |");
    for (size_t k = 0; k < s->naxes; k++) {
        sb_add(&md, " ", 1);
        md_cell(&md, s->axes[k].key);
        sb_puts(&md, " |");
    }
    sb_puts(&md, " complete | diverged | failed | unfinished |");
    for (size_t q = 0; q < nshown; q++) {
        sb_add(&md, " ", 1);
        md_cell(&md, cols[shown[q]]);
        sb_puts(&md, " |");
    }
    sb_puts(&md, "\n|");
    for (size_t k = 0; k < s->naxes + 5 + nshown; k++)
        sb_puts(&md, "---|");
    sb_add(&md, "\n", 1);
    for (size_t p = 0; p < s->npoints; p++) {
        sb_printf(&md, "| %zu |", p);
        for (size_t k = 0; k < s->naxes; k++) {
            sb_add(&md, " ", 1);
            md_cell(&md, s->axes[k].values[s->points[p].vi[k]]);
            sb_puts(&md, " |");
        }
        sb_printf(&md, " %zu/%ld | %zu | %zu | %zu |", cnt[p][0] + cnt[p][1], s->seeds, cnt[p][2], cnt[p][1] + cnt[p][3],
                  cnt[p][4]);
        for (size_t q = 0; q < nshown; q++) {
            const mstat *x = &st[p * ncols + shown[q]];
            if (x->n)
                sb_printf(&md, " %.4g [%.4g, %.4g] |", x->med, x->min, x->max);
            else
                sb_puts(&md, " - |");
        }
        sb_add(&md, "\n", 1);
    }
    if (n_failed || n_unfinished) {
        sb_puts(&md, "\n## Runs that did not complete\n\n| run | status | exit | last line of trainer.log |\n"
                     "|---|---|---|---|\n");
        for (size_t i = 0; i < s->nruns; i++) {
            if (res[i].finished && !strcmp(res[i].status, "complete"))
                continue;
            char *lp = xprintf("%s/trainer.log", s->runs[i].dir), *log = read_text(lp, NULL), *last = "";
            free(lp);
            if (log) {
                size_t n = strlen(log);
                while (n && log[n - 1] == '\n')
                    log[--n] = '\0';
                char *nl = strrchr(log, '\n');
                last = nl ? nl + 1 : log;
            }
            sb_puts(&md, "| ");
            md_cell(&md, s->runs[i].rel);
            sb_printf(&md, " | %s | ", res[i].status);
            md_cell(&md, res[i].exitv);
            sb_puts(&md, " | ");
            md_cell(&md, last);
            sb_puts(&md, " |\n");
            free(log);
        }
        if (n_unfinished)
            sb_puts(&md, "\nUnfinished runs continue (from their checkpoint when they have one) when the command "
                         "above is run again.\n");
    }
    if (lrmd.n)
        sb_add(&md, lrmd.s, lrmd.n);
    free(lrmd.s);
    sb_puts(&md, "\n## Figures\n\n");
    if (!nfigs)
        sb_puts(&md, "None drawn (an axis needs two values or more; --plot chooses the metrics).\n");
    for (size_t f = 0; f < nfigs; f++) {
        char *bar = strchr(figs[f], '|');
        *bar = '\0';
        sb_printf(&md, "![%s](figures/%s)\n\n", bar + 1, figs[f]);
        free(figs[f]);
    }
    free(figs);
    if (notes.n) {
        sb_puts(&md, "\n## Notes\n\n");
        sb_add(&md, notes.s, notes.n);
    }
    sb_puts(&md, "\n## Files\n\n"
                 "- `sweep.csv`: one row per run: its settings, seed, status, the trainer's exit status, checks "
                 "passed and failed, every scalar metric of its results.json, its directory.\n"
                 "- `summary.csv`, `summary.json`: per grid point, counts of runs by status and the median, min "
                 "and max of every metric over the runs that ran to their end.\n"
                 "- `timings.csv`: wall time, start and end of every run.\n"
                 "- `runs/LABEL/seed_S/`: each run's own outputs (results.json, traces, parameters, "
                 "trainer.log).\n"
                 "- `models/HASH/`: each trainer, its derived spec.ibs and trainer.c.\n"
                 "- `figures/`: the figures, with their data (.dat) and gnuplot scripts (.gp).\n");
    WRITE("sweep.md", md);
#undef WRITE
    fprintf(stderr, "sweep: %zu complete, %zu did not complete, %zu unfinished: %s/sweep.md\n", n_complete, n_failed,
            n_unfinished, s->out);

    free(notes.s);
    free(md.s);
    free(csv.s);
    free(sc.s);
    free(sj.s);
    free(tc.s);
    free(st);
    free(cnt);
    for (size_t i = 0; i < s->nruns; i++) {
        free(at[i]);
        result_free(&res[i]);
    }
    free(at);
    free(cols);
    free(res);
    if (status)
        return status;
    if (stop_signal)
        return 128 + stop_signal;
    if (n_unfinished)
        return 75;
    return n_failed ? 3 : 0;
}

/* ------------------------------------------------------------ open, main */

/* One sweep at a time in a directory: a lock on DIR/.lock (fcntl, released
 * when the process ends, however it ends). */
static bool lock_out(sweep *s)
{
    char *path = xprintf("%s/.lock", s->out);
    s->lock_fd = open(path, O_RDWR | O_CREAT, 0666);
    if (s->lock_fd < 0) {
        fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", path, strerror(errno));
        free(path);
        return false;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(s->lock_fd, F_SETLK, &fl) != 0) {
        fl.l_type = F_WRLCK;
        long other = fcntl(s->lock_fd, F_GETLK, &fl) == 0 ? (long)fl.l_pid : 0;
        fprintf(stderr, "ibc sweep: error: another sweep or a trainer (process %ld) is running in %s: wait for it, "
                "or sweep into another --out\n", other, s->out);
        close(s->lock_fd);
        s->lock_fd = -1;
        free(path);
        return false;
    }
    free(path);
    return true;
}

sweep *sweep_open(int argc, char **argv, sweep_mode mode, int *status)
{
    sweep *s = xcalloc(1, sizeof *s);
    s->mode = mode;
    s->lock_fd = -1;
    *status = parse_args(s, argc, argv);
    if (!*status)
        *status = plan(s);
    if (!*status && s->dry_run) {
        print_plan(s);
        sweep_free(s);
        return NULL;
    }
    if (!*status && mode == SWEEP_PREPARE) {
        if (!mkdir_p(s->out)) {
            fprintf(stderr, "ibc sweep: error: cannot create '%s': %s\n", s->out, strerror(errno));
            *status = 1;
        } else if (!lock_out(s))
            *status = 1;
        else
            *status = build_models(s);
    }
    if (!*status && mode == SWEEP_ATTACH)
        for (size_t j = 0; j < s->nmodels && !*status; j++) {
            char *exe = xprintf("%s/models/%s/trainer", s->out, s->models[j].hex);
            if (access(exe, X_OK) != 0) {
                fprintf(stderr, "ibc sweep: error: %s is missing (is %s on a file system every process sees?)\n", exe,
                        s->out);
                *status = 1;
            }
            free(exe);
        }
    if (*status) {
        sweep_free(s);
        return NULL;
    }
    return s;
}

void sweep_free(sweep *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->naxes; k++) {
        free((char *)s->axes[k].key);
        for (size_t v = 0; v < s->axes[k].nvalues; v++)
            free(s->axes[k].values[v]);
        free(s->axes[k].values);
        free(s->axes[k].steps);
    }
    for (size_t k = 0; k < s->nplot; k++)
        free(s->plot[k]);
    free(s->plot);
    for (size_t j = 0; j < s->nmodels; j++) {
        free(s->models[j].text);
        free(s->models[j].code);
    }
    free(s->models);
    for (size_t p = 0; p < s->npoints; p++) {
        free(s->points[p].vi);
        free(s->points[p].label);
        free(s->points[p].settings);
    }
    free(s->points);
    for (size_t i = 0; i < s->nruns; i++) {
        free(s->runs[i].dir);
        free(s->runs[i].rel);
    }
    free(s->runs);
    if (s->arena)
        arena_free(s->arena);
    source_free(&s->src);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->cmdline);
    free(s->out_alloc);
    free(s);
}

int sweep_main(int argc, char **argv)
{
    int status;
    sweep_signals();
    sweep *s = sweep_open(argc, argv, SWEEP_PREPARE, &status);
    if (!s)
        return status;
    sweep_run_all(s, s->jobs);
    status = sweep_report(s);
    sweep_free(s);
    return status;
}
