/* test_exporter: the exporter's pure cores (routing, the access rules,
 * expiration states and days left, the JSON views), the token table over a
 * real RocksDB, the administrator token file, the Lazy Pirate client, the
 * internal status socket, and the API handlers end to end against a fake
 * aggregator and ingest on inproc sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../exporter/exp_api.h"
#include "../../exporter/exp_api_int.h"
#include "../../exporter/exp_auth.h"
#include "../../exporter/exp_http.h"
#include "../../exporter/exp_internal.h"
#include "../../exporter/exp_route.h"
#include "../../exporter/exp_token.h"
#include "../../exporter/exp_upstream.h"
#include "../../exporter/exp_view.h"
#include "capture.h"
#include "damage.h"
#include "keys.h"
#include "log.h"
#include "lstream.h"
#include "settings.h"
#include "settings_json.h"
#include "store.h"
#include "svc.h"
#include "timeutil.h"
#include "tmpdir.h"
#include "xmem.h"
#include "zsock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static int64_t day_ms(const char *date, int hour, int minute)
{
    int64_t days;
    assert_int_equal(time_parse_date(date, &days), 0);
    return days * 86400000 + (int64_t)hour * 3600000 + (int64_t)minute * 60000;
}

static char *date_plus(const char *date, int64_t n)
{
    int64_t days;
    assert_int_equal(time_parse_date(date, &days), 0);
    char buf[16];
    time_format_date(days + n, buf, sizeof(buf));
    return xstrdup(buf);
}

/* ---------------------------------------------------------------- routing */

static void test_route_paths(void **state)
{
    (void)state;
    struct exp_route r;
    assert_int_equal(exp_route_match("GET", "/v1/orgs/acme/licenses", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_LICENSES);
    assert_string_equal(r.org, "acme");
    assert_true(r.v1 && r.has_org && !r.write);

    assert_int_equal(exp_route_match("GET", "/v1/orgs/a.b_c-9/current", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_CURRENT);
    assert_string_equal(r.org, "a.b_c-9");

    assert_int_equal(exp_route_match("HEAD", "/v1/orgs/acme/settings", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_SETTINGS);
    assert_false(r.write);
    assert_int_equal(exp_route_match("PUT", "/v1/orgs/acme/settings", &r), 0);
    assert_true(r.write);

    assert_int_equal(exp_route_match("GET", "/v1/tokens", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_TOKENS);
    assert_int_equal(exp_route_match("POST", "/v1/tokens", &r), 0);
    assert_true(r.write);
    assert_int_equal(exp_route_match("DELETE", "/v1/tokens/ab12cd", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_TOKEN);
    assert_string_equal(r.id, "ab12cd");

    assert_int_equal(exp_route_match("GET", "/v1/orgs", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_ORGS);
    assert_true(r.v1 && !r.has_org && !r.write);
    assert_int_equal(exp_route_match("HEAD", "/v1/orgs", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_ORGS);

    assert_int_equal(exp_route_match("GET", "/healthz", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_HEALTH);
    assert_false(r.v1);
    assert_int_equal(exp_route_match("GET", "/v1/orgs/acme/usage", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_USAGE);
    static const struct {
        const char *path;
        enum exp_route_kind kind;
    } reads[] = {{"/v1/orgs/acme/stats", EXP_ROUTE_STATS},
                 {"/v1/orgs/acme/sessions", EXP_ROUTE_SESSIONS},
                 {"/v1/orgs/acme/export", EXP_ROUTE_EXPORT},
                 {"/v1/orgs/acme/report", EXP_ROUTE_REPORT}};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        assert_int_equal(exp_route_match("GET", reads[i].path, &r), 0);
        assert_int_equal(r.kind, reads[i].kind);
        assert_true(r.has_org && !r.write);
        assert_int_equal(exp_route_match("PUT", reads[i].path, &r), 405);
        assert_string_equal(r.allow, "GET, HEAD");
    }
}

static void test_route_not_found(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",
                                        "",
                                        "/v1",
                                        "/v1/",
                                        "/v2/orgs/acme/licenses",
                                        "/v1/orgs/",
                                        "/v1/orgs//",
                                        "/v1//orgs",
                                        "/v1/orgs/acme",
                                        "/v1/orgs/acme/",
                                        "/v1/orgs/acme/licenses/",
                                        "/v1/orgs//licenses",
                                        "/v1/orgs/acme/licenses/x",
                                        "/v1/orgs/acme/nothing",
                                        "/v1/tokens/a/b",
                                        "/v1//tokens",
                                        "/healthz/",
                                        "/v1/orgs/acme/licenses/../settings",
                                        NULL};
    struct exp_route r;
    for (int i = 0; paths[i]; i++) {
        int st = exp_route_match("GET", paths[i], &r);
        if (st != 404)
            fail_msg("%s: %d", paths[i], st);
    }
    assert_int_equal(exp_route_match("GET", "/v1/bogus", &r), 404);
    assert_true(r.v1); /* still needs a token before it is told 404 */
    assert_int_equal(exp_route_match("GET", "/nope", &r), 404);
    assert_false(r.v1);
}

static void test_route_methods(void **state)
{
    (void)state;
    struct exp_route r;
    assert_int_equal(exp_route_match("POST", "/v1/orgs/acme/licenses", &r), 405);
    assert_string_equal(r.allow, "GET, HEAD");
    assert_int_equal(exp_route_match("PUT", "/v1/orgs/acme/current", &r), 405);
    assert_int_equal(exp_route_match("DELETE", "/v1/orgs/acme/settings", &r), 405);
    assert_string_equal(r.allow, "GET, HEAD, PUT");
    assert_int_equal(exp_route_match("PATCH", "/v1/orgs/acme/settings", &r), 405);
    assert_true(r.write); /* an unknown method is never a read */
    assert_int_equal(exp_route_match("PUT", "/v1/tokens", &r), 405);
    assert_string_equal(r.allow, "GET, HEAD, POST");
    assert_int_equal(exp_route_match("GET", "/v1/tokens/abc", &r), 405);
    assert_string_equal(r.allow, "DELETE");
    assert_int_equal(exp_route_match("POST", "/healthz", &r), 405);
    assert_int_equal(exp_route_match("POST", "/v1/orgs", &r), 405);
    assert_string_equal(r.allow, "GET, HEAD");
    assert_int_equal(r.kind, EXP_ROUTE_ORGS);
    assert_int_equal(exp_route_match("DELETE", "/v1/orgs", &r), 405);
    assert_int_equal(exp_route_match("get", "/v1/tokens", &r), 405); /* methods are exact */
}

static void test_route_bad_params(void **state)
{
    (void)state;
    struct exp_route r;
    char long_org[80];
    memset(long_org, 'a', 65);
    long_org[65] = '\0';
    char *path = xasprintf("/v1/orgs/%s/licenses", long_org);
    assert_int_equal(exp_route_match("GET", path, &r), 400);
    assert_string_equal(r.bad_param, "org");
    free(path);
    long_org[64] = '\0';
    path = xasprintf("/v1/orgs/%s/licenses", long_org);
    assert_int_equal(exp_route_match("GET", path, &r), 0);
    assert_string_equal(r.org, long_org);
    free(path);
    assert_int_equal(exp_route_match("GET", "/v1/orgs/ac!me/licenses", &r), 400);
    assert_string_equal(r.bad_param, "org");
    assert_int_equal(exp_route_match("GET", "/v1/orgs/ac me/settings", &r), 400);
    assert_int_equal(exp_route_match("GET", "/v1/orgs/\xc3\xa9/settings", &r), 400);
    assert_int_equal(exp_route_match("DELETE", "/v1/tokens/ab.cd", &r), 400);
    assert_string_equal(r.bad_param, "id");
    /* 405 is decided before the parameter is looked at */
    assert_int_equal(exp_route_match("POST", "/v1/orgs/ac!me/licenses", &r), 405);
}

/* ---------------------------------------------------------------- access rules */

static struct exp_principal principal(enum exp_role role, const char *org)
{
    struct exp_principal p;
    memset(&p, 0, sizeof(p));
    p.role = role;
    snprintf(p.org, sizeof(p.org), "%s", org);
    return p;
}

static int decide(const struct exp_principal *p, const char *method, const char *path)
{
    struct exp_route r;
    int st = exp_route_match(method, path, &r);
    assert_int_equal(st, 0);
    return exp_auth_decide(p, &r);
}

static void test_auth_matrix(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        bool org_path, write;
    } reqs[] = {
        {"GET", "/v1/orgs/acme/licenses", true, false},
        {"HEAD", "/v1/orgs/acme/licenses", true, false},
        {"GET", "/v1/orgs/acme/current", true, false},
        {"GET", "/v1/orgs/acme/settings", true, false},
        {"PUT", "/v1/orgs/acme/settings", true, true},
        {"GET", "/v1/orgs/acme/usage", true, false},
        {"GET", "/v1/orgs/other/licenses", true, false},
        {"PUT", "/v1/orgs/other/settings", true, true},
        {"GET", "/v1/tokens", false, false},
        {"POST", "/v1/tokens", false, true},
        {"DELETE", "/v1/tokens/abc", false, true},
    };
    struct exp_principal none = principal(EXP_ROLE_NONE, "");
    struct exp_principal admin = principal(EXP_ROLE_ADMIN, "");
    struct exp_principal oa = principal(EXP_ROLE_ORG_ADMIN, "acme");
    struct exp_principal svc = principal(EXP_ROLE_SERVICE, "acme");
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        const char *m = reqs[i].method, *p = reqs[i].path;
        bool own = reqs[i].org_path && strstr(p, "/acme/");
        assert_int_equal(decide(&none, m, p), 401);
        assert_int_equal(decide(&admin, m, p), 0);
        int want_oa = !reqs[i].org_path ? 403 : !own ? 404 : 0;
        int want_svc = !reqs[i].org_path ? 403 : !own ? 404 : reqs[i].write ? 403 : 0;
        if (decide(&oa, m, p) != want_oa || decide(&svc, m, p) != want_svc)
            fail_msg("%s %s: org_admin %d (want %d), service %d (want %d)", m, p, decide(&oa, m, p),
                     want_oa, decide(&svc, m, p), want_svc);
    }
    /* org names compare exactly: no prefix or case games */
    struct exp_principal ac = principal(EXP_ROLE_ORG_ADMIN, "ac");
    assert_int_equal(decide(&ac, "GET", "/v1/orgs/acme/licenses"), 404);
    struct exp_principal upper = principal(EXP_ROLE_ORG_ADMIN, "ACME");
    assert_int_equal(decide(&upper, "GET", "/v1/orgs/acme/licenses"), 404);
}

/* GET /v1/orgs: every role may ask; what it is told is its scope */
static void test_auth_orgs(void **state)
{
    (void)state;
    struct exp_principal none = principal(EXP_ROLE_NONE, "");
    struct exp_principal admin = principal(EXP_ROLE_ADMIN, "");
    struct exp_principal oa = principal(EXP_ROLE_ORG_ADMIN, "acme");
    struct exp_principal svc = principal(EXP_ROLE_SERVICE, "acme");
    struct exp_principal noorg = principal(EXP_ROLE_SERVICE, "");
    static const char *const methods[] = {"GET", "HEAD"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(decide(&none, methods[i], "/v1/orgs"), 401);
        assert_int_equal(decide(&admin, methods[i], "/v1/orgs"), 0);
        assert_int_equal(decide(&oa, methods[i], "/v1/orgs"), 0);
        assert_int_equal(decide(&svc, methods[i], "/v1/orgs"), 0);
    }
    assert_int_equal(exp_auth_org_scope(&none), EXP_SCOPE_NONE);
    assert_int_equal(exp_auth_org_scope(&admin), EXP_SCOPE_ALL);
    assert_int_equal(exp_auth_org_scope(&oa), EXP_SCOPE_OWN);
    assert_int_equal(exp_auth_org_scope(&svc), EXP_SCOPE_OWN);
    assert_int_equal(exp_auth_org_scope(&noorg), EXP_SCOPE_NONE);
    /* a route that did not match as a read is never let through */
    struct exp_route r;
    assert_int_equal(exp_route_match("POST", "/v1/orgs", &r), 405);
    assert_int_equal(exp_auth_decide(&oa, &r), 403);
    assert_int_equal(exp_auth_decide(&none, &r), 401);
}

static void test_auth_bearer(void **state)
{
    (void)state;
    size_t len;
    const char *t = exp_auth_bearer("Bearer abc123", &len);
    assert_non_null(t);
    assert_int_equal(len, 6);
    assert_memory_equal(t, "abc123", 6);
    t = exp_auth_bearer("bearer   tok  ", &len);
    assert_non_null(t);
    assert_int_equal(len, 3);
    assert_null(exp_auth_bearer(NULL, &len));
    assert_null(exp_auth_bearer("", &len));
    assert_null(exp_auth_bearer("Bearer", &len));
    assert_null(exp_auth_bearer("Bearer ", &len));
    assert_null(exp_auth_bearer("Basic abc", &len));
    assert_null(exp_auth_bearer("Bearerabc", &len));
    assert_null(exp_auth_bearer("Bearer a b", &len));
    char huge[EXP_TOKEN_MAX_LEN + 16] = "Bearer ";
    memset(huge + 7, 'x', EXP_TOKEN_MAX_LEN + 1);
    huge[7 + EXP_TOKEN_MAX_LEN + 1] = '\0';
    assert_null(exp_auth_bearer(huge, &len));
}

/* ---------------------------------------------------------------- expiration */

static void test_expiration_states(void **state)
{
    (void)state;
    assert_string_equal(exp_view_expiration_state(false, 0), "non_applicable");
    assert_string_equal(exp_view_expiration_state(false, -5), "non_applicable");
    assert_string_equal(exp_view_expiration_state(true, -1), "major"); /* expired */
    assert_string_equal(exp_view_expiration_state(true, -400), "major");
    assert_string_equal(exp_view_expiration_state(true, 0), "major"); /* last day */
    assert_string_equal(exp_view_expiration_state(true, 30), "major");
    assert_string_equal(exp_view_expiration_state(true, 31), "minor");
    assert_string_equal(exp_view_expiration_state(true, 90), "minor");
    assert_string_equal(exp_view_expiration_state(true, 91), "ok");
    assert_string_equal(exp_view_expiration_state(true, 5000), "ok");
}

static void test_days_left(void **state)
{
    (void)state;
    int64_t now = day_ms("2026-03-10", 12, 0), d;
    static const int64_t offsets[] = {-1, 0, 30, 31, 90, 91};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        char *exp = date_plus("2026-03-10", offsets[i]);
        assert_int_equal(exp_view_days_left(exp, "UTC", now, &d), 0);
        assert_int_equal(d, offsets[i]);
        free(exp);
    }
    assert_int_equal(exp_view_days_left("", "UTC", now, &d), -1);
    assert_int_equal(exp_view_days_left(NULL, "UTC", now, &d), -1);
    assert_int_equal(exp_view_days_left("2026-13-01", "UTC", now, &d), -1);
    /* counted in the org's zone: 23:30 UTC is already the next day in Berlin
     * and still the day before in New York */
    now = day_ms("2026-01-01", 23, 30);
    assert_int_equal(exp_view_days_left("2026-01-31", "UTC", now, &d), 0);
    assert_int_equal(d, 30);
    assert_int_equal(exp_view_days_left("2026-01-31", "Europe/Berlin", now, &d), 0);
    assert_int_equal(d, 29);
    now = day_ms("2026-01-02", 2, 0);
    assert_int_equal(exp_view_days_left("2026-01-31", "America/New_York", now, &d), 0);
    assert_int_equal(d, 30);
}

/* ---------------------------------------------------------------- views */

static json_t *find_row(json_t *rows, const char *type)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) if (!strcmp(json_string_value(json_object_get(row, "type")),
                                                 type)) return row;
    return NULL;
}

static void test_view_licenses(void **state)
{
    (void)state;
    Licmon__V1__OrgSettings *s = settings_from(
        "acme",
        "{\"timezone\":\"Europe/Berlin\",\"integrations\":[\"Jira\"],\"licenses\":["
        "{\"type\":\"creator\",\"owned\":5,\"expires\":\"2026-04-09\",\"threshold_pct\":70},"
        "{\"type\":\"reviewer\",\"owned\":2},"
        "{\"type\":\"stakeholder\",\"model\":\"named\",\"owned\":10,"
        "\"expires\":\"2026-01-01\"}]}");
    /* the aggregator's view: reviewer over-used, a type nobody configured, and "all" */
    Licmon__V1__License lic_rev = LICMON__V1__LICENSE__INIT, lic_x = LICMON__V1__LICENSE__INIT,
                        lic_all = LICMON__V1__LICENSE__INIT;
    lic_rev.type = "reviewer";
    lic_x.type = "test_runner";
    lic_all.type = "all";
    Licmon__V1__LicenseState st_rev = LICMON__V1__LICENSE_STATE__INIT,
                             st_x = LICMON__V1__LICENSE_STATE__INIT,
                             st_all = LICMON__V1__LICENSE_STATE__INIT;
    st_rev.license = &lic_rev;
    st_rev.in_use = 3;
    st_x.license = &lic_x;
    st_x.in_use = 1;
    st_all.license = &lic_all;
    st_all.in_use = 4;
    Licmon__V1__LicenseState *states[] = {&st_rev, &st_x, &st_all};
    Licmon__V1__QueryReply qr = LICMON__V1__QUERY_REPLY__INIT;
    qr.licenses = states;
    qr.n_licenses = 3;
    qr.in_use_all = 4;
    qr.timezone = "Europe/Berlin";
    /* 2026-01-09 23:30 UTC is 2026-01-10 in Berlin: 89 days to 2026-04-09 */
    json_t *v = exp_view_licenses(&qr, s, day_ms("2026-01-09", 23, 30));
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "timezone")), "Europe/Berlin");
    assert_int_equal(json_integer_value(json_object_get(v, "in_use_all")), 4);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "integrations"), 0)),
                        "Jira");
    json_t *rows = json_object_get(v, "licenses");
    assert_int_equal(json_array_size(rows), 4);
    assert_null(find_row(rows, "all"));
    json_t *c = find_row(rows, "creator");
    assert_string_equal(json_string_value(json_object_get(c, "model")), "floating");
    assert_int_equal(json_integer_value(json_object_get(c, "owned")), 5);
    assert_int_equal(json_integer_value(json_object_get(c, "in_use")), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "free")), 5);
    assert_int_equal(json_integer_value(json_object_get(c, "days_left")), 89);
    assert_string_equal(json_string_value(json_object_get(c, "expiration_state")), "minor");
    assert_string_equal(json_string_value(json_object_get(c, "expires")), "2026-04-09");
    json_t *r = find_row(rows, "reviewer");
    assert_int_equal(json_integer_value(json_object_get(r, "in_use")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "free")), 0);
    assert_true(json_is_null(json_object_get(r, "expires")));
    assert_true(json_is_null(json_object_get(r, "days_left")));
    assert_string_equal(json_string_value(json_object_get(r, "expiration_state")),
                        "non_applicable");
    json_t *n = find_row(rows, "stakeholder");
    assert_string_equal(json_string_value(json_object_get(n, "model")), "named");
    assert_int_equal(json_integer_value(json_object_get(n, "days_left")), -9);
    assert_string_equal(json_string_value(json_object_get(n, "expiration_state")), "major");
    json_t *x = find_row(rows, "test_runner");
    assert_int_equal(json_integer_value(json_object_get(x, "owned")), 0);
    assert_int_equal(json_integer_value(json_object_get(x, "in_use")), 1);
    json_decref(v);
    settings_free(&s);
}

