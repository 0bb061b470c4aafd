/* Unit tests of the alerter's message texts: the RFC 5322 email (headers,
 * CRLF, body facts), the webhook JSON body, and the Standard Webhooks
 * signature checked against vectors computed independently (the published
 * Standard Webhooks example and Python's hmac module). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../alerter/alert_message.h"
#include "settings.h"
#include "xmem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static Licmon__V1__OrgSettings *berlin(void)
{
    Licmon__V1__OrgSettings *s = settings_default("acme");
    free(s->timezone);
    s->timezone = xstrdup("Europe/Berlin");
    return s;
}

static struct alert_event threshold_event(const Licmon__V1__OrgSettings *s)
{
    struct alert_event ev = {.kind = ALERT_THRESHOLD,
                             .org = "acme",
                             .license_type = "creator",
                             .settings = s,
                             .at_ms = 1764262805000, /* 2025-11-27T17:00:05Z */
                             .in_use = 8,
                             .owned = 10,
                             .threshold_count = 8,
                             .clear_level = 7,
                             .threshold_pct = 80};
    return ev;
}

/* The value of header name in an RFC 5322 message, or NULL; caller frees. */
static char *header(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = msg; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            return xstrndup(v, (size_t)(strstr(v, "\r\n") - v));
        }
    }
    return NULL;
}

static void test_dates(void **state)
{
    (void)state;
    char buf[ALERT_MSG_DATE_MAX];
    alert_msg_date(1764262805000, 3600, buf, sizeof(buf));
    assert_string_equal(buf, "Thu, 27 Nov 2025 18:00:05 +0100");
    alert_msg_date(1764262805000, -5 * 3600, buf, sizeof(buf));
    assert_string_equal(buf, "Thu, 27 Nov 2025 12:00:05 -0500");
    alert_msg_date(0, 0, buf, sizeof(buf));
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
    alert_msg_date(951782400000, 19800, buf, sizeof(buf)); /* 2000-02-29, +05:30 */
    assert_string_equal(buf, "Tue, 29 Feb 2000 05:30:00 +0530");
    char local[128];
    alert_msg_local_time(1764262805000, "Europe/Berlin", local, sizeof(local));
    assert_string_equal(local, "2025-11-27 18:00:05 +01:00 (Europe/Berlin)");
    alert_msg_local_time(1782820800000, "America/New_York", local, sizeof(local));
    assert_string_equal(local, "2026-06-30 08:00:00 -04:00 (America/New_York)");
    alert_msg_local_time(1764262805000, "No/Such_Zone", local, sizeof(local));
    assert_string_equal(local, "2025-11-27 17:00:05 +00:00 (UTC)");
}

