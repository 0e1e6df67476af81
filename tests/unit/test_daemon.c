#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "agent/daemon.h"
#include "agent/util/sdnotify.h"

static void test_daemon__delay_is_the_interval_plus_jitter(void **state)
{
    struct config_reconcile r = {
        .interval_s = 60, .max_failures_before_backoff = 3, .max_backoff_s = 3600};

    (void)state;
    assert_int_equal(daemon_delay_ms(&r, 0, 0), 60000);
    assert_int_equal(daemon_delay_ms(&r, 0, 1234), 61234);
    assert_int_equal(daemon_delay_ms(&r, 0, -5), 60000);
    r.interval_s = 0;
    assert_int_equal(daemon_delay_ms(&r, 5, 100), 0);
}

static void test_daemon__backoff_doubles_after_the_threshold(void **state)
{
    struct config_reconcile r = {
        .interval_s = 60, .max_failures_before_backoff = 3, .max_backoff_s = 600};

    (void)state;
    assert_int_equal(daemon_delay_ms(&r, 1, 0), 60000);
    assert_int_equal(daemon_delay_ms(&r, 3, 0), 60000);
    assert_int_equal(daemon_delay_ms(&r, 4, 0), 120000);
    assert_int_equal(daemon_delay_ms(&r, 5, 0), 240000);
    assert_int_equal(daemon_delay_ms(&r, 6, 0), 480000);
    assert_int_equal(daemon_delay_ms(&r, 7, 0), 600000); /* capped */
    assert_int_equal(daemon_delay_ms(&r, 1000000, 0), 600000);
    r.max_failures_before_backoff = 0;
    assert_int_equal(daemon_delay_ms(&r, 1, 0), 120000);
    /* The cap never makes the delay shorter than the interval. */
    r.max_backoff_s = 10;
    assert_int_equal(daemon_delay_ms(&r, 3, 0), 60000);
}

static void test_daemon__sdnotify_sends_datagrams(void **state)
{
    char dir[] = "/tmp/dm_test_daemon.XXXXXX", path[64], buf[256];
    struct sockaddr_un sa;
    ssize_t n;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sdnotify_send("READY=1"), 0); /* no socket: a no-op */
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(sdnotify_sendf("READY=1\nSTATUS=%d runs", 3), 0);
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "READY=1\nSTATUS=3 runs");
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(sdnotify_send("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");

    setenv("WATCHDOG_USEC", "30000000", 1);
    unsetenv("WATCHDOG_PID");
    assert_int_equal(sdnotify_watchdog_usec(), 30000000LL);
    setenv("WATCHDOG_PID", "1", 1); /* another process */
    assert_int_equal(sdnotify_watchdog_usec(), getpid() == 1 ? 30000000LL : 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "x", 1);
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemon__delay_is_the_interval_plus_jitter),
        cmocka_unit_test(test_daemon__backoff_doubles_after_the_threshold),
        cmocka_unit_test(test_daemon__sdnotify_sends_datagrams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
