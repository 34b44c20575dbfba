/* test_rt_json.c: exact text of the JSON builder: separators, escaping,
 * %.17g numbers, non-finite numbers as null, atomic file writing. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibrt_io.h"
#include "ibrt_json.h"

Test(json, structure_and_separators)
{
    ibrt_json *j = ibrt_json_new();
    ibrt_json_obj_begin(j);
    ibrt_json_key(j, "a");
    ibrt_json_int(j, -3);
    ibrt_json_key(j, "b");
    ibrt_json_arr_begin(j);
    ibrt_json_bool(j, true);
    ibrt_json_null(j);
    ibrt_json_obj_begin(j);
    ibrt_json_obj_end(j);
    ibrt_json_arr_begin(j);
    ibrt_json_arr_end(j);
    ibrt_json_arr_end(j);
    ibrt_json_key(j, "c");
    ibrt_json_nums(j, (double[]){ 0.1, 2 }, 2);
    ibrt_json_obj_end(j);
    cr_assert_str_eq(ibrt_json_text(j), "{\"a\": -3, \"b\": [true, null, {}, []], \"c\": [0.10000000000000001, 2]}");
    ibrt_json_free(j);
}

Test(json, escaping)
{
    ibrt_json *j = ibrt_json_new();
    ibrt_json_str(j, "q\"b\\s/\n\t\r\b\f\x01\x1f\x7f\xc3\xa9");
    cr_assert_str_eq(ibrt_json_text(j), "\"q\\\"b\\\\s/\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f\xc3\xa9\"");
    ibrt_json_free(j);
}

Test(json, numbers_round_trip_and_non_finite_is_null)
{
    ibrt_json *j = ibrt_json_new();
    double v[4] = { 1.0 / 3, -2.5e-300, 6.02214076e23, 0.1 + 0.2 };
    ibrt_json_arr_begin(j);
    for (int i = 0; i < 4; i++)
        ibrt_json_num(j, v[i]);
    ibrt_json_num(j, NAN);
    ibrt_json_num(j, -INFINITY);
    ibrt_json_arr_end(j);
    const char *t = ibrt_json_text(j);
    cr_assert(strstr(t, ", null, null]"), "%s", t);
    char *p = (char *)t + 1;
    for (int i = 0; i < 4; i++) {
        double back = strtod(p, &p);
        cr_assert_eq(back, v[i], "%d: %.17g", i, back);
        p += 2;   /* ", " */
    }
    ibrt_json_free(j);
}

Test(json, write_file_atomically)
{
    char dir[] = "/tmp/ibrt_json_XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.json", dir);
    ibrt_json *j = ibrt_json_new();
    ibrt_json_obj_begin(j);
    ibrt_json_key(j, "k");
    ibrt_json_str(j, "v");
    ibrt_json_obj_end(j);
    ibrt_error e;
    cr_assert_eq(ibrt_json_write_file(j, path, &e), IBRT_OK, "%s", e.msg);
    FILE *f = fopen(path, "r");
    char buf[64] = "";
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "{\"k\": \"v\"}\n");
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0);
    snprintf(path, sizeof path, "%s/missing/r.json", dir);
    cr_assert_eq(ibrt_json_write_file(j, path, &e), IBRT_EIO);
    cr_assert(strstr(e.msg, "missing/r.json"), "%s", e.msg);
    ibrt_json_free(j);
    unlink(path);
    snprintf(path, sizeof path, "%s/r.json", dir);
    unlink(path);
    cr_assert_eq(rmdir(dir), 0, "nothing else left in the directory");
}
