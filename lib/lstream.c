/* lstream: durable output log served by fetch (see lstream.h). Keys:
 * 'L' + be64(seq) -> record; 'K' + be64(seq) -> the chain hash up to it;
 * 'M' "head", "head_hash", "jseq", "ack:<consumer>", "log_id", "trimmed",
 * "trimmed_hash". */
#include "lstream.h"
#include "hash.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define LSTREAM_PARK_MAX 16
#define LSTREAM_REPLY_MAX_RECORDS 4096
#define LSTREAM_REPLY_MAX_BYTES (8u << 20)
#define LSTREAM_CONSUMERS_MAX 8

struct lstream_parked {
    void *router;
    struct zsock_env env;
    uint64_t req_id, from;
    uint32_t max;
    int64_t deadline;
};

/* Sizes of the records not yet applied by every consumer, oldest first. */
struct lstream_sizes {
    struct {
        uint64_t seq, len;
    } * r;
    size_t first, n, cap; /* a ring */
    uint64_t bytes;       /* sum over the committed ones */
    size_t pending;       /* appended, not committed: the last ones */
};

struct lstream {
    struct store *st;
    struct lstream_sizes sizes;
    uint64_t head, pending_head; /* committed / appended */
    uint64_t jseq, pending_jseq;
    uint64_t hash, pending_hash; /* the chain hash at head / pending_head */
    uint64_t trimmed;            /* records <= trimmed are gone */
    uint64_t trimmed_hash;       /* the chain hash at trimmed (0: unknown) */
    uint64_t trim_limit;         /* records >= trim_limit are kept regardless */
    char *consumers[LSTREAM_CONSUMERS_MAX];
    uint64_t acks[LSTREAM_CONSUMERS_MAX];
    int nconsumers;
    struct lstream_parked parked[LSTREAM_PARK_MAX];
    int nparked;
    uint8_t id[LSTREAM_ID_LEN];
    uint64_t instance;
};

static const char LS_HEAD[] = "Mhead", LS_HASH[] = "Mhead_hash", LS_JSEQ[] = "Mjseq",
                  LS_TRIM[] = "Mtrimmed", LS_TRIM_HASH[] = "Mtrimmed_hash", LS_ID[] = "Mlog_id";

static size_t lstream_key_ns(uint8_t key[9], uint8_t ns, uint64_t seq)
{
    key[0] = ns;
    keys_put_u64(key + 1, seq);
    return 9;
}

static size_t lstream_key(uint8_t key[9], uint64_t seq)
{
    return lstream_key_ns(key, KEY_NS_LOG, seq);
}

/* The chain hash of record seq follows from the one before it and the
 * record's bytes: equal hashes at a seq mean the same records up to it. 0
 * stands for "unknown" (records written before logs had chains). */
static uint64_t lstream_chain(uint64_t prev, const void *rec, size_t len)
{
    uint8_t p[8];
    keys_put_u64(p, prev);
    uint64_t h = hash_fnv1a(hash_fnv1a(HASH_FNV_SEED, p, sizeof(p)), rec, len);
    return h ? h : 1;
}

/* The chain hash of record seq into *h: 0 when unknown (never written, or
 * gone). -1 when it cannot be read. */
static int lstream_hash_at(struct lstream *ls, uint64_t seq, uint64_t *h)
{
    *h = 0;
    if (seq == ls->head) {
        *h = ls->hash;
        return 0;
    }
    if (seq == ls->trimmed) {
        *h = ls->trimmed_hash;
        return 0;
    }
    uint8_t key[9];
    if (seq < ls->trimmed || seq > ls->head)
        return 0;
    return store_get_u64(ls->st, key, lstream_key_ns(key, KEY_NS_CHAIN, seq), h) < 0 ? -1 : 0;
}

void lstream_put_hash(struct store_batch *b, const char *k, uint64_t seq, uint64_t h)
{
    uint8_t v[16];
    keys_put_u64(v, seq);
    keys_put_u64(v + 8, h);
    store_batch_put(b, k, strlen(k), v, sizeof(v));
}

