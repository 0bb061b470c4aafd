/* settings: defaults, validation and JSON of an org's settings (see
 * settings.h). Validation builds a complete new message before anything is
 * replaced, so a rejected change leaves the settings in force untouched. */
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int settings_valid_org(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return 0;
    return 1;
}

int settings_valid_type(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

int settings_valid_email(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > 254 || !at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return 0;
    if (at[1] == '.' || s[n - 1] == '.')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '<' || *s == '>' || *s == ',' || *s == ';' ||
            *s == '"' || *s == '\\' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

Licmon__V1__OrgSettings *settings_default(const char *org)
{
    Licmon__V1__OrgSettings *s = xmalloc(sizeof(*s));
    licmon__v1__org_settings__init(s);
    s->org = xstrdup(org);
    s->timezone = xstrdup("UTC");
    s->user_inactivity_timeout_s = SETTINGS_DEFAULT_TIMEOUT_S;
    s->license_inactivity_timeout_s = SETTINGS_DEFAULT_TIMEOUT_S;
    s->allowed_lateness_s = 5;
    s->minor_margin_pct = 10;
    s->clear_margin_pct = 5;
    s->notify_enabled = true;
    s->retention_days_minutes = 400;
    s->retention_days_days = 1830;
    return s;
}

Licmon__V1__OrgSettings *settings_copy(const Licmon__V1__OrgSettings *s)
{
    size_t len;
    uint8_t *buf = pb_pack(&s->base, &len);
    Licmon__V1__OrgSettings *c = licmon__v1__org_settings__unpack(NULL, len, buf);
    free(buf);
    if (!c)
        abort(); /* we packed it ourselves */
    return c;
}

void settings_free(Licmon__V1__OrgSettings **s)
{
    if (*s)
        licmon__v1__org_settings__free_unpacked(*s, NULL);
    *s = NULL;
}

const Licmon__V1__License *settings_license(const Licmon__V1__OrgSettings *s, const char *type)
{
    for (size_t i = 0; i < s->n_licenses; i++)
        if (!strcmp(s->licenses[i]->type, type))
            return s->licenses[i];
    return NULL;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static int get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        FAIL("%s: must be an integer", key);
    int64_t x = json_integer_value(v);
    if (x < lo || x > hi)
        FAIL("%s: %lld is outside %lld..%lld", key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int get_bool(const json_t *obj, const char *key, protobuf_c_boolean *out, char *err,
                    size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        FAIL("%s: must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static void replace_str(char **dst, const char *v)
{
    if (*dst && *dst != protobuf_c_empty_string)
        free(*dst);
    *dst = xstrdup(v);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Replaces a list of strings from a JSON array, each checked by valid(). */
static int get_strv(const json_t *obj, const char *key, int (*valid)(const char *), size_t maxlen,
                    char ***out, size_t *nout, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(obj, key);
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        FAIL("%s: must be a list", key);
    size_t n = json_array_size(arr);
    if (n > SETTINGS_MAX_LIST)
        FAIL("%s: more than %d entries", key, SETTINGS_MAX_LIST);
    char **v = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *s = json_string_value(e);
        if (!s || strlen(s) < 1 || strlen(s) > maxlen || (valid && !valid(s))) {
            free_strv(v, i);
            FAIL("%s[%zu]: %s", key, i, s ? "is not valid" : "must be a string");
        }
        /* a repeated address would get every notification twice */
        for (size_t k = 0; k < i; k++)
            if (!strcasecmp(v[k], s)) {
                free_strv(v, i);
                FAIL("%s[%zu]: repeats %s[%zu] ('%s')", key, i, key, k, s);
            }
        v[i] = xstrdup(s);
    }
    free_strv(*out, *nout);
    *out = v;
    *nout = n;
    return 0;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The authority of an http(s) url (after "scheme://", up to / ? # or the
 * end; *len its length), or NULL for another scheme. */
static const char *url_authority(const char *s, size_t *len)
{
    const char *p = !strncmp(s, "https://", 8) ? s + 8 : !strncmp(s, "http://", 7) ? s + 7 : NULL;
    if (p)
        *len = strcspn(p, "/?#");
    return p;
}

/* Does an http(s) url hold user info (user:password@host)? Refused: every
 * token of the org reads a webhook's url (GET /settings) and the alerter
 * logs it, while the secret, which signs every delivery, is masked. */
static bool url_has_userinfo(const char *s)
{
    size_t auth;
    const char *p = url_authority(s, &auth);
    return p && memchr(p, '@', auth) != NULL;
}

/* http(s)://host[:port][/...]: a host, and a port (if any) in 1-65535 -
 * what libcurl would refuse for good at every delivery attempt. */
static int valid_url(const char *s)
{
    size_t auth;
    const char *p = url_authority(s, &auth);
    /* user info (an @ before the host) is refused, by url_has_userinfo
     * first with its own reason, and here too: it is no host */
    if (!p || !printable(s) || strchr(s, ' ') || memchr(p, '@', auth))
        return 0;
    const char *host_end = p; /* an IPv6 literal: [hex and colons], then : or the end */
    if (p[0] == '[') {
        const char *close = memchr(p, ']', auth);
        if (!close || close == p + 1 ||
            strspn(p + 1, "0123456789abcdefABCDEF:.") < (size_t)(close - p - 1))
            return 0;
        host_end = close + 1;
        if (host_end < p + auth && *host_end != ':')
            return 0;
    }
    const char *colon = memchr(host_end, ':', auth - (size_t)(host_end - p)); /* the port */
    size_t hostlen = colon ? (size_t)(colon - p) : auth;
    if (hostlen == 0)
        return 0;
    if (colon) {
        size_t digits = auth - hostlen - 1;
        if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") < digits)
            return 0;
        long port = strtol(colon + 1, NULL, 10);
        if (port < 1 || port > 65535)
            return 0;
    }
    return 1;
}

/* A zone file of the system zoneinfo that is no zone name people (and
 * browsers: the dashboard's Intl) know: the posix/ and right/ copies, the
 * host's localtime, posixrules and Factory. */
static bool tz_is_zone_name(const char *name)
{
    static const char *const not_zones[] = {"localtime", "posixrules", "Factory"};
    if (!strncmp(name, "posix/", 6) || !strncmp(name, "right/", 6))
        return false;
    for (size_t i = 0; i < sizeof(not_zones) / sizeof(not_zones[0]); i++)
        if (!strcmp(name, not_zones[i]))
            return false;
    return true;
}

/* The first key of obj not in known (NULL-terminated), or NULL: a misspelt
 * field is an error, never silently a default. */
static const char *unknown_key(const json_t *obj, const char *const *known)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        int found = 0;
        for (int i = 0; known[i] && !found; i++)
            found = !strcmp(known[i], key);
        if (!found)
            return key;
    }
    return NULL;
}

static const char *const license_keys[] = {"type",    "model",         "owned",
                                           "expires", "threshold_pct", NULL};
static const char *const webhook_keys[] = {"url", "secret", NULL};

static void free_licenses(Licmon__V1__License **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        licmon__v1__license__free_unpacked(l[i], NULL);
    free(l);
}

static int parse_license(const json_t *e, size_t i, Licmon__V1__License *l, char *err,
                         size_t errlen)
{
    if (!json_is_object(e))
        FAIL("licenses[%zu]: must be an object", i);
    const char *unknown = unknown_key(e, license_keys);
    if (unknown)
        FAIL("licenses[%zu].%.64s: unknown field (a license has %s)", i, unknown,
             "type, model, owned, expires, threshold_pct");
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type || !settings_valid_type(type))
        FAIL("licenses[%zu].type: must match [a-z0-9_]{1,32}", i);
    if (!strcmp(type, "all"))
        FAIL("licenses[%zu].type: 'all' is reserved for every type together", i);
    l->type = xstrdup(type);
    const json_t *model = json_object_get(e, "model");
    if (model) {
        const char *m = json_string_value(model);
        if (m && !strcmp(m, "floating"))
            l->model = LICMON__V1__LICENSE_MODEL__FLOATING;
        else if (m && !strcmp(m, "named"))
            l->model = LICMON__V1__LICENSE_MODEL__NAMED;
        else
            FAIL("licenses[%zu].model: must be \"floating\" or \"named\"", i);
    }
    int64_t owned = 0, pct = SETTINGS_DEFAULT_THRESHOLD_PCT;
    const json_t *o = json_object_get(e, "owned");
    if (!o)
        FAIL("licenses[%zu].owned: missing (the number of seats owned)", i);
    if (!json_is_integer(o) || json_integer_value(o) < 0 || json_integer_value(o) > 100000000)
        FAIL("licenses[%zu].owned: must be a whole number of seats, 0 or more", i);
    owned = json_integer_value(o);
    const json_t *p = json_object_get(e, "threshold_pct");
    if (p && (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 100))
        FAIL("licenses[%zu].threshold_pct: must be an integer from 1 to 100", i);
    pct = p ? json_integer_value(p) : SETTINGS_DEFAULT_THRESHOLD_PCT;
    l->owned = owned;
    l->threshold_pct = (int32_t)pct;
    const json_t *ex = json_object_get(e, "expires");
    if (ex && !json_is_null(ex)) {
        int64_t days;
        const char *d = json_string_value(ex);
        if (!d || (*d && time_parse_date(d, &days)))
            FAIL("licenses[%zu].expires: must be a date YYYY-MM-DD", i);
        l->expires = xstrdup(d);
    }
    return 0;
}

static int get_licenses(const json_t *obj, Licmon__V1__OrgSettings *s, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(obj, "licenses");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        FAIL("licenses: must be a list");
    size_t n = json_array_size(arr);
    if (n > SETTINGS_MAX_LICENSES)
        FAIL("licenses: more than %d types", SETTINGS_MAX_LICENSES);
    Licmon__V1__License **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = xmalloc(sizeof(*v[i]));
        licmon__v1__license__init(v[i]);
        if (parse_license(json_array_get(arr, i), i, v[i], err, errlen) < 0) {
            free_licenses(v, i + 1);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v[j]->type, v[i]->type)) {
                snprintf(err, errlen, "licenses[%zu].type: '%s' is listed twice", i, v[i]->type);
                free_licenses(v, i + 1);
                return -1;
            }
    }
    free_licenses(s->licenses, s->n_licenses);
    s->licenses = v;
    s->n_licenses = n;
    return 0;
}

static const char no_stored_secret[] =
    ".secret: " SETTINGS_SECRET_MASK " keeps the secret stored for this url, and there is "
    "none: give the secret";

/* whether url is that of one of the first n webhooks (each would get every
 * notification twice) */
static bool repeated_url(Licmon__V1__Webhook *const *v, size_t n, const char *url)
{
    for (size_t j = 0; j < n; j++)
        if (!strcmp(v[j]->url, url))
            return true;
    return false;
}

static int get_webhooks(const json_t *obj, Licmon__V1__OrgSettings *s, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(obj, "webhooks");
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > 16)
        FAIL("webhooks: must be a list of at most 16");
    size_t n = json_array_size(arr);
    Licmon__V1__Webhook **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *unknown = json_is_object(e) ? unknown_key(e, webhook_keys) : NULL;
        if (unknown) {
            for (size_t j = 0; j < i; j++)
                licmon__v1__webhook__free_unpacked(v[j], NULL);
            free(v);
            FAIL("webhooks[%zu].%.64s: unknown field (a webhook has url, secret)", i, unknown);
        }
        const json_t *jsecret = json_object_get(e, "secret");
        const char *url = json_string_value(json_object_get(e, "url"));
        const char *secret = json_string_value(jsecret);
        /* GET shows a secret masked; sending the mask back keeps the stored
         * one, which must exist (not so for a saved copy put on a new stack) */
        const char *keep = secret ? secret : "";
        bool masked = url && secret && !strcmp(secret, SETTINGS_SECRET_MASK);
        for (size_t j = 0; masked && j < s->n_webhooks; j++)
            if (!strcmp(s->webhooks[j]->url, url) && *s->webhooks[j]->secret)
                keep = s->webhooks[j]->secret;
        const char *problem =
            !json_is_object(e)   ? ": not an object"
            : !url               ? ".url: missing or not a string"
            : strlen(url) > 2048 ? ".url: longer than 2048 bytes"
            : url_has_userinfo(url)
                ? ".url: holds a user name or password (user:password@host), which every token of "
                  "the org could read and the alerter would log; the webhook's secret signs "
                  "every delivery instead"
            : !valid_url(url) ? ".url: not http(s)://host[:port][/path] (port 1-65535)"
            : jsecret && !json_is_null(jsecret) && !secret ? ".secret: not a string"
            : secret && strlen(secret) > 256               ? ".secret: longer than 256 bytes"
            : secret && !printable(secret)                 ? ".secret: not printable text"
            : masked && keep == secret                     ? no_stored_secret
            : repeated_url(v, i, url)                      ? ".url: repeats an earlier webhook's"
                                                           : NULL;
        if (problem) {
            for (size_t j = 0; j < i; j++)
                licmon__v1__webhook__free_unpacked(v[j], NULL);
            free(v);
            FAIL("webhooks[%zu]%s", i, problem);
        }
        v[i] = xmalloc(sizeof(*v[i]));
        licmon__v1__webhook__init(v[i]);
        v[i]->url = xstrdup(url);
        v[i]->secret = xstrdup(keep);
    }
    for (size_t j = 0; j < s->n_webhooks; j++)
        licmon__v1__webhook__free_unpacked(s->webhooks[j], NULL);
    free(s->webhooks);
    s->webhooks = v;
    s->n_webhooks = n;
    return 0;
}

