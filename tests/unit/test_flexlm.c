/* test_flexlm: `licmonctl flexlm`'s reading of FlexLM debug logs
 * (tools/licmonctl/flexlm.c, included directly like the other pure parts of
 * licmonctl): dates, time zones, seats, restarts, holes, heartbeats, ids,
 * and the lines it cannot use. The real logs go through the whole stack in
 * tests/integration/test_flexlm.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/licmonctl/flexlm.c"

#define MAXEV 64

struct got {
    size_t n;
    struct {
        Licmon__V1__EventKind kind;
        char user[300], type[40], id[40];
        int64_t ms;
    } ev[MAXEV];
    size_t nwarn;
    char warn[8][240];
};

static void got_emit(void *arg, const Licmon__V1__Event *ev)
{
    struct got *g = arg;
    assert_true(g->n < MAXEV);
    g->ev[g->n].kind = ev->kind;
    snprintf(g->ev[g->n].user, sizeof(g->ev[0].user), "%s", ev->user);
    snprintf(g->ev[g->n].type, sizeof(g->ev[0].type), "%s", ev->license_type);
    snprintf(g->ev[g->n].id, sizeof(g->ev[0].id), "%s", ev->event_id);
    assert_string_equal(ev->org, "acme");
    g->ev[g->n++].ms = ev->ts_ms;
}

static void got_warn(void *arg, const char *file, uint32_t line, const char *reason)
{
    struct got *g = arg;
    if (g->nwarn < 8)
        snprintf(g->warn[g->nwarn], sizeof(g->warn[0]), "%s:%u: %s", file, line, reason);
    g->nwarn++;
}

/* Converts log (one file, or two cut at "\f") with heartbeat seconds hb. */
static struct flexlm *run(const char *log, const char *zone, int64_t hb, const char *map, bool only,
                          struct got *g)
{
    struct flexlm_cfg cfg = {"acme", zone, "srv1", map, only, hb * 1000};
    char err[300];
    struct flexlm *f = flexlm_new(&cfg, err, sizeof(err));
    assert_non_null(f);
    const char *cut = strchr(log, '\f');
    size_t n1 = cut ? (size_t)(cut - log) : strlen(log);
    flexlm_add(f, "a.log", xmemdup(log, n1), n1);
    if (cut)
        flexlm_add(f, "b.log", xstrdup(cut + 1), strlen(cut + 1));
    memset(g, 0, sizeof(*g));
    assert_int_equal(flexlm_run(f, got_emit, got_warn, g, err, sizeof(err)), 0);
    return f;
}

/* UTC ms of a local date and time at offset off_h */
static int64_t at(int y, int mo, int d, int h, int mi, int s, int off_h)
{
    return (time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s -
            off_h * 3600) *
           1000;
}

static void want(const struct got *g, size_t i, Licmon__V1__EventKind kind, const char *user,
                 int64_t ms)
{
    if (i < g->n && (g->ev[i].kind != kind || strcmp(g->ev[i].user, user) || g->ev[i].ms != ms))
        fprintf(stderr, "event %zu: got %d %s %lld\n", i, g->ev[i].kind, g->ev[i].user,
                (long long)g->ev[i].ms);
    assert_true(i < g->n);
    assert_int_equal(g->ev[i].kind, kind);
    assert_string_equal(g->ev[i].user, user);
    assert_int_equal(g->ev[i].ms, ms);
}

#define LOGIN LICMON__V1__EVENT_KIND__LOGIN
#define ACTIVITY LICMON__V1__EVENT_KIND__ACTIVITY
#define LOGOUT LICMON__V1__EVENT_KIND__LOGOUT
#define DENIED LICMON__V1__EVENT_KIND__DENIED

