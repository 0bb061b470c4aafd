/* Unit tests of the alerter's outbox over a real RocksDB in a temporary
 * folder, with a scripted fake transport: nothing is sent before its batch
 * is durable, outcomes are recorded (sent, retried with capped backoff,
 * failed for good), a restart resends exactly what was not finished with
 * the same Message-ID / webhook-id, and a lost batch leaves no trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../alerter/alert_message.h"
#include "../../alerter/alert_outbox.h"
#include "capture.h"
#include "damage.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "settings_json.h"
#include "xmem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SENT 64

/* The fake transport: records every start; poll finishes the in-flight
 * deliveries with the outcome scripted for their recipient. */
struct fake {
    int nsent;
    struct {
        uint64_t token;
        enum alert_channel channel;
        char to[128];
        char *payload;
        char *signature;
        char id[64];
        int64_t ts;
    } sent[MAX_SENT];
    uint64_t inflight[MAX_SENT];
    int ninflight;
    bool hold; /* poll finishes nothing */
    bool later;
    bool all_sent; /* every delivery is accepted, whatever its recipient */
};

static enum alert_outcome scripted(const char *to)
{
    if (strstr(to, "retry"))
        return ALERT_RETRY;
    if (strstr(to, "refuse"))
        return ALERT_FAILED;
    return ALERT_SENT;
}

static int fake_start(void *arg, uint64_t token, const struct alert_delivery *d)
{
    struct fake *f = arg;
    if (f->later)
        return ALERT_START_LATER;
    assert_true(f->nsent < MAX_SENT);
    f->sent[f->nsent].token = token;
    f->sent[f->nsent].channel = d->channel;
    snprintf(f->sent[f->nsent].to, sizeof(f->sent[f->nsent].to), "%s", d->to);
    snprintf(f->sent[f->nsent].id, sizeof(f->sent[f->nsent].id), "%s", d->id);
    f->sent[f->nsent].payload = xstrndup(d->payload, d->len);
    f->sent[f->nsent].signature = d->signature ? xstrdup(d->signature) : NULL;
    f->sent[f->nsent].ts = d->timestamp_s;
    f->nsent++;
    f->inflight[f->ninflight++] = token;
    return ALERT_START_OK;
}

static void fake_poll(void *arg, alert_done_fn done, void *done_arg)
{
    struct fake *f = arg;
    if (f->hold)
        return;
    uint64_t tokens[MAX_SENT];
    int n = f->ninflight;
    memcpy(tokens, f->inflight, sizeof(tokens[0]) * (size_t)n);
    f->ninflight = 0;
    for (int i = 0; i < n; i++) {
        const char *to = "";
        for (int j = f->nsent - 1; j >= 0; j--)
            if (f->sent[j].token == tokens[i]) {
                to = f->sent[j].to;
                break;
            }
        enum alert_outcome o = f->all_sent ? ALERT_SENT : scripted(to);
        struct alert_result r = {.outcome = o,
                                 .code = o == ALERT_SENT    ? 250
                                         : o == ALERT_RETRY ? 451
                                                            : 550,
                                 .detail = o == ALERT_SENT ? "accepted" : "scripted"};
        done(done_arg, tokens[i], &r);
    }
}

static void fake_clear(struct fake *f)
{
    for (int i = 0; i < f->nsent; i++) {
        free(f->sent[i].payload);
        free(f->sent[i].signature);
    }
    memset(f, 0, sizeof(*f));
}

struct fixture {
    char dir[64];
    struct store *store;
    struct fake fake;
    struct alert_transport t;
    struct alert_outbox_config cfg;
    struct alert_outbox *ob;
    Licmon__V1__OrgSettings *settings;
    Licmon__V1__OrgSettings *in_force; /* what the outbox follows, when it does */
    bool unsettled;                    /* in_force may be out of date */
};

static const Licmon__V1__OrgSettings *in_force(void *arg, const char *org, bool *settled)
{
    struct fixture *fx = arg;
    *settled = !fx->unsettled;
    return strcmp(org, "acme") ? NULL : fx->in_force;
}

