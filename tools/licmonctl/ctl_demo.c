/* ctl_demo: `licmonctl demo-feed`, the live event stream of `up --demo`.
 * On first start it sets the demo org's settings through ingest and
 * backfills 30 days of history; then it follows the traffic model
 * (ctl_model.c) in real time. The model is a function of its origin, kept
 * in DIR/data/demo-feed.state with the time of the last acknowledged event:
 * a restarted feed replays the model silently up to there and resends the
 * last minutes (ingest drops those as duplicates), so nothing is lost and
 * the pipeline and the model agree about who holds a seat. */
#include "ctl.h"
#include "conf.h"
#include "log.h"
#include "prog.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_DAY_MS 86400000LL
#define DEMO_BACKFILL_DAYS 30
#define DEMO_RESEND_MS (10 * 60000LL)
#define DEMO_BATCH 5000
#define DEMO_STATE_EVERY_MS 60000

struct demo_feed {
    char *dir;
    char *state_path, *done_path;
    int64_t origin_ms, sent_ms;
    uint64_t rejected;
};

static int demo_state_read(struct demo_feed *f)
{
    FILE *fp = fopen(f->state_path, "r");
    if (!fp)
        return -1;
    long long origin, sent;
    int n = fscanf(fp, "%lld %lld", &origin, &sent);
    fclose(fp);
    if (n != 2 || origin <= 0 || sent < origin)
        return -1;
    f->origin_ms = origin;
    f->sent_ms = sent;
    return 0;
}

static void demo_state_write(const struct demo_feed *f)
{
    char *tmp = xasprintf("%s.tmp", f->state_path);
    FILE *fp = fopen(tmp, "w");
    if (fp) {
        fprintf(fp, "%lld %lld\n", (long long)f->origin_ms, (long long)f->sent_ms);
        if (fclose(fp) == 0 && rename(tmp, f->state_path) == 0) {
            free(tmp);
            return;
        }
    }
    log_warn("cannot write %s: %s", f->state_path, strerror(errno));
    unlink(tmp);
    free(tmp);
}

/* The demo org's settings, with expiry dates counted from the backfill's end. */
static Licmon__V1__OrgSettings *demo_settings(int64_t origin_ms)
{
    int64_t today = origin_ms / DEMO_DAY_MS + DEMO_BACKFILL_DAYS;
    json_t *licenses = json_array();
    for (int i = 0; i < DEMO_NTYPES; i++) {
        const struct demo_license *l = &demo_licenses[i];
        json_t *o = json_pack("{s:s, s:s, s:i}", "type", l->type, "model",
                              l->floating ? "floating" : "named", "owned", l->owned);
        if (l->threshold_pct)
            json_object_set_new(o, "threshold_pct", json_integer(l->threshold_pct));
        if (l->expires_in_days) {
            char date[16];
            time_format_date(today + l->expires_in_days, date, sizeof(date));
            json_object_set_new(o, "expires", json_string(date));
        }
        json_array_append_new(licenses, o);
    }
    json_t *obj =
        json_pack("{s:s, s:i, s:[s], s:[s,s], s:o}", "timezone", DEMO_TZ,
                  "user_inactivity_timeout_s", DEMO_USER_TIMEOUT_S, "notify_emails",
                  "admin@demo.example", "integrations", "Jira", "Salesforce", "licenses", licenses);
    Licmon__V1__OrgSettings *base = settings_default(DEMO_ORG);
    char err[256];
    Licmon__V1__OrgSettings *s = settings_merge_json(base, obj, err, sizeof(err));
    if (!s)
        log_panic("the demo settings do not validate: %s", err);
    settings_free(&base);
    json_decref(obj);
    return s;
}

/* Journals the demo settings through ingest, asking until it answers. */
static void demo_put_settings(const struct demo_feed *f)
{
    Licmon__V1__OrgSettings *s = demo_settings(f->origin_ms);
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    req.body_case = LICMON__V1__REQUEST__BODY_PUT_SETTINGS;
    req.put_settings = s;
    char *ep = prog_endpoint(f->dir, "ingest");
    struct ctl_req r;
    ctl_req_init(&r, ep);
    for (int attempt = 1;; attempt++) {
        Licmon__V1__Reply *rep = ctl_req_call(&r, &req, 2000);
        if (rep) {
            if (rep->error && *rep->error)
                log_warn_ctx("org", DEMO_ORG, "ingest refused the demo settings: %s", rep->error);
            else
                log_info_ctx("org", DEMO_ORG, "settings journaled at seq %llu",
                             (unsigned long long)rep->journaled_seq);
            PB_FREE(reply, rep);
            break;
        }
        if (attempt % 10 == 1)
            log_info("waiting for ingest at %s", ep);
    }
    ctl_req_close(&r);
    free(ep);
    settings_free(&s);
}

static void demo_on_reject(void *arg, const struct ctl_src *src, const char *reason)
{
    struct demo_feed *f = arg;
    (void)src;
    f->rejected++;
    log_warn_ctx("org", DEMO_ORG, "ingest rejected a demo event: %s", reason);
}

static void demo_on_refused(void *arg, const struct ctl_batch *b, const char *error)
{
    (void)arg;
    log_warn_ctx("org", DEMO_ORG, "ingest refused a batch of %zu demo events: %s", b->n, error);
}

static void demo_on_retry(void *arg, int attempt, int retries)
{
    (void)arg;
    (void)retries;
    if (attempt == 1 || attempt % 12 == 0)
        log_warn("no acknowledgement from ingest; resending (attempt %d)", attempt);
}

