/* agg_state: current usage, open sessions, settings, session archive (see
 * agg_state.h). Storage keys:
 *   'O' org                      -> OrgSettings
 *   'H' org 0 user               -> license type held
 *   'P' org 0 session_id         -> SessionRecord (open sessions)
 *   'X' org 0 be64(start) sid    -> SessionRecord (every session, for exports) */
#include "agg_state.h"
#include "hmap.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define AGG_TYPES_MAX 128
#define AGG_KEY_MAX 600

const char agg_state_namespaces[] = {'O', 'H', 'P', 0};

struct agg_type {
    char *name;
    int64_t in_use;
};

struct agg_org {
    char *name;
    Licmon__V1__OrgSettings *settings;
    struct agg_type types[AGG_TYPES_MAX];
    int ntypes;
    int64_t in_use_all;
    struct hmap *holds;    /* user -> struct agg_type * */
    struct hmap *sessions; /* session_id -> SessionRecord * (open) */
};

struct agg_write {
    uint8_t *key;
    size_t klen;
    uint8_t *val; /* NULL: delete */
    size_t vlen;
};

struct agg_state {
    struct hmap *orgs;
    struct agg_write *writes;
    size_t nwrites, capwrites;
};

static void agg_record_free(void *p)
{
    licmon__v1__session_record__free_unpacked(p, NULL);
}

static void agg_org_free(void *p)
{
    struct agg_org *o = p;
    free(o->name);
    settings_free(&o->settings);
    for (int i = 0; i < o->ntypes; i++)
        free(o->types[i].name);
    hmap_free(&o->holds, NULL);
    hmap_free(&o->sessions, agg_record_free);
    free(o);
}

struct agg_state *agg_state_new(void)
{
    struct agg_state *st = xcalloc(1, sizeof(*st));
    st->orgs = hmap_new();
    return st;
}

static void agg_writes_clear(struct agg_state *st)
{
    for (size_t i = 0; i < st->nwrites; i++) {
        free(st->writes[i].key);
        free(st->writes[i].val);
    }
    st->nwrites = 0;
}

void agg_state_free(struct agg_state **stp)
{
    struct agg_state *st = *stp;
    if (!st)
        return;
    hmap_free(&st->orgs, agg_org_free);
    agg_writes_clear(st);
    free(st->writes);
    free(st);
    *stp = NULL;
}

static void agg_write(struct agg_state *st, const uint8_t *key, size_t klen,
                      const ProtobufCMessage *m, const void *raw, size_t rawlen)
{
    if (st->nwrites == st->capwrites) {
        st->capwrites = st->capwrites ? st->capwrites * 2 : 256;
        st->writes = xrealloc(st->writes, st->capwrites * sizeof(*st->writes));
    }
    struct agg_write *w = &st->writes[st->nwrites++];
    w->key = xmemdup(key, klen);
    w->klen = klen;
    w->val = NULL;
    w->vlen = 0;
    if (m)
        w->val = pb_pack(m, &w->vlen);
    else if (raw) {
        w->val = xmemdup(raw, rawlen);
        w->vlen = rawlen;
    }
}

void agg_state_save_dirty(struct agg_state *st, agg_put_fn put, void *arg)
{
    for (size_t i = 0; i < st->nwrites; i++)
        put(arg, st->writes[i].key, st->writes[i].klen, st->writes[i].val, st->writes[i].vlen);
    agg_writes_clear(st);
}

static struct agg_org *agg_org_get(struct agg_state *st, const char *org, int create)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    if (o || !create)
        return o;
    o = xcalloc(1, sizeof(*o));
    o->name = xstrdup(org);
    o->holds = hmap_new();
    o->sessions = hmap_new();
    hmap_puts(st->orgs, org, o);
    return o;
}

static struct agg_type *agg_type_get(struct agg_org *o, const char *type)
{
    for (int i = 0; i < o->ntypes; i++)
        if (!strcmp(o->types[i].name, type))
            return &o->types[i];
    if (o->ntypes >= AGG_TYPES_MAX) {
        log_warn_ctx("org", o->name, "more than %d license types; '%s' is not counted",
                     AGG_TYPES_MAX, type);
        return NULL;
    }
    o->types[o->ntypes].name = xstrdup(type);
    o->types[o->ntypes].in_use = 0;
    return &o->types[o->ntypes++];
}

static size_t key2(uint8_t *buf, char ns, const char *a, const char *b)
{
    const char *parts[] = {a, b};
    return keys_make(buf, AGG_KEY_MAX, ns, parts, b ? 2 : 1);
}

static void agg_hold(struct agg_state *st, const Licmon__V1__HoldChange *h, agg_level_fn level,
                     void *arg)
{
    struct agg_org *o = agg_org_get(st, h->org, 1);
    struct agg_type *held = hmap_gets(o->holds, h->user);
    struct agg_type *t = agg_type_get(o, h->license_type);
    uint8_t key[AGG_KEY_MAX];
    size_t kl = key2(key, 'H', h->org, h->user);
    if (!t || !kl)
        return;
    if (h->acquired) {
        if (held == t)
            return; /* already held: nothing changes */
        if (held) { /* the sessionizer releases before a switch; stay exact anyway */
            held->in_use--;
            o->in_use_all--;
            level(arg, o->name, held->name, h->at_ms, held->in_use);
        }
        hmap_puts(o->holds, h->user, t);
        t->in_use++;
        o->in_use_all++;
        agg_write(st, key, kl, NULL, t->name, strlen(t->name));
    } else {
        if (held != t)
            return; /* not held: a repeated release */
        hmap_dels(o->holds, h->user);
        t->in_use--;
        o->in_use_all--;
        agg_write(st, key, kl, NULL, NULL, 0);
    }
    level(arg, o->name, t->name, h->at_ms, t->in_use);
    level(arg, o->name, "all", h->at_ms, o->in_use_all);
}