static void open_outbox(struct fixture *fx)
{
    fx->store = store_open(fx->dir);
    assert_non_null(fx->store);
    fx->ob = alert_outbox_open(fx->store, &fx->cfg, &fx->t);
}

static void close_outbox(struct fixture *fx)
{
    alert_outbox_close(&fx->ob);
    store_close(&fx->store);
}

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/lm-outbox-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->t = (struct alert_transport){.start = fake_start, .poll = fake_poll, .arg = &fx->fake};
    fx->cfg = (struct alert_outbox_config){.smtp_from = "Alerts <alerts@acme.example>",
                                           .public_url = "https://licmon.example",
                                           .retry_min_ms = 1000,
                                           .retry_max_ms = 8000,
                                           .max_inflight = 8,
                                           .keep_ms = 86400000};
    fx->settings =
        settings_from("acme", "{\"notify_emails\":[\"it@acme.example\",\"retry@acme.example\","
                              "\"refuse@acme.example\"],\"webhooks\":[{\"url\":"
                              "\"https://hooks.acme.example/x\",\"secret\":\"my raw secret\"}]}");
    open_outbox(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    close_outbox(fx);
    fake_clear(&fx->fake);
    settings_free(&fx->settings);
    settings_free(&fx->in_force);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static struct alert_event crossing(const struct fixture *fx)
{
    struct alert_event ev = {.kind = ALERT_THRESHOLD,
                             .org = "acme",
                             .license_type = "creator",
                             .settings = fx->settings,
                             .at_ms = 1764262805000,
                             .in_use = 8,
                             .owned = 10,
                             .threshold_count = 8,
                             .clear_level = 7,
                             .threshold_pct = 80};
    return ev;
}

/* Adds one crossing (n notifications) and commits it; returns the first seq. */
static uint64_t add_committed_n(struct fixture *fx, int64_t now, int n)
{
    uint64_t first = alert_outbox_next_seq(fx->ob);
    struct alert_event ev = crossing(fx);
    struct store_batch *b = store_batch_new();
    assert_int_equal(alert_outbox_add(fx->ob, b, &ev, now), n);
    assert_int_equal(store_write(fx->store, b, true), 0);
    store_batch_free(&b);
    alert_outbox_committed(fx->ob);
    return first;
}

/* Adds one crossing of the fixture's settings (4 notifications). */
static uint64_t add_committed(struct fixture *fx, int64_t now)
{
    return add_committed_n(fx, now, 4);
}

static json_t *entry(struct fixture *fx, uint64_t seq)
{
    char *text = alert_outbox_entry_json(fx->ob, seq);
    if (!text)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

static const char *status(json_t *j)
{
    return json_string_value(json_object_get(j, "status"));
}

static void test_nothing_before_commit(void **state)
{
    struct fixture *fx = *state;
    struct alert_event ev = crossing(fx);
    struct store_batch *b = store_batch_new();
    assert_int_equal(alert_outbox_add(fx->ob, b, &ev, 1000), 4);
    alert_outbox_tick(fx->ob, 2000);
    assert_int_equal(fx->fake.nsent, 0);
    assert_int_equal(alert_outbox_pending(fx->ob), 0);
    /* the batch is lost (a crash before the commit): after a restart nothing
     * is pending and the ids are given again */
    store_batch_free(&b);
    close_outbox(fx);
    open_outbox(fx);
    assert_int_equal(alert_outbox_pending(fx->ob), 0);
    assert_int_equal(alert_outbox_next_seq(fx->ob), 1);
    alert_outbox_tick(fx->ob, 3000);
    assert_int_equal(fx->fake.nsent, 0);
}

static void test_outcomes(void **state)
{
    struct fixture *fx = *state;
    int64_t now = 1764262806000;
    uint64_t s = add_committed(fx, now);
    assert_int_equal(alert_outbox_pending(fx->ob), 4);
    alert_outbox_tick(fx->ob, now); /* starts all four and finishes them */
    assert_int_equal(fx->fake.nsent, 4);
    assert_int_equal(alert_outbox_pending(fx->ob), 1); /* the retry one */
    json_t *j;
    assert_non_null(j = entry(fx, s));
    assert_string_equal(status(j), "sent");
    assert_string_equal(json_string_value(json_object_get(j, "to")), "it@acme.example");
    json_decref(j);
    assert_non_null(j = entry(fx, s + 1));
    assert_string_equal(status(j), "pending");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    int64_t next = json_integer_value(json_object_get(j, "next_ms"));
    assert_true(next >= now + 500 && next <= now + 1000); /* first backoff: 1 s with jitter */
    json_decref(j);
    assert_non_null(j = entry(fx, s + 2));
    assert_string_equal(status(j), "failed");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 550);
    json_decref(j);
    assert_non_null(j = entry(fx, s + 3));
    assert_string_equal(status(j), "sent");
    assert_string_equal(json_string_value(json_object_get(j, "channel")), "webhook");
    json_decref(j);
    /* not due yet: nothing is sent; once due, the same bytes go out again */
    alert_outbox_tick(fx->ob, now + 400);
    assert_int_equal(fx->fake.nsent, 4);
    alert_outbox_tick(fx->ob, next);
    assert_int_equal(fx->fake.nsent, 5);
    assert_string_equal(fx->fake.sent[4].to, "retry@acme.example");
    assert_string_equal(fx->fake.sent[4].payload, fx->fake.sent[1].payload);
    assert_non_null(j = entry(fx, s + 1));
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    int64_t next2 = json_integer_value(json_object_get(j, "next_ms"));
    assert_true(next2 >= next + 1000 && next2 <= next + 2000);
    json_decref(j);
    /* the refused and the sent ones are never sent again */
    for (int k = 0; k < 20; k++)
        alert_outbox_tick(fx->ob, next2 + k * 10000);
    for (int i = 0; i < fx->fake.nsent; i++)
        assert_true(!strcmp(fx->fake.sent[i].to, "retry@acme.example") || i < 4);
    /* the backoff stopped growing at the cap (8 s): 20 ticks 10 s apart = 20 tries */
    assert_int_equal(fx->fake.nsent, 5 + 20);
}

static void test_message_id_stable(void **state)
{
    struct fixture *fx = *state;
    fx->fake.hold = true; /* the server never answers: a crash while in flight */
    uint64_t s = add_committed(fx, 1764262806000);
    alert_outbox_tick(fx->ob, 1764262806000);
    assert_int_equal(fx->fake.nsent, 4);
    assert_int_equal(alert_outbox_inflight(fx->ob), 4);
    json_t *j = entry(fx, s);
    const char *mid = json_string_value(json_object_get(j, "message_id"));
    assert_non_null(mid);
    char want[128];
    snprintf(want, sizeof(want), "Message-ID: <%s>\r\n", mid);
    assert_non_null(strstr(fx->fake.sent[0].payload, want));
    assert_non_null(strstr(mid, "@acme.example"));
    char *first = xstrdup(fx->fake.sent[0].payload);
    char webhook_id[64];
    snprintf(webhook_id, sizeof(webhook_id), "%s", fx->fake.sent[3].id);
    /* restart: everything unfinished is sent again, byte for byte, same ids */
    close_outbox(fx);
    fake_clear(&fx->fake);
    fx->fake.hold = false;
    open_outbox(fx);
    assert_int_equal(alert_outbox_pending(fx->ob), 4);
    assert_int_equal(alert_outbox_next_seq(fx->ob), s + 4);
    alert_outbox_tick(fx->ob, 1764262900000);
    assert_int_equal(fx->fake.nsent, 4);
    assert_string_equal(fx->fake.sent[0].payload, first);
    assert_string_equal(fx->fake.sent[3].id, webhook_id);
    /* the webhook signature is over id.timestamp.body with the secret */
    char *sig = alert_msg_signature("my raw secret", fx->fake.sent[3].id, fx->fake.sent[3].ts,
                                    fx->fake.sent[3].payload, strlen(fx->fake.sent[3].payload));
    assert_string_equal(fx->fake.sent[3].signature, sig);
    assert_int_equal(fx->fake.sent[3].ts, 1764262900);
    free(sig);
    json_t *body = json_loads(fx->fake.sent[3].payload, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "id")), webhook_id);
    json_decref(body);
    free(first);
    json_decref(j);
    /* a new entry after the restart gets a new id */
    uint64_t s2 = add_committed(fx, 1764262900000);
    assert_int_equal(s2, s + 4);
}