static void test_addresses(void **state)
{
    (void)state;
    char *a = alert_msg_address("Licmon Alerts <alerts@acme.example>");
    assert_string_equal(a, "alerts@acme.example");
    free(a);
    a = alert_msg_address("alerts@acme.example");
    assert_string_equal(a, "alerts@acme.example");
    free(a);
    a = alert_msg_from_header("alerts@acme.example");
    assert_string_equal(a, "licmon <alerts@acme.example>");
    free(a);
    a = alert_msg_dashboard_url("https://licmon.example/", "acme", "creator");
    assert_string_equal(a, "https://licmon.example/?org=acme&type=creator");
    free(a);
    assert_null(alert_msg_dashboard_url("", "acme", "creator"));
    /* --smtp-from as the headers can carry it */
    static const char *const good[] = {"licmon@localhost", "Licmon Alerts <alerts@acme.example>",
                                       "<a@b>", "\"Acme, Inc\" <a@acme.example>"};
    static const char *const bad[] = {"",
                                      "licmon",
                                      "Alerts <alerts@acme.example>\r\nBcc: x@evil.example",
                                      "Al\xc3\xa9rts <a@b>",
                                      "Alerts <a@b> x",
                                      "Alerts a@b>",
                                      "Alerts <a@b",
                                      "<@b>",
                                      "<a@>",
                                      "a @b",
                                      "Acme, Inc <a@acme.example>",
                                      "Team: <a@b>",
                                      "\"Acme <a@b>",
                                      "\"Ac\"me\" <a@b>",
                                      "a,b@acme.example",
                                      "<a@b@c>"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!alert_msg_from_valid(good[i]))
            fail_msg("refused: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (alert_msg_from_valid(bad[i]))
            fail_msg("taken: %s", bad[i]);
}

static void test_threshold_email(void **state)
{
    (void)state;
    Licmon__V1__OrgSettings *s = berlin();
    struct alert_event ev = threshold_event(s);
    struct alert_msg_head h = {.from = "licmon@acme.example",
                               .to = "it@acme.example",
                               .message_id = "licmon-0123456789ab-7@acme.example",
                               .date_ms = 1764262806000,
                               .public_url = "https://licmon.example"};
    char *msg = alert_msg_email(&ev, &h);
    /* every line ends with CRLF, and there is no bare LF */
    for (const char *p = msg; *p; p++)
        if (*p == '\n')
            assert_true(p > msg && p[-1] == '\r');
    assert_non_null(strstr(msg, "\r\n\r\n"));
    char *v;
    assert_non_null(v = header(msg, "Date"));
    assert_string_equal(v, "Thu, 27 Nov 2025 18:00:06 +0100");
    free(v);
    assert_non_null(v = header(msg, "From"));
    assert_string_equal(v, "licmon <licmon@acme.example>");
    free(v);
    assert_non_null(v = header(msg, "To"));
    assert_string_equal(v, "<it@acme.example>");
    free(v);
    assert_non_null(v = header(msg, "Message-ID"));
    assert_string_equal(v, "<licmon-0123456789ab-7@acme.example>");
    free(v);
    assert_non_null(v = header(msg, "Subject"));
    assert_non_null(strstr(v, "acme"));
    assert_non_null(strstr(v, "creator"));
    assert_non_null(strstr(v, "8 of 10"));
    free(v);
    assert_non_null(v = header(msg, "MIME-Version"));
    free(v);
    assert_non_null(v = header(msg, "Content-Type"));
    assert_string_equal(v, "text/plain; charset=UTF-8");
    free(v);
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    assert_non_null(strstr(body, "organization acme"));
    assert_non_null(strstr(body, "License type:   creator"));
    assert_non_null(strstr(body, "Seats in use:   8 of 10 owned"));
    assert_non_null(strstr(body, "Threshold:      80% = 8 seats"));
    assert_non_null(strstr(body, "2025-11-27 18:00:05 +01:00 (Europe/Berlin)"));
    assert_non_null(strstr(body, "below 7 seats"));
    assert_non_null(strstr(body, "https://licmon.example/?org=acme&type=creator"));
    /* the same inputs render the same bytes */
    char *again = alert_msg_email(&ev, &h);
    assert_string_equal(msg, again);
    free(again);
    free(msg);
    settings_free(&s);
}

static void test_expiry_texts(void **state)
{
    (void)state;
    Licmon__V1__OrgSettings *s = berlin();
    struct alert_event ev = {.kind = ALERT_EXPIRY,
                             .org = "acme",
                             .license_type = "creator",
                             .settings = s,
                             .at_ms = 1764262805000,
                             .owned = 50,
                             .expires = "2026-06-30",
                             .days_left = 30,
                             .stage_days = 30};
    char *subj = alert_msg_subject(&ev);
    assert_string_equal(subj, "[licmon] acme: creator license expires in 30 days (2026-06-30)");
    free(subj);
    ev.days_left = 1;
    subj = alert_msg_subject(&ev);
    assert_string_equal(subj, "[licmon] acme: creator license expires tomorrow (2026-06-30)");
    free(subj);
    ev.days_left = 0;
    subj = alert_msg_subject(&ev);
    assert_string_equal(subj, "[licmon] acme: creator license expires today (2026-06-30)");
    free(subj);
    ev.days_left = -2;
    subj = alert_msg_subject(&ev);
    assert_string_equal(subj, "[licmon] acme: creator license expired on 2026-06-30");
    free(subj);
    ev.days_left = 7;
    char *body = alert_msg_body(&ev, "");
    assert_non_null(strstr(body, "expires in 7 days, on 2026-06-30"));
    assert_null(strstr(body, "Dashboard:"));
    free(body);
    settings_free(&s);
}

static void test_webhook_body(void **state)
{
    (void)state;
    Licmon__V1__OrgSettings *s = berlin();
    struct alert_event ev = threshold_event(s);
    char *body = alert_msg_webhook_body(&ev, "licmon-0123456789ab-9", 1764262806000,
                                        "https://licmon.example");
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "licmon-0123456789ab-9");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "license.threshold_reached");
    assert_string_equal(json_string_value(json_object_get(j, "timestamp")),
                        "2025-11-27T17:00:06.000Z");
    json_t *d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "org")), "acme");
    assert_string_equal(json_string_value(json_object_get(d, "license_type")), "creator");
    assert_int_equal(json_integer_value(json_object_get(d, "in_use")), 8);
    assert_int_equal(json_integer_value(json_object_get(d, "owned")), 10);
    assert_int_equal(json_integer_value(json_object_get(d, "threshold_count")), 8);
    assert_int_equal(json_integer_value(json_object_get(d, "threshold_pct")), 80);
    assert_string_equal(json_string_value(json_object_get(d, "at")), "2025-11-27T17:00:05.000Z");
    assert_string_equal(json_string_value(json_object_get(d, "timezone")), "Europe/Berlin");
    assert_string_equal(json_string_value(json_object_get(d, "dashboard_url")),
                        "https://licmon.example/?org=acme&type=creator");
    json_decref(j);
    free(body);
    settings_free(&s);
}

