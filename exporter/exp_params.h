/* exp_params: the query-string parameters of the read endpoints (usage,
 * stats, sessions, export, report) and the period arithmetic in the org's
 * zone. Pure: the clock and the zone come in as arguments, so unit tests
 * can walk DST days exactly. Every error names its parameter:
 * "from: must be a date YYYY-MM-DD". Private to exporter/. */
#ifndef EXP_PARAMS_H
#define EXP_PARAMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXP_USER_MAX 256
#define EXP_TYPE_MAX 32

/* EXP_EP_NONE: an endpoint that takes no parameter (licenses, current,
 * settings, tokens, orgs), where any one given is an error too. */
enum exp_endpoint {
    EXP_EP_NONE,
    EXP_EP_USAGE,
    EXP_EP_STATS,
    EXP_EP_SESSIONS,
    EXP_EP_EXPORT,
    EXP_EP_REPORT
};

/* the same numbers as proto's Granularity */
enum exp_gran { EXP_GRAN_DAY = 1, EXP_GRAN_HOUR = 2, EXP_GRAN_MINUTE = 3 };

enum exp_format { EXP_FMT_NONE, EXP_FMT_XLSX, EXP_FMT_CSV, EXP_FMT_JSON, EXP_FMT_NDJSON };

enum exp_paper { EXP_PAPER_A4, EXP_PAPER_LETTER };

/* One query-string argument as the HTTP layer decoded it; value NULL when
 * the argument had no '='. */
struct exp_kv {
    const char *key, *value;
};

struct exp_params {
    char type[EXP_TYPE_MAX + 1]; /* a license type or "all" (the default) */
    enum exp_gran granularity;   /* usage only; day by default */
    bool has_range;              /* from and to given */
    int64_t from, to;            /* local dates, days since 1970-01-01 */
    int period_days;             /* 0: none; today = 1, 7d = 7, ... */
    bool has_date;
    int64_t date;
    bool has_hour;
    int hour;             /* 0-23 */
    bool hour_has_offset; /* hour was given as its label "YYYY-MM-DDTHH:00+hh:mm" */
    int32_t hour_offset_s;
    int threshold_pct; /* 0: the saved one */
    bool has_user;
    char user[EXP_USER_MAX + 1];
    enum exp_format format;
    enum exp_paper paper;
};

/* Parses the arguments of an endpoint. 0, or -1 with "name: reason" in err.
 * Unknown, repeated and empty-valued arguments are errors, and so is an
 * argument the endpoint does not take. */
int exp_params_parse(enum exp_endpoint ep, const struct exp_kv *kv, size_t n, struct exp_params *p,
                     char *err, size_t errlen);

/* A period of local dates after clamping to what exists. */
struct exp_period {
    int64_t from, to;             /* effective (when !empty) */
    int64_t asked_from, asked_to; /* as given (or as the shortcut says) */
    bool clamped;                 /* from or to was moved */
    bool empty;                   /* nothing of it exists */
};

/* The minute retention is at least this many days, whatever the settings
 * say: the aggregator applies the same floor (aggregator/agg_retention.c). */
#define EXP_PARAMS_MIN_MINUTE_DAYS 400
#define EXP_PARAMS_MAX_DAYS 1000000

/* The local date "today" in zone tz at now_ms. */
int64_t exp_params_today(const char *tz, int64_t now_ms);
/* The period of p (from/to or the shortcut) with today and retention_days
 * (how many local dates back, today included, data is kept): a shortcut of
 * N days is today and the N-1 days before; the period is clamped to
 * [today - retention_days + 1, today]. For day rows and the cards. */
void exp_params_period(const struct exp_params *p, int64_t today, int64_t retention_days,
                       struct exp_period *out);
/* today - retention_days + 1: the first local date of the day rows, whose
 * retention counts whole local dates. */
int64_t exp_params_first_day(int64_t today, int64_t retention_days);
/* As exp_params_period, clamped to [first_day, today]. */
void exp_params_period_since(const struct exp_params *p, int64_t first_day, int64_t today,
                             struct exp_period *out);
/* The first local date in zone tz whose hours, minutes and sessions are all
 * kept at now_ms. The aggregator cuts those at the instant now_ms -
 * retention_days x 24 h (retention_days at least EXP_PARAMS_MIN_MINUTE_DAYS),
 * not at a local midnight: where the zone's offset now is smaller than it
 * was then, the cut falls after the start of today - retention_days + 1.
 * So this is the first date that starts at or after the cut; a date the cut
 * falls inside would come out partial and is left out. */
int64_t exp_params_first_minute_day(const char *tz, int64_t now_ms, int64_t retention_days);
/* The Query.hour for local hour `hour` of `date` in zone tz: hour for the
 * first (or only) instance, hour + 100 for the second instance of an hour a
 * fall-back repeats. With want_offset, the instance whose UTC offset is
 * offset_s. -1 when no such instance exists (and for an hour the clocks
 * skip, with or without an offset). */
int exp_params_query_hour(const char *tz, int64_t date, int hour, bool want_offset,
                          int32_t offset_s);
/* "YYYY-MM-DDTHH:MM+hh:mm" (or "Z") of an instant in the zone whose offset
 * there is offset_s; buf at least 32 bytes. */
char *exp_params_local_label(int64_t ms, int32_t offset_s, bool with_seconds, char *buf,
                             size_t len);

#endif
