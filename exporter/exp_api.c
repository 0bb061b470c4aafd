/* exp_api: handlers of the HTTP API (see exp_api.h and API.md section 3).
 * Order of checks: a /v1 path needs a known token (401) before anything
 * about the path is revealed; then the path (404/405/400); then whether
 * this caller may touch that org (404 for any other org, so a token cannot
 * learn which orgs exist; 403 for a write by a read-only role). */
#include "exp_api.h"
#include "exp_api_int.h"
#include "exp_view.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "prog.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define API_POLL_MS 20

struct exp_api *exp_api_new(const struct exp_api_config *cfg)
{
    struct exp_api *a = xcalloc(1, sizeof(*a));
    a->cfg = *cfg;
    a->cfg.admin_token = NULL; /* only its hash is kept */
    if (a->cfg.settings_wait_ms <= 0)
        a->cfg.settings_wait_ms = EXP_API_SETTINGS_WAIT_MS;
    exp_auth_init(&a->auth, cfg->admin_token, cfg->tokens);
    a->m_settings = metric_counter("licmon_exporter_settings_changes_total",
                                   "settings changes journaled through ingest");
    a->m_tokens_created = metric_counter("licmon_exporter_tokens_created_total", "tokens created");
    a->m_tokens_revoked = metric_counter("licmon_exporter_tokens_revoked_total", "tokens revoked");
    a->m_denied = metric_counter("licmon_exporter_auth_denied_total",
                                 "requests refused with 401, 403 or 404 for another org");
    a->m_exports = metric_counter("licmon_exporter_exports_total", "export files served");
    a->m_export_rows =
        metric_counter("licmon_exporter_export_session_rows_total", "session rows exported");
    a->m_stream_failed = metric_counter("licmon_exporter_streams_failed_total",
                                        "streamed answers cut short by an upstream failure");
    atomic_init(&a->exports_running, 0);
    pthread_mutex_init(&a->zone_lock, NULL);
    pthread_mutex_init(&a->clock_lock, NULL);
    prog_clock_resume(&a->clock, "exporter", cfg->store);
    for (int i = 0; i < EXP_SETTINGS_LOCKS; i++)
        pthread_mutex_init(&a->settings_locks[i], NULL);
    pthread_mutex_init(&a->pending_lock, NULL);
    json_object_seed(0); /* once, before the HTTP threads build JSON */
    return a;
}

void exp_api_free(struct exp_api **a)
{
    if (*a) {
        explicit_bzero((*a)->auth.admin_hash, sizeof((*a)->auth.admin_hash));
        pthread_mutex_destroy(&(*a)->zone_lock);
        pthread_mutex_destroy(&(*a)->clock_lock);
        for (int i = 0; i < EXP_SETTINGS_LOCKS; i++)
            pthread_mutex_destroy(&(*a)->settings_locks[i]);
        pthread_mutex_destroy(&(*a)->pending_lock);
    }
    free(*a);
    *a = NULL;
}

void exp_resp_clear(struct exp_resp *resp)
{
    json_decref(resp->body);
    free(resp->text);
    if (resp->has_fd)
        close(resp->fd);
    if (resp->stream) {
        if (resp->stream->free)
            resp->stream->free(resp->stream->ctx);
        free(resp->stream);
    }
    free(resp->filename);
    free(resp->timezone);
    memset(resp, 0, sizeof(*resp));
}

bool exp_resp_has_body(const struct exp_resp *resp)
{
    return resp->body || resp->text || resp->has_fd || resp->stream;
}

void exp_api_text(struct exp_resp *resp, char *text, size_t len, const char *content_type)
{
    json_decref(resp->body);
    resp->body = NULL;
    free(resp->text);
    resp->status = 200;
    resp->text = text;
    resp->text_len = len;
    resp->content_type = content_type;
}

void exp_api_bad_param(struct exp_resp *resp, const char *detail)
{
    exp_resp_error(resp, 400, "invalid parameter", detail);
}

int exp_api_params(const struct exp_req *req, enum exp_endpoint ep, struct exp_params *p,
                   struct exp_resp *resp)
{
    char err[256];
    if (req->too_many_params) {
        snprintf(err, sizeof(err), "query: more than %d parameters", EXP_API_MAX_PARAMS);
        exp_api_bad_param(resp, err);
        return -1;
    }
    if (exp_params_parse(ep, req->params, req->n_params, p, err, sizeof(err)) != 0) {
        exp_api_bad_param(resp, err);
        return -1;
    }
    return 0;
}

