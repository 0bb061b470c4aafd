/* flexlm: FlexLM debug logs into licmon events (see flexlm.h). Three passes
 * over the lines that carry a time ("H:MM:SS (daemon) text"):
 *   1. dating. A dated line (TIMESTAMP, lmgrd's start, the system date, the
 *      SLOG start date) gives its date; any other line is put within 12
 *      hours of the line before it (lmgrd writes a TIMESTAMP every 6 hours),
 *      so midnight moves the date on and a line a little out of order stays
 *      on its day. The lines before the log's first dated line count back
 *      from it. The local time becomes UTC in the server's zone; a line up
 *      to MAX_BEHIND_MS before the line before it counts at that line's
 *      time, so time never goes back; more is an error (logs out of order,
 *      or the server's clock set back).
 *      A last line with no newline is still being written: it is left for
 *      the next import.
 *   2. ends. Seats FlexLM never checked in: when lmgrd starts a vendor
 *      daemon again, that daemon's seats ended at the line before (the log's
 *      last sign of life); when a daemon exits, or lmgrd itself, at that
 *      line; after a day with no line at all (the server was down, or the
 *      log has a hole), at the line before the hole. Never before a line
 *      already passed, so a log sent again, grown, agrees with what was sent.
 *   3. events, in time order: before each line, the heartbeats and ends due
 *      before it, from a heap.
 * A licmon user holds one seat at a time and a FlexLM user one license of
 * each feature at once, so the licmon user is "user@host/type": per type
 * the numbers are FlexLM's; `all` counts seats held. Several checkouts of
 * one type by one user@host hold one seat until the last is checked in
 * (FlexLM's duplicate grouping by user and host; at a shutdown the server
 * logs one IN (SHUTDOWN) for all of them, and that releases the seat). */
#include "flexlm.h"
#include "hmap.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALF_DAY_S 43200
#define AMBIGUOUS_SLACK_S 600            /* a repeated hour's first pass, within jitter */
#define MAX_BEHIND_MS (10 * 60 * 1000LL) /* a line out of order, not a clock set back */
#define GAP_MS (24 * 3600 * 1000LL)      /* a day without a line: the log has a hole */
#define FL_NONE INT64_MAX

struct fl_file {
    char *name;
    char *text;
    size_t len;
};

struct fl_end { /* seats that end: when, and before which line that is known */
    int64_t ms;
    size_t fire; /* the line before which they end; SIZE_MAX: never */
};

#define FL_NO_END ((struct fl_end){FL_NONE, SIZE_MAX})

struct fl_line {
    uint32_t file, lineno;
    uint32_t daemon;   /* index into f->daemon */
    int32_t tod;       /* seconds since local midnight */
    int64_t local;     /* local seconds since the epoch (pass 1) */
    int64_t ms;        /* UTC (pass 1) */
    int32_t ends;      /* pass 2: the daemon whose seats this line ends, or -1 */
    struct fl_end own; /* pass 2: that end, or FL_NO_END */
    struct fl_end all; /* pass 2: the end of every seat this line makes, or FL_NO_END */
    struct fl_end end; /* pass 2: the end of the seats this line takes */
    const char *text;  /* after "(daemon) ", NUL-terminated */
};

struct fl_daemon {
    char *name;
    struct fl_end next; /* pass 2, going back: the next end of its seats */
};

struct fl_hold {
    char *user; /* "user@host/type" */
    char *type;
    uint32_t count; /* checkouts not yet checked in */
    struct fl_end end;
    uint32_t hb_gen, end_gen; /* the heap's current entries carry these */
    bool gone;
};

struct fl_due { /* a heap entry: a heartbeat or the end of a seat */
    int64_t ms;
    bool end;
    size_t fire; /* an end: the line before which it is known */
    uint32_t gen;
    size_t hold; /* index into f->hold */
};

struct flexlm {
    struct flexlm_cfg cfg;
    const struct tz *zone;
    struct hmap *type_map;   /* feature -> type */
    struct hmap *type_owner; /* type -> daemon index + 1 */
    struct fl_file *file;
    size_t nfile;
    struct fl_line *line;
    size_t nline, capline;
    struct fl_daemon *daemon;
    size_t ndaemon, capdaemon;
    struct hmap *daemon_ix; /* name -> index + 1 */
    struct fl_hold **hold;  /* every seat of the run, held or gone */
    size_t nhold, caphold;
    struct hmap *held; /* user -> index + 1, the seats held */
    struct fl_due *heap;
    size_t nheap, capheap;
    struct hmap *ids; /* "kind NUL user" -> occurrences at ids_ms */
    int64_t ids_ms;
    EVP_MD_CTX *md;
    flexlm_emit_fn emit;
    flexlm_warn_fn warn;
    void *arg;
    struct flexlm_stats st;
};

