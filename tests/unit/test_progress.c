#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "agent/progress.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The JSON lines written to f, parsed (caller frees with json_decref). */
static json_t *lines_of(FILE *f)
{
    json_t *arr = json_array();
    char line[512];

    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (o == NULL) {
            fail_msg("not JSON: %s (%s)", line, je.text);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static long long num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void test_progress__none_wanted_is_null_and_calls_are_safe(void **state)
{
    struct progress_cfg cfg = {0};
    struct progress *p = (struct progress *)1;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(progress_new(&p, &cfg, &e), DM_OK);
    assert_null(p);
    progress_phase(NULL, "users", 10);
    progress_done(NULL, 3);
    progress_total(NULL, 4);
    progress_detail(NULL, "x");
    progress_phase_end(NULL);
    progress_free(NULL);
}

static void test_progress__durations(void **state)
{
    char b[32];

    (void)state;
    assert_string_equal(progress_fmt_duration(b, sizeof(b), 0), "0s");
    assert_string_equal(progress_fmt_duration(b, sizeof(b), 44.6), "45s");
    assert_string_equal(progress_fmt_duration(b, sizeof(b), 185), "3m05s");
    assert_string_equal(progress_fmt_duration(b, sizeof(b), 7620), "2h07m");
}

/* JSON lines: a start line per phase, lines while done moves (never back), a final line
 * with done == total; an unknown total becomes done at the end. */
static void test_progress__json_lines_per_phase(void **state)
{
    struct progress_cfg cfg = {0};
    struct progress *p = NULL;
    struct dm_err e = {0};
    FILE *f = tmpfile();
    json_t *ls;
    size_t n, users = 0, i;
    long long last = -1;

    (void)state;
    assert_non_null(f);
    cfg.out = f;
    cfg.json = 1;
    cfg.json_interval_s = 0.01;
    assert_int_equal(progress_new(&p, &cfg, &e), DM_OK);
    assert_non_null(p);
    progress_phase(p, "users", 100);
    for (int k = 1; k <= 100; k++) {
        progress_done(p, k);
        progress_done(p, k - 1); /* never goes back */
        if (k % 10 == 0) {
            sleep_ms(30);
        }
    }
    progress_phase(p, "groups", -1); /* ends users */
    progress_done(p, 7);
    progress_phase_end(p);
    progress_free(p);

    ls = lines_of(f);
    n = json_array_size(ls);
    assert_true(n >= 5);
    while (users < n &&
           strcmp(json_string_value(json_object_get(json_array_get(ls, users), "phase")),
                  "users") == 0) {
        users++;
    }
    for (i = 0; i < users; i++) {
        json_t *o = json_array_get(ls, i);
        assert_string_equal(json_string_value(json_object_get(o, "type")), "progress");
        assert_true(num(o, "done") >= last);
        last = num(o, "done");
        assert_int_equal(num(o, "total"), 100);
        assert_true(json_is_number(json_object_get(o, "rate")));
        assert_true(json_is_number(json_object_get(o, "elapsed_s")));
        assert_int_equal(json_is_true(json_object_get(o, "final")), i + 1 == users);
    }
    assert_true(users >= 3); /* start, some moves, end */
    assert_int_equal(num(json_array_get(ls, 0), "done"), 0);
    assert_true(json_is_null(json_object_get(json_array_get(ls, 0), "eta_s")));
    assert_int_equal(last, 100);
    assert_int_equal(num(json_array_get(ls, users - 1), "eta_s"), 0);
    /* groups: start with an unknown total, end with total = done */
    assert_true(json_is_null(json_object_get(json_array_get(ls, users), "total")));
    assert_int_equal(num(json_array_get(ls, n - 1), "done"), 7);
    assert_int_equal(num(json_array_get(ls, n - 1), "total"), 7);
    assert_true(json_is_true(json_object_get(json_array_get(ls, n - 1), "final")));
    json_decref(ls);
    fclose(f);
}

/* The terminal line: redrawn in place with done/total, percent, rate, ETA and the detail;
 * the phase's last state on its own line. */
static void test_progress__tty_line(void **state)
{
    struct progress_cfg cfg = {0};
    struct progress *p = NULL;
    struct dm_err e = {0};
    FILE *f = tmpfile();
    char buf[8192];
    size_t len;

    (void)state;
    assert_non_null(f);
    cfg.out = f;
    cfg.tty = 1;
    cfg.tty_interval_s = 0.01;
    assert_int_equal(progress_new(&p, &cfg, &e), DM_OK);
    progress_phase(p, "users", 2000);
    progress_done(p, 500);
    progress_detail(p, "created 500");
    sleep_ms(100);
    progress_done(p, 2000);
    progress_phase_end(p);
    progress_free(p);
    rewind(f);
    len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[len] = '\0';
    assert_non_null(strstr(buf, "\r\033[Kusers 500/2,000 (25%), "));
    assert_non_null(strstr(buf, ", ETA "));
    assert_non_null(strstr(buf, " | created 500"));
    assert_non_null(strstr(buf, "users 2,000/2,000 (100%)"));
    assert_int_equal(buf[len - 1], '\n');
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress__none_wanted_is_null_and_calls_are_safe),
        cmocka_unit_test(test_progress__durations),
        cmocka_unit_test(test_progress__json_lines_per_phase),
        cmocka_unit_test(test_progress__tty_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
