/* agg_rollup: the counting of SPEC.md section 4 (see agg_rollup.h).
 *
 * in_use(t) counts holds with start <= t < end, so every change at the same
 * instant applies at once: an acquire and a release at t make no peak.
 * Distinct users of a bucket B = [k, e) (k a minute) are
 *     in_use(k) + #{acquires at t in B, t > k, whose user's previous hold
 *                   ended at or before k}
 * since a user holding at k is counted by in_use(k) and any later acquire of
 * that user in B follows a release after k. Denied (downgraded) users: the
 * denials in B whose user's previous denial was before k. Each minute row
 * keeps those "previous" minutes, so hour and day rows of any zone are
 * folded from minute rows alone, and a zone change re-derives them. */
#include "agg_roll_int.h"
#include "keys.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define MIN_MS INT64_C(60000)
#define T_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

#define GROW(ptr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 4;                                                           \
            (ptr) = xrealloc((ptr), (size_t)(cap) * sizeof(*(ptr)));                               \
        }                                                                                          \
    } while (0)

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

static int64_t floor_min(int64_t ms)
{
    return fdiv(ms, MIN_MS);
}

static int64_t ceil_min(int64_t ms)
{
    return -fdiv(-ms, MIN_MS);
}

static int64_t clamp_time(int64_t t)
{
    return t < 0 ? 0 : t > T_MAX ? T_MAX : t;
}

/* ------------------------------------------------------------------ rows */

void agg_roll_mrow_free(struct agg_roll_mrow *m)
{
    free(m->acq);
    free(m->den);
    free(m->dng);
    m->acq = m->den = m->dng = NULL;
}

void agg_roll_brow_free(struct agg_roll_brow *b)
{
    free(b->den_prev);
    free(b->dng_prev);
    b->den_prev = b->dng_prev = NULL;
}

void agg_roll_omin_free(struct agg_roll_omin *m)
{
    free(m->dl);
    free(m->acq);
    free(m->den);
    free(m->dng);
    m->dl = NULL;
    m->acq = m->den = m->dng = NULL;
}

