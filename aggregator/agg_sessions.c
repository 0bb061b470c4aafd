/* agg_sessions: the SESSIONS query (see agg_sessions.h).
 *
 * With P0 the period's first instant and M = the UTC midnight at or before
 * P0, the records that overlap the period fall in two groups:
 *  - started before M: they must still run at P0, so they span M. Ended
 *    ones have a 'Y' entry for M's day; open ones are in memory. Both are
 *    few (about the seats in use at one instant), read whole and sorted;
 *  - started at or after M: the archive's keys from M to the period's end,
 *    read in order; those before P0 only when they end after it or are open.
 * Every record has one position, the archive key's tail be64(start) sid, and
 * the answer is in that order, so the cursor is just the position of the
 * last record handed out (or looked at): the next chunk starts after it. */
#include "agg_sessions.h"
#include "keys.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
#define CURSOR_VERSION 1

struct cand {
    Licmon__V1__SessionRecord *rec;
    uint8_t *pos; /* be64(start) sid */
    size_t plen;
};

struct finder {
    const struct agg_rollup_store *store;
    const struct agg_sessions_query *q;
    const uint8_t *after; /* position to start after (NULL: none) */
    size_t after_len;
    size_t max_rows, scanned;
    struct agg_sessions_chunk *out;
    size_t cap;
    uint8_t last[AGG_STATE_KEY_MAX]; /* position of the last record handed out or looked at */
    size_t last_len;
    bool has_last;
    bool full, budget, bad;
    size_t prefix_len; /* 'X' org 0 */
};

static int pos_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static bool after_cursor(const struct finder *f, const uint8_t *pos, size_t plen)
{
    return !f->after || pos_cmp(pos, plen, f->after, f->after_len) > 0;
}

static bool overlaps(const Licmon__V1__SessionRecord *r, int64_t p0, int64_t p1)
{
    if (r->start_ms >= p1)
        return false;
    if (r->start_ms >= p0)
        return true;
    return r->end_reason == LICMON__V1__END_REASON__OPEN || r->end_ms > p0;
}

static bool wanted(const struct agg_sessions_query *q, const Licmon__V1__SessionRecord *r)
{
    if (!overlaps(r, q->from_ms, q->to_ms))
        return false;
    if (q->user && *q->user && strcmp(r->user, q->user) != 0)
        return false;
    if (q->type && *q->type && strcmp(q->type, "all") != 0 && strcmp(r->license_type, q->type))
        return false;
    return true;
}

/* Cheap test on the packed bytes before unpacking: the filter strings must
 * appear somewhere in them. */
static bool may_match(const struct agg_sessions_query *q, const void *val, size_t vlen)
{
    if (q->user && *q->user && !memmem(val, vlen, q->user, strlen(q->user)))
        return false;
    if (q->type && *q->type && strcmp(q->type, "all") != 0 &&
        !memmem(val, vlen, q->type, strlen(q->type)))
        return false;
    return true;
}

static void push(struct finder *f, Licmon__V1__SessionRecord *r)
{
    struct agg_sessions_chunk *o = f->out;
    if (o->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        o->recs = xrealloc(o->recs, f->cap * sizeof(*o->recs));
    }
    o->recs[o->n++] = r;
    if (o->n >= f->max_rows)
        f->full = true;
}

static void set_last(struct finder *f, const uint8_t *pos, size_t plen)
{
    if (plen > sizeof(f->last))
        return; /* cannot happen: positions come from keys of at most that size */
    memcpy(f->last, pos, plen);
    f->last_len = plen;
    f->has_last = true;
}

/* ------------------------------------------------ a single record by key */

struct get_one {
    Licmon__V1__SessionRecord *rec;
    size_t klen;
    bool bad;
};

static int get_one_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct get_one *g = arg;
    (void)key;
    if (klen != g->klen)
        return 1;
    g->rec = licmon__v1__session_record__unpack(NULL, vlen, val);
    g->bad = g->rec == NULL;
    return 1;
}

