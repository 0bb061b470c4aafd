/* libFuzzer harness: the aggregator's saved state and row codecs
 * (aggregator/agg_state.c, agg_roll_codec.c) as read back through
 * agg_app_load and the rollup's store scans, and the promise that makes a
 * kill -9 of the aggregator harmless: an aggregator reopened over what it
 * committed answers every query exactly like one that never stopped.
 *
 * The first byte picks a mode:
 *   0: the rest is (key, value) pairs written into the store under the
 *      aggregator's namespaces, as a damaged database would hold them; the
 *      aggregator loads them (or refuses), applies some changes, commits
 *      and answers queries: nothing may crash;
 *   1: the rest is a script of journal inputs (as in fuzz_sess_state) run
 *      through the sessionizer's engine; its changes go to aggregator A
 *      (never stopped) and to aggregator B, which commits at the script's
 *      commit points and is dropped at a split point; C reopens B's store
 *      and applies the rest. Every query answer of C must equal A's, byte
 *      for byte (a difference aborts);
 *   2: the rest is raw bytes handed to agg_app_apply as damaged upstream
 *      records (length-prefixed), then commits and queries.
 * The stores are real RocksDB databases through lib/store.c, in memory,
 * emptied for each input (fuzz_store.h says how and why). */
#include "../../aggregator/agg_app.h"
#include "../../sessionizer/sess_engine.h"
#include "fuzz_store.h"
#include "log.h"
#include "settings.h"
#include "store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSTORES 2
static struct fuzz_store stores[NSTORES];

