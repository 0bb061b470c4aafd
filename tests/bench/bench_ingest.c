/* bench_ingest: the real licmon-ingest (LICMON_BIN, or ../bin beside this
 * binary) in a temp folder, driven over its producer socket:
 *   - throughput: 1,000,000 events in batches of 1,000, 16 batches in
 *     flight, every ack after the synced journal write;
 *   - latency: a steady 10,000 events/s (a batch of 100 every 10 ms) for
 *     10 s, the time from each batch's send to its ack, p50/p99/max.
 * Prints numbers; asserts nothing about time. */
#include "pb.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 1000
#define WINDOW 16
#define TOTAL 1000000
#define RATE_BATCH 100
#define RATE_PERIOD_MS 10
#define RATE_SECONDS 10

static char dir[64];
static pid_t ingest_pid;

static void start_ingest(void)
{
    char bin[PATH_MAX];
    const char *env = getenv("LICMON_BIN");
    if (env) {
        snprintf(bin, sizeof(bin), "%s/licmon-ingest", env);
    } else {
        char self[PATH_MAX - 64];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(bin, sizeof(bin), "%s/../bin/licmon-ingest", self);
    }
    snprintf(dir, sizeof(dir), "/tmp/lm-bench-ingest-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    ingest_pid = fork();
    if (ingest_pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(bin, bin, "--dir", dir, (char *)NULL);
        _exit(127);
    }
    usleep(500 * 1000);
}

static void stop_ingest(void)
{
    kill(ingest_pid, SIGTERM);
    waitpid(ingest_pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_ingest: could not remove %s\n", dir);
}

/* A packed batch of n login events with ids from first on. */
static uint8_t *make_batch(uint64_t batch_id, uint64_t first, int n, int64_t ts, size_t *len)
{
    Licmon__V1__EventBatch b = LICMON__V1__EVENT_BATCH__INIT;
    Licmon__V1__Event *evs = xcalloc((size_t)n, sizeof(*evs));
    Licmon__V1__Event **ptrs = xcalloc((size_t)n, sizeof(*ptrs));
    char(*ids)[32] = xcalloc((size_t)n, 32);
    char(*users)[32] = xcalloc((size_t)n, 32);
    for (int i = 0; i < n; i++) {
        licmon__v1__event__init(&evs[i]);
        snprintf(ids[i], 32, "e%llu", (unsigned long long)(first + (uint64_t)i));
        snprintf(users[i], 32, "u%llu@bench", (unsigned long long)((first + (uint64_t)i) % 50000));
        evs[i].event_id = ids[i];
        evs[i].org = "bench";
        evs[i].user = users[i];
        evs[i].ts_ms = ts + i;
        evs[i].kind = i % 10 ? LICMON__V1__EVENT_KIND__ACTIVITY : LICMON__V1__EVENT_KIND__LOGIN;
        evs[i].license_type = "creator";
        ptrs[i] = &evs[i];
    }
    b.batch_id = batch_id;
    b.events = ptrs;
    b.n_events = (size_t)n;
    uint8_t *buf = pb_pack(&b.base, len);
    free(evs), free(ptrs), free(ids), free(users);
    return buf;
}

/* Waits for one ack; returns its batch_id (0 on timeout or error). */
static uint64_t recv_ack(void *s, int timeout_ms, uint32_t *accepted)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return 0;
    zmq_msg_t msg;
    if (zsock_recv(s, NULL, &msg, 0, NULL) != 0)
        return 0;
    Licmon__V1__BatchAck *ack =
        licmon__v1__batch_ack__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (!ack)
        return 0;
    uint64_t id = ack->batch_id;
    *accepted += ack->accepted;
    licmon__v1__batch_ack__free_unpacked(ack, NULL);
    return id;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    start_ingest();
    char ep[128];
    snprintf(ep, sizeof(ep), "ipc://%s/run/ingest-producer.sock", dir);
    void *s = zsock_open(ZMQ_DEALER, ep, false, NULL);
    int64_t ts = time_now_ms() - 3600 * 1000;

    /* throughput */
    int64_t t0 = time_mono_ms();
    uint64_t sent = 0, next_id = 1;
    uint32_t accepted = 0;
    int inflight = 0;
    while (sent < TOTAL || inflight > 0) {
        while (sent < TOTAL && inflight < WINDOW) {
            size_t len;
            uint8_t *buf = make_batch(next_id++, sent, BATCH, ts + (int64_t)sent, &len);
            zsock_send(s, NULL, buf, len, 0);
            free(buf);
            sent += BATCH;
            inflight++;
        }
        if (!recv_ack(s, 30000, &accepted)) {
            fprintf(stderr, "bench_ingest: no ack within 30 s\n");
            stop_ingest();
            return 1;
        }
        inflight--;
    }
    double secs = (double)(time_mono_ms() - t0) / 1000.0;
    printf("ingest: %u events acknowledged (journal synced) in %.2f s = %.0f events/s "
           "(batches of %d, %d in flight)\n",
           accepted, secs, accepted / secs, BATCH, WINDOW);

    /* latency at a steady rate */
    int nb = RATE_SECONDS * 1000 / RATE_PERIOD_MS;
    int64_t *lat = xcalloc((size_t)nb, sizeof(*lat));
    int64_t *sent_at = xcalloc((size_t)nb + 1, sizeof(*sent_at));
    uint64_t base_id = next_id;
    int got = 0;
    int64_t start = time_mono_ms();
    for (int i = 0; i < nb || got < nb;) {
        int64_t now = time_mono_ms();
        if (i < nb && now >= start + (int64_t)i * RATE_PERIOD_MS) {
            size_t len;
            uint8_t *buf = make_batch(base_id + (uint64_t)i, TOTAL + (uint64_t)i * RATE_BATCH,
                                      RATE_BATCH, ts + TOTAL + i * RATE_BATCH, &len);
            sent_at[i] = time_mono_ms();
            zsock_send(s, NULL, buf, len, 0);
            free(buf);
            i++;
            continue;
        }
        int wait = i < nb ? (int)(start + (int64_t)i * RATE_PERIOD_MS - now) : 30000;
        uint64_t id = recv_ack(s, wait < 0 ? 0 : wait, &accepted);
        if (id >= base_id && id < base_id + (uint64_t)nb) {
            lat[got++] = time_mono_ms() - sent_at[id - base_id];
        } else if (i >= nb && id == 0) {
            fprintf(stderr, "bench_ingest: acks missing at the steady rate\n");
            break;
        }
    }
    qsort(lat, (size_t)got, sizeof(*lat), cmp_i64);
    if (got > 0)
        printf("ingest: ack latency at %d events/s for %d s: p50 %lld ms, p99 %lld ms, max %lld "
               "ms (%d batches of %d)\n",
               RATE_BATCH * 1000 / RATE_PERIOD_MS, RATE_SECONDS, (long long)lat[got / 2],
               (long long)lat[(size_t)got * 99 / 100], (long long)lat[got - 1], got, RATE_BATCH);
    free(lat);
    free(sent_at);
    zsock_close(&s);
    zsock_ctx_term();
    stop_ingest();
    return 0;
}