static void test_dates_count_back_and_over_midnight(void **state)
{
    (void)state;
    struct got g;
    /* lines before the first date count back from it; midnight advances it */
    struct flexlm *f = run("23:10:00 (MLM) OUT: \"MATLAB\" ana@pc1  \n"
                           " 0:05:00 (lmgrd) TIMESTAMP 6/10/2022\n"
                           " 0:20:00 (MLM) IN: \"MATLAB\" ana@pc1  \n"
                           "12:05:00 (lmgrd) TIMESTAMP 6/10/2022\n"
                           "23:59:59 (MLM) OUT: \"MATLAB\" bo@pc2  \n"
                           "\f 0:00:01 (MLM) IN: \"MATLAB\" bo@pc2  \n",
                           "Europe/Madrid", 0, NULL, false, &g);
    assert_int_equal(g.n, 4);
    want(&g, 0, LOGIN, "ana@pc1/matlab", at(2022, 6, 9, 23, 10, 0, 2));
    assert_string_equal(g.ev[0].type, "matlab");
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 6, 10, 0, 20, 0, 2));
    assert_string_equal(g.ev[1].type, "");
    want(&g, 2, LOGIN, "bo@pc2/matlab", at(2022, 6, 10, 23, 59, 59, 2));
    want(&g, 3, LOGOUT, "bo@pc2/matlab", at(2022, 6, 11, 0, 0, 1, 2));
    assert_int_equal(flexlm_stats(f)->lines, 6);
    flexlm_free(&f);

    /* the other dated lines; a later one sets the date anew */
    f = run("10:25:31 (lmgrd) Server's System Date and Time: Thu Jun 09 2022 10:25:31 Hora\n"
            "10:25:40 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            "11:00:00 (lmgrd) FlexNet Licensing (v11) started on flexlm01 (IBM PC) (1/15/2023)\n"
            "11:00:01 (MLM) OUT: \"MATLAB\" bo@pc2\n",
            "Europe/Madrid", 0, NULL, false, &g);
    want(&g, 0, LOGIN, "ana@pc1/matlab", at(2022, 6, 9, 10, 25, 40, 2));
    /* the gap to 2023 ended ana's seat at the last line before it */
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 6, 9, 10, 25, 40, 2));
    want(&g, 2, LOGIN, "bo@pc2/matlab", at(2023, 1, 15, 11, 0, 1, 1));
    assert_int_equal(flexlm_stats(f)->gaps, 1);
    assert_int_equal(flexlm_stats(f)->lost, 1);
    flexlm_free(&f);
}

