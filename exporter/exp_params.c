/* exp_params: query-string parsing and period arithmetic (see exp_params.h). */
#include "exp_params.h"
#include "exp_buf.h"
#include "settings.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum param_id {
    P_TYPE,
    P_GRANULARITY,
    P_FROM,
    P_TO,
    P_PERIOD,
    P_DATE,
    P_HOUR,
    P_THRESHOLD,
    P_USER,
    P_FORMAT,
    P_PAPER,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {"type",   "granularity", "from", "to",
                                                 "period", "date",        "hour", "threshold_pct",
                                                 "user",   "format",      "paper"};

/* Which endpoint takes which parameter. */
static bool param_allowed(enum exp_endpoint ep, enum param_id id)
{
    if (ep == EXP_EP_NONE)
        return false;
    switch (id) {
    case P_TYPE:
    case P_FROM:
    case P_TO:
    case P_PERIOD:
        return true;
    case P_GRANULARITY:
    case P_DATE:
    case P_HOUR:
        return ep == EXP_EP_USAGE;
    case P_THRESHOLD:
        return ep == EXP_EP_STATS || ep == EXP_EP_REPORT;
    case P_USER:
        return ep == EXP_EP_SESSIONS || ep == EXP_EP_EXPORT;
    case P_FORMAT:
        return ep == EXP_EP_EXPORT;
    case P_PAPER:
        return ep == EXP_EP_REPORT;
    default:
        return false;
    }
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

/* A whole decimal number of at most 3 digits, no sign, no spaces. */
static int parse_small_int(const char *s, int *out)
{
    size_t n = strlen(s);
    if (n < 1 || n > 3 || strspn(s, "0123456789") != n)
        return -1;
    *out = atoi(s);
    return 0;
}

static int parse_2digits(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 0;
}

/* "YYYY-MM-DDTHH:00+hh:mm" / "...Z": the label of an hour row. */
static int parse_hour_label(const char *s, int64_t *date, int *hour, int32_t *offset_s)
{
    char d[11];
    if (strlen(s) < 17 || s[10] != 'T' || s[13] != ':' || strncmp(s + 14, "00", 2))
        return -1;
    memcpy(d, s, 10);
    d[10] = '\0';
    if (time_parse_date(d, date) != 0 || parse_2digits(s + 11, hour) != 0 || *hour > 23)
        return -1;
    const char *z = s + 16;
    if (!strcmp(z, "Z")) {
        *offset_s = 0;
        return 0;
    }
    int oh, om;
    /* a '+' left unescaped in a query string arrives as a space */
    if ((z[0] != '+' && z[0] != '-' && z[0] != ' ') || strlen(z) != 6 || z[3] != ':' ||
        parse_2digits(z + 1, &oh) != 0 || parse_2digits(z + 4, &om) != 0 || oh > 14 || om > 59)
        return -1;
    *offset_s = (oh * 3600 + om * 60) * (z[0] == '-' ? -1 : 1);
    return 0;
}

int exp_params_parse(enum exp_endpoint ep, const struct exp_kv *kv, size_t n, struct exp_params *p,
                     char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->type, sizeof(p->type), "all");
    p->granularity = EXP_GRAN_DAY;
    bool seen[P_COUNT] = {false};
    bool has_from = false, has_to = false, has_gran = false, label_date = false;
    int64_t hour_date = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = kv[i].key ? kv[i].key : "";
        const char *val = kv[i].value;
        int id = -1;
        for (int j = 0; j < P_COUNT; j++)
            if (!strcmp(key, param_names[j]))
                id = j;
        /* a name from outside is echoed only when it is short and printable */
        bool printable = strlen(key) <= 40 && exp_utf8_valid(key, strlen(key));
        for (const char *c = key; printable && *c; c++)
            printable = (unsigned char)*c >= 0x20 && *c != 0x7f;
        if (id < 0)
            FAIL("%s: unknown parameter", printable && *key ? key : "(name)");
        if (!param_allowed(ep, (enum param_id)id))
            FAIL("%s: not a parameter of this endpoint", key);
        if (seen[id])
            FAIL("%s: given more than once", key);
        seen[id] = true;
        if (!val || !*val)
            FAIL("%s: needs a value", key);
        switch ((enum param_id)id) {
        case P_TYPE:
            if (strcmp(val, "all") && !settings_valid_type(val))
                FAIL("type: must be a license type ([a-z0-9_]{1,32}) or all");
            snprintf(p->type, sizeof(p->type), "%s", val);
            break;
        case P_GRANULARITY:
            has_gran = true;
            if (!strcmp(val, "day"))
                p->granularity = EXP_GRAN_DAY;
            else if (!strcmp(val, "hour"))
                p->granularity = EXP_GRAN_HOUR;
            else if (!strcmp(val, "minute"))
                p->granularity = EXP_GRAN_MINUTE;
            else
                FAIL("granularity: must be day, hour or minute");
            break;
        case P_FROM:
            if (time_parse_date(val, &p->from) != 0)
                FAIL("from: must be a date YYYY-MM-DD");
            has_from = true;
            break;
        case P_TO:
            if (time_parse_date(val, &p->to) != 0)
                FAIL("to: must be a date YYYY-MM-DD");
            has_to = true;
            break;
        case P_PERIOD: {
            static const struct {
                const char *name;
                int days;
            } periods[] = {{"today", 1}, {"7d", 7},     {"30d", 30},
                           {"90d", 90},  {"180d", 180}, {"365d", 365}};
            for (size_t k = 0; k < sizeof(periods) / sizeof(periods[0]); k++)
                if (!strcmp(val, periods[k].name))
                    p->period_days = periods[k].days;
            if (!p->period_days)
                FAIL("period: must be today, 7d, 30d, 90d, 180d or 365d");
            break;
        }
        case P_DATE:
            if (time_parse_date(val, &p->date) != 0)
                FAIL("date: must be a date YYYY-MM-DD");
            p->has_date = true;
            break;
        case P_HOUR:
            if (parse_small_int(val, &p->hour) == 0) {
                if (p->hour > 23)
                    FAIL("hour: must be 0 to 23");
            } else if (parse_hour_label(val, &hour_date, &p->hour, &p->hour_offset_s) == 0) {
                p->hour_has_offset = true;
                label_date = true;
            } else {
                FAIL("hour: must be 0 to 23 (or an hour row's label YYYY-MM-DDTHH:00+hh:mm)");
            }
            p->has_hour = true;
            break;
        case P_THRESHOLD:
            if (parse_small_int(val, &p->threshold_pct) != 0 || p->threshold_pct < 1 ||
                p->threshold_pct > 100)
                FAIL("threshold_pct: must be a whole number from 1 to 100");
            break;
        case P_USER: {
            size_t len = strlen(val);
            if (len > EXP_USER_MAX)
                FAIL("user: longer than %d bytes", EXP_USER_MAX);
            if (!exp_utf8_valid(val, len))
                FAIL("user: not valid UTF-8");
            memcpy(p->user, val, len + 1);
            p->has_user = true;
            break;
        }
        case P_FORMAT:
            if (!strcmp(val, "xlsx"))
                p->format = EXP_FMT_XLSX;
            else if (!strcmp(val, "csv"))
                p->format = EXP_FMT_CSV;
            else if (!strcmp(val, "json"))
                p->format = EXP_FMT_JSON;
            else if (!strcmp(val, "ndjson"))
                p->format = EXP_FMT_NDJSON;
            else
                FAIL("format: must be xlsx, csv, json or ndjson");
            break;
        case P_PAPER:
            if (!strcmp(val, "a4") || !strcmp(val, "A4"))
                p->paper = EXP_PAPER_A4;
            else if (!strcmp(val, "letter"))
                p->paper = EXP_PAPER_LETTER;
            else
                FAIL("paper: must be a4 or letter");
            break;
        default:
            break;
        }
    }
    if (ep == EXP_EP_NONE)
        return 0; /* and none was given */
    if (ep == EXP_EP_EXPORT && !seen[P_FORMAT])
        FAIL("format: missing (xlsx, csv, json or ndjson)");
    if (label_date) {
        if (p->has_date && p->date != hour_date)
            FAIL("hour: its label is not on the date given");
        p->date = hour_date;
        p->has_date = true;
    }
    bool dated = ep == EXP_EP_USAGE && p->granularity != EXP_GRAN_DAY;
    if (dated) {
        const char *g = p->granularity == EXP_GRAN_HOUR ? "hour" : "minute";
        if (has_from || has_to || p->period_days)
            FAIL("%s: granularity=%s takes date (and hour), not from, to or period",
                 has_from ? "from"
                 : has_to ? "to"
                          : "period",
                 g);
        if (!p->has_date)
            FAIL("date: missing (granularity=%s needs a date)", g);
        if (p->granularity == EXP_GRAN_MINUTE && !p->has_hour)
            FAIL("hour: missing (granularity=minute needs an hour)");
        if (p->granularity == EXP_GRAN_HOUR && p->has_hour)
            FAIL("hour: only with granularity=minute");
        return 0;
    }
    /* an hour label sets the date too: name the parameter given */
    if (seen[P_DATE])
        FAIL("date: only with granularity=hour or minute");
    if (p->has_hour)
        FAIL("hour: only with granularity=minute");
    (void)has_gran;
    if (p->period_days && (has_from || has_to))
        FAIL("period: give either period or from and to");
    if (!p->period_days) {
        if (!has_from)
            FAIL("from: missing (or give period)");
        if (!has_to)
            FAIL("to: missing (or give period)");
        if (p->to < p->from)
            FAIL("to: is before from");
        p->has_range = true;
    }
    return 0;
}

