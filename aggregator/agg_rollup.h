/* agg_rollup: the usage counters of SPEC.md section 4, pure. Sessionizer
 * changes go in (holds, session records, counted things, settings); minute
 * rows per (org, license type, UTC minute) and hour and day rows in the
 * org's reporting zone come out, for each type and for the pseudo-type
 * "all". No sockets, no disk, no clock: storage is reached through the
 * callbacks below, time only through the changes.
 *
 * Model. A minute is "open" until the org's watermark (the highest change
 * time seen minus the lag, or agg_rollup_advance) passes its end; an open
 * minute keeps its hold deltas unsorted, so changes that arrive out of order
 * within the lag are counted exactly. Sealing a minute sorts its deltas,
 * computes its row and folds it into its local hour and day rows. A change
 * older than the watermark is applied at the watermark (its counts are kept;
 * its time moves forward: see late_clamped). Only minutes with a change have
 * a row; a quiet minute, hour or day is derived from the one before (its
 * seats carry over). Distinct users of any bucket are exact: every acquire,
 * denial and downgrade remembers when the same user last held, was denied,
 * was downgraded, which decides if it is new to a bucket that starts at a
 * given minute; see agg_rollup.c for the arithmetic.
 *
 * Storage. Keys start with AGG_ROLLUP_NS, then a kind byte, the org, 0, the
 * type (or user), 0, and a big-endian int64 (keys_put_i64):
 *   R o org                    org row (zone, lag, watermark)
 *   R s org 0 type             series row (open minutes, in_use)
 *   R u org 0 user             user row (what the counting needs of a user)
 *   R m org 0 type 0 minute    minute row; minute = UTC ms / 60000
 *   R h org 0 type 0 minute    hour row, keyed by its first UTC minute
 *   R d org 0 type 0 date      day row, keyed by local date (days since epoch)
 * Retention may drop m and h rows older than 400 days and d rows older than
 * 5 years by their trailing number. The pseudo-type is spelled "all". */
#ifndef LICMON_AGG_ROLLUP_H
#define LICMON_AGG_ROLLUP_H
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGG_ROLLUP_NS 'R'
#define AGG_ROLLUP_ALL "all"
#define AGG_ROLLUP_DEFAULT_LAG_MS 65000 /* 5 s allowed lateness + 60 s */
#define AGG_ROLLUP_MAX_MINUTES 10080    /* rows per minute query (7 days) */
#define AGG_ROLLUP_MAX_HOURS 30         /* rows per hour query (one local day) */

/* Reads stored pairs with from <= key < to in key order, calling visit
 * until it returns non-zero. Returns 0, or -1 on a storage error (queries
 * then fail with -1). Must see everything written so far. */
typedef int (*agg_rollup_visit_fn)(void *varg, const void *key, size_t klen, const void *val,
                                   size_t vlen);
struct agg_rollup_store {
    int (*scan)(void *arg, const void *from, size_t flen, const void *to, size_t tlen,
                agg_rollup_visit_fn visit, void *varg);
    void *arg;
};

/* Receives writes from agg_rollup_save_dirty, in order: val == NULL
 * deletes key; del_range deletes from <= key < to. */
struct agg_rollup_sink {
    void (*put)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
    void (*del_range)(void *arg, const void *from, size_t flen, const void *to, size_t tlen);
    void *arg;
};

/* One bucket, every field of SPEC.md section 4. */
struct agg_rollup_row {
    int64_t start_ms;     /* UTC instant the bucket starts */
    int64_t date;         /* local date of the start, days since 1970-01-01 */
    int32_t utc_offset_s; /* the zone's offset at start_ms */
    int32_t minutes;      /* length: 1; 60 (30/90 around some DST); 1380..1500 */
    int64_t peak;         /* max in_use over the bucket (concurrent seats) */
    int64_t peak_at_ms;   /* first minute the peak was reached */
    int64_t in_use_end;   /* in_use just before the next bucket starts */
    int64_t users;        /* distinct users holding a seat at some instant */
    int64_t logins, logouts, user_timeouts, license_timeouts;
    int64_t denials, denied_users, downgrades, downgraded_users;
};

struct agg_rollup_stats {
    uint64_t orgs, series, users, open_minutes, resident_rows;
    uint64_t late_clamped; /* changes older than the watermark, applied at it */
    uint64_t ignored;      /* inconsistent holds: double acquire, release of nothing */
};

struct agg_rollup;

/* store may be NULL: nothing is then ever read back nor dropped from memory. */
struct agg_rollup *agg_rollup_new(const struct agg_rollup_store *store);
void agg_rollup_free(struct agg_rollup **r);

/* Applying changes, in the sessionizer's order. */
void agg_rollup_change(struct agg_rollup *r, const Licmon__V1__Change *c);
void agg_rollup_hold(struct agg_rollup *r, const Licmon__V1__HoldChange *h);
/* Counts a logout / user timeout once per session_id end. */
void agg_rollup_session(struct agg_rollup *r, const Licmon__V1__SessionRecord *s);
void agg_rollup_counted(struct agg_rollup *r, const Licmon__V1__Counted *c);
/* Zone and lag (allowed_lateness_s + 60 s). A new zone re-derives every hour
 * and day row from the minute rows kept (day rows older than the first kept
 * minute stay as they were). */
