#include <config.h>
#include "schema/cred.h"
#include <string.h>
#include <strings.h>

/*
 * userPassword scheme classification. The value is only looked at, never copied, logged or
 * returned: the result is always one of the static names below.
 *
 * Tag detection follows OpenLDAP's lutil_passwd(): a value is "tagged" when it starts
 * with '{' and has a '}' at least two bytes later; anything else (including "{}" and a
 * '{' without '}') is compared as cleartext by slapd, so it is CLEARTEXT here. Tags are
 * matched case-insensitively (lutil uses strncasecmp). A stored "{CLEARTEXT}x" is an
 * unknown scheme for slapd (contracts/ldap-ad.md §3.1), hence UNKNOWN.
 */

static const struct {
    const char *tag;  /* between the braces */
    const char *name; /* returned name */
} tags[] = {
    {"SSHA", "SSHA"},
    {"SHA", "SHA"},
    {"SSHA256", "SSHA256"},
    {"SSHA384", "SSHA384"},
    {"SSHA512", "SSHA512"},
    {"SHA256", "SHA256"},
    {"SHA384", "SHA384"},
    {"SHA512", "SHA512"},
    {"MD5", "MD5"},
    {"SMD5", "SMD5"},
    {"PBKDF2", "PBKDF2"},
    {"PBKDF2-SHA1", "PBKDF2-SHA1"},
    {"PBKDF2-SHA256", "PBKDF2-SHA256"},
    {"PBKDF2-SHA512", "PBKDF2-SHA512"},
    {"ARGON2", "ARGON2"},
};

/* True when p (n bytes) starts with prefix. */
static int has_prefix(const unsigned char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);

    return n >= k && memcmp(p, prefix, k) == 0;
}

/* Characters of the crypt(3) "./0-9A-Za-z" alphabet. */
static int is_crypt64(unsigned char c)
{
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* {CRYPT} payload: libxcrypt prefixes (crypt(5)). */
static const char *crypt_scheme(const unsigned char *p, size_t n)
{
    size_t i;

    if (has_prefix(p, n, "$1$")) {
        return "CRYPT-MD5";
    }
    if (has_prefix(p, n, "$5$")) {
        return "CRYPT-SHA256";
    }
    if (has_prefix(p, n, "$6$")) {
        return "CRYPT-SHA512";
    }
    if (has_prefix(p, n, "$2a$") || has_prefix(p, n, "$2b$") || has_prefix(p, n, "$2y$")) {
        return "CRYPT-BCRYPT";
    }
    if (has_prefix(p, n, "$y$")) {
        return "CRYPT-YESCRYPT";
    }
    if (has_prefix(p, n, "$7$")) {
        return "CRYPT-SCRYPT";
    }
    /* Traditional DES: 2 salt characters plus 11 hash characters. */
    if (n == 13) {
        for (i = 0; i < n && is_crypt64(p[i]); i++) {
        }
        if (i == n) {
            return "CRYPT-DES";
        }
    }
    return "CRYPT-OTHER";
}

const char *cred_scheme(const unsigned char *v, size_t len)
{
    const unsigned char *close;
    size_t taglen;

    if (v == NULL || len < 3 || v[0] != '{') {
        return "CLEARTEXT";
    }
    close = memchr(v + 1, '}', len - 1);
    if (close == NULL || close < v + 2) {
        return "CLEARTEXT";
    }
    taglen = (size_t)(close - v - 1);
    if (taglen == 5 && strncasecmp((const char *)v + 1, "CRYPT", 5) == 0) {
        return crypt_scheme(close + 1, len - taglen - 2);
    }
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (strlen(tags[i].tag) == taglen &&
            strncasecmp((const char *)v + 1, tags[i].tag, taglen) == 0) {
            return tags[i].name;
        }
    }
    return "UNKNOWN";
}
