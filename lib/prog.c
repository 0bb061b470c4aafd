/* prog: common start-up of every program (see prog.h). */
#include "prog.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "zsock.h"
#include "svc.h"
#include "xmem.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int prog_mkdirs(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0750) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

char *prog_endpoint(const char *dir, const char *name)
{
    return xasprintf("ipc://%s/run/%s.sock", dir, name);
}

char *prog_db_path(const char *dir, const char *name)
{
    return xasprintf("%s/data/%s", dir, name);
}

void prog_default_str(char **opt, char *derived)
{
    if (**opt) {
        free(derived);
        return;
    }
    free(*opt);
    *opt = derived;
}

void prog_default_endpoint(char **opt, const char *dir, const char *name)
{
    prog_default_str(opt, prog_endpoint(dir, name));
}

void prog_default_db(char **opt, const char *dir, const char *name)
{
    prog_default_str(opt, prog_db_path(dir, name));
}

void prog_start(const char *program, struct prog_common *c)
{
    svc_block_signals(); /* before the health and RocksDB threads exist */
    /* glibc gives each thread that allocates its own arena and keeps what
     * it freed: RocksDB's flush and compaction threads alone held ~100 MB
     * of the sessionizer's peak (1M open sessions: peak 405 -> 361 MB,
     * same throughput). Two arenas are plenty on machines of a few cores. */
    mallopt(M_ARENA_MAX, 2);
    log_init(program);
    int lvl = log_level_parse(c->log_level);
    if (lvl < 0) {
        fprintf(stderr, "%s: --log-level: '%s' is not debug, info or warn (see --help)\n", program,
                c->log_level);
        exit(2);
    }
    log_set_level((enum log_level)lvl);
    char *run = xasprintf("%s/run", c->dir), *data = xasprintf("%s/data", c->dir);
    if (prog_mkdirs(run) || prog_mkdirs(data))
        log_fatal("cannot create the stack folders under %s: %s", c->dir, strerror(errno));
    free(run);
    free(data);
    if (health_start(program, c->health) != 0) {
        fprintf(stderr, "%s: --health: cannot serve on '%s'\n", program, c->health);
        exit(2);
    }
}

void prog_finish(struct store **store, struct svc **svc, struct conf_opt *opts)
{
    zsock_ctx_term();
    store_close(store);
    health_stop();
    svc_free(svc);
    conf_free(opts);
    log_info("stopped");
}

static void clock_init(struct prog_clock *c, const char *program)
{
    char name[96], help[128];
    snprintf(name, sizeof(name), "licmon_%s_clock_step_ms", program);
    snprintf(help, sizeof(help), "the host's clock minus the %s's: a step not taken (yet)",
             program);
    *c = (struct prog_clock){.m_step = metric_gauge(name, help)};
    snprintf(c->whose, sizeof(c->whose), "licmon-%s's", program);
}

static const char clock_key[] = {KEY_NS_META, 'c', 'l', 'o', 'c', 'k'};

static void clock_save(struct prog_clock *c)
{
    uint8_t state[TIME_STEADY_SAVED_LEN];
    time_steady_save(&c->steady, c->boot_id, state);
    struct store_batch *b = store_batch_new();
    store_batch_put(b, clock_key, sizeof(clock_key), state, sizeof(state));
    /* not synced: only a crash of the host loses it, and the next boot
     * does not resume it anyway */
    if (store_write(c->st, b, false) != 0)
        log_warn_limited(&c->save_log, "%s clock cannot be saved%s", c->whose,
                         c->steady.stepping ? ": a restart now would take the step not taken yet"
                                            : "");
    store_batch_free(&b);
    c->saved_mono = time_mono_ms();
}

/* What st holds of the clock, into c when it is of this boot and can be
 * right (logged either way). */
static void clock_restore(struct prog_clock *c, struct store *st)
{
    uint8_t state[TIME_STEADY_SAVED_LEN];
    int rc = store_get_fixed(st, clock_key, sizeof(clock_key), state, sizeof(state));
    if (rc == 1 &&
        time_steady_resume(&c->steady, c->boot_id, state, sizeof(state), time_boot_ms()) == 0)
        log_info("%s clock goes on from before the restart", c->whose);
    else if (rc == 1 && memcmp(state + 1, c->boot_id, TIME_BOOT_ID_LEN) != 0)
        log_info("%s clock was saved on another boot: it starts from the wall clock", c->whose);
    else if (rc != 0)
        log_warn("%s saved clock is of another version, damaged or cannot be right: it starts "
                 "from the wall clock",
                 c->whose);
}

void prog_clock_resume(struct prog_clock *c, const char *program, struct store *st)
{
    clock_init(c, program);
    if (st && time_boot_id(c->boot_id) != 0) {
        log_warn("cannot read the host's boot id: %s clock starts from the wall clock at each "
                 "start",
                 c->whose);
        st = NULL;
    }
    if (st)
        clock_restore(c, st);
    prog_clock_now(c);
    c->st = st;
    if (st)
        clock_save(c);
}

int64_t prog_clock_now(struct prog_clock *c)
{
    int was_stepping = c->steady.stepping;
    int64_t was_step_at = c->steady.step_at;
    int64_t now = time_steady_now(&c->steady, c->whose, &c->host_ahead_ms);
    /* saved before the gauge shows a step: whoever sees it may restart us */
    if (c->st && (c->steady.stepping != was_stepping || c->steady.step_at != was_step_at ||
                  time_mono_ms() - c->saved_mono >= PROG_CLOCK_SAVE_MS))
        clock_save(c);
    metric_set(c->m_step, c->host_ahead_ms);
    return now;
}

int64_t prog_clock_latest(const struct prog_clock *c)
{
    return c->steady.last + (c->host_ahead_ms > 0 ? c->host_ahead_ms : 0);
}