static void test_the_repeated_hour_of_dst(void **state)
{
    (void)state;
    struct got g;
    /* Europe/Madrid, 30 Oct 2022: 02:00-02:59 comes twice (CEST, then CET) */
    struct flexlm *f = run(" 1:50:00 (lmgrd) TIMESTAMP 10/30/2022\n"
                           " 2:10:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
                           " 2:50:00 (MLM) OUT: \"MATLAB\" bo@pc2\n"
                           " 2:10:00 (MLM) IN: \"MATLAB\" ana@pc1\n"
                           " 3:10:00 (MLM) IN: \"MATLAB\" bo@pc2\n",
                           "Europe/Madrid", 0, NULL, false, &g);
    assert_int_equal(g.n, 4);
    want(&g, 0, LOGIN, "ana@pc1/matlab", at(2022, 10, 30, 2, 10, 0, 2));
    want(&g, 1, LOGIN, "bo@pc2/matlab", at(2022, 10, 30, 2, 50, 0, 2));
    want(&g, 2, LOGOUT, "ana@pc1/matlab", at(2022, 10, 30, 2, 10, 0, 1));
    want(&g, 3, LOGOUT, "bo@pc2/matlab", at(2022, 10, 30, 3, 10, 0, 1));
    assert_int_equal(flexlm_stats(f)->ambiguous, 3);
    assert_int_equal(flexlm_stats(f)->behind, 0);
    flexlm_free(&f);

    /* a line after the change, later in the repeated hour: the second pass */
    f = run(" 1:50:00 (lmgrd) TIMESTAMP 10/30/2022\n"
            " 2:30:00 (lmgrd) TIMESTAMP 10/30/2022\n"
            " 2:05:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            " 2:58:00 (MLM) IN: \"MATLAB\" ana@pc1\n",
            "Europe/Madrid", 0, NULL, false, &g);
    want(&g, 0, LOGIN, "ana@pc1/matlab", at(2022, 10, 30, 2, 5, 0, 1));
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 10, 30, 2, 58, 0, 1));
    flexlm_free(&f);

    /* Lord Howe Island: the half hour before 02:00 comes twice (+11, +10:30) */
    f = run(" 1:20:00 (lmgrd) TIMESTAMP 4/3/2022\n"
            " 1:40:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            " 1:50:00 (MLM) OUT: \"MATLAB\" bo@pc2\n"
            " 1:35:00 (MLM) IN: \"MATLAB\" ana@pc1\n"
            " 2:10:00 (MLM) IN: \"MATLAB\" bo@pc2\n",
            "Australia/Lord_Howe", 0, NULL, false, &g);
    int64_t d = at(2022, 4, 3, 0, 0, 0, 0);
    want(&g, 0, LOGIN, "ana@pc1/matlab", d + (100 - 660) * 60000LL);
    want(&g, 1, LOGIN, "bo@pc2/matlab", d + (110 - 660) * 60000LL);
    want(&g, 2, LOGOUT, "ana@pc1/matlab", d + (95 - 630) * 60000LL);
    want(&g, 3, LOGOUT, "bo@pc2/matlab", d + (130 - 630) * 60000LL);
    flexlm_free(&f);

    /* the hour DST skips (Madrid, 27 Mar 2022, 02:00 -> 03:00): read with
     * the offset before it */
    f = run(" 1:50:00 (lmgrd) TIMESTAMP 3/27/2022\n"
            " 2:30:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            " 3:40:00 (MLM) IN: \"MATLAB\" ana@pc1\n",
            "Europe/Madrid", 0, NULL, false, &g);
    want(&g, 0, LOGIN, "ana@pc1/matlab", at(2022, 3, 27, 2, 30, 0, 1));
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 3, 27, 3, 40, 0, 2));
    flexlm_free(&f);

    /* a line a little out of order at midnight stays on its day */
    f = run("22:25:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "23:50:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            " 0:00:01 (MLM) IN: \"MATLAB\" ana@pc1\n"
            "23:59:59 (lmgrd) TIMESTAMP 6/9/2022\n"
            " 0:00:02 (MLM) OUT: \"MATLAB\" bo@pc2\n"
            " 1:00:00 (MLM) OUT: \"MATLAB\" cy@pc3\n"
            " 4:25:00 (lmgrd) TIMESTAMP 6/10/2022\n"
            " 9:00:00 (MLM) IN: \"MATLAB\" cy@pc3\n",
            "UTC", 0, NULL, false, &g);
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 6, 10, 0, 0, 1, 0));
    want(&g, 2, LOGIN, "bo@pc2/matlab", at(2022, 6, 10, 0, 0, 2, 0));
    want(&g, 3, LOGIN, "cy@pc3/matlab", at(2022, 6, 10, 1, 0, 0, 0));
    want(&g, 4, LOGOUT, "cy@pc3/matlab", at(2022, 6, 10, 9, 0, 0, 0));
    assert_int_equal(flexlm_stats(f)->behind, 1);
    flexlm_free(&f);

    /* a clock set back: the line counts at the time of the line before */
    f = run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "10:30:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            "10:25:00 (MLM) IN: \"MATLAB\" ana@pc1\n",
            "UTC", 0, NULL, false, &g);
    want(&g, 1, LOGOUT, "ana@pc1/matlab", at(2022, 6, 9, 10, 30, 0, 0));
    assert_int_equal(flexlm_stats(f)->behind, 1);
    flexlm_free(&f);
}

