/* stage: upstream fetch loop, atomic commit, internal socket (see stage.h).
 * The upstream link follows the Lazy Pirate pattern: one fetch in flight;
 * when its answer is late the DEALER is closed and opened again and the
 * fetch resent; stale answers are recognised by their id and dropped.
 * Fetching ahead: as soon as a page of records arrives that is not the
 * last, the fetch of the next page goes out (acknowledging only what is
 * committed, explicit_ack), so upstream reads it while this stage applies
 * and syncs the last one.
 * The stage keeps the identity of the upstream log it applies (lstream.h)
 * and refuses another one: a replaced or wiped upstream database numbers
 * other records with the seqs it already applied, so going on would skip
 * as many new records without a word. It applies and acknowledges nothing
 * until its own log is back, and says why (log, metric, status), as it does
 * when upstream refuses a fetch (the records it needs were trimmed): it
 * asks again every few seconds, not at once. */
#include "stage.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define STAGE_WAIT_MS 1000
#define STAGE_RETRY_MS 3000
/* a fetch answered later than its wait plus this was not listened for */
#define STAGE_FRESH_MS 500
/* A commit whose output reaches this many bytes is made at the next
 * upstream record boundary, even in the middle of a fetch reply: it bounds
 * the memory a commit holds (the chunk, its copy in the WriteBatch, the
 * memtable's) and the size of the records our consumers fetch. */
#define STAGE_COMMIT_BYTES (4u << 20)
/* how often the reason a stage is blocked is logged again */
#define STAGE_PROBLEM_LOG_MS 60000

static const char ST_APPLIED[] = "Mapplied", ST_JOURNAL[] = "Mapplied_journal",
                  ST_UPSTREAM[] = "Mupstream_log_id", ST_HASH[] = "Mapplied_hash";

struct stage {
    struct stage_config cfg;
    struct stage_ops ops;
    struct svc *svc;
    struct store *store;
    struct lstream *out; /* NULL when nothing reads us */
    void *router, *dealer;
    struct store_batch *batch;
    struct pb_arena arena; /* the upstream chunk being applied */
    struct pb_chunk items; /* emitted since the last commit */
    uint64_t applied, applied_journal;
    uint64_t applied_hash; /* upstream's chain hash at applied (0: unknown) */
    uint64_t committed;    /* applied as of the last commit */
    bool caught_up;        /* at upstream's head, as of a reply read in time */
    uint64_t req_seq, inflight, inflight_from;
    int64_t sent_at, started_ms;
    uint8_t up_id[LSTREAM_ID_LEN]; /* the upstream log applied from */
    bool up_known;
    char *problem;        /* why the upstream cannot be applied; NULL: it can */
    uint64_t up_instance; /* the upstream process that last answered well (0: none) */
    int64_t problem_logged;
    struct log_limit no_answer;
    struct lstream_hold hold; /* our log is over its backlog bound: upstream is not fetched */
    struct metric *m_applied, *m_bad, *m_commits, *m_journal, *m_blocked, *m_unreadable,
        *m_timeouts;
};

static void stage_send_fetch(struct stage *st, uint64_t from, uint64_t after_hash);
static bool stage_log_full(struct stage *st);

static void stage_open_dealer(struct stage *st)
{
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    zsock_close(&st->dealer);
    st->dealer = zsock_open(ZMQ_DEALER, st->cfg.upstream, false, &o);
    if (!st->dealer)
        log_fatal("cannot connect to upstream %s", st->cfg.upstream);
}

/* Appends everything emitted since the last commit as one Chunk record. */
static void stage_flush_items(struct stage *st)
{
    if (st->items.n == 0)
        return;
    lstream_append(st->out, st->batch, st->items.buf, st->items.len);
    pb_chunk_clear(&st->items);
}

static void stage_commit(struct stage *st)
{
    if (st->out)
        stage_flush_items(st);
    store_batch_put_u64(st->batch, ST_APPLIED, strlen(ST_APPLIED), st->applied);
    lstream_put_hash(st->batch, ST_HASH, st->applied, st->applied_hash);
    store_batch_put_u64(st->batch, ST_JOURNAL, strlen(ST_JOURNAL), st->applied_journal);
    if (st->out)
        lstream_set_journal_seq(st->out, st->batch, st->applied_journal);
    if (st->ops.flush)
        st->ops.flush(st->ops.arg, st, st->batch);
    if (store_write(st->store, st->batch, true) != 0)
        log_fatal("cannot commit applied state at upstream seq %llu",
                  (unsigned long long)st->applied);
    st->committed = st->applied;
    store_batch_clear(st->batch);
    if (st->out)
        lstream_commit(st->out, true);
    metric_add(st->m_commits, 1);
    metric_set(st->m_journal, (int64_t)st->applied_journal);
    if (st->ops.committed)
        st->ops.committed(st->ops.arg, st);
}

