/* Unit tests of ingest's event validation: every rejection reason names
 * its field, and good events pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../ingest/ingest_journal.h"
#include "../../ingest/ingest_validate.h"
#include "capture.h"
#include "damage.h"
#include "health.h"
#include "keys.h"
#include "lstream.h"
#include "store.h"
#include "xmem.h"
#include "timeutil.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1764237600000LL

static Licmon__V1__Event good(void)
{
    Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
    ev.event_id = "e1";
    ev.org = "acme";
    ev.user = "alice@acme.example";
    ev.ts_ms = NOW - 1000;
    ev.kind = LICMON__V1__EVENT_KIND__LOGIN;
    ev.license_type = "reviewer";
    return ev;
}

static void expect(const Licmon__V1__Event *ev, const char *prefix)
{
    char buf[160];
    const char *r = ingest_validate_event(ev, NOW, NOW, 400, buf, sizeof(buf));
    if (!prefix) {
        if (r)
            fail_msg("expected acceptance, got '%s'", r);
        return;
    }
    if (!r || strncmp(r, prefix, strlen(prefix)) != 0)
        fail_msg("expected '%s...', got '%s'", prefix, r ? r : "(accepted)");
}

static void test_good_events(void **state)
{
    (void)state;
    Licmon__V1__Event ev = good();
    expect(&ev, NULL);
    ev.requested_type = "creator";
    expect(&ev, NULL);
    ev = good();
    ev.kind = LICMON__V1__EVENT_KIND__ACTIVITY;
    ev.license_type = "";
    expect(&ev, NULL);
    ev.kind = LICMON__V1__EVENT_KIND__LOGOUT;
    expect(&ev, NULL);
    ev.user = "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80";
    expect(&ev, NULL);
    ev.ts_ms = NOW + 86400000LL; /* exactly one day ahead is still accepted */
    expect(&ev, NULL);
}

static void test_rejections(void **state)
{
    (void)state;
    char longid[200], longuser[300];
    memset(longid, 'x', 129);
    longid[129] = 0;
    memset(longuser, 'u', 257);
    longuser[257] = 0;
    Licmon__V1__Event ev;
#define CASE(stmt, reason)                                                                         \
    ev = good();                                                                                   \
    stmt;                                                                                          \
    expect(&ev, reason)
    CASE(ev.event_id = "", "event_id: missing");
    CASE(ev.event_id = longid, "event_id: longer");
    CASE(ev.org = "", "org: missing");
    CASE(ev.org = "ac me", "org: must match");
    CASE(ev.user = "", "user: missing");
    CASE(ev.user = longuser, "user: longer");
    CASE(ev.user = "bad\xc3", "user: not valid UTF-8");
    CASE(ev.user = "\xed\xa0\x80", "user: not valid UTF-8");
    CASE(ev.user = "\xc0\xaf", "user: not valid UTF-8");
    CASE(ev.kind = LICMON__V1__EVENT_KIND__KIND_UNSPECIFIED, "kind: missing");
    CASE(ev.kind = 9, "kind: unknown");
    CASE(ev.license_type = "", "license_type: missing (required for login)");
    CASE((ev.kind = LICMON__V1__EVENT_KIND__DENIED, ev.license_type = ""),
         "license_type: missing (required for denied)");
    CASE(ev.license_type = "Reviewer", "license_type: must match");
    CASE(ev.license_type = "all", "license_type: 'all'");
    CASE(ev.requested_type = "reviewer", "requested_type: same");
    CASE(ev.requested_type = "Creator!", "requested_type: must match");
    CASE((ev.kind = LICMON__V1__EVENT_KIND__ACTIVITY, ev.requested_type = "creator"),
         "requested_type: only a login");
    CASE(ev.ts_ms = 0, "ts: missing");
    CASE(ev.ts_ms = NOW - 401LL * 86400000, "ts: older");
    CASE(ev.ts_ms = NOW / 1000,
         "ts: 1764237600 is before 1974 as milliseconds; it looks like seconds");
    CASE(ev.ts_ms = 999999999, "ts: older");
    CASE(ev.ts_ms = NOW + 86400001LL, "ts: more than one day");
#undef CASE
}