static void test_one_seat_per_user_host_and_type(void **state)
{
    (void)state;
    struct got g;
    struct flexlm *f =
        run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "10:00:01 (MLM) OUT: \"MATLAB\" ana@pc1  \n"
            "10:00:01 (MLM) OUT: \"MATLAB\" ana@pc1  \n"          /* a second process */
            "10:00:02 (MLM) OUT: \"Simulink\" ana@pc1  \n"        /* another type */
            "10:05:00 (MLM) IN: \"MATLAB\" ana@pc1  \n"           /* one still out */
            "10:06:00 (MLM) IN: \"MATLAB\" ana@pc1  (INACTIVE)\n" /* the last */
            "10:07:00 (MLM) IN: \"MATLAB\" ana@pc1  \n"           /* none out */
            "10:08:00 (MLM) OUT: \"MATLAB\" s42@node7.hpc  \n"
            "10:08:00 (MLM) OUT: \"MATLAB\" s42@node7.hpc  \n"
            "10:08:00 (MLM) OUT: \"MATLAB\" s42@node7.hpc  \n"
            "10:09:00 (MLM) IN: \"MATLAB\" s42@node7.hpc  (SHUTDOWN)\n" /* one IN for all */
            "10:09:00 (MLM) DENIED: \"MATLAB\" Mª Cruz@mcruz  (Licensed number of users "
            "already reached. (-4,342))\n",
            "UTC", 0, NULL, false, &g);
    size_t i = 0;
    int64_t t = at(2022, 6, 9, 10, 0, 0, 0);
    want(&g, i++, LOGIN, "ana@pc1/matlab", t + 1000);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 1000);
    want(&g, i++, LOGIN, "ana@pc1/simulink", t + 2000);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 300000);
    want(&g, i++, LOGOUT, "ana@pc1/matlab", t + 360000);
    want(&g, i++, LOGIN, "s42@node7.hpc/matlab", t + 480000);
    want(&g, i++, ACTIVITY, "s42@node7.hpc/matlab", t + 480000);
    want(&g, i++, ACTIVITY, "s42@node7.hpc/matlab", t + 480000);
    want(&g, i++, LOGOUT, "s42@node7.hpc/matlab", t + 540000);
    want(&g, i++, DENIED, "Mª Cruz@mcruz/matlab", t + 540000);
    assert_string_equal(g.ev[i - 1].type, "matlab");
    assert_int_equal(g.n, i);
    /* the same checkout twice in a second: two ids */
    assert_string_not_equal(g.ev[1].id, g.ev[0].id);
    assert_string_not_equal(g.ev[6].id, g.ev[7].id);
    const struct flexlm_stats *st = flexlm_stats(f);
    assert_int_equal(st->checkouts, 6);
    assert_int_equal(st->checkins, 4);
    assert_int_equal(st->unmatched, 1);
    assert_int_equal(st->denials, 1);
    assert_int_equal(st->open_at_end, 1); /* Simulink */
    assert_int_equal(g.nwarn, 0);
    flexlm_free(&f);
}

