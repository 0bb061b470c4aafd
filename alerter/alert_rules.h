/* alert_rules: the arithmetic of SPEC.md section 6, with no state of its
 * own: the threshold and clear levels of a license type, one step of the
 * notification hysteresis, and which expiry reminder is due on a given
 * local day. Pure functions, so the unit tests can drive them hard. */
#ifndef ALERT_RULES_H
#define ALERT_RULES_H
#include <stdbool.h>
#include <stdint.h>

/* Reminders go out when this many days are left (the last is the day of
 * expiry itself), each once. */
#define ALERT_EXPIRY_STAGES 5
extern const int alert_expiry_days[ALERT_EXPIRY_STAGES]; /* 90, 30, 7, 1, 0 */
/* A license whose expiry is further in the past than this gets no reminder
 * when it first shows up (settings made long after the fact). */
#define ALERT_EXPIRY_GRACE_DAYS 30

/* ceil(owned * pct / 100); 0 when owned <= 0. */
int64_t alert_threshold_count(int64_t owned, int32_t pct);
/* threshold_count - max(1, ceil(owned * clear_margin_pct / 100)). May be
 * <= 0 (then an episode never ends). */
int64_t alert_clear_level(int64_t owned, int32_t pct, int32_t clear_margin_pct);

/* One step of the hysteresis for a new in_use value. *fired is true while
 * an episode is running (a notification went out and usage has not yet
 * dropped below clear). Returns true when this value starts a new episode,
 * i.e. a notification is due. */
bool alert_episode_step(bool *fired, int64_t in_use, int64_t threshold, int64_t clear);

/* The reminder stage due with days_left days to go: an index into
 * alert_expiry_days (the last stage whose day count is >= days_left), or -1
 * when none is due (more than 90 days left, or expired more than
 * ALERT_EXPIRY_GRACE_DAYS ago). */
int alert_expiry_stage(int64_t days_left);

#endif