static void test_view_current(void **state)
{
    (void)state;
    Licmon__V1__CurrentSession a = LICMON__V1__CURRENT_SESSION__INIT,
                               b = LICMON__V1__CURRENT_SESSION__INIT;
    int64_t now = day_ms("2026-05-01", 10, 0);
    a.user = "alice@acme.example";
    a.license_type = "creator";
    a.login_ms = now - 3723000;
    a.last_activity_ms = now - 60000;
    a.session_id = "s1";
    b.user = "b\xff"; /* not UTF-8: shown, not dropped */
    b.license_type = "reviewer";
    b.login_ms = now + 5000; /* clock skew: never negative */
    b.last_activity_ms = now;
    b.session_id = "s2";
    Licmon__V1__CurrentSession *cur[] = {&a, &b};
    Licmon__V1__QueryReply qr = LICMON__V1__QUERY_REPLY__INIT;
    qr.current = cur;
    qr.n_current = 2;
    Licmon__V1__OrgSettings *s = settings_default("acme");
    json_t *v = exp_view_current(&qr, s, now);
    assert_string_equal(json_string_value(json_object_get(v, "timezone")), "UTC");
    json_t *rows = json_object_get(v, "sessions");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "user")), "alice@acme.example");
    assert_string_equal(json_string_value(json_object_get(r, "license_type")), "creator");
    assert_string_equal(json_string_value(json_object_get(r, "login")), "2026-05-01T08:57:57.000Z");
    assert_int_equal(json_integer_value(json_object_get(r, "session_length_s")), 3723);
    assert_string_equal(json_string_value(json_object_get(r, "last_activity")),
                        "2026-05-01T09:59:00.000Z");
    assert_string_equal(json_string_value(json_object_get(r, "session_id")), "s1");
    r = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(r, "user")), "b?");
    assert_int_equal(json_integer_value(json_object_get(r, "session_length_s")), 0);
    json_decref(v);
    settings_free(&s);
}

/* ---------------------------------------------------------------- tokens */

