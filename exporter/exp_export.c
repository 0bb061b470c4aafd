/* exp_export: GET /v1/orgs/{org}/export?format=xlsx|csv|json|ndjson. csv,
 * json and ndjson are streamed from the session chunks as they come; xlsx
 * is written by exp_xlsx in constant-memory mode into a temp file (unlinked
 * at once, so nothing is left behind) that is then sent. Either way memory
 * stays flat however many sessions there are. */
#include "exp_export.h"
#include "exp_api_int.h"
#include "exp_buf.h"
#include "exp_csv.h"
#include "exp_sessions.h"
#include "exp_view.h"
#include "exp_xlsx.h"
#include "log.h"
#include "xmem.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_DEFAULT_MAX 2

static const char *export_ext(enum exp_format f)
{
    switch (f) {
    case EXP_FMT_XLSX:
        return "xlsx";
    case EXP_FMT_CSV:
        return "csv";
    case EXP_FMT_NDJSON:
        return "ndjson";
    default:
        return "json";
    }
}

static const char *export_content_type(enum exp_format f)
{
    switch (f) {
    case EXP_FMT_XLSX:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    case EXP_FMT_CSV:
        return "text/csv; charset=utf-8; header=present";
    case EXP_FMT_NDJSON:
        return "application/x-ndjson";
    default:
        return "application/json";
    }
}

/* Everything an export needs besides the sessions. */
struct export_job {
    struct exp_api *a;
    struct exp_org_ctx ctx;
    struct exp_params p;
    struct exp_period per;
    char from[16], to[16], afrom[16], ato[16];
    /* the sessions' part of the period: sessions are kept for the minute
     * retention, the day rows for the (longer) day retention */
    struct exp_period sper;
    char sfrom[16], sto[16];
    json_t *stats, *licenses;
};

/* The types of the Daily usage part: the one asked, or "all" and then
 * every type the licenses view lists. */
static size_t export_types(const struct export_job *j, const char ***types, int64_t **owned)
{
    json_t *rows = json_object_get(j->licenses, "licenses");
    size_t n = strcmp(j->p.type, "all") ? 1 : 1 + json_array_size(rows);
    *types = xcalloc(n, sizeof(**types));
    *owned = xcalloc(n, sizeof(**owned));
    (*types)[0] = j->p.type;
    if (strcmp(j->p.type, "all")) {
        const Licmon__V1__License *l = exp_org_license(&j->ctx, j->p.type);
        (*owned)[0] = l ? l->owned : 0;
        return 1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        (*types)[i + 1] = json_string_value(json_object_get(r, "type"));
        (*owned)[i + 1] = json_integer_value(json_object_get(r, "owned"));
    }
    return n;
}

/* Whether the sessions start later than the period's day rows (or none of
 * the period's are kept). */
static bool export_sessions_cut(const struct export_job *j)
{
    return !j->per.empty && (j->sper.empty || j->sper.from > j->per.from);
}

/* The day rows of one type; NULL with resp filled. */
static Licmon__V1__Reply *export_days(struct export_job *j, const char *type, struct exp_resp *resp)
{
    Licmon__V1__Query q = LICMON__V1__QUERY__INIT;
    q.kind = LICMON__V1__QUERY_KIND__USAGE;
    q.org = (char *)j->ctx.org;
    q.license_type = (char *)type;
    q.now_ms = j->ctx.now_ms;
    q.granularity = LICMON__V1__GRANULARITY__DAY;
    q.from_date = j->from;
    q.to_date = j->to;
    Licmon__V1__Reply *rep = NULL;
    return exp_api_ask(j->a, &q, &rep, resp) ? NULL : rep;
}

