/* exp_view: JSON views of query answers (see exp_view.h). */
#include "exp_view.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>

#include <string.h>

int exp_view_days_left(const char *expires, const char *tz, int64_t now_ms, int64_t *days)
{
    int64_t exp_day;
    if (!expires || !*expires || time_parse_date(expires, &exp_day) != 0)
        return -1;
    *days = exp_day - tz_local_day(tz, now_ms);
    return 0;
}

const char *exp_view_expiration_state(bool has_expiry, int64_t days_left)
{
    if (!has_expiry)
        return "non_applicable";
    if (days_left <= EXP_VIEW_MAJOR_DAYS)
        return "major";
    if (days_left <= EXP_VIEW_MINOR_DAYS)
        return "minor";
    return "ok";
}

const char *exp_view_timezone(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s)
{
    if (qr && qr->timezone && *qr->timezone)
        return qr->timezone;
    if (s && s->timezone && *s->timezone)
        return s->timezone;
    return "UTC";
}

/* A JSON string of untrusted text; bytes that are not valid UTF-8 become '?'
 * so one bad byte cannot drop a whole row. */
static json_t *view_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = xstrdup(s);
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20)
            *c = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static int64_t view_in_use(const Licmon__V1__QueryReply *qr, const char *type)
{
    for (size_t i = 0; qr && i < qr->n_licenses; i++) {
        const Licmon__V1__LicenseState *ls = qr->licenses[i];
        if (ls && ls->license && ls->license->type && !strcmp(ls->license->type, type))
            return ls->in_use;
    }
    return 0;
}

static json_t *view_license_row(const Licmon__V1__License *l, int64_t in_use, const char *tz,
                                int64_t now_ms)
{
    int64_t days = 0;
    bool has_expiry = exp_view_days_left(l->expires, tz, now_ms, &days) == 0;
    int64_t free_seats = l->owned - in_use;
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:s, s:I, s:I, s:i}", "type", l->type, "model",
                     pb_model_name(l->model), "owned", (json_int_t)l->owned, "expires",
                     has_expiry ? json_string(l->expires) : json_null(), "days_left",
                     has_expiry ? json_integer(days) : json_null(), "expiration_state",
                     exp_view_expiration_state(has_expiry, days), "in_use", (json_int_t)in_use,
                     "free", (json_int_t)(free_seats > 0 ? free_seats : 0), "threshold_pct",
                     (int)l->threshold_pct);
}

static json_t *view_strv(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, view_text(v[i]));
    return a;
}

json_t *exp_view_licenses(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s,
                          int64_t now_ms)
{
    const char *tz = exp_view_timezone(qr, s);
    json_t *rows = json_array();
    for (size_t i = 0; i < s->n_licenses; i++) {
        const Licmon__V1__License *l = s->licenses[i];
        if (strcmp(l->type, "all"))
            json_array_append_new(rows, view_license_row(l, view_in_use(qr, l->type), tz, now_ms));
    }
    for (size_t i = 0; qr && i < qr->n_licenses; i++) {
        const Licmon__V1__LicenseState *ls = qr->licenses[i];
        if (!ls || !ls->license || !ls->license->type || !settings_valid_type(ls->license->type) ||
            !strcmp(ls->license->type, "all") || settings_license(s, ls->license->type))
            continue;
        json_array_append_new(rows, view_license_row(ls->license, ls->in_use, tz, now_ms));
    }
    json_t *integrations = qr && qr->n_integrations
                               ? view_strv(qr->integrations, qr->n_integrations)
                               : view_strv(s->integrations, s->n_integrations);
    return json_pack("{s:s, s:o, s:I, s:o}", "timezone", tz, "licenses", rows, "in_use_all",
                     (json_int_t)(qr ? qr->in_use_all : 0), "integrations", integrations);
}

json_t *exp_view_current(const Licmon__V1__QueryReply *qr, const Licmon__V1__OrgSettings *s,
                         int64_t now_ms)
{
    json_t *rows = json_array();
    for (size_t i = 0; qr && i < qr->n_current; i++) {
        const Licmon__V1__CurrentSession *c = qr->current[i];
        if (!c)
            continue;
        char login[40], last[40];
        time_format_rfc3339(c->login_ms, login, sizeof(login));
        time_format_rfc3339(c->last_activity_ms, last, sizeof(last));
        int64_t len_s = now_ms > c->login_ms ? (now_ms - c->login_ms) / 1000 : 0;
        json_array_append_new(
            rows, json_pack("{s:o, s:o, s:s, s:I, s:s, s:o}", "user", view_text(c->user),
                            "license_type", view_text(c->license_type), "login", login,
                            "session_length_s", (json_int_t)len_s, "last_activity", last,
                            "session_id", view_text(c->session_id)));
    }
    return json_pack("{s:s, s:o}", "timezone", exp_view_timezone(qr, s), "sessions", rows);
}
