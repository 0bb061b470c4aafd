/* exp_http: the exporter's HTTP server (libmicrohttpd, a pool of polling
 * threads): reads each request with a bounded body, answers
 * /healthz and /metrics through lib/health, hands everything else to
 * exp_api and writes its JSON answer. Private to exporter/. */
#ifndef EXP_HTTP_H
#define EXP_HTTP_H
#include "exp_api.h"

#include <stdint.h>

struct exp_http;

/* A connection idle this long is closed. While an export, report or
 * session list is made and sent, the timeout is 15 min instead. */
#define EXP_HTTP_IDLE_TIMEOUT_S 30u

/* Listens on "HOST:PORT" (IPv4; port 0 picks one) with `threads` threads
 * (each its own connections), closing connections idle for idle_s seconds.
 * NULL with a logged reason when it cannot. */
struct exp_http *exp_http_start(const char *hostport, struct exp_api *api, unsigned threads,
                                unsigned idle_s);
/* The port actually listened on. */
uint16_t exp_http_port(const struct exp_http *h);
/* Stops accepting, finishes the requests in progress, joins the threads. */
void exp_http_stop(struct exp_http **h);

#endif