static struct exp_sess_src *export_src(struct export_job *j)
{
    struct exp_sess_query sq = {.org = j->ctx.org,
                                .type = j->p.type,
                                .user = j->p.has_user ? j->p.user : NULL,
                                .from = j->sfrom,
                                .to = j->sto,
                                .now_ms = j->ctx.now_ms,
                                .chunk = j->a->cfg.session_chunk,
                                .timeout_ms = j->a->cfg.query_timeout_ms};
    return exp_sess_src_new(j->a->cfg.aggregator, &sq);
}

/* Starts the sessions; NULL with resp filled. An empty period has none. */
static struct exp_sess_src *export_start(struct export_job *j, struct exp_resp *resp)
{
    struct exp_sess_src *src = export_src(j);
    if (j->sper.empty)
        return src;
    enum exp_upstream_result res;
    Licmon__V1__Reply *rep;
    if (exp_sess_src_start(src, &res, &rep) != 0) {
        exp_api_upstream_failed(j->a->cfg.aggregator, res, rep, resp);
        PB_FREE(reply, rep);
        exp_sess_src_free(&src);
        return NULL;
    }
    return src;
}

/* ---- json: one object, its sessions streamed last ---- */

static char *export_json_head(struct export_job *j, struct exp_resp *resp)
{
    struct exp_buf b = {0};
    char t[40];
    exp_buf_addc(&b, '{');
    exp_buf_json_key(&b, "org", true);
    exp_buf_json_str(&b, j->ctx.org);
    exp_buf_json_key(&b, "timezone", false);
    exp_buf_json_str(&b, j->ctx.tz);
    exp_buf_json_key(&b, "type", false);
    exp_buf_json_str(&b, j->p.type);
    /* user=: whose sessions these are (null: every user's); the stats and
     * daily usage cover every user either way */
    exp_buf_json_key(&b, "user", false);
    if (j->p.has_user)
        exp_buf_json_str(&b, j->p.user);
    else
        exp_buf_adds(&b, "null");
    exp_buf_json_key(&b, "from", false);
    exp_buf_json_str(&b, j->from);
    exp_buf_json_key(&b, "to", false);
    exp_buf_json_str(&b, j->to);
    if (j->per.clamped) {
        exp_buf_json_key(&b, "requested_from", false);
        exp_buf_json_str(&b, j->afrom);
        exp_buf_json_key(&b, "requested_to", false);
        exp_buf_json_str(&b, j->ato);
    }
    exp_buf_json_key(&b, "clamped", false);
    exp_buf_adds(&b, j->per.clamped ? "true" : "false");
    /* the dates the sessions cover (fewer when the minute retention cuts
     * them), null when there are none */
    const char *const sdates[2][2] = {{"sessions_from", j->sfrom}, {"sessions_to", j->sto}};
    for (int i = 0; i < 2; i++) {
        exp_buf_json_key(&b, sdates[i][0], false);
        if (j->sper.empty)
            exp_buf_adds(&b, "null");
        else
            exp_buf_json_str(&b, sdates[i][1]);
    }
    exp_buf_json_key(&b, "generated_at", false);
    exp_buf_json_str(&b, time_format_rfc3339(j->ctx.now_ms, t, sizeof(t)));
    char *dump = json_dumps(j->stats, JSON_COMPACT | JSON_REAL_PRECISION(12));
    exp_buf_json_key(&b, "stats", false);
    exp_buf_adds(&b, dump ? dump : "null");
    free(dump);
    dump = json_dumps(j->licenses, JSON_COMPACT | JSON_REAL_PRECISION(12));
    exp_buf_json_key(&b, "licenses", false);
    exp_buf_adds(&b, dump ? dump : "null");
    free(dump);
    exp_buf_json_key(&b, "daily", false);
    exp_buf_addc(&b, '[');
    const char **types;
    int64_t *owned;
    size_t n = export_types(j, &types, &owned);
    for (size_t i = 0; i < n; i++) {
        Licmon__V1__Reply *rep = j->per.empty ? NULL : export_days(j, types[i], resp);
        if (!j->per.empty && !rep) {
            free(types);
            free(owned);
            exp_buf_free(&b);
            return NULL;
        }
        exp_buf_adds(&b, i ? ",\n{" : "\n{");
        exp_buf_json_key(&b, "type", true);
        exp_buf_json_str(&b, types[i]);
        /* null for all types together: no capacity (the xlsx leaves the
         * cell empty, the dashboard draws no owned line); stats.owned is
         * still /stats's sum */
        exp_buf_json_key(&b, "owned", false);
        if (exp_view_has_capacity(types[i]))
            exp_buf_int(&b, owned[i]);
        else
            exp_buf_adds(&b, "null");
        exp_buf_json_key(&b, "rows", false);
        exp_buf_addc(&b, '[');
        for (size_t k = 0; rep && k < rep->query->n_rows; k++) {
            if (k)
                exp_buf_addc(&b, ',');
            exp_view_usage_row(&b, rep->query->rows[k], LICMON__V1__GRANULARITY__DAY, j->ctx.z);
        }
        exp_buf_adds(&b, "]}");
        PB_FREE(reply, rep);
    }
    free(types);
    free(owned);
    exp_buf_adds(&b, "],\n\"sessions\":[");
    return exp_buf_steal(&b, NULL);
}

