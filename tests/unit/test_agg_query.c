/* test_agg_query: the aggregator's query service over a real RocksDB in a
 * temp folder, driven through agg_app (the code main.c runs): which rows
 * exist (future and out-of-retention days, hours and minutes), the
 * repeated and skipped hours of DST days, the cards, the sessions that
 * overlap a period (long ones that began days before it included) with
 * their chunks and cursor, retention by the compaction filter, and the
 * list of every org known (ORGS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../aggregator/agg_app.h"
#include "../../aggregator/agg_retention.h"
#include "../../aggregator/agg_state.h"
#include "keys.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "xmem.h"

#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

struct fx {
    char dir[64];
    struct agg_retention *ret;
    struct store *store;
    struct agg_app *app;
    struct store_batch *b;
};

static void fx_open(struct fx *f)
{
    f->ret = agg_retention_new();
    f->store = store_open_expiring(f->dir, agg_retention_filter, f->ret);
    assert_non_null(f->store);
    f->app = agg_app_new(f->store, f->ret, NULL, NULL);
    assert_true(agg_app_load(f->app) >= 0);
    f->b = store_batch_new();
}

static void fx_close(struct fx *f)
{
    agg_app_free(&f->app);
    store_batch_free(&f->b);
    store_close(&f->store);
    agg_retention_free(&f->ret);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/lm-aggq-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void commit(struct fx *f)
{
    assert_int_equal(agg_app_flush(f->app, f->b), 0);
    assert_int_equal(store_write(f->store, f->b, false), 0);
    store_batch_clear(f->b);
}

static int64_t ms_of(const char *rfc)
{
    int64_t ms;
    assert_int_equal(time_parse_rfc3339(rfc, &ms), 0);
    return ms;
}

static void apply_change(struct fx *f, Licmon__V1__Change *c)
{
    size_t len;
    uint8_t *buf = pb_pack(&c->base, &len);
    assert_int_equal(agg_app_apply(f->app, buf, len), 0);
    free(buf);
}

/* late_s < 0: the default allowed lateness */
static void settings_late(struct fx *f, const char *org, const char *tz, int64_t late_s)
{
    Licmon__V1__OrgSettings *s = settings_default(org);
    if (late_s >= 0)
        s->allowed_lateness_s = late_s;
    free(s->timezone);
    s->timezone = xstrdup(tz);
    Licmon__V1__License l1 = LICMON__V1__LICENSE__INIT, l2 = LICMON__V1__LICENSE__INIT;
    Licmon__V1__License *ls[] = {&l1, &l2};
    l1.type = "creator";
    l1.owned = 4;
    l1.threshold_pct = 50;
    l1.expires = "2026-12-31";
    l2.type = "viewer";
    l2.model = LICMON__V1__LICENSE_MODEL__NAMED;
    l2.owned = 10;
    s->licenses = ls;
    s->n_licenses = 2;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_SETTINGS;
    c.settings = s;
    apply_change(f, &c);
    s->licenses = NULL;
    s->n_licenses = 0;
    settings_free(&s);
}

static void settings(struct fx *f, const char *org, const char *tz)
{
    settings_late(f, org, tz, -1);
}

static void hold(struct fx *f, const char *org, const char *user, const char *type, int64_t at,
                 bool acquired)
{
    Licmon__V1__HoldChange h = LICMON__V1__HOLD_CHANGE__INIT;
    h.org = (char *)org;
    h.user = (char *)user;
    h.license_type = (char *)type;
    h.at_ms = at;
    h.acquired = acquired;
    h.reason = acquired ? LICMON__V1__END_REASON__OPEN : LICMON__V1__END_REASON__MANUAL_LOGOUT;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_HOLD;
    c.hold = &h;
    apply_change(f, &c);
}

static void counted(struct fx *f, const char *org, const char *user, const char *type, int64_t at,
                    Licmon__V1__Counted__What what)
{
    Licmon__V1__Counted k = LICMON__V1__COUNTED__INIT;
    k.org = (char *)org;
    k.user = (char *)user;
    k.license_type = (char *)type;
    k.at_ms = at;
    k.what = what;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_COUNTED;
    c.counted = &k;
    apply_change(f, &c);
}

/* A session record; end 0 = open. */
static void session(struct fx *f, const char *org, const char *sid, const char *user,
                    const char *type, int64_t start, int64_t end)
{
    Licmon__V1__SessionRecord r = LICMON__V1__SESSION_RECORD__INIT;
    r.session_id = (char *)sid;
    r.org = (char *)org;
    r.user = (char *)user;
    r.license_type = (char *)type;
    r.start_ms = start;
    r.last_activity_ms = end ? end : start;
    r.end_ms = end;
    r.end_reason = end ? LICMON__V1__END_REASON__MANUAL_LOGOUT : LICMON__V1__END_REASON__OPEN;
    r.user_inactivity_s = end ? (end - start) / 1000 : 0;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_SESSION;
    c.session = &r;
    apply_change(f, &c);
}

static Licmon__V1__Query query(Licmon__V1__QueryKind kind, const char *org, const char *type,
                               int64_t now)
{
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.kind = kind;
    q.org = (char *)org;
    q.license_type = (char *)type;
    q.now_ms = now;
    return q;
}

