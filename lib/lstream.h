/* lstream: a program's durable output log, served to its downstream over
 * the internal ROUTER socket (FetchRequest -> FetchReply). Records are
 * appended into the same store_batch as the state change that made them, so
 * state, input position and output commit together. A consumer asking from
 * seq N acknowledges that it durably applied everything before N (or only
 * up to acked_seq when it sets explicit_ack: it fetches ahead of its
 * commit); records every named consumer has acknowledged are trimmed.
 * Every log has an identity drawn at random when its database is created
 * (LSTREAM_ID_LEN bytes, in every FetchReply): a consumer tells a replaced
 * or wiped log from the one it applied, whose seqs meant other records. */
#ifndef LICMON_LSTREAM_H
#define LICMON_LSTREAM_H
#include "pb.h"
#include "store.h"
#include "zsock.h"

#include <stdint.h>

struct lstream;

#define LSTREAM_ID_LEN 16

/* consumers: NULL-terminated names whose acknowledgements gate trimming. */
struct lstream *lstream_open(struct store *st, const char *const *consumers);
void lstream_free(struct lstream **ls);

/* Appends a record into batch b; returns its seq. Visible after commit. */
uint64_t lstream_append(struct lstream *ls, struct store_batch *b, const void *rec, size_t len);
/* Records which journal seq this log reflects once b commits. */
void lstream_set_journal_seq(struct lstream *ls, struct store_batch *b, uint64_t journal_seq);
/* After store_write(b): ok publishes the pending records and answers parked
 * fetches; !ok forgets them. */
void lstream_commit(struct lstream *ls, bool ok);

uint64_t lstream_head(const struct lstream *ls);
/* Bytes of the committed records that some consumer has not yet applied
 * (its backlog): exact, also right after a restart. */
uint64_t lstream_backlog_bytes(const struct lstream *ls);
/* A writer held back while its log's backlog is over a bound (ingest's
 * producers, a stage's fetches upstream), with its two gauges. */
struct metric;
struct lstream_hold {
    bool held;
    struct metric *m_backlog, *m_held;
};
/* Sets the gauges and whether the writer is held back: over bound (0: no
 * bound) to start, over three quarters of it to go on being held (it goes
 * on writing once a quarter has drained, not at every commit around the
 * bound). Returns 1 when it starts being held, -1 when it stops, else 0. */
int lstream_hold_update(const struct lstream *ls, struct lstream_hold *h, uint64_t bound);
/* The oldest record still kept (head + 1 when the log is empty). */
uint64_t lstream_first(const struct lstream *ls);
/* One committed record: 1 found (*val malloc'd), 0 absent or trimmed, -1 error. */
int lstream_get(struct lstream *ls, uint64_t seq, char **val, size_t *len);
/* Records from keep_from on are kept even when every consumer has applied
 * them (a retention window for replays); UINT64_MAX lifts the limit. */
void lstream_set_trim_limit(struct lstream *ls, uint64_t keep_from);
uint64_t lstream_journal_seq(const struct lstream *ls);
/* The log's identity: LSTREAM_ID_LEN bytes. */
const uint8_t *lstream_id(const struct lstream *ls);
/* A chain hash kept under meta key k with the seq it is the hash of (a
 * program of before chains moved the seq on without it): get gives 0,
 * unknown, when the seq stored is not seq. */
void lstream_put_hash(struct store_batch *b, const char *k, uint64_t seq, uint64_t h);
uint64_t lstream_get_hash(struct store *st, const char *k, uint64_t seq);
/* This process's instance of the log: drawn at random at open, never 0. */
uint64_t lstream_instance(const struct lstream *ls);

/* Serves a fetch that arrived on router: answers now, or parks it until
 * records arrive or its wait passes. */
void lstream_fetch(struct lstream *ls, void *router, const struct zsock_env *env, uint64_t req_id,
                   const Licmon__V1__FetchRequest *req);
/* Answers parked fetches whose wait has passed; call a few times a second. */
void lstream_expire(struct lstream *ls);

/* The next Request waiting on an internal ROUTER socket (caller frees it
 * with PB_FREE(request, ...)), its routing frames in env; NULL when nothing
 * is waiting. Frames that are not a Request are answered with an error
 * (or dropped, when even their routing frames are wrong) and counted in
 * *unreadable when it is not NULL. */
Licmon__V1__Request *lstream_recv_request(void *router, struct zsock_env *env,
                                          uint64_t *unreadable);
/* Sends a Reply on router to env (helper shared by every internal socket). */
void lstream_send_reply(void *router, const struct zsock_env *env, const Licmon__V1__Reply *rep);

#endif
