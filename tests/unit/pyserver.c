#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/util/attrs.h"
#include "tests/unit/pyserver.h"

void pyserver_vstart(struct pyserver *s, const char *script, const char *const *fixed, va_list ap)
{
    const char *srcdir = getenv("top_srcdir");
    const char *py = getenv("PYTHON3");
    const char *argv[48];
    char path[600];
    char line[64] = "";
    int fds[2];
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", srcdir != NULL ? srcdir : ".", script);
    argv[n++] = py != NULL && py[0] != '\0' ? py : "python3";
    argv[n++] = path;
    for (size_t i = 0; fixed != NULL && fixed[i] != NULL; i++) {
        assert_true(n < DM_ARRAY_LEN(argv) - 1);
        argv[n++] = fixed[i];
    }
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        assert_true(n < DM_ARRAY_LEN(argv) - 1);
        argv[n++] = a;
    }
    argv[n] = NULL;
    assert_int_equal(pipe(fds), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_int_equal(sscanf(line, "READY %d", &s->port), 1);
}

void pyserver_stop(struct pyserver *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}