uint64_t lstream_get_hash(struct store *st, const char *k, uint64_t seq)
{
    uint8_t v[16];
    int rc = store_get_fixed(st, k, strlen(k), v, sizeof(v));
    if (rc < 0)
        log_fatal("cannot read %s from the store", k);
    return rc == 1 && keys_get_u64(v) == seq ? keys_get_u64(v + 8) : 0;
}

static uint64_t lstream_meta(struct store *st, const char *k)
{
    uint64_t v = 0;
    if (store_get_u64(st, k, strlen(k), &v) < 0)
        log_fatal("cannot read %s from the store", k);
    return v;
}

static void sizes_push(struct lstream_sizes *z, uint64_t seq, uint64_t len)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 1024;
        z->r = xrealloc(z->r, cap * sizeof(*z->r));
        /* unwrap: the entries before first move after the old end */
        if (z->first + z->n > z->cap)
            memcpy(z->r + z->cap, z->r, (z->first + z->n - z->cap) * sizeof(*z->r));
        z->cap = cap;
    }
    size_t i = (z->first + z->n++) % z->cap;
    z->r[i].seq = seq;
    z->r[i].len = len;
}

/* Forgets the sizes of records up to seq (applied by every consumer). */
static void sizes_drop(struct lstream_sizes *z, uint64_t upto)
{
    while (z->n > z->pending && z->r[z->first].seq <= upto) {
        z->bytes -= z->r[z->first].len;
        z->first = (z->first + 1) % z->cap;
        z->n--;
    }
}

static uint64_t lstream_min_ack(const struct lstream *ls)
{
    uint64_t upto = UINT64_MAX;
    for (int i = 0; i < ls->nconsumers; i++)
        if (ls->acks[i] < upto)
            upto = ls->acks[i];
    return upto;
}

/* At open: the sizes of the committed records some consumer has not applied. */
static void sizes_load(struct lstream *ls)
{
    uint64_t from = lstream_min_ack(ls) + 1;
    if (ls->nconsumers == 0 || from > ls->head)
        return;
    uint8_t key[9], end = KEY_NS_LOG + 1;
    struct store_iter *it = store_iter_range(ls->st, key, lstream_key(key, from), &end, 1);
    for (; store_iter_valid(it); store_iter_next(it)) {
        size_t kl, vl;
        const char *k = store_iter_key(it, &kl);
        if (kl != 9)
            break;
        store_iter_value(it, &vl);
        sizes_push(&ls->sizes, keys_get_u64((const uint8_t *)k + 1), vl);
        ls->sizes.bytes += vl;
    }
    if (store_iter_status(it) < 0) /* a fetch of the record says so too */
        log_warn("the log's backlog counts only the records before one it cannot read");
    store_iter_free(&it);
}

/* The log's identity: read back, or drawn and stored when the database has
 * none (a new one, or one written before logs had identities). */
static void lstream_load_id(struct lstream *ls)
{
    int rc = store_get_fixed(ls->st, LS_ID, strlen(LS_ID), ls->id, sizeof(ls->id));
    if (rc < 0)
        log_fatal("cannot read %s from the store", LS_ID);
    if (rc == 1)
        return;
    xrandom(ls->id, sizeof(ls->id));
    struct store_batch *b = store_batch_new();
    store_batch_put(b, LS_ID, strlen(LS_ID), ls->id, sizeof(ls->id));
    if (store_write(ls->st, b, true) != 0)
        log_fatal("cannot store the log's identity");
    store_batch_free(&b);
}

