/* flexlm: FlexLM debug logs into licmon events (see flexlm.h). Three passes
 * over the lines that carry a time ("H:MM:SS (daemon) text"):
 *   1. dating: the day advances when the time of day falls back by more than
 *      ROLL_S (midnight; a DST fall-back repeats at most an hour), and every
 *      dated line (TIMESTAMP, lmgrd's start, the system date) sets it anew;
 *      lines before the first dated line count back from it. A line dated
 *      before the line before it (the server's clock set back) counts at
 *      that line's time, so events go out in time order and ids stay unique;
 *   2. restarts: when lmgrd starts a vendor daemon again, the seats that
 *      daemon had out were lost at its last line before the restart; after
 *      a day with no line at all (lmgrd writes a TIMESTAMP every 6 hours:
 *      the server was down, or the log has a hole) every seat ended at the
 *      last line before it;
 *   3. events, in time order, with the heartbeats and releases due before
 *      each line swept out first.
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

#define ROLL_S 4200                 /* a fall-back of over 70 minutes is midnight */
#define AMBIGUOUS_SLACK_S 600       /* a repeated hour's first pass, within jitter */
#define FL_NONE INT64_MAX           /* no restart ahead */
#define GAP_MS (24 * 3600 * 1000LL) /* a day without a line: the log has a hole */

struct fl_file {
    char *name;
    char *text;
    size_t len;
};

struct fl_line {
    uint32_t file, lineno;
    uint32_t daemon;  /* index into f->daemon */
    int32_t restarts; /* the daemon lmgrd starts on this line, or -1 */
    bool gap;         /* the first line after a hole in the log */
    int32_t tod;      /* seconds since local midnight */
    int64_t day_off;  /* days after the first line */
    int64_t ms;       /* UTC, after pass 1 */
    int64_t end_by;   /* this daemon's seats are lost then (pass 2) */
    const char *text; /* after "(daemon) ", NUL-terminated */
};

struct fl_daemon {
    char *name;
    int64_t last_ms; /* pass 2: its latest line so far, or FL_NONE */
    int64_t next_death;
};

struct fl_hold {
    char *user; /* "user@host/type" */
    char *type;
    uint32_t daemon;
    uint32_t count; /* checkouts not yet checked in */
    int64_t next_hb;
    int64_t end_by;
    bool lost; /* a sweep found its daemon restarted */
};

struct fl_idkey {
    char *key;
    size_t len;
};

struct fl_due { /* a heartbeat or a release found by a sweep */
    int64_t ms;
    const char *user;
    size_t hold;
    bool release;
};

