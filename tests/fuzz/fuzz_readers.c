/*
 * fuzz_readers.c: libFuzzer targets for the runtime's strict data readers
 * (runtime/read.c).  The readers take a path, so the bytes are written to
 * a private temporary file under /tmp (one per process, rewritten for
 * every input) and read back.
 *
 * Built twice: -DFUZZ_CSV gives the CSV target (ibrt_csv_read), -DFUZZ_NPY
 * the .npy target (ibrt_npy_read).  Both also go through
 * ibrt_io_read_matrix, which dispatches on the file name.
 */
#include "ibrt_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(FUZZ_CSV)
#define FUZZ_SUFFIX ".csv"
#elif defined(FUZZ_NPY)
#define FUZZ_SUFFIX ".npy"
#else
#error "define FUZZ_CSV or FUZZ_NPY"
#endif

static char fuzz_path[64];

static void fuzz_cleanup(void)
{
    if (fuzz_path[0])
        unlink(fuzz_path);
}

static bool fuzz_write(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        snprintf(fuzz_path, sizeof fuzz_path, "/tmp/ibc-fuzz-%ld" FUZZ_SUFFIX, (long)getpid());
        atexit(fuzz_cleanup);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20) || !fuzz_write(data, size))
        return 0;
    ibrt_error err;
    double *vals = NULL;
    size_t rows = 0, cols = 0;
    volatile double sink = 0;
#if defined(FUZZ_CSV)
    ibrt_status st = ibrt_csv_read(fuzz_path, &rows, &cols, &vals, &err);
#else
    size_t ndim = 0, shape[2] = { 0, 0 };
    ibrt_status st = ibrt_npy_read(fuzz_path, &ndim, shape, &vals, &err);
    if (!st) {
        if (ndim < 1 || ndim > 2 || (ndim == 1 && shape[1] != 1))
            abort();
        rows = shape[0];
        cols = shape[1];
    }
#endif
    if (!st) {
        /* every value is finite and the whole array is addressable */
        for (size_t i = 0; i < rows * cols; i++) {
            if (vals[i] != vals[i] || vals[i] - vals[i] != 0)
                abort();
            sink += vals[i];
        }
        free(vals);
    } else if (!memchr(err.msg, '\0', sizeof err.msg) || !err.msg[0]) {
        abort();   /* a failure always says why */
    }
    /* the dispatcher gives the same answer */
    double *v2 = NULL;
    size_t r2 = 0, c2 = 0;
    ibrt_status st2 = ibrt_io_read_matrix(fuzz_path, &r2, &c2, &v2, &err);
    if (st2 != st || (!st2 && (r2 != rows || c2 != cols)))
        abort();
    if (!st2)
        free(v2);
    (void)sink;
    return 0;
}