static void test_signature_vectors(void **state)
{
    (void)state;
    /* the example of the Standard Webhooks specification */
    const char *p1 = "{\"test\": 2432232314}";
    char *sig = alert_msg_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                    "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, p1, strlen(p1));
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(sig);
    /* computed with Python: base64(hmac.new(key, b"id.ts.body", sha256).digest()) */
    const char *p2 = "{\"id\":\"licmon-abc-1\"}";
    sig = alert_msg_signature("my raw secret", "licmon-abc-1", 1700000000, p2, strlen(p2));
    assert_string_equal(sig, "v1,ZTyb3pejH/TQskmgheZNxXMKbBl/gqTUapDoUGmI//0=");
    free(sig);
    sig = alert_msg_signature("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaQ==", "licmon-abc-1", 1700000000, p2,
                              strlen(p2)); /* key "0123456789abcdefghi", two pad chars */
    assert_string_equal(sig, "v1,eEmZ8fUOfPwlTZf6QbZTx+Nk72HNdqFxCRwmXshJVXk=");
    free(sig);
    sig = alert_msg_signature("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWo=", "licmon-abc-1", 1700000000, p2,
                              strlen(p2)); /* key "0123456789abcdefghij", one pad char */
    assert_string_equal(sig, "v1,y0ATJn6c/VE8om6YF9/8oZvGXhSWjuM6JKaIWzfsxq4=");
    free(sig);
    assert_null(alert_msg_signature("", "id", 1, "{}", 2));
    assert_null(alert_msg_signature(NULL, "id", 1, "{}", 2));
    /* "whsec_" with something that is not base64 is a raw secret */
    uint8_t key[ALERT_MSG_SECRET_MAX];
    assert_int_equal(alert_msg_secret_key("whsec_abc", key), 9);
    assert_memory_equal(key, "whsec_abc", 9);
    assert_int_equal(alert_msg_secret_key("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWo=", key), 20);
    assert_memory_equal(key, "0123456789abcdefghij", 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),           cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_threshold_email), cmocka_unit_test(test_expiry_texts),
        cmocka_unit_test(test_webhook_body),    cmocka_unit_test(test_signature_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
