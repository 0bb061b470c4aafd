/* licmon-alerter: reads the aggregator's usage levels and settings; the
 * threshold and expiry notifications are built on this stage (issue 7).
 * Wiring only. */
#include "health.h"
#include "log.h"
#include "prog.h"
#include "stage.h"
#include "xmem.h"

#include <stdlib.h>

static int apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)arg, (void)st;
    Licmon__V1__UsageUpdate *u = licmon__v1__usage_update__unpack(NULL, len, data);
    if (!u) {
        log_warn("usage update %llu is unreadable; skipped", (unsigned long long)seq);
        return -1;
    }
    PB_FREE(usage_update, u);
    return 0;
}

int main(int argc, char **argv)
{
    struct prog_common common;
    char *upstream, *internal, *db;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_ALERTER"),
        CONF_STR("upstream", "LICMON_ALERTER_UPSTREAM", "",
                 "aggregator's internal endpoint (default ipc://DIR/run/aggregator.sock)",
                 &upstream),
        CONF_STR("internal", "LICMON_ALERTER_INTERNAL", "",
                 "internal endpoint (default ipc://DIR/run/alerter.sock)", &internal),
        CONF_STR("db", "LICMON_ALERTER_DB", "", "database folder (default DIR/data/alerter)", &db),
        CONF_END,
    };
    conf_parse("licmon-alerter", "Threshold and expiry notifications.", opts, argc, argv, 1, NULL,
               NULL);
    prog_start("alerter", &common);
    if (!*upstream) {
        free(upstream);
        upstream = prog_endpoint(common.dir, "aggregator");
    }
    if (!*internal) {
        free(internal);
        internal = prog_endpoint(common.dir, "alerter");
    }
    if (!*db) {
        free(db);
        db = prog_db_path(common.dir, "alerter");
    }
    struct store *store = store_open(db);
    if (!store)
        log_fatal("cannot open the database %s", db);
    struct stage_config cfg = {
        .program = "alerter", .upstream = upstream, .listen = internal, .fetch_max = 4096};
    struct stage_ops ops = {.apply = apply};
    struct svc *svc = svc_new();
    struct stage *stage = stage_new(&cfg, &ops, svc, store);
    health_set_ready(true);
    svc_run(svc);

    health_set_ready(false);
    stage_free(&stage);
    svc_free(&svc);
    zsock_ctx_term();
    store_close(&store);
    health_stop();
    free(upstream);
    free(internal);
    free(db);
    conf_free(opts);
    log_info("stopped");
    return 0;
}
