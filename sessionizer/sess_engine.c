/* sess_engine: the session state machine of SPEC.md section 3 (see
 * sess_engine.h). Per (org, user) one compact record holds the user session
 * and the license hold; per org a clock and a min-heap of the users' next
 * timer. Pure: the only inputs are the journal's records, the only outputs
 * the emit and put callbacks.
 *
 * Decisions the contract leaves to us:
 *
 * Clock and lateness. Each org has a clock: the highest event time seen,
 * max_ts, carried forward by wall time while the org is quiet. Wall time is
 * a tick's wall_ms or the arrival_ms of any later record of the org (all
 * readings of ingest's clock, so the clock is a function of the journal).
 * How it is carried forward depends on whether the org is live: its highest
 * event arrived (max_arr) at most SESS_LIVE_LAG_MS, or allowed_lateness when
 * that is longer, after its own time.
 *  - live: clock = max_ts + (wall - max_arr), so a live stream's timeouts
 *    fire without further events, within a tick of the horizon passing them;
 *  - backfill (the events are older than that): the clock is max_ts alone,
 *    so a backfill gives the numbers of the same events sent live however
 *    its sender pauses (an ingest restart, a slow network) — until the org
 *    has been quiet for SESS_BACKFILL_IDLE_MS; from then on the clock runs
 *    on from max_ts with the wall clock, so the timeouts of a backfill that
 *    ended do fire. (A backfill paused longer than that has its clock run
 *    ahead of it and its next events count late: the one case where a
 *    pause changes numbers, as in any event-time system's idle timeout.)
 * An event is taken at its own time only up to a little after its arrival
 * (SESS_AHEAD_MS, or half the allowed_lateness when that is less: clocks on
 * NTP differ by ms) or the org's clock, whichever is later: one stamped
 * further ahead cannot have happened yet (its producer's clock or time zone
 * is wrong) and is applied at that bound, counted in ahead_events. So no
 * event moves max_ts, and the clock, more than the allowance past ingest's
 * clock: whatever another producer's clock says, the events of one whose
 * clock is right are late only when they arrive later than allowed_lateness
 * less the allowance, its users' timers fire at most the allowance before
 * they are due by ingest's clock, and the changes sent on (whose times are
 * the aggregator's watermark) never run ahead of it either. An event not
 * after the org's clock cannot move it, so it keeps its time however stale
 * ingest's clock (a restart while the host's clock is behind). The wrong
 * producer's events keep their order (ties in arrival order).
 * Timers of the org fire once they are due at or before the horizon =
 * clock - allowed_lateness. An event whose ts is before the horizon at its
 * arrival is counted LATE_EVENT (this is "more than allowed_lateness behind
 * the highest event time seen", with that time carried forward as above)
 * and still applied. An event that is not late and in order for its user is
 * applied exactly: no timer of its user due after its ts can have fired.
 *
 * Ordering. An event in order for its user (ts >= the user's state time, the
 * instant up to which that user's history is final) is applied immediately,
 * unless a timer of its user is due at or before ts but after the horizon:
 * an older event of the user may still arrive in time and move that timer
 * (two clients of one user racing at its timeout). Such an event is held
 * back, with any later event of the user, until the horizon passes the
 * timer; held events apply in time order (ties in arrival order), an event
 * arriving before them goes first, and a timer fires before a held event
 * only once it is final. So only events right behind their user's timeout
 * wait (and, while one does, the later events of that user), at most
 * allowed_lateness of the org's clock (a backfill's clock moves with its
 * events); when one more event of a user would wait than SESS_MAX_HELD,
 * those waiting apply at once in time order, each after the timers due
 * before it (the rule before holding existed), which bounds the memory and
 * the saved record. So per user the changes' instants never go back; across
 * users of an org they are in order within allowed_lateness (events apply at
 * once, timers at the horizon). Timers due at the same instant fire in
 * user-id byte order, so the output does not depend on heap layout (and so
 * not on save/load). Costs: an event O(log n), a due timer O(log n), a tick
 * O(orgs), a settings change O(users of the org) (every due is recomputed).
 *
 * Events behind their user (ts < state time: reordered within the lateness,
 * or late) cannot be exact, as what was emitted cannot be taken back. Rules,
 * chosen so that a race never opens a phantom session or seat:
 *  - denied: counted at ts, always; it never touches the user's state.
 *  - activity inside the open session (ts >= its start): last_activity =
 *    max(last_activity, ts) (exact); a hold released by L is re-acquired at
 *    the state time unless it would already have timed out again.
 *  - any event before the latest session's boundary (the start of the open
 *    session, or the end of the ended one) is absorbed: it changes nothing,
 *    except that an activity inside the ended session raises its
 *    last_activity. Login and logout racing each other lose the short
 *    session; a logout racing a relogin leaves the end reason RELOGIN.
 *  - anything else is applied as if at the state time.
 *
 * Settings. A settings change takes effect at the org's horizon when it is
 * journaled: timers due up to it fire under the old settings, then every
 * timer is recomputed under the new ones and none is put before that
 * instant (lowering U ends the sessions idle for longer at the change).
 * When U and L expire at the same instant, the session ends first; with
 * inactivity_logout_releases_license the hold then goes with reason
 * USER_INACTIVITY.
 *
 * Session ids: "<fnv1a64(org NUL user) in hex>-<start_ms>-<n>", n counting
 * the user's sessions that started at that same instant (1 but for a
 * relogin at the very instant of a login), so an id never depends on when
 * the user's record was forgotten. A record whose session
 * and hold are over is deleted (and its key with it) once the horizon is an
 * hour past its last instant: so every later session that is not over an
 * hour late starts after the previous one and ids stay unique, and events
 * up to an hour late still meet the record (a later one starts from
 * nothing and may overlap what was emitted). Ids are a function of the
 * journal, so replays give the same.
 *
 * Saved state: 'S' 'O' org -> org record; 'S' 'U' org NUL user -> user
 * record; both fixed little-endian layouts with a version byte (sess_codec),
 * checked field by field and for length on load. A user record holding
 * events back is version 2: version 1's fields, then the held events.
 */
#include "sess_engine.h"
#include "hash.h"
#include "keys.h"
#include "log.h"
#include "sess_codec.h"
#include "settings.h"
#include "xmem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESS_TIME_MAX ((int64_t)1 << 52) /* about 142,000 years of ms */
#define SESS_MAX_DUR_MS ((int64_t)366 * 86400 * 1000)
#define SESS_MIN_TIMEOUT_MS 1000
#define SESS_UPDATE_MS 60000               /* re-emit an open session after this much activity */
#define SESS_FORGET_MS (60 * 60000)        /* keep a finished record this long for late events */
#define SESS_LIVE_LAG_MS 60000             /* an org whose events arrive this fresh is live */
#define SESS_BACKFILL_IDLE_MS (10 * 60000) /* a backfill this quiet has ended */
#define SESS_AHEAD_MS 1000 /* the most an event is taken after its arrival (see "Clock") */
#define SESS_MAX_USER 256
#define SESS_MAX_TYPE 32
#define SESS_NO_IDX UINT32_MAX
#define SESS_STATE_VERSION 1      /* a user record holding no event back */
#define SESS_STATE_VERSION_HELD 2 /* one with the events it holds back */
#define SESS_MAX_HELD 32          /* one more: those held apply at once (see "Ordering") */

