/*
 * io.c: atomic writers (CSV traces, .npy) and directory creation.  Each
 * file is written as "PATH.tmp.PID", flushed, checked, fsync'ed and renamed
 * over PATH, so results are never half-written even if the trainer is
 * killed, and a failed write removes its temporary.
 */
#include "ibrt_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ibrt_status ibrt_mkdir_p(const char *path, ibrt_error *err)
{
    char buf[1024];
    size_t len = strlen(path);
    if (len == 0) {
        snprintf(err->msg, sizeof err->msg, "empty output directory name");
        return IBRT_EIO;
    }
    if (len >= sizeof buf) {
        snprintf(err->msg, sizeof err->msg, "output path too long (%zu bytes, at most %zu): '%.200s...'", len,
                 sizeof buf - 1, path);
        return IBRT_EIO;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            struct stat st;
            if (mkdir(buf, 0777) != 0) {
                if (errno != EEXIST) {
                    snprintf(err->msg, sizeof err->msg, "cannot create directory '%.400s': %s", buf, strerror(errno));
                    return IBRT_EIO;
                }
                /* EEXIST also covers a plain file of that name */
                if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                    snprintf(err->msg, sizeof err->msg, "cannot create directory '%.400s': a file of that name exists",
                             buf);
                    return IBRT_EIO;
                }
            }
            *p = c;
        }
        if (c == '\0')
            break;
    }
    return IBRT_OK;
}

/* A file of the run's own, created or emptied for writing: fopen "wb"
 * without following a symbolic link put at its name (it would write
 * through it into another file); errno set on failure. */
static FILE *open_own(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

ibrt_status ibrt_atomic_open(ibrt_atomic *a, const char *path, ibrt_error *err)
{
    a->f = NULL;
    a->tmp[0] = '\0';
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof a->path) {
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", path,
                 len ? "path too long" : "empty file name");
        return IBRT_EIO;
    }
    memcpy(a->path, path, len + 1);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    a->f = open_own(a->tmp);
    if (!a->f) {
        ibrt_io_write_error(err->msg, sizeof err->msg, a->tmp, errno, NULL);
        return IBRT_EIO;
    }
    return IBRT_OK;
}

ibrt_status ibrt_atomic_commit(ibrt_atomic *a, ibrt_error *err)
{
    if (!a->f) {
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': not open", a->path);
        return IBRT_EIO;
    }
    /* ferror catches a failed fprintf/fwrite earlier on (disk full), which
     * a later successful fflush would not report */
    /* the message is made while the file is open: it looks at its size
     * and its file system to name the limit it ran into */
    bool failed = false;
    int e = 0;
    errno = 0;
    if (fflush(a->f) != 0) {
        failed = true;
        e = errno;
    } else if (ferror(a->f))
        failed = true;   /* an earlier write failed; its errno is gone */
    else if (fsync(fileno(a->f)) != 0) {
        failed = true;
        e = errno;
    }
    if (failed)
        ibrt_io_write_error(err->msg, sizeof err->msg, a->path, e, a->f);
    if (fclose(a->f) != 0 && !failed) {
        failed = true;
        ibrt_io_write_error(err->msg, sizeof err->msg, a->path, errno, NULL);
    }
    a->f = NULL;
    if (!failed && rename(a->tmp, a->path) != 0) {
        failed = true;
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", a->path, strerror(errno));
    }
    if (failed) {
        unlink(a->tmp);
        return IBRT_EIO;
    }
    return IBRT_OK;
}

void ibrt_atomic_abort(ibrt_atomic *a)
{
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        unlink(a->tmp);
    }
}

/* .npy format 1.0: magic "\x93NUMPY", version 1 0, a little-endian 2-byte
 * header length, then a Python dict literal padded with spaces and a '\n'
 * so that the data starts at a multiple of 64 bytes. */
ibrt_status ibrt_npy_write(const char *path, const double *data, size_t ndim, const size_t *shape, ibrt_error *err)
{
    char header[256];
    int n;
    if (ndim == 1)
        n = snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,), }", shape[0]);
    else if (ndim == 2)
        n = snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     shape[0], shape[1]);
    else {
        snprintf(err->msg, sizeof err->msg, "%.400s: cannot write a %zu-dimensional array (1 or 2 supported)", path,
                 ndim);
        return IBRT_ESHAPE;
    }
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        snprintf(err->msg, sizeof err->msg, "%.400s: .npy writer assumes a little-endian machine", path);
        return IBRT_EIO;
    }
    ibrt_atomic a;
    ibrt_status st = ibrt_atomic_open(&a, path, err);
    if (st)
        return st;
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64;
    unsigned hl = (unsigned)((size_t)n + pad + 1);
    unsigned char le[2] = { (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8) };
    fwrite("\x93NUMPY\x01\x00", 1, 8, a.f);
    fwrite(le, 1, 2, a.f);
    fwrite(header, 1, (size_t)n, a.f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', a.f);
    fputc('\n', a.f);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++)
        count *= shape[i];
    if (count)
        fwrite(data, sizeof(double), count, a.f);
    return ibrt_atomic_commit(&a, err);
}

