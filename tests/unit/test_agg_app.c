/* test_agg_app: the aggregator's restart safety, over a real RocksDB in temp
 * folders. A random event stream (two orgs, a DST change, a zone change in
 * the middle, long sessions, downgrades, denials, timeouts) goes through
 * the sessionizer's engine into chunks of session changes, as the
 * sessionizer's log would hold them. Run A applies them uninterrupted; run
 * B commits at other boundaries and "crashes" again and again (the
 * in-memory objects are dropped without writing the last batch, or after
 * flushing it into a batch that is never written), reopens the store,
 * reloads and re-applies from the last committed position, exactly as
 * main.c and lib/stage.c do. Every query answer (usage at each
 * granularity, stats, sessions chunk by chunk, licenses, current) and the
 * usage log must come out byte for byte the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../aggregator/agg_app.h"
#include "../../sessionizer/sess_engine.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define NUSERS 24
#define NDAYS 9

static const char APPLIED[] = "Mapplied";
static const char *const types[] = {"creator", "reviewer", "viewer"};
static const char *const orgs[] = {"acme", "beta"};

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int64_t rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static bool chance(int pct)
{
    return (int)(rnd() % 100) < pct;
}

/* ------------------------------------------------------------- blobs */

struct blob {
    uint8_t *p;
    size_t n;
};

struct blobs {
    struct blob *v;
    size_t n, cap;
};

static void blobs_add(struct blobs *b, const void *p, size_t n)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    b->v[b->n].p = xmemdup(p, n ? n : 1);
    b->v[b->n++].n = n;
}

static void blobs_clear(struct blobs *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i].p);
    b->n = 0;
}

static void blobs_free(struct blobs *b)
{
    blobs_clear(b);
    free(b->v);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------ stream */

struct ev {
    int64_t ts;
    int org, user, kind, type, req;
};

struct evs {
    struct ev *v;
    size_t n, cap;
};

static void ev_add(struct evs *e, int64_t ts, int org, int user, int kind, int type, int req)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n++] = (struct ev){ts, org, user, kind, type, req};
}

static int ev_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* The upstream log: chunk i (seq i + 1) holds packed Changes. */
struct upstream {
    struct blobs *chunks;
    size_t n, cap;
    struct blobs cur;
    uint64_t journal_seq;
};

static void on_change(void *arg, Licmon__V1__Change *c)
{
    struct upstream *u = arg;
    c->journal_seq = u->journal_seq;
    size_t len;
    uint8_t *buf = pb_pack(&c->base, &len);
    blobs_add(&u->cur, buf, len);
    free(buf);
}

static void close_chunk(struct upstream *u)
{
    if (!u->cur.n)
        return;
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 256;
        u->chunks = xrealloc(u->chunks, u->cap * sizeof(*u->chunks));
    }
    u->chunks[u->n++] = u->cur;
    memset(&u->cur, 0, sizeof(u->cur));
}

static Licmon__V1__OrgSettings *org_settings(int org, const char *tz)
{
    Licmon__V1__OrgSettings *s = settings_default(orgs[org]);
    free(s->timezone);
    s->timezone = xstrdup(tz);
    s->user_inactivity_timeout_s = 30 * 60;
    s->license_inactivity_timeout_s = 75 * 60;
    s->licenses = xcalloc(3, sizeof(*s->licenses));
    for (int t = 0; t < 3; t++) {
        Licmon__V1__License *l = xmalloc(sizeof(*l));
        licmon__v1__license__init(l);
        l->type = xstrdup(types[t]);
        l->owned = 6 + 2 * t;
        l->threshold_pct = 60 + 10 * t;
        l->model = t == 2 ? LICMON__V1__LICENSE_MODEL__NAMED : LICMON__V1__LICENSE_MODEL__FLOATING;
        l->expires = xstrdup(t == 0 ? "2027-01-15" : "");
        s->licenses[s->n_licenses++] = l;
    }
    return s;
}

