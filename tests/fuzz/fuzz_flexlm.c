/* libFuzzer harness: `licmonctl flexlm`'s reader of FlexLM debug logs
 * (tools/licmonctl/flexlm.c) on any bytes. The first byte picks the
 * options (zone, heartbeat, a type map, only mapped features); the rest is
 * the log, cut into two files at a point the second byte picks. Checked on
 * every event: ingest's validation takes it, its id is new, time
 * never goes back, a seat is taken only when free and given back or kept
 * alive only when held; and at the end the seats still held are the ones
 * the summary says. */
#include "../../ingest/ingest_validate.h"
#include "../../tools/licmonctl/flexlm.c"

#include <stdint.h>
#include <stdlib.h>

struct fz_check {
    struct hmap *ids;
    struct hmap *held; /* user -> (void *)1 */
    int64_t last_ms;
};

static void fz_emit(void *arg, const Licmon__V1__Event *ev)
{
    struct fz_check *c = arg;
    char reason[200];
    if (ingest_validate_event(ev, ev->ts_ms, ev->ts_ms, 400, reason, sizeof(reason)) ||
        hmap_gets(c->ids, ev->event_id) || ev->ts_ms < c->last_ms)
        abort();
    hmap_puts(c->ids, ev->event_id, (void *)1);
    c->last_ms = ev->ts_ms;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char *const zones[] = {"Europe/Madrid", "UTC", "America/New_York",
                                        "Australia/Lord_Howe"};
    static const int64_t beats[] = {3600000, 0, 21600000, 0}; /* few: a day is many lines */
    uint8_t o = data[0];
    struct flexlm_cfg cfg = {"fz",         zones[o & 3],
                             "fz",         (o & 4) ? "MATLAB=matlab, Maple = m" : NULL,
                             (o & 8) != 0, beats[(o >> 4) & 3]};
    char err[300];
    struct flexlm *f = flexlm_new(&cfg, err, sizeof(err));
    if (!f)
        abort();
    size_t cut = size > 2 ? data[1] % (size - 1) : 0;
    const uint8_t *log = data + 2;
    size_t len = size - 2;
    if (cut > len)
        cut = len;
    flexlm_add(f, "a.log", xmemdup(log, cut), cut);
    flexlm_add(f, "b.log", xmemdup(log + cut, len - cut), len - cut);
    struct fz_check c = {hmap_new(), hmap_new(), INT64_MIN};
    if (flexlm_run(f, fz_emit, fz_warn, &c, err, sizeof(err)) == 0) {
        const struct flexlm_stats *st = flexlm_stats(f);
        if (hmap_count(c.held) != st->open_at_end || hmap_count(c.ids) != st->events)
            abort();
    } else if (hmap_count(c.ids) != 0) {
        abort();
    }
    hmap_free(&c.ids, NULL);
    hmap_free(&c.held, NULL);
    flexlm_free(&f);
    return 0;
}
