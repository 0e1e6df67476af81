/*
 * planfile.c: the saved-plan file (planfile.h): JSON Lines written to a temporary file and
 * renamed into place, read back line by line with every field checked.
 */
#include <config.h>
#include "agent/planfile.h"
#include "agent/util/buf.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A line longer than this is not a plan line (the longest is a change naming many
 * attributes; values never appear). */
#define PLANFILE_MAX_LINE (1u << 20)

struct planfile {
    FILE *f;
    char *path; /* the final name */
    char *tmp;  /* the temporary file beside it */
    long long n;
};

static const char *const ops[] = {"create", "update", "move", "disable", "delete"};
static const char *const kinds[] = {"user", "group", "container", "unmatched"};
static const char *const states[] = {"keep", "enable", "disable"};

static int one_of(const char *v, const char *const *set, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        if (strcmp(v, set[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_hex64(const char *s)
{
    size_t i = 0;

    for (; s != NULL && s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return s != NULL && i == 64;
}

static int is_digest(const char *s)
{
    return s != NULL && (strcmp(s, PLANFILE_ABSENT) == 0 || is_hex64(s));
}

void planfile_header_clear(struct planfile_header *h)
{
    if (h == NULL) {
        return;
    }
    free(h->target);
    free(h->source);
    free(h->wave);
    memset(h, 0, sizeof(*h));
}

/* ---- writing ---- */

static int put_line(struct planfile *f, json_t *o, struct dm_err *err)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = DM_OK;

    if (s == NULL) {
        return dm_err_set(err, DM_ENOMEM, "%s: out of memory", f->path);
    }
    if (fputs(s, f->f) == EOF || fputc('\n', f->f) == EOF) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot write the plan: %s", f->tmp, strerror(errno));
    }
    free(s);
    return rc;
}

static void random_id(char out[33])
{
    static const char xd[] = "0123456789abcdef";
    unsigned char r[16];
    ssize_t n = getrandom(r, sizeof(r), 0);

    if (n != (ssize_t)sizeof(r)) {
        /* no entropy source: time and pid still tell plans apart */
        unsigned long long t =
            (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        for (size_t i = 0; i < sizeof(r); i++) {
            r[i] = (unsigned char)(t >> ((i % 8) * 8));
        }
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = xd[r[i] >> 4];
        out[2 * i + 1] = xd[r[i] & 15];
    }
    out[32] = '\0';
}

static void iso_time(char *buf, size_t len, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int planfile_create(struct planfile **out, const char *path, struct planfile_header *h,
                    struct dm_err *err)
{
    struct planfile *f = calloc(1, sizeof(*f));
    char when[32];
    json_t *o = NULL;
    int fd = -1, rc;

    if (f == NULL || (f->path = strdup(path)) == NULL ||
        asprintf(&f->tmp, "%s.tmp.XXXXXX", path) < 0) {
        if (f != NULL) {
            f->tmp = NULL;
        }
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    fd = mkstemp(f->tmp);
    if (fd < 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the plan file: %s", path,
                        strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        goto done;
    }
    /* it names every object that changes: readable by its owner only */
    if (fchmod(fd, 0600) != 0 || (f->f = fdopen(fd, "w")) == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s: %s", f->tmp, strerror(errno));
        close(fd);
        goto done;
    }
    random_id(h->plan_id);
    iso_time(when, sizeof(when), h->created);
    o = json_pack("{s:i,s:s,s:I,s:s,s:I,s:s,s:s,s:s?,s:s?,s:s}", "dirmig_plan", PLANFILE_VERSION,
                  "plan_id", h->plan_id, "run", (json_int_t)h->run, "created", when, "created_unix",
                  (json_int_t)h->created, "config_digest", h->config_digest, "target",
                  h->target ? h->target : "", "source", h->source, "wave", h->wave, "scope",
                  h->full_scope ? "full" : "partial");
    rc = put_line(f, o, err);
    if (rc != DM_OK) {
        goto done;
    }
    *out = f;
    f = NULL;
done:
    json_decref(o);
    planfile_abort(f);
    return rc;
}

long long planfile_count(const struct planfile *f)
{
    return f != NULL ? f->n : 0;
}

int planfile_add(struct planfile *f, const struct planfile_change *c, struct dm_err *err)
{
    json_t *attrs = json_array(), *o;
    char *list = c->attrs != NULL ? strdup(c->attrs) : NULL, *save = NULL;
    int rc;

    if (attrs == NULL || (c->attrs != NULL && list == NULL)) {
        json_decref(attrs);
        free(list);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        json_array_append_new(attrs, json_string(t));
    }
    free(list);
    o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s?,s:s,s:o,s:s,s:s,s:s}", "op", c->op, "kind", c->kind,
                  "key", c->key, "source_dn", c->source_dn, "target", c->target, "ref",
                  c->ref != NULL && c->ref[0] ? c->ref : NULL, "reason", c->reason ? c->reason : "",
                  "attributes", attrs, "state", c->state ? c->state : "keep", "source_digest",
                  c->source_digest, "target_digest", c->target_digest);
    rc = put_line(f, o, err);
    json_decref(o);
    if (rc == DM_OK) {
        f->n++;
    }
    return rc;
}

static void free_writer(struct planfile *f)
{
    if (f->f != NULL) {
        fclose(f->f);
    }
    free(f->path);
    free(f->tmp);
    free(f);
}

void planfile_abort(struct planfile *f)
{
    if (f == NULL) {
        return;
    }
    if (f->f != NULL) {
        fclose(f->f);
        f->f = NULL;
    }
    if (f->tmp != NULL) {
        unlink(f->tmp);
    }
    free_writer(f);
}

int planfile_commit(struct planfile *f, struct dm_err *err)
{
    json_t *o = json_pack("{s:b,s:I}", "end", 1, "changes", (json_int_t)f->n);
    int rc = put_line(f, o, err), fd;
    char *slash, *dir = NULL;

    json_decref(o);
    if (rc == DM_OK && (fflush(f->f) != 0 || fsync(fileno(f->f)) != 0)) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot write the plan: %s", f->tmp, strerror(errno));
    }
    if (rc == DM_OK) {
        int c = fclose(f->f);
        f->f = NULL;
        if (c != 0) {
            rc = dm_err_set(err, DM_EINVAL, "%s: cannot write the plan: %s", f->tmp,
                            strerror(errno));
        }
    }
    if (rc == DM_OK && rename(f->tmp, f->path) != 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot rename the plan into place: %s", f->path,
                        strerror(errno));
    }
    if (rc != DM_OK) {
        planfile_abort(f);
        return rc;
    }
    /* the rename itself survives a crash once the directory is synced */
    slash = strrchr(f->path, '/');
    dir = slash == NULL ? strdup(".")
                        : strndup(f->path, slash == f->path ? 1 : (size_t)(slash - f->path));
    fd = dir != NULL ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
    free(f->tmp);
    f->tmp = NULL;
    free_writer(f);
    return DM_OK;
}

/* ---- reading ---- */

struct rd {
    const char *path;
    long line;
    struct dm_err *err;
};

static int DM_PRINTF(2, 3) bad(struct rd *r, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return dm_err_set(r->err, DM_EINVAL, "%s:%ld: %s", r->path, r->line, msg);
}

/* The string field name of o: required (NULL fails), or optional (JSON null / absent gives
 * NULL). */
static int str_field(const char **out, struct rd *r, json_t *o, const char *name, int required)
{
    json_t *v = json_object_get(o, name);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return required ? bad(r, "\"%s\" is missing", name) : DM_OK;
    }
    if (!json_is_string(v)) {
        return bad(r, "\"%s\" must be a string", name);
    }
    if (required && json_string_length(v) == 0) {
        return bad(r, "\"%s\" is empty", name);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return bad(r, "\"%s\" holds a NUL character", name);
    }
    *out = json_string_value(v);
    return DM_OK;
}

/* Refuses a field outside names (a plan is read exactly as it was written). */
static int known_fields(struct rd *r, json_t *o, const char *const *names, size_t n)
{
    const char *k;
    json_t *v;

    json_object_foreach (o, k, v) {
        if (!one_of(k, names, n)) {
            return bad(r, "unknown field \"%.60s\"", k);
        }
    }
    return DM_OK;
}

static int read_header(struct planfile_header *h, struct rd *r, json_t *o)
{
    static const char *const fields[] = {"dirmig_plan",  "plan_id",       "run",    "created",
                                         "created_unix", "config_digest", "target", "source",
                                         "wave",         "scope"};
    json_t *v = json_object_get(o, "dirmig_plan");
    const char *id, *digest, *target, *source, *wave, *scope;
    int rc;

    if (!json_is_integer(v)) {
        return bad(r, "not a dirmig plan (no \"dirmig_plan\" header)");
    }
    if (json_integer_value(v) != PLANFILE_VERSION) {
        return bad(r, "plan format version %lld is not one this dirmig reads (%d)",
                   (long long)json_integer_value(v), PLANFILE_VERSION);
    }
    rc = known_fields(r, o, fields, DM_ARRAY_LEN(fields));
    if (rc == DM_OK) {
        rc = str_field(&id, r, o, "plan_id", 1);
    }
    if (rc == DM_OK && (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)) {
        rc = bad(r, "\"plan_id\" must be 32 hex digits");
    }
    if (rc == DM_OK) {
        rc = str_field(&digest, r, o, "config_digest", 1);
    }
    if (rc == DM_OK && !is_hex64(digest)) {
        rc = bad(r, "\"config_digest\" must be 64 hex digits");
    }
    if (rc == DM_OK) {
        rc = str_field(&target, r, o, "target", 1);
    }
    if (rc == DM_OK) {
        rc = str_field(&source, r, o, "source", 0);
    }
    if (rc == DM_OK) {
        rc = str_field(&wave, r, o, "wave", 0);
    }
    if (rc == DM_OK) {
        rc = str_field(&scope, r, o, "scope", 1);
    }
    if (rc == DM_OK && strcmp(scope, "full") != 0 && strcmp(scope, "partial") != 0) {
        rc = bad(r, "\"scope\" must be \"full\" or \"partial\"");
    }
    if (rc == DM_OK && (!json_is_integer(json_object_get(o, "run")) ||
                        !json_is_integer(json_object_get(o, "created_unix")))) {
        rc = bad(r, "\"run\" and \"created_unix\" must be integers");
    }
    if (rc != DM_OK) {
        return rc;
    }
    snprintf(h->plan_id, sizeof(h->plan_id), "%s", id);
    snprintf(h->config_digest, sizeof(h->config_digest), "%s", digest);
    h->run = (long long)json_integer_value(json_object_get(o, "run"));
    h->created = (long long)json_integer_value(json_object_get(o, "created_unix"));
    h->full_scope = strcmp(scope, "full") == 0;
    h->target = strdup(target);
    h->source = source != NULL ? strdup(source) : NULL;
    h->wave = wave != NULL ? strdup(wave) : NULL;
    if (h->target == NULL || (source != NULL && h->source == NULL) ||
        (wave != NULL && h->wave == NULL)) {
        return dm_err_set(r->err, DM_ENOMEM, "out of memory");
    }
    return DM_OK;
}

/* Attribute names as the writer wrote them: letters, digits, '-', ';' options. */
static int attr_name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 128) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == ';' || *p == '.' || *p == '_')) {
            return 0;
        }
    }
    return 1;
}