size_t agg_roll_bvec_find(const struct agg_roll_bvec *v, int64_t key, bool *found)
{
    if (v->n && v->v[v->n - 1].key < key) {
        *found = false;
        return v->n;
    }
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->v[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < v->n && v->v[lo].key == key;
    return lo;
}

struct agg_roll_brow *agg_roll_bvec_insert(struct agg_roll_bvec *v, size_t at)
{
    GROW(v->v, v->n, v->cap);
    memmove(&v->v[at + 1], &v->v[at], (v->n - at) * sizeof(v->v[0]));
    v->n++;
    memset(&v->v[at], 0, sizeof(v->v[at]));
    return &v->v[at];
}

static void bvec_free(struct agg_roll_bvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        agg_roll_brow_free(&v->v[i]);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

static void push_i64(int64_t **a, uint32_t *n, uint32_t *cap, int64_t v)
{
    GROW(*a, *n, *cap);
    (*a)[(*n)++] = v;
}

/* An acquire entry: new to a bucket that starts at minute k? */
static bool acq_new(int64_t e, int64_t minute, int64_t k)
{
    int64_t at_start = e & 1;
    int64_t prev = (e - at_start) / 2;
    return prev <= k && (k < minute || !at_start);
}

/* The first minute of a bucket starting at k is r (minutes k..r-1 quiet). */
static void brow_init(struct agg_roll_brow *b, int64_t key, int64_t k,
                      const struct agg_roll_mrow *r)
{
    memset(b, 0, sizeof(*b));
    b->key = key;
    b->start = k;
    b->before = r->before;
    b->start_in_use = r->minute == k ? r->start : r->before;
    b->peak = r->minute == k ? INT32_MIN : r->before;
    b->peak_at = k;
    b->state = AGG_ROLL_DIRTY;
}

static void brow_fold(struct agg_roll_brow *b, const struct agg_roll_mrow *r, bool lists)
{
    if (r->peak > b->peak) {
        b->peak = r->peak;
        b->peak_at = r->minute;
    }
    b->end = r->end;
    b->logins += r->logins;
    b->logouts += r->logouts;
    b->uto += r->uto;
    b->lto += r->lto;
    b->denials += r->denials;
    b->downgrades += r->downgrades;
    for (uint32_t i = 0; i < r->nacq; i++)
        b->users_new += acq_new(r->acq[i], r->minute, b->start);
    for (uint32_t i = 0; i < r->nden; i++) {
        if (r->den[i] >= b->start)
            continue;
        if (lists)
            push_i64(&b->den_prev, &b->den_new, &b->den_cap, r->den[i]);
        else
            b->den_new++;
    }
    for (uint32_t i = 0; i < r->ndng; i++) {
        if (r->dng[i] >= b->start)
            continue;
        if (lists)
            push_i64(&b->dng_prev, &b->dng_new, &b->dng_cap, r->dng[i]);
        else
            b->dng_new++;
    }
}

/* ------------------------------------------------------------ the store */

static int store_scan(struct agg_rollup *r, const uint8_t *from, size_t fl, const uint8_t *to,
                      size_t tl, agg_rollup_visit_fn visit, void *arg)
{
    if (!r->has_store)
        return 0;
    return r->store.scan(r->store.arg, from, fl, to, tl, visit, arg);
}

struct read_brow {
    struct agg_roll_brow *b;
    bool day, found, bad;
};

static int read_brow_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct read_brow *c = arg;
    if (klen < 8)
        return 1;
    int64_t k = keys_get_i64((const uint8_t *)key + klen - 8);
    if (agg_roll_dec_brow(c->b, k, c->day, val, vlen) != 0)
        c->bad = true;
    else
        c->found = true;
    return 1;
}

/* The hour row of key from memory, else from the store, else a new one. */
static struct agg_roll_brow *hour_row(struct agg_roll_series *s, int64_t key, bool *fresh)
{
    bool found;
    size_t at = agg_roll_bvec_find(&s->hours, key, &found);
    *fresh = false;
    if (found)
        return &s->hours.v[at];
    struct agg_roll_brow b = {0};
    if (s->hours_reset == 0 && key <= s->hours_hi) {
        uint8_t from[AGG_ROLL_KEY_MAX], to[AGG_ROLL_KEY_MAX];
        size_t fl = agg_roll_key(from, 'h', s->org->name, s->type, true, key);
        size_t tl = agg_roll_key(to, 'h', s->org->name, s->type, true, key + 1);
        struct read_brow c = {.b = &b};
        if (store_scan(s->org->ru, from, fl, to, tl, read_brow_visit, &c) != 0 || c.bad) {
            char when[32];
            time_format_rfc3339(key * MIN_MS, when, sizeof(when));
            log_warn_ctx("org", s->org->name, "rollup: cannot read the stored hour row of %s at %s",
                         s->type, when);
            s->org->ru->store_failed = true;
        }
        if (c.found) {
            struct agg_roll_brow *nb = agg_roll_bvec_insert(&s->hours, at);
            *nb = b;
            nb->state = AGG_ROLL_CLEAN;
            return nb;
        }
        agg_roll_brow_free(&b);
    }
    *fresh = true;
    return agg_roll_bvec_insert(&s->hours, at);
}

/* ------------------------------------------------------------- folding */

static void folder_hour(struct agg_roll_tz *tz, struct agg_roll_folder *f, int64_t m)
{
    if (m >= f->hs && m < f->he)
        return;
    f->hs = agg_roll_tz_hour_start(tz, m);
    f->he = agg_roll_tz_next_hour(tz, f->hs);
}

static void folder_day(struct agg_roll_tz *tz, struct agg_roll_folder *f, int64_t m)
{
    if (m >= f->ds && m < f->de)
        return;
    f->date = agg_roll_tz_date(tz, m);
    f->ds = agg_roll_tz_date_start(tz, f->date);
    f->de = agg_roll_tz_date_start(tz, f->date + 1);
}

/* Folds r into its hour row of hours and day row of days (either may be
 * NULL), rows kept by key. Minutes must come in time order per vector. */
static void fold_into(struct agg_roll_tz *tz, struct agg_roll_folder *f,
                      struct agg_roll_bvec *hours, struct agg_roll_bvec *days,
                      const struct agg_roll_mrow *r, bool lists)
{
    bool found;
    if (hours) {
        folder_hour(tz, f, r->minute);
        size_t at = agg_roll_bvec_find(hours, f->hs, &found);
        struct agg_roll_brow *b = found ? &hours->v[at] : agg_roll_bvec_insert(hours, at);
        if (!found)
            brow_init(b, f->hs, f->hs, r);
        brow_fold(b, r, false);
    }
    if (days) {
        folder_day(tz, f, r->minute);
        size_t at = agg_roll_bvec_find(days, f->date, &found);
        struct agg_roll_brow *b = found ? &days->v[at] : agg_roll_bvec_insert(days, at);
        if (!found)
            brow_init(b, f->date, f->ds, r);
        brow_fold(b, r, lists);
    }
}

/* Folds a newly sealed minute into the series' own hour and day rows. */
static void fold_sealed(struct agg_roll_series *s, const struct agg_roll_mrow *r)
{
    struct agg_roll_tz *tz = s->org->tz;
    folder_hour(tz, &s->fold, r->minute);
    bool fresh;
    struct agg_roll_brow *b = hour_row(s, s->fold.hs, &fresh);
    if (fresh)
        brow_init(b, s->fold.hs, s->fold.hs, r);
    brow_fold(b, r, false);
    b->state = AGG_ROLL_DIRTY;

    folder_day(tz, &s->fold, r->minute);
    bool found;
    size_t at = agg_roll_bvec_find(&s->days, s->fold.date, &found);
    struct agg_roll_brow *d = found ? &s->days.v[at] : agg_roll_bvec_insert(&s->days, at);
    if (!found)
        brow_init(d, s->fold.date, s->fold.ds, r);
    brow_fold(d, r, true);
    d->state = AGG_ROLL_DIRTY;
    if (at < s->days_dirty_from)
        s->days_dirty_from = at;
}

/* ------------------------------------------------------------- sealing */

static int delta_cmp(const void *a, const void *b)
{
    const struct agg_roll_delta *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* The row of an open minute given in_use before it; the entry arrays are
 * borrowed from om. Sorting the deltas in place changes nothing else. */
static void omin_compute(struct agg_roll_omin *om, int32_t before, struct agg_roll_mrow *r)
{
    bool sorted = true;
    for (uint32_t i = 1; i < om->ndl && sorted; i++)
        sorted = om->dl[i - 1].t <= om->dl[i].t;
    if (!sorted)
        qsort(om->dl, om->ndl, sizeof(om->dl[0]), delta_cmp);
    memset(r, 0, sizeof(*r));
    r->minute = om->minute;
    int64_t cur = before, k = om->minute * MIN_MS;
    uint32_t i = 0;
    while (i < om->ndl && om->dl[i].t <= k)
        cur += om->dl[i++].d;
    int64_t peak = cur;
    r->before = before;
    r->start = (int32_t)cur;
    while (i < om->ndl) {
        int64_t t = om->dl[i].t;
        while (i < om->ndl && om->dl[i].t == t)
            cur += om->dl[i++].d;
        if (cur > peak)
            peak = cur;
    }
    r->peak = (int32_t)peak;
    r->end = (int32_t)cur;
    r->logins = om->logins;
    r->logouts = om->logouts;
    r->uto = om->uto;
    r->lto = om->lto;
    r->denials = om->denials;
    r->downgrades = om->downgrades;
    r->nacq = om->nacq;
    r->acq = om->acq;
    r->nden = om->nden;
    r->den = om->den;
    r->ndng = om->ndng;
    r->dng = om->dng;
}

/* Rows of every open minute (borrowed entries); caller frees the array. */
static struct agg_roll_mrow *open_rows(struct agg_roll_series *s)
{
    struct agg_roll_mrow *v = xcalloc(s->nopen ? s->nopen : 1, sizeof(*v));
    int32_t cur = s->in_use_sealed;
    for (size_t i = 0; i < s->nopen; i++) {
        omin_compute(&s->open[i], cur, &v[i]);
        cur = v[i].end;
    }
    return v;
}

static void seal_series(struct agg_roll_series *s, int64_t upto)
{
    size_t i = 0;
    for (; i < s->nopen && s->open[i].minute < upto; i++) {
        struct agg_roll_omin *om = &s->open[i];
        GROW(s->mins, s->nmins, s->cap_mins);
        struct agg_roll_mrow *r = &s->mins[s->nmins++];
        omin_compute(om, s->in_use_sealed, r);
        om->acq = om->den = om->dng = NULL; /* now the row's */
        agg_roll_omin_free(om);
        r->state = AGG_ROLL_DIRTY;
        s->in_use_sealed = r->end;
        fold_sealed(s, r);
    }
    if (i) {
        memmove(s->open, s->open + i, (s->nopen - i) * sizeof(s->open[0]));
        s->nopen -= i;
        s->dirty = s->touched = true;
    }
}

static void seal_org(struct agg_roll_org *o, int64_t upto)
{
    if (upto <= o->open_from)
        return;
    for (size_t i = 0; i < o->nseries; i++)
        seal_series(o->series[i], upto);
    o->open_from = upto;
    o->dirty = true;
}

/* ------------------------------------------------------ orgs and users */

static void useries_init(struct agg_roll_useries *us, struct agg_roll_series *s)
{
    memset(us, 0, sizeof(*us));
    us->s = s;
    us->acq_t = us->prev_rel = us->last_rel = AGG_ROLL_NEVER_MS;
    us->last_den = us->last_dng = AGG_ROLL_NEVER_MS;
    us->den_floor = AGG_ROLL_NEVER_MIN;
}

int64_t agg_roll_den_floor_of(int64_t last_den_ms)
{
    return last_den_ms == AGG_ROLL_NEVER_MS ? AGG_ROLL_NEVER_MIN : floor_min(last_den_ms);
}

void agg_roll_useries_free(struct agg_roll_useries *us)
{
    free(us->den_min);
    us->den_min = NULL;
    us->nden_min = us->cap_den_min = 0;
}

struct agg_roll_series *agg_roll_series_get(struct agg_roll_org *o, const char *type, bool create)
{
    struct agg_roll_series *s = agg_roll_map_get(&o->series_by_type, type);
    if (s || !create)
        return s;
    s = xcalloc(1, sizeof(*s));
    s->type = xstrdup(type);
    s->org = o;
    s->hours_hi = INT64_MIN;
    s->dirty = s->touched = true;
    agg_roll_map_put(&o->series_by_type, s->type, s);
    o->series = xrealloc(o->series, (o->nseries + 1) * sizeof(*o->series));
    o->series[o->nseries++] = s;
    o->ru->st.series++;
    return s;
}

struct agg_roll_org *agg_roll_org_get(struct agg_rollup *r, const char *name, bool create)
{
    if (r->last_org && !strcmp(r->last_org->name, name))
        return r->last_org;
    struct agg_roll_org *o = agg_roll_map_get(&r->orgs, name);
    if (!o && create) {
        o = xcalloc(1, sizeof(*o));
        o->ru = r;
        o->name = xstrdup(name);
        o->tz = agg_roll_tz_new("UTC");
        o->lag_ms = AGG_ROLLUP_DEFAULT_LAG_MS;
        o->max_seen = AGG_ROLL_NEVER_MS;
        o->open_from = AGG_ROLL_NEVER_MIN;
        o->dirty = true;
        agg_roll_map_put(&r->orgs, o->name, o);
        r->org_list = xrealloc(r->org_list, (r->norgs + 1) * sizeof(*r->org_list));
        r->org_list[r->norgs++] = o;
        r->st.orgs++;
        o->all = agg_roll_series_get(o, AGG_ROLLUP_ALL, true);
    }
    if (o)
        r->last_org = o;
    return o;
}

struct agg_roll_user *agg_roll_user_get(struct agg_roll_org *o, const char *name, bool create)
{
    struct agg_roll_user *u = agg_roll_map_get(&o->users, name);
    if (u || !create)
        return u;
    u = xcalloc(1, sizeof(*u));
    u->name = xstrdup(name);
    useries_init(&u->all, o->all);
    u->last_end = AGG_ROLL_NEVER_MS;
    agg_roll_map_put(&o->users, u->name, u);
    o->ru->st.users++;
    return u;
}

struct agg_roll_useries *agg_roll_useries_get(struct agg_roll_user *u, struct agg_roll_series *s)
{
    if (s == u->all.s)
        return &u->all;
    for (uint32_t i = 0; i < u->nser; i++)
        if (u->ser[i].s == s)
            return &u->ser[i];
    u->ser = xrealloc(u->ser, (u->nser + 1) * sizeof(*u->ser));
    useries_init(&u->ser[u->nser], s);
    return &u->ser[u->nser++];
}

static void user_touch(struct agg_roll_org *o, struct agg_roll_user *u)
{
    if (u->dirty)
        return;
    u->dirty = true;
    GROW(o->dirty_users, o->ndirty_users, o->cap_dirty_users);
    o->dirty_users[o->ndirty_users++] = u;
}

void agg_roll_user_series_free(struct agg_roll_user *u)
{
    agg_roll_useries_free(&u->all);
    for (uint32_t i = 0; i < u->nser; i++)
        agg_roll_useries_free(&u->ser[i]);
    free(u->ser);
}

static void user_free(struct agg_roll_user *u)
{
    free(u->name);
    agg_roll_user_series_free(u);
    free(u);
}

static void series_free(struct agg_roll_series *s)
{
    for (size_t i = 0; i < s->nopen; i++)
        agg_roll_omin_free(&s->open[i]);
    free(s->open);
    for (size_t i = 0; i < s->nmins; i++)
        agg_roll_mrow_free(&s->mins[i]);
    free(s->mins);
    bvec_free(&s->hours);
    bvec_free(&s->days);
    free(s->type);
    free(s);
}

static void org_free(struct agg_roll_org *o)
{
    for (size_t i = 0; i < o->nseries; i++)
        series_free(o->series[i]);
    free(o->series);
    agg_roll_map_clear(&o->series_by_type);
    for (size_t i = 0; i < o->users.cap; i++)
        if (o->users.e[i].k)
            user_free(o->users.e[i].v);
    agg_roll_map_clear(&o->users);
    free(o->dirty_users);
    for (size_t i = 0; i < o->ngone; i++)
        free(o->gone_users[i]);
    free(o->gone_users);
    agg_roll_tz_free(&o->tz);
    free(o->name);
    free(o);
}

struct agg_rollup *agg_rollup_new(const struct agg_rollup_store *store)
{
    struct agg_rollup *r = xcalloc(1, sizeof(*r));
    if (store && store->scan) {
        r->store = *store;
        r->has_store = true;
    }
    return r;
}

void agg_rollup_free(struct agg_rollup **rp)
{
    struct agg_rollup *r = *rp;
    if (!r)
        return;
    for (size_t i = 0; i < r->norgs; i++)
        org_free(r->org_list[i]);
    free(r->org_list);
    agg_roll_map_clear(&r->orgs);
    free(r);
    *rp = NULL;
}

/* ------------------------------------------------------------ applying */

/* The index of the first open minute of s at or after m. */
static size_t omin_lower(const struct agg_roll_series *s, int64_t m)
{
    size_t lo = 0, hi = s->nopen;
    if (s->nopen && s->open[s->nopen - 1].minute < m)
        return s->nopen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->open[mid].minute < m)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The open minute m of s, or NULL. */
static struct agg_roll_omin *omin_find(struct agg_roll_series *s, int64_t m)
{
    size_t i = omin_lower(s, m);
    return i < s->nopen && s->open[i].minute == m ? &s->open[i] : NULL;
}

static struct agg_roll_omin *omin_get(struct agg_roll_series *s, int64_t m)
{
    s->dirty = s->touched = true;
    if (s->nopen && s->open[s->nopen - 1].minute == m)
        return &s->open[s->nopen - 1];
    size_t lo = omin_lower(s, m);
    if (lo < s->nopen && s->open[lo].minute == m)
        return &s->open[lo];
    GROW(s->open, s->nopen, s->cap_open);
    memmove(&s->open[lo + 1], &s->open[lo], (s->nopen - lo) * sizeof(s->open[0]));
    s->nopen++;
    memset(&s->open[lo], 0, sizeof(s->open[lo]));
    s->open[lo].minute = m;
    return &s->open[lo];
}

static void omin_delta(struct agg_roll_omin *om, int64_t t, int32_t d)
{
    GROW(om->dl, om->ndl, om->cap_dl);
    om->dl[om->ndl].t = t;
    om->dl[om->ndl++].d = d;
}

/* A change time, moved forward to the first open minute when older. */
static int64_t change_time(struct agg_roll_org *o, int64_t t)
{
    t = clamp_time(t);
    if (floor_min(t) < o->open_from) {
        o->ru->st.late_clamped++;
        return o->open_from * MIN_MS;
    }
    return t;
}

/* After a change at t (as sent): the watermark may seal minutes. */
static void note_time(struct agg_roll_org *o, int64_t t)
{
    t = clamp_time(t);
    if (t <= o->max_seen)
        return;
    o->max_seen = t;
    o->dirty = true;
    int64_t upto = floor_min(t - o->lag_ms);
    if (upto > o->open_from)
        seal_org(o, upto);
}

static void hold_acquire(struct agg_roll_series *s, struct agg_roll_useries *us, int64_t t)
{
    int64_t m = floor_min(t);
    struct agg_roll_omin *om = omin_get(s, m);
    omin_delta(om, t, 1);
    int64_t prev = us->last_rel == AGG_ROLL_NEVER_MS ? AGG_ROLL_NEVER_MIN : ceil_min(us->last_rel);
    int64_t e = 2 * prev + (t == m * MIN_MS);
    push_i64(&om->acq, &om->nacq, &om->cap_acq, e);
    us->holding = 1;
    us->acq_t = t;
    us->acq_ent = e;
    us->prev_rel = us->last_rel;
    s->in_use_now++;
}

static void hold_release(struct agg_roll_series *s, struct agg_roll_useries *us, int64_t t)
{
    struct agg_roll_omin *om = omin_get(s, floor_min(t));
    omin_delta(om, t, -1);
    if (us->acq_t == t) {
        /* held for no instant: the acquire (same open minute) never counted */
        for (uint32_t i = om->nacq; i-- > 0;) {
            if (om->acq[i] == us->acq_ent) {
                om->acq[i] = om->acq[--om->nacq];
                break;
            }
        }
        us->last_rel = us->prev_rel;
    } else {
        us->last_rel = t;
    }
    us->holding = 0;
    us->acq_t = AGG_ROLL_NEVER_MS;
    s->in_use_now--;
}

/* The series of a change's license type; NULL for none or "all". */
static struct agg_roll_series *type_series(struct agg_roll_org *o, const char *type)
{
    if (!type || !*type || !strcmp(type, AGG_ROLLUP_ALL))
        return NULL;
    return agg_roll_series_get(o, type, true);
}

static bool valid_name(const char *s)
{
    return s && *s;
}

void agg_rollup_hold(struct agg_rollup *r, const Licmon__V1__HoldChange *h)
{
    if (!h || !valid_name(h->org) || !valid_name(h->user))
        return;
    struct agg_roll_org *o = agg_roll_org_get(r, h->org, true);
    int64_t t = change_time(o, h->at_ms);
    struct agg_roll_user *u = agg_roll_user_get(o, h->user, true);
    struct agg_roll_series *s = type_series(o, h->license_type);
    struct agg_roll_useries *us = s ? agg_roll_useries_get(u, s) : NULL;
    if (!us) {
        r->st.ignored++;
    } else if (h->acquired) {
        if (us->holding) {
            r->st.ignored++;
        } else {
            hold_acquire(s, us, t);
            if (u->holds++ == 0)
                hold_acquire(o->all, &u->all, t);
        }
    } else {
        if (!us->holding) {
            r->st.ignored++;
        } else {
            hold_release(s, us, t);
            if (h->reason == LICMON__V1__END_REASON__LICENSE_INACTIVITY) {
                omin_get(s, floor_min(t))->lto++;
                omin_get(o->all, floor_min(t))->lto++;
            }
            if (--u->holds == 0)
                hold_release(o->all, &u->all, t);
        }
    }
    user_touch(o, u);
    note_time(o, h->at_ms);
}

static uint64_t session_hash(const char *id)
{
    return agg_roll_map_hash(id) | 1; /* 0 marks an empty ring slot */
}

void agg_rollup_session(struct agg_rollup *r, const Licmon__V1__SessionRecord *rec)
{
    if (!rec || !valid_name(rec->org) || !valid_name(rec->user) || rec->end_ms == 0)
        return;
    bool logout = rec->end_reason == LICMON__V1__END_REASON__MANUAL_LOGOUT;
    bool timeout = rec->end_reason == LICMON__V1__END_REASON__USER_INACTIVITY;
    if (!logout && !timeout)
        return;
    struct agg_roll_org *o = agg_roll_org_get(r, rec->org, true);
    struct agg_roll_user *u = agg_roll_user_get(o, rec->user, true);
    if (valid_name(rec->session_id)) {
        uint64_t h = session_hash(rec->session_id);
        for (int i = 0; i < AGG_ROLL_RING; i++)
            if (u->ended[i] == h)
                return; /* this end was counted already */
        u->ended[u->ended_pos] = h;
        u->ended_pos = (uint8_t)((u->ended_pos + 1) % AGG_ROLL_RING);
    }
    int64_t t = change_time(o, rec->end_ms);
    if (t > u->last_end)
        u->last_end = t;
    struct agg_roll_series *s = type_series(o, rec->license_type);
    struct agg_roll_series *both[2] = {o->all, s};
    for (int i = 0; i < 2; i++) {
        if (!both[i])
            continue;
        struct agg_roll_omin *om = omin_get(both[i], floor_min(t));
        if (logout)
            om->logouts++;
        else
            om->uto++;
    }
    user_touch(o, u);
    note_time(o, rec->end_ms);
}

/* A denial of the user series us at minute m (open) of s. Its entry is the
 * minute of the user's previous denial, in time, whatever order denials
 * arrive in: the sessionizer emits each at its own time, so one can arrive
 * after a later one of the same user. Within a minute the entries of a
 * user are {its previous denial minute, m, m, ...} whichever denial holds
 * which, so a repeat in a known minute is just m. A denial in a new minute
 * before a known one also relinks that one: in the next known minute, the
 * entry that pointed to m's predecessor now points to m (that minute is
 * open too: it is later than m). No denial can land before the first open
 * minute (change_time), so of the minutes before it only the latest, as a
 * predecessor, is kept (den_floor): den_min holds at most the open minutes.
 * (A row saved before den_min existed starts with its last denial as
 * den_floor, possibly open: a denial before it is linked to it, never
 * counted as a new user, for that one lateness window.) */
static void den_link(struct agg_roll_series *s, struct agg_roll_useries *us, int64_t m)
{
    uint32_t drop = 0;
    while (drop < us->nden_min && us->den_min[drop] < s->org->open_from)
        us->den_floor = us->den_min[drop++];
    if (drop) {
        us->nden_min -= drop;
        memmove(us->den_min, us->den_min + drop, us->nden_min * sizeof(us->den_min[0]));
    }
    struct agg_roll_omin *om = omin_get(s, m);
    int64_t pred = us->den_floor;
    uint32_t i = 0;
    while (i < us->nden_min && us->den_min[i] < m)
        pred = us->den_min[i++];
    if (pred >= m || (i < us->nden_min && us->den_min[i] == m)) {
        push_i64(&om->den, &om->nden, &om->cap_den, pred > m ? pred : m);
        return;
    }
    push_i64(&om->den, &om->nden, &om->cap_den, pred);
    struct agg_roll_omin *next = i < us->nden_min ? omin_find(s, us->den_min[i]) : NULL;
    for (uint32_t j = 0; next && j < next->nden; j++)
        if (next->den[j] == pred) {
            next->den[j] = m;
            break;
        }
    GROW(us->den_min, us->nden_min, us->cap_den_min);
    memmove(us->den_min + i + 1, us->den_min + i, (us->nden_min - i) * sizeof(us->den_min[0]));
    us->den_min[i] = m;
    us->nden_min++;
}

void agg_rollup_counted(struct agg_rollup *r, const Licmon__V1__Counted *c)
{
    if (!c || !valid_name(c->org) || !valid_name(c->user))
        return;
    int what = c->what;
    if (what != LICMON__V1__COUNTED__WHAT__LOGIN && what != LICMON__V1__COUNTED__WHAT__DENIAL &&
        what != LICMON__V1__COUNTED__WHAT__DOWNGRADE)
        return;
    struct agg_roll_org *o = agg_roll_org_get(r, c->org, true);
    int64_t t = change_time(o, c->at_ms);
    struct agg_roll_user *u = agg_roll_user_get(o, c->user, true);
    struct agg_roll_series *s = type_series(o, c->license_type);
    struct agg_roll_series *both[2] = {o->all, s};
    for (int i = 0; i < 2; i++) {
        if (!both[i])
            continue;
        struct agg_roll_omin *om = omin_get(both[i], floor_min(t));
        struct agg_roll_useries *us = agg_roll_useries_get(u, both[i]);
        if (what == LICMON__V1__COUNTED__WHAT__LOGIN) {
            om->logins++;
        } else if (what == LICMON__V1__COUNTED__WHAT__DENIAL) {
            om->denials++;
            den_link(both[i], us, floor_min(t));
            if (t > us->last_den)
                us->last_den = t;
        } else {
            om->downgrades++;
            int64_t prev =
                us->last_dng == AGG_ROLL_NEVER_MS ? AGG_ROLL_NEVER_MIN : floor_min(us->last_dng);
            push_i64(&om->dng, &om->ndng, &om->cap_dng, prev);
            us->last_dng = t;
        }
    }
    if (what != LICMON__V1__COUNTED__WHAT__LOGIN)
        user_touch(o, u);
    note_time(o, c->at_ms);
}

void agg_rollup_advance(struct agg_rollup *r, const char *org, int64_t watermark_ms)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    if (o)
        seal_org(o, floor_min(clamp_time(watermark_ms)));
}

void agg_rollup_set_lag(struct agg_rollup *r, const char *org, int64_t lag_ms)
{
    if (!valid_name(org))
        return;
    struct agg_roll_org *o = agg_roll_org_get(r, org, true);
    if (lag_ms < 0)
        lag_ms = 0;
    if (lag_ms != o->lag_ms) {
        o->lag_ms = lag_ms;
        o->dirty = true;
    }
}

/* ------------------------------------------------- reading rows back */

/* Minute rows of [from, to) in order: the store's merged with those in
 * memory (sealed only). */
typedef void (*mrow_fn)(void *arg, const struct agg_roll_mrow *r);

struct each_min {
    struct agg_roll_series *s;
    size_t mi; /* next memory row */
    int64_t to;
    mrow_fn fn;
    void *arg;
    bool bad;
};

static void each_min_mem_until(struct each_min *c, int64_t below)
{
    struct agg_roll_series *s = c->s;
    while (c->mi < s->nmins && s->mins[c->mi].minute < below && s->mins[c->mi].minute < c->to)
        c->fn(c->arg, &s->mins[c->mi++]);
}

static int each_min_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct each_min *c = arg;
    if (klen < 8)
        return 0;
    int64_t m = keys_get_i64((const uint8_t *)key + klen - 8);
    each_min_mem_until(c, m);
    if (c->mi < c->s->nmins && c->s->mins[c->mi].minute == m)
        return 0; /* the copy in memory is the same or newer */
    struct agg_roll_mrow row;
    if (agg_roll_dec_mrow(&row, m, val, vlen) != 0) {
        c->bad = true;
        return 1;
    }
    c->fn(c->arg, &row);
    agg_roll_mrow_free(&row);
    return 0;
}

