/*
 * connectors/auth0.h: an Auth0 database connection as a target, through the Management
 * API's bulk user import (POST /api/v2/jobs/users-imports), connector type "auth0".
 *
 * Users only (Auth0 database connections hold no groups: CONN_GROUPS is not set). A user is
 * named by its "email" (CONN_IDENT_KEY); Auth0 assigns the user_id the journal keeps. The
 * mapped entry's attributes are the import schema's fields: email, email_verified and
 * blocked ("true"/"false"), username, given_name, family_name, name, nickname, picture.
 *
 * open() checks the token and the connection (GET /api/v2/connections/{connection_id}).
 * apply() turns the batch into import files: a JSON array of users, each file below
 * target.max_file_bytes (Auth0 takes 500 KB), sent as multipart/form-data to
 * POST /api/v2/jobs/users-imports with upsert (target.upsert, default true: a rerun or a
 * create resent after a crash updates instead of failing) and send_completion_email false;
 * at most two jobs at a time (Auth0's limit per tenant; a 429 waits), each polled with
 * GET /api/v2/jobs/{id} until it is completed or failed; the job's error report
 * (GET /api/v2/jobs/{id}/errors) fails exactly the users it names, with Auth0's error codes
 * and paths (never the hash); every other user is looked up by email afterwards for its
 * user_id. A failed job fails the users of its file. Disable imports blocked: true; delete
 * is DELETE /api/v2/users/{id}.
 *
 * Credentials go as custom_password_hash at create (connectors/auth0_cred.h). A user whose
 * scheme Auth0 cannot check is not imported (CONN_LAZY_CREATE): Auth0 creates it at its
 * first sign-in through the custom-database Login script, which asks dirmig's hook
 * (contrib/auth0/). An attribute the source dropped cannot be removed through an import:
 * such an update fails for that user, naming the attribute.
 */
#ifndef DM_AUTH0_H
#define DM_AUTH0_H

#include "connectors/connector.h"

extern const struct conn_ops conn_auth0_ops;

#endif