static int read_change(struct planfile_change *c, struct buf *names, struct rd *r, json_t *o)
{
    static const char *const fields[] = {"op",     "kind",          "key",          "source_dn",
                                         "target", "ref",           "reason",       "attributes",
                                         "state",  "source_digest", "target_digest"};
    json_t *a = json_object_get(o, "attributes"), *x;
    size_t i;
    int rc = known_fields(r, o, fields, DM_ARRAY_LEN(fields));

    memset(c, 0, sizeof(*c));
    c->line = r->line;
    if (rc == DM_OK) {
        rc = str_field(&c->op, r, o, "op", 1);
    }
    if (rc == DM_OK && !one_of(c->op, ops, DM_ARRAY_LEN(ops))) {
        rc = bad(r, "\"op\" \"%.40s\" is not create, update, move, disable or delete", c->op);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->kind, r, o, "kind", 1);
    }
    if (rc == DM_OK && !one_of(c->kind, kinds, DM_ARRAY_LEN(kinds))) {
        rc = bad(r, "\"kind\" \"%.40s\" is not user, group, container or unmatched", c->kind);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->key, r, o, "key", 1);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->source_dn, r, o, "source_dn", 0);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->target, r, o, "target", 1);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->ref, r, o, "ref", 0);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->reason, r, o, "reason", 1);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->state, r, o, "state", 1);
    }
    if (rc == DM_OK && !one_of(c->state, states, DM_ARRAY_LEN(states))) {
        rc = bad(r, "\"state\" \"%.40s\" is not keep, enable or disable", c->state);
    }
    if (rc == DM_OK) {
        rc = str_field(&c->source_digest, r, o, "source_digest", 1);
    }
    if (rc == DM_OK && !is_digest(c->source_digest)) {
        rc = bad(r, "\"source_digest\" must be 64 hex digits or \"absent\"");
    }
    if (rc == DM_OK) {
        rc = str_field(&c->target_digest, r, o, "target_digest", 1);
    }
    if (rc == DM_OK && !is_digest(c->target_digest)) {
        rc = bad(r, "\"target_digest\" must be 64 hex digits or \"absent\"");
    }
    if (rc != DM_OK) {
        return rc;
    }
    if (a != NULL && !json_is_array(a)) {
        return bad(r, "\"attributes\" must be an array of attribute names");
    }
    buf_reset(names);
    json_array_foreach (a, i, x) {
        const char *n = json_string_value(x);
        if (!attr_name_ok(n)) {
            return bad(r, "\"attributes\"[%zu] is not an attribute name", i);
        }
        if (buf_printf(names, "%s%s", names->len ? "," : "", n) != DM_OK) {
            return bad(r, "\"attributes\" is too long");
        }
    }
    c->attrs = names->len > 0 ? names->data : NULL;
    return DM_OK;
}

