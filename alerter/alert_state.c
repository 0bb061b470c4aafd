/* alert_state: settings, levels, episodes and expiry stages per org (see
 * alert_state.h). Storage keys:
 *   'O' org            -> OrgSettings (packed)
 *   'S' org 0 type     -> be64 in_use, be64 at_ms, u8 fired[, be64 clear]
 *                         (clear: the clear level of the episode, 0 unknown;
 *                         absent in states written before it)
 *   'E' org 0 type     -> u8 (stage sent + 1), expiry date the stage belongs to
 * The 'S' keys change only while applying usage updates and the 'E' keys
 * only in the expiry check, so the two callers' batches never overlap. */
#include "alert_state.h"
#include "alert_rules.h"
#include "hmap.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define ALERT_TYPES_MAX 128
#define ALERT_KEY_MAX 128
#define ALERT_DATE_LEN 10

const char alert_state_namespaces[] = {'O', 'S', 'E', 0};

struct alert_type {
    char *name;
    int64_t in_use, at_ms;
    bool fired;
    int64_t clear; /* the clear level while fired, 0 unknown */
    bool dirty_level;
    char expires[ALERT_DATE_LEN + 1]; /* the date exp_sent belongs to */
    int exp_sent;                     /* highest reminder stage sent, -1 none */
    bool dirty_expiry;
};

struct alert_org {
    char *name;
    Licmon__V1__OrgSettings *settings; /* NULL until the first settings */
    bool dirty_settings;
    bool dirty; /* on the state's dirty list */
    struct alert_type *types;
    int ntypes, captypes;
};

struct alert_state {
    struct hmap *orgs;
    struct alert_org **dirty;
    size_t ndirty, capdirty;
};

static void alert_org_free(void *p)
{
    struct alert_org *o = p;
    free(o->name);
    settings_free(&o->settings);
    for (int i = 0; i < o->ntypes; i++)
        free(o->types[i].name);
    free(o->types);
    free(o);
}

struct alert_state *alert_state_new(void)
{
    struct alert_state *st = xcalloc(1, sizeof(*st));
    st->orgs = hmap_new();
    return st;
}

void alert_state_free(struct alert_state **stp)
{
    struct alert_state *st = *stp;
    if (!st)
        return;
    hmap_free(&st->orgs, alert_org_free);
    free(st->dirty);
    free(st);
    *stp = NULL;
}

static struct alert_org *org_get(const struct alert_state *st, const char *org)
{
    return hmap_gets(st->orgs, org);
}

static struct alert_org *org_make(struct alert_state *st, const char *org)
{
    struct alert_org *o = org_get(st, org);
    if (o)
        return o;
    o = xcalloc(1, sizeof(*o));
    o->name = xstrdup(org);
    hmap_puts(st->orgs, org, o);
    return o;
}

static void org_touch(struct alert_state *st, struct alert_org *o)
{
    if (o->dirty)
        return;
    if (st->ndirty == st->capdirty) {
        st->capdirty = st->capdirty ? st->capdirty * 2 : 16;
        st->dirty = xrealloc(st->dirty, st->capdirty * sizeof(*st->dirty));
    }
    st->dirty[st->ndirty++] = o;
    o->dirty = true;
}

static struct alert_type *type_find(const struct alert_org *o, const char *type)
{
    for (int i = 0; i < o->ntypes; i++)
        if (!strcmp(o->types[i].name, type))
            return &o->types[i];
    return NULL;
}

static struct alert_type *type_make(struct alert_org *o, const char *type)
{
    struct alert_type *t = type_find(o, type);
    if (t)
        return t;
    if (o->ntypes >= ALERT_TYPES_MAX) {
        log_warn_ctx("org", o->name, "more than %d license types; '%.32s' is not watched",
                     ALERT_TYPES_MAX, type);
        return NULL;
    }
    if (o->ntypes == o->captypes) {
        o->captypes = o->captypes ? o->captypes * 2 : 8;
        o->types = xrealloc(o->types, (size_t)o->captypes * sizeof(*o->types));
    }
    t = &o->types[o->ntypes++];
    memset(t, 0, sizeof(*t));
    t->name = xstrdup(type);
    t->exp_sent = -1;
    return t;
}

/* Runs the hysteresis of type t with the settings in force; emits when a
 * notification is due and notifications are on. */
