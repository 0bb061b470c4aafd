/* exp_read: the read endpoints over the aggregator's USAGE, STATS and
 * SESSIONS queries (API.md section 3): usage rows at day, hour and minute
 * granularity, the statistics cards, the session records (streamed) and
 * the print report. Each first asks for the org's settings (zone and
 * retention), works out the local dates, then asks for the data. */
#include "exp_api_int.h"
#include "exp_buf.h"
#include "exp_report.h"
#include "exp_sessions.h"
#include "exp_view.h"
#include "log.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CT_JSON "application/json"
#define READ_CT_NDJSON "application/x-ndjson"
#define READ_CT_HTML "text/html; charset=utf-8"

static const char *read_gran_name(enum exp_gran g)
{
    return g == EXP_GRAN_HOUR ? "hour" : g == EXP_GRAN_MINUTE ? "minute" : "day";
}

static void read_date(int64_t day, char *buf, size_t len)
{
    time_format_date(day, buf, len);
}

/* "from", "to" and, when clamping moved them, "requested_from/to". */
static void read_period_fields(struct exp_buf *b, const struct exp_period *per)
{
    char d[16];
    read_date(per->empty ? per->asked_from : per->from, d, sizeof(d));
    exp_buf_json_key(b, "from", false);
    exp_buf_json_str(b, d);
    read_date(per->empty ? per->asked_to : per->to, d, sizeof(d));
    exp_buf_json_key(b, "to", false);
    exp_buf_json_str(b, d);
    if (per->clamped) {
        read_date(per->asked_from, d, sizeof(d));
        exp_buf_json_key(b, "requested_from", false);
        exp_buf_json_str(b, d);
        read_date(per->asked_to, d, sizeof(d));
        exp_buf_json_key(b, "requested_to", false);
        exp_buf_json_str(b, d);
    }
    exp_buf_json_key(b, "clamped", false);
    exp_buf_adds(b, per->clamped ? "true" : "false");
}

static void read_json_period(json_t *o, const struct exp_period *per)
{
    char d[16];
    read_date(per->empty ? per->asked_from : per->from, d, sizeof(d));
    json_object_set_new(o, "from", json_string(d));
    read_date(per->empty ? per->asked_to : per->to, d, sizeof(d));
    json_object_set_new(o, "to", json_string(d));
    if (per->clamped) {
        read_date(per->asked_from, d, sizeof(d));
        json_object_set_new(o, "requested_from", json_string(d));
        read_date(per->asked_to, d, sizeof(d));
        json_object_set_new(o, "requested_to", json_string(d));
    }
    json_object_set_new(o, "clamped", json_boolean(per->clamped));
}

/* A query of the aggregator with the common fields set. */
static void read_query_init(Licmon__V1__Query *q, Licmon__V1__QueryKind kind,
                            const struct exp_org_ctx *ctx, const char *type)
{
    licmon__v1__query__init(q);
    q->kind = kind;
    q->org = (char *)ctx->org;
    q->license_type = (char *)type;
    q->now_ms = ctx->now_ms;
}

/* ---- usage ---- */