struct flexlm {
    struct flexlm_cfg cfg;
    const struct tz *zone;
    struct hmap *type_map; /* feature -> type */
    struct fl_file *file;
    size_t nfile;
    struct fl_line *line;
    size_t nline, capline;
    struct fl_daemon *daemon;
    size_t ndaemon, capdaemon;
    struct hmap *daemon_ix; /* name -> index + 1 */
    struct fl_hold **hold;
    size_t nhold, caphold;
    struct hmap *hold_ix;   /* user -> index + 1 */
    int64_t next_due;       /* no sweep is needed before this */
    struct hmap *ids;       /* "kind NUL user" -> occurrences at ids_ms */
    struct fl_idkey *idkey; /* the keys in ids, to empty it */
    size_t nidkey, capidkey;
    int64_t ids_ms;
    EVP_MD_CTX *md;
    struct fl_due *due;
    size_t ndue, capdue;
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
        if (!settings_valid_type(type)) {
            snprintf(err, errlen, "--type-map: license type \"%.80s\" must match [a-z0-9_]{1,32}",
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
    if (cfg->type_map && fl_parse_map(f, cfg->type_map, err, errlen) != 0) {
        flexlm_free(&f);
        return NULL;
    }
    f->daemon_ix = hmap_new();
    f->hold_ix = hmap_new();
    f->ids = hmap_new();
    if (!(f->md = EVP_MD_CTX_new()))
        abort();
    return f;
}

static void fl_hold_free(struct fl_hold *h)
{
    free(h->user);
    free(h->type);
    free(h);
}

void flexlm_free(struct flexlm **fp)
{
    struct flexlm *f = *fp;
    if (!f)
        return;
    hmap_free(&f->type_map, free);
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
    for (size_t i = 0; i < f->nhold; i++)
        fl_hold_free(f->hold[i]);
    free(f->hold);
    hmap_free(&f->hold_ix, NULL);
    hmap_free(&f->ids, free);
    for (size_t i = 0; i < f->nidkey; i++)
        free(f->idkey[i].key);
    free(f->idkey);
    EVP_MD_CTX_free(f->md);
    free(f->due);
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

/* ---- reading lines ---- */

static uint32_t fl_daemon_index(struct flexlm *f, const char *name, size_t n)
{
    uintptr_t ix = (uintptr_t)hmap_get(f->daemon_ix, name, n);
    if (ix)
        return (uint32_t)(ix - 1);
    if (f->ndaemon == f->capdaemon) {
        f->capdaemon = f->capdaemon ? 2 * f->capdaemon : 8;
        f->daemon = xrealloc(f->daemon, f->capdaemon * sizeof(*f->daemon));
    }
    f->daemon[f->ndaemon] = (struct fl_daemon){xstrndup(name, n), FL_NONE, FL_NONE};
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
static int fl_parse_timed(struct flexlm *f, char *s, struct fl_line *l)
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
        char *e = stop;
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0'; /* flexlm_add left a byte after the text */
        f->st.lines++;
        struct fl_line l = {.file = fi, .lineno = lineno, .restarts = -1, .end_by = FL_NONE};
        if (fl_parse_timed(f, s, &l) == 0) {
            if (f->nline == f->capline) {
                f->capline = f->capline ? 2 * f->capline : 1024;
                f->line = xrealloc(f->line, f->capline * sizeof(*f->line));
            }
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
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
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
    if (!strncmp(t, "TIMESTAMP ", 10))
        return fl_mdy(t + 10, days);
    if ((p = strstr(t, "Server's System Date and Time: ")))
        return fl_wmdy(p + 31, days);
    if ((p = strstr(t, "Start-Date: ")))
        return fl_wmdy(p + 12, days);
    if (!strcmp(f->daemon[l->daemon].name, "lmgrd") && strstr(t, " started on ") &&
        (p = strrchr(t, '(')) && fl_mdy(p + 1, days) == 0)
        return 0;
    return -1;
}

/* Local seconds -> UTC ms in the server's zone. In a repeated hour the
 * earlier instant, unless the log has already passed it. */
static int64_t fl_utc(struct flexlm *f, int64_t local_s, int64_t prev_ms)
{
    int64_t o1 = tz_offset_s(f->zone, (local_s - 86400) * 1000);
    int64_t o2 = tz_offset_s(f->zone, (local_s + 86400) * 1000);
    int64_t u1 = local_s - o1, u2 = local_s - o2;
    bool v1 = tz_offset_s(f->zone, u1 * 1000) == o1, v2 = tz_offset_s(f->zone, u2 * 1000) == o2;
    if (v1 && v2 && u1 != u2) {
        f->st.ambiguous++;
        int64_t early = u1 < u2 ? u1 : u2, late = u1 < u2 ? u2 : u1;
        return (prev_ms != FL_NONE && (early + AMBIGUOUS_SLACK_S) * 1000 < prev_ms ? late : early) *
               1000;
    }
    if (v2 && !v1)
        return u2 * 1000;
    return u1 * 1000; /* valid, or in a skipped hour: read with the offset before it */
}

static int fl_date_lines(struct flexlm *f, char *err, size_t errlen)
{
    if (!f->nline) {
        snprintf(err, errlen, "no FlexLM log line (\"H:MM:SS (daemon) ...\") in the input");
        return -1;
    }
    int64_t off = 0, first_anchor = -1;
    for (size_t i = 0; i < f->nline; i++) {
        struct fl_line *l = &f->line[i];
        if (i && l->tod < f->line[i - 1].tod - ROLL_S)
            off++;
        l->day_off = off;
        int64_t days;
        if (first_anchor < 0 && fl_line_date(f, l, &days) == 0)
            first_anchor = (int64_t)i;
    }
    if (first_anchor < 0) {
        snprintf(err, errlen,
                 "no date in the log: it has no TIMESTAMP line, no lmgrd start line and no "
                 "\"Server's System Date\" line");
        return -1;
    }
    int64_t base, prev = FL_NONE; /* base: the date of day_off 0 */
    fl_line_date(f, &f->line[first_anchor], &base);
    base -= f->line[first_anchor].day_off;
    for (size_t i = 0; i < f->nline; i++) {
        struct fl_line *l = &f->line[i];
        int64_t days;
        if ((int64_t)i > first_anchor && fl_line_date(f, l, &days) == 0)
            base = days - l->day_off;
        l->ms = fl_utc(f, (base + l->day_off) * 86400 + l->tod, prev);
        if (prev != FL_NONE && l->ms < prev) { /* behind the line before: at its time */
            f->st.behind++;
            l->ms = prev;
        }
        prev = l->ms;
    }
    f->st.first_ms = f->line[0].ms;
    f->st.last_ms = f->line[f->nline - 1].ms;
    return 0;
}

/* ---- pass 2: restarts ---- */

static void fl_find_restarts(struct flexlm *f)
{
    uint32_t lmgrd = fl_daemon_index(f, "lmgrd", 5);
    for (size_t i = 0; i < f->nline; i++) {
        struct fl_line *l = &f->line[i];
        const char *t = l->text;
        if (i && l->ms - f->line[i - 1].ms > GAP_MS) {
            l->gap = true;
            f->st.gaps++;
        }
        if (l->daemon == lmgrd && !strncmp(t, "Started ", 8)) {
            const char *name = t + 8, *e = strchr(name, ' ');
            if (e && e > name && !strncmp(e, " (pid ", 6)) {
                l->restarts = (int32_t)fl_daemon_index(f, name, (size_t)(e - name));
                struct fl_daemon *d = &f->daemon[l->restarts];
                l->end_by = d->last_ms != FL_NONE ? d->last_ms : l->ms; /* its seats' end */
            }
        }
        f->daemon[l->daemon].last_ms = l->ms;
    }
    for (size_t i = f->nline; i-- > 0;) {
        struct fl_line *l = &f->line[i];
        int64_t death = l->end_by;
        l->end_by = f->daemon[l->daemon].next_death;
        if (l->gap)
            for (size_t d = 0; d < f->ndaemon; d++)
                f->daemon[d].next_death = f->line[i - 1].ms;
        if (l->restarts >= 0) /* after the gap: its own last line may be earlier */
            f->daemon[l->restarts].next_death = death;
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
        for (size_t i = 0; i < f->nidkey; i++) {
            free(hmap_del(f->ids, f->idkey[i].key, f->idkey[i].len));
            free(f->idkey[i].key);
        }
        f->nidkey = 0;
        f->ids_ms = ms;
    }
    size_t kl = strlen(kind), ul = strlen(user), klen = kl + 1 + ul;
    char *key = xmalloc(klen + 1);
    memcpy(key, kind, kl + 1);
    memcpy(key + kl + 1, user, ul + 1);
    uint64_t *seen = hmap_get(f->ids, key, klen);
    if (seen) {
        free(key);
    } else {
        seen = xcalloc(1, sizeof(*seen));
        hmap_put(f->ids, key, klen, seen);
        if (f->nidkey == f->capidkey) {
            f->capidkey = f->capidkey ? 2 * f->capidkey : 16;
            f->idkey = xrealloc(f->idkey, f->capidkey * sizeof(*f->idkey));
        }
        f->idkey[f->nidkey++] = (struct fl_idkey){key, klen};
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

static void fl_due_push(struct flexlm *f, int64_t ms, size_t hold, bool release)
{
    if (f->ndue == f->capdue) {
        f->capdue = f->capdue ? 2 * f->capdue : 64;
        f->due = xrealloc(f->due, f->capdue * sizeof(*f->due));
    }
    f->due[f->ndue++] = (struct fl_due){ms, f->hold[hold]->user, hold, release};
}

static int fl_due_cmp(const void *a, const void *b)
{
    const struct fl_due *x = a, *y = b;
    if (x->ms != y->ms)
        return x->ms < y->ms ? -1 : 1;
    int c = strcmp(x->user, y->user);
    return c ? c : (int)x->release - (int)y->release;
}

static void fl_hold_remove(struct flexlm *f, size_t i)
{
    struct fl_hold *h = f->hold[i];
    hmap_dels(f->hold_ix, h->user);
    fl_hold_free(h);
    f->hold[i] = f->hold[--f->nhold];
    if (i < f->nhold)
        hmap_puts(f->hold_ix, f->hold[i]->user, (void *)(uintptr_t)(i + 1));
}

static void fl_due_min(struct flexlm *f, const struct fl_hold *h)
{
    int64_t next = h->end_by;
    if (f->cfg.heartbeat_ms > 0 && h->next_hb < next)
        next = h->next_hb;
    if (next < f->next_due)
        f->next_due = next;
}

/* Emits the heartbeats due before t and the seats lost before t; those of
 * daemon `restarted` (or -1), which lmgrd starts again at t, up to t. */
static void fl_sweep(struct flexlm *f, int64_t t, int64_t restarted)
{
    if (t <= f->next_due && restarted < 0)
        return;
    f->next_due = FL_NONE;
    f->ndue = 0;
    int64_t hb = f->cfg.heartbeat_ms;
    for (size_t i = 0; i < f->nhold; i++) {
        struct fl_hold *h = f->hold[i];
        h->lost = h->end_by < t || (h->end_by <= t && (int64_t)h->daemon == restarted);
        int64_t limit = h->end_by < t ? h->end_by : t;
        while (hb > 0 && h->next_hb < limit) {
            fl_due_push(f, h->next_hb, i, false);
            h->next_hb += hb;
        }
        if (h->lost)
            fl_due_push(f, h->end_by, i, true);
        else
            fl_due_min(f, h);
    }
    if (f->ndue > 1)
        qsort(f->due, f->ndue, sizeof(*f->due), fl_due_cmp);
    for (size_t k = 0; k < f->ndue; k++) {
        struct fl_due *d = &f->due[k];
        struct fl_hold *h = f->hold[d->hold];
        if (d->release) {
            f->st.lost++;
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGOUT, "logout", h->user, NULL, d->ms);
        } else {
            f->st.heartbeats++;
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "heartbeat", h->user, h->type, d->ms);
        }
    }
    for (size_t i = f->nhold; i-- > 0;) /* from the end: a removal moves the last one */
        if (f->hold[i]->lost)
            fl_hold_remove(f, i);
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

static void fl_use(struct flexlm *f, const struct fl_line *l, enum fl_op op, const char *t)
{
    char reason[200], tbuf[33];
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
    user = xasprintf("%s/%s", ident, type);
    if (strlen(user) > 256) {
        snprintf(reason, sizeof(reason), "user \"%.40s...\" and type make over 256 bytes", ident);
        goto malformed;
    }
    uintptr_t ix = (uintptr_t)hmap_gets(f->hold_ix, user);
    struct fl_hold *h = ix ? f->hold[ix - 1] : NULL;
    switch (op) {
    case FL_OUT:
        f->st.checkouts++;
        if (!h) {
            h = xcalloc(1, sizeof(*h));
            *h = (struct fl_hold){xstrdup(user), xstrdup(type), l->daemon, 0, 0, l->end_by};
            if (f->nhold == f->caphold) {
                f->caphold = f->caphold ? 2 * f->caphold : 64;
                f->hold = xrealloc(f->hold, f->caphold * sizeof(*f->hold));
            }
            f->hold[f->nhold++] = h;
            hmap_puts(f->hold_ix, user, (void *)(uintptr_t)f->nhold);
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGIN, "login", user, type, l->ms);
        } else {
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "activity", user, type, l->ms);
        }
        h->count++;
        h->daemon = l->daemon;
        h->end_by = l->end_by;
        h->next_hb = l->ms + f->cfg.heartbeat_ms;
        fl_due_min(f, h);
        break;
    case FL_IN:
        f->st.checkins++;
        if (!h) {
            f->st.unmatched++;
        } else if (shutdown || --h->count == 0) { /* a shutdown: one IN for all */
            fl_emit(f, LICMON__V1__EVENT_KIND__LOGOUT, "logout", user, NULL, l->ms);
            fl_hold_remove(f, ix - 1);
        } else {
            fl_emit(f, LICMON__V1__EVENT_KIND__ACTIVITY, "activity", user, type, l->ms);
            h->next_hb = l->ms + f->cfg.heartbeat_ms;
            fl_due_min(f, h);
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
    fl_find_restarts(f);
    f->next_due = FL_NONE;
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
        fl_sweep(f, l->ms, l->restarts);
        if (l->restarts >= 0)
            f->st.restarts++;
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
    fl_sweep(f, f->st.last_ms + 1, -1);
    f->st.open_at_end = f->nhold;
    return 0;
}