static void stage_apply_record(struct stage *st, uint64_t seq, const ProtobufCBinaryData *rec)
{
    if (!st->cfg.upstream_chunked) {
        if (st->ops.apply(st->ops.arg, st, seq, rec->data, rec->len) < 0)
            metric_add(st->m_bad, 1);
        return;
    }
    pb_arena_reset(&st->arena);
    Licmon__V1__Chunk *chunk =
        licmon__v1__chunk__unpack(pb_arena_allocator(&st->arena), rec->len, rec->data);
    if (!chunk) {
        log_warn("upstream record %llu is not a chunk; skipped", (unsigned long long)seq);
        metric_add(st->m_bad, 1);
        return;
    }
    for (size_t i = 0; i < chunk->n_items; i++)
        if (st->ops.apply(st->ops.arg, st, seq, chunk->items[i].data, chunk->items[i].len) < 0)
            metric_add(st->m_bad, 1);
}

/* Records why the upstream cannot be applied (why, which it takes; NULL:
 * it can again): for the status (licmonctl wait) and the metric, logged
 * when it starts and then every minute. The timer asks upstream again. */
static void stage_set_problem(struct stage *st, char *why)
{
    int64_t now = time_mono_ms();
    if (why)
        st->up_instance = 0;
    if (!why) {
        if (st->problem)
            log_warn("upstream %s: applying again", st->cfg.upstream);
        free(st->problem);
        st->problem = NULL;
        metric_set(st->m_blocked, 0);
        return;
    }
    if (st->problem && !strcmp(st->problem, why)) {
        free(why);
    } else {
        free(st->problem);
        st->problem = why;
        st->problem_logged = now - STAGE_PROBLEM_LOG_MS;
    }
    metric_set(st->m_blocked, 1);
    if (now - st->problem_logged >= STAGE_PROBLEM_LOG_MS) {
        log_warn("%s", st->problem);
        st->problem_logged = now;
    }
}

/* Whether fr comes from the upstream log this stage applies. A log it has
 * applied no record of is taken as its own (a new stage; a database written
 * before logs had identities; an upstream without them); another one is
 * refused. */
static bool stage_upstream_ok(struct stage *st, const Licmon__V1__FetchReply *fr)
{
    bool id_ok = fr->log_id.len == LSTREAM_ID_LEN;
    if (fr->log_id.len == 0 ||
        (st->up_known && id_ok && !memcmp(fr->log_id.data, st->up_id, LSTREAM_ID_LEN)))
        return true;
    if (id_ok && (!st->up_known || st->applied == 0)) {
        memcpy(st->up_id, fr->log_id.data, LSTREAM_ID_LEN);
        st->up_known = true;
        struct store_batch *b = store_batch_new();
        store_batch_put(b, ST_UPSTREAM, strlen(ST_UPSTREAM), st->up_id, LSTREAM_ID_LEN);
        if (store_write(st->store, b, true) != 0)
            log_fatal("cannot store the identity of the upstream log");
        store_batch_free(&b);
        return true;
    }
    stage_set_problem(
        st, xasprintf("upstream %s serves another log than the one this program applied records "
                      "1-%llu from: its database was replaced or wiped, and its seqs now number "
                      "other records. Nothing is applied from it (or acknowledged to it) until "
                      "the original database is back; see the README, \"A database lost or "
                      "replaced\"",
                      st->cfg.upstream, (unsigned long long)st->applied));
    return false;
}

