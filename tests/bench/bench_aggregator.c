/* bench_aggregator: the aggregator's core (agg_app, what main.c runs) over
 * a real RocksDB in a temp folder, with a year of one org: 2,000 users, 5
 * license types, sessions on most working days with denials and
 * downgrades. Prints how fast session changes are applied (apply + flush +
 * synced commit, as lib/stage.c does) and how long the dashboard's queries
 * take at the aggregator (answer + pack). Asserts nothing about time.
 * LICMON_BENCH_AGG_USERS and LICMON_BENCH_AGG_DAYS shrink it. */
#include "../../aggregator/agg_app.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define NTYPES 5
#define COMMIT_EVERY 65536 /* changes per commit: 64 chunks (the stage's fetch) of 1024 */

static const char *const types[NTYPES] = {"creator", "reviewer", "test_runner", "stakeholder",
                                          "viewer"};
static const char ORG[] = "bench";

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int64_t rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static bool chance(int pct)
{
    return (int)(rnd() % 100) < pct;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: on a shared, loaded machine the wall clock also
 * counts other programs' turns. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ changes */

enum { C_LOGIN, C_ACQ, C_OPEN, C_UPDATE, C_END, C_REL, C_DENIAL, C_DOWNGRADE };

struct item {
    int64_t t;
    int kind, user, type, req;
    int64_t start, end;
    bool logout;
};

struct items {
    struct item *v;
    size_t n, cap;
};

static void add(struct items *s, struct item it)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = it;
}

static int item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->kind - y->kind;
}

static uint8_t *pack_item(const struct item *it, size_t *len)
{
    char user[16], sid[48];
    snprintf(user, sizeof(user), "user%04d", it->user);
    snprintf(sid, sizeof(sid), "%08x-%lld-1", (unsigned)it->user * 2654435761u,
             (long long)it->start);
    Licmon__V1__Change c = LICMON__V1__CHANGE__INIT;
    Licmon__V1__HoldChange h = LICMON__V1__HOLD_CHANGE__INIT;
    Licmon__V1__Counted k = LICMON__V1__COUNTED__INIT;
    Licmon__V1__SessionRecord r = LICMON__V1__SESSION_RECORD__INIT;
    c.journal_seq = (uint64_t)it->t;
    switch (it->kind) {
    case C_ACQ:
    case C_REL:
        h.org = (char *)ORG;
        h.user = user;
        h.license_type = (char *)types[it->type];
        h.at_ms = it->t;
        h.acquired = it->kind == C_ACQ;
        h.reason = it->kind == C_ACQ ? LICMON__V1__END_REASON__OPEN
                   : it->logout      ? LICMON__V1__END_REASON__MANUAL_LOGOUT
                                     : LICMON__V1__END_REASON__LICENSE_INACTIVITY;
        c.body_case = LICMON__V1__CHANGE__BODY_HOLD;
        c.hold = &h;
        break;
    case C_LOGIN:
    case C_DENIAL:
    case C_DOWNGRADE:
        k.org = (char *)ORG;
        k.user = user;
        k.license_type = (char *)types[it->kind == C_DOWNGRADE ? it->req : it->type];
        k.at_ms = it->t;
        k.what = it->kind == C_LOGIN    ? LICMON__V1__COUNTED__WHAT__LOGIN
                 : it->kind == C_DENIAL ? LICMON__V1__COUNTED__WHAT__DENIAL
                                        : LICMON__V1__COUNTED__WHAT__DOWNGRADE;
        c.body_case = LICMON__V1__CHANGE__BODY_COUNTED;
        c.counted = &k;
        break;
    default:
        r.session_id = sid;
        r.org = (char *)ORG;
        r.user = user;
        r.license_type = (char *)types[it->type];
        r.requested_type = it->req >= 0 ? (char *)types[it->req] : "";
        r.start_ms = it->start;
        r.last_activity_ms = it->t;
        if (it->kind == C_END) {
            r.end_ms = it->end;
            r.end_reason = it->logout ? LICMON__V1__END_REASON__MANUAL_LOGOUT
                                      : LICMON__V1__END_REASON__USER_INACTIVITY;
            r.user_inactivity_s = (it->end - it->start) / 1000;
            r.license_inactivity_s = r.user_inactivity_s;
            r.license_released_at_ms = it->end;
        }
        c.body_case = LICMON__V1__CHANGE__BODY_SESSION;
        c.session = &r;
        break;
    }
    return pb_pack(&c.base, len);
}

