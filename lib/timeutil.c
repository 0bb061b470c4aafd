/* timeutil: clocks, RFC 3339, civil dates, and time zones through the
 * system zoneinfo (see timeutil.h). localtime_r with TZ switched under a
 * mutex is the libc way to reach zoneinfo; callers keep results per zone. */
#include "timeutil.h"
#include "keys.h"
#include "log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t time_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t time_boot_ms(void)
{
    return clock_ms(CLOCK_BOOTTIME);
}

int64_t time_steady_read(struct time_steady *c, int64_t wall, int64_t boot,
                         enum time_steady_news *news)
{
    *news = TIME_STEADY_SAME;
    if (!c->started) {
        c->started = 1;
        c->wall0 = c->last = wall;
        c->boot0 = boot;
        return wall;
    }
    int64_t run_on = c->wall0 + (boot - c->boot0);
    int64_t step = wall - run_on;
    if (step >= -TIME_STEADY_SLACK_MS && step <= TIME_STEADY_SLACK_MS) {
        if (c->stepping)
            *news = TIME_STEADY_STEP_GONE;
        c->stepping = 0;
        c->wall0 = wall;
        c->boot0 = boot;
        if (wall > c->last)
            c->last = wall;
        return c->last;
    }
    /* a step, or one back towards agreement or the other way: it must last
     * from now (a step that grows, as a clock that keeps losing time and is
     * stepped again and again, keeps its time) */
    if (!c->stepping || (step < 0) != (c->step_ms < 0) ||
        (step < 0 ? c->step_ms - step : step - c->step_ms) < -TIME_STEADY_SLACK_MS) {
        c->stepping = 1;
        c->step_at = boot;
        *news = TIME_STEADY_STEP_SEEN;
    } else if (boot - c->step_at >= TIME_STEADY_STEP_MS) {
        c->stepping = 0;
        c->wall0 = c->last = wall;
        c->boot0 = boot;
        *news = TIME_STEADY_STEP_TAKEN;
        return wall;
    }
    c->step_ms = step;
    if (run_on > c->last)
        c->last = run_on;
    return c->last;
}

int time_boot_id(char out[TIME_BOOT_ID_LEN + 1])
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, TIME_BOOT_ID_LEN, f);
    fclose(f);
    out[n] = 0;
    return n == TIME_BOOT_ID_LEN ? 0 : -1;
}

#define SAVED_VERSION 1

void time_steady_save(const struct time_steady *c, const char *boot_id,
                      uint8_t out[TIME_STEADY_SAVED_LEN])
{
    uint8_t *p = out;
    *p++ = SAVED_VERSION;
    memset(p, 0, TIME_BOOT_ID_LEN);
    memcpy(p, boot_id, strnlen(boot_id, TIME_BOOT_ID_LEN));
    p += TIME_BOOT_ID_LEN;
    const int64_t v[5] = {c->wall0, c->boot0, c->last, c->step_at, c->step_ms};
    for (int i = 0; i < 5; i++, p += 8)
        keys_put_i64(p, v[i]);
    *p = (uint8_t)c->stepping;
}

int time_steady_resume(struct time_steady *c, const char *boot_id, const uint8_t *saved, size_t len,
                       int64_t boot)
{
    char id[TIME_BOOT_ID_LEN] = {0};
    memcpy(id, boot_id, strnlen(boot_id, TIME_BOOT_ID_LEN));
    if (!boot_id[0] || len != TIME_STEADY_SAVED_LEN || saved[0] != SAVED_VERSION ||
        memcmp(saved + 1, id, TIME_BOOT_ID_LEN) != 0)
        return -1;
    const uint8_t *p = saved + 1 + TIME_BOOT_ID_LEN;
    struct time_steady r = {.wall0 = keys_get_i64(p),
                            .boot0 = keys_get_i64(p + 8),
                            .last = keys_get_i64(p + 16),
                            .step_at = keys_get_i64(p + 24),
                            .step_ms = keys_get_i64(p + 32),
                            .stepping = p[40] == 1,
                            .started = 1};
    /* saved earlier on this boot, and never read ahead of itself: a record
     * that says otherwise is not trusted */
    if (r.boot0 > boot || (r.stepping && r.step_at > boot) || p[40] > 1 ||
        r.last > r.wall0 + (boot - r.boot0) + TIME_STEADY_SLACK_MS)
        return -1;
    *c = r;
    return 0;
}

int64_t time_steady_now(struct time_steady *c, const char *whose, int64_t *step_ms)
{
    enum time_steady_news news;
    int64_t wall = time_now_ms(), now = time_steady_read(c, wall, time_boot_ms(), &news);
    switch (news) {
    case TIME_STEADY_STEP_SEEN:
        log_warn("the host's clock stepped %+lld s; %s clock runs on without it, and takes it "
                 "if it lasts %lld minutes",
                 (long long)((wall - now) / 1000), whose, (long long)(TIME_STEADY_STEP_MS / 60000));
        break;
    case TIME_STEADY_STEP_TAKEN:
        log_warn("%s clock takes the host clock's step, which has lasted %lld minutes", whose,
                 (long long)(TIME_STEADY_STEP_MS / 60000));
        break;
    case TIME_STEADY_STEP_GONE:
        log_info("the host's clock agrees with %s clock again", whose);
        break;
    case TIME_STEADY_SAME:
        break;
    }
    if (step_ms)
        *step_ms = wall - now;
    return now;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

char *time_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    int64_t days = floor_div(ms, 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    time_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    return buf;
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int64_t y, unsigned m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static int parse_date_part(const char **p, int64_t *days)
{
    int y, m, d;
    if (parse_digits(p, 4, &y) || *(*p)++ != '-' || parse_digits(p, 2, &m) || *(*p)++ != '-' ||
        parse_digits(p, 2, &d))
        return -1;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, (unsigned)m))
        return -1;
    *days = time_days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

int time_parse_date(const char *text, int64_t *days)
{
    const char *p = text;
    if (parse_date_part(&p, days) || *p)
        return -1;
    return 0;
}

void time_format_date(int64_t days, char *buf, size_t len)
{
    int64_t y;
    unsigned m, d;
    time_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || len < 11) {
        snprintf(buf, len, "%04lld-%02u-%02u", (long long)y, m, d);
        return;
    }
    /* by hand: a minute query formats 1,440 dates, and snprintf was about
     * a tenth of the aggregator's time answering queries */
    unsigned yy = (unsigned)y;
    const char t[11] = {(char)('0' + yy / 1000),
                        (char)('0' + yy / 100 % 10),
                        (char)('0' + yy / 10 % 10),
                        (char)('0' + yy % 10),
                        '-',
                        (char)('0' + m / 10),
                        (char)('0' + m % 10),
                        '-',
                        (char)('0' + d / 10),
                        (char)('0' + d % 10),
                        0};
    memcpy(buf, t, sizeof(t));
}

