/* Tests of the durable log links (lib/lstream.c) over a real RocksDB and
 * real ZeroMQ sockets (inproc): fetch, long poll, trimming, restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "damage.h"
#include "health.h"
#include "lstream.h"
#include "store.h"
#include "zsock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    struct store *st;
    struct lstream *ls;
    void *router, *dealer;
    uint64_t next_id;
    ProtobufCBinaryData log_id; /* the log the fetches name (empty: none) */
    uint64_t after_hash;        /* what they say record from - 1 hashed to */
};

static const char *const consumers[] = {"c1", NULL};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/lm-lstream-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st = store_open(f->dir);
    assert_non_null(f->st);
    f->ls = lstream_open(f->st, consumers);
    char ep[96];
    snprintf(ep, sizeof(ep), "inproc://lstream-%d", getpid());
    f->router = zsock_open(ZMQ_ROUTER, ep, true, NULL);
    f->dealer = zsock_open(ZMQ_DEALER, ep, false, NULL);
    assert_non_null(f->router);
    assert_non_null(f->dealer);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    zsock_close(&f->dealer);
    zsock_close(&f->router);
    lstream_free(&f->ls);
    store_close(&f->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void append_n(struct fixture *f, int n, int base)
{
    struct store_batch *b = store_batch_new();
    for (int i = 0; i < n; i++) {
        char rec[32];
        int len = snprintf(rec, sizeof(rec), "rec-%d", base + i);
        lstream_append(f->ls, b, rec, (size_t)len);
    }
    lstream_set_journal_seq(f->ls, b, (uint64_t)(base + n));
    assert_int_equal(store_write(f->st, b, true), 0);
    lstream_commit(f->ls, true);
    store_batch_free(&b);
}

/* Sends a fetch from the dealer and lets the router side handle it; acked
 * >= 0 sets an explicit acknowledgement (fetching ahead of a commit). */
static uint64_t fetch_acked(struct fixture *f, uint64_t from, uint32_t max, uint32_t wait_ms,
                            int64_t acked)
{
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    Licmon__V1__FetchRequest fr = LICMON__V1__FETCH_REQUEST__INIT;
    req.id = ++f->next_id;
    req.body_case = LICMON__V1__REQUEST__BODY_FETCH;
    req.fetch = &fr;
    fr.consumer = "c1";
    fr.from_seq = from;
    fr.max_records = max;
    fr.wait_ms = wait_ms;
    fr.log_id = f->log_id;
    fr.after_hash = f->after_hash;
    if (acked >= 0) {
        fr.explicit_ack = true;
        fr.acked_seq = (uint64_t)acked;
    }
    size_t len;
    uint8_t *buf = pb_pack(&req.base, &len);
    assert_int_equal(zsock_send(f->dealer, NULL, buf, len, 0), 0);
    free(buf);
    zmq_msg_t msg;
    struct zsock_env env;
    assert_int_equal(zsock_recv(f->router, &env, &msg, 0, NULL), 0);
    Licmon__V1__Request *got =
        licmon__v1__request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    assert_non_null(got);
    lstream_fetch(f->ls, f->router, &env, got->id, got->fetch);
    licmon__v1__request__free_unpacked(got, NULL);
    return req.id;
}

static uint64_t fetch(struct fixture *f, uint64_t from, uint32_t max, uint32_t wait_ms)
{
    return fetch_acked(f, from, max, wait_ms, -1);
}

/* The next reply on the dealer, or NULL when none comes within ms. */
static Licmon__V1__Reply *reply(struct fixture *f, int ms)
{
    zmq_pollitem_t it = {.socket = f->dealer, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    assert_int_equal(zsock_recv(f->dealer, NULL, &msg, 0, NULL), 0);
    Licmon__V1__Reply *r = licmon__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    assert_non_null(r);
    return r;
}

static void test_fetch_in_order_with_limits(void **state)
{
    struct fixture *f = *state;
    append_n(f, 10, 1);
    uint64_t id = fetch(f, 1, 4, 0);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    assert_int_equal(r->fetch->first_seq, 1);
    assert_int_equal(r->fetch->n_records, 4);
    assert_memory_equal(r->fetch->records[3].data, "rec-4", 5);
    assert_int_equal(r->fetch->head_seq, 10);
    assert_int_equal(r->fetch->journal_seq, 0); /* not caught up: no watermark */
    licmon__v1__reply__free_unpacked(r, NULL);
    fetch(f, 5, 100, 0);
    r = reply(f, 1000);
    assert_int_equal(r->fetch->n_records, 6);
    assert_int_equal(r->fetch->journal_seq, 11); /* caught up: the watermark */
    licmon__v1__reply__free_unpacked(r, NULL);
}

static void test_long_poll_answers_on_commit(void **state)
{
    struct fixture *f = *state;
    append_n(f, 2, 1);
    uint64_t id = fetch(f, 3, 100, 5000);
    assert_null(reply(f, 100)); /* parked */
    append_n(f, 1, 3);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    assert_int_equal(r->fetch->n_records, 1);
    assert_memory_equal(r->fetch->records[0].data, "rec-3", 5);
    licmon__v1__reply__free_unpacked(r, NULL);
    /* expiry answers an empty reply */
    fetch(f, 4, 100, 50);
    usleep(80 * 1000);
    lstream_expire(f->ls);
    r = reply(f, 1000);
    assert_non_null(r);
    assert_int_equal(r->fetch->n_records, 0);
    licmon__v1__reply__free_unpacked(r, NULL);
}

static void test_trim_after_ack_and_restart(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3000, 1);
    fetch(f, 2001, 10, 0); /* acknowledges 1..2000 */
    Licmon__V1__Reply *r = reply(f, 1000);
    licmon__v1__reply__free_unpacked(r, NULL);
    fetch(f, 1, 10, 0);
    r = reply(f, 1000);
    assert_non_null(r->error);
    assert_non_null(strstr(r->error, "trimmed"));
    licmon__v1__reply__free_unpacked(r, NULL);
    /* reopen: head, watermark and trim point survive */
    lstream_free(&f->ls);
    store_close(&f->st);
    f->st = store_open(f->dir);
    f->ls = lstream_open(f->st, consumers);
    assert_int_equal(lstream_head(f->ls), 3000);
    assert_int_equal(lstream_journal_seq(f->ls), 3001);
    fetch(f, 2999, 10, 0);
    r = reply(f, 1000);
    assert_int_equal(r->fetch->n_records, 2);
    assert_memory_equal(r->fetch->records[1].data, "rec-3000", 8);
    licmon__v1__reply__free_unpacked(r, NULL);
}

static void test_trim_limit_keeps_a_window(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3000, 1);
    lstream_set_trim_limit(f->ls, 2500);
    fetch(f, 3001, 10, 0); /* everything applied */
    Licmon__V1__Reply *r = reply(f, 1000);
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_first(f->ls), 2500);
    char *v;
    size_t len;
    assert_int_equal(lstream_get(f->ls, 2499, &v, &len), 0);
    assert_int_equal(lstream_get(f->ls, 2500, &v, &len), 1);
    assert_memory_equal(v, "rec-2500", 8);
    free(v);
    lstream_set_trim_limit(f->ls, UINT64_MAX);
    assert_int_equal(lstream_first(f->ls), 3001);
}

