/* http_guard: keeps the HTTP intake answerable under connection floods.
 *
 * libmicrohttpd's own connection timeout is an idle timeout: every byte
 * received resets it, so a client trickling one byte at a time keeps a
 * connection (and a slot of the connection limit) forever, and 1,100 idle
 * connections filled the old limit and shut every other client out. The
 * guard tracks each connection from accept to close and enforces two
 * deadlines no trickle can extend:
 *   - the request's headers must all arrive within header_timeout_ms of the
 *     connection opening (or of the previous response, on keep-alive);
 *   - its body must then arrive within body_timeout_ms.
 * A connection past its deadline is shut down (shutdown(2): libmicrohttpd
 * then sees end-of-stream and closes it in its own thread). Time spent in
 * a handler counts against neither.
 *
 * And so that requests (/healthz, /readyz, a POST) still get in while the
 * limit holds: when a new connection brings the count above evict_at
 * (below libmicrohttpd's hard limit), the oldest connection still waiting
 * for a request's headers is shut down to make room. A real client sends
 * its headers within milliseconds of connecting, so it is never the
 * oldest; idle and trickling connections are. The per-IP limit (in
 * libmicrohttpd) keeps one address from taking the global limit at all.
 *
 * Thread-safe: the libmicrohttpd callbacks (any pool thread) and the reaper
 * (the serve loop) share one mutex. A connection is removed in its CLOSED
 * notification, which libmicrohttpd makes before it closes the descriptor,
 * so the guard never shuts down a descriptor that was reused. */
#ifndef PAYQ_HTTP_GUARD_H
#define PAYQ_HTTP_GUARD_H

#include <stdint.h>

struct payq_http_guard;
struct payq_http_guard_conn;

struct payq_http_guard_opts {
    int64_t header_timeout_ms;
    int64_t body_timeout_ms;
    long evict_at; /* open connections above which the oldest waiting one is evicted */
};

/* Returns a guard (free with payq_http_guard_free), or NULL when out of memory. */
struct payq_http_guard *payq_http_guard_new(const struct payq_http_guard_opts *o);
void payq_http_guard_free(struct payq_http_guard *g); /* NULL is fine */

/* A connection was accepted on fd at now_ns. Returns its record (owned by
 * the guard until payq_http_guard_close), or NULL when out of memory (the
 * connection then goes unguarded). May evict an older connection. */
struct payq_http_guard_conn *payq_http_guard_open(struct payq_http_guard *g, int fd,
                                                  int64_t now_ns);
/* The connection closed: forget it. c may be NULL. */
void payq_http_guard_close(struct payq_http_guard *g, struct payq_http_guard_conn *c);

/* A request's headers are in: its body deadline starts at now_ns. */
void payq_http_guard_headers_in(struct payq_http_guard *g, struct payq_http_guard_conn *c,
                                int64_t now_ns);
/* The request is complete and being handled: no deadline until it is done. */
void payq_http_guard_handling(struct payq_http_guard *g, struct payq_http_guard_conn *c);
/* The request is done: the next one's headers are due header_timeout_ms
 * after now_ns. */
void payq_http_guard_request_done(struct payq_http_guard *g, struct payq_http_guard_conn *c,
                                  int64_t now_ns);

/* Shuts down every connection past its deadline at now_ns. Returns how many. */
long payq_http_guard_reap(struct payq_http_guard *g, int64_t now_ns);

/* Counts since the guard was made, for logs and metrics. */
struct payq_http_guard_stats {
    long open;      /* connections open now */
    long timed_out; /* shut down past a deadline */
    long evicted;   /* shut down to make room */
};
void payq_http_guard_stats(struct payq_http_guard *g, struct payq_http_guard_stats *out);

#endif