static void test_token_hash(void **state)
{
    (void)state;
    uint8_t h[EXP_TOKEN_HASH_LEN];
    exp_token_hash("abc", h); /* FIPS 180-2 test vector */
    static const uint8_t want[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                   0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                   0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_memory_equal(h, want, sizeof(want));
    char *a = exp_token_random_hex(32), *b = exp_token_random_hex(32);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_token_roundtrip(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct store *st = store_open(dir);
    assert_non_null(st);
    struct exp_tokens *t = exp_tokens_new(st);
    struct exp_token_rec rec, got;
    char *secret = NULL, *secret2 = NULL;
    assert_int_equal(exp_tokens_create(t, "acme", EXP_ROLE_ORG_ADMIN, 1000, &rec, &secret), 0);
    assert_int_equal(strncmp(secret, EXP_TOKEN_PREFIX, 3), 0);
    assert_int_equal(strlen(secret), 3 + 64);
    assert_int_equal(strlen(rec.id), 2 * EXP_TOKEN_ID_BYTES);
    assert_true(exp_route_valid_id(rec.id));
    assert_int_equal(exp_tokens_create(t, "other", EXP_ROLE_SERVICE, 2000, &got, &secret2), 0);

    /* stored as 'T' + SHA-256(secret): one get finds it; the secret is nowhere */
    uint8_t key[1 + EXP_TOKEN_HASH_LEN];
    key[0] = KEY_NS_TOKEN;
    exp_token_hash(secret, key + 1);
    char *val = NULL;
    size_t vlen;
    assert_int_equal(store_get(st, key, sizeof(key), &val, &vlen), 1);
    assert_null(memmem(val, vlen, secret + 3, 16));
    free(val);

    assert_int_equal(exp_tokens_lookup(t, secret, &got), 1);
    assert_string_equal(got.id, rec.id);
    assert_string_equal(got.org, "acme");
    assert_int_equal(got.role, EXP_ROLE_ORG_ADMIN);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(exp_tokens_lookup(t, "lm_nope", &got), 0);
    char *wrong = xstrdup(secret);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    assert_int_equal(exp_tokens_lookup(t, wrong, &got), 0);
    free(wrong);

    json_t *list = exp_tokens_list(t);
    json_t *arr = json_object_get(list, "tokens");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")), rec.id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "role")),
                        "service");
    char *dump = json_dumps(list, 0);
    assert_null(strstr(dump, secret + 3));
    assert_null(strstr(dump, secret2 + 3));
    free(dump);
    json_decref(list);

    assert_int_equal(exp_tokens_revoke(t, rec.id), 1);
    assert_int_equal(exp_tokens_lookup(t, secret, &got), 0);
    assert_int_equal(exp_tokens_revoke(t, rec.id), 0);
    assert_int_equal(exp_tokens_revoke(t, "unknown"), 0);
    assert_int_equal(exp_tokens_lookup(t, secret2, &got), 1);

    /* survives a reopen */
    exp_tokens_free(&t);
    store_close(&st);
    st = store_open(dir);
    t = exp_tokens_new(st);
    assert_int_equal(exp_tokens_lookup(t, secret2, &got), 1);
    assert_string_equal(got.org, "other");
    list = exp_tokens_list(t);
    assert_int_equal(json_array_size(json_object_get(list, "tokens")), 1);
    json_decref(list);
    exp_tokens_free(&t);
    store_close(&st);
    free(secret);
    free(secret2);
    tmpdir_free(&dir);
}

/* The token table cut by a read error (a damaged block on disk): the list
 * is refused (503 in the API), not shown without the tokens past the
 * damage, which would look revoked while they still open the API. */
static void test_token_list_cut_by_damage(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    struct store *st = store_open(dir);
    struct exp_tokens *t = exp_tokens_new(st);
    uint32_t x = 521288629u;
    for (int i = 0; i < 3000; i++) {
        uint8_t r[30];
        char org[EXP_ORG_MAX + 1];
        incompressible(r, sizeof(r), &x);
        for (size_t k = 0; k < sizeof(r); k++)
            snprintf(org + 2 * k, sizeof(org) - 2 * k, "%02x", r[k]);
        struct exp_token_rec rec;
        char *secret = NULL;
        assert_int_equal(exp_tokens_create(t, org, EXP_ROLE_ORG_ADMIN, 1000 + i, &rec, &secret), 0);
        free(secret);
    }
    json_t *list = exp_tokens_list(t);
    assert_int_equal(json_array_size(json_object_get(list, "tokens")), 3000);
    json_decref(list);
    exp_tokens_free(&t);
    store_compact(st);
    store_close(&st);
    damage_largest_table(dir, 200000);
    st = store_open(dir);
    t = exp_tokens_new(st);
    assert_null(exp_tokens_list(t));
    exp_tokens_free(&t);
    store_close(&st);
    tmpdir_free(&dir);
}

static void test_admin_token_file(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *path = xasprintf("%s/admin.token", dir);
    char *tok = exp_auth_admin_token(path);
    assert_non_null(tok);
    assert_int_equal(strlen(tok), 64);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *again = exp_auth_admin_token(path);
    assert_string_equal(tok, again);
    free(again);
    FILE *f = fopen(path, "w");
    fputs("  my-own-admin-token-123  \nsecond line\n", f);
    fclose(f);
    again = exp_auth_admin_token(path);
    assert_string_equal(again, "my-own-admin-token-123");
    free(again);
    f = fopen(path, "w");
    fputs("\n", f);
    fclose(f);
    assert_null(exp_auth_admin_token(path)); /* empty: refuse, never run open */
    char *missing = xasprintf("%s/no/such/dir/admin.token", dir);
    assert_null(exp_auth_admin_token(missing));
    free(missing);

    /* identify: the admin token, a stored one, garbage */
    struct store *st = store_open(dir);
    struct exp_tokens *t = exp_tokens_new(st);
    struct exp_auth a;
    exp_auth_init(&a, tok, t);
    struct exp_token_rec rec;
    char *secret;
    assert_int_equal(exp_tokens_create(t, "acme", EXP_ROLE_SERVICE, 5, &rec, &secret), 0);
    struct exp_principal p;
    char *hdr = xasprintf("Bearer %s", tok);
    assert_int_equal(exp_auth_identify(&a, hdr, &p), 0);
    assert_int_equal(p.role, EXP_ROLE_ADMIN);
    free(hdr);
    hdr = xasprintf("Bearer %s", secret);
    assert_int_equal(exp_auth_identify(&a, hdr, &p), 0);
    assert_int_equal(p.role, EXP_ROLE_SERVICE);
    assert_string_equal(p.org, "acme");
    assert_string_equal(p.id, rec.id);
    free(hdr);
    assert_int_equal(exp_auth_identify(&a, "Bearer nope", &p), 0);
    assert_int_equal(p.role, EXP_ROLE_NONE);
    assert_int_equal(exp_auth_identify(&a, NULL, &p), 0);
    assert_int_equal(p.role, EXP_ROLE_NONE);
    free(secret);
    exp_tokens_free(&t);
    store_close(&st);
    free(tok);
    free(path);
    tmpdir_free(&dir);
}

/* ---------------------------------------------------------------- fake upstreams */

enum fake_mode {
    FAKE_NORMAL,
    FAKE_SILENT,
    FAKE_STALE_FIRST,
    FAKE_SESSIONS_DIE,    /* the second session chunk is never answered */
    FAKE_SESSIONS_FOREIGN /* a session of another org slips into the answer */
};

/* What the fake aggregator was last asked (USAGE, STATS, SESSIONS). */
struct fake_asked {
    int kind, granularity, hour, threshold_pct;
    char type[40], from[16], to[16], date[16], user[300];
    uint32_t max_rows;
    int n; /* queries of these kinds so far */
};

struct fake {
    const char *agg_ep, *ingest_ep;
    void *agg, *ingest;
    pthread_t thread;
    atomic_bool stop;
    _Atomic int mode;
    pthread_mutex_t lock;
    Licmon__V1__OrgSettings *applied;    /* what the aggregator shows */
    Licmon__V1__OrgSettings *journaled;  /* what ingest took */
    int lag;                             /* SETTINGS answers before journaled shows */
    uint64_t journaled_seq, applied_seq; /* the journal seq of each */
    int settings_queries;
    int orgs_queries;
    uint64_t seq;
    uint64_t n_sessions; /* session records the fake has for every org */
    struct fake_asked asked;
};

/* Session number i of the fake: hostile user names in turn. */
static const char *const fake_users[] = {
    "alice@acme.example", "=1+1", "a,b",    "say \"hi\"", "two\nlines",
    "@SUM(A1)",           "-2",   "+41 79", "\ttab",      "\xc3\xa9l\xc3\xa8ve"};
#define FAKE_T0 INT64_C(1774771200000) /* 2026-03-29T08:00:00Z */

static void fake_session(uint64_t i, const char *org, Licmon__V1__SessionRecord *s, char *id,
                         size_t idlen)
{
    licmon__v1__session_record__init(s);
    snprintf(id, idlen, "s%06llu", (unsigned long long)i);
    s->session_id = id;
    s->org = (char *)org;
    s->user = (char *)fake_users[i % (sizeof(fake_users) / sizeof(fake_users[0]))];
    s->license_type = i % 2 ? "reviewer" : "creator";
    s->requested_type = i % 5 == 1 ? "creator" : "";
    s->start_ms = FAKE_T0 + (int64_t)i * 60000;
    s->last_activity_ms = s->start_ms + 30000;
    s->end_reason = (Licmon__V1__EndReason)(i % 4); /* open, manual, user inactivity, relogin */
    if (s->end_reason != LICMON__V1__END_REASON__OPEN) {
        s->end_ms = s->start_ms + 90000;
        s->user_inactivity_s = 90;
        s->license_inactivity_s = 90;
        s->license_released_at_ms = s->end_ms + (i % 3) * 1000;
        s->license_tail_s = (int64_t)(i % 3);
    }
}

/* Fills qr with USAGE rows as a real aggregator would shape them (in the
 * zone tz); returns the allocated rows block (freed by the caller). */
static Licmon__V1__UsageRow *fake_usage(const Licmon__V1__Query *q, const char *tzname,
                                        Licmon__V1__QueryReply *qr, char (**dates)[16])
{
    const struct tz *z = tz_get(tzname);
    int64_t from, to;
    size_t n = 0;
    Licmon__V1__UsageRow *rows = NULL;
    if (q->granularity == LICMON__V1__GRANULARITY__DAY) {
        time_parse_date(q->from_date, &from);
        time_parse_date(q->to_date, &to);
        n = (size_t)(to - from + 1);
        rows = xcalloc(n, sizeof(*rows));
        *dates = xcalloc(n, sizeof(**dates));
        for (size_t i = 0; i < n; i++) {
            Licmon__V1__UsageRow *r = &rows[i];
            licmon__v1__usage_row__init(r);
            int64_t d = from + (int64_t)i;
            time_format_date(d, (*dates)[i], 16);
            r->date = (*dates)[i];
            int32_t off = tz_offset_s(z, d * 86400000 + 43200000);
            r->start_ms = d * 86400000 - (int64_t)off * 1000;
            r->utc_offset_s = off;
            r->minutes = 1440;
            r->peak = d % 7;
            r->peak_at_ms = r->peak ? r->start_ms + 9 * 3600000 : -1;
            r->users = r->peak + 1;
            r->logins = 2;
            r->denials = d % 3;
            r->denied_users = d % 3 ? 1 : 0;
        }
    } else {
        int64_t date;
        time_parse_date(q->date, &date);
        int32_t off0 = tz_offset_s(z, date * 86400000);
        int64_t midnight = date * 86400000 - (int64_t)off0 * 1000;
        if (q->granularity == LICMON__V1__GRANULARITY__HOUR) {
            n = 24;
        } else {
            n = 60;
            int h = q->hour >= 100 ? q->hour - 100 : q->hour;
            midnight += (int64_t)h * 3600000 + (q->hour >= 100 ? 3600000 : 0);
        }
        rows = xcalloc(n, sizeof(*rows));
        *dates = xcalloc(1, sizeof(**dates));
        time_format_date(date, (*dates)[0], 16);
        int64_t step = q->granularity == LICMON__V1__GRANULARITY__HOUR ? 3600000 : 60000;
        for (size_t i = 0; i < n; i++) {
            Licmon__V1__UsageRow *r = &rows[i];
            licmon__v1__usage_row__init(r);
            r->date = (*dates)[0];
            r->start_ms = midnight + (int64_t)i * step;
            r->utc_offset_s = tz_offset_s(z, r->start_ms);
            r->minutes = (int32_t)(step / 60000);
            r->peak = (int64_t)i % 4;
            r->peak_at_ms = r->peak ? r->start_ms : -1;
            r->in_use_end = r->peak;
            r->users = r->peak;
        }
    }
    qr->rows = xcalloc(n ? n : 1, sizeof(*qr->rows));
    for (size_t i = 0; i < n; i++)
        qr->rows[i] = &rows[i];
    qr->n_rows = n;
    return rows;
}

static void fake_remember(struct fake *f, const Licmon__V1__Query *q)
{
    struct fake_asked *a = &f->asked;
    a->kind = q->kind;
    a->granularity = q->granularity;
    a->hour = q->hour;
    a->threshold_pct = q->threshold_pct;
    a->max_rows = q->max_rows;
    snprintf(a->type, sizeof(a->type), "%s", q->license_type ? q->license_type : "");
    snprintf(a->from, sizeof(a->from), "%s", q->from_date ? q->from_date : "");
    snprintf(a->to, sizeof(a->to), "%s", q->to_date ? q->to_date : "");
    snprintf(a->date, sizeof(a->date), "%s", q->date ? q->date : "");
    snprintf(a->user, sizeof(a->user), "%s", q->user ? q->user : "");
    a->n++;
}

static void fake_send(void *router, const struct zsock_env *env, Licmon__V1__Reply *rep)
{
    lstream_send_reply(router, env, rep);
}

static void fake_on_agg(struct fake *f)
{
    zmq_msg_t msg;
    struct zsock_env env;
    bool bad;
    while (zsock_recv(f->agg, &env, &msg, ZMQ_DONTWAIT, &bad) == 0) {
        Licmon__V1__Request *req =
            licmon__v1__request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!req || req->body_case != LICMON__V1__REQUEST__BODY_QUERY) {
            PB_FREE(request, req);
            continue;
        }
        int mode = atomic_load(&f->mode);
        if (mode == FAKE_SILENT) {
            PB_FREE(request, req);
            continue;
        }
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        Licmon__V1__QueryReply qr = LICMON__V1__QUERY_REPLY__INIT;
        if (mode == FAKE_STALE_FIRST) {
            rep.id = req->id - 1;
            rep.error = "stale";
            fake_send(f->agg, &env, &rep);
            rep.error = (char *)protobuf_c_empty_string;
        }
        rep.id = req->id;
        pthread_mutex_lock(&f->lock);
        if (f->journaled && f->lag-- <= 0) {
            settings_free(&f->applied);
            f->applied = f->journaled;
            f->journaled = NULL;
            f->applied_seq = f->journaled_seq;
        }
        qr.applied_journal_seq = f->applied_seq;
        if (req->query->kind == LICMON__V1__QUERY_KIND__SETTINGS)
            f->settings_queries++;
        static char *const fake_orgs[] = {"acme", "bad name!", "other", "zed"};
        if (req->query->kind == LICMON__V1__QUERY_KIND__ORGS) {
            f->orgs_queries++;
            qr.orgs = (char **)fake_orgs;
            qr.n_orgs = sizeof(fake_orgs) / sizeof(fake_orgs[0]);
        }
        Licmon__V1__OrgSettings *s =
            f->applied && !strcmp(f->applied->org, req->query->org) ? f->applied : NULL;
        Licmon__V1__License lic = LICMON__V1__LICENSE__INIT;
        Licmon__V1__LicenseState ls = LICMON__V1__LICENSE_STATE__INIT;
        Licmon__V1__LicenseState *lsv[] = {&ls};
        Licmon__V1__CurrentSession cs = LICMON__V1__CURRENT_SESSION__INIT;
        Licmon__V1__CurrentSession *csv[] = {&cs};
        qr.settings = s;
        qr.org_known = s != NULL;
        qr.timezone = s ? s->timezone : "UTC";
        lic.type = "creator";
        lic.owned = 0;
        ls.license = &lic;
        ls.in_use = 2;
        qr.licenses = lsv;
        qr.n_licenses = 1;
        qr.in_use_all = 2;
        cs.user = "alice";
        cs.license_type = "creator";
        cs.login_ms = time_now_ms() - 10000;
        cs.last_activity_ms = time_now_ms();
        cs.session_id = "sess-1";
        qr.current = csv;
        qr.n_current = 1;
        rep.body_case = LICMON__V1__REPLY__BODY_QUERY;
        rep.query = &qr;
        const Licmon__V1__Query *q = req->query;
        Licmon__V1__UsageRow *rows = NULL;
        char(*dates)[16] = NULL;
        Licmon__V1__Stats st = LICMON__V1__STATS__INIT;
        Licmon__V1__SessionRecord *recs = NULL;
        char(*ids)[16] = NULL;
        uint8_t cur[8];
        bool silent = false;
        if (q->kind == LICMON__V1__QUERY_KIND__USAGE) {
            fake_remember(f, q);
            rows = fake_usage(q, qr.timezone, &qr, &dates);
        } else if (q->kind == LICMON__V1__QUERY_KIND__STATS) {
            fake_remember(f, q);
            const Licmon__V1__License *l = s ? settings_license(s, q->license_type) : NULL;
            st.owned = l ? l->owned : 0;
            st.threshold_pct = q->threshold_pct ? q->threshold_pct : 80;
            st.threshold_count = (st.owned * st.threshold_pct + 99) / 100;
            st.days = 7;
            st.average_value = 3.5;
            st.average_pct = st.owned ? 350.0 / (double)st.owned : 0;
            st.average_state = st.owned ? "ok" : "non_applicable";
            st.peak_value = 6;
            st.peak_at_ms = FAKE_T0;
            st.peak_state = st.owned ? "minor" : "non_applicable";
            st.days_over_state = st.owned ? "ok" : "non_applicable";
            st.denied_users = 1;
            st.denials = 3;
            st.denied_state = "major";
            st.downgraded_state = "ok";
            st.in_use = 2;
            st.free = st.owned > 2 ? st.owned - 2 : 0;
            st.has_expiry = l && l->expires && *l->expires;
            st.days_left = 20;
            st.expiration_state = st.has_expiry ? "major" : "non_applicable";
            qr.stats = &st;
        } else if (q->kind == LICMON__V1__QUERY_KIND__SESSIONS) {
            fake_remember(f, q);
            uint64_t from = 0;
            for (size_t i = 0; i < q->cursor.len && i < 8; i++)
                from = from << 8 | q->cursor.data[i];
            if (from > 0 && mode == FAKE_SESSIONS_DIE)
                silent = true;
            uint64_t n = q->max_rows ? q->max_rows : 100;
            if (from + n > f->n_sessions)
                n = from < f->n_sessions ? f->n_sessions - from : 0;
            recs = xcalloc(n ? n : 1, sizeof(*recs));
            ids = xcalloc(n ? n : 1, sizeof(*ids));
            qr.sessions = xcalloc(n ? n : 1, sizeof(*qr.sessions));
            for (uint64_t i = 0; i < n; i++) {
                fake_session(from + i, q->org, &recs[i], ids[i], sizeof(ids[i]));
                qr.sessions[i] = &recs[i];
            }
            if (mode == FAKE_SESSIONS_FOREIGN && n && (from > 0 || from + n == f->n_sessions))
                recs[n - 1].org = "other";
            qr.n_sessions = n;
            if (from + n < f->n_sessions) {
                for (int i = 0; i < 8; i++)
                    cur[i] = (uint8_t)((from + n) >> (56 - 8 * i));
                qr.next_cursor.data = cur;
                qr.next_cursor.len = 8;
            }
        }
        if (!silent)
            fake_send(f->agg, &env, &rep);
        pthread_mutex_unlock(&f->lock);
        if (qr.rows && rows)
            free(qr.rows);
        free(rows);
        free(dates);
        free(qr.sessions);
        free(recs);
        free(ids);
        PB_FREE(request, req);
    }
}

