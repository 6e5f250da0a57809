/* mgmt_http: one question to the RabbitMQ management API, "how many
 * messages does this queue hold, ready and unacknowledged?", over a tiny
 * HTTP/1.0 client on a plain TCP socket. It avoids linking libcurl for a
 * single GET: HTTP/1.0 means no chunked encoding and the body ends when the
 * server closes. Credentials come from the URL's userinfo
 * (http://user:pass@host:port[/prefix]) and travel as Basic auth.
 * https:// is not supported: the management listener is on loopback. */
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

/* GET <mgmt_url>/api/queues/<vhost>/<queue>. Returns 0 with *out filled,
 * or -1 with a one-line reason in err (also logged, password redacted). */
int payq_mgmt_queue_get(const char *mgmt_url, const char *vhost, const char *queue, int timeout_ms,
                        struct payq_mgmt_queue *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Standard base64 of src[0..len) into dst (at least 4 * ((len + 2) / 3) + 1
 * bytes), NUL-terminated. */
void payq_mgmt_base64(const unsigned char *src, size_t len, char *dst);

#endif