int time_parse_rfc3339(const char *text, int64_t *ms)
{
    const char *p = text;
    int64_t days;
    int hh, mi, ss, frac = 0;
    if (parse_date_part(&p, &days))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (parse_digits(&p, 2, &hh) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
        parse_digits(&p, 2, &ss))
        return -1;
    if (hh > 23 || mi > 59 || ss > 60)
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    if (ss == 60)
        ss = 59; /* a leap second is held at :59.999 of its minute */
    *ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) - off) * 1000 + frac;
    return 0;
}

int tz_valid(const char *name)
{
    return tz_get(name) != NULL;
}

/* A zone read from its TZif file (RFC 8536, the version 2+ 64-bit block):
 * transition instants and the UTC offset in force from each. Before the
 * first transition the first time type applies; after the last one (2037
 * in Debian's "fat" files) its offset stays. */
struct tz {
    char name[65];
    int64_t *at;  /* transition instants, seconds, ascending */
    int32_t *off; /* offset in force from at[i] */
    size_t n;
    int32_t off_before;
    struct tz *next;
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *tz_cache;
static struct tz tz_utc = {.name = "UTC"}; /* when zoneinfo has no UTC file */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses a TZif image into z; 0 on success. Every count is checked against
 * the bytes present before it is used. */
static int tz_parse(struct tz *z, const unsigned char *b, size_t len)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2')
        return -1;
    /* skip the 32-bit block */
    uint64_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(b + 20 + 4 * i);
    uint64_t v1 = c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (44 + v1 + 44 > len)
        return -1;
    const unsigned char *h = b + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0)
        return -1;
    for (int i = 0; i < 6; i++)
        c[i] = be32(h + 20 + 4 * i);
    uint64_t isut = c[0], isstd = c[1], leap = c[2], timecnt = c[3], typecnt = c[4], charcnt = c[5];
    uint64_t need = timecnt * 9 + typecnt * 6 + charcnt + leap * 12 + isstd + isut;
    if (typecnt == 0 || timecnt > 100000 || typecnt > 256 || (size_t)(h + 44 - b) + need > len)
        return -1;
    const unsigned char *times = h + 44, *idx = times + timecnt * 8, *types = idx + timecnt;
    z->n = (size_t)timecnt;
    z->at = malloc(sizeof(int64_t) * (z->n + 1));
    z->off = malloc(sizeof(int32_t) * (z->n + 1));
    if (!z->at || !z->off)
        return -1;
    for (size_t i = 0; i < z->n; i++) {
        if (idx[i] >= typecnt)
            return -1;
        z->at[i] = be64(times + 8 * i);
        z->off[i] = (int32_t)be32(types + 6 * idx[i]);
        if (i > 0 && z->at[i] <= z->at[i - 1])
            return -1;
    }
    z->off_before = (int32_t)be32(types);
    return 0;
}

static struct tz *tz_load(const char *name)
{
    struct tz *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    snprintf(z->name, sizeof(z->name), "%s", name);
    char path[128];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 20);
    size_t len = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
    if (f)
        fclose(f);
    int rc = len ? tz_parse(z, buf, len) : -1;
    free(buf);
    if (rc != 0) {
        free(z->at);
        free(z->off);
        free(z);
        return NULL;
    }
    return z;
}

const struct tz *tz_get(const char *name)
{
    if (!name || !*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 64)
        return NULL;
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("/_+-", *c))
            return NULL;
    pthread_mutex_lock(&tz_lock);
    struct tz *z = tz_cache;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z && (z = tz_load(name))) {
        z->next = tz_cache; /* zones are kept for the life of the process */
        tz_cache = z;
    }
    if (!z && !strcmp(name, "UTC"))
        z = &tz_utc;
    pthread_mutex_unlock(&tz_lock);
    return z;
}

int32_t tz_offset_s(const struct tz *z, int64_t ms)
{
    int64_t t = floor_div(ms, 1000);
    if (z->n == 0 || t < z->at[0])
        return z->off_before;
    size_t lo = 0, hi = z->n; /* last transition <= t */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

int tz_offset_at(const char *name, int64_t ms, long *offset_s)
{
    const struct tz *z = tz_get(name);
    if (!z)
        return -1;
    *offset_s = tz_offset_s(z, ms);
    return 0;
}

int64_t tz_local_day(const char *name, int64_t ms)
{
    long off = 0;
    tz_offset_at(name, ms, &off);
    return floor_div(ms + (int64_t)off * 1000, 86400000);
}
