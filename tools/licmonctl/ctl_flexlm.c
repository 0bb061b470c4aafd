/* ctl_flexlm: `licmonctl flexlm`, FlexLM debug logs as licmon events on
 * stdout (NDJSON), for `licmonctl send -`. The conversion is flexlm.c; here
 * are the flags, the files and the summary. */
#include "ctl.h"
#include "conf.h"
#include "event_json.h"
#include "flexlm.h"
#include "timeutil.h"
#include "xmem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEXLM_FILE_MAX ((size_t)4 << 30) /* a log is read whole */

struct flexlm_out {
    FILE *out;
    int write_errno;
};

static void flexlm_emit(void *arg, const Licmon__V1__Event *ev)
{
    struct flexlm_out *o = arg;
    char *line = event_json_format(ev);
    if (!o->write_errno && fprintf(o->out, "%s\n", line) < 0)
        o->write_errno = errno ? errno : EIO;
    free(line);
}

static void flexlm_warn(void *arg, const char *file, uint32_t line, const char *reason)
{
    (void)arg;
    ctl_note("%s:%" PRIu32 ": %s", file, line, reason);
}

/* The whole file into a malloc'd buffer; NULL (reported) on failure. */
static char *flexlm_read(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        ctl_err("flexlm", "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= FLEXLM_FILE_MAX) {
                ctl_err("flexlm", "%s: larger than 4 GiB; split it (the files are read in order)",
                        path);
                goto fail;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        ctl_err("flexlm", "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
fail:
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}

static void flexlm_summary(const struct flexlm_stats *s)
{
    char from[40], to[40];
    time_format_rfc3339(s->first_ms, from, sizeof(from));
    time_format_rfc3339(s->last_ms, to, sizeof(to));
    ctl_note("licmonctl flexlm: %" PRIu64 " lines from %s to %s: %" PRIu64 " checkouts, %" PRIu64
             " checkins, %" PRIu64 " denials -> %" PRIu64 " events (%" PRIu64 " heartbeats)",
             s->lines, from, to, s->checkouts, s->checkins, s->denials, s->events, s->heartbeats);
    ctl_note("licmonctl flexlm: not counted: %" PRIu64 " UNSUPPORTED (no such feature), %" PRIu64
             " checkins with no checkout in the log, %" PRIu64 " unreadable, %" PRIu64
             " of features outside --type-map",
             s->unsupported, s->unmatched, s->malformed, s->ignored);
    ctl_note("licmonctl flexlm: %" PRIu64 " daemon starts, %" PRIu64
             " gaps of a day or more; %" PRIu64
             " seats ended by a daemon's restart or exit or a gap, %" PRIu64
             " still held at the end; %" PRIu64 " times in a repeated hour, %" PRIu64
             " lines dated a little before the line before them; %" PRIu64
             " unfinished last line (no newline yet) left for the next import",
             s->restarts, s->gaps, s->lost, s->open_at_end, s->ambiguous, s->behind, s->unfinished);
}

int ctl_flexlm_main(int argc, char **argv)
{
    char *org, *zone, *source, *map;
    bool only_mapped;
    int64_t heartbeat_s;
    struct conf_opt opts[] = {
        CONF_STR("org", NULL, "", "the licmon org the events belong to (required)", &org),
        CONF_STR("timezone", NULL, "",
                 "the license server's IANA time zone, in which the log's times are (required)",
                 &zone),
        CONF_STR("source", NULL, "flexlm",
                 "names this license server in the event ids: give each server its own", &source),
        CONF_STR("type-map", NULL, "",
                 "FEATURE=type,... : the license type of a feature (default: the feature's "
                 "name in lower case, other characters as _)",
                 &map),
        CONF_BOOL("only-mapped", NULL, "false", "skip the features --type-map does not name",
                  &only_mapped),
        CONF_INT("heartbeat", NULL, 600, 0, 86400,
                 "seconds between the activities that keep a held seat alive (0: none); "
                 "keep it below the org's user and license inactivity timeouts",
                 &heartbeat_s),
        CONF_END};
    char **files = NULL;
    int nfiles = 0;
    conf_parse(
        "licmonctl flexlm",
        "licmonctl flexlm --org ORG --timezone ZONE [options] LOG...\n"
        "Reads FlexLM debug logs (lmgrd and vendor daemon; LOG - is stdin; several logs are\n"
        "one log in the order given) and writes licmon events, one JSON object a line, on\n"
        "stdout: a checkout is a login, the last checkin of that user@host and type a logout,\n"
        "DENIED a denial. Lines it cannot read are FILE:LINE: reason on stderr, then a\n"
        "summary. Send them with: licmonctl flexlm ... | licmonctl send --dir DIR -\n"
        "Exit status: 0 converted, 1 failed (no date in the log, a line dated more than\n"
        "10 minutes before the line before it, a file unreadable), 2 usage.",
        opts, argc, argv, 2, &files, &nfiles);
    int status = CTL_EXIT_USAGE;
    char err[300];
    struct flexlm *f = NULL;
    if (nfiles == 0) {
        ctl_err("flexlm", "no LOG given (use - for stdin; see --help)");
        goto out;
    }
    if (!*org || !*zone) {
        ctl_err("flexlm", "%s is required (see --help)", !*org ? "--org" : "--timezone");
        goto out;
    }
    struct flexlm_cfg cfg = {org, zone, source, *map ? map : NULL, only_mapped, heartbeat_s * 1000};
    if (!(f = flexlm_new(&cfg, err, sizeof(err)))) {
        ctl_err("flexlm", "%s", err);
        goto out;
    }
    status = CTL_EXIT_FAIL;
    for (int i = 0; i < nfiles; i++) {
        size_t len;
        char *text = flexlm_read(files[i], &len);
        if (!text)
            goto out;
        flexlm_add(f, strcmp(files[i], "-") ? files[i] : "stdin", text, len);
    }
    struct flexlm_out o = {stdout, 0};
    if (flexlm_run(f, flexlm_emit, flexlm_warn, &o, err, sizeof(err)) != 0) {
        ctl_err("flexlm", "%s", err);
        goto out;
    }
    if (fflush(stdout) != 0 && !o.write_errno)
        o.write_errno = errno ? errno : EIO;
    if (o.write_errno) {
        ctl_err("flexlm", "writing the events: %s", strerror(o.write_errno));
        goto out;
    }
    flexlm_summary(flexlm_stats(f));
    status = CTL_EXIT_OK;
out:
    flexlm_free(&f);
    free(files);
    conf_free(opts);
    return status;
}
