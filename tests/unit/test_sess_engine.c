/* Unit tests of the session state machine (sessionizer/sess_engine.c):
 * every rule of SPEC.md section 3 on hand-made streams, lateness and the
 * clock, saved-state round trips and damaged values, and a property test
 * that checks thousands of random streams against a brute-force model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../sessionizer/sess_engine.h"
#include "keys.h"
#include "pb.h"
#include "settings.h"
#include "xmem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORG "acme"
#define SEC 1000LL
#define MIN 60000LL
#define FAR ((int64_t)1 << 50)

/* ---- harness: records every change, flattened ---- */

struct chg {
    int body; /* LICMON__V1__CHANGE__BODY_* */
    char org[72], user[264], type[40], req[40], id[96];
    int64_t at, start, la, end, uis, lis, rel, tail;
    int acquired, reason, what;
};

struct h {
    struct sess_engine *e;
    struct chg *v;
    size_t n, cap;
    uint8_t *log; /* every change packed, u32 length first: for equality */
    size_t loglen, logcap;
};

static void copy_str(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static void on_change(void *arg, Licmon__V1__Change *c)
{
    struct h *h = arg;
    size_t len;
    uint8_t *buf = pb_pack(&c->base, &len);
    if (h->loglen + len + 4 > h->logcap) {
        h->logcap = (h->logcap + len + 4) * 2;
        h->log = xrealloc(h->log, h->logcap);
    }
    memcpy(h->log + h->loglen, &len, 4);
    memcpy(h->log + h->loglen + 4, buf, len);
    h->loglen += len + 4;
    free(buf);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    struct chg *x = &h->v[h->n++];
    memset(x, 0, sizeof(*x));
    x->body = c->body_case;
    switch (c->body_case) {
    case LICMON__V1__CHANGE__BODY_HOLD:
        copy_str(x->org, sizeof(x->org), c->hold->org);
        copy_str(x->user, sizeof(x->user), c->hold->user);
        copy_str(x->type, sizeof(x->type), c->hold->license_type);
        x->at = c->hold->at_ms;
        x->acquired = c->hold->acquired;
        x->reason = c->hold->reason;
        break;
    case LICMON__V1__CHANGE__BODY_SESSION: {
        const Licmon__V1__SessionRecord *r = c->session;
        copy_str(x->org, sizeof(x->org), r->org);
        copy_str(x->user, sizeof(x->user), r->user);
        copy_str(x->type, sizeof(x->type), r->license_type);
        copy_str(x->req, sizeof(x->req), r->requested_type);
        copy_str(x->id, sizeof(x->id), r->session_id);
        x->start = r->start_ms;
        x->la = r->last_activity_ms;
        x->end = r->end_ms;
        x->reason = r->end_reason;
        x->uis = r->user_inactivity_s;
        x->lis = r->license_inactivity_s;
        x->rel = r->license_released_at_ms;
        x->tail = r->license_tail_s;
        break;
    }
    case LICMON__V1__CHANGE__BODY_COUNTED:
        copy_str(x->org, sizeof(x->org), c->counted->org);
        copy_str(x->user, sizeof(x->user), c->counted->user);
        copy_str(x->type, sizeof(x->type), c->counted->license_type);
        x->at = c->counted->at_ms;
        x->what = c->counted->what;
        break;
    case LICMON__V1__CHANGE__BODY_SETTINGS:
        copy_str(x->org, sizeof(x->org), c->settings->org);
        break;
    default:
        break;
    }
}

static void h_init(struct h *h)
{
    memset(h, 0, sizeof(*h));
    h->e = sess_engine_new(on_change, h);
}

static void h_free(struct h *h)
{
    sess_engine_free(&h->e);
    free(h->v);
    free(h->log);
}

static void ev_full(struct h *h, const char *org, const char *user, Licmon__V1__EventKind kind,
                    int64_t ts, const char *type, const char *req, int64_t arrival)
{
    Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
    ev.event_id = "x";
    ev.org = (char *)org;
    ev.user = (char *)user;
    ev.kind = kind;
    ev.ts_ms = ts;
    ev.license_type = (char *)(type ? type : "");
    ev.requested_type = (char *)(req ? req : "");
    sess_engine_event(h->e, &ev, arrival);
}

/* events of a live stream: they arrive when they happen */
static void login(struct h *h, const char *user, int64_t ts, const char *type)
{
    ev_full(h, ORG, user, LICMON__V1__EVENT_KIND__LOGIN, ts, type, NULL, ts);
}

static void downgrade(struct h *h, const char *user, int64_t ts, const char *type, const char *req)
{
    ev_full(h, ORG, user, LICMON__V1__EVENT_KIND__LOGIN, ts, type, req, ts);
}

static void act(struct h *h, const char *user, int64_t ts, const char *type)
{
    ev_full(h, ORG, user, LICMON__V1__EVENT_KIND__ACTIVITY, ts, type, NULL, ts);
}

static void logout(struct h *h, const char *user, int64_t ts)
{
    ev_full(h, ORG, user, LICMON__V1__EVENT_KIND__LOGOUT, ts, NULL, NULL, ts);
}

static void denied(struct h *h, const char *user, int64_t ts, const char *type)
{
    ev_full(h, ORG, user, LICMON__V1__EVENT_KIND__DENIED, ts, type, NULL, ts);
}

static void set_org(struct h *h, const char *org, int64_t u_min, int64_t l_min, int releases,
                    int64_t late_s, int64_t arrival)
{
    Licmon__V1__OrgSettings *s = settings_default(org);
    s->user_inactivity_timeout_s = u_min * 60;
    s->license_inactivity_timeout_s = l_min * 60;
    s->inactivity_logout_releases_license = releases;
    s->allowed_lateness_s = late_s;
    sess_engine_settings(h->e, s, arrival);
    settings_free(&s);
}

static void set(struct h *h, int64_t u_min, int64_t l_min, int releases)
{
    set_org(h, ORG, u_min, l_min, releases, 5, 0);
}

static void tick(struct h *h, int64_t wall)
{
    sess_engine_tick(h->e, wall);
}

static void flush(struct h *h)
{
    tick(h, FAR);
}

/* the last emission of the session of user that started at start */
static const struct chg *sess_of(const struct h *h, const char *user, int64_t start)
{
    const struct chg *r = NULL;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].body == LICMON__V1__CHANGE__BODY_SESSION && !strcmp(h->v[i].user, user) &&
            h->v[i].start == start)
            r = &h->v[i];
    return r;
}

static int n_emits(const struct h *h, const char *user, int64_t start)
{
    int n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->v[i].body == LICMON__V1__CHANGE__BODY_SESSION && !strcmp(h->v[i].user, user) &&
             h->v[i].start == start;
    return n;
}

static int n_sessions(const struct h *h, const char *user)
{
    int n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct chg *x = &h->v[i];
        if (x->body != LICMON__V1__CHANGE__BODY_SESSION || strcmp(x->user, user))
            continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= h->v[j].body == LICMON__V1__CHANGE__BODY_SESSION && !strcmp(h->v[j].id, x->id);
        n += !seen;
    }
    return n;
}

static int n_counted(const struct h *h, int what)
{
    int n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->v[i].body == LICMON__V1__CHANGE__BODY_COUNTED && h->v[i].what == what;
    return n;
}

/* the hold changes of user, in order */
static size_t holds(const struct h *h, const char *user, const struct chg **out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].body == LICMON__V1__CHANGE__BODY_HOLD && !strcmp(h->v[i].user, user) && k < cap)
            out[k++] = &h->v[i];
    return k;
}

static void expect_hold(const struct chg *c, const char *type, int64_t at, int acquired, int reason)
{
    assert_string_equal(c->type, type);
    assert_int_equal(c->at, at);
    assert_int_equal(c->acquired, acquired);
    if (!acquired)
        assert_int_equal(c->reason, reason);
}

static void expect_ended(const struct chg *s, int64_t end, int reason, int64_t uis, int64_t lis,
                         int64_t rel, int64_t tail)
{
    assert_non_null(s);
    assert_int_equal(s->end, end);
    assert_int_equal(s->reason, reason);
    assert_int_equal(s->uis, uis);
    assert_int_equal(s->lis, lis);
    assert_int_equal(s->rel, rel);
    assert_int_equal(s->tail, tail);
}

enum {
    R_OPEN = LICMON__V1__END_REASON__OPEN,
    R_MANUAL = LICMON__V1__END_REASON__MANUAL_LOGOUT,
    R_USER = LICMON__V1__END_REASON__USER_INACTIVITY,
    R_RELOGIN = LICMON__V1__END_REASON__RELOGIN,
    R_LIC = LICMON__V1__END_REASON__LICENSE_INACTIVITY,
    R_SWITCHED = LICMON__V1__END_REASON__SWITCHED,
    W_DENIAL = LICMON__V1__COUNTED__WHAT__DENIAL,
    W_DOWNGRADE = LICMON__V1__COUNTED__WHAT__DOWNGRADE,
    W_IMPLICIT = LICMON__V1__COUNTED__WHAT__IMPLICIT_LOGIN,
    W_ORPHAN = LICMON__V1__COUNTED__WHAT__ORPHAN,
    W_LATE = LICMON__V1__COUNTED__WHAT__LATE_EVENT,
    W_LOGIN = LICMON__V1__COUNTED__WHAT__LOGIN,
};

/* ---- the rules ---- */

static void test_login_logout(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    login(&h, "ann", 0, "creator");
    const struct chg *s = sess_of(&h, "ann", 0);
    assert_non_null(s);
    assert_int_equal(s->reason, R_OPEN);
    assert_int_equal(s->end, 0);
    assert_string_equal(s->type, "creator");
    assert_string_equal(s->org, ORG);
    act(&h, "ann", 30 * SEC, NULL);
    logout(&h, "ann", 90500);
    expect_ended(sess_of(&h, "ann", 0), 90500, R_MANUAL, 90, 90, 90500, 0);
    assert_int_equal(sess_of(&h, "ann", 0)->la, 30 * SEC);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    expect_hold(hc[0], "creator", 0, 1, 0);
    expect_hold(hc[1], "creator", 90500, 0, R_MANUAL);
    assert_int_equal(n_counted(&h, W_LOGIN), 1);
    assert_int_equal(n_counted(&h, W_ORPHAN), 0);
    flush(&h);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    assert_int_equal(n_emits(&h, "ann", 0), 2);
    h_free(&h);
}

