/* ledger_reads: SELECT ... FROM payq.accounts WHERE id = $1, and one
 * grouped SELECT over the transfers of one batch. */
#include "ledger_reads.h"

#include <stdlib.h>

#include "alloc.h"
#include "batch_view.h"
#include "message.h"
#include "pg.h"

/* Amounts and the balance as text: numeric arithmetic, so credits minus
 * debits cannot overflow whatever the two bigints hold. */
static const char *const g_account_sql =
    "SELECT id, currency::text, flags, debits_posted::text, credits_posted::text, "
    "(credits_posted::numeric - debits_posted)::text, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
    "FROM payq.accounts WHERE id = $1";

/* Runs a one-parameter query; returns OK, or the lookup failure (logged). */
static enum payq_lookup run(PGconn *pg, int wait_ms, const char *sql, const char *param,
                            const char *what, PGresult **res)
{
    const char *params[1] = {param};
    *res = payq_pg_exec_params_within(pg, wait_ms, sql, 1, params, 0);
    enum payq_pg_fault f = payq_pg_check(pg, *res, PGRES_TUPLES_OK, what);
    if (f == PAYQ_PG_OK)
        return PQntuples(*res) ? PAYQ_LOOKUP_FOUND : PAYQ_LOOKUP_NOT_FOUND;
    PQclear(*res);
    *res = NULL;
    return f == PAYQ_PG_FATAL ? PAYQ_LOOKUP_ERROR : PAYQ_LOOKUP_FAILED;
}

enum payq_lookup payq_ledger_read_account(PGconn *pg, int wait_ms, const char *id,
                                          struct payq_buf *out)
{
    PGresult *res;
    enum payq_lookup r = run(pg, wait_ms, g_account_sql, id, "read account", &res);
    if (r != PAYQ_LOOKUP_FOUND) {
        PQclear(res);
        return r;
    }
    unsigned flags = (unsigned)atoi(PQgetvalue(res, 0, 2));
    payq_buf_puts(out, "{\"id\":");
    payq_buf_json_str(out, PQgetvalue(res, 0, 0));
    payq_buf_puts(out, ",\"currency\":");
    payq_buf_json_str(out, PQgetvalue(res, 0, 1));
    payq_buf_puts(out, ",\"flags\":[");
    if (flags & PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS)
        payq_buf_puts(out, "\"debits_must_not_exceed_credits\"");
    if (flags & PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS)
        payq_buf_puts(out, "\"credits_must_not_exceed_debits\"");
    static const char *const keys[] = {"debits_posted", "credits_posted", "balance", "created_at"};
    payq_buf_putc(out, ']');
    for (int k = 0; k < 4; k++) {
        payq_buf_printf(out, ",\"%s\":", keys[k]);
        payq_buf_json_str(out, PQgetvalue(res, 0, 3 + k));
    }
    payq_buf_putc(out, '}');
    PQclear(res);
    return PAYQ_LOOKUP_FOUND;
}

/* The batch's ledger rows by outcome and currency, and its business dates
 * on every row (the same for all). No index leads with batch_id: one on
 * every transfer would tax each insert for a rare read. transfers_by_day
 * (business_date, batch_id) serves it instead: the recursive part walks
 * the distinct business dates (one index probe each, a loose index scan),
 * and each date is one probe for the batch (OFFSET 0 keeps the lateral
 * subquery a parameterised probe: flattened, the planner hash-joins and
 * scans the whole index for the batch_id). Its cost grows with the number
 * of days in the ledger, never with the number of transfers. */
static const char *const g_batch_sql =
    "WITH RECURSIVE days(d) AS ("
    " SELECT min(business_date) FROM payq.transfers"
    " UNION ALL"
    " SELECT (SELECT min(business_date) FROM payq.transfers WHERE business_date > d)"
    " FROM days WHERE d IS NOT NULL), "
    "b AS (SELECT t.* FROM days, LATERAL (SELECT t.status, t.currency, t.amount,"
    " t.business_date FROM payq.transfers t WHERE t.business_date = days.d"
    " AND t.batch_id = $1 OFFSET 0) t) "
    "SELECT status, currency::text, count(*), sum(amount)::text, "
    "(SELECT string_agg(DISTINCT business_date::text, ',' ORDER BY business_date::text) FROM b) "
    "FROM b GROUP BY 1, 2 ORDER BY 1, 2";

enum payq_lookup payq_ledger_read_batch(PGconn *pg, int wait_ms, const char *batch_id,
                                        struct payq_buf *out)
{
    PGresult *res;
    enum payq_lookup r = run(pg, wait_ms, g_batch_sql, batch_id, "read batch", &res);
    if (r != PAYQ_LOOKUP_FOUND) {
        PQclear(res);
        return r;
    }
    size_t n = (size_t)PQntuples(res);
    struct payq_batch_group *g = payq_xreallocarray(NULL, n, sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = (struct payq_batch_group){
            .status = PQgetvalue(res, (int)i, 0),
            .currency = PQgetvalue(res, (int)i, 1),
            .count = atoll(PQgetvalue(res, (int)i, 2)),
            .sum = PQgetvalue(res, (int)i, 3),
        };
    payq_batch_view_json(batch_id, PQgetvalue(res, 0, 4), g, n, out);
    free(g);
    PQclear(res);
    return PAYQ_LOOKUP_FOUND;
}
