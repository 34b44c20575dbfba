/*
 * io.c: atomic writers (JSON, CSV traces, .npy).  Each file is written as
 * "PATH.tmp.PID", flushed, fsync'ed and renamed over PATH, so results are
 * never half-written even if the trainer is killed.
 */
#include "ibrt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ibrt_status ibrt_mkdir_p(const char *path, ibrt_error *err)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err->msg, sizeof err->msg, "output path too long");
        return IBRT_EIO;
    }
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                snprintf(err->msg, sizeof err->msg, "cannot create directory '%.400s': %s", buf, strerror(errno));
                return IBRT_EIO;
            }
            *p = c;
        }
        if (c == '\0')
            break;
    }
    return IBRT_OK;
}

static FILE *open_tmp(const char *path, char *tmp, size_t tmplen, ibrt_error *err)
{
    snprintf(tmp, tmplen, "%.1000s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", tmp, strerror(errno));
    return f;
}

static ibrt_status commit_tmp(FILE *f, const char *tmp, const char *path, ibrt_error *err)
{
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot write '%.400s': %s", path, strerror(errno));
        unlink(tmp);
        return IBRT_EIO;
    }
    return IBRT_OK;
}

ibrt_status ibrt_npy_write(const char *path, const double *data, size_t ndim, const size_t *shape, ibrt_error *err)
{
    char tmp[1100], header[256];
    FILE *f = open_tmp(path, tmp, sizeof tmp, err);
    if (!f)
        return IBRT_EIO;
    int n = ndim == 1 ? snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,), }",
                                 shape[0])
                      : snprintf(header, sizeof header,
                                 "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }", shape[0], shape[1]);
    /* version 1.0: magic, 2-byte header length, header padded to 64 bytes */
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64;
    unsigned short hl = (unsigned short)((size_t)n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char le[2] = { (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8) };
    fwrite(le, 1, 2, f);
    fwrite(header, 1, (size_t)n, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++)
        count *= shape[i];
    fwrite(data, sizeof(double), count, f);   /* x86-64: little-endian */
    return commit_tmp(f, tmp, path, err);
}

ibrt_status ibrt_csv_open(ibrt_csv *c, const char *path, const char *header, ibrt_error *err)
{
    snprintf(c->path, sizeof c->path, "%.1000s", path);
    c->f = open_tmp(path, c->tmp, sizeof c->tmp, err);
    if (!c->f)
        return IBRT_EIO;
    fprintf(c->f, "%s\n", header);
    return IBRT_OK;
}

void ibrt_csv_row(ibrt_csv *c, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(c->f, i ? ",%.10g" : "%.10g", v[i]);
    fputc('\n', c->f);
}

ibrt_status ibrt_csv_close(ibrt_csv *c, ibrt_error *err) { return commit_tmp(c->f, c->tmp, c->path, err); }

/* ------------------------------------------------------------------ json */

struct ibrt_json {
    char *buf;
    size_t len, cap;
    bool need_comma;
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
    if (!j)
        exit(70);
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
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            jputs(j, e);
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

ibrt_status ibrt_json_write_file(const ibrt_json *j, const char *path, ibrt_error *err)
{
    char tmp[1100];
    FILE *f = open_tmp(path, tmp, sizeof tmp, err);
    if (!f)
        return IBRT_EIO;
    fputs(j->buf, f);
    fputc('\n', f);
    return commit_tmp(f, tmp, path, err);
}