static void gen_events(struct evs *e, int64_t t0)
{
    for (int o = 0; o < 2; o++) {
        for (int u = 0; u < NUSERS; u++) {
            bool marathon = u == 0; /* active around the clock for days */
            for (int d = 0; d < NDAYS; d++) {
                int64_t day = t0 + d * DAY_MS;
                if (marathon) {
                    if (d >= 2 && d < 6)
                        for (int64_t t = day; t < day + DAY_MS; t += rnd_in(10, 25) * MIN_MS)
                            ev_add(e, t, o, u, t == day && d == 2 ? 1 : 2, 0, -1);
                    continue;
                }
                if (!chance(75))
                    continue;
                int type = (int)(rnd() % 3);
                int64_t t = day + rnd_in(5 * 60, 20 * 60) * MIN_MS + rnd_in(0, 59999);
                int sessions = (int)rnd_in(1, 3);
                for (int s = 0; s < sessions; s++) {
                    if (chance(10))
                        ev_add(e, t - rnd_in(1, 30) * MIN_MS, o, u, 4, type, -1); /* denied */
                    int req = chance(10) ? (type + 1) % 3 : -1;
                    ev_add(e, t, o, u, 1, type, req);
                    int acts = (int)rnd_in(0, 12);
                    for (int a = 0; a < acts; a++) {
                        t += rnd_in(1, 40) * MIN_MS + rnd_in(0, 59999);
                        ev_add(e, t, o, u, 2, chance(5) ? (type + 2) % 3 : -1, -1);
                    }
                    t += rnd_in(1, 20) * MIN_MS;
                    if (chance(60))
                        ev_add(e, t, o, u, 3, -1, -1); /* logout; else timeouts */
                    t += rnd_in(5, 180) * MIN_MS;
                    if (chance(20))
                        type = (int)(rnd() % 3);
                }
            }
        }
    }
    qsort(e->v, e->n, sizeof(e->v[0]), ev_cmp);
}

/* Events, settings and ticks through the sessionizer's engine. */
static void gen_upstream(struct upstream *up, int64_t t0)
{
    struct evs e = {0};
    gen_events(&e, t0);
    struct sess_engine *eng = sess_engine_new(on_change, up);
    uint64_t seq = 0;
    up->journal_seq = ++seq;
    Licmon__V1__OrgSettings *s = org_settings(0, "Europe/Berlin");
    sess_engine_settings(eng, s, t0 - HOUR_MS);
    settings_free(&s);
    up->journal_seq = ++seq;
    s = org_settings(1, "UTC");
    sess_engine_settings(eng, s, t0 - HOUR_MS);
    settings_free(&s);
    close_chunk(up);
    int64_t last_tick = t0;
    bool zone_changed = false;
    char id[32];
    for (size_t i = 0; i < e.n; i++) {
        const struct ev *x = &e.v[i];
        while (x->ts - last_tick > 30000) { /* quiet: ingest journals its clock */
            last_tick += 30000;
            up->journal_seq = ++seq;
            sess_engine_tick(eng, last_tick);
            if (chance(3))
                close_chunk(up);
        }
        if (!zone_changed && x->ts > t0 + 4 * DAY_MS + 7 * HOUR_MS) {
            zone_changed = true; /* beta moves to New York: hours and days re-derived */
            up->journal_seq = ++seq;
            s = org_settings(1, "America/New_York");
            sess_engine_settings(eng, s, x->ts);
            settings_free(&s);
        }
        Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
        snprintf(id, sizeof(id), "e%zu", i);
        char user[16];
        snprintf(user, sizeof(user), "user%02d", x->user);
        ev.event_id = id;
        ev.org = (char *)orgs[x->org];
        ev.user = user;
        ev.ts_ms = x->ts;
        ev.kind = (Licmon__V1__EventKind)x->kind;
        ev.license_type = x->type >= 0 ? (char *)types[x->type] : "";
        ev.requested_type = x->req >= 0 ? (char *)types[x->req] : "";
        up->journal_seq = ++seq;
        /* arrival a little after the event: within the allowed lateness */
        sess_engine_event(eng, &ev, x->ts + rnd_in(0, 1500));
        last_tick = x->ts > last_tick ? x->ts : last_tick;
        if (chance(4))
            close_chunk(up);
    }
    for (int k = 0; k < 600; k++) { /* let every timer fire */
        last_tick += 30000;
        up->journal_seq = ++seq;
        sess_engine_tick(eng, last_tick);
    }
    close_chunk(up);
    sess_engine_free(&eng);
    free(e.v);
}

static void upstream_free(struct upstream *up)
{
    for (size_t i = 0; i < up->n; i++)
        blobs_free(&up->chunks[i]);
    free(up->chunks);
    blobs_free(&up->cur);
}

/* -------------------------------------------------------------- a run */

struct run {
    char dir[64];
    struct agg_retention *ret;
    struct store *store;
    struct agg_app *app;
    struct store_batch *batch;
    struct blobs pending, log; /* usage updates: not yet committed, committed */
    uint64_t applied;
    int crashes;
};

static void emit(void *arg, const ProtobufCMessage *m)
{
    struct run *r = arg;
    size_t len;
    uint8_t *buf = pb_pack(m, &len);
    blobs_add(&r->pending, buf, len);
    free(buf);
}

