/* wmetrics: the worker's Prometheus series (see README "Observability"). */
#ifndef PAYQ_WORKER_WMETRICS_H
#define PAYQ_WORKER_WMETRICS_H

#include "batch.h"
#include "metrics.h"

struct payq_wmetrics {
    struct payq_metrics *reg;
    struct payq_counter *posted, *duplicate, *conflict, *opened, *account_dup, *dead;
    struct payq_counter *rejected[5]; /* by reason, see REJECT_REASONS */
    struct payq_counter *batches, *redelivered, *amqp_reconnects, *pg_reconnects, *retries;
    struct payq_counter *rechecks;            /* batches applied again, every id read */
    struct payq_counter *result_events;       /* confirmed by the broker, re-emissions included */
    struct payq_counter *taken_during_commit; /* batches taken while a COMMIT waited */
    struct payq_counter *backlog_batches;     /* collected under a backlog (batch_size.h) */
    struct payq_histogram *batch_size, *commit_ms;
    struct payq_histogram *intake_to_commit; /* seconds, per new ledger row */
};

void payq_wmetrics_init(struct payq_wmetrics *m);
void payq_wmetrics_free(struct payq_wmetrics *m);
/* Counts the outcomes of committed messages, and observes each new ledger
 * row's (posted or rejected transfer) time from its intake timestamp to now,
 * which the caller makes right after the batch's COMMIT and ack. */
void payq_wmetrics_count(struct payq_wmetrics *m, struct payq_wmsg **msgs, size_t n);
/* The same with the instant of the COMMIT given (unix milliseconds). */
void payq_wmetrics_count_at(struct payq_wmetrics *m, struct payq_wmsg **msgs, size_t n,
                            int64_t commit_ms);

#endif