void agg_rollup_settings(struct agg_rollup *r, const Licmon__V1__OrgSettings *s);
void agg_rollup_set_zone(struct agg_rollup *r, const char *org, const char *tz);
void agg_rollup_set_lag(struct agg_rollup *r, const char *org, int64_t lag_ms);
/* Seals every minute that ends at or before watermark_ms (never goes back). */
void agg_rollup_advance(struct agg_rollup *r, const char *org, int64_t watermark_ms);

/* Hands every row changed since the last call to sink, range deletes first.
 * Write each batch before calling again: rows handed out stay in memory
 * until the next call, then are dropped and read back through the store. */
void agg_rollup_save_dirty(struct agg_rollup *r, const struct agg_rollup_sink *sink);
/* True once applying needed a row it could not read: nothing derived since
 * may be saved; the program restarts from its last commit. */
bool agg_rollup_store_failed(const struct agg_rollup *r);
/* Start-up: scan each prefix (2 bytes, NULL-terminated list) of the store
 * and hand every pair to agg_rollup_load. Minute and hour rows are not
 * loaded; they are read when needed. 0 restored, 1 not ours, -1 unreadable. */
extern const char *const agg_rollup_load_prefixes[];
int agg_rollup_load(struct agg_rollup *r, const void *key, size_t klen, const void *val,
                    size_t vlen);
/* Forgets users who hold nothing and did nothing counted since cutoff_ms
 * (their rows are deleted at the next save). Distinct denied / downgraded
 * users over periods reaching back before cutoff may then count them again. */
void agg_rollup_gc(struct agg_rollup *r, int64_t cutoff_ms);
/* The same with a cutoff per org taken from the org's own change time (the
 * highest seen), never from a wall clock: cutoff = that time - keep_ms(org).
 * keep_ms must be at least 8 days (the longest license timeout, 7 days,
 * plus a day), so a session end updated after its user went quiet still
 * finds the user's ring of counted ends. */
typedef int64_t (*agg_rollup_keep_fn)(void *arg, const char *org);
void agg_rollup_gc_behind(struct agg_rollup *r, agg_rollup_keep_fn keep_ms, void *arg);

/* Queries: fill out with up to cap rows and return the count, or -1 (cap
 * too small, bad range, storage error). type is a license type or "all".
 * An unknown org or type answers quiet rows of zero. */
/* Every UTC minute overlapping [from_ms, to_ms) (at most AGG_ROLLUP_MAX_MINUTES). */
int agg_rollup_minutes(struct agg_rollup *r, const char *org, const char *type, int64_t from_ms,
                       int64_t to_ms, struct agg_rollup_row *out, size_t cap);
/* Every local hour of local date `date` (23 to 25 rows around DST). */
int agg_rollup_hours(struct agg_rollup *r, const char *org, const char *type, int64_t date,
                     struct agg_rollup_row *out, size_t cap);
/* Every local date of [from_date, to_date]. */
int agg_rollup_days(struct agg_rollup *r, const char *org, const char *type, int64_t from_date,
                    int64_t to_date, struct agg_rollup_row *out, size_t cap);
/* Distinct users denied and downgraded over the local dates [from, to]. */
int agg_rollup_period_users(struct agg_rollup *r, const char *org, const char *type,
                            int64_t from_date, int64_t to_date, int64_t *denied_users,
                            int64_t *downgraded_users);
/* in_use after every change applied so far. */
int64_t agg_rollup_in_use(struct agg_rollup *r, const char *org, const char *type);
/* The local date of an instant in the org's zone (e.g. "today"). */
int64_t agg_rollup_local_date(struct agg_rollup *r, const char *org, int64_t ms);
/* The first instant (UTC ms) of local date `date` in the org's zone. */
int64_t agg_rollup_date_start_ms(struct agg_rollup *r, const char *org, int64_t date);
/* [*from_ms, *to_ms) of local hour `hour` of local date `date`: hour 0-23
 * names the first instance of that local hour, hour + 100 the second of a
 * repeated (fall-back) hour. 0, or -1 when the date has no such hour. */
int agg_rollup_hour_bounds(struct agg_rollup *r, const char *org, int64_t date, int hour,
                           int64_t *from_ms, int64_t *to_ms);
/* The license types the org's changes named (not "all"), sorted by name;
 * *types is a malloc'd array of borrowed names. Returns the count. */
size_t agg_rollup_types(struct agg_rollup *r, const char *org, const char ***types);
/* Every org the rollups have (any change seen, or loaded at start-up), in
 * no particular order; *orgs is a malloc'd array of borrowed names.
 * Returns the count. */
size_t agg_rollup_orgs(const struct agg_rollup *r, const char ***orgs);
/* The zone in force ("UTC" when never set). */
const char *agg_rollup_zone(struct agg_rollup *r, const char *org);
void agg_rollup_stats(const struct agg_rollup *r, struct agg_rollup_stats *out);

#endif
