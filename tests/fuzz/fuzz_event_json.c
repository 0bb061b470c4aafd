/* libFuzzer harness: the event JSON decoder (lib/event_json.c) on any bytes,
 * followed by ingest's validation of whatever it produced. */
#include "../../ingest/ingest_validate.h"
#include "event_json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Licmon__V1__Event ev;
    char err[200], reason[200];
    if (event_json_parse((const char *)data, size, &ev, err, sizeof(err)) == 0) {
        ingest_validate_event(&ev, 1800000000000LL, 1800000000000LL, 400, reason, sizeof(reason));
        char *back = event_json_format(&ev);
        free(back);
        event_json_clear(&ev);
    }
    return 0;
}
