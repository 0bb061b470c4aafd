/* flexlm: FlexLM (FlexNet Publisher) debug logs, as lmgrd and its vendor
 * daemons write them, turned into licmon events (`licmonctl flexlm`).
 *
 * A checkout (OUT) takes a seat of its feature's license type, a checkin
 * (IN) gives it back, a DENIED line is a denial. Lines carry a time of day
 * only: the date comes from the log's TIMESTAMP lines, lmgrd's start line,
 * the "Server's System Date" line and the SLOG start date, counted on over
 * midnight, and the local time becomes UTC in the license server's zone. The mapping, and why,
 * is in the README ("Importing FlexLM logs"). Pure: no I/O, no clock. */
#ifndef LICMONCTL_FLEXLM_H
#define LICMONCTL_FLEXLM_H
#include "licmon.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct flexlm_cfg {
    const char *org;
    const char *timezone; /* the license server's IANA zone */
    const char *source;   /* names the license server in event ids */
    const char *type_map; /* "FEATURE=type,FEATURE=type" or NULL */
    bool only_mapped;     /* features not in type_map are skipped */
    int64_t heartbeat_ms; /* an activity this often while a seat is held */
};

struct flexlm_stats {
    uint64_t lines;       /* every line read */
    uint64_t unfinished;  /* a last line with no newline: left for the next import */
    uint64_t checkouts;   /* OUT lines taken */
    uint64_t checkins;    /* IN lines taken */
    uint64_t denials;     /* DENIED lines taken */
    uint64_t unsupported; /* UNSUPPORTED lines: a feature the server does not have */
    uint64_t unmatched;   /* IN lines with no checkout before them in the log */
    uint64_t ignored;     /* lines of features outside --type-map with --only-mapped */
    uint64_t malformed;   /* OUT, IN or DENIED lines that could not be read (warned) */
    uint64_t restarts;    /* vendor daemons started by lmgrd (Started, REStarted) */
    uint64_t gaps;        /* days or more without a line: seats end before them */
    uint64_t lost;        /* seats ended by their daemon's restart or exit, or a gap */
    uint64_t heartbeats;  /* activity events made to keep held seats alive */
    uint64_t events;      /* events emitted in all */
    uint64_t open_at_end; /* seats still held at the end of the log */
    uint64_t ambiguous;   /* local times in a repeated hour (DST ends) */
    uint64_t behind;      /* lines up to 10 min before the line before: at its time */
    int64_t first_ms;     /* the first and last dated line, UTC */
    int64_t last_ms;
};

struct flexlm;
/* NULL with a reason in err for a bad org, zone, source or type map. */
struct flexlm *flexlm_new(const struct flexlm_cfg *cfg, char *err, size_t errlen);
void flexlm_free(struct flexlm **f);
/* Adds the next file of the log (files in the order they were written);
 * takes text, a malloc'd buffer of len bytes. */
void flexlm_add(struct flexlm *f, const char *name, char *text, size_t len);

/* Each event in the order it is to be sent: by time, never going back. ev
 * and its strings are valid during the call only. */
typedef void (*flexlm_emit_fn)(void *arg, const Licmon__V1__Event *ev);
/* A line that could not be used, by file name and line number (1-based). */
typedef void (*flexlm_warn_fn)(void *arg, const char *file, uint32_t line, const char *reason);
/* Converts everything added. -1 with a reason in err when the log has no
 * date at all, or a line is dated more than 10 minutes before the line
 * before it (logs out of order, a clock set back); nothing is emitted then. */
int flexlm_run(struct flexlm *f, flexlm_emit_fn emit, flexlm_warn_fn warn, void *arg, char *err,
               size_t errlen);
const struct flexlm_stats *flexlm_stats(const struct flexlm *f);

#endif
