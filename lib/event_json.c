/* event_json: Event <-> JSON with jansson (see event_json.h). */
#include "event_json.h"
#include "timeutil.h"
#include "xmem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_json_strings[] = {"event_id", "org", "user", "license_type",
                                                 "requested_type"};

void event_json_clear(Licmon__V1__Event *ev)
{
    char **fields[] = {&ev->event_id, &ev->org, &ev->user, &ev->license_type, &ev->requested_type};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i] && *fields[i] != protobuf_c_empty_string)
            free(*fields[i]);
        *fields[i] = (char *)protobuf_c_empty_string;
    }
}

int event_json_parse(const char *text, size_t len, Licmon__V1__Event *ev, char *err, size_t errlen)
{
    licmon__v1__event__init(ev);
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!o) {
        snprintf(err, errlen, "not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "an event must be a JSON object");
        goto out;
    }
    char **fields[] = {&ev->event_id, &ev->org, &ev->user, &ev->license_type, &ev->requested_type};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(o, event_json_strings[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: must be a string", event_json_strings[i]);
            goto out;
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            snprintf(err, errlen, "%s: contains a NUL character", event_json_strings[i]);
            goto out;
        }
        *fields[i] = xstrdup(json_string_value(v));
    }
    json_t *ts = json_object_get(o, "ts");
    if (json_is_integer(ts)) {
        ev->ts_ms = json_integer_value(ts);
    } else if (json_is_string(ts)) {
        if (time_parse_rfc3339(json_string_value(ts), &ev->ts_ms)) {
            snprintf(err, errlen, "ts: not an RFC 3339 time with an offset");
            goto out;
        }
    } else if (ts && !json_is_null(ts)) {
        snprintf(err, errlen, "ts: must be milliseconds since the epoch or an RFC 3339 string");
        goto out;
    }
    json_t *kind = json_object_get(o, "kind");
    if (kind && !json_is_null(kind)) {
        if (!json_is_string(kind) || pb_kind_parse(json_string_value(kind), &ev->kind)) {
            snprintf(err, errlen, "kind: must be login, activity, logout or denied");
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(o);
    if (rc)
        event_json_clear(ev);
    return rc;
}

char *event_json_format(const Licmon__V1__Event *ev)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:s}", "event_id", ev->event_id, "org", ev->org, "user",
                  ev->user, "ts", (json_int_t)ev->ts_ms, "kind", pb_kind_name(ev->kind));
    if (*ev->license_type)
        json_object_set_new(o, "license_type", json_string(ev->license_type));
    if (*ev->requested_type)
        json_object_set_new(o, "requested_type", json_string(ev->requested_type));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        abort();
    return s;
}
