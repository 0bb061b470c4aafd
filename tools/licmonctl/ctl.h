/* ctl: licmonctl's private header, shared by its modules and by nothing
 * outside tools/licmonctl/ (the unit test includes the pure .c files).
 * main.c dispatches; each subcommand lives in its own module. */
#ifndef LICMONCTL_CTL_H
#define LICMONCTL_CTL_H
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- subcommands: each returns the process exit status ---- */
int ctl_up_main(int argc, char **argv);
int ctl_down_main(int argc, char **argv);
int ctl_send_main(int argc, char **argv);
int ctl_wait_main(int argc, char **argv);
int ctl_settings_main(int argc, char **argv);
int ctl_token_main(int argc, char **argv);
int ctl_export_main(int argc, char **argv);
int ctl_demo_main(int argc, char **argv);
int ctl_keygen_main(int argc, char **argv);
int ctl_flexlm_main(int argc, char **argv);

/* Exit statuses shared by the subcommands. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_UNDELIVERED 3

/* ---- ctl_batch.c (pure): batches, acknowledgements, restart backoff ---- */

#define CTL_BATCH_DEFAULT 1000
#define CTL_BATCH_MAX 10000
/* The largest frame a batch makes by default (send --max-frame-bytes): far
 * under ingest's default --max-frame-bytes (16 MiB), whatever the lines
 * hold. */
#define CTL_BATCH_BYTES (4u << 20)
/* A frame's bytes besides its events' (the batch id's key and varint) */
#define CTL_FRAME_OVERHEAD 16

/* Where an event came from: file (index into the file list) and line, or
 * the element number when the file is one JSON array. */
struct ctl_src {
    uint32_t file;
    uint32_t line;
    bool item;
};

struct ctl_batch {
    uint64_t id;
    size_t n, cap;
    size_t bytes;           /* the events' packed size, keys and lengths included */
    size_t max_frame;       /* the frame it may make (but for one event bigger) */
    Licmon__V1__Event **ev; /* owned until ctl_batch_pack frees them */
    struct ctl_src *src;
    uint8_t *packed; /* EventBatch, after ctl_batch_pack */
    size_t packed_len;
    int64_t deadline_ms; /* the sender's: when to give up waiting */
};

struct ctl_totals {
    uint64_t accepted, duplicate, rejected;
};

/* cap events, in a frame of at most max_frame bytes (0: CTL_BATCH_BYTES) */
void ctl_batch_init(struct ctl_batch *b, size_t cap, size_t max_frame);
void ctl_batch_free(struct ctl_batch *b);
/* Empties the batch for reuse (keeps its arrays). */
void ctl_batch_reset(struct ctl_batch *b);
/* cap events, or a frame of max_frame bytes */
bool ctl_batch_full(const struct ctl_batch *b);
/* Whether ev still fits: an empty batch takes any event (ingest tells one
 * over its limit), another takes it while the frame stays in max_frame. */
bool ctl_batch_room(const struct ctl_batch *b, const Licmon__V1__Event *ev);
/* Takes ev (a malloc'd, filled event) into the batch. */
void ctl_batch_add(struct ctl_batch *b, Licmon__V1__Event *ev, struct ctl_src src);
/* Packs the events as EventBatch{id, events} and frees them; the sources
 * stay for mapping rejections back. */
void ctl_batch_pack(struct ctl_batch *b, uint64_t id);

/* Called for each rejected event (src NULL: the index was outside the batch). */
typedef void (*ctl_reject_fn)(void *arg, const struct ctl_src *src, const char *reason);
/* Adds an acknowledgement of b to t and reports each rejection. Returns 0,
 * or -1 when the ack carries a whole-batch error (every event of the batch
 * is counted as rejected; the caller reports the error once). */
int ctl_batch_ack(const struct ctl_batch *b, const Licmon__V1__BatchAck *ack, struct ctl_totals *t,
                  ctl_reject_fn fn, void *arg);
/* "FILE:LINE" or "FILE[N]" (N from 1) into buf; returns buf. */
char *ctl_src_format(char *buf, size_t len, const char *const *files, const struct ctl_src *s);

/* Supervisor restart backoff: 100 ms doubling to 5 s, back to 100 ms when
 * the child had stayed up 30 s. Returns the delay before the restart and
 * advances *backoff_ms (start it at 0). */
