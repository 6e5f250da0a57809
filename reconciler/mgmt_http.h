/* mgmt_http: one question to the RabbitMQ management API, "how many
 * messages does this queue hold, ready and unacknowledged?", asked with
 * libcurl (http:// or https://, e.g. when the broker runs with TLS).
 *
 * amqp.mgmt_url may list several URLs separated by commas (one per node of
 * a cluster): they are tried in order and the first that answers is used.
 * A URL that cannot be reached, times out or answers 5xx passes to the
 * next; a 200, 401 or 404 is the answer (every node would say the same).
 * Credentials come from the URL's userinfo (http://user:pass@host:port
 * [/prefix]) and travel as Basic auth; they never reach a log line or an
 * error message (URLs are shown redacted). */
#ifndef PAYQ_RECON_MGMT_HTTP_H
#define PAYQ_RECON_MGMT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct payq_mgmt_queue {
    /* false when the broker reports no counts for the queue (a quorum queue
     * that never had traffic): there is nothing in it. */
    bool has_counts;
    int64_t ready;
    int64_t unacked;
    int64_t consumers;
};

/* Prepares libcurl; call once at start-up, before any other thread runs.
 * Returns 0 or -1. */
int payq_mgmt_global_init(void) __attribute__((warn_unused_result));

/* GET <mgmt_url>/api/queues/<vhost>/<queue> from the first URL of the list
 * that answers, each try bounded by timeout_ms. Returns 0 with *out filled,
 * or -1 with a one-line reason in err (also logged, credentials redacted). */
int payq_mgmt_queue_get(const char *mgmt_urls, const char *vhost, const char *queue, int timeout_ms,
                        struct payq_mgmt_queue *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
