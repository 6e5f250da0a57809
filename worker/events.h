/* events: the outcome of every transfer message of a committed batch,
 * published to the payq.results topic exchange (routing key = status:
 * posted, rejected, conflict, dead_lettered) with confirms, before the
 * batch is acked. The queue is the outbox (README "Outcome events"): the
 * events are built from the rows the batch left in the ledger, as
 * PostgreSQL returns them, never from the worker's memory or clock, so a
 * redelivered batch, whose ids are booked already, re-emits byte-identical
 * events. */
#ifndef PAYQ_WORKER_EVENTS_H
#define PAYQ_WORKER_EVENTS_H

#include <stddef.h>

#include "batch.h"
#include "outbox.h"
#include "pg.h"

/* A transfer's outcome event over a payq.transfers row, as a select list:
 * one column per key of the event, in the event's order, read in binary
 * format and written as JSON by payq_event_body (event_body.h). The ledger's
 * INSERT returns it for the rows it writes (ledger.c), and events.c reads
 * it back for the rows a redelivered batch finds booked: one select list
 * and one writer, so the same row always gives the same bytes. Column 0 is
 * the id (the message_id of a pack of one), column 1 the status (the
 * routing key); committed_at gives the message's timestamp. */
#define PAYQ_EVENT_TRANSFER_COLS                                                                   \
    "id, status, reason, batch_id, business_date, amount, currency, debit_account, "               \
    "credit_account, committed_at, debit_balance, credit_balance"

/* Publishes the outcome of every transfer message, conflict and dead
 * letter in msgs[0..n) (after COMMIT): a message's event as its own
 * committed INSERT returned it (payq_wmsg.event), else read from conn
 * (duplicates, conflicts, dead letters, a batch re-applied after an unknown
 * COMMIT outcome). One event per row through out (exchange payq.results).
 * Events of one status travel in packs of up to pack_max (JSON Lines, one
 * event per line, message_id "sha256:" + the body's hex SHA-256); a pack
 * of one event (always so with pack_max 1) has message_id = its id.
 * *published counts events. Returns PAYQ_PG_OK when all are sent, not yet
 * confirmed: the caller acks the batch only after payq_outbox_wait(out)
 * returned 0 (the worker does so after applying the next batch, so the
 * broker's confirm round trip overlaps the database's work). Else the
 * fault class of a failed query (PAYQ_PG_RECONNECT: drop conn), or
 * PAYQ_PG_FATAL when the broker failed (logged; the outbox is reset). */
enum payq_pg_fault payq_events_publish(PGconn *conn, struct payq_outbox *out, int pack_max,
                                       struct payq_wmsg *msgs, size_t n, size_t *published);

/* Logs result_events_failed with the outbox's reason and the stage at which
 * the broker failed ("send": publishing, "confirm": waiting for the
 * broker's confirms before an ack): the one place either stage reports the
 * failure. The outbox keeps its failure and its unconfirmed events, for
 * the worker to get them out before it consumes again (worker/main.c). */
void payq_events_failed(struct payq_outbox *out, const char *stage);

#endif
