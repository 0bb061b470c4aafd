/* agg_roll_codec: agg_rollup's rows on disk. Keys are laid out in
 * agg_rollup.h; values are a version byte then LEB128 varints (zigzag for
 * signed), times relative to the row's own minute so they stay short.
 * Decoders trust nothing: every count is checked against the bytes left.
 * Also the save (dirty rows out, dropping what the store holds) and load. */
#include "agg_roll_int.h"
#include "keys.h"
#include "log.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define VERSION 1
#define ORG_MAX 128
#define NAME_MAX_LEN 300

/* ------------------------------------------------------------------ keys */

static size_t put_str(uint8_t *buf, size_t at, const char *s, size_t max)
{
    size_t l = strnlen(s, max);
    memcpy(buf + at, s, l);
    return at + l;
}

size_t agg_roll_key(uint8_t *buf, char kind, const char *org, const char *name, bool with_num,
                    int64_t num)
{
    size_t n = 0;
    buf[n++] = AGG_ROLLUP_NS;
    buf[n++] = (uint8_t)kind;
    n = put_str(buf, n, org, ORG_MAX);
    if (name) {
        buf[n++] = 0;
        n = put_str(buf, n, name, NAME_MAX_LEN);
    }
    if (with_num) {
        buf[n++] = 0;
        keys_put_i64(buf + n, num);
        n += 8;
    }
    return n;
}

size_t agg_roll_key_end(uint8_t *buf, char kind, const char *org, const char *type)
{
    size_t n = agg_roll_key(buf, kind, org, type, false, 0);
    buf[n++] = 1; /* just past every "type 0 ..." key */
    return n;
}

/* -------------------------------------------------------------- buffers */

struct wbuf {
    uint8_t *p;
    size_t n, cap;
};

static void w_byte(struct wbuf *b, uint8_t v)
{
    if (b->n + 1 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->p = xrealloc(b->p, b->cap);
    }
    b->p[b->n++] = v;
}

