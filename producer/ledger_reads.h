/* ledger_reads: what GET /v1/accounts/{id} and GET /v1/batches/{batch_id}
 * answer, read from the ledger over the read-only role (pg.read_conninfo,
 * which prefers the standby), each with one parameterised query. The JSON
 * shapes are in schemas/openapi.yaml (Account, Batch). */
#ifndef PAYQ_LEDGER_READS_H
#define PAYQ_LEDGER_READS_H

#include <libpq-fe.h>

#include "buf.h"
#include "ledger_lookup.h"

/* Both wait at most wait_ms for the answer (0: the process's bound): none
 * in time is FAILED and leaves pg lost (payq_pg_exec_params_within).
 * Account id (already validated): on FOUND appends
 * {"id","currency","flags":[...],"debits_posted","credits_posted",
 * "balance","created_at"} to out, amounts as digit strings, balance =
 * credits_posted - debits_posted (signed). */
enum payq_lookup payq_ledger_read_account(PGconn *pg, int wait_ms, const char *id,
                                          struct payq_buf *out);

/* Batch id (already validated): on FOUND (the ledger holds at least one
 * transfer of it) appends the Batch object built by payq_batch_view_json
 * (producer/batch_view.h) to out. */
enum payq_lookup payq_ledger_read_batch(PGconn *pg, int wait_ms, const char *batch_id,
                                        struct payq_buf *out);

#endif