static int each_minute(struct agg_roll_series *s, int64_t from, int64_t to, mrow_fn fn, void *arg)
{
    struct each_min c = {.s = s, .to = to, .fn = fn, .arg = arg};
    size_t lo = 0, hi = s->nmins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->mins[mid].minute < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    c.mi = lo;
    uint8_t fk[AGG_ROLL_KEY_MAX], tk[AGG_ROLL_KEY_MAX];
    size_t fl = agg_roll_key(fk, 'm', s->org->name, s->type, true, from);
    size_t tl = agg_roll_key(tk, 'm', s->org->name, s->type, true, to);
    int rc = store_scan(s->org->ru, fk, fl, tk, tl, each_min_visit, &c);
    each_min_mem_until(&c, INT64_MAX);
    return rc != 0 || c.bad ? -1 : 0;
}

/* Hour rows with from <= key < to, merged the same way, copied into out
 * (without day lists). */
struct each_hour {
    struct agg_roll_series *s;
    size_t hi;
    int64_t to;
    struct agg_roll_bvec *out;
    bool bad;
};

static void hour_copy_out(struct agg_roll_bvec *out, const struct agg_roll_brow *b)
{
    GROW(out->v, out->n, out->cap);
    out->v[out->n] = *b;
    out->v[out->n].den_prev = out->v[out->n].dng_prev = NULL;
    out->n++;
}

