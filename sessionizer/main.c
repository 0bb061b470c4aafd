/* licmon-sessionizer: reads the journal in order and runs the session state
 * machine (sess_engine.c) over it; emits session changes for the
 * aggregator. Wiring only: storage and delivery come from lib/stage.c. */
#include "health.h"
#include "keys.h"
#include "log.h"
#include "prog.h"
#include "sess_engine.h"
#include "stage.h"
#include "xmem.h"

#include <stdlib.h>

struct sessionizer {
    struct sess_engine *engine;
    struct stage *stage;
    uint64_t seq;          /* journal record being applied */
    struct pb_arena arena; /* the journal record being applied lives here */
    struct metric *m_sessions, *m_holds, *m_late, *m_timers, *m_held, *m_ahead;
};

static void on_change(void *arg, Licmon__V1__Change *change)
{
    struct sessionizer *z = arg;
    change->journal_seq = z->seq;
    stage_emit(z->stage, &change->base);
}

static int apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len)
{
    struct sessionizer *z = arg;
    (void)st;
    pb_arena_reset(&z->arena);
    Licmon__V1__JournalRecord *rec =
        licmon__v1__journal_record__unpack(pb_arena_allocator(&z->arena), len, data);
    if (!rec) {
        log_warn("journal record %llu is unreadable; skipped", (unsigned long long)seq);
        return -1;
    }
    z->seq = seq;
    switch (rec->body_case) {
    case LICMON__V1__JOURNAL_RECORD__BODY_EVENT:
        sess_engine_event(z->engine, rec->event, rec->arrival_ms);
        break;
    case LICMON__V1__JOURNAL_RECORD__BODY_SETTINGS:
        sess_engine_settings(z->engine, rec->settings, rec->arrival_ms);
        break;
    case LICMON__V1__JOURNAL_RECORD__BODY_TICK:
        sess_engine_tick(z->engine, rec->tick->wall_ms);
        break;
    default:
        log_warn("journal record %llu has no body; skipped", (unsigned long long)seq);
        return -1;
    }
    return 0;
}

static void flush(void *arg, struct stage *st, struct store_batch *b)
{
    struct sessionizer *z = arg;
    (void)st;
    sess_engine_save_dirty(z->engine, store_batch_write, b);
    struct sess_engine_stats stats;
    sess_engine_stats(z->engine, &stats);
    metric_set(z->m_sessions, (int64_t)stats.open_sessions);
    metric_set(z->m_holds, (int64_t)stats.open_holds);
    metric_set(z->m_late, (int64_t)stats.late_events);
    metric_set(z->m_timers, (int64_t)stats.pending_timers);
    metric_set(z->m_held, (int64_t)stats.held_events);
    metric_set(z->m_ahead, (int64_t)stats.ahead_events);
}

static int load_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return sess_engine_load(arg, key, klen, val, vlen);
}

int main(int argc, char **argv)
{
    struct prog_common common;
    char *upstream, *internal, *db;
    int64_t fetch_max, backlog_mb;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_SESSIONIZER"),
        CONF_STR("upstream", "LICMON_SESSIONIZER_UPSTREAM", "",
                 "ingest's internal endpoint (default ipc://DIR/run/ingest.sock)", &upstream),
        CONF_STR("internal", "LICMON_SESSIONIZER_INTERNAL", "",
                 "internal endpoint (default ipc://DIR/run/sessionizer.sock)", &internal),
        CONF_STR("db", "LICMON_SESSIONIZER_DB", "",
                 "database folder (default DIR/data/sessionizer)", &db),
        CONF_INT("fetch-max", "LICMON_SESSIONIZER_FETCH_MAX", 64, 1, 4096,
                 "journal chunks (group commits of ingest) per fetch and per commit", &fetch_max),
        STAGE_BACKLOG_OPT("LICMON_SESSIONIZER", "aggregator", &backlog_mb),
        CONF_END,
    };
    conf_parse("licmon-sessionizer", "User sessions and license holds from the journal.", opts,
               argc, argv, 1, NULL, NULL);
    prog_start("sessionizer", &common);
    prog_default_endpoint(&upstream, common.dir, "ingest");
    prog_default_endpoint(&internal, common.dir, "sessionizer");
    prog_default_db(&db, common.dir, "sessionizer");
    struct store *store = store_open(db);
    if (!store)
        log_fatal("cannot open the database %s", db);

    struct sessionizer z = {0};
    z.engine = sess_engine_new(on_change, &z);
    pb_arena_init(&z.arena, 64 * 1024);
    long restored = store_load_namespaces(store, (char[]){KEY_NS_STATE, 0}, load_one, z.engine);
    if (restored < 0)
        log_fatal("cannot restore the saved sessions");
    log_info("restored %ld saved states", restored);
    z.m_sessions = metric_gauge("licmon_sessionizer_open_sessions", "user sessions open");
    z.m_holds = metric_gauge("licmon_sessionizer_open_holds", "license holds open");
    z.m_late = metric_gauge("licmon_sessionizer_late_events", "events later than allowed");
    z.m_timers = metric_gauge("licmon_sessionizer_pending_timers", "armed inactivity timers");
    z.m_held = metric_gauge("licmon_sessionizer_held_events",
                            "events waiting for a timeout of their user to become final");
    z.m_ahead = metric_gauge("licmon_sessionizer_ahead_events",
                             "events stamped further after their arrival than a second (or "
                             "the org's clock), taken at that bound (since start)");

    static const char *const consumers[] = {"aggregator", NULL};
    struct stage_config cfg = {
        .program = "sessionizer",
        .upstream = upstream,
        .listen = internal,
        .consumers = consumers,
        .upstream_chunked = true,
        .fetch_max = (uint32_t)fetch_max,
        .max_backlog_bytes = (uint64_t)backlog_mb << 20,
    };
    struct stage_ops ops = {.apply = apply, .flush = flush, .arg = &z};
    struct svc *svc = svc_new();
    z.stage = stage_new(&cfg, &ops, svc, store);
    health_set_ready(true);
    svc_run(svc);

    health_set_ready(false);
    stage_free(&z.stage);
    sess_engine_free(&z.engine);
    pb_arena_free(&z.arena);
    prog_finish(&store, &svc, opts);
    return 0;
}