/* Each event of a frame gets the name of its string field holding a NUL
 * byte, in the order protobuf-c unpacks them. */
static void test_batch_nul_fields(void **state)
{
    (void)state;
    Licmon__V1__Event a = LICMON__V1__EVENT__INIT, b = LICMON__V1__EVENT__INIT;
    Licmon__V1__Event *evs[] = {&a, &b, &a};
    a.event_id = "ea";
    a.user = "alice";
    b.event_id = "eb";
    b.license_type = "xxxxxxx";
    Licmon__V1__EventBatch batch = LICMON__V1__EVENT_BATCH__INIT;
    batch.events = evs;
    batch.n_events = 3;
    size_t len;
    uint8_t *buf = pb_pack(&batch.base, &len);
    const char *out[3] = {"x", "x", "x"};
    ingest_batch_nul_fields(buf, len, 3, out);
    assert_true(!out[0] && !out[1] && !out[2]);
    ((uint8_t *)memmem(buf, len, "xxxxxxx", 7))[3] = 0;
    ((uint8_t *)memmem(buf, len, "eb", 2))[1] = 0;
    ingest_batch_nul_fields(buf, len, 3, out);
    assert_null(out[0]);
    assert_string_equal(out[1], "event_id"); /* the first one in the frame */
    assert_null(out[2]);
    free(buf);
}

/* A journal over a fresh database, for a test's state */
struct journal_fixture {
    char *dir;
    struct store *st;
    struct ingest_journal *j;
};

static int journal_setup(void **state)
{
    struct journal_fixture *f = xcalloc(1, sizeof(*f));
    f->dir = tmpdir_new();
    f->st = store_open(f->dir);
    assert_non_null(f->st);
    f->j = ingest_journal_open(f->st, 400);
    *state = f;
    return 0;
}

static int journal_teardown(void **state)
{
    struct journal_fixture *f = *state;
    ingest_journal_free(&f->j);
    store_close(&f->st);
    tmpdir_free(&f->dir);
    free(f);
    return 0;
}

/* Commits j's group and returns the last record journaled (free it with
 * licmon__v1__journal_record__free_unpacked); *chunk_len: the size of the
 * log record holding it. */
static Licmon__V1__JournalRecord *commit_last_record(struct ingest_journal *j, size_t *chunk_len)
{
    assert_int_equal(ingest_journal_commit(j), 0);
    struct lstream *log = ingest_journal_log(j);
    char *val;
    size_t len;
    assert_int_equal(lstream_get(log, lstream_head(log), &val, &len), 1);
    Licmon__V1__Chunk *chunk = licmon__v1__chunk__unpack(NULL, len, (const uint8_t *)val);
    assert_non_null(chunk);
    Licmon__V1__JournalRecord *rec = licmon__v1__journal_record__unpack(
        NULL, chunk->items[chunk->n_items - 1].len, chunk->items[chunk->n_items - 1].data);
    assert_non_null(rec);
    licmon__v1__chunk__free_unpacked(chunk, NULL);
    free(val);
    if (chunk_len)
        *chunk_len = len;
    return rec;
}

/* What is journaled is the event as validated: a field this version does
 * not know (a newer producer's, or just padding) is not kept. */
