/* licmon-alerter: reads the aggregator's usage levels and settings, sends
 * threshold notifications and expiry reminders by email and webhook through
 * a durable outbox. Wiring only: logic in alert_*.c, delivery and storage of
 * the upstream position from lib/stage.c. */
#include "alert_message.h"
#include "alert_notify.h"
#include "alert_outbox.h"
#include "alert_run.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "stage.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>

#define DRAIN_MS 2000

int main(int argc, char **argv)
{
    struct prog_common common;
    char *upstream, *internal, *db, *smtp_url, *smtp_from, *smtp_user, *smtp_password, *public_url;
    int64_t retry_min, retry_max, send_timeout, max_inflight, keep_days, expiry_check, now_offset,
        max_age;
    bool public_only;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_ALERTER"),
        CONF_STR("upstream", "LICMON_ALERTER_UPSTREAM", "",
                 "aggregator's internal endpoint (default ipc://DIR/run/aggregator.sock)",
                 &upstream),
        CONF_STR("internal", "LICMON_ALERTER_INTERNAL", "",
                 "internal endpoint (default ipc://DIR/run/alerter.sock)", &internal),
        CONF_STR("db", "LICMON_ALERTER_DB", "", "database folder (default DIR/data/alerter)", &db),
        CONF_STR("smtp-url", "LICMON_SMTP_URL", "",
                 "mail server, smtp://host:port (STARTTLS when offered) or smtps://host:port; "
                 "empty: emails wait in the outbox",
                 &smtp_url),
        CONF_STR("smtp-from", "LICMON_SMTP_FROM", "licmon@localhost",
                 "sender address, or \"Name <addr>\" (printable ASCII)", &smtp_from),
        CONF_STR("smtp-user", "LICMON_SMTP_USER", "", "mail server login (empty: none)",
                 &smtp_user),
        CONF_STR("smtp-password", "LICMON_SMTP_PASSWORD", "",
                 "mail server password (prefer the environment variable)", &smtp_password),
        CONF_STR("public-url", "LICMON_PUBLIC_URL", "http://localhost:8080",
                 "dashboard address put into notifications (empty: no link)", &public_url),
        CONF_INT("retry-min-ms", "LICMON_ALERTER_RETRY_MIN_MS", 1000, 10, 3600000,
                 "first retry of a delivery after about this long; doubled per attempt",
                 &retry_min),
        CONF_INT("retry-max-ms", "LICMON_ALERTER_RETRY_MAX_MS", 300000, 10, 86400000,
                 "cap of the retry backoff (each wait gets up to half of it as jitter)",
                 &retry_max),
        CONF_INT("send-timeout-ms", "LICMON_ALERTER_SEND_TIMEOUT_MS", 30000, 1000, 600000,
                 "one delivery attempt may take this long", &send_timeout),
        CONF_INT("max-inflight", "LICMON_ALERTER_MAX_INFLIGHT", 8, 1, 64,
                 "deliveries in progress at the same time (retries: at most half)", &max_inflight),
        CONF_INT("keep-days", "LICMON_ALERTER_KEEP_DAYS", 30, 1, 3660,
                 "finished notifications (sent, failed, cancelled) are kept this long", &keep_days),
        CONF_INT("expiry-check-ms", "LICMON_ALERTER_EXPIRY_CHECK_MS", 60000, 100, 3600000,
                 "how often expiry dates are checked against the clock", &expiry_check),
        CONF_INT("crossing-max-age-ms", "LICMON_ALERTER_CROSSING_MAX_AGE_MS", 86400000, 0,
                 86400000LL * 3660,
                 "a threshold crossing seen more than this long after it happened (history: "
                 "a backfill, or the pipeline stopped that long) is followed but not notified, "
                 "by mail or webhook (0: notify every crossing)",
                 &max_age),
        CONF_BOOL("webhook-public-only", "LICMON_WEBHOOK_PUBLIC_ONLY", "false",
                  "deliver webhooks only to public internet addresses (not loopback, private, "
                  "link-local, ...: where org admins must not reach the alerter's network); a "
                  "url leading elsewhere fails for good",
                  &public_only),
        CONF_INT("now-offset-ms", "LICMON_ALERTER_NOW_OFFSET_MS", 0, -86400000LL * 3660,
                 86400000LL * 3660,
                 "for tests: shifts the clock used for expiry reminders and message dates",
                 &now_offset),
        CONF_END,
    };
    conf_parse("licmon-alerter", "Threshold and expiry notifications by email and webhook.", opts,
               argc, argv, 1, NULL, NULL);
    if (!alert_msg_from_valid(smtp_from)) {
        fprintf(stderr, "licmon-alerter: --smtp-from: not addr@host or \"Name <addr@host>\" in "
                        "printable ASCII on one line\n");
        conf_free(opts);
        return 2;
    }
    prog_start("alerter", &common);
    prog_default_endpoint(&upstream, common.dir, "aggregator");
    prog_default_endpoint(&internal, common.dir, "alerter");
    prog_default_db(&db, common.dir, "alerter");
    if (!*smtp_url)
        log_warn("no --smtp-url: email notifications wait in the outbox until one is set");
    struct store *store = store_open(db);
    if (!store)
        log_fatal("cannot open the database %s", db);

    struct alert_notify_config ncfg = {
        .smtp_url = smtp_url,
        .smtp_from = smtp_from,
        .smtp_user = smtp_user,
        .smtp_password = smtp_password,
        .timeout_ms = send_timeout,
        .connect_timeout_ms = send_timeout < 10000 ? send_timeout : 10000,
        .webhook_address_ok = public_only ? alert_notify_address_public : NULL};
    struct alert_notify *notify = alert_notify_new(&ncfg);
    struct alert_transport transport = {
        .start = alert_notify_start, .poll = alert_notify_poll, .arg = notify};
    struct alert_outbox_config ocfg = {.smtp_from = smtp_from,
                                       .public_url = public_url,
                                       .retry_min_ms = retry_min,
                                       .retry_max_ms = retry_max,
                                       .max_inflight = (int)max_inflight,
                                       .keep_ms = keep_days * 86400 * 1000};
    struct alert_outbox *outbox = alert_outbox_open(store, &ocfg, &transport);
    struct alert_run *run = alert_run_new(store, outbox, now_offset, max_age);

    struct stage_config cfg = {.program = "alerter",
                               .upstream = upstream,
                               .listen = internal,
                               .upstream_chunked = true,
                               .fetch_max = 64};
    struct stage_ops ops = {.apply = alert_run_apply,
                            .flush = alert_run_flush,
                            .committed = alert_run_committed,
                            .arg = run};
    struct svc *svc = svc_new();
    struct stage *stage = stage_new(&cfg, &ops, svc, store);
    alert_run_set_stage(run, stage);
    svc_every(svc, ALERT_RUN_SEND_PERIOD_MS, alert_run_send_timer, run);
    svc_every(svc, expiry_check, alert_run_expiry_timer, run);
    alert_run_expiry_timer(run);
    alert_run_send_timer(run);
    health_set_ready(true);
    svc_run(svc);

    health_set_ready(false);
    alert_run_drain(run, DRAIN_MS);
    stage_free(&stage);
    alert_run_free(&run);
    alert_outbox_close(&outbox);
    alert_notify_free(&notify);
    prog_finish(&store, &svc, opts);
    return 0;
}
