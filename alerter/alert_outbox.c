/* alert_outbox: durable notification queue, retry policy and outcome
 * records (see alert_outbox.h). Entries are JSON so an operator can read
 * them with any RocksDB tool; the in-memory list holds only what scheduling
 * needs (seq, due time, attempts) and each entry is read back from the
 * store when it is sent. */
#include "alert_outbox.h"
#include "alert_message.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OB_KEY_LEN 9
#define OB_INSTANCE_LEN 12
#define OB_LATER_MS 60000 /* a delivery that cannot start (no mail server set) waits this long */
#define OB_HOLD_MS 1000   /* one that settings not yet current would cancel waits this long */

static const char OB_NEXT[] = "Moutbox_next", OB_INSTANCE[] = "Moutbox_instance";

struct ob_item {
    uint64_t seq;
    int64_t created_ms, next_ms;
    uint32_t attempts;
    bool inflight;
};

struct ob_list {
    struct ob_item *v;
    size_t n, cap;
};

struct alert_outbox {
    struct store *store;
    struct alert_transport t;
    char *from, *public_url, *domain;
    char instance[OB_INSTANCE_LEN + 1];
    int64_t retry_min, retry_max, keep;
    int max_inflight;
    uint64_t next_seq;
    struct ob_list items;  /* committed, pending; sorted by seq */
    struct ob_list staged; /* added, not yet durable */
    size_t inflight;
    struct store_batch *batch; /* outcomes of the current tick */
    uint64_t rng;
    int64_t now;
    bool warned_later;
    alert_settings_fn settings; /* the org's settings in force (NULL: entries go as queued) */
    void *settings_arg;
    char *prune_from; /* the key the next prune goes on from (NULL: from the first) */
    size_t prune_len;
};

static struct {
    struct metric *queued, *sent, *failed, *retried, *cancelled, *depth, *inflight, *oldest;
} obm;

static void ob_metrics_init(void)
{
    if (obm.queued)
        return;
    obm.queued = metric_counter("licmon_alerter_notifications_total{outcome=\"queued\"}",
                                "notifications by outcome: queued in the outbox, sent (accepted "
                                "by the server), retried (a transient failure), failed (refused "
                                "for good), cancelled (its recipient or webhook was removed, or "
                                "notifications turned off, before it was accepted)");
    obm.sent = metric_counter("licmon_alerter_notifications_total{outcome=\"sent\"}", "");
    obm.retried = metric_counter("licmon_alerter_notifications_total{outcome=\"retried\"}", "");
    obm.failed = metric_counter("licmon_alerter_notifications_total{outcome=\"failed\"}", "");
    obm.cancelled = metric_counter("licmon_alerter_notifications_total{outcome=\"cancelled\"}", "");
    obm.depth = metric_gauge("licmon_alerter_outbox_depth",
                             "notifications waiting in the outbox (in flight included)");
    obm.inflight = metric_gauge("licmon_alerter_outbox_inflight", "deliveries in progress");
    obm.oldest = metric_gauge("licmon_alerter_outbox_oldest_pending_age_seconds",
                              "age of the oldest notification still waiting, 0 when none");
}

static void ob_key(uint8_t *k, char ns, uint64_t seq)
{
    k[0] = (uint8_t)ns;
    keys_put_u64(k + 1, seq);
}

static void list_push(struct ob_list *l, const struct ob_item *it)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *it;
}

static struct ob_item *list_find(struct ob_list *l, uint64_t seq, size_t *idx)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < l->n && l->v[lo].seq == seq) {
        *idx = lo;
        return &l->v[lo];
    }
    return NULL;
}

static void list_remove(struct ob_list *l, size_t idx)
{
    memmove(&l->v[idx], &l->v[idx + 1], (l->n - idx - 1) * sizeof(*l->v));
    l->n--;
}

static uint32_t ob_random(struct alert_outbox *ob)
{
    uint64_t x = ob->rng; /* xorshift64: jitter needs spread, not secrecy */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ob->rng = x;
    return (uint32_t)(x >> 32);
}