ibrt_status ibrt_csv_open(ibrt_csv *c, const char *path, const char *header, ibrt_error *err)
{
    ibrt_atomic a;
    ibrt_status st = ibrt_atomic_open(&a, path, err);
    c->f = a.f;
    memcpy(c->path, a.path, sizeof c->path);
    memcpy(c->tmp, a.tmp, sizeof c->tmp);
    if (st)
        return st;
    fprintf(c->f, "%s\n", header);
    return IBRT_OK;
}

void ibrt_csv_row(ibrt_csv *c, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(c->f, i ? ",%.10g" : "%.10g", v[i]);
    fputc('\n', c->f);
}

ibrt_status ibrt_csv_close(ibrt_csv *c, ibrt_error *err)
{
    ibrt_atomic a;
    a.f = c->f;
    memcpy(a.path, c->path, sizeof a.path);
    memcpy(a.tmp, c->tmp, sizeof a.tmp);
    c->f = NULL;
    return ibrt_atomic_commit(&a, err);
}

static ibrt_status part_name(ibrt_csv *c, const char *path, ibrt_error *err)
{
    size_t len = strlen(path);
    if (len == 0 || len + 6 > sizeof c->path) {
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", path, len ? "path too long" : "empty file name");
        return IBRT_EIO;
    }
    memcpy(c->path, path, len + 1);
    snprintf(c->tmp, sizeof c->tmp, "%s.part", path);
    return IBRT_OK;
}

ibrt_status ibrt_csv_open_resumable(ibrt_csv *c, const char *path, const char *header, ibrt_error *err)
{
    c->f = NULL;
    if (part_name(c, path, err) != IBRT_OK)
        return IBRT_EIO;
    c->f = open_own(c->tmp);
    if (!c->f) {
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", c->tmp, strerror(errno));
        return IBRT_EIO;
    }
    fprintf(c->f, "%s\n", header);
    return IBRT_OK;
}

ibrt_status ibrt_csv_sync(ibrt_csv *c, long *length, ibrt_error *err)
{
    errno = 0;
    if (fflush(c->f) != 0 || ferror(c->f) || fsync(fileno(c->f)) != 0) {
        ibrt_io_write_error(err->msg, sizeof err->msg, c->tmp, errno, c->f);
        return IBRT_EIO;
    }
    *length = ftell(c->f);
    return IBRT_OK;
}

ibrt_status ibrt_csv_resume(ibrt_csv *c, const char *path, long length, ibrt_error *err)
{
    c->f = NULL;
    if (part_name(c, path, err) != IBRT_OK)
        return IBRT_EIO;
    struct stat st;
    if (stat(c->tmp, &st) != 0 && errno == ENOENT && stat(path, &st) == 0 && st.st_size >= length &&
        rename(path, c->tmp) != 0) {   /* finished after the checkpoint (ibrt_io.h) */
        snprintf(err->msg, sizeof err->msg, "cannot resume '%.400s': %s", path, strerror(errno));
        return IBRT_EIO;
    }
    /* lstat and O_NOFOLLOW: a symbolic link put there (to any file the
     * trainer may write) was followed, and its target cut to the
     * checkpoint's length and appended to */
    bool got = lstat(c->tmp, &st) == 0;
    if (!got || !S_ISREG(st.st_mode) || st.st_size < length) {
        snprintf(err->msg, sizeof err->msg, "cannot resume '%.400s': %s (the checkpoint needs %ld bytes of it)", c->tmp,
                 !got                    ? strerror(errno)
                 : S_ISLNK(st.st_mode)   ? "a symbolic link, not the run's own file"
                 : !S_ISREG(st.st_mode)  ? "not a regular file"
                                         : "shorter than at the checkpoint", length);
        return IBRT_EIO;
    }
    int fd = open(c->tmp, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)length) != 0 || !(c->f = fdopen(fd, "ab"))) {
        snprintf(err->msg, sizeof err->msg, "cannot resume '%.400s': %s", c->tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return IBRT_EIO;
    }
    /* at the end, as fopen "ab" would be: ibrt_csv_sync's length is ftell's
     * (fdopen leaves the offset at 0, and a checkpoint before the first
     * flush recorded a length too short) */
    if (fseek(c->f, 0, SEEK_END) != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot resume '%.400s': %s", c->tmp, strerror(errno));
        fclose(c->f);
        c->f = NULL;
        return IBRT_EIO;
    }
    return IBRT_OK;
}