static void test_journal_keeps_known_fields(void **state)
{
    struct ingest_journal *j = ((struct journal_fixture *)*state)->j;
    Licmon__V1__Event ev = good();
    size_t evlen = licmon__v1__event__get_packed_size(&ev);
    uint8_t frame[1024], *p = frame;
    *p++ = 0x12; /* field 2, events: the event and an unknown field 15 of 500 bytes */
    *p++ = (uint8_t)(0x80 | ((evlen + 3 + 500) & 0x7f));
    *p++ = (uint8_t)((evlen + 3 + 500) >> 7);
    p += licmon__v1__event__pack(&ev, p);
    *p++ = 15 << 3 | 2;
    *p++ = 0x80 | (500 & 0x7f);
    *p++ = 500 >> 7;
    memset(p, 'z', 500);
    p += 500;
    Licmon__V1__EventBatch *b = licmon__v1__event_batch__unpack(NULL, (size_t)(p - frame), frame);
    assert_non_null(b);
    assert_int_equal(b->events[0]->base.n_unknown_fields, 1);
    Licmon__V1__BatchAck ack = LICMON__V1__BATCH_ACK__INIT;
    ingest_journal_add_batch(j, b, NULL, NOW, NOW, &ack);
    assert_int_equal(ack.accepted, 1);
    size_t len;
    Licmon__V1__JournalRecord *rec = commit_last_record(j, &len);
    assert_string_equal(rec->event->user, ev.user);
    assert_int_equal(rec->event->base.n_unknown_fields, 0);
    assert_true(len < 300);
    licmon__v1__journal_record__free_unpacked(rec, NULL);
    ingest_journal_ack_clear(&ack);
    licmon__v1__event_batch__free_unpacked(b, NULL);
}

/* Adds the events to the journal's group; returns the acknowledgement's
 * counts as accepted * 10000 + duplicate * 100 + rejected, and the
 * acknowledgement itself in *keep (clear it) unless keep is NULL */
static int add_events(struct ingest_journal *j, Licmon__V1__Event *evs, size_t n, int64_t now,
                      Licmon__V1__BatchAck *keep)
{
    Licmon__V1__Event **p = xcalloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++)
        p[i] = &evs[i];
    Licmon__V1__EventBatch b = LICMON__V1__EVENT_BATCH__INIT;
    b.n_events = n;
    b.events = p;
    Licmon__V1__BatchAck ack = LICMON__V1__BATCH_ACK__INIT;
    ingest_journal_add_batch(j, &b, NULL, now, now, &ack);
    int r = (int)(ack.accepted * 10000 + ack.duplicate * 100 + ack.n_rejections);
    if (keep)
        *keep = ack;
    else
        ingest_journal_ack_clear(&ack);
    free(p);
    return r;
}

/* The longest ids SPEC allows (a 64-byte org, a 128-byte event_id) make
 * their own duplicate key: they once made an empty one, so every such
 * event after the first was taken for a duplicate and lost. */
static void test_longest_ids_are_distinct(void **state)
{
    struct ingest_journal *j = ((struct journal_fixture *)*state)->j;
    char org[65], id1[129], id2[129];
    memset(org, 'o', 64);
    org[64] = 0;
    memset(id1, '1', 128);
    id1[128] = 0;
    memcpy(id2, id1, sizeof(id2));
    id2[127] = '2';
    Licmon__V1__Event evs[2] = {good(), good()};
    evs[0].org = evs[1].org = org;
    evs[0].event_id = id1;
    evs[1].event_id = id2;
    assert_int_equal(add_events(j, evs, 2, NOW, NULL), 20000);
    assert_int_equal(ingest_journal_commit(j), 0);
    assert_int_equal(add_events(j, evs, 2, NOW, NULL), 200); /* sent again: duplicates */
    evs[0].org = "acme"; /* another org, the same long id: its own event */
    assert_int_equal(add_events(j, evs, 1, NOW, NULL), 10000);
}

/* An event journaled, then sent again after its ts has left the retention
 * (its acknowledgement was lost, a grown log is imported again): it is a
 * duplicate, as SPEC §2 says, not a rejection a producer would take for
 * final. One never journaled is still refused for its age. */
static void test_duplicate_before_age(void **state)
{
    struct ingest_journal *j = ((struct journal_fixture *)*state)->j;
    Licmon__V1__Event evs[2] = {good(), good()};
    evs[0].ts_ms = NOW - 400LL * 86400000 + 2000;
    evs[1].event_id = "e2";
    evs[1].ts_ms = evs[0].ts_ms;
    assert_int_equal(add_events(j, evs, 1, NOW, NULL), 10000);
    assert_int_equal(ingest_journal_commit(j), 0);
    assert_int_equal(add_events(j, evs, 2, NOW + 5000, NULL), 101);
    /* inside one group too: the second e1 is the first's duplicate */
    evs[0].event_id = "e3";
    evs[0].ts_ms = NOW - 1000;
    Licmon__V1__Event three[3] = {evs[0], evs[0], evs[0]};
    three[2].ts_ms = 0; /* its other fields no longer matter */
    assert_int_equal(add_events(j, three, 3, NOW, NULL), 10200);
}

