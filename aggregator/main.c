/* licmon-aggregator: folds session changes into usage numbers (current
 * usage, minute/hour/day rollups), keeps session records, answers the
 * exporter's queries, and publishes usage levels for the alerter. Wiring
 * only: the logic is in agg_*.c (agg_app.c ties it together), delivery and
 * storage come from lib/stage.c. */
#include "agg_app.h"
#include "agg_retention.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "stage.h"
#include "svc.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

struct aggregator {
    struct agg_app *app;
    struct stage *stage;
    struct agg_retention *ret;
    struct prog_clock clock; /* what retention judges by (README: a clock that is wrong) */
    struct metric *m_rows, *m_open, *m_users, *m_late, *m_dropped;
};

/* Publishes the aggregator's clock to the retention filter. */
static void on_clock(void *arg)
{
    struct aggregator *a = arg;
    agg_retention_set_now(a->ret, prog_clock_now(&a->clock));
}

static void emit(void *arg, const ProtobufCMessage *m)
{
    struct aggregator *a = arg;
    stage_emit(a->stage, m);
}

static int apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len)
{
    struct aggregator *a = arg;
    (void)st;
    if (agg_app_apply(a->app, data, len) != 0) {
        log_warn("session change %llu is unreadable; skipped", (unsigned long long)seq);
        return -1;
    }
    return 0;
}

static void flush(void *arg, struct stage *st, struct store_batch *b)
{
    struct aggregator *a = arg;
    (void)st;
    if (agg_app_flush(a->app, b) != 0)
        log_fatal("a row the rollup needed could not be read from the database (see above); "
                  "restarting from the last commit");
}

static void committed(void *arg, struct stage *st)
{
    struct aggregator *a = arg;
    (void)st;
    struct agg_app_stats s;
    agg_app_stats(a->app, &s);
    metric_set(a->m_rows, (int64_t)s.resident_rows);
    metric_set(a->m_open, (int64_t)s.open_minutes);
    metric_set(a->m_users, (int64_t)s.users);
    metric_set(a->m_late, (int64_t)s.late_clamped);
    metric_set(a->m_dropped, (int64_t)s.retention_dropped);
}

static int request(void *arg, struct stage *st, const Licmon__V1__Request *req,
                   const struct zsock_env *env)
{
    struct aggregator *a = arg;
    if (req->body_case != LICMON__V1__REQUEST__BODY_QUERY)
        return -1;
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    rep.id = req->id;
    agg_app_query(a->app, req->query, &rep);
    if (rep.body_case == LICMON__V1__REPLY__BODY_QUERY && rep.query)
        rep.query->applied_journal_seq = stage_applied_journal_seq(st);
    stage_reply(st, env, &rep);
    agg_app_query_clear(&rep);
    return 0;
}

int main(int argc, char **argv)
{
    struct prog_common common;
    char *upstream, *internal, *db;
    int64_t backlog_mb;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_AGGREGATOR"),
        CONF_STR("upstream", "LICMON_AGGREGATOR_UPSTREAM", "",
                 "sessionizer's internal endpoint (default ipc://DIR/run/sessionizer.sock)",
                 &upstream),
        CONF_STR("internal", "LICMON_AGGREGATOR_INTERNAL", "",
                 "internal endpoint: queries and the usage log (default "
                 "ipc://DIR/run/aggregator.sock)",
                 &internal),
        CONF_STR("db", "LICMON_AGGREGATOR_DB", "", "database folder (default DIR/data/aggregator)",
                 &db),
        STAGE_BACKLOG_OPT("LICMON_AGGREGATOR", "alerter", &backlog_mb),
        CONF_END,
    };
    conf_parse("licmon-aggregator", "Usage rollups, session records and the query service.", opts,
               argc, argv, 1, NULL, NULL);
    prog_start("aggregator", &common);
    prog_default_endpoint(&upstream, common.dir, "sessionizer");
    prog_default_endpoint(&internal, common.dir, "aggregator");
    prog_default_db(&db, common.dir, "aggregator");
    /* the filter keeps everything until the settings are loaded and published */
    struct aggregator a = {0};
    struct agg_retention *ret = a.ret = agg_retention_new();
    struct store *store = store_open_expiring(db, agg_retention_filter, ret);
    if (!store)
        log_fatal("cannot open the database %s", db);
    prog_clock_resume(&a.clock, "aggregator", store);
    on_clock(&a);
    a.app = agg_app_new(store, ret, emit, &a);
    long restored = agg_app_load(a.app);
    if (restored < 0)
        log_fatal("cannot restore the saved state");
    log_info("restored %ld saved states", restored);
    a.m_rows =
        metric_gauge("licmon_aggregator_resident_rows", "minute, hour and day rows held in memory");
    a.m_open = metric_gauge("licmon_aggregator_open_minutes",
                            "minutes still open to out-of-order changes");
    a.m_users = metric_gauge("licmon_aggregator_users", "users whose counting state is kept");
    a.m_late = metric_gauge("licmon_aggregator_late_clamped",
                            "changes older than the watermark, counted at it");
    a.m_dropped = metric_gauge("licmon_aggregator_retention_dropped",
                               "keys dropped by retention since start");

    static const char *const consumers[] = {"alerter", NULL};
    struct stage_config cfg = {
        .program = "aggregator",
        .upstream = upstream,
        .listen = internal,
        .consumers = consumers,
        .upstream_chunked = true,
        .fetch_max = 64,
        .max_backlog_bytes = (uint64_t)backlog_mb << 20,
    };
    struct stage_ops ops = {
        .apply = apply, .flush = flush, .committed = committed, .request = request, .arg = &a};
    struct svc *svc = svc_new();
    a.stage = stage_new(&cfg, &ops, svc, store);
    svc_every(svc, 1000, on_clock, &a);
    health_set_ready(true);
    svc_run(svc);

    health_set_ready(false);
    stage_free(&a.stage);
    agg_app_free(&a.app);
    prog_finish(&store, &svc, opts);
    agg_retention_free(&ret); /* the store's compaction filter read it until now */
    return 0;
}