static int fl_parse_map(struct flexlm *f, const char *map, char *err, size_t errlen)
{
    char *copy = xstrdup(map), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        char *eq = strchr(item, '=');
        char *end = eq ? eq : item + strlen(item);
        while (end > item && isspace((unsigned char)end[-1]))
            end--;
        if (!eq || end == item) {
            snprintf(err, errlen, "--type-map: \"%.80s\" is not FEATURE=type", item);
            rc = -1;
            break;
        }
        *end = '\0';
        char *type = eq + 1;
        while (isspace((unsigned char)*type))
            type++;
        for (char *t = type + strlen(type); t > type && isspace((unsigned char)t[-1]);)
            *--t = '\0';
        if (!settings_valid_type(type) || !strcmp(type, "all")) {
            snprintf(err, errlen,
                     "--type-map: license type \"%.80s\" must match [a-z0-9_]{1,32} and not be "
                     "all",
                     type);
            rc = -1;
        } else if (hmap_gets(f->type_map, item)) {
            snprintf(err, errlen, "--type-map: feature \"%.80s\" is mapped twice", item);
            rc = -1;
        } else {
            hmap_puts(f->type_map, item, xstrdup(type));
        }
    }
    free(copy);
    return rc;
}

struct flexlm *flexlm_new(const struct flexlm_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg->org || !settings_valid_org(cfg->org)) {
        snprintf(err, errlen, "--org \"%.80s\" must match [A-Za-z0-9._-]{1,64}",
                 cfg->org ? cfg->org : "");
        return NULL;
    }
    const struct tz *zone = cfg->timezone && *cfg->timezone ? tz_get(cfg->timezone) : NULL;
    if (!zone) {
        snprintf(err, errlen,
                 "--timezone \"%.80s\" is not a time zone of the system zoneinfo (the license "
                 "server's zone, e.g. Europe/Madrid)",
                 cfg->timezone ? cfg->timezone : "");
        return NULL;
    }
    if (!cfg->source || !*cfg->source || strlen(cfg->source) > 64) {
        snprintf(err, errlen, "--source \"%.80s\" must be 1-64 bytes",
                 cfg->source ? cfg->source : "");
        return NULL;
    }
    if (cfg->heartbeat_ms < 0) {
        snprintf(err, errlen, "--heartbeat must be 0 (none) or more");
        return NULL;
    }
    struct flexlm *f = xcalloc(1, sizeof(*f));
    f->cfg = *cfg;
    f->zone = zone;
    f->type_map = hmap_new();
    f->type_owner = hmap_new();
    f->daemon_ix = hmap_new();
    f->held = hmap_new();
    f->ids = hmap_new();
    if (!(f->md = EVP_MD_CTX_new()))
        abort();
    if (cfg->type_map && fl_parse_map(f, cfg->type_map, err, errlen) != 0)
        flexlm_free(&f);
    return f;
}

void flexlm_free(struct flexlm **fp)
{
    struct flexlm *f = *fp;
    if (!f)
        return;
    hmap_free(&f->type_map, free);
    hmap_free(&f->type_owner, NULL);
    for (size_t i = 0; i < f->nfile; i++) {
        free(f->file[i].name);
        free(f->file[i].text);
    }
    free(f->file);
    free(f->line);
    for (size_t i = 0; i < f->ndaemon; i++)
        free(f->daemon[i].name);
    free(f->daemon);
    hmap_free(&f->daemon_ix, NULL);
    for (size_t i = 0; i < f->nhold; i++) {
        free(f->hold[i]->user);
        free(f->hold[i]->type);
        free(f->hold[i]);
    }
    free(f->hold);
    hmap_free(&f->held, NULL);
    free(f->heap);
    hmap_free(&f->ids, free);
    EVP_MD_CTX_free(f->md);
    free(f);
    *fp = NULL;
}

void flexlm_add(struct flexlm *f, const char *name, char *text, size_t len)
{
    text = xrealloc(text, len + 1); /* lines are cut in place, the last one too */
    text[len] = '\0';
    f->file = xrealloc(f->file, (f->nfile + 1) * sizeof(*f->file));
    f->file[f->nfile++] = (struct fl_file){xstrdup(name), text, len};
}

