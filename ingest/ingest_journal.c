/* ingest_journal: group commit of the journal and the duplicate index (see
 * ingest_journal.h). Keys: 'D' org 0 event_id -> event ts (8 bytes);
 * "Mdedup_forgotten" -> the bound the index may have forgotten events
 * before (8 bytes); the journal itself is an lstream ('L' + seq). */
#include "ingest_journal.h"
#include "hash.h"
#include "health.h"
#include "ingest_validate.h"
#include "keys.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* keys_make wants a byte past the last part too */
#define DEDUP_KEY_MAX (1 + 64 + 1 + INGEST_EVENT_ID_MAX + 1)

/* the (org, event_id) keys staged in the current group, to catch duplicates
 * inside it: open addressing over a power-of-two table */
struct group_set {
    char **keys;
    size_t *lens;
    size_t cap, n;
};

struct ingest_journal {
    struct store *st;
    struct lstream *log;
    struct store_batch *batch;
    struct group_set seen;
    int64_t retention_days;
    struct ingest_expiry *expiry; /* NULL: nothing is forgotten */
    int64_t forgotten_ms;         /* entries before this may be gone */
    struct pb_chunk items;        /* the group's journal records, packed as one Chunk */
    struct metric *m_accepted, *m_duplicate, *m_rejected, *m_commits, *m_head, *m_ahead;
    struct log_limit ahead_log;
};

/* Where key is in the set, or the free slot where it would go */
static size_t group_set_slot(const struct group_set *gs, const char *key, size_t len)
{
    size_t h = hash_fnv1a(HASH_FNV_SEED, key, len) & (gs->cap - 1);
    for (; gs->keys[h]; h = (h + 1) & (gs->cap - 1))
        if (gs->lens[h] == len && !memcmp(gs->keys[h], key, len))
            break;
    return h;
}

static bool group_set_has(const struct group_set *gs, const char *key, size_t len)
{
    return gs->cap && gs->keys[group_set_slot(gs, key, len)];
}

/* Adds key, which is not in the set */
static void group_set_add(struct group_set *gs, const char *key, size_t len)
{
    if ((gs->n + 1) * 2 > gs->cap) {
        struct group_set grown = {.cap = gs->cap ? gs->cap * 2 : 1024};
        grown.keys = xcalloc(grown.cap, sizeof(char *));
        grown.lens = xcalloc(grown.cap, sizeof(size_t));
        for (size_t i = 0; i < gs->cap; i++)
            if (gs->keys[i]) {
                size_t h = hash_fnv1a(HASH_FNV_SEED, gs->keys[i], gs->lens[i]) & (grown.cap - 1);
                while (grown.keys[h])
                    h = (h + 1) & (grown.cap - 1);
                grown.keys[h] = gs->keys[i];
                grown.lens[h] = gs->lens[i];
            }
        grown.n = gs->n;
        free(gs->keys);
        free(gs->lens);
        *gs = grown;
    }
    size_t h = group_set_slot(gs, key, len);
    gs->keys[h] = xmemdup(key, len);
    gs->lens[h] = len;
    gs->n++;
}

static void group_set_clear(struct group_set *gs)
{
    for (size_t i = 0; i < gs->cap; i++) {
        free(gs->keys[i]);
        gs->keys[i] = NULL;
    }
    gs->n = 0;
}

struct ingest_journal *ingest_journal_open(struct store *st, int64_t retention_days)
{
    static const char *const consumers[] = {"sessionizer", NULL};
    struct ingest_journal *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->log = lstream_open(st, consumers);
    j->batch = store_batch_new();
    j->retention_days = retention_days;
    j->m_accepted = metric_counter("licmon_ingest_events_total{result=\"accepted\"}",
                                   "events received, by outcome");
    j->m_duplicate = metric_counter("licmon_ingest_events_total{result=\"duplicate\"}", "");
    j->m_ahead = metric_counter("licmon_ingest_events_ahead_total",
                                "accepted events stamped over a minute ahead of ingest's clock "
                                "and of the host's: a producer's clock that is wrong");
    j->m_rejected = metric_counter("licmon_ingest_events_total{result=\"rejected\"}", "");
    j->m_head = metric_gauge("licmon_ingest_journal_head_seq", "last journal sequence written");
    metric_set(j->m_head, (int64_t)lstream_head(j->log));
    j->m_commits = metric_counter("licmon_ingest_group_commits_total",
                                  "synced journal writes (each may hold many batches)");
    return j;
}