int64_t exp_api_now(struct exp_api *a)
{
    if (a->cfg.clock_ms)
        return a->cfg.clock_ms();
    pthread_mutex_lock(&a->clock_lock);
    int64_t now = prog_clock_now(&a->clock);
    pthread_mutex_unlock(&a->clock_lock);
    return now;
}

void exp_resp_error(struct exp_resp *resp, unsigned status, const char *error, const char *detail)
{
    struct exp_resp keep = {.allow = resp->allow, .challenge = resp->challenge};
    resp->allow = NULL;
    exp_resp_clear(resp);
    resp->allow = keep.allow;
    resp->challenge = keep.challenge;
    resp->status = status;
    resp->body = json_pack("{s:s, s:s}", "error", error, "detail", detail ? detail : "");
    if (!resp->body) /* detail was not UTF-8: say less rather than nothing */
        resp->body = json_pack("{s:s, s:s}", "error", error, "detail", "");
}

static void api_ok(struct exp_resp *resp, unsigned status, json_t *body)
{
    json_decref(resp->body);
    resp->status = status;
    resp->body = body;
}

/* Fills resp with the answer to an upstream that failed; always returns -1. */
int exp_api_upstream_failed(struct exp_upstream *u, enum exp_upstream_result res,
                            const Licmon__V1__Reply *rep, struct exp_resp *resp)
{
    const char *name = exp_upstream_name(u);
    char detail[256];
    unsigned why; /* every request says it while a program is down */
    if (res == EXP_UP_TIMEOUT) {
        why = 0;
        snprintf(detail, sizeof(detail), "%s did not answer", name);
        exp_resp_error(resp, 503, "unavailable", detail);
    } else if (res == EXP_UP_ERROR) {
        why = 1;
        snprintf(detail, sizeof(detail), "%s cannot be reached", name);
        exp_resp_error(resp, 503, "unavailable", detail);
    } else if (rep && rep->error && *rep->error) {
        why = 2;
        snprintf(detail, sizeof(detail), "%s: %.200s", name, rep->error);
        exp_resp_error(resp, 502, "upstream error", detail);
    } else {
        why = 3;
        snprintf(detail, sizeof(detail), "%s gave an answer of the wrong kind", name);
        exp_resp_error(resp, 502, "upstream error", detail);
    }
    log_warn_limited(exp_upstream_warn_limit(u, why), "answering %u: %s", resp->status, detail);
    return -1;
}

static int api_ask_timeout(struct exp_api *a, Licmon__V1__Query *q, int64_t timeout_ms,
                           Licmon__V1__Reply **rep, struct exp_resp *resp)
{
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    req.body_case = LICMON__V1__REQUEST__BODY_QUERY;
    req.query = q;
    enum exp_upstream_result res = exp_upstream_call(
        a->cfg.aggregator, &req, timeout_ms ? timeout_ms : a->cfg.query_timeout_ms, rep);
    if (res == EXP_UP_OK && !(*rep)->error[0] &&
        (*rep)->body_case == LICMON__V1__REPLY__BODY_QUERY && (*rep)->query)
        return 0;
    exp_api_upstream_failed(a->cfg.aggregator, res, *rep, resp);
    PB_FREE(reply, *rep);
    return -1;
}

int exp_api_ask(struct exp_api *a, Licmon__V1__Query *q, Licmon__V1__Reply **rep,
                struct exp_resp *resp)
{
    return api_ask_timeout(a, q, 0, rep, resp);
}

/* Asks the aggregator; 0 with *rep (its query is set), or -1 with resp filled. */
static int api_query(struct exp_api *a, Licmon__V1__QueryKind kind, const char *org, int64_t now_ms,
                     int64_t timeout_ms, Licmon__V1__Reply **rep, struct exp_resp *resp)
{
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.kind = kind;
    q.org = (char *)org;
    q.now_ms = now_ms;
    return api_ask_timeout(a, &q, timeout_ms, rep, resp);
}

