#include <config.h>
#include "schema/validate.h"
#include "agent/util/jsonpos.h"
#include "schema/dn.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Constraint parsing, profile files and the per-entry check (see validate.h). Messages of
 * map_problem never quote a value: a pii attribute's value must not reach a report, and
 * the agent cannot know which messages end up where, so none do.
 */

#define PROFILE_FILE_LIMIT ((size_t)4 << 20)

/* Constraints that look at the values (and so need them to be UTF-8 text). */
#define VALUE_CHECKS                                                                               \
    (VALIDATE_HAS_TYPE | VALIDATE_HAS_MAX | VALIDATE_HAS_MIN | VALIDATE_HAS_PATTERN |              \
     VALIDATE_HAS_UTF8)

static const struct {
    const char *name;
    enum transform_type type;
} type_table[] = {
    {"string", TRANSFORM_T_STRING},   {"integer", TRANSFORM_T_INTEGER},
    {"boolean", TRANSFORM_T_BOOLEAN}, {"date", TRANSFORM_T_DATE},
    {"email", TRANSFORM_T_EMAIL},     {"dn", TRANSFORM_T_DN},
};

static int DM_PRINTF(3, 4) why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return DM_EINVAL;
}

int validate_type_parse(enum transform_type *out, const char *name)
{
    for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++) {
        if (strcmp(type_table[i].name, name) == 0) {
            *out = type_table[i].type;
            return DM_OK;
        }
    }
    return DM_EINVAL;
}

void validate_constraint_clear(struct validate_constraint *c)
{
    if (c == NULL) {
        return;
    }
    free(c->attr);
    transform_regex_clear(&c->pattern);
    free(c->pattern_src);
    memset(c, 0, sizeof(*c));
}

/* Compiles src into c->pattern, to match whole values. */
static int set_pattern(struct validate_constraint *c, const char *src, char *why, size_t whylen)
{
    struct transform_regex re;
    char msg[256];
    int rc;

    rc = transform_regex_compile(&re, src, TRANSFORM_REGEX_WHOLE, msg, sizeof(msg));
    if (rc == DM_ENOMEM) {
        return rc;
    }
    if (rc != DM_OK) {
        return why_set(why, whylen, "%s", msg);
    }
    /* not expected twice (duplicate keys are refused), but never leak */
    transform_regex_clear(&c->pattern);
    c->pattern = re;
    free(c->pattern_src);
    c->pattern_src = strdup(src);
    c->has |= VALIDATE_HAS_PATTERN;
    return c->pattern_src == NULL ? DM_ENOMEM : DM_OK;
}

static int need_bool(int *out, const json_t *v, const char *key, char *why, size_t whylen)
{
    if (!json_is_boolean(v)) {
        return why_set(why, whylen, "%s: must be true or false", key);
    }
    *out = json_is_true(v);
    return DM_OK;
}

int validate_constraint_set(struct validate_constraint *c, const char *key, const json_t *v,
                            char *why, size_t whylen)
{
    if (strcmp(key, "type") == 0) {
        if (!json_is_string(v) || validate_type_parse(&c->type, json_string_value(v)) != DM_OK) {
            return why_set(why, whylen, "must be one of string, integer, boolean, date, email, dn");
        }
        c->has |= VALIDATE_HAS_TYPE;
        return DM_OK;
    }
    if (strcmp(key, "max_length") == 0 || strcmp(key, "min_length") == 0) {
        int is_max = key[1] == 'a';

        if (!json_is_integer(v) || json_integer_value(v) < (is_max ? 1 : 0)) {
            return why_set(why, whylen, "must be an integer >= %d (characters)", is_max);
        }
        if (is_max) {
            c->max_length = (size_t)json_integer_value(v);
            c->has |= VALIDATE_HAS_MAX;
        } else {
            c->min_length = (size_t)json_integer_value(v);
            c->has |= VALIDATE_HAS_MIN;
        }
        return DM_OK;
    }
    if (strcmp(key, "required") == 0) {
        c->has |= VALIDATE_HAS_REQUIRED;
        return need_bool(&c->required, v, key, why, whylen);
    }
    if (strcmp(key, "unique") == 0) {
        c->has |= VALIDATE_HAS_UNIQUE;
        return need_bool(&c->unique, v, key, why, whylen);
    }
    if (strcmp(key, "pii") == 0) {
        c->has |= VALIDATE_HAS_PII;
        return need_bool(&c->pii, v, key, why, whylen);
    }
    if (strcmp(key, "pattern") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            return why_set(why, whylen, "must be a non-empty string (a PCRE2 regular expression)");
        }
        return set_pattern(c, json_string_value(v), why, whylen);
    }
    if (strcmp(key, "max_utf8_bytes_per_char") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 4) {
            return why_set(why, whylen, "must be an integer 1..4");
        }
        c->max_utf8 = (int)json_integer_value(v);
        c->has |= VALIDATE_HAS_UTF8;
        return DM_OK;
    }
    return DM_ENOTFOUND;
}

