/*
 * main.c: the ibc driver.  Runs the phases in order for each subcommand:
 *
 *   check   parse + sema                       (diagnostics only)
 *   derive  parse + sema + design + symbolic   (the derivation)
 *   emit / build / run                         (code generation, runtime)
 *
 * Exit status: 0 success, 1 errors in a spec, 2 usage errors.
 */
#include "ibc.h"
#include "design.h"
#include "emit.h"
#include "emit_torch.h"
#include "sym.h"
#include "sweep.h"
#include "ibc_flags.h"   /* build/: the Makefile's trainer flags */
#include "ibrt_io.h"    /* ibrt_io_std_fds, ibrt_fnv1a */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name;    /* the word after ibc ("check") */
    const char *usage;   /* one line, for 'ibc --help' and the commands' usage errors */
    const char *help;    /* the paragraph 'ibc COMMAND --help' prints after the usage */
    int (*run)(int argc, char **argv);   /* argv[0] is the command's name; returns the exit status */
} ibc_command;

static int cmd_check(int argc, char **argv);
static int cmd_derive(int argc, char **argv);
static int cmd_emit(int argc, char **argv);
static int cmd_build(int argc, char **argv);
static int cmd_run(int argc, char **argv);
static int cmd_verify(int argc, char **argv);

static const ibc_command commands[] = {
    { "check", "ibc check [--stability] SPEC...",
      "Parse and check each spec; print located diagnostics.  A spec that checks\n"
      "also goes through design, derivation and code generation (nothing is\n"
      "written), so that check refuses what build would: e.g. a trainer over the\n"
      "caps on memory (4 GiB of buffers) and traces (2 GiB).\n"
      "--stability also builds the trainer (as 'ibc run', cached) and runs its\n"
      "stability probe: the largest Hessian eigenvalue of every model's loss at\n"
      "its initial point, and a warning at the spec's lr line when the rate is\n"
      "above 2/lambda_max, where full-batch gradient descent diverges\n"
      "(docs/sweeps.md).\n"
      "Exit status 0 when every spec is clean (warnings allowed), 1 on errors.",
      cmd_check },
    { "derive", "ibc derive SPEC [--format text|md|tex|json]",
      "Derive, exactly, the rescaling symmetries of the spec's predictor, the\n"
      "dual slice, det G (Cauchy-Binet), the orbit minimum of log det G, the\n"
      "balance conditions and the induced bias (docs/theory.md §§2-4).",
      cmd_derive },
    { "emit", "ibc emit [--target c|torch] SPEC [-o FILE]",
      "Write the C training program of the spec (stdout without -o); with\n"
      "--target torch, a Python module for PyTorch instead: the same models,\n"
      "predictor and initialisations, the design as a reparameterisation for\n"
      "torch.nn.utils.parametrize, the derived dual slices and bias, and a writer\n"
      "of snapshots for 'ibc verify' (docs/interop.md).", cmd_emit },
    { "build", "ibc build SPEC -o EXE | --print-cflags | --print-libs",
      "Emit the trainer and compile it with the system cc ($CC) against\n"
      "build/libibrt.a, OpenBLAS and LAPACKE (no shell is involved: cc runs from\n"
      "an argument vector).  The flags are the Makefile's (-O2 -march=native and\n"
      "pkg-config's for LAPACKE and OpenBLAS), then those of $IBC_CFLAGS (e.g.\n"
      "IBC_CFLAGS=-march=x86-64-v3 for the AVX2 path anywhere).  --print-cflags\n"
      "and --print-libs print them, to build a trainer by hand exactly as ibc does:\n"
      "  cc $(ibc build --print-cflags) T.c $(ibc build --print-libs) -o T", cmd_build },
    { "run", "ibc run SPEC [TRAINER FLAGS]",
      "Build the trainer into build/cache/HASH unless it is there, then run it with\n"
      "the given flags (--steps N, --seed S, --out DIR, --quiet; see the trainer's\n"
      "--help).  HASH covers the emitted C (with the spec's data paths, resolved),\n"
      "the bytes of every file the spec reads, the ibc build, the C compiler and its\n"
      "flags ($CC, $IBC_CFLAGS) and the runtime.", cmd_run },
    { "sweep", sweep_usage, sweep_help, sweep_main },   /* sweep.c */
    { "verify", "ibc verify SPEC RUN_DIR [--out DIR] [--seed S] [--quiet]",
      "Check a training run made elsewhere against the derivation: RUN_DIR holds\n"
      "its parameter snapshots, RUN_DIR/step_S/NAME.npy per parameter (named as in\n"
      "the spec) and recorded step S, with NAME.grad.npy the gradient of step S\n"
      "and RUN_DIR/run.json the model and learning rate (optional); the PyTorch\n"
      "module of 'ibc emit --target torch' writes them (write_snapshot), and so\n"
      "does a trainer's --snapshots.  Runs the spec's trainer (as 'ibc run') on\n"
      "them: the structural checks at the first and last snapshot, chi and C\n"
      "over the snapshots, chi conserved or driven, the balance against each\n"
      "prediction, and with every step's gradient the finite-step identity;\n"
      "results.json, traces and the check table in RUN_DIR/verify (or --out).\n"
      "Exit status as the trainer's: 0 every check passes, 4 one fails.", cmd_verify },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage_all(FILE *out)
{
    fprintf(out,
            "usage: ibc [--help] [--version] COMMAND [ARGS]\n\n"
            "ibc derives the implicit bias of a parameterised model (a .ibs spec)\n"
            "exactly, designs parameterisations with a wanted bias, and emits C\n"
            "trainers that verify it.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-40s\n", commands[i].usage);
    fprintf(out, "\n'ibc COMMAND --help' describes one command.\n");
}

/* A compilation unit: source, arena, diagnostics, and the phases so far. */
typedef struct {
    ibc_source src;      /* the spec file's text (path only when it could not be read) */
    ibc_arena *arena;    /* holds the AST, the spec and everything later phases allocate */
    ibc_diag diag;       /* to stderr, against src */
    ast_node *ast;       /* the parsed AST_SPEC, NULL: not read */
    ibc_spec *spec;      /* the checked spec, NULL: not read, or errors */
} unit;

static bool check_stability(unit *u);
static bool spec_all_auto(const ibc_spec *sp);

/* Reads and checks one spec; false (after diagnostics) on any error. */
static bool unit_load(unit *u, const char *path)
{
    memset(u, 0, sizeof *u);
    const char *err;
    u->arena = arena_new();
    if (!diag_source_read(&u->src, path, &err)) {
        fprintf(stderr, "ibc: error: cannot read '%s': %s\n", path, err);
        u->src.path = path;
        return false;
    }
    diag_init(&u->diag, &u->src, stderr);
    u->ast = parse_spec(u->arena, &u->src, &u->diag);
    if (u->diag.errors == 0)
        u->spec = sema_check(u->arena, u->ast, &u->diag);
    diag_summary(&u->diag);
    return u->spec != NULL;
}

static void unit_free(unit *u)
{
    arena_free(u->arena);
    diag_source_free(&u->src);
}

/* The phases after the checker: design (for a design target), the
 * derivation and code generation into out; false on errors (reported to
 * u->diag). */
static bool emit_torch_target;   /* ibc emit --target torch */

static bool lower(unit *u, FILE *out)
{
    design_result *r = NULL;
    if (u->spec->design.kind != DESIGN_NONE)
        r = design_synthesise(u->arena, u->spec, &u->diag);
    sym_derivation *d = sym_derive(u->arena, u->spec, &u->diag);
    if (emit_torch_target)
        return (u->spec->design.kind == DESIGN_NONE || r) && d && emit_torch(out, u->spec, r, d, &u->diag);
    return (u->spec->design.kind == DESIGN_NONE || r) && d && emit_program(out, u->spec, r, d, &u->diag);
}

/* check = what `ibc build` would refuse, without writing C: the design,
 * the derivation and code generation run with their diagnostics held
 * back, and are shown only if one is an error (the caps on a trainer's
 * buffers and traces, an operator code generation does not support);
 * derivation notes of a clean spec belong to `ibc derive`, not here. */
static bool check_lowering(unit *u)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *held = open_memstream(&buf, &len), *sink = fopen("/dev/null", "w");
    if (!held || !sink) {
        if (held)
            fclose(held);
        if (sink)
            fclose(sink);
        free(buf);
        return true;   /* nothing to hold diagnostics in: the front end's verdict stands */
    }
    FILE *out = u->diag.out;
    int errors = u->diag.errors;
    u->diag.out = held;
    lower(u, sink);
    fclose(sink);
    fclose(held);
    u->diag.out = out;
    bool ok = u->diag.errors == errors;
    if (!ok) {
        fwrite(buf, 1, len, out);
        diag_summary(&u->diag);
    }
    free(buf);
    return ok;
}

