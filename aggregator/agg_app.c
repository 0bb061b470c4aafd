/* agg_app: the aggregator's modules wired over one store (see agg_app.h).
 *
 * The rollup's watermark follows the changes' own times only (each org's
 * highest change time minus its lag, inside agg_rollup): the sessionizer
 * sends no clock of its own, and a wall clock would seal the minutes of a
 * backfill before its events arrive. Nothing is lost by it: a minute still
 * open is answered from memory like a sealed one. */
#include "agg_app.h"
#include "agg_query.h"
#include "agg_rollup.h"
#include "agg_state.h"
#include "log.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct agg_app {
    struct store *store;
    struct agg_retention *ret;
    struct agg_state *state;
    struct agg_rollup *rollup;
    struct agg_rollup_store rstore;
    agg_app_emit_fn emit;
    void *emit_arg;
    uint64_t journal_seq; /* of the change being applied */
    uint64_t flushes, changes, unreadable;
    bool settings_changed;
    /* one unpacked Change at a time: nothing the modules keep points into
     * a change (they copy), so it is reset before the next */
    struct pb_arena arena;
};

/* ------------------------------------------------------------ the store */

/* agg_rollup_store.scan over RocksDB: a fresh iterator sees every write
 * committed so far. */
static int app_scan(void *arg, const void *from, size_t fl, const void *to, size_t tl,
                    agg_rollup_visit_fn visit, void *varg)
{
    struct agg_app *a = arg;
    struct store_iter *it = store_iter_range(a->store, from, fl, to, tl);
    for (; store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const char *k = store_iter_key(it, &kl);
        const char *v = store_iter_value(it, &vl);
        if (visit(varg, k, kl, v, vl))
            break;
    }
    int rc = store_iter_status(it);
    store_iter_free(&it);
    return rc;
}

static void sink_put(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    store_batch_write(arg, key, klen, val, vlen);
}

static void sink_del_range(void *arg, const void *from, size_t fl, const void *to, size_t tl)
{
    store_batch_del_range(arg, from, fl, to, tl);
}

/* ------------------------------------------------------------ lifecycle */

struct agg_app *agg_app_new(struct store *store, struct agg_retention *ret, agg_app_emit_fn emit,
                            void *emit_arg)
{
    struct agg_app *a = xcalloc(1, sizeof(*a));
    a->store = store;
    a->ret = ret;
    a->emit = emit;
    a->emit_arg = emit_arg;
    a->rstore = (struct agg_rollup_store){app_scan, a};
    pb_arena_init(&a->arena, 16384);
    a->state = agg_state_new();
    a->rollup = agg_rollup_new(&a->rstore);
    return a;
}

void agg_app_free(struct agg_app **ap)
{
    struct agg_app *a = *ap;
    if (!a)
        return;
    agg_state_free(&a->state);
    agg_rollup_free(&a->rollup);
    pb_arena_free(&a->arena);
    free(a);
    *ap = NULL;
}

struct collect {
    const Licmon__V1__OrgSettings **v;
    size_t n, cap;
};

static void collect_one(void *arg, const Licmon__V1__OrgSettings *s)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n++] = s;
}

static void publish_retention(struct agg_app *a)
{
    a->settings_changed = false;
    if (!a->ret)
        return;
    struct collect c = {0};
    agg_state_each_settings(a->state, collect_one, &c);
    agg_retention_publish(a->ret, c.v, c.n);
    free(c.v);
}

static int load_state(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return agg_state_load(arg, key, klen, val, vlen);
}

long agg_app_load(struct agg_app *a)
{
    long n = 0;
    for (int p = 0; agg_rollup_load_prefixes[p]; p++) {
        const char *pre = agg_rollup_load_prefixes[p];
        uint8_t to[2] = {(uint8_t)pre[0], (uint8_t)(pre[1] + 1)};
        struct store_iter *it = store_iter_range(a->store, pre, 2, to, 2);
        for (; store_iter_valid(it); store_iter_next(it)) {
            size_t kl, vl;
            const char *k = store_iter_key(it, &kl);
            const char *v = store_iter_value(it, &vl);
            if (agg_rollup_load(a->rollup, k, kl, v, vl) < 0) {
                log_warn("saved rollup state under '%s' is unreadable", pre);
                store_iter_free(&it);
                return -1;
            }
            n++;
        }
        int rc = store_iter_status(it);
        store_iter_free(&it);
        if (rc < 0)
            return -1;
    }
    long m = store_load_namespaces(a->store, agg_state_namespaces, load_state, a->state);
    if (m < 0)
        return -1;
    publish_retention(a);
    return n + m;
}