void exp_api_usage(struct exp_api *a, const char *org, const struct exp_req *req,
                   struct exp_resp *resp)
{
    struct exp_params p;
    if (exp_api_params(req, EXP_EP_USAGE, &p, resp))
        return;
    /* the zone and retention as remembered: one round trip; the answer's
     * settings confirm them, else everything is worked out again */
    struct exp_org_ctx ctx;
    bool assumed = exp_org_ctx_cached(a, org, &ctx) == 0;
    if (!assumed && exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__SETTINGS, &ctx, resp))
        return;
    struct exp_period per;
    Licmon__V1__Reply *rep = NULL;
    for (;;) {
        if (p.granularity == EXP_GRAN_DAY)
            exp_params_period(&p, ctx.today, ctx.s->retention_days_days, &per);
        else /* hours and minutes: from the first date the minute retention keeps whole */
            exp_params_period_since(
                &p, exp_params_first_minute_day(ctx.tz, ctx.now_ms, ctx.s->retention_days_minutes),
                ctx.today, &per);
        int qhour = 0;
        if (p.granularity == EXP_GRAN_MINUTE)
            qhour =
                exp_params_query_hour(ctx.tz, p.date, p.hour, p.hour_has_offset, p.hour_offset_s);
        if (assumed && (per.empty || qhour < 0)) {
            /* an answer without asking the aggregator: be sure of the zone */
            exp_org_ctx_close(&ctx);
            assumed = false;
            if (exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__SETTINGS, &ctx, resp))
                return;
            continue;
        }
        if (qhour < 0) {
            char detail[160], d[16];
            read_date(p.date, d, sizeof(d));
            snprintf(detail, sizeof(detail), "hour: %02d:00%s does not occur on %s in %s%s", p.hour,
                     p.hour_has_offset ? " with that offset" : "", d, ctx.tz,
                     p.hour_has_offset ? "" : " (the clocks skip it)");
            exp_api_bad_param(resp, detail);
            exp_org_ctx_close(&ctx);
            return;
        }
        if (per.empty)
            break;
        Licmon__V1__Query q;
        char from[16], to[16], date[16];
        read_query_init(&q, LICMON__V1__QUERY_KIND__USAGE, &ctx, p.type);
        q.granularity = (Licmon__V1__Granularity)p.granularity;
        read_date(per.from, from, sizeof(from));
        read_date(per.to, to, sizeof(to));
        read_date(p.date, date, sizeof(date));
        if (p.granularity == EXP_GRAN_DAY) {
            q.from_date = from;
            q.to_date = to;
        } else {
            q.date = date;
            q.hour = qhour;
        }
        if (exp_api_ask(a, &q, &rep, resp)) {
            exp_org_ctx_close(&ctx);
            return;
        }
        if (!assumed || exp_org_ctx_confirm(a, &ctx, rep->query))
            break;
        PB_FREE(reply, rep); /* the zone or retention changed since: again */
        assumed = false;
    }
    struct exp_buf b = {0};
    exp_buf_reserve(&b, 512 + (rep ? rep->query->n_rows : 0) * 256);
    exp_buf_addc(&b, '{');
    exp_buf_json_key(&b, "timezone", true);
    exp_buf_json_str(&b, ctx.tz);
    exp_buf_json_key(&b, "type", false);
    exp_buf_json_str(&b, p.type);
    exp_buf_json_key(&b, "granularity", false);
    exp_buf_json_str(&b, read_gran_name(p.granularity));
    if (p.granularity == EXP_GRAN_DAY) {
        read_period_fields(&b, &per);
    } else {
        char d[16];
        read_date(p.date, d, sizeof(d));
        exp_buf_json_key(&b, "date", false);
        exp_buf_json_str(&b, d);
        if (p.granularity == EXP_GRAN_MINUTE) {
            exp_buf_json_key(&b, "hour", false);
            exp_buf_int(&b, p.hour);
        }
        /* a date the minute retention no longer keeps (or not begun): no
         * rows, and the answer says why, as the day rows' answers do */
        exp_buf_json_key(&b, "clamped", false);
        exp_buf_adds(&b, per.clamped ? "true" : "false");
    }
    exp_buf_json_key(&b, "rows", false);
    exp_buf_addc(&b, '[');
    size_t n = 0;
    const Licmon__V1__QueryReply *qr = rep ? rep->query : NULL;
    for (size_t i = 0; qr && i < qr->n_rows; i++) {
        const Licmon__V1__UsageRow *r = qr->rows[i];
        if (!r || (p.granularity != EXP_GRAN_DAY && r->start_ms > ctx.now_ms))
            continue; /* a bucket that has not begun yet does not exist */
        if (n++)
            exp_buf_addc(&b, ',');
        exp_buf_addc(&b, '\n');
        exp_view_usage_row(&b, r, (int)p.granularity, ctx.z);
    }
    exp_buf_adds(&b, n ? "\n]}\n" : "]}\n");
    size_t len;
    char *text = exp_buf_steal(&b, &len);
    exp_api_text(resp, text, len, READ_CT_JSON);
    PB_FREE(reply, rep);
    exp_org_ctx_close(&ctx);
}

/* ---- stats ---- */

