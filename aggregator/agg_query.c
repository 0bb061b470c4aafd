/* agg_query: query answers (see agg_query.h). Replies borrow strings from
 * the state and the settings copy they carry; the arrays, wrapper messages,
 * rows, session records and cursor are allocated here and released by
 * agg_query_clear. */
#include "agg_query.h"
#include "agg_cards.h"
#include "agg_retention.h"
#include "agg_sessions.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

#define MIN_MS INT64_C(60000)
#define DAY_MS INT64_C(86400000)

/* A reply's rows are one block: rows[0] is the block's start. */
struct row_block {
    Licmon__V1__UsageRow row; /* first member */
    char date[16];
};

/* What a query needs about its org, worked out once. */
struct qenv {
    const struct agg_query_ctx *ctx;
    const Licmon__V1__Query *q;
    const Licmon__V1__OrgSettings *s; /* in force, or the defaults */
    const char *org, *type;           /* type: "all" when empty */
    int64_t now_ms, today;
    int64_t first_day;  /* oldest local date of the day retention */
    int64_t min_cut_ms; /* oldest instant of the minute retention */
};

static int64_t ceil_to(int64_t v, int64_t unit)
{
    int64_t q = v / unit - (v % unit != 0 && v < 0);
    return q * unit == v ? v : (q + 1) * unit;
}

/* ------------------------------------------------------------ licenses */

static bool in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void answer_licenses(const struct qenv *e, Licmon__V1__QueryReply *qr)
{
    const Licmon__V1__OrgSettings *s = qr->settings;
    const char **seen, **held;
    size_t nseen = agg_rollup_types(e->ctx->rollup, e->org, &seen);
    size_t nheld = agg_state_types(e->ctx->state, e->org, &held);
    const char **types = xcalloc(s->n_licenses + nseen + nheld + 1, sizeof(*types));
    size_t n = 0, first_other;
    for (size_t i = 0; i < s->n_licenses; i++)
        if (!in_list(types, n, s->licenses[i]->type))
            types[n++] = s->licenses[i]->type;
    first_other = n;
    for (size_t i = 0; i < nseen + nheld; i++) {
        const char *t = i < nseen ? seen[i] : held[i - nseen];
        if (!in_list(types, n, t))
            types[n++] = t;
    }
    qsort(types + first_other, n - first_other, sizeof(*types), name_cmp);
    qr->licenses = xcalloc(n + 1, sizeof(*qr->licenses));
    for (size_t i = 0; i < n; i++) {
        Licmon__V1__LicenseState *ls = xmalloc(sizeof(*ls));
        licmon__v1__license_state__init(ls);
        const Licmon__V1__License *l = settings_license(s, types[i]);
        if (l) {
            ls->license = (Licmon__V1__License *)l;
        } else { /* seen in use, not configured: no seats owned */
            ls->license = xmalloc(sizeof(*ls->license));
            licmon__v1__license__init(ls->license);
            ls->license->type = (char *)types[i];
            ls->license->threshold_pct = SETTINGS_DEFAULT_THRESHOLD_PCT;
        }
        ls->in_use = agg_state_in_use(e->ctx->state, e->org, types[i]);
        qr->licenses[qr->n_licenses++] = ls;
    }
    free(types);
    free(seen);
    free(held);
    qr->in_use_all = agg_state_in_use(e->ctx->state, e->org, "all");
}

/* ------------------------------------------------------------- current */

static int current_cmp(const void *a, const void *b)
{
    const Licmon__V1__CurrentSession *x = *(Licmon__V1__CurrentSession *const *)a;
    const Licmon__V1__CurrentSession *y = *(Licmon__V1__CurrentSession *const *)b;
    if (x->login_ms != y->login_ms)
        return x->login_ms < y->login_ms ? -1 : 1;
    return strcmp(x->session_id, y->session_id);
}

