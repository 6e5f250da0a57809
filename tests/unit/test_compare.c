/* test_compare: the reconciler's verdicts without a broker or a database.
 * Each test builds one bucket of audited messages and ledger rows as plain
 * structs, plays the ledger lookups the join would make, and checks the
 * breaks (category, id, field, expected, actual) and the run's verdict:
 * every break category, in_flight, and balanced / breaks / in_flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "breaks.h"
#include "compare.h"
#include "outcome.h"
#include "tally.h"

#define DATE "2095-03-14"

struct fixture {
    struct payq_breaks breaks;
    struct payq_tally tally;
    struct payq_compare c;
    struct payq_compare_bucket b;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    if (payq_breaks_init(&f.breaks, 16, NULL) != 0)
        return -1;
    payq_tally_init(&f.tally);
    f.c = (struct payq_compare){.tally = &f.tally, .breaks = &f.breaks, .date = DATE};
    payq_compare_bucket_reset(&f.b, 16);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    payq_compare_bucket_free(&f->b);
    payq_tally_free(&f->tally);
    payq_breaks_free(&f->breaks);
    return 0;
}

/* A transfer; its fingerprint is derived from every field, as the real
 * one is, so two records with equal fields have equal hashes. */
static struct payq_spill_rec rec(const char *id, const char *batch, int64_t amount,
                                 const char *payload_tag)
{
    struct payq_spill_rec r = {.id = id,
                               .batch_id = batch,
                               .debit = "ACC-A",
                               .credit = "ACC-B",
                               .reason = "",
                               .amount = amount,
                               .body_dated = true};
    memcpy(r.currency, "EUR", 4);
    char key[256];
    snprintf(key, sizeof key, "%s|%s|%lld|%s", id, batch, (long long)amount, payload_tag);
    payq_sha256(key, strlen(key), r.hash);
    return r;
}

static struct payq_spill_rec posted(struct payq_spill_rec r)
{
    r.status = PAYQ_SPILL_POSTED;
    return r;
}

/* The lookups and verdicts the join makes once both sides are in. */
static void settle(struct fixture *f)
{
    payq_compare_verdicts(&f->c, &f->b);
}

static const struct payq_break *only(struct fixture *f, enum payq_break_cat cat)
{
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++)
        assert_int_equal(f->breaks.count[k], k == (int)cat ? 1 : 0);
    return &f->breaks.examples[cat][0];
}

static void assert_no_breaks(struct fixture *f)
{
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++)
        assert_int_equal(f->breaks.count[k], 0);
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BALANCED);
}

static void test_matched_is_balanced(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-1", "B-1", 500, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    payq_compare_add_audit(&f->c, &f->b, &a); /* a publisher retry: a copy, no break */
    struct payq_spill_rec l = posted(a);
    payq_compare_add_ledger(&f->c, &f->b, &l);
    assert_int_equal(payq_compare_unseen_keys(&f->b), 0);
    assert_int_equal(payq_compare_conflict_keys(&f->b), 0);
    settle(f);
    assert_no_breaks(f);
    assert_int_equal(f->c.st.audit_records, 2);
    assert_int_equal(f->c.st.duplicates, 1);
    assert_int_equal(f->c.st.matched, 1);
    assert_int_equal(f->tally.nccy, 1);
    assert_int_equal(f->tally.ccy[0].audited_n, 1);
    assert_int_equal(f->tally.ccy[0].posted_n, 1);
    assert_true(f->tally.ccy[0].posted_sum == 500);
}

static void test_unexpected_in_ledger(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec l = posted(rec("FORGED", "", 999, ""));
    payq_compare_add_ledger(&f->c, &f->b, &l);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_UNEXPECTED);
    assert_string_equal(e->id, "FORGED");
    assert_string_equal(e->actual, "999 EUR");
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BREAKS);
}

static void test_missing_in_ledger(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-2", "B-1", 200, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    assert_int_equal(payq_compare_unseen_keys(&f->b), 1);
    assert_string_equal(f->b.keys[0], "T-2");
    settle(f); /* the lookup found nothing */
    const struct payq_break *e = only(f, PAYQ_BREAK_MISSING);
    assert_string_equal(e->id, "T-2");
    assert_string_equal(e->batch_id, "B-1");
    assert_string_equal(e->expected, "200 EUR");
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BREAKS);
}

static void test_absent_while_queued_is_in_flight(void **state)
{
    struct fixture *f = *state;
    f->c.pending = 3;
    struct payq_spill_rec a = rec("T-3", "", 200, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_IN_FLIGHT);
    assert_string_equal(e->id, "T-3");
    assert_non_null(strstr(e->detail, "payq.transfers holds 3 messages"));
    assert_int_equal(payq_breaks_total(&f->breaks), 0);
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_IN_FLIGHT);
}

