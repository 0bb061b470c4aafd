/* libFuzzer harness: the sessionizer's saved state (sessionizer/sess_codec.c
 * through sess_engine_load) and the promise that makes a kill -9 of the
 * sessionizer harmless: restoring what sess_engine_save_dirty wrote gives
 * an engine that goes on exactly like one that never stopped.
 *
 * The first byte picks a mode:
 *   0: the rest is (key, value) pairs handed to sess_engine_load as a
 *      damaged database would (each must be rejected or taken whole), then
 *      a few inputs run over whatever was restored;
 *   1: the rest is a script of journal inputs (events, ticks, settings
 *      changes) with commit points; engine A runs it all, engine B runs it
 *      up to a split point committing into a fake store, engine C is
 *      restored from that store and runs the rest: C must emit exactly what
 *      A emitted after the split (a difference aborts);
 *   2: like 1 up to the store, whose values are then damaged at positions
 *      the input names before C loads them (C must not crash).
 */
#include "../../sessionizer/sess_engine.h"
#include "keys.h"
#include "log.h"
#include "settings.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct kv {
    uint8_t *k, *v;
    size_t kl, vl;
};

struct fake_store {
    struct kv *e;
    size_t n, cap;
};

static void fs_put(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct fake_store *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].kl == klen && !memcmp(s->e[i].k, key, klen)) {
            free(s->e[i].v);
            if (!val) {
                free(s->e[i].k);
                s->e[i] = s->e[--s->n];
                return;
            }
            s->e[i].v = malloc(vlen ? vlen : 1);
            memcpy(s->e[i].v, val, vlen);
            s->e[i].vl = vlen;
            return;
        }
    if (!val)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->e = realloc(s->e, s->cap * sizeof(*s->e));
    }
    struct kv *e = &s->e[s->n++];
    e->k = malloc(klen);
    memcpy(e->k, key, klen);
    e->kl = klen;
    e->v = malloc(vlen ? vlen : 1);
    memcpy(e->v, val, vlen);
    e->vl = vlen;
}

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    size_t n = x->kl < y->kl ? x->kl : y->kl;
    int c = memcmp(x->k, y->k, n);
    return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

static void fs_free(struct fake_store *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].k);
        free(s->e[i].v);
    }
    free(s->e);
    memset(s, 0, sizeof(*s));
}

/* restores an engine from the store in key order, as the sessionizer's
 * loader does (RocksDB iterates keys bytewise) */
static void fs_load(struct fake_store *s, struct sess_engine *e)
{
    if (s->n)
        qsort(s->e, s->n, sizeof(*s->e), kv_cmp);
    for (size_t i = 0; i < s->n; i++)
        sess_engine_load(e, s->e[i].k, s->e[i].kl, s->e[i].v, s->e[i].vl);
}

struct out {
    uint8_t *buf;
    size_t len, cap;
    int on;
};

static void on_change(void *arg, Licmon__V1__Change *c)
{
    struct out *o = arg;
    if (!o->on)
        return;
    size_t n = licmon__v1__change__get_packed_size(c);
    if (o->len + n + 4 > o->cap) {
        o->cap = (o->len + n + 4) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    o->buf[o->len++] = (uint8_t)(n >> 8);
    o->buf[o->len++] = (uint8_t)n;
    o->len += licmon__v1__change__pack(c, o->buf + o->len);
}

/* ---- the script: 5 bytes per step ---- */

static const char *const users[] = {"alice", "bob", "carol@x.example", "d", "\xc3\xa9mile", "zz"};
static const char *const types[] = {"creator", "reviewer", "test_runner_of_the_longest_name_", ""};
static const char *const orgs[] = {"acme", "o.2"};

struct step {
    uint8_t op, a, b;
    uint16_t d;
};

struct runner {
    int64_t ts[2], wall;
};

/* Applies one step to e; returns 1 when it is a commit point. */
static int run_step(struct sess_engine *e, struct runner *r, const struct step *s)
{
    int org = s->a & 1;
    r->wall += (s->b & 15) * 250;
    switch (s->op & 3) {
    case 0:
    case 1: {
        /* an event: mostly forward in time, sometimes behind */
        int64_t dt = (int64_t)s->d * 1000;
        if (s->a & 0x80)
            r->ts[org] -= dt / 8;
        else
            r->ts[org] += dt;
        Licmon__V1__Event ev = LICMON__V1__EVENT__INIT;
        ev.event_id = "x";
        ev.org = (char *)orgs[org];
        ev.user = (char *)users[(s->a >> 1) % 6];
        ev.ts_ms = r->ts[org];
        ev.kind = (Licmon__V1__EventKind)(((s->op >> 2) & 3) + LICMON__V1__EVENT_KIND__LOGIN);
        ev.license_type = (char *)types[(s->a >> 4) & 3];
        ev.requested_type = (char *)((s->op & 0x40) ? types[(s->b >> 4) & 3] : "");
        /* it arrives when it happens, or later (behind); with bit 7 of b
         * before (a producer's clock ahead: taken at its arrival) */
        if (!(s->b & 0x80) && ev.ts_ms > r->wall)
            r->wall = ev.ts_ms;
        sess_engine_event(e, &ev, r->wall);
        break;
    }
    case 2:
        r->wall += (int64_t)s->d * 100;
        sess_engine_tick(e, r->wall);
        break;
    case 3: {
        Licmon__V1__OrgSettings *st = settings_default(orgs[org]);
        st->user_inactivity_timeout_s = 60 + (s->d & 0xff) * 60;
        st->license_inactivity_timeout_s = 60 + (s->d >> 8) * 120;
        st->allowed_lateness_s = (s->b >> 4) * 30;
        st->inactivity_logout_releases_license = (s->op >> 2) & 1;
        sess_engine_settings(e, st, r->wall);
        settings_free(&st);
        break;
    }
    }
    return (s->op & 0x80) != 0;
}

static size_t parse_steps(const uint8_t *p, size_t n, struct step *out, size_t max)
{
    size_t k = 0;
    for (; n >= 5 && k < max; p += 5, n -= 5)
        out[k++] = (struct step){p[0], p[1], p[2], (uint16_t)(p[3] | p[4] << 8)};
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_PANIC);
    return 0;
}