static void test_user_timeout_u_lt_l_lingers(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 20, 0);
    login(&h, "ann", 0, "creator");
    act(&h, "ann", 1 * MIN, NULL);
    flush(&h);
    /* ended at 11 min, seat held until 21 min */
    expect_ended(sess_of(&h, "ann", 0), 11 * MIN, R_USER, 660, 660, 21 * MIN, 600);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    expect_hold(hc[1], "creator", 21 * MIN, 0, R_LIC);
    /* start, 60-s update, end (seat still held), seat released */
    assert_int_equal(n_emits(&h, "ann", 0), 4);
    h_free(&h);
}

static void test_user_timeout_releases_switch(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 20, 1);
    login(&h, "ann", 0, "creator");
    flush(&h);
    expect_ended(sess_of(&h, "ann", 0), 10 * MIN, R_USER, 600, 600, 10 * MIN, 0);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    expect_hold(hc[1], "creator", 10 * MIN, 0, R_USER);
    h_free(&h);
}

static void test_u_gt_l(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    for (int sw = 0; sw < 2; sw++) {
        h_init(&h);
        set(&h, 20, 10, sw);
        login(&h, "ann", 0, "creator");
        flush(&h);
        /* L releases the seat at 10 min while the session runs to 20 */
        expect_ended(sess_of(&h, "ann", 0), 20 * MIN, R_USER, 1200, 600, 10 * MIN, 0);
        assert_int_equal(holds(&h, "ann", hc, 8), 2);
        expect_hold(hc[1], "creator", 10 * MIN, 0, R_LIC);
        h_free(&h);
    }
}

static void test_u_eq_l(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    for (int sw = 0; sw < 2; sw++) {
        h_init(&h);
        set(&h, 10, 10, sw);
        login(&h, "ann", 0, "creator");
        flush(&h);
        expect_ended(sess_of(&h, "ann", 0), 10 * MIN, R_USER, 600, 600, 10 * MIN, 0);
        assert_int_equal(n_emits(&h, "ann", 0), 2); /* no separate lingering update */
        assert_int_equal(holds(&h, "ann", hc, 8), 2);
        expect_hold(hc[1], "creator", 10 * MIN, 0, sw ? R_USER : R_LIC);
        h_free(&h);
    }
}

static void test_event_at_timeout_instant(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 20, 0);
    login(&h, "ann", 0, "creator");
    act(&h, "ann", 10 * MIN - 1, NULL); /* just in time: keeps the session */
    act(&h, "ann", 20 * MIN - 1, NULL); /* at the instant: the timeout wins */
    act(&h, "ann", 30 * MIN - 2, NULL);
    assert_int_equal(n_sessions(&h, "ann"), 2);
    /* the first session ended at its timeout; the seat went on to the next */
    expect_ended(sess_of(&h, "ann", 0), 20 * MIN - 1, R_USER, 1199, 1199, 20 * MIN - 1, 0);
    const struct chg *s2 = sess_of(&h, "ann", 20 * MIN - 1);
    assert_non_null(s2);
    assert_int_equal(s2->reason, R_OPEN);
    assert_int_equal(n_counted(&h, W_IMPLICIT), 1);
    assert_int_equal(holds(&h, "ann", hc, 8), 1); /* one seat all along */
    /* a hold released exactly when an activity comes: released first */
    logout(&h, "ann", 31 * MIN);
    set(&h, 30, 10, 0);
    login(&h, "bob", 40 * MIN, "creator");
    act(&h, "bob", 50 * MIN, NULL);
    assert_int_equal(holds(&h, "bob", hc, 8), 1); /* held until the release is final */
    tick(&h, 50 * MIN + 5 * SEC);
    assert_int_equal(holds(&h, "bob", hc, 8), 3);
    expect_hold(hc[1], "creator", 50 * MIN, 0, R_LIC);
    expect_hold(hc[2], "creator", 50 * MIN, 1, 0);
    h_free(&h);
}

static void test_relogin_same_type(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    login(&h, "ann", 0, "creator");
    login(&h, "ann", 5 * SEC, "creator");
    expect_ended(sess_of(&h, "ann", 0), 5 * SEC, R_RELOGIN, 5, 5, 5 * SEC, 0);
    assert_int_equal(sess_of(&h, "ann", 5 * SEC)->reason, R_OPEN);
    assert_int_equal(holds(&h, "ann", hc, 8), 1);
    assert_int_equal(n_counted(&h, W_LOGIN), 2);
    assert_string_not_equal(sess_of(&h, "ann", 0)->id, sess_of(&h, "ann", 5 * SEC)->id);
    h_free(&h);
}

static void test_relogin_other_type(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    login(&h, "ann", 0, "creator");
    login(&h, "ann", 5 * SEC, "reviewer");
    expect_ended(sess_of(&h, "ann", 0), 5 * SEC, R_RELOGIN, 5, 5, 5 * SEC, 0);
    assert_string_equal(sess_of(&h, "ann", 5 * SEC)->type, "reviewer");
    assert_int_equal(holds(&h, "ann", hc, 8), 3);
    expect_hold(hc[1], "creator", 5 * SEC, 0, R_SWITCHED);
    expect_hold(hc[2], "reviewer", 5 * SEC, 1, 0);
    h_free(&h);
}

static void test_login_takes_over_lingering_seat(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 30, 0);
    login(&h, "ann", 0, "creator");
    tick(&h, 15 * MIN);
    login(&h, "ann", 15 * MIN, "creator");
    expect_ended(sess_of(&h, "ann", 0), 10 * MIN, R_USER, 600, 600, 15 * MIN, 300);
    assert_int_equal(holds(&h, "ann", hc, 8), 1);
    /* another type: the lingering seat is switched */
    tick(&h, 26 * MIN);
    login(&h, "ann", 26 * MIN, "reviewer");
    expect_ended(sess_of(&h, "ann", 15 * MIN), 25 * MIN, R_USER, 600, 600, 26 * MIN, 60);
    assert_int_equal(holds(&h, "ann", hc, 8), 3);
    expect_hold(hc[1], "creator", 26 * MIN, 0, R_SWITCHED);
    expect_hold(hc[2], "reviewer", 26 * MIN, 1, 0);
    h_free(&h);
}

static void test_activity_after_each_timeout(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[16];
    h_init(&h);
    set(&h, 20, 10, 0);
    /* after L, session open: the seat is taken again */
    login(&h, "ann", 0, "creator");
    act(&h, "ann", 15 * MIN, "reviewer"); /* the type of the session wins */
    assert_int_equal(holds(&h, "ann", hc, 16), 3);
    expect_hold(hc[1], "creator", 10 * MIN, 0, R_LIC);
    expect_hold(hc[2], "creator", 15 * MIN, 1, 0);
    logout(&h, "ann", 16 * MIN);
    expect_ended(sess_of(&h, "ann", 0), 16 * MIN, R_MANUAL, 960, 660, 16 * MIN, 0);
    /* after U with the seat lingering: implicit login on that seat */
    set(&h, 10, 20, 0);
    login(&h, "bob", 20 * MIN, "creator");
    act(&h, "bob", 35 * MIN, NULL);
    assert_int_equal(n_sessions(&h, "bob"), 2);
    expect_ended(sess_of(&h, "bob", 20 * MIN), 30 * MIN, R_USER, 600, 600, 35 * MIN, 300);
    assert_string_equal(sess_of(&h, "bob", 35 * MIN)->type, "creator");
    assert_int_equal(holds(&h, "bob", hc, 16), 1);
    /* after both: orphan without a type, implicit login with one */
    act(&h, "bob", 70 * MIN, NULL);
    assert_int_equal(n_counted(&h, W_ORPHAN), 1);
    act(&h, "bob", 71 * MIN, "reviewer");
    assert_int_equal(n_counted(&h, W_IMPLICIT), 2);
    assert_int_equal(holds(&h, "bob", hc, 16), 3);
    expect_hold(hc[1], "creator", 55 * MIN, 0, R_LIC);
    expect_hold(hc[2], "reviewer", 71 * MIN, 1, 0);
    /* after U with the switch on: nothing lingers, so it is an orphan */
    set(&h, 10, 20, 1);
    login(&h, "cy", 100 * MIN, "creator");
    act(&h, "cy", 111 * MIN, NULL);
    assert_int_equal(n_counted(&h, W_ORPHAN), 2);
    h_free(&h);
}

static void test_logout_lingering_and_orphans(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 20, 0);
    logout(&h, "ann", 0);
    act(&h, "ann", 0, NULL);
    assert_int_equal(n_counted(&h, W_ORPHAN), 2);
    assert_int_equal(holds(&h, "ann", hc, 8), 0);
    login(&h, "ann", 1 * MIN, "creator");
    tick(&h, 12 * MIN);
    logout(&h, "ann", 12 * MIN);
    expect_ended(sess_of(&h, "ann", 1 * MIN), 11 * MIN, R_USER, 600, 600, 12 * MIN, 60);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    expect_hold(hc[1], "creator", 12 * MIN, 0, R_MANUAL);
    logout(&h, "ann", 13 * MIN);
    assert_int_equal(n_counted(&h, W_ORPHAN), 3);
    struct sess_engine_stats st;
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.orphans, 3);
    assert_int_equal(st.open_sessions, 0);
    assert_int_equal(st.open_holds, 0);
    h_free(&h);
}

static void test_denied_and_downgrade(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    denied(&h, "ann", 0, "creator");
    assert_int_equal(n_counted(&h, W_DENIAL), 1);
    assert_int_equal(n_sessions(&h, "ann"), 0);
    assert_string_equal(h.v[0].type, "creator");
    downgrade(&h, "ann", 1 * SEC, "reviewer", "creator");
    assert_int_equal(n_counted(&h, W_DENIAL), 1);
    assert_int_equal(n_counted(&h, W_LOGIN), 1);
    assert_int_equal(n_counted(&h, W_DOWNGRADE), 1);
    for (size_t i = 0; i < h.n; i++)
        if (h.v[i].body == LICMON__V1__CHANGE__BODY_COUNTED && h.v[i].what == W_DOWNGRADE)
            assert_string_equal(h.v[i].type, "creator");
    denied(&h, "ann", 2 * SEC, "creator"); /* changes no session */
    logout(&h, "ann", 3 * SEC);
    const struct chg *s = sess_of(&h, "ann", 1 * SEC);
    expect_ended(s, 3 * SEC, R_MANUAL, 2, 2, 3 * SEC, 0);
    assert_string_equal(s->type, "reviewer");
    assert_string_equal(s->req, "creator");
    /* requested = granted is no downgrade */
    downgrade(&h, "bob", 4 * SEC, "reviewer", "reviewer");
    assert_int_equal(n_counted(&h, W_DOWNGRADE), 1);
    assert_string_equal(sess_of(&h, "bob", 4 * SEC)->req, "");
    h_free(&h);
}

