/*
 * undo.h: what undoes each change a run applies (the undo store of agent/state.h, read back
 * by agent/rollback.h).
 *
 * A connector with CONN_UNDO hands back two images per change (connectors/connector.h,
 * apply_result.before and .after). undo_record() keeps, in the undo store, what rollback
 * needs of them: the operation (created, modified, moved, disabled, deleted), the object's
 * references, the before image (serialised, credentials included: the reason the store is
 * a file of its own, mode 0600), the names of the attributes the change touched, a digest
 * of those attributes after the change, and the journal row as it was before the change.
 * Rollback later reads the object at the target, computes undo_digest() over the same
 * names and refuses the object when the digest differs: it changed since the run.
 *
 * The digest leaves out the DN (a keyed target names an object by its id) and password
 * attributes (a server may store a password otherwise than it was written, e.g. hashed);
 * DN-valued attributes are compared normalised, objectClass case-insensitively, every other
 * value byte for byte.
 *
 * Images are serialised in a length-prefixed binary form, not JSON: values are binary and
 * may be secret, and every buffer that held one is wiped.
 */
#ifndef DM_UNDO_H
#define DM_UNDO_H

#include <stddef.h>
#include "agent/state.h"
#include "agent/util/err.h"
#include "connectors/connector.h"
#include "schema/entry.h"

/* Operations of the undo store (state_undo.op). */
#define UNDO_CREATED "created"
#define UNDO_MODIFIED "modified"
#define UNDO_MOVED "moved"
#define UNDO_DISABLED "disabled"
#define UNDO_DELETED "deleted"

/* One change a run applied. Everything is borrowed. */
struct undo_change {
    long long run;
    const char *wave;      /* the run's --wave, or NULL */
    const char *kind;      /* user, group, container, unmatched */
    const char *key;       /* the journal's key (unmatched: the target reference) */
    const char *source_dn; /* may be NULL */
    const struct change *change;
    const struct apply_result *result;
    const struct state_object *row_before; /* the journal row before the change, or NULL */
    const char *row_json;                  /* ... or already as undo_row_encode() gives it */
    const char *const *dn_attrs;           /* DN-valued attributes (NULL-terminated) */
};

/* Records u in the undo store (inside the caller's batch). A change that wrote nothing
 * (failed, unchanged without an image) is not recorded. */
int undo_record(struct state *s, const struct undo_change *u, struct dm_err *err) DM_MUST_USE;

/* Frees a result's images (NULL-safe, sets them NULL). */
void undo_images_free(struct apply_result *r);

/* The serialised form of an image (a new buffer, wipe with explicit_bzero before free()),
 * and back (a new entry; DM_EINVAL for a damaged record). */
int undo_image_encode(unsigned char **out, size_t *len, const struct entry *img) DM_MUST_USE;
int undo_image_decode(struct entry **out, const unsigned char *data, size_t len,
                      struct dm_err *err) DM_MUST_USE;

/* A journal row as JSON text (new string) and back (strings new, clear with
 * state_object_clear()). */
char *undo_row_encode(const struct state_object *o);
int undo_row_decode(struct state_object *out, const char *json, struct dm_err *err) DM_MUST_USE;

/* The digest of e's attributes named in names (comma-separated), as described above. */
void undo_digest(char hex[65], const struct entry *e, const char *names,
                 const char *const *dn_attrs);

/* The names of the attributes of img (pseudo attributes left out), comma-separated; a new
 * string ("" when none), NULL on ENOMEM. */
char *undo_names(const struct entry *img);

#endif
