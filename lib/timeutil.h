/* timeutil: clocks and RFC 3339 text. All instants are int64 ms since the
 * Unix epoch, UTC. Time-zone arithmetic (the org's reporting zone) uses the
 * system zoneinfo through tz_* below. */
#ifndef LICMON_TIMEUTIL_H
#define LICMON_TIMEUTIL_H
#include <stddef.h>
#include <stdint.h>

int64_t time_now_ms(void);  /* wall clock */
int64_t time_mono_ms(void); /* monotonic, for timeouts */
int64_t time_boot_ms(void); /* monotonic, counting suspended time too */

/* A wall clock that does not follow a step of the host's clock at once:
 * every program's (prog.h's prog_clock), ingest's above all, whose readings
 * become every org's clock downstream (README: a clock that is wrong). It
 * runs on from the last reading that agreed with the wall clock by the boot
 * clock; the wall clock is taken as it is while it agrees within
 * TIME_STEADY_SLACK_MS (so NTP's slewing passes), and a step is taken once
 * it has lasted TIME_STEADY_STEP_MS (an NTP step, a VM resumed with a stale
 * clock and corrected a moment later are not). Never goes back, but for a
 * step back that has lasted. */
#define TIME_STEADY_SLACK_MS 1000
#define TIME_STEADY_STEP_MS (10 * 60000LL)
struct time_steady {
    int64_t wall0, boot0; /* the last agreement of the two clocks */
    int64_t step_at;      /* while stepping: boot time the step was seen */
    int64_t step_ms;      /* ... and its size (another size: another step) */
    int64_t last;         /* the last reading */
    int started, stepping;
};
enum time_steady_news {
    TIME_STEADY_SAME,
    TIME_STEADY_STEP_SEEN,
    TIME_STEADY_STEP_TAKEN,
    TIME_STEADY_STEP_GONE
};
/* The reading for the clocks' readings wall and boot (ms); *news says what
 * changed. The first call takes wall as it is. */
int64_t time_steady_read(struct time_steady *c, int64_t wall, int64_t boot,
                         enum time_steady_news *news);
/* The reading for the host's clocks now; logs a step seen, taken or gone,
 * naming whose clock c is. *step_ms (may be NULL): the host's wall clock
 * minus the reading, 0 but while a step is not taken. */
int64_t time_steady_now(struct time_steady *c, const char *whose, int64_t *step_ms);
/* A restart on the same boot resumes the clock from what it saved (a step
 * made while the program was down is seen as one, a step pending goes on
 * pending) instead of taking the wall clock as it is; after a reboot the
 * boot clock says nothing, and the wall clock is taken. */
#define TIME_BOOT_ID_LEN 36
#define TIME_STEADY_SAVED_LEN (1 + TIME_BOOT_ID_LEN + 5 * 8 + 1)
int time_boot_id(char out[TIME_BOOT_ID_LEN + 1]); /* the host's boot id; 0 or -1 */
void time_steady_save(const struct time_steady *c, const char *boot_id,
                      uint8_t out[TIME_STEADY_SAVED_LEN]);
/* 0: c resumed from saved, saved on boot boot_id (boot: the boot clock
 * now), a step pending then still pending; -1: c is left as it is (another
 * boot, another version, or a record that cannot be right). */
int time_steady_resume(struct time_steady *c, const char *boot_id, const uint8_t *saved, size_t len,
                       int64_t boot);

/* "2026-11-27T10:00:00.123Z" into buf (at least 32 bytes); returns buf */
char *time_format_rfc3339(int64_t ms, char *buf, size_t len);
/* RFC 3339 with Z or an offset, optional fraction; 0 on success */
int time_parse_rfc3339(const char *text, int64_t *ms);
/* "YYYY-MM-DD" -> days since epoch (proleptic Gregorian); 0 on success */
int time_parse_date(const char *text, int64_t *days);
void time_format_date(int64_t days, char *buf, size_t len);
/* days since 1970-01-01 of the civil date y-m-d, and back */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* A time zone of the system zoneinfo, read once and cached for the life of
 * the process; NULL for a name that is not a zone (or has "..", a leading
 * "/"). Safe from any thread: nothing touches TZ or the environment. */
struct tz;
const struct tz *tz_get(const char *name);
/* Offset from UTC in seconds in force in zone z at instant ms. */
int32_t tz_offset_s(const struct tz *z, int64_t ms);
int tz_valid(const char *name);
/* Offset from UTC in seconds that zone `name` has at instant `ms`. */
int tz_offset_at(const char *name, int64_t ms, long *offset_s);
/* The local date (days since epoch) in zone `name` at instant ms. */
int64_t tz_local_day(const char *name, int64_t ms);

#endif