enum { SS_NONE, SS_OPEN, SS_ENDED };
enum { UF_DIRTY = 1, UF_SAVED = 2, UF_GONE = 4 };

/* An event held back until its user's timer before it is final. */
struct sess_held {
    int64_t ts;
    uint32_t type, req; /* interned, as the event carried them */
    uint8_t kind;
};

/* One (org, user). The session fields describe the open session, or the
 * last ended one while its seat lingers (and until the record is deleted). */
struct sess_user {
    struct sess_user *next; /* hash chain */
    struct sess_org *org;
    int64_t la;             /* last_activity */
    int64_t start, end;     /* end only when SS_ENDED */
    int64_t utime;          /* the user's history is final up to here */
    int64_t emitted_la;     /* la when the open session was last emitted */
    int64_t seg_start;      /* start of the held stretch inside the session */
    int64_t held_ms;        /* held time of [start, end) in closed stretches */
    int64_t rel_ms;         /* last release of the session's seat, 0 while held */
    struct sess_held *held; /* in time order (ties in arrival order) */
    uint32_t heap_idx, nsess;
    uint32_t type, req; /* interned; the hold, when any, is of `type` */
    uint8_t sess, hold, end_reason, flags, nheld;
    uint16_t ulen;
    char user[];
};

struct heap_ent {
    int64_t due;
    struct sess_user *u;
};

struct sess_org {
    char *name;
    int64_t user_ms, lic_ms, late_ms;
    int releases, has_settings, has_events, loaded, dirty;
    int64_t eff_at; /* no timer is due before the last settings change */
    int64_t clock, max_ts, max_arr;
    struct sess_user **buckets;
    size_t nbuckets, nusers;
    struct heap_ent *heap;
    size_t hlen, hcap;
};

struct sess_engine {
    sess_emit_fn emit;
    void *arg;
    struct sess_org **orgs; /* sorted by name */
    size_t norgs, corgs;
    char **types; /* interned license types; 0 is "" */
    size_t ntypes, ctypes;
    uint32_t *type_slots; /* open addressing: a type index, 0 empty ("" is never looked up) */
    size_t nslots;
    struct sess_user **dirty;
    size_t ndirty, cdirty;
    struct sess_user **scratch;
    size_t cscratch;
    int64_t def_user_ms, def_lic_ms, def_late_ms;
    int def_releases;
    struct sess_engine_stats st;
};

static int64_t imax(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t imin(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t clamp_time(int64_t t)
{
    return t > SESS_TIME_MAX ? SESS_TIME_MAX : t < -SESS_TIME_MAX ? -SESS_TIME_MAX : t;
}

static int time_ok(int64_t t)
{
    return t >= -SESS_TIME_MAX && t <= SESS_TIME_MAX;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- interned license types ---- */

static uint32_t type_intern(struct sess_engine *e, const char *s)
{
    if (!*s)
        return 0;
    if ((e->ntypes + 1) * 2 > e->nslots) {
        size_t n = e->nslots ? e->nslots * 2 : 64;
        uint32_t *slots = xcalloc(n, sizeof(*slots));
        for (size_t i = 1; i < e->ntypes; i++) {
            size_t j = hash_fnv1a(HASH_FNV_SEED, e->types[i], strlen(e->types[i])) & (n - 1);
            while (slots[j])
                j = (j + 1) & (n - 1);
            slots[j] = (uint32_t)i;
        }
        free(e->type_slots);
        e->type_slots = slots;
        e->nslots = n;
    }
    size_t j = hash_fnv1a(HASH_FNV_SEED, s, strlen(s)) & (e->nslots - 1);
    for (; e->type_slots[j]; j = (j + 1) & (e->nslots - 1))
        if (strcmp(e->types[e->type_slots[j]], s) == 0)
            return e->type_slots[j];
    if (e->ntypes == e->ctypes) {
        e->ctypes *= 2;
        e->types = xrealloc(e->types, e->ctypes * sizeof(*e->types));
    }
    e->types[e->ntypes] = xstrdup(s);
    e->type_slots[j] = (uint32_t)e->ntypes;
    return (uint32_t)e->ntypes++;
}

/* ---- orgs ---- */

static struct sess_org *org_find(struct sess_engine *e, const char *name, size_t *pos)
{
    size_t lo = 0, hi = e->norgs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->orgs[mid]->name, name);
        if (c == 0)
            return e->orgs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

static struct sess_org *org_get(struct sess_engine *e, const char *name)
{
    size_t pos;
    struct sess_org *o = org_find(e, name, &pos);
    if (o)
        return o;
    o = xcalloc(1, sizeof(*o));
    o->name = xstrdup(name);
    o->user_ms = e->def_user_ms;
    o->lic_ms = e->def_lic_ms;
    o->late_ms = e->def_late_ms;
    o->releases = e->def_releases;
    o->eff_at = INT64_MIN;
    o->clock = o->max_ts = o->max_arr = INT64_MIN;
    o->nbuckets = 16;
    o->buckets = xcalloc(o->nbuckets, sizeof(*o->buckets));
    o->dirty = 1;
    if (e->norgs == e->corgs) {
        e->corgs = e->corgs ? e->corgs * 2 : 8;
        e->orgs = xrealloc(e->orgs, e->corgs * sizeof(*e->orgs));
    }
    memmove(e->orgs + pos + 1, e->orgs + pos, (e->norgs - pos) * sizeof(*e->orgs));
    e->orgs[pos] = o;
    e->norgs++;
    return o;
}

static int64_t org_horizon(const struct sess_org *o)
{
    return o->clock - o->late_ms;
}

/* Advances the org clock by a reading of ingest's wall clock (see "Clock
 * and lateness" above). */
static void org_clock_wall(struct sess_org *o, int64_t wall)
{
    if (!o->has_events)
        return;
    int64_t quiet = clamp_time(wall) - o->max_arr;
    if (o->max_arr - o->max_ts > imax(o->late_ms, SESS_LIVE_LAG_MS))
        quiet -= SESS_BACKFILL_IDLE_MS; /* a backfill: event time alone until it has ended */
    if (quiet <= 0)
        return;
    int64_t c = clamp_time(o->max_ts + quiet);
    if (c > o->clock) {
        o->clock = c;
        o->dirty = 1;
    }
}

/* ---- users: per-org chained hash ---- */

static struct sess_user *user_find(struct sess_org *o, const char *user, size_t ulen)
{
    size_t b = hash_fnv1a(HASH_FNV_SEED, user, ulen) & (o->nbuckets - 1);
    for (struct sess_user *u = o->buckets[b]; u; u = u->next)
        if (u->ulen == ulen && memcmp(u->user, user, ulen) == 0)
            return u;
    return NULL;
}

static void user_link(struct sess_org *o, struct sess_user *u)
{
    if (o->nusers >= o->nbuckets) {
        size_t n = o->nbuckets * 2;
        struct sess_user **nb = xcalloc(n, sizeof(*nb));
        for (size_t i = 0; i < o->nbuckets; i++) {
            struct sess_user *x = o->buckets[i], *next;
            for (; x; x = next) {
                next = x->next;
                size_t b = hash_fnv1a(HASH_FNV_SEED, x->user, x->ulen) & (n - 1);
                x->next = nb[b];
                nb[b] = x;
            }
        }
        free(o->buckets);
        o->buckets = nb;
        o->nbuckets = n;
    }
    size_t b = hash_fnv1a(HASH_FNV_SEED, u->user, u->ulen) & (o->nbuckets - 1);
    u->next = o->buckets[b];
    o->buckets[b] = u;
    o->nusers++;
}

static void user_unlink(struct sess_org *o, struct sess_user *u)
{
    size_t b = hash_fnv1a(HASH_FNV_SEED, u->user, u->ulen) & (o->nbuckets - 1);
    for (struct sess_user **pp = &o->buckets[b]; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            o->nusers--;
            return;
        }
}

static struct sess_user *user_alloc(struct sess_org *o, const char *user, size_t ulen)
{
    struct sess_user *u = xcalloc(1, sizeof(*u) + ulen + 1);
    memcpy(u->user, user, ulen);
    u->ulen = (uint16_t)ulen;
    u->org = o;
    u->heap_idx = SESS_NO_IDX;
    return u;
}

static void user_free(struct sess_user *u)
{
    free(u->held);
    free(u);
}

static void mark_dirty(struct sess_engine *e, struct sess_user *u)
{
    if (u->flags & UF_DIRTY)
        return;
    u->flags |= UF_DIRTY;
    if (e->ndirty == e->cdirty) {
        e->cdirty = e->cdirty ? e->cdirty * 2 : 256;
        e->dirty = xrealloc(e->dirty, e->cdirty * sizeof(*e->dirty));
    }
    e->dirty[e->ndirty++] = u;
}

/* ---- per-org timer heap, indexed so a user's entry moves in O(log n) ---- */

static void heap_set(struct sess_org *o, size_t i, struct heap_ent ent)
{
    o->heap[i] = ent;
    ent.u->heap_idx = (uint32_t)i;
}

static void heap_up(struct sess_org *o, size_t i)
{
    struct heap_ent ent = o->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (o->heap[p].due <= ent.due)
            break;
        heap_set(o, i, o->heap[p]);
        i = p;
    }
    heap_set(o, i, ent);
}

static void heap_down(struct sess_org *o, size_t i)
{
    struct heap_ent ent = o->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= o->hlen)
            break;
        if (c + 1 < o->hlen && o->heap[c + 1].due < o->heap[c].due)
            c++;
        if (ent.due <= o->heap[c].due)
            break;
        heap_set(o, i, o->heap[c]);
        i = c;
    }
    heap_set(o, i, ent);
}

