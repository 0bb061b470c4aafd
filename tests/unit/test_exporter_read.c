/* test_exporter_read: the pure cores behind the exporter's read endpoints:
 * query-string parsing, the period arithmetic in the org's zone (Europe/
 * Berlin DST days included), local labels, JSON text escaping, the CSV
 * escaping and formula neutralising, the xlsx row split, the JSON views
 * of rows, cards and sessions, and the HTML report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../exporter/exp_buf.h"
#include "../../exporter/exp_csv.h"
#include "../../exporter/exp_params.h"
#include "../../exporter/exp_report.h"
#include "../../exporter/exp_view.h"
#include "../../exporter/exp_xlsx.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static int64_t day_of(const char *date)
{
    int64_t d;
    assert_int_equal(time_parse_date(date, &d), 0);
    return d;
}

static int64_t utc_ms(const char *rfc3339)
{
    int64_t ms;
    assert_int_equal(time_parse_rfc3339(rfc3339, &ms), 0);
    return ms;
}

/* Parses "k=v&k2=v2" (no decoding: tests use plain text; "k" alone has no
 * value) and returns parse's result; err gets the message. */
static int parse(enum exp_endpoint ep, const char *query, struct exp_params *p, char *err)
{
    char *copy = xstrdup(query);
    struct exp_kv kv[32];
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, "&", &save); tok && n < 32;
         tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        kv[n].key = tok;
        kv[n].value = eq ? eq + 1 : NULL;
        n++;
    }
    err[0] = '\0';
    int rc = exp_params_parse(ep, kv, n, p, err, 256);
    free(copy);
    return rc;
}

static void expect_bad(enum exp_endpoint ep, const char *query, const char *detail_prefix)
{
    struct exp_params p;
    char err[256];
    if (parse(ep, query, &p, err) != -1)
        fail_msg("'%s' was accepted", query);
    if (strncmp(err, detail_prefix, strlen(detail_prefix)) != 0)
        fail_msg("'%s': detail '%s' does not start with '%s'", query, err, detail_prefix);
}

/* ---------------------------------------------------------------- params */

static void test_params_good(void **state)
{
    (void)state;
    struct exp_params p;
    char err[256];
    assert_int_equal(parse(EXP_EP_USAGE, "from=2026-01-01&to=2026-01-31", &p, err), 0);
    assert_string_equal(p.type, "all");
    assert_int_equal(p.granularity, EXP_GRAN_DAY);
    assert_true(p.has_range);
    assert_int_equal(p.from, day_of("2026-01-01"));
    assert_int_equal(p.to, day_of("2026-01-31"));

    assert_int_equal(parse(EXP_EP_USAGE, "type=creator&granularity=day&period=7d", &p, err), 0);
    assert_string_equal(p.type, "creator");
    assert_int_equal(p.period_days, 7);
    assert_false(p.has_range);
    static const struct {
        const char *q;
        int days;
    } periods[] = {{"period=today", 1},
                   {"period=30d", 30},
                   {"period=90d", 90},
                   {"period=180d", 180},
                   {"period=365d", 365}};
    for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
        assert_int_equal(parse(EXP_EP_STATS, periods[i].q, &p, err), 0);
        assert_int_equal(p.period_days, periods[i].days);
    }
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=hour&date=2026-03-29&type=all", &p, err), 0);
    assert_int_equal(p.granularity, EXP_GRAN_HOUR);
    assert_true(p.has_date);
    assert_int_equal(p.date, day_of("2026-03-29"));
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=minute&date=2026-03-29&hour=0", &p, err), 0);
    assert_int_equal(p.hour, 0);
    assert_false(p.hour_has_offset);
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=minute&date=2026-03-29&hour=23", &p, err), 0);
    assert_int_equal(p.hour, 23);
    /* an hour row's label: the date comes with it */
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=minute&hour=2026-10-25T02:00+01:00", &p, err),
                     0);
    assert_int_equal(p.date, day_of("2026-10-25"));
    assert_int_equal(p.hour, 2);
    assert_true(p.hour_has_offset);
    assert_int_equal(p.hour_offset_s, 3600);
    assert_int_equal(parse(EXP_EP_USAGE,
                           "granularity=minute&date=2026-10-25&hour=2026-10-25T02:00-05:30", &p,
                           err),
                     0);
    assert_int_equal(p.hour_offset_s, -(5 * 3600 + 1800));

    assert_int_equal(parse(EXP_EP_STATS, "from=2026-01-01&to=2026-01-01&threshold_pct=1", &p, err),
                     0);
    assert_int_equal(p.threshold_pct, 1);
    assert_int_equal(parse(EXP_EP_REPORT, "period=30d&threshold_pct=100&paper=letter", &p, err), 0);
    assert_int_equal(p.threshold_pct, 100);
    assert_int_equal(p.paper, EXP_PAPER_LETTER);
    assert_int_equal(parse(EXP_EP_SESSIONS, "period=7d&user=a,b \"c\"=@x&type=t_1", &p, err), 0);
    assert_true(p.has_user);
    assert_string_equal(p.user, "a,b \"c\"=@x");
    assert_int_equal(parse(EXP_EP_EXPORT, "format=xlsx&from=2026-01-01&to=2026-02-01", &p, err), 0);
    assert_int_equal(p.format, EXP_FMT_XLSX);
    assert_int_equal(parse(EXP_EP_EXPORT, "format=csv&period=today", &p, err), 0);
    assert_int_equal(p.format, EXP_FMT_CSV);
    assert_int_equal(parse(EXP_EP_EXPORT, "format=ndjson&period=today", &p, err), 0);
    assert_int_equal(p.format, EXP_FMT_NDJSON);
}