static int cmd_check(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "ibc check: error: no spec given\nusage: %s\n", commands[0].usage);
        return 2;
    }
    bool stability = false;
    int nspecs = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--stability"))
            stability = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "ibc check: error: unknown option '%s'\nusage: %s\n", argv[i], commands[0].usage);
            return 2;
        } else
            nspecs++;
    if (!nspecs) {
        fprintf(stderr, "ibc check: error: no spec given\nusage: %s\n", commands[0].usage);
        return 2;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stability"))
            continue;
        unit u;
        if (!unit_load(&u, argv[i]))
            status = 1;
        else if (!check_lowering(&u))
            status = 1;
        else if (stability && !check_stability(&u))
            status = 1;
        else if (!stability && !spec_all_auto(u.spec))
            printf("%s: note: the learning rate is not checked against the stability bound; 'ibc check "
                   "--stability' measures it (builds and runs the trainer's probe)\n", argv[i]);
        unit_free(&u);
    }
    return status;
}

static int cmd_derive(int argc, char **argv)
{
    const char *path = NULL, *format = "text";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else if (!strncmp(argv[i], "--format=", 9))
            format = argv[i] + 9;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "ibc derive: error: unexpected argument '%s'\nusage: %s\n", argv[i], commands[1].usage);
            return 2;
        } else
            path = argv[i];
    }
    static const char *const formats[] = { "text", "md", "tex", "json" };
    int fmt = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(format, formats[i]))
            fmt = i;
    if (!path || fmt < 0) {
        fprintf(stderr, "ibc derive: error: %s\nusage: %s\n", path ? "unknown format (text, md, tex, json)" : "no spec given",
                commands[1].usage);
        return 2;
    }
    unit u;
    int status = 1;
    if (unit_load(&u, path)) {
        if (u.spec->design.kind != DESIGN_NONE) {
            /* requested penalty -> factorisation -> derivation -> match */
            design_result *r = design_synthesise(u.arena, u.spec, &u.diag);
            if (r && fmt == SYM_FMT_JSON) {
                /* one JSON object: the designed model's derivation plus "design" */
                char *buf = NULL, *dbuf = NULL;
                size_t len = 0, dlen = 0;
                FILE *m = open_memstream(&buf, &len), *dm = open_memstream(&dbuf, &dlen);
                sym_print(m, r->derivation, SYM_FMT_JSON);
                design_print(dm, r, SYM_FMT_JSON);
                fclose(m);
                fclose(dm);
                char *end = strrchr(buf, '}');
                if (end)
                    *end = '\0';
                printf("%s,\n  \"design\": %s}\n", buf, dbuf);
                free(buf);
                free(dbuf);
            } else if (r) {
                design_print(stdout, r, (sym_format)fmt);
            }
            status = r ? 0 : 1;
        } else {
            sym_derivation *d = sym_derive(u.arena, u.spec, &u.diag);
            if (d)
                sym_print(stdout, d, (sym_format)fmt);
            status = d ? 0 : 1;
        }
        if (status)
            diag_summary(&u.diag);
    }
    unit_free(&u);
    return status;
}

