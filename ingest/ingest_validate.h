/* ingest_validate: the checks every event passes before it is journaled
 * (SPEC.md sections 1-2, API.md section 1). Pure: the clock is a parameter. */
#ifndef LICMON_INGEST_VALIDATE_H
#define LICMON_INGEST_VALIDATE_H
#include "pb.h"

#include <stddef.h>
#include <stdint.h>

#define INGEST_EVENT_ID_MAX 128
#define INGEST_USER_MAX 256
#define INGEST_FUTURE_MAX_MS (24LL * 3600 * 1000)
/* An accepted event stamped further ahead than this of ingest's clock and
 * of the host's has a producer's clock or time zone that is wrong: counted
 * and warned about. (The sessionizer
 * takes an event stamped over a second after its arrival as a second after
 * it, so it cannot move its org's clock, and its timeouts, ahead.) */
#define INGEST_AHEAD_WARN_MS (60LL * 1000)

/* NULL when ev is acceptable at now_ms (ingest's clock) with minute
 * retention of retention_days and stamped at most a day after ahead_of_ms
 * (the later of ingest's clock and the host's: README, a clock that is
 * wrong); otherwise the reason, naming the field, written to buf. */
const char *ingest_validate_event(const Licmon__V1__Event *ev, int64_t now_ms, int64_t ahead_of_ms,
                                  int64_t retention_days, char *buf, size_t len);
/* ingest_validate_event in two halves: the ids (event_id, org), which are
 * all the duplicate index needs, and the rest. An event already journaled
 * is a duplicate whatever the rest says now (sent again after its
 * acknowledgement was lost, its ts may have left the retention meanwhile). */
const char *ingest_validate_ids(const Licmon__V1__Event *ev, char *buf, size_t len);
const char *ingest_validate_body(const Licmon__V1__Event *ev, int64_t now_ms, int64_t ahead_of_ms,
                                 int64_t retention_days, char *buf, size_t len);
/* The events fields of the EventBatch frame buf, counted on the wire
 * before anything is unpacked (a 16 MB frame of empty events would unpack
 * into millions of allocations); -1 when the frame is damaged. */
long ingest_batch_count_events(const uint8_t *buf, size_t len);
/* For each of the n events of the EventBatch frame buf (as unpacked from
 * it), the name of a string field of it holding a NUL byte, or NULL: out
 * must hold n. protobuf-c keeps such a byte, and every check and key after
 * it would see the string end there ("e1\0x" would count as a duplicate of
 * "e1"), so the event is refused instead. */
void ingest_batch_nul_fields(const uint8_t *buf, size_t len, size_t n, const char **out);
/* 1 when s is valid UTF-8 (no overlongs, no surrogates). */
int ingest_valid_utf8(const char *s, size_t n);

#endif
