/* licmon-exporter: the stack's outward face, the HTTP/JSON API of API.md
 * section 3. This file only wires: settings, the token store, the admin
 * token, the upstream clients, the HTTP server (its own thread) and the
 * internal socket on the svc loop, then a clean shutdown on SIGTERM. */
#include "exp_api.h"
#include "exp_export.h"
#include "exp_http.h"
#include "exp_internal.h"
#include "exp_token.h"
#include "exp_upstream.h"
#include "health.h"
#include "log.h"
#include "prog.h"
#include "store.h"
#include "svc.h"
#include "xmem.h"
#include "zsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    struct prog_common common;
    char *http = NULL, *aggregator = NULL, *ingest = NULL, *internal = NULL, *token_file = NULL,
         *db = NULL;
    int64_t query_timeout_ms = 0, http_threads = 0, xlsx_max_rows = 0, session_chunk = 0,
            max_exports = 0;
    char *tmpdir = NULL;
    struct conf_opt opts[] = {
        PROG_COMMON_OPTS(&common, "LICMON_EXPORTER"),
        CONF_STR("http", "LICMON_HTTP", "127.0.0.1:8080",
                 "HOST:PORT of the HTTP API (port 0: any free port, logged)", &http),
        CONF_STR("aggregator", "LICMON_AGGREGATOR_ENDPOINT", "",
                 "the aggregator's internal endpoint (default ipc://DIR/run/aggregator.sock)",
                 &aggregator),
        CONF_STR("ingest", "LICMON_INGEST_ENDPOINT", "",
                 "ingest's internal endpoint, for settings changes (default "
                 "ipc://DIR/run/ingest.sock)",
                 &ingest),
        CONF_STR("internal", "LICMON_EXPORTER_INTERNAL_ENDPOINT", "",
                 "our internal endpoint, answering status (default ipc://DIR/run/exporter.sock)",
                 &internal),
        CONF_STR("admin-token-file", "LICMON_ADMIN_TOKEN_FILE", "",
                 "the administrator token, first line; created when missing (default "
                 "DIR/admin.token)",
                 &token_file),
        CONF_STR("db", "LICMON_EXPORTER_DB", "", "token database (default DIR/data/exporter)", &db),
        CONF_INT("query-timeout-ms", "LICMON_EXPORTER_QUERY_TIMEOUT_MS", 5000, 100, 600000,
                 "how long to wait for the aggregator or ingest to answer", &query_timeout_ms),
        CONF_INT("http-threads", "LICMON_EXPORTER_HTTP_THREADS", 4, 1, 64,
                 "HTTP threads (each with its own connections and aggregator socket)",
                 &http_threads),
        CONF_STR("tmp-dir", "LICMON_EXPORTER_TMP_DIR", "",
                 "where xlsx exports are written before they are sent (default DIR/tmp)", &tmpdir),
        CONF_INT("max-exports", "LICMON_EXPORTER_MAX_EXPORTS", 2, 1, 64,
                 "xlsx exports written at the same time (more: 503, try again)", &max_exports),
        CONF_INT("session-chunk", "LICMON_EXPORTER_SESSION_CHUNK", 2000, 1, 100000,
                 "session records asked of the aggregator at a time", &session_chunk),
        CONF_INT("xlsx-max-rows", "LICMON_EXPORTER_XLSX_MAX_ROWS", 1048576, 2, 1048576,
                 "rows of a Sessions sheet, its header included, before \"Sessions (2)\" "
                 "(for tests; Excel's limit by default)",
                 &xlsx_max_rows),
        CONF_END};
    conf_parse("licmon-exporter", "The HTTP/JSON API of a licmon stack.", opts, argc, argv, 1, NULL,
               NULL);
    prog_start("exporter", &common);
    prog_default_endpoint(&aggregator, common.dir, "aggregator");
    prog_default_endpoint(&ingest, common.dir, "ingest");
    prog_default_endpoint(&internal, common.dir, "exporter");
    prog_default_str(&token_file, xasprintf("%s/admin.token", common.dir));
    prog_default_db(&db, common.dir, "exporter");
    prog_default_str(&tmpdir, xasprintf("%s/tmp", common.dir));
    if (prog_mkdirs(tmpdir) != 0)
        log_fatal("cannot make the temp folder %s: %s", tmpdir, strerror(errno));
    exp_export_sweep(tmpdir); /* what a killed exporter left half-written */

    struct svc *svc = svc_new(); /* blocks signals before any thread starts */
    struct store *store = store_open(db);
    if (!store)
        log_fatal("cannot open the exporter's database %s", db);
    char *admin = exp_auth_admin_token(token_file);
    if (!admin)
        log_fatal("no administrator token: see the warning above");
    struct exp_tokens *tokens = exp_tokens_new(store);
    /* one aggregator socket per HTTP thread: a call never waits for another's */
    struct exp_upstream *up_agg =
        exp_upstream_new_pool("aggregator", aggregator, query_timeout_ms, (unsigned)http_threads);
    struct exp_upstream *up_ingest =
        exp_upstream_new_pool("ingest", ingest, query_timeout_ms, (unsigned)http_threads);
    struct exp_api_config cfg = {.admin_token = admin,
                                 .tokens = tokens,
                                 .store = store,
                                 .aggregator = up_agg,
                                 .ingest = up_ingest,
                                 .query_timeout_ms = query_timeout_ms,
                                 .tmpdir = tmpdir,
                                 .xlsx_max_rows = (uint32_t)xlsx_max_rows,
                                 .session_chunk = (uint32_t)session_chunk,
                                 .max_exports = (unsigned)max_exports};
    struct exp_api *api = exp_api_new(&cfg);
    explicit_bzero(admin, strlen(admin));
    free(admin);

    struct exp_internal *in = exp_internal_open(internal, svc);
    if (!in)
        log_fatal("cannot listen on %s", internal);
    struct exp_http *srv =
        exp_http_start(http, api, (unsigned)http_threads, EXP_HTTP_IDLE_TIMEOUT_S);
    if (!srv)
        log_fatal("cannot serve the API on %s", http);
    log_info("serving the API on port %u with %d threads (aggregator %s, ingest %s)",
             exp_http_port(srv), (int)http_threads, aggregator, ingest);
    health_set_ready(true);

    svc_run(svc);

    health_set_ready(false);
    exp_http_stop(&srv); /* joins the HTTP thread: nothing uses the upstreams after this */
    exp_internal_close(&in, svc);
    exp_api_free(&api);
    exp_upstream_free(&up_agg);
    exp_upstream_free(&up_ingest);
    exp_tokens_free(&tokens);
    prog_finish(&store, &svc, opts);
    return 0;
}
