/*
 * json.c: the JSON builder of ibrt.h / ibrt_json.h: one growing buffer,
 * separators kept by a need_comma flag, %.17g numbers (enough digits to
 * read back the same double), non-finite numbers as null.  Running out of
 * memory while building results is not recoverable in a trainer: it
 * prints a message and exits with status 70 (EX_SOFTWARE).
 */
#include "ibrt_io.h"
#include "ibrt_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ibrt_json {
    char *buf;          /* the text so far, NUL-terminated (malloc'd; ibrt_json_free) */
    size_t len, cap;    /* bytes of text (without the NUL), and allocated */
    bool need_comma;    /* after a complete value: the next key or value is preceded by ", " */
};

static void jput(ibrt_json *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap) {
        size_t nc = j->cap ? j->cap : 1024;
        while (j->len + n + 1 > nc)
            nc *= 2;
        char *nb = realloc(j->buf, nc);
        if (!nb) {
            fputs("ibrt: out of memory building JSON\n", stderr);
            exit(70);
        }
        j->buf = nb;
        j->cap = nc;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void jputs(ibrt_json *j, const char *s) { jput(j, s, strlen(s)); }

static void jsep(ibrt_json *j)
{
    if (j->need_comma)
        jputs(j, ", ");
    j->need_comma = true;
}

ibrt_json *ibrt_json_new(void)
{
    ibrt_json *j = calloc(1, sizeof *j);
    if (!j) {
        fputs("ibrt: out of memory building JSON\n", stderr);
        exit(70);
    }
    jputs(j, "");
    return j;
}

void ibrt_json_free(ibrt_json *j)
{
    if (j)
        free(j->buf);
    free(j);
}

void ibrt_json_obj_begin(ibrt_json *j)
{
    jsep(j);
    jputs(j, "{");
    j->need_comma = false;
}

void ibrt_json_obj_end(ibrt_json *j)
{
    jputs(j, "}");
    j->need_comma = true;
}

void ibrt_json_arr_begin(ibrt_json *j)
{
    jsep(j);
    jputs(j, "[");
    j->need_comma = false;
}

void ibrt_json_arr_end(ibrt_json *j)
{
    jputs(j, "]");
    j->need_comma = true;
}

static void jstring(ibrt_json *j, const char *s)
{
    jputs(j, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            jput(j, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            /* the short escapes RFC 8259 defines, \u00XX for the rest */
            const char *shortesc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                                 : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (shortesc)
                jputs(j, shortesc);
            else {
                snprintf(e, sizeof e, "\\u%04x", c);
                jputs(j, e);
            }
        } else {
            jput(j, (const char *)&c, 1);
        }
    }
    jputs(j, "\"");
}

void ibrt_json_key(ibrt_json *j, const char *key)
{
    jsep(j);
    jstring(j, key);
    jputs(j, ": ");
    j->need_comma = false;
}

void ibrt_json_num(ibrt_json *j, double v)
{
    jsep(j);
    char b[32];
    if (isfinite(v))
        snprintf(b, sizeof b, "%.17g", v);
    else
        snprintf(b, sizeof b, "null");
    jputs(j, b);
}

void ibrt_json_int(ibrt_json *j, long v)
{
    jsep(j);
    char b[32];
    snprintf(b, sizeof b, "%ld", v);
    jputs(j, b);
}

void ibrt_json_str(ibrt_json *j, const char *s)
{
    jsep(j);
    jstring(j, s);
}

void ibrt_json_null(ibrt_json *j)
{
    jsep(j);
    jputs(j, "null");
}

void ibrt_json_bool(ibrt_json *j, bool v)
{
    jsep(j);
    jputs(j, v ? "true" : "false");
}

void ibrt_json_nums(ibrt_json *j, const double *v, size_t n)
{
    ibrt_json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        ibrt_json_num(j, v[i]);
    ibrt_json_arr_end(j);
}

const char *ibrt_json_text(const ibrt_json *j) { return j->buf; }

bool ibrt_json_need_comma(const ibrt_json *j) { return j->need_comma; }

void ibrt_json_restore(ibrt_json *j, const char *text, bool need_comma)
{
    j->len = 0;
    jputs(j, text);
    j->need_comma = need_comma;
}

ibrt_json *ibrt_json_clone(const ibrt_json *j)
{
    ibrt_json *c = ibrt_json_new();
    ibrt_json_restore(c, j->buf, j->need_comma);
    return c;
}

ibrt_status ibrt_json_write_file(const ibrt_json *j, const char *path, ibrt_error *err)
{
    ibrt_atomic a;
    ibrt_status st = ibrt_atomic_open(&a, path, err);
    if (st)
        return st;
    fputs(j->buf, a.f);
    fputc('\n', a.f);
    return ibrt_atomic_commit(&a, err);
}
