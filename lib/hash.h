/* hash: FNV-1a, 64 bits, the one non-cryptographic hash of the code base
 * (in-memory tables, session ids, the chain of each log's records). Not for
 * anything an attacker chooses the input of to collide on purpose. */
#ifndef LICMON_HASH_H
#define LICMON_HASH_H
#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_SEED 0xcbf29ce484222325ULL

/* h continued over n bytes at p (start with HASH_FNV_SEED). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

#endif
