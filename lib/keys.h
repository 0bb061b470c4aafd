/* keys: big-endian encoding of numbers inside RocksDB keys, so that byte
 * order is numeric order, and the namespace bytes every program uses. */
#ifndef LICMON_KEYS_H
#define LICMON_KEYS_H
#include <stddef.h>
#include <stdint.h>

/* Namespaces (the first byte of every key). */
#define KEY_NS_META 'M'  /* program metadata: applied seqs, consumer acks */
#define KEY_NS_LOG 'L'   /* the program's own output log, by seq */
#define KEY_NS_CHAIN 'K' /* the chain hash of each record of that log, by seq */
#define KEY_NS_DEDUP 'D' /* ingest: (org, event_id) seen */
#define KEY_NS_STATE 'S' /* program state */
#define KEY_NS_ORG 'O'   /* per-org settings */
#define KEY_NS_TOKEN 'T' /* exporter: token hashes */

static inline void keys_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t keys_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* int64 with the sign bit flipped, so negative instants sort first */
static inline void keys_put_i64(uint8_t *p, int64_t v)
{
    keys_put_u64(p, (uint64_t)v ^ 0x8000000000000000ULL);
}

static inline int64_t keys_get_i64(const uint8_t *p)
{
    return (int64_t)(keys_get_u64(p) ^ 0x8000000000000000ULL);
}

/* Builds ns + parts separated by 0 bytes into buf; returns the length, or 0
 * when it would not fit. Parts are NUL-free strings (ids are validated). */
size_t keys_make(uint8_t *buf, size_t cap, char ns, const char *const *parts, int nparts);

#endif
