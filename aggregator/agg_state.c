/* agg_state: current usage, open sessions, settings, session archive (see
 * agg_state.h). Storage keys:
 *   'O' org                      -> OrgSettings
 *   'H' org 0 user               -> license type held
 *   'P' org 0 session_id         -> SessionRecord (open sessions)
 *   'X' org 0 be64(start) sid    -> SessionRecord (every session, for exports)
 *   'Y' org 0 be64(day) be64(start) sid -> "" for every UTC day d whose
 *                                  midnight d * 86400000 an ended session
 *                                  spans (start < midnight < end)
 * A session's end may still move after it ended (a late activity), so 'Y'
 * entries are written for the latest end each time; a stale one is
 * harmless, as its reader checks the record itself. */
#include "agg_state.h"
#include "hash.h"
#include "hmap.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define AGG_TYPES_MAX 128
#define AGG_KEY_MAX AGG_STATE_KEY_MAX
#define DAY_MS INT64_C(86400000)

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
    struct hmap *sessions; /* session_id -> struct agg_open * */
};

/* An open session, kept packed: it changes with every activity and is
 * read only by queries. */
struct agg_open {
    size_t len;
    uint8_t data[];
};

/* A pending write; key and value live in the state's arena. */
struct agg_write {
    size_t koff, klen, voff, vlen;
    bool del;
    bool fresh; /* the key did not exist before this commit */
    bool skip;  /* a later write of the same key replaces this one */
};

struct agg_state {
    struct hmap *orgs;
    struct agg_write *writes;
    size_t nwrites, capwrites;
    uint8_t *arena; /* the writes' bytes since the last save */
    size_t alen, acap;
    uint32_t *slots; /* save_dirty's key table: write index + 1, 0 empty */
    size_t nslots;
};

static void agg_org_free(void *p)
{
    struct agg_org *o = p;
    free(o->name);
    settings_free(&o->settings);
    for (int i = 0; i < o->ntypes; i++)
        free(o->types[i].name);
    hmap_free(&o->holds, NULL);
    hmap_free(&o->sessions, free);
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
    st->nwrites = 0;
    st->alen = 0;
    if (st->acap > (64u << 20)) { /* a huge catch-up commit: give the memory back */
        free(st->arena);
        st->arena = NULL;
        st->acap = 0;
    }
}

void agg_state_free(struct agg_state **stp)
{
    struct agg_state *st = *stp;
    if (!st)
        return;
    hmap_free(&st->orgs, agg_org_free);
    agg_writes_clear(st);
    free(st->writes);
    free(st->arena);
    free(st->slots);
    free(st);
    *stp = NULL;
}

/* Room for n more bytes in the arena; returns their offset. */
static size_t arena_reserve(struct agg_state *st, size_t n)
{
    if (st->alen + n > st->acap) {
        size_t cap = st->acap ? st->acap : 65536;
        while (cap < st->alen + n)
            cap *= 2;
        st->arena = xrealloc(st->arena, cap);
        st->acap = cap;
    }
    size_t off = st->alen;
    st->alen += n;
    return off;
}

static size_t arena_put(struct agg_state *st, const void *p, size_t n)
{
    size_t off = arena_reserve(st, n);
    if (n)
        memcpy(st->arena + off, p, n);
    return off;
}

static size_t arena_pack(struct agg_state *st, const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    size_t off = arena_reserve(st, *len);
    protobuf_c_message_pack(m, st->arena + off);
    return off;
}

/* Queues a write of the value at voff (or a delete). */
static struct agg_write *agg_write_at(struct agg_state *st, const uint8_t *key, size_t klen,
                                      size_t voff, size_t vlen, bool del)
{
    if (st->nwrites == st->capwrites) {
        st->capwrites = st->capwrites ? st->capwrites * 2 : 256;
        st->writes = xrealloc(st->writes, st->capwrites * sizeof(*st->writes));
    }
    size_t koff = arena_put(st, key, klen);
    struct agg_write *w = &st->writes[st->nwrites++];
    *w = (struct agg_write){.koff = koff, .klen = klen, .voff = voff, .vlen = vlen, .del = del};
    return w;
}

static struct agg_write *agg_write_raw(struct agg_state *st, const uint8_t *key, size_t klen,
                                       const void *val, size_t vlen)
{
    size_t voff = arena_put(st, val, vlen);
    return agg_write_at(st, key, klen, voff, vlen, false);
}

