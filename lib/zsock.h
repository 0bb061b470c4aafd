/* zsock: the only module that calls libzmq. Every socket gets LINGER and HWM;
 * sockets facing the outside also get MAXMSGSIZE. Errors come back as -1
 * with a logged reason, never as an abort. */
#ifndef LICMON_ZSOCK_H
#define LICMON_ZSOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

struct zsock_opts {
    int hwm;            /* send and receive high-water mark, messages */
    int rcvhwm;         /* when > 0, the receive high-water mark instead */
    int64_t maxmsgsize; /* 0: no limit (internal sockets only) */
    int linger_ms;
    int reconnect_ms;
    bool router_mandatory;
    /* never reconnect by itself: once the peer is gone nothing more is
     * queued (sends fail), so a client that resends what was not
     * acknowledged on a fresh socket keeps its messages in order */
    bool no_reconnect;
};
#define ZSOCK_OPTS_DEFAULT                                                                         \
    {                                                                                              \
        .hwm = 1000, .maxmsgsize = 0, .linger_ms = 0, .reconnect_ms = 100                          \
    }

void *zsock_ctx(void);
void zsock_ctx_term(void);
/* Creates a socket and binds (bind=true) or connects it; NULL on failure. */
void *zsock_open(int type, const char *endpoint, bool bind, const struct zsock_opts *o);
void zsock_close(void **sock);
int zsock_set_curve_server(void *sock, const char *secret_z85);
int zsock_set_curve_client(void *sock, const char *server_public_z85, const char *public_z85,
                           const char *secret_z85);

/* The routing frames of a request received on a ROUTER, replayed on the reply. */
#define ZSOCK_ENV_MAX 4
struct zsock_env {
    int n;
    size_t len[ZSOCK_ENV_MAX];
    uint8_t data[ZSOCK_ENV_MAX][256];
};

/* Receives one message: routing frames (when env != NULL) then one payload
 * frame, into *payload (caller zmq_msg_close()s it). Returns 0, or -1 when
 * nothing was waiting (EAGAIN with ZMQ_DONTWAIT) or the message had the wrong
 * shape (it is drained and dropped; *bad is set). */
int zsock_recv(void *sock, struct zsock_env *env, zmq_msg_t *payload, int flags, bool *bad);
/* Sends routing frames (env may be NULL) then the payload. */
int zsock_send(void *sock, const struct zsock_env *env, const void *data, size_t len, int flags);

/* Reads a Z85 key (40 chars) from the first line of a file; 0 on success. */
int zsock_read_key(const char *path, char out[41]);

#endif