static void fake_on_ingest(struct fake *f)
{
    zmq_msg_t msg;
    struct zsock_env env;
    bool bad;
    while (zsock_recv(f->ingest, &env, &msg, ZMQ_DONTWAIT, &bad) == 0) {
        Licmon__V1__Request *req =
            licmon__v1__request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!req)
            continue;
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        rep.id = req->id;
        if (req->body_case == LICMON__V1__REQUEST__BODY_PUT_SETTINGS) {
            pthread_mutex_lock(&f->lock);
            settings_free(&f->journaled);
            f->journaled = settings_copy(req->put_settings);
            rep.body_case = LICMON__V1__REPLY__BODY_JOURNALED_SEQ;
            rep.journaled_seq = f->journaled_seq = ++f->seq;
            pthread_mutex_unlock(&f->lock);
        } else {
            rep.error = "not served";
        }
        fake_send(f->ingest, &env, &rep);
        PB_FREE(request, req);
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        zmq_pollitem_t items[] = {{.socket = f->agg, .events = ZMQ_POLLIN},
                                  {.socket = f->ingest, .events = ZMQ_POLLIN}};
        if (zmq_poll(items, 2, 20) <= 0)
            continue;
        if (items[0].revents & ZMQ_POLLIN)
            fake_on_agg(f);
        if (items[1].revents & ZMQ_POLLIN)
            fake_on_ingest(f);
    }
    return NULL;
}

static struct fake *fake_start(const char *agg_ep, const char *ingest_ep)
{
    struct fake *f = xcalloc(1, sizeof(*f));
    f->agg_ep = agg_ep;
    f->ingest_ep = ingest_ep;
    pthread_mutex_init(&f->lock, NULL);
    f->agg = zsock_open(ZMQ_ROUTER, agg_ep, true, NULL);
    f->ingest = zsock_open(ZMQ_ROUTER, ingest_ep, true, NULL);
    assert_non_null(f->agg);
    assert_non_null(f->ingest);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(struct fake **fp)
{
    struct fake *f = *fp;
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    zsock_close(&f->agg);
    zsock_close(&f->ingest);
    settings_free(&f->applied);
    settings_free(&f->journaled);
    pthread_mutex_destroy(&f->lock);
    free(f);
    *fp = NULL;
}

/* ---------------------------------------------------------------- upstream client */

static void test_upstream_timeout_and_stale(void **state)
{
    (void)state;
    struct fake *f = fake_start("inproc://up-agg", "inproc://up-ingest");
    struct exp_upstream *u = exp_upstream_new("aggregator", "inproc://up-agg", 300);
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.kind = LICMON__V1__QUERY_KIND__LICENSES;
    q.org = "acme";
    req.body_case = LICMON__V1__REQUEST__BODY_QUERY;
    req.query = &q;
    Licmon__V1__Reply *rep = NULL;

    assert_int_equal(exp_upstream_call(u, &req, 0, &rep), EXP_UP_OK);
    assert_int_equal(rep->id, req.id);
    assert_int_equal(rep->query->in_use_all, 2);
    PB_FREE(reply, rep);

    atomic_store(&f->mode, FAKE_STALE_FIRST);
    assert_int_equal(exp_upstream_call(u, &req, 0, &rep), EXP_UP_OK);
    assert_int_equal(rep->id, req.id);
    assert_string_equal(rep->error, "");
    PB_FREE(reply, rep);

    atomic_store(&f->mode, FAKE_SILENT);
    int64_t t0 = time_mono_ms();
    assert_int_equal(exp_upstream_call(u, &req, 0, &rep), EXP_UP_TIMEOUT);
    int64_t took = time_mono_ms() - t0;
    assert_true(took >= 290 && took < 2000);
    assert_null(rep);

    /* after a timeout the socket is fresh and works again */
    atomic_store(&f->mode, FAKE_NORMAL);
    assert_int_equal(exp_upstream_call(u, &req, 0, &rep), EXP_UP_OK);
    PB_FREE(reply, rep);
    exp_upstream_free(&u);
    fake_stop(&f);
}

/* ---------------------------------------------------------------- internal socket */

static void stop_soon(void *arg)
{
    svc_stop(arg);
}

struct status_client {
    const char *ep;
    Licmon__V1__Reply *status, *other;
};

/* One request on a fresh DEALER; the reply or NULL. */
static Licmon__V1__Reply *status_ask(void *d, const Licmon__V1__Request *req)
{
    size_t len;
    uint8_t *buf = pb_pack(&req->base, &len);
    zsock_send(d, NULL, buf, len, 0);
    free(buf);
    zmq_pollitem_t item = {.socket = d, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, 2000) != 1)
        return NULL;
    zmq_msg_t msg;
    if (zsock_recv(d, NULL, &msg, 0, NULL) != 0)
        return NULL;
    Licmon__V1__Reply *rep =
        licmon__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    return rep;
}

static void *status_client_main(void *arg)
{
    struct status_client *c = arg;
    void *d = zsock_open(ZMQ_DEALER, c->ep, false, NULL);
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    req.id = 41;
    req.body_case = LICMON__V1__REQUEST__BODY_STATUS;
    req.status = 1;
    c->status = status_ask(d, &req);
    Licmon__V1__OrgSettings empty = LICMON__V1__ORG_SETTINGS__INIT;
    req.id = 42;
    req.body_case = LICMON__V1__REQUEST__BODY_PUT_SETTINGS;
    req.put_settings = &empty;
    c->other = status_ask(d, &req);
    zsock_close(&d);
    return NULL;
}

static void test_internal_status(void **state)
{
    (void)state;
    struct svc *s = svc_new();
    struct exp_internal *in = exp_internal_open("inproc://exp-internal", s);
    assert_non_null(in);
    struct status_client c = {.ep = "inproc://exp-internal"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, status_client_main, &c), 0);
    svc_every(s, 1000, stop_soon, s);
    svc_run(s);
    pthread_join(th, NULL);
    assert_non_null(c.status);
    assert_int_equal(c.status->id, 41);
    assert_int_equal(c.status->body_case, LICMON__V1__REPLY__BODY_STATUS);
    assert_string_equal(c.status->status->program, "exporter");
    assert_true(c.status->status->started_ms > 0);
    assert_non_null(c.other);
    assert_int_equal(c.other->id, 42);
    assert_string_not_equal(c.other->error, "");
    PB_FREE(reply, c.status);
    PB_FREE(reply, c.other);
    exp_internal_close(&in, s);
    svc_free(&s);
}

/* ---------------------------------------------------------------- API end to end */

struct api_fixture {
    char *dir;
    struct store *st;
    struct exp_tokens *tokens;
    struct exp_upstream *agg, *ingest;
    struct exp_api *api;
    struct fake *fake;
    char *admin_hdr, *oa_hdr, *svc_hdr, *other_hdr;
};

static char *make_token(struct api_fixture *fx, const char *org, enum exp_role role)
{
    struct exp_token_rec rec;
    char *secret;
    assert_int_equal(exp_tokens_create(fx->tokens, org, role, time_now_ms(), &rec, &secret), 0);
    char *hdr = xasprintf("Bearer %s", secret);
    free(secret);
    return hdr;
}

/* "now" for the API under test: 0 means the real clock. */
static _Atomic int64_t test_clock;

static int64_t test_clock_ms(void)
{
    int64_t t = atomic_load(&test_clock);
    return t ? t : time_now_ms();
}

/* (Re)builds fx->api with a Sessions sheet of xlsx_max_rows rows. */
static void api_rebuild(struct api_fixture *fx, uint32_t xlsx_max_rows, uint32_t chunk)
{
    exp_api_free(&fx->api);
    struct exp_api_config cfg = {.admin_token = "the-admin-token-for-tests",
                                 .tokens = fx->tokens,
                                 .store = fx->st,
                                 .aggregator = fx->agg,
                                 .ingest = fx->ingest,
                                 .query_timeout_ms = 400,
                                 .settings_wait_ms = 1500,
                                 .clock_ms = test_clock_ms,
                                 .tmpdir = fx->dir,
                                 .xlsx_max_rows = xlsx_max_rows,
                                 .session_chunk = chunk};
    fx->api = exp_api_new(&cfg);
}