static void test_equal_timestamps(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    login(&h, "ann", 1000, "creator");
    logout(&h, "ann", 1000);
    login(&h, "ann", 1000, "creator");
    assert_int_equal(n_sessions(&h, "ann"), 2);
    assert_int_equal(holds(&h, "ann", hc, 8), 3);
    expect_hold(hc[1], "creator", 1000, 0, R_MANUAL);
    expect_hold(hc[2], "creator", 1000, 1, 0);
    /* two records start at 1000, with distinct ids */
    const struct chg *a = NULL, *b = NULL;
    for (size_t i = 0; i < h.n; i++)
        if (h.v[i].body == LICMON__V1__CHANGE__BODY_SESSION) {
            if (!a)
                a = &h.v[i];
            else if (strcmp(h.v[i].id, a->id))
                b = &h.v[i];
        }
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->start, b->start);
    h_free(&h);
}

static void test_last_activity_updates(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    login(&h, "ann", 0, "creator");
    for (int i = 1; i <= 13; i++)
        act(&h, "ann", i * 10 * SEC, NULL);
    /* start, then la 60 s and la 120 s */
    assert_int_equal(n_emits(&h, "ann", 0), 3);
    assert_int_equal(sess_of(&h, "ann", 0)->la, 120 * SEC);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN);
    h_free(&h);
}

static void test_session_id_deterministic(void **state)
{
    (void)state;
    struct h a, b;
    h_init(&a);
    h_init(&b);
    struct h *hs[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        login(hs[k], "ann", 7, "creator");
        login(hs[k], "ann", 8, "creator");
        login(hs[k], "bob", 8, "creator");
    }
    assert_int_equal(a.loglen, b.loglen);
    assert_memory_equal(a.log, b.log, a.loglen);
    assert_string_not_equal(sess_of(&a, "ann", 8)->id, sess_of(&a, "bob", 8)->id);
    h_free(&a);
    h_free(&b);
}

/* The id's exact text: "<fnv1a64(org NUL user) in hex>-<start_ms>-<n>". */
static void test_session_id_text(void **state)
{
    (void)state;
    static const int64_t starts[] = {0, 7, -5000, 1795813548920LL, -(1LL << 52), 1LL << 52};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        struct h h;
        h_init(&h);
        login(&h, "ann", starts[i], "creator");
        login(&h, "ann", starts[i], "creator"); /* a relogin at the same instant: n = 2 */
        uint64_t f = 0xcbf29ce484222325ULL;
        for (const char *c = ORG "\0ann"; c < ORG "\0ann" + sizeof(ORG "\0ann") - 1; c++) {
            f ^= (uint8_t)*c;
            f *= 0x100000001b3ULL;
        }
        char want[80];
        for (uint32_t n = 1; n <= 2; n++) {
            snprintf(want, sizeof(want), "%016" PRIx64 "-%" PRId64 "-%" PRIu32, f, starts[i], n);
            int found = 0;
            for (size_t k = 0; k < h.n; k++)
                found |= strcmp(h.v[k].id, want) == 0;
            assert_true(found);
        }
        h_free(&h);
    }
}

/* ---- time: clock, lateness, ordering ---- */

static void test_live_timeouts_fire_by_ticks(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set(&h, 10, 10, 0);
    login(&h, "ann", 1000, "creator");
    tick(&h, 1000 + 10 * MIN + 4 * SEC);
    assert_int_equal(sess_of(&h, "ann", 1000)->reason, R_OPEN); /* within lateness */
    tick(&h, 1000 + 10 * MIN + 5 * SEC);
    assert_int_equal(sess_of(&h, "ann", 1000)->reason, R_USER);
    assert_int_equal(sess_of(&h, "ann", 1000)->end, 1000 + 10 * MIN);
    struct sess_engine_stats st;
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.open_sessions, 0);
    assert_int_equal(st.open_holds, 0);
    assert_int_equal(st.pending_timers, 1); /* the record waits to be forgotten */
    h_free(&h);
}

static void test_backfill_does_not_jump_clock(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set(&h, 10, 10, 0);
    /* events of last year, arriving now, fast */
    int64_t now = 400LL * 86400 * 1000;
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, now);
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__LOGIN, 1 * MIN, "creator", NULL, now);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 9 * MIN, NULL, NULL, now + 1);
    tick(&h, now + 2);
    assert_int_equal(n_counted(&h, W_LATE), 0);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN);
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 12 * MIN, NULL, NULL, now + 3);
    /* the clock is 12 min: bob's session (due 11 min) ended, ann's not */
    assert_int_equal(sess_of(&h, "bob", 1 * MIN)->reason, R_USER);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN);
    /* a pause of the backfill (an ingest restart, a slow network) moves
     * nothing: its next events are neither late nor behind a timeout */
    tick(&h, now + 3 + 7 * MIN + 5 * SEC);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 13 * MIN, NULL, NULL, now + 8 * MIN);
    assert_int_equal(n_counted(&h, W_LATE), 0);
    /* once the backfill has been quiet for ten minutes, wall time moves
     * the clock on from its last event time */
    tick(&h, now + 8 * MIN + 19 * MIN);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN);
    tick(&h, now + 8 * MIN + 20 * MIN + 5 * SEC);
    assert_int_equal(sess_of(&h, "ann", 0)->end, 23 * MIN);
    h_free(&h);
}

static void test_late_event(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set(&h, 10, 10, 0);
    login(&h, "ann", 100 * SEC, "creator");
    login(&h, "bob", 96 * SEC, "creator"); /* 4 s behind: in time */
    assert_int_equal(n_counted(&h, W_LATE), 0);
    login(&h, "cy", 94 * SEC, "creator"); /* 6 s behind: late, still applied */
    assert_int_equal(n_counted(&h, W_LATE), 1);
    assert_non_null(sess_of(&h, "cy", 94 * SEC));
    /* a quiet live stream: its clock follows the wall clock */
    tick(&h, 200 * SEC);
    ev_full(&h, ORG, "dan", LICMON__V1__EVENT_KIND__LOGIN, 150 * SEC, "creator", NULL, 200 * SEC);
    assert_int_equal(n_counted(&h, W_LATE), 2);
    struct sess_engine_stats st;
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.late_events, 2);
    h_free(&h);
}

/* A producer's clock or time zone that is wrong (README: a clock that is
 * wrong): an event stamped hours ahead counts a second after its arrival,
 * so it cannot end the other users' sessions early or make their events
 * late; one a second ahead (clocks on NTP differ by ms) keeps its time. */
static void test_event_stamped_ahead_counts_near_its_arrival(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set(&h, 10, 10, 0); /* allowed lateness 5 s: the allowance is 1 s */
    login(&h, "ann", 100 * SEC, "creator");
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__LOGIN, 100 * SEC + 8 * 60 * MIN, "creator",
            NULL, 160 * SEC);
    const struct chg *bob = sess_of(&h, "bob", 161 * SEC);
    assert_non_null(bob);
    assert_int_equal(bob->reason, R_OPEN);
    struct sess_engine_stats st;
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.ahead_events, 1);
    assert_int_equal(st.open_sessions, 2);
    /* ann's session goes on by ingest's clock: her next event, 3 s on its
     * way, is on time, and her timeout fires when it is due, not before */
    tick(&h, 5 * MIN);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 5 * MIN - 3 * SEC, NULL, NULL,
            5 * MIN);
    assert_int_equal(n_counted(&h, W_LATE), 0);
    assert_int_equal(sess_of(&h, "ann", 100 * SEC)->reason, R_OPEN);
    tick(&h, 15 * MIN + 5 * SEC - 1);
    assert_int_equal(sess_of(&h, "ann", 100 * SEC)->reason, R_OPEN);
    /* a second after its arrival keeps its time; a ms more is taken there */
    const int64_t at = 15 * MIN + 5 * SEC;
    ev_full(&h, ORG, "cy", LICMON__V1__EVENT_KIND__LOGIN, at + SEC, "creator", NULL, at);
    assert_non_null(sess_of(&h, "cy", at + SEC));
    ev_full(&h, ORG, "dan", LICMON__V1__EVENT_KIND__LOGIN, at + SEC + 1, "creator", NULL, at);
    assert_non_null(sess_of(&h, "dan", at + SEC));
    /* an event not past the org's clock keeps its time, however stale its
     * arrival (ingest restarted while the host's clock was behind) */
    ev_full(&h, ORG, "ed", LICMON__V1__EVENT_KIND__LOGIN, at + SEC, "creator", NULL, 10 * MIN);
    assert_non_null(sess_of(&h, "ed", at + SEC));
    flush(&h);
    expect_ended(sess_of(&h, "ann", 100 * SEC), 15 * MIN - 3 * SEC, R_USER, 797, 797,
                 15 * MIN - 3 * SEC, 0);
    assert_int_equal(sess_of(&h, "bob", 161 * SEC)->end, 161 * SEC + 10 * MIN);
    assert_int_equal(n_counted(&h, W_LATE), 0);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.ahead_events, 2);
    h_free(&h);
}

static void test_cross_user_reordering_is_exact(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set(&h, 1, 1, 0);
    login(&h, "ann", 0, "creator");
    login(&h, "bob", 0, "creator");
    /* bob's activity at 60 s arrives after ann's at 64 s: still in time */
    act(&h, "ann", 64 * SEC, "creator");
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 59 * SEC, NULL, NULL, 64 * SEC);
    flush(&h);
    assert_int_equal(n_sessions(&h, "bob"), 1);
    assert_int_equal(sess_of(&h, "bob", 0)->end, 119 * SEC);
    assert_int_equal(n_sessions(&h, "ann"), 2);
    h_free(&h);
}

