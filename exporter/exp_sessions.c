/* exp_sessions: chunked session reads and their streams (see exp_sessions.h). */
#include "exp_sessions.h"
#include "exp_buf.h"
#include "exp_csv.h"
#include "exp_view.h"
#include "health.h"
#include "log.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define SESS_MAX_EMPTY_CHUNKS 100000 /* a cursor that never ends is a bug upstream */

struct exp_sess_src {
    struct exp_upstream *up;
    char *org, *type, *user, *from, *to;
    int64_t now_ms, timeout_ms;
    uint32_t chunk;
    uint8_t *cursor;
    size_t cursor_len;
    Licmon__V1__Reply *rep;
    size_t idx;
    bool started, last; /* last: the chunk in rep is the final one */
    unsigned empty_run;
    uint64_t count;
};

struct exp_sess_src *exp_sess_src_new(struct exp_upstream *up, const struct exp_sess_query *q)
{
    struct exp_sess_src *s = xcalloc(1, sizeof(*s));
    s->up = up;
    s->org = xstrdup(q->org);
    s->type = xstrdup(q->type && *q->type ? q->type : "all");
    s->user = q->user ? xstrdup(q->user) : NULL;
    s->from = xstrdup(q->from);
    s->to = xstrdup(q->to);
    s->now_ms = q->now_ms;
    s->chunk = q->chunk ? q->chunk : EXP_API_SESSION_CHUNK;
    s->timeout_ms = q->timeout_ms;
    return s;
}

void exp_sess_src_free(struct exp_sess_src **sp)
{
    struct exp_sess_src *s = *sp;
    if (!s)
        return;
    PB_FREE(reply, s->rep);
    free(s->org);
    free(s->type);
    free(s->user);
    free(s->from);
    free(s->to);
    free(s->cursor);
    free(s);
    *sp = NULL;
}

uint64_t exp_sess_src_count(const struct exp_sess_src *s)
{
    return s->count;
}

/* Asks for the chunk after s->cursor. */
static enum exp_upstream_result src_fetch(struct exp_sess_src *s, Licmon__V1__Reply **rep)
{
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.kind = LICMON__V1__QUERY_KIND__SESSIONS;
    q.org = s->org;
    q.license_type = s->type;
    q.now_ms = s->now_ms;
    q.from_date = s->from;
    q.to_date = s->to;
    q.user = s->user ? s->user : (char *)"";
    q.max_rows = s->chunk;
    q.cursor.data = s->cursor;
    q.cursor.len = s->cursor_len;
    req.body_case = LICMON__V1__REQUEST__BODY_QUERY;
    req.query = &q;
    return exp_upstream_call(s->up, &req, s->timeout_ms, rep);
}

/* An answer that is a query answer (not an error). */
static bool src_sound(const Licmon__V1__Reply *rep)
{
    return rep && !rep->error[0] && rep->body_case == LICMON__V1__REPLY__BODY_QUERY && rep->query;
}

/* Takes a fetched chunk: checks it and moves the cursor. 0, or -1. */
static int src_take(struct exp_sess_src *s, Licmon__V1__Reply *rep)
{
    const Licmon__V1__QueryReply *qr = rep->query;
    for (size_t i = 0; i < qr->n_sessions; i++) {
        const Licmon__V1__SessionRecord *r = qr->sessions[i];
        /* never a byte of another org, whatever the aggregator says */
        if (!r || !r->org || strcmp(r->org, s->org) != 0) {
            log_warn_ctx("org", s->org, "the aggregator answered a session of another org");
            return -1;
        }
    }
    bool same = qr->next_cursor.len && qr->next_cursor.len == s->cursor_len &&
                !memcmp(qr->next_cursor.data, s->cursor, s->cursor_len);
    if (same && qr->n_sessions == 0) {
        log_warn_ctx("org", s->org, "the aggregator's session cursor does not move");
        return -1;
    }
    s->empty_run = qr->n_sessions ? 0 : s->empty_run + 1;
    if (s->empty_run > SESS_MAX_EMPTY_CHUNKS) {
        log_warn_ctx("org", s->org, "the aggregator keeps answering empty session chunks");
        return -1;
    }
    free(s->cursor);
    s->cursor = qr->next_cursor.len ? xmemdup(qr->next_cursor.data, qr->next_cursor.len) : NULL;
    s->cursor_len = qr->next_cursor.len;
    s->last = qr->next_cursor.len == 0;
    PB_FREE(reply, s->rep);
    s->rep = rep;
    s->idx = 0;
    return 0;
}