/* The scan runs while the stream is read: a row of the date that commits
 * after its snapshot is found by the lookup and compared in full, as if
 * scanned (its strings copied: the lookup's result is freed before the
 * verdicts). */
static void test_committed_after_scan_is_compared(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-4", "B-4", 70, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    assert_int_equal(payq_compare_unseen_keys(&f->b), 1);
    char id[8] = "T-4", batch[8] = "B-4";
    struct payq_spill_rec l = posted(rec(id, batch, 70, ""));
    payq_compare_found(&f->c, &f->b, DATE, &l);
    memset(id, 'x', sizeof id - 1); /* the looked-up row's strings are gone */
    memset(batch, 'x', sizeof batch - 1);
    settle(f);
    assert_no_breaks(f);
    assert_int_equal(f->c.st.late, 1);
    assert_int_equal(f->c.st.matched, 1);
    assert_int_equal(f->tally.ccy[0].posted_n, 1);
}

static void test_committed_after_scan_mismatch(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-4", "B-4", 70, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    payq_compare_unseen_keys(&f->b);
    char id[8] = "T-4", credit[8] = "ACC-C";
    struct payq_spill_rec l = posted(rec(id, "B-4", 70, ""));
    l.credit = credit;
    payq_compare_found(&f->c, &f->b, DATE, &l);
    memset(credit, 'x', sizeof credit - 1);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_CONTENT);
    assert_string_equal(e->id, "T-4");
    assert_string_equal(e->field, "credit_account");
    assert_string_equal(e->expected, "ACC-B");
    assert_string_equal(e->actual, "ACC-C");
}

static void test_content_mismatch_amount(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-5", "B-1", 200, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    struct payq_spill_rec l = posted(rec("T-5", "B-1", 201, ""));
    payq_compare_add_ledger(&f->c, &f->b, &l);
    assert_int_equal(payq_compare_conflict_keys(&f->b), 1); /* was 200 refused? */
    settle(f);                                              /* no: the row was changed */
    const struct payq_break *e = only(f, PAYQ_BREAK_CONTENT);
    assert_string_equal(e->id, "T-5");
    assert_string_equal(e->field, "amount");
    assert_string_equal(e->expected, "200");
    assert_string_equal(e->actual, "201");
}

static void test_content_mismatch_fingerprint(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-6", "", 200, "reference one");
    payq_compare_add_audit(&f->c, &f->b, &a);
    struct payq_spill_rec l = posted(rec("T-6", "", 200, "reference two"));
    payq_compare_add_ledger(&f->c, &f->b, &l);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_CONTENT);
    assert_string_equal(e->field, "payload_sha256");
}

static void test_id_conflict_recorded(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a1 = rec("T-7", "B-1", 100, ""), a2 = rec("T-7", "B-1", 101, "");
    payq_compare_add_audit(&f->c, &f->b, &a1);
    payq_compare_add_audit(&f->c, &f->b, &a2);
    struct payq_spill_rec l = posted(a1);
    payq_compare_add_ledger(&f->c, &f->b, &l);
    assert_int_equal(payq_compare_conflict_keys(&f->b), 1);
    payq_compare_refused(&f->b, "T-7", a2.hash);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_ID_CONFLICT);
    assert_string_equal(e->id, "T-7");
    assert_string_equal(e->field, "amount");
    assert_string_equal(e->expected, "100");
    assert_string_equal(e->actual, "101");
    assert_non_null(strstr(e->detail, "is recorded in payq.conflicts"));
    assert_int_equal(f->c.st.audit_ids, 1);
}

static void test_id_conflict_taken_on_other_date(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-8", "", 100, ""), old = rec("T-8", "", 555, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    payq_compare_unseen_keys(&f->b);
    payq_compare_found(&f->c, &f->b, "2095-03-01", &old);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_ID_CONFLICT);
    assert_non_null(strstr(e->detail, "id already booked on 2095-03-01"));
    assert_non_null(strstr(e->detail, "NOT recorded in"));
}

static void test_undated_retry_booked_elsewhere(void **state)
{
    struct fixture *f = *state;
    /* Dated by its AMQP timestamp: a copy published after midnight is the
     * same transfer, booked on the day its first copy arrived. */
    struct payq_spill_rec a = rec("T-9", "", 100, "");
    a.body_dated = false;
    payq_compare_add_audit(&f->c, &f->b, &a);
    payq_compare_unseen_keys(&f->b);
    payq_compare_found(&f->c, &f->b, "2095-03-13", &a);
    settle(f);
    assert_no_breaks(f);
    assert_int_equal(f->c.st.elsewhere, 1);
}