int64_t alert_outbox_backoff_ms(uint32_t attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    int64_t d = min_ms;
    for (uint32_t i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return d - half + (int64_t)((double)half * ((double)rnd / (double)UINT32_MAX));
}

static void ob_instance(struct alert_outbox *ob)
{
    int rc =
        store_get_fixed(ob->store, OB_INSTANCE, strlen(OB_INSTANCE), ob->instance, OB_INSTANCE_LEN);
    if (rc < 0)
        log_fatal("cannot read the outbox instance id");
    ob->instance[OB_INSTANCE_LEN] = 0;
    if (rc == 1)
        return;
    xrandom_hex(ob->instance, OB_INSTANCE_LEN / 2);
    struct store_batch *b = store_batch_new();
    store_batch_put(b, OB_INSTANCE, strlen(OB_INSTANCE), ob->instance, OB_INSTANCE_LEN);
    if (store_write(ob->store, b, true) != 0)
        log_fatal("cannot store the outbox instance id");
    store_batch_free(&b);
}

/* The entry seq under namespace ns: 1 with *out set, 0 when there is none
 * or it is not a JSON object, -1 on a read error (logged by the store). */
static int ob_load_json(struct alert_outbox *ob, char ns, uint64_t seq, json_t **out)
{
    uint8_t k[OB_KEY_LEN];
    ob_key(k, ns, seq);
    char *val = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = store_get(ob->store, k, sizeof(k), &val, &len);
    if (rc != 1)
        return rc;
    json_t *j = json_loadb(val, len, 0, NULL);
    free(val);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    *out = j;
    return j ? 1 : 0;
}

static void ob_put_json(struct store_batch *b, char ns, uint64_t seq, const json_t *j)
{
    uint8_t k[OB_KEY_LEN];
    ob_key(k, ns, seq);
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text)
        log_fatal("out of memory encoding an outbox entry");
    store_batch_put(b, k, sizeof(k), text, strlen(text));
    free(text);
}

static int64_t jint(const json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

static const char *jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

static void ob_load(struct alert_outbox *ob)
{
    uint64_t next = 0;
    if (store_get_u64(ob->store, OB_NEXT, strlen(OB_NEXT), &next) < 0)
        log_fatal("cannot read the outbox counter");
    ob->next_seq = next ? next : 1;
    struct store_iter *it = store_iter_ns(ob->store, 'Q');
    for (; store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const char *k = store_iter_key(it, &kl);
        const char *v = store_iter_value(it, &vl);
        json_t *j = kl == OB_KEY_LEN ? json_loadb(v, vl, 0, NULL) : NULL;
        if (!j) {
            log_warn("an outbox entry is unreadable; left in place");
            continue;
        }
        /* due at once: a restart is as good a moment to retry as any */
        struct ob_item item = {.seq = keys_get_u64((const uint8_t *)k + 1),
                               .created_ms = jint(j, "created_ms"),
                               .next_ms = 0,
                               .attempts = (uint32_t)jint(j, "attempts")};
        list_push(&ob->items, &item);
        if (item.seq >= ob->next_seq)
            ob->next_seq = item.seq + 1; /* never reuse an id */
        json_decref(j);
    }
    if (store_iter_status(it) < 0) /* the entries past it would wait unseen */
        log_fatal("cannot read the outbox's queued notifications");
    store_iter_free(&it);
    if (ob->items.n)
        log_info("outbox: %zu notifications still to send", ob->items.n);
}

struct alert_outbox *alert_outbox_open(struct store *store, const struct alert_outbox_config *cfg,
                                       const struct alert_transport *t)
{
    ob_metrics_init();
    struct alert_outbox *ob = xcalloc(1, sizeof(*ob));
    ob->store = store;
    ob->t = *t;
    ob->from = xstrdup(cfg->smtp_from && *cfg->smtp_from ? cfg->smtp_from : "licmon@localhost");
    ob->public_url = xstrdup(cfg->public_url ? cfg->public_url : "");
    char *addr = alert_msg_address(ob->from);
    const char *at = strrchr(addr, '@');
    ob->domain = xstrdup(at && at[1] ? at + 1 : "localhost");
    free(addr);
    ob->retry_min = cfg->retry_min_ms > 0 ? cfg->retry_min_ms : 1000;
    ob->retry_max = cfg->retry_max_ms >= ob->retry_min ? cfg->retry_max_ms : ob->retry_min;
    ob->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 8;
    ob->keep = cfg->keep_ms > 0 ? cfg->keep_ms : 30LL * 86400 * 1000;
    ob->batch = store_batch_new();
    ob_instance(ob);
    ob->rng = (uint64_t)time_mono_ms() * 0x9E3779B97F4A7C15ULL ^ strtoull(ob->instance, NULL, 16);
    if (!ob->rng)
        ob->rng = 1;
    ob_load(ob);
    metric_set(obm.depth, (int64_t)ob->items.n);
    return ob;
}

void alert_outbox_close(struct alert_outbox **obp)
{
    struct alert_outbox *ob = *obp;
    if (!ob)
        return;
    free(ob->from);
    free(ob->public_url);
    free(ob->domain);
    free(ob->prune_from);
    free(ob->items.v);
    free(ob->staged.v);
    store_batch_free(&ob->batch);
    free(ob);
    *obp = NULL;
}

static void ob_add_one(struct alert_outbox *ob, struct store_batch *b, const struct alert_event *ev,
                       enum alert_channel ch, const char *to, const char *secret, int64_t now_ms)
{
    uint64_t seq = ob->next_seq++;
    char *id = xasprintf("licmon-%s-%llu", ob->instance, (unsigned long long)seq);
    char *payload, *msgid = NULL;
    if (ch == ALERT_EMAIL) {
        msgid = xasprintf("%s@%s", id, ob->domain);
        struct alert_msg_head h = {.from = ob->from,
                                   .to = to,
                                   .message_id = msgid,
                                   .date_ms = now_ms,
                                   .public_url = ob->public_url};
        payload = alert_msg_email(ev, &h);
    } else {
        payload = alert_msg_webhook_body(ev, id, now_ms, ob->public_url);
    }
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "channel", json_string(ch == ALERT_EMAIL ? "email" : "webhook"));
    json_object_set_new(j, "kind",
                        json_string(ev->kind == ALERT_THRESHOLD ? "threshold" : "expiry"));
    json_object_set_new(j, "org", json_string(ev->org));
    json_object_set_new(j, "license_type", json_string(ev->license_type));
    json_object_set_new(j, "to", json_string(to));
    if (msgid)
        json_object_set_new(j, "message_id", json_string(msgid));
    if (secret && *secret)
        json_object_set_new(j, "secret", json_string(secret));
    json_object_set_new(j, "payload", json_string(payload));
    json_object_set_new(j, "created_ms", json_integer(now_ms));
    json_object_set_new(j, "attempts", json_integer(0));
    json_object_set_new(j, "status", json_string("pending"));
    ob_put_json(b, 'Q', seq, j);
    json_decref(j);
    struct ob_item item = {.seq = seq, .created_ms = now_ms, .next_ms = now_ms};
    list_push(&ob->staged, &item);
    metric_add(obm.queued, 1);
    free(id);
    free(msgid);
    free(payload);
}

