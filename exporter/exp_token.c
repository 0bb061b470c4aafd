/* exp_token: the token table (see exp_token.h). Keys:
 *   'T' + SHA-256(secret)          -> {"id","org","role","created_ms"} (JSON)
 *   'S' "token_id" 0x00 + id       -> SHA-256(secret)   (index for revoke)
 * Both are written in one synced batch. A record read back is validated
 * before it grants anything: a damaged record denies, it never widens. */
#include "exp_token.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_INDEX "token_id"
#define TOKEN_KEY_MAX (1 + sizeof(TOKEN_INDEX) + EXP_ID_MAX)

struct exp_tokens {
    struct store *st;
};

const char *exp_role_name(enum exp_role role)
{
    switch (role) {
    case EXP_ROLE_ADMIN:
        return "admin";
    case EXP_ROLE_ORG_ADMIN:
        return "org_admin";
    case EXP_ROLE_SERVICE:
        return "service";
    default:
        return "none";
    }
}

int exp_role_parse(const char *name, enum exp_role *out)
{
    if (!strcmp(name, "org_admin"))
        *out = EXP_ROLE_ORG_ADMIN;
    else if (!strcmp(name, "service"))
        *out = EXP_ROLE_SERVICE;
    else
        return -1;
    return 0;
}

void exp_token_hash(const char *secret, uint8_t out[EXP_TOKEN_HASH_LEN])
{
    unsigned len = 0;
    if (!EVP_Digest(secret, strlen(secret), out, &len, EVP_sha256(), NULL) ||
        len != EXP_TOKEN_HASH_LEN)
        log_fatal("SHA-256 is not available from libcrypto");
}

char *exp_token_random_hex(size_t n)
{
    char *hex = xmalloc(2 * n + 1);
    xrandom_hex(hex, n);
    return hex;
}

struct exp_tokens *exp_tokens_new(struct store *st)
{
    struct exp_tokens *t = xcalloc(1, sizeof(*t));
    t->st = st;
    return t;
}

void exp_tokens_free(struct exp_tokens **t)
{
    free(*t);
    *t = NULL;
}

static size_t token_hash_key(uint8_t key[1 + EXP_TOKEN_HASH_LEN], const uint8_t *hash)
{
    key[0] = KEY_NS_TOKEN;
    memcpy(key + 1, hash, EXP_TOKEN_HASH_LEN);
    return 1 + EXP_TOKEN_HASH_LEN;
}

static size_t token_id_key(uint8_t key[TOKEN_KEY_MAX], const char *id)
{
    const char *parts[] = {TOKEN_INDEX, id};
    return keys_make(key, TOKEN_KEY_MAX, KEY_NS_STATE, parts, 2);
}

static char *token_rec_encode(const struct exp_token_rec *rec, size_t *len)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "id", rec->id, "org", rec->org, "role",
                          exp_role_name(rec->role), "created_ms", (json_int_t)rec->created_ms);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text) /* only out of memory: our fields are validated ASCII */
        log_fatal("out of memory encoding a token record");
    *len = strlen(text); /* cppcheck-suppress nullPointerRedundantCheck ; log_fatal exits */
    return text;
}