/* One day of sessions of every user, in time order. */
static void gen_day(struct items *s, int64_t day, int users, bool weekday)
{
    s->n = 0;
    for (int u = 0; u < users; u++) {
        if (!chance(weekday ? 80 : 8))
            continue;
        int type = u % NTYPES;
        if (chance(10))
            type = (int)(rnd() % NTYPES);
        int64_t start = day + 6 * HOUR_MS + rnd_in(0, 4 * 60) * MIN_MS + rnd_in(0, 59999);
        int64_t end = start + rnd_in(20, 9 * 60) * MIN_MS;
        bool logout = chance(60);
        int req = chance(4) ? (type + 1) % NTYPES : -1;
        if (chance(3))
            add(s, (struct item){start - MIN_MS, C_DENIAL, u, type, -1, 0, 0, false});
        add(s, (struct item){start, C_LOGIN, u, type, req, start, 0, false});
        if (req >= 0)
            add(s, (struct item){start, C_DOWNGRADE, u, type, req, start, 0, false});
        add(s, (struct item){start, C_ACQ, u, type, req, start, 0, false});
        add(s, (struct item){start, C_OPEN, u, type, req, start, 0, false});
        for (int64_t t = start + 2 * HOUR_MS; t < end; t += 2 * HOUR_MS)
            add(s, (struct item){t, C_UPDATE, u, type, req, start, 0, false});
        add(s, (struct item){end, C_END, u, type, req, start, end, logout});
        int64_t rel = logout ? end : end + 30 * MIN_MS;
        add(s, (struct item){rel, C_REL, u, type, req, start, 0, logout});
    }
    qsort(s->v, s->n, sizeof(s->v[0]), item_cmp);
}

/* -------------------------------------------------------------- queries */

static double query_ms(struct agg_app *app, Licmon__V1__Query *q, size_t *rows)
{
    double t = now_s();
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    if (agg_app_query(app, q, &rep) != 0) {
        fprintf(stderr, "query failed: %s\n", rep.error);
        exit(1);
    }
    size_t len;
    uint8_t *buf = pb_pack(&rep.base, &len);
    free(buf);
    if (rows)
        *rows = rep.query->n_rows + rep.query->n_sessions;
    agg_app_query_clear(&rep);
    return (now_s() - t) * 1000;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n, size_t rows, const char *target)
{
    qsort(v, (size_t)n, sizeof(*v), dcmp);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    printf("  %-34s %4zu rows  mean %7.3f ms  p50 %7.3f  p99 %7.3f  max %7.3f  (target %s)\n", what,
           rows, sum / n, v[n / 2], v[(n * 99) / 100], v[n - 1], target);
}