static Licmon__V1__Reply ask(struct fx *f, const Licmon__V1__Query *q)
{
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    int rc = agg_app_query(f->app, q, &rep);
    if (rc != 0)
        fail_msg("query failed: %s", rep.error);
    return rep;
}

static char *date_of(int64_t ms)
{
    static char buf[4][16];
    static int i;
    char *b = buf[i++ % 4];
    time_format_date(ms / DAY_MS, b, 16);
    return b;
}

/* ------------------------------------------------------------ usage */

static void test_days_that_exist(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "Europe/Berlin");
    hold(f, "acme", "u1", "creator", ms_of("2026-11-10T09:00:00Z"), true);
    hold(f, "acme", "u2", "creator", ms_of("2026-11-10T09:30:00Z"), true);
    hold(f, "acme", "u2", "creator", ms_of("2026-11-10T11:00:00Z"), false);
    counted(f, "acme", "u3", "creator", ms_of("2026-11-11T08:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    commit(f);
    int64_t now = ms_of("2026-11-12T10:30:00Z"); /* 11:30 in Berlin */
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__USAGE, "acme", "creator", now);
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = "2026-11-08";
    q.to_date = "2026-11-20";
    Licmon__V1__Reply rep = ask(f, &q);
    Licmon__V1__QueryReply *qr = rep.query;
    assert_string_equal(qr->timezone, "Europe/Berlin");
    assert_int_equal(qr->n_rows, 5); /* 8th..12th: future days are omitted */
    assert_string_equal(qr->rows[0]->date, "2026-11-08");
    assert_int_equal(qr->rows[0]->peak, 0);
    assert_int_equal(qr->rows[0]->peak_at_ms, -1);
    assert_int_equal(qr->rows[0]->minutes, 1440);
    assert_int_equal(qr->rows[0]->utc_offset_s, 3600);
    assert_string_equal(qr->rows[2]->date, "2026-11-10");
    assert_int_equal(qr->rows[2]->peak, 2);
    assert_int_equal(qr->rows[2]->peak_at_ms, ms_of("2026-11-10T09:30:00Z"));
    assert_int_equal(qr->rows[2]->users, 2);
    assert_int_equal(qr->rows[2]->in_use_end, 1);
    assert_int_equal(qr->rows[3]->peak, 1); /* the seat held through a quiet day */
    assert_int_equal(qr->rows[3]->denials, 1);
    assert_int_equal(qr->rows[3]->denied_users, 1);
    assert_string_equal(qr->rows[4]->date, "2026-11-12");
    assert_int_equal(qr->rows[4]->peak, 1);
    agg_app_query_clear(&rep);

    /* hours of today: only those that have begun (00:00..11:00 local) */
    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    q.date = "2026-11-12";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 12);
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-11-11T23:00:00Z"));
    assert_int_equal(rep.query->rows[11]->minutes, 60);
    agg_app_query_clear(&rep);
    q.date = "2026-11-13";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 0);
    agg_app_query_clear(&rep);
    q.date = "2026-11-10";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 24);
    assert_int_equal(rep.query->rows[10]->peak, 2); /* 10:00 local = 09:00Z */
    assert_int_equal(rep.query->rows[10]->logins, 0);
    assert_int_equal(rep.query->rows[11]->users, 2);
    assert_int_equal(rep.query->rows[12]->users, 1);
    agg_app_query_clear(&rep);

    /* minutes of the current hour: up to the minute holding now */
    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.date = "2026-11-12";
    q.hour = 11;
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 31);
    assert_int_equal(rep.query->rows[0]->in_use_end, 1);
    agg_app_query_clear(&rep);

    /* all = any type; an unknown type and an unknown org answer quiet rows */
    q = query(LICMON__V1__QUERY_KIND__USAGE, "acme", "", now);
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = "2026-11-10";
    q.to_date = "2026-11-10";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 1);
    assert_int_equal(rep.query->rows[0]->peak, 2);
    agg_app_query_clear(&rep);
    q.license_type = "nosuch";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 1);
    assert_int_equal(rep.query->rows[0]->peak, 0);
    agg_app_query_clear(&rep);
    q.org = "other";
    rep = ask(f, &q);
    assert_false(rep.query->org_known);
    assert_string_equal(rep.query->timezone, "UTC");
    assert_int_equal(rep.query->n_rows, 1);
    agg_app_query_clear(&rep);

    /* a malformed date is an error naming the field */
    q.from_date = "2026-13-40";
    Licmon__V1__Reply bad = LICMON__V1__REPLY__INIT;
    assert_int_equal(agg_app_query(f->app, &q, &bad), -1);
    assert_string_equal(bad.error, "from_date: not a date");
    assert_null(bad.query);
}

static void test_retention_window(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    hold(f, "acme", "u1", "creator", ms_of("2026-01-05T10:00:00Z"), true);
    hold(f, "acme", "u1", "creator", ms_of("2026-01-05T11:00:00Z"), false);
    commit(f);
    /* 400 days later: the day row exists (5 years), its hours and minutes not */
    int64_t now = ms_of("2026-01-05T10:30:00Z") + 400 * DAY_MS;
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__USAGE, "acme", "creator", now);
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = "2020-01-01";
    q.to_date = "2026-01-06";
    Licmon__V1__Reply rep = ask(f, &q);
    int64_t first = now / DAY_MS - 1829; /* 1830 days, today the last */
    assert_int_equal(rep.query->n_rows, ms_of("2026-01-06T00:00:00Z") / DAY_MS - first + 1);
    assert_string_equal(rep.query->rows[0]->date, date_of(first * DAY_MS));
    assert_int_equal(rep.query->rows[rep.query->n_rows - 2]->peak, 1);
    agg_app_query_clear(&rep);
    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    q.date = "2026-01-05";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 13); /* 11:00 onwards: 10:30 + 400 days is the cut */
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-01-05T11:00:00Z"));
    agg_app_query_clear(&rep);
    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.hour = 10;
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 30);
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-01-05T10:30:00Z"));
    assert_int_equal(rep.query->rows[0]->peak, 1);
    agg_app_query_clear(&rep);
}