static Licmon__V1__Event *demo_to_event(const struct demo_event *d)
{
    Licmon__V1__Event *ev = xmalloc(sizeof(*ev));
    licmon__v1__event__init(ev);
    ev->event_id = xstrdup(d->event_id);
    ev->org = xstrdup(DEMO_ORG);
    ev->user = xstrdup(d->user_name);
    ev->ts_ms = d->ts_ms;
    ev->kind = d->kind;
    if (d->license_type)
        ev->license_type = xstrdup(d->license_type);
    if (d->requested_type)
        ev->requested_type = xstrdup(d->requested_type);
    return ev;
}

int ctl_demo_main(int argc, char **argv)
{
    char *dir, *level;
    struct conf_opt opts[] = {
        CONF_STR("dir", "LICMON_DIR", "./licmon-run", "stack folder", &dir),
        CONF_STR("log-level", "LICMON_LOG_LEVEL", "info", "debug, info or warn", &level), CONF_END};
    conf_parse("licmonctl demo-feed",
               "licmonctl demo-feed --dir DIR   (internal: run by `licmonctl up --demo`)\n"
               "Sets up org \"demo\", backfills 30 days of history once, then streams live\n"
               "events to the stack's ingest until stopped.",
               opts, argc, argv, 2, NULL, NULL);
    log_init("licmon-demo-feed");
    if (log_level_parse(level) < 0) {
        fprintf(stderr, "licmonctl demo-feed: --log-level: '%s' is not debug, info or warn\n",
                level);
        conf_free(opts);
        return CTL_EXIT_USAGE;
    }
    log_set_level((enum log_level)log_level_parse(level));
    struct demo_feed f = {.dir = ctl_abspath(dir)};
    char *data = xasprintf("%s/data", f.dir);
    prog_mkdirs(data);
    free(data);
    f.state_path = xasprintf("%s/data/demo-feed.state", f.dir);
    f.done_path = xasprintf("%s/data/demo-feed.done", f.dir);
    int64_t now = time_now_ms();
    if (demo_state_read(&f) != 0) {
        f.origin_ms = (now / DEMO_DAY_MS - DEMO_BACKFILL_DAYS) * DEMO_DAY_MS;
        f.sent_ms = f.origin_ms;
        demo_state_write(&f);
    }
    bool done = access(f.done_path, F_OK) == 0;
    if (!done)
        demo_put_settings(&f);

    int64_t resume = f.sent_ms - DEMO_RESEND_MS;
    if (resume < now - (DEMO_BACKFILL_DAYS + 1) * DEMO_DAY_MS)
        resume = now - (DEMO_BACKFILL_DAYS + 1) * DEMO_DAY_MS;
    log_info_ctx("org", DEMO_ORG, "%s from %lld (model origin %lld)",
                 done ? "resuming the live stream" : "backfilling history", (long long)resume,
                 (long long)f.origin_ms);

    char *ep = prog_endpoint(f.dir, "ingest-producer");
    /* one batch in flight: a resend can never reorder the stream */
    struct ctl_sender_cfg cfg = {.endpoint = ep,
                                 .timeout_ms = 5000,
                                 .retries = -1,
                                 .window = 1,
                                 .on_reject = demo_on_reject,
                                 .on_refused = demo_on_refused,
                                 .on_retry = demo_on_retry,
                                 .arg = &f};
    struct ctl_sender *snd = ctl_sender_new(&cfg);
    if (!snd)
        log_fatal("cannot open a socket to %s", ep);
    static struct demo_model m;
    demo_model_init(&m, f.origin_ms);
    struct ctl_batch b;
    ctl_batch_init(&b, DEMO_BATCH, 0);
    struct demo_event ev;
    uint64_t sent = 0;
    int64_t last_ts = 0, state_at = 0;
    for (;;) {
        now = time_now_ms();
        bool due = true;
        while (!ctl_batch_full(&b) && (due = demo_model_step(&m, now, &ev)))
            if (ev.ts_ms >= resume) {
                ctl_batch_add(&b, demo_to_event(&ev), (struct ctl_src){0, 0, false});
                last_ts = ev.ts_ms;
            }
        if (b.n > 0) {
            size_t n = b.n;
            if (ctl_sender_submit(snd, &b) != 0 || ctl_sender_flush(snd) != 0)
                log_fatal("cannot deliver to %s", ep); /* not reached with retries -1 */
            sent += n;
            f.sent_ms = last_ts;
            if (!done || time_mono_ms() - state_at >= DEMO_STATE_EVERY_MS) {
                demo_state_write(&f);
                state_at = time_mono_ms();
            }
            if (!done && sent / 50000 != (sent - n) / 50000)
                log_info_ctx("org", DEMO_ORG, "backfill: %llu events sent",
                             (unsigned long long)sent);
        }
        if (due)
            continue;
        if (!done) {
            FILE *fp = fopen(f.done_path, "w");
            if (fp)
                fclose(fp);
            else
                log_warn("cannot create %s: %s", f.done_path, strerror(errno));
            done = true;
            const struct ctl_totals *t = ctl_sender_totals(snd);
            log_info_ctx("org", DEMO_ORG,
                         "backfill done: %llu events (accepted %llu, duplicate %llu, rejected "
                         "%llu); streaming live",
                         (unsigned long long)sent, (unsigned long long)t->accepted,
                         (unsigned long long)t->duplicate, (unsigned long long)t->rejected);
        }
        int64_t wait = demo_model_next_ms(&m) - time_now_ms();
        if (wait > 1000)
            wait = 1000;
        if (wait > 0)
            usleep((useconds_t)wait * 1000);
    }
}
