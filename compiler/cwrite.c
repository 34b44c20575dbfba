/*
 * cwrite.c: writing C text, for code generation (cwrite.h).
 */
#include "cwrite.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cw_oom(void)
{
    fputs("ibc: fatal: out of memory\n", stderr);
    exit(70);
}

void *cw_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        cw_oom();
    return p;
}

char *cw_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        cw_oom();
    return d;
}

char *cw_printf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s)
        cw_oom();
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

/* C compilers round a decimal literal correctly, as strtod does: the
 * literal that strtod returns to v compiles to v. */
const char *cw_num(double v)
{
    static char ring[16][40];
    static unsigned next;
    char *buf = ring[next++ % 16];
    if (isnan(v))
        return strcpy(buf, "NAN");
    if (isinf(v))
        return strcpy(buf, v > 0 ? "INFINITY" : "-INFINITY");
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, 40, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

char *cw_scrub(const char *s)
{
    char *d = cw_strdup(s), prev = 0;
    for (char *c = d; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = ' ';
        if ((prev == '*' && *c == '/') || (prev == '/' && *c == '*') || (prev == '?' && *c == '?'))
            *c = ' ';   /* no comment delimiters, no trigraphs */
        prev = *c;
    }
    return d;
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

char *cw_ident(const char *s, size_t max)
{
    char *d = cw_printf("%.*s", (int)max, s);
    for (char *c = d; *c; c++)
        if (!ident_char(*c))
            *c = '_';
    return d;
}

char *cw_unique(char *const *taken, int n, char *stem)
{
    /* one pass: whether stem is taken, and the largest k of a stem_k */
    size_t len = strlen(stem);
    bool clash = false;
    long top = 1;
    for (int i = 0; i < n; i++) {
        const char *t = taken[i];
        if (!t || strncmp(t, stem, len))
            continue;
        if (!t[len]) {
            clash = true;
        } else if (t[len] == '_' && t[len + 1] >= '1' && t[len + 1] <= '9' && strspn(t + len + 1, "0123456789") ==
                   strlen(t + len + 1) && strlen(t + len + 1) <= 9) {
            long k = strtol(t + len + 1, NULL, 10);
            top = k > top ? k : top;
        }
    }
    if (!clash)
        return stem;
    char *s = cw_printf("%s_%ld", stem, top + 1);
    free(stem);
    return s;
}

/* The next identifier token of code from *c on (comments, string and
 * character literals and numbers skipped): its start, its length in *n;
 * NULL at the end. */
static const char *next_ident(const char **c, size_t *n)
{
    const char *p = *c;
    while (*p) {
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else if (p[0] == '/' && p[1] == '/') {
            p += strcspn(p, "\n");
        } else if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q)
                p += p[0] == '\\' && p[1] ? 2 : 1;
            p += *p ? 1 : 0;
        } else if ((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')) {
            /* a preprocessing number: digits, letters, '_', '.', and a
             * sign after an exponent's letter */
            for (p++; *p; p++)
                if (!ident_char(*p) && *p != '.' &&
                    !((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E' || p[-1] == 'p' || p[-1] == 'P')))
                    break;
        } else if (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
            const char *b = p;
            while (ident_char(*p))
                p++;
            *c = p;
            *n = (size_t)(p - b);
            return b;
        } else {
            p++;
        }
    }
    *c = p;
    return NULL;
}

bool cw_uses(const char *code, const char *id)
{
    size_t n = strlen(id), len;
    for (const char *b; (b = next_ident(&code, &len));)
        if (len == n && !memcmp(b, id, n))
            return true;
    return false;
}

/* The identifiers of a text, sorted, for many look-ups. */
typedef struct {
    char **ids;     /* each occurrence, duplicates kept, sorted by strcmp; array and strings malloc'd */
    size_t n;       /* how many ids (0: ids may be NULL) */
} idset;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static idset idset_of(const char *code)
{
    idset s = { NULL, 0 };
    size_t cap = 0, len;
    for (const char *b; (b = next_ident(&code, &len));) {
        if (s.n == cap) {
            cap = cap ? 2 * cap : 64;
            char **ids = realloc(s.ids, cap * sizeof *ids);
            if (!ids)
                cw_oom();
            s.ids = ids;
        }
        s.ids[s.n++] = cw_printf("%.*s", (int)len, b);
    }
    if (s.n)
        qsort(s.ids, s.n, sizeof *s.ids, cmp_str);
    return s;
}

static bool idset_has(const idset *s, const char *id)
{
    return s->n && bsearch(&id, s->ids, s->n, sizeof *s->ids, cmp_str);
}

static void idset_free(idset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    free(s->ids);
}

void cw_begin(cw_buf *b, FILE **out)
{
    b->saved = *out;
    b->text = NULL;
    b->mem = open_memstream(&b->text, &b->len);
    if (!b->mem)
        cw_oom();
    *out = b->mem;
}

char *cw_end(cw_buf *b, FILE **out)
{
    fclose(b->mem);
    *out = b->saved;
    return b->text;
}

void cw_fn_body(FILE *out, const char *const *params, size_t np, cw_decl *decls, size_t nd, const char *body)
{
    idset used = idset_of(body);
    char *top = NULL;
    size_t len = 0, width = 0;
    FILE *mem = open_memstream(&top, &len);
    if (!mem)
        cw_oom();
    for (size_t i = 0; i < nd; i++)
        if (decls[i].comment && strlen(decls[i].text) > width && idset_has(&used, decls[i].name))
            width = strlen(decls[i].text);
    for (size_t i = 0; i < nd; i++) {
        if (idset_has(&used, decls[i].name)) {
            if (decls[i].comment)
                fprintf(mem, "    %-*s   /* %s */\n", (int)width, decls[i].text, decls[i].comment);
            else
                fprintf(mem, "    %s\n", decls[i].text);
        }
        free(decls[i].name);
        free(decls[i].text);
        free(decls[i].comment);
    }
    fclose(mem);
    for (size_t i = 0; i < np; i++)
        if (!idset_has(&used, params[i]) && !cw_uses(top, params[i]))
            fprintf(out, "    (void)%s;\n", params[i]);
    fprintf(out, "%s%s", top, body);
    free(top);
    idset_free(&used);
}
