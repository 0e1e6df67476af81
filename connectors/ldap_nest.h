/*
 * connectors/ldap_nest.h: groups.nesting "flatten" for a plain LDAP source (the AD dialect
 * has its own, connectors/ad.h). Each group read gets, in place of its member values, every
 * transitive member that is not a group, and nested groups leave the member list.
 *
 * The walk is client-side and cycle-safe, like AD's: which DNs are groups is learnt once
 * per read by one paged search of the whole base for group entries (groupOfNames,
 * groupOfUniqueNames, groupOfMembers; DNs only, kept as a set of normalized DNs: memory
 * grows with the number of groups, not of users); then, per group read, the member lists
 * of the nested groups it reaches are read one base search each, every group once, so a
 * cycle (g1 in g2 in g1) ends. Leaves are members that are not in the set, kept as the
 * server wrote them, duplicates removed. A group keeps its membership attribute: member
 * for groupOfNames, uniqueMember for groupOfUniqueNames (whose "#'...'B" uid suffix is
 * ignored when deciding what a value names).
 *
 * Extra searches run on the session of the read, while its paged search is open. Call
 * order: ldap_nest_new -> ldap_nest_flatten per entry -> ldap_nest_free.
 */
#ifndef DM_LDAP_NEST_H
#define DM_LDAP_NEST_H

#include "connectors/ldap_common.h"

struct ldap_nest;

/* 1 when cfg asks for flattening on a plain LDAP endpoint. */
int ldap_nest_wanted(const struct conn_cfg *cfg);

/* Prepares flattening for one read on sess (borrowed; outlives the nest). The group set is
 * read at the first group entry. Free with ldap_nest_free(). */
int ldap_nest_new(struct ldap_nest **out, struct ldap_common_sess *sess,
                  struct dm_err *err) DM_MUST_USE;
void ldap_nest_free(struct ldap_nest *n); /* NULL-safe */

/* Flattens e in place when it is a group (has member or uniqueMember values); other
 * entries are left alone. Errors name the entry. */
int ldap_nest_flatten(struct ldap_nest *n, struct entry *e, struct dm_err *err) DM_MUST_USE;

#endif