const struct flexlm_stats *flexlm_stats(const struct flexlm *f)
{
    return &f->st;
}

/* p, an array of *cap elements of size bytes, with room for element n */
static void *fl_room(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return p;
    *cap = *cap ? 2 * *cap : first;
    return xrealloc(p, *cap * size);
}

/* ---- reading lines ---- */

static uint32_t fl_daemon_index(struct flexlm *f, const char *name, size_t n)
{
    uintptr_t ix = (uintptr_t)hmap_get(f->daemon_ix, name, n);
    if (ix)
        return (uint32_t)(ix - 1);
    f->daemon = fl_room(f->daemon, &f->capdaemon, f->ndaemon, sizeof(*f->daemon), 8);
    f->daemon[f->ndaemon] = (struct fl_daemon){xstrndup(name, n), FL_NO_END};
    hmap_put(f->daemon_ix, name, n, (void *)(uintptr_t)(f->ndaemon + 1));
    return (uint32_t)f->ndaemon++;
}

static int fl_digits(const char **p, int min, int max, int *out)
{
    int n = 0, v = 0;
    while (n < max && isdigit((unsigned char)(*p)[n]))
        v = v * 10 + ((*p)[n++] - '0');
    if (n < min)
        return -1;
    *p += n;
    *out = v;
    return 0;
}

/* " H:MM:SS (daemon) text": the time of day and the daemon, or -1. */
static int fl_parse_timed(struct flexlm *f, const char *s, struct fl_line *l)
{
    const char *p = s;
    int h, m, sec;
    while (*p == ' ')
        p++;
    if (fl_digits(&p, 1, 2, &h) || *p++ != ':' || fl_digits(&p, 2, 2, &m) || *p++ != ':' ||
        fl_digits(&p, 2, 2, &sec) || h > 23 || m > 59 || sec > 59 || *p++ != ' ' || *p++ != '(')
        return -1;
    const char *name = p;
    while (*p && *p != ')' && *p != ' ')
        p++;
    if (*p != ')' || p == name || p[1] != ' ')
        return -1;
    l->daemon = fl_daemon_index(f, name, (size_t)(p - name));
    l->tod = h * 3600 + m * 60 + sec;
    l->text = p + 2;
    return 0;
}

