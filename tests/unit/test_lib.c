/* Unit tests of lib/: time and dates, keys, the hash map, settings
 * validation and JSON, the event JSON form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture.h"
#include "damage.h"
#include "event_json.h"
#include "health.h"
#include "hmap.h"
#include "keys.h"
#include "log.h"
#include "pb.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "tmpdir.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct log_limit limit_a, limit_b;

static void warn_a_lot(void)
{
    for (int i = 0; i < 1000; i++)
        log_warn_limited(&limit_a, "peer %d sent garbage", i);
    log_warn_limited(&limit_b, "another kind");
    limit_a.next_ms = 0; /* as if a minute had passed */
    log_warn_limited(&limit_a, "peer %d sent garbage", 1000);
}

/* A limited warning: the first of a kind, then one a minute saying how many
 * were left out; each kind on its own. */
static void test_log_warn_limited(void **state)
{
    (void)state;
    char *out = stderr_of(warn_a_lot);
    assert_int_equal(lines_of(out), 3);
    assert_non_null(strstr(out, "peer 0 sent garbage\""));
    assert_non_null(strstr(out, "another kind"));
    assert_non_null(
        strstr(out, "peer 1000 sent garbage (999 more like it since the last one logged)"));
    assert_null(strstr(out, "peer 1 sent"));
    free(out);
}

static void mhd_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    health_mhd_log(NULL, fmt, ap);
    va_end(ap);
}

static void mhd_logs_a_lot(void)
{
    static const char *const bad = "Error processing request (HTTP/%s).\n";
    static const char *const other = "Failed to accept connection: %s\n";
    for (int i = 0; i < 500; i++)
        mhd_log(bad, "1.7");
    mhd_log(other, "Too many open files");
    for (int i = 0; i < 500; i++)
        mhd_log(bad, "1.7");
}

/* libmicrohttpd's messages: each kind limited on its own, so a flood of bad
 * requests does not hide a different message. */
static void test_health_mhd_log(void **state)
{
    (void)state;
    char *out = stderr_of(mhd_logs_a_lot);
    assert_int_equal(lines_of(out), 2);
    assert_non_null(strstr(out, "http: Error processing request (HTTP/1.7).\""));
    assert_non_null(strstr(out, "http: Failed to accept connection: Too many open files\""));
    free(out);
}

