/* exp_auth: the administrator token, bearer tokens and the access rules
 * (see exp_auth.h). Secrets are compared only as SHA-256 hashes, in
 * constant time, and never logged. */
#include "exp_auth.h"
#include "log.h"
#include "xmem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_FILE_MAX 1024

static char *auth_trim(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* 1 read (token in *out), 0 no such file, -1 error (logged). */
static int auth_read_token(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        log_warn("cannot read the admin token file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[AUTH_FILE_MAX + 1];
    ssize_t n = read(fd, buf, AUTH_FILE_MAX);
    int err = errno;
    close(fd);
    if (n < 0) {
        log_warn("cannot read the admin token file %s: %s", path, strerror(err));
        return -1;
    }
    buf[n] = '\0';
    char *tok = auth_trim(buf);
    if (strlen(tok) < 16 || strlen(tok) > EXP_TOKEN_MAX_LEN) {
        log_warn("the admin token file %s does not hold a token of 16 to %d characters on its "
                 "first line",
                 path, EXP_TOKEN_MAX_LEN);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    *out = xstrdup(tok);
    explicit_bzero(buf, sizeof(buf));
    return 1;
}

char *exp_auth_admin_token(const char *path)
{
    char *tok = NULL;
    int rc = auth_read_token(path, &tok);
    if (rc > 0)
        return tok;
    if (rc < 0)
        return NULL;
    tok = exp_token_random_hex(EXP_TOKEN_SECRET_BYTES);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* someone else wrote it just now: theirs wins */
        free(tok);
        tok = NULL;
        return auth_read_token(path, &tok) > 0 ? tok : NULL;
    }
    if (fd < 0) {
        log_warn("cannot create the admin token file %s: %s", path, strerror(errno));
        free(tok);
        return NULL;
    }
    char *line = xasprintf("%s\n", tok);
    size_t len = strlen(line);
    bool ok = write(fd, line, len) == (ssize_t)len && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    explicit_bzero(line, len);
    free(line);
    if (!ok) {
        log_warn("cannot write the admin token file %s: %s", path, strerror(err));
        unlink(path);
        free(tok);
        return NULL;
    }
    log_info("wrote a new admin token to %s", path);
    return tok;
}

void exp_auth_init(struct exp_auth *a, const char *admin_token, struct exp_tokens *tokens)
{
    exp_token_hash(admin_token, a->admin_hash);
    a->tokens = tokens;
}

const char *exp_auth_bearer(const char *header, size_t *len)
{
    if (!header || strncasecmp(header, "Bearer", 6) || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = 0;
    while (t[n] > ' ' && t[n] < 0x7f)
        n++;
    for (size_t i = n; t[i]; i++)
        if (t[i] != ' ' && t[i] != '\t')
            return NULL; /* more than one word */
    if (n == 0 || n > EXP_TOKEN_MAX_LEN)
        return NULL;
    *len = n;
    return t;
}

int exp_auth_identify(const struct exp_auth *a, const char *header, struct exp_principal *p)
{
    memset(p, 0, sizeof(*p));
    p->role = EXP_ROLE_NONE;
    size_t len;
    const char *t = exp_auth_bearer(header, &len);
    if (!t)
        return 0;
    char tok[EXP_TOKEN_MAX_LEN + 1];
    memcpy(tok, t, len);
    tok[len] = '\0';
    uint8_t hash[EXP_TOKEN_HASH_LEN];
    exp_token_hash(tok, hash);
    if (CRYPTO_memcmp(hash, a->admin_hash, sizeof(hash)) == 0) {
        p->role = EXP_ROLE_ADMIN;
        snprintf(p->id, sizeof(p->id), "admin");
        explicit_bzero(tok, sizeof(tok));
        return 0;
    }
    struct exp_token_rec rec;
    int rc = a->tokens ? exp_tokens_lookup(a->tokens, tok, &rec) : 0;
    explicit_bzero(tok, sizeof(tok));
    if (rc < 0)
        return -1;
    if (rc > 0) {
        p->role = rec.role;
        snprintf(p->org, sizeof(p->org), "%s", rec.org);
        snprintf(p->id, sizeof(p->id), "%s", rec.id);
    }
    return 0;
}

int exp_auth_decide(const struct exp_principal *p, const struct exp_route *r)
{
    switch (p->role) {
    case EXP_ROLE_ADMIN:
        return 0;
    case EXP_ROLE_ORG_ADMIN:
    case EXP_ROLE_SERVICE:
        break;
    default:
        return 401;
    }
    if (r->kind == EXP_ROUTE_TOKENS || r->kind == EXP_ROUTE_TOKEN)
        return 403;
    if (r->kind == EXP_ROUTE_ORGS) /* a read; exp_auth_org_scope narrows the list */
        return r->write ? 403 : 0;
    if (!r->has_org || strcmp(r->org, p->org) != 0)
        return 404;
    if (r->write && p->role != EXP_ROLE_ORG_ADMIN)
        return 403;
    return 0;
}

enum exp_org_scope exp_auth_org_scope(const struct exp_principal *p)
{
    switch (p->role) {
    case EXP_ROLE_ADMIN:
        return EXP_SCOPE_ALL;
    case EXP_ROLE_ORG_ADMIN:
    case EXP_ROLE_SERVICE:
        return p->org[0] ? EXP_SCOPE_OWN : EXP_SCOPE_NONE;
    default:
        return EXP_SCOPE_NONE;
    }
}
