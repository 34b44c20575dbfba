/* test_diag.c: the diagnostics module (diag.c) on its own: line and column
 * of byte offsets, the exact rendering of a located message (header, echoed
 * line, ^~~~ underline), tab expansion, unprintable bytes, the window shown
 * for long lines, the summary line, the error cap, "did you mean", and the
 * source reader. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibc.h"

/* A diagnostics sink writing into memory. */
typedef struct {
    ibc_source src;
    ibc_diag d;
    FILE *f;
    char *buf;
    size_t len;
} sink;

static void sink_open(sink *s, const char *text, size_t len)
{
    s->src = (ibc_source){ "t.ibs", text, len };
    s->buf = NULL;
    s->len = 0;
    s->f = open_memstream(&s->buf, &s->len);
    cr_assert_not_null(s->f);
    diag_init(&s->d, &s->src, s->f);
}

/* Closes the stream; the caller frees the returned text. */
static char *sink_close(sink *s)
{
    fclose(s->f);
    return s->buf;
}

static ibc_loc span(uint32_t b, uint32_t e)
{
    return (ibc_loc){ b, e };
}

Test(diag, line_and_column)
{
    const char t[] = "ab\ncd\n\nxyz";
    ibc_source src = { "t.ibs", t, sizeof t - 1 };
    int l, c;
    diag_line_col(&src, 0, &l, &c);
    cr_assert(l == 1 && c == 1);
    diag_line_col(&src, 2, &l, &c);   /* the newline itself ends line 1 */
    cr_assert(l == 1 && c == 3);
    diag_line_col(&src, 3, &l, &c);
    cr_assert(l == 2 && c == 1);
    diag_line_col(&src, 6, &l, &c);
    cr_assert(l == 3 && c == 1);
    diag_line_col(&src, 9, &l, &c);
    cr_assert(l == 4 && c == 3);
    /* Past the end clamps to the end rather than reading beyond it. */
    diag_line_col(&src, 1000, &l, &c);
    cr_assert(l == 4 && c == 4, "got %d:%d", l, c);
}

Test(diag, error_rendering_exact)
{
    const char t[] = "model m\npredict x @ w\n";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(16, 21), "shape mismatch in '%c': %s", '@', "here");
    cr_assert_eq(diag_summary(&s.d), 1);
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:2:9: error: shape mismatch in '@': here\n"
                          "predict x @ w\n"
                          "        ^~~~~\n"
                          "1 error generated.\n");
    free(out);
}

Test(diag, point_location_is_a_lone_caret)
{
    const char t[] = "abc\n";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(3, 3), "expected something");
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:1:4: error: expected something\n"
                          "abc\n"
                          "   ^\n");
    free(out);
}

Test(diag, range_stops_at_end_of_line)
{
    /* A construct spanning two lines underlines to the end of the first. */
    const char t[] = "train {\n  lr = 1\n}\n";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(0, sizeof t - 2), "whole block");
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:1:1: error: whole block\n"
                          "train {\n"
                          "^~~~~~~\n");
    free(out);
}

Test(diag, tabs_expand_and_underline_consistently)
{
    const char t[] = "\tx\t= a\tb\n";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(5, 8), "span over a tab");
    char *out = sink_close(&s);
    /* Column in the header counts bytes; the picture counts tab stops. */
    cr_assert_str_eq(out, "t.ibs:1:6: error: span over a tab\n"
                          "        x       = a     b\n"
                          "                  ^~~~~~~\n");
    free(out);
}

Test(diag, unprintable_bytes_shown_as_question_marks)
{
    const char t[] = "a\x01\xff\0b\n";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(3, 4), "nul");
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:1:4: error: nul\n"
                          "a???b\n"
                          "   ^\n");
    free(out);
}

Test(diag, long_line_is_windowed)
{
    size_t n = 100000;
    char *t = malloc(n + 2);
    memset(t, 'a', n);
    t[n] = '\n';
    t[n + 1] = '\0';
    sink s;
    sink_open(&s, t, n + 1);
    diag_error(&s.d, span(50000, 50003), "deep inside");
    char *out = sink_close(&s);
    cr_assert(strncmp(out, "t.ibs:1:50001: error: deep inside\n...", 37) == 0, "got: %.80s", out);
    /* Header + window of at most 120 columns and two ellipses, + caret line. */
    cr_assert_lt(strlen(out), 400, "got %zu bytes", strlen(out));
    char *line2 = strchr(out, '\n') + 1;
    char *line3 = strchr(line2, '\n') + 1;
    size_t caret = strcspn(line3, "^");
    cr_assert_eq(line2[caret], 'a');
    cr_assert(strncmp(line3 + caret, "^~~\n", 4) == 0, "got: %s", line3 + caret);
    cr_assert(strstr(line2, "...\n") != NULL, "the cut right end is marked");
    free(out);
    free(t);
}

Test(diag, location_at_end_of_file)
{
    const char t[] = "model m";
    sink s;
    sink_open(&s, t, sizeof t - 1);
    diag_error(&s.d, span(7, 7), "at the end");
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:1:8: error: at the end\n"
                          "model m\n"
                          "       ^\n");
    free(out);
}