/* 0 and rec filled, or -1 when the stored bytes are not a valid record. */
static int token_rec_decode(const char *data, size_t len, struct exp_token_rec *rec)
{
    json_error_t jerr;
    json_t *o = json_loadb(data, len, 0, &jerr);
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *org = json_string_value(json_object_get(o, "org"));
    const char *role = json_string_value(json_object_get(o, "role"));
    json_t *created = json_object_get(o, "created_ms");
    int rc = -1;
    if (id && org && role && json_is_integer(created) && exp_route_valid_id(id) &&
        strlen(org) <= EXP_ORG_MAX && settings_valid_org(org) &&
        exp_role_parse(role, &rec->role) == 0) {
        snprintf(rec->id, sizeof(rec->id), "%s", id);
        snprintf(rec->org, sizeof(rec->org), "%s", org);
        rec->created_ms = json_integer_value(created);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int exp_tokens_create(struct exp_tokens *t, const char *org, enum exp_role role, int64_t now_ms,
                      struct exp_token_rec *rec, char **secret)
{
    uint8_t idkey[TOKEN_KEY_MAX];
    size_t idlen = 0;
    memset(rec, 0, sizeof(*rec));
    /* a fresh id; 48 random bits make a clash rare, checking makes it impossible */
    for (int tries = 0;; tries++) {
        char *id = exp_token_random_hex(EXP_TOKEN_ID_BYTES);
        snprintf(rec->id, sizeof(rec->id), "%s", id);
        free(id);
        idlen = token_id_key(idkey, rec->id);
        char *old = NULL;
        size_t oldlen;
        int rc = store_get(t->st, idkey, idlen, &old, &oldlen);
        free(old);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (tries > 8)
            log_panic("token ids keep clashing: getrandom is broken");
    }
    snprintf(rec->org, sizeof(rec->org), "%s", org);
    rec->role = role;
    rec->created_ms = now_ms;
    char *hex = exp_token_random_hex(EXP_TOKEN_SECRET_BYTES);
    char *s = xasprintf(EXP_TOKEN_PREFIX "%s", hex);
    explicit_bzero(hex, strlen(hex));
    free(hex);
    uint8_t hash[EXP_TOKEN_HASH_LEN], hkey[1 + EXP_TOKEN_HASH_LEN];
    exp_token_hash(s, hash);
    size_t vlen;
    char *val = token_rec_encode(rec, &vlen);
    struct store_batch *b = store_batch_new();
    store_batch_put(b, hkey, token_hash_key(hkey, hash), val, vlen);
    store_batch_put(b, idkey, idlen, hash, sizeof(hash));
    int rc = store_write(t->st, b, true);
    store_batch_free(&b);
    free(val);
    if (rc != 0) {
        explicit_bzero(s, strlen(s));
        free(s);
        return -1;
    }
    *secret = s;
    return 0;
}

int exp_tokens_lookup(struct exp_tokens *t, const char *secret, struct exp_token_rec *rec)
{
    uint8_t hash[EXP_TOKEN_HASH_LEN], key[1 + EXP_TOKEN_HASH_LEN];
    exp_token_hash(secret, hash);
    char *val = NULL;
    size_t vlen;
    int rc = store_get(t->st, key, token_hash_key(key, hash), &val, &vlen);
    if (rc <= 0)
        return rc;
    rc = token_rec_decode(val, vlen, rec);
    free(val);
    if (rc != 0) {
        log_warn("a stored token record is damaged; the token is refused");
        return 0;
    }
    return 1;
}

int exp_tokens_revoke(struct exp_tokens *t, const char *id)
{
    uint8_t idkey[TOKEN_KEY_MAX];
    size_t idlen = token_id_key(idkey, id);
    if (idlen == 0)
        return 0;
    char *hash = NULL;
    size_t hlen;
    int rc = store_get(t->st, idkey, idlen, &hash, &hlen);
    if (rc <= 0)
        return rc;
    struct store_batch *b = store_batch_new();
    if (hlen == EXP_TOKEN_HASH_LEN) {
        uint8_t hkey[1 + EXP_TOKEN_HASH_LEN];
        store_batch_del(b, hkey, token_hash_key(hkey, (const uint8_t *)hash));
    }
    store_batch_del(b, idkey, idlen);
    rc = store_write(t->st, b, true);
    store_batch_free(&b);
    free(hash);
    return rc == 0 ? 1 : -1;
}

static int token_rec_cmp(const void *a, const void *b)
{
    const struct exp_token_rec *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

json_t *exp_tokens_list(struct exp_tokens *t)
{
    size_t n = 0, cap = 16;
    struct exp_token_rec *recs = xmalloc(cap * sizeof(*recs));
    struct store_iter *it = store_iter_ns(t->st, KEY_NS_TOKEN);
    for (; store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        store_iter_key(it, &kl);
        const char *v = store_iter_value(it, &vl);
        if (kl != 1 + EXP_TOKEN_HASH_LEN || token_rec_decode(v, vl, &recs[n]) != 0) {
            log_warn("skipping a damaged token record");
            continue;
        }
        if (++n == cap) {
            cap *= 2;
            recs = xrealloc(recs, cap * sizeof(*recs));
        }
    }
    int rc = store_iter_status(it);
    store_iter_free(&it);
    if (rc < 0) { /* a list cut short would show revoked what is not */
        free(recs);
        return NULL;
    }
    qsort(recs, n, sizeof(*recs), token_rec_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char created[40];
        time_format_rfc3339(recs[i].created_ms, created, sizeof(created));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "id", recs[i].id, "org",
                                             recs[i].org, "role", exp_role_name(recs[i].role),
                                             "created", created));
    }
    free(recs);
    return json_pack("{s:o}", "tokens", arr);
}