static void test_same_user_reordering(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 10, 10, 0);
    /* activities swapped inside a session: exact */
    login(&h, "ann", 0, "creator");
    act(&h, "ann", 30 * SEC, NULL);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 28 * SEC, NULL, NULL, 31 * SEC);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 32 * SEC, NULL, NULL, 32 * SEC);
    logout(&h, "ann", 40 * SEC);
    /* the last request arrives after the logout: no phantom session */
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 39 * SEC, "creator", NULL, 41 * SEC);
    flush(&h);
    assert_int_equal(n_sessions(&h, "ann"), 1);
    expect_ended(sess_of(&h, "ann", 0), 40 * SEC, R_MANUAL, 40, 40, 40 * SEC, 0);
    assert_int_equal(sess_of(&h, "ann", 0)->la, 39 * SEC);
    assert_int_equal(holds(&h, "ann", hc, 8), 2);
    assert_int_equal(n_counted(&h, W_ORPHAN) + n_counted(&h, W_IMPLICIT), 0);
    h_free(&h);
}

/* Two clients of one user racing at the user's own timeout: the later
 * activity arrives first. It waits until the timeout is final (the horizon
 * passes it), so the earlier one, arriving in time, keeps the session. */
static void test_same_user_race_across_timeout(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    struct sess_engine_stats st;
    h_init(&h);
    set(&h, 10, 10, 0);
    login(&h, "ann", 0, "creator");
    act(&h, "ann", 10 * MIN + SEC, NULL);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 1);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_OPEN); /* nothing fired early */
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 10 * MIN - SEC, NULL, NULL,
            10 * MIN + 2 * SEC);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 0);
    tick(&h, 21 * MIN);
    assert_int_equal(n_sessions(&h, "ann"), 1);
    expect_ended(sess_of(&h, "ann", 0), 20 * MIN + SEC, R_USER, 1201, 1201, 20 * MIN + SEC, 0);
    assert_int_equal(sess_of(&h, "ann", 0)->la, 10 * MIN + SEC);
    assert_int_equal(n_counted(&h, W_IMPLICIT), 0);
    /* U > L: the seat is not released and taken again */
    set(&h, 20, 10, 0);
    login(&h, "bob", 100 * MIN, "creator");
    act(&h, "bob", 110 * MIN + SEC, NULL);
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 110 * MIN - SEC, NULL, NULL,
            110 * MIN + 2 * SEC);
    tick(&h, 131 * MIN);
    assert_int_equal(holds(&h, "bob", hc, 8), 2);
    expect_hold(hc[1], "creator", 120 * MIN + SEC, 0, R_LIC);
    /* no older event comes: the timeout fires once the horizon passes it,
     * then the held activity is an implicit login, as it always was */
    login(&h, "cy", 200 * MIN, "creator");
    act(&h, "cy", 220 * MIN + SEC, "creator");
    assert_int_equal(n_sessions(&h, "cy"), 1);
    tick(&h, 220 * MIN + 6 * SEC);
    assert_int_equal(n_sessions(&h, "cy"), 2);
    expect_ended(sess_of(&h, "cy", 200 * MIN), 220 * MIN, R_USER, 1200, 600, 210 * MIN, 0);
    /* a settings change moving the timeout past a held event applies it */
    login(&h, "dan", 300 * MIN, "creator");
    act(&h, "dan", 320 * MIN + SEC, NULL);
    set_org(&h, ORG, 30, 30, 0, 5, 320 * MIN + 2 * SEC);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 0);
    flush(&h);
    assert_int_equal(n_sessions(&h, "dan"), 1);
    assert_int_equal(sess_of(&h, "dan", 300 * MIN)->end, 350 * MIN + SEC);
    h_free(&h);
}

static void test_behind_after_timers(void **state)
{
    (void)state;
    struct h h;
    const struct chg *hc[8];
    h_init(&h);
    set(&h, 20, 10, 0);
    /* L released the seat (state time 10 min), then an older activity
     * comes: last_activity moves back up, the seat is taken at 10 min */
    login(&h, "ann", 0, "creator");
    tick(&h, 10 * MIN + 5 * SEC);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 10 * MIN - 2 * SEC, NULL, NULL,
            10 * MIN + 6 * SEC);
    assert_int_equal(n_counted(&h, W_LATE), 1);
    assert_int_equal(holds(&h, "ann", hc, 8), 3);
    expect_hold(hc[1], "creator", 10 * MIN, 0, R_LIC);
    expect_hold(hc[2], "creator", 10 * MIN, 1, 0);
    assert_int_equal(sess_of(&h, "ann", 0)->la, 10 * MIN - 2 * SEC); /* emitted: moved >= 60 s */
    /* after the session ended and the seat went: applied at the state time */
    set(&h, 10, 20, 0);
    login(&h, "bob", 100 * MIN, "creator");
    tick(&h, 120 * MIN + 5 * SEC);
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 115 * MIN, "creator", NULL,
            121 * MIN);
    assert_int_equal(n_sessions(&h, "bob"), 2);
    assert_non_null(sess_of(&h, "bob", 120 * MIN));
    /* a login older than a logout is absorbed */
    login(&h, "cy", 200 * MIN, "creator");
    logout(&h, "cy", 201 * MIN);
    ev_full(&h, ORG, "cy", LICMON__V1__EVENT_KIND__LOGIN, 201 * MIN - 1, "creator", NULL,
            201 * MIN + 1);
    flush(&h);
    assert_int_equal(n_sessions(&h, "cy"), 1);
    h_free(&h);
}

static void test_settings_change_mid_stream(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    login(&h, "ann", 0, "creator"); /* defaults: 120 min */
    login(&h, "bob", 50 * MIN, "creator");
    tick(&h, 60 * MIN);
    assert_int_equal(n_counted(&h, W_LOGIN), 2);
    /* U and L down to 5 min at 60 min (horizon 59:55): ann and bob idle
     * longer, they end at the change; a later session uses 5 min */
    set_org(&h, ORG, 5, 5, 0, 5, 60 * MIN);
    assert_int_equal(sess_of(&h, "ann", 0)->end, 60 * MIN - 5 * SEC);
    assert_int_equal(sess_of(&h, "bob", 50 * MIN)->end, 60 * MIN - 5 * SEC);
    login(&h, "cy", 61 * MIN, "creator");
    flush(&h);
    assert_int_equal(sess_of(&h, "cy", 61 * MIN)->end, 66 * MIN);
    /* settings are passed on */
    int n = 0;
    for (size_t i = 0; i < h.n; i++)
        n += h.v[i].body == LICMON__V1__CHANGE__BODY_SETTINGS;
    assert_int_equal(n, 1);
    h_free(&h);
}

static void test_orgs_are_independent(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    set_org(&h, "a", 1, 1, 0, 5, 0);
    set_org(&h, "b", 10, 10, 0, 5, 0);
    ev_full(&h, "a", "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, 0);
    ev_full(&h, "b", "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, 0);
    tick(&h, 5 * MIN);
    int ended_a = 0, ended_b = 0;
    for (size_t i = 0; i < h.n; i++)
        if (h.v[i].body == LICMON__V1__CHANGE__BODY_SESSION && h.v[i].end) {
            ended_a += !strcmp(h.v[i].org, "a");
            ended_b += !strcmp(h.v[i].org, "b");
        }
    assert_int_equal(ended_a, 1);
    assert_int_equal(ended_b, 0);
    h_free(&h);
}

/* ---- saved state ---- */

struct kv {
    uint8_t *k, *v;
    size_t kl, vl;
};

struct store {
    struct kv *a;
    size_t n, cap;
};

static void store_put(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct store *s = arg;
    assert_true(klen > 1 && ((const uint8_t *)key)[0] == KEY_NS_STATE);
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i].kl == klen && !memcmp(s->a[i].k, key, klen)) {
            free(s->a[i].v);
            free(s->a[i].k);
            if (!val) {
                s->a[i] = s->a[--s->n];
                return;
            }
            s->a[i].k = xmemdup(key, klen);
            s->a[i].v = xmemdup(val, vlen);
            s->a[i].vl = vlen;
            return;
        }
    if (!val)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->a = xrealloc(s->a, s->cap * sizeof(*s->a));
    }
    s->a[s->n++] = (struct kv){xmemdup(key, klen), xmemdup(val, vlen), klen, vlen};
}

static void store_free(struct store *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->a[i].k);
        free(s->a[i].v);
    }
    free(s->a);
    memset(s, 0, sizeof(*s));
}

/* saves, drops the engine and loads a fresh one from the store, in a
 * shuffled order */
static void h_restart(struct h *h, struct store *s, unsigned *seed)
{
    sess_engine_save_dirty(h->e, store_put, s);
    sess_engine_free(&h->e);
    h->e = sess_engine_new(on_change, h);
    size_t *ord = xmalloc((s->n + 1) * sizeof(*ord));
    for (size_t i = 0; i < s->n; i++)
        ord[i] = i;
    for (size_t i = s->n; i > 1; i--) {
        size_t j = (size_t)rand_r(seed) % i, t = ord[i - 1];
        ord[i - 1] = ord[j];
        ord[j] = t;
    }
    for (size_t i = 0; i < s->n; i++)
        assert_int_equal(sess_engine_load(h->e, s->a[ord[i]].k, s->a[ord[i]].kl, s->a[ord[i]].v,
                                          s->a[ord[i]].vl),
                         0);
    free(ord);
    /* every user record is one pending timer, right after the load */
    struct sess_engine_stats st;
    size_t users = 0;
    sess_engine_stats(h->e, &st);
    for (size_t i = 0; i < s->n; i++)
        users += s->a[i].k[1] == 'U';
    assert_int_equal(st.pending_timers, users);
}

