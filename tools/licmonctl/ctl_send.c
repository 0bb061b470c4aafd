/* ctl_send: `licmonctl send` and the reliable batch sender it shares with
 * the demo feed. Events go to ingest's producer socket as EventBatch frames
 * over a DEALER, up to --window batches in flight; each waits for the BatchAck
 * with its batch_id. A missing ack means the socket is closed, reopened and
 * every unacknowledged batch sent again (Lazy Pirate): ingest reports the
 * events it already had as duplicates, so resending is always safe. */
#include "ctl.h"
#include "conf.h"
#include "event_json.h"
#include "log.h"
#include "timeutil.h"
#include "xmem.h"
#include "zsock.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CTL_WINDOW_MAX 32
#define CTL_LINE_MAX (1u << 20)
/* A JSON array is parsed whole (jansson takes several times its size):
 * NDJSON streams in bounded memory, so bigger files go that way */
#define CTL_ARRAY_FILE_MAX (32u << 20)
#define CTL_ACK_MAX (64 << 20)
_Static_assert(CTL_BATCH_BYTES == 4194304, "send --max-frame-bytes's default");

struct ctl_sender {
    struct ctl_sender_cfg cfg;
    void *sock;
    struct ctl_batch slot[CTL_WINDOW_MAX];
    bool busy[CTL_WINDOW_MAX];
    int inflight;
    uint64_t next_id;
    int misses; /* timeouts in a row without any acknowledgement */
    bool failed;
    struct ctl_totals totals;
};

static int ctl_sender_open(struct ctl_sender *s)
{
    struct zsock_opts o = ZSOCK_OPTS_DEFAULT;
    o.maxmsgsize = CTL_ACK_MAX;
    /* a socket that reconnected by itself would deliver later batches while
     * earlier ones, lost with the old connection, wait for their resend:
     * events would be journaled out of order */
    o.no_reconnect = true;
    const struct ctl_sender_cfg *c = &s->cfg;
    if (!c->server_key) {
        s->sock = zsock_open(ZMQ_DEALER, c->endpoint, false, &o);
        return s->sock ? 0 : -1;
    }
    /* CURVE keys must be set before the connection starts */
    s->sock = zsock_open(ZMQ_DEALER, NULL, false, &o);
    if (!s->sock ||
        zsock_set_curve_client(s->sock, c->server_key, c->public_key, c->secret_key) != 0 ||
        zmq_connect(s->sock, c->endpoint) != 0) {
        zsock_close(&s->sock);
        return -1;
    }
    return 0;
}

