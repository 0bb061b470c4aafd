/* Unit tests of the alerter's pure core: threshold arithmetic, the
 * notification hysteresis (SPEC.md section 6) and expiry reminders on a
 * fake clock, including a restart of the saved state in the middle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../alerter/alert_rules.h"
#include "../../alerter/alert_state.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 64

struct rec {
    int n;
    struct {
        enum alert_kind kind;
        char org[65], type[33];
        int64_t in_use, threshold, clear, days_left, at_ms;
        int stage_days;
        bool by_settings;
    } ev[MAX_EVENTS];
};

static void record(void *arg, const struct alert_event *e)
{
    struct rec *r = arg;
    assert_true(r->n < MAX_EVENTS);
    r->ev[r->n].kind = e->kind;
    snprintf(r->ev[r->n].org, sizeof(r->ev[r->n].org), "%s", e->org);
    snprintf(r->ev[r->n].type, sizeof(r->ev[r->n].type), "%s", e->license_type);
    r->ev[r->n].in_use = e->in_use;
    r->ev[r->n].threshold = e->threshold_count;
    r->ev[r->n].clear = e->clear_level;
    r->ev[r->n].days_left = e->days_left;
    r->ev[r->n].stage_days = e->stage_days;
    r->ev[r->n].at_ms = e->at_ms;
    r->ev[r->n].by_settings = e->by_settings;
    assert_non_null(e->settings);
    r->n++;
}

/* Applies one level; returns how many notifications it made. */
static int level(struct alert_state *st, const char *org, const char *type, int64_t in_use)
{
    static int64_t at = 1764237600000;
    Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
    Licmon__V1__UsageLevel l = LICMON__V1__USAGE_LEVEL__INIT;
    l.org = (char *)org;
    l.license_type = (char *)type;
    l.at_ms = at += 1000;
    l.in_use = in_use;
    u.body_case = LICMON__V1__USAGE_UPDATE__BODY_LEVEL;
    u.level = &l;
    struct rec r = {0};
    assert_int_equal(alert_state_apply(st, &u, record, &r), 0);
    for (int i = 0; i < r.n; i++)
        assert_false(r.ev[i].by_settings); /* a change of usage made it, at at_ms */
    return r.n;
}

/* Applies settings given as JSON over those in force (or the defaults);
 * returns the notifications made. */
static int settings(struct alert_state *st, const char *org, const char *json, struct rec *out)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    assert_non_null(j);
    const Licmon__V1__OrgSettings *now = alert_state_settings(st, org);
    Licmon__V1__OrgSettings *base = now ? settings_copy(now) : settings_default(org);
    char err[200] = "";
    Licmon__V1__OrgSettings *s = settings_merge_json(base, j, err, sizeof(err));
    if (!s)
        fail_msg("settings: %s", err);
    json_decref(j);
    Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
    u.body_case = LICMON__V1__USAGE_UPDATE__BODY_SETTINGS;
    u.settings = s;
    struct rec r = {0};
    assert_int_equal(alert_state_apply(st, &u, record, out ? out : &r), 0);
    int n = out ? out->n : r.n;
    settings_free(&s);
    settings_free(&base);
    return n;
}

#define ACME_10                                                                                    \
    "{\"notify_emails\":[\"it@acme.example\"],\"licenses\":[{\"type\":\"creator\","                \
    "\"model\":\"floating\",\"owned\":10,\"threshold_pct\":80}]}"

/* ---- persistence helpers: a tiny key-value store in memory ---- */
struct kv {
    int n;
    struct {
        char *k, *v;
        size_t kl, vl;
    } e[256];
};

static void kv_put(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct kv *kv = arg;
    for (int i = 0; i < kv->n; i++)
        if (kv->e[i].kl == klen && !memcmp(kv->e[i].k, key, klen)) {
            free(kv->e[i].v);
            kv->e[i].v = xmemdup(val, vlen);
            kv->e[i].vl = vlen;
            return;
        }
    assert_true(kv->n < 256);
    kv->e[kv->n].k = xmemdup(key, klen);
    kv->e[kv->n].kl = klen;
    kv->e[kv->n].v = xmemdup(val, vlen);
    kv->e[kv->n].vl = vlen;
    kv->n++;
}

