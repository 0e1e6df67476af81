/*
 * map.h: the attribute-map engine (first version: issue 2; issue 3 extends it).
 *
 * A map is JSON, compiled once by map_compile() and applied per entry by map_apply()
 * without re-parsing. It has one section per object kind ("users", "groups"); each says
 * how to build the target entry's attributes from the source entry:
 *
 *   {
 *     "key": { "source": "entryUUID" },
 *     "users": {
 *       "auto": "by-name",                         copy every source attribute by name
 *       "exclude": ["entryUUID", "pwdHistory"],    ...except these
 *       "objectclasses": { "posixAccount": null, "oldClass": "newClass" },
 *       "attributes": {
 *         "mail":        { "from": "mail", "transforms": ["trim", "lower"] },
 *         "displayName": { "template": "{givenName} {sn}" },
 *         "o":           { "value": "Example Corp" },
 *         "mobile":      { "from": "telephoneNumber" },          rename
 *         "description": { "from": "description", "default": "n/a" },
 *         "street":      null                                     drop
 *       }
 *     },
 *     "groups": { "auto": "by-name" }
 *   }
 *
 * A missing section means {"auto": "by-name"}. Explicit attribute rules override the
 * same-named target attribute of auto-mapping. objectClass values are mapped through
 * "objectclasses" (null drops the class; unlisted classes pass through). Values are binary
 * safe and copied byte-exact unless a transform is named; userPassword is always copied
 * byte-exact (never transformed). Duplicate values produced by a rule are removed.
 * Templates substitute the first value of each {attr}; a rule whose template names an
 * attribute the entry lacks, or whose "from" attribute is absent, produces no value
 * unless "default" is set.
 *
 * Errors at compile time name the map file position (file:line:col) via jsonpos and the
 * key path; errors at apply time name the entry DN and target attribute.
 */
#ifndef DM_MAP_H
#define DM_MAP_H

#include <jansson.h>
#include "agent/util/err.h"
#include "agent/util/jsonpos.h"
#include "schema/entry.h"

enum map_kind { MAP_USERS = 0, MAP_GROUPS = 1 };

struct map;

/* Compiles root (borrowed). origin names the file for messages ("dirmig.json" or the map
 * file path); pos (may be NULL) gives positions, and prefix is the key path of root inside
 * that document ("map" for an inline map in dirmig.json, "" for a map file). Returns a
 * new map; caller frees with map_free(). */
int map_compile(struct map **out, const json_t *root, const char *origin,
                const struct jsonpos *pos, const char *prefix, struct dm_err *err) DM_MUST_USE;

/* Reads and compiles a map file. */
int map_load_file(struct map **out, const char *path, struct dm_err *err) DM_MUST_USE;

/* The default map: both kinds {"auto": "by-name"}, key entryUUID. */
int map_default(struct map **out, struct dm_err *err) DM_MUST_USE;

void map_free(struct map *m); /* NULL-safe */

/* Source correlation attribute ("entryUUID" unless the map says otherwise). Borrowed. */
const char *map_key_attr(const struct map *m);

/* Builds the target entry for src: attributes per the kind's rules, objectClass mapped,
 * dn and key copied from src (the caller rebases the DN). Returns a new entry; caller
 * frees with entry_free(). */
int map_apply(struct entry **out, const struct map *m, enum map_kind kind,
              const struct entry *src, struct dm_err *err) DM_MUST_USE;

#endif
