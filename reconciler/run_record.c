/* run_record: one call of payq.record_reconciliation() per run. */
#include "run_record.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "pg.h"
#include "pgarray.h"
#include "report.h"

static const char *table_result(enum payq_recon_result r)
{
    switch (r) {
    case PAYQ_RESULT_BALANCED:
        return "balanced";
    case PAYQ_RESULT_BREAKS:
    case PAYQ_RESULT_IN_FLIGHT:
        return "breaks";
    case PAYQ_RESULT_FAILED:
        break;
    }
    return "failed";
}

/* Calls one of the reconciler's recording functions as payq_recon on a
 * connection of its own, waiting at most within_ms (0: while the server is
 * alive). A call given up on must not commit later, when whatever held it
 * (a lock) goes: the server checks for the closed session every second.
 * Returns 0, or -1 with err naming why. */
static int call_recorder(const struct payq_config *cfg, int within_ms, const char *sql, int nparams,
                         const char *const *params, const char *what, char *err, size_t errlen)
{
    PGconn *c = payq_pg_connect(cfg->pg.recon_conninfo, "payq-reconciler");
    if (!c) {
        snprintf(err, errlen, "cannot connect with pg.recon_conninfo (see log)");
        return -1;
    }
    PGresult *res = NULL;
    if (within_ms > 0) {
        res = payq_pg_exec_params_within(
            c, within_ms, "SET client_connection_check_interval = '" PAYQ_PG_CLIENT_CHECK "'", 0,
            NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            res = payq_pg_exec_params_within(c, within_ms, sql, nparams, params, 0);
        }
    } else {
        res = payq_pg_exec_params_alive(c, sql, nparams, params);
    }
    int rc = payq_pg_check(c, res, PGRES_TUPLES_OK, what) == PAYQ_PG_OK ? 0 : -1;
    if (rc != 0) {
        const char *why = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(err, errlen, "the database refused it: %s", why ? why : PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    PQfinish(c);
    return rc;
}

int payq_run_record(const struct payq_recon_outcome *run, int within_ms, char *err, size_t errlen)
{
    char started[32], finished[32], breaks[24];
    struct payq_buf counts = PAYQ_BUF_INIT;
    payq_recon_iso_time(run->started_ms, started);
    payq_recon_iso_time(run->finished_ms, finished);
    snprintf(breaks, sizeof breaks, "%llu", (unsigned long long)payq_breaks_total(&run->breaks));
    payq_report_counts(run, &counts);
    const char *p[6] = {run->opts->date,           started, finished,
                        table_result(run->result), breaks,  counts.data};
    /* Through the SECURITY DEFINER function: payq_recon has no INSERT (see
     * schemas/sql/003_reconciliation_record.sql). */
    int rc = call_recorder(run->cfg, within_ms,
                           "SELECT payq.record_reconciliation($1::date, $2::timestamptz, "
                           "$3::timestamptz, $4, $5::bigint, $6::jsonb)",
                           6, p, "record the run", err, errlen);
    payq_buf_free(&counts);
    return rc;
}

int payq_run_record_index(const struct payq_config *cfg, int64_t from, int64_t to,
                          const struct payq_audit_index *ix, char *err, size_t errlen)
{
    struct payq_buf dates = PAYQ_BUF_INIT, offsets = PAYQ_BUF_INIT;
    char sfrom[24], sto[24];
    snprintf(sfrom, sizeof sfrom, "%lld", (long long)from);
    snprintf(sto, sizeof sto, "%lld", (long long)to);
    payq_pgarr_begin(&dates);
    payq_pgarr_begin(&offsets);
    for (size_t i = 0; i < ix->n; i++) {
        payq_pgarr_str(&dates, ix->dates[i]);
        payq_pgarr_int(&offsets, ix->offsets[i]);
    }
    payq_pgarr_end(&dates);
    payq_pgarr_end(&offsets);
    const char *p[4] = {sfrom, sto, dates.data, offsets.data};
    int rc = call_recorder(cfg, 0,
                           "SELECT payq.record_audit_index($1::bigint, $2::bigint, "
                           "$3::date[], $4::bigint[])",
                           4, p, "record the audit index", err, errlen);
    payq_buf_free(&dates);
    payq_buf_free(&offsets);
    return rc;
}
