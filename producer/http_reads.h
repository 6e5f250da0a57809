/* http_reads: the read-only routes for upstream systems,
 * GET /v1/transfers/{id} (producer/ledger_lookup.h), GET /v1/accounts/{id}
 * and GET /v1/batches/{batch_id} (producer/ledger_reads.h), answered from
 * the standby with the read-only role: 200, 400 naming the field of a
 * malformed id, 404 for an id the ledger does not hold, 503 when it cannot
 * be read. */
#ifndef PAYQ_HTTP_READS_H
#define PAYQ_HTTP_READS_H

#include <stddef.h>

#include "http.h"

void payq_http_get_transfer(struct payq_http_app *app, const char *id, size_t id_len,
                            struct payq_http_reply *rep);

void payq_http_get_account(struct payq_http_app *app, const char *id, size_t id_len,
                           struct payq_http_reply *rep);

void payq_http_get_batch(struct payq_http_app *app, const char *id, size_t id_len,
                         struct payq_http_reply *rep);

#endif