static void evaluate(struct alert_state *st, struct alert_org *o, struct alert_type *t,
                     bool by_settings, alert_emit_fn emit, void *arg)
{
    const Licmon__V1__OrgSettings *s = o->settings;
    const Licmon__V1__License *lic = s ? settings_license(s, t->name) : NULL;
    bool was = t->fired;
    int64_t was_clear = t->clear;
    if (!lic || lic->model != LICMON__V1__LICENSE_MODEL__FLOATING || lic->owned <= 0) {
        /* nothing to watch (the type removed, named, none owned): an episode
         * still ends only when usage falls below its clear level, so taking
         * the license out and back in does not announce the crossing again */
        if (t->fired && t->in_use < t->clear)
            t->fired = false;
    } else {
        int32_t pct = lic->threshold_pct > 0 ? lic->threshold_pct : SETTINGS_DEFAULT_THRESHOLD_PCT;
        int64_t thr = alert_threshold_count(lic->owned, pct);
        int64_t clear = alert_clear_level(lic->owned, pct, s->clear_margin_pct);
        /* with notifications off an episode is still followed, silently, so
         * turning them on does not announce a crossing that happened before */
        if (alert_episode_step(&t->fired, t->in_use, thr, clear) && s->notify_enabled) {
            struct alert_event ev = {
                .kind = ALERT_THRESHOLD,
                .org = o->name,
                .license_type = t->name,
                .settings = s,
                .at_ms = t->at_ms,
                .in_use = t->in_use,
                .owned = lic->owned,
                .threshold_count = thr,
                .clear_level = clear,
                .threshold_pct = pct,
                .by_settings = by_settings,
            };
            emit(arg, &ev);
        }
        t->clear = t->fired ? clear : 0;
    }
    if (t->fired != was || t->clear != was_clear) {
        t->dirty_level = true;
        org_touch(st, o);
    }
}

static int apply_level(struct alert_state *st, const Licmon__V1__UsageLevel *l, alert_emit_fn emit,
                       void *arg)
{
    if (!l->org || !l->license_type || !settings_valid_org(l->org))
        return -1;
    if (!strcmp(l->license_type, "all"))
        return 0;
    if (!settings_valid_type(l->license_type) || l->in_use < 0)
        return -1;
    struct alert_org *o = org_make(st, l->org);
    struct alert_type *t = type_make(o, l->license_type);
    if (!t)
        return 0;
    if (t->in_use != l->in_use || t->at_ms != l->at_ms) {
        t->in_use = l->in_use;
        t->at_ms = l->at_ms;
        t->dirty_level = true;
        org_touch(st, o);
    }
    evaluate(st, o, t, false, emit, arg);
    return 0;
}

static int apply_settings(struct alert_state *st, const Licmon__V1__OrgSettings *s,
                          alert_emit_fn emit, void *arg)
{
    if (!s->org || !settings_valid_org(s->org))
        return -1;
    struct alert_org *o = org_make(st, s->org);
    settings_free(&o->settings);
    o->settings = settings_copy(s);
    o->dirty_settings = true;
    org_touch(st, o);
    /* a new threshold, margin or owned count takes effect on the level in
     * force now, without waiting for the next change of in_use */
    for (size_t i = 0; i < s->n_licenses; i++)
        if (settings_valid_type(s->licenses[i]->type))
            type_make(o, s->licenses[i]->type);
    for (int i = 0; i < o->ntypes; i++)
        evaluate(st, o, &o->types[i], true, emit, arg);
    return 0;
}

int alert_state_apply(struct alert_state *st, const Licmon__V1__UsageUpdate *u, alert_emit_fn emit,
                      void *arg)
{
    switch (u->body_case) {
    case LICMON__V1__USAGE_UPDATE__BODY_LEVEL:
        return u->level ? apply_level(st, u->level, emit, arg) : -1;
    case LICMON__V1__USAGE_UPDATE__BODY_SETTINGS:
        return u->settings ? apply_settings(st, u->settings, emit, arg) : -1;
    default:
        return 0; /* clock ticks: the expiry check runs on the alerter's clock */
    }
}

static void check_org_expiry(struct alert_state *st, struct alert_org *o, int64_t now_ms,
                             alert_emit_fn emit, void *arg)
{
    const Licmon__V1__OrgSettings *s = o->settings;
    const char *tz = s->timezone && tz_valid(s->timezone) ? s->timezone : "UTC";
    int64_t today = tz_local_day(tz, now_ms);
    for (size_t i = 0; i < s->n_licenses; i++) {
        const Licmon__V1__License *lic = s->licenses[i];
        int64_t day;
        if (!lic->expires || strlen(lic->expires) != ALERT_DATE_LEN ||
            time_parse_date(lic->expires, &day) != 0 || !settings_valid_type(lic->type))
            continue;
        struct alert_type *t = type_make(o, lic->type);
        if (!t)
            continue;
        if (strcmp(t->expires, lic->expires)) {
            /* a new date (a renewal, a correction): its reminders start over */
            memcpy(t->expires, lic->expires, ALERT_DATE_LEN + 1);
            t->exp_sent = -1;
            t->dirty_expiry = true;
            org_touch(st, o);
        }
        int stage = alert_expiry_stage(day - today);
        if (stage <= t->exp_sent)
            continue;
        t->exp_sent = stage;
        t->dirty_expiry = true;
        org_touch(st, o);
        if (!s->notify_enabled)
            continue;
        struct alert_event ev = {
            .kind = ALERT_EXPIRY,
            .org = o->name,
            .license_type = t->name,
            .settings = s,
            .at_ms = now_ms,
            .owned = lic->owned,
            .expires = t->expires,
            .days_left = day - today,
            .stage_days = alert_expiry_days[stage],
        };
        emit(arg, &ev);
    }
}

