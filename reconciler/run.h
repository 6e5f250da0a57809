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

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "breaks.h"
#include "compare.h"
#include "config.h"
#include "ledger_read.h"
#include "queues.h"
#include "tally.h"

enum payq_report_format {
    PAYQ_REPORT_TEXT = 0,
    PAYQ_REPORT_JSON,
    PAYQ_REPORT_CSV,
};

struct payq_recon_opts {
    char date[11]; /* YYYY-MM-DD */
    enum payq_report_format format;
    const char *out_path; /* NULL = stdout */
    bool from_first;      /* --audit-from first */
    int64_t from_s;       /* else where the audit read starts (seconds) */
};

enum payq_recon_result {
    PAYQ_RESULT_BALANCED = 0,
    PAYQ_RESULT_BREAKS,
    PAYQ_RESULT_IN_FLIGHT,
    PAYQ_RESULT_FAILED,
};

/* Everything the report shows. */
struct payq_recon_run {
    const struct payq_config *cfg;
    const struct payq_recon_opts *opts;
    int64_t started_ms, finished_ms;
    enum payq_recon_result result;
    char error[1536]; /* when failed: "cannot read the ledger: ..." */
    bool recorded;    /* the run is in payq.reconciliations */
    bool audit_read, queues_read, ledger_read;
    struct payq_audit_stats audit;
    struct payq_queue_depths queues;
    struct payq_ledger_stats ledger;
    struct payq_compare_stats cmp;
    struct payq_tally tally;
    struct payq_breaks breaks;
    uint64_t spill_bytes;
};

const char *payq_recon_result_name(enum payq_recon_result r);

/* Runs the reconciliation and writes the report. Returns the exit code:
 * 0 balanced, 1 breaks or in flight, 2 could not run (after printing one
 * line naming the source to stderr). */
int payq_recon_run(const struct payq_config *cfg, const struct payq_recon_opts *opts);

#endif