/* The settings in force from a query answer, or the defaults of a new org. */
static Licmon__V1__OrgSettings *api_settings_in_force(const Licmon__V1__QueryReply *qr,
                                                      const char *org)
{
    if (!qr->settings)
        return settings_default(org);
    Licmon__V1__OrgSettings *s = settings_copy(qr->settings);
    if (strcmp(s->org, org)) {
        if (s->org != protobuf_c_empty_string)
            free(s->org);
        s->org = xstrdup(org);
    }
    if (!s->timezone[0]) {
        if (s->timezone != protobuf_c_empty_string)
            free(s->timezone);
        s->timezone = xstrdup("UTC");
    }
    return s;
}

static uint32_t org_hash(const char *org)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = org; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static struct exp_zone_entry *zone_slot(struct exp_api *a, const char *org)
{
    return &a->zones[org_hash(org) % EXP_ZONE_CACHE];
}

static void zone_remember(struct exp_api *a, const char *org, const char *tz,
                          const Licmon__V1__OrgSettings *s)
{
    pthread_mutex_lock(&a->zone_lock);
    struct exp_zone_entry *e = zone_slot(a, org);
    snprintf(e->org, sizeof(e->org), "%s", org);
    snprintf(e->tz, sizeof(e->tz), "%s", tz);
    e->retention_days_minutes = s->retention_days_minutes;
    e->retention_days_days = s->retention_days_days;
    pthread_mutex_unlock(&a->zone_lock);
}

void exp_zone_forget(struct exp_api *a, const char *org)
{
    pthread_mutex_lock(&a->zone_lock);
    struct exp_zone_entry *e = zone_slot(a, org);
    if (!strcmp(e->org, org))
        e->org[0] = '\0';
    pthread_mutex_unlock(&a->zone_lock);
}

/* Sets ctx's zone fields from ctx->s (and the answer qr, may be NULL). */
static void org_ctx_zone(struct exp_org_ctx *ctx, const Licmon__V1__QueryReply *qr)
{
    ctx->tz = exp_view_timezone(qr, ctx->s);
    ctx->z = tz_get(ctx->tz);
    if (!ctx->z) {
        log_warn_ctx("org", ctx->org, "unknown time zone '%.64s': counting in UTC", ctx->tz);
        ctx->tz = "UTC";
        ctx->z = tz_get("UTC");
    }
    if (ctx->tz != ctx->s->timezone && strcmp(ctx->tz, ctx->s->timezone)) {
        /* keep the zone in the settings ctx owns, so ctx->tz outlives qr */
        if (ctx->s->timezone != protobuf_c_empty_string)
            free(ctx->s->timezone);
        ctx->s->timezone = xstrdup(ctx->tz);
    }
    ctx->tz = ctx->s->timezone;
    ctx->today = exp_params_today(ctx->tz, ctx->now_ms);
}

int exp_org_ctx_open(struct exp_api *a, const char *org, Licmon__V1__QueryKind kind,
                     struct exp_org_ctx *ctx, struct exp_resp *resp)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->org = org;
    ctx->now_ms = exp_api_now(a);
    if (api_query(a, kind, org, ctx->now_ms, 0, &ctx->rep, resp))
        return -1;
    ctx->s = api_settings_in_force(ctx->rep->query, org);
    org_ctx_zone(ctx, ctx->rep->query);
    zone_remember(a, org, ctx->tz, ctx->s);
    return 0;
}

int exp_org_ctx_cached(struct exp_api *a, const char *org, struct exp_org_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->org = org;
    ctx->now_ms = exp_api_now(a);
    pthread_mutex_lock(&a->zone_lock);
    struct exp_zone_entry e = *zone_slot(a, org);
    pthread_mutex_unlock(&a->zone_lock);
    if (strcmp(e.org, org))
        return -1;
    ctx->s = settings_default(org);
    if (ctx->s->timezone != protobuf_c_empty_string)
        free(ctx->s->timezone);
    ctx->s->timezone = xstrdup(e.tz);
    ctx->s->retention_days_minutes = e.retention_days_minutes;
    ctx->s->retention_days_days = e.retention_days_days;
    org_ctx_zone(ctx, NULL);
    return 0;
}