static void each_hour_mem_until(struct each_hour *c, int64_t below)
{
    struct agg_roll_bvec *h = &c->s->hours;
    while (c->hi < h->n && h->v[c->hi].key < below && h->v[c->hi].key < c->to)
        hour_copy_out(c->out, &h->v[c->hi++]);
}

static int each_hour_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct each_hour *c = arg;
    if (klen < 8)
        return 0;
    int64_t k = keys_get_i64((const uint8_t *)key + klen - 8);
    each_hour_mem_until(c, k);
    if (c->hi < c->s->hours.n && c->s->hours.v[c->hi].key == k)
        return 0;
    struct agg_roll_brow b;
    if (agg_roll_dec_brow(&b, k, false, val, vlen) != 0) {
        c->bad = true;
        return 1;
    }
    hour_copy_out(c->out, &b);
    agg_roll_brow_free(&b);
    return 0;
}

static int hours_between(struct agg_roll_series *s, int64_t from, int64_t to,
                         struct agg_roll_bvec *out)
{
    bool found;
    struct each_hour c = {.s = s, .to = to, .out = out};
    c.hi = agg_roll_bvec_find(&s->hours, from, &found);
    int rc = 0;
    if (s->hours_reset == 0) {
        uint8_t fk[AGG_ROLL_KEY_MAX], tk[AGG_ROLL_KEY_MAX];
        size_t fl = agg_roll_key(fk, 'h', s->org->name, s->type, true, from);
        size_t tl = agg_roll_key(tk, 'h', s->org->name, s->type, true, to);
        rc = store_scan(s->org->ru, fk, fl, tk, tl, each_hour_visit, &c);
    }
    each_hour_mem_until(&c, INT64_MAX);
    return rc != 0 || c.bad ? -1 : 0;
}