static const char *const settings_keys[] = {"org",
                                            "timezone",
                                            "user_inactivity_timeout_s",
                                            "license_inactivity_timeout_s",
                                            "inactivity_logout_releases_license",
                                            "allowed_lateness_s",
                                            "minor_margin_pct",
                                            "clear_margin_pct",
                                            "notify_enabled",
                                            "notify_emails",
                                            "webhooks",
                                            "licenses",
                                            "integrations",
                                            "retention_days_minutes",
                                            "retention_days_days",
                                            NULL};

static int merge(Licmon__V1__OrgSettings *s, const json_t *obj, char *err, size_t errlen)
{
    if (!json_is_object(obj))
        FAIL("settings: must be a JSON object");
    const char *unknown = unknown_key(obj, settings_keys);
    if (unknown)
        FAIL("%.64s: unknown setting", unknown);
    const json_t *org = json_object_get(obj, "org");
    if (org && (!json_is_string(org) || strcmp(json_string_value(org), s->org)))
        FAIL("org: cannot be changed");
    const json_t *tz = json_object_get(obj, "timezone");
    if (tz) {
        if (!json_is_string(tz) || !tz_valid(json_string_value(tz)) ||
            !tz_is_zone_name(json_string_value(tz)))
            FAIL("timezone: must be an IANA time zone name such as Europe/Berlin");
        replace_str(&s->timezone, json_string_value(tz));
    }
    int64_t v;
    v = s->user_inactivity_timeout_s;
    if (get_int(obj, "user_inactivity_timeout_s", 60, 86400, &v, err, errlen))
        return -1;
    s->user_inactivity_timeout_s = v;
    v = s->license_inactivity_timeout_s;
    if (get_int(obj, "license_inactivity_timeout_s", 60, 7 * 86400, &v, err, errlen))
        return -1;
    s->license_inactivity_timeout_s = v;
    v = s->allowed_lateness_s;
    if (get_int(obj, "allowed_lateness_s", 0, 3600, &v, err, errlen))
        return -1;
    s->allowed_lateness_s = v;
    v = s->minor_margin_pct;
    if (get_int(obj, "minor_margin_pct", 0, 100, &v, err, errlen))
        return -1;
    s->minor_margin_pct = (int32_t)v;
    v = s->clear_margin_pct;
    if (get_int(obj, "clear_margin_pct", 0, 100, &v, err, errlen))
        return -1;
    s->clear_margin_pct = (int32_t)v;
    v = s->retention_days_minutes;
    if (get_int(obj, "retention_days_minutes", 400, 3660, &v, err, errlen))
        return -1;
    s->retention_days_minutes = v;
    v = s->retention_days_days;
    if (get_int(obj, "retention_days_days", 1830, 36600, &v, err, errlen))
        return -1;
    s->retention_days_days = v;
    if (get_bool(obj, "inactivity_logout_releases_license", &s->inactivity_logout_releases_license,
                 err, errlen) ||
        get_bool(obj, "notify_enabled", &s->notify_enabled, err, errlen))
        return -1;
    if (get_strv(obj, "notify_emails", settings_valid_email, 254, &s->notify_emails,
                 &s->n_notify_emails, err, errlen) ||
        get_strv(obj, "integrations", printable, 64, &s->integrations, &s->n_integrations, err,
                 errlen))
        return -1;
    if (get_licenses(obj, s, err, errlen) || get_webhooks(obj, s, err, errlen))
        return -1;
    return 0;
}

