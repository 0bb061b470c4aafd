/* log: one JSON object per line on stderr. The level is checked before any
 * formatting, untrusted text is cut short and escaped. Ladder: info, warn
 * (recoverable), fatal (environment broken: exit 1), panic (our bug: abort). */
#ifndef LICMON_LOG_H
#define LICMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_FATAL, LOG_PANIC };

void log_init(const char *program);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* ctx_key/ctx_val (may be NULL) go first in the object: org, batch, session... */
void log_write(enum log_level level, const char *ctx_key, const char *ctx_val, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
_Noreturn void log_die(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, NULL, NULL, __VA_ARGS__);                                         \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_INFO))                                                                 \
            log_write(LOG_INFO, NULL, NULL, __VA_ARGS__);                                          \
    } while (0)
#define log_warn(...) log_write(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_info_ctx(k, v, ...)                                                                    \
    do {                                                                                           \
        if (log_enabled(LOG_INFO))                                                                 \
            log_write(LOG_INFO, k, v, __VA_ARGS__);                                                \
    } while (0)
#define log_warn_ctx(k, v, ...) log_write(LOG_WARN, k, v, __VA_ARGS__)
#define log_fatal(...) log_die(LOG_FATAL, __VA_ARGS__)
#define log_panic(...) log_die(LOG_PANIC, __VA_ARGS__)

/* A warning that outside input or a lasting condition may repeat at any
 * rate: the first is written, then at most one a minute, with how many were
 * left out since. One struct log_limit (zeroed) per kind of warning;
 * callable from any thread. */
struct log_limit {
    long long next_ms;
    unsigned long long skipped;
};
#define LOG_LIMIT_MS 60000
void log_warn_limited(struct log_limit *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* parse "debug|info|warn"; returns -1 when unknown */
int log_level_parse(const char *name);

#endif
