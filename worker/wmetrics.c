/* wmetrics: registration and counting of the worker's series. */
#include "wmetrics.h"

#include <string.h>
#include <time.h>

static const char *const REJECT_REASONS[5] = {"account_not_found", "currency_mismatch",
                                              "insufficient_funds", "credit_limit", "overflow"};
static const char *const REJECT_LABELS[5] = {"status=\"rejected\",reason=\"account_not_found\"",
                                             "status=\"rejected\",reason=\"currency_mismatch\"",
                                             "status=\"rejected\",reason=\"insufficient_funds\"",
                                             "status=\"rejected\",reason=\"credit_limit\"",
                                             "status=\"rejected\",reason=\"overflow\""};

void payq_wmetrics_init(struct payq_wmetrics *m)
{
    static const double size_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8189};
    static const double ms_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};
    /* From tens of ms at steady load (README, Benchmark) to minutes of
     * backlog; the alert's SLO (1 s) is a bound, so its p99 is exact. */
    static const double lat_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60,   300};
    const char *tn = "payq_worker_transfers_total";
    const char *th = "Transfer messages by outcome";
    m->reg = payq_metrics_new();
    m->posted = payq_metrics_counter(m->reg, tn, "status=\"posted\"", th);
    for (int i = 0; i < 5; i++)
        m->rejected[i] = payq_metrics_counter(m->reg, tn, REJECT_LABELS[i], th);
    m->duplicate = payq_metrics_counter(m->reg, tn, "status=\"duplicate\"", th);
    m->conflict = payq_metrics_counter(m->reg, tn, "status=\"id_conflict\"", th);
    m->opened = payq_metrics_counter(m->reg, "payq_worker_accounts_total", "status=\"opened\"",
                                     "Account messages by outcome");
    m->account_dup =
        payq_metrics_counter(m->reg, "payq_worker_accounts_total",
                             "status=\"duplicate_or_conflict\"", "Account messages by outcome");
    m->dead = payq_metrics_counter(m->reg, "payq_worker_dead_letters_total", "",
                                   "Undecodable messages routed to payq.dead");
    m->batches = payq_metrics_counter(m->reg, "payq_worker_batches_total", "", "Committed batches");
    m->redelivered = payq_metrics_counter(m->reg, "payq_worker_redeliveries_total", "",
                                          "Deliveries flagged redelivered by the broker");
    m->amqp_reconnects = payq_metrics_counter(m->reg, "payq_worker_reconnects_total",
                                              "target=\"amqp\"", "Reconnects");
    m->pg_reconnects =
        payq_metrics_counter(m->reg, "payq_worker_reconnects_total", "target=\"pg\"", "Reconnects");
    m->retries = payq_metrics_counter(m->reg, "payq_worker_batch_retries_total", "",
                                      "Batches rolled back and retried");
    m->rechecks =
        payq_metrics_counter(m->reg, "payq_worker_batch_rechecks_total", "",
                             "Batches applied again with every transfer id read, after the "
                             "ledger refused one the batch had not read (a duplicate)");
    m->result_events = payq_metrics_counter(m->reg, "payq_worker_result_events_total", "",
                                            "Outcome events confirmed by payq.results");
    m->taken_during_commit =
        payq_metrics_counter(m->reg, "payq_worker_batches_taken_during_commit_total", "",
                             "Batches taken from the broker while the previous batch's COMMIT "
                             "waited for the synchronous standby");
    m->backlog_batches =
        payq_metrics_counter(m->reg, "payq_worker_backlog_batches_total", "",
                             "Batches collected under a backlog (their first transfer had "
                             "waited worker.backlog_after_ms), up to worker.backlog_batch_max");
    m->batch_size = payq_metrics_histogram(m->reg, "payq_worker_batch_size", "Messages per batch",
                                           size_bounds, sizeof size_bounds / sizeof *size_bounds);
    m->commit_ms = payq_metrics_histogram(m->reg, "payq_worker_commit_ms",
                                          "Batch transaction time in milliseconds", ms_bounds,
                                          sizeof ms_bounds / sizeof *ms_bounds);
    m->intake_to_commit = payq_metrics_histogram(
        m->reg, "payq_worker_intake_to_commit_seconds",
        "Seconds from a transfer's intake timestamp (x-payq-published-ms, else the AMQP "
        "timestamp) to the COMMIT of the batch that booked it",
        lat_bounds, sizeof lat_bounds / sizeof *lat_bounds);
}

void payq_wmetrics_free(struct payq_wmetrics *m)
{
    payq_metrics_free(m->reg);
    m->reg = NULL;
}

void payq_wmetrics_count(struct payq_wmetrics *m, struct payq_wmsg **msgs, size_t n)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    payq_wmetrics_count_at(m, msgs, n, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

void payq_wmetrics_count_at(struct payq_wmetrics *m, struct payq_wmsg **msgs, size_t n,
                            int64_t commit_ms)
{
    for (size_t i = 0; i < n; i++) {
        const struct payq_wmsg *w = msgs[i];
        /* A duplicate's first booking was observed already; a message
         * without any timestamp has published_ms 0 and is not observed. */
        if ((w->outcome == WOUT_POSTED || w->outcome == WOUT_REJECTED) && w->published_ms > 0)
            payq_histogram_observe(m->intake_to_commit,
                                   (double)(commit_ms - w->published_ms) / 1e3);
        if (w->redelivered)
            payq_counter_add(m->redelivered, 1);
        switch (w->outcome) {
        case WOUT_POSTED:
            payq_counter_add(m->posted, 1);
            break;
        case WOUT_DUPLICATE:
            payq_counter_add(w->kind == WMSG_TRANSFER ? m->duplicate : m->account_dup, 1);
            break;
        case WOUT_CONFLICT:
            payq_counter_add(w->kind == WMSG_TRANSFER ? m->conflict : m->account_dup, 1);
            break;
        case WOUT_OPENED:
            payq_counter_add(m->opened, 1);
            break;
        case WOUT_DEAD:
            payq_counter_add(m->dead, 1);
            break;
        case WOUT_REJECTED:
            for (int r = 0; r < 5; r++)
                if (strcmp(w->reason, REJECT_REASONS[r]) == 0)
                    payq_counter_add(m->rejected[r], 1);
            break;
        case WOUT_NONE:
            break;
        }
    }
}