static void test_params_bad(void **state)
{
    (void)state;
    /* every malformed parameter is named */
    expect_bad(EXP_EP_USAGE, "from=2026-1-01&to=2026-01-31", "from:");
    expect_bad(EXP_EP_USAGE, "from=2026-02-30&to=2026-03-01", "from:");
    expect_bad(EXP_EP_USAGE, "from=2026-01-01&to=tomorrow", "to:");
    expect_bad(EXP_EP_USAGE, "from=2026-01-02&to=2026-01-01", "to: is before from");
    expect_bad(EXP_EP_USAGE, "from=2026-01-01", "to: missing");
    expect_bad(EXP_EP_USAGE, "to=2026-01-01", "from: missing");
    expect_bad(EXP_EP_USAGE, "", "from: missing");
    expect_bad(EXP_EP_USAGE, "period=2d", "period:");
    expect_bad(EXP_EP_USAGE, "period=7d&from=2026-01-01&to=2026-01-02", "period:");
    expect_bad(EXP_EP_USAGE, "period=7d&type=Creator", "type:");
    expect_bad(EXP_EP_USAGE, "period=7d&type=a-b", "type:");
    expect_bad(EXP_EP_USAGE, "period=7d&type=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "type:");
    expect_bad(EXP_EP_USAGE, "period=7d&type=", "type: needs a value");
    expect_bad(EXP_EP_USAGE, "period=7d&type", "type: needs a value");
    expect_bad(EXP_EP_USAGE, "period=7d&granularity=week", "granularity:");
    expect_bad(EXP_EP_USAGE, "period=7d&period=30d", "period: given more than once");
    expect_bad(EXP_EP_USAGE, "period=7d&bogus=1", "bogus: unknown parameter");
    expect_bad(EXP_EP_USAGE, "period=7d&date=2026-01-01", "date: only with");
    expect_bad(EXP_EP_USAGE, "period=7d&hour=3", "hour: only with");
    /* an hour label carries a date, but the parameter given is hour */
    expect_bad(EXP_EP_USAGE, "period=7d&hour=2026-01-01T05:00Z", "hour: only with");
    expect_bad(EXP_EP_USAGE, "period=7d&date=2026-01-01&hour=2026-01-01T05:00Z", "date: only with");
    /* the endpoints that take none */
    expect_bad(EXP_EP_NONE, "type=creator", "type: not a parameter of this endpoint");
    expect_bad(EXP_EP_NONE, "bogus=1", "bogus: unknown parameter");
    expect_bad(EXP_EP_USAGE, "granularity=hour", "date: missing");
    expect_bad(EXP_EP_USAGE, "granularity=hour&date=2026-01-01&hour=3", "hour: only with");
    expect_bad(EXP_EP_USAGE, "granularity=hour&date=2026-01-01&period=7d", "period:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01", "hour: missing");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=24", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=-1", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=+3", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=3.0", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=0003", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&hour=2026-10-25T02:30+01:00", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&hour=2026-10-25T02:00+1:00", "hour:");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-10-24&hour=2026-10-25T02:00+01:00",
               "hour: its label");
    expect_bad(EXP_EP_USAGE, "granularity=minute&date=2026-01-01&hour=3&from=2026-01-01", "from:");
    expect_bad(EXP_EP_USAGE, "period=7d&threshold_pct=80", "threshold_pct: not a parameter");
    expect_bad(EXP_EP_STATS, "period=7d&threshold_pct=0", "threshold_pct:");
    expect_bad(EXP_EP_STATS, "period=7d&threshold_pct=101", "threshold_pct:");
    expect_bad(EXP_EP_STATS, "period=7d&threshold_pct=8x", "threshold_pct:");
    expect_bad(EXP_EP_STATS, "period=7d&granularity=day", "granularity: not a parameter");
    expect_bad(EXP_EP_STATS, "period=7d&user=x", "user: not a parameter");
    expect_bad(EXP_EP_SESSIONS, "period=7d&user=\xff", "user: not valid UTF-8");
    expect_bad(EXP_EP_EXPORT, "period=7d", "format: missing");
    expect_bad(EXP_EP_EXPORT, "period=7d&format=pdf", "format:");
    expect_bad(EXP_EP_REPORT, "period=7d&paper=a3", "paper:");
    expect_bad(EXP_EP_REPORT, "period=7d&format=csv", "format: not a parameter");
    char longuser[400] = "period=7d&user=";
    memset(longuser + strlen(longuser), 'u', 257);
    expect_bad(EXP_EP_SESSIONS, longuser, "user: longer than 256");
    /* an unknown name from outside is not echoed when it is hostile */
    expect_bad(EXP_EP_USAGE, "period=7d&\x01\x02=1", "(name): unknown parameter");
}

/* ---------------------------------------------------------------- periods */

static void test_period_today_in_zone(void **state)
{
    (void)state;
    /* 23:30 UTC on 2026-03-28 is already 2026-03-29 00:30 in Berlin (CET, +1) */
    int64_t now = utc_ms("2026-03-28T23:30:00Z");
    assert_int_equal(exp_params_today("UTC", now), day_of("2026-03-28"));
    assert_int_equal(exp_params_today("Europe/Berlin", now), day_of("2026-03-29"));
    assert_int_equal(exp_params_today("America/New_York", now), day_of("2026-03-28"));
    /* the hour after the spring-forward jump: 2026-03-29 01:00 UTC = 03:00 CEST */
    now = utc_ms("2026-03-29T21:59:59Z");
    assert_int_equal(exp_params_today("Europe/Berlin", now), day_of("2026-03-29"));
    now = utc_ms("2026-03-29T22:00:00Z");
    assert_int_equal(exp_params_today("Europe/Berlin", now), day_of("2026-03-30"));
    /* the fall-back day: midnight is 22:00 UTC before, 23:00 UTC after */
    now = utc_ms("2026-10-25T22:59:59Z");
    assert_int_equal(exp_params_today("Europe/Berlin", now), day_of("2026-10-25"));
    now = utc_ms("2026-10-25T23:00:00Z");
    assert_int_equal(exp_params_today("Europe/Berlin", now), day_of("2026-10-26"));
}

