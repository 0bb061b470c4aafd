/* ctl_up: `licmonctl up` and `down`: a local stack of the five programs
 * (and the demo feed) under one folder, kept running by a small supervisor.
 * The supervisor restarts whatever exits, with a backoff, and stops them all
 * on SIGTERM/SIGINT. DIR/supervisor.pid is flock()ed for the supervisor's
 * whole life, so "is a stack running here" is a lock test, never a guess
 * from a pid that may have been reused. */
#include "ctl.h"
#include "conf.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "svc.h"
#include "timeutil.h"
#include "xmem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UP_HEALTH_TIMEOUT_MS 60000
#define UP_HEALTH_PROBE_MS 1000
#define UP_HEALTH_PAUSE_MS 200 /* between two rounds of probes */
#define UP_STOP_GRACE_MS 10000
#define DOWN_WAIT_MS 20000
#define UP_MAX_KIDS (CTL_NPROGRAMS + 1)

struct up_kid {
    char name[32];
    char *path;
    char *argv[16];
    char *log_path;
    pid_t pid;
    int64_t started_ms; /* monotonic */
    int64_t backoff_ms;
    int64_t restart_at; /* monotonic; 0: none due */
    int restarts;
};

struct up {
    char *dir; /* absolute */
    char *http, *bin, *self, *log_level, *token_path;
    bool demo, foreground;
    struct ctl_stack stack;
    struct up_kid kids[UP_MAX_KIDS];
    int nkids;
    int lock_fd;
    pid_t sup_pid;
};

/* ---- helpers ---- */

/* Prints the last lines of a log file on stderr, indented. */
static void up_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    char *start = buf + n;
    for (int k = 0; k < lines && start > buf;) {
        start--;
        if (*start == '\n' && ++k == lines)
            start++;
    }
    if (from > 0 && start == buf) { /* skip a partial first line */
        char *nl = strchr(buf, '\n');
        start = nl ? nl + 1 : buf;
    }
    for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n"))
        ctl_note("  %s", line);
}