static void answer_current(const struct qenv *e, Licmon__V1__QueryReply *qr)
{
    Licmon__V1__SessionRecord **recs;
    size_t n = agg_state_current(e->ctx->state, e->org, &recs);
    qr->current = xcalloc(n + 1, sizeof(*qr->current));
    for (size_t i = 0; i < n; i++) { /* the strings move over from the records */
        Licmon__V1__CurrentSession *c = xmalloc(sizeof(*c));
        licmon__v1__current_session__init(c);
        c->user = xstrdup(recs[i]->user);
        c->license_type = xstrdup(recs[i]->license_type);
        c->login_ms = recs[i]->start_ms;
        c->last_activity_ms = recs[i]->last_activity_ms;
        c->session_id = xstrdup(recs[i]->session_id);
        qr->current[qr->n_current++] = c;
    }
    if (n)
        qsort(qr->current, qr->n_current, sizeof(*qr->current), current_cmp);
    agg_state_records_free(recs, n);
}

/* --------------------------------------------------------------- usage */

static void rows_out(Licmon__V1__QueryReply *qr, const struct agg_rollup_row *v, size_t n,
                     int64_t from_ms, int64_t before_ms)
{
    struct row_block *blk = xcalloc(n ? n : 1, sizeof(*blk));
    qr->rows = xcalloc(n + 1, sizeof(*qr->rows));
    for (size_t i = 0; i < n; i++) {
        if (v[i].start_ms < from_ms || v[i].start_ms > before_ms)
            continue;
        struct row_block *b = &blk[qr->n_rows];
        Licmon__V1__UsageRow *r = &b->row;
        licmon__v1__usage_row__init(r);
        time_format_date(v[i].date, b->date, sizeof(b->date));
        r->date = b->date;
        r->start_ms = v[i].start_ms;
        r->utc_offset_s = v[i].utc_offset_s;
        r->minutes = v[i].minutes;
        r->peak = v[i].peak;
        r->peak_at_ms = v[i].peak > 0 ? v[i].peak_at_ms : -1;
        r->in_use_end = v[i].in_use_end;
        r->users = v[i].users;
        r->logins = v[i].logins;
        r->logouts = v[i].logouts;
        r->user_timeouts = v[i].user_timeouts;
        r->license_timeouts = v[i].license_timeouts;
        r->denials = v[i].denials;
        r->denied_users = v[i].denied_users;
        r->downgrades = v[i].downgrades;
        r->downgraded_users = v[i].downgraded_users;
        qr->rows[qr->n_rows++] = r;
    }
    if (!qr->n_rows)
        free(blk); /* rows[0] owns the block only when there is a row */
}

static int parse_date(const char *text, int64_t *d, const char *field, Licmon__V1__Reply *rep)
{
    if (!text || time_parse_date(text, d) != 0) {
        rep->error = (char *)field;
        return -1;
    }
    return 0;
}