static int get_record(const struct agg_rollup_store *store, const uint8_t *key, size_t kl,
                      Licmon__V1__SessionRecord **out)
{
    uint8_t end[AGG_STATE_KEY_MAX + 1];
    memcpy(end, key, kl);
    end[kl] = 0; /* the first key after `key` */
    struct get_one g = {.klen = kl};
    if (store->scan(store->arg, key, kl, end, kl + 1, get_one_visit, &g) != 0 || g.bad)
        return -1;
    *out = g.rec;
    return 0;
}

/* --------------------------------------- group 1: started before midnight */

struct early {
    const struct finder *f;
    struct cand *v;
    size_t n, cap;
    size_t ykey_prefix; /* 'Y' org 0 */
    bool bad;
};

static void early_add(struct early *e, Licmon__V1__SessionRecord *r)
{
    size_t sl = strlen(r->session_id);
    uint8_t *pos = xmalloc(8 + sl + 1);
    keys_put_i64(pos, r->start_ms);
    memcpy(pos + 8, r->session_id, sl);
    if (!wanted(e->f->q, r) || !after_cursor(e->f, pos, 8 + sl)) {
        free(pos);
        licmon__v1__session_record__free_unpacked(r, NULL);
        return;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n++] = (struct cand){r, pos, 8 + sl};
}

static int early_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct early *e = arg;
    const uint8_t *k = key;
    (void)val, (void)vlen;
    if (klen <= e->ykey_prefix + 16)
        return 0;
    int64_t start = keys_get_i64(k + e->ykey_prefix + 8);
    const char *sid = (const char *)k + e->ykey_prefix + 16;
    size_t sl = klen - e->ykey_prefix - 16;
    uint8_t xk[AGG_STATE_KEY_MAX];
    size_t xl = agg_state_archive_key(xk, e->f->q->org, start, sid, sl);
    Licmon__V1__SessionRecord *r = NULL;
    if (!xl)
        return 0;
    if (get_record(e->f->store, xk, xl, &r) != 0) {
        e->bad = true;
        return 1;
    }
    if (r)
        early_add(e, r); /* gone (retention): nothing to add */
    return 0;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return pos_cmp(x->pos, x->plen, y->pos, y->plen);
}

static int find_early(struct finder *f, const struct agg_state *st, int64_t midnight)
{
    const struct agg_sessions_query *q = f->q;
    struct early e = {.f = f};
    uint8_t from[AGG_STATE_KEY_MAX], to[AGG_STATE_KEY_MAX];
    e.ykey_prefix = agg_state_org_prefix(from, 'Y', q->org);
    memcpy(to, from, e.ykey_prefix);
    keys_put_i64(from + e.ykey_prefix, midnight / DAY_MS);
    keys_put_i64(to + e.ykey_prefix, midnight / DAY_MS + 1);
    int rc = f->store->scan(f->store->arg, from, e.ykey_prefix + 8, to, e.ykey_prefix + 8,
                            early_visit, &e);
    if (rc != 0 || e.bad) {
        for (size_t i = 0; i < e.n; i++) {
            licmon__v1__session_record__free_unpacked(e.v[i].rec, NULL);
            free(e.v[i].pos);
        }
        free(e.v);
        return -1;
    }
    Licmon__V1__SessionRecord **open;
    size_t nopen = agg_state_current(st, q->org, &open);
    for (size_t i = 0; i < nopen; i++) {
        if (open[i]->start_ms < midnight)
            early_add(&e, open[i]); /* early_add owns it now */
        else
            licmon__v1__session_record__free_unpacked(open[i], NULL);
    }
    free(open);
    if (e.n)
        qsort(e.v, e.n, sizeof(e.v[0]), cand_cmp);
    for (size_t i = 0; i < e.n; i++) {
        bool dup = i > 0 && !cand_cmp(&e.v[i - 1], &e.v[i]);
        if (f->full || dup) {
            licmon__v1__session_record__free_unpacked(e.v[i].rec, NULL);
        } else {
            push(f, e.v[i].rec);
            set_last(f, e.v[i].pos, e.v[i].plen);
        }
    }
    for (size_t i = 0; i < e.n; i++)
        free(e.v[i].pos);
    free(e.v);
    return 0;
}

/* ------------------------------------ group 2: the archive from midnight */

