/* alert_run: stage callbacks, expiry check and send timer (see alert_run.h).
 * A crossing found while applying upstream record N is written to the
 * outbox in the stage's batch for N, so the episode state, the outbox
 * entries and the upstream position commit together; reminders found by
 * the clock go in a batch of their own with the reminder state. */
#include "alert_run.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_PRUNE_MAX 1000
/* when the alerter was last caught up with the aggregator's log, saved
 * this often while it is */
static const char CAUGHT_UP_KEY[] = "Malerter_caught_up_ms";
#define RUN_CAUGHT_UP_SAVE_MS 30000

struct alert_run {
    struct store *store;
    struct alert_state *state;
    struct alert_outbox *outbox;
    struct stage *stage; /* NULL until alert_run_set_stage */
    int64_t now_offset_ms;
    int64_t max_age_ms;   /* crossings noticed later than this are not notified (0: all are) */
    int64_t caught_up_ms; /* our clock when the stage was last caught up (saved; 0: never) */
    int64_t caught_up_saved;
    struct prog_clock clock; /* README: a clock that is wrong */
    struct store_batch *cur; /* where emitted notifications go */
    int64_t cur_now;
    bool settings_changed;
    bool expiry_due; /* an expiry check waits until we are caught up */
    struct metric *m_crossings, *m_history, *m_reminders, *m_bad;
};

static int run_load_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return alert_state_load(arg, key, klen, val, vlen);
}

static const Licmon__V1__OrgSettings *run_settings(void *arg, const char *org, bool *settled)
{
    struct alert_run *r = arg;
    *settled = !r->stage || stage_caught_up(r->stage);
    return alert_state_settings(r->state, org);
}

static void run_load(struct alert_run *r)
{
    long n = store_load_namespaces(r->store, alert_state_namespaces, run_load_one, r->state);
    if (n < 0)
        log_fatal("cannot restore the saved alert state");
    log_info("restored %ld saved states", n);
}

struct alert_run *alert_run_new(struct store *store, struct alert_outbox *ob, int64_t now_offset_ms,
                                int64_t max_age_ms)
{
    struct alert_run *r = xcalloc(1, sizeof(*r));
    r->store = store;
    r->outbox = ob;
    r->now_offset_ms = now_offset_ms;
    r->max_age_ms = max_age_ms;
    r->state = alert_state_new();
    r->m_crossings = metric_counter("licmon_alerter_crossings_total",
                                    "threshold crossings that made notifications");
    r->m_history = metric_counter("licmon_alerter_crossings_not_notified_total",
                                  "threshold crossings noticed more than --crossing-max-age-ms "
                                  "after they happened (history): followed, no mail or webhook");
    r->m_reminders = metric_counter("licmon_alerter_expiry_reminders_total",
                                    "expiry reminders that made notifications");
    r->m_bad = metric_counter("licmon_alerter_updates_rejected_total",
                              "usage updates with malformed ids, skipped");
    prog_clock_resume(&r->clock, "alerter", store);
    run_load(r);
    alert_outbox_follow_settings(ob, run_settings, r);
    uint64_t v = 0;
    if (store_get_u64(store, CAUGHT_UP_KEY, sizeof(CAUGHT_UP_KEY) - 1, &v) < 0)
        log_fatal("cannot read %s (see above)", CAUGHT_UP_KEY);
    r->caught_up_ms = r->caught_up_saved = (int64_t)v;
    if (now_offset_ms)
        log_warn("the clock is shifted by %lld ms (--now-offset-ms): for tests only",
                 (long long)now_offset_ms);
    return r;
}

void alert_run_set_stage(struct alert_run *r, struct stage *st)
{
    r->stage = st;
}

void alert_run_free(struct alert_run **rp)
{
    struct alert_run *r = *rp;
    if (!r)
        return;
    alert_state_free(&r->state);
    free(r);
    *rp = NULL;
}

int64_t alert_run_now(struct alert_run *r)
{
    return prog_clock_now(&r->clock) + r->now_offset_ms;
}

struct alert_state *alert_run_state(struct alert_run *r)
{
    return r->state;
}

/* A crossing is history when the alerter notices it more than max_age_ms
 * after it happened: a backfill of old events, or a pipeline stopped that
 * long. Its episode is followed all the same (so it is not announced later
 * either); only no mail or webhook goes out. */
static bool crossing_is_history(const struct alert_run *r, const struct alert_event *ev)
{
    return r->max_age_ms > 0 && ev->at_ms > 0 && r->cur_now - ev->at_ms > r->max_age_ms;
}