static void test_dst_hours(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "Europe/Berlin");
    hold(f, "acme", "u1", "creator", ms_of("2026-10-25T00:10:00Z"), true);  /* 02:10 CEST */
    hold(f, "acme", "u1", "creator", ms_of("2026-10-25T01:20:00Z"), false); /* 02:20 CET */
    commit(f);
    int64_t now = ms_of("2026-11-01T00:00:00Z");
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__USAGE, "acme", "creator", now);
    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    q.date = "2026-10-25";
    Licmon__V1__Reply rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 25);
    assert_int_equal(rep.query->rows[2]->utc_offset_s, 7200);
    assert_int_equal(rep.query->rows[3]->utc_offset_s, 3600);
    assert_int_equal(rep.query->rows[2]->peak, 1);
    assert_int_equal(rep.query->rows[3]->peak, 1);
    agg_app_query_clear(&rep);

    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.hour = 2; /* the first 02:00, still CEST */
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 60);
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-10-25T00:00:00Z"));
    assert_int_equal(rep.query->rows[9]->peak, 0);
    assert_int_equal(rep.query->rows[10]->peak, 1);
    assert_int_equal(rep.query->rows[0]->utc_offset_s, 7200);
    agg_app_query_clear(&rep);
    q.hour = 102; /* the second, CET */
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 60);
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-10-25T01:00:00Z"));
    assert_int_equal(rep.query->rows[0]->utc_offset_s, 3600);
    assert_int_equal(rep.query->rows[19]->peak, 1);
    assert_int_equal(rep.query->rows[20]->peak, 0);
    agg_app_query_clear(&rep);
    q.hour = 103; /* no second 03:00 */
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 0);
    agg_app_query_clear(&rep);
    q.date = "2026-03-29"; /* spring forward: no 02:00 at all */
    q.hour = 2;
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 0);
    agg_app_query_clear(&rep);
    q.hour = 3;
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 60);
    assert_int_equal(rep.query->rows[0]->start_ms, ms_of("2026-03-29T01:00:00Z"));
    agg_app_query_clear(&rep);
    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 23);
    agg_app_query_clear(&rep);
}

/* ------------------------------------------------------------ stats */