/* Emits the trainer of the spec at path into out; 0 or 1 (errors shown). */
static int emit_to(const char *path, FILE *out)
{
    unit u;
    int status = 1;
    if (unit_load(&u, path)) {
        if (lower(&u, out))
            status = 0;
        else
            diag_summary(&u.diag);
    }
    unit_free(&u);
    return status;
}

static int cmd_emit(int argc, char **argv)
{
    const char *spec = NULL, *outp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *target = !strcmp(argv[i], "--target") && i + 1 < argc ? argv[++i]
                             : !strncmp(argv[i], "--target=", 9)          ? argv[i] + 9
                                                                          : NULL;
        if (target && (!strcmp(target, "c") || !strcmp(target, "torch")))
            emit_torch_target = !strcmp(target, "torch");
        else if (target) {
            fprintf(stderr, "ibc emit: error: unknown target '%s' (c, torch)\nusage: %s\n", target, commands[2].usage);
            return 2;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            outp = argv[++i];
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else {
            fprintf(stderr, "ibc emit: error: unexpected argument '%s'\nusage: %s\n", argv[i], commands[2].usage);
            return 2;
        }
    }
    if (!spec) {
        fprintf(stderr, "ibc emit: error: no spec given\nusage: %s\n", commands[2].usage);
        return 2;
    }
    if (!outp)
        return emit_to(spec, stdout);
    /* write beside, then rename: never a half-written file */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", outp, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "ibc emit: error: cannot write '%s': %s\n", tmp, strerror(errno));
        return 1;
    }
    int st = emit_to(spec, f);
    if (fclose(f) != 0 || st != 0 || rename(tmp, outp) != 0) {
        unlink(tmp);
        return st ? st : 1;
    }
    return 0;
}

