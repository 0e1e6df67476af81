#include <config.h>
#include "agent/redact.h"
#include "agent/util/html.h"
#include <ctype.h>
#include <string.h>

/* Appends value v (n bytes) masked: its first character and "***". A first character
 * that is a DN escape or quote would show nothing useful and is left out. */
static int mask_value(struct buf *b, const char *v, size_t n)
{
    unsigned long cp;
    size_t k;
    int rc;

    if (n == 0) {
        return DM_OK;
    }
    k = html_utf8_seq((const unsigned char *)v, &cp);
    if (k == 0 || k > n || cp == '\\' || cp == '"' || cp == '#' || cp < 0x20) {
        return buf_puts(b, "***");
    }
    rc = buf_append(b, v, k);
    return rc != DM_OK ? rc : buf_puts(b, "***");
}

/* End of the attribute value that starts at p: the first ',', '+' or ';' outside a
 * backslash escape or a quoted string (RFC 4514 and the quotes of RFC 1779). */
static const char *value_end(const char *p)
{
    int quoted = 0;

    for (; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (!quoted && (*p == ',' || *p == '+' || *p == ';')) {
            break;
        }
    }
    return p;
}

/* 1 when the n bytes at s are an attribute type: a name (a letter, then letters, digits
 * and hyphens) or an OID (RFC 4512 descr / numericoid), blanks around it allowed. */
static int is_attr_type(const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n && s[i] == ' ') {
        i++;
    }
    while (n > i && s[n - 1] == ' ') {
        n--;
    }
    if (i == n) {
        return 0;
    }
    if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) {
        for (j = i; j < n; j++) {
            char c = s[j];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-')) {
                return 0;
            }
        }
        return 1;
    }
    for (j = i; j < n; j++) {
        if (!((s[j] >= '0' && s[j] <= '9') || (s[j] == '.' && j > i && s[j - 1] != '.'))) {
            return 0;
        }
    }
    return s[n - 1] != '.';
}

int redact_identity(struct buf *b, const char *s)
{
    const char *p = s, *eq, *end;
    int rc;

    if (s == NULL || s[0] == '\0') {
        return DM_OK;
    }
    /* The first RDN: each attribute=value of it (several with '+'), values masked. Text
     * that does not start like a DN is one value. */
    for (;;) {
        eq = strchr(p, '=');
        if (eq == NULL || !is_attr_type(p, (size_t)(eq - p))) {
            return mask_value(b, p, strlen(p));
        }
        end = value_end(eq + 1);
        rc = buf_append(b, p, (size_t)(eq + 1 - p));
        if (rc == DM_OK) {
            rc = mask_value(b, eq + 1, (size_t)(end - eq - 1));
        }
        if (rc == DM_OK && *end == '+') {
            rc = buf_puts(b, "+");
        }
        if (rc != DM_OK) {
            return rc;
        }
        if (*end != '+') {
            break;
        }
        p = end + 1;
    }
    return buf_puts(b, end);
}

/* The value of the first attribute of dn's first RDN, as written (escapes kept). */
static const char *leaf_value(const char *dn, size_t *len)
{
    const char *eq = dn != NULL ? strchr(dn, '=') : NULL;

    if (eq == NULL || !is_attr_type(dn, (size_t)(eq - dn))) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)(value_end(eq + 1) - eq - 1);
    return eq + 1;
}

/* End of the RDN that starts at p (all its attribute=value pairs). */
static const char *rdn_end(const char *p)
{
    const char *end = p, *eq;

    for (;;) {
        eq = strchr(end, '=');
        if (eq == NULL) {
            return end + strlen(end);
        }
        end = value_end(eq + 1);
        if (*end != '+') {
            return end;
        }
        end++;
    }
}

/* End of the DN that starts at p: RDNs as long as a ',' is followed by type=value. */
static const char *dn_end(const char *p)
{
    const char *end = rdn_end(p), *eq;

    while (*end == ',') {
        eq = strchr(end + 1, '=');
        if (eq == NULL || !is_attr_type(end + 1, (size_t)(eq - end - 1))) {
            break;
        }
        end = rdn_end(end + 1);
    }
    return end;
}

/* 1 when a DN of at least two RDNs starts at p ("uid=x,ou=people,..."): p is not inside a
 * word, and an attribute type and '=' start the text and follow the first RDN's end. */
static int dn_starts(const char *msg, const char *p)
{
    const char *eq = strchr(p, '='), *end, *eq2;

    if (p > msg && (isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '.')) {
        return 0;
    }
    if (eq == NULL || eq == p || !is_attr_type(p, (size_t)(eq - p)) || p[0] == ' ') {
        return 0;
    }
    end = value_end(eq + 1);
    if (*end != ',' && *end != '+') {
        return 0;
    }
    eq2 = strchr(end + 1, '=');
    return eq2 != NULL && is_attr_type(end + 1, (size_t)(eq2 - end - 1));
}

int redact_text(struct buf *b, const char *msg, const char *key, const char *dn)
{
    size_t dnlen = dn != NULL ? strlen(dn) : 0, keylen = key != NULL ? strlen(key) : 0, leaflen;
    const char *leaf = leaf_value(dn, &leaflen), *p = msg != NULL ? msg : "";
    int rc = DM_OK;

    while (*p != '\0' && rc == DM_OK) {
        if (dnlen >= 3 && strncmp(p, dn, dnlen) == 0) {
            rc = redact_identity(b, dn);
            p += dnlen;
        } else if (keylen >= 3 && strncmp(p, key, keylen) == 0) {
            rc = redact_identity(b, key);
            p += keylen;
        } else if (leaflen >= 3 && strncmp(p, leaf, leaflen) == 0) {
            rc = mask_value(b, leaf, leaflen);
            p += leaflen;
        } else if (strncmp(p, "dn=\"", 4) == 0) {
            /* dm_err_format() quotes the entry's DN as dn="..."; mask whatever it names. */
            const char *q = p + 4;
            struct buf one;
            while (*q != '\0' && *q != '"') {
                q += q[0] == '\\' && q[1] != '\0' ? 2 : 1;
            }
            buf_init(&one, 4096);
            rc = buf_append(&one, p + 4, (size_t)(q - p - 4));
            if (rc == DM_OK) {
                rc = buf_puts(b, "dn=\"");
            }
            if (rc == DM_OK) {
                rc = redact_identity(b, one.data != NULL ? one.data : "");
            }
            buf_free(&one);
            p = q;
        } else if (dn_starts(msg, p)) {
            /* Any other DN named in the message (a member, a parent): its first RDN. */
            const char *end = dn_end(p);
            struct buf one;
            buf_init(&one, 4096);
            rc = buf_append(&one, p, (size_t)(end - p));
            if (rc == DM_OK) {
                rc = redact_identity(b, one.data);
            }
            buf_free(&one);
            p = end;
        } else {
            rc = buf_append(b, p, 1);
            p++;
        }
    }
    return rc;
}
