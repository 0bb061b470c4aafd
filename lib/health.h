/* health: the small HTTP endpoint every program serves (libmicrohttpd):
 * GET /healthz (200 once the program is ready, 503 before) and GET /metrics
 * (Prometheus text). Metrics are plain atomics, safe from any thread. */
#ifndef LICMON_HEALTH_H
#define LICMON_HEALTH_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct metric;
struct MHD_Connection;

/* name may carry labels: licmon_events_total{result="accepted"} */
struct metric *metric_counter(const char *name, const char *help);
struct metric *metric_gauge(const char *name, const char *help);
void metric_add(struct metric *m, int64_t n);
void metric_set(struct metric *m, int64_t v);
int64_t metric_get(const struct metric *m);

/* Starts the endpoint on "HOST:PORT" (empty: none). 0, or -1 when it
 * cannot listen (logged). */
int health_start(const char *program, const char *hostport);
void health_stop(void);
void health_set_ready(bool ready);
/* For a program that serves its own HTTP (exporter): answers /healthz and
 * /metrics on that connection; returns 1 when it handled the url. */
int health_handle(struct MHD_Connection *c, const char *url, int *mhd_result);

/* libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER) for every HTTP
 * server of ours: its messages are mostly about malformed requests, which
 * any client can send at any rate, so they are limited warnings, limited
 * per kind of message (its format). */
void health_mhd_log(void *cls, const char *fmt, va_list ap);

/* Splits "host:port" (port may be 0 for any). 0 on success. */
int health_parse_hostport(const char *text, char *host, unsigned hostlen, uint16_t *port);

#endif