static void fl_split(struct flexlm *f, uint32_t fi)
{
    struct fl_file *file = &f->file[fi];
    char *s = file->text, *end = s + file->len;
    if (file->len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
        s += 3;
    for (uint32_t lineno = 1; s < end; lineno++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *stop = nl ? nl : end;
        if (!nl && fi + 1 == f->nfile) { /* still being written: read it next time */
            f->st.unfinished++;
            break;
        }
        char *e = stop;
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0'; /* flexlm_add left a byte after the text */
        f->st.lines++;
        struct fl_line l = {.file = fi,
                            .lineno = lineno,
                            .ends = -1,
                            .own = FL_NO_END,
                            .all = FL_NO_END,
                            .end = FL_NO_END};
        if (fl_parse_timed(f, s, &l) == 0) {
            f->line = fl_room(f->line, &f->capline, f->nline, sizeof(*f->line), 1024);
            f->line[f->nline++] = l;
        }
        s = stop + 1;
    }
}

/* ---- pass 1: dates ---- */

static const char *const fl_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int fl_civil(int y, int m, int d, int64_t *days)
{
    if (y < 1980 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    *days = time_days_from_civil(y, (unsigned)m, (unsigned)d);
    int64_t yy;
    unsigned mm, dd;
    time_civil_from_days(*days, &yy, &mm, &dd);
    return mm == (unsigned)m ? 0 : -1; /* 31 June is not a date */
}

/* "M/D/YYYY" */
static int fl_mdy(const char *p, int64_t *days)
{
    int m, d, y;
    if (fl_digits(&p, 1, 2, &m) || *p++ != '/' || fl_digits(&p, 1, 2, &d) || *p++ != '/' ||
        fl_digits(&p, 4, 4, &y))
        return -1;
    return fl_civil(y, m, d, days);
}

/* "Www Mmm DD YYYY" */
static int fl_wmdy(const char *p, int64_t *days)
{
    while (isalpha((unsigned char)*p))
        p++;
    if (*p++ != ' ')
        return -1;
    int m = 0, d, y;
    while (m < 12 && strncmp(p, fl_months[m], 3) != 0)
        m++;
    if (m == 12 || p[3] != ' ')
        return -1;
    p += 4;
    if (fl_digits(&p, 1, 2, &d) || *p++ != ' ' || fl_digits(&p, 4, 4, &y))
        return -1;
    return fl_civil(y, m + 1, d, days);
}

/* The date a line states, if it states one. */
static int fl_line_date(const struct flexlm *f, const struct fl_line *l, int64_t *days)
{
    const char *t = l->text, *p;
    bool lmgrd = !strcmp(f->daemon[l->daemon].name, "lmgrd");
    if (!strncmp(t, "TIMESTAMP ", 10))
        return fl_mdy(t + 10, days);
    if (lmgrd && !strncmp(t, "Server's System Date and Time: ", 31))
        return fl_wmdy(t + 31, days);
    if (t[0] == '(' && t[1] == '@' && (p = strstr(t, "-SLOG@) Start-Date: ")))
        return fl_wmdy(p + 20, days);
    if (lmgrd && strstr(t, " started on ") && (p = strrchr(t, '(')))
        return fl_mdy(p + 1, days);
    return -1;
}

/* tod - from as seconds in (-12 h, 12 h]: the line nearest the one before */
static int64_t fl_near(int32_t tod, int32_t from)
{
    int64_t d = tod - from;
    if (d > HALF_DAY_S)
        d -= 2 * HALF_DAY_S;
    if (d <= -HALF_DAY_S)
        d += 2 * HALF_DAY_S;
    return d;
}

/* Local seconds -> UTC ms in the server's zone. In a repeated hour the
 * earlier instant, unless the log has already passed it or the line before
 * is already in the hour's second pass. */
static int64_t fl_utc(struct flexlm *f, int64_t local_s, int64_t prev_ms)
{
    int64_t o1 = tz_offset_s(f->zone, (local_s - 86400) * 1000);
    int64_t o2 = tz_offset_s(f->zone, (local_s + 86400) * 1000);
    int64_t u1 = local_s - o1, u2 = local_s - o2;
    bool v1 = tz_offset_s(f->zone, u1 * 1000) == o1, v2 = tz_offset_s(f->zone, u2 * 1000) == o2;
    if (v1 && v2 && u1 != u2) {
        f->st.ambiguous++;
        int64_t early = u1 < u2 ? u1 : u2, late = u1 < u2 ? u2 : u1;
        int64_t late_off = u1 < u2 ? o2 : o1;
        bool second_pass = prev_ms != FL_NONE && prev_ms >= early * 1000 &&
                           tz_offset_s(f->zone, prev_ms) == late_off;
        bool passed = prev_ms != FL_NONE && (early + AMBIGUOUS_SLACK_S) * 1000 < prev_ms;
        return (second_pass || passed ? late : early) * 1000;
    }
    if (v2 && !v1)
        return u2 * 1000;
    return u1 * 1000; /* valid, or in a skipped hour: read with the offset before it */
}

/* Lines [from, to) counted back from line `to`, which is dated. */
static void fl_date_back(struct flexlm *f, size_t from, size_t to)
{
    for (size_t j = to; j-- > from;)
        f->line[j].local = f->line[j + 1].local + fl_near(f->line[j].tod, f->line[j + 1].tod);
}

/* Line i: its own date, or the one nearest the line before. */
static void fl_date_on(struct flexlm *f, size_t i)
{
    struct fl_line *l = &f->line[i];
    int64_t days;
    if (fl_line_date(f, l, &days) == 0)
        l->local = days * 86400 + l->tod;
    else
        l->local = f->line[i - 1].local + fl_near(l->tod, f->line[i - 1].tod);
}

static int fl_date_lines(struct flexlm *f, char *err, size_t errlen)
{
    if (!f->nline) {
        snprintf(err, errlen, "no FlexLM log line (\"H:MM:SS (daemon) ...\") in the input");
        return -1;
    }
    /* the first date: the lines before count back from it, the lines after
     * go on from it (each file from the one before) */
    size_t first = 0;
    int64_t days = 0;
    while (first < f->nline && fl_line_date(f, &f->line[first], &days) != 0)
        first++;
    if (first == f->nline) {
        snprintf(err, errlen,
                 "no date in the log: it has no TIMESTAMP line, no lmgrd start line and no "
                 "\"Server's System Date\" line");
        return -1;
    }
    f->line[first].local = days * 86400 + f->line[first].tod;
    fl_date_back(f, 0, first);
    for (size_t k = first + 1; k < f->nline; k++)
        fl_date_on(f, k);
    int64_t prev = FL_NONE;
    for (size_t i = 0; i < f->nline; i++) {
        struct fl_line *l = &f->line[i];
        l->ms = fl_utc(f, l->local, prev);
        if (prev != FL_NONE && l->ms < prev) {
            if (prev - l->ms > MAX_BEHIND_MS) {
                char when[16], was[40];
                time_format_date(l->local / 86400, when, sizeof(when));
                time_format_rfc3339(prev, was, sizeof(was));
                snprintf(err, errlen,
                         "%s:%u: dated %s %02d:%02d:%02d, %" PRId64
                         " minutes before the line before it (%s): the logs are out of order "
                         "(give them oldest first) or the server's clock was set back",
                         f->file[l->file].name, l->lineno, when, l->tod / 3600, l->tod / 60 % 60,
                         l->tod % 60, (prev - l->ms) / 60000, was);
                return -1;
            }
            f->st.behind++; /* a line a little out of order: at the time of the one before */
            l->ms = prev;
        }
        prev = l->ms;
    }
    f->st.first_ms = f->line[0].ms;
    f->st.last_ms = f->line[f->nline - 1].ms;
    return 0;
}

/* ---- pass 2: the ends of seats FlexLM never checked in ---- */

/* "Started D (pid N)", "REStarted D (internet tcp_port P pid N)": D */
static int fl_started(const char *t, const char **name, size_t *n)
{
    if (!strncmp(t, "REStarted ", 10))
        t += 10;
    else if (!strncmp(t, "Started ", 8))
        t += 8;
    else
        return -1;
    const char *e = strchr(t, ' ');
    if (!e || e == t || e[1] != '(' || !strstr(e, "pid "))
        return -1;
    *name = t;
    *n = (size_t)(e - t);
    return 0;
}

static struct fl_end fl_nearer(struct fl_end a, struct fl_end b)
{
    return a.fire <= b.fire ? a : b;
}

static void fl_find_ends(struct flexlm *f)
{
    uint32_t lmgrd = fl_daemon_index(f, "lmgrd", 5);
    for (size_t i = 0; i < f->nline; i++) {
        struct fl_line *l = &f->line[i];
        const char *t = l->text, *name, *e;
        size_t n;
        int64_t before = i ? f->line[i - 1].ms : l->ms;
        if (i && l->ms - before > GAP_MS) { /* at the line before the hole */
            f->st.gaps++;
            l->all = (struct fl_end){before, i};
        }
        if (l->daemon != lmgrd)
            continue;
        if (fl_started(t, &name, &n) == 0) { /* at the line before the restart */
            f->st.restarts++;
            l->ends = (int32_t)fl_daemon_index(f, name, n);
            l->own = (struct fl_end){before, i};
        } else if ((e = strstr(t, " exited with status")) && e > t &&
                   !memchr(t, ' ', (size_t)(e - t))) { /* at this line */
            l->ends = (int32_t)fl_daemon_index(f, t, (size_t)(e - t));
            l->own = (struct fl_end){l->ms, i + 1};
        } else if (!strncmp(t, "EXITING DUE TO", 14) && l->all.fire == SIZE_MAX) {
            l->all = (struct fl_end){l->ms, i + 1};
        }
    }
    /* going back: each line's seats end at the next end for its daemon or
     * for all; an end at a line (fire i + 1) covers that line, one before
     * it (fire i) only the lines before */
    struct fl_end next_all = FL_NO_END;
    for (size_t i = f->nline; i-- > 0;) {
        struct fl_line *l = &f->line[i];
        if (l->all.fire == i + 1)
            next_all = l->all;
        if (l->own.fire == i + 1)
            f->daemon[l->ends].next = l->own;
        l->end = fl_nearer(f->daemon[l->daemon].next, next_all);
        if (l->all.fire == i)
            next_all = l->all;
        if (l->own.fire == i)
            f->daemon[l->ends].next = l->own;
    }
}

/* ---- pass 3: events ---- */

/* The id of an event: a hash of the source, the kind, the user, the time and
 * how many such events came before (the same checkout twice in a second). */
static void fl_event_id(struct flexlm *f, const char *kind, const char *user, int64_t ms,
                        char out[36])
{
    /* events come in time order: only this instant's can be the same again */
    if (ms != f->ids_ms) {
        hmap_free(&f->ids, free);
        f->ids = hmap_new();
        f->ids_ms = ms;
    }
    size_t kl = strlen(kind), ul = strlen(user), klen = kl + 1 + ul;
    char key[16 + 1 + 256]; /* kinds are short, users at most 256 bytes */
    if (kl >= 16 || ul > 256)
        abort();
    memcpy(key, kind, kl + 1);
    memcpy(key + kl + 1, user, ul);
    uint64_t *seen = hmap_get(f->ids, key, klen);
    if (!seen) {
        seen = xcalloc(1, sizeof(*seen));
        hmap_put(f->ids, key, klen, seen);
    }
    char num[48];
    int nl = snprintf(num, sizeof(num), "%" PRId64 "%c%" PRIu64, ms, 0, (*seen)++);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(f->md, f->cfg.source, strlen(f->cfg.source) + 1) ||
        !EVP_DigestUpdate(f->md, kind, kl + 1) || !EVP_DigestUpdate(f->md, user, ul + 1) ||
        !EVP_DigestUpdate(f->md, num, (size_t)nl) || !EVP_DigestFinal_ex(f->md, md, &mdlen))
        abort();
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "fl-", 3);
    for (int i = 0; i < 16; i++) {
        out[3 + 2 * i] = hex[md[i] >> 4];
        out[4 + 2 * i] = hex[md[i] & 15];
    }
    out[35] = '\0';
}

