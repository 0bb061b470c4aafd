/* hmap: open-addressing hash map (see hmap.h). The table keeps at most
 * half of its slots full; keys are stored with their length in front. */
#include "hmap.h"
#include "hash.h"
#include "xmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hmap_slot {
    uint64_t hash;
    char *key; /* NULL: empty */
    size_t klen;
    void *val;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap, n;
};

static uint64_t hmap_hash(const void *key, size_t len)
{
    uint64_t h = hash_fnv1a(HASH_FNV_SEED, key, len);
    return h ^ (h >> 29);
}

struct hmap *hmap_new(void)
{
    struct hmap *m = xcalloc(1, sizeof(*m));
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    return m;
}

void hmap_free(struct hmap **mp, void (*free_val)(void *))
{
    struct hmap *m = *mp;
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) {
            free(m->slots[i].key);
            if (free_val)
                free_val(m->slots[i].val);
        }
    free(m->slots);
    free(m);
    *mp = NULL;
}

size_t hmap_count(const struct hmap *m)
{
    return m->n;
}

static size_t hmap_find(const struct hmap *m, uint64_t h, const void *key, size_t klen)
{
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && !(m->slots[i].hash == h && m->slots[i].klen == klen &&
                                !memcmp(m->slots[i].key, key, klen)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *hmap_get(const struct hmap *m, const void *key, size_t klen)
{
    size_t i = hmap_find(m, hmap_hash(key, klen), key, klen);
    return m->slots[i].key ? m->slots[i].val : NULL;
}

static void hmap_grow(struct hmap *m)
{
    struct hmap_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->cap *= 2;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key) {
            size_t j = old[i].hash & (m->cap - 1);
            while (m->slots[j].key)
                j = (j + 1) & (m->cap - 1);
            m->slots[j] = old[i];
        }
    free(old);
}

void *hmap_put(struct hmap *m, const void *key, size_t klen, void *val)
{
    if ((m->n + 1) * 2 > m->cap)
        hmap_grow(m);
    uint64_t h = hmap_hash(key, klen);
    size_t i = hmap_find(m, h, key, klen);
    if (m->slots[i].key) {
        void *old = m->slots[i].val;
        m->slots[i].val = val;
        return old;
    }
    m->slots[i] = (struct hmap_slot){h, xmemdup(key, klen ? klen : 1), klen, val};
    m->n++;
    return NULL;
}

void *hmap_del(struct hmap *m, const void *key, size_t klen)
{
    size_t i = hmap_find(m, hmap_hash(key, klen), key, klen);
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->n--;
    /* backward-shift: move later members of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].key; j = (j + 1) & (m->cap - 1)) {
        size_t home = m->slots[j].hash & (m->cap - 1);
        /* can the entry at j move to hole? only if home is not in (hole, j] */
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    return val;
}

int hmap_next(const struct hmap *m, size_t *pos, const void **key, size_t *klen, void **val)
{
    for (; *pos < m->cap; (*pos)++)
        if (m->slots[*pos].key) {
            *key = m->slots[*pos].key;
            *klen = m->slots[*pos].klen;
            *val = m->slots[*pos].val;
            (*pos)++;
            return 1;
        }
    return 0;
}