bool exp_org_ctx_confirm(struct exp_api *a, struct exp_org_ctx *ctx,
                         const Licmon__V1__QueryReply *qr)
{
    Licmon__V1__OrgSettings *s = api_settings_in_force(qr, ctx->org);
    const char *tz = exp_view_timezone(qr, s);
    bool same = !strcmp(tz, ctx->tz) &&
                s->retention_days_minutes == ctx->s->retention_days_minutes &&
                s->retention_days_days == ctx->s->retention_days_days;
    settings_free(&ctx->s);
    ctx->s = s;
    org_ctx_zone(ctx, qr);
    zone_remember(a, ctx->org, ctx->tz, ctx->s);
    return same;
}

void exp_org_ctx_close(struct exp_org_ctx *ctx)
{
    settings_free(&ctx->s);
    PB_FREE(reply, ctx->rep);
}

const Licmon__V1__License *exp_org_license(const struct exp_org_ctx *ctx, const char *type)
{
    return settings_license(ctx->s, type);
}

static void api_licenses(struct exp_api *a, const char *org, struct exp_resp *resp)
{
    Licmon__V1__Reply *rep;
    int64_t now = exp_api_now(a);
    if (api_query(a, LICMON__V1__QUERY_KIND__LICENSES, org, now, 0, &rep, resp))
        return;
    Licmon__V1__OrgSettings *s = api_settings_in_force(rep->query, org);
    api_ok(resp, 200, exp_view_licenses(rep->query, s, now));
    settings_free(&s);
    PB_FREE(reply, rep);
}

static void api_current(struct exp_api *a, const char *org, struct exp_resp *resp)
{
    Licmon__V1__Reply *rep;
    int64_t now = exp_api_now(a);
    if (api_query(a, LICMON__V1__QUERY_KIND__CURRENT, org, now, 0, &rep, resp))
        return;
    Licmon__V1__OrgSettings *s = api_settings_in_force(rep->query, org);
    api_ok(resp, 200, exp_view_current(rep->query, s, now));
    settings_free(&s);
    PB_FREE(reply, rep);
}

/* GET /v1/orgs: the orgs p may see, each with its reporting zone (from its
 * settings in force, one SETTINGS query each). Only the administrator's
 * list comes from the aggregator (ORGS); any other token gets its own org. */
static void api_orgs(struct exp_api *a, const struct exp_principal *p, struct exp_resp *resp)
{
    Licmon__V1__Reply *rep = NULL;
    const char *own[] = {p->org};
    const char *const *names = own;
    size_t n = 1;
    switch (exp_auth_org_scope(p)) {
    case EXP_SCOPE_OWN:
        break;
    case EXP_SCOPE_ALL:
        if (api_query(a, LICMON__V1__QUERY_KIND__ORGS, "", exp_api_now(a), 0, &rep, resp))
            return;
        names = (const char *const *)rep->query->orgs;
        n = rep->query->n_orgs;
        break;
    default:
        exp_resp_error(resp, 401, "unauthorized", "a valid bearer token is required");
        resp->challenge = true;
        return;
    }
    const char **orgs = xcalloc(n + 1, sizeof(*orgs));
    char **tzs = xcalloc(n + 1, sizeof(*tzs));
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strlen(names[i]) > EXP_ORG_MAX || !settings_valid_org(names[i]))
            continue; /* a name no path could reach */
        struct exp_org_ctx ctx;
        rc = exp_org_ctx_open(a, names[i], LICMON__V1__QUERY_KIND__SETTINGS, &ctx, resp);
        if (rc == 0) {
            orgs[k] = names[i];
            tzs[k++] = xstrdup(ctx.tz);
            exp_org_ctx_close(&ctx);
        }
    }
    if (rc == 0)
        api_ok(resp, 200, exp_view_orgs(orgs, (const char *const *)tzs, k));
    for (size_t i = 0; i < k; i++)
        free(tzs[i]);
    free(tzs);
    free(orgs);
    PB_FREE(reply, rep);
}

/* The settings in force, asked of the aggregator; NULL with resp filled. */
static Licmon__V1__OrgSettings *api_get_settings(struct exp_api *a, const char *org,
                                                 int64_t timeout_ms, struct exp_resp *resp,
                                                 uint64_t *applied_seq)
{
    Licmon__V1__Reply *rep;
    if (api_query(a, LICMON__V1__QUERY_KIND__SETTINGS, org, exp_api_now(a), timeout_ms, &rep, resp))
        return NULL;
    Licmon__V1__OrgSettings *s = api_settings_in_force(rep->query, org);
    if (applied_seq)
        *applied_seq = rep->query->applied_journal_seq;
    PB_FREE(reply, rep);
    return s;
}

