/* ctl_api: the subcommands that talk to the exporter's HTTP API with a
 * bearer token: settings, token and export. The API address and token come
 * from the stack folder unless --url/--token (LICMON_URL, LICMON_TOKEN) name
 * a remote stack. */
#include "ctl.h"
#include "conf.h"
#include "settings.h"
#include "timeutil.h"
#include "xmem.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_TIMEOUT_MS 30000

#define API_TARGET_OPTS(dir, url, token)                                                           \
    CONF_STR("dir", "LICMON_DIR", "./licmon-run",                                                  \
             "stack folder: the API address from DIR/stack.json, the token from DIR/admin.token",  \
             dir),                                                                                 \
        CONF_STR("url", "LICMON_URL", "", "the API's base URL instead, e.g. http://host:8080/",    \
                 url),                                                                             \
        CONF_STR("token", "LICMON_TOKEN", "", "the bearer token instead", token)

/* Prints a JSON answer indented on stdout (or as is when it is not JSON). */
static void api_print_json(const char *body)
{
    json_error_t jerr;
    json_t *j = json_loads(body, JSON_DECODE_ANY, &jerr);
    if (j) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        fputc('\n', stdout);
        json_decref(j);
    } else if (*body) {
        fputs(body, stdout);
        if (body[strlen(body) - 1] != '\n')
            fputc('\n', stdout);
    }
}

/* "error: detail" of an API error answer; caller frees. */
static char *api_error_text(const struct ctl_http_resp *r)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "detail"));
    char *s;
    if (e && d && *d)
        s = xasprintf("%s: %s (HTTP %ld)", e, d, r->status);
    else if (e)
        s = xasprintf("%s (HTTP %ld)", e, r->status);
    else
        s = xasprintf("HTTP %ld%s%.200s", r->status, *r->body ? ": " : "", r->body);
    json_decref(j);
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return s;
}

/* One API call; on success *out holds a 2xx answer. Reports failures. */
static int api_call(const char *cmd, const char *method, const char *url, const char *token,
                    const char *body, struct ctl_http_resp *out)
{
    char err[600];
    if (ctl_http_request(method, url, token, body, API_TIMEOUT_MS, out, err, sizeof(err)) != 0) {
        ctl_err(cmd, "%s", err);
        return -1;
    }
    if (out->status < 200 || out->status > 299) {
        char *e = api_error_text(out);
        ctl_err(cmd, "%s", e);
        free(e);
        ctl_http_resp_free(out);
        return -1;
    }
    return 0;
}

/* ---- settings ---- */

