/* commit: journal row and a COMMIT that must have waited for the standby
 * (see commit.h for why). */
#include "commit.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* Logs a notice as one JSON line (libpq's default prints raw text to
 * stderr) and, while a COMMIT runs, counts its warnings. */
static void on_notice(void *arg, const PGresult *res)
{
    struct payq_commit_watch *w = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    bool warning = !sev || strcmp(sev, "WARNING") == 0;
    bool unreplicated = payq_pg_notice_unreplicated(sev, state, msg, detail);
    if (w->armed && warning) {
        w->warnings++;
        w->unreplicated += unreplicated;
    }
    struct payq_log_rec r;
    payq_log_begin(&r, warning ? PAYQ_LOG_WARN : PAYQ_LOG_DEBUG,
                   unreplicated ? "commit_not_replicated" : "pg_notice");
    payq_log_str(&r, "severity", sev ? sev : "");
    payq_log_str(&r, "sqlstate", state ? state : "");
    payq_log_str(&r, "error", msg ? msg : "");
    payq_log_end(&r);
}

void payq_commit_watch(PGconn *conn, struct payq_commit_watch *w)
{
    memset(w, 0, sizeof *w);
    PQsetNoticeReceiver(conn, on_notice, w);
}

static enum payq_pg_fault insert_journal(PGconn *conn, const struct payq_journal *j,
                                         struct payq_wmsg **msgs, size_t n)
{
    unsigned c[WOUT_DEAD + 1] = {0};
    for (size_t i = 0; i < n; i++)
        c[msgs[i]->outcome]++;
    char attempt[16], nmsg[24], v[6][16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    snprintf(nmsg, sizeof nmsg, "%zu", n);
    static const enum wmsg_outcome order[6] = {WOUT_POSTED,   WOUT_REJECTED, WOUT_DUPLICATE,
                                               WOUT_CONFLICT, WOUT_DEAD,     WOUT_OPENED};
    for (int k = 0; k < 6; k++)
        snprintf(v[k], sizeof v[k], "%u", c[order[k]]);
    const char *p[10] = {j->batch_id, j->worker, attempt, nmsg, v[0], v[1], v[2], v[3], v[4], v[5]};
    PGresult *res = payq_pg_exec_params(conn,
                                        "INSERT INTO payq.batches (batch_id, worker, attempt, "
                                        "messages, posted, rejected, duplicate, conflict, dead, "
                                        "opened) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                                        10, p, 0);
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_COMMAND_OK, "journal batch");
    PQclear(res);
    return f;
}

enum payq_pg_fault payq_commit_batch(PGconn *conn, struct payq_commit_watch *w,
                                     const struct payq_journal *j, struct payq_wmsg **msgs,
                                     size_t n, struct payq_commit_meanwhile meanwhile)
{
    enum payq_pg_fault f = insert_journal(conn, j, msgs, n);
    if (f != PAYQ_PG_OK) {
        if (PQstatus(conn) == CONNECTION_OK)
            payq_pg_exec(conn, "ROLLBACK", "rollback");
        return f;
    }
    w->warnings = w->unreplicated = 0;
    /* Armed until the result is in: libpq hands the COMMIT's notices to
     * on_notice while it waits for that result, after meanwhile. */
    w->armed = true;
    f = payq_pg_exec_meanwhile(conn, "COMMIT", "commit", meanwhile.fn, meanwhile.arg);
    w->armed = false;
    if (f == PAYQ_PG_OK && w->warnings > 0) {
        payq_log(PAYQ_LOG_WARN, "commit_outcome_unknown",
                 "COMMIT warned (%u of the synchronous-replication kind): not acking; "
                 "reconnecting to retry the batch",
                 w->unreplicated);
        return PAYQ_PG_RECONNECT;
    }
    return f;
}