int validate_constraint_merge(struct validate_constraint *dst,
                              const struct validate_constraint *src)
{
    unsigned add = src->has & ~dst->has;
    char why[160];

    if (add & VALIDATE_HAS_TYPE) {
        dst->type = src->type;
    }
    if (add & VALIDATE_HAS_MAX) {
        dst->max_length = src->max_length;
    }
    if (add & VALIDATE_HAS_MIN) {
        dst->min_length = src->min_length;
    }
    if (add & VALIDATE_HAS_REQUIRED) {
        dst->required = src->required;
    }
    if (add & VALIDATE_HAS_UNIQUE) {
        dst->unique = src->unique;
    }
    if (add & VALIDATE_HAS_PII) {
        dst->pii = src->pii;
    }
    if (add & VALIDATE_HAS_UTF8) {
        dst->max_utf8 = src->max_utf8;
    }
    dst->has |= add & ~VALIDATE_HAS_PATTERN;
    if (add & VALIDATE_HAS_PATTERN) {
        /* a compiled pattern is not shared between constraints: compile the source again */
        return set_pattern(dst, src->pattern_src, why, sizeof(why)) == DM_OK ? DM_OK : DM_ENOMEM;
    }
    return DM_OK;
}

/* ---- profiles ---- */

void validate_profile_free(struct validate_profile *p)
{
    if (p == NULL) {
        return;
    }
    free(p->name);
    for (size_t i = 0; i < p->nattrs; i++) {
        validate_constraint_clear(&p->attrs[i]);
    }
    free(p->attrs);
    free(p);
}

const struct validate_constraint *validate_profile_find(const struct validate_profile *p,
                                                        const char *attr)
{
    for (size_t i = 0; p != NULL && i < p->nattrs; i++) {
        if (strcasecmp(p->attrs[i].attr, attr) == 0) {
            return &p->attrs[i];
        }
    }
    return NULL;
}

struct prof_cc {
    const char *path;
    const struct jsonpos *pos;
    struct dm_err *err;
};

static int DM_PRINTF(3, 4)
    prof_err(const struct prof_cc *cc, const char *kpath, const char *fmt, ...)
{
    char problem[200];
    int line = 1, col = 1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    if (cc->pos != NULL) {
        jsonpos_find(cc->pos, kpath, &line, &col);
    }
    return dm_err_set(cc->err, DM_EINVAL, "%s:%d:%d: %s: %s", cc->path, line, col,
                      kpath[0] ? kpath : "(top level)", problem);
}

