/* alert_notify: SMTP and webhook delivery over the libcurl multi interface
 * (see alert_notify.h). Nothing here waits: alert_notify_poll() runs
 * curl_multi_perform() once and reads the finished transfers, so the
 * service loop calls it from a short timer. */
#include "alert_notify.h"
#include "log.h"
#include "xmem.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_BODY_MAX 4096 /* of a webhook reply we read (and throw away) */

struct xfer {
    CURL *easy;
    uint64_t token;
    enum alert_channel channel;
    char *payload;
    size_t len, pos;
    struct curl_slist *list; /* SMTP recipients or HTTP headers */
    char *mail_from;
    size_t received;
    bool (*address_ok)(const struct sockaddr *sa); /* NULL: any address */
    bool opened;      /* a connection to an accepted address was tried */
    char refused[64]; /* an address it would not connect to, if any */
    char err[CURL_ERROR_SIZE];
};

struct alert_notify {
    CURLM *multi;
    char *smtp_url, *smtp_from, *smtp_user, *smtp_password;
    int64_t timeout_ms, connect_timeout_ms;
    bool (*webhook_address_ok)(const struct sockaddr *sa);
    struct xfer **xfers;
    size_t nxfers, capxfers;
};

static bool notify_curl_ready;

struct alert_notify *alert_notify_new(const struct alert_notify_config *cfg)
{
    if (!notify_curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            log_fatal("libcurl cannot be initialised");
        notify_curl_ready = true;
    }
    struct alert_notify *n = xcalloc(1, sizeof(*n));
    n->multi = curl_multi_init();
    if (!n->multi)
        log_fatal("libcurl: no multi handle");
    n->smtp_url = xstrdup(cfg->smtp_url ? cfg->smtp_url : "");
    n->smtp_from = xstrdup(cfg->smtp_from ? cfg->smtp_from : "");
    n->smtp_user = xstrdup(cfg->smtp_user ? cfg->smtp_user : "");
    n->smtp_password = xstrdup(cfg->smtp_password ? cfg->smtp_password : "");
    n->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    n->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    n->webhook_address_ok = cfg->webhook_address_ok;
    return n;
}

static void xfer_free(struct alert_notify *n, struct xfer *x)
{
    curl_multi_remove_handle(n->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->list);
    free(x->payload);
    free(x->mail_from);
    free(x);
}

void alert_notify_free(struct alert_notify **np)
{
    struct alert_notify *n = *np;
    if (!n)
        return;
    for (size_t i = 0; i < n->nxfers; i++)
        xfer_free(n, n->xfers[i]);
    free(n->xfers);
    curl_multi_cleanup(n->multi);
    free(n->smtp_url);
    free(n->smtp_from);
    free(n->smtp_user);
    if (n->smtp_password)
        memset(n->smtp_password, 0, strlen(n->smtp_password));
    free(n->smtp_password);
    free(n);
    *np = NULL;
}

size_t alert_notify_active(const struct alert_notify *n)
{
    return n->nxfers;
}

static size_t read_payload(char *buf, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t room = size * nitems, left = x->len - x->pos;
    size_t n = left < room ? left : room;
    memcpy(buf, x->payload + x->pos, n);
    x->pos += n;
    return n;
}

static size_t discard_reply(char *buf, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    (void)buf;
    x->received += size * nitems;
    return x->received > NOTIFY_BODY_MAX * 256 ? 0 : size * nitems; /* a runaway reply ends */
}

/* a is in prefix/bits (IPv4, host order) */
static bool v4_in(uint32_t a, uint32_t prefix, int bits)
{
    return (a ^ prefix) >> (32 - bits) == 0;
}

static bool v4_public(uint32_t a)
{
    static const struct {
        uint32_t prefix;
        int bits;
    } not_public[] =
        {
            {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},
            {0xa9fe0000, 16}, {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24},
            {0xc0a80000, 16}, {0xc6120000, 15}, {0xc6336400, 24}, {0xcb007100, 24},
            {0xe0000000, 4},  {0xf0000000, 4}, /* multicast; reserved and broadcast */
        };
    for (size_t i = 0; i < sizeof(not_public) / sizeof(not_public[0]); i++)
        if (v4_in(a, not_public[i].prefix, not_public[i].bits))
            return false;
    return true;
}

static uint32_t v4_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

