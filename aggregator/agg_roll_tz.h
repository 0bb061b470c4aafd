/* agg_roll_tz: the reporting time zone of one org as the rollups need it:
 * offsets, local dates, and where local hours and days start, all in whole
 * UTC minutes (minute index = ms / 60000). The system zoneinfo is reached
 * through timeutil's tz_offset_s; answers come from a per-zone cache of one
 * probe per UTC day (and a binary search on a day with a transition). */
#ifndef LICMON_AGG_ROLL_TZ_H
#define LICMON_AGG_ROLL_TZ_H
#include <stdint.h>

#define AGG_ROLL_TZ_NONE INT64_MIN

struct agg_roll_tz;

/* A zone by IANA name; an unknown name or "" behaves as UTC. */
struct agg_roll_tz *agg_roll_tz_new(const char *name);
void agg_roll_tz_free(struct agg_roll_tz **z);
const char *agg_roll_tz_name(const struct agg_roll_tz *z);

/* Minutes east of UTC in force at UTC minute m (whole minutes, floored). */
int32_t agg_roll_tz_offset(struct agg_roll_tz *z, int64_t m);
/* The local date (days since 1970-01-01) of UTC minute m. */
int64_t agg_roll_tz_date(struct agg_roll_tz *z, int64_t m);
/* First UTC minute of local date d (for a date the zone skipped: the first
 * minute of the next date, so the day has no minute). */
int64_t agg_roll_tz_date_start(struct agg_roll_tz *z, int64_t d);
/* First UTC minute of the local hour holding m. A local hour is the run of
 * minutes with the same local date, hour and offset, so the repeated hour of
 * a fall-back is two hours. */
int64_t agg_roll_tz_hour_start(struct agg_roll_tz *z, int64_t m);
/* First UTC minute of the local hour after the one starting at hs. */
int64_t agg_roll_tz_next_hour(struct agg_roll_tz *z, int64_t hs);

#endif
