/* test_agg_cards: every card of SPEC.md section 5 at the edges of its
 * states: exactly at threshold_count and one below, exactly at capacity,
 * mean% exactly at P and at P - minor_margin (where a floating-point mean
 * would fall just short), named types, owned 0, "all", a previewed
 * threshold, expiry 0/1/30/31/90/91 days ahead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../aggregator/agg_cards.h"

#include <string.h>

#define TODAY 20000 /* 2024-10-04 */

static struct agg_cards_day days[400];

/* A floating type with N seats, P %, over the 7 days ending today. */
static struct agg_cards_input base(int64_t owned, int pct)
{
    struct agg_cards_input in;
    memset(&in, 0, sizeof(in));
    in.type = "creator";
    in.owned = owned;
    in.threshold_pct = pct;
    in.minor_margin_pct = 10;
    in.from_date = TODAY - 6;
    in.to_date = TODAY;
    in.today = TODAY;
    in.days = days;
    in.ndays = 0;
    return in;
}

static void day(struct agg_cards_input *in, int64_t date, int64_t peak)
{
    struct agg_cards_day *d = &days[in->ndays++];
    memset(d, 0, sizeof(*d));
    d->date = date;
    d->peak = peak;
    d->peak_at_ms = date * 86400000 + 9 * 3600000;
}

static struct agg_cards run(const struct agg_cards_input *in)
{
    struct agg_cards c;
    agg_cards_compute(in, &c);
    return c;
}

