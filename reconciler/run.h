/* run: one reconciliation of one business date, start to finish, in the
 * order that keeps it sound:
 *   1. connect to the ledger (fail fast on a bad conninfo);
 *   2. read the audit stream up to our marker (everything published
 *      before the run) and spill the date's transfers;
 *   3. read the queue depths: only now may a transfer the ledger lacks be
 *      called in flight rather than missing;
 *   4. wait for the standby's replay, scan the date's ledger rows and check
 *      the invariants (after step 3, so anything acked by then is seen);
 *   5. settle undated and undecodable messages, compare bucket by bucket,
 *      check batches against their manifests;
 *   6. record the run in payq.reconciliations and write the report.
 * The verdict is `failed` unless every source was read completely. */
#ifndef PAYQ_RECON_RUN_H
#define PAYQ_RECON_RUN_H

#include "config.h"
#include "outcome.h"

/* Runs the reconciliation and writes the report. Returns the exit code:
 * 0 balanced, 1 breaks or in flight, 2 could not run (after printing one
 * line naming the source to stderr). */
int payq_recon_run(const struct payq_config *cfg, const struct payq_recon_opts *opts);

#endif
