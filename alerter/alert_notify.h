/* alert_notify: the only module that calls libcurl. It sends one delivery
 * (an email over SMTP or SMTPS, STARTTLS when offered, or a webhook POST)
 * per curl easy handle on one curl multi handle, driven without blocking
 * from the service loop, and says how each ended: accepted, worth retrying
 * (SMTP 4xx, HTTP 5xx/408/429, timeouts, refused or broken connections) or
 * failed for good (SMTP 5xx, other HTTP 4xx, redirects, and a webhook
 * whose every address the config's webhook_address_ok refused). */
#ifndef ALERT_NOTIFY_H
#define ALERT_NOTIFY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum alert_channel { ALERT_EMAIL = 1, ALERT_WEBHOOK = 2 };

/* One attempt to deliver one outbox entry; the notifier copies what it needs. */
struct alert_delivery {
    enum alert_channel channel;
    const char *id;      /* the outbox entry's id (webhook-id header) */
    const char *to;      /* email: the recipient address; webhook: the URL */
    const char *payload; /* email: the whole message (CRLF); webhook: JSON body */
    size_t len;
    const char *signature; /* webhook: "v1,..." or NULL for none */
    int64_t timestamp_s;   /* webhook: webhook-timestamp */
};

enum alert_outcome { ALERT_SENT = 0, ALERT_RETRY = 1, ALERT_FAILED = 2 };

struct alert_result {
    enum alert_outcome outcome;
    long code;          /* SMTP or HTTP status of the last reply, 0 when none */
    const char *detail; /* a short reason for the log and the outbox record */
};

typedef void (*alert_done_fn)(void *arg, uint64_t token, const struct alert_result *r);

/* Start results. */
#define ALERT_START_OK 0
#define ALERT_START_LATER 1 /* cannot send this now (not configured, no handle): try later */

struct alert_notify_config {
    const char *smtp_url; /* smtp://host:port or smtps://host:port; empty: no email */
    const char *smtp_from;
    const char *smtp_user; /* empty: no login */
    const char *smtp_password;
    int64_t timeout_ms;         /* whole transfer */
    int64_t connect_timeout_ms; /* connection set-up */
    /* NULL: a webhook connects to any address; else only to those it
     * accepts (after DNS; --webhook-public-only: alert_notify_address_public) */
    bool (*webhook_address_ok)(const struct sockaddr *sa);
};

struct alert_notify;

/* The config strings are copied. */
struct alert_notify *alert_notify_new(const struct alert_notify_config *cfg);
/* Aborts the transfers still running (their entries stay pending). */
void alert_notify_free(struct alert_notify **n);

/* Starts a delivery; token comes back in the done callback of poll.
 * Returns ALERT_START_OK or ALERT_START_LATER (reason logged). */
int alert_notify_start(void *notify, uint64_t token, const struct alert_delivery *d);
/* Advances every transfer without waiting; calls done for each that ended. */
void alert_notify_poll(void *notify, alert_done_fn done, void *arg);
size_t alert_notify_active(const struct alert_notify *n);

/* Is this an address of the public internet? Not loopback, private
 * (RFC 1918, fc00::/7), shared (100.64/10), link-local, multicast,
 * unspecified, reserved, benchmarking or documentation ranges, nor the
 * IETF's 2001::/23 (Teredo among them); an IPv4 address inside IPv6
 * (mapped, NAT64 64:ff9b::/96, 6to4) is judged as IPv4. Pure. */
bool alert_notify_address_public(const struct sockaddr *sa);

/* How a transfer that ended with curl result curl_code and last reply
 * response_code counts. Pure. */
enum alert_outcome alert_notify_classify(enum alert_channel ch, int curl_code, long response_code);

#endif