static void test_a_restarted_daemon_lost_its_seats(void **state)
{
    (void)state;
    struct got g;
    struct flexlm *f = run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
                           "10:00:00 (lmgrd) Started MLM (pid 10)\n"
                           "10:01:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
                           "10:02:00 (maple) OUT: \"Maple\" ana@pc1\n"
                           "11:00:00 (MLM) TIMESTAMP 6/9/2022\n"
                           "12:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
                           "12:30:00 (lmgrd) REStarted MLM (internet tcp_port 27001 pid 11)\n"
                           "12:31:00 (MLM) OUT: \"MATLAB\" ana@pc1\n",
                           "UTC", 1800, NULL, false, &g);
    int64_t t = at(2022, 6, 9, 10, 0, 0, 0), m = 60000;
    size_t i = 0;
    want(&g, i++, LOGIN, "ana@pc1/matlab", t + 1 * m);
    want(&g, i++, LOGIN, "ana@pc1/maple", t + 2 * m);
    /* heartbeats every 30 min while held */
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 31 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/maple", t + 32 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 61 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/maple", t + 62 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 91 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/maple", t + 92 * m);
    /* MLM's seat ended at the log's last line before lmgrd started it again */
    want(&g, i++, LOGOUT, "ana@pc1/matlab", t + 120 * m);
    want(&g, i++, ACTIVITY, "ana@pc1/maple", t + 122 * m);
    want(&g, i++, LOGIN, "ana@pc1/matlab", t + 151 * m);
    assert_int_equal(g.n, i);
    assert_int_equal(flexlm_stats(f)->restarts, 2);
    assert_int_equal(flexlm_stats(f)->lost, 1);
    flexlm_free(&f);

    /* a daemon that exits, and lmgrd: their seats end at that line (the INs
     * after it find none) */
    f = run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "10:01:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            "10:02:00 (maple) OUT: \"Maple\" ana@pc1\n"
            "10:03:00 (maple) OUT: \"Maple\" bo@pc2\n"
            "10:05:00 (lmgrd) MLM exited with status 27 (Invalid license file syntax)\n"
            "10:06:00 (MLM) IN: \"MATLAB\" ana@pc1\n"
            "10:07:00 (lmgrd) EXITING DUE TO SIGNAL 15\n"
            "10:07:00 (maple) IN: \"Maple\" bo@pc2  (SHUTDOWN)\n",
            "UTC", 0, NULL, false, &g);
    i = 3;
    want(&g, i++, LOGOUT, "ana@pc1/matlab", t + 5 * m);
    want(&g, i++, LOGOUT, "ana@pc1/maple", t + 7 * m);
    want(&g, i++, LOGOUT, "bo@pc2/maple", t + 7 * m);
    assert_int_equal(g.n, i);
    assert_int_equal(flexlm_stats(f)->unmatched, 2);
    assert_int_equal(flexlm_stats(f)->lost, 3);
    assert_int_equal(flexlm_stats(f)->open_at_end, 0);
    flexlm_free(&f);
}

/* Every event of the short log is one of the long one, id, kind and time
 * alike, in the same order before the short log's last instant. */
static void assert_agrees(const char *shortlog, const char *longlog)
{
    struct got *a = xcalloc(1, sizeof(*a)), *b = xcalloc(1, sizeof(*b));
    struct flexlm *f = run(shortlog, "UTC", 600, NULL, false, a);
    int64_t last = flexlm_stats(f)->last_ms;
    flexlm_free(&f);
    f = run(longlog, "UTC", 600, NULL, false, b);
    flexlm_free(&f);
    for (size_t i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < b->n && strcmp(a->ev[i].id, b->ev[j].id))
            j++;
        if (a->ev[i].ms < last)
            assert_int_equal(j, i);
        assert_true(j < b->n);
        assert_int_equal(a->ev[i].kind, b->ev[j].kind);
        assert_int_equal(a->ev[i].ms, b->ev[j].ms);
    }
    free(a);
    free(b);
}

/* What a log sent before it grew said stays true, whatever the rest of the
 * log shows: a restart that ended a seat the short log kept alive, ends in
 * the short log's last second, a line cut short. */