#define CTL_BACKOFF_MIN_MS 100
#define CTL_BACKOFF_MAX_MS 5000
#define CTL_BACKOFF_RESET_MS 30000
int64_t ctl_backoff_next(int64_t *backoff_ms, int64_t uptime_ms);

/* Splits off one NDJSON line: strips a trailing CR and surrounding blanks in
 * place; returns false for a blank line. */
bool ctl_line_trim(char **line, size_t *len);

/* ---- ctl_model.c (pure): the demo traffic model ---- */

#define DEMO_ORG "demo"
#define DEMO_TZ "Europe/Berlin"
#define DEMO_USERS 40
#define DEMO_USER_TIMEOUT_S 1800
#define DEMO_LICENSE_TIMEOUT_S 7200 /* the settings default, mirrored by the seat model */

enum demo_type { DEMO_CREATOR, DEMO_REVIEWER, DEMO_STAKEHOLDER, DEMO_TEST_RUNNER, DEMO_NTYPES };

struct demo_license {
    const char *type;
    bool floating;
    int owned;
    int threshold_pct;   /* 0: the default */
    int expires_in_days; /* from the backfill's end; 0: none */
};
extern const struct demo_license demo_licenses[DEMO_NTYPES];

struct demo_user {
    uint8_t want;       /* the license type this user asks for */
    uint8_t active;     /* logged in and working */
    int8_t hold;        /* type of the seat held (-1: none) */
    uint8_t owl;        /* also works at night */
    uint8_t manual_end; /* the current session ends with a logout */
    uint8_t retries;    /* login attempts denied in a row */
    double diligence;
    int64_t next_ms;    /* when this user acts next */
    int64_t end_ms;     /* planned end of the current session */
    int64_t last_ms;    /* last login or activity */
    int64_t hold_until; /* a walked-away user's seat is released then */
};

struct demo_stats {
    uint64_t events, logins, activities, logouts, denials, downgrades, walkaways;
};

struct demo_model {
    uint64_t rng;
    int64_t now_ms;
    int64_t origin_ms;
    uint64_t seq; /* events emitted so far */
    struct demo_user u[DEMO_USERS];
    int64_t tz_hour; /* cache of the zone offset for one UTC hour */
    long tz_off_s;
    struct demo_stats stats;
};

struct demo_event {
    Licmon__V1__EventKind kind;
    int user;
    int64_t ts_ms;
    const char *license_type;   /* NULL: none */
    const char *requested_type; /* NULL: not a downgrade */
    char event_id[48];
    char user_name[32];
};

/* A model whose first action is at origin_ms; the same origin gives the same
 * events, so a restarted feed regenerates the same event ids. */
void demo_model_init(struct demo_model *m, int64_t origin_ms);
/* Runs the model up to limit_ms: fills ev with the next event at or before
 * limit_ms and returns 1, or returns 0 when none is due by then. */
int demo_model_step(struct demo_model *m, int64_t limit_ms, struct demo_event *ev);
/* When the model acts next (an action need not produce an event). */
int64_t demo_model_next_ms(const struct demo_model *m);
/* Seats of a type held at the model's current time. */
int demo_model_in_use(const struct demo_model *m, int type, int except_user);
/* Logins per hour of one user at instant ms (local time of DEMO_TZ). */
double demo_model_rate(struct demo_model *m, const struct demo_user *u, int64_t ms);

/* ---- ctl_progress.c: the progress bar and stderr messages ---- */

struct ctl_progress {
    bool on;
    const char *label;
    uint64_t total; /* 0: unknown */
    int64_t last_ms;
    bool drawn;
};
void ctl_progress_init(struct ctl_progress *p, const char *label, uint64_t total);
/* Redraws at most ten times a second; done of total, plus a short note. */
void ctl_progress_update(struct ctl_progress *p, uint64_t done, const char *note);
void ctl_progress_done(struct ctl_progress *p);
/* "licmonctl CMD: message" on stderr, clearing a progress bar first. */
void ctl_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A plain line on stderr, clearing a progress bar first. */
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- ctl_stack.c: the stack folder ---- */

#define CTL_NPROGRAMS 5
extern const char *const ctl_programs[CTL_NPROGRAMS];
#define CTL_DEFAULT_HTTP "127.0.0.1:8080"