struct lstream *lstream_open(struct store *st, const char *const *consumers)
{
    struct lstream *ls = xcalloc(1, sizeof(*ls));
    ls->st = st;
    lstream_load_id(ls);
    do
        xrandom(&ls->instance, sizeof(ls->instance));
    while (!ls->instance);
    ls->head = ls->pending_head = lstream_meta(st, LS_HEAD);
    ls->hash = ls->pending_hash = lstream_get_hash(st, LS_HASH, ls->head);
    ls->jseq = ls->pending_jseq = lstream_meta(st, LS_JSEQ);
    ls->trimmed = lstream_meta(st, LS_TRIM);
    ls->trimmed_hash = lstream_get_hash(st, LS_TRIM_HASH, ls->trimmed);
    ls->trim_limit = UINT64_MAX;
    for (int i = 0; consumers && consumers[i] && i < LSTREAM_CONSUMERS_MAX; i++) {
        ls->consumers[i] = xasprintf("Mack:%s", consumers[i]);
        ls->acks[i] = lstream_meta(st, ls->consumers[i]);
        ls->nconsumers++;
    }
    sizes_load(ls);
    return ls;
}

void lstream_free(struct lstream **lsp)
{
    struct lstream *ls = *lsp;
    if (!ls)
        return;
    for (int i = 0; i < ls->nconsumers; i++)
        free(ls->consumers[i]);
    free(ls->sizes.r);
    free(ls);
    *lsp = NULL;
}

uint64_t lstream_append(struct lstream *ls, struct store_batch *b, const void *rec, size_t len)
{
    uint8_t key[9];
    uint64_t seq = ++ls->pending_head;
    store_batch_put(b, key, lstream_key(key, seq), rec, len);
    ls->pending_hash = lstream_chain(ls->pending_hash, rec, len);
    store_batch_put_u64(b, key, lstream_key_ns(key, KEY_NS_CHAIN, seq), ls->pending_hash);
    lstream_put_hash(b, LS_HASH, seq, ls->pending_hash);
    if (ls->nconsumers > 0) {
        sizes_push(&ls->sizes, seq, len);
        ls->sizes.pending++;
    }
    store_batch_put_u64(b, LS_HEAD, strlen(LS_HEAD), seq);
    return seq;
}

void lstream_set_journal_seq(struct lstream *ls, struct store_batch *b, uint64_t journal_seq)
{
    ls->pending_jseq = journal_seq;
    store_batch_put_u64(b, LS_JSEQ, strlen(LS_JSEQ), journal_seq);
}

uint64_t lstream_backlog_bytes(const struct lstream *ls)
{
    return ls->sizes.bytes;
}

int lstream_hold_update(const struct lstream *ls, struct lstream_hold *h, uint64_t bound)
{
    uint64_t backlog = ls->sizes.bytes;
    bool over = bound && backlog > (h->held ? bound / 4 * 3 : bound);
    metric_set(h->m_backlog, (int64_t)backlog);
    if (over == h->held)
        return 0;
    h->held = over;
    metric_set(h->m_held, over);
    return over ? 1 : -1;
}

uint64_t lstream_head(const struct lstream *ls)
{
    return ls->head;
}

uint64_t lstream_journal_seq(const struct lstream *ls)
{
    return ls->jseq;
}

const uint8_t *lstream_id(const struct lstream *ls)
{
    return ls->id;
}

uint64_t lstream_instance(const struct lstream *ls)
{
    return ls->instance;
}

void lstream_send_reply(void *router, const struct zsock_env *env, const Licmon__V1__Reply *rep)
{
    size_t len;
    uint8_t *buf = pb_pack(&rep->base, &len);
    if (zsock_send(router, env, buf, len, ZMQ_DONTWAIT) < 0)
        log_warn("reply to request %llu not sent: %s", (unsigned long long)rep->id,
                 zmq_strerror(zmq_errno()));
    free(buf);
}

Licmon__V1__Request *lstream_recv_request(void *router, struct zsock_env *env, uint64_t *unreadable)
{
    zmq_msg_t msg;
    bool bad;
    while (zsock_recv(router, env, &msg, ZMQ_DONTWAIT, &bad) == 0 || bad) {
        if (!bad) {
            Licmon__V1__Request *req =
                licmon__v1__request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            zmq_msg_close(&msg);
            if (req)
                return req;
            Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
            rep.error = "unreadable request";
            lstream_send_reply(router, env, &rep);
        }
        if (unreadable)
            (*unreadable)++;
    }
    return NULL;
}