static void test_stats(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    const char *users[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) /* day 1: 4 of 4 seats (capacity) */
        hold(f, "acme", users[i], "creator", ms_of("2026-11-01T09:00:00Z") + i * MIN_MS, true);
    for (int i = 0; i < 4; i++)
        hold(f, "acme", users[i], "creator", ms_of("2026-11-01T17:00:00Z") + i * MIN_MS, false);
    for (int i = 0; i < 2; i++) /* day 3: 2 (the threshold of 50%) */
        hold(f, "acme", users[i], "creator", ms_of("2026-11-03T09:00:00Z") + i * MIN_MS, true);
    for (int i = 0; i < 2; i++)
        hold(f, "acme", users[i], "creator", ms_of("2026-11-03T17:00:00Z") + i * MIN_MS, false);
    counted(f, "acme", "x", "creator", ms_of("2026-11-02T09:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    counted(f, "acme", "x", "creator", ms_of("2026-11-03T09:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    counted(f, "acme", "y", "creator", ms_of("2026-11-03T10:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DOWNGRADE);
    hold(f, "acme", "a", "creator", ms_of("2026-11-04T08:00:00Z"), true);
    commit(f);
    int64_t now = ms_of("2026-11-04T12:00:00Z");
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__STATS, "acme", "creator", now);
    q.from_date = "2026-11-01";
    q.to_date = "2026-11-30";
    Licmon__V1__Reply rep = ask(f, &q);
    Licmon__V1__Stats *s = rep.query->stats;
    assert_non_null(s);
    assert_int_equal(s->days, 4); /* up to today */
    assert_int_equal(s->owned, 4);
    assert_int_equal(s->threshold_pct, 50);
    assert_int_equal(s->threshold_count, 2);
    assert_true(s->average_value > 1.74 && s->average_value < 1.76); /* (4+0+2+1)/4 */
    assert_int_equal(s->peak_value, 4);
    assert_int_equal(s->peak_at_ms, ms_of("2026-11-01T09:03:00Z"));
    assert_string_equal(s->peak_state, "major");
    assert_int_equal(s->days_over_threshold, 2);
    assert_int_equal(s->days_at_capacity, 1);
    assert_int_equal(s->denied_users, 1);
    assert_int_equal(s->denials, 2);
    assert_string_equal(s->denied_state, "major");
    assert_int_equal(s->downgraded_users, 1);
    assert_string_equal(s->downgraded_state, "minor");
    assert_int_equal(s->in_use, 1);
    assert_int_equal(s->free, 3);
    assert_true(s->has_expiry);
    assert_int_equal(s->days_left, 57);
    assert_string_equal(s->expiration_state, "minor");
    agg_app_query_clear(&rep);

    q.threshold_pct = 100; /* preview */
    rep = ask(f, &q);
    assert_int_equal(rep.query->stats->threshold_count, 4);
    assert_int_equal(rep.query->stats->days_over_threshold, 1);
    agg_app_query_clear(&rep);

    q = query(LICMON__V1__QUERY_KIND__STATS, "acme", "all", now);
    q.from_date = "2026-11-01";
    q.to_date = "2026-11-04";
    rep = ask(f, &q);
    assert_int_equal(rep.query->stats->owned, 14);
    assert_string_equal(rep.query->stats->average_state, "non_applicable");
    assert_false(rep.query->stats->has_expiry);
    assert_int_equal(rep.query->stats->in_use, 1);
    agg_app_query_clear(&rep);

    q = query(LICMON__V1__QUERY_KIND__LICENSES, "acme", "", now);
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_licenses, 2);
    assert_string_equal(rep.query->licenses[0]->license->type, "creator");
    assert_string_equal(rep.query->licenses[0]->license->expires, "2026-12-31");
    assert_int_equal(rep.query->licenses[0]->in_use, 1);
    assert_string_equal(rep.query->licenses[1]->license->type, "viewer");
    assert_int_equal(rep.query->in_use_all, 1);
    agg_app_query_clear(&rep);
}

/* --------------------------------------------------------- sessions */

struct got {
    char ids[64][32];
    int n, chunks;
};

static void sessions(struct fx *f, const char *from, const char *to, const char *type,
                     const char *user, uint32_t max_rows, int64_t now, struct got *g)
{
    memset(g, 0, sizeof(*g));
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__SESSIONS, "acme", type, now);
    q.from_date = (char *)from;
    q.to_date = (char *)to;
    q.user = (char *)user;
    q.max_rows = max_rows;
    uint8_t cursor[512];
    for (;;) {
        Licmon__V1__Reply rep = ask(f, &q);
        Licmon__V1__QueryReply *qr = rep.query;
        assert_true(qr->n_sessions <= max_rows);
        for (size_t i = 0; i < qr->n_sessions; i++)
            snprintf(g->ids[g->n++], 32, "%s", qr->sessions[i]->session_id);
        g->chunks++;
        if (!qr->next_cursor.len) {
            agg_app_query_clear(&rep);
            break;
        }
        assert_true(qr->next_cursor.len <= sizeof(cursor));
        memcpy(cursor, qr->next_cursor.data, qr->next_cursor.len);
        q.cursor.data = cursor;
        q.cursor.len = qr->next_cursor.len;
        agg_app_query_clear(&rep);
        assert_true(g->chunks < 60);
    }
}

static void expect(const struct got *g, const char *const *ids, int n)
{
    if (g->n != n) {
        for (int i = 0; i < g->n; i++)
            print_message("got %s\n", g->ids[i]);
    }
    assert_int_equal(g->n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(g->ids[i], ids[i]);
}

static void test_sessions_overlap(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "America/New_York");
    /* the period: 2026-11-10 local = [05:00Z on the 10th, 05:00Z on the 11th) */
    session(f, "acme", "s-long-open", "u1", "creator", ms_of("2026-11-01T12:00:00Z"), 0);
    session(f, "acme", "s-long-ended", "u2", "creator", ms_of("2026-11-05T12:00:00Z"),
            ms_of("2026-11-10T06:00:00Z"));
    session(f, "acme", "s-before", "u3", "creator", ms_of("2026-11-09T12:00:00Z"),
            ms_of("2026-11-10T05:00:00Z")); /* ends at the first instant: not in it */
    session(f, "acme", "s-early-utc-day", "u4", "viewer", ms_of("2026-11-10T01:00:00Z"),
            ms_of("2026-11-10T07:00:00Z")); /* starts the same UTC day, before the period */
    session(f, "acme", "s-zero", "u5", "creator", ms_of("2026-11-10T05:00:00Z"),
            ms_of("2026-11-10T05:00:00Z"));
    session(f, "acme", "s-in-a", "u1", "creator", ms_of("2026-11-10T14:00:00Z"),
            ms_of("2026-11-10T15:00:00Z"));
    session(f, "acme", "s-in-b", "u6", "viewer", ms_of("2026-11-10T14:00:00Z"),
            ms_of("2026-11-10T18:00:00Z"));
    session(f, "acme", "s-late-open", "u7", "creator", ms_of("2026-11-11T04:59:59Z"), 0);
    session(f, "acme", "s-after", "u8", "creator", ms_of("2026-11-11T05:00:00Z"), 0);
    /* an ended session whose end moved later: still found by its latest end */
    session(f, "acme", "s-moved", "u9", "creator", ms_of("2026-11-08T10:00:00Z"),
            ms_of("2026-11-09T10:00:00Z"));
    commit(f);
    session(f, "acme", "s-moved", "u9", "creator", ms_of("2026-11-08T10:00:00Z"),
            ms_of("2026-11-10T10:00:00Z"));
    commit(f);
    int64_t now = ms_of("2026-11-20T00:00:00Z");
    const char *all[] = {"s-long-open", "s-long-ended", "s-moved", "s-early-utc-day",
                         "s-zero",      "s-in-a",       "s-in-b",  "s-late-open"};
    struct got g;
    for (uint32_t rows = 1; rows <= 9; rows++) {
        sessions(f, "2026-11-10", "2026-11-10", "", "", rows, now, &g);
        expect(&g, all, 8);
    }
    sessions(f, "2026-11-10", "2026-11-10", "creator", "", 2, now, &g);
    const char *creator[] = {"s-long-open", "s-long-ended", "s-moved",
                             "s-zero",      "s-in-a",       "s-late-open"};
    expect(&g, creator, 6);
    sessions(f, "2026-11-10", "2026-11-10", "all", "u1", 100, now, &g);
    const char *u1[] = {"s-long-open", "s-in-a"};
    expect(&g, u1, 2);
    assert_int_equal(g.chunks, 1);

    /* the open session closes: the restart reads the span index and memory alike */
    session(f, "acme", "s-long-open", "u1", "creator", ms_of("2026-11-01T12:00:00Z"),
            ms_of("2026-11-10T05:00:01Z"));
    commit(f);
    fx_close(f);
    fx_open(f);
    sessions(f, "2026-11-10", "2026-11-10", "", "", 3, now, &g);
    expect(&g, all, 8);
    sessions(f, "2026-11-11", "2026-11-11", "", "", 3, now, &g);
    const char *next[] = {"s-late-open", "s-after"};
    expect(&g, next, 2);
    sessions(f, "2026-11-02", "2026-11-03", "", "", 3, now, &g);
    const char *early[] = {"s-long-open"};
    expect(&g, early, 1);

    /* a cursor that is not ours */
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__SESSIONS, "acme", "", now);
    q.from_date = "2026-11-10";
    q.to_date = "2026-11-10";
    q.cursor.data = (uint8_t *)"zz";
    q.cursor.len = 2;
    Licmon__V1__Reply bad = LICMON__V1__REPLY__INIT;
    assert_int_equal(agg_app_query(f->app, &q, &bad), -1);
    assert_string_equal(bad.error, "cursor: not one of ours");
}

