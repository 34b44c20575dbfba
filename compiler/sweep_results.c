/*
 * sweep_results.c: a run's outcome read back from its directory alone:
 * sweep_status (written by sweep_run.c) and the trainer's results.json
 * (its status, every numeric or null metric, the checks' pass flags, the
 * wall time), so that every process reading the same directories writes
 * the same outputs.  A malformed results.json is reported, not guessed at.
 */
#include "sweep_impl.h"

/* ------------------------------------------------ reading results.json */

/* A small reader of the trainer's results.json: the status, every metric
 * whose value is a number (as written: %.17g) or null, the checks' pass
 * flags, the wall time.  Anything else is skipped; a malformed file is
 * reported, not guessed at. */
typedef struct {
    const char *p, *e;
} jr;

static void j_ws(jr *r)
{
    while (r->p < r->e && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool j_lit(jr *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->e - r->p) >= n && !memcmp(r->p, w, n)) {
        r->p += n;
        return true;
    }
    return false;
}

static bool j_string(jr *r, sbuf *out)
{
    j_ws(r);
    if (r->p >= r->e || *r->p != '"')
        return false;
    r->p++;
    while (r->p < r->e && *r->p != '"') {
        char c = *r->p++;
        if (c == '\\') {
            if (r->p >= r->e)
                return false;
            char x = *r->p++;
            switch (x) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                if (r->e - r->p < 4)
                    return false;
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char h = *r->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                char u[3];
                size_t n = 0;
                if (v < 0x80)
                    u[n++] = (char)v;
                else if (v < 0x800) {
                    u[n++] = (char)(0xc0 | (v >> 6));
                    u[n++] = (char)(0x80 | (v & 0x3f));
                } else
                    u[n++] = '?';
                if (out)
                    sb_add(out, u, n);
                continue;
            }
            default: c = x;
            }
        }
        if (out)
            sb_add(out, &c, 1);
    }
    if (r->p >= r->e)
        return false;
    r->p++;
    return true;
}

/* a number: its text in [*b, *b + *n) */
static bool j_number(jr *r, const char **b, size_t *n)
{
    j_ws(r);
    const char *s = r->p;
    while (r->p < r->e && strchr("+-0123456789.eE", *r->p) && *r->p)
        r->p++;
    if (r->p == s || r->p - s > 40)
        return false;
    char tmp[48], *end;
    memcpy(tmp, s, (size_t)(r->p - s));
    tmp[r->p - s] = '\0';
    strtod(tmp, &end);
    if (*end)
        return false;
    *b = s;
    *n = (size_t)(r->p - s);
    return true;
}

static bool j_skip(jr *r, int depth)
{
    j_ws(r);
    if (r->p >= r->e || depth > 64)
        return false;
    if (*r->p == '"')
        return j_string(r, NULL);
    if (*r->p == '{' || *r->p == '[') {
        char close = *r->p == '{' ? '}' : ']';
        bool obj = *r->p == '{';
        r->p++;
        j_ws(r);
        if (r->p < r->e && *r->p == close) {
            r->p++;
            return true;
        }
        for (;;) {
            if (obj) {
                if (!j_string(r, NULL))
                    return false;
                j_ws(r);
                if (!j_lit(r, ":"))
                    return false;
            }
            if (!j_skip(r, depth + 1))
                return false;
            j_ws(r);
            if (j_lit(r, ","))
                continue;
            if (r->p < r->e && *r->p == close) {
                r->p++;
                return true;
            }
            return false;
        }
    }
    if (j_lit(r, "true") || j_lit(r, "false") || j_lit(r, "null"))
        return true;
    const char *b;
    size_t n;
    return j_number(r, &b, &n);
}

