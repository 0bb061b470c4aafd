/* exp_api: the HTTP API's handlers, independent of the HTTP library: a
 * request (method, path, Authorization, body) comes in, a status and a
 * JSON body go out. Routing, authentication and authorization happen here
 * in that order; the data comes from the aggregator and settings changes go
 * to ingest through exp_upstream. Private to exporter/. */
#ifndef EXP_API_H
#define EXP_API_H
#include "exp_auth.h"
#include "exp_token.h"
#include "exp_upstream.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXP_API_BODY_MAX (64 * 1024)
#define EXP_API_SETTINGS_WAIT_MS 3000

struct exp_api_config {
    const char *admin_token;         /* the administrator's secret */
    struct exp_tokens *tokens;       /* borrowed */
    struct exp_upstream *aggregator; /* borrowed */
    struct exp_upstream *ingest;     /* borrowed */
    int64_t query_timeout_ms;
    int64_t settings_wait_ms; /* 0: EXP_API_SETTINGS_WAIT_MS */
};

struct exp_req {
    const char *method;
    const char *path;          /* without the query string */
    const char *authorization; /* header value or NULL */
    const char *body;          /* may be NULL when body_len is 0 */
    size_t body_len;
    bool body_too_big; /* more than EXP_API_BODY_MAX arrived (and was dropped) */
};

struct exp_resp {
    unsigned status;
    json_t *body;      /* NULL: no body (204) */
    const char *allow; /* for 405: the Allow header */
    bool challenge;    /* for 401: WWW-Authenticate: Bearer */
};

struct exp_api;

struct exp_api *exp_api_new(const struct exp_api_config *cfg);
void exp_api_free(struct exp_api **a);
/* Answers one request; resp->body is owned by the caller (exp_resp_clear). */
void exp_api_handle(struct exp_api *a, const struct exp_req *req, struct exp_resp *resp);
void exp_resp_clear(struct exp_resp *resp);
/* Fills resp with the error shape {"error":..., "detail":...}. */
void exp_resp_error(struct exp_resp *resp, unsigned status, const char *error, const char *detail);

#endif
