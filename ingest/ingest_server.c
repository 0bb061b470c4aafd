/* ingest_server: producer and internal sockets of ingest (see
 * ingest_server.h). Everything a poll round finds waiting on the producer
 * socket goes into one group commit: many small batches cost one fsync. */
#include "ingest_server.h"
#include "health.h"
#include "ingest_validate.h"
#include "log.h"
#include "prog.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_MAX_BATCHES 256
#define GROUP_MAX_EVENTS 50000
/* one group = one journal chunk, read and applied in one piece downstream:
 * a few MB keeps every stage's memory and latency small */
#define GROUP_MAX_BYTES (8 << 20)
/* frames a producer connection may have waiting inside ingest; beyond that
 * ingest stops reading it and TCP pushes back on the producer */
#define PRODUCER_HWM 8

struct pending_ack {
    struct zsock_env env;
    Licmon__V1__BatchAck ack;
};

/* licmonctl send's default frame (4 MiB) and some: always answered */
#define INGEST_ANSWERED_FRAME_MIN (5LL << 20)

struct ingest_server {
    struct ingest_server_config cfg;
    struct ingest_journal *j;
    void *producer, *internal;
    struct pending_ack *acks;
    struct svc *svc;
    int64_t last_tick_mono, last_retain_mono;
    struct prog_clock clock;  /* ingest's clock: every reading journaled comes from it */
    struct lstream_hold hold; /* over the backlog bound: the producer socket is not read */
    struct metric *m_bad_frames, *m_batches, *m_ticks, *m_unreadable;
};

/* Ingest's clock (timeutil.h's steady clock; README: a clock that is
 * wrong): a step of the host's clock reaches the journal, and so every
 * org's clock and timeouts, only once it has lasted. */
static int64_t ingest_now(struct ingest_server *s)
{
    int64_t now = prog_clock_now(&s->clock);
    ingest_journal_clock(s->j, now);
    return now;
}

static void send_ack(void *sock, const struct zsock_env *env, const Licmon__V1__BatchAck *ack)
{
    size_t len;
    uint8_t *buf = pb_pack(&ack->base, &len);
    if (zsock_send(sock, env, buf, len, ZMQ_DONTWAIT) < 0)
        log_warn("acknowledgement of batch %llu not sent: %s", (unsigned long long)ack->batch_id,
                 zmq_strerror(zmq_errno()));
    free(buf);
}

static void commit_or_die(struct ingest_server *s)
{
    if (ingest_journal_commit(s->j) != 0)
        log_fatal("journal write failed; exiting so unacknowledged batches are resent");
}

static void on_producer(void *arg);

/* Stops or resumes reading producers as the backlog crosses its bound. */
static void check_backlog(struct ingest_server *s)
{
    struct lstream *log = ingest_journal_log(s->j);
    int change = lstream_hold_update(log, &s->hold, (uint64_t)s->cfg.max_backlog_bytes);
    long long backlog_mb = (long long)(lstream_backlog_bytes(log) >> 20);
    if (change > 0) {
        svc_unwatch(s->svc, s->producer, -1);
        log_warn("journal backlog of %lld MB is over --max-backlog-mb %lld: producers wait until "
                 "the sessionizer catches up",
                 backlog_mb, (long long)(s->cfg.max_backlog_bytes >> 20));
    } else if (change < 0) {
        svc_watch(s->svc, s->producer, -1, on_producer, s);
        log_info("journal backlog down to %lld MB: taking producers' batches again", backlog_mb);
    }
}

