/*
 * ibrt_io.h: reading data files and writing results atomically (module
 * prefixes ibrt_csv_, ibrt_npy_, ibrt_atomic_, ibrt_io_).
 *
 * Readers are strict, because a silently misread data file is worse than
 * a refusal.  Both read only regular files (a FIFO, a device such as
 * /dev/zero or a symbolic link to one is refused before a byte is read,
 * so nothing blocks or fills memory) of at most IBRT_IO_MAX_FILE bytes,
 * and only values of magnitude up to IBRT_IO_MAX_ABS (so that a square,
 * as in the loss, stays finite).
 *
 * ibrt_csv_read accepts numbers only, in ASCII or UTF-8 text (a UTF-8
 * byte-order mark at the start is skipped; UTF-16 and NUL bytes are
 * refused): lines whose first non-blank character is '#' are comments
 * (numpy.savetxt writes its header so) and are skipped; the first other
 * line is a header of column names when its first cell is a name (it
 * starts with a letter or '_', optionally inside double quotes, and is not
 * nan, inf or infinity), and then every cell of it must be a name;
 * otherwise it is the first row.  Rows all have the same number of cells,
 * each a decimal number of any length; empty cells, non-numeric text, NaN
 * and Inf are rejected with "FILE:LINE:COLUMN:" and what was expected.
 * Blank lines may only end the file.  ibrt_npy_read accepts format
 * versions 1.0, 2.0 and 3.0, dtypes '<f8', '<f4' and '<i8' (converted to
 * double; an '<i8' value beyond 2^53 is refused because double would round
 * it), C order only, 1 or 2 dimensions, each header field once, and
 * requires the file size to match the header's shape exactly; every fault
 * names the header field or byte count.  Both return a malloc'ed row-major
 * array (free it with free()).
 *
 * Writers (ibrt_npy_write, ibrt_csv_open/row/close and
 * ibrt_json_write_file, declared in ibrt.h) go through ibrt_atomic: the
 * file is written as "PATH.tmp.PID", then flushed, checked for stream
 * errors, fsync'ed and renamed over PATH, so a reader (or a crash) never
 * sees a half-written file and a failed write leaves no temporary behind.
 */
#ifndef IBRT_IO_H
#define IBRT_IO_H

#include "ibrt.h"

#define IBRT_IO_MAX_FILE ((size_t)1 << 30)   /* bytes of one data or operator file (1 GiB) */
#define IBRT_IO_MAX_ABS 1e154                /* largest magnitude of a value read (sqrt(DBL_MAX) = 1.34e154) */

/* Whether PATH (symbolic links followed) is a file the readers accept: a
 * regular file of at most IBRT_IO_MAX_FILE bytes.  If not, WHY (CAP bytes)
 * says why: the system's reason, the kind of file, or its size.  The
 * compiler checks data files with it; the readers check the file they
 * opened the same way. */
bool ibrt_io_file_usable(const char *path, char *why, size_t cap);

ibrt_status ibrt_csv_read(const char *path, size_t *rows, size_t *cols, double **data, ibrt_error *err);
/* shape[1] is set to 1 when ndim == 1. */
ibrt_status ibrt_npy_read(const char *path, size_t *ndim, size_t shape[2], double **data, ibrt_error *err);
/* A matrix from PATH, read as .npy if the name ends in ".npy" and as CSV
 * otherwise; a 1-D .npy array of n values is an n x 1 matrix. */
ibrt_status ibrt_io_read_matrix(const char *path, size_t *rows, size_t *cols, double **data, ibrt_error *err);

/* The trace writer of the contract is ibrt_csv (ibrt.h). */

/* A trace that survives a restart (checkpoints): rows go to "PATH.part", a
 * fixed name, instead of a per-process temporary.  ibrt_csv_sync flushes
 * and fsyncs it and gives its length; ibrt_csv_resume reopens "PATH.part"
 * cut back to such a length (rows written after the checkpoint are
 * dropped, as the resumed run writes them again); ibrt_csv_close renames
 * it to PATH as for any trace.  When "PATH.part" is gone but PATH is
 * there, the run was stopped after its model finished (and renamed the
 * trace) but before the next checkpoint: ibrt_csv_resume takes PATH back
 * as "PATH.part", and the model's remaining steps, run again, write the
 * same rows. */
ibrt_status ibrt_csv_open_resumable(ibrt_csv *c, const char *path, const char *header, ibrt_error *err);
ibrt_status ibrt_csv_sync(ibrt_csv *c, long *length, ibrt_error *err);
ibrt_status ibrt_csv_resume(ibrt_csv *c, const char *path, long length, ibrt_error *err);
typedef ibrt_csv ibrt_csv_writer;

typedef struct {
    FILE *f;
    char path[1024], tmp[1100];
} ibrt_atomic;
/* Fails with IBRT_EIO when the path is too long (never truncated) or the
 * temporary cannot be created. */
ibrt_status ibrt_atomic_open(ibrt_atomic *a, const char *path, ibrt_error *err);
/* Flush, check ferror, fsync, close, rename; on any failure the temporary
 * is removed and the message names PATH and the reason. */
ibrt_status ibrt_atomic_commit(ibrt_atomic *a, ibrt_error *err);
void ibrt_atomic_abort(ibrt_atomic *a);   /* close and remove the temporary */

#endif
