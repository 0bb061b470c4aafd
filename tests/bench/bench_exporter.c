/* bench_exporter: the exporter's numbers, against a fake aggregator so
 * that only the exporter is measured. Starts the real licmon-exporter
 * (LICMON_BIN or ../bin beside this binary) with an in-process aggregator
 * stand-in that serves LICMON_BENCH_EXPORT_SESSIONS (default 1,000,000)
 * session records in chunks and 365 day rows, then prints:
 *   - export csv and xlsx of every session: seconds, MB, the exporter's
 *     peak RSS (VmHWM, a fresh exporter for each);
 *   - GET usage of 365 days at a fixed 1,000 requests/s (open loop: latency
 *     counted from when each request was due), p50/p99/p99.9/max.
 * With --url URL --token T [--path P] [--rate R] [--seconds S] it only runs
 * the load part against a running stack (tests/bench/run_bench.py). Prints
 * numbers; asserts nothing about time. */
#include "log.h"
#include "lstream.h"
#include "pb.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake aggregator */

struct fake {
    void *router;
    pthread_t th;
    atomic_bool stop;
    uint64_t n_sessions;
};

static void fake_answer(struct fake *f, const struct zsock_env *env, const Licmon__V1__Request *req)
{
    const Licmon__V1__Query *q = req->query;
    Licmon__V1__Reply rep = LICMON__V1__REPLY__INIT;
    Licmon__V1__QueryReply qr = LICMON__V1__QUERY_REPLY__INIT;
    Licmon__V1__OrgSettings s = LICMON__V1__ORG_SETTINGS__INIT;
    Licmon__V1__License lic = LICMON__V1__LICENSE__INIT, *lics[] = {&lic};
    Licmon__V1__LicenseState ls = LICMON__V1__LICENSE_STATE__INIT, *lsv[] = {&ls};
    s.org = q->org;
    s.timezone = "Europe/Berlin";
    s.user_inactivity_timeout_s = 7200;
    s.license_inactivity_timeout_s = 7200;
    s.retention_days_minutes = 400;
    s.retention_days_days = 1830;
    lic.type = "creator";
    lic.owned = 50;
    lic.threshold_pct = 80;
    lic.expires = "2099-12-31";
    s.licenses = lics;
    s.n_licenses = 1;
    ls.license = &lic;
    ls.in_use = 12;
    qr.settings = &s;
    qr.org_known = true;
    qr.timezone = s.timezone;
    qr.licenses = lsv;
    qr.n_licenses = 1;
    rep.id = req->id;
    rep.body_case = LICMON__V1__REPLY__BODY_QUERY;
    rep.query = &qr;
    Licmon__V1__UsageRow *rows = NULL, **rowp = NULL;
    char(*dates)[16] = NULL;
    Licmon__V1__SessionRecord *recs = NULL, **recp = NULL;
    char(*ids)[24] = NULL, (*users)[40] = NULL;
    Licmon__V1__Stats st = LICMON__V1__STATS__INIT;
    uint8_t cur[8];
    if (q->kind == LICMON__V1__QUERY_KIND__USAGE) {
        int64_t from = 0, to = 0;
        if (q->granularity == LICMON__V1__GRANULARITY__DAY) {
            time_parse_date(q->from_date, &from);
            time_parse_date(q->to_date, &to);
        }
        size_t n = to >= from ? (size_t)(to - from + 1) : 0;
        rows = xcalloc(n + 1, sizeof(*rows));
        rowp = xcalloc(n + 1, sizeof(*rowp));
        dates = xcalloc(n + 1, sizeof(*dates));
        for (size_t i = 0; i < n; i++) {
            Licmon__V1__UsageRow *r = &rows[i];
            licmon__v1__usage_row__init(r);
            time_format_date(from + (int64_t)i, dates[i], 16);
            r->date = dates[i];
            r->start_ms = (from + (int64_t)i) * 86400000 - 3600000;
            r->utc_offset_s = 3600;
            r->minutes = 1440;
            r->peak = 20 + (int64_t)(i % 17);
            r->peak_at_ms = r->start_ms + 36000000;
            r->users = 35 + (int64_t)(i % 11);
            r->logins = 120;
            r->logouts = 100;
            r->denials = (int64_t)(i % 3);
            r->denied_users = (int64_t)(i % 2);
            rowp[i] = r;
        }
        qr.rows = rowp;
        qr.n_rows = n;
    } else if (q->kind == LICMON__V1__QUERY_KIND__STATS) {
        st.threshold_pct = 80;
        st.threshold_count = 40;
        st.owned = 50;
        st.days = 365;
        st.average_value = 28.4;
        st.average_pct = 56.8;
        st.average_state = "ok";
        st.peak_value = 36;
        st.peak_at_ms = time_now_ms() - 86400000;
        st.peak_state = "ok";
        st.days_over_state = "ok";
        st.denied_state = "major";
        st.denied_users = 4;
        st.denials = 12;
        st.downgraded_state = "ok";
        st.in_use = 12;
        st.free = 38;
        st.has_expiry = true;
        st.days_left = 900;
        st.expiration_state = "ok";
        qr.stats = &st;
    } else if (q->kind == LICMON__V1__QUERY_KIND__SESSIONS) {
        uint64_t from = 0;
        for (size_t i = 0; i < q->cursor.len && i < 8; i++)
            from = from << 8 | q->cursor.data[i];
        uint64_t n = q->max_rows ? q->max_rows : 1000;
        if (from + n > f->n_sessions)
            n = from < f->n_sessions ? f->n_sessions - from : 0;
        recs = xcalloc(n + 1, sizeof(*recs));
        recp = xcalloc(n + 1, sizeof(*recp));
        ids = xcalloc(n + 1, sizeof(*ids));
        users = xcalloc(n + 1, sizeof(*users));
        int64_t t0 = time_now_ms() - 300LL * 86400000;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t k = from + i;
            Licmon__V1__SessionRecord *r = &recs[i];
            licmon__v1__session_record__init(r);
            snprintf(ids[i], sizeof(ids[i]), "%016llx-%llu", (unsigned long long)(k * 2654435761u),
                     (unsigned long long)k);
            snprintf(users[i], sizeof(users[i]), "user%05llu@bench.example",
                     (unsigned long long)(k % 20000));
            r->session_id = ids[i];
            r->org = q->org;
            r->user = users[i];
            r->license_type = k % 3 ? "creator" : "reviewer";
            r->requested_type = k % 50 == 7 ? "creator" : "";
            r->start_ms = t0 + (int64_t)k * 25000;
            r->last_activity_ms = r->start_ms + 600000;
            r->end_ms = r->start_ms + 2400000;
            r->end_reason = (Licmon__V1__EndReason)(1 + k % 3);
            r->user_inactivity_s = 2400;
            r->license_inactivity_s = 2400;
            r->license_released_at_ms = r->end_ms + 1800000;
            r->license_tail_s = 1800;
            recp[i] = r;
        }
        qr.sessions = recp;
        qr.n_sessions = n;
        if (from + n < f->n_sessions) {
            for (int i = 0; i < 8; i++)
                cur[i] = (uint8_t)((from + n) >> (56 - 8 * i));
            qr.next_cursor.data = cur;
            qr.next_cursor.len = 8;
        }
    }
    lstream_send_reply(f->router, env, &rep);
    free(rows);
    free(rowp);
    free(dates);
    free(recs);
    free(recp);
    free(ids);
    free(users);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        zmq_msg_t msg;
        struct zsock_env env;
        bool bad;
        while (zsock_recv(f->router, &env, &msg, ZMQ_DONTWAIT, &bad) == 0) {
            Licmon__V1__Request *req =
                licmon__v1__request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            zmq_msg_close(&msg);
            if (req && req->body_case == LICMON__V1__REQUEST__BODY_QUERY)
                fake_answer(f, &env, req);
            PB_FREE(request, req);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ the exporter */

static char bench_dir[256], bench_bin[PATH_MAX];
static pid_t running_exporter; /* killed at exit if still running */
static uint16_t bench_port;

static uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static pid_t exporter_start(void)
{
    bench_port = free_port();
    char http[32], agg[300], ing[300], logp[300];
    snprintf(http, sizeof(http), "127.0.0.1:%u", bench_port);
    snprintf(agg, sizeof(agg), "ipc://%s/agg.sock", bench_dir);
    snprintf(ing, sizeof(ing), "ipc://%s/ingest.sock", bench_dir);
    snprintf(logp, sizeof(logp), "%s/exporter.log", bench_dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 2);
        execl(bench_bin, bench_bin, "--dir", bench_dir, "--http", http, "--aggregator", agg,
              "--ingest", ing, "--log-level", "warn", "--query-timeout-ms", "30000", (char *)NULL);
        _exit(127);
    }
    /* wait until it answers */
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(bench_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (ok) {
            running_exporter = pid;
            return pid;
        }
        usleep(25000);
    }
    fprintf(stderr, "bench_exporter: the exporter did not start (see %s)\n", logp);
    exit(1);
}