static void test_failed_commit_forgets_pending(void **state)
{
    struct fixture *f = *state;
    append_n(f, 2, 1);
    struct store_batch *b = store_batch_new();
    lstream_append(f->ls, b, "x", 1);
    lstream_commit(f->ls, false);
    store_batch_free(&b);
    assert_int_equal(lstream_head(f->ls), 2);
    append_n(f, 1, 3);
    assert_int_equal(lstream_head(f->ls), 3);
}

static uint64_t rec_bytes(int from, int to)
{
    uint64_t n = 0;
    char rec[32];
    for (int i = from; i <= to; i++)
        n += (uint64_t)snprintf(rec, sizeof(rec), "rec-%d", i);
    return n;
}

static void ack(struct fixture *f, uint64_t from)
{
    fetch(f, from, 1, 0);
    Licmon__V1__Reply *r = reply(f, 1000);
    licmon__v1__reply__free_unpacked(r, NULL);
}

/* The backlog (bytes not applied by every consumer) follows appends, acks
 * and failed commits, across the ring's growth while it wraps, and is the
 * same after a reopen. */
static void test_backlog_bytes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(lstream_backlog_bytes(f->ls), 0);
    append_n(f, 1000, 1);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1, 1000));
    ack(f, 601);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(601, 1000));
    append_n(f, 1500, 1001);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(601, 2500));
    struct store_batch *b = store_batch_new();
    lstream_append(f->ls, b, "pending", 7);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(601, 2500));
    lstream_commit(f->ls, false);
    store_batch_free(&b);
    ack(f, 1701);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1701, 2500));
    lstream_free(&f->ls);
    store_close(&f->st);
    f->st = store_open(f->dir);
    f->ls = lstream_open(f->st, consumers);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1701, 2500));
    ack(f, 2501);
    assert_int_equal(lstream_backlog_bytes(f->ls), 0);
    /* the bound of a writer held back by it: over it to hold, a quarter
     * drained to go on */
    append_n(f, 1000, 2501);
    uint64_t b1000 = rec_bytes(2501, 3500);
    struct lstream_hold h = {.m_backlog = metric_gauge("test_backlog", ""),
                             .m_held = metric_gauge("test_held", "")};
    assert_int_equal(lstream_hold_update(f->ls, &h, 0), 0);
    assert_int_equal(metric_get(h.m_backlog), (int64_t)b1000);
    assert_int_equal(lstream_hold_update(f->ls, &h, b1000), 0);
    assert_int_equal(lstream_hold_update(f->ls, &h, b1000 - 1), 1);
    assert_true(h.held);
    assert_int_equal(metric_get(h.m_held), 1);
    assert_int_equal(lstream_hold_update(f->ls, &h, b1000 * 5 / 4), 0);
    assert_int_equal(lstream_hold_update(f->ls, &h, b1000 * 4 / 3 + 4), -1);
    assert_false(h.held);
    assert_int_equal(metric_get(h.m_held), 0);
}