static void test_later_and_prune(void **state)
{
    struct fixture *fx = *state;
    fx->fake.later = true; /* e.g. no mail server configured */
    uint64_t s = add_committed(fx, 1000000);
    alert_outbox_tick(fx->ob, 1000000);
    assert_int_equal(fx->fake.nsent, 0);
    assert_int_equal(alert_outbox_pending(fx->ob), 4);
    assert_int_equal(alert_outbox_oldest_ms(fx->ob), 1000000);
    json_t *j = entry(fx, s);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 0);
    json_decref(j);
    fx->fake.later = false;
    alert_outbox_tick(fx->ob, 1000000 + 1000); /* it waits */
    assert_int_equal(fx->fake.nsent, 0);
    alert_outbox_tick(fx->ob, 1000000 + 61000);
    assert_int_equal(fx->fake.nsent, 4);
    /* finished records are kept for keep_ms (a day here), then pruned */
    alert_outbox_prune(fx->ob, 1000000 + 61000 + 3600000, 100);
    assert_non_null(j = entry(fx, s));
    json_decref(j);
    alert_outbox_prune(fx->ob, 1000000 + 61000 + 86400000 + 1, 100);
    assert_null(entry(fx, s));
    assert_null(entry(fx, s + 2));
    assert_non_null(j = entry(fx, s + 1)); /* still pending: kept */
    json_decref(j);
}

