/* test_rules: the worker's money rules without a server. Each test builds a
 * batch of decoded messages, says what the database holds (accounts with
 * their currency, flags and balances; transfer ids already booked), decides
 * the batch and checks every outcome, reason, running balance and the
 * per-account deltas the ledger would write: every row of the README's
 * outcome table, order effects inside a batch, restricted accounts on both
 * sides, overflow at the int64 bounds, accounts opened in the same batch,
 * and duplicates and conflicts inside one batch and against the ledger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch_fixture.h"
#include "money.h"

#define DBT PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS
#define CRD PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS

static struct payq_wmsg *acct_msg(struct fx *f, const char *id, const char *currency,
                                  unsigned flags)
{
    struct payq_wmsg *m = fx_add(f, WMSG_ACCOUNT);
    snprintf(m->u.account.id, sizeof m->u.account.id, "%s", id);
    snprintf(m->u.account.currency, sizeof m->u.account.currency, "%s", currency);
    m->u.account.flags = flags;
    return m;
}

/* The account messages' INSERT created id (RETURNING id), then the read
 * found its new row. */
static struct payq_rules_acct *opened_here(struct fx *f, const char *id, const char *currency,
                                           unsigned flags)
{
    payq_rules_opened(&f->r, id, f->p, f->n);
    return fx_in_db(f, id, currency, flags, 0, 0);
}

/* Transfer message i is already booked, exactly as it is. */
static void booked(struct fx *f, size_t i)
{
    const struct payq_wmsg *m = f->p[i];
    const struct payq_transfer *t = &m->u.transfer;
    payq_hash_hex(m->hash, f->hex[i]);
    const struct payq_rules_existing e = {
        .hash_hex = f->hex[i],
        .debit = t->debit_account,
        .credit = t->credit_account,
        .amount = t->amount,
        .currency = t->currency,
        .batch_id = t->batch_id,
        .date = m->business_date,
        .reference = t->reference,
    };
    payq_rules_add_existing(&f->r, t->id, &e);
}

static void assert_posted(const struct payq_wmsg *m)
{
    assert_int_equal(m->outcome, WOUT_POSTED);
    assert_null(m->reason);
}

static void assert_rejected(const struct payq_wmsg *m, const char *reason)
{
    assert_int_equal(m->outcome, WOUT_REJECTED);
    assert_non_null(m->reason);
    assert_string_equal(m->reason, reason);
}

static void assert_conflict(const struct payq_wmsg *m, const char *reason)
{
    assert_int_equal(m->outcome, WOUT_CONFLICT);
    assert_non_null(m->reason);
    assert_string_equal(m->reason, reason);
}

static void assert_acct(struct fx *f, const char *id, int64_t debits, int64_t credits, int64_t dd,
                        int64_t dc)
{
    const struct payq_rules_acct *a = payq_rules_acct(&f->r, id);
    assert_non_null(a);
    assert_true(a->debits == debits);
    assert_true(a->credits == credits);
    assert_true(a->debit_delta == dd);
    assert_true(a->credit_delta == dc);
}

/* ------------------------------------------------------------ outcomes */

static void test_posted(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 250);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 1000, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 7);
    fx_decide(f);
    assert_posted(f->p[0]);
    assert_acct(f, "A", 1250, 0, 250, 0);
    assert_acct(f, "B", 0, 257, 0, 250);
}

static void test_account_not_found(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "NODEBIT", "B", 1);
    fx_xfer(f, "T-2", "A", "NOCREDIT", 1);
    fx_xfer(f, "T-3", "NONE1", "NONE2", 1);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    for (size_t i = 0; i < 3; i++)
        assert_rejected(f->p[i], "account_not_found");
    assert_acct(f, "A", 0, 0, 0, 0);
    assert_acct(f, "B", 0, 0, 0, 0);
}

static void test_currency_mismatch(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "USD1", "B", 1);                                         /* debit differs */
    fx_xfer(f, "T-2", "A", "USD1", 1);                                         /* credit differs */
    fx_xfer_full(f, "T-3", "A", "B", 1, "GBP", "B-1", "2026-01-02", "", NULL); /* both differ */
    fx_xfer_full(f, "T-4", "USD1", "USD2", 1, "USD", "", "2026-01-02", "", NULL); /* all USD */
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_in_db(f, "USD1", "USD", 0, 0, 0);
    fx_in_db(f, "USD2", "USD", 0, 0, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "currency_mismatch");
    assert_rejected(f->p[1], "currency_mismatch");
    assert_rejected(f->p[2], "currency_mismatch");
    assert_posted(f->p[3]);
    assert_acct(f, "A", 0, 0, 0, 0);
    assert_acct(f, "USD1", 1, 0, 1, 0);
}