static void agg_write_msg(struct agg_state *st, const uint8_t *key, size_t klen,
                          const ProtobufCMessage *m)
{
    size_t len, off = arena_pack(st, m, &len);
    agg_write_at(st, key, klen, off, len, false);
}

static void agg_write_del(struct agg_state *st, const uint8_t *key, size_t klen)
{
    agg_write_at(st, key, klen, 0, 0, true);
}

static uint64_t key_hash(const uint8_t *k, size_t n)
{
    uint64_t h = hash_fnv1a(HASH_FNV_SEED, k, n);
    return h ^ (h >> 31);
}

/* Marks every write that a later write of the same key replaces; the last
 * write of a key inherits whether the key existed before the commit. */
static void agg_writes_coalesce(struct agg_state *st)
{
    size_t need = 16;
    while (need < st->nwrites * 2)
        need *= 2;
    if (st->nslots < need || st->nslots > 4 * need) {
        free(st->slots);
        st->slots = xmalloc(need * sizeof(*st->slots));
        st->nslots = need;
    }
    memset(st->slots, 0, st->nslots * sizeof(*st->slots));
    size_t mask = st->nslots - 1;
    for (size_t i = 0; i < st->nwrites; i++) {
        struct agg_write *w = &st->writes[i];
        const uint8_t *key = st->arena + w->koff;
        size_t s = key_hash(key, w->klen) & mask;
        for (; st->slots[s]; s = (s + 1) & mask) {
            struct agg_write *p = &st->writes[st->slots[s] - 1];
            if (p->klen == w->klen && !memcmp(st->arena + p->koff, key, w->klen)) {
                p->skip = true;
                w->fresh = p->fresh;
                break;
            }
        }
        st->slots[s] = (uint32_t)(i + 1);
    }
}

void agg_state_save_dirty(struct agg_state *st, agg_put_fn put, void *arg)
{
    /* A commit of a catch-up holds whole sessions: their open record, its
     * updates and the end collapse into one write, and a key created and
     * deleted inside the commit ('P', 'H') is not written at all. */
    agg_writes_coalesce(st);
    for (size_t i = 0; i < st->nwrites; i++) {
        const struct agg_write *w = &st->writes[i];
        if (w->skip || (w->del && w->fresh))
            continue;
        put(arg, st->arena + w->koff, w->klen, w->del ? NULL : st->arena + w->voff, w->vlen);
    }
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
        agg_write_raw(st, key, kl, t->name, strlen(t->name))->fresh = !held;
    } else {
        if (held != t)
            return; /* not held: a repeated release */
        hmap_dels(o->holds, h->user);
        t->in_use--;
        o->in_use_all--;
        agg_write_del(st, key, kl);
    }
    level(arg, o->name, t->name, h->at_ms, t->in_use);
    level(arg, o->name, "all", h->at_ms, o->in_use_all);
}

size_t agg_state_org_prefix(uint8_t *buf, char ns, const char *org)
{
    size_t ol = strlen(org);
    if (ol == 0 || ol > 64)
        return 0;
    buf[0] = (uint8_t)ns;
    memcpy(buf + 1, org, ol);
    buf[1 + ol] = 0;
    return ol + 2;
}

size_t agg_state_archive_key(uint8_t *buf, const char *org, int64_t start_ms, const char *sid,
                             size_t sidlen)
{
    size_t n = agg_state_org_prefix(buf, 'X', org);
    if (!n || n + 8 + sidlen > AGG_KEY_MAX)
        return 0;
    keys_put_i64(buf + n, start_ms);
    memcpy(buf + n + 8, sid, sidlen);
    return n + 8 + sidlen;
}

size_t agg_state_span_key(uint8_t *buf, const char *org, int64_t day, int64_t start_ms,
                          const char *sid, size_t sidlen)
{
    size_t n = agg_state_org_prefix(buf, 'Y', org);
    if (!n || n + 16 + sidlen > AGG_KEY_MAX)
        return 0;
    keys_put_i64(buf + n, day);
    keys_put_i64(buf + n + 8, start_ms);
    memcpy(buf + n + 16, sid, sidlen);
    return n + 16 + sidlen;
}

static int64_t day_floor(int64_t ms)
{
    return ms / DAY_MS - (ms % DAY_MS != 0 && ms < 0);
}