Licmon__V1__Reply *exp_api_ask_stats(struct exp_api *a, const struct exp_org_ctx *ctx,
                                     const char *type, const struct exp_period *per,
                                     int threshold_pct, struct exp_resp *resp)
{
    Licmon__V1__Query q;
    char from[16], to[16];
    read_query_init(&q, LICMON__V1__QUERY_KIND__STATS, ctx, type);
    int64_t f = per->from, t = per->to;
    if (per->empty)
        f = t = per->asked_from > ctx->today ? per->asked_from : per->asked_to;
    read_date(f, from, sizeof(from));
    read_date(t, to, sizeof(to));
    q.from_date = from;
    q.to_date = to;
    q.threshold_pct = threshold_pct;
    Licmon__V1__Reply *rep = NULL;
    if (exp_api_ask(a, &q, &rep, resp))
        return NULL;
    if (!rep->query->stats) {
        exp_api_upstream_failed(a->cfg.aggregator, EXP_UP_OK, rep, resp);
        PB_FREE(reply, rep);
        return NULL;
    }
    return rep;
}

/* GET /stats's answer for type over per; NULL with resp filled. */
static json_t *read_stats_json(struct exp_api *a, const struct exp_org_ctx *ctx, const char *type,
                               const struct exp_period *per, int threshold_pct,
                               struct exp_resp *resp)
{
    Licmon__V1__Reply *rep = exp_api_ask_stats(a, ctx, type, per, threshold_pct, resp);
    if (!rep)
        return NULL;
    json_t *o = exp_view_stats(rep->query->stats, exp_org_license(ctx, type), ctx->z);
    PB_FREE(reply, rep);
    if (!o) {
        exp_resp_error(resp, 500, "internal", "the cards could not be built");
        return NULL;
    }
    json_object_set_new(o, "timezone", json_string(ctx->tz));
    json_object_set_new(o, "type", json_string(type));
    read_json_period(o, per);
    return o;
}

void exp_api_stats(struct exp_api *a, const char *org, const struct exp_req *req,
                   struct exp_resp *resp)
{
    struct exp_params p;
    if (exp_api_params(req, EXP_EP_STATS, &p, resp))
        return;
    struct exp_org_ctx ctx;
    bool assumed = exp_org_ctx_cached(a, org, &ctx) == 0;
    if (!assumed && exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__SETTINGS, &ctx, resp))
        return;
    for (;;) {
        struct exp_period per;
        exp_params_period(&p, ctx.today, ctx.s->retention_days_days, &per);
        Licmon__V1__Reply *rep = exp_api_ask_stats(a, &ctx, p.type, &per, p.threshold_pct, resp);
        if (!rep)
            break;
        if (assumed && !exp_org_ctx_confirm(a, &ctx, rep->query)) {
            PB_FREE(reply, rep); /* the zone or retention changed since: again */
            assumed = false;
            continue;
        }
        json_t *o = exp_view_stats(rep->query->stats, exp_org_license(&ctx, p.type), ctx.z);
        PB_FREE(reply, rep);
        if (!o) {
            exp_resp_error(resp, 500, "internal", "the cards could not be built");
            break;
        }
        json_object_set_new(o, "timezone", json_string(ctx.tz));
        json_object_set_new(o, "type", json_string(p.type));
        read_json_period(o, &per);
        resp->status = 200;
        resp->body = o;
        break;
    }
    exp_org_ctx_close(&ctx);
}

/* ---- sessions ---- */

static bool read_wants_ndjson(const char *accept)
{
    return accept && strstr(accept, "application/x-ndjson") != NULL;
}