void alert_state_check_expiry(struct alert_state *st, int64_t now_ms, alert_emit_fn emit, void *arg)
{
    size_t pos = 0;
    const void *k;
    size_t kl;
    void *v;
    while (hmap_next(st->orgs, &pos, &k, &kl, &v)) {
        struct alert_org *o = v;
        if (o->settings)
            check_org_expiry(st, o, now_ms, emit, arg);
    }
}

static size_t key_org(uint8_t *buf, char ns, const char *org, const char *type)
{
    const char *parts[] = {org, type};
    return keys_make(buf, ALERT_KEY_MAX, ns, parts, type ? 2 : 1);
}

void alert_state_save_dirty(struct alert_state *st, alert_put_fn put, void *arg)
{
    uint8_t key[ALERT_KEY_MAX];
    for (size_t i = 0; i < st->ndirty; i++) {
        struct alert_org *o = st->dirty[i];
        o->dirty = false;
        if (o->dirty_settings && o->settings) {
            size_t len, kl = key_org(key, 'O', o->name, NULL);
            uint8_t *val = pb_pack(&o->settings->base, &len);
            put(arg, key, kl, val, len);
            free(val);
        }
        o->dirty_settings = false;
        for (int j = 0; j < o->ntypes; j++) {
            struct alert_type *t = &o->types[j];
            if (t->dirty_level) {
                uint8_t val[25];
                keys_put_i64(val, t->in_use);
                keys_put_i64(val + 8, t->at_ms);
                val[16] = t->fired;
                keys_put_i64(val + 17, t->clear);
                put(arg, key, key_org(key, 'S', o->name, t->name), val, sizeof(val));
                t->dirty_level = false;
            }
            if (t->dirty_expiry) {
                uint8_t val[1 + ALERT_DATE_LEN];
                size_t n = strlen(t->expires);
                val[0] = (uint8_t)(t->exp_sent + 1);
                memcpy(val + 1, t->expires, n);
                put(arg, key, key_org(key, 'E', o->name, t->name), val, 1 + n);
                t->dirty_expiry = false;
            }
        }
    }
    st->ndirty = 0;
}

/* Splits "ns org 0 type" into its parts; 0 on success. */
static int split_key(const char *key, size_t klen, char *org, size_t orgcap, char *type,
                     size_t typecap)
{
    const char *sep = memchr(key + 1, 0, klen - 1);
    if (!sep)
        return -1;
    size_t ol = (size_t)(sep - key - 1), tl = klen - ol - 2;
    if (ol == 0 || ol >= orgcap || tl == 0 || tl >= typecap)
        return -1;
    memcpy(org, key + 1, ol);
    org[ol] = 0;
    memcpy(type, sep + 1, tl);
    type[tl] = 0;
    return settings_valid_org(org) && settings_valid_type(type) ? 0 : -1;
}

int alert_state_load(struct alert_state *st, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    const char *k = key;
    const uint8_t *v = val;
    if (klen < 2)
        return 1;
    if (k[0] == 'O') {
        Licmon__V1__OrgSettings *s = licmon__v1__org_settings__unpack(NULL, vlen, v);
        if (!s)
            return -1;
        if (!s->org || strlen(s->org) != klen - 1 || memcmp(s->org, k + 1, klen - 1)) {
            settings_free(&s);
            return -1;
        }
        struct alert_org *o = org_make(st, s->org);
        settings_free(&o->settings);
        o->settings = s;
        return 0;
    }
    if (k[0] != 'S' && k[0] != 'E')
        return 1;
    char org[65], type[33];
    if (split_key(k, klen, org, sizeof(org), type, sizeof(type)) != 0)
        return -1;
    struct alert_type *t = type_make(org_make(st, org), type);
    if (!t)
        return 0;
    if (k[0] == 'S') {
        if (vlen != 17 && vlen != 25)
            return -1;
        t->in_use = keys_get_i64(v);
        t->at_ms = keys_get_i64(v + 8);
        t->fired = v[16] != 0;
        t->clear = vlen == 25 ? keys_get_i64(v + 17) : 0;
        if (t->clear < 0)
            return -1;
        return 0;
    }
    if (vlen < 1 || vlen > 1 + ALERT_DATE_LEN || v[0] > ALERT_EXPIRY_STAGES)
        return -1;
    t->exp_sent = (int)v[0] - 1;
    memcpy(t->expires, v + 1, vlen - 1);
    t->expires[vlen - 1] = 0;
    return 0;
}

const Licmon__V1__OrgSettings *alert_state_settings(const struct alert_state *st, const char *org)
{
    const struct alert_org *o = org_get(st, org);
    return o ? o->settings : NULL;
}

int64_t alert_state_in_use(const struct alert_state *st, const char *org, const char *type)
{
    const struct alert_org *o = org_get(st, org);
    const struct alert_type *t = o ? type_find(o, type) : NULL;
    return t ? t->in_use : 0;
}

bool alert_state_fired(const struct alert_state *st, const char *org, const char *type)
{
    const struct alert_org *o = org_get(st, org);
    const struct alert_type *t = o ? type_find(o, type) : NULL;
    return t && t->fired;
}