/* The repository root: the directory above bin/ that holds this ibc. */
static const char *ibc_root(void)
{
    static char root[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
    if (n <= 0)
        return ".";
    root[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(root, '/');
        if (slash)
            *slash = '\0';
    }
    return root;
}

/* The trainer's compile and link flags (the Makefile's TRAINER_CFLAGS
 * and TRAINER_LIBS, build/ibc_flags.h), with the runtime's include
 * directory and library under this ibc's repository root; $IBC_CFLAGS
 * after the compile flags.  Words separated by blanks (no quoting: none
 * of these contains one). */
enum { MAX_FLAGS = 64 };

/* Appends the words of s (copied into buf) to out[n...]; returns the new
 * count, or -1 when s does not fit (cap bytes, MAX_FLAGS words in all). */
static int split_words(const char *s, char *buf, size_t cap, char **out, int n)
{
    if ((size_t)snprintf(buf, cap, "%s", s ? s : "") >= cap)
        return -1;
    for (char *w = strtok(buf, " \t\n"); w; w = strtok(NULL, " \t\n")) {
        if (n == MAX_FLAGS)
            return -1;
        out[n++] = w;
    }
    return n;
}

typedef struct {
    char inc[PATH_MAX + 16], lib[PATH_MAX + 32];   /* "-I<root>/runtime", "<root>/build/libibrt.a" */
    /* the words' storage: split copies of IBC_TRAINER_CFLAGS, $IBC_CFLAGS (at most 4095 bytes), IBC_TRAINER_LIBS */
    char cbuf[sizeof IBC_TRAINER_CFLAGS], ebuf[4096], lbuf[sizeof IBC_TRAINER_LIBS];
    char *cflags[MAX_FLAGS], *libs[MAX_FLAGS];   /* the words, in order, pointing into the buffers above */
    int ncflags, nlibs;                          /* how many of each */
} trainer_flags;

static void trainer_flags_get(trainer_flags *t)
{
    const char *root = ibc_root();
    snprintf(t->inc, sizeof t->inc, "-I%s/runtime", root);
    snprintf(t->lib, sizeof t->lib, "%s/build/libibrt.a", root);
    t->ncflags = split_words(IBC_TRAINER_CFLAGS, t->cbuf, sizeof t->cbuf, t->cflags, 0);
    t->cflags[t->ncflags++] = t->inc;   /* the Makefile's flags are far fewer than MAX_FLAGS */
    int n = split_words(getenv("IBC_CFLAGS"), t->ebuf, sizeof t->ebuf, t->cflags, t->ncflags);
    if (n < 0) {   /* never a silently shortened flag list */
        fprintf(stderr, "ibc: error: $IBC_CFLAGS is too long: with the build's own %d flags at most %d words and "
                "%zu bytes fit; shorten it\n", t->ncflags, MAX_FLAGS, sizeof t->ebuf - 1);
        exit(1);
    }
    t->ncflags = n;
    t->libs[0] = t->lib;
    t->nlibs = split_words(IBC_TRAINER_LIBS, t->lbuf, sizeof t->lbuf, t->libs, 1);
}

static void print_words(char **w, int n)
{
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? " " : "", w[i]);
    printf("\n");
}

