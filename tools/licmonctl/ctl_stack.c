/* ctl_stack: what a stack folder holds for licmonctl: DIR/stack.json (the
 * endpoints `up` chose) and DIR/admin.token (the administrator token), and
 * how a subcommand finds the API it talks to. */
#include "ctl.h"
#include "health.h"
#include "prog.h"
#include "xmem.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const ctl_programs[CTL_NPROGRAMS] = {"ingest", "sessionizer", "aggregator", "alerter",
                                                 "exporter"};

char *ctl_abspath(const char *path)
{
    char buf[PATH_MAX];
    if (realpath(path, buf))
        return xstrdup(buf);
    if (path[0] == '/' || !getcwd(buf, sizeof(buf)))
        return xstrdup(path);
    return xasprintf("%s/%s", buf, path);
}

int ctl_stack_load(const char *dir, struct ctl_stack *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    char *path = xasprintf("%s/stack.json", dir);
    json_error_t jerr;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        snprintf(err, errlen, "%s: %s", path, jerr.text);
        free(path);
        return -1;
    }
    const char *http = json_string_value(json_object_get(o, "http"));
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *producer = json_string_value(json_object_get(o, "producer"));
    if (!http || !url || !producer) {
        snprintf(err, errlen, "%s: needs \"http\", \"url\" and \"producer\"", path);
        json_decref(o);
        free(path);
        return -1;
    }
    st->http = xstrdup(http);
    st->url = xstrdup(url);
    st->producer = xstrdup(producer);
    json_t *health = json_object_get(o, "health");
    for (int i = 0; i < CTL_NPROGRAMS; i++) {
        const char *h = json_string_value(json_object_get(health, ctl_programs[i]));
        st->health[i] = h ? xstrdup(h) : NULL;
    }
    st->supervisor_pid = (long)json_integer_value(json_object_get(o, "supervisor_pid"));
    json_decref(o);
    free(path);
    return 0;
}

void ctl_stack_free(struct ctl_stack *st)
{
    free(st->http);
    free(st->url);
    free(st->producer);
    for (int i = 0; i < CTL_NPROGRAMS; i++)
        free(st->health[i]);
    memset(st, 0, sizeof(*st));
}

int ctl_stack_save(const char *dir, const struct ctl_stack *st)
{
    json_t *health = json_object();
    for (int i = 0; i < CTL_NPROGRAMS; i++)
        if (st->health[i])
            json_object_set_new(health, ctl_programs[i], json_string(st->health[i]));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:I}", "http", st->http, "url", st->url, "producer",
                  st->producer, "health", health, "supervisor_pid", (json_int_t)st->supervisor_pid);
    char *path = xasprintf("%s/stack.json", dir), *tmp = xasprintf("%s/.stack.json.tmp", dir);
    int rc = json_dump_file(o, tmp, JSON_INDENT(2)) == 0 && rename(tmp, path) == 0 ? 0 : -1;
    if (rc)
        unlink(tmp);
    json_decref(o);
    free(path);
    free(tmp);
    return rc;
}

char *ctl_stack_url(const char *hostport)
{
    char host[64];
    uint16_t port;
    if (health_parse_hostport(hostport, host, sizeof(host), &port) != 0)
        return xasprintf("http://%s/", hostport);
    if (!strcmp(host, "0.0.0.0"))
        snprintf(host, sizeof(host), "127.0.0.1");
    return xasprintf("http://%s:%u/", host, (unsigned)port);
}

char *ctl_stack_producer(const char *dir)
{
    struct ctl_stack st;
    char err[256];
    if (ctl_stack_load(dir, &st, err, sizeof(err)) == 0) {
        char *p = xstrdup(st.producer);
        ctl_stack_free(&st);
        return p;
    }
    char *abs = ctl_abspath(dir);
    char *ep = prog_endpoint(abs, "ingest-producer");
    free(abs);
    return ep;
}

int ctl_token_ensure(const char *path, char *err, size_t errlen)
{
    /* written whole beside it, then linked into place: a crash never leaves
     * an empty token (one left by an older version is replaced) */
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (sb.st_size > 0)
            return 0;
        if (unlink(path) != 0) {
            snprintf(err, errlen, "%s: empty, and cannot be replaced: %s", path, strerror(errno));
            return -1;
        }
    }
    char tok[9 + 64 + 2];
    memcpy(tok, "lm_admin_", 9);
    xrandom_hex(tok + 9, 32);
    strcat(tok, "\n");
    char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t len = strlen(tok);
    int rc = write(fd, tok, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
    close(fd);
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        rc = -1;
    }
    unlink(tmp);
    free(tmp);
    return rc;
}

char *ctl_token_read(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1024] = "";
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    char *s = line;
    size_t n = strlen(line);
    if (!ok || !ctl_line_trim(&s, &n)) {
        snprintf(err, errlen, "%s: empty", path);
        return NULL;
    }
    return xstrdup(s);
}

/* Whether url is the API of the stack in dir (its stack.json). */
static bool ctl_stack_is(const char *dir, const char *url)
{
    struct ctl_stack st;
    char why[512];
    if (ctl_stack_load(dir, &st, why, sizeof(why)) != 0)
        return false;
    bool same = !strcmp(st.url, url);
    ctl_stack_free(&st);
    return same;
}

int ctl_api_target(const char *dir, const char *url_flag, const char *token_flag, char **url,
                   char **token, char *err, size_t errlen)
{
    *url = NULL;
    *token = NULL;
    if (url_flag && *url_flag) {
        size_t n = strlen(url_flag);
        *url = n && url_flag[n - 1] == '/' ? xstrdup(url_flag) : xasprintf("%s/", url_flag);
    } else {
        struct ctl_stack st;
        char why[512];
        if (ctl_stack_load(dir, &st, why, sizeof(why)) == 0) {
            *url = xstrdup(st.url);
            ctl_stack_free(&st);
        } else {
            *url = ctl_stack_url(CTL_DEFAULT_HTTP);
        }
    }
    if (token_flag && *token_flag) {
        *token = xstrdup(token_flag);
    } else if (url_flag && *url_flag && !ctl_stack_is(dir, *url)) {
        /* DIR's administrator token goes to DIR's own stack only: never to
         * another URL because its --token was forgotten */
        snprintf(err, errlen,
                 "--url %s is not the stack in %s: pass --token (or set LICMON_TOKEN) for it",
                 url_flag, dir);
        free(*url);
        *url = NULL;
        return -1;
    } else {
        char *path = xasprintf("%s/admin.token", dir);
        *token = ctl_token_read(path, err, errlen);
        free(path);
        if (!*token) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, " (pass --token or set LICMON_TOKEN)");
            free(*url);
            *url = NULL;
            return -1;
        }
    }
    return 0;
}
