/* exp_http: libmicrohttpd glue (see exp_http.h). All handlers run on MHD's
 * one polling thread, so the upstream sockets exp_api uses are only ever
 * touched from that thread (exp_upstream also locks, for safety). A body
 * is kept up to EXP_API_BODY_MAX bytes; a larger one is answered 413 (at
 * once when Content-Length announces it) and its connection closed. */
#include "exp_http.h"
#include "exp_static.h"
#include "health.h"
#include "log.h"
#include "xmem.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_DROP_MAX (16 * 1024 * 1024)

struct exp_http {
    struct MHD_Daemon *daemon;
    struct exp_api *api;
    uint16_t port;
    struct metric *m_class[6]; /* by status / 100: 2xx .. 5xx */
};

struct http_conn {
    char *body;
    size_t len;
    bool answered; /* a 413 was queued on the first call */
    bool too_big;  /* the body outgrew EXP_API_BODY_MAX */
    size_t dropped;
};

static void http_count(struct exp_http *h, unsigned status)
{
    unsigned c = status / 100;
    if (c >= 2 && c <= 5)
        metric_add(h->m_class[c], 1);
}

static enum MHD_Result http_send(struct exp_http *h, struct MHD_Connection *c,
                                 const struct exp_resp *resp)
{
    char *text = NULL;
    size_t len = 0;
    if (resp->body) {
        char *dump = json_dumps(resp->body, JSON_COMPACT);
        if (!dump)
            log_fatal("out of memory writing a JSON answer");
        text = xasprintf("%s\n", dump);
        free(dump);
        len = strlen(text);
    }
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        log_fatal("out of memory creating an HTTP response");
    if (resp->body)
        MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (resp->allow)
        MHD_add_response_header(r, "Allow", resp->allow);
    if (resp->challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"licmon\"");
    enum MHD_Result ret = MHD_queue_response(c, resp->status, r);
    MHD_destroy_response(r);
    http_count(h, resp->status);
    return ret;
}

static enum MHD_Result http_too_big(struct exp_http *h, struct MHD_Connection *c)
{
    struct exp_resp resp = {0};
    char detail[96];
    snprintf(detail, sizeof(detail), "body: more than %d bytes", EXP_API_BODY_MAX);
    exp_resp_error(&resp, 413, "payload too large", detail);
    enum MHD_Result ret = http_send(h, c, &resp);
    exp_resp_clear(&resp);
    return ret;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct exp_http *h = cls;
    struct http_conn *hc = *con_cls;
    if (!hc) {
        hc = xcalloc(1, sizeof(*hc));
        *con_cls = hc;
        /* a declared body that is too big is refused before it is sent */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > EXP_API_BODY_MAX) {
            hc->answered = true; /* MHD closes the connection after this answer */
            return http_too_big(h, c);
        }
        return MHD_YES;
    }
    if (hc->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* a chunked body has no declared size: MHD lets us answer only once it
         * is all in, so drop the excess, and the connection when it is absurd */
        if (hc->too_big || hc->len + *upload_data_size > EXP_API_BODY_MAX) {
            hc->too_big = true;
            hc->dropped += *upload_data_size;
            *upload_data_size = 0;
            return hc->dropped > HTTP_DROP_MAX ? MHD_NO : MHD_YES;
        }
        hc->body = xrealloc(hc->body, hc->len + *upload_data_size + 1);
        memcpy(hc->body + hc->len, upload_data, *upload_data_size);
        hc->len += *upload_data_size;
        hc->body[hc->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (hc->too_big)
        return http_too_big(h, c);
    int result;
    if ((!strcmp(method, "GET") || !strcmp(method, "HEAD")) && health_handle(c, url, &result))
        return (enum MHD_Result)result; /* not counted: these are not API requests */
    if (strncmp(url, "/v1/", 4) != 0 && exp_static_handle(c, method, url, &result))
        return (enum MHD_Result)result; /* the dashboard's files */
    struct exp_req req = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        .body = hc->body,
        .body_len = hc->len,
    };
    struct exp_resp resp;
    exp_api_handle(h->api, &req, &resp);
    enum MHD_Result ret = http_send(h, c, &resp);
    exp_resp_clear(&resp);
    return ret;
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct http_conn *hc = *con_cls;
    if (hc) {
        free(hc->body);
        free(hc);
    }
    *con_cls = NULL;
}

static void http_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("http: %s", msg);
}

struct exp_http *exp_http_start(const char *hostport, struct exp_api *api)
{
    char host[64];
    uint16_t port;
    if (health_parse_hostport(hostport, host, sizeof(host), &port) != 0) {
        log_warn("--http '%s' is not HOST:PORT with an IPv4 host", hostport);
        return NULL;
    }
    struct exp_http *h = xcalloc(1, sizeof(*h));
    h->api = api;
    static const char *const classes[] = {NULL, NULL, "2xx", "3xx", "4xx", "5xx"};
    for (int i = 2; i <= 5; i++) {
        char *name = xasprintf("licmon_exporter_http_requests_total{class=\"%s\"}", classes[i]);
        h->m_class[i] = metric_counter(name, "API requests answered, by status class");
        free(name);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    h->daemon =
        MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL,
                         http_access, h, MHD_OPTION_EXTERNAL_LOGGER, http_log, h,
                         MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
                         MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!h->daemon) {
        log_warn("cannot serve the API on %s", hostport);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info && info->port ? info->port : port;
    return h;
}

uint16_t exp_http_port(const struct exp_http *h)
{
    return h->port;
}

void exp_http_stop(struct exp_http **hp)
{
    struct exp_http *h = *hp;
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
    *hp = NULL;
}
