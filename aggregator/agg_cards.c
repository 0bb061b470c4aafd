/* agg_cards: the card states of SPEC.md section 5 (see agg_cards.h). Every
 * comparison is done on integers (128-bit where a product could grow), so
 * "exactly at the threshold" is never lost to rounding. */
#include "agg_cards.h"

#include <string.h>

typedef __int128 wide;

const char *agg_cards_state_name(enum agg_cards_state s)
{
    switch (s) {
    case AGG_CARDS_OK:
        return "ok";
    case AGG_CARDS_MINOR:
        return "minor";
    case AGG_CARDS_MAJOR:
        return "major";
    default:
        return "non_applicable";
    }
}

static int effective_pct(const struct agg_cards_input *in)
{
    if (in->preview_pct >= 1 && in->preview_pct <= 100)
        return in->preview_pct;
    if (in->threshold_pct >= 1 && in->threshold_pct <= 100)
        return in->threshold_pct;
    return AGG_CARDS_DEFAULT_PCT;
}

void agg_cards_compute(const struct agg_cards_input *in, struct agg_cards *out)
{
    memset(out, 0, sizeof(*out));
    int64_t n = in->owned > 0 ? in->owned : 0;
    int p = effective_pct(in);
    int margin = in->minor_margin_pct < 0     ? AGG_CARDS_DEFAULT_MARGIN
                 : in->minor_margin_pct > 100 ? 100
                                              : in->minor_margin_pct;
    wide tc = ((wide)n * p + 99) / 100;
    out->threshold_pct = p;
    out->threshold_count = (int64_t)tc;
    out->owned = n;
    bool all = in->type && !strcmp(in->type, "all");
    bool na = all || in->named || n == 0;

    /* the days of the period that have begun */
    int64_t last = in->to_date < in->today ? in->to_date : in->today;
    int64_t days = last >= in->from_date ? last - in->from_date + 1 : 0;
    int64_t sum = 0, peak = 0, peak_at = -1, peak_date = INT64_MAX, over = 0, full = 0;
    int64_t denials = 0, downgrades = 0;
    for (size_t i = 0; i < in->ndays; i++) {
        const struct agg_cards_day *d = &in->days[i];
        if (d->date < in->from_date || d->date > in->to_date)
            continue;
        denials += d->denials;
        downgrades += d->downgrades;
        if (d->date > last)
            continue;
        int64_t v = d->peak > 0 ? d->peak : 0;
        sum += v;
        if (v > peak || (v == peak && v > 0 && d->date < peak_date)) {
            peak = v;
            peak_at = d->peak_at_ms;
            peak_date = d->date;
        }
        over += (wide)v >= tc;
        full += v >= n;
    }

    out->average.peak_sum = sum;
    out->average.days = days;
    if (days > 0) {
        out->average.value = (double)sum / (double)days;
        if (n > 0)
            out->average.pct = 100.0 * (double)sum / ((double)n * (double)days);
    }
    if (na) {
        out->average.state = AGG_CARDS_NA;
    } else {
        wide lhs = (wide)sum * 100, base = (wide)n * days;
        if (days > 0 && lhs >= base * p)
            out->average.state = AGG_CARDS_MAJOR;
        else if (days > 0 && lhs >= base * (p - margin))
            out->average.state = AGG_CARDS_MINOR;
        else
            out->average.state = AGG_CARDS_OK;
    }

    out->peak.value = peak;
    out->peak.at_ms = peak > 0 ? peak_at : -1;
    if (n > 0)
        out->peak.pct = 100.0 * (double)peak / (double)n;
    out->peak.state = na                 ? AGG_CARDS_NA
                      : peak >= n        ? AGG_CARDS_MAJOR
                      : (wide)peak >= tc ? AGG_CARDS_MINOR
                                         : AGG_CARDS_OK;

    out->over_threshold.value = na ? 0 : over;
    out->over_threshold.days_at_capacity = na ? 0 : full;
    out->over_threshold.state = na          ? AGG_CARDS_NA
                                : full >= 1 ? AGG_CARDS_MAJOR
                                : over >= 1 ? AGG_CARDS_MINOR
                                            : AGG_CARDS_OK;

    out->denied.users = in->denied_users > 0 ? in->denied_users : 0;
    out->denied.events = denials;
    out->denied.state = out->denied.users >= 1 || denials >= 1 ? AGG_CARDS_MAJOR : AGG_CARDS_OK;
    out->downgraded.users = in->downgraded_users > 0 ? in->downgraded_users : 0;
    out->downgraded.events = downgrades;
    out->downgraded.state =
        out->downgraded.users >= 1 || downgrades >= 1 ? AGG_CARDS_MINOR : AGG_CARDS_OK;

    out->current.in_use = in->in_use;
    out->current.owned = n;
    out->current.free = n > in->in_use ? n - in->in_use : 0;

    if (!in->has_expiry) {
        out->expiration.state = AGG_CARDS_NA;
    } else {
        int64_t left = in->expires - in->today;
        out->expiration.days_left = left;
        out->expiration.expired = left < 0;
        out->expiration.state = left <= 30   ? AGG_CARDS_MAJOR
                                : left <= 90 ? AGG_CARDS_MINOR
                                             : AGG_CARDS_OK;
    }
}
