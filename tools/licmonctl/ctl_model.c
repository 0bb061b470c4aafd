/* ctl_model: the demo org's traffic, as a pure step function. Forty users
 * log in during business hours (peaking mid-morning, Europe/Berlin), work
 * with idle gaps, then log out or just walk away; a few night owls keep the
 * stream alive at any hour. The model keeps its own count of seats, so when
 * the creator pool is full a login is downgraded to reviewer or denied, as
 * a real application would. Deterministic: the same origin gives the same
 * events (and event ids). No clock, no I/O besides the zoneinfo lookup. */
#include "ctl.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

const struct demo_license demo_licenses[DEMO_NTYPES] = {
    [DEMO_CREATOR] = {"creator", true, 12, 80, 75},
    [DEMO_REVIEWER] = {"reviewer", true, 20, 0, 400},
    [DEMO_STAKEHOLDER] = {"stakeholder", false, 50, 0, 0},
    [DEMO_TEST_RUNNER] = {"test_runner", true, 5, 60, 0},
};

/* splitmix64: small, good enough, and the same everywhere */
static uint64_t demo_rand(struct demo_model *m)
{
    uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double demo_unit(struct demo_model *m)
{
    return (double)(demo_rand(m) >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t demo_between(struct demo_model *m, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(demo_unit(m) * (double)(hi - lo));
}

static int64_t demo_exp(struct demo_model *m, double mean_ms)
{
    return (int64_t)(-mean_ms * log(1.0 - demo_unit(m)));
}

/* Local hour (fractional) and weekend flag of instant ms in DEMO_TZ. */
static double demo_local_hour(struct demo_model *m, int64_t ms, bool *weekend)
{
    int64_t hour = ms >= 0 ? ms / HOUR_MS : (ms - HOUR_MS + 1) / HOUR_MS;
    if (hour != m->tz_hour) {
        long off = 0;
        if (tz_offset_at(DEMO_TZ, ms, &off) != 0)
            off = 0;
        m->tz_hour = hour;
        m->tz_off_s = off;
    }
    int64_t local = ms + (int64_t)m->tz_off_s * 1000;
    int64_t day = local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS;
    int dow = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
    *weekend = dow == 0 || dow == 6;
    return (double)(local - day * DAY_MS) / (double)HOUR_MS;
}

double demo_model_rate(struct demo_model *m, const struct demo_user *u, int64_t ms)
{
    bool weekend;
    double h = demo_local_hour(m, ms, &weekend);
    double morning = (h - 10.0) / 1.4, afternoon = (h - 14.5) / 1.7;
    double work = 3.5 * exp(-morning * morning) + 1.6 * exp(-afternoon * afternoon);
    if (weekend)
        work *= 0.12;
    double base = u->owl ? 1.4 : 0.05;
    return u->diligence * work + base;
}

static bool demo_daytime(struct demo_model *m, int64_t ms)
{
    bool weekend;
    double h = demo_local_hour(m, ms, &weekend);
    return !weekend && h >= 7.0 && h < 17.0;
}

int demo_model_in_use(const struct demo_model *m, int type, int except_user)
{
    int n = 0;
    for (int i = 0; i < DEMO_USERS; i++) {
        const struct demo_user *u = &m->u[i];
        if (i == except_user || u->hold != type)
            continue;
        if (u->active || u->hold_until > m->now_ms)
            n++;
    }
    return n;
}

static bool demo_seat_free(const struct demo_model *m, int type, int user)
{
    const struct demo_license *l = &demo_licenses[type];
    if (!l->floating)
        return true;
    /* the user's own seat of that type carries on */
    const struct demo_user *u = &m->u[user];
    if (u->hold == type && (u->active || u->hold_until > m->now_ms))
        return true;
    return demo_model_in_use(m, type, user) < l->owned;
}

void demo_model_init(struct demo_model *m, int64_t origin_ms)
{
    memset(m, 0, sizeof(*m));
    m->origin_ms = origin_ms;
    m->now_ms = origin_ms;
    m->rng = 0x6c69636d6f6e00ULL ^ (uint64_t)origin_ms;
    m->tz_hour = INT64_MIN;
    for (int i = 0; i < DEMO_USERS; i++) {
        struct demo_user *u = &m->u[i];
        /* 16 creators for 12 seats, 14 reviewers, 4 stakeholders, 6 test runners */
        u->want = i < 16   ? DEMO_CREATOR
                  : i < 30 ? DEMO_REVIEWER
                  : i < 34 ? DEMO_STAKEHOLDER
                           : DEMO_TEST_RUNNER;
        u->hold = -1;
        u->owl = i % 4 == 3;
        u->diligence = 0.7 + 0.6 * demo_unit(m);
        u->next_ms = origin_ms + demo_between(m, 0, 5 * MIN_MS);
    }
}

int64_t demo_model_next_ms(const struct demo_model *m)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < DEMO_USERS; i++)
        if (m->u[i].next_ms < next)
            next = m->u[i].next_ms;
    return next;
}

static void demo_emit(struct demo_model *m, int user, Licmon__V1__EventKind kind, int type,
                      int requested, struct demo_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->user = user;
    ev->ts_ms = m->now_ms;
    ev->license_type = type >= 0 ? demo_licenses[type].type : NULL;
    ev->requested_type = requested >= 0 ? demo_licenses[requested].type : NULL;
    m->seq++;
    snprintf(ev->event_id, sizeof(ev->event_id), "demo-%lld-%09llu",
             (long long)(m->origin_ms / DAY_MS), (unsigned long long)m->seq);
    snprintf(ev->user_name, sizeof(ev->user_name), "user%02d@demo.example", user + 1);
    m->stats.events++;
}

/* Time until the next server request of a working user: mostly seconds,
 * now and then a meeting, rarely long enough for the inactivity timeout. */
static int64_t demo_gap(struct demo_model *m)
{
    double r = demo_unit(m);
    if (r < 0.002)
        return demo_between(m, 32 * MIN_MS, 50 * MIN_MS);
    if (r < 0.012)
        return demo_between(m, 3 * MIN_MS, 20 * MIN_MS);
    int64_t g = 1000 + demo_exp(m, 29000.0);
    return g > 10 * MIN_MS ? 10 * MIN_MS : g;
}

static void demo_login(struct demo_model *m, int i, int type, int requested, struct demo_event *ev)
{
    struct demo_user *u = &m->u[i];
    bool day = demo_daytime(m, m->now_ms);
    int64_t len =
        day ? 30 * MIN_MS + demo_exp(m, 100.0 * MIN_MS) : 10 * MIN_MS + demo_exp(m, 35.0 * MIN_MS);
    if (len > 5 * HOUR_MS)
        len = 5 * HOUR_MS;
    u->active = 1;
    u->hold = (int8_t)type;
    u->hold_until = 0;
    u->retries = 0;
    u->last_ms = m->now_ms;
    u->end_ms = m->now_ms + len;
    u->manual_end = demo_unit(m) < 0.6;
    int64_t next = m->now_ms + demo_gap(m);
    u->next_ms = next < u->end_ms ? next : u->end_ms;
    demo_emit(m, i, LICMON__V1__EVENT_KIND__LOGIN, type, requested, ev);
    m->stats.logins++;
    if (requested >= 0)
        m->stats.downgrades++;
}

/* An offline user decides whether to log in now; returns 1 with an event. */
static int demo_offline_act(struct demo_model *m, int i, struct demo_event *ev)
{
    struct demo_user *u = &m->u[i];
    if (u->hold >= 0 && u->hold_until <= m->now_ms)
        u->hold = -1; /* the license timeout released the walked-away seat */
    /* checked every 3 to 7 minutes; after a denial, eager to try again */
    double p = u->retries ? 0.75 : demo_model_rate(m, u, m->now_ms) * (5.0 / 60.0);
    if (demo_unit(m) >= p) {
        u->retries = 0;
        u->next_ms = m->now_ms + demo_between(m, 3 * MIN_MS, 7 * MIN_MS);
        return 0;
    }
    int want = u->want;
    if (demo_seat_free(m, want, i)) {
        demo_login(m, i, want, -1, ev);
        return 1;
    }
    if (want == DEMO_CREATOR && demo_seat_free(m, DEMO_REVIEWER, i) && demo_unit(m) < 0.6) {
        demo_login(m, i, DEMO_REVIEWER, DEMO_CREATOR, ev);
        return 1;
    }
    demo_emit(m, i, LICMON__V1__EVENT_KIND__DENIED, want, -1, ev);
    m->stats.denials++;
    u->retries = u->retries < 3 ? u->retries + 1 : 0; /* gives up after three */
    u->next_ms = m->now_ms + (u->retries ? demo_between(m, 4 * MIN_MS, 15 * MIN_MS)
                                         : demo_between(m, 30 * MIN_MS, 60 * MIN_MS));
    return 1;
}

static int demo_active_act(struct demo_model *m, int i, struct demo_event *ev)
{
    struct demo_user *u = &m->u[i];
    if (m->now_ms < u->end_ms) {
        u->last_ms = m->now_ms;
        int64_t next = m->now_ms + demo_gap(m);
        u->next_ms = next < u->end_ms ? next : u->end_ms;
        demo_emit(m, i, LICMON__V1__EVENT_KIND__ACTIVITY, u->hold, -1, ev);
        m->stats.activities++;
        return 1;
    }
    bool day = demo_daytime(m, m->now_ms);
    u->active = 0;
    u->next_ms = m->now_ms + (day || !u->owl ? demo_between(m, 20 * MIN_MS, 90 * MIN_MS)
                                             : demo_between(m, 10 * MIN_MS, 40 * MIN_MS));
    if (u->manual_end) {
        demo_emit(m, i, LICMON__V1__EVENT_KIND__LOGOUT, -1, -1, ev);
        u->hold = -1;
        m->stats.logouts++;
        return 1;
    }
    /* walked away: the seat lingers until the license timeout */
    u->hold_until = u->last_ms + DEMO_LICENSE_TIMEOUT_S * 1000LL;
    m->stats.walkaways++;
    return 0;
}

int demo_model_step(struct demo_model *m, int64_t limit_ms, struct demo_event *ev)
{
    for (;;) {
        int next = 0;
        for (int i = 1; i < DEMO_USERS; i++)
            if (m->u[i].next_ms < m->u[next].next_ms)
                next = i;
        if (m->u[next].next_ms > limit_ms) {
            if (limit_ms > m->now_ms)
                m->now_ms = limit_ms;
            return 0;
        }
        m->now_ms = m->u[next].next_ms;
        int got = m->u[next].active ? demo_active_act(m, next, ev) : demo_offline_act(m, next, ev);
        if (got)
            return 1;
    }
}