/* Many sessions: chunks of max_rows, the scan budget, the user filter. */
static void test_sessions_many(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    int64_t t0 = ms_of("2026-06-01T00:00:00Z");
    char sid[32], user[16];
    for (int i = 0; i < 30000; i++) {
        snprintf(sid, sizeof(sid), "s%06d", i);
        snprintf(user, sizeof(user), "user%d", i % 50);
        session(f, "acme", sid, user, "creator", t0 + i * 5 * MIN_MS,
                t0 + i * 5 * MIN_MS + 3 * MIN_MS);
        if (i % 1000 == 999)
            commit(f);
    }
    commit(f);
    int64_t now = t0 + 200 * DAY_MS;
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__SESSIONS, "acme", "", now);
    q.from_date = "2026-06-01";
    q.to_date = "2026-12-31";
    q.user = "user7";
    q.max_rows = 5000;
    size_t total = 0, chunks = 0;
    uint8_t cursor[512];
    for (;;) {
        Licmon__V1__Reply rep = ask(f, &q);
        Licmon__V1__QueryReply *qr = rep.query;
        for (size_t i = 0; i < qr->n_sessions; i++)
            assert_string_equal(qr->sessions[i]->user, "user7");
        total += qr->n_sessions;
        chunks++;
        size_t cl = qr->next_cursor.len;
        if (cl)
            memcpy(cursor, qr->next_cursor.data, cl);
        agg_app_query_clear(&rep);
        if (!cl)
            break;
        q.cursor.data = cursor;
        q.cursor.len = cl;
    }
    assert_int_equal(total, 600);
    assert_int_equal(chunks, 2); /* 30,000 records with a budget of 20,000 per chunk */
}

/* ------------------------------------------------------------ retention */

static void put(struct fx *f, const uint8_t *k, size_t kl, const void *v, size_t vl)
{
    store_batch_put(f->b, k, kl, v, vl);
}

static bool exists(struct fx *f, const uint8_t *k, size_t kl)
{
    char *v;
    size_t vl;
    int rc = store_get(f->store, k, kl, &v, &vl);
    assert_true(rc >= 0);
    if (rc == 1)
        free(v);
    return rc == 1;
}

static size_t rkey(uint8_t *buf, char kind, const char *org, int64_t num)
{
    size_t n = 0, ol = strlen(org);
    buf[n++] = 'R';
    buf[n++] = (uint8_t)kind;
    memcpy(buf + n, org, ol);
    n += ol;
    buf[n++] = 0;
    memcpy(buf + n, "creator", 7);
    n += 7;
    buf[n++] = 0;
    keys_put_i64(buf + n, num);
    return n + 8;
}