int main(void)
{
    int users = getenv("LICMON_BENCH_AGG_USERS") ? atoi(getenv("LICMON_BENCH_AGG_USERS")) : 2000;
    int ndays = getenv("LICMON_BENCH_AGG_DAYS") ? atoi(getenv("LICMON_BENCH_AGG_DAYS")) : 365;
    if (users < 1 || ndays < 2)
        return 2;
    char dir[] = "/tmp/lm-bench-agg-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct agg_retention *ret = agg_retention_new();
    agg_retention_set_now(ret, time_now_ms()); /* the filter judges, as in the aggregator */
    struct store *store = store_open_expiring(dir, agg_retention_filter, ret);
    if (!store)
        return 1;
    struct agg_app *app = agg_app_new(store, ret, NULL, NULL);
    agg_app_load(app);
    struct store_batch *b = store_batch_new();

    /* a year that ends today (so every row is within retention) */
    int64_t today = time_now_ms() / DAY_MS;
    int64_t day0 = (today - ndays + 1) * DAY_MS;
    Licmon__V1__OrgSettings *s = settings_default(ORG);
    free(s->timezone);
    s->timezone = xstrdup("Europe/Berlin");
    s->licenses = xcalloc(NTYPES, sizeof(*s->licenses));
    for (int t = 0; t < NTYPES; t++) {
        Licmon__V1__License *l = xmalloc(sizeof(*l));
        licmon__v1__license__init(l);
        l->type = xstrdup(types[t]);
        l->owned = users / NTYPES * 7 / 10;
        l->threshold_pct = 80;
        l->expires = xstrdup("");
        s->licenses[s->n_licenses++] = l;
    }
    Licmon__V1__Change sc = LICMON__V1__CHANGE__INIT;
    sc.body_case = LICMON__V1__CHANGE__BODY_SETTINGS;
    sc.settings = s;
    size_t len;
    uint8_t *buf = pb_pack(&sc.base, &len);
    agg_app_apply(app, buf, len);
    free(buf);
    settings_free(&s);

    printf("aggregator: %d users, %d license types, %d days, RocksDB in %s\n", users, NTYPES, ndays,
           dir);
    struct items items = {0};
    uint8_t **packed = xcalloc(COMMIT_EVERY, sizeof(*packed));
    size_t *plen = xcalloc(COMMIT_EVERY, sizeof(*plen));
    size_t npacked = 0, total = 0, commits = 0;
    double t_apply = 0, t_commit = 0, t_flush = 0, c_apply = 0, c_commit = 0;
    size_t batch_keys = 0;
    for (int d = 0; d < ndays; d++) {
        int64_t day = day0 + d * DAY_MS;
        int wd = (int)(((day / DAY_MS) % 7 + 7 + 3) % 7); /* 0 = Monday */
        gen_day(&items, day, users, wd < 5);
        for (size_t i = 0; i <= items.n; i++) {
            if (i < items.n)
                packed[npacked] = pack_item(&items.v[i], &plen[npacked]), npacked++;
            if (npacked == COMMIT_EVERY || (i == items.n && d == ndays - 1 && npacked)) {
                /* the stage's part: apply every item, then one synced commit */
                double t = now_s(), c = cpu_s();
                for (size_t j = 0; j < npacked; j++)
                    agg_app_apply(app, packed[j], plen[j]);
                double t2 = now_s(), c2 = cpu_s();
                if (agg_app_flush(app, b) != 0)
                    return 1;
                double t3 = now_s();
                batch_keys += (size_t)store_batch_count(b);
                if (store_write(store, b, true) != 0)
                    return 1;
                store_batch_clear(b);
                t_apply += t2 - t;
                t_flush += t3 - t2;
                t_commit += now_s() - t2;
                c_apply += c2 - c;
                c_commit += cpu_s() - c2;
                for (size_t j = 0; j < npacked; j++)
                    free(packed[j]);
                total += npacked;
                npacked = 0;
                commits++;
            }
        }
    }

    struct agg_app_stats st;
    agg_app_stats(app, &st);
    printf("  apply: %zu session changes in %.2f s = %.0f changes/s (target >= 300000/s)\n"
           "         apply %.2f s, flush %.2f s, synced write %.2f s; %zu commits of up to %d "
           "changes, %zu keys written\n"
           "         this thread's CPU: %.2f s = %.0f changes/s (apply %.2f s, commit %.2f s)\n",
           total, t_apply + t_commit, (double)total / (t_apply + t_commit), t_apply, t_flush,
           t_commit - t_flush, commits, COMMIT_EVERY, batch_keys, c_apply + c_commit,
           (double)total / (c_apply + c_commit), c_apply, c_commit);
    printf("  state: %llu users, %llu resident rows, %llu open minutes\n",
           (unsigned long long)st.users, (unsigned long long)st.resident_rows,
           (unsigned long long)st.open_minutes);

    int64_t now = time_now_ms();
    char from[16], to[16], date[16];
    time_format_date(today - 364, from, sizeof(from));
    time_format_date(today, to, sizeof(to));
    enum { REPS = 200 };
    double v[REPS];
    size_t rows = 0;
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.org = (char *)ORG;
    q.license_type = "creator";
    q.now_ms = now;

    q.kind = LICMON__V1__QUERY_KIND__USAGE;
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = from;
    q.to_date = to;
    for (int i = 0; i < REPS; i++)
        v[i] = query_ms(app, &q, &rows);
    report("usage day, 365 days, one type", v, REPS, rows, "<= 2 ms");

    q.granularity = LICMON__V1__GRANULARITY__HOUR;
    q.from_date = q.to_date = "";
    for (int i = 0; i < REPS; i++) { /* a different day each time: rows from RocksDB */
        time_format_date(today - 1 - (int64_t)(rnd() % (uint64_t)(ndays - 1)), date, sizeof(date));
        q.date = date;
        v[i] = query_ms(app, &q, &rows);
    }
    report("usage hour, one day (random days)", v, REPS, rows, "<= 2 ms");
    time_format_date(today - 10, date, sizeof(date));
    q.date = date;
    for (int i = 0; i < REPS; i++)
        v[i] = query_ms(app, &q, &rows);
    report("usage hour, one day (warm)", v, REPS, rows, "<= 2 ms");

    q.granularity = LICMON__V1__GRANULARITY__MINUTE;
    q.hour = 10;
    for (int i = 0; i < REPS; i++)
        v[i] = query_ms(app, &q, &rows);
    report("usage minute, one hour (warm)", v, REPS, rows, "<= 1 ms");
    for (int i = 0; i < REPS; i++) {
        time_format_date(today - 1 - (int64_t)(rnd() % (uint64_t)(ndays - 1)), date, sizeof(date));
        q.date = date;
        q.hour = (int)rnd_in(6, 18);
        v[i] = query_ms(app, &q, &rows);
    }
    report("usage minute, one hour (random days)", v, REPS, rows, "-");

    q.kind = LICMON__V1__QUERY_KIND__STATS;
    q.granularity = 0;
    q.date = "";
    q.hour = 0;
    q.from_date = from;
    q.to_date = to;
    for (int i = 0; i < REPS; i++)
        v[i] = query_ms(app, &q, &rows);
    report("stats, 365 days, one type", v, REPS, rows, "-");
    q.license_type = "all";
    for (int i = 0; i < REPS; i++)
        v[i] = query_ms(app, &q, &rows);
    report("stats, 365 days, all", v, REPS, rows, "-");

    q.kind = LICMON__V1__QUERY_KIND__SESSIONS;
    time_format_date(today - 3, date, sizeof(date));
    q.from_date = q.to_date = date;
    q.max_rows = 500;
    for (int i = 0; i < REPS / 4; i++)
        v[i] = query_ms(app, &q, &rows);
    report("sessions, one day, first 500", v, REPS / 4, rows, "-");

    double t = now_s();
    size_t nsess = 0, chunks = 0;
    uint8_t cursor[600];
    q.from_date = from;
    q.max_rows = 5000;
    for (;;) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        if (agg_app_query(app, &q, &rep) != 0)
            return 1;
        nsess += rep.query->n_sessions;
        chunks++;
        size_t cl = rep.query->next_cursor.len;
        if (cl)
            memcpy(cursor, rep.query->next_cursor.data, cl);
        agg_app_query_clear(&rep);
        if (!cl)
            break;
        q.cursor.data = cursor;
        q.cursor.len = cl;
    }
    double el = now_s() - t;
    printf("  sessions, a year in chunks of 5000: %zu records, %zu chunks, %.2f s = %.0f "
           "records/s\n",
           nsess, chunks, el, (double)nsess / el);

    agg_app_free(&app);
    store_batch_free(&b);
    store_close(&store);
    agg_retention_free(&ret);
    free(items.v);
    free(packed);
    free(plen);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
