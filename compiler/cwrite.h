/*
 * cwrite.h: writing C text, for code generation (emit.c).
 *
 * Literals that read back exactly, spec text made safe for comments and
 * identifiers, and functions whose body is written first, so that they
 * declare only what the body uses and say (void) only of the parameters
 * it does not.  Nothing here knows the trainer's structure.  Allocation
 * failure stops the process (as the arena does: nothing to recover).
 */
#ifndef IBC_CWRITE_H
#define IBC_CWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Out of memory: a message and exit status 70. */
void cw_oom(void) __attribute__((noreturn));
void *cw_calloc(size_t n, size_t size);
char *cw_strdup(const char *s);
char *cw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A C literal for v that reads back as exactly v: the shortest of %.15g,
 * %.16g and %.17g that strtod returns to v (0.1, not 0.10000000000000001),
 * NAN or INFINITY (math.h) where printf would print "nan" or "inf".  The
 * text lives in a ring of buffers: good for the next 16 calls. */
const char *cw_num(double v);

/* Text for inside a C comment (malloc'd): no comment delimiters, no
 * trigraphs (-std=c11 enables them), no control characters. */
char *cw_scrub(const char *s);

/* Text as identifier characters (malloc'd): any byte but [A-Za-z0-9_]
 * becomes '_', at most max bytes.  A prefix of the caller's makes it an
 * identifier. */
char *cw_ident(const char *s, size_t max);

/* stem, or when taken[0..n) (NULL entries skipped) has it, stem_k for the
 * first k above every stem_k taken (2 at first); stem is consumed. */
char *cw_unique(char *const *taken, int n, char *stem);

/* Whether C code uses identifier id: a token of the code, comments, string
 * and character literals and numbers (1e-10) aside.  Scopes are not
 * followed: a local of the same name counts as a use. */
bool cw_uses(const char *code, const char *id);

/* Code written into a buffer while *out points at it. */
typedef struct {
    FILE *saved;    /* *out before cw_begin, put back by cw_end */
    FILE *mem;      /* the memory stream *out points at meanwhile */
    char *text;     /* its contents (open_memstream's buffer) */
    size_t len;     /* and their length */
} cw_buf;

void cw_begin(cw_buf *b, FILE **out);
/* restores *out; returns the code written since cw_begin (malloc'd) */
char *cw_end(cw_buf *b, FILE **out);

/* A declaration at the top of a function, written when the body uses
 * name; comment (comment-safe already, or NULL) after it. */
typedef struct {
    char *name;     /* the identifier declared (malloc'd) */
    char *text;     /* the declaration (malloc'd) */
    char *comment;  /* written after it, or NULL (malloc'd) */
} cw_decl;

/* A function's body after its opening brace, to out: (void) for each of
 * params[0..np) that neither the body nor a declaration written uses, the
 * declarations of decls[0..nd) that the body uses (their comments in one
 * column), then the body.  Frees decls' strings. */
void cw_fn_body(FILE *out, const char *const *params, size_t np, cw_decl *decls, size_t nd, const char *body);

#endif