static void test_retention_filter(void **state)
{
    struct fx *f = *state;
    int64_t now = time_now_ms();
    int64_t old_min = now - (400 + 4) * DAY_MS, fresh_min = now - (400 + 2) * DAY_MS;
    Licmon__V1__OrgSettings *s = settings_default("long");
    s->retention_days_minutes = 500;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_SETTINGS;
    c.settings = s;
    apply_change(f, &c);
    settings_free(&s);
    /* minute rows kept longer than day rows: the day rows stay as long */
    s = settings_default("wide");
    s->retention_days_minutes = 3000;
    c.settings = s;
    apply_change(f, &c);
    settings_free(&s);
    commit(f); /* publishes */

    uint8_t k[10][128];
    size_t kl[10];
    kl[0] = rkey(k[0], 'm', "acme", old_min / MIN_MS);               /* dropped */
    kl[1] = rkey(k[1], 'm', "acme", fresh_min / MIN_MS);             /* kept: grace */
    kl[2] = rkey(k[2], 'h', "acme", old_min / MIN_MS);               /* dropped */
    kl[3] = rkey(k[3], 'd', "acme", old_min / DAY_MS);               /* kept: 5 years */
    kl[4] = rkey(k[4], 'd', "acme", (now - 1834 * DAY_MS) / DAY_MS); /* dropped */
    kl[5] = rkey(k[5], 'm', "long", old_min / MIN_MS); /* kept: the org keeps 500 days */
    kl[6] = agg_state_archive_key(k[6], "acme", old_min - DAY_MS, "old", 3);
    kl[7] = agg_state_archive_key(k[7], "acme", old_min - DAY_MS, "open", 4);
    kl[8] = agg_state_span_key(k[8], "acme", old_min / DAY_MS - 2, old_min - 9 * DAY_MS, "x", 1);
    kl[9] = rkey(k[9], 'd', "wide", (now - 2500 * DAY_MS) / DAY_MS); /* kept: as its minutes */
    for (int i = 0; i < 6; i++)
        put(f, k[i], kl[i], "v", 1);
    put(f, k[9], kl[9], "v", 1);
    Licmon__V1__SessionRecord r = LICMON__V1__SESSION_RECORD__INIT;
    r.session_id = "old";
    r.org = "acme";
    r.user = "u";
    r.start_ms = old_min - DAY_MS;
    r.end_ms = old_min;
    r.end_reason = LICMON__V1__END_REASON__MANUAL_LOGOUT;
    size_t vl;
    uint8_t *v = pb_pack(&r.base, &vl);
    int64_t end;
    assert_int_equal(agg_retention_record_end(v, vl, &end), 1);
    assert_int_equal(end, old_min);
    put(f, k[6], kl[6], v, vl);
    free(v);
    r.session_id = "open";
    r.end_ms = 0;
    r.end_reason = LICMON__V1__END_REASON__OPEN;
    v = pb_pack(&r.base, &vl);
    put(f, k[7], kl[7], v, vl);
    free(v);
    put(f, k[8], kl[8], "", 0);
    assert_int_equal(store_write(f->store, f->b, false), 0);
    store_batch_clear(f->b);

    /* a filter whose settings were never published keeps everything */
    struct agg_retention *fresh = agg_retention_new();
    for (int i = 0; i < 10; i++)
        assert_false(agg_retention_expired(fresh, (const char *)k[i], kl[i], "", 0, now));
    agg_retention_free(&fresh);

    /* the filter judges by the aggregator's clock, not the host's: at a
     * clock ten years back, nothing is old enough to drop */
    agg_retention_set_now(f->ret, now - 3650 * DAY_MS);
    store_compact(f->store);
    for (int i = 0; i < 10; i++)
        if (!exists(f, k[i], kl[i]))
            fail_msg("key %d dropped by a clock ten years back", i);
    agg_retention_set_now(f->ret, now);
    store_compact(f->store);
    bool want[10] = {false, true, false, true, false, true, false, true, false, true};
    for (int i = 0; i < 10; i++)
        if (exists(f, k[i], kl[i]) != want[i])
            fail_msg("key %d: expected %s", i, want[i] ? "kept" : "dropped");
    struct agg_app_stats st;
    agg_app_stats(f->app, &st);
    assert_int_equal(st.retention_dropped, 5);
    /* the org row, settings and log keys are never judged */
    assert_false(agg_retention_expired(f->ret, "Mapplied", 8, "", 0, now));
}

/* Readers on other threads (as RocksDB's compaction threads) while the
 * snapshot is swapped again and again: under ASan a snapshot freed too
 * early is a use-after-free. */
struct hammer {
    struct agg_retention *ret;
    atomic_bool stop;
    atomic_uint_fast64_t drops; /* by all readers so far */
    uint8_t key[128];
    size_t kl;
};

struct reader {
    struct hammer *h;
    uint64_t drops;
};

static void *hammer_reader(void *arg)
{
    struct reader *r = arg;
    struct hammer *h = r->h;
    int64_t now = time_now_ms();
    while (!atomic_load(&h->stop))
        if (agg_retention_expired(h->ret, (const char *)h->key, h->kl, "", 0, now)) {
            r->drops++;
            atomic_fetch_add(&h->drops, 1);
        }
    return NULL;
}