static bool parse_results(const char *text, size_t len, result *res)
{
    jr r = { text, text + len };
    j_ws(&r);
    if (!j_lit(&r, "{"))
        return false;
    size_t cap = 0;
    j_ws(&r);
    if (j_lit(&r, "}"))
        return true;
    for (;;) {
        sbuf key = { 0 };
        if (!j_string(&r, &key)) {
            free(key.s);
            return false;
        }
        j_ws(&r);
        bool ok = j_lit(&r, ":");
        const char *k = key.s ? key.s : "";
        j_ws(&r);
        if (ok && !strcmp(k, "status") && r.p < r.e && *r.p == '"') {
            sbuf v = { 0 };
            ok = j_string(&r, &v);
            free(res->json_status);
            res->json_status = sb_take(&v);
        } else if (ok && !strcmp(k, "wall_seconds") && r.p < r.e && *r.p != 'n') {
            const char *b;
            size_t n;
            ok = j_number(&r, &b, &n);
            if (ok) {
                free(res->wall);
                res->wall = xprintf("%.*s", (int)n, b);
            }
        } else if (ok && !strcmp(k, "metrics") && j_lit(&r, "{")) {
            j_ws(&r);
            if (!j_lit(&r, "}")) {
                for (;;) {
                    sbuf name = { 0 };
                    ok = j_string(&r, &name);
                    j_ws(&r);
                    ok = ok && j_lit(&r, ":");
                    j_ws(&r);
                    if (ok && r.p < r.e && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9') || *r.p == 'n')) {
                        const char *b = NULL;
                        size_t n = 0;
                        bool null = j_lit(&r, "null");
                        ok = null || j_number(&r, &b, &n);
                        if (ok) {
                            if (res->nm == cap)
                                res->m = xrealloc(res->m, (cap = cap ? 2 * cap : 64) * sizeof *res->m);
                            res->m[res->nm].name = sb_take(&name);
                            res->m[res->nm++].num = null ? NULL : xprintf("%.*s", (int)n, b);
                        }
                    } else if (ok)
                        ok = j_skip(&r, 1);
                    free(name.s);
                    j_ws(&r);
                    if (!ok || !j_lit(&r, ","))
                        break;
                }
                ok = ok && j_lit(&r, "}");
            }
        } else if (ok && !strcmp(k, "checks") && j_lit(&r, "[")) {
            j_ws(&r);
            if (!j_lit(&r, "]")) {
                for (;;) {
                    j_ws(&r);
                    ok = j_lit(&r, "{");
                    j_ws(&r);
                    bool closed = ok && j_lit(&r, "}");
                    if (ok && !closed)
                        for (;;) {
                            sbuf f = { 0 };
                            ok = j_string(&r, &f);
                            j_ws(&r);
                            ok = ok && j_lit(&r, ":");
                            j_ws(&r);
                            if (ok && f.s && !strcmp(f.s, "pass")) {
                                if (j_lit(&r, "true"))
                                    res->passed++;
                                else if (j_lit(&r, "false"))
                                    res->failed++;
                                else
                                    ok = false;
                            } else if (ok)
                                ok = j_skip(&r, 2);
                            free(f.s);
                            j_ws(&r);
                            if (!ok || !j_lit(&r, ","))
                                break;
                        }
                    ok = ok && (closed || j_lit(&r, "}"));
                    j_ws(&r);
                    if (!ok || !j_lit(&r, ","))
                        break;
                }
                ok = ok && j_lit(&r, "]");
            }
        } else if (ok)
            ok = j_skip(&r, 1);
        free(key.s);
        if (!ok)
            return false;
        j_ws(&r);
        if (j_lit(&r, ","))
            continue;
        return j_lit(&r, "}");
    }
}

void sweep_result_free(result *r)
{
    for (size_t i = 0; i < r->nm; i++) {
        free(r->m[i].name);
        free(r->m[i].num);
    }
    free(r->m);
    free(r->json_status);
    free(r->wall);
}

void sweep_read_result(const run *r, result *res)
{
    memset(res, 0, sizeof *res);
    res->finished = sweep_read_status(r->dir, res->status, sizeof res->status, res->exitv, sizeof res->exitv,
                                      &res->started, &res->ended);
    if (!res->finished) {
        char *ck = xprintf("%s/checkpoint.bin", r->dir);
        snprintf(res->status, sizeof res->status, "%s", exists(ck) ? "interrupted" : "pending");
        free(ck);
        return;
    }
    char *path = xprintf("%s/results.json", r->dir);
    size_t len;
    char *text = read_text(path, &len);
    if (text) {
        res->have = parse_results(text, len, res);
        if (!res->have) {
            fprintf(stderr, "ibc sweep: warning: %s: not a results file the sweep can read; its metrics are left "
                    "out\n", path);
            sweep_result_free(res);
            char st[64], ex[64];
            snprintf(st, sizeof st, "%s", res->status);
            snprintf(ex, sizeof ex, "%s", res->exitv);
            double a = res->started, b = res->ended;
            memset(res, 0, sizeof *res);
            res->finished = true;
            snprintf(res->status, sizeof res->status, "%s", st);
            snprintf(res->exitv, sizeof res->exitv, "%s", ex);
            res->started = a;
            res->ended = b;
        }
    }
    free(text);
    free(path);
}
