/* conf: flags and LICMON_* environment variables from one table (see conf.h). */
#include "conf.h"
#include "xmem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int conf_parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int conf_parse_bool(const char *text, bool *out)
{
    if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "on"))
        *out = true;
    else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no") ||
             !strcmp(text, "off"))
        *out = false;
    else
        return -1;
    return 0;
}

static _Noreturn void conf_fail(const char *program, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see --help)\n");
    exit(2);
}

static void conf_set(const char *program, struct conf_opt *o, const char *text, const char *origin)
{
    char label[128];
    snprintf(label, sizeof(label), "%s%s", origin, o->flag);
    if (o->type == CONF_T_STR) {
        char **dst = o->dst;
        free(*dst);
        *dst = xstrdup(text ? text : "");
    } else if (o->type == CONF_T_BOOL) {
        if (conf_parse_bool(text, o->dst) < 0)
            conf_fail(program, "%s: '%s' is not a boolean (true/false)", label, text);
    } else {
        int64_t v;
        if (conf_parse_int(text, &v) < 0)
            conf_fail(program, "%s: '%s' is not an integer", label, text);
        if (v < o->min || v > o->max) {
            char bounds[96];
            snprintf(bounds, sizeof(bounds), "%s is outside %" PRId64 "..%" PRId64, text, o->min,
                     o->max);
            conf_fail(program, "%s: %s", label, bounds);
        }
        *(int64_t *)o->dst = v;
    }
}

void conf_usage(const char *program, const char *summary, const struct conf_opt *opts)
{
    printf("usage: %s [options]\n%s\n\noptions (each also read from its environment variable):\n",
           program, summary);
    for (const struct conf_opt *o = opts; o->flag; o++) {
        char left[96];
        snprintf(left, sizeof(left), "--%s%s", o->flag,
                 o->type == CONF_T_BOOL  ? "[=BOOL]"
                 : o->type == CONF_T_INT ? "=N"
                                         : "=TEXT");
        printf("  %-32s %s\n", left, o->help);
        printf("  %-32s env %s", "", o->env ? o->env : "-");
        if (o->def && *o->def)
            printf(", default %s", o->def);
        if (o->type == CONF_T_INT)
            printf(", %" PRId64 "..%" PRId64, o->min, o->max);
        printf("\n");
    }
    printf("  %-32s %s\n", "--help", "print this help and exit");
}

void conf_parse(const char *program, const char *summary, struct conf_opt *opts, int argc,
                char **argv, int first, char ***rest, int *nrest)
{
    for (struct conf_opt *o = opts; o->flag; o++) {
        if (o->type == CONF_T_STR)
            *(char **)o->dst = NULL;
        if (o->def)
            conf_set(program, o, o->def, "default of --");
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env) {
            char origin[96];
            snprintf(origin, sizeof(origin), "%s for --", o->env);
            conf_set(program, o, env, origin);
        }
    }
    int nr = 0;
    char **r = rest ? xcalloc((size_t)argc + 1, sizeof(char *)) : NULL;
    bool flags_done = false;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == '\0') {
            if (!rest)
                conf_fail(program, "unexpected argument '%s'%s", a, "");
            r[nr++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            conf_usage(program, summary, opts);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0)
            conf_fail(program, "unknown flag '%s'%s", a, "");
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        struct conf_opt *o = opts;
        while (o->flag && !(strlen(o->flag) == len && !strncmp(o->flag, name, len)))
            o++;
        if (!o->flag)
            conf_fail(program, "unknown flag '%s'%s", a, "");
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type == CONF_T_BOOL)
            val = "true";
        if (!val) {
            if (i + 1 >= argc)
                conf_fail(program, "--%s needs a value%s", o->flag, "");
            val = argv[++i];
        }
        conf_set(program, o, val, "--");
    }
    if (rest) {
        *rest = r;
        *nrest = nr;
    }
}

void conf_free(struct conf_opt *opts)
{
    for (struct conf_opt *o = opts; o->flag; o++)
        if (o->type == CONF_T_STR) {
            free(*(char **)o->dst);
            *(char **)o->dst = NULL;
        }
}