static void test_retention_swaps(void **state)
{
    (void)state;
    struct hammer h = {.ret = agg_retention_new()};
    atomic_init(&h.stop, false);
    atomic_init(&h.drops, 0);
    h.kl = rkey(h.key, 'm', "org5", (time_now_ms() - 450 * DAY_MS) / MIN_MS);
    pthread_t th[2];
    struct reader rd[2] = {{&h, 0}, {&h, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_reader, &rd[i]), 0);
    char org[16];
    /* on a loaded machine the readers may not have run yet after 3000
     * rounds: go on (yielding) until they have seen a drop */
    for (int round = 0; round < 3000 || (atomic_load(&h.drops) == 0 && round < 3000000); round++) {
        if (round >= 3000)
            sched_yield();
        Licmon__V1__OrgSettings *v[10];
        for (int i = 0; i < 10; i++) {
            snprintf(org, sizeof(org), "org%d", i);
            v[i] = settings_default(org);
            v[i]->retention_days_minutes = round % 2 ? 500 : 400; /* org5 keeps, drops, ... */
        }
        agg_retention_publish(h.ret, (const Licmon__V1__OrgSettings *const *)v, 10);
        for (int i = 0; i < 10; i++)
            settings_free(&v[i]);
    }
    atomic_store(&h.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_true(rd[0].drops + rd[1].drops > 0);
    assert_int_equal(agg_retention_dropped(h.ret), rd[0].drops + rd[1].drops);
    agg_retention_free(&h.ret);
}

/* Denials of one user arriving out of order (the sessionizer emits each at
 * its own time): every minute, hour and day with a denial of the user has
 * the user as one denied user, also across midnight. */
static void test_denials_out_of_order(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    const Licmon__V1__Counted__What den = LICMON__V1__COUNTED__WHAT__DENIAL;
    counted(f, "acme", "alice", "creator", ms_of("2026-11-10T10:01:02Z"), den);
    counted(f, "acme", "alice", "creator", ms_of("2026-11-10T10:00:59Z"), den);
    counted(f, "acme", "alice", "creator", ms_of("2026-11-10T10:01:30Z"), den);
    counted(f, "acme", "bob", "creator", ms_of("2026-11-11T00:00:02Z"), den);
    counted(f, "acme", "bob", "creator", ms_of("2026-11-10T23:59:59Z"), den);
    hold(f, "acme", "zed", "creator", ms_of("2026-11-11T01:00:00Z"), true); /* seals them */
    commit(f);
    int64_t now = ms_of("2026-11-11T12:00:00Z");
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__USAGE, "acme", "creator", now);
    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.date = "2026-11-10";
    q.hour = 10;
    Licmon__V1__Reply rep = ask(f, &q);
    assert_int_equal(rep.query->rows[0]->denials, 1);
    assert_int_equal(rep.query->rows[0]->denied_users, 1);
    assert_int_equal(rep.query->rows[1]->denials, 2);
    assert_int_equal(rep.query->rows[1]->denied_users, 1);
    agg_app_query_clear(&rep);
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = "2026-11-10";
    q.to_date = "2026-11-11";
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_rows, 2);
    assert_int_equal(rep.query->rows[0]->denials, 4);
    assert_int_equal(rep.query->rows[0]->denied_users, 2);
    assert_int_equal(rep.query->rows[1]->denials, 1);
    assert_int_equal(rep.query->rows[1]->denied_users, 1);
    agg_app_query_clear(&rep);
    q = query(LICMON__V1__QUERY_KIND__STATS, "acme", "creator", now);
    q.from_date = "2026-11-11";
    q.to_date = "2026-11-11";
    rep = ask(f, &q);
    assert_int_equal(rep.query->stats->denied_users, 1);
    agg_app_query_clear(&rep);
    q.from_date = "2026-11-10";
    rep = ask(f, &q);
    assert_int_equal(rep.query->stats->denials, 5);
    assert_int_equal(rep.query->stats->denied_users, 2);
    agg_app_query_clear(&rep);
}

/* With an hour of lateness, denials of one user in many open minutes, then
 * late ones into known minutes and into a new minute before all of them:
 * every minute, hour has the user once. */
static void test_denials_out_of_order_many_minutes(void **state)
{
    struct fx *f = *state;
    settings_late(f, "acme", "UTC", 3600);
    const Licmon__V1__Counted__What den = LICMON__V1__COUNTED__WHAT__DENIAL;
    int64_t t0 = ms_of("2026-11-10T10:00:10Z");
    for (int i = 0; i < 6; i++)
        counted(f, "acme", "alice", "creator", t0 + i * MIN_MS, den);
    for (int i = 0; i < 3; i++) /* 10:00:40, 10:01:40, 10:02:40 */
        counted(f, "acme", "alice", "creator", t0 + i * MIN_MS + 30000, den);
    counted(f, "acme", "alice", "creator", ms_of("2026-11-10T09:59:00Z"), den);
    hold(f, "acme", "zed", "creator", ms_of("2026-11-10T12:00:00Z"), true); /* seals them */
    commit(f);
    Licmon__V1__Query q =
        query(LICMON__V1__QUERY_KIND__USAGE, "acme", "creator", ms_of("2026-11-10T13:00:00Z"));
    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.date = "2026-11-10";
    q.hour = 10;
    Licmon__V1__Reply rep = ask(f, &q);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rep.query->rows[i]->denials, i < 3 ? 2 : 1);
        assert_int_equal(rep.query->rows[i]->denied_users, 1);
    }
    agg_app_query_clear(&rep);
    q.hour = 9;
    rep = ask(f, &q);
    assert_int_equal(rep.query->rows[59]->denials, 1);
    assert_int_equal(rep.query->rows[59]->denied_users, 1);
    agg_app_query_clear(&rep);
    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    rep = ask(f, &q);
    assert_int_equal(rep.query->rows[9]->denials, 1);
    assert_int_equal(rep.query->rows[9]->denied_users, 1);
    assert_int_equal(rep.query->rows[10]->denials, 9);
    assert_int_equal(rep.query->rows[10]->denied_users, 1);
    agg_app_query_clear(&rep);
}

