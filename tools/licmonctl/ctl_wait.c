/* ctl_wait: `licmonctl wait`, the barrier of tests and scripts: it reads
 * ingest's journal head once, then polls each stage's status until the
 * stage has applied everything up to that head, and has had an answer from
 * the process of its upstream running now (so a database replaced under a
 * restart cannot pass for the one applied). */
#include "ctl.h"
#include "conf.h"
#include "prog.h"
#include "timeutil.h"
#include "xmem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_CALL_MS 1000
#define WAIT_POLL_MS 50

/* each stage after the program it reads */
static const char *const wait_stages[] = {"ingest", "sessionizer", "aggregator", "alerter"};

/* One status request to a program; 1 with *out, 0 when no answer came, -1
 * when it answered with an error or a problem that stops it (in err). */
static int wait_status(struct ctl_req *r, int timeout_ms, Licmon__V1__StatusReply *out, char *err,
                       size_t errlen)
{
    Licmon__V1__Request req = LICMON__V1__REQUEST__INIT;
    req.body_case = LICMON__V1__REQUEST__BODY_STATUS;
    req.status = true;
    Licmon__V1__Reply *rep = ctl_req_call(r, &req, timeout_ms);
    if (!rep)
        return 0;
    int rc = 1;
    if (rep->error && *rep->error) {
        snprintf(err, errlen, "%s", rep->error);
        rc = -1;
    } else if (rep->body_case != LICMON__V1__REPLY__BODY_STATUS || !rep->status) {
        snprintf(err, errlen, "the answer carries no status");
        rc = -1;
    } else if (rep->status->problem && *rep->status->problem) {
        snprintf(err, errlen, "%s", rep->status->problem);
        rc = -1;
    } else {
        out->applied_journal_seq = rep->status->applied_journal_seq;
        out->head_seq = rep->status->head_seq;
        out->instance = rep->status->instance;
        out->upstream_instance = rep->status->upstream_instance;
        out->paused = rep->status->paused;
        out->log_backlog_bytes = rep->status->log_backlog_bytes;
    }
    PB_FREE(reply, rep);
    return rc;
}

#define WAIT_NSTAGES (sizeof(wait_stages) / sizeof(*wait_stages))

/* The stage a paused stage i waits for: past every later stage that is
 * paused too (each waits for its own consumer), the first one that is not
 * (or that does not answer at once). */
static size_t wait_cause(const char *dir, size_t i)
{
    while (i + 1 < WAIT_NSTAGES - 1) {
        char *ep = prog_endpoint(dir, wait_stages[i + 1]), err[256];
        struct ctl_req r;
        ctl_req_init(&r, ep);
        Licmon__V1__StatusReply st = LICMON__V1__STATUS_REPLY__INIT;
        int got = wait_status(&r, 1000, &st, err, sizeof(err));
        ctl_req_close(&r);
        free(ep);
        if (got <= 0 || !st.paused)
            break;
        i++;
    }
    return i + 1;
}

