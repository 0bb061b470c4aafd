/* alert_state: what the alerter knows of each org: its settings in force
 * (as they came down the usage log), and per license type the last in_use
 * level, whether a threshold episode is running, and which expiry reminders
 * went out. Pure: usage updates and a clock value in, notification events
 * and storage writes out through callbacks; the caller commits the writes
 * together with the upstream position, so a crash never repeats or loses a
 * crossing. */
#ifndef ALERT_STATE_H
#define ALERT_STATE_H
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum alert_kind { ALERT_THRESHOLD = 1, ALERT_EXPIRY = 2 };

/* One notification to make (to every recipient of the org). Pointers are
 * borrowed for the duration of the callback. */
struct alert_event {
    enum alert_kind kind;
    const char *org;
    const char *license_type;
    const Licmon__V1__OrgSettings *settings; /* recipients, time zone */
    int64_t at_ms;                           /* when it happened (0: unknown) */
    /* ALERT_THRESHOLD */
    int64_t in_use, owned, threshold_count, clear_level;
    int32_t threshold_pct;
    /* new settings made the crossing (a lower threshold, fewer seats owned):
     * it happened when they took effect, which the caller's clock tells;
     * at_ms is then the last change of in_use */
    bool by_settings;
    /* ALERT_EXPIRY */
    const char *expires; /* YYYY-MM-DD */
    int64_t days_left;   /* negative: expired that many days ago */
    int stage_days;      /* the reminder stage: 90, 30, 7, 1 or 0 */
};

typedef void (*alert_emit_fn)(void *arg, const struct alert_event *ev);
/* A storage write (never a delete). */
typedef void (*alert_put_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);

struct alert_state;

struct alert_state *alert_state_new(void);
void alert_state_free(struct alert_state **st);

/* Applies one usage update: a level (type "all" is ignored) or an org's new
 * settings; either may make a threshold notification due. Returns -1 for an
 * update whose ids are malformed (nothing changed), else 0. */
int alert_state_apply(struct alert_state *st, const Licmon__V1__UsageUpdate *u, alert_emit_fn emit,
                      void *arg);
/* Emits the expiry reminders due at wall-clock instant now_ms (days counted
 * in each org's time zone); each stage of a license's expiry date once. */
void alert_state_check_expiry(struct alert_state *st, int64_t now_ms, alert_emit_fn emit,
                              void *arg);

/* Hands every key changed since the last call to put. */
void alert_state_save_dirty(struct alert_state *st, alert_put_fn put, void *arg);
/* Restores one saved pair at start-up: 0 restored, 1 not ours, -1 unreadable. */
int alert_state_load(struct alert_state *st, const void *key, size_t klen, const void *val,
                     size_t vlen);
/* The namespace bytes alert_state stores under (NUL-terminated). */
extern const char alert_state_namespaces[];

/* Queries (for logs and tests). */
/* The org's settings in force, NULL when none came yet. Delivery asks for
 * them before each attempt (alert_outbox_follow_settings): the pointer is
 * valid until the next apply or load, and is not kept. */
const Licmon__V1__OrgSettings *alert_state_settings(const struct alert_state *st, const char *org);
int64_t alert_state_in_use(const struct alert_state *st, const char *org, const char *type);
bool alert_state_fired(const struct alert_state *st, const char *org, const char *type);

#endif
