/*
 * sweep_util.c: the small utilities every file of `ibc sweep` uses
 * (declared in sweep_impl.h): allocation that exits 1 with "out of
 * memory" on failure, a growing string, the clock, files (mkdir -p, a
 * whole file read, an atomic write that reports its errors), CSV and JSON
 * quoting, file-name-safe labels, durations.  Nothing here knows the sweep.
 */
#include "sweep_impl.h"


void sweep_oom(void)
{
    fprintf(stderr, "ibc sweep: error: out of memory\n");
    exit(1);
}

void *sweep_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        sweep_oom();
    return p;
}

void *sweep_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        sweep_oom();
    return p;
}

void *sweep_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        sweep_oom();
    return p;
}

char *sweep_xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *d = sweep_xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

void sweep_sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = sweep_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void sweep_sb_puts(sbuf *b, const char *s) { sweep_sb_add(b, s, strlen(s)); }

void sweep_sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *t = sweep_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sweep_sb_add(b, t, (size_t)n);
    free(t);
}

char *sweep_sb_take(sbuf *b)
{
    if (!b->s)
        sweep_sb_add(b, "", 0);
    char *s = b->s;
    memset(b, 0, sizeof *b);
    return s;
}

char *sweep_xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = sweep_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(t, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    return t;
}

double sweep_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bool sweep_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* mkdir -p; false (errno set) on failure */
bool sweep_mkdir_p(const char *path)
{
    char *p = sweep_xstrdup(path);
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
char *sweep_read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sbuf b = { 0 };
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sweep_sb_add(&b, buf, n);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.n;
    return sweep_sb_take(&b);
}

/* Writes beside, then renames: never a half-written file.  Reports errors. */
bool sweep_write_atomic(const char *path, const char *data, size_t len)
{
    char *tmp = sweep_xprintf("%s.tmp.%ld", path, (long)getpid());
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
void sweep_csv_cell(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        sweep_sb_puts(b, s);
        return;
    }
    sweep_sb_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            sweep_sb_add(b, "\"", 1);
        sweep_sb_add(b, s, 1);
    }
    sweep_sb_add(b, "\"", 1);
}

void sweep_json_str(sbuf *b, const char *s)
{
    sweep_sb_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sweep_sb_printf(b, "\\%c", *c);
        else if (*c == '\n')
            sweep_sb_puts(b, "\\n");
        else if (*c == '\t')
            sweep_sb_puts(b, "\\t");
        else if (*c < 0x20 || *c == 0x7f)
            sweep_sb_printf(b, "\\u%04x", *c);
        else
            sweep_sb_add(b, (const char *)c, 1);
    }
    sweep_sb_add(b, "\"", 1);
}

/* A name safe in a file name: [A-Za-z0-9.+=-], every other byte '_'. */
char *sweep_safe_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *d = sweep_xmalloc(n + 1);
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

void sweep_fmt_duration(char *buf, size_t size, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* x as %.17g (read back exactly) */
void sweep_sb_num(sbuf *b, double x) { sweep_sb_printf(b, "%.17g", x); }

/* whether v is the whole text of a finite number, into *x (when not NULL) */
bool sweep_numeric_text(const char *v, double *x)
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
