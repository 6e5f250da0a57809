/* test_money: parsing bounds, overflow-checked arithmetic and formatting of
 * minor-unit amounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "money.h"

static int parse_amount(const char *s, int64_t *v, const char **why)
{
    return payq_money_parse_amount(s, strlen(s), v, why);
}

static void test_amount_bounds(void **state)
{
    (void)state;
    int64_t v = 0;
    const char *why = NULL;
    assert_int_equal(parse_amount("1", &v, &why), 0);
    assert_int_equal(v, 1);
    assert_int_equal(parse_amount("999999999999999999", &v, &why), 0);
    assert_true(v == PAYQ_MONEY_AMOUNT_MAX);
    assert_int_equal(parse_amount("1000000000000000000", &v, &why), -1);
    assert_string_equal(why, "must have at most 18 digits");
    assert_int_equal(parse_amount("0", &v, &why), -1);
    assert_string_equal(why, "must be at least 1");
    assert_int_equal(parse_amount("007", &v, &why), -1);
    assert_string_equal(why, "must not have leading zeros");
    assert_int_equal(parse_amount("-5", &v, &why), -1);
    assert_string_equal(why, "must be a string of digits (minor units)");
    assert_int_equal(parse_amount("1.50", &v, &why), -1);
    assert_int_equal(parse_amount("", &v, &why), -1);
    assert_string_equal(why, "must not be empty");
    assert_int_equal(parse_amount("1e3", &v, &why), -1);
    assert_int_equal(parse_amount(" 1", &v, &why), -1);
}

static void test_amount_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = {'4', '2', '7'};
    int64_t v = 0;
    const char *why = NULL;
    assert_int_equal(payq_money_parse_amount(buf, 2, &v, &why), 0);
    assert_int_equal(v, 42);
}

static void test_total_bounds(void **state)
{
    (void)state;
    int64_t v = 0;
    const char *why = NULL;
    assert_int_equal(payq_money_parse_total("0", 1, &v, &why), 0);
    assert_int_equal(v, 0);
    assert_int_equal(payq_money_parse_total("9223372036854775807", 19, &v, &why), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(payq_money_parse_total("9223372036854775808", 19, &v, &why), -1);
    assert_string_equal(why, "is out of range");
    assert_int_equal(payq_money_parse_total("99999999999999999999", 20, &v, &why), -1);
}

static void test_add_overflow(void **state)
{
    (void)state;
    int64_t r = 7;
    assert_true(payq_money_add(1, 2, &r));
    assert_int_equal(r, 3);
    assert_false(payq_money_add(INT64_MAX, 1, &r));
    assert_int_equal(r, 3); /* untouched on overflow */
    assert_true(payq_money_add(INT64_MAX - PAYQ_MONEY_AMOUNT_MAX, PAYQ_MONEY_AMOUNT_MAX, &r));
    assert_true(r == INT64_MAX);
    assert_false(payq_money_sub(INT64_MIN, 1, &r));
    assert_true(payq_money_sub(10, 3, &r));
    assert_int_equal(r, 7);
}

static void test_format(void **state)
{
    (void)state;
    char buf[PAYQ_MONEY_STR_MAX];
    assert_string_equal(payq_money_format(0, buf), "0");
    assert_string_equal(payq_money_format(INT64_MAX, buf), "9223372036854775807");
    assert_string_equal(payq_money_format(INT64_MIN, buf), "-9223372036854775808");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount_bounds), cmocka_unit_test(test_amount_not_nul_terminated),
        cmocka_unit_test(test_total_bounds),  cmocka_unit_test(test_add_overflow),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
