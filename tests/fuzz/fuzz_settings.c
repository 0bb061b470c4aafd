/* libFuzzer harness: the settings JSON of PUT /settings merged over the
 * defaults (lib/settings.c), and the result turned back into JSON. */
#include "settings.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)data, size, 0, &jerr);
    if (!obj)
        return 0;
    Licmon__V1__OrgSettings *base = settings_default("fuzz");
    char err[200];
    Licmon__V1__OrgSettings *s = settings_merge_json(base, obj, err, sizeof(err));
    if (s) {
        json_t *back = settings_to_json(s);
        char *text = json_dumps(back, 0);
        free(text);
        json_decref(back);
        settings_free(&s);
    }
    settings_free(&base);
    json_decref(obj);
    return 0;
}