static void test_xrandom_hex(void **state)
{
    (void)state;
    char a[2 * 150 + 2], b[2 * 150 + 2];
    for (size_t n = 0; n <= 150; n += 1 + n / 4) {
        memset(a, '#', sizeof(a));
        xrandom_hex(a, n); /* more than its 64-byte chunk too */
        assert_int_equal(strlen(a), 2 * n);
        assert_int_equal(strspn(a, "0123456789abcdef"), 2 * n);
        assert_int_equal(a[2 * n + 1], '#');
    }
    xrandom_hex(a, 150);
    xrandom_hex(b, 150);
    assert_string_not_equal(a, b);
    /* every digit turns up in 300 (missing one: p < 1e-7): both nibbles used */
    for (const char *d = "0123456789abcdef"; *d; d++)
        assert_non_null(strchr(b, *d));
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    char buf[40];
    assert_int_equal(time_parse_rfc3339("2026-11-27T10:00:00.123Z", &ms), 0);
    assert_string_equal(time_format_rfc3339(ms, buf, sizeof(buf)), "2026-11-27T10:00:00.123Z");
    assert_int_equal(time_parse_rfc3339("2026-11-27T11:30:00+01:30", &ms), 0);
    assert_string_equal(time_format_rfc3339(ms, buf, sizeof(buf)), "2026-11-27T10:00:00.000Z");
    assert_int_equal(time_parse_rfc3339("1969-12-31T23:59:59.999Z", &ms), 0);
    assert_int_equal(ms, -1);
    assert_string_equal(time_format_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
    assert_int_equal(time_parse_rfc3339("2026-02-29T00:00:00Z", &ms), -1);
    assert_int_equal(time_parse_rfc3339("2026-11-27T10:00:00", &ms), -1);
    assert_int_equal(time_parse_rfc3339("2026-11-27T24:00:00Z", &ms), -1);
    assert_int_equal(time_parse_rfc3339("2026-11-27T10:00:00Zjunk", &ms), -1);
    assert_int_equal(time_parse_rfc3339("", &ms), -1);
}

static void test_dates(void **state)
{
    (void)state;
    int64_t d;
    char buf[16];
    assert_int_equal(time_parse_date("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(time_parse_date("2024-02-29", &d), 0);
    time_format_date(d, buf, sizeof(buf));
    assert_string_equal(buf, "2024-02-29");
    assert_int_equal(time_parse_date("2023-02-29", &d), -1);
    assert_int_equal(time_parse_date("2023-13-01", &d), -1);
    for (int64_t x = -800000; x < 800000; x += 997) {
        int64_t y;
        unsigned m, dd;
        time_civil_from_days(x, &y, &m, &dd);
        assert_int_equal(time_days_from_civil(y, m, dd), x);
        /* formatted by hand in years 0 to 9999, by snprintf outside */
        char want[32], got[32];
        snprintf(want, sizeof(want), "%04lld-%02u-%02u", (long long)y, m, dd);
        time_format_date(x, got, sizeof(got));
        assert_string_equal(got, want);
    }
    for (int64_t x = -719528 - 3; x < 2932897 + 3; x++) { /* 0000-01-01 to 9999-12-31 and beyond */
        int64_t y;
        unsigned m, dd;
        time_civil_from_days(x, &y, &m, &dd);
        char want[32], got[32];
        snprintf(want, sizeof(want), "%04lld-%02u-%02u", (long long)y, m, dd);
        time_format_date(x, got, sizeof(got));
        if (strcmp(got, want) != 0)
            fail_msg("day %lld: %s, not %s", (long long)x, got, want);
    }
}

/* ingest's clock: a step of the host's clock is taken only once it has
 * lasted; slewing passes; readings never go back but for a step taken */
static void test_steady_clock(void **state)
{
    (void)state;
    const int64_t W = 1795000000000LL, B = 5000, H8 = 8 * 3600000LL;
    struct time_steady c = {0};
    enum time_steady_news news;
    assert_int_equal(time_steady_read(&c, W, B, &news), W);
    assert_int_equal(news, TIME_STEADY_SAME);
    /* NTP slewing: the wall clock is taken as it is */
    assert_int_equal(time_steady_read(&c, W + 1000 + 300, B + 1000, &news), W + 1300);
    /* ... but never back */
    assert_int_equal(time_steady_read(&c, W + 1900, B + 1700, &news), W + 1900);
    assert_int_equal(time_steady_read(&c, W + 1500, B + 1800, &news), W + 1900);
    /* a step 8 h ahead, corrected a few seconds later: not taken */
    assert_int_equal(time_steady_read(&c, W + 2000 + H8, B + 2000, &news), W + 1900);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN);
    assert_int_equal(time_steady_read(&c, W + 7000 + H8, B + 7000, &news), W + 6700);
    assert_int_equal(news, TIME_STEADY_SAME);
    assert_int_equal(time_steady_read(&c, W + 9000, B + 9000, &news), W + 9000);
    assert_int_equal(news, TIME_STEADY_STEP_GONE);
    /* a step back: the clock runs on; once it has lasted, it is taken */
    int64_t b = B + 10000, w = W + 10000 - 86400000LL;
    assert_int_equal(time_steady_read(&c, w, b, &news), W + 10000);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN);
    int64_t lasted = TIME_STEADY_STEP_MS - 1;
    assert_int_equal(time_steady_read(&c, w + lasted, b + lasted, &news), W + 10000 + lasted);
    assert_int_equal(time_steady_read(&c, w + lasted + 1, b + lasted + 1, &news), w + lasted + 1);
    assert_int_equal(news, TIME_STEADY_STEP_TAKEN);
    assert_int_equal(time_steady_read(&c, w + lasted + 101, b + lasted + 101, &news),
                     w + lasted + 101);
    assert_int_equal(news, TIME_STEADY_SAME);
    /* a suspended machine: the boot clock counts the time asleep */
    w += lasted + 3600101;
    b += lasted + 3600101;
    assert_int_equal(time_steady_read(&c, w, b, &news), w);
    assert_int_equal(news, TIME_STEADY_SAME);
    /* a step, then one the other way 9 minutes on: the second must last in
     * turn; one that grows (a clock that keeps losing time, stepped again
     * and again) keeps the time of the first */
    assert_int_equal(time_steady_read(&c, w + H8, b, &news), w);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN);
    int64_t m9 = 9 * 60000LL;
    assert_int_equal(time_steady_read(&c, w + m9 - 86400000LL, b + m9, &news), w + m9);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN);
    assert_int_equal(time_steady_read(&c, w + 2 * m9 - 86400000LL, b + 2 * m9, &news), w + 2 * m9);
    assert_int_equal(news, TIME_STEADY_SAME);
    assert_int_equal(time_steady_read(&c, w + 2 * m9 - 86400000LL + 1000000, b + 2 * m9, &news),
                     w + 2 * m9);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN); /* back towards agreement */
    w += 2 * m9;
    b += 2 * m9;
    time_steady_read(&c, w, b, &news); /* agreement */
    assert_int_equal(news, TIME_STEADY_STEP_GONE);
    for (int i = 1; i <= 11; i++) { /* 5 s lost a minute, stepped back each minute */
        time_steady_read(&c, w + i * 60000LL + i * 5000LL, b + i * 60000LL, &news);
        assert_int_equal(news, i == 1    ? TIME_STEADY_STEP_SEEN
                               : i == 11 ? TIME_STEADY_STEP_TAKEN
                                         : TIME_STEADY_SAME);
    }

    /* saved, and resumed by a restart on the same boot: a step made while
     * the program was down is seen as one, a step pending stays pending; on
     * another boot, or from a record that cannot be right, nothing */
    const char *boot = "7f1c3e0a-1b2c-4d5e-8f90-0123456789ab";
    uint8_t saved[TIME_STEADY_SAVED_LEN];
    struct time_steady d = {0};
    time_steady_read(&d, W, B, &news);
    time_steady_save(&d, boot, saved);
    struct time_steady e = {0};
    assert_int_equal(time_steady_resume(&e, "another-boot", saved, sizeof(saved), B), -1);
    assert_int_equal(time_steady_resume(&e, "", saved, sizeof(saved), B), -1);
    assert_int_equal(time_steady_resume(&e, boot, saved, sizeof(saved) - 1, B), -1);
    assert_int_equal(time_steady_resume(&e, boot, saved, sizeof(saved), B - 1), -1);
    saved[0] = 2; /* another version */
    assert_int_equal(time_steady_resume(&e, boot, saved, sizeof(saved), B), -1);
    saved[0] = 1;
    assert_int_equal(e.started, 0);
    assert_int_equal(time_steady_resume(&e, boot, saved, sizeof(saved), B + 60000), 0);
    assert_int_equal(time_steady_read(&e, W + 60000 + H8, B + 60000, &news), W + 60000);
    assert_int_equal(news, TIME_STEADY_STEP_SEEN);
    time_steady_save(&e, boot, saved);
    struct time_steady f = {0};
    assert_int_equal(time_steady_resume(&f, boot, saved, sizeof(saved), B + 9 * 60000), 0);
    int64_t at = B + 60000 + TIME_STEADY_STEP_MS;
    assert_int_equal(time_steady_read(&f, W + (at - B) + H8, at, &news), W + (at - B) + H8);
    assert_int_equal(news, TIME_STEADY_STEP_TAKEN);
    /* a last reading ahead of what the saved clocks allow: not trusted */
    struct time_steady g = {.wall0 = W, .boot0 = B, .last = W + H8, .started = 1};
    time_steady_save(&g, boot, saved);
    assert_int_equal(time_steady_resume(&e, boot, saved, sizeof(saved), B + 1000), -1);
}