static void lstream_answer(struct lstream *ls, void *router, const struct zsock_env *env,
                           uint64_t req_id, uint64_t from, uint32_t max)
{
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    Licmon__V1__FetchReply fr = LICMON__V1__FETCH_REPLY__INIT;
    rep.id = req_id;
    if (from <= ls->trimmed && ls->trimmed > 0) {
        rep.error =
            xasprintf("records before %llu are trimmed", (unsigned long long)(ls->trimmed + 1));
        lstream_send_reply(router, env, &rep);
        free(rep.error);
        return;
    }
    rep.body_case = LICMON__V1__REPLY__BODY_FETCH;
    rep.fetch = &fr;
    fr.head_seq = ls->head;
    fr.journal_seq = ls->jseq;
    fr.log_id.data = ls->id;
    fr.log_id.len = sizeof(ls->id);
    fr.instance = ls->instance;
    fr.first_seq = from;
    if (max == 0 || max > LSTREAM_REPLY_MAX_RECORDS)
        max = LSTREAM_REPLY_MAX_RECORDS;
    ProtobufCBinaryData *recs = NULL;
    uint64_t *hashes = NULL;
    size_t n = 0, bytes = 0;
    uint64_t unreadable = 0; /* a record a read error kept from us */
    if (from <= ls->head) {
        uint64_t last = ls->head;
        if (last - from + 1 > max)
            last = from + max - 1;
        recs = xcalloc((size_t)(last - from + 1), sizeof(*recs));
        hashes = xcalloc((size_t)(last - from + 1), sizeof(*hashes));
        uint8_t key[9], end[9];
        struct store_iter *it =
            store_iter_range(ls->st, key, lstream_key(key, from), end, lstream_key(end, last + 1));
        struct store_iter *hit =
            store_iter_range(ls->st, key, lstream_key_ns(key, KEY_NS_CHAIN, from), end,
                             lstream_key_ns(end, KEY_NS_CHAIN, last + 1));
        for (uint64_t seq = from; seq <= last; seq++) {
            size_t kl, vl;
            const char *k = store_iter_valid(it) ? store_iter_key(it, &kl) : NULL;
            if (!k || kl != 9 || keys_get_u64((const uint8_t *)k + 1) != seq) {
                if (store_iter_status(it) < 0) {
                    unreadable = n ? 0 : seq; /* those before it go: the next fetch fails */
                    break;
                }
                log_panic("log record %llu is missing", (unsigned long long)seq);
            }
            /* records from before logs had chains have no hash: 0 */
            const char *hk = store_iter_valid(hit) ? store_iter_key(hit, &kl) : NULL;
            if (hk && kl == 9 && keys_get_u64((const uint8_t *)hk + 1) == seq) {
                const char *hv = store_iter_value(hit, &vl);
                if (vl == 8)
                    hashes[n] = keys_get_u64((const uint8_t *)hv);
                store_iter_next(hit);
            } else if (store_iter_status(hit) < 0) {
                unreadable = n ? 0 : seq; /* not "no hash": that skips the chain check */
                break;
            }
            const char *v = store_iter_value(it, &vl);
            recs[n].data = xmemdup(v, vl);
            recs[n].len = vl;
            n++;
            bytes += recs[n - 1].len;
            if (bytes > LSTREAM_REPLY_MAX_BYTES)
                break;
            store_iter_next(it);
        }
        store_iter_free(&hit);
        store_iter_free(&it);
        if (n > 0 && from + n - 1 < ls->head)
            fr.journal_seq = 0; /* not caught up: no watermark */
    }
    fr.records = recs;
    fr.n_records = n;
    fr.hashes = hashes;
    fr.n_hashes = n;
    if (unreadable) { /* the consumer waits and asks again; the log says why */
        rep.body_case = LICMON__V1__REPLY__BODY__NOT_SET;
        rep.error = xasprintf("cannot read record %llu of the log: a read error (see the log of "
                              "its program)",
                              (unsigned long long)unreadable);
    }
    lstream_send_reply(router, env, &rep);
    if (unreadable)
        free(rep.error);
    for (size_t i = 0; i < n; i++)
        free(recs[i].data);
    free(recs);
    free(hashes);
}

