/* agg_retention: how long the aggregator keeps what (SPEC.md section 7):
 * minute and hour rows, session records and their span index for the org's
 * retention_days_minutes (at least 400 days), day rows for its
 * retention_days_days (at least 1830). Old keys are dropped by a RocksDB
 * compaction filter, which runs on RocksDB's own threads: it reads only an
 * immutable snapshot of the per-org values, published with an atomic
 * pointer swap, and the aggregator's clock, published the same way (a steady
 * clock: a step of the host's wall clock while a compaction runs must not
 * drop rows still inside retention). Queries clip to the same cutoffs from
 * the asker's clock, and the filter keeps a few days of grace beyond them,
 * so an answer never depends on whether a compaction has run yet. */
#ifndef LICMON_AGG_RETENTION_H
#define LICMON_AGG_RETENTION_H
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGG_RET_MINUTES_DAYS 400 /* minimum and default */
#define AGG_RET_DAYS_DAYS 1830
#define AGG_RET_GRACE_DAYS 3 /* the filter keeps this much more than queries show */
#define AGG_RET_DAY_MS INT64_C(86400000)

struct agg_retention;

struct agg_retention *agg_retention_new(void);
/* Call only once the store that uses it is closed. */
void agg_retention_free(struct agg_retention **ret);

/* Publishes the values of every org (settings[0..n), any order) as the
 * filter's new snapshot; before the first call the filter keeps every key
 * (an org's longer retention must be known before anything is dropped).
 * Writer side: one thread. */
void agg_retention_publish(struct agg_retention *ret,
                           const Licmon__V1__OrgSettings *const *settings, size_t n);

/* The compaction decision for one key at wall-clock instant now_ms: true
 * drops it. Safe from any thread. */
bool agg_retention_expired(struct agg_retention *ret, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t now_ms);
/* Publishes the clock the filter judges by; before the first call it keeps
 * every key. Safe from any thread. */
void agg_retention_set_now(struct agg_retention *ret, int64_t now_ms);
/* store_expired_fn for store_open_expiring (arg: the agg_retention): judged
 * at the clock last published. */
bool agg_retention_filter(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
/* Keys dropped by the filter so far. */
uint64_t agg_retention_dropped(struct agg_retention *ret);

/* The values in force for an org's settings (defaults and minimums applied). */
int64_t agg_retention_minutes_days(const Licmon__V1__OrgSettings *s);
int64_t agg_retention_days_days(const Licmon__V1__OrgSettings *s);

/* end_ms of a packed SessionRecord without unpacking it: 1 found (0 while
 * open), 0 absent, -1 unreadable. */
int agg_retention_record_end(const uint8_t *val, size_t vlen, int64_t *end_ms);

#endif
