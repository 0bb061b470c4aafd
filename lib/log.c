/* log: JSON-lines logging on stderr (see log.h). One write(2) per line so
 * lines from threads and processes sharing the file never interleave. */
#include "log.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048
#define LOG_UNTRUSTED_MAX 200

static const char *log_program = "licmon";
static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "fatal", "panic"};

void log_init(const char *program)
{
    log_program = program;
    const char *lvl = getenv("LICMON_LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_min = (enum log_level)log_level_parse(lvl);
}

void log_set_level(enum log_level level)
{
    log_min = level;
}

int log_enabled(enum log_level level)
{
    return level >= log_min;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_WARN; i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

/* Appends s as JSON string content, escaped, at most max input bytes. */
static size_t log_escape(char *out, size_t pos, size_t cap, const char *s, size_t max)
{
    size_t n = 0;
    for (; n < max && s[n] && pos + 8 < cap; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    if (s[n] && pos + 4 < cap) {
        memcpy(out + pos, "...", 3);
        pos += 3;
    }
    return pos;
}

static void log_vwrite(enum log_level level, const char *ctx_key, const char *ctx_val,
                       const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    char line[LOG_LINE_MAX * 2];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t pos = (size_t)snprintf(
        line, sizeof(line), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"program\":\"%s\",",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        (int)(tv.tv_usec / 1000), log_program);
    pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"level\":\"%s\",", log_names[level]);
    if (ctx_key && ctx_val) {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"%s\":\"", ctx_key);
        pos = log_escape(line, pos, sizeof(line), ctx_val, LOG_UNTRUSTED_MAX);
        line[pos++] = '"';
        line[pos++] = ',';
    }
    memcpy(line + pos, "\"msg\":\"", 7);
    pos += 7;
    pos = log_escape(line, pos, sizeof(line) - 3, msg, sizeof(msg));
    line[pos++] = '"';
    line[pos++] = '}';
    line[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

void log_write(enum log_level level, const char *ctx_key, const char *ctx_val, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, ctx_key, ctx_val, fmt, ap);
    va_end(ap);
}

void log_warn_limited(struct log_limit *l, const char *fmt, ...)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    long long now = time_mono_ms();
    pthread_mutex_lock(&lock);
    bool write_it = now >= l->next_ms;
    unsigned long long skipped = l->skipped;
    if (write_it) {
        l->next_ms = now + LOG_LIMIT_MS;
        l->skipped = 0;
    } else {
        l->skipped++;
    }
    pthread_mutex_unlock(&lock);
    if (!write_it || !log_enabled(LOG_WARN))
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (skipped)
        log_write(LOG_WARN, NULL, NULL, "%s (%llu more like it since the last one logged)", msg,
                  skipped);
    else
        log_write(LOG_WARN, NULL, NULL, "%s", msg);
}

_Noreturn void log_die(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, NULL, NULL, fmt, ap);
    va_end(ap);
    if (level == LOG_PANIC)
        abort();
#ifdef LICMON_FUZZ
    exit(1); /* libFuzzer's exit handler reports it, with the input */
#else
    /* _exit, not exit: RocksDB's background threads may still run, and the
     * C++ destructors exit() would run under them can crash or wait for
     * ever; everything kept is crash-safe, as after a kill -9 */
    fflush(NULL);
    _exit(1);
#endif
}
