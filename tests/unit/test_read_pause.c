/* test_read_pause: after a failed read of the ledger, reads pause 1 s,
 * doubling after each failure in a row up to 8 s; once a pause is over one
 * caller probes while the others wait; reads in flight with a failure do
 * not count as more failures; a read that works ends the pause. Times are
 * passed in: no clock, no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "read_pause.h"

#define MS 1000000LL
#define PROBE (2000 * MS)

/* Fails a read that began at t and returns the pause it set, in ms. */
static int64_t fail_at(struct payq_read_pause *p, int64_t t)
{
    return payq_read_pause_done(p, t, t + 1, false);
}

/* A pause after one failure at 0, and its probe claimed at 1,001 ms:
 * returns that time. */
static int64_t probing_after_one_failure(struct payq_read_pause *p)
{
    payq_read_pause_init(p, PROBE);
    fail_at(p, 0);
    int64_t t = 1001 * MS;
    assert_int_equal(payq_read_pause_left_ms(p, t), 0);
    return t;
}

static void test_reads_go_until_a_failure(void **state)
{
    (void)state;
    struct payq_read_pause p;
    payq_read_pause_init(&p, PROBE);
    assert_int_equal(payq_read_pause_left_ms(&p, 5 * MS), 0);
    assert_int_equal(payq_read_pause_done(&p, 5 * MS, 6 * MS, true), 0);
    assert_int_equal(payq_read_pause_left_ms(&p, 7 * MS), 0);
    assert_int_equal(payq_read_pause_left_ms(&p, 8 * MS), 0); /* no probe needed */
}

static void test_doubles_to_eight_seconds(void **state)
{
    (void)state;
    static const int64_t want[] = {1000, 2000, 4000, 8000, 8000, 8000};
    struct payq_read_pause p;
    payq_read_pause_init(&p, PROBE);
    int64_t t = 1000 * MS;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(payq_read_pause_left_ms(&p, t), 0); /* the probe */
        int64_t pause = fail_at(&p, t);
        assert_int_equal(pause, want[i]);
        assert_true(payq_read_pause_left_ms(&p, t + 2 * MS) > 0);
        t += pause * MS + 10 * MS;
    }
}

/* Sixty-four reads in flight when the standby stops fail together: one
 * failure, a pause of 1 s, not 8; so do reads on connections opened before
 * the failure, which callers pass as having begun then. */
static void test_reads_in_flight_are_one_failure(void **state)
{
    (void)state;
    struct payq_read_pause p;
    payq_read_pause_init(&p, PROBE);
    int64_t started = 100 * MS;
    assert_int_equal(payq_read_pause_done(&p, started, 2100 * MS, false), 1000);
    for (int i = 0; i < 63; i++)
        assert_in_range(payq_read_pause_done(&p, started + i * MS, 2100 * MS + i * MS, false), 1,
                        1000);
    assert_int_equal(payq_read_pause_left_ms(&p, 2100 * MS), 1000);
    /* One of them that came back fine shows the standby answers: it ends
     * the pause. */
    assert_int_equal(payq_read_pause_done(&p, started, 2200 * MS, true), 0);
    assert_int_equal(payq_read_pause_left_ms(&p, 2200 * MS), 0);
}

/* When the pause is over one caller probes; the others wait for it. */
static void test_one_probe_at_a_time(void **state)
{
    (void)state;
    struct payq_read_pause p;
    int64_t t = probing_after_one_failure(&p);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(payq_read_pause_left_ms(&p, t + i * MS), 2000 - i);
    /* A probe that never reports (its request ended otherwise): after its
     * time another caller probes. */
    assert_int_equal(payq_read_pause_left_ms(&p, t + PROBE), 0);
    assert_true(payq_read_pause_left_ms(&p, t + PROBE + MS) > 0);
}

static void test_a_read_that_works_ends_it(void **state)
{
    (void)state;
    struct payq_read_pause p;
    int64_t t = probing_after_one_failure(&p);
    fail_at(&p, t); /* 2 s */
    t += 2001 * MS;
    assert_int_equal(payq_read_pause_left_ms(&p, t), 0);
    assert_int_equal(payq_read_pause_done(&p, t, t + 3 * MS, true), 0);
    assert_int_equal(payq_read_pause_left_ms(&p, t + 4 * MS), 0);
    assert_int_equal(payq_read_pause_left_ms(&p, t + 5 * MS), 0);
    /* The next failure starts again at 1 s. */
    assert_int_equal(fail_at(&p, t + 6 * MS), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_go_until_a_failure),
        cmocka_unit_test(test_doubles_to_eight_seconds),
        cmocka_unit_test(test_reads_in_flight_are_one_failure),
        cmocka_unit_test(test_one_probe_at_a_time),
        cmocka_unit_test(test_a_read_that_works_ends_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