static void take_last(void *arg, const struct agg_roll_mrow *r)
{
    *(int64_t *)arg = r->end;
}

/* in_use before the oldest day row kept: its own carry-in, or with no day
 * row left the sealed in_use (nothing sealed changed it since). The rows
 * before it may be gone (the day retention's compaction), not the seats
 * held through them. */
static int64_t carry_into_days(const struct agg_roll_series *s)
{
    return s->days.n ? s->days.v[0].before : s->in_use_sealed;
}

/* in_use just before minute k (the seats that carry into k). */
static int carry_before(struct agg_roll_series *s, int64_t k, int64_t *out)
{
    struct agg_roll_org *o = s->org;
    if (k >= o->open_from) {
        int64_t cur = s->in_use_sealed;
        if (s->nopen && s->open[0].minute < k) {
            struct agg_roll_mrow *v = open_rows(s);
            for (size_t i = 0; i < s->nopen && v[i].minute < k; i++)
                cur = v[i].end;
            free(v);
        }
        *out = cur;
        return 0;
    }
    struct agg_roll_tz *tz = o->tz;
    int64_t hs = agg_roll_tz_hour_start(tz, k);
    int64_t last = INT64_MIN;
    if (hs < k && each_minute(s, hs, k, take_last, &last) != 0)
        return -1;
    if (last != INT64_MIN) {
        *out = last;
        return 0;
    }
    int64_t date = agg_roll_tz_date(tz, k);
    int64_t ds = agg_roll_tz_date_start(tz, date);
    struct agg_roll_bvec hv = {0};
    if (hours_between(s, ds, hs + 1, &hv) != 0) {
        free(hv.v);
        return -1;
    }
    if (hv.n) {
        const struct agg_roll_brow *b = &hv.v[hv.n - 1];
        *out = b->key == hs ? b->before : b->end;
        free(hv.v);
        return 0;
    }
    free(hv.v);
    bool found;
    size_t at = agg_roll_bvec_find(&s->days, date, &found);
    if (found)
        *out = s->days.v[at].before;
    else
        *out = at ? s->days.v[at - 1].end : carry_into_days(s);
    return 0;
}

