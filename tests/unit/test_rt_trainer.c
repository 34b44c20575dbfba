/* test_rt_trainer.c: the trainer's command line, the check table (text
 * and JSON), summary statistics and the progress line's terminal rule. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ibrt_json.h"

static int parse(int argc, char **argv, ibrt_opts *o)
{
    return ibrt_opts_parse(argc, argv, o, "toy", "a toy trainer", 500, 7);
}

Test(opts, defaults_and_values)
{
    ibrt_opts o;
    char *a0[] = { "toy", NULL };
    cr_assert_eq(parse(1, a0, &o), 0);
    cr_assert(o.steps == 500 && o.seed == 7 && o.seeds == 1 && !o.quiet);
    cr_assert_str_eq(o.out_dir, "results/toy");
    char *a1[] = { "toy", "--steps", "20", "--seed", "3", "--seeds", "4", "--out", "/tmp/x", "--quiet", NULL };
    cr_assert_eq(parse(10, a1, &o), 0);
    cr_assert(o.steps == 20 && o.seed == 3 && o.seeds == 4 && o.quiet);
    cr_assert_str_eq(o.out_dir, "/tmp/x");
}

Test(opts, usage_errors, .init = cr_redirect_stderr)
{
    ibrt_opts o;
    char *bad[][3] = { { "toy", "--steps", "0" },   { "toy", "--steps", "1e3" }, { "toy", "--seed", "-1" },
                       { "toy", "--seeds", "0" },   { "toy", "--frobnicate", "" }, { "toy", "--out", NULL } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[4] = { bad[i][0], bad[i][1], bad[i][2], NULL };
        int argc = bad[i][2] && bad[i][2][0] ? 3 : 2;
        cr_assert_eq(parse(argc, argv, &o), -1, "case %zu", i);
    }
    fflush(stderr);
    cr_assert_stderr_neq_str("");
}

/* Issue 17, item 10: a bad value names the option and the values it
 * takes ("--max-growth 0" was "bad argument '--max-growth' (or its
 * value)"). */
Test(opts, bad_values_say_what_the_option_takes, .init = cr_redirect_stderr)
{
    ibrt_opts o;
    char *a[] = { "toy", "--max-growth", "0", NULL };
    cr_assert_eq(parse(3, a, &o), -1);
    char *b[] = { "toy", "--seeds", NULL };
    cr_assert_eq(parse(2, b, &o), -1);
    char *c[] = { "toy", "--frobnicate", NULL };
    cr_assert_eq(parse(2, c, &o), -1);
    fflush(stderr);
    cr_assert_stderr_eq_str("toy: error: --max-growth '0': expected a finite number greater than 1 (the default is 1e6)\n"
                            "run 'toy --help' for the options\n"
                            "toy: error: --seeds needs a value: a whole number from 1 to 1000\n"
                            "run 'toy --help' for the options\n"
                            "toy: error: unknown option '--frobnicate'\n"
                            "run 'toy --help' for the options\n");
}

/* Issue 17, round 3: an empty or over-long directory (--out, --resume,
 * --verify) is refused before anything is written (an --out of 850 bytes
 * had its snapshots cut to 800 bytes: written into another directory);
 * options that do not go together are refused (they were checked by
 * ibrt_main; ibrt_opts_check is also the flags fuzz target's). */