/* Events are counted on the wire before a frame is unpacked */
static void test_count_events(void **state)
{
    (void)state;
    uint8_t frame[3000];
    size_t n = 0;
    frame[n++] = 0x08; /* batch_id 7 */
    frame[n++] = 7;
    for (int i = 0; i < 1000; i++) {
        frame[n++] = 0x12; /* an empty event */
        frame[n++] = 0;
    }
    assert_int_equal(ingest_batch_count_events(frame, n), 1000);
    assert_int_equal(ingest_batch_count_events(frame, 0), 0);
    frame[n++] = 0x12; /* an event cut short */
    frame[n++] = 5;
    assert_int_equal(ingest_batch_count_events(frame, n), -1);
}

static void test_dedup_retention(void **state)
{
    (void)state;
    /* ingest's clock as the server published it, a year off the host's:
     * the filter goes by it */
    int64_t now = time_now_ms() + 365LL * 86400000;
    struct ingest_expiry x = {.days = 400, .now_ms = now, .forgotten_ms = INT64_MAX};
    uint8_t ts[8];
    keys_put_i64(ts, now - 402LL * 86400000);
    assert_true(ingest_journal_expired(&x, "Dacme\0e1", 8, (const char *)ts, 8));
    keys_put_i64(ts, now - 400LL * 86400000);
    assert_false(ingest_journal_expired(&x, "Dacme\0e1", 8, (const char *)ts, 8));
    keys_put_i64(ts, 0);
    assert_false(ingest_journal_expired(&x, "L\0\0\0\0\0\0\0\1", 9, (const char *)ts, 8));
    /* nothing past the saved bound is dropped */
    x.forgotten_ms = now - 403LL * 86400000;
    keys_put_i64(ts, now - 402LL * 86400000);
    assert_false(ingest_journal_expired(&x, "Dacme\0e1", 8, (const char *)ts, 8));
}

/* The bound before which duplicates may be forgotten is saved before the
 * filter uses it, and outlives a longer --retention-days: an event older
 * than it is refused (sent again, it could count twice), one after it and
 * inside the new retention is taken. */
static void test_forgotten_bound(void **state)
{
    struct journal_fixture *f = *state;
    static struct ingest_expiry x = {.days = 400};
    ingest_journal_set_expiry(f->j, &x, false);
    assert_int_equal(x.forgotten_ms, 0);
    ingest_journal_clock(f->j, NOW);
    int64_t bound = NOW - 401LL * 86400000 + 3600000;
    assert_int_equal(x.forgotten_ms, bound);
    assert_int_equal(x.now_ms, NOW);
    ingest_journal_clock(f->j, NOW + 1000); /* within the hour: no new bound */
    assert_int_equal(x.forgotten_ms, bound);
    /* ingest restarted with --retention-days 1000 */
    ingest_journal_free(&f->j);
    f->j = ingest_journal_open(f->st, 1000);
    static struct ingest_expiry y = {.days = 1000};
    ingest_journal_set_expiry(f->j, &y, false);
    assert_int_equal(y.forgotten_ms, bound);
    ingest_journal_clock(f->j, NOW + 2000);
    assert_int_equal(y.forgotten_ms, bound); /* the longer retention never lowers it */
    Licmon__V1__Event evs[2] = {good(), good()};
    evs[0].ts_ms = bound - 1;
    evs[1].event_id = "e2";
    evs[1].ts_ms = bound;
    Licmon__V1__BatchAck ack;
    assert_int_equal(add_events(f->j, evs, 2, NOW + 2000, &ack), 10001);
    assert_int_equal(ack.rejections[0]->index, 0);
    assert_true(strstr(ack.rejections[0]->reason, "ts: before ") == ack.rejections[0]->reason);
    assert_non_null(strstr(ack.rejections[0]->reason, "could count twice"));
    ingest_journal_ack_clear(&ack);
    /* --reset-dedup-bound: the bound goes, the next reading sets it anew */
    static struct ingest_expiry z = {.days = 1000};
    ingest_journal_set_expiry(f->j, &z, true);
    assert_int_equal(z.forgotten_ms, 0);
    ingest_journal_clock(f->j, NOW + 3000);
    assert_int_equal(z.forgotten_ms, NOW + 3000 - 1001LL * 86400000 + 3600000);
}