int64_t exp_params_today(const char *tz, int64_t now_ms)
{
    return tz_local_day(tz, now_ms);
}

int64_t exp_params_first_day(int64_t today, int64_t retention_days)
{
    if (retention_days < 1)
        retention_days = 1;
    if (retention_days > EXP_PARAMS_MAX_DAYS)
        retention_days = EXP_PARAMS_MAX_DAYS;
    return today - (retention_days - 1);
}

void exp_params_period(const struct exp_params *p, int64_t today, int64_t retention_days,
                       struct exp_period *out)
{
    exp_params_period_since(p, exp_params_first_day(today, retention_days), today, out);
}

int64_t exp_params_first_minute_day(const char *tz, int64_t now_ms, int64_t retention_days)
{
    if (retention_days < EXP_PARAMS_MIN_MINUTE_DAYS)
        retention_days = EXP_PARAMS_MIN_MINUTE_DAYS;
    if (retention_days > EXP_PARAMS_MAX_DAYS) /* no overflow below; settings stop far earlier */
        retention_days = EXP_PARAMS_MAX_DAYS;
    int64_t cut = now_ms - retention_days * 86400000; /* as agg_query.c's min_cut_ms */
    /* local dates never go back: the first date that starts at or after the
     * cut is the one after the date of the last instant before it */
    return tz_local_day(tz, cut - 1) + 1;
}

