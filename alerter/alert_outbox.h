/* alert_outbox: the durable queue between a crossing and the servers. Each
 * notification (one per email address and per webhook) is rendered once and
 * written under its own key in the same batch that records the crossing;
 * it is handed to the transport only after that batch is durable, and it
 * leaves the queue only when the server accepted it (or refused it for
 * good), in a synced write. So a restart at any instant neither loses nor
 * repeats one, except the unavoidable resend when the crash falls between
 * the server's acceptance and our mark: that resend carries the same
 * Message-ID / webhook-id. Transient failures are retried with capped
 * exponential backoff and jitter, for as long as it takes, or until the
 * org's settings in force no longer want it: before each attempt the entry
 * is checked against them (alert_outbox_follow_settings), so removing an
 * address or a webhook, or turning notifications off, cancels what is still
 * queued for it, and a webhook's rotated secret signs its retries.
 *
 * Keys: 'Q' be64(seq) -> pending entry (JSON), 'R' be64(seq) -> finished
 * entry (sent, failed or cancelled, without its webhook secret; pruned
 * keep_ms after it finished), 'M' "outbox_next" -> next
 * seq, 'M' "outbox_instance" -> a random id that makes entry ids unique
 * across databases. */
#ifndef ALERT_OUTBOX_H
#define ALERT_OUTBOX_H
#include "alert_notify.h"
#include "alert_state.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the outbox reaches the servers: the notifier in the program, a fake
 * in the unit tests. start returns ALERT_START_OK or ALERT_START_LATER. */
struct alert_transport {
    int (*start)(void *arg, uint64_t token, const struct alert_delivery *d);
    void (*poll)(void *arg, alert_done_fn done, void *done_arg);
    void *arg;
};

struct alert_outbox_config {
    const char *smtp_from;  /* From header (and Message-ID domain) */
    const char *public_url; /* dashboard link in messages */
    int64_t retry_min_ms;   /* first retry after about this long */
    int64_t retry_max_ms;   /* cap of the backoff */
    int max_inflight;       /* deliveries at the same time */
    int64_t keep_ms;        /* how long finished entries are kept */
};

struct alert_outbox;

/* Opens the outbox over the store: loads the pending entries (they are due
 * at once) and the id counter. Exits (log_fatal) when the store is
 * unreadable. The config strings are copied. */
struct alert_outbox *alert_outbox_open(struct store *store, const struct alert_outbox_config *cfg,
                                       const struct alert_transport *t);
void alert_outbox_close(struct alert_outbox **ob);

/* The settings in force for org, NULL when none are known; *settled set
 * false while they may be older than the latest (the alerter catching up
 * with its upstream's log). */
typedef const Licmon__V1__OrgSettings *(*alert_settings_fn)(void *arg, const char *org,
                                                            bool *settled);
/* Before each attempt, the outbox asks fn for the entry's org: an entry
 * whose address is no longer in notify_emails (ignoring case), whose
 * webhook url is no longer in webhooks, or whose org turned notifications
 * off, is finished as "cancelled" (on settled settings only: else it waits
 * a second and is asked about again); a webhook is signed with its secret
 * in force, and also with the one it was queued with when that differs.
 * Without fn (or with no settings known) entries go as queued. */
void alert_outbox_follow_settings(struct alert_outbox *ob, alert_settings_fn fn, void *arg);

/* Renders the notifications of one event, one per recipient and webhook of
 * ev->settings, into batch b (with the id counter). They are sent only
 * after alert_outbox_committed(). Returns how many were added. */
int alert_outbox_add(struct alert_outbox *ob, struct store_batch *b, const struct alert_event *ev,
                     int64_t now_ms);
/* The batch holding the entries added since the last call is durable. */
void alert_outbox_committed(struct alert_outbox *ob);

/* Collects finished deliveries and records their outcome (one synced
 * write), then starts the due ones: those never tried first, retries in at
 * most half of max_inflight. A clock that went back since the last call
 * moves the retries' due times back with it. Never waits. */
void alert_outbox_tick(struct alert_outbox *ob, int64_t now_ms);
/* Only collects and records finished deliveries (for the shutdown drain). */
void alert_outbox_collect(struct alert_outbox *ob, int64_t now_ms);

size_t alert_outbox_pending(const struct alert_outbox *ob); /* depth, in flight included */
size_t alert_outbox_inflight(const struct alert_outbox *ob);
/* created_ms of the oldest pending entry, 0 when none. */
int64_t alert_outbox_oldest_ms(const struct alert_outbox *ob);
/* Deletes the finished entries that finished more than keep_ms ago, among
 * at most max of them looked at; each call goes on where the last stopped,
 * and from the first after the last, so every entry is looked at in turn. */
void alert_outbox_prune(struct alert_outbox *ob, int64_t now_ms, int max);

/* Backoff before retry number attempt (1 = the first retry): min_ms doubled
 * per attempt, capped at max_ms, then "equal jitter": half of it fixed, the
 * other half scaled by rnd (0..UINT32_MAX). Pure. */
int64_t alert_outbox_backoff_ms(uint32_t attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd);

/* For tests and tools: the stored JSON of entry seq (pending or finished),
 * or NULL; caller frees. */
char *alert_outbox_entry_json(struct alert_outbox *ob, uint64_t seq);
/* The seq the next entry gets. */
uint64_t alert_outbox_next_seq(const struct alert_outbox *ob);

#endif
