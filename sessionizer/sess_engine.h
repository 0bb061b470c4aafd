/* sess_engine: the session state machine of SPEC.md section 3, pure: no
 * sockets, no disk, no clock. It takes the journal's inputs in order
 * (events, settings changes, clock ticks) and emits Change messages
 * (hold acquired/released, session records, counted things) through a
 * callback. Its state is saved and restored as opaque key/value pairs so
 * the sessionizer can commit it with the journal position. */
#ifndef LICMON_SESS_ENGINE_H
#define LICMON_SESS_ENGINE_H
#include "pb.h"

#include <stddef.h>
#include <stdint.h>

struct sess_engine;

/* Receives each change; the change and everything it points to is only
 * valid during the call. The caller sets journal_seq. */
typedef void (*sess_emit_fn)(void *arg, Licmon__V1__Change *change);
/* Receives saved state: val == NULL means delete key. Keys start with
 * KEY_NS_STATE ('S', see keys.h). */
typedef void (*sess_put_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);

struct sess_engine *sess_engine_new(sess_emit_fn emit, void *arg);
void sess_engine_free(struct sess_engine **e);

/* The journal's inputs, in journal order. arrival_ms is ingest's clock (the
 * host's wall clock, a step of it only once it has lasted) when it journaled
 * the record (JournalRecord.arrival_ms). */
void sess_engine_settings(struct sess_engine *e, const Licmon__V1__OrgSettings *s,
                          int64_t arrival_ms);
void sess_engine_event(struct sess_engine *e, const Licmon__V1__Event *ev, int64_t arrival_ms);
void sess_engine_tick(struct sess_engine *e, int64_t wall_ms);

/* Hands every piece of state changed since the last call to put. */
void sess_engine_save_dirty(struct sess_engine *e, sess_put_fn put, void *arg);
/* Restores one saved pair at start-up (before any input). 0, or -1 when
 * the pair cannot be read. */
int sess_engine_load(struct sess_engine *e, const void *key, size_t klen, const void *val,
                     size_t vlen);

/* Counts for metrics. */
struct sess_engine_stats {
    uint64_t open_sessions, open_holds, late_events, orphans, pending_timers, held_events;
    uint64_t ahead_events; /* stamped too far after their arrival: taken at the bound */
};
void sess_engine_stats(const struct sess_engine *e, struct sess_engine_stats *out);

#endif
