/* test_batch_view: the body of GET /v1/batches/{batch_id}
 * (producer/batch_view.c) from grouped ledger rows: posted groups make
 * "booked", rejected ones "rejected", each with its count summed over
 * currencies and its totals per currency (sums far beyond 2^53 kept as
 * digits); an outcome without rows is count 0 with empty totals; business
 * dates split into a list; declared and complete stay null. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch_view.h"

static char *render(const char *dates, const struct payq_batch_group *g, size_t n)
{
    static char out[2048];
    struct payq_buf b = PAYQ_BUF_INIT;
    payq_batch_view_json("B-1", dates, g, n, &b);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
    payq_buf_free(&b);
    return out;
}

static void booked_and_rejected_per_currency(void **state)
{
    (void)state;
    const struct payq_batch_group g[] = {
        {"posted", "EUR", 3, "600"},
        {"posted", "USD", 2, "18446744073709551614"},
        {"rejected", "EUR", 1, "7"},
    };
    assert_string_equal(render("2026-11-27,2026-11-28", g, 3),
                        "{\"batch_id\":\"B-1\",\"business_dates\":[\"2026-11-27\",\"2026-11-28\"],"
                        "\"booked\":{\"count\":5,\"totals\":{\"EUR\":\"600\","
                        "\"USD\":\"18446744073709551614\"}},"
                        "\"rejected\":{\"count\":1,\"totals\":{\"EUR\":\"7\"}},"
                        "\"declared\":null,\"complete\":null}");
}

static void only_rejected(void **state)
{
    (void)state;
    const struct payq_batch_group g[] = {{"rejected", "GBP", 4, "40"}};
    assert_string_equal(render("2026-11-27", g, 1),
                        "{\"batch_id\":\"B-1\",\"business_dates\":[\"2026-11-27\"],"
                        "\"booked\":{\"count\":0,\"totals\":{}},"
                        "\"rejected\":{\"count\":4,\"totals\":{\"GBP\":\"40\"}},"
                        "\"declared\":null,\"complete\":null}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(booked_and_rejected_per_currency),
        cmocka_unit_test(only_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
