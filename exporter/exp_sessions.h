/* exp_sessions: session records read from the aggregator a chunk at a time
 * (Query SESSIONS with max_rows and next_cursor), and the streamed bodies
 * made of them (JSON array, NDJSON, CSV, the JSON export): at most one
 * chunk and one output block are in memory, however long the period.
 * Private to exporter/. */
#ifndef EXP_SESSIONS_H
#define EXP_SESSIONS_H
#include "exp_api.h"
#include "exp_upstream.h"
#include "health.h"

#include <stdint.h>

struct exp_sess_query {
    const char *org, *type, *user; /* user may be NULL */
    const char *from, *to;         /* local dates YYYY-MM-DD */
    int64_t now_ms;
    uint32_t chunk;
    int64_t timeout_ms;
};

struct exp_sess_src;

/* Copies q. */
struct exp_sess_src *exp_sess_src_new(struct exp_upstream *up, const struct exp_sess_query *q);
void exp_sess_src_free(struct exp_sess_src **src);
/* Fetches the first chunk, so an unreachable aggregator can still be told
 * with a status. 0, or -1 with *res and *rep (caller frees) saying why. */
int exp_sess_src_start(struct exp_sess_src *src, enum exp_upstream_result *res,
                       Licmon__V1__Reply **rep);
/* The next record (valid until the next call): 1, 0 at the end, -1 when the
 * aggregator failed midway or answered something unsound (logged). */
int exp_sess_src_next(struct exp_sess_src *src, const Licmon__V1__SessionRecord **rec);
uint64_t exp_sess_src_count(const struct exp_sess_src *src);

enum exp_sess_fmt {
    EXP_SESS_JSON,   /* rows of a JSON array: prefix "[" ... suffix "]" */
    EXP_SESS_NDJSON, /* one object a line */
    EXP_SESS_CSV,    /* exp_csv rows */
};

/* A stream: prefix, then every record of src in fmt, then suffix. Takes
 * src, prefix and suffix (may be NULL). rows: counter of rows sent (may be
 * NULL); failed: counter of streams cut short (may be NULL). */
struct exp_stream *exp_sess_stream(struct exp_sess_src *src, enum exp_sess_fmt fmt, char *prefix,
                                   char *suffix, struct metric *rows, struct metric *failed);

#endif
