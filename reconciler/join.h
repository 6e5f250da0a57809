/* join: the I/O around compare.c, the join of the audit stream with the
 * ledger one spill bucket at a time (a Grace hash join: both sides were
 * partitioned by a hash of the transfer id, so matching records share a
 * bucket). It loads each bucket's records from the spill files, asks the
 * ledger about what the day's rows cannot settle, and hands everything to
 * compare.c for the verdicts. Memory: one bucket of each side at a time. */
#ifndef PAYQ_RECON_JOIN_H
#define PAYQ_RECON_JOIN_H

#include <stddef.h>

#include "audit.h"
#include "buf.h"
#include "compare.h"
#include "ledger_read.h"
#include "progress.h"
#include "spill.h"

struct payq_join {
    struct payq_spill *spill;
    struct payq_ledger_reader *ledger;
    struct payq_progress *prog;
    struct payq_compare cmp; /* where the verdicts go */
    char err[512];           /* one line when a call returns -1 */
};

/* Settles audited transfers that carried no date (encoded spill records in
 * recs): those the ledger booked on the date join the audit side, which
 * must be flushed again afterwards; absent ones are breaks. Returns 0 or
 * -1. */
int payq_join_undated(struct payq_join *j, const struct payq_buf *recs)
    __attribute__((warn_unused_result));

/* Looks the undecodable messages up in payq.dead_letters (each body once):
 * found ones are tallied as dead-lettered, the others are breaks. Sorts
 * inv in place. Returns 0 or -1. */
int payq_join_dead(struct payq_join *j, struct payq_audit_invalid *inv, size_t n)
    __attribute__((warn_unused_result));

/* Compares every bucket. Both sides must be flushed. Returns 0 or -1. */
int payq_join_buckets(struct payq_join *j) __attribute__((warn_unused_result));

#endif