void exp_api_sessions(struct exp_api *a, const char *org, const struct exp_req *req,
                      struct exp_resp *resp)
{
    struct exp_params p;
    if (exp_api_params(req, EXP_EP_SESSIONS, &p, resp))
        return;
    struct exp_org_ctx ctx;
    if (exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__SETTINGS, &ctx, resp))
        return;
    struct exp_period per;
    exp_params_period_since(
        &p, exp_params_first_minute_day(ctx.tz, ctx.now_ms, ctx.s->retention_days_minutes),
        ctx.today, &per);
    bool nd = read_wants_ndjson(req->accept);
    resp->timezone = xstrdup(ctx.tz);
    resp->content_type = nd ? READ_CT_NDJSON : READ_CT_JSON;
    resp->status = 200;
    if (per.empty) {
        exp_api_text(resp, xstrdup(nd ? "" : "[]\n"), nd ? 0 : 3, resp->content_type);
        exp_org_ctx_close(&ctx);
        return;
    }
    char from[16], to[16];
    read_date(per.from, from, sizeof(from));
    read_date(per.to, to, sizeof(to));
    struct exp_sess_query sq = {.org = org,
                                .type = p.type,
                                .user = p.has_user ? p.user : NULL,
                                .from = from,
                                .to = to,
                                .now_ms = ctx.now_ms,
                                .chunk = a->cfg.session_chunk,
                                .timeout_ms = a->cfg.query_timeout_ms};
    struct exp_sess_src *src = exp_sess_src_new(a->cfg.aggregator, &sq);
    enum exp_upstream_result res;
    Licmon__V1__Reply *rep;
    if (exp_sess_src_start(src, &res, &rep) != 0) {
        exp_api_upstream_failed(a->cfg.aggregator, res, rep, resp);
        PB_FREE(reply, rep);
        exp_sess_src_free(&src);
        exp_org_ctx_close(&ctx);
        return;
    }
    if (!strcmp(req->method, "HEAD")) {
        exp_sess_src_free(&src);
    } else {
        resp->stream =
            exp_sess_stream(src, nd ? EXP_SESS_NDJSON : EXP_SESS_JSON, nd ? NULL : xstrdup("["),
                            xstrdup(nd ? "" : "]\n"), NULL, a->m_stream_failed);
    }
    exp_org_ctx_close(&ctx);
}

/* ---- report ---- */

void exp_api_report(struct exp_api *a, const char *org, const struct exp_req *req,
                    struct exp_resp *resp)
{
    struct exp_params p;
    if (exp_api_params(req, EXP_EP_REPORT, &p, resp))
        return;
    struct exp_org_ctx ctx;
    if (exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__LICENSES, &ctx, resp))
        return;
    struct exp_period per;
    exp_params_period(&p, ctx.today, ctx.s->retention_days_days, &per);
    json_t *stats = read_stats_json(a, &ctx, p.type, &per, p.threshold_pct, resp);
    if (!stats) {
        exp_org_ctx_close(&ctx);
        return;
    }
    Licmon__V1__Reply *rep = NULL;
    char from[16], to[16], afrom[16], ato[16];
    read_date(per.empty ? per.asked_from : per.from, from, sizeof(from));
    read_date(per.empty ? per.asked_to : per.to, to, sizeof(to));
    read_date(per.asked_from, afrom, sizeof(afrom));
    read_date(per.asked_to, ato, sizeof(ato));
    if (!per.empty) {
        Licmon__V1__Query q;
        read_query_init(&q, LICMON__V1__QUERY_KIND__USAGE, &ctx, p.type);
        q.granularity = LICMON__V1__GRANULARITY__DAY;
        q.from_date = from;
        q.to_date = to;
        if (exp_api_ask(a, &q, &rep, resp)) {
            json_decref(stats);
            exp_org_ctx_close(&ctx);
            return;
        }
    }
    json_t *lic = exp_view_licenses(ctx.rep->query, ctx.s, ctx.now_ms);
    struct exp_report_in in = {.org = org,
                               .type = p.type,
                               .timezone = ctx.tz,
                               .from = from,
                               .to = to,
                               .asked_from = per.clamped ? afrom : NULL,
                               .asked_to = per.clamped ? ato : NULL,
                               .empty = per.empty,
                               .paper = p.paper,
                               .generated_ms = ctx.now_ms,
                               .stats = stats,
                               .licenses = lic,
                               .rows = rep ? rep->query->rows : NULL,
                               .n_rows = rep ? rep->query->n_rows : 0};
    size_t len;
    char *html = exp_report_html(&in, &len);
    exp_api_text(resp, html, len, READ_CT_HTML);
    resp->html = true;
    resp->timezone = xstrdup(ctx.tz);
    json_decref(lic);
    json_decref(stats);
    PB_FREE(reply, rep);
    exp_org_ctx_close(&ctx);
}
