/* exp_auth: who is calling and what they may do. The administrator token
 * (from --admin-token-file) may do everything; stored tokens belong to one
 * org with a role. The decision is a pure function of the caller and the
 * route, so unit tests can walk every role x method x org.
 * Private to exporter/. */
#ifndef EXP_AUTH_H
#define EXP_AUTH_H
#include "exp_route.h"
#include "exp_token.h"

#include <stdbool.h>
#include <stdint.h>

struct exp_principal {
    enum exp_role role; /* EXP_ROLE_NONE: no or an unknown token */
    char org[EXP_ORG_MAX + 1];
    char id[EXP_ID_MAX + 1]; /* token id, "admin" for the administrator */
};

struct exp_auth {
    uint8_t admin_hash[EXP_TOKEN_HASH_LEN];
    struct exp_tokens *tokens; /* borrowed */
};

/* Reads the administrator token from the first line of path (trimmed);
 * when the file does not exist, writes a new random one there (mode 0600).
 * Returns the token (caller frees) or NULL with a logged reason. */
char *exp_auth_admin_token(const char *path);

void exp_auth_init(struct exp_auth *a, const char *admin_token, struct exp_tokens *tokens);
/* The token of an "Authorization: Bearer TOKEN" header value; NULL when the
 * header is missing or not a bearer token of sane length. Points into header. */
const char *exp_auth_bearer(const char *header, size_t *len);
/* Identifies the caller from the Authorization header (may be NULL).
 * 0, or -1 when the token table could not be read. */
int exp_auth_identify(const struct exp_auth *a, const char *header, struct exp_principal *p);
/* May p do what r asks? 0 yes; else the status to answer: 401 (no valid
 * token), 404 (another org: the same answer as an org that does not exist),
 * 403 (known org, but the role may not do that). r must have matched. */
int exp_auth_decide(const struct exp_principal *p, const struct exp_route *r);

/* Which orgs GET /v1/orgs lists for p: every org the aggregator knows (the
 * administrator), exactly p's own org (an org_admin or service token: the
 * aggregator is not asked, so no other org's name can leak), or none (no
 * valid token). */
enum exp_org_scope { EXP_SCOPE_NONE, EXP_SCOPE_ALL, EXP_SCOPE_OWN };
enum exp_org_scope exp_auth_org_scope(const struct exp_principal *p);

#endif