int planfile_read(struct planfile_header *out, const char *path, planfile_change_fn fn,
                  void *payload, struct dm_err *err)
{
    struct planfile_header h;
    struct rd r = {path, 0, err};
    struct buf names;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long n = 0;
    int rc = DM_OK, ended = 0;

    memset(&h, 0, sizeof(h));
    buf_init(&names, 1 << 16);
    if (f == NULL) {
        return dm_err_set(err, errno == ENOENT ? DM_ENOTFOUND : DM_EINVAL, "%s: %s", path,
                          strerror(errno));
    }
    while (rc == DM_OK && (len = getline(&line, &cap, f)) >= 0) {
        json_error_t je;
        json_t *o;

        r.line++;
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        if ((size_t)len > PLANFILE_MAX_LINE) {
            rc = bad(&r, "line longer than %u bytes", PLANFILE_MAX_LINE);
            break;
        }
        if (ended) {
            rc = bad(&r, "text after the plan's last line");
            break;
        }
        o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (o == NULL || !json_is_object(o)) {
            rc = o == NULL ? bad(&r, "not JSON: %s (column %d)", je.text, je.column)
                           : bad(&r, "not a JSON object");
            json_decref(o);
            break;
        }
        if (r.line == 1) {
            rc = read_header(&h, &r, o);
        } else if (json_object_get(o, "end") != NULL) {
            static const char *const tf[] = {"end", "changes"};
            json_t *cnt = json_object_get(o, "changes");
            rc = known_fields(&r, o, tf, DM_ARRAY_LEN(tf));
            if (rc == DM_OK &&
                (!json_is_true(json_object_get(o, "end")) || !json_is_integer(cnt))) {
                rc = bad(&r, "the last line must be {\"end\": true, \"changes\": N}");
            }
            if (rc == DM_OK && json_integer_value(cnt) != n) {
                rc = bad(&r, "the plan says it has %lld changes, the file holds %lld",
                         (long long)json_integer_value(cnt), n);
            }
            ended = 1;
        } else {
            struct planfile_change c;
            rc = read_change(&c, &names, &r, o);
            n++;
            if (rc == DM_OK && fn != NULL) {
                rc = fn(&c, payload);
            }
        }
        json_decref(o);
    }
    if (rc == DM_OK && ferror(f)) {
        rc = dm_err_set(err, DM_EINVAL, "%s: %s", path, strerror(errno));
    } else if (rc == DM_OK && r.line == 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: empty file, not a dirmig plan", path);
    } else if (rc == DM_OK && !ended) {
        r.line++;
        rc = bad(&r, "the plan ends before its last line (a truncated file?)");
    }
    free(line);
    fclose(f);
    buf_free(&names);
    if (rc != DM_OK) {
        planfile_header_clear(&h);
        return rc;
    }
    h.changes = n;
    *out = h;
    return DM_OK;
}

