/* exp_internal: status over the internal ROUTER (see exp_internal.h). The
 * exporter keeps no log, so status is all it serves; any other kind gets
 * Reply.error, an unreadable frame a Reply.error with id 0. */
#include "exp_internal.h"
#include "health.h"
#include "log.h"
#include "lstream.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <stdlib.h>

#define INTERNAL_MAX_MSG (1024 * 1024)

struct exp_internal {
    void *router;
    int64_t started_ms;
    struct metric *m_bad;
};

static void internal_on_router(void *arg)
{
    struct exp_internal *in = arg;
    struct zsock_env env;
    Licmon__V1__Request *req;
    uint64_t unreadable = 0;
    while ((req = lstream_recv_request(in->router, &env, &unreadable))) {
        Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
        Licmon__V1__StatusReply sr = LICMON__V1__STATUS_REPLY__INIT;
        if (req->body_case == LICMON__V1__REQUEST__BODY_STATUS) {
            rep.id = req->id;
            sr.program = "exporter";
            sr.started_ms = in->started_ms;
            rep.body_case = LICMON__V1__REPLY__BODY_STATUS;
            rep.status = &sr;
        } else {
            rep.id = req->id;
            rep.error = "request kind not served here";
        }
        lstream_send_reply(in->router, &env, &rep);
        PB_FREE(request, req);
    }
    metric_add(in->m_bad, (int64_t)unreadable);
}

struct exp_internal *exp_internal_open(const char *endpoint, struct svc *svc)
{
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    o.maxmsgsize = INTERNAL_MAX_MSG;
    void *router = zsock_open(ZMQ_ROUTER, endpoint, true, &o);
    if (!router)
        return NULL;
    struct exp_internal *in = xcalloc(1, sizeof(*in));
    in->router = router;
    in->started_ms = time_now_ms();
    in->m_bad = metric_counter("licmon_exporter_internal_bad_requests_total",
                               "frames on the internal socket that were not a Request");
    svc_watch(svc, in->router, -1, internal_on_router, in);
    return in;
}

void exp_internal_close(struct exp_internal **inp, struct svc *svc)
{
    struct exp_internal *in = *inp;
    if (!in)
        return;
    svc_unwatch(svc, in->router, -1);
    zsock_close(&in->router);
    free(in);
    *inp = NULL;
}
