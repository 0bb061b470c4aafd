/* agg_retention: the retention snapshot and the compaction filter (see
 * agg_retention.h). Keys it judges (everything else is kept):
 *   'R' 'm'|'h' org 0 type 0 be64(minute)   by the minute (UTC ms / 60000)
 *   'R' 'd' org 0 type 0 be64(date)          by the local date
 *   'X' org 0 be64(start) session_id         by the record's end (open: kept)
 *   'Y' org 0 be64(day) be64(start) sid      by the UTC day it spans
 * Reclaiming old snapshots: a reader counts itself in `readers` before it
 * loads the pointer and out after its last use, so a snapshot swapped out
 * can be freed once `readers` has been seen at zero after the swap. */
#include "agg_retention.h"
#include "keys.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ORG_MAX 64

struct ret_org {
    char org[ORG_MAX + 1];
    size_t len;
    int64_t minutes_days, days_days;
};

struct ret_snap {
    size_t n;
    struct ret_org v[]; /* sorted by org bytes */
};

struct agg_retention {
    _Atomic(struct ret_snap *) snap; /* NULL: nothing published, keep all */
    atomic_int readers;
    atomic_uint_least64_t dropped;
    _Atomic int64_t now_ms;    /* 0: none published yet, keep all */
    struct ret_snap **retired; /* writer only */
    size_t nretired, capretired;
};

struct agg_retention *agg_retention_new(void)
{
    struct agg_retention *ret = xcalloc(1, sizeof(*ret));
    atomic_init(&ret->snap, NULL);
    atomic_init(&ret->readers, 0);
    atomic_init(&ret->dropped, 0);
    atomic_init(&ret->now_ms, 0);
    return ret;
}

static void reclaim(struct agg_retention *ret)
{
    if (!ret->nretired || atomic_load(&ret->readers) != 0)
        return;
    for (size_t i = 0; i < ret->nretired; i++)
        free(ret->retired[i]);
    ret->nretired = 0;
}

void agg_retention_free(struct agg_retention **retp)
{
    struct agg_retention *ret = *retp;
    if (!ret)
        return;
    for (size_t i = 0; i < ret->nretired; i++)
        free(ret->retired[i]);
    free(ret->retired);
    free(atomic_load(&ret->snap));
    free(ret);
    *retp = NULL;
}

int64_t agg_retention_minutes_days(const Licmon__V1__OrgSettings *s)
{
    int64_t v = s ? s->retention_days_minutes : 0;
    return v < AGG_RET_MINUTES_DAYS ? AGG_RET_MINUTES_DAYS : v;
}

int64_t agg_retention_days_days(const Licmon__V1__OrgSettings *s)
{
    int64_t v = s ? s->retention_days_days : 0;
    return v < AGG_RET_DAYS_DAYS ? AGG_RET_DAYS_DAYS : v;
}

static int org_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int ret_org_cmp(const void *a, const void *b)
{
    const struct ret_org *x = a, *y = b;
    return org_cmp(x->org, x->len, y->org, y->len);
}

void agg_retention_publish(struct agg_retention *ret,
                           const Licmon__V1__OrgSettings *const *settings, size_t n)
{
    struct ret_snap *s = xcalloc(1, sizeof(*s) + n * sizeof(s->v[0]));
    for (size_t i = 0; i < n; i++) {
        const char *org = settings[i]->org ? settings[i]->org : "";
        size_t len = strlen(org);
        if (len == 0 || len > ORG_MAX)
            continue;
        struct ret_org *o = &s->v[s->n++];
        memcpy(o->org, org, len);
        o->len = len;
        o->minutes_days = agg_retention_minutes_days(settings[i]);
        /* day rows stay at least as long as minute and hour rows: a quiet
         * stretch takes its seats from the day row before it (the rollup's
         * carry), which must not be gone while the stretch's hours are not */
        o->days_days = agg_retention_days_days(settings[i]);
        if (o->days_days < o->minutes_days)
            o->days_days = o->minutes_days;
    }
    qsort(s->v, s->n, sizeof(s->v[0]), ret_org_cmp);
    struct ret_snap *old = atomic_exchange(&ret->snap, s);
    if (old) {
        if (ret->nretired == ret->capretired) {
            ret->capretired = ret->capretired ? ret->capretired * 2 : 8;
            ret->retired = xrealloc(ret->retired, ret->capretired * sizeof(*ret->retired));
        }
        ret->retired[ret->nretired++] = old;
    }
    reclaim(ret);
}