static void test_time_zones(void **state)
{
    (void)state;
    long off;
    int64_t ms;
    assert_true(tz_valid("Europe/Berlin"));
    assert_true(tz_valid("UTC"));
    assert_false(tz_valid("Mars/Olympus"));
    assert_false(tz_valid("../etc/passwd"));
    assert_false(tz_valid("/etc/passwd"));
    time_parse_rfc3339("2026-07-01T12:00:00Z", &ms);
    assert_int_equal(tz_offset_at("Europe/Berlin", ms, &off), 0);
    assert_int_equal(off, 7200);
    time_parse_rfc3339("2026-01-01T12:00:00Z", &ms);
    tz_offset_at("Europe/Berlin", ms, &off);
    assert_int_equal(off, 3600);
    tz_offset_at("Asia/Kolkata", ms, &off);
    assert_int_equal(off, 19800);
    /* the spring-forward instant, to the millisecond */
    time_parse_rfc3339("2026-03-29T01:00:00Z", &ms);
    assert_int_equal(tz_offset_s(tz_get("Europe/Berlin"), ms), 7200);
    assert_int_equal(tz_offset_s(tz_get("Europe/Berlin"), ms - 1), 3600);
    time_parse_rfc3339("2026-11-01T06:00:00Z", &ms);
    assert_int_equal(tz_offset_s(tz_get("America/New_York"), ms), -18000);
    assert_int_equal(tz_offset_s(tz_get("America/New_York"), ms - 1), -14400);
    assert_ptr_equal(tz_get("Asia/Kolkata"), tz_get("Asia/Kolkata")); /* cached */
    assert_null(tz_get("Europe"));                                    /* a folder */
    /* 23:30 UTC on Dec 31 is already Jan 1 in Berlin */
    time_parse_rfc3339("2025-12-31T23:30:00Z", &ms);
    char buf[16];
    time_format_date(tz_local_day("Europe/Berlin", ms), buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-01");
    time_format_date(tz_local_day("UTC", ms), buf, sizeof(buf));
    assert_string_equal(buf, "2025-12-31");
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t a[8], b[8];
    keys_put_i64(a, -5);
    keys_put_i64(b, 3);
    assert_true(memcmp(a, b, 8) < 0);
    assert_int_equal(keys_get_i64(a), -5);
    keys_put_u64(a, 0x0102030405060708ULL);
    assert_int_equal(a[0], 1);
    assert_int_equal(keys_get_u64(a), 0x0102030405060708ULL);
    uint8_t k[16];
    const char *parts[] = {"acme", "e1"};
    assert_int_equal(keys_make(k, sizeof(k), 'D', parts, 2), 8);
    assert_memory_equal(k, "Dacme\0e1", 8);
    const char *big[] = {"0123456789abcdef"};
    assert_int_equal(keys_make(k, sizeof(k), 'D', big, 1), 0);
}

static void test_hmap(void **state)
{
    (void)state;
    struct hmap *m = hmap_new();
    char key[32];
    for (intptr_t i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%ld", (long)i);
        assert_null(hmap_puts(m, key, (void *)(i + 1)));
    }
    assert_int_equal(hmap_count(m), 20000);
    for (intptr_t i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof(key), "k%ld", (long)i);
        assert_int_equal((intptr_t)hmap_dels(m, key), i + 1);
    }
    for (intptr_t i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%ld", (long)i);
        void *v = hmap_gets(m, key);
        if (i % 2)
            assert_int_equal((intptr_t)v, i + 1);
        else
            assert_null(v);
    }
    size_t pos = 0, n = 0, kl;
    const void *k;
    void *v;
    while (hmap_next(m, &pos, &k, &kl, &v))
        n++;
    assert_int_equal(n, 10000);
    hmap_free(&m, NULL);
    assert_null(m);
}