static int profile_attrs(struct validate_profile *p, const struct prof_cc *cc, const json_t *v,
                         const struct validate_constraint *deflt)
{
    const char *name;
    json_t *av;
    char kp[300], why[200];

    if (!json_is_object(v)) {
        return prof_err(cc, "attributes", "must be an object");
    }
    p->attrs = calloc(json_object_size(v) + 1, sizeof(*p->attrs));
    if (p->attrs == NULL) {
        return dm_err_set(cc->err, DM_ENOMEM, "%s: out of memory", cc->path);
    }
    json_object_foreach ((json_t *)v, name, av) {
        struct validate_constraint *c = &p->attrs[p->nattrs++];
        const char *k;
        json_t *kv;
        int rc;

        snprintf(kp, sizeof(kp), "attributes.%s", name);
        c->attr = strdup(name);
        if (c->attr == NULL) {
            return dm_err_set(cc->err, DM_ENOMEM, "%s: out of memory", cc->path);
        }
        if (!json_is_object(av)) {
            return prof_err(cc, kp, "must be an object");
        }
        json_object_foreach (av, k, kv) {
            snprintf(kp, sizeof(kp), "attributes.%s.%s", name, k);
            rc = validate_constraint_set(c, k, kv, why, sizeof(why));
            if (rc == DM_ENOTFOUND && strcmp(k, "description") == 0) {
                rc = DM_OK;
            }
            if (rc == DM_ENOTFOUND) {
                return prof_err(cc, kp,
                                "unknown key (known: type, max_length, min_length, "
                                "required, unique, pattern, pii, "
                                "max_utf8_bytes_per_char, description)");
            }
            if (rc == DM_ENOMEM) {
                return dm_err_set(cc->err, DM_ENOMEM, "%s: out of memory", cc->path);
            }
            if (rc != DM_OK) {
                return prof_err(cc, kp, "%s", why);
            }
        }
        if ((c->has & VALIDATE_HAS_MAX) && (c->has & VALIDATE_HAS_MIN) &&
            c->min_length > c->max_length) {
            snprintf(kp, sizeof(kp), "attributes.%s", name);
            return prof_err(cc, kp, "min_length is greater than max_length");
        }
        if (validate_constraint_merge(c, deflt) != DM_OK) {
            return dm_err_set(cc->err, DM_ENOMEM, "%s: out of memory", cc->path);
        }
    }
    return DM_OK;
}

int validate_profile_load(struct validate_profile **out, const char *path, struct dm_err *err)
{
    struct validate_profile *p = NULL;
    struct validate_constraint deflt = {0};
    struct jsonpos *pos = NULL;
    struct prof_cc cc = {path, NULL, err};
    json_t *root = NULL, *kv;
    const char *k;
    char why[200];
    int rc;

    rc = jsonpos_load_file(&root, &pos, path, PROFILE_FILE_LIMIT, err);
    if (rc != DM_OK) {
        return rc;
    }
    cc.pos = pos;
    if (!json_is_object(root)) {
        rc = prof_err(&cc, "", "a profile must be a JSON object");
        goto done;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    /* profile-wide defaults first, so that every attribute inherits them */
    json_object_foreach (root, k, kv) {
        if (strcmp(k, "name") == 0) {
            if (!json_is_string(kv)) {
                rc = prof_err(&cc, k, "must be a string");
                goto done;
            }
            p->name = strdup(json_string_value(kv));
        } else if (strcmp(k, "max_utf8_bytes_per_char") == 0 || strcmp(k, "pii") == 0) {
            rc = validate_constraint_set(&deflt, k, kv, why, sizeof(why));
            if (rc != DM_OK) {
                rc = prof_err(&cc, k, "%s", why);
                goto done;
            }
        } else if (strcmp(k, "attributes") != 0 && strcmp(k, "description") != 0) {
            rc = prof_err(&cc, k,
                          "unknown key (known: name, description, "
                          "max_utf8_bytes_per_char, pii, attributes)");
            goto done;
        }
    }
    kv = json_object_get(root, "attributes");
    if (kv == NULL) {
        rc = prof_err(&cc, "", "a profile needs \"attributes\"");
        goto done;
    }
    rc = profile_attrs(p, &cc, kv, &deflt);
    if (rc != DM_OK) {
        goto done;
    }
    *out = p;
    p = NULL;
done:
    validate_constraint_clear(&deflt);
    validate_profile_free(p);
    jsonpos_free(pos);
    json_decref(root);
    return rc;
}

/* ---- checks ---- */

static int DM_PRINTF(5, 6) add_problem(struct map_problem **list, size_t *n, const char *cat,
                                       const char *attr, const char *fmt, ...)
{
    struct map_problem *nl = realloc(*list, (*n + 1) * sizeof(*nl));
    va_list ap;

    if (nl == NULL) {
        return DM_ENOMEM;
    }
    *list = nl;
    nl[*n].category = cat;
    snprintf(nl[*n].attr, sizeof(nl[*n].attr), "%s", attr);
    va_start(ap, fmt);
    vsnprintf(nl[*n].msg, sizeof(nl[*n].msg), fmt, ap);
    va_end(ap);
    (*n)++;
    return DM_OK;
}

/* local@domain, RFC 5321 limits, no white space or control characters, one '@', domain
 * with a dot and no empty labels. A pragmatic check, not a full RFC 5322 parser. */
static int email_ok(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    size_t local, dom;

    if (at == NULL || len > 254 || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL) {
        return 0;
    }
    local = (size_t)(at - s);
    dom = len - local - 1;
    if (local == 0 || local > 64 || dom < 3) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';') {
            return 0;
        }
    }
    if (memchr(at + 1, '.', dom) == NULL || at[1] == '.' || s[len - 1] == '.' || s[0] == '.' ||
        at[-1] == '.') {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (s[i] == '.' && s[i - 1] == '.') {
            return 0;
        }
    }
    return 1;
}