static void scripted_stream(struct h *h, int step, struct store *s, unsigned *seed)
{
    /* a stream touching every kind of state; restart before step `step` */
    int k = 0;
#define STEP(x)                                                                                    \
    do {                                                                                           \
        if (s && k == step)                                                                        \
            h_restart(h, s, seed);                                                                 \
        k++;                                                                                       \
        x;                                                                                         \
    } while (0)
    STEP(set(h, 10, 20, 0));
    STEP(login(h, "ann", 0, "creator"));
    STEP(downgrade(h, "bob", 1 * SEC, "reviewer", "creator"));
    STEP(act(h, "ann", 2 * MIN, NULL));
    STEP(denied(h, "cy", 3 * MIN, "creator"));
    STEP(ev_full(h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 150 * SEC, NULL, NULL, 4 * MIN));
    STEP(tick(h, 13 * MIN));
    STEP(act(h, "ann", 13 * MIN, "reviewer"));
    STEP(set(h, 10, 5, 1));
    STEP(tick(h, 19 * MIN));
    STEP(login(h, "bob", 19 * MIN, "creator"));
    STEP(logout(h, "bob", 19 * MIN));
    STEP(tick(h, 40 * MIN));
    STEP(act(h, "ann", 41 * MIN, NULL));
    STEP(login(h, "dan", 42 * MIN, "creator"));
    /* dan's two clients race at L's instant (47 min): held, then drained */
    STEP(act(h, "dan", 47 * MIN + SEC, NULL));
    STEP(ev_full(h, ORG, "dan", LICMON__V1__EVENT_KIND__ACTIVITY, 47 * MIN - SEC, NULL, NULL,
                 47 * MIN + 2 * SEC));
    STEP(flush(h));
#undef STEP
}

static void test_save_load_equals_uninterrupted(void **state)
{
    (void)state;
    struct h ref;
    h_init(&ref);
    scripted_stream(&ref, -1, NULL, NULL);
    for (int step = 0; step <= 18; step++) {
        struct h h;
        struct store s = {0};
        unsigned seed = (unsigned)step;
        h_init(&h);
        scripted_stream(&h, step, &s, &seed);
        assert_int_equal(h.loglen, ref.loglen);
        assert_memory_equal(h.log, ref.log, ref.loglen);
        /* every record over at the end: the store keeps only org records */
        sess_engine_save_dirty(h.e, store_put, &s);
        for (size_t i = 0; i < s.n; i++)
            assert_int_equal(s.a[i].k[1], 'O');
        store_free(&s);
        h_free(&h);
    }
    h_free(&ref);
}

/* At most SESS_MAX_HELD (32) events wait per user; the longest user record
 * they make is saved and loaded back whole, and any damage to it refused. */
static void test_held_events_bounded_and_saved(void **state)
{
    (void)state;
    struct h h;
    struct store s = {0};
    struct sess_engine_stats st;
    static const char t32[] = "t0123456789012345678901234567890";
    static const char r32[] = "r0123456789012345678901234567890";
    h_init(&h);
    set(&h, 10, 10, 0);
    downgrade(&h, "ann", 0, t32, r32);
    for (int i = 0; i < 32; i++)
        ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__LOGIN, 10 * MIN + 10 * i, t32, r32,
                10 * MIN + 10 * i);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 32);
    sess_engine_save_dirty(h.e, store_put, &s);
    struct kv *x = NULL;
    for (size_t i = 0; i < s.n; i++)
        if (s.a[i].k[1] == 'U')
            x = &s.a[i];
    assert_non_null(x);
    assert_true(x->vl > 32 * 75);
    struct sess_engine *e = sess_engine_new(NULL, NULL);
    for (size_t l = 0; l < x->vl; l++)
        assert_int_equal(sess_engine_load(e, x->k, x->kl, x->v, l), -1);
    /* out of time order, a logout carrying a type, an unknown kind */
    assert_int_equal(x->v[0], 2);
    uint8_t *bad = xmemdup(x->v, x->vl);
    /* the fixed part (two 32-byte types), the count, then 75 bytes each */
    size_t ev1 = 4 + 8 * 8 + 4 + 2 * 33 + 1, ev2 = ev1 + 8 + 1 + 2 * 33;
    assert_int_equal(x->vl, ev1 + 32 * 75);
    assert_int_equal(bad[ev1 - 1], 32);
    bad[ev2 + 1] = 0;
    assert_int_equal(sess_engine_load(e, x->k, x->kl, bad, x->vl), -1);
    memcpy(bad, x->v, x->vl);
    bad[ev1 + 8] = LICMON__V1__EVENT_KIND__LOGOUT;
    assert_int_equal(sess_engine_load(e, x->k, x->kl, bad, x->vl), -1);
    bad[ev1 + 8] = LICMON__V1__EVENT_KIND__DENIED;
    assert_int_equal(sess_engine_load(e, x->k, x->kl, bad, x->vl), -1);
    free(bad);
    assert_int_equal(sess_engine_load(e, x->k, x->kl, x->v, x->vl), 0);
    sess_engine_stats(e, &st);
    assert_int_equal(st.held_events, 32);
    sess_engine_free(&e);
    /* the 33rd: the waiting ones apply as they came (the rule before
     * holding: the timeout first), and nothing is held any more */
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__ACTIVITY, 10 * MIN + 320, NULL, NULL,
            10 * MIN + 320);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 0);
    expect_ended(sess_of(&h, "ann", 0), 10 * MIN, R_USER, 600, 600, 10 * MIN, 0);
    assert_int_equal(n_sessions(&h, "ann"), 33);
    store_free(&s);
    h_free(&h);
    /* 32 waiting, then an earlier one in time: it needs no place, it goes
     * first and the timeout never happens */
    h_init(&h);
    set(&h, 10, 10, 0);
    login(&h, "bob", 0, "creator");
    for (int i = 1; i <= 32; i++)
        act(&h, "bob", 10 * MIN + i, NULL);
    ev_full(&h, ORG, "bob", LICMON__V1__EVENT_KIND__ACTIVITY, 10 * MIN - SEC, NULL, NULL,
            10 * MIN + SEC);
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.held_events, 0);
    flush(&h);
    assert_int_equal(n_sessions(&h, "bob"), 1);
    assert_int_equal(sess_of(&h, "bob", 0)->end, 20 * MIN + 32);
    h_free(&h);
}

/* Users holding events when a settings change frees them: they go in user
 * order, whatever order a restart loaded them in. */
static void held_users_stream(struct h *h, struct store *s, unsigned *seed)
{
    static const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7",
                                        "u8", "u9", "ua", "ub", "uc", "ud", "ue", "uf"};
    set(h, 10, 10, 0);
    for (int i = 0; i < 16; i++)
        login(h, users[i], 0, "creator");
    for (int i = 0; i < 16; i++)
        act(h, users[15 - i], 10 * MIN + 50 * i, NULL);
    if (s)
        h_restart(h, s, seed);
    set_org(h, ORG, 30, 30, 0, 5, 10 * MIN + SEC);
    flush(h);
}

static void test_held_users_restart(void **state)
{
    (void)state;
    struct h ref;
    h_init(&ref);
    held_users_stream(&ref, NULL, NULL);
    for (unsigned seed = 0; seed < 16; seed++) {
        struct h h;
        struct store s = {0};
        unsigned sd = seed;
        h_init(&h);
        held_users_stream(&h, &s, &sd);
        assert_int_equal(h.loglen, ref.loglen);
        assert_memory_equal(h.log, ref.log, ref.loglen);
        store_free(&s);
        h_free(&h);
    }
    h_free(&ref);
}

static void test_load_rejects_damage(void **state)
{
    (void)state;
    struct h h;
    struct store s = {0};
    h_init(&h);
    login(&h, "ann", 0, "creator");
    sess_engine_save_dirty(h.e, store_put, &s);
    assert_int_equal(s.n, 2);
    for (size_t i = 0; i < s.n; i++) {
        struct kv *x = &s.a[i];
        struct sess_engine *e = sess_engine_new(NULL, NULL);
        /* every truncation, one byte too many, every single-byte version */
        for (size_t l = 0; l < x->vl; l++)
            assert_int_equal(sess_engine_load(e, x->k, x->kl, x->v, l), -1);
        uint8_t *big = xcalloc(1, x->vl + 1);
        memcpy(big, x->v, x->vl);
        assert_int_equal(sess_engine_load(e, x->k, x->kl, big, x->vl + 1), -1);
        big[0] = 99;
        assert_int_equal(sess_engine_load(e, x->k, x->kl, big, x->vl), -1);
        free(big);
        /* bad keys */
        assert_int_equal(sess_engine_load(e, "X", 1, x->v, x->vl), -1);
        assert_int_equal(sess_engine_load(e, "SZacme", 6, x->v, x->vl), -1);
        assert_int_equal(sess_engine_load(e, "SUacme", 6, x->v, x->vl), -1);
        assert_int_equal(sess_engine_load(e, "SU\0ann", 6, x->v, x->vl), -1);
        assert_int_equal(sess_engine_load(e, "SUac me\0ann", 11, x->v, x->vl), -1);
        /* random bytes never crash */
        unsigned seed = 7;
        uint8_t junk[200];
        for (int r = 0; r < 2000; r++) {
            size_t l = (size_t)rand_r(&seed) % sizeof(junk);
            for (size_t j = 0; j < l; j++)
                junk[j] = (uint8_t)rand_r(&seed);
            if (l > 0)
                junk[0] = 1;
            sess_engine_load(e, x->k, x->kl, junk, l);
        }
        sess_engine_free(&e);
        /* the intact pair loads once, and not twice */
        e = sess_engine_new(NULL, NULL);
        assert_int_equal(sess_engine_load(e, x->k, x->kl, x->v, x->vl), 0);
        assert_int_equal(sess_engine_load(e, x->k, x->kl, x->v, x->vl), -1);
        sess_engine_free(&e);
    }
    store_free(&s);
    h_free(&h);
}

/* every byte of valid values set to every value: loads or is refused,
 * never crashes; semantic damage that the lengths cannot show is refused */
