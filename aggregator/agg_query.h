/* agg_query: answers the exporter's queries (proto Query: LICENSES,
 * CURRENT, SETTINGS, USAGE, STATS, SESSIONS, ORGS) from the aggregator's
 * state, its rollups and its session archive.
 *
 * What exists (API.md: "the days that exist"), with today = the local date
 * of the query's now_ms in the org's zone:
 *  - DAY usage has one row per local date of [from, to] that has begun and
 *    is within retention: [max(from, today - retention_days_days),
 *    min(to, today)]. Future dates are omitted (not zero rows: nothing is
 *    known about them yet); a quiet past date is a row whose seats carry
 *    over (zero when nothing was held), so the dashboard gets every day up
 *    to today. Today's row is partial.
 *  - HOUR usage has the local hours of `date` that have begun and start
 *    within the minute retention (now - retention_days_minutes days);
 *    MINUTE usage the same for the minutes of the local hour `hour` (hour +
 *    100 is the second instance of a repeated hour; an hour the date does
 *    not have gives no rows).
 *  - STATS counts the days of [from, to] that have begun and are within
 *    retention (Stats.days); the license is the one in the settings in
 *    force; for "all" there is no license: owned is the sum of the owned
 *    seats of every configured type, and there is no expiry.
 *  - SESSIONS returns the records overlapping [from 00:00, to + 1 00:00)
 *    local, the period's start clipped to the minute retention (see
 *    agg_sessions.h for overlap, order and cursor).
 *  - ORGS lists every org known: settings seen, or usage seen (a hold, a
 *    session or a counted event: anything the rollups keep), sorted by
 *    name, each once; Query.org is not looked at. Who may see which org
 *    is the exporter's business.
 * Lists whose order the state does not fix are sorted (current sessions by
 * login then id; types not configured by name), so an answer is the same
 * before and after a restart. */
#ifndef LICMON_AGG_QUERY_H
#define LICMON_AGG_QUERY_H
#include "agg_rollup.h"
#include "agg_state.h"
#include "pb.h"

struct agg_query_ctx {
    struct agg_state *state;
    struct agg_rollup *rollup;
    const struct agg_rollup_store *store; /* the session archive */
};

/* Fills rep->query for q; rep memory is released by agg_query_clear.
 * Returns 0, or -1 with rep->error set. */
int agg_query_answer(const struct agg_query_ctx *ctx, const Licmon__V1__Query *q,
                     Licmon__V1__Reply *rep);
void agg_query_clear(Licmon__V1__Reply *rep);

#endif