int alert_outbox_add(struct alert_outbox *ob, struct store_batch *b, const struct alert_event *ev,
                     int64_t now_ms)
{
    const Licmon__V1__OrgSettings *s = ev->settings;
    if (!s)
        return 0;
    int n = 0;
    /* settings were validated where they were made; checked again because an
     * address goes into a header line and a URL into a request */
    for (size_t i = 0; i < s->n_notify_emails; i++) {
        if (!settings_valid_email(s->notify_emails[i])) {
            log_warn_ctx("org", ev->org, "notify_emails[%zu] is not a valid address; skipped", i);
            continue;
        }
        ob_add_one(ob, b, ev, ALERT_EMAIL, s->notify_emails[i], NULL, now_ms);
        n++;
    }
    for (size_t i = 0; i < s->n_webhooks; i++) {
        const char *url = s->webhooks[i]->url;
        if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
            strpbrk(url, " \r\n")) {
            log_warn_ctx("org", ev->org, "webhooks[%zu] has no valid http(s) url; skipped", i);
            continue;
        }
        ob_add_one(ob, b, ev, ALERT_WEBHOOK, url, s->webhooks[i]->secret, now_ms);
        n++;
    }
    if (n)
        store_batch_put_u64(b, OB_NEXT, strlen(OB_NEXT), ob->next_seq);
    return n;
}

void alert_outbox_committed(struct alert_outbox *ob)
{
    for (size_t i = 0; i < ob->staged.n; i++)
        list_push(&ob->items, &ob->staged.v[i]); /* seqs only grow: the list stays sorted */
    ob->staged.n = 0;
    metric_set(obm.depth, (int64_t)ob->items.n);
}

/* Records the end of entry seq after its attempts: moved to 'R' with its
 * outcome. A finished entry keeps no webhook secret. */