int ctl_settings_main(int argc, char **argv)
{
    char *dir, *url, *token, *set;
    struct conf_opt opts[] = {
        API_TARGET_OPTS(&dir, &url, &token),
        CONF_STR("set", NULL, "", "change these settings: a (partial) JSON object, or @FILE", &set),
        CONF_END};
    char **rest;
    int nrest;
    conf_parse("licmonctl settings",
               "licmonctl settings [--dir DIR] ORG [--set JSON]\n"
               "Shows an org's settings, or changes the fields given in --set (the JSON of\n"
               "API.md section 4) and shows the result. Exit status: 0 done, 1 refused or\n"
               "unreachable (the server's reason on stderr), 2 usage.",
               opts, argc, argv, 2, &rest, &nrest);
    int status = CTL_EXIT_USAGE;
    char *base = NULL, *tok = NULL, *body = NULL, err[600];
    if (nrest == 0) {
        ctl_err("settings", "needs an ORG (see --help)");
        goto out;
    }
    if (nrest > 1) {
        ctl_err("settings", "one ORG only, got '%.80s' too (see --help)", rest[1]);
        goto out;
    }
    if (!settings_valid_org(rest[0])) {
        ctl_err("settings", "ORG '%.80s' does not match [A-Za-z0-9._-]{1,64}", rest[0]);
        goto out;
    }
    if (*set) {
        json_error_t jerr;
        json_t *j = set[0] == '@' ? json_load_file(set + 1, JSON_REJECT_DUPLICATES, &jerr)
                                  : json_loads(set, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(j)) {
            ctl_err("settings", "--set: not a JSON object: %s",
                    j ? "another JSON value" : jerr.text);
            json_decref(j);
            goto out;
        }
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    status = CTL_EXIT_FAIL;
    if (ctl_api_target(dir, url, token, &base, &tok, err, sizeof(err)) != 0) {
        ctl_err("settings", "%s", err);
        goto out;
    }
    char *u = xasprintf("%sv1/orgs/%s/settings", base, rest[0]);
    struct ctl_http_resp r;
    if (api_call("settings", body ? "PUT" : "GET", u, tok, body, &r) == 0) {
        api_print_json(r.body);
        ctl_http_resp_free(&r);
        status = CTL_EXIT_OK;
    }
    free(u);
out:
    free(body);
    free(base);
    free(tok);
    free(rest);
    conf_free(opts);
    return status;
}

/* ---- token create | list | revoke ---- */

static const char *api_str(const json_t *o, const char *const *keys)
{
    for (; *keys; keys++) {
        const json_t *v = json_object_get(o, *keys);
        if (json_is_string(v))
            return json_string_value(v);
    }
    return NULL;
}

/* A column value: a string, a number (ms since the epoch for times) or "-". */
static void api_cell(const json_t *o, const char *const *keys, bool time, char *buf, size_t len)
{
    snprintf(buf, len, "-");
    for (; *keys; keys++) {
        const json_t *v = json_object_get(o, *keys);
        if (json_is_string(v)) {
            snprintf(buf, len, "%s", json_string_value(v));
            return;
        }
        if (json_is_integer(v)) {
            if (time)
                time_format_rfc3339(json_integer_value(v), buf, len);
            else
                snprintf(buf, len, "%lld", (long long)json_integer_value(v));
            return;
        }
        if (json_is_boolean(v)) {
            snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
            return;
        }
    }
}

static int token_print_list(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "tokens");
    if (!json_is_array(arr)) {
        api_print_json(body);
        json_decref(j);
        return 0;
    }
    static const char *const k_id[] = {"id", "token_id", NULL}, *const k_org[] = {"org", NULL},
                             *const k_role[] = {"role", NULL},
                             *const k_created[] = {"created", "created_at", "created_ms", NULL};
    printf("%-26s %-24s %-10s %s\n", "ID", "ORG", "ROLE", "CREATED");
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        char id[128], org[80], role[32], created[40];
        api_cell(t, k_id, false, id, sizeof(id));
        api_cell(t, k_org, false, org, sizeof(org));
        api_cell(t, k_role, false, role, sizeof(role));
        api_cell(t, k_created, true, created, sizeof(created));
        printf("%-26s %-24s %-10s %s\n", id, org, role, created);
    }
    json_decref(j);
    return 0;
}