/* cc from an argument vector (fork + execvp): no shell sees spec text. */
static int compile_c(const char *src, const char *exe)
{
    static trainer_flags t;
    trainer_flags_get(&t);
    if (access(t.lib, R_OK) != 0) {
        fprintf(stderr, "ibc build: error: the runtime library %s is missing: run 'make' first\n", t.lib);
        return 1;
    }
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *args[2 * MAX_FLAGS + 8];
    int n = 0;
    args[n++] = (char *)cc;
    for (int i = 0; i < t.ncflags; i++)
        args[n++] = t.cflags[i];
    args[n++] = (char *)src;
    for (int i = 0; i < t.nlibs; i++)
        args[n++] = t.libs[i];
    args[n++] = "-o";
    args[n++] = (char *)exe;
    args[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        perror("ibc build: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(cc, args);
        fprintf(stderr, "ibc build: error: cannot run '%s': %s\n", cc, strerror(errno));
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ibc build: error: compiling %s failed\n", src);
        return 1;
    }
    return 0;
}

static int build_spec(const char *spec, const char *exe)
{
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s.c", exe);
    FILE *f = fopen(src, "w");
    if (!f) {
        fprintf(stderr, "ibc build: error: cannot write '%s': %s\n", src, strerror(errno));
        return 1;
    }
    int st = emit_to(spec, f);
    fclose(f);
    if (st)
        return st;
    return compile_c(src, exe);
}

static int cmd_build(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--print-cflags") || !strcmp(argv[1], "--print-libs"))) {
        static trainer_flags t;
        trainer_flags_get(&t);
        if (!strcmp(argv[1], "--print-cflags"))
            print_words(t.cflags, t.ncflags);
        else
            print_words(t.libs, t.nlibs);
        return 0;
    }
    if (argc != 4 || strcmp(argv[2], "-o")) {
        fprintf(stderr, "ibc build: error: expected SPEC -o EXE\nusage: %s\n", commands[3].usage);
        return 2;
    }
    return build_spec(argv[1], argv[3]);
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* FNV-1a of a file's bytes after h; false when it cannot be read. */
static bool fnv_file(unsigned long long *h, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        *h = ibrt_fnv1a(*h, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

/* The cache key of `ibc run`: FNV-1a of what the trainer is made of and
 * what it reads.  The emitted C (which holds the spec's data and operator
 * paths, resolved and absolute, and the spec's fingerprint), the path and
 * the bytes of every file the spec reads (the same spec text in another
 * directory, or next to other data, is another trainer), the compiler
 * build, the C compiler and its flags (with $IBC_CFLAGS), the runtime
 * library and every runtime header (a rebuilt runtime must not run a
 * stale cached trainer).  0 with
 * *why set when a file the spec reads cannot be read. */
static unsigned long long trainer_key(const ibc_spec *spec, const char *c, size_t clen, const char **why,
                                      const char **which)
{
    unsigned long long h = 1469598103934665603ull;
    h = ibrt_fnv1a(h, c, clen);
    for (size_t i = 0; i < spec->nfiles; i++) {
        h = ibrt_fnv1a(h, spec->files[i], strlen(spec->files[i]) + 1);
        if (!fnv_file(&h, spec->files[i])) {
            *why = strerror(errno);
            *which = spec->files[i];
            return 0;
        }
    }
    static const char build[] = IBC_VERSION " " __DATE__ " " __TIME__;
    h = ibrt_fnv1a(h, build, sizeof build);
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    h = ibrt_fnv1a(h, cc, strlen(cc) + 1);
    static trainer_flags t;   /* the flags compile_c would give it ($IBC_CFLAGS included) */
    trainer_flags_get(&t);
    for (int i = 0; i < t.ncflags; i++)
        h = ibrt_fnv1a(h, t.cflags[i], strlen(t.cflags[i]) + 1);
    for (int i = 0; i < t.nlibs; i++)
        h = ibrt_fnv1a(h, t.libs[i], strlen(t.libs[i]) + 1);
    char path[PATH_MAX + 512];
    snprintf(path, sizeof path, "%s/build/libibrt.a", ibc_root());
    fnv_file(&h, path);   /* missing: compile_c says so */
    snprintf(path, sizeof path, "%s/runtime", ibc_root());
    DIR *d = opendir(path);
    if (d) {   /* every header, in name order (readdir's is arbitrary) */
        char names[64][256];
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < 64) {
            size_t len = strlen(e->d_name);
            if (len > 2 && len < sizeof names[0] && (!strcmp(e->d_name + len - 2, ".h") ||
                                                     (len > 4 && !strcmp(e->d_name + len - 4, ".def"))))
                memcpy(names[n++], e->d_name, len + 1);
        }
        closedir(d);
        qsort(names, n, sizeof names[0], cmp_name);
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/runtime/%.255s", ibc_root(), names[i]);
            h = ibrt_fnv1a(h, names[i], strlen(names[i]) + 1);
            fnv_file(&h, path);
        }
    }
    return h ? h : 1;
}

/* The trainer of the loaded unit u in build/cache/KEY/trainer (its path
 * into exe), compiled there unless it is there already; 0, or the exit
 * status of `ibc run` after a message.  what: "ibc run", "ibc check". */
static int cached_trainer(unit *u, const char *what, char *exe, size_t cap)
{
    char *c = NULL;
    size_t clen = 0;
    FILE *m = open_memstream(&c, &clen);
    bool emitted = m && lower(u, m);
    if (m)
        fclose(m);
    if (!emitted) {
        if (!m)
            fprintf(stderr, "%s: error: out of memory\n", what);
        diag_summary(&u->diag);
        free(c);
        return 1;
    }
    const char *why = NULL, *which = NULL;
    unsigned long long h = trainer_key(u->spec, c, clen, &why, &which);
    if (!h) {
        fprintf(stderr, "%s: error: cannot read '%s': %s\n", what, which, why);
        free(c);
        return 1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/build/cache/%016llx", ibc_root(), h);
    snprintf(exe, cap, "%s/trainer", dir);
    if (access(exe, X_OK) != 0) {
        char parent[PATH_MAX + 8];
        snprintf(parent, sizeof parent, "%s/build/cache", ibc_root());
        mkdir(parent, 0777);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "%s: error: cannot create '%s': %s\n", what, dir, strerror(errno));
            free(c);
            return 1;
        }
        /* build under a private name, then rename: a concurrent run of the
         * same spec never executes a half-written trainer */
        char tmp[PATH_MAX + 64], tmpc[PATH_MAX + 72], exec_c[PATH_MAX + 40];
        snprintf(tmp, sizeof tmp, "%s/trainer.tmp.%ld", dir, (long)getpid());
        snprintf(tmpc, sizeof tmpc, "%s.c", tmp);
        snprintf(exec_c, sizeof exec_c, "%s.c", exe);
        FILE *f = fopen(tmpc, "w");
        bool written = f && fwrite(c, 1, clen, f) == clen;
        if (f && fclose(f) != 0)
            written = false;
        if (!written) {
            fprintf(stderr, "%s: error: cannot write '%s': %s\n", what, tmpc, strerror(errno));
            unlink(tmpc);
            free(c);
            return 1;
        }
        int st = compile_c(tmpc, tmp);
        if (st) {
            unlink(tmp);
            unlink(tmpc);
            free(c);
            return st;
        }
        if (rename(tmpc, exec_c) != 0 || rename(tmp, exe) != 0) {
            fprintf(stderr, "%s: error: cannot install '%s': %s\n", what, exe, strerror(errno));
            unlink(tmp);
            free(c);
            return 1;
        }
    }
    free(c);
    return 0;
}

