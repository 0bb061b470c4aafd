/* test_licmonctl: the pure parts of licmonctl: batches and the mapping of
 * rejections back to FILE:LINE, line trimming, the supervisor's restart
 * backoff, and the demo traffic model. licmonctl's objects are not in the
 * unit-test link, so the pure files are included here directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/licmonctl/ctl_batch.c"
#include "../../tools/licmonctl/ctl_model.c"

#include "xmem.h"

static Licmon__V1__Event *mk_event(const char *id)
{
    Licmon__V1__Event *ev = xmalloc(sizeof(*ev));
    licmon__v1__event__init(ev);
    ev->event_id = xstrdup(id);
    ev->org = xstrdup("acme");
    ev->user = xstrdup("alice@acme.example");
    ev->ts_ms = 1764237600123;
    ev->kind = LICMON__V1__EVENT_KIND__LOGIN;
    ev->license_type = xstrdup("creator");
    return ev;
}

static void test_backoff(void **state)
{
    (void)state;
    int64_t b = 0;
    const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(ctl_backoff_next(&b, 10), want[i]);
    /* a child that stayed up 30 s starts over */
    assert_int_equal(ctl_backoff_next(&b, 30000), 100);
    assert_int_equal(ctl_backoff_next(&b, 29999), 200);
    assert_int_equal(ctl_backoff_next(&b, 0), 400);
}

static void test_batch_pack(void **state)
{
    (void)state;
    struct ctl_batch b;
    ctl_batch_init(&b, 3, 0);
    assert_false(ctl_batch_full(&b));
    ctl_batch_add(&b, mk_event("e1"), (struct ctl_src){0, 1, false});
    ctl_batch_add(&b, mk_event("e2"), (struct ctl_src){0, 2, false});
    ctl_batch_add(&b, mk_event("e3"), (struct ctl_src){0, 4, false});
    assert_true(ctl_batch_full(&b));
    ctl_batch_pack(&b, 42);
    assert_non_null(b.packed);
    Licmon__V1__EventBatch *eb = licmon__v1__event_batch__unpack(NULL, b.packed_len, b.packed);
    assert_non_null(eb);
    assert_int_equal(eb->batch_id, 42);
    assert_int_equal(eb->n_events, 3);
    assert_string_equal(eb->events[1]->event_id, "e2");
    assert_string_equal(eb->events[2]->license_type, "creator");
    licmon__v1__event_batch__free_unpacked(eb, NULL);
    /* the sources outlive the events, for the acknowledgement */
    assert_int_equal(b.n, 3);
    assert_int_equal(b.src[2].line, 4);
    ctl_batch_reset(&b);
    assert_int_equal(b.n, 0);
    assert_null(b.packed);
    ctl_batch_add(&b, mk_event("e4"), (struct ctl_src){0, 9, false});
    ctl_batch_free(&b);
}

/* Big events fill a batch by bytes long before its event count (filled by
 * ctl_batch_add alone, as the demo does: then the frame may pass
 * CTL_BATCH_BYTES by its last event; send asks ctl_batch_room first, see
 * the next test). */
static void test_batch_full_by_bytes(void **state)
{
    (void)state;
    struct ctl_batch b;
    ctl_batch_init(&b, 1000, 0);
    size_t big = 900 * 1024, n = 0;
    while (!ctl_batch_full(&b)) {
        Licmon__V1__Event *ev = mk_event("big");
        free(ev->user);
        ev->user = xmalloc(big + 1);
        memset(ev->user, 'u', big);
        ev->user[big] = 0;
        ctl_batch_add(&b, ev, (struct ctl_src){0, (uint32_t)++n, false});
    }
    assert_int_equal(b.n, (CTL_BATCH_BYTES + big - 1) / big);
    ctl_batch_pack(&b, 7);
    assert_true(b.packed_len >= CTL_BATCH_BYTES && b.packed_len < CTL_BATCH_BYTES + big + 100);
    ctl_batch_reset(&b);
    assert_false(ctl_batch_full(&b));
    ctl_batch_free(&b);
}

