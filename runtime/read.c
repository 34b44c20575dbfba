/*
 * read.c: the strict CSV and .npy readers of ibrt_io.h.  Both read the
 * whole file into memory first (at most IBRT_IO_MAX_FILE bytes, regular
 * files only) and then parse it, so every error can name the line and
 * column, or the header field and byte counts, and what was expected.
 */
#include "ibrt_io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Why a file of this type and size cannot be a data file, or NULL. */
static const char *file_problem(const struct stat *st, char *why, size_t cap)
{
    const char *kind = S_ISDIR(st->st_mode)    ? "a directory"
                       : S_ISFIFO(st->st_mode) ? "a FIFO (named pipe)"
                       : S_ISCHR(st->st_mode)  ? "a character device"
                       : S_ISBLK(st->st_mode)  ? "a block device"
                       : S_ISSOCK(st->st_mode) ? "a socket"
                                               : "not a regular file";
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, cap, "%s%s; data and operator files must be regular files (a pipe or a device could "
                 "block or never end): copy the data into a file", kind,
                 !strcmp(kind, "not a regular file") ? "" : ", not a regular file");
        return why;
    }
    if ((unsigned long long)st->st_size > IBRT_IO_MAX_FILE) {
        snprintf(why, cap, "%lld bytes, more than the %llu bytes (%llu MiB) a data or operator file may have",
                 (long long)st->st_size, (unsigned long long)IBRT_IO_MAX_FILE,
                 (unsigned long long)IBRT_IO_MAX_FILE >> 20);
        return why;
    }
    return NULL;
}

bool ibrt_io_file_usable(const char *path, char *why, size_t cap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return false;
    }
    return file_problem(&st, why, cap) == NULL;
}

/* The file's bytes, NUL-terminated.  The file is opened without blocking
 * (a FIFO would otherwise wait for a writer), its type and size checked on
 * the descriptor (a symbolic link to /dev/zero is a character device), and
 * no more than IBRT_IO_MAX_FILE bytes are read even if it grows. */
/* The files read since ibrt_io_files_reset: a fixed table (nothing is
 * allocated, so a process reading files forever, as a fuzzer, stays
 * bounded); files past IBRT_IO_FILES_MAX are folded into `rest`. */
static ibrt_io_files files;

uint64_t ibrt_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void files_note(const char *path, const char *buf, size_t n)
{
    uint64_t ph = ibrt_fnv1a(IBRT_FNV1A_BASIS, path, strlen(path));
    uint64_t bh = ibrt_fnv1a(IBRT_FNV1A_BASIS, buf, n);
    if (files.n < IBRT_IO_FILES_MAX) {
        files.path_hash[files.n] = ph;
        files.bytes_hash[files.n] = bh;
        snprintf(files.path[files.n], sizeof files.path[files.n], "%s", path);
    } else {
        files.rest = ibrt_fnv1a(ibrt_fnv1a(files.rest, &ph, sizeof ph), &bh, sizeof bh);
    }
    files.n++;
}

void ibrt_io_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n >= 0 && n != fd) {   /* the lowest free descriptor is fd itself, unless a lower one was also closed */
            dup2(n, fd);
            close(n);
        }
    }
}

void ibrt_io_files_reset(void)
{
    memset(&files, 0, sizeof files);
}

const ibrt_io_files *ibrt_io_files_read(void)
{
    return &files;
}

