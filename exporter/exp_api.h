/* exp_api: the HTTP API's handlers, independent of the HTTP library: a
 * request (method, path, Authorization, body) comes in, a status and a
 * JSON body go out. Routing, authentication and authorization happen here
 * in that order; the data comes from the aggregator and settings changes go
 * to ingest through exp_upstream. Private to exporter/. */
#ifndef EXP_API_H
#define EXP_API_H
#include "exp_auth.h"
#include "exp_params.h"
#include "exp_token.h"
#include "exp_upstream.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EXP_API_BODY_MAX (64 * 1024)
#define EXP_API_SETTINGS_WAIT_MS 3000
#define EXP_API_MAX_PARAMS 32
#define EXP_API_SESSION_CHUNK 2000 /* session records per aggregator reply */

struct exp_api_config {
    const char *admin_token;         /* the administrator's secret */
    struct exp_tokens *tokens;       /* borrowed */
    struct store *store;             /* borrowed: settings journaled, not yet applied */
    struct exp_upstream *aggregator; /* borrowed */
    struct exp_upstream *ingest;     /* borrowed */
    int64_t query_timeout_ms;
    int64_t settings_wait_ms;  /* 0: EXP_API_SETTINGS_WAIT_MS */
    int64_t (*clock_ms)(void); /* NULL: the exporter's clock (tests fix "now" here) */
    const char *tmpdir;        /* xlsx work files; NULL: /tmp */
    uint32_t xlsx_max_rows;    /* rows per Sessions sheet, header included; 0: Excel's */
    uint32_t session_chunk;    /* 0: EXP_API_SESSION_CHUNK */
    unsigned max_exports;      /* xlsx exports built at once; 0: 2 */
};

struct exp_req {
    const char *method;
    const char *path;          /* without the query string */
    const char *authorization; /* header value or NULL */
    const char *body;          /* may be NULL when body_len is 0 */
    size_t body_len;
    bool body_too_big;           /* more than EXP_API_BODY_MAX arrived (and was dropped) */
    const struct exp_kv *params; /* the query string, decoded */
    size_t n_params;
    bool too_many_params; /* more than EXP_API_MAX_PARAMS */
    const char *accept;   /* Accept header or NULL */
};

#define EXP_STREAM_END ((ssize_t)-1)
#define EXP_STREAM_ERROR ((ssize_t)-2)

/* A body produced while it is sent: read fills buf with 1..max bytes, or
 * returns EXP_STREAM_END, or EXP_STREAM_ERROR (the connection is then cut,
 * so a client never mistakes a truncated body for a whole one). read may
 * block (it runs on the HTTP thread of that connection). */
struct exp_stream {
    ssize_t (*read)(void *ctx, char *buf, size_t max);
    void (*free)(void *ctx);
    void *ctx;
};

/* An answer: one of body (JSON), text, fd or stream, or none (204, HEAD). */
struct exp_resp {
    unsigned status;
    json_t *body; /* JSON */
    char *text;   /* another body (text_len bytes), e.g. JSON written by hand, HTML */
    size_t text_len;
    bool has_fd; /* a file (xlsx): fd, fd_size bytes from offset 0 */
    int fd;
    uint64_t fd_size;
    struct exp_stream *stream;
    const char *content_type; /* of text, fd and stream; NULL: application/json */
    char *filename;           /* Content-Disposition: attachment; filename=... */
    char *timezone;           /* X-Licmon-Timezone (answers whose body cannot carry it) */
    bool html;                /* add the report's Content-Security-Policy */
    const char *allow;        /* for 405: the Allow header */
    bool challenge;           /* for 401: WWW-Authenticate: Bearer */
};

struct exp_api;

struct exp_api *exp_api_new(const struct exp_api_config *cfg);
void exp_api_free(struct exp_api **a);
/* Answers one request; resp->body is owned by the caller (exp_resp_clear). */
void exp_api_handle(struct exp_api *a, const struct exp_req *req, struct exp_resp *resp);
void exp_resp_clear(struct exp_resp *resp);
/* True when resp has a body of any kind. */
bool exp_resp_has_body(const struct exp_resp *resp);
/* Fills resp with the error shape {"error":..., "detail":...}. */
void exp_resp_error(struct exp_resp *resp, unsigned status, const char *error, const char *detail);

#endif
