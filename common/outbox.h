/* outbox: publishing that survives a dropped broker connection. It keeps a
 * copy of every message until the broker confirms it; when the connection
 * fails it reconnects with backoff and republishes exactly the messages not
 * yet confirmed (never the confirmed ones), so the count of confirmed
 * messages stays exact. Duplicates of unconfirmed messages that had in fact
 * reached the queue are harmless: message ids are idempotency keys.
 *
 * Memory is bounded by the confirm window (plus rare stragglers confirmed
 * out of order) and, when max_bytes is set, by the bytes held: a window of
 * large packs (producer/packer.h) could otherwise hold gigabytes. One
 * outbox per thread: it is not thread-safe. Messages are persistent and
 * mandatory (common/publisher), to one exchange per outbox. The producer
 * publishes through it, the worker its dead letters and outcome events,
 * the reconciler its audit marker. */
#ifndef PAYQ_OUTBOX_H
#define PAYQ_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "publisher.h"

struct payq_outbox;

struct payq_outbox_opts {
    const struct payq_amqp_target *target; /* must outlive the outbox */
    const char *exchange;                  /* NULL = payq.ingress; must outlive the outbox */
    int window;                            /* confirm window, >= 1 */
    int retry_ms;            /* how long to keep reconnecting after a failure (0: try once) */
    int stall_ms;            /* give up when messages are awaited and no confirm arrived for
                              * this long: waiting, reconnecting, or waiting for window room */
    int resend_ms;           /* when messages are awaited and this connection confirmed none
                              * for this long, publish them again on a new one: a cluster may
                              * never confirm what a failed member held (0 = never) */
    size_t max_bytes;        /* send waits for confirms while more is held; 0 = no limit */
    bool stop_on_signal;     /* give up when SIGTERM/SIGINT arrived (batch files) */
    void (*tick)(void *ctx); /* called now and then while waiting; may be NULL */
    void *tick_ctx;
    /* Another broker than librabbitmq-c to target (unit tests): the
     * outbox's publisher owns io from payq_outbox_new on. NULL = AMQP. */
    const struct payq_broker_ops *ops;
    void *io;
};

/* One message; the outbox copies all of it. */
struct payq_outbox_msg {
    const char *routing_key;
    const char *id; /* message_id; NULL = none */
    const void *body;
    size_t len;
    uint32_t items;       /* transfers it carries (a pack), counted when confirmed; 0 = 1 */
    int64_t timestamp_ms; /* 0 = now; kept when republished */
    const struct payq_header *headers; /* at most PAYQ_PUBLISH_MAX_HEADERS */
    int n_headers;
};

struct payq_outbox_stats {
    uint64_t published; /* basic.publish calls, republishing included */
    uint64_t confirmed; /* distinct messages confirmed */
    uint64_t items;     /* what those messages carried (transfers of a pack, else 1 each) */
    uint64_t refused;   /* returned (no route): the outbox fails */
    uint64_t nacked;    /* nacks; each nacked message is published again */
    uint64_t reconnects;
};

/* Creates an outbox; it connects lazily, on the first send. Never NULL
 * (out of memory aborts). Free with payq_outbox_free. */
struct payq_outbox *payq_outbox_new(const struct payq_outbox_opts *opts);
void payq_outbox_free(struct payq_outbox *o); /* safe on NULL */

/* Publishes a copy of m. May wait for confirms while the window is full and
 * reconnect on failure. Returns 0, or -1 once the outbox has failed: a
 * message was nacked or returned, the broker stayed unreachable for
 * retry_ms, or a stop was requested. The reason is payq_outbox_error. */
int payq_outbox_put(struct payq_outbox *o, const struct payq_outbox_msg *m)
    __attribute__((warn_unused_result));

/* payq_outbox_put of body with routing key rk and message_id id,
 * timestamped now. */
int payq_outbox_send(struct payq_outbox *o, const char *rk, const char *id, const void *body,
                     size_t len) __attribute__((warn_unused_result));

/* The same for a message carrying items transfers (a pack): the stats then
 * count items when it is confirmed. */
int payq_outbox_send_items(struct payq_outbox *o, const char *rk, const char *id, const void *body,
                           size_t len, uint32_t items) __attribute__((warn_unused_result));

/* Waits until every message sent is confirmed. Returns 0 or -1 (as above,
 * or no confirm for stall_ms). */
int payq_outbox_wait(struct payq_outbox *o) __attribute__((warn_unused_result));

/* Why the outbox failed ("" if it did not). Owned by the outbox. */
const char *payq_outbox_error(const struct payq_outbox *o);

void payq_outbox_stats(const struct payq_outbox *o, struct payq_outbox_stats *out);

/* Clears a failure but keeps every message not yet confirmed (a refused
 * one too): the next payq_outbox_wait opens a new connection, publishes
 * them again, oldest first, and counts the stall limit from now. For a
 * caller that must get exactly these messages out before it goes on (the
 * worker's outcome events, worker/main.c). */
void payq_outbox_retry(struct payq_outbox *o);

/* Turns the stop_on_signal option on or off from now on. */
void payq_outbox_stop_on_signal(struct payq_outbox *o, bool on);

/* Forgets every message and any failure so the outbox can be used again
 * (the HTTP server does this after a failed request). A connection that
 * still had messages in flight is dropped and reopened on the next send,
 * so a late confirm can never be mistaken for a new message's. */
void payq_outbox_reset(struct payq_outbox *o);

/* Sends a heartbeat on the connection, if one is open and due
 * (payq_amqp_heartbeat): for a caller that keeps the outbox idle while it
 * waits on something else, as often as it likes. Safe on NULL. */
void payq_outbox_heartbeat(struct payq_outbox *o);

#endif