Test(opts, directories_and_combinations_are_checked, .init = cr_redirect_stderr)
{
    ibrt_opts o;
    static char longdir[IBRT_MAX_DIR + 2];
    memset(longdir, 'd', IBRT_MAX_DIR + 1);
    char okdir[IBRT_MAX_DIR + 1];
    memset(okdir, 'd', IBRT_MAX_DIR);
    okdir[IBRT_MAX_DIR] = '\0';
    char *a[] = { "toy", "--out", "", NULL };
    cr_assert_eq(parse(3, a, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    char *b[] = { "toy", "--out", longdir, NULL };
    cr_assert_eq(parse(3, b, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    char *c[] = { "toy", "--out", okdir, NULL };
    cr_assert_eq(parse(3, c, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 0);
    char *d[] = { "toy", "--resume", longdir, NULL };
    cr_assert_eq(parse(3, d, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    char *e[] = { "toy", "--resume", "r", "--seeds", "2", NULL };
    cr_assert_eq(parse(5, e, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    char *f[] = { "toy", "--verify", "v", "--snapshots", "2", NULL };
    cr_assert_eq(parse(5, f, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    char *g[] = { "toy", "--resume", "r", "--out", "s", NULL };
    cr_assert_eq(parse(5, g, &o), 0);
    cr_assert_eq(ibrt_opts_check(&o, "toy"), 2);
    fflush(stderr);
    cr_assert_stderr_eq_str("toy: error: --out: an empty directory name\n"
                            "toy: error: --out: a directory name of at most 512 bytes (it becomes the start of every "
                            "output path)\n"
                            "toy: error: --resume: a directory name of at most 512 bytes (it becomes the start of "
                            "every output path)\n"
                            "toy: error: --resume continues one run: resume each seed's directory (OUT/seed_N) on "
                            "its own, without --seeds or --gradcheck\n"
                            "toy: error: --verify RUN checks one run's snapshots: without --seeds, --gradcheck, "
                            "--resume or --snapshots\n"
                            "toy: error: --resume DIR writes into DIR, where the run was checkpointed; drop --out\n");
}

Test(opts, help, .init = cr_redirect_stdout)
{
    ibrt_opts o;
    char *argv[] = { "toy", "--help", NULL };
    cr_assert_eq(parse(2, argv, &o), 1);
    fflush(stdout);
    FILE *f = cr_get_redirected_stdout();
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    cr_assert(strstr(buf, "usage: toy") && strstr(buf, "a toy trainer") && strstr(buf, "(default 500)"), "%s", buf);
}

Test(checks, table_json_and_verdict)
{
    ibrt_checks c = { .n = 0 };
    ibrt_checks_add(&c, "gradient", 1e-9, 0, 1e-6, true, NULL);
    cr_assert(ibrt_checks_all_pass(&c));
    ibrt_checks_add(&c, "support", 2, 3, 0, false, "found [27, 40]");
    cr_assert_not(ibrt_checks_all_pass(&c));
    char buf[1024] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ibrt_checks_print(&c, f);
    fclose(f);
    cr_assert_str_eq(buf,
                     "check                                                         value       expected  tolerance  result\n"
                     "gradient                                                      1e-09              0      1e-06  PASS\n"
                     "support                                                           2              3          0  FAIL  "
                     "found [27, 40]\n");
    ibrt_json *j = ibrt_json_new();
    ibrt_checks_to_json(&c, j);
    cr_assert_str_eq(ibrt_json_text(j),
                     "[{\"name\": \"gradient\", \"value\": 1.0000000000000001e-09, \"expected\": 0, \"tolerance\": "
                     "9.9999999999999995e-07, \"pass\": true}, {\"name\": \"support\", \"value\": 2, \"expected\": 3, "
                     "\"tolerance\": 0, \"pass\": false, \"detail\": \"found [27, 40]\"}]");
    ibrt_json_free(j);
}

Test(checks, a_full_table_cannot_pass)
{
    ibrt_checks *c = calloc(1, sizeof *c);
    for (int i = 0; i < IBRT_MAX_CHECKS + 5; i++)
        ibrt_checks_add(c, "ok", 0, 0, 0, true, NULL);
    cr_assert_eq(c->n, IBRT_MAX_CHECKS);
    cr_assert_not(ibrt_checks_all_pass(c), "dropped checks must not read as passed");
    cr_assert_str_eq(c->c[IBRT_MAX_CHECKS - 1].name, "check table full");
    free(c);
}

Test(stats, median_min_max)
{
    double a[5] = { 3, -1, 9, 4, 0 }, med, lo, hi;
    ibrt_stats_median_min_max(a, 5, &med, &lo, &hi);
    cr_assert(med == 3 && lo == -1 && hi == 9);
    double b[4] = { 4, 1, 3, 2 };
    ibrt_stats_median_min_max(b, 4, &med, &lo, &hi);
    cr_assert(med == 2.5 && lo == 1 && hi == 4);
    ibrt_stats_median_min_max(b, 0, &med, &lo, &hi);
    cr_assert(isnan(med) && isnan(lo) && isnan(hi));
}

Test(progress, silent_when_quiet_or_not_a_terminal, .init = cr_redirect_stderr)
{
    ibrt_progress p;
    ibrt_progress_begin(&p, "toy", 100, true);
    cr_assert_not(p.active);
    ibrt_progress_begin(&p, "toy", 100, false);   /* stderr is redirected: not a terminal */
    cr_assert_not(p.active);
    ibrt_progress_update(&p, 50, 0.1);
    ibrt_progress_end(&p);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
    double t0 = ibrt_time_now(), t1 = ibrt_time_now();
    cr_assert_geq(t1, t0);
}