static void w_u(struct wbuf *b, uint64_t v)
{
    while (v >= 0x80) {
        w_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    w_byte(b, (uint8_t)v);
}

static void w_s(struct wbuf *b, int64_t v)
{
    w_u(b, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

static void w_str(struct wbuf *b, const char *s)
{
    size_t l = strlen(s);
    w_u(b, l);
    for (size_t i = 0; i < l; i++)
        w_byte(b, (uint8_t)s[i]);
}

struct rbuf {
    const uint8_t *p;
    size_t n, i;
    bool bad;
};

static uint64_t r_u(struct rbuf *b)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->i >= b->n) {
            b->bad = true;
            return 0;
        }
        uint8_t c = b->p[b->i++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    b->bad = true;
    return 0;
}

static int64_t r_s(struct rbuf *b)
{
    uint64_t v = r_u(b);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int32_t r_i32(struct rbuf *b)
{
    int64_t v = r_s(b);
    if (v < INT32_MIN || v > INT32_MAX)
        b->bad = true;
    return (int32_t)v;
}

/* Bounds that only damage breaks, so that arithmetic on what was read
 * cannot overflow: a minute or a date (keys, open minutes) is within
 * +-2^42; a stored difference of minutes within +-2^53 (it may be from
 * AGG_ROLL_NEVER_MIN, -2^50, or twice that for acq entries). */
#define T_MAX (INT64_C(1) << 42)
#define D_MAX (INT64_C(1) << 53)

static bool t_ok(int64_t v)
{
    return v >= -T_MAX && v <= T_MAX;
}

/* A value that is its never-sentinel or within +-max: an instant in ms
 * (AGG_ROLL_NEVER_MS, within the minutes' bound) or a minute
 * (AGG_ROLL_NEVER_MIN, within T_MAX), so that ceil/floor to minutes and
 * differences of them cannot overflow. A value out of bounds marks the
 * buffer bad and reads as `never`. */
#define MS_MAX (T_MAX * 60000)
static int64_t r_or_never(struct rbuf *b, int64_t max, int64_t never)
{
    int64_t v = r_s(b);
    if (v != never && (v < -max || v > max)) {
        b->bad = true;
        return never;
    }
    return v;
}

/* Within +-max, no sentinel (0 is inside every bound; a bad one reads as 0). */
static int64_t r_bounded(struct rbuf *b, int64_t max)
{
    return r_or_never(b, max, 0);
}

static int64_t r_ms(struct rbuf *b)
{
    return r_or_never(b, MS_MAX, AGG_ROLL_NEVER_MS);
}

static uint32_t r_u32(struct rbuf *b)
{
    uint64_t v = r_u(b);
    if (v > UINT32_MAX)
        b->bad = true;
    return (uint32_t)v;
}

/* a count of items of at least one byte each */
static uint32_t r_count(struct rbuf *b)
{
    uint64_t v = r_u(b);
    if (v > b->n - b->i) {
        b->bad = true;
        return 0;
    }
    return (uint32_t)v;
}

static char *r_str(struct rbuf *b, size_t max)
{
    uint64_t l = r_u(b);
    if (b->bad || l > max || l > b->n - b->i) {
        b->bad = true;
        return NULL;
    }
    char *s = xstrndup((const char *)b->p + b->i, (size_t)l);
    b->i += (size_t)l;
    if (strlen(s) != l)
        b->bad = true;
    return s;
}

static bool r_version(struct rbuf *b)
{
    if (b->n < 1 || b->p[0] != VERSION) {
        b->bad = true;
        return false;
    }
    b->i = 1;
    return true;
}

/* --------------------------------------------------------- minute rows */

uint8_t *agg_roll_enc_mrow(const struct agg_roll_mrow *m, size_t *len)
{
    struct wbuf b = {0};
    w_byte(&b, VERSION);
    w_s(&b, m->before);
    w_s(&b, m->start);
    w_s(&b, m->peak);
    w_s(&b, m->end);
    w_u(&b, m->logins);
    w_u(&b, m->logouts);
    w_u(&b, m->uto);
    w_u(&b, m->lto);
    w_u(&b, m->denials);
    w_u(&b, m->downgrades);
    w_u(&b, m->nacq);
    for (uint32_t i = 0; i < m->nacq; i++)
        w_s(&b, 2 * m->minute - m->acq[i]);
    w_u(&b, m->nden);
    for (uint32_t i = 0; i < m->nden; i++)
        w_s(&b, m->minute - m->den[i]);
    w_u(&b, m->ndng);
    for (uint32_t i = 0; i < m->ndng; i++)
        w_s(&b, m->minute - m->dng[i]);
    *len = b.n;
    return b.p;
}

static int64_t *r_rel_list(struct rbuf *b, uint32_t *n, int64_t base)
{
    *n = r_count(b);
    if (b->bad || !*n)
        return NULL;
    int64_t *v = xmalloc(*n * sizeof(*v));
    for (uint32_t i = 0; i < *n; i++)
        v[i] = base - r_bounded(b, D_MAX);
    return v;
}

int agg_roll_dec_mrow(struct agg_roll_mrow *m, int64_t minute, const uint8_t *v, size_t n)
{
    struct rbuf b = {v, n, 0, false};
    memset(m, 0, sizeof(*m));
    m->minute = minute;
    if (!t_ok(minute) || !r_version(&b))
        return -1;
    m->before = r_i32(&b);
    m->start = r_i32(&b);
    m->peak = r_i32(&b);
    m->end = r_i32(&b);
    m->logins = r_u32(&b);
    m->logouts = r_u32(&b);
    m->uto = r_u32(&b);
    m->lto = r_u32(&b);
    m->denials = r_u32(&b);
    m->downgrades = r_u32(&b);
    m->acq = r_rel_list(&b, &m->nacq, 2 * minute);
    m->den = r_rel_list(&b, &m->nden, minute);
    m->dng = r_rel_list(&b, &m->ndng, minute);
    m->state = AGG_ROLL_CLEAN;
    if (b.bad || b.i != b.n) {
        agg_roll_mrow_free(m);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ hour, day rows */

uint8_t *agg_roll_enc_brow(const struct agg_roll_brow *r, bool day, size_t *len)
{
    struct wbuf b = {0};
    w_byte(&b, VERSION);
    w_s(&b, r->start - (day ? r->key * 1440 : r->key));
    w_s(&b, r->peak_at - r->start);
    w_s(&b, r->before);
    w_s(&b, r->start_in_use);
    w_s(&b, r->peak);
    w_s(&b, r->end);
    w_u(&b, r->logins);
    w_u(&b, r->logouts);
    w_u(&b, r->uto);
    w_u(&b, r->lto);
    w_u(&b, r->denials);
    w_u(&b, r->downgrades);
    w_u(&b, r->users_new);
    w_u(&b, r->den_new);
    w_u(&b, r->dng_new);
    if (day) {
        for (uint32_t i = 0; i < r->den_new; i++)
            w_s(&b, r->start - r->den_prev[i]);
        for (uint32_t i = 0; i < r->dng_new; i++)
            w_s(&b, r->start - r->dng_prev[i]);
    }
    *len = b.n;
    return b.p;
}

static int64_t *r_prev_list(struct rbuf *b, uint32_t n, int64_t base)
{
    if (n > b->n - b->i) {
        b->bad = true;
        return NULL;
    }
    if (!n)
        return NULL;
    int64_t *v = xmalloc(n * sizeof(*v));
    for (uint32_t i = 0; i < n; i++)
        v[i] = base - r_bounded(b, D_MAX);
    return v;
}

int agg_roll_dec_brow(struct agg_roll_brow *r, int64_t key, bool day, const uint8_t *v, size_t n)
{
    struct rbuf b = {v, n, 0, false};
    memset(r, 0, sizeof(*r));
    r->key = key;
    if (!t_ok(key) || !r_version(&b))
        return -1;
    r->start = r_bounded(&b, D_MAX) + (day ? key * 1440 : key);
    r->peak_at = r_bounded(&b, D_MAX) + r->start;
    r->before = r_i32(&b);
    r->start_in_use = r_i32(&b);
    r->peak = r_i32(&b);
    r->end = r_i32(&b);
    r->logins = r_u32(&b);
    r->logouts = r_u32(&b);
    r->uto = r_u32(&b);
    r->lto = r_u32(&b);
    r->denials = r_u32(&b);
    r->downgrades = r_u32(&b);
    r->users_new = r_u32(&b);
    r->den_new = r_u32(&b);
    r->dng_new = r_u32(&b);
    if (day && !b.bad) {
        r->den_prev = r_prev_list(&b, r->den_new, r->start);
        r->den_cap = r->den_new;
        r->dng_prev = r_prev_list(&b, r->dng_new, r->start);
        r->dng_cap = r->dng_new;
    }
    r->state = AGG_ROLL_CLEAN;
    if (b.bad || b.i != b.n) {
        agg_roll_brow_free(r);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ org rows */

uint8_t *agg_roll_enc_org(const struct agg_roll_org *o, size_t *len)
{
    struct wbuf b = {0};
    w_byte(&b, VERSION);
    w_str(&b, agg_roll_tz_name(o->tz));
    w_s(&b, o->lag_ms);
    w_s(&b, o->max_seen);
    w_s(&b, o->open_from);
    *len = b.n;
    return b.p;
}

int agg_roll_dec_org(struct agg_roll_org *o, const uint8_t *v, size_t n)
{
    struct rbuf b = {v, n, 0, false};
    if (!r_version(&b))
        return -1;
    char *tz = r_str(&b, 64);
    int64_t lag = r_s(&b), max_seen = r_s(&b), open_from = r_s(&b);
    if (b.bad || b.i != b.n || lag < 0) {
        free(tz);
        return -1;
    }
    agg_roll_tz_free(&o->tz);
    o->tz = agg_roll_tz_new(tz);
    free(tz);
    o->lag_ms = lag;
    o->max_seen = max_seen;
    o->open_from = open_from;
    return 0;
}

/* --------------------------------------------------------- series rows */

uint8_t *agg_roll_enc_series(const struct agg_roll_series *s, size_t *len)
{
    struct wbuf b = {0};
    w_byte(&b, VERSION);
    w_s(&b, s->in_use_sealed);
    w_s(&b, s->in_use_now);
    w_s(&b, s->hours_hi);
    w_u(&b, s->nopen);
    for (size_t i = 0; i < s->nopen; i++) {
        const struct agg_roll_omin *om = &s->open[i];
        int64_t k = om->minute * 60000;
        w_s(&b, om->minute);
        w_u(&b, om->logins);
        w_u(&b, om->logouts);
        w_u(&b, om->uto);
        w_u(&b, om->lto);
        w_u(&b, om->denials);
        w_u(&b, om->downgrades);
        w_u(&b, om->ndl);
        for (uint32_t j = 0; j < om->ndl; j++) {
            w_u(&b, (uint64_t)(om->dl[j].t - k));
            w_s(&b, om->dl[j].d);
        }
        w_u(&b, om->nacq);
        for (uint32_t j = 0; j < om->nacq; j++)
            w_s(&b, 2 * om->minute - om->acq[j]);
        w_u(&b, om->nden);
        for (uint32_t j = 0; j < om->nden; j++)
            w_s(&b, om->minute - om->den[j]);
        w_u(&b, om->ndng);
        for (uint32_t j = 0; j < om->ndng; j++)
            w_s(&b, om->minute - om->dng[j]);
    }
    *len = b.n;
    return b.p;
}

int agg_roll_dec_series(struct agg_roll_series *s, const uint8_t *v, size_t n)
{
    struct rbuf b = {v, n, 0, false};
    if (!r_version(&b))
        return -1;
    int32_t sealed = r_i32(&b);
    int64_t now = r_s(&b);
    int64_t hours_hi = r_s(&b);
    uint32_t nopen = r_count(&b);
    struct agg_roll_omin *open = xcalloc(nopen ? nopen : 1, sizeof(*open));
    uint32_t i = 0;
    for (; i < nopen && !b.bad; i++) {
        struct agg_roll_omin *om = &open[i];
        om->minute = r_bounded(&b, T_MAX);
        if (b.bad || (i && om->minute <= open[i - 1].minute)) {
            b.bad = true; /* and nothing computed from it: minute * 60000 would overflow */
            break;
        }
        int64_t k = om->minute * 60000;
        om->logins = r_u32(&b);
        om->logouts = r_u32(&b);
        om->uto = r_u32(&b);
        om->lto = r_u32(&b);
        om->denials = r_u32(&b);
        om->downgrades = r_u32(&b);
        om->ndl = om->cap_dl = r_count(&b);
        if (om->ndl && !b.bad) {
            om->dl = xmalloc(om->ndl * sizeof(*om->dl));
            for (uint32_t j = 0; j < om->ndl && !b.bad; j++) {
                uint64_t off = r_u(&b);
                if (off >= 60000) {
                    b.bad = true; /* and k + off not computed: it could overflow */
                    break;
                }
                om->dl[j].t = k + (int64_t)off;
                om->dl[j].d = r_i32(&b);
            }
        }
        om->acq = r_rel_list(&b, &om->nacq, 2 * om->minute);
        om->cap_acq = om->nacq;
        om->den = r_rel_list(&b, &om->nden, om->minute);
        om->cap_den = om->nden;
        om->dng = r_rel_list(&b, &om->ndng, om->minute);
        om->cap_dng = om->ndng;
    }
    if (b.bad || b.i != b.n) {
        for (uint32_t j = 0; j < i; j++)
            agg_roll_omin_free(&open[j]);
        free(open);
        return -1;
    }
    for (size_t j = 0; j < s->nopen; j++)
        agg_roll_omin_free(&s->open[j]);
    free(s->open);
    s->open = open;
    s->nopen = s->cap_open = nopen;
    s->in_use_sealed = sealed;
    s->in_use_now = now;
    s->hours_hi = hours_hi;
    return 0;
}

/* ----------------------------------------------------------- user rows */

static void w_useries(struct wbuf *b, const struct agg_roll_useries *us)
{
    w_byte(b, us->holding);
    w_s(b, us->acq_t);
    w_s(b, us->acq_ent);
    w_s(b, us->prev_rel);
    w_s(b, us->last_rel);
    w_s(b, us->last_den);
    w_s(b, us->last_dng);
}

static void r_useries(struct rbuf *b, struct agg_roll_useries *us)
{
    us->holding = (uint8_t)r_u(b);
    us->acq_t = r_ms(b);
    us->acq_ent = r_bounded(b, D_MAX); /* an acq entry, as those lists hold */
    us->prev_rel = r_ms(b);
    us->last_rel = r_ms(b);
    us->last_den = r_ms(b);
    us->last_dng = r_ms(b);
    if (us->holding > 1)
        b->bad = true;
}

static void w_den_recent(struct wbuf *b, const struct agg_roll_useries *us)
{
    w_s(b, us->den_floor);
    w_u(b, us->nden_min);
    for (uint32_t i = 0; i < us->nden_min; i++)
        w_s(b, us->den_min[i]);
}

/* present: the row has the trailer; else the state of a row saved before */
static void r_den_recent(struct rbuf *b, struct agg_roll_useries *us, bool present)
{
    if (!present) {
        us->den_floor = agg_roll_den_floor_of(us->last_den);
        us->nden_min = 0;
        return;
    }
    us->den_floor = r_or_never(b, T_MAX, AGG_ROLL_NEVER_MIN);
    uint64_t n = r_u(b);
    if (n > AGG_ROLL_DEN_MAX || n > b->n - b->i) { /* a value takes a byte at least */
        b->bad = true;
        return;
    }
    us->nden_min = us->cap_den_min = (uint32_t)n;
    us->den_min = n ? xmalloc(n * sizeof(*us->den_min)) : NULL;
    int64_t prev = us->den_floor;
    for (uint64_t i = 0; i < n; i++) {
        us->den_min[i] = r_bounded(b, T_MAX);
        if (us->den_min[i] <= prev) /* sorted, distinct, after the floor */
            b->bad = true;
        prev = us->den_min[i];
    }
}

uint8_t *agg_roll_enc_user(const struct agg_roll_user *u, size_t *len)
{
    struct wbuf b = {0};
    w_byte(&b, VERSION);
    w_u(&b, u->holds);
    w_s(&b, u->last_end);
    w_u(&b, u->ended_pos);
    for (int i = 0; i < AGG_ROLL_RING; i++)
        w_u(&b, u->ended[i]);
    w_useries(&b, &u->all);
    w_u(&b, u->nser);
    for (uint32_t i = 0; i < u->nser; i++) {
        w_str(&b, u->ser[i].s->type);
        w_useries(&b, &u->ser[i]);
    }
    /* a trailer, so rows saved before it existed still read */
    for (uint32_t i = 0; i <= u->nser; i++)
        w_den_recent(&b, i < u->nser ? &u->ser[i] : &u->all);
    *len = b.n;
    return b.p;
}

int agg_roll_dec_user(struct agg_roll_org *o, struct agg_roll_user *u, const uint8_t *v, size_t n)
{
    struct rbuf b = {v, n, 0, false};
    if (!r_version(&b))
        return -1;
    struct agg_roll_user t = {0};
    t.holds = r_u32(&b);
    t.last_end = r_ms(&b);
    t.ended_pos = (uint8_t)r_u(&b);
    if (t.ended_pos >= AGG_ROLL_RING)
        b.bad = true;
    for (int i = 0; i < AGG_ROLL_RING; i++)
        t.ended[i] = r_u(&b);
    t.all.s = o->all;
    r_useries(&b, &t.all);
    uint32_t nser = r_count(&b);
    struct agg_roll_useries *ser = xcalloc(nser ? nser : 1, sizeof(*ser));
    for (uint32_t i = 0; i < nser && !b.bad; i++) {
        char *type = r_str(&b, 64);
        if (!type || !*type || !strcmp(type, AGG_ROLLUP_ALL)) {
            b.bad = true;
            free(type);
            break;
        }
        ser[i].s = agg_roll_series_get(o, type, true);
        free(type);
        r_useries(&b, &ser[i]);
    }
    bool trailer = b.i < b.n;
    for (uint32_t i = 0; i <= nser && !b.bad; i++)
        r_den_recent(&b, i < nser ? &ser[i] : &t.all, trailer);
    if (b.bad || b.i != b.n) {
        for (uint32_t i = 0; i < nser; i++)
            agg_roll_useries_free(&ser[i]);
        agg_roll_useries_free(&t.all);
        free(ser);
        return -1;
    }
    agg_roll_user_series_free(u);
    u->ser = ser;
    u->nser = nser;
    u->holds = t.holds;
    u->last_end = t.last_end;
    u->ended_pos = t.ended_pos;
    memcpy(u->ended, t.ended, sizeof(u->ended));
    u->all = t.all;
    return 0;
}

/* ---------------------------------------------------------------- save */

/* val then *vl: the encoder sets *vl, so it must run before *vl is read */
static void put_row(const struct agg_rollup_sink *k, const uint8_t *key, size_t kl, uint8_t *val,
                    const size_t *vl)
{
    k->put(k->arg, key, kl, val, *vl);
    free(val);
}

static void save_series(struct agg_rollup *r, struct agg_roll_series *s,
                        const struct agg_rollup_sink *k)
{
    const char *org = s->org->name;
    bool evict = r->has_store, pending = false;
    uint8_t key[AGG_ROLL_KEY_MAX], end[AGG_ROLL_KEY_MAX];
    size_t kl, el, len;

    if (s->hours_reset == 2)
        s->hours_reset = 0; /* the delete went out with the last batch */

    size_t w = 0;
    for (size_t i = 0; i < s->nmins; i++) {
        struct agg_roll_mrow *m = &s->mins[i];
        if (m->state != AGG_ROLL_DIRTY && evict) {
            agg_roll_mrow_free(m);
            continue;
        }
        if (m->state == AGG_ROLL_DIRTY) {
            kl = agg_roll_key(key, 'm', org, s->type, true, m->minute);
            put_row(k, key, kl, agg_roll_enc_mrow(m, &len), &len);
            m->state = evict ? AGG_ROLL_SAVED : AGG_ROLL_CLEAN;
            pending |= evict;
        }
        s->mins[w++] = *m;
    }
    s->nmins = w;

    if (s->hours_reset == 1) {
        kl = agg_roll_key(key, 'h', org, s->type, false, 0);
        key[kl++] = 0;
        el = agg_roll_key_end(end, 'h', org, s->type);
        k->del_range(k->arg, key, kl, end, el);
        s->hours_reset = 2;
        pending = true;
    }
    w = 0;
    for (size_t i = 0; i < s->hours.n; i++) {
        struct agg_roll_brow *b = &s->hours.v[i];
        bool last = i + 1 == s->hours.n;
        if (b->state != AGG_ROLL_DIRTY && evict && !last && s->hours_reset == 0) {
            agg_roll_brow_free(b);
            continue;
        }
        if (b->state == AGG_ROLL_SAVED && last)
            b->state = AGG_ROLL_CLEAN;
        if (b->state == AGG_ROLL_DIRTY) {
            kl = agg_roll_key(key, 'h', org, s->type, true, b->key);
            put_row(k, key, kl, agg_roll_enc_brow(b, false, &len), &len);
            if (b->key > s->hours_hi) {
                s->hours_hi = b->key;
                s->dirty = true; /* hours_hi is kept in the series row */
            }
            b->state = evict ? AGG_ROLL_SAVED : AGG_ROLL_CLEAN;
            pending |= evict;
        }
        s->hours.v[w++] = *b;
    }
    s->hours.n = w;

    if (s->days_reset) {
        kl = agg_roll_key(key, 'd', org, s->type, true, s->days_reset_from);
        el = agg_roll_key_end(end, 'd', org, s->type);
        k->del_range(k->arg, key, kl, end, el);
        s->days_reset = false;
    }
    for (size_t i = s->days_dirty_from; i < s->days.n; i++) {
        struct agg_roll_brow *b = &s->days.v[i];
        if (b->state != AGG_ROLL_DIRTY)
            continue;
        kl = agg_roll_key(key, 'd', org, s->type, true, b->key);
        put_row(k, key, kl, agg_roll_enc_brow(b, true, &len), &len);
        b->state = AGG_ROLL_CLEAN;
    }
    s->days_dirty_from = s->days.n;

    if (s->dirty) {
        kl = agg_roll_key(key, 's', org, s->type, false, 0);
        put_row(k, key, kl, agg_roll_enc_series(s, &len), &len);
        s->dirty = false;
    }
    s->touched = pending;
}

void agg_rollup_save_dirty(struct agg_rollup *r, const struct agg_rollup_sink *k)
{
    if (!k || !k->put || !k->del_range)
        log_panic("agg_rollup_save_dirty: the sink needs put and del_range");
    uint8_t key[AGG_ROLL_KEY_MAX];
    size_t kl, len;
    for (size_t i = 0; i < r->norgs; i++) {
        struct agg_roll_org *o = r->org_list[i];
        if (o->dirty) {
            kl = agg_roll_key(key, 'o', o->name, NULL, false, 0);
            put_row(k, key, kl, agg_roll_enc_org(o, &len), &len);
            o->dirty = false;
        }
        for (size_t j = 0; j < o->nseries; j++)
            if (o->series[j]->touched)
                save_series(r, o->series[j], k);
        for (size_t j = 0; j < o->ngone; j++) {
            kl = agg_roll_key(key, 'u', o->name, o->gone_users[j], false, 0);
            k->put(k->arg, key, kl, NULL, 0);
            free(o->gone_users[j]);
        }
        o->ngone = 0;
        for (size_t j = 0; j < o->ndirty_users; j++) {
            struct agg_roll_user *u = o->dirty_users[j];
            kl = agg_roll_key(key, 'u', o->name, u->name, false, 0);
            put_row(k, key, kl, agg_roll_enc_user(u, &len), &len);
            u->dirty = false;
        }
        o->ndirty_users = 0;
    }
}

/* ---------------------------------------------------------------- load */

const char *const agg_rollup_load_prefixes[] = {"Rd", "Ro", "Rs", "Ru", NULL};

/* org, and the rest of the key after it (NUL-free names) */
static int split_key(const uint8_t *k, size_t kl, char *org, const uint8_t **rest, size_t *rl)
{
    size_t i = 2;
    while (i < kl && k[i] != 0)
        i++;
    if (i == 2 || i - 2 > ORG_MAX)
        return -1;
    memcpy(org, k + 2, i - 2);
    org[i - 2] = 0;
    *rest = i < kl ? k + i + 1 : NULL;
    *rl = i < kl ? kl - i - 1 : 0;
    return 0;
}

static int name_of(const uint8_t *p, size_t l, char *out, size_t max)
{
    if (!p || l == 0 || l > max || memchr(p, 0, l))
        return -1;
    memcpy(out, p, l);
    out[l] = 0;
    return 0;
}

int agg_rollup_load(struct agg_rollup *r, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    const uint8_t *k = key;
    if (klen < 3 || k[0] != AGG_ROLLUP_NS)
        return 1;
    char kind = (char)k[1];
    if (kind == 'm' || kind == 'h')
        return 1;
    if (kind != 'o' && kind != 's' && kind != 'u' && kind != 'd')
        return 1;
    char org[ORG_MAX + 1], name[NAME_MAX_LEN + 1];
    const uint8_t *rest;
    size_t rl;
    if (split_key(k, klen, org, &rest, &rl) != 0)
        return -1;
    if (kind == 'o') {
        if (rest)
            return -1;
        struct agg_roll_org *o = agg_roll_org_get(r, org, true);
        if (agg_roll_dec_org(o, val, vlen) != 0)
            return -1;
        o->dirty = false;
        return 0;
    }
    if (kind == 'd') {
        if (!rest || rl < 10 || rest[rl - 9] != 0 || name_of(rest, rl - 9, name, 64) != 0)
            return -1;
        struct agg_roll_org *o = agg_roll_org_get(r, org, true);
        struct agg_roll_series *s = agg_roll_series_get(o, name, true);
        struct agg_roll_brow b;
        int64_t date = keys_get_i64(rest + rl - 8);
        if (agg_roll_dec_brow(&b, date, true, val, vlen) != 0)
            return -1;
        bool found;
        size_t at = agg_roll_bvec_find(&s->days, date, &found);
        if (found)
            agg_roll_brow_free(&s->days.v[at]);
        struct agg_roll_brow *d = found ? &s->days.v[at] : agg_roll_bvec_insert(&s->days, at);
        *d = b;
        s->days_dirty_from = s->days.n;
        return 0;
    }
    if (name_of(rest, rl, name, kind == 's' ? 64 : NAME_MAX_LEN) != 0)
        return -1;
    struct agg_roll_org *o = agg_roll_org_get(r, org, true);
    if (kind == 's') {
        struct agg_roll_series *s = agg_roll_series_get(o, name, true);
        if (agg_roll_dec_series(s, val, vlen) != 0)
            return -1;
        s->dirty = false;
        return 0;
    }
    struct agg_roll_user *u = agg_roll_user_get(o, name, true);
    return agg_roll_dec_user(o, u, val, vlen) != 0 ? -1 : 0;
}
