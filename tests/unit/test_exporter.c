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
#include "../../exporter/exp_auth.h"
#include "../../exporter/exp_internal.h"
#include "../../exporter/exp_route.h"
#include "../../exporter/exp_token.h"
#include "../../exporter/exp_upstream.h"
#include "../../exporter/exp_view.h"
#include "keys.h"
#include "log.h"
#include "lstream.h"
#include "settings.h"
#include "store.h"
#include "svc.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/test_exporter.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void tmpdir_free(char **d)
{
    char *cmd = xasprintf("rm -rf '%s'", *d);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(*d);
    *d = NULL;
}

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

    assert_int_equal(exp_route_match("GET", "/healthz", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_HEALTH);
    assert_false(r.v1);
    assert_int_equal(exp_route_match("GET", "/v1/orgs/acme/usage", &r), 0);
    assert_int_equal(r.kind, EXP_ROUTE_PENDING);
}

static void test_route_not_found(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",
                                        "",
                                        "/v1",
                                        "/v1/",
                                        "/v2/orgs/acme/licenses",
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

static Licmon__V1__OrgSettings *settings_from(const char *org, const char *json)
{
    Licmon__V1__OrgSettings *base = settings_default(org);
    json_error_t jerr;
    json_t *obj = json_loads(json, 0, &jerr);
    assert_non_null(obj);
    char err[256] = "";
    Licmon__V1__OrgSettings *s = settings_merge_json(base, obj, err, sizeof(err));
    if (!s)
        fail_msg("settings: %s", err);
    json_decref(obj);
    settings_free(&base);
    return s;
}

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

enum fake_mode { FAKE_NORMAL, FAKE_SILENT, FAKE_STALE_FIRST };

struct fake {
    const char *agg_ep, *ingest_ep;
    void *agg, *ingest;
    pthread_t thread;
    atomic_bool stop;
    _Atomic int mode;
    pthread_mutex_t lock;
    Licmon__V1__OrgSettings *applied;   /* what the aggregator shows */
    Licmon__V1__OrgSettings *journaled; /* what ingest took */
    int lag;                            /* SETTINGS answers before journaled shows */
    int settings_queries;
    uint64_t seq;
};

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
        }
        if (req->query->kind == LICMON__V1__QUERY_KIND__SETTINGS)
            f->settings_queries++;
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
        fake_send(f->agg, &env, &rep);
        pthread_mutex_unlock(&f->lock);
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
            rep.journaled_seq = ++f->seq;
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

static int api_setup(void **state)
{
    struct api_fixture *fx = xcalloc(1, sizeof(*fx));
    fx->dir = tmpdir_new();
    fx->st = store_open(fx->dir);
    fx->tokens = exp_tokens_new(fx->st);
    fx->fake = fake_start("inproc://api-agg", "inproc://api-ingest");
    fx->agg = exp_upstream_new("aggregator", "inproc://api-agg", 400);
    fx->ingest = exp_upstream_new("ingest", "inproc://api-ingest", 400);
    struct exp_api_config cfg = {.admin_token = "the-admin-token-for-tests",
                                 .tokens = fx->tokens,
                                 .aggregator = fx->agg,
                                 .ingest = fx->ingest,
                                 .query_timeout_ms = 400,
                                 .settings_wait_ms = 1500};
    fx->api = exp_api_new(&cfg);
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

/* Runs one request; returns the status, *body (caller decrefs) when asked. */
static unsigned call(struct api_fixture *fx, const char *method, const char *path, const char *auth,
                     const char *body, json_t **out)
{
    struct exp_req req = {.method = method,
                          .path = path,
                          .authorization = auth,
                          .body = body,
                          .body_len = body ? strlen(body) : 0};
    struct exp_resp resp;
    exp_api_handle(fx->api, &req, &resp);
    unsigned st = resp.status;
    if (st != 204)
        assert_non_null(resp.body);
    else
        assert_null(resp.body);
    if (st >= 400) {
        assert_non_null(json_string_value(json_object_get(resp.body, "error")));
        assert_non_null(json_string_value(json_object_get(resp.body, "detail")));
    }
    assert_true(st != 401 || resp.challenge);
    if (out) {
        *out = resp.body;
        resp.body = NULL;
    }
    exp_resp_clear(&resp);
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
    assert_int_equal(call(fx, "GET", "/v1/orgs/acme/stats", fx->svc_hdr, NULL, NULL), 501);
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
        cmocka_unit_test(test_auth_bearer),
        cmocka_unit_test(test_expiration_states),
        cmocka_unit_test(test_days_left),
        cmocka_unit_test(test_view_licenses),
        cmocka_unit_test(test_view_current),
        cmocka_unit_test(test_token_hash),
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_admin_token_file),
        cmocka_unit_test(test_upstream_timeout_and_stale),
        cmocka_unit_test(test_internal_status),
        cmocka_unit_test_setup_teardown(test_api_auth, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_reads, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_settings_put, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_unavailable, api_setup, api_teardown),
        cmocka_unit_test_setup_teardown(test_api_tokens, api_setup, api_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsock_ctx_term();
    return rc;
}
