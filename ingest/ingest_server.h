/* ingest_server: ingest's two sockets. The producer socket (ROUTER, facing
 * applications, MAXMSGSIZE) takes EventBatch frames and answers BatchAck
 * frames after the group commit; the internal socket (ROUTER, inside the
 * stack) serves journal fetches, status and settings changes. While the
 * journal holds more than max_backlog_bytes that the sessionizer has not
 * applied, the producer socket is not read, until a quarter of that has
 * drained: batches wait in the producers' queues and their acknowledgements
 * come later (backpressure with nothing dropped, and a bound on the disk a
 * stalled pipeline can fill). */
#ifndef LICMON_INGEST_SERVER_H
#define LICMON_INGEST_SERVER_H
#include "ingest_journal.h"
#include "svc.h"

#include <stdint.h>

struct ingest_server_config {
    const char *producer_endpoint;
    const char *internal_endpoint;
    int64_t max_frame_bytes;
    int64_t max_batch_events;
    int64_t tick_ms;
    int64_t journal_retention_ms;  /* applied records younger than this are kept */
    const char *curve_secret_file; /* empty: no CURVE (ipc inside the stack) */
    int64_t max_backlog_bytes;     /* journal not yet applied downstream; 0: no bound */
};

struct ingest_server;

/* Binds both sockets and registers them and the tick timer with svc.
 * NULL (logged) when a socket cannot be bound. */
struct ingest_server *ingest_server_new(const struct ingest_server_config *cfg, struct svc *svc,
                                        struct ingest_journal *j);
void ingest_server_free(struct ingest_server **s);

#endif