static void ob_finish(struct alert_outbox *ob, size_t idx, json_t *j, const char *status,
                      uint32_t attempts, const struct alert_result *r)
{
    uint64_t seq = ob->items.v[idx].seq;
    json_object_set_new(j, "status", json_string(status));
    json_object_set_new(j, "attempts", json_integer(attempts));
    json_object_del(j, "secret");
    json_object_set_new(j, "done_ms", json_integer(ob->now));
    json_object_set_new(j, "code", json_integer(r->code));
    json_object_set_new(j, "detail", json_string(r->detail ? r->detail : ""));
    uint8_t k[OB_KEY_LEN];
    ob_key(k, 'Q', seq);
    store_batch_del(ob->batch, k, sizeof(k));
    ob_put_json(ob->batch, 'R', seq, j);
    list_remove(&ob->items, idx);
}

static void ob_write_outcomes(struct alert_outbox *ob);

static void ob_on_done(void *arg, uint64_t seq, const struct alert_result *r)
{
    struct alert_outbox *ob = arg;
    size_t idx;
    struct ob_item *it = list_find(&ob->items, seq, &idx);
    if (!it || !it->inflight)
        return;
    it->inflight = false;
    ob->inflight--;
    json_t *j;
    int rc = ob_load_json(ob, 'Q', seq, &j);
    if (rc < 0) { /* its outcome cannot be recorded: sent again after the restart, same id */
        ob_write_outcomes(ob); /* those of this poll before it are kept */
        log_fatal("cannot read outbox entry %llu to record its delivery", (unsigned long long)seq);
    }
    if (rc == 0) {
        log_warn("outbox entry %llu vanished while it was being sent", (unsigned long long)seq);
        list_remove(&ob->items, idx);
        return;
    }
    const char *org = jstr(j, "org");
    char to[300];
    snprintf(to, sizeof(to), "%s %s", jstr(j, "channel"), jstr(j, "to"));
    if (r->outcome == ALERT_SENT) {
        log_info_ctx("org", org, "notification %s to %s accepted after %u attempt(s)",
                     jstr(j, "id"), to, it->attempts + 1);
        metric_add(obm.sent, 1);
        ob_finish(ob, idx, j, "sent", it->attempts + 1, r);
    } else if (r->outcome == ALERT_FAILED) {
        log_warn_ctx("org", org, "notification %s to %s refused for good: %s", jstr(j, "id"), to,
                     r->detail ? r->detail : "");
        metric_add(obm.failed, 1);
        ob_finish(ob, idx, j, "failed", it->attempts + 1, r);
    } else {
        it->attempts++;
        int64_t wait =
            alert_outbox_backoff_ms(it->attempts, ob->retry_min, ob->retry_max, ob_random(ob));
        it->next_ms = ob->now + wait;
        log_warn_ctx("org", org, "notification %s to %s not accepted (%s); retry %u in %lld ms",
                     jstr(j, "id"), to, r->detail ? r->detail : "", it->attempts, (long long)wait);
        metric_add(obm.retried, 1);
        json_object_set_new(j, "attempts", json_integer(it->attempts));
        json_object_set_new(j, "next_ms", json_integer(it->next_ms));
        json_object_set_new(j, "code", json_integer(r->code));
        json_object_set_new(j, "detail", json_string(r->detail ? r->detail : ""));
        ob_put_json(ob->batch, 'Q', seq, j);
    }
    json_decref(j);
}

void alert_outbox_follow_settings(struct alert_outbox *ob, alert_settings_fn fn, void *arg)
{
    ob->settings = fn;
    ob->settings_arg = arg;
}

/* Why the settings in force for entry j's org no longer want it delivered,
 * or NULL; for a webhook still there, *secret becomes its secret in force.
 * *settled: whether those settings are the latest (see alert_settings_fn).
 * Unknown settings want it as queued. */
static const char *ob_unwanted(struct alert_outbox *ob, const json_t *j, enum alert_channel channel,
                               const char **secret, bool *settled)
{
    *settled = true;
    const Licmon__V1__OrgSettings *s =
        ob->settings ? ob->settings(ob->settings_arg, jstr(j, "org"), settled) : NULL;
    if (!s)
        return NULL;
    if (!s->notify_enabled)
        return "notifications were turned off for the org";
    const char *to = jstr(j, "to");
    if (channel == ALERT_EMAIL) {
        for (size_t i = 0; i < s->n_notify_emails; i++)
            if (!strcasecmp(s->notify_emails[i], to))
                return NULL;
        return "the address was removed from notify_emails";
    }
    for (size_t i = 0; i < s->n_webhooks; i++)
        if (s->webhooks[i]->url && !strcmp(s->webhooks[i]->url, to)) {
            *secret = s->webhooks[i]->secret ? s->webhooks[i]->secret : "";
            return NULL;
        }
    return "the webhook was removed from webhooks";
}