struct ctl_stack {
    char *http;     /* HOST:PORT of the exporter's API */
    char *url;      /* http://HOST:PORT/ */
    char *producer; /* ingest's producer endpoint */
    char *health[CTL_NPROGRAMS];
    long supervisor_pid;
};
/* Reads DIR/stack.json; 0, or -1 with a reason in err. */
int ctl_stack_load(const char *dir, struct ctl_stack *st, char *err, size_t errlen);
void ctl_stack_free(struct ctl_stack *st);
/* Writes DIR/stack.json atomically; 0 or -1. */
int ctl_stack_save(const char *dir, const struct ctl_stack *st);
/* "http://HOST:PORT/" for an exporter address (0.0.0.0 -> 127.0.0.1); caller frees. */
char *ctl_stack_url(const char *hostport);
/* DIR/admin.token: created (lm_admin_ + 64 hex digits, 0600) when missing. 0 or -1. */
int ctl_token_ensure(const char *path, char *err, size_t errlen);
/* The first line of a token file, trimmed; caller frees; NULL with err. */
char *ctl_token_read(const char *path, char *err, size_t errlen);
/* The API base URL and bearer token for a subcommand: the --url/--token
 * flags when set, else DIR/stack.json and DIR/admin.token. 0 or -1 (err). */
int ctl_api_target(const char *dir, const char *url_flag, const char *token_flag, char **url,
                   char **token, char *err, size_t errlen);
/* The producer endpoint of the stack in DIR; caller frees. */
char *ctl_stack_producer(const char *dir);
/* An absolute form of path (which need not exist); caller frees. */
char *ctl_abspath(const char *path);

/* ---- ctl_http.c: the only licmonctl file that calls libcurl ---- */

struct ctl_http_resp {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
};
/* One request; body may be NULL. Returns 0 when an HTTP answer came back
 * (any status), -1 with the transport error in err. */
int ctl_http_request(const char *method, const char *url, const char *token, const char *body,
                     long timeout_ms, struct ctl_http_resp *out, char *err, size_t errlen);
void ctl_http_resp_free(struct ctl_http_resp *r);
/* GET url into the file at path; progress on a terminal. Returns 0 when an
 * answer came (status in *status), -1 with err. */
int ctl_http_download(const char *url, const char *token, const char *path, long *status, char *err,
                      size_t errlen);
/* true when GET http://HOSTPORT/healthz answers 200 within timeout_ms. */
bool ctl_http_healthy(const char *hostport, long timeout_ms);
/* URL-escapes s; caller frees. */
char *ctl_http_escape(const char *s);

/* ---- ctl_req.c: internal Request/Reply over a DEALER ---- */

struct ctl_req {
    char *endpoint;
    void *sock;
    uint64_t next_id;
};
void ctl_req_init(struct ctl_req *r, const char *endpoint);
void ctl_req_close(struct ctl_req *r);
/* Sends req (its id is set here) and waits up to timeout_ms for the reply
 * that echoes it. NULL on timeout (the socket is then reopened). */
Licmon__V1__Reply *ctl_req_call(struct ctl_req *r, Licmon__V1__Request *req, int timeout_ms);

/* ---- ctl_send.c: the reliable batch sender (send and demo-feed) ---- */

struct ctl_sender;
struct ctl_sender_cfg {
    const char *endpoint;
    int timeout_ms;
    int retries; /* -1: forever */
    int window;  /* batches in flight, 1..CTL_WINDOW_MAX (--window, 16 by default) */
    /* CURVE (Z85 keys, 40 characters) when server_key is set */
    const char *server_key, *public_key, *secret_key;
    ctl_reject_fn on_reject;
    /* a whole batch refused by ingest (its error) */
    void (*on_refused)(void *arg, const struct ctl_batch *b, const char *error);
    /* an acknowledgement went missing: attempt of retries */
    void (*on_retry)(void *arg, int attempt, int retries);
    void (*on_acked)(void *arg, const struct ctl_batch *b);
    void *arg;
};
/* NULL when the endpoint cannot be used. */
struct ctl_sender *ctl_sender_new(const struct ctl_sender_cfg *cfg);
void ctl_sender_free(struct ctl_sender **s);
/* Hands a filled batch over (it is packed here and *b gets an empty one
 * back); waits while the window is full. 0, or -1 when delivery failed. */
int ctl_sender_submit(struct ctl_sender *s, struct ctl_batch *b);
/* Waits until every batch is acknowledged; 0, or -1 when delivery failed. */
int ctl_sender_flush(struct ctl_sender *s);
const struct ctl_totals *ctl_sender_totals(const struct ctl_sender *s);

#endif
