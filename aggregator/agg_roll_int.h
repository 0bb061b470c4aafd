/* agg_roll_int: the inside of agg_rollup, shared by its files (agg_rollup.c
 * for the counting and queries, agg_roll_codec.c for keys and rows on disk,
 * agg_roll_map.c for the string tables). Included by nothing else. */
#ifndef LICMON_AGG_ROLL_INT_H
#define LICMON_AGG_ROLL_INT_H
#include "agg_roll_tz.h"
#include "agg_rollup.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGG_ROLL_NEVER_MS (INT64_MIN / 4)        /* "never happened", in ms */
#define AGG_ROLL_NEVER_MIN (-(INT64_C(1) << 50)) /* the same, in minutes */
#define AGG_ROLL_RING 8                          /* ended sessions remembered per user */
#define AGG_ROLL_DEN_MAX 1024 /* denial minutes a saved user series may hold (sanity bound) */

/* Row states: CLEAN is in the store; DIRTY must be saved; SAVED was handed
 * to the sink by the last save and is dropped (or CLEAN) at the next. */
enum { AGG_ROLL_CLEAN = 0, AGG_ROLL_DIRTY = 1, AGG_ROLL_SAVED = 2 };

/* string -> pointer table (open addressing); keys are borrowed */
struct agg_roll_map {
    struct agg_roll_map_ent {
        uint64_t h;
        const char *k;
        void *v;
    } * e;
    size_t cap, n;
};
uint64_t agg_roll_map_hash(const char *k);
void *agg_roll_map_get(const struct agg_roll_map *m, const char *k);
void agg_roll_map_put(struct agg_roll_map *m, const char *k, void *v);
void agg_roll_map_del(struct agg_roll_map *m, const char *k);
void agg_roll_map_clear(struct agg_roll_map *m);

/* A sealed minute. Entries say, per acquire / denial / downgrade of the
 * minute, when the same user last held / was denied / was downgraded:
 *   acq[i] = 2 * ceil(prev release ms / 60000) + (acquired at the minute's
 *            first ms); new to a bucket starting at minute k iff
 *            prev_ceil <= k and (k < minute or not at the first ms)
 *   den[i], dng[i] = floor(prev ms / 60000); new iff prev < k */
struct agg_roll_mrow {
    int64_t minute;
    int32_t before; /* in_use just before the minute (the carry) */
    int32_t start;  /* in_use at its first instant */
    int32_t peak, end;
    uint32_t logins, logouts, uto, lto, denials, downgrades;
    uint32_t nacq, nden, ndng;
    int64_t *acq, *den, *dng;
    uint8_t state;
};

/* An hour or day row: the fold of its minute rows. users = start_in_use +
 * users_new. Day rows also keep the prev minute of each user new to the day
 * (den_prev, dng_prev) so distinct users over any run of days are exact. */
struct agg_roll_brow {
    int64_t key;   /* hour: first minute; day: local date */
    int64_t start; /* first minute (UTC) */
    int64_t peak_at;
    int32_t before, start_in_use, peak, end;
    uint32_t logins, logouts, uto, lto, denials, downgrades;
    uint32_t users_new, den_new, dng_new;
    uint32_t den_cap, dng_cap;
    int64_t *den_prev, *dng_prev;
    uint8_t state;
};

struct agg_roll_bvec {
    struct agg_roll_brow *v;
    size_t n, cap;
};

/* The hour and day buckets of the last minute folded (tz lookups are not
 * free); empty when he <= hs. */
struct agg_roll_folder {
    int64_t hs, he, ds, de, date;
};

struct agg_roll_delta {
    int64_t t;
    int32_t d;
};

/* A minute still open to out-of-order changes. */
struct agg_roll_omin {
    int64_t minute;
    uint32_t logins, logouts, uto, lto, denials, downgrades;
    uint32_t ndl, cap_dl, nacq, cap_acq, nden, cap_den, ndng, cap_dng;
    struct agg_roll_delta *dl;
    int64_t *acq, *den, *dng;
};

struct agg_roll_org;

/* One (org, type) or (org, "all"). */
struct agg_roll_series {
    char *type;
    struct agg_roll_org *org;
    int32_t in_use_sealed; /* in_use at the end of the last sealed minute */
    int64_t in_use_now;    /* after every change applied */
    struct agg_roll_omin *open;
    size_t nopen, cap_open;
    struct agg_roll_mrow *mins; /* sealed minutes not yet dropped, by minute */
    size_t nmins, cap_mins;
    struct agg_roll_bvec hours; /* hour rows in memory, by key */
    struct agg_roll_bvec days;  /* every day row, by date */
    size_t days_dirty_from;     /* day rows below this index are not DIRTY */
    int64_t hours_hi;           /* no hour row with a greater key was ever saved */
    int hours_reset;            /* 1: store's hour rows void, delete pending; 2: sent */
    bool days_reset;            /* store's day rows from days_reset_from void */
    int64_t days_reset_from;
    bool dirty;                  /* series row */
    bool touched;                /* anything for the next save to look at */
    struct agg_roll_folder fold; /* where the last sealed minute went */
};