static void run_open(struct run *r)
{
    r->ret = agg_retention_new();
    r->store = store_open_expiring(r->dir, agg_retention_filter, r->ret);
    assert_non_null(r->store);
    r->app = agg_app_new(r->store, r->ret, emit, r);
    assert_true(agg_app_load(r->app) >= 0);
    r->batch = store_batch_new();
    r->applied = 0;
    assert_true(store_get_u64(r->store, APPLIED, strlen(APPLIED), &r->applied) >= 0);
}

static void run_close(struct run *r)
{
    agg_app_free(&r->app);
    store_batch_free(&r->batch);
    store_close(&r->store);
    agg_retention_free(&r->ret);
    blobs_clear(&r->pending);
}

static void run_init(struct run *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/lm-aggapp-%s-XXXXXX", name);
    assert_non_null(mkdtemp(r->dir));
    run_open(r);
}

static void run_destroy(struct run *r)
{
    run_close(r);
    blobs_free(&r->log);
    blobs_free(&r->pending);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    assert_int_equal(system(cmd), 0);
}

/* What lib/stage.c does at a commit: state, output and position at once. */
static void run_commit(struct run *r, uint64_t seq)
{
    assert_int_equal(agg_app_flush(r->app, r->batch), 0);
    store_batch_put_u64(r->batch, APPLIED, strlen(APPLIED), seq);
    assert_int_equal(store_write(r->store, r->batch, false), 0);
    store_batch_clear(r->batch);
    for (size_t i = 0; i < r->pending.n; i++)
        blobs_add(&r->log, r->pending.v[i].p, r->pending.v[i].n);
    blobs_clear(&r->pending);
}

/* kill -9: what is in memory is gone, what was not written is gone. */
static void run_crash(struct run *r, bool flushed)
{
    if (flushed)
        assert_int_equal(agg_app_flush(r->app, r->batch), 0); /* rows handed out, never written */
    run_close(r);
    run_open(r);
    r->crashes++;
}

static void run_apply(struct run *r, const struct upstream *up, uint64_t seq)
{
    const struct blobs *c = &up->chunks[seq - 1];
    for (size_t i = 0; i < c->n; i++)
        assert_int_equal(agg_app_apply(r->app, c->v[i].p, c->v[i].n), 0);
}

/* ------------------------------------------------------------ queries */

struct answers {
    struct blobs v;
    struct blobs what;
};

static void answer(struct run *r, struct answers *out, const Licmon__V1__Query *q0)
{
    Licmon__V1__Query q = *q0;
    uint8_t cursor[600];
    char what[160];
    snprintf(what, sizeof(what), "kind %d org %s type %s gran %d %s..%s date %s hour %d user %s",
             q.kind, q.org, q.license_type, q.granularity, q.from_date, q.to_date, q.date, q.hour,
             q.user);
    for (int chunk = 0; chunk < 1000; chunk++) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        if (agg_app_query(r->app, &q, &rep) != 0)
            fail_msg("%s: %s", what, rep.error);
        size_t len;
        uint8_t *buf = pb_pack(&rep.base, &len);
        blobs_add(&out->v, buf, len);
        blobs_add(&out->what, what, strlen(what) + 1);
        free(buf);
        Licmon__V1__QueryReply *qr = rep.query;
        size_t cl = qr->next_cursor.len;
        assert_true(cl <= sizeof(cursor));
        if (cl)
            memcpy(cursor, qr->next_cursor.data, cl);
        agg_app_query_clear(&rep);
        if (!cl)
            return;
        q.cursor.data = cursor;
        q.cursor.len = cl;
    }
    fail_msg("%s: too many chunks", what);
}