static void test_a_log_sent_again_grown_agrees(void **state)
{
    (void)state;
    const char *log = "10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
                      "10:00:00 (lmgrd) Started MLM (pid 1)\n"
                      "10:01:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
                      "10:05:00 (MLM) TIMESTAMP 6/9/2022\n"
                      "12:00:00 (lmgrd) TIMESTAMP 6/9/2022\n";
    const char *tails[] = {
        "12:30:00 (lmgrd) Started MLM (pid 2)\n", "12:00:00 (lmgrd) Started MLM (pid 2)\n",
        "12:00:00 (lmgrd) EXITING DUE TO SIGNAL 15\n",
        "12:00:00 (lmgrd) MLM exited with status 1\n", "13:00:00 (MLM) IN: \"MATLAB\" ana@pc1\n"};
    for (size_t k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
        char *more = xasprintf("%s%s", log, tails[k]);
        assert_agrees(log, more);
        struct got g;
        struct flexlm *f = run(more, "UTC", 600, NULL, false, &g);
        assert_int_equal(g.ev[g.n - 1].kind, LOGOUT); /* the seat did end */
        flexlm_free(&f);
        free(more);
    }
    /* pairs a review found; the short one is the long one's first part */
    static const char *const pairs[][2] = {
        {"10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:10 (lmgrd) REStarted E (internet tcp_port 1 pid 2)\n"
         "10:00:10 (D) OUT: \"F\" u@h\n",
         "10:00:10 (lmgrd) REStarted D (internet tcp_port 1 pid 3)\n"},
        {"10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:10 (lmgrd) EXITING DUE TO SIGNAL 15\n",
         "10:00:10 (D) OUT: \"F\" u@h\n"},
        {"10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:10 (lmgrd) EXITING DUE TO SIGNAL 15\n",
         "10:00:10 (D) IN: \"F\" u@h\n"},
        {"10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
         "10:00:00 (D) OUT: \"F\" u@host",
         "name\n10:00:05 (D) IN: \"F\" u@hostname\n"},
        {"10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:00 (D) OUT: \"F\" u@h\n"
         "10:00:05 (D) IN: \"F\" u@h",
         "  (SHUTDOWN)\n"},
    };
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        char *whole = xasprintf("%s%s", pairs[k][0], pairs[k][1]);
        assert_agrees(pairs[k][0], whole);
        free(whole);
    }
    /* and the first: after E's restart, u@h's second checkout is u@h's
     * activity; D's restart then ends the seat at the line before */
    struct got g;
    char *whole = xasprintf("%s%s", pairs[0][0], pairs[0][1]);
    struct flexlm *f = run(whole, "UTC", 0, NULL, false, &g);
    int64_t t = at(2022, 6, 9, 10, 0, 0, 0);
    want(&g, 0, LOGIN, "u@h/f", t);
    want(&g, 1, ACTIVITY, "u@h/f", t + 10000);
    want(&g, 2, LOGOUT, "u@h/f", t + 10000);
    assert_int_equal(g.n, 3);
    flexlm_free(&f);
    free(whole);
    /* a last line still being written is left for next time */
    f = run(pairs[3][0], "UTC", 0, NULL, false, &g);
    assert_int_equal(g.n, 0);
    assert_int_equal(flexlm_stats(f)->unfinished, 1);
    flexlm_free(&f);
}

static void test_heartbeats_keep_a_seat_until_its_checkin(void **state)
{
    (void)state;
    struct got g;
    struct flexlm *f = run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
                           "10:00:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"
                           "10:25:00 (MLM) IN: \"MATLAB\" ana@pc1\n"
                           "10:30:00 (MLM) OUT: \"MATLAB\" bo@pc2\n"
                           "10:45:00 (lmgrd) TIMESTAMP 6/9/2022\n",
                           "UTC", 600, NULL, false, &g);
    int64_t t = at(2022, 6, 9, 10, 0, 0, 0);
    size_t i = 0;
    want(&g, i++, LOGIN, "ana@pc1/matlab", t);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 600000);
    want(&g, i++, ACTIVITY, "ana@pc1/matlab", t + 1200000);
    want(&g, i++, LOGOUT, "ana@pc1/matlab", t + 1500000);
    want(&g, i++, LOGIN, "bo@pc2/matlab", t + 1800000);
    want(&g, i++, ACTIVITY, "bo@pc2/matlab", t + 2400000);
    /* up to the end of the log, and no further */
    assert_int_equal(g.n, i);
    assert_int_equal(flexlm_stats(f)->heartbeats, 3);
    assert_int_equal(flexlm_stats(f)->open_at_end, 1);
    flexlm_free(&f);
}

