/* libFuzzer harness: the alerter's outbox entries as read back from its
 * database (alerter/alert_outbox.c: the loader at open, the sender that
 * reads an entry to hand it to the transport, the outcome records, the
 * pruner, in several calls that go on from each other), each entry judged
 * against its org's settings in force (kept, cancelled, or signed with the
 * secret in force). A damaged or hand-edited entry must be skipped or sent
 * as it is, never crash the alerter that restarts over it.
 *
 * Input: byte 0 drives the fake transport (which deliveries start, how
 * each ends); then entries, each a 2-byte length, a 1-byte key kind ('Q'
 * pending, 'R' finished, else 'Q' with a short key) and the stored value.
 * An entry's "org" picks its settings in force by its first letter: none,
 * notifications off, or recipients and webhooks (with and without secret).
 * The store is a real RocksDB database through lib/store.c, in memory,
 * emptied before every input (fuzz_store.h says how and why). */
#include "../../alerter/alert_outbox.h"
#include "fuzz_store.h"
#include "keys.h"
#include "log.h"
#include "settings.h"
#include "store.h"

#include <jansson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct fuzz_store store;
static uint8_t script;
static uint64_t started[64];
static int nstarted;
static Licmon__V1__OrgSettings *in_force[3];

static const Licmon__V1__OrgSettings *settings_of(void *arg, const char *org, bool *settled)
{
    (void)arg;
    *settled = org[0] != 'c' || org[1]; /* "c" alone: out of date */
    return org[0] >= 'a' && org[0] < 'a' + 3 ? in_force[org[0] - 'a'] : NULL;
}

static Licmon__V1__OrgSettings *make_settings(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    Licmon__V1__OrgSettings *base = settings_default("fuzz");
    char err[128];
    Licmon__V1__OrgSettings *s = j ? settings_merge_json(base, j, err, sizeof(err)) : NULL;
    if (!s)
        abort();
    settings_free(&base);
    json_decref(j);
    return s;
}

static int t_start(void *arg, uint64_t token, const struct alert_delivery *d)
{
    (void)arg;
    if (!d->id || !d->to || !d->payload || strlen(d->payload) != d->len)
        abort();
    if (script & 1)
        return ALERT_START_LATER;
    if (nstarted < 64)
        started[nstarted++] = token;
    return ALERT_START_OK;
}

static void t_poll(void *arg, alert_done_fn done, void *done_arg)
{
    (void)arg;
    for (int i = 0; i < nstarted; i++) {
        struct alert_result r = {
            .outcome = (enum alert_outcome)((script >> 1) % 3), .code = 250, .detail = "fuzz"};
        script = (uint8_t)(script >> 2 | script << 6);
        done(done_arg, started[i], &r);
    }
    nstarted = 0;
}

static void close_store(void)
{
    fuzz_store_close(&store);
    for (int i = 0; i < 3; i++)
        settings_free(&in_force[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    no_per_input_leak_check(argc, argv);
    log_set_level(LOG_PANIC);
    fuzz_store_open(&store, "/fuzz-outbox");
    in_force[0] = make_settings("{\"notify_enabled\":false}");
    in_force[1] = make_settings("{\"notify_emails\":[\"ops@acme.example\",\"IT@acme.example\"],"
                                "\"webhooks\":[{\"url\":\"https://hooks.example/a\","
                                "\"secret\":\"whsec_a2V5\"},{\"url\":\"http://h/b\"}]}");
    in_force[2] = make_settings("{\"notify_emails\":[\"a@b.c\"]}");
    atexit(close_store);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    script = data[0];
    nstarted = 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    fuzz_store_empty(&store);
    struct store_batch *b = store_batch_new();
    uint64_t seq = 1;
    while (n >= 3) {
        size_t len = (size_t)p[0] | (size_t)p[1] << 8;
        uint8_t kind = p[2];
        p += 3, n -= 3;
        if (len > n)
            len = n;
        uint8_t key[9];
        key[0] = kind == 'R' ? 'R' : 'Q';
        keys_put_u64(key + 1, seq);
        store_batch_put(b, key, kind == 'R' || kind == 'Q' ? 9 : 1 + kind % 9, p, len);
        seq += 1 + (kind & 3);
        p += len, n -= len;
    }
    fuzz_store_write(&store, b, false);
    store_batch_free(&b);

    struct alert_outbox_config cfg = {.smtp_from = "licmon@example.com",
                                      .public_url = "https://licmon.example",
                                      .retry_min_ms = 10,
                                      .retry_max_ms = 1000,
                                      .max_inflight = 4,
                                      .keep_ms = 1000};
    struct alert_transport t = {t_start, t_poll, NULL};
    struct alert_outbox *ob = alert_outbox_open(store.st, &cfg, &t);
    if (!(data[0] & 0x80))
        alert_outbox_follow_settings(ob, settings_of, NULL);
    int64_t now = 1793000000000LL;
    for (int i = 0; i < 6; i++, now += 700) {
        alert_outbox_tick(ob, now);
        alert_outbox_oldest_ms(ob);
    }
    alert_outbox_collect(ob, now);
    for (int i = 0; i < 3; i++)
        alert_outbox_prune(ob, now + 5000, 1 + (data[0] >> 5 & 3));
    alert_outbox_prune(ob, now + 5000, 100);
    for (uint64_t s = 1; s < seq && s < 40; s++)
        free(alert_outbox_entry_json(ob, s));
    alert_outbox_close(&ob);
    return 0;
}
