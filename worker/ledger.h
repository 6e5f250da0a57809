/* ledger: applies a batch of decoded messages to PostgreSQL in one
 * transaction with a handful of set-based statements:
 *   1. open new accounts (INSERT ... ON CONFLICT DO NOTHING, sorted by id)
 *   2. read every account the batch touches that the worker's account cache
 *      (acache.h: existence, currency and flags, which never change) does
 *      not know; lock the restricted ones (those with a balance rule) in id
 *      order and read their balances
 *   3. read which transfer ids already exist, with their fingerprints (on a
 *      first attempt only the redelivered ones while no duplicate has been
 *      seen: the ledger INSERT's primary key catches the others, see
 *      payq_ledger_apply)
 *   4. decide every outcome in memory, in delivery order, on running balances
 *      (rules.c: pure functions, unit-tested without a server)
 *   5. move balances by aggregated deltas in one UPDATE that also locks the
 *      other accounts, in id order (no deadlocks; index plans only, whatever
 *      the table size), returning the new balances; derive from them each
 *      posted transfer's balances after it (balances.h); insert ledger rows
 *      (which take no row locks); record conflicts and dead letters
 *   6. insert the batch's journal row (payq.batches) and COMMIT, which must
 *      have waited for the synchronous standby (commit.h).
 * One row lock per account per batch, not per transfer: a hot merchant
 * account costs one lock per thousand transfers, held only from step 5's
 * balance update to COMMIT, so a second worker overlaps steps 1-4 (the rows
 * are inserted under the locks: the balances they record are exact only
 * there).
 * Because every effect is keyed by transfer id, a retried batch (after a
 * lost connection, an unknown COMMIT outcome, a failover or a redelivery) has
 * no further effect. */
#ifndef PAYQ_WORKER_LEDGER_H
#define PAYQ_WORKER_LEDGER_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "commit.h"
#include "pg.h"

struct payq_ledger;

struct payq_ledger *payq_ledger_new(void);
void payq_ledger_free(struct payq_ledger *l); /* safe on NULL */

/* Remembers the immutable fields of up to max accounts across batches
 * (acache.h), so that most batches read no account row; 0 (the state after
 * payq_ledger_new) reads every account every batch. */
void payq_ledger_cache_accounts(struct payq_ledger *l, size_t max);
/* Accounts found in and missing from that cache so far. */
void payq_ledger_cache_stats(const struct payq_ledger *l, unsigned long long *hits,
                             unsigned long long *misses);

/* Whether the last payq_ledger_apply failed (PAYQ_PG_RETRY) only because
 * the ledger held one of the batch's transfer ids and step 3 had not read
 * it: the next attempt reads every id, so the caller retries at once, with
 * no pause (see payq_ledger_apply). */
bool payq_ledger_retry_now(const struct payq_ledger *l);

/* on: the ledger INSERT also returns each row's outcome event (events.h)
 * into its message (payq_wmsg.event), so that events.c reads back only
 * what a batch did not write itself. Off after payq_ledger_new. */
void payq_ledger_return_events(struct payq_ledger *l, bool on);

/* The next batch runs on a new connection: the statements payq_ledger_apply
 * prepares (once per session, on first use) are prepared again. Call after
 * every successful connect. */
void payq_ledger_new_session(struct payq_ledger *l);

/* Applies msgs[0..n) (pointers into a batch) in one transaction on conn and
 * sets each message's outcome. The transaction always ends with journal row
 * j and a COMMIT watched by watch, with `meanwhile` run while it waits (see
 * commit.h). Returns PAYQ_PG_OK after a COMMIT the synchronous standby
 * confirmed, or the fault class after rolling back or an unknown outcome
 * (outcomes are then meaningless). */
enum payq_pg_fault payq_ledger_apply(struct payq_ledger *l, PGconn *conn,
                                     struct payq_commit_watch *watch, const struct payq_journal *j,
                                     struct payq_wmsg **msgs, size_t n,
                                     struct payq_commit_meanwhile meanwhile);

#endif