static void test_period_shortcuts_and_clamp(void **state)
{
    (void)state;
    struct exp_params p;
    struct exp_period per;
    char err[256];
    int64_t today = day_of("2026-03-29"); /* the Berlin spring-forward day */
    assert_int_equal(parse(EXP_EP_USAGE, "period=today", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_int_equal(per.from, today);
    assert_int_equal(per.to, today);
    assert_false(per.clamped || per.empty);
    assert_int_equal(parse(EXP_EP_USAGE, "period=7d", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_int_equal(per.from, day_of("2026-03-23"));
    assert_int_equal(per.to, today);
    assert_int_equal(parse(EXP_EP_USAGE, "period=365d", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_int_equal(per.to - per.from + 1, 365);
    /* longer than retention: clamped to what exists */
    exp_params_period(&p, today, 400, &per);
    assert_false(per.clamped);
    exp_params_period(&p, today, 100, &per);
    assert_true(per.clamped);
    assert_int_equal(per.from, today - 99);
    assert_int_equal(per.asked_from, today - 364);
    assert_int_equal(per.to, today);
    /* future dates: up to today */
    assert_int_equal(parse(EXP_EP_USAGE, "from=2026-03-01&to=2026-12-31", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_true(per.clamped);
    assert_int_equal(per.from, day_of("2026-03-01"));
    assert_int_equal(per.to, today);
    /* all in the future, or all before retention: nothing exists */
    assert_int_equal(parse(EXP_EP_USAGE, "from=2026-04-01&to=2026-04-30", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_true(per.empty);
    assert_int_equal(parse(EXP_EP_USAGE, "from=2000-01-01&to=2000-12-31", &p, err), 0);
    exp_params_period(&p, today, 1830, &per);
    assert_true(per.empty);
    assert_int_equal(per.asked_from, day_of("2000-01-01"));
}

/* Hours, minutes and sessions are cut by the aggregator at the instant
 * now - R x 24 h, not at a local midnight: the first date the exporter
 * offers is the first that starts at or after that instant, so the oldest
 * date is never a partial one passed off as whole. */
static void test_period_minute_retention_cut(void **state)
{
    (void)state;
    const char *ber = "Europe/Berlin";
    /* 2026-11-05 23:30 CET (+1): 400 days before is 2025-10-01 22:30 UTC =
     * 2025-10-02 00:30 CEST (+2). The 2nd lost its first half hour: the
     * first whole date is the 3rd, not today - 399 = the 2nd */
    int64_t now = utc_ms("2026-11-05T22:30:00Z");
    int64_t today = exp_params_today(ber, now);
    assert_int_equal(today, day_of("2026-11-05"));
    assert_int_equal(exp_params_first_minute_day(ber, now, 400), day_of("2025-10-03"));
    /* an hour earlier the cut is 2025-10-01 23:30 CEST: the 2nd is whole */
    assert_int_equal(exp_params_first_minute_day(ber, now - 3600000, 400), day_of("2025-10-02"));
    /* the usual case, the same offset then and now: today - 399 */
    now = utc_ms("2026-11-05T12:00:00Z");
    assert_int_equal(exp_params_first_minute_day("UTC", now, 400), day_of("2026-11-05") - 399);
    assert_int_equal(exp_params_first_minute_day("UTC", now, 500), day_of("2026-11-05") - 499);
    now = utc_ms("2026-07-05T21:30:00Z"); /* 23:30 CEST; 400 days before, CEST too */
    assert_int_equal(exp_params_first_minute_day(ber, now, 400), day_of("2026-07-05") - 399);
    /* a date that starts at the cut itself is whole */
    now = utc_ms("2026-11-05T00:00:00Z");
    assert_int_equal(exp_params_first_minute_day("UTC", now, 400), day_of("2026-11-05") - 400);
    /* below the floor the aggregator keeps 400 days anyway */
    now = utc_ms("2026-11-05T12:00:00Z");
    assert_int_equal(exp_params_first_minute_day("UTC", now, 0), day_of("2026-11-05") - 399);
    assert_int_equal(exp_params_first_minute_day("UTC", now, 100), day_of("2026-11-05") - 399);

    /* the periods in the Berlin case: a range reaching the partial date is
     * clamped past it and says so; the partial date alone is empty */
    now = utc_ms("2026-11-05T22:30:00Z");
    int64_t first = exp_params_first_minute_day(ber, now, 400);
    struct exp_params p;
    struct exp_period per;
    char err[256];
    assert_int_equal(parse(EXP_EP_SESSIONS, "from=2025-10-02&to=2025-10-09", &p, err), 0);
    exp_params_period_since(&p, first, today, &per);
    assert_true(per.clamped);
    assert_false(per.empty);
    assert_int_equal(per.from, day_of("2025-10-03"));
    assert_int_equal(per.asked_from, day_of("2025-10-02"));
    assert_int_equal(per.to, day_of("2025-10-09"));
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=hour&date=2025-10-02", &p, err), 0);
    exp_params_period_since(&p, first, today, &per);
    assert_true(per.clamped && per.empty);
    assert_int_equal(parse(EXP_EP_USAGE, "granularity=hour&date=2025-10-03", &p, err), 0);
    exp_params_period_since(&p, first, today, &per);
    assert_false(per.clamped || per.empty);
    /* the day rows count whole local dates: today - R + 1 */
    assert_int_equal(exp_params_first_day(today, 1830), today - 1829);
    assert_int_equal(exp_params_first_day(today, 0), today);
}

static void test_query_hour_dst(void **state)
{
    (void)state;
    int64_t fall = day_of("2026-10-25"), spring = day_of("2026-03-29");
    /* Berlin's fall-back repeats 02:00: first at +02:00, then at +01:00 */
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 2, false, 0), 2);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 2, true, 7200), 2);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 2, true, 3600), 102);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 2, true, 0), -1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 1, true, 7200), 1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 1, true, 3600), -1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", fall, 3, true, 3600), 3);
    /* spring-forward skips 02:00 (+01:00 -> 03:00 +02:00) */
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 2, true, 3600), -1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 2, true, 7200), -1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 3, true, 7200), 3);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 2, false, 0), -1);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 3, false, 0), 3);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 1, false, 0), 1);
    assert_int_equal(exp_params_query_hour("Asia/Kolkata", spring, 2, false, 0), 2);
    assert_int_equal(exp_params_query_hour("Europe/Berlin", spring, 1, true, 3600), 1);
    assert_int_equal(exp_params_query_hour("UTC", spring, 2, true, 0), 2);
    assert_int_equal(exp_params_query_hour("UTC", spring, 2, true, 3600), -1);
}