static int archive_visit(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct finder *f = arg;
    const uint8_t *pos = (const uint8_t *)key + f->prefix_len;
    size_t plen = klen - f->prefix_len;
    if (klen < f->prefix_len + 8 || !after_cursor(f, pos, plen))
        return 0;
    if (f->full || f->scanned >= AGG_SESSIONS_SCAN_BUDGET) {
        f->budget = !f->full;
        return 1; /* more to come: the cursor says where we stopped */
    }
    f->scanned++;
    set_last(f, pos, plen);
    if (!may_match(f->q, val, vlen))
        return 0;
    Licmon__V1__SessionRecord *r = licmon__v1__session_record__unpack(NULL, vlen, val);
    if (!r) {
        f->bad = true;
        return 1;
    }
    if (wanted(f->q, r))
        push(f, r);
    else
        licmon__v1__session_record__free_unpacked(r, NULL);
    return 0;
}

static int find_archive(struct finder *f, int64_t midnight)
{
    const struct agg_sessions_query *q = f->q;
    uint8_t from[2 * AGG_STATE_KEY_MAX], to[AGG_STATE_KEY_MAX];
    size_t n = agg_state_org_prefix(from, 'X', q->org);
    memcpy(to, from, n);
    keys_put_i64(to + n, q->to_ms);
    keys_put_i64(from + n, midnight);
    size_t fl = n + 8; /* from may grow to the cursor's position below */
    if (f->after && pos_cmp(f->after, f->after_len, from + n, 8) >= 0 &&
        n + f->after_len + 1 <= sizeof(from)) {
        memcpy(from + n, f->after, f->after_len); /* seek to just after the cursor */
        from[n + f->after_len] = 0;
        fl = n + f->after_len + 1;
    }
    f->prefix_len = n;
    int rc = f->store->scan(f->store->arg, from, fl, to, n + 8, archive_visit, f);
    return rc != 0 || f->bad ? -1 : 0;
}

/* ---------------------------------------------------------------- query */

int agg_sessions_find(const struct agg_rollup_store *store, const struct agg_state *st,
                      const struct agg_sessions_query *q, struct agg_sessions_chunk *out,
                      const char **err)
{
    memset(out, 0, sizeof(*out));
    struct finder f = {.store = store, .q = q, .out = out};
    f.max_rows = q->max_rows ? q->max_rows : AGG_SESSIONS_DEFAULT_ROWS;
    if (f.max_rows > AGG_SESSIONS_MAX_ROWS)
        f.max_rows = AGG_SESSIONS_MAX_ROWS;
    if (q->cursor_len) {
        if (q->cursor_len < 9 || q->cursor_len > 1 + AGG_STATE_KEY_MAX ||
            q->cursor[0] != CURSOR_VERSION) {
            *err = "cursor: not one of ours";
            return -1;
        }
        f.after = q->cursor + 1;
        f.after_len = q->cursor_len - 1;
    }
    uint8_t tmp[AGG_STATE_KEY_MAX];
    if (!q->org || !agg_state_org_prefix(tmp, 'X', q->org)) {
        *err = "org: invalid";
        return -1;
    }
    if (q->to_ms <= q->from_ms)
        return 0;
    int64_t midnight = q->from_ms - (((q->from_ms % DAY_MS) + DAY_MS) % DAY_MS);
    uint8_t mpos[8];
    keys_put_i64(mpos, midnight);
    int rc = 0;
    if (!f.after || pos_cmp(f.after, f.after_len, mpos, 8) < 0)
        rc = find_early(&f, st, midnight);
    if (rc == 0 && !f.full)
        rc = find_archive(&f, midnight);
    if (rc != 0) {
        agg_sessions_chunk_free(out);
        *err = "sessions: the archive cannot be read";
        return -1;
    }
    if ((f.full || f.budget) && f.has_last) {
        out->next_len = 1 + f.last_len;
        out->next_cursor = xmalloc(out->next_len);
        out->next_cursor[0] = CURSOR_VERSION;
        memcpy(out->next_cursor + 1, f.last, f.last_len);
    }
    return 0;
}

void agg_sessions_chunk_free(struct agg_sessions_chunk *c)
{
    for (size_t i = 0; i < c->n; i++)
        licmon__v1__session_record__free_unpacked(c->recs[i], NULL);
    free(c->recs);
    free(c->next_cursor);
    memset(c, 0, sizeof(*c));
}
