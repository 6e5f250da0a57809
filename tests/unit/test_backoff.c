/* test_backoff: delays double from first to max with jitter inside
 * [half, whole] of the nominal delay, and a sleep ends within one step of
 * a stop request instead of sleeping out a long delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"
#include "clock.h"

static void test_doubles_to_cap_with_jitter(void **state)
{
    (void)state;
    static const int nominal[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (int round = 0; round < 200; round++) {
        struct payq_backoff b;
        payq_backoff_init(&b, 100, 1000);
        for (size_t i = 0; i < sizeof nominal / sizeof nominal[0]; i++) {
            int d = payq_backoff_next_ms(&b);
            assert_in_range(d, nominal[i] / 2, nominal[i]);
        }
    }
}

/* Jitter really varies: two hundred delays at the cap are not all equal,
 * and they reach both halves of the range. */
static void test_jitter_spreads(void **state)
{
    (void)state;
    struct payq_backoff b;
    payq_backoff_init(&b, 1000, 1000);
    int lo = 0, hi = 0;
    for (int i = 0; i < 200; i++) {
        int d = payq_backoff_next_ms(&b);
        lo += d < 750;
        hi += d >= 750;
    }
    assert_true(lo > 20);
    assert_true(hi > 20);
}

static void test_reset_and_bounds(void **state)
{
    (void)state;
    struct payq_backoff b;
    payq_backoff_init(&b, 0, -5); /* nonsense bounds become 1 ms */
    assert_int_equal(payq_backoff_next_ms(&b), 1);
    assert_int_equal(payq_backoff_next_ms(&b), 1);
    payq_backoff_init(&b, 10, 5000);
    for (int i = 0; i < 20; i++)
        (void)payq_backoff_next_ms(&b);
    assert_int_equal(b.cur_ms, 5000);
    payq_backoff_reset(&b);
    assert_in_range(payq_backoff_next_ms(&b), 5, 10);
}

static int polls;
static bool stop_now(void)
{
    polls++;
    return true;
}
static bool stop_after_three(void)
{
    return ++polls > 3;
}
static bool never(void)
{
    return false;
}

static void count_tick(void *ctx)
{
    (*(int *)ctx)++;
}

/* A delay of at least 2.5 s ends at once when stop is already true, and
 * after three 100 ms steps when stop comes true then. */
static void test_sleep_stops_early(void **state)
{
    (void)state;
    struct payq_backoff b;
    payq_backoff_init(&b, 5000, 5000);
    polls = 0;
    int64_t t0 = payq_clock_mono_ms();
    assert_int_equal(payq_backoff_sleep(&b, stop_now), -1);
    assert_true(payq_clock_mono_ms() - t0 < 50);

    polls = 0;
    int ticks = 0;
    b.tick = count_tick;
    b.tick_ctx = &ticks;
    t0 = payq_clock_mono_ms();
    assert_int_equal(payq_backoff_sleep(&b, stop_after_three), -1);
    int64_t took = payq_clock_mono_ms() - t0;
    assert_in_range(took, 290, 1000);
    assert_int_equal(ticks, 3);
}

/* Without a stop (or one that never comes) the whole delay is slept. */
static void test_sleep_whole_delay(void **state)
{
    (void)state;
    struct payq_backoff b;
    payq_backoff_init(&b, 240, 240);
    int64_t t0 = payq_clock_mono_ms();
    assert_int_equal(payq_backoff_sleep(&b, NULL), 0);
    assert_in_range(payq_clock_mono_ms() - t0, 120, 1000);
    t0 = payq_clock_mono_ms();
    assert_int_equal(payq_backoff_sleep(&b, never), 0);
    assert_in_range(payq_clock_mono_ms() - t0, 120, 1000);
}

/* The next delay fits before a deadline only when its longest draw (the
 * nominal delay) ends first; it doubles after each draw. */
static void test_fits_deadline(void **state)
{
    (void)state;
    struct payq_backoff b;
    payq_backoff_init(&b, 500, 5000);
    int64_t now = payq_clock_mono_ms();
    assert_true(payq_backoff_fits(&b, now + 2000));
    assert_false(payq_backoff_fits(&b, now + 500));
    assert_false(payq_backoff_fits(&b, now - 1));
    (void)payq_backoff_next_ms(&b); /* next nominal: 1000 */
    (void)payq_backoff_next_ms(&b); /* 2000 */
    assert_false(payq_backoff_fits(&b, payq_clock_mono_ms() + 2000));
    assert_true(payq_backoff_fits(&b, payq_clock_mono_ms() + 2500));
    payq_backoff_reset(&b);
    assert_true(payq_backoff_fits(&b, payq_clock_mono_ms() + 1000));
}

static void test_clock(void **state)
{
    (void)state;
    int64_t m0 = payq_clock_mono_ms();
    int64_t w = payq_clock_wall_ms();
    assert_true(w > 1600000000000LL); /* after 2020: milliseconds since the epoch */
    assert_true(payq_clock_mono_ms() >= m0);
    assert_true(payq_clock_mono_ns() / 1000000 >= m0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_to_cap_with_jitter),
        cmocka_unit_test(test_jitter_spreads),
        cmocka_unit_test(test_reset_and_bounds),
        cmocka_unit_test(test_sleep_stops_early),
        cmocka_unit_test(test_sleep_whole_delay),
        cmocka_unit_test(test_fits_deadline),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
