/* hmap: a hash map from byte-string keys (copied) to pointers, open
 * addressing with linear probing and backward-shift deletion. For the
 * in-memory indexes of the stages (orgs, users, sessions). */
#ifndef LICMON_HMAP_H
#define LICMON_HMAP_H
#include <stddef.h>

struct hmap;

struct hmap *hmap_new(void);
/* free_val (may be NULL) is called on every value left in the map. */
void hmap_free(struct hmap **m, void (*free_val)(void *));
size_t hmap_count(const struct hmap *m);
void *hmap_get(const struct hmap *m, const void *key, size_t klen);
/* Sets key to val; returns the previous value or NULL. */
void *hmap_put(struct hmap *m, const void *key, size_t klen, void *val);
/* Removes key; returns its value or NULL. */
void *hmap_del(struct hmap *m, const void *key, size_t klen);
/* Iteration: start with *pos = 0; returns 0 at the end. Do not change the
 * map while iterating. */
int hmap_next(const struct hmap *m, size_t *pos, const void **key, size_t *klen, void **val);

/* Convenience for NUL-terminated keys. */
#define hmap_gets(m, s) hmap_get((m), (s), strlen(s))
#define hmap_puts(m, s, v) hmap_put((m), (s), strlen(s), (v))
#define hmap_dels(m, s) hmap_del((m), (s), strlen(s))

#endif
