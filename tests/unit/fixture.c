#include <config.h>
#include "tests/unit/fixture.h"
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

int fixture_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/%s.XXXXXX", program_invocation_short_name);
    if (mkdtemp(tmpdir) == NULL) {
        tmpdir[0] = '\0';
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int fixture_teardown(void **state)
{
    int rc;

    (void)state;
    if (tmpdir[0] == '\0') {
        return 0;
    }
    /* depth first, without following symbolic links out of the directory */
    rc = nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
    return rc == 0 ? 0 : -1;
}

const char *fixture_tmpdir(void)
{
    return tmpdir;
}

void fixture_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    size_t n = strlen(text);

    if (f == NULL) {
        fail_msg("fopen %s: %s", path, strerror(errno));
    }
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

const char *fixture_write_tmp(const char *name, const char *text)
{
    static char path[512];

    assert_true(tmpdir[0] != '\0');
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fixture_write(path, text, 0600);
    return path;
}

char *fixture_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

const char *fixture_srcdir(void)
{
    const char *top = getenv("top_srcdir");

    return top != NULL && top[0] != '\0' ? top : ".";
}

struct entry *fixture_entry(const char *dn, const char *key, ...)
{
    struct entry *e = entry_new(dn);
    const char *name;
    va_list ap;

    assert_non_null(e);
    if (key != NULL) {
        assert_int_equal(entry_set_key(e, key), DM_OK);
    }
    va_start(ap, key);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);

        assert_int_equal(entry_add_str(e, name, v), DM_OK);
    }
    va_end(ap);
    return e;
}