static void heap_put(struct sess_org *o, struct sess_user *u, int64_t due)
{
    if (u->heap_idx != SESS_NO_IDX) {
        size_t i = u->heap_idx;
        int64_t old = o->heap[i].due;
        o->heap[i].due = due;
        if (due < old)
            heap_up(o, i);
        else
            heap_down(o, i);
        return;
    }
    if (o->hlen == o->hcap) {
        o->hcap = o->hcap ? o->hcap * 2 : 16;
        o->heap = xrealloc(o->heap, o->hcap * sizeof(*o->heap));
    }
    o->heap[o->hlen] = (struct heap_ent){due, u};
    u->heap_idx = (uint32_t)o->hlen;
    o->hlen++;
    heap_up(o, o->hlen - 1);
}

static struct sess_user *heap_pop(struct sess_org *o)
{
    struct sess_user *u = o->heap[0].u;
    u->heap_idx = SESS_NO_IDX;
    o->hlen--;
    if (o->hlen > 0) {
        heap_set(o, 0, o->heap[o->hlen]);
        heap_down(o, 0);
    }
    return u;
}

/* ---- emitting ---- */

static void emit_change(struct sess_engine *e, Licmon__V1__Change *c)
{
    if (e->emit)
        e->emit(e->arg, c);
}

static void emit_counted(struct sess_engine *e, Licmon__V1__Counted__What what, const char *org,
                         const char *user, const char *type, int64_t at)
{
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    Licmon__V1__Counted k = LICMON__V1__COUNTED__INIT;
    k.what = what;
    k.org = (char *)org;
    k.user = (char *)user;
    k.license_type = (char *)type;
    k.at_ms = at;
    c.body_case = LICMON__V1__CHANGE__BODY_COUNTED;
    c.counted = &k;
    emit_change(e, &c);
}

static void emit_hold(struct sess_engine *e, const struct sess_user *u, int64_t at, int acquired,
                      Licmon__V1__EndReason reason)
{
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    Licmon__V1__HoldChange h = LICMON__V1__HOLD_CHANGE__INIT;
    h.org = u->org->name;
    h.user = (char *)u->user;
    h.license_type = e->types[u->type];
    h.at_ms = at;
    h.acquired = acquired;
    h.reason = reason;
    c.body_case = LICMON__V1__CHANGE__BODY_HOLD;
    c.hold = &h;
    emit_change(e, &c);
}

#define SESS_ID_MAX (16 + 1 + 20 + 1 + 10 + 1)