int validate_value_ok(enum transform_type t, const char *s, size_t len)
{
    int64_t x;

    switch (t) {
    case TRANSFORM_T_INTEGER:
        return transform_parse_int(&x, s, len) == DM_OK;
    case TRANSFORM_T_BOOLEAN:
        return (len == 4 && strncasecmp(s, "true", 4) == 0) ||
               (len == 5 && strncasecmp(s, "false", 5) == 0);
    case TRANSFORM_T_DATE:
        return transform_parse_iso8601(&x, s, len) == DM_OK ||
               transform_parse_generalized(&x, s, len) == DM_OK;
    case TRANSFORM_T_EMAIL:
        return email_ok(s, len);
    case TRANSFORM_T_DN: {
        struct dn *d = NULL;
        int ok;

        if (strlen(s) != len) {
            return 0;
        }
        ok = dn_parse(&d, s, NULL) == DM_OK;
        dn_free(d);
        return ok;
    }
    default:
        return 1;
    }
}

int validate_check_attr(struct map_problem **list, size_t *n, const struct validate_constraint *c,
                        const struct dm_attr *a)
{
    int rc = DM_OK;

    if (a == NULL || a->nvals == 0) {
        if (c->required) {
            return add_problem(list, n, "missing_required", c->attr,
                               "required attribute has no value");
        }
        return DM_OK;
    }
    if ((c->has & VALUE_CHECKS) == 0) {
        /* only required/unique/pii: values may be binary (jpegPhoto, objectGUID) */
        return DM_OK;
    }
    for (size_t i = 0; i < a->nvals && rc == DM_OK; i++) {
        const char *s = (const char *)a->vals[i].data;
        size_t len = a->vals[i].len, nch = 0;
        int maxb = 0;
        char which[32] = "";

        if (a->nvals > 1) {
            snprintf(which, sizeof(which), "value %zu: ", i + 1);
        }
        if (transform_utf8_len(&nch, &maxb, s, len) != 0) {
            rc = add_problem(list, n, "bad_chars", c->attr, "%snot valid UTF-8", which);
            continue;
        }
        if (c->max_utf8 > 0 && maxb > c->max_utf8) {
            rc = add_problem(list, n, "bad_chars", c->attr,
                             "%shas a character of %d UTF-8 bytes (at most %d allowed)", which,
                             maxb, c->max_utf8);
            if (rc != DM_OK) {
                break;
            }
        }
        if (c->max_length > 0 && nch > c->max_length) {
            rc = add_problem(list, n, "too_long", c->attr, "%s%zu characters, at most %zu", which,
                             nch, c->max_length);
        } else if (nch < c->min_length) {
            rc = add_problem(list, n, "too_short", c->attr, "%s%zu characters, at least %zu", which,
                             nch, c->min_length);
        }
        if (rc == DM_OK && !validate_value_ok(c->type, s, len)) {
            if (c->type == TRANSFORM_T_EMAIL) {
                rc = add_problem(list, n, "invalid_email", c->attr, "%snot a valid email address",
                                 which);
            } else {
                rc = add_problem(list, n, "wrong_type", c->attr, "%snot a valid %s", which,
                                 transform_type_name(c->type));
            }
        }
        if (rc == DM_OK && (c->has & VALIDATE_HAS_PATTERN) && memchr(s, '\0', len) != NULL) {
            rc = add_problem(list, n, "pattern", c->attr, "%scontains a NUL byte", which);
        } else if (rc == DM_OK && (c->has & VALIDATE_HAS_PATTERN)) {
            struct transform_regex_match pm[1];
            int hit = transform_regex_exec(&c->pattern, s, len, 0, 0, pm);

            if (hit < 0) {
                rc = DM_ENOMEM;
            } else if (hit != 0) {
                rc = add_problem(list, n, "pattern", c->attr, "%sdoes not match the pattern %.120s",
                                 which, c->pattern_src);
            }
        }
    }
    return rc;
}
