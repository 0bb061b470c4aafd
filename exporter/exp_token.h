/* exp_token: API tokens, stored only as SHA-256 hashes in the exporter's
 * RocksDB, so a copy of the database gives no usable secret. Lookup of a
 * presented token is one get by its hash; an index by id serves revoke.
 * Private to exporter/. */
#ifndef EXP_TOKEN_H
#define EXP_TOKEN_H
#include "exp_route.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define EXP_TOKEN_HASH_LEN 32
#define EXP_TOKEN_PREFIX "lm_"
#define EXP_TOKEN_SECRET_BYTES 32
#define EXP_TOKEN_ID_BYTES 6
#define EXP_TOKEN_MAX_LEN 256 /* longest presented token we look at */

enum exp_role { EXP_ROLE_NONE, EXP_ROLE_ADMIN, EXP_ROLE_ORG_ADMIN, EXP_ROLE_SERVICE };

struct exp_token_rec {
    char id[EXP_ID_MAX + 1];
    char org[EXP_ORG_MAX + 1];
    enum exp_role role;
    int64_t created_ms;
};

struct exp_tokens;

const char *exp_role_name(enum exp_role role);
/* "org_admin" or "service" (the roles a stored token may have); -1 otherwise. */
int exp_role_parse(const char *name, enum exp_role *out);

/* SHA-256 of the secret's bytes. */
void exp_token_hash(const char *secret, uint8_t out[EXP_TOKEN_HASH_LEN]);
/* n random bytes from getrandom(2), as 2n lowercase hex digits; caller frees. */
char *exp_token_random_hex(size_t n);

/* The token table over an open store (borrowed). */
struct exp_tokens *exp_tokens_new(struct store *st);
void exp_tokens_free(struct exp_tokens **t);
/* Creates and durably stores a token; *secret (caller frees) is shown once.
 * 0, or -1 on a storage error (logged). */
int exp_tokens_create(struct exp_tokens *t, const char *org, enum exp_role role, int64_t now_ms,
                      struct exp_token_rec *rec, char **secret);
/* 1 when secret is a stored token (rec filled), 0 when unknown, -1 on error. */
int exp_tokens_lookup(struct exp_tokens *t, const char *secret, struct exp_token_rec *rec);
/* 1 revoked, 0 no such id, -1 on error. */
int exp_tokens_revoke(struct exp_tokens *t, const char *id);
/* {"tokens":[{id, org, role, created}, ...]} oldest first, never a secret.
 * Damaged records are logged and left out; NULL when a read error cut the
 * scan short (logged). */
json_t *exp_tokens_list(struct exp_tokens *t);

#endif