void ingest_journal_free(struct ingest_journal **jp)
{
    struct ingest_journal *j = *jp;
    if (!j)
        return;
    group_set_clear(&j->seen);
    pb_chunk_free(&j->items);
    free(j->seen.keys);
    free(j->seen.lens);
    store_batch_free(&j->batch);
    lstream_free(&j->log);
    free(j);
    *jp = NULL;
}

struct lstream *ingest_journal_log(struct ingest_journal *j)
{
    return j->log;
}

int ingest_journal_pending(const struct ingest_journal *j)
{
    return (int)j->items.n;
}

/* Stages one record of the group; the whole group becomes one journal
 * Chunk at commit, whose seq every record of the group carries. */
static uint64_t journal_append(struct ingest_journal *j, Licmon__V1__JournalRecord *rec)
{
    rec->seq = lstream_head(j->log) + 1;
    pb_chunk_add(&j->items, &rec->base);
    return rec->seq;
}

static void ack_reject(Licmon__V1__BatchAck *ack, uint32_t index, const char *reason)
{
    Licmon__V1__Rejection *r = xmalloc(sizeof(*r));
    licmon__v1__rejection__init(r);
    r->index = index;
    r->reason = xstrdup(reason);
    ack->rejections = xrealloc(ack->rejections, (ack->n_rejections + 1) * sizeof(*ack->rejections));
    ack->rejections[ack->n_rejections++] = r;
    ack->rejected++;
}

void ingest_journal_ack_clear(Licmon__V1__BatchAck *ack)
{
    for (size_t i = 0; i < ack->n_rejections; i++) {
        free(ack->rejections[i]->reason);
        free(ack->rejections[i]);
    }
    free(ack->rejections);
    ack->rejections = NULL;
    ack->n_rejections = 0;
}

/* An event older than what the duplicate index still knows for sure */
static bool forgotten(const struct ingest_journal *j, const Licmon__V1__Event *ev, char *reason,
                      size_t len)
{
    if (ev->ts_ms >= j->forgotten_ms)
        return false;
    char at[40];
    snprintf(reason, len,
             "ts: before %s, and which events that old were already journaled is forgotten "
             "(ingest ran with a shorter --retention-days, or its clock ahead): sent again it "
             "could count twice",
             time_format_rfc3339(j->forgotten_ms, at, sizeof(at)));
    return true;
}