static void fl_emit(struct flexlm *f, Licmon__V1__EventKind kind, const char *idkind,
                    const char *user, const char *type, int64_t ms)
{
    char id[36];
    fl_event_id(f, idkind, user, ms, id);
    Licmon__V1__Event ev;
    licmon__v1__event__init(&ev);
    ev.event_id = id;
    ev.org = (char *)f->cfg.org;
    ev.user = (char *)user;
    ev.ts_ms = ms;
    ev.kind = kind;
    ev.license_type = (char *)(type ? type : "");
    f->st.events++;
    f->emit(f->arg, &ev);
}

/* Heap order: time, then ends before heartbeats, then user: the same order
 * every run. */
static bool fl_due_before(const struct flexlm *f, const struct fl_due *a, const struct fl_due *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms;
    if (a->end != b->end)
        return a->end;
    if (a->fire != b->fire) /* an end known sooner first */
        return a->fire < b->fire;
    return strcmp(f->hold[a->hold]->user, f->hold[b->hold]->user) < 0;
}

static void fl_heap_push(struct flexlm *f, int64_t ms, bool end, size_t fire, size_t hold)
{
    struct fl_hold *h = f->hold[hold];
    f->heap = fl_room(f->heap, &f->capheap, f->nheap, sizeof(*f->heap), 64);
    size_t i = f->nheap++;
    struct fl_due d = {ms, end, fire, end ? h->end_gen : h->hb_gen, hold};
    while (i && fl_due_before(f, &d, &f->heap[(i - 1) / 2])) {
        f->heap[i] = f->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    f->heap[i] = d;
}

static struct fl_due fl_heap_pop(struct flexlm *f)
{
    struct fl_due top = f->heap[0], last = f->heap[--f->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= f->nheap)
            break;
        if (c + 1 < f->nheap && fl_due_before(f, &f->heap[c + 1], &f->heap[c]))
            c++;
        if (!fl_due_before(f, &f->heap[c], &last))
            break;
        f->heap[i] = f->heap[c];
        i = c;
    }
    if (f->nheap)
        f->heap[i] = last;
    return top;
}

