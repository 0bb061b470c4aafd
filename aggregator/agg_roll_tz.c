/* agg_roll_tz: local hours and days of a reporting zone in UTC minutes (see
 * agg_roll_tz.h). One tz_offset_s probe per UTC day start is cached; a day
 * whose start and end offsets differ gets its transition minute by binary
 * search (about 11 more probes, once). Real zones change offset at most once
 * a day and on whole minutes, which is what the cache relies on. */
#include "agg_roll_tz.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MIN 1440
#define CACHE_MAX (1u << 17) /* entries before the cache is dropped and refilled */

struct tz_ent {
    int64_t day;
    int64_t trans; /* first minute with the next day's offset, when it differs */
    int32_t off;   /* offset at the day's first minute */
    uint8_t used, has_trans;
};

struct agg_roll_tz {
    char *name;
    const struct tz *zone; /* timeutil's, kept for the life of the process */
    bool utc;
    struct tz_ent *ent;
    size_t cap, n;
};

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

static int64_t fmod_pos(int64_t a, int64_t b)
{
    return a - fdiv(a, b) * b;
}

struct agg_roll_tz *agg_roll_tz_new(const char *name)
{
    struct agg_roll_tz *z = xcalloc(1, sizeof(*z));
    z->name = xstrdup(name ? name : "");
    z->zone = name ? tz_get(name) : NULL;
    z->utc = !z->zone || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC");
    return z;
}

void agg_roll_tz_free(struct agg_roll_tz **z)
{
    if (!*z)
        return;
    free((*z)->name);
    free((*z)->ent);
    free(*z);
    *z = NULL;
}

const char *agg_roll_tz_name(const struct agg_roll_tz *z)
{
    return z->name;
}

static int32_t probe(const struct agg_roll_tz *z, int64_t m)
{
    return (int32_t)fdiv(tz_offset_s(z->zone, m * 60000), 60);
}

static size_t slot_of(int64_t day, size_t cap)
{
    uint64_t h = (uint64_t)day * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & (cap - 1);
}

static void cache_grow(struct agg_roll_tz *z)
{
    size_t ncap = z->cap ? z->cap * 2 : 256;
    struct tz_ent *old = z->ent;
    size_t ocap = z->cap;
    z->ent = xcalloc(ncap, sizeof(*z->ent));
    z->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].used)
            continue;
        size_t s = slot_of(old[i].day, ncap);
        while (z->ent[s].used)
            s = (s + 1) & (ncap - 1);
        z->ent[s] = old[i];
    }
    free(old);
}

static struct tz_ent *day_ent(struct agg_roll_tz *z, int64_t day)
{
    if (z->n >= CACHE_MAX) { /* a zone queried over centuries: start over */
        memset(z->ent, 0, z->cap * sizeof(*z->ent));
        z->n = 0;
    }
    if (z->cap == 0 || (z->n + 1) * 2 > z->cap)
        cache_grow(z);
    size_t s = slot_of(day, z->cap);
    while (z->ent[s].used) {
        if (z->ent[s].day == day)
            return &z->ent[s];
        s = (s + 1) & (z->cap - 1);
    }
    z->ent[s].used = 1;
    z->ent[s].day = day;
    z->ent[s].off = probe(z, day * DAY_MIN);
    z->ent[s].has_trans = 0;
    z->n++;
    return &z->ent[s];
}

static int32_t day_off(struct agg_roll_tz *z, int64_t day)
{
    return day_ent(z, day)->off;
}

/* The transition minute inside (day start, next day start] of a day whose
 * two ends have different offsets. */
static int64_t day_trans(struct agg_roll_tz *z, int64_t day)
{
    struct tz_ent *e = day_ent(z, day);
    if (e->has_trans)
        return e->trans;
    int32_t a = e->off;
    int64_t lo = day * DAY_MIN, hi = (day + 1) * DAY_MIN;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (probe(z, mid) == a)
            lo = mid;
        else
            hi = mid;
    }
    e = day_ent(z, day); /* the probe loop does not touch the cache, but be safe */
    e->trans = hi;
    e->has_trans = 1;
    return hi;
}

int32_t agg_roll_tz_offset(struct agg_roll_tz *z, int64_t m)
{
    if (z->utc)
        return 0;
    int64_t d = fdiv(m, DAY_MIN);
    int32_t a = day_off(z, d), b = day_off(z, d + 1);
    if (a == b)
        return a;
    return m < day_trans(z, d) ? a : b;
}

/* Latest transition T with x <= T <= y, or AGG_ROLL_TZ_NONE. */
static int64_t last_trans_in(struct agg_roll_tz *z, int64_t x, int64_t y)
{
    if (z->utc || y < x)
        return AGG_ROLL_TZ_NONE;
    for (int64_t d = fdiv(y, DAY_MIN); d >= fdiv(x, DAY_MIN) - 1; d--) {
        if (day_off(z, d) == day_off(z, d + 1))
            continue;
        int64_t t = day_trans(z, d);
        if (t <= y && t >= x)
            return t;
    }
    return AGG_ROLL_TZ_NONE;
}

/* Earliest transition T with x <= T <= y, or AGG_ROLL_TZ_NONE. */
static int64_t first_trans_in(struct agg_roll_tz *z, int64_t x, int64_t y)
{
    if (z->utc || y < x)
        return AGG_ROLL_TZ_NONE;
    for (int64_t d = fdiv(x, DAY_MIN) - 1; d <= fdiv(y, DAY_MIN); d++) {
        if (day_off(z, d) == day_off(z, d + 1))
            continue;
        int64_t t = day_trans(z, d);
        if (t <= y && t >= x)
            return t;
    }
    return AGG_ROLL_TZ_NONE;
}

int64_t agg_roll_tz_date(struct agg_roll_tz *z, int64_t m)
{
    return fdiv(m + agg_roll_tz_offset(z, m), DAY_MIN);
}

int64_t agg_roll_tz_date_start(struct agg_roll_tz *z, int64_t d)
{
    if (z->utc)
        return d * DAY_MIN;
    /* the usual case: midnight exists once, found from the offset near it */
    int64_t g = d * DAY_MIN - agg_roll_tz_offset(z, d * DAY_MIN);
    g = d * DAY_MIN - agg_roll_tz_offset(z, g);
    if (agg_roll_tz_date(z, g) == d && agg_roll_tz_date(z, g - 1) < d)
        return g;
    /* otherwise the first minute whose date is >= d: offsets stay within
     * -12..+14 h, so it lies in this window; local dates never go back */
    int64_t lo = d * DAY_MIN - 1560, hi = d * DAY_MIN + 1560;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (agg_roll_tz_date(z, mid) >= d)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

int64_t agg_roll_tz_hour_start(struct agg_roll_tz *z, int64_t m)
{
    int64_t hs = m - fmod_pos(m + agg_roll_tz_offset(z, m), 60);
    int64_t t = last_trans_in(z, hs + 1, m);
    return t != AGG_ROLL_TZ_NONE ? t : hs;
}

int64_t agg_roll_tz_next_hour(struct agg_roll_tz *z, int64_t hs)
{
    int64_t y = hs + 60 - fmod_pos(hs + agg_roll_tz_offset(z, hs), 60);
    int64_t t = first_trans_in(z, hs + 1, y);
    return t != AGG_ROLL_TZ_NONE ? t : y;
}
