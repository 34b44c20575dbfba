/*
 * sweep_results.c: a run's outcome read back from its directory alone:
 * sweep_status (written by sweep_run.c) and the trainer's results.json
 * (its status, every numeric or null metric, the checks' pass flags, the
 * wall time), so that every process reading the same directories writes
 * the same outputs.  A malformed results.json is reported, not guessed at.
 * Then the table every output is computed from (sweep_collect: the metric
 * columns, the counts by status, median/min/max per grid point) and the
 * tables themselves as text: sweep.csv, summary.csv, summary.json (but
 * for its learning-rate choice, sweep_report.c's) and timings.csv.
 * Nothing is written to DIR here.
 */
#include "sweep_impl.h"

/* ------------------------------------------------ reading results.json */

/* A small reader of the trainer's results.json: the status, every metric
 * whose value is a number (as written: %.17g) or null, the checks' pass
 * flags, the wall time.  Anything else is skipped; a malformed file is
 * reported, not guessed at. */
typedef struct {
    const char *p, *e;   /* the next unread byte, and one past the text's last */
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
                    sweep_sb_add(out, u, n);
                continue;
            }
            default: c = x;
            }
        }
        if (out)
            sweep_sb_add(out, &c, 1);
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
            res->json_status = sweep_sb_take(&v);
        } else if (ok && !strcmp(k, "wall_seconds") && r.p < r.e && *r.p != 'n') {
            const char *b;
            size_t n;
            ok = j_number(&r, &b, &n);
            if (ok) {
                free(res->wall);
                res->wall = sweep_xprintf("%.*s", (int)n, b);
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
                                res->m = sweep_xrealloc(res->m, (cap = cap ? 2 * cap : 64) * sizeof *res->m);
                            res->m[res->nm].name = sweep_sb_take(&name);
                            res->m[res->nm++].num = null ? NULL : sweep_xprintf("%.*s", (int)n, b);
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
        char *ck = sweep_xprintf("%s/checkpoint.bin", r->dir);
        snprintf(res->status, sizeof res->status, "%s", sweep_exists(ck) ? "interrupted" : "pending");
        free(ck);
        return;
    }
    char *path = sweep_xprintf("%s/results.json", r->dir);
    size_t len;
    char *text = sweep_read_text(path, &len);
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

/* ------------------------------------------------------ the collected table */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* a run whose training ran to its end: its metrics count in the summary */
static bool counted(const result *r)
{
    return r->finished && (!strcmp(r->status, "complete") || !strcmp(r->status, "check_failed"));
}

/* the metric columns: every name, in the order of first appearance, and
 * where each run has each */
static void collect_columns(const sweep *s, sweep_table *t)
{
    const result *res = t->res;
    char **cols = NULL;
    size_t ncols = 0, ccap = 0;
    size_t **at = sweep_xcalloc(s->nruns, sizeof *at);   /* column -> index into res[i].m, or SIZE_MAX */
    for (size_t i = 0; i < s->nruns; i++)
        for (size_t k = 0; k < res[i].nm; k++) {
            size_t c = 0;
            while (c < ncols && strcmp(cols[c], res[i].m[k].name))
                c++;
            if (c == ncols) {
                if (ncols == ccap)
                    cols = sweep_xrealloc(cols, (ccap = ccap ? 2 * ccap : 64) * sizeof *cols);
                cols[ncols++] = res[i].m[k].name;
            }
        }
    for (size_t i = 0; i < s->nruns; i++) {
        at[i] = sweep_xmalloc((ncols ? ncols : 1) * sizeof **at);
        for (size_t c = 0; c < ncols; c++)
            at[i][c] = SIZE_MAX;
        for (size_t k = 0; k < res[i].nm; k++)
            for (size_t c = 0; c < ncols; c++)
                if (!strcmp(cols[c], res[i].m[k].name)) {
                    at[i][c] = k;
                    break;
                }
    }
    t->cols = cols;
    t->ncols = ncols;
    t->at = at;
}

/* per grid point: counts by status and median/min/max of every metric */
static void collect_stats(const sweep *s, sweep_table *t)
{
    const result *res = t->res;
    size_t ncols = t->ncols;
    size_t *const *at = t->at;
    mstat *st = t->st = sweep_xcalloc(s->npoints * (ncols ? ncols : 1), sizeof *st);
    double *vals = sweep_xmalloc((size_t)s->seeds * sizeof *vals);
    size_t(*cnt)[5] = t->cnt = sweep_xcalloc(s->npoints, sizeof *cnt);
    for (size_t p = 0; p < s->npoints; p++) {
        size_t first = p * (size_t)s->seeds;
        for (size_t i = first; i < first + (size_t)s->seeds; i++) {
            const result *r = &res[i];
            int k = !r->finished ? 4 : !strcmp(r->status, "complete") ? 0 : !strcmp(r->status, "check_failed") ? 1
                    : !strcmp(r->status, "diverged") ? 2 : 3;
            cnt[p][k]++;
        }
        for (size_t c = 0; c < ncols; c++) {
            size_t n = 0;
            for (size_t i = first; i < first + (size_t)s->seeds; i++) {
                double x;
                if (counted(&res[i]) && at[i][c] != SIZE_MAX && res[i].m[at[i][c]].num &&
                    sweep_numeric_text(res[i].m[at[i][c]].num, &x))
                    vals[n++] = x;
            }
            mstat *x = &st[p * ncols + c];
            x->n = n;
            if (n) {
                qsort(vals, n, sizeof *vals, cmp_double);
                x->min = vals[0];
                x->max = vals[n - 1];
                x->med = n % 2 ? vals[n / 2] : 0.5 * (vals[n / 2 - 1] + vals[n / 2]);
            }
        }
    }
    free(vals);
}

void sweep_collect(sweep *s, sweep_table *t)
{
    memset(t, 0, sizeof *t);
    result *res = t->res = sweep_xcalloc(s->nruns, sizeof *res);
    for (size_t i = 0; i < s->nruns; i++)
        sweep_read_result(&s->runs[i], &res[i]);
    collect_columns(s, t);
    for (size_t i = 0; i < s->nruns; i++) {
        if (!res[i].finished)
            t->n_unfinished++;
        else if (!strcmp(res[i].status, "complete"))
            t->n_complete++;
        else
            t->n_failed++;
    }
    collect_stats(s, t);
}

void sweep_table_free(const sweep *s, sweep_table *t)
{
    free(t->st);
    free(t->cnt);
    for (size_t i = 0; i < s->nruns; i++) {
        free(t->at[i]);
        sweep_result_free(&t->res[i]);
    }
    free(t->at);
    free(t->cols);
    free(t->res);
}

/* ------------------------------------------------------------------ tables */

void sweep_csv(const sweep *s, const sweep_table *t, sbuf *csv)
{
    const result *res = t->res;
    char **cols = t->cols;
    size_t ncols = t->ncols;
    size_t *const *at = t->at;
    sweep_sb_puts(csv, "point");
    for (size_t k = 0; k < s->naxes; k++) {
        sweep_sb_add(csv, ",", 1);
        sweep_csv_cell(csv, s->axes[k].key);
    }
    sweep_sb_puts(csv, ",seed,status,exit,checks_passed,checks_failed");
    for (size_t c = 0; c < ncols; c++) {
        sweep_sb_add(csv, ",", 1);
        sweep_csv_cell(csv, cols[c]);
    }
    sweep_sb_puts(csv, ",dir\n");
    for (size_t i = 0; i < s->nruns; i++) {
        const run *r = &s->runs[i];
        const point *p = &s->points[r->point];
        sweep_sb_printf(csv, "%zu", r->point);
        for (size_t k = 0; k < s->naxes; k++) {
            sweep_sb_add(csv, ",", 1);
            sweep_csv_cell(csv, s->axes[k].values[p->vi[k]]);
        }
        sweep_sb_printf(csv, ",%llu,%s,", r->seed, res[i].status);
        sweep_csv_cell(csv, res[i].exitv);
        if (res[i].have)
            sweep_sb_printf(csv, ",%ld,%ld", res[i].passed, res[i].failed);
        else
            sweep_sb_puts(csv, ",,");
        for (size_t c = 0; c < ncols; c++) {
            sweep_sb_add(csv, ",", 1);
            if (at[i][c] != SIZE_MAX && res[i].m[at[i][c]].num)
                sweep_sb_puts(csv, res[i].m[at[i][c]].num);
        }
        sweep_sb_add(csv, ",", 1);
        sweep_csv_cell(csv, r->rel);
        sweep_sb_add(csv, "\n", 1);
    }
}

void sweep_summary(const sweep *s, const sweep_table *t, sbuf *sc, sbuf *sj)
{
    char **cols = t->cols;
    size_t ncols = t->ncols;
    const mstat *st = t->st;
    size_t(*cnt)[5] = t->cnt;
    static const char *const cnames[5] = { "complete", "check_failed", "diverged", "failed", "unfinished" };
    sweep_sb_puts(sc, "point");
    for (size_t k = 0; k < s->naxes; k++) {
        sweep_sb_add(sc, ",", 1);
        sweep_csv_cell(sc, s->axes[k].key);
    }
    sweep_sb_puts(sc, ",runs,complete,check_failed,diverged,failed,unfinished");
    for (size_t c = 0; c < ncols; c++) {
        static const char *const w[3] = { "median", "min", "max" };
        for (int q = 0; q < 3; q++) {
            char *h = sweep_xprintf("%s_%s", cols[c], w[q]);
            sweep_sb_add(sc, ",", 1);
            sweep_csv_cell(sc, h);
            free(h);
        }
    }
    sweep_sb_add(sc, "\n", 1);
    sweep_sb_puts(sj, "{\n  \"spec\": ");
    sweep_json_str(sj, s->spec_path);
    sweep_sb_puts(sj, ",\n  \"model\": ");
    sweep_json_str(sj, s->spec->model);
    sweep_sb_puts(sj, ",\n  \"axes\": [");
    for (size_t k = 0; k < s->naxes; k++) {
        sweep_sb_puts(sj, k ? ",\n    {\"key\": " : "\n    {\"key\": ");
        sweep_json_str(sj, s->axes[k].key);
        sweep_sb_puts(sj, ", \"setting\": ");
        sweep_json_str(sj, s->axes[k].e.canon);
        sweep_sb_puts(sj, ", \"values\": [");
        for (size_t v = 0; v < s->axes[k].nvalues; v++) {
            if (v)
                sweep_sb_puts(sj, ", ");
            sweep_json_str(sj, s->axes[k].values[v]);
        }
        sweep_sb_puts(sj, "]}");
    }
    sweep_sb_printf(sj, "%s],\n  \"seeds\": [", s->naxes ? "\n  " : "");
    for (long k = 0; k < s->seeds; k++)
        sweep_sb_printf(sj, "%s%llu", k ? ", " : "", s->seed0 + (unsigned long long)k);
    sweep_sb_puts(sj, "],\n  \"summary_over\": \"runs whose training ran to its end (complete or check_failed)\",\n"
                      "  \"points\": [");
    for (size_t p = 0; p < s->npoints; p++) {
        const point *pt = &s->points[p];
        sweep_sb_printf(sc, "%zu", p);
        for (size_t k = 0; k < s->naxes; k++) {
            sweep_sb_add(sc, ",", 1);
            sweep_csv_cell(sc, s->axes[k].values[pt->vi[k]]);
        }
        sweep_sb_printf(sc, ",%ld", s->seeds);
        for (int k = 0; k < 5; k++)
            sweep_sb_printf(sc, ",%zu", cnt[p][k]);
        sweep_sb_printf(sj, "%s\n    {\"point\": %zu, \"settings\": {", p ? "," : "", p);
        for (size_t k = 0; k < s->naxes; k++) {
            if (k)
                sweep_sb_puts(sj, ", ");
            sweep_json_str(sj, s->axes[k].key);
            sweep_sb_puts(sj, ": ");
            sweep_json_str(sj, s->axes[k].values[pt->vi[k]]);
        }
        sweep_sb_printf(sj, "}, \"runs\": %ld", s->seeds);
        for (int k = 0; k < 5; k++)
            sweep_sb_printf(sj, ", \"%s\": %zu", cnames[k], cnt[p][k]);
        sweep_sb_puts(sj, ",\n     \"metrics\": {");
        size_t shown = 0;
        for (size_t c = 0; c < ncols; c++) {
            const mstat *x = &st[p * ncols + c];
            for (int q = 0; q < 3; q++) {
                sweep_sb_add(sc, ",", 1);
                if (x->n)
                    sweep_sb_num(sc, q == 0 ? x->med : q == 1 ? x->min : x->max);
            }
            if (!x->n)
                continue;
            sweep_sb_puts(sj, shown++ ? ",\n       " : "\n       ");
            sweep_json_str(sj, cols[c]);
            sweep_sb_printf(sj, ": {\"n\": %zu, \"median\": ", x->n);
            sweep_sb_num(sj, x->med);
            sweep_sb_puts(sj, ", \"min\": ");
            sweep_sb_num(sj, x->min);
            sweep_sb_puts(sj, ", \"max\": ");
            sweep_sb_num(sj, x->max);
            sweep_sb_puts(sj, "}");
        }
        sweep_sb_puts(sj, "}}");
        sweep_sb_add(sc, "\n", 1);
    }
    sweep_sb_puts(sj, "\n  ]");
}

void sweep_timings(const sweep *s, sweep_table *t, sbuf *tc)
{
    const result *res = t->res;
    sweep_sb_puts(tc, "point,seed,status,wall_seconds,started,ended,dir\n");
    for (size_t i = 0; i < s->nruns; i++) {
        sweep_sb_printf(tc, "%zu,%llu,%s,%s,", s->runs[i].point, s->runs[i].seed, res[i].status,
                        res[i].wall ? res[i].wall : "");
        if (res[i].finished)
            sweep_sb_printf(tc, "%.3f,%.3f", res[i].started, res[i].ended);
        else
            sweep_sb_add(tc, ",", 1);
        sweep_sb_add(tc, ",", 1);
        sweep_csv_cell(tc, s->runs[i].rel);
        sweep_sb_add(tc, "\n", 1);
        double w;
        if (res[i].wall && sweep_numeric_text(res[i].wall, &w))
            t->wall_sum += w;
    }
}