/* issue 17: a transfer moved to another business date (as a superuser
 * with the append-only trigger off) left its date BALANCED. */
static void test_booked_on_another_date(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-13", "", 100, ""); /* names business_date DATE */
    payq_compare_add_audit(&f->c, &f->b, &a);
    payq_compare_unseen_keys(&f->b);
    payq_compare_found(&f->c, &f->b, "2095-03-15", &a);
    settle(f);
    const struct payq_break *e = only(f, PAYQ_BREAK_CONTENT);
    assert_string_equal(e->id, "T-13");
    assert_string_equal(e->field, "business_date");
    assert_string_equal(e->expected, DATE);
    assert_string_equal(e->actual, "2095-03-15");
    assert_int_equal(f->c.st.elsewhere, 0);
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BREAKS);
}

static void test_dead_letters(void **state)
{
    struct fixture *f = *state;
    struct payq_audit_invalid found = {.amount = 1250, .currency = "EUR"};
    struct payq_audit_invalid lost = {.id = "BAD-1", .amount = -1};
    snprintf(lost.err.field, sizeof lost.err.field, "amount");
    snprintf(lost.err.reason, sizeof lost.err.reason, "must be a string of digits");
    payq_compare_dead_verdict(&f->c, &found, true);
    assert_no_breaks(f);
    assert_int_equal(f->tally.ccy[0].dead_n, 1);
    payq_compare_dead_verdict(&f->c, &lost, false);
    const struct payq_break *e = only(f, PAYQ_BREAK_MISSING);
    assert_string_equal(e->id, "BAD-1");
    assert_string_equal(e->field, "amount");
    f->c.pending = 1;
    payq_compare_dead_verdict(&f->c, &lost, false);
    assert_int_equal(f->breaks.count[PAYQ_BREAK_IN_FLIGHT], 1);
}

static void test_batch_totals_mismatch(void **state)
{
    struct fixture *f = *state;
    struct payq_manifest m = {.batch_id = "B-9", .business_date = DATE, .count = 2, .ntotals = 1};
    snprintf(m.totals[0].currency, sizeof m.totals[0].currency, "EUR");
    m.totals[0].sum = 301;
    payq_tally_manifest(&f->tally, &m);
    struct payq_spill_rec a1 = rec("T-10", "B-9", 100, ""), a2 = rec("T-11", "B-9", 200, "");
    payq_compare_add_audit(&f->c, &f->b, &a1);
    payq_compare_add_audit(&f->c, &f->b, &a2);
    struct payq_spill_rec l1 = posted(a1), l2 = posted(a2);
    payq_compare_add_ledger(&f->c, &f->b, &l1);
    payq_compare_add_ledger(&f->c, &f->b, &l2);
    settle(f);
    payq_tally_check_batches(&f->tally, &f->breaks, DATE);
    const struct payq_break *e = only(f, PAYQ_BREAK_BATCH);
    assert_string_equal(e->batch_id, "B-9");
    assert_string_equal(e->field, "totals.EUR");
    assert_string_equal(e->expected, "301");
    assert_string_equal(e->actual, "300");
}

/* A manifest of 2, both audited, one booked: never balanced, whatever
 * the other checks say. */
static void manifest_of_two(struct fixture *f)
{
    struct payq_manifest m = {.batch_id = "B-8", .business_date = DATE, .count = 2, .ntotals = 1};
    snprintf(m.totals[0].currency, sizeof m.totals[0].currency, "EUR");
    m.totals[0].sum = 300;
    payq_tally_manifest(&f->tally, &m);
    struct payq_spill_rec a1 = rec("T-14", "B-8", 100, ""), a2 = rec("T-15", "B-8", 200, "");
    payq_compare_add_audit(&f->c, &f->b, &a1);
    payq_compare_add_audit(&f->c, &f->b, &a2);
    struct payq_spill_rec l1 = posted(a1);
    payq_compare_add_ledger(&f->c, &f->b, &l1);
}

static void test_batch_ledger_count(void **state)
{
    struct fixture *f = *state;
    manifest_of_two(f);
    settle(f);
    payq_tally_check_batches(&f->tally, &f->breaks, DATE);
    assert_int_equal(f->breaks.count[PAYQ_BREAK_MISSING], 1);
    assert_int_equal(f->breaks.count[PAYQ_BREAK_BATCH], 1); /* the audit agrees with the manifest */
    const struct payq_break *e = &f->breaks.examples[PAYQ_BREAK_BATCH][0];
    assert_string_equal(e->batch_id, "B-8");
    assert_string_equal(e->field, "ledger_count");
    assert_string_equal(e->expected, "2");
    assert_string_equal(e->actual, "1");
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BREAKS);
}