static void lstream_trim(struct lstream *ls)
{
    if (ls->nconsumers == 0)
        return;
    uint64_t upto = lstream_min_ack(ls);
    sizes_drop(&ls->sizes, upto);
    if (ls->trim_limit != UINT64_MAX && upto >= ls->trim_limit)
        upto = ls->trim_limit > 0 ? ls->trim_limit - 1 : 0;
    if (upto <= ls->trimmed)
        return;
    /* trim in steps so one delete-range covers many records */
    if (upto <= ls->trimmed + 1024 && !(upto > ls->trimmed && upto == ls->head))
        return;
    uint64_t upto_hash;
    if (lstream_hash_at(ls, upto, &upto_hash) != 0)
        return; /* read errors are logged; trimming can wait */
    struct store_batch *b = store_batch_new();
    uint8_t from[9], to[9];
    store_batch_del_range(b, from, lstream_key(from, 0), to, lstream_key(to, upto + 1));
    store_batch_del_range(b, from, lstream_key_ns(from, KEY_NS_CHAIN, 0), to,
                          lstream_key_ns(to, KEY_NS_CHAIN, upto + 1));
    store_batch_put_u64(b, LS_TRIM, strlen(LS_TRIM), upto);
    lstream_put_hash(b, LS_TRIM_HASH, upto, upto_hash);
    if (store_write(ls->st, b, false) == 0) {
        ls->trimmed = upto;
        ls->trimmed_hash = upto_hash;
    }
    store_batch_free(&b);
}

static void lstream_ack(struct lstream *ls, const char *consumer, uint64_t acked)
{
    for (int i = 0; i < ls->nconsumers; i++) {
        if (strcmp(ls->consumers[i] + 5, consumer) != 0)
            continue;
        if (acked > ls->head)
            acked = ls->head;
        if (acked > ls->acks[i]) {
            ls->acks[i] = acked;
            struct store_batch *b = store_batch_new();
            store_batch_put_u64(b, ls->consumers[i], strlen(ls->consumers[i]), acked);
            store_write(ls->st, b, false);
            store_batch_free(&b);
        }
    }
    lstream_trim(ls);
}

void lstream_set_trim_limit(struct lstream *ls, uint64_t keep_from)
{
    ls->trim_limit = keep_from;
    lstream_trim(ls);
}

uint64_t lstream_first(const struct lstream *ls)
{
    return ls->trimmed + 1;
}

int lstream_get(struct lstream *ls, uint64_t seq, char **val, size_t *len)
{
    uint8_t key[9];
    if (seq <= ls->trimmed || seq > ls->head)
        return 0;
    return store_get(ls->st, key, lstream_key(key, seq), val, len);
}

/* Why the records a consumer of this log applied (up to from - 1) are not
 * the ones it holds, or NULL. Only a consumer that names this log is asked
 * (one that applied another log sees the identity differ). */
static char *lstream_check_applied(struct lstream *ls, const Licmon__V1__FetchRequest *req,
                                   uint64_t from)
{
    uint64_t last = from - 1;
    if (last > ls->head) /* the text stays the same while it grows: logged once */
        return xasprintf("this log holds fewer records than the %llu the consumer applied from "
                         "it: its database was restored from an older copy",
                         (unsigned long long)last);
    uint64_t h = 0;
    if (last > 0 && req->after_hash && lstream_hash_at(ls, last, &h) != 0)
        return xasprintf("cannot read the chain hash of record %llu", (unsigned long long)last);
    if (h && h != req->after_hash)
        return xasprintf("record %llu of this log is not the one the consumer applied: its "
                         "database was restored from an older copy and has grown since",
                         (unsigned long long)last);
    return NULL;
}

