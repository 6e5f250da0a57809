/* events: the outcome of every transfer message of a committed batch,
 * published to the payq.results topic exchange (routing key = status:
 * posted, rejected, conflict, dead_lettered) with confirms, before the
 * batch is acked. The queue is the outbox (README "Outcome events"): the
 * events are built from the rows the batch left in the ledger, never from
 * the worker's memory or clock, so a redelivered batch, whose ids are
 * booked already, re-emits byte-identical events. */
#ifndef PAYQ_WORKER_EVENTS_H
#define PAYQ_WORKER_EVENTS_H

#include <stddef.h>

#include "batch.h"
#include "outbox.h"
#include "pg.h"

/* Reads the stored outcome of every transfer message, conflict and dead
 * letter in msgs[0..n) from conn (after COMMIT) and publishes one event per
 * row through out (exchange payq.results), waiting for every confirm.
 * Events of one status travel in packs of up to pack_max (JSON Lines, one
 * event per line, message_id "sha256:" + the body's hex SHA-256); a pack
 * of one event (always so with pack_max 1) has message_id = its id.
 * *published counts events.
 * Returns PAYQ_PG_OK when all are confirmed; the fault class of a failed
 * query (PAYQ_PG_RECONNECT: drop conn); PAYQ_PG_FATAL when the broker
 * failed (logged; the outbox is reset). The caller must not ack unless OK. */
enum payq_pg_fault payq_events_publish(PGconn *conn, struct payq_outbox *out, int pack_max,
                                       struct payq_wmsg *msgs, size_t n, size_t *published);

#endif