static int api_setup(void **state)
{
    atomic_store(&test_clock, 0);
    struct api_fixture *fx = xcalloc(1, sizeof(*fx));
    fx->dir = tmpdir_new();
    fx->st = store_open(fx->dir);
    fx->tokens = exp_tokens_new(fx->st);
    fx->fake = fake_start("inproc://api-agg", "inproc://api-ingest");
    fx->agg = exp_upstream_new("aggregator", "inproc://api-agg", 400);
    fx->ingest = exp_upstream_new("ingest", "inproc://api-ingest", 400);
    api_rebuild(fx, 0, 0);
    fx->admin_hdr = xstrdup("Bearer the-admin-token-for-tests");
    fx->oa_hdr = make_token(fx, "acme", EXP_ROLE_ORG_ADMIN);
    fx->svc_hdr = make_token(fx, "acme", EXP_ROLE_SERVICE);
    fx->other_hdr = make_token(fx, "other", EXP_ROLE_ORG_ADMIN);
    *state = fx;
    return 0;
}

static int api_teardown(void **state)
{
    struct api_fixture *fx = *state;
    exp_api_free(&fx->api);
    exp_upstream_free(&fx->agg);
    exp_upstream_free(&fx->ingest);
    fake_stop(&fx->fake);
    exp_tokens_free(&fx->tokens);
    store_close(&fx->st);
    tmpdir_free(&fx->dir);
    free(fx->admin_hdr);
    free(fx->oa_hdr);
    free(fx->svc_hdr);
    free(fx->other_hdr);
    free(fx);
    return 0;
}

/* An answer read out whole: text, file and streamed bodies alike. */
struct got {
    unsigned status;
    char *body; /* NUL-terminated */
    size_t len;
    const char *ctype;
    char *filename, *tz;
    bool cut;     /* the stream ended with an error */
    json_t *json; /* when the body is JSON */
};

static void got_free(struct got *g)
{
    free(g->body);
    free(g->filename);
    free(g->tz);
    json_decref(g->json);
    memset(g, 0, sizeof(*g));
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* %XX and '+' decoding, as MHD does for query arguments. */
static void url_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* Runs one request (path may carry "?query"); fills g. */
static unsigned call_full(struct api_fixture *fx, const char *method, const char *url,
                          const char *auth, const char *accept, const char *body, struct got *g)
{
    memset(g, 0, sizeof(*g));
    char *path = xstrdup(url), *query = strchr(path, '?');
    struct exp_kv kv[EXP_API_MAX_PARAMS];
    size_t n = 0;
    if (query) {
        *query++ = '\0';
        for (char *save = NULL, *tok = strtok_r(query, "&", &save); tok && n < EXP_API_MAX_PARAMS;
             tok = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(tok, '=');
            if (eq)
                *eq = '\0';
            url_decode(tok);
            if (eq)
                url_decode(eq + 1);
            kv[n].key = tok;
            kv[n].value = eq ? eq + 1 : NULL;
            n++;
        }
    }
    struct exp_req req = {.method = method,
                          .path = path,
                          .authorization = auth,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .params = kv,
                          .n_params = n,
                          .accept = accept};
    struct exp_resp resp;
    exp_api_handle(fx->api, &req, &resp);
    g->status = resp.status;
    g->ctype = resp.body ? "application/json" : resp.content_type;
    g->filename = resp.filename ? xstrdup(resp.filename) : NULL;
    g->tz = resp.timezone ? xstrdup(resp.timezone) : NULL;
    assert_true(resp.status != 401 || resp.challenge);
    if (resp.body) {
        g->json = json_incref(resp.body);
        g->body = json_dumps(resp.body, JSON_COMPACT);
        g->len = strlen(g->body);
    } else if (resp.text) {
        g->body = xmemdup(resp.text, resp.text_len + 1);
        g->body[resp.text_len] = '\0';
        g->len = resp.text_len;
    } else if (resp.has_fd) {
        g->body = xmalloc(resp.fd_size + 1);
        assert_int_equal(pread(resp.fd, g->body, resp.fd_size, 0), (ssize_t)resp.fd_size);
        g->len = resp.fd_size;
        g->body[g->len] = '\0';
    } else if (resp.stream) {
        size_t cap = 1 << 16;
        g->body = xmalloc(cap + 1);
        for (;;) {
            if (cap - g->len < 4096) {
                cap *= 2;
                g->body = xrealloc(g->body, cap + 1);
            }
            ssize_t k = resp.stream->read(resp.stream->ctx, g->body + g->len, 4096);
            if (k == EXP_STREAM_END)
                break;
            if (k < 0) {
                g->cut = true;
                break;
            }
            assert_true(k > 0 && k <= 4096);
            g->len += (size_t)k;
        }
        g->body[g->len] = '\0';
    }
    if (!resp.body && g->body && (!g->ctype || !strncmp(g->ctype, "application/json", 16)) &&
        !g->cut)
        g->json = json_loadb(g->body, g->len, 0, NULL);
    if (g->status >= 400) {
        assert_non_null(g->json);
        assert_non_null(json_string_value(json_object_get(g->json, "error")));
        assert_non_null(json_string_value(json_object_get(g->json, "detail")));
    }
    exp_resp_clear(&resp);
    free(path);
    return g->status;
}

/* Runs one request; returns the status, *body (caller decrefs) when asked. */
static unsigned call(struct api_fixture *fx, const char *method, const char *path, const char *auth,
                     const char *body, json_t **out)
{
    struct got g;
    unsigned st = call_full(fx, method, path, auth, NULL, body, &g);
    if (st != 204 && strcmp(method, "HEAD"))
        assert_non_null(g.body);
    if (st == 204)
        assert_null(g.body);
    if (out) {
        *out = g.json;
        g.json = NULL;
    }
    got_free(&g);
    return st;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void test_api_auth(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", NULL, NULL, &b), 401);
    assert_string_equal(jstr(b, "error"), "unauthorized");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/bogus", NULL, NULL, NULL), 401);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", "Bearer lm_bad", NULL, NULL), 401);
    assert_int_equal(call(fx, "GET", "/v1/bogus", fx->admin_hdr, NULL, NULL), 404);
    assert_int_equal(call(fx, "GET", "/elsewhere", NULL, NULL, NULL), 404);

    /* another org looks exactly like no org at all */
    json_t *b1, *b2;
    assert_int_equal(call(fx, "GET", "/v1/orgs/other/licenses", fx->oa_hdr, NULL, &b1), 404);
    assert_int_equal(call(fx, "GET", "/v1/orgs/nosuchorg/settings", fx->svc_hdr, NULL, &b2), 404);
    assert_true(json_equal(b1, b2));
    json_decref(b1);
    json_decref(b2);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->other_hdr, "{}", NULL), 404);
    assert_int_equal(
        call(fx, "PUT", "/v1/orgs/acme/settings", fx->svc_hdr, "{\"minor_margin_pct\":1}", &b),
        403);
    assert_string_equal(jstr(b, "error"), "forbidden");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/tokens", fx->oa_hdr, NULL, NULL), 403);
    assert_int_equal(call(fx, "POST", "/v1/tokens", fx->svc_hdr, "{}", NULL), 403);
    assert_int_equal(call(fx, "GET", "/v1/orgs/ac!me/licenses", fx->oa_hdr, NULL, &b), 400);
    assert_non_null(strstr(jstr(b, "detail"), "org"));
    json_decref(b);
    assert_int_equal(call(fx, "DELETE", "/v1/orgs/acme/settings", fx->admin_hdr, NULL, NULL), 405);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/stats", fx->svc_hdr, NULL, &b), 400);
    assert_string_equal(jstr(b, "error"), "invalid parameter");
    assert_string_equal(jstr(b, "detail"), "from: missing (or give period)");
    json_decref(b);
    /* another org's data: the same 404 whatever the endpoint */
    static const char *const reads[] = {"usage", "stats", "sessions", "export", "report"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        char *p = xasprintf("/v1/orgs/other/%s?period=7d&format=csv", reads[i]);
        assert_int_equal(call(fx, "GET", p, fx->oa_hdr, NULL, &b), 404);
        assert_string_equal(jstr(b, "detail"), "no such org");
        json_decref(b);
        free(p);
    }
}

static void test_api_reads(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", fx->svc_hdr, NULL, &b), 200);
    assert_string_equal(jstr(b, "timezone"), "UTC");
    assert_int_equal(json_integer_value(json_object_get(b, "in_use_all")), 2);
    json_t *row = json_array_get(json_object_get(b, "licenses"), 0);
    assert_string_equal(jstr(row, "type"), "creator");
    assert_int_equal(json_integer_value(json_object_get(row, "in_use")), 2);
    assert_true(json_is_array(json_object_get(b, "integrations")));
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/current", fx->oa_hdr, NULL, &b), 200);
    assert_string_equal(jstr(b, "timezone"), "UTC");
    row = json_array_get(json_object_get(b, "sessions"), 0);
    assert_string_equal(jstr(row, "user"), "alice");
    assert_true(json_integer_value(json_object_get(row, "session_length_s")) >= 9);
    json_decref(b);
    /* a new org: the defaults */
    assert_int_equal(call(fx, "GET", "/v1/orgs/fresh/settings", fx->admin_hdr, NULL, &b), 200);
    assert_string_equal(jstr(b, "org"), "fresh");
    assert_string_equal(jstr(b, "timezone"), "UTC");
    assert_int_equal(json_integer_value(json_object_get(b, "user_inactivity_timeout_s")),
                     SETTINGS_DEFAULT_TIMEOUT_S);
    json_decref(b);
}

/* A pipeline far behind (the aggregator shows no change for longer than a
 * PUT waits): a second partial change keeps the first, and GET shows both,
 * also from an exporter restarted meanwhile; once the aggregator has caught
 * up, its settings are read again. */
static void test_api_settings_put_while_behind(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    pthread_mutex_lock(&fx->fake->lock);
    fx->fake->lag = 1000000;
    pthread_mutex_unlock(&fx->fake->lock);
    assert_int_equal(
        call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{\"minor_margin_pct\":20}", &b),
        200);
    json_decref(b);
    api_rebuild(fx, 0, 0); /* an exporter restart: what it journaled is in its store */
    assert_int_equal(
        call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{\"clear_margin_pct\":7}", &b), 200);
    assert_int_equal(json_integer_value(json_object_get(b, "minor_margin_pct")), 20);
    json_decref(b);
    pthread_mutex_lock(&fx->fake->lock);
    assert_null(fx->fake->applied);
    assert_int_equal(fx->fake->journaled->minor_margin_pct, 20);
    assert_int_equal(fx->fake->journaled->clear_margin_pct, 7);
    pthread_mutex_unlock(&fx->fake->lock);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/settings", fx->svc_hdr, NULL, &b), 200);
    assert_int_equal(json_integer_value(json_object_get(b, "minor_margin_pct")), 20);
    assert_int_equal(json_integer_value(json_object_get(b, "clear_margin_pct")), 7);
    json_decref(b);
    /* caught up: the aggregator's answer is used (and the kept copy dropped) */
    pthread_mutex_lock(&fx->fake->lock);
    fx->fake->lag = 0;
    pthread_mutex_unlock(&fx->fake->lock);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/settings", fx->svc_hdr, NULL, &b), 200);
    json_decref(b);
    pthread_mutex_lock(&fx->fake->lock);
    assert_int_equal(fx->fake->applied->clear_margin_pct, 7);
    fx->fake->applied->clear_margin_pct = 9; /* as if changed since, by the pipeline */
    pthread_mutex_unlock(&fx->fake->lock);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/settings", fx->svc_hdr, NULL, &b), 200);
    assert_int_equal(json_integer_value(json_object_get(b, "clear_margin_pct")), 9);
    json_decref(b);
}