static void test_load_byte_mutations(void **state)
{
    (void)state;
    struct h h;
    struct store s = {0};
    h_init(&h);
    downgrade(&h, "ann", 0, "reviewer", "creator");
    sess_engine_save_dirty(h.e, store_put, &s);
    for (size_t i = 0; i < s.n; i++) {
        struct kv *x = &s.a[i], *other = &s.a[1 - i];
        uint8_t *m = xmemdup(x->v, x->vl);
        for (size_t pos = 0; pos < x->vl; pos++) {
            for (int v = 0; v < 256; v++) {
                struct sess_engine *e = sess_engine_new(NULL, NULL);
                assert_int_equal(sess_engine_load(e, other->k, other->kl, other->v, other->vl), 0);
                m[pos] = (uint8_t)v;
                int rc = sess_engine_load(e, x->k, x->kl, m, x->vl);
                assert_true(rc == 0 || rc == -1);
                if (rc == 0) { /* whatever was accepted must run */
                    Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
                    ev.org = ORG;
                    ev.user = "ann";
                    ev.kind = LICMON__V1__EVENT_KIND__ACTIVITY;
                    ev.license_type = "creator";
                    ev.ts_ms = 1;
                    sess_engine_event(e, &ev, 1);
                    sess_engine_tick(e, FAR);
                }
                sess_engine_free(&e);
            }
            m[pos] = x->v[pos];
        }
        free(m);
    }
    /* the user value: version, session state, hold, end reason, then the
     * eight instants (la, start, end, state time, emitted la, held stretch
     * start, held ms, release), n, type, requested type */
    struct kv *u = s.a[0].k[1] == 'U' ? &s.a[0] : &s.a[1];
    struct {
        size_t pos;
        uint8_t val;
    } bad[] = {
        {1, 0},                   /* no session state */
        {1, 3},                   /* unknown state */
        {2, 2},                   /* hold is 0 or 1 */
        {3, 2},                   /* an open session with an end reason */
        {4 + 6 * 8 + 7, 0x80},    /* negative held time */
        {4 + 8 + 7, 0x7f},        /* start out of range */
        {4 + 8 * 8 + 4 + 1, 'R'}, /* type "Reviewer": not a type */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *m = xmemdup(u->v, u->vl);
        struct sess_engine *e = sess_engine_new(NULL, NULL);
        m[bad[i].pos] = bad[i].val;
        assert_int_equal(sess_engine_load(e, u->k, u->kl, m, u->vl), -1);
        sess_engine_free(&e);
        free(m);
    }
    store_free(&s);
    h_free(&h);
}

static void test_records_are_forgotten(void **state)
{
    (void)state;
    struct h h;
    struct store s = {0};
    h_init(&h);
    login(&h, "ann", 0, "creator");
    logout(&h, "ann", 1 * SEC);
    sess_engine_save_dirty(h.e, store_put, &s);
    assert_int_equal(s.n, 2);
    tick(&h, 1 * SEC + 60 * MIN + 5 * SEC - 1);
    sess_engine_save_dirty(h.e, store_put, &s);
    assert_int_equal(s.n, 2); /* kept an hour for late events */
    tick(&h, 1 * SEC + 60 * MIN + 5 * SEC);
    sess_engine_save_dirty(h.e, store_put, &s);
    assert_int_equal(s.n, 1); /* only the org */
    struct sess_engine_stats st;
    sess_engine_stats(h.e, &st);
    assert_int_equal(st.pending_timers, 0);
    /* forgotten before ever being saved: no delete, no leak */
    login(&h, "bob", 200 * MIN, "creator");
    logout(&h, "bob", 200 * MIN);
    tick(&h, 261 * MIN);
    sess_engine_save_dirty(h.e, store_put, &s);
    assert_int_equal(s.n, 1);
    store_free(&s);
    h_free(&h);
}

/* thousands of users and dozens of types: the tables grow; every session
 * ends at its own last_activity + U; a restart midway changes nothing */
static void many_users(struct h *h, int restart, struct store *s)
{
    unsigned seed = 3;
    char user[16], type[16];
    set(h, 10, 10, 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        snprintf(type, sizeof(type), "t%d", i % 40);
        login(h, user, i * 100, type);
    }
    if (restart)
        h_restart(h, s, &seed);
    for (int i = 0; i < 3000; i += 2) {
        snprintf(user, sizeof(user), "u%d", i);
        act(h, user, 5 * MIN + i, NULL);
    }
    flush(h);
}

static void test_many_users_and_types(void **state)
{
    (void)state;
    struct h h, h2;
    struct store s = {0};
    h_init(&h);
    many_users(&h, 0, NULL);
    int ended = 0, acq = 0, rel = 0;
    for (size_t i = 0; i < h.n; i++) {
        const struct chg *c = &h.v[i];
        if (c->body == LICMON__V1__CHANGE__BODY_SESSION && c->end) {
            int k = atoi(c->user + 1);
            char type[16];
            snprintf(type, sizeof(type), "t%d", k % 40);
            assert_string_equal(c->type, type);
            assert_int_equal(c->la, k % 2 ? k * 100 : 5 * MIN + k);
            assert_int_equal(c->end, c->la + 10 * MIN);
            assert_int_equal(c->rel, c->end);
            ended++;
        }
        if (c->body == LICMON__V1__CHANGE__BODY_HOLD)
            c->acquired ? acq++ : rel++;
    }
    assert_int_equal(ended, 3000);
    assert_int_equal(acq, 3000);
    assert_int_equal(rel, 3000);
    h_init(&h2);
    many_users(&h2, 1, &s);
    assert_int_equal(h2.loglen, h.loglen);
    assert_memory_equal(h2.log, h.log, h.loglen);
    store_free(&s);
    h_free(&h2);
    h_free(&h);
}

static void test_invalid_input_ignored(void **state)
{
    (void)state;
    struct h h;
    h_init(&h);
    ev_full(&h, "bad org", "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, 0);
    ev_full(&h, ORG, "", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, 0);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "", NULL, 0);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__KIND_UNSPECIFIED, 0, "x", NULL, 0);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__LOGIN, INT64_MAX, "creator", NULL, 0);
    ev_full(&h, ORG, "ann", LICMON__V1__EVENT_KIND__LOGIN, INT64_MIN, "creator", NULL, 0);
    assert_int_equal(h.n, 0);
    Licmon__V1__OrgSettings *bad = settings_default("bad org");
    sess_engine_settings(h.e, bad, 0);
    settings_free(&bad);
    assert_int_equal(h.n, 0);
    /* out-of-range timeouts: 0 means the default, huge is capped */
    set_org(&h, "b", 0, 1000000000, 0, -1, 0);
    ev_full(&h, "b", "ann", LICMON__V1__EVENT_KIND__LOGIN, 0, "creator", NULL, 0);
    tick(&h, 120 * MIN - 1);
    tick(&h, 120 * MIN);
    assert_int_equal(h.v[h.n - 1].body, LICMON__V1__CHANGE__BODY_SESSION);
    assert_int_equal(h.v[h.n - 1].end, 120 * MIN);
    h.n = 0;
    /* extreme wall clocks do not overflow */
    login(&h, "ann", 0, "creator");
    tick(&h, INT64_MIN);
    tick(&h, INT64_MAX);
    assert_int_equal(sess_of(&h, "ann", 0)->reason, R_USER);
    h_free(&h);
}

/* ---- property test: random streams against a brute-force model ---- */

#define P_MAX_EV 48
#define P_USERS 4
#define P_MAX_OUT 256

struct p_ev {
    int org, user, kind;
    int64_t ts, arr;
    int type, req; /* index into p_types, -1 none */
    int idx;       /* position in event-time order */
};

static const char *const p_types[] = {"a", "b", "c"};
static const char *const p_orgs[] = {"o1", "o2"};
static const char *const p_users[] = {"u0", "u1", "u2", "u3"};

struct p_set {
    int64_t u_ms, l_ms, late_ms;
    int releases;
};

/* what both sides produce, in comparable form */
struct p_sess {
    int org, user;
    char type[8], req[8];
    int64_t start, la, end, uis, lis, rel, tail;
    int reason;
};

struct p_hold {
    int org, user;
    char type[8];
    int64_t acq, rel;
    int reason;
};

struct p_out {
    struct p_sess s[P_MAX_OUT];
    struct p_hold hd[P_MAX_OUT];
    int ns, nh;
    int counts[8];
};

static int p_sess_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct p_sess));
}

static int p_hold_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct p_hold));
}

/* The model: for one (org, user), walk the events in event-time order and,
 * before each, play every timeout due at or before it. Sessions and holds
 * are plain lists; the license metric is computed afterwards by
 * intersecting each session with the hold list. */
struct m_user {
    struct p_out *out;
    const struct p_set *st;
    int org, user;
    int open, held, cur, hcur, pend; /* pend: ended session whose seat is held */
    int64_t la, last_rel;
};

static void m_release(struct m_user *m, int64_t t, int reason)
{
    m->out->hd[m->hcur].rel = t;
    m->out->hd[m->hcur].reason = reason;
    m->held = 0;
    m->last_rel = t;
    if (m->pend >= 0) {
        m->out->s[m->pend].rel = t;
        m->pend = -1;
    }
}

static void m_end(struct m_user *m, int64_t t, int reason)
{
    struct p_sess *x = &m->out->s[m->cur];
    x->end = t;
    x->reason = reason;
    x->la = m->la;
    m->open = 0;
    if (m->held)
        m->pend = m->cur;
    else
        x->rel = m->last_rel;
}

static void m_acquire(struct m_user *m, int64_t t, const char *type)
{
    struct p_hold *x = &m->out->hd[m->out->nh];
    memset(x, 0, sizeof(*x));
    x->org = m->org;
    x->user = m->user;
    snprintf(x->type, sizeof(x->type), "%s", type);
    x->acq = t;
    x->rel = INT64_MAX;
    m->hcur = m->out->nh++;
    m->held = 1;
}

static void m_start(struct m_user *m, int64_t t, const char *type, const char *req, int implicit)
{
    if (m->open)
        m_end(m, t, R_RELOGIN);
    if (m->held && strcmp(m->out->hd[m->hcur].type, type))
        m_release(m, t, R_SWITCHED);
    if (m->held && m->pend >= 0) { /* taken over */
        m->out->s[m->pend].rel = t;
        m->pend = -1;
    }
    if (!m->held)
        m_acquire(m, t, type);
    struct p_sess *x = &m->out->s[m->out->ns];
    memset(x, 0, sizeof(*x));
    x->org = m->org;
    x->user = m->user;
    snprintf(x->type, sizeof(x->type), "%s", type);
    snprintf(x->req, sizeof(x->req), "%s", req);
    x->start = t;
    m->cur = m->out->ns++;
    m->open = 1;
    m->la = t;
    m->out->counts[implicit ? W_IMPLICIT : W_LOGIN]++;
    if (*req)
        m->out->counts[W_DOWNGRADE]++;
}

