/* test_agg_rollup: the rollups against a deliberately simple model. The
 * model keeps the list of hold intervals and counted events and answers
 * every bucket by brute force (in_use by counting intervals at each instant
 * where something changes, distinct users from the intervals that overlap
 * the bucket, local buckets labelled minute by minute with tz_offset_at).
 * Random streams arrive slightly out of order; an in-memory sorted store
 * stands in for RocksDB, so saves drop rows that are then read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../aggregator/agg_roll_int.h"
#include "../../aggregator/agg_rollup.h"
#include "keys.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define NTYPES 3
#define OPEN_END INT64_MAX

static const char *type_names[NTYPES + 1] = {"all", "creator", "reviewer", "viewer"};

/* ------------------------------------------------------------ the store */

struct kv {
    uint8_t *k, *v;
    size_t kl, vl;
    bool del;
};

/* sorted main array plus a log of recent puts merged in before each read */
struct memstore {
    struct kv *e, *pend;
    size_t n, cap, np, pcap;
    size_t puts, scans;
};

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t l = al < bl ? al : bl;
    int c = memcmp(a, b, l);
    if (c)
        return c;
    return (al > bl) - (al < bl);
}

static size_t lower(const struct kv *e, size_t n, const uint8_t *k, size_t kl)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kcmp(e[mid].k, e[mid].kl, k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int pend_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = kcmp(x->k, x->kl, y->k, y->kl);
    if (c)
        return c;
    return (x > y) - (x < y); /* keeps put order: qsort is not stable, so order by address */
}

