/* exp_route: path routing of the HTTP API (see exp_route.h). Paths are
 * split on '/' exactly: no empty segments, no trailing slash, so one
 * resource has one spelling. MHD has already percent-decoded the path. */
#include "exp_route.h"
#include "settings.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define ROUTE_MAX_SEGS 6
#define ROUTE_SEG_MAX 256

/* the read-only org paths beside licenses and current */
static const struct {
    const char *name;
    enum exp_route_kind kind;
} route_reads[] = {{"usage", EXP_ROUTE_USAGE},
                   {"stats", EXP_ROUTE_STATS},
                   {"sessions", EXP_ROUTE_SESSIONS},
                   {"export", EXP_ROUTE_EXPORT},
                   {"report", EXP_ROUTE_REPORT}};

enum exp_method exp_route_method(const char *m)
{
    static const struct {
        const char *name;
        enum exp_method m;
    } t[] = {{"GET", EXP_M_GET},
             {"HEAD", EXP_M_HEAD},
             {"PUT", EXP_M_PUT},
             {"POST", EXP_M_POST},
             {"DELETE", EXP_M_DELETE}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(m, t[i].name))
            return t[i].m;
    return EXP_M_OTHER;
}

bool exp_route_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > EXP_ID_MAX)
        return false;
    for (; *id; id++)
        if (!isalnum((unsigned char)*id) && *id != '_' && *id != '-')
            return false;
    return true;
}

/* Splits path into at most ROUTE_MAX_SEGS segments; -1 when it has an empty
 * segment, too many or too long ones. */
static int route_split(const char *path, char segs[ROUTE_MAX_SEGS][ROUTE_SEG_MAX])
{
    if (path[0] != '/')
        return -1;
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len >= ROUTE_SEG_MAX || n >= ROUTE_MAX_SEGS)
            return -1;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

static bool route_allows(enum exp_method m, bool get, bool put, bool post, bool del)
{
    return ((m == EXP_M_GET || m == EXP_M_HEAD) && get) || (m == EXP_M_PUT && put) ||
           (m == EXP_M_POST && post) || (m == EXP_M_DELETE && del);
}

static int route_org(struct exp_route *r, const char *org)
{
    r->has_org = true;
    if (strlen(org) > EXP_ORG_MAX || !settings_valid_org(org)) {
        r->bad_param = "org";
        r->bad_reason = "must match [A-Za-z0-9._-]{1,64}";
        return 400;
    }
    snprintf(r->org, sizeof(r->org), "%s", org);
    return 0;
}

int exp_route_match(const char *method, const char *path, struct exp_route *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = EXP_ROUTE_NONE;
    r->method = exp_route_method(method);
    r->write = r->method == EXP_M_PUT || r->method == EXP_M_POST || r->method == EXP_M_DELETE ||
               r->method == EXP_M_OTHER;
    r->v1 = !strcmp(path, "/v1") || !strncmp(path, "/v1/", 4);
    if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics")) {
        r->kind = EXP_ROUTE_HEALTH;
        r->allow = "GET, HEAD";
        return route_allows(r->method, true, false, false, false) ? 0 : 405;
    }
    char segs[ROUTE_MAX_SEGS][ROUTE_SEG_MAX];
    int n = route_split(path, segs);
    if (n < 2 || strcmp(segs[0], "v1"))
        return 404;
    if (!strcmp(segs[1], "tokens")) {
        if (n == 2) {
            r->kind = EXP_ROUTE_TOKENS;
            r->allow = "GET, HEAD, POST";
            return route_allows(r->method, true, false, true, false) ? 0 : 405;
        }
        if (n != 3)
            return 404;
        r->kind = EXP_ROUTE_TOKEN;
        r->allow = "DELETE";
        if (!route_allows(r->method, false, false, false, true))
            return 405;
        if (!exp_route_valid_id(segs[2])) {
            r->bad_param = "id";
            r->bad_reason = "must match [A-Za-z0-9_-]{1,64}";
            return 400;
        }
        snprintf(r->id, sizeof(r->id), "%s", segs[2]);
        return 0;
    }
    if (!strcmp(segs[1], "orgs") && n == 2) {
        r->kind = EXP_ROUTE_ORGS;
        r->allow = "GET, HEAD";
        return route_allows(r->method, true, false, false, false) ? 0 : 405;
    }
    if (strcmp(segs[1], "orgs") || n != 4)
        return 404;
    const char *what = segs[3];
    if (!strcmp(what, "licenses") || !strcmp(what, "current")) {
        r->kind = what[0] == 'l' ? EXP_ROUTE_LICENSES : EXP_ROUTE_CURRENT;
        r->allow = "GET, HEAD";
        if (!route_allows(r->method, true, false, false, false))
            return 405;
        return route_org(r, segs[2]);
    }
    if (!strcmp(what, "settings")) {
        r->kind = EXP_ROUTE_SETTINGS;
        r->allow = "GET, HEAD, PUT";
        if (!route_allows(r->method, true, true, false, false))
            return 405;
        return route_org(r, segs[2]);
    }
    for (size_t i = 0; i < sizeof(route_reads) / sizeof(route_reads[0]); i++)
        if (!strcmp(what, route_reads[i].name)) {
            r->kind = route_reads[i].kind;
            r->allow = "GET, HEAD";
            if (!route_allows(r->method, true, false, false, false))
                return 405;
            return route_org(r, segs[2]);
        }
    return 404;
}
