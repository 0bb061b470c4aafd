/* libFuzzer harness: `licmonctl flexlm`'s reader of FlexLM debug logs
 * (tools/licmonctl/flexlm.c) on any bytes. The first byte picks the
 * options (zone, heartbeat, a type map, only mapped features); the rest is
 * the log, cut into two files at a point the second byte picks. Checked on
 * every event: ingest's validation takes it, its id is new, time
 * never goes back, a seat is taken only when free and given back or kept
 * alive only when held; and at the end the seats still held are the ones
 * the summary says. And the log cut short in its second file, at a point
 * the third byte picks (a log before it grew, maybe in the middle of a
 * line), says nothing the whole log contradicts: each of its events is one
 * of the whole's, id, kind and time alike, in the same place before its
 * last instant. */
#include "../../ingest/ingest_validate.h"
#include "../../tools/licmonctl/flexlm.c"

#include <stdint.h>
#include <stdlib.h>

struct fz_event {
    char id[36];
    int kind;
    int64_t ms;
};

struct fz_check {
    struct hmap *ids;
    struct hmap *held; /* user -> (void *)1 */
    int64_t last_ms;
    struct fz_event *ev;
    size_t nev, cap;
};

static void fz_emit(void *arg, const Licmon__V1__Event *ev)
{
    struct fz_check *c = arg;
    char reason[200];
    if (ingest_validate_event(ev, ev->ts_ms, ev->ts_ms, 400, reason, sizeof(reason)) ||
        hmap_gets(c->ids, ev->event_id) || ev->ts_ms < c->last_ms || strlen(ev->event_id) != 35)
        abort();
    hmap_puts(c->ids, ev->event_id, (void *)1);
    c->last_ms = ev->ts_ms;
    if (c->nev == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->ev = xrealloc(c->ev, c->cap * sizeof(*c->ev));
    }
    struct fz_event *e = &c->ev[c->nev++];
    memcpy(e->id, ev->event_id, 36);
    e->kind = ev->kind;
    e->ms = ev->ts_ms;
    bool held = hmap_gets(c->held, ev->user) != NULL;
    switch (ev->kind) {
    case LICMON__V1__EVENT_KIND__LOGIN:
        if (held || !settings_valid_type(ev->license_type))
            abort();
        hmap_puts(c->held, ev->user, (void *)1);
        break;
    case LICMON__V1__EVENT_KIND__ACTIVITY:
        if (!held || !settings_valid_type(ev->license_type))
            abort();
        break;
    case LICMON__V1__EVENT_KIND__LOGOUT:
        if (!held)
            abort();
        hmap_dels(c->held, ev->user);
        break;
    case LICMON__V1__EVENT_KIND__DENIED:
        if (!settings_valid_type(ev->license_type))
            abort();
        break;
    default:
        abort();
    }
}

static void fz_warn(void *arg, const char *file, uint32_t line, const char *reason)
{
    (void)arg;
    if (!file || line == 0 || !*reason)
        abort();
}

/* Converts log[0, split) and log[split, len) as two files; 0 and the
 * run's last instant, or -1. */
static int fz_run(const struct flexlm_cfg *cfg, const uint8_t *log, size_t split, size_t len,
                  struct fz_check *c, int64_t *last_ms)
{
    char err[300];
    struct flexlm *f = flexlm_new(cfg, err, sizeof(err));
    if (!f)
        abort();
    flexlm_add(f, "a.log", xmemdup(log, split), split);
    flexlm_add(f, "b.log", xmemdup(log + split, len - split), len - split);
    *c = (struct fz_check){hmap_new(), hmap_new(), INT64_MIN, NULL, 0, 0};
    int rc = flexlm_run(f, fz_emit, fz_warn, c, err, sizeof(err));
    if (rc == 0) {
        const struct flexlm_stats *st = flexlm_stats(f);
        if (hmap_count(c->held) != st->open_at_end || c->nev != st->events)
            abort();
        *last_ms = st->last_ms;
    } else if (c->nev != 0 || !*err) {
        abort();
    }
    flexlm_free(&f);
    return rc;
}

static void fz_check_free(struct fz_check *c)
{
    hmap_free(&c->ids, NULL);
    hmap_free(&c->held, NULL);
    free(c->ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const char *const zones[] = {"Europe/Madrid", "UTC", "America/New_York",
                                        "Australia/Lord_Howe"};
    static const int64_t beats[] = {3600000, 0, 21600000, 0}; /* few: a day is many lines */
    uint8_t o = data[0];
    struct flexlm_cfg cfg = {"fz",         zones[o & 3],
                             "fz",         (o & 4) ? "MATLAB=matlab, Maple = m" : NULL,
                             (o & 8) != 0, beats[(o >> 4) & 3]};
    const uint8_t *log = data + 3;
    size_t len = size - 3;
    size_t split = len ? data[1] * len / 256 : 0;       /* where b.log begins */
    size_t cut = split + (len - split) * data[2] / 256; /* where the shorter b.log ends */
    struct fz_check whole, part;
    int64_t last_whole, last_part;
    int rc_whole = fz_run(&cfg, log, split, len, &whole, &last_whole);
    int rc_part = fz_run(&cfg, log, split, cut, &part, &last_part);
    /* the log sent again grown agrees with what it said before: each event
     * of the shorter log is one of the whole, in the same place before its
     * last instant */
    if (rc_whole == 0 && rc_part == 0) {
        struct hmap *at = hmap_new(); /* id -> index + 1 in the whole */
        for (size_t i = 0; i < whole.nev; i++)
            hmap_puts(at, whole.ev[i].id, (void *)(uintptr_t)(i + 1));
        for (size_t i = 0; i < part.nev; i++) {
            uintptr_t j = (uintptr_t)hmap_gets(at, part.ev[i].id);
            if (!j || whole.ev[j - 1].kind != part.ev[i].kind ||
                whole.ev[j - 1].ms != part.ev[i].ms || (part.ev[i].ms < last_part && j != i + 1))
                abort();
        }
        hmap_free(&at, NULL);
    }
    fz_check_free(&whole);
    fz_check_free(&part);
    return 0;
}
