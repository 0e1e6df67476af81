/*
 * connectors/okta.h: the Okta-style Users/Groups API as a target (/api/v1/users and
 * /api/v1/groups, SSWS token), registered as connector type "okta".
 *
 * The connector names objects by natural key (CONN_IDENT_KEY): the target assigns ids
 * ("00u...", "00g...") and the pipeline keeps them in the journal as the object's target
 * reference. Members are user ids (CONN_MEMBERS_REF); groups hold no groups. What becomes
 * of each password scheme is connectors/okta_cred.h. A change's entry carries the mapped
 * profile (attribute = profile property; one value = a string, several = an array) and its
 * "DN" is the natural key (the login of a user, the name of a group). Group entries carry
 * their members as "member" values holding user ids.
 *
 * apply(), per change, all changes of a batch in flight at once on the shared HTTP client
 * (connectors/http.h: N transfers, retries with backoff, the rate governor):
 *   user, no id known   POST /api/v1/users?activate=<cfg> with the profile and either the
 *                       imported hash (schema/cred.h) or the password-import hook; a login
 *                       that exists already (E0000001, e.g. after a create whose answer was
 *                       lost) is looked up by login and updated if its profile differs
 *   user, id known      POST /api/v1/users/{id} (partial profile update); 404 -> create
 *   group               found by id, else by exact name (search), else created; its profile
 *                       replaced (PUT) when it differs; members listed (Link paging) and
 *                       made equal with PUT/DELETE /api/v1/groups/{gid}/users/{uid}
 *   DISABLE             users: deactivate (DEPROVISIONED); groups: refused
 *   DELETE              users: deactivate, then delete; groups: delete
 * Credentials are sent only on create (Okta refuses hash updates on active users). The
 * token, hashes and request bodies are never logged; bodies are wiped after sending.
 *
 * read() lists the users (GET /api/v1/users, all Link pages; like that call it leaves out
 * DEPROVISIONED users); find() reads one user by login or one group by name with its
 * members.
 *
 * A create whose answer was lost and whose retry meets E0000001 is reported CREATED (with the
 * credential kind sent) when the user's "created" time is after the job started (a minute of
 * clock skew allowed); a login that existed before is matched and reported UNCHANGED or
 * UPDATED. Known limit: libcurl silently resends a request once when a reused connection
 * dies before any answer; a user created by such a lost first send counts as UNCHANGED.
 */
#ifndef DM_OKTA_H
#define DM_OKTA_H

#include "connectors/connector.h"

extern const struct conn_ops conn_okta_ops;

/* Percent-encodes s for a URL path segment or query value (RFC 3986 unreserved kept).
 * Returns a new string (free()) or NULL on allocation failure. */
char *okta_url_escape(const char *s);

#endif