/* ---- settings journaled but not applied yet ----
 * The exporter is the only writer of settings, and a PUT merges into the
 * settings as they stand. The aggregator shows a change only once the
 * pipeline has carried it there: a PUT merging into its answer while the
 * pipeline is behind (a backfill, a restart) would journal a whole set
 * without the change before it. So the last set journaled for an org is
 * kept, with its journal seq, in the exporter's store (an exporter restart
 * keeps it too) until an answer of the aggregator reflects that seq; reads
 * and merges start from it meanwhile. Key: KEY_NS_ORG, the org; value: the
 * seq (8 bytes, big-endian), then the packed OrgSettings. */

static size_t pending_key(uint8_t *k, size_t cap, const char *org)
{
    size_t n = strlen(org); /* the route's org: at most 64 bytes */
    if (n > cap - 1)
        n = cap - 1;
    k[0] = KEY_NS_ORG;
    memcpy(k + 1, org, n);
    return n + 1;
}

static void pending_del(struct exp_api *a, const char *org);

/* Call with pending_lock held. *failed is set when the store cannot be
 * read (logged): then there may be pending settings NULL does not show. */
static Licmon__V1__OrgSettings *pending_get(struct exp_api *a, const char *org, uint64_t *seq,
                                            bool *failed)
{
    uint8_t k[128];
    size_t kl = pending_key(k, sizeof(k), org);
    char *v;
    size_t vl;
    int rc = a->cfg.store ? store_get(a->cfg.store, k, kl, &v, &vl) : 0;
    *failed = rc < 0;
    if (rc != 1)
        return NULL;
    Licmon__V1__OrgSettings *s =
        vl > 8 ? licmon__v1__org_settings__unpack(NULL, vl - 8, (const uint8_t *)v + 8) : NULL;
    if (s) {
        *seq = keys_get_u64((const uint8_t *)v);
    } else {
        log_warn_ctx("org", org, "unreadable pending settings in the exporter's store; dropped");
        pending_del(a, org);
    }
    free(v);
    return s;
}

/* 0, or -1 when the store failed (logged) */
static int pending_put(struct exp_api *a, const char *org, uint64_t seq,
                       const Licmon__V1__OrgSettings *s)
{
    if (!a->cfg.store)
        return 0;
    uint8_t k[128];
    size_t kl = pending_key(k, sizeof(k), org);
    size_t n = licmon__v1__org_settings__get_packed_size(s);
    uint8_t *v = xmalloc(8 + n);
    keys_put_u64(v, seq);
    licmon__v1__org_settings__pack(s, v + 8);
    struct store_batch *b = store_batch_new();
    store_batch_put(b, k, kl, v, 8 + n);
    pthread_mutex_lock(&a->pending_lock);
    int rc = store_write(a->cfg.store, b, true);
    pthread_mutex_unlock(&a->pending_lock);
    if (rc != 0)
        log_warn_ctx("org", org, "settings journaled at %llu not kept as pending",
                     (unsigned long long)seq);
    store_batch_free(&b);
    free(v);
    return rc;
}

/* Call with pending_lock held. */
static void pending_del(struct exp_api *a, const char *org)
{
    uint8_t k[128];
    size_t kl = pending_key(k, sizeof(k), org);
    struct store_batch *b = store_batch_new();
    store_batch_del(b, k, kl);
    store_write(a->cfg.store, b, false); /* if lost: deleted again at the next read */
    store_batch_free(&b);
}

/* The org's settings as the next change must start from: those journaled
 * last when the aggregator does not reflect them yet, else the
 * aggregator's. NULL with resp filled when the aggregator cannot answer. */
static Licmon__V1__OrgSettings *api_settings_latest(struct exp_api *a, const char *org,
                                                    struct exp_resp *resp)
{
    uint64_t applied = 0, seq = 0;
    Licmon__V1__OrgSettings *s = api_get_settings(a, org, 0, resp, &applied);
    if (!s)
        return NULL;
    /* read and drop in one step: a PUT may keep a newer copy meanwhile */
    bool failed;
    pthread_mutex_lock(&a->pending_lock);
    Licmon__V1__OrgSettings *p = pending_get(a, org, &seq, &failed);
    if (p && applied >= seq) {
        pending_del(a, org);
        settings_free(&p);
    }
    pthread_mutex_unlock(&a->pending_lock);
    if (failed) { /* not the aggregator's: it may lack a change journaled since */
        settings_free(&s);
        exp_resp_error(resp, 503, "unavailable",
                       "the exporter's store cannot be read: the settings last changed are "
                       "unknown");
        return NULL;
    }
    if (!p)
        return s;
    settings_free(&s);
    return p;
}