static void stage_on_fetch_reply(struct stage *st, const Licmon__V1__FetchReply *fr)
{
    uint64_t seq = fr->first_seq;
    bool changed = false;
    /* how long the answer took since we listened for it (a page that does
     * not reach the head had the next fetch sent already: not caught up
     * then, whatever this says) */
    int64_t waited = time_mono_ms() - st->sent_at;
    bool fresh = fr->n_records == 0 || waited <= STAGE_WAIT_MS + STAGE_FRESH_MS;
    if (!fresh) /* while its records apply, what we had is no longer the head */
        st->caught_up = false;
    for (size_t i = 0; i < fr->n_records; i++, seq++) {
        if (seq <= st->applied)
            continue; /* already applied before a restart or a resend */
        if (seq != st->applied + 1) {
            log_warn("upstream gave seq %llu while %llu was expected; fetching again",
                     (unsigned long long)seq, (unsigned long long)st->applied + 1);
            break;
        }
        stage_apply_record(st, seq, &fr->records[i]);
        st->applied = seq;
        st->applied_hash = i < fr->n_hashes ? fr->hashes[i] : 0;
        metric_add(st->m_applied, 1);
        changed = true;
        if (st->items.len >= STAGE_COMMIT_BYTES) {
            stage_commit(st);
            changed = false;
        }
    }
    /* caught up with the upstream head: everything it reflects, we reflect.
     * Its head is as of its answer: one read much later than a fetch waits
     * (the process was stopped, the host paused) may be long out of date,
     * so it counts only for the records; the next fetch tells. */
    st->caught_up = st->applied >= fr->head_seq && fresh;
    if (fr->journal_seq && st->applied >= fr->head_seq && fr->journal_seq > st->applied_journal) {
        st->applied_journal = fr->journal_seq;
        changed = true;
    }
    if (changed)
        stage_commit(st);
}

static void stage_on_dealer(void *arg)
{
    struct stage *st = arg;
    zmq_msg_t msg;
    while (st->dealer && zsock_recv(st->dealer, NULL, &msg, ZMQ_DONTWAIT, NULL) == 0) {
        Licmon__V1__Reply *rep =
            licmon__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!rep) {
            log_warn("unreadable reply from upstream %s", st->cfg.upstream);
            continue;
        }
        if (rep->id != st->inflight) {
            PB_FREE(reply, rep);
            continue;
        }
        st->inflight = 0;
        if ((rep->error && *rep->error) || rep->body_case != LICMON__V1__REPLY__BODY_FETCH) {
            /* asking again at once would only get the same answer, at once */
            stage_set_problem(st, xasprintf("upstream %s answered the fetch of records from "
                                            "%llu on: %s",
                                            st->cfg.upstream, (unsigned long long)st->inflight_from,
                                            rep->error && *rep->error
                                                ? rep->error
                                                : "an answer that is no fetch reply"));
            PB_FREE(reply, rep);
            continue;
        }
        if (!stage_upstream_ok(st, rep->fetch)) {
            PB_FREE(reply, rep);
            continue;
        }
        stage_set_problem(st, NULL);
        st->up_instance = rep->fetch->instance;
        if (stage_log_full(st)) { /* nothing past the commit was acknowledged */
            PB_FREE(reply, rep);
            continue;
        }
        const Licmon__V1__FetchReply *fr = rep->fetch;
        uint64_t next = fr->first_seq + fr->n_records;
        /* the next page, when there is one: a fetch that would wait for
         * records goes after the commit, acknowledging everything */
        if (fr->n_records > 0 && fr->first_seq <= st->applied + 1 && next > st->applied + 1 &&
            fr->head_seq >= next)
            stage_send_fetch(st, next,
                             fr->n_hashes == fr->n_records ? fr->hashes[fr->n_records - 1] : 0);
        stage_on_fetch_reply(st, fr);
        PB_FREE(reply, rep);
        if (st->inflight && st->inflight_from == st->applied + 1)
            st->sent_at = time_mono_ms(); /* its wait starts now that we listen */
        else if (!stage_log_full(st))     /* none out, or it asks for the wrong page */
            stage_send_fetch(st, st->applied + 1, st->applied_hash);
    }
}

/* Whether our log holds more than its bound that a consumer has not
 * applied: then no fetch goes upstream (and the answer to one already out
 * is dropped: its records are fetched again), and the timer fetches again
 * once a quarter of the bound has drained (stage_config.max_backlog_bytes). */
static bool stage_log_full(struct stage *st)
{
    if (!st->out)
        return false;
    int change = lstream_hold_update(st->out, &st->hold, st->cfg.max_backlog_bytes);
    uint64_t backlog = lstream_backlog_bytes(st->out);
    if (change > 0)
        log_warn("log backlog of %llu MB is over --max-backlog-mb %llu: nothing is fetched from "
                 "upstream %s until the consumers catch up",
                 (unsigned long long)(backlog >> 20),
                 (unsigned long long)(st->cfg.max_backlog_bytes >> 20), st->cfg.upstream);
    else if (change < 0)
        log_info("log backlog down to %llu MB: fetching from upstream %s again",
                 (unsigned long long)(backlog >> 20), st->cfg.upstream);
    return st->hold.held;
}