/* The learning-rate setting of the trainer's model `name` ("designed",
 * "vanilla", "l1", "model"), as emit.c resolves it. */
static const ibc_lrset *model_lrset(const ibc_spec *sp, const char *name)
{
    double v;
    if (!strcmp(name, "designed"))
        return sema_spec_lr(sp, &sp->design.lrs, sp->design.lr, &v);
    for (size_t b = 0; b < sp->nbaselines; b++)
        if (!strcmp(name, sp->baselines[b].kind == BASELINE_L1 ? "l1" : "vanilla"))
            return sema_spec_lr(sp, &sp->baselines[b].lrs, sp->baselines[b].lr, &v);
    return sema_spec_lr(sp, NULL, 0, &v);
}

/* Every trained model has lr = auto (nothing for the probe to warn about). */
static bool spec_all_auto(const ibc_spec *sp)
{
    const char *names[10] = { "model" };
    size_t n = 1;
    if (sp->design.kind != DESIGN_NONE) {
        names[0] = "designed";
        for (size_t b = 0; b < sp->nbaselines && n < 10; b++)
            names[n++] = sp->baselines[b].kind == BASELINE_L1 ? "l1" : "vanilla";
    }
    for (size_t i = 0; i < n; i++)
        if (!model_lrset(sp, names[i])->is_auto)
            return false;
    return true;
}

