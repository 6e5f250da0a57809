/* ledger_lookup: SELECT ... FROM payq.transfers WHERE id = $1 (or = ANY($1)). */
#include "ledger_lookup.h"

#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "pgarray.h"

/* Text columns in output order; times are formatted by PostgreSQL in UTC
 * so the answer never depends on the session's time zone. */
static const char *const g_sql =
    "SELECT id, status, reason, amount::text, currency::text, debit_account, credit_account, "
    "business_date::text, batch_id, "
    "to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
    "FROM payq.transfers WHERE id = $1";

static const char *const g_keys[] = {"id",       "status",        "reason",         "amount",
                                     "currency", "debit_account", "credit_account", "business_date",
                                     "batch_id", "published_at",  "committed_at"};

enum payq_lookup payq_ledger_lookup(PGconn *pg, int wait_ms, const char *id, struct payq_buf *out)
{
    const char *params[1] = {id};
    PGresult *res = payq_pg_exec_params_within(pg, wait_ms, g_sql, 1, params, 0);
    enum payq_pg_fault f = payq_pg_check(pg, res, PGRES_TUPLES_OK, "look up transfer");
    if (f != PAYQ_PG_OK) {
        PQclear(res);
        return f == PAYQ_PG_FATAL ? PAYQ_LOOKUP_ERROR : PAYQ_LOOKUP_FAILED;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return PAYQ_LOOKUP_NOT_FOUND;
    }
    payq_buf_putc(out, '{');
    for (int c = 0; c < (int)(sizeof g_keys / sizeof g_keys[0]); c++) {
        payq_buf_printf(out, "%s\"%s\":", c ? "," : "", g_keys[c]);
        if (PQgetisnull(res, 0, c))
            payq_buf_puts(out, "null");
        else
            payq_buf_json_str(out, PQgetvalue(res, 0, c));
    }
    payq_buf_putc(out, '}');
    PQclear(res);
    return PAYQ_LOOKUP_FOUND;
}

/* The columns worker/ledger.c reads for its own duplicate check, in the
 * same shape, so the two verdicts agree. */
static const char *const g_many_sql =
    "SELECT id, encode(payload_sha256, 'hex'), debit_account, credit_account, amount::text, "
    "currency::text, coalesce(batch_id, ''), business_date::text, coalesce(reference, '') "
    "FROM payq.transfers WHERE id = ANY($1::text[])";

enum payq_lookup payq_ledger_lookup_many(PGconn *pg, int wait_ms, const char *const *ids, size_t n,
                                         payq_lookup_row_fn fn, void *ctx)
{
    struct payq_buf arr = PAYQ_BUF_INIT;
    payq_pgarr_begin(&arr);
    for (size_t i = 0; i < n; i++)
        payq_pgarr_str(&arr, ids[i]);
    payq_pgarr_end(&arr);
    const char *params[1] = {arr.data};
    PGresult *res = payq_pg_exec_params_within(pg, wait_ms, g_many_sql, 1, params, 0);
    payq_buf_free(&arr);
    enum payq_pg_fault f = payq_pg_check(pg, res, PGRES_TUPLES_OK, "look up transfer ids");
    if (f != PAYQ_PG_OK) {
        PQclear(res);
        return f == PAYQ_PG_FATAL ? PAYQ_LOOKUP_ERROR : PAYQ_LOOKUP_FAILED;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        struct payq_replay_stored s = {
            .hash_hex = PQgetvalue(res, r, 1),
            .debit_account = PQgetvalue(res, r, 2),
            .credit_account = PQgetvalue(res, r, 3),
            .amount = strtoll(PQgetvalue(res, r, 4), NULL, 10),
            .currency = PQgetvalue(res, r, 5),
            .batch_id = PQgetvalue(res, r, 6),
            .business_date = PQgetvalue(res, r, 7),
            .reference = PQgetvalue(res, r, 8),
        };
        fn(ctx, PQgetvalue(res, r, 0), &s);
    }
    PQclear(res);
    return rows ? PAYQ_LOOKUP_FOUND : PAYQ_LOOKUP_NOT_FOUND;
}