/* A consumer fetching ahead acknowledges only what it committed: nothing
 * past acked_seq is trimmed or counted as applied, and an acked_seq beyond
 * the page asked for counts as from - 1. */
static void test_fetch_ahead_acknowledges_only_acked(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3000, 1);
    fetch_acked(f, 2501, 10, 0, 1500);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_int_equal(r->fetch->first_seq, 2501);
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1501, 3000));
    fetch(f, 1501, 10, 0); /* still there */
    r = reply(f, 1000);
    assert_string_equal(r->error, "");
    assert_int_equal(r->fetch->first_seq, 1501);
    assert_memory_equal(r->fetch->records[0].data, "rec-1501", 8);
    licmon__v1__reply__free_unpacked(r, NULL);
    fetch_acked(f, 2001, 10, 0, 2900);
    r = reply(f, 1000);
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(2001, 3000));
}

/* Every reply names the log; the name survives a reopen, a new database
 * gets another, and a fetch naming another log acknowledges nothing (what a
 * consumer applied from a replaced log must not trim this one). */
/* store_get_fixed, which reads the log's identity, hashes and the upstream
 * id: a value of exactly the length asked, absent, or another length. */
static void test_store_get_fixed(void **state)
{
    struct fixture *f = *state;
    struct store_batch *b = store_batch_new();
    store_batch_put(b, "x4", 2, "abcd", 4);
    store_batch_put(b, "x5", 2, "abcde", 5);
    store_batch_put_u64(b, "u", 1, 77);
    assert_int_equal(store_write(f->st, b, true), 0);
    store_batch_free(&b);
    char buf[6] = "-----";
    assert_int_equal(store_get_fixed(f->st, "x4", 2, buf, 4), 1);
    assert_string_equal(buf, "abcd-");
    assert_int_equal(store_get_fixed(f->st, "x5", 2, buf, 4), 2);
    assert_string_equal(buf, "abcd-"); /* untouched */
    assert_int_equal(store_get_fixed(f->st, "x3", 2, buf, 4), 0);
    uint64_t v = 5;
    assert_int_equal(store_get_u64(f->st, "u", 1, &v), 1);
    assert_int_equal(v, 77);
    assert_int_equal(store_get_u64(f->st, "x4", 2, &v), -1); /* not a counter */
    assert_int_equal(store_get_u64(f->st, "none", 4, &v), 0);
    assert_int_equal(v, 77);
}