static void api_settings_get(struct exp_api *a, const char *org, struct exp_resp *resp)
{
    Licmon__V1__OrgSettings *s = api_settings_latest(a, org, resp);
    if (!s)
        return;
    api_ok(resp, 200, settings_to_json(s));
    settings_free(&s);
}

/* Parses a request body as a JSON object; NULL with a 400 in resp. */
static json_t *api_body_json(const struct exp_req *req, struct exp_resp *resp)
{
    json_error_t jerr;
    json_t *obj =
        req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!req->body_len) {
        exp_resp_error(resp, 400, "invalid json", "body: a JSON object is needed");
        return NULL;
    }
    if (!obj) {
        char detail[256];
        snprintf(detail, sizeof(detail), "body: line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        exp_resp_error(resp, 400, "invalid json", detail);
        return NULL;
    }
    return obj;
}

static bool api_settings_equal(const Licmon__V1__OrgSettings *x, const Licmon__V1__OrgSettings *y)
{
    size_t lx, ly;
    uint8_t *bx = pb_pack(&x->base, &lx), *by = pb_pack(&y->base, &ly);
    bool same = lx == ly && !memcmp(bx, by, lx);
    free(bx);
    free(by);
    if (same)
        return true;
    /* the packed form may differ in ways JSON does not show (an empty org) */
    json_t *jx = settings_to_json(x), *jy = settings_to_json(y);
    same = json_equal(jx, jy);
    json_decref(jx);
    json_decref(jy);
    return same;
}

static void api_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until the aggregator's settings equal want, so that a GET after
 * this PUT sees the change; true once they do. */
static bool api_wait_applied(struct exp_api *a, const Licmon__V1__OrgSettings *want)
{
    int64_t deadline = time_mono_ms() + a->cfg.settings_wait_ms;
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return false;
        struct exp_resp ignored = {0};
        Licmon__V1__OrgSettings *now = api_get_settings(a, want->org, left, &ignored, NULL);
        exp_resp_clear(&ignored);
        if (!now)
            return false;
        bool same = api_settings_equal(now, want);
        settings_free(&now);
        if (same)
            return true;
        api_sleep_ms(API_POLL_MS);
    }
}

static void api_settings_put(struct exp_api *a, const struct exp_principal *p, const char *org,
                             const struct exp_req *req, struct exp_resp *resp)
{
    json_t *obj = api_body_json(req, resp);
    if (!obj)
        return;
    /* two PUTs of an org must not merge into the same base */
    pthread_mutex_t *lock = &a->settings_locks[org_hash(org) % EXP_SETTINGS_LOCKS];
    pthread_mutex_lock(lock);
    Licmon__V1__OrgSettings *base = api_settings_latest(a, org, resp);
    if (!base) {
        pthread_mutex_unlock(lock);
        json_decref(obj);
        return;
    }
    char err[256] = "";
    Licmon__V1__OrgSettings *next = settings_merge_json(base, obj, err, sizeof(err));
    json_decref(obj);
    settings_free(&base);
    if (!next) {
        pthread_mutex_unlock(lock);
        exp_resp_error(resp, 400, "invalid setting", err);
        return;
    }
    exp_zone_forget(a, org);
    Licmon__V1__Request r = LICMON__V1__REQUEST__INIT;
    r.body_case = LICMON__V1__REQUEST__BODY_PUT_SETTINGS;
    r.put_settings = next;
    Licmon__V1__Reply *rep = NULL;
    enum exp_upstream_result res = exp_upstream_call(a->cfg.ingest, &r, 0, &rep);
    if (res != EXP_UP_OK || rep->error[0] ||
        rep->body_case != LICMON__V1__REPLY__BODY_JOURNALED_SEQ) {
        pthread_mutex_unlock(lock);
        exp_api_upstream_failed(a->cfg.ingest, res, rep, resp);
        PB_FREE(reply, rep);
        settings_free(&next);
        return;
    }
    uint64_t seq = rep->journaled_seq;
    PB_FREE(reply, rep);
    bool kept = pending_put(a, org, seq, next) == 0;
    pthread_mutex_unlock(lock);
    metric_add(a->m_settings, 1);
    log_info_ctx("org", org, "settings changed by token %s, journaled at seq %llu", p->id,
                 (unsigned long long)seq);
    bool applied = api_wait_applied(a, next);
    if (!applied)
        log_warn_ctx("org", org,
                     "settings journaled at seq %llu are not visible in the aggregator yet",
                     (unsigned long long)seq);
    exp_zone_forget(a, org);
    if (!applied && !kept) /* the next change would start from the settings before it */
        exp_resp_error(resp, 503, "unavailable",
                       "the settings were journaled but are not applied yet, and the exporter's "
                       "store failed to keep them: read them back before another change");
    else
        api_ok(resp, 200, settings_to_json(next));
    settings_free(&next);
}

