/* report: the reconciliation's output for finance, in one of three forms:
 *  - text: sources, totals per currency (audited / posted / rejected by
 *    reason / dead-lettered), one line per batch, breaks by category with
 *    the first reconciler.examples of each, and the verdict;
 *  - json: one object (date, started, finished, result, sources, counts,
 *    totals per currency with amounts as digit strings, batches, breaks
 *    capped per category with their counts in counts.breaks);
 *  - csv: category,id,batch_id,field,expected,actual,detail, one line per
 *    break (all of them).
 * Amounts are minor units. A file given with --out is written to
 * FILE.partial and renamed when complete, so a reader never sees half a
 * report. */
#ifndef PAYQ_RECON_REPORT_H
#define PAYQ_RECON_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "outcome.h"

struct payq_report_out {
    FILE *f;
    char path[4096]; /* "" = stdout */
    char tmp[4200];
};

/* Opens the destination (path NULL = stdout). Returns 0 or -1 with errno
 * set; nothing is logged (the CLI says it). */
int payq_report_open(struct payq_report_out *o, const char *path)
    __attribute__((warn_unused_result));

/* Writes the report in the run's format, closes and renames. Sorts the
 * run's tally for stable output. Returns 0 or -1 (logged). */
int payq_report_write(struct payq_recon_outcome *run, struct payq_report_out *o)
    __attribute__((warn_unused_result));

/* The counts object (JSON text) also stored in payq.reconciliations. */
void payq_report_counts(const struct payq_recon_outcome *run, struct payq_buf *out);

#endif