void exp_params_period_since(const struct exp_params *p, int64_t first_day, int64_t today,
                             struct exp_period *out)
{
    memset(out, 0, sizeof(*out));
    if (p->period_days) {
        out->asked_from = today - (p->period_days - 1);
        out->asked_to = today;
    } else if (p->has_range) {
        out->asked_from = p->from;
        out->asked_to = p->to;
    } else {
        out->asked_from = out->asked_to = p->date;
    }
    int64_t lo = first_day, hi = today;
    out->from = out->asked_from < lo ? lo : out->asked_from;
    out->to = out->asked_to > hi ? hi : out->asked_to;
    out->clamped = out->from != out->asked_from || out->to != out->asked_to;
    out->empty = out->from > out->to;
}

int exp_params_query_hour(const char *tz, int64_t date, int hour, bool want_offset,
                          int32_t offset_s)
{
    const struct tz *z = tz_get(tz);
    if (!z)
        z = tz_get("UTC");
    /* local HH:00 of date as if it were UTC; each real instance u has
     * u + offset(u) == local. Offsets around it come from a day either side
     * (zones change offset at most a few times a year). */
    int64_t local = date * 86400000 + (int64_t)hour * 3600000;
    int32_t cand[5] = {tz_offset_s(z, local - 86400000), tz_offset_s(z, local - 43200000),
                       tz_offset_s(z, local), tz_offset_s(z, local + 43200000),
                       tz_offset_s(z, local + 86400000)};
    int64_t inst[5] = {0};
    int n = 0;
    for (int i = 0; i < 5; i++) {
        int64_t u = local - (int64_t)cand[i] * 1000;
        if (tz_offset_s(z, u) != cand[i])
            continue;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= inst[j] == u;
        if (!dup)
            inst[n++] = u;
    }
    if (!want_offset)
        return n ? hour : -1; /* the first instance; none on a spring-forward day */
    int64_t want = local - (int64_t)offset_s * 1000;
    bool found = false;
    int earlier = 0;
    for (int i = 0; i < n; i++) {
        if (inst[i] == want)
            found = true;
        else if (inst[i] < want)
            earlier++;
    }
    if (!found)
        return -1;
    return earlier ? hour + 100 : hour;
}

char *exp_params_local_label(int64_t ms, int32_t offset_s, bool with_seconds, char *buf, size_t len)
{
    int64_t local = ms + (int64_t)offset_s * 1000;
    int64_t days = local >= 0 ? local / 86400000 : -((-local + 86399999) / 86400000);
    int64_t rem = local - days * 86400000;
    int64_t y;
    unsigned mo, d;
    time_civil_from_days(days, &y, &mo, &d);
    int hh = (int)(rem / 3600000), mm = (int)(rem / 60000 % 60), ss = (int)(rem / 1000 % 60);
    int32_t a = offset_s < 0 ? -offset_s : offset_s;
    if (with_seconds)
        snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d%c%02d:%02d", (long long)y, mo, d, hh,
                 mm, ss, offset_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    else
        snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d%c%02d:%02d", (long long)y, mo, d, hh, mm,
                 offset_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    return buf;
}
