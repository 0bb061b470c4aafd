/* alert_message: the text of a notification: the RFC 5322 email (headers
 * and plain-text body) and the webhook's JSON body with its Standard
 * Webhooks signature. Pure (no clock, no I/O): the caller passes the
 * instants, ids and addresses, so one outbox entry always renders the same
 * bytes. Webhook secrets: "whsec_<base64>" is the base64-decoded key (the
 * Standard Webhooks form); anything else is used as raw bytes. */
#ifndef ALERT_MESSAGE_H
#define ALERT_MESSAGE_H
#include "alert_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALERT_MSG_DATE_MAX 48
#define ALERT_MSG_SECRET_MAX 256

struct alert_msg_head {
    const char *from;       /* header form: "licmon <a@b>" or a bare address */
    const char *to;         /* bare address */
    const char *message_id; /* without the angle brackets */
    int64_t date_ms;        /* for the Date header */
    const char *public_url; /* dashboard base URL; empty: no link */
};

/* RFC 5322 date "Thu, 27 Nov 2025 18:00:05 +0100" of ms at UTC offset off_s. */
void alert_msg_date(int64_t ms, long off_s, char *buf, size_t len);
/* "2025-11-27 18:00:05 +01:00 (Europe/Berlin)": ms in zone tz. */
void alert_msg_local_time(int64_t ms, const char *tz, char *buf, size_t len);
/* The bare address of a From value ("Name <a@b>" -> "a@b"); caller frees. */
char *alert_msg_address(const char *from);
/* The header form of a From value: a bare address gets the display name
 * "licmon"; caller frees. */
char *alert_msg_from_header(const char *from);
/* Whether --smtp-from is something the From header and the envelope can
 * carry as it is: "addr@host" or "Name <addr@host>", printable ASCII (a
 * name is not RFC 2047-encoded; a CR or LF would start another header). */
bool alert_msg_from_valid(const char *from);
/* The dashboard link for an org and type, or NULL when public_url is empty;
 * caller frees. */
char *alert_msg_dashboard_url(const char *public_url, const char *org, const char *type);

char *alert_msg_subject(const struct alert_event *ev);
/* The plain-text body, LF line ends. */
char *alert_msg_body(const struct alert_event *ev, const char *public_url);
/* The whole message for one recipient, CRLF line ends, ready for SMTP DATA. */
char *alert_msg_email(const struct alert_event *ev, const struct alert_msg_head *h);
/* The webhook's JSON body; id is also the webhook-id header. */
char *alert_msg_webhook_body(const struct alert_event *ev, const char *id, int64_t created_ms,
                             const char *public_url);

/* The HMAC key of a webhook secret into key (at least ALERT_MSG_SECRET_MAX
 * bytes); returns its length (0: no secret, no signature). */
size_t alert_msg_secret_key(const char *secret, uint8_t *key);
/* "v1,<base64 HMAC-SHA256 of id.timestamp.body>", or NULL when the secret
 * is empty; caller frees. */
char *alert_msg_signature(const char *secret, const char *id, int64_t timestamp_s, const char *body,
                          size_t len);

#endif
