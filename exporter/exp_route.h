/* exp_route: maps an HTTP method and path to one of the exporter's handlers,
 * with its path parameters checked. Pure: no I/O, so unit tests drive it.
 * Private to exporter/. */
#ifndef EXP_ROUTE_H
#define EXP_ROUTE_H
#include <stdbool.h>

#define EXP_ORG_MAX 64
#define EXP_ID_MAX 64

enum exp_route_kind {
    EXP_ROUTE_NONE,     /* no such path: 404 */
    EXP_ROUTE_HEALTH,   /* /healthz, /metrics (no token) */
    EXP_ROUTE_LICENSES, /* /v1/orgs/{org}/licenses */
    EXP_ROUTE_CURRENT,  /* /v1/orgs/{org}/current */
    EXP_ROUTE_SETTINGS, /* /v1/orgs/{org}/settings */
    EXP_ROUTE_USAGE,    /* /v1/orgs/{org}/usage */
    EXP_ROUTE_STATS,    /* /v1/orgs/{org}/stats */
    EXP_ROUTE_SESSIONS, /* /v1/orgs/{org}/sessions */
    EXP_ROUTE_EXPORT,   /* /v1/orgs/{org}/export */
    EXP_ROUTE_REPORT,   /* /v1/orgs/{org}/report */
    EXP_ROUTE_TOKENS,   /* /v1/tokens */
    EXP_ROUTE_TOKEN,    /* /v1/tokens/{id} */
    EXP_ROUTE_ORGS,     /* /v1/orgs: the orgs the caller may see */
};

enum exp_method { EXP_M_GET, EXP_M_HEAD, EXP_M_PUT, EXP_M_POST, EXP_M_DELETE, EXP_M_OTHER };

struct exp_route {
    enum exp_route_kind kind;
    enum exp_method method;
    bool v1;    /* under /v1: a token is needed */
    bool write; /* the method changes something */
    bool has_org;
    char org[EXP_ORG_MAX + 1]; /* valid when the match returned 0 */
    char id[EXP_ID_MAX + 1];
    const char *allow;      /* the methods the path takes (for 405's Allow) */
    const char *bad_param;  /* for 400: the parameter at fault */
    const char *bad_reason; /* for 400: what is wrong with it */
};

enum exp_method exp_route_method(const char *method);
/* Matches a method and a path (no query string). Returns 0 when a handler
 * takes the request, else the status to answer: 404 (no such path), 405
 * (method not allowed; r->allow lists the good ones) or 400 (a malformed path
 * parameter; r->bad_param names it). r->kind and r->v1 are set either way. */
int exp_route_match(const char *method, const char *path, struct exp_route *r);
/* [A-Za-z0-9_-]{1,EXP_ID_MAX}: the shape of a token id. */
bool exp_route_valid_id(const char *id);

#endif