static void api_token_list(struct exp_api *a, struct exp_resp *resp)
{
    json_t *list = exp_tokens_list(a->cfg.tokens);
    if (list)
        api_ok(resp, 200, list);
    else
        exp_resp_error(resp, 503, "unavailable", "the token table cannot be read");
}

static void api_token_create(struct exp_api *a, const struct exp_req *req, struct exp_resp *resp)
{
    json_t *obj = api_body_json(req, resp);
    if (!obj)
        return;
    const char *org = json_string_value(json_object_get(obj, "org"));
    const char *role = json_string_value(json_object_get(obj, "role"));
    enum exp_role r;
    if (!json_is_object(obj)) {
        exp_resp_error(resp, 400, "bad request", "body: must be a JSON object");
    } else if (!org || strlen(org) > EXP_ORG_MAX || !settings_valid_org(org)) {
        exp_resp_error(resp, 400, "bad request", "org: must match [A-Za-z0-9._-]{1,64}");
    } else if (!role || exp_role_parse(role, &r) != 0) {
        exp_resp_error(resp, 400, "bad request", "role: must be \"org_admin\" or \"service\"");
    } else {
        struct exp_token_rec rec;
        char *secret = NULL;
        if (exp_tokens_create(a->cfg.tokens, org, r, exp_api_now(a), &rec, &secret) != 0) {
            exp_resp_error(resp, 500, "internal", "the token could not be stored");
        } else {
            char created[40];
            time_format_rfc3339(rec.created_ms, created, sizeof(created));
            api_ok(resp, 201,
                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", rec.id, "token", secret, "org",
                             rec.org, "role", exp_role_name(rec.role), "created", created));
            metric_add(a->m_tokens_created, 1);
            log_info_ctx("org", rec.org, "token %s created with role %s", rec.id,
                         exp_role_name(rec.role));
            explicit_bzero(secret, strlen(secret));
            free(secret);
        }
    }
    json_decref(obj);
}

static void api_token_revoke(struct exp_api *a, const char *id, struct exp_resp *resp)
{
    int rc = exp_tokens_revoke(a->cfg.tokens, id);
    if (rc < 0) {
        exp_resp_error(resp, 500, "internal", "the token table could not be changed");
    } else if (rc == 0) {
        exp_resp_error(resp, 404, "not found", "no such token");
    } else {
        api_ok(resp, 204, NULL);
        metric_add(a->m_tokens_revoked, 1);
        log_info_ctx("token", id, "token revoked");
    }
}

/* 4xx answers of routing and access control. */
static void api_refuse(struct exp_api *a, int status, const struct exp_route *r,
                       struct exp_resp *resp)
{
    char detail[160];
    switch (status) {
    case 401:
        exp_resp_error(resp, 401, "unauthorized", "a valid bearer token is required");
        resp->challenge = true;
        metric_add(a->m_denied, 1);
        break;
    case 403:
        exp_resp_error(resp, 403, "forbidden",
                       r->kind == EXP_ROUTE_TOKENS || r->kind == EXP_ROUTE_TOKEN
                           ? "only the administrator token may manage tokens"
                           : "this token may only read");
        metric_add(a->m_denied, 1);
        break;
    case 404:
        if (r->has_org) {
            exp_resp_error(resp, 404, "not found", "no such org");
            metric_add(a->m_denied, 1);
        } else {
            exp_resp_error(resp, 404, "not found", "no such path");
        }
        break;
    case 405:
        snprintf(detail, sizeof(detail), "this path takes %s", r->allow);
        exp_resp_error(resp, 405, "method not allowed", detail);
        resp->allow = r->allow;
        break;
    default:
        snprintf(detail, sizeof(detail), "%s: %s", r->bad_param ? r->bad_param : "path",
                 r->bad_reason ? r->bad_reason : "is not valid");
        exp_resp_error(resp, 400, "bad request", detail);
        break;
    }
}