static void agg_session(struct agg_state *st, const Licmon__V1__SessionRecord *r)
{
    struct agg_org *o = agg_org_get(st, r->org, 1);
    uint8_t key[AGG_KEY_MAX];
    size_t kl = key2(key, 'P', r->org, r->session_id);
    size_t sidlen = strlen(r->session_id);
    uint8_t ak[AGG_KEY_MAX];
    size_t al = agg_state_archive_key(ak, r->org, r->start_ms, r->session_id, sidlen);
    if (!kl || !al)
        return;
    size_t len, voff = arena_pack(st, &r->base, &len); /* one packing for 'P', 'X', memory */
    struct agg_open *old = hmap_dels(o->sessions, r->session_id);
    if (r->end_reason == LICMON__V1__END_REASON__OPEN) {
        struct agg_open *cur = xmalloc(sizeof(*cur) + len);
        cur->len = len;
        memcpy(cur->data, st->arena + voff, len);
        hmap_puts(o->sessions, r->session_id, cur);
        agg_write_at(st, key, kl, voff, len, false)->fresh = !old;
    } else if (old) {
        agg_write_del(st, key, kl); /* 'P' exists only while open */
    }
    free(old);
    if (r->end_ms > r->start_ms) {
        /* every UTC midnight strictly inside (start, end) */
        int64_t d = day_floor(r->start_ms) + 1, last = day_floor(r->end_ms - 1);
        if (last - d >= AGG_STATE_SPAN_MAX) {
            log_warn_ctx("org", r->org, "session %s spans %lld days; indexed for the last %d",
                         r->session_id, (long long)(last - d + 1), AGG_STATE_SPAN_MAX);
            d = last - AGG_STATE_SPAN_MAX + 1;
        }
        for (; d <= last; d++) {
            uint8_t yk[AGG_KEY_MAX];
            size_t yl = agg_state_span_key(yk, r->org, d, r->start_ms, r->session_id, sidlen);
            if (yl)
                agg_write_raw(st, yk, yl, "", 0);
        }
    }
    /* the archive row for exports, upserted by (org, start, session_id) */
    agg_write_at(st, ak, al, voff, len, false);
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
    agg_write_msg(st, key, kl, &s->base);
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
        struct agg_open *cur = xmalloc(sizeof(*cur) + vlen);
        cur->len = vlen;
        memcpy(cur->data, val, vlen);
        free(hmap_puts(o->sessions, r->session_id, cur));
        licmon__v1__session_record__free_unpacked(r, NULL);
    } else {
        return 1;
    }
    agg_writes_clear(st); /* what was loaded is already stored */
    return 0;
}

void agg_state_each_settings(const struct agg_state *st,
                             void (*fn)(void *arg, const Licmon__V1__OrgSettings *s), void *arg)
{
    size_t pos = 0, klen;
    const void *k;
    void *v;
    while (hmap_next(st->orgs, &pos, &k, &klen, &v)) {
        const struct agg_org *o = v;
        if (o->settings)
            fn(arg, o->settings);
    }
}

size_t agg_state_orgs(const struct agg_state *st, const char ***orgs)
{
    size_t n = 0, pos = 0, klen;
    const void *k;
    void *v;
    *orgs = xcalloc(hmap_count(st->orgs) + 1, sizeof(**orgs));
    while (hmap_next(st->orgs, &pos, &k, &klen, &v))
        (*orgs)[n++] = ((const struct agg_org *)v)->name;
    return n;
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
                         Licmon__V1__SessionRecord ***out)
{
    struct agg_org *o = hmap_gets(st->orgs, org);
    *out = NULL;
    if (!o)
        return 0;
    size_t n = 0, pos = 0, klen;
    const void *k;
    void *v;
    *out = xcalloc(hmap_count(o->sessions) + 1, sizeof(**out));
    while (hmap_next(o->sessions, &pos, &k, &klen, &v)) {
        const struct agg_open *cur = v;
        Licmon__V1__SessionRecord *r =
            licmon__v1__session_record__unpack(NULL, cur->len, cur->data);
        if (r) /* packed by us from a record that was read: always readable */
            (*out)[n++] = r;
    }
    return n;
}

void agg_state_records_free(Licmon__V1__SessionRecord **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        licmon__v1__session_record__free_unpacked(v[i], NULL);
    free(v);
}