static void test_ids_are_stable_as_the_log_grows(void **state)
{
    (void)state;
    const char *log = "\xEF\xBB\xBF"
                      "10:00:00 (lmgrd) TIMESTAMP 6/9/2022\r\n"
                      "10:00:00 (MLM) OUT: \"MATLAB\" ana@pc1\r\n"
                      "10:25:00 (MLM) IN: \"MATLAB\" ana@pc1\r\n"
                      "10:30:00 (MLM) OUT: \"MATLAB\" bo@pc2\r\n";
    char *more = xasprintf("%s10:50:00 (MLM) IN: \"MATLAB\" bo@pc2\r\n", log);
    struct got a, b;
    struct flexlm *f = run(log, "UTC", 600, NULL, false, &a);
    flexlm_free(&f);
    f = run(more, "UTC", 600, NULL, false, &b);
    assert_true(b.n > a.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.ev[i].id, b.ev[i].id);
        assert_int_equal(a.ev[i].ms, b.ev[i].ms);
    }
    assert_int_equal(strlen(a.ev[0].id), 35);
    flexlm_free(&f);
    /* another server: other ids */
    struct flexlm_cfg cfg = {"acme", "UTC", "srv2", NULL, false, 600000};
    char err[300];
    f = flexlm_new(&cfg, err, sizeof(err));
    flexlm_add(f, "a.log", xstrdup(log), strlen(log));
    struct got c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(flexlm_run(f, got_emit, got_warn, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, a.n);
    assert_string_not_equal(c.ev[0].id, a.ev[0].id);
    flexlm_free(&f);
    free(more);
}

static void test_types_names_and_lines_it_cannot_use(void **state)
{
    (void)state;
    struct got g;
    struct flexlm *f =
        run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "10:00:01 (adskflex) OUT: \"85730ACD_2012_0F\" USER01@COMPUTER01  \n"
            "10:00:02 (adskflex) OUT: \"64300ACD_F\" USER01@COMPUTER01  \n"
            "10:00:03 (adskflex) UNSUPPORTED: \"87537INVPROSA_2022_0F\" (00B0 EF6E AFC6 B280 ) "
            "UPM@upm00243  (No such feature exists. (-5,346))\n"
            "10:00:04 (adskflex) OUT: \"Some-Feature.x\" Jos\xe9@pc9\n" /* Latin-1 */
            "10:00:05 (adskflex) OUT: MATLAB ana@pc1\n"
            "10:00:06 (adskflex) OUT: \"MATLAB\"   \n"
            "10:00:07 (adskflex) OUT: \"A_Feature_Name_Longer_Than_32_Chars\" ana@pc1\n"
            "  this line has no time\n"
            "10:00:08 (adskflex) OUT: \"Maple\" ana@pc1\n"
            "10:00:09 (adskflex) OUT: \"ALL\" ana@pc1\n"
            "10:00:10 (other) OUT: \"64300ACD_F\" bo@pc2\n",
            "UTC", 0, "85730ACD_2012_0F=autocad, 64300ACD_F = autocad", false, &g);
    size_t i = 0;
    want(&g, i++, LOGIN, "USER01@COMPUTER01/autocad", at(2022, 6, 9, 10, 0, 1, 0));
    want(&g, i++, ACTIVITY, "USER01@COMPUTER01/autocad", at(2022, 6, 9, 10, 0, 2, 0));
    want(&g, i++, LOGIN, "Jos\xc3\xa9@pc9/some_feature_x", at(2022, 6, 9, 10, 0, 4, 0));
    want(&g, i++, LOGIN, "ana@pc1/maple", at(2022, 6, 9, 10, 0, 8, 0));
    assert_int_equal(g.n, i);
    assert_int_equal(g.nwarn, 5);
    assert_string_equal(g.warn[0], "a.log:6: no quoted feature name");
    assert_string_equal(g.warn[1], "a.log:7: no user@host after the feature");
    assert_non_null(strstr(g.warn[2], "a.log:8: feature \"A_Feature_Name_Longer_Than_32_Chars\""));
    assert_non_null(strstr(g.warn[2], "--type-map"));
    assert_non_null(strstr(g.warn[3], "a.log:11: feature \"ALL\" would be the type all"));
    assert_string_equal(g.warn[4], "a.log:12: type autocad is daemon adskflex's, and this is "
                                   "daemon other's feature \"64300ACD_F\": map it to a type of "
                                   "its own");
    const struct flexlm_stats *st = flexlm_stats(f);
    assert_int_equal(st->unsupported, 1);
    assert_int_equal(st->malformed, 5);
    assert_int_equal(st->lines, 12);
    flexlm_free(&f);

    /* --only-mapped: the others are counted, not sent */
    f = run("10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
            "10:00:01 (MLM) OUT: \"MATLAB\" ana@pc1\n"
            "10:00:02 (MLM) OUT: \"Simulink\" ana@pc1\n",
            "UTC", 0, "MATLAB=matlab", true, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(flexlm_stats(f)->ignored, 1);
    flexlm_free(&f);
}

