/* alert_message: email and webhook texts of a notification (see
 * alert_message.h). Every value that comes from settings was validated by
 * lib/settings.c (org and type ids, addresses without CR, LF or angle
 * brackets), so nothing here can break a header line. */
#include "alert_message.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

/* Splits ms + off_s into a civil date and time of day. */
static void civil(int64_t ms, long off_s, int64_t *y, unsigned *mo, unsigned *d, int *wday, int *hh,
                  int *mi, int *ss)
{
    int64_t s = floor_div(ms, 1000) + off_s;
    int64_t days = floor_div(s, 86400), rem = s - days * 86400;
    time_civil_from_days(days, y, mo, d);
    *wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    *hh = (int)(rem / 3600);
    *mi = (int)(rem / 60 % 60);
    *ss = (int)(rem % 60);
}

void alert_msg_date(int64_t ms, long off_s, char *buf, size_t len)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t y;
    unsigned mo, d;
    int w, hh, mi, ss;
    civil(ms, off_s, &y, &mo, &d, &w, &hh, &mi, &ss);
    long a = off_s < 0 ? -off_s : off_s;
    snprintf(buf, len, "%s, %02u %s %04lld %02d:%02d:%02d %c%02ld%02ld", wd[w], d, mn[mo - 1],
             (long long)y, hh, mi, ss, off_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

void alert_msg_local_time(int64_t ms, const char *tz, char *buf, size_t len)
{
    long off = 0;
    if (!tz || tz_offset_at(tz, ms, &off) != 0)
        tz = "UTC";
    int64_t y;
    unsigned mo, d;
    int w, hh, mi, ss;
    civil(ms, off, &y, &mo, &d, &w, &hh, &mi, &ss);
    long a = off < 0 ? -off : off;
    snprintf(buf, len, "%04lld-%02u-%02u %02d:%02d:%02d %c%02ld:%02ld (%s)", (long long)y, mo, d,
             hh, mi, ss, off < 0 ? '-' : '+', a / 3600, a / 60 % 60, tz);
}

char *alert_msg_address(const char *from)
{
    const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt)
        return xstrndup(lt + 1, (size_t)(gt - lt - 1));
    return xstrdup(from);
}

