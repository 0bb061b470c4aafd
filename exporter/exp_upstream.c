/* exp_upstream: Lazy Pirate request/reply over a DEALER (see exp_upstream.h). */
#include "exp_upstream.h"
#include "health.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM_MAX_REPLY (64 * 1024 * 1024)

struct upstream_slot {
    void *sock;
    bool busy;
};

struct exp_upstream {
    char *name, *endpoint;
    int64_t timeout_ms;
    uint64_t next_id;
    unsigned n_slots;
    struct upstream_slot *slots;
    pthread_mutex_t lock; /* slots, next_id */
    pthread_cond_t freed;
    struct metric *m_timeouts;
    struct log_limit warn[EXP_UPSTREAM_WARN_KINDS];
};

/* One unlabelled counter for every client, registered before the labelled
 * timeout series so that lib/health prints each family in one block. */
static struct metric *upstream_stale;
static pthread_once_t upstream_once = PTHREAD_ONCE_INIT;

static void upstream_metrics_init(void)
{
    upstream_stale = metric_counter("licmon_exporter_upstream_stale_replies_total",
                                    "late, foreign or unreadable replies dropped");
}

struct exp_upstream *exp_upstream_new(const char *name, const char *endpoint, int64_t timeout_ms)
{
    return exp_upstream_new_pool(name, endpoint, timeout_ms, 1);
}

struct exp_upstream *exp_upstream_new_pool(const char *name, const char *endpoint,
                                           int64_t timeout_ms, unsigned sockets)
{
    struct exp_upstream *u = xcalloc(1, sizeof(*u));
    u->n_slots = sockets ? sockets : 1;
    u->slots = xcalloc(u->n_slots, sizeof(*u->slots));
    pthread_cond_init(&u->freed, NULL);
    u->name = xstrdup(name);
    u->endpoint = xstrdup(endpoint);
    u->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    /* ids start from the clock so a restarted exporter does not reuse them */
    u->next_id = (uint64_t)time_now_ms() << 12;
    pthread_mutex_init(&u->lock, NULL);
    pthread_once(&upstream_once, upstream_metrics_init);
    char *m = xasprintf("licmon_exporter_upstream_timeouts_total{upstream=\"%s\"}", name);
    u->m_timeouts = metric_counter(m, "requests to another program that got no answer in time");
    free(m);
    return u;
}

void exp_upstream_free(struct exp_upstream **up)
{
    struct exp_upstream *u = *up;
    if (!u)
        return;
    for (unsigned i = 0; i < u->n_slots; i++)
        zsock_close(&u->slots[i].sock);
    free(u->slots);
    pthread_cond_destroy(&u->freed);
    pthread_mutex_destroy(&u->lock);
    free(u->name);
    free(u->endpoint);
    free(u);
    *up = NULL;
}

const char *exp_upstream_name(const struct exp_upstream *u)
{
    return u->name;
}

struct log_limit *exp_upstream_warn_limit(struct exp_upstream *u, unsigned why)
{
    return &u->warn[why < EXP_UPSTREAM_WARN_KINDS ? why : EXP_UPSTREAM_WARN_KINDS - 1];
}

static int upstream_open(struct exp_upstream *u, struct upstream_slot *s)
{
    if (s->sock)
        return 0;
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    o.maxmsgsize = UPSTREAM_MAX_REPLY;
    s->sock = zsock_open(ZMQ_DEALER, u->endpoint, false, &o);
    return s->sock ? 0 : -1;
}

/* Waits for the reply to id until deadline (monotonic ms). */
static enum exp_upstream_result upstream_wait(struct exp_upstream *u, void *sock, uint64_t id,
                                              int64_t deadline, Licmon__V1__Reply **reply)
{
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return EXP_UP_TIMEOUT;
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0 && errno != EINTR) {
            log_warn("%s: poll: %s", u->name, zmq_strerror(errno));
            return EXP_UP_ERROR;
        }
        if (rc <= 0)
            continue;
        zmq_msg_t msg;
        bool bad;
        while (zsock_recv(sock, NULL, &msg, ZMQ_DONTWAIT, &bad) == 0 || bad) {
            if (bad) {
                metric_add(upstream_stale, 1);
                continue;
            }
            Licmon__V1__Reply *rep =
                licmon__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            zmq_msg_close(&msg);
            if (rep && rep->id == id) {
                *reply = rep;
                return EXP_UP_OK;
            }
            metric_add(upstream_stale, 1);
            if (!rep)
                log_warn("%s: an unreadable reply was dropped", u->name);
            PB_FREE(reply, rep);
        }
    }
}

enum exp_upstream_result exp_upstream_call(struct exp_upstream *u, Licmon__V1__Request *req,
                                           int64_t timeout_ms, Licmon__V1__Reply **reply)
{
    *reply = NULL;
    if (timeout_ms <= 0)
        timeout_ms = u->timeout_ms;
    int64_t deadline = time_mono_ms() + timeout_ms;
    pthread_mutex_lock(&u->lock);
    struct upstream_slot *s = NULL;
    for (;;) {
        for (unsigned i = 0; i < u->n_slots && !s; i++)
            if (!u->slots[i].busy)
                s = &u->slots[i];
        if (s)
            break;
        pthread_cond_wait(&u->freed, &u->lock);
    }
    s->busy = true;
    uint64_t id = ++u->next_id;
    pthread_mutex_unlock(&u->lock);

    enum exp_upstream_result res = EXP_UP_ERROR;
    if (upstream_open(u, s) == 0) {
        req->id = id;
        size_t len;
        uint8_t *buf = pb_pack(&req->base, &len);
        if (zsock_send(s->sock, NULL, buf, len, ZMQ_DONTWAIT) == 0) {
            res = upstream_wait(u, s->sock, req->id, deadline, reply);
        } else {
            /* the queue to a peer that never came is full: as good as a timeout */
            log_warn("%s: request not sent: %s", u->name, zmq_strerror(zmq_errno()));
            res = EXP_UP_TIMEOUT;
        }
        free(buf);
    }
    if (res != EXP_UP_OK) {
        if (res == EXP_UP_TIMEOUT)
            metric_add(u->m_timeouts, 1);
        zsock_close(&s->sock); /* Lazy Pirate: a fresh socket for the next request */
    }
    pthread_mutex_lock(&u->lock);
    s->busy = false;
    pthread_cond_signal(&u->freed);
    pthread_mutex_unlock(&u->lock);
    return res;
}