/* Sends the fetch of the records from `from` on; it acknowledges what is
 * committed, which is less than from - 1 when fetching ahead. after_hash is
 * the upstream's chain hash of record from - 1 (0: unknown): upstream checks
 * that it holds the records this stage applied. */
static void stage_send_fetch(struct stage *st, uint64_t from, uint64_t after_hash)
{
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    Licmon__V1__FetchRequest fr = LICMON__V1__FETCH_REQUEST__INIT;
    req.id = ++st->req_seq;
    req.body_case = LICMON__V1__REQUEST__BODY_FETCH;
    req.fetch = &fr;
    fr.consumer = (char *)st->cfg.program;
    fr.from_seq = from;
    fr.acked_seq = st->committed;
    fr.explicit_ack = true;
    if (st->up_known) {
        fr.log_id.data = st->up_id;
        fr.log_id.len = LSTREAM_ID_LEN;
    }
    fr.after_hash = after_hash;
    fr.max_records = st->problem ? 1 : st->cfg.fetch_max;
    fr.wait_ms = STAGE_WAIT_MS;
    size_t len;
    uint8_t *buf = pb_pack(&req.base, &len);
    st->inflight_from = from;
    if (zsock_send(st->dealer, NULL, buf, len, ZMQ_DONTWAIT) == 0)
        st->inflight = req.id;
    else
        st->inflight = ~0ULL; /* not sent: the retry timer tries again */
    st->sent_at = time_mono_ms();
    free(buf);
}

static void stage_on_timer(void *arg)
{
    struct stage *st = arg;
    if (st->out)
        lstream_expire(st->out);
    bool was_paused = st->hold.held;
    if (!stage_log_full(st) && was_paused && !st->inflight)
        stage_send_fetch(st, st->applied + 1, st->applied_hash);
    if (!st->inflight && st->problem && time_mono_ms() - st->sent_at > STAGE_RETRY_MS)
        stage_send_fetch(st, st->applied + 1,
                         st->applied_hash); /* is the upstream's own log back? */
    if (st->inflight && time_mono_ms() - st->sent_at > STAGE_WAIT_MS + STAGE_RETRY_MS) {
        /* a restart of upstream is routine; one that is down for good must
         * not write a line every few seconds */
        metric_add(st->m_timeouts, 1);
        st->caught_up = false; /* nothing heard of its head for that long */
        log_warn_limited(&st->no_answer, "no answer from upstream %s; reconnecting every %d s",
                         st->cfg.upstream, (STAGE_WAIT_MS + STAGE_RETRY_MS) / 1000);
        svc_unwatch(st->svc, st->dealer, -1);
        stage_open_dealer(st);
        svc_watch(st->svc, st->dealer, -1, stage_on_dealer, st);
        stage_send_fetch(st, st->applied + 1, st->applied_hash);
    }
}

void stage_reply(struct stage *st, const struct zsock_env *env, const Licmon__V1__Reply *rep)
{
    lstream_send_reply(st->router, env, rep);
}

static void stage_on_router(void *arg)
{
    struct stage *st = arg;
    struct zsock_env env;
    Licmon__V1__Request *req;
    uint64_t unreadable = 0;
    while ((req = lstream_recv_request(st->router, &env, &unreadable))) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        rep.id = req->id;
        Licmon__V1__StatusReply sr = LICMON__V1__STATUS_REPLY__INIT;
        switch (req->body_case) {
        case LICMON__V1__REQUEST__BODY_FETCH:
            if (st->out)
                lstream_fetch(st->out, st->router, &env, req->id, req->fetch);
            else {
                rep.error = "this program has no log to fetch";
                stage_reply(st, &env, &rep);
            }
            break;
        case LICMON__V1__REQUEST__BODY_STATUS:
            sr.program = (char *)st->cfg.program;
            sr.applied_journal_seq = st->applied_journal;
            sr.head_seq = st->out ? lstream_head(st->out) : 0;
            sr.started_ms = st->started_ms;
            sr.problem = st->problem ? st->problem : "";
            sr.instance = st->out ? lstream_instance(st->out) : 0;
            sr.upstream_instance = st->up_instance;
            sr.paused = st->hold.held;
            sr.log_backlog_bytes = st->out ? lstream_backlog_bytes(st->out) : 0;
            rep.body_case = LICMON__V1__REPLY__BODY_STATUS;
            rep.status = &sr;
            stage_reply(st, &env, &rep);
            break;
        default:
            if (!st->ops.request || st->ops.request(st->ops.arg, st, req, &env) != 0) {
                rep.error = "request kind not served here";
                stage_reply(st, &env, &rep);
            }
            break;
        }
        PB_FREE(request, req);
    }
    metric_add(st->m_unreadable, (int64_t)unreadable);
}