bool alert_notify_address_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return v4_public(v4_at(b + 12));
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 */
        return v4_public(v4_at(b + 2));
    if (b[0] == 0x20 && b[1] == 0x01 && (b[2] < 0x02 || (b[2] == 0x0d && b[3] == 0xb8)))
        return false; /* 2001::/23 (Teredo, benchmarking, ...), documentation 2001:db8::/32 */
    if (b[0] == 0x3f && b[1] == 0xff && b[2] < 0x10)
        return false; /* documentation, 3fff::/20 */
    /* global unicast is 2000::/3: the rest is ::, ::1, other IPv4-embedding
     * forms, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, ... */
    return (b[0] & 0xe0) == 0x20;
}

/* libcurl's socket for each address it tries: none for an address the
 * transfer may not reach (the check sees the address connected to, after
 * DNS: a name that resolves to a private address is refused too) */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = arg;
    if (purpose == CURLSOCKTYPE_IPCXN && !x->address_ok(&a->addr)) {
        const void *ip = a->family == AF_INET6
                             ? (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr
                             : (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr;
        if (!inet_ntop(a->family, ip, x->refused, sizeof(x->refused)))
            snprintf(x->refused, sizeof(x->refused), "an address");
        return CURL_SOCKET_BAD;
    }
    x->opened = true;
    return socket(a->family, a->socktype, a->protocol);
}

/* Options every transfer shares. */
static void xfer_common(struct alert_notify *n, struct xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->err);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)n->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)n->connect_timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, discard_reply);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
}

static int setup_email(struct alert_notify *n, struct xfer *x, const struct alert_delivery *d)
{
    if (!*n->smtp_url)
        return -1;
    char *addr = xasprintf("<%s>", d->to);
    x->list = curl_slist_append(NULL, addr);
    free(addr);
    /* the envelope sender is the bare address of --smtp-from */
    const char *lt = strchr(n->smtp_from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    x->mail_from = lt && gt ? xasprintf("<%.*s>", (int)(gt - lt - 1), lt + 1)
                            : xasprintf("<%s>", n->smtp_from);
    if (!x->list)
        return -1;
    curl_easy_setopt(x->easy, CURLOPT_URL, n->smtp_url);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(x->easy, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(x->easy, CURLOPT_MAIL_FROM, x->mail_from);
    curl_easy_setopt(x->easy, CURLOPT_MAIL_RCPT, x->list);
    if (*n->smtp_user) {
        curl_easy_setopt(x->easy, CURLOPT_USERNAME, n->smtp_user);
        curl_easy_setopt(x->easy, CURLOPT_PASSWORD, n->smtp_password);
    }
    curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, read_payload);
    curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
    return 0;
}

static int setup_webhook(struct xfer *x, const struct alert_delivery *d)
{
    char *h[5];
    int nh = 0;
    h[nh++] = xstrdup("Content-Type: application/json");
    h[nh++] = xasprintf("webhook-id: %s", d->id);
    h[nh++] = xasprintf("webhook-timestamp: %lld", (long long)d->timestamp_s);
    if (d->signature)
        h[nh++] = xasprintf("webhook-signature: %s", d->signature);
    h[nh++] = xstrdup("Expect:"); /* no 100-continue round trip */
    int rc = 0;
    for (int i = 0; i < nh; i++) {
        struct curl_slist *l = curl_slist_append(x->list, h[i]);
        if (!l)
            rc = -1;
        else
            x->list = l;
        free(h[i]);
    }
    if (rc)
        return -1;
    curl_easy_setopt(x->easy, CURLOPT_URL, d->to);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "licmon-alerter");
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->list);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->payload);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
    return 0;
}