/* account_not_found is decided before currency_mismatch, which is decided
 * before the balance rules. */
static void test_reason_precedence(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "USD1", "NONE", 5);
    fx_xfer(f, "T-2", "RD", "USD1", 5);
    fx_xfer_full(f, "T-3", "RD", "RC", INT64_C(10), "EUR", "", "2026-01-02", "", NULL);
    fx_begin(f);
    fx_in_db(f, "USD1", "USD", 0, 0, 0);
    fx_in_db(f, "RD", "EUR", DBT, 0, 0);             /* no funds */
    fx_in_db(f, "RC", "EUR", CRD, 0, INT64_MAX - 1); /* would overflow */
    fx_decide(f);
    assert_rejected(f->p[0], "account_not_found");
    assert_rejected(f->p[1], "currency_mismatch");
    assert_rejected(f->p[2], "overflow");
}

static void test_insufficient_funds(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "R", "B", 101); /* one more than it holds */
    fx_xfer(f, "T-2", "R", "B", 100); /* exactly what it holds */
    fx_xfer(f, "T-3", "R", "B", 1);   /* now empty */
    fx_begin(f);
    fx_in_db(f, "R", "EUR", DBT, 0, 100);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "insufficient_funds");
    assert_posted(f->p[1]);
    assert_rejected(f->p[2], "insufficient_funds");
    assert_acct(f, "R", 100, 100, 100, 0);
    assert_acct(f, "B", 0, 100, 0, 100);
}

static void test_credit_limit(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "L", 51);
    fx_xfer(f, "T-2", "A", "L", 50);
    fx_xfer(f, "T-3", "A", "L", 1);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "L", "EUR", CRD, 50, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "credit_limit");
    assert_posted(f->p[1]);
    assert_rejected(f->p[2], "credit_limit");
    assert_acct(f, "L", 50, 50, 0, 50);
    assert_acct(f, "A", 50, 0, 50, 0);
}

/* A restricted account may also be the other side of a transfer, where its
 * rule does not apply: debits_must_not_exceed_credits is not checked when
 * it is credited, and credits_must_not_exceed_debits not when debited. */
static void test_restricted_on_other_side(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "RD", 500); /* credit a debit-restricted account: no limit */
    fx_xfer(f, "T-2", "RC", "A", 500); /* debit a credit-restricted account: no funds needed */
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "RD", "EUR", DBT, 0, 0);
    fx_in_db(f, "RC", "EUR", CRD, 0, 0);
    fx_decide(f);
    assert_posted(f->p[0]);
    assert_posted(f->p[1]);
    assert_acct(f, "RD", 0, 500, 0, 500);
    assert_acct(f, "RC", 500, 0, 500, 0);
}

/* Both sides restricted in one transfer: each side's rule is checked, the
 * debit side's first. */
static void test_restricted_both_sides(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "RD", "RC", 70); /* RD has 100, RC may take 60: credit_limit */
    fx_xfer(f, "T-2", "RD", "RC", 60); /* fits both */
    fx_xfer(f, "T-3", "RD", "RC", 50); /* RD has 40 left: insufficient_funds first */
    fx_xfer(f, "T-4", "RD", "RC", 40); /* RD has 40, RC has 0 left: credit_limit */
    fx_begin(f);
    fx_in_db(f, "RD", "EUR", DBT, 0, 100);
    fx_in_db(f, "RC", "EUR", CRD, 60, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "credit_limit");
    assert_posted(f->p[1]);
    assert_rejected(f->p[2], "insufficient_funds");
    assert_rejected(f->p[3], "credit_limit");
    assert_acct(f, "RD", 60, 100, 60, 0);
    assert_acct(f, "RC", 60, 60, 0, 60);
}

/* ------------------------------------------------------------ overflow */

static void test_overflow_debit_bound(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 6); /* INT64_MAX - 5 + 6: one past the bound */
    fx_xfer(f, "T-2", "A", "B", 5); /* exactly INT64_MAX */
    fx_xfer(f, "T-3", "A", "B", 1); /* past it again, on the running balance */
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, INT64_MAX - 5, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "overflow");
    assert_posted(f->p[1]);
    assert_rejected(f->p[2], "overflow");
    assert_acct(f, "A", INT64_MAX, 0, 5, 0);
    assert_acct(f, "B", 0, 5, 0, 5);
}

