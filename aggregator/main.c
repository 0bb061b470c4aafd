/* licmon-aggregator: folds session changes into usage numbers, keeps
 * session records, answers the exporter's queries, and publishes usage
 * levels for the alerter. Wiring only: logic in agg_*.c, delivery and
 * storage from lib/stage.c. */
#include "agg_query.h"
#include "agg_state.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "stage.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

struct aggregator {
    struct agg_state *state;
    struct stage *stage;
    uint64_t journal_seq; /* of the change being applied */
};

static void on_level(void *arg, const char *org, const char *type, int64_t at_ms, int64_t in_use)
{
    struct aggregator *a = arg;
    Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
    Licmon__V1__UsageLevel l = LICMON__V1__USAGE_LEVEL__INIT;
    l.org = (char *)org;
    l.license_type = (char *)type;
    l.at_ms = at_ms;
    l.in_use = in_use;
    u.journal_seq = a->journal_seq;
    u.body_case = LICMON__V1__USAGE_UPDATE__BODY_LEVEL;
    u.level = &l;
    stage_emit(a->stage, &u.base);
}

static int apply(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len)
{
    struct aggregator *a = arg;
    (void)st;
    Licmon__V1__Change *c = licmon__v1__change__unpack(NULL, len, data);
    if (!c) {
        log_warn("session change %llu is unreadable; skipped", (unsigned long long)seq);
        return -1;
    }
    a->journal_seq = c->journal_seq;
    agg_state_apply(a->state, c, on_level, a);
    if (c->body_case == LICMON__V1__CHANGE__BODY_SETTINGS) {
        Licmon__V1__UsageUpdate u = LICMON__V1__USAGE_UPDATE__INIT;
        u.journal_seq = c->journal_seq;
        u.body_case = LICMON__V1__USAGE_UPDATE__BODY_SETTINGS;
        u.settings = c->settings;
        stage_emit(a->stage, &u.base);
    }
    PB_FREE(change, c);
    return 0;
}

static void flush(void *arg, struct stage *st, struct store_batch *b)
{
    struct aggregator *a = arg;
    (void)st;
    agg_state_save_dirty(a->state, store_batch_write, b);
}

static int request(void *arg, struct stage *st, const Licmon__V1__Request *req,
                   const struct zsock_env *env)
{
    struct aggregator *a = arg;
    if (req->body_case != LICMON__V1__REQUEST__BODY_QUERY)
        return -1;
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    rep.id = req->id;
    agg_query_answer(a->state, req->query, &rep);
    stage_reply(st, env, &rep);
    agg_query_clear(&rep);
    return 0;
}

static int load_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return agg_state_load(arg, key, klen, val, vlen);
}

int main(int argc, char **argv)
{
    struct prog_common common;
    char *upstream, *internal, *db;
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
        CONF_END,
    };
    conf_parse("licmon-aggregator", "Usage rollups, session records and the query service.", opts,
               argc, argv, 1, NULL, NULL);
    prog_start("aggregator", &common);
    prog_default_endpoint(&upstream, common.dir, "sessionizer");
    prog_default_endpoint(&internal, common.dir, "aggregator");
    prog_default_db(&db, common.dir, "aggregator");
    struct store *store = store_open(db);
    if (!store)
        log_fatal("cannot open the database %s", db);
    struct aggregator a = {.state = agg_state_new()};
    long restored = store_load_namespaces(store, agg_state_namespaces, load_one, a.state);
    if (restored < 0)
        log_fatal("cannot restore the saved state");
    log_info("restored %ld saved states", restored);

    static const char *const consumers[] = {"alerter", NULL};
    struct stage_config cfg = {
        .program = "aggregator",
        .upstream = upstream,
        .listen = internal,
        .consumers = consumers,
        .upstream_chunked = true,
        .fetch_max = 64,
    };
    struct stage_ops ops = {.apply = apply, .flush = flush, .request = request, .arg = &a};
    struct svc *svc = svc_new();
    a.stage = stage_new(&cfg, &ops, svc, store);
    health_set_ready(true);
    svc_run(svc);

    health_set_ready(false);
    stage_free(&a.stage);
    agg_state_free(&a.state);
    svc_free(&svc);
    zsock_ctx_term();
    store_close(&store);
    health_stop();
    conf_free(opts);
    log_info("stopped");
    return 0;
}