static void test_api_settings_put(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    pthread_mutex_lock(&fx->fake->lock);
    fx->fake->lag = 3; /* the stages take a few polls to show the change */
    pthread_mutex_unlock(&fx->fake->lock);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr,
                          "{\"timezone\":\"Europe/Berlin\",\"licenses\":[{\"type\":\"creator\","
                          "\"owned\":50,\"expires\":\"2099-06-30\"}],\"webhooks\":[{\"url\":"
                          "\"https://h.example/x\",\"secret\":\"s3cret\"}]}",
                          &b),
                     200);
    assert_string_equal(jstr(b, "timezone"), "Europe/Berlin");
    assert_string_equal(jstr(b, "org"), "acme");
    char *dump = json_dumps(b, 0);
    assert_null(strstr(dump, "s3cret"));
    free(dump);
    json_decref(b);
    /* a GET right after sees it */
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/settings", fx->svc_hdr, NULL, &b), 200);
    assert_string_equal(jstr(b, "timezone"), "Europe/Berlin");
    json_t *lic = json_array_get(json_object_get(b, "licenses"), 0);
    assert_int_equal(json_integer_value(json_object_get(lic, "owned")), 50);
    assert_string_equal(jstr(json_array_get(json_object_get(b, "webhooks"), 0), "secret"),
                        SETTINGS_SECRET_MASK);
    json_decref(b);
    /* a partial change keeps the rest, the masked secret included */
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->admin_hdr,
                          "{\"minor_margin_pct\":15,\"webhooks\":[{\"url\":\"https://h.example/x\","
                          "\"secret\":\"" SETTINGS_SECRET_MASK "\"}]}",
                          &b),
                     200);
    assert_int_equal(json_integer_value(json_object_get(b, "minor_margin_pct")), 15);
    assert_string_equal(jstr(b, "timezone"), "Europe/Berlin");
    json_decref(b);
    pthread_mutex_lock(&fx->fake->lock);
    assert_string_equal(fx->fake->applied->webhooks[0]->secret, "s3cret");
    assert_int_equal(fx->fake->applied->minor_margin_pct, 15);
    pthread_mutex_unlock(&fx->fake->lock);
    /* the licenses view now uses the org's zone and settings */
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", fx->svc_hdr, NULL, &b), 200);
    assert_string_equal(jstr(b, "timezone"), "Europe/Berlin");
    json_t *row = json_array_get(json_object_get(b, "licenses"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "owned")), 50);
    assert_int_equal(json_integer_value(json_object_get(row, "free")), 48);
    assert_string_equal(jstr(row, "expiration_state"), "ok");
    json_decref(b);

    /* validation names the field; nothing is journaled */
    uint64_t seq = fx->fake->seq;
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr,
                          "{\"user_inactivity_timeout_s\":5}", &b),
                     400);
    assert_string_equal(jstr(b, "error"), "invalid setting");
    assert_int_equal(strncmp(jstr(b, "detail"), "user_inactivity_timeout_s:", 26), 0);
    json_decref(b);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{\"bogus\":1}", &b),
                     400);
    assert_int_equal(strncmp(jstr(b, "detail"), "bogus:", 6), 0);
    json_decref(b);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "[1]", NULL), 400);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{", &b), 400);
    assert_string_equal(jstr(b, "error"), "invalid json");
    json_decref(b);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, NULL, NULL), 400);
    assert_int_equal(
        call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{\"org\":\"other\"}", NULL), 400);
    assert_int_equal(fx->fake->seq, seq);

    struct exp_req big = {.method = "PUT",
                          .path = "/v1/orgs/acme/settings",
                          .authorization = fx->oa_hdr,
                          .body_too_big = true};
    struct exp_resp resp;
    exp_api_handle(fx->api, &big, &resp);
    assert_int_equal(resp.status, 413);
    exp_resp_clear(&resp);
}

static void test_api_unavailable(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    atomic_store(&fx->fake->mode, FAKE_SILENT);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", fx->svc_hdr, NULL, &b), 503);
    assert_string_equal(jstr(b, "error"), "unavailable");
    assert_string_equal(jstr(b, "detail"), "aggregator did not answer");
    json_decref(b);
    assert_int_equal(call(fx, "PUT", "/v1/orgs/acme/settings", fx->oa_hdr, "{}", NULL), 503);
    atomic_store(&fx->fake->mode, FAKE_NORMAL);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", fx->svc_hdr, NULL, NULL), 200);
}

static void test_api_tokens(void **state)
{
    struct api_fixture *fx = *state;
    json_t *b;
    assert_int_equal(call(fx, "POST", "/v1/tokens", fx->admin_hdr,
                          "{\"org\":\"beta\",\"role\":\"service\"}", &b),
                     201);
    char *id = xstrdup(jstr(b, "id"));
    char *hdr = xasprintf("Bearer %s", jstr(b, "token"));
    assert_string_equal(jstr(b, "org"), "beta");
    assert_string_equal(jstr(b, "role"), "service");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs/beta/licenses", hdr, NULL, NULL), 200);
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/licenses", hdr, NULL, NULL), 404);

    assert_int_equal(call(fx, "GET", "/v1/tokens", fx->admin_hdr, NULL, &b), 200);
    json_t *arr = json_object_get(b, "tokens");
    assert_int_equal(json_array_size(arr), 4);
    size_t i;
    json_t *t;
    bool seen = false;
    json_array_foreach(arr, i, t)
    {
        assert_null(json_object_get(t, "token"));
        assert_non_null(jstr(t, "created"));
        seen |= !strcmp(jstr(t, "id"), id);
    }
    assert_true(seen);
    json_decref(b);

    char *path = xasprintf("/v1/tokens/%s", id);
    assert_int_equal(call(fx, "DELETE", path, fx->admin_hdr, NULL, NULL), 204);
    assert_int_equal(call(fx, "DELETE", path, fx->admin_hdr, NULL, NULL), 404);
    assert_int_equal(call(fx, "GET", "/v1/orgs/beta/licenses", hdr, NULL, NULL), 401);

    assert_int_equal(
        call(fx, "POST", "/v1/tokens", fx->admin_hdr, "{\"org\":\"a!\",\"role\":\"service\"}", &b),
        400);
    assert_int_equal(strncmp(jstr(b, "detail"), "org:", 4), 0);
    json_decref(b);
    assert_int_equal(
        call(fx, "POST", "/v1/tokens", fx->admin_hdr, "{\"org\":\"a\",\"role\":\"admin\"}", &b),
        400);
    assert_int_equal(strncmp(jstr(b, "detail"), "role:", 5), 0);
    json_decref(b);
    assert_int_equal(call(fx, "POST", "/v1/tokens", fx->admin_hdr, "\"x\"", NULL), 400);
    assert_int_equal(call(fx, "POST", "/v1/tokens", fx->admin_hdr, NULL, NULL), 400);
    free(path);
    free(hdr);
    free(id);
}

/* ---------------------------------------------------------------- read endpoints */

/* The org acme in Europe/Berlin with a creator license, as the fake shows it. */
static void fake_org(struct api_fixture *fx)
{
    Licmon__V1__OrgSettings *s = settings_from(
        "acme", "{\"timezone\":\"Europe/Berlin\",\"integrations\":[\"Jira\"],\"licenses\":["
                "{\"type\":\"creator\",\"owned\":10,\"expires\":\"2026-04-18\"},"
                "{\"type\":\"reviewer\",\"owned\":5}]}");
    pthread_mutex_lock(&fx->fake->lock);
    settings_free(&fx->fake->applied);
    fx->fake->applied = s;
    pthread_mutex_unlock(&fx->fake->lock);
}

static int orgs_queries(struct api_fixture *fx)
{
    pthread_mutex_lock(&fx->fake->lock);
    int n = fx->fake->orgs_queries;
    pthread_mutex_unlock(&fx->fake->lock);
    return n;
}

/* "org=timezone,..." of a GET /v1/orgs answer. */
static void orgs_text(json_t *b, char *out, size_t len)
{
    json_t *arr = json_object_get(b, "orgs");
    assert_true(json_is_array(arr));
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        assert_int_equal(json_object_size(o), 2);
        snprintf(out + strlen(out), len - strlen(out), "%s%s=%s", i ? "," : "", jstr(o, "org"),
                 jstr(o, "timezone"));
    }
}

static void test_api_orgs(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx); /* acme is in Europe/Berlin, the others in UTC */
    json_t *b;
    char text[256];
    assert_int_equal(call(fx, "GET", "/v1/orgs", NULL, NULL, &b), 401);
    assert_string_equal(jstr(b, "error"), "unauthorized");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs", "Bearer lm_bad", NULL, NULL), 401);

    /* the administrator: every org the aggregator knows, in its order */
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->admin_hdr, NULL, &b), 200);
    orgs_text(b, text, sizeof(text));
    assert_string_equal(text, "acme=Europe/Berlin,other=UTC,zed=UTC");
    json_decref(b);
    assert_int_equal(orgs_queries(fx), 1);

    /* any other token: its own org, and the aggregator's list is not asked */
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->oa_hdr, NULL, &b), 200);
    orgs_text(b, text, sizeof(text));
    assert_string_equal(text, "acme=Europe/Berlin");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->svc_hdr, NULL, &b), 200);
    orgs_text(b, text, sizeof(text));
    assert_string_equal(text, "acme=Europe/Berlin");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->other_hdr, NULL, &b), 200);
    orgs_text(b, text, sizeof(text));
    assert_string_equal(text, "other=UTC");
    json_decref(b);
    assert_int_equal(orgs_queries(fx), 1);

    assert_int_equal(call(fx, "POST", "/v1/orgs", fx->admin_hdr, "{}", &b), 405);
    assert_string_equal(jstr(b, "error"), "method not allowed");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs/", fx->admin_hdr, NULL, NULL), 404);

    /* the aggregator down: 503, for the list and for the zone alike */
    atomic_store(&fx->fake->mode, FAKE_SILENT);
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->admin_hdr, NULL, &b), 503);
    assert_string_equal(jstr(b, "error"), "unavailable");
    json_decref(b);
    assert_int_equal(call(fx, "GET", "/v1/orgs", fx->oa_hdr, NULL, NULL), 503);
    atomic_store(&fx->fake->mode, FAKE_NORMAL);
}

static struct fake_asked asked(struct api_fixture *fx)
{
    pthread_mutex_lock(&fx->fake->lock);
    struct fake_asked a = fx->fake->asked;
    pthread_mutex_unlock(&fx->fake->lock);
    return a;
}

static json_t *rows_of(struct got *g)
{
    json_t *rows = json_object_get(g->json, "rows");
    assert_true(json_is_array(rows));
    return rows;
}

static void test_api_usage_days(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    /* 2026-03-29 10:00 UTC: Sunday of Berlin's spring-forward, 12:00 CEST */
    atomic_store(&test_clock, INT64_C(1774778400000));
    struct got g;
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/usage?type=creator&period=7d", fx->svc_hdr,
                               NULL, NULL, &g),
                     200);
    assert_string_equal(jstr(g.json, "timezone"), "Europe/Berlin");
    assert_string_equal(jstr(g.json, "granularity"), "day");
    assert_string_equal(jstr(g.json, "from"), "2026-03-23");
    assert_string_equal(jstr(g.json, "to"), "2026-03-29");
    assert_true(json_is_false(json_object_get(g.json, "clamped")));
    struct fake_asked a = asked(fx);
    assert_int_equal(a.kind, LICMON__V1__QUERY_KIND__USAGE);
    assert_int_equal(a.granularity, LICMON__V1__GRANULARITY__DAY);
    assert_string_equal(a.type, "creator");
    assert_string_equal(a.from, "2026-03-23");
    assert_string_equal(a.to, "2026-03-29");
    json_t *rows = rows_of(&g);
    assert_int_equal(json_array_size(rows), 7);
    json_t *r = json_array_get(rows, 0);
    static const char *const keys[] = {"date",    "peak",         "users",      "logins",
                                       "denials", "denied_users", "downgrades", "downgraded_users"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_object_get(r, keys[i]))
            fail_msg("day row without %s", keys[i]);
    assert_string_equal(jstr(r, "date"), "2026-03-23");
    assert_null(json_object_get(r, "hour"));
    got_free(&g);

    /* today alone, the default type */
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/usage?period=today", fx->oa_hdr, NULL, NULL, &g), 200);
    assert_int_equal(json_array_size(rows_of(&g)), 1);
    assert_string_equal(jstr(g.json, "type"), "all");
    assert_string_equal(asked(fx).type, "all");
    got_free(&g);

    /* reaching into the future: clamped to today, and said so */
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/usage?granularity=day&from=2026-03-28&to=2027-01-01",
                               fx->oa_hdr, NULL, NULL, &g),
                     200);
    assert_true(json_is_true(json_object_get(g.json, "clamped")));
    assert_string_equal(jstr(g.json, "to"), "2026-03-29");
    assert_string_equal(jstr(g.json, "requested_to"), "2027-01-01");
    assert_int_equal(json_array_size(rows_of(&g)), 2);
    got_free(&g);

    /* longer than retention (1830 days of day rows): what exists */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/usage?from=2010-01-01&to=2026-03-29",
                               fx->oa_hdr, NULL, NULL, &g),
                     200);
    assert_true(json_is_true(json_object_get(g.json, "clamped")));
    assert_int_equal(json_array_size(rows_of(&g)), 1830);
    got_free(&g);

    /* nothing of it exists: no rows, the aggregator is not even asked */
    int n = asked(fx).n;
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/usage?from=2026-04-01&to=2026-04-02",
                               fx->oa_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(json_array_size(rows_of(&g)), 0);
    assert_string_equal(jstr(g.json, "from"), "2026-04-01");
    assert_int_equal(asked(fx).n, n);
    got_free(&g);

    /* the zone changes behind the exporter's back (no PUT through it): the
     * remembered zone is checked against every answer, never trusted */
    Licmon__V1__OrgSettings *ny = settings_from(
        "acme", "{\"timezone\":\"America/New_York\",\"licenses\":[{\"type\":\"creator\","
                "\"owned\":10}]}");
    pthread_mutex_lock(&fx->fake->lock);
    settings_free(&fx->fake->applied);
    fx->fake->applied = ny;
    pthread_mutex_unlock(&fx->fake->lock);
    atomic_store(&test_clock, INT64_C(1774749600000)); /* 2026-03-29 04:00 CEST, 03-28 in NY */
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/usage?period=today", fx->oa_hdr, NULL, NULL, &g), 200);
    assert_string_equal(jstr(g.json, "timezone"), "America/New_York");
    assert_string_equal(jstr(g.json, "from"), "2026-03-28");
    assert_string_equal(asked(fx).from, "2026-03-28");
    got_free(&g);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/stats?period=today", fx->oa_hdr, NULL, NULL, &g), 200);
    assert_string_equal(jstr(g.json, "timezone"), "America/New_York");
    assert_string_equal(asked(fx).to, "2026-03-28");
    got_free(&g);
    fake_org(fx);
    atomic_store(&test_clock, INT64_C(1774778400000));

    /* 400s name the parameter */
    static const struct {
        const char *q, *detail;
    } bad[] = {{"period=8d", "period:"},
               {"from=2026-03-01&to=2026-02-01", "to: is before from"},
               {"from=20260301&to=2026-03-02", "from:"},
               {"period=7d&type=ALL", "type:"},
               {"period=7d&granularity=weekly", "granularity:"},
               {"period=7d&color=red", "color: unknown parameter"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *url = xasprintf("/v1/orgs/acme/usage?%s", bad[i].q);
        assert_int_equal(call_full(fx, "GET", url, fx->oa_hdr, NULL, NULL, &g), 400);
        assert_string_equal(jstr(g.json, "error"), "invalid parameter");
        if (strncmp(jstr(g.json, "detail"), bad[i].detail, strlen(bad[i].detail)))
            fail_msg("%s: %s", bad[i].q, jstr(g.json, "detail"));
        got_free(&g);
        free(url);
    }
}