static void kv_free(struct kv *kv)
{
    for (int i = 0; i < kv->n; i++) {
        free(kv->e[i].k);
        free(kv->e[i].v);
    }
    kv->n = 0;
}

/* Saves st into kv, frees it, and returns a new state loaded from kv. */
static struct alert_state *restart(struct alert_state *st, struct kv *kv)
{
    alert_state_save_dirty(st, kv_put, kv);
    alert_state_free(&st);
    struct alert_state *n = alert_state_new();
    for (int i = kv->n - 1; i >= 0; i--) /* any order must do */
        assert_int_equal(alert_state_load(n, kv->e[i].k, kv->e[i].kl, kv->e[i].v, kv->e[i].vl), 0);
    return n;
}

/* ---------------------------------------------------------------- rules */

static void test_threshold_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(alert_threshold_count(10, 80), 8);
    assert_int_equal(alert_threshold_count(50, 80), 40);
    assert_int_equal(alert_threshold_count(3, 80), 3); /* ceil(2.4) */
    assert_int_equal(alert_threshold_count(7, 50), 4); /* ceil(3.5) */
    assert_int_equal(alert_threshold_count(1, 1), 1);
    assert_int_equal(alert_threshold_count(0, 80), 0);
    assert_int_equal(alert_threshold_count(100000000, 100), 100000000);
    /* clear = threshold - max(1, ceil(N * margin / 100)) */
    assert_int_equal(alert_clear_level(10, 80, 5), 7);    /* ceil(0.5) = 1 */
    assert_int_equal(alert_clear_level(100, 80, 5), 75);  /* 80 - 5 */
    assert_int_equal(alert_clear_level(50, 80, 5), 37);   /* 40 - ceil(2.5) */
    assert_int_equal(alert_clear_level(10, 80, 0), 7);    /* max(1, 0) = 1 */
    assert_int_equal(alert_clear_level(200, 80, 0), 159); /* max(1, 0) = 1 */
    assert_int_equal(alert_clear_level(10, 80, 30), 5);
    assert_int_equal(alert_clear_level(1, 80, 5), 1); /* floored: 1 - 1 = 0 */
}

static void test_episode_step(void **state)
{
    (void)state;
    bool fired = false;
    assert_false(alert_episode_step(&fired, 7, 8, 7));
    assert_true(alert_episode_step(&fired, 8, 8, 7));
    assert_true(fired);
    assert_false(alert_episode_step(&fired, 9, 8, 7));
    assert_false(alert_episode_step(&fired, 7, 8, 7)); /* at the clear level: not below */
    assert_true(fired);
    assert_false(alert_episode_step(&fired, 6, 8, 7));
    assert_false(fired);
    assert_true(alert_episode_step(&fired, 10, 8, 7));
    fired = false;
    assert_false(alert_episode_step(&fired, 0, 0, -1)); /* no threshold: never */
}

static void test_expiry_stage(void **state)
{
    (void)state;
    assert_int_equal(alert_expiry_stage(91), -1);
    assert_int_equal(alert_expiry_stage(90), 0);
    assert_int_equal(alert_expiry_stage(31), 0);
    assert_int_equal(alert_expiry_stage(30), 1);
    assert_int_equal(alert_expiry_stage(8), 1);
    assert_int_equal(alert_expiry_stage(7), 2);
    assert_int_equal(alert_expiry_stage(2), 2);
    assert_int_equal(alert_expiry_stage(1), 3);
    assert_int_equal(alert_expiry_stage(0), 4);
    assert_int_equal(alert_expiry_stage(-3), 4);
    assert_int_equal(alert_expiry_stage(-ALERT_EXPIRY_GRACE_DAYS), 4);
    assert_int_equal(alert_expiry_stage(-ALERT_EXPIRY_GRACE_DAYS - 1), -1);
}

/* ----------------------------------------------------------- hysteresis */

static void test_one_per_crossing(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    assert_int_equal(settings(st, "acme", ACME_10, NULL), 0);
    /* threshold 8, clear level 7 */
    for (int i = 1; i <= 7; i++)
        assert_int_equal(level(st, "acme", "creator", i), 0);
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    assert_int_equal(level(st, "acme", "creator", 9), 0);
    assert_int_equal(level(st, "acme", "creator", 10), 0);
    assert_int_equal(level(st, "acme", "creator", 8), 0);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 6), 0); /* below 7: cleared */
    assert_false(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 7), 0);
    assert_int_equal(level(st, "acme", "creator", 8), 1); /* the next crossing */
    /* a jump straight over the threshold counts too */
    assert_int_equal(level(st, "acme", "creator", 0), 0);
    assert_int_equal(level(st, "acme", "creator", 10), 1);
    alert_state_free(&st);
}

