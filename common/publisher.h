/* publisher: durable publishing with publisher confirms and a window of
 * outstanding messages (waiting for each confirm alone is ten times slower).
 *
 * Every message is persistent and mandatory. Sequence numbers count from 1
 * after each (re)connect; the caller maps them to its own items and learns
 * each one's fate through the settle callback: ok=true when the broker
 * confirmed it, ok=false when it was nacked or returned as unroutable. After
 * a connection failure nothing unsettled can be trusted: the caller
 * reconnects and republishes everything not yet settled ok (duplicates are
 * harmless because ids are idempotency keys).
 *
 * The publisher itself only keeps the window and the settle ring; the
 * broker calls go through struct payq_broker_ops: librabbitmq-c in the
 * programs (publisher_amqp.c), a fake broker in the unit tests. */
#ifndef PAYQ_PUBLISHER_H
#define PAYQ_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

struct payq_publisher;

typedef void (*payq_settle_fn)(void *ctx, uint64_t seq, bool ok, const char *why);
/* The why of a settle for a basic.nack (compare with strcmp): the broker did
 * not take the message, which in a cluster can be passing (a queue leader
 * lost mid-publish), unlike a basic.return (no queue bound). */
#define PAYQ_PUBLISH_NACKED "nacked by the broker"

/* A string header of a published message. */
struct payq_header {
    const char *key;
    const char *value;
};

#define PAYQ_PUBLISH_MAX_HEADERS 4

struct payq_publish_props {
    const char *message_id;            /* may be NULL */
    int64_t timestamp_s;               /* 0 = now */
    int64_t timestamp_ms;              /* intake time in ms; wins over timestamp_s when set */
    const struct payq_header *headers; /* n_headers string headers, besides x-payq-published-ms */
    int n_headers;                     /* at most PAYQ_PUBLISH_MAX_HEADERS */
    const char *content_type;          /* NULL = application/json */
};

/* What the broker said on the publishing channel. */
enum payq_broker_event_kind {
    PAYQ_BROKER_OTHER = 0, /* a frame that settles nothing (heartbeat, ...) */
    PAYQ_BROKER_ACK,       /* basic.ack: tag, multiple */
    PAYQ_BROKER_NACK,      /* basic.nack: tag, multiple */
    PAYQ_BROKER_RETURN,    /* basic.return (its ack follows): why */
};

struct payq_broker_event {
    enum payq_broker_event_kind kind;
    uint64_t tag;
    bool multiple;
    char why[128];
};

/* The broker calls a publisher makes on its io handle. */
struct payq_broker_ops {
    /* Drops any connection and opens a new one with confirms enabled.
     * 0 or -1 (logged). */
    int (*open)(void *io);
    /* Forgets the connection at once (after a failure). */
    void (*drop)(void *io);
    /* basic.publish, persistent and mandatory; published_ms is the
     * x-payq-published-ms header. 0, or -1 (logged) when the connection
     * failed. */
    int (*publish)(void *io, const char *exchange, const char *routing_key, const void *body,
                   size_t len, const struct payq_publish_props *props, int64_t published_ms);
    /* Waits up to timeout_ms (0 = only what is buffered) for one frame.
     * 1 with *ev filled, 0 when none came, -1 when the connection failed
     * or the broker closed it (logged). */
    int (*next_event)(void *io, int timeout_ms, struct payq_broker_event *ev);
    /* Closes politely and frees io; may be NULL. */
    void (*free)(void *io);
    /* Sends a heartbeat on the connection, if any and due; may be NULL. */
    void (*heartbeat)(void *io);
};

/* Connects over librabbitmq-c (see payq_amqp_connect) and enables confirms.
 * window >= 1. The target's strings must outlive the publisher. Returns 0
 * or -1 (logged); on -1 *out is NULL. */
int payq_publisher_new(const struct payq_amqp_target *target, int window, payq_settle_fn on_settle,
                       void *ctx, struct payq_publisher **out) __attribute__((warn_unused_result));

/* A publisher over librabbitmq-c that is not connected yet: call
 * payq_publisher_reconnect first. Never NULL. */
struct payq_publisher *payq_publisher_new_amqp(const struct payq_amqp_target *target, int window,
                                               payq_settle_fn on_settle, void *ctx);

/* A publisher over any broker, not connected yet. It owns io from now on
 * (ops->free, if set, frees it with the publisher). Never NULL. */
struct payq_publisher *payq_publisher_new_io(const struct payq_broker_ops *ops, void *io,
                                             int window, payq_settle_fn on_settle, void *ctx);

void payq_publisher_free(struct payq_publisher *p); /* safe on NULL */

/* When (payq_clock_mono_ms) payq_publisher_publish stops waiting for room
 * in a full window and drops the connection; 0 (the default) is 60 s after
 * each call. */
void payq_publisher_set_give_up(struct payq_publisher *p, int64_t mono_ms);

/* Drops the connection (if any) and connects again; sequence numbers restart
 * at 1 and unsettled messages are forgotten without callbacks. */
int payq_publisher_reconnect(struct payq_publisher *p) __attribute__((warn_unused_result));

/* Publishes one message, first waiting (reading confirms) while the window
 * is full. Returns the message's sequence number (>= 1), or 0 when the
 * connection failed (logged; reconnect and republish). */
uint64_t payq_publisher_publish(struct payq_publisher *p, const char *exchange,
                                const char *routing_key, const void *body, size_t len,
                                const struct payq_publish_props *props)
    __attribute__((warn_unused_result));

/* Waits until every published message is settled or timeout_ms passes.
 * Returns 0 when all are settled, 1 on timeout, -1 on connection failure. */
int payq_publisher_flush(struct payq_publisher *p, int timeout_ms)
    __attribute__((warn_unused_result));

/* Reads whatever confirms are already available without blocking. */
int payq_publisher_poll(struct payq_publisher *p) __attribute__((warn_unused_result));

uint64_t payq_publisher_outstanding(const struct payq_publisher *p);

/* Sends a heartbeat on the connection, if connected and due (payq_amqp_heartbeat). */
void payq_publisher_heartbeat(struct payq_publisher *p);

#endif
