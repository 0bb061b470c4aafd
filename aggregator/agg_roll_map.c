/* agg_roll_map: the string tables of agg_rollup (orgs, types, users): open
 * addressing with linear probing and backward-shift deletion, keys borrowed
 * from the values they name. */
#include "agg_roll_int.h"
#include "hash.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

uint64_t agg_roll_map_hash(const char *k)
{
    uint64_t h = hash_fnv1a(HASH_FNV_SEED, k, strlen(k));
    return h ^ (h >> 29);
}

static void map_grow(struct agg_roll_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct agg_roll_map_ent *e = xcalloc(ncap, sizeof(*e));
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].k)
            continue;
        size_t s = m->e[i].h & (ncap - 1);
        while (e[s].k)
            s = (s + 1) & (ncap - 1);
        e[s] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = ncap;
}

void *agg_roll_map_get(const struct agg_roll_map *m, const char *k)
{
    if (!m->cap)
        return NULL;
    uint64_t h = agg_roll_map_hash(k);
    for (size_t s = h & (m->cap - 1); m->e[s].k; s = (s + 1) & (m->cap - 1))
        if (m->e[s].h == h && !strcmp(m->e[s].k, k))
            return m->e[s].v;
    return NULL;
}

void agg_roll_map_put(struct agg_roll_map *m, const char *k, void *v)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        map_grow(m);
    uint64_t h = agg_roll_map_hash(k);
    size_t s = h & (m->cap - 1);
    for (; m->e[s].k; s = (s + 1) & (m->cap - 1)) {
        if (m->e[s].h == h && !strcmp(m->e[s].k, k)) {
            m->e[s].k = k;
            m->e[s].v = v;
            return;
        }
    }
    m->e[s].h = h;
    m->e[s].k = k;
    m->e[s].v = v;
    m->n++;
}

void agg_roll_map_del(struct agg_roll_map *m, const char *k)
{
    if (!m->cap)
        return;
    uint64_t h = agg_roll_map_hash(k);
    size_t mask = m->cap - 1, s = h & mask;
    for (; m->e[s].k; s = (s + 1) & mask)
        if (m->e[s].h == h && !strcmp(m->e[s].k, k))
            break;
    if (!m->e[s].k)
        return;
    /* backward shift: pull later members of the cluster into the hole */
    size_t hole = s;
    for (size_t j = (s + 1) & mask; m->e[j].k; j = (j + 1) & mask) {
        size_t home = m->e[j].h & mask;
        /* j may move to hole when its home is not in (hole, j] cyclically */
        bool in_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_between) {
            m->e[hole] = m->e[j];
            hole = j;
        }
    }
    memset(&m->e[hole], 0, sizeof(m->e[hole]));
    m->n--;
}

void agg_roll_map_clear(struct agg_roll_map *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}