static void test_log_identity(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3000, 1);
    fetch(f, 1, 1, 0);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_int_equal(r->fetch->log_id.len, LSTREAM_ID_LEN);
    uint8_t id[LSTREAM_ID_LEN];
    memcpy(id, r->fetch->log_id.data, sizeof(id));
    assert_memory_equal(lstream_id(f->ls), id, sizeof(id));
    licmon__v1__reply__free_unpacked(r, NULL);

    uint8_t other[LSTREAM_ID_LEN] = {0};
    f->log_id = (ProtobufCBinaryData){sizeof(other), other};
    fetch(f, 2001, 10, 0);
    r = reply(f, 1000);
    assert_int_equal(r->fetch->first_seq, 2001); /* served all the same */
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1, 3000));
    f->log_id = (ProtobufCBinaryData){sizeof(id), id};
    fetch(f, 2001, 10, 0);
    r = reply(f, 1000);
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(2001, 3000));

    lstream_free(&f->ls);
    store_close(&f->st);
    f->st = store_open(f->dir);
    f->ls = lstream_open(f->st, consumers);
    assert_memory_equal(lstream_id(f->ls), id, sizeof(id));

    char dir[64] = "/tmp/lm-lstream-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct store *st2 = store_open(dir);
    struct lstream *ls2 = lstream_open(st2, consumers);
    assert_memory_not_equal(lstream_id(ls2), id, sizeof(id));
    lstream_free(&ls2);
    store_close(&st2);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void reopen(struct fixture *f, const char *dir)
{
    lstream_free(&f->ls);
    store_close(&f->st);
    f->st = store_open(dir);
    assert_non_null(f->st);
    f->ls = lstream_open(f->st, consumers);
}

/* The chain hashes of records from..from+n-1 (asserted non-zero). */
static void hashes_of(struct fixture *f, uint64_t from, size_t n, uint64_t *out)
{
    fetch(f, from, (uint32_t)n, 0);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_string_equal(r->error, "");
    assert_int_equal(r->fetch->n_records, n);
    assert_int_equal(r->fetch->n_hashes, n);
    for (size_t i = 0; i < n; i++) {
        out[i] = r->fetch->hashes[i];
        assert_true(out[i] != 0);
    }
    licmon__v1__reply__free_unpacked(r, NULL);
}

/* The answer to a fetch from `from` naming this log with after_hash h and
 * acknowledging nothing (caller frees it). */
static Licmon__V1__Reply *fetch_after(struct fixture *f, uint64_t from, uint64_t h)
{
    f->log_id = (ProtobufCBinaryData){LSTREAM_ID_LEN, (uint8_t *)lstream_id(f->ls)};
    f->after_hash = h;
    fetch_acked(f, from, 10, 0, 0);
    f->log_id = (ProtobufCBinaryData){0, NULL};
    f->after_hash = 0;
    return reply(f, 1000);
}

/* Each record carries the chain hash of the records up to it; a consumer
 * naming the log says what record from - 1 hashed to when it applied it. A
 * copy of the database restored from before records the consumer applied
 * refuses the fetch (fewer records; or, once it has grown again, other
 * records at that seq), acknowledging nothing; the original, trimmed past
 * that record, still recognises it. */
static void test_chain_tells_a_restored_copy(void **state)
{
    struct fixture *f = *state;
    append_n(f, 5, 1);
    char copy[80], cmd[200];
    snprintf(copy, sizeof(copy), "%s-copy", f->dir);
    lstream_free(&f->ls);
    store_close(&f->st);
    snprintf(cmd, sizeof(cmd), "cp -r %s %s", f->dir, copy);
    assert_int_equal(system(cmd), 0); /* a backup at record 5 */
    reopen(f, f->dir);
    append_n(f, 5, 6);
    uint64_t h[10];
    hashes_of(f, 1, 10, h);
    for (int i = 1; i < 10; i++)
        assert_true(h[i] != h[i - 1]);

    Licmon__V1__Reply *r = fetch_after(f, 11, h[9]); /* all applied: served */
    assert_string_equal(r->error, "");
    licmon__v1__reply__free_unpacked(r, NULL);
    r = fetch_after(f, 6, h[3]); /* record 5 is not the one applied */
    assert_non_null(strstr(r->error, "record 5 of this log is not the one"));
    licmon__v1__reply__free_unpacked(r, NULL);
    f->log_id = (ProtobufCBinaryData){LSTREAM_ID_LEN, (uint8_t *)lstream_id(f->ls)};
    f->after_hash = h[3];
    fetch(f, 6, 10, 0); /* refused: its acknowledgement of 1..5 does not count */
    f->log_id = (ProtobufCBinaryData){0, NULL};
    f->after_hash = 0;
    r = reply(f, 1000);
    assert_non_null(strstr(r->error, "record 5 of this log is not the one"));
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1, 10));

    reopen(f, copy); /* the backup restored: 5 records */
    r = fetch_after(f, 11, h[9]);
    assert_non_null(strstr(r->error, "fewer records than the 10 the consumer applied"));
    licmon__v1__reply__free_unpacked(r, NULL);
    append_n(f, 7, 100); /* it grows past 10 with other records */
    r = fetch_after(f, 11, h[9]);
    assert_non_null(strstr(r->error, "record 10 of this log is not the one"));
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_int_equal(lstream_backlog_bytes(f->ls), rec_bytes(1, 5) + rec_bytes(100, 106));

    reopen(f, f->dir); /* the original: trimmed to 10, it still knows record 10 */
    ack(f, 11);
    assert_int_equal(lstream_first(f->ls), 11);
    reopen(f, f->dir);
    r = fetch_after(f, 11, h[9]);
    assert_string_equal(r->error, "");
    licmon__v1__reply__free_unpacked(r, NULL);
    r = fetch_after(f, 11, h[8]);
    assert_non_null(strstr(r->error, "record 10 of this log is not the one"));
    licmon__v1__reply__free_unpacked(r, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", copy);
    assert_int_equal(system(cmd), 0);
}