static void test_local_labels(void **state)
{
    (void)state;
    char b[40];
    int64_t t = utc_ms("2026-10-25T00:00:00Z"); /* 02:00 CEST, the first of the two */
    assert_string_equal(exp_params_local_label(t, 7200, false, b, sizeof(b)),
                        "2026-10-25T02:00+02:00");
    t = utc_ms("2026-10-25T01:00:00Z"); /* 02:00 CET, the second */
    assert_string_equal(exp_params_local_label(t, 3600, false, b, sizeof(b)),
                        "2026-10-25T02:00+01:00");
    assert_string_equal(exp_params_local_label(t + 59 * 60000, 3600, true, b, sizeof(b)),
                        "2026-10-25T02:59:00+01:00");
    assert_string_equal(exp_params_local_label(utc_ms("2026-01-01T03:15:00Z"), -(5 * 3600 + 1800),
                                               false, b, sizeof(b)),
                        "2025-12-31T21:45-05:30");
    assert_string_equal(exp_params_local_label(0, 0, false, b, sizeof(b)),
                        "1970-01-01T00:00+00:00");
}

/* ---------------------------------------------------------------- text */

static void test_buf_json_escaping(void **state)
{
    (void)state;
    struct exp_buf b = {0};
    exp_buf_json_str(&b, "a\"b\\c\nd\re\tf\x01g\x7f h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\x7f h\xc3\xa9 \xe2\x82\xac "
                                "\xf0\x9f\x98\x80\"");
    /* bad bytes become U+FFFD: the document stays valid */
    exp_buf_reset(&b);
    exp_buf_json_str(&b, "x\xff\xc3y\xed\xa0\x80z");
    json_error_t jerr;
    json_t *j = json_loads(b.data, JSON_DECODE_ANY, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(j),
                        "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
    json_decref(j);
    exp_buf_reset(&b);
    exp_buf_num(&b, 12.5, 2);
    exp_buf_addc(&b, ' ');
    exp_buf_num(&b, 3.0, 2);
    exp_buf_addc(&b, ' ');
    exp_buf_num(&b, NAN, 2);
    exp_buf_addc(&b, ' ');
    exp_buf_int(&b, INT64_MIN);
    assert_string_equal(b.data, "12.5 3 null -9223372036854775808");
    exp_buf_reset(&b);
    exp_buf_html(&b, "<a href=\"x\">&'</a>");
    assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    /* take hands out what was written, in pieces */
    exp_buf_reset(&b);
    exp_buf_adds(&b, "0123456789");
    char out[4];
    assert_int_equal(exp_buf_take(&b, out, 4), 4);
    assert_memory_equal(out, "0123", 4);
    assert_int_equal(exp_buf_unread(&b), 6);
    assert_int_equal(exp_buf_take(&b, out, 4), 4);
    assert_int_equal(exp_buf_take(&b, out, 4), 2);
    assert_memory_equal(out, "89", 2);
    assert_int_equal(exp_buf_unread(&b), 0);
    exp_buf_free(&b);
    assert_true(exp_utf8_valid("h\xc3\xa9", 3));
    assert_false(exp_utf8_valid("\xc0\x80", 2));         /* overlong */
    assert_false(exp_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
}

static void test_csv_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"alice", "alice"},
        {"", ""},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"two\nlines", "\"two\nlines\""},
        {"cr\rlf", "\"cr\rlf\""},
        {"=1+1", "'=1+1"},
        {"+41 79", "'+41 79"},
        {"-2", "'-2"},
        {"@SUM(A1)", "'@SUM(A1)"},
        {"\tx", "\"'\tx\""},
        /* a spreadsheet splitting on ; or tab would run what follows */
        {"x;=HYPERLINK(A1;1)", "\"x;=HYPERLINK(A1;1)\""},
        {"x\t=1+1", "\"x\t=1+1\""},
        {"\rx", "\"'\rx\""},
        {"=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
        {"=a,b", "\"'=a,b\""},
        {"a=b", "a=b"},
        {"\xc3\xa9l\xc3\xa8ve", "\xc3\xa9l\xc3\xa8ve"},
    };
    struct exp_buf b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        exp_buf_reset(&b);
        exp_csv_field(&b, cases[i].in, true);
        if (strcmp(b.len ? b.data : "", cases[i].out))
            fail_msg("%zu: '%s' became '%s', not '%s'", i, cases[i].in, b.len ? b.data : "",
                     cases[i].out);
    }
    /* our own numbers are not text: a negative one keeps its sign */
    exp_buf_reset(&b);
    exp_csv_field(&b, "-5", false);
    assert_string_equal(b.data, "-5");
    assert_true(exp_csv_formula_like("=x"));
    assert_false(exp_csv_formula_like("x="));
    assert_false(exp_csv_formula_like(""));
    char d[32];
    assert_string_equal(exp_csv_duration(0, d, sizeof(d)), "0:00:00");
    assert_string_equal(exp_csv_duration(3723, d, sizeof(d)), "1:02:03");
    assert_string_equal(exp_csv_duration(90061, d, sizeof(d)), "25:01:01");
    assert_string_equal(exp_csv_duration(-5, d, sizeof(d)), "0:00:00");
    exp_buf_free(&b);
}

static Licmon__V1__SessionRecord session(const char *id, const char *user, int64_t start,
                                         Licmon__V1__EndReason why)
{
    Licmon__V1__SessionRecord s = LICMON__V1__SESSION_RECORD__INIT;
    s.session_id = (char *)id;
    s.org = "acme";
    s.user = (char *)user;
    s.license_type = "creator";
    s.requested_type = "";
    s.start_ms = start;
    s.last_activity_ms = start + 60000;
    s.end_reason = why;
    if (why != LICMON__V1__END_REASON__OPEN) {
        s.end_ms = start + 1860000;
        s.user_inactivity_s = 1860;
        s.license_inactivity_s = 1860;
        s.license_released_at_ms = start + 1860000 + 5400000;
        s.license_tail_s = 5400;
    }
    return s;
}

