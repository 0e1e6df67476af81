/*
 * sdnotify.h: the systemd notification protocol (sd_notify(3)) without libsystemd.
 *
 * A service started with Type=notify finds the path of a datagram socket in
 * $NOTIFY_SOCKET ("/run/systemd/notify", or "@name" for the abstract namespace) and
 * sends newline-separated assignments to it: READY=1 once it serves, RELOADING=1 while
 * it re-reads its config, STOPPING=1 when it begins to shut down, WATCHDOG=1 at least
 * every $WATCHDOG_USEC microseconds when the unit sets WatchdogSec=. Without
 * $NOTIFY_SOCKET every call is a successful no-op, so the daemon runs the same by hand.
 * The variables are left in the environment (the daemon sends many messages); nothing
 * here is secret.
 */
#ifndef DM_SDNOTIFY_H
#define DM_SDNOTIFY_H

#include "attrs.h"

/* Sends msg (e.g. "READY=1\nSTATUS=serving") as one datagram. Returns 0 when sent or
 * when $NOTIFY_SOCKET is unset, -1 (errno set) when the socket is bad or unreachable. */
int sdnotify_send(const char *msg);

/* printf-style sdnotify_send; messages longer than 1 kB are cut. */
int sdnotify_sendf(const char *fmt, ...) DM_PRINTF(1, 2);

/* The watchdog period in microseconds ($WATCHDOG_USEC), or 0 when there is none or
 * $WATCHDOG_PID names another process. */
long long sdnotify_watchdog_usec(void);

#endif
