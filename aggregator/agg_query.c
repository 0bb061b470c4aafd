/* agg_query: query answers (see agg_query.h). Replies borrow strings from
 * the state; only the arrays and wrapper messages are allocated here. */
#include "agg_query.h"
#include "settings.h"
#include "xmem.h"

#include <stdlib.h>
#include <string.h>

static void answer_licenses(const struct agg_state *st, const char *org,
                            const Licmon__V1__OrgSettings *s, Licmon__V1__QueryReply *qr)
{
    const char **types;
    size_t n = agg_state_types(st, org, &types);
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
        ls->in_use = agg_state_in_use(st, org, types[i]);
        qr->licenses[qr->n_licenses++] = ls;
    }
    free(types);
    qr->in_use_all = agg_state_in_use(st, org, "all");
}

static void answer_current(const struct agg_state *st, const char *org, Licmon__V1__QueryReply *qr)
{
    const Licmon__V1__SessionRecord **recs;
    size_t n = agg_state_current(st, org, &recs);
    qr->current = xcalloc(n + 1, sizeof(*qr->current));
    for (size_t i = 0; i < n; i++) {
        Licmon__V1__CurrentSession *c = xmalloc(sizeof(*c));
        licmon__v1__current_session__init(c);
        c->user = recs[i]->user;
        c->license_type = recs[i]->license_type;
        c->login_ms = recs[i]->start_ms;
        c->last_activity_ms = recs[i]->last_activity_ms;
        c->session_id = recs[i]->session_id;
        qr->current[qr->n_current++] = c;
    }
    free(recs);
}

int agg_query_answer(const struct agg_state *st, const Licmon__V1__Query *q, Licmon__V1__Reply *rep)
{
    if (!q->org || !settings_valid_org(q->org)) {
        rep->error = "org: must match [A-Za-z0-9._-]{1,64}";
        return -1;
    }
    const Licmon__V1__OrgSettings *known = agg_state_settings(st, q->org);
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
    switch (q->kind) {
    case LICMON__V1__QUERY_KIND__LICENSES:
        answer_licenses(st, q->org, s, qr);
        return 0;
    case LICMON__V1__QUERY_KIND__CURRENT:
        answer_current(st, q->org, qr);
        return 0;
    case LICMON__V1__QUERY_KIND__SETTINGS:
        return 0;
    default:
        agg_query_clear(rep);
        rep->error = "query kind not served";
        return -1;
    }
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
    for (size_t i = 0; i < qr->n_current; i++)
        free(qr->current[i]);
    free(qr->current);
    settings_free(&qr->settings);
    free(qr);
    rep->query = NULL;
    rep->body_case = LICMON__V1__REPLY__BODY__NOT_SET;
}
