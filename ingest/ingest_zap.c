/* ingest_zap: ZAP handler allowing a fixed set of CURVE client keys (see
 * ingest_zap.h). It runs in ingest's loop; libzmq's I/O threads wait for
 * its answer asynchronously, so it never blocks a handshake of others. */
#include "ingest_zap.h"
#include "health.h"
#include "log.h"
#include "xmem.h"
#include "zsock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZAP_MAX_KEYS 4096

struct ingest_zap {
    unsigned char (*keys)[32];
    int nkeys;
    void *sock;
    struct metric *m_refused, *m_allowed;
};

struct ingest_zap *ingest_zap_empty(void)
{
    struct ingest_zap *z = xcalloc(1, sizeof(*z));
    z->keys = xcalloc(ZAP_MAX_KEYS, 32);
    return z;
}

int ingest_zap_parse(struct ingest_zap *z, const char *text)
{
    const char *p = text;
    int lineno = 0;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        lineno++;
        char line[128];
        while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        if (len && *p != '#') {
            if (len != 40 || z->nkeys >= ZAP_MAX_KEYS) {
                log_warn("allowed keys line %d: not a 40-character Z85 public key", lineno);
                return -1;
            }
            memcpy(line, p, 40);
            line[40] = '\0';
            if (!zmq_z85_decode(z->keys[z->nkeys], line)) {
                log_warn("allowed keys line %d: not valid Z85", lineno);
                return -1;
            }
            z->nkeys++;
        }
        p = end ? end + 1 : p + len;
        if (!end)
            break;
    }
    return z->nkeys;
}

int ingest_zap_allowed(const struct ingest_zap *z, const unsigned char key[32])
{
    for (int i = 0; i < z->nkeys; i++)
        if (!memcmp(z->keys[i], key, 32))
            return 1;
    return 0;
}

/* One ZAP request: version, request id, domain, address, identity,
 * mechanism, credentials... ; answer: version, request id, status code,
 * status text, user id, metadata. */
static void on_zap(void *arg)
{
    struct ingest_zap *z = arg;
    for (;;) {
        zmq_msg_t parts[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&parts[n]);
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&parts[i]);
                return;
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        while (more) { /* drain anything beyond what we read */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, z->sock, 0);
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }
        const char *code = "400", *text = "refused";
        char addr[64] = "?";
        if (n >= 7 && zmq_msg_size(&parts[5]) == 5 &&
            !memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) && zmq_msg_size(&parts[6]) == 32) {
            size_t al = zmq_msg_size(&parts[3]) < sizeof(addr) - 1 ? zmq_msg_size(&parts[3])
                                                                   : sizeof(addr) - 1;
            memcpy(addr, zmq_msg_data(&parts[3]), al);
            addr[al] = '\0';
            if (ingest_zap_allowed(z, zmq_msg_data(&parts[6]))) {
                code = "200", text = "OK";
            }
        }
        if (*code == '2') {
            metric_add(z->m_allowed, 1);
        } else {
            char pub[41] = "?";
            if (n >= 7 && zmq_msg_size(&parts[6]) == 32)
                zmq_z85_encode(pub, zmq_msg_data(&parts[6]), 32);
            metric_add(z->m_refused, 1);
            log_warn_ctx("peer", addr, "producer refused: public key %s is not allowed", pub);
        }
        const char *reqid = n >= 2 ? zmq_msg_data(&parts[1]) : "";
        size_t reqlen = n >= 2 ? zmq_msg_size(&parts[1]) : 0;
        zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(z->sock, reqid, reqlen, ZMQ_SNDMORE);
        zmq_send(z->sock, code, 3, ZMQ_SNDMORE);
        zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
}

struct ingest_zap *ingest_zap_new(const char *allowed_keys_path, struct svc *svc)
{
    FILE *f = fopen(allowed_keys_path, "r");
    if (!f) {
        log_warn("cannot read the allowed producer keys %s", allowed_keys_path);
        return NULL;
    }
    char *text = xcalloc(1, 40 * ZAP_MAX_KEYS * 2 + 1);
    size_t len = fread(text, 1, 40 * ZAP_MAX_KEYS * 2, f);
    fclose(f);
    text[len] = '\0';
    struct ingest_zap *z = ingest_zap_empty();
    int n = ingest_zap_parse(z, text);
    free(text);
    if (n < 0) {
        ingest_zap_free(&z);
        return NULL;
    }
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    z->sock = zsock_open(ZMQ_REP, "inproc://zeromq.zap.01", true, &o);
    if (!z->sock) {
        ingest_zap_free(&z);
        return NULL;
    }
    z->m_allowed = metric_counter("licmon_ingest_curve_handshakes_total{result=\"allowed\"}",
                                  "CURVE producer handshakes, by outcome");
    z->m_refused = metric_counter("licmon_ingest_curve_handshakes_total{result=\"refused\"}", "");
    svc_watch(svc, z->sock, -1, on_zap, z);
    log_info("CURVE: %d producer keys allowed", n);
    return z;
}

void ingest_zap_free(struct ingest_zap **zp)
{
    struct ingest_zap *z = *zp;
    if (!z)
        return;
    zsock_close(&z->sock);
    free(z->keys);
    free(z);
    *zp = NULL;
}