static void mode_load(const uint8_t *p, size_t n)
{
    struct sess_engine *e = sess_engine_new(NULL, NULL);
    /* pairs: klen (1 byte), key, vlen (1 byte), value */
    while (n >= 2) {
        size_t kl = p[0];
        if (kl + 1 > n)
            break;
        const uint8_t *k = p + 1;
        p += 1 + kl, n -= 1 + kl;
        if (n < 1)
            break;
        size_t vl = p[0];
        if (vl + 1 > n)
            vl = n - 1;
        sess_engine_load(e, k, kl, p + 1, vl);
        p += 1 + vl, n -= 1 + vl;
    }
    struct runner r = {{1700000000000LL, 1700000000000LL}, 1700000000000LL};
    static const struct step tail[] = {{0, 2, 3, 10},  {4, 3, 1, 5},     {2, 0, 0, 50000},
                                       {8, 0, 0, 100}, {0x0c, 1, 2, 70}, {2, 1, 0, 65000}};
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
        run_step(e, &r, &tail[i]);
    struct fake_store s = {0};
    sess_engine_save_dirty(e, fs_put, &s);
    fs_free(&s);
    sess_engine_free(&e);
}

static void mode_split(const uint8_t *p, size_t n, int damage)
{
    if (n < 2)
        return;
    size_t split_at = p[0], ndamage = damage ? p[1] % 8 : 0;
    p += 2, n -= 2;
    const uint8_t *dmg = p;
    if (n < ndamage * 3)
        return;
    p += ndamage * 3, n -= ndamage * 3;
    struct step steps[400];
    size_t ns = parse_steps(p, n, steps, 400);
    if (ns == 0)
        return;
    split_at %= ns + 1;

    struct out oa = {0}, oc = {0};
    struct sess_engine *a = sess_engine_new(on_change, &oa);
    struct sess_engine *b = sess_engine_new(NULL, NULL);
    struct runner ra = {{1700000000000LL, 1700000000000LL}, 1700000000000LL}, rb = ra;
    struct fake_store st = {0};
    for (size_t i = 0; i < split_at; i++) {
        run_step(a, &ra, &steps[i]);
        if (run_step(b, &rb, &steps[i]))
            sess_engine_save_dirty(b, fs_put, &st);
    }
    sess_engine_save_dirty(b, fs_put, &st);
    sess_engine_free(&b);
    for (size_t i = 0; i < ndamage && st.n; i++) {
        struct kv *e = &st.e[dmg[3 * i] % st.n];
        if (e->vl)
            e->v[dmg[3 * i + 1] % e->vl] ^= dmg[3 * i + 2] ? dmg[3 * i + 2] : 1;
    }
    struct sess_engine *c = sess_engine_new(on_change, &oc);
    fs_load(&st, c);
    fs_free(&st);
    oa.on = oc.on = 1;
    for (size_t i = split_at; i < ns; i++) {
        run_step(a, &ra, &steps[i]);
        run_step(c, &rb, &steps[i]);
    }
    if (!damage && (oa.len != oc.len || (oa.len && memcmp(oa.buf, oc.buf, oa.len) != 0)))
        abort(); /* a restored sessionizer does not go on like the one that stopped */
    struct fake_store sink = {0};
    sess_engine_save_dirty(a, fs_put, &sink);
    fs_free(&sink);
    sess_engine_save_dirty(c, fs_put, &sink);
    fs_free(&sink);
    sess_engine_free(&a);
    sess_engine_free(&c);
    free(oa.buf);
    free(oc.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        mode_load(data + 1, size - 1);
        break;
    case 1:
        mode_split(data + 1, size - 1, 0);
        break;
    default:
        mode_split(data + 1, size - 1, 1);
        break;
    }
    return 0;
}
