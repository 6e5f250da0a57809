/* commit: the end of a batch transaction, done so that an acknowledgement
 * can only follow a COMMIT the synchronous standby holds.
 *
 * The worker acks a delivery only after a COMMIT that (1) covers the rows of
 * every message in it and (2) waited for the synchronous standby. Two ways
 * PostgreSQL lets a COMMIT return without (2):
 *
 *  - A transaction that wrote nothing (a retry or redelivery whose ids are
 *    all in the ledger already) has no transaction id; its COMMIT does not
 *    wait for the standby at all. Yet the rows it found may come from an
 *    earlier attempt whose wait was cancelled or whose backend was
 *    terminated: committed locally, visible on the primary, perhaps never
 *    sent to the standby. So every batch transaction inserts one row into
 *    payq.batches (the journal) just before COMMIT. Its commit record lies at
 *    an LSN after the commit record of every transaction whose rows it could
 *    see, and the standby receives WAL in order: when the standby confirms
 *    this COMMIT, it holds those rows too. That is (1) and (2) for every
 *    path: first try, retry, redelivery.
 *  - pg_cancel_backend ends the wait with a WARNING ("canceling wait for
 *    synchronous replication ... committed locally, but might not have been
 *    replicated") and COMMIT reports success. A notice receiver watches the
 *    COMMIT: any WARNING during it makes the outcome unknown, the caller
 *    drops the connection and retries the batch (which, by the first point,
 *    then waits for the standby). Any WARNING, not just the recognised text,
 *    because a COMMIT has no other reason to warn and a retry only costs
 *    time. pg_terminate_backend closes the connection after its WARNING:
 *    already an unknown outcome.
 *
 * Everything the batch does is keyed by transfer id, so these retries never
 * book anything twice. */
#ifndef PAYQ_WORKER_COMMIT_H
#define PAYQ_WORKER_COMMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "pg.h"

/* What the notice receiver saw; lives as long as the connection it watches. */
struct payq_commit_watch {
    bool armed;            /* a COMMIT is running */
    unsigned warnings;     /* WARNINGs during that COMMIT */
    unsigned unreplicated; /* of which the sync-rep cancel/terminate one */
};

/* The journal row's identity: batch_id is stable across attempts. */
struct payq_journal {
    const char *worker;   /* host:pid */
    const char *batch_id; /* "<worker>:<n>" */
    int attempt;          /* 1, 2, ... */
};

/* Routes conn's notices to the JSON log and into w. Call once per
 * connection (again after each reconnect); w must outlive conn. */
void payq_commit_watch(PGconn *conn, struct payq_commit_watch *w);

/* Work to do while a COMMIT waits for the standby (fn NULL: none). It must
 * not touch the connection, and nothing it does may depend on the COMMIT's
 * outcome: the outcome is known only once it returns. */
struct payq_commit_meanwhile {
    void (*fn)(void *);
    void *arg;
};

/* Inserts the journal row for msgs[0..n) (outcomes decided) and COMMITs,
 * running `meanwhile` while the COMMIT waits. Returns PAYQ_PG_OK only when
 * the COMMIT succeeded without any WARNING; PAYQ_PG_RECONNECT when its
 * outcome is unknown (drop the connection and retry the batch); otherwise
 * the fault class of the failure. */
enum payq_pg_fault payq_commit_batch(PGconn *conn, struct payq_commit_watch *w,
                                     const struct payq_journal *j, struct payq_wmsg **msgs,
                                     size_t n, struct payq_commit_meanwhile meanwhile);

#endif
