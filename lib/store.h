/* store: the only module that calls RocksDB. One database per program, keys
 * namespaced by a leading byte (see keys.h). State changes and the sequence
 * number of the last applied input go into one store_batch, written at once. */
#ifndef LICMON_STORE_H
#define LICMON_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_batch;
struct store_iter;

/* Opens (creating) the database at path; NULL with a logged reason on failure. */
struct store *store_open(const char *path);
/* Decides during compaction whether a key has outlived its retention: true
 * drops it. Runs on RocksDB's threads: it must only read its arguments,
 * its arg (immutable) and the clock. (RocksDB's TTL mode is not used: it
 * changes the values other readers see.) */
typedef bool (*store_expired_fn)(void *arg, const char *key, size_t klen, const char *val,
                                 size_t vlen);
struct store *store_open_expiring(const char *path, store_expired_fn expired, void *arg);
/* The same database (same options, no expiry filter) kept in memory only, on
 * RocksDB's in-memory Env: no file is created, everything goes at
 * store_close. For the fuzzers, which need a real store and no disk. */
struct store *store_open_mem(const char *name);
void store_close(struct store **s);

/* 1 found (*val malloc'd, caller frees), 0 absent, -1 error (logged). */
int store_get(struct store *s, const void *key, size_t klen, char **val, size_t *vlen);
/* A value of exactly len bytes, copied into buf: 1 found, 0 absent, 2 stored
 * with another length (buf untouched), -1 error (logged). */
int store_get_fixed(struct store *s, const void *key, size_t klen, void *buf, size_t len);
/* An 8-byte counter: 1 found, 0 absent, -1 error or another length (logged). */
int store_get_u64(struct store *s, const void *key, size_t klen, uint64_t *v);

struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch **b);
void store_batch_put(struct store_batch *b, const void *k, size_t kl, const void *v, size_t vl);
void store_batch_put_u64(struct store_batch *b, const void *k, size_t kl, uint64_t v);
void store_batch_del(struct store_batch *b, const void *k, size_t kl);
/* Deletes keys in [from, to). */
void store_batch_del_range(struct store_batch *b, const void *from, size_t fl, const void *to,
                           size_t tl);
void store_batch_clear(struct store_batch *b);
int store_batch_count(const struct store_batch *b);
/* Writes the batch atomically; sync makes it durable before returning. 0 or -1. */
int store_write(struct store *s, struct store_batch *b, bool sync);

/* A writer for the pure cores' "save dirty state" callbacks: batch is a
 * struct store_batch; val == NULL deletes key. */
void store_batch_write(void *batch, const void *key, size_t klen, const void *val, size_t vlen);
/* Restores saved state: calls load for every key whose first byte is one
 * of the namespace bytes in ns (a NUL-terminated string), in key order.
 * load returns < 0 for a pair it cannot read. Returns the number of keys,
 * or -1 (logged: naming the namespace at the first unreadable pair, the
 * database's path when a read error cut the scan short). */
typedef int (*store_load_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
long store_load_namespaces(struct store *s, const char *ns, store_load_fn load, void *arg);

/* Compacts the whole key space now (runs the expiry filter over every key);
 * for tests and maintenance. */
void store_compact(struct store *s);

/* An iterator over the keys in [lo, hi) in key order, positioned at the
 * first (hi NULL: to the end of the key space). The bounds are RocksDB's
 * own (iterate_lower_bound, iterate_upper_bound): a scan stops at hi
 * without stepping over what lies past it, live keys or the tombstones of
 * deleted ones, and skips the files wholly outside the range. It sees every
 * write committed before it was made. */
struct store_iter *store_iter_range(struct store *s, const void *lo, size_t lol, const void *hi,
                                    size_t hil);
/* store_iter_range over one namespace: the keys whose first byte is ns. */
struct store_iter *store_iter_ns(struct store *s, uint8_t ns);
void store_iter_free(struct store_iter **it);
bool store_iter_valid(const struct store_iter *it);
void store_iter_next(struct store_iter *it);
/* Why a scan ended: 0 at its bound (or at a key the caller stopped at),
 * -1 (logged with the database's path) when RocksDB stopped it on a read
 * error, an I/O error or a damaged block, which ends an iteration just as
 * the last key does. Every scan whose result counts checks it: a scan cut
 * short is not "no more keys". */
int store_iter_status(const struct store_iter *it);
const char *store_iter_key(const struct store_iter *it, size_t *klen);
const char *store_iter_value(const struct store_iter *it, size_t *vlen);

#endif