/* A seat's next heartbeat from `from`, and its end if that is another. */
static void fl_schedule(struct flexlm *f, size_t hold, int64_t from, struct fl_end end)
{
    struct fl_hold *h = f->hold[hold];
    int64_t hb = f->cfg.heartbeat_ms;
    h->hb_gen++;
    if (hb > 0 && from + hb < end.ms)
        fl_heap_push(f, from + hb, false, SIZE_MAX, hold);
    if (end.fire != h->end.fire) {
        h->end = end;
        h->end_gen++;
        if (end.fire != SIZE_MAX)
            fl_heap_push(f, end.ms, true, end.fire, hold);
    }
}

static void fl_gone(struct flexlm *f, size_t hold)
{
    struct fl_hold *h = f->hold[hold];
    h->gone = true;
    hmap_dels(f->held, h->user);
}

/* Before line `line` (at hb_before): emits, in order, the heartbeats due
 * before that instant and the ends known by that line. An end not yet known
 * is never before a heartbeat due (its instant is a line's not yet read). */
static void fl_sweep(struct flexlm *f, int64_t hb_before, size_t line)
{
    while (f->nheap) {
        const struct fl_due *top = &f->heap[0];
        if (!(top->end ? top->fire <= line : top->ms < hb_before))
            break;
        struct fl_due d = fl_heap_pop(f);
        struct fl_hold *h = f->hold[d.hold];
        if (h->gone || d.gen != (d.end ? h->end_gen : h->hb_gen))
            continue; /* superseded */
        if (d.end) {
            f->st.lost++;
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGOUT, "logout", h->user, NULL, d.ms);
            fl_gone(f, d.hold);
        } else {
            f->st.heartbeats++;
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "heartbeat", h->user, h->type, d.ms);
            fl_schedule(f, d.hold, d.ms, h->end);
        }
    }
}

