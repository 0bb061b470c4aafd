/* libFuzzer harness: a producer's frame as ingest reads it: unpack an
 * EventBatch from any bytes and validate every event in it; a frame that
 * does not unpack has its batch id read without unpacking (pb_peek_varint),
 * which must agree with the unpacked id whenever both read it; and the
 * string fields holding a NUL byte are found in the frame's wire bytes
 * (ingest_batch_nul_fields), never in a frame without a zero byte; and the
 * events counted on the wire before unpacking (ingest_batch_count_events,
 * what the event limit is judged by) are those protobuf-c unpacks. */
#include "../../ingest/ingest_validate.h"
#include "pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Licmon__V1__EventBatch *b = licmon__v1__event_batch__unpack(NULL, size, data);
    uint64_t id = 0;
    int peeked = pb_peek_varint(data, size, 1, &id);
    long counted = ingest_batch_count_events(data, size);
    if (!b)
        return 0;
    if (counted >= 0 && (size_t)counted != b->n_events)
        abort(); /* the limit would be judged on another count */
    if (peeked == 0 && id != b->batch_id)
        abort(); /* the id read without unpacking differs from protobuf-c's */
    char reason[200];
    const char **nul = calloc(b->n_events + 1, sizeof(*nul));
    ingest_batch_nul_fields(data, size, b->n_events, nul);
    int zero = size && memchr(data, 0, size) != NULL;
    for (size_t i = 0; i < b->n_events; i++) {
        if (nul[i] && !zero)
            abort(); /* a NUL byte found where there is none */
        ingest_validate_event(b->events[i], 1800000000000LL, 1800000000000LL, 400, reason,
                              sizeof(reason));
    }
    free(nul);
    licmon__v1__event_batch__free_unpacked(b, NULL);
    return 0;
}
