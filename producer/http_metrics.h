/* http_metrics: the producer's Prometheus series: requests by route and
 * status code (one series per answer the route table declares), messages
 * published, confirmed and refused (nacked or returned), the transfers the
 * confirmed messages carried (a pack holds several), reconnects, POST
 * requests published without their replay check, and a request latency
 * histogram. Rendered by GET /metrics. */
#ifndef PAYQ_HTTP_METRICS_H
#define PAYQ_HTTP_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "metrics.h"
#include "outbox.h"

struct payq_http_request_series {
    const char *path; /* route path, or NULL for unmatched requests */
    int status;
    struct payq_counter *counter;
};

struct payq_http_metrics {
    struct payq_metrics *reg;
    struct payq_http_request_series *requests; /* owned */
    size_t nrequests;
    char **labels; /* owned label strings the registry points at */
    size_t nlabels;
    struct payq_counter *published, *confirmed, *transfers, *refused, *reconnects;
    struct payq_counter *replay_unchecked; /* replica unreadable: no 409 possible */
    struct payq_histogram *latency;
};

/* Registers every series. Aborts on out-of-memory. */
void payq_http_metrics_init(struct payq_http_metrics *m);
void payq_http_metrics_free(struct payq_http_metrics *m); /* safe on a zeroed struct */

/* Counts one answer: path is the route's path (NULL if unmatched). */
void payq_http_metrics_request(struct payq_http_metrics *m, const char *path, int status,
                               double seconds);

/* Adds what an outbox did between two snapshots. */
void payq_http_metrics_outbox(struct payq_http_metrics *m, const struct payq_outbox_stats *before,
                              const struct payq_outbox_stats *after);

void payq_http_metrics_render(struct payq_http_metrics *m, struct payq_buf *out);

#endif
