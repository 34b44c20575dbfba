/*
 * fuzz_front.c: libFuzzer target for the ibc front end.
 *
 * The input bytes are a .ibs spec.  They go through the same phases as
 * `ibc check` (lexer + parser, then the checker when the parse is clean),
 * in memory: the source is never written to disk and diagnostics go to a
 * memory stream that is thrown away.  When the check passes and the spec
 * is small (every dim and parameter within the bounds below), the symbolic
 * derivation (sym) and, for a design target, the design phase run too, as
 * in `ibc derive`, and their output is printed to the same memory stream.
 *
 * The spec's path is in a private temporary directory (made once per
 * process, removed at exit) that holds a few small data files, so that
 * matrix("m4.csv") and data csv(x = "x.csv", y = "y.csv") reach the file
 * readers: m4.csv (4 x 4, invertible), sing4.csv (4 x 4, singular),
 * m3x4.csv (3 x 4), x.csv (8 x 4), y.csv (8 x 1), big40.csv (40 x 40) and
 * the faulty bad.csv, ragged.csv, inf.csv and empty.csv.
 */
#include "ibc.h"
#include "design.h"
#include "sym.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds for the costly phases; larger specs stop after the check. */
#define FUZZ_MAX_DIM 64L
#define FUZZ_MAX_ELEMS 1024L
#define FUZZ_MAX_INPUT 16384

static bool fuzz_small(const ibc_spec *spec)
{
    for (size_t i = 0; i < spec->ndims; i++)
        if (spec->dims[i].value > FUZZ_MAX_DIM)
            return false;
    const ibc_var *vars[2] = { spec->params, spec->inputs };
    size_t counts[2] = { spec->nparams, spec->ninputs };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k]; i++) {
            const ibc_shape *s = &vars[k][i].shape;
            if (s->rows > FUZZ_MAX_DIM || s->cols > FUZZ_MAX_DIM || s->rows * s->cols > FUZZ_MAX_ELEMS)
                return false;
        }
    if (spec->out_shape.rows > FUZZ_MAX_DIM || spec->out_shape.cols > FUZZ_MAX_DIM)
        return false;
    return true;
}

static char fuzz_dir[64], fuzz_spec[96];

static const struct {
    const char *name, *text;
} fuzz_files[] = {
    { "m4.csv", "2,1,0,0\n1,3,1,0\n0,1,4,1\n0,0,1,5\n" },
    { "sing4.csv", "1,2,3,4\n2,4,6,8\n0,1,0,1\n1,0,1,0\n" },
    { "m3x4.csv", "1,0,0,1\n0,1,0,1\n0,0,1,1\n" },
    { "x.csv", "x0,x1,x2,x3\n1,0,0,0\n0,1,0,0\n0,0,1,0\n0,0,0,1\n1,1,0,0\n0,1,1,0\n0,0,1,1\n1,0,0,1\n" },
    { "y.csv", "1\n2\n3\n4\n3\n5\n7\n5\n" },
    /* faulty operator files, for the error paths of design.c's reader */
    { "bad.csv", "1,2\n3,x\n" },
    { "ragged.csv", "1,2\n# a comment\n\n3\n" },
    { "inf.csv", "1e999,1\n1,1\n" },
    { "empty.csv", "" },
    { "big40.csv", NULL },   /* 40 x 40, tridiagonal: more values than the reader's first buffer */
};
#define NFILES (sizeof fuzz_files / sizeof fuzz_files[0])

static void fuzz_cleanup(void)
{
    char p[128];
    for (size_t i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/%s", fuzz_dir, fuzz_files[i].name);
        unlink(p);
    }
    rmdir(fuzz_dir);
}

static void fuzz_setup(void)
{
    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/ibc-fuzz-front-XXXXXX");
    if (!mkdtemp(fuzz_dir)) {
        /* no temporary directory: a directory that does not exist */
        snprintf(fuzz_spec, sizeof fuzz_spec, "/nonexistent-ibc-fuzz-dir/fuzz.ibs");
        return;
    }
    atexit(fuzz_cleanup);
    char p[128];
    for (size_t i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/%s", fuzz_dir, fuzz_files[i].name);
        FILE *f = fopen(p, "w");
        if (!f)
            continue;
        if (fuzz_files[i].text)
            fputs(fuzz_files[i].text, f);
        else
            for (int r = 0; r < 40; r++)
                for (int c = 0; c < 40; c++)
                    fprintf(f, "%d%c", r == c ? 4 : (r - c == 1 || c - r == 1) ? -1 : 0, c == 39 ? '\n' : ',');
        fclose(f);
    }
    snprintf(fuzz_spec, sizeof fuzz_spec, "%s/fuzz.ibs", fuzz_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (!fuzz_spec[0])
        fuzz_setup();
    /* ibc_source holds a NUL-terminated copy; NUL bytes inside are kept */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    ibc_source src = { fuzz_spec, text, size };

    char *dbuf = NULL;
    size_t dlen = 0;
    FILE *out = open_memstream(&dbuf, &dlen);
    if (!out) {
        free(text);
        return 0;
    }
    ibc_arena *arena = arena_new();
    ibc_diag diag;
    diag_init(&diag, &src, out);
    ast_node *ast = parse_spec(arena, &src, &diag);
    ibc_spec *spec = NULL;
    if (ast && diag.errors == 0)
        spec = sema_check(arena, ast, &diag);
    if (spec && fuzz_small(spec)) {
        if (spec->design.kind != DESIGN_NONE) {
            design_result *r = design_synthesise(arena, spec, &diag);
            if (r)
                for (int f = 0; f <= SYM_FMT_JSON; f++)
                    design_print(out, r, (sym_format)f);
        } else {
            sym_derivation *d = sym_derive(arena, spec, &diag);
            if (d)
                for (int f = 0; f <= SYM_FMT_JSON; f++)
                    sym_print(out, d, (sym_format)f);
        }
    }
    diag_summary(&diag);
    arena_free(arena);
    fclose(out);
    free(dbuf);
    free(text);
    return 0;
}