/* ------------------------------------------------------------ queries */

static void row_label(struct agg_roll_tz *tz, struct agg_rollup_row *out, int64_t start,
                      int64_t end)
{
    int32_t off = agg_roll_tz_offset(tz, start);
    out->start_ms = start * MIN_MS;
    out->date = fdiv(start + off, 1440);
    out->utc_offset_s = off * 60;
    out->minutes = (int32_t)(end - start);
}

static void row_quiet(struct agg_rollup_row *out, int64_t carry)
{
    out->peak = out->in_use_end = out->users = carry;
    out->peak_at_ms = out->start_ms;
    out->logins = out->logouts = out->user_timeouts = out->license_timeouts = 0;
    out->denials = out->denied_users = out->downgrades = out->downgraded_users = 0;
}

static void row_from_brow(struct agg_rollup_row *out, const struct agg_roll_brow *b)
{
    out->peak = b->peak;
    out->peak_at_ms = b->peak_at * MIN_MS;
    out->in_use_end = b->end;
    out->users = (int64_t)b->start_in_use + b->users_new;
    out->logins = b->logins;
    out->logouts = b->logouts;
    out->user_timeouts = b->uto;
    out->license_timeouts = b->lto;
    out->denials = b->denials;
    out->denied_users = b->den_new;
    out->downgrades = b->downgrades;
    out->downgraded_users = b->dng_new;
}

static void row_from_mrow(struct agg_rollup_row *out, const struct agg_roll_mrow *r)
{
    int64_t m = r->minute, users = r->start, den = 0, dng = 0;
    for (uint32_t i = 0; i < r->nacq; i++)
        users += acq_new(r->acq[i], m, m);
    for (uint32_t i = 0; i < r->nden; i++)
        den += r->den[i] < m;
    for (uint32_t i = 0; i < r->ndng; i++)
        dng += r->dng[i] < m;
    out->peak = r->peak;
    out->peak_at_ms = m * MIN_MS;
    out->in_use_end = r->end;
    out->users = users;
    out->logins = r->logins;
    out->logouts = r->logouts;
    out->user_timeouts = r->uto;
    out->license_timeouts = r->lto;
    out->denials = r->denials;
    out->denied_users = den;
    out->downgrades = r->downgrades;
    out->downgraded_users = dng;
}

/* the org and series a query names; *tz is a zone to label rows with */
static struct agg_roll_series *query_series(struct agg_rollup *r, const char *org, const char *type,
                                            struct agg_roll_tz **tz, struct agg_roll_tz **tmp)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    *tmp = NULL;
    if (!o) {
        *tz = *tmp = agg_roll_tz_new("UTC");
        return NULL;
    }
    *tz = o->tz;
    return type ? agg_roll_series_get(o, type, false) : NULL;
}

struct min_fill {
    struct agg_rollup_row *out;
    bool *have;
    int64_t from;
};

static void min_fill_fn(void *arg, const struct agg_roll_mrow *r)
{
    struct min_fill *f = arg;
    row_from_mrow(&f->out[r->minute - f->from], r);
    f->have[r->minute - f->from] = true;
}

int agg_rollup_minutes(struct agg_rollup *r, const char *org, const char *type, int64_t from_ms,
                       int64_t to_ms, struct agg_rollup_row *out, size_t cap)
{
    int64_t from = floor_min(clamp_time(from_ms)), to = ceil_min(clamp_time(to_ms));
    if (to < from || to - from > AGG_ROLLUP_MAX_MINUTES || (size_t)(to - from) > cap)
        return -1;
    size_t n = (size_t)(to - from);
    struct agg_roll_tz *tz, *tmp;
    struct agg_roll_series *s = query_series(r, org, type, &tz, &tmp);
    bool *have = xcalloc(n ? n : 1, sizeof(bool));
    int64_t carry = 0;
    int rc = 0;
    if (s) {
        struct min_fill f = {out, have, from};
        rc = carry_before(s, from, &carry);
        if (rc == 0)
            rc = each_minute(s, from, to, min_fill_fn, &f);
        if (rc == 0 && s->nopen) {
            struct agg_roll_mrow *v = open_rows(s);
            for (size_t i = 0; i < s->nopen; i++)
                if (v[i].minute >= from && v[i].minute < to)
                    min_fill_fn(&f, &v[i]);
            free(v);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct agg_rollup_row row = out[i];
        row_label(tz, &row, from + (int64_t)i, from + (int64_t)i + 1);
        if (have[i])
            carry = row.in_use_end;
        else
            row_quiet(&row, carry);
        out[i] = row;
    }
    free(have);
    agg_roll_tz_free(&tmp);
    return rc == 0 ? (int)n : -1;
}

/* Folds the open minutes with from <= minute < to into hours / days. */
static void overlay_open(struct agg_roll_series *s, int64_t from, int64_t to,
                         struct agg_roll_bvec *hours, struct agg_roll_bvec *days)
{
    if (!s->nopen)
        return;
    struct agg_roll_mrow *v = open_rows(s);
    struct agg_roll_folder f = {0};
    for (size_t i = 0; i < s->nopen; i++)
        if (v[i].minute >= from && v[i].minute < to)
            fold_into(s->org->tz, &f, hours, days, &v[i], false);
    free(v);
}

int agg_rollup_hours(struct agg_rollup *r, const char *org, const char *type, int64_t date,
                     struct agg_rollup_row *out, size_t cap)
{
    struct agg_roll_tz *tz, *tmp;
    struct agg_roll_series *s = query_series(r, org, type, &tz, &tmp);
    int64_t ds = agg_roll_tz_date_start(tz, date), de = agg_roll_tz_date_start(tz, date + 1);
    int64_t starts[AGG_ROLLUP_MAX_HOURS + 1];
    size_t n = 0;
    for (int64_t x = ds; x < de; x = agg_roll_tz_next_hour(tz, x)) {
        if (n == AGG_ROLLUP_MAX_HOURS) {
            agg_roll_tz_free(&tmp);
            return -1;
        }
        starts[n++] = x;
    }
    starts[n] = de;
    if (n > cap) {
        agg_roll_tz_free(&tmp);
        return -1;
    }
    struct agg_roll_bvec hv = {0};
    int64_t carry = 0;
    int rc = 0;
    if (s) {
        rc = hours_between(s, ds, de, &hv);
        if (rc == 0)
            overlay_open(s, ds, de, &hv, NULL);
        if (rc == 0)
            rc = carry_before(s, ds, &carry);
    }
    size_t hi = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        row_label(tz, &out[i], starts[i], starts[i + 1]);
        while (hi < hv.n && hv.v[hi].key < starts[i])
            hi++;
        if (hi < hv.n && hv.v[hi].key == starts[i]) {
            row_from_brow(&out[i], &hv.v[hi]);
            carry = hv.v[hi].end;
        } else {
            row_quiet(&out[i], carry);
        }
    }
    free(hv.v);
    agg_roll_tz_free(&tmp);
    return rc == 0 ? (int)n : -1;
}

