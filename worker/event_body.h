/* event_body: an outcome event's JSON body from one row of a ledger query
 * (pure; no I/O). events.h says which rows, and why from the rows and
 * never from the worker's memory. The query renders nothing: its result
 * comes back in binary format and this file writes the JSON, so the
 * backend's CPU goes to booking transfers (PostgreSQL's json_build_object
 * and to_char were a fifth of it in a drain, issue 16). One function for
 * every row that becomes an event, so the same row always gives the same
 * bytes. Tested in tests/unit/test_event_body.c. */
#ifndef PAYQ_WORKER_EVENT_BODY_H
#define PAYQ_WORKER_EVENT_BODY_H

#include <stdint.h>

#include <libpq-fe.h>

#include "buf.h"

/* Appends row `row` of res (binary format) to out as one JSON object: one
 * key per column, named and ordered as the select list names and orders
 * them, written as PostgreSQL's json_build_object writes them
 * ({"k" : v, "k2" : v2}). SQL NULL is null; text is a JSON string; bigint
 * a string of digits (amounts beyond 2^53 do not survive a JSON number in
 * most parsers); date "YYYY-MM-DD"; timestamptz UTC
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ"; bytea lower-case hex. Sets *ts_ms to the
 * column committed_at in epoch milliseconds, rounded half away from zero
 * (0 without one). Returns 0, or -1 if a column has another type (the
 * select lists are fixed: a programming error; out is then incomplete). */
int payq_event_body(const PGresult *res, int row, struct payq_buf *out, int64_t *ts_ms);

#endif
