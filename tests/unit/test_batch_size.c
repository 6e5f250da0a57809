/* test_batch_size: a batch keeps worker.batch_max for live traffic and grows
 * to worker.backlog_batch_max once its first transfer has waited
 * worker.backlog_after_ms; never with the switch off, an unknown publish
 * time, or a publisher clock ahead of the worker's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "batch_size.h"

static const struct payq_batch_size shape = {4000, 5, 8000, 1000};
static const int64_t now = INT64_C(1796300000000);

static void test_live_traffic_keeps_batch_max(void **state)
{
    (void)state;
    assert_int_equal(payq_batch_size_limit(&shape, now, now), 4000);
    assert_int_equal(payq_batch_size_limit(&shape, now - 999, now), 4000);
}

static void test_backlog_grows_the_batch(void **state)
{
    (void)state;
    assert_int_equal(payq_batch_size_limit(&shape, now - 1000, now), 8000);
    assert_int_equal(payq_batch_size_limit(&shape, now - 3600000, now), 8000);
}

static void test_never_grows_without_a_reason(void **state)
{
    (void)state;
    struct payq_batch_size off = shape;
    off.backlog_after_ms = 0;
    assert_int_equal(payq_batch_size_limit(&off, now - 60000, now), 4000);
    /* no publish time: the age is unknown */
    assert_int_equal(payq_batch_size_limit(&shape, 0, now), 4000);
    /* the publisher's clock runs ahead of the worker's */
    assert_int_equal(payq_batch_size_limit(&shape, now + 5000, now), 4000);
    struct payq_batch_size same = shape;
    same.backlog_max = 4000;
    assert_int_equal(payq_batch_size_limit(&same, now - 60000, now), 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_traffic_keeps_batch_max),
        cmocka_unit_test(test_backlog_grows_the_batch),
        cmocka_unit_test(test_never_grows_without_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