static void close_stores(void)
{
    for (int i = 0; i < NSTORES; i++)
        fuzz_store_close(&stores[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    no_per_input_leak_check(argc, argv);
    log_set_level(LOG_PANIC);
    fuzz_store_open(&stores[0], "/fuzz-agg-0");
    fuzz_store_open(&stores[1], "/fuzz-agg-1");
    atexit(close_stores);
    return 0;
}

/* ---- the changes: the sessionizer's engine over a script ---- */

struct changes {
    uint8_t **v;
    size_t *len, n, cap;
    size_t *commit_after; /* change counts at the commit points */
    size_t ncommits, capcommits;
};

static void on_change(void *arg, Licmon__V1__Change *c)
{
    struct changes *ch = arg;
    if (ch->n == ch->cap) {
        ch->cap = ch->cap ? 2 * ch->cap : 64;
        ch->v = realloc(ch->v, ch->cap * sizeof(*ch->v));
        ch->len = realloc(ch->len, ch->cap * sizeof(*ch->len));
    }
    c->journal_seq = ch->n + 1;
    size_t n = licmon__v1__change__get_packed_size(c);
    ch->v[ch->n] = malloc(n ? n : 1);
    ch->len[ch->n] = licmon__v1__change__pack(c, ch->v[ch->n]);
    ch->n++;
}

static void changes_free(struct changes *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        free(ch->v[i]);
    free(ch->v);
    free(ch->len);
    free(ch->commit_after);
}

static const char *const users[] = {"alice", "bob", "carol@x.example", "d", "\xc3\xa9mile", "zz"};
static const char *const types[] = {"creator", "reviewer", "test_runner", ""};
static const char *const orgs[] = {"acme", "o.2"};
static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"};
#define T0 1792800000000LL /* 2026-10-24 */

/* runs the script (5 bytes a step) through a sessionizer engine */
static void make_changes(const uint8_t *p, size_t n, struct changes *ch)
{
    struct sess_engine *e = sess_engine_new(on_change, ch);
    int64_t ts[2] = {T0, T0}, wall = T0;
    int zone[2] = {0, 0};
    for (; n >= 5; p += 5, n -= 5) {
        uint8_t op = p[0], a = p[1], b = p[2];
        uint16_t d = (uint16_t)(p[3] | p[4] << 8);
        int org = a & 1;
        wall += (b & 15) * 250;
        if ((op & 3) < 2) {
            int64_t dt = (int64_t)d * 1000;
            ts[org] += (a & 0x80) ? -dt / 8 : dt;
            Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
            ev.event_id = "x";
            ev.org = (char *)orgs[org];
            ev.user = (char *)users[(a >> 1) % 6];
            ev.ts_ms = ts[org];
            ev.kind = (Licmon__V1__EventKind)(((op >> 2) & 3) + LICMON__V1__EVENT_KIND__LOGIN);
            ev.license_type = (char *)types[(a >> 4) & 3];
            ev.requested_type = (char *)((op & 0x40) ? types[(b >> 4) & 3] : "");
            /* it arrives when it happens, or later; with bit 7 of b before
             * (a producer's clock ahead: the engine takes it at its arrival) */
            if (!(b & 0x80) && ev.ts_ms > wall)
                wall = ev.ts_ms;
            sess_engine_event(e, &ev, wall);
        } else if ((op & 3) == 2) {
            wall += (int64_t)d * 100;
            sess_engine_tick(e, wall);
        } else {
            Licmon__V1__OrgSettings *st = settings_default(orgs[org]);
            st->user_inactivity_timeout_s = 60 + (d & 0xff) * 60;
            st->license_inactivity_timeout_s = 60 + (d >> 8) * 120;
            st->allowed_lateness_s = (b >> 4) * 30;
            /* a zone change re-derives every hour and day row: one settings
             * step in four makes one (README: it was 3 in 4, the harness's
             * main cost, while the code it runs is the same each time) */
            if ((op & 0x0c) == 0x0c)
                zone[org] = (b >> 2) & 3;
            free(st->timezone);
            st->timezone = strdup(zones[zone[org]]);
            sess_engine_settings(e, st, wall);
            settings_free(&st);
        }
        if (op & 0x80) {
            if (ch->ncommits == ch->capcommits) {
                ch->capcommits = ch->capcommits ? 2 * ch->capcommits : 16;
                ch->commit_after =
                    realloc(ch->commit_after, ch->capcommits * sizeof(*ch->commit_after));
            }
            ch->commit_after[ch->ncommits++] = ch->n;
        }
    }
    sess_engine_free(&e);
}

/* ---- the aggregator ---- */

/* -1 when the aggregator refuses to save (a row it needed was unreadable):
 * nothing is written, as the aggregator exits there */
static int commit(struct agg_app *a, struct fuzz_store *fs)
{
    struct store_batch *b = store_batch_new();
    int rc = agg_app_flush(a, b);
    if (rc == 0)
        fuzz_store_write(fs, b, true);
    store_batch_free(&b);
    return rc;
}

/* a store holding only what the aggregator wrote itself is always readable */
static void commit_own(struct agg_app *a, struct fuzz_store *fs)
{
    if (commit(a, fs) != 0)
        abort();
}

static void date_of(int64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Every query kind over the days the script reached; the packed answers are
 * appended to out (NULL: just asked). */
static void ask_all(struct agg_app *a, int64_t t1, uint8_t **out, size_t *outlen)
{
    static const char *const qtypes[] = {"all", "creator", "reviewer"};
    char from[11], to[11], day0[11];
    date_of(T0, day0);
    date_of(T0 - 86400000LL, from);
    date_of(t1 + 86400000LL, to);
    Licmon__V1__Query qs[64];
    size_t nq = 0;
    for (int o = 0; o < 2; o++) {
        for (int k = LICMON__V1__QUERY_KIND__LICENSES; k <= LICMON__V1__QUERY_KIND__ORGS; k++) {
            if (k == LICMON__V1__QUERY_KIND__CURRENT)
                continue; /* any order, by contract */
            for (int t = 0; t < 3; t++) {
                Licmon__V1__Query *q = &qs[nq++];
                licmon__v1__query__init(q);
                q->kind = (Licmon__V1__QueryKind)k;
                q->org = (char *)orgs[o];
                q->license_type = (char *)qtypes[t];
                q->now_ms = t1;
                q->granularity = LICMON__V1__GRANULARITY__DAY;
                q->from_date = from;
                q->to_date = to;
                q->max_rows = 100000;
                if (k != LICMON__V1__QUERY_KIND__USAGE && k != LICMON__V1__QUERY_KIND__STATS)
                    break;
            }
        }
        for (int g = LICMON__V1__GRANULARITY__HOUR; g <= LICMON__V1__GRANULARITY__MINUTE; g++) {
            Licmon__V1__Query *q = &qs[nq++];
            licmon__v1__query__init(q);
            q->kind = LICMON__V1__QUERY_KIND__USAGE;
            q->org = (char *)orgs[o];
            q->license_type = "all";
            q->granularity = (Licmon__V1__Granularity)g;
            q->date = day0;
            q->hour = 0;
        }
    }
    for (size_t i = 0; i < nq; i++) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        agg_app_query(a, &qs[i], &rep);
        if (out) {
            size_t n = licmon__v1__reply__get_packed_size(&rep);
            *out = realloc(*out, *outlen + n + 1);
            *outlen += licmon__v1__reply__pack(&rep, *out + *outlen);
        }
        agg_app_query_clear(&rep);
    }
}

static void mode_damaged(const uint8_t *p, size_t n)
{
    static const char ns[] = {'O', 'H', 'P', 'R', 'X', 'Y', 'M', 'L'};
    static const char kinds[] = {'d', 'o', 's', 'u', 'm', 'h'};
    struct fuzz_store *fs = &stores[0];
    struct store_batch *b = store_batch_new();
    /* pairs: selector byte, key length, key, value length, value */
    while (n >= 3) {
        uint8_t sel = p[0];
        size_t kl = p[1];
        p += 2, n -= 2;
        if (kl > n)
            kl = n;
        uint8_t key[300];
        size_t k = 0;
        key[k++] = (uint8_t)ns[sel % sizeof(ns)];
        if (key[0] == 'R')
            key[k++] = (uint8_t)kinds[(sel >> 3) % sizeof(kinds)];
        memcpy(key + k, p, kl);
        k += kl;
        p += kl, n -= kl;
        size_t vl = n ? p[0] : 0;
        if (n)
            p++, n--;
        if (vl > n)
            vl = n;
        store_batch_put(b, key, k, p, vl);
        p += vl, n -= vl;
    }
    fuzz_store_write(fs, b, false);
    store_batch_free(&b);
    struct agg_app *a = agg_app_new(fs->st, NULL, NULL, NULL);
    if (agg_app_load(a) >= 0) {
        static const uint8_t script[] = {0x80, 2, 3,    10, 0, 4,   3, 1,    5, 0, 0x83, 0, 4,
                                         1,    1, 0x88, 1,  0, 100, 0, 0x0c, 1, 2, 70,   0};
        struct changes ch = {0};
        make_changes(script, sizeof(script), &ch);
        for (size_t i = 0; i < ch.n; i++)
            agg_app_apply(a, ch.v[i], ch.len[i]);
        commit(a, fs);
        ask_all(a, T0 + 86400000LL, NULL, NULL);
        changes_free(&ch);
    }
    agg_app_free(&a);
}

static void mode_restart(const uint8_t *p, size_t n)
{
    if (n < 1)
        return;
    size_t split_pick = p[0];
    struct changes ch = {0};
    make_changes(p + 1, n - 1, &ch);
    size_t split = ch.n ? split_pick % (ch.n + 1) : 0;
    /* A never stops */
    struct agg_app *a = agg_app_new(stores[0].st, NULL, NULL, NULL);
    for (size_t i = 0, c = 0; i < ch.n; i++) {
        agg_app_apply(a, ch.v[i], ch.len[i]);
        for (; c < ch.ncommits && ch.commit_after[c] <= i + 1; c++)
            commit_own(a, &stores[0]);
    }
    commit_own(a, &stores[0]);
    /* B commits at the commit points up to the split and is killed there:
     * what it applied since its last commit is lost */
    struct agg_app *b = agg_app_new(stores[1].st, NULL, NULL, NULL);
    size_t committed = 0;
    for (size_t i = 0, c = 0; i < split; i++) {
        agg_app_apply(b, ch.v[i], ch.len[i]);
        for (; c < ch.ncommits && ch.commit_after[c] <= i + 1; c++) {
            commit_own(b, &stores[1]);
            committed = i + 1;
        }
    }
    agg_app_free(&b);
    /* C reopens B's store and applies everything after B's last commit */
    b = agg_app_new(stores[1].st, NULL, NULL, NULL);
    if (agg_app_load(b) < 0)
        abort(); /* it cannot read what it wrote itself */
    for (size_t i = committed, c = 0; i < ch.n; i++) {
        agg_app_apply(b, ch.v[i], ch.len[i]);
        for (; c < ch.ncommits && ch.commit_after[c] <= i + 1; c++)
            if (ch.commit_after[c] > committed)
                commit_own(b, &stores[1]);
    }
    commit_own(b, &stores[1]);
    uint8_t *ra = NULL, *rb = NULL;
    size_t la = 0, lb = 0;
    int64_t t1 = T0 + 86400000LL * 3;
    ask_all(a, t1, &ra, &la);
    ask_all(b, t1, &rb, &lb);
    if (la != lb || (la && memcmp(ra, rb, la) != 0))
        abort(); /* a reopened aggregator answers differently */
    free(ra);
    free(rb);
    agg_app_free(&a);
    agg_app_free(&b);
    changes_free(&ch);
}

static void mode_raw(const uint8_t *p, size_t n)
{
    struct agg_app *a = agg_app_new(stores[0].st, NULL, NULL, NULL);
    while (n >= 2) {
        size_t len = (size_t)p[0] | (size_t)(p[1] & 0x0f) << 8;
        p += 2, n -= 2;
        if (len > n)
            len = n;
        agg_app_apply(a, p, len);
        p += len, n -= len;
    }
    commit(a, &stores[0]);
    ask_all(a, T0 + 86400000LL, NULL, NULL);
    agg_app_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    for (int i = 0; i < NSTORES; i++)
        fuzz_store_empty(&stores[i]);
    switch (data[0] % 3) {
    case 0:
        mode_damaged(data + 1, size - 1);
        break;
    case 1:
        mode_restart(data + 1, size - 1);
        break;
    default:
        mode_raw(data + 1, size - 1);
        break;
    }
    return 0;
}
