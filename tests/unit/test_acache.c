/* test_acache: the worker's cache of accounts' immutable fields. A put
 * account is found with its currency and flags, a second put never changes
 * it (the first committed read is the truth), ids are copied (the batch's
 * memory is reused), the cache never holds more than its bound (it empties
 * and refills), and a cache of size 0 remembers nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "acache.h"

static void test_put_get_copies_ids(void **state)
{
    (void)state;
    struct payq_acache c;
    payq_acache_init(&c, 10);
    char id[16] = "acct-1";
    assert_null(payq_acache_get(&c, id));
    payq_acache_put(&c, id, "EUR", 1);
    strcpy(id, "acct-2"); /* the caller's buffer is reused */
    assert_null(payq_acache_get(&c, id));
    const struct payq_acache_entry *e = payq_acache_get(&c, "acct-1");
    assert_non_null(e);
    assert_string_equal(e->currency, "EUR");
    assert_int_equal(e->flags, 1);
    payq_acache_put(&c, "acct-1", "USD", 2); /* never changes a known id */
    e = payq_acache_get(&c, "acct-1");
    assert_string_equal(e->currency, "EUR");
    assert_int_equal(e->flags, 1);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.hits, 2);
    assert_int_equal(c.misses, 2);
    payq_acache_free(&c);
}

static void test_bounded(void **state)
{
    (void)state;
    struct payq_acache c;
    payq_acache_init(&c, 1500);
    char id[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(id, sizeof id, "a:%d", i);
        payq_acache_put(&c, id, "EUR", 0);
        assert_true(c.n <= 1500);
    }
    /* 4000 = 1500 + 1500 + 1000: the last 1000 are there, the first are not */
    assert_int_equal(c.n, 1000);
    assert_non_null(payq_acache_get(&c, "a:3999"));
    assert_non_null(payq_acache_get(&c, "a:3000"));
    assert_null(payq_acache_get(&c, "a:2999"));
    assert_null(payq_acache_get(&c, "a:0"));
    payq_acache_free(&c);
}

static void test_off(void **state)
{
    (void)state;
    struct payq_acache c;
    payq_acache_init(&c, 0);
    payq_acache_put(&c, "a", "EUR", 0);
    assert_null(payq_acache_get(&c, "a"));
    assert_int_equal(c.n, 0);
    payq_acache_free(&c);
    payq_acache_free(&c); /* safe twice: zeroed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_copies_ids),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
