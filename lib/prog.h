/* prog: what every program's main() does the same way: the common flags
 * (stack folder, health endpoint, log level), the default endpoints and
 * database paths under the stack folder, and start-up/shut-down. */
#ifndef LICMON_PROG_H
#define LICMON_PROG_H
#include "conf.h"
#include "log.h"
#include "timeutil.h"

struct prog_common {
    char *dir;
    char *health;
    char *log_level;
};

/* The common options, to splice into a program's table (3 entries). */
#define PROG_COMMON_OPTS(c, ENVPREFIX)                                                             \
    CONF_STR("dir", "LICMON_DIR", "./licmon-run",                                                  \
             "stack folder: sockets under DIR/run, databases under DIR/data", &(c)->dir),          \
        CONF_STR("health", ENVPREFIX "_HEALTH", "",                                                \
                 "HOST:PORT of the /healthz and /metrics endpoint (empty: none)", &(c)->health),   \
        CONF_STR("log-level", "LICMON_LOG_LEVEL", "info", "debug, info or warn", &(c)->log_level)

/* Applies the common options: log level, folders (created), health port.
 * Exits with status 2 on a bad value. */
void prog_start(const char *program, struct prog_common *c);
/* The common end of a program, after its own modules are freed: ZeroMQ's
 * context, the store (may be NULL), the health endpoint, the loop, the
 * option strings; logs "stopped". */
struct svc;
struct store;
void prog_finish(struct store **store, struct svc **svc, struct conf_opt *opts);
/* "ipc://DIR/run/NAME.sock"; caller frees. */
char *prog_endpoint(const char *dir, const char *name);
/* "DIR/data/NAME"; caller frees. */
char *prog_db_path(const char *dir, const char *name);
/* When the string option *opt is empty, replaces it with the default
 * endpoint ipc://DIR/run/NAME.sock or database DIR/data/NAME. The option
 * stays owned by the conf table (conf_free releases it). */
void prog_default_endpoint(char **opt, const char *dir, const char *name);
/* The same with any derived default (malloc'd; freed when not used). */
void prog_default_str(char **opt, char *derived);
void prog_default_db(char **opt, const char *dir, const char *name);
/* mkdir -p; 0 or -1 */
int prog_mkdirs(const char *path);

/* A program's clock (README: a clock that is wrong): the host's wall clock
 * through timeutil.h's steady clock, with the size of a step not taken yet
 * in the gauge licmon_<program>_clock_step_ms. */
struct prog_clock {
    struct time_steady steady;
    struct metric *m_step;
    char whose[48];
    struct store *st;                   /* where it is saved (NULL: nowhere) */
    char boot_id[TIME_BOOT_ID_LEN + 1]; /* the boot it is saved on */
    int64_t saved_mono;                 /* the last save (monotonic ms) */
    int64_t host_ahead_ms; /* at the last reading, the host's clock minus it: a step not taken */
    struct log_limit save_log;
};
/* The clock of program (its gauge), going on from what it saved in st (key
 * 'M' "clock") earlier on this boot: a restart takes neither a step made
 * while the program was down nor one it had not taken yet (st NULL: it
 * starts from the wall clock, and is never saved). From then on
 * prog_clock_now saves it to st, in a write of its own, when a step is seen,
 * taken or gone, and otherwise at a reading PROG_CLOCK_SAVE_MS or more after
 * the last save. */
#define PROG_CLOCK_SAVE_MS 10000
void prog_clock_resume(struct prog_clock *c, const char *program, struct store *st);
int64_t prog_clock_now(struct prog_clock *c);
/* The later of the last reading and the host's clock then (which is ahead
 * by a step not taken yet): what an event stamped by the host's clock is
 * judged against for being too far ahead. */
int64_t prog_clock_latest(const struct prog_clock *c);

#endif
