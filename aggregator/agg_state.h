/* agg_state: the aggregator's view of now: each org's settings in force,
 * who holds a seat of which type (so in_use per type and for "all"), the
 * open user sessions, and the archive of session records for exports.
 * Pure: changes in, usage levels and storage writes out through callbacks. */
#ifndef LICMON_AGG_STATE_H
#define LICMON_AGG_STATE_H
#include "pb.h"

#include <stddef.h>
#include <stdint.h>

struct agg_state;

/* A new in_use level of (org, type) at an instant; type "all" included. */
typedef void (*agg_level_fn)(void *arg, const char *org, const char *type, int64_t at_ms,
                             int64_t in_use);
/* A storage write: val == NULL deletes key. */
typedef void (*agg_put_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);

struct agg_state *agg_state_new(void);
void agg_state_free(struct agg_state **st);

void agg_state_apply(struct agg_state *st, const Licmon__V1__Change *c, agg_level_fn level,
                     void *arg);
/* Hands every write made since the last call to put, in order. */
void agg_state_save_dirty(struct agg_state *st, agg_put_fn put, void *arg);
/* Restores one saved pair at start-up; keys it does not own return 1
 * (ignored), 0 restored, -1 unreadable. */
int agg_state_load(struct agg_state *st, const void *key, size_t klen, const void *val,
                   size_t vlen);
/* The namespace bytes agg_state stores under (for the loader's scans). */
extern const char agg_state_namespaces[];

/* Queries. settings: NULL when the org was never seen. */
const Licmon__V1__OrgSettings *agg_state_settings(const struct agg_state *st, const char *org);
int64_t agg_state_in_use(const struct agg_state *st, const char *org, const char *type);
/* The license types seen in use or configured, in settings order then
 * first-seen order; returns the count, *types borrowed (caller frees the
 * array only). */
size_t agg_state_types(const struct agg_state *st, const char *org, const char ***types);
/* Open sessions of org; *out is a malloc'd array of borrowed records. */
size_t agg_state_current(const struct agg_state *st, const char *org,
                         const Licmon__V1__SessionRecord ***out);

#endif