int agg_rollup_days(struct agg_rollup *r, const char *org, const char *type, int64_t from_date,
                    int64_t to_date, struct agg_rollup_row *out, size_t cap)
{
    if (to_date < from_date || to_date - from_date >= 100000 ||
        (size_t)(to_date - from_date + 1) > cap)
        return -1;
    size_t n = (size_t)(to_date - from_date + 1);
    struct agg_roll_tz *tz, *tmp;
    struct agg_roll_series *s = query_series(r, org, type, &tz, &tmp);
    struct agg_roll_bvec dv = {0};
    int64_t carry = 0;
    if (s) {
        bool found;
        size_t a = agg_roll_bvec_find(&s->days, from_date, &found);
        carry = a ? s->days.v[a - 1].end : carry_into_days(s);
        for (size_t i = a; i < s->days.n && s->days.v[i].key <= to_date; i++)
            hour_copy_out(&dv, &s->days.v[i]);
        if (s->nopen) {
            int64_t ds = agg_roll_tz_date_start(tz, from_date);
            int64_t de = agg_roll_tz_date_start(tz, to_date + 1);
            struct agg_roll_mrow *v = open_rows(s);
            for (size_t i = 0; i < s->nopen && v[i].minute < ds; i++)
                carry = v[i].end;
            free(v);
            overlay_open(s, ds, de, NULL, &dv);
        }
    }
    size_t di = 0;
    int64_t start = agg_roll_tz_date_start(tz, from_date);
    for (size_t i = 0; i < n; i++) {
        int64_t d = from_date + (int64_t)i, next = agg_roll_tz_date_start(tz, d + 1);
        row_label(tz, &out[i], start, next);
        out[i].date = d;
        while (di < dv.n && dv.v[di].key < d)
            di++;
        if (di < dv.n && dv.v[di].key == d) {
            row_from_brow(&out[i], &dv.v[di]);
            carry = dv.v[di].end;
        } else {
            row_quiet(&out[i], carry);
        }
        start = next;
    }
    free(dv.v);
    agg_roll_tz_free(&tmp);
    return (int)n;
}

int agg_rollup_period_users(struct agg_rollup *r, const char *org, const char *type,
                            int64_t from_date, int64_t to_date, int64_t *denied_users,
                            int64_t *downgraded_users)
{
    *denied_users = *downgraded_users = 0;
    struct agg_roll_tz *tz, *tmp;
    struct agg_roll_series *s = query_series(r, org, type, &tz, &tmp);
    agg_roll_tz_free(&tmp);
    if (!s || to_date < from_date)
        return 0;
    int64_t k = agg_roll_tz_date_start(tz, from_date),
            end = agg_roll_tz_date_start(tz, to_date + 1);
    bool found;
    int64_t den = 0, dng = 0;
    for (size_t i = agg_roll_bvec_find(&s->days, from_date, &found);
         i < s->days.n && s->days.v[i].key <= to_date; i++) {
        const struct agg_roll_brow *b = &s->days.v[i];
        for (uint32_t j = 0; j < b->den_new; j++)
            den += b->den_prev[j] < k;
        for (uint32_t j = 0; j < b->dng_new; j++)
            dng += b->dng_prev[j] < k;
    }
    for (size_t i = 0; i < s->nopen; i++) {
        const struct agg_roll_omin *om = &s->open[i];
        if (om->minute < k || om->minute >= end)
            continue;
        for (uint32_t j = 0; j < om->nden; j++)
            den += om->den[j] < k;
        for (uint32_t j = 0; j < om->ndng; j++)
            dng += om->dng[j] < k;
    }
    *denied_users = den;
    *downgraded_users = dng;
    return 0;
}

int64_t agg_rollup_in_use(struct agg_rollup *r, const char *org, const char *type)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    struct agg_roll_series *s = o && type ? agg_roll_series_get(o, type, false) : NULL;
    return s ? s->in_use_now : 0;
}

int64_t agg_rollup_local_date(struct agg_rollup *r, const char *org, int64_t ms)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    int64_t m = floor_min(clamp_time(ms));
    return o ? agg_roll_tz_date(o->tz, m) : fdiv(m, 1440);
}

int64_t agg_rollup_date_start_ms(struct agg_rollup *r, const char *org, int64_t date)
{
    struct agg_roll_tz *tz, *tmp;
    query_series(r, org, NULL, &tz, &tmp);
    int64_t m = agg_roll_tz_date_start(tz, date);
    agg_roll_tz_free(&tmp);
    return m * MIN_MS;
}

int agg_rollup_hour_bounds(struct agg_rollup *r, const char *org, int64_t date, int hour,
                           int64_t *from_ms, int64_t *to_ms)
{
    int want = hour % 100, instance = hour / 100;
    if (hour < 0 || want > 23 || instance > 1)
        return -1;
    struct agg_roll_tz *tz, *tmp;
    query_series(r, org, NULL, &tz, &tmp);
    int64_t ds = agg_roll_tz_date_start(tz, date), de = agg_roll_tz_date_start(tz, date + 1);
    int seen = 0, rc = -1;
    for (int64_t x = ds; x < de;) {
        int64_t next = agg_roll_tz_next_hour(tz, x);
        int64_t local = x + agg_roll_tz_offset(tz, x);
        if (fdiv(local - fdiv(local, 1440) * 1440, 60) == want && seen++ == instance) {
            *from_ms = x * MIN_MS;
            *to_ms = (next < de ? next : de) * MIN_MS;
            rc = 0;
            break;
        }
        x = next;
    }
    agg_roll_tz_free(&tmp);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t agg_rollup_types(struct agg_rollup *r, const char *org, const char ***types)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    size_t n = 0;
    *types = xcalloc(o ? o->nseries + 1 : 1, sizeof(**types));
    for (size_t i = 0; o && i < o->nseries; i++)
        if (o->series[i] != o->all)
            (*types)[n++] = o->series[i]->type;
    qsort(*types, n, sizeof(**types), name_cmp);
    return n;
}

size_t agg_rollup_orgs(const struct agg_rollup *r, const char ***orgs)
{
    *orgs = xcalloc(r->norgs + 1, sizeof(**orgs));
    for (size_t i = 0; i < r->norgs; i++)
        (*orgs)[i] = r->org_list[i]->name;
    return r->norgs;
}

const char *agg_rollup_zone(struct agg_rollup *r, const char *org)
{
    struct agg_roll_org *o = org ? agg_roll_org_get(r, org, false) : NULL;
    return o ? agg_roll_tz_name(o->tz) : "UTC";
}

