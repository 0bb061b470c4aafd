/* libFuzzer harness: a producer's frame as ingest reads it: unpack an
 * EventBatch from any bytes and validate every event in it. */
#include "../../ingest/ingest_validate.h"
#include "pb.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Licmon__V1__EventBatch *b = licmon__v1__event_batch__unpack(NULL, size, data);
    if (!b)
        return 0;
    char reason[200];
    for (size_t i = 0; i < b->n_events; i++)
        ingest_validate_event(b->events[i], 1800000000000LL, 400, reason, sizeof(reason));
    licmon__v1__event_batch__free_unpacked(b, NULL);
    return 0;
}