/* ibc check --stability: the cached trainer's --stability lines,
 * "stability MODEL LAMBDA_MAX BOUND LR ITERATIONS CONVERGED[ on DATA]", one per
 * model, printed, and a warning at the model's lr line when LR > BOUND;
 * false when the trainer cannot be built or run. */
static bool check_stability(unit *u)
{
    char exe[PATH_MAX + 32];
    if (cached_trainer(u, "ibc check", exe, sizeof exe))
        return false;
    int fd[2];
    if (pipe(fd) != 0) {
        fprintf(stderr, "ibc check: error: pipe: %s\n", strerror(errno));
        return false;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ibc check: error: fork: %s\n", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return false;
    }
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        char *args[] = { exe, "--stability", NULL };
        execv(exe, args);
        fprintf(stderr, "ibc check: error: cannot run '%s': %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    FILE *in = fdopen(fd[0], "r");
    char line[512];
    int models = 0;
    while (in && fgets(line, sizeof line, in)) {
        char name[64];
        double lam, bound, lr;
        int iters, conv, end = 0;
        if (sscanf(line, "stability %63s %lf %lf %lf %d %d%n", name, &lam, &bound, &lr, &iters, &conv, &end) != 6)
            continue;
        models++;
        /* the rest of the line: " on ..." (the loss of random batches the
         * probe took instead of one batch), nothing for full batch */
        char *on = line + end;
        on[strcspn(on, "\n")] = 0;
        const ibc_lrset *lrs = model_lrset(u->spec, name);
        printf("%s: stability (%s): lambda_max ~ %.3g at init%s (%d Hessian-vector products, %s), so lr < 2/lambda = "
               "%.3g for full-batch GD; lr = ", u->src.path, name, lam, on, iters, conv ? "converged" : "NOT converged",
               bound);
        if (lrs->is_auto)
            printf("auto(%g, %g)\n", lrs->lo, lrs->hi);
        else
            printf("%g\n", lr);
        if (!lrs->is_auto && lr > bound && lrs->node)
            diag_warning(&u->diag, lrs->node->loc, "the learning rate %g of model '%s' is above the stability bound "
                         "2/lambda_max = %.3g at its initial point (lambda_max ~ %.3g): full-batch gradient descent "
                         "diverges from there; lower it below %.3g or write lr = auto", lr, name, bound, lam, bound);
        else if (lrs->is_auto && lrs->lo > bound && lrs->node)
            diag_warning(&u->diag, lrs->node->loc, "every rate of lr = auto(%g, %g) for model '%s' is above the "
                         "stability bound 2/lambda_max = %.3g at its initial point: lower the lower bound", lrs->lo,
                         lrs->hi, name, bound);
    }
    if (in)
        fclose(in);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || models == 0) {
        fprintf(stderr, "ibc check: error: the stability probe of '%s' failed (%s %d)\n", u->src.path,
                WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return false;
    }
    diag_summary(&u->diag);
    return true;
}

/* `ibc run SPEC`: the spec is read once, into memory (a pipe such as
 * <(cat spec) can be read only once; a device is refused by diag_source_read),
 * checked and emitted; the trainer is compiled into build/cache/KEY
 * unless it is there already, then run. */
static int cmd_run(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "ibc run: error: no spec given\nusage: ibc run SPEC [TRAINER FLAGS]\n");
        return 2;
    }
    unit u;
    if (!unit_load(&u, argv[1])) {
        unit_free(&u);
        return 1;
    }
    char exe[PATH_MAX + 32];
    int st = cached_trainer(&u, "ibc run", exe, sizeof exe);
    unit_free(&u);
    if (st)
        return st;
    argv[1] = exe;
    execv(exe, argv + 1);
    fprintf(stderr, "ibc run: error: cannot run '%s': %s\n", exe, strerror(errno));
    return 1;
}

