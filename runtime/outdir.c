/*
 * outdir.c: a trainer's hold on its output directory (ibrt_io.h, module
 * prefix ibrt_outdir_): the lock that keeps two runs out of one
 * directory, the removal of what a killed run left behind, the space
 * held back for results.json on a disk that fills up, and messages that
 * name the limit a write ran into.
 */
#include "ibrt_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define LOCK_NAME ".lock"
#define RESERVE_NAME ".reserve"

static bool join(char *buf, size_t size, const char *dir, const char *name)
{
    return (size_t)snprintf(buf, size, "%s/%s", dir, name) < size;
}

ibrt_status ibrt_outdir_lock(const char *dir, int *fd_out, bool *in_use, ibrt_error *err)
{
    char path[1100];
    *fd_out = -1;
    *in_use = false;
    if (!join(path, sizeof path, dir, LOCK_NAME)) {
        snprintf(err->msg, sizeof err->msg, "output path too long: '%.200s...'", dir);
        return IBRT_EIO;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err->msg, sizeof err->msg, "cannot lock the output directory '%.400s': %s", path, strerror(errno));
        return IBRT_EIO;
    }
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &l) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            /* the holder's PID: from the lock itself, else from the file */
            long pid = 0;
            struct flock q;
            memset(&q, 0, sizeof q);
            q.l_type = F_WRLCK;
            q.l_whence = SEEK_SET;
            if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
                pid = (long)q.l_pid;
            char buf[32] = "";
            if (pid <= 0 && pread(fd, buf, sizeof buf - 1, 0) > 0)
                pid = strtol(buf, NULL, 10);
            close(fd);
            *in_use = true;
            if (pid > 0)
                snprintf(err->msg, sizeof err->msg, "the output directory '%.300s' is in use by another run "
                         "(process %ld): choose another --out, or wait for that run to end", dir, pid);
            else
                snprintf(err->msg, sizeof err->msg, "the output directory '%.300s' is in use by another run: "
                         "choose another --out, or wait for that run to end", dir);
            return IBRT_EIO;
        }
        close(fd);
        snprintf(err->msg, sizeof err->msg, "cannot lock the output directory '%.400s': %s", path, strerror(e));
        return IBRT_EIO;
    }
    /* the holder, for people looking at the directory (ls -a) */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* the lock holds without its note (a full disk, say) */
    }
    *fd_out = fd;
    return IBRT_OK;
}

void ibrt_outdir_unlock(int fd)
{
    if (fd >= 0)
        close(fd);   /* releases the lock; the file stays (ibrt_io.h) */
}

/* "NAME.tmp.DIGITS" where NAME is a file the runtime writes atomically */
static bool stale_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name || !t[5])
        return false;
    for (const char *d = t + 5; *d; d++)
        if (*d < '0' || *d > '9')
            return false;
    static const char *const ext[] = { ".json", ".bin", ".npy", ".csv", ".csv.part" };
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t n = strlen(ext[i]);
        if ((size_t)(t - name) >= n && !strncmp(t - n, ext[i], n))
            return true;
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int ibrt_outdir_clean(const char *dir, bool fresh)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        bool stale = stale_temporary(name) ||
                     (fresh && (ends_with(name, ".csv.part") || !strcmp(name, "checkpoint.bin")));
        if (!stale || !join(path, sizeof path, dir, name))
            continue;
        if (fresh && !strcmp(name, "checkpoint.bin"))
            fprintf(stderr, "note: %s: removed the checkpoint of an earlier run (this run starts afresh; "
                    "--resume %s continues one)\n", path, dir);
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

void ibrt_outdir_reserve(const char *dir, size_t bytes)
{
    char path[1100];
    if (!join(path, sizeof path, dir, RESERVE_NAME))
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return;
    /* no room (or a file size limit below it): no reserve, and no error:
     * the run may never need it */
    if (posix_fallocate(fd, 0, (off_t)bytes) != 0) {
        close(fd);
        unlink(path);
        return;
    }
    close(fd);
}

void ibrt_outdir_release(const char *dir)
{
    char path[1100];
    if (join(path, sizeof path, dir, RESERVE_NAME))
        unlink(path);
}

void ibrt_io_write_error(char *msg, size_t size, const char *path, int e, FILE *f)
{
    char why[200];
    struct rlimit rl;
    struct stat st;
    struct statvfs vs;
    bool limited = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    if (limited && (e == EFBIG || (f && fstat(fileno(f), &st) == 0 && (rlim_t)st.st_size >= rl.rlim_cur)))
        snprintf(why, sizeof why, "%s (the file size limit, ulimit -f, is %llu bytes)", strerror(EFBIG),
                 (unsigned long long)rl.rlim_cur);
    else if (e == EDQUOT)
        snprintf(why, sizeof why, "%s (this user's quota on that file system is used up)", strerror(EDQUOT));
    else if (e == ENOSPC || (e == 0 && f && fstatvfs(fileno(f), &vs) == 0 && vs.f_bavail == 0))
        snprintf(why, sizeof why, "%s (the file system holding it is full)", strerror(ENOSPC));
    else
        snprintf(why, sizeof why, "%s", strerror(e ? e : EIO));
    snprintf(msg, size, "cannot write '%.400s': %s", path, why);
}