int alert_notify_start(void *notify, uint64_t token, const struct alert_delivery *d)
{
    struct alert_notify *n = notify;
    if (d->channel == ALERT_EMAIL && !*n->smtp_url)
        return ALERT_START_LATER; /* the caller logs that no mail server is set */
    struct xfer *x = xcalloc(1, sizeof(*x));
    x->easy = curl_easy_init();
    x->token = token;
    x->channel = d->channel;
    x->payload = xmemdup(d->payload, d->len + 1);
    x->payload[d->len] = 0;
    x->len = d->len;
    if (!x->easy) {
        free(x->payload);
        free(x);
        log_warn("libcurl: no easy handle; delivery postponed");
        return ALERT_START_LATER;
    }
    xfer_common(n, x);
    if (d->channel == ALERT_WEBHOOK && n->webhook_address_ok) {
        x->address_ok = n->webhook_address_ok;
        curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
        curl_easy_setopt(x->easy, CURLOPT_PROXY, ""); /* the check must see the receiver */
    }
    int rc = d->channel == ALERT_EMAIL ? setup_email(n, x, d) : setup_webhook(x, d);
    if (rc != 0 || curl_multi_add_handle(n->multi, x->easy) != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->list);
        free(x->payload);
        free(x->mail_from);
        free(x);
        log_warn("libcurl: cannot set up a delivery; postponed");
        return ALERT_START_LATER;
    }
    if (n->nxfers == n->capxfers) {
        n->capxfers = n->capxfers ? n->capxfers * 2 : 8;
        n->xfers = xrealloc(n->xfers, n->capxfers * sizeof(*n->xfers));
    }
    n->xfers[n->nxfers++] = x;
    return ALERT_START_OK;
}

enum alert_outcome alert_notify_classify(enum alert_channel ch, int curl_code, long response_code)
{
    if (ch == ALERT_EMAIL) {
        if (response_code >= 500 && response_code < 600)
            return ALERT_FAILED; /* permanent by RFC 5321 */
        if (curl_code == CURLE_OK)
            return ALERT_SENT;
        return ALERT_RETRY; /* 4xx, timeouts, refused or broken connections */
    }
    if (curl_code == CURLE_URL_MALFORMAT || curl_code == CURLE_UNSUPPORTED_PROTOCOL)
        return ALERT_FAILED; /* the org's url: no attempt will ever do better */
    /* a reply body too long to read to its end (discard_reply stops it):
     * its status line, read before it, still says what the receiver did */
    if (curl_code == CURLE_WRITE_ERROR && response_code >= 200)
        curl_code = CURLE_OK;
    if (curl_code != CURLE_OK || response_code == 0)
        return ALERT_RETRY;
    if (response_code >= 200 && response_code < 300)
        return ALERT_SENT;
    if (response_code >= 500 || response_code == 408 || response_code == 429)
        return ALERT_RETRY;
    return ALERT_FAILED; /* other 4xx; 1xx and 3xx (redirects are not followed) */
}

static void xfer_remove(struct alert_notify *n, struct xfer *x)
{
    for (size_t i = 0; i < n->nxfers; i++)
        if (n->xfers[i] == x) {
            n->xfers[i] = n->xfers[--n->nxfers];
            break;
        }
    xfer_free(n, x);
}

void alert_notify_poll(void *notify, alert_done_fn done, void *arg)
{
    struct alert_notify *n = notify;
    if (n->nxfers == 0)
        return;
    int running = 0;
    CURLMcode mc = curl_multi_perform(n->multi, &running);
    if (mc != CURLM_OK)
        log_warn("libcurl: %s", curl_multi_strerror(mc));
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(n->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x)
            continue;
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        int cc = (int)m->data.result;
        struct alert_result r = {.outcome = alert_notify_classify(x->channel, cc, code),
                                 .code = code};
        char detail[CURL_ERROR_SIZE + 128];
        if (cc == CURLE_COULDNT_CONNECT && *x->refused && !x->opened) {
            /* the org's url leads only where this alerter may not go (a name
             * with an accepted address too is judged as usual: a receiver
             * down there is a retry) */
            r.outcome = ALERT_FAILED;
            snprintf(detail, sizeof(detail),
                     "refused: %s is not a public address (--webhook-public-only)", x->refused);
        } else if (cc == CURLE_OK && r.outcome == ALERT_SENT)
            snprintf(detail, sizeof(detail), "accepted (%ld)", code);
        else if (cc == CURLE_OK)
            snprintf(detail, sizeof(detail), "%s %ld", x->channel == ALERT_EMAIL ? "SMTP" : "HTTP",
                     code);
        else
            snprintf(detail, sizeof(detail), "%s%s%s (reply %ld)",
                     curl_easy_strerror(m->data.result), *x->err ? ": " : "", x->err, code);
        r.detail = detail;
        uint64_t token = x->token;
        xfer_remove(n, x);
        done(arg, token, &r);
    }
}