int planfile_duration(long long *out, const char *s)
{
    char *end = NULL;
    long long v, mul = 1;

    if (s == NULL || *s < '0' || *s > '9') {
        return DM_EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || v <= 0) {
        return DM_EINVAL;
    }
    if (*end != '\0') {
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            return DM_EINVAL;
        }
        if (end[1] != '\0') {
            return DM_EINVAL;
        }
    }
    if (v > (long long)(100LL * 365 * 86400) / mul) {
        return DM_EINVAL;
    }
    *out = v * mul;
    return DM_OK;
}

void planfile_config_digest(char hex[65], const char *config_digest, const char *map_file)
{
    static const char xd[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE], chunk[8192];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *f = map_file != NULL ? fopen(map_file, "rb") : NULL;
    size_t n;

    hex[0] = '\0';
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        goto done;
    }
    EVP_DigestUpdate(ctx, "config ", 7);
    EVP_DigestUpdate(ctx, config_digest, strlen(config_digest));
    EVP_DigestUpdate(ctx, "\nmap ", 5);
    while (f != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        EVP_DigestUpdate(ctx, chunk, n);
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        goto done;
    }
    for (unsigned int i = 0; i < mdlen && i < 32; i++) {
        hex[2 * i] = xd[md[i] >> 4];
        hex[2 * i + 1] = xd[md[i] & 15];
    }
    hex[64] = '\0';
done:
    if (f != NULL) {
        fclose(f);
    }
    EVP_MD_CTX_free(ctx);
}
