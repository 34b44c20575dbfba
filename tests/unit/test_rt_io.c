/* test_rt_io.c: the strict CSV/.npy readers (every malformed fixture in
 * tests/data/ gets a located message) and the atomic writers. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibrt_io.h"

static char tmpdir[256];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ibrt_io_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

/* true when no file of dir contains ".tmp." */
static bool no_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            ok = false;
    closedir(d);
    return ok;
}

static void rm_tree(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#define CSV_ERR(file, code, text)                                                                            \
    do {                                                                                                     \
        size_t r_, c_;                                                                                       \
        double *d_ = NULL;                                                                                   \
        ibrt_error e_ = { "" };                                                                              \
        cr_assert_eq(ibrt_csv_read("tests/data/" file, &r_, &c_, &d_, &e_), code, "%s", e_.msg);             \
        cr_assert_str_eq(e_.msg, text);                                                                      \
        cr_assert_null(d_);                                                                                  \
    } while (0)

Test(csv, good_with_header)
{
    size_t r, c;
    double *d;
    ibrt_error e;
    cr_assert_eq(ibrt_csv_read("tests/data/good.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(r, 3);
    cr_assert_eq(c, 3);
    const double want[9] = { 1, 2, 3, 4.5, -0.5, 6, 7, 8, 9 };
    for (int i = 0; i < 9; i++)
        cr_assert_eq(d[i], want[i], "entry %d: %g", i, d[i]);
    free(d);
}

Test(csv, no_header_crlf_and_trailing_blank_lines)
{
    size_t r, c;
    double *d;
    ibrt_error e;
    cr_assert_eq(ibrt_csv_read("tests/data/noheader_crlf.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(r, 2);
    cr_assert_eq(c, 3);
    cr_assert_eq(d[5], 6);
    free(d);
}

Test(csv, malformed_files_are_located)
{
    CSV_ERR("ragged.csv", IBRT_EFORMAT, "tests/data/ragged.csv:3: row has 2 cells, expected 3 (as on line 2)");
    CSV_ERR("nonnumeric.csv", IBRT_EFORMAT,
            "tests/data/nonnumeric.csv:3:3: cell 2 is 'five', expected a finite number");
    CSV_ERR("nan.csv", IBRT_EFORMAT, "tests/data/nan.csv:2:3: cell 2 is 'NaN', expected a finite number");
    CSV_ERR("inf.csv", IBRT_EFORMAT, "tests/data/inf.csv:2:5: cell 3 is 'inf', expected a finite number");
    CSV_ERR("overflow.csv", IBRT_EFORMAT, "tests/data/overflow.csv:1:3: cell 2 is '1e999', expected a finite number");
    CSV_ERR("emptycell.csv", IBRT_EFORMAT, "tests/data/emptycell.csv:2:3: cell 2 is empty, expected a finite number");
    CSV_ERR("empty.csv", IBRT_EFORMAT, "tests/data/empty.csv: empty file, expected rows of numbers");
    CSV_ERR("header_only.csv", IBRT_EFORMAT, "tests/data/header_only.csv: only a header line, expected rows of numbers");
    CSV_ERR("blank_middle.csv", IBRT_EFORMAT,
            "tests/data/blank_middle.csv:2: empty line between rows, expected a row of numbers");
    CSV_ERR("header_mismatch.csv", IBRT_EFORMAT,
            "tests/data/header_mismatch.csv:2: row has 3 cells but the header line has 2 names");
    CSV_ERR("missing.csv", IBRT_EIO, "tests/data/missing.csv: cannot open: No such file or directory");
}

/* The reader never changes data silently (issue 17, item 3): a NUL byte
 * is an error at its column, not the end of the cell; a first row that is
 * data with a bad first cell is an error, not a header dropped without a
 * word; a UTF-8 byte-order mark is skipped and '#' lines are comments. */
static double *csv_ok(const char *file, size_t rows, size_t cols)
{
    size_t r, c;
    double *d = NULL;
    ibrt_error e = { "" };
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s", file);
    cr_assert_eq(ibrt_csv_read(path, &r, &c, &d, &e), IBRT_OK, "%s: %s", file, e.msg);
    cr_assert_eq(r, rows, "%s: %zu rows", file, r);
    cr_assert_eq(c, cols, "%s: %zu columns", file, c);
    return d;
}

Test(csv, nothing_is_changed_or_dropped_silently)
{
    CSV_ERR("nul_cell.csv", IBRT_EFORMAT,
            "tests/data/nul_cell.csv:2:4: a NUL byte, expected text (a binary or UTF-16 file?)");
    CSV_ERR("first_nan.csv", IBRT_EFORMAT,
            "tests/data/first_nan.csv:1:1: cell 1 is 'nan', expected a finite number (or, on a header line, a "
            "column name starting with a letter or '_')");
    CSV_ERR("first_bad_number.csv", IBRT_EFORMAT,
            "tests/data/first_bad_number.csv:1:1: cell 1 is '1.2.3', expected a finite number (or, on a header "
            "line, a column name starting with a letter or '_')");
    CSV_ERR("index_column.csv", IBRT_EFORMAT,
            "tests/data/index_column.csv:1:1: cell 1 is empty, expected a finite number (or, on a header line, a "
            "column name starting with a letter or '_')");
    CSV_ERR("header_bad_name.csv", IBRT_EFORMAT,
            "tests/data/header_bad_name.csv:1:3: cell 2 is '1', expected a column name: the first line is a header "
            "(its first cell is a name), and a header names every column with a name that starts with a letter "
            "or '_'");
    CSV_ERR("utf16.csv", IBRT_EFORMAT,
            "tests/data/utf16.csv: UTF-16 text (byte-order mark 0xff 0xfe), expected ASCII or UTF-8: save the file "
            "as UTF-8");
    CSV_ERR("only_comments.csv", IBRT_EFORMAT, "tests/data/only_comments.csv: only comment lines, expected rows of numbers");
    /* a value whose square overflows would make the loss infinite and
     * the divergence message blame the learning rate (item 10) */
    CSV_ERR("huge_value.csv", IBRT_EFORMAT,
            "tests/data/huge_value.csv:1:3: cell 2 is '1e308', beyond the largest magnitude 1e+154 that data may "
            "have (its square would overflow a double): rescale the data");

    double *d = csv_ok("bom.csv", 2, 3);   /* the mark is skipped, the first row kept */
    for (int i = 0; i < 6; i++)
        cr_assert_eq(d[i], i + 1, "bom.csv entry %d: %g", i, d[i]);
    free(d);
    d = csv_ok("bom_header.csv", 1, 2);
    cr_assert(d[0] == 1 && d[1] == 2);
    free(d);
    d = csv_ok("comments.csv", 2, 2);
    cr_assert(d[0] == 1 && d[1] == 2 && d[2] == 3 && d[3] == 4);
    free(d);
    d = csv_ok("quoted_header.csv", 1, 2);
    cr_assert(d[0] == 1 && d[1] == 2);
    free(d);
}

/* A valid number of any length is read as strtod rounds it (item 10: a
 * 453-digit number was "not a finite number"). */
Test(csv, long_numbers_are_read)
{
    FILE *f = fopen("tests/data/long_number.csv", "rb");
    cr_assert_not_null(f);
    char text[1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    *strchr(text, ',') = '\0';
    cr_assert_eq(strlen(text), 453);
    double *d = csv_ok("long_number.csv", 1, 2);
    cr_assert_eq(d[0], strtod(text, NULL));
    cr_assert_eq(d[1], 2);
    free(d);
}

/* Item 7: a data file replaced by a FIFO, or by a symbolic link to
 * /dev/zero, is refused at once (it would block for a writer, or be read
 * until memory runs out); a file over IBRT_IO_MAX_FILE bytes is refused
 * by its size, before it is read. */
Test(csv, fifos_devices_and_oversized_files_are_refused, .timeout = 10)
{
    mk_tmpdir();
    char fifo[300], zero[300], big[300], why[400];
    size_t r, c;
    double *d = NULL;
    ibrt_error e;
    snprintf(fifo, sizeof fifo, "%s/X.csv", tmpdir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(ibrt_csv_read(fifo, &r, &c, &d, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "/X.csv: cannot read: a FIFO (named pipe), not a regular file; data and operator files "
                            "must be regular files"), "%s", e.msg);
    cr_assert_not(ibrt_io_file_usable(fifo, why, sizeof why));
    cr_assert(strstr(why, "a FIFO (named pipe), not a regular file"), "%s", why);

    snprintf(zero, sizeof zero, "%s/Y.npy", tmpdir);
    cr_assert_eq(symlink("/dev/zero", zero), 0);
    cr_assert_eq(ibrt_io_read_matrix(zero, &r, &c, &d, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "/Y.npy: cannot read: a character device, not a regular file"), "%s", e.msg);
    cr_assert_not(ibrt_io_file_usable(zero, why, sizeof why));

    snprintf(big, sizeof big, "%s/big.csv", tmpdir);
    FILE *f = fopen(big, "w");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), (off_t)IBRT_IO_MAX_FILE + 1), 0);   /* sparse: no disk used */
    fclose(f);
    cr_assert_eq(ibrt_csv_read(big, &r, &c, &d, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "/big.csv: cannot read: 1073741825 bytes, more than the 1073741824 bytes (1024 MiB) a "
                            "data or operator file may have"), "%s", e.msg);
    cr_assert_not(ibrt_io_file_usable(big, why, sizeof why));
    cr_assert_null(d);
    cr_assert(ibrt_io_file_usable("tests/data/good.csv", why, sizeof why));
    rm_tree(tmpdir);
}

#define NPY_ERR(file, code, text)                                                                            \
    do {                                                                                                     \
        size_t nd_, sh_[2];                                                                                  \
        double *d_ = NULL;                                                                                   \
        ibrt_error e_ = { "" };                                                                              \
        cr_assert_eq(ibrt_npy_read("tests/data/" file, &nd_, sh_, &d_, &e_), code, "%s", e_.msg);            \
        cr_assert_str_eq(e_.msg, text);                                                                      \
        cr_assert_null(d_);                                                                                  \
    } while (0)

static void npy_ok(const char *file, size_t ndim, size_t r, size_t c, const double *want)
{
    size_t nd, sh[2];
    double *d;
    ibrt_error e;
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s", file);
    cr_assert_eq(ibrt_npy_read(path, &nd, sh, &d, &e), IBRT_OK, "%s: %s", file, e.msg);
    cr_assert_eq(nd, ndim, "%s", file);
    cr_assert_eq(sh[0], r, "%s", file);
    cr_assert_eq(sh[1], c, "%s", file);
    for (size_t i = 0; i < r * c; i++)
        cr_assert_eq(d[i], want[i], "%s entry %zu: %.17g", file, i, d[i]);
    free(d);
}

Test(npy, good_files_every_version_and_dtype)
{
    const double f8[6] = { 1.5, -2.0, 3.25, 4.0, 5.0, -6.5 };
    npy_ok("good_f8.npy", 2, 2, 3, f8);
    npy_ok("good_v2.npy", 2, 2, 3, f8);
    npy_ok("good_v3.npy", 1, 6, 1, f8);
    const double f4[4] = { 0.5, -1.25, 2.0, 3.0 };
    npy_ok("good_f4.npy", 1, 4, 1, f4);
    const double i8[3] = { 7, -8, 9007199254740992.0 };
    npy_ok("good_i8.npy", 2, 3, 1, i8);
}

Test(npy, malformed_files_name_the_field)
{
    NPY_ERR("fortran.npy", IBRT_EFORMAT,
            "tests/data/fortran.npy: header field 'fortran_order' is True; only C order is supported "
            "(save numpy.ascontiguousarray(a))");
    NPY_ERR("bigendian.npy", IBRT_EFORMAT,
            "tests/data/bigendian.npy: header field 'descr' is '>f8'; expected '<f8', '<f4' or '<i8' "
            "(little-endian float64, float32 or int64)");
    NPY_ERR("int32.npy", IBRT_EFORMAT,
            "tests/data/int32.npy: header field 'descr' is '<i4'; expected '<f8', '<f4' or '<i8' "
            "(little-endian float64, float32 or int64)");
    NPY_ERR("three_d.npy", IBRT_ESHAPE, "tests/data/three_d.npy: header field 'shape' has 3 dimensions; expected 1 or 2");
    NPY_ERR("scalar.npy", IBRT_ESHAPE, "tests/data/scalar.npy: header field 'shape' has 0 dimensions; expected 1 or 2");
    NPY_ERR("truncated_data.npy", IBRT_EFORMAT,
            "tests/data/truncated_data.npy: truncated data: header field 'shape' (2, 3) of '<f8' needs 48 data "
            "bytes, the file has 40");
    NPY_ERR("absurd_shape.npy", IBRT_EFORMAT,
            "tests/data/absurd_shape.npy: header field 'shape' entry 1 is absurdly large");
    NPY_ERR("huge_shape.npy", IBRT_ESHAPE,
            "tests/data/huge_shape.npy: header field 'shape' (100000000000, 100000000) is absurdly large");
    NPY_ERR("nan.npy", IBRT_EVALUE,
            "tests/data/nan.npy: element (row 1, column 1) is NaN, expected a finite number");
    NPY_ERR("big_i8.npy", IBRT_EVALUE,
            "tests/data/big_i8.npy: element (0, 0) = 9007199254740993 is beyond 2^53 and would be rounded as a "
            "double");
    NPY_ERR("no_shape.npy", IBRT_EFORMAT, "tests/data/no_shape.npy: header lacks the field 'shape'");
    /* item 10: reported as a repeated field, not as trailing bytes */
    NPY_ERR("dup_descr.npy", IBRT_EFORMAT,
            "tests/data/dup_descr.npy: header field 'descr' appears twice; a .npy header has each field once");
    NPY_ERR("huge_value.npy", IBRT_EVALUE,
            "tests/data/huge_value.npy: element (row 1, column 0) is 1e+308, beyond the largest magnitude 1e+154 "
            "that data may have (its square would overflow a double): rescale the data");
    NPY_ERR("version9.npy", IBRT_EFORMAT,
            "tests/data/version9.npy: unsupported .npy format version 9.0 (expected 1.0, 2.0 or 3.0)");
    NPY_ERR("truncated_header.npy", IBRT_EFORMAT,
            "tests/data/truncated_header.npy: truncated header: the preamble announces 118 header bytes, the file "
            "has 23");
    NPY_ERR("bad_magic.npy", IBRT_EFORMAT, "tests/data/bad_magic.npy: not a .npy file (bad magic bytes)");
    NPY_ERR("empty.npy", IBRT_EFORMAT,
            "tests/data/empty.npy: not a .npy file (shorter than the 10-byte preamble)");
    NPY_ERR("missing.npy", IBRT_EIO, "tests/data/missing.npy: cannot open: No such file or directory");
}

Test(npy, round_trip_and_no_temporary_left)
{
    mk_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/w.npy", tmpdir);
    double w[12];
    for (int i = 0; i < 12; i++)
        w[i] = sin(i + 0.1) * (i % 3 ? 1 : 1e-300);   /* some tiny values: bit-exact, not printed */
    size_t shape[2] = { 3, 4 };
    ibrt_error e;
    cr_assert_eq(ibrt_npy_write(path, w, 2, shape, &e), IBRT_OK, "%s", e.msg);
    cr_assert(no_temporaries(tmpdir));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 128 + 12 * 8, "header padded to 64 bytes: size %lld", (long long)st.st_size);
    size_t nd, sh[2];
    double *d;
    cr_assert_eq(ibrt_npy_read(path, &nd, sh, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(nd, 2);
    cr_assert_eq(sh[0], 3);
    cr_assert_eq(sh[1], 4);
    cr_assert_eq(memcmp(d, w, sizeof w), 0, "bit-exact round trip");
    free(d);
    size_t one[1] = { 5 };
    cr_assert_eq(ibrt_npy_write(path, w, 1, one, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(ibrt_npy_read(path, &nd, sh, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(nd, 1);
    cr_assert_eq(sh[0], 5);
    cr_assert_eq(d[4], w[4]);
    free(d);
    rm_tree(tmpdir);
}

Test(npy, write_into_missing_directory_fails_cleanly)
{
    mk_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/nope/w.npy", tmpdir);
    double w[1] = { 1 };
    size_t shape[1] = { 1 };
    ibrt_error e;
    cr_assert_eq(ibrt_npy_write(path, w, 1, shape, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "nope/w.npy.tmp.") && strstr(e.msg, "No such file or directory"), "%s", e.msg);
    cr_assert(no_temporaries(tmpdir));
    size_t three[3] = { 1, 1, 1 };
    snprintf(path, sizeof path, "%s/w3.npy", tmpdir);
    cr_assert_eq(ibrt_npy_write(path, w, 3, three, &e), IBRT_ESHAPE);
    rm_tree(tmpdir);
}

Test(csv_writer, trace_reads_back)
{
    mk_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/trace.csv", tmpdir);
    ibrt_csv_writer c;
    ibrt_error e;
    cr_assert_eq(ibrt_csv_open(&c, path, "step,loss", &e), IBRT_OK, "%s", e.msg);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "the final name appears only at close");
    for (int i = 0; i < 5; i++)
        ibrt_csv_row(&c, (double[]){ i, 1.0 / (i + 1) }, 2);
    cr_assert_eq(ibrt_csv_close(&c, &e), IBRT_OK, "%s", e.msg);
    cr_assert(no_temporaries(tmpdir));
    size_t r, k;
    double *d;
    cr_assert_eq(ibrt_csv_read(path, &r, &k, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(r, 5);
    cr_assert_eq(k, 2);
    cr_assert_float_eq(d[2 * 2 + 1], 1.0 / 3, 1e-10);   /* written with %.10g */
    free(d);
    rm_tree(tmpdir);
}

Test(atomic, abort_removes_temporary_and_long_path_refused)
{
    mk_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/x.txt", tmpdir);
    ibrt_atomic a;
    ibrt_error e;
    cr_assert_eq(ibrt_atomic_open(&a, path, &e), IBRT_OK, "%s", e.msg);
    fputs("partial", a.f);
    ibrt_atomic_abort(&a);
    cr_assert(no_temporaries(tmpdir));
    struct stat st;
    cr_assert_neq(stat(path, &st), 0);
    char longp[1500];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    cr_assert_eq(ibrt_atomic_open(&a, longp, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "path too long"), "%s", e.msg);
    rm_tree(tmpdir);
}

Test(mkdir, nested_and_file_in_the_way)
{
    mk_tmpdir();
    char path[400];
    ibrt_error e;
    snprintf(path, sizeof path, "%s/a/b/c/", tmpdir);
    cr_assert_eq(ibrt_mkdir_p(path, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(ibrt_mkdir_p(path, &e), IBRT_OK, "idempotent: %s", e.msg);
    struct stat st;
    cr_assert(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(path, sizeof path, "%s/f", tmpdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/f/sub", tmpdir);
    cr_assert_eq(ibrt_mkdir_p(path, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "/f': a file of that name exists"), "%s", e.msg);
    cr_assert_eq(ibrt_mkdir_p("", &e), IBRT_EIO);
    rm_tree(tmpdir);
}

Test(read_matrix, by_extension)
{
    size_t r, c;
    double *d;
    ibrt_error e;
    cr_assert_eq(ibrt_io_read_matrix("tests/data/good_f4.npy", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 4 && c == 1);
    free(d);
    cr_assert_eq(ibrt_io_read_matrix("tests/data/good.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 3 && c == 3);
    free(d);
}

/* A header of numbers (pandas writes integer column labels 0,1,2,...): a
 * data file's first line is a header when the spec says so (header =
 * true: skipped whatever it holds), data when it says header = false,
 * and without a word the name rule of docs/language.md holds, but a first
 * line that is exactly 0,1,...,k-1 is refused rather than guessed.
 * Operator files keep the name rule (a permutation matrix may start 0,1). */
Test(csv, a_header_of_numbers_is_never_guessed)
{
    size_t r, c;
    double *d = NULL;
    ibrt_error e = { "" };
    cr_assert_eq(ibrt_csv_read_header("tests/data/pandas_labels_x.csv", IBRT_CSV_HEADER_DATA, &r, &c, &d, &e),
                 IBRT_EFORMAT);
    cr_assert_str_eq(e.msg, "tests/data/pandas_labels_x.csv:1: the first line is 0,1,...,1, as pandas writes integer "
                            "column labels: say which it is in the spec, csv(..., header = true) if it is a header "
                            "(it is then skipped), header = false if it is data");
    cr_assert_null(d);
    cr_assert_eq(ibrt_csv_read_header("tests/data/pandas_labels_x.csv", 1, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 4 && c == 2 && d[0] == 1 && d[7] == 8);
    free(d);
    cr_assert_eq(ibrt_csv_read_header("tests/data/pandas_labels_x.csv", 0, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 5 && c == 2 && d[0] == 0 && d[1] == 1);
    free(d);
    /* the name rule, for operators and ibrt_csv_read: 0,1 is data */
    cr_assert_eq(ibrt_csv_read("tests/data/pandas_labels_x.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(r, 5);
    free(d);
    /* one column: "0" is not refused (a first label of 0 is common): read as data, or skipped by header = true */
    cr_assert_eq(ibrt_csv_read_header("tests/data/pandas_labels_y.csv", IBRT_CSV_HEADER_DATA, &r, &c, &d, &e),
                 IBRT_OK, "%s", e.msg);
    cr_assert_eq(r, 5);
    free(d);
    cr_assert_eq(ibrt_csv_read_header("tests/data/pandas_labels_y.csv", 1, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 4 && d[0] == 1);
    free(d);
    /* header = true drops a first line of numbers too, and checks its cells against the rows */
    cr_assert_eq(ibrt_csv_read_header("tests/data/x4x2.csv", 1, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 3 && d[0] == 3);
    free(d);
    d = NULL;
    cr_assert_eq(ibrt_csv_read_header("tests/data/header_one_name.csv", 1, &r, &c, &d, &e), IBRT_EFORMAT);
    cr_assert_str_eq(e.msg, "tests/data/header_one_name.csv:2: row has 2 cells but the header line has 1 names");
    /* header = false: a name on the first line is an error that says why */
    cr_assert_eq(ibrt_csv_read_header("tests/data/good.csv", 0, &r, &c, &d, &e), IBRT_EFORMAT);
    cr_assert(strstr(e.msg, "expected a finite number (the spec says header = false: the first line is data)"), "%s",
              e.msg);
    cr_assert_null(d);
    /* an index column's empty first header cell is accepted with header = true */
    cr_assert_eq(ibrt_csv_read_header("tests/data/index_column.csv", 1, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 1 && c == 3 && d[2] == 2);
    free(d);
}

/* Issue 17 (round 3): the files read are listed with hashes of their
 * bytes, which a checkpoint keeps. */
Test(csv, files_read_are_hashed)
{
    mk_tmpdir();
    char p[300];
    snprintf(p, sizeof p, "%s/a.csv", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs("1,2\n3,4\n", f);
    fclose(f);
    size_t r, c;
    double *d;
    ibrt_error e;
    ibrt_io_files_reset();
    cr_assert_eq(ibrt_csv_read(p, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    free(d);
    cr_assert_eq(ibrt_csv_read("tests/data/x4x2.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    free(d);
    const ibrt_io_files *fr = ibrt_io_files_read();
    cr_assert_eq(fr->n, 2);
    cr_assert_str_eq(fr->path[0], p);
    uint64_t h0 = fr->bytes_hash[0], p0 = fr->path_hash[0];
    cr_assert_neq(h0, fr->bytes_hash[1]);
    f = fopen(p, "w");
    fputs("1,2\n3,5\n", f);   /* one byte changed */
    fclose(f);
    ibrt_io_files_reset();
    cr_assert_eq(ibrt_io_files_read()->n, 0);
    cr_assert_eq(ibrt_csv_read(p, &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    free(d);
    cr_assert_eq(fr->path_hash[0], p0);
    cr_assert_neq(fr->bytes_hash[0], h0);
    for (int i = 0; i < 20; i++) {   /* past the table: counted, folded into rest */
        cr_assert_eq(ibrt_csv_read("tests/data/x4x2.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
        free(d);
    }
    cr_assert_eq(fr->n, 21);
    cr_assert_neq(fr->rest, 0);
    rm_tree(tmpdir);
}

/* Adversarial pass, round 3: a header of non-ASCII names (α,β) was
 * refused as "cell 1 is '??', expected a finite number". */
Test(csv, header_of_utf8_names)
{
    size_t r, c;
    double *d;
    ibrt_error e;
    cr_assert_eq(ibrt_csv_read("tests/data/header_utf8.csv", &r, &c, &d, &e), IBRT_OK, "%s", e.msg);
    cr_assert(r == 2 && c == 2 && d[0] == 1 && d[3] == 4);
    free(d);
}

/* Round 3: a trace's "PATH.part" replaced by a symbolic link to another
 * file before --resume: the target was cut to the checkpoint's length and
 * the trace appended to it.  Now refused, the target untouched. */
Test(csv_writer, resume_does_not_follow_a_symbolic_link)
{
    mk_tmpdir();
    char path[300], part[320], victim[300];
    snprintf(path, sizeof path, "%s/trace.csv", tmpdir);
    snprintf(part, sizeof part, "%s/trace.csv.part", tmpdir);
    snprintf(victim, sizeof victim, "%s/victim.txt", tmpdir);
    FILE *f = fopen(victim, "w");
    cr_assert(f);
    fputs("precious data that must not be touched\n", f);
    fclose(f);
    cr_assert_eq(symlink(victim, part), 0);
    ibrt_csv c;
    ibrt_error e;
    cr_assert_eq(ibrt_csv_resume(&c, path, 5, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "a symbolic link, not the run's own file"), "%s", e.msg);
    struct stat st;
    cr_assert_eq(stat(victim, &st), 0);
    cr_assert_eq(st.st_size, 39);
    rm_tree(tmpdir);
}

/* Round 3: the atomic writer's temporary "PATH.tmp.PID" and a trace's
 * "PATH.part" are created without following a symbolic link put at their
 * name (fopen "wb" wrote through it into another file). */
Test(atomic, temporaries_do_not_follow_symbolic_links)
{
    mk_tmpdir();
    char path[300], tmp[340], victim[300];
    snprintf(path, sizeof path, "%s/results.json", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    snprintf(victim, sizeof victim, "%s/victim.txt", tmpdir);
    FILE *f = fopen(victim, "w");
    cr_assert(f);
    fputs("precious\n", f);
    fclose(f);
    cr_assert_eq(symlink(victim, tmp), 0);
    ibrt_atomic a;
    ibrt_error e;
    cr_assert_eq(ibrt_atomic_open(&a, path, &e), IBRT_EIO);
    char part[340];
    snprintf(path, sizeof path, "%s/trace.csv", tmpdir);
    snprintf(part, sizeof part, "%s.part", path);
    cr_assert_eq(symlink(victim, part), 0);
    ibrt_csv c;
    cr_assert_eq(ibrt_csv_open_resumable(&c, path, "step,loss", &e), IBRT_EIO);
    struct stat st;
    cr_assert_eq(stat(victim, &st), 0);
    cr_assert_eq(st.st_size, 9);
    rm_tree(tmpdir);
}

/* A resumed trace's length, as a checkpoint taken before anything more is
 * written records it: the length it was cut back to (reopening without
 * following links once left the offset at 0, and this was 0). */
Test(csv_writer, resumed_trace_length_is_its_end)
{
    mk_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/trace.csv", tmpdir);
    ibrt_csv c;
    ibrt_error e;
    long len1, len2, len3;
    cr_assert_eq(ibrt_csv_open_resumable(&c, path, "step,loss", &e), IBRT_OK, "%s", e.msg);
    double row[2] = { 1, 0.5 };
    ibrt_csv_row(&c, row, 2);
    cr_assert_eq(ibrt_csv_sync(&c, &len1, &e), IBRT_OK, "%s", e.msg);
    ibrt_csv_row(&c, row, 2);
    cr_assert_eq(ibrt_csv_sync(&c, &len2, &e), IBRT_OK, "%s", e.msg);
    fclose(c.f);   /* the process ends here, as if killed */
    cr_assert_eq(ibrt_csv_resume(&c, path, len1, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(ibrt_csv_sync(&c, &len3, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(len3, len1);
    ibrt_csv_row(&c, row, 2);
    cr_assert_eq(ibrt_csv_sync(&c, &len3, &e), IBRT_OK, "%s", e.msg);
    cr_assert_eq(len3, len2);
    cr_assert_eq(ibrt_csv_close(&c, &e), IBRT_OK, "%s", e.msg);
    rm_tree(tmpdir);
}