static void on_producer(void *arg)
{
    struct ingest_server *s = arg;
    static struct log_limit bad_routing;
    int nacks = 0, dropped = 0;
    int64_t events = 0, bytes = 0, now = ingest_now(s);
    /* dropped messages count too: a flood of them must not keep us here */
    while (nacks + dropped < GROUP_MAX_BATCHES && events < GROUP_MAX_EVENTS &&
           bytes < GROUP_MAX_BYTES) {
        zmq_msg_t msg;
        bool bad;
        struct pending_ack *pa = &s->acks[nacks];
        if (zsock_recv(s->producer, &pa->env, &msg, ZMQ_DONTWAIT, &bad) != 0) {
            if (bad) {
                metric_add(s->m_bad_frames, 1);
                dropped++;
                log_warn_limited(&bad_routing, "producer message with too many or too large "
                                               "routing frames dropped");
                continue;
            }
            break;
        }
        licmon__v1__batch_ack__init(&pa->ack);
        size_t size = zmq_msg_size(&msg);
        bytes += (int64_t)size;
        Licmon__V1__EventBatch *batch = NULL;
        const char **nul_fields = NULL;
        long nev = -1; /* counted before unpacking, which allocates per event */
        if ((int64_t)size <= s->cfg.max_frame_bytes)
            nev = ingest_batch_count_events(zmq_msg_data(&msg), size);
        if ((int64_t)size <= s->cfg.max_frame_bytes && nev <= s->cfg.max_batch_events)
            batch = licmon__v1__event_batch__unpack(NULL, size, zmq_msg_data(&msg));
        if (!batch) { /* refused whole: name the batch if its id can be read */
            pb_peek_varint(zmq_msg_data(&msg), size, 1, &pa->ack.batch_id);
        } else if ((int64_t)batch->n_events <= s->cfg.max_batch_events) {
            nul_fields = xcalloc(batch->n_events + 1, sizeof(*nul_fields));
            ingest_batch_nul_fields(zmq_msg_data(&msg), size, batch->n_events, nul_fields);
        }
        zmq_msg_close(&msg);
        if ((int64_t)size > s->cfg.max_frame_bytes) {
            metric_add(s->m_bad_frames, 1);
            pa->ack.error = xasprintf("frame of %zu bytes is over the limit of %lld", size,
                                      (long long)s->cfg.max_frame_bytes);
        } else if (nev > s->cfg.max_batch_events ||
                   (batch && (int64_t)batch->n_events > s->cfg.max_batch_events)) {
            metric_add(s->m_bad_frames, 1);
            if (batch)
                pa->ack.batch_id = batch->batch_id;
            pa->ack.error = xasprintf("batch of %zu events is over the limit of %lld",
                                      batch ? batch->n_events : (size_t)nev,
                                      (long long)s->cfg.max_batch_events);
        } else if (!batch) {
            metric_add(s->m_bad_frames, 1);
            pa->ack.error = xasprintf("frame of %zu bytes is not an EventBatch", size);
        } else {
            ingest_journal_add_batch(s->j, batch, nul_fields, now, prog_clock_latest(&s->clock),
                                     &pa->ack);
            events += (int64_t)batch->n_events;
        }
        PB_FREE(event_batch, batch);
        free(nul_fields);
        metric_add(s->m_batches, 1);
        nacks++;
    }
    if (nacks == 0)
        return;
    commit_or_die(s);
    for (int i = 0; i < nacks; i++) {
        send_ack(s->producer, &s->acks[i].env, &s->acks[i].ack);
        if (s->acks[i].ack.error != protobuf_c_empty_string)
            free(s->acks[i].ack.error);
        ingest_journal_ack_clear(&s->acks[i].ack);
    }
    check_backlog(s);
}

static void on_internal(void *arg)
{
    struct ingest_server *s = arg;
    struct zsock_env env;
    Licmon__V1__Request *req;
    uint64_t unreadable = 0;
    while ((req = lstream_recv_request(s->internal, &env, &unreadable))) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        Licmon__V1__StatusReply sr = LICMON__V1__STATUS_REPLY__INIT;
        char err[200] = "";
        rep.id = req->id;
        struct lstream *log = ingest_journal_log(s->j);
        switch (req->body_case) {
        case LICMON__V1__REQUEST__BODY_FETCH:
            lstream_fetch(log, s->internal, &env, req->id, req->fetch);
            break;
        case LICMON__V1__REQUEST__BODY_STATUS:
            sr.program = "ingest";
            sr.head_seq = lstream_head(log);
            sr.applied_journal_seq = sr.head_seq;
            sr.instance = lstream_instance(log);
            rep.body_case = LICMON__V1__REPLY__BODY_STATUS;
            rep.status = &sr;
            lstream_send_reply(s->internal, &env, &rep);
            break;
        case LICMON__V1__REQUEST__BODY_PUT_SETTINGS:
            if (!settings_valid_org(req->put_settings->org)) {
                snprintf(err, sizeof(err), "org: must match [A-Za-z0-9._-]{1,64}");
                rep.error = err;
            } else {
                rep.journaled_seq =
                    ingest_journal_add_settings(s->j, req->put_settings, ingest_now(s));
                commit_or_die(s);
                rep.body_case = LICMON__V1__REPLY__BODY_JOURNALED_SEQ;
                log_info_ctx("org", req->put_settings->org, "settings change journaled as %llu",
                             (unsigned long long)rep.journaled_seq);
            }
            lstream_send_reply(s->internal, &env, &rep);
            break;
        default:
            rep.error = "request kind not served by ingest";
            lstream_send_reply(s->internal, &env, &rep);
        }
        PB_FREE(request, req);
    }
    metric_add(s->m_unreadable, (int64_t)unreadable);
}