static Licmon__V1__Event *mk_event_of(size_t user_bytes)
{
    Licmon__V1__Event *ev = mk_event("sized");
    free(ev->user);
    ev->user = xmalloc(user_bytes + 1);
    memset(ev->user, 'u', user_bytes);
    ev->user[user_bytes] = 0;
    return ev;
}

/* send --max-frame-bytes: a batch takes an event only while its frame stays
 * within the limit (ingest refuses a bigger frame whole), but an empty one
 * takes any event, which ingest then names if it is over. */
static void test_batch_room_keeps_the_frame_in_its_limit(void **state)
{
    (void)state;
    struct ctl_batch b;
    ctl_batch_init(&b, 1000, 10000);
    size_t n = 0;
    for (;;) {
        Licmon__V1__Event *ev = mk_event_of(3000);
        if (!ctl_batch_room(&b, ev)) {
            event_json_clear(ev);
            free(ev);
            break;
        }
        ctl_batch_add(&b, ev, (struct ctl_src){0, (uint32_t)++n, false});
    }
    assert_int_equal(b.n, 3);
    ctl_batch_pack(&b, UINT64_MAX);
    assert_true(b.packed_len <= 10000 && b.packed_len > 9000);
    ctl_batch_reset(&b);
    Licmon__V1__Event *huge = mk_event_of(20000);
    assert_true(ctl_batch_room(&b, huge));
    ctl_batch_add(&b, huge, (struct ctl_src){0, 1, false});
    assert_true(ctl_batch_full(&b));
    Licmon__V1__Event *small = mk_event_of(1);
    assert_false(ctl_batch_room(&b, small));
    event_json_clear(small);
    free(small);
    ctl_batch_free(&b);
}

struct rej_log {
    char lines[8][256];
    int n;
    const char *const *files;
};

static void rej_collect(void *arg, const struct ctl_src *src, const char *reason)
{
    struct rej_log *l = arg;
    char where[128];
    snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s: %s",
             src ? ctl_src_format(where, sizeof(where), l->files, src) : "?", reason);
}

static void test_batch_ack_lines(void **state)
{
    (void)state;
    const char *files[] = {"a.ndjson", "b.ndjson", "-"};
    struct ctl_batch b;
    ctl_batch_init(&b, 10, 0);
    ctl_batch_add(&b, mk_event("x1"), (struct ctl_src){0, 7, false});
    ctl_batch_add(&b, mk_event("x2"), (struct ctl_src){1, 3, false});
    ctl_batch_add(&b, mk_event("x3"), (struct ctl_src){1, 5, false});
    ctl_batch_add(&b, mk_event("x4"), (struct ctl_src){2, 2, true});
    ctl_batch_pack(&b, 7);

    Licmon__V1__Rejection r1 = LICMON__V1__REJECTION__INIT, r2 = LICMON__V1__REJECTION__INIT,
                          r3 = LICMON__V1__REJECTION__INIT;
    r1.index = 2;
    r1.reason = "license_type: missing";
    r2.index = 3;
    r2.reason = "ts: too far in the future";
    r3.index = 9;
    r3.reason = "bogus";
    Licmon__V1__Rejection *rs[] = {&r1, &r2, &r3};
    Licmon__V1__BatchAck ack = LICMON__V1__BATCH_ACK__INIT;
    ack.batch_id = 7;
    ack.accepted = 1;
    ack.duplicate = 1;
    ack.rejected = 2;
    ack.n_rejections = 3;
    ack.rejections = rs;

    struct ctl_totals t = {0};
    struct rej_log log = {.files = files};
    assert_int_equal(ctl_batch_ack(&b, &ack, &t, rej_collect, &log), 0);
    assert_int_equal(t.accepted, 1);
    assert_int_equal(t.duplicate, 1);
    assert_int_equal(t.rejected, 2);
    assert_int_equal(log.n, 3);
    assert_string_equal(log.lines[0], "b.ndjson:5: license_type: missing");
    assert_string_equal(log.lines[1], "<stdin>[2]: ts: too far in the future");
    assert_string_equal(log.lines[2], "?: ingest named event 9 of a batch of 4: bogus");

    /* a whole-batch error counts every event as rejected */
    Licmon__V1__BatchAck bad = LICMON__V1__BATCH_ACK__INIT;
    bad.batch_id = 7;
    bad.error = "not an EventBatch";
    assert_int_equal(ctl_batch_ack(&b, &bad, &t, rej_collect, &log), -1);
    assert_int_equal(t.rejected, 6);
    ctl_batch_free(&b);
}