static void all_answers(struct run *r, struct answers *out, int64_t t0, int64_t now)
{
    const char *qorgs[] = {"acme", "beta", "nobody"};
    const char *qtypes[] = {"all", "creator", "reviewer", "viewer", "nosuch"};
    char from[16], to[16], date[16];
    time_format_date(t0 / DAY_MS - 2, from, sizeof(from));
    time_format_date(t0 / DAY_MS + NDAYS + 3, to, sizeof(to));
    for (int o = 0; o < 3; o++) {
        for (int k = LICMON__V1__QUERY_KIND__LICENSES; k <= LICMON__V1__QUERY_KIND__SETTINGS; k++) {
            Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
            q.kind = (Licmon__V1__QueryKind)k;
            q.org = (char *)qorgs[o];
            q.now_ms = now;
            answer(r, out, &q);
        }
        for (int t = 0; t < 5; t++) {
            Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
            q.org = (char *)qorgs[o];
            q.license_type = (char *)qtypes[t];
            q.now_ms = now;
            q.kind = LICMON__V1__QUERY_KIND__USAGE;
            q.granularity = LICMON__V1__GRANULARITY__DAY;
            q.from_date = from;
            q.to_date = to;
            answer(r, out, &q);
            q.from_date = q.to_date = "";
            for (int d = -1; d <= NDAYS + 1; d++) {
                time_format_date(t0 / DAY_MS + d, date, sizeof(date));
                q.date = date;
                q.granularity = LICMON__V1__GRANULARITY__HOUR;
                answer(r, out, &q);
                q.granularity = LICMON__V1__GRANULARITY__MINUTE;
                for (int h = 0; h < 24; h += 5) {
                    q.hour = h;
                    answer(r, out, &q);
                }
                q.hour = 102;
                answer(r, out, &q);
                q.hour = 0;
            }
            q.date = "";
            q.granularity = 0;
            q.kind = LICMON__V1__QUERY_KIND__STATS;
            q.from_date = from;
            q.to_date = to;
            answer(r, out, &q);
            q.threshold_pct = 30;
            answer(r, out, &q);
            q.threshold_pct = 0;
            q.kind = LICMON__V1__QUERY_KIND__SESSIONS;
            q.max_rows = 37;
            answer(r, out, &q);
            time_format_date(t0 / DAY_MS + 4, date, sizeof(date));
            q.from_date = q.to_date = date; /* the marathon sessions began days before */
            q.max_rows = 5;
            answer(r, out, &q);
            q.from_date = from;
            q.to_date = to;
            q.user = "user03";
            answer(r, out, &q);
        }
    }
}

static void answers_free(struct answers *a)
{
    blobs_free(&a->v);
    blobs_free(&a->what);
}

static void compare(const struct answers *a, const struct answers *b)
{
    assert_int_equal(a->v.n, b->v.n);
    for (size_t i = 0; i < a->v.n; i++)
        if (a->v.v[i].n != b->v.v[i].n || memcmp(a->v.v[i].p, b->v.v[i].p, a->v.v[i].n))
            fail_msg("answer %zu differs: %s", i, (const char *)a->what.v[i].p);
}

/* Some numbers must not be trivially zero, or the comparison proves little. */
static void sanity(struct run *r, int64_t t0, int64_t now)
{
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    char from[16], to[16];
    time_format_date(t0 / DAY_MS, from, sizeof(from));
    time_format_date(t0 / DAY_MS + NDAYS, to, sizeof(to));
    q.kind = LICMON__V1__QUERY_KIND__STATS;
    q.org = "acme";
    q.license_type = "all";
    q.now_ms = now;
    q.from_date = from;
    q.to_date = to;
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    assert_int_equal(agg_app_query(r->app, &q, &rep), 0);
    print_message("acme all: peak %lld, denied users %lld, downgraded users %lld, days %d\n",
                  (long long)rep.query->stats->peak_value,
                  (long long)rep.query->stats->denied_users,
                  (long long)rep.query->stats->downgraded_users, rep.query->stats->days);
    assert_true(rep.query->stats->peak_value >= 3);
    assert_true(rep.query->stats->denied_users >= 1);
    assert_true(rep.query->stats->downgraded_users >= 1);
    agg_app_query_clear(&rep);
    time_format_date(t0 / DAY_MS + 4, from, sizeof(from));
    q.kind = LICMON__V1__QUERY_KIND__SESSIONS;
    q.from_date = q.to_date = from;
    q.user = "user00";
    assert_int_equal(agg_app_query(r->app, &q, &rep), 0);
    assert_true(rep.query->n_sessions >= 1);
    assert_true(rep.query->sessions[0]->start_ms < t0 + 3 * DAY_MS); /* began 2 days before */
    agg_app_query_clear(&rep);
}

