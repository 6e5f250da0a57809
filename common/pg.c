/* pg: libpq connection set-up and SQLSTATE classification. */
#include "pg.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

PGconn *payq_pg_connect(const char *conninfo, const char *app)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {conninfo, app, NULL};
    /* expand_dbname=1: the conninfo string supplies everything else. */
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    char shown[1024];
    payq_log_redact(conninfo, shown, sizeof shown);
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_WARN, "pg_connect_failed");
    payq_log_str(&r, "conninfo", shown);
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    payq_log_strn(&r, "error", msg, n);
    payq_log_end(&r);
    PQfinish(conn);
    return NULL;
}

enum payq_pg_fault payq_pg_classify(const char *st)
{
    if (!st || !*st)
        return PAYQ_PG_RECONNECT;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return PAYQ_PG_RETRY;
    /* 08: connection exceptions; 57P0x: admin shutdown, crash shutdown,
     * cannot connect now; 25006: read-only transaction (we reached a node
     * that was demoted); 57014: statement timeout (cancelled: retry fresh);
     * 26000: a prepared statement the session lacks (a new session prepares
     * them all again, worker/ledger.h). */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "25006") == 0 ||
        strcmp(st, "57014") == 0 || strcmp(st, "26000") == 0)
        return PAYQ_PG_RECONNECT;
    return PAYQ_PG_FATAL;
}

enum payq_pg_fault payq_pg_check(PGconn *conn, PGresult *res, ExecStatusType expect,
                                 const char *what)
{
    if (res && PQresultStatus(res) == expect)
        return PAYQ_PG_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    enum payq_pg_fault f = payq_pg_classify(state);
    if (f == PAYQ_PG_FATAL && PQstatus(conn) != CONNECTION_OK)
        f = PAYQ_PG_RECONNECT;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    struct payq_log_rec r;
    payq_log_begin(&r, f == PAYQ_PG_FATAL ? PAYQ_LOG_ERROR : PAYQ_LOG_WARN, "pg_error");
    payq_log_str(&r, "op", what);
    payq_log_str(&r, "sqlstate", state ? state : "");
    payq_log_strn(&r, "error", msg, n);
    payq_log_end(&r);
    return f;
}

enum payq_pg_fault payq_pg_exec(PGconn *conn, const char *sql, const char *what)
{
    return payq_pg_exec_meanwhile(conn, sql, what, NULL, NULL);
}

PGresult *payq_pg_take_results(PGconn *conn)
{
    PGresult *res = NULL;
    for (PGresult *r; (r = PQgetResult(conn)) != NULL;) {
        ExecStatusType st = PQresultStatus(r);
        bool failed = res && PQresultStatus(res) != PGRES_COMMAND_OK &&
                      PQresultStatus(res) != PGRES_TUPLES_OK;
        if (failed) {
            PQclear(r);
        } else {
            PQclear(res);
            res = r;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
    return res;
}

enum payq_pg_fault payq_pg_exec_meanwhile(PGconn *conn, const char *sql, const char *what,
                                          void (*meanwhile)(void *), void *arg)
{
    if (!PQsendQuery(conn, sql)) {
        payq_pg_check(conn, NULL, PGRES_COMMAND_OK, what); /* logs why */
        return PAYQ_PG_RECONNECT;
    }
    if (meanwhile)
        meanwhile(arg);
    /* A lost connection gives a PGRES_FATAL_ERROR result that payq_pg_check
     * classifies. */
    PGresult *res = payq_pg_take_results(conn);
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_COMMAND_OK, what);
    PQclear(res);
    return f;
}

bool payq_pg_notice_unreplicated(const char *severity, const char *sqlstate, const char *message,
                                 const char *detail)
{
    if (severity && strcmp(severity, "WARNING") != 0)
        return false;
    if (sqlstate && strcmp(sqlstate, "57P01") == 0)
        return true;
    if (sqlstate && strcmp(sqlstate, "01000") != 0)
        return false;
    return (message && strstr(message, "synchronous replication")) ||
           (detail && strstr(detail, "might not have been replicated"));
}