/* A user denied again after more than the minute retention of quiet is
 * still one denied user over a period holding both denials. */
static void test_distinct_users_over_years(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    counted(f, "acme", "x", "creator", ms_of("2024-01-01T10:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    commit(f);
    /* 500 days on: the org's clock moves, collection runs */
    counted(f, "acme", "y", "creator", ms_of("2025-05-14T10:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    for (int i = 0; i < AGG_APP_GC_EVERY; i++)
        commit(f);
    counted(f, "acme", "x", "creator", ms_of("2025-05-15T10:00:00Z"),
            LICMON__V1__COUNTED__WHAT__DENIAL);
    commit(f);
    Licmon__V1__Query q =
        query(LICMON__V1__QUERY_KIND__STATS, "acme", "creator", ms_of("2025-06-01T12:00:00Z"));
    q.from_date = "2024-01-01";
    q.to_date = "2025-06-01";
    Licmon__V1__Reply rep = ask(f, &q);
    assert_int_equal(rep.query->stats->denials, 3);
    assert_int_equal(rep.query->stats->denied_users, 2);
    agg_app_query_clear(&rep);
}

/* Counting state of users quiet for longer than the day retention (the
 * longest stats period) is collected, behind the org's own change time (not
 * the wall clock). */
static void test_gc_behind_org_clock(void **state)
{
    struct fx *f = *state;
    settings(f, "acme", "UTC");
    int64_t t0 = ms_of("2025-01-01T10:00:00Z");
    counted(f, "acme", "quiet", "creator", t0, LICMON__V1__COUNTED__WHAT__DENIAL);
    hold(f, "acme", "holder", "creator", t0, true); /* holds: never collected */
    counted(f, "acme", "recent", "creator", t0 + 1820 * DAY_MS, LICMON__V1__COUNTED__WHAT__DENIAL);
    commit(f);
    struct agg_app_stats st;
    agg_app_stats(f->app, &st);
    uint64_t before = st.users;
    for (int i = 0; i < AGG_APP_GC_EVERY; i++)
        commit(f);
    agg_app_stats(f->app, &st);
    assert_int_equal(st.users, before); /* 1,820 days: everyone kept (day retention 1,830) */
    counted(f, "acme", "recent", "creator", t0 + 1831 * DAY_MS, LICMON__V1__COUNTED__WHAT__DENIAL);
    for (int i = 0; i < AGG_APP_GC_EVERY; i++)
        commit(f);
    agg_app_stats(f->app, &st);
    assert_int_equal(st.users, before - 1);
    fx_close(f); /* and gone from the store too */
    fx_open(f);
    agg_app_stats(f->app, &st);
    assert_int_equal(st.users, before - 1);
}

/* ------------------------------------------------------------- orgs */

/* The ORGS answer as one comma-joined string. */
static void orgs_of(struct fx *f, char *out, size_t len)
{
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__ORGS, "", NULL, 0);
    Licmon__V1__Reply rep = ask(f, &q);
    assert_int_equal(rep.body_case, LICMON__V1__REPLY__BODY_QUERY);
    out[0] = '\0';
    for (size_t i = 0; i < rep.query->n_orgs; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", rep.query->orgs[i]);
    agg_app_query_clear(&rep);
}

static void test_orgs(void **state)
{
    struct fx *f = *state;
    char got[256];
    orgs_of(f, got, sizeof(got));
    assert_string_equal(got, ""); /* nothing seen yet */

    int64_t t0 = ms_of("2026-03-02T09:00:00Z");
    settings(f, "zeta", "Europe/Berlin");       /* settings only */
    hold(f, "acme", "u1", "creator", t0, true); /* usage only: a hold */
    hold(f, "acme", "u1", "creator", t0 + MIN_MS, false);
    counted(f, "beta", "u2", "creator", t0, LICMON__V1__COUNTED__WHAT__DENIAL); /* a denial only */
    session(f, "delta", "s1", "u3", "viewer", t0, t0 + HOUR_MS);
    settings(f, "acme", "UTC"); /* known twice over: listed once */
    commit(f);
    orgs_of(f, got, sizeof(got));
    assert_string_equal(got, "acme,beta,delta,zeta");

    /* asking about an org does not make it known; the query's org is ignored */
    Licmon__V1__Query q = query(LICMON__V1__QUERY_KIND__LICENSES, "ghost", NULL, t0);
    Licmon__V1__Reply rep = ask(f, &q);
    agg_app_query_clear(&rep);
    q = query(LICMON__V1__QUERY_KIND__ORGS, "not a valid org!", NULL, t0);
    rep = ask(f, &q);
    assert_int_equal(rep.query->n_orgs, 4);
    assert_string_equal(rep.query->timezone, ""); /* no org's settings in this answer */
    assert_null(rep.query->settings);
    agg_app_query_clear(&rep);

    /* the same after a restart (read back from the store) */
    fx_close(f);
    fx_open(f);
    orgs_of(f, got, sizeof(got));
    assert_string_equal(got, "acme,beta,delta,zeta");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_days_that_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dst_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_filter, setup, teardown),
        cmocka_unit_test(test_retention_swaps),
        cmocka_unit_test_setup_teardown(test_gc_behind_org_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distinct_users_over_years, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denials_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denials_out_of_order_many_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orgs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