static char *put_decimal(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* "<h in 16 hex digits>-<start>-<n>": what snprintf("%016" PRIx64 "-%"
 * PRId64 "-%" PRIu32) makes, by hand since every session record carries one
 * (snprintf was 5% of the sessionizer's time). */
static void session_id(char out[SESS_ID_MAX], uint64_t h, int64_t start, uint32_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 15; i >= 0; i--)
        *p++ = hex[(h >> (4 * i)) & 15];
    *p++ = '-';
    if (start < 0)
        *p++ = '-';
    p = put_decimal(p, start < 0 ? 0 - (uint64_t)start : (uint64_t)start);
    *p++ = '-';
    p = put_decimal(p, n);
    *p = '\0';
}

/* The session record of the user's current (open or last ended) session. */
static void emit_record(struct sess_engine *e, struct sess_user *u)
{
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    Licmon__V1__SessionRecord r = LICMON__V1__SESSION_RECORD__INIT;
    char id[SESS_ID_MAX];
    uint64_t h = hash_fnv1a(HASH_FNV_SEED, u->org->name, strlen(u->org->name) + 1);
    h = hash_fnv1a(h, u->user, u->ulen);
    session_id(id, h, u->start, u->nsess);
    r.session_id = id;
    r.org = u->org->name;
    r.user = u->user;
    r.license_type = e->types[u->type];
    r.requested_type = e->types[u->req];
    r.start_ms = u->start;
    r.last_activity_ms = u->la;
    if (u->sess == SS_ENDED) {
        r.end_ms = u->end;
        r.end_reason = u->end_reason;
        r.user_inactivity_s = (u->end - u->start) / 1000;
        r.license_inactivity_s = u->held_ms / 1000;
        r.license_released_at_ms = u->rel_ms;
        r.license_tail_s = u->rel_ms > u->end ? (u->rel_ms - u->end) / 1000 : 0;
    } else {
        u->emitted_la = u->la;
    }
    c.body_case = LICMON__V1__CHANGE__BODY_SESSION;
    c.session = &r;
    emit_change(e, &c);
}

/* ---- the rules ---- */

static void acquire_hold(struct sess_engine *e, struct sess_user *u, int64_t t)
{
    u->hold = 1;
    u->seg_start = t;
    u->rel_ms = 0;
    e->st.open_holds++;
    emit_hold(e, u, t, 1, LICMON__V1__END_REASON__OPEN);
}

static void release_hold(struct sess_engine *e, struct sess_user *u, int64_t t,
                         Licmon__V1__EndReason reason)
{
    if (u->sess == SS_OPEN)
        u->held_ms += t - u->seg_start;
    u->rel_ms = t;
    u->hold = 0;
    e->st.open_holds--;
    emit_hold(e, u, t, 0, reason);
}

/* Ends the open session at t; the record is emitted by the caller once the
 * fate of the seat at t is known. */
static void end_session(struct sess_engine *e, struct sess_user *u, int64_t t,
                        Licmon__V1__EndReason reason)
{
    if (u->hold) {
        u->held_ms += t - u->seg_start;
        u->rel_ms = 0;
    }
    u->sess = SS_ENDED;
    u->end = t;
    u->end_reason = (uint8_t)reason;
    e->st.open_sessions--;
}

/* Rule 1 (also the implicit login of rule 2). */
static void do_login(struct sess_engine *e, struct sess_user *u, int64_t t, uint32_t type,
                     uint32_t req, int implicit)
{
    int old_changed = 0, keep = 0;
    if (u->sess == SS_OPEN) {
        end_session(e, u, t, LICMON__V1__END_REASON__RELOGIN);
        old_changed = 1;
    }
    if (u->hold) {
        if (u->type == type) {
            keep = 1;
            if (u->sess == SS_ENDED) {
                u->rel_ms = t; /* taken over by the new session */
                old_changed = 1;
            }
        } else {
            release_hold(e, u, t, LICMON__V1__END_REASON__SWITCHED);
            old_changed |= u->sess == SS_ENDED;
        }
    }
    if (old_changed)
        emit_record(e, u);
    emit_counted(
        e, implicit ? LICMON__V1__COUNTED__WHAT__IMPLICIT_LOGIN : LICMON__V1__COUNTED__WHAT__LOGIN,
        u->org->name, u->user, e->types[type], t);
    if (req)
        emit_counted(e, LICMON__V1__COUNTED__WHAT__DOWNGRADE, u->org->name, u->user, e->types[req],
                     t);
    u->type = type;
    u->req = req;
    u->sess = SS_OPEN;
    u->end_reason = LICMON__V1__END_REASON__OPEN;
    /* n counts the user's sessions that start at this same instant (a
     * relogin at the instant of a login), so the id does not depend on
     * whether the user's record was forgotten in between */
    u->nsess = u->nsess && u->start == t ? u->nsess + 1 : 1;
    u->start = u->la = t;
    u->end = 0;
    u->held_ms = 0;
    e->st.open_sessions++;
    if (keep) {
        u->seg_start = t;
        u->rel_ms = 0;
    } else {
        acquire_hold(e, u, t);
    }
    emit_record(e, u);
}

static void activity_in_session(struct sess_engine *e, struct sess_user *u, int64_t t)
{
    if (t > u->la)
        u->la = t;
    if (!u->hold)
        acquire_hold(e, u, t);
    if (u->la - u->emitted_la >= SESS_UPDATE_MS)
        emit_record(e, u);
}

/* ---- timers ---- */

/* The earliest session or hold timeout of u, INT64_MAX when none runs. */
static int64_t user_timer_due(const struct sess_user *u)
{
    const struct sess_org *o = u->org;
    int64_t d = INT64_MAX;
    if (u->sess == SS_OPEN)
        d = u->la + o->user_ms;
    if (u->hold)
        d = imin(d, u->la + o->lic_ms);
    if (d == INT64_MAX)
        return d;
    return imax(d, imax(o->eff_at, u->utime));
}

/* The heap key: the next timeout, or when nothing is open the instant at
 * which the record is forgotten. */
static int64_t user_due(const struct sess_user *u)
{
    int64_t d = user_timer_due(u);
    return d == INT64_MAX ? u->utime + SESS_FORGET_MS : d;
}

/* Fires the timeouts of u due at d (its earliest). */
static void user_fire_at(struct sess_engine *e, struct sess_user *u, int64_t d)
{
    const struct sess_org *o = u->org;
    int64_t floor = imax(o->eff_at, u->utime);
    int record = 0;
    if (u->sess == SS_OPEN && imax(u->la + o->user_ms, floor) <= d) {
        end_session(e, u, d, LICMON__V1__END_REASON__USER_INACTIVITY);
        record = 1;
        if (u->hold && o->releases)
            release_hold(e, u, d, LICMON__V1__END_REASON__USER_INACTIVITY);
    }
    if (u->hold && imax(u->la + o->lic_ms, floor) <= d) {
        release_hold(e, u, d, LICMON__V1__END_REASON__LICENSE_INACTIVITY);
        record |= u->sess == SS_ENDED;
    }
    if (record)
        emit_record(e, u);
    if (d > u->utime)
        u->utime = d;
    mark_dirty(e, u);
}

static void count_orphan(struct sess_engine *e, const char *org, const char *user, int64_t t)
{
    e->st.orphans++;
    emit_counted(e, LICMON__V1__COUNTED__WHAT__ORPHAN, org, user, "", t);
}

struct sess_input {
    Licmon__V1__EventKind kind;
    const char *user, *type, *req;
    size_t ulen;
    int64_t ts;
};

/* Applies a login, activity or logout at t; returns the user, which it may
 * create, or NULL when there is none. */
static struct sess_user *apply_event(struct sess_engine *e, struct sess_org *o, struct sess_user *u,
                                     const struct sess_input *in, int64_t t)
{
    switch (in->kind) {
    case LICMON__V1__EVENT_KIND__LOGIN: {
        uint32_t type = type_intern(e, in->type);
        uint32_t req = strcmp(in->req, in->type) ? type_intern(e, in->req) : 0;
        if (!u) {
            u = user_alloc(o, in->user, in->ulen);
            u->utime = t;
            user_link(o, u);
        }
        do_login(e, u, t, type, req, 0);
        break;
    }
    case LICMON__V1__EVENT_KIND__ACTIVITY:
        if (u && u->sess == SS_OPEN) {
            activity_in_session(e, u, t);
        } else if (u && u->hold) {
            do_login(e, u, t, in->type[0] ? type_intern(e, in->type) : u->type, 0, 1);
        } else if (in->type[0]) {
            if (!u) {
                u = user_alloc(o, in->user, in->ulen);
                u->utime = t;
                user_link(o, u);
            }
            do_login(e, u, t, type_intern(e, in->type), 0, 1);
        } else {
            count_orphan(e, o->name, in->user, t);
        }
        break;
    case LICMON__V1__EVENT_KIND__LOGOUT:
        if (u && u->sess == SS_OPEN) {
            end_session(e, u, t, LICMON__V1__END_REASON__MANUAL_LOGOUT);
            if (u->hold)
                release_hold(e, u, t, LICMON__V1__END_REASON__MANUAL_LOGOUT);
            emit_record(e, u);
        } else if (u && u->hold) {
            release_hold(e, u, t, LICMON__V1__END_REASON__MANUAL_LOGOUT);
            emit_record(e, u);
        } else {
            count_orphan(e, o->name, in->user, t);
        }
        break;
    default:
        break;
    }
    return u;
}

/* ---- events held back (see "Ordering" at the top of the file) ---- */

/* Adds an event in order for u to its held events, after those not later. */
static void held_push(struct sess_engine *e, struct sess_user *u, const struct sess_input *in)
{
    size_t i = u->nheld;
    u->held = xrealloc(u->held, (i + 1) * sizeof(*u->held));
    for (; i > 0 && u->held[i - 1].ts > in->ts; i--)
        u->held[i] = u->held[i - 1];
    int login = in->kind == LICMON__V1__EVENT_KIND__LOGIN;
    /* what apply_event reads of the event, interned */
    u->held[i] = (struct sess_held){
        .ts = in->ts,
        .type = in->kind == LICMON__V1__EVENT_KIND__LOGOUT ? 0 : type_intern(e, in->type),
        .req = login ? type_intern(e, in->req) : 0,
        .kind = (uint8_t)in->kind,
    };
    u->nheld++;
    e->st.held_events++;
}

/* Applies u's earliest held event. */
static void held_apply_first(struct sess_engine *e, struct sess_user *u)
{
    struct sess_held h = u->held[0];
    memmove(u->held, u->held + 1, --u->nheld * sizeof(*u->held));
    if (!u->nheld) {
        free(u->held);
        u->held = NULL;
    }
    e->st.held_events--;
    struct sess_input in = {
        (Licmon__V1__EventKind)h.kind, u->user, e->types[h.type], e->types[h.req], u->ulen, h.ts};
    apply_event(e, u->org, u, &in, h.ts);
    u->utime = imax(u->utime, h.ts);
}

/* Applies u's held events in time order, each after the timers of u due at
 * or before it, as long as those timers are due at or before fire_upto; the
 * rest stay held. */
static void user_drain(struct sess_engine *e, struct sess_user *u, int64_t fire_upto)
{
    while (u->nheld) {
        int64_t d = user_timer_due(u);
        if (d > u->held[0].ts)
            held_apply_first(e, u);
        else if (d <= fire_upto)
            user_fire_at(e, u, d);
        else
            break;
    }
}

/* An event older than its user's state time (see the top of the file). */
static void apply_behind(struct sess_engine *e, struct sess_org *o, struct sess_user *u,
                         const struct sess_input *in)
{
    int64_t t = u->utime, ts = in->ts;
    int inside = u->sess == SS_OPEN && ts >= u->start;
    int64_t boundary = u->sess == SS_OPEN ? u->start : u->end;
    if (in->kind == LICMON__V1__EVENT_KIND__ACTIVITY && inside) {
        if (ts > u->la)
            u->la = ts;
        if (!u->hold && u->la + o->lic_ms > t)
            acquire_hold(e, u, t);
        if (u->la - u->emitted_la >= SESS_UPDATE_MS)
            emit_record(e, u);
        return;
    }
    if (!inside && ts < boundary) {
        if (in->kind == LICMON__V1__EVENT_KIND__ACTIVITY && u->sess == SS_ENDED && ts >= u->start &&
            ts > u->la) {
            u->la = ts;
            emit_record(e, u);
        }
        return;
    }
    while (user_timer_due(u) <= t) /* one clamped to t by a settings change */
        user_fire_at(e, u, user_timer_due(u));
    apply_event(e, o, u, in, t);
}

/* ---- firing ---- */

static void user_forget(struct sess_engine *e, struct sess_user *u)
{
    user_unlink(u->org, u);
    u->flags |= UF_GONE;
    mark_dirty(e, u); /* freed (and deleted from the store) by save_dirty */
}

static void scratch_put(struct sess_engine *e, size_t i, struct sess_user *u)
{
    if (i == e->cscratch) {
        e->cscratch = e->cscratch ? e->cscratch * 2 : 64;
        e->scratch = xrealloc(e->scratch, e->cscratch * sizeof(*e->scratch));
    }
    e->scratch[i] = u;
}

static int user_cmp(const void *a, const void *b)
{
    const struct sess_user *x = *(struct sess_user *const *)a, *y = *(struct sess_user *const *)b;
    int c = memcmp(x->user, y->user, x->ulen < y->ulen ? x->ulen : y->ulen);
    return c ? c : (x->ulen > y->ulen) - (x->ulen < y->ulen);
}

/* Fires every timer of the org due at or before horizon, in time order and
 * at equal instants in user order. */
static void org_fire(struct sess_engine *e, struct sess_org *o, int64_t horizon)
{
    while (o->hlen && o->heap[0].due <= horizon) {
        int64_t d = o->heap[0].due;
        size_t n = 0;
        while (o->hlen && o->heap[0].due == d)
            scratch_put(e, n++, heap_pop(o));
        if (n > 1)
            qsort(e->scratch, n, sizeof(*e->scratch), user_cmp);
        for (size_t i = 0; i < n; i++) {
            struct sess_user *u = e->scratch[i];
            if (user_timer_due(u) != INT64_MAX) {
                user_fire_at(e, u, d);
            } else if (!u->nheld) {
                user_forget(e, u);
                continue;
            }
            user_drain(e, u, d); /* what waited for this timer */
            mark_dirty(e, u);
            heap_put(o, u, user_due(u));
        }
    }
}

/* Recomputes every due of the org (after a settings change or a load). */
static void org_rekey(struct sess_org *o)
{
    for (size_t i = 0; i < o->hlen; i++)
        o->heap[i].due = user_due(o->heap[i].u);
    for (size_t i = o->hlen / 2; i-- > 0;)
        heap_down(o, i);
}

/* ---- the API ---- */

struct sess_engine *sess_engine_new(sess_emit_fn emit, void *arg)
{
    struct sess_engine *e = xcalloc(1, sizeof(*e));
    Licmon__V1__OrgSettings *d = settings_default("");
    e->emit = emit;
    e->arg = arg;
    e->def_user_ms = d->user_inactivity_timeout_s * 1000;
    e->def_lic_ms = d->license_inactivity_timeout_s * 1000;
    e->def_late_ms = d->allowed_lateness_s * 1000;
    e->def_releases = d->inactivity_logout_releases_license;
    settings_free(&d);
    e->ctypes = 16;
    e->types = xmalloc(e->ctypes * sizeof(*e->types));
    e->types[0] = xstrdup("");
    e->ntypes = 1;
    return e;
}

void sess_engine_free(struct sess_engine **ep)
{
    struct sess_engine *e = *ep;
    if (!e)
        return;
    for (size_t i = 0; i < e->ndirty; i++)
        if (e->dirty[i]->flags & UF_GONE)
            user_free(e->dirty[i]);
    for (size_t i = 0; i < e->norgs; i++) {
        struct sess_org *o = e->orgs[i];
        for (size_t b = 0; b < o->nbuckets; b++) {
            struct sess_user *u = o->buckets[b], *next;
            for (; u; u = next) {
                next = u->next;
                user_free(u);
            }
        }
        free(o->buckets);
        free(o->heap);
        free(o->name);
        free(o);
    }
    for (size_t i = 0; i < e->ntypes; i++)
        free(e->types[i]);
    free(e->types);
    free(e->type_slots);
    free(e->orgs);
    free(e->dirty);
    free(e->scratch);
    free(e);
    *ep = NULL;
}

static int64_t timeout_ms(int64_t s, int64_t def_ms)
{
    if (s <= 0)
        return def_ms;
    if (s > SESS_MAX_DUR_MS / 1000)
        return SESS_MAX_DUR_MS;
    return imax(s * 1000, SESS_MIN_TIMEOUT_MS);
}

void sess_engine_settings(struct sess_engine *e, const Licmon__V1__OrgSettings *s,
                          int64_t arrival_ms)
{
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    const char *name = str_or_empty(s->org);
    if (!settings_valid_org(name)) {
        log_warn("settings ignored: invalid org");
        return;
    }
    struct sess_org *o = org_get(e, name);
    if (o->has_events) {
        org_clock_wall(o, arrival_ms);
        org_fire(e, o, org_horizon(o));
        o->eff_at = imax(o->eff_at, org_horizon(o));
    }
    c.body_case = LICMON__V1__CHANGE__BODY_SETTINGS;
    c.settings = (Licmon__V1__OrgSettings *)s;
    emit_change(e, &c);
    o->user_ms = timeout_ms(s->user_inactivity_timeout_s, e->def_user_ms);
    o->lic_ms = timeout_ms(s->license_inactivity_timeout_s, e->def_lic_ms);
    o->late_ms = s->allowed_lateness_s <= 0                       ? 0
                 : s->allowed_lateness_s > SESS_MAX_DUR_MS / 1000 ? SESS_MAX_DUR_MS
                                                                  : s->allowed_lateness_s * 1000;
    o->releases = s->inactivity_logout_releases_license ? 1 : 0;
    o->has_settings = 1;
    o->dirty = 1;
    org_rekey(o);
    /* a held event now before its user's timer applies; users in id order,
     * not in hash-chain order, which a restart changes */
    size_t n = 0;
    for (size_t b = 0; b < o->nbuckets; b++)
        for (struct sess_user *u = o->buckets[b]; u; u = u->next)
            if (u->nheld)
                scratch_put(e, n++, u);
    if (n > 1)
        qsort(e->scratch, n, sizeof(*e->scratch), user_cmp);
    for (size_t i = 0; i < n; i++) {
        struct sess_user *u = e->scratch[i];
        user_drain(e, u, INT64_MIN);
        mark_dirty(e, u);
        heap_put(o, u, user_due(u));
    }
    if (o->has_events)
        org_fire(e, o, org_horizon(o));
}

void sess_engine_event(struct sess_engine *e, const Licmon__V1__Event *ev, int64_t arrival_ms)
{
    struct sess_input in = {ev->kind,
                            str_or_empty(ev->user),
                            str_or_empty(ev->license_type),
                            str_or_empty(ev->requested_type),
                            0,
                            ev->ts_ms};
    const char *name = str_or_empty(ev->org);
    in.ulen = strlen(in.user);
    if (!settings_valid_org(name) || in.ulen < 1 || in.ulen > SESS_MAX_USER || !time_ok(in.ts) ||
        in.kind < LICMON__V1__EVENT_KIND__LOGIN || in.kind > LICMON__V1__EVENT_KIND__DENIED ||
        strlen(in.type) > SESS_MAX_TYPE || strlen(in.req) > SESS_MAX_TYPE ||
        (!in.type[0] &&
         (in.kind == LICMON__V1__EVENT_KIND__LOGIN || in.kind == LICMON__V1__EVENT_KIND__DENIED))) {
        log_warn_ctx("org", name, "event ignored: invalid");
        return;
    }
    struct sess_org *o = org_get(e, name);
    /* see "Clock and lateness": not past its arrival by more than the allowance */
    int64_t bound = clamp_time(clamp_time(arrival_ms) + imin(SESS_AHEAD_MS, o->late_ms / 2));
    if (o->has_events) {
        org_clock_wall(o, arrival_ms);
        bound = imax(bound, o->clock);
    }
    if (in.ts > bound) {
        in.ts = bound;
        e->st.ahead_events++;
    }
    int late = 0;
    if (o->has_events) {
        late = in.ts < org_horizon(o);
        if (in.ts > o->max_ts) {
            o->max_ts = in.ts;
            o->max_arr = clamp_time(arrival_ms);
        }
        o->clock = imax(o->clock, in.ts);
    } else {
        o->has_events = 1;
        o->max_ts = o->clock = in.ts;
        o->max_arr = clamp_time(arrival_ms);
    }
    o->dirty = 1;
    org_fire(e, o, org_horizon(o));
    if (late) {
        e->st.late_events++;
        emit_counted(e, LICMON__V1__COUNTED__WHAT__LATE_EVENT, name, in.user, in.type, in.ts);
    }
    if (in.kind == LICMON__V1__EVENT_KIND__DENIED) {
        emit_counted(e, LICMON__V1__COUNTED__WHAT__DENIAL, name, in.user, in.type, in.ts);
        return;
    }
    struct sess_user *u = user_find(o, in.user, in.ulen);
    /* one more would wait: those waiting apply now, in time order, each
     * after the timers due before it (memory and the saved record stay
     * bounded) */
    if (u && u->nheld == SESS_MAX_HELD && in.ts >= user_timer_due(u))
        user_drain(e, u, INT64_MAX);
    if (u && in.ts < u->utime) {
        apply_behind(e, o, u, &in);
    } else if (u && (u->nheld || user_timer_due(u) <= in.ts)) {
        held_push(e, u, &in); /* a timer of u before it is not final yet */
    } else {
        u = apply_event(e, o, u, &in, in.ts);
        if (!u)
            return;
        u->utime = imax(u->utime, in.ts);
    }
    user_drain(e, u, org_horizon(o));
    mark_dirty(e, u);
    heap_put(o, u, user_due(u));
}

void sess_engine_tick(struct sess_engine *e, int64_t wall_ms)
{
    for (size_t i = 0; i < e->norgs; i++) {
        struct sess_org *o = e->orgs[i];
        if (!o->has_events)
            continue;
        org_clock_wall(o, wall_ms);
        org_fire(e, o, org_horizon(o));
    }
}

void sess_engine_stats(const struct sess_engine *e, struct sess_engine_stats *out)
{
    *out = e->st;
    out->pending_timers = 0;
    for (size_t i = 0; i < e->norgs; i++)
        out->pending_timers += e->orgs[i]->hlen;
}

/* ---- saving and loading ---- */

#define SESS_KEY_MAX (2 + 64 + 1 + SESS_MAX_USER)
/* the longest user record: its fields (two strings of a type each), the
 * count of held events, then each held event (a time, a kind, two types) */
#define SESS_TYPE_ENC (1 + SESS_MAX_TYPE)
#define SESS_VAL_MAX                                                                               \
    (4 + 8 * 8 + 4 + 2 * SESS_TYPE_ENC + 1 + SESS_MAX_HELD * (8 + 1 + 2 * SESS_TYPE_ENC))

static size_t user_key(const struct sess_user *u, uint8_t *key)
{
    size_t ol = strlen(u->org->name);
    key[0] = KEY_NS_STATE;
    key[1] = 'U';
    memcpy(key + 2, u->org->name, ol);
    key[2 + ol] = 0;
    memcpy(key + 3 + ol, u->user, u->ulen);
    return 3 + ol + u->ulen;
}

static size_t user_encode(const struct sess_engine *e, const struct sess_user *u, uint8_t *buf)
{
    struct sess_codec_w w;
    sess_codec_w_init(&w, buf, SESS_VAL_MAX);
    sess_codec_put_u8(&w, u->nheld ? SESS_STATE_VERSION_HELD : SESS_STATE_VERSION);
    sess_codec_put_u8(&w, u->sess);
    sess_codec_put_u8(&w, u->hold);
    sess_codec_put_u8(&w, u->end_reason);
    sess_codec_put_i64(&w, u->la);
    sess_codec_put_i64(&w, u->start);
    sess_codec_put_i64(&w, u->end);
    sess_codec_put_i64(&w, u->utime);
    sess_codec_put_i64(&w, u->emitted_la);
    sess_codec_put_i64(&w, u->seg_start);
    sess_codec_put_i64(&w, u->held_ms);
    sess_codec_put_i64(&w, u->rel_ms);
    sess_codec_put_u32(&w, u->nsess);
    sess_codec_put_str(&w, e->types[u->type]);
    sess_codec_put_str(&w, e->types[u->req]);
    if (u->nheld)
        sess_codec_put_u8(&w, u->nheld);
    for (size_t i = 0; i < u->nheld; i++) {
        sess_codec_put_i64(&w, u->held[i].ts);
        sess_codec_put_u8(&w, u->held[i].kind);
        sess_codec_put_str(&w, e->types[u->held[i].type]);
        sess_codec_put_str(&w, e->types[u->held[i].req]);
    }
    if (w.overflow)
        log_panic("session state does not fit its buffer");
    return w.len;
}

static size_t org_encode(const struct sess_org *o, uint8_t *buf)
{
    struct sess_codec_w w;
    sess_codec_w_init(&w, buf, SESS_VAL_MAX);
    sess_codec_put_u8(&w, SESS_STATE_VERSION);
    sess_codec_put_u8(&w, (uint8_t)(o->has_settings | o->has_events << 1 | o->releases << 2));
    sess_codec_put_i64(&w, o->user_ms);
    sess_codec_put_i64(&w, o->lic_ms);
    sess_codec_put_i64(&w, o->late_ms);
    sess_codec_put_i64(&w, o->eff_at);
    sess_codec_put_i64(&w, o->clock);
    sess_codec_put_i64(&w, o->max_ts);
    sess_codec_put_i64(&w, o->max_arr);
    if (w.overflow)
        log_panic("org state does not fit its buffer");
    return w.len;
}

void sess_engine_save_dirty(struct sess_engine *e, sess_put_fn put, void *arg)
{
    uint8_t key[SESS_KEY_MAX], val[SESS_VAL_MAX];
    for (size_t i = 0; i < e->norgs; i++) {
        struct sess_org *o = e->orgs[i];
        size_t ol = strlen(o->name);
        if (!o->dirty)
            continue;
        key[0] = KEY_NS_STATE;
        key[1] = 'O';
        memcpy(key + 2, o->name, ol);
        put(arg, key, 2 + ol, val, org_encode(o, val));
        o->dirty = 0;
    }
    for (size_t i = 0; i < e->ndirty; i++) {
        struct sess_user *u = e->dirty[i];
        size_t klen = user_key(u, key);
        if (u->flags & UF_GONE) {
            if (u->flags & UF_SAVED)
                put(arg, key, klen, NULL, 0);
            user_free(u);
            continue;
        }
        put(arg, key, klen, val, user_encode(e, u, val));
        u->flags = (uint8_t)((u->flags & ~UF_DIRTY) | UF_SAVED);
    }
    e->ndirty = 0;
}

static int load_org(struct sess_engine *e, const char *name, const void *val, size_t vlen)
{
    struct sess_codec_r r;
    sess_codec_r_init(&r, val, vlen);
    uint8_t ver = sess_codec_get_u8(&r), flags = sess_codec_get_u8(&r);
    int64_t user_ms = sess_codec_get_i64(&r), lic_ms = sess_codec_get_i64(&r);
    int64_t late_ms = sess_codec_get_i64(&r), eff_at = sess_codec_get_i64(&r);
    int64_t clock = sess_codec_get_i64(&r), max_ts = sess_codec_get_i64(&r);
    int64_t max_arr = sess_codec_get_i64(&r);
    if (!sess_codec_r_done(&r) || ver != SESS_STATE_VERSION || flags > 7)
        return -1;
    if (user_ms < SESS_MIN_TIMEOUT_MS || user_ms > SESS_MAX_DUR_MS ||
        lic_ms < SESS_MIN_TIMEOUT_MS || lic_ms > SESS_MAX_DUR_MS || late_ms < 0 ||
        late_ms > SESS_MAX_DUR_MS || (eff_at != INT64_MIN && !time_ok(eff_at)))
        return -1;
    if ((flags & 2) && (!time_ok(clock) || !time_ok(max_ts) || !time_ok(max_arr) || clock < max_ts))
        return -1;
    struct sess_org *o = org_get(e, name);
    if (o->loaded)
        return -1;
    o->loaded = 1;
    o->dirty = 0;
    o->has_settings = flags & 1;
    o->has_events = (flags >> 1) & 1;
    o->releases = (flags >> 2) & 1;
    o->user_ms = user_ms;
    o->lic_ms = lic_ms;
    o->late_ms = late_ms;
    o->eff_at = eff_at;
    if (o->has_events) {
        o->clock = clock;
        o->max_ts = max_ts;
        o->max_arr = max_arr;
    }
    org_rekey(o); /* users loaded before their org */
    return 0;
}

static int valid_type_or_empty(const char *s)
{
    return !*s || settings_valid_type(s);
}

struct held_in {
    int64_t ts;
    uint8_t kind;
    char type[SESS_MAX_TYPE + 1], req[SESS_MAX_TYPE + 1];
};

/* Reads the held events of a user record into h (held_push's form: in time
 * order, none before the user's state time, only what apply_event reads);
 * their count, or -1. */
static int load_held(struct sess_codec_r *r, int64_t utime, struct held_in *h)
{
    int n = sess_codec_get_u8(r);
    if (n < 1 || n > SESS_MAX_HELD)
        return -1;
    for (int i = 0; i < n; i++) {
        h[i].ts = sess_codec_get_i64(r);
        h[i].kind = sess_codec_get_u8(r);
        sess_codec_get_str(r, h[i].type, sizeof(h[i].type));
        sess_codec_get_str(r, h[i].req, sizeof(h[i].req));
        if (r->error || !time_ok(h[i].ts) || h[i].ts < (i ? h[i - 1].ts : utime) ||
            !valid_type_or_empty(h[i].type) || !valid_type_or_empty(h[i].req))
            return -1;
        switch (h[i].kind) {
        case LICMON__V1__EVENT_KIND__LOGIN:
            if (!h[i].type[0])
                return -1;
            break;
        case LICMON__V1__EVENT_KIND__ACTIVITY:
            if (h[i].req[0])
                return -1;
            break;
        case LICMON__V1__EVENT_KIND__LOGOUT:
            if (h[i].type[0] || h[i].req[0])
                return -1;
            break;
        default:
            return -1;
        }
    }
    return n;
}

static int load_user(struct sess_engine *e, const char *org, const char *user, size_t ulen,
                     const void *val, size_t vlen)
{
    struct sess_codec_r r;
    char type[SESS_MAX_TYPE + 1], req[SESS_MAX_TYPE + 1];
    struct held_in held[SESS_MAX_HELD];
    int nheld = 0;
    sess_codec_r_init(&r, val, vlen);
    uint8_t ver = sess_codec_get_u8(&r), sess = sess_codec_get_u8(&r);
    uint8_t hold = sess_codec_get_u8(&r), reason = sess_codec_get_u8(&r);
    int64_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = sess_codec_get_i64(&r);
    uint32_t nsess = sess_codec_get_u32(&r);
    sess_codec_get_str(&r, type, sizeof(type));
    sess_codec_get_str(&r, req, sizeof(req));
    if (ver == SESS_STATE_VERSION_HELD) {
        /* only a user with a timer running holds events back */
        if ((sess != SS_OPEN && !hold) || (nheld = load_held(&r, t[3], held)) < 0)
            return -1;
    } else if (ver != SESS_STATE_VERSION) {
        return -1;
    }
    if (!sess_codec_r_done(&r))
        return -1;
    for (int i = 0; i < 8; i++)
        if (!time_ok(t[i]))
            return -1;
    if (hold > 1 || !type[0] || !settings_valid_type(type) || !valid_type_or_empty(req))
        return -1;
    if (sess == SS_OPEN) {
        if (reason != LICMON__V1__END_REASON__OPEN)
            return -1;
    } else if (sess == SS_ENDED) {
        if (reason != LICMON__V1__END_REASON__MANUAL_LOGOUT &&
            reason != LICMON__V1__END_REASON__USER_INACTIVITY &&
            reason != LICMON__V1__END_REASON__RELOGIN)
            return -1;
    } else {
        return -1;
    }
    if (t[6] < 0) /* held_ms */
        return -1;
    struct sess_org *o = org_get(e, org);
    if (user_find(o, user, ulen))
        return -1;
    struct sess_user *u = user_alloc(o, user, ulen);
    u->la = t[0];
    u->start = t[1];
    u->end = t[2];
    u->utime = t[3];
    u->emitted_la = t[4];
    u->seg_start = t[5];
    u->held_ms = t[6];
    u->rel_ms = t[7];
    u->nsess = nsess;
    u->type = type_intern(e, type);
    u->req = type_intern(e, req);
    u->sess = sess;
    u->hold = hold;
    u->end_reason = reason;
    u->flags = UF_SAVED;
    if (nheld) {
        u->held = xmalloc((size_t)nheld * sizeof(*u->held));
        for (int i = 0; i < nheld; i++)
            u->held[i] = (struct sess_held){held[i].ts, type_intern(e, held[i].type),
                                            type_intern(e, held[i].req), held[i].kind};
        u->nheld = (uint8_t)nheld;
        e->st.held_events += (uint64_t)nheld;
    }
    user_link(o, u);
    heap_put(o, u, user_due(u));
    e->st.open_sessions += sess == SS_OPEN;
    e->st.open_holds += hold;
    return 0;
}

int sess_engine_load(struct sess_engine *e, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    const uint8_t *k = key;
    char org[65];
    if (!key || !val || klen < 3 || k[0] != KEY_NS_STATE)
        return -1;
    if (k[1] == 'O') {
        size_t ol = klen - 2;
        if (ol > 64 || memchr(k + 2, 0, ol))
            return -1;
        memcpy(org, k + 2, ol);
        org[ol] = '\0';
        if (!settings_valid_org(org))
            return -1;
        return load_org(e, org, val, vlen);
    }
    if (k[1] == 'U') {
        const uint8_t *sep = memchr(k + 2, 0, klen - 2);
        if (!sep)
            return -1;
        size_t ol = (size_t)(sep - (k + 2)), ulen = klen - 3 - ol;
        char user[SESS_MAX_USER + 1];
        if (ol > 64 || ulen < 1 || ulen > SESS_MAX_USER || memchr(sep + 1, 0, ulen))
            return -1;
        memcpy(org, k + 2, ol);
        org[ol] = '\0';
        memcpy(user, sep + 1, ulen);
        user[ulen] = '\0';
        if (!settings_valid_org(org))
            return -1;
        return load_user(e, org, user, ulen, val, vlen);
    }
    return -1;
}
