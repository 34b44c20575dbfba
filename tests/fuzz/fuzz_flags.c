/*
 * fuzz_flags.c: libFuzzer target for a trainer's command line
 * (runtime/trainer.c: ibrt_opts_parse, then ibrt_opts_check, as ibrt_main
 * calls them).
 *
 * The input is an argument vector: its bytes split at NUL bytes (at most
 * 64 arguments; argv[0] is the trainer's name).  Hostile values: numbers
 * out of range, signs, hexadecimal, 1e999, nan, empty strings, a flag
 * without its value, a value that is itself a flag, directories of any
 * length.  Whatever it parses, the options must be within the ranges the
 * driver relies on (steps, seeds, checkpoint and snapshot intervals,
 * --max-growth finite and above 1, directories NUL-terminated and, once
 * checked, of 1 to IBRT_MAX_DIR bytes), or the parse must refuse with a
 * message on stderr.  Nothing is written: stdout and stderr go to
 * /dev/null while the options are parsed.
 */
#include "ibrt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

static void must(bool cond)
{
    if (!cond)
        abort();
}

static int devnull = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    if (devnull < 0 && (devnull = open("/dev/null", O_WRONLY)) < 0)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[66];
    int argc = 0;
    argv[argc++] = "fuzz_trainer";
    for (char *p = buf; p <= buf + size && argc < 65; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    ibrt_opts o;
    /* usage messages and --help are not the point: both streams to /dev/null meanwhile */
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    dup2(devnull, 1);
    dup2(devnull, 2);
    int rc = ibrt_opts_parse(argc, argv, &o, "fuzz_trainer", "a trainer under fuzzing", 500, 7);
    int c = rc == 0 ? ibrt_opts_check(&o, "fuzz_trainer") : 0;
    fflush(stdout);
    fflush(stderr);
    if (out >= 0) {
        dup2(out, 1);
        close(out);
    }
    if (err >= 0) {
        dup2(err, 2);
        close(err);
    }
    must(rc >= -1 && rc <= 1);
    if (rc == 0) {
        must(o.steps >= 1 && o.steps <= 1000000000L);
        must(o.seeds >= 1 && o.seeds <= 1000);
        must(o.seed <= 2147483647u);
        must(o.checkpoint_every >= 0 && o.checkpoint_every <= 1000000000L);
        must(o.stop_after >= 0 && o.stop_after <= 1000000000L);
        must(o.snapshots >= 0 && o.snapshots <= 1000000000L);
        must(isfinite(o.max_growth) && o.max_growth > 1);
        must(o.out_dir != NULL);
        volatile size_t n = strlen(o.out_dir) + (o.resume ? strlen(o.resume) : 0) + (o.verify ? strlen(o.verify) : 0);
        (void)n;
        must(c == 0 || c == 2);
        if (c == 0) {
            size_t lo = strlen(o.out_dir);
            must(lo >= 1 && lo <= IBRT_MAX_DIR);
            must(!o.resume || (strlen(o.resume) >= 1 && strlen(o.resume) <= IBRT_MAX_DIR));
            must(!o.verify || (strlen(o.verify) >= 1 && strlen(o.verify) <= IBRT_MAX_DIR));
            must(!(o.resume && o.seeds > 1));
            must(!(o.verify && (o.resume || o.snapshots || o.gradcheck || o.seeds > 1)));
        }
    }
    free(buf);
    return 0;
}
