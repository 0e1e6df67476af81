#include <config.h>
#include "secret.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 8192

struct secret {
    size_t len;
    char *data; /* len bytes + NUL */
};

int secret_from_mem(struct secret **out, const void *data, size_t len, struct dm_err *err)
{
    struct secret *s;

    if (len == 0) {
        return dm_err_set(err, DM_EINVAL, "secret is empty");
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->data = malloc(len + 1)) == NULL) {
        free(s);
        return dm_err_set(err, DM_ENOMEM, "secret allocation");
    }
    memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;
    *out = s;
    return DM_OK;
}

/* The checks a secret file must pass before it is read: a regular file that group and
 * others cannot access. */
static int check_mode(const struct stat *st, const char *file, struct dm_err *err)
{
    if (!S_ISREG(st->st_mode)) {
        return dm_err_set(err, DM_EINVAL, "%s: secret file is not a regular file", file);
    }
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        return dm_err_set(err, DM_EINVAL,
                          "%s: secret file is accessible by group or others (mode %03o); "
                          "chmod 600 it",
                          file, (unsigned)(st->st_mode & 0777));
    }
    return DM_OK;
}

int secret_check_file(const char *file, struct dm_err *err)
{
    struct stat st;

    if (stat(file, &st) != 0) {
        return dm_err_set(err, errno == ENOENT ? DM_ENOTFOUND : DM_EINVAL,
                          "%s: cannot open secret file: %s", file, strerror(errno));
    }
    return check_mode(&st, file, err);
}

static int load_file(struct secret **out, const char *file, struct dm_err *err)
{
    char buf[SECRET_MAX + 1];
    struct stat st;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot open secret file: %s", file, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return dm_err_set(err, DM_EINVAL, "%s: cannot stat secret file: %s", file, strerror(errno));
    }
    rc = check_mode(&st, file, err);
    if (rc != DM_OK) {
        close(fd);
        return rc;
    }
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
        len += (size_t)n;
    }
    close(fd);
    if (len > SECRET_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return dm_err_set(err, DM_EINVAL, "%s: secret file is too large", file);
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0) {
        return dm_err_set(err, DM_EINVAL, "%s: secret file is empty", file);
    }
    rc = secret_from_mem(out, buf, len, err);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int secret_load(struct secret **out, const char *file, const char *env, struct dm_err *err)
{
    const char *v;

    if (file != NULL) {
        return load_file(out, file, err);
    }
    if (env == NULL) {
        return dm_err_set(err, DM_EINVAL, "no secret source given");
    }
    v = getenv(env);
    if (v == NULL || v[0] == '\0') {
        return dm_err_set(err, DM_EINVAL, "environment variable %s is unset or empty", env);
    }
    return secret_from_mem(out, v, strlen(v), err);
}

const char *secret_reveal(const struct secret *s)
{
    return s->data;
}

size_t secret_len(const struct secret *s)
{
    return s->len;
}

int secret_equal(const struct secret *s, const void *p, size_t len)
{
    /* Compare over max(len) bytes so the time depends on lengths only. */
    const unsigned char *a = (const unsigned char *)s->data, *b = p;
    size_t n = s->len > len ? s->len : len;
    unsigned char diff = (unsigned char)(s->len != len);

    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < s->len ? a[i] : 0;
        unsigned char y = i < len ? b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

void secret_free(struct secret *s)
{
    if (s == NULL) {
        return;
    }
    if (s->data != NULL) {
        OPENSSL_cleanse(s->data, s->len);
        free(s->data);
    }
    free(s);
}