static void crash_run(uint64_t seed)
{
    rng = seed;
    int64_t t0 = 0;
    assert_int_equal(time_parse_rfc3339("2026-10-21T00:00:00Z", &t0), 0);
    struct upstream up = {0};
    gen_upstream(&up, t0);
    int64_t now = t0 + (NDAYS + 1) * DAY_MS + 3 * HOUR_MS;

    struct run a, b;
    run_init(&a, "a");
    for (uint64_t seq = 1; seq <= up.n; seq++) {
        run_apply(&a, &up, seq);
        if (chance(40) || seq == up.n)
            run_commit(&a, seq);
    }
    struct answers ans_a = {0}, ans_b = {0}, ans_reopened = {0};
    all_answers(&a, &ans_a, t0, now);
    sanity(&a, t0, now);
    run_close(&a); /* a clean restart answers the same */
    run_open(&a);
    all_answers(&a, &ans_reopened, t0, now);
    compare(&ans_a, &ans_reopened);

    run_init(&b, "b");
    uint64_t seq = 1;
    while (seq <= up.n) {
        run_apply(&b, &up, seq);
        if (chance(3)) { /* crash before the commit of what was applied */
            run_crash(&b, chance(50));
            seq = b.applied + 1;
            continue;
        }
        if (chance(25) || seq == up.n)
            run_commit(&b, seq);
        if (chance(1)) { /* crash right after a commit */
            run_crash(&b, false);
            seq = b.applied + 1;
            continue;
        }
        seq++;
    }
    all_answers(&b, &ans_b, t0, now);
    compare(&ans_a, &ans_b);
    assert_int_equal(a.log.n, b.log.n);
    for (size_t i = 0; i < a.log.n; i++)
        assert_memory_equal(a.log.v[i].p, b.log.v[i].p, a.log.v[i].n);
    print_message("seed %llu: %zu chunks, %zu answers, %zu usage updates, %d crashes\n",
                  (unsigned long long)seed, up.n, ans_a.v.n, a.log.n, b.crashes);
    assert_true(b.crashes >= 5);
    answers_free(&ans_a);
    answers_free(&ans_b);
    answers_free(&ans_reopened);
    run_destroy(&a);
    run_destroy(&b);
    upstream_free(&up);
}

static void test_crash_seed1(void **state)
{
    (void)state;
    crash_run(0x9E3779B97F4A7C15ULL);
}

static void test_crash_seed2(void **state)
{
    (void)state;
    crash_run(12345);
}

/* Rows of kind ('h' hour, 'm' minute) stored by a run committed after
 * num/den of the stream, all overwritten with bytes that do not decode (as
 * damage or a read error would leave them); then the rest is applied. The
 * aggregator must not save what it derived without them, but refuse the
 * commit and restart from its last one: an hour row a minute is folded
 * into (else a fresh hour of that minute alone is written over the stored
 * one), the minute rows a zone change re-derives hours and days from (else
 * the old zone's rows stay, saved as the new zone's). */
static void unreadable_rows_are_never_saved(char kind, uint64_t num, uint64_t den)
{
    rng = 7;
    int64_t t0 = 0;
    assert_int_equal(time_parse_rfc3339("2026-10-21T00:00:00Z", &t0), 0);
    struct upstream up = {0};
    gen_upstream(&up, t0);
    struct run r;
    run_init(&r, "rows");
    uint64_t part = up.n * num / den;
    for (uint64_t seq = 1; seq <= part; seq++)
        run_apply(&r, &up, seq);
    run_commit(&r, part);
    run_close(&r);
    struct store *st = store_open(r.dir);
    assert_non_null(st);
    const char from[2] = {'R', kind}, to[2] = {'R', (char)(kind + 1)};
    struct store_iter *it = store_iter_range(st, from, 2, to, 2);
    struct store_batch *b = store_batch_new();
    int damaged = 0;
    for (; store_iter_valid(it); store_iter_next(it), damaged++) {
        size_t kl;
        const char *k = store_iter_key(it, &kl);
        store_batch_put(b, k, kl, "\xff", 1);
    }
    assert_int_equal(store_iter_status(it), 0);
    store_iter_free(&it);
    assert_true(damaged > 0);
    assert_int_equal(store_write(st, b, true), 0);
    store_batch_free(&b);
    store_close(&st);

    run_open(&r);
    int refused = 0;
    for (uint64_t seq = part + 1; seq <= up.n && !refused; seq++) {
        run_apply(&r, &up, seq);
        if (agg_app_flush(r.app, r.batch) != 0) {
            refused = 1;
            assert_int_equal(store_batch_count(r.batch), 0); /* nothing handed out */
        } else {
            assert_int_equal(store_write(r.store, r.batch, false), 0);
            store_batch_clear(r.batch);
        }
    }
    assert_true(refused);
    run_destroy(&r);
    upstream_free(&up);
}

static void test_unreadable_hour_row_is_never_saved(void **state)
{
    (void)state;
    unreadable_rows_are_never_saved('h', 1, 2);
}

/* committed before the zone change (after 4 days of 9) */
static void test_unreadable_minutes_stop_a_zone_change(void **state)
{
    (void)state;
    unreadable_rows_are_never_saved('m', 1, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_seed1),
        cmocka_unit_test(test_crash_seed2),
        cmocka_unit_test(test_unreadable_hour_row_is_never_saved),
        cmocka_unit_test(test_unreadable_minutes_stop_a_zone_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
