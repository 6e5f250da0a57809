/* ledger_lookup: SELECT ... FROM payq.transfers WHERE id = $1. */
#include "ledger_lookup.h"

#include <string.h>

#include "pg.h"

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

enum payq_lookup payq_ledger_lookup(PGconn *pg, const char *id, struct payq_buf *out)
{
    const char *params[1] = {id};
    PGresult *res = PQexecParams(pg, g_sql, 1, NULL, params, NULL, NULL, 0);
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