bool agg_rollup_store_failed(const struct agg_rollup *r)
{
    return r->store_failed;
}

void agg_rollup_stats(const struct agg_rollup *r, struct agg_rollup_stats *out)
{
    *out = r->st;
    out->open_minutes = out->resident_rows = 0;
    for (size_t i = 0; i < r->norgs; i++) {
        const struct agg_roll_org *o = r->org_list[i];
        for (size_t j = 0; j < o->nseries; j++) {
            const struct agg_roll_series *s = o->series[j];
            out->open_minutes += s->nopen;
            out->resident_rows += s->nmins + s->hours.n + s->days.n;
        }
    }
}

/* --------------------------------------------------------- zone change */

struct rebuild {
    struct agg_roll_tz *tz;
    struct agg_roll_folder f;
    struct agg_roll_bvec hours, days;
    int64_t first;
};

static void rebuild_fn(void *arg, const struct agg_roll_mrow *r)
{
    struct rebuild *b = arg;
    if (b->first == INT64_MIN)
        b->first = r->minute;
    fold_into(b->tz, &b->f, &b->hours, &b->days, r, true);
}

/* Re-derives the hour and day rows of s from its minute rows in the zone in
 * force. Day rows that ended (in the old zone) before the first minute kept
 * stay as they were: retention dropped their minutes. */
static void series_rebuild(struct agg_roll_series *s, struct agg_roll_tz *old_tz)
{
    struct agg_roll_org *o = s->org;
    struct rebuild b = {.tz = o->tz, .first = INT64_MIN};
    if (each_minute(s, AGG_ROLL_NEVER_MIN, o->open_from, rebuild_fn, &b) != 0) {
        /* a storage error: the rows stay in the old zone, never saved so */
        o->ru->store_failed = true;
        log_warn_ctx("org", o->name,
                     "rollup: cannot read minute rows of %s to re-derive hours and days for "
                     "zone %s",
                     s->type, agg_roll_tz_name(o->tz));
        bvec_free(&b.hours);
        bvec_free(&b.days);
        return;
    }
    for (size_t i = 0; i < b.hours.n; i++)
        b.hours.v[i].state = AGG_ROLL_DIRTY;
    bvec_free(&s->hours);
    s->hours = b.hours;
    s->hours_reset = 1;
    s->hours_hi = INT64_MIN; /* the store's rows go with the next save */
    memset(&s->fold, 0, sizeof(s->fold));
    if (b.first != INT64_MIN) {
        int64_t d0 = agg_roll_tz_date(o->tz, b.first);
        size_t keep = 0;
        while (keep < s->days.n && s->days.v[keep].key < d0 &&
               agg_roll_tz_date_start(old_tz, s->days.v[keep].key + 1) <= b.first)
            keep++;
        int64_t reset_from =
            keep < s->days.n && s->days.v[keep].key < d0 ? s->days.v[keep].key : d0;
        for (size_t i = keep; i < s->days.n; i++)
            agg_roll_brow_free(&s->days.v[i]);
        s->days.n = keep;
        for (size_t i = 0; i < b.days.n; i++) {
            GROW(s->days.v, s->days.n, s->days.cap);
            s->days.v[s->days.n] = b.days.v[i];
            s->days.v[s->days.n++].state = AGG_ROLL_DIRTY;
        }
        free(b.days.v);
        if (keep < s->days_dirty_from)
            s->days_dirty_from = keep;
        if (!s->days_reset || reset_from < s->days_reset_from)
            s->days_reset_from = reset_from;
        s->days_reset = true;
    } else {
        bvec_free(&b.days);
    }
    s->touched = true;
}

void agg_rollup_set_zone(struct agg_rollup *r, const char *org, const char *tz)
{
    if (!valid_name(org))
        return;
    if (!tz || !*tz)
        tz = "UTC";
    struct agg_roll_org *o = agg_roll_org_get(r, org, true);
    if (!strcmp(agg_roll_tz_name(o->tz), tz))
        return;
    struct agg_roll_tz *old = o->tz;
    o->tz = agg_roll_tz_new(tz);
    o->dirty = true;
    for (size_t i = 0; i < o->nseries; i++)
        series_rebuild(o->series[i], old);
    agg_roll_tz_free(&old);
}

void agg_rollup_settings(struct agg_rollup *r, const Licmon__V1__OrgSettings *s)
{
    if (!s || !valid_name(s->org))
        return;
    int64_t late = s->allowed_lateness_s > 0 ? s->allowed_lateness_s : 5;
    agg_rollup_set_lag(r, s->org, late * 1000 + 60000);
    agg_rollup_set_zone(r, s->org, s->timezone);
}

void agg_rollup_change(struct agg_rollup *r, const Licmon__V1__Change *c)
{
    if (!c)
        return;
    switch (c->body_case) {
    case LICMON__V1__CHANGE__BODY_HOLD:
        agg_rollup_hold(r, c->hold);
        break;
    case LICMON__V1__CHANGE__BODY_SESSION:
        agg_rollup_session(r, c->session);
        break;
    case LICMON__V1__CHANGE__BODY_COUNTED:
        agg_rollup_counted(r, c->counted);
        break;
    case LICMON__V1__CHANGE__BODY_SETTINGS:
        agg_rollup_settings(r, c->settings);
        break;
    default: /* ticks: the watermark follows the changes' own times */
        break;
    }
}

/* ---------------------------------------------------------------- gc */

static void gc_org(struct agg_rollup *r, struct agg_roll_org *o, int64_t cutoff_ms)
{
    for (size_t j = 0; j < o->users.cap;) {
        struct agg_roll_user *u = o->users.e[j].v;
        if (!o->users.e[j].k || u->holds || u->all.holding || u->dirty) {
            j++;
            continue;
        }
        int64_t last = u->last_end;
        for (uint32_t k = 0; k <= u->nser; k++) {
            const struct agg_roll_useries *us = k < u->nser ? &u->ser[k] : &u->all;
            int64_t t = us->last_rel > us->last_den ? us->last_rel : us->last_den;
            t = t > us->last_dng ? t : us->last_dng;
            last = t > last ? t : last;
        }
        if (last >= cutoff_ms) {
            j++;
            continue;
        }
        GROW(o->gone_users, o->ngone, o->cap_gone);
        o->gone_users[o->ngone++] = xstrdup(u->name);
        agg_roll_map_del(&o->users, u->name); /* may shift another entry into j */
        user_free(u);
        r->st.users--;
    }
}

void agg_rollup_gc(struct agg_rollup *r, int64_t cutoff_ms)
{
    for (size_t i = 0; i < r->norgs; i++)
        gc_org(r, r->org_list[i], cutoff_ms);
}

void agg_rollup_gc_behind(struct agg_rollup *r, agg_rollup_keep_fn keep_ms, void *arg)
{
    for (size_t i = 0; i < r->norgs; i++) {
        struct agg_roll_org *o = r->org_list[i];
        if (o->max_seen == AGG_ROLL_NEVER_MS)
            continue;
        int64_t keep = keep_ms(arg, o->name);
        if (keep < 8 * 1440 * MIN_MS)
            keep = 8 * 1440 * MIN_MS;
        gc_org(r, o, o->max_seen - keep);
    }
}