/* ------------------------------------------------------------- applying */

static void on_level(void *arg, const char *org, const char *type, int64_t at_ms, int64_t in_use)
{
    struct agg_app *a = arg;
    if (!a->emit)
        return;
    Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
    Licmon__V1__UsageLevel l = LICMON__V1__USAGE_LEVEL__INIT;
    l.org = (char *)org;
    l.license_type = (char *)type;
    l.at_ms = at_ms;
    l.in_use = in_use;
    u.journal_seq = a->journal_seq;
    u.body_case = LICMON__V1__USAGE_UPDATE__BODY_LEVEL;
    u.level = &l;
    a->emit(a->emit_arg, &u.base);
}

int agg_app_apply(struct agg_app *a, const uint8_t *data, size_t len)
{
    pb_arena_reset(&a->arena);
    Licmon__V1__Change *c = licmon__v1__change__unpack(pb_arena_allocator(&a->arena), len, data);
    if (!c) {
        a->unreadable++;
        return -1;
    }
    a->changes++;
    a->journal_seq = c->journal_seq;
    agg_state_apply(a->state, c, on_level, a);
    agg_rollup_change(a->rollup, c);
    if (c->body_case == LICMON__V1__CHANGE__BODY_SETTINGS) {
        a->settings_changed = true;
        if (a->emit) {
            Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
            u.journal_seq = c->journal_seq;
            u.body_case = LICMON__V1__USAGE_UPDATE__BODY_SETTINGS;
            u.settings = c->settings;
            a->emit(a->emit_arg, &u.base);
        }
    }
    return 0;
}

/* How long a quiet user's counting state is kept: the org's day retention,
 * the longest period a stats query may ask about, so distinct denied and
 * downgraded users stay exact over any of them (kept only for the minute
 * retention, a user denied again after 400 quiet days counted twice in a
 * two-year period). */
static int64_t keep_ms(void *arg, const char *org)
{
    struct agg_app *a = arg;
    return agg_retention_days_days(agg_state_settings(a->state, org)) * AGG_RET_DAY_MS;
}

int agg_app_flush(struct agg_app *a, struct store_batch *b)
{
    if (agg_rollup_store_failed(a->rollup))
        return -1;
    if (++a->flushes % AGG_APP_GC_EVERY == 0)
        agg_rollup_gc_behind(a->rollup, keep_ms, a);
    agg_state_save_dirty(a->state, store_batch_write, b);
    struct agg_rollup_sink sink = {sink_put, sink_del_range, b};
    agg_rollup_save_dirty(a->rollup, &sink);
    if (a->settings_changed)
        publish_retention(a);
    return 0;
}

/* -------------------------------------------------------------- queries */

int agg_app_query(struct agg_app *a, const Licmon__V1__Query *q, Licmon__V1__Reply *rep)
{
    struct agg_query_ctx ctx = {a->state, a->rollup, &a->rstore};
    return agg_query_answer(&ctx, q, rep);
}

void agg_app_query_clear(Licmon__V1__Reply *rep)
{
    agg_query_clear(rep);
}

void agg_app_stats(const struct agg_app *a, struct agg_app_stats *out)
{
    struct agg_rollup_stats rs;
    agg_rollup_stats(a->rollup, &rs);
    memset(out, 0, sizeof(*out));
    out->changes = a->changes;
    out->unreadable = a->unreadable;
    out->orgs = rs.orgs;
    out->users = rs.users;
    out->open_minutes = rs.open_minutes;
    out->resident_rows = rs.resident_rows;
    out->late_clamped = rs.late_clamped;
    out->ignored = rs.ignored;
    out->retention_dropped = a->ret ? agg_retention_dropped(a->ret) : 0;
}
