/* batch_view: the body of GET /v1/batches/{batch_id} from the ledger's
 * rows of the batch grouped by status and currency. Pure: no I/O
 * (producer/ledger_reads.c runs the query). */
#ifndef PAYQ_BATCH_VIEW_H
#define PAYQ_BATCH_VIEW_H

#include <stddef.h>

#include "buf.h"

/* One group of a batch's ledger rows; strings borrowed. */
struct payq_batch_group {
    const char *status;   /* "posted" or "rejected" */
    const char *currency; /* ^[A-Z]{3}$ */
    long long count;
    const char *sum; /* decimal digits: the sum of the amounts */
};

/* Appends {"batch_id","business_dates":[...],"booked":{"count","totals"},
 * "rejected":{"count","totals"},"declared":null,"complete":null} to out.
 * groups must be sorted by status then currency (the query's ORDER BY);
 * totals map currency to the digit-string sum, in that order; dates is the
 * batch's distinct business dates, comma-separated. Declared totals live in
 * the batch manifest, which the ledger does not store (README, "Reads for
 * upstream"), so declared and complete are null. */
void payq_batch_view_json(const char *batch_id, const char *dates,
                          const struct payq_batch_group *groups, size_t n, struct payq_buf *out);

#endif
