/*
 * connectors/ldap_verify.h: checks a username and password against the source directory
 * for the password-import hook (agent/hook.h), from many threads at once.
 *
 * A verifier holds two pools of LDAP connections to the source: search connections bound
 * as the configured service account (conn_cfg bind_dn), which map the username to exactly
 * one account, and separate bind connections, on which the password is tried with a simple
 * bind as that account's DN. Keeping the user binds off the search connections means a
 * user's bind never changes the identity the searches run as. Connections are opened
 * lazily, dropped when they fail or time out, and reopened by the next request, so the
 * verifier survives the source going down and coming back without a restart.
 *
 * A verification is two calls, so that the caller (agent/hook_core.c) can apply the
 * failure budget of the ACCOUNT, not of the string typed: ldap_verify_resolve() maps the
 * login to one account the way the directory compares it (the server's matching rules:
 * case, insignificant spaces; uid or mail alike) and returns its identity (objectGUID,
 * entryUUID or normalised DN) and what the directory says about its state (disabled,
 * expired, locked, lock-marker password, failed binds so far); a name that resolves to no
 * usable account never reaches ldap_verify_bind().
 *
 * Every call takes an absolute deadline (monotonic milliseconds, ldap_verify_now_ms()):
 * waiting for a pooled connection, connecting (network timeout) and each operation are
 * bounded by the time left, and a call that runs out answers LDAP_VERIFY_SOURCE_ERROR.
 *
 * Call order: ldap_verify_new() (from the main thread, before worker threads start:
 * libldap's global initialisation must not race) -> ldap_verify_policy() (the source's
 * lockout policy) -> ldap_verify_resolve() / ldap_verify_bind() / ldap_verify_ping() from
 * any thread -> ldap_verify_free() when no call is running. No libldap type appears here:
 * the agent above it does not see LDAP.
 */
#ifndef DM_LDAP_VERIFY_H
#define DM_LDAP_VERIFY_H

#include <stddef.h>
#include "agent/util/err.h"
#include "connectors/connector.h"

#define LDAP_VERIFY_MAX_DN 1024
#define LDAP_VERIFY_MAX_ID 96

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
    LDAP_VERIFY_OK = 0,       /* resolve: one usable account; bind: the bind succeeded */
    LDAP_VERIFY_WRONG,        /* the directory refused the password (49, 53...) */
    LDAP_VERIFY_UNKNOWN,      /* no entry matches the username */
    LDAP_VERIFY_AMBIGUOUS,    /* more than one entry matches */
    LDAP_VERIFY_INVALID,      /* refused before any LDAP traffic (empty password, NUL) */
    LDAP_VERIFY_SOURCE_ERROR, /* unreachable, timed out, or an unexpected LDAP error */
    LDAP_VERIFY_INELIGIBLE,   /* resolve: the account exists but cannot verify; the
                               * account's reason says why (never bound) */
};

/*
 * Why a directory refused a bind, or why an account cannot verify. Active Directory puts a
 * Windows code in the diagnostic text of result 49 ("80090308: LdapErr: DSID-..., comment:
 * AcceptSecurityContext error, data 52e, v4563", as Windows and Samba write it). For
 * LDAP_VERIFY_WRONG (and LDAP_VERIFY_UNKNOWN from code 525) ldap_verify_bind() puts the
 * reason's name in err->msg with err->rc DM_EAUTH and err->ldap_rc 49; a refusal without a
 * known code leaves err->msg empty. The reasons after R_OTHER come from the account's
 * attributes, before any bind. None of these is ever a verified sign-in.
 */
enum ldap_verify_reason {
    LDAP_VERIFY_R_NONE = 0,
    LDAP_VERIFY_R_WRONG_PASSWORD,       /* 52e */
    LDAP_VERIFY_R_NO_SUCH_USER,         /* 525 */
    LDAP_VERIFY_R_LOGON_HOURS,          /* 530 */
    LDAP_VERIFY_R_WORKSTATION,          /* 531 */
    LDAP_VERIFY_R_PASSWORD_EXPIRED,     /* 532 */
    LDAP_VERIFY_R_ACCOUNT_DISABLED,     /* 533; AD userAccountControl 0x2 */
    LDAP_VERIFY_R_ACCOUNT_EXPIRED,      /* 701; AD accountExpires in the past */
    LDAP_VERIFY_R_MUST_CHANGE_PASSWORD, /* 773; AD pwdLastSet 0; ppolicy pwdReset TRUE */
    LDAP_VERIFY_R_ACCOUNT_LOCKED,       /* 775; AD lockout; ppolicy pwdAccountLockedTime */
    LDAP_VERIFY_R_OTHER,                /* another AD data code */
    LDAP_VERIFY_R_OUT_OF_SCOPE,         /* in the directory, not under the search base or
                                         * not matching the users filter */
    LDAP_VERIFY_R_NO_PASSWORD,          /* userPassword is a lock marker or placeholder
                                         * ("*", "!!", "{CRYPT}!...", empty;
                                         * schema/cred.h) */
    LDAP_VERIFY_R_RECENT_CHANGE,        /* (hook) password changed inside the DC's
                                         * old-password window */
    LDAP_VERIFY_R__LAST
};