static void m_timeouts(struct m_user *m, int64_t upto)
{
    for (;;) {
        int64_t ds = m->open ? m->la + m->st->u_ms : INT64_MAX;
        int64_t dh = m->held ? m->la + m->st->l_ms : INT64_MAX;
        int64_t d = ds < dh ? ds : dh;
        if (d == INT64_MAX || d > upto)
            return;
        if (ds == d) {
            m_end(m, d, R_USER);
            if (m->held && m->st->releases)
                m_release(m, d, R_USER);
        }
        if (m->held && dh == d)
            m_release(m, d, R_LIC);
    }
}

static void model_user(const struct p_ev *evs, int n, int org, int user, const struct p_set *st,
                       struct p_out *out)
{
    struct m_user m = {out, st, org, user, 0, 0, -1, -1, -1, 0, 0};
    int first_s = out->ns, first_h = out->nh;
    for (int i = 0; i < n; i++) {
        const struct p_ev *e = &evs[i];
        if (e->org != org || e->user != user)
            continue;
        m_timeouts(&m, e->ts);
        const char *type = e->type >= 0 ? p_types[e->type] : "";
        switch (e->kind) {
        case LICMON__V1__EVENT_KIND__LOGIN:
            m_start(&m, e->ts, type, e->req >= 0 ? p_types[e->req] : "", 0);
            break;
        case LICMON__V1__EVENT_KIND__ACTIVITY:
            if (m.open) {
                m.la = e->ts;
                if (!m.held)
                    m_acquire(&m, e->ts, out->s[m.cur].type);
            } else if (m.held) {
                m_start(&m, e->ts, *type ? type : out->hd[m.hcur].type, "", 1);
            } else if (*type) {
                m_start(&m, e->ts, type, "", 1);
            } else {
                out->counts[W_ORPHAN]++;
            }
            break;
        case LICMON__V1__EVENT_KIND__LOGOUT:
            if (m.open) {
                m_end(&m, e->ts, R_MANUAL);
                if (m.held)
                    m_release(&m, e->ts, R_MANUAL);
            } else if (m.held) {
                m_release(&m, e->ts, R_MANUAL);
            } else {
                out->counts[W_ORPHAN]++;
            }
            break;
        case LICMON__V1__EVENT_KIND__DENIED:
            out->counts[W_DENIAL]++;
            break;
        }
    }
    m_timeouts(&m, INT64_MAX - 1);
    /* the metrics, from the lists */
    for (int i = first_s; i < out->ns; i++) {
        struct p_sess *x = &out->s[i];
        int64_t held_ms = 0;
        for (int j = first_h; j < out->nh; j++) {
            int64_t a = out->hd[j].acq > x->start ? out->hd[j].acq : x->start;
            int64_t b = out->hd[j].rel < x->end ? out->hd[j].rel : x->end;
            if (b > a)
                held_ms += b - a;
        }
        x->uis = (x->end - x->start) / 1000;
        x->lis = held_ms / 1000;
        x->tail = x->rel > x->end ? (x->rel - x->end) / 1000 : 0;
    }
}

/* collects the engine's last version of each session, and its holds */
static void engine_out(const struct h *h, struct p_out *out)
{
    memset(out, 0, sizeof(*out));
    int open_h[2][P_USERS];
    memset(open_h, -1, sizeof(open_h));
    for (size_t i = 0; i < h->n; i++) {
        const struct chg *c = &h->v[i];
        int org = -1, user = -1;
        for (int k = 0; k < 2; k++)
            if (!strcmp(c->org, p_orgs[k]))
                org = k;
        for (int k = 0; k < P_USERS; k++)
            if (!strcmp(c->user, p_users[k]))
                user = k;
        if (c->body == LICMON__V1__CHANGE__BODY_COUNTED) {
            out->counts[c->what]++;
        } else if (c->body == LICMON__V1__CHANGE__BODY_HOLD) {
            assert_true(org >= 0 && user >= 0);
            if (c->acquired) {
                assert_int_equal(open_h[org][user], -1);
                struct p_hold *x = &out->hd[out->nh];
                memset(x, 0, sizeof(*x));
                x->org = org;
                x->user = user;
                snprintf(x->type, sizeof(x->type), "%.7s", c->type);
                x->acq = c->at;
                x->rel = INT64_MAX;
                open_h[org][user] = out->nh++;
            } else {
                int j = open_h[org][user];
                assert_true(j >= 0);
                assert_string_equal(out->hd[j].type, c->type);
                out->hd[j].rel = c->at;
                out->hd[j].reason = c->reason;
                open_h[org][user] = -1;
            }
        } else if (c->body == LICMON__V1__CHANGE__BODY_SESSION) {
            int later = 0;
            for (size_t j = i + 1; j < h->n && !later; j++)
                later =
                    h->v[j].body == LICMON__V1__CHANGE__BODY_SESSION && !strcmp(h->v[j].id, c->id);
            if (later)
                continue;
            struct p_sess *x = &out->s[out->ns++];
            memset(x, 0, sizeof(*x));
            x->org = org;
            x->user = user;
            snprintf(x->type, sizeof(x->type), "%.7s", c->type);
            snprintf(x->req, sizeof(x->req), "%.7s", c->req);
            x->start = c->start;
            x->la = c->la;
            x->end = c->end;
            x->uis = c->uis;
            x->lis = c->lis;
            x->rel = c->rel;
            x->tail = c->tail;
            x->reason = c->reason;
        }
    }
}

static int p_arr_cmp(const void *a, const void *b)
{
    const struct p_ev *x = a, *y = b;
    if (x->arr != y->arr)
        return x->arr < y->arr ? -1 : 1;
    return x->idx - y->idx;
}

static int p_ts_cmp(const void *a, const void *b)
{
    const struct p_ev *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->idx - y->idx;
}

/* feeds the journal: events in arrival order with ticks between them;
 * restart (save, drop, load) before record `restart_at` when >= 0 */
static void p_feed(struct h *h, const struct p_ev *jr, int n, const struct p_set *st, int norgs,
                   int with_settings, unsigned tick_seed, int restart_at, struct store *s)
{
    unsigned seed = tick_seed, rseed = tick_seed ^ 0x5a5a;
    int k = 0;
    if (with_settings)
        for (int o = 0; o < norgs; o++) {
            if (k++ == restart_at)
                h_restart(h, s, &rseed);
            Licmon__V1__OrgSettings *x = settings_default(p_orgs[o]);
            x->user_inactivity_timeout_s = st[o].u_ms / 1000;
            x->license_inactivity_timeout_s = st[o].l_ms / 1000;
            x->inactivity_logout_releases_license = st[o].releases;
            x->allowed_lateness_s = st[o].late_ms / 1000;
            sess_engine_settings(h->e, x, 0);
            settings_free(&x);
        }
    int64_t wall = jr[0].arr;
    for (int i = 0; i < n; i++) {
        while (wall < jr[i].arr) {
            if (k++ == restart_at)
                h_restart(h, s, &rseed);
            tick(h, wall);
            wall += 500 + rand_r(&seed) % 20000;
        }
        if (k++ == restart_at)
            h_restart(h, s, &rseed);
        const struct p_ev *e = &jr[i];
        ev_full(h, p_orgs[e->org], p_users[e->user], e->kind, e->ts,
                e->type >= 0 ? p_types[e->type] : NULL, e->req >= 0 ? p_types[e->req] : NULL,
                e->arr);
    }
    if (k++ == restart_at)
        h_restart(h, s, &rseed);
    tick(h, FAR);
}