static Licmon__V1__OrgSettings *merge_text(const Licmon__V1__OrgSettings *base, const char *text,
                                           char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    assert_non_null(o);
    Licmon__V1__OrgSettings *s = settings_merge_json(base, o, err, errlen);
    json_decref(o);
    return s;
}

static void test_settings(void **state)
{
    (void)state;
    char err[200];
    Licmon__V1__OrgSettings *d = settings_default("acme");
    assert_int_equal(d->user_inactivity_timeout_s, 7200);
    Licmon__V1__OrgSettings *s = merge_text(
        d,
        "{\"timezone\":\"Europe/Berlin\",\"user_inactivity_timeout_s\":1800,"
        "\"licenses\":[{\"type\":\"creator\",\"model\":\"floating\",\"owned\":50,"
        "\"expires\":\"2027-06-30\",\"threshold_pct\":90},{\"type\":\"reviewer\",\"owned\":4}],"
        "\"notify_emails\":[\"it@acme.example\"],\"integrations\":[\"Jira\"],"
        "\"webhooks\":[{\"url\":\"https://hooks.example/x\",\"secret\":\"s3\"}]}",
        err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s->timezone, "Europe/Berlin");
    assert_int_equal(s->user_inactivity_timeout_s, 1800);
    assert_int_equal(s->license_inactivity_timeout_s, 7200);
    assert_int_equal(settings_license(s, "reviewer")->threshold_pct, 80);
    assert_int_equal(settings_license(s, "creator")->owned, 50);
    /* the masked secret sent back keeps the stored one */
    Licmon__V1__OrgSettings *s2 = merge_text(
        s, "{\"webhooks\":[{\"url\":\"https://hooks.example/x\",\"secret\":\"********\"}]}", err,
        sizeof(err));
    assert_non_null(s2);
    assert_string_equal(s2->webhooks[0]->secret, "s3");
    json_t *j = settings_to_json(s2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "webhooks"), 0), "secret")),
                        "********");
    /* everything GET shows goes back in as it is (a saved copy put back) */
    Licmon__V1__OrgSettings *s3 = settings_merge_json(s2, j, err, sizeof(err));
    assert_non_null(s3);
    assert_string_equal(s3->webhooks[0]->secret, "s3");
    settings_free(&s3);
    /* ... but not on a stack that has no secret for that url: the mask is
     * never stored as the secret */
    Licmon__V1__OrgSettings *blank = settings_default("acme");
    s3 = settings_merge_json(blank, j, err, sizeof(err));
    assert_null(s3);
    assert_string_equal(err, "webhooks[0].secret: ******** keeps the secret stored for this url, "
                             "and there is none: give the secret");
    settings_free(&blank);
    json_decref(j);

    static const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"timezone\":\"Mars/Base\"}", "timezone:"},
        /* zone files that are no zone names (browsers refuse them) */
        {"{\"timezone\":\"posix/Europe/Berlin\"}", "timezone:"},
        {"{\"timezone\":\"right/UTC\"}", "timezone:"},
        {"{\"timezone\":\"localtime\"}", "timezone:"},
        {"{\"timezone\":\"posixrules\"}", "timezone:"},
        {"{\"timezone\":\"Factory\"}", "timezone:"},
        {"{\"user_inactivity_timeout_s\":59}", "user_inactivity_timeout_s:"},
        {"{\"license_inactivity_timeout_s\":604801}", "license_inactivity_timeout_s:"},
        {"{\"licenses\":[{\"type\":\"Creator\"}]}", "licenses[0].type:"},
        {"{\"licenses\":[{\"type\":\"a\",\"owned\":-1}]}", "licenses[0].owned:"},
        {"{\"licenses\":[{\"type\":\"a\"}]}", "licenses[0].owned: missing"},
        {"{\"licenses\":[{\"type\":\"a\",\"owend\":5}]}", "licenses[0].owend: unknown"},
        {"{\"licenses\":[{\"type\":\"a\",\"owned\":1,\"threshold_pct\":101}]}",
         "licenses[0].threshold_pct:"},
        {"{\"licenses\":[{\"type\":\"a\",\"owned\":1,\"threshold_pct\":0}]}",
         "licenses[0].threshold_pct:"},
        {"{\"licenses\":[{\"type\":\"a\",\"owned\":1},{\"type\":\"a\",\"owned\":2}]}",
         "licenses[1].type:"},
        {"{\"licenses\":[{\"type\":\"a\",\"owned\":1,\"expires\":\"2027-02-30\"}]}",
         "licenses[0].expires:"},
        {"{\"webhooks\":[{\"url\":\"https://x.example/h\",\"secert\":\"abc\"}]}",
         "webhooks[0].secert: unknown"},
        {"{\"notify_emails\":[\"not-an-address\"]}", "notify_emails[0]:"},
        {"{\"notify_emails\":[\"a@x.example\",\"b@x.example\",\"A@X.example\"]}",
         "notify_emails[2]: repeats notify_emails[0] ('A@X.example')"},
        {"{\"integrations\":[\"slack\",\"Slack\"]}", "integrations[1]: repeats integrations[0]"},
        {"{\"webhooks\":[{\"url\":\"https://h.example/x\"},{\"url\":\"https://h.example/x\"}]}",
         "webhooks[1].url: repeats an earlier webhook's"},
        {"{\"webhooks\":[{\"url\":\"ftp://x\"}]}", "webhooks[0].url: not http(s)://host"},
        {"{\"webhooks\":[{\"secret\":\"s\"}]}", "webhooks[0].url: missing"},
        {"{\"webhooks\":[7]}", "webhooks[0]: not an object"},
        {"{\"webhooks\":[{\"url\":\"https://h.example/x\"},{\"url\":\"https://h.example/"
         "y\",\"secret\":12345}]}",
         "webhooks[1].secret: not a string"},
        {"{\"webhooks\":[{\"url\":\"https://h.example/x\",\"secret\":true}]}",
         "webhooks[0].secret: not a string"},
        {"{\"webhooks\":[{\"url\":\"https://h.example/x\",\"secret\":\"a\\nb\"}]}",
         "webhooks[0].secret: not printable"},
        {"{\"webhooks\":[{\"url\":\"http://\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"https:///path\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://h.example:99999/x\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://h.example:/x\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://h.example:8o/x\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://[::1/x\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://[]/\"}]}", "webhooks[0].url:"},
        {"{\"webhooks\":[{\"url\":\"http://a@b@c/\"}]}", "webhooks[0].url: holds a user name"},
        /* credentials in the url would be shown to every token and logged */
        {"{\"webhooks\":[{\"url\":\"https://user:pw@h.example:1/x\"}]}",
         "webhooks[0].url: holds a user name or password"},
        {"{\"webhooks\":[{\"url\":\"https://hook@h.example/x\"}]}", "webhooks[0].url: holds"},
        {"{\"webhooks\":[{\"url\":\"http://[::1]x:80/\"}]}", "webhooks[0].url:"},
        {"{\"org\":\"other\"}", "org:"},
        {"{\"no_such_setting\":1}", "no_such_setting:"},
        {"{\"notify_enabled\":\"yes\"}", "notify_enabled:"},
    };
    /* a secret of null is no secret */
    Licmon__V1__OrgSettings *nul = merge_text(
        s, "{\"webhooks\":[{\"url\":\"https://h.example/x\",\"secret\":null}]}", err, sizeof(err));
    assert_non_null(nul);
    assert_string_equal(nul->webhooks[0]->secret, "");
    settings_free(&nul);
    static const char *const good_urls[] = {
        "http://127.0.0.1:8080/hook", "https://hooks.example", "https://[::1]:443/x?y#z",
        "https://h.example:1/x?to=a@b.example", "http://h.example:65535"};
    for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
        char text[200];
        snprintf(text, sizeof(text), "{\"webhooks\":[{\"url\":\"%s\"}]}", good_urls[i]);
        Licmon__V1__OrgSettings *x = merge_text(s, text, err, sizeof(err));
        if (!x)
            fail_msg("%s refused: %s", good_urls[i], err);
        settings_free(&x);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        Licmon__V1__OrgSettings *x = merge_text(s, bad[i].json, err, sizeof(err));
        if (x || strncmp(err, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("%s: expected an error naming %s, got '%s'", bad[i].json, bad[i].field, err);
    }
    /* a rejected change leaves the base untouched */
    assert_string_equal(s->timezone, "Europe/Berlin");
    settings_free(&s2);
    settings_free(&s);
    settings_free(&d);
}