static void test_overflow_credit_bound(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", PAYQ_MONEY_AMOUNT_MAX);
    fx_xfer(f, "T-2", "A", "C", 1);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, INT64_MAX - PAYQ_MONEY_AMOUNT_MAX + 1);
    fx_in_db(f, "C", "EUR", 0, 0, INT64_MAX);
    fx_decide(f);
    assert_rejected(f->p[0], "overflow");
    assert_rejected(f->p[1], "overflow");
    assert_acct(f, "A", 0, 0, 0, 0);
    assert_acct(f, "C", 0, INT64_MAX, 0, 0);
}

/* The largest amounts, many times over one account: the running balance
 * reaches the bound, and the deltas stay exact below it. */
static void test_overflow_running(void **state)
{
    struct fx *f = *state;
    size_t k = 0;
    char id[12][8];
    for (k = 0; k < 12; k++) {
        snprintf(id[k], sizeof id[k], "T-%zu", k);
        fx_xfer(f, id[k], "HOT", "SINK", PAYQ_MONEY_AMOUNT_MAX);
    }
    fx_begin(f);
    fx_in_db(f, "HOT", "EUR", 0, 0, 0);
    fx_in_db(f, "SINK", "EUR", 0, 0, 0);
    fx_decide(f);
    /* INT64_MAX / 999999999999999999 = 9 */
    for (k = 0; k < 9; k++)
        assert_posted(f->p[k]);
    for (; k < 12; k++)
        assert_rejected(f->p[k], "overflow");
    assert_acct(f, "HOT", 9 * PAYQ_MONEY_AMOUNT_MAX, 0, 9 * PAYQ_MONEY_AMOUNT_MAX, 0);
}

/* ------------------------------------------------------------ order */

/* A transfer that funds a restricted account lets the next one out of it
 * post; in the other order the first is rejected. */
static void test_order_funds_next(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "R", "B", 100); /* nothing to spend yet */
    fx_xfer(f, "T-2", "A", "R", 100); /* funds R */
    fx_xfer(f, "T-3", "R", "B", 100); /* now it can */
    fx_begin(f);
    fx_in_db(f, "R", "EUR", DBT, 0, 0);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "insufficient_funds");
    assert_posted(f->p[1]);
    assert_posted(f->p[2]);
    assert_acct(f, "R", 100, 100, 100, 100);
    assert_acct(f, "B", 0, 100, 0, 100);
}

/* A transfer that drains the account leaves the next one rejected, and a
 * smaller one after that still fits. */
static void test_order_drains(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "R", "B", 80);
    fx_xfer(f, "T-2", "R", "B", 30);
    fx_xfer(f, "T-3", "R", "B", 20);
    fx_begin(f);
    fx_in_db(f, "R", "EUR", DBT, 0, 100);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_posted(f->p[0]);
    assert_rejected(f->p[1], "insufficient_funds");
    assert_posted(f->p[2]);
    assert_acct(f, "R", 100, 100, 100, 0);
}

/* A credit-restricted account: a debit raises its limit for the next
 * credit. */
static void test_order_limit_raised(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "L", 30);
    fx_xfer(f, "T-2", "L", "A", 30);
    fx_xfer(f, "T-3", "A", "L", 30);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "L", "EUR", CRD, 0, 0);
    fx_decide(f);
    assert_rejected(f->p[0], "credit_limit");
    assert_posted(f->p[1]);
    assert_posted(f->p[2]);
    assert_acct(f, "L", 30, 30, 30, 30);
}

/* ------------------------------------------------------------ accounts */

/* An account opened in the batch exists only from its message on. */
static void test_opened_in_batch(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "NEW", 5); /* before the opening */
    acct_msg(f, "NEW", "EUR", 0);
    fx_xfer(f, "T-2", "A", "NEW", 5); /* after it */
    fx_xfer(f, "T-3", "NEW", "A", 5); /* the new account debited */
    acct_msg(f, "NEW", "EUR", 0);     /* same fields again: no effect */
    acct_msg(f, "NEW", "USD", 0);     /* other currency */
    acct_msg(f, "NEW", "EUR", DBT);   /* other flags */
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    opened_here(f, "NEW", "EUR", 0);
    fx_decide(f);
    assert_rejected(f->p[0], "account_not_found");
    assert_int_equal(f->p[1]->outcome, WOUT_OPENED);
    assert_posted(f->p[2]);
    assert_posted(f->p[3]);
    assert_int_equal(f->p[4]->outcome, WOUT_DUPLICATE);
    assert_conflict(f->p[5], "exists_with_different_currency");
    assert_conflict(f->p[6], "exists_with_different_flags");
    assert_acct(f, "NEW", 5, 5, 5, 5);
}