/* The license type of a feature, or NULL (why in reason). */
static const char *fl_type(struct flexlm *f, const char *feature, char buf[33], bool *ignored,
                           char *reason, size_t rlen)
{
    const char *mapped = hmap_gets(f->type_map, feature);
    *ignored = false;
    if (mapped)
        return mapped;
    if (f->cfg.only_mapped) {
        *ignored = true;
        return NULL;
    }
    size_t n = strlen(feature);
    if (n > 32) {
        snprintf(reason, rlen,
                 "feature \"%.64s\" is longer than a license type (32 characters): name its "
                 "type with --type-map",
                 feature);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)feature[i];
        buf[i] = isalnum(c) && c < 0x80 ? (char)tolower(c) : '_';
    }
    buf[n] = '\0';
    if (!strcmp(buf, "all")) {
        snprintf(reason, rlen,
                 "feature \"%s\" would be the type all, which licmon keeps for every type: "
                 "name its type with --type-map",
                 feature);
        return NULL;
    }
    return buf;
}

/* The user as UTF-8: a name that is not UTF-8 is read as Latin-1. */
static char *fl_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) {
        json_decref(j);
        return xstrndup(s, n);
    }
    char *out = xmalloc(2 * n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            *o++ = (char)c;
        } else {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = '\0';
    return out;
}

/* `"FEATURE" [(version)] user@host [(reason)]`; *shutdown: the reason is
 * "(SHUTDOWN)" */
static int fl_parse_use(const char *t, char **feature, char **ident, bool *shutdown, char *reason,
                        size_t rlen)
{
    *shutdown = false;
    if (*t != '"') {
        snprintf(reason, rlen, "no quoted feature name");
        return -1;
    }
    const char *fe = strchr(t + 1, '"');
    if (!fe || fe == t + 1) {
        snprintf(reason, rlen, "no quoted feature name");
        return -1;
    }
    const char *p = fe + 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '(') { /* a version or host id group */
        int depth = 0;
        do {
            depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
            p++;
        } while (*p && depth > 0);
        while (*p == ' ' || *p == '\t')
            p++;
    }
    const char *e = p + strlen(p);
    if (e > p && e[-1] == ')') { /* the reason at the end, parentheses nested */
        int depth = 0;
        const char *q = e;
        do {
            q--;
            depth += *q == ')' ? 1 : *q == '(' ? -1 : 0;
        } while (q > p && depth > 0);
        if (depth == 0 && q > p && (q[-1] == ' ' || q[-1] == '\t')) {
            *shutdown = !strcmp(q, "(SHUTDOWN)");
            e = q;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        }
    }
    for (const char *c = p; c < e; c++)
        if ((unsigned char)*c < 0x20) {
            snprintf(reason, rlen, "a control character in the user name");
            return -1;
        }
    if (e == p || !memchr(p, '@', (size_t)(e - p))) {
        snprintf(reason, rlen, "no user@host after the feature");
        return -1;
    }
    *feature = xstrndup(t + 1, (size_t)(fe - t - 1));
    *ident = fl_utf8(p, (size_t)(e - p));
    return 0;
}

enum fl_op { FL_OUT, FL_IN, FL_DENIED };

/* The seat of a checkout: its index, taken now if it was free. */
static size_t fl_take(struct flexlm *f, const char *user, const char *type)
{
    uintptr_t ix = (uintptr_t)hmap_gets(f->held, user);
    if (ix)
        return ix - 1;
    struct fl_hold *h = xcalloc(1, sizeof(*h));
    h->user = xstrdup(user);
    h->type = xstrdup(type);
    h->end = FL_NO_END;
    f->hold = fl_room(f->hold, &f->caphold, f->nhold, sizeof(*f->hold), 64);
    f->hold[f->nhold++] = h;
    hmap_puts(f->held, user, (void *)(uintptr_t)f->nhold);
    return f->nhold - 1;
}