struct agg_roll_useries {
    struct agg_roll_series *s;
    int64_t acq_t;    /* current hold: when acquired */
    int64_t acq_ent;  /* its acq entry */
    int64_t prev_rel; /* last_rel before the current hold */
    int64_t last_rel, last_den, last_dng;
    /* the minutes of the denials in the org's open minutes, sorted,
     * distinct (malloc'd, NULL when none), and the latest denial minute
     * before them (AGG_ROLL_NEVER_MIN: none): a denial that arrives before
     * one already counted is linked from these */
    int64_t *den_min;
    uint32_t nden_min, cap_den_min;
    int64_t den_floor;
    uint8_t holding;
};
/* den_floor for a user row saved before den_min existed: its last denial */
int64_t agg_roll_den_floor_of(int64_t last_den_ms);
void agg_roll_useries_free(struct agg_roll_useries *us);

struct agg_roll_user {
    char *name;
    struct agg_roll_useries all;
    struct agg_roll_useries *ser;
    uint32_t nser;
    uint32_t holds; /* type holds open */
    int64_t last_end;
    uint64_t ended[AGG_ROLL_RING];
    uint8_t ended_pos;
    bool dirty;
};
/* Frees what a user's series hold (all and each type's) and its type list;
 * not the user itself. */
void agg_roll_user_series_free(struct agg_roll_user *u);

struct agg_roll_org {
    struct agg_rollup *ru;
    char *name;
    struct agg_roll_tz *tz;
    int64_t lag_ms, max_seen;
    int64_t open_from; /* minutes before this one are sealed */
    struct agg_roll_map series_by_type;
    struct agg_roll_series **series;
    size_t nseries;
    struct agg_roll_series *all;
    struct agg_roll_map users;
    struct agg_roll_user **dirty_users;
    size_t ndirty_users, cap_dirty_users;
    char **gone_users; /* deleted by gc, to delete from the store */
    size_t ngone, cap_gone;
    bool dirty;
};

struct agg_rollup {
    struct agg_rollup_store store;
    bool has_store;
    struct agg_roll_map orgs;
    struct agg_roll_org **org_list;
    size_t norgs;
    struct agg_roll_org *last_org;
    struct agg_rollup_stats st;
    /* a row the applying needed could not be read (a read error or a row
     * that does not decode): what was derived since may be wrong, so it
     * must never be saved (agg_rollup_store_failed) */
    bool store_failed;
};

/* agg_rollup.c */
struct agg_roll_org *agg_roll_org_get(struct agg_rollup *r, const char *org, bool create);
struct agg_roll_series *agg_roll_series_get(struct agg_roll_org *o, const char *type, bool create);
struct agg_roll_user *agg_roll_user_get(struct agg_roll_org *o, const char *user, bool create);
struct agg_roll_useries *agg_roll_useries_get(struct agg_roll_user *u, struct agg_roll_series *s);
void agg_roll_mrow_free(struct agg_roll_mrow *m);
void agg_roll_brow_free(struct agg_roll_brow *b);
void agg_roll_omin_free(struct agg_roll_omin *m);
/* index of key in v, or of where it would go; *found set */
size_t agg_roll_bvec_find(const struct agg_roll_bvec *v, int64_t key, bool *found);
struct agg_roll_brow *agg_roll_bvec_insert(struct agg_roll_bvec *v, size_t at);

/* agg_roll_codec.c: keys and values */
#define AGG_ROLL_KEY_MAX 512
size_t agg_roll_key(uint8_t *buf, char kind, const char *org, const char *name, bool with_num,
                    int64_t num);
/* the range of every keyed row of kind for (org, type) from num on */
size_t agg_roll_key_end(uint8_t *buf, char kind, const char *org, const char *type);
uint8_t *agg_roll_enc_mrow(const struct agg_roll_mrow *m, size_t *len);
int agg_roll_dec_mrow(struct agg_roll_mrow *m, int64_t minute, const uint8_t *v, size_t n);
uint8_t *agg_roll_enc_brow(const struct agg_roll_brow *b, bool day, size_t *len);
int agg_roll_dec_brow(struct agg_roll_brow *b, int64_t key, bool day, const uint8_t *v, size_t n);
uint8_t *agg_roll_enc_org(const struct agg_roll_org *o, size_t *len);
int agg_roll_dec_org(struct agg_roll_org *o, const uint8_t *v, size_t n);
uint8_t *agg_roll_enc_series(const struct agg_roll_series *s, size_t *len);
int agg_roll_dec_series(struct agg_roll_series *s, const uint8_t *v, size_t n);
uint8_t *agg_roll_enc_user(const struct agg_roll_user *u, size_t *len);
int agg_roll_dec_user(struct agg_roll_org *o, struct agg_roll_user *u, const uint8_t *v, size_t n);

#endif
