/* ingest_validate: event checks (see ingest_validate.h). */
#include "ingest_validate.h"
#include "settings.h"

#include <stdio.h>
#include <string.h>

void ingest_batch_nul_fields(const uint8_t *buf, size_t len, size_t n, const char **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!len || !memchr(buf, 0, len)) /* the common case: no NUL byte anywhere */
        return;
    const ProtobufCFieldDescriptor *events = protobuf_c_message_descriptor_get_field_by_name(
        &licmon__v1__event_batch__descriptor, "events");
    const uint8_t *p = buf, *end = buf + len;
    struct pb_wire f;
    size_t k = 0;
    while (k < n && pb_wire_next(&p, end, &f) == 0)
        if (f.type == 2 && f.num == events->id)
            out[k++] = pb_string_with_nul(&licmon__v1__event__descriptor, f.data, f.len);
}

long ingest_batch_count_events(const uint8_t *buf, size_t len)
{
    const ProtobufCFieldDescriptor *events = protobuf_c_message_descriptor_get_field_by_name(
        &licmon__v1__event_batch__descriptor, "events");
    const uint8_t *p = buf, *end = buf + len;
    struct pb_wire f;
    long n = 0;
    while (p < end) {
        if (pb_wire_next(&p, end, &f) != 0)
            return -1;
        if (f.num == events->id)
            n++;
    }
    return n;
}

int ingest_valid_utf8(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

#define REJECT(...)                                                                                \
    do {                                                                                           \
        snprintf(buf, len, __VA_ARGS__);                                                           \
        return buf;                                                                                \
    } while (0)

static const char *check_type(const char *field, const char *v, char *buf, size_t len)
{
    if (!settings_valid_type(v))
        REJECT("%s: must match [a-z0-9_]{1,32}", field);
    if (!strcmp(v, "all"))
        REJECT("%s: 'all' is not a license type", field);
    return NULL;
}

const char *ingest_validate_ids(const Licmon__V1__Event *ev, char *buf, size_t len)
{
    size_t n = strlen(ev->event_id);
    if (n == 0)
        REJECT("event_id: missing");
    if (n > INGEST_EVENT_ID_MAX)
        REJECT("event_id: longer than %d bytes", INGEST_EVENT_ID_MAX);
    if (!ingest_valid_utf8(ev->event_id, n))
        REJECT("event_id: not valid UTF-8");
    if (!*ev->org)
        REJECT("org: missing");
    if (!settings_valid_org(ev->org))
        REJECT("org: must match [A-Za-z0-9._-]{1,64}");
    return NULL;
}

const char *ingest_validate_body(const Licmon__V1__Event *ev, int64_t now_ms, int64_t ahead_of_ms,
                                 int64_t retention_days, char *buf, size_t len)
{
    size_t n = strlen(ev->user);
    if (n == 0)
        REJECT("user: missing");
    if (n > INGEST_USER_MAX)
        REJECT("user: longer than %d bytes", INGEST_USER_MAX);
    if (!ingest_valid_utf8(ev->user, n))
        REJECT("user: not valid UTF-8");
    switch (ev->kind) {
    case LICMON__V1__EVENT_KIND__LOGIN:
    case LICMON__V1__EVENT_KIND__DENIED:
        if (!*ev->license_type)
            REJECT("license_type: missing (required for %s)",
                   ev->kind == LICMON__V1__EVENT_KIND__LOGIN ? "login" : "denied");
        break;
    case LICMON__V1__EVENT_KIND__ACTIVITY:
    case LICMON__V1__EVENT_KIND__LOGOUT:
        break;
    case LICMON__V1__EVENT_KIND__KIND_UNSPECIFIED:
        REJECT("kind: missing");
    default:
        REJECT("kind: unknown value %d", (int)ev->kind);
    }
    const char *r;
    if (*ev->license_type && (r = check_type("license_type", ev->license_type, buf, len)))
        return r;
    if (*ev->requested_type) {
        if (ev->kind != LICMON__V1__EVENT_KIND__LOGIN)
            REJECT("requested_type: only a login can be downgraded");
        if ((r = check_type("requested_type", ev->requested_type, buf, len)))
            return r;
        if (!strcmp(ev->requested_type, ev->license_type))
            REJECT("requested_type: same as license_type, so not a downgrade");
    }
    if (ev->ts_ms == 0)
        REJECT("ts: missing (or 0, which is 1970)");
    if (ev->ts_ms < now_ms - retention_days * 86400000LL) {
        /* 10^9 .. 10^11: as seconds 2001 on, as milliseconds 1970-01-12 to
         * 1973-03-03 */
        if (ev->ts_ms >= 1000000000LL && ev->ts_ms < 100000000000LL)
            REJECT("ts: %lld is before 1974 as milliseconds; it looks like seconds (ts is "
                   "milliseconds since the epoch)",
                   (long long)ev->ts_ms);
        REJECT("ts: older than the %lld-day retention", (long long)retention_days);
    }
    if (ev->ts_ms > ahead_of_ms + INGEST_FUTURE_MAX_MS)
        REJECT("ts: more than one day ahead of the clock");
    return NULL;
}

const char *ingest_validate_event(const Licmon__V1__Event *ev, int64_t now_ms, int64_t ahead_of_ms,
                                  int64_t retention_days, char *buf, size_t len)
{
    const char *r = ingest_validate_ids(ev, buf, len);
    return r ? r : ingest_validate_body(ev, now_ms, ahead_of_ms, retention_days, buf, len);
}