static const struct ret_org *snap_find(const struct ret_snap *s, const char *org, size_t len)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = org_cmp(s->v[mid].org, s->v[mid].len, org, len);
        if (c == 0)
            return &s->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *i < n; shift += 7) {
        uint8_t c = p[(*i)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

int agg_retention_record_end(const uint8_t *val, size_t vlen, int64_t *end_ms)
{
    size_t i = 0;
    int found = 0;
    while (i < vlen) {
        uint64_t tag, v;
        if (!get_varint(val, vlen, &i, &tag))
            return -1;
        switch (tag & 7) {
        case 0:
            if (!get_varint(val, vlen, &i, &v))
                return -1;
            if ((tag >> 3) == 8) { /* SessionRecord.end_ms; the last one wins */
                *end_ms = (int64_t)v;
                found = 1;
            }
            break;
        case 1:
            if (vlen - i < 8)
                return -1;
            i += 8;
            break;
        case 2:
            if (!get_varint(val, vlen, &i, &v) || v > vlen - i)
                return -1;
            i += (size_t)v;
            break;
        case 5:
            if (vlen - i < 4)
                return -1;
            i += 4;
            break;
        default:
            return -1;
        }
    }
    if (!found)
        *end_ms = 0;
    return found;
}

/* The org of a key whose org starts at byte `at`; NULL when malformed. */
static const char *key_org(const char *key, size_t klen, size_t at, size_t *len)
{
    if (klen <= at)
        return NULL;
    const char *end = memchr(key + at, 0, klen - at);
    if (!end || end == key + at || (size_t)(end - key - at) > ORG_MAX)
        return NULL;
    *len = (size_t)(end - key - at);
    return key + at;
}

static bool judge(const struct ret_snap *s, const char *key, size_t klen, const char *val,
                  size_t vlen, int64_t now_ms)
{
    size_t at, olen;
    if (key[0] == 'R' && klen >= 2 && (key[1] == 'm' || key[1] == 'h' || key[1] == 'd'))
        at = 2;
    else if (key[0] == 'X' || key[0] == 'Y')
        at = 1;
    else
        return false;
    const char *org = key_org(key, klen, at, &olen);
    if (!org)
        return false;
    const struct ret_org *o = snap_find(s, org, olen);
    int64_t keep_min = o ? o->minutes_days : AGG_RET_MINUTES_DAYS;
    int64_t keep_day = o ? o->days_days : AGG_RET_DAYS_DAYS;
    int64_t grace = AGG_RET_GRACE_DAYS * AGG_RET_DAY_MS;
    int64_t min_cut = now_ms - keep_min * AGG_RET_DAY_MS - grace;
    size_t rest = at + olen + 1; /* the byte after the org's NUL */
    if (key[0] == 'R') {
        if (klen < rest + 9)
            return false;
        int64_t num = keys_get_i64((const uint8_t *)key + klen - 8);
        if (key[1] == 'd')
            return num < (now_ms - keep_day * AGG_RET_DAY_MS - grace) / AGG_RET_DAY_MS;
        return num < min_cut / 60000;
    }
    if (key[0] == 'Y') {
        if (klen < rest + 16)
            return false;
        int64_t day = keys_get_i64((const uint8_t *)key + rest);
        return day < min_cut / AGG_RET_DAY_MS - 1;
    }
    int64_t end;
    if (agg_retention_record_end((const uint8_t *)val, vlen, &end) != 1 || end == 0)
        return false; /* open, or unreadable: kept */
    return end < min_cut;
}

bool agg_retention_expired(struct agg_retention *ret, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t now_ms)
{
    if (klen < 2)
        return false;
    atomic_fetch_add(&ret->readers, 1);
    const struct ret_snap *s = atomic_load(&ret->snap);
    bool drop = s && judge(s, key, klen, val, vlen, now_ms);
    atomic_fetch_sub(&ret->readers, 1);
    if (drop)
        atomic_fetch_add_explicit(&ret->dropped, 1, memory_order_relaxed);
    return drop;
}

void agg_retention_set_now(struct agg_retention *ret, int64_t now_ms)
{
    atomic_store(&ret->now_ms, now_ms);
}

bool agg_retention_filter(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct agg_retention *ret = arg;
    int64_t now = atomic_load(&ret->now_ms);
    return now && agg_retention_expired(ret, key, klen, val, vlen, now);
}

uint64_t agg_retention_dropped(struct agg_retention *ret)
{
    return atomic_load_explicit(&ret->dropped, memory_order_relaxed);
}