static ibrt_status read_all(const char *path, char **out, size_t *len, ibrt_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err->msg, sizeof err->msg, "%.400s: cannot open: %s", path, strerror(errno));
        return IBRT_EIO;
    }
    struct stat st;
    char why[300];
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        snprintf(err->msg, sizeof err->msg, "%.400s: cannot read: %s", path, strerror(e));
        return IBRT_EIO;
    }
    if (file_problem(&st, why, sizeof why)) {
        close(fd);
        snprintf(err->msg, sizeof err->msg, "%.200s: cannot read: %.290s", path, why);
        return IBRT_EIO;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;   /* one byte more than announced: growth is seen */
    char *buf = malloc(cap + 1);
    int bad = buf ? 0 : ENOMEM;
    while (!bad) {
        if (n == cap) {   /* the file grew since fstat: read on, up to the cap */
            if (cap > IBRT_IO_MAX_FILE) {
                bad = EFBIG;
                break;
            }
            size_t nc = 2 * cap > IBRT_IO_MAX_FILE + 1 ? IBRT_IO_MAX_FILE + 1 : 2 * cap;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                bad = ENOMEM;
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            bad = errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    close(fd);
    if (bad) {
        free(buf);
        if (bad == EFBIG)
            snprintf(err->msg, sizeof err->msg, "%.400s: cannot read: it grew past the %llu MiB a data or operator "
                     "file may have while being read", path, (unsigned long long)IBRT_IO_MAX_FILE >> 20);
        else
            snprintf(err->msg, sizeof err->msg, "%.400s: cannot read: %s", path, strerror(bad));
        return bad == ENOMEM ? IBRT_ENOMEM : IBRT_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    files_note(path, buf, n);
    return IBRT_OK;
}

/* ------------------------------------------------------------------ CSV */

static void trim(char **s, char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/* A cell [s, e) trimmed of blanks; true when it is a whole decimal number
 * (of any length: strtod rounds it) that is finite.  The cell is parsed
 * in place, its end briefly NUL-terminated. */
static bool parse_cell(char *s, char *e, double *v)
{
    trim(&s, &e);
    if (s == e)
        return false;
    /* strtod also takes hex floats, "nan" and "inf": only decimal numbers here */
    for (const char *p = s; p < e; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
            return false;
    char save = *e, *end;
    *e = '\0';
    *v = strtod(s, &end);
    *e = save;
    return end == e && isfinite(*v);
}

/* A column name of a header line: it starts with a letter, '_' or a
 * non-ASCII UTF-8 character (`α`, `é`: a lead byte 0xc2 to 0xf4),
 * optionally inside double quotes, and is not nan, inf or infinity in
 * any case, which are numbers, not names. */
static bool is_name(char *s, char *e)
{
    trim(&s, &e);
    if (e - s >= 2 && *s == '"' && e[-1] == '"')
        s++, e--;
    unsigned char c0 = s < e ? (unsigned char)*s : 0;
    if (s == e || !(isalpha(c0) || c0 == '_' || (c0 >= 0xc2 && c0 <= 0xf4)))
        return false;
    static const char *const numbers[] = { "nan", "inf", "infinity" };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        if ((size_t)(e - s) == strlen(numbers[i]) && !strncasecmp(s, numbers[i], (size_t)(e - s)))
            return false;
    return true;
}

/* What a bad cell holds, for the message: at most 40 bytes, non-printing
 * bytes shown as '?'. */
static void show_cell(char *s, char *e, char *out, size_t cap)
{
    size_t k = 0;
    trim(&s, &e);
    for (; s < e && k + 4 < cap && k < 40; s++)
        out[k++] = isprint((unsigned char)*s) ? *s : '?';
    if (s < e)
        out[k++] = '.', out[k++] = '.', out[k++] = '.';
    out[k] = '\0';
}

/* Whether the cell [s, e) is exactly the whole number want, written with
 * digits only (a column label as pandas writes them: 0, 1, 2, ...). */
static bool is_label(char *s, char *e, size_t want)
{
    trim(&s, &e);
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%zu", want);
    return e - s == n && !memcmp(s, digits, (size_t)n);
}

ibrt_status ibrt_csv_read(const char *path, size_t *rows, size_t *cols, double **data, ibrt_error *err)
{
    return ibrt_csv_read_header(path, IBRT_CSV_HEADER_AUTO, rows, cols, data, err);
}

/* One CSV file being read by ibrt_csv_read_header: where it is, what its
 * first line turned out to be, and the numbers so far. */
typedef struct {
    const char *path;        /* for messages */
    int header_mode;         /* ibrt_csv_read_header's header argument */
    ibrt_error *err;         /* where a message goes */
    size_t line;             /* the current line, from 1 */
    bool first;              /* the current line is the first with cells */
    size_t header_cells;     /* the header line's cells (0: no header) */
    size_t comments;         /* comment lines so far */
    size_t ncols;            /* the first row's cells, which every row must have */
    size_t nrows;            /* rows of numbers so far */
    size_t first_data_line;  /* the first row's line, for messages */
    double *vals;            /* the numbers, row after row (malloc'ed) */
    size_t n, cap;           /* how many; how many allocated */
} csv_reader;

/* Text that starts with a UTF-16 byte-order mark: refused, with a message. */
static bool csv_utf16(const char *text, size_t len, const char *path, ibrt_error *err)
{
    if (len >= 2 && ((unsigned char)text[0] == 0xff || (unsigned char)text[0] == 0xfe) &&
        (unsigned char)text[1] == ((unsigned char)text[0] ^ 1)) {
        snprintf(err->msg, sizeof err->msg, "%.400s: UTF-16 text (byte-order mark 0x%02x 0x%02x), expected ASCII or "
                 "UTF-8: save the file as UTF-8", path, (unsigned char)text[0], (unsigned char)text[1]);
        return true;
    }
    return false;
}

/* A blank line: allowed only at the end of the file ([next, end) holds
 * nothing but white space). */
static ibrt_status csv_blank_line(csv_reader *r, const char *next, const char *end)
{
    for (const char *q = next; q < end; q++)
        if (!isspace((unsigned char)*q)) {
            snprintf(r->err->msg, sizeof r->err->msg, "%.400s:%zu: empty line between rows, expected %s", r->path,
                     r->line, r->ncols ? "a row of numbers" : "a header or a row of numbers");
            return IBRT_EFORMAT;
        }
    return IBRT_OK;
}

/* Cell k, [c, ce) of the line starting at p, is not what the line needs
 * (a column name on a header line, else a finite number): the message
 * says what it holds and what was expected. */
static ibrt_status csv_bad_cell(csv_reader *r, char *p, char *c, char *ce, size_t k, bool header)
{
    char shown[48];
    show_cell(c, ce, shown, sizeof shown);
    ibrt_error *err = r->err;
    int w = snprintf(err->msg, sizeof err->msg, "%.400s:%zu:%zu: cell %zu is %s%s%s, expected ", r->path, r->line,
                     (size_t)(c - p) + 1, k + 1, shown[0] ? "'" : "", shown[0] ? shown : "empty", shown[0] ? "'" : "");
    snprintf(err->msg + w, sizeof err->msg - (size_t)w, "%s",
             header ? "a column name: the first line is a header (its first cell is a name), and a "
                      "header names every column with a name that starts with a letter or '_'"
             : r->first && k == 0 && r->header_mode == 0 ? "a finite number (the spec says header = false: the "
                       "first line is data)"
             : r->first && k == 0 ? "a finite number (or, on a header line, a column name starting with a letter "
                       "or '_')"
                     : "a finite number");
    return IBRT_EFORMAT;
}

/* Appends v to the numbers read; IBRT_ENOMEM with a message when memory
 * runs out. */
static ibrt_status csv_push(csv_reader *r, double v)
{
    if (r->n == r->cap) {
        size_t nc = r->cap ? 2 * r->cap : 256;
        double *nv = realloc(r->vals, nc * sizeof *nv);
        if (!nv) {
            snprintf(r->err->msg, sizeof r->err->msg, "%.400s:%zu: out of memory", r->path, r->line);
            return IBRT_ENOMEM;
        }
        r->vals = nv;
        r->cap = nc;
    }
    r->vals[r->n++] = v;
    return IBRT_OK;
}

/* A line of k cells read (header or not): the header's cells noted, or a
 * row counted, each row with as many cells as the first (and as the
 * header has names). */
static ibrt_status csv_count_line(csv_reader *r, bool header, size_t k)
{
    r->first = false;
    if (header) {
        r->header_cells = k;
    } else if (r->nrows == 0) {
        r->ncols = k;
        r->first_data_line = r->line;
        if (r->header_cells && r->header_cells != k) {
            snprintf(r->err->msg, sizeof r->err->msg, "%.400s:%zu: row has %zu cells but the header line has %zu "
                     "names", r->path, r->line, k, r->header_cells);
            return IBRT_EFORMAT;
        }
        r->nrows++;
    } else if (k != r->ncols) {
        snprintf(r->err->msg, sizeof r->err->msg, "%.400s:%zu: row has %zu cells, expected %zu (as on line %zu)",
                 r->path, r->line, k, r->ncols, r->first_data_line);
        return IBRT_EFORMAT;
    } else {
        r->nrows++;
    }
    return IBRT_OK;
}

/* A line [p, le) with cells: a header, or a row of numbers appended to
 * r->vals.  The first line is a header when the spec says so (header =
 * true: whatever its cells hold), or, without a word in the spec, when
 * its first cell is a name; then every cell must be one.  Otherwise it is
 * a row of numbers. */
static ibrt_status csv_line(csv_reader *r, char *p, char *le)
{
    char *ce0 = memchr(p, ',', (size_t)(le - p));
    bool header = r->first && (r->header_mode < 0 ? is_name(p, ce0 ? ce0 : le) : r->header_mode == 1);
    bool labels = r->first && r->header_mode == IBRT_CSV_HEADER_DATA;   /* 0,1,2,... so far */
    size_t k = 0;
    for (char *c = p;; k++) {
        char *ce = memchr(c, ',', (size_t)(le - c));
        if (!ce)
            ce = le;
        double v = 0;
        labels = labels && is_label(c, ce, k);
        if (header ? r->header_mode != 1 && !is_name(c, ce) : !parse_cell(c, ce, &v))
            return csv_bad_cell(r, p, c, ce, k, header);
        if (!header && fabs(v) > IBRT_IO_MAX_ABS) {
            char shown[48];
            show_cell(c, ce, shown, sizeof shown);
            snprintf(r->err->msg, sizeof r->err->msg, "%.200s:%zu:%zu: cell %zu is '%s', beyond the largest "
                     "magnitude %g that data may have (its square would overflow a double): rescale the data",
                     r->path, r->line, (size_t)(c - p) + 1, k + 1, shown, IBRT_IO_MAX_ABS);
            return IBRT_EFORMAT;
        }
        if (!header) {
            ibrt_status st = csv_push(r, v);
            if (st)
                return st;
        }
        if (ce == le)
            break;
        c = ce + 1;
    }
    k++;
    if (labels && !header && k >= 2) {
        /* 0,1,...,k-1: pandas' integer column labels, or data? Not guessed.
         * (Written in two parts: at most 300 + 70 bytes, then the advice,
         * cut at the end of msg as one call would cut it.) */
        ibrt_error *err = r->err;
        int w = snprintf(err->msg, sizeof err->msg, "%.300s:%zu: the first line is 0,1,...,%zu, as pandas writes ",
                         r->path, r->line, k - 1);
        snprintf(err->msg + w, sizeof err->msg - (size_t)w, "%s", "integer column labels: say which it is in the "
                 "spec, csv(..., header = true) if it is a header (it is then skipped), header = false if it is data");
        return IBRT_EFORMAT;
    }
    return csv_count_line(r, header, k);
}

ibrt_status ibrt_csv_read_header(const char *path, int header_mode, size_t *rows, size_t *cols, double **data,
                                 ibrt_error *err)
{
    char *text;
    size_t len;
    ibrt_status st = read_all(path, &text, &len, err);
    if (st)
        return st;
    csv_reader r = { .path = path, .header_mode = header_mode, .err = err, .first = true };
    char *p = text, *end = text + len;
    if (csv_utf16(text, len, path, err))
        st = IBRT_EFORMAT;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        p += 3;   /* a UTF-8 byte-order mark: not data; columns count after it */
    while (p < end && !st) {
        r.line++;
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *le = eol ? eol : end;
        char *next = eol ? eol + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        char *nul = memchr(p, '\0', (size_t)((eol ? eol : end) - p));
        if (nul) {
            snprintf(err->msg, sizeof err->msg, "%.400s:%zu:%zu: a NUL byte, expected text (a binary or UTF-16 file?)",
                     path, r.line, (size_t)(nul - p) + 1);
            st = IBRT_EFORMAT;
            break;
        }
        char *q = p;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if (q == le) {
            st = csv_blank_line(&r, next, end);
            break;
        }
        if (*q == '#')   /* a comment line (as numpy.savetxt writes its header) */
            r.comments++;
        else
            st = csv_line(&r, p, le);
        p = next;
    }
    free(text);
    if (!st && r.nrows == 0) {
        snprintf(err->msg, sizeof err->msg, "%.400s: %s, expected rows of numbers", path,
                 r.header_cells ? "only a header line" : r.comments ? "only comment lines" : "empty file");
        st = IBRT_EFORMAT;
    }
    if (st) {
        free(r.vals);
        return st;
    }
    *rows = r.nrows;
    *cols = r.ncols;
    *data = r.vals;
    return IBRT_OK;
}

/* ------------------------------------------------------------------ npy */

typedef struct {
    const char *p, *end;   /* the next unread byte of the .npy header, and one past its last */
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* a quoted Python string literal without escapes */
static bool parse_str(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t k = 0;
    while (c->p < c->end && *c->p != q) {
        if (k + 1 >= cap || *c->p == '\\')
            return false;
        out[k++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[k] = '\0';
    return true;
}

static bool parse_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
        c->p += n;
        return true;
    }
    return false;
}

/* Shape tuple: "()", "(n,)", "(n, m)", ...; counts dimensions beyond 2
 * so that the error can say how many there were. */
static bool parse_shape(cursor *c, size_t *ndim, size_t shape[2], char *why, size_t whycap)
{
    if (!eat(c, '(')) {
        snprintf(why, whycap, "'shape' is not a tuple");
        return false;
    }
    *ndim = 0;
    for (;;) {
        skip_ws(c);
        if (eat(c, ')'))
            return true;
        if (c->p >= c->end || !isdigit((unsigned char)*c->p)) {
            snprintf(why, whycap, "'shape' entry %zu is not a non-negative integer", *ndim + 1);
            return false;
        }
        unsigned long long v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            unsigned d = (unsigned)(*c->p++ - '0');
            if (v > (ULLONG_MAX - d) / 10 || v * 10 + d > ((unsigned long long)1 << 48)) {
                snprintf(why, whycap, "'shape' entry %zu is absurdly large", *ndim + 1);
                return false;
            }
            v = v * 10 + d;
        }
        if (*ndim < 2)
            shape[*ndim] = (size_t)v;
        (*ndim)++;
        if (eat(c, ')'))
            return true;
        if (!eat(c, ',')) {
            snprintf(why, whycap, "'shape' entries must be separated by ','");
            return false;
        }
    }
}

/* err->msg = "PATH: " and the message (every .npy error) */
__attribute__((format(printf, 3, 4))) static void npy_error(ibrt_error *err, const char *path, const char *fmt, ...)
{
    int k = snprintf(err->msg, sizeof err->msg, "%.400s: ", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + k, sizeof err->msg - (size_t)k, fmt, ap);
    va_end(ap);
}

/* The preamble: the magic bytes, the format version, and the header's
 * start and length, which must fit in the file. */
static ibrt_status npy_preamble(const char *buf, size_t len, const char *path, size_t *hstart, size_t *hlen,
                                ibrt_error *err)
{
    const unsigned char *u = (const unsigned char *)buf;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        npy_error(err, path, "not a .npy file (%s)", len < 10 ? "shorter than the 10-byte preamble"
                                                              : "bad magic bytes");
        return IBRT_EFORMAT;
    }
    unsigned major = u[6], minor = u[7];
    if (major == 1) {
        *hlen = (size_t)u[8] | (size_t)u[9] << 8;
        *hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            npy_error(err, path, "truncated .npy preamble (%zu bytes, expected at least 12 for version %u.%u)", len,
                      major, minor);
            return IBRT_EFORMAT;
        }
        *hlen = (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 | (size_t)u[11] << 24;
        *hstart = 12;
    } else {
        npy_error(err, path, "unsupported .npy format version %u.%u (expected 1.0, 2.0 or 3.0)", major, minor);
        return IBRT_EFORMAT;
    }
    if (*hlen > len - *hstart) {
        npy_error(err, path, "truncated header: the preamble announces %zu header bytes, the file has %zu", *hlen,
                  len - *hstart);
        return IBRT_EFORMAT;
    }
    return IBRT_OK;
}

/* The fields of a .npy header dictionary. */
typedef struct {
    char descr[32];          /* the dtype string ("" when absent) */
    int fortran;             /* fortran_order: 1 True, 0 False, -1 absent */
    size_t ndim;             /* the entries of shape (counted beyond 2) */
    size_t shape[2];         /* its first two entries */
    bool have_shape;         /* shape was given */
} npy_header;

/* The header dictionary [p, end): its fields into h, each at most once,
 * no other field. */
static ibrt_status npy_parse_header(const char *p, const char *end, const char *path, npy_header *h,
                                    ibrt_error *err)
{
    cursor c = { p, end };
    char key[32], why[160];
    bool have_descr = false;
    if (!eat(&c, '{')) {
        npy_error(err, path, "header is not a dictionary (expected '{')");
        return IBRT_EFORMAT;
    }
    for (;;) {
        if (eat(&c, '}'))
            break;
        if (!parse_str(&c, key, sizeof key) || !eat(&c, ':')) {
            npy_error(err, path, "malformed header dictionary at byte %zu of the header", (size_t)(c.p - p));
            return IBRT_EFORMAT;
        }
        if ((!strcmp(key, "descr") && have_descr) || (!strcmp(key, "fortran_order") && h->fortran >= 0) ||
            (!strcmp(key, "shape") && h->have_shape)) {
            npy_error(err, path, "header field '%s' appears twice; a .npy header has each field once", key);
            return IBRT_EFORMAT;
        }
        if (!strcmp(key, "descr")) {
            if (!parse_str(&c, h->descr, sizeof h->descr)) {
                npy_error(err, path, "header field 'descr' is not a simple dtype string (structured dtypes are not "
                                     "supported; expected '<f8', '<f4' or '<i8')");
                return IBRT_EFORMAT;
            }
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&c, "True")) {
                h->fortran = 1;
            } else if (parse_word(&c, "False")) {
                h->fortran = 0;
            } else {
                npy_error(err, path, "header field 'fortran_order' is not True or False");
                return IBRT_EFORMAT;
            }
        } else if (!strcmp(key, "shape")) {
            if (!parse_shape(&c, &h->ndim, h->shape, why, sizeof why)) {
                npy_error(err, path, "header field %s", why);
                return IBRT_EFORMAT;
            }
            h->have_shape = true;
        } else {
            npy_error(err, path, "unknown header field '%s' (expected 'descr', 'fortran_order', 'shape')", key);
            return IBRT_EFORMAT;
        }
        if (eat(&c, '}'))
            break;
        if (!eat(&c, ',')) {
            npy_error(err, path, "malformed header dictionary: expected ',' or '}' after field '%s'", key);
            return IBRT_EFORMAT;
        }
    }
    return IBRT_OK;
}

/* What the header describes, checked against what this reader takes and
 * against the have data bytes: the element size *item and kind *kind (0
 * f8, 1 f4, 2 i8) and the element count *count; a 1-d shape becomes
 * (n, 1). */
static ibrt_status npy_layout(npy_header *h, size_t have, const char *path, size_t *item, int *kind, size_t *count,
                              ibrt_error *err)
{
    if (!h->descr[0] || h->fortran < 0 || !h->have_shape) {
        npy_error(err, path, "header lacks the field '%s'",
                  !h->descr[0] ? "descr" : h->fortran < 0 ? "fortran_order" : "shape");
        return IBRT_EFORMAT;
    }
    if (!strcmp(h->descr, "<f8")) {
        *item = 8, *kind = 0;
    } else if (!strcmp(h->descr, "<f4")) {
        *item = 4, *kind = 1;
    } else if (!strcmp(h->descr, "<i8")) {
        *item = 8, *kind = 2;
    } else {
        npy_error(err, path, "header field 'descr' is '%s'; expected '<f8', '<f4' or '<i8' (little-endian "
                             "float64, float32 or int64)", h->descr);
        return IBRT_EFORMAT;
    }
    if (h->fortran) {
        npy_error(err, path, "header field 'fortran_order' is True; only C order is supported "
                             "(save numpy.ascontiguousarray(a))");
        return IBRT_EFORMAT;
    }
    if (h->ndim == 0 || h->ndim > 2) {
        npy_error(err, path, "header field 'shape' has %zu dimensions; expected 1 or 2", h->ndim);
        return IBRT_ESHAPE;
    }
    if (h->ndim == 1)
        h->shape[1] = 1;
    /* both dims < 2^48 so the product cannot overflow unnoticed below */
    if (h->shape[1] && h->shape[0] > SIZE_MAX / 8 / h->shape[1]) {
        npy_error(err, path, "header field 'shape' (%zu, %zu) is absurdly large", h->shape[0], h->shape[1]);
        return IBRT_ESHAPE;
    }
    *count = h->shape[0] * h->shape[1];
    size_t need = *count * *item;
    if (have != need) {
        char shp[64];
        if (h->ndim == 1)
            snprintf(shp, sizeof shp, "(%zu,)", h->shape[0]);
        else
            snprintf(shp, sizeof shp, "(%zu, %zu)", h->shape[0], h->shape[1]);
        npy_error(err, path, "%s: header field 'shape' %s of '%s' needs %zu data bytes, the file has %zu",
                  have < need ? "truncated data" : "trailing bytes after the data", shp, h->descr, need, have);
        return IBRT_EFORMAT;
    }
    return IBRT_OK;
}

/* The count elements at d (little-endian on any host, of size item and
 * kind as npy_layout says) into out, each a finite number within
 * IBRT_IO_MAX_ABS (an int64 within 2^53, exact as a double); cols places
 * an element in its row and column for messages. */
static ibrt_status npy_decode(const unsigned char *d, size_t count, size_t item, int kind, size_t cols, double *out,
                              const char *path, ibrt_error *err)
{
    for (size_t i = 0; i < count; i++, d += item) {
        uint64_t bits = 0;
        for (size_t b = 0; b < item; b++)
            bits |= (uint64_t)d[b] << (8 * b);   /* little-endian on any host */
        double v;
        if (kind == 0) {
            memcpy(&v, &bits, 8);
        } else if (kind == 1) {
            uint32_t b32 = (uint32_t)bits;
            float fv;
            memcpy(&fv, &b32, 4);
            v = fv;
        } else {
            int64_t iv;
            memcpy(&iv, &bits, 8);
            if (iv > ((int64_t)1 << 53) || iv < -((int64_t)1 << 53)) {
                npy_error(err, path, "element (%zu, %zu) = %lld is beyond 2^53 and would be rounded as a double",
                          i / cols, i % cols, (long long)iv);
                return IBRT_EVALUE;
            }
            v = (double)iv;
        }
        if (!isfinite(v)) {
            npy_error(err, path, "element (row %zu, column %zu) is %s, expected a finite number", i / cols, i % cols,
                      isnan(v) ? "NaN" : "infinite");
            return IBRT_EVALUE;
        }
        if (fabs(v) > IBRT_IO_MAX_ABS) {
            npy_error(err, path, "element (row %zu, column %zu) is %g, beyond the largest magnitude %g that data may "
                                 "have (its square would overflow a double): rescale the data", i / cols, i % cols,
                      v, IBRT_IO_MAX_ABS);
            return IBRT_EVALUE;
        }
        out[i] = v;
    }
    return IBRT_OK;
}

ibrt_status ibrt_npy_read(const char *path, size_t *ndim_out, size_t shape_out[2], double **data, ibrt_error *err)
{
    char *buf;
    size_t len;
    ibrt_status st = read_all(path, &buf, &len, err);
    if (st)
        return st;
    size_t hstart = 0, hlen = 0, item = 0, count = 0;
    int kind = 0;
    npy_header h = { .fortran = -1 };
    double *out = NULL;
    st = npy_preamble(buf, len, path, &hstart, &hlen, err);
    if (!st)
        st = npy_parse_header(buf + hstart, buf + hstart + hlen, path, &h, err);
    if (!st)
        st = npy_layout(&h, len - hstart - hlen, path, &item, &kind, &count, err);
    if (!st && !(out = malloc((count ? count : 1) * sizeof *out))) {
        npy_error(err, path, "out of memory for %zu values", count);
        st = IBRT_ENOMEM;
    }
    if (!st)
        st = npy_decode((const unsigned char *)buf + hstart + hlen, count, item, kind, h.shape[1], out, path, err);
    free(buf);
    if (st) {
        free(out);
        return st;
    }
    *ndim_out = h.ndim;
    shape_out[0] = h.shape[0];
    shape_out[1] = h.shape[1];
    *data = out;
    return IBRT_OK;
}

ibrt_status ibrt_io_read_matrix(const char *path, size_t *rows, size_t *cols, double **data, ibrt_error *err)
{
    size_t n = strlen(path);
    if (n >= 4 && !strcmp(path + n - 4, ".npy")) {
        size_t ndim, shape[2];
        ibrt_status st = ibrt_npy_read(path, &ndim, shape, data, err);
        if (!st) {
            *rows = shape[0];
            *cols = shape[1];
        }
        return st;
    }
    return ibrt_csv_read(path, rows, cols, data, err);
}