/* The duplicate index cut by a read error (a damaged block on disk): ingest
 * exits before acknowledging anything of the group, so producers send the
 * batch again, instead of rejecting the events it could not check (a
 * rejection is final: the events would never be counted). */
#define DAMAGED_IDS 20000
static char *damaged_dir;
static char (*damaged_ids)[96];

/* the child: the batch of every id, over the damaged index */
static void add_damaged_batch(void)
{
    struct store *st = store_open(damaged_dir);
    struct ingest_journal *j = ingest_journal_open(st, 400);
    Licmon__V1__Event *evs = xcalloc(DAMAGED_IDS, sizeof(*evs));
    for (int i = 0; i < DAMAGED_IDS; i++) {
        evs[i] = good();
        evs[i].event_id = damaged_ids[i];
    }
    Licmon__V1__BatchAck ack;
    add_events(j, evs, DAMAGED_IDS, NOW, &ack);
    _exit(ack.rejected > 0 ? 2 : 0);
}

static void test_unreadable_dedup_index_is_not_a_rejection(void **state)
{
    (void)state;
    damaged_dir = tmpdir_new();
    struct store *st = store_open(damaged_dir);
    assert_non_null(st);
    damaged_ids = xcalloc(DAMAGED_IDS, sizeof(*damaged_ids));
    uint32_t x = 362436069u;
    struct store_batch *b = store_batch_new();
    uint8_t ts[8];
    keys_put_i64(ts, NOW - 1000);
    for (int i = 0; i < DAMAGED_IDS; i++) {
        uint8_t r[40];
        incompressible(r, sizeof(r), &x);
        char *id = damaged_ids[i];
        int n = snprintf(id, sizeof(damaged_ids[i]), "%05d-", i);
        for (size_t k = 0; k < sizeof(r); k++)
            n += snprintf(id + n, sizeof(damaged_ids[i]) - (size_t)n, "%02x", r[k]);
        uint8_t key[160];
        const char *parts[] = {"acme", id};
        size_t kl = keys_make(key, sizeof(key), KEY_NS_DEDUP, parts, 2);
        store_batch_put(b, key, kl, ts, sizeof(ts));
    }
    assert_int_equal(store_write(st, b, true), 0);
    store_batch_free(&b);
    store_compact(st);
    store_close(&st);
    damage_largest_table(damaged_dir, 1000000);
    assert_int_equal(exit_status_of(add_damaged_batch), 1);
    free(damaged_ids);
    tmpdir_free(&damaged_dir);
}

/* A step of the host's clock ahead that ingest's clock has not taken yet
 * (a VM restored with a stale clock, put right): an event stamped by the
 * clock it steps to is judged against the host's clock, not refused as
 * ahead; it still arrives at ingest's clock, and what is too old is still
 * judged by ingest's clock. */