static void test_hovering_sends_nothing(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    settings(st, "acme", ACME_10, NULL);
    int n = 0;
    for (int i = 1; i <= 8; i++)
        n += level(st, "acme", "creator", i);
    assert_int_equal(n, 1);
    for (int k = 0; k < 50; k++) { /* between the clear level (7) and above */
        n += level(st, "acme", "creator", 7);
        n += level(st, "acme", "creator", 8);
        n += level(st, "acme", "creator", 9);
    }
    assert_int_equal(n, 1);
    /* a wider clear margin: 20% of 50 = 10 seats under threshold 40 */
    settings(st, "big",
             "{\"clear_margin_pct\":20,\"notify_emails\":[\"a@b.example\"],\"licenses\":[{\"type\":"
             "\"creator\",\"owned\":50}]}",
             NULL);
    n = 0;
    n += level(st, "big", "creator", 40);
    for (int i = 39; i >= 30; i--)
        n += level(st, "big", "creator", i);
    n += level(st, "big", "creator", 40);
    assert_int_equal(n, 1);
    n += level(st, "big", "creator", 29);
    n += level(st, "big", "creator", 40);
    assert_int_equal(n, 2);
    alert_state_free(&st);
}

static void test_small_owned(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    /* N = 3, P = 80: threshold ceil(2.4) = 3; margin 0% -> max(1, 0) = 1, clear 2 */
    settings(st, "tiny",
             "{\"clear_margin_pct\":0,\"notify_emails\":[\"a@b.example\"],\"licenses\":[{\"type\":"
             "\"creator\",\"owned\":3}]}",
             NULL);
    assert_int_equal(level(st, "tiny", "creator", 2), 0);
    assert_int_equal(level(st, "tiny", "creator", 3), 1);
    assert_int_equal(level(st, "tiny", "creator", 2), 0); /* at the clear level */
    assert_int_equal(level(st, "tiny", "creator", 3), 0);
    assert_int_equal(level(st, "tiny", "creator", 1), 0); /* below it */
    assert_int_equal(level(st, "tiny", "creator", 3), 1);
    /* N = 2, P = 50: threshold 1; the literal clear level 1 - 1 = 0 could never be
     * dropped below, so it is floored at 1: the episode ends when usage is 0 */
    settings(st, "two",
             "{\"notify_emails\":[\"a@b.example\"],\"licenses\":[{\"type\":\"creator\","
             "\"owned\":2,\"threshold_pct\":50}]}",
             NULL);
    assert_int_equal(level(st, "two", "creator", 1), 1);
    assert_int_equal(level(st, "two", "creator", 2), 0);
    assert_int_equal(level(st, "two", "creator", 0), 0);
    assert_int_equal(level(st, "two", "creator", 1), 1);
    assert_int_equal(level(st, "two", "creator", 2), 0);
    alert_state_free(&st);
}

static void test_threshold_changes_mid_episode(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    struct rec r = {0};
    settings(st, "acme", ACME_10, NULL);
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    /* raised to 90%: threshold 9, clear 8; usage 8 is not below 8: same episode */
    assert_int_equal(settings(st, "acme",
                              "{\"licenses\":[{\"type\":\"creator\",\"owned\":10,"
                              "\"threshold_pct\":90}]}",
                              NULL),
                     0);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 9), 0);
    assert_int_equal(level(st, "acme", "creator", 7), 0); /* below 8: cleared */
    assert_int_equal(level(st, "acme", "creator", 9), 1);
    /* raised to 100% while over 90: threshold 10, clear 9; 9 is not below 9 */
    settings(st, "acme",
             "{\"licenses\":[{\"type\":\"creator\",\"owned\":10,\"threshold_pct\":100}]}", NULL);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 10), 0);
    /* owned raised to 20 (threshold 20, clear 19): usage 10 ends the episode at once */
    settings(st, "acme",
             "{\"licenses\":[{\"type\":\"creator\",\"owned\":20,\"threshold_pct\":100}]}", NULL);
    assert_false(alert_state_fired(st, "acme", "creator"));
    /* lowered to 50% of 20 = 10 while usage is 10: the threshold is reached now */
    assert_int_equal(settings(st, "acme",
                              "{\"licenses\":[{\"type\":\"creator\",\"owned\":20,"
                              "\"threshold_pct\":50}]}",
                              &r),
                     1);
    assert_int_equal(r.ev[0].in_use, 10);
    assert_int_equal(r.ev[0].threshold, 10);
    assert_int_equal(r.ev[0].clear, 9);
    assert_string_equal(r.ev[0].type, "creator");
    /* the settings made this crossing: it happened as they took effect, not
     * at the last change of usage, which may be days before */
    assert_true(r.ev[0].by_settings);
    alert_state_free(&st);
}

