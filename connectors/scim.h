/*
 * connectors/scim.h: a SCIM 2.0 service provider as a target (RFC 7643 schema, RFC 7644
 * protocol), connector type "scim".
 *
 * open() authenticates with the bearer token and reads the discovery endpoints, which
 * decide what is used:
 *   /ServiceProviderConfig  patch.supported (PATCH, else PUT of the whole resource),
 *                           filter.supported (required: objects are found by
 *                           filter=userName eq "..."), filter.maxResults (page size),
 *                           etag.supported (If-Match with meta.version on every write, a 412
 *                           re-reads and retries), bulk (read and reported, not used: one
 *                           request per change keeps a failure to its own object)
 *   /ResourceTypes          the Users and Groups endpoints and their schema extensions
 *   /Schemas                each attribute's type, multi-valuedness and sub-attributes
 *
 * Objects are named by a natural key (CONN_IDENT_KEY): a user by "userName", a group by
 * "displayName"; the provider assigns the id the journal keeps. The mapped entry's attribute
 * names are SCIM attribute paths: "userName", "displayName", "active" (boolean: "true" or
 * "false"), "name.givenName" (a sub-attribute), "emails" (a multi-valued complex attribute:
 * each value becomes {"value": v}, the first one "primary"), "externalId", and the
 * attributes of a schema extension by their name when the core schema lacks it
 * ("employeeNumber", "department" go to the enterprise extension) or by their full URN
 * ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"). A group's
 * "member" values are the members' ids (CONN_MEMBERS_REF; groups may hold groups).
 *
 * apply(), every change of a batch in flight at once on the shared HTTP client (429 with
 * Retry-After and 5xx retried with backoff, the rate governor), each a small state machine:
 *   create   POST; a group's members beyond member_chunk follow in PATCH "add" chunks. A
 *            409 (uniqueness) is looked up by filter: our own create whose answer was lost
 *            (the request was resent and the object was created after the job started) is
 *            ours and completed; anything else is APPLY_EXISTS, never taken over
 *   modify   GET by id, then PATCH of the attributes that differ (replace, or remove when
 *            the source no longer has them; merge attributes only add), members added and
 *            removed in chunks of member_chunk values ("add" with a value list, "remove"
 *            with members[value eq "..."]); nothing differs: UNCHANGED, nothing sent
 *   disable  PATCH replace active false;  delete  DELETE
 * SCIM carries no password hashes: a cleartext source password is sent as "password" at
 * create; every other user is created without one and signs in through the hook's generic
 * endpoint (created_with_hook). Bad answers (not JSON, no id, an error body) fail the object
 * with the provider's status, scimType and detail; nothing is guessed.
 */
#ifndef DM_SCIM_H
#define DM_SCIM_H

#include "connectors/connector.h"

extern const struct conn_ops conn_scim_ops;

#endif
