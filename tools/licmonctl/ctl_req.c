/* ctl_req: one Request, one Reply, over a DEALER connected to a program's
 * internal socket (ipc://DIR/run/NAME.sock). A reply that does not echo the
 * request id is a stale answer to an earlier try and is dropped; on timeout
 * the socket is closed and reopened so nothing stale is left queued. */
#include "ctl.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void ctl_req_open(struct ctl_req *r)
{
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    o.maxmsgsize = 64 << 20;
    r->sock = zsock_open(ZMQ_DEALER, r->endpoint, false, &o);
}

void ctl_req_init(struct ctl_req *r, const char *endpoint)
{
    r->endpoint = xstrdup(endpoint);
    r->next_id = ((uint64_t)time_now_ms() << 8) | 1;
    ctl_req_open(r);
}

void ctl_req_close(struct ctl_req *r)
{
    zsock_close(&r->sock);
    free(r->endpoint);
    r->endpoint = NULL;
}

Licmon__V1__Reply *ctl_req_call(struct ctl_req *r, Licmon__V1__Request *req, int timeout_ms)
{
    int64_t deadline = time_mono_ms() + timeout_ms;
    if (!r->sock)
        ctl_req_open(r);
    if (!r->sock)
        return NULL;
    req->id = r->next_id++;
    size_t len;
    uint8_t *buf = pb_pack(&req->base, &len);
    int sent = zsock_send(r->sock, NULL, buf, len, ZMQ_DONTWAIT);
    free(buf);
    for (int64_t left = deadline - time_mono_ms(); left > 0; left = deadline - time_mono_ms()) {
        zmq_pollitem_t it = {.socket = r->sock, .events = ZMQ_POLLIN};
        /* a request that could not even be queued just waits out its time */
        int n = zmq_poll(&it, sent == 0 ? 1 : 0, (long)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        zmq_msg_t msg;
        bool bad;
        if (zsock_recv(r->sock, NULL, &msg, ZMQ_DONTWAIT, &bad) != 0)
            continue;
        Licmon__V1__Reply *rep =
            licmon__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (rep && rep->id == req->id)
            return rep;
        PB_FREE(reply, rep);
    }
    zsock_close(&r->sock);
    ctl_req_open(r);
    return NULL;
}