static void test_never_alerts(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    settings(st, "acme",
             "{\"notify_emails\":[\"it@acme.example\"],\"licenses\":["
             "{\"type\":\"stakeholder\",\"model\":\"named\",\"owned\":5},"
             "{\"type\":\"reviewer\",\"model\":\"floating\",\"owned\":0},"
             "{\"type\":\"creator\",\"model\":\"floating\",\"owned\":2}]}",
             NULL);
    int n = 0;
    for (int i = 0; i <= 10; i++) {
        n += level(st, "acme", "stakeholder", i); /* named */
        n += level(st, "acme", "reviewer", i);    /* N = 0 */
        n += level(st, "acme", "tester", i);      /* not licensed at all */
        n += level(st, "acme", "all", i);         /* the pseudo-type */
        n += level(st, "other", "creator", i);    /* an org with no settings */
    }
    assert_int_equal(n, 0);
    assert_int_equal(alert_state_in_use(st, "acme", "all"), 0);
    assert_int_equal(alert_state_in_use(st, "acme", "reviewer"), 10);
    /* malformed ids are refused */
    Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
    Licmon__V1__UsageLevel l = LICMON__V1__USAGE_LEVEL__INIT;
    l.org = "bad org!";
    l.license_type = "creator";
    u.body_case = LICMON__V1__USAGE_UPDATE__BODY_LEVEL;
    u.level = &l;
    assert_int_equal(alert_state_apply(st, &u, record, NULL), -1);
    l.org = "acme";
    l.license_type = "Creator";
    assert_int_equal(alert_state_apply(st, &u, record, NULL), -1);
    alert_state_free(&st);
}

static void test_notifications_off(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    settings(st, "acme", ACME_10, NULL);
    settings(st, "acme", "{\"notify_enabled\":false}", NULL);
    assert_int_equal(level(st, "acme", "creator", 8), 0);
    /* turning them on mid-episode does not announce the old crossing */
    assert_int_equal(settings(st, "acme", "{\"notify_enabled\":true}", NULL), 0);
    assert_int_equal(level(st, "acme", "creator", 9), 0);
    assert_int_equal(level(st, "acme", "creator", 5), 0);
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    alert_state_free(&st);
}

static void test_restart_keeps_episode(void **state)
{
    (void)state;
    struct kv kv = {0};
    struct alert_state *st = alert_state_new();
    settings(st, "acme", ACME_10, NULL);
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    st = restart(st, &kv);
    assert_non_null(alert_state_settings(st, "acme"));
    assert_int_equal(alert_state_in_use(st, "acme", "creator"), 8);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 9), 0);
    assert_int_equal(level(st, "acme", "creator", 6), 0);
    st = restart(st, &kv); /* cleared state survives too */
    assert_false(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    /* nothing changed, nothing to save */
    struct kv none = {0};
    alert_state_save_dirty(st, kv_put, &kv);
    alert_state_save_dirty(st, kv_put, &none);
    assert_int_equal(none.n, 0);
    alert_state_free(&st);
    kv_free(&kv);
}

/* SPEC §6: not sent again until in_use has dropped below the clear level.
 * Taking the license type out (or making it named) and putting it back
 * does not end an episode; usage falling below the clear level it had
 * does, watched or not. */