void ingest_journal_add_batch(struct ingest_journal *j, const Licmon__V1__EventBatch *batch,
                              const char *const *nul_fields, int64_t now_ms, int64_t ahead_of_ms,
                              Licmon__V1__BatchAck *ack)
{
    char reason[320];
    uint8_t key[DEDUP_KEY_MAX];
    ack->batch_id = batch->batch_id;
    for (size_t i = 0; i < batch->n_events; i++) {
        const Licmon__V1__Event *ev = batch->events[i];
        const char *nul = nul_fields ? nul_fields[i] : NULL;
        if (nul)
            snprintf(reason, sizeof(reason), "%s: contains a NUL byte", nul);
        if (nul || ingest_validate_ids(ev, reason, sizeof(reason))) {
            ack_reject(ack, (uint32_t)i, reason);
            metric_add(j->m_rejected, 1);
            continue;
        }
        const char *parts[] = {ev->org, ev->event_id};
        size_t kl = keys_make(key, sizeof(key), KEY_NS_DEDUP, parts, 2);
        if (kl == 0) /* validated ids always fit: an empty key would be every event's */
            log_panic("duplicate key of %zu + %zu bytes does not fit", strlen(ev->org),
                      strlen(ev->event_id));
        char *old;
        size_t oldlen;
        int found = store_get(j->st, key, kl, &old, &oldlen);
        if (found < 0) /* a rejection would be final: nothing of the group is acknowledged */
            log_fatal("cannot read the duplicate index (see above); exiting so unacknowledged "
                      "batches are resent");
        if (found > 0)
            free(old);
        if (found > 0 || group_set_has(&j->seen, (const char *)key, kl)) {
            ack->duplicate++;
            metric_add(j->m_duplicate, 1);
            continue;
        }
        if (ingest_validate_body(ev, now_ms, ahead_of_ms, j->retention_days, reason,
                                 sizeof(reason)) ||
            forgotten(j, ev, reason, sizeof(reason))) {
            ack_reject(ack, (uint32_t)i, reason);
            metric_add(j->m_rejected, 1);
            continue;
        }
        group_set_add(&j->seen, (const char *)key, kl);
        uint8_t ts[8];
        keys_put_i64(ts, ev->ts_ms);
        store_batch_put(j->batch, key, kl, ts, sizeof(ts));
        Licmon__V1__JournalRecord rec = LICMON__V1__JOURNAL_RECORD__INIT;
        rec.arrival_ms = now_ms;
        rec.body_case = LICMON__V1__JOURNAL_RECORD__BODY_EVENT;
        /* what was validated: a field this version does not know is not kept */
        Licmon__V1__Event known = *ev;
        known.base.n_unknown_fields = 0;
        known.base.unknown_fields = NULL;
        rec.event = &known;
        journal_append(j, &rec);
        ack->accepted++;
        metric_add(j->m_accepted, 1);
        /* README: a clock that is wrong. Not the producer's clock when the
         * host's agrees with the event: its step, not taken yet, is logged
         * as such (the sessionizer counts every event it bounds). */
        if (ev->ts_ms > ahead_of_ms + INGEST_AHEAD_WARN_MS) {
            metric_add(j->m_ahead, 1);
            log_warn_limited(&j->ahead_log,
                             "org %s: event %s is stamped %lld s ahead of ingest's clock; it "
                             "counts as stamped at most a second after its arrival (is the "
                             "producer's clock or time zone wrong?)",
                             ev->org, ev->event_id, (long long)((ev->ts_ms - now_ms) / 1000));
        }
    }
}

uint64_t ingest_journal_add_settings(struct ingest_journal *j, const Licmon__V1__OrgSettings *s,
                                     int64_t now_ms)
{
    Licmon__V1__JournalRecord rec = LICMON__V1__JOURNAL_RECORD__INIT;
    rec.arrival_ms = now_ms;
    rec.body_case = LICMON__V1__JOURNAL_RECORD__BODY_SETTINGS;
    rec.settings = (Licmon__V1__OrgSettings *)s;
    return journal_append(j, &rec);
}

struct store *ingest_journal_store(struct ingest_journal *j)
{
    return j->st;
}

uint64_t ingest_journal_add_tick(struct ingest_journal *j, int64_t now_ms)
{
    Licmon__V1__JournalRecord rec = LICMON__V1__JOURNAL_RECORD__INIT;
    Licmon__V1__ClockTick tick = LICMON__V1__CLOCK_TICK__INIT;
    tick.wall_ms = now_ms;
    rec.arrival_ms = now_ms;
    rec.body_case = LICMON__V1__JOURNAL_RECORD__BODY_TICK;
    rec.tick = &tick;
    return journal_append(j, &rec);
}

int ingest_journal_commit(struct ingest_journal *j)
{
    if (j->items.n == 0 && store_batch_count(j->batch) == 0)
        return 0;
    if (j->items.n > 0) {
        uint64_t seq = lstream_append(j->log, j->batch, j->items.buf, j->items.len);
        lstream_set_journal_seq(j->log, j->batch, seq);
    }
    int rc = store_write(j->st, j->batch, true);
    lstream_commit(j->log, rc == 0);
    store_batch_clear(j->batch);
    group_set_clear(&j->seen);
    pb_chunk_clear(&j->items);
    metric_add(j->m_commits, 1);
    metric_set(j->m_head, (int64_t)lstream_head(j->log));
    return rc;
}

/* The arrival time of journal chunk seq (of its first record), or
 * INT64_MAX when unreadable. */