static void on_event(void *arg, const struct alert_event *in)
{
    struct alert_run *r = arg;
    struct alert_event e = *in;
    const struct alert_event *ev = &e;
    if (e.by_settings) {
        /* it happened as the new settings took effect: as we apply them
         * while we keep up; while we catch up, at some moment since we last
         * kept up, dated at the earliest, so that after a long stop it is
         * history like the crossings of usage around it */
        bool behind = r->stage && !stage_caught_up(r->stage) && r->caught_up_ms > 0;
        e.at_ms = behind && r->caught_up_ms < r->cur_now ? r->caught_up_ms : r->cur_now;
    }
    if (ev->kind == ALERT_THRESHOLD && crossing_is_history(r, ev)) {
        char at[40];
        metric_add(r->m_history, 1);
        log_info_ctx("org", ev->org,
                     "%s reached %lld of %lld seats (threshold %lld) at %s, %lld min before "
                     "it was seen here: history (a backfill, or the pipeline stopped), not "
                     "notified (--crossing-max-age-ms)",
                     ev->license_type, (long long)ev->in_use, (long long)ev->owned,
                     (long long)ev->threshold_count, time_format_rfc3339(ev->at_ms, at, sizeof(at)),
                     (long long)((r->cur_now - ev->at_ms) / 60000));
        return;
    }
    int n = alert_outbox_add(r->outbox, r->cur, ev, r->cur_now);
    if (ev->kind == ALERT_THRESHOLD) {
        metric_add(r->m_crossings, 1);
        log_info_ctx("org", ev->org,
                     "%s reached %lld of %lld seats (threshold %lld): %d "
                     "notification(s) queued",
                     ev->license_type, (long long)ev->in_use, (long long)ev->owned,
                     (long long)ev->threshold_count, n);
    } else {
        metric_add(r->m_reminders, 1);
        log_info_ctx("org", ev->org, "%s expires %s (%lld days left): %d reminder(s) queued",
                     ev->license_type, ev->expires, (long long)ev->days_left, n);
    }
}

int alert_run_apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len)
{
    struct alert_run *r = arg;
    Licmon__V1__UsageUpdate *u = licmon__v1__usage_update__unpack(NULL, len, data);
    if (!u) {
        log_warn("usage update %llu is unreadable; skipped", (unsigned long long)seq);
        return -1;
    }
    r->cur = stage_batch(st);
    r->cur_now = alert_run_now(r);
    if (u->body_case == LICMON__V1__USAGE_UPDATE__BODY_SETTINGS)
        r->settings_changed = true;
    int rc = alert_state_apply(r->state, u, on_event, r);
    if (rc < 0) {
        metric_add(r->m_bad, 1);
        log_warn("usage update %llu has malformed ids; skipped", (unsigned long long)seq);
    }
    r->cur = NULL;
    PB_FREE(usage_update, u);
    return rc;
}

void alert_run_flush(void *arg, struct stage *st, struct store_batch *b)
{
    struct alert_run *r = arg;
    (void)st;
    alert_state_save_dirty(r->state, store_batch_write, b);
}

/* Reminders due now, with their state, in one synced write of our own.
 * Judged only on settings as current as the upstream's head: at start-up,
 * or behind a backlog, the settings this program holds may be days old (a
 * changed recipient, notifications turned on, a renewal), so the check
 * waits until a fetch reply has caught us up. */
static void run_expiry(struct alert_run *r)
{
    if (!r->expiry_due || (r->stage && !stage_caught_up(r->stage)))
        return;
    r->expiry_due = false;
    struct store_batch *b = store_batch_new();
    r->cur = b;
    r->cur_now = alert_run_now(r);
    alert_state_check_expiry(r->state, r->cur_now, on_event, r);
    alert_state_save_dirty(r->state, store_batch_write, b);
    r->cur = NULL;
    if (store_batch_count(b) > 0 && store_write(r->store, b, true) != 0)
        log_fatal("cannot record expiry reminders");
    store_batch_free(&b);
    alert_outbox_committed(r->outbox);
}

void alert_run_committed(void *arg, struct stage *st)
{
    struct alert_run *r = arg;
    (void)st;
    alert_outbox_committed(r->outbox);
    if (r->settings_changed) {
        r->settings_changed = false;
        r->expiry_due = true; /* a new expiry date need not wait for the next check */
    }
    run_expiry(r);
    alert_outbox_tick(r->outbox, alert_run_now(r)); /* send now, not at the next tick */
}

void alert_run_expiry_timer(void *arg)
{
    struct alert_run *r = arg;
    r->expiry_due = true;
    run_expiry(r);
    alert_outbox_prune(r->outbox, alert_run_now(r), RUN_PRUNE_MAX);
}

/* Notes (and now and then saves) that the stage is caught up */
static void note_caught_up(struct alert_run *r)
{
    if (!r->stage || !stage_caught_up(r->stage))
        return;
    r->caught_up_ms = alert_run_now(r);
    if (r->caught_up_ms - r->caught_up_saved < RUN_CAUGHT_UP_SAVE_MS)
        return;
    struct store_batch *b = store_batch_new();
    store_batch_put_u64(b, CAUGHT_UP_KEY, sizeof(CAUGHT_UP_KEY) - 1, (uint64_t)r->caught_up_ms);
    if (store_write(r->store, b, true) != 0)
        log_fatal("cannot save %s (see above)", CAUGHT_UP_KEY);
    store_batch_free(&b);
    r->caught_up_saved = r->caught_up_ms;
}

void alert_run_send_timer(void *arg)
{
    struct alert_run *r = arg;
    note_caught_up(r);
    run_expiry(r); /* one that waited for us to catch up */
    alert_outbox_tick(r->outbox, alert_run_now(r));
}

void alert_run_drain(struct alert_run *r, int64_t max_ms)
{
    int64_t end = time_mono_ms() + max_ms;
    while (alert_outbox_inflight(r->outbox) > 0 && time_mono_ms() < end) {
        usleep(10000);
        alert_outbox_collect(r->outbox, alert_run_now(r));
    }
}