struct ctl_sender *ctl_sender_new(const struct ctl_sender_cfg *cfg)
{
    struct ctl_sender *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    if (s->cfg.window < 1)
        s->cfg.window = 1;
    if (s->cfg.window > CTL_WINDOW_MAX)
        s->cfg.window = CTL_WINDOW_MAX;
    xrandom(&s->next_id, sizeof(s->next_id));
    s->next_id = (s->next_id >> 1) | 1; /* never 0, room to count up */
    if (ctl_sender_open(s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void ctl_sender_free(struct ctl_sender **sp)
{
    struct ctl_sender *s = *sp;
    if (!s)
        return;
    zsock_close(&s->sock);
    for (int i = 0; i < CTL_WINDOW_MAX; i++)
        if (s->slot[i].ev)
            ctl_batch_free(&s->slot[i]);
    free(s);
    *sp = NULL;
}

const struct ctl_totals *ctl_sender_totals(const struct ctl_sender *s)
{
    return &s->totals;
}

static void ctl_sender_transmit(struct ctl_sender *s, struct ctl_batch *b)
{
    /* a full queue only delays the frame to the resend after the timeout */
    zsock_send(s->sock, NULL, b->packed, b->packed_len, ZMQ_DONTWAIT);
    b->deadline_ms = time_mono_ms() + s->cfg.timeout_ms;
}

static void ctl_sender_ack(struct ctl_sender *s, const uint8_t *data, size_t len)
{
    Licmon__V1__BatchAck *ack = licmon__v1__batch_ack__unpack(NULL, len, data);
    if (!ack)
        return; /* not an ack: the batch times out and goes again */
    for (int i = 0; i < CTL_WINDOW_MAX; i++) {
        struct ctl_batch *b = &s->slot[i];
        if (!s->busy[i] || b->id != ack->batch_id)
            continue;
        if (ctl_batch_ack(b, ack, &s->totals, s->cfg.on_reject, s->cfg.arg) != 0 &&
            s->cfg.on_refused)
            s->cfg.on_refused(s->cfg.arg, b, ack->error);
        if (s->cfg.on_acked)
            s->cfg.on_acked(s->cfg.arg, b);
        ctl_batch_reset(b);
        s->busy[i] = false;
        s->inflight--;
        s->misses = 0;
        break;
    }
    PB_FREE(batch_ack, ack);
}

/* Resends every unacknowledged batch on a fresh socket, oldest first. */
static void ctl_sender_reconnect(struct ctl_sender *s)
{
    zsock_close(&s->sock);
    if (ctl_sender_open(s) != 0)
        return;
    int order[CTL_WINDOW_MAX] = {0}, n = 0;
    for (int i = 0; i < CTL_WINDOW_MAX; i++) {
        if (!s->busy[i])
            continue;
        int j = n++;
        for (; j > 0 && s->slot[order[j - 1]].id > s->slot[i].id; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (int j = 0; j < n; j++)
        ctl_sender_transmit(s, &s->slot[order[j]]);
}

/* Waits for one acknowledgement or one timeout. 0, or -1 when delivery failed. */
static int ctl_sender_pump(struct ctl_sender *s)
{
    if (s->failed)
        return -1;
    int64_t now = time_mono_ms(), first = INT64_MAX;
    for (int i = 0; i < CTL_WINDOW_MAX; i++)
        if (s->busy[i] && s->slot[i].deadline_ms < first)
            first = s->slot[i].deadline_ms;
    if (first == INT64_MAX)
        return 0;
    long wait = first > now ? (long)(first - now) : 0;
    zmq_pollitem_t it = {.socket = s->sock, .events = ZMQ_POLLIN};
    int n = s->sock ? zmq_poll(&it, 1, wait) : zmq_poll(NULL, 0, wait);
    if (n < 0 && errno != EINTR)
        return -1;
    if (n > 0 && (it.revents & ZMQ_POLLIN)) {
        zmq_msg_t msg;
        bool bad;
        while (zsock_recv(s->sock, NULL, &msg, ZMQ_DONTWAIT, &bad) == 0) {
            ctl_sender_ack(s, zmq_msg_data(&msg), zmq_msg_size(&msg));
            zmq_msg_close(&msg);
        }
        return 0;
    }
    if (time_mono_ms() < first)
        return 0;
    s->misses++;
    if (s->cfg.retries >= 0 && s->misses > s->cfg.retries) {
        s->failed = true;
        return -1;
    }
    if (s->cfg.on_retry)
        s->cfg.on_retry(s->cfg.arg, s->misses, s->cfg.retries);
    ctl_sender_reconnect(s);
    if (!s->sock) /* could not even reopen: wait a timeout before the next try */
        for (int i = 0; i < CTL_WINDOW_MAX; i++)
            if (s->busy[i])
                s->slot[i].deadline_ms = time_mono_ms() + s->cfg.timeout_ms;
    return 0;
}

int ctl_sender_submit(struct ctl_sender *s, struct ctl_batch *b)
{
    while (s->inflight >= s->cfg.window)
        if (ctl_sender_pump(s) != 0)
            return -1;
    int k = 0;
    while (s->busy[k])
        k++;
    if (!s->slot[k].ev)
        ctl_batch_init(&s->slot[k], b->cap, b->max_frame);
    struct ctl_batch tmp = s->slot[k];
    s->slot[k] = *b;
    *b = tmp;
    ctl_batch_pack(&s->slot[k], s->next_id++);
    s->busy[k] = true;
    s->inflight++;
    if (s->sock)
        ctl_sender_transmit(s, &s->slot[k]);
    else
        s->slot[k].deadline_ms = time_mono_ms() + s->cfg.timeout_ms;
    return 0;
}

int ctl_sender_flush(struct ctl_sender *s)
{
    while (s->inflight > 0)
        if (ctl_sender_pump(s) != 0)
            return -1;
    return 0;
}

/* ---- licmonctl send ---- */

struct send_run {
    const char *const *files;
    struct ctl_sender *snd;
    struct ctl_batch batch;
    struct ctl_progress prog;
    uint64_t local_rejected, read_events, bytes_total, bytes_done;
    int retries, timeout_ms;
    const char *endpoint;
};

static void send_reject(void *arg, const struct ctl_src *src, const char *reason)
{
    struct send_run *r = arg;
    char where[600];
    if (src)
        ctl_note("%s: %s", ctl_src_format(where, sizeof(where), r->files, src), reason);
    else
        ctl_note("licmonctl send: %s", reason);
}

/* An event refused here, before sending (its line or element named): told
 * and counted. */
static void reject_local(struct send_run *r, struct ctl_src src, const char *reason)
{
    send_reject(r, &src, reason);
    r->local_rejected++;
}

static void send_refused(void *arg, const struct ctl_batch *b, const char *error)
{
    struct send_run *r = arg;
    char first[600], last[600];
    ctl_src_format(first, sizeof(first), r->files, &b->src[0]);
    ctl_src_format(last, sizeof(last), r->files, &b->src[b->n - 1]);
    ctl_note("%s..%s: ingest refused the whole batch of %zu events: %s%s", first, last, b->n, error,
             strstr(error, "bytes is over the limit") && b->n > 1
                 ? " (send --max-frame-bytes at most ingest's limit cuts smaller batches)"
             : strstr(error, "events is over the limit")
                 ? " (send --batch at most ingest's --max-batch-events)"
                 : "");
}

static void send_retry(void *arg, int attempt, int retries)
{
    struct send_run *r = arg;
    ctl_err("send", "no acknowledgement from %s within %d ms; resending (retry %d of %d)",
            r->endpoint, r->timeout_ms, attempt, retries);
}

static void send_progress(struct send_run *r)
{
    if (!r->prog.on)
        return;
    const struct ctl_totals *t = ctl_sender_totals(r->snd);
    char note[128];
    snprintf(note, sizeof(note), "%" PRIu64 " read, %" PRIu64 " acknowledged", r->read_events,
             t->accepted + t->duplicate + t->rejected);
    ctl_progress_update(&r->prog, r->bytes_done, note);
}

/* Queues one event text; -1 when delivery failed. */
static int send_event(struct send_run *r, const char *text, size_t len, struct ctl_src src)
{
    Licmon__V1__Event *ev = xmalloc(sizeof(*ev));
    char err[256];
    r->read_events++;
    if (event_json_parse(text, len, ev, err, sizeof(err)) != 0) {
        free(ev);
        reject_local(r, src, err);
        return 0;
    }
    if (!ctl_batch_room(&r->batch, ev) && ctl_sender_submit(r->snd, &r->batch) != 0) {
        event_json_clear(ev);
        free(ev);
        return -1;
    }
    ctl_batch_add(&r->batch, ev, src);
    if (ctl_batch_full(&r->batch) && ctl_sender_submit(r->snd, &r->batch) != 0)
        return -1;
    send_progress(r);
    return 0;
}

/* A file that is one JSON array of event objects. */
/* line0: the lines before the array's '[' (blank ones) */
static int send_array(struct send_run *r, FILE *f, uint32_t fi, uint32_t line0)
{
    char *buf = xmalloc(CTL_ARRAY_FILE_MAX + 1);
    size_t len = fread(buf, 1, CTL_ARRAY_FILE_MAX + 1, f);
    r->bytes_done += len;
    if (len > CTL_ARRAY_FILE_MAX) {
        reject_local(r, (struct ctl_src){fi, line0 + 1, false},
                     "a JSON array file larger than 32 MiB, so nothing of this file was sent: "
                     "send it as NDJSON (one event per line), which streams");
        free(buf);
        return 0;
    }
    json_error_t jerr;
    json_t *arr = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!json_is_array(arr)) {
        char reason[300];
        snprintf(reason, sizeof(reason),
                 "not a JSON array of events, so nothing of this file was sent (NDJSON, one "
                 "event per line, refuses only the bad line): %s",
                 arr ? "another JSON value" : jerr.text);
        reject_local(r, (struct ctl_src){fi, line0 + (uint32_t)(arr ? 1 : jerr.line), false},
                     reason);
        json_decref(arr);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++) {
        char *text = json_dumps(json_array_get(arr, i), JSON_COMPACT | JSON_ENCODE_ANY);
        struct ctl_src src = {fi, (uint32_t)(i + 1), true};
        rc = send_event(r, text ? text : "null", text ? strlen(text) : 4, src);
        free(text);
    }
    json_decref(arr);
    return rc;
}

/* Reads a line of at most cap bytes (its newline included) into buf, NUL
 * bytes and all, and its length into *len (fgets would hide both); -1 at
 * the end of the file. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int c;
    while (n < cap && (c = getc_unlocked(f)) != EOF) {
        buf[n++] = (char)c;
        if (c == '\n')
            break;
    }
    buf[n] = '\0';
    *len = n;
    return n ? 0 : -1;
}

/* Skips the rest of a line from c, its next byte already read, counting
 * the bytes as done. */
static void skip_rest_of_line(struct send_run *r, FILE *f, int c)
{
    for (; c != EOF && c != '\n'; c = getc(f))
        r->bytes_done++;
    r->bytes_done += c == '\n';
}

/* Skips a UTF-8 byte order mark opening the file (RFC 8259 lets a parser
 * ignore it; Windows editors write one). A first byte 0xEF that does not
 * start one cannot start JSON either: that first line is rejected, and 1
 * returned (the lines read). */
static uint32_t skip_bom(struct send_run *r, FILE *f, uint32_t fi)
{
    int c = getc(f);
    if (c != 0xEF) {
        if (c != EOF)
            ungetc(c, f);
        return 0;
    }
    r->bytes_done++;
    c = getc(f);
    if (c == 0xBB) {
        r->bytes_done++;
        c = getc(f);
        if (c == 0xBF) {
            r->bytes_done++;
            return 0;
        }
    }
    skip_rest_of_line(r, f, c);
    reject_local(r, (struct ctl_src){fi, 1, false},
                 "not JSON: starts with byte 0xEF, and not a byte order mark");
    return 1;
}

static int send_file(struct send_run *r, FILE *f, uint32_t fi)
{
    int c;
    uint32_t lineno = skip_bom(r, f, fi); /* lines read so far: the blank ones skipped count */
    while ((c = getc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n') {
        r->bytes_done++;
        lineno += c == '\n';
    }
    if (c == EOF)
        return 0;
    ungetc(c, f);
    if (c == '[')
        return send_array(r, f, fi, lineno);
    char *line = xmalloc(CTL_LINE_MAX + 2);
    int rc = 0;
    size_t len;
    while (rc == 0 && read_line(f, line, CTL_LINE_MAX + 1, &len) == 0) {
        lineno++;
        r->bytes_done += len;
        if (len > CTL_LINE_MAX && line[len - 1] != '\n') {
            skip_rest_of_line(r, f, getc(f));
            reject_local(r, (struct ctl_src){fi, lineno, false}, "line longer than 1 MiB");
            continue;
        }
        if (memchr(line, 0, len)) {
            reject_local(r, (struct ctl_src){fi, lineno, false}, "contains a NUL byte");
            continue;
        }
        char *s = line;
        if (!ctl_line_trim(&s, &len))
            continue;
        rc = send_event(r, s, len, (struct ctl_src){fi, lineno, false});
    }
    free(line);
    return rc;
}

int ctl_send_main(int argc, char **argv)
{
    char *dir, *endpoint, *server_key_file, *public_key_file, *secret_key_file;
    int64_t batch, max_frame, timeout_ms, retries, window;
    struct conf_opt opts[] = {
        CONF_STR("dir", "LICMON_DIR", "./licmon-run",
                 "stack folder; the producer endpoint comes from DIR/stack.json", &dir),
        CONF_STR("endpoint", "LICMON_ENDPOINT", "",
                 "ingest's producer endpoint (overrides --dir), e.g. tcp://host:7001", &endpoint),
        CONF_INT("batch", "LICMON_SEND_BATCH", 1000, 1, CTL_BATCH_MAX, "events per batch", &batch),
        CONF_INT("max-frame-bytes", "LICMON_SEND_MAX_FRAME_BYTES", 4194304, 1024, 268435456,
                 "largest batch frame sent (an event bigger still goes alone): at most ingest's "
                 "--max-frame-bytes",
                 &max_frame),
        CONF_INT("timeout-ms", "LICMON_SEND_TIMEOUT_MS", 5000, 10, 3600000,
                 "wait this long for a batch's acknowledgement before resending it", &timeout_ms),
        CONF_INT("retries", "LICMON_SEND_RETRIES", 20, 0, 1000000,
                 "resends without any acknowledgement before giving up (exit 3)", &retries),
        CONF_INT("window", "LICMON_SEND_WINDOW", 16, 1, CTL_WINDOW_MAX, "batches in flight at once",
                 &window),
        CONF_STR("curve-server-key", "LICMON_CURVE_SERVER_KEY", "",
                 "file with ingest's public CURVE key (Z85, first line): turns CURVE on",
                 &server_key_file),
        CONF_STR("curve-public-key", "LICMON_CURVE_PUBLIC_KEY", "",
                 "file with this producer's public CURVE key (see licmonctl keygen)",
                 &public_key_file),
        CONF_STR("curve-secret-key", "LICMON_CURVE_SECRET_KEY", "",
                 "file with this producer's secret CURVE key", &secret_key_file),
        CONF_END};
    char **files;
    int nfiles;
    conf_parse("licmonctl send",
               "licmonctl send [--dir DIR | --endpoint EP] FILE...\n"
               "Sends NDJSON events (one JSON object per line, or one JSON array per file;\n"
               "FILE - is stdin) to ingest in acknowledged batches, resending until each is\n"
               "acknowledged. Prints each rejected event as FILE:LINE: reason on stderr and\n"
               "\"accepted N, duplicate N, rejected N\" on stdout.\n"
               "Exit status: 0 all accepted or duplicate, 1 some rejected, 2 usage,\n"
               "3 not delivered. For a remote ingest on tcp with CURVE, pass the three\n"
               "--curve-* key files.",
               opts, argc, argv, 2, &files, &nfiles);
    int status = CTL_EXIT_OK;
    if (nfiles == 0) {
        ctl_err("send", "no FILE given (use - for stdin; see --help)");
        conf_free(opts);
        free(files);
        return CTL_EXIT_USAGE;
    }
    struct send_run r = {.files = (const char *const *)files,
                         .retries = (int)retries,
                         .timeout_ms = (int)timeout_ms};
    int nstdin = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (!strcmp(files[i], "-")) {
            if (++nstdin > 1) {
                ctl_err("send", "- (stdin) given twice");
                status = CTL_EXIT_USAGE;
            }
        } else if (stat(files[i], &st) != 0) {
            ctl_err("send", "%s: %s", files[i], strerror(errno));
            status = CTL_EXIT_USAGE;
        } else if (S_ISDIR(st.st_mode)) {
            ctl_err("send", "%s: is a folder", files[i]);
            status = CTL_EXIT_USAGE;
        } else if (S_ISREG(st.st_mode)) {
            r.bytes_total += (uint64_t)st.st_size;
        }
    }
    char server_key[41], public_key[41], secret_key[41];
    if (*server_key_file) {
        const char *bad = zsock_read_key(server_key_file, server_key) != 0   ? "curve-server-key"
                          : zsock_read_key(public_key_file, public_key) != 0 ? "curve-public-key"
                          : zsock_read_key(secret_key_file, secret_key) != 0 ? "curve-secret-key"
                                                                             : NULL;
        if (bad) {
            ctl_err("send", "--%s: no 40-character Z85 key on the first line of the file", bad);
            status = CTL_EXIT_USAGE;
        }
    }
    char *ep = *endpoint ? xstrdup(endpoint) : ctl_stack_producer(dir);
    r.endpoint = ep;
    struct ctl_sender_cfg cfg = {.endpoint = ep,
                                 .timeout_ms = (int)timeout_ms,
                                 .retries = (int)retries,
                                 .window = (int)window,
                                 .on_reject = send_reject,
                                 .on_refused = send_refused,
                                 .on_retry = send_retry,
                                 .server_key = *server_key_file ? server_key : NULL,
                                 .public_key = public_key,
                                 .secret_key = secret_key,
                                 .arg = &r};
    if (status == CTL_EXIT_OK && !(r.snd = ctl_sender_new(&cfg))) {
        ctl_err("send", "%s: not a ZeroMQ endpoint this build can connect to (--endpoint)", ep);
        status = CTL_EXIT_USAGE;
    }
    if (status != CTL_EXIT_OK) {
        free(ep);
        conf_free(opts);
        free(files);
        return status;
    }
    ctl_batch_init(&r.batch, (size_t)batch, (size_t)max_frame);
    ctl_progress_init(&r.prog, "sending", nstdin ? 0 : r.bytes_total);
    int rc = 0;
    for (int i = 0; i < nfiles && rc == 0; i++) {
        FILE *f = strcmp(files[i], "-") ? fopen(files[i], "r") : stdin;
        if (!f) {
            ctl_err("send", "%s: %s", files[i], strerror(errno));
            status = CTL_EXIT_FAIL;
            continue;
        }
        rc = send_file(&r, f, (uint32_t)i);
        if (ferror(f)) {
            ctl_err("send", "%s: read error: %s", files[i], strerror(errno));
            status = CTL_EXIT_FAIL;
        }
        if (f != stdin)
            fclose(f);
    }
    if (rc == 0 && r.batch.n > 0)
        rc = ctl_sender_submit(r.snd, &r.batch);
    if (rc == 0)
        rc = ctl_sender_flush(r.snd);
    ctl_progress_done(&r.prog);
    const struct ctl_totals *t = ctl_sender_totals(r.snd);
    printf("accepted %" PRIu64 ", duplicate %" PRIu64 ", rejected %" PRIu64 "\n", t->accepted,
           t->duplicate, t->rejected + r.local_rejected);
    fflush(stdout);
    if (rc != 0) {
        uint64_t done = t->accepted + t->duplicate + t->rejected + r.local_rejected;
        ctl_err("send",
                "no acknowledgement from %s after %d retries; %" PRIu64
                " events were not confirmed (sending them again is safe). Ingest is down, or "
                "paused while the pipeline works through a backlog (its log says so): then "
                "--retries with a higher count waits for it%s",
                ep, (int)retries, r.read_events > done ? r.read_events - done : 0,
                *server_key_file ? ". With CURVE, ingest does not answer a producer whose key "
                                   "it refuses or does not know: check --curve-server-key and "
                                   "that ingest's --curve-allowed-keys has this producer's "
                                   "public key"
                                 : "");
        status = CTL_EXIT_UNDELIVERED;
    } else if (status == CTL_EXIT_OK && t->rejected + r.local_rejected > 0) {
        status = CTL_EXIT_FAIL;
    }
    ctl_batch_free(&r.batch);
    ctl_sender_free(&r.snd);
    free(ep);
    conf_free(opts);
    free(files);
    return status;
}
