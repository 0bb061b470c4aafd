/* agg_app: the aggregator's inside, wired over one store: every session
 * change goes to agg_state (current usage, open sessions, settings, the
 * session archive) and to agg_rollup (minute, hour and day rows); their
 * dirty state goes into the commit's batch; queries are answered from both;
 * the retention snapshot is published for the compaction filter; counting
 * state of long-quiet users is collected behind each org's own clock.
 * main.c adds only the stage (fetch loop, commits, sockets); the restart
 * test and the benchmark drive exactly this code. */
#ifndef LICMON_AGG_APP_H
#define LICMON_AGG_APP_H
#include "agg_retention.h"
#include "pb.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define AGG_APP_GC_EVERY 1024 /* commits between two collections of quiet users */

struct agg_app;

/* Receives each output item (a UsageUpdate) for the stage's log. */
typedef void (*agg_app_emit_fn)(void *arg, const ProtobufCMessage *m);

/* store should be opened with store_open_expiring(path, agg_retention_filter,
 * ret); ret may be NULL (no retention published). */
struct agg_app *agg_app_new(struct store *store, struct agg_retention *ret, agg_app_emit_fn emit,
                            void *emit_arg);
void agg_app_free(struct agg_app **a);

/* Restores the saved state; the number of keys read, or -1 (logged). */
long agg_app_load(struct agg_app *a);
/* Applies one packed Change; -1 when it cannot be read. */
int agg_app_apply(struct agg_app *a, const uint8_t *data, size_t len);
/* Puts everything changed since the last flush into b; b must be written
 * before the next apply (rows handed out are dropped from memory and read
 * back from the store). -1, with nothing put, once applying needed a row it
 * could not read (logged): the state in memory must not be committed. */
int agg_app_flush(struct agg_app *a, struct store_batch *b);

/* Answers a Query into rep (released by agg_app_query_clear); 0 or -1 with
 * rep->error set. */
int agg_app_query(struct agg_app *a, const Licmon__V1__Query *q, Licmon__V1__Reply *rep);
void agg_app_query_clear(Licmon__V1__Reply *rep);

struct agg_app_stats {
    uint64_t changes, unreadable, orgs, users, open_minutes, resident_rows, late_clamped, ignored,
        retention_dropped;
};
void agg_app_stats(const struct agg_app *a, struct agg_app_stats *out);

#endif