static void ms_flush(struct memstore *m)
{
    if (!m->np)
        return;
    /* sort a copy of indices by (key, order) */
    struct kv *p = m->pend;
    size_t np = m->np;
    struct kv **idx = xmalloc(np * sizeof(*idx));
    for (size_t i = 0; i < np; i++)
        idx[i] = &p[i];
    /* insertion of pointers sorted by key then address */
    for (size_t i = 1; i < np; i++) {
        struct kv *x = idx[i];
        size_t j = i;
        while (j > 0 && pend_cmp(idx[j - 1], x) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
    struct kv *out = xmalloc((m->n + np) * sizeof(*out));
    size_t a = 0, b = 0, o = 0;
    while (a < m->n || b < np) {
        /* the last pending put of a key wins */
        if (b < np) {
            size_t e = b;
            while (e + 1 < np && !kcmp(idx[e + 1]->k, idx[e + 1]->kl, idx[b]->k, idx[b]->kl))
                e++;
            struct kv *w = idx[e];
            while (a < m->n && kcmp(m->e[a].k, m->e[a].kl, w->k, w->kl) < 0)
                out[o++] = m->e[a++];
            if (a < m->n && !kcmp(m->e[a].k, m->e[a].kl, w->k, w->kl)) {
                free(m->e[a].k);
                free(m->e[a].v);
                a++;
            }
            for (size_t i = b; i < e; i++) {
                free(idx[i]->k);
                free(idx[i]->v);
            }
            if (w->del) {
                free(w->k);
                free(w->v);
            } else {
                out[o++] = *w;
            }
            b = e + 1;
        } else {
            out[o++] = m->e[a++];
        }
    }
    free(idx);
    free(m->e);
    m->e = out;
    m->n = o;
    m->cap = m->n + np;
    m->np = 0;
}

static void ms_put(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    struct memstore *m = arg;
    if (m->np == m->pcap) {
        m->pcap = m->pcap ? m->pcap * 2 : 256;
        m->pend = xrealloc(m->pend, m->pcap * sizeof(*m->pend));
    }
    struct kv *e = &m->pend[m->np++];
    e->k = xmemdup(k, kl);
    e->kl = kl;
    e->del = v == NULL;
    e->v = v ? xmemdup(v, vl ? vl : 1) : NULL;
    e->vl = v ? vl : 0;
    m->puts++;
    if (m->np > 4096)
        ms_flush(m);
}

static void ms_del_range(void *arg, const void *from, size_t fl, const void *to, size_t tl)
{
    struct memstore *m = arg;
    ms_flush(m);
    size_t a = lower(m->e, m->n, from, fl), b = lower(m->e, m->n, to, tl);
    if (b <= a)
        return;
    for (size_t i = a; i < b; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    memmove(&m->e[a], &m->e[b], (m->n - b) * sizeof(m->e[0]));
    m->n -= b - a;
}

static int ms_scan(void *arg, const void *from, size_t fl, const void *to, size_t tl,
                   agg_rollup_visit_fn visit, void *varg)
{
    struct memstore *m = arg;
    ms_flush(m);
    m->scans++;
    for (size_t i = lower(m->e, m->n, from, fl); i < m->n; i++) {
        if (kcmp(m->e[i].k, m->e[i].kl, to, tl) >= 0)
            break;
        if (visit(varg, m->e[i].k, m->e[i].kl, m->e[i].v, m->e[i].vl))
            break;
    }
    return 0;
}

static void ms_free(struct memstore *m)
{
    ms_flush(m);
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
    free(m->pend);
    memset(m, 0, sizeof(*m));
}

static struct agg_rollup *new_rollup(struct memstore *m)
{
    struct agg_rollup_store st = {ms_scan, m};
    return agg_rollup_new(m ? &st : NULL);
}

static void save(struct agg_rollup *r, struct memstore *m)
{
    struct agg_rollup_sink sk = {ms_put, ms_del_range, m};
    agg_rollup_save_dirty(r, &sk);
}

static struct agg_rollup *reload(struct memstore *m)
{
    struct agg_rollup *r = new_rollup(m);
    ms_flush(m);
    for (int p = 0; agg_rollup_load_prefixes[p]; p++) {
        const char *pre = agg_rollup_load_prefixes[p];
        uint8_t to[2] = {(uint8_t)pre[0], (uint8_t)(pre[1] + 1)};
        for (size_t i = lower(m->e, m->n, (const uint8_t *)pre, 2); i < m->n; i++) {
            if (kcmp(m->e[i].k, m->e[i].kl, to, 2) >= 0)
                break;
            assert_int_equal(agg_rollup_load(r, m->e[i].k, m->e[i].kl, m->e[i].v, m->e[i].vl), 0);
        }
    }
    return r;
}

/* --------------------------------------------------------- the stream */

enum { EV_ACQ, EV_REL, EV_END, EV_LOGIN, EV_DENIAL, EV_DOWNGRADE };

struct ev {
    int64_t t, arrive;
    int kind, user, type, reason, seq;
    int sid;
};

struct stream {
    struct ev *ev;
    size_t n, cap;
    int nusers;
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int64_t rnd_in(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static bool chance(int pct)
{
    return (int)(rnd() % 100) < pct;
}

static void add(struct stream *s, int64_t t, int kind, int user, int type, int reason, int sid)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ev = xrealloc(s->ev, s->cap * sizeof(*s->ev));
    }
    struct ev *e = &s->ev[s->n];
    memset(e, 0, sizeof(*e));
    e->t = t;
    e->kind = kind;
    e->user = user;
    e->type = type;
    e->reason = reason;
    e->sid = sid;
    e->seq = (int)s->n++;
}

/* Times like a real stream, often right on (or 1 ms off) a minute edge. */
static int64_t edgy(int64_t t);
/* a time edgy near t, never before not_before */
static int64_t edgy_after(int64_t not_before, int64_t t)
{
    int64_t e = edgy(t);
    return e < not_before ? not_before : e;
}

static const char *gen_tz = "UTC";

/* the next local midnight of gen_tz at or after t */
static int64_t local_midnight(int64_t t)
{
    long off = 0;
    tz_offset_at(gen_tz, t, &off);
    int64_t lm = t + off * 1000, next = (lm / DAY_MS + 1) * DAY_MS;
    int64_t u = next - off * 1000;
    tz_offset_at(gen_tz, u, &off);
    return next - off * 1000;
}

static int64_t edgy(int64_t t)
{
    int r = (int)(rnd() % 100);
    if (r < 4)
        return local_midnight(t) - (r < 2 ? DAY_MS : 0);
    int64_t m = t - t % MIN_MS;
    if (r < 25)
        return m;
    if (r < 30)
        return m + MIN_MS - 1;
    if (r < 35)
        return m + 1;
    if (r < 40)
        return t - t % 30000;
    if (r < 48) /* on a half hour: local midnights and hours of every zone here */
        return t - t % (30 * MIN_MS);
    return t;
}

static int64_t hold_len(void)
{
    int r = (int)(rnd() % 100);
    if (r < 5)
        return 0;
    if (r < 25)
        return rnd_in(1, 5000);
    if (r < 65)
        return rnd_in(MIN_MS, 30 * MIN_MS);
    if (r < 90)
        return rnd_in(HOUR_MS, 10 * HOUR_MS);
    return rnd_in(DAY_MS / 2, 2 * DAY_MS);
}

static int64_t gap_len(void)
{
    int r = (int)(rnd() % 100);
    if (r < 30)
        return rnd_in(0, 60000);
    if (r < 70)
        return rnd_in(MIN_MS, 60 * MIN_MS);
    return rnd_in(HOUR_MS, 12 * HOUR_MS);
}

static int sid_next;

static void gen_user(struct stream *s, int user, int64_t from, int64_t until)
{
    int64_t t = edgy(from + rnd_in(0, 3 * HOUR_MS));
    while (t < until) {
        int r = (int)(rnd() % 100);
        if (r < 70) {
            int type = (int)rnd_in(1, NTYPES);
            int sid = ++sid_next;
            add(s, t, EV_LOGIN, user, type, 0, 0);
            add(s, t, EV_ACQ, user, type, 0, 0);
            int64_t end = t + hold_len();
            while (chance(25)) { /* switch type at an instant */
                int other = (int)rnd_in(1, NTYPES);
                if (other == type)
                    break;
                end = edgy_after(t, end);
                add(s, end, EV_REL, user, type, 5 /* switched */, 0);
                add(s, end, EV_ACQ, user, other, 0, 0);
                type = other;
                t = end;
                end = t + hold_len();
            }
            end = edgy_after(t, end);
            if (end >= until && chance(50))
                return; /* still held at the end */
            int why = (int)(rnd() % 3);
            int reason = why == 0 ? 4 /* license inactivity */ : why == 1 ? 1 : 2;
            add(s, end, EV_REL, user, type, reason, 0);
            int ereason = chance(50) ? 1 : 2;
            add(s, end, EV_END, user, type, ereason, sid);
            if (chance(40))
                add(s, end, EV_END, user, type, ereason, sid); /* emitted again */
            t = end;
        } else if (r < 85) {
            int type = (int)rnd_in(1, NTYPES);
            add(s, t, EV_DENIAL, user, type, 0, 0);
            while (chance(50)) { /* the user tries again */
                t = edgy_after(t, t + rnd_in(0, 3 * MIN_MS));
                add(s, t, EV_DENIAL, user, chance(70) ? type : (int)rnd_in(1, NTYPES), 0, 0);
            }
        } else {
            int type = (int)rnd_in(1, NTYPES);
            add(s, t, EV_DOWNGRADE, user, type, 0, 0);
            add(s, t, EV_LOGIN, user, type % NTYPES + 1, 0, 0);
            while (chance(40)) {
                t = edgy_after(t, t + rnd_in(0, 5 * MIN_MS));
                add(s, t, EV_DOWNGRADE, user, type, 0, 0);
            }
        }
        t = edgy_after(t, t + gap_len());
    }
}

static int arrive_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    if (x->arrive != y->arrive)
        return x->arrive < y->arrive ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Each user's events keep their order, but for denials, which the
 * sessionizer emits at their own time whenever they arrive (so one can come
 * after a later one of the same user); users interleave within 5 s. */
static void gen_stream(struct stream *s, int nusers, int64_t from, int64_t until)
{
    memset(s, 0, sizeof(*s));
    s->nusers = nusers;
    for (int u = 0; u < nusers; u++) {
        size_t first = s->n;
        gen_user(s, u, from, until);
        int64_t last = INT64_MIN;
        for (size_t i = first; i < s->n; i++) {
            struct ev *e = &s->ev[i];
            int64_t a = e->t + rnd_in(0, 5000);
            if (e->kind == EV_END && i > first && e->sid == s->ev[i - 1].sid)
                a = e->t + rnd_in(0, 30000); /* a later copy of the record */
            e->arrive = a > last || e->kind == EV_DENIAL ? a : last;
            if (e->kind != EV_END && e->kind != EV_DENIAL)
                last = e->arrive;
        }
    }
    qsort(s->ev, s->n, sizeof(*s->ev), arrive_cmp);
}

static const char *user_name(int u, char *buf)
{
    snprintf(buf, 16, "user%03d", u);
    return buf;
}

static void feed_one(struct agg_rollup *r, const char *org, const struct ev *e)
{
    char ub[16], sb[24];
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    Licmon__V1__HoldChange h = LICMON__V1__HOLD_CHANGE__INIT;
    Licmon__V1__SessionRecord sr = LICMON__V1__SESSION_RECORD__INIT;
    Licmon__V1__Counted ct = LICMON__V1__COUNTED__INIT;
    const char *type = type_names[e->type];
    switch (e->kind) {
    case EV_ACQ:
    case EV_REL:
        h.org = (char *)org;
        h.user = (char *)user_name(e->user, ub);
        h.license_type = (char *)type;
        h.at_ms = e->t;
        h.acquired = e->kind == EV_ACQ;
        h.reason = e->kind == EV_REL ? (Licmon__V1__EndReason)e->reason : 0;
        c.body_case = LICMON__V1__CHANGE__BODY_HOLD;
        c.hold = &h;
        break;
    case EV_END:
        snprintf(sb, sizeof(sb), "s%d", e->sid);
        sr.session_id = sb;
        sr.org = (char *)org;
        sr.user = (char *)user_name(e->user, ub);
        sr.license_type = (char *)type;
        sr.start_ms = e->t - 1000;
        sr.end_ms = e->t;
        sr.end_reason = (Licmon__V1__EndReason)e->reason;
        c.body_case = LICMON__V1__CHANGE__BODY_SESSION;
        c.session = &sr;
        break;
    default:
        ct.org = (char *)org;
        ct.user = (char *)user_name(e->user, ub);
        ct.license_type = (char *)type;
        ct.at_ms = e->t;
        ct.what = e->kind == EV_LOGIN    ? LICMON__V1__COUNTED__WHAT__LOGIN
                  : e->kind == EV_DENIAL ? LICMON__V1__COUNTED__WHAT__DENIAL
                                         : LICMON__V1__COUNTED__WHAT__DOWNGRADE;
        c.body_case = LICMON__V1__CHANGE__BODY_COUNTED;
        c.counted = &ct;
        break;
    }
    agg_rollup_change(r, &c);
}

static void set_zone(struct agg_rollup *r, const char *org, const char *tz)
{
    Licmon__V1__OrgSettings s = LICMON__V1__ORG_SETTINGS__INIT;
    s.org = (char *)org;
    s.timezone = (char *)tz;
    s.allowed_lateness_s = 5;
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    c.body_case = LICMON__V1__CHANGE__BODY_SETTINGS;
    c.settings = &s;
    agg_rollup_change(r, &c);
}

/* ---------------------------------------------------------- the model */

struct iv {
    int64_t s, e;
    int user, type;
};

struct mday {
    int nh;
    int64_t starts[32], end;
};

struct model {
    const char *tz;
    int64_t date0, date1;
    struct mday *days; /* date0..date1 */
    int32_t *off;      /* offset of each minute of [m0, m1) */
    struct iv *iv;
    size_t niv;
    const struct ev *ev; /* every event, in time order */
    size_t nev;
    int nusers;
    /* minute answers for [m0, m1), per series */
    int64_t m0, m1;
    struct agg_rollup_row *min[NTYPES + 1];
};

static int time_cmp(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static bool in_series(int type, int series)
{
    return series == 0 || type == series;
}

static int64_t m_in_use(const struct model *md, int series, int64_t t)
{
    int64_t n = 0;
    for (size_t i = 0; i < md->niv; i++)
        n += in_series(md->iv[i].type, series) && md->iv[i].s <= t && t < md->iv[i].e;
    return n;
}

/* distinct users holding at some instant of [a, b) ms */
static int64_t m_users(const struct model *md, int series, int64_t a, int64_t b)
{
    bool *seen = xcalloc((size_t)md->nusers, 1);
    int64_t n = 0;
    for (size_t i = 0; i < md->niv; i++) {
        const struct iv *v = &md->iv[i];
        if (in_series(v->type, series) && v->s < v->e && v->s < b && v->e > a && !seen[v->user]) {
            seen[v->user] = true;
            n++;
        }
    }
    free(seen);
    return n;
}

/* counts of [a, b) ms */
static void m_counts(const struct model *md, int series, int64_t a, int64_t b,
                     struct agg_rollup_row *o)
{
    bool *den = xcalloc((size_t)md->nusers, 1), *dng = xcalloc((size_t)md->nusers, 1);
    bool *sid = xcalloc((size_t)sid_next + 2, 1);
    for (size_t i = 0; i < md->nev; i++) {
        const struct ev *e = &md->ev[i];
        if (e->t < a || e->t >= b || !in_series(e->type, series))
            continue;
        switch (e->kind) {
        case EV_LOGIN:
            o->logins++;
            break;
        case EV_REL:
            o->license_timeouts += e->reason == 4;
            break;
        case EV_END:
            if (sid[e->sid])
                break;
            sid[e->sid] = true;
            o->logouts += e->reason == 1;
            o->user_timeouts += e->reason == 2;
            break;
        case EV_DENIAL:
            o->denials++;
            o->denied_users += !den[e->user];
            den[e->user] = true;
            break;
        case EV_DOWNGRADE:
            o->downgrades++;
            o->downgraded_users += !dng[e->user];
            dng[e->user] = true;
            break;
        }
    }
    free(den);
    free(dng);
    free(sid);
}

static void m_minute(const struct model *md, int series, int64_t m, struct agg_rollup_row *o)
{
    int64_t a = m * MIN_MS, b = a + MIN_MS;
    memset(o, 0, sizeof(*o));
    o->start_ms = a;
    o->minutes = 1;
    o->peak = m_in_use(md, series, a);
    for (size_t i = 0; i < md->niv; i++) {
        const struct iv *v = &md->iv[i];
        if (!in_series(v->type, series))
            continue;
        int64_t pts[2] = {v->s, v->e};
        for (int j = 0; j < 2; j++) {
            if (pts[j] > a && pts[j] < b) {
                int64_t u = m_in_use(md, series, pts[j]);
                if (u > o->peak)
                    o->peak = u;
            }
        }
    }
    o->peak_at_ms = a;
    o->in_use_end = m_in_use(md, series, b - 1);
    o->users = m_users(md, series, a, b);
    m_counts(md, series, a, b, o);
}

static int32_t offset_min(const char *tz, int64_t m)
{
    long off = 0;
    assert_int_equal(tz_offset_at(tz, m * MIN_MS, &off), 0);
    return (int32_t)(off / 60);
}

/* The model over the local dates [date0, date1] of zone tz: minutes are
 * labelled one by one with the system zoneinfo; an hour is a run of the
 * same (local hour, offset), a day every minute of its local date. */
static void model_build(struct model *md, const struct stream *s, const char *tz, int64_t date0,
                        int64_t date1)
{
    memset(md, 0, sizeof(*md));
    md->tz = tz;
    md->date0 = date0;
    md->date1 = date1;
    md->nusers = s->nusers;
    struct ev *ev = xmemdup(s->ev, s->n * sizeof(*ev));
    qsort(ev, s->n, sizeof(*ev), time_cmp);
    md->ev = ev;
    md->nev = s->n;
    /* holds: per user, acquire opens, release closes (events in user order) */
    size_t cap = 16;
    md->iv = xmalloc(cap * sizeof(*md->iv));
    for (int u = 0; u < s->nusers; u++) {
        int64_t open_at[NTYPES + 1];
        for (int t = 0; t <= NTYPES; t++)
            open_at[t] = INT64_MIN;
        for (size_t i = 0; i < s->n; i++) {
            const struct ev *e = &ev[i];
            if (e->user != u || (e->kind != EV_ACQ && e->kind != EV_REL))
                continue;
            if (e->kind == EV_ACQ) {
                open_at[e->type] = e->t;
                continue;
            }
            if (md->niv == cap)
                md->iv = xrealloc(md->iv, (cap *= 2) * sizeof(*md->iv));
            md->iv[md->niv++] = (struct iv){open_at[e->type], e->t, u, e->type};
            open_at[e->type] = INT64_MIN;
        }
        for (int t = 1; t <= NTYPES; t++) {
            if (open_at[t] == INT64_MIN)
                continue;
            if (md->niv == cap)
                md->iv = xrealloc(md->iv, (cap *= 2) * sizeof(*md->iv));
            md->iv[md->niv++] = (struct iv){open_at[t], OPEN_END, u, t};
        }
    }
    /* the first minute of date0 */
    int64_t m = date0 * 1440 - 15 * 60;
    while ((m + offset_min(tz, m)) / 1440 < date0)
        m++;
    md->m0 = m;
    size_t cap_off = 4096, n = 0;
    md->off = xmalloc(cap_off * sizeof(int32_t));
    md->days = xcalloc((size_t)(date1 - date0 + 1), sizeof(*md->days));
    int64_t prev_hour = -1, prev_off = INT64_MIN;
    for (;; m++) {
        int32_t off = offset_min(tz, m);
        int64_t lm = m + off, date = lm / 1440;
        if (date > date1)
            break;
        if (n == cap_off)
            md->off = xrealloc(md->off, (cap_off *= 2) * sizeof(int32_t));
        md->off[n++] = off;
        struct mday *d = &md->days[date - date0];
        if (lm / 60 != prev_hour || off != prev_off)
            d->starts[d->nh++] = m;
        d->end = m + 1;
        prev_hour = lm / 60;
        prev_off = off;
    }
    md->m1 = m;
    for (int sr = 0; sr <= NTYPES; sr++) {
        md->min[sr] = xcalloc((size_t)(md->m1 - md->m0), sizeof(struct agg_rollup_row));
        for (int64_t x = md->m0; x < md->m1; x++)
            m_minute(md, sr, x, &md->min[sr][x - md->m0]);
    }
}

static void model_free(struct model *md)
{
    free(md->iv);
    free((void *)md->ev);
    free(md->off);
    free(md->days);
    for (int sr = 0; sr <= NTYPES; sr++)
        free(md->min[sr]);
}

/* The bucket [a, b) minutes as the model sees it. */
static void m_bucket(const struct model *md, int series, int64_t a, int64_t b,
                     struct agg_rollup_row *o)
{
    assert_true(a >= md->m0 && b <= md->m1);
    memset(o, 0, sizeof(*o));
    o->start_ms = a * MIN_MS;
    o->minutes = (int32_t)(b - a);
    o->peak = -1;
    for (int64_t m = a; m < b; m++) {
        const struct agg_rollup_row *r = &md->min[series][m - md->m0];
        if (r->peak > o->peak) {
            o->peak = r->peak;
            o->peak_at_ms = m * MIN_MS;
        }
        o->in_use_end = r->in_use_end;
    }
    o->users = m_users(md, series, a * MIN_MS, b * MIN_MS);
    m_counts(md, series, a * MIN_MS, b * MIN_MS, o);
}

/* ---------------------------------------------------------- comparing */

static void check_row(const char *what, int series, const struct agg_rollup_row *got,
                      const struct agg_rollup_row *want)
{
#define F(f)                                                                                       \
    if (got->f != want->f)                                                                         \
        fail_msg("%s %s start %lld: %s got %lld want %lld", what, type_names[series],              \
                 (long long)want->start_ms, #f, (long long)got->f, (long long)want->f);
    F(start_ms)
    F(minutes)
    F(peak)
    F(peak_at_ms)
    F(in_use_end)
    F(users)
    F(logins)
    F(logouts)
    F(user_timeouts)
    F(license_timeouts)
    F(denials)
    F(denied_users)
    F(downgrades)
    F(downgraded_users)
#undef F
}

static void check_all(struct agg_rollup *r, const char *org, const struct model *md)
{
    size_t nm = (size_t)(md->m1 - md->m0);
    struct agg_rollup_row *rows = xcalloc(nm, sizeof(*rows));
    int64_t date0 = md->date0, date1 = md->date1;
    for (int sr = 0; sr <= NTYPES; sr++) {
        /* minutes, in one query per UTC day */
        for (int64_t m = md->m0; m < md->m1; m += 1440) {
            int64_t e = m + 1440 < md->m1 ? m + 1440 : md->m1;
            int n = agg_rollup_minutes(r, org, type_names[sr], m * MIN_MS, e * MIN_MS, rows, nm);
            assert_int_equal(n, e - m);
            for (int i = 0; i < n; i++) {
                check_row("minute", sr, &rows[i], &md->min[sr][m + i - md->m0]);
                assert_int_equal(rows[i].utc_offset_s, md->off[m + i - md->m0] * 60);
            }
        }
        /* hours and days of each local date */
        for (int64_t d = date0; d <= date1; d++) {
            const struct mday *day = &md->days[d - date0];
            struct agg_rollup_row hr[32];
            int n = agg_rollup_hours(r, org, type_names[sr], d, hr, 32);
            assert_int_equal(n, day->nh);
            for (int i = 0; i < day->nh; i++) {
                struct agg_rollup_row w;
                m_bucket(md, sr, day->starts[i], i + 1 < day->nh ? day->starts[i + 1] : day->end,
                         &w);
                check_row("hour", sr, &hr[i], &w);
                assert_int_equal(hr[i].date, d);
                assert_int_equal(hr[i].utc_offset_s, md->off[day->starts[i] - md->m0] * 60);
            }
            struct agg_rollup_row dr, w;
            assert_int_equal(agg_rollup_days(r, org, type_names[sr], d, d, &dr, 1), 1);
            m_bucket(md, sr, day->starts[0], day->end, &w);
            check_row("day", sr, &dr, &w);
            assert_int_equal(dr.date, d);
        }
        /* a run of days in one query, and distinct users over periods */
        int64_t nd = date1 - date0 + 1;
        struct agg_rollup_row *dr = xcalloc((size_t)nd, sizeof(*dr));
        assert_int_equal(agg_rollup_days(r, org, type_names[sr], date0, date1, dr, (size_t)nd), nd);
        for (int64_t d = date0; d <= date1; d++) {
            struct agg_rollup_row one;
            agg_rollup_days(r, org, type_names[sr], d, d, &one, 1);
            check_row("days", sr, &dr[d - date0], &one);
        }
        free(dr);
        for (int64_t a = date0; a <= date1; a++) {
            for (int64_t b = a; b <= date1; b++) {
                struct agg_rollup_row w;
                m_bucket(md, sr, md->days[a - date0].starts[0], md->days[b - date0].end, &w);
                int64_t du, gu;
                assert_int_equal(agg_rollup_period_users(r, org, type_names[sr], a, b, &du, &gu),
                                 0);
                if (du != w.denied_users || gu != w.downgraded_users)
                    fail_msg("period %s %lld..%lld: denied %lld/%lld downgraded %lld/%lld",
                             type_names[sr], (long long)a, (long long)b, (long long)du,
                             (long long)w.denied_users, (long long)gu,
                             (long long)w.downgraded_users);
            }
        }
    }
    free(rows);
}

/* ------------------------------------------------------------- tests */

struct scenario {
    const char *tz;   /* zone in force from the start */
    const char *tz2;  /* zone set half-way (NULL: none) */
    const char *date; /* the interesting local date */
    int nusers, days; /* stream length around it */
    int save_every;   /* save after so many changes (0: never) */
    uint64_t seed;
    bool restart; /* save, drop everything and load again a third of the way */
};

static void run(const struct scenario *sc)
{
    rng_state = sc->seed;
    sid_next = 0;
    gen_tz = sc->tz;
    int64_t day;
    assert_int_equal(time_parse_date(sc->date, &day), 0);
    int64_t from = (day - 1) * DAY_MS, until = (day + sc->days - 1) * DAY_MS;
    struct stream s;
    gen_stream(&s, sc->nusers, from, until);

    struct memstore ms = {0};
    struct agg_rollup *r = new_rollup(sc->save_every ? &ms : NULL);
    const char *org = "acme";
    set_zone(r, org, sc->tz);
    for (size_t i = 0; i < s.n; i++) {
        if (sc->tz2 && i == s.n / 2) {
            set_zone(r, org, sc->tz2);
            if (sc->save_every)
                save(r, &ms);
        }
        if (sc->restart && i == s.n / 3) {
            save(r, &ms);
            agg_rollup_free(&r);
            r = reload(&ms);
        }
        feed_one(r, org, &s.ev[i]);
        if (sc->save_every && (int)(i % (size_t)sc->save_every) == sc->save_every - 1)
            save(r, &ms);
    }
    const char *tz = sc->tz2 ? sc->tz2 : sc->tz;
    assert_string_equal(agg_rollup_zone(r, org), tz);

    /* the model over whole local days around the stream */
    struct model md;
    model_build(&md, &s, tz, day - 2, day + sc->days);

    if (getenv("AGG_TEST_VERBOSE")) {
        struct agg_rollup_stats st;
        agg_rollup_stats(r, &st);
        int64_t maxpeak = 0, users = 0;
        for (int64_t x = md.m0; x < md.m1; x++) {
            maxpeak = md.min[0][x - md.m0].peak > maxpeak ? md.min[0][x - md.m0].peak : maxpeak;
            users += md.min[0][x - md.m0].users;
        }
        fprintf(stderr,
                "%s: %zu events, %zu holds, max peak %lld, user-minutes %lld, open %llu, "
                "resident %llu, late %llu, ignored %llu, store %zu rows %zu puts %zu scans\n",
                sc->date, s.n, md.niv, (long long)maxpeak, (long long)users,
                (unsigned long long)st.open_minutes, (unsigned long long)st.resident_rows,
                (unsigned long long)st.late_clamped, (unsigned long long)st.ignored, ms.n + ms.np,
                ms.puts, ms.scans);
    }
    check_all(r, org, &md); /* some minutes still open */
    for (int t = 1; t <= NTYPES; t++) {
        int64_t held = 0;
        for (size_t i = 0; i < md.niv; i++)
            held += md.iv[i].type == t && md.iv[i].e == OPEN_END;
        assert_int_equal(agg_rollup_in_use(r, org, type_names[t]), held);
    }
    if (sc->save_every) {
        save(r, &ms);
        save(r, &ms);
        check_all(r, org, &md); /* read back from the store */
        struct agg_rollup *r2 = reload(&ms);
        check_all(r2, org, &md);
        agg_rollup_free(&r2);
    }
    agg_rollup_advance(r, org, (md.date1 + 3) * DAY_MS); /* seal everything */
    check_all(r, org, &md);
    if (sc->save_every) {
        save(r, &ms);
        struct agg_rollup *r2 = reload(&ms);
        check_all(r2, org, &md);
        agg_rollup_free(&r2);
    }
    model_free(&md);
    agg_rollup_free(&r);
    ms_free(&ms);
    free(s.ev);
}

static void test_random_utc(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct scenario sc = {"UTC", NULL, "2025-06-10", 20, 3, seed % 2 ? 0 : 97, seed * 7919};
        run(&sc);
    }
}

static void test_new_york_spring(void **state)
{
    (void)state; /* 2024-03-10 has 23 hours */
    struct scenario sc = {"America/New_York", NULL, "2024-03-10", 20, 3, 131, 11};
    run(&sc);
    struct agg_rollup *r = new_rollup(NULL);
    struct agg_rollup_row h[30];
    int64_t d;
    time_parse_date("2024-03-10", &d);
    set_zone(r, "o", "America/New_York");
    assert_int_equal(agg_rollup_hours(r, "o", "all", d, h, 30), 23);
    assert_int_equal(agg_rollup_days(r, "o", "all", d, d, h, 30), 1);
    assert_int_equal(h[0].minutes, 23 * 60);
    agg_rollup_free(&r);
}

static void test_new_york_fall(void **state)
{
    (void)state; /* 2024-11-03 has 25 hours */
    struct scenario sc = {"America/New_York", NULL, "2024-11-03", 20, 3, 0, 12};
    run(&sc);
    struct agg_rollup *r = new_rollup(NULL);
    struct agg_rollup_row h[30];
    int64_t d;
    time_parse_date("2024-11-03", &d);
    set_zone(r, "o", "America/New_York");
    assert_int_equal(agg_rollup_hours(r, "o", "all", d, h, 30), 25);
    assert_int_equal(h[1].utc_offset_s, -4 * 3600);
    assert_int_equal(h[2].utc_offset_s, -5 * 3600);
    assert_int_equal(agg_rollup_days(r, "o", "all", d, d, h, 30), 1);
    assert_int_equal(h[0].minutes, 25 * 60);
    agg_rollup_free(&r);
}

static void test_berlin_both(void **state)
{
    (void)state;
    struct scenario a = {"Europe/Berlin", NULL, "2024-03-31", 20, 3, 211, 13};
    run(&a);
    struct scenario b = {"Europe/Berlin", NULL, "2024-10-27", 20, 3, 0, 14};
    run(&b);
}

static void test_kolkata(void **state)
{
    (void)state;
    struct scenario sc = {"Asia/Kolkata", NULL, "2025-01-15", 20, 3, 173, 15};
    run(&sc);
}

static void test_zone_change(void **state)
{
    (void)state; /* hours and days re-derived from minutes, stored or not */
    struct scenario a = {"America/New_York", "Asia/Kolkata", "2024-11-03", 20, 3, 0, 16};
    run(&a);
    struct scenario b = {"Europe/Berlin", "America/New_York", "2024-03-10", 20, 3, 89, 17};
    run(&b);
}

/* ----------------------------------------------- hand-made edge cases */

static int64_t ms_of(const char *rfc)
{
    int64_t v;
    assert_int_equal(time_parse_rfc3339(rfc, &v), 0);
    return v;
}

static void hold(struct agg_rollup *r, const char *user, const char *type, const char *at, bool acq,
                 int reason)
{
    Licmon__V1__HoldChange h = LICMON__V1__HOLD_CHANGE__INIT;
    h.org = "o";
    h.user = (char *)user;
    h.license_type = (char *)type;
    h.at_ms = ms_of(at);
    h.acquired = acq;
    h.reason = (Licmon__V1__EndReason)reason;
    agg_rollup_hold(r, &h);
}

static struct agg_rollup_row minute_of(struct agg_rollup *r, const char *type, const char *at)
{
    struct agg_rollup_row row;
    int64_t t = ms_of(at);
    assert_int_equal(agg_rollup_minutes(r, "o", type, t, t + 1, &row, 1), 1);
    return row;
}

/* Removes the day rows dated before `date`, as the day retention's
 * compaction filter does. */
static void drop_day_rows_before(struct memstore *m, int64_t date)
{
    ms_flush(m);
    size_t o = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct kv *e = &m->e[i];
        if (e->kl > 10 && e->k[0] == 'R' && e->k[1] == 'd' &&
            keys_get_i64(e->k + e->kl - 8) < date) {
            free(e->k);
            free(e->v);
            continue;
        }
        m->e[o++] = *e;
    }
    m->n = o;
}

/* A seat held through days without a change keeps counting on them after
 * the day rows before them were compacted away and the rollup reloaded:
 * with no day row left, and with a later one whose carry-in holds it. */
static void test_carry_survives_compacted_days(void **state)
{
    (void)state;
    struct memstore m = {0};
    struct agg_rollup *r = new_rollup(&m);
    hold(r, "a", "creator", "2025-01-01T10:00:10Z", true, 0);
    agg_rollup_advance(r, "o", ms_of("2025-01-12T00:00:00Z"));
    save(r, &m);
    int64_t jan1 = agg_rollup_local_date(r, "o", ms_of("2025-01-01T12:00:00Z"));
    agg_rollup_free(&r);
    drop_day_rows_before(&m, jan1 + 1);
    r = reload(&m);
    struct agg_rollup_row row[3];
    assert_int_equal(agg_rollup_days(r, "o", "creator", jan1 + 5, jan1 + 7, row, 3), 3);
    for (int i = 0; i < 3; i++)
        assert_true(row[i].peak == 1 && row[i].in_use_end == 1);
    /* b takes a seat on the 15th; the 1st's row is gone, the 15th's kept */
    hold(r, "b", "creator", "2025-01-15T10:00:10Z", true, 0);
    agg_rollup_advance(r, "o", ms_of("2025-01-20T00:00:00Z"));
    save(r, &m);
    agg_rollup_free(&r);
    r = reload(&m);
    assert_int_equal(agg_rollup_days(r, "o", "creator", jan1 + 9, jan1 + 9, row, 1), 1);
    assert_true(row[0].peak == 1 && row[0].in_use_end == 1);
    assert_int_equal(agg_rollup_days(r, "o", "creator", jan1 + 14, jan1 + 14, row, 1), 1);
    assert_int_equal(row[0].peak, 2);
    row[0] = minute_of(r, "creator", "2025-01-10T08:00:00Z");
    assert_int_equal(row[0].peak, 1);
    agg_rollup_free(&r);
    ms_free(&m);
}

static void test_same_instant(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    hold(r, "a", "creator", "2025-01-01T10:00:10Z", true, 0);
    /* b takes the seat a gives back at the very same instant: no spike */
    hold(r, "b", "creator", "2025-01-01T10:00:20Z", true, 0);
    hold(r, "a", "creator", "2025-01-01T10:00:20Z", false, 1);
    /* c holds for no instant: not a user, not a peak */
    hold(r, "c", "creator", "2025-01-01T10:00:30Z", true, 0);
    hold(r, "c", "creator", "2025-01-01T10:00:30Z", false, 1);
    struct agg_rollup_row m = minute_of(r, "creator", "2025-01-01T10:00:00Z");
    assert_int_equal(m.peak, 1);
    assert_int_equal(m.users, 2);
    assert_int_equal(m.in_use_end, 1);
    /* a release at the minute's first ms: not held in that minute */
    hold(r, "b", "creator", "2025-01-01T10:01:00Z", false, 1);
    m = minute_of(r, "creator", "2025-01-01T10:01:00Z");
    assert_int_equal(m.peak, 0);
    assert_int_equal(m.users, 0);
    /* an acquire at the last ms of a minute counts in it */
    hold(r, "d", "creator", "2025-01-01T10:02:59.999Z", true, 0);
    m = minute_of(r, "creator", "2025-01-01T10:02:00Z");
    assert_int_equal(m.peak, 1);
    assert_int_equal(m.users, 1);
    assert_int_equal(m.in_use_end, 1);
    agg_rollup_free(&r);
}

static void test_quiet_carry(void **state)
{
    (void)state;
    struct memstore ms = {0};
    struct agg_rollup *r = new_rollup(&ms);
    set_zone(r, "o", "Europe/Berlin");
    hold(r, "a", "creator", "2025-01-06T07:30:00Z", true, 0);
    save(r, &ms);
    hold(r, "a", "creator", "2025-01-08T16:00:00Z", false, 4);
    agg_rollup_advance(r, "o", ms_of("2025-01-09T00:00:00Z"));
    save(r, &ms);
    save(r, &ms);
    int64_t d;
    time_parse_date("2025-01-07", &d);
    struct agg_rollup_row h[25];
    assert_int_equal(agg_rollup_hours(r, "o", "creator", d, h, 25), 24);
    for (int i = 0; i < 24; i++) {
        assert_int_equal(h[i].peak, 1);
        assert_int_equal(h[i].users, 1);
        assert_int_equal(h[i].in_use_end, 1);
    }
    struct agg_rollup_row dr[4];
    assert_int_equal(agg_rollup_days(r, "o", "all", d - 1, d + 2, dr, 4), 4);
    assert_int_equal(dr[0].users, 1);
    assert_int_equal(dr[1].users, 1);
    assert_int_equal(dr[1].peak, 1);
    assert_int_equal(dr[1].peak_at_ms, ms_of("2025-01-06T23:00:00Z"));
    assert_int_equal(dr[2].license_timeouts, 1);
    assert_int_equal(dr[2].in_use_end, 0);
    assert_int_equal(dr[3].peak, 0);
    struct agg_rollup_row mr[60];
    int64_t t = ms_of("2025-01-07T03:00:00Z");
    assert_int_equal(agg_rollup_minutes(r, "o", "creator", t, t + HOUR_MS, mr, 60), 60);
    for (int i = 0; i < 60; i++)
        assert_int_equal(mr[i].peak + mr[i].users + mr[i].in_use_end, 3);
    agg_rollup_free(&r);
    ms_free(&ms);
}

static void test_session_counted_once(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    Licmon__V1__SessionRecord s = LICMON__V1__SESSION_RECORD__INIT;
    s.session_id = "s1";
    s.org = "o";
    s.user = "a";
    s.license_type = "creator";
    s.end_ms = ms_of("2025-01-01T10:00:05Z");
    s.end_reason = LICMON__V1__END_REASON__USER_INACTIVITY;
    for (int i = 0; i < 3; i++)
        agg_rollup_session(r, &s); /* ended, then the late license release, ... */
    s.session_id = "s2";
    s.end_reason = LICMON__V1__END_REASON__RELOGIN;
    agg_rollup_session(r, &s);
    s.session_id = "s3";
    s.end_ms = 0;
    s.end_reason = LICMON__V1__END_REASON__OPEN;
    agg_rollup_session(r, &s);
    s.session_id = "s4";
    s.end_ms = ms_of("2025-01-01T10:00:06Z");
    s.end_reason = LICMON__V1__END_REASON__MANUAL_LOGOUT;
    agg_rollup_session(r, &s);
    agg_rollup_session(r, &s);
    struct agg_rollup_row m = minute_of(r, "creator", "2025-01-01T10:00:00Z");
    assert_int_equal(m.user_timeouts, 1);
    assert_int_equal(m.logouts, 1);
    m = minute_of(r, "all", "2025-01-01T10:00:00Z");
    assert_int_equal(m.user_timeouts, 1);
    assert_int_equal(m.logouts, 1);
    agg_rollup_free(&r);
}

static void test_late_clamped(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    hold(r, "a", "creator", "2025-01-01T10:00:00Z", true, 0);
    hold(r, "a", "creator", "2025-01-01T10:30:00Z", false, 1); /* seals up to 10:28 */
    Licmon__V1__Counted c = LICMON__V1__COUNTED__INIT;
    c.what = LICMON__V1__COUNTED__WHAT__DENIAL;
    c.org = "o";
    c.user = "b";
    c.license_type = "creator";
    c.at_ms = ms_of("2025-01-01T10:05:00Z"); /* far later than allowed */
    agg_rollup_counted(r, &c);
    struct agg_rollup_stats st;
    agg_rollup_stats(r, &st);
    assert_int_equal(st.late_clamped, 1);
    assert_int_equal(minute_of(r, "creator", "2025-01-01T10:05:00Z").denials, 0);
    struct agg_rollup_row m = minute_of(r, "creator", "2025-01-01T10:28:00Z");
    assert_int_equal(m.denials, 1);
    assert_int_equal(m.denied_users, 1);
    int64_t d0, d1;
    time_parse_date("2025-01-01", &d0);
    struct agg_rollup_row day;
    agg_rollup_days(r, "o", "creator", d0, d0, &day, 1);
    assert_int_equal(day.denials, 1);
    agg_rollup_period_users(r, "o", "creator", d0, d0, &d0, &d1);
    assert_int_equal(d0, 1);
    agg_rollup_free(&r);
}

static void counted(struct agg_rollup *r, const char *user, int what, const char *at)
{
    Licmon__V1__Counted c = LICMON__V1__COUNTED__INIT;
    c.what = (Licmon__V1__Counted__What)what;
    c.org = "o";
    c.user = (char *)user;
    c.license_type = "creator";
    c.at_ms = ms_of(at);
    agg_rollup_counted(r, &c);
}

static void test_period_users(void **state)
{
    (void)state; /* Berlin, January: local midnight is 23:00Z */
    struct agg_rollup *r = new_rollup(NULL);
    set_zone(r, "o", "Europe/Berlin");
    const int den = LICMON__V1__COUNTED__WHAT__DENIAL, dng = LICMON__V1__COUNTED__WHAT__DOWNGRADE;
    counted(r, "a", den, "2025-01-06T23:00:00Z");     /* first minute of Jan 7 */
    counted(r, "b", den, "2025-01-06T22:59:59.999Z"); /* last ms of Jan 6 */
    counted(r, "c", dng, "2025-01-07T22:59:59.999Z"); /* last ms of Jan 7 */
    counted(r, "c", dng, "2025-01-07T23:00:00Z");     /* first of Jan 8 */
    counted(r, "a", den, "2025-01-08T12:00:00Z");
    counted(r, "b", den, "2025-01-08T12:00:00Z");
    counted(r, "d", den, "2025-01-08T13:00:30Z"); /* in the first minute of an hour */
    counted(r, "d", den, "2025-01-08T13:20:00Z");
    for (int sealed = 0; sealed < 2; sealed++) {
        int64_t d7, du, gu;
        time_parse_date("2025-01-07", &d7);
        agg_rollup_period_users(r, "o", "creator", d7, d7 + 1, &du, &gu);
        assert_int_equal(du, 3);
        assert_int_equal(gu, 1);
        agg_rollup_period_users(r, "o", "all", d7 - 1, d7 + 1, &du, &gu);
        assert_int_equal(du, 3);
        agg_rollup_period_users(r, "o", "creator", d7 + 1, d7 + 1, &du, &gu);
        assert_int_equal(du, 3);
        assert_int_equal(gu, 1);
        agg_rollup_period_users(r, "o", "creator", d7, d7, &du, &gu);
        assert_int_equal(du, 1);
        struct agg_rollup_row dr[3];
        agg_rollup_days(r, "o", "creator", d7 - 1, d7 + 1, dr, 3);
        assert_int_equal(dr[0].denied_users, 1);
        assert_int_equal(dr[1].denied_users, 1);
        assert_int_equal(dr[1].downgraded_users, 1);
        assert_int_equal(dr[2].denied_users, 3);
        assert_int_equal(dr[2].denials, 4);
        struct agg_rollup_row hr[24];
        assert_int_equal(agg_rollup_hours(r, "o", "creator", d7 + 1, hr, 24), 24);
        assert_int_equal(hr[14].denials, 2);
        assert_int_equal(hr[14].denied_users, 1);
        assert_int_equal(dr[2].downgraded_users, 1);
        agg_rollup_advance(r, "o", ms_of("2025-01-10T00:00:00Z"));
    }
    agg_rollup_free(&r);
}

static void test_unknown(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    struct agg_rollup_row h[30];
    int64_t d;
    time_parse_date("2025-03-30", &d);
    assert_int_equal(agg_rollup_hours(r, "nobody", "creator", d, h, 30), 24);
    assert_int_equal(h[5].peak, 0);
    assert_int_equal(agg_rollup_hours(r, "nobody", "creator", d, h, 10), -1);
    assert_int_equal(agg_rollup_days(r, "nobody", "all", d, d - 1, h, 30), -1);
    set_zone(r, "o", "Europe/Berlin");
    assert_int_equal(agg_rollup_hours(r, "o", "creator", d, h, 30), 23);
    assert_int_equal(agg_rollup_in_use(r, "o", "creator"), 0);
    agg_rollup_free(&r);
}

static void test_restart(void **state)
{
    (void)state; /* carry on after a reload: users, open minutes, hour rows */
    struct scenario a = {"Europe/Berlin", NULL, "2024-10-27", 20, 3, 53, 18, true};
    run(&a);
    struct scenario b = {"UTC", "Asia/Kolkata", "2025-02-01", 20, 3, 1, 19, true};
    run(&b);
}

static size_t zigzag_len(int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
    size_t n = 1;
    for (; u >= 0x80; u >>= 7)
        n++;
    return n;
}

/* A rollup's user row with something in it: alice, denied once. */
static struct agg_roll_user *denied_alice(struct agg_rollup *r, struct agg_roll_org **o)
{
    counted(r, "alice", LICMON__V1__COUNTED__WHAT__DENIAL, "2025-01-01T10:00:30Z");
    *o = agg_roll_org_get(r, "o", false);
    struct agg_roll_user *u = agg_roll_user_get(*o, "alice", false);
    assert_non_null(u);
    return u;
}

/* A user row saved before rows had the denial-minutes trailer still reads,
 * its series' last denial taken as what the next one links to; a row with
 * the trailer reads back as written; a damaged trailer is refused. */
static void test_user_row_without_trailer(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    struct agg_roll_org *o;
    struct agg_roll_user *u = denied_alice(r, &o);
    /* as an old row: nothing remembered but the last denial */
    for (uint32_t i = 0; i <= u->nser; i++) {
        struct agg_roll_useries *us = i < u->nser ? &u->ser[i] : &u->all;
        agg_roll_useries_free(us);
        us->den_floor = AGG_ROLL_NEVER_MIN;
    }
    size_t len;
    uint8_t *row = agg_roll_enc_user(u, &len);
    size_t trailer = (u->nser + 1) * (zigzag_len(AGG_ROLL_NEVER_MIN) + 1);
    struct agg_roll_user back = {0};
    assert_int_equal(agg_roll_dec_user(o, &back, row, len - trailer), 0);
    assert_int_equal(back.all.nden_min, 0);
    assert_int_equal(back.all.den_floor, agg_roll_den_floor_of(u->all.last_den));
    assert_int_equal(back.nser, u->nser);
    assert_int_equal(back.ser[0].den_floor, agg_roll_den_floor_of(u->ser[0].last_den));
    /* and the whole row, trailer included, reads back as written */
    struct agg_roll_user whole = {0};
    assert_int_equal(agg_roll_dec_user(o, &whole, row, len), 0);
    assert_int_equal(whole.all.den_floor, AGG_ROLL_NEVER_MIN);
    /* a damaged trailer is refused: more minutes than bytes left */
    row[len - 1] = 5;
    struct agg_roll_user bad = {0};
    assert_int_equal(agg_roll_dec_user(o, &bad, row, len), -1);
    agg_roll_user_series_free(&back);
    agg_roll_user_series_free(&whole);
    free(row);
    agg_rollup_free(&r);
}

/* Instants and minutes of a user row out of any real range (damage) are
 * refused when read, so nothing computed from them later can overflow;
 * the never-sentinels still read. */
static void test_user_row_bounds(void **state)
{
    (void)state;
    struct agg_rollup *r = new_rollup(NULL);
    struct agg_roll_org *o;
    struct agg_roll_user *u = denied_alice(r, &o);
    int64_t keep = u->all.last_rel;
    static const int64_t bad[] = {INT64_MIN, INT64_MAX, -(INT64_C(1) << 60)};
    for (int pass = 0; pass < 4; pass++) {
        u->all.last_rel = pass < 3 ? bad[pass] : AGG_ROLL_NEVER_MS;
        size_t len;
        uint8_t *row = agg_roll_enc_user(u, &len);
        struct agg_roll_user back = {0};
        assert_int_equal(agg_roll_dec_user(o, &back, row, len), pass < 3 ? -1 : 0);
        agg_roll_user_series_free(&back);
        free(row);
    }
    u->all.last_rel = keep;
    agg_rollup_free(&r);
}

static void test_gc(void **state)
{
    (void)state;
    struct memstore ms = {0};
    struct agg_rollup *r = new_rollup(&ms);
    hold(r, "a", "creator", "2025-01-01T10:00:00Z", true, 0);
    hold(r, "b", "creator", "2025-01-01T10:00:00Z", true, 0);
    hold(r, "a", "creator", "2025-01-01T11:00:00Z", false, 1);
    counted(r, "c", LICMON__V1__COUNTED__WHAT__DENIAL, "2025-01-01T12:00:00Z");
    save(r, &ms);
    struct agg_rollup_stats st;
    agg_rollup_stats(r, &st);
    assert_int_equal(st.users, 3);
    agg_rollup_gc(r, ms_of("2025-01-01T11:30:00Z")); /* a only: b holds, c is recent */
    agg_rollup_stats(r, &st);
    assert_int_equal(st.users, 2);
    save(r, &ms);
    struct agg_rollup *r2 = reload(&ms);
    agg_rollup_stats(r2, &st);
    assert_int_equal(st.users, 2);
    /* a again: new to every bucket, as it was long ago */
    hold(r2, "a", "creator", "2025-01-01T12:00:30Z", true, 0);
    struct agg_rollup_row m = minute_of(r2, "creator", "2025-01-01T12:00:00Z");
    assert_int_equal(m.users, 2);
    assert_int_equal(m.peak, 2);
    agg_rollup_free(&r2);
    agg_rollup_free(&r);
    ms_free(&ms);
}

/* AGG_TEST_SEEDS=n runs n more random scenarios (not by default: slow) */
static void test_many_seeds(void **state)
{
    (void)state;
    const char *env = getenv("AGG_TEST_SEEDS");
    int n = env ? atoi(env) : 0;
    static const char *zones[] = {"UTC",          "America/New_York",    "Europe/Berlin",
                                  "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"};
    static const char *dates[] = {"2024-03-10", "2024-11-03", "2024-03-31", "2024-10-27",
                                  "2024-04-07", "2024-09-08", "2025-01-15"};
    for (int i = 0; i < n; i++) {
        uint64_t seed = 1000 + (uint64_t)i * 7;
        struct scenario sc = {zones[i % 6],
                              i % 3 == 0 ? zones[(i / 3) % 6] : NULL,
                              dates[(i / 2) % 7],
                              8 + i % 25,
                              2 + i % 3,
                              i % 4 == 0 ? 0 : 7 + i % 200,
                              seed,
                              i % 5 == 1};
        if (sc.tz2 && !strcmp(sc.tz2, sc.tz))
            sc.tz2 = NULL;
        if (!sc.save_every)
            sc.restart = false;
        if (getenv("AGG_TEST_VERBOSE"))
            fprintf(stderr, "seed %d: %s -> %s %s\n", i, sc.tz, sc.tz2 ? sc.tz2 : "-", sc.date);
        run(&sc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_instant),
        cmocka_unit_test(test_quiet_carry),
        cmocka_unit_test(test_session_counted_once),
        cmocka_unit_test(test_late_clamped),
        cmocka_unit_test(test_period_users),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_random_utc),
        cmocka_unit_test(test_new_york_spring),
        cmocka_unit_test(test_new_york_fall),
        cmocka_unit_test(test_berlin_both),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_zone_change),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_carry_survives_compacted_days),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_user_row_without_trailer),
        cmocka_unit_test(test_user_row_bounds),
        cmocka_unit_test(test_many_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
