/* publisher: durable publishing with publisher confirms and a window of
 * outstanding messages (waiting for each confirm alone is ten times slower).
 *
 * Every message is persistent and mandatory. Sequence numbers count from 1
 * after each (re)connect; the caller maps them to its own items and learns
 * each one's fate through the settle callback: ok=true when the broker
 * confirmed it, ok=false when it was nacked or returned as unroutable. After
 * a connection failure nothing unsettled can be trusted: the caller
 * reconnects and republishes everything not yet settled ok (duplicates are
 * harmless because ids are idempotency keys). */
#ifndef PAYQ_PUBLISHER_H
#define PAYQ_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

struct payq_publisher;

typedef void (*payq_settle_fn)(void *ctx, uint64_t seq, bool ok, const char *why);

struct payq_publish_props {
    const char *message_id;    /* may be NULL */
    int64_t timestamp_s;       /* 0 = now */
    int64_t timestamp_ms;      /* intake time in ms; wins over timestamp_s when set */
    const char *reason_header; /* sets x-payq-reason when non-NULL (dead letters) */
    const char *field_header;  /* sets x-payq-field when non-NULL */
    const char *content_type;  /* NULL = application/json */
};

/* Connects (see payq_amqp_connect) and enables confirms. window >= 1. The
 * target's strings must outlive the publisher. Returns 0 or -1 (logged);
 * on -1 *out is NULL. */
int payq_publisher_new(const struct payq_amqp_target *target, int window, payq_settle_fn on_settle,
                       void *ctx, struct payq_publisher **out) __attribute__((warn_unused_result));
void payq_publisher_free(struct payq_publisher *p); /* safe on NULL */

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

#endif