static void test_line_trim(void **state)
{
    (void)state;
    char a[] = "  {\"a\":1}\t\r\n";
    char *s = a;
    size_t n = strlen(a);
    assert_true(ctl_line_trim(&s, &n));
    assert_string_equal(s, "{\"a\":1}");
    assert_int_equal(n, 7);
    char blank[] = " \r\n";
    s = blank;
    n = strlen(blank);
    assert_false(ctl_line_trim(&s, &n));
    char empty[] = "";
    s = empty;
    n = 0;
    assert_false(ctl_line_trim(&s, &n));
}

#define T0 (20405LL * DAY_MS) /* Thursday 2025-11-13, 00:00 UTC */

static void test_model_deterministic(void **state)
{
    (void)state;
    static struct demo_model a, b;
    demo_model_init(&a, T0);
    demo_model_init(&b, T0);
    struct demo_event ea, eb;
    for (int i = 0; i < 20000; i++) {
        assert_int_equal(demo_model_step(&a, T0 + 3 * DAY_MS, &ea), 1);
        assert_int_equal(demo_model_step(&b, T0 + 3 * DAY_MS, &eb), 1);
        assert_string_equal(ea.event_id, eb.event_id);
        assert_int_equal(ea.ts_ms, eb.ts_ms);
        assert_int_equal(ea.kind, eb.kind);
        assert_string_equal(ea.user_name, eb.user_name);
    }
    /* stepping in small or large increments gives the same stream */
    demo_model_init(&a, T0);
    demo_model_init(&b, T0);
    int64_t limit = T0;
    for (int i = 0; i < 2000; i++) {
        while (!demo_model_step(&a, limit, &ea))
            limit += 1000;
        assert_int_equal(demo_model_step(&b, T0 + 3 * DAY_MS, &eb), 1);
        assert_string_equal(ea.event_id, eb.event_id);
        assert_int_equal(ea.ts_ms, eb.ts_ms);
    }
}

static void test_model_limit(void **state)
{
    (void)state;
    static struct demo_model m;
    demo_model_init(&m, T0);
    struct demo_event ev;
    int64_t next = demo_model_next_ms(&m);
    assert_true(next >= T0 && next < T0 + 5 * MIN_MS);
    assert_int_equal(demo_model_step(&m, T0 - 1, &ev), 0);
    assert_int_equal(m.now_ms, T0);
    /* nothing is emitted past the limit, and time never runs backwards */
    int64_t last = T0;
    while (demo_model_step(&m, T0 + HOUR_MS, &ev)) {
        assert_true(ev.ts_ms >= last);
        assert_true(ev.ts_ms <= T0 + HOUR_MS);
        last = ev.ts_ms;
    }
    assert_int_equal(m.now_ms, T0 + HOUR_MS);
    assert_true(demo_model_next_ms(&m) > T0 + HOUR_MS);
}

static int type_index(const char *name)
{
    for (int i = 0; i < DEMO_NTYPES; i++)
        if (name && !strcmp(name, demo_licenses[i].type))
            return i;
    return -1;
}

