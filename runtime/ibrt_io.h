/*
 * ibrt_io.h: reading data files and writing results atomically (module
 * prefixes ibrt_csv_, ibrt_npy_, ibrt_atomic_, ibrt_io_, ibrt_outdir_).
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
 * starts with a letter, '_' or a non-ASCII UTF-8 character, optionally
 * inside double quotes, and is not
 * nan, inf or infinity), and then every cell of it must be a name;
 * otherwise it is the first row (see ibrt_csv_read_header for the rule of
 * data files).  Rows all have the same number of cells,
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

/* FNV-1a (64 bits) of n bytes, continuing from h; start from
 * IBRT_FNV1A_BASIS.  A hash against accidents, not tampering: the
 * checkpoint's checksum and layout, the data files' hashes, ibc run's
 * cache key. */
#define IBRT_FNV1A_BASIS 14695981039346656037ULL
uint64_t ibrt_fnv1a(uint64_t h, const void *data, size_t n);

/* The data and operator files read (by ibrt_csv_read, ibrt_npy_read)
 * since the last ibrt_io_files_reset, in the order read: each one's path,
 * an FNV-1a hash of its path and of its bytes as read.  A trainer keeps
 * them in its checkpoint and refuses to resume when a file changed.  The
 * first IBRT_IO_FILES_MAX are listed; the hashes of any later ones are
 * folded into `rest`; n counts them all.  One table per process. */
#define IBRT_IO_FILES_MAX 16
typedef struct {
    size_t n;
    uint64_t path_hash[IBRT_IO_FILES_MAX], bytes_hash[IBRT_IO_FILES_MAX], rest;
    char path[IBRT_IO_FILES_MAX][1024];   /* for messages and results.json; cut at 1023 bytes */
} ibrt_io_files;
void ibrt_io_files_reset(void);

/* Opens /dev/null on any of the standard descriptors 0, 1, 2 that is
 * closed (`trainer 2>&-`), so that the next file opened (a lock, an
 * output, generated C) cannot take its number and receive the messages
 * meant for stderr.  Called first by ibrt_main and by ibc's main. */
void ibrt_io_std_fds(void);
const ibrt_io_files *ibrt_io_files_read(void);

ibrt_status ibrt_csv_read(const char *path, size_t *rows, size_t *cols, double **data, ibrt_error *err);
/* ibrt_csv_read with the header rule given: HEADER 1, the first line (not
 * a comment) is a header whatever its cells hold (numbers, as pandas
 * writes integer labels, or names), skipped, and it must have as many
 * cells as the rows; 0, it is the first row of data; IBRT_CSV_HEADER_AUTO
 * (ibrt_csv_read, operator files), a header when its first cell is a name;
 * IBRT_CSV_HEADER_DATA (data files whose spec does not say), the same, but
 * a first line of 2 or more cells that are exactly 0,1,...,k-1 (pandas'
 * integer labels, or data?) is refused, asking the spec to say which. */
#define IBRT_CSV_HEADER_AUTO (-1)
#define IBRT_CSV_HEADER_DATA (-2)
ibrt_status ibrt_csv_read_header(const char *path, int header, size_t *rows, size_t *cols, double **data,
                                 ibrt_error *err);
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
 * same rows.  "PATH.part" must be a regular file: a symbolic link there is
 * refused, never followed. */
ibrt_status ibrt_csv_open_resumable(ibrt_csv *c, const char *path, const char *header, ibrt_error *err);
ibrt_status ibrt_csv_sync(ibrt_csv *c, long *length, ibrt_error *err);
ibrt_status ibrt_csv_resume(ibrt_csv *c, const char *path, long length, ibrt_error *err);
typedef ibrt_csv ibrt_csv_writer;

typedef struct {
    FILE *f;                      /* open on tmp; NULL: the open failed, or committed */
    char path[1024], tmp[1100];   /* the file's final name, and "PATH.tmp.PID" written until the rename */
} ibrt_atomic;
/* Fails with IBRT_EIO when the path is too long (never truncated) or the
 * temporary cannot be created. */
ibrt_status ibrt_atomic_open(ibrt_atomic *a, const char *path, ibrt_error *err);
/* Flush, check ferror, fsync, close, rename; on any failure the temporary
 * is removed and the message names PATH and the reason. */
ibrt_status ibrt_atomic_commit(ibrt_atomic *a, ibrt_error *err);
void ibrt_atomic_abort(ibrt_atomic *a);   /* close and remove the temporary */

/* "cannot write 'PATH': REASON" into msg for a write that failed with
 * errno e (0: unknown, e.g. a stream error found later), naming the limit
 * it ran into: the file size limit (ulimit -f, with its value), a full
 * file system, a quota.  f (may be NULL) is the stream still open on the
 * file, looked at for its size and its file system. */
void ibrt_io_write_error(char *msg, size_t size, const char *path, int e, FILE *f);

/* A run's hold on its output directory DIR (outdir.c).
 *
 * ibrt_outdir_lock takes DIR/.lock (created if needed, holding the PID of
 * the run) with a POSIX record lock, released when the descriptor is
 * closed or the process ends, even by SIGKILL: a stale lock never
 * survives its run.  When another live run holds it, *in_use is set and
 * the message names that run's PID.  The file stays (removing it would
 * let a third run lock a new file while the second holds the old one).
 *
 * ibrt_outdir_clean removes what a killed run left in DIR (to be called
 * with the lock held, when no live run writes there): temporaries
 * "NAME.tmp.PID" of the atomic writers; with fresh (a run that starts
 * over, not --resume) also the resumable traces "*.csv.part" and an
 * earlier run's checkpoint.bin, which would not match them (a note on
 * stderr says so).  Returns the number of files removed.
 *
 * ibrt_outdir_reserve allocates DIR/.reserve of the given size (nothing
 * when there is no room); ibrt_outdir_release removes it, giving the
 * space back for results.json after a write failed on a full disk. */
ibrt_status ibrt_outdir_lock(const char *dir, int *fd, bool *in_use, ibrt_error *err);
void ibrt_outdir_unlock(int fd);
int ibrt_outdir_clean(const char *dir, bool fresh);
void ibrt_outdir_reserve(const char *dir, size_t bytes);
void ibrt_outdir_release(const char *dir);

#endif