static void test_event_json(void **state)
{
    (void)state;
    Licmon__V1__Event ev;
    char err[160];
    const char *line = "{\"event_id\":\"a1\",\"org\":\"acme\",\"user\":\"alice@acme.example\","
                       "\"ts\":\"2026-11-27T10:00:00.123+01:00\",\"kind\":\"login\","
                       "\"license_type\":\"reviewer\",\"requested_type\":\"creator\",\"x\":1}";
    assert_int_equal(event_json_parse(line, strlen(line), &ev, err, sizeof(err)), 0);
    assert_string_equal(ev.user, "alice@acme.example");
    assert_int_equal(ev.kind, LICMON__V1__EVENT_KIND__LOGIN);
    assert_int_equal(ev.ts_ms, 1795770000123LL);
    char *back = event_json_format(&ev);
    assert_non_null(strstr(back, "\"ts\":1795770000123"));
    free(back);
    event_json_clear(&ev);

    static const struct {
        const char *json, *reason;
    } bad[] = {
        {"{\"kind\":\"nap\"}", "kind:"},   {"{\"ts\":true}", "ts:"},
        {"{\"ts\":\"yesterday\"}", "ts:"}, {"{\"user\":42}", "user:"},
        {"[1,2]", "an event must be"},     {"5", "an event must be"},
        {"\"login\"", "an event must be"}, {"null", "an event must be"},
        {"{\"org\":", "not JSON"},         {"{\"org\":\"a\",\"org\":\"b\"}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        int rc = event_json_parse(bad[i].json, strlen(bad[i].json), &ev, err, sizeof(err));
        if (rc == 0 || strncmp(err, bad[i].reason, strlen(bad[i].reason)) != 0)
            fail_msg("%s: expected '%s...', got '%s'", bad[i].json, bad[i].reason, err);
    }
}

/* A chunk built in place unpacks as the Chunk of the same items packed one
 * by one, including items whose length needs a multi-byte varint, and a
 * cleared chunk starts again from nothing. */
static void test_pb_chunk(void **state)
{
    (void)state;
    struct pb_chunk c = {0};
    char user[400];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
            memset(user, 'a' + i % 26, (size_t)i);
            user[i] = '\0';
            ev.user = user;
            ev.org = "acme";
            ev.ts_ms = i * 1000LL;
            pb_chunk_add(&c, &ev.base);
        }
        assert_int_equal(c.n, 300);
        Licmon__V1__Chunk *ch = licmon__v1__chunk__unpack(NULL, c.len, c.buf);
        assert_non_null(ch);
        assert_int_equal(ch->n_items, 300);
        for (size_t i = 0; i < ch->n_items; i++) {
            Licmon__V1__Event *ev =
                licmon__v1__event__unpack(NULL, ch->items[i].len, ch->items[i].data);
            assert_non_null(ev);
            assert_int_equal(strlen(ev->user), i);
            assert_int_equal(ev->ts_ms, (int64_t)i * 1000);
            PB_FREE(event, ev);
        }
        PB_FREE(chunk, ch);
        pb_chunk_clear(&c);
        assert_int_equal(c.len, 0);
    }
    pb_chunk_free(&c);
}