static void test_license_out_and_back_in_mid_episode(void **state)
{
    (void)state;
    struct kv kv = {0};
    struct alert_state *st = alert_state_new();
    settings(st, "acme", ACME_10, NULL); /* threshold 8, clear level 7 */
    assert_int_equal(level(st, "acme", "creator", 8), 1);
    assert_int_equal(settings(st, "acme", "{\"licenses\":[]}", NULL), 0);
    assert_int_equal(level(st, "acme", "creator", 9), 0);
    assert_int_equal(settings(st, "acme", ACME_10, NULL), 0); /* back, usage 9: the same */
    assert_true(alert_state_fired(st, "acme", "creator"));
    /* out again (named), and across a restart while out: the saved clear
     * level still ends the episode when usage falls below it */
    settings(st, "acme", "{\"licenses\":[{\"type\":\"creator\",\"model\":\"named\",\"owned\":10}]}",
             NULL);
    st = restart(st, &kv);
    assert_int_equal(level(st, "acme", "creator", 7), 0);
    assert_true(alert_state_fired(st, "acme", "creator")); /* 7 is not below 7 */
    assert_int_equal(level(st, "acme", "creator", 6), 0);
    assert_false(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 8), 0);     /* not watched: nothing */
    assert_int_equal(settings(st, "acme", ACME_10, NULL), 1); /* watched again at 8 */
    /* a level saved before the clear level was (17 bytes) still reads: the
     * episode goes on while unwatched, its clear level unknown, until the
     * type is watched again */
    settings(st, "acme", "{\"licenses\":[]}", NULL);
    st = restart(st, &kv);
    int s_keys = 0;
    for (int i = 0; i < kv.n; i++)
        if (kv.e[i].k[0] == 'S' && kv.e[i].vl == 25) {
            kv.e[i].vl = 17;
            s_keys++;
        }
    assert_true(s_keys > 0);
    alert_state_free(&st);
    st = alert_state_new();
    for (int i = 0; i < kv.n; i++)
        assert_int_equal(alert_state_load(st, kv.e[i].k, kv.e[i].kl, kv.e[i].v, kv.e[i].vl), 0);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(level(st, "acme", "creator", 2), 0);
    assert_true(alert_state_fired(st, "acme", "creator"));
    assert_int_equal(settings(st, "acme", ACME_10, NULL), 0); /* watched: 2 ends it */
    assert_false(alert_state_fired(st, "acme", "creator"));
    alert_state_free(&st);
    kv_free(&kv);
}

/* --------------------------------------------------------------- expiry */

/* ms of local wall time y-m-d hh:00 in New York (UTC-5 or UTC-4) */
static int64_t ny(int64_t y, unsigned m, unsigned d, int hh)
{
    int64_t guess = (time_days_from_civil(y, m, d) * 86400 + hh * 3600) * 1000;
    long off = 0;
    tz_offset_at("America/New_York", guess + 5 * 3600000, &off);
    return guess - off * 1000;
}

static void test_expiry_each_stage_once(void **state)
{
    (void)state;
    struct kv kv = {0};
    struct alert_state *st = alert_state_new();
    settings(st, "acme",
             "{\"timezone\":\"America/New_York\",\"notify_emails\":[\"it@acme.example\"],"
             "\"licenses\":[{\"type\":\"creator\",\"owned\":10,\"expires\":\"2026-06-30\"},"
             "{\"type\":\"viewer\",\"model\":\"named\",\"owned\":3}]}",
             NULL);
    int64_t expiry_day = time_days_from_civil(2026, 6, 30);
    struct rec r = {0};
    /* from 120 days before to 40 days after, three checks a day, a restart
     * of the saved state every 10 days */
    for (int64_t day = expiry_day - 120; day <= expiry_day + 40; day++) {
        int64_t y;
        unsigned m, d;
        time_civil_from_days(day, &y, &m, &d);
        for (int hh = 0; hh < 24; hh += 8)
            alert_state_check_expiry(st, ny(y, m, d, hh) + 60000, record, &r);
        if (day % 10 == 0)
            st = restart(st, &kv);
    }
    assert_int_equal(r.n, 5);
    const int want[] = {90, 30, 7, 1, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.ev[i].kind, ALERT_EXPIRY);
        assert_string_equal(r.ev[i].type, "creator");
        assert_int_equal(r.ev[i].days_left, want[i]);
        assert_int_equal(r.ev[i].stage_days, want[i]);
    }
    /* the local day counts: 23:30 in New York on the 29th is the 30th in UTC */
    struct alert_state *st2 = alert_state_new();
    settings(st2, "acme",
             "{\"timezone\":\"America/New_York\",\"notify_emails\":[\"it@acme.example\"],"
             "\"licenses\":[{\"type\":\"creator\",\"owned\":10,\"expires\":\"2026-06-30\"}]}",
             NULL);
    struct rec r2 = {0};
    alert_state_check_expiry(st2, ny(2026, 6, 29, 23) + 30 * 60000, record, &r2);
    assert_int_equal(r2.n, 1);
    assert_int_equal(r2.ev[0].days_left, 1);
    alert_state_free(&st2);
    alert_state_free(&st);
    kv_free(&kv);
}

