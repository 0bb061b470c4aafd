/* health: /healthz and /metrics over libmicrohttpd (see health.h). */
#include "health.h"
#include "log.h"
#include "xmem.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRIC_MAX 128

struct metric {
    char *name;
    char *help;
    bool counter;
    _Atomic int64_t value;
};

static struct metric metric_table[METRIC_MAX];
static _Atomic int metric_count;
static struct MHD_Daemon *health_daemon;
static _Atomic bool health_ready_flag;
static const char *health_program = "licmon";

/* Registration happens at start-up, from the main thread; a name registered
 * twice gives the same metric. */
static struct metric *metric_new(const char *name, const char *help, bool counter)
{
    for (int j = 0; j < atomic_load(&metric_count); j++)
        if (!strcmp(metric_table[j].name, name))
            return &metric_table[j];
    int i = atomic_fetch_add(&metric_count, 1);
    if (i >= METRIC_MAX)
        log_panic("more than %d metrics", METRIC_MAX);
    struct metric *m = &metric_table[i];
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->counter = counter;
    return m;
}

struct metric *metric_counter(const char *name, const char *help)
{
    return metric_new(name, help, true);
}

struct metric *metric_gauge(const char *name, const char *help)
{
    return metric_new(name, help, false);
}

void metric_add(struct metric *m, int64_t n)
{
    atomic_fetch_add(&m->value, n);
}

void metric_set(struct metric *m, int64_t v)
{
    atomic_store(&m->value, v);
}

int64_t metric_get(const struct metric *m)
{
    return atomic_load(&((struct metric *)m)->value);
}

void health_set_ready(bool ready)
{
    atomic_store(&health_ready_flag, ready);
}

static size_t base_len(const char *name)
{
    const char *b = strchr(name, '{');
    return b ? (size_t)(b - name) : strlen(name);
}

/* Prometheus text: every family's HELP and TYPE once, then all its series
 * together, whatever order they were registered in. */
static char *metrics_text(size_t *len)
{
    size_t cap = 4096, pos = 0;
    char *out = xmalloc(cap);
    int n = atomic_load(&metric_count);
    bool *done = xcalloc((size_t)n + 1, sizeof(bool));
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        struct metric *fam = &metric_table[i];
        size_t bl = base_len(fam->name);
        char *head = xasprintf("# HELP %.*s %s\n# TYPE %.*s %s\n", (int)bl, fam->name, fam->help,
                               (int)bl, fam->name, fam->counter ? "counter" : "gauge");
        for (int j = i; j < n; j++) {
            struct metric *m = &metric_table[j];
            if (done[j] || base_len(m->name) != bl || strncmp(m->name, fam->name, bl) != 0)
                continue;
            done[j] = true;
            char *line = xasprintf("%s%s %lld\n", head ? head : "", m->name,
                                   (long long)atomic_load(&m->value));
            free(head);
            head = NULL;
            size_t l = strlen(line);
            if (pos + l + 1 > cap) {
                cap = (cap + l) * 2;
                out = xrealloc(out, cap);
            }
            memcpy(out + pos, line, l);
            pos += l;
            free(line);
        }
    }
    free(done);
    *len = pos;
    return out;
}

static int health_reply(struct MHD_Connection *c, unsigned status, const char *type, char *body,
                        size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    int ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

int health_handle(struct MHD_Connection *c, const char *url, int *mhd_result)
{
    if (!strcmp(url, "/healthz")) {
        bool ok = atomic_load(&health_ready_flag);
        char *body = xasprintf("{\"status\":\"%s\",\"program\":\"%s\"}\n", ok ? "ok" : "starting",
                               health_program);
        *mhd_result = health_reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "application/json", body, strlen(body));
        return 1;
    }
    if (!strcmp(url, "/metrics")) {
        size_t len;
        char *body = metrics_text(&len);
        *mhd_result = health_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len);
        return 1;
    }
    return 0;
}

static enum MHD_Result health_access(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    (void)cls, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    int result;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        char *body = xstrdup("{\"error\":\"method not allowed\"}\n");
        return (enum MHD_Result)health_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                                             body, strlen(body));
    }
    if (health_handle(c, url, &result))
        return (enum MHD_Result)result;
    char *body = xasprintf("{\"error\":\"not found\",\"detail\":\"no such path\"}\n");
    return (enum MHD_Result)health_reply(c, MHD_HTTP_NOT_FOUND, "application/json", body,
                                         strlen(body));
}

int health_parse_hostport(const char *text, char *host, unsigned hostlen, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= hostlen)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    if (!strcmp(host, "localhost"))
        snprintf(host, hostlen, "127.0.0.1");
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

/* libmicrohttpd writes its messages from format literals: one limit per
 * format, so that a burst of one kind does not hide another; past
 * MHD_LOG_KINDS formats the rest share one. */
#define MHD_LOG_KINDS 32
void health_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static const char *kinds[MHD_LOG_KINDS];
    static struct log_limit limits[MHD_LOG_KINDS + 1];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    (void)cls;
    pthread_mutex_lock(&lock);
    size_t k = 0;
    while (k < MHD_LOG_KINDS && kinds[k] && kinds[k] != fmt)
        k++;
    if (k < MHD_LOG_KINDS && !kinds[k])
        kinds[k] = fmt;
    pthread_mutex_unlock(&lock);
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn_limited(&limits[k], "http: %s", msg);
}

int health_start(const char *program, const char *hostport)
{
    health_program = program;
    if (!hostport || !*hostport)
        return 0;
    char host[64];
    uint16_t port;
    if (health_parse_hostport(hostport, host, sizeof(host), &port)) {
        log_warn("health endpoint '%s' is not HOST:PORT with an IPv4 host", hostport);
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    health_daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL, health_access, NULL,
        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_EXTERNAL_LOGGER, health_mhd_log, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!health_daemon) {
        log_warn("cannot serve health endpoint on %s", hostport);
        return -1;
    }
    return 0;
}

void health_stop(void)
{
    if (health_daemon) {
        MHD_stop_daemon(health_daemon);
        health_daemon = NULL;
    }
}