static void test_threshold_count(void **state)
{
    (void)state;
    static const int64_t cases[][3] = {
        /* N, P, ceil(N * P / 100) */
        {10, 80, 8}, {7, 80, 6}, {1, 1, 1},  {100, 100, 100},       {3, 33, 1},
        {0, 80, 0},  {5, 20, 1}, {5, 21, 2}, {1000000, 99, 990000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agg_cards_input in = base(cases[i][0], (int)cases[i][1]);
        struct agg_cards c = run(&in);
        assert_int_equal(c.threshold_count, cases[i][2]);
        assert_int_equal(c.threshold_pct, cases[i][1]);
        assert_int_equal(c.owned, cases[i][0]);
    }
    struct agg_cards_input in = base(10, 0); /* unset: the default 80 */
    assert_int_equal(run(&in).threshold_pct, 80);
    assert_int_equal(run(&in).threshold_count, 8);
}

static void test_peak_and_days_over(void **state)
{
    (void)state; /* N 10, P 80: threshold_count 8 */
    struct {
        int64_t peak;
        enum agg_cards_state peak_state, days_state;
        int64_t over, full;
    } cases[] = {
        {0, AGG_CARDS_OK, AGG_CARDS_OK, 0, 0},
        {7, AGG_CARDS_OK, AGG_CARDS_OK, 0, 0},        /* one below threshold */
        {8, AGG_CARDS_MINOR, AGG_CARDS_MINOR, 1, 0},  /* exactly at threshold */
        {9, AGG_CARDS_MINOR, AGG_CARDS_MINOR, 1, 0},  /* one below capacity */
        {10, AGG_CARDS_MAJOR, AGG_CARDS_MAJOR, 1, 1}, /* exactly at capacity */
        {12, AGG_CARDS_MAJOR, AGG_CARDS_MAJOR, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agg_cards_input in = base(10, 80);
        day(&in, TODAY - 3, 2);
        day(&in, TODAY - 2, cases[i].peak);
        struct agg_cards c = run(&in);
        int64_t want = cases[i].peak > 2 ? cases[i].peak : 2;
        assert_int_equal(c.peak.value, want);
        assert_int_equal(c.peak.state, cases[i].peak_state);
        assert_int_equal(c.over_threshold.value, cases[i].over);
        assert_int_equal(c.over_threshold.days_at_capacity, cases[i].full);
        assert_int_equal(c.over_threshold.state, cases[i].days_state);
    }
    /* the first day the peak was reached, whatever the row order */
    struct agg_cards_input in = base(10, 80);
    day(&in, TODAY - 1, 6);
    day(&in, TODAY - 4, 6);
    day(&in, TODAY - 5, 3);
    struct agg_cards c = run(&in);
    assert_int_equal(c.peak.value, 6);
    assert_int_equal(c.peak.at_ms, (TODAY - 4) * INT64_C(86400000) + 9 * 3600000);
    assert_true(c.peak.pct > 59.99 && c.peak.pct < 60.01);
    /* no use at all: no instant */
    in = base(10, 80);
    assert_int_equal(run(&in).peak.at_ms, -1);
    /* days outside the period do not count */
    in = base(10, 80);
    day(&in, TODAY - 7, 10);
    day(&in, TODAY + 1, 10);
    c = run(&in);
    assert_int_equal(c.peak.value, 0);
    assert_int_equal(c.over_threshold.state, AGG_CARDS_OK);
}

static void test_average(void **state)
{
    (void)state; /* N 10, P 80, margin 10, 5 days */
    struct {
        int64_t sum;
        enum agg_cards_state want;
    } cases[] = {
        {40, AGG_CARDS_MAJOR}, /* mean 8 = 80 % exactly */
        {39, AGG_CARDS_MINOR}, /* 78 % */
        {35, AGG_CARDS_MINOR}, /* 70 % = P - margin exactly */
        {34, AGG_CARDS_OK},    /* 68 % */
        {0, AGG_CARDS_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agg_cards_input in = base(10, 80);
        in.from_date = TODAY - 4;
        int64_t left = cases[i].sum;
        for (int d = 0; d < 5 && left > 0; d++) {
            int64_t v = left > 9 ? 9 : left;
            day(&in, TODAY - d, v);
            left -= v;
        }
        struct agg_cards c = run(&in);
        assert_int_equal(c.average.days, 5);
        assert_int_equal(c.average.peak_sum, cases[i].sum);
        assert_int_equal(c.average.state, cases[i].want);
    }
    /* mean% exactly P where a double mean falls short: N 3, 100 days, sum 87,
     * P 29 (0.87 / 3 * 100 = 28.999999999999996 in doubles) */
    struct agg_cards_input in = base(3, 29);
    in.from_date = TODAY - 99;
    for (int d = 0; d < 87; d++)
        day(&in, TODAY - d, 1);
    struct agg_cards c = run(&in);
    assert_int_equal(c.average.days, 100);
    assert_int_equal(c.average.state, AGG_CARDS_MAJOR);
    in.ndays = 86;
    assert_int_equal(run(&in).average.state, AGG_CARDS_MINOR);
    /* and exactly at P - margin the same way: P 39, margin 10 */
    in = base(3, 39);
    in.from_date = TODAY - 99;
    for (int d = 0; d < 87; d++)
        day(&in, TODAY - d, 1);
    assert_int_equal(run(&in).average.state, AGG_CARDS_MINOR);
    in.ndays = 86;
    assert_int_equal(run(&in).average.state, AGG_CARDS_OK);
    /* days with no use count as 0; days after today are not counted */
    in = base(4, 80);
    in.from_date = TODAY - 3;
    in.to_date = TODAY + 3;
    day(&in, TODAY, 4);
    c = run(&in);
    assert_int_equal(c.average.days, 4);
    assert_true(c.average.value > 0.999 && c.average.value < 1.001);
    assert_true(c.average.pct > 24.99 && c.average.pct < 25.01);
    /* a period that has not begun */
    in = base(4, 80);
    in.from_date = TODAY + 1;
    in.to_date = TODAY + 5;
    c = run(&in);
    assert_int_equal(c.average.days, 0);
    assert_int_equal(c.average.state, AGG_CARDS_OK);
}

static void test_not_applicable(void **state)
{
    (void)state;
    struct agg_cards_input in = base(10, 80);
    day(&in, TODAY, 10);
    days[0].denials = 2;
    days[0].downgrades = 1;
    in.denied_users = 1;
    in.downgraded_users = 1;
    struct agg_cards_input named = in, zero = in, all = in;
    named.named = true;
    zero.owned = 0;
    all.type = "all";
    const struct agg_cards_input *cases[] = {&named, &zero, &all};
    for (int i = 0; i < 3; i++) {
        struct agg_cards c = run(cases[i]);
        assert_int_equal(c.average.state, AGG_CARDS_NA);
        assert_int_equal(c.peak.state, AGG_CARDS_NA);
        assert_int_equal(c.over_threshold.state, AGG_CARDS_NA);
        assert_int_equal(c.denied.state, AGG_CARDS_MAJOR); /* never non_applicable */
        assert_int_equal(c.downgraded.state, AGG_CARDS_MINOR);
        assert_int_equal(c.peak.value, 10);
    }
    assert_int_equal(run(&zero).threshold_count, 0);
    assert_int_equal(run(&zero).over_threshold.value, 0);
    assert_int_equal(run(&in).peak.state, AGG_CARDS_MAJOR);
}

static void test_denied_downgraded(void **state)
{
    (void)state;
    struct agg_cards_input in = base(10, 80);
    struct agg_cards c = run(&in);
    assert_int_equal(c.denied.state, AGG_CARDS_OK);
    assert_int_equal(c.downgraded.state, AGG_CARDS_OK);
    day(&in, TODAY - 1, 1);
    day(&in, TODAY, 1);
    days[0].denials = 3;
    days[1].denials = 1;
    days[1].downgrades = 2;
    in.denied_users = 1;
    in.downgraded_users = 1;
    c = run(&in);
    assert_int_equal(c.denied.users, 1);
    assert_int_equal(c.denied.events, 4);
    assert_int_equal(c.denied.state, AGG_CARDS_MAJOR);
    assert_int_equal(c.downgraded.users, 1);
    assert_int_equal(c.downgraded.events, 2);
    assert_int_equal(c.downgraded.state, AGG_CARDS_MINOR);
}

static void test_preview(void **state)
{
    (void)state; /* saved 80 %, previewing 50 %: N 10, peak 6 */
    struct agg_cards_input in = base(10, 80);
    day(&in, TODAY, 6);
    struct agg_cards c = run(&in);
    assert_int_equal(c.peak.state, AGG_CARDS_OK);
    in.preview_pct = 50;
    c = run(&in);
    assert_int_equal(c.threshold_pct, 50);
    assert_int_equal(c.threshold_count, 5);
    assert_int_equal(c.peak.state, AGG_CARDS_MINOR);
    assert_int_equal(c.over_threshold.value, 1);
    in.preview_pct = 101; /* out of range: ignored */
    assert_int_equal(run(&in).threshold_pct, 80);
    in.preview_pct = 60; /* 60 % of 10 is 6: exactly at it */
    assert_int_equal(run(&in).peak.state, AGG_CARDS_MINOR);
    in.preview_pct = 61; /* 7 */
    assert_int_equal(run(&in).peak.state, AGG_CARDS_OK);
}

static void test_current(void **state)
{
    (void)state;
    struct agg_cards_input in = base(10, 80);
    in.in_use = 7;
    struct agg_cards c = run(&in);
    assert_int_equal(c.current.in_use, 7);
    assert_int_equal(c.current.owned, 10);
    assert_int_equal(c.current.free, 3);
    in.in_use = 12;
    assert_int_equal(run(&in).current.free, 0);
}

static void test_expiration(void **state)
{
    (void)state;
    struct {
        int64_t left;
        enum agg_cards_state want;
    } cases[] = {
        {-1, AGG_CARDS_MAJOR}, {0, AGG_CARDS_MAJOR},  {1, AGG_CARDS_MAJOR}, {30, AGG_CARDS_MAJOR},
        {31, AGG_CARDS_MINOR}, {90, AGG_CARDS_MINOR}, {91, AGG_CARDS_OK},   {400, AGG_CARDS_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agg_cards_input in = base(10, 80);
        in.has_expiry = true;
        in.expires = TODAY + cases[i].left;
        struct agg_cards c = run(&in);
        assert_int_equal(c.expiration.days_left, cases[i].left);
        assert_int_equal(c.expiration.expired, cases[i].left < 0);
        assert_int_equal(c.expiration.state, cases[i].want);
    }
    struct agg_cards_input in = base(10, 80);
    assert_int_equal(run(&in).expiration.state, AGG_CARDS_NA);
    assert_string_equal(agg_cards_state_name(AGG_CARDS_NA), "non_applicable");
    assert_string_equal(agg_cards_state_name(AGG_CARDS_MINOR), "minor");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_count),   cmocka_unit_test(test_peak_and_days_over),
        cmocka_unit_test(test_average),           cmocka_unit_test(test_not_applicable),
        cmocka_unit_test(test_denied_downgraded), cmocka_unit_test(test_preview),
        cmocka_unit_test(test_current),           cmocka_unit_test(test_expiration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