static void test_csv_session_rows(void **state)
{
    (void)state;
    int64_t t = utc_ms("2026-05-01T08:00:00Z");
    Licmon__V1__SessionRecord s =
        session("s-1", "=cmd|' /C calc'!A0,\"x\"\nrow", t, LICMON__V1__END_REASON__USER_INACTIVITY);
    s.requested_type = "reviewer";
    struct exp_buf b = {0};
    exp_csv_session_header(&b);
    exp_csv_session_row(&b, &s);
    Licmon__V1__SessionRecord o = session("s-2", "bob", t, LICMON__V1__END_REASON__OPEN);
    o.user_inactivity_s = o.license_inactivity_s = o.license_tail_s = 1; /* not shown */
    exp_csv_session_row(&b, &o);
    /* ended by user inactivity, its seat still held: no release, no tail yet */
    Licmon__V1__SessionRecord h = session("s-3", "ida", t, LICMON__V1__END_REASON__USER_INACTIVITY);
    h.license_released_at_ms = 0;
    h.license_tail_s = 0;
    exp_csv_session_row(&b, &h);
    assert_string_equal(
        b.data,
        "session_id,org,user,license_type,requested_type,start,last_activity,end,end_reason,"
        "user_inactivity,user_inactivity_s,license_inactivity,license_inactivity_s,"
        "license_released_at,license_tail_s\r\n"
        "s-1,acme,\"'=cmd|' /C calc'!A0,\"\"x\"\"\nrow\",creator,reviewer,"
        "2026-05-01T08:00:00.000Z,2026-05-01T08:01:00.000Z,2026-05-01T08:31:00.000Z,"
        "user_inactivity,0:31:00,1860,0:31:00,1860,2026-05-01T10:01:00.000Z,5400\r\n"
        "s-2,acme,bob,creator,,2026-05-01T08:00:00.000Z,2026-05-01T08:01:00.000Z,,open,"
        ",,,,,\r\n" /* an open session: no end, so none of the metrics */
        "s-3,acme,ida,creator,,2026-05-01T08:00:00.000Z,2026-05-01T08:01:00.000Z,"
        "2026-05-01T08:31:00.000Z,user_inactivity,0:31:00,1860,0:31:00,1860,,\r\n");
    exp_buf_free(&b);
}

/* ---------------------------------------------------------------- xlsx split */

static void test_xlsx_row_split(void **state)
{
    (void)state;
    uint32_t sheet, row;
    assert_int_equal(exp_xlsx_per_sheet(0), 1048575);
    assert_int_equal(exp_xlsx_per_sheet(EXP_XLSX_EXCEL_ROWS), 1048575);
    assert_int_equal(exp_xlsx_per_sheet(EXP_XLSX_EXCEL_ROWS + 1), 1048575);
    assert_int_equal(exp_xlsx_per_sheet(5), 4);
    exp_xlsx_place(0, 5, &sheet, &row);
    assert_int_equal(sheet, 0);
    assert_int_equal(row, 1);
    exp_xlsx_place(3, 5, &sheet, &row);
    assert_int_equal(sheet, 0);
    assert_int_equal(row, 4);
    exp_xlsx_place(4, 5, &sheet, &row);
    assert_int_equal(sheet, 1);
    assert_int_equal(row, 1);
    exp_xlsx_place(9, 5, &sheet, &row);
    assert_int_equal(sheet, 2);
    assert_int_equal(row, 2);
    assert_int_equal(exp_xlsx_sheets(0, 5), 1);
    assert_int_equal(exp_xlsx_sheets(4, 5), 1);
    assert_int_equal(exp_xlsx_sheets(5, 5), 2);
    assert_int_equal(exp_xlsx_sheets(10, 5), 3);
    /* Excel's limit: 1,048,575 sessions fit the first sheet, the next goes on */
    exp_xlsx_place(1048574, 0, &sheet, &row);
    assert_int_equal(sheet, 0);
    assert_int_equal(row, 1048575);
    exp_xlsx_place(1048575, 0, &sheet, &row);
    assert_int_equal(sheet, 1);
    assert_int_equal(row, 1);
    assert_int_equal(exp_xlsx_sheets(1048575, 0), 1);
    assert_int_equal(exp_xlsx_sheets(1048576, 0), 2);
    assert_int_equal(exp_xlsx_sheets(3000000, 0), 3);
    /* every session has exactly one place, in order */
    uint32_t ps = 0, pr = 0;
    for (uint64_t i = 0; i < 50; i++) {
        exp_xlsx_place(i, 3, &sheet, &row);
        assert_true(row >= 1 && row <= 2);
        assert_true(sheet > ps || (sheet == ps && row == pr + 1) || i == 0);
        ps = sheet;
        pr = row;
    }
    char name[32];
    exp_xlsx_sheet_name(0, name, sizeof(name));
    assert_string_equal(name, "Sessions");
    exp_xlsx_sheet_name(1, name, sizeof(name));
    assert_string_equal(name, "Sessions (2)");
    exp_xlsx_sheet_name(11, name, sizeof(name));
    assert_string_equal(name, "Sessions (12)");
}

/* ---------------------------------------------------------------- views */

