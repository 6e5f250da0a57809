/* consumer: competing consumer on payq.transfers with manual acks and a
 * prefetch of at least one batch. It hands out deliveries in batches and
 * acks a whole batch at once (multiple=true) only after the ledger
 * committed it. Deliveries of a lost connection are simply dropped: the
 * broker redelivers them and the ledger treats them as the no-ops they are. */
#ifndef PAYQ_WORKER_CONSUMER_H
#define PAYQ_WORKER_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "batch_size.h"
#include "broker.h"

struct payq_consumer;

/* Connects and starts consuming. The target's strings must outlive the
 * consumer. Returns 0 and *out, or -1 (logged). */
int payq_consumer_open(const struct payq_amqp_target *t, int prefetch, struct payq_consumer **out)
    __attribute__((warn_unused_result));
void payq_consumer_free(struct payq_consumer *c); /* closes; safe on NULL */

/* Gives every unacknowledged delivery back to the broker (which redelivers
 * them to other consumers) by dropping the connection, and stops consuming
 * until payq_consumer_reconnect. Safe on NULL. */
void payq_consumer_release(struct payq_consumer *c);

/* Sends a heartbeat on the connection, if any and due (payq_amqp_heartbeat). */
void payq_consumer_heartbeat(struct payq_consumer *c);

/* Drops the connection and consumes again on a new one. */
int payq_consumer_reconnect(struct payq_consumer *c) __attribute__((warn_unused_result));

/* Appends deliveries to b (empty) up to the size payq_batch_size_limit
 * gives its first transfer (a pack's lines count one by one; the last pack
 * is taken whole), setting b->backlog when that is the backlog size: waits up to
 * first_wait_ms for the first, then at most size->wait_ms for the rest.
 * Returns 0 (b may be empty) or -1 if the connection failed (the batch must
 * then be discarded unacked). */
int payq_consumer_collect(struct payq_consumer *c, struct payq_wbatch *b,
                          const struct payq_batch_size *size, int first_wait_ms)
    __attribute__((warn_unused_result));

/* Acks every delivery up to and including tag. Returns 0 or -1. */
int payq_consumer_ack_upto(struct payq_consumer *c, uint64_t tag)
    __attribute__((warn_unused_result));

/* A delivery tag is only meaningful on the connection that delivered it:
 * after a reconnect the broker has requeued those deliveries and numbers
 * new ones from 1 again. A mark remembers both, for an ack made later
 * (the worker acks a batch once its outcome events are confirmed, after
 * it has gone on to the next batch). */
struct payq_consumer_mark {
    uint64_t conn_seq; /* which connection */
    uint64_t tag;
};

struct payq_consumer_mark payq_consumer_mark(const struct payq_consumer *c, uint64_t tag);

/* Whether m's connection is still the current one: deliveries taken under
 * it can still be acked. */
bool payq_consumer_mark_live(const struct payq_consumer *c, struct payq_consumer_mark m);

/* Acks up to m.tag if m's connection is still the current one. Returns 0
 * when acked, 1 when that connection is gone (its deliveries were given
 * back, nothing to ack), -1 when the ack failed. */
int payq_consumer_ack_mark(struct payq_consumer *c, struct payq_consumer_mark m)
    __attribute__((warn_unused_result));

#endif