/* A string field holding a NUL byte is named, in the message or in its
 * submessages; none otherwise, whatever else holds zero bytes. */
static void test_pb_string_with_nul(void **state)
{
    (void)state;
    Licmon__V1__Event ev = LICMON__V1__EVENT__INIT, *evs[] = {&ev};
    ev.user = "alice";
    ev.org = "acme";
    ev.event_id = "e1";
    ev.ts_ms = 1LL << 40; /* bytes of zero bits, none a zero byte */
    Licmon__V1__EventBatch b = LICMON__V1__EVENT_BATCH__INIT;
    b.batch_id = 0;
    b.events = evs;
    b.n_events = 1;
    size_t len;
    uint8_t *buf = pb_pack(&b.base, &len);
    assert_null(pb_string_with_nul(&licmon__v1__event_batch__descriptor, buf, len));
    uint8_t *u = memmem(buf, len, "alice", 5);
    assert_non_null(u);
    u[2] = 0;
    assert_string_equal(pb_string_with_nul(&licmon__v1__event_batch__descriptor, buf, len), "user");
    /* a singular field given twice: protobuf-c keeps the last, and so is it
     * judged ("e\0" then "e1": kept "e1"; the other way round: kept "e\0") */
    const uint8_t twice[] = {0x0a, 2, 'e', 0, 0x0a, 2, 'e', '1'};
    assert_null(pb_string_with_nul(&licmon__v1__event__descriptor, twice, sizeof(twice)));
    const uint8_t twice_nul[] = {0x0a, 2, 'e', '1', 0x0a, 2, 'e', 0};
    assert_string_equal(
        pb_string_with_nul(&licmon__v1__event__descriptor, twice_nul, sizeof(twice_nul)),
        "event_id");
    /* the wire walk: every field once, then the end */
    const uint8_t *p = buf;
    struct pb_wire f;
    assert_int_equal(pb_wire_next(&p, buf + len, &f), 0);
    assert_true(f.num == 2 && f.type == 2 && f.data == buf + 2 && f.len == len - 2);
    assert_int_equal(pb_wire_next(&p, buf + len, &f), -1);
    free(buf);
}