/* With every parking place taken, a new fetch waits and the oldest parked
 * one is answered: answering the new one at once made its consumer ask
 * again at once, in a loop. */
static void test_full_parking_answers_the_oldest(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3, 1);
    uint64_t first = fetch(f, 4, 10, 30000);
    for (int i = 1; i < 16; i++)
        fetch(f, 4, 10, 30000);
    assert_null(reply(f, 50));
    uint64_t last = fetch(f, 4, 10, 30000);
    Licmon__V1__Reply *r = reply(f, 1000);
    assert_non_null(r);
    assert_int_equal(r->id, first);
    assert_int_equal(r->fetch->n_records, 0);
    licmon__v1__reply__free_unpacked(r, NULL);
    assert_null(reply(f, 50));
    append_n(f, 1, 4); /* the parked ones, the last among them, get record 4 */
    int answered = 0, last_answered = 0;
    while ((r = reply(f, 200))) {
        answered++;
        last_answered |= r->id == last && r->fetch->n_records == 1;
        licmon__v1__reply__free_unpacked(r, NULL);
    }
    assert_int_equal(answered, 16);
    assert_true(last_answered);
}

/* A record of the log that a read error keeps from the reader (a damaged
 * block on disk): the records before it are served, then the fetch from it
 * is answered with an error naming it, which the consumer's stage reports
 * and retries, instead of aborting the program that serves the log. */
static void test_unreadable_record_is_an_error_answer(void **state)
{
    struct fixture *f = *state;
    uint32_t x = 88172645u;
    struct store_batch *b = store_batch_new();
    for (int i = 0; i < 20000; i++) {
        char rec[200];
        incompressible(rec, sizeof(rec), &x);
        lstream_append(f->ls, b, rec, sizeof(rec));
    }
    lstream_set_journal_seq(f->ls, b, 20000);
    assert_int_equal(store_write(f->st, b, true), 0);
    lstream_commit(f->ls, true);
    store_batch_free(&b);
    store_compact(f->st);
    lstream_free(&f->ls);
    store_close(&f->st);
    damage_largest_table(f->dir, 1000000);
    f->st = store_open(f->dir);
    assert_non_null(f->st);
    f->ls = lstream_open(f->st, consumers);

    uint64_t from = 1;
    const char *why = NULL;
    Licmon__V1__Reply *r = NULL;
    while (!why && from <= 20000) {
        fetch(f, from, 1000, 0);
        r = reply(f, 1000);
        assert_non_null(r);
        if (r->error && *r->error) {
            why = r->error;
            break;
        }
        assert_int_equal(r->body_case, LICMON__V1__REPLY__BODY_FETCH);
        assert_int_equal(r->fetch->first_seq, from);
        assert_true(r->fetch->n_records > 0);
        from += r->fetch->n_records;
        licmon__v1__reply__free_unpacked(r, NULL);
    }
    assert_non_null(why);
    assert_true(from > 1 && from < 20000);
    unsigned long long bad = 0; /* the records before it were served */
    assert_int_equal(sscanf(why, "cannot read record %llu of the log", &bad), 1);
    assert_int_equal(bad, from);
    licmon__v1__reply__free_unpacked(r, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_in_order_with_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_answers_on_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_after_ack_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_limit_keeps_a_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_forgets_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_ahead_acknowledges_only_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_get_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_tells_a_restored_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_parking_answers_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_record_is_an_error_answer, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("lstream", tests, NULL, NULL);
    zsock_ctx_term();
    return rc;
}
