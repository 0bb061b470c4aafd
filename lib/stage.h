/* stage: the skeleton shared by the pipeline stages that read an upstream
 * log (sessionizer, aggregator, alerter). It fetches records from upstream,
 * hands each to the program's apply callback, then commits the program's
 * state, its own output records and the upstream position in one synced
 * WriteBatch; after a crash it resumes from that position, so nothing is
 * lost and nothing is applied twice. It also serves the program's internal
 * socket: fetches of its own log, status, and the program's own requests. */
#ifndef LICMON_STAGE_H
#define LICMON_STAGE_H
#include "conf.h"
#include "lstream.h"
#include "pb.h"
#include "store.h"
#include "svc.h"
#include "zsock.h"

#include <stdbool.h>

struct stage;

/* The option that sets stage_config.max_backlog_bytes (in MB; 1024 by
 * default: a quarter of ingest's bound on its journal, as what a stage
 * emits is smaller and ingest's journal is where a stall should queue), for
 * a program's table. */
#define STAGE_BACKLOG_OPT(ENVPREFIX, consumer, mb)                                                 \
    CONF_INT("max-backlog-mb", ENVPREFIX "_MAX_BACKLOG_MB", 1024, 0, 16777216,                     \
             "stop fetching from upstream while this program's log holds more than this many "     \
             "MB the " consumer " has not applied (0: no bound)",                                  \
             mb)

struct stage_ops {
    /* Applies one upstream item (packed bytes) of upstream record seq: a
     * journal record, or one item of a stage's Chunk. Returns -1 for an item
     * it cannot read: it is logged, counted and skipped. */
    int (*apply)(void *arg, struct stage *st, uint64_t seq, const uint8_t *data, size_t len);
    /* Puts the state changed since the last commit into b. */
    void (*flush)(void *arg, struct stage *st, struct store_batch *b);
    /* Called after a commit is durable (may be NULL). */
    void (*committed)(void *arg, struct stage *st);
    /* Answers a request kind the stage does not serve itself (may be NULL):
     * sends the reply with stage_reply() and returns 0, or returns -1. */
    int (*request)(void *arg, struct stage *st, const Licmon__V1__Request *req,
                   const struct zsock_env *env);
    void *arg;
};

struct stage_config {
    const char *program;
    const char *upstream;         /* upstream's internal endpoint */
    const char *listen;           /* our internal endpoint (bind) */
    const char *const *consumers; /* names of our log's consumers; NULL: no log */
    bool upstream_chunked;        /* upstream records are Chunks (a stage's log) */
    uint32_t fetch_max;           /* records per fetch */
    /* Our log's backlog (bytes a consumer has not applied) over which no
     * fetch goes upstream until a quarter of it has drained (0: no bound):
     * a consumer that is down makes its upstream wait, back to ingest's
     * bound and the producers' acknowledgements, instead of filling the
     * disk. */
    uint64_t max_backlog_bytes;
};

/* Opens the stage over an open store; registers its sockets with svc.
 * Exits (log_fatal) when the sockets cannot be set up. */
struct stage *stage_new(const struct stage_config *cfg, const struct stage_ops *ops,
                        struct svc *svc, struct store *store);
void stage_free(struct stage **st);

/* For apply(): emits an output item; all items of one commit become one
 * Chunk record of our log. */
void stage_emit(struct stage *st, const ProtobufCMessage *m);
struct store_batch *stage_batch(struct stage *st);
struct store *stage_store(struct stage *st);
uint64_t stage_applied_seq(const struct stage *st);
uint64_t stage_applied_journal_seq(const struct stage *st);
/* Whether the last fetch reply from upstream reached its head with all of
 * it applied, and was read within 1.5 s of being asked for (false until the
 * first reply, while a reply read later applies, and after 4 s without an
 * answer): what the program knows is as current as upstream's head then. */
bool stage_caught_up(const struct stage *st);
void stage_reply(struct stage *st, const struct zsock_env *env, const Licmon__V1__Reply *rep);

#endif