/* The batch id of a frame read without unpacking it: wherever the field
 * sits, the last occurrence, through fields of every wire type; a damaged
 * frame gives what was read before the damage, or nothing. */
static void test_pb_peek_varint(void **state)
{
    (void)state;
    Licmon__V1__Event ev = LICMON__V1__EVENT__INIT, *evs[] = {&ev, &ev};
    ev.user = "alice";
    ev.org = "acme";
    ev.ts_ms = 1792800000000LL;
    Licmon__V1__EventBatch b = LICMON__V1__EVENT_BATCH__INIT;
    b.batch_id = 0x1234567890abcdefULL;
    b.events = evs;
    b.n_events = 2;
    size_t len;
    uint8_t *buf = pb_pack(&b.base, &len);
    uint64_t id = 0;
    assert_int_equal(pb_peek_varint(buf, len, 1, &id), 0);
    assert_true(id == b.batch_id);
    assert_int_equal(pb_peek_varint(buf, len, 3, &id), -1);
    /* the id after the events, then again (the last one counts), with a
     * 64-bit and a 32-bit field of an unknown number in between */
    uint8_t m[600];
    size_t n = 0;
    memcpy(m + n, buf + 10, len - 10); /* the events: after key 0x08 and a 9-byte varint */
    n += len - 10;
    const uint8_t tail[] = {0x08, 0x05, 0x19, 1, 2, 3, 4,    5,    6,   7,
                            8,    0x25, 1,    2, 3, 4, 0x08, 0x96, 0x01};
    memcpy(m + n, tail, sizeof(tail));
    n += sizeof(tail);
    Licmon__V1__EventBatch *u = licmon__v1__event_batch__unpack(NULL, n, m);
    assert_non_null(u);
    assert_int_equal(pb_peek_varint(m, n, 1, &id), 0);
    assert_true(id == u->batch_id && id == 150);
    PB_FREE(event_batch, u);
    /* cut inside the last id: the one before it */
    assert_int_equal(pb_peek_varint(m, n - 1, 1, &id), 0);
    assert_int_equal(id, 5);
    /* damaged: a length past the end, a group wire type, nothing */
    const uint8_t past[] = {0x08, 7, 0x12, 0x7f, 1, 2};
    assert_int_equal(pb_peek_varint(past, sizeof(past), 1, &id), 0);
    assert_int_equal(id, 7);
    const uint8_t group[] = {0x0b, 0x08, 9};
    assert_int_equal(pb_peek_varint(group, sizeof(group), 1, &id), -1);
    assert_int_equal(pb_peek_varint(buf, 0, 1, &id), -1);
    free(buf);
}

