/* agg_state: the aggregator's view of now: each org's settings in force,
 * who holds a seat of which type (so in_use per type and for "all"), the
 * open user sessions, and the archive of session records for exports with
 * its index of the UTC midnights each ended session spans (so a period's
 * query finds the long sessions that began before it without a scan).
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
/* Hands the writes made since the last call to put, to be written at once:
 * the last write of each key, and nothing for a key that was created and
 * deleted since. */
void agg_state_save_dirty(struct agg_state *st, agg_put_fn put, void *arg);
/* Restores one saved pair at start-up; keys it does not own return 1
 * (ignored), 0 restored, -1 unreadable. */
int agg_state_load(struct agg_state *st, const void *key, size_t klen, const void *val,
                   size_t vlen);
/* The namespace bytes agg_state stores under (for the loader's scans). */
extern const char agg_state_namespaces[];

/* Calls fn for the settings of every org that has some. */
void agg_state_each_settings(const struct agg_state *st,
                             void (*fn)(void *arg, const Licmon__V1__OrgSettings *s), void *arg);

/* The session archive's keys (see agg_state.c); 0 when they do not fit. */
#define AGG_STATE_KEY_MAX 600
#define AGG_STATE_SPAN_MAX 4000 /* span entries per session (about 11 years) */
size_t agg_state_archive_key(uint8_t *buf, const char *org, int64_t start_ms, const char *sid,
                             size_t sidlen);
size_t agg_state_span_key(uint8_t *buf, const char *org, int64_t day, int64_t start_ms,
                          const char *sid, size_t sidlen);
/* The length of the key prefix 'X' org 0 (or 'Y' org 0). */
size_t agg_state_org_prefix(uint8_t *buf, char ns, const char *org);

/* Every org the state has seen (settings, holds or sessions), in no
 * particular order; returns the count, *orgs borrowed (caller frees the
 * array only). */
size_t agg_state_orgs(const struct agg_state *st, const char ***orgs);

/* Queries. settings: NULL when the org was never seen. */
const Licmon__V1__OrgSettings *agg_state_settings(const struct agg_state *st, const char *org);
int64_t agg_state_in_use(const struct agg_state *st, const char *org, const char *type);
/* The license types seen in use or configured, in settings order then
 * first-seen order; returns the count, *types borrowed (caller frees the
 * array only). */
size_t agg_state_types(const struct agg_state *st, const char *org, const char ***types);
/* Open sessions of org, unpacked into *out (any order); release them with
 * agg_state_records_free. */
size_t agg_state_current(const struct agg_state *st, const char *org,
                         Licmon__V1__SessionRecord ***out);
void agg_state_records_free(Licmon__V1__SessionRecord **v, size_t n);

#endif
