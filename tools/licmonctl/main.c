/* licmonctl: the operator's command-line tool (API.md section 2). main()
 * only dispatches to the subcommand's module; every subcommand parses its
 * own flags from a conf table and prints --help. */
#include "ctl.h"
#include "log.h"
#include "zsock.h"

#include <stdio.h>
#include <string.h>

struct ctl_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    bool quiet_lib; /* a short-lived CLI: lib warnings stay off the terminal */
};

static const struct ctl_command ctl_commands[] = {
    {"up", ctl_up_main, "start a local stack under DIR and supervise it", true},
    {"down", ctl_down_main, "stop the stack running under DIR", true},
    {"send", ctl_send_main, "send NDJSON events to ingest in acknowledged batches", true},
    {"wait", ctl_wait_main, "wait until every stage has applied everything journaled", true},
    {"settings", ctl_settings_main, "show or change an org's settings", true},
    {"token", ctl_token_main, "create, list or revoke API tokens", true},
    {"export", ctl_export_main, "write an export file (xlsx, csv or json)", true},
    {"keygen", ctl_keygen_main, "make a CURVE key pair for ingest or a producer", true},
    {"flexlm", ctl_flexlm_main, "convert FlexLM debug logs to licmon events (NDJSON)", true},
    {"demo-feed", ctl_demo_main, "internal: the live demo stream run by up --demo", false},
};

static void ctl_usage(FILE *out)
{
    fprintf(out, "usage: licmonctl COMMAND [options]   (licmonctl COMMAND --help for each)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
        fprintf(out, "  %-10s %s\n", ctl_commands[i].name, ctl_commands[i].summary);
    fprintf(out, "\nexit status: 0 success, 1 failure (reason on stderr), 2 usage error;\n"
                 "send also uses 3 when events could not be delivered.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        ctl_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        ctl_usage(stdout);
        return CTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++) {
        const struct ctl_command *c = &ctl_commands[i];
        if (strcmp(argv[1], c->name) != 0)
            continue;
        log_init("licmonctl");
        if (c->quiet_lib)
            log_set_level(LOG_FATAL);
        int rc = c->run(argc, argv);
        fflush(stdout);
        zsock_ctx_term();
        return rc;
    }
    fprintf(stderr, "licmonctl: unknown command '%.40s' (see licmonctl --help)\n", argv[1]);
    return CTL_EXIT_USAGE;
}