int ctl_wait_main(int argc, char **argv)
{
    char *dir;
    int64_t timeout_s;
    struct conf_opt opts[] = {CONF_STR("dir", "LICMON_DIR", "./licmon-run", "stack folder", &dir),
                              CONF_INT("timeout", "LICMON_WAIT_TIMEOUT", 60, 1, 86400,
                                       "give up after this many seconds (exit 1)", &timeout_s),
                              CONF_END};
    conf_parse("licmonctl wait",
               "licmonctl wait [--dir DIR] [--timeout S]\n"
               "Returns once everything ingest has journaled so far has been applied by the\n"
               "sessionizer, the aggregator and the alerter. Exit status: 0 done, 1 timeout\n"
               "(names the stage that lags) or a stage that cannot go on (says why), 2 usage.",
               opts, argc, argv, 2, NULL, NULL);
    char *abs = ctl_abspath(dir);
    int64_t deadline = time_mono_ms() + timeout_s * 1000;
    int status = CTL_EXIT_OK;
    char err[1024] = "";
    Licmon__V1__StatusReply st = LICMON__V1__STATUS_REPLY__INIT;
    struct ctl_progress prog;
    ctl_progress_init(&prog, "waiting", 0);

    /* the journal head: everything up to it must be applied downstream */
    char *ep = prog_endpoint(abs, "ingest");
    struct ctl_req r;
    ctl_req_init(&r, ep);
    int got = 0;
    while (got == 0 && time_mono_ms() < deadline) {
        int64_t left = deadline - time_mono_ms();
        got =
            wait_status(&r, left < WAIT_CALL_MS ? (int)left : WAIT_CALL_MS, &st, err, sizeof(err));
        ctl_progress_update(&prog, 0, "asking ingest for its journal head");
    }
    ctl_req_close(&r);
    uint64_t head = st.head_seq;
    if (got <= 0) {
        ctl_progress_done(&prog);
        if (got < 0)
            ctl_err("wait", "ingest (%s) answered: %s", ep, err);
        else
            ctl_err("wait", "no answer from ingest (%s) within %" PRId64 " s; is the stack up?", ep,
                    timeout_s);
        status = CTL_EXIT_FAIL;
    }
    free(ep);
    prog.total = head;
    for (size_t i = 1; status == CTL_EXIT_OK && i < WAIT_NSTAGES; i++) {
        const char *name = wait_stages[i];
        ep = prog_endpoint(abs, name);
        char *up_ep = prog_endpoint(abs, wait_stages[i - 1]);
        struct ctl_req up;
        ctl_req_init(&r, ep);
        ctl_req_init(&up, up_ep);
        bool answered = false, done = false;
        uint64_t applied = 0;
        while (!done && time_mono_ms() < deadline) {
            int64_t left = deadline - time_mono_ms();
            int call_ms = left < WAIT_CALL_MS ? (int)left : WAIT_CALL_MS;
            got = wait_status(&r, call_ms, &st, err, sizeof(err));
            if (got < 0)
                break;
            if (got == 0)
                continue;
            answered = true;
            applied = st.applied_journal_seq;
            /* Its applied seq is about the log its upstream serves now only
             * once that very process (which may have restarted, on another
             * database) has answered it: until then a replaced log would
             * look applied. */
            Licmon__V1__StatusReply ust = LICMON__V1__STATUS_REPLY__INIT;
            char uerr[1024];
            done = applied >= head && wait_status(&up, call_ms, &ust, uerr, sizeof(uerr)) > 0 &&
                   (ust.instance == 0 || ust.instance == st.upstream_instance);
            char note[128];
            snprintf(note, sizeof(note), "%s at %" PRIu64 " of %" PRIu64, name, applied, head);
            ctl_progress_update(&prog, applied, note);
            if (!done)
                usleep(WAIT_POLL_MS * 1000);
        }
        ctl_req_close(&r);
        ctl_req_close(&up);
        free(up_ep);
        if (!done) {
            ctl_progress_done(&prog);
            if (got < 0)
                ctl_err("wait", "%s (%s) answered: %s", name, ep, err);
            else if (!answered)
                ctl_err("wait", "no answer from %s (%s) within %" PRId64 " s", name, ep, timeout_s);
            else if (applied >= head)
                ctl_err("wait", "%s has had no answer from %s since that started (%" PRId64 " s)",
                        name, wait_stages[i - 1], timeout_s);
            else if (st.paused && i + 1 < WAIT_NSTAGES)
                ctl_err("wait",
                        "%s lags: applied journal seq %" PRIu64 " of %" PRIu64 " after %" PRId64
                        " s; it is paused, as its log holds %" PRIu64 " MB that %s has not "
                        "applied (over its --max-backlog-mb): see %s",
                        name, applied, head, timeout_s, st.log_backlog_bytes >> 20,
                        wait_stages[i + 1], wait_stages[wait_cause(abs, i)]);
            else
                ctl_err("wait",
                        "%s lags: applied journal seq %" PRIu64 " of %" PRIu64 " (%" PRIu64
                        " behind) after %" PRId64 " s",
                        name, applied, head, head - applied, timeout_s);
            status = CTL_EXIT_FAIL;
        }
        free(ep);
    }
    ctl_progress_done(&prog);
    free(abs);
    conf_free(opts);
    return status;
}
