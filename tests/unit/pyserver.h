/*
 * tests/unit/pyserver.h: starts one of the Python test servers (tests/http/http_server.py,
 * tests/okta/okta_server.py) as a child process for a unit test and reads the port it
 * announces ("READY <port>" on stdout). $top_srcdir locates the script, $PYTHON3 the
 * interpreter (default python3). Fails the running cmocka test on any error.
 */
#ifndef DM_TEST_PYSERVER_H
#define DM_TEST_PYSERVER_H

#include <sys/types.h>

struct pyserver {
    pid_t pid;
    int port;
};

#include <stdarg.h>

/* script is relative to $top_srcdir; its arguments are the NULL-terminated list fixed
 * followed by the NULL-terminated arguments in ap. */
void pyserver_vstart(struct pyserver *s, const char *script, const char *const *fixed, va_list ap);
/* SIGTERM and wait. */
void pyserver_stop(struct pyserver *s);

#endif