static void test_view_usage_rows(void **state)
{
    (void)state;
    const struct tz *z = tz_get("Europe/Berlin");
    assert_non_null(z);
    Licmon__V1__UsageRow r = LICMON__V1__USAGE_ROW__INIT;
    r.date = "2026-10-25";
    r.start_ms = utc_ms("2026-10-25T01:00:00Z"); /* the second 02:00 */
    r.utc_offset_s = 3600;
    r.minutes = 60;
    r.peak = 7;
    r.peak_at_ms = utc_ms("2026-10-25T01:17:00Z");
    r.in_use_end = 6;
    r.users = 9;
    r.logins = 3;
    r.logouts = 2;
    r.user_timeouts = 1;
    r.license_timeouts = 4;
    r.denials = 5;
    r.denied_users = 2;
    r.downgrades = 1;
    r.downgraded_users = 1;
    struct exp_buf b = {0};
    exp_view_usage_row(&b, &r, LICMON__V1__GRANULARITY__HOUR, z);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "date")), "2026-10-25");
    assert_string_equal(json_string_value(json_object_get(j, "hour")), "2026-10-25T02:00+01:00");
    assert_string_equal(json_string_value(json_object_get(j, "peak_at")), "2026-10-25T02:17+01:00");
    static const struct {
        const char *k;
        int v;
    } want[] = {
        {"peak", 7},         {"users", 9},         {"logins", 3},           {"denials", 5},
        {"denied_users", 2}, {"downgrades", 1},    {"downgraded_users", 1}, {"in_use_end", 6},
        {"logouts", 2},      {"user_timeouts", 1}, {"license_timeouts", 4}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(json_integer_value(json_object_get(j, want[i].k)), want[i].v);
    assert_null(json_object_get(j, "minute"));
    json_decref(j);
    exp_buf_reset(&b);
    r.peak = 0;
    r.peak_at_ms = -1;
    exp_view_usage_row(&b, &r, LICMON__V1__GRANULARITY__MINUTE, z);
    j = json_loads(b.data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "minute")), "2026-10-25T02:00+01:00");
    assert_true(json_is_null(json_object_get(j, "peak_at")));
    json_decref(j);
    exp_buf_reset(&b);
    exp_view_usage_row(&b, &r, LICMON__V1__GRANULARITY__DAY, z);
    j = json_loads(b.data, 0, NULL);
    assert_null(json_object_get(j, "hour"));
    assert_null(json_object_get(j, "minute"));
    json_decref(j);
    exp_buf_free(&b);
}

static void test_view_session(void **state)
{
    (void)state;
    int64_t t = utc_ms("2026-05-01T08:00:00.250Z");
    Licmon__V1__SessionRecord s = session("s-1", "a\"b", t, LICMON__V1__END_REASON__MANUAL_LOGOUT);
    s.requested_type = "creator";
    struct exp_buf b = {0};
    exp_view_session(&b, &s);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    static const char *const keys[] = {"session_id",
                                       "org",
                                       "user",
                                       "license_type",
                                       "requested_type",
                                       "start",
                                       "last_activity",
                                       "end",
                                       "end_reason",
                                       "user_inactivity_s",
                                       "license_inactivity_s",
                                       "license_released_at",
                                       "license_tail_s"};
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(j, keys[i]));
    assert_string_equal(json_string_value(json_object_get(j, "user")), "a\"b");
    assert_string_equal(json_string_value(json_object_get(j, "start")), "2026-05-01T08:00:00.250Z");
    assert_string_equal(json_string_value(json_object_get(j, "end")), "2026-05-01T08:31:00.250Z");
    assert_string_equal(json_string_value(json_object_get(j, "end_reason")), "manual_logout");
    assert_string_equal(json_string_value(json_object_get(j, "requested_type")), "creator");
    json_decref(j);
    exp_buf_reset(&b);
    Licmon__V1__SessionRecord o = session("s-2", "bob", t, LICMON__V1__END_REASON__OPEN);
    o.user_inactivity_s = o.license_inactivity_s = o.license_tail_s = 1; /* not shown */
    exp_view_session(&b, &o);
    j = json_loads(b.data, 0, NULL);
    assert_true(json_is_null(json_object_get(j, "requested_type")));
    assert_true(json_is_null(json_object_get(j, "end")));
    assert_true(json_is_null(json_object_get(j, "license_released_at")));
    assert_string_equal(json_string_value(json_object_get(j, "end_reason")), "open");
    assert_true(json_is_null(json_object_get(j, "user_inactivity_s")));
    assert_true(json_is_null(json_object_get(j, "license_inactivity_s")));
    assert_true(json_is_null(json_object_get(j, "license_tail_s")));
    json_decref(j);
    /* ended by user inactivity while the seat lingers: released_at and the
     * tail are still 0 in the record, and neither is a value yet */
    exp_buf_reset(&b);
    Licmon__V1__SessionRecord h = session("s-3", "ida", t, LICMON__V1__END_REASON__USER_INACTIVITY);
    h.license_released_at_ms = 0;
    h.license_tail_s = 0;
    exp_view_session(&b, &h);
    j = json_loads(b.data, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "user_inactivity_s")), 1860);
    assert_true(json_is_null(json_object_get(j, "license_released_at")));
    assert_true(json_is_null(json_object_get(j, "license_tail_s")));
    assert_false(exp_view_tail_known(&h));
    h.license_released_at_ms = h.end_ms; /* released at the end: a tail of 0 */
    assert_true(exp_view_tail_known(&h));
    json_decref(j);
    exp_buf_free(&b);
    assert_string_equal(exp_view_state_words("minor"), "Minor");
    assert_string_equal(exp_view_state_words("major"), "Major");
    assert_string_equal(exp_view_state_words("non_applicable"), "Non-applicable");
}

static Licmon__V1__Stats stats_sample(void)
{
    Licmon__V1__Stats st = LICMON__V1__STATS__INIT;
    st.threshold_pct = 80;
    st.threshold_count = 40;
    st.owned = 50;
    st.days = 7;
    st.average_value = 36.4285714;
    st.average_pct = 72.857;
    st.average_state = "minor";
    st.peak_value = 50;
    st.peak_pct = 100;
    st.peak_at_ms = utc_ms("2026-03-29T07:05:00Z");
    st.peak_state = "major";
    st.days_over_threshold = 3;
    st.days_at_capacity = 1;
    st.days_over_state = "major";
    st.denied_users = 2;
    st.denials = 5;
    st.denied_state = "major";
    st.downgraded_users = 0;
    st.downgrades = 0;
    st.downgraded_state = "ok";
    st.in_use = 12;
    st.free = 38;
    st.has_expiry = true;
    st.days_left = 45;
    st.expiration_state = "minor";
    return st;
}

