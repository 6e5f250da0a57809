/* test_pg: SQLSTATE classes and the notice that says a COMMIT committed
 * locally but may not be on the synchronous standby. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pg.h"

static const char DETAIL[] = "The transaction has already committed locally, but might not have "
                             "been replicated to the standby.";

static void test_unreplicated_cancel(void **state)
{
    (void)state;
    /* pg_cancel_backend during the wait: no errcode, so the WARNING class. */
    assert_true(payq_pg_notice_unreplicated(
        "WARNING", "01000", "canceling wait for synchronous replication due to user request",
        DETAIL));
    /* A server in another language: the detail alone (if still English) is
     * not there, but callers treat every WARNING during COMMIT as unknown. */
    assert_true(payq_pg_notice_unreplicated("WARNING", "01000", "?", DETAIL));
    assert_true(payq_pg_notice_unreplicated(NULL, NULL, NULL, DETAIL));
}

static void test_unreplicated_terminate(void **state)
{
    (void)state;
    assert_true(payq_pg_notice_unreplicated(
        "WARNING", "57P01",
        "canceling the wait for synchronous replication and terminating connection due to "
        "administrator command",
        DETAIL));
    assert_true(payq_pg_notice_unreplicated("WARNING", "57P01", NULL, NULL));
}

static void test_other_notices(void **state)
{
    (void)state;
    assert_false(payq_pg_notice_unreplicated("NOTICE", "00000", "relation exists, skipping", NULL));
    assert_false(payq_pg_notice_unreplicated("WARNING", "25P01",
                                             "there is no transaction in progress", NULL));
    assert_false(payq_pg_notice_unreplicated("WARNING", "01000", "something else", NULL));
    assert_false(payq_pg_notice_unreplicated(NULL, NULL, NULL, NULL));
    /* A NOTICE that happens to mention the words is not the sync-rep one. */
    assert_false(payq_pg_notice_unreplicated("NOTICE", "00000", "synchronous replication", DETAIL));
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(payq_pg_classify("40001"), PAYQ_PG_RETRY);
    assert_int_equal(payq_pg_classify("40P01"), PAYQ_PG_RETRY);
    assert_int_equal(payq_pg_classify("57P01"), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify("08006"), PAYQ_PG_RECONNECT);
    /* a prepared statement missing from the session: a new one prepares it */
    assert_int_equal(payq_pg_classify("26000"), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify(NULL), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify("23505"), PAYQ_PG_FATAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreplicated_cancel),
        cmocka_unit_test(test_unreplicated_terminate),
        cmocka_unit_test(test_other_notices),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