/* licenses, current, settings, orgs and tokens read no parameter: one
 * given is a 400 naming it, not ignored (current?type=creator would answer
 * every type), and a PUT with one changes nothing. */
static void test_api_no_params_there(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    static const struct {
        const char *method, *url, *detail;
    } bad[] = {
        {"GET", "/v1/orgs/acme/current?type=creator", "type: not a parameter"},
        {"GET", "/v1/orgs/acme/licenses?bogus=1", "bogus: unknown parameter"},
        {"GET", "/v1/orgs/acme/settings?period=7d", "period: not a parameter"},
        {"PUT", "/v1/orgs/acme/settings?dry_run=1", "dry_run: unknown parameter"},
        {"GET", "/v1/orgs?x", "x: unknown parameter"},
        {"GET", "/v1/tokens?all=1", "all: unknown parameter"},
    };
    struct got g;
    uint64_t journaled = fx->fake->journaled_seq;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *body = !strcmp(bad[i].method, "PUT") ? "{\"minor_margin_pct\":20}" : NULL;
        assert_int_equal(call_full(fx, bad[i].method, bad[i].url, fx->admin_hdr, NULL, body, &g),
                         400);
        assert_string_equal(jstr(g.json, "error"), "invalid parameter");
        if (strncmp(jstr(g.json, "detail"), bad[i].detail, strlen(bad[i].detail)))
            fail_msg("%s: %s", bad[i].url, jstr(g.json, "detail"));
        got_free(&g);
    }
    assert_int_equal(fx->fake->journaled_seq, journaled); /* the PUT took nothing */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/current", fx->oa_hdr, NULL, NULL, &g),
                     200);
    got_free(&g);
}

static void test_api_usage_hours_minutes(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    atomic_store(&test_clock, INT64_C(1774778400000)); /* 2026-03-29 12:00 CEST */
    struct got g;
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/usage?granularity=hour&date=2026-03-29&type=creator",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_string_equal(jstr(g.json, "date"), "2026-03-29");
    struct fake_asked a = asked(fx);
    assert_int_equal(a.granularity, LICMON__V1__GRANULARITY__HOUR);
    assert_string_equal(a.date, "2026-03-29");
    json_t *rows = rows_of(&g);
    /* hours that have not begun are left out: 00:00 .. 12:00 local (the fake
     * lays 24 one-hour rows from local midnight) */
    assert_int_equal(json_array_size(rows), 12);
    assert_string_equal(jstr(json_array_get(rows, 0), "hour"), "2026-03-29T00:00+01:00");
    assert_string_equal(jstr(json_array_get(rows, 2), "hour"), "2026-03-29T03:00+02:00");
    got_free(&g);

    /* a day in the future: none */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/usage?granularity=hour&date=2026-03-30",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(json_array_size(rows_of(&g)), 0);
    got_free(&g);

    /* the repeated hour of the fall-back, by its label: the second instance */
    atomic_store(&test_clock, INT64_C(1793520000000)); /* 2026-11-01 */
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/usage?granularity=minute&hour=2026-10-25T02:00%2B01:00",
                  fx->svc_hdr, NULL, NULL, &g),
        200);
    a = asked(fx);
    assert_int_equal(a.granularity, LICMON__V1__GRANULARITY__MINUTE);
    assert_string_equal(a.date, "2026-10-25");
    assert_int_equal(a.hour, 102);
    rows = rows_of(&g);
    assert_int_equal(json_array_size(rows), 60);
    json_t *m = json_array_get(rows, 0);
    assert_string_equal(jstr(m, "minute"), "2026-10-25T02:00+01:00");
    static const char *const keys[] = {"in_use_end",       "logouts", "user_timeouts",
                                       "license_timeouts", "peak",    "users"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(m, keys[i]));
    assert_int_equal(json_integer_value(json_object_get(g.json, "hour")), 2);
    got_free(&g);
    /* the plain hour number: the first instance ('+' unescaped arrives as ' ') */
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/usage?granularity=minute&date=2026-10-25&hour=2",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(asked(fx).hour, 2);
    got_free(&g);
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/usage?granularity=minute&hour=2026-10-25T02:00+02:00",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(asked(fx).hour, 2);
    got_free(&g);
    /* a label that never happened there */
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/usage?granularity=minute&hour=2026-10-25T02:00%2B05:00",
                  fx->svc_hdr, NULL, NULL, &g),
        400);
    assert_int_equal(strncmp(jstr(g.json, "detail"), "hour:", 5), 0);
    got_free(&g);
    /* an hour the clocks skip (Berlin, 2026-03-29 02:00), by number too */
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/usage?granularity=minute&date=2026-03-29&hour=2",
                               fx->svc_hdr, NULL, NULL, &g),
                     400);
    assert_string_equal(jstr(g.json, "detail"), "hour: 02:00 does not occur on 2026-03-29 in "
                                                "Europe/Berlin (the clocks skip it)");
    got_free(&g);
}

static void test_api_stats(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    atomic_store(&test_clock, INT64_C(1774778400000));
    struct got g;
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/stats?type=creator&period=30d&threshold_pct=50",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    struct fake_asked a = asked(fx);
    assert_int_equal(a.kind, LICMON__V1__QUERY_KIND__STATS);
    assert_int_equal(a.threshold_pct, 50);
    assert_string_equal(a.from, "2026-02-28");
    assert_string_equal(a.to, "2026-03-29");
    json_t *j = g.json;
    assert_string_equal(jstr(j, "timezone"), "Europe/Berlin");
    assert_string_equal(jstr(j, "type"), "creator");
    static const char *const cards[] = {"average_daily_usage", "peak_usage",
                                        "days_over_threshold", "users_denied",
                                        "users_downgraded",    "license_expiration"};
    for (size_t i = 0; i < sizeof(cards) / sizeof(cards[0]); i++)
        assert_non_null(jstr(json_object_get(j, cards[i]), "state"));
    assert_int_equal(json_integer_value(json_object_get(j, "threshold_pct")), 50);
    assert_int_equal(json_integer_value(json_object_get(j, "threshold_count")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "owned")), 10);
    assert_string_equal(jstr(json_object_get(j, "peak_usage"), "at"), "2026-03-29T10:00+02:00");
    assert_true(json_is_integer(json_object_get(json_object_get(j, "current_usage"), "free")));
    json_t *ex = json_object_get(j, "license_expiration");
    assert_string_equal(jstr(ex, "expires"), "2026-04-18");
    assert_string_equal(jstr(ex, "state"), "major");
    got_free(&g);
    /* /licenses counts the days left from the same "now" as /stats */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/licenses", fx->svc_hdr, NULL, NULL, &g),
                     200);
    json_t *lic = json_array_get(json_object_get(g.json, "licenses"), 0);
    assert_string_equal(jstr(lic, "type"), "creator");
    assert_int_equal(json_integer_value(json_object_get(lic, "days_left")), 20);
    got_free(&g);
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/stats?period=7d&threshold_pct=0",
                               fx->svc_hdr, NULL, NULL, &g),
                     400);
    assert_int_equal(strncmp(jstr(g.json, "detail"), "threshold_pct:", 14), 0);
    got_free(&g);
}

static void set_sessions(struct api_fixture *fx, uint64_t n)
{
    pthread_mutex_lock(&fx->fake->lock);
    fx->fake->n_sessions = n;
    pthread_mutex_unlock(&fx->fake->lock);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_api_sessions_streamed(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    api_rebuild(fx, 0, 700);
    set_sessions(fx, 5000);
    struct got g;
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/sessions?period=365d&user=a%2Cb",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    struct fake_asked a = asked(fx);
    assert_int_equal(a.kind, LICMON__V1__QUERY_KIND__SESSIONS);
    assert_int_equal(a.max_rows, 700);
    assert_string_equal(a.user, "a,b"); /* forwarded; the fake ignores it */
    assert_string_equal(g.tz, "Europe/Berlin");
    assert_true(json_is_array(g.json));
    assert_int_equal(json_array_size(g.json), 5000);
    for (size_t i = 0; i < 5000; i += 777) {
        json_t *s = json_array_get(g.json, i);
        char id[16];
        snprintf(id, sizeof(id), "s%06zu", i);
        assert_string_equal(jstr(s, "session_id"), id);
        assert_string_equal(jstr(s, "user"), fake_users[i % 10]);
    }
    json_t *open = json_array_get(g.json, 0);
    assert_true(json_is_null(json_object_get(open, "end")));
    assert_true(json_is_null(json_object_get(open, "requested_type")));
    assert_string_equal(jstr(open, "end_reason"), "open");
    got_free(&g);

    /* NDJSON: one object a line */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr,
                               "application/x-ndjson", NULL, &g),
                     200);
    assert_string_equal(g.ctype, "application/x-ndjson");
    assert_int_equal(count_lines(g.body), 5000);
    char *line2 = strchr(g.body, '\n') + 1;
    json_t *one = json_loadb(line2, (size_t)(strchr(line2, '\n') - line2), 0, NULL);
    assert_string_equal(jstr(one, "session_id"), "s000001");
    assert_string_equal(jstr(one, "end_reason"), "manual_logout");
    json_decref(one);
    got_free(&g);

    /* none at all */
    set_sessions(fx, 0);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr, NULL, NULL, &g), 200);
    assert_int_equal(json_array_size(g.json), 0);
    got_free(&g);

    /* the aggregator dies between chunks: the stream is cut, never quietly short */
    set_sessions(fx, 5000);
    atomic_store(&fx->fake->mode, FAKE_SESSIONS_DIE);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr, NULL, NULL, &g), 200);
    assert_true(g.cut);
    got_free(&g);
    /* ...or before the first: a 503 */
    atomic_store(&fx->fake->mode, FAKE_SILENT);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr, NULL, NULL, &g), 503);
    got_free(&g);
    /* a record of another org is never passed on */
    atomic_store(&fx->fake->mode, FAKE_SESSIONS_FOREIGN);
    set_sessions(fx, 10);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr, NULL, NULL, &g), 502);
    assert_null(strstr(g.body, "\"other\""));
    got_free(&g);
    set_sessions(fx, 1000);
    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/sessions?period=7d", fx->svc_hdr, NULL, NULL, &g), 200);
    assert_true(g.cut);
    assert_null(strstr(g.body, "\"other\""));
    got_free(&g);
    atomic_store(&fx->fake->mode, FAKE_NORMAL);
}

