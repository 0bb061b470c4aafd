/* conf: the settings table of a program. Each setting is declared once with
 * its flag, LICMON_* environment variable, default, bounds and help; the
 * environment is read first, flags override it, --help prints the table.
 * A bad flag or value is a one-line error naming it and exit status 2. */
#ifndef LICMON_CONF_H
#define LICMON_CONF_H
#include <stdbool.h>
#include <stdint.h>

enum conf_type { CONF_T_STR, CONF_T_INT, CONF_T_BOOL };

struct conf_opt {
    const char *flag; /* without the leading "--" */
    const char *env;  /* LICMON_... or NULL */
    enum conf_type type;
    const char *def; /* default as text (NULL: empty / unset) */
    int64_t min, max;
    const char *help;
    void *dst; /* char ** (malloc'd), int64_t *, bool * */
};

#define CONF_STR(f, e, d, h, p)                                                                    \
    {                                                                                              \
        f, e, CONF_T_STR, d, 0, 0, h, p                                                            \
    }
#define CONF_INT(f, e, d, lo, hi, h, p)                                                            \
    {                                                                                              \
        f, e, CONF_T_INT, #d, lo, hi, h, p                                                         \
    }
#define CONF_BOOL(f, e, d, h, p)                                                                   \
    {                                                                                              \
        f, e, CONF_T_BOOL, d, 0, 0, h, p                                                           \
    }
#define CONF_END                                                                                   \
    {                                                                                              \
        0                                                                                          \
    }

/* Parses env and argv[first..argc). Non-flag arguments are moved to
 * *rest (NULL-terminated, borrowed from argv), their count to *nrest; pass
 * NULL for both when a program takes none. Exits 0 after --help, 2 on error. */
void conf_parse(const char *program, const char *summary, struct conf_opt *opts, int argc,
                char **argv, int first, char ***rest, int *nrest);
void conf_usage(const char *program, const char *summary, const struct conf_opt *opts);
/* Frees the strings conf_parse allocated. */
void conf_free(struct conf_opt *opts);

/* Shared parsers, also used by programs for their own values. */
int conf_parse_int(const char *text, int64_t *out);
int conf_parse_bool(const char *text, bool *out);

#endif
