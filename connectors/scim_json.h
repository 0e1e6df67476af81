/*
 * connectors/scim_json.h: SCIM resources (RFC 7643) and mapped entries, both ways, as the
 * provider's /Schemas describe its attributes: a mapped attribute name is a SCIM path
 * ("userName", "name.givenName", "emails", an extension attribute by its name or its full
 * URN) and its values become JSON of the attribute's type; a resource read back becomes an
 * entry with the same names, so that what the map asks and what the target holds compare.
 * Used by connectors/scim.c.
 */
#ifndef DM_SCIM_JSON_H
#define DM_SCIM_JSON_H

#include <jansson.h>
#include "connectors/connector.h"

#define SCIM_USER_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_GROUP_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCIM_MAX_ATTRS 96
#define SCIM_MAX_EXT 4

/* One User attribute, as /Schemas describes it. */
struct scim_attr {
    char name[64];
    char type[16]; /* string, boolean, integer, decimal, complex, reference, dateTime... */
    int multi;
    int has_value;   /* complex with a "value" sub-attribute */
    int has_primary; /* complex with a "primary" sub-attribute */
    int ext;         /* index of the extension + 1, 0 = core */
};

/* What discovery found: the User attributes, the User schema extensions, and how many
 * members one request carries. Filled by the connector's open(). */
struct scim_schema {
    struct scim_attr attrs[SCIM_MAX_ATTRS];
    size_t nattrs;
    char ext[SCIM_MAX_EXT][128]; /* extension URNs */
    size_t next;
    size_t chunk; /* member_chunk */
};

/* Where a mapped attribute goes: the extension URN ("" = core), the attribute's path inside
 * it, and its description (NULL when the schema does not know it: sent as strings). */
struct scim_where {
    const char *urn;
    char path[128];
    const struct scim_attr *a;
};

/* The attribute named name (case-insensitive), or NULL. Borrowed. */
const struct scim_attr *scim_attr_of(const struct scim_schema *s, const char *name);

/* Where attribute name goes ("employeeNumber": the extension that has it). */
void scim_where_of(const struct scim_schema *s, const char *name, struct scim_where *w);

/* The JSON of a's values for w: an array for a multi-valued attribute (objects {"value"}
 * for a complex one, the first "primary"), else the first value typed. New, or NULL (no
 * value, ENOMEM, or a value that is not UTF-8 text). */
json_t *scim_value_of(const struct scim_where *w, const struct dm_attr *a);

/* Sets w's attribute of res to v (stolen; NULL removes it). 0, or -1 on ENOMEM. */
int scim_set_path(json_t *res, const struct scim_where *w, json_t *v);

/* Member objects {"value": id} of a's values [from, to). New, or NULL on ENOMEM. */
json_t *scim_members_of(const struct dm_attr *a, size_t from, size_t to);

/* A new resource for a create (a group's members: the first s->chunk; the account state the
 * change asks for as "active"). NULL with err when a value cannot be sent. */
json_t *scim_resource_of(const struct scim_schema *s, const struct change *ch, struct dm_err *err);

/* A resource read back as an entry: DN = userName / displayName, key = id, attributes by
 * the map's names, a group's members as "member", users' dirmigAccountState from active.
 * New (entry_free()), or NULL (no id, ENOMEM). */
struct entry *scim_entry_of(const struct scim_schema *s, json_t *res, enum obj_kind kind);

#endif