int ctl_token_main(int argc, char **argv)
{
    const char *action = argc > 2 ? argv[2] : "";
    bool create = !strcmp(action, "create"), list = !strcmp(action, "list"),
         revoke = !strcmp(action, "revoke");
    if (!create && !list && !revoke) {
        if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
            printf("usage: licmonctl token create --org ORG --role org_admin|service\n"
                   "       licmonctl token list\n"
                   "       licmonctl token revoke ID\n"
                   "Manages the API tokens of the stack (with the administrator token);\n"
                   "each takes --dir DIR, or --url and --token for a remote stack.\n"
                   "See licmonctl token create --help.\n");
            return CTL_EXIT_OK;
        }
        ctl_err("token", "needs create, list or revoke, not '%.40s' (see --help)", action);
        return CTL_EXIT_USAGE;
    }
    char *dir, *url, *token, *org = NULL, *role = NULL;
    bool as_json = false;
    struct conf_opt opts[9] = {API_TARGET_OPTS(&dir, &url, &token)};
    int n = 3;
    if (create) {
        opts[n++] =
            (struct conf_opt)CONF_STR("org", NULL, "", "the org the token belongs to", &org);
        opts[n++] = (struct conf_opt)CONF_STR("role", NULL, "",
                                              "org_admin (read and change its org) or service "
                                              "(read, for the dashboard service)",
                                              &role);
    }
    if (list)
        opts[n++] =
            (struct conf_opt)CONF_BOOL("json", NULL, "false", "print the JSON answer", &as_json);
    opts[n] = (struct conf_opt)CONF_END;
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "token %s", action);
    char program[48];
    snprintf(program, sizeof(program), "licmonctl %s", cmd);
    char **rest;
    int nrest;
    conf_parse(program,
               create ? "licmonctl token create [--dir DIR] --org ORG --role org_admin|service\n"
                        "Prints a new token's secret (first line; it is stored hashed and\n"
                        "cannot be shown again) and its id."
               : list ? "licmonctl token list [--dir DIR]\nLists the tokens of the stack."
                      : "licmonctl token revoke [--dir DIR] ID\nRevokes a token by its id.",
               opts, argc, argv, 3, &rest, &nrest);
    int status = CTL_EXIT_USAGE;
    char *base = NULL, *tok = NULL, *u = NULL, *body = NULL, err[600];
    if (revoke && nrest != 1) {
        ctl_err(cmd, "needs one token ID (see --help)");
        goto out;
    }
    if (!revoke && nrest != 0) {
        ctl_err(cmd, "unexpected argument '%.80s' (see --help)", rest[0]);
        goto out;
    }
    if (create && (!settings_valid_org(org))) {
        ctl_err(cmd, "--org: %s", *org ? "must match [A-Za-z0-9._-]{1,64}" : "is required");
        goto out;
    }
    if (create && strcmp(role, "org_admin") && strcmp(role, "service")) {
        ctl_err(cmd, "--role: must be org_admin or service");
        goto out;
    }
    status = CTL_EXIT_FAIL;
    if (ctl_api_target(dir, url, token, &base, &tok, err, sizeof(err)) != 0) {
        ctl_err(cmd, "%s", err);
        goto out;
    }
    struct ctl_http_resp r;
    if (create) {
        u = xasprintf("%sv1/tokens", base);
        json_t *j = json_pack("{s:s, s:s}", "org", org, "role", role);
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (api_call(cmd, "POST", u, tok, body, &r) != 0)
            goto out;
        json_t *a = json_loads(r.body, 0, NULL);
        static const char *const k_secret[] = {"token", "secret", NULL}, *const k_id[] = {
                                                                             "id", "token_id",
                                                                             NULL};
        const char *secret = api_str(a, k_secret);
        if (secret) {
            char id[128];
            api_cell(a, k_id, false, id, sizeof(id));
            printf("%s\nid: %s\n", secret, id);
        } else {
            api_print_json(r.body);
        }
        json_decref(a);
    } else if (list) {
        u = xasprintf("%sv1/tokens", base);
        if (api_call(cmd, "GET", u, tok, NULL, &r) != 0)
            goto out;
        if (as_json)
            api_print_json(r.body);
        else
            token_print_list(r.body);
    } else {
        char *id = ctl_http_escape(rest[0]);
        u = xasprintf("%sv1/tokens/%s", base, id);
        free(id);
        if (api_call(cmd, "DELETE", u, tok, NULL, &r) != 0)
            goto out;
        printf("revoked %s\n", rest[0]);
    }
    ctl_http_resp_free(&r);
    status = CTL_EXIT_OK;
out:
    free(u);
    free(body);
    free(base);
    free(tok);
    free(rest);
    conf_free(opts);
    return status;
}

/* ---- export ---- */