bool alert_msg_from_valid(const char *from)
{
    for (const char *c = from; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            return false;
    const char *lt = strchr(from, '<'), *gt = strrchr(from, '>');
    if (lt ? !gt || gt < lt || gt[1] || strchr(lt + 1, '<') : gt != NULL)
        return false;
    const char *a = lt ? lt + 1 : from, *end = lt ? gt : from + strlen(from);
    const char *at = memchr(a, '@', (size_t)(end - a));
    if (!at || at == a || at + 1 >= end)
        return false;
    for (const char *c = a; c < end; c++) /* one @, none of the specials */
        if ((*c == '@' && c != at) || strchr(" ()<>[]:;\\,\"", *c))
            return false;
    /* the display name goes out as it is: a quoted string, or words without
     * the characters that would make it other mailboxes or a group */
    size_t n = lt ? (size_t)(lt - from) : 0;
    while (n && from[n - 1] == ' ')
        n--;
    if (n >= 2 && from[0] == '"' && from[n - 1] == '"') {
        for (size_t i = 1; i + 1 < n; i++)
            if (from[i] == '"' || from[i] == '\\')
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (strchr("()<>[]:;@\\,\"", from[i]))
            return false;
    return true;
}

char *alert_msg_from_header(const char *from)
{
    if (strchr(from, '<'))
        return xstrdup(from);
    return xasprintf("licmon <%s>", from);
}

char *alert_msg_dashboard_url(const char *public_url, const char *org, const char *type)
{
    if (!public_url || !*public_url)
        return NULL;
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/')
        n--;
    return xasprintf("%.*s/?org=%s&type=%s", (int)n, public_url, org, type);
}

char *alert_msg_subject(const struct alert_event *ev)
{
    if (ev->kind == ALERT_THRESHOLD)
        return xasprintf("[licmon] %s: %s license usage reached %lld of %lld seats (threshold "
                         "%d%%)",
                         ev->org, ev->license_type, (long long)ev->in_use, (long long)ev->owned,
                         (int)ev->threshold_pct);
    if (ev->days_left > 1)
        return xasprintf("[licmon] %s: %s license expires in %lld days (%s)", ev->org,
                         ev->license_type, (long long)ev->days_left, ev->expires);
    if (ev->days_left == 1)
        return xasprintf("[licmon] %s: %s license expires tomorrow (%s)", ev->org, ev->license_type,
                         ev->expires);
    if (ev->days_left == 0)
        return xasprintf("[licmon] %s: %s license expires today (%s)", ev->org, ev->license_type,
                         ev->expires);
    return xasprintf("[licmon] %s: %s license expired on %s", ev->org, ev->license_type,
                     ev->expires);
}

static const char *event_tz(const struct alert_event *ev)
{
    return ev->settings && ev->settings->timezone && *ev->settings->timezone
               ? ev->settings->timezone
               : "UTC";
}

char *alert_msg_body(const struct alert_event *ev, const char *public_url)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        log_fatal("out of memory building a message");
    char when[ALERT_MSG_DATE_MAX + 80];
    alert_msg_local_time(ev->at_ms, event_tz(ev), when, sizeof(when));
    if (ev->kind == ALERT_THRESHOLD) {
        fprintf(f, "License usage of organization %s reached its threshold.\n\n", ev->org);
        fprintf(f, "License type:   %s\n", ev->license_type);
        fprintf(f, "Seats in use:   %lld of %lld owned\n", (long long)ev->in_use,
                (long long)ev->owned);
        fprintf(f, "Threshold:      %d%% = %lld seats\n", (int)ev->threshold_pct,
                (long long)ev->threshold_count);
        fprintf(f, "When:           %s\n\n", when);
        fprintf(f,
                "This message is sent once each time usage reaches the threshold: the next\n"
                "one comes after usage has dropped below %lld seats and reached %lld again.\n",
                (long long)ev->clear_level, (long long)ev->threshold_count);
    } else {
        if (ev->days_left > 0)
            fprintf(f, "The %s license of organization %s expires in %lld day%s, on %s.\n\n",
                    ev->license_type, ev->org, (long long)ev->days_left,
                    ev->days_left == 1 ? "" : "s", ev->expires);
        else if (ev->days_left == 0)
            fprintf(f, "The %s license of organization %s expires today, %s.\n\n", ev->license_type,
                    ev->org, ev->expires);
        else
            fprintf(f, "The %s license of organization %s expired on %s.\n\n", ev->license_type,
                    ev->org, ev->expires);
        fprintf(f, "License type:   %s\n", ev->license_type);
        fprintf(f, "Seats owned:    %lld\n", (long long)ev->owned);
        fprintf(f, "Expires:        %s (%s)\n", ev->expires, event_tz(ev));
        fprintf(f, "Checked:        %s\n", when);
    }
    char *url = alert_msg_dashboard_url(public_url, ev->org, ev->license_type);
    if (url)
        fprintf(f, "\nDashboard: %s\n", url);
    free(url);
    fprintf(f, "\n-- \nlicmon license monitoring. Notifications are set in the organization's\n"
               "settings (notify_enabled, notify_emails).\n");
    fclose(f);
    return out;
}

/* Appends text to the memstream with every LF turned into CRLF. */
static void put_crlf(FILE *f, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            fputc('\r', f);
        fputc(*p, f);
    }
}

char *alert_msg_email(const struct alert_event *ev, const struct alert_msg_head *h)
{
    long off = 0;
    if (tz_offset_at(event_tz(ev), h->date_ms, &off) != 0)
        off = 0;
    char date[ALERT_MSG_DATE_MAX];
    alert_msg_date(h->date_ms, off, date, sizeof(date));
    char *from = alert_msg_from_header(h->from), *subject = alert_msg_subject(ev),
         *body = alert_msg_body(ev, h->public_url);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        log_fatal("out of memory building a message");
    fprintf(f, "Date: %s\r\n", date);
    fprintf(f, "From: %s\r\n", from);
    fprintf(f, "To: <%s>\r\n", h->to);
    fprintf(f, "Subject: %s\r\n", subject);
    fprintf(f, "Message-ID: <%s>\r\n", h->message_id);
    fprintf(f, "MIME-Version: 1.0\r\n");
    fprintf(f, "Content-Type: text/plain; charset=UTF-8\r\n");
    fprintf(f, "Content-Transfer-Encoding: 8bit\r\n");
    fprintf(f, "Auto-Submitted: auto-generated\r\n");
    fprintf(f, "X-Licmon-Org: %s\r\n", ev->org);
    fprintf(f, "X-Licmon-License-Type: %s\r\n", ev->license_type);
    fprintf(f, "\r\n");
    put_crlf(f, body);
    fclose(f);
    free(from);
    free(subject);
    free(body);
    return out;
}