static void test_expiry_catch_up_and_renewal(void **state)
{
    (void)state;
    struct alert_state *st = alert_state_new();
    settings(st, "acme",
             "{\"notify_emails\":[\"it@acme.example\"],\"licenses\":[{\"type\":\"creator\","
             "\"owned\":10,\"expires\":\"2026-06-30\"}]}",
             NULL);
    int64_t day = time_days_from_civil(2026, 6, 30);
    struct rec r = {0};
    /* first seen 45 days ahead: the 90-day reminder, once */
    alert_state_check_expiry(st, (day - 45) * 86400000 + 3600000, record, &r);
    alert_state_check_expiry(st, (day - 44) * 86400000 + 3600000, record, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].days_left, 45);
    assert_int_equal(r.ev[0].stage_days, 90);
    /* the alerter was down over the 30- and 7-day marks: one reminder at 5 days */
    alert_state_check_expiry(st, (day - 5) * 86400000 + 3600000, record, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ev[1].days_left, 5);
    assert_int_equal(r.ev[1].stage_days, 7);
    /* renewed for a year: nothing now, the reminders start over */
    settings(st, "acme",
             "{\"licenses\":[{\"type\":\"creator\",\"owned\":10,\"expires\":\"2027-06-30\"}]}",
             NULL);
    alert_state_check_expiry(st, (day - 4) * 86400000 + 3600000, record, &r);
    assert_int_equal(r.n, 2);
    int64_t day2 = time_days_from_civil(2027, 6, 30);
    alert_state_check_expiry(st, (day2 - 90) * 86400000 + 3600000, record, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.ev[2].days_left, 90);
    /* long expired when first seen: nothing */
    settings(st, "old",
             "{\"notify_emails\":[\"it@old.example\"],\"licenses\":[{\"type\":\"creator\","
             "\"owned\":10,\"expires\":\"2020-01-01\"}]}",
             NULL);
    alert_state_check_expiry(st, (day - 4) * 86400000, record, &r);
    assert_int_equal(r.n, 3);
    /* notifications off: the stage passes silently */
    settings(st, "quiet",
             "{\"notify_enabled\":false,\"notify_emails\":[\"it@q.example\"],\"licenses\":[{"
             "\"type\":\"creator\",\"owned\":10,\"expires\":\"2026-06-30\"}]}",
             NULL);
    alert_state_check_expiry(st, (day - 7) * 86400000, record, &r);
    assert_int_equal(r.n, 3);
    settings(st, "quiet", "{\"notify_enabled\":true}", NULL);
    alert_state_check_expiry(st, (day - 6) * 86400000, record, &r);
    assert_int_equal(r.n, 3);
    alert_state_check_expiry(st, (day - 1) * 86400000, record, &r);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.ev[3].org, "quiet");
    assert_int_equal(r.ev[3].days_left, 1);
    alert_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_arithmetic),
        cmocka_unit_test(test_episode_step),
        cmocka_unit_test(test_expiry_stage),
        cmocka_unit_test(test_one_per_crossing),
        cmocka_unit_test(test_hovering_sends_nothing),
        cmocka_unit_test(test_small_owned),
        cmocka_unit_test(test_threshold_changes_mid_episode),
        cmocka_unit_test(test_never_alerts),
        cmocka_unit_test(test_notifications_off),
        cmocka_unit_test(test_restart_keeps_episode),
        cmocka_unit_test(test_license_out_and_back_in_mid_episode),
        cmocka_unit_test(test_expiry_each_stage_once),
        cmocka_unit_test(test_expiry_catch_up_and_renewal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