/* ibc verify SPEC RUN [FLAGS] = ibc run SPEC --verify RUN [FLAGS] */
static int cmd_verify(int argc, char **argv)
{
    if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        fprintf(stderr, "ibc verify: error: expected SPEC RUN_DIR\nusage: %s\n", commands[5].usage);
        return 2;
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[0] = "run";
    args[1] = argv[1];
    args[2] = "--verify";
    args[3] = argv[2];
    for (int i = 3; i < argc; i++)
        args[i + 1] = argv[i];
    return cmd_run(argc + 1, args);
}

int main(int argc, char **argv)
{
    ibrt_io_std_fds();   /* a closed stderr must not become the generated C file */
    if (argc < 2) {
        usage_all(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_all(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ibc %s\n", IBC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        /* after `ibc run SPEC` the flags are the trainer's, --help included */
        int last = !strcmp(argv[1], "run") ? 2 : argc - 1;
        for (int j = 2; j <= last && j < argc; j++)
            if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
                printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].help);
                return 0;
            }
        return commands[i].run(argc - 1, argv + 1);
    }
    const char *names[NCOMMANDS];
    for (size_t i = 0; i < NCOMMANDS; i++)
        names[i] = commands[i].name;
    const char *best = diag_suggest(argv[1], names, NCOMMANDS);
    fprintf(stderr, "ibc: error: unknown command '%s'%s%s%s\n", argv[1], best ? "; did you mean '" : "",
            best ? best : "", best ? "'?" : "");
    fprintf(stderr, "run 'ibc --help' for the list of commands\n");
    return 2;
}