struct stage *stage_new(const struct stage_config *cfg, const struct stage_ops *ops,
                        struct svc *svc, struct store *store)
{
    struct stage *st = xcalloc(1, sizeof(*st));
    st->cfg = *cfg;
    st->ops = *ops;
    st->svc = svc;
    st->store = store;
    st->batch = store_batch_new();
    pb_arena_init(&st->arena, 64 * 1024);
    st->started_ms = time_now_ms();
    if (store_get_u64(store, ST_APPLIED, strlen(ST_APPLIED), &st->applied) < 0 ||
        store_get_u64(store, ST_JOURNAL, strlen(ST_JOURNAL), &st->applied_journal) < 0)
        log_fatal("cannot read the applied position");
    st->applied_hash = lstream_get_hash(store, ST_HASH, st->applied);
    int rc = store_get_fixed(store, ST_UPSTREAM, strlen(ST_UPSTREAM), st->up_id, sizeof(st->up_id));
    if (rc < 0 || rc == 2) /* damaged: unknown would accept any log */
        log_fatal("cannot read the identity of the upstream log");
    st->up_known = rc == 1;
    if (cfg->consumers)
        st->out = lstream_open(store, cfg->consumers);
    st->m_applied =
        metric_counter("licmon_stage_records_applied_total", "upstream records applied");
    st->m_bad = metric_counter("licmon_stage_records_unreadable_total",
                               "upstream records that could not be read and were skipped");
    st->m_commits = metric_counter("licmon_stage_commits_total", "synced state commits");
    st->m_journal = metric_gauge("licmon_stage_applied_journal_seq",
                                 "journal sequence fully reflected in this program");
    metric_set(st->m_journal, (int64_t)st->applied_journal);
    st->m_blocked = metric_gauge("licmon_stage_blocked",
                                 "1 while the upstream cannot be applied (it serves another log "
                                 "than the one applied from, or refuses the fetch); the reason "
                                 "is logged and in licmonctl wait");
    st->m_unreadable = metric_counter("licmon_internal_requests_unreadable_total",
                                      "frames on the internal socket that were not a Request");
    st->m_timeouts = metric_counter("licmon_stage_upstream_timeouts_total",
                                    "fetches upstream did not answer in time (then reconnected)");
    st->hold.m_backlog = metric_gauge("licmon_stage_log_backlog_bytes",
                                      "bytes of this program's log a consumer has not applied yet");
    st->hold.m_held = metric_gauge("licmon_stage_paused",
                                   "1 while that backlog is over --max-backlog-mb: nothing is "
                                   "fetched from upstream");
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    st->router = zsock_open(ZMQ_ROUTER, cfg->listen, true, &o);
    if (!st->router)
        log_fatal("cannot listen on %s", cfg->listen);
    stage_open_dealer(st);
    svc_watch(svc, st->router, -1, stage_on_router, st);
    svc_watch(svc, st->dealer, -1, stage_on_dealer, st);
    svc_every(svc, 200, stage_on_timer, st);
    log_info("resuming after upstream seq %llu (journal seq %llu)", (unsigned long long)st->applied,
             (unsigned long long)st->applied_journal);
    st->committed = st->applied;
    if (!stage_log_full(st))
        stage_send_fetch(st, st->applied + 1, st->applied_hash);
    return st;
}

void stage_free(struct stage **stp)
{
    struct stage *st = *stp;
    if (!st)
        return;
    zsock_close(&st->router);
    zsock_close(&st->dealer);
    lstream_free(&st->out);
    store_batch_free(&st->batch);
    pb_arena_free(&st->arena);
    pb_chunk_free(&st->items);
    free(st->problem);
    free(st);
    *stp = NULL;
}

void stage_emit(struct stage *st, const ProtobufCMessage *m)
{
    if (!st->out)
        log_panic("stage %s emits but has no log", st->cfg.program);
    pb_chunk_add(&st->items, m);
}

struct store_batch *stage_batch(struct stage *st)
{
    return st->batch;
}

struct store *stage_store(struct stage *st)
{
    return st->store;
}

uint64_t stage_applied_seq(const struct stage *st)
{
    return st->applied;
}

bool stage_caught_up(const struct stage *st)
{
    return st->caught_up;
}

uint64_t stage_applied_journal_seq(const struct stage *st)
{
    return st->applied_journal;
}