/* ---- xlsx: built into a temp file, then sent from it ---- */

static int export_xlsx(struct export_job *j, struct exp_resp *resp)
{
    const char *dir = j->a->cfg.tmpdir && *j->a->cfg.tmpdir ? j->a->cfg.tmpdir : "/tmp";
    char *path = xasprintf("%s/licmon-export-XXXXXX.xlsx", dir);
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        log_warn("cannot make a temp file in %s: %s", dir, strerror(errno));
        exp_resp_error(resp, 500, "internal", "the export could not be written");
        free(path);
        return -1;
    }
    close(fd);
    char err[256];
    struct exp_xlsx *x = exp_xlsx_new(path, dir, j->a->cfg.xlsx_max_rows, err, sizeof(err));
    struct exp_sess_src *src = NULL;
    if (!x) {
        log_warn("%s", err);
        exp_resp_error(resp, 500, "internal", "the export could not be written");
        goto fail;
    }
    const char **types;
    int64_t *owned;
    size_t n = export_types(j, &types, &owned);
    for (size_t i = 0; i < n && !j->per.empty; i++) {
        Licmon__V1__Reply *rep = export_days(j, types[i], resp);
        if (!rep) {
            free(types);
            free(owned);
            goto fail;
        }
        for (size_t k = 0; k < rep->query->n_rows; k++)
            exp_xlsx_daily(x, types[i], exp_view_has_capacity(types[i]) ? owned[i] : 0,
                           rep->query->rows[k]);
        PB_FREE(reply, rep);
    }
    free(types);
    free(owned);
    src = export_start(j, resp);
    if (!src)
        goto fail;
    const Licmon__V1__SessionRecord *rec;
    int rc = 0;
    while (!j->sper.empty && (rc = exp_sess_src_next(src, &rec)) == 1)
        exp_xlsx_session(x, rec);
    if (rc < 0) {
        metric_add(j->a->m_stream_failed, 1);
        exp_resp_error(resp, 503, "unavailable", "the aggregator stopped answering mid-export");
        goto fail;
    }
    metric_add(j->a->m_export_rows, (int64_t)exp_xlsx_session_count(x));
    exp_sess_src_free(&src);
    struct exp_xlsx_summary sum = {.org = j->ctx.org,
                                   .type = j->p.type,
                                   .user = j->p.has_user ? j->p.user : NULL,
                                   .timezone = j->ctx.tz,
                                   .from = j->from,
                                   .to = j->to,
                                   .asked_from = j->per.clamped ? j->afrom : NULL,
                                   .asked_to = j->per.clamped ? j->ato : NULL,
                                   .sessions_cut = export_sessions_cut(j),
                                   .sessions_from = j->sper.empty ? NULL : j->sfrom,
                                   .session_days = j->ctx.s->retention_days_minutes,
                                   .generated_ms = j->ctx.now_ms,
                                   .stats = j->stats,
                                   .licenses = j->licenses};
    if (exp_xlsx_finish(&x, &sum, err, sizeof(err)) != 0) {
        log_warn_ctx("org", j->ctx.org, "%s", err);
        exp_resp_error(resp, 500, "internal", "the export could not be written");
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        log_warn("cannot read back %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        exp_resp_error(resp, 500, "internal", "the export could not be written");
        goto fail;
    }
    unlink(path); /* the open descriptor keeps it until it is sent */
    free(path);
    resp->status = 200;
    resp->has_fd = true;
    resp->fd = fd;
    resp->fd_size = (uint64_t)sb.st_size;
    return 0;
fail:
    exp_xlsx_abandon(&x);
    exp_sess_src_free(&src);
    unlink(path);
    free(path);
    return -1;
}