Test(diag, summary_counts)
{
    sink s;
    sink_open(&s, "x\n", 2);
    cr_assert_eq(diag_summary(&s.d), 0);
    diag_warning(&s.d, span(0, 1), "w1");
    diag_summary(&s.d);
    diag_warning(&s.d, span(0, 1), "w2");
    diag_summary(&s.d);
    diag_error(&s.d, span(0, 1), "e1");
    diag_summary(&s.d);
    diag_error(&s.d, span(0, 1), "e2");
    cr_assert_eq(diag_summary(&s.d), 2);
    char *out = sink_close(&s);
    cr_assert(strstr(out, "1 warning generated.\n") != NULL, "got: %s", out);
    cr_assert(strstr(out, "2 warnings generated.\n") != NULL);
    cr_assert(strstr(out, "2 warnings and 1 error generated.\n") != NULL);
    cr_assert(strstr(out, "2 warnings and 2 errors generated.\n") != NULL);
    cr_assert(strstr(out, "t.ibs:1:1: warning: w1\n") != NULL);
    free(out);
}

Test(diag, errors_only_summary)
{
    sink s;
    sink_open(&s, "x\n", 2);
    diag_error(&s.d, span(0, 1), "e");
    diag_note(&s.d, span(0, 1), "n");
    diag_summary(&s.d);
    char *out = sink_close(&s);
    cr_assert_str_eq(out, "t.ibs:1:1: error: e\nx\n^\n"
                          "t.ibs:1:1: note: n\nx\n^\n"
                          "1 error generated.\n");
    cr_assert_eq(s.d.errors, 1, "a note is not an error");
    free(out);
}

Test(diag, error_cap)
{
    sink s;
    sink_open(&s, "x\n", 2);
    s.d.max_errors = 3;
    for (int i = 0; i < 10; i++)
        diag_error(&s.d, span(0, 1), "error %d", i);
    diag_summary(&s.d);
    char *out = sink_close(&s);
    cr_assert(strstr(out, "error 2\n") != NULL);
    cr_assert(strstr(out, "error 3\n") == NULL, "nothing is printed past the cap");
    cr_assert(strstr(out, "too many errors; stopping here") != NULL);
    cr_assert(strstr(out, "10 errors generated.\n") != NULL, "the count stays true");
    free(out);
}

Test(diag, huge_message_is_truncated)
{
    size_t n = 5000;
    char *name = malloc(n + 1);
    memset(name, 'q', n);
    name[n] = '\0';
    sink s;
    sink_open(&s, "x\n", 2);
    diag_error(&s.d, span(0, 1), "undefined name '%s'", name);
    char *out = sink_close(&s);
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    cr_assert_lt((size_t)(nl - out), 1100);
    cr_assert(strncmp(nl - 3, "...", 3) == 0, "a cut message ends in ...");
    free(out);
    free(name);
}

Test(diag, suggest)
{
    static const char *const c[] = { "relu", "softmax", "sum", "cumsum", "normal", "uniform" };
    size_t n = sizeof c / sizeof c[0];
    cr_assert_str_eq(diag_suggest("rleu", c, n), "relu", "a swap is one edit");
    cr_assert_str_eq(diag_suggest("softmx", c, n), "softmax");
    cr_assert_str_eq(diag_suggest("nromal", c, n), "normal");
    cr_assert_str_eq(diag_suggest("cumsun", c, n), "cumsum");
    cr_assert_str_eq(diag_suggest("sum", c, n), "sum");
    cr_assert_null(diag_suggest("banana", c, n));
    cr_assert_null(diag_suggest("xyz", c, n), "short words tolerate one edit only");
    cr_assert_null(diag_suggest("relu", c, 0));
    /* Pathologically long words are never "close". */
    char big[200];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_null(diag_suggest(big, c, n));
}

Test(diag, source_read)
{
    char path[] = "/tmp/ibc-test-diag-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static const char bytes[] = "a\0b\xff\n";
    cr_assert_eq(write(fd, bytes, sizeof bytes - 1), (ssize_t)(sizeof bytes - 1));
    close(fd);
    ibc_source src;
    const char *err = NULL;
    cr_assert(diag_source_read(&src, path, &err));
    cr_assert_eq(src.len, sizeof bytes - 1, "NUL bytes do not end the file");
    cr_assert_eq(memcmp(src.text, bytes, src.len), 0);
    cr_assert_eq(src.text[src.len], '\0');
    diag_source_free(&src);
    unlink(path);

    cr_assert_not(diag_source_read(&src, "/nonexistent/dir/x.ibs", &err));
    cr_assert_str_eq(err, "No such file or directory");
}

/* A one-letter name is not "one edit" from any other one-letter name;
 * a case-only difference is the first guess. */
Test(diag, suggest_needs_evidence)
{
    static const char *const c[] = { "u", "v", "W", "relu" };
    cr_assert_null(diag_suggest("q", c, 4), "one letter is not evidence");
    cr_assert_str_eq(diag_suggest("w", c, 4), "W", "a case-only difference");
    cr_assert_str_eq(diag_suggest("RELU", c, 4), "relu");
    cr_assert_str_eq(diag_suggest("rleu", c, 4), "relu");
}