/* A restricted account opened in the batch starts at zero: it can receive
 * but not spend until funded, in delivery order. */
static void test_opened_restricted(void **state)
{
    struct fx *f = *state;
    acct_msg(f, "W", "EUR", DBT);
    fx_xfer(f, "T-1", "W", "A", 1);
    fx_xfer(f, "T-2", "A", "W", 10);
    fx_xfer(f, "T-3", "W", "A", 10);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    opened_here(f, "W", "EUR", DBT);
    fx_decide(f);
    assert_int_equal(f->p[0]->outcome, WOUT_OPENED);
    assert_rejected(f->p[1], "insufficient_funds");
    assert_posted(f->p[2]);
    assert_posted(f->p[3]);
    assert_acct(f, "W", 10, 10, 10, 10);
}

/* An account message for an account that existed before the batch (the
 * INSERT returned nothing) is a duplicate or a conflict, never an opening. */
static void test_account_exists_before(void **state)
{
    struct fx *f = *state;
    acct_msg(f, "OLD", "EUR", CRD);
    acct_msg(f, "OLD", "EUR", 0);
    acct_msg(f, "OLD", "GBP", CRD);
    fx_begin(f);
    fx_in_db(f, "OLD", "EUR", CRD, 3, 2);
    fx_decide(f);
    assert_int_equal(f->p[0]->outcome, WOUT_DUPLICATE);
    assert_conflict(f->p[1], "exists_with_different_flags");
    assert_conflict(f->p[2], "exists_with_different_currency");
    assert_acct(f, "OLD", 3, 2, 0, 0);
}

/* ------------------------------------------------------------ idempotency */

/* The same id twice in a batch: the first decides (posted or rejected), a
 * copy has no effect, another payload is a conflict. */
static void test_duplicates_in_batch(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 10);
    fx_xfer(f, "T-1", "A", "B", 10);
    fx_xfer(f, "T-1", "A", "B", 11);
    fx_xfer(f, "T-2", "R", "B", 10); /* rejected: R is empty */
    fx_xfer(f, "T-3", "A", "R", 10); /* funds R */
    fx_xfer(f, "T-2", "R", "B", 10); /* same payload: still its first outcome */
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_in_db(f, "R", "EUR", DBT, 0, 0);
    fx_decide(f);
    assert_posted(f->p[0]);
    assert_int_equal(f->p[1]->outcome, WOUT_DUPLICATE);
    assert_conflict(f->p[2], "exists_with_different_amount");
    assert_rejected(f->p[3], "insufficient_funds");
    assert_posted(f->p[4]);
    assert_int_equal(f->p[5]->outcome, WOUT_DUPLICATE);
    assert_acct(f, "A", 20, 0, 20, 0);
    assert_acct(f, "B", 0, 10, 0, 10);
    assert_acct(f, "R", 0, 10, 0, 10);
}

/* Each field of the payload, changed alone, names itself (in schema order
 * of precedence); a metadata change is a payload conflict. */