/* The routes whose handlers read no query parameter: one given there is a
 * 400 like anywhere else, not silently ignored (current?type=creator would
 * otherwise answer every type). */
static bool route_takes_no_params(enum exp_route_kind kind)
{
    switch (kind) {
    case EXP_ROUTE_LICENSES:
    case EXP_ROUTE_CURRENT:
    case EXP_ROUTE_SETTINGS:
    case EXP_ROUTE_TOKENS:
    case EXP_ROUTE_TOKEN:
    case EXP_ROUTE_ORGS:
        return true;
    default:
        return false;
    }
}

void exp_api_handle(struct exp_api *a, const struct exp_req *req, struct exp_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct exp_route r;
    int st = exp_route_match(req->method, req->path, &r);
    struct exp_principal p;
    memset(&p, 0, sizeof(p));
    if (r.v1) {
        if (exp_auth_identify(&a->auth, req->authorization, &p) != 0) {
            exp_resp_error(resp, 503, "unavailable", "the token table cannot be read");
            return;
        }
        if (p.role == EXP_ROLE_NONE) {
            api_refuse(a, 401, &r, resp);
            return;
        }
    }
    if (st == 0 && (!r.v1 || r.kind == EXP_ROUTE_HEALTH))
        st = 404; /* /healthz and /metrics are answered before us */
    if (st == 404) {
        r.has_org = false; /* an unknown path says nothing about orgs */
        api_refuse(a, 404, &r, resp);
        return;
    }
    if (st != 0) {
        api_refuse(a, st, &r, resp);
        return;
    }
    st = exp_auth_decide(&p, &r);
    if (st != 0) {
        api_refuse(a, st, &r, resp);
        return;
    }
    if (req->body_too_big) {
        char detail[96];
        snprintf(detail, sizeof(detail), "body: more than %d bytes", EXP_API_BODY_MAX);
        exp_resp_error(resp, 413, "payload too large", detail);
        return;
    }
    struct exp_params none;
    if (route_takes_no_params(r.kind) && exp_api_params(req, EXP_EP_NONE, &none, resp))
        return;
    switch (r.kind) {
    case EXP_ROUTE_LICENSES:
        api_licenses(a, r.org, resp);
        break;
    case EXP_ROUTE_CURRENT:
        api_current(a, r.org, resp);
        break;
    case EXP_ROUTE_SETTINGS:
        if (r.method == EXP_M_PUT)
            api_settings_put(a, &p, r.org, req, resp);
        else
            api_settings_get(a, r.org, resp);
        break;
    case EXP_ROUTE_TOKENS:
        if (r.method == EXP_M_POST)
            api_token_create(a, req, resp);
        else
            api_token_list(a, resp);
        break;
    case EXP_ROUTE_TOKEN:
        api_token_revoke(a, r.id, resp);
        break;
    case EXP_ROUTE_ORGS:
        api_orgs(a, &p, resp);
        break;
    case EXP_ROUTE_USAGE:
        exp_api_usage(a, r.org, req, resp);
        break;
    case EXP_ROUTE_STATS:
        exp_api_stats(a, r.org, req, resp);
        break;
    case EXP_ROUTE_SESSIONS:
        exp_api_sessions(a, r.org, req, resp);
        break;
    case EXP_ROUTE_EXPORT:
        exp_api_export(a, r.org, req, resp);
        break;
    case EXP_ROUTE_REPORT:
        exp_api_report(a, r.org, req, resp);
        break;
    default:
        log_panic("route %d matched but has no handler", (int)r.kind);
    }
    if (resp->status != 204 && !exp_resp_has_body(resp) && r.method != EXP_M_HEAD) {
        log_warn_ctx("path", req->path, "an answer could not be built");
        exp_resp_error(resp, 500, "internal", "the answer could not be built");
    }
}
