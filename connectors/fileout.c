/*
 * connectors/fileout.c: write-then-rename output files (fileout.h).
 */
#include <config.h>
#include "connectors/fileout.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fileout {
    char *path, *tmp;
    FILE *f;
    int committed;
};

int fileout_open(struct fileout **out, const char *path, struct dm_err *err)
{
    struct fileout *o = calloc(1, sizeof(*o));
    int fd;

    if (o == NULL || (o->path = strdup(path)) == NULL ||
        asprintf(&o->tmp, "%s.tmp.XXXXXX", path) < 0) {
        if (o != NULL) {
            free(o->path);
        }
        free(o);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    fd = mkstemp(o->tmp); /* mode 0600 */
    if (fd < 0 || (o->f = fdopen(fd, "w")) == NULL) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
        fileout_free(o);
        return dm_err_set(err, DM_EINVAL, "%s: cannot create a file beside it: %s", path,
                          strerror(e));
    }
    *out = o;
    return DM_OK;
}

FILE *fileout_file(struct fileout *o)
{
    return o->f;
}

const char *fileout_path(const struct fileout *o)
{
    return o->path;
}

int fileout_commit(struct fileout *o, struct dm_err *err)
{
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int e = errno;

    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (bad) {
        return dm_err_set(err, DM_EINTERNAL, "%s: writing failed: %s", o->tmp, strerror(e));
    }
    if (rename(o->tmp, o->path) != 0) {
        return dm_err_set(err, DM_EINTERNAL, "%s: cannot replace it: %s", o->path, strerror(errno));
    }
    o->committed = 1;
    return DM_OK;
}

void fileout_free(struct fileout *o)
{
    if (o == NULL) {
        return;
    }
    if (o->f != NULL) {
        fclose(o->f);
    }
    if (!o->committed && o->tmp != NULL) {
        unlink(o->tmp);
    }
    free(o->tmp);
    free(o->path);
    free(o);
}
