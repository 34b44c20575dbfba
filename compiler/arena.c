/*
 * arena.c: one bump allocator per compilation.
 *
 * Every AST node, name and table of a compilation is allocated here and
 * freed at once by arena_free.  A value that owns outside memory can
 * register a cleanup with arena_on_free; the compiler's GMP values do not
 * need it today (sym and exact clear each mpq/mpz where they end, the
 * sanitizer build's leak check holds them to it).  Out of memory is not
 * recoverable in a compiler of this size: it stops with a message.
 */
#include "ibc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64 * 1024)

typedef struct chunk {
    struct chunk *next;      /* older chunks (a large one-off block is linked just behind head), NULL: last */
    size_t used, cap;        /* bytes of data[] handed out, and its size (ARENA_CHUNK, or a larger one-off request) */
    max_align_t data[];      /* the memory served, in multiples of sizeof(max_align_t) */
} chunk;

typedef struct cleanup {
    struct cleanup *next;    /* the cleanup registered before, NULL: first; run newest first */
    void (*fn)(void *);      /* called with arg by arena_free, before the chunks are freed */
    void *arg;               /* what fn releases (e.g. a value owning outside memory) */
} cleanup;

struct ibc_arena {
    chunk *head;             /* the chunk small requests are served from, NULL: none yet */
    cleanup *cleanups;       /* newest registered first; the nodes live in the arena's chunks */
};

static void *arena_oom(size_t size)
{
    fprintf(stderr, "ibc: fatal: out of memory (allocating %zu bytes)\n", size);
    exit(70);
}

ibc_arena *arena_new(void)
{
    ibc_arena *a = calloc(1, sizeof *a);
    if (!a)
        arena_oom(sizeof *a);
    return a;
}

void arena_free(ibc_arena *a)
{
    if (!a)
        return;
    for (cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->arg);
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(ibc_arena *a, size_t size)
{
    const size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    if (size == 0)
        size = align;
    chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            arena_oom(size);
        c->cap = cap;
        c->used = 0;
        /* A large one-off block goes behind the current chunk so the
         * current one keeps serving small requests. */
        if (a->head && size > ARENA_CHUNK) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(ibc_arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_printf(ibc_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_on_free(ibc_arena *a, void (*fn)(void *), void *arg)
{
    cleanup *c = arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}
