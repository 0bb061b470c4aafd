/* exp_api_int: what the handler files of the API share (exp_api.c: access
 * and settings; exp_read.c: usage, stats, sessions, report; exp_export.c:
 * exports and the session streams). Private to exporter/. */
#ifndef EXP_API_INT_H
#define EXP_API_INT_H
#include "exp_api.h"
#include "exp_params.h"
#include "health.h"
#include "prog.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define EXP_ZONE_CACHE 256    /* orgs whose zone and retention are remembered */
#define EXP_SETTINGS_LOCKS 16 /* settings changes of orgs hashing alike wait for each other */

/* What the read endpoints need to know of an org before asking for data:
 * its zone and retention. Remembered from every answer, so a usage or
 * stats request makes one round trip instead of two; the answer's own
 * settings are always checked against what was assumed (exp_org_ctx_confirm). */
struct exp_zone_entry {
    char org[EXP_ORG_MAX + 1];
    char tz[72];
    int64_t retention_days_minutes, retention_days_days;
};

struct exp_api {
    struct exp_api_config cfg;
    struct exp_auth auth;
    struct metric *m_settings, *m_tokens_created, *m_tokens_revoked, *m_denied;
    struct metric *m_exports, *m_export_rows, *m_stream_failed;
    atomic_uint exports_running;
    pthread_mutex_t zone_lock;
    pthread_mutex_t clock_lock; /* the HTTP threads share one clock */
    struct prog_clock clock;    /* "now" (README: a clock that is wrong) */
    /* one settings change of an org at a time (read, merge, journal), by
     * org hash; pending_lock guards the kept copies (no network inside) */
    pthread_mutex_t settings_locks[EXP_SETTINGS_LOCKS];
    pthread_mutex_t pending_lock;
    struct exp_zone_entry zones[EXP_ZONE_CACHE];
};

/* What every read endpoint starts from: the org's settings in force and
 * the clock, from a first query (kind SETTINGS or LICENSES). */
struct exp_org_ctx {
    const char *org;
    int64_t now_ms;
    Licmon__V1__Reply *rep;     /* the first answer (owned) */
    Licmon__V1__OrgSettings *s; /* settings in force (owned) */
    const char *tz;             /* the reporting zone (in s or rep) */
    const struct tz *z;
    int64_t today; /* local date now */
};

int64_t exp_api_now(struct exp_api *a);
/* Asks the aggregator q (kind and org set by the caller); 0 with *rep (a
 * query answer), or -1 with resp filled (503 / 502). */
int exp_api_ask(struct exp_api *a, Licmon__V1__Query *q, Licmon__V1__Reply **rep,
                struct exp_resp *resp);
/* Fills resp with the answer to an upstream that failed; returns -1. */
int exp_api_upstream_failed(struct exp_upstream *u, enum exp_upstream_result res,
                            const Licmon__V1__Reply *rep, struct exp_resp *resp);
/* Opens ctx with a first query of `kind`; 0, or -1 with resp filled. */
int exp_org_ctx_open(struct exp_api *a, const char *org, Licmon__V1__QueryKind kind,
                     struct exp_org_ctx *ctx, struct exp_resp *resp);
/* Opens ctx from the zone cache without asking anything (ctx->rep NULL,
 * ctx->s the defaults with the remembered zone and retention); 0, or -1
 * when the org is not remembered. */
int exp_org_ctx_cached(struct exp_api *a, const char *org, struct exp_org_ctx *ctx);
/* After a data query answered qr for a ctx opened from the cache: true
 * when its zone and retention are the ones assumed (ctx->s becomes the
 * answer's settings); false when they changed: ctx now holds the answer's
 * and the query must be asked again. Remembers them either way. */
bool exp_org_ctx_confirm(struct exp_api *a, struct exp_org_ctx *ctx,
                         const Licmon__V1__QueryReply *qr);
/* Forgets what is remembered of org (its settings are being changed). */
void exp_zone_forget(struct exp_api *a, const char *org);
void exp_org_ctx_close(struct exp_org_ctx *ctx);
/* The license of a type in the settings in force, or NULL. */
const Licmon__V1__License *exp_org_license(const struct exp_org_ctx *ctx, const char *type);
/* Asks STATS for type over per (an empty period asks for its nearest
 * single day: the cards then count nothing of it). The answer (its stats
 * set), or NULL with resp filled. */
Licmon__V1__Reply *exp_api_ask_stats(struct exp_api *a, const struct exp_org_ctx *ctx,
                                     const char *type, const struct exp_period *per,
                                     int threshold_pct, struct exp_resp *resp);
/* 400 {"error":"invalid parameter","detail":...}. */
void exp_api_bad_param(struct exp_resp *resp, const char *detail);
/* Parses the request's query string for ep; 0, or -1 with a 400 in resp. */
int exp_api_params(const struct exp_req *req, enum exp_endpoint ep, struct exp_params *p,
                   struct exp_resp *resp);
/* Sets resp to a 200 text body (taken). */
void exp_api_text(struct exp_resp *resp, char *text, size_t len, const char *content_type);

/* The handlers (the route and the caller's rights are checked). */
void exp_api_usage(struct exp_api *a, const char *org, const struct exp_req *req,
                   struct exp_resp *resp);
void exp_api_stats(struct exp_api *a, const char *org, const struct exp_req *req,
                   struct exp_resp *resp);
void exp_api_sessions(struct exp_api *a, const char *org, const struct exp_req *req,
                      struct exp_resp *resp);
void exp_api_report(struct exp_api *a, const char *org, const struct exp_req *req,
                    struct exp_resp *resp);
void exp_api_export(struct exp_api *a, const char *org, const struct exp_req *req,
                    struct exp_resp *resp);

#endif