static int answer_usage(const struct qenv *e, Licmon__V1__QueryReply *qr, Licmon__V1__Reply *rep)
{
    const Licmon__V1__Query *q = e->q;
    struct agg_rollup *r = e->ctx->rollup;
    int64_t from, to, date;
    int n = 0;
    struct agg_rollup_row *v = NULL;
    switch (q->granularity) {
    case LICMON__V1__GRANULARITY__DAY:
        if (parse_date(q->from_date, &from, "from_date: not a date", rep) ||
            parse_date(q->to_date, &to, "to_date: not a date", rep))
            return -1;
        if (from < e->first_day)
            from = e->first_day;
        if (to > e->today)
            to = e->today;
        if (from <= to) {
            v = xcalloc((size_t)(to - from + 1), sizeof(*v));
            n = agg_rollup_days(r, e->org, e->type, from, to, v, (size_t)(to - from + 1));
        }
        if (n >= 0)
            rows_out(qr, v, (size_t)n, INT64_MIN, INT64_MAX);
        break;
    case LICMON__V1__GRANULARITY__HOUR:
        if (parse_date(q->date, &date, "date: not a date", rep))
            return -1;
        if (date <= e->today && date >= e->min_cut_ms / DAY_MS - 2) {
            v = xcalloc(AGG_ROLLUP_MAX_HOURS, sizeof(*v));
            n = agg_rollup_hours(r, e->org, e->type, date, v, AGG_ROLLUP_MAX_HOURS);
        }
        if (n >= 0)
            rows_out(qr, v, (size_t)n, e->min_cut_ms, e->now_ms);
        break;
    case LICMON__V1__GRANULARITY__MINUTE: {
        if (parse_date(q->date, &date, "date: not a date", rep))
            return -1;
        int64_t a, b;
        if (date <= e->today && date >= e->min_cut_ms / DAY_MS - 2 &&
            agg_rollup_hour_bounds(r, e->org, date, q->hour, &a, &b) == 0) {
            if (a < e->min_cut_ms)
                a = ceil_to(e->min_cut_ms, MIN_MS);
            int64_t begun = ceil_to(e->now_ms + 1, MIN_MS); /* through the minute of now */
            if (b > begun)
                b = begun;
            if (a < b) {
                size_t cap = (size_t)((b - a) / MIN_MS + 1);
                v = xcalloc(cap, sizeof(*v));
                n = agg_rollup_minutes(r, e->org, e->type, a, b, v, cap);
            }
        }
        if (n >= 0)
            rows_out(qr, v, (size_t)n, INT64_MIN, INT64_MAX);
        break;
    }
    default:
        rep->error = "granularity: must be day, hour or minute";
        return -1;
    }
    free(v);
    if (n < 0) {
        rep->error = "usage: the rollups cannot be read";
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- stats */

static int answer_stats(const struct qenv *e, Licmon__V1__QueryReply *qr, Licmon__V1__Reply *rep)
{
    const Licmon__V1__Query *q = e->q;
    const Licmon__V1__OrgSettings *s = qr->settings;
    int64_t from, to;
    if (parse_date(q->from_date, &from, "from_date: not a date", rep) ||
        parse_date(q->to_date, &to, "to_date: not a date", rep))
        return -1;
    if (from < e->first_day)
        from = e->first_day;
    bool all = !strcmp(e->type, AGG_ROLLUP_ALL);
    const Licmon__V1__License *lic = all ? NULL : settings_license(s, e->type);
    struct agg_cards_input in = {
        .type = e->type,
        .named = lic && lic->model == LICMON__V1__LICENSE_MODEL__NAMED,
        .owned = lic ? lic->owned : 0,
        .threshold_pct = lic ? lic->threshold_pct : 0,
        .preview_pct = q->threshold_pct,
        .minor_margin_pct = s->minor_margin_pct,
        .from_date = from,
        .to_date = to,
        .today = e->today,
        .in_use = agg_state_in_use(e->ctx->state, e->org, e->type),
    };
    for (size_t i = 0; all && i < s->n_licenses; i++)
        in.owned += s->licenses[i]->owned > 0 ? s->licenses[i]->owned : 0;
    if (lic && lic->expires && *lic->expires && time_parse_date(lic->expires, &in.expires) == 0)
        in.has_expiry = true;
    int64_t last = to < e->today ? to : e->today;
    struct agg_rollup_row *v = NULL;
    struct agg_cards_day *days = NULL;
    int n = 0;
    if (from <= last) {
        size_t cap = (size_t)(last - from + 1);
        v = xcalloc(cap, sizeof(*v));
        n = agg_rollup_days(e->ctx->rollup, e->org, e->type, from, last, v, cap);
        if (n >= 0 && agg_rollup_period_users(e->ctx->rollup, e->org, e->type, from, last,
                                              &in.denied_users, &in.downgraded_users) != 0)
            n = -1;
        days = xcalloc(cap, sizeof(*days));
        for (int i = 0; i < n; i++)
            days[i] = (struct agg_cards_day){v[i].date, v[i].peak, v[i].peak_at_ms, v[i].denials,
                                             v[i].downgrades};
    }
    free(v);
    if (n < 0) {
        free(days);
        rep->error = "stats: the rollups cannot be read";
        return -1;
    }
    in.days = days;
    in.ndays = (size_t)n;
    struct agg_cards c;
    agg_cards_compute(&in, &c);
    free(days);

    Licmon__V1__Stats *st = xmalloc(sizeof(*st));
    licmon__v1__stats__init(st);
    st->threshold_pct = c.threshold_pct;
    st->threshold_count = c.threshold_count;
    st->owned = c.owned;
    st->days = (int32_t)c.average.days;
    st->average_value = c.average.value;
    st->average_pct = c.average.pct;
    st->average_state = (char *)agg_cards_state_name(c.average.state);
    st->peak_value = c.peak.value;
    st->peak_pct = c.peak.pct;
    st->peak_at_ms = c.peak.at_ms;
    st->peak_state = (char *)agg_cards_state_name(c.peak.state);
    st->days_over_threshold = c.over_threshold.value;
    st->days_at_capacity = c.over_threshold.days_at_capacity;
    st->days_over_state = (char *)agg_cards_state_name(c.over_threshold.state);
    st->denied_users = c.denied.users;
    st->denials = c.denied.events;
    st->denied_state = (char *)agg_cards_state_name(c.denied.state);
    st->downgraded_users = c.downgraded.users;
    st->downgrades = c.downgraded.events;
    st->downgraded_state = (char *)agg_cards_state_name(c.downgraded.state);
    st->in_use = c.current.in_use;
    st->free = c.current.free;
    st->has_expiry = in.has_expiry;
    st->days_left = c.expiration.days_left;
    st->expiration_state = (char *)agg_cards_state_name(c.expiration.state);
    qr->stats = st;
    return 0;
}

/* ------------------------------------------------------------ sessions */

static int answer_sessions(const struct qenv *e, Licmon__V1__QueryReply *qr, Licmon__V1__Reply *rep)
{
    const Licmon__V1__Query *q = e->q;
    int64_t from, to;
    if (parse_date(q->from_date, &from, "from_date: not a date", rep) ||
        parse_date(q->to_date, &to, "to_date: not a date", rep))
        return -1;
    if (from < e->min_cut_ms / DAY_MS - 2) /* the exact cut is applied below */
        from = e->min_cut_ms / DAY_MS - 2;
    if (to < from)
        return 0;
    struct agg_sessions_query sq = {
        .org = e->org,
        .from_ms = agg_rollup_date_start_ms(e->ctx->rollup, e->org, from),
        .to_ms = agg_rollup_date_start_ms(e->ctx->rollup, e->org, to + 1),
        .type = e->type,
        .user = q->user,
        .max_rows = q->max_rows,
        .cursor = q->cursor.data,
        .cursor_len = q->cursor.len,
    };
    if (sq.from_ms < e->min_cut_ms)
        sq.from_ms = e->min_cut_ms;
    struct agg_sessions_chunk c;
    const char *err = NULL;
    if (agg_sessions_find(e->ctx->store, e->ctx->state, &sq, &c, &err) != 0) {
        rep->error = (char *)err;
        return -1;
    }
    qr->sessions = c.recs;
    qr->n_sessions = c.n;
    qr->next_cursor.data = c.next_cursor;
    qr->next_cursor.len = c.next_len;
    return 0;
}

/* ---------------------------------------------------------------- orgs */

/* Every org of the state and of the rollups, sorted, each once. The names
 * are borrowed from both; the array is freed by agg_query_clear. */
static void answer_orgs(const struct agg_query_ctx *ctx, Licmon__V1__Reply *rep)
{
    const char **a, **b;
    size_t na = agg_state_orgs(ctx->state, &a);
    size_t nb = agg_rollup_orgs(ctx->rollup, &b);
    const char **all = xcalloc(na + nb + 1, sizeof(*all));
    size_t n = 0;
    for (size_t i = 0; i < na + nb; i++) {
        const char *o = i < na ? a[i] : b[i - na];
        if (settings_valid_org(o))
            all[n++] = o;
    }
    free(a);
    free(b);
    qsort(all, n, sizeof(*all), name_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(all[u - 1], all[i]))
            all[u++] = all[i];
    Licmon__V1__QueryReply *qr = xmalloc(sizeof(*qr));
    licmon__v1__query_reply__init(qr);
    qr->orgs = (char **)all;
    qr->n_orgs = u;
    rep->body_case = LICMON__V1__REPLY__BODY_QUERY;
    rep->query = qr;
}

/* --------------------------------------------------------------- entry */

int agg_query_answer(const struct agg_query_ctx *ctx, const Licmon__V1__Query *q,
                     Licmon__V1__Reply *rep)
{
    if (q->kind == LICMON__V1__QUERY_KIND__ORGS) {
        answer_orgs(ctx, rep);
        return 0;
    }
    if (!q->org || !settings_valid_org(q->org)) {
        rep->error = "org: must match [A-Za-z0-9._-]{1,64}";
        return -1;
    }
    const char *type = q->license_type && *q->license_type ? q->license_type : AGG_ROLLUP_ALL;
    if (strcmp(type, AGG_ROLLUP_ALL) != 0 && !settings_valid_type(type)) {
        rep->error = "license_type: must match [a-z0-9_]{1,32} or be all";
        return -1;
    }
    const Licmon__V1__OrgSettings *known = agg_state_settings(ctx->state, q->org);
    Licmon__V1__OrgSettings *s = known ? settings_copy(known) : settings_default(q->org);
    Licmon__V1__QueryReply *qr = xmalloc(sizeof(*qr));
    licmon__v1__query_reply__init(qr);
    qr->org_known = known != NULL;
    qr->settings = s;
    qr->timezone = s->timezone;
    qr->integrations = s->integrations;
    qr->n_integrations = s->n_integrations;
    rep->body_case = LICMON__V1__REPLY__BODY_QUERY;
    rep->query = qr;

    struct qenv e = {.ctx = ctx, .q = q, .s = s, .org = q->org, .type = type};
    e.now_ms = q->now_ms > 0 ? q->now_ms : time_now_ms();
    e.today = agg_rollup_local_date(ctx->rollup, q->org, e.now_ms);
    /* the R days ending today, as the exporter clamps periods (one more
     * made /stats count a day /usage said was gone) */
    e.first_day = e.today - (agg_retention_days_days(s) - 1);
    e.min_cut_ms = e.now_ms - agg_retention_minutes_days(s) * DAY_MS;
    int rc = 0;
    switch (q->kind) {
    case LICMON__V1__QUERY_KIND__LICENSES:
        answer_licenses(&e, qr);
        break;
    case LICMON__V1__QUERY_KIND__CURRENT:
        answer_current(&e, qr);
        break;
    case LICMON__V1__QUERY_KIND__SETTINGS:
        break;
    case LICMON__V1__QUERY_KIND__USAGE:
        rc = answer_usage(&e, qr, rep);
        break;
    case LICMON__V1__QUERY_KIND__STATS:
        rc = answer_stats(&e, qr, rep);
        break;
    case LICMON__V1__QUERY_KIND__SESSIONS:
        rc = answer_sessions(&e, qr, rep);
        break;
    default:
        rep->error = "query kind not served";
        rc = -1;
        break;
    }
    if (rc != 0) {
        const char *err = rep->error;
        agg_query_clear(rep);
        rep->error = (char *)err;
    }
    return rc;
}

void agg_query_clear(Licmon__V1__Reply *rep)
{
    Licmon__V1__QueryReply *qr = rep->query;
    if (!qr)
        return;
    for (size_t i = 0; i < qr->n_licenses; i++) {
        Licmon__V1__LicenseState *ls = qr->licenses[i];
        if (!settings_license(qr->settings, ls->license->type))
            free(ls->license);
        free(ls);
    }
    free(qr->licenses);
    for (size_t i = 0; i < qr->n_current; i++) {
        free(qr->current[i]->user);
        free(qr->current[i]->license_type);
        free(qr->current[i]->session_id);
        free(qr->current[i]);
    }
    free(qr->current);
    if (qr->n_rows)
        free(qr->rows[0]); /* the row block */
    free(qr->rows);
    free(qr->stats);
    for (size_t i = 0; i < qr->n_sessions; i++)
        licmon__v1__session_record__free_unpacked(qr->sessions[i], NULL);
    free(qr->sessions);
    free(qr->next_cursor.data);
    free(qr->orgs); /* the names are borrowed */
    settings_free(&qr->settings);
    free(qr);
    rep->query = NULL;
    rep->body_case = LICMON__V1__REPLY__BODY__NOT_SET;
}
