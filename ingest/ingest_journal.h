/* ingest_journal: the journal and the duplicate index, written by group
 * commit. A group collects the accepted events of every batch that arrived
 * together (plus settings changes and clock ticks) into one journal Chunk
 * record, then one synced WriteBatch makes it and the duplicate-index
 * entries durable at once; only then are the batches acknowledged. */
#ifndef LICMON_INGEST_JOURNAL_H
#define LICMON_INGEST_JOURNAL_H
#include "lstream.h"
#include "pb.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

struct ingest_journal;

struct ingest_journal *ingest_journal_open(struct store *st, int64_t retention_days);
void ingest_journal_free(struct ingest_journal **j);

/* Validates, dedups and stages one batch into the current group; fills ack
 * (its rejections array is malloc'd: free with ingest_journal_ack_clear).
 * nul_fields: ingest_batch_nul_fields of its frame, or NULL. now_ms is
 * ingest's clock (the events' arrival and what a ts too old is judged by);
 * a ts too far ahead is judged against ahead_of_ms, the later of that and
 * the host's clock (README: a clock that is wrong: a step ahead not taken
 * yet does not make ingest refuse the events stamped by the clock it steps
 * to, and one that is wrong refuses nothing as too old). */
void ingest_journal_add_batch(struct ingest_journal *j, const Licmon__V1__EventBatch *batch,
                              const char *const *nul_fields, int64_t now_ms, int64_t ahead_of_ms,
                              Licmon__V1__BatchAck *ack);
void ingest_journal_ack_clear(Licmon__V1__BatchAck *ack);
/* Stages a settings change or a clock tick; returns its journal seq. */
uint64_t ingest_journal_add_settings(struct ingest_journal *j, const Licmon__V1__OrgSettings *s,
                                     int64_t now_ms);
uint64_t ingest_journal_add_tick(struct ingest_journal *j, int64_t now_ms);
/* The database under the journal (where ingest's clock is saved too). */
struct store *ingest_journal_store(struct ingest_journal *j);
/* Number of records staged in the current group. */
int ingest_journal_pending(const struct ingest_journal *j);
/* Writes the group (synced). 0, or -1: nothing of the group is journaled. */
int ingest_journal_commit(struct ingest_journal *j);

struct lstream *ingest_journal_log(struct ingest_journal *j);
/* What the duplicate index's compaction filter reads: the retention,
 * ingest's clock (its steady reading, published by ingest_journal_clock;
 * the filter runs on RocksDB's threads; 0 until the first reading: nothing
 * expires) and the bound it may forget entries before, which is saved
 * before it is raised. */
struct ingest_expiry {
    int64_t days;
    _Atomic int64_t now_ms;
    _Atomic int64_t forgotten_ms;
};
/* The filter j's clock readings go to; loads the saved bound into it (reset:
 * drops it, so the first reading sets it from the retention alone). */
void ingest_journal_set_expiry(struct ingest_journal *j, struct ingest_expiry *x, bool reset);
/* A reading of ingest's clock: published to the filter, whose bound is
 * raised (and saved first, synced) an hour at a time as the clock passes
 * it. Events older than the bound are refused from then on, whatever
 * --retention-days says later: their duplicates may be forgotten, and one
 * sent again would count twice. */
void ingest_journal_clock(struct ingest_journal *j, int64_t now_ms);
/* Compaction filter (store_expired_fn): a duplicate-index entry whose event
 * is older than the retention and the saved bound (arg: struct
 * ingest_expiry) is dropped: such an event is refused anyway. */
bool ingest_journal_expired(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
/* Keeps the records journaled within retention_ms of now_ms even once the
 * sessionizer has applied them (a window for replays); older applied ones
 * are trimmed. */
void ingest_journal_retain(struct ingest_journal *j, int64_t now_ms, int64_t retention_ms);

#endif
