/* test_balances: each posted transfer's balances after it, derived from the
 * final balances the ledger's locking UPDATE returns (worker/balances.h),
 * without a server. The batch is decided by the real rules on balances read
 * without a lock; the "database" then returns final balances that also
 * hold another worker's commit made in between, and every posted transfer
 * must carry the balances of the committed history: final minus what the
 * batch's later transfers moved. Rejected, duplicate, conflicting and dead
 * messages carry none, and the walk leaves the accounts at their true
 * balances before the batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balances.h"
#include "batch_fixture.h"

/* What update_balances does with RETURNING: the row's balances after the
 * batch's deltas, as committed history has them. */
static void returned(struct fx *f, const char *id, int64_t debits, int64_t credits)
{
    struct payq_rules_acct *a = payq_rules_acct(&f->r, id);
    assert_non_null(a);
    a->debits = debits;
    a->credits = credits;
}

static void assert_after(const struct payq_wmsg *m, int64_t debit_balance, int64_t credit_balance)
{
    assert_int_equal(m->outcome, WOUT_POSTED);
    assert_true(m->debit_balance == debit_balance);
    assert_true(m->credit_balance == credit_balance);
}

static void assert_none(const struct payq_wmsg *m)
{
    assert_int_not_equal(m->outcome, WOUT_POSTED);
    assert_true(m->debit_balance == 0 && m->credit_balance == 0);
}

static void assert_before(struct fx *f, const char *id, int64_t debits, int64_t credits)
{
    const struct payq_rules_acct *a = payq_rules_acct(&f->r, id);
    assert_true(a->debits == debits);
    assert_true(a->credits == credits);
}

/* Exact reads: the final balances are what the rules' running balances say. */
static void test_in_order(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 100);
    fx_xfer(f, "T-2", "B", "C", 30);
    fx_xfer(f, "T-3", "A", "C", 5);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 1000);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_in_db(f, "C", "EUR", 0, 7, 0);
    fx_decide(f);
    returned(f, "A", 105, 1000);
    returned(f, "B", 30, 100);
    returned(f, "C", 7, 35);
    payq_balances_after(&f->r, f->p, f->n);
    assert_after(f->p[0], 900, 100);
    assert_after(f->p[1], 70, 23);
    assert_after(f->p[2], 895, 28);
    assert_before(f, "A", 0, 1000);
    assert_before(f, "B", 0, 0);
    assert_before(f, "C", 7, 0);
}

/* A was read without a lock; another worker then credited it 500 and
 * committed before this batch's UPDATE locked the row. The stored balances
 * follow the committed history, not the stale read. */
static void test_stale_read(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 100);
    fx_xfer(f, "T-2", "B", "A", 40);
    fx_xfer(f, "T-3", "A", "B", 10);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 1000); /* really 0 / 1500 by the UPDATE */
    fx_in_db(f, "B", "EUR", 0, 50, 50);
    fx_decide(f);
    returned(f, "A", 110, 1540);
    returned(f, "B", 90, 160);
    payq_balances_after(&f->r, f->p, f->n);
    assert_after(f->p[0], 1400, 100);
    assert_after(f->p[1], 60, 1440);
    assert_after(f->p[2], 1430, 70);
    assert_before(f, "A", 0, 1500);
    assert_before(f, "B", 50, 50);
}

/* Only posted transfers move the walk; the others carry no balances. */
static void test_only_posted(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 100);
    fx_xfer(f, "T-2", "L", "B", 1);   /* L may not go below zero: rejected */
    fx_xfer(f, "T-3", "A", "X", 1);   /* X unknown: rejected */
    fx_xfer(f, "T-1", "A", "B", 100); /* duplicate in the batch */
    fx_xfer(f, "T-1", "A", "B", 101); /* conflicting reuse */
    struct payq_wmsg *dead = fx_add(f, WMSG_INVALID);
    fx_xfer(f, "T-4", "B", "A", 60);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_in_db(f, "L", "EUR", PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0, 0);
    fx_decide(f);
    assert_int_equal(dead->outcome, WOUT_DEAD);
    returned(f, "A", 100, 60);
    returned(f, "B", 60, 100);
    payq_balances_after(&f->r, f->p, f->n);
    assert_after(f->p[0], -100, 100);
    for (size_t i = 1; i <= 5; i++)
        assert_none(f->p[i]);
    assert_after(f->p[6], 40, -40);
    assert_before(f, "A", 0, 0);
    assert_before(f, "B", 0, 0);
    assert_before(f, "L", 0, 0);
}

/* An account opened by this batch starts at zero like any other. */
static void test_opened_in_batch(void **state)
{
    struct fx *f = *state;
    struct payq_wmsg *o = fx_add(f, WMSG_ACCOUNT);
    snprintf(o->u.account.id, sizeof o->u.account.id, "N");
    snprintf(o->u.account.currency, sizeof o->u.account.currency, "EUR");
    fx_xfer(f, "T-1", "A", "N", 25);
    fx_xfer(f, "T-2", "N", "A", 5);
    fx_begin(f);
    payq_rules_opened(&f->r, "N", f->p, f->n);
    fx_in_db(f, "N", "EUR", 0, 0, 0);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_decide(f);
    returned(f, "A", 25, 5);
    returned(f, "N", 5, 25);
    payq_balances_after(&f->r, f->p, f->n);
    assert_after(f->p[1], -25, 25);
    assert_after(f->p[2], 20, -20);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_in_order),
        T(test_stale_read),
        T(test_only_posted),
        T(test_opened_in_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
