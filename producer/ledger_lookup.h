/* ledger_lookup: a transfer's outcome read from the ledger for
 * GET /v1/transfers/{id}, over the read-only role (pg.read_conninfo, which
 * prefers the standby), with one parameterised query. */
#ifndef PAYQ_LEDGER_LOOKUP_H
#define PAYQ_LEDGER_LOOKUP_H

#include <libpq-fe.h>

#include "buf.h"

enum payq_lookup {
    PAYQ_LOOKUP_FOUND,
    PAYQ_LOOKUP_NOT_FOUND,
    PAYQ_LOOKUP_FAILED, /* the connection is broken: reconnect and retry */
    PAYQ_LOOKUP_ERROR,  /* the query failed for another reason (logged) */
};

/* Looks id (already validated) up. On FOUND appends the JSON object
 * {"id","status","reason","amount","currency","debit_account",
 * "credit_account","business_date","batch_id","published_at","committed_at"}
 * to out (amount as a digit string, times as RFC 3339 UTC, absent values
 * null). Logs failures. */
enum payq_lookup payq_ledger_lookup(PGconn *pg, const char *id, struct payq_buf *out);

#endif