static void test_bad_settings_and_logs_without_a_date(void **state)
{
    (void)state;
    char err[300];
    struct flexlm_cfg cfg = {"acme", "Mars/Olympus", "s", NULL, false, 0};
    assert_null(flexlm_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "--timezone \"Mars/Olympus\""));
    cfg.timezone = "UTC";
    cfg.org = "a b";
    assert_null(flexlm_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "--org"));
    cfg.org = "acme";
    const char *maps[] = {"MATLAB", "MATLAB=Matlab", "A=a,A=b", "=a", "X=all"};
    const char *why[] = {"is not FEATURE=type", "must match", "mapped twice", "is not FEATURE",
                         "not be all"};
    for (size_t i = 0; i < 5; i++) {
        cfg.type_map = maps[i];
        assert_null(flexlm_new(&cfg, err, sizeof(err)));
        assert_non_null(strstr(err, why[i]));
    }
    cfg.type_map = NULL;
    const char *logs[] = {"10:00:01 (MLM) OUT: \"MATLAB\" ana@pc1\n", "no log here\n", "",
                          /* two files given newest first, or a clock set back an hour */
                          "10:00:00 (lmgrd) TIMESTAMP 6/10/2022\n"
                          "\f10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n",
                          "10:00:00 (lmgrd) TIMESTAMP 6/9/2022\n"
                          " 9:00:00 (MLM) OUT: \"MATLAB\" ana@pc1\n"};
    const char *msg[] = {"no date in the log", "no FlexLM log line", "no FlexLM log line",
                         "b.log:1: dated 2022-06-09 10:00:00, 1440 minutes before the line "
                         "before it (2022-06-10T10:00:00.000Z): the logs are out of order",
                         "a.log:2: dated 2022-06-09 09:00:00, 60 minutes before"};
    for (size_t i = 0; i < 5; i++) {
        struct flexlm *f = flexlm_new(&cfg, err, sizeof(err));
        assert_non_null(f);
        const char *cut = strchr(logs[i], '\f');
        size_t n1 = cut ? (size_t)(cut - logs[i]) : strlen(logs[i]);
        flexlm_add(f, "a.log", xmemdup(logs[i], n1), n1);
        if (cut)
            flexlm_add(f, "b.log", xstrdup(cut + 1), strlen(cut + 1));
        struct got g;
        memset(&g, 0, sizeof(g));
        assert_int_equal(flexlm_run(f, got_emit, got_warn, &g, err, sizeof(err)), -1);
        assert_non_null(strstr(err, msg[i]));
        assert_int_equal(g.n, 0);
        flexlm_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_count_back_and_over_midnight),
        cmocka_unit_test(test_the_repeated_hour_of_dst),
        cmocka_unit_test(test_one_seat_per_user_host_and_type),
        cmocka_unit_test(test_a_restarted_daemon_lost_its_seats),
        cmocka_unit_test(test_heartbeats_keep_a_seat_until_its_checkin),
        cmocka_unit_test(test_a_log_sent_again_grown_agrees),
        cmocka_unit_test(test_ids_are_stable_as_the_log_grows),
        cmocka_unit_test(test_types_names_and_lines_it_cannot_use),
        cmocka_unit_test(test_bad_settings_and_logs_without_a_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