char *alert_msg_webhook_body(const struct alert_event *ev, const char *id, int64_t created_ms,
                             const char *public_url)
{
    char ts[40], at[40], when[ALERT_MSG_DATE_MAX + 80];
    time_format_rfc3339(created_ms, ts, sizeof(ts));
    time_format_rfc3339(ev->at_ms, at, sizeof(at));
    alert_msg_local_time(ev->at_ms, event_tz(ev), when, sizeof(when));
    json_t *data = json_object();
    json_object_set_new(data, "org", json_string(ev->org));
    json_object_set_new(data, "license_type", json_string(ev->license_type));
    json_object_set_new(data, "owned", json_integer(ev->owned));
    if (ev->kind == ALERT_THRESHOLD) {
        json_object_set_new(data, "in_use", json_integer(ev->in_use));
        json_object_set_new(data, "threshold_pct", json_integer(ev->threshold_pct));
        json_object_set_new(data, "threshold_count", json_integer(ev->threshold_count));
        json_object_set_new(data, "clear_level", json_integer(ev->clear_level));
        json_object_set_new(data, "at", json_string(at));
    } else {
        json_object_set_new(data, "expires", json_string(ev->expires));
        json_object_set_new(data, "days_left", json_integer(ev->days_left));
        json_object_set_new(data, "reminder_days", json_integer(ev->stage_days));
        json_object_set_new(data, "checked_at", json_string(at));
    }
    json_object_set_new(data, "local_time", json_string(when));
    json_object_set_new(data, "timezone", json_string(event_tz(ev)));
    char *url = alert_msg_dashboard_url(public_url, ev->org, ev->license_type);
    if (url)
        json_object_set_new(data, "dashboard_url", json_string(url));
    free(url);
    char *subject = alert_msg_subject(ev);
    json_object_set_new(data, "summary", json_string(subject));
    free(subject);
    json_t *root = json_object();
    json_object_set_new(root, "id", json_string(id));
    json_object_set_new(root, "type",
                        json_string(ev->kind == ALERT_THRESHOLD ? "license.threshold_reached"
                                                                : "license.expiry_reminder"));
    json_object_set_new(root, "timestamp", json_string(ts));
    json_object_set_new(root, "data", data);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        log_fatal("out of memory building a webhook body");
    char *out = xstrdup(text);
    free(text);
    return out;
}

size_t alert_msg_secret_key(const char *secret, uint8_t *key)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0)
        return 0;
    if (n > ALERT_MSG_SECRET_MAX)
        n = ALERT_MSG_SECRET_MAX;
    if (!strncmp(secret, "whsec_", 6) && n > 6 && (n - 6) % 4 == 0) {
        const char *b = secret + 6;
        size_t bl = n - 6;
        uint8_t tmp[ALERT_MSG_SECRET_MAX];
        int got = EVP_DecodeBlock(tmp, (const unsigned char *)b, (int)bl);
        if (got > 0) {
            /* EVP_DecodeBlock counts the padding as zero bytes */
            size_t pad = (b[bl - 1] == '=') + (bl > 1 && b[bl - 2] == '=');
            size_t kl = (size_t)got - pad;
            memcpy(key, tmp, kl);
            return kl;
        }
    }
    memcpy(key, secret, n);
    return n;
}

char *alert_msg_signature(const char *secret, const char *id, int64_t timestamp_s, const char *body,
                          size_t len)
{
    uint8_t key[ALERT_MSG_SECRET_MAX];
    size_t kl = alert_msg_secret_key(secret, key);
    if (kl == 0)
        return NULL;
    char prefix[200];
    int pl = snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)timestamp_s);
    if (pl < 0 || (size_t)pl >= sizeof(prefix))
        return NULL;
    size_t dl = (size_t)pl + len;
    uint8_t *data = xmalloc(dl);
    memcpy(data, prefix, (size_t)pl);
    memcpy(data + pl, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!HMAC(EVP_sha256(), key, (int)kl, data, dl, mac, &ml)) {
        free(data);
        return NULL;
    }
    free(data);
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)ml);
    return xasprintf("v1,%s", b64);
}
