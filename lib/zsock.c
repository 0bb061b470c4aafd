/* zsock: ZeroMQ wrapper (see zsock.h). */
#include "zsock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void *zsock_context;

void *zsock_ctx(void)
{
    if (!zsock_context) {
        zsock_context = zmq_ctx_new();
        if (!zsock_context)
            log_fatal("zmq_ctx_new: %s", zmq_strerror(errno));
    }
    return zsock_context;
}

void zsock_ctx_term(void)
{
    if (zsock_context) {
        zmq_ctx_term(zsock_context);
        zsock_context = NULL;
    }
}

static int zsock_setopt_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v));
}

void *zsock_open(int type, const char *endpoint, bool bind, const struct zsock_opts *o)
{
    struct zsock_opts def = ZSOCK_OPTS_DEFAULT;
    if (!o)
        o = &def;
    void *s = zmq_socket(zsock_ctx(), type);
    if (!s) {
        log_warn("zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zsock_setopt_int(s, ZMQ_LINGER, o->linger_ms);
    zsock_setopt_int(s, ZMQ_SNDHWM, o->hwm);
    zsock_setopt_int(s, ZMQ_RCVHWM, o->rcvhwm > 0 ? o->rcvhwm : o->hwm);
    if (o->no_reconnect) {
        zsock_setopt_int(s, ZMQ_RECONNECT_IVL, -1);
    } else if (o->reconnect_ms > 0) {
        zsock_setopt_int(s, ZMQ_RECONNECT_IVL, o->reconnect_ms);
        zsock_setopt_int(s, ZMQ_RECONNECT_IVL_MAX, 2000);
    }
    if (o->maxmsgsize > 0)
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &o->maxmsgsize, sizeof(o->maxmsgsize));
    if (o->router_mandatory && type == ZMQ_ROUTER)
        zsock_setopt_int(s, ZMQ_ROUTER_MANDATORY, 1);
    if (endpoint) {
        int rc = bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint);
        if (rc != 0) {
            log_warn("%s %s: %s", bind ? "bind" : "connect", endpoint, zmq_strerror(errno));
            zmq_close(s);
            return NULL;
        }
    }
    return s;
}

void zsock_close(void **sock)
{
    if (*sock) {
        zmq_close(*sock);
        *sock = NULL;
    }
}

int zsock_set_curve_server(void *sock, const char *secret_z85)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_z85, 40)) {
        log_warn("curve server options: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_set_curve_client(void *sock, const char *server_public_z85, const char *public_z85,
                           const char *secret_z85)
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public_z85, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_z85, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_z85, 40)) {
        log_warn("curve client options: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_recv(void *sock, struct zsock_env *env, zmq_msg_t *payload, int flags, bool *bad)
{
    if (bad)
        *bad = false;
    if (env)
        env->n = 0;
    bool shape_ok = true;
    zmq_msg_init(payload);
    for (;;) {
        if (zmq_msg_recv(payload, sock, flags) < 0) {
            zmq_msg_close(payload);
            return -1;
        }
        if (!zmq_msg_more(payload))
            break;
        /* a routing frame: keep it for the reply */
        if (!env || env->n >= ZSOCK_ENV_MAX || zmq_msg_size(payload) > sizeof(env->data[0])) {
            shape_ok = false;
        } else {
            env->len[env->n] = zmq_msg_size(payload);
            memcpy(env->data[env->n], zmq_msg_data(payload), env->len[env->n]);
            env->n++;
        }
        zmq_msg_close(payload);
        zmq_msg_init(payload);
        flags &= ~ZMQ_DONTWAIT; /* the rest of a multipart message is already here */
    }
    if (!shape_ok) {
        zmq_msg_close(payload);
        if (bad)
            *bad = true;
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int zsock_send(void *sock, const struct zsock_env *env, const void *data, size_t len, int flags)
{
    for (int i = 0; env && i < env->n; i++)
        if (zmq_send(sock, env->data[i], env->len[i], ZMQ_SNDMORE | flags) < 0)
            return -1;
    return zmq_send(sock, data, len, flags) < 0 ? -1 : 0;
}

int zsock_read_key(const char *path, char out[41])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[128] = "";
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    if (!ok)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) != 40)
        return -1;
    memcpy(out, line, 41);
    return 0;
}