/* The average card shown for seat_days over `days` of `owned` seats, the
 * value and percentage as the aggregator computes them (one division each). */
static void assert_average_shown(Licmon__V1__Stats *st, int64_t owned, int days, int64_t seat_days,
                                 double value, double pct)
{
    st->owned = owned;
    st->days = days;
    st->average_value = (double)seat_days / days;
    st->average_pct = 100.0 * (double)seat_days / ((double)owned * days);
    json_t *j = exp_view_stats(st, NULL, tz_get("UTC"));
    json_t *avg = json_object_get(j, "average_daily_usage");
    assert_true(json_number_value(json_object_get(avg, "value")) == value);
    assert_true(json_number_value(json_object_get(avg, "pct")) == pct);
    json_decref(j);
}

static void test_view_stats(void **state)
{
    (void)state;
    Licmon__V1__Stats st = stats_sample();
    Licmon__V1__License lic = LICMON__V1__LICENSE__INIT;
    lic.type = "creator";
    lic.expires = "2026-05-13";
    json_t *j = exp_view_stats(&st, &lic, tz_get("Europe/Berlin"));
    assert_non_null(j);
    json_t *avg = json_object_get(j, "average_daily_usage");
    /* 36.428... seats reads 36.42: the mean is cut like its percentage */
    assert_true(fabs(json_number_value(json_object_get(avg, "value")) - 36.42) < 1e-9);
    /* 72.857...% reads 72.8: cut, never rounded up (see test_view_cut) */
    assert_true(fabs(json_number_value(json_object_get(avg, "pct")) - 72.8) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(avg, "state")), "minor");
    json_t *peak = json_object_get(j, "peak_usage");
    assert_int_equal(json_integer_value(json_object_get(peak, "value")), 50);
    assert_string_equal(json_string_value(json_object_get(peak, "at")), "2026-03-29T09:05+02:00");
    json_t *dot = json_object_get(j, "days_over_threshold");
    assert_int_equal(json_integer_value(json_object_get(dot, "value")), 3);
    assert_int_equal(json_integer_value(json_object_get(dot, "days_at_capacity")), 1);
    json_t *den = json_object_get(j, "users_denied");
    assert_int_equal(json_integer_value(json_object_get(den, "users")), 2);
    assert_int_equal(json_integer_value(json_object_get(den, "events")), 5);
    json_t *cur = json_object_get(j, "current_usage");
    assert_int_equal(json_integer_value(json_object_get(cur, "in_use")), 12);
    assert_int_equal(json_integer_value(json_object_get(cur, "owned")), 50);
    assert_int_equal(json_integer_value(json_object_get(cur, "free")), 38);
    json_t *ex = json_object_get(j, "license_expiration");
    assert_int_equal(json_integer_value(json_object_get(ex, "days_left")), 45);
    assert_string_equal(json_string_value(json_object_get(ex, "expires")), "2026-05-13");
    assert_string_equal(json_string_value(json_object_get(ex, "state")), "minor");
    assert_int_equal(json_integer_value(json_object_get(j, "threshold_pct")), 80);
    assert_int_equal(json_integer_value(json_object_get(j, "threshold_count")), 40);
    assert_int_equal(json_integer_value(json_object_get(j, "owned")), 50);
    json_decref(j);
    /* the percentage is the aggregator's, correctly rounded from whole
     * numbers, then cut: 69 seat-days of 5 seats in 30 days is exactly 46%
     * (major with P = 46), where 2.3 seats x 100 / 5 gives 45.999... */
    assert_average_shown(&st, 5, 30, 69, 2.3, 46.0);
    /* a mean just under the threshold count reads under it, as its
     * percentage does: 1,999 seat-days of 10 seats in 250 days is 7.996
     * seats, 79.96%, with a threshold of 8 seats (P = 80): 7.99 and 79.9 on
     * a minor card, where rounding showed 8.00 seats beside 79.9% */
    assert_average_shown(&st, 10, 250, 1999, 7.99, 79.9);
    /* nothing owned: no percentages; no use: no peak instant; no expiry */
    st.owned = 0;
    st.peak_value = 0;
    st.peak_at_ms = -1;
    st.has_expiry = false;
    j = exp_view_stats(&st, NULL, tz_get("UTC"));
    assert_true(json_is_null(json_object_get(json_object_get(j, "average_daily_usage"), "pct")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "peak_usage"), "pct")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "peak_usage"), "at")));
    assert_true(
        json_is_null(json_object_get(json_object_get(j, "license_expiration"), "days_left")));
    json_decref(j);
}

/* A percentage as shown meets a whole-number threshold P exactly when the
 * exact one does: 79.97 with P = 80 reads 79.9 (the card says "minor"),
 * never 80.0. Every mean of daily peaks of up to 120 seats over a day, a
 * week and a month, against every P. */
static void test_view_cut(void **state)
{
    (void)state;
    assert_true(exp_view_cut(79.97, 1) == 79.9);
    assert_true(exp_view_cut(79.9, 1) == 79.9);
    assert_true(exp_view_cut(80.0, 1) == 80.0);
    assert_true(exp_view_cut(99.99, 1) == 99.9);
    assert_true(exp_view_cut(100.0, 1) == 100.0);
    assert_true(exp_view_cut(0.04, 1) == 0.0 && !signbit(exp_view_cut(0.04, 1)));
    assert_true(exp_view_cut(72.857, 1) == 72.8);
    assert_true(exp_view_cut(49.579, 2) == 49.57);
    assert_true(exp_view_cut(-3.27, 1) == -3.2); /* toward zero */
    assert_true(isnan(exp_view_cut(NAN, 1)));
    /* N = 100, P = 80, mean 79.97: the API's 80.0 under a "minor" state */
    assert_true(exp_view_cut(exp_view_pct(79.97, 100), 1) < 80);
    static const int days[] = {1, 7, 30, 31};
    for (int64_t n = 1; n <= 120; n++)
        for (size_t k = 0; k < sizeof(days) / sizeof(days[0]); k++)
            for (int64_t sum = 0; sum <= n * days[k]; sum++) {
                /* as the aggregator computes the mean's percentage */
                double pct = 100.0 * (double)sum / ((double)n * (double)days[k]);
                double shown = exp_view_cut(pct, 1);
                assert_true(shown <= pct && pct - shown < 0.1 + 1e-9);
                char text[32];
                snprintf(text, sizeof(text), "%.1f", shown); /* as the report and xlsx print */
                assert_true(strtod(text, NULL) == shown);
                for (int p = 1; p <= 100; p++)
                    if ((shown >= p) != (sum * 100 >= (int64_t)p * n * days[k]))
                        fail_msg("n %lld, days %d, sum %lld: %s%% against P %d", (long long)n,
                                 days[k], (long long)sum, text, p);
            }
}

