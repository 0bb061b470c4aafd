/* settings: an org's settings (SPEC.md section 7, API.md section 4): the
 * defaults, the validation of every field, and the JSON form. A partial
 * JSON object is merged over the settings in force; an error names the
 * field. The one place that knows every bound. */
#ifndef LICMON_SETTINGS_H
#define LICMON_SETTINGS_H
#include "pb.h"

#include <jansson.h>
#include <stddef.h>

#define SETTINGS_DEFAULT_TIMEOUT_S 7200
#define SETTINGS_DEFAULT_THRESHOLD_PCT 80
#define SETTINGS_MAX_LICENSES 64
#define SETTINGS_MAX_LIST 100
#define SETTINGS_SECRET_MASK "********"

/* A new settings message with every default; free with settings_free. */
Licmon__V1__OrgSettings *settings_default(const char *org);
Licmon__V1__OrgSettings *settings_copy(const Licmon__V1__OrgSettings *s);
void settings_free(Licmon__V1__OrgSettings **s);
/* Merges the fields present in obj over base into a new message. NULL with
 * "field: what is wrong" in err when any field is invalid. */
Licmon__V1__OrgSettings *settings_merge_json(const Licmon__V1__OrgSettings *base, const json_t *obj,
                                             char *err, size_t errlen);
json_t *settings_to_json(const Licmon__V1__OrgSettings *s);
/* The license of a type, or NULL. */
const Licmon__V1__License *settings_license(const Licmon__V1__OrgSettings *s, const char *type);

/* Identifier checks shared with ingest (SPEC.md section 1). */
int settings_valid_org(const char *s);
int settings_valid_type(const char *s);
int settings_valid_email(const char *s);

#endif
