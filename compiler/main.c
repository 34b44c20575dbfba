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
#include "sym.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(int argc, char **argv);
} ibc_command;

static int cmd_check(int argc, char **argv);
static int cmd_derive(int argc, char **argv);

static const ibc_command commands[] = {
    { "check", "ibc check SPEC...",
      "Parse and check each spec; print located diagnostics.\n"
      "Exit status 0 when every spec is clean (warnings allowed), 1 on errors.",
      cmd_check },
    { "derive", "ibc derive SPEC [--format text|md|tex|json]",
      "Derive, exactly, the rescaling symmetries of the spec's predictor, the\n"
      "dual slice, det G (Cauchy-Binet), the orbit minimum of log det G, the\n"
      "balance conditions and the induced bias (theory.md sections 2-4).",
      cmd_derive },
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
    ibc_source src;
    ibc_arena *arena;
    ibc_diag diag;
    ast_node *ast;
    ibc_spec *spec;
} unit;

/* Reads and checks one spec; false (after diagnostics) on any error. */
static bool unit_load(unit *u, const char *path)
{
    memset(u, 0, sizeof *u);
    const char *err;
    u->arena = arena_new();
    if (!source_read(&u->src, path, &err)) {
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
    source_free(&u->src);
}

static int cmd_check(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "ibc check: error: no spec given\nusage: %s\n", commands[0].usage);
        return 2;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        unit u;
        if (!unit_load(&u, argv[i]))
            status = 1;
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

int main(int argc, char **argv)
{
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
        for (int j = 2; j < argc; j++)
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