Licmon__V1__OrgSettings *settings_merge_json(const Licmon__V1__OrgSettings *base, const json_t *obj,
                                             char *err, size_t errlen)
{
    Licmon__V1__OrgSettings *s = settings_copy(base);
    if (merge(s, obj, err, errlen) != 0) {
        settings_free(&s);
        return NULL;
    }
    return s;
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *settings_to_json(const Licmon__V1__OrgSettings *s)
{
    json_t *licenses = json_array(), *hooks = json_array();
    for (size_t i = 0; i < s->n_licenses; i++) {
        const Licmon__V1__License *l = s->licenses[i];
        json_array_append_new(
            licenses, json_pack("{s:s, s:s, s:I, s:o, s:i}", "type", l->type, "model",
                                pb_model_name(l->model), "owned", (json_int_t)l->owned, "expires",
                                *l->expires ? json_string(l->expires) : json_null(),
                                "threshold_pct", (int)l->threshold_pct));
    }
    for (size_t i = 0; i < s->n_webhooks; i++)
        json_array_append_new(hooks,
                              json_pack("{s:s, s:s}", "url", s->webhooks[i]->url, "secret",
                                        *s->webhooks[i]->secret ? SETTINGS_SECRET_MASK : ""));
    return json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:i, s:i, s:b, s:o, s:o, s:o, s:o, s:I, s:I}",
                     "org", s->org, "timezone", s->timezone, "user_inactivity_timeout_s",
                     (json_int_t)s->user_inactivity_timeout_s, "license_inactivity_timeout_s",
                     (json_int_t)s->license_inactivity_timeout_s,
                     "inactivity_logout_releases_license", s->inactivity_logout_releases_license,
                     "allowed_lateness_s", (json_int_t)s->allowed_lateness_s, "minor_margin_pct",
                     (int)s->minor_margin_pct, "clear_margin_pct", (int)s->clear_margin_pct,
                     "notify_enabled", s->notify_enabled, "notify_emails",
                     strv_json(s->notify_emails, s->n_notify_emails), "webhooks", hooks, "licenses",
                     licenses, "integrations", strv_json(s->integrations, s->n_integrations),
                     "retention_days_minutes", (json_int_t)s->retention_days_minutes,
                     "retention_days_days", (json_int_t)s->retention_days_days);
}
