/*
 * connectors/ldap_verify.h: checks a username and password against the source directory
 * for the password-import hook (agent/hook.h), from many threads at once.
 *
 * A verifier holds two pools of LDAP connections to the source: search connections bound
 * as the configured service account (conn_cfg bind_dn), which map the username to exactly
 * one entry, and separate bind connections, on which the password is tried with a simple
 * bind as that entry's DN. Keeping the user binds off the search connections means a
 * user's bind never changes the identity the searches run as. Connections are opened
 * lazily, dropped when they fail or time out, and reopened by the next request, so the
 * verifier survives the source going down and coming back without a restart.
 *
 * Every call takes an absolute deadline (monotonic milliseconds, ldap_verify_now_ms()):
 * waiting for a pooled connection, connecting (network timeout) and each operation are
 * bounded by the time left, and a call that runs out answers LDAP_VERIFY_SOURCE_ERROR.
 *
 * Call order: ldap_verify_new() (from the main thread, before worker threads start:
 * libldap's global initialisation must not race) -> ldap_verify_password() /
 * ldap_verify_ping() from any thread -> ldap_verify_free() when no call is running.
 * No libldap type appears here: the agent above it does not see LDAP.
 */
#ifndef DM_LDAP_VERIFY_H
#define DM_LDAP_VERIFY_H

#include <stddef.h>
#include "agent/util/err.h"
#include "connectors/connector.h"

struct ldap_verify;

struct ldap_verify_cfg {
    const struct conn_cfg *conn;    /* the source; borrowed, must outlive the verifier */
    const char *search_base;        /* where users are searched */
    const char *filter;             /* ANDed with the login match; NULL = none */
    const char *const *login_attrs; /* NULL-terminated; matched with equality */
    const char *dn_template;        /* "uid={login},ou=people,..." instead of a search;
                                     * NULL = search */
    int pool_size;                  /* connections per pool (>= 1) */
};

enum ldap_verify_result {
    LDAP_VERIFY_OK = 0,       /* the bind as the user's DN succeeded */
    LDAP_VERIFY_WRONG,        /* the directory refused the password (49, 53...) */
    LDAP_VERIFY_UNKNOWN,      /* no entry matches the username */
    LDAP_VERIFY_AMBIGUOUS,    /* more than one entry matches */
    LDAP_VERIFY_INVALID,      /* refused before any LDAP traffic (empty password, NUL) */
    LDAP_VERIFY_SOURCE_ERROR, /* unreachable, timed out, or an unexpected LDAP error */
};

/*
 * Why a directory refused a bind, where it says so. Active Directory puts a Windows code
 * in the diagnostic text of result 49 ("80090308: LdapErr: DSID-..., comment:
 * AcceptSecurityContext error, data 52e, v4563", as Windows and Samba write it). For
 * LDAP_VERIFY_WRONG (and LDAP_VERIFY_UNKNOWN from code 525) ldap_verify_password() puts
 * the reason's name in err->msg with err->rc DM_EAUTH and err->ldap_rc 49; a refusal
 * without a known code leaves err->msg empty. None of these is ever a verified sign-in.
 */
enum ldap_verify_reason {
    LDAP_VERIFY_R_NONE = 0,
    LDAP_VERIFY_R_WRONG_PASSWORD,       /* 52e */
    LDAP_VERIFY_R_NO_SUCH_USER,         /* 525 */
    LDAP_VERIFY_R_LOGON_HOURS,          /* 530 */
    LDAP_VERIFY_R_WORKSTATION,          /* 531 */
    LDAP_VERIFY_R_PASSWORD_EXPIRED,     /* 532 */
    LDAP_VERIFY_R_ACCOUNT_DISABLED,     /* 533 */
    LDAP_VERIFY_R_ACCOUNT_EXPIRED,      /* 701 */
    LDAP_VERIFY_R_MUST_CHANGE_PASSWORD, /* 773 */
    LDAP_VERIFY_R_ACCOUNT_LOCKED,       /* 775 */
    LDAP_VERIFY_R_OTHER,                /* another AD data code */
    LDAP_VERIFY_R__LAST
};

/* Finds "data <hex>" in an AD bind diagnostic (NULL-safe). R_NONE when there is none. */
enum ldap_verify_reason ldap_verify_ad_reason(const char *diag);

/* Stable name of a reason ("account_disabled", ...; "" for R_NONE). */
const char *ldap_verify_reason_name(enum ldap_verify_reason r);

/* The reason whose name is s, or R_NONE. */
enum ldap_verify_reason ldap_verify_reason_from_name(const char *s);

/* Short stable name of a result ("verified", "wrong_password", ...). */
const char *ldap_verify_result_name(enum ldap_verify_result r);

/* Monotonic clock in milliseconds, the time base of the deadlines below. */
long long ldap_verify_now_ms(void);

/* Returns a new verifier (no connection is opened yet); free with ldap_verify_free().
 * cfg and everything it points to are borrowed. */
int ldap_verify_new(struct ldap_verify **out, const struct ldap_verify_cfg *cfg,
                    struct dm_err *err) DM_MUST_USE;

/*
 * Verifies login (login_len bytes, NUL-terminated) with the password pw (pw_len bytes).
 * An empty login or password, or one containing a NUL byte, is LDAP_VERIFY_INVALID without
 * any LDAP traffic (RFC 4513 §5.1.2: a DN with an empty password is an anonymous bind that
 * some servers answer with success). The login is RFC 4515-escaped in the search filter or
 * RFC 4514-escaped in the DN template. The user's DN, when known (found by the search or
 * built from the template), is copied to dn_out (dn_len bytes; may be NULL), else "". For
 * LDAP_VERIFY_SOURCE_ERROR (and AMBIGUOUS) err says why; it never contains the password.
 * Thread-safe.
 */
enum ldap_verify_result ldap_verify_password(char *dn_out, size_t dn_len, struct ldap_verify *v,
                                             const char *login, size_t login_len, const char *pw,
                                             size_t pw_len, long long deadline_ms,
                                             struct dm_err *err);

/* Reads the source's root DSE on a search connection: DM_OK when the source answers and
 * the service bind works, else DM_EUNAVAIL / DM_EAUTH with err. Thread-safe. */
int ldap_verify_ping(struct ldap_verify *v, long long deadline_ms, struct dm_err *err);

/* Escapes value for use as an RFC 4514 attribute value (the {login} of a DN template).
 * Returns the length written (excluding the NUL), or -1 when out is too small. */
int ldap_verify_escape_dn_value(char *out, size_t outlen, const char *value, size_t len);

/* Closes every pooled connection and frees v. NULL-safe. */
void ldap_verify_free(struct ldap_verify *v);

#endif
