/* exp_view: the JSON the API answers, built from the aggregator's
 * QueryReply and the settings in force. Pure: the clock comes in as now_ms,
 * so the expiration edges can be tested exactly. Private to exporter/. */
#ifndef EXP_VIEW_H
#define EXP_VIEW_H
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
/* GET /v1/orgs/{org}/current. */
json_t *exp_view_current(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s,
                         int64_t now_ms);

#endif
