/* run_record: a run recorded once through payq.record_reconciliation(),
 * asked again while the answer is unknown. */
#include "run_record.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "pg.h"
#include "pgarray.h"
#include "report.h"
#include "signals.h"

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

/* How a call of a recording function ended. */
enum recorded {
    RECORDED,
    REFUSED, /* the database said no: asking again gets the same answer */
    UNKNOWN, /* no answer (no connection, the session lost or silent, a
              * node demoted): it may or may not have committed */
};

/* Calls one of the reconciler's recording functions as payq_recon on a
 * connection of its own, waiting at most within_ms, the connect included
 * (0: while the server is alive). A call given up on must not commit
 * later, when whatever held it (a lock) goes: the server checks for the
 * closed session every second. err names why when not RECORDED. */
static enum recorded call_recorder(const struct payq_config *cfg, int within_ms, const char *sql,
                                   int nparams, const char *const *params, const char *what,
                                   char *err, size_t errlen)
{
    PGconn *c = payq_pg_connect_within(cfg->pg.recon_conninfo, "payq-reconciler", within_ms);
    if (!c) {
        snprintf(err, errlen, "cannot connect with pg.recon_conninfo (see log)");
        return UNKNOWN;
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
    enum payq_pg_fault f = payq_pg_check(c, res, PGRES_TUPLES_OK, what);
    if (f != PAYQ_PG_OK) {
        const char *why = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(err, errlen, "%s: %s",
                 f == PAYQ_PG_FATAL ? "the database refused it" : "no answer from the database",
                 why ? why : PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    PQfinish(c);
    return f == PAYQ_PG_OK ? RECORDED : f == PAYQ_PG_FATAL ? REFUSED : UNKNOWN;
}

/* A random (version 4) UUID naming the run, so that asking again records
 * it once. -1 if the kernel gives no randomness. */
static int new_run_id(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t n = 0;
    for (size_t i = 0; i < sizeof b; i++)
        n += (size_t)snprintf(out + n, 37 - n, "%s%02x",
                              i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", b[i]);
    return 0;
}

/* How long a run stopped before or during its record may wait for it. */
#define RECORD_AFTER_STOP_MS 5000

/* Notes when a stop (SIGTERM, SIGINT) is first seen; 0 until then. */
static void note_stop(int64_t *stopped_at)
{
    if (!*stopped_at && payq_signals_stop_requested())
        *stopped_at = payq_clock_mono_ms();
}

int payq_run_record(const struct payq_recon_outcome *run, char *err, size_t errlen)
{
    char run_id[37];
    if (new_run_id(run_id) != 0) {
        snprintf(err, errlen, "no randomness for the run's id (getrandom failed)");
        return -1;
    }
    char started[32], finished[32], breaks[24];
    struct payq_buf counts = PAYQ_BUF_INIT;
    payq_recon_iso_time(run->started_ms, started);
    payq_recon_iso_time(run->finished_ms, finished);
    snprintf(breaks, sizeof breaks, "%llu", (unsigned long long)payq_breaks_total(&run->breaks));
    payq_report_counts(run, &counts);
    const char *p[7] = {run_id, run->opts->date, started, finished, table_result(run->result),
                        breaks, counts.data};
    /* Asked again while the answer is unknown, for as long as a failover
     * takes; the run's id makes that safe. A stop, before or during the
     * retries, bounds the rest rather than giving the record up. */
    int64_t retry_until = payq_clock_mono_ms() + run->cfg->reconciler.primary_wait_s * 1000LL;
    int64_t stopped_at = 0;
    struct payq_backoff b;
    payq_backoff_init(&b, 500, 5000);
    enum recorded r;
    for (int attempt = 1;; attempt++) {
        note_stop(&stopped_at);
        int64_t stop_until = stopped_at + RECORD_AFTER_STOP_MS;
        int64_t left = stop_until - payq_clock_mono_ms();
        /* Through the SECURITY DEFINER function: payq_recon has no INSERT
         * (see schemas/sql/003_reconciliation_record.sql and 013). */
        r = call_recorder(run->cfg, stopped_at ? (int)(left > 1 ? left : 1) : 0,
                          "SELECT payq.record_reconciliation($1::uuid, $2::date, "
                          "$3::timestamptz, $4::timestamptz, $5, $6::bigint, $7::jsonb)",
                          7, p, "record the run", err, errlen);
        note_stop(&stopped_at);
        stop_until = stopped_at + RECORD_AFTER_STOP_MS;
        int64_t deadline = stopped_at && stop_until < retry_until ? stop_until : retry_until;
        if (r != UNKNOWN || !payq_backoff_fits(&b, deadline))
            break;
        payq_log(PAYQ_LOG_WARN, "run_record_retry", "attempt %d of recording run %s: %s", attempt,
                 run_id, err);
        /* A stop cuts the sleep short; the next attempt is bounded. */
        (void)payq_backoff_sleep(&b, stopped_at ? NULL : payq_signals_stop_requested);
    }
    payq_buf_free(&counts);
    return r == RECORDED ? 0 : -1;
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
                           4, p, "record the audit index", err, errlen) == RECORDED
                 ? 0
                 : -1;
    payq_buf_free(&dates);
    payq_buf_free(&offsets);
    return rc;
}
