/*
 * diag.c: diagnostics in the form compilers use.
 *
 *   file:line:col: error: message
 *   the source line
 *         ^~~~~
 *
 * Locations are byte ranges; line and column are found here, by scanning
 * the source, only when something is reported.  The echoed line is made
 * safe for a terminal (tabs expanded to 8-column stops, control and
 * non-ASCII bytes shown as '?') and the underline is computed on the same
 * expanded text, so tabs line up.  Very long lines are shown as a window
 * around the location.  Also here: the source reader and "did you mean".
 */
#include "ibc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

#define DIAG_WINDOW 120   /* columns of a long line shown around the error */

void diag_init(ibc_diag *d, const ibc_source *src, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->src = src;
    d->out = out ? out : stderr;
    d->max_errors = 100;
}

size_t diag_source_bom(const ibc_source *src)
{
    return src->text && src->len >= 3 && !memcmp(src->text, "\xef\xbb\xbf", 3) ? 3 : 0;
}

void diag_line_col(const ibc_source *src, uint32_t off, int *line, int *col)
{
    size_t start = diag_source_bom(src);   /* columns of line 1 count after a byte-order mark */
    if (off > src->len)
        off = (uint32_t)src->len;
    if (off < start)
        off = (uint32_t)start;
    int ln = 1;
    for (size_t i = 0; i < off; i++)
        if (src->text[i] == '\n') {
            ln++;
            start = i + 1;
        }
    *line = ln;
    *col = (int)(off - start) + 1;
}

/* Display width of byte i of a line starting at column 0 (tab stops). */
static size_t diag_advance(size_t col, char c)
{
    return c == '\t' ? (col / 8 + 1) * 8 : col + 1;
}

static void diag_show(ibc_diag *d, ibc_loc loc)
{
    const ibc_source *src = d->src;
    if (!src || !src->text)
        return;
    size_t bom = diag_source_bom(src);   /* never shown */
    size_t off = loc.begin > src->len ? src->len : loc.begin;
    if (off < bom)
        off = bom;
    size_t ls = off, le = off;
    while (ls > bom && src->text[ls - 1] != '\n')
        ls--;
    while (le < src->len && src->text[le] != '\n')
        le++;
    if (le > ls && src->text[le - 1] == '\r' && off + 1 < le)
        le--;   /* a CRLF line ending is not part of the line shown */
    size_t end = loc.end > le ? le : loc.end;
    if (end < off)
        end = off;

    /* Window: start far enough left that the caret is visible. */
    size_t ws = ls;
    if (off - ls > DIAG_WINDOW / 2)
        ws = off - DIAG_WINDOW / 2;
    size_t we = le;
    if (we - ws > DIAG_WINDOW)
        we = ws + DIAG_WINDOW;
    if (end > we)
        end = we;

    size_t col = 0, caret = 0, caret_end = 0;
    if (ws > ls) {
        fputs("...", d->out);
        col = 3;
    }
    for (size_t i = ws; i < we; i++) {
        unsigned char c = (unsigned char)src->text[i];
        if (i == off)
            caret = col;
        size_t next = diag_advance(col, (char)c);
        if (c == '\t')
            for (size_t k = col; k < next; k++)
                fputc(' ', d->out);
        else
            fputc(c >= 0x20 && c < 0x7f ? (int)c : '?', d->out);
        col = next;
        if (i + 1 == end)
            caret_end = col;
    }
    if (off >= we)
        caret = col;
    if (we < le)
        fputs("...", d->out);
    fputc('\n', d->out);
    for (size_t k = 0; k < caret; k++)
        fputc(' ', d->out);
    fputc('^', d->out);
    for (size_t k = caret + 1; k < caret_end; k++)
        fputc('~', d->out);
    fputc('\n', d->out);
}

static void diag_emit(ibc_diag *d, const char *kind, ibc_loc loc, const char *fmt, va_list ap)
{
    int line = 1, col = 1;
    if (d->src)
        diag_line_col(d->src, loc.begin, &line, &col);
    fprintf(d->out, "%s:%d:%d: %s: ", d->src ? d->src->path : "<input>", line, col, kind);
    /* Messages quote names from the spec: keep a pathological one short. */
    char msg[1024];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    fputs(msg, d->out);
    if (n >= (int)sizeof msg)
        fputs("...", d->out);
    fputc('\n', d->out);
    diag_show(d, loc);
}

void diag_error(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
{
    d->errors++;
    if (d->errors > d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    diag_emit(d, "error", loc, fmt, ap);
    va_end(ap);
    if (d->errors == d->max_errors)
        fprintf(d->out, "%s: note: too many errors; stopping here\n",
                d->src ? d->src->path : "<input>");
}

void diag_warning(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
{
    d->warnings++;
    if (d->errors >= d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    diag_emit(d, "warning", loc, fmt, ap);
    va_end(ap);
}

void diag_note(ibc_diag *d, ibc_loc loc, const char *fmt, ...)
{
    if (d->errors > d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    diag_emit(d, "note", loc, fmt, ap);
    va_end(ap);
}

int diag_summary(ibc_diag *d)
{
    if (d->warnings && !d->errors)
        fprintf(d->out, "%d warning%s generated.\n", d->warnings, d->warnings == 1 ? "" : "s");
    else if (d->errors && d->warnings)
        fprintf(d->out, "%d warning%s and %d error%s generated.\n", d->warnings,
                d->warnings == 1 ? "" : "s", d->errors, d->errors == 1 ? "" : "s");
    else if (d->errors)
        fprintf(d->out, "%d error%s generated.\n", d->errors, d->errors == 1 ? "" : "s");
    return d->errors;
}

/* Edit distance with adjacent swaps counted as one edit (optimal string
 * alignment), so "rleu" is one edit from "relu".  Names are short. */
static size_t diag_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return (size_t)-1;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *diag_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t len = strlen(word);
    /* A name that differs only in case is the likeliest meaning of all. */
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(word, candidates[i]) == 0 && strcmp(word, candidates[i]) != 0)
            return candidates[i];
    /* Every one-letter name is one edit from every other: no evidence. */
    if (len < 2)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t dist = diag_distance(word, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    /* Close enough: at most a third of the word wrong (and at least one). */
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    return best && best_d <= limit ? best : NULL;
}

#define SOURCE_MAX (64L * 1024 * 1024)   /* a spec larger than this is refused */

bool diag_source_read(ibc_source *src, const char *path, const char **err)
{
    memset(src, 0, sizeof *src);
    src->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = strerror(errno);
        return false;
    }
    /* a file or a pipe (<(cat spec), /dev/stdin): a device such as
     * /dev/zero never ends, and a directory has no text */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file or a pipe (a device?)";
        fclose(f);
        return false;
    }
    if (S_ISREG(st.st_mode) && st.st_size > SOURCE_MAX) {
        *err = "file larger than 64 MiB";
        fclose(f);
        return false;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fclose(f);
            *err = "out of memory";
            return false;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            if ((long)cap >= SOURCE_MAX) {
                free(buf);
                fclose(f);
                *err = "file larger than 64 MiB";
                return false;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        *err = "read error";
        return false;
    }
    fclose(f);
    buf[len] = '\0';
    src->text = buf;
    src->len = len;
    return true;
}

void diag_source_free(ibc_source *src)
{
    free((char *)src->text);
    src->text = NULL;
}