static void test_model_week(void **state)
{
    (void)state;
    static struct demo_model m;
    demo_model_init(&m, T0);
    struct demo_event ev;
    int64_t last = T0;
    uint64_t seq = 0;
    int per_hour[24] = {0};
    int denials[DEMO_NTYPES] = {0}, downgrades = 0;
    while (demo_model_step(&m, T0 + 7 * DAY_MS, &ev)) {
        assert_true(ev.ts_ms >= last);
        last = ev.ts_ms;
        /* ids count up: unique, and the same after a restart */
        unsigned long long n = strtoull(strrchr(ev.event_id, '-') + 1, NULL, 10);
        assert_int_equal(n, ++seq);
        assert_true(ev.user >= 0 && ev.user < DEMO_USERS);
        switch (ev.kind) {
        case LICMON__V1__EVENT_KIND__LOGIN:
            assert_true(type_index(ev.license_type) >= 0);
            if (ev.requested_type) {
                assert_string_equal(ev.requested_type, "creator");
                assert_string_equal(ev.license_type, "reviewer");
                downgrades++;
            }
            break;
        case LICMON__V1__EVENT_KIND__DENIED:
            assert_true(type_index(ev.license_type) >= 0);
            assert_true(demo_licenses[type_index(ev.license_type)].floating);
            /* denied only when the pool is really full */
            assert_int_equal(demo_model_in_use(&m, type_index(ev.license_type), ev.user),
                             demo_licenses[type_index(ev.license_type)].owned);
            denials[type_index(ev.license_type)]++;
            break;
        case LICMON__V1__EVENT_KIND__ACTIVITY:
            assert_true(type_index(ev.license_type) >= 0);
            break;
        case LICMON__V1__EVENT_KIND__LOGOUT:
            assert_null(ev.license_type);
            break;
        default:
            fail_msg("unexpected kind %d", ev.kind);
        }
        /* the feed never hands out more floating seats than the org owns */
        for (int t = 0; t < DEMO_NTYPES; t++)
            if (demo_licenses[t].floating)
                assert_true(demo_model_in_use(&m, t, -1) <= demo_licenses[t].owned);
        bool weekend;
        per_hour[(int)demo_local_hour(&m, ev.ts_ms, &weekend)]++;
    }
    /* something happens at every hour of the day, most of it in the morning */
    for (int h = 0; h < 24; h++)
        assert_true(per_hour[h] > 7 * 200);
    assert_true(per_hour[10] > 2 * per_hour[3]);
    /* the creator pool fills up on weekdays: denials and downgrades */
    assert_true(denials[DEMO_CREATOR] + downgrades > 5);
    assert_true(downgrades > 0);
    assert_true(m.stats.logouts > 0 && m.stats.walkaways > 0);
}

static void test_model_rate(void **state)
{
    (void)state;
    static struct demo_model m;
    demo_model_init(&m, T0);
    const struct demo_user *u = &m.u[0]; /* not a night owl */
    assert_false(u->owl);
    /* T0 + 3 days is a Sunday; T0 + 1 day a Friday. Berlin is UTC+1 in winter. */
    int64_t fri = T0 + DAY_MS;
    double night = demo_model_rate(&m, u, fri + 2 * HOUR_MS);
    double morning = demo_model_rate(&m, u, fri + 9 * HOUR_MS);
    double sunday = demo_model_rate(&m, u, T0 + 3 * DAY_MS + 9 * HOUR_MS);
    assert_true(night > 0.0);
    assert_true(morning > 10 * night);
    assert_true(sunday < morning / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_batch_pack),
        cmocka_unit_test(test_batch_full_by_bytes),
        cmocka_unit_test(test_batch_room_keeps_the_frame_in_its_limit),
        cmocka_unit_test(test_batch_ack_lines),
        cmocka_unit_test(test_line_trim),
        cmocka_unit_test(test_model_deterministic),
        cmocka_unit_test(test_model_limit),
        cmocka_unit_test(test_model_week),
        cmocka_unit_test(test_model_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
