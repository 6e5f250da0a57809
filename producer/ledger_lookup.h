/* ledger_lookup: a transfer's outcome read from the ledger for
 * GET /v1/transfers/{id}, and the stored payloads of a POST's ids for its
 * replay check (producer/replay.h), over the read-only role
 * (pg.read_conninfo, which prefers the standby), each with one
 * parameterised query. */
#ifndef PAYQ_LEDGER_LOOKUP_H
#define PAYQ_LEDGER_LOOKUP_H

#include <libpq-fe.h>

#include <stddef.h>

#include "buf.h"
#include "replay.h"

enum payq_lookup {
    PAYQ_LOOKUP_FOUND,
    PAYQ_LOOKUP_NOT_FOUND,
    PAYQ_LOOKUP_FAILED, /* the connection is broken: reconnect and retry */
    PAYQ_LOOKUP_ERROR,  /* the query failed for another reason (logged) */
};

/* Looks id (already validated) up, waiting at most wait_ms for the answer
 * (0: the process's bound; none in time is FAILED and leaves pg lost, as
 * payq_pg_exec_params_within). On FOUND appends the JSON object
 * {"id","status","reason","amount","currency","debit_account",
 * "credit_account","business_date","batch_id","published_at","committed_at"}
 * to out (amount as a digit string, times as RFC 3339 UTC, absent values
 * null). Logs failures. */
enum payq_lookup payq_ledger_lookup(PGconn *pg, int wait_ms, const char *id, struct payq_buf *out);

/* Called once per id found, with the row's strings valid for the call. */
typedef void (*payq_lookup_row_fn)(void *ctx, const char *id, const struct payq_replay_stored *s);

/* Looks the n ids (already validated) up with one query
 * (id = ANY($1::text[])) and calls fn for each one the ledger holds.
 * Returns FOUND when at least one was, NOT_FOUND when none, FAILED or
 * ERROR as payq_ledger_lookup (logged). No answer within wait_ms is FAILED
 * and leaves pg lost (payq_pg_exec_params_within). */
enum payq_lookup payq_ledger_lookup_many(PGconn *pg, int wait_ms, const char *const *ids, size_t n,
                                         payq_lookup_row_fn fn, void *ctx);

#endif