/* Every tick period, journal ingest's clock so timeouts fire downstream in
 * real time, deterministically on replay. Also while events flow: an org's
 * clock follows its own events and the ticks, so the timeouts of a quiet org
 * would otherwise wait for a pause in every other org's traffic. */
static void on_tick(void *arg)
{
    struct ingest_server *s = arg;
    lstream_expire(ingest_journal_log(s->j));
    check_backlog(s);
    if (time_mono_ms() - s->last_retain_mono >= 60000 || s->last_retain_mono == 0) {
        s->last_retain_mono = time_mono_ms();
        ingest_journal_retain(s->j, ingest_now(s), s->cfg.journal_retention_ms);
    }
    if (time_mono_ms() - s->last_tick_mono < s->cfg.tick_ms)
        return;
    s->last_tick_mono = time_mono_ms();
    ingest_journal_add_tick(s->j, ingest_now(s));
    commit_or_die(s);
    metric_add(s->m_ticks, 1);
}

static int setup_curve(struct ingest_server *s)
{
    if (!s->cfg.curve_secret_file || !*s->cfg.curve_secret_file)
        return 0;
    char secret[41];
    if (zsock_read_key(s->cfg.curve_secret_file, secret) != 0) {
        log_warn("--curve-secret-file %s: no 40-character Z85 key on its first line",
                 s->cfg.curve_secret_file);
        return -1;
    }
    return zsock_set_curve_server(s->producer, secret);
}

struct ingest_server *ingest_server_new(const struct ingest_server_config *cfg, struct svc *svc,
                                        struct ingest_journal *j)
{
    struct ingest_server *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->j = j;
    s->acks = xcalloc(GROUP_MAX_BATCHES, sizeof(*s->acks));
    s->m_bad_frames = metric_counter("licmon_ingest_bad_frames_total",
                                     "producer frames that were not a valid EventBatch");
    s->m_batches = metric_counter("licmon_ingest_batches_total", "producer batches received");
    s->hold.m_backlog = metric_gauge("licmon_ingest_backlog_bytes",
                                     "journal bytes the sessionizer has not applied yet");
    s->hold.m_held = metric_gauge("licmon_ingest_producers_paused",
                                  "1 while producers wait because the backlog is over its bound");
    s->m_ticks = metric_counter("licmon_ingest_ticks_total", "clock ticks journaled");
    s->m_unreadable = metric_counter("licmon_internal_requests_unreadable_total",
                                     "frames on the internal socket that were not a Request");
    struct zsock_opts po = ZSOCK_OPTS_DEFAULT;
    /* frames a little over the limit are answered with an error (so is a
     * batch of licmonctl send's default size, under a limit lowered below
     * it, which then says how to fit); far larger ones make libzmq drop the
     * connection before they take memory */
    po.maxmsgsize = cfg->max_frame_bytes * 2 > INGEST_ANSWERED_FRAME_MIN
                        ? cfg->max_frame_bytes * 2
                        : INGEST_ANSWERED_FRAME_MIN;
    po.rcvhwm = PRODUCER_HWM; /* acks keep the default: a ROUTER drops what is over it */
    s->producer = zsock_open(ZMQ_ROUTER, NULL, true, &po);
    if (!s->producer || setup_curve(s) != 0 || zmq_bind(s->producer, cfg->producer_endpoint) != 0) {
        log_warn("cannot listen for producers on %s: %s", cfg->producer_endpoint,
                 zmq_strerror(zmq_errno()));
        ingest_server_free(&s);
        return NULL;
    }
    struct zsock_opts io = ZSOCK_OPTS_DEFAULT;
    s->internal = zsock_open(ZMQ_ROUTER, cfg->internal_endpoint, true, &io);
    if (!s->internal) {
        ingest_server_free(&s);
        return NULL;
    }
    s->svc = svc;
    /* a restart on the same boot goes on with the clock it saved */
    prog_clock_resume(&s->clock, "ingest", ingest_journal_store(s->j));
    ingest_now(s);
    s->last_tick_mono = time_mono_ms();
    svc_watch(svc, s->producer, -1, on_producer, s);
    svc_watch(svc, s->internal, -1, on_internal, s);
    svc_every(svc, cfg->tick_ms < 200 ? cfg->tick_ms : 200, on_tick, s);
    return s;
}

void ingest_server_free(struct ingest_server **sp)
{
    struct ingest_server *s = *sp;
    if (!s)
        return;
    zsock_close(&s->producer);
    zsock_close(&s->internal);
    free(s->acks);
    free(s);
    *sp = NULL;
}
