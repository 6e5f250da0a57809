/* run_record: finance's history of runs, one row per run in
 * payq.reconciliations, written through pg.recon_conninfo (role payq_recon:
 * INSERT only, hence no RETURNING).
 *
 * Policy: a run that cannot be recorded keeps its verdict and exit code,
 * with a warning in the log and "recorded": false in the report. The exit
 * code speaks about the books and the sources they were read from; the
 * record is bookkeeping about the run, and the report file the nightly job
 * keeps carries the same facts. A monitor that needs the history should
 * alert on a missing row for the date. */
#ifndef PAYQ_RECON_RUN_RECORD_H
#define PAYQ_RECON_RUN_RECORD_H

#include "outcome.h"

/* Inserts the run (in_flight is recorded as "breaks", with
 * counts.result = "in_flight": the table allows balanced|breaks|failed).
 * Returns 0, or -1 (logged where detected). */
int payq_run_record(const struct payq_recon_outcome *run) __attribute__((warn_unused_result));

#endif