static long exporter_hwm_kb(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* CPU seconds (user + system) the process has used. */
static double exporter_cpu_s(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (s)
        sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void exporter_kill_at_exit(void)
{
    if (running_exporter > 0)
        kill(running_exporter, SIGTERM);
}

static void exporter_stop(pid_t pid)
{
    running_exporter = 0;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static char *admin_token(void)
{
    char p[300], buf[256] = "";
    snprintf(p, sizeof(p), "%s/admin.token", bench_dir);
    FILE *f = fopen(p, "r");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        fprintf(stderr, "bench_exporter: no admin token in %s\n", p);
        exit(1);
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return xstrdup(buf);
}

static size_t count_bytes(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    *(uint64_t *)arg += size * n;
    return size * n;
}

static void bench_export(const char *fmt, uint64_t n)
{
    pid_t pid = exporter_start();
    char *tok = admin_token();
    char url[256], auth[320];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/orgs/bench/export?format=%s&period=365d",
             bench_port, fmt);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, auth);
    uint64_t bytes = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
    double cpu0 = exporter_cpu_s(pid);
    int64_t t0 = time_mono_ms();
    CURLcode rc = curl_easy_perform(c);
    int64_t t1 = time_mono_ms();
    double cpu = exporter_cpu_s(pid) - cpu0;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    long hwm = exporter_hwm_kb(pid);
    printf("exporter: export %-4s of %llu session rows: %.2f s (exporter CPU %.2f s), %.1f MB, "
           "HTTP %ld%s; exporter peak RSS %.1f MB\n",
           fmt, (unsigned long long)n, (double)(t1 - t0) / 1000.0, cpu, (double)bytes / 1e6, code,
           rc == CURLE_OK ? "" : " (transfer failed)", (double)hwm / 1024.0);
    fflush(stdout);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(tok);
    exporter_stop(pid);
}

/* ------------------------------------------------------------ open-loop load */

#define LOAD_CONNS 32
#define LOAD_BUF (1 << 20)

struct lconn {
    int fd;
    bool busy;
    int64_t due_us; /* when the request in flight was due */
    char *buf;      /* LOAD_BUF bytes */
    size_t len;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int lconnect(const char *host, uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(s, F_SETFL, O_NONBLOCK);
    return s;
}

/* A whole answer in c->buf? Returns its length, 0 when not yet. */
static size_t lcomplete(struct lconn *c, int *status)
{
    c->buf[c->len < LOAD_BUF ? c->len : LOAD_BUF - 1] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    *status = atoi(c->buf + 9);
    char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    size_t body = cl && cl < end ? (size_t)atol(cl + 17) : 0;
    size_t total = (size_t)(end + 4 - c->buf) + body;
    return c->len >= total ? total : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sends `rate` GETs a second for `seconds`, each on a free keep-alive
 * connection (queued when none is: the wait counts). */
static void bench_load(const char *host, uint16_t port, const char *path, const char *token,
                       int rate, int seconds, const char *label)
{
    char req[1024];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path, host,
                      token);
    struct lconn *cs = xcalloc(LOAD_CONNS, sizeof(*cs));
    for (int i = 0; i < LOAD_CONNS; i++) {
        cs[i].fd = lconnect(host, port);
        cs[i].buf = xmalloc(LOAD_BUF);
    }
    int64_t total = (int64_t)rate * seconds, sent = 0, done = 0, errors = 0;
    int64_t *lat = xcalloc((size_t)total, sizeof(*lat));
    int64_t interval = 1000000 / rate, t0 = now_us() + 10000;
    size_t bytes = 0;
    while (done < total) {
        int64_t now = now_us();
        /* due requests go out on free connections */
        while (sent < total && t0 + sent * interval <= now) {
            int k = -1;
            for (int i = 0; i < LOAD_CONNS && k < 0; i++)
                if (!cs[i].busy)
                    k = i;
            if (k < 0)
                break;
            cs[k].busy = true;
            cs[k].due_us = t0 + sent * interval;
            cs[k].len = 0;
            if (write(cs[k].fd, req, (size_t)rl) != rl) {
                fprintf(stderr, "bench_exporter: write failed\n");
                exit(1);
            }
            sent++;
        }
        struct pollfd p[LOAD_CONNS];
        for (int i = 0; i < LOAD_CONNS; i++)
            p[i] = (struct pollfd){.fd = cs[i].fd, .events = cs[i].busy ? POLLIN : 0};
        int64_t next = sent < total ? t0 + sent * interval - now_us() : 100000;
        poll(p, LOAD_CONNS, next > 0 ? (int)((next + 999) / 1000) : 0);
        for (int i = 0; i < LOAD_CONNS; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(cs[i].fd, cs[i].buf + cs[i].len, LOAD_BUF - 1 - cs[i].len);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0) {
                fprintf(stderr, "bench_exporter: the connection closed\n");
                exit(1);
            }
            cs[i].len += (size_t)r;
            int status = 0;
            size_t whole = lcomplete(&cs[i], &status);
            if (whole) {
                lat[done++] = now_us() - cs[i].due_us;
                errors += status != 200;
                bytes = whole;
                cs[i].busy = false;
            }
        }
    }
    int64_t elapsed = now_us() - t0;
    qsort(lat, (size_t)total, sizeof(*lat), cmp_i64);
#define PCT(q) ((double)lat[(size_t)((double)(total - 1) * (q))] / 1000.0)
    printf("exporter: %s: %lld requests at %d/s (%.0f/s achieved), %zu bytes each: p50 %.2f ms, "
           "p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, %lld not 200\n",
           label, (long long)total, rate, (double)total * 1e6 / (double)elapsed, bytes, PCT(0.5),
           PCT(0.99), PCT(0.999), (double)lat[total - 1] / 1000.0, (long long)errors);
    fflush(stdout);
    for (int i = 0; i < LOAD_CONNS; i++) {
        close(cs[i].fd);
        free(cs[i].buf);
    }
    free(cs);
    free(lat);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    log_init("bench_exporter");
    log_set_level(LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    atexit(exporter_kill_at_exit);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *url = NULL, *token = NULL, *path = "/v1/orgs/bench/usage?period=365d";
    int rate = 1000, seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--token"))
            token = argv[i + 1];
        else if (!strcmp(argv[i], "--path"))
            path = argv[i + 1];
        else if (!strcmp(argv[i], "--rate"))
            rate = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
    }
    if (url) { /* load only, against a running stack */
        char host[64];
        unsigned port;
        if (sscanf(url, "http://%63[0-9.]:%u", host, &port) != 2 || !token) {
            fprintf(stderr, "usage: bench_exporter --url http://IP:PORT --token T [--path P] "
                            "[--rate R] [--seconds S]\n");
            return 2;
        }
        bench_load(host, (uint16_t)port, path, token, rate, seconds, "real stack GET usage");
        return 0;
    }
    const char *bin = getenv("LICMON_BIN");
    if (bin) {
        snprintf(bench_bin, sizeof(bench_bin), "%s/licmon-exporter", bin);
    } else {
        char self[PATH_MAX - 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(bench_bin, sizeof(bench_bin), "%s/../bin/licmon-exporter", self);
    }
    uint64_t n = 1000000;
    if (getenv("LICMON_BENCH_EXPORT_SESSIONS"))
        n = strtoull(getenv("LICMON_BENCH_EXPORT_SESSIONS"), NULL, 10);
    snprintf(bench_dir, sizeof(bench_dir), "/tmp/lm-bench-exp-XXXXXX");
    if (!mkdtemp(bench_dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct fake f = {.n_sessions = n};
    char ep[300];
    snprintf(ep, sizeof(ep), "ipc://%s/agg.sock", bench_dir);
    f.router = zsock_open(ZMQ_ROUTER, ep, true, NULL);
    pthread_create(&f.th, NULL, fake_main, &f);

    bench_export("csv", n);
    bench_export("xlsx", n);
    pid_t pid = exporter_start();
    char *tok = admin_token();
    bench_load("127.0.0.1", bench_port, "/v1/orgs/bench/usage?period=365d&type=creator", tok, 1000,
               10, "GET usage 365 days (fake aggregator)");
    free(tok);
    exporter_stop(pid);

    atomic_store(&f.stop, true);
    pthread_join(f.th, NULL);
    zsock_close(&f.router);
    zsock_ctx_term();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bench_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_exporter: could not remove %s\n", bench_dir);
    curl_global_cleanup();
    return 0;
}
