/* balances: each posted transfer's balances after it, from the balances
 * the batch's locking UPDATE returned (pure; no I/O). The ledger row of a
 * posted transfer records both accounts' balances (credits_posted -
 * debits_posted) once it is applied, for the outcome event (events.h).
 * Balances read before the UPDATE locked the rows may be stale (ledger.c
 * reads unrestricted accounts without a lock); the UPDATE's RETURNING is
 * exact, and stays so until COMMIT because the rows stay locked. So each
 * transfer's balance after it is the account's final balance minus what
 * the batch's later posted transfers moved. Tested in
 * tests/unit/test_balances.c. */
#ifndef PAYQ_WORKER_BALANCES_H
#define PAYQ_WORKER_BALANCES_H

#include <stddef.h>

#include "batch.h"
#include "rules.h"

/* Sets debit_balance and credit_balance of every posted transfer in
 * msgs[0..n) (delivery order, as decided by payq_rules_decide_batch) from
 * the final debits/credits of r's accounts, which the caller has set to
 * what the database returned. Walks the batch backwards, undoing each
 * posted transfer on r's balances: on return r's accounts hold their
 * balances before the batch. */
void payq_balances_after(struct payq_rules *r, struct payq_wmsg **msgs, size_t n);

#endif
