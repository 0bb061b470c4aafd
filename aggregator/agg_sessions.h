/* agg_sessions: the SESSIONS query. Finds the session records of an org
 * that overlap a period [from, to), in (start, session_id) order, a chunk
 * at a time with an opaque cursor, from the archive ('X', keyed by start),
 * the span index ('Y', the UTC midnights each ended session spans) and the
 * open sessions in memory. A record overlaps when it starts in the period,
 * or starts before it and ends after its first instant or is still open. */
#ifndef LICMON_AGG_SESSIONS_H
#define LICMON_AGG_SESSIONS_H
#include "agg_rollup.h"
#include "agg_state.h"
#include "pb.h"

#include <stddef.h>
#include <stdint.h>

#define AGG_SESSIONS_DEFAULT_ROWS 500
#define AGG_SESSIONS_MAX_ROWS 5000
/* Archive records looked at per chunk: a chunk with a narrow filter may
 * come back short, even empty, with a cursor to go on from. */
#define AGG_SESSIONS_SCAN_BUDGET 20000

struct agg_sessions_query {
    const char *org;
    int64_t from_ms, to_ms; /* the period [from, to) */
    const char *type;       /* NULL, "" or "all": every type */
    const char *user;       /* NULL or "": every user */
    uint32_t max_rows;      /* 0: AGG_SESSIONS_DEFAULT_ROWS; capped at AGG_SESSIONS_MAX_ROWS */
    const uint8_t *cursor;  /* from a previous chunk's next_cursor (NULL: from the start) */
    size_t cursor_len;
};

struct agg_sessions_chunk {
    Licmon__V1__SessionRecord **recs; /* unpacked; freed by agg_sessions_chunk_free */
    size_t n;
    uint8_t *next_cursor; /* NULL when this was the last chunk */
    size_t next_len;
};

/* 0, or -1 with *err set (a bad cursor, a storage error). */
int agg_sessions_find(const struct agg_rollup_store *store, const struct agg_state *st,
                      const struct agg_sessions_query *q, struct agg_sessions_chunk *out,
                      const char **err);
void agg_sessions_chunk_free(struct agg_sessions_chunk *c);

#endif
