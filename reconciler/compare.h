/* compare: the join of the audit stream with the ledger, one spill bucket
 * at a time (a Grace hash join: both sides were partitioned by a hash of
 * the transfer id, so matching records share a bucket).
 *
 * Per bucket the audit side is loaded into a hash map keyed by id, with
 * identical copies dropped (publisher retries and re-runs are normal) and
 * every distinct payload of an id kept; then the ledger side streams past
 * it. What the day's rows cannot settle is looked up: an audited id absent
 * from the day's rows (booked on another date? committed after the scan?
 * re-used with another payload?), and payloads that may have been refused
 * as id conflicts (payq.conflicts). Totals per currency and per batch are
 * tallied on the way. Memory: one bucket of each side at a time. */
#ifndef PAYQ_RECON_COMPARE_H
#define PAYQ_RECON_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "breaks.h"
#include "buf.h"
#include "ledger_read.h"
#include "progress.h"
#include "spill.h"
#include "tally.h"

struct payq_compare_stats {
    uint64_t audit_records; /* audited transfer messages of the date, copies included */
    uint64_t audit_ids;     /* distinct ids among them */
    uint64_t duplicates;    /* identical copies dropped */
    uint64_t ledger_rows;   /* ledger rows of the date compared */
    uint64_t matched;       /* audited ids found among them */
    uint64_t elsewhere;     /* same payload, booked on another date (undated retries) */
    uint64_t late;          /* committed after the ledger scan: in flight */
    uint64_t undated_found; /* undated transfers the ledger booked on the date */
    uint64_t dead_checked;  /* distinct undecodable messages looked up */
    uint64_t dead_found;    /* of those, recorded in payq.dead_letters */
};

struct payq_compare {
    struct payq_spill *spill;
    struct payq_ledger_reader *ledger;
    struct payq_tally *tally;
    struct payq_breaks *breaks;
    struct payq_progress *prog;
    const char *date;
    int64_t pending; /* messages payq.transfers still holds: absent ids are in flight */
    struct payq_compare_stats st;
    char err[512]; /* one line when a call returns -1 */
};

/* Settles audited transfers that carried no date (encoded spill records in
 * recs): those the ledger booked on the date join the audit side, which
 * must be flushed again afterwards; absent ones are breaks. Returns 0 or
 * -1. */
int payq_compare_undated(struct payq_compare *c, const struct payq_buf *recs)
    __attribute__((warn_unused_result));

/* Looks the undecodable messages up in payq.dead_letters (each body once):
 * found ones are tallied as dead-lettered, the others are breaks. Sorts
 * inv in place. Returns 0 or -1. */
int payq_compare_dead(struct payq_compare *c, struct payq_audit_invalid *inv, size_t n)
    __attribute__((warn_unused_result));

/* Compares every bucket. Both sides must be flushed. Returns 0 or -1. */
int payq_compare_buckets(struct payq_compare *c) __attribute__((warn_unused_result));

#endif