static int64_t journal_arrival(struct ingest_journal *j, uint64_t seq)
{
    char *val;
    size_t len;
    int64_t at = INT64_MAX;
    if (lstream_get(j->log, seq, &val, &len) != 1)
        return at;
    Licmon__V1__Chunk *chunk = licmon__v1__chunk__unpack(NULL, len, (const uint8_t *)val);
    Licmon__V1__JournalRecord *rec =
        chunk && chunk->n_items
            ? licmon__v1__journal_record__unpack(NULL, chunk->items[0].len, chunk->items[0].data)
            : NULL;
    if (rec)
        at = rec->arrival_ms;
    PB_FREE(journal_record, rec);
    PB_FREE(chunk, chunk);
    free(val);
    return at;
}

void ingest_journal_retain(struct ingest_journal *j, int64_t now_ms, int64_t retention_ms)
{
    /* binary search for the first record that arrived within the window;
     * arrivals are ingest's steady clock, so they ascend along the journal
     * (but after a step back that lasted or a reboot with the clock behind:
     * then records are kept up to that much longer or trimmed that much
     * sooner, once) */
    uint64_t lo = lstream_first(j->log), hi = lstream_head(j->log) + 1;
    int64_t since = now_ms - retention_ms;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (journal_arrival(j, mid) < since)
            lo = mid + 1;
        else
            hi = mid;
    }
    lstream_set_trim_limit(j->log, lo);
}

static const char FORGOTTEN_KEY[] = "Mdedup_forgotten";
#define FORGOTTEN_STEP_MS 3600000LL

/* one spare day so an event at the edge is still known as a duplicate */
static int64_t expiry_cutoff(int64_t days, int64_t now_ms)
{
    return now_ms - (days + 1) * 86400000LL;
}

void ingest_journal_set_expiry(struct ingest_journal *j, struct ingest_expiry *x, bool reset)
{
    uint64_t v = 0;
    if (store_get_u64(j->st, FORGOTTEN_KEY, sizeof(FORGOTTEN_KEY) - 1, &v) < 0)
        log_fatal("cannot read %s (see above)", FORGOTTEN_KEY);
    if (reset && v) {
        char at[40];
        log_warn("--reset-dedup-bound: events before %s were refused as possibly forgotten "
                 "duplicates; from now on only the retention bounds them",
                 time_format_rfc3339((int64_t)v, at, sizeof(at)));
        struct store_batch *b = store_batch_new();
        store_batch_del(b, FORGOTTEN_KEY, sizeof(FORGOTTEN_KEY) - 1);
        if (store_write(j->st, b, true) != 0)
            log_fatal("cannot reset %s (see above)", FORGOTTEN_KEY);
        store_batch_free(&b);
        v = 0;
    }
    j->expiry = x;
    j->forgotten_ms = (int64_t)v;
    x->forgotten_ms = j->forgotten_ms;
}

void ingest_journal_clock(struct ingest_journal *j, int64_t now_ms)
{
    struct ingest_expiry *x = j->expiry;
    if (!x)
        return;
    int64_t cut = expiry_cutoff(x->days, now_ms);
    if (cut > j->forgotten_ms) {
        /* saved before the filter may use it: after a crash the bound read
         * back is never below what was forgotten */
        int64_t next = cut + FORGOTTEN_STEP_MS;
        struct store_batch *b = store_batch_new();
        store_batch_put_u64(b, FORGOTTEN_KEY, sizeof(FORGOTTEN_KEY) - 1, (uint64_t)next);
        if (store_write(j->st, b, true) != 0)
            log_fatal("cannot save %s (see above)", FORGOTTEN_KEY);
        store_batch_free(&b);
        j->forgotten_ms = next;
        x->forgotten_ms = next;
    }
    x->now_ms = now_ms;
}

bool ingest_journal_expired(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct ingest_expiry *x = arg;
    if (!x->now_ms || klen < 1 || key[0] != KEY_NS_DEDUP || vlen != 8)
        return false; /* no clock read yet: keep */
    int64_t cut = expiry_cutoff(x->days, x->now_ms);
    if (cut > x->forgotten_ms)
        cut = x->forgotten_ms;
    return keys_get_i64((const uint8_t *)val) < cut;
}
