/* exp_view: the JSON the API answers, built from the aggregator's
 * QueryReply and the settings in force. Pure: the clock comes in as now_ms,
 * so the expiration edges can be tested exactly. Private to exporter/. */
#ifndef EXP_VIEW_H
#define EXP_VIEW_H
#include "exp_buf.h"
#include "pb.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define EXP_VIEW_MAJOR_DAYS 30
#define EXP_VIEW_MINOR_DAYS 90

/* Days from today's local date in zone tz (at now_ms) to the expiry date
 * "YYYY-MM-DD": 0 on the last valid day, negative once expired.
 * 0 with *days set, or -1 when expires is empty or not a date. */
int exp_view_days_left(const char *expires, const char *tz, int64_t now_ms, int64_t *days);
/* The "license expiration" card state of SPEC.md section 5: non_applicable
 * without an expiry date, major when expired or <= 30 days left, minor when
 * <= 90, else ok. */
const char *exp_view_expiration_state(bool has_expiry, int64_t days_left);

/* The zone the answer is in: the reply's, else the settings', else UTC. */
const char *exp_view_timezone(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s);
/* GET /v1/orgs/{org}/licenses. s: the settings in force (never NULL). One
 * row per type the settings define, then per type only the aggregator
 * knows (seats in use of a type that is not configured); never "all". */
json_t *exp_view_licenses(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s,
                          int64_t now_ms);
/* GET /v1/orgs: {"orgs":[{"org":..., "timezone":...}, ...]}, in the order
 * given (tzs[i] is the zone of orgs[i]). */
json_t *exp_view_orgs(const char *const *orgs, const char *const *tzs, size_t n);
/* GET /v1/orgs/{org}/current. */
json_t *exp_view_current(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s,
                         int64_t now_ms);

/* One usage row (SPEC.md section 4) as a JSON object: date, then "hour"
 * (granularity 2) or "minute" (3) labelled in local time with the offset,
 * then every counter at every level (peak, peak_at, in_use_end, users,
 * logins, logouts, user_timeouts, license_timeouts, denials, denied_users,
 * downgrades, downgraded_users). z: the org's zone (for peak_at). */
struct tz;
void exp_view_usage_row(struct exp_buf *b, const Licmon__V1__UsageRow *r, int granularity,
                        const struct tz *z);
/* The cards of GET /stats (SPEC.md section 5). lic: the license of the type
 * (its expiry date), or NULL. */
json_t *exp_view_stats(const Licmon__V1__Stats *st, const Licmon__V1__License *lic,
                       const struct tz *z);
/* A percentage of owned, or NaN when nothing is owned. */
double exp_view_pct(double value, int64_t owned);
/* A percentage or a mean as shown with `decimals` decimals: cut toward
 * zero, never rounded up, so it meets a whole-number threshold exactly when
 * the exact value does (79.97% of the seats with P = 80 reads 79.9, "Minor";
 * rounded it would read 80.0 under a state saying it is below 80; a mean of
 * 7.996 seats against a threshold of 8 reads 7.99, not 8.00). NaN stays NaN.
 * Every writer of a percentage or of the average card (API, report, xlsx)
 * goes through it. */
double exp_view_cut(double x, int decimals);
/* One session record (SPEC.md section 3.1) as a JSON object. Instants are
 * RFC 3339 UTC with ms; requested_type, end and license_released_at are
 * null when empty, and so are the three metrics of an open session (they
 * are measured to its end) and the tail of a seat still held;
 * end_reason is its name (manual_logout, ...). */
void exp_view_session(struct exp_buf *b, const Licmon__V1__SessionRecord *s);
/* Whether a session record's license_tail_s is a value: the tail runs from
 * the session's end to the release of its seat, so it has none while the
 * session is open or while its seat is still held (license_released_at
 * empty: the sessionizer leaves released_at and the tail 0 until then).
 * Every format (JSON, NDJSON, csv, xlsx) asks this, so none shows a 0. */
bool exp_view_tail_known(const Licmon__V1__SessionRecord *s);
/* The words of a card state for people, the dashboard's (STATE_WORDS):
 * OK, Minor, Major, Non-applicable. */
const char *exp_view_state_words(const char *state);
/* Whether a card's state is one that applies (not non_applicable, not
 * missing). A card that does not apply shows no percentage of the seats and
 * no threshold in seats, on the page and in the report and xlsx alike. */
bool exp_view_card_applies(const char *state);
/* The model ("floating", "named") of type in GET /licenses's answer, NULL
 * when the answer has no such type or no model for it. */
const char *exp_view_license_model(const json_t *licenses, const char *type);
/* Why the threshold cards of type (its model, NULL when not known; owning
 * `owned` seats) do not apply, in the dashboard's words and order: all types
 * together, a named type, or no seats. */
const char *exp_view_na_reason(const char *type, const char *model, int64_t owned);
/* Whether a seat capacity (the owned line of a chart) is shown for type:
 * not for all types together, whose floating pools and named seats added
 * up are no capacity anybody can reach (the dashboard's ownedFor). */
bool exp_view_has_capacity(const char *type);

#endif