static void test_conflict_fields_in_batch(void **state)
{
    struct fx *f = *state;
    static char meta[] = "{\"k\":1}";
    fx_xfer_full(f, "T-1", "A", "B", 10, "EUR", "B-1", "2026-01-02", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 99, "USD", "B-2", "2026-01-03", "s", NULL);
    fx_xfer_full(f, "T-1", "C", "B", 10, "EUR", "B-1", "2026-01-02", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "C", 10, "EUR", "B-1", "2026-01-02", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 10, "USD", "B-1", "2026-01-02", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 10, "EUR", "B-2", "2026-01-02", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 10, "EUR", "B-1", "2026-01-03", "r", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 10, "EUR", "B-1", "2026-01-02", "x", NULL);
    fx_xfer_full(f, "T-1", "A", "B", 10, "EUR", "B-1", "2026-01-02", "r", meta);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_in_db(f, "C", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_posted(f->p[0]);
    assert_conflict(f->p[1], "exists_with_different_amount");
    assert_conflict(f->p[2], "exists_with_different_debit_account");
    assert_conflict(f->p[3], "exists_with_different_credit_account");
    assert_conflict(f->p[4], "exists_with_different_currency");
    assert_conflict(f->p[5], "exists_with_different_batch_id");
    assert_conflict(f->p[6], "exists_with_different_business_date");
    assert_conflict(f->p[7], "exists_with_different_reference");
    assert_conflict(f->p[8], "exists_with_different_payload");
    assert_acct(f, "A", 10, 0, 10, 0);
    assert_acct(f, "C", 0, 0, 0, 0);
}

/* Ids already in the ledger: the same payload is a redelivery (no effect,
 * however the balances stand now), another payload a conflict naming the
 * field, against what is stored. */
static void test_against_ledger(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-OLD", "R", "B", 10);
    fx_xfer(f, "T-OLD", "R", "B", 12);
    fx_xfer_full(f, "T-OLD", "R", "B", 10, "EUR", "B-1", "2026-01-05", "", NULL);
    fx_xfer(f, "T-NEW", "R", "B", 10);
    fx_begin(f);
    booked(f, 0);
    fx_in_db(f, "R", "EUR", DBT, 10, 10); /* T-OLD spent all it had */
    fx_in_db(f, "B", "EUR", 0, 0, 10);
    fx_decide(f);
    assert_int_equal(f->p[0]->outcome, WOUT_DUPLICATE);
    assert_conflict(f->p[1], "exists_with_different_amount");
    assert_conflict(f->p[2], "exists_with_different_business_date");
    assert_rejected(f->p[3], "insufficient_funds");
    assert_acct(f, "R", 10, 10, 0, 0);
    assert_acct(f, "B", 0, 10, 0, 0);
}

static void test_invalid_is_dead(void **state)
{
    struct fx *f = *state;
    fx_add(f, WMSG_INVALID);
    fx_xfer(f, "T-1", "A", "B", 1);
    fx_add(f, WMSG_INVALID);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_int_equal(f->p[0]->outcome, WOUT_DEAD);
    assert_posted(f->p[1]);
    assert_int_equal(f->p[2]->outcome, WOUT_DEAD);
}

/* A hot account over many transfers: one aggregated delta per side, and the
 * balances an UPDATE would produce (old + delta) equal the running ones. */
static void test_aggregated_deltas(void **state)
{
    struct fx *f = *state;
    char id[FX_MAXMSG][8];
    for (size_t k = 0; k < 20; k++) {
        snprintf(id[k], sizeof id[k], "T-%zu", k);
        if (k % 2)
            fx_xfer(f, id[k], "HOT", "X", (int64_t)k);
        else
            fx_xfer(f, id[k], "Y", "HOT", (int64_t)k + 1);
    }
    fx_begin(f);
    struct payq_rules_acct *hot = fx_in_db(f, "HOT", "EUR", DBT, 0, 0);
    fx_in_db(f, "X", "EUR", 0, 0, 0);
    fx_in_db(f, "Y", "EUR", 0, 0, 0);
    fx_decide(f);
    for (size_t k = 0; k < 20; k++)
        assert_posted(f->p[k]);
    /* credits 1+3+...+19 = 100; debits 1+3+...+19 = 100 */
    assert_acct(f, "HOT", 100, 100, 100, 100);
    assert_true(hot->debits == 0 + hot->debit_delta && hot->credits == 0 + hot->credit_delta);
    assert_acct(f, "X", 0, 100, 0, 100);
    assert_acct(f, "Y", 100, 0, 100, 0);
}

/* Reset keeps nothing from the previous batch. */
static void test_reset_between_batches(void **state)
{
    struct fx *f = *state;
    fx_xfer(f, "T-1", "A", "B", 5);
    fx_begin(f);
    fx_in_db(f, "A", "EUR", 0, 0, 0);
    fx_in_db(f, "B", "EUR", 0, 0, 0);
    fx_decide(f);
    assert_posted(f->p[0]);
    f->n = 0;
    fx_xfer(f, "T-1", "A", "B", 5); /* not booked in this batch's view */
    fx_begin(f);
    assert_null(payq_rules_acct(&f->r, "C"));
    fx_decide(f);
    assert_rejected(f->p[0], "account_not_found"); /* no in_db carried over */
    assert_acct(f, "A", 0, 0, 0, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_posted),
        T(test_account_not_found),
        T(test_currency_mismatch),
        T(test_reason_precedence),
        T(test_insufficient_funds),
        T(test_credit_limit),
        T(test_restricted_on_other_side),
        T(test_restricted_both_sides),
        T(test_overflow_debit_bound),
        T(test_overflow_credit_bound),
        T(test_overflow_running),
        T(test_order_funds_next),
        T(test_order_drains),
        T(test_order_limit_raised),
        T(test_opened_in_batch),
        T(test_opened_restricted),
        T(test_account_exists_before),
        T(test_duplicates_in_batch),
        T(test_conflict_fields_in_batch),
        T(test_against_ledger),
        T(test_invalid_is_dead),
        T(test_aggregated_deltas),
        T(test_reset_between_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
