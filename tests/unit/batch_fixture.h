/* batch_fixture: a worker batch built in memory for the unit tests of the
 * worker's rules (test_rules, test_balances): messages as the decoder
 * leaves them, accounts as reading payq.accounts leaves them. fx_setup and
 * fx_teardown are each test's cmocka setup and teardown: a fresh struct fx
 * in *state, freed with its rules. */
#ifndef PAYQ_TEST_BATCH_FIXTURE_H
#define PAYQ_TEST_BATCH_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "rules.h"

#define FX_MAXMSG 32

struct fx {
    struct payq_wmsg m[FX_MAXMSG];
    struct payq_wmsg *p[FX_MAXMSG]; /* the batch, in order */
    size_t n;
    struct payq_rules r;
    char hex[FX_MAXMSG][65]; /* fingerprints of "booked" rows */
};

int fx_setup(void **state);
int fx_teardown(void **state);

/* Appends a zeroed message of KIND to the batch. */
struct payq_wmsg *fx_add(struct fx *f, enum wmsg_kind kind);

/* Appends a transfer as the decoder leaves it: fields, effective business
 * date and canonical hash. */
struct payq_wmsg *fx_xfer_full(struct fx *f, const char *id, const char *debit, const char *credit,
                               int64_t amount, const char *currency, const char *batch_id,
                               const char *date, const char *reference, char *metadata);

/* fx_xfer_full in EUR, batch B-1, business date 2026-01-02, no reference. */
struct payq_wmsg *fx_xfer(struct fx *f, const char *id, const char *debit, const char *credit,
                          int64_t amount);

/* Registers the batch's accounts (payq_rules_reset): call after adding
 * every message. */
void fx_begin(struct fx *f);

/* Decides the whole batch (payq_rules_decide_batch). */
void fx_decide(struct fx *f);

/* What reading payq.accounts says about id (as ledger.c's take_account).
 * Call after fx_begin. */
struct payq_rules_acct *fx_in_db(struct fx *f, const char *id, const char *currency, unsigned flags,
                                 int64_t debits, int64_t credits);

#endif