static void p_one(unsigned seed)
{
    struct p_ev evs[P_MAX_EV] = {0}, jr[P_MAX_EV] = {0};
    struct p_set st[2];
    unsigned r = seed;
    int norgs = 1 + rand_r(&r) % 2, nusers = 1 + rand_r(&r) % P_USERS;
    int ntypes = 1 + rand_r(&r) % 3, n = 4 + rand_r(&r) % (P_MAX_EV - 4);
    int with_settings = rand_r(&r) % 8 != 0;
    static const int64_t mins[] = {1, 2, 3, 5};
    static const int64_t lates[] = {5, 20, 60};
    for (int o = 0; o < 2; o++) {
        st[o].u_ms = with_settings ? mins[rand_r(&r) % 4] * MIN : 120 * MIN;
        st[o].l_ms = with_settings ? mins[rand_r(&r) % 4] * MIN : 120 * MIN;
        st[o].releases = with_settings ? rand_r(&r) % 2 : 0;
        st[o].late_ms = with_settings ? lates[rand_r(&r) % 3] * SEC : 5 * SEC;
    }
    /* event times on a 30-s grid (sometimes +1 ms), so they often meet the
     * timeout instants and each other */
    int64_t base = 1700000000000LL;
    for (int i = 0; i < n; i++) {
        struct p_ev *e = &evs[i];
        int k = rand_r(&r) % 20;
        e->org = rand_r(&r) % norgs;
        e->user = rand_r(&r) % nusers;
        e->ts = base + (rand_r(&r) % 30) * 30 * SEC + (rand_r(&r) % 6 == 0 ? 1 : 0);
        e->kind = k < 5    ? LICMON__V1__EVENT_KIND__LOGIN
                  : k < 15 ? LICMON__V1__EVENT_KIND__ACTIVITY
                  : k < 19 ? LICMON__V1__EVENT_KIND__LOGOUT
                           : LICMON__V1__EVENT_KIND__DENIED;
        e->type = -1;
        e->req = -1;
        if (e->kind == LICMON__V1__EVENT_KIND__LOGIN || e->kind == LICMON__V1__EVENT_KIND__DENIED ||
            (e->kind == LICMON__V1__EVENT_KIND__ACTIVITY && rand_r(&r) % 3 == 0))
            e->type = rand_r(&r) % ntypes;
        if (e->kind == LICMON__V1__EVENT_KIND__LOGIN && rand_r(&r) % 5 == 0 && e->type + 1 < ntypes)
            e->req = e->type + 1;
        e->idx = i;
    }
    qsort(evs, (size_t)n, sizeof(evs[0]), p_ts_cmp);
    /* arrival: each event late by less than its org's lateness (or not at
     * all: a backfill), never before an earlier event of its user */
    int backfill = rand_r(&r) % 4 == 0;
    int64_t last_arr[2][P_USERS];
    for (int o = 0; o < 2; o++)
        for (int u = 0; u < P_USERS; u++)
            last_arr[o][u] = INT64_MIN;
    for (int i = 0; i < n; i++) {
        struct p_ev *e = &evs[i];
        e->idx = i;
        int64_t a =
            backfill ? base + 40 * 86400 * SEC + i : e->ts + rand_r(&r) % st[e->org].late_ms;
        if (a < last_arr[e->org][e->user])
            a = last_arr[e->org][e->user];
        e->arr = last_arr[e->org][e->user] = a;
        jr[i] = *e;
    }
    qsort(jr, (size_t)n, sizeof(jr[0]), p_arr_cmp);

    /* the model */
    static struct p_out want, got;
    memset(&want, 0, sizeof(want));
    for (int o = 0; o < norgs; o++)
        for (int u = 0; u < nusers; u++)
            model_user(evs, n, o, u, &st[o], &want);

    /* the engine, uninterrupted */
    struct h h;
    h_init(&h);
    p_feed(&h, jr, n, st, norgs, with_settings, seed, -1, NULL);
    engine_out(&h, &got);
    if (got.ns != want.ns || got.nh != want.nh)
        fprintf(stderr, "seed %u: sessions %d/%d holds %d/%d\n", seed, got.ns, want.ns, got.nh,
                want.nh);
    assert_int_equal(got.ns, want.ns);
    assert_int_equal(got.nh, want.nh);
    qsort(got.s, (size_t)got.ns, sizeof(got.s[0]), p_sess_cmp);
    qsort(want.s, (size_t)want.ns, sizeof(want.s[0]), p_sess_cmp);
    qsort(got.hd, (size_t)got.nh, sizeof(got.hd[0]), p_hold_cmp);
    qsort(want.hd, (size_t)want.nh, sizeof(want.hd[0]), p_hold_cmp);
    for (int i = 0; i < want.ns; i++)
        if (memcmp(&got.s[i], &want.s[i], sizeof(want.s[i]))) {
            fprintf(
                stderr,
                "seed %u session %d: got start %lld la %lld end %lld r %d uis %lld lis %lld rel "
                "%lld tail %lld; want la %lld end %lld r %d lis %lld rel %lld tail %lld\n",
                seed, i, (long long)got.s[i].start, (long long)got.s[i].la, (long long)got.s[i].end,
                got.s[i].reason, (long long)got.s[i].uis, (long long)got.s[i].lis,
                (long long)got.s[i].rel, (long long)got.s[i].tail, (long long)want.s[i].la,
                (long long)want.s[i].end, want.s[i].reason, (long long)want.s[i].lis,
                (long long)want.s[i].rel, (long long)want.s[i].tail);
            fail();
        }
    for (int i = 0; i < want.nh; i++)
        if (memcmp(&got.hd[i], &want.hd[i], sizeof(want.hd[i]))) {
            fprintf(stderr, "seed %u hold %d differs\n", seed, i);
            fail();
        }
    for (int w = 1; w < 8; w++)
        if (w != W_LATE)
            assert_int_equal(got.counts[w], want.counts[w]);
    assert_int_equal(got.counts[W_LATE], 0);

    /* the same journal with a restart at a random point: the same bytes */
    struct h h2;
    struct store s = {0};
    h_init(&h2);
    p_feed(&h2, jr, n, st, norgs, with_settings, seed, rand_r(&r) % (n + 40), &s);
    assert_int_equal(h2.loglen, h.loglen);
    assert_memory_equal(h2.log, h.log, h.loglen);
    store_free(&s);
    h_free(&h2);
    h_free(&h);
}

/* Arbitrary arrival (same-user reordering, late events): no model, but
 * per user the seats alternate acquire/release of one type in time order,
 * sessions do not overlap and are all over at the end, the metrics agree
 * with their instants, and a restart changes no byte. */
static void p_chaos(unsigned seed)
{
    struct p_ev jr[P_MAX_EV] = {0};
    struct p_set st[2];
    unsigned r = seed;
    int n = 4 + rand_r(&r) % (P_MAX_EV - 4);
    int64_t base = 1700000000000LL;
    for (int o = 0; o < 2; o++) {
        st[o].u_ms = (1 + rand_r(&r) % 4) * MIN;
        st[o].l_ms = (1 + rand_r(&r) % 4) * MIN;
        st[o].releases = rand_r(&r) % 2;
        st[o].late_ms = (5 + rand_r(&r) % 30) * SEC;
    }
    for (int i = 0; i < n; i++) {
        struct p_ev *e = &jr[i];
        int k = rand_r(&r) % 20;
        e->org = rand_r(&r) % 2;
        e->user = rand_r(&r) % 3;
        e->ts = base + (rand_r(&r) % 40) * 15 * SEC;
        e->kind = k < 5    ? LICMON__V1__EVENT_KIND__LOGIN
                  : k < 15 ? LICMON__V1__EVENT_KIND__ACTIVITY
                  : k < 19 ? LICMON__V1__EVENT_KIND__LOGOUT
                           : LICMON__V1__EVENT_KIND__DENIED;
        e->type = e->kind == LICMON__V1__EVENT_KIND__LOGIN ||
                          e->kind == LICMON__V1__EVENT_KIND__DENIED || rand_r(&r) % 3 == 0
                      ? rand_r(&r) % 2
                      : -1;
        e->req = -1;
        e->arr = e->ts + (int64_t)(rand_r(&r) % 600) * SEC;
        e->idx = i;
    }
    qsort(jr, (size_t)n, sizeof(jr[0]), p_arr_cmp);
    struct h h, h2;
    struct store s = {0};
    h_init(&h);
    p_feed(&h, jr, n, st, 2, 1, seed, -1, NULL);
    for (int o = 0; o < 2; o++)
        for (int u = 0; u < 3; u++) {
            int held = 0;
            char type[8] = "";
            int64_t last = INT64_MIN, prev_end = INT64_MIN;
            for (size_t i = 0; i < h.n; i++) {
                const struct chg *c = &h.v[i];
                if (strcmp(c->org, p_orgs[o]) || strcmp(c->user, p_users[u]))
                    continue;
                if (c->body == LICMON__V1__CHANGE__BODY_HOLD) {
                    assert_int_equal(c->acquired, !held);
                    assert_true(c->at >= last);
                    if (held)
                        assert_string_equal(c->type, type);
                    snprintf(type, sizeof(type), "%.7s", c->type);
                    held = c->acquired;
                    last = c->at;
                }
                if (c->body != LICMON__V1__CHANGE__BODY_SESSION)
                    continue;
                int final = 1;
                for (size_t j = i + 1; j < h.n && final; j++)
                    final = !(h.v[j].body == LICMON__V1__CHANGE__BODY_SESSION &&
                              !strcmp(h.v[j].id, c->id));
                if (!final)
                    continue;
                assert_int_not_equal(c->reason, R_OPEN);
                assert_true(c->start >= prev_end && c->end >= c->start);
                assert_true(c->la >= c->start && c->la <= c->end);
                assert_int_equal(c->uis, (c->end - c->start) / 1000);
                assert_true(c->lis <= c->uis && c->tail >= 0 && c->rel >= c->start);
                assert_int_equal(c->tail, c->rel > c->end ? (c->rel - c->end) / 1000 : 0);
                prev_end = c->end;
            }
            assert_int_equal(held, 0);
        }
    struct sess_engine_stats es;
    sess_engine_stats(h.e, &es);
    assert_int_equal(es.open_sessions, 0);
    assert_int_equal(es.open_holds, 0);
    assert_int_equal(es.pending_timers, 0);
    h_init(&h2);
    p_feed(&h2, jr, n, st, 2, 1, seed, rand_r(&r) % (n + 40), &s);
    assert_int_equal(h2.loglen, h.loglen);
    assert_memory_equal(h2.log, h.log, h.loglen);
    store_free(&s);
    h_free(&h2);
    h_free(&h);
}

static void test_property_chaos_invariants(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 5000; seed++)
        p_chaos(seed);
}

static void test_property_random_streams(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 20000; seed++)
        p_one(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_logout),
        cmocka_unit_test(test_user_timeout_u_lt_l_lingers),
        cmocka_unit_test(test_user_timeout_releases_switch),
        cmocka_unit_test(test_u_gt_l),
        cmocka_unit_test(test_u_eq_l),
        cmocka_unit_test(test_event_at_timeout_instant),
        cmocka_unit_test(test_relogin_same_type),
        cmocka_unit_test(test_relogin_other_type),
        cmocka_unit_test(test_login_takes_over_lingering_seat),
        cmocka_unit_test(test_activity_after_each_timeout),
        cmocka_unit_test(test_logout_lingering_and_orphans),
        cmocka_unit_test(test_denied_and_downgrade),
        cmocka_unit_test(test_equal_timestamps),
        cmocka_unit_test(test_last_activity_updates),
        cmocka_unit_test(test_session_id_deterministic),
        cmocka_unit_test(test_session_id_text),
        cmocka_unit_test(test_live_timeouts_fire_by_ticks),
        cmocka_unit_test(test_backfill_does_not_jump_clock),
        cmocka_unit_test(test_late_event),
        cmocka_unit_test(test_event_stamped_ahead_counts_near_its_arrival),
        cmocka_unit_test(test_cross_user_reordering_is_exact),
        cmocka_unit_test(test_same_user_reordering),
        cmocka_unit_test(test_same_user_race_across_timeout),
        cmocka_unit_test(test_held_events_bounded_and_saved),
        cmocka_unit_test(test_held_users_restart),
        cmocka_unit_test(test_behind_after_timers),
        cmocka_unit_test(test_many_users_and_types),
        cmocka_unit_test(test_settings_change_mid_stream),
        cmocka_unit_test(test_orgs_are_independent),
        cmocka_unit_test(test_save_load_equals_uninterrupted),
        cmocka_unit_test(test_load_rejects_damage),
        cmocka_unit_test(test_load_byte_mutations),
        cmocka_unit_test(test_records_are_forgotten),
        cmocka_unit_test(test_invalid_input_ignored),
        cmocka_unit_test(test_property_random_streams),
        cmocka_unit_test(test_property_chaos_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
