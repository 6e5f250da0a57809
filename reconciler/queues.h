/* queues: what the broker still holds for the worker, read after the audit
 * stream and before the ledger. While payq.transfers holds messages, an
 * audited transfer that the ledger lacks may simply not be applied yet: it
 * is in_flight, not missing.
 *
 * Two readings are combined because neither is enough alone: a passive
 * queue.declare gives live counts of ready messages and consumers but not
 * of unacknowledged ones; the management API gives unacknowledged ones but
 * lags by several seconds. Unacknowledged messages need a consumer, so the
 * lagging figure is used only while the live reading shows one.
 *
 * payq.dead is reported but never makes a transfer in flight: what waits
 * there needs a human, so a transfer parked in it is missing from the books
 * until someone acts. */
#ifndef PAYQ_RECON_QUEUES_H
#define PAYQ_RECON_QUEUES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct payq_queue_depth {
    int64_t ready;     /* live, from queue.declare */
    int64_t unacked;   /* from the management API; 0 when nobody consumes */
    int64_t consumers; /* live */
};

struct payq_queue_depths {
    struct payq_queue_depth transfers; /* payq.transfers */
    struct payq_queue_depth dead;      /* payq.dead */
};

/* Reads both queues. Returns 0, or -1 with a one-line reason in err
 * (logged where detected). */
int payq_queues_read(const struct payq_config *cfg, struct payq_queue_depths *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Messages payq.transfers still holds (ready + unacknowledged). */
int64_t payq_queues_pending(const struct payq_queue_depths *q);

#endif