static const char *jtext(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* Sets the settings in force for acme (the old ones freed). */
static void set_in_force(struct fixture *fx, const char *text)
{
    settings_free(&fx->in_force);
    fx->in_force = settings_from("acme", text);
}

/* What is still queued follows the settings in force: a recipient or
 * webhook removed is cancelled (not sent, not retried), an address that
 * differs only in case is the same mailbox, a rotated webhook secret signs
 * the retry, and notifications turned off cancel the rest. */
static void test_queued_follows_settings(void **state)
{
    struct fixture *fx = *state;
    settings_free(&fx->settings);
    fx->settings = settings_from(
        "acme",
        "{\"notify_emails\":[\"retry@acme.example\",\"retry-gone@acme.example\"],\"webhooks\":["
        "{\"url\":\"https://hooks.acme.example/retry\",\"secret\":\"old secret\"},"
        "{\"url\":\"https://hooks.acme.example/retry-gone\",\"secret\":\"s2\"}]}");
    fx->in_force = settings_copy(fx->settings);
    alert_outbox_follow_settings(fx->ob, in_force, fx);
    int64_t now = 1764262806000;
    uint64_t s = add_committed(fx, now);
    alert_outbox_tick(fx->ob, now); /* all four tried, all to be retried */
    assert_int_equal(fx->fake.nsent, 4);
    assert_int_equal(alert_outbox_pending(fx->ob), 4);

    set_in_force(fx, "{\"notify_emails\":[\"RETRY@acme.example\"],\"webhooks\":[{\"url\":"
                     "\"https://hooks.acme.example/retry\",\"secret\":\"new secret\"}]}");
    /* while the settings may be out of date (the alerter catching up), what
     * they would cancel waits, and the rest goes */
    fx->unsettled = true;
    now += 60000; /* every retry is due */
    alert_outbox_tick(fx->ob, now);
    assert_int_equal(fx->fake.nsent, 6); /* the address and the webhook still there */
    assert_int_equal(alert_outbox_pending(fx->ob), 4);
    assert_string_equal(fx->fake.sent[4].to, "retry@acme.example");
    assert_string_equal(fx->fake.sent[5].to, "https://hooks.acme.example/retry");
    /* signed with the new secret, and the old one while the receiver may
     * not have the new one yet */
    const char *d5 = fx->fake.sent[5].payload;
    char *now_sig =
        alert_msg_signature("new secret", fx->fake.sent[5].id, fx->fake.sent[5].ts, d5, strlen(d5));
    char *old_sig =
        alert_msg_signature("old secret", fx->fake.sent[5].id, fx->fake.sent[5].ts, d5, strlen(d5));
    char *both = xasprintf("%s %s", now_sig, old_sig);
    assert_string_equal(fx->fake.sent[5].signature, both);
    free(now_sig);
    free(old_sig);
    free(both);
    fx->unsettled = false;
    alert_outbox_tick(fx->ob, now + 1000); /* settled: the two are cancelled */
    assert_int_equal(alert_outbox_pending(fx->ob), 2);
    assert_int_equal(fx->fake.nsent, 6);
    json_t *j;
    assert_non_null(j = entry(fx, s + 1));
    assert_string_equal(status(j), "cancelled");
    assert_string_equal(jtext(j, "detail"), "the address was removed from notify_emails");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    assert_non_null(j = entry(fx, s + 3));
    assert_string_equal(status(j), "cancelled");
    assert_string_equal(jtext(j, "detail"), "the webhook was removed from webhooks");
    assert_null(json_object_get(j, "secret")); /* a finished entry keeps no secret */
    json_decref(j);
    assert_non_null(j = entry(fx, s + 2));
    assert_string_equal(status(j), "pending");
    assert_string_equal(jtext(j, "secret"), "old secret"); /* as queued, for a restart */
    json_decref(j);

    /* turned off: the rest is cancelled, and stays so after a restart */
    set_in_force(fx, "{\"notify_enabled\":false,\"notify_emails\":[\"retry@acme.example\"]}");
    now += 60000;
    alert_outbox_tick(fx->ob, now);
    assert_int_equal(fx->fake.nsent, 6);
    assert_int_equal(alert_outbox_pending(fx->ob), 0);
    assert_non_null(j = entry(fx, s));
    assert_string_equal(status(j), "cancelled");
    assert_string_equal(jtext(j, "detail"), "notifications were turned off for the org");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    json_decref(j);
    close_outbox(fx);
    open_outbox(fx);
    assert_int_equal(alert_outbox_pending(fx->ob), 0);
}

/* One entry that finished late (it retried for days) keeps no entry that
 * finished long before it, and a prune limited to a few entries a call
 * goes on where the last one stopped. */
static void test_prune_out_of_order(void **state)
{
    struct fixture *fx = *state;
    int64_t day = 86400000, t0 = 1764262806000;
    uint64_t s = add_committed(fx, t0);
    alert_outbox_tick(fx->ob, t0); /* s and s+3 sent, s+2 refused, s+1 retried */
    uint64_t s2 = add_committed(fx, t0 + 3600000);
    alert_outbox_tick(fx->ob, t0 + 3600000);
    assert_int_equal(alert_outbox_pending(fx->ob), 2); /* s+1 and s2+1 */
    fx->fake.all_sent = true;
    alert_outbox_tick(fx->ob, t0 + 10 * day); /* both accepted at last */
    assert_int_equal(alert_outbox_pending(fx->ob), 0);
    for (int i = 0; i < 3; i++) /* 8 finished entries, 3 looked at a call */
        alert_outbox_prune(fx->ob, t0 + 10 * day + 3600000, 3);
    json_t *j;
    for (uint64_t q = s; q < s2 + 4; q++) {
        bool late = q == s + 1 || q == s2 + 1;
        if (late) {
            assert_non_null(j = entry(fx, q));
            assert_string_equal(status(j), "sent");
            json_decref(j);
        } else {
            assert_null(entry(fx, q));
        }
    }
    alert_outbox_prune(fx->ob, t0 + 11 * day + 1, 3); /* from the first again */
    assert_null(entry(fx, s + 1));
    assert_null(entry(fx, s2 + 1));
}

/* Retries (a receiver down: each attempt hangs until its timeout) take at
 * most half of the deliveries at once, and new notifications go first, so
 * a backlog of retries never holds back another crossing. */
static void test_retries_leave_room(void **state)
{
    struct fixture *fx = *state;
    settings_free(&fx->settings);
    fx->settings = settings_from("acme", "{\"notify_emails\":[\"retry1@acme.example\","
                                         "\"retry2@acme.example\",\"retry3@acme.example\","
                                         "\"retry4@acme.example\",\"retry5@acme.example\","
                                         "\"retry6@acme.example\"]}");
    int64_t now = 1764262806000;
    add_committed_n(fx, now, 6);
    alert_outbox_tick(fx->ob, now); /* six first attempts, all to be retried */
    assert_int_equal(fx->fake.nsent, 6);
    fx->fake.hold = true; /* from now on every attempt hangs */
    now += 60000;
    alert_outbox_tick(fx->ob, now);
    assert_int_equal(fx->fake.nsent, 6 + 4); /* 4 of the 8 slots */
    assert_int_equal(alert_outbox_inflight(fx->ob), 4);
    settings_free(&fx->settings);
    fx->settings =
        settings_from("acme", "{\"notify_emails\":[\"a@acme.example\",\"b@acme.example\","
                              "\"c@acme.example\",\"d@acme.example\",\"e@acme.example\"]}");
    add_committed_n(fx, now, 5);
    alert_outbox_tick(fx->ob, now);
    assert_int_equal(alert_outbox_inflight(fx->ob), 8); /* the new ones took the other 4 */
    for (int i = 10; i < 14; i++)
        assert_null(strstr(fx->fake.sent[i].to, "retry"));
}

/* New notifications leave one of the slots to the retries, so a flood of
 * them (or of first attempts to a receiver that never answers) does not
 * hold every retry back. */
static void test_new_ones_leave_a_slot_to_retries(void **state)
{
    struct fixture *fx = *state;
    int64_t now = 1764262806000;
    add_committed(fx, now);
    alert_outbox_tick(fx->ob, now); /* retry@ to be retried */
    fx->fake.hold = true;
    settings_free(&fx->settings);
    fx->settings =
        settings_from("acme", "{\"notify_emails\":[\"a@acme.example\",\"b@acme.example\","
                              "\"c@acme.example\",\"d@acme.example\",\"e@acme.example\","
                              "\"f@acme.example\",\"g@acme.example\",\"h@acme.example\"]}");
    add_committed_n(fx, now + 60000, 8);
    alert_outbox_tick(fx->ob, now + 60000);
    assert_int_equal(alert_outbox_inflight(fx->ob), 8);
    assert_string_equal(fx->fake.sent[fx->fake.nsent - 1].to, "retry@acme.example");
}

/* Entries of an org whose settings are not known go as queued, signed
 * with the secret they were queued with. */
static void test_unknown_settings_send_as_queued(void **state)
{
    struct fixture *fx = *state;
    fx->in_force = settings_from("acme", "{\"notify_enabled\":false}");
    alert_outbox_follow_settings(fx->ob, in_force, fx);
    struct alert_event ev = crossing(fx);
    ev.org = "globex";
    struct store_batch *b = store_batch_new();
    assert_int_equal(alert_outbox_add(fx->ob, b, &ev, 1000), 4);
    assert_int_equal(store_write(fx->store, b, true), 0);
    store_batch_free(&b);
    alert_outbox_committed(fx->ob);
    alert_outbox_tick(fx->ob, 1000);
    assert_int_equal(fx->fake.nsent, 4);
    char *sig = alert_msg_signature("my raw secret", fx->fake.sent[3].id, fx->fake.sent[3].ts,
                                    fx->fake.sent[3].payload, strlen(fx->fake.sent[3].payload));
    assert_string_equal(fx->fake.sent[3].signature, sig);
    free(sig);
}

/* A step back of the alerter's clock (one that lasted: the program's clock
 * follows only those) keeps the retries' waits: a retry due in a second is
 * tried a second later, not once the clock has caught up an hour. */
static void test_clock_back_keeps_waits(void **state)
{
    struct fixture *fx = *state;
    int64_t now = 1764262806000;
    add_committed(fx, now);
    alert_outbox_tick(fx->ob, now); /* retry@ waits 0.5-1 s */
    assert_int_equal(fx->fake.nsent, 4);
    now -= 3600000;
    alert_outbox_tick(fx->ob, now);
    assert_int_equal(fx->fake.nsent, 4);
    alert_outbox_tick(fx->ob, now + 1000);
    assert_int_equal(fx->fake.nsent, 5);
    assert_string_equal(fx->fake.sent[4].to, "retry@acme.example");
}

static void test_backoff(void **state)
{
    (void)state;
    /* no jitter draw (0) gives the lower half, the top draw the full delay */
    assert_int_equal(alert_outbox_backoff_ms(1, 1000, 300000, 0), 500);
    assert_int_equal(alert_outbox_backoff_ms(1, 1000, 300000, UINT32_MAX), 1000);
    assert_int_equal(alert_outbox_backoff_ms(2, 1000, 300000, UINT32_MAX), 2000);
    assert_int_equal(alert_outbox_backoff_ms(5, 1000, 300000, UINT32_MAX), 16000);
    assert_int_equal(alert_outbox_backoff_ms(9, 1000, 300000, UINT32_MAX), 256000);
    assert_int_equal(alert_outbox_backoff_ms(10, 1000, 300000, UINT32_MAX), 300000);
    assert_int_equal(alert_outbox_backoff_ms(4000000000u, 1000, 300000, UINT32_MAX), 300000);
    assert_int_equal(alert_outbox_backoff_ms(4000000000u, 1000, 300000, 0), 150000);
    for (uint32_t a = 1; a < 40; a++)
        for (uint32_t r = 0; r < 10; r++) {
            int64_t d = alert_outbox_backoff_ms(a, 1000, 300000, r * 429496729u);
            assert_true(d >= 500 && d <= 300000);
        }
}

static struct fixture *damaged_fx;
static void open_damaged(void)
{
    open_outbox(damaged_fx);
}

/* The outbox's queue cut by a read error (a damaged block on disk) at
 * start: the alerter stops, naming it, rather than start with the entries
 * before the damage as if they were all (the rest would wait unseen). */
static void test_damaged_queue_stops_the_start(void **state)
{
    struct fixture *fx = *state;
    close_outbox(fx);
    fx->store = store_open(fx->dir);
    assert_non_null(fx->store);
    uint32_t x = 2654435761u;
    struct store_batch *b = store_batch_new();
    for (uint64_t seq = 1; seq <= 20000; seq++) {
        uint8_t k[9] = {'Q'}, pad[100];
        keys_put_u64(k + 1, seq);
        incompressible(pad, sizeof(pad), &x);
        char v[300];
        int n = snprintf(v, sizeof(v), "{\"created_ms\":1,\"attempts\":0,\"pad\":\"");
        for (size_t i = 0; i < sizeof(pad); i++)
            n += snprintf(v + n, sizeof(v) - (size_t)n, "%02x", pad[i]);
        n += snprintf(v + n, sizeof(v) - (size_t)n, "\"}");
        store_batch_put(b, k, sizeof(k), v, (size_t)n);
    }
    assert_int_equal(store_write(fx->store, b, true), 0);
    store_batch_free(&b);
    store_compact(fx->store);
    store_close(&fx->store);
    damage_largest_table(fx->dir, 1000000);

    damaged_fx = fx;
    assert_int_equal(exit_status_of(open_damaged), 1); /* 0: started on what it could read */
    fx->store = store_open(fx->dir);                   /* for the teardown */
}

int main(void)
{
    log_set_level(LOG_FATAL); /* the retries would fill the screen */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_id_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_follows_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_leave_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_ones_leave_a_slot_to_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_settings_send_as_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_back_keeps_waits, setup, teardown),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test_setup_teardown(test_damaged_queue_stops_the_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
