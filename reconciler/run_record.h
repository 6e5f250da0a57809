/* run_record: finance's history of runs, one row per run in
 * payq.reconciliations, written through pg.recon_conninfo (role payq_recon)
 * by the SECURITY DEFINER function payq.record_reconciliation(), which
 * records a run id once, refuses back-dated or self-contradicting records and stamps when, by whom
 * and against which ledger rows of the date the run was recorded.
 * payq_recon cannot INSERT into the table itself.
 *
 * Policy: a run that cannot be recorded did not complete. The nightly
 * history would otherwise have a silent gap, so the run exits 2 with one
 * line naming why, whatever the books said; the report still shows the
 * verdict, with "recorded": false. */
#ifndef PAYQ_RECON_RUN_RECORD_H
#define PAYQ_RECON_RUN_RECORD_H

#include <stddef.h>

#include "outcome.h"

/* Records the run (in_flight is recorded as "breaks", with
 * counts.result = "in_flight": the table allows balanced|breaks|failed)
 * under a random run id, asking again with that id while the answer is
 * unknown (no connection, the session lost or silent) for up to
 * reconciler.primary_wait_s; the database records an id once. Each wait
 * lasts as long as the server is alive, until SIGTERM or SIGINT: from
 * then on, the record is asked for 5 s more at most, each wait included
 * (whoever stopped the run gives it a grace period for everything, and
 * the report and the metrics come after the record). Returns 0, or -1
 * (logged where detected) with a one-line reason in err. */
int payq_run_record(const struct payq_recon_outcome *run, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Notes, through payq.record_audit_index(), the first stream offset of
 * every date a default read from offset `from` up to its marker at `to`
 * saw. Returns 0, or -1 with a one-line reason in err. */
int payq_run_record_index(const struct payq_config *cfg, int64_t from, int64_t to,
                          const struct payq_audit_index *ix, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
