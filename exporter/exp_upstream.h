/* exp_upstream: a request/reply client to another program's internal
 * ROUTER (aggregator, ingest), after the ZeroMQ guide's Lazy Pirate: one
 * DEALER, one request in flight, a receive deadline; on timeout the socket
 * is closed and opened again so a late answer can never be mistaken for
 * the next one, and replies whose id is not the request's are dropped.
 * A client holds a small pool of such DEALERs: a call takes a free one (or
 * waits for one), so HTTP threads never share a socket at the same time,
 * and a socket only moves between threads under the pool's mutex (the full
 * memory barrier ZeroMQ asks for). Private to exporter/. */
#ifndef EXP_UPSTREAM_H
#define EXP_UPSTREAM_H
#include "pb.h"

#include <stdint.h>

struct exp_upstream;

enum exp_upstream_result {
    EXP_UP_OK,      /* *reply set */
    EXP_UP_TIMEOUT, /* no matching answer before the deadline */
    EXP_UP_ERROR,   /* the socket could not be opened or written */
};

/* name: for logs and metrics ("aggregator"). The socket opens on first use,
 * in the thread that calls. */
struct exp_upstream *exp_upstream_new(const char *name, const char *endpoint, int64_t timeout_ms);
/* The same with `sockets` DEALERs (1 or more): up to that many calls run at
 * once, from different threads. */
struct exp_upstream *exp_upstream_new_pool(const char *name, const char *endpoint,
                                           int64_t timeout_ms, unsigned sockets);
void exp_upstream_free(struct exp_upstream **u);
const char *exp_upstream_name(const struct exp_upstream *u);
/* The limit of the warnings about this program failing in way `why` (0 to
 * EXP_UPSTREAM_WARN_KINDS - 1, the caller's numbering): one per program and
 * way, so that one program down does not hide another. */
#define EXP_UPSTREAM_WARN_KINDS 4
struct log_limit *exp_upstream_warn_limit(struct exp_upstream *u, unsigned why);
/* Sends req (its id is set here) and waits for the reply with that id.
 * timeout_ms <= 0 uses the client's default. On EXP_UP_OK the caller frees
 * *reply with PB_FREE(reply, ...). */
enum exp_upstream_result exp_upstream_call(struct exp_upstream *u, Licmon__V1__Request *req,
                                           int64_t timeout_ms, Licmon__V1__Reply **reply);

#endif