/* ---------------------------------------------------------------- report */

static void test_report_html(void **state)
{
    (void)state;
    Licmon__V1__Stats st = stats_sample();
    json_t *stats = exp_view_stats(&st, NULL, tz_get("UTC"));
    json_t *lic =
        json_pack("{s:[{s:s, s:s, s:i, s:s, s:i, s:s, s:i, s:i, s:i}], s:[s]}", "licenses", "type",
                  "creator", "model", "floating", "owned", 50, "expires", "2026-05-13", "days_left",
                  45, "expiration_state", "minor", "in_use", 12, "free", 38, "threshold_pct", 80,
                  "integrations", "<script>alert(1)</script>");
    Licmon__V1__UsageRow rows[7], *rp[7];
    char dates[7][16];
    for (int i = 0; i < 7; i++) {
        licmon__v1__usage_row__init(&rows[i]);
        time_format_date(day_of("2026-03-23") + i, dates[i], sizeof(dates[i]));
        rows[i].date = dates[i];
        rows[i].peak = 30 + i * 3;
        rows[i].users = 40 + i;
        rp[i] = &rows[i];
    }
    struct exp_report_in in = {.org = "acme&co",
                               .type = "creator",
                               .timezone = "Europe/Berlin",
                               .from = "2026-03-23",
                               .to = "2026-03-29",
                               .paper = EXP_PAPER_LETTER,
                               .generated_ms = utc_ms("2026-03-29T10:00:00Z"),
                               .stats = stats,
                               .licenses = lic,
                               .rows = rp,
                               .n_rows = 7};
    size_t len;
    char *html = exp_report_html(&in, &len);
    assert_int_equal(strlen(html), len);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "@page{size:letter"));
    assert_non_null(strstr(html, "<svg"));
    assert_int_equal(strstr(html, "class=\"bar\"") != NULL, 1);
    assert_non_null(strstr(html, "owned 50"));
    assert_non_null(strstr(html, "threshold 40"));
    assert_non_null(strstr(html, "acme&amp;co"));
    assert_non_null(strstr(html, "Europe/Berlin"));
    assert_non_null(strstr(html, "2026-03-23"));
    /* states in words and icons, never colour alone */
    assert_non_null(strstr(html, "Major</span>"));
    assert_non_null(strstr(html, "Minor</span>"));
    assert_non_null(strstr(html, "OK</span>"));
    /* no script at all, outside text escaped */
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "&lt;script&gt;"));
    free(html);
    /* where the threshold cards do not apply (all, a named type): no
     * threshold line either */
    json_t *st_all = json_deep_copy(stats);
    json_object_set_new(json_object_get(st_all, "days_over_threshold"), "state",
                        json_string("non_applicable"));
    in.stats = st_all;
    html = exp_report_html(&in, &len);
    assert_non_null(strstr(html, "owned 50"));
    assert_null(strstr(html, "threshold 40"));
    free(html);
    /* all types together: no capacity either, and no percentage or seats
     * on the cards that do not apply (as the dashboard) */
    for (int i = 0; i < 2; i++)
        json_object_set_new(json_object_get(st_all, i ? "peak_usage" : "average_daily_usage"),
                            "state", json_string("non_applicable"));
    in.type = "all";
    html = exp_report_html(&in, &len);
    assert_null(strstr(html, "owned 50"));
    assert_null(strstr(html, "seats owned"));
    assert_null(strstr(html, "% of"));
    assert_null(strstr(html, "at or over"));
    assert_non_null(strstr(html, "no threshold for all types together"));
    assert_non_null(strstr(html, "50 owned, 38 free")); /* the current usage, as on the page */
    free(html);
    in.type = "creator";
    json_decref(st_all);
    in.stats = stats;
    /* A4 and an empty chart */
    in.paper = EXP_PAPER_A4;
    in.n_rows = 0;
    in.asked_from = "2020-01-01";
    in.asked_to = "2020-01-31";
    in.empty = true;
    html = exp_report_html(&in, &len);
    assert_non_null(strstr(html, "@page{size:A4"));
    assert_non_null(strstr(html, "no data in this period"));
    assert_non_null(strstr(html, "Asked for 2020-01-01"));
    free(html);
    json_decref(stats);
    json_decref(lic);
}

int main(void)
{
    log_init("test_exporter_read");
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_good),
        cmocka_unit_test(test_params_bad),
        cmocka_unit_test(test_period_today_in_zone),
        cmocka_unit_test(test_period_shortcuts_and_clamp),
        cmocka_unit_test(test_period_minute_retention_cut),
        cmocka_unit_test(test_query_hour_dst),
        cmocka_unit_test(test_local_labels),
        cmocka_unit_test(test_buf_json_escaping),
        cmocka_unit_test(test_csv_escaping),
        cmocka_unit_test(test_csv_session_rows),
        cmocka_unit_test(test_xlsx_row_split),
        cmocka_unit_test(test_view_usage_rows),
        cmocka_unit_test(test_view_session),
        cmocka_unit_test(test_view_stats),
        cmocka_unit_test(test_view_cut),
        cmocka_unit_test(test_report_html),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