int ctl_export_main(int argc, char **argv)
{
    char *dir, *url, *token, *format, *from, *to, *type, *output, *user;
    struct conf_opt opts[] = {
        API_TARGET_OPTS(&dir, &url, &token),
        CONF_STR("format", NULL, "xlsx", "xlsx, csv or json", &format),
        CONF_STR("from", NULL, "", "first local date YYYY-MM-DD", &from),
        CONF_STR("to", NULL, "", "last local date YYYY-MM-DD", &to),
        CONF_STR("type", NULL, "all", "a license type or all", &type),
        CONF_STR("output", NULL, "", "the file to write (also -o FILE)", &output),
        CONF_STR("user", NULL, "",
                 "only this user's sessions (the cards and daily usage still cover every user)",
                 &user),
        CONF_END};
    /* API.md spells the output file -o */
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-o"))
            argv[i] = "--output";
        else if (!strncmp(argv[i], "-o", 2) && argv[i][2] && argv[i][1] != '-')
            argv[i] = xasprintf("--output=%s", argv[i] + 2); /* lives until exit */
    char **rest;
    int nrest;
    conf_parse("licmonctl export",
               "licmonctl export [--dir DIR] ORG --format xlsx|csv|json --from D --to D\n"
               "                 [--type T] [--user U] -o FILE\n"
               "Writes an export of an org's usage and sessions for a period of local dates.\n"
               "Exit status: 0 written, 1 refused or unreachable, 2 usage.",
               opts, argc, argv, 2, &rest, &nrest);
    int status = CTL_EXIT_USAGE;
    char *base = NULL, *tok = NULL, *u = NULL, *tmp = NULL, err[600];
    int64_t d1, d2;
    if (nrest != 1) {
        ctl_err("export", "needs one ORG (see --help)");
        goto out;
    }
    if (!settings_valid_org(rest[0])) {
        ctl_err("export", "ORG '%.80s' does not match [A-Za-z0-9._-]{1,64}", rest[0]);
        goto out;
    }
    if (strcmp(format, "xlsx") && strcmp(format, "csv") && strcmp(format, "json")) {
        ctl_err("export", "--format: must be xlsx, csv or json");
        goto out;
    }
    if (time_parse_date(from, &d1) != 0) {
        ctl_err("export", "--from: must be a date YYYY-MM-DD");
        goto out;
    }
    if (time_parse_date(to, &d2) != 0) {
        ctl_err("export", "--to: must be a date YYYY-MM-DD");
        goto out;
    }
    if (d2 < d1) {
        ctl_err("export", "--to: is before --from");
        goto out;
    }
    if (strcmp(type, "all") && !settings_valid_type(type)) {
        ctl_err("export", "--type: must be a license type or all");
        goto out;
    }
    if (!*output) {
        ctl_err("export", "-o FILE is required");
        goto out;
    }
    status = CTL_EXIT_FAIL;
    if (ctl_api_target(dir, url, token, &base, &tok, err, sizeof(err)) != 0) {
        ctl_err("export", "%s", err);
        goto out;
    }
    char *user_q = *user ? ctl_http_escape(user) : NULL;
    u = xasprintf("%sv1/orgs/%s/export?format=%s&from=%s&to=%s&type=%s%s%s", base, rest[0], format,
                  from, to, type, user_q ? "&user=" : "", user_q ? user_q : "");
    free(user_q);
    tmp = xasprintf("%s.part", output);
    long code = 0;
    if (ctl_http_download(u, tok, tmp, &code, err, sizeof(err)) != 0) {
        ctl_err("export", "%s", err);
        unlink(tmp);
        goto out;
    }
    if (code < 200 || code > 299) {
        struct ctl_http_resp r = {.status = code};
        FILE *f = fopen(tmp, "r");
        char buf[4096] = "";
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        buf[n] = '\0';
        if (f)
            fclose(f);
        r.body = buf;
        char *e = api_error_text(&r);
        ctl_err("export", "%s", e);
        free(e);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, output) != 0) {
        ctl_err("export", "%s: %s", output, strerror(errno));
        unlink(tmp);
        goto out;
    }
    printf("wrote %s\n", output);
    status = CTL_EXIT_OK;
out:
    free(u);
    free(tmp);
    free(base);
    free(tok);
    free(rest);
    conf_free(opts);
    return status;
}
