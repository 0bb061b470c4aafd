/* event_json: the JSON form of an Event (API.md section 1). Used by
 * licmonctl send and by any tool that reads NDJSON events; ingest validates
 * the resulting message itself. Unknown fields are ignored. */
#ifndef LICMON_EVENT_JSON_H
#define LICMON_EVENT_JSON_H
#include "pb.h"

#include <stddef.h>

/* Parses one JSON object (text of len bytes) into ev (initialised here,
 * fields malloc'd: release with event_json_clear). Returns 0, or -1 with a
 * reason naming the field in err. */
int event_json_parse(const char *text, size_t len, Licmon__V1__Event *ev, char *err, size_t errlen);
void event_json_clear(Licmon__V1__Event *ev);
/* The JSON text of an event (one line, no newline); caller frees. */
char *event_json_format(const Licmon__V1__Event *ev);

#endif