static void test_events_judged_by_the_later_clock(void **state)
{
    struct ingest_journal *j = ((struct journal_fixture *)*state)->j;
    Licmon__V1__Event ev = good();
    ev.ts_ms = NOW + 3 * 86400000LL;
    Licmon__V1__Event *pev = &ev;
    Licmon__V1__EventBatch batch = LICMON__V1__EVENT_BATCH__INIT;
    batch.events = &pev;
    batch.n_events = 1;
    Licmon__V1__BatchAck ack = LICMON__V1__BATCH_ACK__INIT;
    ingest_journal_add_batch(j, &batch, NULL, NOW, NOW, &ack);
    assert_int_equal(ack.accepted, 0);
    assert_int_equal(ack.n_rejections, 1);
    assert_non_null(strstr(ack.rejections[0]->reason, "ahead"));
    ingest_journal_ack_clear(&ack);
    ingest_journal_add_batch(j, &batch, NULL, NOW, ev.ts_ms + 500, &ack);
    assert_int_equal(ack.accepted, 1);
    ingest_journal_ack_clear(&ack);
    Licmon__V1__JournalRecord *rec = commit_last_record(j, NULL);
    assert_int_equal(rec->arrival_ms, NOW);
    assert_int_equal(rec->event->ts_ms, ev.ts_ms);
    licmon__v1__journal_record__free_unpacked(rec, NULL);
    /* what is too old stays judged by ingest's clock: a host's clock a year
     * ahead, not taken, refuses nothing still inside the retention */
    Licmon__V1__Event old_ev = good();
    old_ev.event_id = "old";
    old_ev.ts_ms = NOW - 399 * 86400000LL;
    pev = &old_ev;
    ack = (Licmon__V1__BatchAck)LICMON__V1__BATCH_ACK__INIT;
    ingest_journal_add_batch(j, &batch, NULL, NOW, NOW + 400 * 86400000LL, &ack);
    assert_int_equal(ack.accepted, 1);
    ingest_journal_ack_clear(&ack);
}

static struct ingest_journal *ahead_j;
static void add_ahead_batch(void)
{
    Licmon__V1__Event evs[3] = {good(), good(), good()};
    evs[0].event_id = "now";
    evs[1].event_id = "soon";
    evs[1].ts_ms = NOW + 30000;
    evs[2].event_id = "later";
    evs[2].ts_ms = NOW + 2 * 3600000;
    Licmon__V1__Event *pevs[3] = {&evs[0], &evs[1], &evs[2]};
    Licmon__V1__EventBatch batch = LICMON__V1__EVENT_BATCH__INIT;
    batch.events = pevs;
    batch.n_events = 3;
    Licmon__V1__BatchAck ack = LICMON__V1__BATCH_ACK__INIT;
    ingest_journal_add_batch(ahead_j, &batch, NULL, NOW, NOW, &ack);
    assert_int_equal(ack.accepted, 3);
    ingest_journal_ack_clear(&ack);
}

static void test_events_ahead_are_told(void **state)
{
    ahead_j = ((struct journal_fixture *)*state)->j;
    struct metric *ahead = metric_counter("licmon_ingest_events_ahead_total", "");
    int64_t before = metric_get(ahead);
    char *log = stderr_of(add_ahead_batch);
    assert_int_equal(metric_get(ahead) - before, 1);
    assert_non_null(strstr(log, "org acme: event later is stamped 7200 s ahead"));
    assert_null(strstr(log, "event soon"));
    free(log);
    assert_int_equal(ingest_journal_commit(ahead_j), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_events),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_batch_nul_fields),
        cmocka_unit_test_setup_teardown(test_journal_keeps_known_fields, journal_setup,
                                        journal_teardown),
        cmocka_unit_test(test_dedup_retention),
        cmocka_unit_test_setup_teardown(test_longest_ids_are_distinct, journal_setup,
                                        journal_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_before_age, journal_setup, journal_teardown),
        cmocka_unit_test(test_count_events),
        cmocka_unit_test_setup_teardown(test_forgotten_bound, journal_setup, journal_teardown),
        cmocka_unit_test(test_unreadable_dedup_index_is_not_a_rejection),
        cmocka_unit_test_setup_teardown(test_events_ahead_are_told, journal_setup,
                                        journal_teardown),
        cmocka_unit_test_setup_teardown(test_events_judged_by_the_later_clock, journal_setup,
                                        journal_teardown),
    };
    return cmocka_run_group_tests_name("ingest_validate", tests, NULL, NULL);
}
