/* outcome: what one reconciliation found, the verdict drawn from it and
 * the names the reports and the run record give it. run.c fills it; the
 * report (report.c, report_text.c) and the run record (run_record.c) only
 * read it. It lives in its own unit so that those readers and the run that
 * produces them include it, and not each other. */
#ifndef PAYQ_RECON_OUTCOME_H
#define PAYQ_RECON_OUTCOME_H

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

/* The command line of one run. */
struct payq_recon_opts {
    char date[11]; /* YYYY-MM-DD */
    enum payq_report_format format;
    const char *out_path;     /* NULL = stdout */
    const char *metrics_path; /* Prometheus text file, or NULL */
    bool from_first;          /* --audit-from first */
    bool use_index;           /* no --audit-from: start where payq.audit_index says */
    int64_t from_s;           /* else (or if the index is unavailable) where the read starts (s) */
    bool full_invariants;     /* --full-invariants: every date, checkpoints rebuilt */
};

enum payq_recon_result {
    PAYQ_RESULT_BALANCED = 0,
    PAYQ_RESULT_BREAKS,
    PAYQ_RESULT_IN_FLIGHT,
    PAYQ_RESULT_FAILED,
};

/* Everything the report shows about one run. */
struct payq_recon_outcome {
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
    int64_t compare_ms; /* the bucketed join and the batch totals */
};

/* "balanced", "breaks", "in_flight" or "failed" (the JSON and the log). */
const char *payq_recon_result_name(enum payq_recon_result r);

/* The verdict of a comparison that ran to the end: breaks of the books
 * first, then transfers still in flight, else balanced. */
enum payq_recon_result payq_recon_verdict(const struct payq_breaks *b);

/* The exit code of a result: 0 balanced, 1 breaks or in flight, 2 failed. */
int payq_recon_exit_code(enum payq_recon_result r);

/* UTC time with milliseconds, "2026-11-27T14:07:54.123Z", into buf (32). */
void payq_recon_iso_time(int64_t ms, char buf[32]);

#endif
