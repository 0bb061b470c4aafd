/* ctl_batch: the pure parts of licmonctl send and of the supervisor: event
 * batches with the source line of every event, acknowledgements mapped back
 * to "FILE:LINE: reason", NDJSON line trimming, and the restart backoff.
 * No sockets, no clock: the unit test includes this file directly. */
#include "ctl.h"
#include "event_json.h"
#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_batch_init(struct ctl_batch *b, size_t cap, size_t max_frame)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap ? cap : 1;
    b->max_frame = max_frame ? max_frame : CTL_BATCH_BYTES;
    b->ev = xcalloc(b->cap, sizeof(*b->ev));
    b->src = xcalloc(b->cap, sizeof(*b->src));
}

static void ctl_batch_free_events(struct ctl_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->ev[i]) {
            event_json_clear(b->ev[i]);
            free(b->ev[i]);
            b->ev[i] = NULL;
        }
}

void ctl_batch_reset(struct ctl_batch *b)
{
    ctl_batch_free_events(b);
    free(b->packed);
    b->packed = NULL;
    b->packed_len = 0;
    b->n = 0;
    b->bytes = 0;
    b->id = 0;
    b->deadline_ms = 0;
}

void ctl_batch_free(struct ctl_batch *b)
{
    ctl_batch_reset(b);
    free(b->ev);
    free(b->src);
    memset(b, 0, sizeof(*b));
}

/* what ev adds to the frame: its key, its length's varint (5 at most), its bytes */
static size_t event_bytes(const Licmon__V1__Event *ev)
{
    return 1 + 5 + licmon__v1__event__get_packed_size(ev);
}

bool ctl_batch_full(const struct ctl_batch *b)
{
    return b->n >= b->cap || b->bytes + CTL_FRAME_OVERHEAD >= b->max_frame;
}

bool ctl_batch_room(const struct ctl_batch *b, const Licmon__V1__Event *ev)
{
    return b->n == 0 ||
           (b->n < b->cap && b->bytes + event_bytes(ev) + CTL_FRAME_OVERHEAD <= b->max_frame);
}

void ctl_batch_add(struct ctl_batch *b, Licmon__V1__Event *ev, struct ctl_src src)
{
    if (b->n >= b->cap)
        abort(); /* callers check ctl_batch_full first */
    b->ev[b->n] = ev;
    b->src[b->n] = src;
    b->n++;
    b->bytes += event_bytes(ev);
}

void ctl_batch_pack(struct ctl_batch *b, uint64_t id)
{
    Licmon__V1__EventBatch msg = LICMON__V1__EVENT_BATCH__INIT;
    msg.batch_id = id;
    msg.n_events = b->n;
    msg.events = b->ev;
    free(b->packed);
    b->packed = pb_pack(&msg.base, &b->packed_len);
    b->id = id;
    ctl_batch_free_events(b);
}

int ctl_batch_ack(const struct ctl_batch *b, const Licmon__V1__BatchAck *ack, struct ctl_totals *t,
                  ctl_reject_fn fn, void *arg)
{
    if (ack->error && *ack->error) {
        t->rejected += b->n;
        return -1;
    }
    t->accepted += ack->accepted;
    t->duplicate += ack->duplicate;
    t->rejected += ack->rejected;
    for (size_t i = 0; i < ack->n_rejections; i++) {
        const Licmon__V1__Rejection *r = ack->rejections[i];
        const char *reason = r->reason && *r->reason ? r->reason : "rejected";
        if (r->index < b->n) {
            fn(arg, &b->src[r->index], reason);
        } else {
            char msg[512];
            snprintf(msg, sizeof(msg), "ingest named event %u of a batch of %zu: %.300s", r->index,
                     b->n, reason);
            fn(arg, NULL, msg);
        }
    }
    return 0;
}

char *ctl_src_format(char *buf, size_t len, const char *const *files, const struct ctl_src *s)
{
    const char *name = files ? files[s->file] : "?";
    if (!strcmp(name, "-"))
        name = "<stdin>";
    if (s->item)
        snprintf(buf, len, "%s[%u]", name, s->line);
    else
        snprintf(buf, len, "%s:%u", name, s->line);
    return buf;
}

int64_t ctl_backoff_next(int64_t *backoff_ms, int64_t uptime_ms)
{
    if (*backoff_ms < CTL_BACKOFF_MIN_MS || uptime_ms >= CTL_BACKOFF_RESET_MS)
        *backoff_ms = CTL_BACKOFF_MIN_MS;
    int64_t delay = *backoff_ms;
    *backoff_ms = delay * 2 > CTL_BACKOFF_MAX_MS ? CTL_BACKOFF_MAX_MS : delay * 2;
    return delay;
}

static bool ctl_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool ctl_line_trim(char **line, size_t *len)
{
    char *s = *line;
    size_t n = *len;
    while (n > 0 && ctl_blank(s[n - 1]))
        n--;
    while (n > 0 && ctl_blank(*s)) {
        s++;
        n--;
    }
    s[n] = '\0';
    *line = s;
    *len = n;
    return n > 0;
}
