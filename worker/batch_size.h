/* batch_size: how many transfers the batch being collected may hold.
 *
 * A batch's transfers all wait for its COMMIT, so a batch's size is a
 * trade between throughput and latency: over 10,000 accounts 8000 drained
 * 1.18-1.32 times faster than 4000 here (each account row is moved once for
 * more transfers), but at half load its p99 from intake to commit was
 * several times higher (README, "What bounds each figure"). The trade
 * changes sides with the backlog. A transfer that has already waited a
 * second in the queue is delayed more by the queue ahead of it than by the
 * length of its own batch, and bigger batches shorten that queue: so the
 * batch grows to backlog_max once its first transfer was published at
 * least backlog_after_ms ago, and keeps max otherwise (live traffic, short
 * hiccups). The publisher's clock is compared with the worker's: a skew
 * between them only moves the switch, never what is booked. */
#ifndef PAYQ_WORKER_BATCH_SIZE_H
#define PAYQ_WORKER_BATCH_SIZE_H

#include <stdint.h>

struct payq_batch_size {
    int max;              /* worker.batch_max */
    int wait_ms;          /* worker.batch_wait_ms: for the rest after the first */
    int backlog_max;      /* worker.backlog_batch_max, >= max */
    int backlog_after_ms; /* worker.backlog_after_ms; 0: never grow */
};

/* The most transfers a batch may hold whose first transfer was published at
 * published_ms (epoch milliseconds, 0 if unknown), at wall time now_ms. */
int payq_batch_size_limit(const struct payq_batch_size *s, int64_t published_ms, int64_t now_ms);

#endif