/* The webhook-signature of delivery d: with the secret in force, and while
 * a receiver may not have the rotated secret yet, also with the one it was
 * queued with (Standard Webhooks: signatures separated by a space, the
 * receiver accepts the message if one verifies). NULL with neither. */
static char *ob_sign(const char *secret, const char *queued_secret, const struct alert_delivery *d)
{
    char *now = alert_msg_signature(secret, d->id, d->timestamp_s, d->payload, d->len);
    if (!strcmp(secret, queued_secret))
        return now;
    char *then = alert_msg_signature(queued_secret, d->id, d->timestamp_s, d->payload, d->len);
    if (!now || !then)
        return now ? now : then;
    char *both = xasprintf("%s %s", now, then);
    free(now);
    free(then);
    return both;
}

/* Hands entry idx to the transport, or ends it when its org's settings no
 * longer want it (then it leaves the list: returns true). */
static bool ob_start(struct alert_outbox *ob, size_t idx)
{
    struct ob_item *it = &ob->items.v[idx];
    json_t *j;
    int rc = ob_load_json(ob, 'Q', it->seq, &j);
    if (rc < 0) { /* a read error (logged): tried again, not parked */
        it->next_ms = ob->now + OB_LATER_MS;
        return false;
    }
    if (rc == 0) {
        log_warn("outbox entry %llu is unreadable; skipped until restart",
                 (unsigned long long)it->seq);
        it->next_ms = INT64_MAX;
        return false;
    }
    const char *payload = jstr(j, "payload");
    struct alert_delivery d = {
        .channel = strcmp(jstr(j, "channel"), "webhook") ? ALERT_EMAIL : ALERT_WEBHOOK,
        .id = jstr(j, "id"),
        .to = jstr(j, "to"),
        .payload = payload,
        .len = strlen(payload),
        .timestamp_s = ob->now / 1000,
    };
    const char *queued_secret = jstr(j, "secret"), *secret = queued_secret;
    bool settled;
    const char *why = ob_unwanted(ob, j, d.channel, &secret, &settled);
    if (why && !settled) { /* never cancelled on settings that may be out of date */
        it->next_ms = ob->now + OB_HOLD_MS;
        json_decref(j);
        return false;
    }
    if (why) {
        log_info_ctx("org", jstr(j, "org"), "notification %s to %s %s cancelled: %s", d.id,
                     jstr(j, "channel"), d.to, why);
        metric_add(obm.cancelled, 1);
        struct alert_result r = {.outcome = ALERT_FAILED, .code = 0, .detail = why};
        ob_finish(ob, idx, j, "cancelled", it->attempts, &r);
        json_decref(j);
        return true;
    }
    char *sig = NULL;
    if (d.channel == ALERT_WEBHOOK)
        sig = ob_sign(secret, queued_secret, &d);
    d.signature = sig;
    if (ob->t.start(ob->t.arg, it->seq, &d) == ALERT_START_OK) {
        it->inflight = true;
        ob->inflight++;
    } else {
        it->next_ms = ob->now + OB_LATER_MS;
        if (!ob->warned_later)
            log_warn("a notification cannot be sent now (is --smtp-url set?); it waits in the "
                     "outbox");
        ob->warned_later = true;
    }
    free(sig);
    json_decref(j);
    return false;
}

static void ob_write_outcomes(struct alert_outbox *ob)
{
    if (store_batch_count(ob->batch) == 0)
        return;
    if (store_write(ob->store, ob->batch, true) != 0)
        log_fatal("cannot record notification outcomes");
    store_batch_clear(ob->batch);
}

/* Our clock went back by d (a step back of the host's clock that lasted):
 * the retries keep their waits, not the instants they were due at. */
static void ob_clock_back(struct ob_list *l, int64_t d)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].next_ms != INT64_MAX)
            l->v[i].next_ms = l->v[i].next_ms > INT64_MIN + d ? l->v[i].next_ms - d : INT64_MIN;
}

void alert_outbox_collect(struct alert_outbox *ob, int64_t now_ms)
{
    if (ob->now && now_ms < ob->now) {
        ob_clock_back(&ob->items, ob->now - now_ms);
        ob_clock_back(&ob->staged, ob->now - now_ms);
    }
    ob->now = now_ms;
    if (ob->inflight)
        ob->t.poll(ob->t.arg, ob_on_done, ob);
    ob_write_outcomes(ob);
}