static void fl_use(struct flexlm *f, const struct fl_line *l, enum fl_op op, const char *t)
{
    char reason[240], tbuf[33];
    char *feature = NULL, *ident = NULL, *user = NULL;
    bool ignored, shutdown;
    const char *type;
    if (fl_parse_use(t, &feature, &ident, &shutdown, reason, sizeof(reason)) != 0)
        goto malformed;
    if (!(type = fl_type(f, feature, tbuf, &ignored, reason, sizeof(reason)))) {
        if (ignored) {
            f->st.ignored++;
            goto done;
        }
        goto malformed;
    }
    /* a type is one daemon's: its restarts end its seats */
    uintptr_t owner = (uintptr_t)hmap_gets(f->type_owner, type);
    if (!owner) {
        hmap_puts(f->type_owner, type, (void *)(uintptr_t)(l->daemon + 1));
    } else if (owner != l->daemon + 1) {
        snprintf(reason, sizeof(reason),
                 "type %s is daemon %.40s's, and this is daemon %.40s's feature \"%.40s\": map it "
                 "to a type of its own",
                 type, f->daemon[owner - 1].name, f->daemon[l->daemon].name, feature);
        goto malformed;
    }
    user = xasprintf("%s/%s", ident, type);
    if (strlen(user) > 256) {
        snprintf(reason, sizeof(reason), "user \"%.40s...\" and type make over 256 bytes", ident);
        goto malformed;
    }
    uintptr_t ix = (uintptr_t)hmap_gets(f->held, user);
    switch (op) {
    case FL_OUT: {
        f->st.checkouts++;
        size_t hi = fl_take(f, user, type);
        struct fl_hold *h = f->hold[hi];
        if (h->count++ == 0)
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGIN, "login", user, type, l->ms);
        else
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "activity", user, type, l->ms);
        fl_schedule(f, hi, l->ms, l->end);
        break;
    }
    case FL_IN:
        f->st.checkins++;
        if (!ix) {
            f->st.unmatched++;
        } else if (shutdown || --f->hold[ix - 1]->count == 0) { /* a shutdown: one IN for all */
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGOUT, "logout", user, NULL, l->ms);
            fl_gone(f, ix - 1);
        } else {
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "activity", user, type, l->ms);
            fl_schedule(f, ix - 1, l->ms, f->hold[ix - 1]->end);
        }
        break;
    case FL_DENIED:
        f->st.denials++;
        fl_emit(f, LICMON__V1__EVENT_KIND__DENIED, "denied", user, type, l->ms);
        break;
    }
    goto done;
malformed:
    f->st.malformed++;
    if (f->warn)
        f->warn(f->arg, f->file[l->file].name, l->lineno, reason);
done:
    free(feature);
    free(ident);
    free(user);
}

int flexlm_run(struct flexlm *f, flexlm_emit_fn emit, flexlm_warn_fn warn, void *arg, char *err,
               size_t errlen)
{
    f->emit = emit;
    f->warn = warn;
    f->arg = arg;
    f->nline = 0;
    for (uint32_t i = 0; i < f->nfile; i++)
        fl_split(f, i);
    if (fl_date_lines(f, err, errlen) != 0)
        return -1;
    fl_find_ends(f);
    static const struct {
        const char *tag;
        size_t n;
        int op; /* enum fl_op, or -1: counted only */
    } kinds[] = {{"OUT: ", 5, FL_OUT},
                 {"IN: ", 4, FL_IN},
                 {"DENIED: ", 8, FL_DENIED},
                 {"UNSUPPORTED: ", 13, -1}};
    for (size_t i = 0; i < f->nline; i++) {
        const struct fl_line *l = &f->line[i];
        fl_sweep(f, l->ms, i);
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strncmp(l->text, kinds[k].tag, kinds[k].n) != 0)
                continue;
            if (kinds[k].op < 0)
                f->st.unsupported++;
            else
                fl_use(f, l, (enum fl_op)kinds[k].op, l->text + kinds[k].n);
            break;
        }
    }
    /* heartbeats only before the last line's instant, ends only those its
     * lines made known: the log grown later agrees */
    fl_sweep(f, f->st.last_ms, f->nline);
    f->st.open_at_end = hmap_count(f->held);
    return 0;
}