int exp_sess_src_start(struct exp_sess_src *s, enum exp_upstream_result *res,
                       Licmon__V1__Reply **rep)
{
    *rep = NULL;
    *res = src_fetch(s, rep);
    /* with EXP_UP_OK and *rep kept, the caller reports an unsound answer */
    if (*res != EXP_UP_OK || !src_sound(*rep))
        return -1;
    s->started = true;
    if (src_take(s, *rep) != 0)
        return -1; /* *rep stays the caller's: an unsound answer (502) */
    *rep = NULL;
    return 0;
}

int exp_sess_src_next(struct exp_sess_src *s, const Licmon__V1__SessionRecord **rec)
{
    for (;;) {
        if (s->rep && s->idx < s->rep->query->n_sessions) {
            *rec = s->rep->query->sessions[s->idx++];
            s->count++;
            return 1;
        }
        if (s->started && s->last)
            return 0;
        Licmon__V1__Reply *rep = NULL;
        enum exp_upstream_result res = src_fetch(s, &rep);
        if (res != EXP_UP_OK || !src_sound(rep)) {
            log_warn_ctx("org", s->org, "session chunk %s after %llu records: %s",
                         res == EXP_UP_TIMEOUT ? "not answered" : "refused",
                         (unsigned long long)s->count,
                         rep && rep->error[0] ? rep->error : "no answer");
            PB_FREE(reply, rep);
            return -1;
        }
        s->started = true;
        if (src_take(s, rep) != 0) {
            PB_FREE(reply, rep);
            return -1;
        }
    }
}

/* ---- streams ---- */

struct sess_stream {
    struct exp_sess_src *src;
    enum exp_sess_fmt fmt;
    struct exp_buf out;
    char *suffix;
    bool done, first;
    struct metric *m_rows, *m_failed;
    uint64_t counted;
};

static void stream_row(struct sess_stream *st, const Licmon__V1__SessionRecord *r)
{
    switch (st->fmt) {
    case EXP_SESS_JSON:
        if (!st->first)
            exp_buf_addc(&st->out, ',');
        exp_buf_addc(&st->out, '\n');
        exp_view_session(&st->out, r);
        break;
    case EXP_SESS_NDJSON:
        exp_view_session(&st->out, r);
        exp_buf_addc(&st->out, '\n');
        break;
    case EXP_SESS_CSV:
        exp_csv_session_row(&st->out, r);
        break;
    }
    st->first = false;
}

static ssize_t stream_read(void *ctx, char *buf, size_t max)
{
    struct sess_stream *st = ctx;
    while (exp_buf_unread(&st->out) < max && !st->done) {
        const Licmon__V1__SessionRecord *r;
        int rc = exp_sess_src_next(st->src, &r);
        if (rc < 0) {
            if (st->m_failed)
                metric_add(st->m_failed, 1);
            return EXP_STREAM_ERROR;
        }
        if (rc == 0) {
            if (st->fmt == EXP_SESS_JSON && !st->first)
                exp_buf_addc(&st->out, '\n');
            if (st->suffix)
                exp_buf_adds(&st->out, st->suffix);
            st->done = true;
            break;
        }
        stream_row(st, r);
    }
    if (st->m_rows) {
        uint64_t n = exp_sess_src_count(st->src);
        metric_add(st->m_rows, (int64_t)(n - st->counted));
        st->counted = n;
    }
    if (exp_buf_unread(&st->out) == 0)
        return EXP_STREAM_END;
    return (ssize_t)exp_buf_take(&st->out, buf, max);
}

static void stream_free(void *ctx)
{
    struct sess_stream *st = ctx;
    exp_sess_src_free(&st->src);
    exp_buf_free(&st->out);
    free(st->suffix);
    free(st);
}

struct exp_stream *exp_sess_stream(struct exp_sess_src *src, enum exp_sess_fmt fmt, char *prefix,
                                   char *suffix, struct metric *rows, struct metric *failed)
{
    struct sess_stream *st = xcalloc(1, sizeof(*st));
    st->src = src;
    st->fmt = fmt;
    st->first = true;
    st->suffix = suffix;
    st->m_rows = rows;
    st->m_failed = failed;
    if (prefix)
        exp_buf_adds(&st->out, prefix);
    free(prefix);
    struct exp_stream *s = xcalloc(1, sizeof(*s));
    s->read = stream_read;
    s->free = stream_free;
    s->ctx = st;
    return s;
}