/* Starts the due entries never tried (retries: those tried before), oldest
 * first, while fewer than cap deliveries of that kind are in flight. */
static void ob_start_due(struct alert_outbox *ob, int64_t now_ms, bool retries, size_t cap)
{
    size_t busy = 0;
    for (size_t i = 0; i < ob->items.n; i++)
        busy += ob->items.v[i].inflight && (ob->items.v[i].attempts > 0) == retries;
    for (size_t i = 0; i < ob->items.n && busy < cap && ob->inflight < (size_t)ob->max_inflight;) {
        const struct ob_item *it = &ob->items.v[i];
        if (it->inflight || it->next_ms > now_ms || (it->attempts > 0) != retries) {
            i++;
            continue;
        }
        size_t before = ob->inflight;
        if (!ob_start(ob, i))
            i++; /* else it left the list: the next one is at i now */
        busy += ob->inflight - before;
    }
}

void alert_outbox_tick(struct alert_outbox *ob, int64_t now_ms)
{
    alert_outbox_collect(ob, now_ms);
    /* new notifications first, and retries (a receiver down, or one that
     * drops packets or never answers, each attempt a timeout) in at most
     * half of the slots (rounded up), so that a backlog of them leaves room
     * for new ones; and new ones leave one slot for the retries */
    size_t slots = (size_t)ob->max_inflight;
    ob_start_due(ob, now_ms, false, slots > 1 ? slots - 1 : slots);
    ob_start_due(ob, now_ms, true, slots - slots / 2);
    if (ob->inflight)
        ob->t.poll(ob->t.arg, ob_on_done, ob); /* get the new ones going now */
    ob_write_outcomes(ob);
    metric_set(obm.depth, (int64_t)ob->items.n);
    metric_set(obm.inflight, (int64_t)ob->inflight);
    int64_t oldest = alert_outbox_oldest_ms(ob);
    metric_set(obm.oldest, oldest && now_ms > oldest ? (now_ms - oldest) / 1000 : 0);
}

size_t alert_outbox_pending(const struct alert_outbox *ob)
{
    return ob->items.n;
}

size_t alert_outbox_inflight(const struct alert_outbox *ob)
{
    return ob->inflight;
}

int64_t alert_outbox_oldest_ms(const struct alert_outbox *ob)
{
    int64_t oldest = 0;
    for (size_t i = 0; i < ob->items.n; i++)
        if (!oldest || ob->items.v[i].created_ms < oldest)
            oldest = ob->items.v[i].created_ms;
    return oldest;
}

void alert_outbox_prune(struct alert_outbox *ob, int64_t now_ms, int max)
{
    struct store_iter *it = ob->prune_from
                                ? store_iter_range(ob->store, ob->prune_from, ob->prune_len, "S", 1)
                                : store_iter_ns(ob->store, 'R');
    struct store_batch *b = store_batch_new();
    int n = 0, seen = 0;
    for (; store_iter_valid(it) && seen < max; store_iter_next(it), seen++) {
        size_t kl, vl;
        const char *k = store_iter_key(it, &kl);
        const char *v = store_iter_value(it, &vl);
        json_t *j = json_loadb(v, vl, 0, NULL);
        int64_t done = j ? jint(j, "done_ms") : 0;
        json_decref(j);
        if (done > now_ms - ob->keep)
            continue; /* one finished late (retried for weeks) keeps no later one */
        store_batch_del(b, k, kl);
        n++;
    }
    /* the next call goes on from here, and from the first once at the end */
    free(ob->prune_from);
    ob->prune_from = NULL;
    if (store_iter_valid(it)) {
        const char *k = store_iter_key(it, &ob->prune_len);
        ob->prune_from = xmemdup(k, ob->prune_len);
    }
    store_iter_free(&it);
    if (n && store_write(ob->store, b, false) != 0)
        log_warn("cannot prune finished notifications");
    store_batch_free(&b);
}

char *alert_outbox_entry_json(struct alert_outbox *ob, uint64_t seq)
{
    json_t *j;
    if (ob_load_json(ob, 'Q', seq, &j) != 1 && ob_load_json(ob, 'R', seq, &j) != 1)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *out = text ? xstrdup(text) : NULL;
    free(text);
    return out;
}

uint64_t alert_outbox_next_seq(const struct alert_outbox *ob)
{
    return ob->next_seq;
}