/* ---- a read error ends a RocksDB scan as the last key does ---- */

#define DAMAGE_KEYS 20000

static int count_pair(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(long *)arg;
    return 0;
}

static struct store *damaged_store;
static long damaged_loaded, damaged_rc;
static void load_damaged(void)
{
    damaged_rc = store_load_namespaces(damaged_store, "S", count_pair, &damaged_loaded);
}

/* A flipped block in the middle of a table file (bit rot, a torn write of a
 * copied database): RocksDB's checksum refuses it and ends the scan there.
 * A restore must fail, not load the keys before it as if that were all. */
static void test_scan_cut_by_damage(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct store *s = store_open(dir);
    assert_non_null(s);
    char val[200];
    uint32_t x = 2463534242u;
    struct store_batch *b = store_batch_new();
    for (int i = 0; i < DAMAGE_KEYS; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "S%08d", i);
        incompressible(val, sizeof(val), &x);
        store_batch_put(b, k, (size_t)kl, val, sizeof(val));
    }
    assert_int_equal(store_write(s, b, true), 0);
    store_batch_free(&b);
    store_compact(s); /* into table files */
    store_close(&s);
    damage_largest_table(dir, 1000000);

    damaged_store = store_open(dir);
    assert_non_null(damaged_store);
    char *log = stderr_of(load_damaged);
    assert_int_equal(damaged_rc, -1);
    assert_true(damaged_loaded > 0 && damaged_loaded < DAMAGE_KEYS);
    assert_non_null(strstr(log, dir)); /* names the database */
    assert_non_null(strstr(log, "Corruption"));
    free(log);
    /* a scan over the keys before the damage is whole */
    struct store_iter *it = store_iter_range(damaged_store, "S00000000", 9, "S00000100", 9);
    long n = 0;
    for (; store_iter_valid(it); store_iter_next(it))
        n++;
    assert_int_equal(n, 100);
    assert_int_equal(store_iter_status(it), 0);
    store_iter_free(&it);
    store_close(&damaged_store);
    tmpdir_free(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_steady_clock),
        cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_hmap),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_pb_chunk),
        cmocka_unit_test(test_pb_peek_varint),
        cmocka_unit_test(test_pb_string_with_nul),
        cmocka_unit_test(test_log_warn_limited),
        cmocka_unit_test(test_xrandom_hex),
        cmocka_unit_test(test_health_mhd_log),
        cmocka_unit_test(test_scan_cut_by_damage),
    };
    return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