static void test_batch_short_while_in_flight(void **state)
{
    struct fixture *f = *state;
    f->c.pending = 1;
    manifest_of_two(f);
    settle(f);
    payq_tally_check_batches(&f->tally, &f->breaks, DATE);
    only(f, PAYQ_BREAK_IN_FLIGHT);
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_IN_FLIGHT);
}

static void test_batch_without_manifest(void **state)
{
    struct fixture *f = *state;
    struct payq_spill_rec a = rec("T-12", "B-NONE", 5, "");
    payq_compare_add_audit(&f->c, &f->b, &a);
    struct payq_spill_rec l = posted(a);
    payq_compare_add_ledger(&f->c, &f->b, &l);
    settle(f);
    payq_tally_check_batches(&f->tally, &f->breaks, DATE);
    const struct payq_break *e = only(f, PAYQ_BREAK_BATCH);
    assert_string_equal(e->field, "manifest");
    assert_string_equal(e->actual, "none");
}

static void test_invariant_violation(void **state)
{
    struct fixture *f = *state;
    struct payq_invariant_row acct = {.key = "ACC-B",
                                      .stored_debits = "7",
                                      .stored_credits = "100",
                                      .posted_debits = "0",
                                      .posted_credits = "100",
                                      .account_exists = true};
    payq_compare_invariant(&f->breaks, &acct);
    const struct payq_break *e = only(f, PAYQ_BREAK_INVARIANT);
    assert_string_equal(e->id, "ACC-B");
    assert_string_equal(e->field, "debits_posted");
    assert_string_equal(e->expected, "0");
    assert_string_equal(e->actual, "7");
    struct payq_invariant_row ccy = {.currency_wide = true,
                                     .key = "EUR",
                                     .stored_debits = "5",
                                     .stored_credits = "6",
                                     .posted_debits = "",
                                     .posted_credits = ""};
    payq_compare_invariant(&f->breaks, &ccy);
    struct payq_invariant_row ghost = {.key = "ACC-X",
                                       .stored_debits = "",
                                       .stored_credits = "",
                                       .posted_debits = "1",
                                       .posted_credits = "0"};
    payq_compare_invariant(&f->breaks, &ghost);
    assert_int_equal(f->breaks.count[PAYQ_BREAK_INVARIANT], 3);
    assert_string_equal(f->breaks.examples[PAYQ_BREAK_INVARIANT][1].field, "debits_vs_credits");
    assert_string_equal(f->breaks.examples[PAYQ_BREAK_INVARIANT][2].field, "account");
}

static void test_overall_verdict(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_BALANCED);
    assert_int_equal(payq_recon_exit_code(PAYQ_RESULT_BALANCED), 0);
    payq_breaks_add(&f->breaks, PAYQ_BREAK_IN_FLIGHT, "T", "", "", "", "", "queued");
    assert_int_equal(payq_recon_verdict(&f->breaks), PAYQ_RESULT_IN_FLIGHT);
    assert_int_equal(payq_recon_exit_code(PAYQ_RESULT_IN_FLIGHT), 1);
    /* A break of the books outweighs anything in flight. */
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++) {
        if (k == PAYQ_BREAK_IN_FLIGHT)
            continue;
        struct payq_breaks one;
        assert_int_equal(payq_breaks_init(&one, 1, NULL), 0);
        payq_breaks_add(&one, k, "T", "", "", "", "", "x");
        payq_breaks_add(&one, PAYQ_BREAK_IN_FLIGHT, "U", "", "", "", "", "y");
        assert_int_equal(payq_recon_verdict(&one), PAYQ_RESULT_BREAKS);
        payq_breaks_free(&one);
    }
    assert_int_equal(payq_recon_exit_code(PAYQ_RESULT_BREAKS), 1);
    assert_int_equal(payq_recon_exit_code(PAYQ_RESULT_FAILED), 2);
    assert_string_equal(payq_recon_result_name(PAYQ_RESULT_IN_FLIGHT), "in_flight");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_matched_is_balanced),
        T(test_unexpected_in_ledger),
        T(test_missing_in_ledger),
        T(test_absent_while_queued_is_in_flight),
        T(test_committed_after_scan_is_compared),
        T(test_committed_after_scan_mismatch),
        T(test_content_mismatch_amount),
        T(test_content_mismatch_fingerprint),
        T(test_id_conflict_recorded),
        T(test_id_conflict_taken_on_other_date),
        T(test_undated_retry_booked_elsewhere),
        T(test_booked_on_another_date),
        T(test_dead_letters),
        T(test_batch_totals_mismatch),
        T(test_batch_ledger_count),
        T(test_batch_short_while_in_flight),
        T(test_batch_without_manifest),
        T(test_invariant_violation),
        T(test_overall_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