/* What the source says about one account; no secret in it. */
struct ldap_verify_account {
    char dn[LDAP_VERIFY_MAX_DN];   /* as the server returned it */
    char id[LDAP_VERIFY_MAX_ID];   /* stable identity for budgets: "guid:<hex objectGUID>",
                                    * "uuid:<entryUUID>" or "dn:<normalised DN>" */
    enum ldap_verify_reason state; /* R_NONE = usable; else why it cannot verify */
    int failures;                  /* failed binds the source counts now (ppolicy pwdFailureTime
                                    * values in pwdFailureCountInterval, AD badPwdCount inside
                                    * lockOutObservationWindow); -1 = not readable */
    long long pwd_changed;         /* unix seconds of the last password change (AD pwdLastSet;
                                    * OpenLDAP has no old-password window); 0 = unknown */
    int password_read;             /* userPassword was readable (the lock-marker check ran) */
};

/* The source's lockout policy (ldap_verify_policy()). */
struct ldap_verify_policy {
    int known;            /* 1 once read (even when the source has no lockout) */
    int threshold;        /* failed binds that lock an account; 0 = no lockout */
    long long duration_s; /* how long a lockout lasts; 0 = until an administrator */
    long long window_s;   /* failures older than this are forgotten; 0 = never */
    char where[192];      /* what was read, for messages: "pwdMaxFailure of cn=...",
                           * "lockoutThreshold of DC=..." */
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
 * Reads the source's lockout policy and naming context on a search connection, once
 * (later calls return what was read): ppolicy pwdPolicy entries in the naming context that
 * holds the search base (the lowest pwdMaxFailure among those with pwdLockout TRUE, with
 * its pwdLockoutDuration and pwdFailureCountInterval), or for AD the domain's
 * lockoutThreshold, lockoutDuration and lockOutObservationWindow (and any lower
 * msDS-LockoutThreshold of a fine-grained password policy the account can read). *out is
 * filled on DM_OK; DM_EUNAVAIL when the source does not answer (try again later).
 * Thread-safe.
 */
int ldap_verify_policy(struct ldap_verify_policy *out, struct ldap_verify *v, long long deadline_ms,
                       struct dm_err *err) DM_MUST_USE;

/*
 * Maps login (login_len bytes, no NUL) to one account. With a DN template the login's
 * leading, trailing and repeated spaces are dropped (RFC 4518 insignificant space handling,
 * as the directory compares uid) before it is RFC 4514-escaped into the DN, and the entry is
 * read; else the search filter is built with the login RFC 4515-escaped. Results:
 *   OK          exactly one usable account in scope; *out filled
 *   INELIGIBLE  the account exists but cannot verify: out->state says why (disabled,
 *               expired, locked, must change its password, lock-marker userPassword, or
 *               out of scope: found in the directory outside the search base or filter)
 *   UNKNOWN, AMBIGUOUS, INVALID, SOURCE_ERROR (err says why; never the password)
 * Thread-safe.
 */
enum ldap_verify_result ldap_verify_resolve(struct ldap_verify_account *out, struct ldap_verify *v,
                                            const char *login, size_t login_len,
                                            long long deadline_ms, struct dm_err *err);

/* Tries the password (pw_len bytes) with a simple bind as a->dn on a bind connection. An
 * empty password or one with a NUL byte is LDAP_VERIFY_INVALID without any LDAP traffic
 * (RFC 4513 §5.1.2: a DN with an empty password is an anonymous bind that some servers
 * answer with success). OK, WRONG (reason in err as above), UNKNOWN (525, 32),
 * SOURCE_ERROR. Thread-safe. */
enum ldap_verify_result ldap_verify_bind(struct ldap_verify *v, const struct ldap_verify_account *a,
                                         const char *pw, size_t pw_len, long long deadline_ms,
                                         struct dm_err *err);

/* Reads the source's root DSE on a search connection: DM_OK when the source answers and
 * the service bind works, else DM_EUNAVAIL / DM_EAUTH with err. Thread-safe. */
int ldap_verify_ping(struct ldap_verify *v, long long deadline_ms, struct dm_err *err);

/* Escapes value for use as an RFC 4514 attribute value (the {login} of a DN template).
 * Returns the length written (excluding the NUL), or -1 when out is too small. */
int ldap_verify_escape_dn_value(char *out, size_t outlen, const char *value, size_t len);

/* Copies login without leading, trailing or repeated spaces (RFC 4518 §2.6.1) into out
 * (outlen bytes); returns the length, or -1 when out is too small. */
int ldap_verify_squeeze_spaces(char *out, size_t outlen, const char *login, size_t len);

/* Closes every pooled connection and frees v. NULL-safe. */
void ldap_verify_free(struct ldap_verify *v);

#endif
