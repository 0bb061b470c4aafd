/* exp_http: libmicrohttpd glue (see exp_http.h). MHD runs a pool of
 * threads, each polling its own connections, so one slow query or export
 * does not hold up /healthz or the other requests; handlers may block.
 * exp_upstream gives each call its own DEALER from a locked pool, so no
 * ZeroMQ socket is ever used by two threads at once. A body is kept up to
 * EXP_API_BODY_MAX bytes; a larger one is answered 413 (at once when
 * Content-Length announces it) and its connection closed. Answers are
 * JSON, text, a file (xlsx) or a stream produced while it is sent. */
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
#define HTTP_STREAM_BLOCK (64 * 1024)
#define HTTP_LONG_TIMEOUT_S 900u /* exports may take a while before their first byte */

struct exp_http {
    struct MHD_Daemon *daemon;
    struct exp_api *api;
    uint16_t port;
    unsigned idle_s; /* a connection's idle timeout, but while an export is made and sent */
    struct metric *m_class[6]; /* by status / 100: 2xx .. 5xx */
};

struct http_args {
    struct exp_kv kv[EXP_API_MAX_PARAMS];
    size_t n;
    bool too_many;
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

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct exp_stream *s = cls;
    ssize_t n = s->read(s->ctx, buf, max);
    if (n == EXP_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD cuts the connection */
    return n;
}

static void http_stream_free(void *cls)
{
    struct exp_stream *s = cls;
    if (s->free)
        s->free(s->ctx);
    free(s);
}

/* A Content-Disposition value for a name we made (org and type are
 * [A-Za-z0-9._-], dates digits). */
static char *http_disposition(const char *filename)
{
    char *clean = xstrdup(filename);
    for (char *p = clean; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '_';
    char *v = xasprintf("attachment; filename=\"%s\"", clean);
    free(clean);
    return v;
}

static enum MHD_Result http_send(struct exp_http *h, struct MHD_Connection *c,
                                 struct exp_resp *resp)
{
    const char *ctype = resp->body                ? "application/json"
                        : resp->content_type      ? resp->content_type
                        : exp_resp_has_body(resp) ? "application/json"
                                                  : NULL;
    struct MHD_Response *r;
    if (resp->body) {
        char *dump = json_dumps(resp->body, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (!dump)
            log_fatal("out of memory writing a JSON answer");
        char *text = xasprintf("%s\n", dump);
        free(dump);
        r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    } else if (resp->text) {
        r = MHD_create_response_from_buffer(resp->text_len, resp->text, MHD_RESPMEM_MUST_FREE);
        resp->text = NULL; /* MHD frees it */
    } else if (resp->has_fd) {
        r = MHD_create_response_from_fd64(resp->fd_size, resp->fd);
        resp->has_fd = false; /* MHD closes it */
    } else if (resp->stream) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, http_stream_read,
                                              resp->stream, http_stream_free);
        if (r)
            resp->stream = NULL; /* MHD frees it */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        log_fatal("out of memory creating an HTTP response");
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (resp->filename) {
        char *d = http_disposition(resp->filename);
        MHD_add_response_header(r, "Content-Disposition", d);
        free(d);
    }
    if (resp->timezone)
        MHD_add_response_header(r, "X-Licmon-Timezone", resp->timezone);
    if (resp->html)
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                "frame-ancestors 'none'");
    if (resp->allow)
        MHD_add_response_header(r, "Allow", resp->allow);
    if (resp->challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"licmon\"");
    if (resp->status == 503)
        MHD_add_response_header(r, "Retry-After", "5");
    enum MHD_Result ret = MHD_queue_response(c, resp->status, r);
    MHD_destroy_response(r);
    http_count(h, resp->status);
    return ret;
}

static enum MHD_Result http_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct http_args *a = cls;
    if (a->n >= EXP_API_MAX_PARAMS) {
        a->too_many = true;
        return MHD_NO;
    }
    a->kv[a->n].key = key;
    a->kv[a->n].value = value;
    a->n++;
    return MHD_YES;
}

/* Sets a connection's idle timeout and restarts its countdown from now.
 * MHD documents that it restarts the countdown only when the timeout was 0
 * before, so it goes through 0. (The 0.9.75 here sends an answer that took
 * longer than the timeout to make before it checks the timeout, so no test
 * tells the two apart; the documented way does not depend on that.) */
static void http_set_timeout(struct MHD_Connection *c, unsigned s)
{
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, s);
}

/* Paths whose answer may take long to start (an xlsx is written first). */
static bool http_slow_path(const char *url)
{
    size_t n = strlen(url);
    return (n > 7 && !strcmp(url + n - 7, "/export")) ||
           (n > 7 && !strcmp(url + n - 7, "/report")) ||
           (n > 9 && !strcmp(url + n - 9, "/sessions"));
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
        /* every request sets its connection's timeout once its headers
         * are in: one after an export goes back to the idle timeout */
        http_set_timeout(c, http_slow_path(url) ? HTTP_LONG_TIMEOUT_S : h->idle_s);
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
    struct http_args args = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_arg, &args);
    struct exp_req req = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        .body = hc->body,
        .body_len = hc->len,
        .params = args.kv,
        .n_params = args.n,
        .too_many_params = args.too_many,
        .accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
    };
    struct exp_resp resp;
    exp_api_handle(h->api, &req, &resp);
    /* the long timeout is for answers being made and sent: a refusal (no
     * token, a bad parameter) goes back to the idle one, or connections with
     * one unauthenticated request each could hold every slot for 15 min */
    if (http_slow_path(url) && resp.status >= 300)
        http_set_timeout(c, h->idle_s);
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

struct exp_http *exp_http_start(const char *hostport, struct exp_api *api, unsigned threads,
                                unsigned idle_s)
{
    char host[64];
    uint16_t port;
    if (health_parse_hostport(hostport, host, sizeof(host), &port) != 0) {
        log_warn("--http '%s' is not HOST:PORT with an IPv4 host", hostport);
        return NULL;
    }
    struct exp_http *h = xcalloc(1, sizeof(*h));
    h->api = api;
    h->idle_s = idle_s;
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
                         http_access, h, MHD_OPTION_EXTERNAL_LOGGER, health_mhd_log, h,
                         MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
                         MHD_OPTION_THREAD_POOL_SIZE, threads ? threads : 1u,
                         MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
                         MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
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