static void agg_session(struct agg_state *st, const Licmon__V1__SessionRecord *r)
{
    struct agg_org *o = agg_org_get(st, r->org, 1);
    uint8_t key[AGG_KEY_MAX];
    size_t kl = key2(key, 'P', r->org, r->session_id);
    if (!kl)
        return;
    Licmon__V1__SessionRecord *old = hmap_dels(o->sessions, r->session_id);
    if (old)
        licmon__v1__session_record__free_unpacked(old, NULL);
    if (r->end_reason == LICMON__V1__END_REASON__OPEN) {
        size_t len;
        uint8_t *buf = pb_pack(&r->base, &len);
        hmap_puts(o->sessions, r->session_id, licmon__v1__session_record__unpack(NULL, len, buf));
        free(buf);
        agg_write(st, key, kl, &r->base, NULL, 0);
    } else {
        agg_write(st, key, kl, NULL, NULL, 0);
    }
    /* the archive row for exports, upserted by (org, start, session_id) */
    uint8_t ak[AGG_KEY_MAX];
    const char *parts[] = {r->org};
    size_t al = keys_make(ak, AGG_KEY_MAX - 9 - strlen(r->session_id), 'X', parts, 1);
    if (!al)
        return;
    ak[al++] = 0;
    keys_put_i64(ak + al, r->start_ms);
    al += 8;
    memcpy(ak + al, r->session_id, strlen(r->session_id));
    al += strlen(r->session_id);
    agg_write(st, ak, al, &r->base, NULL, 0);
}

static void agg_settings(struct agg_state *st, const Licmon__V1__OrgSettings *s)
{
    if (!settings_valid_org(s->org))
        return;
    struct agg_org *o = agg_org_get(st, s->org, 1);
    settings_free(&o->settings);
    o->settings = settings_copy(s);
    for (size_t i = 0; i < s->n_licenses; i++)
        agg_type_get(o, s->licenses[i]->type);
    uint8_t key[AGG_KEY_MAX];
    size_t kl = key2(key, 'O', s->org, NULL);
    agg_write(st, key, kl, &s->base, NULL, 0);
}

void agg_state_apply(struct agg_state *st, const Licmon__V1__Change *c, agg_level_fn level,
                     void *arg)
{
    switch (c->body_case) {
    case LICMON__V1__CHANGE__BODY_HOLD:
        agg_hold(st, c->hold, level, arg);
        break;
    case LICMON__V1__CHANGE__BODY_SESSION:
        agg_session(st, c->session);
        break;
    case LICMON__V1__CHANGE__BODY_SETTINGS:
        agg_settings(st, c->settings);
        break;
    default:
        break;
    }
}

int agg_state_load(struct agg_state *st, const void *key, size_t klen, const void *val, size_t vlen)
{
    const char *k = key;
    if (klen < 2)
        return 1;
    const char *sep = memchr(k + 1, 0, klen - 1);
    if (k[0] == 'O') {
        Licmon__V1__OrgSettings *s = licmon__v1__org_settings__unpack(NULL, vlen, val);
        if (!s)
            return -1;
        agg_settings(st, s);
        settings_free(&s);
    } else if (k[0] == 'H' && sep) {
        char *org = xstrndup(k + 1, (size_t)(sep - k - 1));
        char *user = xstrndup(sep + 1, klen - (size_t)(sep - k) - 1);
        char *type = xstrndup(val, vlen);
        struct agg_org *o = agg_org_get(st, org, 1);
        struct agg_type *t = agg_type_get(o, type);
        if (t && !hmap_gets(o->holds, user)) {
            hmap_puts(o->holds, user, t);
            t->in_use++;
            o->in_use_all++;
        }
        free(org), free(user), free(type);
    } else if (k[0] == 'P') {
        Licmon__V1__SessionRecord *r = licmon__v1__session_record__unpack(NULL, vlen, val);
        if (!r)
            return -1;
        struct agg_org *o = agg_org_get(st, r->org, 1);
        Licmon__V1__SessionRecord *old = hmap_puts(o->sessions, r->session_id, r);
        if (old)
            licmon__v1__session_record__free_unpacked(old, NULL);
    } else {
        return 1;
    }
    agg_writes_clear(st); /* what was loaded is already stored */
    return 0;
}

const Licmon__V1__OrgSettings *agg_state_settings(const struct agg_state *st, const char *org)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    return o ? o->settings : NULL;
}

int64_t agg_state_in_use(const struct agg_state *st, const char *org, const char *type)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    if (!o)
        return 0;
    if (!strcmp(type, "all"))
        return o->in_use_all;
    for (int i = 0; i < o->ntypes; i++)
        if (!strcmp(o->types[i].name, type))
            return o->types[i].in_use;
    return 0;
}

size_t agg_state_types(const struct agg_state *st, const char *org, const char ***types)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    *types = NULL;
    if (!o)
        return 0;
    *types = xcalloc((size_t)o->ntypes + 1, sizeof(char *));
    for (int i = 0; i < o->ntypes; i++)
        (*types)[i] = o->types[i].name;
    return (size_t)o->ntypes;
}

size_t agg_state_current(const struct agg_state *st, const char *org,
                         const Licmon__V1__SessionRecord ***out)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    *out = NULL;
    if (!o)
        return 0;
    size_t n = 0, pos = 0, klen;
    const void *k;
    void *v;
    *out = xcalloc(hmap_count(o->sessions) + 1, sizeof(**out));
    while (hmap_next(o->sessions, &pos, &k, &klen, &v))
        (*out)[n++] = v;
    return n;
}
