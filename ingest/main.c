/* licmon-ingest: takes event batches from applications, validates and
 * dedups them, journals them durably and acknowledges; serves the journal
 * to the sessionizer. Wiring only: the logic is in ingest_*.c. */
#include "ingest_journal.h"
#include "ingest_server.h"
#include "ingest_zap.h"
#include "log.h"
#include "prog.h"
#include "store.h"
#include "svc.h"
#include "xmem.h"
#include "zsock.h"
#include "health.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An endpoint only this machine can reach: ipc, inproc, or tcp on a
 * loopback address. Any other takes events only with CURVE (ARCHITECTURE:
 * tcp means CURVE) unless the operator says otherwise. */
static bool endpoint_is_local(const char *ep)
{
    static const char *const local[] = {"",           "ipc://",       "inproc://",
                                        "tcp://127.", "tcp://[::1]:", "tcp://localhost:"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (!*local[i] ? !*ep : !strncmp(ep, local[i], strlen(local[i])))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    struct prog_common common;
    char *producer, *internal, *db, *curve_secret, *curve_allowed;
    int64_t max_frame, max_events, tick_ms, retention_days, journal_hours, backlog_mb;
    bool plain_tcp, reset_bound;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_INGEST"),
        CONF_STR("listen", "LICMON_INGEST_LISTEN", "",
                 "producer endpoint, e.g. tcp://0.0.0.0:5555 (default ipc://DIR/run/"
                 "ingest-producer.sock)",
                 &producer),
        CONF_STR("internal", "LICMON_INGEST_INTERNAL", "",
                 "internal endpoint (default ipc://DIR/run/ingest.sock)", &internal),
        CONF_STR("db", "LICMON_INGEST_DB", "", "database folder (default DIR/data/ingest)", &db),
        CONF_STR("curve-secret-file", "LICMON_INGEST_CURVE_SECRET_FILE", "",
                 "file with the server's Z85 CURVE secret key: turns on CURVE for producers",
                 &curve_secret),
        CONF_STR("curve-allowed-keys", "LICMON_INGEST_CURVE_ALLOWED_KEYS", "",
                 "file of the producers' Z85 public keys allowed to connect, one per line "
                 "(required with --curve-secret-file)",
                 &curve_allowed),
        CONF_BOOL("insecure-plain-tcp", "LICMON_INGEST_INSECURE_PLAIN_TCP", "false",
                  "let a --listen that other machines can reach go without CURVE: anyone who "
                  "reaches it can journal events for any org",
                  &plain_tcp),
        CONF_BOOL("reset-dedup-bound", NULL, "false",
                  "forget the saved bound before which events are refused as possibly "
                  "forgotten duplicates (after ingest ran with its clock far ahead): it is set "
                  "again from --retention-days; an event between the two sent twice counts twice",
                  &reset_bound),
        CONF_INT("max-frame-bytes", "LICMON_INGEST_MAX_FRAME_BYTES", 16777216, 1024, 268435456,
                 "largest producer frame accepted (ZMQ_MAXMSGSIZE)", &max_frame),
        CONF_INT("max-batch-events", "LICMON_INGEST_MAX_BATCH_EVENTS", 10000, 1, 100000,
                 "most events in one batch", &max_events),
        CONF_INT("tick-ms", "LICMON_INGEST_TICK_MS", 1000, 50, 60000,
                 "journal a clock tick this often (ms)", &tick_ms),
        CONF_INT("retention-days", "LICMON_RETENTION_DAYS", 400, 1, 3660,
                 "oldest event time accepted, in days (minute-bucket retention)", &retention_days),
        CONF_INT("journal-retention-hours", "LICMON_INGEST_JOURNAL_RETENTION_HOURS", 24, 0, 8760,
                 "keep applied journal records this long, for replays", &journal_hours),
        CONF_INT("max-backlog-mb", "LICMON_INGEST_MAX_BACKLOG_MB", 4096, 0, 16777216,
                 "stop taking producers' batches while the journal holds more than this many MB "
                 "the sessionizer has not applied (0: no bound)",
                 &backlog_mb),
        CONF_END,
    };
    conf_parse("licmon-ingest", "Durable, acknowledged, validated event intake.", opts, argc, argv,
               1, NULL, NULL);
    if (*curve_secret && !*curve_allowed) {
        fprintf(stderr, "licmon-ingest: --curve-secret-file needs --curve-allowed-keys\n");
        conf_free(opts);
        return 2;
    }
    if (!*curve_secret && !plain_tcp && !endpoint_is_local(producer)) {
        fprintf(stderr,
                "licmon-ingest: --listen %s can be reached from other machines: give "
                "--curve-secret-file and --curve-allowed-keys (licmonctl keygen makes them), or "
                "--insecure-plain-tcp to take events from anyone who reaches it\n",
                producer);
        conf_free(opts);
        return 2;
    }
    prog_start("ingest", &common);
    if (!*curve_secret && !endpoint_is_local(producer))
        log_warn("producers on %s are not authenticated (--insecure-plain-tcp): anyone who "
                 "reaches it can journal events for any org",
                 producer);
    prog_default_endpoint(&producer, common.dir, "ingest-producer");
    prog_default_endpoint(&internal, common.dir, "ingest");
    prog_default_db(&db, common.dir, "ingest");

    static struct ingest_expiry expiry; /* now_ms 0 until ingest's clock is read */
    expiry.days = retention_days;
    struct store *store = store_open_expiring(db, ingest_journal_expired, &expiry);
    if (!store)
        log_fatal("cannot open the journal database %s", db);
    struct svc *svc = svc_new();
    struct ingest_zap *zap = NULL;
    if (*curve_secret && !(zap = ingest_zap_new(curve_allowed, svc)))
        log_fatal("cannot set up producer authentication from %s", curve_allowed);
    struct ingest_journal *journal = ingest_journal_open(store, retention_days);
    ingest_journal_set_expiry(journal, &expiry, reset_bound);
    struct ingest_server_config cfg = {
        .producer_endpoint = producer,
        .internal_endpoint = internal,
        .max_frame_bytes = max_frame,
        .max_batch_events = max_events,
        .tick_ms = tick_ms,
        .journal_retention_ms = journal_hours * 3600 * 1000,
        .curve_secret_file = curve_secret,
        .max_backlog_bytes = backlog_mb << 20,
    };
    struct ingest_server *server = ingest_server_new(&cfg, svc, journal);
    if (!server)
        log_fatal("cannot bind the ingest sockets");
    health_set_ready(true);
    log_info("ready: producers on %s, journal on %s", producer, internal);
    svc_run(svc);

    health_set_ready(false);
    ingest_server_free(&server);
    ingest_journal_free(&journal);
    ingest_zap_free(&zap);
    prog_finish(&store, &svc, opts);
    return 0;
}
