/* agg_cards: the statistics cards of SPEC.md section 5 (API.md /stats) as
 * one pure function: the license, the period's daily rows and a few counts
 * in, every card with its state out. Integer arithmetic decides every
 * state (mean% >= P is sum * 100 >= P * N * days); the doubles are only
 * for display. */
#ifndef LICMON_AGG_CARDS_H
#define LICMON_AGG_CARDS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGG_CARDS_DEFAULT_PCT 80
#define AGG_CARDS_DEFAULT_MARGIN 10

enum agg_cards_state {
    AGG_CARDS_OK,
    AGG_CARDS_MINOR,
    AGG_CARDS_MAJOR,
    AGG_CARDS_NA, /* non_applicable */
};

/* One local day of the period, as agg_rollup_days gives it. */
struct agg_cards_day {
    int64_t date;       /* local date, days since 1970-01-01 */
    int64_t peak;       /* max concurrent seats that day */
    int64_t peak_at_ms; /* first minute the peak was reached */
    int64_t denials, downgrades;
};

struct agg_cards_input {
    const char *type;     /* a license type, or "all" */
    bool named;           /* model named (floating otherwise) */
    int64_t owned;        /* N */
    int threshold_pct;    /* P, 1..100; other values: AGG_CARDS_DEFAULT_PCT */
    int preview_pct;      /* 1..100 previews another P; 0: none */
    int minor_margin_pct; /* 0..100; negative: AGG_CARDS_DEFAULT_MARGIN */
    bool has_expiry;
    int64_t expires;            /* local date of the last licensed day */
    int64_t from_date, to_date; /* the period, whole local days */
    int64_t today;              /* days after today are not counted yet */
    /* At most one row per date; dates outside the period are ignored and a
     * date without a row had no use. */
    const struct agg_cards_day *days;
    size_t ndays;
    int64_t denied_users, downgraded_users; /* distinct over the period */
    int64_t in_use;                         /* now */
};

struct agg_cards {
    int threshold_pct;       /* the P used (the preview when given) */
    int64_t threshold_count; /* ceil(N * P / 100) */
    int64_t owned;
    struct {
        int64_t peak_sum, days; /* mean = peak_sum / days */
        double value, pct;      /* the mean, and as % of N */
        enum agg_cards_state state;
    } average;
    struct {
        int64_t value;
        int64_t at_ms; /* first minute reached; -1 when value is 0 */
        double pct;
        enum agg_cards_state state;
    } peak;
    struct {
        int64_t value, days_at_capacity;
        enum agg_cards_state state;
    } over_threshold;
    struct {
        int64_t users, events;
        enum agg_cards_state state;
    } denied, downgraded;
    struct {
        int64_t in_use, owned, free;
    } current;
    struct {
        int64_t days_left; /* expires - today; negative once expired */
        bool expired;
        enum agg_cards_state state; /* NA without an expiry date */
    } expiration;
};

void agg_cards_compute(const struct agg_cards_input *in, struct agg_cards *out);
/* "ok", "minor", "major", "non_applicable" */
const char *agg_cards_state_name(enum agg_cards_state s);

#endif
