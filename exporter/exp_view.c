/* exp_view: JSON views of query answers (see exp_view.h). */
#include "exp_view.h"
#include "exp_params.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <math.h>
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

json_t *exp_view_orgs(const char *const *orgs, const char *const *tzs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:o, s:o}", "org", view_text(orgs[i]), "timezone", view_text(tzs[i])));
    return json_pack("{s:o}", "orgs", arr);
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

void exp_view_usage_row(struct exp_buf *b, const Licmon__V1__UsageRow *r, int granularity,
                        const struct tz *z)
{
    /* written by hand: a year of day rows is answered at a thousand a second */
    char label[40];
    exp_buf_adds(b, "{\"date\":");
    exp_buf_json_str(b, r->date);
    if (granularity == LICMON__V1__GRANULARITY__HOUR ||
        granularity == LICMON__V1__GRANULARITY__MINUTE) {
        exp_buf_adds(b, granularity == LICMON__V1__GRANULARITY__HOUR ? ",\"hour\":\""
                                                                     : ",\"minute\":\"");
        exp_buf_adds(
            b, exp_params_local_label(r->start_ms, r->utc_offset_s, false, label, sizeof(label)));
        exp_buf_addc(b, '"');
    }
    static const char *const keys[] = {",\"peak\":",
                                       ",\"in_use_end\":",
                                       ",\"users\":",
                                       ",\"logins\":",
                                       ",\"logouts\":",
                                       ",\"user_timeouts\":",
                                       ",\"license_timeouts\":",
                                       ",\"denials\":",
                                       ",\"denied_users\":",
                                       ",\"downgrades\":",
                                       ",\"downgraded_users\":"};
    const int64_t vals[] = {r->peak,
                            r->in_use_end,
                            r->users,
                            r->logins,
                            r->logouts,
                            r->user_timeouts,
                            r->license_timeouts,
                            r->denials,
                            r->denied_users,
                            r->downgrades,
                            r->downgraded_users};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        exp_buf_adds(b, keys[i]);
        exp_buf_int(b, vals[i]);
    }
    exp_buf_adds(b, ",\"peak_at\":");
    if (r->peak_at_ms >= 0 && r->peak > 0 && z) {
        exp_buf_addc(b, '"');
        exp_buf_adds(b, exp_params_local_label(r->peak_at_ms, tz_offset_s(z, r->peak_at_ms), false,
                                               label, sizeof(label)));
        exp_buf_addc(b, '"');
    } else {
        exp_buf_adds(b, "null");
    }
    exp_buf_addc(b, '}');
}

double exp_view_pct(double value, int64_t owned)
{
    if (owned <= 0)
        return NAN;
    return value * 100.0 / (double)owned;
}

double exp_view_cut(double x, int decimals)
{
    if (!isfinite(x))
        return x;
    double scale = pow(10, decimals), a = fabs(x);
    double k = floor(a * scale);
    /* a x scale can land a hair under the whole number it is in decimal
     * (79.9 x 10 = 798.99...): take that step when it does not pass a */
    if ((k + 1) / scale <= a)
        k += 1;
    return k == 0 ? 0.0 : copysign(k / scale, x);
}

/* a number as shown (cut, see exp_view_cut); null when there is none */
static json_t *view_num(double v, int decimals)
{
    return isfinite(v) ? json_real(exp_view_cut(v, decimals)) : json_null();
}

/* a percentage, as shown with one decimal; null when there is none. It
 * must come correctly rounded from whole numbers (the aggregator's
 * average_pct is 100 x sum / (owned x days) in one division): the mean's
 * value times 100 / owned rounds three times, and 69 seat-days of 5 seats
 * over 30 days, exactly 46%, came out 45.99999999999999, shown 45.9. */
static json_t *view_pct(double pct)
{
    return view_num(pct, 1);
}

static const char *view_state(const char *s)
{
    return s && *s ? s : "non_applicable";
}