static void test_api_export_csv_json(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    api_rebuild(fx, 0, 300);
    set_sessions(fx, 1000);
    atomic_store(&test_clock, INT64_C(1774778400000));
    struct got g;
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/export?format=csv&from=2026-03-01&to=2026-03-29",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(strncmp(g.ctype, "text/csv", 8), 0);
    assert_string_equal(g.filename, "licmon-acme-all-2026-03-01_2026-03-29.csv");
    assert_int_equal(strncmp(g.body, "session_id,org,user,", 20), 0);
    /* hostile names: quoted (a tab too), and a leading = + - @ tab made inert */
    assert_non_null(strstr(g.body, ",acme,'=1+1,"));
    assert_non_null(strstr(g.body, ",acme,\"a,b\","));
    assert_non_null(strstr(g.body, ",acme,\"say \"\"hi\"\"\","));
    assert_non_null(strstr(g.body, ",acme,\"two\nlines\","));
    assert_non_null(strstr(g.body, ",acme,'@SUM(A1),"));
    assert_non_null(strstr(g.body, ",acme,'-2,"));
    assert_non_null(strstr(g.body, ",acme,'+41 79,"));
    assert_non_null(strstr(g.body, ",acme,\"'\ttab\","));
    /* 1000 records + header; each record ends with CRLF */
    size_t crlf = 0;
    for (const char *p = g.body; (p = strstr(p, "\r\n")); p += 2)
        crlf++;
    assert_int_equal(crlf, 1001);
    struct fake_asked a = asked(fx);
    assert_string_equal(a.from, "2026-03-01");
    assert_string_equal(a.to, "2026-03-29");
    got_free(&g);

    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=json&period=7d&type=creator",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_non_null(g.json);
    assert_string_equal(jstr(g.json, "timezone"), "Europe/Berlin");
    assert_string_equal(jstr(g.json, "type"), "creator");
    assert_int_equal(json_array_size(json_object_get(g.json, "sessions")), 1000);
    json_t *daily = json_object_get(g.json, "daily");
    assert_int_equal(json_array_size(daily), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(daily, 0), "rows")), 7);
    assert_non_null(json_object_get(json_object_get(g.json, "stats"), "peak_usage"));
    assert_non_null(json_object_get(json_object_get(g.json, "licenses"), "licenses"));
    got_free(&g);

    /* a period longer than sessions are kept (400 days): the day rows cover
     * it, the sessions start where they are kept, and the export says so */
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/export?format=json&from=2025-01-01&to=2026-03-29",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_string_equal(jstr(g.json, "from"), "2025-01-01");
    assert_string_equal(jstr(g.json, "sessions_from"), "2025-02-23");
    assert_string_equal(jstr(g.json, "sessions_to"), "2026-03-29");
    assert_string_equal(asked(fx).from, "2025-02-23"); /* the sessions asked for */
    got_free(&g);
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/export?format=csv&from=2025-01-01&to=2026-03-29",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_string_equal(g.filename, "licmon-acme-all-2025-02-23_2026-03-29.csv");
    got_free(&g);

    /* type all: a daily block for all and for each license type */
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=json&period=today",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    daily = json_object_get(g.json, "daily");
    assert_int_equal(json_array_size(daily), 3); /* all, creator, reviewer */
    assert_string_equal(jstr(json_array_get(daily, 0), "type"), "all");
    got_free(&g);

    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=ndjson&period=7d",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(count_lines(g.body), 1000);
    got_free(&g);

    assert_int_equal(
        call_full(fx, "GET", "/v1/orgs/acme/export?period=7d", fx->svc_hdr, NULL, NULL, &g), 400);
    assert_string_equal(jstr(g.json, "detail"), "format: missing (xlsx, csv, json or ndjson)");
    got_free(&g);
}

/* How many worksheets an xlsx (a zip) holds, from its central directory. */
static int xlsx_sheets(const struct got *g)
{
    int n = 0;
    for (int i = 1; i < 64; i++) {
        char name[40];
        snprintf(name, sizeof(name), "xl/worksheets/sheet%d.xml", i);
        if (memmem(g->body, g->len, name, strlen(name)))
            n = i;
    }
    return n;
}

static void test_api_export_xlsx(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    atomic_store(&test_clock, INT64_C(1774778400000));
    set_sessions(fx, 1000);
    api_rebuild(fx, 0, 300);
    struct got g;
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=xlsx&period=30d",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(strncmp(g.ctype, "application/vnd.openxmlformats", 30), 0);
    assert_string_equal(g.filename, "licmon-acme-all-2026-02-28_2026-03-29.xlsx");
    assert_true(g.len > 1000);
    assert_memory_equal(g.body, "PK", 2);
    assert_int_equal(xlsx_sheets(&g), 4); /* Summary, Daily usage, Sessions, Licenses */
    got_free(&g);
    /* 1000 sessions at 400 rows a sheet (399 sessions + the header): 3 sheets */
    api_rebuild(fx, 400, 300);
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=xlsx&period=30d",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_int_equal(xlsx_sheets(&g), 6);
    got_free(&g);
    /* no temp file is left behind */
    char *cmd = xasprintf("ls '%s' | grep -c licmon-export", fx->dir);
    FILE *p = popen(cmd, "r");
    int left = -1;
    assert_int_equal(fscanf(p, "%d", &left), 1);
    pclose(p);
    free(cmd);
    assert_int_equal(left, 0);
    /* the aggregator dies midway: an error, not a short file */
    atomic_store(&fx->fake->mode, FAKE_SESSIONS_DIE);
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/export?format=xlsx&period=30d",
                               fx->svc_hdr, NULL, NULL, &g),
                     503);
    got_free(&g);
    atomic_store(&fx->fake->mode, FAKE_NORMAL);
    /* HEAD: the headers without the work */
    int n = asked(fx).n;
    assert_int_equal(call_full(fx, "HEAD", "/v1/orgs/acme/export?format=xlsx&period=30d",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_null(g.body);
    assert_int_equal(asked(fx).n, n);
    got_free(&g);
}

/* A connection to port with one request written on it, and its answer
 * read up to the end of its headers (into head). */
static int http_raw(uint16_t port, const char *request, char *head, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t n = 0;
    head[0] = '\0';
    while (n + 1 < len && !strstr(head, "\r\n\r\n")) {
        ssize_t r = read(fd, head + n, len - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        head[n] = '\0';
    }
    return fd;
}

/* An export refused (no token) leaves its connection on the idle timeout,
 * not on the 15 min of an export being made: connections holding one
 * unauthenticated request each could otherwise keep every slot. */
static void test_http_refused_export_keeps_the_idle_timeout(void **state)
{
    struct api_fixture *fx = *state;
    struct exp_http *h = exp_http_start("127.0.0.1:0", fx->api, 2, 1);
    assert_non_null(h);
    char head[4096];
    int fd = http_raw(exp_http_port(h),
                      "GET /v1/orgs/acme/export?format=csv&from=2026-01-01&to=2026-01-02 "
                      "HTTP/1.1\r\nHost: t\r\n\r\n",
                      head, sizeof(head));
    assert_non_null(strstr(head, "HTTP/1.1 401 "));
    struct timeval tv = {.tv_sec = 8};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    int64_t t0 = time_mono_ms();
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        ; /* the rest of the answer, then the end: the server closed it */
    assert_int_equal(r, 0);
    assert_true(time_mono_ms() - t0 < 6000);
    close(fd);
    exp_http_stop(&h);
}

static void test_api_report(void **state)
{
    struct api_fixture *fx = *state;
    fake_org(fx);
    atomic_store(&test_clock, INT64_C(1774778400000));
    struct got g;
    assert_int_equal(call_full(fx, "GET",
                               "/v1/orgs/acme/report?type=creator&period=30d&paper=letter",
                               fx->svc_hdr, NULL, NULL, &g),
                     200);
    assert_string_equal(g.ctype, "text/html; charset=utf-8");
    assert_string_equal(g.tz, "Europe/Berlin");
    assert_non_null(strstr(g.body, "<svg"));
    assert_non_null(strstr(g.body, "Europe/Berlin"));
    assert_non_null(strstr(g.body, "2026-02-28"));
    assert_non_null(strstr(g.body, "owned 10"));
    assert_non_null(strstr(g.body, "Major</span>"));
    assert_non_null(strstr(g.body, "@page{size:letter"));
    assert_non_null(strstr(g.body, "Jira"));
    assert_null(strstr(g.body, "<script"));
    got_free(&g);
    assert_int_equal(call_full(fx, "GET", "/v1/orgs/acme/report?period=30d&paper=a5", fx->svc_hdr,
                               NULL, NULL, &g),
                     400);
    got_free(&g);
}

struct pool_arg {
    struct exp_upstream *u;
    int ok;
};

static void *pool_worker(void *arg)
{
    struct pool_arg *pa = arg;
    for (int i = 0; i < 40; i++) {
        Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
        Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
        q.kind = LICMON__V1__QUERY_KIND__LICENSES;
        q.org = "acme";
        req.body_case = LICMON__V1__REQUEST__BODY_QUERY;
        req.query = &q;
        Licmon__V1__Reply *rep = NULL;
        if (exp_upstream_call(pa->u, &req, 2000, &rep) == EXP_UP_OK && rep->id == req.id)
            pa->ok++;
        PB_FREE(reply, rep);
    }
    return NULL;
}

static void upstreams_fail(void)
{
    struct exp_upstream *agg = exp_upstream_new("aggregator", "ipc:///nonexistent/a", 100);
    struct exp_upstream *ses = exp_upstream_new("sessionizer", "ipc:///nonexistent/s", 100);
    struct exp_resp resp = {0};
    for (int i = 0; i < 300; i++) {
        exp_api_upstream_failed(agg, EXP_UP_TIMEOUT, NULL, &resp);
        assert_int_equal(resp.status, 503);
        exp_resp_clear(&resp);
    }
    exp_api_upstream_failed(ses, EXP_UP_TIMEOUT, NULL, &resp);
    exp_resp_clear(&resp);
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    rep.error = "no such org";
    exp_api_upstream_failed(agg, EXP_UP_OK, &rep, &resp);
    assert_int_equal(resp.status, 502);
    exp_resp_clear(&resp);
    exp_api_upstream_failed(agg, EXP_UP_TIMEOUT, NULL, &resp);
    exp_resp_clear(&resp);
    exp_upstream_free(&agg);
    exp_upstream_free(&ses);
}

/* While a program is down every request says so: one warning a minute per
 * program and way of failing, so one program down does not hide another. */
static void test_upstream_failures_logged_per_program(void **state)
{
    (void)state;
    char *out = stderr_of(upstreams_fail);
    assert_int_equal(lines_of(out), 3);
    assert_non_null(strstr(out, "answering 503: aggregator did not answer\""));
    assert_non_null(strstr(out, "answering 503: sessionizer did not answer\""));
    assert_non_null(strstr(out, "answering 502: aggregator: no such org\""));
    free(out);
}

static void test_upstream_pool_threads(void **state)
{
    (void)state;
    struct fake *f = fake_start("inproc://pool-agg", "inproc://pool-ingest");
    struct exp_upstream *u = exp_upstream_new_pool("aggregator", "inproc://pool-agg", 2000, 2);
    pthread_t th[4];
    struct pool_arg args[4] = {{u, 0}, {u, 0}, {u, 0}, {u, 0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pool_worker, &args[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 40);
    }
    exp_upstream_free(&u);
    fake_stop(&f);
}

int main(void)
{
    log_init("test_exporter");
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_paths),
        cmocka_unit_test(test_route_not_found),
        cmocka_unit_test(test_route_methods),
        cmocka_unit_test(test_route_bad_params),
        cmocka_unit_test(test_auth_matrix),
        cmocka_unit_test(test_auth_orgs),
        cmocka_unit_test(test_auth_bearer),
        cmocka_unit_test(test_expiration_states),
        cmocka_unit_test(test_days_left),
        cmocka_unit_test(test_view_licenses),
        cmocka_unit_test(test_view_current),
        cmocka_unit_test(test_token_hash),
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_token_list_cut_by_damage),
        cmocka_unit_test(test_admin_token_file),
        cmocka_unit_test(test_upstream_timeout_and_stale),
        cmocka_unit_test(test_internal_status),
        cmocka_unit_test_setup_teardown(test_api_auth, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_reads, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_settings_put, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_settings_put_while_behind, api_setup,
                                        api_teardown),
        cmocka_unit_test_setup_teardown(test_api_unavailable, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_tokens, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_orgs, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_usage_days, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_no_params_there, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_usage_hours_minutes, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_stats, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_sessions_streamed, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_export_csv_json, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_export_xlsx, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_report, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_http_refused_export_keeps_the_idle_timeout, api_setup,
                                        api_teardown),
        cmocka_unit_test(test_upstream_pool_threads),
        cmocka_unit_test(test_upstream_failures_logged_per_program),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsock_ctx_term();
    return rc;
}
