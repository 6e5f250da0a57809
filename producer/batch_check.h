/* batch_check: pass 1 over a batch file, and the per-line rendering pass 2
 * publishes. Pass 1 validates every line with the strict decoders of
 * common/message, settles the batch id and business date, finds repeated
 * ids and adds up the per-currency totals of the manifest, printing each
 * problem as `FILE:LINE: field: reason` (the first PAYQ_BATCH_MAX_SHOWN,
 * then `... and N more errors`). Nothing is kept per line but 16 bytes of
 * duplicate detection (producer/idset.h), so memory stays bounded.
 *
 * Rules (transfers): a blank or whitespace-only line is an error
 * (`: empty line`), never skipped, so line numbers always match what a
 * producer of the file meant. One file is one batch and one business day:
 * --batch-id / --business-date are stamped on lines lacking them and a line
 * carrying another value is an error. Without the option, the value the
 * lines carry is used (two different values are an error), and when no line
 * carries one the batch id is generated (b-YYYYMMDD-<12 hex>) and the
 * business date is today (UTC). An id repeated with different content is an
 * error; repeated with identical content (after stamping) it is published
 * once and counted once in the manifest. */
#ifndef PAYQ_BATCH_CHECK_H
#define PAYQ_BATCH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "lines.h"
#include "message.h"
#include "progress.h"

#define PAYQ_BATCH_MAX_SHOWN 100

enum payq_batch_kind { PAYQ_BATCH_TRANSFERS, PAYQ_BATCH_ACCOUNTS };

struct payq_batch_opts {
    enum payq_batch_kind kind;
    const char *name;          /* FILE as given on the command line */
    const char *batch_id;      /* --batch-id (validated), or NULL */
    const char *business_date; /* --business-date (validated), or NULL */
};

struct payq_batch {
    enum payq_batch_kind kind;
    const char *name; /* from the options, for messages */
    bool batch_id_generated;
    uint64_t lines;      /* lines read */
    uint64_t duplicates; /* identical repeats, skipped */
    uint64_t errors;
    /* batch_id, business_date, count of messages to publish and the
     * per-currency totals (transfers; accounts use count only). */
    struct payq_manifest manifest;
    uint64_t *dup_lines; /* ascending line numbers of the skipped repeats, owned */
    size_t ndup, dupcap;
};

/* Runs pass 1 over in (from its current position, normally the start).
 * Returns 0 when every line is valid, 1 when some are not (printed to
 * stderr), -1 on a read error (printed), -2 when a stop signal arrived. *b
 * is filled in every case; free it with payq_batch_free. */
int payq_batch_check(struct payq_lines *in, const struct payq_batch_opts *o,
                     struct payq_progress *prog, struct payq_batch *b)
    __attribute__((warn_unused_result));

/* Pass 2 for one line: decodes it again, stamps the batch id and business
 * date, and appends its canonical encoding to out and copies its id into
 * id. *dup_cursor (start at 0) walks b->dup_lines. Returns 0 to publish, 1
 * to skip (an identical repeat), -1 if the line no longer decodes (the file
 * changed since pass 1; printed). */
int payq_batch_render(const struct payq_batch *b, size_t *dup_cursor, uint64_t lineno,
                      const char *line, size_t len, struct payq_buf *out, char id[PAYQ_ID_MAX + 1])
    __attribute__((warn_unused_result));

void payq_batch_free(struct payq_batch *b); /* safe twice */

#endif