json_t *exp_view_stats(const Licmon__V1__Stats *st, const Licmon__V1__License *lic,
                       const struct tz *z)
{
    char at[40];
    json_t *peak_at = json_null();
    if (st->peak_at_ms >= 0 && st->peak_value > 0 && z)
        peak_at = json_string(exp_params_local_label(st->peak_at_ms, tz_offset_s(z, st->peak_at_ms),
                                                     false, at, sizeof(at)));
    bool has_exp = st->has_expiry;
    const char *expires = lic && lic->expires && *lic->expires ? lic->expires : NULL;
    return json_pack(
        "{s:i, s:I, s:I, s:i,"
        " s:{s:o, s:o, s:s}, s:{s:I, s:o, s:o, s:s}, s:{s:I, s:I, s:s},"
        " s:{s:I, s:I, s:s}, s:{s:I, s:I, s:s}, s:{s:I, s:I, s:I}, s:{s:o, s:o, s:s}}",
        "threshold_pct", (int)st->threshold_pct, "threshold_count", (json_int_t)st->threshold_count,
        "owned", (json_int_t)st->owned, "days", (int)st->days, "average_daily_usage", "value",
        view_num(st->average_value, 2), "pct", view_pct(st->owned > 0 ? st->average_pct : NAN),
        "state", view_state(st->average_state), "peak_usage", "value", (json_int_t)st->peak_value,
        "pct", view_pct(exp_view_pct((double)st->peak_value, st->owned)), "at", peak_at, "state",
        view_state(st->peak_state), "days_over_threshold", "value",
        (json_int_t)st->days_over_threshold, "days_at_capacity", (json_int_t)st->days_at_capacity,
        "state", view_state(st->days_over_state), "users_denied", "users",
        (json_int_t)st->denied_users, "events", (json_int_t)st->denials, "state",
        st->denied_state && *st->denied_state ? st->denied_state
                                              : (st->denied_users ? "major" : "ok"),
        "users_downgraded", "users", (json_int_t)st->downgraded_users, "events",
        (json_int_t)st->downgrades, "state",
        st->downgraded_state && *st->downgraded_state ? st->downgraded_state
                                                      : (st->downgraded_users ? "minor" : "ok"),
        "current_usage", "in_use", (json_int_t)st->in_use, "owned", (json_int_t)st->owned, "free",
        (json_int_t)st->free, "license_expiration", "expires",
        has_exp && expires ? json_string(expires) : json_null(), "days_left",
        has_exp ? json_integer(st->days_left) : json_null(), "state",
        st->expiration_state && *st->expiration_state
            ? st->expiration_state
            : exp_view_expiration_state(has_exp, st->days_left));
}

static void view_instant(struct exp_buf *b, const char *key, int64_t ms, bool null_when_zero)
{
    exp_buf_json_key(b, key, false);
    if (null_when_zero && ms == 0) {
        exp_buf_adds(b, "null");
        return;
    }
    char t[40];
    exp_buf_addc(b, '"');
    exp_buf_adds(b, time_format_rfc3339(ms, t, sizeof(t)));
    exp_buf_addc(b, '"');
}

/* "key": seconds, or null when absent */
static void view_seconds(struct exp_buf *b, const char *key, int64_t s, bool absent)
{
    exp_buf_json_key(b, key, false);
    if (absent)
        exp_buf_adds(b, "null");
    else
        exp_buf_int(b, s);
}

bool exp_view_tail_known(const Licmon__V1__SessionRecord *s)
{
    return s->end_reason != LICMON__V1__END_REASON__OPEN && s->license_released_at_ms != 0;
}

void exp_view_session(struct exp_buf *b, const Licmon__V1__SessionRecord *s)
{
    exp_buf_addc(b, '{');
    exp_buf_json_key(b, "session_id", true);
    exp_buf_json_str(b, s->session_id);
    exp_buf_json_key(b, "org", false);
    exp_buf_json_str(b, s->org);
    exp_buf_json_key(b, "user", false);
    exp_buf_json_str(b, s->user);
    exp_buf_json_key(b, "license_type", false);
    exp_buf_json_str(b, s->license_type);
    exp_buf_json_key(b, "requested_type", false);
    if (s->requested_type && *s->requested_type)
        exp_buf_json_str(b, s->requested_type);
    else
        exp_buf_adds(b, "null");
    view_instant(b, "start", s->start_ms, false);
    view_instant(b, "last_activity", s->last_activity_ms, false);
    bool open = s->end_reason == LICMON__V1__END_REASON__OPEN;
    view_instant(b, "end", open ? 0 : s->end_ms, true);
    exp_buf_json_key(b, "end_reason", false);
    exp_buf_json_str(b, pb_end_reason_name(s->end_reason));
    /* an open session has no end, so none of the metrics measured to it */
    view_seconds(b, "user_inactivity_s", s->user_inactivity_s, open);
    view_seconds(b, "license_inactivity_s", s->license_inactivity_s, open);
    view_instant(b, "license_released_at", s->license_released_at_ms, true);
    view_seconds(b, "license_tail_s", s->license_tail_s, !exp_view_tail_known(s));
    exp_buf_addc(b, '}');
}

const char *exp_view_state_words(const char *state)
{
    if (!state || !strcmp(state, "non_applicable") || !*state)
        return "Non-applicable";
    if (!strcmp(state, "ok"))
        return "OK";
    if (!strcmp(state, "minor"))
        return "Minor";
    if (!strcmp(state, "major"))
        return "Major";
    return state;
}

bool exp_view_card_applies(const char *state)
{
    return state && *state && strcmp(state, "non_applicable");
}

const char *exp_view_license_model(const json_t *licenses, const char *type)
{
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(licenses, "licenses"), i, l)
    {
        const char *t = json_string_value(json_object_get(l, "type"));
        if (t && type && !strcmp(t, type))
            return json_string_value(json_object_get(l, "model"));
    }
    return NULL;
}

const char *exp_view_na_reason(const char *type, const char *model, int64_t owned)
{
    if (!exp_view_has_capacity(type))
        return "no threshold for all types together";
    if ((model && !strcmp(model, "named")) || owned > 0)
        return "named licenses have no shared pool";
    return "no seats owned";
}

bool exp_view_has_capacity(const char *type)
{
    return type && strcmp(type, "all");
}