void lstream_fetch(struct lstream *ls, void *router, const struct zsock_env *env, uint64_t req_id,
                   const Licmon__V1__FetchRequest *req)
{
    uint64_t from = req->from_seq ? req->from_seq : 1;
    /* what a consumer applied from another log acknowledges nothing here */
    bool ours = !req->log_id.len || (req->log_id.len == sizeof(ls->id) &&
                                     !memcmp(req->log_id.data, ls->id, sizeof(ls->id)));
    char *why = ours && req->log_id.len ? lstream_check_applied(ls, req, from) : NULL;
    if (why) { /* nor does one whose records differ from this log's */
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        rep.id = req_id;
        rep.error = why;
        lstream_send_reply(router, env, &rep);
        free(why);
        return;
    }
    if (ours)
        lstream_ack(ls, req->consumer ? req->consumer : "",
                    req->explicit_ack ? (req->acked_seq < from ? req->acked_seq : from - 1)
                                      : from - 1);
    if (from <= ls->head || req->wait_ms == 0) {
        lstream_answer(ls, router, env, req_id, from, req->max_records);
        return;
    }
    if (ls->nparked == LSTREAM_PARK_MAX) {
        /* full (stale fetches of consumers that reconnected, or a client
         * parking many): the oldest is answered now, empty. Answering the new
         * one at once instead made its consumer ask again at once, in a loop */
        int oldest = 0;
        for (int i = 1; i < ls->nparked; i++)
            if (ls->parked[i].deadline < ls->parked[oldest].deadline)
                oldest = i;
        struct lstream_parked *o = &ls->parked[oldest];
        lstream_answer(ls, o->router, &o->env, o->req_id, o->from, o->max);
        ls->parked[oldest] = ls->parked[--ls->nparked];
    }
    struct lstream_parked *p = &ls->parked[ls->nparked++];
    p->router = router;
    p->env = *env;
    p->req_id = req_id;
    p->from = from;
    p->max = req->max_records;
    p->deadline = time_mono_ms() + (req->wait_ms > 30000 ? 30000 : req->wait_ms);
}

/* Answers parked fetches that have records, or all of them when the log's
 * journal seq moved (their consumers learn the new watermark), or those past
 * their deadline when expired is set. */
static void lstream_wake(struct lstream *ls, bool jseq_moved, bool expired)
{
    int64_t now = time_mono_ms();
    for (int i = 0; i < ls->nparked;) {
        struct lstream_parked *p = &ls->parked[i];
        if (p->from <= ls->head || jseq_moved || (expired && p->deadline <= now)) {
            lstream_answer(ls, p->router, &p->env, p->req_id, p->from, p->max);
            ls->parked[i] = ls->parked[--ls->nparked];
        } else {
            i++;
        }
    }
}

void lstream_commit(struct lstream *ls, bool ok)
{
    struct lstream_sizes *z = &ls->sizes;
    if (!ok) {
        ls->pending_head = ls->head;
        ls->pending_hash = ls->hash;
        ls->pending_jseq = ls->jseq;
        z->n -= z->pending;
        z->pending = 0;
        return;
    }
    for (size_t i = z->n - z->pending; i < z->n; i++)
        z->bytes += z->r[(z->first + i) % z->cap].len;
    z->pending = 0;
    bool moved = ls->jseq != ls->pending_jseq;
    ls->head = ls->pending_head;
    ls->hash = ls->pending_hash;
    ls->jseq = ls->pending_jseq;
    lstream_wake(ls, moved, false);
}

void lstream_expire(struct lstream *ls)
{
    lstream_wake(ls, false, true);
}