/* Reads the pid written in a pid file (0 when none). */
static long up_read_pid(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* A free TCP port on 127.0.0.1, chosen by the kernel; the socket is kept
 * open in *fd until the caller has picked all its ports. */
static int up_free_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(*fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    return ntohs(sa.sin_port);
}

/* 0 when HOST:PORT can be listened on now. */
static int up_port_available(const char *hostport)
{
    char host[64];
    uint16_t port;
    if (health_parse_hostport(hostport, host, sizeof(host), &port) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int rc = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -1;
    int err = errno;
    if (fd >= 0)
        close(fd);
    errno = err;
    return rc;
}

static char *up_self_exe(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

static void up_add_kid(struct up *u, const char *name, char *path, char **args)
{
    struct up_kid *k = &u->kids[u->nkids++];
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->path = path;
    int n = 0;
    k->argv[n++] = path;
    for (; *args; args++)
        k->argv[n++] = *args;
    k->argv[n] = NULL;
    k->log_path = xasprintf("%s/logs/%s.log", u->dir, name);
}

static void up_plan(struct up *u)
{
    for (int i = 0; i < CTL_NPROGRAMS; i++) {
        char *path = xasprintf("%s/licmon-%s", u->bin, ctl_programs[i]);
        char *args[] = {"--dir",       u->dir,       "--health", u->stack.health[i],
                        "--log-level", u->log_level, NULL,       NULL,
                        NULL,          NULL,         NULL};
        if (!strcmp(ctl_programs[i], "exporter")) {
            args[6] = "--http";
            args[7] = u->http;
            args[8] = "--admin-token-file";
            args[9] = u->token_path;
        } else if (!strcmp(ctl_programs[i], "ingest")) {
            /* the endpoint stack.json names, which send --dir and the demo
             * use, whatever LICMON_INGEST_LISTEN says */
            args[6] = "--listen";
            args[7] = u->stack.producer;
        } else if (!strcmp(ctl_programs[i], "alerter") && !getenv("LICMON_PUBLIC_URL")) {
            /* the links in notifications go to this stack's dashboard, not
             * to the alerter's default address */
            args[6] = "--public-url";
            args[7] = u->stack.url;
        }
        up_add_kid(u, ctl_programs[i], path, args);
    }
    if (u->demo) {
        char *args[] = {"demo-feed", "--dir", u->dir, "--log-level", u->log_level, NULL};
        up_add_kid(u, "demo-feed", xstrdup(u->self), args);
    }
}

/* ---- the supervisor ---- */

static void up_spawn(struct up *u, struct up_kid *k)
{
    int logfd = open(k->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    pid_t pid = fork();
    if (pid < 0) {
        log_warn_ctx("child", k->name, "fork: %s; trying again in 1 s", strerror(errno));
        k->restart_at = time_mono_ms() + 1000;
        if (logfd >= 0)
            close(logfd);
        return;
    }
    if (pid == 0) {
        /* die with the supervisor, even when it is killed with SIGKILL */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != u->sup_pid)
            _exit(1);
        setpgid(0, 0); /* Ctrl-C reaches the supervisor, which stops us in order */
        svc_child_signals();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        if (logfd >= 0) {
            dup2(logfd, STDOUT_FILENO);
            dup2(logfd, STDERR_FILENO);
        }
        close_range(3, ~0U, 0); /* nothing of the caller's leaks into the programs */
        execv(k->path, k->argv);
        log_write(LOG_FATAL, "child", k->name, "cannot run %s: %s", k->path, strerror(errno));
        _exit(127);
    }
    if (logfd >= 0)
        close(logfd);
    k->pid = pid;
    k->started_ms = time_mono_ms();
    k->restart_at = 0;
    log_info_ctx("child", k->name, "started %s (pid %d)", k->path, (int)pid);
}

static void up_describe_exit(int wstatus, char *buf, size_t len)
{
    if (WIFEXITED(wstatus))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else
        snprintf(buf, len, "stopped (status 0x%x)", wstatus);
}

/* Reaps exited children; schedules restarts unless stopping. */
static int up_reap(struct up *u, bool stopping)
{
    int n = 0, ws;
    pid_t pid;
    while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
        for (int i = 0; i < u->nkids; i++) {
            struct up_kid *k = &u->kids[i];
            if (k->pid != pid)
                continue;
            n++;
            k->pid = 0;
            char how[96];
            up_describe_exit(ws, how, sizeof(how));
            int64_t up_ms = time_mono_ms() - k->started_ms;
            if (stopping) {
                log_info_ctx("child", k->name, "%s (pid %d) %s", k->name, (int)pid, how);
                break;
            }
            int64_t delay = ctl_backoff_next(&k->backoff_ms, up_ms);
            k->restart_at = time_mono_ms() + delay;
            k->restarts++;
            log_write(LOG_WARN, "child", k->name,
                      "%s (pid %d) %s after %.1f s; restarting in %lld ms (restart %d; log %s)",
                      k->name, (int)pid, how, (double)up_ms / 1000.0, (long long)delay, k->restarts,
                      k->log_path);
            break;
        }
    }
    return n;
}

static int up_running(const struct up *u)
{
    int n = 0;
    for (int i = 0; i < u->nkids; i++)
        n += u->kids[i].pid > 0;
    return n;
}

/* The first program not healthy now (index; CTL_NPROGRAMS: the exporter's
 * API port), or -1 when all are; healthy[] says which answered. Every pass
 * asks every program: one that answered once and then died (a crash after
 * its start, restarting in a loop) is not healthy, so up returns only when
 * all answer together. */
static int up_unhealthy(const struct up *u, bool healthy[CTL_NPROGRAMS + 1])
{
    int first = -1;
    for (int i = 0; i <= CTL_NPROGRAMS; i++) {
        const char *hp = i < CTL_NPROGRAMS ? u->stack.health[i] : u->http;
        char host[64];
        uint16_t port;
        char probe[96];
        if (i == CTL_NPROGRAMS && health_parse_hostport(hp, host, sizeof(host), &port) == 0 &&
            !strcmp(host, "0.0.0.0")) {
            snprintf(probe, sizeof(probe), "127.0.0.1:%u", (unsigned)port);
            hp = probe;
        }
        healthy[i] = ctl_http_healthy(hp, UP_HEALTH_PROBE_MS);
        if (!healthy[i] && first < 0)
            first = i;
    }
    return first;
}

static void up_report_unhealthy(const struct up *u, int which, int64_t waited_ms)
{
    int k = which < CTL_NPROGRAMS ? which : CTL_NPROGRAMS - 1; /* the API is the exporter's */
    const char *hp = which < CTL_NPROGRAMS ? u->stack.health[which] : u->http;
    ctl_err("up", "licmon-%s is not healthy after %lld s (GET http://%s/healthz); its log: %s",
            ctl_programs[k], (long long)(waited_ms / 1000), hp, u->kids[k].log_path);
    up_tail(u->kids[k].log_path, 5);
}

static void up_announce(const struct up *u)
{
    char err[256];
    char *tok = ctl_token_read(u->token_path, err, sizeof(err));
    printf("dashboard: %s\nadmin token: %s\n", u->stack.url, tok ? tok : "(unreadable)");
    fflush(stdout);
    free(tok);
}

/* Runs the stack until SIGTERM/SIGINT/SIGHUP; returns the exit status. */
static int up_supervise(struct up *u)
{
    log_init("licmon-supervisor");
    log_set_level((enum log_level)log_level_parse(u->log_level));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    u->sup_pid = getpid();
    char pidtext[32];
    int plen = snprintf(pidtext, sizeof(pidtext), "%d\n", (int)u->sup_pid);
    if (ftruncate(u->lock_fd, 0) != 0 || pwrite(u->lock_fd, pidtext, (size_t)plen, 0) != plen)
        log_warn("cannot write %s/supervisor.pid: %s", u->dir, strerror(errno));
    u->stack.supervisor_pid = u->sup_pid;
    if (ctl_stack_save(u->dir, &u->stack) != 0)
        log_warn("cannot write %s/stack.json: %s", u->dir, strerror(errno));
    log_info("supervising the stack in %s (api %s)", u->dir, u->stack.url);
    for (int i = 0; i < u->nkids; i++)
        up_spawn(u, &u->kids[i]);

    bool announced = !u->foreground, warned = false;
    int64_t t0 = time_mono_ms(), next_probe = t0 + UP_HEALTH_PAUSE_MS;
    int sig = 0;
    while (!sig) {
        int64_t now = time_mono_ms(), wake = now + 1000;
        for (int i = 0; i < u->nkids; i++)
            if (u->kids[i].restart_at && u->kids[i].restart_at < wake)
                wake = u->kids[i].restart_at;
        if (!announced && next_probe < wake)
            wake = next_probe;
        int64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        siginfo_t si;
        int got = sigtimedwait(&set, &si, &ts);
        if (got == SIGCHLD)
            up_reap(u, false);
        else if (got > 0)
            sig = got;
        now = time_mono_ms();
        for (int i = 0; !sig && i < u->nkids; i++)
            if (u->kids[i].restart_at && u->kids[i].restart_at <= now)
                up_spawn(u, &u->kids[i]);
        if (!sig && !announced && now >= next_probe) {
            bool healthy[CTL_NPROGRAMS + 1];
            int which = up_unhealthy(u, healthy);
            if (which < 0) {
                up_announce(u);
                ctl_note("the stack is up; Ctrl-C stops it");
                announced = true;
            } else if (!warned && now - t0 > UP_HEALTH_TIMEOUT_MS) {
                up_report_unhealthy(u, which, now - t0);
                ctl_note("still supervising; Ctrl-C stops the stack");
                warned = true;
            }
            next_probe = time_mono_ms() + UP_HEALTH_PAUSE_MS;
        }
    }

    log_info("signal %d: stopping the stack", sig);
    for (int i = 0; i < u->nkids; i++)
        if (u->kids[i].pid > 0)
            kill(u->kids[i].pid, SIGTERM);
    int64_t deadline = time_mono_ms() + UP_STOP_GRACE_MS;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    up_reap(u, true);
    while (up_running(u) > 0 && time_mono_ms() < deadline) {
        int64_t left = deadline - time_mono_ms();
        if (left > 200)
            left = 200;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = left * 1000000};
        sigtimedwait(&chld, NULL, &ts);
        up_reap(u, true);
    }
    for (int i = 0; i < u->nkids; i++)
        if (u->kids[i].pid > 0) {
            log_warn_ctx("child", u->kids[i].name, "still running after %d s: SIGKILL",
                         UP_STOP_GRACE_MS / 1000);
            kill(u->kids[i].pid, SIGKILL);
            waitpid(u->kids[i].pid, NULL, 0);
            u->kids[i].pid = 0;
        }
    char *pidfile = xasprintf("%s/supervisor.pid", u->dir);
    unlink(pidfile);
    free(pidfile);
    log_info("stopped");
    close(u->lock_fd);
    return CTL_EXIT_OK;
}

/* ---- up: the parent ---- */

static volatile sig_atomic_t up_interrupted;

static void up_on_signal(int sig)
{
    up_interrupted = sig;
}

/* Stops a supervisor we started; true when it is gone. */
static bool up_stop_child(pid_t sup)
{
    kill(sup, SIGTERM);
    for (int64_t end = time_mono_ms() + DOWN_WAIT_MS; time_mono_ms() < end;) {
        if (waitpid(sup, NULL, WNOHANG) == sup)
            return true;
        usleep(50000);
    }
    return false;
}

/* Waits until the daemon's stack is healthy; the exit status of `up`. */
static int up_wait(struct up *u, pid_t sup)
{
    struct sigaction sa = {.sa_handler = up_on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool healthy[CTL_NPROGRAMS + 1] = {false};
    struct ctl_progress prog;
    ctl_progress_init(&prog, "starting", CTL_NPROGRAMS + 1);
    int64_t t0 = time_mono_ms();
    for (;;) {
        int ws;
        if (waitpid(sup, &ws, WNOHANG) == sup) {
            ctl_progress_done(&prog);
            char how[96];
            up_describe_exit(ws, how, sizeof(how));
            ctl_err("up", "the supervisor %s; its log: %s/logs/supervisor.log", how, u->dir);
            char *log = xasprintf("%s/logs/supervisor.log", u->dir);
            up_tail(log, 5);
            free(log);
            return CTL_EXIT_FAIL;
        }
        if (up_interrupted) {
            ctl_progress_done(&prog);
            bool gone = up_stop_child(sup);
            ctl_err("up", "interrupted; %s", gone ? "stopped the stack" : "the stack is stopping");
            return CTL_EXIT_FAIL;
        }
        int which = up_unhealthy(u, healthy);
        if (which < 0)
            break;
        int64_t waited = time_mono_ms() - t0;
        if (waited > UP_HEALTH_TIMEOUT_MS) {
            ctl_progress_done(&prog);
            up_report_unhealthy(u, which, waited);
            bool gone = up_stop_child(sup);
            ctl_note("licmonctl up: %s",
                     gone ? "stopped the stack again" : "the stack is still stopping");
            return CTL_EXIT_FAIL;
        }
        int n = 0;
        for (int i = 0; i <= CTL_NPROGRAMS; i++)
            n += healthy[i];
        char note[96];
        snprintf(note, sizeof(note), "%d of %d healthy; waiting for licmon-%s", n,
                 CTL_NPROGRAMS + 1, ctl_programs[which < CTL_NPROGRAMS ? which : 4]);
        ctl_progress_update(&prog, (uint64_t)n, note);
        usleep(UP_HEALTH_PAUSE_MS * 1000);
    }
    ctl_progress_done(&prog);
    up_announce(u);
    return CTL_EXIT_OK;
}

static void up_free(struct up *u)
{
    for (int i = 0; i < u->nkids; i++) {
        free(u->kids[i].path);
        free(u->kids[i].log_path);
    }
    ctl_stack_free(&u->stack);
    free(u->dir);
    free(u->self);
    free(u->token_path);
}

int ctl_up_main(int argc, char **argv)
{
    struct up u = {.lock_fd = -1};
    char *dir, *bin;
    struct conf_opt opts[] = {
        CONF_STR("dir", "LICMON_DIR", "./licmon-run",
                 "stack folder: sockets under DIR/run, databases under DIR/data, logs under "
                 "DIR/logs",
                 &dir),
        CONF_STR("http", "LICMON_HTTP", CTL_DEFAULT_HTTP,
                 "HOST:PORT of the API and dashboard (IPv4)", &u.http),
        CONF_BOOL("demo", "LICMON_DEMO", "false",
                  "also feed a live demo event stream for org \"demo\"", &u.demo),
        CONF_BOOL("foreground", "LICMON_FOREGROUND", "false",
                  "supervise in the foreground; Ctrl-C stops the stack", &u.foreground),
        CONF_STR("bin", "LICMON_BIN", "",
                 "folder of the licmon-* programs (default: licmonctl's own folder)", &bin),
        CONF_STR("log-level", "LICMON_LOG_LEVEL", "info",
                 "log level of the programs: debug, info or warn", &u.log_level),
        CONF_END};
    conf_parse("licmonctl up",
               "licmonctl up --dir DIR [--http HOST:PORT] [--demo] [--foreground] [--bin BINDIR]\n"
               "Starts ingest, sessionizer, aggregator, alerter and exporter as a local stack\n"
               "under DIR and keeps them running (restarting any that exits). Returns once all\n"
               "are healthy and prints the dashboard URL and the administrator token (kept in\n"
               "DIR/admin.token); `licmonctl down --dir DIR` stops the stack. The environment\n"
               "(LICMON_SMTP_URL, ...) is handed on to the programs.\n"
               "Exit status: 0 up, 1 failed (already running, not healthy in 60 s), 2 usage.",
               opts, argc, argv, 2, NULL, NULL);
    int status = CTL_EXIT_FAIL;
    char host[64], err[512];
    uint16_t port;
    if (health_parse_hostport(u.http, host, sizeof(host), &port) != 0 || port == 0) {
        ctl_err("up", "--http: '%s' is not HOST:PORT with an IPv4 host and a port (see --help)",
                u.http);
        status = CTL_EXIT_USAGE;
        goto out;
    }
    if (log_level_parse(u.log_level) < 0) {
        ctl_err("up", "--log-level: '%s' is not debug, info or warn (see --help)", u.log_level);
        status = CTL_EXIT_USAGE;
        goto out;
    }
    if (prog_mkdirs(dir) != 0) {
        ctl_err("up", "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    u.dir = ctl_abspath(dir);
    const char *subs[] = {"run", "data", "logs"};
    for (int i = 0; i < 3; i++) {
        char *p = xasprintf("%s/%s", u.dir, subs[i]);
        int rc = prog_mkdirs(p);
        free(p);
        if (rc != 0) {
            ctl_err("up", "cannot create %s/%s: %s", u.dir, subs[i], strerror(errno));
            goto out;
        }
    }
    /* sun_path holds 107 bytes */
    if (strlen(u.dir) + strlen("/run/ingest-producer.sock") > 100) {
        ctl_err("up", "%s: too long a path for the ipc sockets under it; use a shorter --dir",
                u.dir);
        goto out;
    }
    u.self = up_self_exe();
    if (!u.self) {
        ctl_err("up", "cannot read /proc/self/exe: %s", strerror(errno));
        goto out;
    }
    if (*bin) {
        free(u.bin);
        u.bin = ctl_abspath(bin);
    } else {
        char *copy = xstrdup(u.self);
        u.bin = xstrdup(dirname(copy));
        free(copy);
    }
    for (int i = 0; i < CTL_NPROGRAMS; i++) {
        char *p = xasprintf("%s/licmon-%s", u.bin, ctl_programs[i]);
        int ok = access(p, X_OK);
        free(p);
        if (ok != 0) {
            ctl_err("up", "%s/licmon-%s: %s (build with make, or pass --bin / LICMON_BIN)", u.bin,
                    ctl_programs[i], strerror(errno));
            goto out;
        }
    }

    char *pidfile = xasprintf("%s/supervisor.pid", u.dir);
    u.lock_fd = open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(pidfile);
    if (u.lock_fd < 0) {
        ctl_err("up", "%s/supervisor.pid: %s", u.dir, strerror(errno));
        goto out;
    }
    if (flock(u.lock_fd, LOCK_EX | LOCK_NB) != 0) {
        long pid = up_read_pid(u.lock_fd);
        ctl_err("up",
                "a stack is already running in %s (supervisor pid %ld); stop it with "
                "'licmonctl down --dir %s'",
                u.dir, pid, u.dir);
        goto out;
    }
    /* the pid of a supervisor killed with kill -9 goes: until ours is
     * written, `down` finds no pid rather than one that may be reused */
    if (ftruncate(u.lock_fd, 0) != 0) {
        ctl_err("up", "%s/supervisor.pid: %s", u.dir, strerror(errno));
        goto out;
    }
    if (up_port_available(u.http) != 0) {
        ctl_err("up", "--http %s: cannot listen there: %s", u.http, strerror(errno));
        goto out;
    }
    u.token_path = xasprintf("%s/admin.token", u.dir);
    if (ctl_token_ensure(u.token_path, err, sizeof(err)) != 0) {
        ctl_err("up", "%s", err);
        goto out;
    }

    u.stack.http = xstrdup(u.http);
    u.stack.url = ctl_stack_url(u.http);
    u.stack.producer = prog_endpoint(u.dir, "ingest-producer");
    int fds[CTL_NPROGRAMS];
    for (int i = 0; i < CTL_NPROGRAMS; i++) {
        int p = up_free_port(&fds[i]);
        if (p <= 0) {
            ctl_err("up", "cannot find a free port on 127.0.0.1: %s", strerror(errno));
            for (int j = 0; j <= i; j++)
                if (fds[j] >= 0)
                    close(fds[j]);
            goto out;
        }
        u.stack.health[i] = xasprintf("127.0.0.1:%d", p);
    }
    for (int i = 0; i < CTL_NPROGRAMS; i++)
        close(fds[i]);
    up_plan(&u);

    fflush(stdout);
    fflush(stderr);
    if (u.foreground) {
        status = up_supervise(&u);
        u.lock_fd = -1;
        goto out;
    }
    pid_t sup = fork();
    if (sup < 0) {
        ctl_err("up", "fork: %s", strerror(errno));
        goto out;
    }
    if (sup == 0) {
        setsid();
        if (chdir("/") != 0)
            _exit(1);
        char *log = xasprintf("%s/logs/supervisor.log", u.dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        int nul = open("/dev/null", O_RDONLY);
        free(log);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        /* hold no pipe of the caller open (a shell's $(...) would wait for it) */
        if (u.lock_fd > 3)
            close_range(3, (unsigned)u.lock_fd - 1, 0);
        close_range((unsigned)u.lock_fd + 1, ~0U, 0);
        exit(up_supervise(&u));
    }
    close(u.lock_fd); /* the supervisor holds the lock now */
    u.lock_fd = -1;
    status = up_wait(&u, sup);
out:
    if (u.lock_fd >= 0)
        close(u.lock_fd);
    free(u.bin);
    up_free(&u);
    conf_free(opts);
    return status;
}

/* ---- down ---- */

int ctl_down_main(int argc, char **argv)
{
    char *dir;
    struct conf_opt opts[] = {CONF_STR("dir", "LICMON_DIR", "./licmon-run", "stack folder", &dir),
                              CONF_END};
    conf_parse("licmonctl down",
               "licmonctl down --dir DIR\n"
               "Stops the stack running in DIR and waits (up to 20 s) until it is gone.\n"
               "Exit status: 0 stopped, 1 none running or it did not stop, 2 usage.",
               opts, argc, argv, 2, NULL, NULL);
    int status = CTL_EXIT_FAIL;
    char *abs = ctl_abspath(dir);
    char *pidfile = xasprintf("%s/supervisor.pid", abs);
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC); /* enough to lock: a root stack is seen */
    if (fd < 0) {
        if (errno == ENOENT)
            ctl_err("down", "no stack is running in %s", abs);
        else
            ctl_err("down", "%s: %s", pidfile, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        unlink(pidfile); /* left by a supervisor that was killed */
        ctl_err("down", "no stack is running in %s", abs);
        goto out;
    }
    long pid = up_read_pid(fd);
    if (pid <= 1) {
        ctl_err("down", "the stack in %s is still starting; try again", abs);
        goto out;
    }
    if (kill((pid_t)pid, SIGTERM) != 0 && errno != ESRCH) {
        ctl_err("down", "cannot signal the supervisor (pid %ld): %s", pid, strerror(errno));
        goto out;
    }
    struct ctl_progress prog;
    ctl_progress_init(&prog, "stopping", 0);
    for (int64_t end = time_mono_ms() + DOWN_WAIT_MS; time_mono_ms() < end;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            status = CTL_EXIT_OK;
            break;
        }
        ctl_progress_update(&prog, 0, abs);
        usleep(50000);
    }
    ctl_progress_done(&prog);
    if (status == CTL_EXIT_OK)
        printf("stopped the stack in %s\n", abs);
    else
        ctl_err("down", "the supervisor (pid %ld) is still running after %d s", pid,
                DOWN_WAIT_MS / 1000);
out:
    if (fd >= 0)
        close(fd);
    free(pidfile);
    free(abs);
    conf_free(opts);
    return status;
}
