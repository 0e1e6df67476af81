#include <config.h>
#include "sdnotify.h"
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t plen;
    socklen_t salen;
    ssize_t n;
    int fd, saved;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    plen = strlen(path);
    /* sd_notify(3): an absolute path, or "@" for a socket in the abstract namespace. */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    } else {
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    return 0;
}

int sdnotify_sendf(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sdnotify_send(msg);
}

long long sdnotify_watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    long long v;

    if (us == NULL || us[0] == '\0') {
        return 0;
    }
    if (pid != NULL && pid[0] != '\0') {
        long long p = strtoll(pid, &end, 10);
        if (*end != '\0' || p != (long long)getpid()) {
            return 0;
        }
    }
    v = strtoll(us, &end, 10);
    if (*end != '\0' || v <= 0) {
        return 0;
    }
    return v;
}
