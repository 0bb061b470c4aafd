/* Test helper: an org's settings merged from JSON text over the defaults,
 * as PUT /settings makes them; the test fails naming the field when the
 * text is refused. Include after cmocka.h. */
#ifndef LICMON_TEST_SETTINGS_JSON_H
#define LICMON_TEST_SETTINGS_JSON_H
#include "settings.h"

#include <jansson.h>

static inline Licmon__V1__OrgSettings *settings_from(const char *org, const char *json)
{
    Licmon__V1__OrgSettings *base = settings_default(org);
    json_error_t jerr;
    json_t *obj = json_loads(json, 0, &jerr);
    assert_non_null(obj);
    char err[256] = "";
    Licmon__V1__OrgSettings *s = settings_merge_json(base, obj, err, sizeof(err));
    if (!s)
        fail_msg("settings: %s", err);
    json_decref(obj);
    settings_free(&base);
    return s;
}

#endif