/* The part of a file name that names user=: "-user-<id>", every character
 * of the id that is not [A-Za-z0-9._@-] (a byte of bad UTF-8 too) as one
 * '_', at most EXPORT_NAME_USER_MAX of them; "" without the filter. */
#define EXPORT_NAME_USER_MAX 64
static char *export_name_user(const struct exp_params *p)
{
    if (!p->has_user)
        return xstrdup("");
    struct exp_buf b = {0};
    exp_buf_adds(&b, "-user-");
    const unsigned char *u = (const unsigned char *)p->user;
    size_t n = strlen(p->user);
    for (size_t i = 0, kept = 0; i < n && kept < EXPORT_NAME_USER_MAX; kept++) {
        size_t k = exp_utf8_seq(u + i, n - i);
        bool plain = k == 1 && (isalnum(u[i]) || strchr("._@-", u[i]));
        exp_buf_addc(&b, plain ? (char)u[i] : '_');
        i += k ? k : 1;
    }
    return exp_buf_steal(&b, NULL);
}

void exp_api_export(struct exp_api *a, const char *org, const struct exp_req *req,
                    struct exp_resp *resp)
{
    struct export_job j = {.a = a};
    if (exp_api_params(req, EXP_EP_EXPORT, &j.p, resp))
        return;
    if (exp_org_ctx_open(a, org, LICMON__V1__QUERY_KIND__LICENSES, &j.ctx, resp))
        return;
    exp_params_period(&j.p, j.ctx.today, j.ctx.s->retention_days_days, &j.per);
    time_format_date(j.per.empty ? j.per.asked_from : j.per.from, j.from, sizeof(j.from));
    time_format_date(j.per.empty ? j.per.asked_to : j.per.to, j.to, sizeof(j.to));
    time_format_date(j.per.asked_from, j.afrom, sizeof(j.afrom));
    time_format_date(j.per.asked_to, j.ato, sizeof(j.ato));
    /* the sessions: from the first date the minute retention keeps whole
     * (and no further back than the day rows) */
    int64_t sfirst =
        exp_params_first_minute_day(j.ctx.tz, j.ctx.now_ms, j.ctx.s->retention_days_minutes);
    int64_t dfirst = exp_params_first_day(j.ctx.today, j.ctx.s->retention_days_days);
    exp_params_period_since(&j.p, sfirst > dfirst ? sfirst : dfirst, j.ctx.today, &j.sper);
    time_format_date(j.sper.empty ? j.sper.asked_from : j.sper.from, j.sfrom, sizeof(j.sfrom));
    time_format_date(j.sper.empty ? j.sper.asked_to : j.sper.to, j.sto, sizeof(j.sto));
    enum exp_format f = j.p.format;
    bool head = !strcmp(req->method, "HEAD");
    unsigned max = a->cfg.max_exports ? a->cfg.max_exports : EXPORT_DEFAULT_MAX;
    bool counted = false;
    if (f == EXP_FMT_XLSX && !head) {
        if (atomic_fetch_add(&a->exports_running, 1) >= max) {
            atomic_fetch_sub(&a->exports_running, 1);
            exp_resp_error(resp, 503, "busy",
                           "other xlsx exports are being written; try again shortly");
            goto out;
        }
        counted = true;
    }
    if (f == EXP_FMT_XLSX || f == EXP_FMT_JSON)
        j.licenses = exp_view_licenses(j.ctx.rep->query, j.ctx.s, j.ctx.now_ms);
    if (!head && (f == EXP_FMT_XLSX || f == EXP_FMT_JSON)) {
        /* the cards of the period, as GET /stats answers them */
        Licmon__V1__Reply *rep = exp_api_ask_stats(a, &j.ctx, j.p.type, &j.per, 0, resp);
        if (!rep)
            goto out;
        j.stats = exp_view_stats(rep->query->stats, exp_org_license(&j.ctx, j.p.type), j.ctx.z);
        PB_FREE(reply, rep);
    }
    if (head) {
        resp->status = 200;
    } else if (f == EXP_FMT_XLSX) {
        if (export_xlsx(&j, resp) != 0)
            goto out;
    } else if (f == EXP_FMT_JSON) {
        char *head_text = export_json_head(&j, resp);
        if (!head_text)
            goto out;
        struct exp_sess_src *src = export_start(&j, resp);
        if (!src) {
            free(head_text);
            goto out;
        }
        if (j.sper.empty) {
            size_t l = strlen(head_text);
            head_text = xrealloc(head_text, l + 4);
            memcpy(head_text + l, "]}\n", 4);
            exp_api_text(resp, head_text, l + 3, NULL);
            exp_sess_src_free(&src);
        } else {
            resp->status = 200;
            resp->stream = exp_sess_stream(src, EXP_SESS_JSON, head_text, xstrdup("]}\n"),
                                           a->m_export_rows, a->m_stream_failed);
        }
    } else {
        struct exp_sess_src *src = export_start(&j, resp);
        if (!src)
            goto out;
        struct exp_buf h = {0};
        if (f == EXP_FMT_CSV)
            exp_csv_session_header(&h);
        char *prefix = exp_buf_steal(&h, NULL);
        if (j.sper.empty) {
            exp_api_text(resp, prefix, strlen(prefix), NULL);
            exp_sess_src_free(&src);
        } else {
            resp->status = 200;
            resp->stream = exp_sess_stream(src, f == EXP_FMT_CSV ? EXP_SESS_CSV : EXP_SESS_NDJSON,
                                           prefix, NULL, a->m_export_rows, a->m_stream_failed);
        }
    }
    resp->content_type = export_content_type(f);
    /* csv and ndjson hold only sessions: their name says which dates */
    bool only_sessions = f == EXP_FMT_CSV || f == EXP_FMT_NDJSON;
    char *who = export_name_user(&j.p); /* a filtered export says whose sessions */
    resp->filename = xasprintf("licmon-%s-%s%s-%s_%s.%s", org, j.p.type, who,
                               only_sessions && !j.sper.empty ? j.sfrom : j.from,
                               only_sessions && !j.sper.empty ? j.sto : j.to, export_ext(f));
    free(who);
    resp->timezone = xstrdup(j.ctx.tz);
    metric_add(a->m_exports, 1);
out:
    if (counted)
        atomic_fetch_sub(&a->exports_running, 1);
    json_decref(j.stats);
    json_decref(j.licenses);
    exp_org_ctx_close(&j.ctx);
}

void exp_export_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (!strncmp(e->d_name, "licmon-export-", 14) && n > 5 &&
            !strcmp(e->d_name + n - 5, ".xlsx")) {
            char *p = xasprintf("%s/%s", dir, e->d_name);
            if (unlink(p) == 0)
                log_info("removed the unfinished export %s", p);
            free(p);
        }
    }
    closedir(d);
}
