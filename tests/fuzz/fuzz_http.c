/* libFuzzer harness: what the exporter decodes from an HTTP request before
 * any data is read: the method and path (exp_route_match), the
 * Authorization header (exp_auth_bearer) and the query string of the read
 * endpoints (exp_params_parse, then the period, hour and label arithmetic
 * its result feeds, in a few real zones).
 *
 * Input: lines. Line 1 the method, line 2 the path, line 3 the
 * Authorization header value, line 4 the query string, split on '&' into
 * arguments and on the first '=' into key and value as libmicrohttpd hands
 * them over (already percent-decoded, so any byte but NUL may appear). */
#include "../../exporter/exp_auth.h"
#include "../../exporter/exp_params.h"
#include "../../exporter/exp_route.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const zones[] = {"UTC",
                                    "Europe/Berlin",
                                    "America/New_York",
                                    "Australia/Lord_Howe",
                                    "Asia/Kathmandu",
                                    "Pacific/Chatham"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_PANIC);
    return 0;
}

/* the next line of the input as a fresh NUL-terminated string */
static char *next_line(const uint8_t **p, size_t *n)
{
    const uint8_t *nl = memchr(*p, '\n', *n);
    size_t len = nl ? (size_t)(nl - *p) : *n;
    char *s = malloc(len + 1);
    memcpy(s, *p, len);
    s[len] = '\0';
    /* a NUL inside ends the C string early, as it would in the server */
    *p += nl ? len + 1 : len;
    *n -= nl ? len + 1 : len;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t n = size;
    char *method = next_line(&p, &n), *path = next_line(&p, &n), *auth = next_line(&p, &n);
    char *query = next_line(&p, &n);

    struct exp_route r;
    int rc = exp_route_match(method, path, &r);
    if (rc == 0 && r.has_org && strlen(r.org) > EXP_ORG_MAX)
        abort();
    if (rc == 405 && !r.allow)
        abort(); /* a 405 must say what is allowed */
    if (rc == 400 && (!r.bad_param || !r.bad_reason))
        abort(); /* a 400 must name the parameter */
    size_t tl = 0;
    const char *tok = exp_auth_bearer(auth, &tl);
    if (tok && (tok < auth || tok + tl > auth + strlen(auth) || tl == 0))
        abort();

    struct exp_kv kv[40];
    size_t nkv = 0;
    for (char *save = NULL, *arg = strtok_r(query, "&", &save); arg && nkv < 40;
         arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        if (eq)
            *eq = '\0';
        kv[nkv].key = arg;
        kv[nkv].value = eq ? eq + 1 : NULL;
        nkv++;
    }
    unsigned zi = size ? data[size - 1] % (sizeof(zones) / sizeof(zones[0])) : 0;
    for (int ep = EXP_EP_USAGE; ep <= EXP_EP_REPORT; ep++) {
        struct exp_params prm;
        char err[256];
        err[0] = '\0';
        if (exp_params_parse((enum exp_endpoint)ep, kv, nkv, &prm, err, sizeof(err)) != 0) {
            if (!err[0] || !strchr(err, ':'))
                abort(); /* every error names its parameter */
            continue;
        }
        if (prm.has_hour && (prm.hour < 0 || prm.hour > 23))
            abort();
        if (prm.has_range && prm.to < prm.from)
            abort();
        int64_t today = exp_params_today(zones[zi], 1793000000000LL);
        struct exp_period per;
        exp_params_period(&prm, today, 400, &per);
        if (!per.empty && (per.from > per.to || per.to > today || per.from < today - 399))
            abort();
        if (prm.has_date && prm.has_hour) {
            int qh = exp_params_query_hour(zones[zi], prm.date, prm.hour, prm.hour_has_offset,
                                           prm.hour_offset_s);
            if (qh != -1 && qh != prm.hour && qh != prm.hour + 100)
                abort();
            char label[64];
            exp_params_local_label(prm.date * 86400000LL + prm.hour * 3600000LL, prm.hour_offset_s,
                                   true, label, sizeof(label));
        }
    }
    free(method);
    free(path);
    free(auth);
    free(query);
    return 0;
}
